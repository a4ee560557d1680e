/*
 * store.c: the backend-independent half of the store: configuration, opening, transaction
 * state, the per-connection statement cache and bound values. Backends: sqlite.c, pg.c.
 */
#include "store/store_int.h"

#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/str.h"

#define STORE_PARAM_KEEP 4096 /* a bound value buffer larger than this is freed at done */

/* ---- configuration ---------------------------------------------------------------- */

void store_config_default(store_config *out)
{
    memset(out, 0, sizeof *out);
    out->backend = STORE_SQLITE;
    px_strlcpy(out->path, "var/possum.db", sizeof out->path);
    out->busy_timeout_ms = 5000;
    out->synchronous_full = 1;
}

/* What the INI section holds; enums are ints here, copied into store_config after. */
typedef struct store_ini {
    int backend;
    char path[PX_PATH_MAX];
    char conninfo[PX_STORE_CONNINFO_MAX];
    int64_t busy_timeout_ms;
    int synchronous;
} store_ini;

static const char *const store_backends[] = {"sqlite", "postgres", NULL};
static const char *const store_syncs[] = {"normal", "full", NULL};

static const px_config_field store_fields[] = {
    PX_CFG_ENUM_(store_ini, backend, "backend", store_backends, "sqlite"),
    PX_CFG_STR(store_ini, path, "path", "var/possum.db"),
    PX_CFG_STR(store_ini, conninfo, "conninfo", ""),
    PX_CFG_INT_(store_ini, busy_timeout_ms, "busy_timeout_ms", 1, PX_STORE_BUSY_MAX_MS, "5000"),
    PX_CFG_ENUM_(store_ini, synchronous, "synchronous", store_syncs, "full"),
};

int store_config_bind(px_config *cfg, const char *section, store_config *out, px_error *e)
{
    store_ini ini;
    const char *env;
    int rc;
    memset(&ini, 0, sizeof ini);
    rc = px_config_bind(cfg, section, store_fields, sizeof store_fields / sizeof store_fields[0],
                        &ini, e);
    if (rc != PX_OK)
        return rc;
    store_config_default(out);
    out->backend = ini.backend == 1 ? STORE_POSTGRES : STORE_SQLITE;
    px_strlcpy(out->path, ini.path, sizeof out->path);
    px_strlcpy(out->conninfo, ini.conninfo, sizeof out->conninfo);
    out->busy_timeout_ms = ini.busy_timeout_ms;
    out->synchronous_full = ini.synchronous;
    if (out->backend != STORE_POSTGRES || out->conninfo[0] != 0)
        return PX_OK;
    env = getenv("POSSUM_PG_CONNINFO");
    if (env == NULL || env[0] == 0)
        return px_error_set(e, PX_ECONFIG,
                            "%s: [%s] conninfo: required for backend = postgres "
                            "(or set POSSUM_PG_CONNINFO)",
                            px_config_path(cfg), section);
    if (px_strlcpy(out->conninfo, env, sizeof out->conninfo) != PX_OK)
        return px_error_set(e, PX_ETOOBIG, "POSSUM_PG_CONNINFO: longer than %d bytes",
                            PX_STORE_CONNINFO_MAX - 1);
    return PX_OK;
}

/* ---- open, close ------------------------------------------------------------------ */

const char *store_backend_name(store_backend b)
{
    return b == STORE_POSTGRES ? "postgres" : "sqlite";
}

store_backend store_get_backend(const store *s)
{
    return s->backend;
}

const store_migration *store_migrations_builtin(size_t *n)
{
    *n = store_builtin_migrations_n;
    return store_builtin_migrations;
}

int store_open(const store_config *cfg, store **out, px_error *e)
{
    const store_migration *m;
    size_t n;
    store *s;
    int rc;
    *out = NULL;
    if (cfg == NULL || (cfg->backend != STORE_SQLITE && cfg->backend != STORE_POSTGRES))
        return px_error_set(e, PX_EINVAL, "store: no or unknown backend");
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return px_error_set(e, PX_ENOMEM, "store: out of memory");
    s->backend = cfg->backend;
    s->ops = cfg->backend == STORE_POSTGRES ? &store_pg_ops : &store_sqlite_ops;
    s->busy_timeout_ms = cfg->busy_timeout_ms < 1                      ? 1
                         : cfg->busy_timeout_ms > PX_STORE_BUSY_MAX_MS ? PX_STORE_BUSY_MAX_MS
                                                                       : cfg->busy_timeout_ms;
    s->synchronous_full = cfg->synchronous_full;
    rc = s->ops->connect(s, cfg, e);
    if (rc != PX_OK) {
        free(s);
        return rc;
    }
    m = cfg->migrations;
    n = cfg->nmigrations;
    if (m == NULL)
        m = store_migrations_builtin(&n);
    rc = store_migrate(s, m, n, e);
    if (rc != PX_OK) {
        store_close(s);
        return rc;
    }
    *out = s;
    return PX_OK;
}

static void stmt_free(store_stmt *st)
{
    if (st->impl != NULL)
        st->s->ops->finalize(st);
    for (int i = 0; i <= PX_STORE_PARAMS_MAX; i++)
        px_buf_free(&st->params[i].b);
    free(st->exec_sql);
    free(st->sql);
    free(st);
}

void store_close(store *s)
{
    if (s == NULL)
        return;
    store_rollback(s);
    s->closing = 1;
    for (size_t i = 0; i < s->ncache; i++) {
        /* A statement still handed out is a caller bug; it dangles either way. */
        (void)PX_BUG(s->cache[i]->in_use);
        stmt_free(s->cache[i]);
    }
    s->ncache = 0;
    s->ops->disconnect(s);
    free(s);
}

/* ---- transactions ------------------------------------------------------------------ */

/* Record a failure inside a transaction: later statements are refused until rollback. */
static int note_failure(store *s, int rc, const px_error *err)
{
    if (rc < 0 && s->in_txn && !s->txn_failed) {
        s->txn_failed = 1;
        px_strlcpy(s->txn_error, px_error_text(err), sizeof s->txn_error);
    }
    return rc;
}

/* May a statement run now? Reconnects a lost connection when outside a transaction. */
static int ready(store *s, px_error *e)
{
    if (s->txn_failed)
        return px_error_set(e, PX_ESTATE, "store: transaction already failed (%s); roll back first",
                            s->txn_error);
    if (!s->broken)
        return PX_OK;
    if (s->in_txn)
        return px_error_set(e, PX_ENET, "store: connection lost during the transaction");
    if (s->ops->reconnect == NULL || s->ops->reconnect(s, e) != PX_OK)
        return e ? e->code : PX_ENET;
    s->broken = 0;
    s->generation++;
    px_info("store", "%s: reconnected", store_backend_name(s->backend));
    return PX_OK;
}

int store_begin(store *s, px_error *e)
{
    int rc;
    if (s->in_txn)
        return px_error_set(e, PX_ESTATE, "store: already in a transaction (no nesting)");
    rc = ready(s, e);
    if (rc != PX_OK)
        return rc;
    rc = s->ops->exec(s, s->ops->begin_sql, e);
    if (rc != PX_OK)
        return rc;
    s->in_txn = 1;
    s->txn_failed = 0;
    return PX_OK;
}

int store_commit(store *s, px_error *e)
{
    px_error local = {0};
    int rc;
    if (!s->in_txn)
        return px_error_set(e, PX_ESTATE, "store: commit without a transaction");
    if (s->txn_failed) {
        px_strlcpy(local.msg, s->txn_error, sizeof local.msg);
        store_rollback(s);
        return px_error_set(e, PX_ESTATE, "store: not committed, rolled back: %s", local.msg);
    }
    rc = s->ops->exec(s, "COMMIT", e ? e : &local);
    if (rc != PX_OK) {
        store_rollback(s); /* a failed COMMIT may leave the transaction open (SQLite) */
        return rc;
    }
    s->in_txn = 0;
    return PX_OK;
}

void store_rollback(store *s)
{
    if (s == NULL || !s->in_txn)
        return;
    if (!s->broken)
        (void)s->ops->exec(s, "ROLLBACK", NULL);
    s->in_txn = 0;
    s->txn_failed = 0;
    s->txn_error[0] = 0;
}

int store_in_transaction(const store *s)
{
    return s->in_txn;
}

int store_exec(store *s, const char *sql, px_error *e)
{
    px_error local = {0};
    px_error *err = e ? e : &local;
    px_buf b;
    int rc = ready(s, err);
    if (rc != PX_OK)
        return rc;
    px_buf_init(&b, SIZE_MAX / 2); /* migrations come through here: no ceiling */
    rc = store_sql_for_backend(sql, s->backend, &b, err);
    if (rc == PX_OK)
        rc = s->ops->exec(s, px_buf_str(&b), err);
    px_buf_free(&b);
    return note_failure(s, rc, err);
}

/* ---- statements and the per-connection cache -------------------------------------- */

static uint64_t sql_hash(const char *sql)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)sql; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h;
}

static store_stmt *cache_find(store *s, const char *sql, uint64_t h)
{
    for (size_t i = 0; i < s->ncache; i++)
        if (s->cache[i]->hash == h && strcmp(s->cache[i]->sql, sql) == 0)
            return s->cache[i];
    return NULL;
}

/* Make room for one more cached statement: evicts the least recently used idle one.
 * Returns 0 when every cached statement is in use (the new one then stays uncached). */
static int cache_make_room(store *s)
{
    size_t victim = s->ncache;
    if (s->ncache < PX_STORE_STMT_CACHE)
        return 1;
    for (size_t i = 0; i < s->ncache; i++)
        if (!s->cache[i]->in_use &&
            (victim == s->ncache || s->cache[i]->last_used < s->cache[victim]->last_used))
            victim = i;
    if (victim == s->ncache)
        return 0;
    stmt_free(s->cache[victim]);
    s->cache[victim] = s->cache[--s->ncache];
    return 1;
}

static int stmt_new(store *s, const char *sql, uint64_t h, store_stmt **out, px_error *e)
{
    store_stmt *st = calloc(1, sizeof *st);
    px_buf b;
    int rc;
    *out = NULL;
    if (st == NULL)
        return px_error_set(e, PX_ENOMEM, "store: out of memory");
    px_buf_init(&b, PX_STORE_SQL_MAX);
    rc = store_sql_for_backend(sql, s->backend, &b, e);
    if (rc == PX_OK && b.data == NULL)
        rc = px_buf_append(&b, "", 0); /* empty SQL: still a string */
    st->exec_sql = (char *)b.data;     /* taken over from the buffer */
    st->sql = strdup(sql);
    if (rc == PX_OK && (st->sql == NULL || st->exec_sql == NULL))
        rc = px_error_set(e, PX_ENOMEM, "store: out of memory");
    if (rc != PX_OK) {
        free(st->exec_sql);
        free(st->sql);
        free(st);
        return rc;
    }
    st->s = s;
    st->hash = h;
    for (int i = 0; i <= PX_STORE_PARAMS_MAX; i++)
        px_buf_init(&st->params[i].b, PX_STORE_VALUE_MAX);
    *out = st;
    return PX_OK;
}

int store_prepare(store *s, const char *sql, store_stmt **out, px_error *e)
{
    px_error local = {0};
    px_error *err = e ? e : &local;
    store_stmt *st;
    uint64_t h;
    int rc, cache_it;
    *out = NULL;
    if (sql == NULL || strnlen(sql, PX_STORE_SQL_MAX) >= PX_STORE_SQL_MAX)
        return px_error_set(e, PX_ETOOBIG, "store: SQL missing or longer than %d bytes",
                            PX_STORE_SQL_MAX - 1);
    rc = ready(s, err);
    if (rc != PX_OK)
        return rc;
    h = sql_hash(sql);
    st = cache_find(s, sql, h);
    if (st != NULL && !st->in_use) {
        st->in_use = 1;
        st->last_used = ++s->tick;
        *out = st;
        return PX_OK;
    }
    /* Not cached, or cached but busy (the same SQL nested): a new statement. */
    cache_it = st == NULL && cache_make_room(s);
    rc = stmt_new(s, sql, h, &st, err);
    if (rc != PX_OK)
        return note_failure(s, rc, err);
    st->cached = cache_it;
    rc = s->ops->prepare(st, err);
    if (rc != PX_OK) {
        stmt_free(st);
        return note_failure(s, rc, err);
    }
    if (cache_it)
        s->cache[s->ncache++] = st;
    st->in_use = 1;
    st->last_used = ++s->tick;
    *out = st;
    return PX_OK;
}

/* The value slot for parameter idx, or NULL (the error is kept for store_step). */
static store_value *param_slot(store_stmt *st, int idx)
{
    int rc = PX_OK;
    if (st == NULL)
        return NULL;
    if (st->run != STORE_RUN_FRESH)
        rc = PX_ESTATE;
    else if (idx < 1 || idx > PX_STORE_PARAMS_MAX)
        rc = PX_EINVAL;
    if (rc != PX_OK) {
        if (st->bind_rc == PX_OK) {
            st->bind_rc = rc;
            st->bind_idx = idx;
        }
        return NULL;
    }
    if (idx > st->nparams)
        st->nparams = idx;
    return &st->params[idx];
}

static int bind_fail(store_stmt *st, int idx, int rc)
{
    if (st->bind_rc == PX_OK) {
        st->bind_rc = rc;
        st->bind_idx = idx;
    }
    return rc;
}

int store_bind_int64(store_stmt *st, int idx, int64_t v)
{
    store_value *p = param_slot(st, idx);
    if (p == NULL)
        return st ? st->bind_rc : PX_EINVAL;
    p->type = STORE_V_INT;
    p->i = v;
    return PX_OK;
}

int store_bind_null(store_stmt *st, int idx)
{
    store_value *p = param_slot(st, idx);
    if (p == NULL)
        return st ? st->bind_rc : PX_EINVAL;
    p->type = STORE_V_NULL;
    return PX_OK;
}

static int bind_bytes(store_stmt *st, int idx, store_vtype type, const void *v, size_t n)
{
    store_value *p = param_slot(st, idx);
    int rc;
    if (p == NULL)
        return st ? st->bind_rc : PX_EINVAL;
    if (v == NULL && n > 0)
        return bind_fail(st, idx, PX_EINVAL);
    px_buf_reset(&p->b);
    rc = px_buf_append(&p->b, v, n);
    if (rc != PX_OK)
        return bind_fail(st, idx, rc);
    p->type = type;
    return PX_OK;
}

int store_bind_text(store_stmt *st, int idx, const char *v)
{
    if (v == NULL)
        return store_bind_null(st, idx);
    return bind_bytes(st, idx, STORE_V_TEXT, v, strnlen(v, PX_STORE_VALUE_MAX + 1));
}

int store_bind_blob(store_stmt *st, int idx, const void *p, size_t n)
{
    return bind_bytes(st, idx, STORE_V_BLOB, p, n);
}

int store_step(store_stmt *st, px_error *e)
{
    px_error local = {0};
    px_error *err = e ? e : &local;
    store *s;
    int rc;
    if (st == NULL)
        return px_error_set(e, PX_EINVAL, "store: no statement");
    s = st->s;
    if (st->run == STORE_RUN_DONE)
        return STORE_DONE;
    if (st->run == STORE_RUN_FRESH) {
        rc = ready(s, err);
        if (rc != PX_OK)
            return rc;
        if (st->bind_rc != PX_OK) {
            char sql[64];
            store_sql_excerpt(st->sql, sql, sizeof sql);
            px_error_set(err, st->bind_rc, "store: parameter $%d: %s (in \"%s\")", st->bind_idx,
                         st->bind_rc == PX_ESTATE ? "bound after the statement ran"
                                                  : px_strerror(st->bind_rc),
                         sql);
            return note_failure(s, st->bind_rc, err);
        }
    }
    rc = s->ops->step(st, err);
    if (rc < 0)
        st->run = STORE_RUN_DONE;
    return note_failure(s, rc, err);
}

/* ---- results ----------------------------------------------------------------------- */

/* Is col a column of a current row? A wrong column is a caller bug, reported once here. */
static int has_col(store_stmt *st, int col)
{
    if (st == NULL || st->run != STORE_RUN_ROWS)
        return 0;
    return !PX_BUG(col < 0 || col >= st->s->ops->column_count(st));
}

int store_column_count(store_stmt *st)
{
    return st != NULL && st->impl != NULL ? st->s->ops->column_count(st) : 0;
}

int store_col_is_null(store_stmt *st, int col)
{
    return has_col(st, col) ? st->s->ops->col_is_null(st, col) : 1;
}

int64_t store_col_int64(store_stmt *st, int col)
{
    return has_col(st, col) ? st->s->ops->col_int64(st, col) : 0;
}

const char *store_col_text(store_stmt *st, int col)
{
    return has_col(st, col) ? st->s->ops->col_text(st, col) : NULL;
}

const void *store_col_blob(store_stmt *st, int col, size_t *n)
{
    *n = 0;
    return has_col(st, col) ? st->s->ops->col_blob(st, col, n) : NULL;
}

int64_t store_changes(store_stmt *st)
{
    return st != NULL ? st->changes : 0;
}

void store_done(store_stmt *st)
{
    if (st == NULL)
        return;
    if (st->impl != NULL)
        st->s->ops->reset(st);
    for (int i = 1; i <= st->nparams; i++) {
        st->params[i].type = STORE_V_UNSET;
        if (st->params[i].b.cap > STORE_PARAM_KEEP)
            px_buf_free(&st->params[i].b);
        else
            px_buf_reset(&st->params[i].b);
    }
    st->nparams = 0;
    st->bind_rc = PX_OK;
    st->bind_idx = 0;
    st->run = STORE_RUN_FRESH;
    st->changes = 0;
    if (st->cached)
        st->in_use = 0;
    else
        stmt_free(st);
}
