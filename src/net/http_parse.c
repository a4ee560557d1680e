/*
 * http_parse.c: HTTP/1.x request head parsing (http_parse.h). Strict where leniency lets a
 * request be read two ways (request smuggling): no obsolete line folding, no blank before
 * the colon, one Content-Length, no Transfer-Encoding, CR only before LF.
 */
#include "net/http_parse.h"

#include <string.h>
#include <strings.h>

static int fail(http_head *h, int status, const char *code, int rc, px_error *e, const char *what)
{
    h->err_status = status;
    h->err_code = code;
    return px_error_set(e, rc, "%s", what);
}

size_t http_head_length(const char *data, size_t len, size_t from)
{
    /* the head ends at "\n\r\n" or "\n\n" */
    for (size_t i = from; i < len; i++) {
        if (data[i] != '\n')
            continue;
        if (i + 1 < len && data[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && data[i + 1] == '\r' && data[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

/* RFC 9110 5.6.2 tchar */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Split off the next line (LF, optionally preceded by CR) and NUL-terminate it. */
static char *next_line(char **cursor, char *end)
{
    char *line = *cursor, *lf;
    if (line >= end)
        return NULL;
    lf = memchr(line, '\n', (size_t)(end - line));
    if (lf == NULL)
        return NULL;
    *cursor = lf + 1;
    if (lf > line && lf[-1] == '\r')
        lf--;
    *lf = 0;
    return line;
}

static int parse_request_line(char *line, http_head *h, px_error *e)
{
    char *sp1 = strchr(line, ' '), *sp2, *version;
    size_t mlen;
    if (sp1 == NULL || (sp2 = strchr(sp1 + 1, ' ')) == NULL || strchr(sp2 + 1, ' ') != NULL)
        return fail(h, 400, "bad_request", PX_EFORMAT, e, "malformed request line");
    mlen = (size_t)(sp1 - line);
    if (mlen == 0 || mlen >= HTTP_METHOD_MAX)
        return fail(h, 400, "bad_request", PX_EFORMAT, e, "bad method");
    for (size_t i = 0; i < mlen; i++)
        if (line[i] < 'A' || line[i] > 'Z')
            return fail(h, 400, "bad_request", PX_EFORMAT, e, "bad method");
    memcpy(h->method, line, mlen);
    h->method[mlen] = 0;
    *sp2 = 0;
    h->target = sp1 + 1;
    if (h->target[0] != '/')
        return fail(h, 400, "bad_request", PX_EFORMAT, e, "target must be an absolute path");
    for (const char *p = h->target; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return fail(h, 400, "bad_request", PX_EFORMAT, e, "bad character in target");
    version = sp2 + 1;
    if (strcmp(version, "HTTP/1.1") == 0)
        h->minor = 1;
    else if (strcmp(version, "HTTP/1.0") == 0)
        h->minor = 0;
    else
        return fail(h, 505, "http_version_not_supported", PX_EUNSUPPORTED, e,
                    "only HTTP/1.0 and HTTP/1.1");
    return PX_OK;
}

/* Comma-separated, case-insensitive token lists (Connection). */
static int has_token(const char *v, const char *token)
{
    size_t n = strlen(token);
    while (*v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        if (strncasecmp(v, token, n) == 0 &&
            (v[n] == 0 || v[n] == ',' || v[n] == ' ' || v[n] == '\t'))
            return 1;
        while (*v && *v != ',')
            v++;
    }
    return 0;
}

static int parse_content_length(const char *v, http_head *h, px_error *e)
{
    int64_t n = 0;
    size_t len = strlen(v);
    if (len == 0 || len > 15)
        return fail(h, 400, "bad_request", PX_EFORMAT, e, "bad Content-Length");
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return fail(h, 400, "bad_request", PX_EFORMAT, e, "bad Content-Length");
        n = n * 10 + (v[i] - '0');
    }
    if (h->content_length >= 0 && h->content_length != n)
        return fail(h, 400, "bad_request", PX_EFORMAT, e, "conflicting Content-Length");
    h->content_length = n;
    return PX_OK;
}

static int header_semantics(const char *name, const char *value, http_head *h, px_error *e)
{
    if (strcasecmp(name, "Content-Length") == 0)
        return parse_content_length(value, h, e);
    if (strcasecmp(name, "Transfer-Encoding") == 0)
        return fail(h, 501, "not_implemented", PX_EUNSUPPORTED, e,
                    "Transfer-Encoding is not supported: send Content-Length");
    if (strcasecmp(name, "Connection") == 0) {
        if (has_token(value, "close"))
            h->keep_alive = 0;
        else if (has_token(value, "keep-alive"))
            h->keep_alive = 1;
    } else if (strcasecmp(name, "Expect") == 0) {
        if (strcasecmp(value, "100-continue") != 0)
            return fail(h, 417, "expectation_failed", PX_EUNSUPPORTED, e,
                        "only Expect: 100-continue");
        h->expect_continue = 1;
    }
    return PX_OK;
}

static int parse_header_line(char *line, http_head *h, px_error *e)
{
    char *colon = strchr(line, ':'), *v, *end;
    if (line[0] == ' ' || line[0] == '\t')
        return fail(h, 400, "bad_request", PX_EFORMAT, e, "folded header line");
    if (colon == NULL || colon == line)
        return fail(h, 400, "bad_request", PX_EFORMAT, e, "malformed header line");
    for (char *p = line; p < colon; p++)
        if (!is_tchar((unsigned char)*p))
            return fail(h, 400, "bad_request", PX_EFORMAT, e, "bad header name");
    *colon = 0;
    v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    end = v + strlen(v);
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        *--end = 0;
    for (const char *p = v; *p; p++)
        if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
            return fail(h, 400, "bad_request", PX_EFORMAT, e, "bad character in header value");
    if (h->nheaders >= PX_HTTP_HEADER_COUNT_MAX)
        return fail(h, 431, "headers_too_large", PX_ETOOBIG, e, "too many header fields");
    h->names[h->nheaders] = line;
    h->values[h->nheaders] = v;
    h->nheaders++;
    return header_semantics(line, v, h, e);
}

int http_parse_head(const char *data, size_t len, char *work, size_t worksz, http_head *h,
                    px_error *e)
{
    char *cursor = work, *end = work + len, *line;
    int rc, has_host = 0;
    memset(h, 0, sizeof *h);
    h->content_length = -1;
    if (len + 1 > worksz)
        return fail(h, 431, "headers_too_large", PX_ETOOBIG, e, "request head too large");
    if (memchr(data, 0, len) != NULL)
        return fail(h, 400, "bad_request", PX_EFORMAT, e, "NUL in request head");
    memcpy(work, data, len);
    work[len] = 0;
    for (char *p = work; p < end; p++) /* CR is allowed only right before LF */
        if (*p == '\r' && (p + 1 >= end || p[1] != '\n'))
            return fail(h, 400, "bad_request", PX_EFORMAT, e, "bare CR in request head");
    line = next_line(&cursor, end);
    if (line == NULL)
        return fail(h, 400, "bad_request", PX_EFORMAT, e, "no request line");
    rc = parse_request_line(line, h, e);
    if (rc != PX_OK)
        return rc;
    h->keep_alive = h->minor == 1;
    while ((line = next_line(&cursor, end)) != NULL && line[0] != 0) {
        rc = parse_header_line(line, h, e);
        if (rc != PX_OK)
            return rc;
        has_host |= strcasecmp(h->names[h->nheaders - 1], "Host") == 0;
    }
    if (line == NULL)
        return fail(h, 400, "bad_request", PX_EFORMAT, e, "request head not terminated");
    if (h->minor == 1 && !has_host)
        return fail(h, 400, "bad_request", PX_EFORMAT, e, "HTTP/1.1 request without Host");
    return PX_OK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int http_pct_decode(const char *in, size_t n, int plus_is_space, char *out, size_t outsz,
                    size_t *outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n)
                return PX_EFORMAT;
            hi = hexval(in[i + 1]);
            lo = hexval(in[i + 2]);
            if (hi < 0 || lo < 0)
                return PX_EFORMAT;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        if (o + 1 >= outsz)
            return PX_ETOOBIG;
        out[o++] = c;
    }
    if (outsz == 0)
        return PX_ETOOBIG;
    out[o] = 0;
    *outlen = o;
    return PX_OK;
}

static int add_segment(const char *raw, size_t n, char **seg_out, size_t *seg_room,
                       const char **segs, size_t *nsegs, px_error *e)
{
    size_t dlen;
    if (n == 0)
        return PX_OK;
    if (*nsegs >= PX_HTTP_SEGMENTS_MAX)
        return px_error_set(e, PX_EFORMAT, "more than %d path segments", PX_HTTP_SEGMENTS_MAX);
    if (http_pct_decode(raw, n, 0, *seg_out, *seg_room, &dlen) != PX_OK)
        return px_error_set(e, PX_EFORMAT, "bad %%-escape in path");
    if (memchr(*seg_out, '/', dlen) != NULL || memchr(*seg_out, 0, dlen) != NULL ||
        strcmp(*seg_out, ".") == 0 || strcmp(*seg_out, "..") == 0 || dlen == 0)
        return px_error_set(e, PX_EFORMAT, "path segment not allowed");
    segs[(*nsegs)++] = *seg_out;
    *seg_out += dlen + 1;
    *seg_room -= dlen + 1;
    return PX_OK;
}

int http_split_target(const char *target, char *path, char *segbuf, size_t bufsz, const char **segs,
                      size_t *nsegs, const char **query, px_error *e)
{
    const char *q = strchr(target, '?');
    size_t plen = q ? (size_t)(q - target) : strlen(target);
    char *seg_out = segbuf;
    size_t seg_room = bufsz, dlen, start = 1;
    int rc;
    *nsegs = 0;
    *query = q ? q + 1 : "";
    if (plen == 0 || target[0] != '/' || plen + 1 > bufsz)
        return px_error_set(e, PX_EFORMAT, "bad path");
    if (http_pct_decode(target, plen, 0, path, bufsz, &dlen) != PX_OK ||
        memchr(path, 0, dlen) != NULL)
        return px_error_set(e, PX_EFORMAT, "bad %%-escape in path");
    for (size_t i = 1; i <= plen; i++) {
        if (i < plen && target[i] != '/')
            continue;
        rc = add_segment(target + start, i - start, &seg_out, &seg_room, segs, nsegs, e);
        if (rc != PX_OK)
            return rc;
        start = i + 1;
    }
    return PX_OK;
}
