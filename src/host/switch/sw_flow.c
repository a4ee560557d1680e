/*
 * sw_flow.c: what the switch does with each terminal request (docs/switch-protocol.md
 * section 1; docs/switch.md "Flows"). Common checks first, in this order: the terminal is
 * registered (97), signed on (77), the MAC verifies (A0), the merchant matches (03), the
 * batch is the open one (77). Then per type:
 *   sign-on   fresh work keys from the HSM, exported under the TMK, new batch -> 0810 + 62
 *   purchase, balance, void
 *             amount (13, 61), route by BIN (15), PIN translated PIK -> ZPK, the request
 *             claimed in the store (duplicates answered here), sent to the provider; its
 *             answer recorded with the ledger postings in one transaction, then answered
 *   reversal  undone exactly once, 00 always
 *   settlement, batch upload
 * Every answer that records something is sent only after the commit that records it.
 */
#include "host/phonepay/phonepay.h"
#include "host/switch/sw_int.h"
#include "lib/hex.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <event2/event.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The TMK's key attributes (docs/switch.md, "Terminals and keys"); the work keys' are in
 * sw_keys.c. */
const hsm_key_attrs switch_tmk_attrs = {"K0", 'T', 'E', 'N', 16};

static const char credited_later_text[] =
    "\xE6\x94\xB6\xE6\xAC\xBE\xE4\xBA\xBA\xE5\xB0\x86\xE5\x9C\xA8\xE5\xAF\xB9"
    "\xE8\xB4\xA6\xE5\x90\x8E\xE5\x85\xA5\xE8\xB4\xA6 / the payee will be credited "
    "after reconciliation"; /* 收款人将在对账后入账 */

static const char no_issuer_text[] =
    "\xE4\xBB\x98\xE6\xAC\xBE\xE5\x8D\xA1\xE6\x89\x80\xE5\xB1\x9E\xE9\x93\xB6\xE8\xA1\x8C"
    "\xE4\xB8\x8D\xE6\x98\xAF\xE7\xAD\xBE\xE7\xBA\xA6\xE9\x93\xB6\xE8\xA1\x8C / card's bank "
    "is not a contracted bank"; /* 付款卡所属银行不是签约银行 */

static void submit(switch_svc *s, sw_job *j)
{
    s->pending_jobs++;
    j->t0_mono_ms = px_mono_ms();
    sw_writer_submit(s->writer, j);
}

void sw_flow_job_done(switch_svc *s, sw_job *j)
{
    if (s->pending_jobs > 0)
        s->pending_jobs--;
    if (j->done != NULL)
        j->done(s, j);
    sw_job_free(j);
}

static void today(char out[9])
{
    px_time_format_utc(px_now_ms(), "%Y%m%d", out, 9);
}

/* Re-parse a terminal request kept as bytes (in a job or a flight). */
static int reparse(const uint8_t *raw, size_t len, sw_req *r)
{
    px_error e = {0};
    memset((char *)r + offsetof(sw_req, raw), 0, sizeof *r - offsetof(sw_req, raw));
    if (iso8583_unpack(&iso8583_unionpay_pos, raw, len, &r->msg, &e) != PX_OK)
        return PX_EFORMAT;
    r->raw = raw;
    r->rawlen = len;
    r->no_hash = 1; /* the identity was fixed at the first parse */
    return sw_req_parse(r, &e);
}

static int copy_bytes(uint8_t **dst, size_t *dlen, const uint8_t *src, size_t n)
{
    *dst = malloc(n ? n : 1);
    if (*dst == NULL)
        return PX_ENOMEM;
    memcpy(*dst, src, n);
    *dlen = n;
    return PX_OK;
}

/* Fill a job's identity from a request (rkey of kind k). */
static void job_identity(sw_job *j, const sw_req *r, const sw_term *t, char k, const char *ttype)
{
    px_strlcpy(j->tid, r->tid, sizeof j->tid);
    px_strlcpy(j->mid, r->mid, sizeof j->mid);
    px_strlcpy(j->stan, r->stan, sizeof j->stan);
    j->batch = r->batch;
    px_strlcpy(j->batch_date, t->batch_date, sizeof j->batch_date);
    j->kind_c = k;
    sw_rkey(j->rkey, r->tid, r->mid, r->stan, r->batch, t->batch_date, k);
    px_strlcpy(j->ttype, ttype, sizeof j->ttype);
    memcpy(j->hash, r->hash, sizeof j->hash);
    j->has_hash = 1;
    j->amount = r->has_amount ? r->amount : 0;
    px_strlcpy(j->pan_masked, r->pan_masked, sizeof j->pan_masked);
}

/* Build and pack a response with code rc (MACed when the request was), *out malloc'd. */
static int build(switch_svc *s, const sw_req *r, const sw_term *t, const char *rc, iso8583_msg *rsp,
                 uint8_t **out, size_t *outlen)
{
    px_error e = {0};
    int mac = r->maced && t != NULL && t->mak != NULL;
    int code = sw_rsp_pack(s, rsp, t, mac, out, outlen, &e);
    if (code != PX_OK)
        px_errorlog("switch", "%s %s: cannot build the %s response: %s", r->tid, r->stan, rc,
                    px_error_text(&e));
    return code;
}

/* ---- duplicates ---- */

typedef struct dup_wait {
    switch_svc *s;
    struct event *ev;
    uint64_t conn;
    char rkey[SW_RKEY_MAX];
    int64_t deadline_ms;
} dup_wait;

static void dup_check(evutil_socket_t fd, short what, void *arg)
{
    dup_wait *w = arg;
    switch_svc *s = w->s;
    store_stmt *q;
    px_error e = {0};
    int sent = 0;
    (void)fd;
    (void)what;
    if (store_prepare(s->d->st, "SELECT rsp FROM switch_request WHERE rkey = $1 AND state = 'done'",
                      &q, &e) == PX_OK) {
        store_bind_text(q, 1, w->rkey);
        if (store_step(q, &e) == STORE_ROW) {
            size_t n = 0;
            const void *rsp = store_col_blob(q, 0, &n);
            if (rsp != NULL && n > 0) {
                sw_send(s, w->conn, rsp, n);
                net_metric_add(s->m.dup_replayed, 1);
                sent = 1;
            }
        }
        store_done(q);
    }
    if (!sent && px_mono_ms() < w->deadline_ms) {
        struct timeval tv = {0, 100000};
        event_add(w->ev, &tv);
        return;
    }
    if (!sent)
        px_info("switch", "retransmission of %s: the original has no answer yet; none sent",
                w->rkey);
    event_free(w->ev);
    free(w);
}

/* A retransmission: replay, refuse (94), or wait for the original's answer. */
static void answer_duplicate(switch_svc *s, sw_job *j, const sw_req *r, const sw_term *t)
{
    switch (j->out.outcome) {
    case SW_O_REPLAY:
        px_info("switch", "%s: retransmission, original answer replayed", j->rkey);
        net_metric_add(s->m.dup_replayed, 1);
        sw_send(s, j->conn, j->out.rsp, j->out.rsplen);
        return;
    case SW_O_CONFLICT:
        px_warn("switch", "%s: same identifier, different content: 94", j->rkey);
        net_metric_add(s->m.dup_refused, 1);
        sw_answer(s, j->conn, r, t, SWITCH_RC_DUPLICATE);
        return;
    case SW_O_PENDING: {
        dup_wait *w = calloc(1, sizeof *w);
        struct timeval tv = {0, 100000};
        net_metric_add(s->m.dup_waiting, 1);
        if (w == NULL)
            return;
        w->s = s;
        w->conn = j->conn;
        px_strlcpy(w->rkey, j->rkey, sizeof w->rkey);
        w->deadline_ms = px_mono_ms() + s->cfg.duplicate_wait_ms;
        w->ev = evtimer_new(s->d->base, dup_check, w);
        if (w->ev == NULL || evtimer_add(w->ev, &tv) != 0) {
            if (w->ev)
                event_free(w->ev);
            free(w);
        }
        return;
    }
    default:
        px_info("switch", "%s: retransmission of a request that was never answered: none sent",
                j->rkey);
        return;
    }
}

/* ---- sign-on, sign-off ---- */

/* The terminal's TMK block, from the store. */
static int read_tmk(switch_svc *s, const char *tid, char *block, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(s->d->st, "SELECT tmk_block FROM switch_terminal WHERE tid = $1", &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, tid);
    rc = store_step(q, e);
    if (rc == STORE_ROW && store_col_text(q, 0) != NULL)
        rc = px_strlcpy(block, store_col_text(q, 0), PX_HSM_KEYBLOCK_MAX) == PX_OK
                 ? PX_OK
                 : px_error_set(e, PX_ETOOBIG, "terminal %s: TMK block too long", tid);
    else if (rc >= 0)
        rc = px_error_set(e, PX_ENOTFOUND, "terminal %s has no TMK", tid);
    store_done(q);
    return rc;
}

static void signon_done(switch_svc *s, sw_job *j)
{
    sw_req r;
    sw_term *t = NULL;
    iso8583_msg rsp;
    char f60[16], rrn[13], stan[7];
    uint8_t *out = NULL;
    size_t n = 0;
    px_error e = {0};
    int ok = j->status == PX_OK;
    if (reparse(j->treq, j->treqlen, &r) != PX_OK)
        return;
    if (sw_term_get(s, j->tid, 0, &t, &e) != PX_OK || t == NULL) {
        sw_answer(s, j->conn, &r, NULL, SWITCH_RC_SYSTEM_ERROR);
        return;
    }
    t->busy = 0;
    if (!ok) {
        px_errorlog("switch", "terminal %s: sign-on not recorded: %s", j->tid, j->errmsg);
        sw_answer(s, j->conn, &r, t, SWITCH_RC_SYSTEM_ERROR);
        return;
    }
    /* The new session, keys loaded from the blocks just stored. */
    sw_term_drop_keys(s, t);
    if (hsm_key_load(s->hsm, j->pik, &t->pik, &e) != PX_OK ||
        hsm_key_load(s->hsm, j->mak, &t->mak, &e) != PX_OK) {
        px_errorlog("switch", "terminal %s: cannot load its new keys: %s", j->tid,
                    px_error_text(&e));
        sw_term_drop_keys(s, t);
    }
    t->signed_on = 1;
    t->batch = j->out.batch;
    t->batch_open = 1;
    px_strlcpy(t->batch_date, j->out.batch_date, sizeof t->batch_date);
    t->key_version = j->out.key_version;
    t->loaded_mono_ms = px_mono_ms();
    net_metric_add(s->m.signons, 1);
    snprintf(f60, sizeof f60, "00%06lld%s", (long long)t->batch, SWITCH_NMI_SIGNON);
    if (sw_rsp_begin(s, &r, t, SWITCH_RC_APPROVED, &rsp, &e) != PX_OK)
        return;
    (void)iso8583_set(&rsp, 60, f60, NULL);
    (void)iso8583_set(&rsp, 32, s->cfg.acquirer_id, NULL);
    if (sw_next_rrn(s, rrn, stan) == PX_OK)
        (void)iso8583_set(&rsp, 37, rrn, NULL);
    (void)iso8583_set_bin(&rsp, 62, j->f62, sizeof j->f62, NULL);
    if (build(s, &r, t, SWITCH_RC_APPROVED, &rsp, &out, &n) == PX_OK) {
        px_info("switch", "terminal %s signed on: batch %06lld, keys version %lld", j->tid,
                (long long)t->batch, (long long)t->key_version);
        sw_count_rc(s, SWITCH_RC_APPROVED);
        sw_send(s, j->conn, out, n);
    }
    iso8583_msg_cleanse(&rsp);
    free(out);
}

/* The key worker made the keys: record the session (then signon_done answers). */
void sw_flow_keys_done(switch_svc *s, sw_job *j)
{
    if (s->pending_jobs > 0)
        s->pending_jobs--;
    if (j->status != PX_OK) {
        sw_req r;
        sw_term *t = NULL;
        px_error e = {0};
        px_errorlog("switch", "terminal %s: sign-on failed: %s", j->tid, j->errmsg);
        if (reparse(j->treq, j->treqlen, &r) == PX_OK) {
            if (sw_term_get(s, j->tid, 0, &t, &e) == PX_OK && t != NULL)
                t->busy = 0;
            sw_answer(s, j->conn, &r, t, SWITCH_RC_SYSTEM_ERROR);
        }
        sw_job_free(j);
        return;
    }
    submit(s, j); /* j->tmk stays: the store checks it is still the terminal's TMK */
}

static void flow_signon(switch_svc *s, uint64_t conn, sw_req *r, sw_term *t)
{
    px_error e = {0};
    sw_job *j;
    int rc;
    if (s->hsm == NULL || s->keys == NULL) {
        px_errorlog("switch", "terminal %s: sign-on refused: HSM unavailable (%s)", r->tid,
                    s->hsm_error);
        sw_answer(s, conn, r, t, SWITCH_RC_SYSTEM_ERROR);
        return;
    }
    if (t->busy)
        return; /* a sign-on of this terminal is under way: its answer will come */
    j = sw_job_new(SW_J_SIGNON, signon_done);
    if (j == NULL) {
        sw_answer(s, conn, r, t, SWITCH_RC_SYSTEM_ERROR);
        return;
    }
    rc = read_tmk(s, r->tid, j->tmk, &e);
    if (rc == PX_OK)
        rc = copy_bytes(&j->treq, &j->treqlen, r->raw, r->rawlen);
    if (rc != PX_OK) {
        px_errorlog("switch", "terminal %s: sign-on failed: %s", r->tid, px_error_text(&e));
        sw_job_free(j);
        sw_answer(s, conn, r, t, SWITCH_RC_SYSTEM_ERROR);
        return;
    }
    px_strlcpy(j->tid, r->tid, sizeof j->tid);
    px_strlcpy(j->mid, r->mid, sizeof j->mid);
    today(j->batch_date);
    j->conn = conn;
    j->svc = s;
    t->busy = 1;
    s->pending_jobs++;
    sw_keyworker_submit(s->keys, j);
}

static void signoff_done(switch_svc *s, sw_job *j)
{
    sw_req r;
    sw_term *t = NULL;
    px_error e = {0};
    if (reparse(j->treq, j->treqlen, &r) != PX_OK)
        return;
    (void)sw_term_get(s, j->tid, 0, &t, &e);
    if (j->status != PX_OK) {
        sw_answer(s, j->conn, &r, t, SWITCH_RC_SYSTEM_ERROR);
        return;
    }
    if (t != NULL) {
        sw_term_drop_keys(s, t);
        t->signed_on = 0;
    }
    px_info("switch", "terminal %s signed off", j->tid);
    sw_answer(s, j->conn, &r, t, SWITCH_RC_APPROVED);
}

static void flow_signoff(switch_svc *s, uint64_t conn, sw_req *r, sw_term *t)
{
    sw_job *j = sw_job_new(SW_J_SIGNOFF, signoff_done);
    if (j == NULL || copy_bytes(&j->treq, &j->treqlen, r->raw, r->rawlen) != PX_OK) {
        sw_job_free(j);
        sw_answer(s, conn, r, t, SWITCH_RC_SYSTEM_ERROR);
        return;
    }
    px_strlcpy(j->tid, r->tid, sizeof j->tid);
    j->conn = conn;
    submit(s, j);
}

/* ---- answers recorded before they are sent ---- */

/* A response decided here (no provider): record it with the request, then send it. */
static void final_done(switch_svc *s, sw_job *j)
{
    if (j->status != PX_OK) {
        sw_req r;
        sw_term *t = NULL;
        px_error e = {0};
        if (reparse(j->treq, j->treqlen, &r) == PX_OK) {
            (void)sw_term_get(s, r.tid, 0, &t, &e);
            sw_answer(s, j->conn, &r, t, SWITCH_RC_SYSTEM_ERROR);
        }
        return;
    }
    if (j->out.outcome != SW_O_NEW) {
        sw_req r;
        sw_term *t = NULL;
        px_error e = {0};
        if (reparse(j->treq, j->treqlen, &r) == PX_OK) {
            (void)sw_term_get(s, r.tid, 0, &t, &e);
            answer_duplicate(s, j, &r, t);
        }
        return;
    }
    sw_count_rc(s, j->rc);
    sw_send(s, j->conn, j->rsp, j->rsplen);
}

/* Record (rkey kind k) and send a response already built in rsp. */
static void record_and_send(switch_svc *s, uint64_t conn, const sw_req *r, const sw_term *t, char k,
                            const char *ttype, const char *rc, iso8583_msg *rsp, int jobkind)
{
    sw_job *j = sw_job_new(jobkind, final_done);
    if (j == NULL || build(s, r, t, rc, rsp, &j->rsp, &j->rsplen) != PX_OK ||
        copy_bytes(&j->treq, &j->treqlen, r->raw, r->rawlen) != PX_OK) {
        sw_job_free(j);
        sw_answer(s, conn, r, t, SWITCH_RC_SYSTEM_ERROR);
        return;
    }
    job_identity(j, r, t, k, ttype);
    px_strlcpy(j->rc, rc, sizeof j->rc);
    sw_owner_token(s, j->owner);
    j->conn = conn;
    if (jobkind == SW_J_UPLOAD) {
        j->nupload = r->nupload;
        memcpy(j->upload, r->upload, sizeof j->upload);
    }
    submit(s, j);
}

static void decline(switch_svc *s, uint64_t conn, const sw_req *r, const sw_term *t,
                    const char *ttype, const char *rc, const char *text)
{
    iso8583_msg rsp;
    px_error e = {0};
    if (sw_rsp_begin(s, r, t, rc, &rsp, &e) != PX_OK)
        return;
    if (text != NULL)
        (void)iso8583_set(&rsp, 63, text, NULL);
    px_info("switch", "%s %s %s: %s declined %s", r->tid, r->stan, sw_mtype_name(r->type),
            r->pan_masked[0] ? r->pan_masked : "", rc);
    net_metric_add(s->m.declined, 1);
    record_and_send(s, conn, r, t, 'F', ttype, rc, &rsp, SW_J_FINAL);
    iso8583_msg_cleanse(&rsp);
}

/* ---- purchase, balance, void ---- */

static int bin_is_routed(switch_svc *s, const char *pan)
{
    if (s->nbins == 0)
        return 1;
    for (size_t i = 0; i < s->nbins; i++)
        if (strncmp(pan, s->bins[i], strlen(s->bins[i])) == 0)
            return 1;
    return 0;
}

static const char *ttype_of(int type)
{
    switch (type) {
    case SW_T_PURCHASE: return "purchase";
    case SW_T_BALANCE: return "balance";
    case SW_T_VOID: return "void";
    case SW_T_PHONEPAY: return "phonepay";
    case SW_T_LOOKUP: return "lookup";
    default: return "other";
    }
}

/* The original of a void: its provider STAN and time (for field 90). */
static int void_original(switch_svc *s, const sw_req *r, const sw_term *t, char *orig_rkey,
                         char pstan[7], char ptime[11])
{
    store_stmt *q;
    px_error e = {0};
    int rc;
    sw_rkey(orig_rkey, r->tid, r->mid, r->orig_stan, r->orig_batch, t->batch_date, 'F');
    pstan[0] = ptime[0] = 0;
    rc = store_prepare(s->d->st, "SELECT prov_stan, prov_time FROM switch_request WHERE rkey = $1",
                       &q, &e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, orig_rkey);
    rc = store_step(q, &e);
    if (rc == STORE_ROW) {
        px_strlcpy(pstan, store_col_text(q, 0) ? store_col_text(q, 0) : "", 7);
        px_strlcpy(ptime, store_col_text(q, 1) ? store_col_text(q, 1) : "", 11);
    }
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

/* The 1987 request to the provider (docs/switch-protocol.md section 2). Without the secret
 * fields (35, 52, 14) it is what is sealed and kept for a reversal. */
static int build_provider(switch_svc *s, const sw_req *r, const hsm_pin_block *pin,
                          const char *payee_card, const sw_job *j, const char *orig_pstan,
                          const char *orig_ptime, int secret, iso8583_msg *m, px_error *e)
{
    const uint8_t *p;
    size_t n;
    char hhmmss[8], mmdd[8], f90[48], amount[13];
    int rc = PX_OK;
    iso8583_msg_init(m, &iso8583_1987_ascii);
    (void)iso8583_set_mti(m, "0200", NULL);
    rc = iso8583_set(m, 2, r->pan, e);
    if (rc == PX_OK) /* a mobile-number payment is a debit (400000) for the provider */
        rc = iso8583_set(m, 3, r->type == SW_T_PHONEPAY ? "400000" : r->proc, e);
    if (rc == PX_OK && r->has_amount && r->type != SW_T_BALANCE) {
        snprintf(amount, sizeof amount, "%012lld", (long long)r->amount);
        rc = iso8583_set(m, 4, amount, e);
    }
    memcpy(hhmmss, j->prov_time + 4, 6);
    hhmmss[6] = 0;
    memcpy(mmdd, j->prov_time, 4);
    mmdd[4] = 0;
    if (rc == PX_OK)
        rc = iso8583_set(m, 7, j->prov_time, e);
    if (rc == PX_OK)
        rc = iso8583_set(m, 11, j->prov_stan, e);
    if (rc == PX_OK)
        rc = iso8583_set(m, 12, hhmmss, e);
    if (rc == PX_OK)
        rc = iso8583_set(m, 13, mmdd, e);
    if (rc == PX_OK && secret && iso8583_get(&r->msg, 14, &p, &n) == PX_OK)
        rc = iso8583_set(m, 14, (const char *)p, e);
    if (rc == PX_OK)
        rc = iso8583_set(m, 22, iso8583_get(&r->msg, 22, &p, &n) == PX_OK ? (const char *)p : "021",
                         e);
    if (rc == PX_OK)
        rc = iso8583_set(m, 25, iso8583_get(&r->msg, 25, &p, &n) == PX_OK ? (const char *)p : "00",
                         e);
    if (rc == PX_OK)
        rc = iso8583_set(m, 32, s->cfg.acquirer_id, e);
    if (rc == PX_OK && secret && iso8583_get(&r->msg, 35, &p, &n) == PX_OK)
        rc = iso8583_set(m, 35, (const char *)p, e);
    if (rc == PX_OK)
        rc = iso8583_set(m, 37, j->rrn, e);
    if (rc == PX_OK)
        rc = iso8583_set(m, 41, r->tid, e);
    if (rc == PX_OK)
        rc = iso8583_set(m, 42, r->mid, e);
    if (rc == PX_OK)
        rc = iso8583_set(m, 49, "156", e);
    if (rc == PX_OK && secret && pin != NULL)
        rc = iso8583_set_bin(m, 52, pin->data, 8, e);
    if (rc == PX_OK && r->type == SW_T_PHONEPAY) {
        char mobiles[23];
        memcpy(mobiles, r->f48, 22);
        mobiles[22] = 0;
        rc = iso8583_set(m, 48, mobiles, e);
        if (rc == PX_OK && secret && payee_card != NULL)
            rc = iso8583_set(m, 103, payee_card, e);
    }
    if (rc == PX_OK && r->type == SW_T_VOID) {
        snprintf(f90, sizeof f90, "0200%6.6s%10.10s%011lld%011d",
                 orig_pstan[0] ? orig_pstan : "000000", orig_ptime[0] ? orig_ptime : "0000000000",
                 (long long)strtoll(s->cfg.acquirer_id, NULL, 10), 0);
        rc = iso8583_set(m, 90, f90, e);
    }
    return rc;
}

static void complete_done(switch_svc *s, sw_job *j);

/* Tell phonepay that a mobile-number debit was reversed (never to be credited). */
static void phonepay_reversed(switch_svc *s, const char *ref)
{
    phonepay *pp = phonepay_instance();
    px_error e = {0};
    (void)s;
    if (ref == NULL || ref[0] == 0 || pp == NULL)
        return;
    if (phonepay_payment_reverse(pp, ref, &e) != PX_OK)
        px_errorlog("switch", "phonepay: reversal of payment %s not recorded: %s", ref,
                    px_error_text(&e));
}

/* Record the answer (and postings) of a claimed request, then send it. */
static void complete(switch_svc *s, uint64_t conn, const sw_req *r, const sw_term *t,
                     const char *rkey, const char *ttype, const char *rc, iso8583_msg *rsp,
                     const char *rrn, const char *auth, int outbox, const uint8_t *preq,
                     size_t preqlen)
{
    sw_job *j = sw_job_new(SW_J_COMPLETE, complete_done);
    if (j == NULL || build(s, r, t, rc, rsp, &j->rsp, &j->rsplen) != PX_OK) {
        sw_job_free(j);
        sw_answer(s, conn, r, t, SWITCH_RC_SYSTEM_ERROR);
        return;
    }
    px_strlcpy(j->rkey, rkey, sizeof j->rkey);
    px_strlcpy(j->tid, r->tid, sizeof j->tid);
    px_strlcpy(j->mid, r->mid, sizeof j->mid);
    px_strlcpy(j->stan, r->stan, sizeof j->stan);
    px_strlcpy(j->ttype, ttype, sizeof j->ttype);
    px_strlcpy(j->rc, rc, sizeof j->rc);
    px_strlcpy(j->rrn, rrn ? rrn : "", sizeof j->rrn);
    px_strlcpy(j->auth, auth ? auth : "", sizeof j->auth);
    j->amount = r->has_amount ? r->amount : 0;
    j->fee_bp = s->cfg.fee_bp;
    j->outbox = outbox;
    px_strlcpy(j->reason, "98", sizeof j->reason);
    if (r->type == SW_T_PHONEPAY)
        memcpy(j->ref, r->f48 + 22, 12);
    j->conn = conn;
    if (preq != NULL && copy_bytes(&j->preq, &j->preqlen, preq, preqlen) != PX_OK)
        j->preq = NULL;
    submit(s, j);
}

static void complete_done(switch_svc *s, sw_job *j)
{
    int approved = strcmp(j->rc, SWITCH_RC_APPROVED) == 0;
    if (j->status != PX_OK) {
        /* Nothing was recorded: the terminal must not see an approval. */
        px_errorlog("switch", "%s: answer not recorded (%s): no answer sent", j->rkey, j->errmsg);
        if (approved && j->preq != NULL) {
            iso8583_msg m;
            px_error e = {0};
            if (iso8583_unpack(&iso8583_1987_ascii, j->preq, j->preqlen, &m, &e) == PX_OK)
                sw_provider_send_reversal(s, j->rkey, &m, "96", 0);
            iso8583_msg_cleanse(&m);
        }
        return;
    }
    if (j->out.outcome == SW_O_UNDONE) {
        px_info("switch", "%s: reversed by the terminal while at the provider: not posted",
                j->rkey);
        phonepay_reversed(s, j->ref);
        return;
    }
    if (j->out.outcome == SW_O_LOST) {
        px_warn("switch", "%s: no longer pending (recovered): answer not sent", j->rkey);
        return;
    }
    net_metric_add(approved ? s->m.approved : s->m.declined, 1);
    sw_count_rc(s, j->rc);
    sw_send(s, j->conn, j->rsp, j->rsplen);
}

/* Provider codes that pass through to the terminal; anything else is 05. */
static const char *map_provider_rc(const char *rc)
{
    static const char *const pass[] = {"00", "14", "15", "51", "54", "55", "61", "75", "91", NULL};
    for (size_t i = 0; pass[i]; i++)
        if (strcmp(rc, pass[i]) == 0)
            return pass[i];
    return SWITCH_RC_DO_NOT_HONOUR;
}

void sw_flow_provider_answer(switch_svc *s, uint64_t conn, const uint8_t *treq, size_t treqlen,
                             const char *rkey, const iso8583_msg *prsp, const uint8_t *preq,
                             size_t preqlen)
{
    sw_req r;
    sw_term *t = NULL;
    iso8583_msg rsp, pm;
    px_error e = {0};
    const uint8_t *p;
    size_t n;
    char rc[3] = SWITCH_RC_PROVIDER_DOWN, rrn[13] = "", auth[7] = "", mmdd[8];
    if (reparse(treq, treqlen, &r) != PX_OK)
        return;
    (void)sw_term_get(s, r.tid, 0, &t, &e);
    if (iso8583_unpack(&iso8583_1987_ascii, preq, preqlen, &pm, &e) == PX_OK &&
        iso8583_get(&pm, 37, &p, &n) == PX_OK)
        px_strlcpy(rrn, (const char *)p, sizeof rrn);
    if (prsp != NULL && iso8583_get(prsp, 39, &p, &n) == PX_OK && n == 2)
        px_strlcpy(rc, map_provider_rc((const char *)p), sizeof rc);
    else if (prsp != NULL)
        px_strlcpy(rc, SWITCH_RC_DO_NOT_HONOUR, sizeof rc);
    if (prsp == NULL) {
        px_warn("switch", "%s: no answer from the provider in %lld ms: 91, reversal sent", rkey,
                (long long)s->cfg.provider_timeout_ms);
        sw_provider_send_reversal(s, rkey, &pm, "98", 0);
    }
    if (r.type == SW_T_PHONEPAY) {
        char ref[13], pstan[7] = "";
        phonepay *pp = phonepay_instance();
        memcpy(ref, r.f48 + 22, 12);
        ref[12] = 0;
        if (iso8583_get(&pm, 11, &p, &n) == PX_OK)
            px_strlcpy(pstan, (const char *)p, sizeof pstan);
        if (prsp == NULL)
            phonepay_reversed(s, ref);
        else if (pp != NULL && phonepay_payment_result(pp, ref, rrn, pstan, rc, &e) != PX_OK)
            px_errorlog("switch", "phonepay: result of payment %s not recorded: %s", ref,
                        px_error_text(&e));
    }
    iso8583_msg_cleanse(&pm);
    if (sw_rsp_begin(s, &r, t, rc, &rsp, &e) != PX_OK)
        return;
    px_time_format_utc(px_now_ms(), "%m%d", mmdd, sizeof mmdd);
    (void)iso8583_set(&rsp, 15, mmdd, NULL);
    (void)iso8583_set(&rsp, 32, s->cfg.acquirer_id, NULL);
    if (rrn[0])
        (void)iso8583_set(&rsp, 37, rrn, NULL);
    if (prsp != NULL && strcmp(rc, "00") == 0 && iso8583_get(prsp, 38, &p, &n) == PX_OK) {
        px_strlcpy(auth, (const char *)p, sizeof auth);
        (void)iso8583_set(&rsp, 38, auth, NULL);
    }
    if (prsp != NULL && r.type == SW_T_BALANCE && iso8583_get(prsp, 54, &p, &n) == PX_OK &&
        n >= 20) {
        char f54[21];
        memcpy(f54, p, 20);
        f54[20] = 0;
        (void)iso8583_set(&rsp, 54, f54, NULL);
    }
    if (strcmp(rc, SWITCH_RC_NO_ISSUER) == 0)
        (void)iso8583_set(&rsp, 63, no_issuer_text, NULL);
    else if (r.type == SW_T_PHONEPAY && strcmp(rc, SWITCH_RC_APPROVED) == 0)
        (void)iso8583_set(&rsp, 63, credited_later_text, NULL);
    if (r.type == SW_T_BALANCE) /* nothing to keep or undo: the amount is not in field 4 */
        r.has_amount = 0;
    complete(s, conn, &r, t, rkey, ttype_of(r.type), rc, &rsp, rrn, auth, prsp == NULL, preq,
             preqlen);
    iso8583_msg_cleanse(&rsp);
}

static void phonepay_lookup_step(switch_svc *s, sw_job *j, sw_req *r, sw_term *t);
static void phonepay_payment_step(switch_svc *s, sw_job *j, sw_req *r, sw_term *t);

static void claim_done(switch_svc *s, sw_job *j)
{
    sw_req r;
    sw_term *t = NULL;
    px_error e = {0};
    /* The usual case, claimed and bound for the provider, needs nothing more of the request. */
    if (j->status == PX_OK && j->out.outcome == SW_O_NEW && j->preq != NULL &&
        sw_provider_send(s, j, &e) == PX_OK)
        return;
    if (reparse(j->treq, j->treqlen, &r) != PX_OK)
        return;
    (void)sw_term_get(s, r.tid, 0, &t, &e);
    if (j->status != PX_OK) {
        sw_answer(s, j->conn, &r, t, SWITCH_RC_SYSTEM_ERROR);
        return;
    }
    if (j->out.outcome == SW_O_REFUSED) {
        iso8583_msg rsp;
        if (sw_rsp_begin(s, &r, t, j->out.rc, &rsp, &e) == PX_OK)
            complete(s, j->conn, &r, t, j->rkey, j->ttype, j->out.rc, &rsp, j->rrn, NULL, 0, NULL,
                     0);
        return;
    }
    if (j->out.outcome != SW_O_NEW) {
        answer_duplicate(s, j, &r, t);
        return;
    }
    if (r.type == SW_T_LOOKUP) {
        phonepay_lookup_step(s, j, &r, t);
        return;
    }
    if (r.type == SW_T_PHONEPAY) {
        phonepay_payment_step(s, j, &r, t);
        return;
    }
    if (sw_provider_send(s, j, &e) != PX_OK) {
        iso8583_msg rsp;
        px_warn("switch", "%s: not sent to the provider (%s): 91", j->rkey, px_error_text(&e));
        if (sw_rsp_begin(s, &r, t, SWITCH_RC_PROVIDER_DOWN, &rsp, &e) == PX_OK)
            complete(s, j->conn, &r, t, j->rkey, j->ttype, SWITCH_RC_PROVIDER_DOWN, &rsp, j->rrn,
                     NULL, 0, NULL, 0);
    }
}

/* The PIN block of r, from the terminal's PIK to the zone key, format 0. PX_EAUTH: it does
 * not decode (55); another error: no key to do it with (96). */
static int translate_pin(switch_svc *s, const sw_req *r, const sw_term *t, hsm_pin_block *out,
                         px_error *e)
{
    hsm_pin_block in;
    int rc;
    if (s->zpk == NULL || t == NULL || t->pik == NULL)
        return px_error_set(e, PX_ESTATE, "no PIN keys (%s)",
                            s->zpk == NULL ? "zone PIN key not loaded" : "terminal PIK not loaded");
    memset(&in, 0, sizeof in);
    memcpy(in.data, r->pin_block, 8);
    in.len = 8;
    in.format = CRYPTO_PIN_ISO0;
    rc = hsm_pin_translate(s->hsm, t->pik, &in, s->zpk, CRYPTO_PIN_ISO0, r->pan, out, e);
    crypto_cleanse(&in, sizeof in);
    return rc == PX_OK ? PX_OK : PX_EAUTH;
}

/* Fill j with the provider request for r: RRN and provider STAN, transmission time, the
 * sealed copy kept for a reversal (no track 2, PIN block, expiry or payee card) and the
 * message to send (kept in memory only), and the terminal's request bytes. */
static int prepare_provider(switch_svc *s, const sw_req *r, const hsm_pin_block *pin,
                            const char *payee_card, sw_job *j, const char *opstan,
                            const char *optime, px_error *e)
{
    iso8583_msg pm;
    uint8_t pbytes[PX_ISO_MSG_MAX];
    size_t pn = 0;
    int rc;
    px_time_format_utc(px_now_ms(), "%m%d%H%M%S", j->prov_time, sizeof j->prov_time);
    rc = sw_next_rrn(s, j->rrn, j->prov_stan);
    if (rc != PX_OK)
        return px_error_set(e, rc, "no retrieval reference number available");
    rc = build_provider(s, r, NULL, NULL, j, opstan, optime, 0, &pm, e);
    if (rc == PX_OK)
        rc = iso8583_pack(&iso8583_1987_ascii, &pm, pbytes, sizeof pbytes, &pn, e);
    if (rc == PX_OK)
        rc = sw_seal(s, pbytes, pn, &j->prov_blob, &j->prov_bloblen, e);
    if (rc == PX_OK)
        rc = build_provider(s, r, pin, payee_card, j, opstan, optime, 1, &pm, e);
    if (rc == PX_OK)
        rc = iso8583_pack(&iso8583_1987_ascii, &pm, pbytes, sizeof pbytes, &pn, e);
    if (rc == PX_OK)
        rc = copy_bytes(&j->preq, &j->preqlen, pbytes, pn);
    if (rc == PX_OK)
        rc = copy_bytes(&j->treq, &j->treqlen, r->raw, r->rawlen);
    crypto_cleanse(pbytes, sizeof pbytes);
    iso8583_msg_cleanse(&pm);
    return rc;
}

/* Amount and route: PX_OK, or the refusal code to answer. */
static const char *financial_refusal(switch_svc *s, const sw_req *r)
{
    if (r->type != SW_T_BALANCE && r->amount <= 0)
        return SWITCH_RC_INVALID_AMOUNT;
    if (r->type != SW_T_BALANCE && r->amount > s->cfg.max_amount_minor)
        return SWITCH_RC_AMOUNT_LIMIT;
    if (!bin_is_routed(s, r->pan))
        return SWITCH_RC_NO_ISSUER;
    return NULL;
}

static void flow_financial(switch_svc *s, uint64_t conn, sw_req *r, sw_term *t)
{
    const char *ttype = ttype_of(r->type), *refusal = financial_refusal(s, r);
    hsm_pin_block pin_out, *pin = NULL;
    char orig_rkey[SW_RKEY_MAX] = "", opstan[7] = "", optime[11] = "";
    px_error e = {0};
    sw_job *j;
    int rc;
    if (refusal != NULL) {
        decline(s, conn, r, t, ttype, refusal,
                strcmp(refusal, SWITCH_RC_NO_ISSUER) == 0 ? no_issuer_text : NULL);
        return;
    }
    if (r->has_pin) {
        rc = translate_pin(s, r, t, &pin_out, &e);
        if (rc == PX_EAUTH) {
            px_warn("switch", "%s %s: PIN block does not translate: %s", r->tid, r->stan,
                    px_error_text(&e));
            decline(s, conn, r, t, ttype, SWITCH_RC_INCORRECT_PIN, NULL);
            return;
        }
        if (rc != PX_OK) {
            px_errorlog("switch", "%s %s: %s", r->tid, r->stan, px_error_text(&e));
            sw_answer(s, conn, r, t, SWITCH_RC_SYSTEM_ERROR);
            return;
        }
        pin = &pin_out;
    }
    if (r->type == SW_T_VOID && void_original(s, r, t, orig_rkey, opstan, optime) != PX_OK) {
        sw_answer(s, conn, r, t, SWITCH_RC_SYSTEM_ERROR);
        return;
    }
    j = sw_job_new(SW_J_CLAIM, claim_done);
    rc = j != NULL ? PX_OK : px_error_set(&e, PX_ENOMEM, "out of memory");
    if (rc == PX_OK) {
        job_identity(j, r, t, 'F', ttype);
        if (r->type == SW_T_BALANCE)
            j->amount = 0;
        px_strlcpy(j->orig_rkey, orig_rkey, sizeof j->orig_rkey);
        px_strlcpy(j->orig_rrn, r->orig_rrn, sizeof j->orig_rrn);
        sw_owner_token(s, j->owner);
        j->conn = conn;
        rc = prepare_provider(s, r, pin, NULL, j, opstan, optime, &e);
    }
    if (pin != NULL)
        crypto_cleanse(&pin_out, sizeof pin_out);
    if (rc != PX_OK) {
        px_errorlog("switch", "%s %s: %s", r->tid, r->stan, px_error_text(&e));
        sw_job_free(j);
        sw_answer(s, conn, r, t, SWITCH_RC_SYSTEM_ERROR);
        return;
    }
    submit(s, j);
}

/* ---- mobile-number payment (seed 002; docs/switch-protocol.md section 1, phonepay.h) ---- */

/* 0100 / 380000, claimed: phonepay looks the payee up; the answer is recorded and sent. */
static void phonepay_lookup_step(switch_svc *s, sw_job *j, sw_req *r, sw_term *t)
{
    phonepay *pp = phonepay_instance();
    phonepay_field48 f;
    phonepay_lookup_result lr;
    iso8583_msg rsp;
    px_error e = {0};
    const char *rc = SWITCH_RC_SYSTEM_ERROR;
    memset(&lr, 0, sizeof lr);
    if (pp == NULL)
        rc = SWITCH_RC_NOT_SUPPORTED;
    else if (phonepay_field48_parse(r->f48, strlen(r->f48), 0, &f, &e) != PX_OK)
        rc = SWITCH_RC_FORMAT_ERROR;
    else if (phonepay_lookup(pp, r->tid, f.payee_mobile, f.payer_mobile, r->amount, &lr, &e) ==
             PX_OK)
        rc = lr.response_code;
    else
        px_errorlog("switch", "%s: payee lookup failed: %s", j->rkey, px_error_text(&e));
    if (sw_rsp_begin(s, r, t, rc, &rsp, &e) != PX_OK)
        return;
    if (strcmp(rc, SWITCH_RC_APPROVED) == 0) {
        (void)iso8583_set(&rsp, 37, lr.reference, NULL);
        (void)iso8583_set(&rsp, 63, lr.masked_name, NULL);
    } else if (lr.text[0]) {
        (void)iso8583_set(&rsp, 63, lr.text, NULL);
    }
    complete(s, j->conn, r, t, j->rkey, "lookup", rc, &rsp, NULL, NULL, 0, NULL, 0);
    iso8583_msg_cleanse(&rsp);
}

static void attach_done(switch_svc *s, sw_job *j)
{
    sw_req r;
    sw_term *t = NULL;
    iso8583_msg rsp;
    px_error e = {0};
    const char *rc = NULL;
    if (reparse(j->treq, j->treqlen, &r) != PX_OK)
        return;
    (void)sw_term_get(s, r.tid, 0, &t, &e);
    if (j->status != PX_OK) {
        rc = SWITCH_RC_SYSTEM_ERROR;
    } else if (j->out.outcome != SW_O_NEW) {
        px_info("switch", "%s: reversed before it was sent: not sent", j->rkey);
        phonepay_reversed(s, j->ref);
        return;
    } else if (sw_provider_send(s, j, &e) != PX_OK) {
        px_warn("switch", "%s: not sent to the provider (%s): 91", j->rkey, px_error_text(&e));
        rc = SWITCH_RC_PROVIDER_DOWN;
    }
    if (rc == NULL)
        return; /* the provider's answer (or its timeout) completes it */
    {
        phonepay *pp = phonepay_instance();
        if (pp != NULL)
            (void)phonepay_payment_result(pp, j->ref, j->rrn, j->prov_stan, rc, &e);
    }
    if (sw_rsp_begin(s, &r, t, rc, &rsp, &e) == PX_OK)
        complete(s, j->conn, &r, t, j->rkey, "phonepay", rc, &rsp, j->rrn, NULL, 0, NULL, 0);
}

/* phonepay's checks of a payment (reference, payee, contracted BIN): NULL and the payee's
 * card in pay, or the refusal code (text in *text). */
static const char *payment_begin(phonepay *pp, const sw_req *r, phonepay_field48 *f,
                                 phonepay_payment *pay, const char **text, const char *rkey)
{
    phonepay_payment_request pr;
    px_error e = {0};
    *text = NULL;
    if (pp == NULL)
        return SWITCH_RC_NOT_SUPPORTED;
    if (phonepay_field48_parse(r->f48, strlen(r->f48), 1, f, &e) != PX_OK)
        return SWITCH_RC_FORMAT_ERROR;
    pr.tid = r->tid;
    pr.reference = f->reference;
    pr.payee_mobile = f->payee_mobile;
    pr.payer_mobile = f->payer_mobile;
    pr.amount_minor = r->amount;
    pr.payer_pan = r->pan;
    if (phonepay_payment_begin(pp, &pr, pay, &e) != PX_OK) {
        px_errorlog("switch", "%s: payment check failed: %s", rkey, px_error_text(&e));
        return SWITCH_RC_SYSTEM_ERROR;
    }
    if (strcmp(pay->response_code, PHONEPAY_RC_APPROVED) != 0) {
        *text = pay->text[0] ? pay->text : NULL;
        return pay->response_code;
    }
    return NULL;
}

/* 0200 / 480000, claimed: phonepay checks the reference and the payer card's bank and gives
 * the payee's card; the debit's provider message is sealed into the claimed request before
 * it is sent, as for a purchase. */
static void phonepay_payment_step(switch_svc *s, sw_job *j, sw_req *r, sw_term *t)
{
    phonepay *pp = phonepay_instance();
    phonepay_field48 f;
    phonepay_payment pay;
    hsm_pin_block pin_out, *pin = NULL;
    iso8583_msg rsp;
    px_error e = {0};
    const char *text = NULL, *rc;
    sw_job *a = NULL;
    memset(&pay, 0, sizeof pay);
    rc = payment_begin(pp, r, &f, &pay, &text, j->rkey);
    if (rc == NULL && r->has_pin) {
        if (translate_pin(s, r, t, &pin_out, &e) != PX_OK)
            rc = SWITCH_RC_INCORRECT_PIN;
        else
            pin = &pin_out;
    }
    if (rc == NULL && (a = sw_job_new(SW_J_ATTACH, attach_done)) == NULL)
        rc = SWITCH_RC_SYSTEM_ERROR;
    if (rc == NULL) {
        px_strlcpy(a->rkey, j->rkey, sizeof a->rkey);
        px_strlcpy(a->ttype, "phonepay", sizeof a->ttype);
        px_strlcpy(a->ref, f.reference, sizeof a->ref);
        a->conn = j->conn;
        if (prepare_provider(s, r, pin, pay.payee_card, a, "", "", &e) != PX_OK) {
            px_errorlog("switch", "%s: %s", j->rkey, px_error_text(&e));
            sw_job_free(a);
            rc = SWITCH_RC_SYSTEM_ERROR;
        }
    }
    crypto_cleanse(pay.payee_card, sizeof pay.payee_card);
    if (pin != NULL)
        crypto_cleanse(&pin_out, sizeof pin_out);
    if (rc == NULL) {
        submit(s, a);
        return;
    }
    /* phonepay spent the reference: tell it the payment went no further */
    if (pp != NULL && strcmp(pay.response_code, PHONEPAY_RC_APPROVED) == 0)
        (void)phonepay_payment_result(pp, f.reference, "", "", rc, &e);
    if (sw_rsp_begin(s, r, t, rc, &rsp, &e) != PX_OK)
        return;
    if (text != NULL)
        (void)iso8583_set(&rsp, 63, text, NULL);
    complete(s, j->conn, r, t, j->rkey, "phonepay", rc, &rsp, NULL, NULL, 0, NULL, 0);
    iso8583_msg_cleanse(&rsp);
}

/* Both mobile-number steps start with a claim, so a retransmission never reaches phonepay
 * twice. */
static void flow_phonepay(switch_svc *s, uint64_t conn, sw_req *r, sw_term *t)
{
    sw_job *j;
    if (phonepay_instance() == NULL) {
        net_metric_add(s->m.unsupported, 1);
        sw_answer(s, conn, r, t, SWITCH_RC_NOT_SUPPORTED);
        return;
    }
    if (r->type == SW_T_PHONEPAY && r->amount <= 0) {
        decline(s, conn, r, t, "phonepay", SWITCH_RC_INVALID_AMOUNT, NULL);
        return;
    }
    if (r->type == SW_T_PHONEPAY && r->amount > s->cfg.max_amount_minor) {
        decline(s, conn, r, t, "phonepay", SWITCH_RC_AMOUNT_LIMIT, NULL);
        return;
    }
    j = sw_job_new(SW_J_CLAIM, claim_done);
    if (j == NULL || copy_bytes(&j->treq, &j->treqlen, r->raw, r->rawlen) != PX_OK) {
        sw_job_free(j);
        sw_answer(s, conn, r, t, SWITCH_RC_SYSTEM_ERROR);
        return;
    }
    job_identity(j, r, t, 'F', ttype_of(r->type));
    if (r->type == SW_T_LOOKUP)
        j->amount = 0;
    else
        memcpy(j->ref, r->f48 + 22, 12);
    sw_owner_token(s, j->owner);
    j->conn = conn;
    submit(s, j);
}

/* ---- reversal, settlement, batch upload ---- */

static void reversal_done(switch_svc *s, sw_job *j)
{
    if (j->status == PX_OK && j->out.outcome == SW_O_NEW)
        phonepay_reversed(s, j->out.ref);
    final_done(s, j);
}

static void flow_reversal(switch_svc *s, uint64_t conn, sw_req *r, sw_term *t)
{
    iso8583_msg rsp;
    px_error e = {0};
    sw_job *j = sw_job_new(SW_J_REVERSAL, reversal_done);
    if (j == NULL || sw_rsp_begin(s, r, t, SWITCH_RC_APPROVED, &rsp, &e) != PX_OK ||
        build(s, r, t, SWITCH_RC_APPROVED, &rsp, &j->rsp, &j->rsplen) != PX_OK ||
        copy_bytes(&j->treq, &j->treqlen, r->raw, r->rawlen) != PX_OK) {
        sw_job_free(j);
        sw_answer(s, conn, r, t, SWITCH_RC_SYSTEM_ERROR);
        return;
    }
    job_identity(j, r, t, 'R', "reversal");
    if (r->batch != t->batch)
        j->batch_date[0] = 0; /* another batch's: the writer looks its date up */
    px_strlcpy(j->rc, SWITCH_RC_APPROVED, sizeof j->rc);
    px_strlcpy(j->reason, r->rev_reason, sizeof j->reason);
    sw_owner_token(s, j->owner);
    j->conn = conn;
    px_info("switch", "%s %s: reversal (reason %s)", r->tid, r->stan, r->rev_reason);
    submit(s, j);
}

static void format_totals(const sw_totals *t, int result, char out[32])
{
    snprintf(out, 32, "%03lld%012lld%03lld%012lld%d", (long long)t->debit_count % 1000,
             (long long)t->debit_amount % 1000000000000LL, (long long)t->credit_count % 1000,
             (long long)t->credit_amount % 1000000000000LL, result);
}

static void settle_done(switch_svc *s, sw_job *j)
{
    sw_req r;
    sw_term *t = NULL;
    iso8583_msg rsp;
    px_error e = {0};
    char f48[64], dom[32], fo[32];
    if (reparse(j->treq, j->treqlen, &r) != PX_OK)
        return;
    (void)sw_term_get(s, r.tid, 0, &t, &e);
    if (j->status != PX_OK) {
        sw_answer(s, j->conn, &r, t, SWITCH_RC_SYSTEM_ERROR);
        return;
    }
    if (j->out.outcome != SW_O_NEW) {
        answer_duplicate(s, j, &r, t);
        return;
    }
    if (t != NULL && t->batch == r.batch)
        t->batch_open = 0;
    px_info("switch", "terminal %s batch %06lld settled: %s (switch %lld/%lld, terminal %lld/%lld)",
            r.tid, (long long)r.batch, j->out.settle_result == 1 ? "balanced" : "NOT balanced",
            (long long)j->out.sw_dom.debit_count, (long long)j->out.sw_dom.debit_amount,
            (long long)r.settle_dom.debit_count, (long long)r.settle_dom.debit_amount);
    if (sw_rsp_begin(s, &r, t, SWITCH_RC_APPROVED, &rsp, &e) != PX_OK)
        return;
    format_totals(&r.settle_dom, j->out.settle_result, dom);
    format_totals(&r.settle_for, j->out.settle_result, fo);
    snprintf(f48, sizeof f48, "%s%s", dom, fo);
    (void)iso8583_set(&rsp, 48, f48, NULL);
    complete(s, j->conn, &r, t, j->rkey, "settle", SWITCH_RC_APPROVED, &rsp, NULL, NULL, 0, NULL,
             0);
    iso8583_msg_cleanse(&rsp);
}

static void flow_settle(switch_svc *s, uint64_t conn, sw_req *r, sw_term *t)
{
    sw_job *j = sw_job_new(SW_J_SETTLE, settle_done);
    if (j == NULL || copy_bytes(&j->treq, &j->treqlen, r->raw, r->rawlen) != PX_OK) {
        sw_job_free(j);
        sw_answer(s, conn, r, t, SWITCH_RC_SYSTEM_ERROR);
        return;
    }
    job_identity(j, r, t, 'S', "settle");
    j->term_dom = r->settle_dom;
    j->term_for = r->settle_for;
    sw_owner_token(s, j->owner);
    j->conn = conn;
    submit(s, j);
}

static void flow_upload(switch_svc *s, uint64_t conn, sw_req *r, sw_term *t)
{
    iso8583_msg rsp;
    px_error e = {0};
    if (sw_rsp_begin(s, r, t, SWITCH_RC_APPROVED, &rsp, &e) != PX_OK)
        return;
    record_and_send(s, conn, r, t, 'U', "upload", SWITCH_RC_APPROVED, &rsp, SW_J_UPLOAD);
    iso8583_msg_cleanse(&rsp);
}

/* ---- the common checks ---- */

static int verify_mac(switch_svc *s, const sw_req *r, sw_term *t)
{
    px_error e = {0};
    if (!iso8583_has(&r->msg, 64) || t->mak == NULL || s->hsm == NULL)
        return PX_EAUTH;
    return hsm_mac_verify(s->hsm, t->mak, CRYPTO_MAC_CUP_ECB, r->raw + r->mac_off, r->mac_len,
                          r->raw + r->mac_off + r->mac_len, 8, &e);
}

static int needs_open_batch(int type)
{
    return type == SW_T_PURCHASE || type == SW_T_BALANCE || type == SW_T_VOID ||
           type == SW_T_SETTLE || type == SW_T_LOOKUP || type == SW_T_PHONEPAY;
}

/* The common checks (97, 77, A0, 03, 77 for the batch), in the contract's order. NULL when
 * one of them answered; else the terminal. */
static sw_term *check_terminal(switch_svc *s, uint64_t conn, sw_req *r)
{
    sw_term *t = NULL;
    px_error e = {0};
    int rc = sw_term_get(s, r->tid, 0, &t, &e);
    if (rc == PX_ENOTFOUND || (rc == PX_OK && !t->active)) {
        px_warn("switch", "conn %llu: terminal %s is not registered: 97", (unsigned long long)conn,
                r->tid);
        r->maced = 0;
        sw_answer(s, conn, r, NULL, SWITCH_RC_UNKNOWN_TERMINAL);
        return NULL;
    }
    if (rc != PX_OK) {
        px_errorlog("switch", "terminal %s: store: %s", r->tid, px_error_text(&e));
        r->maced = 0;
        sw_answer(s, conn, r, NULL, SWITCH_RC_SYSTEM_ERROR);
        return NULL;
    }
    if (r->maced) { /* keys changed at another node? read the terminal again, once */
        if ((!t->signed_on || t->mak == NULL) &&
            (sw_term_get(s, r->tid, 1, &t, &e) != PX_OK || !t->signed_on || t->mak == NULL)) {
            r->maced = 0;
            sw_answer(s, conn, r, t, SWITCH_RC_NOT_SIGNED_ON);
            return NULL;
        }
        if (verify_mac(s, r, t) != PX_OK && (sw_term_get(s, r->tid, 1, &t, &e) != PX_OK ||
                                             t->mak == NULL || verify_mac(s, r, t) != PX_OK)) {
            net_metric_add(s->m.security, 1);
            px_warn("switch", "terminal %s STAN %s: MAC %s: A0 (security event)", r->tid, r->stan,
                    iso8583_has(&r->msg, 64) ? "wrong" : "missing");
            sw_answer(s, conn, r, t, SWITCH_RC_MAC_ERROR);
            return NULL;
        }
    }
    if (strcmp(t->mid, r->mid) != 0) {
        px_warn("switch", "terminal %s: merchant %s is not its merchant: 03", r->tid, r->mid);
        sw_answer(s, conn, r, t, SWITCH_RC_INVALID_MERCHANT);
        return NULL;
    }
    if (((needs_open_batch(r->type) && (r->batch != t->batch || !t->batch_open)) ||
         (r->type == SW_T_UPLOAD && r->batch != t->batch)) &&
        (sw_term_get(s, r->tid, 1, &t, &e) != PX_OK || r->batch != t->batch ||
         (needs_open_batch(r->type) && !t->batch_open))) {
        px_info("switch", "terminal %s: batch %06lld is not its open batch: 77", r->tid,
                (long long)r->batch);
        sw_answer(s, conn, r, t, SWITCH_RC_NOT_SIGNED_ON);
        return NULL;
    }
    return t;
}

void sw_flow_request(switch_svc *s, uint64_t conn, sw_req *r)
{
    sw_term *t;
    if (r->type == SW_T_ECHO) {
        px_debug("switch", "conn %llu: echo %s answered", (unsigned long long)conn, r->msg.mti);
        sw_answer(s, conn, r, NULL, SWITCH_RC_APPROVED);
        return;
    }
    if (r->type == SW_T_OTHER) {
        net_metric_add(s->m.unsupported, 1);
        px_info("switch", "conn %llu: %s (3 %s, 60.3 %s) not supported: code 40",
                (unsigned long long)conn, r->msg.mti, r->proc[0] ? r->proc : "-",
                r->nmi[0] ? r->nmi : "-");
        sw_answer(s, conn, r, NULL, SWITCH_RC_NOT_SUPPORTED);
        return;
    }
    if (s->draining) { /* no new work: the terminal goes to another node */
        net_frame_server_close_conn(s->srv, conn);
        return;
    }
    if ((t = check_terminal(s, conn, r)) == NULL)
        return;
    switch (r->type) {
    case SW_T_SIGNON: flow_signon(s, conn, r, t); return;
    case SW_T_SIGNOFF: flow_signoff(s, conn, r, t); return;
    case SW_T_PURCHASE:
    case SW_T_BALANCE:
    case SW_T_VOID: flow_financial(s, conn, r, t); return;
    case SW_T_REVERSAL: flow_reversal(s, conn, r, t); return;
    case SW_T_SETTLE: flow_settle(s, conn, r, t); return;
    case SW_T_UPLOAD: flow_upload(s, conn, r, t); return;
    case SW_T_LOOKUP:
    case SW_T_PHONEPAY: flow_phonepay(s, conn, r, t); return;
    default:
        net_metric_add(s->m.unsupported, 1);
        sw_answer(s, conn, r, t, SWITCH_RC_NOT_SUPPORTED);
        return;
    }
}
