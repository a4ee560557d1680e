/* store.c: placeholder while the backends land; every call fails with PX_EUNSUPPORTED. */
#include "store/store_int.h"

#include <string.h>

#include "lib/str.h"

void store_config_default(store_config *out)
{
    memset(out, 0, sizeof *out);
    out->backend = STORE_SQLITE;
    px_strlcpy(out->path, "var/possum.db", sizeof out->path);
    out->busy_timeout_ms = 5000;
    out->synchronous_full = 1;
}

int store_config_bind(px_config *cfg, const char *section, store_config *out, px_error *e)
{ return px_error_set(e, PX_EUNSUPPORTED, "store: not yet"); }
int store_open(const store_config *cfg, store **out, px_error *e)
{ *out = NULL; return px_error_set(e, PX_EUNSUPPORTED, "store: not yet"); }
void store_close(store *s) {}
store_backend store_get_backend(const store *s) { return s->backend; }
const char *store_backend_name(store_backend b) { return b == STORE_POSTGRES ? "postgres" : "sqlite"; }
const store_migration *store_migrations_builtin(size_t *n)
{ *n = store_builtin_migrations_n; return store_builtin_migrations; }
int store_schema_version(store *s, int *version, px_error *e) { return PX_EUNSUPPORTED; }
int store_begin(store *s, px_error *e) { return PX_EUNSUPPORTED; }
int store_commit(store *s, px_error *e) { return PX_EUNSUPPORTED; }
void store_rollback(store *s) {}
int store_in_transaction(const store *s) { return 0; }
int store_exec(store *s, const char *sql, px_error *e) { return PX_EUNSUPPORTED; }
int store_prepare(store *s, const char *sql, store_stmt **out, px_error *e) { return PX_EUNSUPPORTED; }
int store_bind_int64(store_stmt *st, int idx, int64_t v) { return PX_EUNSUPPORTED; }
int store_bind_text(store_stmt *st, int idx, const char *v) { return PX_EUNSUPPORTED; }
int store_bind_blob(store_stmt *st, int idx, const void *p, size_t n) { return PX_EUNSUPPORTED; }
int store_bind_null(store_stmt *st, int idx) { return PX_EUNSUPPORTED; }
int store_step(store_stmt *st, px_error *e) { return PX_EUNSUPPORTED; }
int store_column_count(store_stmt *st) { return 0; }
int64_t store_col_int64(store_stmt *st, int col) { return 0; }
const char *store_col_text(store_stmt *st, int col) { return NULL; }
const void *store_col_blob(store_stmt *st, int col, size_t *n) { *n = 0; return NULL; }
int store_col_is_null(store_stmt *st, int col) { return 1; }
int64_t store_changes(store_stmt *st) { return 0; }
void store_done(store_stmt *st) {}
