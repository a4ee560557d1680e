/*
 * service.c: the `mtms` service (docs/mtms.md, docs/openapi/mtms.yaml): [mtms]
 * configuration, the operator listener (mutual TLS; "operator:*" certificates only) on the
 * daemon's loop, and the outbox worker thread that forwards TKs to the customers' KMSes.
 */
#include "host/mtms/mtms_int.h"
#include "host/service.h"
#include "lib/log.h"
#include "lib/str.h"
#include "net/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct mtms_fields {
    int64_t outbox_interval_ms;
    int64_t outbox_backoff_min_ms, outbox_backoff_max_ms, outbox_lease_ms;
    int64_t outbox_batch;
    int64_t kms_timeout_ms;
    char kms_tls_cert[PX_PATH_MAX], kms_tls_key[PX_PATH_MAX];
} mtms_fields;

static const px_config_field mtms_fields_table[] = {
    PX_CFG_INT_(mtms_fields, outbox_interval_ms, "outbox_interval_ms", 10, 3600000, "1000"),
    PX_CFG_INT_(mtms_fields, outbox_backoff_min_ms, "outbox_backoff_min_ms", 10, 3600000, "1000"),
    PX_CFG_INT_(mtms_fields, outbox_backoff_max_ms, "outbox_backoff_max_ms", 10, 86400000,
                "300000"),
    PX_CFG_INT_(mtms_fields, outbox_lease_ms, "outbox_lease_ms", 1000, 3600000, "60000"),
    PX_CFG_INT_(mtms_fields, outbox_batch, "outbox_batch", 1, PX_MTMS_OUTBOX_BATCH, "200"),
    PX_CFG_INT_(mtms_fields, kms_timeout_ms, "kms_timeout_ms", 100, 600000, "10000"),
    PX_CFG_STR(mtms_fields, kms_tls_cert, "kms_tls_cert", ""),
    PX_CFG_STR(mtms_fields, kms_tls_key, "kms_tls_key", ""),
};

typedef struct mtms_svc {
    px_daemon *d;
    net_listener_config lcfg;
    mtms_fields f;
    mtms_forward_config fwd;
    pki_trust *trust;
    mtms *m;
    net_http_server *http;
    pthread_t worker;
    int worker_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop, draining, kicked, passing;
    net_metric *m_tk_ok, *m_tk_refused, *m_acked, *m_kms_refused, *m_retry;
    net_metric *m_tls_refused[NET_TLS_REFUSED_HANDSHAKE + 1]; /* by net_tls_refusal_kind */
} mtms_svc;

static int resolve(px_config *c, const char *in, char *out, size_t outsz, px_error *e)
{
    const char *cfg = px_config_path(c), *slash = cfg ? strrchr(cfg, '/') : NULL;
    int n = in[0] == 0 || in[0] == '/' || slash == NULL
                ? snprintf(out, outsz, "%s", in)
                : snprintf(out, outsz, "%.*s/%s", (int)(slash - cfg), cfg, in);
    return n >= 0 && (size_t)n < outsz ? PX_OK
                                       : px_error_set(e, PX_ETOOBIG, "path too long: %s", in);
}

static int mtms_configure(px_daemon *d, void **state, px_error *e)
{
    mtms_svc *s = calloc(1, sizeof *s);
    int rc;
    if (s == NULL)
        return px_error_set(e, PX_ENOMEM, "mtms: out of memory");
    net_listener_config_defaults(&s->lcfg, "mtms");
    rc = net_listener_config_bind(d->cfg, "mtms", NULL, &s->lcfg, e);
    if (rc == PX_OK)
        rc = px_config_bind(d->cfg, "mtms", mtms_fields_table,
                            sizeof mtms_fields_table / sizeof mtms_fields_table[0], &s->f, e);
    if (rc == PX_OK && (s->lcfg.tls.cert[0] == 0 || s->lcfg.tls.ca[0] == 0 ||
                        s->lcfg.tls.crl[0] == 0 || !s->lcfg.tls.require_client_cert))
        rc = px_error_set(e, PX_ECONFIG,
                          "%s: [mtms] serves operator terminals over mutual TLS "
                          "only: set tls_cert, tls_key, tls_ca, tls_crl and "
                          "tls_require_client_cert = true",
                          px_config_path(d->cfg));
    if (rc == PX_OK) {
        mtms_forward_config_default(&s->fwd);
        s->fwd.timeout_ms = s->f.kms_timeout_ms;
        s->fwd.backoff_min_ms = s->f.outbox_backoff_min_ms;
        s->fwd.backoff_max_ms = s->f.outbox_backoff_max_ms;
        s->fwd.lease_ms = s->f.outbox_lease_ms;
        s->fwd.batch = (size_t)s->f.outbox_batch;
        px_strlcpy(s->fwd.tls.ca, s->lcfg.tls.ca, sizeof s->fwd.tls.ca);
        px_strlcpy(s->fwd.tls.crl, s->lcfg.tls.crl, sizeof s->fwd.tls.crl);
        /* towards the KMSes the MTMS shows its own certificate (serverAuth and clientAuth) */
        if (s->f.kms_tls_cert[0] != 0) {
            rc = resolve(d->cfg, s->f.kms_tls_cert, s->fwd.tls.cert, sizeof s->fwd.tls.cert, e);
            if (rc == PX_OK)
                rc = resolve(d->cfg, s->f.kms_tls_key, s->fwd.tls.key, sizeof s->fwd.tls.key, e);
        } else {
            px_strlcpy(s->fwd.tls.cert, s->lcfg.tls.cert, sizeof s->fwd.tls.cert);
            px_strlcpy(s->fwd.tls.key, s->lcfg.tls.key, sizeof s->fwd.tls.key);
        }
    }
    if (rc != PX_OK) {
        free(s);
        return rc;
    }
    s->d = d;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    *state = s;
    return PX_OK;
}

/* ---- the outbox worker ---- */

static void kick(mtms_svc *s)
{
    pthread_mutex_lock(&s->mu);
    s->kicked = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void *worker_main(void *arg)
{
    mtms_svc *s = arg;
    store *st = NULL;
    mtms *m = NULL;
    px_error e = {0};
    if (store_open(&s->d->store_cfg, &st, &e) != PX_OK || mtms_open(st, NULL, &m, &e) != PX_OK) {
        px_errorlog(MTMS_MOD, "outbox worker: %s: TKs are not forwarded", px_error_text(&e));
        store_close(st);
        return NULL;
    }
    for (;;) {
        mtms_forward_stats fs;
        struct timespec until;
        pthread_mutex_lock(&s->mu);
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)(s->f.outbox_interval_ms / 1000);
        until.tv_nsec += (long)(s->f.outbox_interval_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!s->stop && !s->kicked && pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0)
            ;
        s->kicked = 0;
        if (s->stop || s->draining) {
            pthread_mutex_unlock(&s->mu);
            if (s->stop)
                break;
            continue;
        }
        s->passing = 1;
        pthread_mutex_unlock(&s->mu);
        do {
            if (mtms_forward_due(m, &s->fwd, &fs, &e) != PX_OK)
                px_errorlog(MTMS_MOD, "outbox: %s", px_error_text(&e));
            net_metric_add(s->m_acked, (int64_t)fs.acknowledged);
            net_metric_add(s->m_kms_refused, (int64_t)fs.refused);
            net_metric_add(s->m_retry, (int64_t)fs.failed);
        } while (fs.sent > 0 && fs.failed == 0 && !s->stop); /* more may be due */
        pthread_mutex_lock(&s->mu);
        s->passing = 0;
        pthread_mutex_unlock(&s->mu);
    }
    mtms_close(m);
    store_close(st);
    return NULL;
}

/* ---- the operator API ---- */

static int operator_only(mtms_svc *s, net_http_req *req, char *cn, size_t cnsz)
{
    pki_role role;
    char name[PX_PKI_NAME_MAX];
    cn[0] = 0;
    (void)net_http_peer_cn(req, cn, cnsz);
    if (pki_cn_split(cn, &role, name) == PX_OK && role == PKI_ROLE_OPERATOR)
        return 1;
    mtms_audit(s->m, cn[0] ? cn : net_http_peer_addr(req), "access", NULL, NULL, 0,
               "%s %s refused: only operator terminals may use the MTMS", net_http_method(req),
               net_http_path(req));
    net_http_reply_error(req, 403, "forbidden", "certificate %s is not an operator terminal's",
                         cn[0] ? cn : "(none)");
    return 0;
}

static void reply_err(net_http_req *req, int rc, const px_error *e)
{
    switch (rc) {
    case PX_ENOTFOUND:
        net_http_reply_error(req, 404,
                             strstr(px_error_text(e), "customer") ? "unknown_customer"
                                                                  : "unknown_serial",
                             "%s", px_error_text(e));
        break;
    case PX_EINVAL:
    case PX_EFORMAT: net_http_reply_error(req, 400, "bad_request", "%s", px_error_text(e)); break;
    case PX_EAUTH: net_http_reply_error(req, 401, "bad_signature", "%s", px_error_text(e)); break;
    case PX_EPERM: net_http_reply_error(req, 403, "forbidden", "%s", px_error_text(e)); break;
    case PX_ECONFLICT: net_http_reply_error(req, 409, "wrong_kms", "%s", px_error_text(e)); break;
    default:
        px_errorlog(MTMS_MOD, "%s", px_error_text(e));
        net_http_reply_error(req, 500, "internal", "internal error");
    }
}

static json_t *customer_json(const mtms_customer *c)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "code", c->code, "name", c->name, "kms_cn", c->kms_cn,
                     "kms_cert", c->kms_cert);
}

static void on_serial(net_http_req *req, void *user)
{
    mtms_svc *s = user;
    char cn[PX_TLS_NAME_MAX];
    mtms_serial_info si;
    mtms_customer *c;
    px_error e = {0};
    int rc;
    if (!operator_only(s, req, cn, sizeof cn))
        return;
    if ((c = malloc(sizeof *c)) == NULL) {
        net_http_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    rc = mtms_lookup_serial(s->m, net_http_segment(req, 3), cn, &si, c, &e);
    if (rc != PX_OK)
        reply_err(req, rc, &e);
    else
        net_http_reply_json(req, 200,
                            json_pack("{s:s, s:s, s:s, s:o}", "serial", si.serial, "status",
                                      si.status, "order", si.order_no, "customer",
                                      customer_json(c)));
    free(c);
}

static void on_customer(net_http_req *req, void *user)
{
    mtms_svc *s = user;
    char cn[PX_TLS_NAME_MAX];
    mtms_customer *c;
    px_error e = {0};
    int rc;
    if (!operator_only(s, req, cn, sizeof cn))
        return;
    if ((c = malloc(sizeof *c)) == NULL) {
        net_http_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    rc = mtms_lookup_customer(s->m, net_http_segment(req, 3), cn, c, &e);
    if (rc != PX_OK)
        reply_err(req, rc, &e);
    else
        net_http_reply_json(req, 200, customer_json(c));
    free(c);
}

static void on_crl(net_http_req *req, void *user)
{
    mtms_svc *s = user;
    char cn[PX_TLS_NAME_MAX], *crl = NULL;
    px_error e = {0};
    if (!operator_only(s, req, cn, sizeof cn))
        return;
    if (pki_read_file(s->lcfg.tls.crl, PX_PKI_CRL_MAX, &crl, NULL, &e) != PX_OK) {
        reply_err(req, PX_EIO, &e);
        return;
    }
    net_http_reply_json(req, 200, json_pack("{s:s}", "crl", crl));
    free(crl);
}

static void on_tk(net_http_req *req, void *user)
{
    mtms_svc *s = user;
    char cn[PX_TLS_NAME_MAX];
    json_t *in = NULL, *confirmed;
    mtms_submit_result r;
    px_error e = {0};
    int rc;
    if (!operator_only(s, req, cn, sizeof cn))
        return;
    if (net_http_body_json(req, &in, &e) != PX_OK) {
        net_http_reply_error(req, 400, "bad_json", "%s", e.msg);
        return;
    }
    confirmed = json_object_get(in, "confirmed");
    rc = mtms_tk_submit(s->m, cn, json_string_value(json_object_get(in, "serial")),
                        json_string_value(json_object_get(in, "customer_code")),
                        json_is_true(confirmed), json_string_value(json_object_get(in, "envelope")),
                        &r, &e);
    json_decref(in);
    net_metric_add(rc == PX_OK ? s->m_tk_ok : s->m_tk_refused, 1);
    if (rc != PX_OK) {
        reply_err(req, rc, &e);
        return;
    }
    net_http_reply_json(req, 202,
                        json_pack("{s:s, s:s, s:s, s:s, s:b, s:s?}", "serial", r.serial,
                                  "customer_code", r.customer_code, "status", "received", "tk_kcv",
                                  r.tk_kcv, "duplicate", r.duplicate, "reassociated_from",
                                  r.previous_customer[0] ? r.previous_customer : NULL));
    if (!r.duplicate)
        kick(s);
}

/* The listener refused an operator terminal's handshake: audit it and count it. */
static void on_tls_refused(const net_tls_refusal *r, void *user)
{
    mtms_svc *s = user;
    mtms_audit_tls_refused(s->m, r);
    if (r->kind >= 0 && r->kind <= NET_TLS_REFUSED_HANDSHAKE)
        net_metric_add(s->m_tls_refused[r->kind], 1);
}

static void register_metrics(mtms_svc *s)
{
    static const char tk[] = "TK envelopes uploaded by operator terminals";
    static const char fw[] = "TK envelopes forwarded to KMSes, by outcome";
    static const char tls[] = "Operator terminals' TLS handshakes refused and audited, by kind";
    for (int k = NET_TLS_REFUSED_CERT; k <= NET_TLS_REFUSED_HANDSHAKE; k++) {
        char labels[48];
        snprintf(labels, sizeof labels, "kind=\"%s\"", net_tls_refusal_kind_name(k));
        s->m_tls_refused[k] = net_metric_counter("possum_mtms_tls_refused_total", tls, labels);
    }
    s->m_tk_ok = net_metric_counter("possum_mtms_tk_total", tk, "result=\"received\"");
    s->m_tk_refused = net_metric_counter("possum_mtms_tk_total", tk, "result=\"refused\"");
    s->m_acked = net_metric_counter("possum_mtms_forward_total", fw, "result=\"acknowledged\"");
    s->m_kms_refused = net_metric_counter("possum_mtms_forward_total", fw, "result=\"refused\"");
    s->m_retry = net_metric_counter("possum_mtms_forward_total", fw, "result=\"retry\"");
}

static int mtms_start(void *state, px_daemon *d, px_error *e)
{
    mtms_svc *s = state;
    int rc = pki_trust_load(s->lcfg.tls.ca, s->lcfg.tls.crl, &s->trust, e);
    if (rc != PX_OK)
        return px_error_prefix(e, "mtms: ");
    rc = mtms_open(d->st, s->trust, &s->m, e);
    register_metrics(s);
    s->lcfg.on_tls_refused = on_tls_refused; /* audited, like every other refusal */
    s->lcfg.tls_refused_user = s;
    if (rc == PX_OK)
        rc = net_http_server_new(d->base, &s->lcfg, &s->http, e);
    if (rc == PX_OK)
        rc = net_http_route(s->http, "GET", "/v1/mtms/serials/*", on_serial, s, e);
    if (rc == PX_OK)
        rc = net_http_route(s->http, "GET", "/v1/mtms/customers/*", on_customer, s, e);
    if (rc == PX_OK)
        rc = net_http_route(s->http, "GET", "/v1/mtms/crl", on_crl, s, e);
    if (rc == PX_OK)
        rc = net_http_route(s->http, "POST", "/v1/mtms/tks", on_tk, s, e);
    if (rc == PX_OK)
        rc = px_daemon_announce(d, "mtms", s->lcfg.listen, net_http_server_port(s->http));
    if (rc == PX_OK) {
        if (pthread_create(&s->worker, NULL, worker_main, s) != 0)
            rc = px_error_set(e, PX_EIO, "mtms: cannot start the outbox worker");
        else
            s->worker_started = 1;
    }
    if (rc == PX_OK)
        px_info(MTMS_MOD, "MTMS ready: outbox every %lld ms, %zu TKs per KMS request",
                (long long)s->f.outbox_interval_ms, s->fwd.batch);
    return rc;
}

static void mtms_drain(void *state)
{
    mtms_svc *s = state;
    pthread_mutex_lock(&s->mu);
    s->draining = 1;
    pthread_mutex_unlock(&s->mu);
}

static size_t mtms_busy(void *state)
{
    mtms_svc *s = state;
    size_t n;
    pthread_mutex_lock(&s->mu);
    n = (size_t)s->passing;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void mtms_free(void *state)
{
    mtms_svc *s = state;
    if (s == NULL)
        return;
    if (s->worker_started) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->worker, NULL);
    }
    net_http_server_free(s->http);
    mtms_close(s->m);
    pki_trust_free(s->trust);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

const px_service px_service_mtms = {
    .name = "mtms",
    .configure = mtms_configure,
    .start = mtms_start,
    .drain = mtms_drain,
    .busy = mtms_busy,
    .free = mtms_free,
};
