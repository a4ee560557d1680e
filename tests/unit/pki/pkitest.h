/* pkitest.h: fixtures shared by the pki tests (a CA in a private temp dir; keys, requests
 * and certificates made on the side with OpenSSL). */
#ifndef PX_PKITEST_H
#define PX_PKITEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "lib/limits.h"
#include "pki/pki.h"

typedef struct pki_fixture {
    char dir[PX_PATH_MAX];    /* temp dir */
    char ca_dir[PX_PATH_MAX]; /* dir/ca */
    pki_ca *ca;
} pki_fixture;

/* A temp dir with a CA in dir/ca (no passphrase), opened. */
void pt_setup(pki_fixture *f, const char *name);
void pt_teardown(pki_fixture *f);
/* dir/name */
void pt_path(const pki_fixture *f, const char *name, char *out, size_t outsz);

/* Issue a certificate with a key the CA makes; cert (and key, may be NULL) malloc'd PEM. */
void pt_issue(pki_fixture *f, pki_role role, pki_purpose purpose, const char *name, char **cert,
              char **key, pki_cert_info *info);
/* A trust from the CA directory's ca.crt and crl.pem as they are now. */
pki_trust *pt_trust(const pki_fixture *f);
/* A fresh P-256 key pair. */
EVP_PKEY *pt_keygen(void);
/* A PEM certificate request for k (subject CN=x). */
char *pt_csr(EVP_PKEY *k);
/* The uncompressed public point of k. */
void pt_point(EVP_PKEY *k, uint8_t point[PKI_EC_POINT_LEN]);
/* ECDSA-SHA256 over label || data with k. */
size_t pt_sign(EVP_PKEY *k, const char *label, const uint8_t *data, size_t n, uint8_t *sig,
               size_t cap);
/* A PEM private key text -> EVP_PKEY. */
EVP_PKEY *pt_key_from_pem(const char *pem);

#endif
