/*
 * test_tls_refused.c: the on_tls_refused hook of a listener (net.h). A revoked client
 * certificate, one from another CA, and no certificate each give exactly one report with
 * the reason OpenSSL names and what the client offered; a good certificate, a bare TCP
 * connect-and-close, bytes that are not TLS, and a plain-TCP listener give none; a client
 * that stalls after its ClientHello is reported when the handshake times out; reports are
 * rate-limited per listener; the HTTP server has the same hook.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "nettest.h"
#include "net/http.h"

#include <event2/event.h>
#include <openssl/bio.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

static nt_certs CERTS;

typedef struct fx {
    nt_loop loop;
    net_frame_server *srv;
    net_http_server *http;
    char name[PX_NET_NAME_MAX];
    int reports, opens;
    net_tls_refusal last; /* listener and peer point at the copies below */
    char listener[PX_NET_NAME_MAX], peer[64];
} fx;

static fx F;

static void on_refused(const net_tls_refusal *r, void *user)
{
    fx *f = user;
    f->reports++;
    f->last = *r;
    snprintf(f->listener, sizeof f->listener, "%s", r->listener);
    snprintf(f->peer, sizeof f->peer, "%s", r->peer);
    f->last.listener = f->listener;
    f->last.peer = f->peer;
}

static void on_open(net_frame_server *srv, uint64_t id, const char *peer, void *user)
{
    (void)srv;
    (void)id;
    (void)peer;
    ((fx *)user)->opens++;
}

static const net_frame_callbacks CB = {on_open, NULL, NULL, &F};

/* A listener config named name: mutual TLS with the CRL when tls, else plain TCP; the hook
 * set either way. */
static void config(net_listener_config *cfg, const char *name, int tls)
{
    net_listener_config_defaults(cfg, name);
    if (tls) {
        snprintf(cfg->tls.cert, sizeof cfg->tls.cert, "%s", CERTS.server_cert);
        snprintf(cfg->tls.key, sizeof cfg->tls.key, "%s", CERTS.server_key);
        snprintf(cfg->tls.ca, sizeof cfg->tls.ca, "%s", CERTS.ca);
        snprintf(cfg->tls.crl, sizeof cfg->tls.crl, "%s", CERTS.crl);
        cfg->tls.require_client_cert = 1;
    }
    cfg->on_tls_refused = on_refused;
    cfg->tls_refused_user = &F;
}

static void start_cfg(const net_listener_config *cfg, int http)
{
    px_error e = {0};
    int rc;
    memset(&F, 0, sizeof F);
    snprintf(F.name, sizeof F.name, "%s", cfg->name);
    nt_loop_init(&F.loop);
    rc = http ? net_http_server_new(F.loop.base, cfg, &F.http, &e)
              : net_frame_server_new(F.loop.base, cfg, &CB, &F.srv, &e);
    if (rc != PX_OK)
        fail_msg("server: %s", e.msg);
    nt_loop_start(&F.loop);
}

static void start(const char *name, int tls)
{
    net_listener_config cfg;
    config(&cfg, name, tls);
    start_cfg(&cfg, 0);
}

static void stop(void)
{
    nt_loop_stop(&F.loop);
    net_frame_server_free(F.srv);
    net_http_server_free(F.http);
    nt_loop_free(&F.loop);
}

static int port(void)
{
    return F.http != NULL ? net_http_server_port(F.http) : net_frame_server_port(F.srv);
}

static SSL_CTX *client_ctx(const char *cert, const char *key)
{
    net_tls_config t;
    SSL_CTX *ctx = NULL;
    px_error e = {0};
    memset(&t, 0, sizeof t);
    snprintf(t.ca, sizeof t.ca, "%s", CERTS.ca);
    if (cert != NULL) {
        snprintf(t.cert, sizeof t.cert, "%s", cert);
        snprintf(t.key, sizeof t.key, "%s", key);
    }
    if (net_tls_client_ctx(&t, &ctx, &e) != PX_OK)
        fail_msg("client ctx: %s", e.msg);
    return ctx;
}

/* Connect with ctx and read until the server closes (a refused client sees the alert):
 * the server has then finished with the connection. */
static void try_client(SSL_CTX *ctx)
{
    net_client *c = NULL;
    uint8_t buf[64];
    size_t n = 0;
    if (net_client_connect("127.0.0.1", port(), ctx, 3000, &c, NULL) != PX_OK)
        return;
    (void)net_client_send_raw(c, "\0\4ping", 6, NULL);
    while (net_client_recv_raw(c, buf, sizeof buf, &n, 3000, NULL) == PX_OK)
        ;
    net_client_close(c);
}

static int opened(void *arg)
{
    (void)arg;
    return F.opens >= 1;
}

/* A client with ctx whose handshake succeeds: wait until the server opened it, close. */
static void good_client(SSL_CTX *ctx)
{
    net_client *c = NULL;
    assert_int_equal(net_client_connect("127.0.0.1", port(), ctx, 3000, &c, NULL), PX_OK);
    assert_true(nt_wait_for(&F.loop, opened, NULL, 5000));
    net_client_close(c);
}

static int64_t failures(void)
{
    char labels[64];
    snprintf(labels, sizeof labels, "listener=\"%s\"", F.name);
    return nt_metric("possum_net_tls_handshake_failures_total", labels);
}

static int64_t want_failures;

static int failures_reached(void *arg)
{
    (void)arg;
    return failures() >= want_failures;
}

static int reports_reached(void *arg)
{
    return F.reports >= *(int *)arg;
}

/* Wait until the server has seen `total` failed handshakes and `want` reports, then a little
 * more, so a second report would have shown. */
static void settle(int64_t total, int want)
{
    want_failures = total;
    assert_true(nt_wait_for(&F.loop, failures_reached, NULL, 5000));
    if (want > 0)
        assert_true(nt_wait_for(&F.loop, reports_reached, &want, 5000));
    nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
    assert_int_equal(F.reports, want);
}

static void test_revoked(void **state)
{
    SSL_CTX *ctx = client_ctx(CERTS.revoked_cert, CERTS.revoked_key);
    (void)state;
    start("refused_revoked", 1);
    try_client(ctx);
    settle(1, 1);
    assert_int_equal(F.opens, 0);
    assert_string_equal(F.last.listener, "refused_revoked");
    assert_non_null(strstr(F.last.peer, "127.0.0.1:"));
    assert_int_equal(F.last.kind, NET_TLS_REFUSED_CERT);
    assert_int_equal(F.last.verify_error, X509_V_ERR_CERT_REVOKED);
    assert_string_equal(F.last.reason, "certificate revoked");
    assert_true(F.last.has_cert);
    assert_string_equal(F.last.cert_cn, "revoked");
    assert_string_equal(F.last.cert_serial, "0C"); /* 12, as nettest.c issued it */
    assert_string_equal(F.last.cert_issuer, "CN=possum test CA");
    assert_int_equal(F.last.unreported, 0);
    stop();
    net_tls_ctx_free(ctx);
}

static void test_foreign_ca(void **state)
{
    SSL_CTX *ctx = client_ctx(CERTS.rogue_cert, CERTS.rogue_key);
    char text[512];
    (void)state;
    start("refused_foreign", 1);
    try_client(ctx);
    settle(1, 1);
    assert_int_equal(F.last.kind, NET_TLS_REFUSED_CERT);
    assert_int_equal(F.last.verify_error, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    assert_string_equal(F.last.reason, "unable to get local issuer certificate");
    assert_string_equal(F.last.cert_cn, "rogue");
    assert_string_equal(F.last.cert_serial, "0D");
    assert_string_equal(F.last.cert_issuer, "CN=other CA");
    net_tls_refusal_text(&F.last, text, sizeof text);
    assert_string_equal(text, "unable to get local issuer certificate; offered certificate CN "
                              "rogue, serial 0D, issuer CN=other CA (unverified)");
    stop();
    net_tls_ctx_free(ctx);
}

static void test_no_certificate(void **state)
{
    SSL_CTX *ctx = client_ctx(NULL, NULL);
    char text[512];
    (void)state;
    start("refused_nocert", 1);
    try_client(ctx);
    settle(1, 1);
    assert_int_equal(F.last.kind, NET_TLS_REFUSED_NO_CERT);
    assert_int_equal(F.last.verify_error, X509_V_OK);
    assert_string_equal(F.last.reason, "peer did not return a certificate");
    assert_false(F.last.has_cert);
    assert_string_equal(F.last.cert_cn, "");
    net_tls_refusal_text(&F.last, text, sizeof text);
    assert_string_equal(text, "peer did not return a certificate; no certificate offered");
    assert_string_equal(net_tls_refusal_kind_name(F.last.kind), "no_certificate");
    stop();
    net_tls_ctx_free(ctx);
}

/* A good certificate, a bare connect-and-close, bytes that are not TLS: no report. */
static void test_not_reported(void **state)
{
    SSL_CTX *ctx = client_ctx(CERTS.client_cert, CERTS.client_key);
    net_client *c = NULL;
    (void)state;
    start("refused_none", 1);
    good_client(ctx);
    assert_int_equal(net_client_connect("127.0.0.1", port(), NULL, 3000, &c, NULL), PX_OK);
    net_client_close(c); /* a port scan */
    settle(1, 0);
    assert_int_equal(net_client_connect("127.0.0.1", port(), NULL, 3000, &c, NULL), PX_OK);
    assert_int_equal(net_client_send_raw(c, "GET / HTTP/1.1\r\n\r\n", 18, NULL), PX_OK);
    try_client(NULL); /* and another bare connect, read to the end */
    net_client_close(c);
    settle(3, 0);
    stop();
    net_tls_ctx_free(ctx);
}

/* A plain-TCP listener never reports, whatever arrives. */
static void test_plain_listener(void **state)
{
    net_client *c = NULL;
    (void)state;
    start("refused_plain", 0);
    assert_int_equal(net_client_connect("127.0.0.1", port(), NULL, 3000, &c, NULL), PX_OK);
    assert_int_equal(net_client_send_raw(c, "\x16\x03\x01\x00\x05hello", 10, NULL), PX_OK);
    net_client_close(c);
    assert_true(nt_wait_for(&F.loop, opened, NULL, 5000));
    nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
    assert_int_equal(F.reports, 0);
    assert_int_equal(failures(), 0);
    stop();
}

/* The bytes of a ClientHello from ctx (the client's first flight), into buf. */
static size_t client_hello(SSL_CTX *ctx, uint8_t *buf, size_t cap)
{
    SSL *ssl = SSL_new(ctx);
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
    int n;
    assert_non_null(ssl);
    SSL_set_bio(ssl, in, out);
    SSL_set_connect_state(ssl);
    assert_int_equal(SSL_do_handshake(ssl), -1); /* waits for the ServerHello */
    n = BIO_read(out, buf, (int)cap);
    SSL_free(ssl);
    assert_true(n > 0);
    return (size_t)n;
}

/* A client that stops after its ClientHello: reported when the handshake times out. */
static void test_stalled_after_hello(void **state)
{
    SSL_CTX *ctx = client_ctx(CERTS.client_cert, CERTS.client_key);
    net_listener_config cfg;
    net_client *c = NULL;
    uint8_t hello[2048];
    size_t n = client_hello(ctx, hello, sizeof hello);
    (void)state;
    config(&cfg, "refused_stalled", 1);
    cfg.idle_timeout_ms = 200; /* also the handshake's deadline */
    start_cfg(&cfg, 0);
    assert_int_equal(net_client_connect("127.0.0.1", port(), NULL, 3000, &c, NULL), PX_OK);
    assert_int_equal(net_client_send_raw(c, hello, n, NULL), PX_OK);
    settle(1, 1);
    assert_int_equal(F.last.kind, NET_TLS_REFUSED_HANDSHAKE);
    assert_string_equal(F.last.reason, "handshake timed out");
    assert_false(F.last.has_cert);
    net_client_close(c);
    stop();
    net_tls_ctx_free(ctx);
}

/* More than PX_TLS_REFUSALS_PER_S in a second: the rest counted, and the next report says
 * how many were not reported. */
static void test_rate_limit(void **state)
{
    SSL_CTX *ctx = client_ctx(NULL, NULL);
    const int burst = PX_TLS_REFUSALS_PER_S + 5;
    int reported;
    (void)state;
    start("refused_burst", 1);
    for (int i = 0; i < burst; i++)
        try_client(ctx);
    want_failures = burst;
    assert_true(nt_wait_for(&F.loop, failures_reached, NULL, 5000));
    reported = F.reports;
    assert_true(reported >= PX_TLS_REFUSALS_PER_S && reported < burst);
    assert_int_equal(nt_metric("possum_net_tls_refusals_unreported_total",
                               "listener=\"refused_burst\""),
                     burst - reported);
    nanosleep(&(struct timespec){1, 100 * 1000000L}, NULL); /* a new second */
    try_client(ctx);
    settle(burst + 1, reported + 1);
    assert_int_equal(F.last.unreported, burst - reported);
    stop();
    net_tls_ctx_free(ctx);
}

/* The HTTP server sits on the same engine: the same hook. */
static void test_http_listener(void **state)
{
    SSL_CTX *ctx = client_ctx(CERTS.revoked_cert, CERTS.revoked_key);
    net_listener_config cfg;
    (void)state;
    config(&cfg, "refused_http", 1);
    start_cfg(&cfg, 1);
    try_client(ctx);
    settle(1, 1);
    assert_string_equal(F.last.listener, "refused_http");
    assert_string_equal(F.last.reason, "certificate revoked");
    assert_string_equal(F.last.cert_cn, "revoked");
    stop();
    net_tls_ctx_free(ctx);
}

static int setup(void **state)
{
    (void)state;
    net_init(NULL);
    return nt_certs_make(&CERTS);
}

static int teardown(void **state)
{
    (void)state;
    nt_certs_remove(&CERTS);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_revoked),        cmocka_unit_test(test_foreign_ca),
        cmocka_unit_test(test_no_certificate), cmocka_unit_test(test_not_reported),
        cmocka_unit_test(test_plain_listener), cmocka_unit_test(test_stalled_after_hello),
        cmocka_unit_test(test_rate_limit),     cmocka_unit_test(test_http_listener),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    libevent_global_shutdown();
    return rc;
}
