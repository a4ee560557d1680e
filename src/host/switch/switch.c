/*
 * switch.c: the transaction platform (`switch` service, docs/switch.md): terminals speak the
 * UnionPay POS dialect of ISO 8583 over 2-byte framed TCP (TLS optional), the provider
 * ISO 8583:1987 (docs/switch-protocol.md). This file is the service: configuration, start,
 * drain, the frame callback (unpack, code 30 for what does not parse) and metrics. The
 * flows are in sw_flow.c, the store in sw_writer.c / sw_jobs.c, the provider link in
 * sw_provider.c, the terminal cache in sw_term.c.
 */
#include "host/switch/sw_int.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const px_config_field sw_fields[] = {
    PX_CFG_STR(sw_config, acquirer_id, "acquirer_id", "01020000"),
    PX_CFG_INT_(sw_config, provider_timeout_ms, "provider_timeout_ms", 50, 300000, "10000"),
    PX_CFG_INT_(sw_config, max_amount_minor, "max_amount_minor", 1, 999999999999LL, "100000000"),
    PX_CFG_STR(sw_config, route_bins, "route_bins", ""),
    PX_CFG_STR(sw_config, zpk, "zpk", "demo.zpk"),
    PX_CFG_STR(sw_config, dek_label, "dek_label", "switch.dek"),
    PX_CFG_INT_(sw_config, group_commit_max, "group_commit_max", 1, PX_SWITCH_GROUP_MAX, "1000"),
    PX_CFG_INT_(sw_config, writers, "writers", 0, PX_SWITCH_WRITERS_MAX, "1"),
    PX_CFG_INT_(sw_config, cache_ttl_ms, "cache_ttl_ms", 0, 3600000, "1000"),
    PX_CFG_INT_(sw_config, cache_terminals, "cache_terminals", 16, PX_SWITCH_CACHE_MAX, "65536"),
    PX_CFG_INT_(sw_config, reversal_retry_ms, "reversal_retry_ms", 100, 3600000, "5000"),
    PX_CFG_INT_(sw_config, orphan_after_ms, "orphan_after_ms", 1000, 86400000, "60000"),
    PX_CFG_INT_(sw_config, echo_interval_ms, "echo_interval_ms", 0, 3600000, "30000"),
    PX_CFG_INT_(sw_config, max_in_flight, "max_in_flight", 1, PX_SWITCH_IN_FLIGHT_MAX, "10000"),
    PX_CFG_INT_(sw_config, fee_bp, "fee_bp", 0, 10000, "0"),
    PX_CFG_INT_(sw_config, duplicate_wait_ms, "duplicate_wait_ms", 0, 600000, "15000"),
};

/* The running instance, for switch_terminal_set_update_waiting called in-process. */
static switch_svc *sw_running;
static pthread_t sw_loop_thread;

/* route_bins: comma-separated prefixes of 1 to 11 digits. */
static int parse_bins(switch_svc *s, px_config *c, px_error *e)
{
    const char *p = s->cfg.route_bins;
    s->nbins = 0;
    while (*p) {
        size_t n = strcspn(p, ", ");
        if (n > 0) {
            if (n > 11 || !px_is_digits(p, n) || s->nbins >= PX_SWITCH_ROUTES_MAX)
                return px_error_set(e, PX_ECONFIG,
                                    "%s:%d: [switch] route_bins: expected up to %d BIN prefixes "
                                    "of 1 to 11 digits, comma-separated",
                                    px_config_path(c), px_config_line(c, "switch", "route_bins"),
                                    PX_SWITCH_ROUTES_MAX);
            memcpy(s->bins[s->nbins], p, n);
            s->bins[s->nbins++][n] = 0;
        }
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return PX_OK;
}

static void register_metrics(sw_metrics *m)
{
    static const char fmt[] = "Messages that did not parse (answered with code 30)";
    m->rx = net_metric_counter("possum_switch_messages_received_total",
                               "ISO 8583 messages received from terminals", NULL);
    m->tx = net_metric_counter("possum_switch_messages_sent_total",
                               "ISO 8583 messages sent to terminals", NULL);
    m->format_err = net_metric_counter("possum_switch_format_errors_total", fmt,
                                       "action=\"code30\"");
    m->closed_unreadable = net_metric_counter("possum_switch_format_errors_total", fmt,
                                              "action=\"closed\"");
    m->unsupported = net_metric_counter("possum_switch_unsupported_total",
                                        "Requests answered with code 40 (not supported)", NULL);
    m->security = net_metric_counter("possum_switch_security_events_total",
                                     "Requests whose MAC was missing or wrong (answered A0)",
                                     "reason=\"mac\"");
    m->dup_replayed = net_metric_counter("possum_switch_duplicates_total",
                                         "Retransmissions of a request already seen",
                                         "action=\"replayed\"");
    m->dup_refused = net_metric_counter("possum_switch_duplicates_total",
                                        "Retransmissions of a request already seen",
                                        "action=\"refused94\"");
    m->dup_waiting = net_metric_counter("possum_switch_duplicates_total",
                                        "Retransmissions of a request already seen",
                                        "action=\"waited\"");
    m->approved = net_metric_counter("possum_switch_transactions_total",
                                     "Financial requests decided", "result=\"approved\"");
    m->declined = net_metric_counter("possum_switch_transactions_total",
                                     "Financial requests decided", "result=\"declined\"");
    m->prov_sent = net_metric_counter("possum_switch_provider_requests_total",
                                      "Requests sent to the provider", NULL);
    m->prov_timeout = net_metric_counter("possum_switch_provider_timeouts_total",
                                         "Provider requests not answered in time (91)", NULL);
    m->prov_late = net_metric_counter("possum_switch_provider_late_total",
                                      "Provider answers that matched nothing in flight", NULL);
    m->prov_up = net_metric_gauge("possum_switch_provider_up", "1 when the provider link is up",
                                  NULL);
    m->rev_sent = net_metric_counter("possum_switch_provider_reversals_total",
                                     "Reversals (0420/0421) sent to the provider",
                                     "state=\"sent\"");
    m->rev_done = net_metric_counter("possum_switch_provider_reversals_total",
                                     "Reversals (0420/0421) sent to the provider",
                                     "state=\"confirmed\"");
    m->gc_commits = net_metric_counter("possum_switch_group_commits_total",
                                       "Store transactions run by the group-commit writers", NULL);
    m->gc_jobs = net_metric_counter("possum_switch_group_jobs_total",
                                    "Jobs committed by the group-commit writers", NULL);
    m->gc_failures = net_metric_counter("possum_switch_store_failures_total",
                                        "Jobs whose store transaction failed (answered 96)", NULL);
    m->gc_queue = net_metric_gauge("possum_switch_writer_queue",
                                   "Jobs waiting for a group-commit writer", NULL);
    m->store_errors = net_metric_counter("possum_switch_store_errors_total",
                                         "Store errors seen by the switch", NULL);
    m->signons = net_metric_counter("possum_switch_signons_total", "Terminal sign-ons", NULL);
    m->in_flight = net_metric_gauge("possum_switch_provider_in_flight",
                                    "Requests waiting for the provider", NULL);
}

static int switch_configure(px_daemon *d, void **state, px_error *e)
{
    switch_svc *s = calloc(1, sizeof *s);
    sw_config *c;
    int rc;
    if (s == NULL)
        return px_error_set(e, PX_ENOMEM, "switch: out of memory");
    c = &s->cfg;
    net_listener_config_defaults(&c->listen, "switch");
    px_strlcpy(c->listen.listen, "127.0.0.1:5000", sizeof c->listen.listen);
    rc = net_listener_config_bind(d->cfg, "switch", NULL, &c->listen, e);
    if (rc == PX_OK)
        rc = px_config_bind(d->cfg, "switch", sw_fields, sizeof sw_fields / sizeof sw_fields[0], c,
                            e);
    if (rc == PX_OK && px_config_get(d->cfg, "switch", "provider_connect") != NULL) {
        net_link_config_defaults(&c->provider, "provider");
        rc = net_link_config_bind(d->cfg, "switch", "provider_", &c->provider, e);
        c->has_provider = rc == PX_OK;
    }
    if (rc == PX_OK)
        rc = switch_hsm_config_bind(d->cfg, &c->hsm, e);
    if (rc == PX_OK)
        rc = parse_bins(s, d->cfg, e);
    if (rc == PX_OK && (strlen(c->acquirer_id) == 0 || strlen(c->acquirer_id) > 11 ||
                        !px_is_digits(c->acquirer_id, strlen(c->acquirer_id))))
        rc = px_error_set(e, PX_ECONFIG, "%s:%d: [switch] acquirer_id: expected 1 to 11 digits",
                          px_config_path(d->cfg), px_config_line(d->cfg, "switch", "acquirer_id"));
    if (rc != PX_OK) {
        free(s);
        return rc;
    }
    s->d = d;
    register_metrics(&s->m);
    *state = s;
    return PX_OK;
}

void sw_owner_token(switch_svc *s, char out[64])
{
    snprintf(out, 64, "%s:%llu", s->owner_prefix, (unsigned long long)++s->owner_seq);
}

/* A message that did not parse: code 30 when its MTI is a readable request, else close. */
static void answer_format_error(switch_svc *s, uint64_t conn, const iso8583_msg *req,
                                const px_error *why)
{
    char rmti[5];
    if (req->mti_valid && iso8583_response_mti(req->mti, rmti) == PX_OK) {
        sw_req *bare = calloc(1, sizeof *bare);
        if (bare != NULL) {
            /* Only the framing and MTI of a broken message are trusted in the answer. */
            iso8583_msg_init(&bare->msg, &iso8583_unionpay_pos);
            (void)iso8583_set_tpdu(&bare->msg, req->tpdu, req->tpdu_len, NULL);
            (void)iso8583_set_header(&bare->msg, req->header, req->header_len, NULL);
            (void)iso8583_set_mti(&bare->msg, req->mti, NULL);
            px_warn("switch", "conn %llu: format error in %s: %s (answered 30)",
                    (unsigned long long)conn, req->mti, px_error_text(why));
            net_metric_add(s->m.format_err, 1);
            sw_answer(s, conn, bare, NULL, SWITCH_RC_FORMAT_ERROR);
            free(bare);
            return;
        }
    }
    px_warn("switch", "conn %llu: unreadable message: %s (closing)", (unsigned long long)conn,
            px_error_text(why));
    net_metric_add(s->m.closed_unreadable, 1);
    net_frame_server_close_conn(s->srv, conn);
}

static void on_frame(net_frame_server *srv, uint64_t conn, const uint8_t *data, size_t len,
                     void *user)
{
    switch_svc *s = user;
    sw_req *r = malloc(sizeof *r);
    char rmti[5];
    px_error e = {0};
    (void)srv;
    net_metric_add(s->m.rx, 1);
    if (r == NULL) {
        net_frame_server_close_conn(s->srv, conn);
        return;
    }
    memset((char *)r + offsetof(sw_req, raw), 0, sizeof *r - offsetof(sw_req, raw));
    if (iso8583_unpack(&iso8583_unionpay_pos, data, len, &r->msg, &e) != PX_OK) {
        answer_format_error(s, conn, &r->msg, &e);
        free(r);
        return;
    }
    if (iso8583_response_mti(r->msg.mti, rmti) != PX_OK) {
        px_warn("switch", "conn %llu: unexpected %s from a terminal (ignored)",
                (unsigned long long)conn, r->msg.mti);
        iso8583_msg_cleanse(&r->msg);
        free(r);
        return;
    }
    r->raw = data;
    r->rawlen = len;
    if (sw_req_parse(r, &e) != PX_OK)
        answer_format_error(s, conn, &r->msg, &e);
    else
        sw_flow_request(s, conn, r);
    iso8583_msg_cleanse(&r->msg);
    crypto_cleanse(r->pin_block, sizeof r->pin_block);
    free(r);
}

/* The node's HSM (px_daemon_hsm: shared with the other services, event-loop thread only;
 * the key worker takes a session of it) and the keys the switch needs beside the
 * terminals': the zone PIN key and the data key that seals provider messages at rest (made
 * on first start). Without an HSM the switch still runs (echo, and 96 for anything that
 * needs a key) and says why. */
static void open_hsm(switch_svc *s)
{
    px_error e = {0};
    hsm_keyblock kb;
    static const hsm_key_attrs dek_attrs = {"D0", 'A', 'B', 'N', 16};
    int rc = px_daemon_hsm(s->d, "switch", &s->cfg.hsm, &s->hsm, &e);
    if (rc != PX_OK) {
        px_strlcpy(s->hsm_error, px_error_text(&e), sizeof s->hsm_error);
        px_errorlog("switch", "HSM unavailable: %s; sign-on and transactions answer 96",
                    s->hsm_error);
        s->hsm = NULL;
        return;
    }
    rc = hsm_key_load_named(s->hsm, s->cfg.dek_label, &s->dek, &e);
    if (rc == PX_ENOTFOUND) {
        rc = hsm_key_generate(s->hsm, &dek_attrs, s->cfg.dek_label, &kb, &e);
        if (rc == PX_OK || rc == PX_EEXIST) /* another node made it first */
            rc = hsm_key_load_named(s->hsm, s->cfg.dek_label, &s->dek, &e);
    }
    if (rc != PX_OK)
        px_errorlog("switch", "data key %s: %s; transactions answer 96", s->cfg.dek_label,
                    px_error_text(&e));
    if (strlen(s->cfg.zpk) < PX_HSM_LABEL_MAX && hsm_label_is_valid(s->cfg.zpk))
        rc = hsm_key_load_named(s->hsm, s->cfg.zpk, &s->zpk, &e);
    else
        rc = hsm_key_load(s->hsm, s->cfg.zpk, &s->zpk, &e);
    if (rc != PX_OK)
        px_warn("switch", "zone PIN key %s: %s; purchases with a PIN answer 96",
                strlen(s->cfg.zpk) < PX_HSM_LABEL_MAX ? s->cfg.zpk : "(key block)",
                px_error_text(&e));
}

/* A first block of retrieval reference numbers, before anything is served. */
static int first_rrn_block(switch_svc *s, px_error *e)
{
    store_stmt *q;
    int rc = store_begin(s->d->st, e);
    if (rc == PX_OK)
        rc = store_prepare(s->d->st,
                           "UPDATE switch_counter SET next = next + $1 WHERE name = 'rrn' "
                           "RETURNING next",
                           &q, e);
    if (rc == PX_OK) {
        store_bind_int64(q, 1, PX_SWITCH_RRN_BLOCK);
        rc = store_step(q, e);
        if (rc == STORE_ROW) {
            s->rrn_end = store_col_int64(q, 0);
            s->rrn_next = s->rrn_end - PX_SWITCH_RRN_BLOCK;
            rc = PX_OK;
        } else if (rc == STORE_DONE) {
            rc = px_error_set(e, PX_ESTATE, "switch_counter: no rrn row");
        }
        store_done(q);
    }
    if (rc == PX_OK)
        rc = store_commit(s->d->st, e);
    if (rc != PX_OK)
        store_rollback(s->d->st);
    return rc;
}

static void recover_done(switch_svc *s, sw_job *j)
{
    (void)s;
    if (j->status != PX_OK)
        px_errorlog("switch", "start-up recovery failed: %s", j->errmsg);
    else if (j->out.recovered > 0)
        px_warn("switch",
                "start-up: %lld requests were at the provider when this node stopped: "
                "marked unanswered, reversals owed to the provider",
                (long long)j->out.recovered);
}

static int switch_start(void *state, px_daemon *d, px_error *e)
{
    switch_svc *s = state;
    net_frame_callbacks cb = {.on_frame = on_frame, .user = s};
    int writers = (int)s->cfg.writers;
    int rc;
    sw_job *j;
    snprintf(s->owner_prefix, sizeof s->owner_prefix, "%.24s:%d:%lld", d->node, (int)getpid(),
             (long long)px_now_ms());
    rc = sw_cache_init(&s->cache, (size_t)s->cfg.cache_terminals, e);
    if (rc != PX_OK)
        return rc;
    open_hsm(s);
    if (s->hsm != NULL && sw_keyworker_start(s, &s->keys, e) != PX_OK) {
        px_errorlog("switch", "key worker: %s; sign-on answers 96", px_error_text(e));
        e->code = PX_OK;
        s->keys = NULL;
    }
    rc = first_rrn_block(s, e);
    if (rc != PX_OK)
        return px_error_prefix(e, "switch: ");
    if (writers == 0)
        writers = 1; /* measured: one writer makes the largest groups (docs/switch.md) */
    rc = sw_writer_start(s, &d->store_cfg, writers, (size_t)s->cfg.group_commit_max, &s->writer, e);
    if (rc != PX_OK)
        return rc;
    j = sw_job_new(SW_J_RECOVER, recover_done);
    if (j != NULL) {
        px_strlcpy(j->node, d->node, sizeof j->node);
        j->cutoff_ms = px_now_ms() - s->cfg.orphan_after_ms;
        s->pending_jobs++;
        sw_writer_submit(s->writer, j);
    }
    rc = sw_provider_start(s, e);
    if (rc != PX_OK)
        return rc;
    rc = sw_ops_routes(s, e);
    if (rc != PX_OK)
        return px_error_prefix(e, "switch: operator endpoints: ");
    rc = net_frame_server_new(d->base, &s->cfg.listen, &cb, &s->srv, e);
    if (rc != PX_OK)
        return px_error_prefix(e, "switch: ");
    sw_running = s;
    sw_loop_thread = pthread_self();
    px_info("switch", "%d store writer%s, group commit up to %lld jobs, provider %s", writers,
            writers == 1 ? "" : "s", (long long)s->cfg.group_commit_max,
            s->cfg.has_provider ? s->cfg.provider.connect : "(none configured)");
    return px_daemon_announce(d, "switch", s->cfg.listen.listen, net_frame_server_port(s->srv));
}

static void switch_drain(void *state)
{
    switch_svc *s = state;
    s->draining = 1;
}

static size_t switch_busy(void *state)
{
    switch_svc *s = state;
    return s->pending_jobs + sw_provider_in_flight(s);
}

static void switch_free(void *state)
{
    switch_svc *s = state;
    if (s == NULL)
        return;
    if (sw_running == s)
        sw_running = NULL;
    net_frame_server_free(s->srv);
    sw_keyworker_stop(s->keys);
    sw_writer_stop(s->writer);
    sw_provider_stop(s);
    sw_cache_free(&s->cache, s->hsm);
    hsm_key_free(s->hsm, s->zpk);
    hsm_key_free(s->hsm, s->dek);
    px_daemon_hsm_release(s->d, s->hsm);
    free(s);
}

/* Called by switch_terminal_set_update_waiting after the store was updated. */
void sw_note_update_flag(const char *tid, int on);
void sw_note_update_flag(const char *tid, int on)
{
    sw_term *t;
    px_error e = {0};
    if (sw_running == NULL || !pthread_equal(pthread_self(), sw_loop_thread))
        return;
    if (sw_term_get(sw_running, tid, 0, &t, &e) == PX_OK && t != NULL)
        t->update_waiting = on != 0;
}

const px_service px_service_switch = {
    .name = "switch",
    .configure = switch_configure,
    .start = switch_start,
    .drain = switch_drain,
    .busy = switch_busy,
    .free = switch_free,
};
