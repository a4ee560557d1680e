/*
 * http_reply.c: reply writers (http.h): status line and headers straight into the
 * connection's output buffer, JSON bodies, the one error shape, files with Range.
 */
#include "net/http_int.h"
#include "lib/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Status";
    }
}

static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int net_http_add_header(net_http_req *req, const char *name, const char *value)
{
    static const char *const reserved[] = {"Content-Length", "Transfer-Encoding", "Connection",
                                           "Content-Type"};
    if (req->replied || name[0] == 0)
        return PX_EINVAL;
    for (const char *p = name; *p; p++)
        if (!is_tchar((unsigned char)*p))
            return PX_EINVAL;
    for (const char *p = value; *p; p++)
        if (*p == '\r' || *p == '\n')
            return PX_EINVAL;
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strcasecmp(name, reserved[i]) == 0)
            return PX_EINVAL;
    return px_buf_printf(&req->extra, "%s: %s\r\n", name, value);
}

/* Status line and headers for a body of len bytes; decides keep-alive. */
static int write_head(net_http_req *req, int status, const char *content_type, uint64_t len)
{
    struct evbuffer *out = net_conn_output(req->conn);
    const char *conn_hdr = "";
    if (req->close_after || !req->head.keep_alive) {
        req->close_after = 1;
        conn_hdr = "Connection: close\r\n";
    } else if (req->head.minor == 0) {
        conn_hdr = "Connection: keep-alive\r\n";
    }
    if (evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n%s%s%sContent-Length: %" PRIu64 "\r\n%s%s\r\n",
                            status, reason_phrase(status), content_type ? "Content-Type: " : "",
                            content_type ? content_type : "", content_type ? "\r\n" : "", len,
                            px_buf_str(&req->extra), conn_hdr) < 0)
        return PX_ENOMEM;
    req->replied = 1;
    req->status = status;
    http_count_status(req->srv, status);
    return PX_OK;
}

int net_http_reply(net_http_req *req, int status, const char *content_type, const void *body,
                   size_t len)
{
    int rc;
    if (PX_BUG(req->replied))
        return PX_ESTATE;
    rc = write_head(req, status, content_type, len);
    if (rc == PX_OK && len > 0 && !req->is_head &&
        evbuffer_add(net_conn_output(req->conn), body, len) != 0)
        rc = PX_ENOMEM;
    if (rc != PX_OK)
        req->close_after = 1;
    return rc;
}

int net_http_reply_json(net_http_req *req, int status, json_t *body)
{
    char *text;
    int rc;
    if (body == NULL)
        body = json_object();
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL)
        return net_http_reply_error(req, 500, "internal", "internal error");
    rc = net_http_reply(req, status, "application/json", text, strlen(text));
    free(text);
    return rc;
}

static const char *const fallback_error =
    "{\"error\":{\"status\":500,\"code\":\"internal\",\"message\":\"internal error\"}}";

char *http_error_body(int status, const char *code, const char *msg)
{
    char clean[512];
    json_t *obj;
    char *text;
    size_t i;
    for (i = 0; msg[i] != 0 && i + 1 < sizeof clean; i++)
        clean[i] = (unsigned char)msg[i] < 0x20 || (unsigned char)msg[i] > 0x7e ? '?' : msg[i];
    clean[i] = 0;
    obj = json_pack("{s:{s:i,s:s,s:s}}", "error", "status", status, "code", code, "message", clean);
    text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
    return text;
}

int net_http_reply_error(net_http_req *req, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    char *text;
    int rc;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    http_count_error(req->srv, code);
    text = http_error_body(status, code, msg);
    rc = net_http_reply(req, text ? status : 500, "application/json", text ? text : fallback_error,
                        strlen(text ? text : fallback_error));
    free(text);
    return rc;
}

int net_http_reply_px_error(net_http_req *req, int code, const px_error *e)
{
    const char *msg = e != NULL ? px_error_text(e) : px_strerror(code);
    switch (code) {
    case PX_EINVAL:
    case PX_EFORMAT:
    case PX_ERANGE: return net_http_reply_error(req, 400, "bad_request", "%s", msg);
    case PX_EAUTH: return net_http_reply_error(req, 401, "unauthorized", "%s", msg);
    case PX_EPERM: return net_http_reply_error(req, 403, "forbidden", "%s", msg);
    case PX_ENOTFOUND: return net_http_reply_error(req, 404, "not_found", "%s", msg);
    case PX_EEXIST:
    case PX_ECONFLICT: return net_http_reply_error(req, 409, "conflict", "%s", msg);
    case PX_ETOOBIG: return net_http_reply_error(req, 413, "too_large", "%s", msg);
    case PX_ELIMIT: return net_http_reply_error(req, 429, "too_many_requests", "%s", msg);
    default:
        px_errorlog("net", "%s: %s %s: %s", req->srv->srv.cfg.name, req->method,
                    req->path ? req->path : "?", msg);
        return net_http_reply_error(req, 500, "internal", "internal error");
    }
}

static const char *parse_num(const char *p, int64_t *out)
{
    const char *start = p;
    int64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++) /* saturates far above any file size */
        v = v >= INT64_MAX / 10 - 1 ? INT64_MAX / 10 : v * 10 + (*p - '0');
    *out = p == start ? -1 : v;
    return p;
}

/* "bytes=a-b", "bytes=a-", "bytes=-n" against size: 1 = range set, 0 = serve it all,
 * -1 = unsatisfiable. An invalid header or several ranges get the whole file
 * (RFC 9110 14.2 lets a server ignore Range). */
static int parse_range(const char *v, int64_t size, int64_t *off, int64_t *len)
{
    int64_t a, b;
    const char *p;
    if (v == NULL || strncmp(v, "bytes=", 6) != 0 || strchr(v, ',') != NULL)
        return 0;
    p = parse_num(v + 6, &a);
    if (*p != '-')
        return 0;
    p = parse_num(p + 1, &b);
    if (*p != 0 || (a < 0 && b < 0) || (a >= 0 && b >= 0 && b < a))
        return 0;
    if (a < 0) { /* suffix: the last b bytes */
        if (b == 0 || size == 0)
            return -1;
        *off = b >= size ? 0 : size - b;
        *len = size - *off;
        return 1;
    }
    if (a >= size)
        return -1;
    *off = a;
    *len = (b < 0 || b >= size ? size - 1 : b) - a + 1;
    return 1;
}

int net_http_reply_file(net_http_req *req, int fd, int64_t size, const char *content_type)
{
    int64_t off = 0, len = size;
    int r = 0, rc;
    char cr[96];
    if (PX_BUG(req->replied || size < 0)) {
        close(fd);
        return PX_ESTATE;
    }
    if (strcmp(req->method, "GET") == 0)
        r = parse_range(net_http_header(req, "Range"), size, &off, &len);
    if (r < 0) {
        close(fd);
        snprintf(cr, sizeof cr, "bytes */%" PRId64, size);
        net_http_add_header(req, "Content-Range", cr);
        return net_http_reply_error(req, 416, "range_not_satisfiable",
                                    "range outside the %" PRId64 " bytes", size);
    }
    net_http_add_header(req, "Accept-Ranges", "bytes");
    if (r > 0) {
        snprintf(cr, sizeof cr, "bytes %" PRId64 "-%" PRId64 "/%" PRId64, off, off + len - 1, size);
        net_http_add_header(req, "Content-Range", cr);
    }
    rc = write_head(req, r > 0 ? 206 : 200, content_type, (uint64_t)len);
    if (rc != PX_OK || req->is_head || len == 0) {
        close(fd);
        return rc;
    }
    /* the output buffer now owns fd: sendfile(2) on plain sockets, mapped reads under TLS */
    if (evbuffer_add_file(net_conn_output(req->conn), fd, off, len) != 0) {
        req->close_after = 1; /* headers are out: the only honest end is to close */
        return PX_EIO;
    }
    return PX_OK;
}

int net_http_json_parse(const void *data, size_t len, size_t max, json_t **out, px_error *e)
{
    json_error_t err;
    json_t *j;
    *out = NULL;
    if (len > max)
        return px_error_set(e, PX_ETOOBIG, "body of %zu bytes, at most %zu", len, max);
    if (len == 0)
        return px_error_set(e, PX_EFORMAT, "empty body: expected a JSON object");
    j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err); /* NUL escapes refused by default */
    if (j == NULL)
        return px_error_set(e, PX_EFORMAT, "line %d column %d: %s", err.line, err.column, err.text);
    if (!json_is_object(j)) {
        json_decref(j);
        return px_error_set(e, PX_EFORMAT, "line 1 column 1: expected a JSON object");
    }
    *out = j;
    return PX_OK;
}

int net_http_body_json(net_http_req *req, json_t **out, px_error *e)
{
    return net_http_json_parse(req->body, req->body_len, (size_t)req->srv->srv.cfg.max_body, out,
                               e);
}
