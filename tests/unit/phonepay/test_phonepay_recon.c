/* test_phonepay_recon.c: reconciliation against a clearing file (matched, missing on either
 * side, amount mismatches, reversals), the payee credits sent to a fake provider (0220 ->
 * 0230), the payee's notification with the payer's number, and a second run that changes
 * nothing. Each credit is posted in the switch's ledger in the transaction that records it
 * (seed 002 [0055], docs/ledger.md): once, never for a refused or unanswered credit, never
 * for a debit the ledger does not carry. */
#include "pp_fixture.h"

#include "host/switch/ledger.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "iso8583/iso8583.h"
#include "lib/time.h"

#define PAYEE "13812345678"
#define PAYER "13987654321"
#define CARD "6217000000000000004"
#define PAYER_PAN "6222021234567890128"

/* ---- a provider that answers 0220 with 0230 ---- */

typedef struct provider {
    int lfd, port;
    pthread_t th;
    int credits; /* 0220s received */
    char last_card[20], last_rrn[13], last_f48[12], last_proc[7];
    char refuse_rrn[13]; /* answer 14 to this RRN */
} provider;

static int read_full(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static void field(const iso8583_msg *m, int f, char *out, size_t outsz)
{
    const uint8_t *p;
    size_t n;
    out[0] = 0;
    if (iso8583_get(m, f, &p, &n) == PX_OK)
        snprintf(out, outsz, "%s", (const char *)p);
}

static void serve(provider *pv, int fd)
{
    uint8_t hdr[2], buf[4096], out[4096];
    for (;;) {
        iso8583_msg m, r;
        size_t len, olen;
        char stan[7], rrn[13];
        if (read_full(fd, hdr, 2) != 0)
            return;
        len = (size_t)hdr[0] << 8 | hdr[1];
        if (len > sizeof buf || read_full(fd, buf, len) != 0)
            return;
        if (iso8583_unpack(&iso8583_1987_ascii, buf, len, &m, NULL) != PX_OK)
            return;
        pv->credits++;
        field(&m, 2, pv->last_card, sizeof pv->last_card);
        field(&m, 3, pv->last_proc, sizeof pv->last_proc);
        field(&m, 37, pv->last_rrn, sizeof pv->last_rrn);
        field(&m, 48, pv->last_f48, sizeof pv->last_f48);
        field(&m, 11, stan, sizeof stan);
        field(&m, 37, rrn, sizeof rrn);
        iso8583_msg_init(&r, &iso8583_1987_ascii);
        iso8583_set_mti(&r, "0230", NULL);
        iso8583_set(&r, 11, stan, NULL);
        iso8583_set(&r, 37, rrn, NULL);
        iso8583_set(&r, 39, strcmp(rrn, pv->refuse_rrn) == 0 ? "14" : "00", NULL);
        if (iso8583_pack_framed(&iso8583_1987_ascii, &r, out, sizeof out, &olen, NULL) != PX_OK ||
            write(fd, out, olen) != (ssize_t)olen)
            return;
    }
}

static void *provider_main(void *arg)
{
    provider *pv = arg;
    int fd;
    while ((fd = accept(pv->lfd, NULL, NULL)) >= 0) {
        serve(pv, fd);
        close(fd);
    }
    return NULL;
}

static void provider_start(provider *pv)
{
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    pv->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(pv->lfd >= 0);
    assert_int_equal(bind(pv->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(pv->lfd, 4), 0);
    assert_int_equal(getsockname(pv->lfd, (struct sockaddr *)&a, &al), 0);
    pv->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&pv->th, NULL, provider_main, pv), 0);
}

static void provider_stop(provider *pv)
{
    shutdown(pv->lfd, SHUT_RDWR);
    close(pv->lfd);
    pthread_join(pv->th, NULL);
}

/* ---- fixture ---- */

static provider pv;

static void tune(phonepay_config *c)
{
    c->provider_enabled = 1;
    snprintf(c->provider.connect, sizeof c->provider.connect, "127.0.0.1:%d", pv.port);
    c->credit_timeout_ms = 3000;
}

typedef struct ctx {
    pp_fixture f;
    char today[11];
    char path[300];
    char ref[5][13];
} ctx;

/* A payment through lookup, begin and the provider's answer with rrn. */
static void pay(ctx *c, int i, int64_t amount, const char *rrn, const char *rc)
{
    phonepay_lookup_result r;
    phonepay_payment p;
    phonepay_payment_request q = {"T0000001", NULL, PAYEE, PAYER, amount, PAYER_PAN};
    px_error e = {0};
    assert_int_equal(phonepay_lookup(c->f.pp, "T0000001", PAYEE, PAYER, amount, &r, &e), PX_OK);
    assert_string_equal(r.response_code, "00");
    q.reference = r.reference;
    px_strlcpy(c->ref[i], r.reference, sizeof c->ref[i]);
    assert_int_equal(phonepay_payment_begin(c->f.pp, &q, &p, &e), PX_OK);
    assert_string_equal(p.response_code, "00");
    assert_int_equal(phonepay_payment_result(c->f.pp, r.reference, rrn, "000001", rc, &e), PX_OK);
}

static void write_file(ctx *c, const char *body)
{
    FILE *fp = fopen(c->path, "w");
    assert_non_null(fp);
    fprintf(fp,
            "date,rrn,stan,type,pan_masked,amount_minor,currency,response,acquirer,"
            "terminal,merchant,payee_card_masked,payer_mobile\n%s",
            body);
    fclose(fp);
}

static int setup(void **state)
{
    static ctx c;
    memset(&c, 0, sizeof c);
    memset(&pv, 0, sizeof pv);
    provider_start(&pv);
    pp_setup(&c.f, "phonepay-recon", tune);
    px_time_format_utc(px_now_ms(), "%Y-%m-%d", c.today, sizeof c.today);
    snprintf(c.path, sizeof c.path, "%s/clearing.csv", c.f.dir);
    pp_exec(&c.f, "INSERT INTO phonepay_bin (bin, bank, created_ms) VALUES ('622202', 'ICBC', 0)");
    pp_add_payee(&c.f, "张三丰", PAYEE, CARD);
    *state = &c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    pp_teardown(&c->f);
    provider_stop(&pv);
    return 0;
}

static void switch_purchase(ctx *c, const char *rrn, int64_t amount)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO switch_request (rkey, tid, mid, stan, batch_no, batch_date, kind, ttype, "
             "state, amount, rc, rrn, owner, node, created_ms, updated_ms) VALUES ('k%s', "
             "'T0000001', 'M00000000000001', '000001', 1, '20260101', 'F', 'purchase', 'done', "
             "%lld, '00', '%s', 'n', 'n', %lld, %lld)",
             rrn, (long long)amount, rrn, (long long)px_now_ms(), (long long)px_now_ms());
    pp_exec(&c->f, sql);
}

/* The switch's mobile-number debit of payment i as the switch posts it ([0054]): its request
 * (approved, posted) and its entries, provider:settlement +A and phonepay:payees -A. */
static void switch_debit(ctx *c, int i, const char *rrn, int64_t amount)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO switch_request (rkey, tid, mid, stan, batch_no, batch_date, kind, ttype, "
             "state, amount, rc, rrn, ref, posted, owner, node, created_ms, updated_ms) VALUES "
             "('T0000001|000001|20260101|F|%s|M00000000000001', 'T0000001', 'M00000000000001', "
             "'%s', 1, '20260101', 'F', 'phonepay', 'done', %lld, '00', '%s', '%s', 1, 'n', 'n', "
             "%lld, %lld)",
             rrn + 6, rrn + 6, (long long)amount, rrn, c->ref[i], (long long)px_now_ms(),
             (long long)px_now_ms());
    pp_exec(&c->f, sql);
    pp_exec(&c->f, "INSERT INTO ledger_account (id, kind, balance, created_ms, updated_ms) VALUES "
                   "('provider:settlement', 'asset', 0, 0, 0), ('phonepay:payees', 'liability', "
                   "0, 0, 0) ON CONFLICT DO NOTHING");
    snprintf(sql, sizeof sql,
             "INSERT INTO ledger_entry (txn, leg, account, amount, ttype, created_ms) VALUES "
             "('T0000001|000001|20260101|F|%s|M00000000000001', 0, 'provider:settlement', %lld, "
             "'phonepay', 0), ('T0000001|000001|20260101|F|%s|M00000000000001', 1, "
             "'phonepay:payees', %lld, 'phonepay', 0)",
             rrn + 6, (long long)amount, rrn + 6, (long long)-amount);
    pp_exec(&c->f, sql);
    snprintf(sql, sizeof sql,
             "UPDATE ledger_account SET balance = balance + CASE id WHEN 'provider:settlement' "
             "THEN %lld ELSE %lld END",
             (long long)amount, (long long)-amount);
    pp_exec(&c->f, sql);
}

static int64_t balance(ctx *c, const char *id)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT balance FROM ledger_account WHERE id = '%s'", id);
    return pp_int(&c->f, sql);
}

/* Credit entries posted so far, and whether `possum ledger check` holds. */
static int64_t credit_entries(ctx *c)
{
    return pp_int(&c->f, "SELECT COUNT(*) FROM ledger_entry WHERE txn LIKE 'credit:%'");
}

static int ledger_ok(ctx *c)
{
    switch_ledger_check_result r;
    px_error e = {0};
    assert_int_equal(switch_ledger_check(c->f.st, &r, NULL, NULL, &e), PX_OK);
    return !(r.bad_balances || r.bad_txns || r.unposted || r.orphans);
}

static void add_line(ctx *c, char *buf, size_t bufsz, const char *rrn, const char *type,
                     int64_t amount, const char *mobile)
{
    size_t n = strlen(buf);
    snprintf(buf + n, bufsz - n,
             "%s,%s,000001,%s,622202******0128,%lld,156,00,1,T0000001,M1,%s,%s\n", c->today, rrn,
             type, (long long)amount, mobile[0] ? "621700******0004" : "", mobile);
}

static void run(ctx *c, phonepay_recon_report *r)
{
    px_error e = {0};
    if (phonepay_recon_run(c->f.pp, c->today, c->path, stdout, r, &e) != PX_OK)
        fail_msg("recon: %s", e.msg);
}

static void test_recon_matches_and_credits(void **state)
{
    ctx *c = *state;
    phonepay_recon_report r;
    char body[2048];
    px_error e = {0};
    pay(c, 0, 10000, "000000000101", "00");
    pay(c, 1, 5000, "000000000102", "00");
    pay(c, 2, 2000, "000000000103", "00");
    assert_int_equal(phonepay_payment_reverse(c->f.pp, c->ref[2], &e), PX_OK);
    pay(c, 3, 3000, "000000000104", "00");
    pay(c, 4, 700, "000000000105", "51");
    switch_debit(c, 0, "000000000101", 10000);
    switch_purchase(c, "000000000201", 8000);
    switch_purchase(c, "000000000202", 9000);
    body[0] = 0;
    add_line(c, body, sizeof body, "000000000101", "debit", 10000, PAYER);
    add_line(c, body, sizeof body, "000000000102", "debit", 5001, PAYER);
    add_line(c, body, sizeof body, "000000000103", "debit", 2000, PAYER);
    add_line(c, body, sizeof body, "000000000103", "reversal", 2000, "");
    add_line(c, body, sizeof body, "000000000999", "debit", 100, PAYER);
    add_line(c, body, sizeof body, "000000000201", "purchase", 8000, "");
    write_file(c, body);
    run(c, &r);
    assert_int_equal(r.lines, 6);
    assert_int_equal(r.matched, 4);
    assert_int_equal(r.mismatched, 1);
    assert_int_equal(r.missing_platform, 1);
    assert_int_equal(r.missing_provider, 2);
    assert_int_equal(r.credited_now, 1);
    assert_int_equal(r.credit_failed, 0);
    assert_int_equal(r.runs, 1);
    assert_int_equal(pv.credits, 1);
    assert_string_equal(pv.last_card, CARD);
    assert_string_equal(pv.last_rrn, "000000000101");
    assert_string_equal(pv.last_f48, PAYER);
    assert_string_equal(pv.last_proc, "210000");
    assert_int_equal(pp_int(&c->f, "SELECT COUNT(*) FROM phonepay_payment WHERE state = 'credited' "
                                   "AND rrn = '000000000101'"),
                     1);
    assert_int_equal(pp_int(&c->f, "SELECT COUNT(*) FROM phonepay_outbox WHERE event = 'credit' "
                                   "AND recipient = '" PAYEE "' AND body LIKE '%" PAYER "%'"),
                     1);
    assert_int_equal(pp_int(&c->f, "SELECT COUNT(*) FROM phonepay_recon_item"), 4);
    /* [0055] in the ledger: what we owed the payee is paid out of what the provider owed us */
    assert_int_equal(credit_entries(c), 2);
    assert_int_equal(balance(c, "phonepay:payees"), 0);
    assert_int_equal(balance(c, "provider:settlement"), 0);
    assert_true(ledger_ok(c));
    /* the second run changes nothing and says so */
    run(c, &r);
    assert_int_equal(r.runs, 2);
    assert_int_equal(r.credited_now, 0);
    assert_int_equal(r.credited_before, 1);
    assert_int_equal(pv.credits, 1);
    assert_int_equal(pp_int(&c->f, "SELECT COUNT(*) FROM phonepay_outbox WHERE event = 'credit'"),
                     1);
    assert_int_equal(pp_int(&c->f, "SELECT COUNT(*) FROM phonepay_recon_item"), 4);
    assert_int_equal(credit_entries(c), 2);
    assert_int_equal(balance(c, "phonepay:payees"), 0);
    assert_true(ledger_ok(c));
}

static void test_credit_refused_then_retried(void **state)
{
    ctx *c = *state;
    phonepay_recon_report r;
    char body[512];
    pay(c, 0, 10000, "000000000301", "00");
    switch_debit(c, 0, "000000000301", 10000);
    snprintf(body, sizeof body,
             "%s,000000000301,000001,debit,622202******0128,10000,156,00,1,T0000001,M1,,%s\n",
             c->today, PAYER);
    write_file(c, body);
    px_strlcpy(pv.refuse_rrn, "000000000301", sizeof pv.refuse_rrn);
    run(c, &r);
    assert_int_equal(r.matched, 1);
    assert_int_equal(r.credit_failed, 1);
    assert_int_equal(pp_int(&c->f, "SELECT COUNT(*) FROM phonepay_payment WHERE state = 'approved' "
                                   "AND credit_rc = '14'"),
                     1);
    assert_int_equal(credit_entries(c), 0); /* refused: nothing posted */
    assert_int_equal(balance(c, "phonepay:payees"), -10000);
    pv.refuse_rrn[0] = 0;
    run(c, &r);
    assert_int_equal(r.credited_now, 1);
    assert_int_equal(pv.credits, 2);
    assert_int_equal(credit_entries(c), 2);
    assert_int_equal(balance(c, "phonepay:payees"), 0);
    assert_true(ledger_ok(c));
}

static void test_provider_down_then_up(void **state)
{
    ctx *c = *state;
    phonepay_recon_report r;
    char body[512];
    pay(c, 0, 1500, "000000000401", "00");
    switch_debit(c, 0, "000000000401", 1500);
    snprintf(body, sizeof body,
             "%s,000000000401,000001,debit,622202******0128,1500,156,00,1,T0000001,M1,,%s\n",
             c->today, PAYER);
    write_file(c, body);
    c->f.pp->cfg.provider_enabled = 0;
    run(c, &r);
    assert_int_equal(r.credit_failed, 1);
    assert_int_equal(pp_int(&c->f,
                            "SELECT COUNT(*) FROM phonepay_payment WHERE state = 'crediting'"),
                     1);
    assert_int_equal(credit_entries(c), 0); /* unanswered: nothing posted */
    c->f.pp->cfg.provider_enabled = 1;
    run(c, &r);
    assert_int_equal(r.credited_now, 1);
    assert_int_equal(pv.credits, 1);
    assert_int_equal(pp_int(&c->f, "SELECT credit_tries FROM phonepay_payment"), 1);
    assert_int_equal(credit_entries(c), 2);
    assert_int_equal(balance(c, "phonepay:payees"), 0);
    assert_true(ledger_ok(c));
}

/* A payment whose debit the ledger does not carry (approved before the switch posted
 * mobile-number debits) is credited without a posting: never half a transfer. */
static void test_credit_without_ledger_debit(void **state)
{
    ctx *c = *state;
    phonepay_recon_report r;
    char body[512];
    pay(c, 0, 2500, "000000000601", "00");
    snprintf(body, sizeof body,
             "%s,000000000601,000001,debit,622202******0128,2500,156,00,1,T0000001,M1,,%s\n",
             c->today, PAYER);
    write_file(c, body);
    run(c, &r);
    assert_int_equal(r.credited_now, 1);
    assert_int_equal(credit_entries(c), 0);
    assert_int_equal(pp_int(&c->f, "SELECT COUNT(*) FROM ledger_txn"), 0);
    assert_true(ledger_ok(c));
}

static void test_bad_file_changes_nothing(void **state)
{
    ctx *c = *state;
    phonepay_recon_report r;
    px_error e = {0};
    char body[512];
    pay(c, 0, 1500, "000000000501", "00");
    snprintf(body, sizeof body,
             "%s,000000000501,000001,debit,622202******0128,1500,156,00,1,T0000001,M1,,%s\n"
             "%s,000000000502,000002,debit,622202******0128,15x0,156,00,1,T0000001,M1,,%s\n",
             c->today, PAYER, c->today, PAYER);
    write_file(c, body);
    assert_int_equal(phonepay_recon_run(c->f.pp, c->today, c->path, NULL, &r, &e), PX_EFORMAT);
    assert_non_null(strstr(e.msg, "line 3: amount_minor"));
    assert_int_equal(pv.credits, 0);
    assert_int_equal(pp_int(&c->f, "SELECT COUNT(*) FROM phonepay_recon"), 0);
}

int main(void)
{
#ifdef PP_PG
    int pg = pp_use_postgres();
    if (pg != 0)
        return pg == 77 ? 77 : 1;
#endif
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_recon_matches_and_credits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credit_refused_then_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_provider_down_then_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credit_without_ledger_debit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_file_changes_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
