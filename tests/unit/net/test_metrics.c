/* test_metrics.c: the registry and its Prometheus text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "net/metrics.h"

#include <stdio.h>
#include <string.h>

static void test_counter_gauge_render(void **state)
{
    net_metric *a = net_metric_counter("t_requests_total", "Requests", "code=\"200\"");
    net_metric *b = net_metric_counter("t_requests_total", "Requests", "code=\"500\"");
    net_metric *g = net_metric_gauge("t_open", "Open things", NULL);
    px_buf out;
    int64_t v = 0;
    (void)state;
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_equal(a, net_metric_counter("t_requests_total", "Requests", "code=\"200\""));
    net_metric_add(a, 3);
    net_metric_add(b, 1);
    net_metric_set(g, 7);
    net_metric_set(g, 5);
    assert_int_equal(net_metric_value(a), 3);
    assert_int_equal(net_metrics_lookup("t_open", NULL, &v), PX_OK);
    assert_int_equal(v, 5);
    assert_int_equal(net_metrics_lookup("t_open", "x=\"y\"", &v), PX_ENOTFOUND);
    px_buf_init(&out, 65536);
    assert_int_equal(net_metrics_render(&out), PX_OK);
    assert_non_null(strstr(px_buf_str(&out),
                           "# HELP t_requests_total Requests\n# TYPE t_requests_total counter\n"
                           "t_requests_total{code=\"200\"} 3\nt_requests_total{code=\"500\"} 1\n"));
    assert_non_null(strstr(px_buf_str(&out), "# TYPE t_open gauge\nt_open 5\n"));
    /* HELP once per name */
    assert_null(strstr(strstr(px_buf_str(&out), "# HELP t_requests_total") + 1,
                       "# HELP t_requests_total"));
    px_buf_free(&out);
}

static void test_bad_registrations(void **state)
{
    (void)state;
    assert_null(net_metric_counter("9bad", "x", NULL));
    assert_null(net_metric_counter("bad name", "x", NULL));
    assert_null(net_metric_counter("ok_name", "new\nline", NULL));
    assert_non_null(net_metric_counter("t_kind", "x", NULL));
    assert_null(net_metric_gauge("t_kind", "x", "a=\"b\"")); /* same name, other type */
    net_metric_add(NULL, 1);                                 /* NULL-safe */
    net_metric_set(NULL, 1);
    assert_int_equal(net_metric_value(NULL), 0);
}

static void test_full_registry_and_small_buffer(void **state)
{
    char name[32];
    px_buf out;
    int made = 0;
    (void)state;
    for (int i = 0; i < PX_METRICS_MAX + 10; i++) {
        snprintf(name, sizeof name, "t_fill_%d", i);
        made += net_metric_counter(name, "fill", NULL) != NULL;
    }
    assert_true(made < PX_METRICS_MAX + 10); /* refused past the ceiling, no crash */
    px_buf_init(&out, 64);
    assert_int_equal(net_metrics_render(&out), PX_ETOOBIG);
    px_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_gauge_render),
        cmocka_unit_test(test_bad_registrations),
        cmocka_unit_test(test_full_registry_and_small_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
