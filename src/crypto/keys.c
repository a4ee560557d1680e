/* keys.c: key check values, key components and key diversification. */
#include "crypto/crypto.h"
#include "crypto/crypto_int.h"
#include "crypto/mac.h"
#include "lib/hex.h"
#include "lib/str.h"

#include <string.h>
#include <openssl/crypto.h>

/* X9.24-1:2017 key check values / ASC X9 TR 39: TDES KCV = E(K, 0^64), AES KCV = CMAC(K, 0^128).
 * Full value out. */
static int kcv_full(crypto_alg alg, const uint8_t *key, size_t keylen, uint8_t out[16],
                    size_t *outlen, px_error *e)
{
    static const uint8_t zero[16];
    if (alg == CRYPTO_AES)
        return crypto_cmac(CRYPTO_AES, key, keylen, zero, 16, out, 16, outlen, e);
    *outlen = 8;
    return crypto_encrypt(alg, CRYPTO_ECB, key, keylen, NULL, zero, 8, out, e);
}

int crypto_kcv(crypto_alg alg, const uint8_t *key, size_t keylen, uint8_t *out, size_t outcap,
               size_t *outlen, px_error *e)
{
    uint8_t full[16];
    size_t fl = 0;
    size_t want = alg == CRYPTO_AES ? CRYPTO_KCV_AES_LEN : CRYPTO_KCV_TDES_LEN;
    if (outcap < want)
        return px_error_set(e, PX_ETOOBIG, "kcv: output buffer too small");
    int rc = kcv_full(alg, key, keylen, full, &fl, e);
    if (rc != PX_OK)
        return rc;
    memcpy(out, full, want);
    *outlen = want;
    return PX_OK;
}

int crypto_kcv_verify(crypto_alg alg, const uint8_t *key, size_t keylen, const uint8_t *kcv,
                      size_t kcvlen, px_error *e)
{
    uint8_t full[16];
    size_t fl = 0;
    int rc = kcv_full(alg, key, keylen, full, &fl, e);
    if (rc != PX_OK)
        return rc;
    if (kcvlen < 3 || kcvlen > fl)
        return px_error_set(e, PX_EINVAL, "kcv: %zu bytes is not a valid check value length",
                            kcvlen);
    if (!px_ct_equal(full, kcv, kcvlen))
        return px_error_set(e, PX_EAUTH, "kcv: key check value does not match");
    return PX_OK;
}

/* X9.24-1 key components: K = C1 XOR C2 XOR ... ; each checked against its own KCV. */
int crypto_key_combine(crypto_alg alg, const uint8_t *const *components, size_t ncomponents,
                       size_t keylen, const uint8_t *const *kcvs, size_t kcvlen, uint8_t *out,
                       px_error *e)
{
    if (!crypto_key_len_is_valid(alg, keylen))
        return px_error_set(e, PX_EINVAL, "key: %zu bytes is not a valid %s key length", keylen,
                            crypto_int_alg_name(alg));
    if (ncomponents < 2 || ncomponents > CRYPTO_COMPONENTS_MAX)
        return px_error_set(e, PX_EINVAL, "components: need 2 to %d, got %zu",
                            CRYPTO_COMPONENTS_MAX, ncomponents);
    uint8_t acc[CRYPTO_KEY_MAX] = {0};
    for (size_t i = 0; i < ncomponents; i++) {
        if (kcvs != NULL) {
            int rc = crypto_kcv_verify(alg, components[i], keylen, kcvs[i], kcvlen, e);
            if (rc != PX_OK) {
                OPENSSL_cleanse(acc, sizeof acc);
                return px_error_prefix(e, "component %zu: ", i + 1);
            }
        }
        crypto_int_xor(acc, components[i], keylen);
    }
    memcpy(out, acc, keylen);
    OPENSSL_cleanse(acc, sizeof acc);
    return PX_OK;
}

/* EMV Book 2 A1.4.1 option A / JR/T 0025 diversification: L = E(MK, D), R = E(MK, D'). */
int crypto_derive_key(const uint8_t *master, size_t masterlen, const uint8_t *data, size_t datalen,
                      uint8_t out[16], px_error *e)
{
    uint8_t in[16];
    if (masterlen != 16)
        return px_error_set(e, PX_EINVAL,
                            "master: key must be 16 bytes (double-length TDES), got %zu",
                            masterlen);
    if (datalen == 8) {
        memcpy(in, data, 8);
        for (int i = 0; i < 8; i++)
            in[8 + i] = (uint8_t)~data[i];
    } else if (datalen == 16) {
        memcpy(in, data, 16);
    } else {
        return px_error_set(e, PX_EINVAL,
                            "data: diversification data must be 8 or 16 bytes, got %zu", datalen);
    }
    int rc = crypto_encrypt(CRYPTO_TDES, CRYPTO_ECB, master, masterlen, NULL, in, 16, out, e);
    OPENSSL_cleanse(in, sizeof in);
    return rc;
}

/* EMV Book 2 A1.4.1: Y = rightmost 16 digits of PAN || PSN (zero-padded left), packed BCD. */
int crypto_derive_emv_option_a(const uint8_t *master, size_t masterlen, const char *pan,
                               const char *psn, uint8_t out[16], px_error *e)
{
    char digits[32];
    uint8_t y[8];
    size_t panlen = pan != NULL ? strlen(pan) : 0;
    if (panlen < 12 || panlen > 19 || !px_is_digits(pan, panlen))
        return px_error_set(e, PX_EINVAL, "pan: must be 12 to 19 digits");
    if (psn == NULL)
        psn = "00";
    if (strlen(psn) != 2 || !px_is_digits(psn, 2))
        return px_error_set(e, PX_EINVAL, "psn: must be 2 digits");
    char joined[24];
    size_t n = panlen + 2;
    memcpy(joined, pan, panlen);
    memcpy(joined + panlen, psn, 2);
    memset(digits, '0', 16);
    if (n >= 16)
        memcpy(digits, joined + (n - 16), 16);
    else
        memcpy(digits + (16 - n), joined, n);
    size_t yl = 0;
    int rc = px_hex_decode_n(digits, 16, y, sizeof y, &yl) == PX_OK
                 ? crypto_derive_key(master, masterlen, y, 8, out, e)
                 : px_error_set(e, PX_EINTERNAL, "pan: packing failed");
    if (rc == PX_OK)
        crypto_des_set_odd_parity(out, 16);
    OPENSSL_cleanse(joined, sizeof joined);
    OPENSSL_cleanse(digits, sizeof digits);
    OPENSSL_cleanse(y, sizeof y);
    return rc;
}
