/*
 * http_parse.h (private): the one function that turns an HTTP/1.x request head from the
 * network into a struct (RFC 9112 sections 2-3, 5-6, a strict subset), plus target
 * splitting and %-decoding. Pure functions over memory: fuzzed by fuzz_http_head.
 */
#ifndef NET_HTTP_PARSE_H
#define NET_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "lib/limits.h"

#define HTTP_METHOD_MAX 16

typedef struct http_head {
    char method[HTTP_METHOD_MAX];
    const char *target; /* origin-form, points into the work buffer */
    int minor;          /* HTTP/1.minor: 0 or 1 */
    size_t nheaders;
    const char *names[PX_HTTP_HEADER_COUNT_MAX];  /* as sent */
    const char *values[PX_HTTP_HEADER_COUNT_MAX]; /* blanks trimmed */
    int64_t content_length;                       /* -1: none */
    int keep_alive;
    int expect_continue;
    /* on failure: the reply to send */
    int err_status;
    const char *err_code;
} http_head;

/* Length of the head in data (through the empty line), or 0 if it is not complete. from:
 * where a previous call stopped looking (bytes before it are not scanned again). */
size_t http_head_length(const char *data, size_t len, size_t from);

/* Parse the complete head data[0..len) into out; its strings live in work (worksz >=
 * len + 1). On failure returns PX_EFORMAT (or PX_ETOOBIG, PX_EUNSUPPORTED) with
 * out->err_status / err_code set and e saying what was wrong. */
int http_parse_head(const char *data, size_t len, char *work, size_t worksz, http_head *out,
                    px_error *e);

/* Split target's path into decoded segments, stored NUL-separated in segbuf (size >=
 * strlen(target) + 1); path gets the decoded path (same size). Refuses (PX_EFORMAT) bad
 * escapes, a decoded '/' or NUL, "." and "..", and more than PX_HTTP_SEGMENTS_MAX
 * segments; empty segments are skipped. query: the raw text after '?', or "". */
int http_split_target(const char *target, char *path, char *segbuf, size_t bufsz, const char **segs,
                      size_t *nsegs, const char **query, px_error *e);

/* %-decode n bytes of in (with '+' as space when plus_is_space) into out (outsz). */
int http_pct_decode(const char *in, size_t n, int plus_is_space, char *out, size_t outsz,
                    size_t *outlen);

#endif
