/*
 * aead.c: the PIN pad's at-rest cryptography on OpenSSL 3 EVP: HKDF-SHA256 (RFC 5869) for
 * the device keys and AES-256-GCM (NIST SP 800-38D) for the sealed files. Nothing here is
 * a hand-written cipher; src/crypto has no AEAD or KDF yet (see docs/pinpad.md).
 */
#include "device/pinpad/pinpad_int.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <string.h>

int pp_derive(const pinpad *p, const char *label, const uint8_t *salt, size_t saltlen,
              uint8_t out[PP_AEAD_KEY], px_error *e)
{
    char info[96];
    int n = snprintf(info, sizeof info, "%s|%s", label, p->serial);
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[5], *q = params;
    int ok;
    EVP_KDF_free(kdf);
    if (ctx == NULL || n < 0 || n >= (int)sizeof info) {
        EVP_KDF_CTX_free(ctx);
        return px_error_set(e, PX_ECRYPTO, "pinpad: HKDF not available");
    }
    *q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)p->secret,
                                             sizeof p->secret);
    if (saltlen > 0)
        *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen);
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, (size_t)n);
    *q = OSSL_PARAM_construct_end();
    ok = EVP_KDF_derive(ctx, out, PP_AEAD_KEY, params) == 1;
    EVP_KDF_CTX_free(ctx);
    return ok ? PX_OK : px_error_set(e, PX_ECRYPTO, "pinpad: key derivation failed");
}

/* One GCM pass; enc selects the direction. */
static int gcm(int enc, const uint8_t key[PP_AEAD_KEY], const uint8_t nonce[PP_NONCE],
               const uint8_t *aad, size_t aadlen, const uint8_t *in, size_t n, uint8_t *out,
               uint8_t tag[PP_TAG])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    uint8_t fin[16]; /* GCM's final step writes nothing; a real buffer keeps it defined */
    int len = 0, ok = c != NULL && n <= (size_t)INT32_MAX && aadlen <= (size_t)INT32_MAX;
    ok = ok && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1;
    ok = ok && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, PP_NONCE, NULL) == 1;
    ok = ok && EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) == 1;
    ok = ok && (aadlen == 0 || EVP_CipherUpdate(c, NULL, &len, aad, (int)aadlen) == 1);
    ok = ok && (n == 0 || EVP_CipherUpdate(c, out, &len, in, (int)n) == 1);
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, PP_TAG, tag) == 1;
    ok = ok && EVP_CipherFinal_ex(c, fin, &len) == 1;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, PP_TAG, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok;
}

int pp_gcm_seal(const uint8_t key[PP_AEAD_KEY], const uint8_t nonce[PP_NONCE], const uint8_t *aad,
                size_t aadlen, const uint8_t *in, size_t n, uint8_t *out, uint8_t tag[PP_TAG],
                px_error *e)
{
    if (!gcm(1, key, nonce, aad, aadlen, in, n, out, tag))
        return px_error_set(e, PX_ECRYPTO, "pinpad: AES-GCM encryption failed");
    return PX_OK;
}

int pp_gcm_open(const uint8_t key[PP_AEAD_KEY], const uint8_t nonce[PP_NONCE], const uint8_t *aad,
                size_t aadlen, const uint8_t *in, size_t n, uint8_t *out, const uint8_t tag[PP_TAG],
                px_error *e)
{
    uint8_t t[PP_TAG];
    memcpy(t, tag, PP_TAG);
    if (!gcm(0, key, nonce, aad, aadlen, in, n, out, t)) {
        OPENSSL_cleanse(out, n);
        return px_error_set(e, PX_EAUTH, "does not authenticate");
    }
    return PX_OK;
}
