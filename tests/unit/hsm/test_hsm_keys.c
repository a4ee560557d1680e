/* test_hsm_keys.c: the soft LMK and key management end to end: LMK init and unlock,
 * generate, form, import, export, derive, named keys, and every refusal. */
#include "hsm_testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "crypto/mac.h"
#include "crypto/tr31.h"
#include "lib/str.h"

#define KEY_A "0123456789ABCDEFFEDCBA9876543210" /* KCV 08D7B4 (shared vectors) */
#define TMK_CUP "70F2A84CCBC2AE8625CBB0F2C22AB923"

static int setup(void **state)
{
    hsm_fixture *f = calloc(1, sizeof *f);
    fx_setup(f, "hsmkeys");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_teardown(*state);
    free(*state);
    return 0;
}

static void test_lmk_init_refuses_overwrite_and_reopens(void **state)
{
    hsm_fixture *f = *state;
    char check[PX_HSM_KCV_HEX_MAX];
    px_error e = {0};
    hsm *h2 = NULL;
    assert_int_equal(strlen(f->lmk_check), 10);
    assert_string_equal(hsm_lmk_check(f->h), f->lmk_check);
    hsm_config c = f->cfg;
    fx_path(f, "other-audit.log", c.audit_file, sizeof c.audit_file);
    assert_int_equal(hsm_lmk_init(&c, check, &e), PX_EEXIST);
    assert_non_null(strstr(e.msg, "never overwritten"));
    /* a non-empty audit log of the current LMK is not silently orphaned by a new LMK */
    c = f->cfg;
    fx_path(f, "var/lmk2.bin", c.lmk_file, sizeof c.lmk_file);
    assert_int_equal(hsm_lmk_init(&c, check, &e), PX_EEXIST);
    assert_non_null(strstr(e.msg, "archive"));
    assert_int_equal(hsm_open(&f->cfg, NULL, &h2, &e), PX_OK);
    assert_string_equal(hsm_lmk_check(h2), f->lmk_check);
    hsm_close(h2);
}

static void test_wrong_passphrase_and_altered_file(void **state)
{
    hsm_fixture *f = *state;
    px_error e = {0};
    hsm *h2 = NULL;
    size_t n = 0;
    setenv(HSM_ENV_PASSPHRASE, "not the passphrase at all", 1);
    assert_int_equal(hsm_open(&f->cfg, NULL, &h2, &e), PX_EAUTH);
    assert_null(h2);
    assert_non_null(strstr(e.msg, "wrong passphrase"));
    setenv(HSM_ENV_PASSPHRASE, TEST_PASSPHRASE, 1);
    /* one edited header digit (the creation time) and the file no longer authenticates */
    char *text = fx_read(f->cfg.lmk_file, &n), *p = strstr(text, "created ") + 8;
    *p = *p == '1' ? '2' : '1';
    char copy[PX_PATH_MAX];
    fx_path(f, "lmk-edited.bin", copy, sizeof copy);
    fx_write(copy, text, n);
    free(text);
    hsm_config c = f->cfg;
    px_strlcpy(c.lmk_file, copy, sizeof c.lmk_file);
    assert_int_equal(hsm_open(&c, NULL, &h2, &e), PX_EAUTH);
    /* no passphrase at all, no terminal to ask on: refused with the variable named */
    unsetenv(HSM_ENV_PASSPHRASE);
    assert_int_equal(hsm_open(&f->cfg, NULL, &h2, &e), PX_EPERM);
    assert_non_null(strstr(e.msg, HSM_ENV_PASSPHRASE));
    setenv(HSM_ENV_PASSPHRASE, TEST_PASSPHRASE, 1);
}

static void test_short_passphrase_refused(void **state)
{
    hsm_fixture *f = *state;
    char check[PX_HSM_KCV_HEX_MAX];
    px_error e = {0};
    hsm_config c = f->cfg;
    fx_path(f, "short/lmk.bin", c.lmk_file, sizeof c.lmk_file);
    fx_path(f, "short/audit.log", c.audit_file, sizeof c.audit_file);
    setenv(HSM_ENV_PASSPHRASE, "short", 1);
    assert_int_equal(hsm_lmk_init(&c, check, &e), PX_EINVAL);
    setenv(HSM_ENV_PASSPHRASE, TEST_PASSPHRASE, 1);
}

static void test_generate_load_named(void **state)
{
    hsm_fixture *f = *state;
    hsm_key_attrs a = fx_attrs("P0", 'T', 'B', 'S', 16), got;
    hsm_keyblock kb;
    hsm_key *k = NULL;
    px_error e = {0};
    assert_int_equal(hsm_key_generate(f->h, &a, "ZPK.bank1", &kb, &e), PX_OK);
    assert_int_equal(strlen(kb.kcv), 6);
    assert_int_equal(kb.block[0], 'D');
    assert_memory_equal(kb.block + 5, "P0TB00S", 7);
    assert_int_equal(hsm_key_load_named(f->h, "ZPK.bank1", &k, &e), PX_OK);
    hsm_key_get_attrs(k, &got);
    assert_memory_equal(&got, &a, sizeof a);
    assert_string_equal(hsm_key_kcv(k), kb.kcv);
    assert_string_equal(hsm_key_label(k), "ZPK.bank1");
    hsm_key_free(f->h, k);
    /* labels are unique and checked */
    assert_int_equal(hsm_key_generate(f->h, &a, "ZPK.bank1", &kb, &e), PX_EEXIST);
    assert_int_equal(hsm_key_generate(f->h, &a, "bad label", &kb, &e), PX_EINVAL);
    assert_int_equal(hsm_key_load_named(f->h, "nope", &k, &e), PX_ENOTFOUND);
    /* AES-256 */
    a = fx_attrs("K0", 'A', 'B', 'E', 32);
    assert_int_equal(hsm_key_generate(f->h, &a, NULL, &kb, &e), PX_OK);
    assert_int_equal(strlen(kb.kcv), 10);
}

static void test_bad_attributes(void **state)
{
    hsm_fixture *f = *state;
    hsm_keyblock kb;
    px_error e = {0};
    hsm_key_attrs a = fx_attrs("P0", 'T', 'G', 'E', 16); /* a PIN key cannot "generate MACs" */
    assert_int_equal(hsm_key_generate(f->h, &a, NULL, &kb, &e), PX_EINVAL);
    assert_non_null(strstr(e.msg, "mode of use"));
    a = fx_attrs("P0", 'T', 'B', 'E', 8);
    assert_int_equal(hsm_key_generate(f->h, &a, NULL, &kb, &e), PX_EINVAL);
    a = fx_attrs("ZZ", 'T', 'B', 'E', 16);
    assert_int_equal(hsm_key_generate(f->h, &a, NULL, &kb, &e), PX_EUNSUPPORTED);
    a = fx_attrs("M3", 'A', 'C', 'E', 16); /* X9.19 is a TDES MAC */
    assert_int_equal(hsm_key_generate(f->h, &a, NULL, &kb, &e), PX_EINVAL);
    a = fx_attrs("P0", 'T', 'B', 'Q', 16);
    assert_int_equal(hsm_key_generate(f->h, &a, NULL, &kb, &e), PX_EINVAL);
}

/* Split KEY_A into components c1 ^ c2 (^ c3) with their KCVs. */
static void components(int three, char hex[3][33], char kcv[3][7])
{
    const char *parts[3] = {"11111111111111112222222222222222", "4444444444444444AAAAAAAAAAAAAAAA",
                            NULL};
    uint8_t k[16], c[3][16], v[8];
    size_t n = 0;
    px_hex_decode(KEY_A, k, 16, NULL);
    px_hex_decode(parts[0], c[0], 16, NULL);
    px_hex_decode(parts[1], c[1], 16, NULL);
    for (int i = 0; i < 16; i++)
        c[three ? 2 : 1][i] = k[i] ^ c[0][i] ^ (three ? c[1][i] : 0);
    for (int j = 0; j < (three ? 3 : 2); j++) {
        px_hex_encode(c[j], 16, hex[j]);
        crypto_kcv(CRYPTO_TDES, c[j], 16, v, sizeof v, &n, NULL);
        px_hex_encode(v, 3, kcv[j]);
    }
}

/* Four bytes of check value (UnionPay field 62): the prefix of TDES(key, zeros). */
static void test_check_value_lengths(void **state)
{
    hsm_fixture *f = *state;
    hsm_key_attrs a = fx_attrs("K0", 'T', 'B', 'S', 16);
    char hex[3][33], kcv[3][7];
    hsm_keyblock kb;
    hsm_key *k = NULL;
    uint8_t cv[16];
    px_error e = {0};
    static const uint8_t expect[8] = {0x08, 0xD7, 0xB4, 0xFB, 0x62, 0x9D, 0x08, 0x85};
    components(0, hex, kcv);
    hsm_component two[2] = {{hex[0], kcv[0]}, {hex[1], kcv[1]}};
    assert_int_equal(hsm_key_form(f->h, &a, two, 2, NULL, &kb, &e), PX_OK);
    assert_int_equal(hsm_key_load(f->h, kb.block, &k, &e), PX_OK);
    assert_int_equal(hsm_key_check_value(f->h, k, 4, cv, &e), PX_OK);
    assert_memory_equal(cv, expect, 4);
    assert_int_equal(hsm_key_check_value(f->h, k, 8, cv, &e), PX_OK);
    assert_memory_equal(cv, expect, 8);
    assert_int_equal(hsm_key_check_value(f->h, k, 9, cv, &e), PX_EINVAL);
    assert_int_equal(hsm_key_check_value(f->h, k, 0, cv, &e), PX_EINVAL);
    hsm_key_free(f->h, k);
}

static void test_form_from_components(void **state)
{
    hsm_fixture *f = *state;
    hsm_key_attrs a = fx_attrs("K0", 'T', 'B', 'S', 16);
    char hex[3][33], kcv[3][7];
    hsm_keyblock kb;
    px_error e = {0};
    components(0, hex, kcv);
    hsm_component two[2] = {{hex[0], kcv[0]}, {hex[1], kcv[1]}};
    assert_int_equal(hsm_key_form(f->h, &a, two, 2, "ZMK.two", &kb, &e), PX_OK);
    assert_string_equal(kb.kcv, "08D7B4");
    components(1, hex, kcv);
    hsm_component three[3] = {{hex[0], kcv[0]}, {hex[1], kcv[1]}, {hex[2], kcv[2]}};
    assert_int_equal(hsm_key_form(f->h, &a, three, 3, NULL, &kb, &e), PX_OK);
    assert_string_equal(kb.kcv, "08D7B4");
    /* dual control: a mistyped component is caught by its own check value, and named */
    three[1].kcv = "000000";
    assert_int_equal(hsm_key_form(f->h, &a, three, 3, NULL, &kb, &e), PX_EAUTH);
    assert_non_null(strstr(e.msg, "component 2"));
    three[1].kcv = kcv[1];
    three[2].kcv = NULL;
    assert_int_equal(hsm_key_form(f->h, &a, three, 3, NULL, &kb, &e), PX_EINVAL);
    assert_int_equal(hsm_key_form(f->h, &a, three, 1, NULL, &kb, &e), PX_EINVAL);
    three[2].kcv = kcv[2];
    three[0].hex = "0123";
    assert_int_equal(hsm_key_form(f->h, &a, three, 3, NULL, &kb, &e), PX_EINVAL);
    /* two equal components make a zero key: refused as degenerate TDES */
    hsm_component same[2] = {{hex[0], kcv[0]}, {hex[0], kcv[0]}};
    assert_int_equal(hsm_key_form(f->h, &a, same, 2, NULL, &kb, &e), PX_EINVAL);
}

static void test_tampered_and_foreign_blocks(void **state)
{
    hsm_fixture *f = *state;
    hsm_key_attrs a = fx_attrs("M3", 'T', 'C', 'E', 16);
    hsm_keyblock kb;
    hsm_key *k = NULL;
    px_error e = {0};
    assert_int_equal(hsm_key_generate(f->h, &a, NULL, &kb, &e), PX_OK);
    /* one ciphertext digit */
    char t[PX_HSM_KEYBLOCK_MAX];
    px_strlcpy(t, kb.block, sizeof t);
    size_t n = strlen(t);
    t[n - 40] = t[n - 40] == '0' ? '1' : '0';
    assert_int_equal(hsm_key_load(f->h, t, &k, &e), PX_EAUTH);
    assert_null(k);
    /* the header: turn the MAC key into a PIN key */
    px_strlcpy(t, kb.block, sizeof t);
    memcpy(t + 5, "P0", 2);
    t[8] = 'B';
    assert_int_equal(hsm_key_load(f->h, t, &k, &e), PX_EAUTH);
    assert_non_null(strstr(e.msg, "authenticate"));
    /* garbage */
    assert_int_equal(hsm_key_load(f->h, "D0016P0TB00S0000", &k, &e) < 0, 1);
    assert_int_equal(hsm_key_load(f->h, "", &k, &e) < 0, 1);

    /* a block made under another LMK */
    hsm_fixture other;
    fx_setup(&other, "hsmother");
    assert_int_equal(hsm_key_generate(other.h, &a, NULL, &kb, &e), PX_OK);
    assert_int_equal(hsm_key_load(f->h, kb.block, &k, &e), PX_EAUTH);
    assert_non_null(strstr(e.msg, "another LMK"));
    fx_teardown(&other);
    /* ... and one without our KP block, under some other key block protection key */
    uint8_t kbpk[32] = {1, 2, 3}, key[16] = {9, 8, 7};
    assert_int_equal(crypto_tr31_wrap_str(kbpk, 32, "D0000P0TB00S0000", key, 16, t, sizeof t, &e),
                     PX_OK);
    assert_int_equal(hsm_key_load(f->h, t, &k, &e), PX_EAUTH);
    /* a version B block is never a block under the LMK */
    assert_int_equal(crypto_tr31_wrap_str(kbpk, 16, "B0000P0TB00S0000", key, 16, t, sizeof t, &e),
                     PX_OK);
    assert_int_equal(hsm_key_load(f->h, t, &k, &e), PX_EAUTH);
}

static void test_label_bound_in_block(void **state)
{
    hsm_fixture *f = *state;
    hsm_key_attrs a = fx_attrs("P0", 'T', 'B', 'E', 16);
    hsm_keyblock ka, kb;
    hsm_key *k = NULL;
    px_error e = {0};
    assert_int_equal(hsm_key_generate(f->h, &a, "swap.a", &ka, &e), PX_OK);
    assert_int_equal(hsm_key_generate(f->h, &a, "swap.b", &kb, &e), PX_OK);
    /* someone with write access to the database swaps the rows' blocks */
    char sql[2 * PX_HSM_KEYBLOCK_MAX + 128];
    snprintf(sql, sizeof sql, "UPDATE hsm_key SET key_block = '%s' WHERE label = 'swap.a'",
             kb.block);
    assert_int_equal(store_exec(f->st, sql, &e), PX_OK);
    assert_int_equal(hsm_key_load_named(f->h, "swap.a", &k, &e), PX_EAUTH);
    assert_non_null(strstr(e.msg, "another label"));
    assert_int_equal(hsm_key_load_named(f->h, "swap.b", &k, &e), PX_OK);
    hsm_key_free(f->h, k);
}

static void test_unionpay_work_key_import_export(void **state)
{
    hsm_fixture *f = *state;
    hsm_key *tmk = fx_key(f->h, "K0", 'T', 'B', 'S', TMK_CUP, "TMK.cup", NULL), *mak = NULL;
    hsm_key_attrs a = fx_attrs("M1", 'D', 'C', 'S', 0);
    hsm_keyblock kb;
    char out[128], kcv[PX_HSM_KCV_HEX_MAX], want[7];
    uint8_t clear[8], v[8];
    size_t n = 0;
    px_error e = {0};
    /* shared vector: MAC key C24A8FB57AA20123 arrives ECB-encrypted under the TMK */
    px_hex_decode("C24A8FB57AA20123", clear, 8, NULL);
    crypto_kcv(CRYPTO_DES, clear, 8, v, sizeof v, &n, NULL);
    px_hex_encode(v, 3, want);
    assert_int_equal(hsm_key_import(f->h, tmk, "96D605EA176B7E9E", &a, want, "MAK.cup", &kb, &e),
                     PX_OK);
    assert_string_equal(kb.kcv, want);
    assert_int_equal(hsm_key_import(f->h, tmk, "96D605EA176B7E9E", &a, "000000", NULL, &kb, &e),
                     PX_EAUTH);
    assert_int_equal(hsm_key_load_named(f->h, "MAK.cup", &mak, &e), PX_OK);
    assert_int_equal(hsm_key_export(f->h, tmk, mak, HSM_EXPORT_ECB, out, sizeof out, kcv, &e),
                     PX_OK);
    assert_string_equal(out, "96D605EA176B7E9E");
    assert_string_equal(kcv, want);
    /* sign-on: a fresh PIN key under the TMK, back in through import: the same key */
    hsm_key_attrs pa = fx_attrs("P0", 'T', 'B', 'S', 16);
    hsm_key *pik = NULL;
    assert_int_equal(hsm_key_generate(f->h, &pa, NULL, &kb, &e), PX_OK);
    assert_int_equal(hsm_key_load(f->h, kb.block, &pik, &e), PX_OK);
    assert_int_equal(hsm_key_export(f->h, tmk, pik, HSM_EXPORT_ECB, out, sizeof out, kcv, &e),
                     PX_OK);
    assert_int_equal(strlen(out), 32);
    assert_string_equal(kcv, kb.kcv);
    hsm_keyblock back;
    assert_int_equal(hsm_key_import(f->h, tmk, out, &pa, kcv, NULL, &back, &e), PX_OK);
    assert_string_equal(back.kcv, kb.kcv);
    hsm_key_free(f->h, pik);
    hsm_key_free(f->h, mak);
    hsm_key_free(f->h, tmk);
}

static void test_export_refusals(void **state)
{
    hsm_fixture *f = *state;
    hsm_key *tmk = fx_key(f->h, "K0", 'T', 'B', 'S', TMK_CUP, NULL, NULL);
    hsm_key *kbpk = fx_key(f->h, "K1", 'A', 'B', 'S', KEY_A KEY_A, NULL, NULL);
    hsm_key *nonexp = fx_key(f->h, "P0", 'T', 'B', 'N', KEY_A, "PIK.n", NULL);
    hsm_key *exp_e = fx_key(f->h, "P0", 'T', 'B', 'E', KEY_A, NULL, NULL);
    hsm_key *aes = fx_key(f->h, "P0", 'A', 'B', 'S', KEY_A KEY_A, NULL, NULL);
    hsm_key *mac = fx_key(f->h, "M3", 'T', 'C', 'S', KEY_A, NULL, NULL);
    hsm_key *kek_enc_only = fx_key(f->h, "K0", 'T', 'D', 'S', TMK_CUP, NULL, NULL);
    char out[PX_HSM_KEYBLOCK_MAX], kcv[PX_HSM_KCV_HEX_MAX];
    px_error e = {0};
    assert_int_equal(hsm_key_export(f->h, tmk, nonexp, HSM_EXPORT_ECB, out, sizeof out, kcv, &e),
                     PX_EPERM);
    assert_non_null(strstr(e.msg, "non-exportable"));
    assert_string_equal(out, "");
    assert_int_equal(hsm_key_export(f->h, kbpk, nonexp, HSM_EXPORT_TR31, out, sizeof out, kcv, &e),
                     PX_EPERM);
    assert_int_equal(hsm_key_export(f->h, tmk, exp_e, HSM_EXPORT_ECB, out, sizeof out, kcv, &e),
                     PX_EPERM);
    assert_int_equal(hsm_key_export(f->h, tmk, aes, HSM_EXPORT_ECB, out, sizeof out, kcv, &e),
                     PX_EPERM);
    assert_non_null(strstr(e.msg, "weaker"));
    assert_int_equal(hsm_key_export(f->h, mac, exp_e, HSM_EXPORT_ECB, out, sizeof out, kcv, &e),
                     PX_EPERM);
    assert_int_equal(hsm_key_export(f->h, tmk, tmk, HSM_EXPORT_ECB, out, sizeof out, kcv, &e),
                     PX_EPERM);
    assert_int_equal(hsm_key_export(f->h, kek_enc_only, exp_e, HSM_EXPORT_ECB, out, sizeof out, kcv,
                                    &e),
                     PX_EPERM);
    assert_int_equal(hsm_key_export(f->h, kbpk, exp_e, HSM_EXPORT_ECB, out, sizeof out, kcv, &e),
                     PX_EPERM);
    /* E goes out as a TR-31 block (under a K1 only), and comes back the same key */
    assert_int_equal(hsm_key_export(f->h, tmk, exp_e, HSM_EXPORT_TR31, out, sizeof out, kcv, &e),
                     PX_EPERM);
    assert_int_equal(hsm_key_export(f->h, kbpk, exp_e, HSM_EXPORT_TR31, out, sizeof out, kcv, &e),
                     PX_OK);
    assert_int_equal(out[0], 'D');
    assert_string_equal(kcv, "08D7B4");
    hsm_keyblock kb;
    assert_int_equal(hsm_key_import(f->h, kbpk, out, NULL, "08D7B4", "imported.tr31", &kb, &e),
                     PX_OK);
    assert_string_equal(kb.kcv, "08D7B4");
    assert_memory_equal(kb.block + 5, "P0TB00E", 7);
    hsm_key_attrs a = fx_attrs("P0", 'T', 'B', 'E', 16);
    assert_int_equal(hsm_key_import(f->h, kbpk, out, &a, NULL, NULL, &kb, &e), PX_EINVAL);
    /* a KEK that only sends (mode E) cannot take a cryptogram back in with other attributes */
    hsm_key *send_only = fx_key(f->h, "K0", 'T', 'E', 'S', TMK_CUP, NULL, NULL);
    hsm_key_attrs d0 = fx_attrs("D0", 'T', 'B', 'S', 16);
    char ct[64];
    assert_int_equal(hsm_key_export(f->h, send_only, mac, HSM_EXPORT_ECB, ct, sizeof ct, kcv, &e),
                     PX_OK);
    assert_int_equal(hsm_key_import(f->h, send_only, ct, &d0, NULL, NULL, &kb, &e), PX_EPERM);
    hsm_key_free(f->h, send_only);
    /* a MAC key cannot act as an import KEK either */
    assert_int_equal(hsm_key_import(f->h, mac, "96D605EA176B7E9E96D605EA176B7E9E", &a, NULL, NULL,
                                    &kb, &e),
                     PX_EPERM);
    /* a 256-bit key does not arrive under an 80-bit KEK */
    hsm_key_attrs big = fx_attrs("P0", 'A', 'B', 'E', 32);
    assert_int_equal(
        hsm_key_import(f->h, tmk,
                       "96D605EA176B7E9E96D605EA176B7E9E96D605EA176B7E9E96D605EA176B7E9E", &big,
                       NULL, NULL, &kb, &e),
        PX_EPERM);
    hsm_key *all[] = {tmk, kbpk, nonexp, exp_e, aes, mac, kek_enc_only};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        hsm_key_free(f->h, all[i]);
}

static void test_derive(void **state)
{
    hsm_fixture *f = *state;
    hsm_key *master = fx_key(f->h, "K0", 'T', 'X', 'S', KEY_A, "TMS.master", NULL);
    hsm_key *not_x = fx_key(f->h, "K0", 'T', 'B', 'S', KEY_A, NULL, NULL);
    const uint8_t serial[8] = {0x00, 0x00, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12};
    uint8_t mk[16], want[16], v[8];
    char wkcv[7];
    size_t n = 0;
    hsm_keyblock kb;
    px_error e = {0};
    hsm_derive_params p = {HSM_DERIVE_3DES, serial, 8, NULL, NULL};
    hsm_key_attrs a = fx_attrs("K0", 0, 'B', 'S', 0);
    px_hex_decode(KEY_A, mk, 16, NULL);
    crypto_derive_key(mk, 16, serial, 8, want, NULL);
    crypto_kcv(CRYPTO_TDES, want, 16, v, sizeof v, &n, NULL);
    px_hex_encode(v, 3, wkcv);
    assert_int_equal(hsm_key_derive(f->h, master, &p, &a, "DMK.12345678", &kb, &e), PX_OK);
    assert_string_equal(kb.kcv, wkcv);
    assert_memory_equal(kb.block + 5, "K0TB00S", 7);
    assert_int_equal(hsm_key_derive(f->h, not_x, &p, &a, NULL, &kb, &e), PX_EPERM);
    hsm_key_attrs wrong = fx_attrs("P0", 0, 'B', 'S', 0);
    assert_int_equal(hsm_key_derive(f->h, master, &p, &wrong, NULL, &kb, &e), PX_EPERM);
    hsm_key *tight = fx_key(f->h, "K0", 'T', 'X', 'N', KEY_A, NULL, NULL);
    assert_int_equal(hsm_key_derive(f->h, tight, &p, &a, NULL, &kb, &e), PX_EPERM);
    p.datalen = 5;
    assert_int_equal(hsm_key_derive(f->h, master, &p, &a, NULL, &kb, &e), PX_EINVAL);

    /* PBOC purse: load key -> session key -> MAC1 (shared vector) */
    hsm_key *load = fx_key(f->h, "E6", 'T', 'X', 'N', "11223344556677888877665544332211", NULL,
                           NULL),
            *sk = NULL;
    const uint8_t sdata[8] = {0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x80, 0x00};
    hsm_derive_params sp = {HSM_DERIVE_SESSION, sdata, 8, NULL, NULL};
    hsm_key_attrs sa = fx_attrs("E6", 0, 'C', 'N', 0);
    assert_int_equal(hsm_key_derive(f->h, load, &sp, &sa, NULL, &kb, &e), PX_OK);
    px_hex_decode("9B1D924E05595603", mk, 8, NULL);
    crypto_kcv(CRYPTO_DES, mk, 8, v, sizeof v, &n, NULL);
    px_hex_encode(v, 3, wkcv);
    assert_string_equal(kb.kcv, wkcv);
    assert_int_equal(hsm_key_load(f->h, kb.block, &sk, &e), PX_OK);
    const uint8_t mac1_data[] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,
                                 0x01, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55};
    uint8_t mac[16];
    assert_int_equal(hsm_mac_generate(f->h, sk, CRYPTO_MAC_PBOC, mac1_data, sizeof mac1_data, mac,
                                      sizeof mac, &n, &e),
                     PX_OK);
    assert_int_equal(n, 4);
    px_hex_decode("2988AE5A", want, 4, NULL);
    assert_memory_equal(mac, want, 4);
    /* EMV option A card key */
    hsm_key *imk = fx_key(f->h, "E0", 'T', 'X', 'N', KEY_A, NULL, NULL);
    hsm_derive_params ep = {HSM_DERIVE_EMV_A, NULL, 0, "5413330089020011", "01"};
    hsm_key_attrs ea = fx_attrs("E0", 0, 'C', 'N', 0);
    assert_int_equal(hsm_key_derive(f->h, imk, &ep, &ea, NULL, &kb, &e), PX_OK);
    px_hex_decode(KEY_A, mk, 16, NULL);
    crypto_derive_emv_option_a(mk, 16, "5413330089020011", "01", want, NULL);
    crypto_kcv(CRYPTO_TDES, want, 16, v, sizeof v, &n, NULL);
    px_hex_encode(v, 3, wkcv);
    assert_string_equal(kb.kcv, wkcv);
    hsm_key *all[] = {master, not_x, tight, load, sk, imk};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        hsm_key_free(f->h, all[i]);
}

typedef struct list_ctx {
    int n;
    char labels[8][PX_HSM_LABEL_MAX];
} list_ctx;

static int on_row(void *ud, const hsm_key_row *r)
{
    list_ctx *c = ud;
    if (c->n < 8)
        px_strlcpy(c->labels[c->n], r->label, PX_HSM_LABEL_MAX);
    c->n++;
    assert_true(strlen(r->kcv) == 6 || strlen(r->kcv) == 10);
    assert_true(r->created_ms > 0);
    return 0;
}

static void test_list_and_delete(void **state)
{
    hsm_fixture *f = *state;
    hsm_key_attrs a = fx_attrs("D0", 'A', 'B', 'E', 16);
    hsm_keyblock kb;
    list_ctx c = {0};
    px_error e = {0};
    assert_int_equal(hsm_key_generate(f->h, &a, "b.data", &kb, &e), PX_OK);
    assert_int_equal(hsm_key_generate(f->h, &a, "a.data", &kb, &e), PX_OK);
    assert_int_equal(hsm_keys_list(f->st, on_row, &c, &e), PX_OK);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.labels[0], "a.data");
    assert_int_equal(hsm_key_delete(f->h, "a.data", &e), PX_OK);
    assert_int_equal(hsm_key_delete(f->h, "a.data", &e), PX_ENOTFOUND);
    c.n = 0;
    assert_int_equal(hsm_keys_list(f->st, on_row, &c, &e), PX_OK);
    assert_int_equal(c.n, 1);
}

static void test_no_store(void **state)
{
    hsm_fixture *f = *state;
    hsm_key_attrs a = fx_attrs("D0", 'A', 'B', 'E', 16);
    hsm_keyblock kb;
    hsm *h = NULL;
    hsm_key *k = NULL;
    px_error e = {0};
    assert_int_equal(hsm_open(&f->cfg, NULL, &h, &e), PX_OK);
    assert_int_equal(hsm_key_generate(h, &a, NULL, &kb, &e), PX_OK);
    assert_int_equal(hsm_key_generate(h, &a, "named", &kb, &e), PX_ESTATE);
    assert_int_equal(hsm_key_load_named(h, "named", &k, &e), PX_ESTATE);
    hsm_close(h);
}

static void test_config_bind(void **state)
{
    (void)state;
    px_config *c = NULL;
    hsm_config cfg;
    px_error e = {0};
    const char *ok =
        "[store]\npath = x.db\n[hsm]\nbackend = pkcs11\npkcs11_token_label = tok\naudit_flush_ms = 50\n";
    assert_int_equal(px_config_load_string(ok, "t.ini", &c, &e), PX_OK);
    hsm_config_default(&cfg);
    assert_int_equal(hsm_config_bind(c, "hsm", &cfg, &e), PX_OK);
    assert_int_equal(cfg.backend, HSM_BACKEND_PKCS11);
    assert_string_equal(cfg.pkcs11_token_label, "tok");
    assert_string_equal(cfg.lmk_file, "var/lmk.bin");
    assert_int_equal(cfg.audit_flush_ms, 50);
    px_config_free(c);
    /* there is no key for a passphrase: putting one in the file is an error naming it */
    const char *bad = "[hsm]\nbackend = soft\npassphrase = hunter2hunter2\n";
    assert_int_equal(px_config_load_string(bad, "t.ini", &c, &e), PX_OK);
    assert_int_not_equal(hsm_config_bind(c, "hsm", &cfg, &e), PX_OK);
    assert_non_null(strstr(e.msg, "passphrase"));
    assert_null(strstr(e.msg, "hunter2"));
    px_config_free(c);
}

/* Nothing a test put in as a clear key appears in the store, the audit log or anywhere else
 * under the fixture's directory. */
static void test_no_clear_key_at_rest(void **state)
{
    hsm_fixture *f = *state;
    const char *secrets[] = {KEY_A, TMK_CUP, "C24A8FB57AA20123", "11223344556677888877665544332211",
                             "9B1D924E05595603"};
    hsm_key *k = fx_key(f->h, "P0", 'T', 'B', 'S', KEY_A, "scan.zpk", NULL);
    hsm_key *t = fx_key(f->h, "K0", 'T', 'B', 'S', TMK_CUP, "scan.tmk", NULL);
    hsm_key_attrs a = fx_attrs("M1", 'D', 'C', 'S', 0);
    hsm_keyblock kb;
    px_error e = {0};
    assert_int_equal(hsm_key_import(f->h, t, "96D605EA176B7E9E", &a, NULL, "scan.mak", &kb, &e),
                     PX_OK);
    hsm_key_free(f->h, k);
    hsm_key_free(f->h, t);
    assert_int_equal(hsm_audit_flush(f->h, &e), PX_OK);
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
        if (fx_dir_has_secret(f->dir, secrets[i]))
            fail_msg("clear key %zu found at rest under %s", i, f->dir);
    /* the generated keys: learn them by export under a known KEK, then scan for them */
    hsm_key *kek = fx_key(f->h, "K0", 'A', 'B', 'S', KEY_A KEY_A, NULL, NULL), *g = NULL;
    hsm_key_attrs ga = fx_attrs("P0", 'T', 'B', 'S', 16);
    char out[128], kcv[PX_HSM_KCV_HEX_MAX], hex[33];
    uint8_t ct[16], clear[16], kk[32];
    assert_int_equal(hsm_key_generate(f->h, &ga, "scan.gen", &kb, &e), PX_OK);
    assert_int_equal(hsm_key_load(f->h, kb.block, &g, &e), PX_OK);
    assert_int_equal(hsm_key_export(f->h, kek, g, HSM_EXPORT_ECB, out, sizeof out, kcv, &e), PX_OK);
    px_hex_decode(out, ct, 16, NULL);
    px_hex_decode(KEY_A KEY_A, kk, 32, NULL);
    crypto_decrypt(CRYPTO_AES, CRYPTO_ECB, kk, 32, NULL, ct, 16, clear, NULL);
    px_hex_encode(clear, 16, hex);
    assert_int_equal(hsm_audit_flush(f->h, &e), PX_OK);
    assert_false(fx_dir_has_secret(f->dir, hex));
    hsm_key_free(f->h, g);
    hsm_key_free(f->h, kek);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lmk_init_refuses_overwrite_and_reopens, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wrong_passphrase_and_altered_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_short_passphrase_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generate_load_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_attributes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_form_from_components, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_and_foreign_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_bound_in_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unionpay_work_key_import_export, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_derive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_value_lengths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_and_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_store, setup, teardown),
        cmocka_unit_test(test_config_bind),
        cmocka_unit_test_setup_teardown(test_no_clear_key_at_rest, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
