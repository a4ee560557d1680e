/*
 * pg.c: the PostgreSQL backend (libpq). One PGconn per store. Cached statements are
 * prepared server-side once per connection (PQprepare, named px<N>); uncached ones run
 * with PQexecParams. Results come whole in text format; bytea arrives hex-escaped and is
 * decoded so store_col_blob gives the same bytes as SQLite. A lost connection marks the
 * store broken; store.c reconnects it before the next transaction.
 */
#include "store/store_int.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hex.h"
#include "lib/log.h"
#include "lib/str.h"

#define PG_BYTEA_OID 17
#define PG_BLOB_KEEP 4096 /* a decoded-blob buffer larger than this is freed at reset */

typedef struct pg_stmt {
    char name[24];       /* server-side name; "" = not prepared (uncached statement) */
    uint64_t generation; /* s->generation when prepared */
    PGresult *res;
    int row, nrows, ncols;
    px_buf *blobs; /* per column: the decoded bytea of the current row */
    int *blob_row; /* per column: the row blobs[col] holds, -1 for none */
    int nblobs;
} pg_stmt;

static const char pg_empty[1] = "";

static PGconn *conn_of(const store *s)
{
    return (PGconn *)s->db;
}

static int pg_code(const char *state)
{
    static const char *const retry[] = {"40001", "40P01", "55P03", "57014", NULL};
    if (state == NULL)
        return PX_ESTORE;
    if (strcmp(state, "23505") == 0)
        return PX_ECONFLICT;
    for (int i = 0; retry[i] != NULL; i++)
        if (strcmp(state, retry[i]) == 0)
            return PX_ETIMEOUT;
    if (strncmp(state, "08", 2) == 0)
        return PX_ENET;
    if (strcmp(state, "53200") == 0)
        return PX_ENOMEM;
    if (strcmp(state, "53100") == 0)
        return PX_EIO;
    return PX_ESTORE;
}

/* Copy a server message without its trailing newline. Data exceptions (class 22) quote the
 * offending value ("invalid input syntax for type bigint: \"...\""): cut it off, since a
 * value may be a PAN. */
static void pg_clean_message(const char *msg, const char *state, char *out, size_t outsz)
{
    size_t n;
    px_strlcpy(out, msg ? msg : "unknown error", outsz);
    if (state != NULL && strncmp(state, "22", 2) == 0) {
        char *q = strstr(out, ": \"");
        if (q != NULL)
            *q = 0;
    }
    n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = 0;
}

/* Map a failed result (or the connection's error when res is NULL) to a px_err with the
 * server's primary message, its SQLSTATE and an excerpt of the SQL. Never the DETAIL,
 * which echoes key values. */
static int pg_error(store *s, const PGresult *res, const char *sql, px_error *e)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char clean[160], ex[64];
    int code = pg_code(state);
    if (msg == NULL)
        msg = PQerrorMessage(conn_of(s));
    if (PQstatus(conn_of(s)) == CONNECTION_BAD) {
        s->broken = 1;
        code = PX_ENET;
    }
    pg_clean_message(msg, state, clean, sizeof clean);
    store_sql_excerpt(sql, ex, sizeof ex);
    return px_error_set(e, code, "postgres: %s [%s] (in \"%s\")", clean, state ? state : "-", ex);
}

static void pg_notice(void *arg, const char *message)
{
    char clean[PX_ERRMSG_MAX];
    (void)arg;
    pg_clean_message(message, NULL, clean, sizeof clean);
    px_debug("store", "postgres: %s", clean);
}

static int pg_exec(store *s, const char *sql, px_error *e)
{
    PGresult *res = PQexec(conn_of(s), sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = PX_OK;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = pg_error(s, res, sql, e);
    PQclear(res);
    return rc;
}

/* Per-session settings, after every (re)connect: lock waits end after busy_timeout_ms with
 * a retryable error, like SQLite's busy timeout; hex bytea; quiet notices. */
static int pg_session(store *s, px_error *e)
{
    char sql[256];
    PQsetNoticeProcessor(conn_of(s), pg_notice, NULL);
    if (PQsetClientEncoding(conn_of(s), "UTF8") != 0)
        return px_error_set(e, PX_ESTORE, "postgres: cannot set client encoding UTF8");
    snprintf(sql, sizeof sql,
             "SET lock_timeout = %lld; SET bytea_output = 'hex'; "
             "SET client_min_messages = warning%s",
             (long long)s->busy_timeout_ms,
             s->synchronous_full ? "" : "; SET synchronous_commit = off");
    return pg_exec(s, sql, e);
}

static int pg_connect(store *s, const store_config *cfg, px_error *e)
{
    const char *keys[] = {"connect_timeout", "fallback_application_name", "dbname", NULL};
    const char *vals[] = {"10", "possum", cfg->conninfo, NULL};
    char clean[200];
    PGconn *c;
    int rc;
    if (cfg->conninfo[0] == 0)
        return px_error_set(e, PX_ECONFIG, "postgres: no conninfo");
    /* expand_dbname: the conninfo's own settings override the defaults before it. */
    c = PQconnectdbParams(keys, vals, 1);
    if (c == NULL)
        return px_error_set(e, PX_ENOMEM, "postgres: out of memory");
    if (PQstatus(c) != CONNECTION_OK) {
        pg_clean_message(PQerrorMessage(c), NULL, clean, sizeof clean);
        PQfinish(c);
        return px_error_set(e, PX_ENET, "postgres: cannot connect: %s", clean);
    }
    s->db = c;
    rc = pg_session(s, e);
    if (rc != PX_OK) {
        PQfinish(c);
        s->db = NULL;
    }
    return rc;
}

static int pg_reconnect(store *s, px_error *e)
{
    char clean[200];
    PQreset(conn_of(s));
    if (PQstatus(conn_of(s)) != CONNECTION_OK) {
        pg_clean_message(PQerrorMessage(conn_of(s)), NULL, clean, sizeof clean);
        return px_error_set(e, PX_ENET, "postgres: cannot reconnect: %s", clean);
    }
    return pg_session(s, e);
}

static void pg_disconnect(store *s)
{
    PQfinish(conn_of(s));
    s->db = NULL;
}

static int pg_prepare_named(store_stmt *st, pg_stmt *q, px_error *e)
{
    store *s = st->s;
    PGresult *res;
    int rc = PX_OK;
    snprintf(q->name, sizeof q->name, "px%llu", (unsigned long long)++s->stmt_seq);
    res = PQprepare(conn_of(s), q->name, st->exec_sql, 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        rc = pg_error(s, res, st->sql, e);
        q->name[0] = 0;
    }
    PQclear(res);
    q->generation = s->generation;
    return rc;
}

static int pg_prepare(store_stmt *st, px_error *e)
{
    pg_stmt *q = calloc(1, sizeof *q);
    int rc = PX_OK;
    if (q == NULL)
        return px_error_set(e, PX_ENOMEM, "postgres: out of memory");
    q->row = -1;
    if (st->cached)
        rc = pg_prepare_named(st, q, e);
    if (rc != PX_OK) {
        free(q);
        return rc;
    }
    st->impl = q;
    return PX_OK;
}

static void pg_blobs_free(pg_stmt *q, int all)
{
    for (int i = 0; i < q->nblobs; i++) {
        q->blob_row[i] = -1;
        if (all || q->blobs[i].cap > PG_BLOB_KEEP)
            px_buf_free(&q->blobs[i]);
    }
    if (all) {
        free(q->blobs);
        free(q->blob_row);
        q->blobs = NULL;
        q->blob_row = NULL;
        q->nblobs = 0;
    }
}

static void pg_reset(store_stmt *st)
{
    pg_stmt *q = st->impl;
    PQclear(q->res);
    q->res = NULL;
    q->row = -1;
    q->nrows = q->ncols = 0;
    pg_blobs_free(q, 0);
}

static void pg_finalize(store_stmt *st)
{
    pg_stmt *q = st->impl;
    store *s = st->s;
    pg_reset(st);
    pg_blobs_free(q, 1);
    /* Dropped with the session anyway when the connection was lost or is closing. */
    if (q->name[0] != 0 && q->generation == s->generation && !s->broken && !s->closing) {
        char sql[40];
        snprintf(sql, sizeof sql, "DEALLOCATE %s", q->name);
        (void)pg_exec(s, sql, NULL);
    }
    free(q);
    st->impl = NULL;
}

/* Parameter arrays for libpq: integers as text, text as text, blobs binary, NULL as NULL.
 * ints[] provides the digits' storage for the duration of the call. */
static int pg_params(store_stmt *st, const char **vals, int *lens, int *fmts, char ints[][24],
                     px_error *e)
{
    for (int k = 1; k <= st->nparams; k++) {
        const store_value *v = &st->params[k];
        int i = k - 1;
        vals[i] = NULL;
        lens[i] = 0;
        fmts[i] = 0;
        switch (v->type) {
        case STORE_V_UNSET: {
            char ex[64];
            store_sql_excerpt(st->sql, ex, sizeof ex);
            return px_error_set(e, PX_EINVAL, "store: parameter $%d: not bound (in \"%s\")", k, ex);
        }
        case STORE_V_INT:
            snprintf(ints[i], sizeof ints[i], "%lld", (long long)v->i);
            vals[i] = ints[i];
            break;
        case STORE_V_TEXT: vals[i] = v->b.data ? (const char *)v->b.data : pg_empty; break;
        case STORE_V_BLOB:
            vals[i] = v->b.data ? (const char *)v->b.data : pg_empty;
            lens[i] = (int)v->b.len;
            fmts[i] = 1;
            break;
        case STORE_V_NULL: break;
        }
    }
    return PX_OK;
}

/* Run the statement with its bound values; keep the rows, count the changes. */
static int pg_run(store_stmt *st, pg_stmt *q, px_error *e)
{
    const char *vals[PX_STORE_PARAMS_MAX];
    int lens[PX_STORE_PARAMS_MAX], fmts[PX_STORE_PARAMS_MAX];
    char ints[PX_STORE_PARAMS_MAX][24];
    store *s = st->s;
    ExecStatusType status;
    int rc = pg_params(st, vals, lens, fmts, ints, e);
    if (rc == PX_OK && st->cached && q->generation != s->generation)
        rc = pg_prepare_named(st, q, e); /* reconnected: the server forgot it */
    if (rc != PX_OK)
        return rc;
    if (q->name[0] != 0)
        q->res = PQexecPrepared(conn_of(s), q->name, st->nparams, vals, lens, fmts, 0);
    else
        q->res = PQexecParams(conn_of(s), st->exec_sql, st->nparams, NULL, vals, lens, fmts, 0);
    status = PQresultStatus(q->res);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        rc = pg_error(s, q->res, st->sql, e);
        PQclear(q->res);
        q->res = NULL;
        return rc;
    }
    q->nrows = PQntuples(q->res);
    q->ncols = PQnfields(q->res);
    q->row = -1;
    if (strncmp(PQcmdStatus(q->res), "SELECT", 6) != 0)
        (void)px_parse_i64(PQcmdTuples(q->res), 0, INT64_MAX, &st->changes);
    return PX_OK;
}

static int pg_step(store_stmt *st, px_error *e)
{
    pg_stmt *q = st->impl;
    if (st->run == STORE_RUN_FRESH) {
        int rc = pg_run(st, q, e);
        if (rc != PX_OK)
            return rc;
        st->run = STORE_RUN_ROWS;
    }
    if (++q->row < q->nrows)
        return STORE_ROW;
    st->run = STORE_RUN_DONE;
    return STORE_DONE;
}

static int pg_column_count(store_stmt *st)
{
    pg_stmt *q = st->impl;
    return q->res ? q->ncols : 0;
}

static int pg_col_is_null(store_stmt *st, int col)
{
    pg_stmt *q = st->impl;
    return PQgetisnull(q->res, q->row, col);
}

static int64_t pg_col_int64(store_stmt *st, int col)
{
    pg_stmt *q = st->impl;
    const char *v;
    int64_t out = 0;
    if (PQgetisnull(q->res, q->row, col))
        return 0;
    v = PQgetvalue(q->res, q->row, col);
    if (strcmp(v, "t") == 0 || strcmp(v, "f") == 0) /* boolean */
        return v[0] == 't';
    if (px_parse_i64(v, INT64_MIN, INT64_MAX, &out) != PX_OK)
        return 0;
    return out;
}

static const char *pg_col_text(store_stmt *st, int col)
{
    pg_stmt *q = st->impl;
    if (PQgetisnull(q->res, q->row, col))
        return NULL;
    return PQgetvalue(q->res, q->row, col);
}

/* Room to remember one decoded blob per column. */
static int pg_blobs_alloc(pg_stmt *q)
{
    if (q->nblobs >= q->ncols)
        return PX_OK;
    pg_blobs_free(q, 1);
    q->blobs = calloc((size_t)q->ncols, sizeof *q->blobs);
    q->blob_row = calloc((size_t)q->ncols, sizeof *q->blob_row);
    if (q->blobs == NULL || q->blob_row == NULL) {
        free(q->blobs);
        free(q->blob_row);
        q->blobs = NULL;
        q->blob_row = NULL;
        return PX_ENOMEM;
    }
    q->nblobs = q->ncols;
    for (int i = 0; i < q->nblobs; i++) {
        px_buf_init(&q->blobs[i], PX_STORE_VALUE_MAX);
        q->blob_row[i] = -1;
    }
    return PX_OK;
}

/* bytea comes as "\x" + hex; decode it once per row and column. Other types: their text. */
static const void *pg_col_blob(store_stmt *st, int col, size_t *n)
{
    pg_stmt *q = st->impl;
    const char *v;
    size_t len, out = 0;
    px_buf *b;
    if (PQgetisnull(q->res, q->row, col))
        return NULL;
    v = PQgetvalue(q->res, q->row, col);
    len = (size_t)PQgetlength(q->res, q->row, col);
    if (PQftype(q->res, col) != PG_BYTEA_OID) {
        *n = len;
        return v;
    }
    if (pg_blobs_alloc(q) != PX_OK || len < 2 || v[0] != '\\' || v[1] != 'x')
        return NULL;
    b = &q->blobs[col];
    if (q->blob_row[col] != q->row) {
        px_buf_reset(b);
        if (px_buf_reserve(b, (len - 2) / 2) != PX_OK ||
            px_hex_decode_n(v + 2, len - 2, b->data, b->cap, &out) != PX_OK)
            return NULL;
        b->len = out;
        q->blob_row[col] = q->row;
    }
    *n = b->len;
    return b->len > 0 ? (const void *)b->data : pg_empty;
}

const store_ops store_pg_ops = {
    .connect = pg_connect,
    .disconnect = pg_disconnect,
    .exec = pg_exec,
    .prepare = pg_prepare,
    .finalize = pg_finalize,
    .step = pg_step,
    .reset = pg_reset,
    .column_count = pg_column_count,
    .col_is_null = pg_col_is_null,
    .col_int64 = pg_col_int64,
    .col_text = pg_col_text,
    .col_blob = pg_col_blob,
    .reconnect = pg_reconnect,
    .begin_sql = "BEGIN",
};
