/*
 * link.c: the asynchronous framed client (net.h): one outgoing connection that keeps
 * itself up, with exponential backoff between attempts. Nothing is queued while down.
 */
#include "net/net.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define LINK_WRITE_STALL_MS 30000 /* a peer that takes nothing for this long is dropped */

struct net_link {
    struct event_base *base;
    net_link_config cfg;
    net_link_callbacks cb;
    SSL_CTX *tls;
    char host[PX_NET_ADDR_MAX];
    int port;
    struct bufferevent *bev;
    struct event *timer; /* connect deadline while connecting, retry while down */
    net_link_state state;
    int64_t backoff_ms;
    uint8_t *scratch; /* max_frame bytes, for on_frame */
    net_metric *m_up, *m_connects, *m_failures, *m_in, *m_out, *m_refused;
};

static void link_connect(net_link *l);

static void arm(net_link *l, int64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(l->timer, &tv);
}

static void set_state(net_link *l, net_link_state st, const char *why)
{
    l->state = st;
    net_metric_set(l->m_up, st == NET_LINK_UP);
    if (l->cb.on_state != NULL)
        l->cb.on_state(l, st, why, l->cb.user);
}

/* Drop the connection and schedule the next attempt. */
static void link_down(net_link *l, const char *why)
{
    int64_t wait = l->backoff_ms + (px_mono_ns() / 1000) % (l->backoff_ms / 4 + 1);
    if (l->bev != NULL) {
        bufferevent_free(l->bev);
        l->bev = NULL;
    }
    ERR_clear_error();
    net_metric_add(l->m_failures, 1);
    px_info("net", "%s: link to %s down (%s); retry in %lld ms", l->cfg.name, l->cfg.connect, why,
            (long long)wait);
    l->backoff_ms = l->backoff_ms * 2 > l->cfg.reconnect_max_ms ? l->cfg.reconnect_max_ms
                                                                : l->backoff_ms * 2;
    arm(l, wait);
    set_state(l, NET_LINK_DOWN, why);
}

static void link_read_cb(struct bufferevent *bev, void *arg)
{
    net_link *l = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    uint8_t hdr[2];
    size_t n;
    while (l->bev == bev && evbuffer_copyout(in, hdr, 2) == 2) {
        n = ((size_t)hdr[0] << 8) | hdr[1];
        if (n > (size_t)l->cfg.max_frame) {
            link_down(l, "peer sent a frame over max_frame");
            return;
        }
        if (evbuffer_get_length(in) < 2 + n)
            return;
        evbuffer_drain(in, 2);
        if (n == 0)
            continue;
        if (PX_BUG(evbuffer_remove(in, l->scratch, n) != (int)n)) {
            link_down(l, "internal error");
            return;
        }
        net_metric_add(l->m_in, 1);
        if (l->cb.on_frame != NULL)
            l->cb.on_frame(l, l->scratch, n, l->cb.user);
    }
}

static void link_event_cb(struct bufferevent *bev, short what, void *arg)
{
    net_link *l = arg;
    char why[200];
    unsigned long tls_err = l->tls ? bufferevent_get_openssl_error(bev) : 0;
    int one = 1;
    if (what & BEV_EVENT_CONNECTED) {
        evtimer_del(l->timer);
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        l->backoff_ms = l->cfg.reconnect_min_ms;
        net_metric_add(l->m_connects, 1);
        px_info("net", "%s: link to %s up%s", l->cfg.name, l->cfg.connect, l->tls ? " (TLS)" : "");
        set_state(l, NET_LINK_UP, "connected");
        return;
    }
    if (tls_err != 0) {
        snprintf(why, sizeof why, "TLS: ");
        ERR_error_string_n(tls_err, why + 5, sizeof why - 5);
    } else if (what & BEV_EVENT_TIMEOUT) {
        snprintf(why, sizeof why, "peer took nothing for %d ms", LINK_WRITE_STALL_MS);
    } else if (what & BEV_EVENT_EOF) {
        snprintf(why, sizeof why, "peer closed the connection");
    } else {
        snprintf(why, sizeof why, "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    }
    link_down(l, why);
}

static void link_write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    (void)arg;
}

static void link_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    net_link *l = arg;
    (void)fd;
    (void)what;
    if (l->state == NET_LINK_CONNECTING && l->bev != NULL)
        link_down(l, "connect timed out");
    else if (l->state != NET_LINK_UP)
        link_connect(l);
}

static struct bufferevent *link_bev_new(net_link *l, px_error *e)
{
    const int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
    const char *name = l->cfg.tls.server_name[0] ? l->cfg.tls.server_name : l->host;
    struct bufferevent *bev;
    SSL *ssl;
    if (l->tls == NULL)
        return bufferevent_socket_new(l->base, -1, opts);
    if (net_tls_client_ssl(l->tls, name, &ssl, e) != PX_OK)
        return NULL;
    bev = bufferevent_openssl_socket_new(l->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, opts);
    if (bev == NULL)
        SSL_free(ssl);
    return bev;
}

/* One attempt: resolve, start a non-blocking connect, arm the deadline. */
static void link_connect(net_link *l)
{
    const struct timeval stall = {LINK_WRITE_STALL_MS / 1000, 0};
    struct addrinfo hints, *ai = NULL;
    char portstr[8];
    px_error e = {0};
    int gai;
    set_state(l, NET_LINK_CONNECTING, "connecting");
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(portstr, sizeof portstr, "%d", l->port);
    gai = getaddrinfo(l->host, portstr, &hints, &ai);
    if (gai != 0) {
        link_down(l, gai_strerror(gai));
        return;
    }
    l->bev = link_bev_new(l, &e);
    if (l->bev == NULL) {
        freeaddrinfo(ai);
        link_down(l, e.msg[0] ? e.msg : "out of memory");
        return;
    }
    bufferevent_setcb(l->bev, link_read_cb, link_write_cb, link_event_cb, l);
    bufferevent_setwatermark(l->bev, EV_READ, 0, 2 * ((size_t)l->cfg.max_frame + 2) + 4096);
    bufferevent_set_timeouts(l->bev, NULL, &stall);
    bufferevent_enable(l->bev, EV_READ | EV_WRITE);
    arm(l, l->cfg.connect_timeout_ms);
    if (bufferevent_socket_connect(l->bev, ai->ai_addr, (int)ai->ai_addrlen) != 0) {
        freeaddrinfo(ai);
        link_down(l, "connect failed");
        return;
    }
    freeaddrinfo(ai);
}

static int link_check(const net_link_config *cfg, char *host, size_t hostsz, int *port, px_error *e)
{
    if (!net_name_is_valid(cfg->name))
        return px_error_set(e, PX_ECONFIG, "link name \"%.32s\": use A-Z a-z 0-9 _ . -", cfg->name);
    if (px_parse_hostport(cfg->connect, host, hostsz, port) != PX_OK || host[0] == 0 || *port == 0)
        return px_error_set(e, PX_ECONFIG, "%s: connect: bad host:port \"%s\"", cfg->name,
                            cfg->connect);
    if (cfg->max_frame < 1 || cfg->max_frame > PX_FRAME_MAX_CEILING)
        return px_error_set(e, PX_ECONFIG, "%s: max_frame out of 1..%d", cfg->name,
                            PX_FRAME_MAX_CEILING);
    if (cfg->reconnect_min_ms < 1 || cfg->reconnect_max_ms < cfg->reconnect_min_ms ||
        cfg->reconnect_max_ms > PX_LINK_BACKOFF_MAX_MS || cfg->connect_timeout_ms < 1 ||
        cfg->max_output < 1024 || cfg->max_output > PX_OUTPUT_MAX_CEILING)
        return px_error_set(e, PX_ECONFIG, "%s: timeouts or max_output out of range", cfg->name);
    return PX_OK;
}

static void link_metrics(net_link *l)
{
    char labels[64];
    snprintf(labels, sizeof labels, "link=\"%s\"", l->cfg.name);
    l->m_up = net_metric_gauge("possum_net_link_up", "1 while the link is connected", labels);
    l->m_connects = net_metric_counter("possum_net_link_connects_total",
                                       "Link connections established", labels);
    l->m_failures = net_metric_counter("possum_net_link_failures_total",
                                       "Link connections lost or attempts failed", labels);
    l->m_in = net_metric_counter("possum_net_link_frames_received_total",
                                 "Frames received on a link", labels);
    l->m_out = net_metric_counter("possum_net_link_frames_sent_total", "Frames queued on a link",
                                  labels);
    l->m_refused = net_metric_counter("possum_net_link_sends_refused_total",
                                      "Sends refused (link down or output full)", labels);
}

int net_link_new(struct event_base *base, const net_link_config *cfg, const net_link_callbacks *cb,
                 net_link **out, px_error *e)
{
    net_link *l;
    int rc;
    *out = NULL;
    l = calloc(1, sizeof *l);
    if (l == NULL)
        return px_error_set(e, PX_ENOMEM, "%s: out of memory", cfg->name);
    l->base = base;
    l->cfg = *cfg;
    if (cb != NULL)
        l->cb = *cb;
    rc = link_check(cfg, l->host, sizeof l->host, &l->port, e);
    if (rc == PX_OK && net_tls_is_enabled(&cfg->tls))
        rc = net_tls_client_ctx(&cfg->tls, &l->tls, e);
    if (rc == PX_OK && ((l->scratch = malloc((size_t)cfg->max_frame)) == NULL ||
                        (l->timer = evtimer_new(base, link_timer_cb, l)) == NULL))
        rc = px_error_set(e, PX_ENOMEM, "%s: out of memory", cfg->name);
    if (rc != PX_OK) {
        net_link_free(l);
        return rc;
    }
    link_metrics(l);
    l->backoff_ms = cfg->reconnect_min_ms;
    l->state = NET_LINK_CONNECTING;
    arm(l, 0); /* the first attempt from the loop: callbacks never run inside this call */
    *out = l;
    return PX_OK;
}

int net_link_send(net_link *l, const void *data, size_t len)
{
    struct evbuffer *out;
    struct evbuffer_iovec v;
    if (l->state != NET_LINK_UP || l->bev == NULL) {
        net_metric_add(l->m_refused, 1);
        return PX_ESTATE;
    }
    if (len > (size_t)l->cfg.max_frame)
        return PX_ETOOBIG;
    out = bufferevent_get_output(l->bev);
    if (evbuffer_get_length(out) + 2 + len > (size_t)l->cfg.max_output) {
        net_metric_add(l->m_refused, 1);
        return PX_ELIMIT;
    }
    if (evbuffer_reserve_space(out, (ev_ssize_t)(len + 2), &v, 1) < 1)
        return PX_ENOMEM;
    ((uint8_t *)v.iov_base)[0] = (uint8_t)(len >> 8);
    ((uint8_t *)v.iov_base)[1] = (uint8_t)len;
    if (len > 0)
        memcpy((uint8_t *)v.iov_base + 2, data, len);
    v.iov_len = len + 2;
    if (evbuffer_commit_space(out, &v, 1) != 0)
        return PX_ENOMEM;
    net_metric_add(l->m_out, 1);
    return PX_OK;
}

int net_link_is_up(const net_link *l)
{
    return l->state == NET_LINK_UP;
}

net_link_state net_link_get_state(const net_link *l)
{
    return l->state;
}

void net_link_free(net_link *l)
{
    if (l == NULL)
        return;
    if (l->bev != NULL)
        bufferevent_free(l->bev);
    if (l->timer != NULL)
        event_free(l->timer);
    net_metric_set(l->m_up, 0);
    net_tls_ctx_free(l->tls);
    free(l->scratch);
    free(l);
}
