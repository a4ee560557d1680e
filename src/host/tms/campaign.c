/*
 * campaign.c: staged roll-outs (docs/tms.md "Campaigns"). A campaign sends one package to
 * the terminals chosen by model, group or list, in waves of cumulative percentages, from a
 * start time and only within a daily maintenance window. Its progress is a state machine in
 * the store, moved by tms_campaign_tick on whichever node runs it (every step is a
 * conditional update, so two nodes ticking at once do no harm), and by the terminals'
 * check-ins and reports (report.c).
 */
#include "host/tms/tms_int.h"

#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const tstate_names[TMS_T_COUNT_] = {"scheduled",  "pending",     "offered",
                                                       "downloaded", "deferred",    "installed",
                                                       "failed",     "rolled_back", "skipped"};

const char *tms_tstate_name(tms_tstate s)
{
    return (unsigned)s < TMS_T_COUNT_ ? tstate_names[s] : "?";
}

int tms_tstate_parse(const char *s, tms_tstate *out)
{
    for (int i = 0; i < TMS_T_COUNT_; i++)
        if (strcmp(s, tstate_names[i]) == 0) {
            *out = (tms_tstate)i;
            return PX_OK;
        }
    return PX_EINVAL;
}

void tms_campaign_spec_default(tms_campaign_spec *s)
{
    memset(s, 0, sizeof *s);
    s->waves[0] = 100;
    s->nwaves = 1;
    s->start_ms = 0;
    s->window_start_min = s->window_end_min = -1;
    s->max_failure_pct = 5;
    s->advance_pct = 100;
}

int tms_window_parse(const char *s, int64_t *start_min, int64_t *end_min, px_error *e)
{
    int h1, m1, h2, m2;
    char tail;
    if (s == NULL || sscanf(s, "%2d:%2d-%2d:%2d%c", &h1, &m1, &h2, &m2, &tail) != 4 ||
        strlen(s) != 11 || h1 > 23 || h2 > 24 || m1 > 59 || m2 > 59 || h1 < 0 || m1 < 0 || h2 < 0 ||
        m2 < 0 || (h2 == 24 && m2 != 0) || h1 * 60 + m1 == h2 * 60 + m2)
        return px_error_set(e, PX_EINVAL,
                            "window \"%s\": expected HH:MM-HH:MM (UTC), e.g. "
                            "\"01:00-05:00\"",
                            s != NULL ? s : "");
    *start_min = h1 * 60 + m1;
    *end_min = h2 * 60 + m2;
    return PX_OK;
}

static int in_window(int64_t start_min, int64_t end_min, int64_t now)
{
    int64_t m = (now / 60000) % 1440;
    if (start_min < 0)
        return 1;
    return start_min < end_min ? (m >= start_min && m < end_min) : (m >= start_min || m < end_min);
}

/* ---- create --------------------------------------------------------------------------- */

static int spec_check(const tms_campaign_spec *s, px_error *e)
{
    if (!tuf_name_is_valid(s->name))
        return px_error_set(e, PX_EINVAL, "campaign name: 1 to %d of A-Z a-z 0-9 . _ -",
                            PX_TMS_NAME_MAX - 1);
    if (s->nwaves == 0 || s->nwaves > PX_TMS_WAVES_MAX || s->waves[s->nwaves - 1] != 100)
        return px_error_set(e, PX_EINVAL, "waves: 1 to %d cumulative percentages ending at 100",
                            PX_TMS_WAVES_MAX);
    for (size_t i = 0; i < s->nwaves; i++)
        if (s->waves[i] < 1 || s->waves[i] > 100 || (i > 0 && s->waves[i] <= s->waves[i - 1]))
            return px_error_set(e, PX_EINVAL, "waves: percentages must increase from 1 to 100");
    if (!s->all && s->nmodels == 0 && s->ngroups == 0 && s->nserials == 0)
        return px_error_set(e, PX_EINVAL, "choose terminals: models, groups, serials or all");
    if (s->nmodels > PX_TMS_MODELS_MAX || s->ngroups > PX_TMS_GROUPS_MAX ||
        s->nserials > PX_TMS_CAMPAIGN_SERIALS_MAX)
        return px_error_set(e, PX_EINVAL, "at most %d models, %d groups, %d serials",
                            PX_TMS_MODELS_MAX, PX_TMS_GROUPS_MAX, PX_TMS_CAMPAIGN_SERIALS_MAX);
    for (size_t i = 0; i < s->nmodels; i++)
        if (!tuf_name_is_valid(s->models[i]))
            return px_error_set(e, PX_EINVAL, "model %zu: not a model name", i + 1);
    for (size_t i = 0; i < s->ngroups; i++)
        if (!tuf_name_is_valid(s->groups[i]))
            return px_error_set(e, PX_EINVAL, "group %zu: not a group name", i + 1);
    for (size_t i = 0; i < s->nserials; i++)
        if (!tms_serial_is_valid(s->serials[i]))
            return px_error_set(e, PX_EINVAL, "serial %zu: not a serial number", i + 1);
    if ((s->window_start_min < 0) != (s->window_end_min < 0) || s->window_start_min >= 1440 ||
        s->window_end_min > 1440)
        return px_error_set(e, PX_EINVAL, "window: minutes after 00:00 UTC, or none");
    if (s->max_failure_pct < 0 || s->max_failure_pct > 100 || s->advance_pct < 1 ||
        s->advance_pct > 100 || s->wave_min_ms < 0 || s->start_ms < 0)
        return px_error_set(e, PX_EINVAL,
                            "max failures 0..100 %%, advance 1..100 %%, wave "
                            "minimum and start not negative");
    return PX_OK;
}

static void waves_text(const tms_campaign_spec *s, char *out, size_t outsz)
{
    out[0] = 0;
    for (size_t i = 0; i < s->nwaves; i++) {
        size_t n = strlen(out);
        snprintf(out + n, outsz - n, "%s%lld", i ? "," : "", (long long)s->waves[i]);
    }
}

static int waves_parse(const char *text, tms_campaign_spec *s)
{
    const char *p = text;
    s->nwaves = 0;
    while (*p && s->nwaves < PX_TMS_WAVES_MAX) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p)
            return PX_EFORMAT;
        s->waves[s->nwaves++] = v;
        p = *end == ',' ? end + 1 : end;
    }
    return s->nwaves > 0 ? PX_OK : PX_EFORMAT;
}

static char *selector_text(const tms_campaign_spec *s)
{
    json_t *m = json_array(), *g = json_array(), *j;
    char *text;
    for (size_t i = 0; i < s->nmodels; i++)
        json_array_append_new(m, json_string(s->models[i]));
    for (size_t i = 0; i < s->ngroups; i++)
        json_array_append_new(g, json_string(s->groups[i]));
    j = json_pack("{s:b, s:o, s:o, s:I}", "all", s->all, "models", m, "groups", g, "serials",
                  (json_int_t)s->nserials);
    text = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    return text;
}

static void selector_parse(const char *text, tms_campaign_spec *s)
{
    json_t *j = json_loads(text, 0, NULL), *v;
    size_t i;
    s->all = json_is_true(json_object_get(j, "all"));
    json_array_foreach (json_object_get(j, "models"), i, v) {
        if (s->nmodels < PX_TMS_MODELS_MAX && json_is_string(v))
            px_strlcpy(s->models[s->nmodels++], json_string_value(v), PX_TMS_NAME_MAX);
    }
    json_array_foreach (json_object_get(j, "groups"), i, v) {
        if (s->ngroups < PX_TMS_GROUPS_MAX && json_is_string(v))
            px_strlcpy(s->groups[s->ngroups++], json_string_value(v), PX_TMS_NAME_MAX);
    }
    s->nserials = (size_t)json_integer_value(json_object_get(j, "serials"));
    json_decref(j);
}

static int create_txn(store *st, void *ud, px_error *e)
{
    const tms_campaign_spec *s = ud;
    char waves[PX_TMS_WAVES_MAX * 4 + 1], *sel = selector_text(s);
    tms_package p;
    store_stmt *q;
    int64_t now = px_now_ms();
    int rc = sel == NULL ? px_error_set(e, PX_ENOMEM, "out of memory")
                         : tms_package_get(st, s->pkg_name, s->pkg_version, &p, e);
    waves_text(s, waves, sizeof waves);
    if (rc == PX_OK)
        rc = store_prepare(st,
                           "INSERT INTO tms_campaign (name, pkg_name, pkg_version, selector, "
                           "waves, start_ms, window_start_min, window_end_min, "
                           "max_failure_pct, advance_pct, wave_min_ms, state, created_ms, "
                           "updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
                           "'draft', $12, $12) ON CONFLICT DO NOTHING RETURNING name",
                           &q, e);
    if (rc == PX_OK) {
        store_bind_text(q, 1, s->name);
        store_bind_text(q, 2, s->pkg_name);
        store_bind_text(q, 3, s->pkg_version);
        store_bind_text(q, 4, sel);
        store_bind_text(q, 5, waves);
        store_bind_int64(q, 6, s->start_ms);
        store_bind_int64(q, 7, s->window_start_min);
        store_bind_int64(q, 8, s->window_end_min);
        store_bind_int64(q, 9, s->max_failure_pct);
        store_bind_int64(q, 10, s->advance_pct);
        store_bind_int64(q, 11, s->wave_min_ms);
        store_bind_int64(q, 12, now);
        rc = store_step(q, e);
        store_done(q);
        if (rc == STORE_DONE)
            rc = px_error_set(e, PX_EEXIST, "campaign %s exists already", s->name);
        rc = rc < 0 ? rc : PX_OK;
    }
    free(sel);
    for (size_t i = 0; rc == PX_OK && i < s->nserials; i++) {
        if ((rc = store_prepare(st,
                                "INSERT INTO tms_campaign_serial (campaign, serial) VALUES "
                                "($1, $2) ON CONFLICT DO NOTHING",
                                &q, e)) != PX_OK)
            break;
        store_bind_text(q, 1, s->name);
        store_bind_text(q, 2, s->serials[i]);
        rc = store_step(q, e);
        store_done(q);
        rc = rc < 0 ? rc : PX_OK;
    }
    return rc;
}

int tms_campaign_create(store *st, const tms_campaign_spec *s, px_error *e)
{
    int rc = spec_check(s, e);
    if (rc == PX_OK)
        rc = tms_txn(st, create_txn, (void *)s, e);
    if (rc == PX_OK)
        px_info(TMS_MOD, "campaign %s created: %s %s", s->name, s->pkg_name, s->pkg_version);
    return rc;
}

/* ---- reading ---------------------------------------------------------------------------- */

#define CAMPAIGN_COLS                                                                              \
    "name, pkg_name, pkg_version, selector, waves, start_ms, window_start_min, "                   \
    "window_end_min, max_failure_pct, advance_pct, wave_min_ms, state, reason, "                   \
    "current_wave, wave_opened_ms, total, created_ms, updated_ms"

static void campaign_row(store_stmt *q, tms_campaign_info *c)
{
    tms_campaign_spec *s = &c->spec;
    memset(c, 0, sizeof *c);
    px_strlcpy(s->name, store_col_text(q, 0), sizeof s->name);
    px_strlcpy(s->pkg_name, store_col_text(q, 1), sizeof s->pkg_name);
    px_strlcpy(s->pkg_version, store_col_text(q, 2), sizeof s->pkg_version);
    selector_parse(store_col_text(q, 3), s);
    (void)waves_parse(store_col_text(q, 4), s);
    s->start_ms = store_col_int64(q, 5);
    s->window_start_min = store_col_int64(q, 6);
    s->window_end_min = store_col_int64(q, 7);
    s->max_failure_pct = store_col_int64(q, 8);
    s->advance_pct = store_col_int64(q, 9);
    s->wave_min_ms = store_col_int64(q, 10);
    px_strlcpy(c->state, store_col_text(q, 11), sizeof c->state);
    px_strlcpy(c->reason, store_col_text(q, 12), sizeof c->reason);
    c->current_wave = store_col_int64(q, 13);
    c->wave_opened_ms = store_col_int64(q, 14);
    c->total = store_col_int64(q, 15);
    c->created_ms = store_col_int64(q, 16);
    c->updated_ms = store_col_int64(q, 17);
}

static int campaign_read(store *st, const char *name, tms_campaign_info *c, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st, "SELECT " CAMPAIGN_COLS " FROM tms_campaign WHERE name = $1", &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, name);
    rc = store_step(q, e);
    if (rc == STORE_ROW)
        campaign_row(q, c);
    store_done(q);
    if (rc == STORE_DONE)
        return px_error_set(e, PX_ENOTFOUND, "no campaign %s", name);
    return rc < 0 ? rc : PX_OK;
}

/* counts[wave-1][state] of a campaign (wave 0 = all waves when only_wave is 0). */
static int campaign_counts(store *st, const char *name, int64_t only_wave,
                           int64_t counts[PX_TMS_WAVES_MAX][TMS_T_COUNT_], px_error *e)
{
    store_stmt *q;
    int rc;
    memset(counts, 0, sizeof(int64_t) * PX_TMS_WAVES_MAX * TMS_T_COUNT_);
    rc = only_wave > 0
             ? store_prepare(st,
                             "SELECT wave, state, COUNT(*) FROM tms_target WHERE campaign = $1 "
                             "AND wave = $2 GROUP BY wave, state",
                             &q, e)
             : store_prepare(st,
                             "SELECT wave, state, COUNT(*) FROM tms_target WHERE campaign = $1 "
                             "AND wave <> $2 GROUP BY wave, state",
                             &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, name);
    store_bind_int64(q, 2, only_wave);
    while ((rc = store_step(q, e)) == STORE_ROW) {
        int64_t w = store_col_int64(q, 0);
        tms_tstate s;
        if (w >= 1 && w <= PX_TMS_WAVES_MAX && tms_tstate_parse(store_col_text(q, 1), &s) == PX_OK)
            counts[w - 1][s] += store_col_int64(q, 2);
    }
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

int tms_campaign_get(store *st, const char *name, tms_campaign_info *out, px_error *e)
{
    int rc = campaign_read(st, name, out, e);
    if (rc == PX_OK)
        rc = campaign_counts(st, name, 0, out->counts, e);
    return rc;
}

int tms_campaign_list(store *st, int (*fn)(void *ud, const tms_campaign_info *c), void *ud,
                      px_error *e)
{
    store_stmt *q;
    tms_campaign_info *c = malloc(sizeof *c);
    int rc, stop = 0;
    if (c == NULL)
        return px_error_set(e, PX_ENOMEM, "out of memory");
    if ((rc = store_prepare(st,
                            "SELECT " CAMPAIGN_COLS " FROM tms_campaign ORDER BY created_ms, "
                            "name LIMIT 1000",
                            &q, e)) == PX_OK) {
        while ((rc = store_step(q, e)) == STORE_ROW) {
            campaign_row(q, c);
            if ((stop = fn(ud, c)) != 0)
                break;
        }
        store_done(q);
    }
    free(c);
    return stop ? stop : rc < 0 ? rc : PX_OK;
}

/* ---- state changes ---------------------------------------------------------------------- */

typedef struct move_ctx {
    const char *name;
    const char *from1, *from2, *to;
    const char *verb;
} move_ctx;

static int move_txn(store *st, void *ud, px_error *e)
{
    move_ctx *m = ud;
    tms_campaign_info *c = malloc(sizeof *c);
    store_stmt *q;
    int rc = c != NULL ? campaign_read(st, m->name, c, e)
                       : px_error_set(e, PX_ENOMEM, "out of memory");
    if (rc == PX_OK && strcmp(c->state, m->from1) != 0 &&
        (m->from2 == NULL || strcmp(c->state, m->from2) != 0))
        rc = px_error_set(e, PX_ESTATE, "campaign %s is %s: only a %s%s%s campaign can %s", m->name,
                          c->state, m->from1, m->from2 ? " or " : "", m->from2 ? m->from2 : "",
                          m->verb);
    free(c);
    if (rc == PX_OK && (rc = store_prepare(st,
                                           "UPDATE tms_campaign SET state = $2, reason = '', "
                                           "updated_ms = $3 WHERE name = $1",
                                           &q, e)) == PX_OK) {
        store_bind_text(q, 1, m->name);
        store_bind_text(q, 2, m->to);
        store_bind_int64(q, 3, px_now_ms());
        rc = store_step(q, e);
        store_done(q);
        rc = rc < 0 ? rc : PX_OK;
    }
    return rc;
}

int tms_campaign_pause(store *st, const char *name, px_error *e)
{
    move_ctx m = {name, "running", NULL, "paused", "pause"};
    int rc = tms_txn(st, move_txn, &m, e);
    if (rc == PX_OK)
        px_info(TMS_MOD, "campaign %s paused", name);
    return rc;
}

int tms_campaign_resume(store *st, const char *name, px_error *e)
{
    move_ctx m = {name, "paused", "halted", "running", "resume"};
    int rc = tms_txn(st, move_txn, &m, e);
    if (rc == PX_OK)
        px_info(TMS_MOD, "campaign %s resumed", name);
    return rc;
}

/* ---- start: choosing the terminals ------------------------------------------------------- */

typedef struct cand {
    char serial[PX_TMS_SERIAL_MAX];
    uint8_t order[8]; /* SHA-256(campaign "/" serial): a fair, repeatable shuffle */
} cand;

typedef struct start_ctx {
    const char *name;
    tms_campaign_info c;
    tuf_target pkg;
    cand *v;
    size_t n, cap;
    int64_t total;
} start_ctx;

static int has_str(char (*list)[PX_TMS_NAME_MAX], size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return 1;
    return 0;
}

static int cand_push(start_ctx *s, const char *serial, px_error *e)
{
    uint8_t md[SHA256_DIGEST_LENGTH];
    char buf[PX_TMS_NAME_MAX + PX_TMS_SERIAL_MAX + 2];
    if (s->n >= PX_TMS_CAMPAIGN_TARGETS_MAX)
        return px_error_set(e, PX_ELIMIT, "campaign %s: more than %d terminals", s->name,
                            PX_TMS_CAMPAIGN_TARGETS_MAX);
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 1024;
        cand *nv = realloc(s->v, ncap * sizeof *nv);
        if (nv == NULL)
            return px_error_set(e, PX_ENOMEM, "out of memory");
        s->v = nv;
        s->cap = ncap;
    }
    px_strlcpy(s->v[s->n].serial, serial, PX_TMS_SERIAL_MAX);
    snprintf(buf, sizeof buf, "%s/%s", s->name, serial);
    SHA256((const uint8_t *)buf, strlen(buf), md);
    memcpy(s->v[s->n].order, md, 8);
    s->n++;
    return PX_OK;
}

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    int c = memcmp(x->order, y->order, 8);
    return c != 0 ? c : strcmp(x->serial, y->serial);
}

/* Is serial in one of the campaign's groups? */
static int in_groups(store *st, const tms_campaign_spec *sp, const char *serial, int *yes,
                     px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st, "SELECT grp FROM tms_terminal_group WHERE serial = $1", &q, e);
    *yes = 0;
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, serial);
    while ((rc = store_step(q, e)) == STORE_ROW)
        if (has_str((char(*)[PX_TMS_NAME_MAX])sp->groups, sp->ngroups, store_col_text(q, 0)))
            *yes = 1;
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

/* Rows (serial, model) of one source query: keep those whose model the package and the
 * campaign allow and, when check_groups, that belong to one of the campaign's groups. */
static int choose_from(store *st, start_ctx *s, store_stmt *q, int check_groups, px_error *e)
{
    const tms_campaign_spec *sp = &s->c.spec;
    int rc;
    while ((rc = store_step(q, e)) == STORE_ROW) {
        const char *serial = store_col_text(q, 0), *model = store_col_text(q, 1);
        int yes = 1;
        if (!tuf_target_fits_model(&s->pkg, model) ||
            (sp->nmodels > 0 && !has_str((char(*)[PX_TMS_NAME_MAX])sp->models, sp->nmodels, model)))
            continue;
        /* a nested statement: the store hands out an independent one */
        if (check_groups && (rc = in_groups(st, sp, serial, &yes, e)) != PX_OK)
            return rc;
        if (yes && (rc = cand_push(s, serial, e)) != PX_OK)
            return rc;
    }
    return rc < 0 ? rc : PX_OK;
}

/* Every terminal the selector names (a list, else groups, else all) whose model the
 * campaign and the package allow, each once. */
static int choose(store *st, start_ctx *s, px_error *e)
{
    const tms_campaign_spec *sp = &s->c.spec;
    store_stmt *q;
    size_t k = 0, nsrc = sp->nserials == 0 && sp->ngroups > 0 ? sp->ngroups : 1;
    int rc = PX_OK;
    for (size_t g = 0; g < nsrc && rc == PX_OK; g++) {
        if (sp->nserials > 0)
            rc = store_prepare(st,
                               "SELECT t.serial, t.model FROM tms_campaign_serial c JOIN "
                               "tms_terminal t ON t.serial = c.serial WHERE c.campaign = $1",
                               &q, e);
        else if (sp->ngroups > 0)
            rc = store_prepare(st,
                               "SELECT t.serial, t.model FROM tms_terminal_group g JOIN "
                               "tms_terminal t ON t.serial = g.serial WHERE g.grp = $1",
                               &q, e);
        else
            rc = store_prepare(st, "SELECT serial, model FROM tms_terminal WHERE serial <> $1", &q,
                               e);
        if (rc != PX_OK)
            break;
        store_bind_text(q, 1, sp->nserials == 0 && sp->ngroups > 0 ? sp->groups[g] : s->name);
        rc = choose_from(st, s, q, sp->nserials > 0 && sp->ngroups > 0, e);
        store_done(q);
    }
    if (rc != PX_OK)
        return rc;
    qsort(s->v, s->n, sizeof *s->v, cand_cmp);
    for (size_t i = 0; i < s->n; i++) /* a terminal in two chosen groups comes twice */
        if (k == 0 || strcmp(s->v[k - 1].serial, s->v[i].serial) != 0)
            s->v[k++] = s->v[i];
    s->n = k;
    return PX_OK;
}

static int start_txn(store *st, void *ud, px_error *e)
{
    start_ctx *s = ud;
    tms_package p;
    store_stmt *q;
    int64_t now = px_now_ms();
    size_t i = 0;
    int rc = campaign_read(st, s->name, &s->c, e);
    s->n = 0;
    if (rc == PX_OK && strcmp(s->c.state, "draft") != 0)
        rc = px_error_set(e, PX_ESTATE, "campaign %s is %s: only a draft can start", s->name,
                          s->c.state);
    if (rc == PX_OK &&
        (rc = tms_package_get(st, s->c.spec.pkg_name, s->c.spec.pkg_version, &p, e)) == PX_OK)
        s->pkg = p.t;
    if (rc == PX_OK)
        rc = choose(st, s, e);
    if (rc != PX_OK)
        return rc;
    for (size_t w = 0; w < s->c.spec.nwaves && rc == PX_OK; w++) {
        size_t upto = (size_t)((s->n * (uint64_t)s->c.spec.waves[w] + 99) / 100);
        for (; i < upto && i < s->n; i++) {
            if ((rc = store_prepare(st,
                                    "INSERT INTO tms_target (campaign, serial, wave, state, "
                                    "updated_ms) VALUES ($1, $2, $3, 'scheduled', $4)",
                                    &q, e)) != PX_OK)
                break;
            store_bind_text(q, 1, s->name);
            store_bind_text(q, 2, s->v[i].serial);
            store_bind_int64(q, 3, (int64_t)w + 1);
            store_bind_int64(q, 4, now);
            rc = store_step(q, e);
            store_done(q);
            if (rc < 0)
                break;
            rc = PX_OK;
        }
    }
    if (rc == PX_OK && (rc = store_prepare(st,
                                           "UPDATE tms_campaign SET state = 'running', total = "
                                           "$2, updated_ms = $3 WHERE name = $1",
                                           &q, e)) == PX_OK) {
        store_bind_text(q, 1, s->name);
        store_bind_int64(q, 2, (int64_t)s->n);
        store_bind_int64(q, 3, now);
        rc = store_step(q, e);
        store_done(q);
        rc = rc < 0 ? rc : PX_OK;
    }
    if (rc == PX_OK &&
        (rc = store_prepare(st, "DELETE FROM tms_campaign_serial WHERE campaign = $1", &q, e)) ==
            PX_OK) {
        store_bind_text(q, 1, s->name);
        rc = store_step(q, e);
        store_done(q);
        rc = rc < 0 ? rc : PX_OK;
    }
    s->total = (int64_t)s->n;
    return rc;
}

int tms_campaign_start(store *st, const char *name, int64_t *total, px_error *e)
{
    start_ctx *s = calloc(1, sizeof *s);
    int rc;
    if (s == NULL)
        return px_error_set(e, PX_ENOMEM, "out of memory");
    s->name = name;
    rc = tms_txn(st, start_txn, s, e);
    if (rc == PX_OK) {
        px_info(TMS_MOD, "campaign %s started: %lld terminals in %zu waves", name,
                (long long)s->total, s->c.spec.nwaves);
        if (total != NULL)
            *total = s->total;
    }
    free(s->v);
    free(s);
    return rc;
}

/* ---- the tick ---------------------------------------------------------------------------- */

typedef struct tick_ctx {
    const char *name;
    int64_t now;
    const tms_flagger *f;
    int64_t changed;
    tms_campaign_info c;
} tick_ctx;

/* Run sql with $1 = name, $2 = a and, when it has a $3, b or text (when not NULL). Exactly the
 * parameters the SQL names are bound: PostgreSQL must know each one's type. */
static int exec_campaign(store *st, const char *sql, const char *name, int64_t a, int64_t b,
                         const char *text, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st, sql, &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, name);
    store_bind_int64(q, 2, a);
    if (text != NULL)
        store_bind_text(q, 3, text);
    else if (strstr(sql, "$3") != NULL)
        store_bind_int64(q, 3, b);
    rc = store_step(q, e);
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

static int count_active(store *st, const char *name, int64_t *n, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st,
                           "SELECT COUNT(*) FROM tms_target WHERE campaign = $1 AND state IN "
                           "('scheduled', 'pending', 'offered', 'downloaded', 'deferred')",
                           &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, name);
    rc = store_step(q, e);
    *n = rc == STORE_ROW ? store_col_int64(q, 0) : 0;
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

/* Halt, complete or open the next wave(s) of one running campaign. */
static int tick_waves(store *st, tick_ctx *t, px_error *e)
{
    tms_campaign_info *c = &t->c;
    int64_t counts[PX_TMS_WAVES_MAX][TMS_T_COUNT_];
    int rc;
    for (size_t guard = 0; guard <= PX_TMS_WAVES_MAX; guard++) {
        int64_t w = c->current_wave, size = 0, fail, finished, active;
        if (w >= 1) {
            if ((rc = campaign_counts(st, t->name, w, counts, e)) != PX_OK)
                return rc;
            for (int s = 0; s < TMS_T_COUNT_; s++)
                size += counts[w - 1][s];
            fail = counts[w - 1][TMS_T_FAILED] + counts[w - 1][TMS_T_ROLLED_BACK];
            finished = fail + counts[w - 1][TMS_T_INSTALLED] + counts[w - 1][TMS_T_SKIPPED];
            if (size > 0 && fail * 100 > c->spec.max_failure_pct * size) {
                char why[PX_TMS_REASON_MAX];
                snprintf(why, sizeof why,
                         "wave %lld: %lld of %lld terminals failed, over the "
                         "%lld %% threshold",
                         (long long)w, (long long)fail, (long long)size,
                         (long long)c->spec.max_failure_pct);
                px_warn(TMS_MOD, "campaign %s halted: %s", t->name, why);
                t->changed++;
                return exec_campaign(st,
                                     "UPDATE tms_campaign SET state = 'halted', updated_ms = $2, "
                                     "reason = $3 WHERE name = $1",
                                     t->name, t->now, 0, why, e);
            }
            if ((size_t)w >= c->spec.nwaves) {
                if ((rc = count_active(st, t->name, &active, e)) != PX_OK || active > 0)
                    return rc;
                px_info(TMS_MOD, "campaign %s completed", t->name);
                t->changed++;
                return exec_campaign(st,
                                     "UPDATE tms_campaign SET state = 'completed', updated_ms "
                                     "= $2 WHERE name = $1",
                                     t->name, t->now, 0, NULL, e);
            }
            if (finished * 100 < c->spec.advance_pct * size ||
                t->now < c->wave_opened_ms + c->spec.wave_min_ms)
                return PX_OK;
        }
        if (!in_window(c->spec.window_start_min, c->spec.window_end_min, t->now))
            return PX_OK;
        if ((rc = exec_campaign(st,
                                "UPDATE tms_target SET state = 'pending', updated_ms = $3 WHERE "
                                "campaign = $1 AND wave = $2 AND state = 'scheduled'",
                                t->name, w + 1, t->now, NULL, e)) != PX_OK ||
            (rc = exec_campaign(st,
                                "UPDATE tms_campaign SET current_wave = $2, wave_opened_ms = "
                                "$3, updated_ms = $3 WHERE name = $1",
                                t->name, w + 1, t->now, NULL, e)) != PX_OK)
            return rc;
        px_info(TMS_MOD, "campaign %s: wave %lld of %zu opened", t->name, (long long)w + 1,
                c->spec.nwaves);
        c->current_wave = w + 1;
        c->wave_opened_ms = t->now;
        t->changed++;
    }
    return PX_OK;
}

/* Ask the switch to flag (on) released terminals, or to clear (off) the flags of a campaign
 * that stopped, PX_TMS_FLAG_BATCH at a time. */
static int tick_flags(store *st, tick_ctx *t, int on, px_error *e)
{
    typedef struct {
        char serial[PX_TMS_SERIAL_MAX], tid[PX_TMS_TID_MAX];
    } row;
    row *rows = malloc(PX_TMS_FLAG_BATCH * sizeof *rows);
    store_stmt *q;
    size_t n = 0;
    const char *sql = on ? "SELECT t.serial, m.tid FROM tms_target t JOIN tms_terminal m "
                           "ON m.serial = t.serial WHERE t.campaign = $1 AND t.flagged = 0 "
                           "AND t.state = 'pending' LIMIT 1000"
                         : "SELECT t.serial, m.tid FROM tms_target t JOIN tms_terminal m "
                           "ON m.serial = t.serial WHERE t.campaign = $1 AND t.flagged = 1 "
                           "AND t.state = 'pending' LIMIT 1000";
    int rc = rows == NULL ? px_error_set(e, PX_ENOMEM, "out of memory")
                          : store_prepare(st, sql, &q, e);
    if (rc == PX_OK) {
        store_bind_text(q, 1, t->name);
        while (n < PX_TMS_FLAG_BATCH && (rc = store_step(q, e)) == STORE_ROW) {
            px_strlcpy(rows[n].serial, store_col_text(q, 0), PX_TMS_SERIAL_MAX);
            px_strlcpy(rows[n].tid, store_col_text(q, 1), PX_TMS_TID_MAX);
            n++;
        }
        store_done(q);
        rc = rc < 0 ? rc : PX_OK;
    }
    for (size_t i = 0; rc == PX_OK && i < n; i++) {
        int64_t state = on ? 2 : 0;
        px_error fe = {0};
        if (rows[i].tid[0] != 0 && t->f != NULL && t->f->set != NULL) {
            int frc = t->f->set(t->f->ud, st, rows[i].tid, on, &fe);
            if (frc == PX_OK)
                state = on ? 1 : 0;
            else if (frc != PX_ENOTFOUND) {
                rc = px_error_set(e, frc, "flag of terminal %s: %s", rows[i].serial,
                                  px_error_text(&fe));
                break;
            }
        }
        if ((rc = store_prepare(st,
                                "UPDATE tms_target SET flagged = $3 WHERE campaign = $1 AND "
                                "serial = $2",
                                &q, e)) != PX_OK)
            break;
        store_bind_text(q, 1, t->name);
        store_bind_text(q, 2, rows[i].serial);
        store_bind_int64(q, 3, state);
        rc = store_step(q, e);
        store_done(q);
        rc = rc < 0 ? rc : PX_OK;
        t->changed++;
    }
    free(rows);
    return rc;
}

static int tick_txn(store *st, void *ud, px_error *e)
{
    tick_ctx *t = ud;
    int rc = campaign_read(st, t->name, &t->c, e);
    if (rc != PX_OK)
        return rc;
    if (strcmp(t->c.state, "running") == 0) {
        if (t->now < t->c.spec.start_ms)
            return PX_OK;
        if ((rc = tick_waves(st, t, e)) != PX_OK)
            return rc;
        /* re-read: the waves step may have halted or completed it */
        if ((rc = campaign_read(st, t->name, &t->c, e)) != PX_OK)
            return rc;
    }
    return tick_flags(st, t, strcmp(t->c.state, "running") == 0, e);
}

int tms_campaign_tick(store *st, int64_t now, const tms_flagger *f, int64_t *changed, px_error *e)
{
    char(*names)[PX_TMS_NAME_MAX] = malloc(1000 * sizeof *names);
    size_t n = 0;
    store_stmt *q;
    int64_t total = 0;
    int rc = names == NULL ? px_error_set(e, PX_ENOMEM, "out of memory")
                           : store_prepare(st,
                                           "SELECT name FROM tms_campaign WHERE state IN "
                                           "('running', 'paused', 'halted') ORDER BY created_ms "
                                           "LIMIT 1000",
                                           &q, e);
    if (rc == PX_OK) {
        while (n < 1000 && (rc = store_step(q, e)) == STORE_ROW)
            px_strlcpy(names[n++], store_col_text(q, 0), PX_TMS_NAME_MAX);
        store_done(q);
        rc = rc < 0 ? rc : PX_OK;
    }
    for (size_t i = 0; rc == PX_OK && i < n; i++) {
        tick_ctx *t = calloc(1, sizeof *t);
        if (t == NULL) {
            rc = px_error_set(e, PX_ENOMEM, "out of memory");
            break;
        }
        t->name = names[i];
        t->now = now;
        t->f = f;
        rc = tms_txn(st, tick_txn, t, e);
        total += t->changed;
        free(t);
    }
    free(names);
    if (changed != NULL)
        *changed = total;
    return rc;
}
