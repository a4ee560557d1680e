/*
 * tr31.h: ANSI X9.143-2022 / ASC X9 TR-31:2018 key blocks, versions B (TDES key block
 * protection key, CMAC-derived KBEK/KBAK, 8-byte MAC) and D (AES KBPK, 16-byte MAC).
 *
 * A key block is ASCII: a 16-character header, optional blocks, the encrypted key data in
 * hex and the MAC in hex. Parsing checks every header field (the X9.143 key block header);
 * unwrapping checks the MAC in constant time before anything else is trusted. The parsed
 * header is what the HSM enforces key usage, mode of use and exportability against.
 */
#ifndef PX_CRYPTO_TR31_H
#define PX_CRYPTO_TR31_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "lib/limits.h"

#define CRYPTO_TR31_HEADER_FIXED 16                 /* fixed part of the header */
#define CRYPTO_TR31_OPT_MAX PX_TR31_OPT_BLOCKS_MAX  /* optional blocks kept in a header */
#define CRYPTO_TR31_OPTDATA_MAX PX_TR31_OPTDATA_MAX /* optional block data in a header */
#define CRYPTO_TR31_BLOCK_MAX 9999                  /* the length field has 4 digits */
#define CRYPTO_TR31_KEY_MAX 64                      /* longest clear key carried (bytes) */

/* One optional block: ID and its data (printable ASCII), stored in the header's pool. */
typedef struct crypto_tr31_opt {
    char id[3]; /* e.g. "KS", "PB" */
    size_t off; /* offset of the data in crypto_tr31_header.optdata */
    size_t len; /* data length in characters */
} crypto_tr31_opt;

typedef struct crypto_tr31_header {
    char version;        /* 'B' or 'D' */
    size_t length;       /* total key block length from the header (0 when building) */
    char usage[3];       /* key usage, e.g. "P0", "K0", "B0", "M3", "D0" */
    char algorithm;      /* 'A' AES, 'T' TDES, 'D' DES, 'H' HMAC, 'R' RSA, 'E' ECC, 'S' DSA */
    char mode;           /* mode of use: B C D E G N S T V X Y */
    char key_version[3]; /* "00" (none), two alphanumerics, or "c?" for a component */
    char exportability;  /* 'E' exportable, 'N' non-exportable, 'S' sensitive */
    size_t nopt;         /* optional blocks */
    crypto_tr31_opt opt[CRYPTO_TR31_OPT_MAX];
    char optdata[CRYPTO_TR31_OPTDATA_MAX];
    size_t optdata_len;
    size_t header_len; /* characters of header incl. optional blocks (after parse) */
} crypto_tr31_header;

/* Set the fixed fields of a header to build (no optional blocks); each is validated. */
int crypto_tr31_header_init(crypto_tr31_header *h, char version, const char *usage, char algorithm,
                            char mode, const char *key_version, char exportability, px_error *e);

/* Append an optional block (id: two alphanumerics; data: printable ASCII). "PB" is added
 * by wrap itself when the header needs padding. */
int crypto_tr31_header_add_opt(crypto_tr31_header *h, const char *id, const char *data, size_t len,
                               px_error *e);

/* Find an optional block by ID: PX_OK with *data and *len, or PX_ENOTFOUND. */
int crypto_tr31_header_find_opt(const crypto_tr31_header *h, const char *id, const char **data,
                                size_t *len);

/* Parse and validate a header (fixed part and optional blocks) at the start of s (n chars).
 * The length field is read but not compared with n (unwrap does that). */
int crypto_tr31_header_parse(const char *s, size_t n, crypto_tr31_header *h, px_error *e);

/* 1 if usage is a key usage X9.143 defines (or a numeric proprietary one). */
int crypto_tr31_usage_is_known(const char *usage);

/* Wrap a clear key (keylen bytes) under the KBPK (B: TDES 16/24 bytes; D: AES 16/24/32)
 * with header h (its length is computed; a "PB" block is added when needed). out receives
 * the NUL-terminated key block (outcap chars incl. NUL). The key length must suit
 * h->algorithm (T: 16/24, A: 16/24/32, D: 8). */
int crypto_tr31_wrap(const uint8_t *kbpk, size_t kbpklen, const crypto_tr31_header *h,
                     const uint8_t *key, size_t keylen, char *out, size_t outcap, px_error *e);

/* Wrap with caller-chosen padding bytes instead of random ones (exactly as many as the
 * block needs: PX_EINVAL otherwise): only to reproduce published examples in tests. */
int crypto_tr31_wrap_padded(const uint8_t *kbpk, size_t kbpklen, const crypto_tr31_header *h,
                            const uint8_t *key, size_t keylen, const uint8_t *pad, size_t padlen,
                            char *out, size_t outcap, px_error *e);

/* Same, with the header given as text (its 4-digit length field is ignored and filled in). */
int crypto_tr31_wrap_str(const uint8_t *kbpk, size_t kbpklen, const char *header,
                         const uint8_t *key, size_t keylen, char *out, size_t outcap, px_error *e);

/* Unwrap a key block of n characters: parse the header, check the length field, verify
 * the MAC (PX_EAUTH when it fails), decrypt and check the key length. h receives the
 * header; key receives *keylen bytes (keycap >= CRYPTO_TR31_KEY_MAX is always enough). */
int crypto_tr31_unwrap(const uint8_t *kbpk, size_t kbpklen, const char *block, size_t n,
                       crypto_tr31_header *h, uint8_t *key, size_t keycap, size_t *keylen,
                       px_error *e);

#endif
