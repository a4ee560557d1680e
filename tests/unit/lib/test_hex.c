#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "lib/err.h"
#include "lib/hex.h"

static void test_encode_upper(void **state)
{
    const uint8_t in[] = {0x00, 0x1f, 0xab, 0xff};
    char out[9];
    px_hex_encode(in, sizeof in, out);
    assert_string_equal(out, "001FABFF");
}

static void test_decode_either_case(void **state)
{
    uint8_t out[4];
    size_t n = 0;
    assert_int_equal(px_hex_decode("001fAbFF", out, sizeof out, &n), PX_OK);
    assert_int_equal(n, 4);
    assert_int_equal(out[2], 0xab);
    assert_int_equal(px_hex_decode("", out, sizeof out, &n), PX_OK);
    assert_int_equal(n, 0);
}

static void test_decode_rejects(void **state)
{
    uint8_t out[4];
    size_t n = 99;
    assert_int_equal(px_hex_decode("ABC", out, sizeof out, &n), PX_EINVAL); /* odd */
    assert_int_equal(px_hex_decode("AG", out, sizeof out, &n), PX_EINVAL);  /* not hex */
    assert_int_equal(px_hex_decode("0011223344", out, sizeof out, &n), PX_ETOOBIG);
    assert_int_equal(n, 99); /* nothing reported on failure */
    assert_true(px_hex_is_valid("0aF9", 4));
    assert_false(px_hex_is_valid("0a 9", 4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_upper),
        cmocka_unit_test(test_decode_either_case),
        cmocka_unit_test(test_decode_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
