#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

static void test_redacts_pan_and_key_material(void **state)
{
    char out[256];
    px_log_redact("card 6222021234567890123 approved", out, sizeof out);
    assert_string_equal(out, "card 622202*********0123 approved");
    px_log_redact("tmk 0123456789ABCDEFFEDCBA9876543210 loaded", out, sizeof out);
    assert_string_equal(out, "tmk [redacted] loaded");
    px_log_redact("pinblock 041261AAAAEDCBA9", out, sizeof out);
    assert_string_equal(out, "pinblock [redacted]");
    /* ordinary text, short numbers and identifiers pass untouched */
    px_log_redact("tid 12345678 stan 000123 port 5000", out, sizeof out);
    assert_string_equal(out, "tid 12345678 stan 000123 port 5000");
}

static void test_json_lines_are_json(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    assert_non_null(mem);
    px_log_setup(PX_LOG_INFO, PX_LOG_JSON, mem);
    px_log(PX_LOG_DEBUG, "test", "hidden below the level");
    px_log(PX_LOG_INFO, "test", "quote \" and pan 4111111111111111");
    fclose(mem);
    px_log_setup(PX_LOG_INFO, PX_LOG_TEXT, NULL);
    assert_non_null(strstr(text, "\"level\":\"info\""));
    assert_non_null(strstr(text, "\"module\":\"test\""));
    assert_non_null(strstr(text, "quote \\\" and pan 411111******1111"));
    assert_null(strstr(text, "hidden"));
    assert_null(strstr(text, "4111111111111111"));
    free(text);
}

static void test_levels_parse(void **state)
{
    px_log_level l;
    px_log_format f;
    assert_int_equal(px_log_parse_level("warn", &l), 0);
    assert_int_equal(l, PX_LOG_WARN);
    assert_int_equal(px_log_parse_level("loud", &l), -1);
    assert_int_equal(px_log_parse_format("json", &f), 0);
    assert_int_equal(f, PX_LOG_JSON);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redacts_pan_and_key_material),
        cmocka_unit_test(test_json_lines_are_json),
        cmocka_unit_test(test_levels_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
