/*
 * clearing.c: the provider's daily clearing file (docs/switch-protocol.md §3):
 * clearing-YYYYMMDD.csv, UTF-8, LF, a header line, then one line per financial message
 * approved that business day (UTC) in approval order. Fields are quoted as RFC 4180 says
 * when they hold a comma, a quote, CR or LF. PANs are masked (first 6, last 4).
 */
#include "host/issuer/issuer_int.h"
#include "lib/str.h"
#include "lib/time.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int issuer_csv_field(px_buf *b, const char *s)
{
    int rc;
    if (strpbrk(s, ",\"\r\n") == NULL)
        return px_buf_append_str(b, s);
    rc = px_buf_append_byte(b, '"');
    for (; rc == PX_OK && *s != 0; s++)
        rc = *s == '"' ? px_buf_append(b, "\"\"", 2) : px_buf_append_byte(b, (uint8_t)*s);
    return rc == PX_OK ? px_buf_append_byte(b, '"') : rc;
}

int issuer_clearing_line(px_buf *b, const issuer_entry *en)
{
    char amount[24];
    const char *cols[13];
    int rc = PX_OK;
    snprintf(amount, sizeof amount, "%lld", (long long)en->amount_minor);
    cols[0] = en->business_date;
    cols[1] = en->rrn;
    cols[2] = en->stan;
    cols[3] = en->type;
    cols[4] = en->pan_masked;
    cols[5] = amount;
    cols[6] = en->currency;
    cols[7] = en->response;
    cols[8] = en->acquirer;
    cols[9] = en->terminal;
    cols[10] = en->merchant;
    cols[11] = en->payee_card_masked;
    cols[12] = en->payer_mobile;
    for (size_t i = 0; rc == PX_OK && i < 13; i++) {
        if (i > 0)
            rc = px_buf_append_byte(b, ',');
        if (rc == PX_OK)
            rc = issuer_csv_field(b, cols[i]);
    }
    return rc == PX_OK ? px_buf_append_byte(b, '\n') : rc;
}

static void col(store_stmt *s, int i, char *out, size_t outsz)
{
    const char *v = store_col_text(s, i);
    px_strlcpy(out, v ? v : "", outsz);
}

/* The clearing columns of the current row (read_page's SELECT order). */
static void clearing_row(store_stmt *s, issuer_entry *en)
{
    memset(en, 0, sizeof *en);
    col(s, 1, en->business_date, sizeof en->business_date);
    col(s, 2, en->rrn, sizeof en->rrn);
    col(s, 3, en->stan, sizeof en->stan);
    col(s, 4, en->type, sizeof en->type);
    col(s, 5, en->pan_masked, sizeof en->pan_masked);
    en->amount_minor = store_col_int64(s, 6);
    col(s, 7, en->currency, sizeof en->currency);
    col(s, 8, en->response, sizeof en->response);
    col(s, 9, en->acquirer, sizeof en->acquirer);
    col(s, 10, en->terminal, sizeof en->terminal);
    col(s, 11, en->merchant, sizeof en->merchant);
    col(s, 12, en->payee_card_masked, sizeof en->payee_card_masked);
    col(s, 13, en->payer_mobile, sizeof en->payer_mobile);
}

/* One page of the day's entries after id `after`, appended to b; *last and *rows out. */
static int read_page(store *st, const char *date, int64_t after, px_buf *b, int64_t *last,
                     size_t *rows, px_error *e)
{
    store_stmt *s;
    issuer_entry en;
    int rc = store_prepare(st,
                           "SELECT id, business_date, rrn, stan, type, pan_masked, amount_minor, "
                           "currency, response, acquirer, terminal, merchant, payee_card_masked, "
                           "payer_mobile FROM issuer_journal WHERE business_date = $1 AND id > $2 "
                           "ORDER BY id LIMIT CAST($3 AS BIGINT)",
                           &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, date);
    store_bind_int64(s, 2, after);
    store_bind_int64(s, 3, PX_ISSUER_PAGE_ROWS);
    *rows = 0;
    while ((rc = store_step(s, e)) == STORE_ROW) {
        *last = store_col_int64(s, 0);
        clearing_row(s, &en);
        if ((rc = issuer_clearing_line(b, &en)) != PX_OK)
            break;
        (*rows)++;
    }
    store_done(s);
    return rc == PX_ETOOBIG ? px_error_set(e, rc, "clearing line too long") : rc;
}

/* Write all of b to fd. */
static int write_all(int fd, const px_buf *b, const char *name, px_error *e)
{
    for (size_t done = 0; done < b->len;) {
        ssize_t n = write(fd, b->data + done, b->len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return px_error_set(e, PX_EIO, "%s: %s", name, strerror(errno));
        done += (size_t)n;
    }
    return PX_OK;
}

/* mkdir -p for dir (mode 0750). */
static int make_dirs(const char *dir, px_error *e)
{
    char p[PX_PATH_MAX];
    if (px_strlcpy(p, dir, sizeof p) != PX_OK)
        return px_error_set(e, PX_ETOOBIG, "clearing directory: path too long");
    for (char *s = p + 1; *s != 0; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, 0750) != 0 && errno != EEXIST)
            return px_error_set(e, PX_EIO, "%s: %s", p, strerror(errno));
        *s = '/';
    }
    if (mkdir(p, 0750) != 0 && errno != EEXIST)
        return px_error_set(e, PX_EIO, "%s: %s", p, strerror(errno));
    return PX_OK;
}

/* The header and every page of the day's entries into fd; *lines counts the entries. */
static int write_entries(store *st, const char *date, int fd, const char *name, size_t *lines,
                         px_error *e)
{
    px_buf b;
    int64_t last = 0;
    size_t rows = 0;
    int rc;
    px_buf_init(&b, (size_t)PX_ISSUER_PAGE_ROWS * 1024);
    rc = px_buf_append_str(&b, ISSUER_CLEARING_HEADER "\n");
    do {
        if (rc == PX_OK)
            rc = read_page(st, date, last, &b, &last, &rows, e);
        if (rc == PX_OK)
            rc = write_all(fd, &b, name, e);
        px_buf_reset(&b);
        *lines += rc == PX_OK ? rows : 0;
    } while (rc == PX_OK && rows == PX_ISSUER_PAGE_ROWS);
    px_buf_free(&b);
    return rc;
}

int issuer_clearing_write(store *st, const char *date, const char *dir, char *path, size_t pathsz,
                          size_t *lines, px_error *e)
{
    char tmp[PX_PATH_MAX + 8], ymd[9], day[11];
    int64_t ms;
    int fd, rc;
    *lines = 0;
    if (px_time_parse_date(date, &ms) != PX_OK)
        return px_error_set(e, PX_EINVAL, "date: expected YYYY-MM-DD");
    px_time_format_utc(ms, "%Y%m%d", ymd, sizeof ymd);
    px_time_format_utc(ms, "%Y-%m-%d", day, sizeof day);
    if ((size_t)snprintf(path, pathsz, "%s/clearing-%s.csv", dir, ymd) >= pathsz ||
        (size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return px_error_set(e, PX_ETOOBIG, "clearing file path too long");
    if ((rc = make_dirs(dir, e)) != PX_OK)
        return rc;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return px_error_set(e, PX_EIO, "%s: %s", tmp, strerror(errno));
    rc = write_entries(st, day, fd, tmp, lines, e);
    if (rc == PX_OK && fsync(fd) != 0) /* written, then renamed: never half a file */
        rc = px_error_set(e, PX_EIO, "%s: fsync: %s", tmp, strerror(errno));
    if (close(fd) != 0 && rc == PX_OK)
        rc = px_error_set(e, PX_EIO, "%s: close: %s", tmp, strerror(errno));
    if (rc == PX_OK && rename(tmp, path) != 0)
        rc = px_error_set(e, PX_EIO, "%s: rename: %s", path, strerror(errno));
    if (rc != PX_OK)
        unlink(tmp);
    return rc;
}
