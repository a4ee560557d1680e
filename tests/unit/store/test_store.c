/*
 * test_store.c: the store's behaviour, compiled twice: TEST_BACKEND=STORE_SQLITE
 * (test_store_sqlite) and TEST_BACKEND=STORE_POSTGRES (test_store_pg, against a throwaway
 * cluster this test starts and stops). Every test gets a fresh database.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/time.h"
#include "pgtemp.h"
#include "store/store.h"
#include "store/store_int.h"
#include "tmpdir.h"

static const store_backend backend = TEST_BACKEND;
static pgtemp pg;
static char tmp[PX_PATH_MAX];
static int dbseq;

/* ---- helpers --------------------------------------------------------------------------- */

/* A configuration naming a database no test has used yet. */
/* The store's own tests run against the core migration (0001) only, so that the migrations
 * other modules add (0100_hsm, 0200_switch, ...) never change what they assert. */
static const store_migration *core_migrations(size_t *n)
{
    size_t nb;
    const store_migration *b = store_migrations_builtin(&nb);
    assert_true(nb >= 1);
    assert_int_equal(b[0].version, 1);
    *n = 1;
    return b;
}

static void fresh_config(store_config *cfg)
{
    px_error err = {0};
    char name[32];
    store_config_default(cfg);
    cfg->migrations = core_migrations(&cfg->nmigrations);
    cfg->backend = backend;
    cfg->busy_timeout_ms = 3000;
    snprintf(name, sizeof name, "t%d", ++dbseq);
    if (backend == STORE_SQLITE) {
        snprintf(cfg->path, sizeof cfg->path, "%s/%s/var/possum.db", tmp, name);
        return;
    }
    if (pgtemp_create_db(&pg, name, cfg->conninfo, sizeof cfg->conninfo, &err) != PX_OK)
        fail_msg("%s", px_error_text(&err));
}

static store *open_ok(const store_config *cfg)
{
    px_error err = {0};
    store *s = NULL;
    if (store_open(cfg, &s, &err) != PX_OK)
        fail_msg("store_open: %s", px_error_text(&err));
    return s;
}

static void exec_ok(store *s, const char *sql)
{
    px_error err = {0};
    if (store_exec(s, sql, &err) != PX_OK)
        fail_msg("%s: %s", sql, px_error_text(&err));
}

/* The first column of the first row of a parameterless query. */
static int64_t query_int(store *s, const char *sql)
{
    px_error err = {0};
    store_stmt *st;
    int64_t v = -1;
    if (store_prepare(s, sql, &st, &err) != PX_OK)
        fail_msg("%s: %s", sql, px_error_text(&err));
    if (store_step(st, &err) == STORE_ROW)
        v = store_col_int64(st, 0);
    store_done(st);
    return v;
}

/* INSERT INTO kv (k, v) VALUES ($1, $2): the step's result. */
static int insert_kv(store *s, const char *k, int64_t v, px_error *err)
{
    store_stmt *st;
    int rc = store_prepare(s, "INSERT INTO kv (k, v) VALUES ($1, $2)", &st, err);
    if (rc != PX_OK)
        return rc;
    store_bind_text(st, 1, k);
    store_bind_int64(st, 2, v);
    rc = store_step(st, err);
    store_done(st);
    return rc;
}

static store *open_with_kv(store_config *cfg)
{
    store *s;
    fresh_config(cfg);
    s = open_ok(cfg);
    exec_ok(s, "CREATE TABLE kv (k TEXT PRIMARY KEY, v BIGINT NOT NULL)");
    return s;
}

static int contains(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

/* ---- migrations ------------------------------------------------------------------------ */

static void t_migrations_applied_once(void **state)
{
    store_config cfg;
    px_error err = {0};
    store_stmt *st;
    int version = -1;
    int64_t applied;
    store *s;
    (void)state;
    fresh_config(&cfg);
    s = open_ok(&cfg);
    assert_int_equal(store_get_backend(s), backend);
    assert_int_equal(store_schema_version(s, &version, &err), PX_OK);
    assert_int_equal(version, 1);
    assert_int_equal(store_prepare(s, "SELECT version, name, applied_at_ms FROM schema_version",
                                   &st, &err),
                     PX_OK);
    assert_int_equal(store_step(st, &err), STORE_ROW);
    assert_int_equal(store_col_int64(st, 0), 1);
    assert_string_equal(store_col_text(st, 1), "0001_core");
    applied = store_col_int64(st, 2);
    assert_true(applied > 0 && applied <= px_now_ms());
    assert_int_equal(store_step(st, &err), STORE_DONE);
    store_done(st);
    exec_ok(s, "INSERT INTO possum_meta (key, value, updated_ms) VALUES ('db', 'test', 1)");
    store_close(s);

    /* Re-open: nothing applied again, the row unchanged. */
    s = open_ok(&cfg);
    assert_int_equal(query_int(s, "SELECT COUNT(*) FROM schema_version"), 1);
    assert_int_equal(query_int(s, "SELECT applied_at_ms FROM schema_version"), applied);
    assert_int_equal(query_int(s, "SELECT COUNT(*) FROM possum_meta"), 1);
    store_close(s);
}

static const char m2_sql[] =
    "-- 0002_cards: a test migration with backend sections\n"
    "CREATE TABLE card (\n"
    "    id BIGINT PRIMARY KEY,\n"
    "    token TEXT NOT NULL UNIQUE,\n"
    "    data BLOB,  -- a BLOB in a comment stays\n"
    "    note TEXT DEFAULT 'BLOB' CHECK (note <> '')\n"
    ");\n"
    "-- @sqlite\n"
    "CREATE INDEX card_data ON card (data);\n"
    "-- @postgres\n"
    "CREATE INDEX card_data ON card USING btree (data);\n"
    "-- @all\n"
    "INSERT INTO possum_meta (key, value, updated_ms) VALUES ('cards', 'yes', 0);\n";

/* builtin migrations followed by extra ones, into out (room for 8). */
static size_t with_extra(store_migration *out, const store_migration *extra, size_t n)
{
    size_t nb;
    const store_migration *b = core_migrations(&nb);
    assert_true(nb + n <= 8);
    memcpy(out, b, nb * sizeof *b);
    memcpy(out + nb, extra, n * sizeof *extra);
    return nb + n;
}

static void t_new_migration_applied(void **state)
{
    const store_migration m2[] = {{2, "0002_cards", m2_sql}};
    const store_migration m3[] = {
        {2, "0002_cards", m2_sql},
        {3, "0003_bad", "CREATE TABLE t3 (x BIGINT);\nINSERT INTO no_such_table VALUES (1);\n"}};
    const store_migration renamed[] = {{2, "0002_other", m2_sql}};
    store_migration list[8];
    store_config cfg;
    px_error err = {0};
    store *s;
    int version = 0;
    (void)state;
    fresh_config(&cfg);
    store_close(open_ok(&cfg));

    cfg.migrations = list;
    cfg.nmigrations = with_extra(list, m2, 1);
    s = open_ok(&cfg);
    assert_int_equal(store_schema_version(s, &version, &err), PX_OK);
    assert_int_equal(version, 2);
    assert_int_equal(query_int(s, "SELECT COUNT(*) FROM possum_meta WHERE key = 'cards'"), 1);
    assert_int_equal(query_int(s, "SELECT COUNT(*) FROM card"), 0);
    store_close(s);

    /* A failing migration rolls back entirely, and the error names its file. */
    cfg.nmigrations = with_extra(list, m3, 2);
    assert_int_not_equal(store_open(&cfg, &s, &err), PX_OK);
    assert_null(s);
    assert_true(contains(err.msg, "0003_bad.sql"));
    assert_true(contains(err.msg, "no_such_table"));

    /* An older build (without 0002) refuses the newer database. */
    cfg.migrations = core_migrations(&cfg.nmigrations);
    assert_int_equal(store_open(&cfg, &s, &err), PX_ESTATE);
    assert_true(contains(err.msg, "newer"));

    /* So does a build whose 0002 is a different migration. */
    cfg.migrations = list;
    cfg.nmigrations = with_extra(list, renamed, 1);
    assert_int_equal(store_open(&cfg, &s, &err), PX_ESTATE);
    assert_true(contains(err.msg, "0002_cards"));

    cfg.nmigrations = with_extra(list, m2, 1);
    s = open_ok(&cfg);
    assert_int_equal(store_schema_version(s, &version, &err), PX_OK);
    assert_int_equal(version, 2);
    assert_int_not_equal(store_exec(s, "SELECT * FROM t3", &err), PX_OK);
    store_close(s);
}

static void t_migration_list_checked(void **state)
{
    const store_migration bad[] = {{2, "0002_b", "SELECT 1"}, {2, "0002_c", "SELECT 1"}};
    store_config cfg;
    px_error err = {0};
    store *s;
    (void)state;
    fresh_config(&cfg);
    cfg.migrations = bad;
    cfg.nmigrations = 2;
    assert_int_equal(store_open(&cfg, &s, &err), PX_EINVAL);
    assert_true(contains(err.msg, "increasing"));
}

/* Several nodes starting at once on one database: each migration is applied once. */
static void *open_thread(void *arg)
{
    const store_config *cfg = arg;
    store *s = NULL;
    if (store_open(cfg, &s, NULL) != PX_OK)
        return (void *)1;
    store_close(s);
    return NULL;
}

static void t_concurrent_open(void **state)
{
    pthread_t th[4];
    store_config cfg;
    void *res;
    int failed = 0;
    store *s;
    (void)state;
    fresh_config(&cfg);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, open_thread, &cfg), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], &res);
        failed += res != NULL;
    }
    assert_int_equal(failed, 0);
    s = open_ok(&cfg);
    assert_int_equal(query_int(s, "SELECT COUNT(*) FROM schema_version"), 1);
    store_close(s);
}

/* ---- parameters and values -------------------------------------------------------------- */

static const uint8_t blob1[] = {0x00, 0x01, 0x00, 0xff, 0x00};

static void insert_p(store *s, int64_t id, int64_t i, const char *t, const void *b, size_t n,
                     int b_null)
{
    px_error err = {0};
    store_stmt *st;
    assert_int_equal(store_prepare(s, "INSERT INTO p (id, i, t, b) VALUES ($1, $2, $3, $4)", &st,
                                   &err),
                     PX_OK);
    assert_int_equal(store_bind_int64(st, 1, id), PX_OK);
    assert_int_equal(store_bind_int64(st, 2, i), PX_OK);
    assert_int_equal(store_bind_text(st, 3, t), PX_OK);
    if (b_null)
        assert_int_equal(store_bind_null(st, 4), PX_OK);
    else
        assert_int_equal(store_bind_blob(st, 4, b, n), PX_OK);
    if (store_step(st, &err) != STORE_DONE)
        fail_msg("insert: %s", px_error_text(&err));
    assert_int_equal(store_changes(st), 1);
    store_done(st);
}

static void t_params_every_type(void **state)
{
    static uint8_t big[100000];
    store_config cfg;
    px_error err = {0};
    store_stmt *st;
    const void *b;
    size_t n;
    store *s;
    (void)state;
    fresh_config(&cfg);
    s = open_ok(&cfg);
    exec_ok(s, "CREATE TABLE p (id BIGINT PRIMARY KEY, i BIGINT, t TEXT, b BLOB)");
    for (size_t k = 0; k < sizeof big; k++)
        big[k] = (uint8_t)(k * 7);
    insert_p(s, 1, INT64_MIN, "h\xc3\xa9llo \xe2\x9c\x93", blob1, sizeof blob1, 0);
    insert_p(s, 2, INT64_MAX, "", "", 0, 0);
    insert_p(s, 3, 0, NULL, NULL, 0, 1);
    insert_p(s, 4, -1, "big", big, sizeof big, 0);

    assert_int_equal(store_prepare(s, "SELECT id, i, t, b FROM p WHERE id >= $1 ORDER BY id", &st,
                                   &err),
                     PX_OK);
    store_bind_int64(st, 1, 1);
    assert_int_equal(store_step(st, &err), STORE_ROW);
    assert_int_equal(store_column_count(st), 4);
    assert_int_equal(store_col_int64(st, 1), INT64_MIN);
    assert_string_equal(store_col_text(st, 2), "h\xc3\xa9llo \xe2\x9c\x93");
    b = store_col_blob(st, 3, &n);
    assert_int_equal(n, sizeof blob1);
    assert_memory_equal(b, blob1, sizeof blob1);
    assert_false(store_col_is_null(st, 3));

    assert_int_equal(store_step(st, &err), STORE_ROW);
    assert_int_equal(store_col_int64(st, 1), INT64_MAX);
    assert_string_equal(store_col_text(st, 2), "");
    b = store_col_blob(st, 3, &n);
    assert_non_null(b); /* empty, not NULL */
    assert_int_equal(n, 0);

    assert_int_equal(store_step(st, &err), STORE_ROW);
    assert_true(store_col_is_null(st, 2));
    assert_null(store_col_text(st, 2));
    assert_null(store_col_blob(st, 3, &n));
    assert_int_equal(n, 0);
    assert_false(store_col_is_null(st, 1));

    assert_int_equal(store_step(st, &err), STORE_ROW);
    b = store_col_blob(st, 3, &n);
    assert_int_equal(n, sizeof big);
    assert_memory_equal(b, big, sizeof big);
    assert_ptr_equal(store_col_blob(st, 3, &n), b); /* decoded once per row */

    assert_int_equal(store_step(st, &err), STORE_DONE);
    assert_int_equal(store_step(st, &err), STORE_DONE); /* stays done */
    store_done(st);
    store_close(s);
}

static void t_returning_and_changes(void **state)
{
    store_config cfg;
    px_error err = {0};
    store_stmt *st;
    store *s = open_with_kv(&cfg);
    (void)state;
    for (int i = 0; i < 3; i++) {
        char k[8];
        snprintf(k, sizeof k, "k%d", i);
        assert_int_equal(insert_kv(s, k, i, &err), STORE_DONE);
    }
    /* One parameter used twice. */
    assert_int_equal(store_prepare(s, "UPDATE kv SET v = v + $1 WHERE v < $1 + 1", &st, &err),
                     PX_OK);
    store_bind_int64(st, 1, 1);
    assert_int_equal(store_step(st, &err), STORE_DONE);
    assert_int_equal(store_changes(st), 2);
    store_done(st);

    assert_int_equal(store_prepare(s,
                                   "INSERT INTO kv (k, v) VALUES ($1, $2) "
                                   "ON CONFLICT DO NOTHING RETURNING v",
                                   &st, &err),
                     PX_OK);
    store_bind_text(st, 1, "k0");
    store_bind_int64(st, 2, 100);
    assert_int_equal(store_step(st, &err), STORE_DONE); /* duplicate: skipped, no row */
    assert_int_equal(store_changes(st), 0);
    store_done(st);
    assert_int_equal(store_prepare(s,
                                   "INSERT INTO kv (k, v) VALUES ($1, $2) "
                                   "ON CONFLICT DO NOTHING RETURNING v",
                                   &st, &err),
                     PX_OK);
    store_bind_text(st, 1, "k9");
    store_bind_int64(st, 2, 100);
    assert_int_equal(store_step(st, &err), STORE_ROW);
    assert_int_equal(store_col_int64(st, 0), 100);
    assert_int_equal(store_step(st, &err), STORE_DONE);
    assert_int_equal(store_changes(st), 1);
    store_done(st);
    assert_int_equal(query_int(s, "SELECT SUM(v) FROM kv"), 1 + 2 + 2 + 100);

    /* Backend sections work in any SQL, e.g. a row lock only PostgreSQL needs. */
    assert_int_equal(store_begin(s, &err), PX_OK);
    assert_int_equal(query_int(s, "SELECT v FROM kv WHERE k = 'k9'\n-- @postgres\nFOR UPDATE"),
                     100);
    assert_int_equal(store_commit(s, &err), PX_OK);
    assert_int_equal(query_int(s, "SELECT SUM(v) FROM kv WHERE v > 1000"), 0); /* NULL */
    store_close(s);
}

/* ---- constraints and transactions -------------------------------------------------------- */

static void t_unique_violation_is_conflict(void **state)
{
    store_config cfg;
    px_error err = {0};
    store *s = open_with_kv(&cfg);
    (void)state;
    exec_ok(s, "CREATE TABLE card (pan TEXT NOT NULL, n BIGINT NOT NULL UNIQUE)");
    assert_int_equal(insert_kv(s, "a", 1, &err), STORE_DONE);
    assert_int_equal(insert_kv(s, "a", 2, &err), PX_ECONFLICT);
    assert_true(contains(err.msg, "INSERT INTO kv"));

    /* A unique index other than the key; the value never appears in the message. */
    exec_ok(s, "INSERT INTO card (pan, n) VALUES ('4111111111111111', 1)");
    assert_int_equal(store_exec(s, "INSERT INTO card (pan, n) VALUES ('4111111111111111', 1)",
                                &err),
                     PX_ECONFLICT);
    assert_false(contains(err.msg, "4111111111111111"));

    /* Inside a transaction the conflict fails the transaction, on both backends. */
    assert_int_equal(store_begin(s, &err), PX_OK);
    assert_int_equal(insert_kv(s, "b", 1, &err), STORE_DONE);
    assert_int_equal(insert_kv(s, "a", 3, &err), PX_ECONFLICT);
    assert_int_equal(insert_kv(s, "c", 1, &err), PX_ESTATE);
    assert_int_equal(store_commit(s, &err), PX_ESTATE);
    assert_true(contains(err.msg, "rolled back"));
    assert_false(store_in_transaction(s));
    assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv"), 1);
    store_close(s);
}

static void t_rollback_leaves_nothing(void **state)
{
    store_config cfg;
    px_error err = {0};
    store *s = open_with_kv(&cfg);
    (void)state;
    assert_int_equal(store_begin(s, &err), PX_OK);
    assert_int_equal(store_begin(s, &err), PX_ESTATE); /* no nesting */
    assert_int_equal(insert_kv(s, "a", 1, &err), STORE_DONE);
    store_rollback(s);
    store_rollback(s); /* harmless twice */
    assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv"), 0);
    assert_int_equal(store_commit(s, &err), PX_ESTATE);

    /* Closing with an open transaction rolls it back. */
    assert_int_equal(store_begin(s, &err), PX_OK);
    assert_int_equal(insert_kv(s, "b", 1, &err), STORE_DONE);
    store_close(s);
    s = open_ok(&cfg);
    assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv"), 0);
    store_close(s);
}

static void t_commit_persists(void **state)
{
    store_config cfg;
    px_error err = {0};
    store *s = open_with_kv(&cfg);
    (void)state;
    assert_int_equal(store_begin(s, &err), PX_OK);
    for (int i = 0; i < 100; i++) {
        char k[16];
        snprintf(k, sizeof k, "key%03d", i);
        assert_int_equal(insert_kv(s, k, i, &err), STORE_DONE);
    }
    assert_int_equal(store_commit(s, &err), PX_OK);
    store_close(s);
    s = open_ok(&cfg);
    assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv"), 100);
    assert_int_equal(query_int(s, "SELECT SUM(v) FROM kv"), 99 * 100 / 2);
    store_close(s);
}

/* ---- concurrency -------------------------------------------------------------------------- */

static void t_reader_during_writer(void **state)
{
    store_config cfg;
    px_error err = {0};
    store *w = open_with_kv(&cfg), *r = open_ok(&cfg);
    int64_t t0;
    (void)state;
    assert_int_equal(store_begin(w, &err), PX_OK);
    assert_int_equal(insert_kv(w, "a", 1, &err), STORE_DONE);
    t0 = px_mono_ms();
    assert_int_equal(query_int(r, "SELECT COUNT(*) FROM kv"), 0); /* not seen, not blocked */
    assert_true(px_mono_ms() - t0 < 1000);
    assert_int_equal(store_commit(w, &err), PX_OK);
    assert_int_equal(query_int(r, "SELECT COUNT(*) FROM kv"), 1);
    store_close(r);
    store_close(w);
}

static void t_lock_wait_is_retryable(void **state)
{
    store_config cfg;
    px_error err = {0};
    store_stmt *st;
    store *a = open_with_kv(&cfg), *b;
    int64_t t0;
    int rc;
    (void)state;
    assert_int_equal(insert_kv(a, "a", 1, &err), STORE_DONE);
    cfg.busy_timeout_ms = 200;
    b = open_ok(&cfg);
    assert_int_equal(store_begin(a, &err), PX_OK);
    exec_ok(a, "UPDATE kv SET v = 2 WHERE k = 'a'");
    t0 = px_mono_ms();
    rc = store_begin(b, &err); /* SQLite: the write lock is taken here */
    if (rc == PX_OK) {         /* PostgreSQL: at the row */
        assert_int_equal(store_prepare(b, "UPDATE kv SET v = 3 WHERE k = $1", &st, &err), PX_OK);
        store_bind_text(st, 1, "a");
        rc = store_step(st, &err);
        store_done(st);
    }
    assert_int_equal(rc, STORE_ERETRY);
    assert_true(store_is_retryable(rc));
    assert_true(px_mono_ms() - t0 >= 150);
    store_rollback(b);
    assert_int_equal(store_commit(a, &err), PX_OK);
    /* The retry succeeds. */
    assert_int_equal(store_begin(b, &err), PX_OK);
    exec_ok(b, "UPDATE kv SET v = 3 WHERE k = 'a'");
    assert_int_equal(store_commit(b, &err), PX_OK);
    assert_int_equal(query_int(a, "SELECT v FROM kv WHERE k = 'a'"), 3);
    store_close(b);
    store_close(a);
}

typedef struct racer {
    const store_config *cfg;
    pthread_barrier_t *go;
    int rc;
} racer;

static void *race_insert(void *arg)
{
    racer *r = arg;
    px_error err = {0};
    store *s = NULL;
    r->rc = store_open(r->cfg, &s, &err);
    pthread_barrier_wait(r->go);
    if (r->rc != PX_OK)
        return NULL;
    r->rc = store_begin(s, &err);
    if (r->rc == PX_OK)
        r->rc = insert_kv(s, "same", 1, &err);
    if (r->rc == STORE_DONE)
        r->rc = store_commit(s, &err);
    else
        store_rollback(s);
    store_close(s);
    return NULL;
}

static void t_two_writers_one_key(void **state)
{
    enum { N = 4 };
    pthread_t th[N];
    racer r[N];
    pthread_barrier_t go;
    store_config cfg;
    int won = 0, conflicts = 0;
    store *s = open_with_kv(&cfg);
    (void)state;
    pthread_barrier_init(&go, NULL, N);
    for (int i = 0; i < N; i++) {
        r[i] = (racer){&cfg, &go, 0};
        assert_int_equal(pthread_create(&th[i], NULL, race_insert, &r[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        won += r[i].rc == PX_OK;
        conflicts += r[i].rc == PX_ECONFLICT;
    }
    pthread_barrier_destroy(&go);
    assert_int_equal(won, 1);
    assert_int_equal(conflicts, N - 1);
    assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv"), 1);
    store_close(s);
}

/* The child commits one row per transaction and reports each commit once store_commit has
 * returned; it is killed at some point. Never returns. */
static void commit_until_killed(const store_config *cfg, int fd)
{
    store *s = NULL;
    if (store_open(cfg, &s, NULL) != PX_OK)
        _exit(3);
    for (int32_t i = 0; i < 1000000; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", (int)i);
        if (store_begin(s, NULL) != PX_OK || insert_kv(s, k, i, NULL) != STORE_DONE ||
            store_commit(s, NULL) != PX_OK || write(fd, &i, sizeof i) != (ssize_t)sizeof i)
            _exit(4);
    }
    _exit(5);
}

/* SIGKILL at any moment loses no commit that had returned, and leaves no half transaction. */
static void t_sigkill_loses_nothing(void **state)
{
    store_config cfg;
    int32_t i, last = -1;
    int fd[2], status;
    pid_t pid;
    store *s = open_with_kv(&cfg);
    (void)state;
    store_close(s);
    assert_int_equal(pipe(fd), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        commit_until_killed(&cfg, fd[1]);
    }
    close(fd[1]);
    while (last < 300 && read(fd[0], &i, sizeof i) == (ssize_t)sizeof i)
        last = i;
    kill(pid, SIGKILL);
    while (read(fd[0], &i, sizeof i) == (ssize_t)sizeof i) /* acknowledged before the kill */
        last = i;
    close(fd[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    s = open_ok(&cfg);
    assert_true(query_int(s, "SELECT COUNT(*) FROM kv") >= last + 1);
    assert_int_equal(query_int(s, "SELECT MIN(v) FROM kv"), 0);
    assert_int_equal(query_int(s, "SELECT COUNT(*) FROM kv") - 1,
                     query_int(s, "SELECT MAX(v) FROM kv"));
    if (backend == STORE_SQLITE) {
        store_stmt *st;
        assert_int_equal(store_prepare(s, "PRAGMA integrity_check", &st, NULL), PX_OK);
        assert_int_equal(store_step(st, NULL), STORE_ROW);
        assert_string_equal(store_col_text(st, 0), "ok");
        store_done(st);
    }
    store_close(s);
}

/* ---- statements ------------------------------------------------------------------------- */

static void t_statement_cache(void **state)
{
    store_config cfg;
    px_error err = {0};
    store_stmt *st, *first = NULL, *nested;
    store *s = open_with_kv(&cfg);
    (void)state;
    assert_int_equal(insert_kv(s, "a", 7, &err), STORE_DONE);
    for (int i = 0; i < 10000; i++) {
        assert_int_equal(store_prepare(s, "SELECT v FROM kv WHERE k = $1", &st, &err), PX_OK);
        if (first == NULL)
            first = st;
        assert_ptr_equal(st, first); /* the cached statement, every time */
        store_bind_text(st, 1, "a");
        assert_int_equal(store_step(st, &err), STORE_ROW);
        assert_int_equal(store_col_int64(st, 0), 7);
        store_done(st);
    }
    /* The same SQL while it is in use: a second, independent statement. */
    assert_int_equal(store_prepare(s, "SELECT v FROM kv WHERE k = $1", &st, &err), PX_OK);
    assert_int_equal(store_prepare(s, "SELECT v FROM kv WHERE k = $1", &nested, &err), PX_OK);
    assert_ptr_not_equal(st, nested);
    store_bind_text(st, 1, "a");
    store_bind_text(nested, 1, "none");
    assert_int_equal(store_step(st, &err), STORE_ROW);
    assert_int_equal(store_step(nested, &err), STORE_DONE);
    assert_int_equal(store_col_int64(st, 0), 7);
    store_done(nested);
    store_done(st);

    /* More distinct statements than the cache holds: evicted and re-prepared as needed. */
    for (int i = 0; i < 3 * PX_STORE_STMT_CACHE; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT v + %d FROM kv WHERE k = $1", i);
        assert_int_equal(store_prepare(s, sql, &st, &err), PX_OK);
        store_bind_text(st, 1, "a");
        assert_int_equal(store_step(st, &err), STORE_ROW);
        assert_int_equal(store_col_int64(st, 0), 7 + i);
        store_done(st);
    }
    assert_int_equal(query_int(s, "SELECT v FROM kv"), 7);
    store_close(s);
}

static void expect_error(store *s, const char *sql, int bind_n, int code, const char *what)
{
    px_error err = {0};
    store_stmt *st;
    int rc = store_prepare(s, sql, &st, &err);
    if (rc == PX_OK) {
        for (int i = 1; i <= bind_n; i++)
            store_bind_int64(st, i, i);
        rc = store_step(st, &err);
        store_done(st);
    }
    if (code != 0)
        assert_int_equal(rc, code);
    assert_true(rc < 0);
    if (!contains(err.msg, what))
        fail_msg("\"%s\" not in \"%s\"", what, err.msg);
}

static void t_errors_name_the_problem(void **state)
{
    store_config cfg;
    px_error err = {0};
    store_stmt *st;
    store *s = open_with_kv(&cfg);
    (void)state;
    expect_error(s, "SELEC 1", 0, PX_ESTORE, "syntax error");
    expect_error(s, "SELEC 1", 0, PX_ESTORE, "SELEC 1");
    expect_error(s, "SELECT x FROM no_such_table", 0, PX_ESTORE, "no_such_table");
    expect_error(s, "SELECT k FROM kv WHERE v = $1 OR v = $2", 1, 0, "WHERE v = $1 OR v = $2");
    expect_error(s, "SELECT k FROM kv WHERE v = ?", 0, 0, "SELECT k FROM kv WHERE v = ?");
    expect_error(s, "SELECT 1; SELECT 2", 0, 0, "SELECT 1; SELECT 2");
    assert_int_equal(query_int(s, "SELECT 1; -- a comment after the statement"), 1);
    expect_error(s, "INSERT INTO kv (k, v) VALUES ($1, NULL)", 1, 0, "kv");

    /* Bind errors surface at step, with the parameter. */
    assert_int_equal(store_prepare(s, "SELECT v FROM kv WHERE k = $1", &st, &err), PX_OK);
    assert_int_equal(store_bind_int64(st, 0, 1), PX_EINVAL);
    assert_int_equal(store_bind_blob(st, 1, NULL, 3), PX_EINVAL);
    assert_int_equal(store_step(st, &err), PX_EINVAL);
    assert_true(contains(err.msg, "$0"));
    store_done(st);

    /* A bad value is not echoed (PostgreSQL quotes it in data errors). */
    assert_int_equal(store_prepare(s, "SELECT CAST($1 AS BIGINT) + 0", &st, &err), PX_OK);
    store_bind_text(st, 1, "4111111111111111x");
    if (store_step(st, &err) < 0)
        assert_false(contains(err.msg, "4111111111111111"));
    store_done(st);
    assert_int_equal(store_exec(s, "SELECT 1", &err), PX_OK);
    store_close(s);
}

/* ---- configuration and SQL rewriting ----------------------------------------------------- */

static int bind_ini(const char *text, store_config *out, px_error *err)
{
    px_config *c = NULL;
    int rc = px_config_load_string(text, "test.ini", &c, err);
    if (rc == PX_OK)
        rc = store_config_bind(c, "store", out, err);
    px_config_free(c);
    return rc;
}

static void t_config_bind(void **state)
{
    store_config cfg;
    px_error err = {0};
    (void)state;
    unsetenv("POSSUM_PG_CONNINFO");
    assert_int_equal(bind_ini("[store]\n", &cfg, &err), PX_OK);
    assert_int_equal(cfg.backend, STORE_SQLITE);
    assert_string_equal(cfg.path, "var/possum.db");
    assert_int_equal(cfg.synchronous_full, 1);
    assert_int_equal(cfg.busy_timeout_ms, 5000);
    assert_null(cfg.migrations);

    assert_int_equal(bind_ini("[store]\nbackend = postgres\n", &cfg, &err), PX_ECONFIG);
    assert_true(contains(err.msg, "POSSUM_PG_CONNINFO"));
    setenv("POSSUM_PG_CONNINFO", "host=db1 dbname=possum", 1);
    assert_int_equal(bind_ini("[store]\nbackend = postgres\n", &cfg, &err), PX_OK);
    assert_int_equal(cfg.backend, STORE_POSTGRES);
    assert_string_equal(cfg.conninfo, "host=db1 dbname=possum");
    assert_int_equal(bind_ini("[store]\nbackend = postgres\nconninfo = host=db2\n", &cfg, &err),
                     PX_OK);
    assert_string_equal(cfg.conninfo, "host=db2");
    unsetenv("POSSUM_PG_CONNINFO");

    assert_int_equal(bind_ini("[store]\nsynchronous = normal\nbusy_timeout_ms = 250\n", &cfg, &err),
                     PX_OK);
    assert_int_equal(cfg.synchronous_full, 0);
    assert_int_equal(cfg.busy_timeout_ms, 250);
    assert_int_not_equal(bind_ini("[store]\nbackend = mysql\n", &cfg, &err), PX_OK);
    assert_true(contains(err.msg, "test.ini:2"));
    assert_int_not_equal(bind_ini("[store]\nbusy_timeout_ms = 0\n", &cfg, &err), PX_OK);
}

static void t_sql_for_backend(void **state)
{
    const char *in = "CREATE TABLE b (blob_id BIGINT, x BLOB, y blob, z TEXT DEFAULT 'BLOB');\n"
                     "-- a BLOB comment\n"
                     "-- @sqlite\n"
                     "SELECT 'lite';\n"
                     "-- @postgres\n"
                     "SELECT 'pg' /* BLOB */;\n"
                     "-- @all\n"
                     "SELECT \"BLOB\";\n";
    px_error err = {0};
    px_buf out;
    (void)state;
    px_buf_init(&out, 4096);
    assert_int_equal(store_sql_for_backend(in, STORE_SQLITE, &out, &err), PX_OK);
    assert_string_equal(px_buf_str(&out),
                        "CREATE TABLE b (blob_id BIGINT, x BLOB, y blob, z TEXT DEFAULT 'BLOB');\n"
                        "-- a BLOB comment\n\nSELECT 'lite';\n\n\n\nSELECT \"BLOB\";\n");
    assert_int_equal(store_sql_for_backend(in, STORE_POSTGRES, &out, &err), PX_OK);
    assert_string_equal(
        px_buf_str(&out),
        "CREATE TABLE b (blob_id BIGINT, x BYTEA, y BYTEA, z TEXT DEFAULT 'BLOB');\n"
        "-- a BLOB comment\n\n\n\nSELECT 'pg' /* BLOB */;\n\nSELECT \"BLOB\";\n");
    assert_int_equal(store_sql_for_backend("SELECT 1;\n-- @mysql\n", STORE_SQLITE, &out, &err),
                     PX_EFORMAT);
    assert_true(contains(err.msg, "line 2"));
    px_buf_free(&out);
}

/* ---- backend specifics ------------------------------------------------------------------- */

static void t_sqlite_file_and_wal(void **state)
{
    store_config cfg;
    px_error err = {0};
    struct stat sb;
    char wal[PX_PATH_MAX + 8];
    store_stmt *st;
    store *s;
    (void)state;
    fresh_config(&cfg); /* .../tN/var/possum.db: neither directory exists yet */
    s = open_ok(&cfg);
    assert_int_equal(stat(cfg.path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(store_prepare(s, "PRAGMA journal_mode", &st, &err), PX_OK);
    assert_int_equal(store_step(st, &err), STORE_ROW);
    assert_string_equal(store_col_text(st, 0), "wal");
    store_done(st);
    assert_int_equal(query_int(s, "PRAGMA synchronous"), 2); /* FULL */
    assert_int_equal(query_int(s, "PRAGMA foreign_keys"), 1);
    snprintf(wal, sizeof wal, "%s-wal", cfg.path);
    assert_int_equal(stat(wal, &sb), 0);
    store_close(s);

    cfg.synchronous_full = 0;
    s = open_ok(&cfg);
    assert_int_equal(query_int(s, "PRAGMA synchronous"), 1); /* NORMAL */
    store_close(s);

    /* A parent that is not a directory: a clear error naming it. */
    snprintf(cfg.path, sizeof cfg.path, "%s/plainfile", tmp);
    fclose(fopen(cfg.path, "w"));
    snprintf(cfg.path, sizeof cfg.path, "%s/plainfile/x.db", tmp);
    assert_int_equal(store_open(&cfg, &s, &err), PX_EIO);
    assert_true(contains(err.msg, "plainfile"));

    /* Without a list of its own, a store applies every built-in migration, once each. */
    assert_int_equal(store_open(&(store_config){.backend = STORE_SQLITE, .path = ":memory:"}, &s,
                                &err),
                     PX_OK);
    {
        size_t nbuiltin;
        (void)store_migrations_builtin(&nbuiltin);
        assert_int_equal(query_int(s, "SELECT COUNT(*) FROM schema_version"), (int64_t)nbuiltin);
    }
    store_close(s);
}

static int64_t backend_pid(store *s)
{
    return query_int(s, "SELECT pg_backend_pid()");
}

static void kill_backend(store *admin, int64_t pid)
{
    px_error err = {0};
    store_stmt *st;
    assert_int_equal(store_prepare(admin, "SELECT pg_terminate_backend(CAST($1 AS INTEGER))", &st,
                                   &err),
                     PX_OK);
    store_bind_int64(st, 1, pid);
    assert_int_equal(store_step(st, &err), STORE_ROW);
    store_done(st);
    usleep(100 * 1000);
}

static void t_pg_reconnects(void **state)
{
    store_config cfg;
    px_error err = {0};
    store *s = open_with_kv(&cfg), *admin = open_ok(&cfg);
    int64_t pid;
    (void)state;
    assert_int_equal(insert_kv(s, "a", 1, &err), STORE_DONE); /* the statement is cached */
    pid = backend_pid(s);
    kill_backend(admin, pid);
    assert_int_equal(insert_kv(s, "b", 1, &err), PX_ENET);
    assert_int_equal(insert_kv(s, "c", 1, &err), STORE_DONE); /* reconnected, re-prepared */
    assert_int_not_equal(backend_pid(s), pid);

    /* Lost inside a transaction: the transaction is gone, the next one works. */
    assert_int_equal(store_begin(s, &err), PX_OK);
    assert_int_equal(insert_kv(s, "d", 1, &err), STORE_DONE);
    kill_backend(admin, backend_pid(s));
    assert_int_equal(insert_kv(s, "e", 1, &err), PX_ENET);
    assert_int_not_equal(store_commit(s, &err), PX_OK);
    assert_false(store_in_transaction(s));
    assert_int_equal(store_begin(s, &err), PX_OK);
    assert_int_equal(insert_kv(s, "f", 1, &err), STORE_DONE);
    assert_int_equal(store_commit(s, &err), PX_OK);
    assert_int_equal(query_int(admin, "SELECT COUNT(*) FROM kv"), 3); /* a, c, f */
    store_close(admin);
    store_close(s);
}

/* ---- main -------------------------------------------------------------------------------- */

static int setup(void **state)
{
    px_error err = {0};
    (void)state;
    if (testlib_mkdtemp("store", tmp, sizeof tmp) != PX_OK)
        return -1;
    if (backend == STORE_POSTGRES && pgtemp_start(&pg, &err) != PX_OK) {
        fprintf(stderr, "%s\n", px_error_text(&err));
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pgtemp_stop(&pg);
    testlib_rmtree(tmp);
    return 0;
}

static void cleanup_at_exit(void)
{
    teardown(NULL);
}

int main(void)
{
    const struct CMUnitTest common[] = {
        cmocka_unit_test(t_migrations_applied_once),
        cmocka_unit_test(t_new_migration_applied),
        cmocka_unit_test(t_migration_list_checked),
        cmocka_unit_test(t_concurrent_open),
        cmocka_unit_test(t_params_every_type),
        cmocka_unit_test(t_returning_and_changes),
        cmocka_unit_test(t_unique_violation_is_conflict),
        cmocka_unit_test(t_rollback_leaves_nothing),
        cmocka_unit_test(t_commit_persists),
        cmocka_unit_test(t_reader_during_writer),
        cmocka_unit_test(t_lock_wait_is_retryable),
        cmocka_unit_test(t_two_writers_one_key),
        cmocka_unit_test(t_sigkill_loses_nothing),
        cmocka_unit_test(t_statement_cache),
        cmocka_unit_test(t_errors_name_the_problem),
        cmocka_unit_test(t_config_bind),
        cmocka_unit_test(t_sql_for_backend),
    };
    const struct CMUnitTest sqlite_only[] = {cmocka_unit_test(t_sqlite_file_and_wal)};
    const struct CMUnitTest pg_only[] = {cmocka_unit_test(t_pg_reconnects)};
    int failed;
    if (backend == STORE_POSTGRES && !pgtemp_is_available()) {
        const char *skip = getenv("POSSUM_SKIP_PG");
        fprintf(stderr, "PostgreSQL server binaries not installed (scripts/deps.sh)\n");
        return skip && strcmp(skip, "1") == 0 ? 77 : 1;
    }
    atexit(cleanup_at_exit);
    if (setup(NULL) != 0)
        return 1;
    failed = cmocka_run_group_tests_name(backend == STORE_SQLITE ? "store_sqlite" : "store_pg",
                                         common, NULL, NULL);
    if (backend == STORE_SQLITE)
        failed += cmocka_run_group_tests_name("store_sqlite_only", sqlite_only, NULL, NULL);
    else
        failed += cmocka_run_group_tests_name("store_pg_only", pg_only, NULL, NULL);
    teardown(NULL);
    return failed ? 1 : 0;
}
