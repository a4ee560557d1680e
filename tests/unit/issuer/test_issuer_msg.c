/*
 * test_issuer_msg.c: the issuer's pure parts: the request parser (every field a handler
 * relies on, and the refusals beside them), Luhn, mobile numbers, expiry, BIN ranges,
 * fields 54 and 90, and the clearing file's CSV lines (docs/switch-protocol.md §2, §3).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "host/issuer/issuer_int.h"
#include "lib/buf.h"
#include "lib/str.h"
#include "lib/time.h"

/* A purchase as the switch sends it (§2): 2, 3, 4, 7, 11, 14, 22, 25, 32, 37, 41, 42, 49, 52. */
static void purchase(iso8583_msg *m)
{
    static const uint8_t pin[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    iso8583_msg_init(m, &iso8583_1987_ascii);
    assert_int_equal(iso8583_set_mti(m, "0200", NULL), PX_OK);
    assert_int_equal(iso8583_set(m, 2, "6222020000000007", NULL), PX_OK);
    assert_int_equal(iso8583_set(m, 3, "000000", NULL), PX_OK);
    assert_int_equal(iso8583_set(m, 4, "000000012345", NULL), PX_OK);
    assert_int_equal(iso8583_set(m, 7, "1122101530", NULL), PX_OK);
    assert_int_equal(iso8583_set(m, 11, "000042", NULL), PX_OK);
    assert_int_equal(iso8583_set(m, 14, "3012", NULL), PX_OK);
    assert_int_equal(iso8583_set(m, 22, "021", NULL), PX_OK);
    assert_int_equal(iso8583_set(m, 25, "00", NULL), PX_OK);
    assert_int_equal(iso8583_set(m, 32, "00012345678", NULL), PX_OK);
    assert_int_equal(iso8583_set(m, 37, "632600000042", NULL), PX_OK);
    assert_int_equal(iso8583_set(m, 41, "10000001", NULL), PX_OK);
    assert_int_equal(iso8583_set(m, 42, "898100000000001", NULL), PX_OK);
    assert_int_equal(iso8583_set(m, 49, "156", NULL), PX_OK);
    assert_int_equal(iso8583_set_bin(m, 52, pin, 8, NULL), PX_OK);
}

static void t_parse_purchase(void **state)
{
    iso8583_msg m;
    issuer_req r;
    px_error e = {0};
    (void)state;
    purchase(&m);
    assert_int_equal(issuer_req_parse(&m, &r, &e), PX_OK);
    assert_int_equal(r.kind, ISSUER_K_PURCHASE);
    assert_string_equal(r.pan, "6222020000000007");
    assert_string_equal(r.expiry, "3012");
    assert_int_equal(r.amount_minor, 12345);
    assert_string_equal(r.tx_time, "1122101530");
    assert_string_equal(r.stan, "000042");
    assert_string_equal(r.acquirer, "12345678"); /* compared as a number with field 90 */
    assert_string_equal(r.rrn, "632600000042");
    assert_string_equal(r.terminal, "10000001");
    assert_string_equal(r.currency, "156");
    assert_true(r.has_pin);
    assert_int_equal(r.pin_block[7], 8);
    issuer_req_cleanse(&r);
    assert_string_equal(r.pan, "");
}

static void t_parse_track2_card(void **state)
{
    iso8583_msg m;
    issuer_req r;
    px_error e = {0};
    (void)state;
    purchase(&m);
    iso8583_clear(&m, 2);
    iso8583_clear(&m, 14);
    assert_int_equal(iso8583_set(&m, 35, "6217000000000006=30121010000000000", NULL), PX_OK);
    assert_int_equal(issuer_req_parse(&m, &r, &e), PX_OK);
    assert_string_equal(r.pan, "6217000000000006");
    assert_string_equal(r.expiry, "3012");
    /* a track without an expiry after the separator is a format error naming field 35 */
    assert_int_equal(iso8583_set(&m, 35, "6217000000000006=30", NULL), PX_OK);
    assert_int_equal(issuer_req_parse(&m, &r, &e), PX_EFORMAT);
    assert_non_null(strstr(e.msg, "field 35"));
    assert_null(strstr(e.msg, "6217000000000006"));
}

/* Each mandatory field missing, in turn, is a format error that names it. */
static void t_parse_missing_fields(void **state)
{
    static const int fields[] = {7, 11, 32, 37, 41, 42, 4};
    (void)state;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        iso8583_msg m;
        issuer_req r;
        px_error e = {0};
        char want[16];
        purchase(&m);
        iso8583_clear(&m, fields[i]);
        assert_int_equal(issuer_req_parse(&m, &r, &e), PX_EFORMAT);
        snprintf(want, sizeof want, "field %d", fields[i]);
        assert_non_null(strstr(e.msg, want));
    }
}

static void t_parse_bad_values(void **state)
{
    iso8583_msg m;
    issuer_req r;
    px_error e = {0};
    (void)state;
    purchase(&m);
    assert_int_equal(iso8583_set(&m, 7, "1322101530", NULL), PX_OK); /* month 13 */
    assert_int_equal(issuer_req_parse(&m, &r, &e), PX_EFORMAT);
    assert_non_null(strstr(e.msg, "field 7"));
    purchase(&m);
    iso8583_clear(&m, 2);
    assert_int_equal(issuer_req_parse(&m, &r, &e), PX_EFORMAT);
    assert_non_null(strstr(e.msg, "field 2 or 35"));
    purchase(&m);
    assert_int_equal(iso8583_set(&m, 2, "62220200", NULL), PX_OK); /* 8 digits */
    assert_int_equal(issuer_req_parse(&m, &r, &e), PX_EFORMAT);
}

static void t_parse_kinds(void **state)
{
    iso8583_msg m;
    issuer_req r;
    px_error e = {0};
    (void)state;
    purchase(&m);
    assert_int_equal(iso8583_set(&m, 3, "310000", NULL), PX_OK);
    iso8583_clear(&m, 4);
    assert_int_equal(issuer_req_parse(&m, &r, &e), PX_OK);
    assert_int_equal(r.kind, ISSUER_K_BALANCE);
    assert_int_equal(r.amount_minor, -1);
    assert_int_equal(iso8583_set(&m, 3, "999999", NULL), PX_OK);
    assert_int_equal(issuer_req_parse(&m, &r, &e), PX_EUNSUPPORTED);
    assert_non_null(strstr(e.msg, "processing code 999999"));
    assert_int_equal(iso8583_set_mti(&m, "0100", NULL), PX_OK);
    assert_int_equal(issuer_req_parse(&m, &r, &e), PX_EUNSUPPORTED);
    assert_non_null(strstr(e.msg, "MTI 0100"));
    /* a void needs field 90 */
    purchase(&m);
    assert_int_equal(iso8583_set(&m, 3, "200000", NULL), PX_OK);
    assert_int_equal(issuer_req_parse(&m, &r, &e), PX_EFORMAT);
    assert_non_null(strstr(e.msg, "field 90"));
    assert_int_equal(iso8583_set(&m, 90, "020000004111221015300001234567800000000000", NULL),
                     PX_OK);
    assert_int_equal(issuer_req_parse(&m, &r, &e), PX_OK);
    assert_int_equal(r.kind, ISSUER_K_VOID);
    assert_string_equal(r.orig.stan, "000041");
    assert_string_equal(r.orig.acquirer, "12345678");
}

static void t_parse_reversal_repeat(void **state)
{
    iso8583_msg m;
    issuer_req r;
    px_error e = {0};
    (void)state;
    purchase(&m);
    assert_int_equal(iso8583_set_mti(&m, "0421", NULL), PX_OK);
    assert_int_equal(iso8583_set(&m, 39, "98", NULL), PX_OK);
    iso8583_clear(&m, 41);
    iso8583_clear(&m, 37);
    assert_int_equal(issuer_req_parse(&m, &r, &e), PX_OK);
    assert_int_equal(r.kind, ISSUER_K_REVERSAL);
    assert_string_equal(r.mti, "0421");
    assert_string_equal(r.mti_class, "0420"); /* a repeat shares its original's key */
    assert_int_equal(r.has_orig, 0);
}

static void t_parse_mobile(void **state)
{
    iso8583_msg m;
    issuer_req r;
    px_error e = {0};
    (void)state;
    purchase(&m);
    assert_int_equal(iso8583_set(&m, 3, "400000", NULL), PX_OK);
    assert_int_equal(issuer_req_parse(&m, &r, &e), PX_EFORMAT);
    assert_non_null(strstr(e.msg, "field 48"));
    assert_int_equal(iso8583_set(&m, 48, "1380013800013900139000", NULL), PX_OK);
    assert_int_equal(issuer_req_parse(&m, &r, &e), PX_EFORMAT);
    assert_non_null(strstr(e.msg, "field 103"));
    assert_int_equal(iso8583_set(&m, 103, "6217000000000006", NULL), PX_OK);
    assert_int_equal(issuer_req_parse(&m, &r, &e), PX_OK);
    assert_int_equal(r.kind, ISSUER_K_MOBILE_DEBIT);
    assert_string_equal(r.payee_mobile, "13800138000");
    assert_string_equal(r.payer_mobile, "13900139000");
    assert_string_equal(r.payee_card, "6217000000000006");
    assert_int_equal(iso8583_set(&m, 48, "1280013800013900139000", NULL), PX_OK); /* 12... */
    assert_int_equal(issuer_req_parse(&m, &r, &e), PX_EFORMAT);
    assert_int_equal(iso8583_set(&m, 48, "1380013800013900139000", NULL), PX_OK);
    assert_int_equal(iso8583_set(&m, 103, "6217000000000007", NULL), PX_OK); /* Luhn */
    assert_int_equal(issuer_req_parse(&m, &r, &e), PX_EFORMAT);
}

static void t_parse_credit_and_netmgmt(void **state)
{
    iso8583_msg m;
    issuer_req r;
    px_error e = {0};
    (void)state;
    iso8583_msg_init(&m, &iso8583_1987_ascii);
    assert_int_equal(iso8583_set_mti(&m, "0220", NULL), PX_OK);
    assert_int_equal(iso8583_set(&m, 2, "6217000000000006", NULL), PX_OK);
    assert_int_equal(iso8583_set(&m, 3, "210000", NULL), PX_OK);
    assert_int_equal(iso8583_set(&m, 4, "000000001000", NULL), PX_OK);
    assert_int_equal(iso8583_set(&m, 7, "1122101530", NULL), PX_OK);
    assert_int_equal(iso8583_set(&m, 11, "000077", NULL), PX_OK);
    assert_int_equal(iso8583_set(&m, 37, "632600000042", NULL), PX_OK);
    assert_int_equal(iso8583_set(&m, 48, "13900139000", NULL), PX_OK);
    assert_int_equal(issuer_req_parse(&m, &r, &e), PX_OK); /* 32 may be absent on 0220 */
    assert_int_equal(r.kind, ISSUER_K_CREDIT);
    assert_string_equal(r.acquirer, "");
    assert_string_equal(r.payer_mobile, "13900139000");
    iso8583_msg_init(&m, &iso8583_1987_ascii);
    assert_int_equal(iso8583_set_mti(&m, "0800", NULL), PX_OK);
    assert_int_equal(iso8583_set(&m, 7, "1122101530", NULL), PX_OK);
    assert_int_equal(iso8583_set(&m, 11, "000001", NULL), PX_OK);
    assert_int_equal(issuer_req_parse(&m, &r, &e), PX_EFORMAT);
    assert_non_null(strstr(e.msg, "field 70"));
    assert_int_equal(iso8583_set(&m, 70, "301", NULL), PX_OK);
    assert_int_equal(issuer_req_parse(&m, &r, &e), PX_OK);
    assert_int_equal(r.kind, ISSUER_K_NETMGMT);
    assert_string_equal(r.nmi, "301");
}

static void t_luhn_mobile_expiry(void **state)
{
    int64_t ms;
    (void)state;
    assert_true(issuer_pan_is_valid("6222020000000007"));
    assert_true(issuer_pan_is_valid("6222021234567890128"));
    assert_true(issuer_pan_is_valid("4111111111111111"));
    assert_false(issuer_pan_is_valid("4111111111111112"));
    assert_false(issuer_pan_is_valid("41111111111"));          /* 11 digits */
    assert_false(issuer_pan_is_valid("41111111111111111113")); /* 20 digits */
    assert_false(issuer_pan_is_valid("411111111111111a"));
    assert_true(issuer_mobile_is_valid("13800138000"));
    assert_false(issuer_mobile_is_valid("12800138000"));
    assert_false(issuer_mobile_is_valid("1380013800"));
    assert_false(issuer_mobile_is_valid("1380013800a"));
    assert_int_equal(px_time_parse_date("2026-11-22", &ms), PX_OK);
    assert_false(issuer_expiry_is_past("2611", ms)); /* valid through November */
    assert_true(issuer_expiry_is_past("2610", ms));
    assert_false(issuer_expiry_is_past("3012", ms));
    assert_true(issuer_expiry_is_past("26", ms));
}

static void t_bin_ranges(void **state)
{
    (void)state;
    assert_true(issuer_bin_matches("6222020000000007", "622202", "622202"));
    assert_false(issuer_bin_matches("6222030000000007", "622202", "622202"));
    assert_true(issuer_bin_matches("6222025555000007", "62220250000", "62220259999"));
    assert_false(issuer_bin_matches("6222024999000007", "62220250000", "62220259999"));
    assert_false(issuer_bin_matches("6222020000000007", "62220", "62220"));    /* 5 digits */
    assert_false(issuer_bin_matches("6222020000000007", "622202", "6222029")); /* lengths */
    assert_false(issuer_bin_range_is_valid("622209", "622201"));
    assert_true(issuer_bin_range_is_valid("622200", "622209"));
}

static void t_field54_and_90(void **state)
{
    char f54[21];
    issuer_orig o;
    px_error e = {0};
    (void)state;
    issuer_field54("156", 1000000, f54);
    assert_string_equal(f54, "1002156C000001000000");
    issuer_field54("156", 0, f54);
    assert_string_equal(f54, "1002156C000000000000");
    assert_int_equal(issuer_orig_parse("020000004211221015300001234567800000000099", &o, &e),
                     PX_OK);
    assert_string_equal(o.mti, "0200");
    assert_string_equal(o.stan, "000042");
    assert_string_equal(o.tx_time, "1122101530");
    assert_string_equal(o.acquirer, "00012345678");
    assert_string_equal(o.forwarding, "00000000099");
    assert_int_equal(issuer_orig_parse("0200", &o, &e), PX_EFORMAT);
    assert_non_null(strstr(e.msg, "field 90"));
}

static void t_ibm_validation_data(void **state)
{
    char vd[13];
    (void)state;
    issuer_ibm_validation_data("6217000000000006", vd);
    assert_string_equal(vd, "700000000000"); /* 12 digits left of the check digit */
    issuer_ibm_validation_data("6222021234567890128", vd);
    assert_string_equal(vd, "123456789012");
}

#define SET(f, v) px_strlcpy(en.f, v, sizeof en.f)

static void t_csv_lines(void **state)
{
    issuer_entry en;
    px_buf b;
    (void)state;
    px_buf_init(&b, 4096);
    memset(&en, 0, sizeof en);
    SET(business_date, "2026-11-22");
    SET(rrn, "632600000042");
    SET(stan, "000042");
    SET(type, "debit");
    SET(pan_masked, "622202******0007");
    en.amount_minor = 12345;
    SET(currency, "156");
    SET(response, "00");
    SET(acquirer, "12345678");
    SET(terminal, "10000001");
    SET(merchant, "8981,\"shop\"");
    SET(payee_card_masked, "621700******0006");
    SET(payer_mobile, "13900139000");
    assert_int_equal(issuer_clearing_line(&b, &en), PX_OK);
    assert_string_equal(px_buf_str(&b),
                        "2026-11-22,632600000042,000042,debit,622202******0007,12345,156,00,"
                        "12345678,10000001,\"8981,\"\"shop\"\"\",621700******0006,13900139000\n");
    px_buf_free(&b);
    assert_string_equal(ISSUER_CLEARING_HEADER,
                        "date,rrn,stan,type,pan_masked,amount_minor,currency,response,acquirer,"
                        "terminal,merchant,payee_card_masked,payer_mobile");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_parse_purchase),
        cmocka_unit_test(t_parse_track2_card),
        cmocka_unit_test(t_parse_missing_fields),
        cmocka_unit_test(t_parse_bad_values),
        cmocka_unit_test(t_parse_kinds),
        cmocka_unit_test(t_parse_reversal_repeat),
        cmocka_unit_test(t_parse_mobile),
        cmocka_unit_test(t_parse_credit_and_netmgmt),
        cmocka_unit_test(t_luhn_mobile_expiry),
        cmocka_unit_test(t_bin_ranges),
        cmocka_unit_test(t_field54_and_90),
        cmocka_unit_test(t_ibm_validation_data),
        cmocka_unit_test(t_csv_lines),
    };
    return cmocka_run_group_tests_name("issuer_msg", tests, NULL, NULL);
}
