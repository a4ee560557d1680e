/*
 * txn.c: what each financial request does to the accounts and the journal
 * (docs/switch-protocol.md §2; docs/issuer.md, "Messages"). Called inside one store
 * transaction: a debit, its journal entry and its stored answer commit together or not at
 * all. Balances never go below zero (checked here and by the table's CHECK).
 */
#include "host/issuer/issuer_int.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <stdio.h>
#include <string.h>

static void set_rc(issuer_outcome *o, const char *rc)
{
    px_strlcpy(o->rc, rc, sizeof o->rc);
}

/* Six digits for field 38, from the core's xorshift32 (spread, not secrecy). */
static void auth_code(issuer_core *c, char out[7])
{
    uint32_t x = c->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c->rng = x;
    snprintf(out, 7, "%06u", (unsigned)(x % 1000000u));
}

/* The card of r: Luhn, a contracted bank's BIN (15), an account (14), open (14 / 62), not
 * expired (54), the currency it is kept in (12). o->rc stays "" when the card may be used. */
static int check_card(issuer_core *c, const issuer_req *r, const char *pan, int for_credit,
                      int64_t now_ms, issuer_account *a, issuer_outcome *o, px_error *e)
{
    issuer_bank_row b;
    int rc;
    if (!issuer_pan_is_valid(pan)) {
        set_rc(o, ISSUER_RC_INVALID_CARD);
        return PX_OK;
    }
    rc = issuer_db_bank_for_pan(c->st, pan, &b, e);
    if (rc == PX_ENOTFOUND || (rc == PX_OK && !b.contracted)) {
        set_rc(o, ISSUER_RC_NO_SUCH_ISSUER);
        return PX_OK;
    }
    if (rc == PX_OK && (rc = issuer_pan_token(c, pan, a->token, e)) == PX_OK)
        rc = issuer_db_account_get(c->st, a->token, a, e);
    if (rc == PX_ENOTFOUND || (rc == PX_OK && strcmp(a->status, "closed") == 0))
        set_rc(o, ISSUER_RC_INVALID_CARD);
    else if (rc == PX_OK && !for_credit && strcmp(a->status, "active") != 0)
        set_rc(o, ISSUER_RC_RESTRICTED_CARD);
    else if (rc == PX_OK && !for_credit && issuer_expiry_is_past(a->expiry, now_ms))
        set_rc(o, ISSUER_RC_EXPIRED_CARD);
    else if (rc == PX_OK && !for_credit && r->expiry[0] && strcmp(r->expiry, a->expiry) != 0)
        set_rc(o, ISSUER_RC_INVALID_CARD);
    else if (rc == PX_OK && strcmp(r->currency, a->currency) != 0)
        set_rc(o, ISSUER_RC_INVALID_TXN);
    return rc == PX_ENOTFOUND ? PX_OK : rc;
}

/* The PIN: 75 once pin_tries_max wrong PINs in a row were counted, else verified in the
 * HSM; a wrong PIN is counted (and answered 55, or 75 when it is the last try allowed). */
static int check_pin(issuer_core *c, const issuer_req *r, issuer_account *a, int required,
                     issuer_outcome *o, px_error *e)
{
    px_error why = {0};
    int rc;
    if (a->pin_tries >= c->cfg.pin_tries_max) {
        set_rc(o, ISSUER_RC_PIN_TRIES_EXCEEDED);
        return PX_OK;
    }
    if (!r->has_pin) {
        if (required && c->cfg.require_pin)
            set_rc(o, ISSUER_RC_INCORRECT_PIN);
        return PX_OK;
    }
    rc = issuer_pin_verify(c, a, r->pan, r->pin_block, &why);
    if (rc == PX_OK)
        return a->pin_tries > 0 ? issuer_db_account_set_tries(c->st, a->token, 0, e) : PX_OK;
    if (rc == PX_EAUTH) {
        a->pin_tries++;
        set_rc(o, a->pin_tries >= c->cfg.pin_tries_max ? ISSUER_RC_PIN_TRIES_EXCEEDED
                                                       : ISSUER_RC_INCORRECT_PIN);
        return issuer_db_account_set_tries(c->st, a->token, a->pin_tries, e);
    }
    if (rc == PX_EFORMAT || rc == PX_EINVAL || rc == PX_ECRYPTO) {
        px_warn("issuer", "card %s: PIN block does not decode under the ZPK (%s): answered 55",
                a->pan_masked, px_error_text(&why));
        set_rc(o, ISSUER_RC_INCORRECT_PIN);
        return PX_OK;
    }
    return px_error_set(e, rc, "PIN verification: %s", px_error_text(&why));
}

/* A journal entry of type for r on account a (amount, masked PANs, ids). */
static void entry_init(issuer_entry *en, const issuer_req *r, const char *type,
                       const issuer_account *a, int64_t amount, int64_t now_ms)
{
    memset(en, 0, sizeof *en);
    px_time_format_utc(now_ms, "%Y-%m-%d", en->business_date, sizeof en->business_date);
    px_strlcpy(en->type, type, sizeof en->type);
    px_strlcpy(en->mti, r->mti, sizeof en->mti);
    px_strlcpy(en->acquirer, r->acquirer, sizeof en->acquirer);
    px_strlcpy(en->stan, r->stan, sizeof en->stan);
    px_strlcpy(en->tx_time, r->tx_time, sizeof en->tx_time);
    px_strlcpy(en->rrn, r->rrn, sizeof en->rrn);
    px_strlcpy(en->token, a->token, sizeof en->token);
    px_strlcpy(en->pan_masked, a->pan_masked, sizeof en->pan_masked);
    en->amount_minor = amount;
    px_strlcpy(en->currency, a->currency, sizeof en->currency);
    px_strlcpy(en->response, ISSUER_RC_APPROVED, sizeof en->response);
    px_strlcpy(en->terminal, r->terminal, sizeof en->terminal);
    px_strlcpy(en->merchant, r->merchant, sizeof en->merchant);
    px_strlcpy(en->payer_mobile, r->payer_mobile, sizeof en->payer_mobile);
    if (r->payee_card[0])
        px_mask_pan(r->payee_card, en->payee_card_masked, sizeof en->payee_card_masked);
}

/* Approve: code 00, an authorisation code, the entry's auth code and the balance shown. */
static void approve(issuer_core *c, issuer_outcome *o, issuer_entry *en, int64_t balance)
{
    set_rc(o, ISSUER_RC_APPROVED);
    auth_code(c, o->auth_code);
    if (en != NULL)
        px_strlcpy(en->auth_code, o->auth_code, sizeof en->auth_code);
    o->has_balance = 1;
    o->balance_minor = balance;
}

/* Purchase (000000) and mobile-number debit (400000): a PIN-verified debit. */
static int run_debit(issuer_core *c, const issuer_req *r, int64_t now_ms, issuer_outcome *o,
                     px_error *e)
{
    issuer_account a;
    issuer_entry en;
    int64_t balance = 0;
    int rc;
    if (r->amount_minor <= 0) {
        set_rc(o, ISSUER_RC_INVALID_AMOUNT);
        return PX_OK;
    }
    if (c->cfg.amount_limit_minor > 0 && r->amount_minor > c->cfg.amount_limit_minor) {
        set_rc(o, ISSUER_RC_EXCEEDS_LIMIT);
        return PX_OK;
    }
    rc = check_card(c, r, r->pan, 0, now_ms, &a, o, e);
    if (rc == PX_OK && o->rc[0] == 0)
        rc = check_pin(c, r, &a, 1, o, e);
    if (rc != PX_OK || o->rc[0] != 0)
        return rc;
    rc = issuer_db_account_add(c->st, a.token, -r->amount_minor, &balance, e);
    if (rc == PX_ERANGE) {
        set_rc(o, ISSUER_RC_INSUFFICIENT_FUNDS);
        return PX_OK;
    }
    entry_init(&en, r, r->kind == ISSUER_K_PURCHASE ? "purchase" : "debit", &a, r->amount_minor,
               now_ms);
    en.balance_after = balance;
    approve(c, o, &en, balance);
    return rc == PX_OK ? issuer_db_entry_insert(c->st, &en, e) : rc;
}

/* Balance inquiry (310000): PIN-verified, answered with field 54, not journalled. */
static int run_balance(issuer_core *c, const issuer_req *r, int64_t now_ms, issuer_outcome *o,
                       px_error *e)
{
    issuer_account a;
    int rc = check_card(c, r, r->pan, 0, now_ms, &a, o, e);
    if (rc == PX_OK && o->rc[0] == 0)
        rc = check_pin(c, r, &a, 1, o, e);
    if (rc == PX_OK && o->rc[0] == 0)
        approve(c, o, NULL, a.balance_minor);
    return rc;
}

/* Void (200000) of a purchase named by field 90: the amount goes back, once. */
static int run_void(issuer_core *c, const issuer_req *r, int64_t now_ms, issuer_outcome *o,
                    px_error *e)
{
    issuer_account a;
    issuer_entry orig, en;
    int64_t balance = 0;
    int rc = check_card(c, r, r->pan, 0, now_ms, &a, o, e);
    if (rc == PX_OK && o->rc[0] == 0)
        rc = check_pin(c, r, &a, 0, o, e);
    if (rc != PX_OK || o->rc[0] != 0)
        return rc;
    rc = issuer_db_entry_find(c->st, r->orig.acquirer, r->orig.stan, r->orig.tx_time, r->orig.mti,
                              &orig, e);
    if (rc == PX_ENOTFOUND ||
        (rc == PX_OK && (strcmp(orig.type, "purchase") != 0 || strcmp(orig.token, a.token) != 0))) {
        set_rc(o, ISSUER_RC_ORIGINAL_NOT_FOUND);
        return PX_OK;
    }
    if (rc == PX_OK && (orig.undone_by != 0 || orig.amount_minor != r->amount_minor)) {
        set_rc(o, ISSUER_RC_INVALID_TXN);
        return PX_OK;
    }
    if (rc == PX_OK)
        rc = issuer_db_account_add(c->st, a.token, orig.amount_minor, &balance, e);
    if (rc != PX_OK)
        return rc;
    entry_init(&en, r, "void", &a, orig.amount_minor, now_ms);
    en.original_id = orig.id;
    en.balance_after = balance;
    approve(c, o, &en, balance);
    rc = issuer_db_entry_insert(c->st, &en, e);
    return rc == PX_OK ? issuer_db_entry_set_undone(c->st, orig.id, en.id, e) : rc;
}

/* Payee credit (0220, 210000): once per debit RRN; a repeat is approved and changes
 * nothing (seed 002 [0052]: the payee is credited after reconciliation). */
static int run_credit(issuer_core *c, const issuer_req *r, int64_t now_ms, issuer_outcome *o,
                      px_error *e)
{
    issuer_account a;
    issuer_entry en;
    int64_t balance = 0;
    int exists = 0, rc;
    if (r->amount_minor <= 0) {
        set_rc(o, ISSUER_RC_INVALID_AMOUNT);
        return PX_OK;
    }
    rc = check_card(c, r, r->pan, 1, now_ms, &a, o, e);
    if (rc == PX_OK && o->rc[0] == 0)
        rc = issuer_db_credit_exists(c->st, r->rrn, &exists, e);
    if (rc != PX_OK || o->rc[0] != 0)
        return rc;
    if (exists) {
        px_info("issuer", "credit for RRN %s was made already: approved, nothing changes", r->rrn);
        approve(c, o, NULL, a.balance_minor);
        o->has_balance = 0;
        return PX_OK;
    }
    rc = issuer_db_account_add(c->st, a.token, r->amount_minor, &balance, e);
    if (rc != PX_OK)
        return rc;
    entry_init(&en, r, "credit", &a, r->amount_minor, now_ms);
    en.balance_after = balance;
    approve(c, o, &en, balance);
    o->has_balance = 0;
    return issuer_db_entry_insert(c->st, &en, e);
}

/* What undoing orig does to its account: a debit comes back, a void or credit is taken
 * again (51 when the balance no longer covers it). */
static int undo_effect(issuer_core *c, const issuer_entry *orig, int64_t *balance,
                       issuer_outcome *o, px_error *e)
{
    int debit_again = strcmp(orig->type, "void") == 0 || strcmp(orig->type, "credit") == 0;
    int rc = issuer_db_account_add(c->st, orig->token,
                                   debit_again ? -orig->amount_minor : orig->amount_minor, balance,
                                   e);
    if (rc == PX_ERANGE) {
        px_warn("issuer", "reversal of %s %lld: the balance no longer covers it (51)", orig->type,
                (long long)orig->id);
        set_rc(o, ISSUER_RC_INSUFFICIENT_FUNDS);
        return PX_OK;
    }
    if (rc == PX_OK && strcmp(orig->type, "void") == 0 && orig->original_id > 0)
        rc = issuer_db_entry_set_undone(c->st, orig->original_id, 0, e);
    return rc;
}

/* The entry a reversal undoes: field 90, else the reversal's own 32/11/7 (a switch that
 * reuses the original's STAN), as a 0200 or a 0220. */
static int find_reversed(issuer_core *c, const issuer_req *r, issuer_entry *orig, px_error *e)
{
    static const char *const mtis[] = {"0200", "0220"};
    if (r->has_orig)
        return issuer_db_entry_find(c->st, r->orig.acquirer, r->orig.stan, r->orig.tx_time,
                                    r->orig.mti, orig, e);
    for (size_t i = 0; i < 2; i++) {
        int rc = issuer_db_entry_find(c->st, r->acquirer, r->stan, r->tx_time, mtis[i], orig, e);
        if (rc != PX_ENOTFOUND)
            return rc;
    }
    return PX_ENOTFOUND;
}

/* Reversal (0420/0421): undo the original exactly once; a reversal of nothing, or of
 * something already undone, is approved and changes nothing (§2). */
static int run_reversal(issuer_core *c, const issuer_req *r, int64_t now_ms, issuer_outcome *o,
                        px_error *e)
{
    issuer_entry orig, en;
    issuer_account a;
    int64_t balance = 0;
    int rc = find_reversed(c, r, &orig, e);
    if (rc == PX_ENOTFOUND || (rc == PX_OK && orig.undone_by != 0)) {
        px_info("issuer", "reversal STAN %s: %s: approved, nothing changes", r->stan,
                rc == PX_ENOTFOUND ? "original unknown" : "original already undone");
        set_rc(o, ISSUER_RC_APPROVED);
        return PX_OK;
    }
    if (rc == PX_OK && r->pan[0] && (rc = issuer_pan_token(c, r->pan, a.token, e)) == PX_OK &&
        strcmp(a.token, orig.token) != 0) {
        px_warn("issuer", "reversal STAN %s names another card than its original: 12", r->stan);
        set_rc(o, ISSUER_RC_INVALID_TXN);
        return PX_OK;
    }
    if (rc == PX_OK)
        rc = undo_effect(c, &orig, &balance, o, e);
    if (rc != PX_OK || o->rc[0] != 0)
        return rc;
    px_strlcpy(a.token, orig.token, sizeof a.token);
    px_strlcpy(a.pan_masked, orig.pan_masked, sizeof a.pan_masked);
    px_strlcpy(a.currency, orig.currency, sizeof a.currency);
    entry_init(&en, r, "reversal", &a, orig.amount_minor, now_ms);
    px_strlcpy(en.rrn, orig.rrn, sizeof en.rrn);
    px_strlcpy(en.payee_card_masked, orig.payee_card_masked, sizeof en.payee_card_masked);
    px_strlcpy(en.payer_mobile, orig.payer_mobile, sizeof en.payer_mobile);
    en.original_id = orig.id;
    en.balance_after = balance;
    approve(c, o, &en, balance);
    o->has_balance = 0;
    rc = issuer_db_entry_insert(c->st, &en, e);
    return rc == PX_OK ? issuer_db_entry_set_undone(c->st, orig.id, en.id, e) : rc;
}

int issuer_txn_run(issuer_core *c, const issuer_req *r, int64_t now_ms, issuer_outcome *o,
                   px_error *e)
{
    memset(o, 0, sizeof *o);
    px_time_format_utc(now_ms, "%m%d", o->settle_mmdd, sizeof o->settle_mmdd);
    switch (r->kind) {
    case ISSUER_K_PURCHASE:
    case ISSUER_K_MOBILE_DEBIT: return run_debit(c, r, now_ms, o, e);
    case ISSUER_K_BALANCE: return run_balance(c, r, now_ms, o, e);
    case ISSUER_K_VOID: return run_void(c, r, now_ms, o, e);
    case ISSUER_K_CREDIT: return run_credit(c, r, now_ms, o, e);
    case ISSUER_K_REVERSAL: return run_reversal(c, r, now_ms, o, e);
    case ISSUER_K_NETMGMT: break;
    }
    return px_error_set(e, PX_EINTERNAL, "issuer_txn_run: kind %d is not financial", (int)r->kind);
}
