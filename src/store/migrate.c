/*
 * migrate.c: schema migrations (applied at open, once, in order, in one transaction) and
 * the small SQL text helpers both backends share.
 */
#include "store/store_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

/* Serialises migrations across nodes; the key is "possum" in ASCII. The wait for it is not
 * limited (another node may be applying a long migration); DDL lock waits still are. */
#define STORE_MIGRATE_LOCK_FMT                                                                     \
    "SET LOCAL lock_timeout = 0; SELECT pg_advisory_xact_lock(123623980627309); "                  \
    "SET LOCAL lock_timeout = %lld"

static const char version_table_sql[] =
    "CREATE TABLE IF NOT EXISTS schema_version ("
    "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)";

void store_sql_excerpt(const char *sql, char *out, size_t outsz)
{
    size_t o = 0;
    int space = 0, quoted = 0;
    if (outsz < 4) {
        if (outsz > 0)
            out[0] = 0;
        return;
    }
    while (*sql != 0 && isspace((unsigned char)*sql))
        sql++;
    for (; *sql != 0 && o < outsz - 2; sql++) {
        char c = *sql;
        if (quoted) { /* the literal's contents are not shown */
            if (c == '\'' && sql[1] == '\'')
                sql++;
            else if (c == '\'') {
                quoted = 0;
                out[o++] = '?';
                out[o++] = '\'';
            }
            continue;
        }
        if (isspace((unsigned char)c)) {
            space = 1;
            continue;
        }
        if (space)
            out[o++] = ' ';
        space = 0;
        if (o < outsz - 2)
            out[o++] = c;
        quoted = c == '\'';
    }
    out[o] = 0;
    if (*sql != 0)
        memcpy(out + outsz - 4, "...", 4);
}

/* Length of the line starting at p, without its '\n'. */
static size_t line_len(const char *p)
{
    const char *nl = strchr(p, '\n');
    return nl ? (size_t)(nl - p) : strlen(p);
}

/* A "-- @all|@sqlite|@postgres" marker line? Sets *keep for the lines after it.
 * Returns 1 for a marker, 0 for an ordinary line, PX_EFORMAT for an unknown marker. */
static int section_marker(const char *p, size_t n, store_backend b, int *keep)
{
    while (n > 0 && isspace((unsigned char)p[n - 1]))
        n--;
    while (n > 0 && isspace((unsigned char)*p))
        p++, n--;
    if (n < 4 || strncmp(p, "-- @", 4) != 0)
        return 0;
    p += 4;
    n -= 4;
    if (n == 3 && strncmp(p, "all", 3) == 0)
        *keep = 1;
    else if (n == 6 && strncmp(p, "sqlite", 6) == 0)
        *keep = b == STORE_SQLITE;
    else if (n == 8 && strncmp(p, "postgres", 8) == 0)
        *keep = b == STORE_POSTGRES;
    else
        return PX_EFORMAT;
    return 1;
}

/* Keep the lines of the sections meant for b; others become empty (line numbers hold). */
static int filter_sections(const char *sql, store_backend b, px_buf *out, px_error *e)
{
    int keep = 1, line = 1, rc;
    for (const char *p = sql; *p != 0; line++) {
        size_t n = line_len(p);
        int m = section_marker(p, n, b, &keep);
        if (m < 0)
            return px_error_set(e, PX_EFORMAT,
                                "line %d: unknown section marker "
                                "(use -- @all, -- @sqlite or -- @postgres)",
                                line);
        if (m == 0 && keep && (rc = px_buf_append(out, p, n)) != PX_OK)
            return px_error_set(e, rc, "SQL too long");
        p += n;
        if (*p == '\n') {
            p++;
            if ((rc = px_buf_append_byte(out, '\n')) != PX_OK)
                return px_error_set(e, rc, "SQL too long");
        }
    }
    return PX_OK;
}

/* Length of the quoted string, comment or dollar-quoted body starting at p, or 0. */
static size_t skip_opaque(const char *p)
{
    const char *end = NULL;
    if (p[0] == '\'' || p[0] == '"') {
        end = strchr(p + 1, p[0]);
        while (end != NULL && end[1] == p[0]) /* doubled quote inside */
            end = strchr(end + 2, p[0]);
        return end ? (size_t)(end - p) + 1 : strlen(p);
    }
    if (p[0] == '-' && p[1] == '-')
        return line_len(p);
    if (p[0] == '/' && p[1] == '*')
        end = strstr(p + 2, "*/");
    else if (p[0] == '$' && p[1] == '$')
        end = strstr(p + 2, "$$");
    else
        return 0;
    return end ? (size_t)(end - p) + 2 : strlen(p);
}

static int is_word_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '$';
}

/* PostgreSQL has no BLOB: rewrite the type word to BYTEA outside quotes and comments. */
static int rewrite_types(const char *in, px_buf *out)
{
    const char *p = in;
    int rc = PX_OK;
    while (*p != 0 && rc == PX_OK) {
        size_t n = skip_opaque(p);
        if (n == 0 && is_word_char(*p)) {
            n = 1;
            while (is_word_char(p[n]))
                n++;
            if (n == 4 && strncasecmp(p, "BLOB", 4) == 0) {
                rc = px_buf_append_str(out, "BYTEA");
                p += n;
                continue;
            }
        }
        if (n == 0)
            n = 1;
        rc = px_buf_append(out, p, n);
        p += n;
    }
    return rc;
}

int store_sql_for_backend(const char *sql, store_backend b, px_buf *out, px_error *e)
{
    px_buf tmp;
    int rc;
    px_buf_reset(out);
    if (b != STORE_POSTGRES)
        return filter_sections(sql, b, out, e);
    px_buf_init(&tmp, out->max);
    rc = filter_sections(sql, b, &tmp, e);
    if (rc == PX_OK && (rc = rewrite_types(px_buf_str(&tmp), out)) != PX_OK)
        px_error_set(e, rc, "SQL too long");
    px_buf_free(&tmp);
    return rc;
}

/* ---- migrations ---------------------------------------------------------------------- */

static int check_list(const store_migration *m, size_t n, px_error *e)
{
    if (n > PX_STORE_MIGRATIONS_MAX || (m == NULL && n > 0))
        return px_error_set(e, PX_EINVAL, "store: bad migration list");
    for (size_t i = 0; i < n; i++) {
        if (m[i].version < 1 || m[i].name == NULL || m[i].sql == NULL ||
            (i > 0 && m[i].version <= m[i - 1].version))
            return px_error_set(e, PX_EINVAL,
                                "store: migration list entry %zu: versions must be >= 1 and "
                                "strictly increasing, with a name and SQL",
                                i);
    }
    return PX_OK;
}

static const store_migration *find_version(const store_migration *m, size_t n, int64_t v)
{
    for (size_t i = 0; i < n; i++)
        if (m[i].version == v)
            return &m[i];
    return NULL;
}

/* Every version the database has applied must be one this build knows, by the same name:
 * a newer schema (an older binary) or a renumbered migration stops the start-up. */
static int check_applied(store *s, const store_migration *m, size_t n, px_error *e)
{
    store_stmt *st;
    int rc = store_prepare(s, "SELECT version, name FROM schema_version ORDER BY version", &st, e);
    int known_max = n > 0 ? m[n - 1].version : 0;
    while (rc == PX_OK && (rc = store_step(st, e)) == STORE_ROW) {
        int64_t v = store_col_int64(st, 0);
        const char *name = store_col_text(st, 1);
        const store_migration *k = find_version(m, n, v);
        rc = PX_OK;
        if (k == NULL && v > known_max)
            rc = px_error_set(e, PX_ESTATE,
                              "store: database schema is at version %lld (%s), newer than this "
                              "build knows (%d): upgrade possum",
                              (long long)v, name ? name : "?", known_max);
        else if (k == NULL || name == NULL || strcmp(k->name, name) != 0)
            rc = px_error_set(e, PX_ESTATE,
                              "store: database has migration %lld as %s, this build has %s",
                              (long long)v, name ? name : "?", k ? k->name : "nothing");
    }
    store_done(st);
    return rc == STORE_DONE ? PX_OK : rc;
}

static int is_applied(store *s, int version, int *yes, px_error *e)
{
    store_stmt *st;
    int rc = store_prepare(s, "SELECT 1 FROM schema_version WHERE version = $1", &st, e);
    if (rc != PX_OK)
        return rc;
    store_bind_int64(st, 1, version);
    rc = store_step(st, e);
    store_done(st);
    *yes = rc == STORE_ROW;
    return rc < 0 ? rc : PX_OK;
}

static int apply_one(store *s, const store_migration *m, px_error *e)
{
    store_stmt *st;
    int rc = store_exec(s, m->sql, e);
    if (rc != PX_OK)
        return px_error_prefix(e, "store: migration %s.sql: ", m->name), rc;
    rc = store_prepare(s,
                       "INSERT INTO schema_version (version, name, applied_at_ms) "
                       "VALUES ($1, $2, $3)",
                       &st, e);
    if (rc != PX_OK)
        return rc;
    store_bind_int64(st, 1, m->version);
    store_bind_text(st, 2, m->name);
    store_bind_int64(st, 3, px_now_ms());
    rc = store_step(st, e);
    store_done(st);
    if (rc < 0)
        return rc;
    px_info("store", "%s: applied migration %s", store_backend_name(s->backend), m->name);
    return PX_OK;
}

static int migrate_in_txn(store *s, const store_migration *m, size_t n, px_error *e)
{
    int rc = PX_OK;
    if (s->backend == STORE_POSTGRES) {
        char sql[sizeof STORE_MIGRATE_LOCK_FMT + 24];
        snprintf(sql, sizeof sql, STORE_MIGRATE_LOCK_FMT, (long long)s->busy_timeout_ms);
        rc = store_exec(s, sql, e);
    }
    if (rc == PX_OK)
        rc = store_exec(s, version_table_sql, e);
    if (rc == PX_OK)
        rc = check_applied(s, m, n, e);
    for (size_t i = 0; rc == PX_OK && i < n; i++) {
        int yes = 0;
        rc = is_applied(s, m[i].version, &yes, e);
        if (rc == PX_OK && !yes)
            rc = apply_one(s, &m[i], e);
    }
    return rc;
}

int store_migrate(store *s, const store_migration *m, size_t n, px_error *e)
{
    px_error local = {0};
    px_error *err = e ? e : &local;
    int rc = check_list(m, n, err);
    if (rc == PX_OK)
        rc = store_begin(s, err);
    if (rc != PX_OK)
        return rc;
    rc = migrate_in_txn(s, m, n, err);
    if (rc == PX_OK)
        return store_commit(s, err);
    store_rollback(s);
    return rc;
}

int store_schema_version(store *s, int *version, px_error *e)
{
    store_stmt *st;
    int rc = store_prepare(s, "SELECT COALESCE(MAX(version), 0) FROM schema_version", &st, e);
    *version = 0;
    if (rc != PX_OK)
        return rc;
    rc = store_step(st, e);
    if (rc == STORE_ROW)
        *version = (int)store_col_int64(st, 0);
    store_done(st);
    return rc < 0 ? rc : PX_OK;
}
