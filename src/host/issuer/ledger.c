/*
 * ledger.c: the issuer's tables (migration 0300_issuer.sql): banks and BIN ranges,
 * accounts, the journal of approved messages and the stored answers (idempotency).
 * Every function runs inside the caller's transaction and never sees a clear PAN except
 * issuer_db_bank_for_pan, which sends the store only the first six digits.
 */
#include "host/issuer/issuer_int.h"
#include "lib/str.h"
#include "lib/time.h"

#include <string.h>

/* Copy a text column (NULL reads as ""). */
static void col(store_stmt *st, int i, char *out, size_t outsz)
{
    const char *v = store_col_text(st, i);
    px_strlcpy(out, v ? v : "", outsz);
}

/* Run a statement that returns no rows; PX_OK when done. */
static int run_done(store_stmt *st, px_error *e)
{
    int rc = store_step(st, e);
    store_done(st);
    return rc == STORE_DONE ? PX_OK : rc < 0 ? rc : PX_EINTERNAL;
}

int issuer_db_bank_for_pan(store *st, const char *pan, issuer_bank_row *out, px_error *e)
{
    store_stmt *s;
    char first6[7];
    size_t best = 0, rows = 0;
    int rc;
    if (strlen(pan) < CRYPTO_PAN_MIN)
        return PX_ENOTFOUND;
    memcpy(first6, pan, 6);
    first6[6] = 0;
    rc = store_prepare(st,
                       "SELECT r.bin_low, r.bin_high, b.bank_id, b.name, b.contracted "
                       "FROM issuer_bin_range r JOIN issuer_bank b ON b.bank_id = r.bank_id "
                       "WHERE substr(r.bin_low, 1, 6) <= $1 AND substr(r.bin_high, 1, 6) >= $1 "
                       "ORDER BY r.bin_low",
                       &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, first6);
    while ((rc = store_step(s, e)) == STORE_ROW && rows++ < PX_ISSUER_BIN_RANGES_MAX) {
        const char *low = store_col_text(s, 0), *high = store_col_text(s, 1);
        if (low == NULL || high == NULL || !issuer_bin_matches(pan, low, high) ||
            strlen(low) <= best)
            continue;
        best = strlen(low);
        col(s, 2, out->bank_id, sizeof out->bank_id);
        col(s, 3, out->name, sizeof out->name);
        out->contracted = store_col_int64(s, 4) == 1;
    }
    store_done(s);
    if (rc < 0)
        return rc;
    return best > 0 ? PX_OK : PX_ENOTFOUND;
}

int issuer_db_bank_get(store *st, const char *bank_id, issuer_bank_row *out, px_error *e)
{
    store_stmt *s;
    int rc = store_prepare(st,
                           "SELECT bank_id, name, contracted FROM issuer_bank "
                           "WHERE bank_id = $1",
                           &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, bank_id);
    rc = store_step(s, e);
    if (rc == STORE_ROW) {
        col(s, 0, out->bank_id, sizeof out->bank_id);
        col(s, 1, out->name, sizeof out->name);
        out->contracted = store_col_int64(s, 2) == 1;
    }
    store_done(s);
    return rc == STORE_ROW ? PX_OK : rc == STORE_DONE ? PX_ENOTFOUND : rc;
}

/* first6 + '*' + last4, as long as the PAN was. */
static void mask_from_parts(const char *first6, const char *last4, int64_t len, char *out,
                            size_t outsz)
{
    size_t n = 0;
    if (len < 10 || (size_t)len >= outsz) {
        px_strlcpy(out, "?", outsz);
        return;
    }
    memcpy(out, first6, 6);
    for (n = 6; n < (size_t)len - 4; n++)
        out[n] = '*';
    memcpy(out + n, last4, 4);
    out[len] = 0;
}

int issuer_db_account_get(store *st, const char *token, issuer_account *out, px_error *e)
{
    store_stmt *s;
    char method[8], f6[7], l4[5];
    int rc = store_prepare(st,
                           "SELECT bank_id, pan_first6, pan_last4, pan_len, expiry, pin_method, "
                           "pvk_label, pvki, pin_check, pin_tries, balance_minor, currency, "
                           "status FROM issuer_account WHERE pan_token = $1\n"
                           "-- @postgres\nFOR UPDATE",
                           &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, token);
    rc = store_step(s, e);
    if (rc == STORE_ROW) {
        px_strlcpy(out->token, token, sizeof out->token);
        col(s, 0, out->bank_id, sizeof out->bank_id);
        col(s, 1, f6, sizeof f6);
        col(s, 2, l4, sizeof l4);
        mask_from_parts(f6, l4, store_col_int64(s, 3), out->pan_masked, sizeof out->pan_masked);
        col(s, 4, out->expiry, sizeof out->expiry);
        col(s, 5, method, sizeof method);
        out->method = strcmp(method, "ibm3624") == 0 ? ISSUER_PIN_IBM3624 : ISSUER_PIN_PVV;
        col(s, 6, out->pvk_label, sizeof out->pvk_label);
        out->pvki = (int)store_col_int64(s, 7);
        col(s, 8, out->pin_check, sizeof out->pin_check);
        out->pin_tries = store_col_int64(s, 9);
        out->balance_minor = store_col_int64(s, 10);
        col(s, 11, out->currency, sizeof out->currency);
        col(s, 12, out->status, sizeof out->status);
    }
    store_done(s);
    return rc == STORE_ROW ? PX_OK : rc == STORE_DONE ? PX_ENOTFOUND : rc;
}

int issuer_db_account_insert(store *st, const issuer_account *a, const char *pan_enc,
                             const char *first6, const char *last4, size_t pan_len,
                             const char *name, px_error *e)
{
    store_stmt *s;
    int64_t now = px_now_ms();
    int rc = store_prepare(st,
                           "INSERT INTO issuer_account (pan_token, pan_enc, pan_first6, pan_last4, "
                           "pan_len, bank_id, holder_name, expiry, pin_method, pvk_label, pvki, "
                           "pin_check, pin_tries, balance_minor, currency, status, created_ms, "
                           "updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
                           "0, $13, $14, $15, $16, $16) ON CONFLICT DO NOTHING RETURNING pan_token",
                           &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, a->token);
    store_bind_text(s, 2, pan_enc);
    store_bind_text(s, 3, first6);
    store_bind_text(s, 4, last4);
    store_bind_int64(s, 5, (int64_t)pan_len);
    store_bind_text(s, 6, a->bank_id);
    store_bind_text(s, 7, name);
    store_bind_text(s, 8, a->expiry);
    store_bind_text(s, 9, a->method == ISSUER_PIN_IBM3624 ? "ibm3624" : "pvv");
    store_bind_text(s, 10, a->pvk_label);
    store_bind_int64(s, 11, a->pvki);
    store_bind_text(s, 12, a->pin_check);
    store_bind_int64(s, 13, a->balance_minor);
    store_bind_text(s, 14, a->currency);
    store_bind_text(s, 15, a->status);
    store_bind_int64(s, 16, now);
    rc = store_step(s, e);
    store_done(s);
    if (rc == STORE_DONE)
        return px_error_set(e, PX_EEXIST, "card %s is already a cardholder", a->pan_masked);
    return rc == STORE_ROW ? PX_OK : rc;
}

int issuer_db_account_set_tries(store *st, const char *token, int64_t tries, px_error *e)
{
    store_stmt *s;
    int rc = store_prepare(st,
                           "UPDATE issuer_account SET pin_tries = $1, updated_ms = $2 "
                           "WHERE pan_token = $3",
                           &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_int64(s, 1, tries);
    store_bind_int64(s, 2, px_now_ms());
    store_bind_text(s, 3, token);
    return run_done(s, e);
}

int issuer_db_account_add(store *st, const char *token, int64_t delta, int64_t *balance,
                          px_error *e)
{
    store_stmt *s;
    int rc = store_prepare(st,
                           "UPDATE issuer_account SET balance_minor = balance_minor + "
                           "CAST($1 AS BIGINT), updated_ms = $2 WHERE pan_token = $3 AND "
                           "balance_minor + CAST($1 AS BIGINT) >= 0 RETURNING balance_minor",
                           &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_int64(s, 1, delta);
    store_bind_int64(s, 2, px_now_ms());
    store_bind_text(s, 3, token);
    rc = store_step(s, e);
    if (rc == STORE_ROW)
        *balance = store_col_int64(s, 0);
    store_done(s);
    if (rc == STORE_DONE)
        return px_error_set(e, PX_ERANGE, "the balance cannot go below zero");
    return rc == STORE_ROW ? PX_OK : rc;
}

static void bind_entry(store_stmt *s, const issuer_entry *en)
{
    store_bind_text(s, 1, en->business_date);
    store_bind_int64(s, 2, px_now_ms());
    store_bind_text(s, 3, en->type);
    store_bind_text(s, 4, en->mti);
    store_bind_text(s, 5, en->acquirer);
    store_bind_text(s, 6, en->stan);
    store_bind_text(s, 7, en->tx_time);
    store_bind_text(s, 8, en->rrn);
    store_bind_text(s, 9, en->auth_code);
    store_bind_text(s, 10, en->token);
    store_bind_text(s, 11, en->pan_masked);
    store_bind_int64(s, 12, en->amount_minor);
    store_bind_text(s, 13, en->currency);
    store_bind_text(s, 14, en->response);
    store_bind_text(s, 15, en->terminal);
    store_bind_text(s, 16, en->merchant);
    store_bind_text(s, 17, en->payee_card_masked);
    store_bind_text(s, 18, en->payer_mobile);
    if (en->original_id > 0)
        store_bind_int64(s, 19, en->original_id);
    else
        store_bind_null(s, 19);
    store_bind_int64(s, 20, en->balance_after);
}

int issuer_db_entry_insert(store *st, issuer_entry *en, px_error *e)
{
    store_stmt *s;
    int rc = store_prepare(st,
                           "INSERT INTO issuer_journal (business_date, created_ms, type, mti, "
                           "acquirer, stan, tx_time, rrn, auth_code, pan_token, pan_masked, "
                           "amount_minor, currency, response, terminal, merchant, "
                           "payee_card_masked, payer_mobile, original_id, balance_after) VALUES "
                           "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, "
                           "$16, $17, $18, $19, $20) RETURNING id",
                           &s, e);
    if (rc != PX_OK)
        return rc;
    bind_entry(s, en);
    rc = store_step(s, e);
    if (rc == STORE_ROW)
        en->id = store_col_int64(s, 0);
    store_done(s);
    return rc == STORE_ROW ? PX_OK : rc < 0 ? rc : PX_EINTERNAL;
}

#define ENTRY_COLS                                                                                 \
    "id, business_date, type, mti, acquirer, stan, tx_time, rrn, auth_code, pan_token, "           \
    "pan_masked, amount_minor, currency, response, terminal, merchant, payee_card_masked, "        \
    "payer_mobile, COALESCE(original_id, 0), COALESCE(undone_by, 0), balance_after"

static void read_entry(store_stmt *s, issuer_entry *en)
{
    en->id = store_col_int64(s, 0);
    col(s, 1, en->business_date, sizeof en->business_date);
    col(s, 2, en->type, sizeof en->type);
    col(s, 3, en->mti, sizeof en->mti);
    col(s, 4, en->acquirer, sizeof en->acquirer);
    col(s, 5, en->stan, sizeof en->stan);
    col(s, 6, en->tx_time, sizeof en->tx_time);
    col(s, 7, en->rrn, sizeof en->rrn);
    col(s, 8, en->auth_code, sizeof en->auth_code);
    col(s, 9, en->token, sizeof en->token);
    col(s, 10, en->pan_masked, sizeof en->pan_masked);
    en->amount_minor = store_col_int64(s, 11);
    col(s, 12, en->currency, sizeof en->currency);
    col(s, 13, en->response, sizeof en->response);
    col(s, 14, en->terminal, sizeof en->terminal);
    col(s, 15, en->merchant, sizeof en->merchant);
    col(s, 16, en->payee_card_masked, sizeof en->payee_card_masked);
    col(s, 17, en->payer_mobile, sizeof en->payer_mobile);
    en->original_id = store_col_int64(s, 18);
    en->undone_by = store_col_int64(s, 19);
    en->balance_after = store_col_int64(s, 20);
}

int issuer_db_entry_find(store *st, const char *acquirer, const char *stan, const char *tx_time,
                         const char *mti, issuer_entry *out, px_error *e)
{
    store_stmt *s;
    int rc = store_prepare(st,
                           "SELECT " ENTRY_COLS " FROM issuer_journal WHERE acquirer = $1 AND "
                           "stan = $2 AND tx_time = $3 AND mti = $4 AND type <> 'reversal' "
                           "ORDER BY id LIMIT 1\n-- @postgres\nFOR UPDATE",
                           &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, acquirer);
    store_bind_text(s, 2, stan);
    store_bind_text(s, 3, tx_time);
    store_bind_text(s, 4, mti);
    rc = store_step(s, e);
    if (rc == STORE_ROW)
        read_entry(s, out);
    store_done(s);
    return rc == STORE_ROW ? PX_OK : rc == STORE_DONE ? PX_ENOTFOUND : rc;
}

int issuer_db_entry_get(store *st, int64_t id, issuer_entry *out, px_error *e)
{
    store_stmt *s;
    int rc = store_prepare(st,
                           "SELECT " ENTRY_COLS " FROM issuer_journal WHERE id = $1\n"
                           "-- @postgres\nFOR UPDATE",
                           &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_int64(s, 1, id);
    rc = store_step(s, e);
    if (rc == STORE_ROW)
        read_entry(s, out);
    store_done(s);
    return rc == STORE_ROW ? PX_OK : rc == STORE_DONE ? PX_ENOTFOUND : rc;
}

int issuer_db_entry_set_undone(store *st, int64_t id, int64_t by, px_error *e)
{
    store_stmt *s;
    int rc = store_prepare(st,
                           by > 0 ? "UPDATE issuer_journal SET undone_by = $2 WHERE id = $1 "
                                    "AND undone_by IS NULL"
                                  : "UPDATE issuer_journal SET undone_by = NULL WHERE id = $1 "
                                    "AND CAST($2 AS BIGINT) = 0",
                           &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_int64(s, 1, id);
    store_bind_int64(s, 2, by);
    rc = store_step(s, e);
    if (rc == STORE_DONE && store_changes(s) != 1)
        rc = px_error_set(e, PX_ESTATE, "journal entry %lld: already undone", (long long)id);
    store_done(s);
    return rc == STORE_DONE ? PX_OK : rc;
}

int issuer_db_credit_exists(store *st, const char *rrn, int *exists, px_error *e)
{
    store_stmt *s;
    int rc = store_prepare(st,
                           "SELECT id FROM issuer_journal WHERE rrn = $1 AND "
                           "type = 'credit'",
                           &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, rrn);
    rc = store_step(s, e);
    *exists = rc == STORE_ROW;
    store_done(s);
    return rc < 0 ? rc : PX_OK;
}

int issuer_db_message_get(store *st, const issuer_req *r, char *mac_hex, size_t machexsz,
                          uint8_t *rsp, size_t cap, size_t *len, px_error *e)
{
    store_stmt *s;
    int rc = store_prepare(st,
                           "SELECT request_mac, response FROM issuer_message WHERE acquirer = $1 "
                           "AND stan = $2 AND tx_time = $3 AND mti_class = $4",
                           &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, r->acquirer);
    store_bind_text(s, 2, r->stan);
    store_bind_text(s, 3, r->tx_time);
    store_bind_text(s, 4, r->mti_class);
    rc = store_step(s, e);
    if (rc == STORE_ROW) {
        size_t n = 0;
        const void *p = store_col_blob(s, 1, &n);
        col(s, 0, mac_hex, machexsz);
        if (p == NULL || n > cap)
            rc = px_error_set(e, PX_ETOOBIG, "stored answer: %zu bytes", n);
        else {
            memcpy(rsp, p, n);
            *len = n;
        }
    }
    store_done(s);
    return rc == STORE_ROW ? PX_OK : rc == STORE_DONE ? PX_ENOTFOUND : rc;
}

int issuer_db_message_put(store *st, const issuer_req *r, const char *mac_hex, const uint8_t *rsp,
                          size_t len, px_error *e)
{
    store_stmt *s;
    int rc = store_prepare(st,
                           "INSERT INTO issuer_message (acquirer, stan, tx_time, mti_class, "
                           "request_mac, response, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                           &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, r->acquirer);
    store_bind_text(s, 2, r->stan);
    store_bind_text(s, 3, r->tx_time);
    store_bind_text(s, 4, r->mti_class);
    store_bind_text(s, 5, mac_hex);
    store_bind_blob(s, 6, rsp, len);
    store_bind_int64(s, 7, px_now_ms());
    return run_done(s, e);
}
