/*
 * fuzz_http_head: HTTP/1.x request heads from the network: finding the end of the head,
 * parsing it, splitting and decoding the target, reading query parameters.
 */
#include "net/http_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char work[PX_HTTP_HEADERS_MAX + 1];
static char path[PX_HTTP_HEADERS_MAX + 1];
static char segbuf[PX_HTTP_HEADERS_MAX + 1];

static void query_params(const char *q)
{
    char out[64];
    size_t n;
    while (*q != 0) {
        const char *amp = strchr(q, '&'), *end = amp ? amp : q + strlen(q);
        http_pct_decode(q, (size_t)(end - q), 1, out, sizeof out, &n);
        q = amp ? amp + 1 : end;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *segs[PX_HTTP_SEGMENTS_MAX], *query;
    size_t len, nsegs;
    http_head h;
    if (size > PX_HTTP_HEADERS_MAX)
        return 0;
    len = http_head_length(text, size, 0);
    if (len == 0 || len > size)
        return 0;
    if (http_parse_head(text, len, work, sizeof work, &h, NULL) != PX_OK) {
        if (h.err_status < 400 || h.err_code == NULL)
            abort();
        return 0;
    }
    if (h.target == NULL || h.target[0] != '/' || h.nheaders > PX_HTTP_HEADER_COUNT_MAX)
        abort();
    if (http_split_target(h.target, path, segbuf, sizeof path, segs, &nsegs, &query, NULL) ==
        PX_OK) {
        for (size_t i = 0; i < nsegs; i++)
            if (strchr(segs[i], '/') != NULL || strcmp(segs[i], "..") == 0 || segs[i][0] == 0)
                abort();
        query_params(query);
    }
    return 0;
}
