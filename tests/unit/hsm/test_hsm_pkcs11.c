/* test_hsm_pkcs11.c: the PKCS#11 LMK backend against SoftHSM2. The test makes its own token
 * in a temp dir (SOFTHSM2_CONF pointing there), creates the LMK through the hsm, runs key
 * operations on it, and then proves with raw PKCS#11 calls that the LMK cannot be read out
 * of the token: CKA_VALUE is sensitive, wrapping it is refused, and its protections cannot
 * be switched off. Set POSSUM_SKIP_PKCS11=1 to skip (exit 77) where SoftHSM2 is absent. */
#include "hsm_testutil.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "lib/str.h"
#include "tmpdir.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TOKEN "possum-test"
#define USER_PIN "5678"

typedef struct p11_fixture {
    char dir[PX_PATH_MAX];
    hsm_config cfg;
    char check[PX_HSM_KCV_HEX_MAX];
} p11_fixture;

static p11_fixture fx;

/* A SoftHSM2 token of our own: config file, token directory, softhsm2-util --init-token. */
static int group_setup(void **state)
{
    char conf[PX_PATH_MAX + 32], tokens[PX_PATH_MAX + 16], cmd[3 * PX_PATH_MAX];
    px_error e = {0};
    (void)state;
    assert_int_equal(testlib_mkdtemp("hsmp11", fx.dir, sizeof fx.dir), 0);
    snprintf(tokens, sizeof tokens, "%s/tokens", fx.dir);
    snprintf(conf, sizeof conf, "%s/softhsm2.conf", fx.dir);
    snprintf(cmd, sizeof cmd,
             "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", tokens);
    fx_write(conf, cmd, strlen(cmd));
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tokens);
    assert_int_equal(system(cmd), 0);
    setenv("SOFTHSM2_CONF", conf, 1);
    snprintf(cmd, sizeof cmd,
             "softhsm2-util --init-token --free --label %s --so-pin 1234 --pin %s >/dev/null",
             TOKEN, USER_PIN);
    assert_int_equal(system(cmd), 0);
    setenv(HSM_ENV_PKCS11_PIN, USER_PIN, 1);
    hsm_config_default(&fx.cfg);
    fx.cfg.backend = HSM_BACKEND_PKCS11;
    px_strlcpy(fx.cfg.pkcs11_module, MODULE, sizeof fx.cfg.pkcs11_module);
    px_strlcpy(fx.cfg.pkcs11_token_label, TOKEN, sizeof fx.cfg.pkcs11_token_label);
    snprintf(fx.cfg.audit_file, sizeof fx.cfg.audit_file, "%s/var/hsm-audit.log", fx.dir);
    if (hsm_lmk_init(&fx.cfg, fx.check, &e) != PX_OK)
        fail_msg("pkcs11 lmk init: %s", px_error_text(&e));
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    testlib_rmtree(fx.dir);
    return 0;
}

static void test_lmk_in_token_works(void **state)
{
    hsm *h = NULL;
    hsm_key *zpk = NULL, *tpk = NULL, *kek = NULL;
    hsm_key_attrs a = fx_attrs("P0", 'T', 'B', 'S', 16), ka = fx_attrs("K0", 'A', 'B', 'S', 32);
    hsm_keyblock kb, kk;
    hsm_pin_block in, out;
    char check[PX_HSM_KCV_HEX_MAX], ct[128], kcv[PX_HSM_KCV_HEX_MAX];
    size_t entries = 0;
    px_error e = {0};
    (void)state;
    assert_int_equal(strlen(fx.check), 10);
    assert_int_equal(hsm_open(&fx.cfg, NULL, &h, &e), PX_OK);
    assert_string_equal(hsm_lmk_check(h), fx.check);
    /* an LMK is never replaced */
    hsm_config c = fx.cfg;
    snprintf(c.audit_file, sizeof c.audit_file, "%s/other.log", fx.dir);
    assert_int_equal(hsm_lmk_init(&c, check, &e), PX_EEXIST);
    /* keys under it: generate, load, translate, export */
    assert_int_equal(hsm_key_generate(h, &a, NULL, &kb, &e), PX_OK);
    assert_int_equal(hsm_key_load(h, kb.block, &zpk, &e), PX_OK);
    tpk = fx_key(h, "P0", 'T', 'B', 'S', "0123456789ABCDEFFEDCBA9876543210", NULL, NULL);
    fx_pinblock("0123456789ABCDEFFEDCBA9876543210", CRYPTO_PIN_ISO0, "4321", "4000001234567899",
                &in);
    assert_int_equal(hsm_pin_translate(h, tpk, &in, zpk, CRYPTO_PIN_ISO0, "4000001234567899", &out,
                                       &e),
                     PX_OK);
    assert_int_equal(hsm_key_generate(h, &ka, NULL, &kk, &e), PX_OK);
    assert_int_equal(hsm_key_load(h, kk.block, &kek, &e), PX_OK);
    assert_int_equal(hsm_key_export(h, kek, zpk, HSM_EXPORT_ECB, ct, sizeof ct, kcv, &e), PX_OK);
    assert_string_equal(kcv, kb.kcv);
    hsm_close(h);
    /* reopened (a new session): the same LMK reads the same blocks */
    assert_int_equal(hsm_open(&fx.cfg, NULL, &h, &e), PX_OK);
    assert_int_equal(hsm_key_load(h, kb.block, &zpk, &e), PX_OK);
    assert_string_equal(hsm_key_kcv(zpk), kb.kcv);
    assert_int_equal(hsm_audit_verify(fx.cfg.audit_file, &fx.cfg, &entries, &e), PX_OK);
    assert_true(entries > 8);
    hsm_close(h);
}

static void test_wrong_pin_and_missing_key(void **state)
{
    hsm *h = NULL;
    px_error e = {0};
    (void)state;
    setenv(HSM_ENV_PKCS11_PIN, "0000", 1);
    assert_int_equal(hsm_open(&fx.cfg, NULL, &h, &e), PX_EAUTH);
    assert_non_null(strstr(e.msg, "C_Login"));
    setenv(HSM_ENV_PKCS11_PIN, USER_PIN, 1);
    hsm_config c = fx.cfg;
    px_strlcpy(c.pkcs11_key_label, "no-such-lmk", sizeof c.pkcs11_key_label);
    assert_int_equal(hsm_open(&c, NULL, &h, &e), PX_ENOTFOUND);
    px_strlcpy(c.pkcs11_token_label, "no-such-token", sizeof c.pkcs11_token_label);
    assert_int_equal(hsm_open(&c, NULL, &h, &e), PX_ENOTFOUND);
    px_strlcpy(c.pkcs11_module, "/nonexistent/module.so", sizeof c.pkcs11_module);
    assert_int_equal(hsm_open(&c, NULL, &h, &e), PX_ECONFIG);
}

/* Raw PKCS#11 access to the token, as an attacker with the user PIN would have it. */
typedef struct raw {
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    CK_SESSION_HANDLE s;
} raw;

static void raw_open(raw *r)
{
    CK_C_GetFunctionList gfl = NULL;
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16;
    r->dl = dlopen(MODULE, RTLD_NOW);
    assert_non_null(r->dl);
    void *sym = dlsym(r->dl, "C_GetFunctionList");
    assert_non_null(sym);
    memcpy(&gfl, &sym, sizeof gfl);
    assert_int_equal(gfl(&r->f), CKR_OK);
    assert_int_equal(r->f->C_Initialize(NULL), CKR_OK);
    assert_int_equal(r->f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        if (r->f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
            memcmp(ti.label, TOKEN, strlen(TOKEN)) == 0) {
            assert_int_equal(r->f->C_OpenSession(slots[i], CKF_SERIAL_SESSION | CKF_RW_SESSION,
                                                 NULL, NULL, &r->s),
                             CKR_OK);
            assert_int_equal(r->f->C_Login(r->s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4), CKR_OK);
            return;
        }
    }
    fail_msg("token %s not found", TOKEN);
}

static void raw_close(raw *r)
{
    r->f->C_Logout(r->s);
    r->f->C_CloseSession(r->s);
    r->f->C_Finalize(NULL);
    dlclose(r->dl);
}

static CK_OBJECT_HANDLE raw_find(raw *r, const char *label)
{
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n = 0;
    CK_ATTRIBUTE t = {CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)};
    assert_int_equal(r->f->C_FindObjectsInit(r->s, &t, 1), CKR_OK);
    assert_int_equal(r->f->C_FindObjects(r->s, found, 2, &n), CKR_OK);
    r->f->C_FindObjectsFinal(r->s);
    assert_int_equal(n, 1);
    return found[0];
}

static void test_lmk_cannot_leave_the_token(void **state)
{
    raw r;
    uint8_t value[64], wrapped[128];
    CK_ULONG wl = sizeof wrapped, len = 32;
    CK_BBOOL t = CK_TRUE, f = CK_FALSE, sens = CK_FALSE, extr = CK_TRUE, never = CK_FALSE;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_OBJECT_HANDLE lmk, wk;
    (void)state;
    raw_open(&r);
    lmk = raw_find(&r, fx.cfg.pkcs11_key_label);
    /* the value is sensitive: the token will not say it */
    CK_ATTRIBUTE v = {CKA_VALUE, value, sizeof value};
    assert_int_equal(r.f->C_GetAttributeValue(r.s, lmk, &v, 1), CKR_ATTRIBUTE_SENSITIVE);
    CK_ATTRIBUTE flags[] = {
        {CKA_SENSITIVE, &sens, 1}, {CKA_EXTRACTABLE, &extr, 1}, {CKA_NEVER_EXTRACTABLE, &never, 1}};
    assert_int_equal(r.f->C_GetAttributeValue(r.s, lmk, flags, 3), CKR_OK);
    assert_true(sens && !extr && never);
    /* wrapping it under a key of our own is refused */
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0}, wrap = {CKM_AES_KEY_WRAP, NULL, 0};
    CK_ATTRIBUTE wt[] = {{CKA_CLASS, &cls, sizeof cls},
                         {CKA_KEY_TYPE, &kt, sizeof kt},
                         {CKA_VALUE_LEN, &len, sizeof len},
                         {CKA_TOKEN, &f, 1},
                         {CKA_WRAP, &t, 1},
                         {CKA_EXTRACTABLE, &t, 1}};
    assert_int_equal(r.f->C_GenerateKey(r.s, &gen, wt, 6, &wk), CKR_OK);
    assert_int_equal(r.f->C_WrapKey(r.s, &wrap, wk, lmk, wrapped, &wl), CKR_KEY_UNEXTRACTABLE);
    /* its protections cannot be switched off, and it cannot encrypt for anyone */
    CK_ATTRIBUTE on = {CKA_EXTRACTABLE, &t, 1}, off = {CKA_SENSITIVE, &f, 1};
    assert_int_not_equal(r.f->C_SetAttributeValue(r.s, lmk, &on, 1), CKR_OK);
    assert_int_not_equal(r.f->C_SetAttributeValue(r.s, lmk, &off, 1), CKR_OK);
    CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
    assert_int_not_equal(r.f->C_EncryptInit(r.s, &ecb, lmk), CKR_OK);
    /* a copy with weaker attributes is refused too */
    CK_OBJECT_HANDLE copy;
    CK_ATTRIBUTE ct = {CKA_EXTRACTABLE, &t, 1};
    assert_int_not_equal(r.f->C_CopyObject(r.s, lmk, &ct, 1, &copy), CKR_OK);
    assert_int_equal(r.f->C_DestroyObject(r.s, wk), CKR_OK);
    raw_close(&r);
}

static void test_extractable_token_key_refused_as_lmk(void **state)
{
    raw r;
    CK_ULONG len = 32;
    CK_BBOOL t = CK_TRUE;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_OBJECT_HANDLE k;
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    const char *label = "weak-lmk";
    CK_ATTRIBUTE tpl[] = {{CKA_CLASS, &cls, sizeof cls},
                          {CKA_KEY_TYPE, &kt, sizeof kt},
                          {CKA_VALUE_LEN, &len, sizeof len},
                          {CKA_TOKEN, &t, 1},
                          {CKA_SIGN, &t, 1},
                          {CKA_EXTRACTABLE, &t, 1},
                          {CKA_LABEL, (void *)label, (CK_ULONG)strlen(label)}};
    hsm *h = NULL;
    px_error e = {0};
    (void)state;
    raw_open(&r);
    assert_int_equal(r.f->C_GenerateKey(r.s, &gen, tpl, 7, &k), CKR_OK);
    raw_close(&r);
    hsm_config c = fx.cfg;
    px_strlcpy(c.pkcs11_key_label, label, sizeof c.pkcs11_key_label);
    assert_int_equal(hsm_open(&c, NULL, &h, &e), PX_EPERM);
    assert_non_null(strstr(e.msg, "extractable"));
}

static void test_soft_block_refused_by_token_lmk(void **state)
{
    hsm_fixture soft;
    hsm_key_attrs a = fx_attrs("P0", 'T', 'B', 'S', 16);
    hsm_keyblock kb;
    hsm *h = NULL;
    hsm_key *k = NULL;
    px_error e = {0};
    (void)state;
    fx_setup(&soft, "hsmp11soft");
    assert_int_equal(hsm_key_generate(soft.h, &a, NULL, &kb, &e), PX_OK);
    fx_teardown(&soft);
    assert_int_equal(hsm_open(&fx.cfg, NULL, &h, &e), PX_OK);
    assert_int_equal(hsm_key_load(h, kb.block, &k, &e), PX_EAUTH);
    assert_non_null(strstr(e.msg, "another LMK"));
    hsm_close(h);
}

int main(void)
{
    if (access(MODULE, R_OK) != 0) {
        const char *skip = getenv("POSSUM_SKIP_PKCS11");
        fprintf(stderr, "test_hsm_pkcs11: %s missing (install softhsm2)\n", MODULE);
        return skip != NULL && strcmp(skip, "1") == 0 ? 77 : 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lmk_in_token_works),
        cmocka_unit_test(test_wrong_pin_and_missing_key),
        cmocka_unit_test(test_lmk_cannot_leave_the_token),
        cmocka_unit_test(test_extractable_token_key_refused_as_lmk),
        cmocka_unit_test(test_soft_block_refused_by_token_lmk),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
