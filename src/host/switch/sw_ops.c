/*
 * sw_ops.c: the switch's operator endpoints on the [http] listener (docs/switch.md,
 * "Operator endpoints"): the ledger check and balances, a terminal, a batch, and the TMS's
 * update flag. They read through the node's own store connection, so they are safe to use
 * while the node runs on SQLite (no second process opens the file).
 */
#include "host/switch/ledger.h"
#include "host/switch/sw_int.h"
#include "lib/str.h"

#include <jansson.h>
#include <string.h>

static void ledger_check(net_http_req *req, void *user)
{
    switch_svc *s = user;
    switch_ledger_check_result r;
    px_error e = {0};
    json_t *o;
    if (switch_ledger_check(s->d->st, &r, NULL, NULL, &e) != PX_OK) {
        net_http_reply_px_error(req, e.code, &e);
        return;
    }
    o = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "ok",
                  !(r.bad_balances || r.bad_txns || r.unposted || r.orphans), "accounts",
                  (json_int_t)r.accounts, "transactions", (json_int_t)r.txns, "entries",
                  (json_int_t)r.entries, "bad_balances", (json_int_t)r.bad_balances,
                  "bad_transactions", (json_int_t)r.bad_txns, "unposted", (json_int_t)r.unposted,
                  "orphans", (json_int_t)r.orphans, "pending", (json_int_t)r.pending, "outbox",
                  (json_int_t)r.outbox);
    net_http_reply_json(req, 200, o);
}

static int add_account(void *ud, const switch_ledger_account *a)
{
    json_array_append_new(ud, json_pack("{s:s, s:s, s:I, s:I}", "id", a->id, "kind", a->kind,
                                        "balance_minor", (json_int_t)a->balance, "entries",
                                        (json_int_t)a->entries));
    return 0;
}

static void ledger_balances(net_http_req *req, void *user)
{
    switch_svc *s = user;
    px_error e = {0};
    json_t *arr = json_array();
    if (switch_ledger_balances(s->d->st, add_account, arr, &e) != PX_OK) {
        json_decref(arr);
        net_http_reply_px_error(req, e.code, &e);
        return;
    }
    net_http_reply_json(req, 200, json_pack("{s:o}", "accounts", arr));
}

static json_t *terminal_json(const switch_terminal_info *t)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:I, s:b, s:s, s:I}", "tid", t->tid,
                     "mid", t->mid, "name", t->name, "status", t->status, "tmk_kcv", t->tmk_kcv,
                     "signed_on", t->signed_on, "update_waiting", t->update_waiting, "batch",
                     (json_int_t)t->batch_no, "batch_open", t->batch_open, "batch_date",
                     t->batch_date, "key_version", (json_int_t)t->key_version);
}

static void terminal_get(net_http_req *req, void *user)
{
    switch_svc *s = user;
    switch_terminal_info t;
    px_error e = {0};
    const char *tid = net_http_segment(req, 3);
    if (tid == NULL || switch_terminal_get(s->d->st, tid, &t, &e) != PX_OK) {
        net_http_reply_px_error(req, tid ? e.code : PX_EINVAL, &e);
        return;
    }
    net_http_reply_json(req, 200, terminal_json(&t));
}

/* PUT /v1/switch/terminals/TID/update-waiting {"waiting": true|false} */
static void terminal_flag(net_http_req *req, void *user)
{
    switch_svc *s = user;
    json_t *body = NULL, *w;
    px_error e = {0};
    const char *tid = net_http_segment(req, 3);
    if (net_http_body_json(req, &body, &e) != PX_OK) {
        net_http_reply_error(req, 400, "bad_json", "%s", e.msg);
        return;
    }
    w = json_object_get(body, "waiting");
    if (tid == NULL || !json_is_boolean(w)) {
        json_decref(body);
        net_http_reply_error(req, 400, "bad_request", "expected {\"waiting\": true|false}");
        return;
    }
    if (switch_terminal_set_update_waiting(s->d->st, tid, json_is_true(w), &e) != PX_OK) {
        json_decref(body);
        net_http_reply_px_error(req, e.code, &e);
        return;
    }
    net_http_reply_json(req, 200,
                        json_pack("{s:s, s:b}", "tid", tid, "update_waiting", json_is_true(w)));
    json_decref(body);
}

static int add_diff(void *ud, const switch_batch_diff *d)
{
    json_array_append_new(ud, json_pack("{s:s, s:s, s:s, s:I, s:I}", "side", d->side, "stan",
                                        d->stan, "type", d->ttype, "amount_switch_minor",
                                        (json_int_t)d->amount_switch, "amount_terminal_minor",
                                        (json_int_t)d->amount_terminal));
    return 0;
}

/* GET /v1/switch/batches/TID/BATCH */
static void batch_get(net_http_req *req, void *user)
{
    switch_svc *s = user;
    switch_batch_report b;
    px_error e = {0};
    int64_t no = 0;
    const char *tid = net_http_segment(req, 3), *bs = net_http_segment(req, 4);
    json_t *diffs;
    if (tid == NULL || bs == NULL || px_parse_i64(bs, 0, 999999, &no) != PX_OK) {
        net_http_reply_error(req, 400, "bad_path", "expected /v1/switch/batches/TID/BATCH");
        return;
    }
    diffs = json_array();
    if (switch_ledger_batch(s->d->st, tid, no, &b, add_diff, diffs, &e) != PX_OK) {
        json_decref(diffs);
        net_http_reply_px_error(req, e.code, &e);
        return;
    }
    net_http_reply_json(
        req, 200,
        json_pack("{s:s, s:I, s:s, s:i, s:{s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I}, s:I, s:o}",
                  "tid", b.tid, "batch", (json_int_t)b.batch_no, "state", b.state, "result",
                  b.result, "switch", "debit_count", (json_int_t)b.sw_debit_count, "debit_minor",
                  (json_int_t)b.sw_debit_amount, "credit_count", (json_int_t)b.sw_credit_count,
                  "credit_minor", (json_int_t)b.sw_credit_amount, "terminal", "debit_count",
                  (json_int_t)b.term_debit_count, "debit_minor", (json_int_t)b.term_debit_amount,
                  "credit_count", (json_int_t)b.term_credit_count, "credit_minor",
                  (json_int_t)b.term_credit_amount, "uploaded", (json_int_t)b.uploaded,
                  "differences", diffs));
}

int sw_ops_routes(switch_svc *s, px_error *e)
{
    net_http_server *h = s->d->http;
    int rc;
    if (h == NULL)
        return PX_OK;
    rc = net_http_route(h, "GET", "/v1/switch/ledger/check", ledger_check, s, e);
    if (rc == PX_OK)
        rc = net_http_route(h, "GET", "/v1/switch/ledger/balances", ledger_balances, s, e);
    if (rc == PX_OK)
        rc = net_http_route(h, "GET", "/v1/switch/terminals/*", terminal_get, s, e);
    if (rc == PX_OK)
        rc = net_http_route(h, "PUT", "/v1/switch/terminals/*/update-waiting", terminal_flag, s, e);
    if (rc == PX_OK)
        rc = net_http_route(h, "GET", "/v1/switch/batches/*/*", batch_get, s, e);
    return rc;
}
