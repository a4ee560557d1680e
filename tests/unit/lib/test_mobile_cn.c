/* test_mobile_cn.c: the mainland-China mobile number rule (libphonenumber CN "mobile"),
 * shared by the terminal and the platform. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "lib/mobile_cn.h"

static void test_valid_ranges(void **state)
{
    static const char *const ok[] = {
        "13800138000", "13012345678", "14512345678", "14712345678", "15012345678", "15912345678",
        "16212345678", "16512345678", "16712345678", "17012345678", "17312345678", "17512345678",
        "17812345678", "17400012345", "17405999999", "18012345678", "18912345678", "19012345678",
        "19312345678", "19512345678", "19912345678"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        const char *why = "x";
        assert_true(px_mobile_cn_is_valid(ok[i], ok[i] ? strlen(ok[i]) : 0, &why));
        assert_null(why);
    }
}

static void test_invalid(void **state)
{
    static const struct {
        const char *s, *why;
    } bad[] = {
        {"1380013800", "must be 11 digits"},
        {"138001380001", "must be 11 digits"},
        {"", "must be 11 digits"},
        {"1380013800a", "must be digits only"},
        {"+8613800138", "must be digits only"},
        {"138 0013 800", "must be 11 digits"}, /* the length is checked first */
        {"23800138000", "is not a mainland-China mobile number"},
        {"12012345678", "is not a mainland-China mobile number"},
        {"14612345678", "is not a mainland-China mobile number"},
        {"15412345678", "is not a mainland-China mobile number"},
        {"16012345678", "is not a mainland-China mobile number"},
        {"16812345678", "is not a mainland-China mobile number"},
        {"17412345678", "is not a mainland-China mobile number"},
        {"17406000000", "is not a mainland-China mobile number"},
        {"17912345678", "is not a mainland-China mobile number"},
        {"19412345678", "is not a mainland-China mobile number"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = NULL;
        assert_false(px_mobile_cn_is_valid(bad[i].s, bad[i].s ? strlen(bad[i].s) : 0, &why));
        assert_string_equal(why, bad[i].why);
    }
    assert_false(px_mobile_cn_is_valid(NULL, 0, NULL));
}

static void test_mask(void **state)
{
    char out[12];
    px_mobile_cn_mask("13800138000", out);
    assert_string_equal(out, "138****8000");
    px_mobile_cn_mask("12345", out);
    assert_string_equal(out, "***********");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_ranges),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_mask),
    };
    return cmocka_run_group_tests_name("mobile", tests, NULL, NULL);
}
