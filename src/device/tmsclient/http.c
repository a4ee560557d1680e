/*
 * http.c: the terminal's HTTP/1.1 client for the TMS, on the project's blocking client
 * (net/net.h: deadlines on every step, TLS through the same code as the servers). It speaks
 * only what the TMS speaks: requests with Content-Length bodies, responses with
 * Content-Length (Transfer-Encoding is refused), keep-alive. A response body goes to a buffer
 * with a ceiling, or, for downloads, straight into a file at an offset as it arrives, so a
 * cut connection keeps every byte that came.
 */
#include "device/tmsclient/tmsc_int.h"

#include "lib/str.h"
#include "net/net.h"
#include "net/tls.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define IO_CHUNK (64 * 1024)

struct tmsc_http {
    tmsc_config cfg;
    SSL_CTX *tls;
    net_client *conn;
    uint8_t *buf; /* received and not yet consumed */
    size_t have;
};

void tmsc_resp_init(tmsc_resp *r)
{
    memset(r, 0, sizeof *r);
    px_buf_init(&r->body, PX_TMS_HTTP_BODY_MAX);
}

void tmsc_resp_free(tmsc_resp *r)
{
    px_buf_free(&r->body);
}

int tmsc_http_open(const tmsc_config *c, tmsc_http **out, px_error *e)
{
    tmsc_http *h = calloc(1, sizeof *h);
    int rc = PX_OK;
    *out = NULL;
    if (h == NULL || (h->buf = malloc(IO_CHUNK + PX_TMS_HTTP_HEAD_MAX)) == NULL) {
        free(h);
        return px_error_set(e, PX_ENOMEM, "out of memory");
    }
    h->cfg = *c;
    if (c->tls_ca[0] != 0) {
        net_tls_config t;
        memset(&t, 0, sizeof t);
        px_strlcpy(t.ca, c->tls_ca, sizeof t.ca);
        px_strlcpy(t.cert, c->tls_cert, sizeof t.cert);
        px_strlcpy(t.key, c->tls_key, sizeof t.key);
        rc = net_tls_client_ctx(&t, &h->tls, e);
    }
    if (rc != PX_OK) {
        tmsc_http_close(h);
        return rc;
    }
    *out = h;
    return PX_OK;
}

void tmsc_http_close(tmsc_http *h)
{
    if (h == NULL)
        return;
    net_client_close(h->conn);
    net_tls_ctx_free(h->tls);
    free(h->buf);
    free(h);
}

static void drop_conn(tmsc_http *h)
{
    net_client_close(h->conn);
    h->conn = NULL;
    h->have = 0;
}

static int ensure_conn(tmsc_http *h, px_error *e)
{
    if (h->conn != NULL)
        return PX_OK;
    h->have = 0;
    return net_client_connect(h->cfg.host, (int)h->cfg.port, h->tls, h->cfg.timeout_ms, &h->conn,
                              e);
}

/* The end of the head (CRLF CRLF) in the buffer, or NULL. */
static const uint8_t *head_end(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 4 <= n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n')
            return p + i;
    return NULL;
}

/* More bytes into h->buf (at most cap total). */
static int fill(tmsc_http *h, size_t cap, px_error *e)
{
    size_t n = 0;
    int rc;
    if (h->have >= cap)
        return px_error_set(e, PX_ETOOBIG, "TMS answer head over %d bytes", PX_TMS_HTTP_HEAD_MAX);
    rc = net_client_recv_raw(h->conn, h->buf + h->have, cap - h->have, &n, h->cfg.timeout_ms, e);
    if (rc == PX_OK)
        h->have += n;
    return rc;
}

static void consume(tmsc_http *h, size_t n)
{
    memmove(h->buf, h->buf + n, h->have - n);
    h->have -= n;
}

/* Parse "HTTP/1.1 200 ..." and the header fields we use. */
static int parse_head(const char *head, size_t n, tmsc_resp *r, int *close_after, px_error *e)
{
    const char *p = head, *end = head + n;
    r->content_length = -1;
    r->range_first = r->range_last = r->range_total = -1;
    r->retry_after_ms = 0;
    *close_after = 0;
    if (n < 12 || strncmp(p, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)p[9]) ||
        !isdigit((unsigned char)p[10]) || !isdigit((unsigned char)p[11]))
        return px_error_set(e, PX_EFORMAT, "the TMS's answer is not HTTP/1.x");
    r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (p[7] == '0')
        *close_after = 1;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL && ++p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p)), *colon, *v;
        char val[128];
        size_t vl;
        if (eol == NULL)
            break;
        colon = memchr(p, ':', (size_t)(eol - p));
        if (colon == NULL)
            continue;
        for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
            ;
        vl = (size_t)(eol - v);
        while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
            vl--;
        if (vl >= sizeof val)
            vl = sizeof val - 1;
        memcpy(val, v, vl);
        val[vl] = 0;
#define IS(name) ((size_t)(colon - p) == strlen(name) && strncasecmp(p, name, strlen(name)) == 0)
        if (IS("Content-Length")) {
            if (px_parse_i64(val, 0, PX_TMS_PACKAGE_MAX, &r->content_length) != PX_OK)
                return px_error_set(e, PX_EFORMAT, "TMS answer: bad Content-Length");
        } else if (IS("Transfer-Encoding")) {
            return px_error_set(e, PX_EUNSUPPORTED, "TMS answer: Transfer-Encoding %s", val);
        } else if (IS("Connection")) {
            if (strcasecmp(val, "close") == 0)
                *close_after = 1;
        } else if (IS("Content-Range")) {
            long long a, b, t;
            if (sscanf(val, "bytes %lld-%lld/%lld", &a, &b, &t) == 3) {
                r->range_first = a;
                r->range_last = b;
                r->range_total = t;
            }
        } else if (IS("Retry-After-Ms")) {
            (void)px_parse_i64(val, 0, TMSC_RETRY_WAIT_MAX_MS, &r->retry_after_ms);
        } else if (IS("Retry-After") && r->retry_after_ms == 0) {
            int64_t s = 0;
            if (px_parse_i64(val, 0, 600, &s) == PX_OK)
                r->retry_after_ms = s * 1000;
        }
#undef IS
    }
    if (r->content_length < 0)
        return px_error_set(e, PX_EFORMAT, "TMS answer without Content-Length");
    return PX_OK;
}

static int write_at(int fd, const uint8_t *p, size_t n, int64_t off, px_error *e)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return px_error_set(e, PX_EIO, "writing the download: %s", strerror(errno));
        }
        p += w;
        n -= (size_t)w;
        off += w;
    }
    return PX_OK;
}

/* Read the answer to a request already sent. */
static int read_answer(tmsc_http *h, int is_head_req, int fd, int64_t fd_off, tmsc_resp *r,
                       int *close_after, px_error *e)
{
    size_t head_len = 0;
    int64_t left;
    int rc;
    for (;;) {
        const uint8_t *x = head_end(h->buf, h->have);
        if (x != NULL) {
            head_len = (size_t)(x - h->buf) + 4;
            break;
        }
        if ((rc = fill(h, PX_TMS_HTTP_HEAD_MAX, e)) != PX_OK)
            return rc;
    }
    if ((rc = parse_head((const char *)h->buf, head_len, r, close_after, e)) != PX_OK)
        return rc;
    consume(h, head_len);
    left = is_head_req ? 0 : r->content_length;
    if (fd < 0 || (r->status != 200 && r->status != 206)) {
        if (left > (int64_t)r->body.max)
            return px_error_set(e, PX_ETOOBIG, "TMS answer of %lld bytes, at most %zu",
                                (long long)left, r->body.max);
        fd = -1;
    }
    px_buf_reset(&r->body);
    while (left > 0) {
        size_t n;
        if (h->have == 0 && (rc = fill(h, IO_CHUNK, e)) != PX_OK)
            return rc;
        n = h->have < (size_t)left ? h->have : (size_t)left;
        rc = fd >= 0 ? write_at(fd, h->buf, n, fd_off, e) : px_buf_append(&r->body, h->buf, n);
        if (rc != PX_OK)
            return rc;
        fd_off += (int64_t)n;
        left -= (int64_t)n;
        consume(h, n);
    }
    return PX_OK;
}

int tmsc_http_request(tmsc_http *h, const char *method, const char *path, const char *extra,
                      const void *body, size_t len, int fd, int64_t fd_off, tmsc_resp *resp,
                      px_error *e)
{
    px_buf req;
    int rc = PX_OK;
    px_buf_init(&req, PX_TMS_HTTP_HEAD_MAX + PX_TMS_HTTP_BODY_MAX);
    if (px_buf_printf(&req,
                      "%s %s HTTP/1.1\r\nHost: %s:%lld\r\nUser-Agent: possum-tmsclient\r\n"
                      "Accept: application/json\r\n%s",
                      method, path, h->cfg.host, (long long)h->cfg.port,
                      extra != NULL ? extra : "") != PX_OK ||
        (body != NULL && (px_buf_printf(&req,
                                        "Content-Type: application/json\r\nContent-Length: "
                                        "%zu\r\n\r\n",
                                        len) != PX_OK ||
                          px_buf_append(&req, body, len) != PX_OK)) ||
        (body == NULL && px_buf_append_str(&req, "\r\n") != PX_OK)) {
        px_buf_free(&req);
        return px_error_set(e, PX_ETOOBIG, "request too large");
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        int reused = h->conn != NULL, close_after = 0;
        px_error le = {0};
        rc = ensure_conn(h, &le);
        if (rc == PX_OK)
            rc = net_client_send_raw(h->conn, req.data, req.len, &le);
        if (rc == PX_OK)
            rc = read_answer(h, strcmp(method, "HEAD") == 0, fd, fd_off, resp, &close_after, &le);
        if (rc == PX_OK) {
            if (close_after)
                drop_conn(h);
            break;
        }
        drop_conn(h);
        if (e != NULL)
            *e = le;
        /* a kept-alive connection the server had closed: once more on a new one */
        if (!reused || rc != PX_ENET || fd >= 0)
            break;
    }
    px_buf_free(&req);
    return rc;
}

int tmsc_resp_json(const tmsc_resp *r, json_t **out, px_error *e)
{
    json_error_t je;
    json_t *j = r->body.len > 0 ? json_loadb((const char *)r->body.data, r->body.len,
                                             JSON_REJECT_DUPLICATES, &je)
                                : NULL;
    *out = NULL;
    if (r->status >= 200 && r->status < 300) {
        if (!json_is_object(j)) {
            json_decref(j);
            return px_error_set(e, PX_EFORMAT, "the TMS answered %d without a JSON object",
                                r->status);
        }
        *out = j;
        return PX_OK;
    }
    {
        json_t *err = json_object_get(j, "error");
        const char *code = json_string_value(json_object_get(err, "code"));
        const char *msg = json_string_value(json_object_get(err, "message"));
        int pc = r->status == 401                       ? PX_EAUTH
                 : r->status == 403                     ? PX_EPERM
                 : r->status == 404                     ? PX_ENOTFOUND
                 : r->status == 409                     ? PX_ECONFLICT
                 : r->status == 429 || r->status == 503 ? PX_ELIMIT
                 : r->status >= 500                     ? PX_ENET
                                                        : PX_EINVAL;
        px_error_set(e, pc, "TMS: %d %s: %s", r->status, code != NULL ? code : "error",
                     msg != NULL ? msg : "(no message)");
        json_decref(j);
        return pc;
    }
}
