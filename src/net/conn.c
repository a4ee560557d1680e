/*
 * conn.c: listener and connection engine (conn.h).
 */
#include "net/conn.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <errno.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FLUSH_DEADLINE_MS 5000      /* closing without an idle timeout */
#define HANDSHAKE_DEADLINE_MS 10000 /* TLS without an idle timeout */
#define ACCEPT_RETRY_MS 100         /* pause after accept() failed (EMFILE) */

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static void conn_timer_cb(evutil_socket_t fd, short what, void *arg);
static void tls_refused(net_conn *c, int timed_out);

net_metric *net_server_metric(net_server *s, net_metric **slot, const char *name, const char *help,
                              const char *extra_labels, int gauge)
{
    char labels[160];
    if (*slot != NULL)
        return *slot;
    snprintf(labels, sizeof labels, "listener=\"%s\"%s%s", s->cfg.name, extra_labels ? "," : "",
             extra_labels ? extra_labels : "");
    *slot = gauge ? net_metric_gauge(name, help, labels) : net_metric_counter(name, help, labels);
    return *slot;
}

static void count_close(net_server *s, int reason)
{
    char extra[48];
    if (reason < 0 || reason > NET_CLOSE_SHUTDOWN)
        return;
    snprintf(extra, sizeof extra, "reason=\"%s\"", net_close_reason_name(reason));
    net_metric_add(net_server_metric(s, &s->m_closed[reason], "possum_net_connections_closed_total",
                                     "Connections closed, by reason", extra, 0),
                   1);
}

static void arm_timer(net_conn *c, int64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
}

void net_conn_touch(net_conn *c)
{
    if (c->state == NET_CONN_OPEN && c->srv->cfg.idle_timeout_ms > 0)
        arm_timer(c, c->srv->cfg.idle_timeout_ms);
}

struct evbuffer *net_conn_input(net_conn *c)
{
    return bufferevent_get_input(c->bev);
}

struct evbuffer *net_conn_output(net_conn *c)
{
    return bufferevent_get_output(c->bev);
}

int net_conn_peer_cn(net_conn *c, char *out, size_t outsz)
{
    if (c->srv->tls == NULL)
        return PX_ENOTFOUND;
    return net_tls_peer_cn(bufferevent_openssl_get_ssl(c->bev), out, outsz);
}

net_conn *net_server_find(const net_server *s, uint64_t id)
{
    uint32_t slot = (uint32_t)(id & 0xffffffffu);
    uint32_t gen = (uint32_t)(id >> 32);
    if (slot >= (size_t)s->cfg.max_conns || s->slots[slot] == NULL || s->gens[slot] != gen)
        return NULL;
    return s->slots[slot];
}

static void slot_release(net_conn *c)
{
    net_server *s = c->srv;
    if (s->slots[c->slot] != c)
        return;
    s->slots[c->slot] = NULL;
    s->free_slots[s->nfree++] = c->slot;
}

/* The last step: bufferevent (and its SSL and socket), timer, memory. */
static void conn_free(net_conn *c)
{
    net_server *s = c->srv;
    slot_release(c);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->all = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (s->proto->on_free != NULL)
        s->proto->on_free(c);
    bufferevent_free(c->bev);
    event_free(c->timer);
    free(c);
    s->nconns--;
    net_metric_set(s->m_open, (int64_t)s->nconns);
}

void net_conn_close(net_conn *c, int reason, int flush)
{
    if (c->state != NET_CONN_OPEN)
        return;
    slot_release(c);
    c->state = NET_CONN_CLOSING;
    c->reason = reason;
    c->flush = flush;
    c->notify_pending = c->opened;
    bufferevent_disable(c->bev, EV_READ);
    count_close(c->srv, reason);
    event_active(c->timer, EV_TIMEOUT, 0);
}

void net_conn_check_output(net_conn *c)
{
    net_server *s = c->srv;
    if (c->state != NET_CONN_OPEN || c->paused)
        return;
    if (evbuffer_get_length(net_conn_output(c)) > (size_t)s->cfg.max_output) {
        c->paused = 1;
        bufferevent_disable(c->bev, EV_READ);
        net_metric_add(net_server_metric(s, &s->m_pauses, "possum_net_backpressure_pauses_total",
                                         "Times reading paused for unsent output", NULL, 0),
                       1);
    }
}

/* CLOSING: run on_close once, then free now or when the output drains (or the deadline). */
static void conn_closing_step(net_conn *c, int deadline_hit)
{
    net_server *s = c->srv;
    if (c->notify_pending) {
        c->notify_pending = 0;
        if (s->proto->on_close != NULL)
            s->proto->on_close(c, c->reason);
    }
    if (!c->flush || deadline_hit || evbuffer_get_length(net_conn_output(c)) == 0) {
        conn_free(c);
        return;
    }
    if (!c->deadline_armed) {
        c->deadline_armed = 1;
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        arm_timer(c, s->cfg.idle_timeout_ms > 0 ? s->cfg.idle_timeout_ms : FLUSH_DEADLINE_MS);
    }
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    net_conn *c = arg;
    (void)fd;
    (void)what;
    if (c->state == NET_CONN_CLOSING) {
        conn_closing_step(c, c->deadline_armed && !c->notify_pending);
        return;
    }
    if (!c->opened) { /* TLS handshake took too long */
        tls_refused(c, 1);
        net_conn_close(c, NET_CLOSE_TLS, 0);
        return;
    }
    if (evbuffer_get_length(net_conn_output(c)) > 0) { /* still sending: the write timeout */
        net_conn_touch(c);                             /* guards a stuck peer */
        return;
    }
    net_conn_close(c, NET_CLOSE_IDLE, 0);
}

static void conn_open(net_conn *c)
{
    c->opened = 1;
    if (c->srv->proto->on_open != NULL)
        c->srv->proto->on_open(c);
    net_conn_touch(c);
    if (c->state == NET_CONN_OPEN && evbuffer_get_length(net_conn_input(c)) > 0)
        c->srv->proto->on_input(c);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    net_conn *c = arg;
    (void)bev;
    if (c->state != NET_CONN_OPEN || !c->opened || c->paused)
        return;
    c->srv->proto->on_input(c);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    net_conn *c = arg;
    size_t left = evbuffer_get_length(bufferevent_get_output(bev));
    if (c->state == NET_CONN_CLOSING) {
        if (left == 0 && !c->notify_pending)
            conn_free(c);
        return;
    }
    if (c->paused && left <= (size_t)c->srv->cfg.max_output / 2) {
        c->paused = 0;
        bufferevent_enable(bev, EV_READ);
        c->srv->proto->on_input(c);
    }
}

/* The first OpenSSL error the connection saw (0 if none); the rest are dropped. */
static unsigned long first_tls_error(net_conn *c)
{
    unsigned long first = bufferevent_get_openssl_error(c->bev);
    while (bufferevent_get_openssl_error(c->bev) != 0)
        ;
    return first;
}

/* 1 if the listener may log and report one more refusal now (PX_TLS_REFUSALS_PER_S a
 * second); else the refusal is counted as unreported. */
static int refusal_may_report(net_server *s)
{
    int64_t now = px_mono_ms();
    if (now - s->refusal_window_ms >= 1000) {
        s->refusal_window_ms = now;
        s->refusals_reported = 0;
    }
    if (s->refusals_reported < PX_TLS_REFUSALS_PER_S) {
        s->refusals_reported++;
        return 1;
    }
    s->refusals_unreported++;
    net_metric_add(net_server_metric(s, &s->m_tls_unreported,
                                     "possum_net_tls_refusals_unreported_total",
                                     "Refused TLS handshakes neither logged nor reported "
                                     "to the service (over the rate limit)",
                                     NULL, 0),
                   1);
    return 0;
}

/* A TLS handshake failed (or timed out): count it; when the client sent a ClientHello and
 * the rate limit allows, log it and report it to the listener's on_tls_refused. */
static void tls_refused(net_conn *c, int timed_out)
{
    net_server *s = c->srv;
    net_tls_refusal r;
    char text[PX_TLS_REASON_MAX + PX_TLS_NAME_MAX + PX_TLS_DN_MAX + 128];
    unsigned long err = first_tls_error(c);
    int hello = net_tls_refusal_fill(bufferevent_openssl_get_ssl(c->bev), err, timed_out, &r);
    net_metric_add(net_server_metric(s, &s->m_tls_fail, "possum_net_tls_handshake_failures_total",
                                     "TLS handshakes that failed (bad, unknown or revoked "
                                     "certificates among them)",
                                     NULL, 0),
                   1);
    if (!hello || !refusal_may_report(s)) {
        px_debug("net", "%s: TLS handshake with %s failed%s", s->cfg.name, c->peer,
                 hello ? " (over the rate limit)" : " before a ClientHello");
        return;
    }
    net_tls_refusal_text(&r, text, sizeof text);
    px_info("net", "%s: TLS handshake with %s failed: %s", s->cfg.name, c->peer, text);
    if (s->cfg.on_tls_refused == NULL)
        return;
    r.listener = s->cfg.name;
    r.peer = c->peer;
    r.unreported = s->refusals_unreported;
    s->refusals_unreported = 0;
    s->cfg.on_tls_refused(&r, s->cfg.tls_refused_user);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    net_conn *c = arg;
    int reason = NET_CLOSE_PEER;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        if (c->state == NET_CONN_OPEN && !c->opened)
            conn_open(c);
        return;
    }
    if (c->state == NET_CONN_CLOSING) { /* the peer went while we flushed: stop now */
        c->flush = 0;
        event_active(c->timer, EV_TIMEOUT, 0);
        return;
    }
    if (!c->opened) {
        tls_refused(c, 0);
        reason = NET_CLOSE_TLS;
    } else if (what & BEV_EVENT_TIMEOUT) {
        reason = NET_CLOSE_IDLE;
    } else if ((what & BEV_EVENT_ERROR) && c->srv->tls != NULL &&
               bufferevent_get_openssl_error(bev) != 0) {
        while (bufferevent_get_openssl_error(bev) != 0)
            ;
        reason = NET_CLOSE_TLS;
    }
    net_conn_close(c, reason, (what & BEV_EVENT_EOF) != 0);
}

static void format_peer(const struct sockaddr *sa, char *out, size_t outsz)
{
    char host[INET6_ADDRSTRLEN] = "?";
    char port[8] = "0";
    getnameinfo(sa,
                sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                          : sizeof(struct sockaddr_in),
                host, sizeof host, port, sizeof port, NI_NUMERICHOST | NI_NUMERICSERV);
    snprintf(out, outsz, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

static struct bufferevent *conn_bev_new(net_server *s, evutil_socket_t fd)
{
    const int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
    struct bufferevent *bev;
    SSL *ssl;
    if (s->tls == NULL)
        return bufferevent_socket_new(s->base, fd, opts);
    ssl = SSL_new(s->tls);
    if (ssl == NULL)
        return NULL;
    bev = bufferevent_openssl_socket_new(s->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, opts);
    if (bev == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

/* A connection object for an accepted socket; NULL (socket closed) on failure. */
static net_conn *conn_new(net_server *s, evutil_socket_t fd, const struct sockaddr *sa)
{
    net_conn *c = calloc(1, sizeof *c);
    int one = 1;
    if (c == NULL || (c->timer = evtimer_new(s->base, conn_timer_cb, c)) == NULL ||
        (c->bev = conn_bev_new(s, fd)) == NULL) {
        if (c != NULL && c->timer != NULL)
            event_free(c->timer);
        free(c);
        evutil_closesocket(fd);
        return NULL;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    c->srv = s;
    c->slot = s->free_slots[--s->nfree];
    if (++s->gens[c->slot] == 0)
        s->gens[c->slot] = 1;
    c->id = ((uint64_t)s->gens[c->slot] << 32) | c->slot;
    s->slots[c->slot] = c;
    format_peer(sa, c->peer, sizeof c->peer);
    c->next = s->all;
    if (s->all != NULL)
        s->all->prev = c;
    s->all = c;
    s->nconns++;
    return c;
}

static void conn_start(net_server *s, net_conn *c)
{
    struct timeval wt;
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, s->read_high);
    bufferevent_setwatermark(c->bev, EV_WRITE, (size_t)s->cfg.max_output / 2, 0);
    if (s->cfg.idle_timeout_ms > 0) { /* a peer that stops reading our output */
        wt.tv_sec = (time_t)(s->cfg.idle_timeout_ms / 1000);
        wt.tv_usec = (suseconds_t)(s->cfg.idle_timeout_ms % 1000) * 1000;
        bufferevent_set_timeouts(c->bev, NULL, &wt);
    }
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    net_metric_add(s->m_accepted, 1);
    net_metric_set(s->m_open, (int64_t)s->nconns);
    if (s->tls == NULL) {
        conn_open(c);
    } else {
        arm_timer(c, s->cfg.idle_timeout_ms > 0 ? s->cfg.idle_timeout_ms : HANDSHAKE_DEADLINE_MS);
    }
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    net_server *s = arg;
    net_conn *c;
    (void)l;
    (void)salen;
    if (s->nconns >= (size_t)s->cfg.max_conns || s->nfree == 0) {
        net_metric_add(net_server_metric(s, &s->m_refused, "possum_net_connections_refused_total",
                                         "Connections refused", "reason=\"limit\"", 0),
                       1);
        evutil_closesocket(fd);
        return;
    }
    c = conn_new(s, fd, sa);
    if (c == NULL) {
        net_metric_add(s->m_accept_err, 1);
        return;
    }
    conn_start(s, c);
}

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    net_server *s = arg;
    (void)fd;
    (void)what;
    evconnlistener_enable(s->listener);
}

/* accept() failed (EMFILE, ENFILE, ENOBUFS): pause the listener instead of spinning. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    net_server *s = arg;
    struct timeval tv = {.tv_sec = 0, .tv_usec = ACCEPT_RETRY_MS * 1000};
    int err = EVUTIL_SOCKET_ERROR();
    net_metric_add(s->m_accept_err, 1);
    px_warn("net", "%s: accept failed: %s", s->cfg.name, evutil_socket_error_to_string(err));
    evconnlistener_disable(l);
    evtimer_add(s->accept_retry, &tv);
}

static int listener_bind(net_server *s, px_error *e)
{
    char host[PX_NET_ADDR_MAX], portstr[8];
    struct addrinfo hints, *ai = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
    int port, rc;
    if (px_parse_hostport(s->cfg.listen, host, sizeof host, &port) != PX_OK)
        return px_error_set(e, PX_ECONFIG, "%s: listen: bad host:port \"%s\"", s->cfg.name,
                            s->cfg.listen);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof portstr, "%d", port);
    rc = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &ai);
    if (rc != 0)
        return px_error_set(e, PX_ENET, "%s: listen %s: %s", s->cfg.name, s->cfg.listen,
                            gai_strerror(rc));
    if (s->cfg.reuse_port)
        flags |= LEV_OPT_REUSEABLE_PORT;
    s->listener = evconnlistener_new_bind(s->base, accept_cb, s, flags, 511, ai->ai_addr,
                                          (int)ai->ai_addrlen);
    freeaddrinfo(ai);
    if (s->listener == NULL)
        return px_error_set(e, PX_ENET, "%s: listen %s: %s", s->cfg.name, s->cfg.listen,
                            evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    evconnlistener_set_error_cb(s->listener, accept_error_cb);
    if (getsockname(evconnlistener_get_fd(s->listener), (struct sockaddr *)&ss, &sslen) == 0)
        port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    s->port = port;
    return PX_OK;
}

static int server_alloc(net_server *s, px_error *e)
{
    size_t n = (size_t)s->cfg.max_conns;
    s->slots = calloc(n, sizeof *s->slots);
    s->gens = calloc(n, sizeof *s->gens);
    s->free_slots = calloc(n, sizeof *s->free_slots);
    s->accept_retry = evtimer_new(s->base, accept_retry_cb, s);
    if (s->slots == NULL || s->gens == NULL || s->free_slots == NULL || s->accept_retry == NULL)
        return px_error_set(e, PX_ENOMEM, "%s: out of memory", s->cfg.name);
    for (size_t i = 0; i < n; i++)
        s->free_slots[i] = (uint32_t)(n - 1 - i);
    s->nfree = n;
    return PX_OK;
}

static int check_limits(const net_listener_config *cfg, px_error *e)
{
    if (!net_name_is_valid(cfg->name))
        return px_error_set(e, PX_ECONFIG, "listener name \"%.32s\": use A-Z a-z 0-9 _ . -",
                            cfg->name);
    if (cfg->max_conns < 1 || cfg->max_conns > PX_CONN_MAX_CEILING)
        return px_error_set(e, PX_ECONFIG, "%s: max_connections %lld out of 1..%d", cfg->name,
                            (long long)cfg->max_conns, PX_CONN_MAX_CEILING);
    if (cfg->max_output < 1024 || cfg->max_output > PX_OUTPUT_MAX_CEILING)
        return px_error_set(e, PX_ECONFIG, "%s: max_output %lld out of 1024..%d", cfg->name,
                            (long long)cfg->max_output, PX_OUTPUT_MAX_CEILING);
    if (cfg->idle_timeout_ms < 0)
        return px_error_set(e, PX_ECONFIG, "%s: idle_timeout_ms is negative", cfg->name);
    return PX_OK;
}

int net_server_init(net_server *s, struct event_base *base, const net_listener_config *cfg,
                    const net_proto *proto, void *owner, size_t read_high, const char *kind,
                    px_error *e)
{
    char labels[64];
    int rc = check_limits(cfg, e);
    memset(s, 0, sizeof *s);
    if (rc != PX_OK)
        return rc;
    s->base = base;
    s->cfg = *cfg;
    s->proto = proto;
    s->owner = owner;
    s->read_high = read_high;
    snprintf(labels, sizeof labels, "listener=\"%s\"", cfg->name);
    s->m_accepted = net_metric_counter("possum_net_connections_accepted_total",
                                       "Connections accepted", labels);
    s->m_open = net_metric_gauge("possum_net_connections_open", "Connections open", labels);
    s->m_accept_err = net_metric_counter("possum_net_accept_errors_total",
                                         "accept() or connection set-up failures", labels);
    rc = server_alloc(s, e);
    if (rc == PX_OK && net_tls_is_enabled(&cfg->tls))
        rc = net_tls_server_ctx(&cfg->tls, &s->tls, e);
    if (rc == PX_OK)
        rc = listener_bind(s, e);
    if (rc != PX_OK) {
        net_server_shutdown(s);
        return rc;
    }
    px_info("net", "%s: %s listening on %s (port %d)%s", cfg->name, kind, cfg->listen, s->port,
            s->tls == NULL                 ? ""
            : cfg->tls.require_client_cert ? ", TLS, client certificate required"
                                           : ", TLS");
    return PX_OK;
}

void net_server_shutdown(net_server *s)
{
    while (s->all != NULL) {
        net_conn *c = s->all;
        if (c->state == NET_CONN_OPEN)
            net_conn_close(c, NET_CLOSE_SHUTDOWN, 0);
        c->flush = 0;
        conn_closing_step(c, 1);
    }
    if (s->listener != NULL)
        evconnlistener_free(s->listener);
    if (s->accept_retry != NULL)
        event_free(s->accept_retry);
    net_tls_ctx_free(s->tls);
    free(s->slots);
    free(s->gens);
    free(s->free_slots);
    memset(s, 0, sizeof *s);
}
