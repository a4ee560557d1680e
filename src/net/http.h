/*
 * http.h: an HTTP/1.1 JSON server on libevent, with TLS / mutual TLS, routing, limits and
 * one error shape. See docs/net.md.
 *
 * Every error the server sends, its own or a handler's, has one shape:
 *   {"error":{"status":400,"code":"bad_json","message":"line 1 column 5: ..."}}
 * and is counted in possum_http_errors_total{server,code}.
 * Built in: GET /healthz -> 200 {"status":"ok"}; GET /metrics -> the metrics registry in
 * Prometheus text format. HEAD is answered by GET routes (body left out).
 *
 * Limits (net_listener_config): a request head over PX_HTTP_HEADERS_MAX -> 431, a body over
 * max_body -> 413 before any of it is read, Transfer-Encoding -> 501 (send Content-Length),
 * plus the connection limit, idle timeout and output bound of every listener.
 *
 * Handlers run on the server's event loop and must reply before returning (exactly one
 * net_http_reply*() call; a handler that does not reply gets a 500 sent for it).
 */
#ifndef NET_HTTP_H
#define NET_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "net/net.h"

typedef struct net_http_server net_http_server;
typedef struct net_http_req net_http_req;

typedef void (*net_http_handler)(net_http_req *req, void *user);

/* Listen per cfg (name, listen, idle_timeout_ms, max_conns, max_output, max_body, tls);
 * logs what it listens on. /healthz and /metrics are registered. */
int net_http_server_new(struct event_base *base, const net_listener_config *cfg,
                        net_http_server **out, px_error *e);

/* Closes every connection and the listener. Not from inside a handler. NULL is fine. */
void net_http_server_free(net_http_server *srv);

int net_http_server_port(const net_http_server *srv);

/* Route method ("GET", "POST", ...) + pattern to h. Patterns are absolute paths whose
 * segments are literal or "*": a "*" matches exactly one segment, except as the last
 * segment, where it matches one or more ("/v1/packages/" "*"). Matching is on the decoded
 * path; an exact pattern wins over one with "*", then the first registered.
 * PX_EEXIST for a duplicate, PX_ELIMIT past PX_HTTP_ROUTES_MAX, PX_EINVAL for a bad
 * pattern. A path that matches no pattern -> 404; one that matches only under other
 * methods -> 405 with Allow. */
int net_http_route(net_http_server *srv, const char *method, const char *pattern,
                   net_http_handler h, void *user, px_error *e);

/* ---- the request (valid until the handler returns) --------------------------------- */

const char *net_http_method(const net_http_req *req); /* "GET" (also for HEAD) */
int net_http_is_head(const net_http_req *req);
const char *net_http_path(const net_http_req *req); /* decoded "/v1/packages/a b" */
size_t net_http_segment_count(const net_http_req *req);
/* Decoded segment i ("/v1/x" -> 0:"v1", 1:"x"); NULL past the end. A segment never
 * contains '/', NUL, or is "." / "..": such paths are refused with 400 bad_path. */
const char *net_http_segment(const net_http_req *req, size_t i);
/* Decoded query parameter (first occurrence). PX_ENOTFOUND; PX_ETOOBIG if it does not fit;
 * PX_EFORMAT for bad %-escapes. */
int net_http_query(const net_http_req *req, const char *name, char *out, size_t outsz);
/* Header value (case-insensitive name, first occurrence, surrounding blanks removed) or
 * NULL. */
const char *net_http_header(const net_http_req *req, const char *name);
const uint8_t *net_http_body(const net_http_req *req, size_t *len);
/* Body as a JSON object (see net_http_json_parse). On failure e says why, with line and
 * column; reply with net_http_reply_error(req, 400, "bad_json", "%s", e->msg). */
int net_http_body_json(net_http_req *req, json_t **out, px_error *e);
/* Client certificate subject CN (mutual TLS); PX_ENOTFOUND without one. */
int net_http_peer_cn(const net_http_req *req, char *out, size_t outsz);
const char *net_http_peer_addr(const net_http_req *req); /* "127.0.0.1:53211" */

/* ---- replies: exactly one per request ---------------------------------------------- */

/* Add a reply header (before the reply call). PX_EINVAL for CR/LF or a bad name,
 * PX_ETOOBIG past PX_HTTP_REPLY_HEADERS_MAX. */
int net_http_add_header(net_http_req *req, const char *name, const char *value);
int net_http_reply(net_http_req *req, int status, const char *content_type, const void *body,
                   size_t len);
/* body is stolen (decref'd) even on failure; NULL = {} */
int net_http_reply_json(net_http_req *req, int status, json_t *body);
/* The error shape above; code is a short snake_case word ("bad_json", "not_found"). */
int net_http_reply_error(net_http_req *req, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Map a px_err to a status and code (EINVAL/EFORMAT/ERANGE 400, EAUTH 401, EPERM 403,
 * ENOTFOUND 404, EEXIST/ECONFLICT 409, ETOOBIG 413, ELIMIT 429, others 500) and reply with
 * e's message (500s say only "internal error"; the detail is logged). */
int net_http_reply_px_error(net_http_req *req, int code, const px_error *e);
/* Send size bytes of the open file fd (taken: closed by the server in every case) with
 * sendfile where the connection allows it; honours a single "Range: bytes=" request
 * (206 with Content-Range, 416 when unsatisfiable) and announces Accept-Ranges. */
int net_http_reply_file(net_http_req *req, int fd, int64_t size, const char *content_type);

/* ---- pure helpers (fuzzed) --------------------------------------------------------- */

/* Parse len bytes (at most max) as one JSON object: no NUL bytes, no duplicate keys, depth
 * bounded by jansson. PX_ETOOBIG over max, PX_EFORMAT with "line L column C: reason". */
int net_http_json_parse(const void *data, size_t len, size_t max, json_t **out, px_error *e);

#endif
