/*
 * crypto.h: possum's block ciphers, key check values, key components and key
 * diversification, all on OpenSSL 3 EVP (no hand-written cipher).
 *
 * Conventions for the whole module (see docs/crypto.md):
 * - Functions return PX_OK or a negative px_err, and write into caller buffers.
 * - Every key comes with its explicit length: TDES 16 (double) or 24 (triple) bytes,
 *   single DES 8 bytes (legacy MACs and the PBOC purse only), AES 16, 24 or 32 bytes.
 * - Data is never padded implicitly: lengths are multiples of the block size.
 * - Key material held in temporaries is wiped with OPENSSL_cleanse before returning;
 *   secrets are compared with px_ct_equal.
 * - Error messages name the argument and never contain key, PIN or PAN material.
 * Other headers: crypto/mac.h, crypto/pinblock.h, crypto/dukpt.h, crypto/tr31.h.
 */
#ifndef PX_CRYPTO_H
#define PX_CRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define CRYPTO_DES_BLOCK 8    /* DES/TDES block size in bytes */
#define CRYPTO_AES_BLOCK 16   /* AES block size in bytes */
#define CRYPTO_KEY_MAX 32     /* longest symmetric key (AES-256) */
#define CRYPTO_BLOCK_MAX 16   /* largest block size */
#define CRYPTO_KCV_TDES_LEN 3 /* X9.24-1 TDES check value: 3 bytes */
#define CRYPTO_KCV_AES_LEN 5  /* X9.24-1 AES check value: 5 bytes of CMAC */
#define CRYPTO_KCV_MAX 8

typedef enum crypto_alg {
    CRYPTO_DES = 1,  /* single DES, 8-byte key: legacy MACs and PBOC session keys only */
    CRYPTO_TDES = 2, /* TDEA keying option 2 (16 bytes) or 1 (24 bytes) */
    CRYPTO_AES = 3   /* AES-128/192/256 */
} crypto_alg;

typedef enum crypto_mode { CRYPTO_ECB = 1, CRYPTO_CBC = 2 } crypto_mode;

/* Block size of alg in bytes (8 or 16), 0 for an unknown alg. */
size_t crypto_block_size(crypto_alg alg);

/* 1 if keylen is a valid key length for alg. */
int crypto_key_len_is_valid(crypto_alg alg, size_t keylen);

/* One-shot encryption without padding: n must be a multiple of the block size (n may be 0).
 * iv (one block) is required for CBC and ignored for ECB. in and out may be the same. */
int crypto_encrypt(crypto_alg alg, crypto_mode mode, const uint8_t *key, size_t keylen,
                   const uint8_t *iv, const uint8_t *in, size_t n, uint8_t *out, px_error *e);
int crypto_decrypt(crypto_alg alg, crypto_mode mode, const uint8_t *key, size_t keylen,
                   const uint8_t *iv, const uint8_t *in, size_t n, uint8_t *out, px_error *e);

/*
 * A reusable key schedule: set up once from a key, then used for many operations without
 * any allocation or key setup (the HSM's PIN translation path). Not safe for concurrent use
 * by several threads: give each thread its own (crypto_key_dup).
 */
typedef struct crypto_key crypto_key;

int crypto_key_new(crypto_alg alg, const uint8_t *key, size_t keylen, crypto_key **out,
                   px_error *e);
int crypto_key_dup(const crypto_key *k, crypto_key **out, px_error *e);
void crypto_key_free(crypto_key *k); /* wipes; NULL is fine */
crypto_alg crypto_key_alg(const crypto_key *k);
size_t crypto_key_block_size(const crypto_key *k);
/* n a multiple of the block size; in == out allowed. PX_EINVAL on a bad length. */
int crypto_key_ecb_encrypt(crypto_key *k, const uint8_t *in, size_t n, uint8_t *out);
int crypto_key_ecb_decrypt(crypto_key *k, const uint8_t *in, size_t n, uint8_t *out);
int crypto_key_cbc_encrypt(crypto_key *k, const uint8_t *iv, const uint8_t *in, size_t n,
                           uint8_t *out);
int crypto_key_cbc_decrypt(crypto_key *k, const uint8_t *iv, const uint8_t *in, size_t n,
                           uint8_t *out);

/* Cryptographically strong random bytes (RAND_bytes). */
int crypto_random(uint8_t *out, size_t n, px_error *e);

/* Wipe secret memory (OPENSSL_cleanse). */
void crypto_cleanse(void *p, size_t n);

/* DES odd parity: set the low bit of each byte so it has an odd number of ones; and check. */
void crypto_des_set_odd_parity(uint8_t *key, size_t keylen);
int crypto_des_has_odd_parity(const uint8_t *key, size_t keylen);

/*
 * Key check values (X9.24-1:2017 / ASC X9 TR 39): TDES (and DES): the first 3 bytes
 * of a zero block encrypted under the key; AES: the first 5 bytes of AES-CMAC over a zero
 * block (16 bytes of 00). out receives CRYPTO_KCV_TDES_LEN or CRYPTO_KCV_AES_LEN bytes.
 */
int crypto_kcv(crypto_alg alg, const uint8_t *key, size_t keylen, uint8_t *out, size_t outcap,
               size_t *outlen, px_error *e);
/* Check a key against an expected check value of kcvlen bytes (3..8 for TDES, 3..16 AES
 * CMAC; shorter values compare the prefix), in constant time. PX_EAUTH on mismatch. */
int crypto_kcv_verify(crypto_alg alg, const uint8_t *key, size_t keylen, const uint8_t *kcv,
                      size_t kcvlen, px_error *e);

/*
 * Combine clear key components by XOR (X9.24-1 key component entry). Each component must
 * match its check value (kcvs[i] of kcvlen bytes; kcvs may be NULL to skip) or the call
 * fails with PX_EAUTH naming the component. 2..CRYPTO_COMPONENTS_MAX components.
 */
#define CRYPTO_COMPONENTS_MAX PX_KEY_COMPONENTS_MAX
int crypto_key_combine(crypto_alg alg, const uint8_t *const *components, size_t ncomponents,
                       size_t keylen, const uint8_t *const *kcvs, size_t kcvlen, uint8_t *out,
                       px_error *e);

/*
 * Key diversification as EMV Book 2 A1.4.1 option A and PBOC/JR/T 0025 use it: from a
 * double-length TDES master key and diversification data,
 *   data of 8 bytes D:           left = 3DES-ECB(MK, D),  right = 3DES-ECB(MK, D XOR FF..FF)
 *   data of 16 bytes DL || DR:   left = 3DES-ECB(MK, DL), right = 3DES-ECB(MK, DR)
 * out receives 16 bytes. Parity is left as computed (crypto_des_set_odd_parity if wanted).
 */
int crypto_derive_key(const uint8_t *master, size_t masterlen, const uint8_t *data, size_t datalen,
                      uint8_t out[16], px_error *e);

/* EMV option A input: the rightmost 16 digits of PAN || PAN sequence number (2 digits,
 * "00" when absent), left-padded with zeros, packed into 8 bytes; then crypto_derive_key
 * and odd parity. pan: 12..19 digits; psn: NULL or 2 digits. */
int crypto_derive_emv_option_a(const uint8_t *master, size_t masterlen, const char *pan,
                               const char *psn, uint8_t out[16], px_error *e);

#endif
