/*
 * outbox.c: the communication unit (24) of seed 002 ([0041], claim 5): every message to a
 * payer or payee is a row in phonepay_outbox, written in the same transaction as what it
 * reports, and delivered from the daemon's event loop by libevent's HTTP client (Kannel's
 * sendsms interface for SMS, a POST for the webhook). Nothing is lost across a restart: an
 * item stays pending until a delivery is recorded; a claimed item whose node died is taken
 * again when its lease runs out.
 */
#include "host/phonepay/phonepay_int.h"
#include "crypto/crypto.h"
#include "lib/hex.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"
#include "net/metrics.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const event_names[] = {"otp", "debit", "credit"};

int phonepay_notify(phonepay *pp, const char *key, phonepay_event ev, const char *mobile,
                    const char *text, int64_t now_ms, px_error *e)
{
    const char *channels[2];
    size_t nch = 0;
    if (pp->cfg.sms_url[0])
        channels[nch++] = "sms";
    if (pp->cfg.webhook_url[0])
        channels[nch++] = "webhook";
    if (nch == 0)
        px_warn(PHONEPAY_MOD, "notification %s: no channel configured (sms_url, webhook_url)", key);
    if (strlen(text) >= PX_PHONEPAY_SMS_MAX)
        return px_error_set(e, PX_ETOOBIG, "notification %s: text too long", key);
    for (size_t i = 0; i < nch; i++) {
        char id[128];
        store_stmt *s;
        int rc = store_prepare(pp->st,
                               "INSERT INTO phonepay_outbox (id, channel, event, recipient, "
                               "body, state, next_ms, created_ms) VALUES ($1, $2, $3, $4, $5, "
                               "'pending', $6, $6) ON CONFLICT DO NOTHING",
                               &s, e);
        if (rc != PX_OK)
            return rc;
        snprintf(id, sizeof id, "%s:%s", key, channels[i]);
        store_bind_text(s, 1, id);
        store_bind_text(s, 2, channels[i]);
        store_bind_text(s, 3, event_names[ev]);
        store_bind_text(s, 4, mobile);
        store_bind_text(s, 5, text);
        store_bind_int64(s, 6, now_ms);
        rc = store_step(s, e);
        store_done(s);
        if (rc < 0)
            return rc;
    }
    pp->kick = nch > 0;
    return PX_OK;
}

/* Append "&name=" and value, %-encoded. */
static int add_param(px_buf *b, const char *name, const char *value, int first)
{
    char *enc = evhttp_uriencode(value, -1, 0);
    int rc;
    if (enc == NULL)
        return PX_ENOMEM;
    rc = px_buf_printf(b, "%s%s=%s", first ? "" : "&", name, enc);
    free(enc);
    return rc;
}

int phonepay_sms_url(const phonepay_config *cfg, const char *password, const char *to,
                     const char *text, px_buf *out, px_error *e)
{
    int rc = px_buf_printf(out, "%s%c", cfg->sms_url, strchr(cfg->sms_url, '?') ? '&' : '?');
    if (rc == PX_OK)
        rc = add_param(out, "username", cfg->sms_username, 1);
    if (rc == PX_OK)
        rc = add_param(out, "password", password ? password : "", 0);
    if (rc == PX_OK && cfg->sms_from[0])
        rc = add_param(out, "from", cfg->sms_from, 0);
    if (rc == PX_OK)
        rc = add_param(out, "to", to, 0);
    if (rc == PX_OK)
        rc = add_param(out, "text", text, 0);
    /* UTF-8 in, UCS-2 on the air (coding 2): Chinese text needs it */
    if (rc == PX_OK)
        rc = px_buf_append_str(out, "&charset=UTF-8&coding=2");
    return rc == PX_OK ? PX_OK : px_error_set(e, rc, "sms: URL too long");
}

int phonepay_webhook_body(const char *id, const char *event, const char *to, const char *text,
                          int64_t created_ms, px_buf *out, px_error *e)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I}", "id", id, "event", event, "to", to, "text",
                          text, "created_ms", (json_int_t)created_ms);
    char *s;
    int rc;
    if (o == NULL)
        return px_error_set(e, PX_EINVAL, "webhook: body does not encode (bad UTF-8?)");
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s == NULL)
        return px_error_set(e, PX_ENOMEM, "webhook: out of memory");
    rc = px_buf_append_str(out, s);
    free(s);
    return rc == PX_OK ? PX_OK : px_error_set(e, rc, "webhook: body too long");
}

/* ---- the deliverer ---- */

typedef struct delivery {
    struct phonepay_outbox *ob;
    struct delivery *next_reap;
    struct evhttp_connection *conn;
    char id[128];
    char channel[8];
    char event[8];
    int64_t attempts;
    int done;
} delivery;

struct phonepay_outbox {
    phonepay *pp;
    struct event_base *base;
    struct event *timer;
    SSL_CTX *tls;
    delivery *inflight[PX_PHONEPAY_OUTBOX_BATCH];
    size_t ninflight;
    delivery *reap; /* finished: connection freed from the loop, not its callback */
    struct event *reaper;
    int draining;
    int64_t last_sweep_ms;
    net_metric *m_sent[2], *m_retry[2], *m_failed[2];
};

typedef struct due_item {
    char id[128], channel[8], event[8], recipient[16];
    char body[PX_PHONEPAY_SMS_MAX];
    int64_t attempts, next_ms, created_ms;
} due_item;

static int channel_index(const char *channel)
{
    return strcmp(channel, "sms") == 0 ? 0 : 1;
}

static int64_t backoff_ms(const phonepay_config *c, int64_t attempts)
{
    int64_t d = c->outbox_backoff_min_ms;
    uint8_t r[2] = {0, 0};
    for (int64_t i = 1; i < attempts && d < c->outbox_backoff_max_ms; i++)
        d *= 2;
    if (d > c->outbox_backoff_max_ms)
        d = c->outbox_backoff_max_ms;
    (void)crypto_random(r, sizeof r, NULL); /* jitter: up to a quarter more */
    return d + (d / 4) * (((int64_t)r[0] << 8 | r[1]) % 1000) / 1000;
}

/* Record one delivery's outcome. An OTP's text is wiped once it is final. */
static void record(phonepay_outbox *ob, const delivery *d, int ok, const char *why)
{
    const phonepay_config *c = &ob->pp->cfg;
    int final = ok || d->attempts >= c->outbox_attempts_max;
    int wipe = final && strcmp(d->event, "otp") == 0;
    int64_t now = px_now_ms();
    store_stmt *s;
    px_error e = {0};
    int rc = store_prepare(ob->pp->st,
                           "UPDATE phonepay_outbox SET state = $2, next_ms = $3, last_error = $4, "
                           "sent_ms = $5, body = CASE WHEN $6 = 1 THEN '' ELSE body END "
                           "WHERE id = $1 AND state = 'pending'",
                           &s, &e);
    if (rc == PX_OK) {
        store_bind_text(s, 1, d->id);
        store_bind_text(s, 2, ok ? "sent" : final ? "failed" : "pending");
        store_bind_int64(s, 3, ok || final ? now : now + backoff_ms(c, d->attempts));
        store_bind_text(s, 4, ok ? NULL : why);
        store_bind_int64(s, 5, ok ? now : 0);
        store_bind_int64(s, 6, wipe ? 1 : 0);
        rc = store_step(s, &e);
        store_done(s);
    }
    if (rc < 0)
        px_errorlog(PHONEPAY_MOD,
                    "outbox %s: cannot record the outcome: %s (it will be sent "
                    "again after its lease)",
                    d->id, px_error_text(&e));
    net_metric_add(ok      ? ob->m_sent[channel_index(d->channel)]
                   : final ? ob->m_failed[channel_index(d->channel)]
                           : ob->m_retry[channel_index(d->channel)],
                   1);
    if (ok)
        px_info(PHONEPAY_MOD, "outbox %s: delivered (attempt %lld)", d->id, (long long)d->attempts);
    else
        px_warn(PHONEPAY_MOD, "outbox %s: attempt %lld failed: %s%s", d->id, (long long)d->attempts,
                why, final ? " (giving up)" : "");
}

/* Take d out of the in-flight set; its connection is freed by the reaper (libevent still
 * uses it when our response callback returns). */
static void forget(phonepay_outbox *ob, delivery *d)
{
    for (size_t i = 0; i < ob->ninflight; i++) {
        if (ob->inflight[i] == d) {
            ob->inflight[i] = ob->inflight[--ob->ninflight];
            break;
        }
    }
    d->next_reap = ob->reap;
    ob->reap = d;
    if (ob->reaper != NULL)
        event_active(ob->reaper, EV_TIMEOUT, 0);
}

static void reap_all(phonepay_outbox *ob)
{
    while (ob->reap != NULL) {
        delivery *d = ob->reap;
        ob->reap = d->next_reap;
        if (d->conn != NULL)
            evhttp_connection_free(d->conn);
        free(d);
    }
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    reap_all(arg);
}

static void on_response(struct evhttp_request *req, void *arg)
{
    delivery *d = arg;
    phonepay_outbox *ob = d->ob;
    char why[128];
    int code = req != NULL ? evhttp_request_get_response_code(req) : 0;
    if (d->done)
        return;
    d->done = 1;
    if (code == 0)
        px_strlcpy(why, "no answer (connection refused, reset or timed out)", sizeof why);
    else
        snprintf(why, sizeof why, "HTTP %d", code);
    record(ob, d, code >= 200 && code < 300, why);
    forget(ob, d);
}

/* Connection to the URL's host and port (TLS for https, with notify_tls_ca). */
static int connect_to(phonepay_outbox *ob, const struct evhttp_uri *u, delivery *d, px_error *e)
{
    const char *scheme = evhttp_uri_get_scheme(u), *host = evhttp_uri_get_host(u);
    int https = scheme != NULL && strcmp(scheme, "https") == 0;
    int port = evhttp_uri_get_port(u);
    struct timeval tv;
    if (host == NULL || (scheme == NULL || (!https && strcmp(scheme, "http") != 0)))
        return px_error_set(e, PX_ECONFIG, "URL without host, or not http(s)");
    if (port < 0)
        port = https ? 443 : 80;
    if (https) {
        SSL *ssl;
        struct bufferevent *bev;
        int rc;
        if (ob->tls == NULL)
            return px_error_set(e, PX_ECONFIG, "https URL but no notify_tls_ca");
        if ((rc = net_tls_client_ssl(ob->tls, host, &ssl, e)) != PX_OK)
            return rc;
        bev = bufferevent_openssl_socket_new(ob->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (bev == NULL) {
            SSL_free(ssl);
            return px_error_set(e, PX_ENOMEM, "no TLS stream");
        }
        d->conn = evhttp_connection_base_bufferevent_new(ob->base, NULL, bev, host, (uint16_t)port);
    } else {
        d->conn = evhttp_connection_base_new(ob->base, NULL, host, (uint16_t)port);
    }
    if (d->conn == NULL)
        return px_error_set(e, PX_ENOMEM, "no HTTP connection");
    tv.tv_sec = (time_t)(ob->pp->cfg.notify_timeout_ms / 1000);
    tv.tv_usec = (suseconds_t)(ob->pp->cfg.notify_timeout_ms % 1000) * 1000;
    evhttp_connection_set_timeout_tv(d->conn, &tv);
    evhttp_connection_set_retries(d->conn, 0);
    return PX_OK;
}

/* "sha256=" + HMAC-SHA256(secret, body) in hex: lets the receiver check the sender. */
static void sign_webhook(struct evkeyvalq *h, const char *secret, const px_buf *body)
{
    unsigned char mac[32];
    unsigned int n = 0;
    char hex[2 * sizeof mac + 8];
    if (secret == NULL || secret[0] == 0)
        return;
    if (HMAC(EVP_sha256(), secret, (int)strlen(secret), body->data, body->len, mac, &n) == NULL)
        return;
    memcpy(hex, "sha256=", 7);
    px_hex_encode(mac, n, hex + 7);
    evhttp_add_header(h, "X-Possum-Signature", hex);
    OPENSSL_cleanse(mac, sizeof mac);
}

/* The request for one item: GET sendsms?... for SMS, POST JSON for the webhook. */
static int build_request(phonepay_outbox *ob, const due_item *it, px_buf *url, px_buf *body,
                         px_error *e)
{
    const phonepay_config *c = &ob->pp->cfg;
    if (strcmp(it->channel, "sms") == 0)
        return phonepay_sms_url(c, getenv(c->sms_password_env), it->recipient, it->body, url, e);
    if (px_buf_append_str(url, c->webhook_url) != PX_OK)
        return px_error_set(e, PX_ETOOBIG, "webhook URL too long");
    return phonepay_webhook_body(it->id, it->event, it->recipient, it->body, it->created_ms, body,
                                 e);
}

static int start_delivery(phonepay_outbox *ob, const due_item *it, delivery *d, px_error *e)
{
    px_buf url, body;
    struct evhttp_uri *u = NULL;
    struct evhttp_request *req;
    char target[PX_PHONEPAY_URL_MAX + 3 * PX_PHONEPAY_SMS_MAX + 256];
    int post = strcmp(it->channel, "webhook") == 0, rc;
    px_buf_init(&url, sizeof target - 1);
    px_buf_init(&body, 2 * PX_PHONEPAY_SMS_MAX + 512);
    rc = build_request(ob, it, &url, &body, e);
    if (rc == PX_OK && (u = evhttp_uri_parse(px_buf_str(&url))) == NULL)
        rc = px_error_set(e, PX_ECONFIG, "URL does not parse");
    if (rc == PX_OK)
        rc = connect_to(ob, u, d, e);
    if (rc == PX_OK) {
        const char *path = evhttp_uri_get_path(u), *query = evhttp_uri_get_query(u);
        snprintf(target, sizeof target, "%s%s%s", path && path[0] ? path : "/", query ? "?" : "",
                 query ? query : "");
        req = evhttp_request_new(on_response, d);
        if (req == NULL) {
            rc = px_error_set(e, PX_ENOMEM, "no HTTP request");
        } else {
            struct evkeyvalq *h = evhttp_request_get_output_headers(req);
            evhttp_add_header(h, "Host", evhttp_uri_get_host(u));
            evhttp_add_header(h, "Connection", "close");
            evhttp_add_header(h, "User-Agent", "possum-phonepay");
            if (post) {
                evhttp_add_header(h, "Content-Type", "application/json");
                evhttp_add_header(h, "X-Possum-Event", it->event);
                sign_webhook(h, getenv(ob->pp->cfg.webhook_secret_env), &body);
                evbuffer_add(evhttp_request_get_output_buffer(req), body.data, body.len);
            }
            if (evhttp_make_request(d->conn, req, post ? EVHTTP_REQ_POST : EVHTTP_REQ_GET,
                                    target) != 0)
                rc = px_error_set(e, PX_ENET, "request not sent");
        }
    }
    if (u != NULL)
        evhttp_uri_free(u);
    OPENSSL_cleanse(target, sizeof target); /* the SMS URL holds the gateway password */
    px_buf_cleanse_free(&url);
    px_buf_cleanse_free(&body);
    return rc;
}

typedef struct claim_ctx {
    due_item *items;
    size_t cap, n;
    int64_t now_ms, lease_ms;
} claim_ctx;

/* Read the due items, then lease each (the lease is what makes two nodes never send one
 * item at the same time; attempts counts a claim, so a crash mid-send counts too). */
static int claim_txn(phonepay *pp, void *ud, px_error *e)
{
    claim_ctx *c = ud;
    store_stmt *s;
    int rc = store_prepare(pp->st,
                           "SELECT id, channel, event, recipient, body, attempts, next_ms, "
                           "created_ms FROM phonepay_outbox WHERE state = 'pending' AND "
                           "next_ms <= $1 ORDER BY next_ms LIMIT $2",
                           &s, e);
    size_t kept = 0;
    c->n = 0;
    if (rc != PX_OK)
        return rc;
    store_bind_int64(s, 1, c->now_ms);
    store_bind_int64(s, 2, (int64_t)c->cap);
    while ((rc = store_step(s, e)) == STORE_ROW && c->n < c->cap) {
        due_item *it = &c->items[c->n++];
        px_strlcpy(it->id, store_col_text(s, 0), sizeof it->id);
        px_strlcpy(it->channel, store_col_text(s, 1), sizeof it->channel);
        px_strlcpy(it->event, store_col_text(s, 2), sizeof it->event);
        px_strlcpy(it->recipient, store_col_text(s, 3), sizeof it->recipient);
        px_strlcpy(it->body, store_col_text(s, 4), sizeof it->body);
        it->attempts = store_col_int64(s, 5) + 1;
        it->next_ms = store_col_int64(s, 6);
        it->created_ms = store_col_int64(s, 7);
    }
    store_done(s);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < c->n; i++) {
        rc = store_prepare(pp->st,
                           "UPDATE phonepay_outbox SET attempts = $2, next_ms = $3 "
                           "WHERE id = $1 AND state = 'pending' AND next_ms = $4",
                           &s, e);
        if (rc != PX_OK)
            return rc;
        store_bind_text(s, 1, c->items[i].id);
        store_bind_int64(s, 2, c->items[i].attempts);
        store_bind_int64(s, 3, c->now_ms + c->lease_ms);
        store_bind_int64(s, 4, c->items[i].next_ms);
        rc = store_step(s, e);
        if (rc == STORE_DONE && store_changes(s) == 1)
            c->items[kept++] = c->items[i];
        store_done(s);
        if (rc < 0)
            return rc;
    }
    c->n = kept;
    return PX_OK;
}

/* One pass: claim what is due and start sending it. */
static void outbox_pass(phonepay_outbox *ob)
{
    static due_item items[PX_PHONEPAY_OUTBOX_BATCH]; /* loop thread only */
    claim_ctx c = {items, PX_PHONEPAY_OUTBOX_BATCH - ob->ninflight, 0, px_now_ms(),
                   2 * ob->pp->cfg.notify_timeout_ms + 1000};
    px_error e = {0};
    if (c.cap == 0 || ob->draining)
        return;
    if (phonepay_txn(ob->pp, claim_txn, &c, &e) != PX_OK) {
        px_warn(PHONEPAY_MOD, "outbox: cannot claim due items: %s", px_error_text(&e));
        return;
    }
    for (size_t i = 0; i < c.n; i++) {
        delivery *d = calloc(1, sizeof *d);
        if (d == NULL)
            break; /* the lease runs out and the item is taken again */
        d->ob = ob;
        d->attempts = items[i].attempts;
        px_strlcpy(d->id, items[i].id, sizeof d->id);
        px_strlcpy(d->channel, items[i].channel, sizeof d->channel);
        px_strlcpy(d->event, items[i].event, sizeof d->event);
        ob->inflight[ob->ninflight++] = d;
        if (start_delivery(ob, &items[i], d, &e) != PX_OK) {
            d->done = 1;
            record(ob, d, 0, px_error_text(&e));
            forget(ob, d);
        }
    }
    OPENSSL_cleanse(items, sizeof items);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    phonepay_outbox *ob = arg;
    int64_t now = px_now_ms();
    outbox_pass(ob);
    if (!ob->draining && now - ob->last_sweep_ms >= 60000) {
        px_error e = {0};
        ob->last_sweep_ms = now;
        if (phonepay_sweep(ob->pp, now, &e) != PX_OK)
            px_warn(PHONEPAY_MOD, "housekeeping: %s", px_error_text(&e));
    }
}

int phonepay_outbox_new(phonepay *pp, struct event_base *base, phonepay_outbox **out, px_error *e)
{
    phonepay_outbox *ob = calloc(1, sizeof *ob);
    struct timeval tv;
    static const char *const lbl[2][3] = {
        {"channel=\"sms\",result=\"sent\"", "channel=\"sms\",result=\"retry\"",
         "channel=\"sms\",result=\"failed\""},
        {"channel=\"webhook\",result=\"sent\"", "channel=\"webhook\",result=\"retry\"",
         "channel=\"webhook\",result=\"failed\""}};
    const char *help = "Notification delivery attempts by outcome";
    int rc = PX_OK;
    *out = NULL;
    if (ob == NULL)
        return px_error_set(e, PX_ENOMEM, "phonepay: out of memory");
    ob->pp = pp;
    ob->base = base;
    ob->last_sweep_ms = px_now_ms();
    for (int i = 0; i < 2; i++) {
        ob->m_sent[i] = net_metric_counter("possum_phonepay_notifications_total", help, lbl[i][0]);
        ob->m_retry[i] = net_metric_counter("possum_phonepay_notifications_total", help, lbl[i][1]);
        ob->m_failed[i] = net_metric_counter("possum_phonepay_notifications_total", help,
                                             lbl[i][2]);
    }
    if (net_tls_is_enabled(&pp->cfg.notify_tls))
        rc = net_tls_client_ctx(&pp->cfg.notify_tls, &ob->tls, e);
    if (rc == PX_OK && ((ob->timer = event_new(base, -1, EV_PERSIST, on_timer, ob)) == NULL ||
                        (ob->reaper = event_new(base, -1, 0, on_reap, ob)) == NULL))
        rc = px_error_set(e, PX_ENOMEM, "phonepay: no outbox timer");
    if (rc != PX_OK) {
        phonepay_outbox_free(ob);
        return rc;
    }
    tv.tv_sec = (time_t)(pp->cfg.outbox_interval_ms / 1000);
    tv.tv_usec = (suseconds_t)(pp->cfg.outbox_interval_ms % 1000) * 1000;
    event_add(ob->timer, &tv);
    event_active(ob->timer, EV_TIMEOUT, 0); /* what waited for us while we were down */
    *out = ob;
    return PX_OK;
}

void phonepay_outbox_kick(phonepay_outbox *ob)
{
    if (ob != NULL && ob->timer != NULL && !ob->draining)
        event_active(ob->timer, EV_TIMEOUT, 0);
}

size_t phonepay_outbox_in_flight(const phonepay_outbox *ob)
{
    return ob != NULL ? ob->ninflight : 0;
}

void phonepay_outbox_drain(phonepay_outbox *ob)
{
    if (ob != NULL)
        ob->draining = 1;
}

void phonepay_outbox_free(phonepay_outbox *ob)
{
    if (ob == NULL)
        return;
    if (ob->timer != NULL)
        event_free(ob->timer);
    if (ob->reaper != NULL)
        event_free(ob->reaper);
    ob->reaper = NULL;
    while (ob->ninflight > 0) { /* still pending in the store: sent again after the lease */
        delivery *d = ob->inflight[ob->ninflight - 1];
        d->done = 1;
        forget(ob, d);
    }
    reap_all(ob);
    net_tls_ctx_free(ob->tls);
    free(ob);
}
