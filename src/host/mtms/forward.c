/*
 * forward.c: the outbox of claim 3 ("the MTMS looks up the KMS's communication method and
 * address and sends the TK there"): envelopes wait in mtms_outbox until the customer's KMS
 * acknowledges them (or refuses them for good); a KMS that is down only delays them.
 *
 * One pass: claim what is due (a lease, so two nodes never send the same item at once and
 * an item whose node died is taken again), send each customer's items in batches over
 * mutual TLS (the KMS's certificate must be that customer's KMS), record every outcome.
 */
#include "host/mtms/mtms_int.h"
#include "crypto/crypto.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"
#include "pki/https.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct due {
    char id[PKI_TKENV_SERIAL_MAX + 80];
    char serial[PKI_TKENV_SERIAL_MAX + 1];
    char customer[PX_CUSTOMER_CODE_MAX];
    char tk_kcv[8];
    char *envelope;
    int64_t attempts;
} due;

void mtms_forward_config_default(mtms_forward_config *c)
{
    memset(c, 0, sizeof *c);
    c->timeout_ms = 10000;
    c->backoff_min_ms = 1000;
    c->backoff_max_ms = 300000;
    c->lease_ms = 60000;
    c->batch = PX_MTMS_OUTBOX_BATCH;
}

static int64_t backoff_ms(const mtms_forward_config *c, int64_t attempts)
{
    int64_t d = c->backoff_min_ms;
    uint8_t r[2] = {0, 0};
    for (int64_t i = 1; i < attempts && d < c->backoff_max_ms; i++)
        d *= 2;
    if (d > c->backoff_max_ms)
        d = c->backoff_max_ms;
    (void)crypto_random(r, sizeof r,
                        NULL); /* up to a quarter more: KMSes coming back are not stampeded */
    return d + (d / 4) * (((int64_t)r[0] << 8 | r[1]) % 1000) / 1000;
}

static int claim(mtms *m, const mtms_forward_config *c, due **out, size_t *nout, px_error *e)
{
    int64_t now = px_now_ms();
    size_t cap = c->batch * 4, n = 0;
    due *items = calloc(cap, sizeof *items);
    store_stmt *q;
    int rc = items ? PX_OK : px_error_set(e, PX_ENOMEM, "outbox: out of memory");
    *out = NULL;
    *nout = 0;
    if (rc == PX_OK)
        rc = store_begin(m->st, e); /* one transaction (one fsync) for the whole claim */
    if (rc == PX_OK)
        rc = store_prepare(m->st,
                           "SELECT id, serial, customer_code, envelope, tk_kcv, attempts "
                           "FROM mtms_outbox WHERE state = 'pending' AND next_ms <= $1 AND "
                           "lease_ms <= $1 ORDER BY customer_code, next_ms LIMIT $2",
                           &q, e);
    if (rc == PX_OK) {
        store_bind_int64(q, 1, now);
        store_bind_int64(q, 2, (int64_t)cap);
        while (n < cap && (rc = store_step(q, e)) == STORE_ROW) {
            due *d = &items[n];
            px_strlcpy(d->id, store_col_text(q, 0), sizeof d->id);
            px_strlcpy(d->serial, store_col_text(q, 1), sizeof d->serial);
            px_strlcpy(d->customer, store_col_text(q, 2), sizeof d->customer);
            d->envelope = strdup(store_col_text(q, 3));
            px_strlcpy(d->tk_kcv, store_col_text(q, 4), sizeof d->tk_kcv);
            d->attempts = store_col_int64(q, 5);
            if (d->envelope == NULL) {
                rc = px_error_set(e, PX_ENOMEM, "outbox: out of memory");
                break;
            }
            n++;
        }
        store_done(q);
        rc = rc < 0 ? rc : PX_OK;
    }
    /* take the lease on each; what another node took first is dropped */
    for (size_t i = 0; rc == PX_OK && i < n;) {
        rc = store_prepare(m->st,
                           "UPDATE mtms_outbox SET lease_ms = $2 WHERE id = $1 AND state = "
                           "'pending' AND lease_ms <= $3",
                           &q, e);
        if (rc != PX_OK)
            break;
        store_bind_text(q, 1, items[i].id);
        store_bind_int64(q, 2, now + c->lease_ms);
        store_bind_int64(q, 3, now);
        rc = store_step(q, e);
        rc = rc < 0 ? rc : PX_OK;
        if (rc == PX_OK && store_changes(q) != 1) {
            free(items[i].envelope);
            items[i] = items[--n];
        } else {
            i++;
        }
        store_done(q);
    }
    if (rc == PX_OK && store_in_transaction(m->st))
        rc = store_commit(m->st, e);
    if (rc != PX_OK) {
        store_rollback(m->st);
        for (size_t i = 0; i < n; i++)
            free(items[i].envelope);
        free(items);
        return rc;
    }
    *out = items;
    *nout = n;
    return PX_OK;
}

/* sql with $1 = a, $2 = b (text) and $3 = x. */
static int run(mtms *m, const char *sql, const char *a, const char *b, int64_t x, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(m->st, sql, &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, a);
    store_bind_text(q, 2, b);
    store_bind_int64(q, 3, x);
    rc = store_step(q, e);
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

/* The outcome updates below run inside the caller's transaction (one per KMS request, so
 * one fsync for a batch); a failed one fails the transaction, which the caller logs: the
 * items are then sent again when their lease runs out, and the KMS answers duplicates. */

/* Not delivered: try again later (the serial says why). */
static int retry_later(mtms *m, const mtms_forward_config *c, const due *d, const char *why,
                       px_error *e)
{
    int64_t now = px_now_ms(), next = now + backoff_ms(c, d->attempts + 1);
    int rc = run(m,
                 "UPDATE mtms_outbox SET attempts = attempts + 1, next_ms = $3, lease_ms = 0, "
                 "last_error = $2 WHERE id = $1 AND state = 'pending'",
                 d->id, why, next, e);
    if (rc == PX_OK)
        rc = run(m, "UPDATE mtms_serial SET last_error = $2, updated_ms = $3 WHERE serial = $1",
                 d->serial, why, now, e);
    return rc;
}

static int acknowledged(mtms *m, const due *d, const char *kms_cn, const char *tmk_kcv, px_error *e)
{
    int64_t now = px_now_ms();
    int rc = run(m,
                 "UPDATE mtms_outbox SET state = 'acknowledged', attempts = attempts + 1, "
                 "done_ms = $3, lease_ms = 0, last_error = $2 WHERE id = $1",
                 d->id, "", now, e);
    if (rc == PX_OK) /* the serial, unless a newer TK for it was uploaded meanwhile */
        rc = run(m,
                 "UPDATE mtms_serial SET status = 'acknowledged', acked_ms = $3, last_error = '', "
                 "updated_ms = $3 WHERE serial = $1 AND tk_kcv = $2",
                 d->serial, d->tk_kcv, now, e);
    if (rc == PX_OK)
        mtms_audit(m, "mtms", "forward", d->serial, d->customer, 1,
                   "TK (KCV %s) acknowledged by %s; TMK KCV %s", d->tk_kcv, kms_cn,
                   tmk_kcv ? tmk_kcv : "?");
    return rc;
}

static int refused(mtms *m, const due *d, const char *kms_cn, const char *why, px_error *e)
{
    int64_t now = px_now_ms();
    int rc = run(m,
                 "UPDATE mtms_outbox SET state = 'refused', attempts = attempts + 1, done_ms = "
                 "$3, lease_ms = 0, last_error = $2 WHERE id = $1",
                 d->id, why, now, e);
    if (rc == PX_OK)
        rc = run(m,
                 "UPDATE mtms_serial SET status = 'refused', last_error = $2, updated_ms = $3 "
                 "WHERE serial = $1",
                 d->serial, why, now, e);
    if (rc == PX_OK)
        mtms_audit(m, "mtms", "forward", d->serial, d->customer, 0, "%s refused the TK: %s", kms_cn,
                   why);
    px_warn(MTMS_MOD, "TK of %s refused by %s: %s", d->serial, kms_cn, why);
    return rc;
}

static int mark_forwarded(mtms *m, const due *d, px_error *e)
{
    return run(m,
               "UPDATE mtms_serial SET status = 'forwarded', forwarded_ms = $3, updated_ms = $3 "
               "WHERE serial = $1 AND tk_kcv = $2 AND status IN ('received', 'forwarded')",
               d->serial, d->tk_kcv, px_now_ms(), e);
}

/* Commit what the caller began, or roll back and log why. */
static void finish(mtms *m, int rc, px_error *e, const char *what, size_t n)
{
    if (rc == PX_OK)
        rc = store_commit(m->st, e);
    if (rc != PX_OK) {
        store_rollback(m->st);
        px_errorlog(MTMS_MOD,
                    "outbox: cannot record %s of %zu TKs: %s (they are sent again when "
                    "their lease runs out; the KMS answers duplicates)",
                    what, n, px_error_text(e));
    }
}

/* One answer item against what was sent. */
static int record_result(mtms *m, const due *d, const char *kms_cn, json_t *res,
                         mtms_forward_stats *st, px_error *e)
{
    const char *status = json_string_value(json_object_get(res, "status"));
    const char *serial = json_string_value(json_object_get(res, "serial"));
    const char *kcv = json_string_value(json_object_get(res, "tk_kcv"));
    const char *msg = json_string_value(json_object_get(res, "message"));
    char why[PX_ERRMSG_MAX];
    if (status == NULL || serial == NULL || strcmp(serial, d->serial) != 0) {
        st->refused++;
        return refused(m, d, kms_cn, "the KMS's answer does not match what was sent", e);
    }
    if (strcmp(status, "imported") == 0 || strcmp(status, "duplicate") == 0) {
        if (kcv == NULL || strcmp(kcv, d->tk_kcv) != 0) {
            snprintf(why, sizeof why, "the KMS holds TK KCV %s, the envelope carries %s",
                     kcv ? kcv : "?", d->tk_kcv);
            st->refused++;
            return refused(m, d, kms_cn, why, e);
        }
        st->acknowledged++;
        return acknowledged(m, d, kms_cn, json_string_value(json_object_get(res, "tmk_kcv")), e);
    }
    snprintf(why, sizeof why, "%s", msg ? msg : status);
    st->refused++;
    return refused(m, d, kms_cn, why, e);
}

/* Send items[0..n) (one customer's) to its KMS. */
static void send_batch(mtms *m, const mtms_forward_config *c, due *items, size_t n,
                       mtms_forward_stats *st)
{
    mtms_customer *cu = malloc(sizeof *cu);
    pki_https *h = NULL;
    json_t *body = NULL, *list, *reply = NULL, *results;
    char why[PX_ERRMSG_MAX];
    long status = 0;
    px_error e = {0};
    int rc = cu ? mtms_customer_get(m->st, items[0].customer, cu, &e)
                : px_error_set(&e, PX_ENOMEM, "out of memory");
    if (rc == PX_OK)
        rc = pki_https_open(cu->kms_address, &c->tls, c->timeout_ms, &h, &e);
    if (rc == PX_OK) {
        px_error we = {0};
        int wrc = store_begin(m->st, &we);
        list = json_array();
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(list, json_string(items[i].envelope));
            if (wrc == PX_OK)
                wrc = mark_forwarded(m, &items[i], &we);
        }
        finish(m, wrc, &we, "the forwarding", n);
        body = json_pack("{s:o}", "envelopes", list);
        st->sent += n;
        rc = pki_https_call(h, "POST", "/v1/kms/tks", body, &status, &reply, &e);
    }
    if (rc == PX_OK && strcmp(pki_https_peer_cn(h), cu->kms_cn) != 0)
        rc = px_error_set(&e, PX_EPERM, "the server at %s is %s, not %s", cu->kms_address,
                          pki_https_peer_cn(h), cu->kms_cn);
    if (rc == PX_OK && status != 200)
        rc = px_error_set(&e, PX_ENET, "%s answered %ld: %s", cu->kms_address, status,
                          pki_https_error_message(reply, "(no message)"));
    results = json_object_get(reply, "results");
    if (rc == PX_OK && json_array_size(results) != n)
        rc = px_error_set(&e, PX_EFORMAT, "%s answered %zu results for %zu envelopes",
                          cu->kms_address, json_array_size(results), n);
    if (rc != PX_OK) {
        snprintf(why, sizeof why, "KMS of customer %s not reached: %s", items[0].customer,
                 px_error_text(&e));
        px_error we = {0};
        int wrc = store_begin(m->st, &we);
        px_warn(MTMS_MOD, "%s (%zu TKs wait in the outbox)", why, n);
        for (size_t i = 0; wrc == PX_OK && i < n; i++)
            wrc = retry_later(m, c, &items[i], why, &we);
        finish(m, wrc, &we, "a failed delivery", n);
        st->failed += n;
    } else {
        px_error we = {0};
        int wrc = store_begin(m->st, &we);
        for (size_t i = 0; i < n; i++) {
            int one = record_result(m, &items[i], cu->kms_cn, json_array_get(results, i), st, &we);
            if (wrc == PX_OK)
                wrc = one;
        }
        finish(m, wrc, &we, "the KMS's answer", n);
    }
    json_decref(reply);
    json_decref(body);
    pki_https_close(h);
    free(cu);
}

int mtms_forward_due(mtms *m, const mtms_forward_config *c, mtms_forward_stats *st, px_error *e)
{
    due *items = NULL;
    size_t n = 0, batch = c->batch > 0 && c->batch <= PX_MTMS_OUTBOX_BATCH ? c->batch
                                                                           : PX_MTMS_OUTBOX_BATCH;
    int rc = claim(m, c, &items, &n, e);
    memset(st, 0, sizeof *st);
    if (rc != PX_OK)
        return rc;
    for (size_t i = 0; i < n;) { /* items are ordered by customer */
        size_t j = i + 1;
        while (j < n && j - i < batch && strcmp(items[j].customer, items[i].customer) == 0)
            j++;
        send_batch(m, c, items + i, j - i, st);
        i = j;
    }
    for (size_t i = 0; i < n; i++)
        free(items[i].envelope);
    free(items);
    return PX_OK;
}

int mtms_outbox_list(store *st, int pending_only, int (*fn)(void *ud, const mtms_outbox_item *i),
                     void *ud, px_error *e)
{
    char after[PKI_TKENV_SERIAL_MAX + 80] = "";
    for (;;) {
        store_stmt *q;
        size_t n = 0;
        int rc = store_prepare(st,
                               pending_only
                                   ? "SELECT id, serial, customer_code, tk_kcv, state, "
                                     "attempts, next_ms, created_ms, done_ms, last_error FROM "
                                     "mtms_outbox WHERE state = 'pending' AND id > $1 ORDER "
                                     "BY id LIMIT 1000"
                                   : "SELECT id, serial, customer_code, tk_kcv, state, "
                                     "attempts, next_ms, created_ms, done_ms, last_error FROM "
                                     "mtms_outbox WHERE id > $1 ORDER BY id LIMIT 1000",
                               &q, e);
        if (rc != PX_OK)
            return rc;
        store_bind_text(q, 1, after);
        while ((rc = store_step(q, e)) == STORE_ROW) {
            mtms_outbox_item it;
            memset(&it, 0, sizeof it);
            px_strlcpy(it.id, store_col_text(q, 0), sizeof it.id);
            px_strlcpy(it.serial, store_col_text(q, 1), sizeof it.serial);
            px_strlcpy(it.customer_code, store_col_text(q, 2), sizeof it.customer_code);
            px_strlcpy(it.tk_kcv, store_col_text(q, 3), sizeof it.tk_kcv);
            px_strlcpy(it.state, store_col_text(q, 4), sizeof it.state);
            it.attempts = store_col_int64(q, 5);
            it.next_ms = store_col_int64(q, 6);
            it.created_ms = store_col_int64(q, 7);
            it.done_ms = store_col_int64(q, 8);
            px_strlcpy(it.last_error, store_col_text(q, 9), sizeof it.last_error);
            px_strlcpy(after, it.id, sizeof after);
            n++;
            if ((rc = fn(ud, &it)) != 0)
                break;
        }
        store_done(q);
        if (rc != STORE_DONE)
            return rc;
        if (n < 1000)
            return PX_OK;
    }
}
