/*
 * sw_jobs.c: what each writer job does inside its group's transaction (writer threads).
 * Every job is written so that running it again after an uncertain commit (PostgreSQL
 * connection lost in COMMIT) is safe: inserts are ON CONFLICT DO NOTHING and recognise our
 * own earlier row by its owner token, updates are conditional on the state they expect.
 * Statements are constant SQL (prepared once per connection by the store's cache).
 */
#include "host/switch/ledger.h"
#include "host/switch/sw_int.h"
#include "lib/log.h"
#include "lib/str.h"

#include <stdio.h>
#include <string.h>

/* ---- requests ---- */

static const char sql_insert_request[] =
    "INSERT INTO switch_request (rkey, tid, mid, stan, batch_no, batch_date, kind, ttype, "
    "state, req_hash, amount, rc, rsp, rrn, auth_code, pan_masked, orig_rkey, undone_by, "
    "prov_stan, prov_time, prov_blob, owner, node, created_ms, updated_ms, ref) VALUES ($1, "
    "$2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, "
    "$21, $22, $23, $24, $24, $25) ON CONFLICT DO NOTHING";

static void bind_text_or_null(store_stmt *q, int i, const char *v)
{
    store_bind_text(q, i, v != NULL && v[0] ? v : NULL);
}

/* Insert j's request row in state; 1 inserted, 0 a row with that key exists. */
static int insert_request(store *st, sw_group *g, sw_job *j, const char *state,
                          const char *undone_by, px_error *e)
{
    store_stmt *q;
    char kind[2] = {j->kind_c, 0};
    int rc = store_prepare(st, sql_insert_request, &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, j->rkey);
    store_bind_text(q, 2, j->tid);
    store_bind_text(q, 3, j->mid);
    store_bind_text(q, 4, j->stan);
    store_bind_int64(q, 5, j->batch);
    store_bind_text(q, 6, j->batch_date);
    store_bind_text(q, 7, kind);
    store_bind_text(q, 8, j->ttype);
    store_bind_text(q, 9, state);
    if (j->has_hash)
        store_bind_blob(q, 10, j->hash, sizeof j->hash);
    else
        store_bind_null(q, 10);
    store_bind_int64(q, 11, j->amount);
    bind_text_or_null(q, 12, j->rc);
    if (j->rsp != NULL)
        store_bind_blob(q, 13, j->rsp, j->rsplen);
    else
        store_bind_null(q, 13);
    bind_text_or_null(q, 14, j->rrn);
    bind_text_or_null(q, 15, j->auth);
    bind_text_or_null(q, 16, j->pan_masked);
    bind_text_or_null(q, 17, j->orig_rkey);
    bind_text_or_null(q, 18, undone_by);
    bind_text_or_null(q, 19, j->prov_stan);
    bind_text_or_null(q, 20, j->prov_time);
    if (j->prov_blob != NULL)
        store_bind_blob(q, 21, j->prov_blob, j->prov_bloblen);
    else
        store_bind_null(q, 21);
    store_bind_text(q, 22, j->owner);
    store_bind_text(q, 23, sw_group_node(g));
    store_bind_int64(q, 24, sw_group_now_ms(g));
    bind_text_or_null(q, 25, j->ref);
    rc = store_step(q, e);
    if (rc >= 0)
        rc = store_changes(q) == 1 ? 1 : 0;
    store_done(q);
    return rc;
}

/* The row with j's key exists: what is it to j? (Our own earlier insert counts as new.) */
static int existing_outcome(store *st, sw_job *j, int *outcome, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st,
                           "SELECT state, req_hash, rsp, owner FROM switch_request "
                           "WHERE rkey = $1",
                           &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, j->rkey);
    rc = store_step(q, e);
    if (rc == STORE_ROW) {
        const char *state = store_col_text(q, 0);
        size_t hn = 0, rn = 0;
        const void *hash = store_col_blob(q, 1, &hn);
        const void *rsp = store_col_blob(q, 2, &rn);
        const char *owner = store_col_text(q, 3);
        state = state ? state : "";
        if (owner != NULL && strcmp(owner, j->owner) == 0) {
            *outcome = SW_O_NEW;
        } else if (hash == NULL || hn != sizeof j->hash || !j->has_hash ||
                   memcmp(hash, j->hash, hn) != 0) {
            /* A tombstone (reversed before it came) has no hash: refuse it as well. */
            *outcome = strcmp(state, "void") == 0 ? SW_O_FAILED : SW_O_CONFLICT;
        } else if (strcmp(state, "done") == 0 && rsp != NULL && rn > 0) {
            *outcome = SW_O_REPLAY;
            j->out.rsp = malloc(rn);
            if (j->out.rsp == NULL)
                rc = px_error_set(e, PX_ENOMEM, "out of memory");
            else {
                memcpy(j->out.rsp, rsp, rn);
                j->out.rsplen = rn;
            }
        } else if (strcmp(state, "pending") == 0 ||
                   (strcmp(state, "done") == 0 && (rsp == NULL || rn == 0))) {
            *outcome = SW_O_PENDING;
        } else {
            *outcome = SW_O_FAILED;
        }
        if (rc == STORE_ROW)
            rc = PX_OK;
    } else if (rc == STORE_DONE) {
        rc = px_error_set(e, PX_ESTATE, "request %s vanished", j->rkey);
    }
    store_done(q);
    return rc;
}

/* Insert, or find out what the existing row means. *is_new = 1 when j's row is there now. */
static int insert_or_outcome(store *st, sw_group *g, sw_job *j, const char *state, int *is_new,
                             px_error *e)
{
    int rc = insert_request(st, g, j, state, NULL, e);
    *is_new = 0;
    if (rc < 0)
        return rc;
    if (rc == 1) {
        *is_new = 1;
        j->out.outcome = SW_O_NEW;
        return PX_OK;
    }
    rc = existing_outcome(st, j, &j->out.outcome, e);
    if (rc == PX_OK && j->out.outcome == SW_O_NEW)
        *is_new = 1;
    return rc;
}

static int exec_text(store *st, const char *sql, const char *a, const char *b, int64_t n,
                     int64_t *changes, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st, sql, &q, e);
    if (rc != PX_OK)
        return rc;
    if (a)
        store_bind_text(q, 1, a);
    if (b)
        store_bind_text(q, 2, b);
    if (n >= 0)
        store_bind_int64(q, b ? 3 : 2, n);
    rc = store_step(q, e);
    if (changes)
        *changes = rc >= 0 ? store_changes(q) : 0;
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

static int add_outbox(store *st, sw_group *g, const char *rkey, const char *reason, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st,
                           "INSERT INTO switch_outbox (rkey, reason, attempts, next_ms, "
                           "created_ms) VALUES ($1, $2, 0, $3, $3) ON CONFLICT DO NOTHING",
                           &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, rkey);
    store_bind_text(q, 2, reason && reason[0] ? reason : "98");
    store_bind_int64(q, 3, sw_group_now_ms(g));
    rc = store_step(q, e);
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

/* ---- postings ---- */

/* The entries of one transaction in one statement (1 to 3 legs). */
static int insert_entries(store *st, sw_group *g, const char *txn, const char *ttype,
                          const char *const *accounts, const int64_t *amounts, size_t n,
                          px_error *e)
{
    static const char *const sql[] = {
        "INSERT INTO ledger_entry (txn, leg, account, amount, ttype, created_ms) VALUES ($1, "
        "0, $3, $4, $2, CAST($5 AS BIGINT))",
        "INSERT INTO ledger_entry (txn, leg, account, amount, ttype, created_ms) VALUES ($1, "
        "0, $3, $4, $2, CAST($7 AS BIGINT)), ($1, 1, $5, $6, $2, CAST($7 AS BIGINT))",
        "INSERT INTO ledger_entry (txn, leg, account, amount, ttype, created_ms) VALUES ($1, "
        "0, $3, $4, $2, CAST($9 AS BIGINT)), ($1, 1, $5, $6, $2, CAST($9 AS BIGINT)), ($1, 2, "
        "$7, $8, $2, CAST($9 AS BIGINT))"};
    store_stmt *q;
    int rc;
    if (PX_BUG(n < 1 || n > 3))
        return PX_EINTERNAL;
    rc = store_prepare(st, sql[n - 1], &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, txn);
    store_bind_text(q, 2, ttype);
    for (size_t i = 0; i < n; i++) {
        store_bind_text(q, 3 + 2 * (int)i, accounts[i]);
        store_bind_int64(q, 4 + 2 * (int)i, amounts[i]);
    }
    store_bind_int64(q, 3 + 2 * (int)n, sw_group_now_ms(g));
    rc = store_step(q, e);
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

typedef struct sw_leg {
    char account[SWITCH_ACCOUNT_MAX];
    const char *kind;
    int64_t amount;
} sw_leg;

/* ---- PostgreSQL: a group's hot statements as one statement each (arrays + unnest) ---- */

/* A PostgreSQL array literal being built: {"a","b",NULL}. */
typedef struct pg_array {
    px_buf b;
    int n;
} pg_array;

static void arr_init(pg_array *a)
{
    px_buf_init(&a->b, PX_STORE_VALUE_MAX);
    (void)px_buf_append_byte(&a->b, '{');
    a->n = 0;
}

static void arr_sep(pg_array *a)
{
    if (a->n++ > 0)
        (void)px_buf_append_byte(&a->b, ',');
}

static void arr_text(pg_array *a, const char *v)
{
    arr_sep(a);
    if (v == NULL || v[0] == 0) { /* "" is stored as NULL, as bind_text_or_null does */
        (void)px_buf_append_str(&a->b, "NULL");
        return;
    }
    (void)px_buf_append_byte(&a->b, '"');
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\')
            (void)px_buf_append_byte(&a->b, '\\');
        (void)px_buf_append_byte(&a->b, (uint8_t)*p);
    }
    (void)px_buf_append_byte(&a->b, '"');
}

static void arr_int(pg_array *a, int64_t v)
{
    arr_sep(a);
    (void)px_buf_printf(&a->b, "%lld", (long long)v);
}

static void arr_hex(pg_array *a, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    arr_sep(a);
    if (p == NULL) {
        (void)px_buf_append_str(&a->b, "NULL");
        return;
    }
    (void)px_buf_append_byte(&a->b, '"');
    for (size_t i = 0; i < n; i++) {
        (void)px_buf_append_byte(&a->b, (uint8_t)hex[p[i] >> 4]);
        (void)px_buf_append_byte(&a->b, (uint8_t)hex[p[i] & 15]);
    }
    (void)px_buf_append_byte(&a->b, '"');
}

static const char *arr_end(pg_array *a)
{
    (void)px_buf_append_byte(&a->b, '}');
    return px_buf_str(&a->b);
}

/* Entries deferred while a PostgreSQL group completes its requests together. */
struct sw_entry_buf {
    pg_array txn, leg, account, amount, ttype;
    int n;
};

static int defer_entries(sw_entry_buf *eb, const char *txn, const char *ttype,
                         const char *const *accounts, const int64_t *amounts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        arr_text(&eb->txn, txn);
        arr_int(&eb->leg, (int64_t)i);
        arr_text(&eb->account, accounts[i]);
        arr_int(&eb->amount, amounts[i]);
        arr_text(&eb->ttype, ttype);
        eb->n++;
    }
    return PX_OK;
}

/* Post legs as one balanced transaction txn. */
static int post(store *st, sw_group *g, const char *txn, const char *ttype, const sw_leg *legs,
                size_t n, px_error *e)
{
    const char *accounts[3];
    int64_t amounts[3], sum = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        sum += legs[i].amount;
    if (PX_BUG(sum != 0 || n > 3))
        return px_error_set(e, PX_EINTERNAL, "ledger: transaction %s does not balance", txn);
    for (size_t i = 0; i < n; i++) {
        int rc;
        if (legs[i].amount == 0)
            continue;
        rc = sw_group_ensure_account(st, g, legs[i].account, legs[i].kind, e);
        if (rc == PX_OK)
            rc = sw_group_add_delta(g, legs[i].account, legs[i].kind, legs[i].amount);
        if (rc != PX_OK)
            return rc;
        accounts[k] = legs[i].account;
        amounts[k++] = legs[i].amount;
    }
    if (k > 0 && sw_group_entries(g) != NULL)
        return defer_entries(sw_group_entries(g), txn, ttype, accounts, amounts, k);
    return k == 0 ? PX_OK : insert_entries(st, g, txn, ttype, accounts, amounts, k, e);
}

/* The entries of a sale of amount with fee for merchant mid, times sign: +1 posts a
 * purchase (the provider owes us the amount; we owe the merchant the amount less the fee),
 * -1 undoes one (a void, a reversal). */
static int post_sale(store *st, sw_group *g, const char *txn, const char *ttype, const char *mid,
                     int64_t amount, int64_t fee, int sign, px_error *e)
{
    sw_leg legs[3];
    memset(legs, 0, sizeof legs);
    px_strlcpy(legs[0].account, SWITCH_ACCOUNT_PROVIDER, sizeof legs[0].account);
    legs[0].kind = "asset";
    legs[0].amount = sign * amount;
    snprintf(legs[1].account, sizeof legs[1].account, "%s%s", SWITCH_ACCOUNT_MERCHANT, mid);
    legs[1].kind = "liability";
    legs[1].amount = -sign * (amount - fee);
    px_strlcpy(legs[2].account, SWITCH_ACCOUNT_FEES, sizeof legs[2].account);
    legs[2].kind = "income";
    legs[2].amount = -sign * fee;
    return post(st, g, txn, ttype, legs, 3, e);
}

/* The entries of a mobile-number debit of amount, times sign (seed 002 [0054]): +1 posts
 * one (the provider collected the amount from the payer for us; we owe it to the payee
 * until the payee credit, [0055]), -1 undoes one (a reversal). No fee: [switch] fee_bp is
 * the merchant's, and a mobile-number payment has no merchant to charge. */
static int post_mobile(store *st, sw_group *g, const char *txn, const char *ttype, int64_t amount,
                       int sign, px_error *e)
{
    sw_leg legs[2];
    memset(legs, 0, sizeof legs);
    px_strlcpy(legs[0].account, SWITCH_ACCOUNT_PROVIDER, sizeof legs[0].account);
    legs[0].kind = "asset";
    legs[0].amount = sign * amount;
    px_strlcpy(legs[1].account, SWITCH_ACCOUNT_PAYEES, sizeof legs[1].account);
    legs[1].kind = "liability";
    legs[1].amount = -sign * amount;
    return post(st, g, txn, ttype, legs, 2, e);
}

/* Post (sign +1) or undo (-1), as transaction txn, the entries a request of type ottype
 * posts: a purchase, a void (its purchase's entries negated) or a mobile-number debit. */
static int post_by_type(store *st, sw_group *g, const char *txn, const char *ttype,
                        const char *ottype, const char *mid, int64_t amount, int64_t fee, int sign,
                        px_error *e)
{
    if (strcmp(ottype, "purchase") == 0)
        return post_sale(st, g, txn, ttype, mid, amount, fee, sign, e);
    if (strcmp(ottype, "void") == 0)
        return post_sale(st, g, txn, ttype, mid, amount, fee, -sign, e);
    if (strcmp(ottype, "phonepay") == 0)
        return post_mobile(st, g, txn, ttype, amount, sign, e);
    return px_error_set(e, PX_EINTERNAL, "ledger: %s: a %s posts nothing", txn, ottype);
}

/* What an original request posted: amount, fee, merchant, type. PX_ENOTFOUND if absent. */
static int read_posting(store *st, const char *rkey, int64_t *amount, int64_t *fee, char mid[16],
                        char ttype[12], px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st, "SELECT amount, fee, mid, ttype FROM switch_request WHERE rkey = $1",
                           &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, rkey);
    rc = store_step(q, e);
    if (rc == STORE_ROW) {
        *amount = store_col_int64(q, 0);
        *fee = store_col_int64(q, 1);
        px_strlcpy(mid, store_col_text(q, 2) ? store_col_text(q, 2) : "", 16);
        px_strlcpy(ttype, store_col_text(q, 3) ? store_col_text(q, 3) : "", 12);
        rc = PX_OK;
    } else if (rc == STORE_DONE) {
        rc = px_error_set(e, PX_ENOTFOUND, "ledger: original %s not found", rkey);
    }
    store_done(q);
    return rc;
}

/* Undo what orig posted (a purchase, a mobile-number debit; for a void, post its purchase
 * again), as transaction txn, by its type; the undoing request carries orig's fee. */
static int post_undo(store *st, sw_group *g, const char *txn, const char *ttype, const char *orig,
                     px_error *e)
{
    int64_t amount = 0, fee = 0;
    char mid[16], ottype[12];
    store_stmt *q;
    int rc = read_posting(st, orig, &amount, &fee, mid, ottype, e);
    if (rc != PX_OK)
        return rc;
    rc = post_by_type(st, g, txn, ttype, ottype, mid, amount, fee, -1, e);
    if (rc != PX_OK)
        return rc;
    rc = store_prepare(st, "UPDATE switch_request SET fee = $2, posted = 1 WHERE rkey = $1", &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, txn);
    store_bind_int64(q, 2, fee);
    rc = store_step(q, e);
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

/* ---- jobs ---- */

static int job_final(store *st, sw_group *g, sw_job *j, px_error *e)
{
    int is_new;
    int rc = insert_or_outcome(st, g, j, "done", &is_new, e);
    if (rc != PX_OK || !is_new || j->kind != SW_J_UPLOAD)
        return rc;
    for (size_t i = 0; i < j->nupload && rc == PX_OK; i++) {
        store_stmt *q;
        rc = store_prepare(st,
                           "INSERT INTO switch_upload (tid, batch_no, stan, amount, proc, "
                           "created_ms) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tid, "
                           "batch_no, stan) DO UPDATE SET amount = excluded.amount, proc = "
                           "excluded.proc",
                           &q, e);
        if (rc != PX_OK)
            break;
        store_bind_text(q, 1, j->tid);
        store_bind_int64(q, 2, j->batch);
        store_bind_text(q, 3, j->upload[i].stan);
        store_bind_int64(q, 4, j->upload[i].amount);
        store_bind_text(q, 5, j->upload[i].proc);
        store_bind_int64(q, 6, sw_group_now_ms(g));
        rc = store_step(q, e);
        store_done(q);
        rc = rc < 0 ? rc : PX_OK;
    }
    return rc;
}

/* A void claims its original: it must be an approved purchase of the same terminal, not
 * undone, with the same RRN and amount. */
static int claim_original(store *st, sw_job *j, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st,
                           "SELECT state, rc, ttype, undone_by, amount, rrn FROM switch_request "
                           "WHERE rkey = $1\n-- @postgres\nFOR UPDATE",
                           &q, e);
    int ok = 0;
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, j->orig_rkey);
    rc = store_step(q, e);
    if (rc == STORE_DONE) {
        px_strlcpy(j->out.rc, SWITCH_RC_ORIG_NOT_FOUND, sizeof j->out.rc);
    } else if (rc == STORE_ROW) {
        const char *state = store_col_text(q, 0), *orc = store_col_text(q, 1);
        const char *tt = store_col_text(q, 2), *rrn = store_col_text(q, 5);
        ok = state && strcmp(state, "done") == 0 && orc && strcmp(orc, "00") == 0 && tt &&
             strcmp(tt, "purchase") == 0 && store_col_is_null(q, 3) &&
             store_col_int64(q, 4) == j->amount && rrn && strcmp(rrn, j->orig_rrn) == 0;
        if (!ok)
            px_strlcpy(j->out.rc, SWITCH_RC_INVALID_TXN, sizeof j->out.rc);
    }
    store_done(q);
    if (rc < 0)
        return rc;
    if (!ok) {
        j->out.outcome = SW_O_REFUSED;
        return PX_OK;
    }
    int64_t ch = 0;
    rc = exec_text(st,
                   "UPDATE switch_request SET undone_by = $2 WHERE rkey = $1 AND undone_by IS NULL",
                   j->orig_rkey, j->rkey, -1, &ch, e);
    if (rc == PX_OK && ch != 1) {
        j->out.outcome = SW_O_REFUSED;
        px_strlcpy(j->out.rc, SWITCH_RC_INVALID_TXN, sizeof j->out.rc);
    }
    return rc;
}

static int job_claim(store *st, sw_group *g, sw_job *j, px_error *e)
{
    int is_new;
    int rc = insert_or_outcome(st, g, j, "pending", &is_new, e);
    if (rc != PX_OK || !is_new)
        return rc;
    if (strcmp(j->ttype, "void") == 0)
        return claim_original(st, j, e);
    return PX_OK;
}

/* rrn is not assigned here: it was set by the claim, and assigning an indexed column
 * rewrites its index entry even to the same value. */
static const char sql_complete[] =
    "UPDATE switch_request SET state = 'done', rc = $2, rsp = $3, auth_code = $4, "
    "updated_ms = $5, posted = CASE WHEN undone_by IS NULL AND CAST($6 AS BIGINT) = 1 THEN 1 "
    "ELSE 0 END, fee = $7 WHERE rkey = $1 AND state = 'pending' RETURNING undone_by, "
    "orig_rkey, prov_blob IS NOT NULL";

/* Completion found no pending row: is it our own earlier (uncertain) commit? */
static int complete_lost(store *st, sw_job *j, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st, "SELECT state, rsp FROM switch_request WHERE rkey = $1", &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, j->rkey);
    rc = store_step(q, e);
    j->out.outcome = SW_O_LOST;
    if (rc == STORE_ROW) {
        size_t n = 0;
        const void *rsp = store_col_blob(q, 1, &n);
        const char *state = store_col_text(q, 0);
        if (state && strcmp(state, "done") == 0 && rsp && j->rsp && n == j->rsplen &&
            memcmp(rsp, j->rsp, n) == 0)
            j->out.outcome = SW_O_NEW;
    }
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

/* Whether an answer posts (approved purchases, voids and mobile-number debits) and the fee
 * it carries (purchases only). Returns 1 when approved. */
static int complete_params(const sw_job *j, int *postable, int64_t *fee)
{
    int approved = strcmp(j->rc, SWITCH_RC_APPROVED) == 0;
    int is_sale = strcmp(j->ttype, "purchase") == 0;
    *postable = approved &&
                (is_sale || strcmp(j->ttype, "void") == 0 || strcmp(j->ttype, "phonepay") == 0);
    *fee = *postable && is_sale && j->fee_bp > 0 ? j->amount * j->fee_bp / 10000 : 0;
    return approved;
}

/* What follows a completion's UPDATE: postings, or (reversed meanwhile) the provider's
 * reversal; the void's purchase released when the void failed. */
static int complete_after(store *st, sw_group *g, sw_job *j, const char *undone, const char *orig,
                          int has_prov, px_error *e)
{
    int postable;
    int64_t fee;
    int approved = complete_params(j, &postable, &fee);
    int is_void = strcmp(j->ttype, "void") == 0;
    int rc = PX_OK;
    j->out.outcome = SW_O_NEW;
    if (undone[0]) {
        /* The terminal reversed it while it was at the provider: post nothing, and take back
         * at the provider what it approved. */
        j->out.outcome = SW_O_UNDONE;
        if (approved && has_prov)
            rc = add_outbox(st, g, j->rkey, "98", e);
        if (rc == PX_OK && is_void && orig[0])
            rc = exec_text(st,
                           "UPDATE switch_request SET undone_by = NULL WHERE rkey = $1 AND "
                           "undone_by = $2",
                           orig, j->rkey, -1, NULL, e);
        return rc;
    }
    if (postable && !is_void)
        rc = post_by_type(st, g, j->rkey, j->ttype, j->ttype, j->mid, j->amount, fee, 1, e);
    else if (postable && is_void)
        rc = post_undo(st, g, j->rkey, "void", orig, e);
    else if (is_void && orig[0])
        rc = exec_text(st,
                       "UPDATE switch_request SET undone_by = NULL WHERE rkey = $1 AND "
                       "undone_by = $2",
                       orig, j->rkey, -1, NULL, e);
    if (rc == PX_OK && j->outbox)
        rc = add_outbox(st, g, j->rkey, j->reason, e);
    return rc;
}

/* The usual completion: pending and not undone, a purchase or a decline. Without RETURNING
 * (SQLite materialises it): 1 when it applied, 0 when the general path must look. */
static const char sql_complete_plain[] =
    "UPDATE switch_request SET state = 'done', rc = $2, rsp = $3, auth_code = $4, "
    "updated_ms = $5, posted = CAST($6 AS BIGINT), fee = $7 WHERE rkey = $1 AND state = "
    "'pending' AND undone_by IS NULL";

/* The parameters $1-$7 that sql_complete_plain and sql_complete share. */
static void bind_completion(store_stmt *q, sw_group *g, const sw_job *j, int postable, int64_t fee)
{
    store_bind_text(q, 1, j->rkey);
    store_bind_text(q, 2, j->rc);
    if (j->rsp)
        store_bind_blob(q, 3, j->rsp, j->rsplen);
    else
        store_bind_null(q, 3);
    bind_text_or_null(q, 4, j->auth);
    store_bind_int64(q, 5, sw_group_now_ms(g));
    store_bind_int64(q, 6, postable);
    store_bind_int64(q, 7, fee);
}

static int complete_plain(store *st, sw_group *g, sw_job *j, int postable, int64_t fee, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st, sql_complete_plain, &q, e);
    if (rc != PX_OK)
        return rc;
    bind_completion(q, g, j, postable, fee);
    rc = store_step(q, e);
    if (rc >= 0)
        rc = store_changes(q) == 1 ? 1 : 0;
    store_done(q);
    return rc;
}

static int job_complete(store *st, sw_group *g, sw_job *j, px_error *e)
{
    store_stmt *q;
    int postable;
    int64_t fee;
    char undone[SW_RKEY_MAX] = "", orig[SW_RKEY_MAX] = "";
    int has_prov = 0;
    int rc;
    (void)complete_params(j, &postable, &fee);
    if (strcmp(j->ttype, "void") != 0) {
        rc = complete_plain(st, g, j, postable, fee, e);
        if (rc < 0)
            return rc;
        if (rc == 1)
            return complete_after(st, g, j, "", "", 1, e);
    }
    rc = store_prepare(st, sql_complete, &q, e);
    if (rc != PX_OK)
        return rc;
    bind_completion(q, g, j, postable, fee);
    rc = store_step(q, e);
    if (rc == STORE_ROW) {
        px_strlcpy(undone, store_col_text(q, 0) ? store_col_text(q, 0) : "", sizeof undone);
        px_strlcpy(orig, store_col_text(q, 1) ? store_col_text(q, 1) : "", sizeof orig);
        has_prov = store_col_int64(q, 2) != 0;
    }
    store_done(q);
    if (rc == STORE_DONE)
        return complete_lost(st, j, e);
    if (rc < 0)
        return rc;
    return complete_after(st, g, j, undone, orig, has_prov, e);
}

/* The batch date of (tid, batch), for a reversal of a batch other than the open one. */
static int batch_date_of(store *st, sw_job *j, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st,
                           "SELECT batch_date FROM switch_batch WHERE tid = $1 AND batch_no = $2",
                           &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, j->tid);
    store_bind_int64(q, 2, j->batch);
    rc = store_step(q, e);
    if (rc == STORE_ROW)
        px_strlcpy(j->batch_date, store_col_text(q, 0) ? store_col_text(q, 0) : "",
                   sizeof j->batch_date);
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

/* A mobile-number payment's lookup reference into j->out.ref, for the loop to tell
 * phonepay that the payment was reversed (so its payee is never credited). */
static int read_ref(store *st, sw_job *j, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st, "SELECT ref FROM switch_request WHERE rkey = $1", &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, j->orig_rkey);
    rc = store_step(q, e);
    if (rc == STORE_ROW && store_col_text(q, 0) != NULL)
        px_strlcpy(j->out.ref, store_col_text(q, 0), sizeof j->out.ref);
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

/* Undo an original found done: post its negation as the reversal's transaction, mark it
 * undone, owe the provider a reversal, for a void give its purchase back, for a
 * mobile-number debit tell phonepay (out.ref). */
static int reverse_done(store *st, sw_group *g, sw_job *j, const char *ottype, const char *oorig,
                        px_error *e)
{
    int64_t ch = 0;
    int rc = exec_text(st,
                       "UPDATE switch_request SET undone_by = $2 WHERE rkey = $1 AND undone_by "
                       "IS NULL",
                       j->orig_rkey, j->rkey, -1, &ch, e);
    if (rc != PX_OK || ch != 1)
        return rc;
    rc = post_undo(st, g, j->rkey, "reversal", j->orig_rkey, e);
    if (rc == PX_OK)
        rc = add_outbox(st, g, j->orig_rkey, j->reason, e);
    if (rc == PX_OK && strcmp(ottype, "void") == 0 && oorig[0])
        rc = exec_text(st,
                       "UPDATE switch_request SET undone_by = NULL WHERE rkey = $1 AND "
                       "undone_by = $2",
                       oorig, j->orig_rkey, -1, NULL, e);
    if (rc == PX_OK && strcmp(ottype, "phonepay") == 0)
        rc = read_ref(st, j, e);
    return rc;
}

/* A mobile-number payment approved before the ledger carried them (posted = 0): nothing to
 * undo here; the provider gets a reversal and phonepay is told (out.ref). */
static int reverse_phonepay(store *st, sw_group *g, sw_job *j, px_error *e)
{
    int64_t ch = 0;
    int rc = exec_text(st,
                       "UPDATE switch_request SET undone_by = $2 WHERE rkey = $1 AND undone_by "
                       "IS NULL",
                       j->orig_rkey, j->rkey, -1, &ch, e);
    if (rc != PX_OK || ch != 1)
        return rc;
    rc = add_outbox(st, g, j->orig_rkey, j->reason, e);
    return rc == PX_OK ? read_ref(st, j, e) : rc;
}

/* The provider message (sealed) of a request claimed before it was known (mobile-number
 * payment: phonepay decides between the claim and the send). */
static int job_attach(store *st, sw_group *g, sw_job *j, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st,
                           "UPDATE switch_request SET prov_blob = $2, prov_stan = $3, prov_time = "
                           "$4, rrn = $5, ref = $6, updated_ms = $7 WHERE rkey = $1 AND state = "
                           "'pending' AND undone_by IS NULL",
                           &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, j->rkey);
    store_bind_blob(q, 2, j->prov_blob, j->prov_bloblen);
    store_bind_text(q, 3, j->prov_stan);
    store_bind_text(q, 4, j->prov_time);
    store_bind_text(q, 5, j->rrn);
    bind_text_or_null(q, 6, j->ref);
    store_bind_int64(q, 7, sw_group_now_ms(g));
    rc = store_step(q, e);
    if (rc >= 0)
        j->out.outcome = store_changes(q) == 1 ? SW_O_NEW : SW_O_LOST;
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

static int job_reversal(store *st, sw_group *g, sw_job *j, px_error *e)
{
    int is_new, rc = PX_OK;
    if (j->batch_date[0] == 0)
        rc = batch_date_of(st, j, e);
    if (rc != PX_OK)
        return rc;
    sw_rkey(j->rkey, j->tid, j->mid, j->stan, j->batch, j->batch_date, 'R');
    sw_rkey(j->orig_rkey, j->tid, j->mid, j->stan, j->batch, j->batch_date, 'F');
    rc = insert_or_outcome(st, g, j, "done", &is_new, e);
    if (rc != PX_OK || !is_new)
        return rc;
    for (int attempt = 0; attempt < 2; attempt++) {
        store_stmt *q;
        char state[12] = "", orc[3] = "", ottype[12] = "", oorig[SW_RKEY_MAX] = "";
        int undone = 0, posted = 0;
        rc = store_prepare(st,
                           "SELECT state, rc, ttype, undone_by, posted, orig_rkey FROM "
                           "switch_request WHERE rkey = $1\n-- @postgres\nFOR UPDATE",
                           &q, e);
        if (rc != PX_OK)
            return rc;
        store_bind_text(q, 1, j->orig_rkey);
        rc = store_step(q, e);
        if (rc == STORE_ROW) {
            px_strlcpy(state, store_col_text(q, 0) ? store_col_text(q, 0) : "", sizeof state);
            px_strlcpy(orc, store_col_text(q, 1) ? store_col_text(q, 1) : "", sizeof orc);
            px_strlcpy(ottype, store_col_text(q, 2) ? store_col_text(q, 2) : "", sizeof ottype);
            undone = !store_col_is_null(q, 3);
            posted = store_col_int64(q, 4) != 0;
            px_strlcpy(oorig, store_col_text(q, 5) ? store_col_text(q, 5) : "", sizeof oorig);
        }
        store_done(q);
        if (rc < 0)
            return rc;
        if (rc == STORE_DONE) {
            /* Never seen: a tombstone makes sure it is refused if it arrives late. */
            sw_job tomb = *j;
            tomb.prov_blob = NULL;
            tomb.rsp = NULL;
            tomb.has_hash = 0;
            tomb.kind_c = 'F';
            px_strlcpy(tomb.rkey, j->orig_rkey, sizeof tomb.rkey);
            px_strlcpy(tomb.ttype, "tombstone", sizeof tomb.ttype);
            tomb.rc[0] = 0;
            tomb.orig_rkey[0] = 0;
            rc = insert_request(st, g, &tomb, "void", j->rkey, e);
            if (rc < 0)
                return rc;
            if (rc == 1)
                return PX_OK;
            continue; /* it was claimed just now: look again */
        }
        if (strcmp(state, "pending") == 0)
            return exec_text(st,
                             "UPDATE switch_request SET undone_by = $2 WHERE rkey = $1 AND "
                             "undone_by IS NULL",
                             j->orig_rkey, j->rkey, -1, NULL, e);
        if (strcmp(state, "done") == 0 && strcmp(orc, "00") == 0 && !undone && posted)
            return reverse_done(st, g, j, ottype, oorig, e);
        if (strcmp(state, "done") == 0 && strcmp(orc, "00") == 0 && !undone &&
            strcmp(ottype, "phonepay") == 0)
            return reverse_phonepay(st, g, j, e);
        return PX_OK; /* declined, failed, already undone or a balance inquiry: nothing */
    }
    return PX_OK;
}

static int totals(store *st, const sw_job *j, const char *ttype, int64_t *count, int64_t *amount,
                  px_error *e)
{
    store_stmt *q;
    char lo[SW_RKEY_MAX], hi[SW_RKEY_MAX];
    int rc = store_prepare(st,
                           "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM switch_request WHERE "
                           "rkey >= $1 AND rkey < $2 AND ttype = $3 AND state = 'done' AND rc = "
                           "'00' AND (undone_by IS NULL OR undone_by NOT LIKE '%|R|%')",
                           &q, e);
    if (rc != PX_OK)
        return rc;
    sw_rkey_range(lo, hi, j->tid, j->batch, j->batch_date, 'F');
    store_bind_text(q, 1, lo);
    store_bind_text(q, 2, hi);
    store_bind_text(q, 3, ttype);
    rc = store_step(q, e);
    if (rc == STORE_ROW) {
        *count = store_col_int64(q, 0);
        *amount = store_col_int64(q, 1);
    }
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

static int job_settle(store *st, sw_group *g, sw_job *j, px_error *e)
{
    int is_new;
    sw_totals *sw = &j->out.sw_dom;
    store_stmt *q;
    int rc = insert_or_outcome(st, g, j, "pending", &is_new, e);
    if (rc != PX_OK || !is_new)
        return rc;
    /* debits: purchases and mobile-number payments; credits: voids (switch-protocol.md) */
    rc = totals(st, j, "purchase", &sw->debit_count, &sw->debit_amount, e);
    if (rc == PX_OK) {
        int64_t n = 0, amount = 0;
        rc = totals(st, j, "phonepay", &n, &amount, e);
        sw->debit_count += n;
        sw->debit_amount += amount;
    }
    if (rc == PX_OK)
        rc = totals(st, j, "void", &sw->credit_count, &sw->credit_amount, e);
    if (rc != PX_OK)
        return rc;
    j->out.settle_result = (sw->debit_count == j->term_dom.debit_count &&
                            sw->debit_amount == j->term_dom.debit_amount &&
                            sw->credit_count == j->term_dom.credit_count &&
                            sw->credit_amount == j->term_dom.credit_amount &&
                            j->term_for.debit_count == 0 && j->term_for.debit_amount == 0 &&
                            j->term_for.credit_count == 0 && j->term_for.credit_amount == 0)
                               ? 1
                               : 2;
    rc = store_prepare(st,
                       "UPDATE switch_batch SET state = 'settled', closed_ms = $3, result = $4, "
                       "term_debit_count = $5, term_debit_amount = $6, term_credit_count = $7, "
                       "term_credit_amount = $8, sw_debit_count = $9, sw_debit_amount = $10, "
                       "sw_credit_count = $11, sw_credit_amount = $12 WHERE tid = $1 AND "
                       "batch_no = $2",
                       &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, j->tid);
    store_bind_int64(q, 2, j->batch);
    store_bind_int64(q, 3, sw_group_now_ms(g));
    store_bind_int64(q, 4, j->out.settle_result);
    store_bind_int64(q, 5, j->term_dom.debit_count);
    store_bind_int64(q, 6, j->term_dom.debit_amount);
    store_bind_int64(q, 7, j->term_dom.credit_count);
    store_bind_int64(q, 8, j->term_dom.credit_amount);
    store_bind_int64(q, 9, sw->debit_count);
    store_bind_int64(q, 10, sw->debit_amount);
    store_bind_int64(q, 11, sw->credit_count);
    store_bind_int64(q, 12, sw->credit_amount);
    rc = store_step(q, e);
    store_done(q);
    if (rc < 0)
        return rc;
    rc = store_prepare(st,
                       "UPDATE switch_terminal SET batch_open = 0, updated_ms = $2 WHERE tid = $1 "
                       "AND batch_no = $3",
                       &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, j->tid);
    store_bind_int64(q, 2, sw_group_now_ms(g));
    store_bind_int64(q, 3, j->batch);
    rc = store_step(q, e);
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

static int job_signon(store *st, sw_group *g, sw_job *j, px_error *e)
{
    store_stmt *q;
    int64_t old_batch = 0, kv = 0, nb;
    int64_t now = sw_group_now_ms(g);
    int same_tmk = 0;
    int rc = store_prepare(st,
                           "SELECT batch_no, key_version, tmk_block FROM switch_terminal WHERE "
                           "tid = $1\n-- @postgres\nFOR UPDATE",
                           &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, j->tid);
    rc = store_step(q, e);
    if (rc == STORE_ROW) {
        old_batch = store_col_int64(q, 0);
        kv = store_col_int64(q, 1);
        same_tmk = store_col_text(q, 2) != NULL && strcmp(store_col_text(q, 2), j->tmk) == 0;
    }
    store_done(q);
    if (rc < 0)
        return rc;
    if (rc == STORE_DONE)
        return px_error_set(e, PX_ENOTFOUND, "terminal %s vanished", j->tid);
    if (!same_tmk) /* re-keyed (possum terminal set-tmk) while its keys were being made */
        return px_error_set(e, PX_ECONFLICT, "terminal %s: TMK replaced during the sign-on",
                            j->tid);
    nb = old_batch % 999999 + 1;
    rc = store_prepare(st,
                       "UPDATE switch_batch SET state = 'closed', closed_ms = $3 WHERE tid = $1 "
                       "AND batch_no = $2 AND state = 'open'",
                       &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, j->tid);
    store_bind_int64(q, 2, old_batch);
    store_bind_int64(q, 3, now);
    rc = store_step(q, e);
    store_done(q);
    if (rc < 0)
        return rc;
    rc = store_prepare(st,
                       "INSERT INTO switch_batch (tid, batch_no, mid, batch_date, state, "
                       "opened_ms) VALUES ($1, $2, $3, $4, 'open', $5) ON CONFLICT (tid, "
                       "batch_no) DO UPDATE SET mid = excluded.mid, batch_date = "
                       "excluded.batch_date, state = 'open', opened_ms = excluded.opened_ms, "
                       "closed_ms = 0, result = 0, term_debit_count = 0, term_debit_amount = 0, "
                       "term_credit_count = 0, term_credit_amount = 0, sw_debit_count = 0, "
                       "sw_debit_amount = 0, sw_credit_count = 0, sw_credit_amount = 0",
                       &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, j->tid);
    store_bind_int64(q, 2, nb);
    store_bind_text(q, 3, j->mid);
    store_bind_text(q, 4, j->batch_date);
    store_bind_int64(q, 5, now);
    rc = store_step(q, e);
    store_done(q);
    if (rc < 0)
        return rc;
    rc = store_prepare(st,
                       "UPDATE switch_terminal SET signed_on = 1, batch_no = $2, batch_date = "
                       "$3, batch_open = 1, key_version = $4, pik_block = $5, mak_block = $6, "
                       "tdk_block = $7, signon_ms = $8, updated_ms = $8 WHERE tid = $1",
                       &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, j->tid);
    store_bind_int64(q, 2, nb);
    store_bind_text(q, 3, j->batch_date);
    store_bind_int64(q, 4, kv + 1);
    store_bind_text(q, 5, j->pik);
    store_bind_text(q, 6, j->mak);
    store_bind_text(q, 7, j->tdk);
    store_bind_int64(q, 8, now);
    rc = store_step(q, e);
    store_done(q);
    if (rc < 0)
        return rc;
    j->out.batch = nb;
    j->out.key_version = kv + 1;
    px_strlcpy(j->out.batch_date, j->batch_date, sizeof j->out.batch_date);
    return PX_OK;
}

static int job_signoff(store *st, sw_group *g, sw_job *j, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st,
                           "UPDATE switch_terminal SET signed_on = 0, pik_block = NULL, "
                           "mak_block = NULL, tdk_block = NULL, key_version = key_version + 1, "
                           "updated_ms = $2 WHERE tid = $1",
                           &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, j->tid);
    store_bind_int64(q, 2, sw_group_now_ms(g));
    rc = store_step(q, e);
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

static int job_outbox(store *st, sw_group *g, sw_job *j, px_error *e)
{
    store_stmt *q;
    int rc;
    if (j->kind == SW_J_OUTBOX_DONE)
        return exec_text(st, "DELETE FROM switch_outbox WHERE rkey = $1", j->rkey, NULL, -1, NULL,
                         e);
    rc = store_prepare(st,
                       "UPDATE switch_outbox SET attempts = attempts + 1, next_ms = $2 WHERE "
                       "rkey = $1",
                       &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, j->rkey);
    store_bind_int64(q, 2, j->cutoff_ms);
    rc = store_step(q, e);
    store_done(q);
    (void)g;
    return rc < 0 ? rc : PX_OK;
}

/* Pending requests of a node that died (node = us at start-up), or older than the cutoff:
 * never answered; what the provider may have approved is reversed through the outbox. */
static int job_recover(store *st, sw_group *g, sw_job *j, px_error *e)
{
    static const char sql_outbox[] =
        "INSERT INTO switch_outbox (rkey, reason, attempts, next_ms, created_ms) SELECT rkey, "
        "'98', 0, $1, $1 FROM switch_request WHERE state = 'pending' AND (node = $2 OR "
        "updated_ms < $3) AND prov_blob IS NOT NULL AND ttype <> 'balance' ON CONFLICT DO "
        "NOTHING";
    static const char sql_voids[] =
        "UPDATE switch_request SET undone_by = NULL WHERE undone_by IN (SELECT rkey FROM "
        "switch_request WHERE state = 'pending' AND ttype = 'void' AND (node = $2 OR "
        "updated_ms < $3) AND CAST($1 AS BIGINT) > 0)";
    static const char sql_fail[] =
        "UPDATE switch_request SET state = 'failed', updated_ms = $1 WHERE state = 'pending' "
        "AND (node = $2 OR updated_ms < $3)";
    static const char *const sql[] = {sql_outbox, sql_voids, sql_fail};
    for (size_t i = 0; i < 3; i++) {
        store_stmt *q;
        int rc = store_prepare(st, sql[i], &q, e);
        if (rc != PX_OK)
            return rc;
        store_bind_int64(q, 1, sw_group_now_ms(g));
        store_bind_text(q, 2, j->node);
        store_bind_int64(q, 3, j->cutoff_ms);
        rc = store_step(q, e);
        if (rc >= 0 && i == 2)
            j->out.recovered = store_changes(q);
        store_done(q);
        if (rc < 0)
            return rc;
    }
    return PX_OK;
}

static int job_rrn_block(store *st, sw_group *g, sw_job *j, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st,
                           "UPDATE switch_counter SET next = next + $1 WHERE name = 'rrn' "
                           "RETURNING next",
                           &q, e);
    (void)g;
    if (rc != PX_OK)
        return rc;
    store_bind_int64(q, 1, j->count);
    rc = store_step(q, e);
    if (rc == STORE_ROW)
        j->out.rrn_next = store_col_int64(q, 0) - j->count;
    store_done(q);
    if (rc == STORE_DONE)
        return px_error_set(e, PX_ESTATE, "switch_counter rrn missing");
    return rc < 0 ? rc : PX_OK;
}

/* ---- PostgreSQL batches ---- */

static const char sql_pg_claims[] =
    "INSERT INTO switch_request (rkey, tid, mid, stan, batch_no, batch_date, kind, ttype, state, "
    "req_hash, amount, rrn, pan_masked, orig_rkey, prov_stan, prov_time, prov_blob, owner, ref, "
    "node, created_ms, updated_ms) SELECT u.rkey, u.tid, u.mid, u.stan, u.batch_no, u.bdate, "
    "u.kind, u.ttype, 'pending', decode(u.h, 'hex'), u.amount, u.rrn, u.pan, u.orig, u.pstan, "
    "u.ptime, decode(u.blob, 'hex'), u.owner, u.ref, $19, CAST($20 AS BIGINT), CAST($20 AS "
    "BIGINT) FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], "
    "$6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[], $11::text[], $12::text[], "
    "$13::text[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[]) AS u(rkey, "
    "tid, mid, stan, batch_no, bdate, kind, ttype, h, amount, rrn, pan, orig, pstan, ptime, "
    "blob, owner, ref) ON CONFLICT DO NOTHING RETURNING rkey";

static const char sql_pg_completes[] =
    "UPDATE switch_request AS r SET state = 'done', rc = u.rc, rsp = decode(u.rsp, 'hex'), "
    "auth_code = u.auth, updated_ms = CAST($8 AS BIGINT), "
    "posted = CASE WHEN r.undone_by IS NULL AND u.postable = 1 THEN 1 ELSE 0 END, fee = u.fee "
    "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], "
    "$7::bigint[]) AS u(rkey, rc, rsp, auth, rrn, postable, fee) WHERE r.rkey = u.rkey AND "
    "r.state = 'pending' RETURNING r.rkey, r.undone_by, r.orig_rkey, r.prov_blob IS NOT NULL";

static const char sql_pg_entries[] =
    "INSERT INTO ledger_entry (txn, leg, account, amount, ttype, created_ms) SELECT u.txn, "
    "u.leg, u.account, u.amount, u.ttype, CAST($6 AS BIGINT) FROM unnest($1::text[], "
    "$2::bigint[], $3::text[], $4::bigint[], $5::text[]) AS u(txn, leg, account, amount, ttype)";

static sw_job *find_job(sw_job **jobs, size_t n, int kind, const char *rkey)
{
    for (size_t i = 0; i < n; i++)
        if (jobs[i]->kind == kind && !jobs[i]->batched && strcmp(jobs[i]->rkey, rkey) == 0)
            return jobs[i];
    return NULL;
}

/* New claims of purchases (not voids: they lock their original) in one INSERT. Those that
 * found a row are left to run alone (their outcome needs the row). */
static int pg_claims(store *st, sw_group *g, sw_job **jobs, size_t n, px_error *e)
{
    pg_array a[18];
    store_stmt *q;
    size_t count = 0;
    int rc;
    for (size_t i = 0; i < n; i++)
        count += jobs[i]->kind == SW_J_CLAIM && strcmp(jobs[i]->ttype, "void") != 0;
    if (count < 2)
        return PX_OK;
    for (int k = 0; k < 18; k++)
        arr_init(&a[k]);
    for (size_t i = 0; i < n; i++) {
        sw_job *j = jobs[i];
        char kind[2] = {j->kind_c, 0};
        if (j->kind != SW_J_CLAIM || strcmp(j->ttype, "void") == 0)
            continue;
        arr_text(&a[0], j->rkey);
        arr_text(&a[1], j->tid);
        arr_text(&a[2], j->mid);
        arr_text(&a[3], j->stan);
        arr_int(&a[4], j->batch);
        arr_text(&a[5], j->batch_date);
        arr_text(&a[6], kind);
        arr_text(&a[7], j->ttype);
        arr_hex(&a[8], j->has_hash ? j->hash : NULL, sizeof j->hash);
        arr_int(&a[9], j->amount);
        arr_text(&a[10], j->rrn);
        arr_text(&a[11], j->pan_masked);
        arr_text(&a[12], j->orig_rkey);
        arr_text(&a[13], j->prov_stan);
        arr_text(&a[14], j->prov_time);
        arr_hex(&a[15], j->prov_blob, j->prov_bloblen);
        arr_text(&a[16], j->owner);
        arr_text(&a[17], j->ref);
    }
    rc = store_prepare(st, sql_pg_claims, &q, e);
    if (rc == PX_OK) {
        for (int k = 0; k < 18; k++)
            store_bind_text(q, k + 1, arr_end(&a[k]));
        store_bind_text(q, 19, sw_group_node(g));
        store_bind_int64(q, 20, sw_group_now_ms(g));
        while ((rc = store_step(q, e)) == STORE_ROW) {
            sw_job *j = find_job(jobs, n, SW_J_CLAIM, store_col_text(q, 0));
            if (j != NULL) {
                j->batched = 1;
                j->out.outcome = SW_O_NEW;
            }
        }
        store_done(q);
    }
    for (int k = 0; k < 18; k++)
        px_buf_free(&a[k].b);
    return rc < 0 ? rc : PX_OK;
}

typedef struct done_row {
    sw_job *j;
    char undone[SW_RKEY_MAX], orig[SW_RKEY_MAX];
    int has_prov;
} done_row;

/* The UPDATE of every completion; the rows it changed, read whole before anything else runs
 * on the connection. */
static int pg_complete_rows(store *st, sw_group *g, sw_job **jobs, size_t n, size_t count,
                            done_row *rows, size_t *nrows, px_error *e)
{
    pg_array a[7];
    store_stmt *q;
    int rc;
    for (int k = 0; k < 7; k++)
        arr_init(&a[k]);
    for (size_t i = 0; i < n; i++) {
        sw_job *j = jobs[i];
        int postable;
        int64_t fee;
        if (j->kind != SW_J_COMPLETE)
            continue;
        (void)complete_params(j, &postable, &fee);
        arr_text(&a[0], j->rkey);
        arr_text(&a[1], j->rc);
        arr_hex(&a[2], j->rsp, j->rsplen);
        arr_text(&a[3], j->auth);
        arr_text(&a[4], j->rrn);
        arr_int(&a[5], postable);
        arr_int(&a[6], fee);
    }
    *nrows = 0;
    rc = store_prepare(st, sql_pg_completes, &q, e);
    if (rc == PX_OK) {
        for (int k = 0; k < 7; k++)
            store_bind_text(q, k + 1, arr_end(&a[k]));
        store_bind_int64(q, 8, sw_group_now_ms(g));
        while ((rc = store_step(q, e)) == STORE_ROW && *nrows < count) {
            done_row *d = &rows[*nrows];
            d->j = find_job(jobs, n, SW_J_COMPLETE, store_col_text(q, 0));
            if (d->j == NULL)
                continue;
            d->j->batched = 1;
            px_strlcpy(d->undone, store_col_text(q, 1) ? store_col_text(q, 1) : "", SW_RKEY_MAX);
            px_strlcpy(d->orig, store_col_text(q, 2) ? store_col_text(q, 2) : "", SW_RKEY_MAX);
            d->has_prov = store_col_int64(q, 3) != 0;
            (*nrows)++;
        }
        store_done(q);
    }
    for (int k = 0; k < 7; k++)
        px_buf_free(&a[k].b);
    return rc < 0 ? rc : PX_OK;
}

static int pg_flush_entries(store *st, sw_group *g, sw_entry_buf *eb, px_error *e)
{
    store_stmt *q;
    int rc;
    if (eb->n == 0)
        return PX_OK;
    rc = store_prepare(st, sql_pg_entries, &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, arr_end(&eb->txn));
    store_bind_text(q, 2, arr_end(&eb->leg));
    store_bind_text(q, 3, arr_end(&eb->account));
    store_bind_text(q, 4, arr_end(&eb->amount));
    store_bind_text(q, 5, arr_end(&eb->ttype));
    store_bind_int64(q, 6, sw_group_now_ms(g));
    rc = store_step(q, e);
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

/* Completions in one UPDATE; their postings in one INSERT. Those not pending any more run
 * alone (is it our own earlier commit?). */
static int pg_completes(store *st, sw_group *g, sw_job **jobs, size_t n, px_error *e)
{
    sw_entry_buf eb;
    done_row *rows;
    size_t count = 0, nrows = 0;
    int rc;
    for (size_t i = 0; i < n; i++)
        count += jobs[i]->kind == SW_J_COMPLETE;
    if (count < 2)
        return PX_OK;
    rows = calloc(count, sizeof *rows);
    if (rows == NULL)
        return px_error_set(e, PX_ENOMEM, "out of memory");
    memset(&eb, 0, sizeof eb);
    arr_init(&eb.txn);
    arr_init(&eb.leg);
    arr_init(&eb.account);
    arr_init(&eb.amount);
    arr_init(&eb.ttype);
    rc = pg_complete_rows(st, g, jobs, n, count, rows, &nrows, e);
    sw_group_set_entries(g, &eb);
    for (size_t i = 0; rc == PX_OK && i < nrows; i++)
        rc = complete_after(st, g, rows[i].j, rows[i].undone, rows[i].orig, rows[i].has_prov, e);
    sw_group_set_entries(g, NULL);
    if (rc == PX_OK)
        rc = pg_flush_entries(st, g, &eb, e);
    free(rows);
    px_buf_free(&eb.txn.b);
    px_buf_free(&eb.leg.b);
    px_buf_free(&eb.account.b);
    px_buf_free(&eb.amount.b);
    px_buf_free(&eb.ttype.b);
    return rc;
}

int sw_jobs_run_batched(store *st, sw_group *g, sw_job **jobs, size_t n, px_error *e)
{
    int rc;
    if (store_get_backend(st) != STORE_POSTGRES || n < 2)
        return PX_OK;
    rc = pg_claims(st, g, jobs, n, e);
    if (rc == PX_OK)
        rc = pg_completes(st, g, jobs, n, e);
    return rc;
}

int sw_job_run(store *st, sw_group *g, sw_job *j, px_error *e)
{
    switch (j->kind) {
    case SW_J_SIGNON: return job_signon(st, g, j, e);
    case SW_J_SIGNOFF: return job_signoff(st, g, j, e);
    case SW_J_FINAL:
    case SW_J_UPLOAD: return job_final(st, g, j, e);
    case SW_J_CLAIM: return job_claim(st, g, j, e);
    case SW_J_COMPLETE: return job_complete(st, g, j, e);
    case SW_J_REVERSAL: return job_reversal(st, g, j, e);
    case SW_J_SETTLE: return job_settle(st, g, j, e);
    case SW_J_OUTBOX_DONE:
    case SW_J_OUTBOX_TOUCH: return job_outbox(st, g, j, e);
    case SW_J_RECOVER: return job_recover(st, g, j, e);
    case SW_J_RRN_BLOCK: return job_rrn_block(st, g, j, e);
    case SW_J_ATTACH: return job_attach(st, g, j, e);
    default: return px_error_set(e, PX_EINTERNAL, "unknown job kind %d", j->kind);
    }
}
