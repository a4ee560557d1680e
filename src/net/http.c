/*
 * http.c: the HTTP/1.1 server protocol on the connection engine (http.h): request
 * framing by Content-Length, limits before reading, routing, built-in routes.
 *
 * Why not evhttp: libevent 2.1's evhttp answers its own errors (413, 400, 501) with HTML
 * and has no hook to change that, and it has no connection limit; both are requirements
 * here. The engine under the framed server already gives limits, TLS and metrics, and the
 * head parser is one fuzzed function (docs/net.md).
 */
#include "net/http_int.h"
#include "lib/log.h"
#include "lib/str.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTP_DISCARD_MAX (1024 * 1024) /* body bytes read and dropped after a 413 */
#define METRICS_TEXT_MAX (1024 * 1024)

typedef struct http_conn {
    size_t scanned;  /* head bytes searched for its end so far */
    size_t head_len; /* 0 until the head is complete and accepted */
    size_t body_len;
    int expect_continue;
    int sent_continue;
    size_t discard; /* body bytes still to drop before closing (after a 413) */
} http_conn;

void http_count_status(net_http_server *s, int status)
{
    static const char *const classes[] = {"class=\"1xx\"", "class=\"1xx\"", "class=\"2xx\"",
                                          "class=\"3xx\"", "class=\"4xx\"", "class=\"5xx\""};
    int k = status / 100;
    if (k < 1 || k > 5)
        k = 5;
    net_metric_add(net_server_metric(&s->srv, &s->m_class[k], "possum_http_requests_total",
                                     "HTTP replies, by status class", classes[k], 0),
                   1);
}

void http_count_error(net_http_server *s, const char *code)
{
    char extra[64];
    size_t i;
    for (i = 0; i < HTTP_ERROR_CODES_CACHED && s->errors[i].m != NULL; i++)
        if (strcmp(s->errors[i].code, code) == 0) {
            net_metric_add(s->errors[i].m, 1);
            return;
        }
    snprintf(extra, sizeof extra, "code=\"%.40s\"", code);
    if (i == HTTP_ERROR_CODES_CACHED) { /* rare: look it up every time */
        net_metric *m = NULL;
        net_metric_add(net_server_metric(&s->srv, &m, "possum_http_errors_total",
                                         "HTTP error replies, by code", extra, 0),
                       1);
        return;
    }
    px_strlcpy(s->errors[i].code, code, sizeof s->errors[i].code);
    net_metric_add(net_server_metric(&s->srv, &s->errors[i].m, "possum_http_errors_total",
                                     "HTTP error replies, by code", extra, 0),
                   1);
}

void http_req_reset(net_http_req *req, net_conn *c)
{
    req->conn = c;
    memset(&req->head, 0, sizeof req->head);
    req->head.keep_alive = 0;
    req->head.minor = 1;
    req->is_head = 0;
    req->method = "GET";
    req->path[0] = 0;
    req->nsegs = 0;
    req->query = "";
    req->body = NULL;
    req->body_len = 0;
    px_buf_reset(&req->extra);
    req->replied = 0;
    req->close_after = 0;
    req->status = 0;
}

/* An error found before a request could be routed: reply, then close the connection. */
static void early_error(net_http_server *s, net_conn *c, int status, const char *code,
                        const char *msg)
{
    net_http_req *req = &s->req;
    http_req_reset(req, c);
    req->close_after = 1;
    net_http_reply_error(req, status, code, "%s", msg);
    net_conn_close(c, NET_CLOSE_LOCAL, 1);
}

/* 1 if the ", "-separated list has the method. */
static int list_has(const char *list, const char *method)
{
    size_t n = strlen(method);
    for (const char *p = list; (p = strstr(p, method)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == 0 || p[n] == ','))
            return 1;
    return 0;
}

/* Route by method and decoded segments; 404 / 405 (with Allow) when nothing fits. */
static const http_route *route_find(net_http_server *s, net_http_req *req, char *allow,
                                    size_t allowsz)
{
    const http_route *best = NULL;
    size_t used = 0;
    allow[0] = 0;
    for (size_t i = 0; i < s->nroutes; i++) {
        const http_route *r = &s->routes[i];
        size_t k;
        if (r->trailing_star ? req->nsegs < r->nsegs : req->nsegs != r->nsegs)
            continue;
        for (k = 0; k < r->nsegs; k++)
            if (strcmp(r->segs[k], "*") != 0 && strcmp(r->segs[k], req->segs[k]) != 0)
                break;
        if (k < r->nsegs)
            continue;
        if (strcmp(r->method, req->method) != 0) {
            if (!list_has(allow, r->method) && used + strlen(r->method) + 8 < allowsz)
                used += (size_t)snprintf(allow + used, allowsz - used, "%s%s%s", used ? ", " : "",
                                         r->method, strcmp(r->method, "GET") == 0 ? ", HEAD" : "");
            continue;
        }
        if (!r->has_star)
            return r;
        if (best == NULL)
            best = r;
    }
    return best;
}

static void dispatch(net_http_server *s, net_http_req *req)
{
    char allow[128];
    px_error e = {0};
    const http_route *r;
    if (http_split_target(req->head.target, req->path, req->segbuf, PX_HTTP_HEADERS_MAX + 1,
                          req->segs, &req->nsegs, &req->query, &e) != PX_OK) {
        net_http_reply_error(req, 400, "bad_path", "%s", e.msg);
        return;
    }
    req->is_head = strcmp(req->head.method, "HEAD") == 0;
    req->method = req->is_head ? "GET" : req->head.method;
    r = route_find(s, req, allow, sizeof allow);
    if (r == NULL && allow[0] != 0) {
        net_http_add_header(req, "Allow", allow);
        net_http_reply_error(req, 405, "method_not_allowed", "%s is not allowed here (allowed: %s)",
                             req->head.method, allow);
        return;
    }
    if (r == NULL) {
        net_http_reply_error(req, 404, "not_found", "no such path");
        return;
    }
    r->handler(req, r->user);
    if (PX_BUG(!req->replied))
        net_http_reply_error(req, 500, "internal", "internal error");
}

/* The head is complete at hc->head_len: check it, and decide how the body is read. */
static int accept_head(net_http_server *s, net_conn *c, http_conn *hc, const char *data,
                       size_t head_len, size_t avail)
{
    net_http_req *req = &s->req;
    px_error e = {0};
    http_req_reset(req, c);
    if (http_parse_head(data, head_len, req->work, PX_HTTP_HEADERS_MAX + 1, &req->head, &e) !=
        PX_OK) {
        early_error(s, c, req->head.err_status ? req->head.err_status : 400,
                    req->head.err_code ? req->head.err_code : "bad_request", e.msg);
        return PX_EFORMAT;
    }
    if (req->head.content_length > s->srv.cfg.max_body) {
        size_t cl = (size_t)req->head.content_length, have = avail - head_len;
        size_t left = cl - (have < cl ? have : cl);
        px_info("net", "%s: %s sent a %lld-byte body (limit %lld)", s->srv.cfg.name, c->peer,
                (long long)req->head.content_length, (long long)s->srv.cfg.max_body);
        req->close_after = 1;
        net_http_reply_error(req, 413, "body_too_large", "body of %lld bytes, at most %lld",
                             (long long)req->head.content_length, (long long)s->srv.cfg.max_body);
        if (req->head.expect_continue || left > HTTP_DISCARD_MAX) {
            net_conn_close(c, NET_CLOSE_LOCAL, 1);
            return PX_ETOOBIG;
        }
        /* read the rest and drop it, then close, so the peer sees the 413, not a reset */
        evbuffer_drain(net_conn_input(c), head_len + (have < cl ? have : cl));
        hc->discard = left;
        if (hc->discard == 0)
            net_conn_close(c, NET_CLOSE_LOCAL, 1);
        return PX_ETOOBIG;
    }
    hc->head_len = head_len;
    hc->expect_continue = req->head.expect_continue;
    hc->body_len = req->head.content_length > 0 ? (size_t)req->head.content_length : 0;
    return PX_OK;
}

/* Find the head's end, bounded by PX_HTTP_HEADERS_MAX. 1 = complete, 0 = wait, -1 = closed. */
static int read_head(net_http_server *s, net_conn *c, http_conn *hc)
{
    struct evbuffer *in = net_conn_input(c);
    size_t avail = evbuffer_get_length(in);
    size_t n = avail < PX_HTTP_HEADERS_MAX ? avail : PX_HTTP_HEADERS_MAX;
    const char *data = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
    size_t hl;
    if (data == NULL)
        return 0;
    hl = http_head_length(data, n, hc->scanned > 2 ? hc->scanned - 2 : 0);
    if (hl == 0) {
        hc->scanned = n;
        if (n < PX_HTTP_HEADERS_MAX)
            return 0;
        early_error(s, c, 431, "headers_too_large", "request head over the limit");
        return -1;
    }
    return accept_head(s, c, hc, data, hl, avail) == PX_OK ? 1 : -1;
}

/* Run one complete request (head and body buffered), then drop it from the input. */
static void run_request(net_http_server *s, net_conn *c, http_conn *hc)
{
    struct evbuffer *in = net_conn_input(c);
    size_t total = hc->head_len + hc->body_len;
    const uint8_t *data = evbuffer_pullup(in, (ev_ssize_t)total);
    net_http_req *req = &s->req;
    px_error e = {0};
    http_req_reset(req, c);
    if (data == NULL || http_parse_head((const char *)data, hc->head_len, req->work,
                                        PX_HTTP_HEADERS_MAX + 1, &req->head, &e) != PX_OK) {
        early_error(s, c, 500, "internal", "internal error");
        return;
    }
    req->body = data + hc->head_len;
    req->body_len = hc->body_len;
    dispatch(s, req);
    evbuffer_drain(in, total);
    memset(hc, 0, sizeof *hc);
    net_conn_touch(c);
    if (req->close_after)
        net_conn_close(c, NET_CLOSE_LOCAL, 1);
    else
        net_conn_check_output(c);
}

static void http_on_input(net_conn *c)
{
    net_http_server *s = c->srv->owner;
    http_conn *hc = c->proto_data;
    struct evbuffer *in = net_conn_input(c);
    while (c->state == NET_CONN_OPEN && !c->paused) {
        size_t avail = evbuffer_get_length(in);
        if (hc->discard > 0) {
            size_t n = avail < hc->discard ? avail : hc->discard;
            evbuffer_drain(in, n);
            hc->discard -= n;
            if (hc->discard == 0)
                net_conn_close(c, NET_CLOSE_LOCAL, 1);
            return;
        }
        if (hc->head_len == 0 && read_head(s, c, hc) != 1)
            return;
        if (evbuffer_get_length(in) < hc->head_len + hc->body_len) {
            if (hc->expect_continue && !hc->sent_continue) {
                hc->sent_continue = 1;
                evbuffer_add_printf(net_conn_output(c), "HTTP/1.1 100 Continue\r\n\r\n");
            }
            return;
        }
        run_request(s, c, hc);
    }
}

static void http_on_open(net_conn *c)
{
    c->proto_data = calloc(1, sizeof(http_conn));
    if (c->proto_data == NULL)
        net_conn_close(c, NET_CLOSE_ERROR, 0);
}

static void http_on_free(net_conn *c)
{
    free(c->proto_data);
    c->proto_data = NULL;
}

static const net_proto http_proto = {http_on_open, http_on_input, NULL, http_on_free};

/* ---- built-in routes ---------------------------------------------------------------- */

static void healthz(net_http_req *req, void *user)
{
    (void)user;
    net_http_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}

static void metrics(net_http_req *req, void *user)
{
    px_buf text;
    (void)user;
    px_buf_init(&text, METRICS_TEXT_MAX);
    if (net_metrics_render(&text) != PX_OK)
        net_http_reply_error(req, 500, "internal", "metrics text over %d bytes", METRICS_TEXT_MAX);
    else
        net_http_reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", text.data, text.len);
    px_buf_free(&text);
}

/* ---- server ------------------------------------------------------------------------- */

static int route_parse(http_route *r, const char *pattern, px_error *e)
{
    char *p;
    if (px_strlcpy(r->pattern, pattern, sizeof r->pattern) != PX_OK || pattern[0] != '/')
        return px_error_set(e, PX_EINVAL, "http: bad route pattern \"%.64s\"", pattern);
    px_strlcpy(r->segbuf, pattern + 1, sizeof r->segbuf);
    r->nsegs = 0;
    for (p = r->segbuf; *p != 0;) {
        char *slash = strchr(p, '/');
        if (slash != NULL)
            *slash = 0;
        if (*p == 0 || r->nsegs >= PX_HTTP_SEGMENTS_MAX || strchr(p, '%') != NULL ||
            (strchr(p, '*') != NULL && strcmp(p, "*") != 0) || strcmp(p, ".") == 0 ||
            strcmp(p, "..") == 0)
            return px_error_set(e, PX_EINVAL, "http: bad route pattern \"%.64s\"", pattern);
        r->has_star |= strcmp(p, "*") == 0;
        r->segs[r->nsegs++] = p;
        if (slash == NULL)
            break;
        p = slash + 1;
        if (*p == 0)
            return px_error_set(e, PX_EINVAL, "http: route pattern ends in '/': \"%.64s\"",
                                pattern);
    }
    r->trailing_star = r->nsegs > 0 && strcmp(r->segs[r->nsegs - 1], "*") == 0;
    return PX_OK;
}

int net_http_route(net_http_server *s, const char *method, const char *pattern, net_http_handler h,
                   void *user, px_error *e)
{
    http_route *r;
    size_t mlen = strlen(method);
    int rc;
    if (h == NULL || mlen == 0 || mlen >= HTTP_METHOD_MAX || strcmp(method, "HEAD") == 0)
        return px_error_set(e, PX_EINVAL, "http: bad route method \"%.16s\"", method);
    for (size_t i = 0; i < mlen; i++)
        if (method[i] < 'A' || method[i] > 'Z')
            return px_error_set(e, PX_EINVAL, "http: bad route method \"%.16s\"", method);
    for (size_t i = 0; i < s->nroutes; i++)
        if (strcmp(s->routes[i].method, method) == 0 && strcmp(s->routes[i].pattern, pattern) == 0)
            return px_error_set(e, PX_EEXIST, "http: route %s %s registered twice", method,
                                pattern);
    if (s->nroutes >= PX_HTTP_ROUTES_MAX)
        return px_error_set(e, PX_ELIMIT, "http: more than %d routes", PX_HTTP_ROUTES_MAX);
    r = &s->routes[s->nroutes];
    memset(r, 0, sizeof *r);
    rc = route_parse(r, pattern, e);
    if (rc != PX_OK)
        return rc;
    memcpy(r->method, method, mlen + 1);
    r->handler = h;
    r->user = user;
    s->nroutes++;
    return PX_OK;
}

static int workspace_alloc(net_http_server *s, px_error *e)
{
    net_http_req *req = &s->req;
    req->srv = s;
    req->work = malloc(PX_HTTP_HEADERS_MAX + 1);
    req->path = malloc(PX_HTTP_HEADERS_MAX + 1);
    req->segbuf = malloc(PX_HTTP_HEADERS_MAX + 1);
    px_buf_init(&req->extra, PX_HTTP_REPLY_HEADERS_MAX);
    if (req->work == NULL || req->path == NULL || req->segbuf == NULL)
        return px_error_set(e, PX_ENOMEM, "http: out of memory");
    req->path[0] = 0;
    return PX_OK;
}

static void workspace_free(net_http_server *s)
{
    free(s->req.work);
    free(s->req.path);
    free(s->req.segbuf);
    px_buf_free(&s->req.extra);
}

int net_http_server_new(struct event_base *base, const net_listener_config *cfg,
                        net_http_server **out, px_error *e)
{
    net_http_server *s;
    int rc;
    *out = NULL;
    if (cfg->max_body < 0 || cfg->max_body > PX_HTTP_BODY_MAX_CEILING)
        return px_error_set(e, PX_ECONFIG, "%s: max_body out of 0..%d", cfg->name,
                            PX_HTTP_BODY_MAX_CEILING);
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return px_error_set(e, PX_ENOMEM, "http: out of memory");
    rc = workspace_alloc(s, e);
    if (rc == PX_OK)
        rc = net_http_route(s, "GET", "/healthz", healthz, NULL, e);
    if (rc == PX_OK)
        rc = net_http_route(s, "GET", "/metrics", metrics, NULL, e);
    if (rc == PX_OK)
        rc = net_server_init(&s->srv, base, cfg, &http_proto, s,
                             PX_HTTP_HEADERS_MAX + (size_t)cfg->max_body + 4096, "HTTP", e);
    if (rc != PX_OK) {
        workspace_free(s);
        free(s);
        return rc;
    }
    *out = s;
    return PX_OK;
}

void net_http_server_free(net_http_server *s)
{
    if (s == NULL)
        return;
    net_server_shutdown(&s->srv);
    workspace_free(s);
    free(s);
}

int net_http_server_port(const net_http_server *s)
{
    return s->srv.port;
}

/* ---- request accessors -------------------------------------------------------------- */

const char *net_http_method(const net_http_req *req)
{
    return req->method;
}

int net_http_is_head(const net_http_req *req)
{
    return req->is_head;
}

const char *net_http_path(const net_http_req *req)
{
    return req->path;
}

size_t net_http_segment_count(const net_http_req *req)
{
    return req->nsegs;
}

const char *net_http_segment(const net_http_req *req, size_t i)
{
    return i < req->nsegs ? req->segs[i] : NULL;
}

const char *net_http_header(const net_http_req *req, const char *name)
{
    for (size_t i = 0; i < req->head.nheaders; i++)
        if (strcasecmp(req->head.names[i], name) == 0)
            return req->head.values[i];
    return NULL;
}

const uint8_t *net_http_body(const net_http_req *req, size_t *len)
{
    *len = req->body_len;
    return req->body;
}

int net_http_peer_cn(const net_http_req *req, char *out, size_t outsz)
{
    return net_conn_peer_cn(req->conn, out, outsz);
}

const char *net_http_peer_addr(const net_http_req *req)
{
    return req->conn->peer;
}

int net_http_query(const net_http_req *req, const char *name, char *out, size_t outsz)
{
    const char *p = req->query;
    char key[128];
    size_t klen, vlen;
    while (*p != 0) {
        const char *amp = strchr(p, '&'), *end = amp ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *kend = eq ? eq : end;
        if (http_pct_decode(p, (size_t)(kend - p), 1, key, sizeof key, &klen) == PX_OK &&
            strcmp(key, name) == 0) {
            int rc = http_pct_decode(eq ? eq + 1 : end, eq ? (size_t)(end - eq - 1) : 0, 1, out,
                                     outsz, &vlen);
            if (rc == PX_OK && memchr(out, 0, vlen) != NULL)
                rc = PX_EFORMAT;
            return rc;
        }
        p = amp ? amp + 1 : end;
    }
    return PX_ENOTFOUND;
}
