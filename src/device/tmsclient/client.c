/*
 * client.c: one update pass of a terminal (tmsclient.h; docs/update-protocol.md):
 * check-in, the metadata checks, the mutual authentication of claim 4, the download with
 * resume, the install or deferral, and the reports. Every refusal names what failed and
 * leaves the running version untouched.
 */
#include "device/tmsclient/tmsc_int.h"

#include "crypto/crypto.h"
#include "crypto/tr31.h"
#include "lib/config.h"
#include "lib/hex.h"
#include "lib/str.h"
#include "lib/time.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SLICE (1024 * 1024)

static const uint8_t zero_iv[8];

/* ---- configuration ---------------------------------------------------------------------- */

void tmsc_config_defaults(tmsc_config *c, const char *data_dir)
{
    memset(c, 0, sizeof *c);
    px_strlcpy(c->data_dir, data_dir, sizeof c->data_dir);
    px_strlcpy(c->host, "127.0.0.1", sizeof c->host);
    c->port = 7000;
    c->timeout_ms = 30000;
    c->max_package_bytes = 64LL * 1024 * 1024;
}

int tmsc_config_load(tmsc_config *c, px_error *e)
{
    static const px_config_field fields[] = {
        PX_CFG_STR(tmsc_config, host, "host", NULL),
        PX_CFG_INT_(tmsc_config, port, "port", 1, 65535, NULL),
        PX_CFG_STR(tmsc_config, tls_ca, "tls_ca", NULL),
        PX_CFG_STR(tmsc_config, tls_cert, "tls_cert", NULL),
        PX_CFG_STR(tmsc_config, tls_key, "tls_key", NULL),
        PX_CFG_STR(tmsc_config, serial, "serial", NULL),
        PX_CFG_STR(tmsc_config, model, "model", NULL),
        PX_CFG_INT_(tmsc_config, timeout_ms, "timeout_ms", 100, 600000, NULL),
        PX_CFG_INT_(tmsc_config, max_package_bytes, "max_package_bytes", 1, PX_TMS_PACKAGE_MAX,
                    NULL),
    };
    static const char *const ignore[] = {NULL};
    char path[PX_PATH_MAX + 32];
    px_config *cfg = NULL;
    int rc;
    tmsc_path(c, "tms/client.ini", path, sizeof path);
    if (access(path, R_OK) != 0)
        return px_error_set(e, PX_ENOTFOUND,
                            "%s: this terminal was never provisioned for the TMS "
                            "(possum pos update provision)",
                            path);
    rc = px_config_load_file(path, &cfg, e);
    if (rc == PX_OK)
        rc = px_config_bind(cfg, "tms", fields, sizeof fields / sizeof fields[0], c, e);
    if (rc == PX_OK)
        rc = px_config_check_unused(cfg, ignore, e);
    px_config_free(cfg);
    if (rc == PX_OK && (!tuf_name_is_valid(c->model) || c->serial[0] == 0))
        rc = px_error_set(e, PX_ECONFIG, "%s: serial and model are required", path);
    return rc;
}

static int write_config(const tmsc_config *c, px_error *e)
{
    char path[PX_PATH_MAX + 32], text[4 * PX_PATH_MAX + 512];
    snprintf(
        text, sizeof text,
        "; the TMS this terminal updates from (possum pos update)\n[tms]\n"
        "host = %s\nport = %lld\n%s%s%s%s%s%s%s%s%sserial = %s\nmodel = %s\ntimeout_ms = %lld\n"
        "max_package_bytes = %lld\n",
        c->host, (long long)c->port, c->tls_ca[0] ? "tls_ca = " : "", c->tls_ca,
        c->tls_ca[0] ? "\n" : "", c->tls_cert[0] ? "tls_cert = " : "", c->tls_cert,
        c->tls_cert[0] ? "\n" : "", c->tls_key[0] ? "tls_key = " : "", c->tls_key,
        c->tls_key[0] ? "\n" : "", c->serial, c->model, (long long)c->timeout_ms,
        (long long)c->max_package_bytes);
    tmsc_path(c, "tms/client.ini", path, sizeof path);
    return tmsc_write_file(path, text, strlen(text), 0600, e);
}

/* ---- provisioning ----------------------------------------------------------------------- */

/* The KBPK from 2..3 components "HEX[:KCV]". */
static int form_kbpk(const tmsc_provision_args *a, uint8_t kbpk[16], px_error *e)
{
    uint8_t comp[3][16], kcv[3][8];
    const uint8_t *cp[3], *kp[3];
    size_t nk = 0;
    int with_kcv = 1, rc;
    if (a->ncomponents < 2 || a->ncomponents > 3)
        return px_error_set(e, PX_EINVAL, "the KBPK comes in 2 or 3 components (dual control)");
    for (size_t i = 0; i < a->ncomponents; i++) {
        const char *s = a->kbpk_components[i], *colon = strchr(s, ':');
        size_t hl = colon != NULL ? (size_t)(colon - s) : strlen(s), n = 0;
        if (hl != 32 || px_hex_decode_n(s, hl, comp[i], 16, &n) != PX_OK || n != 16)
            return px_error_set(e, PX_EINVAL, "KBPK component %zu: 32 hex digits", i + 1);
        if (colon == NULL || px_hex_decode(colon + 1, kcv[i], sizeof kcv[i], &nk) != PX_OK ||
            nk != 3)
            with_kcv = 0;
        cp[i] = comp[i];
        kp[i] = kcv[i];
    }
    rc = crypto_key_combine(CRYPTO_TDES, cp, a->ncomponents, 16, with_kcv ? kp : NULL, 3, kbpk, e);
    OPENSSL_cleanse(comp, sizeof comp);
    return rc;
}

int tmsc_provision(const tmsc_config *c, const tmsc_provision_args *a, const tmsc_hooks *h,
                   px_error *e)
{
    uint8_t kbpk[16], dmk[CRYPTO_TR31_KEY_MAX], sealed[256], kcv[8];
    size_t n = 0, sn = 0, kn = 0;
    char path[PX_PATH_MAX + 32], kcvhex[17];
    crypto_tr31_header hdr;
    tuf_root root;
    int rc;
    if (h == NULL || h->seal == NULL)
        return px_error_set(e, PX_EINVAL, "provision: no secure store to seal the DMK in");
    if (!tuf_name_is_valid(c->model) || c->serial[0] == 0)
        return px_error_set(e, PX_EINVAL, "provision: serial and model are required");
    if ((rc = tuf_root_verify_initial(a->root_json, a->root_len, &root, e)) != PX_OK)
        return px_error_prefix(e, "the root to trust: ");
    if ((rc = form_kbpk(a, kbpk, e)) != PX_OK)
        return rc;
    rc = crypto_tr31_unwrap(kbpk, 16, a->dmk_block, strlen(a->dmk_block), &hdr, dmk, sizeof dmk, &n,
                            e);
    OPENSSL_cleanse(kbpk, sizeof kbpk);
    if (rc == PX_OK && (strcmp(hdr.usage, "K0") != 0 || hdr.algorithm != 'T' || n != 16))
        rc = px_error_set(e, PX_EPERM,
                          "the DMK block holds a %s key of %zu bytes, not a K0 "
                          "double-length TDES key",
                          hdr.usage, n);
    if (rc == PX_OK && a->dmk_kcv != NULL) {
        crypto_kcv(CRYPTO_TDES, dmk, 16, kcv, sizeof kcv, &kn, NULL);
        px_hex_encode(kcv, 3, kcvhex);
        if (strcasecmp(kcvhex, a->dmk_kcv) != 0)
            rc = px_error_set(e, PX_EAUTH, "the DMK's check value is %s, not %s", kcvhex,
                              a->dmk_kcv);
    }
    if (rc == PX_OK)
        rc = h->seal(h->ud, dmk, 16, sealed, sizeof sealed, &sn, e);
    OPENSSL_cleanse(dmk, sizeof dmk);
    tmsc_path(c, "tms", path, sizeof path);
    if (rc == PX_OK)
        rc = tmsc_mkdirs(path, e);
    tmsc_path(c, "tms/dmk.sealed", path, sizeof path);
    if (rc == PX_OK)
        rc = tmsc_write_file(path, sealed, sn, 0600, e);
    tmsc_path(c, "tms/root.json", path, sizeof path);
    if (rc == PX_OK)
        rc = tmsc_write_file(path, a->root_json, a->root_len, 0644, e);
    if (rc == PX_OK)
        rc = write_config(c, e);
    return rc;
}

/* ---- check-in --------------------------------------------------------------------------- */

static int str_into(const json_t *o, const char *key, char *out, size_t outsz)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL && px_strlcpy(out, s, outsz) == PX_OK;
}

static int parse_offer(const json_t *u, tmsc_offer *o)
{
    json_t *len = json_object_get(u, "length"), *sl = json_object_get(u, "slice_bytes");
    int64_t num;
    memset(o, 0, sizeof *o);
    if (!str_into(u, "campaign", o->campaign, sizeof o->campaign) ||
        !str_into(u, "name", o->name, sizeof o->name) ||
        !str_into(u, "kind", o->kind, sizeof o->kind) ||
        !str_into(u, "version", o->version, sizeof o->version) ||
        !str_into(u, "sha256", o->sha256, sizeof o->sha256) || !json_is_integer(len))
        return 0;
    o->length = (int64_t)json_integer_value(len);
    o->slice_bytes = json_is_integer(sl) ? (int64_t)json_integer_value(sl) : DEFAULT_SLICE;
    return tuf_name_is_valid(o->campaign) && tuf_name_is_valid(o->name) &&
           tuf_version_parse(o->version, &num, NULL) == PX_OK && o->length > 0 &&
           o->length <= PX_TMS_PACKAGE_MAX && strlen(o->sha256) == 64 && o->slice_bytes >= 0;
}

static int do_checkin(const tmsc_config *c, const tmsc_hooks *h, tmsc_http *http, tmsc_state *st,
                      tmsc_checkin_result *out, px_error *e)
{
    tmsc_app apps[PX_TMS_INSTALLED_MAX];
    uint8_t nonce[16];
    char nhex[33], *body;
    size_t napps = 0, i;
    json_t *req, *inst = json_object(), *ans = NULL, *ups, *u, *sch;
    tmsc_resp r;
    int rc = tmsc_apps(c, apps, PX_TMS_INSTALLED_MAX, &napps, e);
    memset(out, 0, sizeof *out);
    if (rc != PX_OK || (rc = crypto_random(nonce, sizeof nonce, e)) != PX_OK) {
        json_decref(inst);
        return rc;
    }
    px_hex_encode(nonce, sizeof nonce, nhex);
    for (i = 0; i < napps; i++)
        json_object_set_new(inst, apps[i].name, json_string(apps[i].version));
    req = json_pack("{s:s, s:s, s:s, s:o}", "serial", c->serial, "model", c->model, "nonce", nhex,
                    "installed", inst);
    body = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (body == NULL)
        return px_error_set(e, PX_ENOMEM, "out of memory");
    tmsc_resp_init(&r);
    rc = tmsc_http_request(http, "POST", "/v1/checkin", NULL, body, strlen(body), -1, 0, &r, e);
    free(body);
    if (rc == PX_OK)
        rc = tmsc_resp_json(&r, &ans, e);
    tmsc_resp_free(&r);
    if (rc != PX_OK)
        return px_error_prefix(e, "check-in: ");
    /* the answer must be to this request */
    if (json_string_value(json_object_get(ans, "nonce")) == NULL ||
        strcmp(json_string_value(json_object_get(ans, "nonce")), nhex) != 0 ||
        json_string_value(json_object_get(ans, "serial")) == NULL ||
        strcmp(json_string_value(json_object_get(ans, "serial")), c->serial) != 0) {
        json_decref(ans);
        return px_error_set(e, PX_EAUTH,
                            "check-in: the answer is not for this request (nonce or "
                            "serial differ)");
    }
    ups = json_object_get(ans, "updates");
    json_array_foreach (ups, i, u) {
        if (out->noffers >= PX_TMS_UPDATES_MAX)
            break;
        if (!parse_offer(u, &out->offers[out->noffers])) {
            json_decref(ans);
            return px_error_set(e, PX_EFORMAT, "check-in: update %zu is malformed", i + 1);
        }
        out->noffers++;
    }
    out->next_checkin_ms = (int64_t)json_integer_value(json_object_get(ans, "next_checkin_ms"));
    out->server_time_ms = (int64_t)json_integer_value(json_object_get(ans, "server_time_ms"));
    sch = json_object_get(ans, "schedule");
    st->last_checkin_ms = px_now_ms();
    st->next_checkin_ms = out->next_checkin_ms;
    st->period_ms = (int64_t)json_integer_value(json_object_get(sch, "period_ms"));
    st->anchor_ms = (int64_t)json_integer_value(json_object_get(sch, "anchor_ms"));
    st->jitter_ms = (int64_t)json_integer_value(json_object_get(sch, "jitter_ms"));
    json_decref(ans);
    if (h != NULL && h->checked_in != NULL)
        h->checked_in(h->ud);
    return PX_OK;
}

int tmsc_checkin(const tmsc_config *c, const tmsc_hooks *h, tmsc_checkin_result *out, px_error *e)
{
    tmsc_http *http = NULL;
    tmsc_state st;
    int rc = tmsc_state_load(c, &st, e);
    if (rc == PX_OK)
        rc = tmsc_http_open(c, &http, e);
    if (rc == PX_OK)
        rc = do_checkin(c, h, http, &st, out, e);
    if (rc == PX_OK)
        rc = tmsc_state_save(c, &st, e);
    tmsc_http_close(http);
    return rc;
}

int tmsc_is_due(const tmsc_config *c, int flagged, int64_t now, int64_t *next_ms)
{
    tmsc_state st;
    if (next_ms != NULL)
        *next_ms = 0;
    if (tmsc_state_load(c, &st, NULL) != PX_OK)
        return 1;
    if (next_ms != NULL)
        *next_ms = st.next_checkin_ms;
    return flagged || st.next_checkin_ms == 0 || now >= st.next_checkin_ms;
}

/* ---- metadata ------------------------------------------------------------------------------ */

static int fetch(tmsc_http *http, const char *path, px_buf *out, px_error *e)
{
    tmsc_resp r;
    json_t *j = NULL;
    int rc;
    tmsc_resp_init(&r);
    rc = tmsc_http_request(http, "GET", path, NULL, NULL, 0, -1, 0, &r, e);
    if (rc == PX_OK && r.status != 200)
        rc = tmsc_resp_json(&r, &j, e);
    if (rc == PX_OK) {
        px_buf_reset(out);
        rc = px_buf_append(out, r.body.data, r.body.len);
        if (rc != PX_OK)
            px_error_set(e, rc, "%s: too large", path);
    }
    json_decref(j);
    tmsc_resp_free(&r);
    return rc;
}

/* The trusted root, brought up to date from the TMS one version at a time (TUF 5.3). */
static int update_root(const tmsc_config *c, const tmsc_hooks *h, tmsc_http *http, tuf_root *root,
                       px_error *e)
{
    char path[PX_PATH_MAX + 32], url[64];
    px_buf b;
    int rc;
    px_buf_init(&b, PX_TMS_META_MAX);
    tmsc_path(c, "tms/root.json", path, sizeof path);
    rc = tmsc_read_file(path, PX_TMS_META_MAX, &b, e);
    if (rc == PX_OK && (rc = tuf_root_verify_initial(b.data, b.len, root, e)) != PX_OK)
        px_error_prefix(e, "the trusted root (%s): ", path);
    for (int i = 0; rc == PX_OK && i < PX_TMS_ROOT_CHAIN_MAX; i++) {
        tuf_root next;
        px_error fe = {0};
        snprintf(url, sizeof url, "/v1/metadata/root/%lld.json", (long long)root->version + 1);
        rc = fetch(http, url, &b, &fe);
        if (rc == PX_ENOTFOUND) {
            rc = PX_OK;
            break;
        }
        if (rc != PX_OK) {
            *e = fe;
            break;
        }
        if ((rc = tuf_root_verify_next(root, b.data, b.len, &next, e)) != PX_OK)
            break;
        if ((rc = tmsc_write_file(path, b.data, b.len, 0644, e)) != PX_OK)
            break;
        tmsc_say(h, "root rotated: version %lld trusted now", (long long)next.version);
        *root = next;
    }
    px_buf_free(&b);
    if (rc == PX_OK && root->expires_ms <= px_now_ms())
        rc = px_error_set(e, PX_EAUTH,
                          "root version %lld has expired and the TMS offers no newer "
                          "one: nothing can be trusted",
                          (long long)root->version);
    return rc;
}

static int check_timestamp(tmsc_http *http, const tuf_root *root, tmsc_state *st, tuf_timestamp *ts,
                           px_error *e)
{
    px_buf b;
    char when[32];
    int rc;
    px_buf_init(&b, PX_TMS_META_MAX);
    rc = fetch(http, "/v1/metadata/timestamp.json", &b, e);
    if (rc == PX_OK)
        rc = tuf_timestamp_verify(root, b.data, b.len, ts, e);
    px_buf_free(&b);
    if (rc != PX_OK)
        return rc;
    if (ts->version < st->timestamp_version)
        rc = px_error_set(e, PX_EAUTH,
                          "timestamp version %lld is older than version %lld seen "
                          "before (a replayed record)",
                          (long long)ts->version, (long long)st->timestamp_version);
    else if (ts->expires_ms <= px_now_ms()) {
        px_time_iso8601(ts->expires_ms, when, sizeof when);
        rc = px_error_set(e, PX_EAUTH,
                          "timestamp version %lld expired at %s (a frozen or stale "
                          "TMS)",
                          (long long)ts->version, when);
    } else if (ts->root_version != root->version)
        rc = px_error_set(e, PX_EAUTH,
                          "the timestamp binds root version %lld, the terminal "
                          "trusts version %lld",
                          (long long)ts->root_version, (long long)root->version);
    if (rc != PX_OK) {
        tuf_timestamp_free(ts);
        return rc;
    }
    st->timestamp_version = ts->version;
    return PX_OK;
}

static int check_target(const tmsc_config *c, tmsc_http *http, const tuf_root *root,
                        const tuf_timestamp *ts, const tmsc_offer *o, tuf_target *t, px_error *e)
{
    char url[PX_TMS_NAME_MAX + PX_TMS_VERSION_MAX + 40], sha[TUF_SHA256_HEX], bsha[TUF_SHA256_HEX];
    char have[PX_TMS_VERSION_MAX];
    int64_t len = 0, have_num = 0;
    px_buf b;
    int rc;
    if (tuf_timestamp_find(ts, o->name, o->version, &len, sha) != PX_OK)
        return px_error_set(e, PX_EAUTH, "the timestamp does not list %s %s", o->name, o->version);
    snprintf(url, sizeof url, "/v1/metadata/targets/%s/%s.json", o->name, o->version);
    px_buf_init(&b, PX_TMS_META_MAX);
    rc = fetch(http, url, &b, e);
    if (rc == PX_OK) {
        tuf_sha256_hex(b.data, b.len, bsha);
        if ((int64_t)b.len != len || strcmp(bsha, sha) != 0)
            rc = px_error_set(e, PX_EAUTH, "targets %s %s is not the record the timestamp binds",
                              o->name, o->version);
    }
    if (rc == PX_OK)
        rc = tuf_target_verify(root, b.data, b.len, t, e);
    px_buf_free(&b);
    if (rc != PX_OK)
        return rc;
    if (strcmp(t->name, o->name) != 0 || strcmp(t->version, o->version) != 0 ||
        strcmp(t->kind, o->kind) != 0 || t->length != o->length ||
        strcmp(t->sha256, o->sha256) != 0)
        return px_error_set(e, PX_EAUTH, "the offer of %s %s differs from its signed record",
                            o->name, o->version);
    if (!tuf_target_fits_model(t, c->model))
        return px_error_set(e, PX_EPERM, "%s %s is not for model %s", t->name, t->version,
                            c->model);
    if (t->expires_ms <= px_now_ms())
        return px_error_set(e, PX_EAUTH, "targets %s %s has expired", t->name, t->version);
    if (t->length > c->max_package_bytes)
        return px_error_set(e, PX_ETOOBIG,
                            "%s %s: %lld bytes, over this terminal's limit of "
                            "%lld",
                            t->name, t->version, (long long)t->length,
                            (long long)c->max_package_bytes);
    if (tmsc_installed(c, t->name, have, &have_num) == PX_OK && have_num >= t->version_num)
        return px_error_set(e, PX_EPERM,
                            "%s %s is not newer than the installed %s (rollback "
                            "refused)",
                            t->name, t->version, have);
    return PX_OK;
}

/* ---- mutual authentication (claim 4) ------------------------------------------------------- */

static int load_dmk(const tmsc_config *c, const tmsc_hooks *h, uint8_t dmk[16], px_error *e)
{
    char path[PX_PATH_MAX + 32];
    uint8_t out[64];
    size_t n = 0;
    px_buf b;
    int rc;
    if (h == NULL || h->unseal == NULL)
        return px_error_set(e, PX_EINVAL, "no secure store to unseal the DMK from");
    px_buf_init(&b, 1024);
    tmsc_path(c, "tms/dmk.sealed", path, sizeof path);
    rc = tmsc_read_file(path, 1024, &b, e);
    if (rc == PX_OK)
        rc = h->unseal(h->ud, b.data, b.len, out, sizeof out, &n, e);
    px_buf_free(&b);
    if (rc == PX_OK && n != 16)
        rc = px_error_set(e, PX_EFORMAT, "%s: not a DMK", path);
    if (rc == PX_OK)
        memcpy(dmk, out, 16);
    OPENSSL_cleanse(out, sizeof out);
    return rc;
}

static int hex16(const json_t *o, const char *key, uint8_t out[16])
{
    const char *s = json_string_value(json_object_get(o, key));
    size_t n = 0;
    return s != NULL && strlen(s) == 32 && px_hex_decode(s, out, 16, &n) == PX_OK && n == 16;
}

static int post_json(tmsc_http *http, const char *path, json_t *req, const char *extra,
                     json_t **ans, px_error *e)
{
    char *body = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
    tmsc_resp r;
    int rc;
    json_decref(req);
    if (body == NULL)
        return px_error_set(e, PX_ENOMEM, "out of memory");
    tmsc_resp_init(&r);
    rc = tmsc_http_request(http, "POST", path, extra, body, strlen(body), -1, 0, &r, e);
    OPENSSL_cleanse(body, strlen(body));
    free(body);
    if (rc == PX_OK)
        rc = tmsc_resp_json(&r, ans, e);
    tmsc_resp_free(&r);
    return rc;
}

/* T-DATA -> (TAC-1, DWK-1, S-DATA); TAC-0 == TAC-1?; SAC-1 and the result -> token. */
static int authenticate(const tmsc_config *c, const tmsc_hooks *h, tmsc_http *http, char token[80],
                        px_error *e)
{
    uint8_t dmk[16], dwk[16], t_data[16], tac1[16], tac0[16], dwk1[16], s_data[16], sac[16];
    char thex[33], sachex[33], path[96], session[40];
    json_t *ans = NULL;
    int tac_ok = 0, rc = load_dmk(c, h, dmk, e);
    if (rc == PX_OK)
        rc = crypto_random(t_data, sizeof t_data, e);
    px_hex_encode(t_data, sizeof t_data, thex);
    if (rc == PX_OK)
        rc = post_json(http, "/v1/sessions",
                       json_pack("{s:s, s:s}", "serial", c->serial, "t_data", thex), NULL, &ans, e);
    if (rc == PX_OK &&
        (!hex16(ans, "tac", tac1) || !hex16(ans, "dwk", dwk1) || !hex16(ans, "s_data", s_data) ||
         !str_into(ans, "session", session, sizeof session) || strlen(session) != 32 ||
         !px_hex_is_valid(session, 32)))
        rc = px_error_set(e, PX_EFORMAT, "authentication: the TMS's challenge is malformed");
    json_decref(ans);
    ans = NULL;
    /* DWK = DMK^-1(DWK-1); TAC-0 = TDES-CBC(DWK, 0, T-DATA); SAC-1 = TDES-CBC(DWK, 0, S-DATA) */
    if (rc == PX_OK)
        rc = crypto_decrypt(CRYPTO_TDES, CRYPTO_ECB, dmk, 16, NULL, dwk1, 16, dwk, e);
    if (rc == PX_OK)
        rc = crypto_encrypt(CRYPTO_TDES, CRYPTO_CBC, dwk, 16, zero_iv, t_data, 16, tac0, e);
    if (rc == PX_OK)
        rc = crypto_encrypt(CRYPTO_TDES, CRYPTO_CBC, dwk, 16, zero_iv, s_data, 16, sac, e);
    OPENSSL_cleanse(dmk, sizeof dmk);
    OPENSSL_cleanse(dwk, sizeof dwk);
    if (rc != PX_OK)
        return px_error_prefix(e, "authentication: ");
    tac_ok = px_ct_equal(tac0, tac1, sizeof tac0);
    px_hex_encode(sac, sizeof sac, sachex);
    snprintf(path, sizeof path, "/v1/sessions/%s", session);
    rc = post_json(http, path,
                   json_pack("{s:s, s:s, s:b}", "serial", c->serial, "sac", sachex, "tac_ok",
                             tac_ok),
                   NULL, &ans, e);
    if (!tac_ok) {
        json_decref(ans);
        return px_error_set(e, PX_EAUTH,
                            "authentication: the TMS's TAC does not match: it does "
                            "not hold this terminal's DMK (or this terminal holds the wrong one)");
    }
    if (rc == PX_OK && !str_into(ans, "token", token, 80))
        rc = px_error_set(e, PX_EFORMAT, "authentication: no token in the TMS's answer");
    json_decref(ans);
    return rc != PX_OK ? px_error_prefix(e, "authentication: ") : PX_OK;
}

/* ---- download ------------------------------------------------------------------------------ */

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

typedef struct session {
    char token[80];
    int tried; /* authentication attempted in this pass */
} session;

static int ensure_session(const tmsc_config *c, const tmsc_hooks *h, tmsc_http *http, session *s,
                          px_error *e)
{
    if (s->token[0] != 0)
        return PX_OK;
    s->tried = 1;
    tmsc_say(h, "authenticating with the TMS (T-DATA, TAC, DWK, S-DATA, SAC)");
    return authenticate(c, h, http, s->token, e);
}

/* Download o into DIR/tms/download/SHA.part, resuming what is there, then check it. */
static int download(const tmsc_config *c, const tmsc_hooks *h, tmsc_http *http, session *s,
                    const tmsc_offer *o, char *file, size_t filesz, px_error *e)
{
    char dir[PX_PATH_MAX + 32], url[PX_TMS_NAME_MAX + PX_TMS_VERSION_MAX + 24], extra[256];
    char sha[TUF_SHA256_HEX];
    int64_t off, waited = 0, len = 0;
    int cuts = 0, reauth = 0, rc = PX_OK, fd;
    struct stat sb;
    tmsc_path(c, "tms/download", dir, sizeof dir);
    if ((rc = tmsc_mkdirs(dir, e)) != PX_OK)
        return rc;
    snprintf(file, filesz, "%s/%s.part", dir, o->sha256);
    if ((fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
        return px_error_set(e, PX_EIO, "%s: %s", file, strerror(errno));
    off = fstat(fd, &sb) == 0 ? sb.st_size : 0;
    if (off > o->length && ftruncate(fd, 0) == 0)
        off = 0;
    if (off > 0 && off < o->length)
        tmsc_say(h, "resuming %s %s at byte %lld of %lld", o->name, o->version, (long long)off,
                 (long long)o->length);
    snprintf(url, sizeof url, "/v1/packages/%s/%s", o->name, o->version);
    while (off < o->length) {
        int64_t last = o->slice_bytes > 0 && off + o->slice_bytes < o->length
                           ? off + o->slice_bytes - 1
                           : o->length - 1;
        tmsc_resp r;
        px_error le = {0};
        if ((rc = ensure_session(c, h, http, s, e)) != PX_OK)
            break;
        snprintf(extra, sizeof extra, "Authorization: Bearer %s\r\nRange: bytes=%lld-%lld\r\n",
                 s->token, (long long)off, (long long)last);
        tmsc_resp_init(&r);
        rc = tmsc_http_request(http, "GET", url, extra, NULL, 0, fd, off, &r, &le);
        OPENSSL_cleanse(extra, sizeof extra);
        if (rc != PX_OK) { /* a cut: keep what came, resume from there */
            tmsc_resp_free(&r);
            if (++cuts > TMSC_CUTS_MAX) {
                *e = le;
                px_error_prefix(e, "download cut %d times: ", cuts);
                break;
            }
            off = fstat(fd, &sb) == 0 ? sb.st_size : off;
            tmsc_say(h, "connection cut (%s): resuming at byte %lld", le.msg, (long long)off);
            sleep_ms(200L * cuts);
            rc = PX_OK;
            continue;
        }
        if (r.status == 206 && r.range_first == off && r.range_last == last &&
            r.range_total == o->length) {
            off = last + 1;
        } else if (r.status == 200 && off == 0 && r.content_length == o->length) {
            off = o->length;
        } else if (r.status == 401 && !reauth++) {
            s->token[0] = 0; /* the session expired: authenticate again */
        } else if ((r.status == 429 || r.status == 503) && waited < TMSC_RETRY_WAIT_MAX_MS) {
            int64_t w = r.retry_after_ms > 0 ? r.retry_after_ms : 1000;
            waited += w;
            sleep_ms(w);
        } else {
            json_t *j = NULL;
            rc = r.status >= 200 && r.status < 300
                     ? px_error_set(e, PX_EFORMAT,
                                    "download: the TMS sent range %lld-%lld/%lld for "
                                    "%lld-%lld",
                                    (long long)r.range_first, (long long)r.range_last,
                                    (long long)r.range_total, (long long)off, (long long)last)
                     : tmsc_resp_json(&r, &j, e);
            json_decref(j);
            tmsc_resp_free(&r);
            break;
        }
        tmsc_resp_free(&r);
        if (h != NULL && h->progress != NULL)
            h->progress(h->ud, o->name, off, o->length);
    }
    if (rc == PX_OK && fsync(fd) != 0)
        rc = px_error_set(e, PX_EIO, "%s: %s", file, strerror(errno));
    close(fd);
    if (rc != PX_OK)
        return rc;
    if ((rc = tmsc_file_sha256(file, sha, &len, e)) != PX_OK)
        return rc;
    if (len != o->length || strcmp(sha, o->sha256) != 0) {
        unlink(file); /* never kept: the next attempt starts over */
        return px_error_set(e, PX_EAUTH,
                            "the downloaded %s %s does not match its signed record "
                            "(SHA-256 %.16s..., %lld bytes)",
                            o->name, o->version, sha, (long long)len);
    }
    return PX_OK;
}

/* ---- reports -------------------------------------------------------------------------------- */

/* Deliver queued reports, oldest first; keep those that could not be delivered now. */
static void deliver(const tmsc_config *c, const tmsc_hooks *h, tmsc_http *http, session *s,
                    tmsc_state *st, size_t *sent)
{
    size_t keep = 0;
    int stop = 0;
    for (size_t i = 0; i < st->nreports; i++) {
        tmsc_report *r = &st->reports[i];
        char extra[128];
        json_t *ans = NULL, *req;
        px_error e = {0};
        int rc = stop ? PX_ENET : ensure_session(c, h, http, s, &e);
        for (int attempt = 0; rc == PX_OK && attempt < 2; attempt++) {
            req = json_pack("{s:s, s:s, s:s}", "campaign", r->campaign, "status", r->status,
                            "version", r->version);
            if (r->reason[0] != 0)
                json_object_set_new(req, "reason", json_string(r->reason));
            snprintf(extra, sizeof extra, "Authorization: Bearer %s\r\n", s->token);
            rc = post_json(http, "/v1/reports", req, extra, &ans, &e);
            OPENSSL_cleanse(extra, sizeof extra);
            json_decref(ans);
            ans = NULL;
            if (rc != PX_EAUTH || attempt == 1)
                break;
            s->token[0] = 0; /* expired: once more with a new session */
            rc = ensure_session(c, h, http, s, &e);
        }
        if (rc == PX_OK) {
            (*sent)++;
            tmsc_say(h, "reported %s %s: %s", r->name, r->version, r->status);
        } else if (rc == PX_ENOTFOUND || rc == PX_ECONFLICT || rc == PX_EINVAL) {
            tmsc_say(h, "report %s %s %s refused: %s", r->name, r->version, r->status, e.msg);
        } else {
            if (!stop)
                tmsc_say(h, "reports wait for the next pass: %s", px_error_text(&e));
            stop = 1;
            st->reports[keep++] = *r;
        }
    }
    st->nreports = keep;
}

/* ---- one pass ------------------------------------------------------------------------------- */

static int dl_ready(const tmsc_config *c, const tmsc_offer *o, char *file, size_t filesz)
{
    char sha[TUF_SHA256_HEX];
    int64_t len = 0;
    snprintf(file, filesz, "%s/tms/download/%s.part", c->data_dir, o->sha256);
    return tmsc_file_sha256(file, sha, &len, NULL) == PX_OK && len == o->length &&
           strcmp(sha, o->sha256) == 0;
}

static void one_update(const tmsc_config *c, const tmsc_hooks *h, tmsc_http *http, session *s,
                       tmsc_state *st, const tuf_root *root, const tuf_timestamp *ts,
                       const tmsc_offer *o, tmsc_outcome *out)
{
    char file[PX_PATH_MAX + 128], why[PX_TMS_REASON_MAX];
    tuf_target t;
    px_error e = {0};
    out->offer = *o;
    tmsc_say(h, "update %s %s (campaign %s): checking its signed metadata", o->name, o->version,
             o->campaign);
    if (check_target(c, http, root, ts, o, &t, &e) != PX_OK) {
        px_strlcpy(out->status, "failed", sizeof out->status);
        px_strlcpy(out->reason, e.msg, sizeof out->reason);
        tmsc_state_queue(st, o, "failed", out->reason);
        return;
    }
    if (!dl_ready(c, o, file, sizeof file)) {
        tmsc_say(h, "downloading %s %s (%lld bytes)", o->name, o->version, (long long)o->length);
        if (download(c, h, http, s, o, file, sizeof file, &e) != PX_OK) {
            px_strlcpy(out->status, "failed", sizeof out->status);
            px_strlcpy(out->reason, e.msg, sizeof out->reason);
            /* a refused authentication cannot be reported; anything else is */
            if (!(e.code == PX_EAUTH && strncmp(e.msg, "authentication", 14) == 0))
                tmsc_state_queue(st, o, "failed", out->reason);
            return;
        }
        tmsc_state_queue(st, o, "downloaded", "");
    }
    if (h != NULL && h->busy != NULL && h->busy(h->ud, why, sizeof why)) {
        px_strlcpy(out->status, "deferred", sizeof out->status);
        px_strlcpy(out->reason, why, sizeof out->reason);
        tmsc_state_queue(st, o, "deferred", why);
        return; /* the verified download is kept for the next pass */
    }
    if (tmsc_install(c, h, &t, o->campaign, file, out->status, out->reason, sizeof out->reason,
                     &e) != PX_OK) {
        px_strlcpy(out->status, "failed", sizeof out->status);
        px_strlcpy(out->reason, e.msg, sizeof out->reason);
    }
    unlink(file);
    tmsc_state_queue(st, o, out->status, out->reason);
}

int tmsc_run(const tmsc_config *c, const tmsc_hooks *h, tmsc_run_result *out, px_error *e)
{
    tmsc_state *st = calloc(1, sizeof *st);
    tmsc_http *http = NULL;
    tuf_root *root = calloc(1, sizeof *root);
    tuf_timestamp ts = {0};
    session s;
    int rc;
    memset(out, 0, sizeof *out);
    memset(&s, 0, sizeof s);
    if (st == NULL || root == NULL) {
        free(st);
        free(root);
        return px_error_set(e, PX_ENOMEM, "out of memory");
    }
    rc = tmsc_state_load(c, st, e);
    if (rc == PX_OK)
        rc = tmsc_recover(c, h, st, e);
    if (rc == PX_OK)
        rc = tmsc_http_open(c, &http, e);
    if (rc == PX_OK && st->nreports > 0)
        deliver(c, h, http, &s, st, &out->reports_sent);
    if (rc == PX_OK)
        rc = do_checkin(c, h, http, st, &out->checkin, e);
    if (rc == PX_OK && out->checkin.noffers > 0) {
        tmsc_say(h, "%zu update%s waiting: checking the root and timestamp records",
                 out->checkin.noffers, out->checkin.noffers == 1 ? "" : "s");
        rc = update_root(c, h, http, root, e);
        if (rc == PX_OK)
            rc = check_timestamp(http, root, st, &ts, e);
        if (rc != PX_OK) {
            /* nothing offered can be trusted: each is reported as failed, with why */
            for (size_t i = 0; i < out->checkin.noffers; i++) {
                tmsc_outcome *o = &out->outcomes[out->noutcomes++];
                o->offer = out->checkin.offers[i];
                px_strlcpy(o->status, "failed", sizeof o->status);
                px_strlcpy(o->reason, e->msg, sizeof o->reason);
                tmsc_state_queue(st, &o->offer, "failed", o->reason);
            }
            rc = PX_OK;
        } else {
            for (size_t i = 0; i < out->checkin.noffers; i++)
                one_update(c, h, http, &s, st, root, &ts, &out->checkin.offers[i],
                           &out->outcomes[out->noutcomes++]);
        }
        tuf_timestamp_free(&ts);
    }
    if (rc == PX_OK && st->nreports > 0)
        deliver(c, h, http, &s, st, &out->reports_sent);
    if (st != NULL) {
        px_error se = {0};
        out->reports_pending = st->nreports;
        if (tmsc_state_save(c, st, &se) != PX_OK && rc == PX_OK) {
            *e = se;
            rc = se.code;
        }
    }
    OPENSSL_cleanse(&s, sizeof s);
    tmsc_http_close(http);
    free(root);
    free(st);
    return rc;
}
