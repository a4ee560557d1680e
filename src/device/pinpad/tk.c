/*
 * tk.c: the PIN pad's side of remote key loading (tk.h): device key and certificate, TK
 * export wrapped to a certified KMS key, and the proof of TK possession at key download.
 *
 * The wrap is the sender's half of docs/hsm.md "Receiving a key under our public key"
 * (the KMS's HSM does the other half in hsm_key_import_ecdh):
 *   Z = x(e * Q), KEK = HKDF-SHA-256(Z, no salt, info = "possum.key-wrap.v1" || E || Q),
 *   C = AES-256 key wrap (RFC 3394) of TK under KEK.
 * OpenSSL EVP throughout (crypto/ has no public-key primitives yet).
 */
#include "device/pinpad/tk.h"
#include "device/pinpad/pinpad_int.h"
#include "crypto/crypto.h"
#include "crypto/mac.h"
#include "lib/str.h"
#include "lib/time.h"
#include "pki/tkenv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define DEVKEY_LABEL "possum pinpad device key v1"
#define DEVKEY_VERSION 1
#define DEVKEY_DER_MAX 256
#define WRAP_INFO "possum.key-wrap.v1"

/* dir-of-the-key-store/name */
static int file_beside(const pinpad *p, const char *name, char out[PX_PATH_MAX], px_error *e)
{
    const char *slash = strrchr(p->store_path, '/');
    int n = slash ? snprintf(out, PX_PATH_MAX, "%.*s/%s", (int)(slash - p->store_path),
                             p->store_path, name)
                  : snprintf(out, PX_PATH_MAX, "%s", name);
    if (n < 0 || n >= PX_PATH_MAX)
        return px_error_set(e, PX_ETOOBIG, "PIN pad: path too long");
    return PX_OK;
}

static int ossl_fail(px_error *e, int code, const char *what)
{
    char why[160] = "";
    unsigned long err = ERR_peek_last_error();
    if (err != 0)
        ERR_error_string_n(err, why, sizeof why);
    ERR_clear_error();
    return px_error_set(e, code, "%s%s%s", what, why[0] ? ": " : "", why);
}

/* ---- the device key, sealed: version (1) || nonce (12) || ciphertext || tag (16) ---- */

static int devkey_save(pinpad *p, EVP_PKEY *k, px_error *e)
{
    uint8_t der[DEVKEY_DER_MAX], file[1 + PP_NONCE + DEVKEY_DER_MAX + PP_TAG], key[PP_AEAD_KEY];
    unsigned char *w = der;
    char path[PX_PATH_MAX];
    int n = i2d_PrivateKey(k, NULL), rc;
    if (n <= 0 || n > DEVKEY_DER_MAX || i2d_PrivateKey(k, &w) != n)
        return ossl_fail(e, PX_ECRYPTO, "device key: cannot encode");
    file[0] = DEVKEY_VERSION;
    rc = crypto_random(file + 1, PP_NONCE, e);
    if (rc == PX_OK)
        rc = pp_derive(p, DEVKEY_LABEL, NULL, 0, key, e);
    if (rc == PX_OK)
        rc = pp_gcm_seal(key, file + 1, file, 1, der, (size_t)n, file + 1 + PP_NONCE,
                         file + 1 + PP_NONCE + n, e);
    if (rc == PX_OK && (rc = file_beside(p, TK_DEVICE_KEY_FILE, path, e)) == PX_OK)
        rc = pki_write_file(path, file, 1 + PP_NONCE + (size_t)n + PP_TAG, 0600, e);
    OPENSSL_cleanse(der, sizeof der);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

static int devkey_load(pinpad *p, EVP_PKEY **out, px_error *e)
{
    char path[PX_PATH_MAX], *file = NULL;
    uint8_t der[DEVKEY_DER_MAX], key[PP_AEAD_KEY];
    size_t len = 0, n;
    int rc = file_beside(p, TK_DEVICE_KEY_FILE, path, e);
    *out = NULL;
    if (rc == PX_OK &&
        (rc = pki_read_file(path, 1 + PP_NONCE + DEVKEY_DER_MAX + PP_TAG, &file, &len, e)) != PX_OK)
        return rc == PX_ENOTFOUND
                   ? px_error_set(e, PX_ENOTFOUND, "PIN pad %s has no device key", p->serial)
                   : rc;
    if (rc == PX_OK && (len < 1 + PP_NONCE + PP_TAG + 1 || file[0] != DEVKEY_VERSION))
        rc = px_error_set(e, PX_EFORMAT, "%s: not a sealed device key", path);
    n = rc == PX_OK ? len - 1 - PP_NONCE - PP_TAG : 0;
    if (rc == PX_OK)
        rc = pp_derive(p, DEVKEY_LABEL, NULL, 0, key, e);
    if (rc == PX_OK &&
        pp_gcm_open(key, (uint8_t *)file + 1, (uint8_t *)file, 1, (uint8_t *)file + 1 + PP_NONCE, n,
                    der, (uint8_t *)file + 1 + PP_NONCE + n, e) != PX_OK)
        rc = px_error_set(e, PX_EAUTH, "%s: does not authenticate (tampered, or another PIN pad's)",
                          path);
    if (rc == PX_OK) {
        const unsigned char *r = der;
        *out = d2i_PrivateKey(EVP_PKEY_EC, NULL, &r, (long)n);
        if (*out == NULL)
            rc = ossl_fail(e, PX_EFORMAT, "device key: does not decode");
    }
    OPENSSL_cleanse(der, sizeof der);
    OPENSSL_cleanse(key, sizeof key);
    free(file);
    return rc;
}

static int point_of(EVP_PKEY *k, uint8_t point[PKI_EC_POINT_LEN], px_error *e)
{
    size_t len = 0;
    if (EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, point, PKI_EC_POINT_LEN,
                                        &len) != 1 ||
        len != PKI_EC_POINT_LEN)
        return ossl_fail(e, PX_ECRYPTO, "device key: public point");
    return PX_OK;
}

static int csr_of(pinpad *p, EVP_PKEY *k, char **csr_pem, px_error *e)
{
    X509_REQ *req = X509_REQ_new();
    BIO *b = BIO_new(BIO_s_mem());
    char cn[PX_PKI_CN_MAX], *data;
    long len;
    int rc = pki_cn_make(PKI_ROLE_PINPAD, p->serial, cn, e);
    *csr_pem = NULL;
    if (rc == PX_OK &&
        (req == NULL || b == NULL || X509_REQ_set_pubkey(req, k) != 1 ||
         X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
                                    (const unsigned char *)cn, -1, -1, 0) != 1 ||
         X509_REQ_sign(req, k, EVP_sha256()) <= 0 || PEM_write_bio_X509_REQ(b, req) != 1))
        rc = ossl_fail(e, PX_ECRYPTO, "device key: certificate request");
    if (rc == PX_OK) {
        len = BIO_get_mem_data(b, &data);
        *csr_pem = malloc((size_t)len + 1);
        if (*csr_pem == NULL)
            rc = px_error_set(e, PX_ENOMEM, "device key: out of memory");
        else {
            memcpy(*csr_pem, data, (size_t)len);
            (*csr_pem)[len] = 0;
        }
    }
    BIO_free(b);
    X509_REQ_free(req);
    return rc;
}

int tk_device_key_create(pinpad *p, char **csr_pem, px_error *e)
{
    char path[PX_PATH_MAX];
    EVP_PKEY *k;
    int rc = file_beside(p, TK_DEVICE_KEY_FILE, path, e);
    *csr_pem = NULL;
    if (rc != PX_OK)
        return rc;
    if (access(path, F_OK) == 0)
        return px_error_set(e, PX_EEXIST, "PIN pad %s already has a device key", p->serial);
    if (!pki_name_is_valid(p->serial) || strlen(p->serial) > PKI_TKENV_SERIAL_MAX)
        return px_error_set(e, PX_EINVAL,
                            "PIN pad serial %s: not usable in a certificate "
                            "(1 to 32 of A-Z a-z 0-9 . _ - @)",
                            p->serial);
    k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (k == NULL)
        return ossl_fail(e, PX_ECRYPTO, "device key: generation");
    rc = devkey_save(p, k, e);
    if (rc == PX_OK)
        rc = csr_of(p, k, csr_pem, e);
    EVP_PKEY_free(k);
    return rc;
}

int tk_device_csr(pinpad *p, char **csr_pem, px_error *e)
{
    EVP_PKEY *k = NULL;
    int rc = devkey_load(p, &k, e);
    *csr_pem = NULL;
    if (rc == PX_OK)
        rc = csr_of(p, k, csr_pem, e);
    EVP_PKEY_free(k);
    return rc;
}

int tk_device_install(pinpad *p, const char *cert_pem, const char *ca_pem, const char *crl_pem,
                      px_error *e)
{
    pki_trust *t = NULL;
    pki_cert_info ci;
    EVP_PKEY *k = NULL;
    uint8_t point[PKI_EC_POINT_LEN];
    char path[PX_PATH_MAX];
    int rc = devkey_load(p, &k, e);
    if (rc == PX_OK)
        rc = pki_trust_load_mem(ca_pem, strlen(ca_pem), crl_pem, crl_pem ? strlen(crl_pem) : 0, &t,
                                e);
    if (rc == PX_OK && crl_pem != NULL)
        rc = pki_trust_verify(t, (const uint8_t *)cert_pem, strlen(cert_pem), PKI_ROLE_PINPAD,
                              PKI_PURPOSE_DEVICE, px_now_ms(), &ci, e);
    else if (rc == PX_OK &&
             (rc = pki_cert_parse((const uint8_t *)cert_pem, strlen(cert_pem), &ci, e)) == PX_OK &&
             (ci.role != PKI_ROLE_PINPAD || ci.purpose != PKI_PURPOSE_DEVICE))
        rc = px_error_set(e, PX_EPERM, "device certificate: %s is not a PIN pad's", ci.cn);
    if (rc == PX_OK && strcmp(ci.name, p->serial) != 0)
        rc = px_error_set(e, PX_EPERM, "device certificate: for %s, this PIN pad is %s", ci.name,
                          p->serial);
    if (rc == PX_OK && (rc = point_of(k, point, e)) == PX_OK &&
        memcmp(point, ci.point, sizeof point) != 0)
        rc = px_error_set(e, PX_EPERM, "device certificate: certifies another key");
    if (rc == PX_OK && (rc = file_beside(p, TK_CA_FILE, path, e)) == PX_OK)
        rc = pki_write_file(path, ca_pem, strlen(ca_pem), 0644, e);
    if (rc == PX_OK && (rc = file_beside(p, TK_DEVICE_CERT_FILE, path, e)) == PX_OK)
        rc = pki_write_file(path, cert_pem, strlen(cert_pem), 0644, e);
    pki_trust_free(t);
    EVP_PKEY_free(k);
    return rc;
}

int tk_device_is_ready(pinpad *p)
{
    static const char *const names[] = {TK_DEVICE_KEY_FILE, TK_DEVICE_CERT_FILE, TK_CA_FILE};
    char path[PX_PATH_MAX];
    for (size_t i = 0; i < 3; i++)
        if (file_beside(p, names[i], path, NULL) != PX_OK || access(path, R_OK) != 0)
            return 0;
    return 1;
}

/* ---- export ---------------------------------------------------------------------------- */

/* C = AES-256-wrap(HKDF(ECDH(e, Q)), key); eph = E. */
static int wrap_to(const uint8_t q[PKI_EC_POINT_LEN], const uint8_t *key, size_t keylen,
                   uint8_t eph[PKI_EC_POINT_LEN], uint8_t *c, size_t *clen, px_error *e)
{
    uint8_t z[32], kek[32], info[sizeof WRAP_INFO - 1 + 2 * PKI_EC_POINT_LEN];
    size_t zl = sizeof z, el = 0;
    int l1 = 0, l2 = 0, ok;
    EVP_PKEY *ep = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), *peer = pki_pkey_from_point(q);
    EVP_PKEY_CTX *dc = ep && peer ? EVP_PKEY_CTX_new_from_pkey(NULL, ep, NULL) : NULL;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    ok = dc != NULL && kc != NULL && x != NULL &&
         EVP_PKEY_get_octet_string_param(ep, OSSL_PKEY_PARAM_PUB_KEY, eph, PKI_EC_POINT_LEN, &el) ==
             1 &&
         el == PKI_EC_POINT_LEN && EVP_PKEY_derive_init(dc) == 1 &&
         EVP_PKEY_derive_set_peer(dc, peer) == 1 && EVP_PKEY_derive(dc, z, &zl) == 1 &&
         zl == sizeof z;
    if (ok) {
        OSSL_PARAM p[4];
        memcpy(info, WRAP_INFO, sizeof WRAP_INFO - 1);
        memcpy(info + sizeof WRAP_INFO - 1, eph, PKI_EC_POINT_LEN);
        memcpy(info + sizeof WRAP_INFO - 1 + PKI_EC_POINT_LEN, q, PKI_EC_POINT_LEN);
        p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
        p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, z, sizeof z);
        p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof info);
        p[3] = OSSL_PARAM_construct_end();
        EVP_CIPHER_CTX_set_flags(x, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
        ok = EVP_KDF_derive(kc, kek, sizeof kek, p) == 1 &&
             EVP_EncryptInit_ex(x, EVP_aes_256_wrap(), NULL, kek, NULL) == 1 &&
             EVP_EncryptUpdate(x, c, &l1, key, (int)keylen) == 1 &&
             EVP_EncryptFinal_ex(x, c + l1, &l2) == 1;
    }
    OPENSSL_cleanse(z, sizeof z);
    OPENSSL_cleanse(kek, sizeof kek);
    EVP_CIPHER_CTX_free(x);
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);
    EVP_PKEY_CTX_free(dc);
    EVP_PKEY_free(ep);
    EVP_PKEY_free(peer);
    if (!ok)
        return ossl_fail(e, PX_ECRYPTO, "TK wrap");
    *clen = (size_t)(l1 + l2);
    return PX_OK;
}

static int sign_body(EVP_PKEY *k, const uint8_t *body, size_t n, uint8_t *sig, size_t *siglen,
                     px_error *e)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
             EVP_DigestSignUpdate(md, PKI_TKENV_SIG_LABEL, strlen(PKI_TKENV_SIG_LABEL)) == 1 &&
             EVP_DigestSignUpdate(md, body, n) == 1 && EVP_DigestSignFinal(md, sig, siglen) == 1;
    EVP_MD_CTX_free(md);
    return ok ? PX_OK : ossl_fail(e, PX_ECRYPTO, "TK envelope: signature");
}

/* The PIN pad's own trust anchor with the CRL the operator terminal brought. */
static int trust_of(pinpad *p, const char *crl_pem, pki_trust **t, px_error *e)
{
    char path[PX_PATH_MAX], *ca = NULL;
    size_t len = 0;
    int rc = file_beside(p, TK_CA_FILE, path, e);
    if (rc == PX_OK && (rc = pki_read_file(path, PX_PKI_PEM_MAX, &ca, &len, e)) != PX_OK)
        rc = rc == PX_ENOTFOUND ? px_error_set(e, PX_ESTATE,
                                               "PIN pad %s has no CA certificate "
                                               "(not personalised)",
                                               p->serial)
                                : rc;
    if (rc == PX_OK && crl_pem == NULL)
        rc = px_error_set(e, PX_EINVAL, "TK export: the CA's current CRL is required");
    if (rc == PX_OK)
        rc = pki_trust_load_mem(ca, len, crl_pem, strlen(crl_pem), t, e);
    free(ca);
    return rc;
}

static int read_device_cert(pinpad *p, uint8_t **der, size_t *derlen, px_error *e)
{
    char path[PX_PATH_MAX], *pem = NULL;
    size_t len = 0;
    int rc = file_beside(p, TK_DEVICE_CERT_FILE, path, e);
    *der = NULL;
    if (rc == PX_OK && (rc = pki_read_file(path, PX_PKI_PEM_MAX, &pem, &len, e)) != PX_OK)
        rc = rc == PX_ENOTFOUND ? px_error_set(e, PX_ESTATE,
                                               "PIN pad %s has no device "
                                               "certificate",
                                               p->serial)
                                : rc;
    if (rc == PX_OK)
        rc = pki_cert_pem_to_der(pem, len, der, derlen, e);
    free(pem);
    return rc;
}

int tk_export(pinpad *p, const char *kms_cert_pem, const char *crl_pem, uint8_t *out, size_t cap,
              size_t *len, pki_cert_info *kms, char kcv_hex[PINPAD_KCV_HEX], px_error *e)
{
    pki_trust *t = NULL;
    pki_cert_info ki;
    pki_tkenv env;
    EVP_PKEY *dev = NULL;
    uint8_t *der = NULL, sig[PKI_TKENV_SIG_MAX + 8];
    size_t derlen = 0, body = 0, siglen = sizeof sig, kcvlen = 0;
    char kcv[PINPAD_KCV_HEX];
    int rc;
    *len = 0;
    if (kms_cert_pem == NULL)
        return px_error_set(e, PX_EINVAL, "TK export: no KMS certificate");
    rc = trust_of(p, crl_pem, &t, e);
    if (rc == PX_OK &&
        (rc = pki_trust_verify(t, (const uint8_t *)kms_cert_pem, strlen(kms_cert_pem), PKI_ROLE_KMS,
                               PKI_PURPOSE_KEY_AGREEMENT, px_now_ms(), &ki, e)) != PX_OK)
        px_error_prefix(e, "TK export refused: KMS ");
    if (rc == PX_OK)
        rc = devkey_load(p, &dev, e);
    if (rc == PX_OK)
        rc = read_device_cert(p, &der, &derlen, e);
    /* every check passed: a fresh TK for this KMS only */
    if (rc == PX_OK)
        rc = pinpad_tk_generate(p, kcv, e);
    memset(&env, 0, sizeof env);
    if (rc == PX_OK) {
        px_strlcpy(env.serial, p->serial, sizeof env.serial);
        memcpy(env.kms_fp, ki.fingerprint, PKI_FP_LEN);
        rc = crypto_kcv(CRYPTO_TDES, p->slot[PINPAD_TK].key, PINPAD_KEY_LEN, env.tk_kcv,
                        sizeof env.tk_kcv, &kcvlen, e);
    }
    if (rc == PX_OK)
        rc = wrap_to(ki.point, p->slot[PINPAD_TK].key, PINPAD_KEY_LEN, env.eph, env.wrapped,
                     &env.wrapped_len, e);
    if (rc == PX_OK) {
        env.created_ms = px_now_ms();
        env.device_cert = der;
        env.device_cert_len = derlen;
        rc = pki_tkenv_encode_body(&env, out, cap, &body, e);
    }
    if (rc == PX_OK)
        rc = sign_body(dev, out, body, sig, &siglen, e);
    if (rc == PX_OK)
        rc = pki_tkenv_append_sig(out, cap, body, sig, siglen, len, e);
    if (rc == PX_OK && kms != NULL)
        *kms = ki;
    if (rc == PX_OK && kcv_hex != NULL)
        memcpy(kcv_hex, kcv, PINPAD_KCV_HEX);
    OPENSSL_cleanse(&env, sizeof env);
    free(der);
    EVP_PKEY_free(dev);
    pki_trust_free(t);
    return rc;
}

/* ---- key download ---------------------------------------------------------------------- */

static int session_key(pinpad *p, const uint8_t *session, size_t n, const uint8_t *kcv,
                       uint8_t key[PINPAD_KEY_LEN], px_error *e)
{
    int rc;
    if (!pinpad_has_key(p, PINPAD_TK))
        return px_error_set(e, PX_ESTATE, "PIN pad %s holds no transmission key", p->serial);
    if (n != TK_SESSION_LEN)
        return px_error_set(e, PX_EINVAL, "key download: session key of %zu bytes, expected %d", n,
                            TK_SESSION_LEN);
    rc = crypto_decrypt(CRYPTO_TDES, CRYPTO_ECB, p->slot[PINPAD_TK].key, PINPAD_KEY_LEN, NULL,
                        session, n, key, e);
    if (rc == PX_OK && kcv != NULL &&
        crypto_kcv_verify(CRYPTO_TDES, key, PINPAD_KEY_LEN, kcv, 3, NULL) != PX_OK)
        rc = px_error_set(e, PX_EAUTH,
                          "key download: the session key does not match its check "
                          "value: this PIN pad's TK is not the one the KMS holds");
    if (rc != PX_OK)
        OPENSSL_cleanse(key, PINPAD_KEY_LEN);
    return rc;
}

static int mac_with(pinpad *p, const uint8_t *session, size_t n, const uint8_t *kcv,
                    const char *label, const uint8_t *nonce, size_t nonce_len, const char *result,
                    uint8_t mac[TK_MAC_LEN], px_error *e)
{
    uint8_t key[PINPAD_KEY_LEN], data[PKI_KEYLOAD_DATA_MAX], out[CRYPTO_MAC_MAX];
    size_t dlen = 0, mlen = 0;
    int rc = pki_keyload_mac_data(label, p->serial, nonce, nonce_len, result, data, sizeof data,
                                  &dlen, e);
    if (rc == PX_OK)
        rc = session_key(p, session, n, kcv, key, e);
    if (rc == PX_OK)
        rc = crypto_mac(CRYPTO_MAC_TDES_CMAC, key, sizeof key, data, dlen, out, sizeof out, &mlen,
                        e);
    if (rc == PX_OK)
        memcpy(mac, out, TK_MAC_LEN);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

int tk_download_proof(pinpad *p, const uint8_t *session, size_t n, const uint8_t *session_kcv,
                      const uint8_t *nonce, size_t nonce_len, uint8_t mac[TK_MAC_LEN], px_error *e)
{
    return mac_with(p, session, n, session_kcv, TK_PROOF_LABEL, nonce, nonce_len, NULL, mac, e);
}

int tk_result_mac(pinpad *p, const uint8_t *session, size_t n, const uint8_t *nonce,
                  size_t nonce_len, const char *result, uint8_t mac[TK_MAC_LEN], px_error *e)
{
    return mac_with(p, session, n, NULL, TK_RESULT_LABEL, nonce, nonce_len, result, mac, e);
}
