/*
 * The switch's store jobs through the group-commit writer, without the network: claims and
 * their duplicates (replay, pending, 94), completion with postings, a reversal that undoes
 * once, a void, a reversal of something never seen (a tombstone refuses it later), settlement
 * totals, start-up recovery (pending -> failed + outbox), a whole group run at once,
 * mobile-number debits posted and reversed (seed 002 [0054]) and their payee credits posted
 * once (switch_ledger_post_payee_credit, [0055]), and the ledger check finding a tampered
 * balance, an unbalanced transaction and a payee credit without its record or its entries.
 * On SQLite and, built with SWITCH_PG, on PostgreSQL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/switch/ledger.h"
#include "host/switch/sw_int.h"
#include "lib/str.h"
#include "pgtemp.h"
#include "tmpdir.h"

#ifndef SWITCH_PG
static char g_dir[PX_PATH_MAX];
#endif
static store_config g_sc;
static store *g_st;
static px_daemon g_d;
static switch_svc g_s;
static int g_done, g_want;
#ifdef SWITCH_PG
static pgtemp g_pg;
#endif

#define TID "10000001"
#define MID "898100000000001"
#define DATE "20261122"

static void on_done(switch_svc *s, sw_job *j);

static int setup(void **state)
{
    px_error e = {0};
    (void)state;
    if (net_init(&e) != PX_OK)
        return -1;
    store_config_default(&g_sc);
#ifdef SWITCH_PG
    if (!pgtemp_is_available() && getenv("POSSUM_SKIP_PG") != NULL)
        exit(77);
    if (pgtemp_start(&g_pg, &e) != PX_OK)
        return -1;
    g_sc.backend = STORE_POSTGRES;
    px_strlcpy(g_sc.conninfo, g_pg.conninfo, sizeof g_sc.conninfo);
#else
    if (testlib_mkdtemp("switch-unit", g_dir, sizeof g_dir) != 0)
        return -1;
    snprintf(g_sc.path, sizeof g_sc.path, "%s/s.db", g_dir);
#endif
    if (store_open(&g_sc, &g_st, &e) != PX_OK)
        return -1;
    if (store_exec(g_st,
                   "INSERT INTO switch_terminal (tid, mid, name, tmk_block, tmk_kcv, status, "
                   "signed_on, batch_no, batch_date, batch_open, created_ms, updated_ms) VALUES "
                   "('" TID "', '" MID "', 'x', 'block', 'kcv', 'active', 1, 1, '" DATE "', 1, "
                   "0, 0); INSERT INTO switch_batch (tid, batch_no, mid, batch_date, state, "
                   "opened_ms) VALUES ('" TID "', 1, '" MID "', '" DATE "', 'open', 0)",
                   &e) != PX_OK)
        return -1;
    if (net_base_new(&g_d.base, &e) != PX_OK)
        return -1;
    g_d.st = g_st;
    g_d.store_cfg = g_sc;
    px_strlcpy(g_d.node, "unit", sizeof g_d.node);
    g_s.d = &g_d;
    return sw_writer_start(&g_s, &g_sc, 1, 100, &g_s.writer, &e) == PX_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    sw_writer_stop(g_s.writer);
    store_close(g_st);
    event_base_free(g_d.base);
#ifdef SWITCH_PG
    pgtemp_stop(&g_pg);
#else
    testlib_rmtree(g_dir);
#endif
    return 0;
}

/* The jobs come back here; keep them until the test looks. */
static sw_job *g_back[16];

static void on_done(switch_svc *s, sw_job *j)
{
    sw_job *copy = malloc(sizeof *copy);
    (void)s;
    memcpy(copy, j, sizeof *j);
    /* take the allocations: the original is freed by the caller without them */
    j->prov_blob = NULL;
    j->rsp = NULL;
    j->treq = NULL;
    j->preq = NULL;
    j->out.rsp = NULL;
    g_back[g_done++] = copy;
    if (g_done >= g_want)
        event_base_loopbreak(g_s.d->base);
}

static void run_jobs(sw_job **jobs, int n)
{
    g_done = 0;
    g_want = n;
    for (int i = 0; i < n; i++)
        sw_writer_submit(g_s.writer, jobs[i]);
    while (g_done < g_want)
        event_base_loop(g_s.d->base, EVLOOP_ONCE);
}

static sw_job *run1(sw_job *j)
{
    run_jobs(&j, 1);
    return g_back[0];
}

static void put_back(sw_job *j)
{
    sw_job_free(j);
}

static sw_job *request(int kind, char k, const char *stan, const char *ttype, int64_t amount,
                       uint8_t hashbyte)
{
    sw_job *j = sw_job_new(kind, on_done);
    static unsigned seq;
    px_strlcpy(j->tid, TID, sizeof j->tid);
    px_strlcpy(j->mid, MID, sizeof j->mid);
    px_strlcpy(j->stan, stan, sizeof j->stan);
    j->batch = 1;
    px_strlcpy(j->batch_date, DATE, sizeof j->batch_date);
    j->kind_c = k;
    sw_rkey(j->rkey, TID, MID, stan, 1, DATE, k);
    px_strlcpy(j->ttype, ttype, sizeof j->ttype);
    memset(j->hash, hashbyte, sizeof j->hash);
    j->has_hash = 1;
    j->amount = amount;
    snprintf(j->owner, sizeof j->owner, "unit:%u", ++seq);
    return j;
}

static sw_job *claim(const char *stan, const char *ttype, int64_t amount, uint8_t hashbyte)
{
    sw_job *j = request(SW_J_CLAIM, 'F', stan, ttype, amount, hashbyte);
    static const uint8_t blob[24] = {1};
    j->prov_blob = malloc(sizeof blob);
    memcpy(j->prov_blob, blob, sizeof blob);
    j->prov_bloblen = sizeof blob;
    snprintf(j->rrn, sizeof j->rrn, "0000000%s", stan + 1);
    px_strlcpy(j->prov_stan, stan, sizeof j->prov_stan);
    return run1(j);
}

static sw_job *complete(const char *stan, const char *ttype, const char *rc, int64_t amount,
                        int outbox)
{
    sw_job *j = request(SW_J_COMPLETE, 'F', stan, ttype, amount, 0);
    static const uint8_t rsp[4] = {'r', 's', 'p', 0};
    j->rsp = malloc(sizeof rsp);
    memcpy(j->rsp, rsp, sizeof rsp);
    j->rsp[3] = (uint8_t)stan[5];
    j->rsplen = sizeof rsp;
    px_strlcpy(j->rc, rc, sizeof j->rc);
    j->outbox = outbox;
    px_strlcpy(j->reason, "98", sizeof j->reason);
    return run1(j);
}

static sw_job *reversal(const char *stan)
{
    sw_job *j = request(SW_J_REVERSAL, 'R', stan, "reversal", 0, 7);
    j->rsp = malloc(2);
    memcpy(j->rsp, "ok", 2);
    j->rsplen = 2;
    px_strlcpy(j->rc, "00", sizeof j->rc);
    px_strlcpy(j->reason, "98", sizeof j->reason);
    return run1(j);
}

static void check_ledger(int64_t merchant_balance, int ok)
{
    switch_ledger_check_result r;
    store_stmt *q;
    px_error e = {0};
    assert_int_equal(switch_ledger_check(g_st, &r, NULL, NULL, &e), 0);
    assert_int_equal(!(r.bad_balances || r.bad_txns || r.unposted || r.orphans), ok);
    assert_int_equal(store_prepare(g_st, "SELECT balance FROM ledger_account WHERE id = $1", &q,
                                   &e),
                     0);
    store_bind_text(q, 1, "merchant:" MID);
    if (store_step(q, &e) == STORE_ROW)
        assert_int_equal(store_col_int64(q, 0), merchant_balance);
    else
        assert_int_equal(merchant_balance, 0);
    store_done(q);
}

static void test_claim_complete_duplicates(void **state)
{
    sw_job *j;
    (void)state;
    j = claim("000001", "purchase", 1000, 1);
    assert_int_equal(j->status, 0);
    assert_int_equal(j->out.outcome, SW_O_NEW);
    put_back(j);
    j = claim("000001", "purchase", 1000, 1); /* at the provider: the retransmission waits */
    assert_int_equal(j->out.outcome, SW_O_PENDING);
    put_back(j);
    j = claim("000001", "purchase", 1001, 2); /* other content: 94 */
    assert_int_equal(j->out.outcome, SW_O_CONFLICT);
    put_back(j);
    j = complete("000001", "purchase", "00", 1000, 0);
    assert_int_equal(j->out.outcome, SW_O_NEW);
    put_back(j);
    j = complete("000001", "purchase", "00", 1000, 0); /* our own commit again: not twice */
    assert_int_equal(j->out.outcome, SW_O_NEW);
    put_back(j);
    check_ledger(-1000, 1);
    j = claim("000001", "purchase", 1000, 1); /* answered: the stored bytes */
    assert_int_equal(j->out.outcome, SW_O_REPLAY);
    assert_int_equal(j->out.rsplen, 4);
    assert_memory_equal(j->out.rsp, "rsp1", 4);
    put_back(j);
}

static void test_reversal_void_tombstone(void **state)
{
    sw_job *j;
    (void)state;
    put_back(claim("000002", "purchase", 500, 3));
    put_back(complete("000002", "purchase", "00", 500, 0));
    check_ledger(-1500, 1);
    j = reversal("000002");
    assert_int_equal(j->out.outcome, SW_O_NEW);
    put_back(j);
    check_ledger(-1000, 1);
    j = reversal("000002"); /* repeated: the same answer, undone once */
    assert_int_equal(j->out.outcome, SW_O_REPLAY);
    put_back(j);
    check_ledger(-1000, 1);
    /* a void of purchase 000001 */
    j = request(SW_J_CLAIM, 'F', "000003", "void", 1000, 4);
    sw_rkey(j->orig_rkey, TID, MID, "000001", 1, DATE, 'F');
    px_strlcpy(j->orig_rrn, "000000000001", sizeof j->orig_rrn);
    j = run1(j);
    assert_int_equal(j->out.outcome, SW_O_NEW);
    put_back(j);
    j = request(SW_J_CLAIM, 'F', "000004", "void", 1000, 5); /* a second void: 12 */
    sw_rkey(j->orig_rkey, TID, MID, "000001", 1, DATE, 'F');
    px_strlcpy(j->orig_rrn, "000000000001", sizeof j->orig_rrn);
    j = run1(j);
    assert_int_equal(j->out.outcome, SW_O_REFUSED);
    assert_string_equal(j->out.rc, "12");
    put_back(j);
    put_back(complete("000003", "void", "00", 1000, 0));
    check_ledger(0, 1);
    /* reversed before it arrived: the late original is refused */
    put_back(reversal("000009"));
    j = claim("000009", "purchase", 100, 9);
    assert_int_equal(j->out.outcome, SW_O_FAILED);
    put_back(j);
}

static void test_settlement_totals(void **state)
{
    sw_job *j;
    (void)state;
    put_back(claim("000010", "purchase", 700, 10));
    put_back(complete("000010", "purchase", "00", 700, 0));
    j = request(SW_J_SETTLE, 'S', "000011", "settle", 0, 11);
    /* ours: purchases 000001 (voided, still a debit), 000010; voids 000003 */
    j->term_dom.debit_count = 2;
    j->term_dom.debit_amount = 1700;
    j->term_dom.credit_count = 1;
    j->term_dom.credit_amount = 1000;
    j = run1(j);
    assert_int_equal(j->out.outcome, SW_O_NEW);
    assert_int_equal(j->out.sw_dom.debit_count, 2);
    assert_int_equal(j->out.sw_dom.debit_amount, 1700);
    assert_int_equal(j->out.sw_dom.credit_count, 1);
    assert_int_equal(j->out.settle_result, 1);
    put_back(j);
}

static void test_recovery_and_group(void **state)
{
    sw_job *jobs[6], *j;
    (void)state;
    put_back(claim("000020", "purchase", 300, 20));
    j = sw_job_new(SW_J_RECOVER, on_done);
    px_strlcpy(j->node, "unit", sizeof j->node);
    j->cutoff_ms = 0;
    j = run1(j);
    assert_int_equal(j->status, 0);
    assert_true(j->out.recovered >= 1);
    put_back(j);
    j = complete("000020", "purchase", "00", 300, 0); /* too late: it was recovered */
    assert_int_equal(j->out.outcome, SW_O_LOST);
    put_back(j);
    /* six jobs in one group: all committed together */
    for (int i = 0; i < 6; i++) {
        char stan[7];
        snprintf(stan, sizeof stan, "0001%02d", i);
        jobs[i] = request(SW_J_CLAIM, 'F', stan, "purchase", 100 + i, (uint8_t)(40 + i));
    }
    run_jobs(jobs, 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(g_back[i]->status, 0);
        assert_int_equal(g_back[i]->out.outcome, SW_O_NEW);
        put_back(g_back[i]);
    }
    check_ledger(-700, 1);
}

/* ---- mobile-number payments (seed 002) ---- */

#define PAYEES "phonepay:payees"
#define PROVIDER "provider:settlement"

/* An account's balance (0 when it does not exist yet). */
static int64_t balance_of(const char *id)
{
    store_stmt *q;
    px_error e = {0};
    int64_t v = 0;
    assert_int_equal(store_prepare(g_st, "SELECT balance FROM ledger_account WHERE id = $1", &q,
                                   &e),
                     0);
    store_bind_text(q, 1, id);
    if (store_step(q, &e) == STORE_ROW)
        v = store_col_int64(q, 0);
    store_done(q);
    return v;
}

static int64_t count_of(const char *sql)
{
    store_stmt *q;
    px_error e = {0};
    int64_t v = -1;
    assert_int_equal(store_prepare(g_st, sql, &q, &e), 0);
    if (store_step(q, &e) == STORE_ROW)
        v = store_col_int64(q, 0);
    store_done(q);
    return v;
}

static switch_ledger_check_result check(void)
{
    switch_ledger_check_result r;
    px_error e = {0};
    assert_int_equal(switch_ledger_check(g_st, &r, NULL, NULL, &e), 0);
    return r;
}

static int check_is_ok(void)
{
    switch_ledger_check_result r = check();
    return !(r.bad_balances || r.bad_txns || r.unposted || r.orphans);
}

/* Claim a mobile-number payment (RRN 0000000 + the STAN's last 5 digits, reference ref). */
static sw_job *mobile_claim(const char *stan, int64_t amount, const char *ref, uint8_t hashbyte)
{
    sw_job *j = request(SW_J_CLAIM, 'F', stan, "phonepay", amount, hashbyte);
    static const uint8_t blob[24] = {2};
    j->prov_blob = malloc(sizeof blob);
    memcpy(j->prov_blob, blob, sizeof blob);
    j->prov_bloblen = sizeof blob;
    snprintf(j->rrn, sizeof j->rrn, "0000000%s", stan + 1);
    px_strlcpy(j->prov_stan, stan, sizeof j->prov_stan);
    px_strlcpy(j->ref, ref, sizeof j->ref);
    return run1(j);
}

/* A mobile-number payment claimed, then answered rc by the provider. */
static void mobile(const char *stan, int64_t amount, const char *ref, const char *rc,
                   uint8_t hashbyte)
{
    sw_job *j = mobile_claim(stan, amount, ref, hashbyte);
    assert_int_equal(j->out.outcome, SW_O_NEW);
    put_back(j);
    j = complete(stan, "phonepay", rc, amount, 0);
    assert_int_equal(j->status, 0);
    assert_int_equal(j->out.outcome, SW_O_NEW);
    put_back(j);
}

/* The payee credit posted in a transaction of the test's own connection (as recon does). */
static int credit(const char *ref, const char *rrn, int64_t amount, int *posted)
{
    px_error e = {0};
    int rc = store_begin(g_st, &e);
    if (rc == PX_OK)
        rc = switch_ledger_post_payee_credit(g_st, ref, rrn, amount, posted, &e);
    if (rc == PX_OK)
        rc = store_commit(g_st, &e);
    else
        store_rollback(g_st);
    return rc;
}

/* [0054]: provider:settlement +A, phonepay:payees -A, once; declines post nothing; a reversal
 * copies the entries negated, once, and names the payment for phonepay. */
static void test_mobile_debit_posted_and_reversed(void **state)
{
    int64_t prov = balance_of(PROVIDER);
    sw_job *j;
    (void)state;
    mobile("000201", 5000, "100000000201", "00", 61);
    assert_int_equal(balance_of(PROVIDER), prov + 5000);
    assert_int_equal(balance_of(PAYEES), -5000);
    j = complete("000201", "phonepay", "00", 5000, 0); /* our own commit again: not twice */
    assert_int_equal(j->out.outcome, SW_O_NEW);
    put_back(j);
    mobile("000202", 700, "100000000202", "51", 62); /* declined: nothing */
    assert_int_equal(balance_of(PAYEES), -5000);
    assert_int_equal(count_of("SELECT COUNT(*) FROM ledger_entry WHERE ttype = 'phonepay' AND "
                              "account = 'fees:income'"),
                     0);
    mobile("000203", 3000, "100000000203", "00", 63);
    assert_int_equal(balance_of(PAYEES), -8000);
    j = reversal("000203");
    assert_int_equal(j->out.outcome, SW_O_NEW);
    assert_string_equal(j->out.ref, "100000000203");
    put_back(j);
    assert_int_equal(balance_of(PAYEES), -5000);
    assert_int_equal(balance_of(PROVIDER), prov + 5000);
    j = reversal("000203"); /* repeated: undone once */
    assert_int_equal(j->out.outcome, SW_O_REPLAY);
    put_back(j);
    assert_int_equal(balance_of(PAYEES), -5000);
    assert_int_equal(count_of("SELECT COUNT(*) FROM switch_outbox WHERE rkey LIKE '%|F|000203|%'"),
                     1);
    assert_true(check_is_ok());
}

/* Two payments completed in one group (on PostgreSQL: one UPDATE, their entries in one
 * INSERT), then both reversed in one group: posted and undone exactly. */
static void test_mobile_group_commit(void **state)
{
    sw_job *jobs[2];
    (void)state;
    put_back(mobile_claim("000206", 1100, "100000000206", 66));
    put_back(mobile_claim("000207", 1200, "100000000207", 67));
    for (int i = 0; i < 2; i++) {
        jobs[i] = request(SW_J_COMPLETE, 'F', i ? "000207" : "000206", "phonepay", i ? 1200 : 1100,
                          0);
        jobs[i]->rsp = malloc(2);
        memcpy(jobs[i]->rsp, i ? "r7" : "r6", 2);
        jobs[i]->rsplen = 2;
        px_strlcpy(jobs[i]->rc, "00", sizeof jobs[i]->rc);
    }
    run_jobs(jobs, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(g_back[i]->out.outcome, SW_O_NEW);
        put_back(g_back[i]);
    }
    assert_int_equal(balance_of(PAYEES), -7300);
    assert_true(check_is_ok());
    for (int i = 0; i < 2; i++) {
        jobs[i] = request(SW_J_REVERSAL, 'R', i ? "000207" : "000206", "reversal", 0, 7);
        jobs[i]->rsp = malloc(2);
        memcpy(jobs[i]->rsp, "ok", 2);
        jobs[i]->rsplen = 2;
        px_strlcpy(jobs[i]->reason, "98", sizeof jobs[i]->reason);
    }
    run_jobs(jobs, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(g_back[i]->out.outcome, SW_O_NEW);
        put_back(g_back[i]);
    }
    assert_int_equal(balance_of(PAYEES), -5000);
    assert_true(check_is_ok());
}

/* Reversed while at the provider: the approval posts nothing (phonepay is told on the loop). */
static void test_mobile_reversed_at_the_provider(void **state)
{
    sw_job *j;
    (void)state;
    put_back(mobile_claim("000204", 900, "100000000204", 64));
    j = reversal("000204");
    assert_int_equal(j->out.outcome, SW_O_NEW);
    put_back(j);
    j = complete("000204", "phonepay", "00", 900, 0);
    assert_int_equal(j->out.outcome, SW_O_UNDONE);
    put_back(j);
    assert_int_equal(balance_of(PAYEES), -5000);
    assert_int_equal(count_of("SELECT COUNT(*) FROM ledger_entry WHERE txn LIKE '%|000204|%'"), 0);
    assert_int_equal(count_of("SELECT COUNT(*) FROM switch_outbox WHERE rkey LIKE '%|F|000204|%'"),
                     1);
    assert_true(check_is_ok());
}

/* A payment approved before the ledger carried mobile-number debits (posted = 0): its reversal
 * posts nothing and still names the payment; its payee credit posts nothing either. */
static void test_mobile_approved_before_the_ledger(void **state)
{
    char rkey[SW_RKEY_MAX], sql[1024];
    px_error e = {0};
    sw_job *j;
    int posted = -1;
    (void)state;
    sw_rkey(rkey, TID, MID, "000205", 1, DATE, 'F');
    snprintf(sql, sizeof sql,
             "INSERT INTO switch_request (rkey, tid, mid, stan, batch_no, batch_date, kind, "
             "ttype, state, amount, rc, rrn, ref, posted, owner, node, created_ms, updated_ms) "
             "VALUES ('%s', '" TID "', '" MID "', '000205', 1, '" DATE "', 'F', 'phonepay', "
             "'done', 400, '00', '000000000205', '100000000205', 0, 'old', 'old', 0, 0)",
             rkey);
    assert_int_equal(store_exec(g_st, sql, &e), 0);
    assert_int_equal(credit("100000000205", "000000000205", 400, &posted), 0);
    assert_int_equal(posted, 0);
    j = reversal("000205");
    assert_int_equal(j->out.outcome, SW_O_NEW);
    assert_string_equal(j->out.ref, "100000000205");
    put_back(j);
    assert_int_equal(balance_of(PAYEES), -5000);
    assert_int_equal(count_of("SELECT COUNT(*) FROM ledger_entry WHERE txn LIKE '%|000205|%'"), 0);
    assert_true(check_is_ok());
}

/* [0055]: the payee credit posts phonepay:payees +A, provider:settlement -A once, only for a
 * debit the ledger carries, and ledger check holds it as posted. */
static void test_payee_credit_posted_once(void **state)
{
    int64_t prov = balance_of(PROVIDER);
    int posted = -1;
    (void)state;
    assert_int_equal(credit("100000000201", "000000000201", 5000, &posted), 0);
    assert_int_equal(posted, 1);
    assert_int_equal(balance_of(PAYEES), 0);
    assert_int_equal(balance_of(PROVIDER), prov - 5000);
    assert_true(check_is_ok());
    assert_int_equal(credit("100000000201", "000000000201", 5000, &posted), 0); /* again */
    assert_int_equal(posted, 0);
    assert_int_equal(balance_of(PAYEES), 0);
    assert_int_equal(balance_of(PROVIDER), prov - 5000);
    /* declined, unknown RRN, another payment's RRN: nothing */
    assert_int_equal(credit("100000000202", "000000000202", 700, &posted), 0);
    assert_int_equal(posted, 0);
    assert_int_equal(credit("100000000201", "000000000999", 5000, &posted), 0);
    assert_int_equal(posted, 0);
    assert_int_equal(credit("100000000201", "000000000203", 3000, &posted), 0);
    assert_int_equal(posted, 0);
    assert_int_equal(credit("", "000000000201", 5000, &posted), PX_EINVAL);
    assert_int_equal(credit("100000000201", "000000000201", 0, &posted), PX_EINVAL);
    assert_int_equal(count_of("SELECT COUNT(*) FROM ledger_txn"), 1);
    assert_int_equal(count_of("SELECT COUNT(*) FROM ledger_entry WHERE txn = "
                              "'credit:100000000201'"),
                     2);
    assert_int_equal(balance_of(PAYEES), 0);
    assert_true(check_is_ok());
}

/* The check holds payee credits to rules 2-4: entries without their ledger_txn row are
 * orphans, a row without entries is unposted, an extra leg unbalances the transaction. */
static void test_check_holds_payee_credits(void **state)
{
    static const char restore[] =
        "INSERT INTO ledger_txn (txn, ttype, ref, orig_rkey, amount, created_ms) SELECT "
        "'credit:100000000201', 'payee_credit', '100000000201', 'x', 5000, 0 WHERE NOT EXISTS "
        "(SELECT 1 FROM ledger_txn)";
    switch_ledger_check_result r;
    px_error e = {0};
    (void)state;
    assert_int_equal(store_exec(g_st, "DELETE FROM ledger_txn", &e), 0);
    r = check();
    assert_int_equal(r.orphans, 1);
    assert_int_equal(store_exec(g_st, restore, &e), 0);
    assert_true(check_is_ok());
    assert_int_equal(store_exec(g_st,
                                "INSERT INTO ledger_txn (txn, ttype, ref, orig_rkey, amount, "
                                "created_ms) VALUES ('credit:100000000999', 'payee_credit', "
                                "'100000000999', 'x', 1, 0)",
                                &e),
                     0);
    r = check();
    assert_int_equal(r.unposted, 1);
    assert_int_equal(r.orphans, 0);
    assert_int_equal(store_exec(g_st, "DELETE FROM ledger_txn WHERE txn = 'credit:100000000999'",
                                &e),
                     0);
    assert_int_equal(store_exec(g_st,
                                "INSERT INTO ledger_entry (txn, leg, account, amount, ttype, "
                                "created_ms) VALUES ('credit:100000000201', 2, '" PAYEES
                                "', 1, 'payee_credit', 0)",
                                &e),
                     0);
    r = check();
    assert_int_equal(r.bad_txns, 1);
    assert_int_equal(r.bad_balances, 1);
    assert_int_equal(r.orphans, 0);
    assert_int_equal(store_exec(g_st,
                                "DELETE FROM ledger_entry WHERE leg = 2 AND txn = "
                                "'credit:100000000201'",
                                &e),
                     0);
    assert_true(check_is_ok());
}

static void test_check_finds_tampering(void **state)
{
    px_error e = {0};
    (void)state;
    assert_int_equal(store_exec(g_st,
                                "UPDATE ledger_account SET balance = balance + 1 WHERE id "
                                "= 'merchant:" MID "'",
                                &e),
                     0);
    check_ledger(-699, 0);
    assert_int_equal(store_exec(g_st,
                                "UPDATE ledger_account SET balance = balance - 1 WHERE id "
                                "= 'merchant:" MID "'",
                                &e),
                     0);
    check_ledger(-700, 1);
    assert_int_equal(store_exec(g_st,
                                "INSERT INTO ledger_entry (txn, leg, account, amount, "
                                "ttype, created_ms) VALUES ('x', 0, 'merchant:" MID
                                "', 5, 'test', 0)",
                                &e),
                     0);
    check_ledger(-700, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claim_complete_duplicates),
        cmocka_unit_test(test_reversal_void_tombstone),
        cmocka_unit_test(test_settlement_totals),
        cmocka_unit_test(test_recovery_and_group),
        cmocka_unit_test(test_mobile_debit_posted_and_reversed),
        cmocka_unit_test(test_mobile_group_commit),
        cmocka_unit_test(test_mobile_reversed_at_the_provider),
        cmocka_unit_test(test_mobile_approved_before_the_ledger),
        cmocka_unit_test(test_payee_credit_posted_once),
        cmocka_unit_test(test_check_holds_payee_credits),
        cmocka_unit_test(test_check_finds_tampering),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
