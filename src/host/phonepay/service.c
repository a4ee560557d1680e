/*
 * service.c: the `phonepay` service (seed 002): configuration, the process-wide instance the
 * switch reaches through phonepay_instance(), start and stop.
 * First step: the published interface and the number rules; the store-backed parts follow.
 */
#include "host/phonepay/phonepay.h"
#include "host/service.h"
#include "lib/log.h"

#include <stdlib.h>

struct phonepay {
    px_daemon *d;
};

static phonepay *g_instance; /* set by start, cleared by free (event-loop thread only) */

phonepay *phonepay_instance(void)
{
    return g_instance;
}

int phonepay_lookup(phonepay *pp, const char *tid, const char *payee_mobile,
                    const char *payer_mobile, int64_t amount_minor,
                    phonepay_lookup_result *out, px_error *e)
{
    return px_error_set(e, PX_EUNSUPPORTED, "phonepay: lookup not available yet");
}

int phonepay_payment_begin(phonepay *pp, const phonepay_payment_request *req,
                           phonepay_payment *out, px_error *e)
{
    return px_error_set(e, PX_EUNSUPPORTED, "phonepay: payment not available yet");
}

int phonepay_payment_result(phonepay *pp, const char *reference, const char *rrn,
                            const char *stan, const char *response_code, px_error *e)
{
    return px_error_set(e, PX_EUNSUPPORTED, "phonepay: payment not available yet");
}

int phonepay_payment_reverse(phonepay *pp, const char *reference, px_error *e)
{
    return px_error_set(e, PX_EUNSUPPORTED, "phonepay: payment not available yet");
}

int phonepay_open(px_config *cfg, phonepay **out, px_error *e)
{
    *out = NULL;
    return px_error_set(e, PX_EUNSUPPORTED, "phonepay: not available yet");
}

void phonepay_close(phonepay *pp)
{
    free(pp);
}

static int phonepay_configure(px_daemon *d, void **state, px_error *e)
{
    phonepay *pp = calloc(1, sizeof *pp);
    if (pp == NULL)
        return px_error_set(e, PX_ENOMEM, "phonepay: out of memory");
    pp->d = d;
    *state = pp;
    return PX_OK;
}

static int phonepay_start(void *state, px_daemon *d, px_error *e)
{
    g_instance = state;
    px_info("phonepay", "mobile-number payment ready");
    return PX_OK;
}

static void phonepay_free(void *state)
{
    if (g_instance == state)
        g_instance = NULL;
    phonepay_close(state);
}

const px_service px_service_phonepay = {
    .name = "phonepay",
    .configure = phonepay_configure,
    .start = phonepay_start,
    .drain = NULL,
    .busy = NULL,
    .free = phonepay_free,
};
