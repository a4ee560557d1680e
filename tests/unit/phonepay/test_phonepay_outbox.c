/* test_phonepay_outbox.c: notifications leave through the outbox on an event loop: SMS as
 * Kannel's sendsms GET, the webhook as a signed POST; retries with backoff, then failure;
 * an OTP's text is wiped once it is final. A fake gateway (net_http_server) takes the place
 * of Kannel here; tests/e2e/phonepay runs the real one. */
#include "pp_fixture.h"

#include <event2/event.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hex.h"
#include "lib/time.h"
#include "net/http.h"

#define PAYEE "13812345678"
#define CARD "6217000000000000004"

typedef struct gateway {
    net_http_server *srv;
    int sms_fail_first; /* answer 503 to this many SMS requests */
    int sms_always_fail;
    int sms_requests, hooks;
    char to[16], text[512], user[32], pass[32], coding[4], charset[16];
    char hook_body[1024], hook_sig[80];
} gateway;

static gateway gw;
static int gw_port;

static void on_sms(net_http_req *req, void *user)
{
    gateway *g = user;
    g->sms_requests++;
    net_http_query(req, "to", g->to, sizeof g->to);
    net_http_query(req, "text", g->text, sizeof g->text);
    net_http_query(req, "username", g->user, sizeof g->user);
    net_http_query(req, "password", g->pass, sizeof g->pass);
    net_http_query(req, "coding", g->coding, sizeof g->coding);
    net_http_query(req, "charset", g->charset, sizeof g->charset);
    if (g->sms_always_fail || g->sms_requests <= g->sms_fail_first) {
        net_http_reply(req, 503, "text/plain", "busy", 4);
        return;
    }
    net_http_reply(req, 202, "text/plain", "0: Accepted for delivery", 24);
}

static void on_hook(net_http_req *req, void *user)
{
    gateway *g = user;
    size_t n;
    const uint8_t *b = net_http_body(req, &n);
    const char *sig = net_http_header(req, "X-Possum-Signature");
    g->hooks++;
    snprintf(g->hook_body, sizeof g->hook_body, "%.*s", (int)n, (const char *)b);
    px_strlcpy(g->hook_sig, sig ? sig : "", sizeof g->hook_sig);
    net_http_reply_json(req, 200, NULL);
}

static void tune(phonepay_config *c)
{
    snprintf(c->sms_url, sizeof c->sms_url, "http://127.0.0.1:%d/cgi-bin/sendsms", gw_port);
    snprintf(c->webhook_url, sizeof c->webhook_url, "http://127.0.0.1:%d/hook", gw_port);
    c->outbox_interval_ms = 20;
    c->outbox_backoff_min_ms = 20;
    c->outbox_backoff_max_ms = 40;
    c->outbox_attempts_max = 3;
    c->notify_timeout_ms = 2000;
}

typedef struct ctx {
    struct event_base *base;
    pp_fixture f;
    phonepay_outbox *ob;
} ctx;

static int setup(void **state)
{
    static ctx c;
    net_listener_config lc;
    px_error e = {0};
    memset(&gw, 0, sizeof gw);
    memset(&c, 0, sizeof c);
    assert_int_equal(net_init(&e), PX_OK);
    assert_int_equal(net_base_new(&c.base, &e), PX_OK);
    net_listener_config_defaults(&lc, "gateway");
    assert_int_equal(net_http_server_new(c.base, &lc, &gw.srv, &e), PX_OK);
    assert_int_equal(net_http_route(gw.srv, "GET", "/cgi-bin/sendsms", on_sms, &gw, &e), PX_OK);
    assert_int_equal(net_http_route(gw.srv, "POST", "/hook", on_hook, &gw, &e), PX_OK);
    gw_port = net_http_server_port(gw.srv);
    setenv("POSSUM_SMS_PASSWORD", "kannel-pw", 1);
    setenv("POSSUM_PHONEPAY_WEBHOOK_SECRET", "hook-secret", 1);
    pp_setup(&c.f, "phonepay-outbox", tune);
    assert_int_equal(phonepay_outbox_new(c.f.pp, c.base, &c.ob, &e), PX_OK);
    c.f.pp->outbox = c.ob;
    *state = &c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    phonepay_outbox_free(c->ob);
    pp_teardown(&c->f);
    net_http_server_free(gw.srv);
    event_base_free(c->base);
    return 0;
}

/* Run the loop until sql counts want rows, or 5 s. */
static void run_until(ctx *c, const char *sql, int64_t want)
{
    int64_t end = px_mono_ms() + 5000;
    while (pp_int(&c->f, sql) != want) {
        struct timeval tv = {0, 5000};
        if (px_mono_ms() > end)
            fail_msg("timed out waiting for %s = %lld (have %lld)", sql, (long long)want,
                     (long long)pp_int(&c->f, sql));
        event_base_loopexit(c->base, &tv);
        event_base_dispatch(c->base);
    }
}

static void register_payee(ctx *c)
{
    phonepay_payee_view v;
    px_error e = {0};
    assert_int_equal(phonepay_payee_register(c->f.pp, "张三丰", PAYEE, CARD, &v, &e), PX_OK);
}

static void test_sms_and_webhook_delivered(void **state)
{
    ctx *c = *state;
    char code[7], sig[80];
    unsigned char mac[32];
    unsigned int n = 0;
    register_payee(c);
    pp_last_code(&c->f, PAYEE, code);
    run_until(c, "SELECT COUNT(*) FROM phonepay_outbox WHERE state = 'sent'", 2);
    assert_int_equal(gw.sms_requests, 1);
    assert_string_equal(gw.to, PAYEE);
    assert_non_null(strstr(gw.text, code));
    assert_non_null(strstr(gw.text, "验证码"));
    assert_string_equal(gw.user, "possum");
    assert_string_equal(gw.pass, "kannel-pw");
    assert_string_equal(gw.coding, "2");
    assert_string_equal(gw.charset, "UTF-8");
    assert_int_equal(gw.hooks, 1);
    assert_non_null(strstr(gw.hook_body, "\"event\":\"otp\""));
    assert_non_null(strstr(gw.hook_body, "\"to\":\"" PAYEE "\""));
    HMAC(EVP_sha256(), "hook-secret", 11, (const unsigned char *)gw.hook_body, strlen(gw.hook_body),
         mac, &n);
    memcpy(sig, "sha256=", 7);
    px_hex_encode(mac, n, sig + 7);
    assert_string_equal(gw.hook_sig, sig);
    /* the code does not stay in the database once delivered */
    assert_int_equal(pp_int(&c->f, "SELECT COUNT(*) FROM phonepay_outbox WHERE body <> ''"), 0);
    assert_int_equal(pp_int(&c->f, "SELECT MIN(attempts) FROM phonepay_outbox"), 1);
}

static void test_retry_then_delivered(void **state)
{
    ctx *c = *state;
    gw.sms_fail_first = 2;
    register_payee(c);
    run_until(c, "SELECT COUNT(*) FROM phonepay_outbox WHERE channel = 'sms' AND state = 'sent'",
              1);
    assert_int_equal(gw.sms_requests, 3);
    assert_int_equal(pp_int(&c->f, "SELECT attempts FROM phonepay_outbox WHERE channel = 'sms'"),
                     3);
}

static void test_gives_up(void **state)
{
    ctx *c = *state;
    gw.sms_always_fail = 1;
    register_payee(c);
    run_until(c, "SELECT COUNT(*) FROM phonepay_outbox WHERE channel = 'sms' AND state = 'failed'",
              1);
    assert_int_equal(gw.sms_requests, 3);
    assert_int_equal(pp_int(&c->f, "SELECT COUNT(*) FROM phonepay_outbox WHERE channel = 'sms' AND "
                                   "last_error = 'HTTP 503' AND body = ''"),
                     1);
}

/* Nothing is lost: an item queued while no deliverer runs goes out when one starts, and one
 * whose node died mid-send (claimed, lease running) goes out after the lease. */
static void test_survives_restart(void **state)
{
    ctx *c = *state;
    px_error e = {0};
    phonepay_outbox_free(c->ob);
    c->ob = NULL;
    c->f.pp->outbox = NULL;
    register_payee(c);
    pp_exec(&c->f, "UPDATE phonepay_outbox SET attempts = 1, next_ms = next_ms + 300 "
                   "WHERE channel = 'sms'"); /* as a claim that never finished */
    assert_int_equal(phonepay_outbox_new(c->f.pp, c->base, &c->ob, &e), PX_OK);
    c->f.pp->outbox = c->ob;
    run_until(c, "SELECT COUNT(*) FROM phonepay_outbox WHERE state = 'sent'", 2);
    assert_int_equal(gw.sms_requests, 1);
    assert_int_equal(pp_int(&c->f, "SELECT attempts FROM phonepay_outbox WHERE channel = 'sms'"),
                     2);
}

/* A row another process queued (no kick here): the timer finds it. */
static void test_timer_finds_foreign_rows(void **state)
{
    ctx *c = *state;
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO phonepay_outbox (id, channel, event, recipient, body, "
             "state, next_ms, created_ms) VALUES ('debit:1:sms', 'sms', 'debit', "
             "'" PAYEE "', 'paid', 'pending', %lld, %lld)",
             (long long)px_now_ms() + 150, (long long)px_now_ms());
    run_until(c, "SELECT COUNT(*) FROM phonepay_outbox", 0);
    {
        struct timeval tv = {0, 300000};
        event_base_loopexit(c->base, &tv);
        event_base_dispatch(c->base); /* the first passes find nothing */
    }
    {
        store *other = NULL; /* another node or process */
        px_error e = {0};
        assert_int_equal(store_open(&c->f.scfg, &other, &e), PX_OK);
        assert_int_equal(store_exec(other, sql, &e), PX_OK);
        store_close(other);
    }
    run_until(c, "SELECT COUNT(*) FROM phonepay_outbox WHERE state = 'sent'", 1);
    assert_string_equal(gw.text, "paid");
}

static void unreachable(phonepay_config *cfg)
{
    tune(cfg);
    px_strlcpy(cfg->sms_url, "http://127.0.0.1:9/cgi-bin/sendsms", sizeof cfg->sms_url);
    cfg->webhook_url[0] = 0;
}

static void test_gateway_down(void **state)
{
    ctx *c = *state;
    pp_fixture g;
    phonepay_outbox *ob;
    phonepay_payee_view v;
    px_error e = {0};
    int64_t end = px_mono_ms() + 5000;
    pp_setup(&g, "phonepay-outbox-down", unreachable);
    assert_int_equal(phonepay_outbox_new(g.pp, c->base, &ob, &e), PX_OK);
    g.pp->outbox = ob;
    assert_int_equal(phonepay_payee_register(g.pp, "李四", PAYEE, CARD, &v, &e), PX_OK);
    while (pp_int(&g, "SELECT COUNT(*) FROM phonepay_outbox WHERE state = 'failed'") != 1) {
        struct timeval tv = {0, 5000};
        if (px_mono_ms() > end)
            fail_msg("never gave up");
        event_base_loopexit(c->base, &tv);
        event_base_dispatch(c->base);
    }
    assert_int_equal(pp_int(&g, "SELECT attempts FROM phonepay_outbox"), 3);
    phonepay_outbox_free(ob);
    pp_teardown(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sms_and_webhook_delivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_then_delivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gives_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_survives_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gateway_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_finds_foreign_rows, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
