/*
 * clearing.c: the provider's clearing file (docs/switch-protocol.md section 3), parsed
 * strictly: one function checks every field of every line and names the line and field of
 * the first problem; nothing after it looks at raw bytes again.
 */
#include "host/phonepay/phonepay_recon.h"
#include "host/phonepay/phonepay_int.h"
#include "lib/hex.h"
#include "lib/str.h"
#include "lib/time.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CLEARING_HEADER                                                                            \
    "date,rrn,stan,type,pan_masked,amount_minor,currency,response,acquirer,terminal,"              \
    "merchant,payee_card_masked,payer_mobile"

/* Split one line (no LF) into PX_PHONEPAY_CLEARING_FIELDS fields, RFC 4180 quoting, into
 * buf (each field NUL-terminated). */
static int split_fields(const char *line, size_t len, char *buf, size_t bufsz,
                        const char *f[PX_PHONEPAY_CLEARING_FIELDS], px_error *e)
{
    size_t i = 0, o = 0, nf = 0;
    while (nf < PX_PHONEPAY_CLEARING_FIELDS) {
        int quoted = i < len && line[i] == '"';
        f[nf++] = buf + o;
        i += (size_t)quoted;
        for (;;) {
            if (o + 1 >= bufsz)
                return px_error_set(e, PX_ETOOBIG, "line too long");
            if (i >= len) {
                if (quoted)
                    return px_error_set(e, PX_EFORMAT, "field %zu: unterminated quote", nf);
                break;
            }
            if (quoted && line[i] == '"') {
                if (i + 1 < len && line[i + 1] == '"') {
                    buf[o++] = '"';
                    i += 2;
                    continue;
                }
                i++;
                quoted = 0;
                if (i < len && line[i] != ',')
                    return px_error_set(e, PX_EFORMAT, "field %zu: text after a quote", nf);
                continue;
            }
            if (!quoted && line[i] == ',')
                break;
            if (!quoted && line[i] == '"')
                return px_error_set(e, PX_EFORMAT, "field %zu: stray quote", nf);
            if ((unsigned char)line[i] < 0x20)
                return px_error_set(e, PX_EFORMAT, "field %zu: control character", nf);
            buf[o++] = line[i++];
        }
        buf[o++] = 0;
        if (i >= len)
            break;
        if (nf == PX_PHONEPAY_CLEARING_FIELDS) { /* a comma after the last field */
            nf++;
            break;
        }
        i++; /* the comma */
    }
    if (nf != PX_PHONEPAY_CLEARING_FIELDS)
        return px_error_set(e, PX_EFORMAT, "expected %d fields, got %s",
                            PX_PHONEPAY_CLEARING_FIELDS,
                            nf < PX_PHONEPAY_CLEARING_FIELDS ? "fewer" : "more");
    return PX_OK;
}

/* 1 if s is [min, max] characters, each from set ("d" digits, "m" digits and '*',
 * "a" letters and digits, "p" printable ASCII). */
static int field_ok(const char *s, size_t min, size_t max, char set)
{
    size_t n = strlen(s);
    if (n < min || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = set == 'd'   ? (c >= '0' && c <= '9')
                 : set == 'm' ? ((c >= '0' && c <= '9') || c == '*')
                 : set == 'a'
                     ? ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))
                     : (c >= 0x20 && c < 0x7F);
        if (!ok)
            return 0;
    }
    return 1;
}

/* Check and copy the 13 fields into ln; PX_EFORMAT naming the field. */
static int line_fill(const char *const f[PX_PHONEPAY_CLEARING_FIELDS], const char *date,
                     phonepay_clearing_line *ln, px_error *e)
{
    static const char *const types[] = {"purchase", "void", "reversal", "debit", "credit"};
    static const struct {
        int idx;
        size_t min, max;
        char set;
        const char *name;
    } chk[] = {{1, 12, 12, 'a', "rrn"},
               {2, 6, 6, 'd', "stan"},
               {4, 12, 19, 'm', "pan_masked"},
               {6, 3, 3, 'd', "currency"},
               {7, 2, 2, 'a', "response"},
               {8, 0, 11, 'd', "acquirer"},
               {9, 0, 8, 'p', "terminal"},
               {10, 0, 15, 'p', "merchant"},
               {11, 0, 19, 'm', "payee_card_masked"},
               {12, 0, 11, 'd', "payer_mobile"}};
    size_t t = 0;
    if (strcmp(f[0], date) != 0)
        return px_error_set(e, PX_EFORMAT, "date: %s is not the file's day %s",
                            field_ok(f[0], 10, 10, 'p') ? f[0] : "(bad)", date);
    for (size_t i = 0; i < sizeof chk / sizeof chk[0]; i++)
        if (!field_ok(f[chk[i].idx], chk[i].min, chk[i].max, chk[i].set))
            return px_error_set(e, PX_EFORMAT, "%s: bad value", chk[i].name);
    while (t < 5 && strcmp(f[3], types[t]) != 0)
        t++;
    if (t == 5)
        return px_error_set(e, PX_EFORMAT,
                            "type: expected purchase, void, reversal, debit or "
                            "credit");
    if (px_parse_i64(f[5], 1, 999999999999LL, &ln->amount_minor) != PX_OK)
        return px_error_set(e, PX_EFORMAT, "amount_minor: not a positive amount of fen");
    if (f[12][0] && strlen(f[12]) != PHONEPAY_MOBILE_LEN)
        return px_error_set(e, PX_EFORMAT, "payer_mobile: expected 11 digits or nothing");
    if ((t == 3 || t == 4) && f[12][0] == 0)
        return px_error_set(e, PX_EFORMAT, "payer_mobile: required for a %s", types[t]);
    px_strlcpy(ln->date, f[0], sizeof ln->date);
    px_strlcpy(ln->rrn, f[1], sizeof ln->rrn);
    px_strlcpy(ln->stan, f[2], sizeof ln->stan);
    px_strlcpy(ln->type, f[3], sizeof ln->type);
    px_strlcpy(ln->pan_masked, f[4], sizeof ln->pan_masked);
    px_strlcpy(ln->currency, f[6], sizeof ln->currency);
    px_strlcpy(ln->response, f[7], sizeof ln->response);
    px_strlcpy(ln->acquirer, f[8], sizeof ln->acquirer);
    px_strlcpy(ln->terminal, f[9], sizeof ln->terminal);
    px_strlcpy(ln->merchant, f[10], sizeof ln->merchant);
    px_strlcpy(ln->payee_card_masked, f[11], sizeof ln->payee_card_masked);
    px_strlcpy(ln->payer_mobile, f[12], sizeof ln->payer_mobile);
    return PX_OK;
}

static int line_cmp(const void *a, const void *b)
{
    const phonepay_clearing_line *x = a, *y = b;
    int c = strcmp(x->rrn, y->rrn);
    return c != 0 ? c : strcmp(x->type, y->type);
}

/* Sort by (rrn, type) and refuse a pair seen twice (naming both lines). */
static int sort_unique(phonepay_clearing *c, px_error *e)
{
    qsort(c->lines, c->n, sizeof c->lines[0], line_cmp);
    for (size_t i = 1; i < c->n; i++)
        if (line_cmp(&c->lines[i - 1], &c->lines[i]) == 0)
            return px_error_set(e, PX_EFORMAT, "line %zu: rrn %s type %s repeats line %zu",
                                c->lines[i].lineno, c->lines[i].rrn, c->lines[i].type,
                                c->lines[i - 1].lineno);
    return PX_OK;
}

static void sha256_hex(const char *text, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    if (EVP_Digest(text, len, md, &n, EVP_sha256(), NULL) == 1 && n == 32)
        px_hex_encode(md, 32, out);
    else
        out[0] = 0;
}

/* Parse every line after the header into out (which has room for the count). */
static int parse_lines(const char *text, size_t len, const char *date, phonepay_clearing *out,
                       px_error *e)
{
    char buf[PX_PHONEPAY_CLEARING_LINE_MAX + PX_PHONEPAY_CLEARING_FIELDS];
    size_t pos = 0, lineno = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
        const char *f[PX_PHONEPAY_CLEARING_FIELDS];
        int rc;
        lineno++;
        if (nl == NULL)
            return px_error_set(e, PX_EFORMAT, "line %zu: no LF at the end", lineno);
        if (n > 0 && text[pos + n - 1] == '\r')
            return px_error_set(e, PX_EFORMAT, "line %zu: CR before LF (lines end in LF only)",
                                lineno);
        if (lineno == 1) {
            if (n != strlen(CLEARING_HEADER) || memcmp(text, CLEARING_HEADER, n) != 0)
                return px_error_set(e, PX_EFORMAT,
                                    "line 1: not the clearing header (" CLEARING_HEADER ")");
        } else {
            phonepay_clearing_line *ln = &out->lines[out->n];
            if (n > PX_PHONEPAY_CLEARING_LINE_MAX)
                return px_error_set(e, PX_EFORMAT, "line %zu: longer than %d bytes", lineno,
                                    PX_PHONEPAY_CLEARING_LINE_MAX);
            memset(ln, 0, sizeof *ln);
            ln->lineno = lineno;
            rc = split_fields(text + pos, n, buf, sizeof buf, f, e);
            if (rc == PX_OK)
                rc = line_fill(f, date, ln, e);
            if (rc != PX_OK)
                return px_error_prefix(e, "line %zu: ", lineno);
            out->n++;
        }
        pos += n + 1;
    }
    return lineno == 0 ? px_error_set(e, PX_EFORMAT, "line 1: empty file (no header)") : PX_OK;
}

int phonepay_clearing_parse(const char *text, size_t len, const char *date, phonepay_clearing *out,
                            px_error *e)
{
    size_t lines = 0;
    int64_t ms;
    int rc;
    memset(out, 0, sizeof *out);
    if (date == NULL || strlen(date) != 10 || px_time_parse_date(date, &ms) != PX_OK)
        return px_error_set(e, PX_EINVAL, "date: expected YYYY-MM-DD");
    if (memchr(text, 0, len) != NULL)
        return px_error_set(e, PX_EFORMAT, "the file contains a NUL byte");
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    if (lines > PX_PHONEPAY_CLEARING_LINES_MAX)
        return px_error_set(e, PX_ETOOBIG, "more than %d lines", PX_PHONEPAY_CLEARING_LINES_MAX);
    out->lines = calloc(lines > 0 ? lines : 1, sizeof *out->lines);
    if (out->lines == NULL)
        return px_error_set(e, PX_ENOMEM, "clearing file: out of memory");
    rc = parse_lines(text, len, date, out, e);
    if (rc == PX_OK)
        rc = sort_unique(out, e);
    if (rc != PX_OK) {
        phonepay_clearing_free(out);
        return rc;
    }
    sha256_hex(text, len, out->sha256);
    return PX_OK;
}

int phonepay_clearing_load(const char *path, const char *date, phonepay_clearing *out, px_error *e)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    char *text;
    size_t max = (size_t)PX_PHONEPAY_CLEARING_LINES_MAX * 256, got;
    int rc;
    memset(out, 0, sizeof *out);
    if (f == NULL)
        return px_error_set(e, errno == ENOENT ? PX_ENOTFOUND : PX_EIO, "%s: %s", path,
                            strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
        fclose(f);
        return px_error_set(e, PX_ETOOBIG, "%s: not a regular file of at most %zu bytes", path,
                            max);
    }
    text = malloc((size_t)st.st_size + 1);
    if (text == NULL) {
        fclose(f);
        return px_error_set(e, PX_ENOMEM, "%s: out of memory", path);
    }
    got = fread(text, 1, (size_t)st.st_size, f);
    fclose(f);
    if (got != (size_t)st.st_size) {
        free(text);
        return px_error_set(e, PX_EIO, "%s: short read", path);
    }
    rc = phonepay_clearing_parse(text, got, date, out, e);
    free(text);
    return rc == PX_OK ? PX_OK : px_error_prefix(e, "%s: ", path);
}

void phonepay_clearing_free(phonepay_clearing *c)
{
    if (c == NULL)
        return;
    free(c->lines);
    memset(c, 0, sizeof *c);
}
