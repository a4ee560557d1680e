/*
 * keys.c: what the PIN pad does with its keys: load them, report their check values, build
 * PIN blocks and MACs. No function here lets a clear key out.
 */
#include "device/pinpad/pinpad_int.h"
#include "crypto/crypto.h"
#include "crypto/mac.h"
#include "crypto/pinblock.h"
#include "lib/hex.h"
#include "lib/time.h"

#include <openssl/crypto.h>
#include <string.h>

#define F62_CV 4 /* check value bytes per key in field 62 */

const char *pinpad_slot_name(pinpad_slot s)
{
    static const char *const names[PINPAD_SLOTS] = {"TMK", "PIK", "MAK", "TDK", "TK"};
    return (unsigned)s < PINPAD_SLOTS ? names[s] : "?";
}

int pinpad_has_key(const pinpad *p, pinpad_slot s)
{
    return (unsigned)s < PINPAD_SLOTS && p->slot[s].present;
}

void pinpad_key_info_get(const pinpad *p, pinpad_slot s, pinpad_key_info *out)
{
    uint8_t kcv[CRYPTO_KCV_MAX];
    size_t n = 0;
    memset(out, 0, sizeof *out);
    if (!pinpad_has_key(p, s))
        return;
    out->present = 1;
    out->loaded_ms = p->slot[s].loaded_ms;
    if (crypto_kcv(CRYPTO_TDES, p->slot[s].key, PINPAD_KEY_LEN, kcv, sizeof kcv, &n, NULL) ==
            PX_OK &&
        n == CRYPTO_KCV_TDES_LEN)
        px_hex_encode(kcv, n, out->kcv);
}

/* Make next the key set, in memory and on disk, or neither: on a failed write the old set
 * stays. Both copies are wiped by the caller's scope (next) and here (old). */
static int commit(pinpad *p, const pp_slot next[PINPAD_SLOTS], px_error *e)
{
    pp_slot old[PINPAD_SLOTS];
    int rc;
    memcpy(old, p->slot, sizeof old);
    memcpy(p->slot, next, sizeof old);
    rc = pp_save(p, e);
    if (rc != PX_OK)
        memcpy(p->slot, old, sizeof old);
    OPENSSL_cleanse(old, sizeof old);
    return rc;
}

static void set_slot(pp_slot *s, const uint8_t key[PINPAD_KEY_LEN])
{
    s->present = 1;
    memcpy(s->key, key, PINPAD_KEY_LEN);
    s->loaded_ms = px_now_ms();
}

/* A new TMK invalidates the work keys encrypted under the old one. */
static int install_tmk(pinpad *p, const uint8_t tmk[PINPAD_KEY_LEN], px_error *e)
{
    pp_slot next[PINPAD_SLOTS];
    int rc;
    memcpy(next, p->slot, sizeof next);
    set_slot(&next[PINPAD_TMK], tmk);
    memset(&next[PINPAD_PIK], 0, 3 * sizeof next[0]);
    rc = commit(p, next, e);
    OPENSSL_cleanse(next, sizeof next);
    return rc;
}

int pinpad_load_tmk_components(pinpad *p, const uint8_t *const *components, size_t n,
                               const uint8_t *const *kcvs, size_t kcvlen, const uint8_t *tmk_kcv,
                               size_t tmk_kcvlen, px_error *e)
{
    uint8_t tmk[PINPAD_KEY_LEN];
    int rc;
    if (n < 2 || n > CRYPTO_COMPONENTS_MAX)
        return px_error_set(e, PX_EINVAL, "TMK: 2 to %d components, got %zu", CRYPTO_COMPONENTS_MAX,
                            n);
    rc = crypto_key_combine(CRYPTO_TDES, components, n, PINPAD_KEY_LEN, kcvs, kcvlen, tmk, e);
    if (rc == PX_OK && tmk_kcv != NULL &&
        crypto_kcv_verify(CRYPTO_TDES, tmk, PINPAD_KEY_LEN, tmk_kcv, tmk_kcvlen, NULL) != PX_OK)
        rc = px_error_set(e, PX_EAUTH, "TMK: the combined key does not match its check value");
    if (rc == PX_OK)
        rc = install_tmk(p, tmk, e);
    OPENSSL_cleanse(tmk, sizeof tmk);
    return rc;
}

int pinpad_tk_generate(pinpad *p, char kcv_hex[PINPAD_KCV_HEX], px_error *e)
{
    pp_slot next[PINPAD_SLOTS];
    uint8_t tk[PINPAD_KEY_LEN];
    pinpad_key_info info;
    int rc = crypto_random(tk, sizeof tk, e);
    if (rc != PX_OK)
        return rc;
    crypto_des_set_odd_parity(tk, sizeof tk);
    memcpy(next, p->slot, sizeof next);
    set_slot(&next[PINPAD_TK], tk);
    rc = commit(p, next, e);
    OPENSSL_cleanse(next, sizeof next);
    OPENSSL_cleanse(tk, sizeof tk);
    if (rc == PX_OK) {
        pinpad_key_info_get(p, PINPAD_TK, &info);
        memcpy(kcv_hex, info.kcv, PINPAD_KCV_HEX);
    }
    return rc;
}

int pinpad_load_tmk_under_tk(pinpad *p, const uint8_t *cryptogram, size_t n, const uint8_t *kcv,
                             size_t kcvlen, px_error *e)
{
    uint8_t tmk[PINPAD_KEY_LEN];
    int rc;
    if (!pinpad_has_key(p, PINPAD_TK))
        return px_error_set(e, PX_ESTATE, "TMK: no transmission key in the PIN pad");
    if (n != PINPAD_KEY_LEN || kcv == NULL)
        return px_error_set(e, PX_EINVAL, "TMK cryptogram: expected %d bytes and a check value",
                            PINPAD_KEY_LEN);
    rc = crypto_decrypt(CRYPTO_TDES, CRYPTO_ECB, p->slot[PINPAD_TK].key, PINPAD_KEY_LEN, NULL,
                        cryptogram, n, tmk, e);
    if (rc == PX_OK &&
        crypto_kcv_verify(CRYPTO_TDES, tmk, PINPAD_KEY_LEN, kcv, kcvlen, NULL) != PX_OK)
        rc = px_error_set(e, PX_EAUTH, "TMK: the key under TK does not match its check value");
    if (rc == PX_OK)
        rc = install_tmk(p, tmk, e);
    OPENSSL_cleanse(tmk, sizeof tmk);
    return rc;
}

int pinpad_install_work_keys(pinpad *p, const uint8_t *f62, size_t n, px_error *e)
{
    static const pinpad_slot order[3] = {PINPAD_PIK, PINPAD_MAK, PINPAD_TDK};
    pp_slot next[PINPAD_SLOTS];
    uint8_t clear[PINPAD_KEY_LEN];
    int rc = PX_OK;
    if (!pinpad_has_key(p, PINPAD_TMK))
        return px_error_set(e, PX_ESTATE, "work keys: no TMK in the PIN pad");
    if (f62 == NULL || n != PINPAD_F62_LEN)
        return px_error_set(e, PX_EFORMAT, "field 62: expected %d bytes of work keys, got %zu",
                            PINPAD_F62_LEN, n);
    memcpy(next, p->slot, sizeof next);
    for (int i = 0; i < 3 && rc == PX_OK; i++) {
        const uint8_t *k = f62 + i * (PINPAD_KEY_LEN + F62_CV);
        rc = crypto_decrypt(CRYPTO_TDES, CRYPTO_ECB, p->slot[PINPAD_TMK].key, PINPAD_KEY_LEN, NULL,
                            k, PINPAD_KEY_LEN, clear, e);
        if (rc == PX_OK && crypto_kcv_verify(CRYPTO_TDES, clear, PINPAD_KEY_LEN, k + PINPAD_KEY_LEN,
                                             F62_CV, NULL) != PX_OK)
            rc = px_error_set(e, PX_EAUTH,
                              "field 62: the %s does not match its check value; "
                              "no work key installed",
                              pinpad_slot_name(order[i]));
        if (rc == PX_OK)
            set_slot(&next[order[i]], clear);
    }
    if (rc == PX_OK)
        rc = commit(p, next, e);
    OPENSSL_cleanse(clear, sizeof clear);
    OPENSSL_cleanse(next, sizeof next);
    return rc;
}

int pinpad_pin_block(pinpad *p, const char *pin, const char *pan, uint8_t out[PINPAD_PINBLOCK_LEN],
                     px_error *e)
{
    uint8_t clear[CRYPTO_PINBLOCK_MAX];
    size_t n = 0;
    int rc;
    if (!pinpad_has_key(p, PINPAD_PIK))
        return px_error_set(e, PX_ESTATE, "PIN block: no PIN key (sign on first)");
    rc = crypto_pinblock_encode(CRYPTO_PIN_ISO0, pin, pan, clear, sizeof clear, &n, e);
    if (rc == PX_OK)
        rc = crypto_encrypt(CRYPTO_TDES, CRYPTO_ECB, p->slot[PINPAD_PIK].key, PINPAD_KEY_LEN, NULL,
                            clear, PINPAD_PINBLOCK_LEN, out, e);
    OPENSSL_cleanse(clear, sizeof clear);
    return rc;
}

int pinpad_mac(pinpad *p, const uint8_t *data, size_t n, uint8_t out[PINPAD_MAC_LEN], px_error *e)
{
    size_t len = 0;
    if (!pinpad_has_key(p, PINPAD_MAK))
        return px_error_set(e, PX_ESTATE, "MAC: no MAC key (sign on first)");
    return crypto_mac(CRYPTO_MAC_CUP_ECB, p->slot[PINPAD_MAK].key, PINPAD_KEY_LEN, data, n, out,
                      PINPAD_MAC_LEN, &len, e);
}

int pinpad_mac_verify(pinpad *p, const uint8_t *data, size_t n, const uint8_t mac[PINPAD_MAC_LEN],
                      px_error *e)
{
    if (!pinpad_has_key(p, PINPAD_MAK))
        return px_error_set(e, PX_ESTATE, "MAC: no MAC key (sign on first)");
    return crypto_mac_verify(CRYPTO_MAC_CUP_ECB, p->slot[PINPAD_MAK].key, PINPAD_KEY_LEN, data, n,
                             mac, PINPAD_MAC_LEN, e);
}

static int wipe(pinpad *p, int from, int to, px_error *e)
{
    pp_slot next[PINPAD_SLOTS];
    int rc;
    memcpy(next, p->slot, sizeof next);
    memset(&next[from], 0, (size_t)(to - from + 1) * sizeof next[0]);
    rc = commit(p, next, e);
    OPENSSL_cleanse(next, sizeof next);
    return rc;
}

int pinpad_wipe_work_keys(pinpad *p, px_error *e)
{
    return wipe(p, PINPAD_PIK, PINPAD_TDK, e);
}

int pinpad_wipe_all(pinpad *p, px_error *e)
{
    return wipe(p, 0, PINPAD_SLOTS - 1, e);
}
