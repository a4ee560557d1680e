/*
 * recon.c: reconciliation of the platform's journal with the provider's clearing file, then
 * the payee credits (seed 002 [0055], claim 5: "after the payment interface unit and the
 * provider have reconciled, the provider credits the payee's bound card and the
 * communication unit sends the payee a confirmation with the payer's mobile number").
 * Matching is by (RRN, type): debits, credits and their reversals against phonepay_payment;
 * card purchases and voids (and their reversals) against the switch's switch_request.
 */
#include "host/phonepay/phonepay_recon.h"
#include "host/phonepay/phonepay_int.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <stdlib.h>
#include <string.h>

typedef struct recon_diff {
    char rrn[13], type[9];
    const char *kind; /* missing_platform, missing_provider, amount_mismatch */
    int64_t platform_amount, provider_amount; /* -1 = none */
} recon_diff;

typedef struct recon_ctx {
    const char *date;
    phonepay_clearing *file;
    recon_diff *diffs;
    size_t ndiffs, cap;
    char (*credit)[PHONEPAY_REF_LEN + 1]; /* references of matched debits to credit */
    size_t ncredit;
    FILE *out;
    phonepay_recon_report *rep;
    int64_t now_ms;
} recon_ctx;

static int add_diff(recon_ctx *c, const char *rrn, const char *type, const char *kind,
                    int64_t platform, int64_t provider)
{
    recon_diff *d;
    if (c->ndiffs == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 64;
        recon_diff *n = cap <= 2 * (size_t)PX_PHONEPAY_CLEARING_LINES_MAX
                            ? realloc(c->diffs, cap * sizeof *n)
                            : NULL;
        if (n == NULL)
            return PX_ENOMEM;
        c->diffs = n;
        c->cap = cap;
    }
    d = &c->diffs[c->ndiffs++];
    px_strlcpy(d->rrn, rrn, sizeof d->rrn);
    px_strlcpy(d->type, type, sizeof d->type);
    d->kind = kind;
    d->platform_amount = platform;
    d->provider_amount = provider;
    if (strcmp(kind, "missing_platform") == 0)
        c->rep->missing_platform++;
    else if (strcmp(kind, "missing_provider") == 0)
        c->rep->missing_provider++;
    else
        c->rep->mismatched++;
    return PX_OK;
}

/* 1 if the file has a line (rrn, type). */
static int file_has(const phonepay_clearing *f, const char *rrn, const char *type)
{
    phonepay_clearing_line key;
    memset(&key, 0, sizeof key);
    px_strlcpy(key.rrn, rrn, sizeof key.rrn);
    px_strlcpy(key.type, type, sizeof key.type);
    for (size_t lo = 0, hi = f->n; lo < hi;) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(f->lines[mid].rrn, key.rrn);
        cmp = cmp != 0 ? cmp : strcmp(f->lines[mid].type, key.type);
        if (cmp == 0)
            return 1;
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* The phonepay side of a debit, credit or reversal line: *amount is the journal's amount
 * when it has that message approved (-1 if not); *reference names a debit still to credit,
 * "credited" when it was credited before. *found: a payment has this RRN at all. */
static int find_payment(phonepay *pp, const phonepay_clearing_line *ln, int64_t *amount,
                        char reference[PHONEPAY_REF_LEN + 1], int *found, px_error *e)
{
    store_stmt *s;
    int rc = store_prepare(pp->st,
                           "SELECT amount_minor, state, reference FROM phonepay_payment "
                           "WHERE rrn = $1",
                           &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, ln->rrn);
    rc = store_step(s, e);
    *found = rc == STORE_ROW;
    if (rc == STORE_ROW) {
        const char *st = store_col_text(s, 1);
        int debit = strcmp(ln->type, "debit") == 0;
        int ok = debit ? strcmp(st, "pending") != 0 && strcmp(st, "declined") != 0
                 : strcmp(ln->type, "credit") == 0
                     ? strcmp(st, "credited") == 0 || strcmp(st, "crediting") == 0
                     : strcmp(st, "reversed") == 0;
        if (ok)
            *amount = store_col_int64(s, 0);
        if (debit && (strcmp(st, "approved") == 0 || strcmp(st, "crediting") == 0))
            px_strlcpy(reference, store_col_text(s, 2), PHONEPAY_REF_LEN + 1);
        else if (debit && strcmp(st, "credited") == 0)
            px_strlcpy(reference, "credited", PHONEPAY_REF_LEN + 1);
    }
    store_done(s);
    return rc < 0 ? rc : PX_OK;
}

/* The switch side of a purchase or void line (approved, done), or of the reversal of one
 * (an approved request that was undone). */
static int find_request(phonepay *pp, const phonepay_clearing_line *ln, int64_t *amount,
                        px_error *e)
{
    int rev = strcmp(ln->type, "reversal") == 0;
    store_stmt *s;
    int rc = store_prepare(pp->st,
                           rev ? "SELECT amount FROM switch_request WHERE rrn = $1 AND "
                                 "kind = 'F' AND rc = '00' AND undone_by IS NOT NULL"
                               : "SELECT amount FROM switch_request WHERE rrn = $1 AND "
                                 "ttype = $2 AND kind = 'F' AND rc = '00' AND "
                                 "state = 'done'",
                           &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, ln->rrn);
    if (!rev)
        store_bind_text(s, 2, ln->type);
    rc = store_step(s, e);
    if (rc == STORE_ROW)
        *amount = store_col_int64(s, 0);
    store_done(s);
    return rc < 0 ? rc : PX_OK;
}

/* Match every line of the file; collect differences and the debits to credit. */
static int match_lines(phonepay *pp, recon_ctx *c, px_error *e)
{
    for (size_t i = 0; i < c->file->n; i++) {
        const phonepay_clearing_line *ln = &c->file->lines[i];
        char ref[PHONEPAY_REF_LEN + 1] = "";
        int64_t amount = -1;
        int found = 0, rc = PX_OK;
        if (strcmp(ln->type, "purchase") != 0 && strcmp(ln->type, "void") != 0)
            rc = find_payment(pp, ln, &amount, ref, &found, e);
        if (rc == PX_OK && !found &&
            (strcmp(ln->type, "purchase") == 0 || strcmp(ln->type, "void") == 0 ||
             strcmp(ln->type, "reversal") == 0))
            rc = find_request(pp, ln, &amount, e);
        if (rc != PX_OK)
            return rc;
        if (amount < 0)
            rc = add_diff(c, ln->rrn, ln->type, "missing_platform", -1, ln->amount_minor);
        else if (amount != ln->amount_minor)
            rc = add_diff(c, ln->rrn, ln->type, "amount_mismatch", amount, ln->amount_minor);
        else
            c->rep->matched++;
        if (rc != PX_OK)
            return px_error_set(e, rc, "recon: out of memory");
        if (amount == ln->amount_minor && strcmp(ref, "credited") == 0)
            c->rep->credited_before++;
        else if (amount == ln->amount_minor && ref[0] && !file_has(c->file, ln->rrn, "reversal"))
            px_strlcpy(c->credit[c->ncredit++], ref, PHONEPAY_REF_LEN + 1);
    }
    return PX_OK;
}

/* Journal entries of the day the file does not have: phonepay debits (and the reversals
 * of reversed ones), and the switch's approved purchases and voids of that UTC day. */
static int match_journal(phonepay *pp, recon_ctx *c, px_error *e)
{
    static const char *const sql[] = {
        "SELECT rrn, 'debit', amount_minor FROM phonepay_payment WHERE business_date = $1 AND "
        "state IN ('approved', 'crediting', 'credited', 'reversed') AND rrn IS NOT NULL",
        "SELECT rrn, 'reversal', amount_minor FROM phonepay_payment WHERE business_date = $1 "
        "AND state = 'reversed' AND rrn IS NOT NULL",
        "SELECT rrn, ttype, amount FROM switch_request WHERE kind = 'F' AND rc = '00' AND "
        "state = 'done' AND ttype IN ('purchase', 'void') AND rrn IS NOT NULL AND "
        "created_ms >= $1 AND created_ms < $2"};
    int64_t day;
    if (px_time_parse_date(c->date, &day) != PX_OK)
        return px_error_set(e, PX_EINVAL, "date: expected YYYY-MM-DD");
    for (size_t q = 0; q < sizeof sql / sizeof sql[0]; q++) {
        store_stmt *s;
        int rc = store_prepare(pp->st, sql[q], &s, e);
        if (rc != PX_OK)
            return rc;
        if (q < 2)
            store_bind_text(s, 1, c->date);
        else {
            store_bind_int64(s, 1, day);
            store_bind_int64(s, 2, day + 86400000);
        }
        while ((rc = store_step(s, e)) == STORE_ROW) {
            if (!file_has(c->file, store_col_text(s, 0), store_col_text(s, 1)) &&
                add_diff(c, store_col_text(s, 0), store_col_text(s, 1), "missing_provider",
                         store_col_int64(s, 2), -1) != PX_OK) {
                rc = px_error_set(e, PX_ENOMEM, "recon: out of memory");
                break;
            }
        }
        store_done(s);
        if (rc < 0)
            return rc;
    }
    return PX_OK;
}

/* Write what the run found, in one transaction: the day's figures (runs counted), each
 * difference once, and the reconciliation date on the matched debits. */
static int record_txn(phonepay *pp, void *ud, px_error *e)
{
    recon_ctx *c = ud;
    const phonepay_recon_report *r = c->rep;
    store_stmt *s;
    int rc =
        store_prepare(pp->st,
                      "INSERT INTO phonepay_recon (business_date, file_sha256, lines, matched, "
                      "missing_platform, missing_provider, mismatched, credited, runs, "
                      "first_run_ms, last_run_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 1, "
                      "$8, $8) ON CONFLICT (business_date) DO UPDATE SET file_sha256 = "
                      "excluded.file_sha256, lines = excluded.lines, matched = "
                      "excluded.matched, missing_platform = excluded.missing_platform, "
                      "missing_provider = excluded.missing_provider, mismatched = "
                      "excluded.mismatched, runs = phonepay_recon.runs + 1, last_run_ms = "
                      "excluded.last_run_ms RETURNING runs",
                      &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, c->date);
    store_bind_text(s, 2, c->file->sha256);
    store_bind_int64(s, 3, (int64_t)c->file->n);
    store_bind_int64(s, 4, (int64_t)r->matched);
    store_bind_int64(s, 5, (int64_t)r->missing_platform);
    store_bind_int64(s, 6, (int64_t)r->missing_provider);
    store_bind_int64(s, 7, (int64_t)r->mismatched);
    store_bind_int64(s, 8, c->now_ms);
    rc = store_step(s, e);
    if (rc == STORE_ROW)
        c->rep->runs = store_col_int64(s, 0);
    store_done(s);
    for (size_t i = 0; rc >= 0 && i < c->ndiffs; i++) {
        const recon_diff *d = &c->diffs[i];
        if ((rc = store_prepare(pp->st,
                                "INSERT INTO phonepay_recon_item (business_date, rrn, ttype, kind, "
                                "platform_amount, provider_amount, found_ms) VALUES ($1, $2, $3, "
                                "$4, $5, $6, $7) ON CONFLICT DO NOTHING",
                                &s, e)) != PX_OK)
            return rc;
        store_bind_text(s, 1, c->date);
        store_bind_text(s, 2, d->rrn);
        store_bind_text(s, 3, d->type);
        store_bind_text(s, 4, d->kind);
        if (d->platform_amount < 0)
            store_bind_null(s, 5);
        else
            store_bind_int64(s, 5, d->platform_amount);
        if (d->provider_amount < 0)
            store_bind_null(s, 6);
        else
            store_bind_int64(s, 6, d->provider_amount);
        store_bind_int64(s, 7, c->now_ms);
        rc = store_step(s, e);
        store_done(s);
    }
    return rc < 0 ? rc : PX_OK;
}

static void print_diffs(const recon_ctx *c)
{
    for (size_t i = 0; c->out != NULL && i < c->ndiffs; i++) {
        const recon_diff *d = &c->diffs[i];
        char pa[32] = "-", pr[32] = "-";
        if (d->platform_amount >= 0)
            phonepay_amount_format(d->platform_amount, pa, sizeof pa);
        if (d->provider_amount >= 0)
            phonepay_amount_format(d->provider_amount, pr, sizeof pr);
        fprintf(c->out, "%-16s rrn %s %-8s platform %s provider %s\n", d->kind, d->rrn, d->type, pa,
                pr);
    }
}

int phonepay_recon_run(phonepay *pp, const char *date, const char *path, FILE *out,
                       phonepay_recon_report *rep, px_error *e)
{
    phonepay_clearing file;
    recon_ctx c;
    char def[PX_PATH_MAX + 64], ymd[9];
    int64_t day;
    int rc;
    memset(rep, 0, sizeof *rep);
    if (date == NULL || strlen(date) != 10 || px_time_parse_date(date, &day) != PX_OK)
        return px_error_set(e, PX_EINVAL, "date: expected YYYY-MM-DD");
    if (path == NULL) {
        px_time_format_utc(day, "%Y%m%d", ymd, sizeof ymd);
        snprintf(def, sizeof def, "%s/clearing-%s.csv", pp->cfg.clearing_dir, ymd);
        path = def;
    }
    if ((rc = phonepay_clearing_load(path, date, &file, e)) != PX_OK)
        return rc;
    memset(&c, 0, sizeof c);
    c.date = date;
    c.file = &file;
    c.out = out;
    c.rep = rep;
    c.now_ms = px_now_ms();
    rep->lines = file.n;
    c.credit = calloc(file.n > 0 ? file.n : 1, sizeof *c.credit);
    rc = c.credit == NULL ? px_error_set(e, PX_ENOMEM, "recon: out of memory") : PX_OK;
    if (rc == PX_OK)
        rc = match_lines(pp, &c, e);
    if (rc == PX_OK)
        rc = match_journal(pp, &c, e);
    if (rc == PX_OK)
        rc = phonepay_txn(pp, record_txn, &c, e);
    if (rc == PX_OK) {
        print_diffs(&c);
        rc = phonepay_credit_all(pp, (const char(*)[PHONEPAY_REF_LEN + 1]) c.credit, c.ncredit, out,
                                 rep, e);
    }
    if (rc == PX_OK)
        px_info(PHONEPAY_MOD,
                "recon %s (run %lld): %zu lines, %zu matched, %zu missing on the "
                "platform, %zu missing at the provider, %zu amount mismatches, %zu credited now",
                date, (long long)rep->runs, rep->lines, rep->matched, rep->missing_platform,
                rep->missing_provider, rep->mismatched, rep->credited_now);
    free(c.credit);
    free(c.diffs);
    phonepay_clearing_free(&file);
    return rc;
}
