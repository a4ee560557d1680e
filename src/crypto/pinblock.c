/* pinblock.c: ISO 9564-1:2017 PIN blocks, formats 0, 1, 3 and 4. */
#include "crypto/pinblock.h"
#include "crypto/crypto_int.h"
#include "lib/hex.h"
#include "lib/str.h"

#include <string.h>
#include <openssl/crypto.h>

static const char hexdig[] = "0123456789ABCDEF";

size_t crypto_pinblock_len(crypto_pin_format fmt)
{
    switch (fmt) {
    case CRYPTO_PIN_ISO0:
    case CRYPTO_PIN_ISO1:
    case CRYPTO_PIN_ISO3: return 8;
    case CRYPTO_PIN_ISO4: return 16;
    }
    return 0;
}

int crypto_pin_check(const char *pin, px_error *e)
{
    size_t n = pin != NULL ? strlen(pin) : 0;
    if (n < CRYPTO_PIN_MIN || n > CRYPTO_PIN_MAX || !px_is_digits(pin, n))
        return px_error_set(e, PX_EINVAL, "pin: must be %d to %d decimal digits", CRYPTO_PIN_MIN,
                            CRYPTO_PIN_MAX);
    return PX_OK;
}

int crypto_pan_check(const char *pan, px_error *e)
{
    size_t n = pan != NULL ? strlen(pan) : 0;
    if (n < CRYPTO_PAN_MIN || n > CRYPTO_PAN_MAX || !px_is_digits(pan, n))
        return px_error_set(e, PX_EINVAL, "pan: must be %d to %d decimal digits", CRYPTO_PAN_MIN,
                            CRYPTO_PAN_MAX);
    return PX_OK;
}

/* Random fill nibbles: any value (format 1) or A..F without bias (format 3). */
static int random_fill(char *out, size_t n, int a_to_f, px_error *e)
{
    uint8_t r[64];
    size_t got = 0;
    while (got < n) {
        int rc = crypto_random(r, sizeof r, e);
        if (rc != PX_OK)
            return rc;
        for (size_t i = 0; i < sizeof r && got < n; i++) {
            if (!a_to_f)
                out[got++] = hexdig[r[i] & 0x0F];
            else if (r[i] < 252) /* 252 = 42 * 6: rejection keeps A..F uniform */
                out[got++] = hexdig[10 + r[i] % 6];
        }
    }
    OPENSSL_cleanse(r, sizeof r);
    return PX_OK;
}

/* ISO 9564-1:2017 PAN field of formats 0 and 3: 0000 and the 12 rightmost PAN digits
 * excluding the check digit (zero-padded on the left if fewer). */
static void pan_field_8(const char *pan, uint8_t out[8])
{
    char f[17];
    size_t n = strlen(pan) - 1; /* without the check digit */
    size_t take = n < 12 ? n : 12;
    memset(f, '0', 16);
    memcpy(f + 16 - take, pan + n - take, take);
    px_hex_decode_n(f, 16, out, 8, NULL);
}

/* The PIN field of formats 0, 1, 3 (8 bytes) or 4 (the first 8 of 16): C N PIN fill. */
static int pin_field(crypto_pin_format fmt, const char *pin, uint8_t out[8], px_error *e)
{
    char f[17];
    size_t n = strlen(pin);
    f[0] = hexdig[fmt];
    f[1] = hexdig[n];
    memcpy(f + 2, pin, n);
    int rc = PX_OK;
    if (fmt == CRYPTO_PIN_ISO0)
        memset(f + 2 + n, 'F', 14 - n);
    else if (fmt == CRYPTO_PIN_ISO4)
        memset(f + 2 + n, 'A', 14 - n);
    else
        rc = random_fill(f + 2 + n, 14 - n, fmt == CRYPTO_PIN_ISO3, e);
    if (rc == PX_OK)
        px_hex_decode_n(f, 16, out, 8, NULL);
    OPENSSL_cleanse(f, sizeof f);
    return rc;
}

int crypto_pinblock_encode(crypto_pin_format fmt, const char *pin, const char *pan, uint8_t *out,
                           size_t outcap, size_t *outlen, px_error *e)
{
    uint8_t panf[8];
    size_t len = crypto_pinblock_len(fmt);
    int rc;
    if (len == 0)
        return px_error_set(e, PX_EINVAL, "format: must be 0, 1, 3 or 4");
    if (outcap < len)
        return px_error_set(e, PX_ETOOBIG, "pinblock: output buffer too small");
    if ((rc = crypto_pin_check(pin, e)) != PX_OK)
        return rc;
    if (fmt != CRYPTO_PIN_ISO1 && (rc = crypto_pan_check(pan, e)) != PX_OK)
        return rc;
    if ((rc = pin_field(fmt, pin, out, e)) != PX_OK)
        return rc;
    if (fmt == CRYPTO_PIN_ISO4) {
        rc = crypto_random(out + 8, 8, e); /* format 4 PIN field: 8 random bytes */
    } else if (fmt != CRYPTO_PIN_ISO1) {
        pan_field_8(pan, panf);
        crypto_int_xor(out, panf, 8);
    }
    if (rc != PX_OK) {
        OPENSSL_cleanse(out, len);
        return rc;
    }
    *outlen = len;
    return PX_OK;
}

/* Check a clear PIN field (after the PAN is removed) and extract the PIN. */
static int pin_field_parse(crypto_pin_format fmt, const uint8_t field[8], char *pin, size_t pincap,
                           px_error *e)
{
    char f[17];
    int rc = PX_OK;
    px_hex_encode(field, 8, f);
    size_t n = (size_t)(f[1] <= '9' ? f[1] - '0' : f[1] - 'A' + 10);
    if (f[0] != hexdig[fmt])
        rc = px_error_set(e, PX_EFORMAT, "pinblock: control field is not format %d", (int)fmt);
    else if (n < CRYPTO_PIN_MIN || n > CRYPTO_PIN_MAX)
        rc = px_error_set(e, PX_EFORMAT, "pinblock: PIN length field out of range");
    else if (!px_is_digits(f + 2, n))
        rc = px_error_set(e, PX_EFORMAT, "pinblock: PIN is not numeric");
    else if (pincap < n + 1)
        rc = px_error_set(e, PX_ETOOBIG, "pin: output buffer too small");
    for (size_t i = 2 + n; rc == PX_OK && i < 16; i++) {
        int ok = fmt == CRYPTO_PIN_ISO0   ? f[i] == 'F'
                 : fmt == CRYPTO_PIN_ISO4 ? f[i] == 'A'
                 : fmt == CRYPTO_PIN_ISO3 ? f[i] >= 'A'
                                          : 1;
        if (!ok)
            rc = px_error_set(e, PX_EFORMAT, "pinblock: fill is wrong for format %d", (int)fmt);
    }
    if (rc == PX_OK) {
        memcpy(pin, f + 2, n);
        pin[n] = 0;
    }
    OPENSSL_cleanse(f, sizeof f);
    return rc;
}

int crypto_pinblock_decode(crypto_pin_format fmt, const uint8_t *block, size_t len, const char *pan,
                           char *pin, size_t pincap, px_error *e)
{
    uint8_t field[8];
    int rc;
    if (crypto_pinblock_len(fmt) == 0)
        return px_error_set(e, PX_EINVAL, "format: must be 0, 1, 3 or 4");
    if (len != crypto_pinblock_len(fmt))
        return px_error_set(e, PX_EINVAL, "pinblock: must be %zu bytes for format %d",
                            crypto_pinblock_len(fmt), (int)fmt);
    if (fmt == CRYPTO_PIN_ISO0 || fmt == CRYPTO_PIN_ISO3) {
        if ((rc = crypto_pan_check(pan, e)) != PX_OK)
            return rc;
        pan_field_8(pan, field);
        crypto_int_xor(field, block, 8);
    } else {
        memcpy(field, block, 8);
    }
    rc = pin_field_parse(fmt, field, pin, pincap, e);
    OPENSSL_cleanse(field, sizeof field);
    return rc;
}

/* ISO 9564-1:2017 format 4 PAN field: M (PAN length - 12, 0 if shorter), the PAN (left-padded with
 * zeros to 12 digits), zeros to 32 nibbles. */
int crypto_pinblock4_pan_field(const char *pan, uint8_t out[16], px_error *e)
{
    char f[33];
    int rc = crypto_pan_check(pan, e);
    if (rc != PX_OK)
        return rc;
    size_t n = strlen(pan);
    memset(f, '0', 32);
    f[0] = hexdig[n - 12];
    memcpy(f + 1, pan, n);
    px_hex_decode_n(f, 32, out, 16, NULL);
    OPENSSL_cleanse(f, sizeof f);
    return PX_OK;
}

/* ISO 9564-1:2017 format 4 encipherment: A = E(K, PIN field); B = A XOR PAN field; C = E(K, B). */
int crypto_pinblock4_encipher(crypto_key *k, const uint8_t pin_field[16],
                              const uint8_t pan_field[16], uint8_t out[16])
{
    uint8_t a[16];
    if (k == NULL || crypto_key_alg(k) != CRYPTO_AES)
        return PX_EINVAL;
    int rc = crypto_key_ecb_encrypt(k, pin_field, 16, a);
    if (rc == PX_OK) {
        crypto_int_xor(a, pan_field, 16);
        rc = crypto_key_ecb_encrypt(k, a, 16, out);
    }
    OPENSSL_cleanse(a, sizeof a);
    return rc;
}

/* ISO 9564-1:2017 format 4 decipherment: B = D(K, C); A = B XOR PAN field; PIN field = D(K, A). */
int crypto_pinblock4_decipher(crypto_key *k, const uint8_t in[16], const uint8_t pan_field[16],
                              uint8_t pin_field[16])
{
    uint8_t b[16];
    if (k == NULL || crypto_key_alg(k) != CRYPTO_AES)
        return PX_EINVAL;
    int rc = crypto_key_ecb_decrypt(k, in, 16, b);
    if (rc == PX_OK) {
        crypto_int_xor(b, pan_field, 16);
        rc = crypto_key_ecb_decrypt(k, b, 16, pin_field);
    }
    OPENSSL_cleanse(b, sizeof b);
    return rc;
}

/* Shared set-up of the one-shot format 4 calls: AES key schedule and PAN field. */
static int fmt4_setup(const uint8_t *key, size_t keylen, const char *pan, crypto_key **k,
                      uint8_t panf[16], px_error *e)
{
    int rc = crypto_pinblock4_pan_field(pan, panf, e);
    if (rc == PX_OK)
        rc = crypto_key_new(CRYPTO_AES, key, keylen, k, e);
    return rc;
}

int crypto_pinblock4_encrypt(const uint8_t *key, size_t keylen, const char *pin, const char *pan,
                             uint8_t out[16], px_error *e)
{
    uint8_t field[16], panf[16];
    size_t len = 0;
    crypto_key *k = NULL;
    int rc = crypto_pinblock_encode(CRYPTO_PIN_ISO4, pin, pan, field, sizeof field, &len, e);
    if (rc == PX_OK)
        rc = fmt4_setup(key, keylen, pan, &k, panf, e);
    if (rc == PX_OK && crypto_pinblock4_encipher(k, field, panf, out) != PX_OK)
        rc = px_error_set(e, PX_ECRYPTO, "pinblock: AES encipherment failed");
    crypto_key_free(k);
    OPENSSL_cleanse(field, sizeof field);
    return rc;
}

int crypto_pinblock4_decrypt(const uint8_t *key, size_t keylen, const uint8_t in[16],
                             const char *pan, char *pin, size_t pincap, px_error *e)
{
    uint8_t field[16], panf[16];
    crypto_key *k = NULL;
    int rc = fmt4_setup(key, keylen, pan, &k, panf, e);
    if (rc == PX_OK && crypto_pinblock4_decipher(k, in, panf, field) != PX_OK)
        rc = px_error_set(e, PX_ECRYPTO, "pinblock: AES decipherment failed");
    if (rc == PX_OK)
        rc = crypto_pinblock_decode(CRYPTO_PIN_ISO4, field, 16, pan, pin, pincap, e);
    crypto_key_free(k);
    OPENSSL_cleanse(field, sizeof field);
    return rc;
}
