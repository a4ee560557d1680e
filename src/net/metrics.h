/*
 * metrics.h: a process-wide registry of counters and gauges, rendered in the Prometheus
 * text exposition format (version 0.0.4) by GET /metrics.
 *
 * Registration takes a lock and is meant for start-up (or the first time a rare event
 * happens); updating a metric is one relaxed atomic operation and safe from any thread.
 * A series is (name, labels); registering the same series twice returns the same metric.
 * The registry holds at most PX_METRICS_MAX series; past that, registration returns NULL
 * (logged once) and every update function accepts NULL and does nothing, so a full
 * registry never breaks a caller.
 *
 *   net_metric *m = net_metric_counter("possum_frames_rejected_total", "Frames refused",
 *                                      "reason=\"oversize\"");
 *   net_metric_add(m, 1);
 */
#ifndef NET_METRICS_H
#define NET_METRICS_H

#include <stdint.h>
#include "lib/buf.h"
#include "lib/err.h"

typedef struct net_metric net_metric;

typedef enum net_metric_type { NET_METRIC_COUNTER = 0, NET_METRIC_GAUGE = 1 } net_metric_type;

/* Register (or find) a series. name: [a-zA-Z_:][a-zA-Z0-9_:]*; labels: NULL, "" or the text
 * between the braces (`listener="switch",reason="oversize"`), without newlines. NULL when
 * the arguments are bad, the name is already registered with another type, or the
 * registry is full. The metric lives until the process exits. */
net_metric *net_metric_counter(const char *name, const char *help, const char *labels);
net_metric *net_metric_gauge(const char *name, const char *help, const char *labels);

void net_metric_add(net_metric *m, int64_t delta); /* counters: delta >= 0 */
void net_metric_set(net_metric *m, int64_t value); /* gauges only */
int64_t net_metric_value(const net_metric *m);     /* 0 for NULL */

/* Append every series to out, grouped by name, HELP and TYPE once per name, in the order
 * names were first registered. PX_ETOOBIG if out's ceiling is too small. */
int net_metrics_render(px_buf *out);

/* Value of a series by name and labels (NULL = none), for tests and health checks;
 * PX_ENOTFOUND if it was never registered. */
int net_metrics_lookup(const char *name, const char *labels, int64_t *value);

#endif
