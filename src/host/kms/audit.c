/*
 * audit.c: the KMS's audit trail (kms_audit) and what can be read without the HSM.
 */
#include "host/kms/kms_int.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void kms_audit(kms *k, const char *actor, const char *action, const char *serial, int ok,
               const char *fmt, ...)
{
    char reason[PX_ERRMSG_MAX];
    store_stmt *q;
    px_error e = {0};
    va_list ap;
    int rc;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    rc = store_prepare(k->st,
                       "INSERT INTO kms_audit (ts_ms, actor, action, serial, result, reason) "
                       "VALUES ($1, $2, $3, $4, $5, $6)",
                       &q, &e);
    if (rc == PX_OK) {
        store_bind_int64(q, 1, px_now_ms());
        store_bind_text(q, 2, actor && actor[0] ? actor : "?");
        store_bind_text(q, 3, action);
        store_bind_text(q, 4, serial);
        store_bind_text(q, 5, ok ? "ok" : "refused");
        store_bind_text(q, 6, reason);
        rc = store_step(q, &e);
        store_done(q);
    }
    if (rc < 0)
        px_errorlog(KMS_MOD, "audit: cannot record %s %s for %s (%s): %s", action,
                    ok ? "ok" : "refused", serial, reason, px_error_text(&e));
}

void kms_audit_tls_refused(kms *k, const net_tls_refusal *r)
{
    char text[PX_ERRMSG_MAX];
    net_tls_refusal_text(r, text, sizeof text);
    if (r->unreported > 0)
        kms_audit(k, r->peer, "tls.refused", "-", 0,
                  "TLS handshake refused: %s; %llu more refused handshakes were not recorded "
                  "(rate limit)",
                  text, (unsigned long long)r->unreported);
    else
        kms_audit(k, r->peer, "tls.refused", "-", 0, "TLS handshake refused: %s", text);
}

static void terminal_row(store_stmt *q, kms_terminal_info *t)
{
    memset(t, 0, sizeof *t);
    px_strlcpy(t->serial, store_col_text(q, 0), sizeof t->serial);
    px_strlcpy(t->tk_kcv, store_col_text(q, 1), sizeof t->tk_kcv);
    px_strlcpy(t->tmk_kcv, store_col_text(q, 2), sizeof t->tmk_kcv);
    px_strlcpy(t->device_cn, store_col_text(q, 3), sizeof t->device_cn);
    px_strlcpy(t->status, store_col_text(q, 4), sizeof t->status);
    t->received_ms = store_col_int64(q, 5);
    t->loaded_ms = store_col_int64(q, 6);
    t->downloads = store_col_int64(q, 7);
}

#define TERMINAL_COLS                                                                              \
    "SELECT serial, tk_kcv, tmk_kcv, device_cn, status, received_ms, loaded_ms, downloads FROM "   \
    "kms_terminal "

int kms_terminal_get(store *st, const char *serial, kms_terminal_info *out, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st, TERMINAL_COLS "WHERE serial = $1", &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, serial);
    rc = store_step(q, e);
    if (rc == STORE_ROW)
        terminal_row(q, out);
    else if (rc == STORE_DONE)
        rc = px_error_set(e, PX_ENOTFOUND, "unknown serial %s", serial);
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

int kms_terminal_list(store *st, int (*fn)(void *ud, const kms_terminal_info *t), void *ud,
                      px_error *e)
{
    char after[PKI_TKENV_SERIAL_MAX + 1] = "";
    for (;;) { /* keyset pages: bounded result sets */
        store_stmt *q;
        size_t n = 0;
        int rc = store_prepare(st, TERMINAL_COLS "WHERE serial > $1 ORDER BY serial LIMIT 1000", &q,
                               e);
        if (rc != PX_OK)
            return rc;
        store_bind_text(q, 1, after);
        while ((rc = store_step(q, e)) == STORE_ROW) {
            kms_terminal_info t;
            terminal_row(q, &t);
            px_strlcpy(after, t.serial, sizeof after);
            n++;
            if ((rc = fn(ud, &t)) != 0)
                break;
        }
        store_done(q);
        if (rc != STORE_DONE)
            return rc;
        if (n < 1000)
            return PX_OK;
    }
}

int kms_audit_list(store *st, const char *serial, int (*fn)(void *ud, const kms_audit_row *r),
                   void *ud, px_error *e)
{
    int64_t after = 0;
    for (;;) {
        store_stmt *q;
        size_t n = 0;
        int rc = store_prepare(st,
                               serial ? "SELECT id, ts_ms, actor, action, serial, result, reason "
                                        "FROM kms_audit WHERE serial = $2 AND id > $1 ORDER BY "
                                        "id LIMIT 1000"
                                      : "SELECT id, ts_ms, actor, action, serial, result, reason "
                                        "FROM kms_audit WHERE id > $1 ORDER BY id LIMIT 1000",
                               &q, e);
        if (rc != PX_OK)
            return rc;
        store_bind_int64(q, 1, after);
        if (serial)
            store_bind_text(q, 2, serial);
        while ((rc = store_step(q, e)) == STORE_ROW) {
            kms_audit_row r;
            memset(&r, 0, sizeof r);
            r.id = store_col_int64(q, 0);
            r.ts_ms = store_col_int64(q, 1);
            px_strlcpy(r.actor, store_col_text(q, 2), sizeof r.actor);
            px_strlcpy(r.action, store_col_text(q, 3), sizeof r.action);
            px_strlcpy(r.serial, store_col_text(q, 4), sizeof r.serial);
            px_strlcpy(r.result, store_col_text(q, 5), sizeof r.result);
            px_strlcpy(r.reason, store_col_text(q, 6), sizeof r.reason);
            after = r.id;
            n++;
            if ((rc = fn(ud, &r)) != 0)
                break;
        }
        store_done(q);
        if (rc != STORE_DONE)
            return rc;
        if (n < 1000)
            return PX_OK;
    }
}
