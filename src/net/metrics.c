/*
 * metrics.c: the registry behind metrics.h. Series live in a fixed array that only grows
 * (under a mutex); the count is published with release semantics so a renderer that reads
 * it with acquire sees complete entries. Values are relaxed atomics.
 */
#include "net/metrics.h"
#include "lib/err.h"
#include "lib/limits.h"
#include "lib/log.h"
#include "lib/str.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define METRIC_NAME_MAX 96
#define METRIC_HELP_MAX 160
#define METRIC_LABELS_MAX 160

struct net_metric {
    char name[METRIC_NAME_MAX];
    char help[METRIC_HELP_MAX];
    char labels[METRIC_LABELS_MAX];
    net_metric_type type;
    _Atomic int64_t value;
};

static net_metric g_metrics[PX_METRICS_MAX];
static _Atomic size_t g_count;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_full_logged;

static int name_is_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= METRIC_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return 0;
    }
    return 1;
}

static int text_is_valid(const char *s, size_t max)
{
    size_t n = strlen(s);
    return n < max && strchr(s, '\n') == NULL && strchr(s, '\\') == NULL;
}

/* Find (name, labels); with type_clash set when the name exists with another type. */
static net_metric *find_locked(const char *name, const char *labels, net_metric_type type,
                               int *type_clash)
{
    size_t n = atomic_load_explicit(&g_count, memory_order_relaxed);
    *type_clash = 0;
    for (size_t i = 0; i < n; i++) {
        net_metric *m = &g_metrics[i];
        if (strcmp(m->name, name) != 0)
            continue;
        if (m->type != type)
            *type_clash = 1;
        else if (strcmp(m->labels, labels) == 0)
            return m;
    }
    return NULL;
}

static net_metric *metric_register(const char *name, const char *help, const char *labels,
                                   net_metric_type type)
{
    net_metric *m;
    int clash;
    size_t n;
    if (labels == NULL)
        labels = "";
    if (name == NULL || help == NULL || !name_is_valid(name) ||
        !text_is_valid(help, METRIC_HELP_MAX) || !text_is_valid(labels, METRIC_LABELS_MAX))
        return NULL;
    pthread_mutex_lock(&g_lock);
    m = find_locked(name, labels, type, &clash);
    if (m == NULL && !clash) {
        n = atomic_load_explicit(&g_count, memory_order_relaxed);
        if (n < PX_METRICS_MAX) {
            m = &g_metrics[n];
            px_strlcpy(m->name, name, sizeof m->name);
            px_strlcpy(m->help, help, sizeof m->help);
            px_strlcpy(m->labels, labels, sizeof m->labels);
            m->type = type;
            atomic_store_explicit(&m->value, 0, memory_order_relaxed);
            atomic_store_explicit(&g_count, n + 1, memory_order_release);
        } else if (!g_full_logged) {
            g_full_logged = 1;
            px_warn("net", "metrics registry full (%d series): %s not recorded", PX_METRICS_MAX,
                    name);
        }
    }
    pthread_mutex_unlock(&g_lock);
    if (clash)
        px_warn("net", "metric %s registered with two types", name);
    return m;
}

net_metric *net_metric_counter(const char *name, const char *help, const char *labels)
{
    return metric_register(name, help, labels, NET_METRIC_COUNTER);
}

net_metric *net_metric_gauge(const char *name, const char *help, const char *labels)
{
    return metric_register(name, help, labels, NET_METRIC_GAUGE);
}

void net_metric_add(net_metric *m, int64_t delta)
{
    if (m != NULL)
        atomic_fetch_add_explicit(&m->value, delta, memory_order_relaxed);
}

void net_metric_set(net_metric *m, int64_t value)
{
    if (m != NULL)
        atomic_store_explicit(&m->value, value, memory_order_relaxed);
}

int64_t net_metric_value(const net_metric *m)
{
    if (m == NULL)
        return 0;
    return atomic_load_explicit(&((net_metric *)m)->value, memory_order_relaxed);
}

static int render_series(px_buf *out, const net_metric *m)
{
    int64_t v = net_metric_value(m);
    if (m->labels[0] != 0)
        return px_buf_printf(out, "%s{%s} %lld\n", m->name, m->labels, (long long)v);
    return px_buf_printf(out, "%s %lld\n", m->name, (long long)v);
}

/* Names in first-registration order; for each, HELP/TYPE then all its series. */
int net_metrics_render(px_buf *out)
{
    size_t n = atomic_load_explicit(&g_count, memory_order_acquire);
    int rc = PX_OK;
    for (size_t i = 0; i < n && rc == PX_OK; i++) {
        const net_metric *m = &g_metrics[i];
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(g_metrics[j].name, m->name) == 0;
        if (seen)
            continue;
        rc = px_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name,
                           m->type == NET_METRIC_COUNTER ? "counter" : "gauge");
        for (size_t j = i; j < n && rc == PX_OK; j++)
            if (strcmp(g_metrics[j].name, m->name) == 0)
                rc = render_series(out, &g_metrics[j]);
    }
    return rc;
}

int net_metrics_lookup(const char *name, const char *labels, int64_t *value)
{
    size_t n = atomic_load_explicit(&g_count, memory_order_acquire);
    if (labels == NULL)
        labels = "";
    for (size_t i = 0; i < n; i++)
        if (strcmp(g_metrics[i].name, name) == 0 && strcmp(g_metrics[i].labels, labels) == 0) {
            *value = net_metric_value(&g_metrics[i]);
            return PX_OK;
        }
    return PX_ENOTFOUND;
}
