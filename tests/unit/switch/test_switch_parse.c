/*
 * The switch's request parser (sw_req_parse): every message type classified, every field a
 * flow uses checked, and the refusals named (they become response code 30); the request
 * identity (rkey and its batch range) and the request hash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/switch/sw_int.h"

static const uint8_t tpdu[5] = {0x60, 0x00, 0x01, 0x00, 0x00};
static const uint8_t hdr[6] = {0x60, 0x31, 0x00, 0x31, 0x00, 0x00};

static void begin(iso8583_msg *m, const char *mti, const char *f60)
{
    iso8583_msg_init(m, &iso8583_unionpay_pos);
    assert_int_equal(iso8583_set_tpdu(m, tpdu, 5, NULL), 0);
    assert_int_equal(iso8583_set_header(m, hdr, 6, NULL), 0);
    assert_int_equal(iso8583_set_mti(m, mti, NULL), 0);
    assert_int_equal(iso8583_set(m, 11, "000123", NULL), 0);
    assert_int_equal(iso8583_set(m, 41, "10000001", NULL), 0);
    assert_int_equal(iso8583_set(m, 42, "898100000000001", NULL), 0);
    if (f60)
        assert_int_equal(iso8583_set(m, 60, f60, NULL), 0);
}

static void card(iso8583_msg *m, const char *proc, const char *amount)
{
    static const uint8_t pin[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(iso8583_set(m, 2, "6222020000000007", NULL), 0);
    assert_int_equal(iso8583_set(m, 3, proc, NULL), 0);
    if (amount)
        assert_int_equal(iso8583_set(m, 4, amount, NULL), 0);
    assert_int_equal(iso8583_set(m, 22, "021", NULL), 0);
    assert_int_equal(iso8583_set_bin(m, 52, pin, 8, NULL), 0);
    assert_int_equal(iso8583_set(m, 53, "2600000000000000", NULL), 0);
}

/* Pack m with a MAC field, unpack, parse. Returns sw_req_parse's code; r is filled. */
static int parse(iso8583_msg *m, sw_req *r, uint8_t *buf, size_t cap, px_error *e)
{
    static const uint8_t mac[8] = {0};
    size_t n = 0;
    assert_int_equal(iso8583_set_bin(m, 64, mac, 8, NULL), 0);
    assert_int_equal(iso8583_pack(&iso8583_unionpay_pos, m, buf, cap, &n, NULL), 0);
    memset(r, 0, sizeof *r);
    assert_int_equal(iso8583_unpack(&iso8583_unionpay_pos, buf, n, &r->msg, NULL), 0);
    r->raw = buf;
    r->rawlen = n;
    return sw_req_parse(r, e);
}

static void test_purchase(void **state)
{
    iso8583_msg m;
    uint8_t buf[PX_ISO_MSG_MAX];
    sw_req *r = malloc(sizeof *r);
    px_error e = {0};
    (void)state;
    begin(&m, "0200", "22000005000");
    card(&m, "000000", "000000001234");
    assert_int_equal(parse(&m, r, buf, sizeof buf, &e), 0);
    assert_int_equal(r->type, SW_T_PURCHASE);
    assert_true(r->maced);
    assert_int_equal(r->amount, 1234);
    assert_int_equal(r->batch, 5);
    assert_string_equal(r->f60_type, "22");
    assert_string_equal(r->pan, "6222020000000007");
    assert_string_equal(r->pan_masked, "622202******0007");
    assert_true(r->has_pin);
    assert_int_equal(r->mac_len + r->mac_off + 8, r->rawlen); /* the MAC is last */
    /* the hash covers MTI to field 63: a MAC change does not change it, a field does */
    {
        uint8_t h1[32];
        sw_req *r2 = malloc(sizeof *r2);
        memcpy(h1, r->hash, 32);
        buf[r->rawlen - 1] ^= 0xFF;
        memset(r2, 0, sizeof *r2);
        assert_int_equal(iso8583_unpack(&iso8583_unionpay_pos, buf, r->rawlen, &r2->msg, NULL), 0);
        r2->raw = buf;
        r2->rawlen = r->rawlen;
        assert_int_equal(sw_req_parse(r2, &e), 0);
        assert_memory_equal(h1, r2->hash, 32);
        begin(&m, "0200", "22000005000");
        card(&m, "000000", "000000001235");
        assert_int_equal(parse(&m, r2, buf, sizeof buf, &e), 0);
        assert_memory_not_equal(h1, r2->hash, 32);
        free(r2);
    }
    free(r);
}

static void test_refusals_name_the_field(void **state)
{
    static const struct {
        const char *mti, *proc, *amount, *f60, *want;
        int drop, extra;
    } cases[] = {
        {"0200", "000000", NULL, "22000001000", "field 4", 0, 0},
        {"0200", "000000", "000000000100", NULL, "field 60", 0, 0},
        {"0200", "000000", "000000000100", "2200", "field 60", 0, 0},
        {"0200", "000000", "000000000100", "22000001000", "field 2 or 35", 2, 0},
        {"0200", "000000", "000000000100", "22000001000", "field 53", 53, 0},
        {"0200", "200000", "000000000100", "23000001000", "field 37", 0, 0},
        {"0500", NULL, NULL, "00000001201", "field 48", 0, 0},
        {"0320", NULL, NULL, "00000001201", "field 48", 0, 1},
        {"0100", "380000", "000000000100", "81000001000", "field 48", 0, 0},
        {"0200", "000000", "000000000100", "22000001000", "fields 11, 41, 42: 41", 41, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        iso8583_msg m;
        uint8_t buf[PX_ISO_MSG_MAX];
        sw_req *r = malloc(sizeof *r);
        px_error e = {0};
        begin(&m, cases[i].mti, cases[i].f60);
        if (cases[i].proc != NULL)
            card(&m, cases[i].proc, cases[i].amount);
        if (cases[i].drop)
            iso8583_clear(&m, cases[i].drop);
        if (cases[i].extra) /* upload: a count that does not match its entries */
            assert_int_equal(iso8583_set(&m, 48, "02000001000000000100000000", NULL), 0);
        if (parse(&m, r, buf, sizeof buf, &e) == 0)
            fail_msg("case %zu: accepted", i);
        assert_int_equal(e.code, PX_EFORMAT);
        if (strstr(e.msg, cases[i].want) == NULL)
            fail_msg("case %zu: '%s' does not name '%s'", i, e.msg, cases[i].want);
        free(r);
    }
}

static void test_settlement_upload_void_reversal(void **state)
{
    iso8583_msg m;
    uint8_t buf[PX_ISO_MSG_MAX];
    sw_req *r = malloc(sizeof *r);
    px_error e = {0};
    (void)state;
    begin(&m, "0500", "00000007201");
    assert_int_equal(iso8583_set(&m, 48,
                                 "00200000000300000100000000050000000000000000000000000000000000",
                                 NULL),
                     0);
    assert_int_equal(parse(&m, r, buf, sizeof buf, &e), 0);
    assert_int_equal(r->type, SW_T_SETTLE);
    assert_int_equal(r->settle_dom.debit_count, 2);
    assert_int_equal(r->settle_dom.debit_amount, 3000);
    assert_int_equal(r->settle_dom.credit_count, 1);
    assert_int_equal(r->settle_dom.credit_amount, 500);
    begin(&m, "0320", "00000007202");
    assert_int_equal(iso8583_set(&m, 48, "02000001000000001000000000000002000000002000200000",
                                 NULL),
                     0);
    assert_int_equal(parse(&m, r, buf, sizeof buf, &e), 0);
    assert_int_equal(r->type, SW_T_UPLOAD);
    assert_int_equal(r->nupload, 2);
    assert_string_equal(r->upload[1].stan, "000002");
    assert_int_equal(r->upload[1].amount, 2000);
    assert_string_equal(r->upload[1].proc, "200000");
    begin(&m, "0200", "23000007000");
    card(&m, "200000", "000000001000");
    assert_int_equal(iso8583_set(&m, 37, "000000012345", NULL), 0);
    assert_int_equal(iso8583_set(&m, 61, "000006000042", NULL), 0);
    assert_int_equal(parse(&m, r, buf, sizeof buf, &e), 0);
    assert_int_equal(r->type, SW_T_VOID);
    assert_int_equal(r->orig_batch, 6);
    assert_string_equal(r->orig_stan, "000042");
    assert_string_equal(r->orig_rrn, "000000012345");
    begin(&m, "0400", "22000007000");
    card(&m, "000000", "000000001000");
    assert_int_equal(parse(&m, r, buf, sizeof buf, &e), 0);
    assert_int_equal(r->type, SW_T_REVERSAL);
    assert_string_equal(r->rev_reason, "06"); /* no 39: "other" */
    begin(&m, "0800", "00000000003");
    assert_int_equal(parse(&m, r, buf, sizeof buf, &e), 0);
    assert_int_equal(r->type, SW_T_SIGNON);
    assert_false(r->maced);
    begin(&m, "0820", "00000000301");
    assert_int_equal(parse(&m, r, buf, sizeof buf, &e), 0);
    assert_int_equal(r->type, SW_T_ECHO);
    begin(&m, "0200", "22000007000");
    card(&m, "990000", "000000001000");
    assert_int_equal(parse(&m, r, buf, sizeof buf, &e), 0);
    assert_int_equal(r->type, SW_T_OTHER);
    free(r);
}

static void test_rkey_and_batch_range(void **state)
{
    char k[SW_RKEY_MAX], lo[SW_RKEY_MAX], hi[SW_RKEY_MAX];
    (void)state;
    sw_rkey(k, "10000001", "898100000000001", "000123", 5, "20261122", 'F');
    assert_string_equal(k, "10000001|000005|20261122|F|000123|898100000000001");
    sw_rkey_range(lo, hi, "10000001", 5, "20261122", 'F');
    assert_true(strcmp(lo, k) < 0 && strcmp(k, hi) < 0);
    sw_rkey(k, "10000001", "898100000000001", "000123", 5, "20261122", 'R');
    assert_false(strcmp(lo, k) < 0 && strcmp(k, hi) < 0);
    sw_rkey(k, "10000001", "898100000000001", "000123", 6, "20261122", 'F');
    assert_false(strcmp(lo, k) < 0 && strcmp(k, hi) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_purchase),
        cmocka_unit_test(test_refusals_name_the_field),
        cmocka_unit_test(test_settlement_upload_void_reversal),
        cmocka_unit_test(test_rkey_and_batch_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
