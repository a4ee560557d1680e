/*
 * test_pos.c: the terminal agent against a fake switch over real sockets (fakeswitch.h):
 * sign-on with work keys under a known TMK, purchases approved and declined, MACs both
 * ways, the reversal written before a request leaves and surviving a restart, reversal
 * reasons 98 and A0, the update flag, balance, void, settlement with batch upload, sign-off
 * and mobile-number payment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "device/pinpad/devfile.h"
#include "device/pos/pos.h"
#include "fakeswitch.h"
#include "tmpdir.h"

#define PAN "6222021234567890128"
#define TRACK2 "6222021234567890128=30121010000"
#define PAYER "13912345678"

typedef struct fixture {
    char dir[512];
    pos_config cfg;
    fake_switch fs;
    pos_terminal *t;
    pos_card card;
} fixture;

static void load_tmk(pos_terminal *t)
{
    uint8_t c1[16], c2[16], tmk[16];
    fs_hex(FS_C1_HEX, c1, 16);
    fs_hex(FS_TMK_HEX, tmk, 16);
    for (int i = 0; i < 16; i++)
        c2[i] = (uint8_t)(tmk[i] ^ c1[i]);
    const uint8_t *comps[2] = {c1, c2};
    assert_int_equal(pinpad_load_tmk_components(pos_pinpad(t), comps, 2, NULL, 0, NULL, 0, NULL),
                     PX_OK);
}

static int setup(void **state)
{
    static fixture f;
    px_error e = {0};
    memset(&f, 0, sizeof f);
    assert_int_equal(testlib_mkdtemp("pos", f.dir, sizeof f.dir), PX_OK);
    assert_int_equal(fs_start(&f.fs), 0);
    pos_config_defaults(&f.cfg);
    snprintf(f.cfg.data_dir, sizeof f.cfg.data_dir, "%s/term", f.dir);
    f.cfg.port = f.fs.port;
    f.cfg.timeout_ms = 300;
    f.cfg.connect_timeout_ms = 1000;
    assert_int_equal(pos_init(&f.cfg, &e), PX_OK);
    assert_int_equal(pos_open(&f.cfg, &f.t, &e), PX_OK);
    load_tmk(f.t);
    assert_int_equal(pos_card_parse(PAN, NULL, "3012", &f.card, NULL), PX_OK);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    pos_close(f->t);
    fs_stop(&f->fs);
    testlib_rmtree(f->dir);
    return 0;
}

static const char *field(const iso8583_msg *m, int f)
{
    const uint8_t *p;
    size_t n;
    return iso8583_get(m, f, &p, &n) == PX_OK ? (const char *)p : "";
}

static void signon(fixture *f)
{
    pos_result r;
    assert_int_equal(pos_signon(f->t, 0, &r, NULL), PX_OK);
    assert_int_equal(r.outcome, POS_APPROVED);
}

static void purchase(fixture *f, int64_t amount, pos_result *r)
{
    uint8_t pb[8];
    int has_pik = pinpad_has_key(pos_pinpad(f->t), PINPAD_PIK);
    if (has_pik)
        assert_int_equal(pinpad_pin_block(pos_pinpad(f->t), "1234", PAN, pb, NULL), PX_OK);
    assert_int_equal(pos_purchase(f->t, &f->card, amount, has_pik ? pb : NULL, r, NULL), PX_OK);
}

static void reopen(fixture *f)
{
    pos_close(f->t);
    f->t = NULL;
    assert_int_equal(pos_open(&f->cfg, &f->t, NULL), PX_OK);
}

static void test_signon_installs_work_keys(void **state)
{
    fixture *f = *state;
    pos_result r;
    pos_status st;
    iso8583_msg req;
    assert_int_equal(pos_signon(f->t, 0, &r, NULL), PX_OK);
    assert_int_equal(r.outcome, POS_APPROVED);
    assert_string_equal(r.batch, "000001");
    fs_last(&f->fs, FS_0800, &req);
    assert_string_equal(field(&req, 60), "00000001003");
    assert_string_equal(field(&req, 63), "01 ");
    assert_false(iso8583_has(&req, 64)); /* sign-on is not MACed */
    pos_status_get(f->t, &st);
    assert_true(st.signed_on);
    assert_string_equal(st.keys[PINPAD_PIK].kcv, "08D7B4");
    assert_true(st.keys[PINPAD_MAK].present && st.keys[PINPAD_TDK].present);
}

static void test_signon_refuses_keys_with_bad_check_value(void **state)
{
    fixture *f = *state;
    pos_result r;
    f->fs.spoil_cv = 1;
    assert_int_equal(pos_signon(f->t, 0, &r, NULL), PX_OK);
    assert_int_equal(r.outcome, POS_FAILED);
    assert_non_null(strstr(r.text, "TDK"));
    assert_false(pinpad_has_key(pos_pinpad(f->t), PINPAD_PIK));
    purchase(f, 100, &r);
    assert_int_equal(r.outcome, POS_REFUSED);
}

static void test_purchase_approved_and_maced(void **state)
{
    fixture *f = *state;
    pos_result r;
    iso8583_msg req;
    char line[256];
    pos_batch_entry b;
    signon(f);
    purchase(f, 1234, &r);
    assert_int_equal(r.outcome, POS_APPROVED);
    pos_result_format(&r, line, sizeof line);
    assert_string_equal(line, "APPROVED  amount 12.34 CNY  auth A1B2C3  RRN 000000000001");
    fs_last(&f->fs, FS_0200, &req);
    assert_string_equal(field(&req, 2), PAN);
    assert_string_equal(field(&req, 3), "000000");
    assert_string_equal(field(&req, 4), "000000001234");
    assert_string_equal(field(&req, 14), "3012");
    assert_string_equal(field(&req, 22), "012");
    assert_string_equal(field(&req, 26), "12");
    assert_string_equal(field(&req, 49), "156");
    assert_string_equal(field(&req, 53), "2600000000000000");
    assert_string_equal(field(&req, 60), "22000001000");
    assert_true(iso8583_has(&req, 52) && iso8583_has(&req, 64));
    assert_int_equal(f->fs.bad_mac_requests, 0); /* the switch verified our MAC */
    assert_int_equal(pos_batch_get(f->t, 0, &b), PX_OK);
    assert_string_equal(b.pan_masked, "622202*********0128");
    assert_false(r.reversal_pending);
}

static void test_purchase_declined(void **state)
{
    fixture *f = *state;
    pos_result r;
    char line[256];
    pos_status st;
    signon(f);
    memcpy(f->fs.decline, "51", 3);
    purchase(f, 500, &r);
    assert_int_equal(r.outcome, POS_DECLINED);
    pos_result_format(&r, line, sizeof line);
    assert_string_equal(line, "DECLINED 51: insufficient funds");
    pos_status_get(f->t, &st);
    assert_int_equal(st.batch_count, 0);
    assert_false(st.reversal_pending);
}

static void test_swiped_card_sends_track2(void **state)
{
    fixture *f = *state;
    pos_result r;
    pos_card c;
    iso8583_msg req;
    signon(f);
    assert_int_equal(pos_card_parse(NULL, TRACK2, NULL, &c, NULL), PX_OK);
    assert_int_equal(pos_purchase(f->t, &c, 100, NULL, &r, NULL), PX_OK);
    assert_int_equal(r.outcome, POS_APPROVED);
    fs_last(&f->fs, FS_0200, &req);
    assert_string_equal(field(&req, 35), TRACK2);
    assert_false(iso8583_has(&req, 2));
    assert_string_equal(field(&req, 22), "022");
    assert_false(iso8583_has(&req, 52));
}

/* Nothing of the card in clear in the state file, ever. */
static void assert_state_has_no_pan(fixture *f)
{
    char path[700];
    px_buf b;
    snprintf(path, sizeof path, "%s/state", f->cfg.data_dir);
    px_buf_init(&b, 1 << 20);
    assert_int_equal(devfile_read(path, &b, NULL), PX_OK);
    assert_null(strstr(px_buf_str(&b), PAN));
    assert_null(strstr(px_buf_str(&b), "622202123456"));
    px_buf_free(&b);
}

static void test_timeout_reversal_survives_restart(void **state)
{
    fixture *f = *state;
    pos_result r;
    pos_status st;
    iso8583_msg rev;
    signon(f);
    f->fs.drop = 1;
    memcpy(f->fs.drop_mti, "0200", 5);
    purchase(f, 1234, &r);
    assert_int_equal(r.outcome, POS_FAILED);
    assert_true(r.reversal_pending);
    assert_non_null(strstr(r.text, "no answer"));
    assert_state_has_no_pan(f);
    reopen(f); /* power cut: the reversal is on disk */
    pos_status_get(f->t, &st);
    assert_true(st.reversal_pending);
    assert_string_equal(st.reversal_stan, r.stan);
    assert_string_equal(st.reversal_reason, "98");
    assert_int_equal(st.reversal_amount_minor, 1234);
    purchase(f, 200, &r);
    assert_int_equal(r.outcome, POS_APPROVED);
    assert_non_null(strstr(f->fs.seen, "0200 0400 0200 "));
    fs_last(&f->fs, FS_0400, &rev);
    assert_string_equal(field(&rev, 11), st.reversal_stan); /* the original STAN */
    assert_string_equal(field(&rev, 39), "98");
    assert_string_equal(field(&rev, 2), PAN);
    assert_string_equal(field(&rev, 3), "000000");
    assert_string_equal(field(&rev, 4), "000000001234");
    assert_string_equal(field(&rev, 22), "012");
    assert_string_equal(field(&rev, 60), "22000001000");
    assert_true(iso8583_has(&rev, 64));
    pos_status_get(f->t, &st);
    assert_false(st.reversal_pending);
    assert_int_equal(st.batch_count, 1); /* only the second sale */
}

static void test_bad_answer_mac_reversal_a0(void **state)
{
    fixture *f = *state;
    pos_result r;
    pos_status st;
    iso8583_msg rev;
    signon(f);
    f->fs.spoil_mac = 1;
    purchase(f, 1234, &r);
    assert_int_equal(r.outcome, POS_FAILED);
    assert_non_null(strstr(r.text, "MAC"));
    pos_status_get(f->t, &st);
    assert_string_equal(st.reversal_reason, "A0");
    assert_int_equal(st.batch_count, 0); /* an unverified approval is no approval */
    assert_int_equal(pos_reversal_flush(f->t, &r, NULL), PX_OK);
    assert_int_equal(r.outcome, POS_APPROVED);
    fs_last(&f->fs, FS_0400, &rev);
    assert_string_equal(field(&rev, 39), "A0");
}

static void test_reversal_repeated_until_answered(void **state)
{
    fixture *f = *state;
    pos_result r;
    pos_status st;
    signon(f);
    f->fs.drop = 1 + 3; /* the sale, then three reversal sends */
    purchase(f, 700, &r);
    assert_int_equal(r.outcome, POS_FAILED);
    purchase(f, 800, &r);
    assert_int_equal(r.outcome, POS_FAILED); /* the new sale did not go */
    assert_true(r.reversal_pending);
    assert_int_equal(fs_count(&f->fs, "0200"), 1);
    assert_int_equal(fs_count(&f->fs, "0400"), 3);
    pos_status_get(f->t, &st);
    assert_int_equal(st.reversal_sends, 3);
    purchase(f, 900, &r);
    assert_int_equal(r.outcome, POS_APPROVED);
    assert_int_equal(fs_count(&f->fs, "0400"), 4);
    assert_int_equal(fs_count(&f->fs, "0200"), 2);
}

static void test_unreachable_platform_queues_nothing(void **state)
{
    fixture *f = *state;
    pos_result r;
    pos_status st;
    signon(f);
    pos_close(f->t);
    f->cfg.port = 1; /* nothing listens */
    assert_int_equal(pos_open(&f->cfg, &f->t, NULL), PX_OK);
    purchase(f, 100, &r);
    assert_int_equal(r.outcome, POS_FAILED);
    assert_non_null(strstr(r.text, "cannot reach"));
    pos_status_get(f->t, &st);
    assert_false(st.reversal_pending); /* the request never left */
}

static void test_processing_requirement_flags(void **state)
{
    fixture *f = *state;
    pos_result r;
    pos_status st;
    signon(f);
    f->fs.proc_req = 6;
    purchase(f, 100, &r);
    assert_int_equal(r.outcome, POS_APPROVED);
    assert_int_equal(r.proc_req, 6);
    assert_true(r.update_waiting);
    reopen(f);
    pos_status_get(f->t, &st);
    assert_true(st.update_waiting);
    assert_int_equal(pos_update_flag_clear(f->t, NULL), PX_OK);
    f->fs.proc_req = 3;
    purchase(f, 100, &r);
    assert_int_equal(r.outcome, POS_APPROVED);
    assert_true(r.resign_required);
    purchase(f, 100, &r);
    assert_int_equal(r.outcome, POS_REFUSED);
    assert_non_null(strstr(r.text, "sign on"));
}

static void test_balance(void **state)
{
    fixture *f = *state;
    pos_result r;
    char line[256];
    iso8583_msg req;
    signon(f);
    assert_int_equal(pos_balance(f->t, &f->card, NULL, &r, NULL), PX_OK);
    assert_int_equal(r.outcome, POS_APPROVED);
    assert_true(r.has_balance);
    assert_int_equal(r.balance_minor, 12345);
    pos_result_format(&r, line, sizeof line);
    assert_non_null(strstr(line, "balance 123.45 CNY"));
    fs_last(&f->fs, FS_0200, &req);
    assert_string_equal(field(&req, 3), "310000");
    assert_false(iso8583_has(&req, 4));
    assert_string_equal(field(&req, 60), "01000001000");
}

static void test_void_of_a_purchase(void **state)
{
    fixture *f = *state;
    pos_result sale, r;
    iso8583_msg req;
    pos_batch_entry b;
    char f61[16];
    signon(f);
    purchase(f, 4321, &sale);
    assert_int_equal(sale.outcome, POS_APPROVED);
    assert_int_equal(pos_void(f->t, sale.rrn, sale.stan, NULL, NULL, &r, NULL), PX_OK);
    assert_int_equal(r.outcome, POS_APPROVED);
    assert_int_equal(r.amount_minor, 4321);
    fs_last(&f->fs, FS_0200, &req);
    assert_string_equal(field(&req, 3), "200000");
    assert_string_equal(field(&req, 2), PAN); /* unsealed from the sale */
    assert_string_equal(field(&req, 37), sale.rrn);
    snprintf(f61, sizeof f61, "000001%s", sale.stan);
    assert_string_equal(field(&req, 61), f61);
    assert_string_equal(field(&req, 60), "23000001000");
    assert_int_equal(pos_batch_get(f->t, 0, &b), PX_OK);
    assert_true(b.voided);
    assert_int_equal(pos_void(f->t, sale.rrn, sale.stan, NULL, NULL, &r, NULL), PX_OK);
    assert_int_equal(r.outcome, POS_REFUSED);
    assert_int_equal(pos_void(f->t, "999999999999", sale.stan, NULL, NULL, &r, NULL), PX_OK);
    assert_int_equal(r.outcome, POS_REFUSED);
}

static void test_settle_balanced(void **state)
{
    fixture *f = *state;
    pos_result a, b, r;
    iso8583_msg req;
    pos_status st;
    char path[700];
    signon(f);
    purchase(f, 1000, &a);
    purchase(f, 234, &b);
    assert_int_equal(pos_void(f->t, a.rrn, a.stan, NULL, NULL, &r, NULL), PX_OK);
    f->fs.settle_result = '1';
    assert_int_equal(pos_settle(f->t, &r, NULL), PX_OK);
    assert_int_equal(r.outcome, POS_APPROVED);
    assert_true(r.settle_balanced);
    fs_last(&f->fs, FS_0500, &req);
    /* debits: both purchases (12.34 CNY); credits: the void (10.00 CNY) */
    assert_string_equal(field(&req, 48), "002000000001234001000000001000"
                                         "00000000000000000000000000000000");
    assert_string_equal(field(&req, 60), "00000001201");
    assert_true(iso8583_has(&req, 64));
    pos_status_get(f->t, &st);
    assert_int_equal(st.batch_count, 0);
    assert_false(st.signed_on); /* the next batch opens at the next sign-on */
    snprintf(path, sizeof path, "%s/batch-000001.txt", f->cfg.data_dir);
    assert_true(devfile_exists(path));
    signon(f);
    pos_status_get(f->t, &st);
    assert_int_equal(st.batch, 2);
}

static void test_settle_not_balanced_uploads(void **state)
{
    fixture *f = *state;
    pos_result r;
    iso8583_msg up;
    signon(f);
    for (int i = 0; i < 10; i++) {
        purchase(f, 100 + i, &r);
        assert_int_equal(r.outcome, POS_APPROVED);
    }
    f->fs.settle_result = '2';
    assert_int_equal(pos_settle(f->t, &r, NULL), PX_OK);
    assert_int_equal(r.outcome, POS_APPROVED);
    assert_false(r.settle_balanced);
    assert_int_equal(r.uploaded, 10);
    assert_int_equal(fs_count(&f->fs, "0320"), 2);
    assert_int_equal(f->fs.upload_entries, 10);
    fs_last(&f->fs, FS_0320, &up);
    assert_string_equal(field(&up, 60), "00000001202");
    assert_int_equal(strlen(field(&up, 48)), 2 + 2 * 24);
    assert_non_null(strstr(r.text, "NOT balanced"));
}

static void test_signoff_and_open_batch(void **state)
{
    fixture *f = *state;
    pos_result r;
    char path[700];
    signon(f);
    purchase(f, 100, &r);
    assert_int_equal(pos_signon(f->t, 0, &r, NULL), PX_OK);
    assert_int_equal(r.outcome, POS_REFUSED); /* unsettled batch */
    assert_int_equal(pos_signon(f->t, 1, &r, NULL), PX_OK);
    assert_int_equal(r.outcome, POS_APPROVED);
    snprintf(path, sizeof path, "%s/batch-000001.txt", f->cfg.data_dir);
    assert_true(devfile_exists(path));
    assert_int_equal(pos_signoff(f->t, &r, NULL), PX_OK);
    assert_int_equal(r.outcome, POS_APPROVED);
    assert_false(pinpad_has_key(pos_pinpad(f->t), PINPAD_MAK));
    assert_true(pinpad_has_key(pos_pinpad(f->t), PINPAD_TMK));
    assert_int_equal(pos_echo(f->t, &r, NULL), PX_OK);
    assert_int_equal(r.outcome, POS_APPROVED);
    purchase(f, 100, &r);
    assert_int_equal(r.outcome, POS_REFUSED);
}

static void test_mobile_number_payment(void **state)
{
    fixture *f = *state;
    pos_result look, r;
    iso8583_msg req;
    pos_batch_entry b;
    uint8_t pb[8];
    signon(f);
    assert_int_equal(pos_phonepay_lookup(f->t, FS_PAYEE, PAYER, 5000, &look, NULL), PX_OK);
    assert_int_equal(look.outcome, POS_APPROVED);
    assert_string_equal(look.payee_name, FS_PAYEE_NAME);
    assert_string_equal(look.lookup_ref, FS_LOOKUP_REF);
    fs_last(&f->fs, FS_0100, &req);
    assert_string_equal(field(&req, 3), "380000");
    assert_string_equal(field(&req, 48), FS_PAYEE PAYER);
    assert_string_equal(field(&req, 60), "81000001000");
    assert_true(iso8583_has(&req, 64));
    assert_int_equal(pinpad_pin_block(pos_pinpad(f->t), "1234", PAN, pb, NULL), PX_OK);
    assert_int_equal(pos_phonepay_pay(f->t, FS_PAYEE, PAYER, look.lookup_ref, 5000, &f->card, pb,
                                      &r, NULL),
                     PX_OK);
    assert_int_equal(r.outcome, POS_APPROVED);
    assert_non_null(strstr(r.text, "reconciliation"));
    fs_last(&f->fs, FS_0200, &req);
    assert_string_equal(field(&req, 3), "480000");
    assert_string_equal(field(&req, 48), FS_PAYEE PAYER FS_LOOKUP_REF);
    assert_string_equal(field(&req, 60), "82000001000");
    assert_int_equal(pos_batch_get(f->t, 0, &b), PX_OK);
    assert_int_equal(b.kind, 'M');
    assert_int_equal(pos_void(f->t, r.rrn, r.stan, NULL, NULL, &r, NULL), PX_OK);
    assert_int_equal(r.outcome, POS_REFUSED); /* only a purchase can be voided */
}

static void test_mobile_numbers_checked_on_the_terminal(void **state)
{
    fixture *f = *state;
    pos_result r;
    signon(f);
    assert_int_equal(pos_phonepay_lookup(f->t, "12345678901", PAYER, 100, &r, NULL), PX_OK);
    assert_int_equal(r.outcome, POS_REFUSED);
    assert_non_null(strstr(r.text, "payee mobile number"));
    assert_int_equal(pos_phonepay_lookup(f->t, FS_PAYEE, "1391234567", 100, &r, NULL), PX_OK);
    assert_int_equal(r.outcome, POS_REFUSED);
    assert_int_equal(fs_count(&f->fs, "0100"), 0); /* nothing was sent */
    assert_int_equal(pos_phonepay_lookup(f->t, "13900000000", PAYER, 100, &r, NULL), PX_OK);
    assert_int_equal(r.outcome, POS_DECLINED);
    assert_string_equal(r.rsp_code, "Q2");
}

static void test_one_process_per_terminal(void **state)
{
    fixture *f = *state;
    pos_terminal *other = NULL;
    px_error e = {0};
    assert_int_equal(pos_open(&f->cfg, &other, &e), PX_ESTATE); /* after a 5 s wait */
    assert_non_null(strstr(e.msg, "in use"));
    assert_null(other);
}

static void test_card_input_checked(void **state)
{
    pos_card c;
    px_error e = {0};
    assert_int_equal(pos_card_parse("6222021234567890127", NULL, NULL, &c, &e), PX_EINVAL);
    assert_null(strstr(e.msg, "622202"));
    assert_int_equal(pos_card_parse("62220212345", NULL, NULL, &c, &e), PX_EINVAL);
    assert_int_equal(pos_card_parse(PAN, NULL, "3013", &c, &e), PX_EINVAL);
    assert_int_equal(pos_card_parse(NULL, "6222021234567890128D3012", NULL, &c, &e), PX_EINVAL);
    assert_int_equal(pos_card_parse(PAN, TRACK2, NULL, &c, &e), PX_EINVAL);
    assert_int_equal(pos_card_parse(NULL, TRACK2, NULL, &c, &e), PX_OK);
    assert_string_equal(c.pan, PAN);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_signon_installs_work_keys),
        T(test_signon_refuses_keys_with_bad_check_value),
        T(test_purchase_approved_and_maced),
        T(test_purchase_declined),
        T(test_swiped_card_sends_track2),
        T(test_timeout_reversal_survives_restart),
        T(test_bad_answer_mac_reversal_a0),
        T(test_reversal_repeated_until_answered),
        T(test_unreachable_platform_queues_nothing),
        T(test_processing_requirement_flags),
        T(test_balance),
        T(test_void_of_a_purchase),
        T(test_settle_balanced),
        T(test_settle_not_balanced_uploads),
        T(test_signoff_and_open_batch),
        T(test_mobile_number_payment),
        T(test_mobile_numbers_checked_on_the_terminal),
        T(test_one_process_per_terminal),
        cmocka_unit_test(test_card_input_checked),
    };
    return cmocka_run_group_tests_name("pos", tests, NULL, NULL);
}
