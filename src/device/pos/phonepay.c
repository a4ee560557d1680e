/*
 * phonepay.c: mobile-number payment (seed 002 [0047]-[0052]; docs/switch-protocol.md
 * section 1, "Mobile-number payment"): the payee lookup 0100 (3 = 380000, 60.1 = 81) that
 * returns the payee's masked name and a lookup reference, then, once the payer has
 * confirmed, the payment 0200 (3 = 480000, 60.1 = 82) with card and PIN.
 */
#include "lib/mobile_cn.h"
#include "device/pos/pos_int.h"
#include "lib/str.h"

#include <stdio.h>
#include <string.h>

/* Both numbers valid before anything is sent ([0047]: a bad number is refused here). */
static int numbers_are_valid(const char *payee, const char *payer, pos_result *res)
{
    const char *why = NULL;
    if (!px_mobile_cn_is_valid(payee, payee ? strlen(payee) : 0, &why)) {
        pos_res_refused(res, "payee mobile number: %s", why);
        return 0;
    }
    if (!px_mobile_cn_is_valid(payer, payer ? strlen(payer) : 0, &why)) {
        pos_res_refused(res, "payer mobile number: %s", why);
        return 0;
    }
    return 1;
}

/* Checks common to both steps; on 1 the STAN for the request is taken. */
static int begin(pos_terminal *t, const char *payee, const char *payer, int64_t amount, int adds,
                 pos_result *res, px_error *e)
{
    int go;
    memset(res, 0, sizeof *res);
    res->amount_minor = amount;
    snprintf(res->batch, sizeof res->batch, "%06u", t->st.batch);
    if (!numbers_are_valid(payee, payer, res))
        return 0;
    if (amount < 1 || amount > POS_AMOUNT_MAX) {
        pos_res_refused(res, "amount: 0.01 to 9999999999.99 CNY");
        return 0;
    }
    if (adds && t->st.ntxn >= PX_POS_BATCH_MAX) {
        pos_res_refused(res, "the batch is full (%d): settle first", PX_POS_BATCH_MAX);
        return 0;
    }
    go = pos_prepare_financial(t, res, e);
    if (go == 1)
        snprintf(res->stan, sizeof res->stan, "%06u", pos_stan_next(&t->st));
    return go;
}

int pos_phonepay_lookup(pos_terminal *t, const char *payee, const char *payer, int64_t amount_minor,
                        pos_result *res, px_error *e)
{
    px_error why = {0};
    int sent = 0, rc = begin(t, payee, payer, amount_minor, 0, res, e);
    if (rc <= 0)
        return pos_msg_end(t, rc);
    rc = pos_state_save(t, e);
    if (rc == PX_OK)
        rc = pos_msg_begin(t, "0100", t->st.stan, e);
    if (rc == PX_OK)
        rc = pos_msg_set(t, 3, "380000", e);
    if (rc == PX_OK)
        rc = pos_msg_setf(t, e, 4, "%012lld", (long long)amount_minor);
    if (rc == PX_OK)
        rc = pos_msg_setf(t, e, 48, "%s%s", payee, payer);
    if (rc == PX_OK)
        rc = pos_msg_setf(t, e, 60, "81%06u000", t->st.batch);
    if (rc != PX_OK)
        return pos_msg_end(t, rc);
    rc = pos_msg_exchange(t, POS_MAC, &sent, res, &why);
    if (rc != PX_OK) {
        pos_res_failed(t, res, rc, &why); /* nothing moved: no reversal */
        return pos_msg_end(t, PX_OK);
    }
    pos_res_answer(t, res);
    if (res->outcome == POS_APPROVED) {
        const char *ref = pos_rsp_get(t, 37);
        if (strlen(ref) != 12 || !px_is_digits(ref, 12)) {
            res->outcome = POS_FAILED;
            px_strlcpy(res->text, "the platform's lookup reference is not 12 digits",
                       sizeof res->text);
        } else {
            memcpy(res->lookup_ref, ref, 13);
            px_strlcpy(res->payee_name, res->text, sizeof res->payee_name);
        }
    }
    return pos_msg_end(t, pos_state_save(t, e));
}

int pos_phonepay_pay(pos_terminal *t, const char *payee, const char *payer, const char *lookup_ref,
                     int64_t amount_minor, const pos_card *card, const uint8_t *pin_block,
                     pos_result *res, px_error *e)
{
    int rc;
    if (lookup_ref == NULL || strlen(lookup_ref) != 12 || !px_is_digits(lookup_ref, 12)) {
        memset(res, 0, sizeof *res);
        pos_res_refused(res, "lookup reference: 12 digits from the payee lookup");
        return PX_OK;
    }
    rc = begin(t, payee, payer, amount_minor, 1, res, e);
    if (rc <= 0)
        return pos_msg_end(t, rc);
    pos_mask_pan(card->pan, res->pan_masked);
    rc = pos_msg_begin(t, "0200", t->st.stan, e);
    if (rc == PX_OK)
        rc = pos_msg_set_card(t, card, pin_block != NULL, e);
    if (rc == PX_OK)
        rc = pos_msg_set(t, 3, "480000", e);
    if (rc == PX_OK)
        rc = pos_msg_setf(t, e, 4, "%012lld", (long long)amount_minor);
    if (rc == PX_OK)
        rc = pos_msg_setf(t, e, 48, "%s%s%s", payee, payer, lookup_ref);
    if (rc == PX_OK)
        rc = pos_msg_set(t, 49, "156", e);
    if (rc == PX_OK)
        rc = pos_msg_set_pin(t, pin_block, e);
    if (rc == PX_OK)
        rc = pos_msg_setf(t, e, 60, "82%06u000", t->st.batch);
    if (rc == PX_OK)
        rc = pos_txn_financial(t, 'M', card, res, e);
    return pos_msg_end(t, rc);
}
