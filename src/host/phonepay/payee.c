/*
 * payee.c: the payee interface unit (21) and payee verification unit (25) of seed 002
 * ([0038], claims 1-2): registration of name, mobile number and bound card, card updates,
 * each confirmed by a one-time code sent to that number; and the sessions a confirmed code
 * opens for the payee's own queries.
 */
#include "lib/mobile_cn.h"
#include "host/phonepay/phonepay_int.h"
#include "crypto/crypto.h"
#include "lib/hex.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

static const char *const purpose_names[] = {"register", "card", "login"};

typedef struct payee_ctx {
    const char *name, *mobile, *card, *code;
    phonepay_otp_purpose purpose;
    int64_t now_ms;
    phonepay_payee_view *view;
    char *token; /* confirm: out */
    int result;  /* an answer decided inside a committed transaction */
    px_error *e;
} payee_ctx;

/* Check the inputs a caller sent; PX_EINVAL naming the field. */
static int check_inputs(const char *name, const char *mobile, const char *card, px_error *e)
{
    const char *why = NULL;
    if (!px_mobile_cn_is_valid(mobile, mobile ? strlen(mobile) : 0, &why))
        return px_error_set(e, PX_EINVAL, "mobile: %s", why);
    if (name != NULL && !phonepay_name_is_valid(name, &why))
        return px_error_set(e, PX_EINVAL, "name: %s", why);
    if (card != NULL && !phonepay_pan_is_valid(card))
        return px_error_set(e, PX_EINVAL,
                            "card: not a valid card number (12-19 digits with a "
                            "correct check digit)");
    return PX_OK;
}

/* The payee's status ("" when there is no row). */
static int payee_status(phonepay *pp, const char *mobile, char status[16], px_error *e)
{
    store_stmt *s;
    int rc = store_prepare(pp->st, "SELECT status FROM phonepay_payee WHERE mobile = $1", &s, e);
    status[0] = 0;
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, mobile);
    rc = store_step(s, e);
    if (rc == STORE_ROW)
        px_strlcpy(status, store_col_text(s, 0), 16);
    store_done(s);
    return rc < 0 ? rc : PX_OK;
}

/* A new challenge for c->mobile (replacing any open one), its code queued by SMS. card is
 * the sealed new card of a card change, else NULL. PX_ELIMIT past otp_sends_max. */
static int send_challenge(phonepay *pp, payee_ctx *c, const phonepay_card_sealed *card, px_error *e)
{
    char code[PHONEPAY_OTP_DIGITS + 1], key[64], text[PX_PHONEPAY_SMS_MAX];
    uint8_t salt[PHONEPAY_SALT_LEN], digest[PHONEPAY_MAC_LEN];
    int64_t sent;
    store_stmt *s;
    int rc;
    snprintf(key, sizeof key, "o:%s", c->mobile);
    if ((rc = phonepay_rate_hit(pp->st, key, c->now_ms, pp->cfg.otp_window_ms, &sent, e)) != PX_OK)
        return rc;
    if (sent > pp->cfg.otp_sends_max)
        return px_error_set(e, PX_ELIMIT, "too many codes sent to this number; try again later");
    if ((rc = phonepay_otp_new(pp, c->mobile, code, salt, digest, e)) != PX_OK)
        return rc;
    rc = store_prepare(pp->st,
                       "INSERT INTO phonepay_otp (mobile, purpose, salt, digest, attempts, "
                       "expires_ms, card_enc, card_mac, card_masked, created_ms) VALUES ($1, $2, "
                       "$3, $4, 0, $5, $6, $7, $8, $9) ON CONFLICT (mobile) DO UPDATE SET "
                       "purpose = excluded.purpose, salt = excluded.salt, digest = "
                       "excluded.digest, attempts = 0, expires_ms = excluded.expires_ms, "
                       "card_enc = excluded.card_enc, card_mac = excluded.card_mac, "
                       "card_masked = excluded.card_masked, created_ms = excluded.created_ms",
                       &s, e);
    if (rc == PX_OK) {
        store_bind_text(s, 1, c->mobile);
        store_bind_text(s, 2, purpose_names[c->purpose]);
        store_bind_blob(s, 3, salt, sizeof salt);
        store_bind_blob(s, 4, digest, sizeof digest);
        store_bind_int64(s, 5, c->now_ms + pp->cfg.otp_ttl_ms);
        if (card != NULL) {
            store_bind_blob(s, 6, card->enc, sizeof card->enc);
            store_bind_blob(s, 7, card->mac, sizeof card->mac);
            store_bind_text(s, 8, card->masked);
        } else {
            store_bind_null(s, 6);
            store_bind_null(s, 7);
            store_bind_null(s, 8);
        }
        store_bind_int64(s, 9, c->now_ms);
        rc = store_step(s, e);
        store_done(s);
    }
    snprintf(text, sizeof text, "%s验证码%s，%lld分钟内有效，用于手机号收款%s。请勿告诉他人。",
             pp->cfg.sms_signature, code, (long long)(pp->cfg.otp_ttl_ms / 60000),
             c->purpose == PHONEPAY_OTP_REGISTER ? "注册"
             : c->purpose == PHONEPAY_OTP_CARD   ? "换卡"
                                                 : "登录");
    if (rc >= 0 && (rc = crypto_random(salt, 6, e)) == PX_OK) { /* an id that names nobody */
        memcpy(key, "otp:", 4);
        px_hex_encode(salt, 6, key + 4);
    }
    if (rc >= 0)
        rc = phonepay_notify(pp, key, PHONEPAY_EV_OTP, c->mobile, text, c->now_ms, e);
    OPENSSL_cleanse(code, sizeof code);
    OPENSSL_cleanse(text, sizeof text);
    if (rc >= 0 && c->view != NULL)
        c->view->otp_expires_ms = c->now_ms + pp->cfg.otp_ttl_ms;
    return rc < 0 ? rc : PX_OK;
}

/* Fill the view from the stored payee (and the pending card change, if any). */
static int load_view(phonepay *pp, const char *mobile, phonepay_payee_view *v, px_error *e)
{
    store_stmt *s;
    int rc = store_prepare(pp->st,
                           "SELECT p.name, p.status, p.card_masked, p.created_ms, p.updated_ms, "
                           "o.card_masked, o.expires_ms FROM phonepay_payee p LEFT JOIN "
                           "phonepay_otp o ON o.mobile = p.mobile AND o.expires_ms > $2 "
                           "WHERE p.mobile = $1",
                           &s, e);
    int64_t keep = v->otp_expires_ms;
    memset(v, 0, sizeof *v);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, mobile);
    store_bind_int64(s, 2, px_now_ms());
    rc = store_step(s, e);
    if (rc == STORE_ROW) {
        px_strlcpy(v->mobile, mobile, sizeof v->mobile);
        px_strlcpy(v->name, store_col_text(s, 0), sizeof v->name);
        px_strlcpy(v->status, store_col_text(s, 1), sizeof v->status);
        px_strlcpy(v->card_masked, store_col_text(s, 2), sizeof v->card_masked);
        v->created_ms = store_col_int64(s, 3);
        v->updated_ms = store_col_int64(s, 4);
        if (!store_col_is_null(s, 5))
            px_strlcpy(v->pending_card_masked, store_col_text(s, 5), sizeof v->pending_card_masked);
        v->otp_expires_ms = store_col_is_null(s, 6) ? keep : store_col_int64(s, 6);
    }
    store_done(s);
    if (rc == STORE_DONE)
        return px_error_set(e, PX_ENOTFOUND, "mobile: no payee with this number");
    return rc < 0 ? rc : PX_OK;
}

static int register_txn(phonepay *pp, void *ud, px_error *e)
{
    payee_ctx *c = ud;
    phonepay_card_sealed card;
    char status[16];
    store_stmt *s;
    int rc = payee_status(pp, c->mobile, status, e);
    if (rc != PX_OK)
        return rc;
    if (status[0] && strcmp(status, "pending") != 0)
        return px_error_set(e, PX_EEXIST,
                            "mobile: already registered; change the card with "
                            "PUT /v1/payees/{mobile}/card");
    if ((rc = phonepay_card_seal(pp, c->mobile, c->card, &card, e)) != PX_OK)
        return rc;
    rc = store_prepare(pp->st,
                       "INSERT INTO phonepay_payee (mobile, name, status, card_enc, card_mac, "
                       "card_masked, created_ms, updated_ms) VALUES ($1, $2, 'pending', $3, $4, "
                       "$5, $6, $6) ON CONFLICT (mobile) DO UPDATE SET name = excluded.name, "
                       "card_enc = excluded.card_enc, card_mac = excluded.card_mac, "
                       "card_masked = excluded.card_masked, updated_ms = excluded.updated_ms",
                       &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, c->mobile);
    store_bind_text(s, 2, c->name);
    store_bind_blob(s, 3, card.enc, sizeof card.enc);
    store_bind_blob(s, 4, card.mac, sizeof card.mac);
    store_bind_text(s, 5, card.masked);
    store_bind_int64(s, 6, c->now_ms);
    rc = store_step(s, e);
    store_done(s);
    if (rc >= 0)
        rc = send_challenge(pp, c, NULL, e);
    return rc < 0 ? rc : load_view(pp, c->mobile, c->view, e);
}

int phonepay_payee_register(phonepay *pp, const char *name, const char *mobile, const char *card,
                            phonepay_payee_view *out, px_error *e)
{
    payee_ctx c = {.name = name,
                   .mobile = mobile,
                   .card = card,
                   .purpose = PHONEPAY_OTP_REGISTER,
                   .now_ms = px_now_ms(),
                   .view = out};
    char m[PHONEPAY_MOBILE_LEN + 1];
    int rc = check_inputs(name ? name : "", mobile, card ? card : "", e);
    memset(out, 0, sizeof *out);
    if (rc == PX_OK)
        rc = phonepay_txn(pp, register_txn, &c, e);
    if (rc == PX_OK) {
        phonepay_mobile_mask(mobile, m);
        px_info(PHONEPAY_MOD, "payee %s registered (pending confirmation)", m);
    }
    return rc;
}

/* A card change or a login: the payee must be active; a challenge goes to the number. */
static int challenge_txn(phonepay *pp, void *ud, px_error *e)
{
    payee_ctx *c = ud;
    phonepay_card_sealed card;
    char status[16];
    int rc = payee_status(pp, c->mobile, status, e);
    if (rc != PX_OK)
        return rc;
    if (strcmp(status, "active") != 0)
        return px_error_set(e, PX_ENOTFOUND, "mobile: no active payee with this number");
    if (c->purpose == PHONEPAY_OTP_CARD &&
        (rc = phonepay_card_seal(pp, c->mobile, c->card, &card, e)) != PX_OK)
        return rc;
    rc = send_challenge(pp, c, c->purpose == PHONEPAY_OTP_CARD ? &card : NULL, e);
    return rc != PX_OK ? rc : load_view(pp, c->mobile, c->view, e);
}

int phonepay_payee_card_update(phonepay *pp, const char *mobile, const char *card,
                               phonepay_payee_view *out, px_error *e)
{
    payee_ctx c = {.mobile = mobile,
                   .card = card,
                   .purpose = PHONEPAY_OTP_CARD,
                   .now_ms = px_now_ms(),
                   .view = out};
    int rc = check_inputs(NULL, mobile, card ? card : "", e);
    memset(out, 0, sizeof *out);
    return rc == PX_OK ? phonepay_txn(pp, challenge_txn, &c, e) : rc;
}

int phonepay_payee_login(phonepay *pp, const char *mobile, phonepay_payee_view *out, px_error *e)
{
    payee_ctx c = {
        .mobile = mobile, .purpose = PHONEPAY_OTP_LOGIN, .now_ms = px_now_ms(), .view = out};
    int rc = check_inputs(NULL, mobile, NULL, e);
    memset(out, 0, sizeof *out);
    return rc == PX_OK ? phonepay_txn(pp, challenge_txn, &c, e) : rc;
}

/* SHA-256 of the token text, as hex: what phonepay_session keeps. */
static int token_hash(const char *token, char out[65], px_error *e)
{
    unsigned char md[32];
    unsigned int n = 0;
    if (EVP_Digest(token, strlen(token), md, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return px_error_set(e, PX_ECRYPTO, "session: SHA-256 failed");
    px_hex_encode(md, 32, out);
    return PX_OK;
}

/* Open a session for c->mobile; the token goes to c->token (the only copy). */
static int open_session(phonepay *pp, payee_ctx *c, px_error *e)
{
    uint8_t raw[PHONEPAY_TOKEN_LEN];
    char hash[65];
    store_stmt *s;
    int rc = crypto_random(raw, sizeof raw, e);
    if (rc != PX_OK)
        return rc;
    px_hex_encode(raw, sizeof raw, c->token);
    OPENSSL_cleanse(raw, sizeof raw);
    if ((rc = token_hash(c->token, hash, e)) != PX_OK)
        return rc;
    rc = store_prepare(pp->st,
                       "INSERT INTO phonepay_session (token_hash, mobile, expires_ms, "
                       "created_ms) VALUES ($1, $2, $3, $4)",
                       &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, hash);
    store_bind_text(s, 2, c->mobile);
    store_bind_int64(s, 3, c->now_ms + pp->cfg.session_ttl_ms);
    store_bind_int64(s, 4, c->now_ms);
    rc = store_step(s, e);
    store_done(s);
    return rc < 0 ? rc : PX_OK;
}

/* Run one UPDATE of the payee c->mobile (bound as $1, now as $2). */
static int activate(phonepay *pp, payee_ctx *c, px_error *e)
{
    store_stmt *s;
    int rc = store_prepare(pp->st,
                           "UPDATE phonepay_payee SET status = 'active', updated_ms = $2 "
                           "WHERE mobile = $1 AND status = 'pending'",
                           &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, c->mobile);
    store_bind_int64(s, 2, c->now_ms);
    rc = store_step(s, e);
    store_done(s);
    return rc < 0 ? rc : PX_OK;
}

/* What a right code confirms: the registration, or the new card kept with the challenge
 * (otp is the challenge row: columns 5..7 are its sealed card). */
static int apply_confirmed(phonepay *pp, payee_ctx *c, const char *purpose, store_stmt *otp,
                           px_error *e)
{
    store_stmt *s;
    size_t el = 0, ml = 0;
    const uint8_t *enc, *mac;
    int rc;
    if (strcmp(purpose, "login") == 0)
        return PX_OK;
    if (strcmp(purpose, "register") == 0)
        return activate(pp, c, e);
    enc = store_col_blob(otp, 5, &el);
    mac = store_col_blob(otp, 6, &ml);
    if (enc == NULL || mac == NULL || store_col_is_null(otp, 7))
        return px_error_set(e, PX_EINTERNAL, "card change without a card");
    rc = store_prepare(pp->st,
                       "UPDATE phonepay_payee SET card_enc = $2, card_mac = $3, "
                       "card_masked = $4, updated_ms = $5 WHERE mobile = $1 AND "
                       "status = 'active'",
                       &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, c->mobile);
    store_bind_blob(s, 2, enc, el);
    store_bind_blob(s, 3, mac, ml);
    store_bind_text(s, 4, store_col_text(otp, 7));
    store_bind_int64(s, 5, c->now_ms);
    rc = store_step(s, e);
    store_done(s);
    return rc < 0 ? rc : PX_OK;
}

/* A wrong code: count it; the challenge dies at otp_attempts_max. */
static int count_wrong(phonepay *pp, payee_ctx *c, int64_t attempts, px_error *e)
{
    store_stmt *s;
    int dead = attempts + 1 >= pp->cfg.otp_attempts_max;
    int rc = store_prepare(pp->st,
                           dead ? "DELETE FROM phonepay_otp WHERE mobile = $1"
                                : "UPDATE phonepay_otp SET attempts = attempts + 1 "
                                  "WHERE mobile = $1",
                           &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, c->mobile);
    rc = store_step(s, e);
    store_done(s);
    if (rc < 0)
        return rc;
    c->result = dead ? px_error_set(c->e, PX_EAUTH, "wrong code; no tries left: ask for a new one")
                     : px_error_set(c->e, PX_EAUTH, "wrong code (%lld tries left)",
                                    (long long)(pp->cfg.otp_attempts_max - attempts - 1));
    return PX_OK;
}

static int confirm_txn(phonepay *pp, void *ud, px_error *e)
{
    payee_ctx *c = ud;
    char purpose[16] = "";
    size_t sl = 0, dl = 0;
    store_stmt *s;
    int rc = store_prepare(pp->st,
                           "SELECT purpose, salt, digest, attempts, expires_ms, card_enc, "
                           "card_mac, card_masked FROM phonepay_otp WHERE mobile = $1",
                           &s, e);
    c->result = PX_OK;
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, c->mobile);
    rc = store_step(s, e);
    if (rc == STORE_DONE ||
        (rc == STORE_ROW && (store_col_int64(s, 4) < c->now_ms ||
                             store_col_int64(s, 3) >= pp->cfg.otp_attempts_max))) {
        c->result = px_error_set(c->e, PX_ENOTFOUND,
                                 "no code pending for this number, or it "
                                 "expired: ask for a new one");
        rc = PX_OK;
    } else if (rc == STORE_ROW) {
        const uint8_t *salt = store_col_blob(s, 1, &sl), *digest = store_col_blob(s, 2, &dl);
        px_strlcpy(purpose, store_col_text(s, 0), sizeof purpose);
        rc = phonepay_otp_check(pp, c->mobile, c->code, salt, sl, digest, dl, c->e);
        if (rc == PX_EAUTH || rc == PX_EFORMAT)
            rc = rc == PX_EAUTH ? count_wrong(pp, c, store_col_int64(s, 3), e)
                                : (c->result = PX_EFORMAT, PX_OK);
        else if (rc == PX_OK)
            rc = apply_confirmed(pp, c, purpose, s, e);
    }
    store_done(s);
    if (rc < 0 || c->result != PX_OK)
        return rc < 0 ? rc : PX_OK;
    rc = store_prepare(pp->st, "DELETE FROM phonepay_otp WHERE mobile = $1", &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, c->mobile);
    rc = store_step(s, e);
    store_done(s);
    if (rc >= 0)
        rc = open_session(pp, c, e);
    return rc < 0 ? rc : load_view(pp, c->mobile, c->view, e);
}

int phonepay_payee_confirm(phonepay *pp, const char *mobile, const char *code,
                           phonepay_payee_view *out, char token[2 * PHONEPAY_TOKEN_LEN + 1],
                           px_error *e)
{
    px_error why = {0};
    payee_ctx c = {.mobile = mobile,
                   .code = code,
                   .now_ms = px_now_ms(),
                   .view = out,
                   .token = token,
                   .e = &why};
    char m[PHONEPAY_MOBILE_LEN + 1];
    int rc = check_inputs(NULL, mobile, NULL, e);
    memset(out, 0, sizeof *out);
    token[0] = 0;
    if (rc == PX_OK && (code == NULL || strlen(code) != PHONEPAY_OTP_DIGITS ||
                        !px_is_digits(code, PHONEPAY_OTP_DIGITS)))
        rc = px_error_set(e, PX_EINVAL, "code: expected 6 digits");
    if (rc == PX_OK)
        rc = phonepay_txn(pp, confirm_txn, &c, e);
    if (rc == PX_OK && c.result != PX_OK) {
        if (e != NULL)
            *e = why;
        rc = c.result;
    }
    if (rc != PX_OK) {
        OPENSSL_cleanse(token, 2 * PHONEPAY_TOKEN_LEN + 1);
        return rc;
    }
    phonepay_mobile_mask(mobile, m);
    px_info(PHONEPAY_MOD, "payee %s confirmed a code (%s)", m, out->status);
    return PX_OK;
}

int phonepay_session_check(phonepay *pp, const char *mobile, const char *token, px_error *e)
{
    char hash[65];
    store_stmt *s;
    int rc, owner;
    if (token == NULL || strlen(token) != 2 * PHONEPAY_TOKEN_LEN ||
        !px_hex_is_valid(token, 2 * PHONEPAY_TOKEN_LEN))
        return px_error_set(e, PX_EAUTH, "a bearer token from a confirmed code is required");
    if ((rc = token_hash(token, hash, e)) != PX_OK)
        return rc;
    rc = store_prepare(pp->st,
                       "SELECT mobile FROM phonepay_session WHERE token_hash = $1 AND "
                       "expires_ms > $2",
                       &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, hash);
    store_bind_int64(s, 2, px_now_ms());
    rc = store_step(s, e);
    owner = rc == STORE_ROW && strcmp(store_col_text(s, 0), mobile) == 0;
    store_done(s);
    if (rc < 0)
        return rc;
    if (rc == STORE_DONE)
        return px_error_set(e, PX_EAUTH, "bearer token unknown or expired");
    return owner ? PX_OK : px_error_set(e, PX_EPERM, "this token belongs to another number");
}

int phonepay_payee_get(phonepay *pp, const char *mobile, phonepay_payee_view *out, px_error *e)
{
    memset(out, 0, sizeof *out);
    return load_view(pp, mobile, out, e);
}
