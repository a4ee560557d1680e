/* test_phonepay_rules.c: number rules, field 48, names and their masking, card numbers,
 * notification formats and the clearing-file parser (good files and every kind of bad line). */
#include "lib/mobile_cn.h"
#include "pp_fixture.h"

#include <stdlib.h>
#include <string.h>

static int valid(const char *s)
{
    return px_mobile_cn_is_valid(s, strlen(s), NULL);
}

/* libphonenumber CN mobile:
 * 1740[0-5]\d{6} | 1(?:[38]\d|4[57]|[59][0-35-9]|6[25-7]|7[0-35-8])\d{8} */
static void test_mobile_prefixes(void **state)
{
    static const char *const good[] = {
        "13012345678", "13912345678", "14512345678", "14712345678", "15012345678", "15312345678",
        "15512345678", "15912345678", "16212345678", "16512345678", "16712345678", "17012345678",
        "17312345678", "17512345678", "17812345678", "17400012345", "17405999999", "18012345678",
        "18912345678", "19012345678", "19512345678", "19912345678"};
    static const char *const bad[] = {
        "10012345678", "11012345678", "12012345678", "14012345678", "14412345678", "14612345678",
        "14912345678", "15412345678", "16012345678", "16112345678", "16312345678", "16412345678",
        "16812345678", "16912345678", "17412345678", "17406123456", "17410123456", "17912345678",
        "19412345678", "23812345678", "03812345678"};
    (void)state;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!valid(good[i]))
            fail_msg("%s should be valid", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (valid(bad[i]))
            fail_msg("%s should be refused", bad[i]);
}

static void test_mobile_shape(void **state)
{
    const char *why = NULL;
    (void)state;
    assert_false(px_mobile_cn_is_valid("1381234567", 10, &why));
    assert_string_equal(why, "must be 11 digits");
    assert_false(px_mobile_cn_is_valid("138123456789", 12, &why));
    assert_false(px_mobile_cn_is_valid("138-1234567", 11, &why));
    assert_string_equal(why, "must be digits only");
    assert_false(px_mobile_cn_is_valid("+8613812345", 11, &why));
    assert_false(px_mobile_cn_is_valid("12312345678", 11, &why));
    assert_string_equal(why, "is not a mainland-China mobile number");
    assert_false(px_mobile_cn_is_valid(NULL, 0, &why));
    assert_true(px_mobile_cn_is_valid("13812345678", 11, &why));
    assert_null(why);
}

static void test_field48(void **state)
{
    phonepay_field48 f;
    px_error e = {0};
    (void)state;
    assert_int_equal(phonepay_field48_parse("1381234567813987654321", 22, 0, &f, &e), PX_OK);
    assert_string_equal(f.payee_mobile, "13812345678");
    assert_string_equal(f.payer_mobile, "13987654321");
    assert_string_equal(f.reference, "");
    assert_int_equal(phonepay_field48_parse("1381234567813987654321000000123456", 34, 1, &f, &e),
                     PX_OK);
    assert_string_equal(f.reference, "000000123456");
    assert_int_equal(phonepay_field48_parse("138123456781398765432", 21, 0, &f, &e), PX_EFORMAT);
    assert_non_null(strstr(e.msg, "field 48"));
    assert_int_equal(phonepay_field48_parse("1381234567813987654321", 22, 1, &f, &e), PX_EFORMAT);
    assert_int_equal(phonepay_field48_parse("13812345678139876543X1", 22, 0, &f, &e), PX_EFORMAT);
}

static void test_name_mask(void **state)
{
    char out[PHONEPAY_NAME_MAX];
    (void)state;
    assert_int_equal(phonepay_name_mask("张三丰", out, sizeof out), PX_OK);
    assert_string_equal(out, "张*丰");
    assert_int_equal(phonepay_name_mask("李四", out, sizeof out), PX_OK);
    assert_string_equal(out, "李*");
    assert_int_equal(phonepay_name_mask("欧阳娜娜", out, sizeof out), PX_OK);
    assert_string_equal(out, "欧*娜娜");
    assert_int_equal(phonepay_name_mask("王", out, sizeof out), PX_OK);
    assert_string_equal(out, "王");
    assert_int_equal(phonepay_name_mask("Bob Li", out, sizeof out), PX_OK);
    assert_string_equal(out, "B*b Li");
    assert_int_equal(phonepay_name_mask("\xF0\x9F\x98\x80\xF0\x9F\x98\x81x", out, sizeof out),
                     PX_OK);
    assert_string_equal(out, "\xF0\x9F\x98\x80*x"); /* 4-byte code points */
    assert_int_equal(phonepay_name_mask("张\xE4\xB8", out, sizeof out), PX_EFORMAT);
    assert_int_equal(phonepay_name_mask("", out, sizeof out), PX_EFORMAT);
    assert_int_equal(phonepay_name_mask("张三丰", out, 4), PX_ETOOBIG);
}

static void test_name_valid(void **state)
{
    const char *why;
    char long_name[200];
    (void)state;
    assert_true(phonepay_name_is_valid("张三丰", &why));
    assert_true(phonepay_name_is_valid("Zhang San", &why));
    assert_false(phonepay_name_is_valid("", &why));
    assert_false(phonepay_name_is_valid(" 张三", &why));
    assert_false(phonepay_name_is_valid("张三 ", &why));
    assert_false(phonepay_name_is_valid("张\n三", &why));
    assert_string_equal(why, "must not contain control characters");
    assert_false(phonepay_name_is_valid("\xC0\xAF", &why)); /* overlong '/' */
    assert_string_equal(why, "is not valid UTF-8");
    assert_false(phonepay_name_is_valid("\xED\xA0\x80", &why)); /* a surrogate */
    memset(long_name, 'a', 33);
    long_name[33] = 0;
    assert_false(phonepay_name_is_valid(long_name, &why));
    long_name[32] = 0;
    assert_true(phonepay_name_is_valid(long_name, &why));
}

static void test_card_and_masks(void **state)
{
    char m[12], a[32];
    (void)state;
    assert_true(phonepay_pan_is_valid("6222021234567890128"));
    assert_true(phonepay_pan_is_valid("4111111111111111"));
    assert_false(phonepay_pan_is_valid("4111111111111112"));
    assert_false(phonepay_pan_is_valid("41111111111"));
    assert_false(phonepay_pan_is_valid("4111 1111 1111 1111"));
    phonepay_mobile_mask("13812345678", m);
    assert_string_equal(m, "138****5678");
    phonepay_amount_format(12345, a, sizeof a);
    assert_string_equal(a, "123.45");
    phonepay_amount_format(5, a, sizeof a);
    assert_string_equal(a, "0.05");
}

static void test_sms_url_and_webhook(void **state)
{
    phonepay_config c;
    px_buf b;
    px_error e = {0};
    (void)state;
    phonepay_config_default(&c);
    px_strlcpy(c.sms_url, "http://127.0.0.1:13013/cgi-bin/sendsms", sizeof c.sms_url);
    px_strlcpy(c.sms_username, "possum", sizeof c.sms_username);
    px_buf_init(&b, 4096);
    assert_int_equal(phonepay_sms_url(&c, "s3cret&x", "13812345678", "验证码 1", &b, &e), PX_OK);
    assert_string_equal(px_buf_str(&b),
                        "http://127.0.0.1:13013/cgi-bin/sendsms?username=possum&password=s3cret%26x"
                        "&to=13812345678&text=%E9%AA%8C%E8%AF%81%E7%A0%81%201"
                        "&charset=UTF-8&coding=2");
    px_buf_reset(&b);
    assert_int_equal(phonepay_webhook_body("otp:1:sms", "otp", "13812345678", "hi \"you\"", 7, &b,
                                           &e),
                     PX_OK);
    assert_string_equal(px_buf_str(&b), "{\"id\":\"otp:1:sms\",\"event\":\"otp\",\"to\":"
                                        "\"13812345678\",\"text\":\"hi \\\"you\\\"\","
                                        "\"created_ms\":7}");
    px_buf_free(&b);
}

#define HDR                                                                                        \
    "date,rrn,stan,type,pan_masked,amount_minor,currency,response,acquirer,terminal,"              \
    "merchant,payee_card_masked,payer_mobile\n"

static void test_clearing_good(void **state)
{
    const char *text = HDR
        "2026-03-01,000000000001,000001,purchase,622202******0128,10000,156,00,99900001,"
        "T0000001,M00000000000001,,\n"
        "2026-03-01,000000000002,000002,debit,622202******0128,5000,156,00,99900001,"
        "T0000001,M00000000000001,621700******0002,13987654321\n"
        "2026-03-01,000000000002,000003,credit,621700******0002,5000,156,00,,,\"\","
        "621700******0002,13987654321\n";
    phonepay_clearing c;
    px_error e = {0};
    (void)state;
    assert_int_equal(phonepay_clearing_parse(text, strlen(text), "2026-03-01", &c, &e), PX_OK);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.lines[0].type, "purchase"); /* sorted by (rrn, type) */
    assert_string_equal(c.lines[1].type, "credit");
    assert_string_equal(c.lines[2].type, "debit");
    assert_int_equal(c.lines[2].amount_minor, 5000);
    assert_int_equal(c.lines[2].lineno, 3);
    assert_string_equal(c.lines[2].payer_mobile, "13987654321");
    assert_string_equal(c.lines[2].payee_card_masked, "621700******0002");
    assert_int_equal(strlen(c.sha256), 64);
    phonepay_clearing_free(&c);
    assert_int_equal(phonepay_clearing_parse(HDR, strlen(HDR), "2026-03-01", &c, &e), PX_OK);
    assert_int_equal(c.n, 0);
    phonepay_clearing_free(&c);
}

static void expect_bad(const char *body, const char *needle)
{
    char text[2048];
    phonepay_clearing c;
    px_error e = {0};
    snprintf(text, sizeof text, "%s%s", HDR, body);
    if (phonepay_clearing_parse(text, strlen(text), "2026-03-01", &c, &e) == PX_OK)
        fail_msg("accepted: %s", body);
    if (strstr(e.msg, needle) == NULL)
        fail_msg("error \"%s\" does not say \"%s\"", e.msg, needle);
}

static void test_clearing_bad_lines(void **state)
{
    const char *ok =
        "2026-03-01,000000000001,000001,purchase,622202******0128,100,156,00,1,T1,M1,,\n";
    char two[512];
    (void)state;
    expect_bad("2026-03-02,000000000001,000001,purchase,622202******0128,100,156,00,1,T1,M1,,\n",
               "line 2: date");
    expect_bad("2026-03-01,00000000001,000001,purchase,622202******0128,100,156,00,1,T1,M1,,\n",
               "line 2: rrn");
    expect_bad("2026-03-01,000000000001,000001,refund,622202******0128,100,156,00,1,T1,M1,,\n",
               "line 2: type");
    expect_bad("2026-03-01,000000000001,000001,purchase,622202******0128,-5,156,00,1,T1,M1,,\n",
               "line 2: amount_minor");
    expect_bad("2026-03-01,000000000001,000001,purchase,622202******0128,0,156,00,1,T1,M1,,\n",
               "line 2: amount_minor");
    expect_bad("2026-03-01,000000000001,000001,purchase,6222021234567890128x,1,156,00,1,T1,M1,,\n",
               "line 2: pan_masked");
    expect_bad("2026-03-01,000000000001,000001,debit,622202******0128,1,156,00,1,T1,M1,,\n",
               "line 2: payer_mobile");
    expect_bad("2026-03-01,000000000001,000001,purchase,622202******0128,1,156,00,1,T1,M1,\n",
               "line 2: expected 13 fields");
    expect_bad("2026-03-01,000000000001,000001,purchase,622202******0128,1,156,00,1,T1,M1,,,\n",
               "line 2: expected 13 fields");
    expect_bad("2026-03-01,000000000001,000001,purchase,622202******0128,1,156,00,1,\"T1,M1,,\n",
               "line 2: field 10: unterminated quote");
    expect_bad("2026-03-01,000000000001,000001,purchase,622202******0128,1,156,00,1,T1,M1,,\r\n",
               "line 2: CR before LF");
    expect_bad("2026-03-01,000000000001,000001,purchase,622202******0128,1,156,00,1,T1,M1,,",
               "line 2: no LF");
    snprintf(two, sizeof two, "%s%s", ok, ok);
    expect_bad(two, "line 3: rrn 000000000001 type purchase repeats line 2");
    snprintf(two, sizeof two, "%sgarbage\n", ok);
    expect_bad(two, "line 3:");
}

static void test_clearing_bad_header(void **state)
{
    phonepay_clearing c;
    px_error e = {0};
    const char *t = "date,rrn\n";
    (void)state;
    assert_int_equal(phonepay_clearing_parse(t, strlen(t), "2026-03-01", &c, &e), PX_EFORMAT);
    assert_non_null(strstr(e.msg, "line 1"));
    assert_int_equal(phonepay_clearing_parse("", 0, "2026-03-01", &c, &e), PX_EFORMAT);
    assert_int_equal(phonepay_clearing_parse(HDR, strlen(HDR), "2026-3-1", &c, &e), PX_EINVAL);
    assert_int_equal(phonepay_clearing_load("/nonexistent/clearing.csv", "2026-03-01", &c, &e),
                     PX_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mobile_prefixes),
        cmocka_unit_test(test_mobile_shape),
        cmocka_unit_test(test_field48),
        cmocka_unit_test(test_name_mask),
        cmocka_unit_test(test_name_valid),
        cmocka_unit_test(test_card_and_masks),
        cmocka_unit_test(test_sms_url_and_webhook),
        cmocka_unit_test(test_clearing_good),
        cmocka_unit_test(test_clearing_bad_lines),
        cmocka_unit_test(test_clearing_bad_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
