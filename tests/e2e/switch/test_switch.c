/*
 * End to end, the transaction platform: possumd running the switch and the issuer simulator
 * (the provider) over real sockets, terminals registered with `possum terminal add`, a
 * simulated UnionPay terminal (termsim) signing on, paying, reversing, voiding, settling,
 * paying by mobile number (seed 002: payee registered over phonepay's API, lookup, payment,
 * reversal, `possum recon run` crediting the payee) with the ledger checked after each.
 * Bad input of every kind is answered with its documented code while others are served.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <jansson.h>

#include "crypto/crypto.h"
#include "hsm/hsm.h"
#include "harness.h"
#include "lib/hex.h"
#include "lib/str.h"
#include "lib/time.h"
#include "store/store.h"
#include "swfix.h"
#include "termsim.h"

static swfix F;
static swfix_node N;

#define MID "898100000000001"

static int setup(void **state)
{
    char sw[4096], is[4096], all[8192];
    px_error e = {0};
    int port = swfix_free_port();
    (void)state;
    if (net_init(&e) != PX_OK || swfix_init(&F, NULL) != 0)
        return -1;
    swfix_switch_section(&F, sw, sizeof sw, port,
                         "provider_timeout_ms = 2000\nreversal_retry_ms = 500\n"
                         "max_amount_minor = 500000\ncache_ttl_ms = 200\n");
    swfix_issuer_section(&F, is, sizeof is, port, NULL);
    /* the mobile-number payment service in the same daemon: the switch calls it in-process;
     * its payee API on a port of its own, its notifications to a webhook nobody serves (so a
     * one-time code waits in the outbox, where the test reads it) */
    snprintf(all, sizeof all,
             "%s\n%s\n[phonepay]\nenabled = true\nhsm_lmk_file = %s\n"
             "hsm_audit_file = %s\napi_listen = 127.0.0.1:0\n"
             "webhook_url = http://127.0.0.1:%d/hook\n",
             sw, is, F.lmk, F.audit, swfix_free_port());
    /* Registered before the node starts: while it runs, no other process opens its SQLite
     * file (docs/switch.md, "Operating on SQLite"); the tests read through its endpoints. */
    if (swfix_add_terminal(&F, "10000001", MID, "Possum Coffee") != 0 ||
        swfix_add_terminal(&F, "10000002", MID, "Possum Coffee") != 0 ||
        swfix_add_terminal(&F, "10000003", "898100000000002", "Possum Tea") != 0 ||
        swfix_add_terminal(&F, "10000004", "898100000000003", "Possum Books") != 0)
        return -1;
    return swfix_start(&F, &N, "node1", NULL, all);
}

static int teardown(void **state)
{
    px_buf out;
    int status, check;
    (void)state;
    status = swfix_stop(&N, SIGTERM, 15000);
    if (status != 0)
        swfix_dump_log(&N);
    /* The node has stopped: the operator's CLI checks the ledger it left. */
    px_buf_init(&out, 1 << 20);
    check = swfix_cli(&F, &out, "ledger check");
    if (check != 0 || strstr(px_buf_str(&out), "ledger check OK") == NULL) {
        fprintf(stderr, "%s", px_buf_str(&out));
        check = 1;
    }
    px_buf_free(&out);
    /* the HSM audit chain, written by the switch's two HSM sessions, the issuer, phonepay
     * and the CLI, is intact */
    {
        size_t entries = 0;
        px_error e = {0};
        if (hsm_audit_verify(F.audit, NULL, &entries, &e) != PX_OK) {
            fprintf(stderr, "audit: %s\n", px_error_text(&e));
            check = 1;
        }
    }
    swfix_cleanup(&F);
    return status == 0 && check == 0 ? 0 : -1;
}

static void term(termsim *t, const char *tid, const char *mid)
{
    px_error e = {0};
    assert_int_equal(termsim_init(t, tid, mid, SWFIX_TMK_C1, SWFIX_TMK_C2, &e), 0);
    if (termsim_connect(t, N.switch_port, &e) != 0)
        fail_msg("connect: %s", e.msg);
}

static void signon(termsim *t)
{
    iso8583_msg rsp;
    px_error e = {0};
    if (termsim_signon(t, &rsp, &e) != 0)
        fail_msg("sign-on: %s", px_error_text(&e));
}

static const char *field(const iso8583_msg *m, int f)
{
    const uint8_t *p;
    size_t n;
    return iso8583_get(m, f, &p, &n) == 0 ? (const char *)p : "";
}

/* A purchase (MACed) and its answer; returns field 39. */
static const char *purchase(termsim *t, const char *pan, const char *pin, int64_t amount,
                            char stan[7], iso8583_msg *rsp)
{
    iso8583_msg m;
    px_error e = {0};
    termsim_next_stan(t, stan);
    termsim_begin(t, &m, "0200", stan, "22", "000");
    assert_int_equal(termsim_card(t, &m, "000000", pan, amount, pin, &e), 0);
    if (termsim_exchange(t, &m, 1, rsp, 10000, &e) != 0)
        fail_msg("purchase: %s", px_error_text(&e));
    return termsim_rc(rsp);
}

/* GET a node's endpoint as JSON (NULL unless 200). */
static json_t *get_json(const char *path)
{
    px_buf out;
    long status = 0;
    json_t *j = NULL;
    px_buf_init(&out, 1 << 22);
    if (e2e_http(N.http_port, "GET", path, NULL, &status, &out) == 0 && status == 200)
        j = json_loads(px_buf_str(&out), 0, NULL);
    else
        fprintf(stderr, "GET %s: %ld %s\n", path, status, px_buf_str(&out));
    px_buf_free(&out);
    return j;
}

static int ledger_check_ok(void);

/* ---- mobile-number payment (phonepay in the same daemon) ---- */

static void test_mobile_payment_refusals(void **state)
{
    termsim t;
    iso8583_msg m, rsp, r2;
    uint8_t out[PX_ISO_MSG_MAX + 2], in1[PX_ISO_MSG_MAX], in2[PX_ISO_MSG_MAX];
    size_t n = 0, n1 = 0, n2 = 0;
    char stan[7];
    px_error e = {0};
    (void)state;
    term(&t, "10000002", MID);
    signon(&t);
    /* payee lookup: a number that is not a mainland-China mobile number -> Q1 */
    termsim_next_stan(&t, stan);
    termsim_begin(&t, &m, "0100", stan, "81", "000");
    (void)iso8583_set(&m, 3, "380000", NULL);
    (void)iso8583_set(&m, 4, "000000001000", NULL);
    (void)iso8583_set(&m, 48, "1234567890113800138000", NULL);
    assert_int_equal(termsim_exchange(&t, &m, 1, &rsp, 10000, &e), 0);
    assert_string_equal(rsp.mti, "0110");
    assert_string_equal(termsim_rc(&rsp), "Q1");
    assert_true(strlen(field(&rsp, 63)) > 0);
    /* a valid number nobody registered -> Q2; its retransmission gets the same bytes */
    termsim_next_stan(&t, stan);
    termsim_begin(&t, &m, "0100", stan, "81", "000");
    (void)iso8583_set(&m, 3, "380000", NULL);
    (void)iso8583_set(&m, 4, "000000001000", NULL);
    (void)iso8583_set(&m, 48, "1390000000113800138000", NULL);
    assert_int_equal(termsim_pack(&t, &m, 1, out, sizeof out, &n, &e), 0);
    assert_int_equal(net_client_send_raw(t.c, out, n, &e), 0);
    assert_int_equal(net_client_recv_frame(t.c, in1, sizeof in1, &n1, 10000, &e), 0);
    assert_int_equal(net_client_send_raw(t.c, out, n, &e), 0);
    assert_int_equal(net_client_recv_frame(t.c, in2, sizeof in2, &n2, 10000, &e), 0);
    assert_int_equal(n1, n2);
    assert_memory_equal(in1, in2, n1);
    assert_int_equal(termsim_unpack(&t, in1, n1, &r2, &e), 0);
    assert_string_equal(termsim_rc(&r2), "Q2");
    /* a payment with a reference that was never issued -> 12, nothing posted */
    termsim_next_stan(&t, stan);
    termsim_begin(&t, &m, "0200", stan, "82", "000");
    assert_int_equal(termsim_card(&t, &m, "480000", SWFIX_CARD_OK, 1000, SWFIX_CARD_OK_PIN, &e), 0);
    (void)iso8583_set(&m, 48, "1390000000113800138000123456789012", NULL);
    assert_int_equal(termsim_exchange(&t, &m, 1, &rsp, 10000, &e), 0);
    assert_string_equal(termsim_rc(&rsp), "12");
    assert_true(ledger_check_ok());
    termsim_close(&t);
}

static int ledger_check_ok(void)
{
    json_t *j = get_json("/v1/switch/ledger/check");
    int ok = j != NULL && json_is_true(json_object_get(j, "ok"));
    if (!ok && j != NULL) {
        char *d = json_dumps(j, 0);
        fprintf(stderr, "ledger check: %s\n", d);
        free(d);
    }
    json_decref(j);
    return ok;
}

static long long account_balance(const char *id)
{
    json_t *j = get_json("/v1/switch/ledger/balances"), *a;
    size_t i;
    long long v = 0;
    assert_non_null(j);
    json_array_foreach (json_object_get(j, "accounts"), i, a)
        if (strcmp(json_string_value(json_object_get(a, "id")), id) == 0)
            v = json_integer_value(json_object_get(a, "balance_minor"));
    json_decref(j);
    return v;
}

static long long merchant_balance(const char *mid)
{
    char id[64];
    snprintf(id, sizeof id, "merchant:%s", mid);
    return account_balance(id);
}

/* ---- an approved mobile-number payment: posted, reversed, credited (seed 002) ---- */

#define PP_PAYEE "13812345678"
#define PP_PAYER "13987654321"
#define PP_PAYEE_CARD "6217000000000006" /* 王五 (CCB demo): the issuer can credit it */
#define PP_PAYEES "phonepay:payees"
#define PP_PROVIDER "provider:settlement"

/* The payee REST API's port, from the node's ports file ("phonepay=HOST:PORT"). */
static int payee_api_port(void)
{
    for (int i = 0; i < 100; i++) {
        char line[256];
        FILE *fp = fopen(N.ports, "r");
        int64_t port = 0;
        while (fp != NULL && fgets(line, sizeof line, fp) != NULL) {
            char *colon = strrchr(line, ':');
            if (strncmp(line, "phonepay=", 9) != 0 || colon == NULL)
                continue;
            colon[strcspn(colon, "\r\n")] = 0;
            if (px_parse_i64(colon + 1, 1, 65535, &port) != PX_OK)
                port = 0;
        }
        if (fp != NULL)
            fclose(fp);
        if (port > 0)
            return (int)port;
        usleep(50000);
    }
    fail_msg("no phonepay= line in %s", N.ports);
    return -1;
}

/* The last one-time code queued for mobile (its text waits in the outbox: no webhook is up),
 * read from the node's database as an operator's CLI would. */
static void otp_code(const char *mobile, char code[7])
{
    store_config sc;
    store *st = NULL;
    store_stmt *q;
    px_error e = {0};
    const char *p = NULL;
    store_config_default(&sc);
    snprintf(sc.path, sizeof sc.path, "%s/switch.db", F.dir);
    code[0] = 0;
    assert_int_equal(store_open(&sc, &st, &e), PX_OK);
    assert_int_equal(store_prepare(st,
                                   "SELECT body FROM phonepay_outbox WHERE recipient = $1 AND "
                                   "event = 'otp' ORDER BY created_ms DESC LIMIT 1",
                                   &q, &e),
                     PX_OK);
    store_bind_text(q, 1, mobile);
    if (store_step(q, &e) == STORE_ROW && store_col_text(q, 0) != NULL &&
        (p = strstr(store_col_text(q, 0), "验证码")) != NULL)
        px_strlcpy(code, p + strlen("验证码"), 7);
    store_done(q);
    store_close(st);
    assert_int_equal(strlen(code), 6);
    assert_true(px_is_digits(code, 6));
}

/* [0038], claim 2: the payee registers over the REST API and confirms the code. */
static void register_payee(void)
{
    int port = payee_api_port();
    char code[7], body[64];
    long status = 0;
    px_buf out;
    px_buf_init(&out, 1 << 16);
    assert_int_equal(e2e_http(port, "POST", "/v1/payees",
                              "{\"name\":\"王五\",\"mobile\":\"" PP_PAYEE
                              "\",\"card\":\"" PP_PAYEE_CARD "\"}",
                              &status, &out),
                     0);
    assert_int_equal(status, 202);
    otp_code(PP_PAYEE, code);
    snprintf(body, sizeof body, "{\"code\":\"%s\"}", code);
    assert_int_equal(e2e_http(port, "POST", "/v1/payees/" PP_PAYEE "/confirm", body, &status, &out),
                     0);
    assert_int_equal(status, 200);
    px_buf_free(&out);
}

/* Payee lookup 0100 / 380000 ([0047]-[0048]); ref gets field 37. Returns field 39. */
static const char *payee_lookup(termsim *t, int64_t amount, char ref[13], iso8583_msg *rsp)
{
    iso8583_msg m;
    char stan[7], f4[13];
    px_error e = {0};
    termsim_next_stan(t, stan);
    termsim_begin(t, &m, "0100", stan, "81", "000");
    snprintf(f4, sizeof f4, "%012lld", (long long)amount);
    (void)iso8583_set(&m, 3, "380000", NULL);
    (void)iso8583_set(&m, 4, f4, NULL);
    (void)iso8583_set(&m, 48, PP_PAYEE PP_PAYER, NULL);
    if (termsim_exchange(t, &m, 1, rsp, 10000, &e) != 0)
        fail_msg("lookup: %s", px_error_text(&e));
    assert_string_equal(rsp->mti, "0110");
    px_strlcpy(ref, field(rsp, 37), 13);
    return termsim_rc(rsp);
}

/* Mobile-number payment 0200 / 480000 ([0050]-[0054]) with reference ref, sent twice (a
 * retransmission gets the same bytes). Returns field 39. */
static const char *mobile_payment(termsim *t, const char *ref, int64_t amount, char stan[7],
                                  iso8583_msg *rsp)
{
    iso8583_msg m;
    uint8_t out[PX_ISO_MSG_MAX + 2], in1[PX_ISO_MSG_MAX], in2[PX_ISO_MSG_MAX];
    size_t n = 0, n1 = 0, n2 = 0;
    char f48[40];
    px_error e = {0};
    termsim_next_stan(t, stan);
    termsim_begin(t, &m, "0200", stan, "82", "000");
    assert_int_equal(termsim_card(t, &m, "480000", SWFIX_CARD_OK, amount, SWFIX_CARD_OK_PIN, &e),
                     0);
    snprintf(f48, sizeof f48, "%s%s%s", PP_PAYEE, PP_PAYER, ref);
    (void)iso8583_set(&m, 48, f48, NULL);
    assert_int_equal(termsim_pack(t, &m, 1, out, sizeof out, &n, &e), 0);
    assert_int_equal(net_client_send_raw(t->c, out, n, &e), 0);
    assert_int_equal(net_client_recv_frame(t->c, in1, sizeof in1, &n1, 10000, &e), 0);
    assert_int_equal(net_client_send_raw(t->c, out, n, &e), 0);
    assert_int_equal(net_client_recv_frame(t->c, in2, sizeof in2, &n2, 10000, &e), 0);
    assert_int_equal(n1, n2);
    assert_memory_equal(in1, in2, n1);
    assert_int_equal(termsim_unpack(t, in1, n1, rsp, &e), 0);
    return termsim_rc(rsp);
}

/* The terminal's reversal 0400 of mobile-number payment stan. */
static void mobile_reversal(termsim *t, const char *stan, int64_t amount, iso8583_msg *rsp)
{
    iso8583_msg m;
    px_error e = {0};
    termsim_begin(t, &m, "0400", stan, "82", "000");
    assert_int_equal(termsim_card(t, &m, "480000", SWFIX_CARD_OK, amount, NULL, &e), 0);
    iso8583_clear(&m, 22);
    (void)iso8583_set(&m, 22, "021", NULL);
    (void)iso8583_set(&m, 39, "98", NULL);
    assert_int_equal(termsim_exchange(t, &m, 1, rsp, 10000, &e), 0);
    assert_string_equal(termsim_rc(rsp), "00");
}

/* [0055]: the provider's clearing file of today (`possum issuer clearing`), then `possum
 * recon run` on it (its own config: [phonepay] with the provider) into out. Returns recon's
 * exit status. */
static int recon_today(px_buf *out)
{
    char date[11], ymd[9], ini[PX_PATH_MAX + 16], exe[PX_PATH_MAX], cmd[4096];
    FILE *fp;
    px_time_format_utc(px_now_ms(), "%Y-%m-%d", date, sizeof date);
    px_time_format_utc(px_now_ms(), "%Y%m%d", ymd, sizeof ymd);
    if (swfix_cli(&F, out, "issuer clearing --date %s --out %s/clearing", date, F.dir) != 0)
        fail_msg("issuer clearing: %s", px_buf_str(out));
    snprintf(ini, sizeof ini, "%s/recon.ini", F.dir);
    fp = fopen(ini, "w");
    assert_non_null(fp);
    fprintf(fp,
            "%s\n[phonepay]\nenabled = true\nprovider_connect = 127.0.0.1:%d\n"
            "hsm_lmk_file = %s\nhsm_audit_file = %s\nclearing_dir = %s/clearing\n",
            F.store_ini, N.issuer_port, F.lmk, F.audit, F.dir);
    assert_int_equal(fclose(fp), 0);
    e2e_binary("src/app/possum", exe, sizeof exe);
    snprintf(cmd, sizeof cmd,
             "%s recon run --date %s --file %s/clearing/clearing-%s.csv "
             "--config %s 2>&1",
             exe, date, F.dir, ymd, ini);
    px_buf_reset(out);
    return e2e_run(cmd, out);
}

/* Seed 002 through the switch: lookup, payment, reversal, recon; the ledger after each. */
static void test_mobile_payment_posted_and_credited(void **state)
{
    termsim t;
    iso8583_msg rsp;
    char ref[13], ref2[13], stan[7], stan2[7], rrn[13];
    long long prov = account_balance(PP_PROVIDER);
    px_buf out;
    int rc;
    (void)state;
    px_buf_init(&out, 1 << 20);
    register_payee();
    assert_int_equal(swfix_cli(&F, NULL, "phonepay bin add 622202 ICBC"), 0);
    term(&t, "10000001", MID);
    signon(&t);
    assert_string_equal(payee_lookup(&t, 10000, ref, &rsp), "00");
    assert_string_equal(field(&rsp, 63), "王*");
    assert_int_equal(strlen(ref), 12);
    assert_string_equal(mobile_payment(&t, ref, 10000, stan, &rsp), "00");
    px_strlcpy(rrn, field(&rsp, 37), sizeof rrn);
    /* [0054]: the provider collected A for us; we owe it to the payee (once: the repeat) */
    assert_int_equal(account_balance(PP_PROVIDER), prov + 10000);
    assert_int_equal(account_balance(PP_PAYEES), -10000);
    assert_true(ledger_check_ok());
    /* another payment, reversed by the terminal: its entries undone, once */
    assert_string_equal(payee_lookup(&t, 2500, ref2, &rsp), "00");
    assert_string_equal(mobile_payment(&t, ref2, 2500, stan2, &rsp), "00");
    assert_int_equal(account_balance(PP_PAYEES), -12500);
    for (int i = 0; i < 2; i++) {
        mobile_reversal(&t, stan2, 2500, &rsp);
        assert_int_equal(account_balance(PP_PAYEES), -10000);
        assert_int_equal(account_balance(PP_PROVIDER), prov + 10000);
    }
    assert_true(ledger_check_ok());
    termsim_close(&t);
    /* [0055]: recon credits the payee; the provider paid A out of what it owed us */
    rc = recon_today(&out);
    if ((rc != 0 && rc != 3) || strstr(px_buf_str(&out), "1 sent now") == NULL ||
        strstr(px_buf_str(&out), rrn) == NULL)
        fail_msg("recon run -> %d:\n%s", rc, px_buf_str(&out));
    assert_int_equal(account_balance(PP_PAYEES), 0);
    assert_int_equal(account_balance(PP_PROVIDER), prov);
    assert_true(ledger_check_ok());
    /* a second run credits nothing and posts nothing */
    rc = recon_today(&out);
    if ((rc != 0 && rc != 3) || strstr(px_buf_str(&out), "0 sent now, 1 credited before") == NULL)
        fail_msg("second recon run -> %d:\n%s", rc, px_buf_str(&out));
    assert_int_equal(account_balance(PP_PAYEES), 0);
    assert_int_equal(account_balance(PP_PROVIDER), prov);
    assert_true(ledger_check_ok());
    px_buf_free(&out);
}

/* ---- registry, sign-on, MAC ---- */

static void test_unknown_terminal_97(void **state)
{
    termsim t;
    iso8583_msg rsp;
    px_error e = {0};
    (void)state;
    term(&t, "99999999", MID);
    assert_int_not_equal(termsim_signon(&t, &rsp, &e), 0);
    assert_string_equal(termsim_rc(&rsp), "97");
    termsim_close(&t);
}

static void test_registry(void **state)
{
    json_t *j = get_json("/v1/switch/terminals/10000003");
    (void)state;
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "mid")), "898100000000002");
    assert_string_equal(json_string_value(json_object_get(j, "name")), "Possum Tea");
    assert_int_equal(strlen(json_string_value(json_object_get(j, "tmk_kcv"))), 6);
    json_decref(j);
}

static void test_signon_delivers_keys(void **state)
{
    termsim t;
    iso8583_msg rsp;
    px_error e = {0};
    uint8_t clear[16], cv[8];
    const uint8_t *f62;
    size_t n, cn = 0;
    (void)state;
    term(&t, "10000001", MID);
    signon(&t);
    assert_true(t.batch >= 1);
    /* sign on again: a new batch and new keys */
    int64_t first = t.batch;
    uint8_t old_mak[16];
    memcpy(old_mak, t.mak, 16);
    if (termsim_signon(&t, &rsp, &e) != 0)
        fail_msg("second sign-on: %s", e.msg);
    assert_int_equal(t.batch, first + 1);
    assert_memory_not_equal(old_mak, t.mak, 16);
    /* field 62: each check value is 4 bytes of E(K, 0) */
    assert_int_equal(iso8583_get(&rsp, 62, &f62, &n), 0);
    assert_int_equal(n, 60);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(crypto_decrypt(CRYPTO_TDES, CRYPTO_ECB, t.tmk, 16, NULL, f62 + i * 20, 16,
                                        clear, NULL),
                         0);
        assert_int_equal(crypto_kcv(CRYPTO_TDES, clear, 16, cv, sizeof cv, &cn, NULL), 0);
        assert_int_equal(crypto_kcv_verify(CRYPTO_TDES, clear, 16, f62 + i * 20 + 16, 4, NULL), 0);
    }
    assert_string_equal(field(&rsp, 32), "01020000");
    assert_int_equal(strlen(field(&rsp, 37)), 12);
    termsim_close(&t);
}

static void test_mac_errors_a0(void **state)
{
    termsim t;
    iso8583_msg m, rsp;
    uint8_t out[PX_ISO_MSG_MAX];
    size_t n = 0;
    char stan[7];
    px_error e = {0};
    long long before = swfix_metric(&N, "possum_switch_security_events_total{reason=\"mac\"}");
    (void)state;
    term(&t, "10000002", MID);
    signon(&t);
    /* a wrong MAC: one byte flipped after packing */
    termsim_next_stan(&t, stan);
    termsim_begin(&t, &m, "0200", stan, "22", "000");
    assert_int_equal(termsim_card(&t, &m, "000000", SWFIX_CARD_OK, 100, NULL, &e), 0);
    assert_int_equal(termsim_pack(&t, &m, 1, out, sizeof out, &n, &e), 0);
    out[n - 1] ^= 0x01;
    assert_int_equal(termsim_exchange_raw(&t, out, n, &rsp, 5000, &e), 0);
    assert_string_equal(termsim_rc(&rsp), "A0");
    /* no MAC at all */
    termsim_next_stan(&t, stan);
    termsim_begin(&t, &m, "0200", stan, "22", "000");
    assert_int_equal(termsim_card(&t, &m, "000000", SWFIX_CARD_OK, 100, NULL, &e), 0);
    assert_int_equal(termsim_exchange(&t, &m, 0, &rsp, 5000, &e), 0);
    assert_string_equal(termsim_rc(&rsp), "A0");
    assert_int_equal(swfix_metric(&N, "possum_switch_security_events_total{reason=\"mac\"}"),
                     before + 2);
    /* the same connection goes on */
    assert_string_equal(purchase(&t, SWFIX_CARD_OK, SWFIX_CARD_OK_PIN, 100, stan, &rsp), "00");
    termsim_close(&t);
}

static void test_not_signed_on_77_and_signoff(void **state)
{
    termsim t;
    iso8583_msg m, rsp;
    char stan[7];
    px_error e = {0};
    (void)state;
    term(&t, "10000003", "898100000000002");
    /* keys of its own making: the switch has none for it yet */
    memset(t.mak, 0x11, 16);
    termsim_next_stan(&t, stan);
    termsim_begin(&t, &m, "0200", stan, "22", "000");
    assert_int_equal(termsim_card(&t, &m, "000000", SWFIX_CARD_OK, 100, NULL, &e), 0);
    assert_int_equal(termsim_exchange(&t, &m, 1, &rsp, 5000, &e), 0);
    assert_string_equal(termsim_rc(&rsp), "77");
    assert_int_equal(t.header_flag, 3); /* "sign on again" */
    signon(&t);
    assert_string_equal(purchase(&t, SWFIX_CARD_OK, SWFIX_CARD_OK_PIN, 250, stan, &rsp), "00");
    /* sign-off forgets the keys */
    termsim_next_stan(&t, stan);
    termsim_begin(&t, &m, "0820", stan, "00", "002");
    assert_int_equal(termsim_exchange(&t, &m, 0, &rsp, 5000, &e), 0);
    assert_string_equal(termsim_rc(&rsp), "00");
    assert_string_equal(purchase(&t, SWFIX_CARD_OK, SWFIX_CARD_OK_PIN, 250, stan, &rsp), "77");
    termsim_close(&t);
}

static void test_wrong_merchant_03(void **state)
{
    termsim t;
    iso8583_msg rsp;
    char stan[7];
    (void)state;
    term(&t, "10000001", MID);
    signon(&t);
    px_strlcpy(t.mid, "898100000000099", sizeof t.mid);
    assert_string_equal(purchase(&t, SWFIX_CARD_OK, SWFIX_CARD_OK_PIN, 100, stan, &rsp), "03");
    termsim_close(&t);
}

/* ---- purchases ---- */

static void test_purchase_approved_and_posted(void **state)
{
    termsim t;
    iso8583_msg rsp;
    char stan[7];
    (void)state;
    term(&t, "10000001", MID);
    signon(&t);
    assert_string_equal(purchase(&t, SWFIX_CARD_OK, SWFIX_CARD_OK_PIN, 1234, stan, &rsp), "00");
    assert_string_equal(field(&rsp, 11), stan);
    assert_string_equal(field(&rsp, 4), "000000001234");
    assert_int_equal(strlen(field(&rsp, 37)), 12);
    assert_int_equal(strlen(field(&rsp, 38)), 6);
    assert_true(iso8583_has(&rsp, 64)); /* verified by termsim_unpack */
    assert_true(ledger_check_ok());
    assert_true(merchant_balance(MID) <= -1234);
    assert_true(account_balance("provider:settlement") >= 1234);
    termsim_close(&t);
}

static void test_purchase_refusals(void **state)
{
    termsim t;
    iso8583_msg rsp;
    char stan[7];
    (void)state;
    term(&t, "10000002", MID);
    signon(&t);
    assert_string_equal(purchase(&t, SWFIX_CARD_OK, SWFIX_CARD_OK_PIN, 0, stan, &rsp), "13");
    assert_string_equal(purchase(&t, SWFIX_CARD_OK, SWFIX_CARD_OK_PIN, 500001, stan, &rsp), "61");
    assert_string_equal(purchase(&t, SWFIX_CARD_OK, "999999", 100, stan, &rsp), "55");
    assert_string_equal(purchase(&t, SWFIX_CARD_POOR, "111111", 400000, stan, &rsp), "51");
    assert_string_equal(purchase(&t, SWFIX_CARD_RURAL, "123456", 100, stan, &rsp), "15");
    assert_non_null(strstr(field(&rsp, 63), "contracted bank"));
    assert_true(ledger_check_ok());
    termsim_close(&t);
}

static void test_balance_inquiry(void **state)
{
    termsim t;
    iso8583_msg m, rsp;
    char stan[7];
    px_error e = {0};
    (void)state;
    term(&t, "10000002", MID);
    signon(&t);
    termsim_next_stan(&t, stan);
    termsim_begin(&t, &m, "0200", stan, "01", "000");
    assert_int_equal(termsim_card(&t, &m, "310000", SWFIX_CARD_OK, -1, SWFIX_CARD_OK_PIN, &e), 0);
    assert_int_equal(termsim_exchange(&t, &m, 1, &rsp, 10000, &e), 0);
    assert_string_equal(termsim_rc(&rsp), "00");
    assert_int_equal(strlen(field(&rsp, 54)), 20);
    assert_memory_equal(field(&rsp, 54), "1002156C", 8);
    termsim_close(&t);
}

/* ---- duplicates ---- */

static void test_duplicate_replayed_byte_for_byte(void **state)
{
    termsim t;
    iso8583_msg m, r1, r2;
    uint8_t out[PX_ISO_MSG_MAX], in1[PX_ISO_MSG_MAX], in2[PX_ISO_MSG_MAX];
    size_t n = 0, n1 = 0, n2 = 0;
    char stan[7];
    px_error e = {0};
    (void)state;
    term(&t, "10000001", MID);
    signon(&t);
    termsim_next_stan(&t, stan);
    termsim_begin(&t, &m, "0200", stan, "22", "000");
    assert_int_equal(termsim_card(&t, &m, "000000", SWFIX_CARD_OK, 777, SWFIX_CARD_OK_PIN, &e), 0);
    assert_int_equal(termsim_pack(&t, &m, 1, out, sizeof out, &n, &e), 0);
    assert_int_equal(net_client_send_raw(t.c, out, n, &e), 0);
    assert_int_equal(net_client_recv_frame(t.c, in1, sizeof in1, &n1, 10000, &e), 0);
    assert_int_equal(net_client_send_raw(t.c, out, n, &e), 0); /* the same bytes again */
    assert_int_equal(net_client_recv_frame(t.c, in2, sizeof in2, &n2, 10000, &e), 0);
    assert_int_equal(n1, n2);
    assert_memory_equal(in1, in2, n1);
    assert_int_equal(termsim_unpack(&t, in1, n1, &r1, &e), 0);
    assert_string_equal(termsim_rc(&r1), "00");
    /* same identifier (STAN, batch), other content: 94 */
    termsim_begin(&t, &m, "0200", stan, "22", "000");
    assert_int_equal(termsim_card(&t, &m, "000000", SWFIX_CARD_OK, 778, SWFIX_CARD_OK_PIN, &e), 0);
    assert_int_equal(termsim_exchange(&t, &m, 1, &r2, 10000, &e), 0);
    assert_string_equal(termsim_rc(&r2), "94");
    assert_true(swfix_metric(&N, "possum_switch_duplicates_total{action=\"replayed\"}") >= 1);
    assert_true(ledger_check_ok());
    termsim_close(&t);
}

/* ---- reversal, void ---- */

static void reversal(termsim *t, const char *stan, int64_t amount, iso8583_msg *rsp)
{
    iso8583_msg m;
    px_error e = {0};
    termsim_begin(t, &m, "0400", stan, "22", "000");
    assert_int_equal(termsim_card(t, &m, "000000", SWFIX_CARD_OK, amount, NULL, &e), 0);
    iso8583_clear(&m, 22);
    (void)iso8583_set(&m, 22, "021", NULL);
    (void)iso8583_set(&m, 39, "98", NULL);
    assert_int_equal(termsim_exchange(t, &m, 1, rsp, 10000, &e), 0);
}

static void test_reversal_undoes_once(void **state)
{
    termsim t;
    iso8583_msg rsp, r2;
    char stan[7];
    long long before, after;
    (void)state;
    term(&t, "10000003", "898100000000002");
    signon(&t);
    before = merchant_balance("898100000000002");
    assert_string_equal(purchase(&t, SWFIX_CARD_OK, SWFIX_CARD_OK_PIN, 5000, stan, &rsp), "00");
    assert_int_equal(merchant_balance("898100000000002"), before - 5000);
    reversal(&t, stan, 5000, &rsp);
    assert_string_equal(termsim_rc(&rsp), "00");
    after = merchant_balance("898100000000002");
    assert_int_equal(after, before);
    reversal(&t, stan, 5000, &r2); /* repeated until answered: once only */
    assert_string_equal(termsim_rc(&r2), "00");
    assert_int_equal(merchant_balance("898100000000002"), before);
    /* a reversal of something never seen is a success too */
    termsim_next_stan(&t, stan);
    reversal(&t, stan, 100, &rsp);
    assert_string_equal(termsim_rc(&rsp), "00");
    assert_true(ledger_check_ok());
    termsim_close(&t);
}

static void test_void_once(void **state)
{
    termsim t;
    iso8583_msg m, rsp;
    char stan[7], ostan[7], rrn[13], f61[16];
    px_error e = {0};
    long long before;
    (void)state;
    term(&t, "10000003", "898100000000002");
    signon(&t);
    before = merchant_balance("898100000000002");
    assert_string_equal(purchase(&t, SWFIX_CARD_OK, SWFIX_CARD_OK_PIN, 3000, ostan, &rsp), "00");
    px_strlcpy(rrn, field(&rsp, 37), sizeof rrn);
    for (int i = 0; i < 2; i++) {
        termsim_next_stan(&t, stan);
        termsim_begin(&t, &m, "0200", stan, "23", "000");
        assert_int_equal(termsim_card(&t, &m, "200000", SWFIX_CARD_OK, 3000, SWFIX_CARD_OK_PIN, &e),
                         0);
        (void)iso8583_set(&m, 37, rrn, NULL);
        snprintf(f61, sizeof f61, "%06lld%s", (long long)t.batch, ostan);
        (void)iso8583_set(&m, 61, f61, NULL);
        assert_int_equal(termsim_exchange(&t, &m, 1, &rsp, 10000, &e), 0);
        assert_string_equal(termsim_rc(&rsp), i == 0 ? "00" : "12");
    }
    assert_int_equal(merchant_balance("898100000000002"), before);
    assert_true(ledger_check_ok());
    termsim_close(&t);
}

/* ---- settlement, batch upload ---- */

static void settle(termsim *t, long long dc, long long da, long long cc, long long ca,
                   iso8583_msg *rsp)
{
    iso8583_msg m;
    char stan[7], f48[80];
    px_error e = {0};
    termsim_next_stan(t, stan);
    termsim_begin(t, &m, "0500", stan, "00", "201");
    snprintf(f48, sizeof f48, "%03lld%012lld%03lld%012lld0%03d%012d%03d%012d0", dc, da, cc, ca, 0,
             0, 0, 0);
    (void)iso8583_set(&m, 48, f48, NULL);
    assert_int_equal(termsim_exchange(t, &m, 1, rsp, 10000, &e), 0);
    assert_string_equal(termsim_rc(rsp), "00");
}

static void test_settlement_and_upload(void **state)
{
    termsim t;
    iso8583_msg m, rsp;
    char stan[7], s1[7], s2[7], f48[80], tmp[64];
    px_error e = {0};
    json_t *j, *d;
    (void)state;
    term(&t, "10000002", MID);
    signon(&t);
    assert_string_equal(purchase(&t, SWFIX_CARD_OK, SWFIX_CARD_OK_PIN, 1000, s1, &rsp), "00");
    assert_string_equal(purchase(&t, SWFIX_CARD_OK, SWFIX_CARD_OK_PIN, 2000, s2, &rsp), "00");
    settle(&t, 2, 3000, 0, 0, &rsp);
    assert_int_equal(field(&rsp, 48)[30], '1'); /* balanced */
    /* the batch is closed: a purchase now needs a new sign-on */
    assert_string_equal(purchase(&t, SWFIX_CARD_OK, SWFIX_CARD_OK_PIN, 100, stan, &rsp), "77");
    /* a new batch, settled with the wrong totals, then the upload */
    signon(&t);
    assert_string_equal(purchase(&t, SWFIX_CARD_OK, SWFIX_CARD_OK_PIN, 1500, s1, &rsp), "00");
    settle(&t, 2, 2500, 0, 0, &rsp);
    assert_int_equal(field(&rsp, 48)[30], '2'); /* not balanced */
    termsim_next_stan(&t, stan);
    termsim_begin(&t, &m, "0320", stan, "00", "202");
    snprintf(f48, sizeof f48, "02%s%012d000000%s%012d000000", s1, 1500, "999999", 1000);
    (void)iso8583_set(&m, 48, f48, NULL);
    assert_int_equal(termsim_exchange(&t, &m, 1, &rsp, 10000, &e), 0);
    assert_string_equal(termsim_rc(&rsp), "00");
    snprintf(tmp, sizeof tmp, "/v1/switch/batches/10000002/%lld", (long long)t.batch);
    j = get_json(tmp);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "result")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "uploaded")), 2);
    d = json_array_get(json_object_get(j, "differences"), 0);
    assert_non_null(d);
    assert_string_equal(json_string_value(json_object_get(d, "side")), "terminal-only");
    assert_string_equal(json_string_value(json_object_get(d, "stan")), "999999");
    assert_null(json_array_get(json_object_get(j, "differences"), 1));
    json_decref(j);
    termsim_close(&t);
}

/* ---- the TMS flag ---- */

static long set_flag(const char *tid, int on)
{
    char path[128];
    px_buf out;
    long status = 0;
    snprintf(path, sizeof path, "/v1/switch/terminals/%s/update-waiting", tid);
    px_buf_init(&out, 1 << 16);
    assert_int_equal(e2e_http(N.http_port, "PUT", path,
                              on ? "{\"waiting\": true}" : "{\"waiting\": false}", &status, &out),
                     0);
    px_buf_free(&out);
    return status;
}

static void test_update_flag_in_header(void **state)
{
    termsim t;
    iso8583_msg rsp;
    char stan[7];
    (void)state;
    term(&t, "10000001", MID);
    signon(&t);
    assert_int_equal(t.header_flag, 0);
    assert_int_equal(set_flag("10000001", 1), 200);
    assert_string_equal(purchase(&t, SWFIX_CARD_OK, SWFIX_CARD_OK_PIN, 100, stan, &rsp), "00");
    assert_int_equal(t.header_flag, 6);
    assert_int_equal(set_flag("10000001", 0), 200);
    assert_string_equal(purchase(&t, SWFIX_CARD_OK, SWFIX_CARD_OK_PIN, 100, stan, &rsp), "00");
    assert_int_equal(t.header_flag, 0);
    termsim_close(&t);
}

/* ---- the real terminal: `possum pos` (src/device/pos) against this switch ---- */

static int pos(px_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int pos(px_buf *out, const char *fmt, ...)
{
    char exe[PX_PATH_MAX], args[1024], cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    e2e_binary("src/app/possum", exe, sizeof exe);
    snprintf(cmd, sizeof cmd, "%s pos %s --data %s/pos --port %d --tid 10000004 --mid %s 2>&1", exe,
             args, F.dir, N.switch_port, "898100000000003");
    px_buf_reset(out);
    return e2e_run(cmd, out);
}

/* Text after key in out ("RRN 000000000036" -> "000000000036"), into v. */
static void grab(const px_buf *out, const char *key, char *v, size_t vsz)
{
    const char *p = strstr(px_buf_str(out), key);
    size_t n = 0;
    v[0] = 0;
    if (p == NULL)
        return;
    p += strlen(key);
    while (p[n] && p[n] != ' ' && p[n] != '\n' && n + 1 < vsz)
        n++;
    memcpy(v, p, n);
    v[n] = 0;
}

static void test_pos_terminal_interop(void **state)
{
    px_buf out;
    char rrn[16], stan[8];
    (void)state;
    px_buf_init(&out, 1 << 20);
    if (pos(&out, "init --tmk-components %s,%s", SWFIX_TMK_C1, SWFIX_TMK_C2) != 0)
        fail_msg("pos init: %s", px_buf_str(&out));
    /* the PIN pad checks the 4-byte check value of each work key in field 62 */
    if (pos(&out, "signon") != 0)
        fail_msg("pos signon: %s", px_buf_str(&out));
    if (pos(&out, "purchase --amount 1500 --card %s --pin %s", SWFIX_CARD_OK, SWFIX_CARD_OK_PIN) !=
            0 ||
        strstr(px_buf_str(&out), "APPROVED") == NULL)
        fail_msg("pos purchase: %s", px_buf_str(&out));
    grab(&out, "RRN ", rrn, sizeof rrn);
    grab(&out, "STAN ", stan, sizeof stan);
    assert_int_equal(strlen(rrn), 12);
    if (pos(&out, "purchase --amount 2500 --card %s --pin %s", SWFIX_CARD_OK, SWFIX_CARD_OK_PIN) !=
        0)
        fail_msg("pos purchase: %s", px_buf_str(&out));
    if (pos(&out, "void --rrn %s --stan %s --card %s --pin %s", rrn, stan, SWFIX_CARD_OK,
            SWFIX_CARD_OK_PIN) != 0 ||
        strstr(px_buf_str(&out), "APPROVED") == NULL)
        fail_msg("pos void: %s", px_buf_str(&out));
    if (pos(&out, "balance --card %s --pin %s", SWFIX_CARD_OK, SWFIX_CARD_OK_PIN) != 0)
        fail_msg("pos balance: %s", px_buf_str(&out));
    assert_true(merchant_balance("898100000000003") == -2500);
    /* the terminal's totals (2 debits, 1 credit) are ours: balanced */
    if (pos(&out, "settle") != 0 || strstr(px_buf_str(&out), "balanced") == NULL ||
        strstr(px_buf_str(&out), "not balanced") != NULL)
        fail_msg("pos settle: %s", px_buf_str(&out));
    if (pos(&out, "signoff") != 0)
        fail_msg("pos signoff: %s", px_buf_str(&out));
    assert_true(ledger_check_ok());
    px_buf_free(&out);
}

static void test_ledger_check_at_the_end(void **state)
{
    px_buf out;
    (void)state;
    assert_true(ledger_check_ok());
    /* the operator's CLI against the running node's SQLite file */
    px_buf_init(&out, 1 << 20);
    assert_int_equal(swfix_cli(&F, &out, "ledger check"), 0);
    assert_non_null(strstr(px_buf_str(&out), "ledger check OK"));
    px_buf_reset(&out);
    assert_int_equal(swfix_cli(&F, &out, "terminal show 10000001"), 0);
    assert_non_null(strstr(px_buf_str(&out), "Possum Coffee"));
    px_buf_free(&out);
    /* and the node still serves, its WAL intact */
    assert_true(ledger_check_ok());
    assert_true(swfix_log_contains(&N, "switch listening on"));
}

/* ---- re-keying a terminal: `possum terminal set-tmk` against the running node ---- */

#define REKEY_TID "10000005"
#define REKEY_C1 "89ABCDEF0123456776543210FEDCBA98"
#define REKEY_C2 "2C2C2C2C2C2C2C2C3D3D3D3D3D3D3D3D"

/* The check value (6 hex) of a key given as hex components XORed together. */
static void rekey_kcv(const char *c1, const char *c2, char out[8])
{
    uint8_t a[16], b[16], cv[8];
    size_t n = 0, cn = 0;
    assert_int_equal(px_hex_decode(c1, a, sizeof a, &n), PX_OK);
    assert_int_equal(px_hex_decode(c2, b, sizeof b, &n), PX_OK);
    for (size_t i = 0; i < 16; i++)
        a[i] ^= b[i];
    assert_int_equal(crypto_kcv(CRYPTO_TDES, a, 16, cv, sizeof cv, &cn, NULL), PX_OK);
    px_hex_encode(cv, 3, out);
}

/* A fresh key block under the test LMK (not named). */
static void rekey_block(const hsm_key_attrs *a, hsm_keyblock *kb)
{
    hsm_config hc;
    hsm *h = NULL;
    px_error e = {0};
    hsm_config_default(&hc);
    px_strlcpy(hc.lmk_file, F.lmk, sizeof hc.lmk_file);
    px_strlcpy(hc.audit_file, F.audit, sizeof hc.audit_file);
    if (hsm_open(&hc, NULL, &h, &e) != PX_OK || hsm_key_generate(h, a, NULL, kb, &e) != PX_OK)
        fail_msg("hsm: %s", px_error_text(&e));
    hsm_close(h);
}

/* The registry row as the node serves it; *kv its key version. */
static json_t *rekey_row(int64_t *kv)
{
    json_t *j = get_json("/v1/switch/terminals/" REKEY_TID);
    assert_non_null(j);
    *kv = json_integer_value(json_object_get(j, "key_version"));
    return j;
}

static void test_set_tmk_rekeys_a_running_terminal(void **state)
{
    static const hsm_key_attrs k0 = {"K0", 'T', 'E', 'N', 16}, p0 = {"P0", 'T', 'B', 'E', 16};
    termsim old, fresh;
    iso8583_msg rsp;
    hsm_keyblock tmk2, pik;
    char stan[7], kcv1[8], kcv2[8], want[8], comps[160], *last;
    int64_t kv0, kv, batch;
    px_buf out;
    px_error e = {0};
    json_t *j;
    (void)state;
    px_buf_init(&out, 1 << 20);
    assert_int_equal(swfix_add_terminal(&F, REKEY_TID, MID, "Possum Coffee"), 0);
    term(&old, REKEY_TID, MID);
    signon(&old);
    assert_string_equal(purchase(&old, SWFIX_CARD_OK, SWFIX_CARD_OK_PIN, 300, stan, &rsp), "00");
    json_decref(rekey_row(&kv0));
    /* refused, and nothing changes: an unknown TID, a PIN key, a block that does not verify */
    rekey_kcv(REKEY_C1, "00000000000000000000000000000000", kcv1);
    rekey_kcv(REKEY_C2, "00000000000000000000000000000000", kcv2);
    snprintf(comps, sizeof comps, "%s:%s,%s:%s", REKEY_C1, kcv1, REKEY_C2, kcv2);
    px_buf_reset(&out);
    assert_int_equal(swfix_cli(&F, &out, "terminal set-tmk --tid 10000099 --tmk-components %s",
                               comps),
                     1);
    assert_non_null(strstr(px_buf_str(&out), "terminal 10000099 is not registered"));
    rekey_block(&p0, &pik);
    px_buf_reset(&out);
    assert_int_equal(swfix_cli(&F, &out, "terminal set-tmk --tid %s --tmk-block %s", REKEY_TID,
                               pik.block),
                     1);
    assert_non_null(strstr(px_buf_str(&out), "expected a TDES key-encryption key (K0)"));
    rekey_block(&k0, &tmk2);
    last = &tmk2.block[strlen(tmk2.block) - 1]; /* the block's MAC no longer verifies */
    *last = *last == '0' ? '1' : '0';
    px_buf_reset(&out);
    assert_int_equal(swfix_cli(&F, &out, "terminal set-tmk --tid %s --tmk-block %s", REKEY_TID,
                               tmk2.block),
                     1);
    assert_non_null(strstr(px_buf_str(&out), "terminal set-tmk: TMK: "));
    json_decref(rekey_row(&kv));
    assert_int_equal(kv, kv0);
    assert_string_equal(purchase(&old, SWFIX_CARD_OK, SWFIX_CARD_OK_PIN, 300, stan, &rsp), "00");
    /* the new TMK from two components: its check value printed; signed off, batch kept */
    j = rekey_row(&kv0);
    batch = json_integer_value(json_object_get(j, "batch"));
    json_decref(j);
    rekey_kcv(REKEY_C1, REKEY_C2, want);
    px_buf_reset(&out);
    assert_int_equal(swfix_cli(&F, &out, "terminal set-tmk --tid %s --tmk-components %s", REKEY_TID,
                               comps),
                     0);
    assert_non_null(strstr(px_buf_str(&out), want));
    j = rekey_row(&kv);
    assert_string_equal(json_string_value(json_object_get(j, "tmk_kcv")), want);
    assert_false(json_is_true(json_object_get(j, "signed_on")));
    assert_true(json_is_true(json_object_get(j, "batch_open")));
    assert_int_equal(json_integer_value(json_object_get(j, "batch")), batch);
    assert_int_equal(kv, kv0 + 1);
    json_decref(j);
    assert_true(e2e_file_contains(F.audit, "\"caller\":\"cli:terminal:set-tmk:" REKEY_TID "\""));
    /* the running node drops the old session at its next read of the row (cache_ttl_ms) */
    usleep(400 * 1000);
    assert_string_equal(purchase(&old, SWFIX_CARD_OK, SWFIX_CARD_OK_PIN, 300, stan, &rsp), "77");
    assert_int_equal(old.header_flag, 3);
    /* a sign-on with the old TMK: the work keys come under the new one, which it cannot read */
    assert_int_not_equal(termsim_signon(&old, &rsp, &e), 0);
    assert_string_equal(termsim_rc(&rsp), "00");
    assert_non_null(strstr(px_error_text(&e), "does not match its check value"));
    assert_string_equal(purchase(&old, SWFIX_CARD_OK, SWFIX_CARD_OK_PIN, 300, stan, &rsp), "A0");
    termsim_close(&old);
    /* with the new TMK: sign-on, purchase approved */
    assert_int_equal(termsim_init(&fresh, REKEY_TID, MID, REKEY_C1, REKEY_C2, &e), 0);
    assert_int_equal(termsim_connect(&fresh, N.switch_port, &e), 0);
    signon(&fresh);
    assert_string_equal(purchase(&fresh, SWFIX_CARD_OK, SWFIX_CARD_OK_PIN, 300, stan, &rsp), "00");
    /* again from a key block (the KMS's TMK imported under this LMK) */
    rekey_block(&k0, &tmk2);
    px_buf_reset(&out);
    assert_int_equal(swfix_cli(&F, &out, "terminal set-tmk --tid %s --tmk-block %s", REKEY_TID,
                               tmk2.block),
                     0);
    assert_non_null(strstr(px_buf_str(&out), tmk2.kcv));
    usleep(400 * 1000);
    assert_string_equal(purchase(&fresh, SWFIX_CARD_OK, SWFIX_CARD_OK_PIN, 300, stan, &rsp), "77");
    termsim_close(&fresh);
    assert_true(ledger_check_ok());
    px_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_terminal_97),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_signon_delivers_keys),
        cmocka_unit_test(test_mac_errors_a0),
        cmocka_unit_test(test_not_signed_on_77_and_signoff),
        cmocka_unit_test(test_wrong_merchant_03),
        cmocka_unit_test(test_purchase_approved_and_posted),
        cmocka_unit_test(test_purchase_refusals),
        cmocka_unit_test(test_balance_inquiry),
        cmocka_unit_test(test_duplicate_replayed_byte_for_byte),
        cmocka_unit_test(test_reversal_undoes_once),
        cmocka_unit_test(test_void_once),
        cmocka_unit_test(test_settlement_and_upload),
        cmocka_unit_test(test_update_flag_in_header),
        cmocka_unit_test(test_mobile_payment_refusals),
        cmocka_unit_test(test_mobile_payment_posted_and_credited),
        cmocka_unit_test(test_pos_terminal_interop),
        cmocka_unit_test(test_ledger_check_at_the_end),
        cmocka_unit_test(test_set_tmk_rekeys_a_running_terminal),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
