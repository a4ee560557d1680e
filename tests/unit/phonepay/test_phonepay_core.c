/* test_phonepay_core.c: cards at rest, one-time codes, payee registration and card change,
 * sessions, the lookup with its rate limits, and the payment steps the switch drives. */
#include "pp_fixture.h"
#include "net/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAYEE "13812345678"
#define PAYER "13987654321"
#define CARD "6217000000000000004"
#define CARD2 "6228480000000000018"
#define PAYER_PAN "6222021234567890128"

static int contains(const uint8_t *p, size_t n, const char *s)
{
    size_t k = strlen(s);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(p + i, s, k) == 0)
            return 1;
    return 0;
}

static int setup(void **state)
{
    static pp_fixture f;
    pp_setup(&f, "phonepay-core", NULL);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    pp_teardown(*state);
    return 0;
}

static void test_card_seal_open(void **state)
{
    pp_fixture *f = *state;
    phonepay_card_sealed c;
    char pan[PHONEPAY_PAN_MAX];
    px_error e = {0};
    assert_int_equal(phonepay_card_seal(f->pp, PAYEE, CARD, &c, &e), PX_OK);
    assert_string_equal(c.masked, "621700*********0004");
    assert_false(contains(c.enc, sizeof c.enc, CARD));
    assert_int_equal(phonepay_card_open(f->pp, PAYEE, c.enc, sizeof c.enc, c.mac, sizeof c.mac, pan,
                                        &e),
                     PX_OK);
    assert_string_equal(pan, CARD);
    /* moved to another number, or altered: refused */
    assert_int_equal(phonepay_card_open(f->pp, PAYER, c.enc, sizeof c.enc, c.mac, sizeof c.mac, pan,
                                        &e),
                     PX_EAUTH);
    assert_string_equal(pan, "");
    c.enc[20] ^= 1;
    assert_int_equal(phonepay_card_open(f->pp, PAYEE, c.enc, sizeof c.enc, c.mac, sizeof c.mac, pan,
                                        &e),
                     PX_EAUTH);
    assert_null(strstr(e.msg, CARD));
    assert_int_equal(phonepay_card_seal(f->pp, PAYEE, "4111111111111112", &c, &e), PX_EINVAL);
}

static void test_otp(void **state)
{
    pp_fixture *f = *state;
    char code[7], wrong[7];
    uint8_t salt[PHONEPAY_SALT_LEN], digest[PHONEPAY_MAC_LEN];
    px_error e = {0};
    assert_int_equal(phonepay_otp_new(f->pp, PAYEE, code, salt, digest, &e), PX_OK);
    assert_int_equal(strlen(code), 6);
    assert_int_equal(phonepay_otp_check(f->pp, PAYEE, code, salt, sizeof salt, digest,
                                        sizeof digest, &e),
                     PX_OK);
    px_strlcpy(wrong, code, sizeof wrong);
    wrong[5] = wrong[5] == '9' ? '0' : (char)(wrong[5] + 1);
    assert_int_equal(phonepay_otp_check(f->pp, PAYEE, wrong, salt, sizeof salt, digest,
                                        sizeof digest, &e),
                     PX_EAUTH);
    assert_int_equal(phonepay_otp_check(f->pp, PAYER, code, salt, sizeof salt, digest,
                                        sizeof digest, &e),
                     PX_EAUTH);
    assert_int_equal(phonepay_otp_check(f->pp, PAYEE, "12345", salt, sizeof salt, digest,
                                        sizeof digest, &e),
                     PX_EFORMAT);
}

static void test_rate_windows(void **state)
{
    pp_fixture *f = *state;
    int64_t n = 0;
    px_error e = {0};
    for (int i = 1; i <= 3; i++) {
        assert_int_equal(phonepay_rate_hit(f->st, "t:X", 1000500, 1000, &n, &e), PX_OK);
        assert_int_equal(n, i);
    }
    assert_int_equal(phonepay_rate_peek(f->st, "t:X", 1000999, 1000, &n, &e), PX_OK);
    assert_int_equal(n, 3);
    assert_int_equal(phonepay_rate_peek(f->st, "t:X", 1001000, 1000, &n, &e), PX_OK);
    assert_int_equal(n, 0); /* a new window */
    assert_int_equal(phonepay_rate_hit(f->st, "t:X", 1001000, 1000, &n, &e), PX_OK);
    assert_int_equal(n, 1);
}

static void test_register_confirm(void **state)
{
    pp_fixture *f = *state;
    phonepay_payee_view v;
    char code[7], token[65], bad[7];
    px_error e = {0};
    assert_int_equal(phonepay_payee_register(f->pp, "张三丰", PAYEE, CARD, &v, &e), PX_OK);
    assert_string_equal(v.status, "pending");
    assert_string_equal(v.card_masked, "621700*********0004");
    assert_true(v.otp_expires_ms > 0);
    assert_int_equal(pp_int(f, "SELECT COUNT(*) FROM phonepay_outbox WHERE event = 'otp'"), 1);
    pp_last_code(f, PAYEE, code);
    px_strlcpy(bad, code, sizeof bad);
    bad[0] = bad[0] == '0' ? '1' : '0';
    assert_int_equal(phonepay_payee_confirm(f->pp, PAYEE, bad, &v, token, &e), PX_EAUTH);
    assert_non_null(strstr(e.msg, "4 tries left"));
    assert_int_equal(phonepay_payee_confirm(f->pp, PAYEE, code, &v, token, &e), PX_OK);
    assert_string_equal(v.status, "active");
    assert_int_equal(strlen(token), 64);
    assert_int_equal(phonepay_session_check(f->pp, PAYEE, token, &e), PX_OK);
    assert_int_equal(phonepay_session_check(f->pp, PAYER, token, &e), PX_EPERM);
    assert_int_equal(phonepay_session_check(f->pp, PAYEE, NULL, &e), PX_EAUTH);
    /* used once */
    assert_int_equal(phonepay_payee_confirm(f->pp, PAYEE, code, &v, token, &e), PX_ENOTFOUND);
    /* registered already */
    assert_int_equal(phonepay_payee_register(f->pp, "张三丰", PAYEE, CARD, &v, &e), PX_EEXIST);
    /* bad input names the field */
    assert_int_equal(phonepay_payee_register(f->pp, "张三", "12345678901", CARD, &v, &e),
                     PX_EINVAL);
    assert_non_null(strstr(e.msg, "mobile"));
    assert_int_equal(phonepay_payee_register(f->pp, "张三", PAYER, "123", &v, &e), PX_EINVAL);
    assert_non_null(strstr(e.msg, "card"));
    /* no clear card anywhere in the database rows */
    assert_int_equal(pp_int(f, "SELECT COUNT(*) FROM phonepay_payee WHERE card_masked LIKE "
                               "'%0000000000%'"),
                     0);
}

static void test_wrong_codes_void_challenge(void **state)
{
    pp_fixture *f = *state;
    phonepay_payee_view v;
    char code[7], bad[7], token[65];
    px_error e = {0};
    assert_int_equal(phonepay_payee_register(f->pp, "李四", PAYER, CARD, &v, &e), PX_OK);
    pp_last_code(f, PAYER, code);
    px_strlcpy(bad, code, sizeof bad);
    bad[5] = bad[5] == '0' ? '1' : '0';
    for (int i = 0; i < 5; i++)
        assert_int_equal(phonepay_payee_confirm(f->pp, PAYER, bad, &v, token, &e), PX_EAUTH);
    assert_non_null(strstr(e.msg, "no tries left"));
    assert_int_equal(phonepay_payee_confirm(f->pp, PAYER, code, &v, token, &e), PX_ENOTFOUND);
}

static void test_card_change(void **state)
{
    pp_fixture *f = *state;
    phonepay_payee_view v;
    char code[7], token[65];
    px_error e = {0};
    pp_add_payee(f, "张三丰", PAYEE, CARD);
    assert_int_equal(phonepay_payee_card_update(f->pp, PAYEE, CARD2, &v, &e), PX_OK);
    assert_string_equal(v.card_masked, "621700*********0004"); /* not yet */
    assert_string_equal(v.pending_card_masked, "622848*********0018");
    pp_last_code(f, PAYEE, code);
    assert_int_equal(phonepay_payee_confirm(f->pp, PAYEE, code, &v, token, &e), PX_OK);
    assert_string_equal(v.card_masked, "622848*********0018");
    assert_string_equal(v.pending_card_masked, "");
    assert_int_equal(phonepay_payee_card_update(f->pp, PAYER, CARD2, &v, &e), PX_ENOTFOUND);
}

static void test_otp_send_limit(void **state)
{
    pp_fixture *f = *state;
    phonepay_payee_view v;
    px_error e = {0};
    pp_add_payee(f, "张三丰", PAYEE, CARD); /* 1 code */
    for (int i = 0; i < 4; i++)
        assert_int_equal(phonepay_payee_login(f->pp, PAYEE, &v, &e), PX_OK);
    assert_int_equal(phonepay_payee_login(f->pp, PAYEE, &v, &e), PX_ELIMIT);
}

static void test_lookup(void **state)
{
    pp_fixture *f = *state;
    phonepay_lookup_result r;
    px_error e = {0};
    pp_add_payee(f, "张三丰", PAYEE, CARD);
    assert_int_equal(phonepay_lookup(f->pp, "T0000001", PAYEE, PAYER, 10000, &r, &e), PX_OK);
    assert_string_equal(r.response_code, "00");
    assert_string_equal(r.masked_name, "张*丰");
    assert_int_equal(strlen(r.reference), 12);
    assert_int_equal(phonepay_lookup(f->pp, "T0000001", "12312345678", PAYER, 100, &r, &e), PX_OK);
    assert_string_equal(r.response_code, "Q1");
    assert_non_null(strstr(r.text, "收款人手机号无效"));
    assert_int_equal(phonepay_lookup(f->pp, "T0000001", PAYEE, "1398765432", 100, &r, &e), PX_OK);
    assert_string_equal(r.response_code, "Q1");
    assert_non_null(strstr(r.text, "付款人"));
    assert_int_equal(phonepay_lookup(f->pp, "T0000001", "13912345678", PAYER, 100, &r, &e), PX_OK);
    assert_string_equal(r.response_code, "Q2");
    assert_string_equal(r.masked_name, "");
    assert_int_equal(phonepay_lookup(f->pp, "T0000001", PAYEE, PAYER, 0, &r, &e), PX_OK);
    assert_string_equal(r.response_code, "13");
    {
        int64_t q2 = 0;
        assert_int_equal(net_metrics_lookup("possum_phonepay_answers_total",
                                            "step=\"lookup\",code=\"Q2\"", &q2),
                         PX_OK);
        assert_true(q2 >= 1);
    }
}

static void tune_limits(phonepay_config *c)
{
    c->terminal_lookups_max = 10;
    c->terminal_misses_max = 3;
    c->payee_lookups_max = 4;
}

/* Names cannot be harvested: misses, lookups per terminal and per payee are limited. */
static void test_lookup_limits(void **state)
{
    pp_fixture g;
    phonepay_lookup_result r;
    px_error e = {0};
    char num[12];
    (void)state;
    pp_setup(&g, "phonepay-limits", tune_limits);
    pp_add_payee(&g, "张三丰", PAYEE, CARD);
    for (int i = 0; i < 3; i++) { /* 3 misses from T1 ... */
        snprintf(num, sizeof num, "1391234567%d", i);
        assert_int_equal(phonepay_lookup(g.pp, "T1", num, PAYER, 100, &r, &e), PX_OK);
        assert_string_equal(r.response_code, "Q2");
    }
    /* ... then even a registered number is refused there, not elsewhere */
    assert_int_equal(phonepay_lookup(g.pp, "T1", PAYEE, PAYER, 100, &r, &e), PX_OK);
    assert_string_equal(r.response_code, "Q4");
    assert_string_equal(r.masked_name, "");
    assert_non_null(strstr(r.text, "Too many lookups"));
    for (int i = 0; i < 4; i++) { /* the payee: 4 lookups per window from anywhere */
        snprintf(num, sizeof num, "T%d", 10 + i);
        assert_int_equal(phonepay_lookup(g.pp, num, PAYEE, PAYER, 100, &r, &e), PX_OK);
        assert_string_equal(r.response_code, "00");
    }
    assert_int_equal(phonepay_lookup(g.pp, "T20", PAYEE, PAYER, 100, &r, &e), PX_OK);
    assert_string_equal(r.response_code, "Q4");
    for (int i = 0; i < 10; i++) /* the terminal: 10 per window */
        assert_int_equal(phonepay_lookup(g.pp, "T30", "13912345670", PAYER, 100, &r, &e), PX_OK);
    assert_string_equal(r.response_code, "Q4");
    pp_teardown(&g);
}

/* Lookup -> payment begin (BIN check, the card for field 103) -> result -> notification. */
static void test_payment(void **state)
{
    pp_fixture *f = *state;
    phonepay_lookup_result r;
    phonepay_payment p;
    phonepay_payment_request q = {"T0000001", NULL, PAYEE, PAYER, 10000, PAYER_PAN};
    px_error e = {0};
    pp_add_payee(f, "张三丰", PAYEE, CARD);
    assert_int_equal(phonepay_lookup(f->pp, "T0000001", PAYEE, PAYER, 10000, &r, &e), PX_OK);
    q.reference = r.reference;
    /* no contracted bank yet: 15 with the reason; the reference stays usable */
    assert_int_equal(phonepay_payment_begin(f->pp, &q, &p, &e), PX_OK);
    assert_string_equal(p.response_code, "15");
    assert_string_equal(p.text,
                        "付款卡所属银行不是签约银行 / card's bank is not a contracted bank");
    assert_string_equal(p.payee_card, "");
    pp_exec(f, "INSERT INTO phonepay_bin (bin, bank, created_ms) VALUES ('622202', 'ICBC', 0)");
    q.amount_minor = 9999;
    assert_int_equal(phonepay_payment_begin(f->pp, &q, &p, &e), PX_OK);
    assert_string_equal(p.response_code, "13");
    q.amount_minor = 10000;
    q.tid = "T0000002";
    assert_int_equal(phonepay_payment_begin(f->pp, &q, &p, &e), PX_OK);
    assert_string_equal(p.response_code, "12");
    q.tid = "T0000001";
    assert_int_equal(phonepay_payment_begin(f->pp, &q, &p, &e), PX_OK);
    assert_string_equal(p.response_code, "00");
    assert_string_equal(p.payee_card, CARD);
    /* used once */
    assert_int_equal(phonepay_payment_begin(f->pp, &q, &p, &e), PX_OK);
    assert_string_equal(p.response_code, "12");
    assert_int_equal(phonepay_payment_result(f->pp, r.reference, "000000000042", "000042", "00",
                                             &e),
                     PX_OK);
    assert_int_equal(phonepay_payment_result(f->pp, r.reference, "000000000042", "000042", "00",
                                             &e),
                     PX_OK); /* the same answer again */
    assert_int_equal(phonepay_payment_result(f->pp, r.reference, "000000000042", "000042", "51",
                                             &e),
                     PX_ECONFLICT);
    assert_int_equal(pp_int(f, "SELECT COUNT(*) FROM phonepay_outbox WHERE event = 'debit' AND "
                               "recipient = '" PAYER "'"),
                     1);
    assert_int_equal(pp_int(f, "SELECT COUNT(*) FROM phonepay_payment WHERE state = 'approved' "
                               "AND business_date IS NOT NULL"),
                     1);
    assert_int_equal(phonepay_payment_reverse(f->pp, r.reference, &e), PX_OK);
    assert_int_equal(pp_int(f, "SELECT COUNT(*) FROM phonepay_payment WHERE state = 'reversed'"),
                     1);
    assert_int_equal(phonepay_payment_reverse(f->pp, r.reference, &e), PX_OK);
    assert_int_equal(phonepay_payment_reverse(f->pp, "999999999999", &e), PX_OK);
}

static void test_payment_expired_and_declined(void **state)
{
    pp_fixture *f = *state;
    phonepay_lookup_result r;
    phonepay_payment p;
    phonepay_payment_request q = {"T0000001", NULL, PAYEE, PAYER, 500, PAYER_PAN};
    px_error e = {0};
    pp_add_payee(f, "张三丰", PAYEE, CARD);
    pp_exec(f, "INSERT INTO phonepay_bin (bin, bank, created_ms) VALUES ('62220212', 'ICBC', 0)");
    assert_int_equal(phonepay_lookup(f->pp, "T0000001", PAYEE, PAYER, 500, &r, &e), PX_OK);
    q.reference = r.reference;
    pp_exec(f, "UPDATE phonepay_lookup SET expires_ms = 1");
    assert_int_equal(phonepay_payment_begin(f->pp, &q, &p, &e), PX_OK);
    assert_string_equal(p.response_code, "12");
    assert_int_equal(phonepay_lookup(f->pp, "T0000001", PAYEE, PAYER, 500, &r, &e), PX_OK);
    q.reference = r.reference;
    assert_int_equal(phonepay_payment_begin(f->pp, &q, &p, &e), PX_OK);
    assert_string_equal(p.response_code, "00");
    assert_int_equal(phonepay_payment_result(f->pp, r.reference, "000000000043", "000043", "51",
                                             &e),
                     PX_OK);
    assert_int_equal(pp_int(f, "SELECT COUNT(*) FROM phonepay_outbox WHERE event = 'debit'"), 0);
    assert_int_equal(phonepay_payment_result(f->pp, "000000000000", "000000000044", "000044", "00",
                                             &e),
                     PX_ENOTFOUND);
}

int main(void)
{
#ifdef PP_PG
    int pg = pp_use_postgres();
    if (pg != 0)
        return pg == 77 ? 77 : 1;
#endif
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_card_seal_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_otp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_windows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_register_confirm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_codes_void_challenge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_card_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_otp_send_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup, setup, teardown),
        cmocka_unit_test(test_lookup_limits),
        cmocka_unit_test_setup_teardown(test_payment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_payment_expired_and_declined, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
