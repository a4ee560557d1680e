/* tmsfix.c: see tmsfix.h. */
#include "tmsfix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "host/tms/tms_int.h"
#include "lib/hex.h"
#include "lib/str.h"
#include "lib/time.h"
#include "tmpdir.h"

#ifdef TMSFIX_PG
#include "pgtemp.h"
/* One throwaway cluster for the whole test program, a fresh database per test. */
static pgtemp g_pg;
static int g_pg_started, g_db;
static void pg_stop(void)
{
    pgtemp_stop(&g_pg);
}
#endif

void tmsfix_path(const tmsfix *f, const char *name, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/%s", f->dir, name);
}

static int record_flag(void *ud, store *st, const char *tid, int on, px_error *e)
{
    tmsfix *f = ud;
    (void)st;
    if (strcmp(tid, "UNKNOWN0") == 0)
        return px_error_set(e, PX_ENOTFOUND, "terminal %s is not registered", tid);
    if (f->nflags < TMSFIX_FLAGS_MAX)
        snprintf(f->flags[f->nflags++], sizeof f->flags[0], "%s:%d", tid, on);
    return PX_OK;
}

/* Form a key from two random components of the clear hex key (with their KCVs). */
static void form_key(tmsfix *f, const char *usage, char mode, char exp, const char *hex,
                     const char *label)
{
    uint8_t key[16], c1[16], c2[16], kcv[8];
    char h1[33], h2[33], k1[7], k2[7];
    size_t n = 0, kn = 0;
    hsm_key_attrs a = {"", 'T', mode, exp, 16};
    hsm_component c[2] = {{h1, k1}, {h2, k2}};
    hsm_keyblock kb;
    px_error e = {0};
    memcpy(a.usage, usage, 2);
    assert_int_equal(px_hex_decode(hex, key, sizeof key, &n), PX_OK);
    assert_int_equal(crypto_random(c1, 16, NULL), PX_OK);
    for (int i = 0; i < 16; i++)
        c2[i] = key[i] ^ c1[i];
    px_hex_encode(c1, 16, h1);
    px_hex_encode(c2, 16, h2);
    crypto_kcv(CRYPTO_TDES, c1, 16, kcv, sizeof kcv, &kn, NULL);
    px_hex_encode(kcv, 3, k1);
    crypto_kcv(CRYPTO_TDES, c2, 16, kcv, sizeof kcv, &kn, NULL);
    px_hex_encode(kcv, 3, k2);
    if (hsm_key_form(f->h, &a, c, 2, label, &kb, &e) != PX_OK)
        fail_msg("form %s: %s", label, px_error_text(&e));
}

void tmsfix_setup(tmsfix *f, const char *name)
{
    char check[PX_HSM_KCV_HEX_MAX];
    store_config sc;
    px_error e = {0};
    uint8_t pub[TUF_PUB_LEN];
    memset(f, 0, sizeof *f);
    assert_int_equal(testlib_mkdtemp(name, f->dir, sizeof f->dir), 0);
    setenv(HSM_ENV_PASSPHRASE, TMSFIX_PASSPHRASE, 1);
    hsm_config_default(&f->hcfg);
    f->hcfg.lmk_scrypt_log2n = 10;
    tmsfix_path(f, "lmk.bin", f->hcfg.lmk_file, sizeof f->hcfg.lmk_file);
    tmsfix_path(f, "hsm-audit.log", f->hcfg.audit_file, sizeof f->hcfg.audit_file);
    snprintf(f->hcfg.caller, sizeof f->hcfg.caller, "test:%s", name);
    if (hsm_lmk_init(&f->hcfg, check, &e) != PX_OK)
        fail_msg("lmk init: %s", px_error_text(&e));
    store_config_default(&sc);
    tmsfix_path(f, "possum.db", sc.path, sizeof sc.path);
    sc.synchronous_full = 0;
#ifdef TMSFIX_PG
    {
        char db[16];
        if (!g_pg_started) {
            if (pgtemp_start(&g_pg, &e) != PX_OK)
                fail_msg("postgres: %s", px_error_text(&e));
            g_pg_started = 1;
            atexit(pg_stop);
        }
        snprintf(db, sizeof db, "t%d", ++g_db);
        if (pgtemp_create_db(&g_pg, db, sc.conninfo, sizeof sc.conninfo, &e) != PX_OK)
            fail_msg("postgres: %s", px_error_text(&e));
        sc.backend = STORE_POSTGRES;
    }
#endif
    if (store_open(&sc, &f->st, &e) != PX_OK || hsm_open(&f->hcfg, f->st, &f->h, &e) != PX_OK)
        fail_msg("store / hsm: %s", px_error_text(&e));
    form_key(f, "K0", 'X', 'E', TMSFIX_MASTER_HEX, "tms.master");
    form_key(f, "K1", 'E', 'N', TMSFIX_KEK_HEX, "tms.kek");
    /* root: 3 root keys (threshold 2), 2 targets keys (threshold 2), 1 timestamp key */
    f->root.version = 1;
    f->root.expires_ms = px_now_ms() + 365LL * 86400000;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tuf_keypair_generate(f->root_priv[i], pub, NULL), PX_OK);
        tuf_key_from_public(pub, &f->root.keys[f->root.nkeys], NULL);
        px_strlcpy(f->root.roles[TUF_ROLE_ROOT].keyids[i], f->root.keys[f->root.nkeys++].keyid,
                   TUF_KEYID_HEX);
    }
    f->root.roles[TUF_ROLE_ROOT].nkeys = 3;
    f->root.roles[TUF_ROLE_ROOT].threshold = 2;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(tuf_keypair_generate(f->targets_priv[i], pub, NULL), PX_OK);
        tuf_key_from_public(pub, &f->root.keys[f->root.nkeys], NULL);
        px_strlcpy(f->root.roles[TUF_ROLE_TARGETS].keyids[i], f->root.keys[f->root.nkeys++].keyid,
                   TUF_KEYID_HEX);
    }
    f->root.roles[TUF_ROLE_TARGETS].nkeys = 2;
    f->root.roles[TUF_ROLE_TARGETS].threshold = 2;
    assert_int_equal(tuf_keypair_generate(f->ts_priv, pub, NULL), PX_OK);
    tuf_key_from_public(pub, &f->root.keys[f->root.nkeys], NULL);
    px_strlcpy(f->root.roles[TUF_ROLE_TIMESTAMP].keyids[0], f->root.keys[f->root.nkeys++].keyid,
               TUF_KEYID_HEX);
    f->root.roles[TUF_ROLE_TIMESTAMP].nkeys = 1;
    f->root.roles[TUF_ROLE_TIMESTAMP].threshold = 1;
    f->flagger.set = record_flag;
    f->flagger.ud = f;
}

void tmsfix_teardown(tmsfix *f)
{
    hsm_close(f->h);
    store_close(f->st);
    testlib_rmtree(f->dir);
    memset(f, 0, sizeof *f);
}

static char *signed_text(json_t *sp, uint8_t (*privs)[TUF_PRIV_LEN], size_t nsig)
{
    json_t *env = json_pack("{s:o, s:[]}", "signed", sp, "signatures");
    char *text;
    for (size_t i = 0; i < nsig; i++)
        assert_int_equal(tuf_envelope_sign(env, privs[i], NULL), PX_OK);
    text = json_dumps(env, JSON_INDENT(1));
    json_decref(env);
    assert_non_null(text);
    return text;
}

char *tmsfix_root_text(tmsfix *f, const tuf_root *r, size_t nsig)
{
    return signed_text(tuf_root_build(r), f->root_priv, nsig);
}

void tmsfix_publish_root(tmsfix *f)
{
    char *t = tmsfix_root_text(f, &f->root, 2);
    px_error e = {0};
    if (tms_root_publish(f->st, t, strlen(t), &e) != PX_OK)
        fail_msg("root publish: %s", px_error_text(&e));
    free(t);
}

void tmsfix_file(tmsfix *f, const char *name, size_t n, int seed, char *path, size_t pathsz)
{
    FILE *fp;
    tmsfix_path(f, name, path, pathsz);
    fp = fopen(path, "w");
    assert_non_null(fp);
    for (size_t i = 0; i < n; i++)
        fputc((int)((i * 131 + (size_t)seed * 7) & 0xff), fp);
    fclose(fp);
}

char *tmsfix_read(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf;
    long n;
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    buf[n] = 0;
    fclose(fp);
    if (len != NULL)
        *len = (size_t)n;
    return buf;
}

char *tmsfix_targets_text(tmsfix *f, const char *path, const char *name, const char *version,
                          const char *models, size_t nsig)
{
    tuf_target t;
    size_t n;
    char *data = tmsfix_read(path, &n);
    const char *m = models;
    memset(&t, 0, sizeof t);
    px_strlcpy(t.name, name, sizeof t.name);
    px_strlcpy(t.kind, "app", sizeof t.kind);
    px_strlcpy(t.version, version, sizeof t.version);
    t.length = (int64_t)n;
    tuf_sha256_hex(data, n, t.sha256);
    t.expires_ms = px_now_ms() + 365LL * 86400000;
    while (*m) {
        size_t k = strcspn(m, ",");
        memcpy(t.models[t.nmodels], m, k);
        t.models[t.nmodels++][k] = 0;
        m += k + (m[k] == ',');
    }
    free(data);
    return signed_text(tuf_target_build(&t), f->targets_priv, nsig);
}

void tmsfix_package(tmsfix *f, const char *name, const char *version, const char *models, size_t n)
{
    char path[PX_PATH_MAX], fname[128], *meta;
    px_error e = {0};
    snprintf(fname, sizeof fname, "%s-%s.bin", name, version);
    tmsfix_file(f, fname, n, (int)strlen(version), path, sizeof path);
    meta = tmsfix_targets_text(f, path, name, version, models, 2);
    if (tms_package_add(f->st, path, meta, strlen(meta), NULL, &e) != PX_OK)
        fail_msg("package %s %s: %s", name, version, px_error_text(&e));
    free(meta);
}

void tmsfix_terminal(tmsfix *f, const char *serial, const char *model, const char *tid,
                     const char *groups)
{
    tms_terminal t;
    px_error e = {0};
    memset(&t, 0, sizeof t);
    px_strlcpy(t.serial, serial, sizeof t.serial);
    px_strlcpy(t.model, model, sizeof t.model);
    px_strlcpy(t.tid, tid, sizeof t.tid);
    while (groups != NULL && *groups) {
        size_t k = strcspn(groups, ",");
        memcpy(t.groups[t.ngroups], groups, k);
        t.groups[t.ngroups++][k] = 0;
        groups += k + (groups[k] == ',');
    }
    if (tms_terminal_add(f->st, &t, &e) != PX_OK)
        fail_msg("terminal %s: %s", serial, px_error_text(&e));
}

void tmsfix_dmk(const char *serial, uint8_t dmk[16])
{
    uint8_t master[16], data[16];
    size_t n;
    assert_int_equal(px_hex_decode(TMSFIX_MASTER_HEX, master, sizeof master, &n), PX_OK);
    tms_dmk_data(serial, data);
    assert_int_equal(crypto_derive_key(master, 16, data, 16, dmk, NULL), PX_OK);
    crypto_des_set_odd_parity(dmk, 16);
}
