/*
 * service.c: the `kms` service (docs/kms.md, docs/openapi/kms.yaml): [kms] configuration,
 * the intake listener (mutual TLS; only the MTMS's certificate may deliver TKs) and the
 * key-download listener for terminals, both HTTP/JSON on the daemon's loop.
 */
#include "host/kms/kms_int.h"
#include "host/service.h"
#include "lib/hex.h"
#include "lib/log.h"
#include "lib/str.h"
#include "net/metrics.h"

#include <openssl/crypto.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct kms_svc {
    px_daemon *d;
    kms_config kc;
    net_listener_config intake_cfg, download_cfg;
    int has_download;
    kms *k;
    int own_hsm; /* no [hsm] in the file: the HSM [kms] hsm_* names (px_daemon_hsm) */
    hsm_config hcfg;
    hsm *hsm;
    net_http_server *intake, *download;
    net_metric *m_tk_ok, *m_tk_refused, *m_dl_ok, *m_dl_refused;
    net_metric *m_tls_refused[NET_TLS_REFUSED_HANDSHAKE + 1]; /* by net_tls_refusal_kind */
} kms_svc;

typedef struct kms_fields {
    char customer[PX_CUSTOMER_CODE_MAX];
    char recv_key[PX_HSM_LABEL_MAX];
    char recv_cert[PX_PATH_MAX];
    char mtms_cn[256];
    char zone_key[PX_HSM_LABEL_MAX];
    int64_t challenge_ttl_ms;
    char download_listen[PX_NET_ADDR_MAX];
} kms_fields;

static const px_config_field kms_fields_table[] = {
    PX_CFG_STR_REQ(kms_fields, customer, "customer"),
    PX_CFG_STR(kms_fields, recv_key, "recv_key", "kms.recv"),
    PX_CFG_STR_REQ(kms_fields, recv_cert, "recv_cert"),
    PX_CFG_STR_REQ(kms_fields, mtms_cn, "mtms_cn"),
    PX_CFG_STR(kms_fields, zone_key, "zone_key", ""),
    PX_CFG_INT_(kms_fields, challenge_ttl_ms, "challenge_ttl_ms", 1000, PX_KMS_CHALLENGE_TTL_MS_MAX,
                "60000"),
};

/* A path from the file, relative to the config file's directory (as net does for TLS). */
static int resolve(px_config *c, const char *in, char *out, size_t outsz, px_error *e)
{
    const char *cfg = px_config_path(c), *slash = cfg ? strrchr(cfg, '/') : NULL;
    int n = in[0] == '/' || slash == NULL
                ? snprintf(out, outsz, "%s", in)
                : snprintf(out, outsz, "%.*s/%s", (int)(slash - cfg), cfg, in);
    return n >= 0 && (size_t)n < outsz ? PX_OK
                                       : px_error_set(e, PX_ETOOBIG, "path too long: %s", in);
}

static int kms_configure(px_daemon *d, void **state, px_error *e)
{
    kms_svc *s = calloc(1, sizeof *s);
    kms_fields f;
    int rc;
    if (s == NULL)
        return px_error_set(e, PX_ENOMEM, "kms: out of memory");
    memset(&f, 0, sizeof f);
    net_listener_config_defaults(&s->intake_cfg, "kms");
    rc = net_listener_config_bind(d->cfg, "kms", NULL, &s->intake_cfg, e);
    if (rc == PX_OK && px_config_line(d->cfg, "kms", "max_body") == 0)
        s->intake_cfg.max_body = 1024 * 1024; /* room for PX_KMS_BATCH_MAX envelopes */
    if (rc == PX_OK && px_config_get(d->cfg, "kms", "download_listen") != NULL) {
        net_listener_config_defaults(&s->download_cfg, "kms.download");
        rc = net_listener_config_bind(d->cfg, "kms", "download_", &s->download_cfg, e);
        s->has_download = rc == PX_OK;
        if (rc == PX_OK)
            px_strlcpy(s->download_cfg.name, "kms.download", sizeof s->download_cfg.name);
    }
    if (rc == PX_OK)
        rc = px_config_bind(d->cfg, "kms", kms_fields_table,
                            sizeof kms_fields_table / sizeof kms_fields_table[0], &f, e);
    if (rc == PX_OK && !px_config_has_section(d->cfg, "hsm")) {
        s->own_hsm = 1;
        rc = kms_hsm_config_bind(d->cfg, &s->hcfg, e);
    }
    if (rc == PX_OK && (s->intake_cfg.tls.cert[0] == 0 || s->intake_cfg.tls.ca[0] == 0 ||
                        s->intake_cfg.tls.crl[0] == 0 || !s->intake_cfg.tls.require_client_cert))
        rc = px_error_set(e, PX_ECONFIG,
                          "%s: [kms] takes TKs over mutual TLS only: set tls_cert, "
                          "tls_key, tls_ca, tls_crl and tls_require_client_cert = true",
                          px_config_path(d->cfg));
    if (rc == PX_OK) {
        kms_config_default(&s->kc);
        px_strlcpy(s->kc.customer, f.customer, sizeof s->kc.customer);
        px_strlcpy(s->kc.recv_key, f.recv_key, sizeof s->kc.recv_key);
        px_strlcpy(s->kc.mtms_cn, f.mtms_cn, sizeof s->kc.mtms_cn);
        px_strlcpy(s->kc.zone_key, f.zone_key, sizeof s->kc.zone_key);
        px_strlcpy(s->kc.ca, s->intake_cfg.tls.ca, sizeof s->kc.ca);
        px_strlcpy(s->kc.crl, s->intake_cfg.tls.crl, sizeof s->kc.crl);
        s->kc.challenge_ttl_ms = f.challenge_ttl_ms;
        rc = resolve(d->cfg, f.recv_cert, s->kc.recv_cert, sizeof s->kc.recv_cert, e);
    }
    if (rc != PX_OK) {
        free(s);
        return rc;
    }
    s->d = d;
    *state = s;
    return PX_OK;
}

/* ---- replies ---- */

static void reply_refusal(net_http_req *req, int rc, const px_error *e)
{
    static const struct {
        int rc, status;
        const char *code;
    } map[] = {
        {PX_EINVAL, 400, "bad_request"},  {PX_EFORMAT, 400, "bad_request"},
        {PX_EAUTH, 401, "proof_failed"},  {PX_EPERM, 403, "forbidden"},
        {PX_ENOTFOUND, 404, "not_found"}, {PX_ECONFLICT, 409, "replayed"},
        {PX_ETIMEOUT, 410, "expired"},    {PX_ESTATE, 409, "conflict"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].rc == rc) {
            net_http_reply_error(req, map[i].status, map[i].code, "%s", px_error_text(e));
            return;
        }
    px_errorlog(KMS_MOD, "%s", px_error_text(e));
    net_http_reply_error(req, 500, "internal", "internal error");
}

static const char *body_str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* JSON body, or a 400 sent. */
static json_t *body_or_400(net_http_req *req)
{
    json_t *o = NULL;
    px_error e = {0};
    if (net_http_body_json(req, &o, &e) != PX_OK) {
        net_http_reply_error(req, 400, "bad_json", "%s", e.msg);
        return NULL;
    }
    return o;
}

/* hex field of exactly n bytes into out, or a 400 sent (returns 0). */
static int hex_field(net_http_req *req, json_t *o, const char *key, uint8_t *out, size_t n)
{
    const char *v = body_str(o, key);
    size_t got = 0;
    if (v == NULL || strlen(v) != 2 * n || px_hex_decode(v, out, n, &got) != PX_OK || got != n) {
        net_http_reply_error(req, 400, "bad_request", "%s: expected %zu hex digits", key, 2 * n);
        return 0;
    }
    return 1;
}

static void peer_name(net_http_req *req, const char *serial, char *out, size_t outsz)
{
    snprintf(out, outsz, "terminal:%s@%s", pki_serial_is_valid(serial) ? serial : "?",
             net_http_peer_addr(req));
}

/* ---- intake (the MTMS) ---- */

static json_t *result_json(const kms_intake_result *r)
{
    json_t *o = json_pack("{s:s, s:s}", "serial", r->serial[0] ? r->serial : "?", "status",
                          r->status);
    if (o == NULL)
        return NULL;
    if (strcmp(r->status, "refused") == 0) {
        json_object_set_new(o, "code",
                            json_string(r->code == PX_EPERM       ? "forbidden"
                                        : r->code == PX_EAUTH     ? "cannot_unwrap"
                                        : r->code == PX_EFORMAT   ? "bad_envelope"
                                        : r->code == PX_ECONFLICT ? "stale"
                                                                  : "error"));
        json_object_set_new(o, "message", json_string(r->reason));
    } else {
        json_object_set_new(o, "tk_kcv", json_string(r->tk_kcv));
        json_object_set_new(o, "tmk_kcv", json_string(r->tmk_kcv));
    }
    return o;
}

static void on_tks(net_http_req *req, void *user)
{
    kms_svc *s = user;
    char cn[PX_TLS_NAME_MAX] = "";
    json_t *in, *list, *results;
    size_t n;
    (void)net_http_peer_cn(req, cn, sizeof cn);
    if (!kms_peer_is_mtms(s->k, cn)) {
        kms_audit(s->k, cn[0] ? cn : net_http_peer_addr(req), "tk.intake", "?", 0,
                  "client %s is not an MTMS this KMS takes TKs from", cn[0] ? cn : "(none)");
        net_metric_add(s->m_tk_refused, 1);
        net_http_reply_error(req, 403, "forbidden", "client %s may not deliver TKs",
                             cn[0] ? cn : "(no certificate)");
        return;
    }
    if ((in = body_or_400(req)) == NULL)
        return;
    list = json_object_get(in, "envelopes");
    n = json_array_size(list);
    if (!json_is_array(list) || n == 0 || n > PX_KMS_BATCH_MAX) {
        json_decref(in);
        net_http_reply_error(req, 400, "bad_request", "envelopes: 1 to %d base64 strings",
                             PX_KMS_BATCH_MAX);
        return;
    }
    results = json_array();
    {
        px_error be = {0};
        if (store_begin(s->d->st, &be) != PX_OK) {
            json_decref(in);
            json_decref(results);
            px_errorlog(KMS_MOD, "TK intake: %s", be.msg);
            net_http_reply_error(req, 503, "unavailable", "the KMS's store is busy: send again");
            return;
        }
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t buf[PX_TKENV_MAX];
        size_t len = 0;
        kms_intake_result r;
        const char *b64 = json_string_value(json_array_get(list, i));
        px_error e = {0};
        if (b64 == NULL || strlen(b64) >= PX_TKENV_B64_MAX ||
            pki_b64_decode(b64, buf, sizeof buf, &len) != PX_OK) {
            memset(&r, 0, sizeof r);
            r.status = "refused";
            r.code = PX_EFORMAT;
            snprintf(r.reason, sizeof r.reason, "envelope %zu: not base64", i + 1);
            kms_audit(s->k, cn, "tk.intake", "?", 0, "%s", r.reason);
        } else {
            (void)kms_tk_intake(s->k, cn, buf, len, &r, &e);
        }
        net_metric_add(strcmp(r.status, "refused") == 0 ? s->m_tk_refused : s->m_tk_ok, 1);
        json_array_append_new(results, result_json(&r));
    }
    json_decref(in);
    {
        px_error ce = {0};
        if (store_commit(s->d->st, &ce) != PX_OK) { /* the whole batch is sent again */
            store_rollback(s->d->st);
            json_decref(results);
            px_errorlog(KMS_MOD, "TK intake: cannot commit %zu envelopes: %s", n, ce.msg);
            net_http_reply_error(req, 503, "unavailable",
                                 "the KMS could not store the batch: "
                                 "send again");
            return;
        }
    }
    net_http_reply_json(req, 200, json_pack("{s:o}", "results", results));
}

static void on_terminal(net_http_req *req, void *user)
{
    kms_svc *s = user;
    kms_terminal_info t;
    char cn[PX_TLS_NAME_MAX] = "";
    px_error e = {0};
    int rc;
    (void)net_http_peer_cn(req, cn, sizeof cn);
    if (!kms_peer_is_mtms(s->k, cn)) {
        net_http_reply_error(req, 403, "forbidden", "client %s may not read terminals",
                             cn[0] ? cn : "(no certificate)");
        return;
    }
    rc = kms_terminal_get(s->d->st, net_http_segment(req, 3), &t, &e);
    if (rc != PX_OK) {
        reply_refusal(req, rc, &e);
        return;
    }
    net_http_reply_json(req, 200,
                        json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "serial", t.serial,
                                  "status", t.status, "tk_kcv", t.tk_kcv, "tmk_kcv", t.tmk_kcv,
                                  "received_ms", (json_int_t)t.received_ms, "loaded_ms",
                                  (json_int_t)t.loaded_ms, "downloads", (json_int_t)t.downloads));
}

/* ---- key download (terminals) ---- */

static void on_challenge(net_http_req *req, void *user)
{
    kms_svc *s = user;
    json_t *in = body_or_400(req);
    kms_challenge c;
    char nonce[2 * PX_KMS_NONCE_LEN + 1], session[33], kcv[7], peer[128];
    const char *serial;
    px_error e = {0};
    int rc;
    if (in == NULL)
        return;
    serial = body_str(in, "serial");
    peer_name(req, serial, peer, sizeof peer);
    rc = kms_download_challenge(s->k, serial ? serial : "", peer, &c, &e);
    if (rc != PX_OK) {
        net_metric_add(s->m_dl_refused, 1);
        reply_refusal(req, rc, &e);
        json_decref(in);
        return;
    }
    px_hex_encode(c.nonce, sizeof c.nonce, nonce);
    px_hex_encode(c.session, sizeof c.session, session);
    px_hex_encode(c.session_kcv, sizeof c.session_kcv, kcv);
    net_http_reply_json(req, 200,
                        json_pack("{s:s, s:s, s:s, s:s, s:I}", "serial", serial, "nonce", nonce,
                                  "session", session, "session_kcv", kcv, "expires_ms",
                                  (json_int_t)c.expires_ms));
    json_decref(in);
}

static void on_download(net_http_req *req, void *user)
{
    kms_svc *s = user;
    json_t *in = body_or_400(req);
    uint8_t nonce[PX_KMS_NONCE_LEN], mac[KMS_MAC_LEN];
    kms_tmk t;
    char tmk[33], peer[128];
    const char *serial;
    px_error e = {0};
    int rc;
    if (in == NULL)
        return;
    serial = body_str(in, "serial");
    if (!hex_field(req, in, "nonce", nonce, sizeof nonce) ||
        !hex_field(req, in, "mac", mac, sizeof mac)) {
        json_decref(in);
        return;
    }
    peer_name(req, serial, peer, sizeof peer);
    rc = kms_download(s->k, serial ? serial : "", nonce, sizeof nonce, mac, sizeof mac, peer, &t,
                      &e);
    net_metric_add(rc == PX_OK ? s->m_dl_ok : s->m_dl_refused, 1);
    if (rc != PX_OK) {
        reply_refusal(req, rc, &e);
        json_decref(in);
        return;
    }
    px_hex_encode(t.cryptogram, sizeof t.cryptogram, tmk);
    net_http_reply_json(req, 200,
                        json_pack("{s:s, s:s, s:s}", "serial", serial, "tmk", tmk, "tmk_kcv",
                                  t.kcv));
    OPENSSL_cleanse(tmk, sizeof tmk);
    json_decref(in);
}

static void on_result(net_http_req *req, void *user)
{
    kms_svc *s = user;
    json_t *in = body_or_400(req);
    uint8_t nonce[PX_KMS_NONCE_LEN], mac[KMS_MAC_LEN];
    char peer[128];
    const char *serial, *result;
    px_error e = {0};
    int rc;
    if (in == NULL)
        return;
    serial = body_str(in, "serial");
    result = body_str(in, "result");
    if (!hex_field(req, in, "nonce", nonce, sizeof nonce) ||
        !hex_field(req, in, "mac", mac, sizeof mac)) {
        json_decref(in);
        return;
    }
    peer_name(req, serial, peer, sizeof peer);
    rc = kms_download_result(s->k, serial ? serial : "", nonce, sizeof nonce, result, mac,
                             sizeof mac, peer, &e);
    if (rc != PX_OK)
        reply_refusal(req, rc, &e);
    else
        net_http_reply_json(req, 200,
                            json_pack("{s:s, s:s}", "serial", serial, "status", "recorded"));
    json_decref(in);
}

/* ---- life cycle ---- */

/* The intake listener refused a client's handshake: audit it and count it. */
static void on_tls_refused(const net_tls_refusal *r, void *user)
{
    kms_svc *s = user;
    kms_audit_tls_refused(s->k, r);
    if (r->kind >= 0 && r->kind <= NET_TLS_REFUSED_HANDSHAKE)
        net_metric_add(s->m_tls_refused[r->kind], 1);
}

static void register_metrics(kms_svc *s)
{
    static const char tk[] = "TK envelopes received from the MTMS";
    static const char dl[] = "Key-download requests from terminals";
    static const char tls[] = "TLS handshakes the intake listener refused and audited, by kind";
    for (int k = NET_TLS_REFUSED_CERT; k <= NET_TLS_REFUSED_HANDSHAKE; k++) {
        char labels[48];
        snprintf(labels, sizeof labels, "kind=\"%s\"", net_tls_refusal_kind_name(k));
        s->m_tls_refused[k] = net_metric_counter("possum_kms_tls_refused_total", tls, labels);
    }
    s->m_tk_ok = net_metric_counter("possum_kms_tk_total", tk, "result=\"ok\"");
    s->m_tk_refused = net_metric_counter("possum_kms_tk_total", tk, "result=\"refused\"");
    s->m_dl_ok = net_metric_counter("possum_kms_downloads_total", dl, "result=\"ok\"");
    s->m_dl_refused = net_metric_counter("possum_kms_downloads_total", dl, "result=\"refused\"");
}

static int kms_start(void *state, px_daemon *d, px_error *e)
{
    kms_svc *s = state;
    int rc = PX_OK;
    if (s->own_hsm && (rc = px_daemon_hsm(d, "kms", &s->hcfg, &s->hsm, e)) != PX_OK)
        return px_error_prefix(e, "kms: HSM: ");
    rc = kms_open(&s->kc, d->st, s->own_hsm ? s->hsm : d->hsm, &s->k, e);
    if (rc != PX_OK)
        return px_error_prefix(e, "kms: ");
    register_metrics(s);
    s->intake_cfg.on_tls_refused = on_tls_refused; /* audited, like every other refusal */
    s->intake_cfg.tls_refused_user = s;
    rc = net_http_server_new(d->base, &s->intake_cfg, &s->intake, e);
    if (rc == PX_OK)
        rc = net_http_route(s->intake, "POST", "/v1/kms/tks", on_tks, s, e);
    if (rc == PX_OK)
        rc = net_http_route(s->intake, "GET", "/v1/kms/terminals/*", on_terminal, s, e);
    if (rc == PX_OK)
        rc = px_daemon_announce(d, "kms", s->intake_cfg.listen, net_http_server_port(s->intake));
    if (rc == PX_OK && s->has_download) {
        rc = net_http_server_new(d->base, &s->download_cfg, &s->download, e);
        if (rc == PX_OK)
            rc = net_http_route(s->download, "POST", "/v1/kms/download/challenge", on_challenge, s,
                                e);
        if (rc == PX_OK)
            rc = net_http_route(s->download, "POST", "/v1/kms/download", on_download, s, e);
        if (rc == PX_OK)
            rc = net_http_route(s->download, "POST", "/v1/kms/download/result", on_result, s, e);
        if (rc == PX_OK)
            rc = px_daemon_announce(d, "kms.download", s->download_cfg.listen,
                                    net_http_server_port(s->download));
    }
    if (rc == PX_OK)
        px_info(KMS_MOD, "KMS of customer %s ready: receiving key %s, certificate %.16s...",
                s->kc.customer, s->kc.recv_key, kms_recv_fingerprint(s->k));
    if (rc == PX_OK && !s->has_download)
        px_warn(KMS_MOD, "no download_listen: terminals cannot fetch their TMKs from this node");
    return rc;
}

static void kms_free(void *state)
{
    kms_svc *s = state;
    if (s == NULL)
        return;
    net_http_server_free(s->download);
    net_http_server_free(s->intake);
    kms_close(s->k);
    px_daemon_hsm_release(s->d, s->hsm);
    free(s);
}

const px_service px_service_kms = {
    .name = "kms",
    .configure = kms_configure,
    .start = kms_start,
    .drain = NULL,
    .busy = NULL,
    .free = kms_free,
};
