/*
 * sw_provider.c: the link to the payment service provider (ISO 8583:1987 ASCII,
 * docs/switch-protocol.md section 2): requests in flight matched by our STAN (field 11),
 * each with a deadline; network management (sign-on at link up, echo); reversals 0420/0421
 * sent from the outbox until a 0430 comes; retrieval reference numbers taken in blocks from
 * the store so they are unique across nodes and restarts.
 */
#include "host/switch/sw_int.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SW_FLIGHT_BUCKETS 65536

enum { FL_TXN = 0, FL_REV = 1 };

struct sw_flight {
    sw_flight *hnext, *prev, *next;
    int kind;
    char stan[7];
    int64_t deadline_ms; /* monotonic */
    uint64_t conn;
    uint8_t *treq; /* the terminal's request (FL_TXN) */
    size_t treqlen;
    uint8_t *preq; /* our packed provider request */
    size_t preqlen;
    char rkey[SW_RKEY_MAX];
};

typedef struct sw_pstate {
    sw_flight *buckets[SW_FLIGHT_BUCKETS];
    sw_flight *head, *tail;   /* in deadline order: every flight of a kind has one timeout */
    sw_flight *rhead, *rtail; /* reversals, same */
    size_t count;
    int64_t last_outbox_ms, last_echo_ms, last_sweep_ms;
    unsigned net_stan;
} sw_pstate;

static size_t stan_bucket(const char *stan)
{
    size_t v = 0;
    for (const char *p = stan; *p; p++)
        v = v * 10 + (size_t)(*p - '0');
    return v % SW_FLIGHT_BUCKETS;
}

static void flight_free(sw_flight *f)
{
    if (f == NULL)
        return;
    free(f->treq);
    if (f->preq) {
        crypto_cleanse(f->preq, f->preqlen);
        free(f->preq);
    }
    free(f);
}

static void flight_unlink(switch_svc *s, sw_flight *f)
{
    sw_pstate *p = s->prov;
    sw_flight **pp = &p->buckets[stan_bucket(f->stan)];
    sw_flight **head = f->kind == FL_TXN ? &p->head : &p->rhead;
    sw_flight **tail = f->kind == FL_TXN ? &p->tail : &p->rtail;
    while (*pp && *pp != f)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = f->hnext;
    if (f->prev)
        f->prev->next = f->next;
    else
        *head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    else
        *tail = f->prev;
    p->count--;
    net_metric_set(s->m.in_flight, (int64_t)p->count);
}

static void flight_link(switch_svc *s, sw_flight *f)
{
    sw_pstate *p = s->prov;
    size_t b = stan_bucket(f->stan);
    sw_flight **head = f->kind == FL_TXN ? &p->head : &p->rhead;
    sw_flight **tail = f->kind == FL_TXN ? &p->tail : &p->rtail;
    f->hnext = p->buckets[b];
    p->buckets[b] = f;
    f->prev = *tail;
    f->next = NULL;
    if (*tail)
        (*tail)->next = f;
    else
        *head = f;
    *tail = f;
    p->count++;
    net_metric_set(s->m.in_flight, (int64_t)p->count);
}

static sw_flight *flight_find(switch_svc *s, const char *stan, int kind)
{
    for (sw_flight *f = s->prov->buckets[stan_bucket(stan)]; f; f = f->hnext)
        if (f->kind == kind && strcmp(f->stan, stan) == 0)
            return f;
    return NULL;
}

int sw_provider_is_up(switch_svc *s)
{
    return s->link != NULL && net_link_is_up(s->link);
}

size_t sw_provider_in_flight(switch_svc *s)
{
    return s->prov ? s->prov->count : 0;
}

/* ---- RRN ---- */

static void rrn_block_done(switch_svc *s, sw_job *j)
{
    s->rrn_fetching = 0;
    if (j->status == PX_OK) {
        s->rrn_next2 = j->out.rrn_next;
        s->rrn_end2 = j->out.rrn_next + j->count;
    }
}

int sw_next_rrn(switch_svc *s, char rrn[13], char stan[7])
{
    for (int tries = 0; tries < 4; tries++) {
        if (s->rrn_next >= s->rrn_end && s->rrn_end2 > s->rrn_next2) {
            s->rrn_next = s->rrn_next2;
            s->rrn_end = s->rrn_end2;
            s->rrn_next2 = s->rrn_end2 = 0;
        }
        if (s->rrn_next >= s->rrn_end)
            return PX_ELIMIT;
        if (!s->rrn_fetching && s->rrn_end2 <= s->rrn_next2 &&
            s->rrn_end - s->rrn_next < PX_SWITCH_RRN_BLOCK / 2) {
            sw_job *j = sw_job_new(SW_J_RRN_BLOCK, rrn_block_done);
            if (j != NULL) {
                j->count = PX_SWITCH_RRN_BLOCK;
                s->rrn_fetching = 1;
                s->pending_jobs++;
                sw_writer_submit(s->writer, j);
            }
        }
        int64_t v = s->rrn_next++ % 1000000000000LL;
        if (v % 1000000 == 0) /* STAN 000000 is not used */
            continue;
        snprintf(rrn, 13, "%012lld", (long long)v);
        memcpy(stan, rrn + 6, 7);
        return PX_OK;
    }
    return PX_ELIMIT;
}

/* ---- sealing provider messages at rest (the DEK: AES, or TDES for an older one; CBC,
 * random IV; layout IV || E(len16 || message || zero fill)) ---- */

static size_t dek_block(switch_svc *s)
{
    hsm_key_attrs a;
    hsm_key_get_attrs(s->dek, &a);
    return a.algorithm == 'A' ? 16 : 8;
}

int sw_seal(switch_svc *s, const uint8_t *in, size_t n, uint8_t **out, size_t *outlen, px_error *e)
{
    size_t bs, body;
    uint8_t *buf, *res;
    int rc;
    *out = NULL;
    if (s->hsm == NULL || s->dek == NULL)
        return px_error_set(e, PX_ESTATE, "no data key (HSM unavailable)");
    if (n > PX_ISO_MSG_MAX)
        return px_error_set(e, PX_ETOOBIG, "message too long to seal");
    bs = dek_block(s);
    body = (2 + n + bs - 1) / bs * bs;
    buf = calloc(1, body);
    res = malloc(bs + body);
    if (buf == NULL || res == NULL) {
        free(buf);
        free(res);
        return px_error_set(e, PX_ENOMEM, "out of memory");
    }
    buf[0] = (uint8_t)(n >> 8);
    buf[1] = (uint8_t)n;
    memcpy(buf + 2, in, n);
    rc = crypto_random(res, bs, e);
    if (rc == PX_OK)
        rc = hsm_data_encrypt(s->hsm, s->dek, CRYPTO_CBC, res, buf, body, res + bs, e);
    crypto_cleanse(buf, body);
    free(buf);
    if (rc != PX_OK) {
        free(res);
        return rc;
    }
    *out = res;
    *outlen = bs + body;
    return PX_OK;
}

int sw_unseal(switch_svc *s, const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *outlen,
              px_error *e)
{
    uint8_t buf[PX_ISO_MSG_MAX + 32];
    size_t len, bs;
    int rc;
    if (s->hsm == NULL || s->dek == NULL)
        return px_error_set(e, PX_ESTATE, "no data key (HSM unavailable)");
    bs = dek_block(s);
    if (n < 2 * bs || (n - bs) % bs != 0 || n - bs > sizeof buf)
        return px_error_set(e, PX_EFORMAT, "sealed message: bad length %zu", n);
    rc = hsm_data_decrypt(s->hsm, s->dek, CRYPTO_CBC, in, in + bs, n - bs, buf, e);
    if (rc != PX_OK)
        return rc;
    len = (size_t)buf[0] << 8 | buf[1];
    if (len + 2 > n - bs || len > cap) {
        crypto_cleanse(buf, sizeof buf);
        return px_error_set(e, PX_EFORMAT, "sealed message: bad inner length");
    }
    memcpy(out, buf + 2, len);
    crypto_cleanse(buf, sizeof buf);
    *outlen = len;
    return PX_OK;
}

/* ---- sending ---- */

static int link_send_msg(switch_svc *s, const iso8583_msg *m, uint8_t **copy, size_t *copylen,
                         px_error *e)
{
    uint8_t buf[PX_ISO_MSG_MAX];
    size_t n;
    int rc = iso8583_pack(&iso8583_1987_ascii, m, buf, sizeof buf, &n, e);
    if (rc != PX_OK)
        return rc;
    if (s->link == NULL)
        return px_error_set(e, PX_ESTATE, "no provider link configured");
    rc = net_link_send(s->link, buf, n);
    if (rc != PX_OK)
        return px_error_set(e, rc, "provider link: %s",
                            rc == PX_ESTATE   ? "down"
                            : rc == PX_ELIMIT ? "output full"
                                              : "send failed");
    if (copy != NULL) {
        *copy = malloc(n);
        if (*copy != NULL) {
            memcpy(*copy, buf, n);
            *copylen = n;
        }
    }
    crypto_cleanse(buf, n);
    return PX_OK;
}

int sw_provider_send(switch_svc *s, const sw_job *claim, px_error *e)
{
    sw_flight *f;
    int rc;
    if ((int64_t)s->prov->count >= s->cfg.max_in_flight)
        return px_error_set(e, PX_ELIMIT, "too many requests at the provider");
    if (s->link == NULL)
        return px_error_set(e, PX_ESTATE, "no provider link configured");
    f = calloc(1, sizeof *f);
    if (f == NULL)
        return px_error_set(e, PX_ENOMEM, "out of memory");
    f->kind = FL_TXN;
    px_strlcpy(f->stan, claim->prov_stan, sizeof f->stan);
    px_strlcpy(f->rkey, claim->rkey, sizeof f->rkey);
    f->conn = claim->conn;
    f->treq = malloc(claim->treqlen);
    f->preq = malloc(claim->preqlen);
    if (f->treq == NULL || f->preq == NULL) {
        flight_free(f);
        return px_error_set(e, PX_ENOMEM, "out of memory");
    }
    memcpy(f->treq, claim->treq, claim->treqlen);
    f->treqlen = claim->treqlen;
    memcpy(f->preq, claim->preq, claim->preqlen);
    f->preqlen = claim->preqlen;
    rc = net_link_send(s->link, f->preq, f->preqlen);
    if (rc != PX_OK) {
        flight_free(f);
        return px_error_set(e, rc, "provider link: %s",
                            rc == PX_ESTATE   ? "down"
                            : rc == PX_ELIMIT ? "output full"
                                              : "send failed");
    }
    f->deadline_ms = px_mono_ms() + s->cfg.provider_timeout_ms;
    flight_link(s, f);
    net_metric_add(s->m.prov_sent, 1);
    return PX_OK;
}

/* Field 90: original MTI n4, STAN n6, transmission time n10, acquirer n11, forwarding n11. */
static void original_data(switch_svc *s, const iso8583_msg *orig, char out[43])
{
    const uint8_t *p;
    size_t n;
    char stan[7] = "000000", tm[11] = "0000000000";
    if (iso8583_get(orig, 11, &p, &n) == PX_OK && n == 6)
        memcpy(stan, p, 7);
    if (iso8583_get(orig, 7, &p, &n) == PX_OK && n == 10)
        memcpy(tm, p, 11);
    snprintf(out, 43, "%.4s%s%s%011lld%011d", orig->mti, stan, tm,
             (long long)strtoll(s->cfg.acquirer_id, NULL, 10), 0);
}

void sw_provider_send_reversal(switch_svc *s, const char *rkey, const iso8583_msg *orig,
                               const char *reason, int repeat)
{
    static const int copied[] = {2, 3, 4, 7, 11, 12, 13, 22, 25, 32, 37, 41, 42, 48, 49, 103};
    iso8583_msg m;
    const uint8_t *p;
    size_t n;
    char f90[43];
    px_error e = {0};
    sw_flight *f;
    if (iso8583_get(orig, 11, &p, &n) != PX_OK || n != 6)
        return;
    if (flight_find(s, (const char *)p, FL_REV) != NULL)
        return; /* one is on its way */
    iso8583_msg_init(&m, &iso8583_1987_ascii);
    (void)iso8583_set_mti(&m, repeat ? "0421" : "0420", NULL);
    for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++)
        if (iso8583_get(orig, copied[i], &p, &n) == PX_OK)
            (void)iso8583_set(&m, copied[i], (const char *)p, NULL);
    (void)iso8583_set(&m, 39, reason && reason[0] ? reason : "98", NULL);
    original_data(s, orig, f90);
    (void)iso8583_set(&m, 90, f90, NULL);
    f = calloc(1, sizeof *f);
    if (f == NULL) {
        iso8583_msg_cleanse(&m);
        return;
    }
    f->kind = FL_REV;
    (void)iso8583_get(orig, 11, &p, &n);
    memcpy(f->stan, p, 7);
    px_strlcpy(f->rkey, rkey, sizeof f->rkey);
    if (link_send_msg(s, &m, NULL, NULL, &e) != PX_OK) {
        px_debug("switch", "reversal of %s not sent now: %s", rkey, px_error_text(&e));
        flight_free(f);
        iso8583_msg_cleanse(&m);
        return;
    }
    iso8583_msg_cleanse(&m);
    f->deadline_ms = px_mono_ms() + s->cfg.reversal_retry_ms;
    flight_link(s, f);
    net_metric_add(s->m.rev_sent, 1);
    px_info("switch", "reversal %s sent to the provider for %s (reason %s)",
            repeat ? "0421" : "0420", rkey, reason && reason[0] ? reason : "98");
}

static void send_netmgmt(switch_svc *s, const char *code)
{
    iso8583_msg m;
    char tm[16], stan[8];
    px_error e = {0};
    s->prov->net_stan = s->prov->net_stan % 999999 + 1;
    snprintf(stan, sizeof stan, "%06u", s->prov->net_stan);
    px_time_format_utc(px_now_ms(), "%m%d%H%M%S", tm, sizeof tm);
    iso8583_msg_init(&m, &iso8583_1987_ascii);
    (void)iso8583_set_mti(&m, "0800", NULL);
    (void)iso8583_set(&m, 7, tm, NULL);
    (void)iso8583_set(&m, 11, stan, NULL);
    (void)iso8583_set(&m, 70, code, NULL);
    if (link_send_msg(s, &m, NULL, NULL, &e) != PX_OK)
        px_debug("switch", "provider 0800 (%s) not sent: %s", code, px_error_text(&e));
}

/* ---- receiving ---- */

static void outbox_done(switch_svc *s, sw_job *j)
{
    (void)s;
    if (j->status == PX_OK)
        net_metric_add(s->m.rev_done, 1);
}

static void on_link_frame(net_link *l, const uint8_t *data, size_t len, void *user)
{
    switch_svc *s = user;
    iso8583_msg m;
    const uint8_t *p;
    size_t n;
    px_error e = {0};
    char stan[7];
    sw_flight *f;
    (void)l;
    if (iso8583_unpack(&iso8583_1987_ascii, data, len, &m, &e) != PX_OK) {
        px_warn("switch", "provider sent a message that does not parse: %s", px_error_text(&e));
        return;
    }
    if (iso8583_get(&m, 11, &p, &n) != PX_OK || n != 6) {
        px_warn("switch", "provider %s without a STAN: ignored", m.mti);
        iso8583_msg_cleanse(&m);
        return;
    }
    memcpy(stan, p, 7);
    if (strcmp(m.mti, "0810") == 0) {
        const uint8_t *rc = NULL;
        (void)iso8583_get(&m, 39, &rc, &n);
        px_debug("switch", "provider 0810: %s", rc ? (const char *)rc : "-");
    } else if (strcmp(m.mti, "0210") == 0 && (f = flight_find(s, stan, FL_TXN)) != NULL) {
        flight_unlink(s, f);
        sw_flow_provider_answer(s, f->conn, f->treq, f->treqlen, f->rkey, &m, f->preq, f->preqlen);
        flight_free(f);
    } else if (strcmp(m.mti, "0430") == 0) {
        sw_job *j;
        f = flight_find(s, stan, FL_REV);
        if (f != NULL) {
            j = sw_job_new(SW_J_OUTBOX_DONE, outbox_done);
            if (j != NULL) {
                px_strlcpy(j->rkey, f->rkey, sizeof j->rkey);
                s->pending_jobs++;
                sw_writer_submit(s->writer, j);
            }
            px_info("switch", "provider confirmed the reversal of %s", f->rkey);
            flight_unlink(s, f);
            flight_free(f);
        }
    } else {
        net_metric_add(s->m.prov_late, 1);
        px_info("switch", "provider %s STAN %s matches nothing in flight (late): ignored", m.mti,
                stan);
    }
    iso8583_msg_cleanse(&m);
}

static void on_link_state(net_link *l, net_link_state st, const char *why, void *user)
{
    switch_svc *s = user;
    (void)l;
    net_metric_set(s->m.prov_up, st == NET_LINK_UP);
    if (st == NET_LINK_UP) {
        px_info("switch", "provider link up");
        send_netmgmt(s, "001");
        s->prov->last_outbox_ms = 0; /* resend owed reversals now */
    } else if (st == NET_LINK_DOWN) {
        px_warn("switch", "provider link down: %s", why ? why : "");
    }
}

/* ---- timers ---- */

static void expire(switch_svc *s, int64_t now)
{
    while (s->prov->head != NULL && s->prov->head->deadline_ms <= now) {
        sw_flight *f = s->prov->head;
        flight_unlink(s, f);
        net_metric_add(s->m.prov_timeout, 1);
        sw_flow_provider_answer(s, f->conn, f->treq, f->treqlen, f->rkey, NULL, f->preq,
                                f->preqlen);
        flight_free(f);
    }
    while (s->prov->rhead != NULL && s->prov->rhead->deadline_ms <= now) {
        sw_flight *f = s->prov->rhead;
        flight_unlink(s, f); /* no 0430 yet: the outbox sends it again */
        flight_free(f);
    }
}

static void touch_done(switch_svc *s, sw_job *j)
{
    (void)s;
    (void)j;
}

void sw_provider_outbox_tick(switch_svc *s)
{
    store_stmt *q;
    px_error e = {0};
    int64_t now = px_now_ms();
    int rc, n = 0;
    if (!sw_provider_is_up(s) || s->hsm == NULL || s->dek == NULL)
        return;
    rc = store_prepare(s->d->st,
                       "SELECT o.rkey, o.reason, o.attempts, r.prov_blob FROM switch_outbox o "
                       "JOIN switch_request r ON r.rkey = o.rkey WHERE o.next_ms <= $1 ORDER BY "
                       "o.next_ms LIMIT 200",
                       &q, &e);
    if (rc != PX_OK) {
        px_warn("switch", "outbox: %s", px_error_text(&e));
        return;
    }
    store_bind_int64(q, 1, now);
    while ((rc = store_step(q, &e)) == STORE_ROW && n < PX_SWITCH_OUTBOX_BATCH) {
        size_t bn = 0, mlen = 0;
        const void *blob = store_col_blob(q, 3, &bn);
        uint8_t msg[PX_ISO_MSG_MAX];
        iso8583_msg orig;
        const char *rkey = store_col_text(q, 0);
        sw_job *j;
        n++;
        if (blob == NULL || rkey == NULL ||
            sw_unseal(s, blob, bn, msg, sizeof msg, &mlen, &e) != PX_OK ||
            iso8583_unpack(&iso8583_1987_ascii, msg, mlen, &orig, &e) != PX_OK) {
            px_errorlog("switch", "outbox %s: cannot rebuild the reversal: %s", rkey ? rkey : "?",
                        px_error_text(&e));
            continue;
        }
        crypto_cleanse(msg, sizeof msg);
        sw_provider_send_reversal(s, rkey, &orig, store_col_text(q, 1), store_col_int64(q, 2) > 0);
        iso8583_msg_cleanse(&orig);
        j = sw_job_new(SW_J_OUTBOX_TOUCH, touch_done);
        if (j != NULL) {
            px_strlcpy(j->rkey, rkey, sizeof j->rkey);
            j->cutoff_ms = now + s->cfg.reversal_retry_ms;
            s->pending_jobs++;
            sw_writer_submit(s->writer, j);
        }
    }
    if (rc < 0)
        px_warn("switch", "outbox: %s", px_error_text(&e));
    store_done(q);
}

static void recover_done(switch_svc *s, sw_job *j)
{
    (void)s;
    if (j->status == PX_OK && j->out.recovered > 0)
        px_warn("switch",
                "recovered %lld requests left pending (no answer was sent; the "
                "provider gets reversals)",
                (long long)j->out.recovered);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    switch_svc *s = arg;
    int64_t mono = px_mono_ms(), now = px_now_ms();
    sw_pstate *p = s->prov;
    (void)fd;
    (void)what;
    expire(s, mono);
    if (mono - p->last_outbox_ms >= 1000) {
        p->last_outbox_ms = mono;
        sw_provider_outbox_tick(s);
    }
    if (s->cfg.echo_interval_ms > 0 && sw_provider_is_up(s) &&
        mono - p->last_echo_ms >= s->cfg.echo_interval_ms) {
        p->last_echo_ms = mono;
        send_netmgmt(s, "301");
    }
    if (mono - p->last_sweep_ms >= s->cfg.orphan_after_ms / 2 && !s->draining) {
        sw_job *j = sw_job_new(SW_J_RECOVER, recover_done);
        p->last_sweep_ms = mono;
        if (j != NULL) {
            j->node[0] = 0; /* any node's, once old enough */
            j->cutoff_ms = now - s->cfg.orphan_after_ms;
            s->pending_jobs++;
            sw_writer_submit(s->writer, j);
        }
    }
}

int sw_provider_start(switch_svc *s, px_error *e)
{
    struct timeval tv = {0, 20000};
    s->prov = calloc(1, sizeof *s->prov);
    if (s->prov == NULL)
        return px_error_set(e, PX_ENOMEM, "switch: out of memory");
    s->prov->last_outbox_ms = px_mono_ms();
    s->prov->last_echo_ms = px_mono_ms();
    s->prov->last_sweep_ms = px_mono_ms();
    if (s->cfg.has_provider) {
        net_link_callbacks cb = {.on_frame = on_link_frame, .on_state = on_link_state, .user = s};
        int rc = net_link_new(s->d->base, &s->cfg.provider, &cb, &s->link, e);
        if (rc != PX_OK)
            return px_error_prefix(e, "switch: provider link: ");
    }
    s->tick = event_new(s->d->base, -1, EV_PERSIST, on_tick, s);
    if (s->tick == NULL || event_add(s->tick, &tv) != 0)
        return px_error_set(e, PX_ENOMEM, "switch: cannot start the timer");
    return PX_OK;
}

void sw_provider_stop(switch_svc *s)
{
    if (s->tick) {
        event_free(s->tick);
        s->tick = NULL;
    }
    net_link_free(s->link);
    s->link = NULL;
    if (s->prov) {
        while (s->prov->head) {
            sw_flight *f = s->prov->head;
            flight_unlink(s, f);
            flight_free(f);
        }
        while (s->prov->rhead) {
            sw_flight *f = s->prov->rhead;
            flight_unlink(s, f);
            flight_free(f);
        }
        free(s->prov);
        s->prov = NULL;
    }
}
