/*
 * Fuzz the TR-31 / X9.143 parser: unwrap arbitrary text with fixed version B and D key
 * block protection keys, parse it as a header, and when it parses, wrap a key under that
 * header and require the unwrap to give back the same key and usage.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/tr31.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* clang-format off */
static const uint8_t kbpk_b[16] = {0xDD, 0x75, 0x15, 0xF2, 0xBF, 0xC1, 0x7F, 0x85,
                                   0xCE, 0x48, 0xF3, 0xCA, 0x25, 0xCB, 0x21, 0xF6};
static const uint8_t kbpk_d[32] = {0x88, 0xE1, 0xAB, 0x2A, 0x2E, 0x3D, 0xD3, 0x8C,
                                   0x1F, 0xA0, 0x39, 0xA5, 0x36, 0x50, 0x0C, 0xC8,
                                   0xA8, 0x7A, 0xB9, 0xD6, 0x2D, 0xC9, 0x2C, 0x01,
                                   0x05, 0x8F, 0xA7, 0x9F, 0x44, 0x65, 0x7D, 0xE6};
/* clang-format on */

/* Wrap a fixed key under header h and check that it comes back intact. */
static void round_trip(const crypto_tr31_header *h)
{
    static const uint8_t key[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
    static char blk[CRYPTO_TR31_BLOCK_MAX + 1];
    static crypto_tr31_header got;
    uint8_t back[CRYPTO_TR31_KEY_MAX];
    size_t keylen = h->algorithm == 'A' ? 16 : h->algorithm == 'D' ? 8 : 16, n = 0;
    const uint8_t *kbpk = h->version == 'B' ? kbpk_b : kbpk_d;
    size_t kbpklen = h->version == 'B' ? sizeof kbpk_b : sizeof kbpk_d;
    if (crypto_tr31_wrap(kbpk, kbpklen, h, key, keylen, blk, sizeof blk, NULL) != 0)
        return;
    if (crypto_tr31_unwrap(kbpk, kbpklen, blk, strlen(blk), &got, back, sizeof back, &n, NULL) !=
            0 ||
        n != keylen || memcmp(back, key, n) != 0 || strcmp(got.usage, h->usage) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static crypto_tr31_header h;
    uint8_t key[CRYPTO_TR31_KEY_MAX];
    size_t n = 0;
    const char *s = (const char *)data;
    (void)crypto_tr31_unwrap(kbpk_b, sizeof kbpk_b, s, size, &h, key, sizeof key, &n, NULL);
    (void)crypto_tr31_unwrap(kbpk_d, sizeof kbpk_d, s, size, &h, key, sizeof key, &n, NULL);
    if (crypto_tr31_header_parse(s, size, &h, NULL) == 0)
        round_trip(&h);
    return 0;
}
