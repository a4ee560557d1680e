/* hsm.c: configuration, opening and closing an hsm, loaded keys, and the audit glue. */
#include "hsm/hsm_int.h"
#include "lib/str.h"
#include "lib/time.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

static const char *const agg_names[HSM_AGG_N] = {
    "pin.translate", "pin.translate.dukpt", "pin.verify",   "pin.generate",
    "mac.generate",  "mac.verify",          "data.encrypt", "data.decrypt"};

void hsm_config_default(hsm_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->backend = HSM_BACKEND_SOFT;
    px_strlcpy(cfg->lmk_file, "var/lmk.bin", sizeof cfg->lmk_file);
    cfg->lmk_scrypt_log2n = 17;
    px_strlcpy(cfg->pkcs11_module, "/usr/lib/softhsm/libsofthsm2.so", sizeof cfg->pkcs11_module);
    px_strlcpy(cfg->pkcs11_token_label, "possum", sizeof cfg->pkcs11_token_label);
    px_strlcpy(cfg->pkcs11_key_label, "possum-lmk", sizeof cfg->pkcs11_key_label);
    px_strlcpy(cfg->audit_file, "var/hsm-audit.log", sizeof cfg->audit_file);
    cfg->audit_flush_ms = 1000;
    px_strlcpy(cfg->caller, "possum", sizeof cfg->caller);
}

int hsm_config_bind_overrides(px_config *c, const char *section, hsm_config *h, px_error *e)
{
    static const struct {
        const char *key;
        size_t off, size;
    } keys[] = {
        {"hsm_lmk_file", offsetof(hsm_config, lmk_file), sizeof h->lmk_file},
        {"hsm_audit_file", offsetof(hsm_config, audit_file), sizeof h->audit_file},
        {"hsm_pkcs11_module", offsetof(hsm_config, pkcs11_module), sizeof h->pkcs11_module},
        {"hsm_pkcs11_token", offsetof(hsm_config, pkcs11_token_label),
         sizeof h->pkcs11_token_label},
        {"hsm_pkcs11_key", offsetof(hsm_config, pkcs11_key_label), sizeof h->pkcs11_key_label}};
    const char *v = px_config_get(c, section, "hsm_backend");
    if (v != NULL && strcmp(v, "soft") != 0 && strcmp(v, "pkcs11") != 0)
        return px_error_set(e, PX_ECONFIG, "%s:%d: [%s] hsm_backend: expected soft or pkcs11",
                            px_config_path(c), px_config_line(c, section, "hsm_backend"), section);
    if (v != NULL)
        h->backend = strcmp(v, "soft") == 0 ? HSM_BACKEND_SOFT : HSM_BACKEND_PKCS11;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        v = px_config_get(c, section, keys[i].key);
        if (v != NULL && px_strlcpy((char *)h + keys[i].off, v, keys[i].size) != PX_OK)
            return px_error_set(e, PX_ECONFIG, "%s:%d: [%s] %s: too long", px_config_path(c),
                                px_config_line(c, section, keys[i].key), section, keys[i].key);
    }
    return PX_OK;
}

int hsm_config_bind(px_config *c, const char *section, hsm_config *cfg, px_error *e)
{
    static const char *const backends[] = {"soft", "pkcs11", NULL};
    static const px_config_field fields[] = {
        PX_CFG_ENUM_(hsm_config, backend, "backend", backends, "soft"),
        PX_CFG_STR(hsm_config, lmk_file, "lmk_file", "var/lmk.bin"),
        PX_CFG_INT_(hsm_config, lmk_scrypt_log2n, "lmk_scrypt_log2n", 10, 22, "17"),
        PX_CFG_STR(hsm_config, pkcs11_module, "pkcs11_module", "/usr/lib/softhsm/libsofthsm2.so"),
        PX_CFG_STR(hsm_config, pkcs11_token_label, "pkcs11_token_label", "possum"),
        PX_CFG_STR(hsm_config, pkcs11_key_label, "pkcs11_key_label", "possum-lmk"),
        PX_CFG_STR(hsm_config, audit_file, "audit_file", "var/hsm-audit.log"),
        PX_CFG_INT_(hsm_config, audit_flush_ms, "audit_flush_ms", 10, PX_HSM_AUDIT_FLUSH_MS_MAX,
                    "1000"),
    };
    const char *ignore[PX_CONFIG_ENTRIES_MAX + 1];
    size_t n = 0;
    int rc = px_config_bind(c, section, fields, sizeof fields / sizeof fields[0], cfg, e);
    if (rc != PX_OK)
        return rc;
    /* Unknown keys in our section are errors (a passphrase has no key to hide under). */
    for (const char *s; (s = px_config_section_at(c, n)) != NULL && n < PX_CONFIG_ENTRIES_MAX; n++)
        ignore[n] = s;
    for (size_t i = 0; i < n; i++)
        if (strcmp(ignore[i], section) == 0)
            ignore[i] = "";
    ignore[n] = NULL;
    return px_config_check_unused(c, ignore, e);
}

/* Create the parent directory of path if it is missing (one level, mode 0700). */
static int make_parent(const char *path, px_error *e)
{
    char dir[PX_PATH_MAX];
    char *slash;
    px_strlcpy(dir, path, sizeof dir);
    if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
        return PX_OK;
    *slash = 0;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return px_error_set(e, PX_EIO, "%s: cannot create directory (%s)", dir, strerror(errno));
    return PX_OK;
}

int hsm_unlock_lmk(const hsm_config *cfg, hsm_lmk_keys *lk, px_error *e)
{
    hsm_lmk l;
    int rc;
    memset(&l, 0, sizeof l);
    rc = cfg->backend == HSM_BACKEND_PKCS11 ? hsm_lmk_pkcs11_open(cfg, &l, e)
                                            : hsm_lmk_soft_open(cfg, &l, e);
    if (rc == PX_OK)
        rc = hsm_lmk_derive_keys(&l, lk, e);
    hsm_lmk_close(&l);
    return rc;
}

static int check_config(const hsm_config *cfg, px_error *e)
{
    if (!hsm_label_is_valid(cfg->caller))
        return px_error_set(e, PX_EINVAL, "hsm: caller must be 1 to %d of A-Z a-z 0-9 . _ - : /",
                            PX_HSM_LABEL_MAX - 1);
    if (cfg->audit_file[0] == 0)
        return px_error_set(e, PX_ECONFIG,
                            "[hsm] audit_file: required (every key operation is audited)");
    if (cfg->backend == HSM_BACKEND_SOFT && cfg->lmk_file[0] == 0)
        return px_error_set(e, PX_ECONFIG, "[hsm] lmk_file: required with backend = soft");
    return PX_OK;
}

/* Open an hsm on already derived LMK keys (wiped from lk either way). */
static int open_with_keys(const hsm_config *cfg, store *st, hsm_lmk_keys *lk, const char *how,
                          hsm **out, px_error *e)
{
    char detail[96];
    hsm *h = calloc(1, sizeof *h);
    int rc;
    if (h == NULL) {
        OPENSSL_cleanse(lk, sizeof *lk);
        return px_error_set(e, PX_ENOMEM, "hsm: out of memory");
    }
    h->cfg = *cfg;
    h->st = st;
    h->lk = *lk;
    OPENSSL_cleanse(lk, sizeof *lk);
    snprintf(detail, sizeof detail, "backend=%s lmk=%s%s",
             cfg->backend == HSM_BACKEND_PKCS11 ? "pkcs11" : "soft", h->lk.lmk_check, how);
    if ((rc = hsm_audit_open(&h->audit, cfg->audit_file, h->lk.audit_key, e)) == PX_OK)
        rc = hsm_audit_event(h, "hsm.open", NULL, NULL, NULL, PX_OK, detail, HSM_AUDIT_SYNC, e);
    if (rc != PX_OK) {
        hsm_audit_close(&h->audit);
        OPENSSL_cleanse(h, sizeof *h);
        free(h);
        return rc;
    }
    h->next_flush_ms = px_mono_ms() + cfg->audit_flush_ms;
    *out = h;
    return PX_OK;
}

int hsm_open(const hsm_config *cfg, store *st, hsm **out, px_error *e)
{
    hsm_lmk_keys lk;
    int rc;
    *out = NULL;
    if ((rc = check_config(cfg, e)) != PX_OK || (rc = make_parent(cfg->audit_file, e)) != PX_OK ||
        (rc = hsm_unlock_lmk(cfg, &lk, e)) != PX_OK)
        return rc;
    return open_with_keys(cfg, st, &lk, "", out, e);
}

int hsm_session_open(const hsm *h, store *st, const char *caller, hsm **out, px_error *e)
{
    hsm_config cfg = h->cfg;
    hsm_lmk_keys lk;
    int rc;
    *out = NULL;
    if (caller != NULL && px_strlcpy(cfg.caller, caller, sizeof cfg.caller) != PX_OK)
        cfg.caller[0] = 0; /* refused by check_config with the rule */
    if ((rc = check_config(&cfg, e)) != PX_OK)
        return rc;
    lk = h->lk;
    return open_with_keys(&cfg, st, &lk, " session", out, e);
}

/* Queue the aggregated counters of k as entries and zero them. */
static void agg_queue(hsm *h, hsm_key *k)
{
    for (int op = 0; op < HSM_AGG_N; op++)
        for (int r = 0; r < 2; r++) {
            if (k->agg[op][r] == 0)
                continue;
            hsm_audit_entry en = {agg_names[op],     k->label,      k->kcv,
                                  r ? "fail" : "ok", k->agg[op][r], "aggregated"};
            hsm_audit_add(&h->audit, h->cfg.caller, &en, HSM_AUDIT_QUEUE, NULL);
            k->agg[op][r] = 0;
        }
}

int hsm_audit_flush(hsm *h, px_error *e)
{
    for (hsm_key *k = h->loaded; k != NULL; k = k->next)
        agg_queue(h, k);
    h->next_flush_ms = px_mono_ms() + h->cfg.audit_flush_ms;
    return hsm_audit_write(&h->audit, 0, e);
}

int hsm_agg(hsm *h, hsm_key *k, hsm_agg_op op, int rc)
{
    k->agg[op][rc != PX_OK]++;
    if (++h->ticks >= 256) { /* read the clock now and then, not per operation */
        h->ticks = 0;
        if (px_mono_ms() >= h->next_flush_ms)
            hsm_audit_flush(h, NULL);
    }
    return rc;
}

int hsm_audit_ok(hsm *h, px_error *e)
{
    if (!h->audit.broken)
        return PX_OK;
    if (px_mono_ms() >= h->next_flush_ms && hsm_audit_flush(h, NULL) == PX_OK)
        return PX_OK;
    h->next_flush_ms = px_mono_ms() + h->cfg.audit_flush_ms;
    return px_error_set(e, PX_EIO,
                        "audit log %s cannot be written: key operations refused until it can",
                        h->audit.path);
}

int hsm_audit_event(hsm *h, const char *op, const hsm_key *k, const char *label, const char *kcv,
                    int rc, const char *detail, hsm_audit_level level, px_error *e)
{
    hsm_audit_entry en = {op,
                          k ? k->label : label,
                          k ? k->kcv : kcv,
                          rc == PX_OK      ? "ok"
                          : rc == PX_EPERM ? "refused"
                          : rc == PX_EAUTH ? "fail"
                                           : "error",
                          1,
                          detail};
    if (rc != PX_OK && level < HSM_AUDIT_WRITE)
        level = HSM_AUDIT_WRITE;
    int arc = hsm_audit_add(&h->audit, h->cfg.caller, &en, level, rc == PX_OK ? e : NULL);
    return rc != PX_OK ? rc : arc;
}

int hsm_set_caller(hsm *h, const char *caller, px_error *e)
{
    if (!hsm_label_is_valid(caller))
        return px_error_set(e, PX_EINVAL, "hsm: caller must be 1 to %d of A-Z a-z 0-9 . _ - : /",
                            PX_HSM_LABEL_MAX - 1);
    hsm_audit_flush(h, NULL); /* counted operations belong to the previous caller */
    px_strlcpy(h->cfg.caller, caller, sizeof h->cfg.caller);
    return PX_OK;
}

const char *hsm_lmk_check(const hsm *h)
{
    return h->lk.lmk_check;
}

void hsm_key_free(hsm *h, hsm_key *k)
{
    if (k == NULL)
        return;
    agg_queue(h, k);
    if (k->prev != NULL)
        k->prev->next = k->next;
    else
        h->loaded = k->next;
    if (k->next != NULL)
        k->next->prev = k->prev;
    h->nloaded--;
    crypto_key_free(k->sched);
    OPENSSL_cleanse(k, sizeof *k);
    free(k);
}

void hsm_close(hsm *h)
{
    if (h == NULL)
        return;
    while (h->loaded != NULL)
        hsm_key_free(h, h->loaded);
    hsm_audit_event(h, "hsm.close", NULL, NULL, NULL, PX_OK, NULL, HSM_AUDIT_SYNC, NULL);
    hsm_audit_close(&h->audit);
    OPENSSL_cleanse(h, sizeof *h);
    free(h);
}

int hsm_lmk_init(const hsm_config *cfg, char check[PX_HSM_KCV_HEX_MAX], px_error *e)
{
    hsm_lmk_keys lk;
    hsm_lmk l;
    struct stat st;
    hsm *h = NULL;
    int rc;
    memset(&l, 0, sizeof l);
    if ((rc = check_config(cfg, e)) != PX_OK || (rc = make_parent(cfg->audit_file, e)) != PX_OK)
        return rc;
    if (cfg->backend == HSM_BACKEND_SOFT && stat(cfg->lmk_file, &st) == 0)
        return px_error_set(e, PX_EEXIST,
                            "LMK file %s: already exists (an LMK is never overwritten)",
                            cfg->lmk_file);
    if (stat(cfg->audit_file, &st) == 0 && st.st_size > 0)
        return px_error_set(e, PX_EEXIST,
                            "audit log %s belongs to the current LMK: archive it (and its .head) "
                            "before creating a new LMK",
                            cfg->audit_file);
    if (cfg->backend == HSM_BACKEND_SOFT && (rc = make_parent(cfg->lmk_file, e)) != PX_OK)
        return rc;
    rc = cfg->backend == HSM_BACKEND_PKCS11 ? hsm_lmk_pkcs11_create(cfg, &l, e)
                                            : hsm_lmk_soft_create(cfg, &l, e);
    if (rc == PX_OK)
        rc = hsm_lmk_derive_keys(&l, &lk, e);
    hsm_lmk_close(&l);
    if (rc != PX_OK || (rc = open_with_keys(cfg, NULL, &lk, "", &h, e)) != PX_OK)
        return rc;
    px_strlcpy(check, h->lk.lmk_check, PX_HSM_KCV_HEX_MAX);
    rc = hsm_audit_event(h, "lmk.init", NULL, NULL, h->lk.lmk_check, PX_OK,
                         cfg->backend == HSM_BACKEND_PKCS11 ? "backend=pkcs11" : "backend=soft",
                         HSM_AUDIT_SYNC, e);
    hsm_close(h);
    return rc;
}
