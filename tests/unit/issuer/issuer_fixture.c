/* issuer_fixture.c: see issuer_fixture.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "crypto/pinblock.h"
#include "issuer_fixture.h"
#include "lib/hex.h"
#include "lib/str.h"

void fx_lmk_init(const char *dir, hsm_config *cfg)
{
    char check[PX_HSM_KCV_HEX_MAX];
    px_error e = {0};
    setenv(HSM_ENV_PASSPHRASE, FX_PASSPHRASE, 1);
    hsm_config_default(cfg);
    cfg->lmk_scrypt_log2n = 10;
    snprintf(cfg->lmk_file, sizeof cfg->lmk_file, "%s/var/lmk.bin", dir);
    snprintf(cfg->audit_file, sizeof cfg->audit_file, "%s/var/hsm-audit.log", dir);
    if (hsm_lmk_init(cfg, check, &e) != PX_OK)
        fail_msg("lmk init: %s", px_error_text(&e));
}

void fx_demo_zpk(uint8_t out[16])
{
    /* docs/issuer.md, "Demo keys": the ZPK's three components (KCV BD08F5). */
    static const char *const comps[3] = {"F891803DA162AB9D080EA162CD042A6E",
                                         "7FB67F3BA15D4C678643F1B0B5CE8579",
                                         "E9495723DCE364C185F15E9BB0F76E98"};
    uint8_t c[16];
    size_t n;
    memset(out, 0, 16);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(px_hex_decode(comps[i], c, sizeof c, &n), PX_OK);
        for (size_t k = 0; k < 16; k++)
            out[k] ^= c[k];
    }
}

void fx_pin_block(const char *pin, const char *pan, uint8_t out[8])
{
    uint8_t zpk[16], clear[8];
    size_t n = 0;
    fx_demo_zpk(zpk);
    assert_int_equal(crypto_pinblock_encode(CRYPTO_PIN_ISO0, pin, pan, clear, sizeof clear, &n,
                                            NULL),
                     PX_OK);
    assert_int_equal(crypto_encrypt(CRYPTO_TDES, CRYPTO_ECB, zpk, 16, NULL, clear, 8, out, NULL),
                     PX_OK);
    crypto_cleanse(zpk, sizeof zpk);
    crypto_cleanse(clear, sizeof clear);
}

static void set(iso8583_msg *m, int f, const char *v)
{
    px_error e = {0};
    if (v != NULL && iso8583_set(m, f, v, &e) != PX_OK)
        fail_msg("field %d: %s", f, px_error_text(&e));
}

void fx_build(iso8583_msg *m, const fx_req *r)
{
    char amount[13];
    int fin = strcmp(r->mti, "0800") != 0;
    iso8583_msg_init(m, &iso8583_1987_ascii);
    assert_int_equal(iso8583_set_mti(m, r->mti, NULL), PX_OK);
    set(m, 2, fin ? r->pan : NULL);
    set(m, 3, r->proc);
    if (r->amount >= 0) {
        snprintf(amount, sizeof amount, "%012lld", (long long)r->amount);
        set(m, 4, amount);
    }
    set(m, 7, r->tx_time ? r->tx_time : FX_TX_TIME);
    set(m, 11, r->stan);
    set(m, 22, fin && strcmp(r->mti, "0200") == 0 ? "021" : NULL);
    set(m, 32, fin ? FX_ACQUIRER : NULL);
    set(m, 37, fin ? (r->rrn ? r->rrn : "632600000001") : NULL);
    set(m, 41, fin ? "10000001" : NULL);
    set(m, 42, fin ? "898100000000001" : NULL);
    set(m, 39, r->f39);
    set(m, 48, r->f48);
    set(m, 49, fin ? "156" : NULL);
    if (r->pin != NULL) {
        uint8_t pb[8];
        fx_pin_block(r->pin, r->pan, pb);
        assert_int_equal(iso8583_set_bin(m, 52, pb, 8, NULL), PX_OK);
    }
    set(m, 70, r->f70);
    set(m, 90, r->f90);
    set(m, 103, r->f103);
}

size_t fx_pack(const iso8583_msg *m, uint8_t *out, size_t cap)
{
    size_t n = 0;
    px_error e = {0};
    if (iso8583_pack(&iso8583_1987_ascii, m, out, cap, &n, &e) != PX_OK)
        fail_msg("pack: %s", px_error_text(&e));
    return n;
}

const char *fx_field(const iso8583_msg *m, int f)
{
    const uint8_t *p;
    size_t n;
    return iso8583_get(m, f, &p, &n) == PX_OK ? (const char *)p : "";
}

void fx_f90(const char *mti, const char *stan, const char *tx_time, char out[43])
{
    snprintf(out, 43, "%s%s%s000" FX_ACQUIRER "00000000000", mti, stan, tx_time);
}
