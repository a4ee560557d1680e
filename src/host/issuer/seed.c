/*
 * seed.c: the demo (seed_demo = true; docs/issuer.md, "Demo cardholders"): two contracted
 * banks and one that is not, their BIN ranges, the demo keys and six cardholders whose
 * PINs are published for the POS simulator. The PINs themselves appear nowhere: only the
 * PVV or IBM 3624 offset each PIN yields under the demo verification keys. Those keys are
 * formed from public components, so the demo is for demonstration and tests only.
 */
#include "host/issuer/issuer_int.h"
#include "lib/log.h"

#include <string.h>

/* Three clear components each (odd parity), with their check values (docs/issuer.md). */
typedef struct demo_key {
    const char *label;
    hsm_key_attrs attrs;
    hsm_component comp[3];
} demo_key;

static const demo_key demo_zpk = {
    ISSUER_DEMO_ZPK,
    {"P0", 'T', 'B', 'E', 16},
    {{"F891803DA162AB9D080EA162CD042A6E", "D90CF3"},
     {"7FB67F3BA15D4C678643F1B0B5CE8579", "187918"},
     {"E9495723DCE364C185F15E9BB0F76E98", "E5F0FA"}}}; /* key KCV BD08F5 */

static const demo_key demo_pvks[] = {
    {ISSUER_DEMO_PVK_PVV,
     {"V2", 'T', 'C', 'N', 16},
     {{"38C4A28C469438F27FDA37C49B6743AB", "90F535"},
      {"0E1973C158752F2F8C4CC2ADEA64432F", "9E87BE"},
      {"899120BA6DFB92FE37731592DA575268", "2596B6"}}}, /* key KCV FBFC1C */
    {ISSUER_DEMO_PVK_IBM,
     {"V1", 'T', 'C', 'N', 16},
     {{"23B3759891DA5DB6CBDA5E6BEA046737", "9FBDB8"},
      {"6EAE2923466B1949C4A21F612FF77CE9", "B70F76"},
      {"4934D9DF76B33DF12ABF67262FFE2391", "5631EC"}}}}; /* key KCV B4F6EA */

static const struct {
    const char *id, *name, *low, *high;
    int contracted;
} demo_banks[] = {{"ICBC-DEMO", "ICBC demo", "622202", "622202", 1},
                  {"CCB-DEMO", "CCB demo", "621700", "621700", 1},
                  {"RURAL-DEMO", "Rural bank demo (not contracted)", "955880", "955880", 0}};

/* Demo PINs (docs/issuer.md): 123456, 111111, 888888, 246810, 123456, 654321. */
static const issuer_cardholder_new demo_cards[] = {
    {"6222020000000007", "张三", "ICBC-DEMO", "3012", ISSUER_PIN_PVV, ISSUER_DEMO_PVK_PVV, 1,
     "5250", 1000000, "156"},
    {"6222020000000015", "李四", "ICBC-DEMO", "3012", ISSUER_PIN_PVV, ISSUER_DEMO_PVK_PVV, 1,
     "6216", 5000, "156"},
    {"6217000000000006", "王五", "CCB-DEMO", "3012", ISSUER_PIN_IBM3624, ISSUER_DEMO_PVK_IBM, 0,
     "827316", 1000000, "156"},
    {"6217000000000014", "赵六", "CCB-DEMO", "2001", ISSUER_PIN_IBM3624, ISSUER_DEMO_PVK_IBM, 0,
     "923602", 1000000, "156"},
    {"9558800000000000", "钱七", "RURAL-DEMO", "3012", ISSUER_PIN_PVV, ISSUER_DEMO_PVK_PVV, 1,
     "5897", 1000000, "156"},
    {"6222021234567890128", "孙八", "ICBC-DEMO", "3012", ISSUER_PIN_PVV, ISSUER_DEMO_PVK_PVV, 1,
     "2427", 1000000, "156"}};

/* Form a demo key under its label unless a key of that label exists. */
static int ensure_demo_key(issuer_core *c, const demo_key *k, px_error *e)
{
    hsm_keyblock kb;
    hsm_key *probe = NULL;
    int rc = hsm_key_load_named(c->h, k->label, &probe, e);
    hsm_key_free(c->h, probe);
    if (rc != PX_ENOTFOUND)
        return rc;
    rc = hsm_key_form(c->h, &k->attrs, k->comp, 3, k->label, &kb, e);
    if (rc != PX_OK)
        return px_error_prefix(e, "demo key %s: ", k->label);
    px_info("issuer", "demo key %s formed (KCV %s)", k->label, kb.kcv);
    return PX_OK;
}

static int seed_keys(issuer_core *c, px_error *e)
{
    int rc = PX_OK;
    /* The ZPK only under the label the configuration names; a key block is kept as is. */
    if (strcmp(c->cfg.zpk, ISSUER_DEMO_ZPK) == 0)
        rc = ensure_demo_key(c, &demo_zpk, e);
    for (size_t i = 0; rc == PX_OK && i < sizeof demo_pvks / sizeof demo_pvks[0]; i++)
        rc = ensure_demo_key(c, &demo_pvks[i], e);
    return rc;
}

static int seed_banks(issuer_core *c, px_error *e)
{
    for (size_t i = 0; i < sizeof demo_banks / sizeof demo_banks[0]; i++) {
        int rc = issuer_bank_add(c->st, demo_banks[i].id, demo_banks[i].name,
                                 demo_banks[i].contracted, e);
        if (rc == PX_OK || rc == PX_EEXIST)
            rc = issuer_bin_range_add(c->st, demo_banks[i].id, demo_banks[i].low,
                                      demo_banks[i].high, e);
        if (rc != PX_OK && rc != PX_EEXIST)
            return px_error_prefix(e, "demo bank %s: ", demo_banks[i].id);
    }
    return PX_OK;
}

int issuer_seed_demo(issuer_core *c, px_error *e)
{
    size_t added = 0;
    int rc = seed_keys(c, e);
    if (rc == PX_OK)
        rc = seed_banks(c, e);
    for (size_t i = 0; rc == PX_OK && i < sizeof demo_cards / sizeof demo_cards[0]; i++) {
        rc = issuer_cardholder_add(c, &demo_cards[i], e);
        if (rc == PX_OK)
            added++;
        else if (rc == PX_EEXIST)
            rc = PX_OK;
    }
    if (rc != PX_OK)
        return px_error_prefix(e, "issuer: demo seed: ");
    if (added > 0)
        px_info("issuer", "demo seeded: %zu cardholders added", added);
    return PX_OK;
}
