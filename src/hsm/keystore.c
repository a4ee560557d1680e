/*
 * keystore.c: named keys in the store (table hsm_key, migration 0100_hsm). A row holds the
 * key block under the LMK and, for listing, a copy of its clear header fields and KCV;
 * loading trusts only the block (its MAC, and the label bound inside it).
 */
#include "hsm/hsm_int.h"
#include "lib/str.h"
#include "lib/time.h"

#include <string.h>

static int need_store(hsm *h, px_error *e)
{
    return h->st != NULL
               ? PX_OK
               : px_error_set(e, PX_ESTATE, "named keys: this hsm was opened without a store");
}

int hsm_store_insert(hsm *h, const char *label, const hsm_key_attrs *a, const hsm_keyblock *kb,
                     px_error *e)
{
    static const char sql[] =
        "INSERT INTO hsm_key (label, key_block, kcv, key_usage, algorithm, mode_of_use, exportability, "
        "key_length, lmk_check, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    char alg[2] = {a->algorithm, 0}, mode[2] = {a->mode, 0}, exp[2] = {a->exportability, 0};
    store_stmt *st = NULL;
    int rc = need_store(h, e);
    if (rc != PX_OK || (rc = store_prepare(h->st, sql, &st, e)) != PX_OK)
        return rc;
    store_bind_text(st, 1, label);
    store_bind_text(st, 2, kb->block);
    store_bind_text(st, 3, kb->kcv);
    store_bind_text(st, 4, a->usage);
    store_bind_text(st, 5, alg);
    store_bind_text(st, 6, mode);
    store_bind_text(st, 7, exp);
    store_bind_int64(st, 8, (int64_t)a->length);
    store_bind_text(st, 9, h->lk.lmk_check);
    store_bind_int64(st, 10, px_now_ms());
    rc = store_step(st, e);
    store_done(st);
    if (rc == PX_ECONFLICT)
        return px_error_set(e, PX_EEXIST, "key label %s already exists", label);
    return rc < 0 ? rc : PX_OK;
}

int hsm_store_get(hsm *h, const char *label, char *block, size_t cap, px_error *e)
{
    store_stmt *st = NULL;
    int rc = need_store(h, e);
    if (rc != PX_OK || (rc = store_prepare(h->st, "SELECT key_block FROM hsm_key WHERE label = $1",
                                           &st, e)) != PX_OK)
        return rc;
    store_bind_text(st, 1, label);
    rc = store_step(st, e);
    if (rc == STORE_ROW) {
        const char *b = store_col_text(st, 0);
        rc = b != NULL && px_strlcpy(block, b, cap) == PX_OK
                 ? PX_OK
                 : px_error_set(e, PX_EFORMAT, "key %s: stored key block is empty or too long",
                                label);
    } else if (rc == STORE_DONE) {
        rc = px_error_set(e, PX_ENOTFOUND, "key %s: no such key", label);
    }
    store_done(st);
    return rc;
}

int hsm_store_delete(hsm *h, const char *label, px_error *e)
{
    store_stmt *st = NULL;
    int rc = need_store(h, e);
    if (rc != PX_OK ||
        (rc = store_prepare(h->st, "DELETE FROM hsm_key WHERE label = $1", &st, e)) != PX_OK)
        return rc;
    store_bind_text(st, 1, label);
    rc = store_step(st, e);
    if (rc >= 0)
        rc = store_changes(st) == 1 ? PX_OK
                                    : px_error_set(e, PX_ENOTFOUND, "key %s: no such key", label);
    store_done(st);
    return rc;
}

/* Fill a listing row from the current result row. */
static void row_from(store_stmt *st, hsm_key_row *r)
{
    const char *v;
    memset(r, 0, sizeof *r);
    px_strlcpy(r->label, (v = store_col_text(st, 0)) ? v : "", sizeof r->label);
    px_strlcpy(r->attrs.usage, (v = store_col_text(st, 1)) ? v : "", sizeof r->attrs.usage);
    r->attrs.algorithm = (v = store_col_text(st, 2)) ? v[0] : '?';
    r->attrs.mode = (v = store_col_text(st, 3)) ? v[0] : '?';
    r->attrs.exportability = (v = store_col_text(st, 4)) ? v[0] : '?';
    r->attrs.length = (size_t)store_col_int64(st, 5);
    px_strlcpy(r->kcv, (v = store_col_text(st, 6)) ? v : "", sizeof r->kcv);
    px_strlcpy(r->lmk_check, (v = store_col_text(st, 7)) ? v : "", sizeof r->lmk_check);
    r->created_ms = store_col_int64(st, 8);
}

int hsm_keys_list(store *s, int (*fn)(void *ud, const hsm_key_row *row), void *ud, px_error *e)
{
    static const char sql[] =
        "SELECT label, key_usage, algorithm, mode_of_use, exportability, key_length, "
        "kcv, lmk_check, created_ms FROM hsm_key ORDER BY label";
    store_stmt *st = NULL;
    hsm_key_row r;
    int rc = store_prepare(s, sql, &st, e), stop = 0;
    if (rc != PX_OK)
        return rc;
    while (!stop && (rc = store_step(st, e)) == STORE_ROW) {
        row_from(st, &r);
        stop = fn(ud, &r);
    }
    store_done(st);
    if (stop)
        return stop;
    return rc < 0 ? rc : PX_OK;
}
