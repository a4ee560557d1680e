/*
 * pki.h: possum's certificate authority and the checks every party makes against it
 * (docs/ca.md, docs/trust-model.md; seed 001 [0031]: "a CA identifies the operator
 * terminals, the MTMS and the KMS to each other").
 *
 * Every certificate is X.509 v3 with an EC P-256 key, signed ECDSA-SHA256 by the CA. Its
 * subject is CN = "<role>:<name>" and OU = "<role>", so a TLS peer's CN alone (all that
 * net_http_peer_cn() gives a handler) tells its role; the CA refuses any other shape. Roles:
 *
 *   operator  an operator terminal at the factory or repair shop   TLS client
 *   mtms      the material tracking system                         TLS server and client
 *   kms       a customer's key management system                   TLS server and client, or
 *                                                                   its key-receiving key
 *   pinpad    a PIN pad's device key ("pinpad:<serial>")           signatures only
 *   service   any other possum service (switch, TMS, ...)          TLS server and client
 *
 * Purposes (keyUsage / extendedKeyUsage): tls (digitalSignature; serverAuth and/or
 * clientAuth), key-agreement (keyAgreement only: the KMS's ECDH receiving key, whose private
 * half is a key block in the KMS's HSM) and device (digitalSignature, no EKU: a PIN pad's
 * signing key).
 *
 * The CA lives in a directory: ca.key (mode 0600; PKCS#8, encrypted with AES-256 under
 * POSSUM_CA_PASSPHRASE when that is set), ca.crt, index.txt (one line per certificate ever
 * issued), certs/SERIAL.pem, crl.pem. Operations on one directory are serialised with
 * flock, and every file is replaced atomically.
 */
#ifndef PX_PKI_H
#define PX_PKI_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "lib/err.h"
#include "lib/limits.h"

#define PKI_ENV_PASSPHRASE "POSSUM_CA_PASSPHRASE"
#define PKI_FP_LEN 32       /* SHA-256 fingerprint of a certificate's DER */
#define PKI_EC_POINT_LEN 65 /* uncompressed P-256 point 04 || X || Y */

typedef enum pki_role {
    PKI_ROLE_OPERATOR = 0,
    PKI_ROLE_MTMS = 1,
    PKI_ROLE_KMS = 2,
    PKI_ROLE_PINPAD = 3,
    PKI_ROLE_SERVICE = 4,
    PKI_ROLE_COUNT = 5
} pki_role;

typedef enum pki_purpose {
    PKI_PURPOSE_TLS = 0,           /* digitalSignature + serverAuth/clientAuth by role */
    PKI_PURPOSE_KEY_AGREEMENT = 1, /* keyAgreement only (the KMS's receiving key) */
    PKI_PURPOSE_DEVICE = 2,        /* digitalSignature, no EKU (a PIN pad's signing key) */
    PKI_PURPOSE_COUNT = 3
} pki_purpose;

const char *pki_role_name(pki_role r); /* "operator", ... ("?" otherwise) */
int pki_role_parse(const char *s, pki_role *out);
const char *pki_purpose_name(pki_purpose p); /* "tls", "key-agreement", "device" */
int pki_purpose_parse(const char *s, pki_purpose *out);
/* May a certificate of role r have purpose p? (operator/mtms/service: tls; kms: tls or
 * key-agreement; pinpad: device) */
int pki_role_allows(pki_role r, pki_purpose p);

/* Names: 1..64 of A-Z a-z 0-9 . _ - @ (customer codes, serial numbers, host names). */
int pki_name_is_valid(const char *name);
/* "role:name" into out; PX_EINVAL for a bad name. */
int pki_cn_make(pki_role r, const char *name, char out[PX_PKI_CN_MAX], px_error *e);
/* Split a CN "role:name": PX_EFORMAT unless it has that shape with a known role. */
int pki_cn_split(const char *cn, pki_role *role, char name[PX_PKI_NAME_MAX]);

/* What a certificate says, once parsed (and verified, for pki_trust_verify). */
typedef struct pki_cert_info {
    pki_role role;
    pki_purpose purpose;
    char cn[PX_PKI_CN_MAX];
    char name[PX_PKI_NAME_MAX];         /* CN after "role:" */
    char serial[PX_PKI_SERIAL_HEX_MAX]; /* upper-case hex */
    uint8_t fingerprint[PKI_FP_LEN];    /* SHA-256 of the DER */
    char fingerprint_hex[2 * PKI_FP_LEN + 1];
    int64_t not_before_ms, not_after_ms;
    uint8_t point[PKI_EC_POINT_LEN]; /* the public key */
} pki_cert_info;

/* ---- the CA ---------------------------------------------------------------------------- */

typedef struct pki_ca pki_ca;

/* Create a CA in dir (made mode 0700 if missing; refused with PX_EEXIST when dir already
 * holds ca.key): a P-256 key and a self-signed certificate CN = name, valid days, and an
 * empty CRL valid crl_days. The key is encrypted under POSSUM_CA_PASSPHRASE when set. */
int pki_ca_init(const char *dir, const char *name, int64_t days, int64_t crl_days,
                pki_cert_info *info, px_error *e);

/* Open the CA in dir (reads its key: POSSUM_CA_PASSPHRASE if it is encrypted). */
int pki_ca_open(const char *dir, pki_ca **out, px_error *e);
void pki_ca_close(pki_ca *ca); /* NULL is fine; wipes the key */
const char *pki_ca_dir(const pki_ca *ca);

/* A certificate request to the CA. Exactly one of csr_pem (a PKCS#10 request whose
 * signature proves possession of the key; its subject is ignored), pub_point (a P-256
 * point without proof of possession: the KMS's receiving key, which can only do ECDH; the
 * CA operator vouches for it out of band) or neither (the CA makes the key pair and returns
 * its private key in key_pem_out). */
typedef struct pki_issue_req {
    pki_role role;
    pki_purpose purpose;
    const char *name;                /* the CN's name part */
    const char *san[PX_PKI_SAN_MAX]; /* DNS names or IP addresses (TLS servers), NULL-ended */
    int64_t days;
    const char *csr_pem;
    const uint8_t *pub_point; /* PKI_EC_POINT_LEN bytes */
} pki_issue_req;

/* Issue: certificate PEM into *cert_pem (malloc'd, NUL-terminated; caller frees), and with
 * neither csr_pem nor pub_point, the new key (PKCS#8 PEM, unencrypted) into *key_pem
 * (caller wipes and frees; may be NULL otherwise). Recorded in the index and certs/. */
int pki_ca_issue(pki_ca *ca, const pki_issue_req *r, char **cert_pem, char **key_pem,
                 pki_cert_info *info, px_error *e);

typedef struct pki_cert_row {
    char status; /* 'V' valid, 'R' revoked */
    char serial[PX_PKI_SERIAL_HEX_MAX];
    pki_role role;
    pki_purpose purpose;
    char cn[PX_PKI_CN_MAX];
    int64_t issued_ms, not_after_ms, revoked_ms;
    char reason[24]; /* RFC 5280 reason name, "" when valid */
    char fingerprint_hex[2 * PKI_FP_LEN + 1];
} pki_cert_row;

/* Revoke by serial (hex) or, when cn is not NULL, every valid certificate with that CN;
 * reason: unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation
 * (NULL = unspecified). Rewrites crl.pem (valid crl_days). *count = certificates revoked;
 * PX_ENOTFOUND when none matched. */
int pki_ca_revoke(pki_ca *ca, const char *serial, const char *cn, const char *reason,
                  int64_t crl_days, size_t *count, px_error *e);

/* Write a fresh crl.pem valid crl_days (also done by revoke). */
int pki_ca_crl(pki_ca *ca, int64_t crl_days, px_error *e);

/* Every certificate in the index, in issue order; fn returning non-zero stops. Needs only
 * the directory (no key). */
int pki_ca_list(const char *dir, int (*fn)(void *ud, const pki_cert_row *row), void *ud,
                px_error *e);

/* ---- checking certificates ------------------------------------------------------------- */

/* A trust anchor: the CA certificate and its CRL. */
typedef struct pki_trust pki_trust;

/* From PEM files (crl_path may be NULL only with allow_no_crl, for parsing tools: then
 * revocation is not checked). */
int pki_trust_load(const char *ca_path, const char *crl_path, pki_trust **out, px_error *e);
/* From PEM text in memory (crl_pem NULL: see above). */
int pki_trust_load_mem(const char *ca_pem, size_t ca_len, const char *crl_pem, size_t crl_len,
                       pki_trust **out, px_error *e);
void pki_trust_free(pki_trust *t);
/* SHA-256 fingerprint of the CA certificate. */
const uint8_t *pki_trust_ca_fingerprint(const pki_trust *t);
/* The CRL's nextUpdate (0 without a CRL). */
int64_t pki_trust_crl_next_update_ms(const pki_trust *t);

/* Verify a certificate (PEM or DER, told apart by its first byte) at now_ms: it must chain
 * to the trust's CA, be within its validity, not be on the CRL (which must be the CA's,
 * current, and is required), carry an EC P-256 key, a CN of role `role` and purpose
 * `purpose` (keyUsage and EKU as the CA issues them). The refusal names the reason:
 * "certificate revoked (keyCompromise)", "not issued by this CA", "expired", "role is
 * operator, expected kms", ... (PX_EPERM; PX_EFORMAT when it does not parse). */
int pki_trust_verify(const pki_trust *t, const uint8_t *cert, size_t n, pki_role role,
                     pki_purpose purpose, int64_t now_ms, pki_cert_info *info, px_error *e);

/* Parse without verifying (listing, showing). */
int pki_cert_parse(const uint8_t *cert, size_t n, pki_cert_info *info, px_error *e);

/* PEM certificate -> DER (malloc'd into *der). */
int pki_cert_pem_to_der(const char *pem, size_t n, uint8_t **der, size_t *derlen, px_error *e);
/* DER -> PEM (malloc'd, NUL-terminated). */
int pki_cert_der_to_pem(const uint8_t *der, size_t n, char **pem, px_error *e);

/* ---- small helpers ------------------------------------------------------------------- */

/* A P-256 public key from an uncompressed point (checked to be on the curve), or NULL. */
EVP_PKEY *pki_pkey_from_point(const uint8_t point[PKI_EC_POINT_LEN]);

/* Read a whole file (at most max bytes) into a malloc'd NUL-terminated buffer. */
int pki_read_file(const char *path, size_t max, char **out, size_t *len, px_error *e);
/* Write a file atomically (tmp + fsync + rename) with mode. */
int pki_write_file(const char *path, const void *data, size_t len, int mode, px_error *e);

/* Base64 (RFC 4648, no line breaks). encode: out needs 4*ceil(n/3)+1. decode: strict
 * (no blanks, correct padding); PX_EFORMAT otherwise. */
void pki_b64_encode(const uint8_t *in, size_t n, char *out);
int pki_b64_decode(const char *in, uint8_t *out, size_t cap, size_t *outlen);

#endif
