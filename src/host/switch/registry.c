/*
 * registry.c: terminals and merchants (switch.h): TID, MID, merchant name, the TMK as a key
 * block under the LMK (set at registration, replaced by a re-key: set-tmk); and the "update
 * waiting" flag the TMS sets.
 */
#include "host/switch/switch.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>

void sw_note_update_flag(const char *tid, int on); /* switch.c */

/* [switch] hsm_* keys override [hsm] (or the HSM defaults), as for the other services. */
int switch_hsm_config_bind(px_config *c, hsm_config *h, px_error *e)
{
    int rc = PX_OK;
    hsm_config_default(h);
    if (px_config_has_section(c, "hsm"))
        rc = hsm_config_bind(c, "hsm", h, e);
    if (rc == PX_OK)
        rc = hsm_config_bind_overrides(c, "switch", h, e);
    if (rc == PX_OK)
        px_strlcpy(h->caller, "switch", sizeof h->caller);
    return rc;
}

static int id_is_valid(const char *s, size_t len)
{
    if (s == NULL || strlen(s) != len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]))
            return 0;
    return 1;
}

int switch_tid_is_valid(const char *tid)
{
    return id_is_valid(tid, 8);
}

int switch_mid_is_valid(const char *mid)
{
    return id_is_valid(mid, 15);
}

static int check_ids(const char *tid, const char *mid, const char *name, px_error *e)
{
    size_t n = name ? strlen(name) : 0;
    if (!switch_tid_is_valid(tid))
        return px_error_set(e, PX_EINVAL, "terminal id: expected 8 letters or digits");
    if (!switch_mid_is_valid(mid))
        return px_error_set(e, PX_EINVAL, "merchant id: expected 15 letters or digits");
    if (n < 1 || n > 64)
        return px_error_set(e, PX_EINVAL, "merchant name: 1 to 64 bytes");
    return PX_OK;
}

/* The TMK block must be ours (this LMK: the HSM checks its MAC) and a TDES key-encryption
 * key (K0); kcv receives its check value. */
static int check_tmk(hsm *h, const char *tmk_block, char kcv[PX_HSM_KCV_HEX_MAX], px_error *e)
{
    hsm_key *k = NULL;
    hsm_key_attrs a;
    int rc = hsm_key_load(h, tmk_block, &k, e);
    if (rc != PX_OK)
        return px_error_prefix(e, "TMK: ");
    hsm_key_get_attrs(k, &a);
    if (strcmp(a.usage, "K0") != 0 || a.algorithm != 'T' || a.length < 16)
        rc = px_error_set(e, PX_EPERM, "TMK: expected a TDES key-encryption key (K0), got %s",
                          a.usage);
    else
        px_strlcpy(kcv, hsm_key_kcv(k), PX_HSM_KCV_HEX_MAX);
    hsm_key_free(h, k);
    return rc;
}

/* Form a TMK (switch_tmk_attrs) from custodians' components. */
static int form_tmk(hsm *h, const hsm_component *c, size_t n, hsm_keyblock *kb, px_error *e)
{
    int rc = hsm_key_form(h, &switch_tmk_attrs, c, n, NULL, kb, e);
    return rc == PX_OK ? PX_OK : px_error_prefix(e, "TMK: ");
}

int switch_terminal_add(store *st, hsm *h, const char *tid, const char *mid, const char *name,
                        const char *tmk_block, px_error *e)
{
    char kcv[PX_HSM_KCV_HEX_MAX];
    store_stmt *q;
    int64_t now = px_now_ms();
    int rc = check_ids(tid, mid, name, e);
    if (rc == PX_OK)
        rc = check_tmk(h, tmk_block, kcv, e);
    if (rc != PX_OK)
        return rc;
    rc = store_prepare(st,
                       "INSERT INTO switch_terminal (tid, mid, name, tmk_block, tmk_kcv, status, "
                       "created_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, 'active', $6, $6) "
                       "ON CONFLICT DO NOTHING RETURNING tid",
                       &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, tid);
    store_bind_text(q, 2, mid);
    store_bind_text(q, 3, name);
    store_bind_text(q, 4, tmk_block);
    store_bind_text(q, 5, kcv);
    store_bind_int64(q, 6, now);
    rc = store_step(q, e);
    if (rc == STORE_DONE)
        rc = px_error_set(e, PX_EEXIST, "terminal %s is already registered", tid);
    else if (rc == STORE_ROW)
        rc = PX_OK;
    store_done(q);
    return rc;
}

int switch_terminal_add_components(store *st, hsm *h, const char *tid, const char *mid,
                                   const char *name, const hsm_component *c, size_t n,
                                   char kcv[PX_HSM_KCV_HEX_MAX], px_error *e)
{
    hsm_keyblock kb;
    int rc = check_ids(tid, mid, name, e);
    if (rc == PX_OK)
        rc = form_tmk(h, c, n, &kb, e);
    if (rc == PX_OK)
        rc = switch_terminal_add(st, h, tid, mid, name, kb.block, e);
    if (rc == PX_OK)
        px_strlcpy(kcv, kb.kcv, PX_HSM_KCV_HEX_MAX);
    return rc;
}

/* PX_OK if tid is registered, else PX_ENOTFOUND: checked before a key is formed or loaded
 * for it, so an unknown TID leaves nothing behind, not even in the HSM's audit log. */
static int terminal_exists(store *st, const char *tid, px_error *e)
{
    store_stmt *q;
    int rc;
    if (!switch_tid_is_valid(tid))
        return px_error_set(e, PX_EINVAL, "terminal id: expected 8 letters or digits");
    rc = store_prepare(st, "SELECT tid FROM switch_terminal WHERE tid = $1", &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, tid);
    rc = store_step(q, e);
    store_done(q);
    if (rc == STORE_DONE)
        return px_error_set(e, PX_ENOTFOUND, "terminal %s is not registered", tid);
    return rc == STORE_ROW ? PX_OK : rc;
}

/* The new TMK and the end of the session, in one transaction. The key version grows, as at
 * a sign-off: a node drops the work keys it cached at its next read of the row (sw_term.c),
 * and a sign-on whose keys were made under the old TMK is not recorded (sw_jobs.c). */
static int store_new_tmk(store *st, const char *tid, const char *tmk_block, const char *kcv,
                         px_error *e)
{
    store_stmt *q;
    int rc = store_begin(st, e);
    if (rc != PX_OK)
        return rc;
    rc = store_prepare(st,
                       "UPDATE switch_terminal SET tmk_block = $2, tmk_kcv = $3, signed_on = 0, "
                       "pik_block = NULL, mak_block = NULL, tdk_block = NULL, key_version = "
                       "key_version + 1, updated_ms = $4 WHERE tid = $1",
                       &q, e);
    if (rc == PX_OK) {
        store_bind_text(q, 1, tid);
        store_bind_text(q, 2, tmk_block);
        store_bind_text(q, 3, kcv);
        store_bind_int64(q, 4, px_now_ms());
        rc = store_step(q, e);
        if (rc >= 0 && store_changes(q) != 1)
            rc = px_error_set(e, PX_ENOTFOUND, "terminal %s is not registered", tid);
        else if (rc >= 0)
            rc = PX_OK;
        store_done(q);
    }
    if (rc == PX_OK)
        rc = store_commit(st, e);
    if (rc != PX_OK)
        store_rollback(st);
    return rc;
}

int switch_terminal_set_tmk(store *st, hsm *h, const char *tid, const char *tmk_block,
                            char kcv[PX_HSM_KCV_HEX_MAX], px_error *e)
{
    char cv[PX_HSM_KCV_HEX_MAX];
    int rc = terminal_exists(st, tid, e);
    if (rc == PX_OK)
        rc = check_tmk(h, tmk_block, cv, e);
    if (rc == PX_OK)
        rc = store_new_tmk(st, tid, tmk_block, cv, e);
    if (rc != PX_OK)
        return rc;
    px_strlcpy(kcv, cv, PX_HSM_KCV_HEX_MAX);
    px_info("switch", "terminal %s: new TMK (check value %s), signed off", tid, cv);
    return PX_OK;
}

int switch_terminal_set_tmk_components(store *st, hsm *h, const char *tid, const hsm_component *c,
                                       size_t n, char kcv[PX_HSM_KCV_HEX_MAX], px_error *e)
{
    hsm_keyblock kb;
    int rc = terminal_exists(st, tid, e);
    if (rc == PX_OK)
        rc = form_tmk(h, c, n, &kb, e);
    if (rc == PX_OK)
        rc = switch_terminal_set_tmk(st, h, tid, kb.block, kcv, e);
    return rc;
}

static const char sql_cols[] =
    "SELECT tid, mid, name, tmk_kcv, status, update_waiting, signed_on, batch_no, batch_open, "
    "batch_date, key_version, signon_ms, created_ms FROM switch_terminal";

static void read_row(store_stmt *q, switch_terminal_info *t)
{
    memset(t, 0, sizeof *t);
#define COL(i) (store_col_text(q, i) ? store_col_text(q, i) : "")
    px_strlcpy(t->tid, COL(0), sizeof t->tid);
    px_strlcpy(t->mid, COL(1), sizeof t->mid);
    px_strlcpy(t->name, COL(2), sizeof t->name);
    px_strlcpy(t->tmk_kcv, COL(3), sizeof t->tmk_kcv);
    px_strlcpy(t->status, COL(4), sizeof t->status);
    t->update_waiting = store_col_int64(q, 5) != 0;
    t->signed_on = store_col_int64(q, 6) != 0;
    t->batch_no = store_col_int64(q, 7);
    t->batch_open = store_col_int64(q, 8) != 0;
    px_strlcpy(t->batch_date, COL(9), sizeof t->batch_date);
    t->key_version = store_col_int64(q, 10);
    t->signon_ms = store_col_int64(q, 11);
    t->created_ms = store_col_int64(q, 12);
#undef COL
}

int switch_terminal_get(store *st, const char *tid, switch_terminal_info *out, px_error *e)
{
    char sql[sizeof sql_cols + 32];
    store_stmt *q;
    int rc;
    snprintf(sql, sizeof sql, "%s WHERE tid = $1", sql_cols);
    rc = store_prepare(st, sql, &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, tid);
    rc = store_step(q, e);
    if (rc == STORE_ROW) {
        read_row(q, out);
        rc = PX_OK;
    } else if (rc == STORE_DONE) {
        rc = px_error_set(e, PX_ENOTFOUND, "terminal %s is not registered", tid);
    }
    store_done(q);
    return rc;
}

int switch_terminal_list(store *st, int (*fn)(void *ud, const switch_terminal_info *t), void *ud,
                         px_error *e)
{
    char sql[sizeof sql_cols + 64];
    char after[9] = "";
    int rc;
    snprintf(sql, sizeof sql, "%s WHERE tid > $1 ORDER BY tid LIMIT 500", sql_cols);
    for (;;) { /* keyset pagination: results stay bounded */
        store_stmt *q;
        int rows = 0, stop = 0;
        rc = store_prepare(st, sql, &q, e);
        if (rc != PX_OK)
            return rc;
        store_bind_text(q, 1, after);
        while ((rc = store_step(q, e)) == STORE_ROW) {
            switch_terminal_info t;
            read_row(q, &t);
            rows++;
            px_strlcpy(after, t.tid, sizeof after);
            if ((stop = fn(ud, &t)) != 0)
                break;
        }
        store_done(q);
        if (stop)
            return stop;
        if (rc < 0)
            return rc;
        if (rows < 500)
            return PX_OK;
    }
}

int switch_terminal_set_update_waiting(store *st, const char *tid, int on, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st,
                           "UPDATE switch_terminal SET update_waiting = $2, updated_ms = $3 WHERE "
                           "tid = $1",
                           &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, tid);
    store_bind_int64(q, 2, on ? 1 : 0);
    store_bind_int64(q, 3, px_now_ms());
    rc = store_step(q, e);
    if (rc >= 0 && store_changes(q) == 0)
        rc = px_error_set(e, PX_ENOTFOUND, "terminal %s is not registered", tid);
    else if (rc >= 0)
        rc = PX_OK;
    store_done(q);
    if (rc == PX_OK) {
        px_info("switch", "terminal %s: update waiting flag %s", tid, on ? "set" : "cleared");
        sw_note_update_flag(tid, on);
    }
    return rc;
}
