/*
 * nettest.h: helpers for the net tests: a throwaway PKI generated at test time (EC P-256,
 * nothing committed), an event loop on its own thread, and a raw HTTP exchange.
 */
#ifndef NETTEST_H
#define NETTEST_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "net/net.h"

typedef struct nt_certs {
    char dir[128];
    char ca[192], ca2[192];                   /* two unrelated CAs */
    char server_cert[192], server_key[192];   /* CA1, CN=localhost, SAN localhost + 127.0.0.1 */
    char client_cert[192], client_key[192];   /* CA1, CN=terminal-1 */
    char rogue_cert[192], rogue_key[192];     /* CA2, CN=rogue */
    char revoked_cert[192], revoked_key[192]; /* CA1, CN=revoked, listed in crl */
    char crl[192];                            /* CA1's CRL */
} nt_certs;

int nt_certs_make(nt_certs *c);
void nt_certs_remove(const nt_certs *c);

typedef struct nt_loop {
    struct event_base *base;
    struct event *keep;
    pthread_t thread;
    int running;
} nt_loop;

void nt_loop_init(nt_loop *l);
void nt_loop_start(nt_loop *l);
void nt_loop_stop(nt_loop *l);
void nt_loop_free(nt_loop *l);
/* Run fn(arg) on the loop's thread and wait for it. */
void nt_loop_call(nt_loop *l, void (*fn)(void *), void *arg);
/* Poll cond(arg) on the loop's thread every 10 ms until true or timeout_ms: 1 if true. */
int nt_wait_for(nt_loop *l, int (*cond)(void *), void *arg, int64_t timeout_ms);

typedef struct nt_resp {
    int status;
    char head[4096];
    char body[65536];
    size_t body_len;
} nt_resp;

/* Send raw request bytes on c and read one response (no body when head_only). */
int nt_http_exchange(net_client *c, const char *req, size_t reqlen, int head_only, nt_resp *r);
/* One request on a fresh plain connection to 127.0.0.1:port. Returns the status or -1. */
int nt_http(int port, const char *req, nt_resp *r);
/* Value of header name in r->head (copied into out), or NULL. */
const char *nt_resp_header(const nt_resp *r, const char *name, char *out, size_t outsz);

/* Metric value by name and labels, 0 when absent. */
int64_t nt_metric(const char *name, const char *labels);

#endif
