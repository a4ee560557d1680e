/*
 * handle.c: one message from the switch in, one answer out (docs/switch-protocol.md §2).
 * Financial requests are idempotent: the answer is stored with the request's key
 * (acquirer, STAN, transmission time, MTI class) in the same transaction as its effects,
 * and a retransmission gets those bytes again; a different message reusing the key gets 94.
 */
#include "host/issuer/issuer_int.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <string.h>

/* Fields an answer copies from its request (never 2, 35, 52 or 103: no PAN or PIN). */
static const int echoed[] = {3, 4, 7, 11, 12, 13, 32, 37, 41, 42, 49, 70, 90};

/* Begin the answer to req with code rc: response MTI, echoed fields, 39, our id in 100. */
static int answer_begin(issuer_core *c, const iso8583_msg *req, iso8583_msg *rsp, const char *rc,
                        px_error *e)
{
    int r = iso8583_msg_response(req, rsp, e);
    for (size_t i = 0; r == PX_OK && i < sizeof echoed / sizeof echoed[0]; i++) {
        const uint8_t *p;
        size_t n;
        if (iso8583_get(req, echoed[i], &p, &n) == PX_OK)
            r = iso8583_set(rsp, echoed[i], (const char *)p, e);
    }
    if (r == PX_OK)
        r = iso8583_set(rsp, 39, rc, e);
    if (r == PX_OK)
        r = iso8583_set(rsp, 100, c->cfg.institution_id, e);
    return r;
}

static int answer_pack(const iso8583_msg *rsp, issuer_reply *out, px_error *e)
{
    const uint8_t *p;
    size_t n;
    int rc = iso8583_pack(&iso8583_1987_ascii, rsp, out->data, sizeof out->data, &out->len, e);
    if (rc != PX_OK)
        out->len = 0;
    else if (iso8583_get(rsp, 39, &p, &n) == PX_OK)
        px_strlcpy(out->rc, (const char *)p, sizeof out->rc);
    return rc;
}

/* An answer with nothing but the echoed fields and code rc (30, 40, 12, 94, 96, 0810). */
static void answer_plain(issuer_core *c, const iso8583_msg *req, const char *rc, issuer_reply *out)
{
    iso8583_msg rsp;
    px_error e = {0};
    if (answer_begin(c, req, &rsp, rc, &e) != PX_OK || answer_pack(&rsp, out, &e) != PX_OK) {
        px_errorlog("issuer", "cannot build the %s answer to %s: %s", rc, req->mti,
                    px_error_text(&e));
        out->len = 0;
        out->close = 1;
    }
}

/* A message that did not unpack: 30 with what could be read (MTI, 7, 11, 32, 37), else
 * the connection is closed. */
static void answer_unreadable(issuer_core *c, const iso8583_msg *req, const px_error *why,
                              issuer_reply *out)
{
    static const int kept[] = {7, 11, 32, 37};
    char rmti[5];
    iso8583_msg bare;
    if (!req->mti_valid || iso8583_response_mti(req->mti, rmti) != PX_OK) {
        px_warn("issuer", "unreadable message: %s (closing)", px_error_text(why));
        out->close = 1;
        return;
    }
    iso8583_msg_init(&bare, &iso8583_1987_ascii);
    (void)iso8583_set_mti(&bare, req->mti, NULL);
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++) {
        const uint8_t *p;
        size_t n;
        if (iso8583_get(req, kept[i], &p, &n) == PX_OK)
            (void)iso8583_set(&bare, kept[i], (const char *)p, NULL);
    }
    px_warn("issuer", "format error in %s: %s (answered 30)", req->mti, px_error_text(why));
    answer_plain(c, &bare, ISSUER_RC_FORMAT_ERROR, out);
}

/* The answer to a financial request from its outcome: 15, 38, 54 as §2 lists. */
static int answer_outcome(issuer_core *c, const iso8583_msg *req, const issuer_outcome *o,
                          issuer_reply *out, px_error *e)
{
    iso8583_msg rsp;
    int rc = answer_begin(c, req, &rsp, o->rc, e);
    if (rc == PX_OK && o->settle_mmdd[0])
        rc = iso8583_set(&rsp, 15, o->settle_mmdd, e);
    if (rc == PX_OK && o->auth_code[0])
        rc = iso8583_set(&rsp, 38, o->auth_code, e);
    if (rc == PX_OK && o->has_balance) {
        char f54[21];
        issuer_field54(o->currency[0] ? o->currency : "156", o->balance_minor, f54);
        rc = iso8583_set(&rsp, 54, f54, e);
    }
    return rc == PX_OK ? answer_pack(&rsp, out, e) : rc;
}

/* The stored answer to r's key: 1 (out filled: the same request again, or 94 for another
 * one under the same key), 0 (none), or an error. */
static int answer_stored(issuer_core *c, const iso8583_msg *req, const issuer_req *r,
                         const char *mac, issuer_reply *out, px_error *e)
{
    char stored_mac[40];
    int rc = issuer_db_message_get(c->st, r, stored_mac, sizeof stored_mac, out->data,
                                   sizeof out->data, &out->len, e);
    if (rc == PX_ENOTFOUND)
        return 0;
    if (rc != PX_OK)
        return rc;
    /* A reversal is answered once whatever its repeats say (a later send may give another
     * reason in 39): the stored answer stands. Anything else reusing a key is refused. */
    if (strcmp(stored_mac, mac) != 0 && r->kind != ISSUER_K_REVERSAL) {
        px_warn("issuer", "%s STAN %s: same key as an earlier request, other content: 94", r->mti,
                r->stan);
        answer_plain(c, req, ISSUER_RC_DUPLICATE, out);
        return 1;
    }
    out->duplicate = 1;
    px_strlcpy(out->rc, "", sizeof out->rc);
    return 1;
}

/* One attempt: look for a stored answer, else run r and store its answer, in one
 * transaction. PX_OK with out filled, or a store / HSM error (rolled back). */
static int attempt(issuer_core *c, const iso8583_msg *req, const issuer_req *r, const char *mac,
                   int inject, issuer_reply *out, px_error *e)
{
    issuer_outcome o;
    int rc = store_begin(c->st, e);
    if (rc == PX_OK && (rc = answer_stored(c, req, r, mac, out, e)) == 1) {
        store_rollback(c->st);
        return PX_OK;
    }
    if (rc == PX_OK && inject) {
        memset(&o, 0, sizeof o);
        px_strlcpy(o.rc, c->cfg.decline_code, sizeof o.rc);
        px_info("issuer", "%s STAN %s: injected decline %s", r->mti, r->stan, o.rc);
    } else if (rc == PX_OK) {
        rc = issuer_txn_run(c, r, px_now_ms(), &o, e);
    }
    if (rc == PX_OK)
        rc = answer_outcome(c, req, &o, out, e);
    if (rc == PX_OK)
        rc = issuer_db_message_put(c->st, r, mac, out->data, out->len, e);
    if (rc == PX_OK)
        rc = store_commit(c->st, e);
    if (rc != PX_OK) {
        store_rollback(c->st);
        out->len = 0;
    }
    return rc;
}

static const char *kind_name(issuer_kind k)
{
    static const char *const names[] = {"?",    "network",      "purchase", "balance",
                                        "void", "mobile debit", "credit",   "reversal"};
    return (size_t)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

/* A financial request, retried while the store says the transaction may be run again. */
static void handle_financial(issuer_core *c, const uint8_t *raw, size_t rawlen,
                             const iso8583_msg *req, const issuer_req *r, int inject,
                             issuer_reply *out)
{
    char mac[33], masked[ISSUER_MASKED_MAX];
    px_error e = {0};
    int rc = rawlen > 4 ? issuer_mac_hex(c, raw + 4, rawlen - 4, mac, &e)
                        : px_error_set(&e, PX_EINTERNAL, "message shorter than its MTI");
    for (int i = 0; rc == PX_OK && i < PX_ISSUER_TXN_RETRIES; i++) {
        rc = attempt(c, req, r, mac, inject, out, &e);
        if (rc != PX_ECONFLICT && !store_is_retryable(rc))
            break;
        rc = PX_OK; /* another writer got there first: look again */
        memset(&e, 0, sizeof e);
    }
    px_mask_pan(r->pan, masked, sizeof masked);
    if (rc != PX_OK || out->len == 0) {
        px_errorlog("issuer", "%s %s STAN %s: %s (answered 96)", r->mti, kind_name(r->kind),
                    r->stan, rc != PX_OK ? px_error_text(&e) : "too many retries");
        answer_plain(c, req, ISSUER_RC_SYSTEM_ERROR, out);
        return;
    }
    px_info("issuer", "%s %s STAN %s card %s amount %lld: %s%s", r->mti, kind_name(r->kind),
            r->stan, masked[0] ? masked : "-", (long long)r->amount_minor,
            out->duplicate ? "duplicate, original answer resent" : "answered ",
            out->duplicate ? "" : out->rc);
}

/* 0800: sign-on (001), sign-off (002) and echo (301) are answered 00; others 12. */
static void handle_netmgmt(issuer_core *c, const iso8583_msg *req, const issuer_req *r,
                           issuer_reply *out)
{
    int known = strcmp(r->nmi, "001") == 0 || strcmp(r->nmi, "002") == 0 ||
                strcmp(r->nmi, "301") == 0;
    px_info("issuer", "0800 network management %s STAN %s: %s", r->nmi, r->stan,
            known ? "00" : "12 (unknown code)");
    answer_plain(c, req, known ? ISSUER_RC_APPROVED : ISSUER_RC_INVALID_TXN, out);
}

void issuer_handle(issuer_core *c, const uint8_t *raw, size_t rawlen, const iso8583_msg *req,
                   int unpack_rc, const px_error *why, int inject_decline, issuer_reply *out)
{
    issuer_req r;
    char rmti[5];
    px_error e = {0};
    int rc;
    out->len = 0;
    out->rc[0] = 0;
    out->duplicate = out->close = 0;
    if (unpack_rc != PX_OK) {
        answer_unreadable(c, req, why, out);
        return;
    }
    if (iso8583_response_mti(req->mti, rmti) != PX_OK) {
        px_warn("issuer", "unexpected %s from the switch (ignored)", req->mti);
        return;
    }
    rc = issuer_req_parse(req, &r, &e);
    if (rc == PX_EUNSUPPORTED) {
        px_info("issuer", "%s: %s", req->mti, px_error_text(&e));
        answer_plain(c, req,
                     strcmp(req->mti, "0200") == 0 || strcmp(req->mti, "0220") == 0
                         ? ISSUER_RC_INVALID_TXN
                         : ISSUER_RC_NOT_SUPPORTED,
                     out);
    } else if (rc != PX_OK) {
        px_warn("issuer", "format error in %s: %s (answered 30)", req->mti, px_error_text(&e));
        answer_plain(c, req, ISSUER_RC_FORMAT_ERROR, out);
    } else if (r.kind == ISSUER_K_NETMGMT) {
        handle_netmgmt(c, req, &r, out);
    } else {
        handle_financial(c, raw, rawlen, req, &r, inject_decline, out);
    }
    issuer_req_cleanse(&r);
}
