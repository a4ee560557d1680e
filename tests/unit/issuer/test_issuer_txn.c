/*
 * test_issuer_txn.c: the issuer's answers to the switch's messages, through issuer_handle
 * with a real store and a real (soft) HSM, the demo seed and PIN blocks under the demo
 * ZPK. Compiled twice: TEST_BACKEND=STORE_SQLITE and STORE_POSTGRES (a throwaway cluster).
 * Each test starts from a fresh database and LMK.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/issuer/issuer_int.h"
#include "issuer_fixture.h"
#include "lib/str.h"
#include "lib/time.h"
#include "pgtemp.h"
#include "tmpdir.h"

static const store_backend backend = TEST_BACKEND;
static pgtemp pg;
static int dbseq;

typedef struct fx {
    char dir[PX_PATH_MAX];
    store_config scfg;
    store *st;
    issuer_config cfg;
    issuer_core *core;
} fx;

static fx F;

static void open_core(void)
{
    px_error e = {0};
    if (issuer_core_open(&F.cfg, F.st, 1, &F.core, &e) != PX_OK)
        fail_msg("core open: %s", px_error_text(&e));
}

static int setup(void **state)
{
    px_error e = {0};
    char name[32];
    (void)state;
    memset(&F, 0, sizeof F);
    assert_int_equal(testlib_mkdtemp("issuer", F.dir, sizeof F.dir), 0);
    issuer_config_default(&F.cfg);
    fx_lmk_init(F.dir, &F.cfg.hsm);
    F.cfg.seed_demo = 1;
    store_config_default(&F.scfg);
    F.scfg.backend = backend;
    F.scfg.synchronous_full = 0;
    snprintf(F.scfg.path, sizeof F.scfg.path, "%s/var/possum.db", F.dir);
    snprintf(name, sizeof name, "i%d", ++dbseq);
    if (backend == STORE_POSTGRES &&
        pgtemp_create_db(&pg, name, F.scfg.conninfo, sizeof F.scfg.conninfo, &e) != PX_OK)
        fail_msg("%s", px_error_text(&e));
    if (store_open(&F.scfg, &F.st, &e) != PX_OK)
        fail_msg("store open: %s", px_error_text(&e));
    open_core();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    issuer_core_close(F.core);
    store_close(F.st);
    testlib_rmtree(F.dir);
    return 0;
}

/* Send r as the service would (pack, unpack, handle); the answer unpacked into rsp. */
static void exchange_raw(const fx_req *r, int inject, issuer_reply *out, iso8583_msg *rsp)
{
    iso8583_msg req;
    uint8_t raw[PX_ISO_MSG_MAX];
    size_t n;
    px_error e = {0};
    int rc;
    fx_build(&req, r);
    n = fx_pack(&req, raw, sizeof raw);
    rc = iso8583_unpack(&iso8583_1987_ascii, raw, n, &req, &e);
    assert_int_equal(rc, PX_OK);
    issuer_handle(F.core, raw, n, &req, rc, &e, inject, out);
    assert_true(out->len > 0);
    if (iso8583_unpack(&iso8583_1987_ascii, out->data, out->len, rsp, &e) != PX_OK)
        fail_msg("answer does not unpack: %s", px_error_text(&e));
}

/* The answer's code to r. */
static const char *send_req(const fx_req *r, iso8583_msg *rsp)
{
    static issuer_reply out;
    exchange_raw(r, 0, &out, rsp);
    return fx_field(rsp, 39);
}

static int64_t balance_of(const char *pan)
{
    char token[ISSUER_TOKEN_HEX + 1];
    issuer_account a;
    px_error e = {0};
    assert_int_equal(issuer_pan_token(F.core, pan, token, &e), PX_OK);
    if (issuer_db_account_get(F.st, token, &a, &e) != PX_OK)
        fail_msg("account: %s", px_error_text(&e));
    return a.balance_minor;
}

static fx_req purchase(const char *pan, int64_t amount, const char *stan, const char *pin)
{
    fx_req r = {
        .mti = "0200", .proc = "000000", .pan = pan, .amount = amount, .stan = stan, .pin = pin};
    return r;
}

/* ---- tests ---- */

static void t_purchase_approved(void **state)
{
    iso8583_msg rsp;
    fx_req r = purchase(CARD_ZHANG, 12345, "000001", "123456");
    char today[5];
    (void)state;
    assert_string_equal(send_req(&r, &rsp), "00");
    assert_string_equal(rsp.mti, "0210");
    assert_int_equal(strlen(fx_field(&rsp, 38)), 6);
    assert_string_equal(fx_field(&rsp, 54), "1002156C000000987655");
    assert_string_equal(fx_field(&rsp, 11), "000001");
    assert_string_equal(fx_field(&rsp, 37), "632600000001");
    assert_string_equal(fx_field(&rsp, 100), "99900001");
    px_time_format_utc(px_now_ms(), "%m%d", today, sizeof today);
    assert_string_equal(fx_field(&rsp, 15), today);
    assert_false(iso8583_has(&rsp, 2)); /* an answer never carries the PAN */
    assert_false(iso8583_has(&rsp, 52));
    assert_int_equal(balance_of(CARD_ZHANG), 1000000 - 12345);
}

static void t_ibm3624_and_19_digit_cards(void **state)
{
    iso8583_msg rsp;
    fx_req r = purchase(CARD_WANG, 100, "000002", "888888");
    (void)state;
    assert_string_equal(send_req(&r, &rsp), "00");
    r = purchase(CARD_WANG, 100, "000003", "888889"); /* the last digit counts (offset of 6) */
    assert_string_equal(send_req(&r, &rsp), "55");
    r = purchase(CARD_SUN, 100, "000004", "654321");
    assert_string_equal(send_req(&r, &rsp), "00");
    assert_int_equal(balance_of(CARD_WANG), 1000000 - 100);
    assert_int_equal(balance_of(CARD_SUN), 1000000 - 100);
}

static void t_insufficient_funds(void **state)
{
    iso8583_msg rsp;
    fx_req r = purchase(CARD_LI, 5001, "000010", "111111");
    (void)state;
    assert_string_equal(send_req(&r, &rsp), "51");
    assert_false(iso8583_has(&rsp, 38));
    assert_int_equal(balance_of(CARD_LI), 5000);
    r = purchase(CARD_LI, 5000, "000011", "111111");
    assert_string_equal(send_req(&r, &rsp), "00");
    assert_int_equal(balance_of(CARD_LI), 0);
    r = purchase(CARD_LI, 1, "000012", "111111");
    assert_string_equal(send_req(&r, &rsp), "51");
    assert_int_equal(balance_of(CARD_LI), 0);
}

static void t_wrong_pins_then_75(void **state)
{
    iso8583_msg rsp;
    px_error e = {0};
    fx_req r = purchase(CARD_ZHANG, 100, "000020", "999999");
    (void)state;
    assert_string_equal(send_req(&r, &rsp), "55");
    r.stan = "000021", r.pin = "123456"; /* a right PIN clears the count */
    assert_string_equal(send_req(&r, &rsp), "00");
    r.pin = "999999";
    r.stan = "000022";
    assert_string_equal(send_req(&r, &rsp), "55");
    r.stan = "000023";
    assert_string_equal(send_req(&r, &rsp), "55");
    r.stan = "000024";
    assert_string_equal(send_req(&r, &rsp), "75"); /* the third wrong PIN in a row */
    r.stan = "000025", r.pin = "123456";
    assert_string_equal(send_req(&r, &rsp), "75"); /* locked, even with the right PIN */
    r.stan = "000026", r.pin = NULL;
    assert_string_equal(send_req(&r, &rsp), "75");
    assert_int_equal(issuer_cardholder_reset_pin_tries(F.core, CARD_ZHANG, &e), PX_OK);
    r.stan = "000027", r.pin = "123456";
    assert_string_equal(send_req(&r, &rsp), "00");
    assert_int_equal(balance_of(CARD_ZHANG), 1000000 - 200);
}

static void t_card_refusals(void **state)
{
    iso8583_msg rsp;
    fx_req r = purchase(CARD_QIAN, 100, "000030", "123456");
    (void)state;
    assert_string_equal(send_req(&r, &rsp), "15"); /* a bank that is not contracted */
    r = purchase("4111111111111111", 100, "000031", "1234");
    assert_string_equal(send_req(&r, &rsp), "15"); /* a BIN of no bank at all */
    r = purchase("6222020000000023", 100, "000032", "1234");
    assert_string_equal(send_req(&r, &rsp), "14"); /* contracted BIN, no such account */
    r = purchase("6222020000000008", 100, "000033", "1234");
    assert_string_equal(send_req(&r, &rsp), "14"); /* bad check digit */
    r = purchase(CARD_ZHAO, 100, "000034", "246810");
    assert_string_equal(send_req(&r, &rsp), "54"); /* expired */
    r = purchase(CARD_ZHANG, 100, "000035", NULL);
    assert_string_equal(send_req(&r, &rsp), "55"); /* no PIN: require_pin */
    r = purchase(CARD_ZHANG, 0, "000036", "123456");
    assert_string_equal(send_req(&r, &rsp), "13");
    r = purchase(CARD_ZHANG, 10000001, "000037", "123456");
    assert_string_equal(send_req(&r, &rsp), "61"); /* amount_limit_minor 10,000,000 */
    assert_int_equal(balance_of(CARD_ZHANG), 1000000);
}

static void t_duplicate_same_bytes(void **state)
{
    static issuer_reply a, b;
    iso8583_msg rsp;
    fx_req r = purchase(CARD_ZHANG, 700, "000040", "123456");
    (void)state;
    exchange_raw(&r, 0, &a, &rsp);
    exchange_raw(&r, 0, &b, &rsp);
    assert_int_equal(a.duplicate, 0);
    assert_int_equal(b.duplicate, 1);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    assert_int_equal(balance_of(CARD_ZHANG), 1000000 - 700);
    r.amount = 701; /* same key (acquirer, STAN, time), other content */
    assert_string_equal(send_req(&r, &rsp), "94");
    assert_int_equal(balance_of(CARD_ZHANG), 1000000 - 700);
    /* a decline is as final as an approval: the wrong PIN is counted once */
    r = purchase(CARD_WANG, 100, "000041", "000000");
    exchange_raw(&r, 0, &a, &rsp);
    exchange_raw(&r, 0, &b, &rsp);
    assert_memory_equal(a.data, b.data, a.len);
    r.stan = "000042", r.pin = "888888";
    assert_string_equal(send_req(&r, &rsp), "00");
}

static void t_reversal_exactly_once(void **state)
{
    static issuer_reply first, repeat;
    iso8583_msg rsp;
    char f90[43];
    fx_req p = purchase(CARD_ZHANG, 5000, "000050", "123456");
    fx_req rev = {.mti = "0420",
                  .proc = "000000",
                  .pan = CARD_ZHANG,
                  .amount = 5000,
                  .stan = "000051",
                  .tx_time = "1122101600",
                  .f90 = f90};
    (void)state;
    assert_string_equal(send_req(&p, &rsp), "00");
    assert_int_equal(balance_of(CARD_ZHANG), 995000);
    fx_f90("0200", "000050", FX_TX_TIME, f90);
    exchange_raw(&rev, 0, &first, &rsp);
    assert_string_equal(rsp.mti, "0430");
    assert_string_equal(fx_field(&rsp, 39), "00");
    assert_int_equal(balance_of(CARD_ZHANG), 1000000);
    rev.mti = "0421"; /* the repeat of the same reversal: the same answer, byte for byte */
    exchange_raw(&rev, 0, &repeat, &rsp);
    assert_int_equal(repeat.duplicate, 1);
    assert_memory_equal(first.data, repeat.data, first.len);
    rev.f39 = "06"; /* a repeat giving another reason is still the same reversal */
    exchange_raw(&rev, 0, &repeat, &rsp);
    assert_memory_equal(first.data, repeat.data, first.len);
    rev.f39 = NULL;
    rev.mti = "0420", rev.stan = "000052"; /* a second reversal of it: 00, nothing moves */
    assert_string_equal(send_req(&rev, &rsp), "00");
    assert_int_equal(balance_of(CARD_ZHANG), 1000000);
    fx_f90("0200", "999999", FX_TX_TIME, f90); /* a reversal of nothing is a success */
    rev.stan = "000053";
    assert_string_equal(send_req(&rev, &rsp), "00");
    assert_int_equal(balance_of(CARD_ZHANG), 1000000);
}

static void t_reversal_without_field_90(void **state)
{
    iso8583_msg rsp;
    fx_req p = purchase(CARD_WANG, 2500, "000060", "888888");
    fx_req rev = {
        .mti = "0420", .proc = "000000", .pan = CARD_WANG, .amount = 2500, .stan = "000060"};
    (void)state;
    assert_string_equal(send_req(&p, &rsp), "00");
    assert_string_equal(send_req(&rev, &rsp), "00"); /* the original's own STAN and time */
    assert_int_equal(balance_of(CARD_WANG), 1000000);
}

static void t_void(void **state)
{
    iso8583_msg rsp;
    char f90[43];
    fx_req p = purchase(CARD_ZHANG, 3000, "000070", "123456");
    fx_req v = {.mti = "0200",
                .proc = "200000",
                .pan = CARD_ZHANG,
                .amount = 3000,
                .stan = "000071",
                .tx_time = "1122101700",
                .pin = "123456",
                .f90 = f90};
    fx_req rev = {.mti = "0420",
                  .proc = "200000",
                  .pan = CARD_ZHANG,
                  .amount = 3000,
                  .stan = "000073",
                  .tx_time = "1122101800",
                  .f90 = f90};
    (void)state;
    assert_string_equal(send_req(&p, &rsp), "00");
    fx_f90("0200", "000070", FX_TX_TIME, f90);
    assert_string_equal(send_req(&v, &rsp), "00");
    assert_int_equal(balance_of(CARD_ZHANG), 1000000);
    v.stan = "000072"; /* voided once only */
    assert_string_equal(send_req(&v, &rsp), "12");
    assert_int_equal(balance_of(CARD_ZHANG), 1000000);
    fx_f90("0200", "000071", "1122101700", f90); /* reverse the void: the debit stands again */
    assert_string_equal(send_req(&rev, &rsp), "00");
    assert_int_equal(balance_of(CARD_ZHANG), 997000);
    fx_f90("0200", "000099", FX_TX_TIME, f90);
    v.stan = "000074";
    assert_string_equal(send_req(&v, &rsp), "25"); /* no such original */
}

static void t_balance_inquiry(void **state)
{
    iso8583_msg rsp;
    fx_req r = {.mti = "0200",
                .proc = "310000",
                .pan = CARD_LI,
                .amount = -1,
                .stan = "000080",
                .pin = "111111"};
    (void)state;
    assert_string_equal(send_req(&r, &rsp), "00");
    assert_string_equal(fx_field(&rsp, 54), "1002156C000000005000");
    r.stan = "000081", r.pin = "111112"; /* Visa PVV checks the 4 leftmost PIN digits */
    assert_string_equal(send_req(&r, &rsp), "00");
    r.stan = "000082", r.pin = "211111";
    assert_string_equal(send_req(&r, &rsp), "55");
    assert_false(iso8583_has(&rsp, 54));
}

static void t_mobile_debit_then_credit(void **state)
{
    iso8583_msg rsp;
    fx_req d = {.mti = "0200",
                .proc = "400000",
                .pan = CARD_ZHANG,
                .amount = 8800,
                .stan = "000090",
                .rrn = "632600000090",
                .pin = "123456",
                .f48 = "1380013800013900139000",
                .f103 = CARD_WANG};
    fx_req c = {.mti = "0220",
                .proc = "210000",
                .pan = CARD_WANG,
                .amount = 8800,
                .stan = "000091",
                .rrn = "632600000090",
                .f48 = "13900139000"};
    (void)state;
    assert_string_equal(send_req(&d, &rsp), "00");
    assert_int_equal(balance_of(CARD_ZHANG), 1000000 - 8800);
    assert_string_equal(send_req(&c, &rsp), "00");
    assert_string_equal(rsp.mti, "0230");
    assert_int_equal(balance_of(CARD_WANG), 1000000 + 8800);
    c.stan = "000092"; /* the same debit's RRN again: credited once */
    assert_string_equal(send_req(&c, &rsp), "00");
    assert_int_equal(balance_of(CARD_WANG), 1000000 + 8800);
    d.pan = CARD_QIAN, d.stan = "000093";
    assert_string_equal(send_req(&d, &rsp), "15");
    c.pan = CARD_QIAN, c.stan = "000094", c.rrn = "632600000094";
    assert_string_equal(send_req(&c, &rsp), "15");
}

static void t_injected_decline(void **state)
{
    static issuer_reply a, b;
    iso8583_msg rsp;
    fx_req r = purchase(CARD_ZHANG, 100, "000100", "123456");
    (void)state;
    exchange_raw(&r, 1, &a, &rsp);
    assert_string_equal(fx_field(&rsp, 39), "05");
    assert_int_equal(balance_of(CARD_ZHANG), 1000000);
    exchange_raw(&r, 0, &b, &rsp); /* its retransmission gets the same decline */
    assert_memory_equal(a.data, b.data, a.len);
}

static void t_network_and_format_errors(void **state)
{
    static issuer_reply out;
    iso8583_msg rsp, req;
    px_error e = {0};
    uint8_t junk[] = "0200zz";
    fx_req r = {.mti = "0800", .amount = -1, .stan = "000001", .f70 = "301"};
    (void)state;
    assert_string_equal(send_req(&r, &rsp), "00");
    assert_string_equal(rsp.mti, "0810");
    assert_string_equal(fx_field(&rsp, 70), "301");
    r.f70 = "999";
    assert_string_equal(send_req(&r, &rsp), "12");
    r = purchase(CARD_ZHANG, 100, "000110", "123456");
    r.rrn = NULL;
    r.proc = "990000";
    assert_string_equal(send_req(&r, &rsp), "12"); /* a processing code not served */
    r = (fx_req){.mti = "0800", .amount = -1, .stan = "000002"};
    assert_string_equal(send_req(&r, &rsp), "30"); /* field 70 missing */
    /* bytes that do not unpack: 30 when the MTI reads, else the connection closes */
    int rc = iso8583_unpack(&iso8583_1987_ascii, junk, 6, &req, &e);
    assert_int_not_equal(rc, PX_OK);
    issuer_handle(F.core, junk, 6, &req, rc, &e, 0, &out);
    assert_true(out.len > 0 || out.close);
    rc = iso8583_unpack(&iso8583_1987_ascii, (const uint8_t *)"zz", 2, &req, &e);
    issuer_handle(F.core, (const uint8_t *)"zz", 2, &req, rc, &e, 0, &out);
    assert_int_equal(out.close, 1);
    assert_int_equal(out.len, 0);
}

/* The day's clearing file: header, then each approved financial message in order. */
static void t_clearing_file(void **state)
{
    iso8583_msg rsp;
    char f90[43], path[PX_PATH_MAX + 64], dir[PX_PATH_MAX + 16], today[11], want[512];
    char buf[4096];
    size_t lines = 0, n;
    px_error e = {0};
    FILE *f;
    fx_req p = purchase(CARD_ZHANG, 1000, "000120", "123456");
    fx_req bad = purchase(CARD_LI, 999999, "000121", "111111");
    fx_req rev = {.mti = "0420",
                  .proc = "000000",
                  .pan = CARD_ZHANG,
                  .amount = 1000,
                  .stan = "000122",
                  .tx_time = "1122101900",
                  .f90 = f90};
    (void)state;
    assert_string_equal(send_req(&p, &rsp), "00");
    assert_string_equal(send_req(&bad, &rsp), "51"); /* declines are not cleared */
    fx_f90("0200", "000120", FX_TX_TIME, f90);
    assert_string_equal(send_req(&rev, &rsp), "00");
    snprintf(dir, sizeof dir, "%s/clearing", F.dir);
    px_time_format_utc(px_now_ms(), "%Y-%m-%d", today, sizeof today);
    assert_int_equal(issuer_clearing_write(F.st, today, dir, path, sizeof path, &lines, &e), PX_OK);
    assert_int_equal(lines, 2);
    f = fopen(path, "r");
    assert_non_null(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    snprintf(want, sizeof want,
             ISSUER_CLEARING_HEADER
             "\n"
             "%s,632600000001,000120,purchase,622202******0007,1000,156,00,12345678,10000001,"
             "898100000000001,,\n"
             "%s,632600000001,000122,reversal,622202******0007,1000,156,00,12345678,10000001,"
             "898100000000001,,\n",
             today, today);
    assert_string_equal(buf, want);
    assert_null(strstr(buf, CARD_ZHANG));
    assert_int_equal(issuer_clearing_write(F.st, "2001-01-01", dir, path, sizeof path, &lines, &e),
                     PX_OK);
    assert_int_equal(lines, 0);
    assert_non_null(strstr(path, "clearing-20010101.csv"));
    assert_int_equal(issuer_clearing_write(F.st, "2001-13-01", dir, path, sizeof path, &lines, &e),
                     PX_EINVAL);
}

static int count_row(void *ud, const issuer_cardholder_row *r)
{
    int *n = ud;
    assert_null(strstr(r->pan_masked, "0000000")); /* middle digits masked */
    assert_int_equal(strlen(r->pan_masked) >= 16, 1);
    (*n)++;
    return 0;
}

static void t_cardholders_and_seed(void **state)
{
    issuer_cardholder_new n = {"6217000000000022",  "周九", "CCB-DEMO", "2912", ISSUER_PIN_PVV,
                               ISSUER_DEMO_PVK_PVV, 1,      NULL,       20000,  "156"};
    uint8_t pb[8];
    char pvv[13];
    iso8583_msg rsp;
    px_error e = {0};
    int rows = 0;
    fx_req r = purchase("6217000000000022", 100, "000130", "202020");
    (void)state;
    assert_int_equal(issuer_seed_demo(F.core, &e), PX_OK); /* twice: nothing new */
    assert_int_equal(issuer_cardholders_list(F.st, count_row, &rows, &e), PX_OK);
    assert_int_equal(rows, 6);
    /* a new card whose PVV the HSM computes from a PIN block under the ZPK */
    fx_pin_block("202020", n.pan, pb);
    assert_int_equal(issuer_pin_check_compute(F.core, ISSUER_PIN_PVV, n.pan, ISSUER_DEMO_ZPK, pb, 8,
                                              ISSUER_DEMO_PVK_PVV, 1, pvv, &e),
                     PX_OK);
    n.pin_check = pvv;
    assert_int_equal(issuer_cardholder_add(F.core, &n, &e), PX_OK);
    assert_string_equal(send_req(&r, &rsp), "00");
    assert_int_equal(issuer_cardholder_add(F.core, &n, &e), PX_EEXIST);
    assert_null(strstr(e.msg, n.pan));
    n.bank_id = "ICBC-DEMO"; /* a CCB BIN is not ICBC's */
    assert_int_equal(issuer_cardholder_add(F.core, &n, &e), PX_EINVAL);
    assert_non_null(strstr(e.msg, "621700******0022"));
    n.bank_id = "CCB-DEMO", n.pan = "6217000000000023";
    assert_int_equal(issuer_cardholder_add(F.core, &n, &e), PX_EINVAL); /* Luhn */
    n.pan = "6217000000000030", n.pvk_label = ISSUER_DEMO_PVK_IBM;      /* a V1 key for a PVV */
    assert_int_equal(issuer_cardholder_add(F.core, &n, &e), PX_EINVAL);
    assert_non_null(strstr(e.msg, "usage V1"));
}

/* 1 if needle occurs in the n bytes at p. */
static int contains(const uint8_t *p, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(p + i, needle, k) == 0)
            return 1;
    return 0;
}

/* No clear PAN in any row: the SQLite files hold none of the demo PANs. */
static void t_no_clear_pan_stored(void **state)
{
    static const char *const pans[] = {CARD_ZHANG, CARD_LI,   CARD_WANG,
                                       CARD_ZHAO,  CARD_QIAN, CARD_SUN};
    static const char *const files[] = {"var/possum.db", "var/possum.db-wal"};
    iso8583_msg rsp;
    fx_req r = purchase(CARD_ZHANG, 100, "000140", "123456");
    (void)state;
    if (backend != STORE_SQLITE)
        skip();
    assert_string_equal(send_req(&r, &rsp), "00");
    for (size_t i = 0; i < 2; i++) {
        char path[PX_PATH_MAX + 32];
        px_buf b;
        char chunk[8192];
        size_t n;
        FILE *f;
        snprintf(path, sizeof path, "%s/%s", F.dir, files[i]);
        f = fopen(path, "rb");
        if (f == NULL)
            continue;
        px_buf_init(&b, 64 * 1024 * 1024);
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
            assert_int_equal(px_buf_append(&b, chunk, n), PX_OK);
        fclose(f);
        for (size_t k = 0; k < sizeof pans / sizeof pans[0]; k++)
            assert_false(contains(b.data, b.len, pans[k]));
        px_buf_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(t_purchase_approved, setup, teardown),
        cmocka_unit_test_setup_teardown(t_ibm3624_and_19_digit_cards, setup, teardown),
        cmocka_unit_test_setup_teardown(t_insufficient_funds, setup, teardown),
        cmocka_unit_test_setup_teardown(t_wrong_pins_then_75, setup, teardown),
        cmocka_unit_test_setup_teardown(t_card_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(t_duplicate_same_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(t_reversal_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(t_reversal_without_field_90, setup, teardown),
        cmocka_unit_test_setup_teardown(t_void, setup, teardown),
        cmocka_unit_test_setup_teardown(t_balance_inquiry, setup, teardown),
        cmocka_unit_test_setup_teardown(t_mobile_debit_then_credit, setup, teardown),
        cmocka_unit_test_setup_teardown(t_injected_decline, setup, teardown),
        cmocka_unit_test_setup_teardown(t_network_and_format_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(t_clearing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(t_cardholders_and_seed, setup, teardown),
        cmocka_unit_test_setup_teardown(t_no_clear_pan_stored, setup, teardown),
    };
    int failed;
    if (backend == STORE_POSTGRES) {
        px_error e = {0};
        if (!pgtemp_is_available()) {
            const char *skip = getenv("POSSUM_SKIP_PG");
            fprintf(stderr, "PostgreSQL server binaries not installed (scripts/deps.sh)\n");
            return skip && strcmp(skip, "1") == 0 ? 77 : 1;
        }
        if (pgtemp_start(&pg, &e) != PX_OK) {
            fprintf(stderr, "pgtemp: %s\n", px_error_text(&e));
            return 1;
        }
    }
    failed = cmocka_run_group_tests_name(backend == STORE_SQLITE ? "issuer_txn_sqlite"
                                                                 : "issuer_txn_pg",
                                         tests, NULL, NULL);
    if (backend == STORE_POSTGRES)
        pgtemp_stop(&pg);
    return failed ? 1 : 0;
}
