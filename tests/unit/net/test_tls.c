/*
 * test_tls.c: TLS and mutual TLS on the framed server, with a PKI made at test time:
 * server verification by the client (CA and name), client certificates required, a
 * certificate from another CA refused, a revoked certificate refused through the CRL,
 * the verified client CN given to the application; and a TLS link (async client).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "nettest.h"

#include <event2/event.h>

#include <stdio.h>
#include <string.h>

static nt_certs CERTS;

typedef struct fx {
    nt_loop loop;
    net_frame_server *srv;
    int opens;
    char cn[PX_TLS_NAME_MAX];
    int cn_rc;
} fx;

static fx F;

static void on_open(net_frame_server *srv, uint64_t id, const char *peer, void *user)
{
    fx *f = user;
    (void)peer;
    f->opens++;
    f->cn_rc = net_frame_server_peer_cn(srv, id, f->cn, sizeof f->cn);
}

static void on_frame(net_frame_server *srv, uint64_t id, const uint8_t *d, size_t n, void *user)
{
    (void)user;
    net_frame_server_send(srv, id, d, n);
}

static const net_frame_callbacks CB = {on_open, on_frame, NULL, &F};

static void start(const char *name, const char *listen, int require, int with_crl)
{
    net_listener_config cfg;
    px_error e = {0};
    memset(&F, 0, sizeof F);
    nt_loop_init(&F.loop);
    net_listener_config_defaults(&cfg, name);
    snprintf(cfg.listen, sizeof cfg.listen, "%s", listen);
    snprintf(cfg.tls.cert, sizeof cfg.tls.cert, "%s", CERTS.server_cert);
    snprintf(cfg.tls.key, sizeof cfg.tls.key, "%s", CERTS.server_key);
    if (require) {
        snprintf(cfg.tls.ca, sizeof cfg.tls.ca, "%s", CERTS.ca);
        cfg.tls.require_client_cert = 1;
    }
    if (with_crl)
        snprintf(cfg.tls.crl, sizeof cfg.tls.crl, "%s", CERTS.crl);
    if (net_frame_server_new(F.loop.base, &cfg, &CB, &F.srv, &e) != PX_OK)
        fail_msg("server: %s", e.msg);
    nt_loop_start(&F.loop);
}

static void stop(void)
{
    nt_loop_stop(&F.loop);
    net_frame_server_free(F.srv);
    nt_loop_free(&F.loop);
}

static SSL_CTX *client_ctx(const char *ca, const char *cert, const char *key)
{
    net_tls_config t;
    SSL_CTX *ctx = NULL;
    px_error e = {0};
    memset(&t, 0, sizeof t);
    snprintf(t.ca, sizeof t.ca, "%s", ca);
    if (cert != NULL) {
        snprintf(t.cert, sizeof t.cert, "%s", cert);
        snprintf(t.key, sizeof t.key, "%s", key);
    }
    if (net_tls_client_ctx(&t, &ctx, &e) != PX_OK)
        fail_msg("client ctx: %s", e.msg);
    return ctx;
}

/* 1 if a TLS client on ctx gets an echo back from the server at host. */
static int echo_works(SSL_CTX *ctx, const char *host, px_error *e)
{
    net_client *c = NULL;
    uint8_t buf[16];
    size_t n = 0;
    int ok = net_client_connect(host, net_frame_server_port(F.srv), ctx, 3000, &c, e) == PX_OK &&
             net_client_send_frame(c, "ping", 4, e) == PX_OK &&
             net_client_recv_frame(c, buf, sizeof buf, &n, 3000, e) == PX_OK && n == 4 &&
             memcmp(buf, "ping", 4) == 0;
    net_client_close(c);
    return ok;
}

static void test_server_verified_by_client(void **state)
{
    SSL_CTX *good = client_ctx(CERTS.ca, NULL, NULL);
    SSL_CTX *other = client_ctx(CERTS.ca2, NULL, NULL);
    net_client *c = NULL;
    char cn[64];
    px_error e = {0};
    (void)state;
    start("tls_plain", "0.0.0.0:0", 0, 0);
    assert_true(echo_works(good, "127.0.0.1", &e));
    assert_int_equal(F.cn_rc, PX_ENOTFOUND); /* no client certificate asked for */
    assert_int_equal(net_client_connect("127.0.0.1", net_frame_server_port(F.srv), good, 3000, &c,
                                        &e),
                     PX_OK);
    assert_int_equal(net_client_peer_cn(c, cn, sizeof cn), PX_OK);
    assert_string_equal(cn, "localhost");
    net_client_close(c);
    /* a server certificate from an unknown CA, or for another name, is refused */
    assert_false(echo_works(other, "127.0.0.1", &e));
    assert_int_equal(e.code, PX_EPERM);
    assert_false(echo_works(good, "127.0.0.2", &e));
    assert_int_equal(e.code, PX_EPERM);
    stop();
    net_tls_ctx_free(good);
    net_tls_ctx_free(other);
}

static int two_tls_failures(void *arg)
{
    (void)arg;
    return nt_metric("possum_net_tls_handshake_failures_total", "listener=\"tls_mutual\"") >= 2;
}

static void test_mutual_tls(void **state)
{
    SSL_CTX *anon = client_ctx(CERTS.ca, NULL, NULL);
    SSL_CTX *rogue = client_ctx(CERTS.ca, CERTS.rogue_cert, CERTS.rogue_key);
    SSL_CTX *good = client_ctx(CERTS.ca, CERTS.client_cert, CERTS.client_key);
    SSL_CTX *revoked = client_ctx(CERTS.ca, CERTS.revoked_cert, CERTS.revoked_key);
    px_error e = {0};
    (void)state;
    start("tls_mutual", "127.0.0.1:0", 1, 0);
    assert_false(echo_works(anon, "127.0.0.1", &e));  /* no certificate */
    assert_false(echo_works(rogue, "127.0.0.1", &e)); /* certificate from another CA */
    assert_true(nt_wait_for(&F.loop, two_tls_failures, NULL, 3000));
    assert_int_equal(F.opens, 0);
    assert_true(echo_works(good, "127.0.0.1", &e));
    assert_int_equal(F.opens, 1);
    assert_int_equal(F.cn_rc, PX_OK);
    assert_string_equal(F.cn, "terminal-1");
    /* without a CRL the "revoked" certificate is just another valid one (see next test) */
    assert_true(echo_works(revoked, "127.0.0.1", &e));
    assert_string_equal(F.cn, "revoked");
    stop();
    net_tls_ctx_free(revoked);
    net_tls_ctx_free(anon);
    net_tls_ctx_free(rogue);
    net_tls_ctx_free(good);
}

static void test_revoked_by_crl(void **state)
{
    SSL_CTX *revoked = client_ctx(CERTS.ca, CERTS.revoked_cert, CERTS.revoked_key);
    SSL_CTX *good = client_ctx(CERTS.ca, CERTS.client_cert, CERTS.client_key);
    px_error e = {0};
    (void)state;
    start("tls_crl", "127.0.0.1:0", 1, 1);
    assert_false(echo_works(revoked, "127.0.0.1", &e));
    assert_int_equal(F.opens, 0);
    assert_true(echo_works(good, "127.0.0.1", &e));
    assert_string_equal(F.cn, "terminal-1");
    stop();
    net_tls_ctx_free(revoked);
    net_tls_ctx_free(good);
}

static void test_bad_config(void **state)
{
    net_tls_config t;
    SSL_CTX *ctx = NULL;
    px_error e = {0};
    (void)state;
    memset(&t, 0, sizeof t);
    assert_int_equal(net_tls_client_ctx(&t, &ctx, &e), PX_ECONFIG); /* no CA */
    snprintf(t.cert, sizeof t.cert, "%s", CERTS.server_cert);
    snprintf(t.key, sizeof t.key, "%s", CERTS.client_key); /* not the cert's key */
    assert_int_equal(net_tls_server_ctx(&t, &ctx, &e), PX_ECRYPTO);
    assert_non_null(strstr(e.msg, "client.key")); /* names the file */
    snprintf(t.key, sizeof t.key, "%s/missing.key", CERTS.dir);
    assert_int_equal(net_tls_server_ctx(&t, &ctx, &e), PX_ECRYPTO);
    assert_non_null(strstr(e.msg, "missing.key"));
    snprintf(t.key, sizeof t.key, "%s", CERTS.server_key);
    t.require_client_cert = 1;
    assert_int_equal(net_tls_server_ctx(&t, &ctx, &e), PX_ECONFIG); /* needs a CA */
    snprintf(t.ca, sizeof t.ca, "%s", CERTS.ca);
    snprintf(t.crl, sizeof t.crl, "%s", CERTS.ca); /* a certificate is not a CRL */
    assert_int_equal(net_tls_server_ctx(&t, &ctx, &e), PX_ECRYPTO);
    assert_null(ctx);
}

/* ---- a TLS link (async client) to the mutual-TLS server ---------------------------- */

typedef struct link_fx {
    net_link *link;
    int up;
    char got[16];
} link_fx;

static link_fx L;

static void link_state(net_link *l, net_link_state st, const char *why, void *user)
{
    (void)l;
    (void)why;
    ((link_fx *)user)->up = st == NET_LINK_UP;
}

static void link_frame(net_link *l, const uint8_t *d, size_t n, void *user)
{
    link_fx *f = user;
    (void)l;
    snprintf(f->got, sizeof f->got, "%.*s", (int)n, (const char *)d);
}

static void link_make(void *arg)
{
    net_link_config *cfg = arg;
    const net_link_callbacks cb = {link_frame, link_state, &L};
    px_error e = {0};
    if (net_link_new(F.loop.base, cfg, &cb, &L.link, &e) != PX_OK)
        fail_msg("link: %s", e.msg);
}

static int link_is_up(void *arg)
{
    (void)arg;
    return L.up;
}

static void link_send(void *arg)
{
    *(int *)arg = net_link_send(L.link, "over tls", 8);
}

static int link_got(void *arg)
{
    (void)arg;
    return strcmp(L.got, "over tls") == 0;
}

static void link_free(void *arg)
{
    (void)arg;
    net_link_free(L.link);
}

static void test_tls_link(void **state)
{
    net_link_config cfg;
    int rc = -1;
    (void)state;
    memset(&L, 0, sizeof L);
    start("tls_link", "127.0.0.1:0", 1, 1);
    net_link_config_defaults(&cfg, "tls_link_client");
    snprintf(cfg.connect, sizeof cfg.connect, "127.0.0.1:%d", net_frame_server_port(F.srv));
    snprintf(cfg.tls.ca, sizeof cfg.tls.ca, "%s", CERTS.ca);
    snprintf(cfg.tls.cert, sizeof cfg.tls.cert, "%s", CERTS.client_cert);
    snprintf(cfg.tls.key, sizeof cfg.tls.key, "%s", CERTS.client_key);
    nt_loop_call(&F.loop, link_make, &cfg);
    assert_true(nt_wait_for(&F.loop, link_is_up, NULL, 5000));
    nt_loop_call(&F.loop, link_send, &rc);
    assert_int_equal(rc, PX_OK);
    assert_true(nt_wait_for(&F.loop, link_got, NULL, 5000));
    assert_string_equal(F.cn, "terminal-1");
    nt_loop_call(&F.loop, link_free, NULL);
    stop();
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
        cmocka_unit_test(test_server_verified_by_client),
        cmocka_unit_test(test_mutual_tls),
        cmocka_unit_test(test_revoked_by_crl),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_tls_link),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    libevent_global_shutdown();
    return rc;
}
