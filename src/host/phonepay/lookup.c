/*
 * lookup.c: the POS side of seed 002 as the switch drives it: payee lookup with the masked
 * name ([0047]-[0048]), payment start with the contracted-BIN check and the payee's card
 * ([0050]-[0053]), the provider's answer and the payer's notification ([0054]).
 */
#include "lib/mobile_cn.h"
#include "host/phonepay/phonepay_int.h"
#include "crypto/crypto.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

/* What the payer reads on the terminal (field 63): Chinese first, then English. */
#define TXT_BAD_PAYEE "收款人手机号无效，请重新输入 / Payee mobile number is not valid, re-enter"
#define TXT_BAD_PAYER "付款人手机号无效，请重新输入 / Payer mobile number is not valid, re-enter"
#define TXT_NOT_REGISTERED "收款人未开通手机号收款 / Payee is not registered for mobile payment"
#define TXT_TOO_MANY "查询过于频繁，请稍后再试 / Too many lookups, try again later"
#define TXT_BAD_AMOUNT "金额无效 / Invalid amount"
#define TXT_AMOUNT_DIFFERS                                                                         \
    "金额与查询时不符，请重新查询 / Amount differs from the lookup, start again"
#define TXT_REF_INVALID "查询已失效，请重新输入收款人手机号 / Lookup expired or used, start again"
#define TXT_NO_ISSUER "付款卡所属银行不是签约银行 / card's bank is not a contracted bank"
#define TXT_APPROVED                                                                               \
    "付款成功，收款人将在对账后入账 / Paid; the payee is credited after reconciliation"

static void answer(char rc_out[3], char *text, size_t textsz, const char *rc, const char *t)
{
    px_strlcpy(rc_out, rc, 3);
    px_strlcpy(text, t, textsz);
}

typedef struct lookup_ctx {
    const char *tid, *payee, *payer;
    int64_t amount_minor, now_ms;
    phonepay_lookup_result *out;
} lookup_ctx;

/* Q4 when the terminal, its misses or the payee number are over their limits. Counts the
 * terminal's and the payee's hits (misses are counted once the payee is not found). */
static int check_limits(phonepay *pp, lookup_ctx *c, int *limited, px_error *e)
{
    char key[64];
    int64_t n;
    int rc;
    *limited = 1;
    snprintf(key, sizeof key, "t:%s", c->tid);
    if ((rc = phonepay_rate_hit(pp->st, key, c->now_ms, pp->cfg.rate_window_ms, &n, e)) != PX_OK)
        return rc;
    if (n > pp->cfg.terminal_lookups_max)
        return PX_OK;
    snprintf(key, sizeof key, "m:%s", c->tid);
    if ((rc = phonepay_rate_peek(pp->st, key, c->now_ms, pp->cfg.rate_window_ms, &n, e)) != PX_OK)
        return rc;
    if (n >= pp->cfg.terminal_misses_max)
        return PX_OK;
    snprintf(key, sizeof key, "p:%s", c->payee);
    if ((rc = phonepay_rate_hit(pp->st, key, c->now_ms, pp->cfg.rate_window_ms, &n, e)) != PX_OK)
        return rc;
    *limited = n > pp->cfg.payee_lookups_max;
    return PX_OK;
}

/* The active payee's name, masked; PX_ENOTFOUND when there is none. */
static int payee_masked_name(phonepay *pp, const char *mobile, char *out, size_t outsz, px_error *e)
{
    store_stmt *s;
    int rc = store_prepare(pp->st,
                           "SELECT name FROM phonepay_payee WHERE mobile = $1 AND "
                           "status = 'active'",
                           &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, mobile);
    rc = store_step(s, e);
    if (rc == STORE_ROW)
        rc = phonepay_name_mask(store_col_text(s, 0), out, outsz) == PX_OK
                 ? PX_OK
                 : px_error_set(e, PX_EINTERNAL, "payee %s: stored name does not mask", mobile);
    else if (rc == STORE_DONE)
        rc = PX_ENOTFOUND;
    store_done(s);
    return rc;
}

/* A fresh 12-digit reference stored with the lookup; retried on the rare collision. */
static int store_reference(phonepay *pp, lookup_ctx *c, px_error *e)
{
    for (int tries = 0; tries < 8; tries++) {
        uint8_t r[8];
        uint64_t v = 0;
        store_stmt *s;
        int rc = crypto_random(r, sizeof r, e);
        if (rc != PX_OK)
            return rc;
        for (size_t i = 0; i < sizeof r; i++)
            v = (v << 8) | r[i];
        snprintf(c->out->reference, sizeof c->out->reference, "%012llu",
                 (unsigned long long)(v % 1000000000000ULL));
        rc = store_prepare(pp->st,
                           "INSERT INTO phonepay_lookup (reference, tid, payee_mobile, "
                           "payer_mobile, amount_minor, masked_name, created_ms, expires_ms) "
                           "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING "
                           "RETURNING reference",
                           &s, e);
        if (rc != PX_OK)
            return rc;
        store_bind_text(s, 1, c->out->reference);
        store_bind_text(s, 2, c->tid);
        store_bind_text(s, 3, c->payee);
        store_bind_text(s, 4, c->payer);
        store_bind_int64(s, 5, c->amount_minor);
        store_bind_text(s, 6, c->out->masked_name);
        store_bind_int64(s, 7, c->now_ms);
        store_bind_int64(s, 8, c->now_ms + pp->cfg.lookup_ttl_ms);
        rc = store_step(s, e);
        store_done(s);
        if (rc != STORE_DONE)
            return rc < 0 ? rc : PX_OK;
    }
    return px_error_set(e, PX_EINTERNAL, "lookup: no free reference after 8 tries");
}

static int lookup_txn(phonepay *pp, void *ud, px_error *e)
{
    lookup_ctx *c = ud;
    phonepay_lookup_result *o = c->out;
    char key[64];
    int64_t n;
    int limited, rc = check_limits(pp, c, &limited, e);
    memset(o, 0, sizeof *o);
    if (rc != PX_OK)
        return rc;
    if (limited) {
        answer(o->response_code, o->text, sizeof o->text, PHONEPAY_RC_TOO_MANY, TXT_TOO_MANY);
        return PX_OK;
    }
    rc = payee_masked_name(pp, c->payee, o->masked_name, sizeof o->masked_name, e);
    if (rc == PX_ENOTFOUND) {
        snprintf(key, sizeof key, "m:%s", c->tid);
        answer(o->response_code, o->text, sizeof o->text, PHONEPAY_RC_NOT_REGISTERED,
               TXT_NOT_REGISTERED);
        return phonepay_rate_hit(pp->st, key, c->now_ms, pp->cfg.rate_window_ms, &n, e);
    }
    if (rc == PX_OK)
        rc = store_reference(pp, c, e);
    if (rc == PX_OK)
        px_strlcpy(o->response_code, PHONEPAY_RC_APPROVED, sizeof o->response_code);
    return rc;
}

int phonepay_lookup(phonepay *pp, const char *tid, const char *payee_mobile,
                    const char *payer_mobile, int64_t amount_minor, phonepay_lookup_result *out,
                    px_error *e)
{
    lookup_ctx c = {tid, payee_mobile, payer_mobile, amount_minor, px_now_ms(), out};
    char m1[PHONEPAY_MOBILE_LEN + 1];
    int rc;
    memset(out, 0, sizeof *out);
    if (pp == NULL || tid == NULL || tid[0] == 0 || strlen(tid) > 16)
        return px_error_set(e, PX_EINVAL, "lookup: no phonepay or no terminal id");
    if (!px_mobile_cn_is_valid(payee_mobile, payee_mobile ? strlen(payee_mobile) : 0, NULL))
        answer(out->response_code, out->text, sizeof out->text, PHONEPAY_RC_BAD_MOBILE,
               TXT_BAD_PAYEE);
    else if (!px_mobile_cn_is_valid(payer_mobile, payer_mobile ? strlen(payer_mobile) : 0, NULL))
        answer(out->response_code, out->text, sizeof out->text, PHONEPAY_RC_BAD_MOBILE,
               TXT_BAD_PAYER);
    else if (amount_minor <= 0 || amount_minor > 999999999999LL)
        answer(out->response_code, out->text, sizeof out->text, PHONEPAY_RC_INVALID_AMOUNT,
               TXT_BAD_AMOUNT);
    if (out->response_code[0] != 0) {
        phonepay_count_answer("lookup", out->response_code);
        return PX_OK;
    }
    rc = phonepay_txn(pp, lookup_txn, &c, e);
    if (rc != PX_OK) {
        memset(out, 0, sizeof *out);
        return rc;
    }
    phonepay_count_answer("lookup", out->response_code);
    phonepay_mobile_mask(payee_mobile, m1);
    px_info(PHONEPAY_MOD, "lookup by %s for %s: %s", tid, m1, out->response_code);
    return PX_OK;
}
