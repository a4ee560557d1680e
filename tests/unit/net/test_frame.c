/*
 * test_frame.c: the framed TCP server and the blocking client over real sockets on
 * 127.0.0.1: round trips, oversize length prefixes, keep-alives, idle timeout, connection
 * limit, asynchronous replies by connection id, sends to gone connections, backpressure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "nettest.h"
#include "lib/time.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REPLY_BIG 32000

typedef struct fx {
    nt_loop loop;
    net_frame_server *srv;
    int opens, closes, frames;
    int last_reason;
    uint64_t remembered;
    int send_in_close_rc;
    size_t max_pending;
} fx;

static fx F;

typedef struct later {
    net_frame_server *srv;
    uint64_t id;
} later;

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
    later *l = arg;
    (void)fd;
    (void)what;
    net_frame_server_send(l->srv, l->id, "LATE", 4);
    free(l);
}

static void on_open(net_frame_server *srv, uint64_t id, const char *peer, void *user)
{
    fx *f = user;
    (void)srv;
    (void)id;
    assert_non_null(strstr(peer, "127.0.0.1:"));
    f->opens++;
}

static void on_frame(net_frame_server *srv, uint64_t id, const uint8_t *d, size_t n, void *user)
{
    fx *f = user;
    f->frames++;
    if (n >= 5 && memcmp(d, "LATER", 5) == 0) {
        const struct timeval tv = {0, 100000};
        later *l = malloc(sizeof *l);
        l->srv = srv;
        l->id = id;
        event_base_once(f->loop.base, -1, EV_TIMEOUT, later_cb, l, &tv);
    } else if (n >= 5 && memcmp(d, "CLOSE", 5) == 0) {
        net_frame_server_send(srv, id, "BYE", 3);
        net_frame_server_close_conn(srv, id);
        assert_int_equal(net_frame_server_send(srv, id, "X", 1), PX_ENOTFOUND);
    } else if (n >= 8 && memcmp(d, "REMEMBER", 8) == 0) {
        f->remembered = id;
        net_frame_server_send(srv, id, "OK", 2);
    } else if (n >= 5 && memcmp(d, "FLOOD", 5) == 0) {
        static uint8_t big[REPLY_BIG];
        size_t pending = 0;
        assert_int_equal(net_frame_server_send(srv, id, big, sizeof big), PX_OK);
        net_frame_server_pending(srv, id, &pending);
        if (pending > f->max_pending)
            f->max_pending = pending;
    } else {
        net_frame_server_send(srv, id, d, n); /* echo */
    }
}

static void on_close(net_frame_server *srv, uint64_t id, int reason, void *user)
{
    fx *f = user;
    f->closes++;
    f->last_reason = reason;
    if (id == f->remembered)
        f->send_in_close_rc = net_frame_server_send(srv, id, "X", 1);
}

static const net_frame_callbacks CB = {on_open, on_frame, on_close, &F};

static void start(const char *name, int64_t max_frame, int64_t idle_ms, int64_t max_conns,
                  int64_t max_output)
{
    net_listener_config cfg;
    px_error e = {0};
    memset(&F, 0, sizeof F);
    nt_loop_init(&F.loop);
    net_listener_config_defaults(&cfg, name);
    cfg.max_frame = max_frame;
    cfg.idle_timeout_ms = idle_ms;
    cfg.max_conns = max_conns;
    cfg.max_output = max_output;
    if (net_frame_server_new(F.loop.base, &cfg, &CB, &F.srv, &e) != PX_OK)
        fail_msg("server: %s", e.msg);
    assert_true(net_frame_server_port(F.srv) > 0);
    nt_loop_start(&F.loop);
}

static void stop(void)
{
    nt_loop_stop(&F.loop);
    net_frame_server_free(F.srv);
    nt_loop_free(&F.loop);
}

static net_client *dial(void)
{
    net_client *c = NULL;
    px_error e = {0};
    if (net_client_connect("127.0.0.1", net_frame_server_port(F.srv), NULL, 3000, &c, &e) != PX_OK)
        fail_msg("connect: %s", e.msg);
    return c;
}

static void roundtrip(net_client *c, const char *msg)
{
    uint8_t buf[256];
    size_t n;
    px_error e = {0};
    assert_int_equal(net_client_send_frame(c, msg, strlen(msg), &e), PX_OK);
    if (net_client_recv_frame(c, buf, sizeof buf, &n, 3000, &e) != PX_OK)
        fail_msg("recv: %s", e.msg);
    assert_int_equal(n, strlen(msg));
    assert_memory_equal(buf, msg, n);
}

/* 1 when the peer has closed c (recv fails with PX_ENET within the timeout). */
static int is_closed(net_client *c, int64_t timeout_ms)
{
    uint8_t buf[64];
    size_t n;
    return net_client_recv_frame(c, buf, sizeof buf, &n, timeout_ms, NULL) == PX_ENET;
}

static int no_conns(void *arg)
{
    (void)arg;
    return net_frame_server_conn_count(F.srv) == 0;
}

static void test_roundtrip(void **state)
{
    net_client *c;
    (void)state;
    start("t_round", 4096, 5000, 16, 65536);
    c = dial();
    roundtrip(c, "hello");
    roundtrip(c, "second frame");
    assert_int_equal(net_client_send_frame(c, "", 0, NULL), PX_OK); /* keep-alive */
    roundtrip(c, "after keep-alive");
    net_client_close(c);
    assert_true(nt_wait_for(&F.loop, no_conns, NULL, 3000));
    assert_int_equal(F.opens, 1);
    assert_int_equal(F.closes, 1);
    assert_int_equal(F.last_reason, NET_CLOSE_PEER);
    assert_int_equal(F.frames, 3);
    assert_int_equal(nt_metric("possum_net_frames_received_total", "listener=\"t_round\""), 3);
    stop();
}

static void test_oversize_refused_others_served(void **state)
{
    const uint8_t hdr[2] = {0x01, 0x00}; /* 256 > 100, and no body follows */
    net_client *bad, *good;
    (void)state;
    start("t_over", 100, 5000, 16, 65536);
    good = dial();
    roundtrip(good, "before");
    bad = dial();
    assert_int_equal(net_client_send_raw(bad, hdr, 2, NULL), PX_OK);
    assert_true(is_closed(bad, 3000)); /* closed on the prefix alone */
    net_client_close(bad);
    assert_int_equal(nt_metric("possum_net_frames_rejected_total",
                               "listener=\"t_over\",reason=\"oversize\""),
                     1);
    roundtrip(good, "still served");
    net_client_close(good);
    good = dial();
    roundtrip(good, "a new client too");
    net_client_close(good);
    assert_true(nt_wait_for(&F.loop, no_conns, NULL, 3000));
    assert_int_equal(nt_metric("possum_net_connections_closed_total",
                               "listener=\"t_over\",reason=\"oversize\""),
                     1);
    stop();
}

static void test_max_frame_exact(void **state)
{
    uint8_t big[100], buf[128];
    size_t n;
    net_client *c;
    (void)state;
    start("t_exact", 100, 5000, 16, 65536);
    memset(big, 'x', sizeof big);
    c = dial();
    assert_int_equal(net_client_send_frame(c, big, sizeof big, NULL), PX_OK);
    assert_int_equal(net_client_recv_frame(c, buf, sizeof buf, &n, 3000, NULL), PX_OK);
    assert_int_equal(n, 100);
    /* a receiver with too little room says so */
    assert_int_equal(net_client_send_frame(c, big, sizeof big, NULL), PX_OK);
    assert_int_equal(net_client_recv_frame(c, buf, 10, &n, 3000, NULL), PX_ETOOBIG);
    net_client_close(c);
    stop();
}

static void test_idle_timeout(void **state)
{
    net_client *c, *k;
    (void)state;
    start("t_idle", 4096, 300, 16, 65536);
    c = dial();
    k = dial();
    roundtrip(c, "x");
    roundtrip(k, "x");
    for (int i = 0; i < 8; i++) { /* k keeps itself alive with empty frames */
        usleep(100000);
        assert_int_equal(net_client_send_frame(k, "", 0, NULL), PX_OK);
    }
    assert_true(is_closed(c, 100)); /* c said nothing for 800 ms */
    roundtrip(k, "alive");
    net_client_close(c);
    net_client_close(k);
    assert_true(nt_metric("possum_net_connections_closed_total",
                          "listener=\"t_idle\",reason=\"idle\"") >= 1);
    stop();
}

static int two_conns(void *arg)
{
    (void)arg;
    return net_frame_server_conn_count(F.srv) == 1;
}

static void test_connection_limit(void **state)
{
    net_client *a, *b, *c;
    (void)state;
    start("t_limit", 4096, 5000, 2, 65536);
    a = dial();
    b = dial();
    roundtrip(a, "a");
    roundtrip(b, "b");
    c = dial(); /* the kernel accepts; the server refuses at once */
    assert_true(is_closed(c, 3000));
    net_client_close(c);
    assert_int_equal(nt_metric("possum_net_connections_refused_total",
                               "listener=\"t_limit\",reason=\"limit\""),
                     1);
    roundtrip(a, "a still served");
    net_client_close(b);
    assert_true(nt_wait_for(&F.loop, two_conns, NULL, 3000));
    c = dial();
    roundtrip(c, "room again");
    net_client_close(a);
    net_client_close(c);
    stop();
}

static void test_async_reply_and_close(void **state)
{
    uint8_t buf[64];
    size_t n;
    net_client *c;
    int64_t t0;
    (void)state;
    start("t_async", 4096, 5000, 16, 65536);
    c = dial();
    t0 = px_mono_ms();
    assert_int_equal(net_client_send_frame(c, "LATER", 5, NULL), PX_OK);
    assert_int_equal(net_client_recv_frame(c, buf, sizeof buf, &n, 3000, NULL), PX_OK);
    assert_true(px_mono_ms() - t0 >= 90);
    assert_memory_equal(buf, "LATE", 4);
    assert_int_equal(net_client_send_frame(c, "CLOSE", 5, NULL), PX_OK);
    assert_int_equal(net_client_recv_frame(c, buf, sizeof buf, &n, 3000, NULL), PX_OK);
    assert_memory_equal(buf, "BYE", 3); /* queued output is flushed before the close */
    assert_true(is_closed(c, 3000));
    net_client_close(c);
    assert_true(nt_wait_for(&F.loop, no_conns, NULL, 3000));
    assert_int_equal(F.last_reason, NET_CLOSE_LOCAL);
    stop();
}

static void send_remembered(void *arg)
{
    *(int *)arg = net_frame_server_send(F.srv, F.remembered, "late", 4);
}

static void test_send_to_gone_connection(void **state)
{
    uint8_t buf[16];
    size_t n;
    int rc = 0;
    net_client *c;
    (void)state;
    start("t_gone", 4096, 5000, 16, 65536);
    c = dial();
    assert_int_equal(net_client_send_frame(c, "REMEMBER", 8, NULL), PX_OK);
    assert_int_equal(net_client_recv_frame(c, buf, sizeof buf, &n, 3000, NULL), PX_OK);
    net_client_close(c);
    assert_true(nt_wait_for(&F.loop, no_conns, NULL, 3000));
    assert_int_equal(F.send_in_close_rc, PX_ENOTFOUND);
    nt_loop_call(&F.loop, send_remembered, &rc);
    assert_int_equal(rc, PX_ENOTFOUND);
    rc = 0;
    F.remembered = 12345; /* never issued */
    nt_loop_call(&F.loop, send_remembered, &rc);
    assert_int_equal(rc, PX_ENOTFOUND);
    stop();
}

static int paused(void *arg)
{
    (void)arg;
    return nt_metric("possum_net_backpressure_pauses_total", "listener=\"t_bp\"") >= 1;
}

static void test_backpressure(void **state)
{
    const int requests = 600; /* ~19 MB of replies to a client that does not read */
    static uint8_t buf[REPLY_BIG];
    size_t n;
    net_client *c;
    (void)state;
    start("t_bp", 65535, 10000, 16, 65536);
    c = dial();
    for (int i = 0; i < requests; i++)
        assert_int_equal(net_client_send_frame(c, "FLOOD", 5, NULL), PX_OK);
    assert_true(nt_wait_for(&F.loop, paused, NULL, 5000));
    usleep(200000);
    /* the server stopped reading: its queue stays near max_output, not 19 MB */
    assert_true(F.max_pending <= 65536 + REPLY_BIG + 2);
    assert_true(F.frames < requests);
    for (int i = 0; i < requests; i++) /* drain: reading resumes, every reply arrives */
        assert_int_equal(net_client_recv_frame(c, buf, sizeof buf, &n, 5000, NULL), PX_OK);
    assert_int_equal(F.frames, requests);
    assert_true(F.max_pending <= 65536 + REPLY_BIG + 2);
    net_client_close(c);
    stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_oversize_refused_others_served),
        cmocka_unit_test(test_max_frame_exact),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_connection_limit),
        cmocka_unit_test(test_async_reply_and_close),
        cmocka_unit_test(test_send_to_gone_connection),
        cmocka_unit_test(test_backpressure),
    };
    int rc;
    net_init(NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    libevent_global_shutdown();
    return rc;
}
