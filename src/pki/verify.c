/*
 * verify.c: the checks every party makes on a certificate from the CA: chain, validity,
 * revocation (the CRL is required: fail closed), key type, role and purpose.
 */
#include "pki/pki_int.h"
#include "lib/str.h"
#include "lib/time.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

struct pki_trust {
    X509 *ca;
    X509_CRL *crl; /* NULL: revocation not checked (parsing tools only) */
    X509_STORE *store;
    uint8_t ca_fp[PKI_FP_LEN];
    int64_t crl_next_ms;
};

void pki_trust_free(pki_trust *t)
{
    if (t == NULL)
        return;
    X509_STORE_free(t->store);
    X509_CRL_free(t->crl);
    X509_free(t->ca);
    free(t);
}

int pki_trust_load_mem(const char *ca_pem, size_t ca_len, const char *crl_pem, size_t crl_len,
                       pki_trust **out, px_error *e)
{
    pki_trust *t = calloc(1, sizeof *t);
    unsigned int mdlen = 0;
    int rc = t ? PX_OK : px_error_set(e, PX_ENOMEM, "trust: out of memory");
    *out = NULL;
    if (rc == PX_OK && (t->ca = pki_x509_parse((const uint8_t *)ca_pem, ca_len, e)) == NULL)
        rc = px_error_prefix(e, "CA certificate: ");
    if (rc == PX_OK && X509_check_ca(t->ca) != 1)
        rc = px_error_set(e, PX_EPERM, "CA certificate: not a CA (basicConstraints)");
    if (rc == PX_OK && crl_pem != NULL) {
        BIO *b = crl_len <= PX_PKI_CRL_MAX ? BIO_new_mem_buf(crl_pem, (int)crl_len) : NULL;
        t->crl = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        if (t->crl == NULL)
            rc = pki_ossl_fail(e, PX_EFORMAT, "CRL: does not parse");
        else if (X509_CRL_verify(t->crl, X509_get0_pubkey(t->ca)) != 1 ||
                 X509_NAME_cmp(X509_CRL_get_issuer(t->crl), X509_get_subject_name(t->ca)) != 0)
            rc = pki_ossl_fail(e, PX_EPERM, "CRL: not signed by this CA");
        else
            t->crl_next_ms = pki_asn1_time_ms(X509_CRL_get0_nextUpdate(t->crl));
    }
    if (rc == PX_OK &&
        ((t->store = X509_STORE_new()) == NULL || X509_STORE_add_cert(t->store, t->ca) != 1 ||
         (t->crl != NULL && X509_STORE_add_crl(t->store, t->crl) != 1)))
        rc = pki_ossl_fail(e, PX_ECRYPTO, "trust store");
    if (rc == PX_OK && X509_digest(t->ca, EVP_sha256(), t->ca_fp, &mdlen) != 1)
        rc = pki_ossl_fail(e, PX_ECRYPTO, "CA fingerprint");
    if (rc != PX_OK) {
        pki_trust_free(t);
        return rc;
    }
    *out = t;
    return PX_OK;
}

int pki_trust_load(const char *ca_path, const char *crl_path, pki_trust **out, px_error *e)
{
    char *ca = NULL, *crl = NULL;
    size_t calen = 0, crllen = 0;
    int rc = pki_read_file(ca_path, PX_PKI_PEM_MAX, &ca, &calen, e);
    *out = NULL;
    if (rc == PX_OK && crl_path != NULL && crl_path[0] != 0)
        rc = pki_read_file(crl_path, PX_PKI_CRL_MAX, &crl, &crllen, e);
    if (rc == PX_OK)
        rc = pki_trust_load_mem(ca, calen, crl, crllen, out, e);
    free(ca);
    free(crl);
    return rc;
}

const uint8_t *pki_trust_ca_fingerprint(const pki_trust *t)
{
    return t->ca_fp;
}

int64_t pki_trust_crl_next_update_ms(const pki_trust *t)
{
    return t->crl_next_ms;
}

/* Why a certificate on the CRL was revoked. */
static const char *revoked_reason(const pki_trust *t, X509 *x)
{
    X509_REVOKED *rev = NULL;
    ASN1_ENUMERATED *why;
    const char *name = "unspecified";
    if (t->crl == NULL || X509_CRL_get0_by_cert(t->crl, &rev, x) != 1 || rev == NULL)
        return name;
    why = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);
    if (why != NULL)
        name = pki_reason_name((int)ASN1_ENUMERATED_get(why));
    ASN1_ENUMERATED_free(why);
    return name;
}

static int chain_error(const pki_trust *t, X509 *x, int err, px_error *e)
{
    char when[32];
    switch (err) {
    case X509_V_ERR_CERT_REVOKED:
        return px_error_set(e, PX_EPERM, "certificate revoked (%s)", revoked_reason(t, x));
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        return px_error_set(e, PX_EPERM, "certificate not issued by this CA");
    case X509_V_ERR_CERT_HAS_EXPIRED:
        px_time_iso8601(pki_asn1_time_ms(X509_get0_notAfter(x)), when, sizeof when);
        return px_error_set(e, PX_EPERM, "certificate expired (%s)", when);
    case X509_V_ERR_CERT_NOT_YET_VALID:
        return px_error_set(e, PX_EPERM, "certificate not yet valid");
    case X509_V_ERR_CRL_HAS_EXPIRED:
        return px_error_set(e, PX_EPERM, "the CRL is out of date: fetch a fresh one from the CA");
    case X509_V_ERR_CRL_NOT_YET_VALID:
        return px_error_set(e, PX_EPERM, "the CRL is not yet valid (clock?)");
    case X509_V_ERR_UNABLE_TO_GET_CRL: return px_error_set(e, PX_EPERM, "no CRL for this CA");
    default:
        return px_error_set(e, PX_EPERM, "certificate does not verify: %s",
                            X509_verify_cert_error_string(err));
    }
}

int pki_trust_verify(const pki_trust *t, const uint8_t *cert, size_t n, pki_role role,
                     pki_purpose purpose, int64_t now_ms, pki_cert_info *info, px_error *e)
{
    X509 *x = pki_x509_parse(cert, n, e);
    X509_STORE_CTX *ctx = NULL;
    pki_cert_info ci;
    int rc = x ? PX_OK : PX_EFORMAT;
    if (rc == PX_OK && t->crl == NULL)
        rc = px_error_set(e, PX_EPERM, "no CRL to check the certificate against");
    if (rc == PX_OK &&
        ((ctx = X509_STORE_CTX_new()) == NULL || X509_STORE_CTX_init(ctx, t->store, x, NULL) != 1))
        rc = pki_ossl_fail(e, PX_ECRYPTO, "certificate check");
    if (rc == PX_OK) {
        X509_VERIFY_PARAM *vp = X509_STORE_CTX_get0_param(ctx);
        X509_VERIFY_PARAM_set_flags(vp, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_X509_STRICT);
        X509_VERIFY_PARAM_set_time(vp, (time_t)(now_ms / 1000));
        if (X509_verify_cert(ctx) != 1)
            rc = chain_error(t, x, X509_STORE_CTX_get_error(ctx), e);
    }
    if (rc == PX_OK && (rc = pki_x509_info(x, &ci, e)) != PX_OK)
        rc = rc == PX_EFORMAT ? PX_EPERM : rc;
    if (rc == PX_OK && ci.role != role)
        rc = px_error_set(e, PX_EPERM, "certificate %s: role is %s, expected %s", ci.cn,
                          pki_role_name(ci.role), pki_role_name(role));
    if (rc == PX_OK && ci.purpose != purpose)
        rc = px_error_set(e, PX_EPERM, "certificate %s: a %s certificate, expected %s", ci.cn,
                          pki_purpose_name(ci.purpose), pki_purpose_name(purpose));
    if (rc == PX_OK && info != NULL)
        *info = ci;
    X509_STORE_CTX_free(ctx);
    X509_free(x);
    ERR_clear_error();
    return rc;
}
