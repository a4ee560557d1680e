/*
 * phonepay.c: configuration ([phonepay], docs/phonepay.md), the phonepay object shared by
 * the service, `possum recon` / `possum phonepay` and the tests, transactions, housekeeping.
 */
#include "host/phonepay/phonepay_int.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"
#include "net/metrics.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const px_config_field phonepay_fields[] = {
    PX_CFG_INT_(phonepay_config, lookup_ttl_ms, "lookup_ttl_ms", 10000, 3600000, "300000"),
    PX_CFG_INT_(phonepay_config, rate_window_ms, "rate_window_ms", 1000, 86400000, "600000"),
    PX_CFG_INT_(phonepay_config, terminal_lookups_max, "terminal_lookups_max", 1, 1000000, "30"),
    PX_CFG_INT_(phonepay_config, terminal_misses_max, "terminal_misses_max", 1, 1000000, "5"),
    PX_CFG_INT_(phonepay_config, payee_lookups_max, "payee_lookups_max", 1, 1000000, "20"),
    PX_CFG_INT_(phonepay_config, otp_ttl_ms, "otp_ttl_ms", 30000, 3600000, "300000"),
    PX_CFG_INT_(phonepay_config, otp_attempts_max, "otp_attempts_max", 1, 10, "5"),
    PX_CFG_INT_(phonepay_config, otp_sends_max, "otp_sends_max", 1, 100, "5"),
    PX_CFG_INT_(phonepay_config, otp_window_ms, "otp_window_ms", 60000, 86400000, "3600000"),
    PX_CFG_INT_(phonepay_config, session_ttl_ms, "session_ttl_ms", 60000, 86400000, "900000"),
    PX_CFG_BOOL_(phonepay_config, bin_check, "bin_check", "true"),
    PX_CFG_STR(phonepay_config, card_key, "card_key", PHONEPAY_KEY_CARD_DEFAULT),
    PX_CFG_STR(phonepay_config, mac_key, "mac_key", PHONEPAY_KEY_MAC_DEFAULT),
    PX_CFG_STR(phonepay_config, sms_url, "sms_url", ""),
    PX_CFG_STR(phonepay_config, sms_username, "sms_username", ""),
    PX_CFG_STR(phonepay_config, sms_password_env, "sms_password_env", "POSSUM_SMS_PASSWORD"),
    PX_CFG_STR(phonepay_config, sms_from, "sms_from", ""),
    PX_CFG_STR(phonepay_config, sms_signature, "sms_signature", "【possum】"),
    PX_CFG_STR(phonepay_config, webhook_url, "webhook_url", ""),
    PX_CFG_STR(phonepay_config, webhook_secret_env, "webhook_secret_env",
               "POSSUM_PHONEPAY_WEBHOOK_SECRET"),
    PX_CFG_INT_(phonepay_config, outbox_interval_ms, "outbox_interval_ms", 10, 600000, "1000"),
    PX_CFG_INT_(phonepay_config, outbox_attempts_max, "outbox_attempts_max", 1, 100, "10"),
    PX_CFG_INT_(phonepay_config, outbox_backoff_min_ms, "outbox_backoff_min_ms", 10, 3600000,
                "2000"),
    PX_CFG_INT_(phonepay_config, outbox_backoff_max_ms, "outbox_backoff_max_ms", 10, 86400000,
                "600000"),
    PX_CFG_INT_(phonepay_config, notify_timeout_ms, "notify_timeout_ms", 100, 120000, "10000"),
    PX_CFG_STR(phonepay_config, notify_tls.ca, "notify_tls_ca", ""),
    PX_CFG_STR(phonepay_config, notify_tls.cert, "notify_tls_cert", ""),
    PX_CFG_STR(phonepay_config, notify_tls.key, "notify_tls_key", ""),
    PX_CFG_INT_(phonepay_config, credit_timeout_ms, "credit_timeout_ms", 100, 120000, "10000"),
    PX_CFG_STR(phonepay_config, clearing_dir, "clearing_dir", "var/clearing"),
    PX_CFG_STR(phonepay_config, currency, "currency", "156"),
};

void phonepay_config_default(phonepay_config *c)
{
    memset(c, 0, sizeof *c);
    net_listener_config_defaults(&c->api, "phonepay");
    net_link_config_defaults(&c->provider, "phonepay-provider");
    hsm_config_default(&c->hsm);
    c->lookup_ttl_ms = 300000;
    c->rate_window_ms = 600000;
    c->terminal_lookups_max = 30;
    c->terminal_misses_max = 5;
    c->payee_lookups_max = 20;
    c->otp_ttl_ms = 300000;
    c->otp_attempts_max = 5;
    c->otp_sends_max = 5;
    c->otp_window_ms = 3600000;
    c->session_ttl_ms = 900000;
    c->bin_check = 1;
    px_strlcpy(c->card_key, PHONEPAY_KEY_CARD_DEFAULT, sizeof c->card_key);
    px_strlcpy(c->mac_key, PHONEPAY_KEY_MAC_DEFAULT, sizeof c->mac_key);
    px_strlcpy(c->sms_password_env, "POSSUM_SMS_PASSWORD", sizeof c->sms_password_env);
    px_strlcpy(c->sms_signature, "【possum】", sizeof c->sms_signature);
    px_strlcpy(c->webhook_secret_env, "POSSUM_PHONEPAY_WEBHOOK_SECRET",
               sizeof c->webhook_secret_env);
    c->outbox_interval_ms = 1000;
    c->outbox_attempts_max = 10;
    c->outbox_backoff_min_ms = 2000;
    c->outbox_backoff_max_ms = 600000;
    c->notify_timeout_ms = 10000;
    c->credit_timeout_ms = 10000;
    px_strlcpy(c->clearing_dir, "var/clearing", sizeof c->clearing_dir);
    px_strlcpy(c->currency, "156", sizeof c->currency);
}

/* [phonepay] hsm_* keys override the HSM settings ([hsm] or the defaults), as [issuer]. */
static int bind_hsm_overrides(px_config *c, hsm_config *h, px_error *e)
{
    return hsm_config_bind_overrides(c, PHONEPAY_MOD, h, e);
}

/* Checks the field table cannot express. */
static int check_values(px_config *c, const phonepay_config *o, px_error *e)
{
    const char *key = NULL, *why = NULL;
    if (o->sms_url[0] && strncmp(o->sms_url, "http://", 7) != 0 &&
        strncmp(o->sms_url, "https://", 8) != 0)
        key = "sms_url", why = "expected an http:// or https:// URL";
    else if (o->webhook_url[0] && strncmp(o->webhook_url, "http://", 7) != 0 &&
             strncmp(o->webhook_url, "https://", 8) != 0)
        key = "webhook_url", why = "expected an http:// or https:// URL";
    else if (o->sms_url[0] && o->sms_username[0] == 0)
        key = "sms_username", why = "required with sms_url";
    else if (!hsm_label_is_valid(o->card_key))
        key = "card_key", why = "not a key label";
    else if (!hsm_label_is_valid(o->mac_key) || strcmp(o->mac_key, o->card_key) == 0)
        key = "mac_key", why = "not a key label, or the same as card_key";
    else if (o->outbox_backoff_max_ms < o->outbox_backoff_min_ms)
        key = "outbox_backoff_max_ms", why = "less than outbox_backoff_min_ms";
    else if (strlen(o->currency) != 3 || !px_is_digits(o->currency, 3))
        key = "currency", why = "expected an ISO 4217 numeric code";
    if (key == NULL)
        return PX_OK;
    return px_error_set(e, PX_ECONFIG, "%s:%d: [phonepay] %s: %s", px_config_path(c),
                        px_config_line(c, PHONEPAY_MOD, key), key, why);
}

int phonepay_config_bind(px_config *c, phonepay_config *out, px_error *e)
{
    int rc = PX_OK;
    phonepay_config_default(out);
    out->api_enabled = px_config_line(c, PHONEPAY_MOD, "api_listen") > 0;
    if (out->api_enabled)
        rc = net_listener_config_bind(c, PHONEPAY_MOD, "api_", &out->api, e);
    out->provider_enabled = px_config_line(c, PHONEPAY_MOD, "provider_connect") > 0;
    if (rc == PX_OK && out->provider_enabled)
        rc = net_link_config_bind(c, PHONEPAY_MOD, "provider_", &out->provider, e);
    if (rc == PX_OK)
        rc = px_config_bind(c, PHONEPAY_MOD, phonepay_fields,
                            sizeof phonepay_fields / sizeof phonepay_fields[0], out, e);
    if (rc == PX_OK && px_config_has_section(c, "hsm"))
        rc = hsm_config_bind(c, "hsm", &out->hsm, e);
    if (rc == PX_OK)
        rc = bind_hsm_overrides(c, &out->hsm, e);
    if (rc == PX_OK)
        rc = check_values(c, out, e);
    return rc;
}

/* Load a named key, creating it with attrs when missing (first start). */
static int key_ensure(phonepay *pp, const char *label, const hsm_key_attrs *a, hsm_key **out,
                      px_error *e)
{
    hsm_keyblock kb;
    int rc = hsm_key_load_named(pp->h, label, out, e);
    if (rc != PX_ENOTFOUND)
        return rc;
    rc = hsm_key_generate(pp->h, a, label, &kb, e);
    if (rc == PX_OK || rc == PX_EEXIST) { /* EEXIST: another node made it just now */
        if (rc == PX_OK)
            px_info(PHONEPAY_MOD, "created HSM key %s (KCV %s)", label, kb.kcv);
        rc = hsm_key_load_named(pp->h, label, out, e);
    }
    return rc;
}

/* The phonepay on h (own: close it with the phonepay). */
static int new_on(const phonepay_config *cfg, store *st, hsm *h, int own, phonepay **out,
                  px_error *e)
{
    static const hsm_key_attrs data = {"D0", 'A', 'B', 'N', 32};
    static const hsm_key_attrs mac = {"M6", 'A', 'C', 'N', 32};
    phonepay *pp = calloc(1, sizeof *pp);
    int rc = PX_OK;
    *out = NULL;
    if (pp == NULL) {
        if (own)
            hsm_close(h);
        return px_error_set(e, PX_ENOMEM, "phonepay: out of memory");
    }
    pp->cfg = *cfg;
    pp->st = st;
    pp->h = h;
    pp->own_hsm = own;
    if ((rc = key_ensure(pp, cfg->card_key, &data, &pp->card_key, e)) != PX_OK)
        px_error_prefix(e, "phonepay: key %s: ", cfg->card_key);
    if (rc == PX_OK && (rc = key_ensure(pp, cfg->mac_key, &mac, &pp->mac_key, e)) != PX_OK)
        px_error_prefix(e, "phonepay: key %s: ", cfg->mac_key);
    if (rc != PX_OK) {
        phonepay_close(pp);
        return rc;
    }
    *out = pp;
    return PX_OK;
}

int phonepay_new(const phonepay_config *cfg, store *st, phonepay **out, px_error *e)
{
    hsm_config hc = cfg->hsm;
    hsm *h = NULL;
    int rc;
    *out = NULL;
    px_strlcpy(hc.caller, PHONEPAY_MOD, sizeof hc.caller);
    rc = hsm_open(&hc, st, &h, e);
    if (rc != PX_OK)
        return px_error_prefix(e, "phonepay: hsm: ");
    return new_on(cfg, st, h, 1, out, e);
}

int phonepay_new_hsm(const phonepay_config *cfg, store *st, hsm *h, phonepay **out, px_error *e)
{
    return new_on(cfg, st, h, 0, out, e);
}

int phonepay_open(px_config *cfg, phonepay **out, px_error *e)
{
    phonepay_config pc;
    store_config sc;
    store *st = NULL;
    int rc = phonepay_config_bind(cfg, &pc, e);
    *out = NULL;
    if (rc == PX_OK)
        rc = store_config_bind(cfg, "store", &sc, e);
    if (rc == PX_OK)
        rc = store_open(&sc, &st, e);
    if (rc == PX_OK)
        rc = phonepay_new(&pc, st, out, e);
    if (rc != PX_OK) {
        store_close(st);
        return rc;
    }
    (*out)->own_store = 1;
    return PX_OK;
}

void phonepay_close(phonepay *pp)
{
    if (pp == NULL)
        return;
    if (pp->h != NULL) {
        hsm_key_free(pp->h, pp->card_key);
        hsm_key_free(pp->h, pp->mac_key);
        if (pp->own_hsm)
            hsm_close(pp->h);
    }
    if (pp->own_store)
        store_close(pp->st);
    free(pp);
}

int phonepay_txn(phonepay *pp, int (*fn)(phonepay *pp, void *ud, px_error *e), void *ud,
                 px_error *e)
{
    int rc = PX_ETIMEOUT;
    for (int i = 0; i < PX_PHONEPAY_TXN_RETRIES && store_is_retryable(rc); i++) {
        rc = store_begin(pp->st, e);
        if (rc == PX_OK)
            rc = fn(pp, ud, e);
        if (rc == PX_OK)
            rc = store_commit(pp->st, e);
        if (rc != PX_OK)
            store_rollback(pp->st);
        if (rc == PX_OK && pp->kick && pp->outbox != NULL)
            phonepay_outbox_kick(pp->outbox);
        pp->kick = 0;
    }
    return rc;
}

/* Delete at most PX_PHONEPAY_SWEEP_ROWS rows of one kind that are past their time. */
static int sweep_one(store *st, const char *sql, int64_t cutoff_ms, px_error *e)
{
    store_stmt *s;
    int rc = store_prepare(st, sql, &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_int64(s, 1, cutoff_ms);
    store_bind_int64(s, 2, PX_PHONEPAY_SWEEP_ROWS);
    rc = store_step(s, e);
    store_done(s);
    return rc < 0 ? rc : PX_OK;
}

int phonepay_sweep(phonepay *pp, int64_t now_ms, px_error *e)
{
    /* Lookups stay a day past expiry (a late payment still finds why it was refused);
     * used ones are kept for good: a payment row refers to them. */
    static const char *const sql[] = {
        "DELETE FROM phonepay_lookup WHERE reference IN (SELECT reference FROM phonepay_lookup "
        "WHERE expires_ms < $1 AND used = 0 LIMIT $2)",
        "DELETE FROM phonepay_otp WHERE mobile IN (SELECT mobile FROM phonepay_otp "
        "WHERE expires_ms < $1 LIMIT $2)",
        "DELETE FROM phonepay_session WHERE token_hash IN (SELECT token_hash FROM "
        "phonepay_session WHERE expires_ms < $1 LIMIT $2)",
        "DELETE FROM phonepay_rate WHERE rkey IN (SELECT rkey FROM phonepay_rate "
        "WHERE window_start_ms < $1 LIMIT $2)",
    };
    int64_t day = 86400000, window = pp->cfg.rate_window_ms > pp->cfg.otp_window_ms
                                         ? pp->cfg.rate_window_ms
                                         : pp->cfg.otp_window_ms;
    const int64_t cutoff[] = {now_ms - day, now_ms, now_ms, now_ms - 2 * window};
    int rc = store_begin(pp->st, e);
    for (size_t i = 0; rc == PX_OK && i < sizeof sql / sizeof sql[0]; i++)
        rc = sweep_one(pp->st, sql[i], cutoff[i], e);
    if (rc == PX_OK)
        rc = store_commit(pp->st, e);
    if (rc != PX_OK)
        store_rollback(pp->st);
    return rc;
}

void phonepay_count_answer(const char *step, const char *code)
{
    static const char *const codes[] = {"00", "12", "13", "15", "Q1", "Q2", "Q4", "other"};
    enum { NCODES = sizeof codes / sizeof codes[0] };
    static net_metric *m[2][NCODES]; /* loop thread only */
    int s = strcmp(step, "lookup") == 0 ? 0 : 1;
    size_t c = 0;
    while (c < NCODES - 1 && strcmp(codes[c], code) != 0)
        c++;
    if (m[s][c] == NULL) {
        char labels[64];
        snprintf(labels, sizeof labels, "step=\"%s\",code=\"%s\"", s ? "payment" : "lookup",
                 codes[c]);
        m[s][c] = net_metric_counter("possum_phonepay_answers_total",
                                     "Answers to mobile-number lookups and payments by code",
                                     labels);
    }
    net_metric_add(m[s][c], 1);
}
