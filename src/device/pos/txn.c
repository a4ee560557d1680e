/*
 * txn.c: financial flows (docs/switch-protocol.md section 1: purchase, balance, void,
 * reversal). The rule that keeps money safe: the reversal of a request is written to the
 * state file BEFORE the request leaves, and cleared only by a verified answer. A timeout
 * leaves it (reason 98), an answer whose MAC fails turns it to A0, and it goes out again
 * before the next transaction until the platform answers it.
 */
#include "device/pos/pos_int.h"
#include "lib/hex.h"
#include "lib/log.h"
#include "lib/str.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void pos_mask_pan(const char *pan, char out[20])
{
    px_mask_pan(pan, out, 20);
}

void pos_res_refused(pos_result *res, const char *fmt, ...)
{
    va_list ap;
    res->outcome = POS_REFUSED;
    va_start(ap, fmt);
    vsnprintf(res->text, sizeof res->text, fmt, ap);
    va_end(ap);
}

void pos_res_failed(pos_terminal *t, pos_result *res, int rc, const px_error *why)
{
    res->outcome = POS_FAILED;
    res->rsp_code[0] = 0;
    res->reversal_pending = t->st.rev.pending;
    snprintf(res->text, sizeof res->text, "%s%s",
             why != NULL ? px_error_text(why) : px_strerror(rc),
             t->st.rev.pending ? "; a reversal is queued" : "");
}

/* Copy platform text (field 63) for a screen: printable ASCII and whole UTF-8 sequences. */
static void copy_text(char *out, size_t cap, const char *in)
{
    size_t o = 0;
    for (size_t i = 0; in[i] != 0;) {
        unsigned char c = (unsigned char)in[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        size_t k = 1;
        while (len > 1 && k < len && ((unsigned char)in[i + k] >> 6) == 2)
            k++;
        if (len == 0 || k != len || (len == 1 && (c < 0x20 || c == 0x7F))) {
            i++;
            continue;
        }
        if (o + len >= cap)
            break;
        memcpy(out + o, in + i, len);
        o += len;
        i += len;
    }
    out[o] = 0;
}

/* Fill res from the verified answer in t->rsp and act on what it asks of the terminal. */
void pos_res_answer(pos_terminal *t, pos_result *res)
{
    const char *code = res->rsp_code;
    res->outcome = strcmp(code, "00") == 0 ? POS_APPROVED : POS_DECLINED;
    px_strlcpy(res->rrn, pos_rsp_get(t, 37), sizeof res->rrn);
    px_strlcpy(res->auth_code, pos_rsp_get(t, 38), sizeof res->auth_code);
    copy_text(res->text, sizeof res->text, pos_rsp_get(t, 63));
    if (res->text[0] == 0)
        px_strlcpy(res->text, pos_rsp_text(code), sizeof res->text);
    t->st.last_proc_req = res->proc_req;
    if (res->proc_req == 6)
        t->st.update_waiting = 1;
    if (res->proc_req == 3 || strcmp(code, "77") == 0 || strcmp(code, "A0") == 0) {
        t->st.signed_on = 0; /* keys or batch must change: sign on before the next one */
        res->resign_required = 1;
    }
    res->update_waiting = t->st.update_waiting;
}

/* ---- reversal ------------------------------------------------------------------------ */

static int seal_hex(pos_terminal *t, const char *clear, char *out, size_t cap, px_error *e)
{
    uint8_t sealed[64 + PINPAD_SEAL_OVERHEAD];
    size_t n = 0;
    int rc = pinpad_seal(t->pp, (const uint8_t *)clear, strlen(clear), sealed, sizeof sealed, &n,
                         e);
    if (rc == PX_OK && 2 * n + 1 > cap)
        rc = px_error_set(e, PX_ETOOBIG, "sealed card data too long");
    if (rc == PX_OK)
        px_hex_encode(sealed, n, out);
    return rc;
}

static int unseal_hex(pos_terminal *t, const char *hex, char *out, size_t cap, px_error *e)
{
    uint8_t sealed[POS_SEALED_HEX / 2];
    size_t n = 0, m = 0;
    int rc = px_hex_decode(hex, sealed, sizeof sealed, &n);
    if (rc != PX_OK)
        return px_error_set(e, PX_EFORMAT, "sealed card data is not hex");
    rc = pinpad_unseal(t->pp, sealed, n, (uint8_t *)out, cap - 1, &m, e);
    out[rc == PX_OK ? m : 0] = 0;
    return rc;
}

/* The reversal record of the request in t->req, pending with reason 98 until answered. */
static int reversal_record(pos_terminal *t, char kind, const pos_card *card, px_error *e)
{
    pos_reversal *r = &t->st.rev;
    const uint8_t *p;
    size_t n;
    memset(r, 0, sizeof *r);
    r->kind = kind;
    memcpy(r->reason, "98", 3);
    px_strlcpy(r->proc, iso8583_get(&t->req, 3, &p, &n) == PX_OK ? (const char *)p : "",
               sizeof r->proc);
    px_strlcpy(r->amount, iso8583_get(&t->req, 4, &p, &n) == PX_OK ? (const char *)p : "",
               sizeof r->amount);
    px_strlcpy(r->stan, iso8583_get(&t->req, 11, &p, &n) == PX_OK ? (const char *)p : "",
               sizeof r->stan);
    px_strlcpy(r->entry, iso8583_get(&t->req, 22, &p, &n) == PX_OK ? (const char *)p : "",
               sizeof r->entry);
    px_strlcpy(r->f60, iso8583_get(&t->req, 60, &p, &n) == PX_OK ? (const char *)p : "",
               sizeof r->f60);
    r->is_track = card->track2[0] != 0;
    r->pending = 1;
    return seal_hex(t, r->is_track ? card->track2 : card->pan, r->sealed, sizeof r->sealed, e);
}

/* Build the 0400 of the pending reversal: the original's 2/35, 3, 4, 11, 22, 25, 41, 42,
 * 49, 60 and 39 = the reason. */
static int reversal_build(pos_terminal *t, px_error *e)
{
    const pos_reversal *r = &t->st.rev;
    char card[40];
    int64_t stan = 0;
    int rc = px_parse_i64(r->stan, 1, POS_STAN_MAX, &stan);
    if (rc != PX_OK)
        return px_error_set(e, PX_EFORMAT, "reversal: bad STAN");
    rc = pos_msg_begin(t, "0400", (uint32_t)stan, e);
    if (rc == PX_OK)
        rc = unseal_hex(t, r->sealed, card, sizeof card, e);
    if (rc == PX_OK)
        rc = pos_msg_set(t, r->is_track ? 35 : 2, card, e);
    OPENSSL_cleanse(card, sizeof card);
    if (rc == PX_OK)
        rc = pos_msg_set(t, 3, r->proc, e);
    if (rc == PX_OK && r->amount[0] != 0)
        rc = pos_msg_set(t, 4, r->amount, e);
    if (rc == PX_OK)
        rc = pos_msg_set(t, 22, r->entry, e);
    if (rc == PX_OK)
        rc = pos_msg_set(t, 25, "00", e);
    if (rc == PX_OK)
        rc = pos_msg_set(t, 39, r->reason, e);
    if (rc == PX_OK)
        rc = pos_msg_set(t, 49, "156", e);
    if (rc == PX_OK)
        rc = pos_msg_set(t, 60, r->f60, e);
    return rc;
}

/* One send of the pending reversal. 1: answered and cleared; 0: still pending (*stop when
 * another try now is pointless: the platform wants a sign-on first); <0: local error. */
static int reversal_send_once(pos_terminal *t, int *stop, px_error *e)
{
    pos_result rr = {0};
    px_error why = {0};
    int sent = 0, rc = reversal_build(t, e);
    if (rc == PX_OK) {
        t->st.rev.sends++;
        rc = pos_state_save(t, e);
    }
    if (rc != PX_OK) {
        iso8583_msg_cleanse(&t->req);
        return rc;
    }
    rc = pos_msg_exchange(t, POS_MAC, &sent, &rr, &why);
    iso8583_msg_cleanse(&t->req);
    if (rc != PX_OK) {
        px_warn("pos", "terminal %s: reversal of STAN %s: %s", t->cfg.tid, t->st.rev.stan,
                px_error_text(&why));
        *stop = !sent;
        return 0;
    }
    pos_res_answer(t, &rr);
    if (strcmp(rr.rsp_code, "00") != 0 && strcmp(rr.rsp_code, "25") != 0) {
        px_warn("pos", "terminal %s: reversal of STAN %s answered %s", t->cfg.tid, t->st.rev.stan,
                rr.rsp_code);
        *stop = 1;
        rc = pos_state_save(t, e);
        return rc == PX_OK ? 0 : rc;
    }
    px_info("pos", "terminal %s: reversal of STAN %s answered %s", t->cfg.tid, t->st.rev.stan,
            rr.rsp_code);
    memset(&t->st.rev, 0, sizeof t->st.rev);
    rc = pos_state_save(t, e);
    return rc == PX_OK ? 1 : rc;
}

int pos_reversal_flush(pos_terminal *t, pos_result *res, px_error *e)
{
    int stop = 0, got = 0;
    memset(res, 0, sizeof *res);
    if (!t->st.rev.pending) {
        res->outcome = POS_APPROVED;
        px_strlcpy(res->text, "no reversal pending", sizeof res->text);
        return PX_OK;
    }
    px_strlcpy(res->stan, t->st.rev.stan, sizeof res->stan);
    for (int i = 0; i < PX_POS_REVERSAL_SENDS && got == 0 && !stop; i++)
        got = reversal_send_once(t, &stop, e);
    if (got < 0)
        return got;
    res->reversal_pending = t->st.rev.pending;
    res->outcome = got == 1 ? POS_APPROVED : POS_FAILED;
    snprintf(res->text, sizeof res->text,
             got == 1 ? "reversal of STAN %s accepted"
                      : "reversal of STAN %s still unanswered (%d sends); it will be sent again",
             res->stan, t->st.rev.sends);
    return PX_OK;
}

/* Before any MACed request: signed on, keys present, and no reversal left unanswered.
 * 1: go ahead; 0: res says why not; <0: local error. */
int pos_prepare_financial(pos_terminal *t, pos_result *res, px_error *e)
{
    pos_result rr;
    int rc;
    if (!t->st.signed_on) {
        pos_res_refused(res, "not signed on: sign on first");
        return 0;
    }
    if (!pinpad_has_key(t->pp, PINPAD_MAK) || !pinpad_has_key(t->pp, PINPAD_PIK)) {
        pos_res_refused(res, "no work keys in the PIN pad: sign on first");
        return 0;
    }
    if (!t->st.rev.pending)
        return 1;
    rc = pos_reversal_flush(t, &rr, e);
    if (rc != PX_OK)
        return rc;
    if (!t->st.rev.pending)
        return 1;
    res->outcome = POS_FAILED;
    res->reversal_pending = 1;
    res->resign_required = !t->st.signed_on;
    px_strlcpy(res->text, rr.text, sizeof res->text);
    return 0;
}

/* ---- one financial request -------------------------------------------------------------- */

static void batch_add(pos_terminal *t, char kind, const pos_card *card, const pos_result *res,
                      const char *sealed)
{
    pos_txn *x = &t->st.txn[t->st.ntxn++];
    memset(x, 0, sizeof *x);
    x->kind = kind;
    px_strlcpy(x->stan, res->stan, sizeof x->stan);
    px_strlcpy(x->rrn, res->rrn, sizeof x->rrn);
    px_strlcpy(x->auth, res->auth_code, sizeof x->auth);
    px_strlcpy(x->proc, t->st.rev.proc, sizeof x->proc);
    x->amount_minor = res->amount_minor;
    pos_mask_pan(card->pan, x->pan_masked);
    px_strlcpy(x->sealed_pan, sealed, sizeof x->sealed_pan);
}

/* Send the request built in t->req (fields up to 63) with its reversal recorded first;
 * an approved one joins the batch (res->stan and res->amount_minor set by the caller). */
int pos_txn_financial(pos_terminal *t, char kind, const pos_card *card, pos_result *res,
                      px_error *e)
{
    px_error why = {0};
    char sealed[POS_SEALED_HEX] = "";
    int sent = 0, rc = reversal_record(t, kind, card, e);
    if (rc == PX_OK && kind != 'V')
        rc = seal_hex(t, card->pan, sealed, sizeof sealed, e);
    if (rc == PX_OK)
        rc = pos_state_save(t, e); /* the STAN and the reversal, before anything leaves */
    if (rc != PX_OK) {
        memset(&t->st.rev, 0, sizeof t->st.rev);
        return rc;
    }
    rc = pos_msg_exchange(t, POS_MAC, &sent, res, &why);
    if (rc != PX_OK) {
        if (!sent)
            memset(&t->st.rev, 0, sizeof t->st.rev);
        else
            memcpy(t->st.rev.reason, rc == PX_EAUTH ? "A0" : rc == PX_EFORMAT ? "06" : "98", 3);
        pos_res_failed(t, res, rc, &why);
        return pos_state_save(t, e);
    }
    pos_res_answer(t, res);
    if (res->outcome == POS_APPROVED)
        batch_add(t, kind, card, res, sealed);
    memset(&t->st.rev, 0, sizeof t->st.rev);
    return pos_state_save(t, e);
}
