/*
 * sqlite.c: the SQLite backend. One sqlite3 connection per store (SQLITE_OPEN_NOMUTEX: the
 * store is used by one thread at a time), WAL journal, synchronous FULL or NORMAL, foreign
 * keys on, parameters written $1..$n and bound by name.
 */
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/str.h"

typedef struct sq_stmt {
    sqlite3_stmt *h;
    int map[PX_STORE_PARAMS_MAX + 1]; /* $k -> SQLite parameter index, 0 when absent */
} sq_stmt;

static const char sq_empty[1] = "";

static int sq_code(int rc)
{
    switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY: return PX_ECONFLICT;
    default: break;
    }
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return PX_ETIMEOUT;
    case SQLITE_NOMEM: return PX_ENOMEM;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN: return PX_EIO;
    case SQLITE_TOOBIG: return PX_ETOOBIG;
    default: return PX_ESTORE;
    }
}

/* Map rc and record SQLite's message with an excerpt of the SQL it concerns. */
static int sq_error(store *s, int rc, const char *msg, const char *sql, px_error *e)
{
    char ex[64];
    store_sql_excerpt(sql, ex, sizeof ex);
    if (msg == NULL)
        msg = s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    return px_error_set(e, sq_code(rc), "sqlite: %s (in \"%s\")", msg, ex);
}

/* mkdir -p of the directory part of path (mode 0750). */
static int make_parent_dirs(const char *path, px_error *e)
{
    char dir[PX_PATH_MAX];
    char *slash;
    struct stat sb;
    if (px_strlcpy(dir, path, sizeof dir) != PX_OK)
        return px_error_set(e, PX_ETOOBIG, "sqlite: path too long: %.64s...", path);
    slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return PX_OK;
    *slash = 0;
    for (char *p = dir + 1;; p++) {
        char c = *p;
        if (c != '/' && c != 0)
            continue;
        *p = 0;
        if (mkdir(dir, 0750) != 0 && errno != EEXIST)
            return px_error_set(e, PX_EIO, "sqlite: cannot create directory %s: %s", dir,
                                strerror(errno));
        if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
            return px_error_set(e, PX_EIO, "sqlite: %s is not a directory", dir);
        *p = c;
        if (c == 0)
            return PX_OK;
    }
}

/* Create the file owner-only before SQLite does (its -wal and -shm files copy the mode).
 * An existing file is never opened here: closing any descriptor of a file drops every POSIX
 * lock this process holds on it (fcntl(2)), which would let another process delete the WAL
 * of a live connection. O_EXCL makes the open touch only a file that did not exist. */
static int create_private(const char *path, px_error *e)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST)
        return PX_OK;
    if (fd < 0)
        return px_error_set(e, PX_EIO, "sqlite: cannot open %s: %s", path, strerror(errno));
    close(fd);
    return PX_OK;
}

/* One-row PRAGMA: the text it returns, compared with want. */
static int sq_pragma_is(store *s, const char *sql, const char *want, px_error *e)
{
    sqlite3_stmt *h = NULL;
    const char *got;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &h, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(h);
    if (rc != SQLITE_ROW) {
        rc = sq_error(s, rc, NULL, sql, e);
        sqlite3_finalize(h);
        return rc;
    }
    got = (const char *)sqlite3_column_text(h, 0);
    rc = got != NULL && strcmp(got, want) == 0
             ? PX_OK
             : px_error_set(e, PX_ESTORE, "sqlite: %s gave %s, expected %s", sql,
                            got ? got : "nothing", want);
    sqlite3_finalize(h);
    return rc;
}

static int sq_exec(store *s, const char *sql, px_error *e)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        rc = sq_error(s, sqlite3_extended_errcode(s->db), msg, sql, e);
        sqlite3_free(msg);
        return rc;
    }
    return PX_OK;
}

static int sq_connect(store *s, const store_config *cfg, px_error *e)
{
    int memory = strcmp(cfg->path, ":memory:") == 0;
    sqlite3 *db = NULL;
    int rc;
    if (cfg->path[0] == 0)
        return px_error_set(e, PX_ECONFIG, "sqlite: no database path");
    if (!memory && ((rc = make_parent_dirs(cfg->path, e)) != PX_OK ||
                    (rc = create_private(cfg->path, e)) != PX_OK))
        return rc;
    rc = sqlite3_open_v2(cfg->path, &db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = px_error_set(e, sq_code(rc), "sqlite: cannot open %s: %s", cfg->path,
                          db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return rc;
    }
    s->db = db;
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, (int)s->busy_timeout_ms);
    rc = sq_pragma_is(s, "PRAGMA journal_mode = WAL", memory ? "memory" : "wal", e);
    if (rc == PX_OK)
        rc = sq_exec(s,
                     s->synchronous_full ? "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON"
                                         : "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON",
                     e);
    if (rc != PX_OK) {
        sqlite3_close(db);
        s->db = NULL;
        if (e != NULL)
            px_error_prefix(e, "%s: ", cfg->path);
        return rc;
    }
    return PX_OK;
}

static void sq_disconnect(store *s)
{
    /* Still busy means a statement was never given back (a caller bug): close it later. */
    if (s->db != NULL && PX_BUG(sqlite3_close(s->db) != SQLITE_OK))
        sqlite3_close_v2(s->db);
    s->db = NULL;
}

/* Parameters must be written $1..$PX_STORE_PARAMS_MAX (the one style PostgreSQL shares). */
static int sq_map_params(store_stmt *st, sq_stmt *q, px_error *e)
{
    int n = sqlite3_bind_parameter_count(q->h);
    for (int i = 1; i <= n; i++) {
        const char *name = sqlite3_bind_parameter_name(q->h, i);
        int64_t k = 0;
        if (name == NULL || name[0] != '$' ||
            px_parse_i64(name + 1, 1, PX_STORE_PARAMS_MAX, &k) != PX_OK) {
            char ex[64];
            store_sql_excerpt(st->sql, ex, sizeof ex);
            return px_error_set(e, PX_EINVAL,
                                "sqlite: parameter %s: write parameters as "
                                "$1..$%d (in \"%s\")",
                                name ? name : "?", PX_STORE_PARAMS_MAX, ex);
        }
        q->map[k] = i;
    }
    return PX_OK;
}

/* Is the text after the first statement empty of statements (blanks, ';', comments)? */
static int sq_only_comments(store *s, const char *tail)
{
    sqlite3_stmt *h = NULL;
    while (*tail == ' ' || *tail == '\t' || *tail == '\n' || *tail == '\r' || *tail == ';')
        tail++;
    if (*tail == 0)
        return 1;
    if (sqlite3_prepare_v2(s->db, tail, -1, &h, NULL) != SQLITE_OK) {
        sqlite3_finalize(h);
        return 0;
    }
    sqlite3_finalize(h);
    return h == NULL;
}

static int sq_prepare(store_stmt *st, px_error *e)
{
    store *s = st->s;
    const char *tail = NULL;
    sq_stmt *q = calloc(1, sizeof *q);
    int rc;
    if (q == NULL)
        return px_error_set(e, PX_ENOMEM, "sqlite: out of memory");
    rc = sqlite3_prepare_v3(s->db, st->exec_sql, -1, st->cached ? SQLITE_PREPARE_PERSISTENT : 0,
                            &q->h, &tail);
    if (rc != SQLITE_OK)
        rc = sq_error(s, rc, NULL, st->sql, e);
    else if (q->h == NULL)
        rc = sq_error(s, SQLITE_MISUSE, "no SQL statement", st->sql, e);
    else
        rc = sq_only_comments(s, tail)
                 ? sq_map_params(st, q, e)
                 : sq_error(s, SQLITE_ERROR, "more than one statement (use store_exec)", st->sql,
                            e);
    if (rc != PX_OK) {
        sqlite3_finalize(q->h);
        free(q);
        return rc;
    }
    st->impl = q;
    return PX_OK;
}

static void sq_finalize(store_stmt *st)
{
    sq_stmt *q = st->impl;
    sqlite3_finalize(q->h);
    free(q);
    st->impl = NULL;
}

static int sq_bind_one(sqlite3_stmt *h, int i, const store_value *v)
{
    switch (v->type) {
    case STORE_V_INT: return sqlite3_bind_int64(h, i, v->i);
    case STORE_V_TEXT:
        return sqlite3_bind_text64(h, i, (const char *)v->b.data ? (const char *)v->b.data : "",
                                   v->b.len, SQLITE_STATIC, SQLITE_UTF8);
    case STORE_V_BLOB:
        return sqlite3_bind_blob64(h, i, v->b.data ? (const void *)v->b.data : sq_empty, v->b.len,
                                   SQLITE_STATIC);
    default: return sqlite3_bind_null(h, i);
    }
}

/* Bind every $k the SQL names; each must have a value, and no value may be left over. The
 * values stay in st->params until store_done, so SQLite need not copy them. */
static int sq_bind_all(store_stmt *st, sq_stmt *q, px_error *e)
{
    for (int k = 1; k <= PX_STORE_PARAMS_MAX; k++) {
        const store_value *v = &st->params[k];
        const char *why = NULL;
        int rc;
        if (q->map[k] == 0 && v->type != STORE_V_UNSET)
            why = "bound but not in the SQL";
        else if (q->map[k] != 0 && v->type == STORE_V_UNSET)
            why = "not bound";
        if (why == NULL && q->map[k] != 0 && (rc = sq_bind_one(q->h, q->map[k], v)) != SQLITE_OK)
            return sq_error(st->s, rc, NULL, st->sql, e);
        if (why != NULL) {
            char ex[64];
            store_sql_excerpt(st->sql, ex, sizeof ex);
            return px_error_set(e, PX_EINVAL, "store: parameter $%d: %s (in \"%s\")", k, why, ex);
        }
    }
    return PX_OK;
}

static int sq_step(store_stmt *st, px_error *e)
{
    sq_stmt *q = st->impl;
    int rc;
    if (st->run == STORE_RUN_FRESH) {
        rc = sq_bind_all(st, q, e);
        if (rc != PX_OK)
            return rc;
        st->run = STORE_RUN_ROWS;
    }
    rc = sqlite3_step(q->h);
    if (rc == SQLITE_ROW)
        return STORE_ROW;
    if (rc == SQLITE_DONE) {
        st->changes = sqlite3_stmt_readonly(q->h) ? 0 : sqlite3_changes64(st->s->db);
        st->run = STORE_RUN_DONE;
        sqlite3_reset(q->h); /* ends the implicit read transaction now */
        return STORE_DONE;
    }
    rc = sq_error(st->s, sqlite3_extended_errcode(st->s->db), NULL, st->sql, e);
    sqlite3_reset(q->h);
    return rc;
}

static void sq_reset(store_stmt *st)
{
    sq_stmt *q = st->impl;
    sqlite3_reset(q->h);
    sqlite3_clear_bindings(q->h);
}

static int sq_column_count(store_stmt *st)
{
    return sqlite3_column_count(((sq_stmt *)st->impl)->h);
}

static int sq_col_is_null(store_stmt *st, int col)
{
    return sqlite3_column_type(((sq_stmt *)st->impl)->h, col) == SQLITE_NULL;
}

static int64_t sq_col_int64(store_stmt *st, int col)
{
    return sqlite3_column_int64(((sq_stmt *)st->impl)->h, col);
}

static const char *sq_col_text(store_stmt *st, int col)
{
    return (const char *)sqlite3_column_text(((sq_stmt *)st->impl)->h, col);
}

static const void *sq_col_blob(store_stmt *st, int col, size_t *n)
{
    sqlite3_stmt *h = ((sq_stmt *)st->impl)->h;
    const void *p = sqlite3_column_blob(h, col);
    *n = (size_t)sqlite3_column_bytes(h, col);
    if (p == NULL && sqlite3_column_type(h, col) != SQLITE_NULL)
        return sq_empty; /* an empty blob is not NULL */
    return p;
}

const store_ops store_sqlite_ops = {
    .connect = sq_connect,
    .disconnect = sq_disconnect,
    .exec = sq_exec,
    .prepare = sq_prepare,
    .finalize = sq_finalize,
    .step = sq_step,
    .reset = sq_reset,
    .column_count = sq_column_count,
    .col_is_null = sq_col_is_null,
    .col_int64 = sq_col_int64,
    .col_text = sq_col_text,
    .col_blob = sq_col_blob,
    .reconnect = NULL,
    .begin_sql = "BEGIN IMMEDIATE",
};
