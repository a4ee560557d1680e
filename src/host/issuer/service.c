/*
 * service.c: the `issuer` service of possumd. Listens for the switch's ISO 8583:1987 ASCII
 * messages over 2-byte framed TCP (TLS per the listener keys) and answers each through
 * issuer_handle, after the configured latency; for tests it can decline (decline_every_n,
 * decline_rate) or never answer (drop_every_n) a share of the 0200 requests, which makes
 * the switch time out and reverse (docs/issuer.md, "Fault injection").
 */
#include "host/issuer/issuer_int.h"
#include "host/service.h"
#include "lib/log.h"
#include "lib/time.h"
#include "net/metrics.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

/* An answer held back by the latency setting. */
typedef struct issuer_pending {
    struct issuer_pending *prev, *next;
    struct issuer_svc *svc;
    struct event *ev;
    uint64_t conn;
    size_t len;
    uint8_t data[];
} issuer_pending;

typedef struct issuer_svc {
    issuer_config cfg;
    px_daemon *d;
    hsm *hsm; /* the node's (px_daemon_hsm), lent to the core */
    issuer_core *core;
    net_frame_server *srv;
    issuer_pending *pending;
    size_t npending;
    uint64_t n0200; /* 0200 requests received: the every-n counters' clock */
    uint32_t rng;   /* xorshift32 for jitter and decline_rate */
    int draining;
    struct event *day_end; /* writes the day's clearing file just after 00:00 UTC */
    net_metric *m_rx, *m_tx, *m_dup, *m_dropped, *m_injected, *m_ignored;
} issuer_svc;

static uint32_t next_rand(issuer_svc *s)
{
    uint32_t x = s->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return s->rng = x;
}

static void register_metrics(issuer_svc *s)
{
    s->m_rx = net_metric_counter("possum_issuer_messages_received_total",
                                 "ISO 8583 messages received from the switch", NULL);
    s->m_tx = net_metric_counter("possum_issuer_messages_sent_total",
                                 "ISO 8583 answers sent to the switch", NULL);
    s->m_dup = net_metric_counter("possum_issuer_duplicates_total",
                                  "Retransmissions answered with the stored answer", NULL);
    s->m_dropped = net_metric_counter("possum_issuer_faults_total",
                                      "Answers withheld or declines made on purpose (tests)",
                                      "fault=\"drop\"");
    s->m_injected = net_metric_counter("possum_issuer_faults_total",
                                       "Answers withheld or declines made on purpose (tests)",
                                       "fault=\"decline\"");
    s->m_ignored = net_metric_counter("possum_issuer_ignored_total",
                                      "Messages ignored while draining", NULL);
}

static int issuer_configure(px_daemon *d, void **state, px_error *e)
{
    issuer_svc *s = calloc(1, sizeof *s);
    int rc;
    if (s == NULL)
        return px_error_set(e, PX_ENOMEM, "issuer: out of memory");
    rc = issuer_config_bind(d->cfg, &s->cfg, e);
    if (rc != PX_OK) {
        free(s);
        return rc;
    }
    s->d = d;
    s->rng = (uint32_t)px_mono_ns() | 1u;
    register_metrics(s);
    *state = s;
    return PX_OK;
}

static void pending_unlink(issuer_svc *s, issuer_pending *p)
{
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        s->pending = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    s->npending--;
    event_free(p->ev);
    free(p);
}

static void send_now(issuer_svc *s, uint64_t conn, const uint8_t *data, size_t len)
{
    int rc = net_frame_server_send(s->srv, conn, data, len);
    if (rc == PX_OK)
        net_metric_add(s->m_tx, 1);
    else
        px_warn("issuer", "conn %llu: answer not sent (%s)", (unsigned long long)conn,
                px_strerror(rc));
}

static void on_latency_timer(evutil_socket_t fd, short what, void *arg)
{
    issuer_pending *p = arg;
    issuer_svc *s = p->svc;
    (void)fd;
    (void)what;
    send_now(s, p->conn, p->data, p->len);
    pending_unlink(s, p);
}

/* Send now, or after latency_ms + 0..latency_jitter_ms. */
static void send_later(issuer_svc *s, uint64_t conn, const uint8_t *data, size_t len)
{
    int64_t delay = s->cfg.latency_ms;
    issuer_pending *p;
    if (s->cfg.latency_jitter_ms > 0)
        delay += (int64_t)(next_rand(s) % (uint32_t)(s->cfg.latency_jitter_ms + 1));
    if (delay == 0 || s->npending >= PX_ISSUER_PENDING_MAX ||
        (p = malloc(sizeof *p + len)) == NULL) {
        send_now(s, conn, data, len);
        return;
    }
    p->svc = s;
    p->conn = conn;
    p->len = len;
    memcpy(p->data, data, len);
    p->ev = evtimer_new(s->d->base, on_latency_timer, p);
    struct timeval tv = {(time_t)(delay / 1000), (suseconds_t)(delay % 1000) * 1000};
    if (p->ev == NULL || evtimer_add(p->ev, &tv) != 0) {
        if (p->ev != NULL)
            event_free(p->ev);
        free(p);
        send_now(s, conn, data, len);
        return;
    }
    p->prev = NULL;
    p->next = s->pending;
    if (s->pending != NULL)
        s->pending->prev = p;
    s->pending = p;
    s->npending++;
}

/* The fault decisions for one request: decline injected, answer dropped. */
static void decide_faults(issuer_svc *s, const iso8583_msg *req, int *decline, int *drop)
{
    uint64_t n;
    *decline = *drop = 0;
    if (!req->mti_valid || strcmp(req->mti, "0200") != 0)
        return;
    n = ++s->n0200;
    *decline = (s->cfg.decline_every_n > 0 && n % (uint64_t)s->cfg.decline_every_n == 0) ||
               (s->cfg.decline_rate > 0 && next_rand(s) % 100u < (uint32_t)s->cfg.decline_rate);
    *drop = s->cfg.drop_every_n > 0 && n % (uint64_t)s->cfg.drop_every_n == 0;
}

static void on_frame(net_frame_server *srv, uint64_t conn, const uint8_t *data, size_t len,
                     void *user)
{
    issuer_svc *s = user;
    iso8583_msg req;
    issuer_reply *out = malloc(sizeof *out);
    px_error why = {0};
    int rc, decline, drop;
    (void)srv;
    net_metric_add(s->m_rx, 1);
    if (out == NULL || s->draining) {
        net_metric_add(s->m_ignored, out != NULL);
        free(out);
        return;
    }
    rc = iso8583_unpack(&iso8583_1987_ascii, data, len, &req, &why);
    decide_faults(s, &req, &decline, &drop);
    issuer_handle(s->core, data, len, &req, rc, &why, decline, out);
    iso8583_msg_cleanse(&req);
    net_metric_add(s->m_dup, out->duplicate);
    net_metric_add(s->m_injected, decline && !out->duplicate);
    if (out->close)
        net_frame_server_close_conn(s->srv, conn);
    else if (out->len > 0 && drop) {
        net_metric_add(s->m_dropped, 1);
        px_info("issuer", "conn %llu: answer dropped on purpose (drop_every_n = %lld)",
                (unsigned long long)conn, (long long)s->cfg.drop_every_n);
    } else if (out->len > 0)
        send_later(s, conn, out->data, out->len);
    free(out);
}

#define DAY_MS 86400000LL

/* Arm the day-end timer for one second past the next midnight UTC. */
static void day_end_arm(issuer_svc *s)
{
    int64_t now = px_now_ms(), wait = (now / DAY_MS + 1) * DAY_MS + 1000 - now;
    struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000};
    if (evtimer_add(s->day_end, &tv) != 0)
        px_errorlog("issuer", "cannot arm the day-end timer: no automatic clearing file");
}

/* The business day that just ended goes to clearing_dir (docs/switch-protocol.md §3). */
static void on_day_end(evutil_socket_t fd, short what, void *arg)
{
    issuer_svc *s = arg;
    char day[11], path[PX_PATH_MAX + 64];
    size_t lines = 0;
    px_error e = {0};
    (void)fd;
    (void)what;
    px_time_format_utc(px_now_ms() - DAY_MS / 2, "%Y-%m-%d", day, sizeof day);
    if (issuer_clearing_write(s->d->st, day, s->cfg.clearing_dir, path, sizeof path, &lines, &e) ==
        PX_OK)
        px_info("issuer", "clearing file %s written: %zu entries", path, lines);
    else
        px_errorlog("issuer", "clearing file for %s: %s (run possum issuer clearing)", day,
                    px_error_text(&e));
    day_end_arm(s);
}

static int issuer_start(void *state, px_daemon *d, px_error *e)
{
    issuer_svc *s = state;
    net_frame_callbacks cb = {.on_frame = on_frame, .user = s};
    int rc = px_daemon_hsm(d, "issuer", &s->cfg.hsm, &s->hsm, e);
    if (rc != PX_OK)
        return px_error_prefix(e, "issuer: hsm: ");
    rc = issuer_core_open_hsm(&s->cfg, d->st, s->hsm, 1, &s->core, e);
    if (rc != PX_OK)
        return rc;
    rc = net_frame_server_new(d->base, &s->cfg.listen, &cb, &s->srv, e);
    if (rc != PX_OK)
        return px_error_prefix(e, "issuer: ");
    if (s->cfg.clearing_at_day_end) {
        if ((s->day_end = evtimer_new(d->base, on_day_end, s)) == NULL)
            return px_error_set(e, PX_ENOMEM, "issuer: out of memory");
        day_end_arm(s);
    }
    px_info("issuer",
            "institution %s; latency %lld+%lld ms; decline every %lld / %lld%%; "
            "drop every %lld",
            s->cfg.institution_id, (long long)s->cfg.latency_ms,
            (long long)s->cfg.latency_jitter_ms, (long long)s->cfg.decline_every_n,
            (long long)s->cfg.decline_rate, (long long)s->cfg.drop_every_n);
    return px_daemon_announce(d, "issuer", s->cfg.listen.listen, net_frame_server_port(s->srv));
}

static void issuer_drain(void *state)
{
    issuer_svc *s = state;
    s->draining = 1;
}

static size_t issuer_busy(void *state)
{
    issuer_svc *s = state;
    return s->npending;
}

static void issuer_free(void *state)
{
    issuer_svc *s = state;
    if (s == NULL)
        return;
    while (s->pending != NULL)
        pending_unlink(s, s->pending);
    if (s->day_end != NULL)
        event_free(s->day_end);
    net_frame_server_free(s->srv);
    issuer_core_close(s->core);
    px_daemon_hsm_release(s->d, s->hsm);
    free(s);
}

const px_service px_service_issuer = {
    .name = "issuer",
    .configure = issuer_configure,
    .start = issuer_start,
    .drain = issuer_drain,
    .busy = issuer_busy,
    .free = issuer_free,
};
