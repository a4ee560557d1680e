/*
 * store.h: one storage API, two backends: SQLite (default, WAL, a file under var/) and
 * PostgreSQL (libpq, for several possumd nodes sharing one database). See docs/store.md.
 *
 * Threads: one `store` is one connection and is used by one thread at a time. A thread
 * that needs the database opens its own store (store_open is cheap on SQLite and one
 * round trip on PostgreSQL).
 *
 * SQL: parameters are written $1..$n in both backends. Write the portable subset described
 * in docs/store.md (BIGINT for every 64-bit value, TEXT, BLOB, ON CONFLICT DO NOTHING,
 * RETURNING, CHECK; CAST($1 AS BIGINT) where a parameter's type cannot be inferred).
 *
 * Errors (in addition to PX_ENOMEM, PX_EINVAL):
 *   PX_ECONFLICT  a UNIQUE / PRIMARY KEY constraint refused the row (duplicate)
 *   PX_ETIMEOUT   retryable: lock wait exceeded busy_timeout_ms, serialization failure,
 *                 deadlock. Roll back and run the whole transaction again (STORE_ERETRY).
 *   PX_ENET       PostgreSQL connection lost. If it happened in store_commit the outcome
 *                 is unknown: make retries idempotent with a unique key. The next
 *                 store_begin / statement outside a transaction reconnects.
 *   PX_ESTATE     misuse: commit without begin, a statement after a failed one in the
 *                 same transaction (roll back first), a newer schema than this build
 *   PX_ESTORE     any other database error; the message names the SQL and the cause
 * After any error inside a transaction the transaction is failed on both backends (as
 * PostgreSQL does natively): store_commit then rolls back and returns PX_ESTATE. To skip a
 * duplicate and carry on, use INSERT ... ON CONFLICT DO NOTHING (and RETURNING) instead.
 * Messages never contain bound parameter values.
 */
#ifndef PX_STORE_H
#define PX_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"
#include "lib/err.h"
#include "lib/limits.h"

typedef struct store store;
typedef struct store_stmt store_stmt;

typedef enum store_backend { STORE_SQLITE = 0, STORE_POSTGRES = 1 } store_backend;

/* One schema migration: version (1, 2, ...), a name ("0001_core") and its SQL. */
typedef struct store_migration {
    int version;
    const char *name;
    const char *sql;
} store_migration;

typedef struct store_config {
    store_backend backend;
    char path[PX_PATH_MAX];               /* sqlite: database file, e.g. var/possum.db */
    char conninfo[PX_STORE_CONNINFO_MAX]; /* postgres: libpq conninfo or URI */
    int64_t busy_timeout_ms;              /* longest wait for a lock before PX_ETIMEOUT */
    int synchronous_full;                 /* 1: a returned commit survives power loss (default) */
    /* Migrations to apply; NULL = the set built into the library (store_migrations_builtin).
     * Tests use this to inject extra ones. Must be sorted by version, versions unique. */
    const store_migration *migrations;
    size_t nmigrations;
} store_config;

/* Defaults: sqlite, var/possum.db, busy 5000 ms, synchronous full, built-in migrations. */
void store_config_default(store_config *out);

/* [section] backend = sqlite|postgres, path = ..., conninfo = ..., busy_timeout_ms = ...,
 * synchronous = full|normal. With backend = postgres and no conninfo key, the conninfo comes
 * from the environment variable POSSUM_PG_CONNINFO (so no password sits in a config file). */
int store_config_bind(px_config *cfg, const char *section, store_config *out, px_error *e);

/* Connect (SQLite: create the parent directory and the file, mode 0600; WAL; synchronous;
 * foreign keys on), then apply pending migrations in one transaction, serialised across
 * nodes on PostgreSQL. *out is NULL on failure. */
int store_open(const store_config *cfg, store **out, px_error *e);
void store_close(store *s); /* NULL is fine; rolls back an open transaction */

store_backend store_get_backend(const store *s);
const char *store_backend_name(store_backend b); /* "sqlite", "postgres" */

/* The migrations compiled into the library from src/store/migrations/NNNN_name.sql. */
const store_migration *store_migrations_builtin(size_t *n);

/* Highest applied migration version (0 when none). */
int store_schema_version(store *s, int *version, px_error *e);

/* Transactions. SQLite: BEGIN IMMEDIATE (takes the write lock now, so commits do not
 * fail on lock upgrade). PostgreSQL: BEGIN (READ COMMITTED). No nesting. */
int store_begin(store *s, px_error *e);
int store_commit(store *s, px_error *e);
void store_rollback(store *s); /* safe to call without a transaction */
int store_in_transaction(const store *s);

/* Run SQL without parameters or results (several statements allowed). */
int store_exec(store *s, const char *sql, px_error *e);

/* Prepare (or take from the per-connection cache, keyed by SQL text) a statement with
 * parameters $1..$n. Every stmt must be given back with store_done. */
int store_prepare(store *s, const char *sql, store_stmt **out, px_error *e);

/* Bind parameter idx (1-based, as in $idx). Values are copied. A bind error is also
 * remembered and returned by the next store_step, so binds may be chained unchecked. */
int store_bind_int64(store_stmt *st, int idx, int64_t v);
int store_bind_text(store_stmt *st, int idx, const char *v); /* NULL binds SQL NULL */
int store_bind_blob(store_stmt *st, int idx, const void *p, size_t n);
int store_bind_null(store_stmt *st, int idx);

#define STORE_DONE 0
#define STORE_ROW 1
#define STORE_ERETRY PX_ETIMEOUT

/* Execute / advance: STORE_ROW, STORE_DONE, or a negative px_err (see the top). */
int store_step(store_stmt *st, px_error *e);
static inline int store_is_retryable(int rc)
{
    return rc == STORE_ERETRY;
}

/* Columns of the current row (0-based). Pointers stay valid until the next step or done.
 * NULL reads as 0 / NULL; an empty blob is a non-NULL pointer with *n == 0.
 * col_int64 of a value that is not a whole number reads as 0 on PostgreSQL (SQLite converts
 * as it does); store_column_count is known once store_step has run. */
int store_column_count(store_stmt *st);
int64_t store_col_int64(store_stmt *st, int col);
const char *store_col_text(store_stmt *st, int col);
const void *store_col_blob(store_stmt *st, int col, size_t *n);
int store_col_is_null(store_stmt *st, int col);

/* Rows inserted, updated or deleted by the statement once it has run. */
int64_t store_changes(store_stmt *st);

/* Reset, clear bindings, hand back to the cache (or free). NULL is fine. */
void store_done(store_stmt *st);

#endif
