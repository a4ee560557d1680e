/*
 * daemon.c: what possumd lends its services: the ports file, their `enabled` key, and the
 * node's key-management cores (px_daemon_hsm).
 */
#include "host/service.h"
#include "lib/log.h"
#include "lib/str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A session of a core lent to one service (px_daemon_hsm). */
struct px_hsm_lease {
    struct px_hsm_lease *next;
    hsm *session;
    struct px_hsm_core *core; /* NULL: a session of d->hsm */
};

/* An HSM no [hsm] section names, opened for the services whose hsm_* keys name it. */
struct px_hsm_core {
    struct px_hsm_core *next;
    hsm_config cfg;
    hsm *h;
    unsigned refs; /* services holding it */
};

int px_daemon_announce(px_daemon *d, const char *what, const char *listen, int port)
{
    char host[256];
    int ignored;
    FILE *f;
    if (px_parse_hostport(listen, host, sizeof host, &ignored) != PX_OK)
        px_strlcpy(host, "?", sizeof host);
    px_info("possumd", "%s listening on %s:%d", what, host[0] ? host : "*", port);
    if (d->ports_file[0] == 0)
        return PX_OK;
    f = fopen(d->ports_file, "a");
    if (f == NULL)
        return PX_EIO;
    fprintf(f, "%s=%s:%d\n", what, host[0] ? host : "127.0.0.1", port);
    return fclose(f) == 0 ? PX_OK : PX_EIO;
}

int px_service_is_enabled(px_config *cfg, const char *section, int *enabled, px_error *e)
{
    const char *v = px_config_get(cfg, section, "enabled");
    *enabled = 0;
    if (v == NULL)
        return PX_OK;
    if (px_parse_bool(v, enabled) != PX_OK)
        return px_error_set(e, PX_ECONFIG, "%s:%d: [%s] enabled: expected true or false",
                            px_config_path(cfg), px_config_line(cfg, section, "enabled"), section);
    return PX_OK;
}

/* 1 when a and b name the same file: the same string, or the same inode. */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (strcmp(a, b) == 0)
        return 1;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* 1 when a and b open the same LMK and write the same audit log. */
static int hsm_is_same(const hsm_config *a, const hsm_config *b)
{
    if (a->backend != b->backend || !same_file(a->audit_file, b->audit_file))
        return 0;
    if (a->backend == HSM_BACKEND_SOFT)
        return same_file(a->lmk_file, b->lmk_file);
    return same_file(a->pkcs11_module, b->pkcs11_module) &&
           strcmp(a->pkcs11_token_label, b->pkcs11_token_label) == 0 &&
           strcmp(a->pkcs11_key_label, b->pkcs11_key_label) == 0;
}

/* Open the HSM cfg names as a new core of d, held once. */
static int core_open(px_daemon *d, const char *service, const hsm_config *cfg, hsm **out,
                     px_error *e)
{
    struct px_hsm_core *c = calloc(1, sizeof *c);
    int rc;
    if (c == NULL)
        return px_error_set(e, PX_ENOMEM, "%s: out of memory", service);
    c->cfg = *cfg;
    /* the audit log names who used each key: this daemon, by node, as for [hsm] */
    snprintf(c->cfg.caller, sizeof c->cfg.caller, "possumd:%.40s", d->node);
    if ((rc = hsm_open(&c->cfg, d->st, &c->h, e)) != PX_OK) {
        free(c);
        return rc;
    }
    c->refs = 1;
    c->next = d->cores;
    d->cores = c;
    if (d->hsm != NULL)
        px_warn("possumd",
                "[%s] hsm_* keys name another HSM than [hsm] (%s): opened it as a "
                "second key-management core",
                service,
                cfg->backend == HSM_BACKEND_SOFT ? cfg->lmk_file : cfg->pkcs11_token_label);
    else
        px_info("possumd", "HSM %s opened for [%s]; services naming it share it",
                cfg->backend == HSM_BACKEND_SOFT ? cfg->lmk_file : cfg->pkcs11_token_label,
                service);
    *out = c->h;
    return PX_OK;
}

/* The core cfg names: d->hsm, a core already open (held once more), or a new one. */
static int core_for(px_daemon *d, const char *service, const hsm_config *cfg, hsm **h,
                    struct px_hsm_core **core, px_error *e)
{
    hsm_config node;
    int rc;
    *core = NULL;
    if (d->hsm != NULL) {
        hsm_config_default(&node);
        if ((rc = hsm_config_bind(d->cfg, "hsm", &node, e)) != PX_OK)
            return rc;
        if (hsm_is_same(&node, cfg)) {
            *h = d->hsm;
            return PX_OK;
        }
    }
    for (struct px_hsm_core *c = d->cores; c != NULL; c = c->next)
        if (hsm_is_same(&c->cfg, cfg)) {
            c->refs++;
            *core = c;
            *h = c->h;
            return PX_OK;
        }
    if ((rc = core_open(d, service, cfg, h, e)) == PX_OK)
        *core = d->cores;
    return rc;
}

/* Drop one hold on core (NULL: d->hsm, which possumd closes); the last closes it. */
static void core_release(px_daemon *d, struct px_hsm_core *core)
{
    if (core == NULL || --core->refs > 0)
        return;
    for (struct px_hsm_core **pp = &d->cores; *pp != NULL; pp = &(*pp)->next)
        if (*pp == core) {
            *pp = core->next;
            hsm_close(core->h);
            free(core);
            return;
        }
}

int px_daemon_hsm(px_daemon *d, const char *service, const hsm_config *cfg, hsm **out, px_error *e)
{
    struct px_hsm_lease *l;
    struct px_hsm_core *core = NULL;
    hsm *h = NULL;
    int rc;
    *out = NULL;
    if ((l = calloc(1, sizeof *l)) == NULL)
        return px_error_set(e, PX_ENOMEM, "%s: out of memory", service);
    if ((rc = core_for(d, service, cfg, &h, &core, e)) == PX_OK) {
        /* the service's own session: its name in the audit log, no second unlock */
        rc = hsm_session_open(h, d->st, service, &l->session, e);
        if (rc != PX_OK)
            core_release(d, core);
    }
    if (rc != PX_OK) {
        free(l);
        return rc;
    }
    l->core = core;
    l->next = d->leases;
    d->leases = l;
    *out = l->session;
    return PX_OK;
}

void px_daemon_hsm_release(px_daemon *d, hsm *h)
{
    if (h == NULL)
        return;
    for (struct px_hsm_lease **pp = &d->leases; *pp != NULL; pp = &(*pp)->next) {
        struct px_hsm_lease *l = *pp;
        if (l->session != h)
            continue;
        *pp = l->next;
        hsm_close(l->session);
        core_release(d, l->core);
        free(l);
        return;
    }
    (void)PX_BUG(h != NULL); /* not a handle px_daemon_hsm lent: not ours to close */
}
