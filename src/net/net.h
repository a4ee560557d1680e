/*
 * net.h: possum's network layer on libevent: listeners with limits, framed TCP (2-byte
 * big-endian length prefix) server, blocking client and asynchronous link, all with
 * optional TLS / mutual TLS. HTTP/JSON is in net/http.h, metrics in net/metrics.h, TLS
 * contexts in net/tls.h. See docs/net.md.
 *
 * Threading: one struct event_base per thread; every object here belongs to the base it was
 * created on and is used only from that base's thread (net_post() hands work over).
 * Callbacks always run from the event loop, never from inside an API call (the *_free
 * functions excepted, as documented there).
 */
#ifndef NET_NET_H
#define NET_NET_H

#include <stddef.h>
#include <stdint.h>
#include "lib/config.h"
#include "lib/err.h"
#include "lib/limits.h"
#include "net/metrics.h"
#include "net/tls.h"

struct event_base;

/* Once per process, before any other call (idempotent, thread-safe): libevent's pthread
 * locking, SIGPIPE ignored. */
int net_init(px_error *e);

/* A new event base (net_init done first). Free with net_base_free(). */
int net_base_new(struct event_base **out, px_error *e);

/* Free a base whose loop has stopped, after every server and link on it was freed: runs
 * the loop without blocking until libevent's deferred finalizers (closed TLS streams among
 * them) have run, so nothing is left behind. NULL is fine. */
void net_base_free(struct event_base *base);

/* Run fn(arg) on base's thread soon; callable from any thread. PX_ENOMEM on failure (then
 * fn is never called). If base is freed first, fn is never called. */
int net_post(struct event_base *base, void (*fn)(void *arg), void *arg);

/* ---- listener configuration -------------------------------------------------------- */

/* A TLS listener refused a handshake (r is valid during the call only). Called from the
 * loop, once per refused handshake in which the client sent a ClientHello; never on a
 * plain-TCP listener, never for a connection that sent no ClientHello (a port scan: counted
 * in possum_net_tls_handshake_failures_total only), and at most PX_TLS_REFUSALS_PER_S
 * times a second per listener (the rest are counted in
 * possum_net_tls_refusals_unreported_total, and r->unreported of the next call says how
 * many). The same refusals, within the same limit, are logged at info. May not free the
 * server. */
typedef void (*net_tls_refused_fn)(const net_tls_refusal *r, void *user);

typedef struct net_listener_config {
    char name[PX_NET_NAME_MAX];        /* label in metrics and logs ("switch"): [A-Za-z0-9_.-] */
    char listen[PX_NET_ADDR_MAX];      /* "host:port", "[v6]:port" or ":port"; port 0 = ephemeral */
    int64_t max_frame;                 /* framed: largest frame body, 1..65535 */
    int64_t idle_timeout_ms;           /* close after this long without a complete frame or
                                          request (and with nothing left to send); 0 = never */
    int64_t max_conns;                 /* open connections; past it new ones are refused */
    int64_t max_output;                /* unsent bytes per connection before reads pause */
    int64_t max_body;                  /* HTTP: largest request body */
    int reuse_port;                    /* SO_REUSEPORT: one listener per thread on one port */
    net_tls_config tls;                /* tls.cert "" = plain TCP */
    net_tls_refused_fn on_tls_refused; /* NULL = only logged and counted */
    void *tls_refused_user;            /* its user argument */
} net_listener_config;

/* Defaults from lib/limits.h: listen "127.0.0.1:0", no TLS, no on_tls_refused. */
void net_listener_config_defaults(net_listener_config *cfg, const char *name);

/* Bind [section] keys (each with prefix, NULL = none, e.g. "admin_"): listen, max_frame,
 * idle_timeout_ms, max_connections, max_output, max_body, tls_cert, tls_key, tls_ca,
 * tls_crl, tls_require_client_cert. Relative TLS paths resolve against the config file's
 * directory. name becomes the section. Checks that a key comes with a cert and that
 * requiring client certificates comes with a CA. Starts from the defaults: set
 * on_tls_refused afterwards. */
int net_listener_config_bind(px_config *c, const char *section, const char *prefix,
                             net_listener_config *out, px_error *e);

/* ---- framed TCP server ------------------------------------------------------------- */

/* Why a connection closed (passed to on_close). */
typedef enum net_close_reason {
    NET_CLOSE_PEER = 0,    /* the peer closed, or reset */
    NET_CLOSE_LOCAL,       /* net_frame_server_close_conn() */
    NET_CLOSE_IDLE,        /* idle timeout, or a send that made no progress for as long */
    NET_CLOSE_OVERSIZE,    /* length prefix over max_frame */
    NET_CLOSE_OUTPUT_FULL, /* a send would have passed twice max_output */
    NET_CLOSE_TLS,         /* TLS handshake or record failure (bad or revoked cert, ...) */
    NET_CLOSE_ERROR,       /* socket or memory error */
    NET_CLOSE_SHUTDOWN     /* the server is being freed */
} net_close_reason;

const char *net_close_reason_name(int reason);

/* 1 if name is a usable listener or link name (non-empty, [A-Za-z0-9_.-]). */
int net_name_is_valid(const char *name);

typedef struct net_frame_server net_frame_server;

/* conn_id: unique (never reused) for the server's lifetime, never 0.
 * on_frame's data is valid only during the call. A zero-length frame is a keep-alive: it
 * resets the idle timer and is never delivered. Any callback may be NULL. */
typedef struct net_frame_callbacks {
    void (*on_open)(net_frame_server *srv, uint64_t conn_id, const char *peer, void *user);
    void (*on_frame)(net_frame_server *srv, uint64_t conn_id, const uint8_t *data, size_t len,
                     void *user);
    void (*on_close)(net_frame_server *srv, uint64_t conn_id, int reason, void *user);
    void *user;
} net_frame_callbacks;

/* Listen per cfg on base; logs what it listens on. */
int net_frame_server_new(struct event_base *base, const net_listener_config *cfg,
                         const net_frame_callbacks *cb, net_frame_server **out, px_error *e);

/* Closes every connection (on_close with NET_CLOSE_SHUTDOWN) and the listener. Not from
 * inside one of this server's callbacks. NULL is fine. */
void net_frame_server_free(net_frame_server *srv);

/* The port actually bound (useful with port 0). */
int net_frame_server_port(const net_frame_server *srv);

/* Queue one frame (len 0..max_frame) for conn_id, now or later (async replies).
 * PX_ENOTFOUND: that connection has gone (or is closing); PX_ETOOBIG: len > max_frame;
 * PX_ELIMIT: its unsent output would pass twice max_output: the connection is closed
 * (NET_CLOSE_OUTPUT_FULL) since it is not reading. */
int net_frame_server_send(net_frame_server *srv, uint64_t conn_id, const void *data, size_t len);

/* Close conn_id after what was already queued is sent (bounded by the idle timeout, or
 * 5 s when there is none). Sends to it fail with PX_ENOTFOUND from now on; on_close
 * (NET_CLOSE_LOCAL) follows from the loop. PX_ENOTFOUND if it had already gone. */
int net_frame_server_close_conn(net_frame_server *srv, uint64_t conn_id);

/* Subject CN of conn_id's verified client certificate (mutual TLS). PX_ENOTFOUND if the
 * connection has gone or presented none. */
int net_frame_server_peer_cn(net_frame_server *srv, uint64_t conn_id, char *out, size_t outsz);

/* Connections open or closing. */
size_t net_frame_server_conn_count(const net_frame_server *srv);

/* Bytes queued for conn_id and not yet written to its socket. PX_ENOTFOUND if gone. */
int net_frame_server_pending(net_frame_server *srv, uint64_t conn_id, size_t *bytes);

/* ---- blocking framed client (CLI tools, simulators, tests) ------------------------ */

typedef struct net_client net_client;

/* Connect to host:port within timeout_ms (TCP and, with tls non-NULL, the TLS handshake,
 * checking the server's certificate against host). timeout_ms also bounds each send. */
int net_client_connect(const char *host, int port, SSL_CTX *tls, int64_t timeout_ms,
                       net_client **out, px_error *e);

/* Send one frame (len <= 65535). PX_EPERM here or from a receive: the TLS server refused
 * this client at the handshake (TLS 1.3 tells the client after its side is done: a
 * certificate missing, revoked, of another CA, ...); nothing sent reached the server's
 * application, and the message names the server's alert. */
int net_client_send_frame(net_client *c, const void *data, size_t len, px_error *e);

/* Send raw bytes as they are (tests of bad framing). */
int net_client_send_raw(net_client *c, const void *data, size_t len, px_error *e);

/* Receive the next non-empty frame into buf (cap bytes) within timeout_ms.
 * PX_ETIMEOUT, PX_ENET (peer closed or failed), PX_ETOOBIG (frame > cap; the connection is
 * then unusable). */
int net_client_recv_frame(net_client *c, uint8_t *buf, size_t cap, size_t *len, int64_t timeout_ms,
                          px_error *e);

/* Receive whatever bytes arrive next (at most cap) within timeout_ms: raw protocols and
 * tests. *len 0 with PX_OK never happens; end of stream is PX_ENET. */
int net_client_recv_raw(net_client *c, uint8_t *buf, size_t cap, size_t *len, int64_t timeout_ms,
                        px_error *e);

/* Subject CN of the server's certificate (TLS only). */
int net_client_peer_cn(net_client *c, char *out, size_t outsz);

void net_client_close(net_client *c); /* NULL is fine */

/* ---- asynchronous framed link (service to service) -------------------------------- */

typedef struct net_link_config {
    char name[PX_NET_NAME_MAX];    /* label in metrics and logs ("issuer"): [A-Za-z0-9_.-] */
    char connect[PX_NET_ADDR_MAX]; /* "host:port" of the peer */
    int64_t max_frame;             /* largest frame either way */
    int64_t connect_timeout_ms;    /* TCP connect + TLS handshake */
    int64_t reconnect_min_ms;      /* first pause after a failure; doubles ... */
    int64_t reconnect_max_ms;      /* ... up to this */
    int64_t max_output;            /* unsent bytes; past it net_link_send refuses */
    net_tls_config tls;            /* tls.ca "" = plain TCP */
} net_link_config;

void net_link_config_defaults(net_link_config *cfg, const char *name);

/* Bind [section] keys (with prefix, NULL = none): connect (required), max_frame,
 * connect_timeout_ms, reconnect_min_ms, reconnect_max_ms, max_output, tls_ca, tls_cert,
 * tls_key, tls_server_name. */
int net_link_config_bind(px_config *c, const char *section, const char *prefix,
                         net_link_config *out, px_error *e);

typedef enum net_link_state {
    NET_LINK_CONNECTING = 0, /* connecting or waiting to retry */
    NET_LINK_UP = 1,         /* connected (and TLS done): sends are accepted */
    NET_LINK_DOWN = 2        /* just lost or failed; a retry is scheduled */
} net_link_state;

typedef struct net_link net_link;

typedef struct net_link_callbacks {
    void (*on_frame)(net_link *l, const uint8_t *data, size_t len, void *user);
    void (*on_state)(net_link *l, net_link_state state, const char *why, void *user);
    void *user;
} net_link_callbacks;

/* Start connecting now; reconnects by itself (backoff) until freed. The host part of
 * cfg->connect should be an IP address or a name resolvable without delay (/etc/hosts):
 * it is resolved with getaddrinfo() on each attempt. */
int net_link_new(struct event_base *base, const net_link_config *cfg, const net_link_callbacks *cb,
                 net_link **out, px_error *e);

/* Queue one frame. PX_ESTATE when not up (nothing is queued while down: the caller
 * answers "peer unavailable" at once); PX_ELIMIT when the output queue is full;
 * PX_ETOOBIG when len > max_frame. */
int net_link_send(net_link *l, const void *data, size_t len);

int net_link_is_up(const net_link *l);
net_link_state net_link_get_state(const net_link *l);

/* No callback runs after this. Not from inside this link's callbacks. NULL is fine. */
void net_link_free(net_link *l);

#endif
