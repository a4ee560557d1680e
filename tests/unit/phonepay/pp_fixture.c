/* pp_fixture.c: see pp_fixture.h. */
#include "pp_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "pgtemp.h"
#include "tmpdir.h"

static pgtemp g_pg;
static int g_use_pg, g_dbs;

static void pg_stop(void)
{
    pgtemp_stop(&g_pg);
}

int pp_use_postgres(void)
{
    px_error e = {0};
    if (!pgtemp_is_available() && getenv("POSSUM_SKIP_PG") != NULL)
        return 77;
    if (pgtemp_start(&g_pg, &e) != PX_OK) {
        fprintf(stderr, "postgres: %s\n", px_error_text(&e));
        return -1;
    }
    atexit(pg_stop);
    g_use_pg = 1;
    return 0;
}

void pp_setup(pp_fixture *f, const char *name, void (*tune)(phonepay_config *c))
{
    char check[PX_HSM_KCV_HEX_MAX];
    px_error e = {0};
    memset(f, 0, sizeof *f);
    px_log_setup(PX_LOG_WARN, PX_LOG_TEXT, NULL);
    assert_int_equal(testlib_mkdtemp(name, f->dir, sizeof f->dir), 0);
    setenv(HSM_ENV_PASSPHRASE, PP_PASSPHRASE, 1);
    phonepay_config_default(&f->cfg);
    f->cfg.hsm.lmk_scrypt_log2n = 10;
    snprintf(f->cfg.hsm.lmk_file, sizeof f->cfg.hsm.lmk_file, "%s/lmk.bin", f->dir);
    snprintf(f->cfg.hsm.audit_file, sizeof f->cfg.hsm.audit_file, "%s/audit.log", f->dir);
    px_strlcpy(f->cfg.sms_url, "http://127.0.0.1:9/cgi-bin/sendsms", sizeof f->cfg.sms_url);
    px_strlcpy(f->cfg.sms_username, "possum", sizeof f->cfg.sms_username);
    if (tune != NULL)
        tune(&f->cfg);
    if (hsm_lmk_init(&f->cfg.hsm, check, &e) != PX_OK)
        fail_msg("lmk init: %s", px_error_text(&e));
    store_config_default(&f->scfg);
    snprintf(f->scfg.path, sizeof f->scfg.path, "%s/pp.db", f->dir);
    if (g_use_pg) {
        char db[32];
        snprintf(db, sizeof db, "pp%d", ++g_dbs);
        f->scfg.backend = STORE_POSTGRES;
        if (pgtemp_create_db(&g_pg, db, f->scfg.conninfo, sizeof f->scfg.conninfo, &e) != PX_OK)
            fail_msg("postgres db: %s", px_error_text(&e));
    }
    f->scfg.synchronous_full = 0;
    if (store_open(&f->scfg, &f->st, &e) != PX_OK)
        fail_msg("store: %s", px_error_text(&e));
    if (phonepay_new(&f->cfg, f->st, &f->pp, &e) != PX_OK)
        fail_msg("phonepay_new: %s", px_error_text(&e));
}

void pp_teardown(pp_fixture *f)
{
    phonepay_close(f->pp);
    store_close(f->st);
    testlib_rmtree(f->dir);
}

void pp_last_code(pp_fixture *f, const char *mobile, char code[7])
{
    store_stmt *s;
    px_error e = {0};
    const char *t, *p;
    code[0] = 0;
    assert_int_equal(store_prepare(f->st,
                                   "SELECT body FROM phonepay_outbox WHERE recipient = $1 "
                                   "AND event = 'otp' ORDER BY created_ms DESC, id DESC "
                                   "LIMIT 1",
                                   &s, &e),
                     PX_OK);
    store_bind_text(s, 1, mobile);
    assert_int_equal(store_step(s, &e), STORE_ROW);
    t = store_col_text(s, 0);
    p = strstr(t, "验证码");
    assert_non_null(p);
    memcpy(code, p + strlen("验证码"), 6);
    code[6] = 0;
    store_done(s);
}

void pp_add_payee(pp_fixture *f, const char *name, const char *mobile, const char *card)
{
    phonepay_payee_view v;
    char code[7], token[65];
    px_error e = {0};
    if (phonepay_payee_register(f->pp, name, mobile, card, &v, &e) != PX_OK)
        fail_msg("register: %s", px_error_text(&e));
    pp_last_code(f, mobile, code);
    if (phonepay_payee_confirm(f->pp, mobile, code, &v, token, &e) != PX_OK)
        fail_msg("confirm: %s", px_error_text(&e));
    assert_string_equal(v.status, "active");
    usleep(2000); /* the next code's row is newer by created_ms (pp_last_code) */
}

void pp_exec(pp_fixture *f, const char *sql)
{
    px_error e = {0};
    if (store_exec(f->st, sql, &e) != PX_OK)
        fail_msg("%s: %s", sql, px_error_text(&e));
}

int64_t pp_int(pp_fixture *f, const char *sql)
{
    store_stmt *s;
    px_error e = {0};
    int64_t v = 0;
    if (store_prepare(f->st, sql, &s, &e) != PX_OK)
        fail_msg("%s: %s", sql, px_error_text(&e));
    if (store_step(s, &e) == STORE_ROW)
        v = store_col_int64(s, 0);
    store_done(s);
    return v;
}
