/*
 * service.h: what possumd runs. A service is one struct (after nginx's ngx_module_t): its
 * name (also its config section), and hooks to configure, start, drain and free it.
 * The table of services is generated from the directories under src/host/: a directory
 * src/host/NAME/ defines `const px_service px_service_NAME`.
 */
#ifndef PX_HOST_SERVICE_H
#define PX_HOST_SERVICE_H

#include <stddef.h>
#include "lib/config.h"
#include "lib/err.h"
#include "hsm/hsm.h"
#include "net/http.h"
#include "store/store.h"

struct event_base;
struct px_hsm_core;

/* What the daemon lends every service. Owned by possumd; valid from configure to free. */
typedef struct px_daemon {
    struct event_base *base;
    px_config *cfg;
    store *st;                   /* the node's store connection (loop thread only) */
    store_config store_cfg;      /* to open more connections (worker threads) */
    net_http_server *http;       /* the operator listener: services may add routes */
    hsm *hsm;                    /* the node's HSM when [hsm] is configured, else NULL:
                                    opened before any service starts, closed after every
                                    service is freed; services take it via px_daemon_hsm */
    struct px_hsm_core *cores;   /* HSMs named only by services' hsm_* keys (daemon.c) */
    struct px_hsm_lease *leases; /* sessions lent to services (daemon.c) */
    char node[64];               /* node name, for logs and metrics */
    char ports_file[1024];       /* "" = none; see px_daemon_announce */
} px_daemon;

typedef struct px_service {
    const char *name;
    /* Bind the service's [name] section (only called when it is enabled) into *state. */
    int (*configure)(px_daemon *d, void **state, px_error *e);
    /* Open listeners and links. Log what it listens on (px_daemon_announce). */
    int (*start)(void *state, px_daemon *d, px_error *e);
    /* SIGTERM: stop taking new work; in-flight work goes on. May be NULL. */
    void (*drain)(void *state);
    /* Work still in flight (0 = drained). May be NULL (always drained). */
    size_t (*busy)(void *state);
    /* Close everything and free state. NULL state is fine. */
    void (*free)(void *state);
} px_service;

extern const px_service *const px_services[]; /* generated; NULL-terminated */

/* Log that service `what` listens on host:port, and record it in the ports file
 * ("what=host:port" lines) so harnesses can use port 0. */
int px_daemon_announce(px_daemon *d, const char *what, const char *listen, int port);

/* A session, for a service, of the node's key-management core its HSM settings cfg name
 * ([hsm], then its own hsm_* keys): of d->hsm when cfg names the same HSM (backend, LMK
 * file or token and key, audit log); otherwise of the one HSM the daemon opens for those
 * settings on the first request and shares with every service that names it. One LMK
 * unlock per HSM per daemon; the session audits as `service`. The handle belongs to the
 * event-loop thread; a service that needs keys on another thread takes a session of it
 * (hsm_session_open). Give it back with px_daemon_hsm_release from the service's free,
 * after freeing the keys it loaded; never hsm_close it. */
int px_daemon_hsm(px_daemon *d, const char *service, const hsm_config *cfg, hsm **out, px_error *e);
/* Close a session from px_daemon_hsm (NULL is fine); the last user of a core closes it. */
void px_daemon_hsm_release(px_daemon *d, hsm *h);

/* The value of [section] enabled (default false), marking it read. PX_ECONFIG if bad. */
int px_service_is_enabled(px_config *cfg, const char *section, int *enabled, px_error *e);

/* Register the operator endpoints (ops.c) on d->http. */
int px_ops_routes(px_daemon *d, px_error *e);

#endif
