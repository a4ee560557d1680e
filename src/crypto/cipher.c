/* cipher.c: TDES and AES in ECB and CBC on OpenSSL EVP; reusable key schedules. */
#include "crypto/crypto.h"
#include "crypto/crypto_int.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/* Index of the cached ciphers: [alg slot][mode]. Slots: TDES (DES rides on it), AES-128,
 * AES-192, AES-256. */
enum { SLOT_TDES, SLOT_AES128, SLOT_AES192, SLOT_AES256, SLOT_COUNT };
static EVP_CIPHER *g_cipher[SLOT_COUNT][2];
static EVP_MAC *g_cmac;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void fetch_all(void)
{
    static const char *const names[SLOT_COUNT][2] = {
        {"DES-EDE3-ECB", "DES-EDE3-CBC"},
        {"AES-128-ECB", "AES-128-CBC"},
        {"AES-192-ECB", "AES-192-CBC"},
        {"AES-256-ECB", "AES-256-CBC"},
    };
    for (int s = 0; s < SLOT_COUNT; s++)
        for (int m = 0; m < 2; m++)
            g_cipher[s][m] = EVP_CIPHER_fetch(NULL, names[s][m], NULL);
    g_cmac = EVP_MAC_fetch(NULL, "CMAC", NULL);
}

const EVP_CIPHER *crypto_int_cipher(crypto_alg alg, crypto_mode mode, size_t keylen)
{
    int slot;
    if (!crypto_key_len_is_valid(alg, keylen) || (mode != CRYPTO_ECB && mode != CRYPTO_CBC))
        return NULL;
    pthread_once(&g_once, fetch_all);
    if (alg == CRYPTO_AES)
        slot = keylen == 16 ? SLOT_AES128 : keylen == 24 ? SLOT_AES192 : SLOT_AES256;
    else
        slot = SLOT_TDES;
    return g_cipher[slot][mode == CRYPTO_CBC];
}

EVP_MAC *crypto_int_cmac(void)
{
    pthread_once(&g_once, fetch_all);
    return g_cmac;
}

const char *crypto_int_alg_name(crypto_alg alg)
{
    switch (alg) {
    case CRYPTO_DES: return "DES";
    case CRYPTO_TDES: return "TDES";
    case CRYPTO_AES: return "AES";
    }
    return "unknown algorithm";
}

void crypto_int_xor(uint8_t *a, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        a[i] ^= b[i];
}

int crypto_int_expand_key(crypto_alg alg, const uint8_t *key, size_t keylen,
                          uint8_t out[CRYPTO_KEY_MAX], size_t *outlen)
{
    if (!crypto_key_len_is_valid(alg, keylen))
        return PX_EINVAL;
    if (alg == CRYPTO_DES) {
        for (int i = 0; i < 3; i++)
            memcpy(out + 8 * i, key, 8);
        *outlen = 24;
    } else if (alg == CRYPTO_TDES && keylen == 16) {
        memcpy(out, key, 16);
        memcpy(out + 16, key, 8);
        *outlen = 24;
    } else {
        memcpy(out, key, keylen);
        *outlen = keylen;
    }
    return PX_OK;
}

size_t crypto_block_size(crypto_alg alg)
{
    switch (alg) {
    case CRYPTO_DES:
    case CRYPTO_TDES: return CRYPTO_DES_BLOCK;
    case CRYPTO_AES: return CRYPTO_AES_BLOCK;
    }
    return 0;
}

int crypto_key_len_is_valid(crypto_alg alg, size_t keylen)
{
    switch (alg) {
    case CRYPTO_DES: return keylen == 8;
    case CRYPTO_TDES: return keylen == 16 || keylen == 24;
    case CRYPTO_AES: return keylen == 16 || keylen == 24 || keylen == 32;
    }
    return 0;
}

/* Initialise ctx for alg/mode/key, without padding; enc 1 encrypts, 0 decrypts. */
static int ctx_init(EVP_CIPHER_CTX *ctx, crypto_alg alg, crypto_mode mode, const uint8_t *key,
                    size_t keylen, const uint8_t *iv, int enc, px_error *e)
{
    uint8_t k[CRYPTO_KEY_MAX];
    size_t klen = 0;
    const EVP_CIPHER *c = crypto_int_cipher(alg, mode, keylen);
    if (c == NULL || crypto_int_expand_key(alg, key, keylen, k, &klen) != PX_OK)
        return px_error_set(e, PX_ECRYPTO, "%s cipher not available", crypto_int_alg_name(alg));
    int ok = EVP_CipherInit_ex2(ctx, c, k, mode == CRYPTO_CBC ? iv : NULL, enc, NULL) == 1 &&
             EVP_CIPHER_CTX_set_padding(ctx, 0) == 1;
    OPENSSL_cleanse(k, sizeof k);
    return ok ? PX_OK
              : px_error_set(e, PX_ECRYPTO, "%s key setup failed", crypto_int_alg_name(alg));
}

/* Run n bytes (a whole number of blocks) through an initialised context. */
static int ctx_run(EVP_CIPHER_CTX *ctx, const uint8_t *in, size_t n, uint8_t *out)
{
    int outl = 0;
    if (n == 0)
        return PX_OK;
    if (n > INT_MAX)
        return PX_ETOOBIG;
    if (EVP_CipherUpdate(ctx, out, &outl, in, (int)n) != 1 || (size_t)outl != n)
        return PX_ECRYPTO;
    return PX_OK;
}

/* Shared checks and work of crypto_encrypt / crypto_decrypt. */
static int one_shot(crypto_alg alg, crypto_mode mode, const uint8_t *key, size_t keylen,
                    const uint8_t *iv, const uint8_t *in, size_t n, uint8_t *out, int enc,
                    px_error *e)
{
    size_t bs = crypto_block_size(alg);
    if (bs == 0)
        return px_error_set(e, PX_EINVAL, "alg: unknown cipher");
    if (mode != CRYPTO_ECB && mode != CRYPTO_CBC)
        return px_error_set(e, PX_EINVAL, "mode: must be ECB or CBC");
    if (key == NULL || !crypto_key_len_is_valid(alg, keylen))
        return px_error_set(e, PX_EINVAL, "key: %zu bytes is not a valid %s key length", keylen,
                            crypto_int_alg_name(alg));
    if (n % bs != 0)
        return px_error_set(e, PX_EINVAL, "data: %zu bytes is not a multiple of the %zu-byte block",
                            n, bs);
    if (mode == CRYPTO_CBC && iv == NULL)
        return px_error_set(e, PX_EINVAL, "iv: required for CBC");
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return px_error_set(e, PX_ENOMEM, "out of memory");
    int rc = ctx_init(ctx, alg, mode, key, keylen, iv, enc, e);
    if (rc == PX_OK && ctx_run(ctx, in, n, out) != PX_OK)
        rc = px_error_set(e, PX_ECRYPTO, "%s operation failed", crypto_int_alg_name(alg));
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int crypto_encrypt(crypto_alg alg, crypto_mode mode, const uint8_t *key, size_t keylen,
                   const uint8_t *iv, const uint8_t *in, size_t n, uint8_t *out, px_error *e)
{
    return one_shot(alg, mode, key, keylen, iv, in, n, out, 1, e);
}

int crypto_decrypt(crypto_alg alg, crypto_mode mode, const uint8_t *key, size_t keylen,
                   const uint8_t *iv, const uint8_t *in, size_t n, uint8_t *out, px_error *e)
{
    return one_shot(alg, mode, key, keylen, iv, in, n, out, 0, e);
}

/* ---- reusable key schedules ---- */

enum { KCTX_ECB_ENC, KCTX_ECB_DEC, KCTX_CBC_ENC, KCTX_CBC_DEC, KCTX_COUNT };

struct crypto_key {
    crypto_alg alg;
    size_t block;
    EVP_CIPHER_CTX *ctx[KCTX_COUNT];
};

void crypto_key_free(crypto_key *k)
{
    if (k == NULL)
        return;
    for (int i = 0; i < KCTX_COUNT; i++)
        EVP_CIPHER_CTX_free(k->ctx[i]); /* frees (and cleanses) the key schedule */
    OPENSSL_cleanse(k, sizeof *k);
    free(k);
}

int crypto_key_new(crypto_alg alg, const uint8_t *key, size_t keylen, crypto_key **out, px_error *e)
{
    static const uint8_t zero_iv[CRYPTO_BLOCK_MAX];
    *out = NULL;
    if (key == NULL || !crypto_key_len_is_valid(alg, keylen))
        return px_error_set(e, PX_EINVAL, "key: %zu bytes is not a valid %s key length", keylen,
                            crypto_int_alg_name(alg));
    crypto_key *k = calloc(1, sizeof *k);
    if (k == NULL)
        return px_error_set(e, PX_ENOMEM, "out of memory");
    k->alg = alg;
    k->block = crypto_block_size(alg);
    int rc = PX_OK;
    for (int i = 0; i < KCTX_COUNT && rc == PX_OK; i++) {
        k->ctx[i] = EVP_CIPHER_CTX_new();
        if (k->ctx[i] == NULL)
            rc = px_error_set(e, PX_ENOMEM, "out of memory");
        else
            rc = ctx_init(k->ctx[i], alg, i < KCTX_CBC_ENC ? CRYPTO_ECB : CRYPTO_CBC, key, keylen,
                          zero_iv, i == KCTX_ECB_ENC || i == KCTX_CBC_ENC, e);
    }
    if (rc != PX_OK) {
        crypto_key_free(k);
        return rc;
    }
    *out = k;
    return PX_OK;
}

int crypto_key_dup(const crypto_key *k, crypto_key **out, px_error *e)
{
    *out = NULL;
    crypto_key *d = calloc(1, sizeof *d);
    if (d == NULL)
        return px_error_set(e, PX_ENOMEM, "out of memory");
    d->alg = k->alg;
    d->block = k->block;
    for (int i = 0; i < KCTX_COUNT; i++) {
        d->ctx[i] = EVP_CIPHER_CTX_new();
        if (d->ctx[i] == NULL || EVP_CIPHER_CTX_copy(d->ctx[i], k->ctx[i]) != 1) {
            crypto_key_free(d);
            return px_error_set(e, PX_ECRYPTO, "copying a key schedule failed");
        }
    }
    *out = d;
    return PX_OK;
}

crypto_alg crypto_key_alg(const crypto_key *k)
{
    return k->alg;
}

size_t crypto_key_block_size(const crypto_key *k)
{
    return k->block;
}

/* One ECB or CBC pass with a prepared context; CBC gets its IV set first. */
static int key_run(crypto_key *k, int which, const uint8_t *iv, const uint8_t *in, size_t n,
                   uint8_t *out)
{
    if (k == NULL || n % k->block != 0)
        return PX_EINVAL;
    if (which >= KCTX_CBC_ENC) {
        if (iv == NULL)
            return PX_EINVAL;
        if (EVP_CipherInit_ex2(k->ctx[which], NULL, NULL, iv, -1, NULL) != 1)
            return PX_ECRYPTO;
    }
    return ctx_run(k->ctx[which], in, n, out);
}

int crypto_key_ecb_encrypt(crypto_key *k, const uint8_t *in, size_t n, uint8_t *out)
{
    return key_run(k, KCTX_ECB_ENC, NULL, in, n, out);
}

int crypto_key_ecb_decrypt(crypto_key *k, const uint8_t *in, size_t n, uint8_t *out)
{
    return key_run(k, KCTX_ECB_DEC, NULL, in, n, out);
}

int crypto_key_cbc_encrypt(crypto_key *k, const uint8_t *iv, const uint8_t *in, size_t n,
                           uint8_t *out)
{
    return key_run(k, KCTX_CBC_ENC, iv, in, n, out);
}

int crypto_key_cbc_decrypt(crypto_key *k, const uint8_t *iv, const uint8_t *in, size_t n,
                           uint8_t *out)
{
    return key_run(k, KCTX_CBC_DEC, iv, in, n, out);
}

/* ---- random, cleansing, parity ---- */

int crypto_random(uint8_t *out, size_t n, px_error *e)
{
    if (n > INT_MAX || RAND_bytes(out, (int)n) != 1)
        return px_error_set(e, PX_ECRYPTO, "random generator failed");
    return PX_OK;
}

void crypto_cleanse(void *p, size_t n)
{
    OPENSSL_cleanse(p, n);
}

/* FIPS 46-3: each DES key byte has odd parity in its least significant bit. */
static uint8_t odd_parity(uint8_t b)
{
    uint8_t x = (uint8_t)(b >> 1), ones = 0;
    for (int i = 0; i < 7; i++)
        ones = (uint8_t)(ones + ((x >> i) & 1));
    return (uint8_t)((b & 0xFE) | ((ones & 1) ? 0 : 1));
}

void crypto_des_set_odd_parity(uint8_t *key, size_t keylen)
{
    for (size_t i = 0; i < keylen; i++)
        key[i] = odd_parity(key[i]);
}

int crypto_des_has_odd_parity(const uint8_t *key, size_t keylen)
{
    for (size_t i = 0; i < keylen; i++)
        if (key[i] != odd_parity(key[i]))
            return 0;
    return 1;
}
