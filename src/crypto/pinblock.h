/*
 * pinblock.h: ISO 9564-1:2017 PIN blocks, formats 0, 1, 3 (8 bytes, for TDES) and
 * 4 (16 bytes, AES, with its two-stage encipherment).
 *
 * PIN: 4 to 12 decimal digits. PAN: 12 to 19 decimal digits (formats 0, 3, 4; format 1
 * does not use it and ignores the argument, which may be NULL). Random fill comes from
 * RAND_bytes. Nothing here ever puts a PIN or PAN into an error message.
 */
#ifndef PX_CRYPTO_PINBLOCK_H
#define PX_CRYPTO_PINBLOCK_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "crypto/crypto.h"

#define CRYPTO_PIN_MIN 4
#define CRYPTO_PIN_MAX 12
#define CRYPTO_PAN_MIN 12
#define CRYPTO_PAN_MAX 19
#define CRYPTO_PINBLOCK_MAX 16

typedef enum crypto_pin_format {
    CRYPTO_PIN_ISO0 = 0,
    CRYPTO_PIN_ISO1 = 1,
    CRYPTO_PIN_ISO3 = 3,
    CRYPTO_PIN_ISO4 = 4
} crypto_pin_format;

/* Block length of a format: 8 for 0, 1, 3; 16 for 4; 0 if unknown. */
size_t crypto_pinblock_len(crypto_pin_format fmt);

/* Validate a PIN (4..12 digits) and a PAN (12..19 digits); PX_EINVAL naming "pin"/"pan". */
int crypto_pin_check(const char *pin, px_error *e);
int crypto_pan_check(const char *pan, px_error *e);

/* Build the clear PIN block of fmt (0, 1, 3: ISO 9564-1:2017 formats 0, 1, 3; for format 4
 * this is the plaintext PIN field, 16 bytes) into out (outcap bytes). */
int crypto_pinblock_encode(crypto_pin_format fmt, const char *pin, const char *pan, uint8_t *out,
                           size_t outcap, size_t *outlen, px_error *e);

/* Recover the PIN from a clear block of fmt (for format 4: the plaintext PIN field).
 * Checks control nibble, length, digits and fill; pin receives a NUL-terminated string
 * (pincap >= 13). PX_EFORMAT when the block is not a well-formed block of that format. */
int crypto_pinblock_decode(crypto_pin_format fmt, const uint8_t *block, size_t len, const char *pan,
                           char *pin, size_t pincap, px_error *e);

/* The format 4 PAN field: M nibble (PAN length - 12), PAN, zero fill. */
int crypto_pinblock4_pan_field(const char *pan, uint8_t out[16], px_error *e);

/* Format 4 encipherment: C = E(K, E(K, PIN field) XOR PAN field), with
 * an AES key (16/24/32 bytes). pin/pan as above; out receives 16 bytes. */
int crypto_pinblock4_encrypt(const uint8_t *key, size_t keylen, const char *pin, const char *pan,
                             uint8_t out[16], px_error *e);
int crypto_pinblock4_decrypt(const uint8_t *key, size_t keylen, const uint8_t in[16],
                             const char *pan, char *pin, size_t pincap, px_error *e);

/* The same two stages with a prepared AES key schedule (HSM hot path, no allocation):
 * encipher a plaintext PIN field, or decipher back to it, given the PAN field. */
int crypto_pinblock4_encipher(crypto_key *k, const uint8_t pin_field[16],
                              const uint8_t pan_field[16], uint8_t out[16]);
int crypto_pinblock4_decipher(crypto_key *k, const uint8_t in[16], const uint8_t pan_field[16],
                              uint8_t pin_field[16]);

#endif
