/*
 * mac.h: message authentication codes of the payment world, on OpenSSL EVP / EVP_MAC.
 *
 *   CRYPTO_MAC_X919        ANSI X9.19 / ISO 9797-1 MAC algorithm 3 ("retail MAC"): DES CBC
 *                          under K1, final block 3DES with K1,K2; padding method 1 (zeros);
 *                          16-byte key; 8-byte MAC.
 *   CRYPTO_MAC_ISO9797_1   ISO 9797-1 MAC algorithm 1 (CBC-MAC, zero IV), padding method 1;
 *                          the block cipher is DES for an 8-byte key, TDES for 16/24; 8 bytes.
 *   CRYPTO_MAC_PBOC        JR/T 0025 (PBOC) purse MAC: MAC algorithm 1 with padding method 2
 *                          (80 then zeros); DES for an 8-byte key, TDES for 16/24; 4 bytes.
 *   CRYPTO_MAC_CUP_ECB     China UnionPay POS "ECB" MAC (see docs/crypto.md); DES for an
 *                          8-byte key, TDES for 16/24; the 8 ASCII hex characters that go in
 *                          field 64.
 *   CRYPTO_MAC_AES_CMAC    NIST SP 800-38B / RFC 4493 CMAC with AES-128/192/256; 16 bytes.
 *   CRYPTO_MAC_TDES_CMAC   NIST SP 800-38B CMAC with TDES (16 or 24-byte key); 8 bytes.
 */
#ifndef PX_CRYPTO_MAC_H
#define PX_CRYPTO_MAC_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "crypto/crypto.h"

#define CRYPTO_MAC_MAX 16 /* longest MAC produced (AES-CMAC) */

typedef enum crypto_mac_alg {
    CRYPTO_MAC_X919 = 1,
    CRYPTO_MAC_ISO9797_1 = 2,
    CRYPTO_MAC_PBOC = 3,
    CRYPTO_MAC_CUP_ECB = 4,
    CRYPTO_MAC_AES_CMAC = 5,
    CRYPTO_MAC_TDES_CMAC = 6
} crypto_mac_alg;

/* Full MAC length of alg in bytes (0 for an unknown alg). */
size_t crypto_mac_len(crypto_mac_alg alg);

/* Look an algorithm up by its keytool name ("x919", "iso9797-1", "pboc", "cup-ecb",
 * "aes-cmac", "tdes-cmac"); PX_ENOTFOUND otherwise. */
int crypto_mac_alg_from_name(const char *name, crypto_mac_alg *out);

/* Compute the full MAC of data (n bytes, may be 0) into mac (capacity maccap >=
 * crypto_mac_len(alg)); *maclen receives its length. */
int crypto_mac(crypto_mac_alg alg, const uint8_t *key, size_t keylen, const uint8_t *data, size_t n,
               uint8_t *mac, size_t maccap, size_t *maclen, px_error *e);

/* Verify a MAC, possibly truncated to its leftmost maclen bytes (4..full length), in
 * constant time. PX_EAUTH when it does not match. */
int crypto_mac_verify(crypto_mac_alg alg, const uint8_t *key, size_t keylen, const uint8_t *data,
                      size_t n, const uint8_t *mac, size_t maclen, px_error *e);

/* CMAC (SP 800-38B) with a block cipher: CRYPTO_TDES (8-byte output) or CRYPTO_AES (16). */
int crypto_cmac(crypto_alg alg, const uint8_t *key, size_t keylen, const uint8_t *data, size_t n,
                uint8_t *mac, size_t maccap, size_t *maclen, px_error *e);

#endif
