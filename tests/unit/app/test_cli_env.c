/*
 * cli_env (src/app/cli_env.c): how a `possum` command finds its configuration (--config,
 * --db, its default: required, allowed to be absent, or optional) and opens its store and
 * HSM; the errors it reports; the HSM settings bound by the command's binder with the
 * command's caller; opening in steps with the HSM settings adjusted in between.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/cli_env.h"
#include "lib/str.h"
#include "tmpdir.h"

static char dir[512], ini[600], missing[600], lmk[600], audit[600], db[600];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    char text[2048];
    hsm_config hc;
    char check[PX_HSM_KCV_HEX_MAX];
    px_error e = {0};
    (void)state;
    if (testlib_mkdtemp("cli-env", dir, sizeof dir) != 0)
        return -1;
    snprintf(ini, sizeof ini, "%s/possum.ini", dir);
    snprintf(missing, sizeof missing, "%s/none.ini", dir);
    snprintf(lmk, sizeof lmk, "%s/lmk.bin", dir);
    snprintf(audit, sizeof audit, "%s/audit.log", dir);
    snprintf(db, sizeof db, "%s/db.sqlite", dir);
    snprintf(text, sizeof text,
             "[store]\nbackend = sqlite\npath = %s/config.sqlite\n[hsm]\nlmk_file = %s\n"
             "audit_file = %s\n[svc]\nhsm_audit_file = %s/svc-audit.log\n",
             dir, lmk, audit, dir);
    write_file(ini, text);
    setenv(HSM_ENV_PASSPHRASE, "cli env test passphrase", 1);
    hsm_config_default(&hc);
    px_strlcpy(hc.lmk_file, lmk, sizeof hc.lmk_file);
    px_strlcpy(hc.audit_file, audit, sizeof hc.audit_file);
    hc.lmk_scrypt_log2n = 10;
    return hsm_lmk_init(&hc, check, &e) == PX_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    testlib_rmtree(dir);
    return 0;
}

/* --config / --db as a command's option table would hold them after cli_parse. */
static void set_opts(cli_opt opts[3], const char *config, const char *dbpath)
{
    opts[0] = (cli_opt){"config", 0, "", config};
    opts[1] = (cli_opt){"db", 0, "", dbpath};
    opts[2] = (cli_opt){0, 0, 0, 0};
}

static int svc_binds = 0;

/* A service's binder: [hsm], then its own hsm_audit_file; sets its own caller (overridden). */
static int svc_bind(px_config *c, hsm_config *out, px_error *e)
{
    const char *v = px_config_get(c, "svc", "hsm_audit_file");
    int rc = px_config_has_section(c, "hsm") ? hsm_config_bind(c, "hsm", out, e) : PX_OK;
    svc_binds++;
    if (rc == PX_OK && v != NULL)
        px_strlcpy(out->audit_file, v, sizeof out->audit_file);
    px_strlcpy(out->caller, "svc", sizeof out->caller);
    return rc;
}

static void test_db_mode(void **state)
{
    const cli_env_spec spec = {missing, "cli:test", NULL};
    cli_opt opts[3];
    cli_env x;
    px_error e = {0};
    char longpath[2 * PX_PATH_MAX];
    (void)state;
    /* neither, and no default: the error names both options and the default */
    set_opts(opts, NULL, NULL);
    cli_env_init(&x, &spec);
    assert_int_equal(cli_env_open(&x, opts, CLI_ENV_DB | CLI_ENV_STORE, &e), PX_EINVAL);
    assert_non_null(strstr(e.msg, "give --config FILE or --db PATH (no "));
    assert_non_null(strstr(e.msg, "none.ini here)"));
    assert_null(x.st);
    cli_env_close(&x);
    /* --db: the store at that path, no configuration */
    set_opts(opts, NULL, db);
    cli_env_init(&x, &spec);
    assert_int_equal(cli_env_open(&x, opts, CLI_ENV_DB | CLI_ENV_STORE, &e), PX_OK);
    assert_non_null(x.st);
    assert_null(x.ini);
    assert_string_equal(x.scfg.path, db);
    cli_env_close(&x);
    assert_null(x.st);
    /* a --db path too long */
    memset(longpath, 'a', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = 0;
    set_opts(opts, NULL, longpath);
    cli_env_init(&x, &spec);
    assert_int_equal(cli_env_open(&x, opts, CLI_ENV_DB | CLI_ENV_STORE, &e), PX_EINVAL);
    assert_string_equal(e.msg, "--db: path too long");
    cli_env_close(&x);
    /* --config wins over --db */
    set_opts(opts, ini, db);
    cli_env_init(&x, &spec);
    assert_int_equal(cli_env_open(&x, opts, CLI_ENV_DB | CLI_ENV_STORE, &e), PX_OK);
    assert_non_null(x.ini);
    assert_non_null(strstr(x.scfg.path, "config.sqlite"));
    cli_env_close(&x);
}

static void test_default_config(void **state)
{
    const cli_env_spec present = {ini, NULL, NULL}, absent = {missing, NULL, NULL};
    cli_opt opts[3];
    cli_env x;
    px_error e = {0};
    (void)state;
    set_opts(opts, NULL, NULL);
    /* DB mode: the default when it exists */
    cli_env_init(&x, &present);
    assert_int_equal(cli_env_open(&x, opts, CLI_ENV_DB | CLI_ENV_STORE, &e), PX_OK);
    assert_non_null(strstr(x.scfg.path, "config.sqlite"));
    cli_env_close(&x);
    /* CONFIG mode: the default must load */
    cli_env_init(&x, &absent);
    assert_int_not_equal(cli_env_open(&x, opts, CLI_ENV_CONFIG | CLI_ENV_STORE, &e), PX_OK);
    assert_non_null(strstr(e.msg, "none.ini: cannot open config file"));
    assert_null(x.st);
    cli_env_close(&x);
    /* CONFIG mode ignores --db (the command has no such option) */
    set_opts(opts, NULL, db);
    cli_env_init(&x, &present);
    assert_int_equal(cli_env_open(&x, opts, CLI_ENV_CONFIG, &e), PX_OK);
    assert_non_null(x.ini);
    cli_env_close(&x);
    /* optional: absent is the defaults */
    set_opts(opts, NULL, NULL);
    cli_env_init(&x, &absent);
    assert_int_equal(cli_env_open(&x, opts, CLI_ENV_HSM_CONFIG, &e), PX_OK);
    assert_null(x.ini);
    assert_string_equal(x.scfg.path, "var/possum.db");
    assert_string_equal(x.hcfg.lmk_file, "var/lmk.bin");
    cli_env_close(&x);
}

static void test_config_errors(void **state)
{
    char bad[600];
    const cli_env_spec spec = {missing, NULL, NULL};
    cli_opt opts[3];
    cli_env x;
    px_error e = {0};
    (void)state;
    snprintf(bad, sizeof bad, "%s/bad.ini", dir);
    write_file(bad, "[store]\nbackend = oracle\n");
    set_opts(opts, bad, NULL);
    cli_env_init(&x, &spec);
    assert_int_not_equal(cli_env_open(&x, opts, CLI_ENV_DB | CLI_ENV_STORE, &e), PX_OK);
    assert_non_null(strstr(e.msg, "bad.ini:2: [store] backend: 'oracle'"));
    assert_null(x.st);
    cli_env_close(&x);
    write_file(bad, "[hsm]\nbogus = 1\n");
    cli_env_init(&x, &spec);
    assert_int_not_equal(cli_env_open(&x, opts, CLI_ENV_CONFIG | CLI_ENV_HSM_CONFIG, &e), PX_OK);
    assert_non_null(strstr(e.msg, "[hsm] bogus: unknown key"));
    cli_env_close(&x);
    /* the HSM settings are not read unless asked for */
    cli_env_init(&x, &spec);
    assert_int_equal(cli_env_open(&x, opts, CLI_ENV_CONFIG, &e), PX_OK);
    cli_env_close(&x);
}

static void test_hsm_binder_and_caller(void **state)
{
    const cli_env_spec spec = {missing, "cli:test", svc_bind};
    cli_opt opts[3];
    cli_env x;
    px_error e = {0};
    char want[700];
    (void)state;
    svc_binds = 0;
    set_opts(opts, ini, NULL);
    cli_env_init(&x, &spec);
    assert_int_equal(cli_env_open(&x, opts, CLI_ENV_DB | CLI_ENV_STORE | CLI_ENV_HSM, &e), PX_OK);
    assert_int_equal(svc_binds, 1);
    snprintf(want, sizeof want, "%s/svc-audit.log", dir);
    assert_string_equal(x.hcfg.audit_file, want);
    assert_string_equal(x.hcfg.caller, "cli:test"); /* the command's, after the binder's */
    assert_non_null(x.st);
    assert_non_null(x.h);
    /* asking again opens nothing twice and binds nothing twice */
    assert_int_equal(cli_env_open(&x, opts, CLI_ENV_STORE | CLI_ENV_HSM, &e), PX_OK);
    assert_int_equal(svc_binds, 1);
    cli_env_close(&x);
    assert_null(x.h);
    /* with --db there is no configuration to bind from: the HSM defaults, the caller */
    set_opts(opts, NULL, db);
    cli_env_init(&x, &spec);
    assert_int_equal(cli_env_open(&x, opts, CLI_ENV_DB | CLI_ENV_HSM_CONFIG, &e), PX_OK);
    assert_int_equal(svc_binds, 1);
    assert_string_equal(x.hcfg.audit_file, "var/hsm-audit.log");
    assert_string_equal(x.hcfg.caller, "cli:test");
    cli_env_close(&x);
}

static void test_open_in_steps(void **state)
{
    const cli_env_spec spec = {missing, NULL, NULL};
    char other[700];
    cli_opt opts[3];
    cli_env x;
    px_error e = {0};
    FILE *f;
    (void)state;
    set_opts(opts, NULL, NULL);
    cli_env_init(&x, &spec); /* no configuration at all */
    assert_int_equal(cli_env_open(&x, opts, CLI_ENV_HSM_CONFIG, &e), PX_OK);
    /* the command adjusts the settings (possum hsm --lmk-file, --audit-file) */
    snprintf(other, sizeof other, "%s/other-audit.log", dir);
    px_strlcpy(x.hcfg.lmk_file, lmk, sizeof x.hcfg.lmk_file);
    px_strlcpy(x.hcfg.audit_file, other, sizeof x.hcfg.audit_file);
    px_strlcpy(x.hcfg.caller, "cli:steps", sizeof x.hcfg.caller);
    assert_int_equal(cli_env_open(&x, opts, CLI_ENV_HSM, &e), PX_OK);
    assert_non_null(x.h);
    assert_null(x.st); /* not asked for */
    cli_env_close(&x);
    f = fopen(other, "r");
    assert_non_null(f); /* the HSM was opened with the adjusted settings */
    fclose(f);
    /* a wrong LMK file: the HSM's reason */
    cli_env_init(&x, &spec);
    assert_int_equal(cli_env_open(&x, opts, CLI_ENV_HSM_CONFIG, &e), PX_OK);
    px_strlcpy(x.hcfg.lmk_file, missing, sizeof x.hcfg.lmk_file);
    px_strlcpy(x.hcfg.audit_file, other, sizeof x.hcfg.audit_file);
    assert_int_not_equal(cli_env_open(&x, opts, CLI_ENV_HSM, &e), PX_OK);
    assert_non_null(strstr(e.msg, "none.ini"));
    assert_null(x.h);
    cli_env_close(&x);
    cli_env_close(&x); /* twice is fine */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_db_mode),       cmocka_unit_test(test_default_config),
        cmocka_unit_test(test_config_errors), cmocka_unit_test(test_hsm_binder_and_caller),
        cmocka_unit_test(test_open_in_steps),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
