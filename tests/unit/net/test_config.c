/* test_config.c: binding listener and link sections from the INI file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "net/net.h"

#include <string.h>

static int bind_listener(const char *text, const char *prefix, net_listener_config *out,
                         px_error *e)
{
    px_config *c = NULL;
    int rc = px_config_load_string(text, "etc/possum.ini", &c, e);
    if (rc == PX_OK)
        rc = net_listener_config_bind(c, "switch", prefix, out, e);
    px_config_free(c);
    return rc;
}

static void test_listener_defaults_and_keys(void **state)
{
    net_listener_config l;
    px_error e = {0};
    (void)state;
    assert_int_equal(bind_listener("[switch]\n", NULL, &l, &e), PX_OK);
    assert_string_equal(l.name, "switch");
    assert_string_equal(l.listen, "127.0.0.1:0");
    assert_int_equal(l.max_frame, PX_FRAME_MAX_DEFAULT);
    assert_int_equal(l.max_conns, PX_CONN_MAX_DEFAULT);
    assert_int_equal(l.tls.cert[0], 0);
    assert_int_equal(bind_listener("[switch]\nadmin_listen = 0.0.0.0:8443\nadmin_max_frame = 2048\n"
                                   "admin_max_connections = 10\nadmin_idle_timeout_ms = 500\n"
                                   "admin_tls_cert = certs/s.pem\nadmin_tls_key = /abs/s.key\n"
                                   "admin_tls_ca = ca.pem\nadmin_tls_crl = crl.pem\n"
                                   "admin_tls_require_client_cert = true\n",
                                   "admin_", &l, &e),
                     PX_OK);
    assert_string_equal(l.name, "switch.admin");
    assert_string_equal(l.listen, "0.0.0.0:8443");
    assert_int_equal(l.max_frame, 2048);
    assert_int_equal(l.max_conns, 10);
    assert_int_equal(l.idle_timeout_ms, 500);
    assert_string_equal(l.tls.cert, "etc/certs/s.pem"); /* relative to the config file */
    assert_string_equal(l.tls.key, "/abs/s.key");
    assert_int_equal(l.tls.require_client_cert, 1);
}

static void test_listener_errors(void **state)
{
    net_listener_config l;
    px_error e = {0};
    (void)state;
    assert_int_not_equal(bind_listener("[switch]\nmax_frame = 70000\n", NULL, &l, &e), PX_OK);
    assert_non_null(strstr(e.msg, "max_frame"));
    assert_int_not_equal(bind_listener("[switch]\nlisten = nowhere\n", NULL, &l, &e), PX_OK);
    assert_int_equal(bind_listener("[switch]\ntls_cert = a.pem\n", NULL, &l, &e), PX_ECONFIG);
    assert_non_null(strstr(e.msg, "tls_key"));
    assert_int_equal(bind_listener("[switch]\ntls_cert = a\ntls_key = b\n"
                                   "tls_require_client_cert = yes\n",
                                   NULL, &l, &e),
                     PX_ECONFIG);
    assert_non_null(strstr(e.msg, "tls_ca"));
}

static void test_link_bind(void **state)
{
    net_link_config k;
    px_config *c = NULL;
    px_error e = {0};
    (void)state;
    assert_int_equal(
        px_config_load_string("[switch]\nissuer_connect = 10.0.0.5:7000\n"
                              "issuer_tls_ca = ca.pem\nissuer_reconnect_max_ms = 500\n",
                              "etc/possum.ini", &c, &e),
        PX_OK);
    assert_int_equal(net_link_config_bind(c, "switch", "issuer_", &k, &e), PX_OK);
    assert_string_equal(k.name, "switch.issuer");
    assert_string_equal(k.connect, "10.0.0.5:7000");
    assert_string_equal(k.tls.ca, "etc/ca.pem");
    assert_int_equal(k.reconnect_max_ms, 500);
    assert_int_equal(net_link_config_bind(c, "switch", "acquirer_", &k, &e),
                     PX_ECONFIG); /* connect is required */
    px_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listener_defaults_and_keys),
        cmocka_unit_test(test_listener_errors),
        cmocka_unit_test(test_link_bind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
