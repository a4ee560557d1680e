/*
 * sale.c: card input and the card flows: purchase (3 = 000000), balance (310000) and void
 * (200000) as docs/switch-protocol.md section 1 lays them out.
 */
#include "device/pos/pos_int.h"
#include "crypto/pinblock.h"
#include "lib/hex.h"
#include "lib/str.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

/* ISO/IEC 7812-1 Annex B check digit. */
static int luhn_is_valid(const char *pan, size_t n)
{
    int sum = 0;
    for (size_t i = 0; i < n; i++) {
        int d = pan[n - 1 - i] - '0';
        if (i % 2 == 1 && (d *= 2) > 9)
            d -= 9;
        sum += d;
    }
    return sum % 10 == 0;
}

static int expiry_is_valid(const char *yymm)
{
    return strlen(yymm) == 4 && px_is_digits(yymm, 4) &&
           ((yymm[2] == '0' && yymm[3] >= '1') || (yymm[2] == '1' && yymm[3] <= '2'));
}

int pos_card_parse(const char *pan, const char *track2, const char *expiry, pos_card *out,
                   px_error *e)
{
    const char *sep;
    size_t n;
    memset(out, 0, sizeof *out);
    if ((pan == NULL) == (track2 == NULL))
        return px_error_set(e, PX_EINVAL, "card: give either a card number or track 2 data");
    if (track2 != NULL) {
        n = strlen(track2);
        sep = strchr(track2, '=');
        size_t after = sep != NULL ? n - (size_t)(sep + 1 - track2) : 0;
        if (n > 37 || sep == NULL || after < 4 || !px_is_digits(sep + 1, after))
            return px_error_set(e, PX_EINVAL, "track 2: expected PAN=YYMM... (digits, at most 37)");
        if (!expiry_is_valid((char[5]){sep[1], sep[2], sep[3], sep[4], 0}))
            return px_error_set(e, PX_EINVAL, "track 2: bad expiry date");
        memcpy(out->track2, track2, n + 1);
        pan = NULL;
        n = (size_t)(sep - track2);
        if (n >= sizeof out->pan)
            return px_error_set(e, PX_EINVAL, "track 2: card number longer than 19 digits");
        memcpy(out->pan, track2, n);
    } else {
        n = strlen(pan);
        if (n >= sizeof out->pan)
            return px_error_set(e, PX_EINVAL, "card number: 12 to 19 digits");
        memcpy(out->pan, pan, n + 1);
    }
    if (n < 12 || n > 19 || !px_is_digits(out->pan, n))
        return px_error_set(e, PX_EINVAL, "card number: 12 to 19 digits");
    if (!luhn_is_valid(out->pan, n))
        return px_error_set(e, PX_EINVAL, "card number: check digit wrong (mistyped?)");
    if (expiry != NULL && expiry[0] != 0) {
        if (track2 != NULL || !expiry_is_valid(expiry))
            return px_error_set(e, PX_EINVAL, "expiry: YYMM, for a typed card number");
        memcpy(out->expiry, expiry, 5);
    }
    return PX_OK;
}

static void res_begin(pos_terminal *t, pos_result *res, const pos_card *card, int64_t amount)
{
    memset(res, 0, sizeof *res);
    res->amount_minor = amount;
    snprintf(res->batch, sizeof res->batch, "%06u", t->st.batch);
    if (card != NULL)
        pos_mask_pan(card->pan, res->pan_masked);
}

/* Common body: checks, reversal first, STAN. 1 to go on. amount < 0: none (balance). */
static int begin_financial(pos_terminal *t, pos_result *res, int64_t amount, int adds, px_error *e)
{
    if (amount >= 0 && (amount < 1 || amount > POS_AMOUNT_MAX)) {
        pos_res_refused(res, "amount: 0.01 to 9999999999.99 CNY");
        return 0;
    }
    if (adds && t->st.ntxn >= PX_POS_BATCH_MAX) {
        pos_res_refused(res, "the batch is full (%d): settle first", PX_POS_BATCH_MAX);
        return 0;
    }
    int go = pos_prepare_financial(t, res, e);
    if (go == 1)
        snprintf(res->stan, sizeof res->stan, "%06u", pos_stan_next(&t->st));
    return go;
}

int pos_purchase(pos_terminal *t, const pos_card *card, int64_t amount_minor,
                 const uint8_t *pin_block, pos_result *res, px_error *e)
{
    int rc;
    res_begin(t, res, card, amount_minor);
    rc = begin_financial(t, res, amount_minor, 1, e);
    if (rc <= 0)
        return pos_msg_end(t, rc);
    rc = pos_msg_begin(t, "0200", t->st.stan, e);
    if (rc == PX_OK)
        rc = pos_msg_set_card(t, card, pin_block != NULL, e);
    if (rc == PX_OK)
        rc = pos_msg_set(t, 3, "000000", e);
    if (rc == PX_OK)
        rc = pos_msg_setf(t, e, 4, "%012lld", (long long)amount_minor);
    if (rc == PX_OK)
        rc = pos_msg_set(t, 49, "156", e);
    if (rc == PX_OK)
        rc = pos_msg_set_pin(t, pin_block, e);
    if (rc == PX_OK)
        rc = pos_msg_setf(t, e, 60, "22%06u000", t->st.batch);
    if (rc == PX_OK)
        rc = pos_txn_financial(t, 'S', card, res, e);
    return pos_msg_end(t, rc);
}

/* Field 54: account type n2, amount type n2, currency n3, C|D, amount n12. */
static void parse_balance(const char *f54, pos_result *res)
{
    int64_t v;
    if (strlen(f54) != 20 || (f54[7] != 'C' && f54[7] != 'D') ||
        px_parse_i64(f54 + 8, 0, POS_AMOUNT_MAX, &v) != PX_OK)
        return;
    res->has_balance = 1;
    res->balance_minor = f54[7] == 'D' ? -v : v;
}

int pos_balance(pos_terminal *t, const pos_card *card, const uint8_t *pin_block, pos_result *res,
                px_error *e)
{
    px_error why = {0};
    int sent = 0, rc;
    res_begin(t, res, card, 0);
    rc = begin_financial(t, res, -1, 0, e);
    if (rc <= 0)
        return pos_msg_end(t, rc);
    if ((rc = pos_state_save(t, e)) != PX_OK) /* the STAN */
        return pos_msg_end(t, rc);
    rc = pos_msg_begin(t, "0200", t->st.stan, e);
    if (rc == PX_OK)
        rc = pos_msg_set_card(t, card, pin_block != NULL, e);
    if (rc == PX_OK)
        rc = pos_msg_set(t, 3, "310000", e);
    if (rc == PX_OK)
        rc = pos_msg_set(t, 49, "156", e);
    if (rc == PX_OK)
        rc = pos_msg_set_pin(t, pin_block, e);
    if (rc == PX_OK)
        rc = pos_msg_setf(t, e, 60, "01%06u000", t->st.batch);
    if (rc != PX_OK)
        return pos_msg_end(t, rc);
    rc = pos_msg_exchange(t, POS_MAC, &sent, res, &why);
    if (rc != PX_OK) {
        pos_res_failed(t, res, rc, &why);
        return pos_msg_end(t, PX_OK);
    }
    pos_res_answer(t, res);
    if (res->outcome == POS_APPROVED)
        parse_balance(pos_rsp_get(t, 54), res);
    return pos_msg_end(t, pos_state_save(t, e));
}

/* The purchase a void names: same STAN and RRN, in the open batch, not yet voided
 * (contract, "Void": only a purchase of the open batch, once). */
static int find_original(pos_terminal *t, const char *rrn, const char *stan, pos_result *res)
{
    for (size_t i = 0; i < t->st.ntxn; i++) {
        const pos_txn *x = &t->st.txn[i];
        if (x->kind != 'S' || strcmp(x->stan, stan) != 0 || strcmp(x->rrn, rrn) != 0)
            continue;
        if (x->voided) {
            pos_res_refused(res, "STAN %s was already voided", stan);
            return -1;
        }
        return (int)i;
    }
    pos_res_refused(res, "no purchase with STAN %s and RRN %s in batch %06u", stan, rrn,
                    t->st.batch);
    return -1;
}

/* The card of the void: the one presented (it must be the sale's), else the sale's own
 * PAN as the PIN pad sealed it. */
static int void_card(pos_terminal *t, const pos_txn *x, const pos_card *given, pos_card *card,
                     pos_result *res, px_error *e)
{
    char masked[20];
    uint8_t sealed[POS_SEALED_HEX / 2];
    size_t n = 0, m = 0;
    if (given != NULL) {
        pos_mask_pan(given->pan, masked);
        if (strcmp(masked, x->pan_masked) != 0) {
            pos_res_refused(res, "this card is not the one of STAN %s", x->stan);
            return 0;
        }
        *card = *given;
        return 1;
    }
    memset(card, 0, sizeof *card);
    if (px_hex_decode(x->sealed_pan, sealed, sizeof sealed, &n) != PX_OK)
        return px_error_set(e, PX_EFORMAT, "state: sealed PAN of STAN %s is not hex", x->stan);
    int rc = pinpad_unseal(t->pp, sealed, n, (uint8_t *)card->pan, sizeof card->pan - 1, &m, e);
    return rc == PX_OK ? 1 : rc;
}

int pos_void(pos_terminal *t, const char *rrn, const char *stan, const pos_card *given,
             const uint8_t *pin_block, pos_result *res, px_error *e)
{
    pos_card card;
    int idx, rc;
    res_begin(t, res, given, 0);
    idx = find_original(t, rrn != NULL ? rrn : "", stan != NULL ? stan : "", res);
    if (idx < 0)
        return PX_OK;
    rc = void_card(t, &t->st.txn[idx], given, &card, res, e);
    if (rc <= 0)
        return rc;
    res_begin(t, res, &card, t->st.txn[idx].amount_minor);
    rc = begin_financial(t, res, res->amount_minor, 1, e);
    if (rc <= 0) {
        OPENSSL_cleanse(&card, sizeof card);
        return pos_msg_end(t, rc);
    }
    rc = pos_msg_begin(t, "0200", t->st.stan, e);
    if (rc == PX_OK)
        rc = pos_msg_set_card(t, &card, pin_block != NULL, e);
    if (rc == PX_OK)
        rc = pos_msg_set(t, 3, "200000", e);
    if (rc == PX_OK)
        rc = pos_msg_setf(t, e, 4, "%012lld", (long long)res->amount_minor);
    if (rc == PX_OK)
        rc = pos_msg_set(t, 37, rrn, e);
    if (rc == PX_OK)
        rc = pos_msg_set(t, 49, "156", e);
    if (rc == PX_OK)
        rc = pos_msg_set_pin(t, pin_block, e);
    if (rc == PX_OK)
        rc = pos_msg_setf(t, e, 60, "23%06u000", t->st.batch);
    if (rc == PX_OK)
        rc = pos_msg_setf(t, e, 61, "%06u%s", t->st.batch, stan);
    if (rc == PX_OK)
        rc = pos_txn_financial(t, 'V', &card, res, e);
    if (rc == PX_OK && res->outcome == POS_APPROVED) {
        t->st.txn[idx].voided = 1;
        rc = pos_state_save(t, e);
    }
    OPENSSL_cleanse(&card, sizeof card);
    return pos_msg_end(t, rc);
}
