/*
 * ledger.c: the ledger as operators check and read it (ledger.h, docs/ledger.md). Reads
 * only; the postings themselves are written by the switch's writers (sw_jobs.c).
 */
#include "host/switch/ledger.h"
#include "lib/str.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void say(void (*problem)(void *, const char *), void *ud, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(void (*problem)(void *, const char *), void *ud, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    if (problem == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    problem(ud, line);
}

/* Run a query whose rows are problems; *count += rows. fmt gets columns 0 (text) and 1, 2
 * (integers). */
static int problems(store *st, const char *sql, const char *what, int64_t *count,
                    void (*problem)(void *, const char *), void *ud, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st, sql, &q, e);
    int64_t n = 0;
    if (rc != PX_OK)
        return rc;
    while ((rc = store_step(q, e)) == STORE_ROW) {
        if (n++ < PX_SWITCH_REPORT_ROWS) {
            int cols = store_column_count(q);
            say(problem, ud, "%s: %s%s%lld%s%lld", what,
                store_col_text(q, 0) ? store_col_text(q, 0) : "?", cols > 1 ? " " : "",
                cols > 1 ? (long long)store_col_int64(q, 1) : 0LL, cols > 2 ? " " : "",
                cols > 2 ? (long long)store_col_int64(q, 2) : 0LL);
        }
    }
    store_done(q);
    *count += n;
    return rc < 0 ? rc : PX_OK;
}

static int count_of(store *st, const char *sql, int64_t *out, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st, sql, &q, e);
    if (rc != PX_OK)
        return rc;
    rc = store_step(q, e);
    if (rc == STORE_ROW)
        *out = store_col_int64(q, 0);
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

int switch_ledger_check(store *st, switch_ledger_check_result *r,
                        void (*problem)(void *ud, const char *line), void *ud, px_error *e)
{
    int rc;
    memset(r, 0, sizeof *r);
    /* One consistent view of everything (SQLite: a read transaction; PostgreSQL: the
     * checks read committed data, each statement on its own snapshot: run it quiet or
     * accept a moving target). */
    rc = count_of(st, "SELECT COUNT(*) FROM ledger_account", &r->accounts, e);
    if (rc == PX_OK)
        rc = count_of(st, "SELECT COUNT(*) FROM ledger_entry", &r->entries, e);
    if (rc == PX_OK)
        rc = count_of(st, "SELECT COUNT(DISTINCT txn) FROM ledger_entry", &r->txns, e);
    if (rc == PX_OK)
        rc = problems(st,
                      "SELECT a.id, a.balance, COALESCE(s.total, 0) FROM ledger_account a LEFT "
                      "JOIN (SELECT account, SUM(amount) AS total FROM ledger_entry GROUP BY "
                      "account) s ON s.account = a.id WHERE a.balance <> COALESCE(s.total, 0) "
                      "ORDER BY a.id",
                      "balance is not the sum of its entries (account balance sum)",
                      &r->bad_balances, problem, ud, e);
    if (rc == PX_OK)
        rc = problems(st,
                      "SELECT txn, SUM(amount) FROM ledger_entry GROUP BY txn HAVING SUM(amount) "
                      "<> 0 ORDER BY txn",
                      "transaction does not sum to zero (txn sum)", &r->bad_txns, problem, ud, e);
    if (rc == PX_OK)
        rc = problems(st,
                      "SELECT r.rkey FROM switch_request r WHERE r.posted = 1 AND NOT EXISTS "
                      "(SELECT 1 FROM ledger_entry e WHERE e.txn = r.rkey) ORDER BY r.rkey",
                      "request marked posted has no entries", &r->unposted, problem, ud, e);
    if (rc == PX_OK)
        rc = problems(st,
                      "SELECT DISTINCT e.txn FROM ledger_entry e LEFT JOIN switch_request r ON "
                      "r.rkey = e.txn WHERE r.rkey IS NULL OR r.posted <> 1 ORDER BY e.txn",
                      "entries of no posted request", &r->orphans, problem, ud, e);
    if (rc == PX_OK)
        rc = count_of(st, "SELECT COUNT(*) FROM switch_request WHERE state = 'pending'",
                      &r->pending, e);
    if (rc == PX_OK)
        rc = count_of(st, "SELECT COUNT(*) FROM switch_outbox", &r->outbox, e);
    return rc;
}

int switch_ledger_balances(store *st, int (*fn)(void *ud, const switch_ledger_account *a),
                           void *ud, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st,
                           "SELECT a.id, a.kind, a.balance, (SELECT COUNT(*) FROM ledger_entry e "
                           "WHERE e.account = a.id) FROM ledger_account a ORDER BY a.id LIMIT "
                           "100000",
                           &q, e);
    int stop = 0;
    if (rc != PX_OK)
        return rc;
    while ((rc = store_step(q, e)) == STORE_ROW) {
        switch_ledger_account a;
        memset(&a, 0, sizeof a);
        px_strlcpy(a.id, store_col_text(q, 0) ? store_col_text(q, 0) : "", sizeof a.id);
        px_strlcpy(a.kind, store_col_text(q, 1) ? store_col_text(q, 1) : "", sizeof a.kind);
        a.balance = store_col_int64(q, 2);
        a.entries = store_col_int64(q, 3);
        if ((stop = fn(ud, &a)) != 0)
            break;
    }
    store_done(q);
    if (stop)
        return stop;
    return rc < 0 ? rc : PX_OK;
}

static int batch_diffs(store *st, const switch_batch_report *b, const char *date,
                       int (*fn)(void *ud, const switch_batch_diff *d), void *ud, px_error *e)
{
    /* Ours: approved and not reversed, purchases and voids, by STAN; theirs: the upload. */
    static const char *const sql[] = {
        "SELECT r.stan, r.amount, r.ttype FROM switch_request r WHERE r.tid = $1 AND "
        "r.batch_no = $2 AND r.batch_date = $3 AND r.kind = 'F' AND r.state = 'done' AND r.rc = "
        "'00' AND r.ttype IN ('purchase', 'void') AND (r.undone_by IS NULL OR r.undone_by NOT "
        "LIKE '%|R') AND NOT EXISTS (SELECT 1 FROM switch_upload u WHERE u.tid = r.tid AND "
        "u.batch_no = r.batch_no AND u.stan = r.stan) ORDER BY r.stan",
        "SELECT u.stan, u.amount, u.proc FROM switch_upload u WHERE u.tid = $1 AND u.batch_no = "
        "$2 AND NOT EXISTS (SELECT 1 FROM "
        "switch_request r WHERE r.tid = u.tid AND r.batch_no = u.batch_no AND r.batch_date = $3 "
        "AND r.stan = u.stan AND r.kind = 'F' AND r.state = 'done' AND r.rc = '00' AND "
        "(r.undone_by IS NULL OR r.undone_by NOT LIKE '%|R')) ORDER BY u.stan",
        "SELECT u.stan, r.amount, u.amount, r.ttype FROM switch_upload u JOIN switch_request r "
        "ON r.tid = u.tid AND r.batch_no = u.batch_no AND r.stan = u.stan AND r.kind = 'F' "
        "WHERE u.tid = $1 AND u.batch_no = $2 AND r.batch_date = $3 AND r.state = 'done' AND "
        "r.rc = '00' AND u.amount <> r.amount ORDER BY u.stan",
    };
    static const char *const side[] = {"switch-only", "terminal-only", "amount-differs"};
    int stop = 0;
    for (size_t i = 0; i < 3 && !stop; i++) {
        store_stmt *q;
        int rc = store_prepare(st, sql[i], &q, e);
        if (rc != PX_OK)
            return rc;
        store_bind_text(q, 1, b->tid);
        store_bind_int64(q, 2, b->batch_no);
        store_bind_text(q, 3, date);
        while ((rc = store_step(q, e)) == STORE_ROW) {
            switch_batch_diff d;
            memset(&d, 0, sizeof d);
            d.side = side[i];
            px_strlcpy(d.stan, store_col_text(q, 0) ? store_col_text(q, 0) : "", sizeof d.stan);
            if (i == 0) {
                d.amount_switch = store_col_int64(q, 1);
                px_strlcpy(d.ttype, store_col_text(q, 2) ? store_col_text(q, 2) : "",
                           sizeof d.ttype);
            } else if (i == 1) {
                const char *proc = store_col_text(q, 2);
                d.amount_terminal = store_col_int64(q, 1);
                px_strlcpy(d.ttype,
                           proc && strcmp(proc, "200000") == 0   ? "void"
                           : proc && strcmp(proc, "000000") == 0 ? "purchase"
                                                                 : (proc ? proc : ""),
                           sizeof d.ttype);
            } else {
                d.amount_switch = store_col_int64(q, 1);
                d.amount_terminal = store_col_int64(q, 2);
                px_strlcpy(d.ttype, store_col_text(q, 3) ? store_col_text(q, 3) : "",
                           sizeof d.ttype);
            }
            if (fn != NULL && (stop = fn(ud, &d)) != 0)
                break;
        }
        store_done(q);
        if (rc < 0)
            return rc;
    }
    return stop;
}

int switch_ledger_batch(store *st, const char *tid, int64_t batch_no, switch_batch_report *out,
                        int (*fn)(void *ud, const switch_batch_diff *d), void *ud, px_error *e)
{
    store_stmt *q;
    char date[16] = "";
    int rc = store_prepare(st,
                           "SELECT state, result, sw_debit_count, sw_debit_amount, "
                           "sw_credit_count, sw_credit_amount, term_debit_count, "
                           "term_debit_amount, term_credit_count, term_credit_amount, "
                           "batch_date, (SELECT COUNT(*) FROM switch_upload u WHERE u.tid = "
                           "b.tid AND u.batch_no = b.batch_no) FROM switch_batch b WHERE tid = "
                           "$1 AND batch_no = $2",
                           &q, e);
    if (rc != PX_OK)
        return rc;
    memset(out, 0, sizeof *out);
    store_bind_text(q, 1, tid);
    store_bind_int64(q, 2, batch_no);
    rc = store_step(q, e);
    if (rc == STORE_ROW) {
        px_strlcpy(out->tid, tid, sizeof out->tid);
        out->batch_no = batch_no;
        px_strlcpy(out->state, store_col_text(q, 0) ? store_col_text(q, 0) : "",
                   sizeof out->state);
        out->result = (int)store_col_int64(q, 1);
        out->sw_debit_count = store_col_int64(q, 2);
        out->sw_debit_amount = store_col_int64(q, 3);
        out->sw_credit_count = store_col_int64(q, 4);
        out->sw_credit_amount = store_col_int64(q, 5);
        out->term_debit_count = store_col_int64(q, 6);
        out->term_debit_amount = store_col_int64(q, 7);
        out->term_credit_count = store_col_int64(q, 8);
        out->term_credit_amount = store_col_int64(q, 9);
        px_strlcpy(date, store_col_text(q, 10) ? store_col_text(q, 10) : "", sizeof date);
        out->uploaded = store_col_int64(q, 11);
        rc = PX_OK;
    } else if (rc == STORE_DONE) {
        rc = px_error_set(e, PX_ENOTFOUND, "terminal %s has no batch %06lld", tid,
                          (long long)batch_no);
    }
    store_done(q);
    if (rc != PX_OK)
        return rc;
    if (strcmp(out->state, "open") == 0) { /* not settled yet: our running totals */
        static const char sql[] =
            "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM switch_request WHERE tid = $1 AND "
            "batch_no = $2 AND batch_date = $3 AND kind = 'F' AND ttype = $4 AND state = 'done' "
            "AND rc = '00' AND (undone_by IS NULL OR undone_by NOT LIKE '%|R')";
        for (int i = 0; i < 2 && rc == PX_OK; i++) {
            rc = store_prepare(st, sql, &q, e);
            if (rc != PX_OK)
                break;
            store_bind_text(q, 1, tid);
            store_bind_int64(q, 2, batch_no);
            store_bind_text(q, 3, date);
            store_bind_text(q, 4, i == 0 ? "purchase" : "void");
            rc = store_step(q, e);
            if (rc == STORE_ROW) {
                *(i == 0 ? &out->sw_debit_count : &out->sw_credit_count) = store_col_int64(q, 0);
                *(i == 0 ? &out->sw_debit_amount : &out->sw_credit_amount) = store_col_int64(q, 1);
                rc = PX_OK;
            }
            store_done(q);
        }
        if (rc != PX_OK)
            return rc < 0 ? rc : PX_OK;
    }
    if (out->uploaded > 0 || fn == NULL)
        return out->uploaded > 0 ? batch_diffs(st, out, date, fn, ud, e) : PX_OK;
    return PX_OK;
}
