/*
 * card.c: payee card numbers at rest and the keyed digests of one-time codes. The clear
 * card exists only inside this process, in buffers that are wiped after use; what is stored
 * is IV || AES-256-CBC under the HSM data key, bound to the payee's number by an AES-CMAC
 * under the HSM MAC key (so a row copied onto another number, or altered, is refused).
 */
#include "host/phonepay/phonepay_int.h"
#include "crypto/crypto.h"
#include "lib/str.h"

#include <openssl/crypto.h>
#include <string.h>

int phonepay_mac(phonepay *pp, const char *label, const uint8_t *data, size_t n,
                 uint8_t out[PHONEPAY_MAC_LEN], px_error *e)
{
    uint8_t buf[256];
    size_t ll = strlen(label), maclen = 0;
    int rc;
    if (PX_BUG(ll + 1 + n > sizeof buf))
        return PX_EINTERNAL;
    memcpy(buf, label, ll);
    buf[ll] = '|';
    memcpy(buf + ll + 1, data, n);
    rc = hsm_mac_generate(pp->h, pp->mac_key, CRYPTO_MAC_AES_CMAC, buf, ll + 1 + n, out,
                          PHONEPAY_MAC_LEN, &maclen, e);
    OPENSSL_cleanse(buf, sizeof buf);
    if (rc == PX_OK && PX_BUG(maclen != PHONEPAY_MAC_LEN))
        return PX_EINTERNAL;
    return rc;
}

/* The MAC that binds a sealed card to a mobile number. */
static int card_binding(phonepay *pp, const char *mobile, const uint8_t *enc,
                        uint8_t mac[PHONEPAY_MAC_LEN], px_error *e)
{
    uint8_t data[PHONEPAY_MOBILE_LEN + PHONEPAY_CARD_ENC_LEN];
    memcpy(data, mobile, PHONEPAY_MOBILE_LEN);
    memcpy(data + PHONEPAY_MOBILE_LEN, enc, PHONEPAY_CARD_ENC_LEN);
    return phonepay_mac(pp, "card.v1", data, sizeof data, mac, e);
}

int phonepay_card_seal(phonepay *pp, const char *mobile, const char *pan, phonepay_card_sealed *out,
                       px_error *e)
{
    uint8_t block[PHONEPAY_CARD_BLOCK];
    size_t n = strlen(pan);
    int rc;
    memset(out, 0, sizeof *out);
    if (!phonepay_pan_is_valid(pan))
        return px_error_set(e, PX_EINVAL, "card: not a valid card number");
    if (strlen(mobile) != PHONEPAY_MOBILE_LEN)
        return px_error_set(e, PX_EINVAL, "card: bad mobile number");
    /* length byte, digits, random fill: equal-length blocks for every card */
    rc = crypto_random(block, sizeof block, e);
    if (rc == PX_OK)
        rc = crypto_random(out->enc, 16, e); /* the IV */
    if (rc == PX_OK) {
        block[0] = (uint8_t)n;
        memcpy(block + 1, pan, n);
        rc = hsm_data_encrypt(pp->h, pp->card_key, CRYPTO_CBC, out->enc, block, sizeof block,
                              out->enc + 16, e);
    }
    OPENSSL_cleanse(block, sizeof block);
    if (rc == PX_OK)
        rc = card_binding(pp, mobile, out->enc, out->mac, e);
    if (rc == PX_OK)
        px_mask_pan(pan, out->masked, sizeof out->masked);
    return rc;
}

int phonepay_card_open(phonepay *pp, const char *mobile, const uint8_t *enc, size_t enclen,
                       const uint8_t *mac, size_t maclen, char pan[PHONEPAY_PAN_MAX], px_error *e)
{
    uint8_t want[PHONEPAY_MAC_LEN], block[PHONEPAY_CARD_BLOCK];
    int rc;
    pan[0] = 0;
    if (enc == NULL || mac == NULL || enclen != PHONEPAY_CARD_ENC_LEN ||
        maclen != PHONEPAY_MAC_LEN || strlen(mobile) != PHONEPAY_MOBILE_LEN)
        return px_error_set(e, PX_EAUTH, "card: stored card has the wrong shape");
    rc = card_binding(pp, mobile, enc, want, e);
    if (rc != PX_OK)
        return rc;
    if (!px_ct_equal(want, mac, PHONEPAY_MAC_LEN))
        return px_error_set(e, PX_EAUTH, "card: stored card fails its integrity check");
    rc = hsm_data_decrypt(pp->h, pp->card_key, CRYPTO_CBC, enc, enc + 16, PHONEPAY_CARD_BLOCK,
                          block, e);
    if (rc == PX_OK) {
        size_t n = block[0];
        if (n < 12 || n > 19 || !px_is_digits((const char *)block + 1, n)) {
            rc = px_error_set(e, PX_EAUTH, "card: stored card does not decrypt");
        } else {
            memcpy(pan, block + 1, n);
            pan[n] = 0;
        }
    }
    OPENSSL_cleanse(block, sizeof block);
    return rc;
}

/* CMAC("otp.v1|" mobile | salt | code): the stored form of a code (docs/phonepay.md). */
static int otp_digest(phonepay *pp, const char *mobile, const char *code, const uint8_t *salt,
                      uint8_t digest[PHONEPAY_MAC_LEN], px_error *e)
{
    uint8_t data[PHONEPAY_MOBILE_LEN + PHONEPAY_SALT_LEN + PHONEPAY_OTP_DIGITS];
    int rc;
    memcpy(data, mobile, PHONEPAY_MOBILE_LEN);
    memcpy(data + PHONEPAY_MOBILE_LEN, salt, PHONEPAY_SALT_LEN);
    memcpy(data + PHONEPAY_MOBILE_LEN + PHONEPAY_SALT_LEN, code, PHONEPAY_OTP_DIGITS);
    rc = phonepay_mac(pp, "otp.v1", data, sizeof data, digest, e);
    OPENSSL_cleanse(data, sizeof data);
    return rc;
}

int phonepay_otp_new(phonepay *pp, const char *mobile, char code[PHONEPAY_OTP_DIGITS + 1],
                     uint8_t salt[PHONEPAY_SALT_LEN], uint8_t digest[PHONEPAY_MAC_LEN], px_error *e)
{
    uint8_t r[8];
    uint64_t v = 0;
    int rc;
    if (strlen(mobile) != PHONEPAY_MOBILE_LEN)
        return px_error_set(e, PX_EINVAL, "otp: bad mobile number");
    rc = crypto_random(r, sizeof r, e);
    if (rc == PX_OK)
        rc = crypto_random(salt, PHONEPAY_SALT_LEN, e);
    if (rc != PX_OK)
        return rc;
    for (size_t i = 0; i < sizeof r; i++)
        v = (v << 8) | r[i];
    OPENSSL_cleanse(r, sizeof r);
    /* the bias of 2^64 mod 10^6 is below 2^-44 */
    for (int i = PHONEPAY_OTP_DIGITS - 1; i >= 0; i--, v /= 10)
        code[i] = (char)('0' + v % 10);
    code[PHONEPAY_OTP_DIGITS] = 0;
    return otp_digest(pp, mobile, code, salt, digest, e);
}

int phonepay_otp_check(phonepay *pp, const char *mobile, const char *code, const uint8_t *salt,
                       size_t saltlen, const uint8_t *digest, size_t digestlen, px_error *e)
{
    uint8_t want[PHONEPAY_MAC_LEN];
    int rc;
    if (code == NULL || strlen(code) != PHONEPAY_OTP_DIGITS ||
        !px_is_digits(code, PHONEPAY_OTP_DIGITS))
        return px_error_set(e, PX_EFORMAT, "code: expected 6 digits");
    if (salt == NULL || digest == NULL || saltlen != PHONEPAY_SALT_LEN ||
        digestlen != PHONEPAY_MAC_LEN || strlen(mobile) != PHONEPAY_MOBILE_LEN)
        return px_error_set(e, PX_EAUTH, "code: stored challenge has the wrong shape");
    rc = otp_digest(pp, mobile, code, salt, want, e);
    if (rc != PX_OK)
        return rc;
    rc = px_ct_equal(want, digest, PHONEPAY_MAC_LEN)
             ? PX_OK
             : px_error_set(e, PX_EAUTH, "code: wrong code");
    OPENSSL_cleanse(want, sizeof want);
    return rc;
}
