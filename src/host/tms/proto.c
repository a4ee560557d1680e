/*
 * proto.c: the store side of what terminals ask (docs/update-protocol.md): check-in (seed 000
 * [0046]-[0047]: the terminal asks, the TMS looks up the update for it), the permission to
 * download a release, and reports. Each request is parsed into a struct by one function that
 * checks every field; nothing after it reads the JSON again.
 */
#include "host/tms/tms_int.h"

#include "lib/hex.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <stdlib.h>
#include <string.h>

static int only_fields(const json_t *o, const char *const *allowed, px_error *e)
{
    const char *k;
    json_t *v;
    json_object_foreach ((json_t *)o, k, v) {
        size_t i = 0;
        while (allowed[i] != NULL && strcmp(allowed[i], k) != 0)
            i++;
        if (allowed[i] == NULL)
            return px_error_set(e, PX_EINVAL, "%s: unknown field", k);
    }
    return PX_OK;
}

static int str_field(const json_t *o, const char *key, char *out, size_t outsz, int required,
                     px_error *e)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL && !required) {
        out[0] = 0;
        return PX_OK;
    }
    if (!json_is_string(v) || json_string_length(v) >= outsz ||
        strlen(json_string_value(v)) != json_string_length(v) ||
        (required && json_string_length(v) == 0))
        return px_error_set(e, PX_EINVAL, "%s: %s (a string of at most %zu characters)", key,
                            required ? "required" : "expected", outsz - 1);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return PX_OK;
}

int tms_checkin_parse(const json_t *body, tms_checkin_req *out, px_error *e)
{
    static const char *const keys[] = {"serial", "model", "nonce", "installed", NULL};
    json_t *inst = json_object_get(body, "installed"), *v;
    const char *k;
    size_t n;
    char *text;
    int64_t num;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = only_fields(body, keys, e)) != PX_OK ||
        (rc = str_field(body, "serial", out->serial, sizeof out->serial, 1, e)) != PX_OK ||
        (rc = str_field(body, "model", out->model, sizeof out->model, 1, e)) != PX_OK ||
        (rc = str_field(body, "nonce", out->nonce, sizeof out->nonce, 1, e)) != PX_OK)
        return rc;
    if (!tms_serial_is_valid(out->serial))
        return px_error_set(e, PX_EINVAL, "serial: 1 to %d of A-Z a-z 0-9 . _ -",
                            PX_TMS_SERIAL_MAX - 1);
    if (!tuf_name_is_valid(out->model))
        return px_error_set(e, PX_EINVAL, "model: not a model name");
    n = strlen(out->nonce);
    if (n < 2 * TMS_NONCE_MIN || n % 2 != 0 || !px_hex_is_valid(out->nonce, n))
        return px_error_set(e, PX_EINVAL, "nonce: %d to %d bytes in hex", TMS_NONCE_MIN,
                            TMS_NONCE_MAX);
    if (inst == NULL)
        inst = json_object();
    else
        json_incref(inst);
    if (!json_is_object(inst) || json_object_size(inst) > PX_TMS_INSTALLED_MAX) {
        json_decref(inst);
        return px_error_set(e, PX_EINVAL, "installed: an object of at most %d name: version pairs",
                            PX_TMS_INSTALLED_MAX);
    }
    json_object_foreach (inst, k, v) {
        tms_installed *it = &out->installed[out->ninstalled];
        if (!tuf_name_is_valid(k) || !json_is_string(v) ||
            tuf_version_parse(json_string_value(v), &num, NULL) != PX_OK) {
            json_decref(inst);
            return px_error_set(e, PX_EINVAL,
                                "installed: \"%.64s\": expected a package name and "
                                "a version MAJOR[.MINOR[.PATCH]]",
                                k);
        }
        px_strlcpy(it->name, k, sizeof it->name);
        px_strlcpy(it->version, json_string_value(v), sizeof it->version);
        out->ninstalled++;
    }
    text = json_dumps(inst, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(inst);
    if (text == NULL ||
        px_strlcpy(out->installed_json, text, sizeof out->installed_json) != PX_OK) {
        free(text);
        return px_error_set(e, PX_EINVAL, "installed: too long");
    }
    free(text);
    return PX_OK;
}

int tms_checkin_terminal(store *st, const char *serial, char model[PX_TMS_NAME_MAX],
                         char schedule[64], px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st, "SELECT model, schedule FROM tms_terminal WHERE serial = $1", &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, serial);
    rc = store_step(q, e);
    if (rc == STORE_ROW) {
        px_strlcpy(model, store_col_text(q, 0), PX_TMS_NAME_MAX);
        px_strlcpy(schedule, store_col_text(q, 1), 64);
    }
    store_done(q);
    if (rc == STORE_DONE)
        return px_error_set(e, PX_ENOTFOUND, "terminal %s is not registered", serial);
    return rc < 0 ? rc : PX_OK;
}

static int installed_num(const tms_checkin_req *r, const char *name, int64_t *num)
{
    for (size_t i = 0; i < r->ninstalled; i++)
        if (strcmp(r->installed[i].name, name) == 0)
            return tuf_version_parse(r->installed[i].version, num, NULL) == PX_OK;
    return 0;
}

typedef struct offer_row {
    tms_offer o;
    int64_t version_num, wstart, wend;
    int to; /* 0 keep, 1 offered, 2 skipped */
} offer_row;

typedef struct move_ctx {
    const char *serial;
    offer_row *rows;
    size_t n;
    int64_t now;
    const tms_flagger *f;
} move_ctx;

/* pending -> offered (clearing the switch's flag), or -> skipped; conditional on the state. */
static int offers_move_txn(store *st, void *ud, px_error *e)
{
    move_ctx *m = ud;
    char tid[PX_TMS_TID_MAX] = "";
    store_stmt *q;
    int rc = PX_OK, cleared = 0;
    for (size_t i = 0; i < m->n && rc == PX_OK; i++) {
        offer_row *r = &m->rows[i];
        if (r->to == 0)
            continue;
        if ((rc = store_prepare(st,
                                "UPDATE tms_target SET state = $3, updated_ms = $4 WHERE "
                                "campaign = $1 AND serial = $2 AND state = $5",
                                &q, e)) != PX_OK)
            break;
        store_bind_text(q, 1, r->o.campaign);
        store_bind_text(q, 2, m->serial);
        store_bind_text(q, 3, r->to == 1 ? "offered" : "skipped");
        store_bind_int64(q, 4, m->now);
        store_bind_text(q, 5, r->o.state);
        rc = store_step(q, e);
        store_done(q);
        rc = rc < 0 ? rc : PX_OK;
        cleared |= r->to == 1;
    }
    if (rc != PX_OK || !cleared || m->f == NULL || m->f->set == NULL)
        return rc;
    if ((rc = store_prepare(st, "SELECT tid FROM tms_terminal WHERE serial = $1", &q, e)) != PX_OK)
        return rc;
    store_bind_text(q, 1, m->serial);
    if ((rc = store_step(q, e)) == STORE_ROW)
        px_strlcpy(tid, store_col_text(q, 0), sizeof tid);
    store_done(q);
    if (rc < 0)
        return rc;
    if (tid[0] != 0) {
        px_error fe = {0};
        int frc = m->f->set(m->f->ud, st, tid, 0, &fe);
        if (frc != PX_OK && frc != PX_ENOTFOUND)
            return px_error_set(e, frc, "clearing the flag of %s: %s", tid, px_error_text(&fe));
    }
    return PX_OK;
}

int tms_checkin_offers(store *st, const tms_checkin_req *r, int64_t now, const tms_flagger *f,
                       tms_offer *offers, size_t *noffers, px_error *e)
{
    offer_row rows[PX_TMS_UPDATES_MAX];
    size_t n = 0, moves = 0;
    store_stmt *q;
    int rc = store_prepare(st,
                           "SELECT t.campaign, t.state, c.pkg_name, c.pkg_version, p.kind, "
                           "p.length, p.sha256, p.version_num, c.window_start_min, "
                           "c.window_end_min FROM tms_target t JOIN tms_campaign c ON c.name = "
                           "t.campaign JOIN tms_package p ON p.name = c.pkg_name AND p.version = "
                           "c.pkg_version WHERE t.serial = $1 AND t.state IN ('pending', "
                           "'offered', 'downloaded', 'deferred') AND c.state = 'running' ORDER "
                           "BY c.created_ms, c.name LIMIT 4",
                           &q, e);
    *noffers = 0;
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, r->serial);
    while (n < PX_TMS_UPDATES_MAX && (rc = store_step(q, e)) == STORE_ROW) {
        offer_row *o = &rows[n++];
        memset(o, 0, sizeof *o);
        px_strlcpy(o->o.campaign, store_col_text(q, 0), sizeof o->o.campaign);
        px_strlcpy(o->o.state, store_col_text(q, 1), sizeof o->o.state);
        px_strlcpy(o->o.name, store_col_text(q, 2), sizeof o->o.name);
        px_strlcpy(o->o.version, store_col_text(q, 3), sizeof o->o.version);
        px_strlcpy(o->o.kind, store_col_text(q, 4), sizeof o->o.kind);
        o->o.length = store_col_int64(q, 5);
        px_strlcpy(o->o.sha256, store_col_text(q, 6), sizeof o->o.sha256);
        o->version_num = store_col_int64(q, 7);
        o->wstart = store_col_int64(q, 8);
        o->wend = store_col_int64(q, 9);
    }
    store_done(q);
    if (rc < 0)
        return rc;
    rc = PX_OK;
    for (size_t i = 0; i < n; i++) {
        offer_row *o = &rows[i];
        int64_t have, m = (now / 60000) % 1440;
        int open = o->wstart < 0 || (o->wstart < o->wend ? (m >= o->wstart && m < o->wend)
                                                         : (m >= o->wstart || m < o->wend));
        if (installed_num(r, o->o.name, &have) && have >= o->version_num) {
            o->to = strcmp(o->o.state, "pending") == 0 || strcmp(o->o.state, "offered") == 0 ? 2
                                                                                             : 0;
            moves += o->to != 0;
            continue; /* it runs this version or newer already */
        }
        if (!open)
            continue; /* outside the maintenance window: nothing now */
        if (strcmp(o->o.state, "pending") == 0) {
            o->to = 1;
            moves++;
        }
        offers[*noffers] = o->o;
        if (o->to == 1)
            px_strlcpy(offers[*noffers].state, "offered", sizeof offers[*noffers].state);
        (*noffers)++;
    }
    if (moves > 0) {
        move_ctx mc = {r->serial, rows, n, now, f};
        rc = tms_txn(st, offers_move_txn, &mc, e);
    }
    return rc;
}

int tms_contacts_write(store *st, const tms_contact *c, size_t n, px_error *e)
{
    int rc = store_begin(st, e);
    for (size_t i = 0; rc == PX_OK && i < n; i++) {
        store_stmt *q;
        /* installed only when no report has recorded something newer since */
        if ((rc = store_prepare(st,
                                "UPDATE tms_terminal SET last_contact_ms = $2, installed = "
                                "CASE WHEN installed_ms <= $2 THEN $3 ELSE installed END, "
                                "installed_ms = CASE WHEN installed_ms <= $2 THEN $2 ELSE "
                                "installed_ms END WHERE serial = $1",
                                &q, e)) != PX_OK)
            break;
        store_bind_text(q, 1, c[i].serial);
        store_bind_int64(q, 2, c[i].at_ms);
        store_bind_text(q, 3, c[i].installed_json);
        rc = store_step(q, e);
        store_done(q);
        rc = rc < 0 ? rc : PX_OK;
    }
    if (rc == PX_OK)
        rc = store_commit(st, e);
    if (rc != PX_OK)
        store_rollback(st);
    return rc;
}

/* ---- reports ---------------------------------------------------------------------------- */

int tms_report_parse(const json_t *body, tms_report_req *out, px_error *e)
{
    static const char *const keys[] = {"campaign", "status", "version", "reason", NULL};
    static const char *const statuses[] = {"downloaded",  "installed", "failed",
                                           "rolled_back", "deferred",  NULL};
    int64_t num;
    int rc;
    size_t i = 0;
    memset(out, 0, sizeof *out);
    if ((rc = only_fields(body, keys, e)) != PX_OK ||
        (rc = str_field(body, "campaign", out->campaign, sizeof out->campaign, 1, e)) != PX_OK ||
        (rc = str_field(body, "status", out->status, sizeof out->status, 1, e)) != PX_OK ||
        (rc = str_field(body, "version", out->version, sizeof out->version, 1, e)) != PX_OK ||
        (rc = str_field(body, "reason", out->reason, sizeof out->reason, 0, e)) != PX_OK)
        return rc;
    while (statuses[i] != NULL && strcmp(statuses[i], out->status) != 0)
        i++;
    if (statuses[i] == NULL)
        return px_error_set(e, PX_EINVAL,
                            "status: one of downloaded, installed, failed, "
                            "rolled_back, deferred");
    if (!tuf_name_is_valid(out->campaign))
        return px_error_set(e, PX_EINVAL, "campaign: not a campaign name");
    if (tuf_version_parse(out->version, &num, e) != PX_OK)
        return px_error_set(e, PX_EINVAL, "version: expected MAJOR[.MINOR[.PATCH]]");
    for (const char *p = out->reason; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return px_error_set(e, PX_EINVAL, "reason: printable text only");
    if ((strcmp(out->status, "failed") == 0 || strcmp(out->status, "rolled_back") == 0 ||
         strcmp(out->status, "deferred") == 0) &&
        out->reason[0] == 0)
        return px_error_set(e, PX_EINVAL, "reason: required with status %s", out->status);
    return PX_OK;
}

typedef struct report_ctx {
    const char *serial;
    const tms_report_req *r;
    int64_t now;
    tms_tstate state;
} report_ctx;

static int set_installed(store *st, const char *serial, const char *name, const char *version,
                         px_error *e)
{
    store_stmt *q;
    json_t *j = NULL;
    char *text = NULL;
    int rc = store_prepare(st, "SELECT installed FROM tms_terminal WHERE serial = $1", &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, serial);
    if ((rc = store_step(q, e)) == STORE_ROW)
        j = json_loads(store_col_text(q, 0), 0, NULL);
    store_done(q);
    if (rc < 0) {
        json_decref(j);
        return rc;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        j = json_object();
    }
    json_object_set_new(j, name, json_string(version));
    text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    if (text == NULL)
        return px_error_set(e, PX_ENOMEM, "out of memory");
    if ((rc = store_prepare(st,
                            "UPDATE tms_terminal SET installed = $2, installed_ms = $3, "
                            "updated_ms = $3 WHERE serial = $1",
                            &q, e)) == PX_OK) {
        store_bind_text(q, 1, serial);
        store_bind_text(q, 2, text);
        store_bind_int64(q, 3, px_now_ms());
        rc = store_step(q, e);
        store_done(q);
        rc = rc < 0 ? rc : PX_OK;
    }
    free(text);
    return rc;
}

static int report_txn(store *st, void *ud, px_error *e)
{
    report_ctx *c = ud;
    const tms_report_req *r = c->r;
    char pkg_name[PX_TMS_NAME_MAX] = "", pkg_version[PX_TMS_VERSION_MAX] = "";
    tms_tstate cur = TMS_T_SCHEDULED, want;
    store_stmt *q;
    int64_t seq = 1;
    int rc = store_prepare(st,
                           "SELECT t.state, c.pkg_name, c.pkg_version FROM tms_target t JOIN "
                           "tms_campaign c ON c.name = t.campaign WHERE t.campaign = $1 AND "
                           "t.serial = $2",
                           &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, r->campaign);
    store_bind_text(q, 2, c->serial);
    rc = store_step(q, e);
    if (rc == STORE_ROW) {
        (void)tms_tstate_parse(store_col_text(q, 0), &cur);
        px_strlcpy(pkg_name, store_col_text(q, 1), sizeof pkg_name);
        px_strlcpy(pkg_version, store_col_text(q, 2), sizeof pkg_version);
    }
    store_done(q);
    if (rc < 0)
        return rc;
    if (rc == STORE_DONE || cur == TMS_T_SCHEDULED || cur == TMS_T_PENDING || cur == TMS_T_SKIPPED)
        return px_error_set(e, PX_ENOTFOUND, "no update of campaign %s was offered to terminal %s",
                            r->campaign, c->serial);
    if (strcmp(pkg_version, r->version) != 0)
        return px_error_set(e, PX_ECONFLICT, "campaign %s installs %s %s, not version %s",
                            r->campaign, pkg_name, pkg_version, r->version);
    (void)tms_tstate_parse(r->status, &want);
    c->state = cur;
    if (cur == TMS_T_INSTALLED || cur == TMS_T_FAILED || cur == TMS_T_ROLLED_BACK) {
        if (cur == want)
            return PX_OK; /* the same final report again: already recorded */
        return px_error_set(e, PX_ECONFLICT, "terminal %s already reported %s for campaign %s",
                            c->serial, tms_tstate_name(cur), r->campaign);
    }
    if ((rc = store_prepare(st,
                            "SELECT COALESCE(MAX(seq), 0) + 1 FROM tms_report WHERE serial = $1 "
                            "AND campaign = $2",
                            &q, e)) != PX_OK)
        return rc;
    store_bind_text(q, 1, c->serial);
    store_bind_text(q, 2, r->campaign);
    if ((rc = store_step(q, e)) == STORE_ROW)
        seq = store_col_int64(q, 0);
    store_done(q);
    if (rc < 0 || (rc = store_prepare(st,
                                      "INSERT INTO tms_report (serial, campaign, seq, status, "
                                      "version, reason, at_ms) VALUES ($1, $2, $3, $4, $5, $6, "
                                      "$7)",
                                      &q, e)) != PX_OK)
        return rc;
    store_bind_text(q, 1, c->serial);
    store_bind_text(q, 2, r->campaign);
    store_bind_int64(q, 3, seq);
    store_bind_text(q, 4, r->status);
    store_bind_text(q, 5, r->version);
    store_bind_text(q, 6, r->reason);
    store_bind_int64(q, 7, c->now);
    rc = store_step(q, e);
    store_done(q);
    if (rc < 0 || (rc = store_prepare(st,
                                      "UPDATE tms_target SET state = $3, reason = $4, updated_ms "
                                      "= $5 WHERE campaign = $1 AND serial = $2",
                                      &q, e)) != PX_OK)
        return rc;
    store_bind_text(q, 1, r->campaign);
    store_bind_text(q, 2, c->serial);
    store_bind_text(q, 3, r->status);
    store_bind_text(q, 4, r->reason);
    store_bind_int64(q, 5, c->now);
    rc = store_step(q, e);
    store_done(q);
    if (rc < 0)
        return rc;
    c->state = want;
    if (want == TMS_T_INSTALLED)
        return set_installed(st, c->serial, pkg_name, r->version, e);
    return PX_OK;
}

int tms_report_record(store *st, const char *serial, const tms_report_req *r, int64_t now,
                      tms_tstate *state, px_error *e)
{
    report_ctx c = {.serial = serial, .r = r, .now = now};
    int rc = tms_txn(st, report_txn, &c, e);
    if (rc == PX_OK) {
        px_info(TMS_MOD, "terminal %s: campaign %s: %s %s%s%s", serial, r->campaign, r->status,
                r->version, r->reason[0] ? ": " : "", r->reason);
        if (state != NULL)
            *state = c.state;
    }
    return rc;
}

int tms_download_allowed(store *st, const char *serial, const char *name, const char *version,
                         tms_package *pkg, px_error *e)
{
    store_stmt *q;
    char why[PX_TMS_REASON_MAX] = "";
    int rc = store_prepare(st,
                           "SELECT c.name, c.state, t.state FROM tms_target t JOIN tms_campaign "
                           "c ON c.name = t.campaign WHERE t.serial = $1 AND c.pkg_name = $2 AND "
                           "c.pkg_version = $3 LIMIT 8",
                           &q, e);
    int ok = 0;
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, serial);
    store_bind_text(q, 2, name);
    store_bind_text(q, 3, version);
    while ((rc = store_step(q, e)) == STORE_ROW && !ok) {
        const char *cs = store_col_text(q, 1), *ts = store_col_text(q, 2);
        if (strcmp(cs, "running") != 0)
            snprintf(why, sizeof why, "campaign %s is %s", store_col_text(q, 0), cs);
        else if (strcmp(ts, "offered") == 0 || strcmp(ts, "downloaded") == 0 ||
                 strcmp(ts, "deferred") == 0)
            ok = 1;
        else
            snprintf(why, sizeof why, "campaign %s: this terminal is %s", store_col_text(q, 0), ts);
    }
    store_done(q);
    if (rc < 0)
        return rc;
    if (!ok)
        return px_error_set(e, PX_EPERM, "%s",
                            why[0] ? why
                                   : "no update of this package was "
                                     "offered to this terminal");
    return tms_package_get(st, name, version, pkg, e);
}
