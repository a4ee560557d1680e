/*
 * possumd: the platform daemon. Its config file chooses which services run and where they
 * listen (docs/possumd.md). SIGTERM or SIGINT drains: services stop taking new work, the
 * daemon waits up to drain_timeout_ms for work in flight, then closes and exits 0.
 */
#include "host/service.h"
#include "hsm/hsm.h"
#include "lib/config.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"
#include "net/http.h"
#include "net/metrics.h"
#include "net/net.h"
#include "store/store.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

typedef struct daemon_cfg {
    char node[64];
    int log_level;
    int log_format;
    int64_t drain_timeout_ms;
} daemon_cfg;

static const char *const level_names[] = {"debug", "info", "warn", "error", NULL};
static const char *const format_names[] = {"text", "json", NULL};

static const px_config_field daemon_fields[] = {
    PX_CFG_STR(daemon_cfg, node, "node", "node1"),
    PX_CFG_ENUM_(daemon_cfg, log_level, "log_level", level_names, "info"),
    PX_CFG_ENUM_(daemon_cfg, log_format, "log_format", format_names, "text"),
    PX_CFG_INT_(daemon_cfg, drain_timeout_ms, "drain_timeout_ms", 0, 600000, "5000"),
};

typedef struct running {
    const px_service *svc;
    void *state;
} running;

typedef struct possumd {
    px_daemon d;
    daemon_cfg cfg;
    running run[PX_SERVICES_MAX];
    size_t nrun;
    struct event *sig_term, *sig_int, *drain_timer;
    int64_t drain_deadline_ms;
    int draining;
    net_listener_config http;
    int has_hsm;
    hsm_config hsm_cfg;
} possumd;

static void usage(FILE *out)
{
    fprintf(out, "usage: possumd -c FILE [--ports-file FILE] [--check]\n"
                 "  -c FILE             configuration (INI); see docs/possumd.md\n"
                 "  --ports-file FILE   write each listener as NAME=HOST:PORT (for port 0)\n"
                 "  --check             validate the configuration and exit\n"
                 "  --version           print the version\n");
}

static size_t busy_total(possumd *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->nrun; i++)
        if (p->run[i].svc->busy != NULL)
            n += p->run[i].svc->busy(p->run[i].state);
    return n;
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    possumd *p = arg;
    size_t busy = busy_total(p);
    if (busy == 0 || px_mono_ms() >= p->drain_deadline_ms) {
        if (busy > 0)
            px_warn("possumd", "drain timeout: %zu requests still in flight", busy);
        px_info("possumd", "drained; stopping");
        event_base_loopexit(p->d.base, NULL);
        return;
    }
    struct timeval tv = {0, 50000};
    evtimer_add(p->drain_timer, &tv);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    possumd *p = arg;
    if (p->draining) {
        px_warn("possumd", "second signal: stopping now");
        event_base_loopexit(p->d.base, NULL);
        return;
    }
    p->draining = 1;
    px_info("possumd", "signal %d: draining (up to %lld ms)", (int)sig,
            (long long)p->cfg.drain_timeout_ms);
    for (size_t i = 0; i < p->nrun; i++)
        if (p->run[i].svc->drain != NULL)
            p->run[i].svc->drain(p->run[i].state);
    p->drain_deadline_ms = px_mono_ms() + p->cfg.drain_timeout_ms;
    on_drain_tick(-1, 0, p);
}

/* Load and validate [possumd] and [store]; set up logging. */
static int load_core_config(possumd *p, const char *path, px_error *e)
{
    int rc = px_config_load_file(path, &p->d.cfg, e);
    if (rc != PX_OK)
        return rc;
    rc = px_config_bind(p->d.cfg, "possumd", daemon_fields,
                        sizeof daemon_fields / sizeof daemon_fields[0], &p->cfg, e);
    if (rc != PX_OK)
        return rc;
    px_log_setup((px_log_level)p->cfg.log_level, (px_log_format)p->cfg.log_format, NULL);
    px_strlcpy(p->d.node, p->cfg.node, sizeof p->d.node);
    rc = store_config_bind(p->d.cfg, "store", &p->d.store_cfg, e);
    if (rc != PX_OK)
        return rc;
    net_listener_config_defaults(&p->http, "http");
    px_strlcpy(p->http.listen, "127.0.0.1:8080", sizeof p->http.listen);
    rc = net_listener_config_bind(p->d.cfg, "http", NULL, &p->http, e);
    if (rc != PX_OK || !px_config_has_section(p->d.cfg, "hsm"))
        return rc;
    p->has_hsm = 1;
    hsm_config_default(&p->hsm_cfg);
    rc = hsm_config_bind(p->d.cfg, "hsm", &p->hsm_cfg, e);
    if (rc != PX_OK)
        return rc;
    /* the audit log names who used each key: this daemon, by node */
    snprintf(p->hsm_cfg.caller, sizeof p->hsm_cfg.caller, "possumd:%.40s", p->d.node);
    return PX_OK;
}

/* Configure every service whose section says enabled = true. */
static int configure_services(possumd *p, px_error *e)
{
    for (size_t i = 0; px_services[i] != NULL; i++) {
        const px_service *svc = px_services[i];
        int enabled, rc;
        rc = px_service_is_enabled(p->d.cfg, svc->name, &enabled, e);
        if (rc != PX_OK)
            return rc;
        if (!enabled)
            continue;
        if (p->nrun >= PX_SERVICES_MAX)
            return px_error_set(e, PX_ELIMIT, "more than %d services", PX_SERVICES_MAX);
        rc = svc->configure(&p->d, &p->run[p->nrun].state, e);
        if (rc != PX_OK)
            return rc;
        p->run[p->nrun++].svc = svc;
    }
    return PX_OK;
}

/* Refuse a section that names no service (a typo would otherwise turn a service off). */
static int check_sections(possumd *p, px_error *e)
{
    static const char *const core[] = {"possumd", "store", "http", "hsm", NULL};
    for (size_t i = 0; px_config_section_at(p->d.cfg, i) != NULL; i++) {
        const char *sec = px_config_section_at(p->d.cfg, i);
        int known = 0;
        for (size_t k = 0; core[k] != NULL; k++)
            known |= strcmp(core[k], sec) == 0;
        for (size_t k = 0; px_services[k] != NULL; k++)
            known |= strcmp(px_services[k]->name, sec) == 0;
        if (!known)
            return px_error_set(e, PX_ECONFIG, "%s: [%s]: unknown section (no such service)",
                                px_config_path(p->d.cfg), sec);
    }
    return PX_OK;
}

/* Unused keys of disabled services are fine; unknown keys elsewhere are not. */
static int check_unused_keys(possumd *p, px_error *e)
{
    const char *ignore[PX_SERVICES_MAX + 1];
    size_t n = 0;
    for (size_t i = 0; px_services[i] != NULL && n < PX_SERVICES_MAX; i++) {
        int on = 0;
        for (size_t k = 0; k < p->nrun; k++)
            on |= p->run[k].svc == px_services[i];
        if (!on)
            ignore[n++] = px_services[i]->name;
    }
    ignore[n] = NULL;
    return px_config_check_unused(p->d.cfg, ignore, e);
}

static int start_http(possumd *p, px_error *e)
{
    int rc = net_http_server_new(p->d.base, &p->http, &p->d.http, e);
    if (rc != PX_OK)
        return px_error_prefix(e, "http: ");
    rc = px_ops_routes(&p->d, e);
    if (rc != PX_OK)
        return rc;
    return px_daemon_announce(&p->d, "http", p->http.listen, net_http_server_port(p->d.http));
}

static int start_all(possumd *p, px_error *e)
{
    int rc = net_init(e);
    if (rc == PX_OK)
        rc = net_base_new(&p->d.base, e);
    if (rc == PX_OK)
        rc = store_open(&p->d.store_cfg, &p->d.st, e);
    if (rc == PX_OK && p->has_hsm)
        rc = hsm_open(&p->hsm_cfg, p->d.st, &p->d.hsm, e);
    if (rc == PX_OK)
        rc = start_http(p, e);
    for (size_t i = 0; rc == PX_OK && i < p->nrun; i++)
        rc = p->run[i].svc->start(p->run[i].state, &p->d, e);
    if (rc != PX_OK)
        return rc;
    p->sig_term = evsignal_new(p->d.base, SIGTERM, on_stop_signal, p);
    p->sig_int = evsignal_new(p->d.base, SIGINT, on_stop_signal, p);
    p->drain_timer = evtimer_new(p->d.base, on_drain_tick, p);
    if (!p->sig_term || !p->sig_int || !p->drain_timer || evsignal_add(p->sig_term, NULL) ||
        evsignal_add(p->sig_int, NULL))
        return px_error_set(e, PX_ENOMEM, "cannot install signal handlers");
    return PX_OK;
}

static void stop_all(possumd *p)
{
    for (size_t i = p->nrun; i-- > 0;)
        p->run[i].svc->free(p->run[i].state);
    if (p->sig_term)
        event_free(p->sig_term);
    if (p->sig_int)
        event_free(p->sig_int);
    if (p->drain_timer)
        event_free(p->drain_timer);
    net_http_server_free(p->d.http);
    hsm_close(p->d.hsm);
    store_close(p->d.st);
    if (p->d.base)
        net_base_free(p->d.base);
    px_config_free(p->d.cfg);
}

static int parse_args(int argc, char **argv, const char **cfg, possumd *p, int *check)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            *cfg = argv[++i];
        } else if (strcmp(argv[i], "--ports-file") == 0 && i + 1 < argc) {
            if (px_strlcpy(p->d.ports_file, argv[++i], sizeof p->d.ports_file) != PX_OK)
                return EXIT_USAGE;
        } else if (strcmp(argv[i], "--check") == 0) {
            *check = 1;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("possumd %s\n", POSSUM_VERSION);
            exit(EXIT_OK);
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            exit(EXIT_OK);
        } else {
            fprintf(stderr, "possumd: unexpected argument '%s'\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (*cfg == NULL) {
        usage(stderr);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    static possumd p;
    const char *cfg_path = NULL;
    int check = 0, rc;
    px_error e = {0};
    rc = parse_args(argc, argv, &cfg_path, &p, &check);
    if (rc != EXIT_OK)
        return rc;
    if (p.d.ports_file[0])
        remove(p.d.ports_file);
    rc = load_core_config(&p, cfg_path, &e);
    if (rc == PX_OK)
        rc = check_sections(&p, &e);
    if (rc == PX_OK)
        rc = configure_services(&p, &e);
    if (rc == PX_OK)
        rc = check_unused_keys(&p, &e);
    if (rc == PX_OK && check) {
        printf("%s: configuration OK (%zu services)\n", cfg_path, p.nrun);
        stop_all(&p);
        return EXIT_OK;
    }
    if (rc == PX_OK) {
        px_info("possumd", "possum %s node %s starting (store: %s)", POSSUM_VERSION, p.d.node,
                store_backend_name(p.d.store_cfg.backend));
        rc = start_all(&p, &e);
    }
    if (rc != PX_OK) {
        fprintf(stderr, "possumd: %s\n", px_error_text(&e));
        stop_all(&p);
        return EXIT_FAILED;
    }
    px_info("possumd", "ready: %zu services", p.nrun);
    event_base_dispatch(p.d.base);
    stop_all(&p);
    px_info("possumd", "stopped");
    return EXIT_OK;
}
