/*
 * flows.c: network management and the batch (docs/switch-protocol.md section 1): sign-on
 * (0800, 60.3 = 003) with the work keys of field 62, sign-off (0820, 002), echo (0820,
 * 301), settlement (0500, 60.3 = 201) and the batch upload (0320, 201 then 202) that
 * follows a "not balanced" answer.
 */
#include "device/pos/pos_int.h"
#include "lib/log.h"
#include "lib/str.h"

#include <stdio.h>
#include <string.h>

static void res_begin(pos_terminal *t, pos_result *res)
{
    memset(res, 0, sizeof *res);
    snprintf(res->batch, sizeof res->batch, "%06u", t->st.batch);
}

/* Take a STAN, save it, and begin a request with field 60 = type, batch, network code. */
static int begin_req(pos_terminal *t, const char *mti, const char *type, const char *code,
                     pos_result *res, px_error *e)
{
    int rc;
    snprintf(res->stan, sizeof res->stan, "%06u", pos_stan_next(&t->st));
    rc = pos_state_save(t, e);
    if (rc == PX_OK)
        rc = pos_msg_begin(t, mti, t->st.stan, e);
    if (rc == PX_OK)
        rc = pos_msg_setf(t, e, 60, "%s%06u%s", type, t->st.batch, code);
    return rc;
}

/* Exchange; on failure fill res (FAILED). 1 answered, 0 failed, <0 local error. */
static int ask(pos_terminal *t, int mac, pos_result *res)
{
    px_error why = {0};
    int sent = 0, rc = pos_msg_exchange(t, mac, &sent, res, &why);
    if (rc != PX_OK) {
        pos_res_failed(t, res, rc, &why);
        return 0;
    }
    pos_res_answer(t, res);
    return 1;
}

/* The approved sign-on: keys into the PIN pad (all or none), then the new batch (60.2). */
static int signon_apply(pos_terminal *t, int force, pos_result *res, px_error *e)
{
    const uint8_t *f62 = NULL;
    const char *f60 = pos_rsp_get(t, 60);
    size_t n = 0;
    int64_t batch = 0;
    px_error why = {0};
    int rc;
    if (strlen(f60) < 8 ||
        px_parse_i64((char[7]){f60[2], f60[3], f60[4], f60[5], f60[6], f60[7], 0}, 1, 999999,
                     &batch) != PX_OK) {
        res->outcome = POS_FAILED;
        px_strlcpy(res->text, "sign-on answer: field 60 carries no batch number", sizeof res->text);
        return PX_OK;
    }
    (void)iso8583_get(&t->rsp, 62, &f62, &n);
    if (pinpad_install_work_keys(t->pp, f62, n, &why) != PX_OK) {
        res->outcome = POS_FAILED;
        t->st.signed_on = 0;
        snprintf(res->text, sizeof res->text, "work keys refused: %s", px_error_text(&why));
        return PX_OK;
    }
    if (force && t->st.ntxn > 0) {
        px_warn("pos", "terminal %s: batch %06u dropped unsettled at sign-on (%zu transactions)",
                t->cfg.tid, t->st.batch, t->st.ntxn);
        if ((rc = pos_state_write_batch_file(t, e)) != PX_OK)
            return rc;
        t->st.ntxn = 0;
    }
    t->st.batch = (uint32_t)batch;
    t->st.signed_on = 1;
    res->resign_required = 0;
    snprintf(res->batch, sizeof res->batch, "%06u", t->st.batch);
    snprintf(res->text, sizeof res->text, "signed on, batch %06u open", t->st.batch);
    return PX_OK;
}

int pos_signon(pos_terminal *t, int force, pos_result *res, px_error *e)
{
    int rc;
    res_begin(t, res);
    if (!pinpad_has_key(t->pp, PINPAD_TMK)) {
        pos_res_refused(res, "no TMK in the PIN pad: load one first");
        return PX_OK;
    }
    if (t->st.ntxn > 0 && !force) {
        pos_res_refused(res, "batch %06u holds %zu transactions not settled: settle first",
                        t->st.batch, t->st.ntxn);
        return PX_OK;
    }
    rc = begin_req(t, "0800", "00", "003", res, e);
    if (rc == PX_OK)
        rc = pos_msg_set(t, 63, "01 ", e);
    if (rc != PX_OK)
        return pos_msg_end(t, rc);
    rc = ask(t, POS_NOMAC, res);
    if (rc == 1 && res->outcome == POS_APPROVED)
        rc = signon_apply(t, force, res, e);
    if (rc >= 0)
        rc = pos_state_save(t, e);
    return pos_msg_end(t, rc);
}

int pos_signoff(pos_terminal *t, pos_result *res, px_error *e)
{
    int rc;
    res_begin(t, res);
    rc = begin_req(t, "0820", "00", "002", res, e);
    if (rc == PX_OK)
        rc = ask(t, POS_NOMAC, res);
    if (rc == 1 && res->outcome == POS_APPROVED) {
        rc = pinpad_wipe_work_keys(t->pp, e);
        t->st.signed_on = 0;
        px_strlcpy(res->text, "signed off; work keys erased", sizeof res->text);
    }
    if (rc >= 0)
        rc = pos_state_save(t, e);
    return pos_msg_end(t, rc);
}

int pos_echo(pos_terminal *t, pos_result *res, px_error *e)
{
    int rc;
    res_begin(t, res);
    rc = begin_req(t, "0820", "00", "301", res, e);
    if (rc == PX_OK)
        rc = ask(t, POS_NOMAC, res);
    if (rc >= 0)
        rc = pos_state_save(t, e);
    return pos_msg_end(t, rc);
}

/* ---- settlement ------------------------------------------------------------------------ */

/* The batch's totals as docs/switch-protocol.md defines them for 0500: debits are the
 * approved purchases and mobile-number payments (voided or not), credits the approved voids. */
static void batch_totals(const pos_state *st, size_t *count, int64_t *minor, size_t *ccount,
                         int64_t *cminor)
{
    *count = *ccount = 0;
    *minor = *cminor = 0;
    for (size_t i = 0; i < st->ntxn; i++) {
        if (st->txn[i].kind == 'V') {
            (*ccount)++;
            *cminor += st->txn[i].amount_minor;
        } else {
            (*count)++;
            *minor += st->txn[i].amount_minor;
        }
    }
}

/* 0320s of up to PX_POS_UPLOAD_PER_MSG entries: STAN n6, amount n12, processing code n6;
 * 60.3 = 201, the last 202. 1 done, 0 failed (res says why), <0 local error. */
static int batch_upload(pos_terminal *t, pos_result *res, px_error *e)
{
    pos_result one;
    for (size_t i = 0; i < t->st.ntxn; i += PX_POS_UPLOAD_PER_MSG) {
        size_t n = t->st.ntxn - i < PX_POS_UPLOAD_PER_MSG ? t->st.ntxn - i : PX_POS_UPLOAD_PER_MSG;
        char f48[2 + PX_POS_UPLOAD_PER_MSG * 24 + 1];
        int rc, last = i + n >= t->st.ntxn;
        snprintf(f48, sizeof f48, "%02zu", n);
        for (size_t k = 0; k < n; k++) {
            const pos_txn *x = &t->st.txn[i + k];
            snprintf(f48 + 2 + 24 * k, sizeof f48 - 2 - 24 * k, "%s%012lld%s", x->stan,
                     (long long)x->amount_minor, x->proc);
        }
        memset(&one, 0, sizeof one);
        rc = begin_req(t, "0320", "00", last ? "202" : "201", &one, e);
        if (rc == PX_OK)
            rc = pos_msg_set(t, 48, f48, e);
        if (rc == PX_OK)
            rc = ask(t, POS_MAC, &one);
        if (rc < 0)
            return rc;
        if (rc == 0 || one.outcome != POS_APPROVED) {
            snprintf(res->text, sizeof res->text, "batch upload stopped after %zu of %zu: %s", i,
                     t->st.ntxn, one.text);
            return 0;
        }
        res->uploaded = i + n;
    }
    return 1;
}

/* The platform's verdict (field 48 of 0510, position 31 of the domestic totals). */
static int settle_close(pos_terminal *t, pos_result *res, size_t count, int64_t minor, px_error *e)
{
    const char *f48 = pos_rsp_get(t, 48);
    char amt[32];
    int rc;
    res->settle_balanced = strlen(f48) >= 31 && f48[30] == '1';
    if (!res->settle_balanced && (rc = batch_upload(t, res, e)) < 0)
        return rc;
    pos_amount_format(minor, amt, sizeof amt);
    if (res->settle_balanced)
        snprintf(res->text, sizeof res->text, "batch %06u settled, balanced: %zu debits, %s CNY",
                 t->st.batch, count, amt);
    else if (res->uploaded == t->st.ntxn)
        snprintf(res->text, sizeof res->text,
                 "batch %06u settled, NOT balanced: %zu "
                 "transactions uploaded for the platform to reconcile",
                 t->st.batch, res->uploaded);
    rc = pos_state_write_batch_file(t, e);
    if (rc != PX_OK)
        return rc;
    t->st.ntxn = 0;
    t->st.signed_on = 0; /* the batch is closed: the next sign-on opens another */
    return PX_OK;
}

int pos_settle(pos_terminal *t, pos_result *res, px_error *e)
{
    size_t count, ccount;
    int64_t minor, cminor;
    int rc;
    res_begin(t, res);
    rc = pos_prepare_financial(t, res, e);
    if (rc <= 0)
        return pos_msg_end(t, rc);
    batch_totals(&t->st, &count, &minor, &ccount, &cminor);
    res->amount_minor = minor;
    rc = begin_req(t, "0500", "00", "201", res, e);
    if (rc == PX_OK) /* domestic then foreign: count n3, amount n12 each side, result n1 */
        rc = pos_msg_setf(t, e, 48, "%03zu%012lld%03zu%012lld0%03d%012lld%03d%012lld0", count,
                          (long long)minor, ccount, (long long)cminor, 0, 0LL, 0, 0LL);
    if (rc == PX_OK)
        rc = pos_msg_set(t, 49, "156", e);
    if (rc == PX_OK)
        rc = ask(t, POS_MAC, res);
    if (rc == 1 && res->outcome == POS_APPROVED)
        rc = settle_close(t, res, count, minor, e);
    if (rc >= 0)
        rc = pos_state_save(t, e);
    return pos_msg_end(t, rc);
}

int pos_update_flag_clear(pos_terminal *t, px_error *e)
{
    t->st.update_waiting = 0;
    return pos_state_save(t, e);
}
