#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"

static void test_append_grows_up_to_ceiling(void **state)
{
    px_buf b;
    px_buf_init(&b, 100);
    for (int i = 0; i < 10; i++)
        assert_int_equal(px_buf_append(&b, "0123456789", 10), PX_OK);
    assert_int_equal(b.len, 100);
    assert_int_equal(px_buf_append_byte(&b, 'x'), PX_ETOOBIG);
    assert_int_equal(b.len, 100); /* a refused append changes nothing */
    assert_memory_equal(b.data + 90, "0123456789", 10);
    px_buf_free(&b);
    assert_null(b.data);
}

static void test_printf_and_str(void **state)
{
    px_buf b;
    px_buf_init(&b, 64);
    assert_string_equal(px_buf_str(&b), "");
    assert_int_equal(px_buf_printf(&b, "%s=%d", "stan", 42), PX_OK);
    assert_int_equal(px_buf_append_str(&b, ";"), PX_OK);
    assert_string_equal(px_buf_str(&b), "stan=42;");
    assert_int_equal(px_buf_printf(&b, "%080d", 1), PX_ETOOBIG);
    assert_string_equal(px_buf_str(&b), "stan=42;");
    px_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(px_buf_str(&b), "");
    px_buf_cleanse_free(&b);
}

static void test_huge_request_refused(void **state)
{
    px_buf b;
    px_buf_init(&b, 16);
    assert_int_equal(px_buf_reserve(&b, SIZE_MAX), PX_ETOOBIG);
    assert_int_equal(px_buf_reserve(&b, 17), PX_ETOOBIG);
    assert_int_equal(px_buf_reserve(&b, 16), PX_OK);
    px_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_grows_up_to_ceiling),
        cmocka_unit_test(test_printf_and_str),
        cmocka_unit_test(test_huge_request_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
