/* test_pki_https.c: the blocking HTTPS client against possum's own HTTP server over mutual
 * TLS with certificates from the CA: JSON both ways, keep-alive, the server's CN, error
 * replies, and refusals: a revoked client, a client from another CA, a server from another
 * CA, a server name that does not match, a server that is down. */
#include "pkitest.h"
#include "pki/https.h"
#include "lib/log.h"
#include "net/http.h"
#include "net/net.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct srv {
    struct event_base *base;
    struct event *keep;
    net_http_server *http;
    pthread_t thread;
    int port;
    int calls;
} srv;

static void on_echo(net_http_req *req, void *user)
{
    srv *s = user;
    json_t *in = NULL, *out;
    char cn[PX_TLS_NAME_MAX] = "";
    px_error e = {0};
    s->calls++;
    (void)net_http_peer_cn(req, cn, sizeof cn);
    if (net_http_body_json(req, &in, &e) != PX_OK) {
        net_http_reply_error(req, 400, "bad_json", "%s", e.msg);
        return;
    }
    out = json_pack("{s:s, s:O}", "client", cn, "echo", in);
    json_decref(in);
    net_http_reply_json(req, 200, out);
}

static void on_refuse(net_http_req *req, void *user)
{
    (void)user;
    net_http_reply_error(req, 409, "conflict", "serial %s already taken", "PP1");
}

static void keep_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void *run(void *arg)
{
    srv *s = arg;
    event_base_dispatch(s->base);
    return NULL;
}

static void stop_cb(void *arg)
{
    srv *s = arg;
    net_http_server_free(s->http);
    s->http = NULL;
    event_del(s->keep);
    event_base_loopbreak(s->base);
}

static void srv_start(srv *s, const pki_fixture *f, const char *cert, const char *key, int with_crl)
{
    net_listener_config cfg;
    struct timeval tv = {3600, 0};
    px_error e = {0};
    memset(s, 0, sizeof *s);
    assert_int_equal(net_init(&e), PX_OK);
    assert_int_equal(net_base_new(&s->base, &e), PX_OK);
    s->keep = event_new(s->base, -1, EV_PERSIST, keep_cb, NULL);
    event_add(s->keep, &tv);
    net_listener_config_defaults(&cfg, "pkitest");
    snprintf(cfg.tls.cert, sizeof cfg.tls.cert, "%s", cert);
    snprintf(cfg.tls.key, sizeof cfg.tls.key, "%s", key);
    snprintf(cfg.tls.ca, sizeof cfg.tls.ca, "%s/ca.crt", f->ca_dir);
    if (with_crl)
        snprintf(cfg.tls.crl, sizeof cfg.tls.crl, "%s/crl.pem", f->ca_dir);
    cfg.tls.require_client_cert = 1;
    if (net_http_server_new(s->base, &cfg, &s->http, &e) != PX_OK)
        fail_msg("server: %s", e.msg);
    assert_int_equal(net_http_route(s->http, "POST", "/v1/echo", on_echo, s, &e), PX_OK);
    assert_int_equal(net_http_route(s->http, "POST", "/v1/refuse", on_refuse, s, &e), PX_OK);
    s->port = net_http_server_port(s->http);
    pthread_create(&s->thread, NULL, run, s);
}

static void srv_stop(srv *s)
{
    net_post(s->base, stop_cb, s);
    pthread_join(s->thread, NULL);
    event_free(s->keep);
    net_base_free(s->base);
}

/* Write a PEM into f's dir as name. */
static void put(const pki_fixture *f, const char *name, const char *pem, char *path, size_t n)
{
    px_error e = {0};
    pt_path(f, name, path, n);
    assert_int_equal(pki_write_file(path, pem, strlen(pem), 0600, &e), PX_OK);
}

typedef struct https_fixture {
    pki_fixture pf;
    char srv_cert[PX_PATH_MAX], srv_key[PX_PATH_MAX];
    char op_cert[PX_PATH_MAX], op_key[PX_PATH_MAX];
    pki_cert_info op;
} https_fixture;

static int setup(void **state)
{
    https_fixture *f = calloc(1, sizeof *f);
    char *c, *k;
    px_log_setup(PX_LOG_WARN, PX_LOG_TEXT, stderr);
    pt_setup(&f->pf, "pkihttps");
    pt_issue(&f->pf, PKI_ROLE_MTMS, PKI_PURPOSE_TLS, "factory", &c, &k, NULL);
    put(&f->pf, "mtms.crt", c, f->srv_cert, sizeof f->srv_cert);
    put(&f->pf, "mtms.key", k, f->srv_key, sizeof f->srv_key);
    free(c);
    free(k);
    pt_issue(&f->pf, PKI_ROLE_OPERATOR, PKI_PURPOSE_TLS, "alice", &c, &k, &f->op);
    put(&f->pf, "op.crt", c, f->op_cert, sizeof f->op_cert);
    put(&f->pf, "op.key", k, f->op_key, sizeof f->op_key);
    free(c);
    free(k);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    https_fixture *f = *state;
    pt_teardown(&f->pf);
    free(f);
    return 0;
}

static void client_tls(const https_fixture *f, net_tls_config *t, const char *cert, const char *key)
{
    memset(t, 0, sizeof *t);
    snprintf(t->ca, sizeof t->ca, "%s/ca.crt", f->pf.ca_dir);
    snprintf(t->crl, sizeof t->crl, "%s/crl.pem", f->pf.ca_dir);
    if (cert != NULL) {
        snprintf(t->cert, sizeof t->cert, "%s", cert);
        snprintf(t->key, sizeof t->key, "%s", key);
    }
}

static void test_round_trip_keepalive(void **state)
{
    https_fixture *f = *state;
    srv s;
    net_tls_config t;
    pki_https *c = NULL;
    char url[64];
    json_t *body = json_pack("{s:s}", "serial", "PP10000001"), *reply = NULL;
    long status = 0;
    px_error e = {0};
    srv_start(&s, &f->pf, f->srv_cert, f->srv_key, 1);
    client_tls(f, &t, f->op_cert, f->op_key);
    snprintf(url, sizeof url, "https://127.0.0.1:%d/", s.port);
    assert_int_equal(pki_https_open(url, &t, 5000, &c, &e), PX_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pki_https_call(c, "POST", "/v1/echo", body, &status, &reply, &e), PX_OK);
        assert_int_equal(status, 200);
        assert_string_equal(json_string_value(json_object_get(reply, "client")), "operator:alice");
        assert_string_equal(json_string_value(json_object_get(json_object_get(reply, "echo"),
                                                              "serial")),
                            "PP10000001");
        json_decref(reply);
    }
    assert_string_equal(pki_https_peer_cn(c), "mtms:factory");
    assert_int_equal(pki_https_call(c, "POST", "/v1/refuse", body, &status, &reply, &e), PX_OK);
    assert_int_equal(status, 409);
    assert_string_equal(pki_https_error_message(reply, "?"), "serial PP1 already taken");
    json_decref(reply);
    assert_int_equal(pki_https_call(c, "GET", "/v1/nothing", NULL, &status, &reply, &e), PX_OK);
    assert_int_equal(status, 404);
    json_decref(reply);
    assert_int_equal(pki_https_call(c, "GET", "no slash", NULL, &status, &reply, &e), PX_EINVAL);
    pki_https_close(c);
    json_decref(body);
    srv_stop(&s);
    assert_int_equal(s.calls, 3);
}

static void test_refusals(void **state)
{
    https_fixture *f = *state;
    srv s;
    net_tls_config t;
    pki_https *c = NULL;
    char url[64], rogue_cert[PX_PATH_MAX], rogue_key[PX_PATH_MAX], *rc_, *rk;
    json_t *reply = NULL;
    long status = 0;
    size_t n = 0;
    px_error e = {0};
    pki_fixture other;
    /* a client certificate from another CA */
    pt_setup(&other, "pkihttps2");
    pt_issue(&other, PKI_ROLE_OPERATOR, PKI_PURPOSE_TLS, "alice", &rc_, &rk, NULL);
    put(&f->pf, "rogue.crt", rc_, rogue_cert, sizeof rogue_cert);
    put(&f->pf, "rogue.key", rk, rogue_key, sizeof rogue_key);
    free(rc_);
    free(rk);
    srv_start(&s, &f->pf, f->srv_cert, f->srv_key, 1);
    snprintf(url, sizeof url, "https://127.0.0.1:%d", s.port);
    client_tls(f, &t, rogue_cert, rogue_key);
    assert_int_equal(pki_https_open(url, &t, 5000, &c, &e), PX_OK);
    assert_int_not_equal(pki_https_call(c, "POST", "/v1/echo", NULL, &status, &reply, &e), PX_OK);
    assert_non_null(strstr(e.msg, "127.0.0.1"));
    pki_https_close(c);
    /* without a client certificate */
    client_tls(f, &t, NULL, NULL);
    assert_int_equal(pki_https_open(url, &t, 5000, &c, &e), PX_OK);
    assert_int_not_equal(pki_https_call(c, "POST", "/v1/echo", NULL, &status, &reply, &e), PX_OK);
    pki_https_close(c);
    /* a server whose certificate is from another CA: the client refuses it */
    snprintf(t.ca, sizeof t.ca, "%s/ca.crt", other.ca_dir);
    t.crl[0] = 0;
    assert_int_equal(pki_https_open(url, &t, 5000, &c, &e), PX_OK);
    assert_int_equal(pki_https_call(c, "POST", "/v1/echo", NULL, &status, &reply, &e), PX_EPERM);
    pki_https_close(c);
    /* a name the server's certificate does not carry */
    client_tls(f, &t, f->op_cert, f->op_key);
    snprintf(url, sizeof url, "https://localhost:%d", s.port);
    assert_int_equal(pki_https_open(url, &t, 5000, &c, &e), PX_OK);
    assert_int_not_equal(pki_https_call(c, "POST", "/v1/echo", NULL, &status, &reply, &e), PX_OK);
    pki_https_close(c);
    srv_stop(&s);
    /* revoked, then the server restarted with the new CRL */
    assert_int_equal(pki_ca_revoke(f->pf.ca, f->op.serial, NULL, "keyCompromise", 30, &n, &e),
                     PX_OK);
    srv_start(&s, &f->pf, f->srv_cert, f->srv_key, 1);
    snprintf(url, sizeof url, "https://127.0.0.1:%d", s.port);
    assert_int_equal(pki_https_open(url, &t, 5000, &c, &e), PX_OK);
    assert_int_not_equal(pki_https_call(c, "POST", "/v1/echo", NULL, &status, &reply, &e), PX_OK);
    assert_non_null(strstr(e.msg, "certificate revoked"));
    pki_https_close(c);
    srv_stop(&s);
    assert_int_equal(s.calls, 0);
    /* nobody there */
    assert_int_equal(pki_https_open(url, &t, 2000, &c, &e), PX_OK);
    assert_int_equal(pki_https_call(c, "POST", "/v1/echo", NULL, &status, &reply, &e), PX_ENET);
    pki_https_close(c);
    /* bad URLs */
    assert_int_equal(pki_https_open("ftp://x:1", &t, 1000, &c, &e), PX_EINVAL);
    assert_int_equal(pki_https_open("https://x", &t, 1000, &c, &e), PX_EINVAL);
    assert_int_equal(pki_https_open("https://:99", &t, 1000, &c, &e), PX_EINVAL);
    t.ca[0] = 0;
    assert_int_equal(pki_https_open("https://x:1", &t, 1000, &c, &e), PX_ECONFIG);
    pt_teardown(&other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
