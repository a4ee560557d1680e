/* test_http_parse.c: the request-head parser and target splitting, as data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "net/http_parse.h"

#include <stdio.h>
#include <string.h>

static char WORK[PX_HTTP_HEADERS_MAX + 1];

static int parse(const char *text, http_head *h)
{
    size_t len = http_head_length(text, strlen(text), 0);
    if (len == 0)
        return -1;
    return http_parse_head(text, len, WORK, sizeof WORK, h, NULL);
}

static void test_good_heads(void **state)
{
    http_head h;
    (void)state;
    assert_int_equal(parse("GET /a?b=c HTTP/1.1\r\nHost: x\r\nX-Pad:  v  \r\n\r\n", &h), PX_OK);
    assert_string_equal(h.method, "GET");
    assert_string_equal(h.target, "/a?b=c");
    assert_int_equal(h.minor, 1);
    assert_int_equal(h.keep_alive, 1);
    assert_int_equal(h.content_length, -1);
    assert_int_equal(h.nheaders, 2);
    assert_string_equal(h.values[1], "v");
    assert_int_equal(parse("POST / HTTP/1.0\nContent-Length: 12\nConnection: keep-alive\n\n", &h),
                     PX_OK); /* bare LF line ends are accepted */
    assert_int_equal(h.content_length, 12);
    assert_int_equal(h.keep_alive, 1);
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                           "Connection: close\r\n\r\n",
                           &h),
                     PX_OK);
    assert_int_equal(h.expect_continue, 1);
    assert_int_equal(h.keep_alive, 0);
}

static void test_bad_heads(void **state)
{
    static const struct {
        const char *text;
        int status;
    } bad[] = {
        {"GET / HTTP/1.1\r\n\r\n", 400},             /* no Host */
        {"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400}, /* double space */
        {"get / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400}, /* absolute form */
        {"GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505},
        {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},           /* blank before colon */
        {"GET / HTTP/1.1\r\nHost: x\r\n y\r\n\r\n", 400},      /* folding */
        {"GET / HTTP/1.1\r\nHost: x\r\nA\rB: 1\r\n\r\n", 400}, /* bare CR */
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
        {"GET / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n", 417},
        {"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: \x01\r\n\r\n", 400},
    };
    http_head h;
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = parse(bad[i].text, &h);
        if (rc == PX_OK || h.err_status != bad[i].status)
            fail_msg("case %zu: rc %d status %d", i, rc, h.err_status);
    }
    /* a NUL inside the head */
    assert_int_not_equal(http_parse_head("GET / HTTP/1.1\r\nHost: \0\r\n\r\n", 27, WORK,
                                         sizeof WORK, &h, NULL),
                         PX_OK);
    /* too many fields */
    {
        static char many[8192];
        size_t n = (size_t)snprintf(many, sizeof many, "GET / HTTP/1.1\r\nHost: x\r\n");
        for (int i = 0; i < PX_HTTP_HEADER_COUNT_MAX; i++)
            n += (size_t)snprintf(many + n, sizeof many - n, "X-%d: y\r\n", i);
        snprintf(many + n, sizeof many - n, "\r\n");
        assert_int_equal(parse(many, &h), PX_ETOOBIG);
        assert_int_equal(h.err_status, 431);
    }
}

static void test_head_length(void **state)
{
    const char *t = "GET / HTTP/1.1\r\nHost: x\r\n\r\nBODY";
    (void)state;
    assert_int_equal(http_head_length(t, strlen(t), 0), strlen(t) - 4);
    assert_int_equal(http_head_length(t, 20, 0), 0);
    assert_int_equal(http_head_length(t, strlen(t), 20), strlen(t) - 4);
}

static void test_split_target(void **state)
{
    char path[256], segbuf[256];
    const char *segs[PX_HTTP_SEGMENTS_MAX], *query;
    size_t n;
    char out[32];
    size_t outlen;
    (void)state;
    assert_int_equal(http_split_target("/v1//a%41/b/?q=1", path, segbuf, sizeof path, segs, &n,
                                       &query, NULL),
                     PX_OK);
    assert_int_equal(n, 3);
    assert_string_equal(segs[1], "aA");
    assert_string_equal(path, "/v1//aA/b/");
    assert_string_equal(query, "q=1");
    assert_int_equal(http_split_target("/", path, segbuf, sizeof path, segs, &n, &query, NULL),
                     PX_OK);
    assert_int_equal(n, 0);
    assert_int_not_equal(http_split_target("/a/%2e%2e/b", path, segbuf, sizeof path, segs, &n,
                                           &query, NULL),
                         PX_OK);
    assert_int_not_equal(http_split_target("/a/%", path, segbuf, sizeof path, segs, &n, &query,
                                           NULL),
                         PX_OK);
    assert_int_not_equal(http_split_target("/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17", path,
                                           segbuf, sizeof path, segs, &n, &query, NULL),
                         PX_OK);
    assert_int_equal(http_pct_decode("a+b%21", 6, 1, out, sizeof out, &outlen), PX_OK);
    assert_string_equal(out, "a b!");
    assert_int_equal(http_pct_decode("abc", 3, 0, out, 3, &outlen), PX_ETOOBIG);
    assert_int_equal(http_pct_decode("%4", 2, 0, out, sizeof out, &outlen), PX_EFORMAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_heads),
        cmocka_unit_test(test_bad_heads),
        cmocka_unit_test(test_head_length),
        cmocka_unit_test(test_split_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
