/* mac.c: ISO 9797-1 MAC algorithms 1 and 3, the UnionPay ECB MAC and CMAC (EVP_MAC). */
#include "crypto/mac.h"
#include "crypto/crypto_int.h"
#include "lib/hex.h"
#include "lib/str.h"

#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define SCRATCH 256 /* CBC output is discarded through this buffer, a chunk at a time */

size_t crypto_mac_len(crypto_mac_alg alg)
{
    switch (alg) {
    case CRYPTO_MAC_X919:
    case CRYPTO_MAC_ISO9797_1:
    case CRYPTO_MAC_CUP_ECB:
    case CRYPTO_MAC_TDES_CMAC: return 8;
    case CRYPTO_MAC_PBOC: return 4;
    case CRYPTO_MAC_AES_CMAC: return 16;
    }
    return 0;
}

int crypto_mac_alg_from_name(const char *name, crypto_mac_alg *out)
{
    static const struct {
        const char *name;
        crypto_mac_alg alg;
    } names[] = {
        {"x919", CRYPTO_MAC_X919},         {"iso9797-1", CRYPTO_MAC_ISO9797_1},
        {"pboc", CRYPTO_MAC_PBOC},         {"cup-ecb", CRYPTO_MAC_CUP_ECB},
        {"aes-cmac", CRYPTO_MAC_AES_CMAC}, {"tdes-cmac", CRYPTO_MAC_TDES_CMAC},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].alg;
            return PX_OK;
        }
    return PX_ENOTFOUND;
}

/* DES for an 8-byte key, TDES for 16/24; 0 for anything else. */
static crypto_alg des_alg_for(size_t keylen)
{
    return keylen == 8 ? CRYPTO_DES : (keylen == 16 || keylen == 24) ? CRYPTO_TDES : 0;
}

/*
 * ISO 9797-1:2011 MAC algorithm 1 core: CBC with a zero IV over the data padded by method 1
 * (zeros; an empty string becomes one zero block) or method 2 (80 then zeros); out gets the
 * last cipher block. The data is streamed through a small buffer: no allocation by size.
 */
static int cbc_mac(crypto_alg alg, const uint8_t *key, size_t keylen, const uint8_t *data, size_t n,
                   int pad_method, uint8_t out[8], px_error *e)
{
    static const uint8_t iv[8];
    uint8_t scratch[SCRATCH], last[8] = {0};
    uint8_t k[CRYPTO_KEY_MAX];
    size_t klen = 0, full = n - n % 8, rest = n % 8;
    int outl = 0, ok;
    const EVP_CIPHER *c = crypto_int_cipher(alg, CRYPTO_CBC, keylen);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (c == NULL || ctx == NULL || crypto_int_expand_key(alg, key, keylen, k, &klen) != PX_OK) {
        EVP_CIPHER_CTX_free(ctx);
        return px_error_set(e, PX_ECRYPTO, "mac: cipher not available");
    }
    ok = EVP_EncryptInit_ex2(ctx, c, k, iv, NULL) == 1 && EVP_CIPHER_CTX_set_padding(ctx, 0) == 1;
    OPENSSL_cleanse(k, sizeof k);
    for (size_t off = 0; ok && off < full; off += SCRATCH) {
        size_t chunk = full - off < SCRATCH ? full - off : SCRATCH;
        ok = EVP_EncryptUpdate(ctx, scratch, &outl, data + off, (int)chunk) == 1;
        if (ok)
            memcpy(out, scratch + chunk - 8, 8);
    }
    if (ok && (rest > 0 || pad_method == 2 || n == 0)) {
        if (rest > 0)
            memcpy(last, data + full, rest);
        if (pad_method == 2)
            last[rest] = 0x80;
        ok = EVP_EncryptUpdate(ctx, out, &outl, last, 8) == 1;
    }
    EVP_CIPHER_CTX_free(ctx);
    OPENSSL_cleanse(scratch, sizeof scratch);
    OPENSSL_cleanse(last, sizeof last);
    return ok ? PX_OK : px_error_set(e, PX_ECRYPTO, "mac: CBC-MAC failed");
}

/* ISO 9797-1 MAC algorithm 3 (ANSI X9.19): CBC-MAC under K, then D(K') and E(K) on the end. */
static int mac_x919(const uint8_t *key, size_t keylen, const uint8_t *data, size_t n,
                    uint8_t out[8], px_error *e)
{
    if (keylen != 16)
        return px_error_set(e, PX_EINVAL, "key: x919 needs a 16-byte key, got %zu", keylen);
    int rc = cbc_mac(CRYPTO_DES, key, 8, data, n, 1, out, e);
    if (rc == PX_OK)
        rc = crypto_decrypt(CRYPTO_DES, CRYPTO_ECB, key + 8, 8, NULL, out, 8, out, e);
    if (rc == PX_OK)
        rc = crypto_encrypt(CRYPTO_DES, CRYPTO_ECB, key, 8, NULL, out, 8, out, e);
    return rc;
}

/*
 * China UnionPay POS terminal "ECB" MAC: XOR the zero-padded 8-byte blocks; expand the
 * result to 16 upper-case hex characters; E(K, first 8) XOR last 8; E(K, that); expand to
 * hex and keep the first 8 characters. DES or TDES by key length.
 */
static int mac_cup_ecb(const uint8_t *key, size_t keylen, const uint8_t *data, size_t n,
                       uint8_t out[8], px_error *e)
{
    crypto_alg alg = des_alg_for(keylen);
    uint8_t x[8] = {0}, t[8];
    char hex[17];
    if (alg == 0)
        return px_error_set(e, PX_EINVAL, "key: cup-ecb needs an 8, 16 or 24-byte key, got %zu",
                            keylen);
    for (size_t i = 0; i < n; i++)
        x[i % 8] ^= data[i];
    px_hex_encode(x, 8, hex);
    int rc = crypto_encrypt(alg, CRYPTO_ECB, key, keylen, NULL, (const uint8_t *)hex, 8, t, e);
    if (rc == PX_OK) {
        crypto_int_xor(t, (const uint8_t *)hex + 8, 8);
        rc = crypto_encrypt(alg, CRYPTO_ECB, key, keylen, NULL, t, 8, t, e);
    }
    if (rc == PX_OK) {
        px_hex_encode(t, 8, hex);
        memcpy(out, hex, 8);
    }
    OPENSSL_cleanse(x, sizeof x);
    OPENSSL_cleanse(t, sizeof t);
    OPENSSL_cleanse(hex, sizeof hex);
    return rc;
}

/* NIST SP 800-38B CMAC through EVP_MAC "CMAC" over d1 || d2; 2-key TDES runs as K1 K2 K1. */
int crypto_int_cmac2(crypto_alg alg, const uint8_t *key, size_t keylen, const uint8_t *d1,
                     size_t n1, const uint8_t *d2, size_t n2, uint8_t *mac, size_t maccap,
                     size_t *maclen, px_error *e)
{
    uint8_t k[CRYPTO_KEY_MAX];
    size_t klen = 0, outl = 0, bs = crypto_block_size(alg);
    if ((alg != CRYPTO_TDES && alg != CRYPTO_AES) || !crypto_key_len_is_valid(alg, keylen))
        return px_error_set(e, PX_EINVAL, "key: %zu bytes is not a valid %s CMAC key length",
                            keylen, crypto_int_alg_name(alg));
    if (maccap < bs)
        return px_error_set(e, PX_ETOOBIG, "mac: output buffer too small");
    const EVP_CIPHER *c = crypto_int_cipher(alg, CRYPTO_CBC, keylen);
    EVP_MAC *m = crypto_int_cmac();
    EVP_MAC_CTX *ctx = m != NULL ? EVP_MAC_CTX_new(m) : NULL;
    if (c == NULL || ctx == NULL) {
        EVP_MAC_CTX_free(ctx);
        return px_error_set(e, PX_ECRYPTO, "mac: CMAC not available");
    }
    crypto_int_expand_key(alg, key, keylen, k, &klen);
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER,
                                                 (char *)EVP_CIPHER_get0_name(c), 0);
    params[1] = OSSL_PARAM_construct_end();
    int ok = EVP_MAC_init(ctx, k, klen, params) == 1 &&
             (n1 == 0 || EVP_MAC_update(ctx, d1, n1) == 1) &&
             (n2 == 0 || EVP_MAC_update(ctx, d2, n2) == 1) &&
             EVP_MAC_final(ctx, mac, &outl, maccap) == 1 && outl == bs;
    OPENSSL_cleanse(k, sizeof k);
    EVP_MAC_CTX_free(ctx);
    if (!ok)
        return px_error_set(e, PX_ECRYPTO, "mac: CMAC failed");
    *maclen = outl;
    return PX_OK;
}

int crypto_cmac(crypto_alg alg, const uint8_t *key, size_t keylen, const uint8_t *data, size_t n,
                uint8_t *mac, size_t maccap, size_t *maclen, px_error *e)
{
    return crypto_int_cmac2(alg, key, keylen, data, n, NULL, 0, mac, maccap, maclen, e);
}

int crypto_mac(crypto_mac_alg alg, const uint8_t *key, size_t keylen, const uint8_t *data, size_t n,
               uint8_t *mac, size_t maccap, size_t *maclen, px_error *e)
{
    uint8_t block[8];
    size_t len = crypto_mac_len(alg);
    int rc;
    if (len == 0)
        return px_error_set(e, PX_EINVAL, "alg: unknown MAC algorithm");
    if (key == NULL || (data == NULL && n > 0))
        return px_error_set(e, PX_EINVAL, "mac: missing key or data");
    if (maccap < len)
        return px_error_set(e, PX_ETOOBIG, "mac: output buffer too small");
    switch (alg) {
    case CRYPTO_MAC_AES_CMAC:
        return crypto_cmac(CRYPTO_AES, key, keylen, data, n, mac, maccap, maclen, e);
    case CRYPTO_MAC_TDES_CMAC:
        return crypto_cmac(CRYPTO_TDES, key, keylen, data, n, mac, maccap, maclen, e);
    case CRYPTO_MAC_X919: rc = mac_x919(key, keylen, data, n, block, e); break;
    case CRYPTO_MAC_CUP_ECB: rc = mac_cup_ecb(key, keylen, data, n, block, e); break;
    default: /* ISO 9797-1 algorithm 1, padding method 1 (plain) or 2 (PBOC) */
        if (des_alg_for(keylen) == 0)
            return px_error_set(e, PX_EINVAL, "key: %zu bytes; need 8 (DES), 16 or 24 (TDES)",
                                keylen);
        rc = cbc_mac(des_alg_for(keylen), key, keylen, data, n, alg == CRYPTO_MAC_PBOC ? 2 : 1,
                     block, e);
        break;
    }
    if (rc == PX_OK) {
        memcpy(mac, block, len);
        *maclen = len;
    }
    OPENSSL_cleanse(block, sizeof block);
    return rc;
}

int crypto_mac_verify(crypto_mac_alg alg, const uint8_t *key, size_t keylen, const uint8_t *data,
                      size_t n, const uint8_t *mac, size_t maclen, px_error *e)
{
    uint8_t full[CRYPTO_MAC_MAX];
    size_t fl = 0;
    int rc = crypto_mac(alg, key, keylen, data, n, full, sizeof full, &fl, e);
    if (rc != PX_OK)
        return rc;
    if (maclen < 4 || maclen > fl)
        return px_error_set(e, PX_EINVAL, "mac: %zu bytes is not a valid MAC length (4..%zu)",
                            maclen, fl);
    rc = px_ct_equal(full, mac, maclen) ? PX_OK
                                        : px_error_set(e, PX_EAUTH, "mac: MAC does not verify");
    OPENSSL_cleanse(full, sizeof full);
    return rc;
}
