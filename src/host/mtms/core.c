/*
 * core.c: the MTMS's tables and what operator terminals do (mtms.h): customers, the
 * serial-number table, look-ups (claim 1 S2, claim 2), TK upload with re-association
 * ([0046]) and the audit trail.
 */
#include "host/mtms/mtms_int.h"
#include "lib/hex.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

int mtms_open(store *st, const pki_trust *trust, mtms **out, px_error *e)
{
    mtms *m = calloc(1, sizeof *m);
    *out = NULL;
    if (m == NULL)
        return px_error_set(e, PX_ENOMEM, "mtms: out of memory");
    m->st = st;
    m->trust = trust;
    *out = m;
    return PX_OK;
}

void mtms_close(mtms *m)
{
    free(m);
}

int mtms_code_is_valid(const char *s)
{
    return pki_name_is_valid(s) && strlen(s) < PX_CUSTOMER_CODE_MAX;
}

int mtms_name_is_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= PX_CUSTOMER_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t more;
        if (c < 0x20 || c == 0x7F)
            return 0;
        if (c < 0x80)
            more = 0;
        else if ((c & 0xE0) == 0xC0 && c >= 0xC2)
            more = 1;
        else if ((c & 0xF0) == 0xE0)
            more = 2;
        else if ((c & 0xF8) == 0xF0 && c <= 0xF4)
            more = 3;
        else
            return 0;
        for (size_t j = 1; j <= more; j++)
            if (i + j >= n || ((unsigned char)s[i + j] & 0xC0) != 0x80)
                return 0;
        i += more + 1;
    }
    return 1;
}

/* ---- audit ----------------------------------------------------------------------------- */

void mtms_audit(mtms *m, const char *actor, const char *action, const char *serial,
                const char *customer, int ok, const char *fmt, ...)
{
    char detail[PX_ERRMSG_MAX];
    store_stmt *q;
    px_error e = {0};
    va_list ap;
    int rc;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    rc = store_prepare(m->st,
                       "INSERT INTO mtms_audit (ts_ms, actor, action, serial, "
                       "customer_code, result, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                       &q, &e);
    if (rc == PX_OK) {
        store_bind_int64(q, 1, px_now_ms());
        store_bind_text(q, 2, actor && actor[0] ? actor : "?");
        store_bind_text(q, 3, action);
        store_bind_text(q, 4, serial && serial[0] ? serial : "-");
        store_bind_text(q, 5, customer && customer[0] ? customer : "-");
        store_bind_text(q, 6, ok ? "ok" : "refused");
        store_bind_text(q, 7, detail);
        rc = store_step(q, &e);
        store_done(q);
    }
    if (rc < 0)
        px_errorlog(MTMS_MOD, "audit: cannot record %s (%s): %s", action, detail,
                    px_error_text(&e));
}

int mtms_audit_list(store *st, const char *serial, int (*fn)(void *ud, const mtms_audit_row *r),
                    void *ud, px_error *e)
{
    int64_t after = 0;
    for (;;) {
        store_stmt *q;
        size_t n = 0;
        int rc = store_prepare(st,
                               serial ? "SELECT id, ts_ms, actor, action, serial, "
                                        "customer_code, result, detail FROM mtms_audit WHERE "
                                        "serial = $2 AND id > $1 ORDER BY id LIMIT 1000"
                                      : "SELECT id, ts_ms, actor, action, serial, "
                                        "customer_code, result, detail FROM mtms_audit WHERE "
                                        "id > $1 ORDER BY id LIMIT 1000",
                               &q, e);
        if (rc != PX_OK)
            return rc;
        store_bind_int64(q, 1, after);
        if (serial)
            store_bind_text(q, 2, serial);
        while ((rc = store_step(q, e)) == STORE_ROW) {
            mtms_audit_row r;
            memset(&r, 0, sizeof r);
            r.id = after = store_col_int64(q, 0);
            r.ts_ms = store_col_int64(q, 1);
            px_strlcpy(r.actor, store_col_text(q, 2), sizeof r.actor);
            px_strlcpy(r.action, store_col_text(q, 3), sizeof r.action);
            px_strlcpy(r.serial, store_col_text(q, 4), sizeof r.serial);
            px_strlcpy(r.customer_code, store_col_text(q, 5), sizeof r.customer_code);
            px_strlcpy(r.result, store_col_text(q, 6), sizeof r.result);
            px_strlcpy(r.detail, store_col_text(q, 7), sizeof r.detail);
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

void mtms_audit_tls_refused(mtms *m, const net_tls_refusal *r)
{
    char text[PX_ERRMSG_MAX];
    net_tls_refusal_text(r, text, sizeof text);
    if (r->unreported > 0)
        mtms_audit(m, r->peer, "tls.refused", NULL, NULL, 0,
                   "TLS handshake refused: %s; %llu more refused handshakes were not recorded "
                   "(rate limit)",
                   text, (unsigned long long)r->unreported);
    else
        mtms_audit(m, r->peer, "tls.refused", NULL, NULL, 0, "TLS handshake refused: %s", text);
}

/* ---- customers ------------------------------------------------------------------------- */

#define CUSTOMER_COLS                                                                              \
    "SELECT code, name, kms_protocol, kms_address, kms_cert, kms_cn, kms_fp, created_ms, "         \
    "updated_ms FROM mtms_customer "

static void customer_row(store_stmt *q, mtms_customer *c)
{
    memset(c, 0, sizeof *c);
    px_strlcpy(c->code, store_col_text(q, 0), sizeof c->code);
    px_strlcpy(c->name, store_col_text(q, 1), sizeof c->name);
    px_strlcpy(c->kms_protocol, store_col_text(q, 2), sizeof c->kms_protocol);
    px_strlcpy(c->kms_address, store_col_text(q, 3), sizeof c->kms_address);
    px_strlcpy(c->kms_cert, store_col_text(q, 4), sizeof c->kms_cert);
    px_strlcpy(c->kms_cn, store_col_text(q, 5), sizeof c->kms_cn);
    px_strlcpy(c->kms_fp, store_col_text(q, 6), sizeof c->kms_fp);
    c->created_ms = store_col_int64(q, 7);
    c->updated_ms = store_col_int64(q, 8);
}

int mtms_customer_get(store *st, const char *code, mtms_customer *out, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st, CUSTOMER_COLS "WHERE code = $1", &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, code);
    rc = store_step(q, e);
    if (rc == STORE_ROW)
        customer_row(q, out);
    else if (rc == STORE_DONE)
        rc = px_error_set(e, PX_ENOTFOUND, "unknown customer code %s",
                          mtms_code_is_valid(code) ? code : "(malformed)");
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

int mtms_customer_list(store *st, int (*fn)(void *ud, const mtms_customer *c), void *ud,
                       px_error *e)
{
    char after[PX_CUSTOMER_CODE_MAX] = "";
    for (;;) {
        store_stmt *q;
        size_t n = 0;
        int rc = store_prepare(st, CUSTOMER_COLS "WHERE code > $1 ORDER BY code LIMIT 1000", &q, e);
        if (rc != PX_OK)
            return rc;
        store_bind_text(q, 1, after);
        while ((rc = store_step(q, e)) == STORE_ROW) {
            mtms_customer *c = malloc(sizeof *c);
            if (c == NULL) {
                rc = px_error_set(e, PX_ENOMEM, "mtms: out of memory");
                break;
            }
            customer_row(q, c);
            px_strlcpy(after, c->code, sizeof after);
            n++;
            rc = fn(ud, c);
            free(c);
            if (rc != 0)
                break;
        }
        store_done(q);
        if (rc != STORE_DONE)
            return rc;
        if (n < 1000)
            return PX_OK;
    }
}

int mtms_customer_put(mtms *m, const char *code, const char *name, const char *kms_address,
                      const char *kms_cert_pem, const char *actor, px_error *e)
{
    pki_cert_info ci;
    store_stmt *q;
    size_t certlen = kms_cert_pem ? strlen(kms_cert_pem) : 0;
    int64_t now = px_now_ms();
    int rc;
    if (!mtms_code_is_valid(code))
        return px_error_set(e, PX_EINVAL, "customer code: 1 to 32 of A-Z a-z 0-9 . _ - @");
    if (!mtms_name_is_valid(name))
        return px_error_set(e, PX_EINVAL,
                            "customer name: 1 to %d bytes of UTF-8, no control "
                            "characters",
                            PX_CUSTOMER_NAME_MAX - 1);
    if (kms_address == NULL || strncmp(kms_address, "https://", 8) != 0 ||
        strlen(kms_address) >= PX_HTTPS_URL_MAX)
        return px_error_set(e, PX_EINVAL, "KMS address: https://host:port (mutual TLS)");
    if (certlen == 0 || certlen >= MTMS_KMS_CERT_MAX)
        return px_error_set(e, PX_EINVAL, "KMS certificate: missing or over %d bytes",
                            MTMS_KMS_CERT_MAX - 1);
    rc = m->trust ? pki_trust_verify(m->trust, (const uint8_t *)kms_cert_pem, certlen, PKI_ROLE_KMS,
                                     PKI_PURPOSE_KEY_AGREEMENT, now, &ci, e)
                  : pki_cert_parse((const uint8_t *)kms_cert_pem, certlen, &ci, e);
    if (rc != PX_OK)
        return px_error_prefix(e, "KMS certificate: ");
    if (ci.role != PKI_ROLE_KMS || ci.purpose != PKI_PURPOSE_KEY_AGREEMENT)
        return px_error_set(e, PX_EPERM, "KMS certificate: %s is not a KMS's receiving key", ci.cn);
    if (strcmp(ci.name, code) != 0)
        return px_error_set(e, PX_EPERM, "KMS certificate: it is %s's, not customer %s's", ci.cn,
                            code);
    rc = store_prepare(
        m->st,
        "INSERT INTO mtms_customer (code, name, kms_protocol, kms_address, kms_cert, "
        "kms_cn, kms_fp, created_ms, updated_ms) VALUES ($1, $2, 'https', $3, $4, $5, "
        "$6, $7, $7) ON CONFLICT (code) DO UPDATE SET name = excluded.name, "
        "kms_address = excluded.kms_address, kms_cert = excluded.kms_cert, kms_cn = "
        "excluded.kms_cn, kms_fp = excluded.kms_fp, updated_ms = excluded.updated_ms",
        &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, code);
    store_bind_text(q, 2, name);
    store_bind_text(q, 3, kms_address);
    store_bind_text(q, 4, kms_cert_pem);
    store_bind_text(q, 5, ci.cn);
    store_bind_text(q, 6, ci.fingerprint_hex);
    store_bind_int64(q, 7, now);
    rc = store_step(q, e);
    store_done(q);
    if (rc < 0)
        return rc;
    mtms_audit(m, actor, "customer.put", NULL, code, 1, "name %s, KMS %s, certificate %.16s...",
               name, kms_address, ci.fingerprint_hex);
    return PX_OK;
}

/* ---- serials --------------------------------------------------------------------------- */

#define SERIAL_COLS                                                                                \
    "SELECT serial, customer_code, order_no, status, tk_kcv, confirmed_by, received_ms, "          \
    "forwarded_ms, acked_ms, updated_ms, last_error FROM mtms_serial "

static void serial_row(store_stmt *q, mtms_serial_info *s)
{
    memset(s, 0, sizeof *s);
    px_strlcpy(s->serial, store_col_text(q, 0), sizeof s->serial);
    px_strlcpy(s->customer_code, store_col_text(q, 1), sizeof s->customer_code);
    px_strlcpy(s->order_no, store_col_text(q, 2), sizeof s->order_no);
    px_strlcpy(s->status, store_col_text(q, 3), sizeof s->status);
    px_strlcpy(s->tk_kcv, store_col_text(q, 4), sizeof s->tk_kcv);
    px_strlcpy(s->confirmed_by, store_col_text(q, 5), sizeof s->confirmed_by);
    s->received_ms = store_col_int64(q, 6);
    s->forwarded_ms = store_col_int64(q, 7);
    s->acked_ms = store_col_int64(q, 8);
    s->updated_ms = store_col_int64(q, 9);
    px_strlcpy(s->last_error, store_col_text(q, 10), sizeof s->last_error);
}

int mtms_serial_get(store *st, const char *serial, mtms_serial_info *out, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st, SERIAL_COLS "WHERE serial = $1", &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, serial);
    rc = store_step(q, e);
    if (rc == STORE_ROW)
        serial_row(q, out);
    else if (rc == STORE_DONE)
        rc = px_error_set(e, PX_ENOTFOUND, "unknown serial %s: not in any production order",
                          pki_serial_is_valid(serial) ? serial : "(malformed)");
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

int mtms_serial_list(store *st, const char *order_no,
                     int (*fn)(void *ud, const mtms_serial_info *s), void *ud, px_error *e)
{
    char after[PKI_TKENV_SERIAL_MAX + 1] = "";
    for (;;) {
        store_stmt *q;
        size_t n = 0;
        int rc = store_prepare(st,
                               order_no ? SERIAL_COLS "WHERE order_no = $2 AND serial > $1 "
                                                      "ORDER BY serial LIMIT 1000"
                                        : SERIAL_COLS "WHERE serial > $1 ORDER BY serial "
                                                      "LIMIT 1000",
                               &q, e);
        if (rc != PX_OK)
            return rc;
        store_bind_text(q, 1, after);
        if (order_no)
            store_bind_text(q, 2, order_no);
        while ((rc = store_step(q, e)) == STORE_ROW) {
            mtms_serial_info s;
            serial_row(q, &s);
            px_strlcpy(after, s.serial, sizeof after);
            n++;
            if ((rc = fn(ud, &s)) != 0)
                break;
        }
        store_done(q);
        if (rc != STORE_DONE)
            return rc;
        if (n < 1000)
            return PX_OK;
    }
}

/* ---- look-ups (claims 1 and 2) --------------------------------------------------------- */

int mtms_lookup_serial(mtms *m, const char *serial, const char *actor, mtms_serial_info *si,
                       mtms_customer *c, px_error *e)
{
    int rc = pki_serial_is_valid(serial)
                 ? mtms_serial_get(m->st, serial, si, e)
                 : px_error_set(e, PX_EINVAL, "serial: 1 to 32 of A-Z a-z 0-9 . _ - @");
    if (rc == PX_OK)
        rc = mtms_customer_get(m->st, si->customer_code, c, e);
    if (rc != PX_OK) {
        mtms_audit(m, actor, "lookup", pki_serial_is_valid(serial) ? serial : "?", NULL, 0, "%s",
                   px_error_text(e));
        return rc;
    }
    mtms_audit(m, actor, "lookup", serial, c->code, 1, "shown customer %s (%s)", c->code, c->name);
    return PX_OK;
}

int mtms_lookup_customer(mtms *m, const char *code, const char *actor, mtms_customer *c,
                         px_error *e)
{
    int rc = mtms_code_is_valid(code)
                 ? mtms_customer_get(m->st, code, c, e)
                 : px_error_set(e, PX_EINVAL, "customer code: 1 to 32 of A-Z a-z 0-9 . _ - @");
    if (rc != PX_OK) {
        mtms_audit(m, actor, "customer.lookup", NULL, mtms_code_is_valid(code) ? code : "?", 0,
                   "%s", px_error_text(e));
        return rc;
    }
    mtms_audit(m, actor, "customer.lookup", NULL, code, 1, "shown customer %s (%s)", c->code,
               c->name);
    return PX_OK;
}

/* ---- TK upload ------------------------------------------------------------------------- */

static int refuse_submit(mtms *m, const char *actor, const char *serial, const char *customer,
                         int rc, px_error *e)
{
    mtms_audit(m, actor, "tk.submit", pki_serial_is_valid(serial) ? serial : "?",
               mtms_code_is_valid(customer) ? customer : "?", 0, "%s", px_error_text(e));
    px_warn(MTMS_MOD, "TK for %s from %s refused: %s", pki_serial_is_valid(serial) ? serial : "?",
            actor, px_error_text(e));
    return rc;
}

static int exec_bound(store_stmt *q, px_error *e)
{
    int rc = store_step(q, e);
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

/* In one transaction: supersede what is pending for the serial, queue the envelope, update
 * the serial (re-associating it to customer), audit. */
static int queue_envelope(mtms *m, const char *actor, const char *serial, const char *customer,
                          const char *previous, const char *b64, const char *hash, const char *kcv,
                          px_error *e)
{
    char id[PKI_TKENV_SERIAL_MAX + 80];
    int64_t now = px_now_ms();
    store_stmt *q;
    int rc = store_begin(m->st, e);
    snprintf(id, sizeof id, "%s:%.64s", serial, hash);
    if (rc == PX_OK &&
        (rc = store_prepare(m->st,
                            "UPDATE mtms_outbox SET state = 'superseded', done_ms = $2, "
                            "last_error = 'a newer TK for this serial was uploaded' WHERE "
                            "serial = $1 AND state = 'pending'",
                            &q, e)) == PX_OK) {
        store_bind_text(q, 1, serial);
        store_bind_int64(q, 2, now);
        rc = exec_bound(q, e);
    }
    if (rc == PX_OK &&
        (rc = store_prepare(m->st,
                            "INSERT INTO mtms_outbox (id, serial, customer_code, envelope, "
                            "tk_kcv, state, attempts, next_ms, created_ms) VALUES ($1, $2, "
                            "$3, $4, $5, 'pending', 0, $6, $6)",
                            &q, e)) == PX_OK) {
        store_bind_text(q, 1, id);
        store_bind_text(q, 2, serial);
        store_bind_text(q, 3, customer);
        store_bind_text(q, 4, b64);
        store_bind_text(q, 5, kcv);
        store_bind_int64(q, 6, now);
        rc = exec_bound(q, e);
    }
    if (rc == PX_OK &&
        (rc = store_prepare(m->st,
                            "UPDATE mtms_serial SET customer_code = $2, status = 'received', "
                            "tk_kcv = $3, envelope_hash = $4, confirmed_by = $5, received_ms "
                            "= $6, forwarded_ms = 0, acked_ms = 0, last_error = '', "
                            "updated_ms = $6 WHERE serial = $1",
                            &q, e)) == PX_OK) {
        store_bind_text(q, 1, serial);
        store_bind_text(q, 2, customer);
        store_bind_text(q, 3, kcv);
        store_bind_text(q, 4, hash);
        store_bind_text(q, 5, actor);
        store_bind_int64(q, 6, now);
        rc = exec_bound(q, e);
    }
    if (rc == PX_OK && previous[0] != 0)
        mtms_audit(m, actor, "reassociate", serial, customer, 1,
                   "serial moved from customer %s to %s, as the operator confirmed", previous,
                   customer);
    if (rc == PX_OK)
        mtms_audit(m, actor, "confirm", serial, customer, 1,
                   "operator confirmed customer %s; TK (KCV %s) received, queued for its KMS",
                   customer, kcv);
    if (rc == PX_OK)
        rc = store_commit(m->st, e);
    if (rc != PX_OK)
        store_rollback(m->st);
    return rc;
}

int mtms_tk_submit(mtms *m, const char *actor, const char *serial, const char *customer_code,
                   int confirmed, const char *envelope_b64, mtms_submit_result *r, px_error *e)
{
    uint8_t buf[PX_TKENV_MAX], md[SHA256_DIGEST_LENGTH];
    char hash[2 * SHA256_DIGEST_LENGTH + 1], kcv[8];
    size_t len = 0;
    pki_tkenv env;
    mtms_serial_info si;
    mtms_customer *c = NULL;
    int rc = PX_OK;
    memset(r, 0, sizeof *r);
    if (!pki_serial_is_valid(serial))
        rc = px_error_set(e, PX_EINVAL, "serial: 1 to 32 of A-Z a-z 0-9 . _ - @");
    else if (!mtms_code_is_valid(customer_code))
        rc = px_error_set(e, PX_EINVAL, "customer code: 1 to 32 of A-Z a-z 0-9 . _ - @");
    else if (!confirmed)
        rc = px_error_set(e, PX_EPERM,
                          "the operator has not confirmed the customer: no TK is "
                          "taken before confirmation");
    else if (m->trust == NULL)
        rc = px_error_set(e, PX_ESTATE, "mtms: no CA to check envelopes against");
    if (rc == PX_OK)
        rc = mtms_serial_get(m->st, serial, &si, e);
    if (rc == PX_OK && (c = malloc(sizeof *c)) == NULL)
        rc = px_error_set(e, PX_ENOMEM, "mtms: out of memory");
    if (rc == PX_OK)
        rc = mtms_customer_get(m->st, customer_code, c, e);
    if (rc == PX_OK &&
        (rc = pki_tkenv_parse_b64(envelope_b64, buf, sizeof buf, &len, &env, e)) == PX_OK &&
        strcmp(env.serial, serial) != 0)
        rc = px_error_set(e, PX_EPERM, "the TK envelope is PIN pad %s's, not serial %s's",
                          env.serial, serial);
    if (rc == PX_OK)
        rc = pki_tkenv_verify(m->trust, buf, len, &env, px_now_ms(), NULL, e);
    if (rc == PX_OK) {
        char fp[2 * PKI_FP_LEN + 1];
        px_hex_encode(env.kms_fp, PKI_FP_LEN, fp);
        if (strcmp(fp, c->kms_fp) != 0)
            rc = px_error_set(e, PX_ECONFLICT,
                              "the TK is wrapped to another KMS (%.16s...) than "
                              "customer %s's (%.16s...): export it again for the "
                              "confirmed customer",
                              fp, c->code, c->kms_fp);
    }
    if (rc != PX_OK) {
        free(c);
        return refuse_submit(m, actor, serial, customer_code, rc, e);
    }
    SHA256(buf, len, md);
    px_hex_encode(md, sizeof md, hash);
    px_hex_encode(env.tk_kcv, PKI_TKENV_KCV_LEN, kcv);
    px_strlcpy(r->serial, serial, sizeof r->serial);
    px_strlcpy(r->customer_code, customer_code, sizeof r->customer_code);
    px_strlcpy(r->tk_kcv, kcv, sizeof r->tk_kcv);
    free(c);
    if (strcmp(si.tk_kcv, kcv) == 0 && strcmp(si.customer_code, customer_code) == 0 &&
        si.status[0] != 'n' && strcmp(si.status, "refused") != 0) {
        r->duplicate = 1; /* the operator terminal retried: already queued */
        return PX_OK;
    }
    if (strcmp(si.customer_code, customer_code) != 0)
        px_strlcpy(r->previous_customer, si.customer_code, sizeof r->previous_customer);
    rc = queue_envelope(m, actor, serial, customer_code, r->previous_customer, envelope_b64, hash,
                        kcv, e);
    if (rc != PX_OK)
        return refuse_submit(m, actor, serial, customer_code, rc, e);
    px_info(MTMS_MOD, "TK of %s (KCV %s) received from %s for customer %s%s%s", serial, kcv, actor,
            customer_code, r->previous_customer[0] ? ", re-associated from " : "",
            r->previous_customer);
    return PX_OK;
}
