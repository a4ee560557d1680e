/*
 * api.c: the TMS's HTTP/JSON interface (docs/openapi/tms.yaml is the contract).
 * Terminal-facing, on the [tms] listener (one server per worker thread):
 *   POST /v1/checkin                       who I am, what I run, a nonce -> updates, next call
 *   POST /v1/sessions                      T-DATA -> TAC-1, DWK-1, S-DATA (claim 4)
 *   POST /v1/sessions/{id}                 SAC-1 and the terminal's result -> bearer token
 *   GET  /v1/metadata/root.json, /v1/metadata/root/{N}.json, /v1/metadata/timestamp.json,
 *        /v1/metadata/targets/{name}/{version}.json
 *   GET  /v1/packages/{name}/{version}     the file, Range (download.c; bearer token)
 *   POST /v1/reports                       downloaded, installed, failed, ... (bearer token)
 * Operator, on the daemon's [http] listener: /v1/tms/terminals, /v1/tms/packages,
 * /v1/tms/campaigns (see tms_api_operator_routes).
 * Every error is the net/http.h shape; a request that fails changes nothing in the store.
 */
#include "host/tms/tms_int.h"

#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void reply_err(net_http_req *req, int rc, const px_error *e)
{
    if (rc == PX_EFORMAT)
        rc = PX_EINVAL;
    if (rc == PX_EAUTH)
        net_http_add_header(req, "WWW-Authenticate", "Bearer");
    net_http_reply_px_error(req, rc, e);
}

static int body_object(net_http_req *req, json_t **j)
{
    px_error e = {0};
    if (net_http_body_json(req, j, &e) != PX_OK) {
        net_http_reply_error(req, e.code == PX_ETOOBIG ? 413 : 400,
                             e.code == PX_ETOOBIG ? "body_too_large" : "bad_json", "%s", e.msg);
        return 0;
    }
    return 1;
}

static int refuse_draining(net_http_req *req, tms_svc *s)
{
    if (!s->draining)
        return 0;
    net_http_add_header(req, "Retry-After", "5");
    net_http_reply_error(req, 503, "draining", "this node is stopping: try another or again");
    return 1;
}

/* ---- check-in ---------------------------------------------------------------------------- */

/* Whether this node's set says a running campaign may have something for serial (no set yet:
 * ask the store). */
static int may_have_offers(tms_svc *s, const char *serial)
{
    uint64_t h = tms_serial_hash(serial);
    int yes;
    const tms_active *a = atomic_load_explicit(&s->active, memory_order_acquire);
    yes = a == NULL || tms_active_has(a, h);
    return yes;
}

/* The answer, written directly: every value in it was checked to be a name, a version, hex
 * or a number, so none needs escaping. */
static int checkin_answer(const tms_svc *s, const tms_checkin_req *r, const tms_offer *offers,
                          size_t n, int64_t now, const tms_schedule *sched, px_buf *out)
{
    int rc = px_buf_printf(out,
                           "{\"serial\":\"%s\",\"nonce\":\"%s\",\"server_time_ms\":%lld,"
                           "\"updates\":[",
                           r->serial, r->nonce, (long long)now);
    for (size_t i = 0; rc == PX_OK && i < n; i++) {
        const tms_offer *o = &offers[i];
        rc = px_buf_printf(out,
                           "%s{\"campaign\":\"%s\",\"name\":\"%s\",\"kind\":\"%s\","
                           "\"version\":\"%s\",\"length\":%lld,\"sha256\":\"%s\","
                           "\"url\":\"/v1/packages/%s/%s\",\"targets\":\"/v1/metadata/"
                           "targets/%s/%s.json\",\"slice_bytes\":%lld,\"state\":\"%s\"}",
                           i ? "," : "", o->campaign, o->name, o->kind, o->version,
                           (long long)o->length, o->sha256, o->name, o->version, o->name,
                           o->version, (long long)s->cfg.slice_bytes, o->state);
    }
    if (rc == PX_OK)
        rc = px_buf_printf(out,
                           "],\"next_checkin_ms\":%lld,\"schedule\":{\"period_ms\":%lld,"
                           "\"anchor_ms\":%lld,\"jitter_ms\":%lld}}",
                           (long long)tms_schedule_next(sched, r->serial, now),
                           (long long)sched->period_ms, (long long)sched->anchor_ms,
                           (long long)sched->jitter_ms);
    return rc;
}

static void on_checkin(net_http_req *req, void *user)
{
    tms_worker *w = user;
    tms_svc *s = w->svc;
    tms_checkin_req r;
    tms_offer offers[PX_TMS_UPDATES_MAX];
    char model[PX_TMS_NAME_MAX], sched_text[64];
    tms_schedule sched = s->default_schedule;
    int64_t now = px_now_ms();
    size_t noffers = 0;
    json_t *j = NULL;
    px_buf out;
    px_error e = {0};
    int rc;
    if (refuse_draining(req, s) || !body_object(req, &j))
        return;
    rc = tms_checkin_parse(j, &r, &e);
    json_decref(j);
    if (rc == PX_OK && (s->reg == NULL || !tms_regcache_get(s->reg, r.serial, model, sched_text))) {
        rc = tms_checkin_terminal(w->st, r.serial, model, sched_text, &e);
        if (rc == PX_OK && s->reg != NULL)
            tms_regcache_put(s->reg, r.serial, model, sched_text);
    }
    if (rc == PX_OK && strcmp(model, r.model) != 0)
        rc = px_error_set(&e, PX_ECONFLICT, "terminal %s is a %s in the registry, not a %s",
                          r.serial, model, r.model);
    if (rc == PX_OK && may_have_offers(s, r.serial))
        rc = tms_checkin_offers(w->st, &r, now, &s->flagger, offers, &noffers, &e);
    if (rc != PX_OK) {
        reply_err(req, rc, &e);
        return;
    }
    if (sched_text[0] != 0 && tms_schedule_parse(sched_text, &sched, NULL) != PX_OK)
        sched = s->default_schedule;
    tms_worker_contact(w, &r, now);
    net_metric_add(s->m.checkins, 1);
    net_metric_add(s->m.offers, (int64_t)noffers);
    px_buf_init(&out, 4096);
    if (checkin_answer(s, &r, offers, noffers, now, &sched, &out) != PX_OK)
        net_http_reply_error(req, 500, "internal", "internal error");
    else
        net_http_reply(req, 200, "application/json", out.data, out.len);
    px_buf_free(&out);
}

/* ---- mutual authentication --------------------------------------------------------------- */

static int str_of(const json_t *j, const char *key, const char **out)
{
    json_t *v = json_object_get(j, key);
    *out = json_is_string(v) ? json_string_value(v) : NULL;
    return *out != NULL;
}

static int only(const json_t *j, const char *const *keys, px_error *e)
{
    const char *k;
    json_t *v;
    json_object_foreach ((json_t *)j, k, v) {
        size_t i = 0;
        while (keys[i] != NULL && strcmp(keys[i], k) != 0)
            i++;
        if (keys[i] == NULL)
            return px_error_set(e, PX_EINVAL, "%s: unknown field", k);
    }
    return PX_OK;
}

static void on_session_new(net_http_req *req, void *user)
{
    static const char *const keys[] = {"serial", "t_data", NULL};
    tms_worker *w = user;
    tms_svc *s = w->svc;
    tms_auth_challenge c;
    const char *serial, *t_data;
    json_t *j = NULL;
    px_error e = {0};
    int rc;
    if (refuse_draining(req, s) || !body_object(req, &j))
        return;
    rc = only(j, keys, &e);
    if (rc == PX_OK && (!str_of(j, "serial", &serial) || !tms_serial_is_valid(serial)))
        rc = px_error_set(&e, PX_EINVAL, "serial: required (the terminal's serial number)");
    if (rc == PX_OK && !str_of(j, "t_data", &t_data))
        rc = px_error_set(&e, PX_EINVAL, "t_data: required (%d bytes in hex)", TMS_AUTH_DATA_LEN);
    if (rc == PX_OK) {
        pthread_mutex_lock(&s->hsm_lock);
        rc = tms_auth_begin(w->st, s->h, &s->cfg.auth, serial, t_data, px_now_ms(), &c, &e);
        pthread_mutex_unlock(&s->hsm_lock);
    }
    json_decref(j);
    if (rc == PX_ELIMIT)
        net_http_add_header(req, "Retry-After", "1");
    if (rc != PX_OK) {
        reply_err(req, rc, &e);
        return;
    }
    net_http_reply_json(req, 201,
                        json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "session", c.session, "tac",
                                  c.tac, "dwk", c.dwk, "dwk_kcv", c.dwk_kcv, "s_data", c.s_data,
                                  "expires_ms", (json_int_t)c.expires_ms));
}

static void on_session_answer(net_http_req *req, void *user)
{
    static const char *const keys[] = {"serial", "sac", "tac_ok", NULL};
    tms_worker *w = user;
    tms_svc *s = w->svc;
    char token[2 * TMS_TOKEN_LEN + 1];
    const char *serial, *sac;
    int64_t expires = 0;
    json_t *j = NULL, *ok;
    px_error e = {0};
    int rc;
    if (net_http_segment_count(req) != 3) {
        net_http_reply_error(req, 404, "not_found", "no such resource");
        return;
    }
    if (refuse_draining(req, s) || !body_object(req, &j))
        return;
    ok = json_object_get(j, "tac_ok");
    rc = only(j, keys, &e);
    if (rc == PX_OK && (!str_of(j, "serial", &serial) || !tms_serial_is_valid(serial)))
        rc = px_error_set(&e, PX_EINVAL, "serial: required (the terminal's serial number)");
    if (rc == PX_OK && !str_of(j, "sac", &sac))
        rc = px_error_set(&e, PX_EINVAL, "sac: required (%d bytes in hex)", TMS_AUTH_DATA_LEN);
    if (rc == PX_OK && !json_is_boolean(ok))
        rc = px_error_set(&e, PX_EINVAL, "tac_ok: required (true when TAC-0 matched TAC-1)");
    if (rc == PX_OK) {
        pthread_mutex_lock(&s->hsm_lock);
        rc = tms_auth_finish(w->st, s->h, &s->cfg.auth, serial, net_http_segment(req, 2), sac,
                             json_is_true(ok), px_now_ms(), token, &expires, &e);
        pthread_mutex_unlock(&s->hsm_lock);
    }
    json_decref(j);
    if (rc != PX_OK) {
        net_metric_add(rc == PX_EAUTH ? s->m.auth_fail : NULL, 1);
        net_metric_add(rc == PX_EAUTH ? s->m.security : NULL, 1);
        reply_err(req, rc, &e);
        return;
    }
    net_metric_add(s->m.auth_ok, 1);
    net_http_reply_json(req, 200,
                        json_pack("{s:s, s:s, s:I}", "token", token, "token_type", "Bearer",
                                  "expires_ms", (json_int_t)expires));
    OPENSSL_cleanse(token, sizeof token);
}

/* ---- metadata ------------------------------------------------------------------------------ */

static void reply_meta(net_http_req *req, int rc, px_buf *b, const px_error *e)
{
    if (rc != PX_OK)
        reply_err(req, rc, e);
    else
        net_http_reply(req, 200, "application/json", b->data, b->len);
    px_buf_free(b);
}

static void on_meta_root_latest(net_http_req *req, void *user)
{
    tms_worker *w = user;
    px_buf b;
    px_error e = {0};
    px_buf_init(&b, PX_TMS_META_MAX);
    reply_meta(req, tms_meta_latest(w->st, "root", &b, NULL, NULL, &e), &b, &e);
}

static void on_meta_timestamp(net_http_req *req, void *user)
{
    tms_worker *w = user;
    px_buf b;
    px_error e = {0};
    px_buf_init(&b, PX_TMS_META_MAX);
    reply_meta(req, tms_meta_latest(w->st, "timestamp", &b, NULL, NULL, &e), &b, &e);
}

/* "N.json" with N a version; 0 when it is not. */
static int64_t json_file_version(const char *seg)
{
    char num[24];
    size_t n = seg != NULL ? strlen(seg) : 0;
    int64_t v;
    if (n < 6 || n - 5 >= sizeof num || strcmp(seg + n - 5, ".json") != 0)
        return 0;
    memcpy(num, seg, n - 5);
    num[n - 5] = 0;
    return px_parse_i64(num, 1, INT32_MAX, &v) == PX_OK ? v : 0;
}

static void on_meta_root_version(net_http_req *req, void *user)
{
    tms_worker *w = user;
    int64_t v = net_http_segment_count(req) == 4 ? json_file_version(net_http_segment(req, 3)) : 0;
    px_buf b;
    px_error e = {0};
    if (v == 0) {
        net_http_reply_error(req, 404, "not_found", "expected /v1/metadata/root/N.json");
        return;
    }
    px_buf_init(&b, PX_TMS_META_MAX);
    reply_meta(req, tms_meta_root(w->st, v, &b, &e), &b, &e);
}

static void on_meta_targets(net_http_req *req, void *user)
{
    tms_worker *w = user;
    const char *file = net_http_segment(req, 4);
    char version[PX_TMS_VERSION_MAX];
    size_t n = file != NULL ? strlen(file) : 0;
    px_buf b;
    px_error e = {0};
    if (net_http_segment_count(req) != 5 || n < 6 || n - 5 >= sizeof version ||
        strcmp(file + n - 5, ".json") != 0) {
        net_http_reply_error(req, 404, "not_found",
                             "expected /v1/metadata/targets/NAME/VERSION.json");
        return;
    }
    memcpy(version, file, n - 5);
    version[n - 5] = 0;
    px_buf_init(&b, PX_TMS_META_MAX);
    reply_meta(req, tms_package_meta(w->st, net_http_segment(req, 3), version, &b, &e), &b, &e);
}

/* ---- reports ------------------------------------------------------------------------------- */

static void on_report(net_http_req *req, void *user)
{
    tms_worker *w = user;
    tms_svc *s = w->svc;
    const char *a = net_http_header(req, "Authorization");
    char serial[PX_TMS_SERIAL_MAX];
    int64_t now = px_now_ms();
    tms_report_req r;
    tms_tstate state = TMS_T_OFFERED;
    json_t *j = NULL;
    px_error e = {0};
    int rc = tms_session_check(w->st, a != NULL && strncmp(a, "Bearer ", 7) == 0 ? a + 7 : NULL,
                               now, serial, &e);
    if (rc != PX_OK) {
        net_metric_add(s->m.security, 1);
        reply_err(req, rc, &e);
        return;
    }
    if (!body_object(req, &j))
        return;
    rc = tms_report_parse(j, &r, &e);
    json_decref(j);
    if (rc == PX_OK)
        rc = tms_report_record(w->st, serial, &r, now, &state, &e);
    if (rc != PX_OK) {
        reply_err(req, rc, &e);
        return;
    }
    net_metric_add(s->m.reports, 1);
    net_http_reply_json(req, 200,
                        json_pack("{s:s, s:s, s:s}", "serial", serial, "campaign", r.campaign,
                                  "state", tms_tstate_name(state)));
}

int tms_api_routes(tms_worker *w, px_error *e)
{
    static const struct {
        const char *method, *pattern;
        net_http_handler h;
    } routes[] = {
        {"POST", "/v1/checkin", on_checkin},
        {"POST", "/v1/sessions", on_session_new},
        {"POST", "/v1/sessions/*", on_session_answer},
        {"GET", "/v1/metadata/root.json", on_meta_root_latest},
        {"GET", "/v1/metadata/timestamp.json", on_meta_timestamp},
        {"GET", "/v1/metadata/root/*", on_meta_root_version},
        {"GET", "/v1/metadata/targets/*", on_meta_targets},
        {"GET", "/v1/packages/*", tms_api_download},
        {"POST", "/v1/reports", on_report},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        int rc = net_http_route(w->http, routes[i].method, routes[i].pattern, routes[i].h, w, e);
        if (rc != PX_OK)
            return rc;
    }
    return PX_OK;
}

/* ---- operator routes (the daemon's [http] listener, its loop thread) ---------------------- */

static json_t *terminal_json(const tms_terminal *t)
{
    json_t *groups = json_array(), *inst = json_object();
    for (size_t i = 0; i < t->ngroups; i++)
        json_array_append_new(groups, json_string(t->groups[i]));
    for (size_t i = 0; i < t->ninstalled; i++)
        json_object_set_new(inst, t->installed[i].name, json_string(t->installed[i].version));
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:o, s:s, s:I, s:I}", "serial", t->serial,
                     "model", t->model, "merchant", t->merchant, "tid", t->tid, "groups", groups,
                     "schedule", t->schedule, "installed", inst, "dmk_kcv", t->dmk_kcv,
                     "last_contact_ms", (json_int_t)t->last_contact_ms, "created_ms",
                     (json_int_t)t->created_ms);
}

static void on_op_terminal(net_http_req *req, void *user)
{
    tms_svc *s = user;
    tms_terminal t;
    px_error e = {0};
    int rc;
    if (net_http_segment_count(req) != 4) {
        net_http_reply_error(req, 404, "not_found", "no such resource");
        return;
    }
    if ((rc = tms_terminal_get(s->st, net_http_segment(req, 3), &t, &e)) != PX_OK) {
        reply_err(req, rc, &e);
        return;
    }
    net_http_reply_json(req, 200, terminal_json(&t));
}

static int copy_names(const json_t *arr, char (*out)[PX_TMS_NAME_MAX], size_t max, size_t *n,
                      const char *what, px_error *e)
{
    json_t *v;
    size_t i;
    *n = 0;
    if (arr == NULL)
        return PX_OK;
    if (!json_is_array(arr) || json_array_size(arr) > max)
        return px_error_set(e, PX_EINVAL, "%s: an array of at most %zu names", what, max);
    json_array_foreach (arr, i, v) {
        if (!json_is_string(v) ||
            px_strlcpy(out[(*n)++], json_string_value(v), PX_TMS_NAME_MAX) != PX_OK)
            return px_error_set(e, PX_EINVAL, "%s: entry %zu is not a name", what, i + 1);
    }
    return PX_OK;
}

static int opt_str(const json_t *j, const char *key, char *out, size_t outsz, px_error *e)
{
    json_t *v = json_object_get(j, key);
    if (v == NULL)
        return PX_OK;
    if (!json_is_string(v) || px_strlcpy(out, json_string_value(v), outsz) != PX_OK)
        return px_error_set(e, PX_EINVAL, "%s: a string of at most %zu characters", key, outsz - 1);
    return PX_OK;
}

/* POST /v1/tms/terminals {serial, model, merchant?, tid?, groups?, schedule?} */
static void on_op_terminal_add(net_http_req *req, void *user)
{
    static const char *const keys[] = {"serial", "model",    "merchant", "tid",
                                       "groups", "schedule", NULL};
    tms_svc *s = user;
    tms_terminal t;
    json_t *j = NULL;
    px_error e = {0};
    int rc;
    if (!body_object(req, &j))
        return;
    memset(&t, 0, sizeof t);
    rc = only(j, keys, &e);
    if (rc == PX_OK && (rc = opt_str(j, "serial", t.serial, sizeof t.serial, &e)) == PX_OK &&
        (rc = opt_str(j, "model", t.model, sizeof t.model, &e)) == PX_OK &&
        (rc = opt_str(j, "merchant", t.merchant, sizeof t.merchant, &e)) == PX_OK &&
        (rc = opt_str(j, "tid", t.tid, sizeof t.tid, &e)) == PX_OK &&
        (rc = opt_str(j, "schedule", t.schedule, sizeof t.schedule, &e)) == PX_OK)
        rc = copy_names(json_object_get(j, "groups"), t.groups, PX_TMS_GROUPS_MAX, &t.ngroups,
                        "groups", &e);
    json_decref(j);
    if (rc == PX_OK)
        rc = tms_terminal_add(s->st, &t, &e);
    if (rc == PX_OK)
        rc = tms_terminal_get(s->st, t.serial, &t, &e);
    if (rc != PX_OK) {
        reply_err(req, rc, &e);
        return;
    }
    net_http_reply_json(req, 201, terminal_json(&t));
}

static int pkg_row_json(void *ud, const tms_package *p)
{
    json_t *models = json_array();
    for (size_t i = 0; i < p->t.nmodels; i++)
        json_array_append_new(models, json_string(p->t.models[i]));
    return json_array_append_new(ud,
                                 json_pack("{s:s, s:s, s:s, s:I, s:s, s:o, s:I}", "name", p->t.name,
                                           "version", p->t.version, "kind", p->t.kind, "length",
                                           (json_int_t)p->t.length, "sha256", p->t.sha256, "models",
                                           models, "created_ms", (json_int_t)p->created_ms)) == 0
               ? 0
               : -1;
}

static void on_op_packages(net_http_req *req, void *user)
{
    tms_svc *s = user;
    json_t *arr = json_array();
    px_error e = {0};
    int rc = tms_package_list(s->st, pkg_row_json, arr, &e);
    if (rc != PX_OK) {
        json_decref(arr);
        reply_err(req, rc < 0 ? rc : PX_ENOMEM, &e);
        return;
    }
    net_http_reply_json(req, 200, json_pack("{s:o}", "packages", arr));
}

static json_t *campaign_json(const tms_campaign_info *c)
{
    json_t *waves = json_array(), *totals = json_object();
    int64_t sum[TMS_T_COUNT_] = {0};
    for (size_t w = 0; w < c->spec.nwaves; w++) {
        json_t *counts = json_object();
        for (int st = 0; st < TMS_T_COUNT_; st++) {
            json_object_set_new(counts, tms_tstate_name((tms_tstate)st),
                                json_integer((json_int_t)c->counts[w][st]));
            sum[st] += c->counts[w][st];
        }
        json_array_append_new(waves,
                              json_pack("{s:I, s:I, s:o}", "wave", (json_int_t)w + 1, "percent",
                                        (json_int_t)c->spec.waves[w], "counts", counts));
    }
    for (int st = 0; st < TMS_T_COUNT_; st++)
        json_object_set_new(totals, tms_tstate_name((tms_tstate)st),
                            json_integer((json_int_t)sum[st]));
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:o, s:o}", "name",
                     c->spec.name, "package", c->spec.pkg_name, "version", c->spec.pkg_version,
                     "state", c->state, "reason", c->reason, "current_wave",
                     (json_int_t)c->current_wave, "total", (json_int_t)c->total, "start_ms",
                     (json_int_t)c->spec.start_ms, "max_failure_pct",
                     (json_int_t)c->spec.max_failure_pct, "waves", waves, "counts", totals);
}

static void reply_campaign(net_http_req *req, tms_svc *s, const char *name)
{
    tms_campaign_info *c = malloc(sizeof *c);
    px_error e = {0};
    int rc;
    if (c == NULL) {
        net_http_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    if ((rc = tms_campaign_get(s->st, name, c, &e)) != PX_OK)
        reply_err(req, rc, &e);
    else
        net_http_reply_json(req, 200, campaign_json(c));
    free(c);
}

static void on_op_campaign(net_http_req *req, void *user)
{
    if (net_http_segment_count(req) != 4) {
        net_http_reply_error(req, 404, "not_found", "no such resource");
        return;
    }
    reply_campaign(req, user, net_http_segment(req, 3));
}

/* POST /v1/tms/campaigns/{name}/start|pause|resume */
static void on_op_campaign_action(net_http_req *req, void *user)
{
    tms_svc *s = user;
    const char *name = net_http_segment(req, 3), *act = net_http_segment(req, 4);
    px_error e = {0};
    int rc;
    if (net_http_segment_count(req) != 5) {
        net_http_reply_error(req, 404, "not_found", "no such resource");
        return;
    }
    if (strcmp(act, "start") == 0)
        rc = tms_campaign_start(s->st, name, NULL, &e);
    else if (strcmp(act, "pause") == 0)
        rc = tms_campaign_pause(s->st, name, &e);
    else if (strcmp(act, "resume") == 0)
        rc = tms_campaign_resume(s->st, name, &e);
    else
        rc = px_error_set(&e, PX_ENOTFOUND, "no action %s (start, pause, resume)", act);
    if (rc == PX_ESTATE)
        rc = PX_ECONFLICT;
    if (rc != PX_OK) {
        reply_err(req, rc, &e);
        return;
    }
    reply_campaign(req, s, name);
}

int tms_api_operator_routes(tms_svc *s, net_http_server *http, px_error *e)
{
    static const struct {
        const char *method, *pattern;
        net_http_handler h;
    } routes[] = {
        {"POST", "/v1/tms/terminals", on_op_terminal_add},
        {"GET", "/v1/tms/terminals/*", on_op_terminal},
        {"GET", "/v1/tms/packages", on_op_packages},
        {"GET", "/v1/tms/campaigns/*", on_op_campaign},
        {"POST", "/v1/tms/campaigns/*", on_op_campaign_action},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        int rc = net_http_route(http, routes[i].method, routes[i].pattern, routes[i].h, s, e);
        if (rc != PX_OK)
            return rc;
    }
    return PX_OK;
}
