/*
 * import.c: the serial-number table from a production order's CSV (docs/mtms.md "Import").
 *
 *   serial,customer
 *   PP10000001,C001
 *   ...
 * A header line, then one terminal per line; blank lines are skipped, CRLF is fine, a UTF-8
 * byte-order mark is ignored. All or nothing: every bad line is reported with its number
 * and reason (the first PX_MTMS_CSV_ERRORS_MAX) and nothing is imported, so an order is
 * never half in the table.
 */
#include "host/mtms/mtms_int.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct csv_row {
    char serial[PKI_TKENV_SERIAL_MAX + 1];
    char customer[PX_CUSTOMER_CODE_MAX];
    size_t line;
} csv_row;

typedef struct csv_set { /* serial -> index in rows, open addressing */
    size_t *slot;        /* index + 1, 0 = empty */
    size_t cap;
} csv_set;

static void bad(mtms_import_report *r, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void bad(mtms_import_report *r, size_t line, const char *fmt, ...)
{
    va_list ap;
    r->bad++;
    if (r->nerrors >= PX_MTMS_CSV_ERRORS_MAX)
        return;
    int n = snprintf(r->errors[r->nerrors], sizeof r->errors[0], "line %zu: ", line);
    va_start(ap, fmt);
    vsnprintf(r->errors[r->nerrors] + n, sizeof r->errors[0] - (size_t)n, fmt, ap);
    va_end(ap);
    r->nerrors++;
}

static size_t hash_of(const char *s)
{
    size_t h = 1469598103934665603ULL;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

/* The row with the same serial already seen, or NULL (and then rows[i] is recorded). */
static const csv_row *seen(csv_set *set, const csv_row *rows, size_t i)
{
    size_t at = hash_of(rows[i].serial) & (set->cap - 1);
    while (set->slot[at] != 0) {
        const csv_row *o = &rows[set->slot[at] - 1];
        if (strcmp(o->serial, rows[i].serial) == 0)
            return o;
        at = (at + 1) & (set->cap - 1);
    }
    set->slot[at] = i + 1;
    return NULL;
}

static char *trim(char *s)
{
    char *end;
    while (*s == ' ' || *s == '\t')
        s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
        *--end = 0;
    return s;
}

/* Split "a,b" into two trimmed fields; 0 when the line has another number of fields. */
static int split2(char *line, char **a, char **b)
{
    char *comma = strchr(line, ',');
    if (comma == NULL || strchr(comma + 1, ',') != NULL)
        return 0;
    *comma = 0;
    *a = trim(line);
    *b = trim(comma + 1);
    return 1;
}

static int customer_exists(mtms *m, const char *code, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(m->st, "SELECT 1 FROM mtms_customer WHERE code = $1", &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, code);
    rc = store_step(q, e);
    store_done(q);
    return rc < 0 ? rc : rc == STORE_ROW;
}

/* Read and check every line; rows in *out. Store errors are returned, bad lines reported. */
static int read_rows(mtms *m, FILE *f, mtms_import_report *r, csv_row **out, size_t *nout,
                     px_error *e)
{
    char line[PX_MTMS_CSV_LINE_MAX + 2];
    csv_row *rows = NULL;
    size_t n = 0, cap = 0;
    int header = 0, rc = PX_OK;
    while (rc == PX_OK && fgets(line, sizeof line, f) != NULL) {
        size_t len = strlen(line);
        char *p = line, *a, *b;
        r->lines++;
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            int ch;
            bad(r, r->lines, "longer than %d bytes", PX_MTMS_CSV_LINE_MAX);
            while ((ch = fgetc(f)) != EOF && ch != '\n')
                ;
            continue;
        }
        if (r->lines == 1 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
            p += 3;
        p = trim(p);
        if (*p == 0)
            continue;
        if (!header) {
            header = 1;
            if (!split2(p, &a, &b) || strcasecmp(a, "serial") != 0 ||
                strcasecmp(b, "customer") != 0)
                bad(r, r->lines, "expected the header \"serial,customer\"");
            continue;
        }
        if (!split2(p, &a, &b)) {
            bad(r, r->lines, "expected 2 fields (serial,customer)");
            continue;
        }
        if (!pki_serial_is_valid(a)) {
            bad(r, r->lines, "serial: 1 to 32 of A-Z a-z 0-9 . _ - @");
            continue;
        }
        if (!mtms_code_is_valid(b)) {
            bad(r, r->lines, "serial %s: customer code: 1 to 32 of A-Z a-z 0-9 . _ - @", a);
            continue;
        }
        if ((rc = customer_exists(m, b, e)) < 0)
            break;
        if (rc == 0) {
            rc = PX_OK;
            bad(r, r->lines, "serial %s: unknown customer %s", a, b);
            continue;
        }
        rc = PX_OK;
        if (n >= PX_MTMS_CSV_ROWS_MAX) {
            bad(r, r->lines, "more than %d serial numbers in one import", PX_MTMS_CSV_ROWS_MAX);
            break;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 1024;
            csv_row *p2 = realloc(rows, nc * sizeof *p2);
            if (p2 == NULL) {
                rc = px_error_set(e, PX_ENOMEM, "import: out of memory");
                break;
            }
            rows = p2;
            cap = nc;
        }
        px_strlcpy(rows[n].serial, a, sizeof rows[n].serial);
        px_strlcpy(rows[n].customer, b, sizeof rows[n].customer);
        rows[n].line = r->lines;
        n++;
    }
    if (rc == PX_OK && ferror(f))
        rc = px_error_set(e, PX_EIO, "import: read error");
    if (rc == PX_OK && !header)
        bad(r, r->lines ? r->lines : 1, "empty file: expected the header \"serial,customer\"");
    *out = rows;
    *nout = n;
    return rc;
}

static int check_duplicates(csv_row *rows, size_t n, mtms_import_report *r, px_error *e)
{
    csv_set set;
    set.cap = 1024;
    while (set.cap < 2 * n)
        set.cap *= 2;
    set.slot = calloc(set.cap, sizeof *set.slot);
    if (set.slot == NULL)
        return px_error_set(e, PX_ENOMEM, "import: out of memory");
    for (size_t i = 0; i < n; i++) {
        const csv_row *o = seen(&set, rows, i);
        if (o != NULL)
            bad(r, rows[i].line, "serial %s is also on line %zu", rows[i].serial, o->line);
    }
    free(set.slot);
    return PX_OK;
}

/* Insert everything in the caller's transaction; serials already in the table reported. */
static int insert_rows(mtms *m, const char *order_no, const char *path, const char *actor,
                       const csv_row *rows, size_t n, mtms_import_report *r, px_error *e)
{
    int64_t now = px_now_ms();
    store_stmt *q;
    int rc = store_prepare(m->st,
                           "INSERT INTO mtms_order (order_no, serials, source, imported_by, "
                           "imported_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING "
                           "RETURNING order_no",
                           &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, order_no);
    store_bind_int64(q, 2, (int64_t)n);
    store_bind_text(q, 3, path);
    store_bind_text(q, 4, actor);
    store_bind_int64(q, 5, now);
    rc = store_step(q, e);
    store_done(q);
    if (rc == STORE_DONE)
        return px_error_set(e, PX_EEXIST, "order %s was imported already", order_no);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        rc = store_prepare(m->st,
                           "INSERT INTO mtms_serial (serial, customer_code, order_no, status, "
                           "updated_ms) VALUES ($1, $2, $3, 'new', $4) ON CONFLICT DO "
                           "NOTHING RETURNING serial",
                           &q, e);
        if (rc != PX_OK)
            return rc;
        store_bind_text(q, 1, rows[i].serial);
        store_bind_text(q, 2, rows[i].customer);
        store_bind_text(q, 3, order_no);
        store_bind_int64(q, 4, now);
        rc = store_step(q, e);
        store_done(q);
        if (rc < 0)
            return rc;
        if (rc == STORE_DONE) {
            mtms_serial_info si;
            px_error e2 = {0};
            if (mtms_serial_get(m->st, rows[i].serial, &si, &e2) == PX_OK)
                bad(r, rows[i].line, "serial %s is already in order %s", rows[i].serial,
                    si.order_no);
            else
                bad(r, rows[i].line, "serial %s is already in the table", rows[i].serial);
        }
    }
    return PX_OK;
}

int mtms_import_csv(mtms *m, const char *order_no, const char *path, const char *actor,
                    mtms_import_report *r, px_error *e)
{
    FILE *f;
    csv_row *rows = NULL;
    size_t n = 0;
    int rc;
    memset(r, 0, sizeof *r);
    if (!pki_name_is_valid(order_no) || strlen(order_no) >= PX_ORDER_NO_MAX)
        return px_error_set(e, PX_EINVAL, "order number: 1 to %d of A-Z a-z 0-9 . _ - @",
                            PX_ORDER_NO_MAX - 1);
    f = fopen(path, "r");
    if (f == NULL)
        return px_error_set(e, errno == ENOENT ? PX_ENOTFOUND : PX_EIO, "%s: %s", path,
                            strerror(errno));
    rc = read_rows(m, f, r, &rows, &n, e);
    fclose(f);
    if (rc == PX_OK)
        rc = check_duplicates(rows, n, r, e);
    if (rc == PX_OK && r->bad == 0 && (rc = store_begin(m->st, e)) == PX_OK) {
        rc = insert_rows(m, order_no, path, actor, rows, n, r, e);
        if (rc == PX_OK && r->bad == 0) {
            mtms_audit(m, actor, "import", NULL, NULL, 1, "order %s: %zu serial numbers from %s",
                       order_no, n, path);
            rc = store_commit(m->st, e);
        }
        if (rc != PX_OK || r->bad != 0)
            store_rollback(m->st);
    }
    free(rows);
    if (rc == PX_OK && r->bad != 0) {
        mtms_audit(m, actor, "import", NULL, NULL, 0,
                   "order %s from %s refused: %zu bad lines, "
                   "first: %s",
                   order_no, path, r->bad, r->errors[0]);
        return px_error_set(e, PX_EFORMAT, "%s: %zu bad line%s, nothing imported (first: %s)", path,
                            r->bad, r->bad == 1 ? "" : "s", r->errors[0]);
    }
    if (rc == PX_OK) {
        r->imported = n;
        px_info(MTMS_MOD, "order %s: %zu serial numbers imported from %s", order_no, n, path);
    }
    return rc;
}
