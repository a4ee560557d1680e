/* pki_int.h: what the pki files share (not part of the module's interface). */
#ifndef PX_PKI_INT_H
#define PX_PKI_INT_H

#include "pki/pki.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

/* px_error_set(e, code, "<what>: <OpenSSL's reason>"), clearing OpenSSL's error queue. */
int pki_ossl_fail(px_error *e, int code, const char *what);

/* ASN1_TIME -> ms since the epoch (0 when it does not convert). */
int64_t pki_asn1_time_ms(const ASN1_TIME *t);

/* 1 if k is an EC key on P-256. */
int pki_pkey_is_p256(const EVP_PKEY *k);
/* The uncompressed point of an EC P-256 key. */
int pki_pkey_point(const EVP_PKEY *k, uint8_t point[PKI_EC_POINT_LEN], px_error *e);

/* Parse a certificate in PEM or DER (told apart by the first byte). */
X509 *pki_x509_parse(const uint8_t *data, size_t n, px_error *e);
/* Fill info from x (no verification). PX_EFORMAT when the subject is not ours. */
int pki_x509_info(X509 *x, pki_cert_info *info, px_error *e);

/* The reason names of RFC 5280 5.3.1 we use, and their codes. */
int pki_reason_code(const char *name, int *code);
const char *pki_reason_name(int code);

#endif
