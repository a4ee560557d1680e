/*
 * operator.c: the operator terminal of seed 001 (operator.h).
 */
#include "device/operator/operator.h"
#include "device/pinpad/tk.h"
#include "device/pos/pos.h"
#include "lib/log.h"
#include "lib/str.h"
#include "pki/https.h"
#include "pki/pki.h"
#include "pki/tkenv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct operator_session {
    operator_config cfg;
    pki_https *h;
};

int operator_open(const operator_config *c, operator_session **out, px_error *e)
{
    operator_session *s;
    *out = NULL;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return px_error_set(e, PX_ENOMEM, "operator: out of memory");
    s->cfg = *c;
    *out = s;
    return PX_OK;
}

void operator_close(operator_session *s)
{
    if (s == NULL)
        return;
    pki_https_close(s->h);
    free(s);
}

const char *operator_mtms_cn(const operator_session *s)
{
    return s->h ? pki_https_peer_cn(s->h) : "";
}

void operator_customer_clear(operator_customer *c)
{
    free(c->kms_cert);
    memset(c, 0, sizeof *c);
}

/* GET or POST against the MTMS; a non-2xx answer becomes an error with its message. */
static int call(operator_session *s, const char *method, const char *path, json_t *body,
                json_t **reply, px_error *e)
{
    long status = 0;
    int rc = PX_OK;
    pki_role role;
    char name[PX_PKI_NAME_MAX];
    *reply = NULL;
    if (s->h == NULL &&
        (s->cfg.tls.ca[0] == 0 || s->cfg.tls.cert[0] == 0 || s->cfg.tls.key[0] == 0))
        rc = px_error_set(e, PX_ECONFIG,
                          "the MTMS is reached over mutual TLS: give the CA and "
                          "the operator's certificate and key");
    if (rc == PX_OK && s->h == NULL)
        rc = pki_https_open(s->cfg.mtms_url, &s->cfg.tls, s->cfg.timeout_ms, &s->h, e);
    if (rc == PX_OK)
        rc = pki_https_call(s->h, method, path, body, &status, reply, e);
    json_decref(body);
    if (rc != PX_OK)
        return px_error_prefix(e, "MTMS: ");
    if (pki_cn_split(pki_https_peer_cn(s->h), &role, name) != PX_OK || role != PKI_ROLE_MTMS) {
        json_decref(*reply);
        *reply = NULL;
        return px_error_set(e, PX_EPERM, "the server at %s is %s, not an MTMS", s->cfg.mtms_url,
                            pki_https_peer_cn(s->h));
    }
    if (status / 100 == 2)
        return PX_OK;
    rc = status == 404   ? PX_ENOTFOUND
         : status == 403 ? PX_EPERM
         : status == 409 ? PX_ECONFLICT
         : status == 401 ? PX_EAUTH
         : status == 400 ? PX_EINVAL
                         : PX_ENET;
    px_error_set(e, rc, "%s", pki_https_error_message(*reply, "MTMS error"));
    json_decref(*reply);
    *reply = NULL;
    return rc;
}

static int customer_from(const json_t *o, operator_customer *c, px_error *e)
{
    const char *code = json_string_value(json_object_get(o, "code"));
    const char *name = json_string_value(json_object_get(o, "name"));
    const char *cn = json_string_value(json_object_get(o, "kms_cn"));
    const char *cert = json_string_value(json_object_get(o, "kms_cert"));
    memset(c, 0, sizeof *c);
    if (code == NULL || name == NULL || cert == NULL ||
        px_strlcpy(c->code, code, sizeof c->code) != PX_OK ||
        px_strlcpy(c->name, name, sizeof c->name) != PX_OK ||
        px_strlcpy(c->kms_cn, cn ? cn : "", sizeof c->kms_cn) != PX_OK ||
        (c->kms_cert = strdup(cert)) == NULL)
        return px_error_set(e, PX_EFORMAT, "MTMS answer: the customer does not parse");
    return PX_OK;
}

/* Open the terminal in pinpad_dir (its PIN pad with it). */
static int open_terminal(operator_session *s, pos_terminal **t, px_error *e)
{
    pos_config pc;
    int rc;
    pos_config_defaults(&pc);
    if (px_strlcpy(pc.data_dir, s->cfg.pinpad_dir, sizeof pc.data_dir) != PX_OK)
        return px_error_set(e, PX_EINVAL, "PIN pad directory: path too long");
    snprintf(pc.serial, sizeof pc.serial, "PP%s", pc.tid);
    rc = pos_config_load(&pc, e);
    if (rc == PX_OK)
        rc = pos_open(&pc, t, e);
    if (rc != PX_OK)
        return px_error_prefix(e, "PIN pad in %s: ", s->cfg.pinpad_dir);
    return PX_OK;
}

int operator_read_serial(operator_session *s, char serial[PX_PKI_NAME_MAX], px_error *e)
{
    pos_terminal *t = NULL;
    int rc = open_terminal(s, &t, e);
    if (rc == PX_OK) {
        const char *sn = pinpad_serial(pos_pinpad(t));
        if (!pki_serial_is_valid(sn))
            rc = px_error_set(e, PX_EINVAL, "PIN pad serial %s: not 1 to 32 of A-Z a-z 0-9 . _ - @",
                              sn);
        else
            px_strlcpy(serial, sn, PX_PKI_NAME_MAX);
    }
    pos_close(t);
    return rc;
}

int operator_lookup_serial(operator_session *s, const char *serial, operator_customer *c,
                           char status[16], px_error *e)
{
    char path[128];
    json_t *reply = NULL;
    int rc;
    memset(c, 0, sizeof *c);
    if (!pki_serial_is_valid(serial))
        return px_error_set(e, PX_EINVAL, "serial: 1 to 32 of A-Z a-z 0-9 . _ - @");
    snprintf(path, sizeof path, "/v1/mtms/serials/%s", serial);
    rc = call(s, "GET", path, NULL, &reply, e);
    if (rc == PX_OK)
        rc = customer_from(json_object_get(reply, "customer"), c, e);
    if (rc == PX_OK && status != NULL)
        px_strlcpy(status,
                   json_string_value(json_object_get(reply, "status"))
                       ? json_string_value(json_object_get(reply, "status"))
                       : "?",
                   16);
    json_decref(reply);
    return rc;
}

int operator_lookup_customer(operator_session *s, const char *code, operator_customer *c,
                             px_error *e)
{
    char path[128];
    json_t *reply = NULL;
    int rc;
    memset(c, 0, sizeof *c);
    if (!pki_name_is_valid(code) || strlen(code) >= PX_CUSTOMER_CODE_MAX)
        return px_error_set(e, PX_EINVAL, "customer code: 1 to 32 of A-Z a-z 0-9 . _ - @");
    snprintf(path, sizeof path, "/v1/mtms/customers/%s", code);
    rc = call(s, "GET", path, NULL, &reply, e);
    if (rc == PX_OK)
        rc = customer_from(reply, c, e);
    json_decref(reply);
    return rc;
}

int operator_upload(operator_session *s, const char *serial, const operator_customer *c,
                    operator_upload_result *r, px_error *e)
{
    pos_terminal *t = NULL;
    json_t *reply = NULL;
    uint8_t env[PX_TKENV_MAX];
    char b64[PX_TKENV_B64_MAX], *crl = NULL;
    size_t n = 0;
    int rc;
    memset(r, 0, sizeof *r);
    /* the CA's current CRL: the PIN pad checks the KMS certificate against it */
    rc = call(s, "GET", "/v1/mtms/crl", NULL, &reply, e);
    if (rc == PX_OK && (crl = json_string_value(json_object_get(reply, "crl"))
                                  ? strdup(json_string_value(json_object_get(reply, "crl")))
                                  : NULL) == NULL)
        rc = px_error_set(e, PX_EFORMAT, "MTMS answer: no CRL");
    json_decref(reply);
    reply = NULL;
    if (rc == PX_OK)
        rc = open_terminal(s, &t, e);
    if (rc == PX_OK && strcmp(pinpad_serial(pos_pinpad(t)), serial) != 0)
        rc = px_error_set(e, PX_ESTATE, "the PIN pad in %s is %s, not %s", s->cfg.pinpad_dir,
                          pinpad_serial(pos_pinpad(t)), serial);
    if (rc == PX_OK && (rc = tk_export(pos_pinpad(t), c->kms_cert, crl, env, sizeof env, &n, NULL,
                                       NULL, e)) != PX_OK)
        px_error_prefix(e, "PIN pad %s: ", serial);
    pos_close(t);
    free(crl);
    if (rc == PX_OK) {
        pki_b64_encode(env, n, b64);
        rc = call(s, "POST", "/v1/mtms/tks",
                  json_pack("{s:s, s:s, s:b, s:s}", "serial", serial, "customer_code", c->code,
                            "confirmed", 1, "envelope", b64),
                  &reply, e);
    }
    if (rc == PX_OK) {
        const char *kcv = json_string_value(json_object_get(reply, "tk_kcv"));
        const char *from = json_string_value(json_object_get(reply, "reassociated_from"));
        px_strlcpy(r->tk_kcv, kcv ? kcv : "", sizeof r->tk_kcv);
        px_strlcpy(r->reassociated_from, from ? from : "", sizeof r->reassociated_from);
        r->duplicate = json_is_true(json_object_get(reply, "duplicate"));
    }
    json_decref(reply);
    return rc;
}

static void show(const operator_ui *ui, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void show(const operator_ui *ui, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (ui->show)
        ui->show(ui->ud, text);
}

int operator_run(operator_session *s, const operator_ui *ui, operator_result *r, px_error *e)
{
    operator_customer c;
    char status[16] = "", question[256];
    int rc, yes;
    memset(r, 0, sizeof *r);
    memset(&c, 0, sizeof c);
    /* S1 */
    if ((rc = operator_read_serial(s, r->serial, e)) != PX_OK)
        return rc;
    show(ui, "PIN pad serial number: %s", r->serial);
    /* S2, S3 */
    if ((rc = operator_lookup_serial(s, r->serial, &c, status, e)) != PX_OK)
        return rc;
    show(ui, "MTMS: customer %s  %s  (serial status: %s)", c.code, c.name, status);
    /* S4 */
    snprintf(question, sizeof question, "Send the TK of %s to customer %s (%s)?", r->serial, c.code,
             c.name);
    yes = ui->confirm(ui->ud, question);
    for (int tries = 0; yes == 0; tries++) {
        char code[PX_CUSTOMER_CODE_MAX];
        operator_customer other;
        if (tries >= OPERATOR_TRIES_MAX) {
            yes = -1;
            break;
        }
        /* claim 2: a customer code input screen */
        if (ui->ask == NULL || ui->ask(ui->ud, "Customer code: ", code, sizeof code) != PX_OK) {
            yes = -1;
            break;
        }
        rc = operator_lookup_customer(s, code, &other, e);
        if (rc == PX_ENOTFOUND || rc == PX_EINVAL) {
            show(ui, "%s", px_error_text(e));
            continue;
        }
        if (rc != PX_OK) {
            operator_customer_clear(&c);
            return rc;
        }
        operator_customer_clear(&c);
        c = other;
        r->corrected = 1;
        show(ui, "MTMS: customer %s  %s", c.code, c.name);
        snprintf(question, sizeof question, "Send the TK of %s to customer %s (%s)?", r->serial,
                 c.code, c.name);
        yes = ui->confirm(ui->ud, question);
    }
    if (yes <= 0) {
        operator_customer_clear(&c);
        show(ui, "Not confirmed: nothing was sent.");
        return px_error_set(e, PX_EPERM,
                            "the operator did not confirm a customer: no TK was "
                            "exported or sent");
    }
    /* S5: TK, serial and customer code together */
    px_strlcpy(r->customer_code, c.code, sizeof r->customer_code);
    px_strlcpy(r->customer_name, c.name, sizeof r->customer_name);
    rc = operator_upload(s, r->serial, &c, &r->upload, e);
    operator_customer_clear(&c);
    if (rc != PX_OK)
        return rc;
    show(ui, "TK (check value %s) of %s sent for customer %s%s%s.", r->upload.tk_kcv, r->serial,
         r->customer_code, r->upload.reassociated_from[0] ? "; re-associated from " : "",
         r->upload.reassociated_from);
    return PX_OK;
}
