/*
 * conn.h (private): the listener and connection engine under the framed and HTTP servers.
 * It owns accepting (with the connection limit), TLS, the idle timer, backpressure, the
 * output bound, connection ids and the per-listener metrics; a protocol (frame.c, http.c)
 * only parses input and writes output.
 *
 * A connection is OPEN, then CLOSING (removed from the id table, reads off, on_close to
 * run, maybe flushing), then freed. Every step after OPEN runs from the connection's own
 * timer callback or its write callback, never inside a protocol or user callback, so
 * nothing is freed under a caller's feet.
 */
#ifndef NET_CONN_H
#define NET_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include "net/net.h"

typedef struct net_conn net_conn;
typedef struct net_server net_server;

typedef struct net_proto {
    void (*on_open)(net_conn *c);              /* after accept (TLS: after the handshake) */
    void (*on_input)(net_conn *c);             /* input arrived, or reads resumed */
    void (*on_close)(net_conn *c, int reason); /* once, only if on_open ran */
    void (*on_free)(net_conn *c);              /* release proto_data (always) */
} net_proto;

enum { NET_CONN_OPEN = 0, NET_CONN_CLOSING = 1 };

struct net_conn {
    net_server *srv;
    uint64_t id;
    uint32_t slot;
    int state;
    int opened;         /* on_open ran */
    int paused;         /* reads off for backpressure */
    int notify_pending; /* on_close still to run */
    int flush;          /* CLOSING: send what is queued first */
    int deadline_armed; /* CLOSING: the flush deadline is set */
    int reason;
    struct bufferevent *bev;
    struct event *timer;
    net_conn *prev, *next;
    char peer[64];
    void *proto_data;
};

struct net_server {
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *accept_retry;
    SSL_CTX *tls;
    net_listener_config cfg;
    const net_proto *proto;
    void *owner;
    size_t read_high;     /* input bytes buffered at most per connection */
    net_conn **slots;     /* by slot index; NULL = free */
    uint32_t *gens;       /* generation of each slot */
    uint32_t *free_slots; /* stack of free slot indexes */
    size_t nfree;
    size_t nconns; /* live connections, OPEN or CLOSING */
    net_conn *all; /* every live connection */
    int port;
    int64_t refusal_window_ms;    /* start of the current second of refusal reports */
    uint32_t refusals_reported;   /* reported in that second (<= PX_TLS_REFUSALS_PER_S) */
    uint64_t refusals_unreported; /* over the limit since the last report */
    net_metric *m_accepted, *m_open, *m_refused, *m_pauses, *m_tls_fail, *m_accept_err;
    net_metric *m_tls_unreported;
    net_metric *m_closed[NET_CLOSE_SHUTDOWN + 1];
};

/* Listen per cfg; proto and owner are the protocol's. read_high bounds buffered input. */
int net_server_init(net_server *s, struct event_base *base, const net_listener_config *cfg,
                    const net_proto *proto, void *owner, size_t read_high, const char *kind,
                    px_error *e);
/* Close every connection (on_close with NET_CLOSE_SHUTDOWN) and the listener. */
void net_server_shutdown(net_server *s);

net_conn *net_server_find(const net_server *s, uint64_t id);

/* Start closing c (see above). flush: send what is queued first. No-op unless OPEN. */
void net_conn_close(net_conn *c, int reason, int flush);

/* After a write: pause reads when output passes max_output. */
void net_conn_check_output(net_conn *c);

/* Restart the idle timer (a complete frame or request arrived). */
void net_conn_touch(net_conn *c);

struct evbuffer *net_conn_input(net_conn *c);
struct evbuffer *net_conn_output(net_conn *c);
int net_conn_peer_cn(net_conn *c, char *out, size_t outsz);

/* Count a close reason etc. in this listener's metrics (lazy registration). */
net_metric *net_server_metric(net_server *s, net_metric **slot, const char *name, const char *help,
                              const char *extra_labels, int gauge);

#endif
