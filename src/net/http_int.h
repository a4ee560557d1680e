/*
 * http_int.h (private): the HTTP server's structures, shared by http.c (protocol, routing)
 * and http_reply.c (reply writers).
 *
 * Handlers are synchronous and a server runs on one thread, so one request workspace per
 * server (head copy, decoded path, segments) serves every connection: a connection only
 * keeps a few counters between reads.
 */
#ifndef NET_HTTP_INT_H
#define NET_HTTP_INT_H

#include "lib/buf.h"
#include "net/conn.h"
#include "net/http.h"
#include "net/http_parse.h"

#define HTTP_PATTERN_MAX 256
#define HTTP_ERROR_CODES_CACHED 32

typedef struct http_route {
    char method[HTTP_METHOD_MAX];
    char pattern[HTTP_PATTERN_MAX]; /* as registered */
    char segbuf[HTTP_PATTERN_MAX];  /* segments, NUL-separated */
    const char *segs[PX_HTTP_SEGMENTS_MAX];
    size_t nsegs;
    int has_star;
    int trailing_star;
    net_http_handler handler;
    void *user;
} http_route;

struct net_http_req {
    net_http_server *srv;
    net_conn *conn;
    http_head head;
    int is_head;
    const char *method; /* for routing: "GET" for HEAD */
    char *work;         /* head copy, PX_HTTP_HEADERS_MAX + 1 */
    char *path;         /* decoded path, same size */
    char *segbuf;       /* decoded segments, same size */
    const char *segs[PX_HTTP_SEGMENTS_MAX];
    size_t nsegs;
    const char *query;
    const uint8_t *body;
    size_t body_len;
    px_buf extra; /* reply headers added by the handler */
    int replied;
    int close_after; /* send Connection: close and close once sent */
    int status;      /* what was replied */
};

typedef struct http_error_metric {
    char code[32];
    net_metric *m;
} http_error_metric;

struct net_http_server {
    net_server srv;
    http_route routes[PX_HTTP_ROUTES_MAX];
    size_t nroutes;
    net_http_req req;
    net_metric *m_class[6]; /* requests by status class 1xx..5xx */
    http_error_metric errors[HTTP_ERROR_CODES_CACHED];
};

/* Prepare the workspace for a new request on c. */
void http_req_reset(net_http_req *req, net_conn *c);

/* Count an error reply under possum_http_errors_total{code}. */
void http_count_error(net_http_server *s, const char *code);

/* The one error shape as compact JSON text (free() it), never NULL unless out of memory:
 * msg is cut to printable ASCII first, since it may echo peer bytes. */
char *http_error_body(int status, const char *code, const char *msg);

/* Count a reply under possum_http_requests_total{class}. */
void http_count_status(net_http_server *s, int status);

#endif
