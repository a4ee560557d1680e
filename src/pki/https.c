/*
 * https.c: the blocking HTTPS/JSON client of pki/https.h, on net's blocking client.
 * HTTP/1.1 subset: requests with Content-Length, replies with Content-Length (what every
 * possum server sends), keep-alive unless the server says "Connection: close".
 */
#include "pki/https.h"
#include "lib/buf.h"
#include "lib/str.h"
#include "lib/time.h"
#include "net/net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct pki_https {
    char host[PX_NET_ADDR_MAX];
    int port;
    char prefix[PX_HTTPS_URL_MAX];
    int tls;
    SSL_CTX *ctx;
    net_client *conn;
    int64_t timeout_ms;
    char peer_cn[PX_TLS_NAME_MAX];
};

int pki_https_open(const char *url, const net_tls_config *tls, int64_t timeout_ms, pki_https **out,
                   px_error *e)
{
    pki_https *c;
    const char *rest, *slash;
    char hostport[PX_NET_ADDR_MAX];
    size_t n;
    int rc = PX_OK;
    *out = NULL;
    if (url == NULL || strlen(url) >= PX_HTTPS_URL_MAX)
        return px_error_set(e, PX_EINVAL, "URL: missing or longer than %d characters",
                            PX_HTTPS_URL_MAX - 1);
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return px_error_set(e, PX_ENOMEM, "https: out of memory");
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
    if (strncmp(url, "https://", 8) == 0) {
        c->tls = 1;
        rest = url + 8;
    } else if (strncmp(url, "http://", 7) == 0) {
        rest = url + 7;
    } else {
        free(c);
        return px_error_set(e, PX_EINVAL, "URL %s: expected https://host:port[/path]", url);
    }
    slash = strchr(rest, '/');
    n = slash ? (size_t)(slash - rest) : strlen(rest);
    if (n == 0 || n >= sizeof hostport)
        rc = px_error_set(e, PX_EINVAL, "URL %s: no host", url);
    if (rc == PX_OK) {
        memcpy(hostport, rest, n);
        hostport[n] = 0;
        if (px_parse_hostport(hostport, c->host, sizeof c->host, &c->port) != PX_OK ||
            c->host[0] == 0 || c->port <= 0)
            rc = px_error_set(e, PX_EINVAL, "URL %s: expected host:port", url);
    }
    if (rc == PX_OK && slash != NULL) {
        px_strlcpy(c->prefix, slash, sizeof c->prefix);
        n = strlen(c->prefix);
        while (n > 0 && c->prefix[n - 1] == '/')
            c->prefix[--n] = 0;
        if (strpbrk(c->prefix, " \r\n?#") != NULL)
            rc = px_error_set(e, PX_EINVAL, "URL %s: bad path", url);
    }
    if (rc == PX_OK && c->tls) {
        if (tls == NULL || tls->ca[0] == 0)
            rc = px_error_set(e, PX_ECONFIG, "URL %s: https needs a CA file to check the server",
                              url);
        else
            rc = net_tls_client_ctx(tls, &c->ctx, e);
    }
    if (rc != PX_OK) {
        pki_https_close(c);
        return rc;
    }
    *out = c;
    return PX_OK;
}

void pki_https_disconnect(pki_https *c)
{
    if (c != NULL && c->conn != NULL) { /* peer_cn stays: the last answer came from it */
        net_client_close(c->conn);
        c->conn = NULL;
    }
}

void pki_https_close(pki_https *c)
{
    if (c == NULL)
        return;
    pki_https_disconnect(c);
    net_tls_ctx_free(c->ctx);
    free(c);
}

const char *pki_https_peer_cn(const pki_https *c)
{
    return c->peer_cn;
}

const char *pki_https_error_message(const json_t *reply, const char *fallback)
{
    const char *m = json_string_value(json_object_get(json_object_get(reply, "error"), "message"));
    return m ? m : fallback;
}

static int connect_now(pki_https *c, px_error *e)
{
    int rc = net_client_connect(c->host, c->port, c->tls ? c->ctx : NULL, c->timeout_ms, &c->conn,
                                e);
    if (rc != PX_OK)
        return e != NULL && strstr(e->msg, c->host) == NULL
                   ? px_error_prefix(e, "%s:%d: ", c->host, c->port)
                   : rc;
    c->peer_cn[0] = 0;
    if (c->tls)
        (void)net_client_peer_cn(c->conn, c->peer_cn, sizeof c->peer_cn);
    return PX_OK;
}

/* Value of header name in head (lines after the status line), or NULL. */
static const char *header_value(const char *head, const char *name, char *out, size_t outsz)
{
    size_t nl = strlen(name);
    const char *p = strchr(head, '\n');
    while (p != NULL && p[1] != 0) {
        const char *line = p + 1, *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            size_t vl = len - nl - 1;
            while (vl > 0 && (*v == ' ' || *v == '\t'))
                v++, vl--;
            while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
                vl--;
            if (vl >= outsz)
                return NULL;
            memcpy(out, v, vl);
            out[vl] = 0;
            return out;
        }
        p = end;
    }
    return NULL;
}

/* Read one reply: head, then Content-Length bytes of body into b. *got_any: a byte came. */
static int read_reply(pki_https *c, px_buf *b, long *status, size_t *body_at, int *close_after,
                      int *got_any, px_error *e)
{
    uint8_t chunk[16384];
    char *eoh = NULL, v[64];
    int64_t deadline = px_mono_ms() + c->timeout_ms, clen = 0;
    int rc;
    while (eoh == NULL) {
        size_t got = 0;
        int64_t left = deadline - px_mono_ms();
        if (left <= 0)
            return px_error_set(e, PX_ETIMEOUT, "%s:%d: no answer in %lld ms", c->host, c->port,
                                (long long)c->timeout_ms);
        if ((rc = net_client_recv_raw(c->conn, chunk, sizeof chunk, &got, left, e)) != PX_OK)
            return rc;
        *got_any = 1;
        if (px_buf_append(b, chunk, got) != PX_OK)
            return px_error_set(e, PX_ETOOBIG, "%s:%d: reply too large", c->host, c->port);
        eoh = strstr((char *)b->data, "\r\n\r\n");
        if (eoh == NULL && b->len > PX_HTTPS_HEAD_MAX)
            return px_error_set(e, PX_EFORMAT, "%s:%d: reply head too large", c->host, c->port);
    }
    *body_at = (size_t)(eoh - (char *)b->data) + 4;
    *eoh = 0; /* the head is now a string; the body starts at body_at */
    {
        char code[4] = {0};
        if (strncmp((char *)b->data, "HTTP/1.", 7) == 0 && strlen((char *)b->data) >= 12)
            memcpy(code, (char *)b->data + 9, 3);
        if (px_parse_i64(code, 100, 599, &clen) != PX_OK)
            return px_error_set(e, PX_EFORMAT, "%s:%d: not an HTTP reply", c->host, c->port);
    }
    *status = (long)clen;
    clen = 0;
    if (header_value((char *)b->data, "Content-Length", v, sizeof v) != NULL &&
        px_parse_i64(v, 0, PX_HTTPS_REPLY_MAX, &clen) != PX_OK)
        return px_error_set(e, PX_EFORMAT, "%s:%d: bad Content-Length", c->host, c->port);
    *close_after = header_value((char *)b->data, "Connection", v, sizeof v) != NULL &&
                   strcasecmp(v, "close") == 0;
    while (b->len - *body_at < (size_t)clen) {
        size_t got = 0, want = (size_t)clen - (b->len - *body_at);
        int64_t left = deadline - px_mono_ms();
        if (left <= 0)
            return px_error_set(e, PX_ETIMEOUT, "%s:%d: reply body not complete in %lld ms",
                                c->host, c->port, (long long)c->timeout_ms);
        rc = net_client_recv_raw(c->conn, chunk, want < sizeof chunk ? want : sizeof chunk, &got,
                                 left, e);
        if (rc != PX_OK)
            return rc;
        if (px_buf_append(b, chunk, got) != PX_OK)
            return px_error_set(e, PX_ETOOBIG, "%s:%d: reply too large", c->host, c->port);
    }
    if (b->len - *body_at != (size_t)clen)
        return px_error_set(e, PX_EFORMAT, "%s:%d: more bytes than Content-Length", c->host,
                            c->port);
    return PX_OK;
}

/* A write failed: the server may have said why (a TLS alert: "certificate revoked",
 * "unknown ca") before it closed. TLS 1.3 checks the client's certificate after the
 * client's handshake is done, so that alert is read here. */
static int why_closed(pki_https *c, int rc, px_error *e)
{
    uint8_t b[64];
    size_t got = 0;
    px_error e2 = {0};
    if (net_client_recv_raw(c->conn, b, sizeof b, &got, 500, &e2) != PX_OK &&
        strstr(e2.msg, "alert") != NULL)
        return px_error_set(e, e2.code == PX_OK ? rc : e2.code, "%s", e2.msg);
    return rc;
}

static int call_once(pki_https *c, const char *method, const char *path, const char *body,
                     long *status, json_t **reply, int *got_any, px_error *e)
{
    px_buf req, rsp;
    size_t blen = body ? strlen(body) : 0, body_at = 0;
    int close_after = 0, rc;
    px_buf_init(&req, PX_HTTPS_REPLY_MAX);
    px_buf_init(&rsp, PX_HTTPS_REPLY_MAX + PX_HTTPS_HEAD_MAX);
    rc = px_buf_printf(&req,
                       "%s %s%s HTTP/1.1\r\nHost: %s:%d\r\nAccept: application/json\r\n"
                       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                       method, c->prefix, path, c->host, c->port, blen);
    if (rc == PX_OK && blen > 0)
        rc = px_buf_append(&req, body, blen);
    if (rc != PX_OK)
        rc = px_error_set(e, PX_ETOOBIG, "https: request too large");
    if (rc == PX_OK && (rc = net_client_send_raw(c->conn, req.data, req.len, e)) == PX_ENET)
        rc = why_closed(c, rc, e);
    if (rc == PX_OK)
        rc = read_reply(c, &rsp, status, &body_at, &close_after, got_any, e);
    if (rc == PX_OK && rsp.len > body_at)
        *reply = json_loadb((const char *)rsp.data + body_at, rsp.len - body_at,
                            JSON_REJECT_DUPLICATES, NULL);
    if (rc != PX_OK || close_after)
        pki_https_disconnect(c);
    px_buf_free(&req);
    px_buf_free(&rsp);
    return rc;
}

int pki_https_call(pki_https *c, const char *method, const char *path, const json_t *body,
                   long *status, json_t **reply, px_error *e)
{
    char *text = NULL;
    int rc = PX_OK;
    *status = 0;
    *reply = NULL;
    if (path == NULL || path[0] != '/' || strpbrk(path, " \r\n") != NULL)
        return px_error_set(e, PX_EINVAL, "https: bad path");
    if (body != NULL && (text = json_dumps(body, JSON_COMPACT)) == NULL)
        return px_error_set(e, PX_ENOMEM, "https: body does not encode");
    for (int attempt = 0; attempt < 2; attempt++) {
        int reused = c->conn != NULL, got_any = 0;
        if (!reused && (rc = connect_now(c, e)) != PX_OK)
            break;
        rc = call_once(c, method, path, text, status, reply, &got_any, e);
        /* a kept-alive connection the server had closed: once more on a fresh one */
        if (rc == PX_ENET && reused && !got_any)
            continue;
        if (rc != PX_OK && e != NULL && strstr(e->msg, c->host) == NULL)
            px_error_prefix(e, "%s:%d: ", c->host, c->port);
        break;
    }
    free(text);
    return rc;
}
