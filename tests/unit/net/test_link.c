/*
 * test_link.c: the asynchronous framed link (service-to-service client): up, request and
 * answer, refusal while down, reconnection after the peer restarts on the same port,
 * a bounded output queue, a peer that sends an oversize frame.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "nettest.h"

#include <event2/event.h>
#include <stdio.h>
#include <string.h>

typedef struct fx {
    nt_loop loop;
    net_frame_server *srv;
    int port;
    net_link *link;
    int ups, downs;
    net_link_state state;
    int answers;
    int rc;
    int oversize_reply; /* the server answers with a frame over the link's max_frame */
} fx;

static fx F;

static void on_frame(net_frame_server *srv, uint64_t id, const uint8_t *d, size_t n, void *user)
{
    static uint8_t big[200];
    (void)user;
    if (F.oversize_reply)
        net_frame_server_send(srv, id, big, sizeof big);
    else
        net_frame_server_send(srv, id, d, n);
}

static const net_frame_callbacks SCB = {NULL, on_frame, NULL, NULL};

static void server_up(void *arg)
{
    net_listener_config cfg;
    px_error e = {0};
    (void)arg;
    net_listener_config_defaults(&cfg, "link_peer");
    cfg.max_frame = 1000;
    snprintf(cfg.listen, sizeof cfg.listen, "127.0.0.1:%d", F.port);
    if (net_frame_server_new(F.loop.base, &cfg, &SCB, &F.srv, &e) != PX_OK)
        fail_msg("server: %s", e.msg);
    F.port = net_frame_server_port(F.srv);
}

static void server_down(void *arg)
{
    (void)arg;
    net_frame_server_free(F.srv);
    F.srv = NULL;
}

static void link_state(net_link *l, net_link_state st, const char *why, void *user)
{
    (void)l;
    (void)why;
    (void)user;
    F.state = st;
    F.ups += st == NET_LINK_UP;
    F.downs += st == NET_LINK_DOWN;
}

static void link_frame(net_link *l, const uint8_t *d, size_t n, void *user)
{
    (void)l;
    (void)user;
    if (n == 7 && memcmp(d, "request", 7) == 0)
        F.answers++;
}

static void link_make(void *arg)
{
    net_link_config cfg;
    const net_link_callbacks cb = {link_frame, link_state, NULL};
    px_error e = {0};
    (void)arg;
    net_link_config_defaults(&cfg, "link_test");
    snprintf(cfg.connect, sizeof cfg.connect, "127.0.0.1:%d", F.port);
    cfg.max_frame = 100;
    cfg.reconnect_min_ms = 20;
    cfg.reconnect_max_ms = 100;
    cfg.max_output = 2048;
    if (net_link_new(F.loop.base, &cfg, &cb, &F.link, &e) != PX_OK)
        fail_msg("link: %s", e.msg);
}

static void link_send(void *arg)
{
    (void)arg;
    F.rc = net_link_send(F.link, "request", 7);
}

static void link_fill(void *arg)
{
    static uint8_t chunk[100];
    int *refused = arg;
    *refused = 0;
    for (int i = 0; i < 100 && *refused == 0; i++) /* 10 KB into a 2 KB queue, in one go */
        if (net_link_send(F.link, chunk, sizeof chunk) == PX_ELIMIT)
            *refused = 1;
}

static void link_free(void *arg)
{
    (void)arg;
    net_link_free(F.link);
}

static int is_up(void *arg)
{
    (void)arg;
    return F.state == NET_LINK_UP;
}

static int is_down(void *arg)
{
    (void)arg;
    return F.state != NET_LINK_UP && F.downs > 0;
}

static int answered(void *arg)
{
    return F.answers >= *(int *)arg;
}

static void test_link_lifecycle(void **state)
{
    int want = 1, refused = 0;
    (void)state;
    memset(&F, 0, sizeof F);
    nt_loop_init(&F.loop);
    server_up(NULL);
    nt_loop_start(&F.loop);
    nt_loop_call(&F.loop, link_make, NULL);
    assert_true(nt_wait_for(&F.loop, is_up, NULL, 3000));
    nt_loop_call(&F.loop, link_send, NULL);
    assert_int_equal(F.rc, PX_OK);
    assert_true(nt_wait_for(&F.loop, answered, &want, 3000));

    nt_loop_call(&F.loop, server_down, NULL); /* the peer goes away */
    assert_true(nt_wait_for(&F.loop, is_down, NULL, 3000));
    nt_loop_call(&F.loop, link_send, NULL);
    assert_int_equal(F.rc, PX_ESTATE); /* nothing queued while down */

    nt_loop_call(&F.loop, server_up, NULL); /* back on the same port: the link returns */
    assert_true(nt_wait_for(&F.loop, is_up, NULL, 3000));
    assert_int_equal(F.ups, 2);
    nt_loop_call(&F.loop, link_send, NULL);
    assert_int_equal(F.rc, PX_OK);
    want = 2;
    assert_true(nt_wait_for(&F.loop, answered, &want, 3000));

    nt_loop_call(&F.loop, link_fill, &refused);
    assert_int_equal(refused, 1); /* the output queue is bounded */

    F.oversize_reply = 1; /* a peer that breaks the framing limit: the link drops it */
    F.downs = 0;
    nt_loop_call(&F.loop, link_send, NULL);
    assert_true(nt_wait_for(&F.loop, is_down, NULL, 3000));
    F.oversize_reply = 0;
    assert_true(nt_wait_for(&F.loop, is_up, NULL, 3000));
    assert_true(nt_metric("possum_net_link_failures_total", "link=\"link_test\"") >= 2);

    nt_loop_call(&F.loop, link_free, NULL);
    nt_loop_call(&F.loop, server_down, NULL);
    nt_loop_free(&F.loop);
}

static void test_link_bad_config(void **state)
{
    net_link_config cfg;
    net_link *l = NULL;
    struct event_base *base = NULL;
    px_error e = {0};
    (void)state;
    assert_int_equal(net_base_new(&base, &e), PX_OK);
    net_link_config_defaults(&cfg, "bad");
    assert_int_equal(net_link_new(base, &cfg, NULL, &l, &e), PX_ECONFIG); /* no address */
    snprintf(cfg.connect, sizeof cfg.connect, "127.0.0.1:1");
    cfg.reconnect_min_ms = 500;
    cfg.reconnect_max_ms = 100;
    assert_int_equal(net_link_new(base, &cfg, NULL, &l, &e), PX_ECONFIG);
    assert_null(l);
    net_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_link_lifecycle),
        cmocka_unit_test(test_link_bad_config),
    };
    int rc;
    net_init(NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    libevent_global_shutdown();
    return rc;
}
