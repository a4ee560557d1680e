/*
 * payment.c: a mobile-number payment after the lookup: the checks before the debit
 * ([0050]-[0053], claims 4 and 13), the provider's answer and the payer's notification
 * ([0054]), and the reversal of a debit.
 */
#include "lib/mobile_cn.h"
#include "host/phonepay/phonepay_int.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#define TXT_NOT_REGISTERED "收款人未开通手机号收款 / Payee is not registered for mobile payment"
#define TXT_BAD_MOBILE "手机号无效，请重新输入 / Mobile number is not valid, re-enter"
#define TXT_AMOUNT_DIFFERS                                                                         \
    "金额与查询时不符，请重新查询 / Amount differs from the lookup, start again"
#define TXT_REF_INVALID "查询已失效，请重新输入收款人手机号 / Lookup expired or used, start again"
#define TXT_NO_ISSUER "付款卡所属银行不是签约银行 / card's bank is not a contracted bank"
#define TXT_OK "收款人将在对账后入账 / The payee is credited after reconciliation"

static void answer(phonepay_payment *o, const char *rc, const char *t)
{
    px_strlcpy(o->response_code, rc, sizeof o->response_code);
    px_strlcpy(o->text, t, sizeof o->text);
}

typedef struct begin_ctx {
    const phonepay_payment_request *req;
    phonepay_payment *out;
    int64_t now_ms;
    char masked_name[PHONEPAY_NAME_MAX];
} begin_ctx;

/* The lookup behind the reference: 12 / 13 answers when it does not fit the request. */
static int check_reference(phonepay *pp, begin_ctx *c, px_error *e)
{
    const phonepay_payment_request *r = c->req;
    store_stmt *s;
    int rc = store_prepare(pp->st,
                           "SELECT tid, payee_mobile, payer_mobile, amount_minor, used, "
                           "expires_ms, masked_name FROM phonepay_lookup WHERE reference = $1",
                           &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, r->reference);
    rc = store_step(s, e);
    if (rc == STORE_DONE ||
        (rc == STORE_ROW && (strcmp(store_col_text(s, 0), r->tid) != 0 ||
                             strcmp(store_col_text(s, 1), r->payee_mobile) != 0 ||
                             strcmp(store_col_text(s, 2), r->payer_mobile) != 0 ||
                             store_col_int64(s, 4) != 0 || store_col_int64(s, 5) < c->now_ms)))
        answer(c->out, PHONEPAY_RC_INVALID_TXN, TXT_REF_INVALID);
    else if (rc == STORE_ROW && store_col_int64(s, 3) != r->amount_minor)
        answer(c->out, PHONEPAY_RC_INVALID_AMOUNT, TXT_AMOUNT_DIFFERS);
    else if (rc == STORE_ROW)
        px_strlcpy(c->masked_name, store_col_text(s, 6), sizeof c->masked_name);
    store_done(s);
    return rc < 0 ? rc : PX_OK;
}

/* Claim 4 / [0053]: is the payer card's bank a contracted bank (longest BIN 6..11 wins)? */
static int bin_is_contracted(phonepay *pp, const char *pan, int *contracted, px_error *e)
{
    store_stmt *s;
    char bins[6][12];
    size_t n = pan ? strlen(pan) : 0;
    int rc;
    *contracted = 0;
    if (n < 12 || n > 19 || !px_is_digits(pan, n))
        return PX_OK;
    for (size_t i = 0; i < 6; i++) {
        memcpy(bins[i], pan, 6 + i);
        bins[i][6 + i] = 0;
    }
    rc = store_prepare(pp->st,
                       "SELECT bank FROM phonepay_bin WHERE bin IN ($1, $2, $3, $4, "
                       "$5, $6) LIMIT 1",
                       &s, e);
    if (rc != PX_OK)
        return rc;
    for (int i = 0; i < 6; i++)
        store_bind_text(s, i + 1, bins[i]);
    rc = store_step(s, e);
    *contracted = rc == STORE_ROW;
    store_done(s);
    OPENSSL_cleanse(bins, sizeof bins);
    return rc < 0 ? rc : PX_OK;
}

/* Copy the payee's sealed card into a new pending payment and open it for field 103. */
static int start_payment(phonepay *pp, begin_ctx *c, px_error *e)
{
    const phonepay_payment_request *r = c->req;
    store_stmt *s;
    int rc = store_prepare(pp->st,
                           "INSERT INTO phonepay_payment (reference, tid, payee_mobile, "
                           "payer_mobile, amount_minor, masked_name, card_enc, card_mac, "
                           "card_masked, state, created_ms, updated_ms) SELECT $1, $2, mobile, "
                           "$3, CAST($4 AS BIGINT), $5, card_enc, card_mac, card_masked, "
                           "'pending', CAST($6 AS BIGINT), CAST($6 AS BIGINT) FROM "
                           "phonepay_payee WHERE mobile = $7 AND status = 'active' "
                           "RETURNING card_enc, card_mac",
                           &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, r->reference);
    store_bind_text(s, 2, r->tid);
    store_bind_text(s, 3, r->payer_mobile);
    store_bind_int64(s, 4, r->amount_minor);
    store_bind_text(s, 5, c->masked_name);
    store_bind_int64(s, 6, c->now_ms);
    store_bind_text(s, 7, r->payee_mobile);
    rc = store_step(s, e);
    if (rc == STORE_DONE) {
        answer(c->out, PHONEPAY_RC_NOT_REGISTERED, TXT_NOT_REGISTERED);
    } else if (rc == STORE_ROW) {
        size_t el, ml;
        const uint8_t *enc = store_col_blob(s, 0, &el), *mac = store_col_blob(s, 1, &ml);
        rc = phonepay_card_open(pp, r->payee_mobile, enc, el, mac, ml, c->out->payee_card, e);
        if (rc == PX_EAUTH)
            px_errorlog(PHONEPAY_MOD, "SECURITY: payee card of reference %s fails its check",
                        r->reference);
    }
    store_done(s);
    return rc < 0 ? rc : PX_OK;
}

static int begin_txn(phonepay *pp, void *ud, px_error *e)
{
    begin_ctx *c = ud;
    store_stmt *s;
    int contracted = 1, rc;
    memset(c->out, 0, sizeof *c->out);
    rc = check_reference(pp, c, e);
    if (rc != PX_OK || c->out->response_code[0])
        return rc;
    if (pp->cfg.bin_check &&
        (rc = bin_is_contracted(pp, c->req->payer_pan, &contracted, e)) != PX_OK)
        return rc;
    if (!contracted) { /* the reference stays usable: the payer may try another card */
        answer(c->out, PHONEPAY_RC_NO_ISSUER, TXT_NO_ISSUER);
        return PX_OK;
    }
    rc = store_prepare(pp->st,
                       "UPDATE phonepay_lookup SET used = 1 WHERE reference = $1 AND "
                       "used = 0",
                       &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, c->req->reference);
    rc = store_step(s, e);
    if (rc == STORE_DONE && store_changes(s) != 1) /* another node took it just now */
        answer(c->out, PHONEPAY_RC_INVALID_TXN, TXT_REF_INVALID);
    store_done(s);
    if (rc < 0 || c->out->response_code[0])
        return rc < 0 ? rc : PX_OK;
    rc = start_payment(pp, c, e);
    if (rc == PX_OK && c->out->response_code[0] == 0)
        answer(c->out, PHONEPAY_RC_APPROVED, TXT_OK);
    return rc;
}

int phonepay_payment_begin(phonepay *pp, const phonepay_payment_request *req, phonepay_payment *out,
                           px_error *e)
{
    begin_ctx c = {.req = req, .out = out, .now_ms = px_now_ms()};
    int rc;
    memset(out, 0, sizeof *out);
    if (pp == NULL || req == NULL || req->tid == NULL || req->reference == NULL)
        return px_error_set(e, PX_EINVAL, "payment: no phonepay, request or reference");
    if (!px_mobile_cn_is_valid(req->payee_mobile, req->payee_mobile ? strlen(req->payee_mobile) : 0,
                               NULL) ||
        !px_mobile_cn_is_valid(req->payer_mobile, req->payer_mobile ? strlen(req->payer_mobile) : 0,
                               NULL)) {
        answer(out, PHONEPAY_RC_BAD_MOBILE, TXT_BAD_MOBILE);
        phonepay_count_answer("payment", out->response_code);
        return PX_OK;
    }
    if (strlen(req->reference) != PHONEPAY_REF_LEN ||
        !px_is_digits(req->reference, PHONEPAY_REF_LEN)) {
        answer(out, PHONEPAY_RC_INVALID_TXN, TXT_REF_INVALID);
        phonepay_count_answer("payment", out->response_code);
        return PX_OK;
    }
    rc = phonepay_txn(pp, begin_txn, &c, e);
    if (rc != PX_OK || strcmp(out->response_code, PHONEPAY_RC_APPROVED) != 0)
        OPENSSL_cleanse(out->payee_card, sizeof out->payee_card);
    if (rc != PX_OK) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    phonepay_count_answer("payment", out->response_code);
    px_info(PHONEPAY_MOD, "payment %s by %s: %s", req->reference, req->tid, out->response_code);
    return PX_OK;
}

typedef struct result_ctx {
    const char *reference, *rrn, *stan, *rc;
    int64_t now_ms;
    int changed;
} result_ctx;

/* The payer's message ([0054]): who was paid, how much, the reference. */
static int notify_payer(phonepay *pp, const result_ctx *c, const char *payer,
                        const char *masked_name, const char *payee, int64_t amount_minor,
                        px_error *e)
{
    char text[PX_PHONEPAY_SMS_MAX], amount[32], m[PHONEPAY_MOBILE_LEN + 1], key[64];
    phonepay_amount_format(amount_minor, amount, sizeof amount);
    phonepay_mobile_mask(payee, m);
    snprintf(text, sizeof text, "%s您已向%s(%s)付款%s元，参考号%s。收款人将在对账后入账。",
             pp->cfg.sms_signature, masked_name, m, amount, c->rrn);
    snprintf(key, sizeof key, "debit:%s", c->reference);
    return phonepay_notify(pp, key, PHONEPAY_EV_DEBIT, payer, text, c->now_ms, e);
}

static int result_txn(phonepay *pp, void *ud, px_error *e)
{
    result_ctx *c = ud;
    int approved = strcmp(c->rc, PHONEPAY_RC_APPROVED) == 0;
    char date[16], payer[16] = "", payee[16] = "", name[PHONEPAY_NAME_MAX] = "", state[16] = "";
    char old_rrn[16] = "", old_rc[4] = "";
    int64_t amount = 0;
    store_stmt *s;
    int rc = store_prepare(pp->st,
                           "SELECT state, payer_mobile, payee_mobile, masked_name, "
                           "amount_minor, COALESCE(rrn, ''), COALESCE(response_code, '') "
                           "FROM phonepay_payment WHERE reference = $1",
                           &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, c->reference);
    rc = store_step(s, e);
    if (rc == STORE_ROW) {
        px_strlcpy(state, store_col_text(s, 0), sizeof state);
        px_strlcpy(payer, store_col_text(s, 1), sizeof payer);
        px_strlcpy(payee, store_col_text(s, 2), sizeof payee);
        px_strlcpy(name, store_col_text(s, 3), sizeof name);
        amount = store_col_int64(s, 4);
        px_strlcpy(old_rrn, store_col_text(s, 5), sizeof old_rrn);
        px_strlcpy(old_rc, store_col_text(s, 6), sizeof old_rc);
    }
    store_done(s);
    if (rc == STORE_DONE)
        return px_error_set(e, PX_ENOTFOUND, "payment %s: no such payment", c->reference);
    if (rc < 0)
        return rc;
    if (strcmp(state, "pending") != 0) /* the same answer again is fine */
        return strcmp(old_rrn, c->rrn) == 0 && strcmp(old_rc, c->rc) == 0
                   ? PX_OK
                   : px_error_set(e, PX_ECONFLICT, "payment %s: already %s", c->reference, state);
    px_time_format_utc(c->now_ms, "%Y-%m-%d", date, sizeof date);
    rc = store_prepare(pp->st,
                       "UPDATE phonepay_payment SET state = $2, response_code = $3, "
                       "rrn = $4, stan = $5, business_date = $6, updated_ms = $7 "
                       "WHERE reference = $1 AND state = 'pending'",
                       &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, c->reference);
    store_bind_text(s, 2, approved ? "approved" : "declined");
    store_bind_text(s, 3, c->rc);
    store_bind_text(s, 4, c->rrn);
    store_bind_text(s, 5, c->stan);
    store_bind_text(s, 6, approved ? date : NULL);
    store_bind_int64(s, 7, c->now_ms);
    rc = store_step(s, e);
    store_done(s);
    c->changed = 1;
    if (rc >= 0 && approved)
        return notify_payer(pp, c, payer, name, payee, amount, e);
    return rc < 0 ? rc : PX_OK;
}

int phonepay_payment_result(phonepay *pp, const char *reference, const char *rrn, const char *stan,
                            const char *response_code, px_error *e)
{
    result_ctx c = {reference, rrn, stan ? stan : "", response_code, px_now_ms(), 0};
    int rc;
    if (pp == NULL || reference == NULL || rrn == NULL || response_code == NULL ||
        strlen(response_code) != 2)
        return px_error_set(e, PX_EINVAL, "payment result: missing reference, RRN or code");
    if (strlen(rrn) != PHONEPAY_RRN_LEN)
        return px_error_set(e, PX_EINVAL, "payment result: RRN must be 12 characters");
    rc = phonepay_txn(pp, result_txn, &c, e);
    if (rc == PX_OK && c.changed)
        px_info(PHONEPAY_MOD, "payment %s: provider answered %s (RRN %s)", reference, response_code,
                rrn);
    return rc;
}

typedef struct reverse_ctx {
    const char *reference;
    int64_t now_ms;
    int reversed;
} reverse_ctx;

static int reverse_txn(phonepay *pp, void *ud, px_error *e)
{
    reverse_ctx *c = ud;
    store_stmt *s;
    int rc = store_prepare(pp->st, "SELECT state FROM phonepay_payment WHERE reference = $1", &s,
                           e);
    char state[16] = "";
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, c->reference);
    rc = store_step(s, e);
    if (rc == STORE_ROW)
        px_strlcpy(state, store_col_text(s, 0), sizeof state);
    store_done(s);
    if (rc < 0 || rc == STORE_DONE)
        return rc < 0 ? rc : PX_OK;
    if (strcmp(state, "crediting") == 0 || strcmp(state, "credited") == 0)
        return px_error_set(e, PX_ECONFLICT,
                            "payment %s: reversed after the payee credit was "
                            "sent: needs an operator",
                            c->reference);
    if (strcmp(state, "pending") != 0 && strcmp(state, "approved") != 0)
        return PX_OK;
    rc = store_prepare(pp->st,
                       "UPDATE phonepay_payment SET state = 'reversed', updated_ms = $2 "
                       "WHERE reference = $1",
                       &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, c->reference);
    store_bind_int64(s, 2, c->now_ms);
    rc = store_step(s, e);
    store_done(s);
    c->reversed = 1;
    return rc < 0 ? rc : PX_OK;
}

int phonepay_payment_reverse(phonepay *pp, const char *reference, px_error *e)
{
    reverse_ctx c = {reference, px_now_ms(), 0};
    int rc;
    if (pp == NULL || reference == NULL)
        return px_error_set(e, PX_EINVAL, "payment reverse: missing reference");
    rc = phonepay_txn(pp, reverse_txn, &c, e);
    if (rc == PX_OK && c.reversed)
        px_info(PHONEPAY_MOD, "payment %s reversed: it will not be credited", reference);
    else if (rc == PX_ECONFLICT)
        px_errorlog(PHONEPAY_MOD, "%s", px_error_text(e));
    return rc;
}
