/* pkitest.c: see pkitest.h. */
#include "pkitest.h"
#include "tmpdir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

void pt_path(const pki_fixture *f, const char *name, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/%s", f->dir, name);
}

void pt_setup(pki_fixture *f, const char *name)
{
    px_error e = {0};
    memset(f, 0, sizeof *f);
    assert_int_equal(testlib_mkdtemp(name, f->dir, sizeof f->dir), 0);
    pt_path(f, "ca", f->ca_dir, sizeof f->ca_dir);
    unsetenv(PKI_ENV_PASSPHRASE);
    if (pki_ca_init(f->ca_dir, "possum test CA", 3650, 30, NULL, &e) != PX_OK)
        fail_msg("ca init: %s", px_error_text(&e));
    if (pki_ca_open(f->ca_dir, &f->ca, &e) != PX_OK)
        fail_msg("ca open: %s", px_error_text(&e));
}

void pt_teardown(pki_fixture *f)
{
    pki_ca_close(f->ca);
    if (getenv("POSSUM_TEST_KEEP") == NULL)
        testlib_rmtree(f->dir);
}

void pt_issue(pki_fixture *f, pki_role role, pki_purpose purpose, const char *name, char **cert,
              char **key, pki_cert_info *info)
{
    pki_issue_req r;
    char *k = NULL;
    px_error e = {0};
    memset(&r, 0, sizeof r);
    r.role = role;
    r.purpose = purpose;
    r.name = name;
    r.days = 365;
    if (purpose == PKI_PURPOSE_TLS && role != PKI_ROLE_OPERATOR)
        r.san[0] = "127.0.0.1";
    if (pki_ca_issue(f->ca, &r, cert, &k, info, &e) != PX_OK)
        fail_msg("issue %s: %s", name, px_error_text(&e));
    if (key != NULL)
        *key = k;
    else
        free(k);
}

pki_trust *pt_trust(const pki_fixture *f)
{
    char ca[PX_PATH_MAX + 16], crl[PX_PATH_MAX + 16];
    pki_trust *t = NULL;
    px_error e = {0};
    snprintf(ca, sizeof ca, "%s/ca.crt", f->ca_dir);
    snprintf(crl, sizeof crl, "%s/crl.pem", f->ca_dir);
    if (pki_trust_load(ca, crl, &t, &e) != PX_OK)
        fail_msg("trust: %s", px_error_text(&e));
    return t;
}

EVP_PKEY *pt_keygen(void)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(k);
    return k;
}

char *pt_csr(EVP_PKEY *k)
{
    X509_REQ *req = X509_REQ_new();
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out;
    long len;
    X509_REQ_set_pubkey(req, k);
    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
                               (const unsigned char *)"ignored", -1, -1, 0);
    assert_true(X509_REQ_sign(req, k, EVP_sha256()) > 0);
    PEM_write_bio_X509_REQ(b, req);
    len = BIO_get_mem_data(b, &data);
    out = calloc(1, (size_t)len + 1);
    memcpy(out, data, (size_t)len);
    BIO_free(b);
    X509_REQ_free(req);
    return out;
}

void pt_point(EVP_PKEY *k, uint8_t point[PKI_EC_POINT_LEN])
{
    size_t len = 0;
    assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, point,
                                                     PKI_EC_POINT_LEN, &len),
                     1);
    assert_int_equal(len, PKI_EC_POINT_LEN);
}

size_t pt_sign(EVP_PKEY *k, const char *label, const uint8_t *data, size_t n, uint8_t *sig,
               size_t cap)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t len = cap;
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k), 1);
    assert_int_equal(EVP_DigestSignUpdate(md, label, strlen(label)), 1);
    assert_int_equal(EVP_DigestSignUpdate(md, data, n), 1);
    assert_int_equal(EVP_DigestSignFinal(md, sig, &len), 1);
    EVP_MD_CTX_free(md);
    return len;
}

EVP_PKEY *pt_key_from_pem(const char *pem)
{
    BIO *b = BIO_new_mem_buf(pem, -1);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    assert_non_null(k);
    return k;
}
