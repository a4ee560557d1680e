/*
 * End to end, the switch under failure (docs/switch.md, "Durability"):
 *   timeout   the provider does not answer: the terminal gets 91, the provider a 0420
 *             from the outbox until it confirms with 0430;
 *   crash     possumd is killed with SIGKILL at several points of a purchase load and
 *             restarted; terminals reverse what went unanswered. Afterwards every approval
 *             a terminal received is in the ledger exactly once, nothing else is, and
 *             `possum ledger check` passes. On SQLite, and on PostgreSQL (SWITCH_TEST_PG);
 *   scale-out two nodes on one PostgreSQL serve the same terminals at once; a request sent
 *             to both gets the same answer from both, and the ledger stays exact.
 * Built three times: e2e_switch_reliability (SQLite: timeout, crash), e2e_switch_pg
 * (PostgreSQL: crash, scale-out). The issuer simulator runs as its own node.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "harness.h"
#include "lib/str.h"
#include "lib/time.h"
#include "pgtemp.h"
#include "store/store.h"
#include "swfix.h"
#include "termsim.h"

#define MID "898100000000001"
#define NTERM 4
#define MAXREC 20000

static swfix F;
static swfix_node ISS; /* the issuer simulator: its own node and store */
static int iss_port;
#ifdef SWITCH_TEST_PG
static pgtemp PG;
#endif

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int start_issuer(const char *extra)
{
    char sec[4096], store_sec[1024];
    iss_port = swfix_free_port();
    swfix_issuer_section(&F, sec, sizeof sec, iss_port, extra);
    snprintf(store_sec, sizeof store_sec, "[store]\nbackend = sqlite\npath = %s/issuer-%d.db\n",
             F.dir, iss_port);
    return swfix_start(&F, &ISS, "issuer", store_sec, sec);
}

static int start_switch(swfix_node *n, const char *name, const char *extra)
{
    char sec[4096];
    swfix_switch_section(&F, sec, sizeof sec, iss_port, extra);
    return swfix_start(&F, n, name, NULL, sec);
}

static int setup(void **state)
{
    px_error e = {0};
    const char *ci = NULL;
    (void)state;
    if (net_init(&e) != PX_OK)
        return -1;
#ifdef SWITCH_TEST_PG
    if (!pgtemp_is_available() && getenv("POSSUM_SKIP_PG") != NULL)
        exit(77); /* skipped: no PostgreSQL here, and that was said to be fine */
    if (pgtemp_start(&PG, &e) != PX_OK) {
        fprintf(stderr, "PostgreSQL: %s\n", px_error_text(&e));
        return -1;
    }
    ci = PG.conninfo;
#endif
    if (swfix_init(&F, ci) != 0)
        return -1;
    for (int i = 0; i < NTERM + 2; i++) {
        char tid[9];
        snprintf(tid, sizeof tid, "2000%04d", i + 1);
        if (swfix_add_terminal(&F, tid, MID, "Load Shop") != 0)
            return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    swfix_stop(&ISS, SIGTERM, 10000);
    swfix_cleanup(&F);
#ifdef SWITCH_TEST_PG
    pgtemp_stop(&PG);
#endif
    return 0;
}

#ifndef SWITCH_TEST_PG
static const char *field(const iso8583_msg *m, int f)
{
    const uint8_t *p;
    size_t n;
    return iso8583_get(m, f, &p, &n) == 0 ? (const char *)p : "";
}

static json_t *get_json(const swfix_node *n, const char *path)
{
    px_buf out;
    long status = 0;
    json_t *j = NULL;
    px_buf_init(&out, 1 << 22);
    if (e2e_http(n->http_port, "GET", path, NULL, &status, &out) == 0 && status == 200)
        j = json_loads(px_buf_str(&out), 0, NULL);
    px_buf_free(&out);
    return j;
}
#endif

/* ---- terminals under load ---- */

enum { R_APPROVED = 1, R_DECLINED, R_REVERSED };

typedef struct rec {
    char stan[7];
    int64_t amount;
    int64_t batch;
    int outcome;
} rec;

typedef struct loadterm {
    termsim t;
    pthread_t th;
    int port[2]; /* nodes to use (alternately when both are set) */
    volatile int *stop;
    rec *recs;
    size_t n;
    char pending_rev[7]; /* a purchase that went unanswered: reverse it */
    int64_t pending_amount;
    unsigned seed;
    long sent, answered;
} loadterm;

static int connect_any(loadterm *lt, int which)
{
    px_error e = {0};
    for (int i = 0; i < 600; i++) { /* the node may be restarting: up to 60 s */
        int port = lt->port[lt->port[1] ? (which + i) % 2 : 0];
        if (net_client_connect("127.0.0.1", port, NULL, 2000, &lt->t.c, &e) == PX_OK)
            return 0;
        sleep_ms(100);
    }
    return -1;
}

/* Send the owed reversal until it is answered 00. */
static int reverse_pending(loadterm *lt, int deadline_s)
{
    int64_t end = px_mono_ms() + deadline_s * 1000LL;
    while (lt->pending_rev[0] && px_mono_ms() < end) {
        iso8583_msg m, rsp;
        px_error e = {0};
        if (lt->t.c == NULL && connect_any(lt, 0) != 0)
            return -1;
        termsim_begin(&lt->t, &m, "0400", lt->pending_rev, "22", "000");
        (void)termsim_card(&lt->t, &m, "000000", SWFIX_CARD_OK, lt->pending_amount, NULL, &e);
        (void)iso8583_set(&m, 39, "98", NULL);
        if (termsim_exchange(&lt->t, &m, 1, &rsp, 5000, &e) == PX_OK &&
            strcmp(termsim_rc(&rsp), "00") == 0) {
            lt->pending_rev[0] = 0;
            return 0;
        }
        termsim_close(&lt->t);
        sleep_ms(100);
    }
    return lt->pending_rev[0] ? -1 : 0;
}

static void *load_main(void *arg)
{
    loadterm *lt = arg;
    int which = 0;
    while (!*lt->stop && lt->n < MAXREC) {
        iso8583_msg m, rsp;
        px_error e = {0};
        rec *r = &lt->recs[lt->n];
        if (reverse_pending(lt, 60) != 0)
            break;
        if (lt->t.c == NULL && connect_any(lt, which++) != 0)
            break;
        termsim_next_stan(&lt->t, r->stan);
        r->batch = lt->t.batch;
        r->amount = 1 + rand_r(&lt->seed) % 99; /* the demo card holds 10,000.00 */
        termsim_begin(&lt->t, &m, "0200", r->stan, "22", "000");
        (void)termsim_card(&lt->t, &m, "000000", SWFIX_CARD_OK, r->amount, SWFIX_CARD_OK_PIN, &e);
        lt->sent++;
        if (termsim_exchange(&lt->t, &m, 1, &rsp, 8000, &e) == PX_OK) {
            lt->answered++;
            r->outcome = strcmp(termsim_rc(&rsp), "00") == 0 ? R_APPROVED : R_DECLINED;
        } else { /* no answer: reverse it (repeated until answered) */
            r->outcome = R_REVERSED;
            px_strlcpy(lt->pending_rev, r->stan, sizeof lt->pending_rev);
            lt->pending_amount = r->amount;
            termsim_close(&lt->t);
        }
        lt->n++;
        if (lt->port[1]) { /* two nodes: take turns */
            termsim_close(&lt->t);
            which++;
        }
    }
    (void)reverse_pending(lt, 60);
    termsim_close(&lt->t);
    return NULL;
}

static void start_terminals(loadterm *lts, int n, int port0, int port1, volatile int *stop)
{
    for (int i = 0; i < n; i++) {
        loadterm *lt = &lts[i];
        char tid[9];
        iso8583_msg rsp;
        px_error e = {0};
        memset(lt, 0, sizeof *lt);
        snprintf(tid, sizeof tid, "2000%04d", i + 1);
        assert_int_equal(termsim_init(&lt->t, tid, MID, SWFIX_TMK_C1, SWFIX_TMK_C2, &e), 0);
        lt->port[0] = port0;
        lt->port[1] = port1;
        lt->stop = stop;
        lt->seed = (unsigned)(i * 7919 + 17);
        lt->recs = calloc(MAXREC, sizeof *lt->recs);
        assert_non_null(lt->recs);
        assert_int_equal(connect_any(lt, 0), 0);
        if (termsim_signon(&lt->t, &rsp, &e) != PX_OK)
            fail_msg("sign-on %s: %s", tid, px_error_text(&e));
        assert_int_equal(pthread_create(&lt->th, NULL, load_main, lt), 0);
    }
}

static void join_terminals(loadterm *lts, int n)
{
    for (int i = 0; i < n; i++)
        pthread_join(lts[i].th, NULL);
}

/* What the store says about terminal lt's records: each approval posted once and not
 * undone, each reversal not in the ledger, nothing else. */
static void verify_ledger(loadterm *lts, int n)
{
    store_config sc;
    store *st = NULL;
    px_error e = {0};
    int64_t approved_sum = 0, approved_n = 0, posted_n = 0, balance = 0;
    store_config_default(&sc);
#ifdef SWITCH_TEST_PG
    sc.backend = STORE_POSTGRES;
    px_strlcpy(sc.conninfo, PG.conninfo, sizeof sc.conninfo);
#else
    snprintf(sc.path, sizeof sc.path, "%s/switch.db", F.dir);
#endif
    assert_int_equal(store_open(&sc, &st, &e), 0);
    for (int i = 0; i < n; i++) {
        loadterm *lt = &lts[i];
        for (size_t k = 0; k < lt->n; k++) {
            rec *r = &lt->recs[k];
            store_stmt *q;
            int rc;
            assert_int_equal(store_prepare(st,
                                           "SELECT r.state, r.rc, r.posted, r.undone_by, "
                                           "r.amount, (SELECT COUNT(*) FROM ledger_entry l "
                                           "WHERE l.txn = r.rkey) FROM switch_request r WHERE "
                                           "r.tid = $1 AND r.stan = $2 AND r.batch_no = $3 AND "
                                           "r.kind = 'F'",
                                           &q, &e),
                             0);
            store_bind_text(q, 1, lt->t.tid);
            store_bind_text(q, 2, r->stan);
            store_bind_int64(q, 3, r->batch);
            rc = store_step(q, &e);
            if (r->outcome == R_APPROVED) {
                if (rc != STORE_ROW || store_col_int64(q, 2) != 1 || !store_col_is_null(q, 3) ||
                    store_col_int64(q, 4) != r->amount || store_col_int64(q, 5) != 2)
                    fail_msg("%s STAN %s: approved at the terminal, not exactly once in the "
                             "ledger (row %d)",
                             lt->t.tid, r->stan, rc);
                approved_sum += r->amount;
                approved_n++;
            } else if (rc == STORE_ROW && store_col_int64(q, 2) == 1 && store_col_is_null(q, 3)) {
                fail_msg("%s STAN %s: %s at the terminal but posted and not undone", lt->t.tid,
                         r->stan, r->outcome == R_DECLINED ? "declined" : "reversed");
            }
            store_done(q);
        }
    }
    /* nothing else: per terminal, what is posted and not undone is exactly its approvals */
    for (int i = 0; i < n; i++) {
        store_stmt *q;
        assert_int_equal(store_prepare(st,
                                       "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM "
                                       "switch_request WHERE tid = $1 AND kind = 'F' AND ttype = "
                                       "'purchase' AND posted = 1 AND undone_by IS NULL",
                                       &q, &e),
                         0);
        store_bind_text(q, 1, lts[i].t.tid);
        assert_int_equal(store_step(q, &e), STORE_ROW);
        posted_n += store_col_int64(q, 0);
        balance -= store_col_int64(q, 1);
        store_done(q);
    }
    store_close(st);
    fprintf(stderr,
            "approved %lld purchases (%lld fen) at the terminals; %lld posted and not "
            "undone (%lld fen)\n",
            (long long)approved_n, (long long)approved_sum, (long long)posted_n,
            (long long)balance);
    assert_int_equal(posted_n, approved_n);
    assert_int_equal(balance, -approved_sum);
}

static void cli_ledger_check(void)
{
    px_buf out;
    px_buf_init(&out, 1 << 20);
    if (swfix_cli(&F, &out, "ledger check") != 0 ||
        strstr(px_buf_str(&out), "ledger check OK") == NULL)
        fail_msg("possum ledger check:\n%s", px_buf_str(&out));
    px_buf_free(&out);
}

static void summary(loadterm *lts, int n)
{
    long sent = 0, answered = 0, rev = 0;
    for (int i = 0; i < n; i++) {
        sent += lts[i].sent;
        answered += lts[i].answered;
        for (size_t k = 0; k < lts[i].n; k++)
            rev += lts[i].recs[k].outcome == R_REVERSED;
    }
    fprintf(stderr, "terminals sent %ld purchases, %ld answered, %ld reversed\n", sent, answered,
            rev);
}

/* ---- the tests ---- */

#ifndef SWITCH_TEST_PG
static void test_provider_timeout_reversed(void **state)
{
    swfix_node n;
    termsim t;
    iso8583_msg rsp, m;
    char stan[7];
    px_error e = {0};
    int got91 = 0;
    json_t *j;
    (void)state;
    swfix_stop(&ISS, SIGTERM, 10000);
    assert_int_equal(start_issuer("drop_every_n = 2\n"), 0);
    assert_int_equal(start_switch(&n, "node1",
                                  "provider_timeout_ms = 800\nreversal_retry_ms = 300\n"),
                     0);
    assert_int_equal(termsim_init(&t, "20000005", MID, SWFIX_TMK_C1, SWFIX_TMK_C2, &e), 0);
    assert_int_equal(termsim_connect(&t, n.switch_port, &e), 0);
    assert_int_equal(termsim_signon(&t, &rsp, &e), 0);
    for (int i = 0; i < 4; i++) {
        termsim_next_stan(&t, stan);
        termsim_begin(&t, &m, "0200", stan, "22", "000");
        assert_int_equal(termsim_card(&t, &m, "000000", SWFIX_CARD_OK, 100, SWFIX_CARD_OK_PIN, &e),
                         0);
        assert_int_equal(termsim_exchange(&t, &m, 1, &rsp, 5000, &e), 0);
        got91 += strcmp(termsim_rc(&rsp), "91") == 0;
        if (strcmp(termsim_rc(&rsp), "91") == 0)
            assert_string_equal(field(&rsp, 39), "91");
    }
    assert_true(got91 >= 1);
    /* the provider confirms the reversals: the outbox empties */
    for (int i = 0; i < 100; i++) {
        long long outbox;
        j = get_json(&n, "/v1/switch/ledger/check");
        assert_non_null(j);
        outbox = json_integer_value(json_object_get(j, "outbox"));
        assert_true(json_is_true(json_object_get(j, "ok")));
        json_decref(j);
        if (outbox == 0)
            break;
        sleep_ms(100);
    }
    assert_true(swfix_metric(&n, "possum_switch_provider_reversals_total{state=\"confirmed\"}") >=
                1);
    assert_true(swfix_metric(&n, "possum_switch_provider_timeouts_total") >= 1);
    termsim_close(&t);
    assert_int_equal(swfix_stop(&n, SIGTERM, 15000), 0);
    swfix_stop(&ISS, SIGTERM, 10000);
    assert_int_equal(start_issuer(NULL), 0);
}
#endif

/* SIGKILL at several points of a purchase load; restart; the ledger is exact. */
static void test_crash_during_load(void **state)
{
    swfix_node n;
    loadterm lts[NTERM];
    volatile int stop = 0;
    static const int kill_after_ms[] = {700, 1300, 400, 1900};
    (void)state;
    if (ISS.pid <= 0)
        assert_int_equal(start_issuer(NULL), 0);
    assert_int_equal(start_switch(&n, "node1", "provider_timeout_ms = 3000\n"), 0);
    start_terminals(lts, NTERM, n.switch_port, 0, &stop);
    for (size_t k = 0; k < sizeof kill_after_ms / sizeof kill_after_ms[0]; k++) {
        sleep_ms(kill_after_ms[k]);
        fprintf(stderr, "SIGKILL %zu after %d ms\n", k + 1, kill_after_ms[k]);
        swfix_stop(&n, SIGKILL, 5000);
        sleep_ms(150);
        assert_int_equal(swfix_restart(&n), 0);
        /* the node comes back on a new port: terminals follow it */
        for (int i = 0; i < NTERM; i++)
            lts[i].port[0] = n.switch_port;
    }
    sleep_ms(1500);
    stop = 1;
    join_terminals(lts, NTERM);
    summary(lts, NTERM);
    for (int i = 0; i < NTERM; i++)
        assert_int_equal(lts[i].pending_rev[0], 0); /* every reversal answered */
    assert_true(swfix_log_contains(&n, "marked unanswered") || swfix_log_contains(&n, "ready"));
    assert_int_equal(swfix_stop(&n, SIGTERM, 15000), 0);
    verify_ledger(lts, NTERM);
    cli_ledger_check();
    for (int i = 0; i < NTERM; i++)
        free(lts[i].recs);
}

#ifdef SWITCH_TEST_PG
/* Two nodes on one PostgreSQL: each request goes to one node and, byte for byte, to the
 * other at once; both answers are the same bytes; the ledger stays exact. */
static void test_two_nodes_share_the_ledger(void **state)
{
    swfix_node a, b;
    loadterm lts[2];
    net_client *other[2];
    px_error e = {0};
    long long replayed;
    (void)state;
    if (ISS.pid <= 0)
        assert_int_equal(start_issuer(NULL), 0);
    assert_int_equal(start_switch(&a, "nodeA", "cache_ttl_ms = 100\n"), 0);
    assert_int_equal(start_switch(&b, "nodeB", "cache_ttl_ms = 100\n"), 0);
    for (int i = 0; i < 2; i++) {
        char tid[9];
        iso8583_msg rsp;
        memset(&lts[i], 0, sizeof lts[i]);
        lts[i].recs = calloc(MAXREC, sizeof *lts[i].recs);
        assert_non_null(lts[i].recs);
        snprintf(tid, sizeof tid, "2000%04d", NTERM + 1 + i);
        assert_int_equal(termsim_init(&lts[i].t, tid, MID, SWFIX_TMK_C1, SWFIX_TMK_C2, &e), 0);
        /* terminal i signs on at one node and pays at both */
        assert_int_equal(termsim_connect(&lts[i].t, i == 0 ? a.switch_port : b.switch_port, &e), 0);
        assert_int_equal(termsim_signon(&lts[i].t, &rsp, &e), 0);
        assert_int_equal(net_client_connect("127.0.0.1", i == 0 ? b.switch_port : a.switch_port,
                                            NULL, 5000, &other[i], &e),
                         0);
    }
    for (int k = 0; k < 40; k++) {
        for (int i = 0; i < 2; i++) {
            termsim *t = &lts[i].t;
            rec *r = &lts[i].recs[lts[i].n++];
            iso8583_msg m, r1;
            uint8_t out[PX_ISO_MSG_MAX + 2], in1[PX_ISO_MSG_MAX], in2[PX_ISO_MSG_MAX];
            size_t n = 0, n1 = 0, n2 = 0;
            r->amount = 100 + k * 7 + i;
            r->batch = t->batch;
            termsim_next_stan(t, r->stan);
            termsim_begin(t, &m, "0200", r->stan, "22", "000");
            assert_int_equal(termsim_card(t, &m, "000000", SWFIX_CARD_OK, r->amount,
                                          SWFIX_CARD_OK_PIN, &e),
                             0);
            assert_int_equal(termsim_pack(t, &m, 1, out, sizeof out, &n, &e), 0);
            assert_int_equal(net_client_send_raw(t->c, out, n, &e), 0);
            assert_int_equal(net_client_send_raw(other[i], out, n, &e), 0);
            assert_int_equal(net_client_recv_frame(t->c, in1, sizeof in1, &n1, 20000, &e), 0);
            assert_int_equal(net_client_recv_frame(other[i], in2, sizeof in2, &n2, 20000, &e), 0);
            assert_int_equal(n1, n2);
            assert_memory_equal(in1, in2, n1); /* the original answer, byte for byte */
            assert_int_equal(termsim_unpack(t, in1, n1, &r1, &e), 0);
            r->outcome = strcmp(termsim_rc(&r1), "00") == 0 ? R_APPROVED : R_DECLINED;
        }
    }
    /* the TMS's flag set through node A reaches the terminal through node B */
    {
        char path[96];
        px_buf out;
        long status = 0;
        iso8583_msg m, r1;
        termsim *t = &lts[1].t;
        rec *r = &lts[1].recs[lts[1].n++];
        snprintf(path, sizeof path, "/v1/switch/terminals/%s/update-waiting", t->tid);
        px_buf_init(&out, 1 << 16);
        assert_int_equal(e2e_http(a.http_port, "PUT", path, "{\"waiting\": true}", &status, &out),
                         0);
        assert_int_equal(status, 200);
        px_buf_free(&out);
        sleep_ms(250); /* node B re-reads the terminal within cache_ttl_ms (100) */
        r->amount = 321;
        r->batch = t->batch;
        termsim_next_stan(t, r->stan);
        termsim_begin(t, &m, "0200", r->stan, "22", "000");
        assert_int_equal(termsim_card(t, &m, "000000", SWFIX_CARD_OK, r->amount, SWFIX_CARD_OK_PIN,
                                      &e),
                         0);
        assert_int_equal(termsim_exchange(t, &m, 1, &r1, 20000, &e), 0); /* t->c: node B */
        assert_string_equal(termsim_rc(&r1), "00");
        assert_int_equal(t->header_flag, 6);
        r->outcome = R_APPROVED;
    }
    /* a sign-on at node B is seen by node A: new keys and batch */
    {
        iso8583_msg rsp, m, r1;
        termsim *t = &lts[0].t;
        rec *r = &lts[0].recs[lts[0].n++];
        termsim_close(t);
        t->c = other[0]; /* node B */
        other[0] = NULL;
        assert_int_equal(termsim_signon(t, &rsp, &e), 0);
        termsim_close(t);
        assert_int_equal(termsim_connect(t, a.switch_port, &e), 0);
        r->amount = 555;
        r->batch = t->batch;
        termsim_next_stan(t, r->stan);
        termsim_begin(t, &m, "0200", r->stan, "22", "000");
        assert_int_equal(termsim_card(t, &m, "000000", SWFIX_CARD_OK, r->amount, SWFIX_CARD_OK_PIN,
                                      &e),
                         0);
        assert_int_equal(termsim_exchange(t, &m, 1, &r1, 20000, &e), 0);
        assert_string_equal(termsim_rc(&r1), "00");
        r->outcome = R_APPROVED;
    }
    for (int i = 0; i < 2; i++) {
        termsim_close(&lts[i].t);
        net_client_close(other[i]);
    }
    replayed = swfix_metric(&a, "possum_switch_duplicates_total{action=\"replayed\"}") +
               swfix_metric(&b, "possum_switch_duplicates_total{action=\"replayed\"}");
    fprintf(stderr, "two nodes: %lld retransmissions answered from the store\n", replayed);
    assert_true(replayed >= 80);
    assert_int_equal(swfix_stop(&a, SIGTERM, 15000), 0);
    assert_int_equal(swfix_stop(&b, SIGTERM, 15000), 0);
    verify_ledger(lts, 2);
    cli_ledger_check();
    for (int i = 0; i < 2; i++)
        free(lts[i].recs);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
#ifndef SWITCH_TEST_PG
        cmocka_unit_test(test_provider_timeout_reversed),
#endif
        cmocka_unit_test(test_crash_during_load),
#ifdef SWITCH_TEST_PG
        cmocka_unit_test(test_two_nodes_share_the_ledger),
#endif
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
