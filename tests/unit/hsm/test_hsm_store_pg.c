/* test_hsm_store_pg.c: named keys (table hsm_key, migration 0100) on PostgreSQL, the
 * scale-out store: generate, load by name, a duplicate label, list, delete and a swapped
 * row, against a throwaway cluster (tests/lib/pgtemp). Exit 77 (skipped) only when
 * PostgreSQL is not installed and POSSUM_SKIP_PG=1. */
#include "hsm_testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgtemp.h"
#include "tmpdir.h"

static pgtemp pg;
static char dir[PX_PATH_MAX];

static int count_row(void *ud, const hsm_key_row *r)
{
    (void)r;
    (*(int *)ud)++;
    return 0;
}

static void test_named_keys_on_postgres(void **state)
{
    hsm_config cfg;
    store_config sc;
    store *st = NULL;
    hsm *h = NULL;
    hsm_key *k = NULL;
    hsm_keyblock ka, kb, dup;
    char check[PX_HSM_KCV_HEX_MAX], sql[2 * PX_HSM_KEYBLOCK_MAX];
    int rows = 0;
    px_error e = {0};
    hsm_key_attrs a = fx_attrs("P0", 'T', 'B', 'S', 16);
    (void)state;
    setenv(HSM_ENV_PASSPHRASE, TEST_PASSPHRASE, 1);
    hsm_config_default(&cfg);
    cfg.lmk_scrypt_log2n = 10;
    snprintf(cfg.lmk_file, sizeof cfg.lmk_file, "%s/lmk.bin", dir);
    snprintf(cfg.audit_file, sizeof cfg.audit_file, "%s/audit.log", dir);
    assert_int_equal(hsm_lmk_init(&cfg, check, &e), PX_OK);
    store_config_default(&sc);
    sc.backend = STORE_POSTGRES;
    if (pgtemp_create_db(&pg, "hsmkeys", sc.conninfo, sizeof sc.conninfo, &e) != PX_OK ||
        store_open(&sc, &st, &e) != PX_OK)
        fail_msg("postgres: %s", px_error_text(&e));
    assert_int_equal(hsm_open(&cfg, st, &h, &e), PX_OK);
    assert_int_equal(hsm_key_generate(h, &a, "pg.a", &ka, &e), PX_OK);
    assert_int_equal(hsm_key_generate(h, &a, "pg.b", &kb, &e), PX_OK);
    assert_int_equal(hsm_key_generate(h, &a, "pg.a", &dup, &e), PX_EEXIST);
    assert_string_equal(dup.block, ""); /* a refused key is not handed out */
    assert_int_equal(hsm_key_load_named(h, "pg.a", &k, &e), PX_OK);
    assert_string_equal(hsm_key_kcv(k), ka.kcv);
    hsm_key_free(h, k);
    assert_int_equal(hsm_keys_list(st, count_row, &rows, &e), PX_OK);
    assert_int_equal(rows, 2);
    snprintf(sql, sizeof sql, "UPDATE hsm_key SET key_block = '%s' WHERE label = 'pg.a'", kb.block);
    if (store_exec(st, sql, &e) != PX_OK)
        fail_msg("update: %s", px_error_text(&e));
    assert_int_equal(hsm_key_load_named(h, "pg.a", &k, &e), PX_EAUTH);
    assert_int_equal(hsm_key_delete(h, "pg.b", &e), PX_OK);
    assert_int_equal(hsm_key_delete(h, "pg.b", &e), PX_ENOTFOUND);
    hsm_close(h);
    store_close(st);
}

static void cleanup(void)
{
    pgtemp_stop(&pg);
    if (dir[0])
        testlib_rmtree(dir);
}

int main(void)
{
    px_error e = {0};
    if (!pgtemp_is_available()) {
        const char *skip = getenv("POSSUM_SKIP_PG");
        fprintf(stderr, "PostgreSQL server binaries not installed (scripts/deps.sh)\n");
        return skip && strcmp(skip, "1") == 0 ? 77 : 1;
    }
    atexit(cleanup);
    if (testlib_mkdtemp("hsmpg", dir, sizeof dir) != PX_OK || pgtemp_start(&pg, &e) != PX_OK) {
        fprintf(stderr, "test_hsm_store_pg: %s\n", px_error_text(&e));
        return 1;
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_named_keys_on_postgres)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
