/*
 * service.c: the `tms` service (docs/tms.md): its [tms] section, the worker threads that
 * serve terminals (one event loop, HTTP server on the shared port (SO_REUSEPORT) and store
 * connection each), the tick on the daemon's loop that moves campaigns, signs timestamp
 * records and sweeps sessions, and the tie to the transaction platform: the switch flags a
 * terminal when a campaign reaches it (seed 000 claims 3 and 8, through host/switch/switch.h).
 */
#include "host/switch/switch.h"
#include "host/tms/tms_int.h"

#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <errno.h>
#include <stddef.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const px_config_field tms_fields[] = {
    PX_CFG_INT_(tms_config, workers, "workers", 1, PX_TMS_WORKERS_MAX, "2"),
    PX_CFG_STR(tms_config, auth.master_label, "master_key", "tms.master"),
    PX_CFG_INT_(tms_config, auth.challenge_ttl_ms, "challenge_ttl_ms", 1000, 600000, "60000"),
    PX_CFG_INT_(tms_config, auth.session_ttl_ms, "session_ttl_ms", 10000, 86400000, "900000"),
    PX_CFG_INT_(tms_config, auth.min_interval_ms, "auth_min_interval_ms", 0, 3600000, "1000"),
    PX_CFG_STR(tms_config, timestamp_key, "timestamp_key", "var/tms/timestamp.key"),
    PX_CFG_INT_(tms_config, timestamp_ttl_ms, "timestamp_ttl_ms", 60000, 30LL * 86400000,
                "86400000"),
    PX_CFG_STR(tms_config, schedule, "schedule", "1d@02:00~1h"),
    PX_CFG_INT_(tms_config, max_downloads, "max_downloads", 1, PX_TMS_DOWNLOADERS_MAX, "1000"),
    PX_CFG_INT_(tms_config, download_rate, "download_rate", 0, 10LL * 1000 * 1000 * 1000, "0"),
    PX_CFG_INT_(tms_config, slice_bytes, "slice_bytes", 0, PX_TMS_PACKAGE_MAX, "4194304"),
    PX_CFG_INT_(tms_config, download_idle_ms, "download_idle_ms", 1000, 3600000, "30000"),
    PX_CFG_STR(tms_config, cache_dir, "cache_dir", "var/tms/cache"),
    PX_CFG_INT_(tms_config, tick_ms, "tick_ms", 10, 60000, "1000"),
    PX_CFG_INT_(tms_config, contact_flush_ms, "contact_flush_ms", 1, 10000, "200"),
    PX_CFG_INT_(tms_config, registry_cache, "registry_cache", 0, 10000000, "2000000"),
};

/* ---- the switch's flag ------------------------------------------------------------------ */

static int flag_switch(void *ud, store *st, const char *tid, int on, px_error *e)
{
    (void)ud;
    return switch_terminal_set_update_waiting(st, tid, on, e);
}

/* ---- configuration ---------------------------------------------------------------------- */

/* The node's [hsm] settings (defaults without one), then [tms] hsm_lmk_file and
 * hsm_audit_file: the HSM px_daemon_hsm lends. That handle belongs to the loop thread, so
 * the worker threads use a session of it (hsm_session_open), under a lock. */
static int hsm_settings(px_config *c, hsm_config *h, px_error *e)
{
    static const struct {
        const char *key;
        size_t off, size;
    } keys[] = {{"hsm_lmk_file", offsetof(hsm_config, lmk_file), sizeof h->lmk_file},
                {"hsm_audit_file", offsetof(hsm_config, audit_file), sizeof h->audit_file}};
    int rc = PX_OK;
    hsm_config_default(h);
    if (px_config_has_section(c, "hsm"))
        rc = hsm_config_bind(c, "hsm", h, e);
    for (size_t i = 0; rc == PX_OK && i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = px_config_get(c, "tms", keys[i].key);
        if (v != NULL && px_strlcpy((char *)h + keys[i].off, v, keys[i].size) != PX_OK)
            rc = px_error_set(e, PX_ECONFIG, "%s:%d: [tms] %s: too long", px_config_path(c),
                              px_config_line(c, "tms", keys[i].key), keys[i].key);
    }
    px_strlcpy(h->caller, "tms", sizeof h->caller);
    h->secret_fn = NULL;
    return rc;
}

static int tms_configure(px_daemon *d, void **state, px_error *e)
{
    tms_svc *s = calloc(1, sizeof *s);
    tms_config *c;
    int rc;
    if (s == NULL)
        return px_error_set(e, PX_ENOMEM, "tms: out of memory");
    c = &s->cfg;
    net_listener_config_defaults(&c->listen, "tms");
    px_strlcpy(c->listen.listen, "127.0.0.1:7000", sizeof c->listen.listen);
    rc = net_listener_config_bind(d->cfg, "tms", NULL, &c->listen, e);
    if (rc == PX_OK)
        rc = px_config_bind(d->cfg, "tms", tms_fields, sizeof tms_fields / sizeof tms_fields[0], c,
                            e);
    if (rc == PX_OK && tms_schedule_parse(c->schedule, &s->default_schedule, e) != PX_OK)
        rc = px_error_prefix(e, "%s:%d: [tms] schedule: ", px_config_path(d->cfg),
                             px_config_line(d->cfg, "tms", "schedule"));
    if (rc == PX_OK && !hsm_label_is_valid(c->auth.master_label))
        rc = px_error_set(e, PX_ECONFIG, "%s:%d: [tms] master_key: not a key label",
                          px_config_path(d->cfg), px_config_line(d->cfg, "tms", "master_key"));
    if (rc == PX_OK)
        rc = hsm_settings(d->cfg, &c->hsm, e);
    if (rc != PX_OK) {
        free(s);
        return rc;
    }
    c->listen.reuse_port = c->workers > 1;
    s->d = d;
    *state = s;
    return PX_OK;
}

static void register_metrics(tms_metrics *m)
{
    static const char dl[] = "Download requests refused";
    m->checkins = net_metric_counter("possum_tms_checkins_total", "Terminal check-ins answered",
                                     NULL);
    m->offers = net_metric_counter("possum_tms_offers_total", "Updates offered in check-ins", NULL);
    m->auth_ok = net_metric_counter("possum_tms_authentications_total",
                                    "Mutual authentications (seed 000 claim 4)", "result=\"ok\"");
    m->auth_fail = net_metric_counter("possum_tms_authentications_total",
                                      "Mutual authentications (seed 000 claim 4)",
                                      "result=\"failed\"");
    m->downloads = net_metric_counter("possum_tms_download_requests_total",
                                      "Package download requests served", NULL);
    m->download_bytes = net_metric_counter("possum_tms_download_bytes_total", "Package bytes sent",
                                           NULL);
    m->dl_refused_limit = net_metric_counter("possum_tms_download_refused_total", dl,
                                             "reason=\"concurrency\"");
    m->dl_refused_rate = net_metric_counter("possum_tms_download_refused_total", dl,
                                            "reason=\"rate\"");
    m->dl_refused_perm = net_metric_counter("possum_tms_download_refused_total", dl,
                                            "reason=\"not_offered\"");
    m->reports = net_metric_counter("possum_tms_reports_total", "Reports recorded", NULL);
    m->security = net_metric_counter("possum_tms_security_events_total",
                                     "Requests without a valid session, failed SACs", NULL);
}

/* ---- workers ------------------------------------------------------------------------------ */

void tms_worker_contact(tms_worker *w, const tms_checkin_req *r, int64_t now)
{
    tms_contact *c;
    size_t n;
    pthread_mutex_lock(&w->qlock);
    if (w->n == w->qmax) {
        pthread_mutex_unlock(&w->qlock);
        net_metric_add(w->svc->writer.dropped, 1); /* informational: the next check-in brings it */
        return;
    }
    c = &w->q[w->n];
    n = ++w->n;
    px_strlcpy(c->serial, r->serial, sizeof c->serial);
    c->at_ms = now;
    px_strlcpy(c->installed_json, r->installed_json, sizeof c->installed_json);
    pthread_mutex_unlock(&w->qlock);
    if (n == PX_TMS_WRITE_BATCH)
        pthread_cond_signal(&w->svc->writer.wake); /* a lost wake-up only waits flush_ms */
}

static void write_batch(tms_writer *wr, const tms_contact *v, size_t n)
{
    for (size_t i = 0; i < n; i += PX_TMS_WRITE_BATCH) {
        size_t k = n - i < PX_TMS_WRITE_BATCH ? n - i : PX_TMS_WRITE_BATCH;
        px_error e = {0};
        if (tms_contacts_write(wr->st, v + i, k, &e) != PX_OK)
            px_warn(TMS_MOD, "%zu check-ins not recorded: %s", k, px_error_text(&e));
        else
            net_metric_add(wr->written, (int64_t)k);
    }
}

/* Take what each worker queued (every flush_ms, or sooner when one has a batch) and write it. */
static void *writer_main(void *arg)
{
    tms_svc *s = arg;
    tms_writer *wr = &s->writer;
    for (;;) {
        struct timespec ts;
        size_t total = 0;
        int stop;
        pthread_mutex_lock(&wr->lock);
        if (!wr->stop) {
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += wr->flush_ms / 1000;
            ts.tv_nsec += (long)(wr->flush_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&wr->wake, &wr->lock, &ts);
        }
        stop = wr->stop;
        pthread_mutex_unlock(&wr->lock);
        for (size_t i = 0; i < s->nworkers; i++) {
            tms_worker *w = &s->workers[i];
            tms_contact *v;
            size_t n;
            if (w->q == NULL)
                continue;
            pthread_mutex_lock(&w->qlock);
            v = w->q;
            n = w->n;
            w->q = w->spare;
            w->spare = v;
            w->n = 0;
            pthread_mutex_unlock(&w->qlock);
            write_batch(wr, v, n); /* the worker fills the other buffer meanwhile */
            total += n;
        }
        if (stop && total == 0)
            return NULL;
    }
}

static int writer_start(tms_svc *s, px_error *e)
{
    tms_writer *wr = &s->writer;
    int rc;
    pthread_mutex_init(&wr->lock, NULL);
    pthread_cond_init(&wr->wake, NULL);
    wr->flush_ms = s->cfg.contact_flush_ms;
    wr->written = net_metric_counter("possum_tms_contacts_written_total",
                                     "Check-ins recorded in the registry", NULL);
    wr->dropped = net_metric_counter("possum_tms_contacts_dropped_total",
                                     "Check-ins not recorded: the writer's queue was full", NULL);
    if ((rc = store_open(&s->d->store_cfg, &wr->st, e)) != PX_OK)
        return rc;
    if (pthread_create(&wr->thread, NULL, writer_main, s) != 0)
        return px_error_set(e, PX_ENOMEM, "tms: thread: %s", strerror(errno));
    wr->started = 1;
    return PX_OK;
}

/* After the workers stopped: write what is left, then end. */
static void writer_free(tms_writer *wr)
{
    if (wr->started) {
        pthread_mutex_lock(&wr->lock);
        wr->stop = 1;
        pthread_cond_signal(&wr->wake);
        pthread_mutex_unlock(&wr->lock);
        pthread_join(wr->thread, NULL);
        wr->started = 0;
    }
    store_close(wr->st);
    if (wr->flush_ms > 0) {
        pthread_mutex_destroy(&wr->lock);
        pthread_cond_destroy(&wr->wake);
    }
    memset(wr, 0, sizeof *wr);
}

static void *worker_main(void *arg)
{
    tms_worker *w = arg;
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static void worker_stop(void *arg)
{
    tms_worker *w = arg;
    event_base_loopbreak(w->base);
}

static int worker_start(tms_svc *s, tms_worker *w, int idx, int port, px_error *e)
{
    net_listener_config lc = s->cfg.listen;
    char host[256];
    int ignored, rc;
    w->svc = s;
    w->idx = idx;
    w->qmax = PX_TMS_CONTACT_QUEUE_MAX / (size_t)s->cfg.workers;
    pthread_mutex_init(&w->qlock, NULL);
    if ((w->q = calloc(w->qmax, sizeof *w->q)) == NULL ||
        (w->spare = calloc(w->qmax, sizeof *w->spare)) == NULL)
        return px_error_set(e, PX_ENOMEM, "tms: out of memory");
    if (port > 0) { /* the others join the first one's port */
        if (px_parse_hostport(lc.listen, host, sizeof host, &ignored) != PX_OK)
            host[0] = 0;
        snprintf(lc.listen, sizeof lc.listen, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    }
    if ((rc = net_base_new(&w->base, e)) != PX_OK ||
        (rc = store_open(&s->d->store_cfg, &w->st, e)) != PX_OK ||
        (rc = net_http_server_new(w->base, &lc, &w->http, e)) != PX_OK ||
        (rc = tms_api_routes(w, e)) != PX_OK)
        return rc;
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
        return px_error_set(e, PX_ENOMEM, "tms: thread: %s", strerror(errno));
    w->started = 1;
    return PX_OK;
}

static void worker_stop_loop(tms_worker *w)
{
    if (w->started) {
        if (net_post(w->base, worker_stop, w) == PX_OK)
            pthread_join(w->thread, NULL);
        w->started = 0;
    }
}

static void worker_free(tms_worker *w)
{
    worker_stop_loop(w);
    net_http_server_free(w->http);
    store_close(w->st);
    net_base_free(w->base);
    free(w->q);
    free(w->spare);
    if (w->qmax > 0)
        pthread_mutex_destroy(&w->qlock);
    memset(w, 0, sizeof *w);
}

/* ---- the tick ------------------------------------------------------------------------------ */

/* Rebuild the set of terminals with something running for them when what it depends on
 * changed here (changed > 0) or on another node (the stamp). */
static void refresh_active(tms_svc *s, int64_t changed)
{
    char stamp[128] = "";
    tms_active *fresh = NULL;
    px_error e = {0};
    if (tms_active_stamp(s->st, stamp, &e) != PX_OK ||
        (changed == 0 && atomic_load(&s->active) != NULL && strcmp(stamp, s->active_stamp) == 0))
        return;
    if (tms_active_build(s->st, &fresh, &e) != PX_OK) {
        px_warn(TMS_MOD, "terminals with updates: %s", px_error_text(&e));
        return;
    }
    tms_active_free(s->active_old); /* published a tick ago at least: nobody reads it now */
    s->active_old = atomic_exchange_explicit(&s->active, fresh, memory_order_acq_rel);
    px_strlcpy(s->active_stamp, stamp, sizeof s->active_stamp);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    tms_svc *s = arg;
    int64_t now = px_now_ms(), changed = 0;
    px_error e = {0};
    (void)fd;
    (void)what;
    if (tms_campaign_tick(s->st, now, &s->flagger, &changed, &e) != PX_OK)
        px_warn(TMS_MOD, "campaign tick: %s", px_error_text(&e));
    if (s->has_ts_key) {
        memset(&e, 0, sizeof e);
        if (tms_timestamp_refresh(s->st, s->ts_priv, s->cfg.timestamp_ttl_ms, now, NULL, &e) !=
                PX_OK &&
            e.code != PX_ENOTFOUND)
            px_warn(TMS_MOD, "timestamp: %s", px_error_text(&e));
    }
    refresh_active(s, changed);
    memset(&e, 0, sizeof e);
    if (s->reg != NULL && tms_regcache_refresh(s->reg, s->st, &e) != PX_OK)
        px_warn(TMS_MOD, "registry copy: %s", px_error_text(&e));
    memset(&e, 0, sizeof e);
    if (tms_session_sweep(s->st, now, &e) != PX_OK)
        px_warn(TMS_MOD, "session sweep: %s", px_error_text(&e));
    tms_limiter_sweep(&s->lim, now);
}

static int mkdirs(const char *path, px_error *e)
{
    char p[PX_PATH_MAX];
    px_strlcpy(p, path, sizeof p);
    for (char *c = p + 1; *c; c++)
        if (*c == '/') {
            *c = 0;
            if (mkdir(p, 0700) != 0 && errno != EEXIST)
                return px_error_set(e, PX_EIO, "%s: %s", p, strerror(errno));
            *c = '/';
        }
    if (mkdir(p, 0700) != 0 && errno != EEXIST)
        return px_error_set(e, PX_EIO, "%s: %s", p, strerror(errno));
    return PX_OK;
}

static int load_timestamp_key(tms_svc *s, px_error *e)
{
    px_error ke = {0};
    int rc = tuf_private_key_read(s->cfg.timestamp_key, s->ts_priv, &ke);
    if (rc == PX_ENOTFOUND) {
        px_warn(TMS_MOD,
                "no timestamp key %s: no timestamp record is signed, so terminals "
                "cannot update (possum tms keygen --out %s)",
                s->cfg.timestamp_key, s->cfg.timestamp_key);
        return PX_OK;
    }
    if (rc != PX_OK)
        return px_error_set(e, rc, "tms: timestamp_key: %s", px_error_text(&ke));
    s->has_ts_key = 1;
    return PX_OK;
}

static int tms_start(void *state, px_daemon *d, px_error *e)
{
    tms_svc *s = state;
    struct timeval tv = {(time_t)(s->cfg.tick_ms / 1000),
                         (suseconds_t)(s->cfg.tick_ms % 1000 * 1000)};
    int rc, port = 0;
    pthread_mutex_init(&s->hsm_lock, NULL);
    tms_limiter_init(&s->lim, s->cfg.max_downloads, s->cfg.download_rate, s->cfg.download_idle_ms);
    s->inited = 1;
    s->flagger.set = flag_switch;
    register_metrics(&s->m);
    if ((rc = mkdirs(s->cfg.cache_dir, e)) != PX_OK ||
        (rc = store_open(&d->store_cfg, &s->st, e)) != PX_OK)
        return px_error_prefix(e, "tms: ");
    /* the HSM reads named keys through a connection of its own: workers use it under
     * hsm_lock while the loop thread uses s->st (one connection, one thread at a time) */
    if ((rc = store_open(&d->store_cfg, &s->hst, e)) != PX_OK)
        return px_error_prefix(e, "tms: ");
    if ((rc = px_daemon_hsm(d, "tms", &s->cfg.hsm, &s->core, e)) != PX_OK ||
        (rc = hsm_session_open(s->core, s->hst, "tms", &s->h, e)) != PX_OK)
        return px_error_prefix(e, "tms: hsm: ");
    if ((rc = load_timestamp_key(s, e)) != PX_OK || (rc = writer_start(s, e)) != PX_OK)
        return rc;
    if (s->cfg.registry_cache > 0) {
        int64_t t0 = px_mono_ms();
        if ((rc = tms_regcache_new((size_t)s->cfg.registry_cache, &s->reg, e)) != PX_OK ||
            (rc = tms_regcache_refresh(s->reg, s->st, e)) != PX_OK)
            return px_error_prefix(e, "tms: registry copy: ");
        px_info(TMS_MOD, "registry copy: %zu terminals in %lld ms", tms_regcache_count(s->reg),
                (long long)(px_mono_ms() - t0));
    }
    for (size_t i = 0; i < (size_t)s->cfg.workers; i++) {
        s->nworkers = i + 1; /* freed by tms_free even when it starts only in part */
        if ((rc = worker_start(s, &s->workers[i], (int)i, port, e)) != PX_OK)
            return px_error_prefix(e, "tms: worker %zu: ", i);
        if (i == 0) {
            port = net_http_server_port(s->workers[0].http);
            px_daemon_announce(d, "tms", s->cfg.listen.listen, port);
        }
    }
    if (d->http != NULL && (rc = tms_api_operator_routes(s, d->http, e)) != PX_OK)
        return px_error_prefix(e, "tms: ");
    if ((s->tick_ev = event_new(d->base, -1, EV_PERSIST, on_tick, s)) == NULL ||
        event_add(s->tick_ev, &tv) != 0)
        return px_error_set(e, PX_ENOMEM, "tms: timer");
    on_tick(-1, 0, s);
    px_info(TMS_MOD,
            "ready: %lld workers, master key %s, default schedule %s, at most %lld "
            "downloads (%lld bytes/s each)",
            (long long)s->cfg.workers, s->cfg.auth.master_label, s->cfg.schedule,
            (long long)s->cfg.max_downloads, (long long)s->cfg.download_rate);
    return PX_OK;
}

static void tms_drain(void *state)
{
    tms_svc *s = state;
    s->draining = 1;
}

static void tms_free(void *state)
{
    tms_svc *s = state;
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nworkers; i++)
        worker_stop_loop(&s->workers[i]);
    writer_free(&s->writer); /* writes what the stopped workers queued */
    for (size_t i = 0; i < s->nworkers; i++)
        worker_free(&s->workers[i]);
    tms_regcache_free(s->reg);
    if (s->tick_ev != NULL)
        event_free(s->tick_ev);
    hsm_close(s->h);
    px_daemon_hsm_release(s->d, s->core);
    store_close(s->hst);
    store_close(s->st);
    if (s->inited) {
        tms_limiter_free(&s->lim);
        pthread_mutex_destroy(&s->hsm_lock);
        tms_active_free(atomic_load(&s->active));
        tms_active_free(s->active_old);
    }
    OPENSSL_cleanse(s->ts_priv, sizeof s->ts_priv);
    free(s);
}

const px_service px_service_tms = {
    .name = "tms",
    .configure = tms_configure,
    .start = tms_start,
    .drain = tms_drain,
    .busy = NULL,
    .free = tms_free,
};
