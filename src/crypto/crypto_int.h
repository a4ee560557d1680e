/* crypto_int.h: private to src/crypto: cached OpenSSL algorithm fetches and helpers. */
#ifndef PX_CRYPTO_INT_H
#define PX_CRYPTO_INT_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/evp.h>
#include "crypto/crypto.h"

/* The EVP cipher for alg/mode/keylen (fetched once, never freed), or NULL. */
const EVP_CIPHER *crypto_int_cipher(crypto_alg alg, crypto_mode mode, size_t keylen);
/* The EVP_MAC "CMAC" implementation (fetched once), or NULL. */
EVP_MAC *crypto_int_cmac(void);

/* The key as the EVP cipher wants it: DES and 2-key TDES expanded to 24 bytes
 * (K K K, K1 K2 K1: OpenSSL's DES-EDE3, no legacy provider needed). *outlen set. */
int crypto_int_expand_key(crypto_alg alg, const uint8_t *key, size_t keylen,
                          uint8_t out[CRYPTO_KEY_MAX], size_t *outlen);

/* Name of an alg for messages ("TDES", "AES", "DES"). */
const char *crypto_int_alg_name(crypto_alg alg);

/* CMAC (SP 800-38B) of d1 || d2 with TDES or AES; see crypto_cmac. */
int crypto_int_cmac2(crypto_alg alg, const uint8_t *key, size_t keylen, const uint8_t *d1,
                     size_t n1, const uint8_t *d2, size_t n2, uint8_t *mac, size_t maccap,
                     size_t *maclen, px_error *e);

/* XOR n bytes of b into a. */
void crypto_int_xor(uint8_t *a, const uint8_t *b, size_t n);

#endif
