/*
 * cardholder.c: what operators do to the issuer's tables (`possum issuer bank|cardholder`):
 * add banks and BIN ranges, add cardholders (the PAN tokenised and encrypted in the HSM),
 * list them masked, reset a card's wrong-PIN counter.
 */
#include "host/issuer/issuer_int.h"
#include "lib/str.h"
#include "lib/time.h"

#include <string.h>

#include <openssl/crypto.h>

int issuer_bank_add(store *st, const char *bank_id, const char *name, int contracted, px_error *e)
{
    store_stmt *s;
    size_t n = strlen(bank_id);
    int rc;
    if (n == 0 || n >= ISSUER_BANK_ID_MAX || strlen(name) == 0 || strlen(name) >= ISSUER_NAME_MAX)
        return px_error_set(e, PX_EINVAL, "bank: id of 1..16 and name of 1..64 bytes required");
    rc = store_prepare(st,
                       "INSERT INTO issuer_bank (bank_id, name, contracted, created_ms) "
                       "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING bank_id",
                       &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, bank_id);
    store_bind_text(s, 2, name);
    store_bind_int64(s, 3, contracted ? 1 : 0);
    store_bind_int64(s, 4, px_now_ms());
    rc = store_step(s, e);
    store_done(s);
    if (rc == STORE_DONE)
        return px_error_set(e, PX_EEXIST, "bank %s already exists", bank_id);
    return rc == STORE_ROW ? PX_OK : rc;
}

int issuer_bin_range_add(store *st, const char *bank_id, const char *low, const char *high,
                         px_error *e)
{
    store_stmt *s;
    issuer_bank_row b;
    int rc;
    if (!issuer_bin_range_is_valid(low, high))
        return px_error_set(e, PX_EINVAL,
                            "BIN range: low and high of 6..11 digits, same "
                            "length, low <= high");
    if ((rc = issuer_db_bank_get(st, bank_id, &b, e)) != PX_OK)
        return rc == PX_ENOTFOUND ? px_error_set(e, rc, "bank %s: no such bank", bank_id) : rc;
    rc = store_prepare(st,
                       "INSERT INTO issuer_bin_range (bin_low, bin_high, bank_id) VALUES "
                       "($1, $2, $3) ON CONFLICT DO NOTHING RETURNING bank_id",
                       &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, low);
    store_bind_text(s, 2, high);
    store_bind_text(s, 3, bank_id);
    rc = store_step(s, e);
    store_done(s);
    if (rc == STORE_DONE)
        return px_error_set(e, PX_EEXIST, "BIN range %s-%s already exists", low, high);
    return rc == STORE_ROW ? PX_OK : rc;
}

/* Everything about a new cardholder that needs no store or HSM. */
static int check_new(const issuer_cardholder_new *n, px_error *e)
{
    size_t pl = n->pin_check ? strlen(n->pin_check) : 0;
    if (n->pan == NULL || !issuer_pan_is_valid(n->pan))
        return px_error_set(e, PX_EINVAL, "pan: not 12..19 digits with a valid check digit");
    if (n->name == NULL || n->name[0] == 0 || strlen(n->name) >= ISSUER_NAME_MAX)
        return px_error_set(e, PX_EINVAL, "name: 1..64 bytes required");
    if (n->expiry == NULL || strlen(n->expiry) != 4 || !px_is_digits(n->expiry, 4) ||
        strncmp(n->expiry + 2, "01", 2) < 0 || strncmp(n->expiry + 2, "12", 2) > 0)
        return px_error_set(e, PX_EINVAL, "expiry: YYMM required");
    if (!px_is_digits(n->pin_check ? n->pin_check : "", pl) ||
        (n->method == ISSUER_PIN_PVV ? pl != 4 : (pl < 4 || pl > 12)))
        return px_error_set(e, PX_EINVAL,
                            n->method == ISSUER_PIN_PVV ? "PVV: 4 digits required"
                                                        : "IBM 3624 offset: 4..12 digits required");
    if (n->pvki < 0 || n->pvki > 9)
        return px_error_set(e, PX_EINVAL, "PVKI: 0..9");
    if (n->balance_minor < 0)
        return px_error_set(e, PX_EINVAL, "balance: must not be negative");
    if (n->currency == NULL || strlen(n->currency) != 3 || !px_is_digits(n->currency, 3))
        return px_error_set(e, PX_EINVAL, "currency: ISO 4217 numeric code (3 digits)");
    if (n->pvk_label == NULL || !hsm_label_is_valid(n->pvk_label))
        return px_error_set(e, PX_EINVAL, "PIN verification key: a key label required");
    return PX_OK;
}

/* The PVK must exist and be a PIN verification key of the method's kind. */
static int check_pvk(issuer_core *c, const issuer_cardholder_new *n, px_error *e)
{
    hsm_key *k = NULL;
    hsm_key_attrs a;
    const char *want = n->method == ISSUER_PIN_PVV ? "V2" : "V1";
    int rc = issuer_pvk_get(c, n->pvk_label, &k, e);
    if (rc != PX_OK)
        return px_error_prefix(e, "PIN verification key %s: ", n->pvk_label);
    hsm_key_get_attrs(k, &a);
    if (strcmp(a.usage, want) != 0)
        return px_error_set(e, PX_EINVAL, "PIN verification key %s has usage %s, not %s",
                            n->pvk_label, a.usage, want);
    return PX_OK;
}

/* The card's BIN must be one of bank_id's ranges. */
static int check_bank(issuer_core *c, const issuer_cardholder_new *n, px_error *e)
{
    issuer_bank_row b;
    char masked[ISSUER_MASKED_MAX];
    int rc = issuer_db_bank_for_pan(c->st, n->pan, &b, e);
    px_mask_pan(n->pan, masked, sizeof masked);
    if (rc == PX_ENOTFOUND || (rc == PX_OK && strcmp(b.bank_id, n->bank_id) != 0))
        return px_error_set(e, PX_EINVAL, "card %s: its BIN is not a range of bank %s", masked,
                            n->bank_id);
    return rc;
}

/* The row for n: token, encrypted PAN, and the rest from n. */
static int build_row(issuer_core *c, const issuer_cardholder_new *n, issuer_account *a, char *enc,
                     size_t encsz, px_error *e)
{
    int rc;
    memset(a, 0, sizeof *a);
    px_strlcpy(a->bank_id, n->bank_id, sizeof a->bank_id);
    px_mask_pan(n->pan, a->pan_masked, sizeof a->pan_masked);
    px_strlcpy(a->expiry, n->expiry, sizeof a->expiry);
    a->method = n->method;
    px_strlcpy(a->pvk_label, n->pvk_label, sizeof a->pvk_label);
    a->pvki = n->pvki;
    px_strlcpy(a->pin_check, n->pin_check, sizeof a->pin_check);
    a->balance_minor = n->balance_minor;
    px_strlcpy(a->currency, n->currency, sizeof a->currency);
    px_strlcpy(a->status, "active", sizeof a->status);
    rc = issuer_pan_token(c, n->pan, a->token, e);
    if (rc == PX_OK)
        rc = issuer_pan_encrypt(c, n->pan, enc, encsz, e);
    return rc;
}

int issuer_cardholder_add(issuer_core *c, const issuer_cardholder_new *n, px_error *e)
{
    issuer_account a;
    char enc[128], first6[7], last4[5];
    size_t len;
    int rc = check_new(n, e);
    if (rc == PX_OK)
        rc = check_pvk(c, n, e);
    if (rc == PX_OK)
        rc = build_row(c, n, &a, enc, sizeof enc, e);
    if (rc != PX_OK)
        return rc;
    len = strlen(n->pan);
    memcpy(first6, n->pan, 6);
    first6[6] = 0;
    memcpy(last4, n->pan + len - 4, 5);
    if ((rc = store_begin(c->st, e)) != PX_OK)
        return rc;
    rc = check_bank(c, n, e);
    if (rc == PX_OK)
        rc = issuer_db_account_insert(c->st, &a, enc, first6, last4, len, n->name, e);
    if (rc == PX_OK)
        return store_commit(c->st, e);
    store_rollback(c->st);
    return rc;
}

int issuer_cardholder_reset_pin_tries(issuer_core *c, const char *pan, px_error *e)
{
    char token[ISSUER_TOKEN_HEX + 1];
    issuer_account a;
    int rc = issuer_pan_token(c, pan, token, e);
    if (rc == PX_OK && (rc = issuer_db_account_get(c->st, token, &a, e)) == PX_ENOTFOUND)
        return px_error_set(e, rc, "no such cardholder");
    if (rc == PX_OK)
        rc = issuer_db_account_set_tries(c->st, token, 0, e);
    return rc;
}

/* One listing row from the current result row. */
static void list_row(store_stmt *s, issuer_cardholder_row *r)
{
    const char *v;
    size_t len = (size_t)store_col_int64(s, 2), i;
    memset(r, 0, sizeof *r);
    if (len >= 10 && len < sizeof r->pan_masked) {
        memcpy(r->pan_masked, (v = store_col_text(s, 0)) ? v : "??????", 6);
        for (i = 6; i < len - 4; i++)
            r->pan_masked[i] = '*';
        memcpy(r->pan_masked + i, (v = store_col_text(s, 1)) ? v : "????", 4);
    }
    px_strlcpy(r->name, (v = store_col_text(s, 3)) ? v : "", sizeof r->name);
    px_strlcpy(r->bank_id, (v = store_col_text(s, 4)) ? v : "", sizeof r->bank_id);
    px_strlcpy(r->expiry, (v = store_col_text(s, 5)) ? v : "", sizeof r->expiry);
    px_strlcpy(r->pin_method, (v = store_col_text(s, 6)) ? v : "", sizeof r->pin_method);
    px_strlcpy(r->status, (v = store_col_text(s, 7)) ? v : "", sizeof r->status);
    r->pin_tries = store_col_int64(s, 8);
    r->balance_minor = store_col_int64(s, 9);
    px_strlcpy(r->currency, (v = store_col_text(s, 10)) ? v : "", sizeof r->currency);
}

int issuer_cardholders_list(store *st, int (*fn)(void *ud, const issuer_cardholder_row *r),
                            void *ud, px_error *e)
{
    issuer_cardholder_row r;
    int64_t offset = 0;
    int rc, stop = 0, rows;
    do { /* pages of PX_ISSUER_PAGE_ROWS keep every result set bounded */
        store_stmt *s;
        rc = store_prepare(st,
                           "SELECT pan_first6, pan_last4, pan_len, holder_name, bank_id, expiry, "
                           "pin_method, status, pin_tries, balance_minor, currency "
                           "FROM issuer_account ORDER BY bank_id, pan_first6, pan_last4, pan_token "
                           "LIMIT CAST($1 AS BIGINT) OFFSET CAST($2 AS BIGINT)",
                           &s, e);
        if (rc != PX_OK)
            return rc;
        store_bind_int64(s, 1, PX_ISSUER_PAGE_ROWS);
        store_bind_int64(s, 2, offset);
        for (rows = 0; !stop && (rc = store_step(s, e)) == STORE_ROW; rows++) {
            list_row(s, &r);
            stop = fn(ud, &r);
        }
        store_done(s);
        offset += rows;
    } while (!stop && rc == STORE_DONE && rows == PX_ISSUER_PAGE_ROWS);
    if (stop)
        return stop;
    return rc < 0 ? rc : PX_OK;
}
