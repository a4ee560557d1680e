/*
 * registry.c: the terminals the TMS manages (tms.h), and each one's download master key DMK,
 * derived in the HSM from the TMS master key and the serial number (seed 000 [0076]; docs/
 * update-protocol.md "Keys") and kept as a key block under the LMK.
 */
#include "host/tms/tms_int.h"

#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>

/* K0, TDES 16, may encrypt (DWK-1 = DWK under DMK), leaves only as a TR-31 key block. */
const hsm_key_attrs tms_dmk_attrs = {"K0", 'T', 'E', 'E', 16};

int tms_txn(store *st, int (*fn)(store *st, void *ud, px_error *e), void *ud, px_error *e)
{
    int rc = PX_OK;
    for (int i = 0; i < TMS_TXN_TRIES; i++) {
        if ((rc = store_begin(st, e)) == PX_OK && (rc = fn(st, ud, e)) == PX_OK)
            rc = store_commit(st, e);
        if (rc == PX_OK)
            return PX_OK;
        store_rollback(st);
        if (!store_is_retryable(rc))
            return rc;
    }
    return rc;
}

void tms_dmk_data(const char *serial, uint8_t out[16])
{
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256((const uint8_t *)serial, strlen(serial), md);
    memcpy(out, md, 16);
}

int tms_serial_is_valid(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n >= PX_TMS_SERIAL_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

static int printable(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n >= max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static int terminal_check(const tms_terminal *t, px_error *e)
{
    tms_schedule sc;
    if (!tms_serial_is_valid(t->serial))
        return px_error_set(e, PX_EINVAL, "serial: 1 to %d of A-Z a-z 0-9 . _ -",
                            PX_TMS_SERIAL_MAX - 1);
    if (!tuf_name_is_valid(t->model))
        return px_error_set(e, PX_EINVAL, "model: 1 to %d of A-Z a-z 0-9 . _ -",
                            PX_TMS_NAME_MAX - 1);
    if (!printable(t->merchant, PX_TMS_NAME_MAX))
        return px_error_set(e, PX_EINVAL, "merchant: at most %d printable characters",
                            PX_TMS_NAME_MAX - 1);
    if (t->tid[0] != 0 &&
        (strlen(t->tid) != 8 || !printable(t->tid, PX_TMS_TID_MAX) || strchr(t->tid, ' ') != NULL))
        return px_error_set(e, PX_EINVAL, "tid: the switch's terminal id, 8 characters");
    if (t->ngroups > PX_TMS_GROUPS_MAX)
        return px_error_set(e, PX_EINVAL, "groups: at most %d", PX_TMS_GROUPS_MAX);
    for (size_t i = 0; i < t->ngroups; i++)
        if (!tuf_name_is_valid(t->groups[i]))
            return px_error_set(e, PX_EINVAL, "group %zu: 1 to %d of A-Z a-z 0-9 . _ -", i + 1,
                                PX_TMS_NAME_MAX - 1);
    if (t->schedule[0] != 0 && tms_schedule_parse(t->schedule, &sc, e) != PX_OK)
        return px_error_prefix(e, "schedule: ");
    return PX_OK;
}

static int add_txn(store *st, void *ud, px_error *e)
{
    const tms_terminal *t = ud;
    int64_t now = px_now_ms();
    store_stmt *q;
    int rc = store_prepare(st,
                           "INSERT INTO tms_terminal (serial, model, merchant, tid, schedule, "
                           "created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $6) "
                           "ON CONFLICT DO NOTHING RETURNING serial",
                           &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, t->serial);
    store_bind_text(q, 2, t->model);
    store_bind_text(q, 3, t->merchant);
    store_bind_text(q, 4, t->tid);
    store_bind_text(q, 5, t->schedule);
    store_bind_int64(q, 6, now);
    rc = store_step(q, e);
    store_done(q);
    if (rc == STORE_DONE)
        return px_error_set(e, PX_EEXIST, "terminal %s is already registered", t->serial);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < t->ngroups; i++) {
        if ((rc = store_prepare(st,
                                "INSERT INTO tms_terminal_group (serial, grp) VALUES ($1, $2) "
                                "ON CONFLICT DO NOTHING",
                                &q, e)) != PX_OK)
            return rc;
        store_bind_text(q, 1, t->serial);
        store_bind_text(q, 2, t->groups[i]);
        rc = store_step(q, e);
        store_done(q);
        if (rc < 0)
            return rc;
    }
    return PX_OK;
}

int tms_terminal_add(store *st, const tms_terminal *t, px_error *e)
{
    int rc = terminal_check(t, e);
    if (rc == PX_OK)
        rc = tms_txn(st, add_txn, (void *)t, e);
    if (rc == PX_OK)
        px_info(TMS_MOD, "terminal %s registered (model %s)", t->serial, t->model);
    return rc;
}

/* {name: version} as the registry keeps it; an unreadable value leaves the list empty. */
static void installed_parse(const char *text, tms_terminal *out)
{
    json_t *j = json_loads(text, 0, NULL), *v;
    const char *k;
    json_object_foreach (j, k, v) {
        if (out->ninstalled >= PX_TMS_INSTALLED_MAX || !json_is_string(v))
            break;
        px_strlcpy(out->installed[out->ninstalled].name, k, PX_TMS_NAME_MAX);
        px_strlcpy(out->installed[out->ninstalled].version, json_string_value(v),
                   PX_TMS_VERSION_MAX);
        out->ninstalled++;
    }
    json_decref(j);
}

int tms_terminal_get(store *st, const char *serial, tms_terminal *out, px_error *e)
{
    store_stmt *q;
    int rc;
    memset(out, 0, sizeof *out);
    rc = store_prepare(st,
                       "SELECT serial, model, merchant, tid, schedule, installed, dmk_kcv, "
                       "last_contact_ms, created_ms, updated_ms FROM tms_terminal WHERE "
                       "serial = $1",
                       &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, serial);
    rc = store_step(q, e);
    if (rc == STORE_ROW) {
        px_strlcpy(out->serial, store_col_text(q, 0), sizeof out->serial);
        px_strlcpy(out->model, store_col_text(q, 1), sizeof out->model);
        px_strlcpy(out->merchant, store_col_text(q, 2), sizeof out->merchant);
        px_strlcpy(out->tid, store_col_text(q, 3), sizeof out->tid);
        px_strlcpy(out->schedule, store_col_text(q, 4), sizeof out->schedule);
        installed_parse(store_col_text(q, 5), out);
        px_strlcpy(out->dmk_kcv, store_col_text(q, 6), sizeof out->dmk_kcv);
        out->last_contact_ms = store_col_int64(q, 7);
        out->created_ms = store_col_int64(q, 8);
        out->updated_ms = store_col_int64(q, 9);
    }
    store_done(q);
    if (rc == STORE_DONE)
        return px_error_set(e, PX_ENOTFOUND, "terminal %s is not registered", serial);
    if (rc < 0)
        return rc;
    if ((rc = store_prepare(st, "SELECT grp FROM tms_terminal_group WHERE serial = $1 ORDER BY grp",
                            &q, e)) != PX_OK)
        return rc;
    store_bind_text(q, 1, serial);
    while ((rc = store_step(q, e)) == STORE_ROW && out->ngroups < PX_TMS_GROUPS_MAX)
        px_strlcpy(out->groups[out->ngroups++], store_col_text(q, 0), PX_TMS_NAME_MAX);
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

int tms_terminal_set_schedule(store *st, const char *serial, const char *schedule, px_error *e)
{
    tms_schedule sc;
    store_stmt *q;
    int rc;
    if (schedule[0] != 0 && tms_schedule_parse(schedule, &sc, e) != PX_OK)
        return px_error_prefix(e, "schedule: ");
    if ((rc = store_prepare(st,
                            "UPDATE tms_terminal SET schedule = $2, updated_ms = $3 WHERE "
                            "serial = $1",
                            &q, e)) != PX_OK)
        return rc;
    store_bind_text(q, 1, serial);
    store_bind_text(q, 2, schedule);
    store_bind_int64(q, 3, px_now_ms());
    rc = store_step(q, e);
    if (rc >= 0 && store_changes(q) == 0)
        rc = px_error_set(e, PX_ENOTFOUND, "terminal %s is not registered", serial);
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

/* The stored DMK block of serial ("" when not derived yet). */
static int dmk_read(store *st, const char *serial, hsm_keyblock *out, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st, "SELECT dmk_block, dmk_kcv FROM tms_terminal WHERE serial = $1", &q,
                           e);
    memset(out, 0, sizeof *out);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, serial);
    rc = store_step(q, e);
    if (rc == STORE_ROW && !store_col_is_null(q, 0)) {
        px_strlcpy(out->block, store_col_text(q, 0), sizeof out->block);
        px_strlcpy(out->kcv, store_col_text(q, 1), sizeof out->kcv);
    }
    store_done(q);
    if (rc == STORE_DONE)
        return px_error_set(e, PX_ENOTFOUND, "terminal %s is not registered", serial);
    return rc < 0 ? rc : PX_OK;
}

int tms_terminal_dmk(store *st, hsm *h, const char *master_label, const char *serial,
                     hsm_keyblock *out, px_error *e)
{
    uint8_t data[16];
    hsm_derive_params p = {.method = HSM_DERIVE_3DES, .data = data, .datalen = sizeof data};
    hsm_key *master = NULL;
    store_stmt *q;
    int rc = dmk_read(st, serial, out, e);
    if (rc != PX_OK || out->block[0] != 0)
        return rc;
    tms_dmk_data(serial, data);
    if ((rc = hsm_key_load_named(h, master_label, &master, e)) != PX_OK)
        return px_error_prefix(e, "TMS master key %s: ", master_label);
    rc = hsm_key_derive(h, master, &p, &tms_dmk_attrs, NULL, out, e);
    hsm_key_free(h, master);
    if (rc != PX_OK)
        return rc;
    /* Deterministic: a node that derived it first wrote the same key; keep the first. */
    if ((rc = store_prepare(st,
                            "UPDATE tms_terminal SET dmk_block = $2, dmk_kcv = $3, updated_ms = "
                            "$4 WHERE serial = $1 AND dmk_block IS NULL",
                            &q, e)) != PX_OK)
        return rc;
    store_bind_text(q, 1, serial);
    store_bind_text(q, 2, out->block);
    store_bind_text(q, 3, out->kcv);
    store_bind_int64(q, 4, px_now_ms());
    rc = store_step(q, e);
    store_done(q);
    if (rc < 0)
        return rc;
    px_info(TMS_MOD, "terminal %s: DMK derived (kcv %s)", serial, out->kcv);
    return dmk_read(st, serial, out, e);
}

int tms_terminal_provision(store *st, hsm *h, const char *master_label, const char *serial,
                           const char *kek_label, char *block, size_t blockcap,
                           char kcv[PX_HSM_KCV_HEX_MAX], px_error *e)
{
    hsm_keyblock kb;
    hsm_key *dmk = NULL, *kek = NULL;
    int rc = tms_terminal_dmk(st, h, master_label, serial, &kb, e);
    if (rc == PX_OK && (rc = hsm_key_load(h, kb.block, &dmk, e)) == PX_OK &&
        (rc = hsm_key_load_named(h, kek_label, &kek, e)) != PX_OK)
        px_error_prefix(e, "KEK %s: ", kek_label);
    if (rc == PX_OK)
        rc = hsm_key_export(h, kek, dmk, HSM_EXPORT_TR31, block, blockcap, kcv, e);
    hsm_key_free(h, kek);
    hsm_key_free(h, dmk);
    OPENSSL_cleanse(&kb, sizeof kb);
    if (rc == PX_OK)
        px_info(TMS_MOD, "terminal %s: DMK exported under %s for provisioning (kcv %s)", serial,
                kek_label, kcv);
    return rc;
}
