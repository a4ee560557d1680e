/*
 * bench_hsm: PIN translations per second (terminal PIN key, format 0 -> zone PIN key, format
 * 0) and MAC verifications per second (X9.19 over 100 bytes), through the hsm API with the
 * key blocks loaded once, on one thread. A soft LMK, audit log and keys are made in a temp
 * directory (removed after). The last line is JSON:
 *   {"bench":"hsm","pin_translate_per_s":N,"mac_verify_per_s":N}
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hsm/hsm.h"
#include "lib/hex.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#define TPK "0123456789ABCDEFFEDCBA9876543210"
#define PAN "6222021234567890123"
#define RUN_NS 2000000000LL /* each figure: about two seconds of work */

static void die(const char *what, const px_error *e)
{
    fprintf(stderr, "bench_hsm: %s: %s\n", what, px_error_text(e));
    exit(1);
}

/* A loaded key of usage/mode from clear hex (two components, as an operator would). */
static hsm_key *clear_key(hsm *h, const char *usage, char mode, const char *hex)
{
    uint8_t key[16], c1[16], c2[16], kcv[8];
    char h1[33], h2[33], k1[7], k2[7];
    size_t n = 0;
    hsm_keyblock kb;
    hsm_key *k = NULL;
    px_error e = {0};
    hsm_key_attrs a = {{usage[0], usage[1], 0}, 'T', mode, 'S', 16};
    px_hex_decode(hex, key, sizeof key, &n);
    crypto_random(c1, 16, NULL);
    for (int i = 0; i < 16; i++)
        c2[i] = key[i] ^ c1[i];
    px_hex_encode(c1, 16, h1);
    px_hex_encode(c2, 16, h2);
    crypto_kcv(CRYPTO_TDES, c1, 16, kcv, sizeof kcv, &n, NULL);
    px_hex_encode(kcv, 3, k1);
    crypto_kcv(CRYPTO_TDES, c2, 16, kcv, sizeof kcv, &n, NULL);
    px_hex_encode(kcv, 3, k2);
    hsm_component comps[2] = {{h1, k1}, {h2, k2}};
    if (hsm_key_form(h, &a, comps, 2, NULL, &kb, &e) != PX_OK ||
        hsm_key_load(h, kb.block, &k, &e) != PX_OK)
        die("key", &e);
    return k;
}

static double pin_translate_rate(hsm *h)
{
    hsm_key *tpk = clear_key(h, "P0", 'B', TPK), *zpk = NULL;
    hsm_key_attrs za = {"P0", 'T', 'B', 'S', 16};
    hsm_keyblock kb;
    hsm_pin_block in, out;
    uint8_t key[16], clear[8];
    size_t n = 0, ops = 0;
    px_error e = {0};
    if (hsm_key_generate(h, &za, NULL, &kb, &e) != PX_OK ||
        hsm_key_load(h, kb.block, &zpk, &e) != PX_OK)
        die("zpk", &e);
    px_hex_decode(TPK, key, sizeof key, &n);
    crypto_pinblock_encode(CRYPTO_PIN_ISO0, "123456", PAN, clear, sizeof clear, &n, NULL);
    crypto_encrypt(CRYPTO_TDES, CRYPTO_ECB, key, 16, NULL, clear, 8, in.data, NULL);
    in.len = 8;
    in.format = CRYPTO_PIN_ISO0;
    int64_t t0 = px_mono_ns(), t;
    do {
        for (int i = 0; i < 10000; i++, ops++)
            if (hsm_pin_translate(h, tpk, &in, zpk, CRYPTO_PIN_ISO0, PAN, &out, &e) != PX_OK)
                die("pin translate", &e);
    } while ((t = px_mono_ns() - t0) < RUN_NS);
    hsm_key_free(h, tpk);
    hsm_key_free(h, zpk);
    return (double)ops * 1e9 / (double)t;
}

static double mac_verify_rate(hsm *h)
{
    hsm_key *mak = clear_key(h, "M3", 'C', TPK);
    uint8_t msg[100], mac[16];
    size_t n = 0, ops = 0;
    px_error e = {0};
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (uint8_t)i;
    if (hsm_mac_generate(h, mak, CRYPTO_MAC_X919, msg, sizeof msg, mac, sizeof mac, &n, &e) !=
        PX_OK)
        die("mac generate", &e);
    int64_t t0 = px_mono_ns(), t;
    do {
        for (int i = 0; i < 10000; i++, ops++)
            if (hsm_mac_verify(h, mak, CRYPTO_MAC_X919, msg, sizeof msg, mac, 8, &e) != PX_OK)
                die("mac verify", &e);
    } while ((t = px_mono_ns() - t0) < RUN_NS);
    hsm_key_free(h, mak);
    return (double)ops * 1e9 / (double)t;
}

int main(void)
{
    char dir[] = "/tmp/possum-bench-hsm.XXXXXX", check[PX_HSM_KCV_HEX_MAX], cmd[128];
    hsm_config cfg;
    hsm *h = NULL;
    px_error e = {0};
    px_log_setup(PX_LOG_WARN, PX_LOG_TEXT, stderr);
    if (mkdtemp(dir) == NULL)
        return 1;
    hsm_config_default(&cfg);
    cfg.lmk_scrypt_log2n = 10;
    snprintf(cfg.lmk_file, sizeof cfg.lmk_file, "%s/lmk.bin", dir);
    snprintf(cfg.audit_file, sizeof cfg.audit_file, "%s/audit.log", dir);
    px_strlcpy(cfg.caller, "bench", sizeof cfg.caller);
    setenv(HSM_ENV_PASSPHRASE, "bench passphrase, not a secret", 1);
    if (hsm_lmk_init(&cfg, check, &e) != PX_OK || hsm_open(&cfg, NULL, &h, &e) != PX_OK)
        die("open", &e);
    double pin = pin_translate_rate(h), mac = mac_verify_rate(h);
    hsm_close(h);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_hsm: could not remove %s\n", dir);
    printf("pin translate (TPK format 0 -> ZPK format 0): %.0f/s\n", pin);
    printf("mac verify (X9.19, 100 bytes):                %.0f/s\n", mac);
    printf("{\"bench\":\"hsm\",\"pin_translate_per_s\":%.0f,\"mac_verify_per_s\":%.0f}\n", pin,
           mac);
    return 0;
}
