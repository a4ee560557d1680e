#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "lib/err.h"
#include "lib/str.h"
#include "lib/time.h"

static void test_parse_i64(void **state)
{
    int64_t v = 0;
    assert_int_equal(px_parse_i64("42", 0, 100, &v), PX_OK);
    assert_int_equal(v, 42);
    assert_int_equal(px_parse_i64("-7", -10, 10, &v), PX_OK);
    assert_int_equal(v, -7);
    assert_int_equal(px_parse_i64("101", 0, 100, &v), PX_ERANGE);
    assert_int_equal(px_parse_i64("99999999999999999999", 0, INT64_MAX, &v), PX_ERANGE);
    assert_int_equal(px_parse_i64("12x", 0, 100, &v), PX_EFORMAT);
    assert_int_equal(px_parse_i64(" 12", 0, 100, &v), PX_EFORMAT);
    assert_int_equal(px_parse_i64("", 0, 100, &v), PX_EFORMAT);
}

static void test_hostport(void **state)
{
    char host[64];
    int port = 0;
    assert_int_equal(px_parse_hostport("127.0.0.1:5000", host, sizeof host, &port), PX_OK);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 5000);
    assert_int_equal(px_parse_hostport("[::1]:0", host, sizeof host, &port), PX_OK);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    assert_int_equal(px_parse_hostport(":8080", host, sizeof host, &port), PX_OK);
    assert_string_equal(host, "");
    assert_int_not_equal(px_parse_hostport("localhost", host, sizeof host, &port), PX_OK);
    assert_int_not_equal(px_parse_hostport("h:70000", host, sizeof host, &port), PX_OK);
}

static void test_mask_pan(void **state)
{
    char out[32];
    px_mask_pan("6222021234567890123", out, sizeof out);
    assert_string_equal(out, "622202*********0123");
    px_mask_pan("4111111111111111", out, sizeof out);
    assert_string_equal(out, "411111******1111");
    px_mask_pan("12345678", out, sizeof out); /* too short to show the BIN */
    assert_string_equal(out, "****5678");
}

static void test_ct_equal_and_strlcpy(void **state)
{
    char small[4];
    assert_true(px_ct_equal("abcd", "abcd", 4));
    assert_false(px_ct_equal("abcd", "abce", 4));
    assert_int_equal(px_strlcpy(small, "abc", sizeof small), PX_OK);
    assert_int_equal(px_strlcpy(small, "abcdef", sizeof small), PX_ETOOBIG);
    assert_string_equal(small, "abc");
}

static void test_dates(void **state)
{
    int64_t ms = 0;
    char out[32];
    assert_int_equal(px_time_parse_date("2026-11-22", &ms), PX_OK);
    assert_int_equal(ms, INT64_C(1795305600000));
    px_time_iso8601(ms + 1234, out, sizeof out);
    assert_string_equal(out, "2026-11-22T00:00:01.234Z");
    assert_int_equal(px_time_parse_date("2026-02-30", &ms), PX_EFORMAT);
    assert_int_equal(px_time_parse_date("2026-13-01", &ms), PX_EFORMAT);
    assert_int_equal(px_time_parse_date("26-11-22", &ms), PX_EFORMAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_i64), cmocka_unit_test(test_hostport),
        cmocka_unit_test(test_mask_pan),  cmocka_unit_test(test_ct_equal_and_strlcpy),
        cmocka_unit_test(test_dates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
