/*
 * store_int.h: private to src/store (and its unit tests). The generic layer (store.c) owns
 * transactions, the statement cache, bound values and migrations; a backend (sqlite.c,
 * pg.c) supplies the operations in store_ops.
 */
#ifndef PX_STORE_INT_H
#define PX_STORE_INT_H

#include "lib/buf.h"
#include "store/store.h"

extern const store_migration store_builtin_migrations[];
extern const size_t store_builtin_migrations_n;

typedef enum store_vtype {
    STORE_V_UNSET = 0,
    STORE_V_NULL,
    STORE_V_INT,
    STORE_V_TEXT,
    STORE_V_BLOB
} store_vtype;

/* One bound parameter; the bytes of text and blob values are copied into b. */
typedef struct store_value {
    store_vtype type;
    int64_t i;
    px_buf b;
} store_value;

typedef enum store_run { STORE_RUN_FRESH = 0, STORE_RUN_ROWS, STORE_RUN_DONE } store_run;

struct store_stmt {
    store *s;
    char *sql;          /* as the caller wrote it: the cache key, quoted in errors */
    char *exec_sql;     /* as the backend runs it (store_sql_for_backend) */
    uint64_t hash;      /* of sql, for the cache */
    int cached;         /* lives in s->cache (else freed by store_done) */
    int in_use;         /* handed out by store_prepare, not yet done */
    uint64_t last_used; /* s->tick at the last prepare, for LRU eviction */
    store_value params[PX_STORE_PARAMS_MAX + 1]; /* index 1..PX_STORE_PARAMS_MAX */
    int nparams;                                 /* highest index bound */
    int bind_rc;                                 /* first bind error, returned by store_step */
    int bind_idx;                                /* ... and the parameter it concerned */
    store_run run;
    int64_t changes;
    void *impl; /* backend statement state */
};

typedef struct store_ops {
    int (*connect)(store *s, const store_config *cfg, px_error *e);
    void (*disconnect)(store *s);
    int (*exec)(store *s, const char *sql, px_error *e);
    int (*prepare)(store_stmt *st, px_error *e); /* fills st->impl */
    void (*finalize)(store_stmt *st);            /* frees st->impl */
    int (*step)(store_stmt *st, px_error *e);    /* binds st->params on the first step */
    void (*reset)(store_stmt *st);               /* back to fresh, results dropped */
    int (*column_count)(store_stmt *st);
    int (*col_is_null)(store_stmt *st, int col);
    int64_t (*col_int64)(store_stmt *st, int col);
    const char *(*col_text)(store_stmt *st, int col);
    const void *(*col_blob)(store_stmt *st, int col, size_t *n);
    int (*reconnect)(store *s, px_error *e); /* NULL: never needed */
    const char *begin_sql;
} store_ops;

struct store {
    const store_ops *ops;
    store_backend backend;
    void *db; /* sqlite3 * or PGconn * */
    int in_txn;
    int txn_failed; /* a statement failed inside the transaction */
    char txn_error[PX_ERRMSG_MAX];
    int broken;  /* connection lost: reconnect before the next transaction */
    int closing; /* store_close: server-side cleanup is not worth a round trip */
    uint64_t tick;
    uint64_t stmt_seq;   /* names PostgreSQL prepared statements */
    uint64_t generation; /* bumped on reconnect: server-side statements are gone */
    store_stmt *cache[PX_STORE_STMT_CACHE];
    size_t ncache;
    int64_t busy_timeout_ms;
    int synchronous_full;
};

extern const store_ops store_sqlite_ops;
extern const store_ops store_pg_ops;

/* The SQL as the backend must see it: keeps lines of "-- @all" sections and of the
 * backend's own ("-- @sqlite" / "-- @postgres") sections; on PostgreSQL also rewrites the
 * type word BLOB to BYTEA outside quotes and comments. */
int store_sql_for_backend(const char *sql, store_backend b, px_buf *out, px_error *e);

/* "INSERT INTO t (a, b) VALUES ($1..." cut to a short, single-line excerpt for messages;
 * the contents of string literals are shown as '?' (a literal could hold a PAN). */
void store_sql_excerpt(const char *sql, char *out, size_t outsz);

/* Apply pending migrations (store.c / migrate.c). */
int store_migrate(store *s, const store_migration *m, size_t n, px_error *e);

#endif
