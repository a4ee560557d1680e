/*
 * core.c: the issuer's configuration ([issuer], docs/issuer.md) and its core: the store
 * connection, the HSM and the keys, shared by the service and the `possum issuer` CLI.
 */
#include "host/issuer/issuer_int.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const px_config_field issuer_fields[] = {
    PX_CFG_STR(issuer_config, institution_id, "institution_id", "99900001"),
    PX_CFG_STR(issuer_config, zpk, "zpk", ISSUER_DEMO_ZPK),
    PX_CFG_STR(issuer_config, clearing_dir, "clearing_dir", "var/clearing"),
    PX_CFG_INT_(issuer_config, latency_ms, "latency_ms", 0, PX_ISSUER_LATENCY_MAX_MS, "0"),
    PX_CFG_INT_(issuer_config, latency_jitter_ms, "latency_jitter_ms", 0, PX_ISSUER_LATENCY_MAX_MS,
                "0"),
    PX_CFG_INT_(issuer_config, decline_every_n, "decline_every_n", 0, 1000000000, "0"),
    PX_CFG_INT_(issuer_config, decline_rate, "decline_rate", 0, 100, "0"),
    PX_CFG_STR(issuer_config, decline_code, "decline_code", ISSUER_RC_DO_NOT_HONOUR),
    PX_CFG_INT_(issuer_config, drop_every_n, "drop_every_n", 0, 1000000000, "0"),
    PX_CFG_INT_(issuer_config, pin_tries_max, "pin_tries_max", 1, 99, "3"),
    PX_CFG_INT_(issuer_config, amount_limit_minor, "amount_limit_minor", 0, 999999999999LL,
                "10000000"),
    PX_CFG_BOOL_(issuer_config, require_pin, "require_pin", "true"),
    PX_CFG_BOOL_(issuer_config, seed_demo, "seed_demo", "false"),
    PX_CFG_BOOL_(issuer_config, clearing_at_day_end, "clearing_at_day_end", "true"),
};

void issuer_config_default(issuer_config *c)
{
    memset(c, 0, sizeof *c);
    net_listener_config_defaults(&c->listen, "issuer");
    px_strlcpy(c->listen.listen, "127.0.0.1:5100", sizeof c->listen.listen);
    px_strlcpy(c->institution_id, "99900001", sizeof c->institution_id);
    px_strlcpy(c->zpk, ISSUER_DEMO_ZPK, sizeof c->zpk);
    px_strlcpy(c->clearing_dir, "var/clearing", sizeof c->clearing_dir);
    px_strlcpy(c->decline_code, ISSUER_RC_DO_NOT_HONOUR, sizeof c->decline_code);
    c->pin_tries_max = 3;
    c->amount_limit_minor = 10000000;
    c->require_pin = 1;
    c->clearing_at_day_end = 1;
    hsm_config_default(&c->hsm);
}

/* [issuer] hsm_* keys override the HSM settings ([hsm] or the defaults). */
static int bind_hsm_overrides(px_config *c, hsm_config *h, px_error *e)
{
    return hsm_config_bind_overrides(c, "issuer", h, e);
}

/* Checks the field table cannot express. */
static int check_values(px_config *c, const issuer_config *out, px_error *e)
{
    size_t n = strlen(out->institution_id);
    if (n == 0 || n > 11 || !px_is_digits(out->institution_id, n))
        return px_error_set(e, PX_ECONFIG, "%s:%d: [issuer] institution_id: expected 1..11 digits",
                            px_config_path(c), px_config_line(c, "issuer", "institution_id"));
    if (strlen(out->decline_code) != 2 || strcmp(out->decline_code, "00") == 0)
        return px_error_set(e, PX_ECONFIG,
                            "%s:%d: [issuer] decline_code: expected a 2-character "
                            "refusal code",
                            px_config_path(c), px_config_line(c, "issuer", "decline_code"));
    if (out->zpk[0] == 0)
        return px_error_set(e, PX_ECONFIG, "%s:%d: [issuer] zpk: a key block or a key label",
                            px_config_path(c), px_config_line(c, "issuer", "zpk"));
    return PX_OK;
}

int issuer_config_bind(px_config *c, issuer_config *out, px_error *e)
{
    int rc;
    issuer_config_default(out);
    rc = net_listener_config_bind(c, "issuer", NULL, &out->listen, e);
    if (rc == PX_OK)
        rc = px_config_bind(c, "issuer", issuer_fields,
                            sizeof issuer_fields / sizeof issuer_fields[0], out, e);
    if (rc == PX_OK && px_config_has_section(c, "hsm"))
        rc = hsm_config_bind(c, "hsm", &out->hsm, e);
    if (rc == PX_OK)
        rc = bind_hsm_overrides(c, &out->hsm, e);
    if (rc == PX_OK)
        rc = check_values(c, out, e);
    return rc;
}

/* The ZPK: a named key when cfg->zpk is a label, else a key block under the LMK. */
static int load_zpk(issuer_core *c, px_error *e)
{
    hsm_key_attrs a;
    int rc = strlen(c->cfg.zpk) < PX_HSM_LABEL_MAX && hsm_label_is_valid(c->cfg.zpk)
                 ? hsm_key_load_named(c->h, c->cfg.zpk, &c->zpk, e)
                 : hsm_key_load(c->h, c->cfg.zpk, &c->zpk, e);
    if (rc != PX_OK)
        return px_error_prefix(e, "issuer: zpk: ");
    hsm_key_get_attrs(c->zpk, &a);
    if (strcmp(a.usage, "P0") != 0)
        return px_error_set(e, PX_EPERM, "issuer: zpk: key usage %s, expected P0 (PIN encryption)",
                            a.usage);
    px_info("issuer", "ZPK loaded (KCV %s)", hsm_key_kcv(c->zpk));
    return PX_OK;
}

/* The PAN keys, generated on first start (docs/issuer.md, "Keys"). */
static int ensure_pan_keys(issuer_core *c, px_error *e)
{
    static const hsm_key_attrs data = {"D0", 'A', 'B', 'N', 32};
    static const hsm_key_attrs index = {"M6", 'A', 'C', 'N', 32};
    int rc = issuer_key_ensure(c, ISSUER_KEY_PAN, &data, &c->pan_key, e);
    if (rc == PX_OK)
        rc = issuer_key_ensure(c, ISSUER_KEY_PAN_INDEX, &index, &c->index_key, e);
    return rc == PX_OK ? PX_OK : px_error_prefix(e, "issuer: PAN keys: ");
}

/* The core on h (own: close it with the core). */
static int core_open(const issuer_config *cfg, store *st, hsm *h, int own, int need_zpk,
                     issuer_core **out, px_error *e)
{
    issuer_core *c = calloc(1, sizeof *c);
    uint8_t seed[4];
    int rc;
    *out = NULL;
    if (c == NULL) {
        if (own)
            hsm_close(h);
        return px_error_set(e, PX_ENOMEM, "issuer: out of memory");
    }
    c->cfg = *cfg;
    c->st = st;
    c->h = h;
    c->own_hsm = own;
    rc = ensure_pan_keys(c, e);
    if (rc == PX_OK && cfg->seed_demo)
        rc = issuer_seed_demo(c, e);
    if (rc == PX_OK && need_zpk)
        rc = load_zpk(c, e);
    if (rc == PX_OK && (rc = crypto_random(seed, sizeof seed, e)) == PX_OK)
        c->rng = ((uint32_t)seed[0] << 24 | (uint32_t)seed[1] << 16 | (uint32_t)seed[2] << 8 |
                  seed[3]) |
                 1u;
    if (rc != PX_OK) {
        issuer_core_close(c);
        return rc;
    }
    *out = c;
    return PX_OK;
}

int issuer_core_open(const issuer_config *cfg, store *st, int need_zpk, issuer_core **out,
                     px_error *e)
{
    hsm_config hc = cfg->hsm;
    hsm *h = NULL;
    int rc;
    *out = NULL;
    px_strlcpy(hc.caller, "issuer", sizeof hc.caller);
    rc = hsm_open(&hc, st, &h, e);
    if (rc != PX_OK)
        return px_error_prefix(e, "issuer: hsm: ");
    return core_open(cfg, st, h, 1, need_zpk, out, e);
}

int issuer_core_open_hsm(const issuer_config *cfg, store *st, hsm *h, int need_zpk,
                         issuer_core **out, px_error *e)
{
    return core_open(cfg, st, h, 0, need_zpk, out, e);
}

void issuer_core_close(issuer_core *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < PX_ISSUER_PVK_CACHE; i++)
        hsm_key_free(c->h, c->pvk[i].key);
    hsm_key_free(c->h, c->zpk);
    hsm_key_free(c->h, c->pan_key);
    hsm_key_free(c->h, c->index_key);
    if (c->own_hsm)
        hsm_close(c->h);
    free(c);
}
