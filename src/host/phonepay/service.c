/*
 * service.c: the `phonepay` service (seed 002, docs/phonepay.md): its configuration, the
 * process-wide instance the switch reaches through phonepay_instance(), the payee REST
 * listener and the notification outbox on the daemon's event loop.
 */
#include "host/phonepay/phonepay_int.h"
#include "host/service.h"
#include "lib/log.h"

#include <stdlib.h>

typedef struct phonepay_svc {
    phonepay_config cfg;
    px_daemon *d;
    store *st;
    hsm *hsm; /* the node's (px_daemon_hsm), lent to pp */
    phonepay *pp;
    phonepay_outbox *outbox;
    phonepay_rest *rest;
} phonepay_svc;

static phonepay *g_instance; /* set by start, cleared by free (event-loop thread only) */

phonepay *phonepay_instance(void)
{
    return g_instance;
}

static int phonepay_configure(px_daemon *d, void **state, px_error *e)
{
    phonepay_svc *s = calloc(1, sizeof *s);
    int rc;
    if (s == NULL)
        return px_error_set(e, PX_ENOMEM, "phonepay: out of memory");
    rc = phonepay_config_bind(d->cfg, &s->cfg, e);
    if (rc != PX_OK) {
        free(s);
        return rc;
    }
    s->d = d;
    *state = s;
    return PX_OK;
}

static int phonepay_start(void *state, px_daemon *d, px_error *e)
{
    phonepay_svc *s = state;
    int rc = store_open(&d->store_cfg, &s->st, e); /* our own connection, loop thread */
    if (rc != PX_OK)
        return px_error_prefix(e, "phonepay: store: ");
    rc = px_daemon_hsm(d, PHONEPAY_MOD, &s->cfg.hsm, &s->hsm, e);
    if (rc != PX_OK)
        return px_error_prefix(e, "phonepay: hsm: ");
    rc = phonepay_new_hsm(&s->cfg, s->st, s->hsm, &s->pp, e);
    if (rc == PX_OK)
        rc = phonepay_outbox_new(s->pp, d->base, &s->outbox, e);
    if (rc == PX_OK)
        s->pp->outbox = s->outbox;
    if (rc == PX_OK && s->cfg.api_enabled)
        rc = phonepay_rest_start(s->pp, d->base, "phonepay", d, &s->rest, e);
    if (rc != PX_OK)
        return rc;
    if (!s->cfg.api_enabled)
        px_warn(PHONEPAY_MOD, "no api_listen: the payee REST API is off");
    if (s->cfg.sms_url[0] == 0 && s->cfg.webhook_url[0] == 0)
        px_warn(PHONEPAY_MOD, "no sms_url or webhook_url: nobody is notified");
    g_instance = s->pp;
    px_info(PHONEPAY_MOD,
            "mobile-number payment ready (lookups: %lld per terminal, %lld per "
            "payee every %lld ms)",
            (long long)s->cfg.terminal_lookups_max, (long long)s->cfg.payee_lookups_max,
            (long long)s->cfg.rate_window_ms);
    return PX_OK;
}

static void phonepay_drain(void *state)
{
    phonepay_svc *s = state;
    phonepay_outbox_drain(s->outbox);
}

static size_t phonepay_busy(void *state)
{
    phonepay_svc *s = state;
    return phonepay_outbox_in_flight(s->outbox);
}

static void phonepay_free(void *state)
{
    phonepay_svc *s = state;
    if (s == NULL)
        return;
    if (g_instance == s->pp)
        g_instance = NULL;
    phonepay_rest_free(s->rest);
    phonepay_outbox_free(s->outbox);
    phonepay_close(s->pp);
    px_daemon_hsm_release(s->d, s->hsm);
    store_close(s->st);
    free(s);
}

const px_service px_service_phonepay = {
    .name = "phonepay",
    .configure = phonepay_configure,
    .start = phonepay_start,
    .drain = phonepay_drain,
    .busy = phonepay_busy,
    .free = phonepay_free,
};
