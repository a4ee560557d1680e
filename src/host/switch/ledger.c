/*
 * ledger.c: the ledger as operators check and read it (ledger.h, docs/ledger.md), and the
 * one posting made outside the switch's writers: the payee credit of a mobile-number
 * payment, posted by `possum recon run` (phonepay's credit.c). Every other posting is
 * written by the switch's writers (sw_jobs.c).
 */
#include "host/switch/ledger.h"
#include "host/switch/sw_int.h"
#include "lib/str.h"
#include "lib/time.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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
                      "SELECT r.rkey FROM switch_request r LEFT JOIN (SELECT DISTINCT txn FROM "
                      "ledger_entry) e ON e.txn = r.rkey WHERE r.posted = 1 AND e.txn IS NULL "
                      "ORDER BY r.rkey",
                      "request marked posted has no entries", &r->unposted, problem, ud, e);
    if (rc == PX_OK)
        rc = problems(st,
                      "SELECT t.txn FROM ledger_txn t LEFT JOIN (SELECT DISTINCT txn FROM "
                      "ledger_entry) e ON e.txn = t.txn WHERE e.txn IS NULL ORDER BY t.txn",
                      "payee credit recorded without entries", &r->unposted, problem, ud, e);
    if (rc == PX_OK)
        rc = problems(st,
                      "SELECT DISTINCT e.txn FROM ledger_entry e LEFT JOIN switch_request r ON "
                      "r.rkey = e.txn LEFT JOIN ledger_txn t ON t.txn = e.txn WHERE (r.rkey IS "
                      "NULL OR r.posted <> 1) AND t.txn IS NULL ORDER BY e.txn",
                      "entries of no posted request", &r->orphans, problem, ud, e);
    if (rc == PX_OK)
        rc = count_of(st, "SELECT COUNT(*) FROM switch_request WHERE state = 'pending'",
                      &r->pending, e);
    if (rc == PX_OK)
        rc = count_of(st, "SELECT COUNT(*) FROM switch_outbox", &r->outbox, e);
    return rc;
}

/* ---- the payee credit (seed 002 [0055]) ---- */

/* The switch's debit of payment reference (RRN rrn) when the ledger carries it: its rkey in
 * debit, else "" (declined, or approved before mobile-number debits were posted). */
static int find_debit(store *st, const char *reference, const char *rrn, char debit[SW_RKEY_MAX],
                      px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st,
                           "SELECT rkey FROM switch_request WHERE rrn = $1 AND ttype = "
                           "'phonepay' AND ref = $2 AND rc = '00' AND posted = 1",
                           &q, e);
    debit[0] = 0;
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, rrn);
    store_bind_text(q, 2, reference);
    rc = store_step(q, e);
    if (rc == STORE_ROW && store_col_text(q, 0) != NULL)
        px_strlcpy(debit, store_col_text(q, 0), SW_RKEY_MAX);
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

/* Record transaction txn (its primary key: once); *is_new = 0 when it was recorded before. */
static int record_credit(store *st, const char *txn, const char *reference, const char *debit,
                         int64_t amount, int64_t now_ms, int *is_new, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st,
                           "INSERT INTO ledger_txn (txn, ttype, ref, orig_rkey, amount, "
                           "created_ms) VALUES ($1, 'payee_credit', $2, $3, $4, $5) ON CONFLICT "
                           "DO NOTHING",
                           &q, e);
    *is_new = 0;
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, txn);
    store_bind_text(q, 2, reference);
    store_bind_text(q, 3, debit);
    store_bind_int64(q, 4, amount);
    store_bind_int64(q, 5, now_ms);
    rc = store_step(q, e);
    if (rc >= 0)
        *is_new = store_changes(q) == 1;
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

/* Create account id unless it exists, without touching an existing row (so no wait behind
 * a writer that holds it). */
static int ensure_account(store *st, const char *id, const char *kind, int64_t now_ms, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st,
                           "INSERT INTO ledger_account (id, kind, balance, currency, created_ms, "
                           "updated_ms) SELECT $1, $2, 0, '156', CAST($3 AS BIGINT), CAST($3 AS "
                           "BIGINT) WHERE NOT EXISTS (SELECT 1 FROM ledger_account WHERE id = $1) "
                           "ON CONFLICT DO NOTHING",
                           &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, id);
    store_bind_text(q, 2, kind);
    store_bind_int64(q, 3, now_ms);
    rc = store_step(q, e);
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

typedef struct credit_leg {
    const char *account, *kind;
    int64_t amount;
} credit_leg;

/* Each leg's balance, in account order (the writers' order: no deadlock with them on
 * PostgreSQL, docs/ledger.md "Balance updates"). */
static int apply_balances(store *st, const credit_leg legs[2], int64_t now_ms, px_error *e)
{
    int first = strcmp(legs[0].account, legs[1].account) < 0 ? 0 : 1;
    for (int k = 0; k < 2; k++) {
        const credit_leg *l = &legs[k == 0 ? first : 1 - first];
        store_stmt *q;
        int rc = store_prepare(st,
                               "UPDATE ledger_account SET balance = balance + $1, updated_ms = "
                               "$2 WHERE id = $3",
                               &q, e);
        if (rc != PX_OK)
            return rc;
        store_bind_int64(q, 1, l->amount);
        store_bind_int64(q, 2, now_ms);
        store_bind_text(q, 3, l->account);
        rc = store_step(q, e);
        if (rc >= 0 && store_changes(q) != 1)
            rc = px_error_set(e, PX_EINTERNAL, "ledger account %s missing", l->account);
        store_done(q);
        if (rc < 0)
            return rc;
    }
    return PX_OK;
}

/* Two balanced legs as transaction txn: accounts made, entries written, balances updated. */
static int post_two(store *st, const char *txn, const char *ttype, const credit_leg legs[2],
                    int64_t now_ms, px_error *e)
{
    store_stmt *q;
    int rc = PX_OK;
    if (PX_BUG(legs[0].amount + legs[1].amount != 0))
        return px_error_set(e, PX_EINTERNAL, "ledger: transaction %s does not balance", txn);
    for (int i = 0; i < 2 && rc == PX_OK; i++)
        rc = ensure_account(st, legs[i].account, legs[i].kind, now_ms, e);
    if (rc == PX_OK)
        rc = store_prepare(st,
                           "INSERT INTO ledger_entry (txn, leg, account, amount, ttype, "
                           "created_ms) VALUES ($1, 0, $2, CAST($3 AS BIGINT), $6, CAST($7 AS "
                           "BIGINT)), ($1, 1, $4, CAST($5 AS BIGINT), $6, CAST($7 AS BIGINT))",
                           &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, txn);
    store_bind_text(q, 2, legs[0].account);
    store_bind_int64(q, 3, legs[0].amount);
    store_bind_text(q, 4, legs[1].account);
    store_bind_int64(q, 5, legs[1].amount);
    store_bind_text(q, 6, ttype);
    store_bind_int64(q, 7, now_ms);
    rc = store_step(q, e);
    store_done(q);
    return rc < 0 ? rc : apply_balances(st, legs, now_ms, e);
}

int switch_ledger_post_payee_credit(store *st, const char *reference, const char *debit_rrn,
                                    int64_t amount_minor, int *posted, px_error *e)
{
    char txn[SWITCH_ACCOUNT_MAX], debit[SW_RKEY_MAX];
    const credit_leg legs[2] = {{SWITCH_ACCOUNT_PAYEES, "liability", amount_minor},
                                {SWITCH_ACCOUNT_PROVIDER, "asset", -amount_minor}};
    int64_t now = px_now_ms();
    int is_new = 0;
    int rc;
    *posted = 0;
    if (reference == NULL || debit_rrn == NULL || reference[0] == 0 || debit_rrn[0] == 0 ||
        strlen(reference) > 32 || amount_minor <= 0)
        return px_error_set(e, PX_EINVAL, "ledger: payee credit: bad reference, RRN or amount");
    if (PX_BUG(!store_in_transaction(st)))
        return px_error_set(e, PX_ESTATE, "ledger: payee credit outside a transaction");
    snprintf(txn, sizeof txn, "%s%s", SWITCH_TXN_PAYEE_CREDIT, reference);
    rc = find_debit(st, reference, debit_rrn, debit, e);
    if (rc == PX_OK && debit[0])
        rc = record_credit(st, txn, reference, debit, amount_minor, now, &is_new, e);
    if (rc == PX_OK && is_new)
        rc = post_two(st, txn, "payee_credit", legs, now, e);
    if (rc == PX_OK)
        *posted = is_new;
    return rc;
}

int switch_ledger_balances(store *st, int (*fn)(void *ud, const switch_ledger_account *a), void *ud,
                           px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st,
                           "SELECT a.id, a.kind, a.balance, COALESCE(c.n, 0) FROM ledger_account a "
                           "LEFT JOIN (SELECT account, COUNT(*) AS n FROM ledger_entry GROUP BY "
                           "account) c ON c.account = a.id ORDER BY a.id LIMIT 100000",
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

/* One side of a batch: STAN, amount, type, sorted by STAN. */
typedef struct batch_item {
    char stan[7];
    int64_t amount;
    char ttype[12];
} batch_item;

typedef struct batch_side {
    batch_item *v;
    size_t n, cap;
} batch_side;

static int side_push(batch_side *s, const char *stan, int64_t amount, const char *ttype)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        void *p;
        if (cap > PX_SWITCH_REPORT_ROWS)
            return PX_ETOOBIG;
        p = realloc(s->v, cap * sizeof *s->v);
        if (p == NULL)
            return PX_ENOMEM;
        s->v = p;
        s->cap = cap;
    }
    px_strlcpy(s->v[s->n].stan, stan ? stan : "", sizeof s->v[0].stan);
    s->v[s->n].amount = amount;
    px_strlcpy(s->v[s->n].ttype, ttype ? ttype : "", sizeof s->v[0].ttype);
    s->n++;
    return PX_OK;
}

/* Ours (approved and not reversed, purchases and voids) and theirs (the upload), merged
 * by STAN. */
static int batch_diffs(store *st, const switch_batch_report *b, const char *date,
                       int (*fn)(void *ud, const switch_batch_diff *d), void *ud, px_error *e)
{
    batch_side ours = {0}, theirs = {0};
    char lo[SW_RKEY_MAX], hi[SW_RKEY_MAX];
    store_stmt *q;
    size_t i = 0, k = 0;
    int rc, stop = 0;
    sw_rkey_range(lo, hi, b->tid, b->batch_no, date, 'F');
    rc =
        store_prepare(st,
                      "SELECT stan, amount, ttype FROM switch_request WHERE rkey >= $1 AND rkey "
                      "< $2 AND state = 'done' AND rc = '00' AND ttype IN ('purchase', 'phonepay', "
                      "'void') "
                      "AND (undone_by IS NULL OR undone_by NOT LIKE '%|R|%') ORDER BY stan",
                      &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, lo);
    store_bind_text(q, 2, hi);
    while (rc >= 0 && (rc = store_step(q, e)) == STORE_ROW)
        rc = side_push(&ours, store_col_text(q, 0), store_col_int64(q, 1), store_col_text(q, 2)) ==
                     PX_OK
                 ? STORE_ROW
                 : px_error_set(e, PX_ETOOBIG, "batch: too many rows");
    store_done(q);
    if (rc < 0)
        goto out;
    rc = store_prepare(st,
                       "SELECT stan, amount, proc FROM switch_upload WHERE tid = $1 AND batch_no "
                       "= $2 ORDER BY stan",
                       &q, e);
    if (rc != PX_OK)
        goto out;
    store_bind_text(q, 1, b->tid);
    store_bind_int64(q, 2, b->batch_no);
    while (rc >= 0 && (rc = store_step(q, e)) == STORE_ROW) {
        const char *proc = store_col_text(q, 2);
        rc = side_push(&theirs, store_col_text(q, 0), store_col_int64(q, 1),
                       proc && strcmp(proc, "200000") == 0   ? "void"
                       : proc && strcmp(proc, "000000") == 0 ? "purchase"
                                                             : proc) == PX_OK
                 ? STORE_ROW
                 : px_error_set(e, PX_ETOOBIG, "batch: too many rows");
    }
    store_done(q);
    if (rc < 0)
        goto out;
    rc = PX_OK;
    while (!stop && (i < ours.n || k < theirs.n)) {
        switch_batch_diff d;
        int c = i >= ours.n ? 1 : k >= theirs.n ? -1 : strcmp(ours.v[i].stan, theirs.v[k].stan);
        memset(&d, 0, sizeof d);
        if (c < 0) {
            d.side = "switch-only";
            px_strlcpy(d.stan, ours.v[i].stan, sizeof d.stan);
            d.amount_switch = ours.v[i].amount;
            px_strlcpy(d.ttype, ours.v[i].ttype, sizeof d.ttype);
            i++;
        } else if (c > 0) {
            d.side = "terminal-only";
            px_strlcpy(d.stan, theirs.v[k].stan, sizeof d.stan);
            d.amount_terminal = theirs.v[k].amount;
            px_strlcpy(d.ttype, theirs.v[k].ttype, sizeof d.ttype);
            k++;
        } else {
            int same = ours.v[i].amount == theirs.v[k].amount;
            d.side = "amount-differs";
            px_strlcpy(d.stan, ours.v[i].stan, sizeof d.stan);
            d.amount_switch = ours.v[i].amount;
            d.amount_terminal = theirs.v[k].amount;
            px_strlcpy(d.ttype, ours.v[i].ttype, sizeof d.ttype);
            i++;
            k++;
            if (same)
                continue;
        }
        if (fn != NULL)
            stop = fn(ud, &d);
    }
    rc = stop;
out:
    free(ours.v);
    free(theirs.v);
    return rc;
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
        px_strlcpy(out->state, store_col_text(q, 0) ? store_col_text(q, 0) : "", sizeof out->state);
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
            "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM switch_request WHERE rkey >= $1 AND "
            "rkey < $2 AND ttype IN ($3, $4) AND state = 'done' AND rc = '00' AND (undone_by IS "
            "NULL OR undone_by NOT LIKE '%|R|%')";
        char lo[SW_RKEY_MAX], hi[SW_RKEY_MAX];
        sw_rkey_range(lo, hi, tid, batch_no, date, 'F');
        for (int i = 0; i < 2 && rc == PX_OK; i++) {
            rc = store_prepare(st, sql, &q, e);
            if (rc != PX_OK)
                break;
            store_bind_text(q, 1, lo);
            store_bind_text(q, 2, hi);
            /* debits: purchases and mobile-number payments; credits: voids */
            store_bind_text(q, 3, i == 0 ? "purchase" : "void");
            store_bind_text(q, 4, i == 0 ? "phonepay" : "void");
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
