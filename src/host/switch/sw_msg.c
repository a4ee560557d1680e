/*
 * sw_msg.c: terminal messages: the one parser that checks every field a flow uses
 * (sw_req_parse), the request identity (rkey, hash), and responses (echoed fields, header
 * processing requirement, MAC). Contract: docs/switch-protocol.md section 1.
 */
#include "host/switch/sw_int.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {
    "unknown",        "sign-on",      "echo",     "sign-off",   "purchase",     "balance", "void",
    "mobile payment", "payee lookup", "reversal", "settlement", "batch upload", "other"};

const char *sw_mtype_name(int type)
{
    if (type < 0 || type > SW_T_OTHER)
        return "?";
    return type_names[type];
}

/* Text field f into out (size outsz) if present: 1 present, 0 absent. */
static int get_text(const iso8583_msg *m, int f, char *out, size_t outsz)
{
    const uint8_t *p;
    size_t n;
    out[0] = 0;
    if (iso8583_get(m, f, &p, &n) != PX_OK)
        return 0;
    if (n >= outsz)
        return 0;
    memcpy(out, p, n);
    out[n] = 0;
    return 1;
}

static int parse_digits(const char *s, size_t n, int64_t *out)
{
    int64_t v = 0;
    if (!px_is_digits(s, n))
        return PX_EFORMAT;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    *out = v;
    return PX_OK;
}

/* Field 60: 60.1 n2, 60.2 n6, 60.3 n3 (optional for financial messages). */
static int parse_f60(sw_req *r, int need_nmi, px_error *e)
{
    char f60[24];
    size_t n;
    if (!get_text(&r->msg, 60, f60, sizeof f60))
        return px_error_set(e, PX_EFORMAT, "field 60: missing");
    n = strlen(f60);
    if (n < 8 || (need_nmi && n < 11))
        return px_error_set(e, PX_EFORMAT, "field 60: %zu digits, need at least %d", n,
                            need_nmi ? 11 : 8);
    memcpy(r->f60_type, f60, 2);
    r->f60_type[2] = 0;
    if (parse_digits(f60 + 2, 6, &r->batch) != PX_OK)
        return px_error_set(e, PX_EFORMAT, "field 60.2: not digits");
    if (n >= 11) {
        memcpy(r->nmi, f60 + 8, 3);
        r->nmi[3] = 0;
    }
    return PX_OK;
}

/* The card number: field 2, else the account part of track 2 (35, before '='). */
static int parse_card(sw_req *r, px_error *e)
{
    char t2[40];
    size_t n;
    if (get_text(&r->msg, 2, r->pan, sizeof r->pan)) {
        n = strlen(r->pan);
    } else if (get_text(&r->msg, 35, t2, sizeof t2)) {
        char *sep = strchr(t2, '=');
        if (sep == NULL)
            return px_error_set(e, PX_EFORMAT, "field 35: no separator");
        n = (size_t)(sep - t2);
        if (n >= sizeof r->pan)
            return px_error_set(e, PX_EFORMAT, "field 35: account number too long");
        memcpy(r->pan, t2, n);
        r->pan[n] = 0;
    } else {
        return px_error_set(e, PX_EFORMAT, "field 2 or 35: card number missing");
    }
    if (n < 12 || n > 19 || !px_is_digits(r->pan, n))
        return px_error_set(e, PX_EFORMAT, "card number: %zu digits, expected 12 to 19", n);
    px_mask_pan(r->pan, r->pan_masked, sizeof r->pan_masked);
    return PX_OK;
}

static int parse_amount(sw_req *r, int required, px_error *e)
{
    char f4[16];
    if (!get_text(&r->msg, 4, f4, sizeof f4)) {
        if (required)
            return px_error_set(e, PX_EFORMAT, "field 4: missing");
        return PX_OK;
    }
    if (parse_digits(f4, strlen(f4), &r->amount) != PX_OK)
        return px_error_set(e, PX_EFORMAT, "field 4: not digits");
    r->has_amount = 1;
    return PX_OK;
}

/* 52 and 53: a format 0 PIN block under the PIK ("2600000000000000"). */
static int parse_pin(sw_req *r, px_error *e)
{
    const uint8_t *p;
    size_t n;
    char f53[20];
    if (iso8583_get(&r->msg, 52, &p, &n) != PX_OK)
        return PX_OK;
    if (n != 8)
        return px_error_set(e, PX_EFORMAT, "field 52: %zu bytes, expected 8", n);
    if (!get_text(&r->msg, 53, f53, sizeof f53) || f53[0] != '2')
        return px_error_set(e, PX_EFORMAT, "field 53: a PIN block needs 53 = 2... (format 0)");
    memcpy(r->pin_block, p, 8);
    r->has_pin = 1;
    return PX_OK;
}

/* Settlement totals: debit count n3, debit amount n12, credit count n3, credit amount n12,
 * result n1 (31 digits). */
static int parse_totals(const char *s, sw_totals *t)
{
    if (!px_is_digits(s, 31))
        return PX_EFORMAT;
    parse_digits(s, 3, &t->debit_count);
    parse_digits(s + 3, 12, &t->debit_amount);
    parse_digits(s + 15, 3, &t->credit_count);
    parse_digits(s + 18, 12, &t->credit_amount);
    return PX_OK;
}

static int parse_settle(sw_req *r, px_error *e)
{
    char f48[400];
    size_t n;
    if (!get_text(&r->msg, 48, f48, sizeof f48))
        return px_error_set(e, PX_EFORMAT, "field 48: missing");
    n = strlen(f48);
    if (n != 31 && n != 62)
        return px_error_set(e, PX_EFORMAT, "field 48: %zu digits, expected 31 or 62", n);
    if (parse_totals(f48, &r->settle_dom) != PX_OK ||
        (n == 62 && parse_totals(f48 + 31, &r->settle_for) != PX_OK))
        return px_error_set(e, PX_EFORMAT, "field 48: not digits");
    return PX_OK;
}

static int parse_upload(sw_req *r, px_error *e)
{
    char f48[400];
    int64_t count;
    size_t n;
    if (!get_text(&r->msg, 48, f48, sizeof f48))
        return px_error_set(e, PX_EFORMAT, "field 48: missing");
    n = strlen(f48);
    if (n < 2 || parse_digits(f48, 2, &count) != PX_OK || count < 1 || count > SW_UPLOAD_MAX)
        return px_error_set(e, PX_EFORMAT, "field 48: count must be 01 to %02d", SW_UPLOAD_MAX);
    if (n != 2 + (size_t)count * 24)
        return px_error_set(e, PX_EFORMAT, "field 48: %zu digits for %lld entries", n,
                            (long long)count);
    for (int64_t i = 0; i < count; i++) {
        const char *p = f48 + 2 + i * 24;
        sw_upload_item *u = &r->upload[i];
        memcpy(u->stan, p, 6);
        u->stan[6] = 0;
        memcpy(u->proc, p + 18, 6);
        u->proc[6] = 0;
        if (parse_digits(p + 6, 12, &u->amount) != PX_OK || !px_is_digits(u->stan, 6) ||
            !px_is_digits(u->proc, 6))
            return px_error_set(e, PX_EFORMAT, "field 48: entry %lld not digits", (long long)i + 1);
    }
    r->nupload = (size_t)count;
    return PX_OK;
}

static int parse_void(sw_req *r, px_error *e)
{
    char f61[32];
    if (!get_text(&r->msg, 37, r->orig_rrn, sizeof r->orig_rrn))
        return px_error_set(e, PX_EFORMAT, "field 37: the original's RRN is missing");
    if (!get_text(&r->msg, 61, f61, sizeof f61) || strlen(f61) < 12)
        return px_error_set(e, PX_EFORMAT, "field 61: original batch and STAN missing");
    if (parse_digits(f61, 6, &r->orig_batch) != PX_OK)
        return px_error_set(e, PX_EFORMAT, "field 61: not digits");
    memcpy(r->orig_stan, f61 + 6, 6);
    r->orig_stan[6] = 0;
    return PX_OK;
}

static int classify(sw_req *r)
{
    const char *m = r->msg.mti;
    if (strcmp(m, "0800") == 0)
        return strcmp(r->nmi, SWITCH_NMI_SIGNON) == 0 ? SW_T_SIGNON
               : strcmp(r->nmi, SWITCH_NMI_ECHO) == 0 ? SW_T_ECHO
                                                      : SW_T_OTHER;
    if (strcmp(m, "0820") == 0)
        return strcmp(r->nmi, SWITCH_NMI_SIGNOFF) == 0 ? SW_T_SIGNOFF
               : strcmp(r->nmi, SWITCH_NMI_ECHO) == 0  ? SW_T_ECHO
                                                       : SW_T_OTHER;
    if (strcmp(m, "0200") == 0) {
        if (strcmp(r->proc, "000000") == 0)
            return SW_T_PURCHASE;
        if (strcmp(r->proc, "310000") == 0)
            return SW_T_BALANCE;
        if (strcmp(r->proc, "200000") == 0)
            return SW_T_VOID;
        if (strcmp(r->proc, "480000") == 0)
            return SW_T_PHONEPAY;
        return SW_T_OTHER;
    }
    if (strcmp(m, "0100") == 0)
        return strcmp(r->proc, "380000") == 0 ? SW_T_LOOKUP : SW_T_OTHER;
    if (strcmp(m, "0400") == 0)
        return SW_T_REVERSAL;
    if (strcmp(m, "0500") == 0)
        return SW_T_SETTLE;
    if (strcmp(m, "0320") == 0)
        return SW_T_UPLOAD;
    return SW_T_OTHER;
}

/* SHA-256 of the request from the MTI to the end, less a trailing MAC (field 64). */
static int hash_request(sw_req *r, px_error *e)
{
    size_t start = (size_t)r->msg.tpdu_len + r->msg.header_len;
    size_t end = r->rawlen;
    unsigned int n = 0;
    if (iso8583_has(&r->msg, 64)) {
        if (iso8583_mac_span(&iso8583_unionpay_pos, r->raw, r->rawlen, &r->mac_off, &r->mac_len,
                             e) != PX_OK)
            return px_error_prefix(e, "MAC span: ");
        end = r->mac_off + r->mac_len;
    }
    if (PX_BUG(start > end || end > r->rawlen))
        return PX_EINTERNAL;
    if (EVP_Digest(r->raw + start, end - start, r->hash, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return px_error_set(e, PX_ECRYPTO, "SHA-256 failed");
    return PX_OK;
}

int sw_req_parse(sw_req *r, px_error *e)
{
    int rc = PX_OK;
    int is_net = strcmp(r->msg.mti, "0800") == 0 || strcmp(r->msg.mti, "0820") == 0;
    (void)get_text(&r->msg, 3, r->proc, sizeof r->proc);
    (void)get_text(&r->msg, 11, r->stan, sizeof r->stan);
    (void)get_text(&r->msg, 41, r->tid, sizeof r->tid);
    (void)get_text(&r->msg, 42, r->mid, sizeof r->mid);
    if (iso8583_has(&r->msg, 60))
        rc = parse_f60(r,
                       is_net || strcmp(r->msg.mti, "0500") == 0 || strcmp(r->msg.mti, "0320") == 0,
                       e);
    if (rc != PX_OK)
        return rc;
    r->type = classify(r);
    if (r->type == SW_T_ECHO || r->type == SW_T_OTHER)
        return PX_OK;
    if (r->stan[0] == 0 || r->tid[0] == 0 || r->mid[0] == 0)
        return px_error_set(e, PX_EFORMAT, "fields 11, 41, 42: %s missing",
                            r->stan[0] == 0  ? "11"
                            : r->tid[0] == 0 ? "41"
                                             : "42");
    if (!iso8583_has(&r->msg, 60))
        return px_error_set(e, PX_EFORMAT, "field 60: missing");
    r->maced = r->type != SW_T_SIGNON && r->type != SW_T_SIGNOFF;
    switch (r->type) {
    case SW_T_PURCHASE:
        rc = parse_amount(r, 1, e);
        if (rc == PX_OK)
            rc = parse_card(r, e);
        if (rc == PX_OK)
            rc = parse_pin(r, e);
        break;
    case SW_T_PHONEPAY:
        rc = parse_amount(r, 1, e);
        if (rc == PX_OK)
            rc = parse_card(r, e);
        if (rc == PX_OK)
            rc = parse_pin(r, e);
        if (rc == PX_OK && (!get_text(&r->msg, 48, r->f48, sizeof r->f48) || strlen(r->f48) != 34))
            rc = px_error_set(e, PX_EFORMAT,
                              "field 48: payee mobile, payer mobile and the lookup "
                              "reference: 34 digits");
        break;
    case SW_T_BALANCE:
        rc = parse_card(r, e);
        if (rc == PX_OK)
            rc = parse_pin(r, e);
        break;
    case SW_T_VOID:
        rc = parse_amount(r, 1, e);
        if (rc == PX_OK)
            rc = parse_card(r, e);
        if (rc == PX_OK)
            rc = parse_pin(r, e);
        if (rc == PX_OK)
            rc = parse_void(r, e);
        break;
    case SW_T_LOOKUP:
        rc = parse_amount(r, 1, e);
        if (rc == PX_OK && (!get_text(&r->msg, 48, r->f48, sizeof r->f48) || strlen(r->f48) != 22))
            rc = px_error_set(e, PX_EFORMAT, "field 48: payee mobile and payer mobile: 22 digits");
        break;
    case SW_T_REVERSAL:
        rc = parse_amount(r, 0, e);
        (void)get_text(&r->msg, 39, r->rev_reason, sizeof r->rev_reason);
        if (r->rev_reason[0] == 0)
            px_strlcpy(r->rev_reason, "06", sizeof r->rev_reason);
        if (rc == PX_OK && (iso8583_has(&r->msg, 2) || iso8583_has(&r->msg, 35)))
            rc = parse_card(r, e);
        break;
    case SW_T_SETTLE: rc = parse_settle(r, e); break;
    case SW_T_UPLOAD: rc = parse_upload(r, e); break;
    default: break;
    }
    if (rc == PX_OK && !r->no_hash)
        rc = hash_request(r, e);
    return rc;
}

void sw_rkey(char out[SW_RKEY_MAX], const char *tid, const char *mid, const char *stan,
             int64_t batch, const char *date, char kind)
{
    snprintf(out, SW_RKEY_MAX, "%s|%06lld|%s|%c|%s|%s", tid, (long long)batch, date, kind, stan,
             mid);
}

void sw_rkey_range(char lo[SW_RKEY_MAX], char hi[SW_RKEY_MAX], const char *tid, int64_t batch,
                   const char *date, char kind)
{
    /* '}' follows '|' in ASCII: [lo, hi) holds exactly the keys with this prefix */
    snprintf(lo, SW_RKEY_MAX, "%s|%06lld|%s|%c|", tid, (long long)batch, date, kind);
    snprintf(hi, SW_RKEY_MAX, "%s|%06lld|%s|%c}", tid, (long long)batch, date, kind);
}

/* ---- responses ---- */

static void copy_field(const iso8583_msg *req, iso8583_msg *rsp, int f)
{
    const uint8_t *p;
    size_t n;
    if (iso8583_get(req, f, &p, &n) != PX_OK)
        return;
    const iso8583_field_spec *spec = iso8583_field_spec_of(req->dialect, f);
    if (spec != NULL && spec->type == ISO8583_T_B)
        (void)iso8583_set_bin(rsp, f, p, n, NULL);
    else
        (void)iso8583_set(rsp, f, (const char *)p, NULL);
}

int sw_rsp_begin(switch_svc *s, const sw_req *r, const sw_term *t, const char *rc, iso8583_msg *rsp,
                 px_error *e)
{
    static const int echoed[] = {2, 3, 4, 11, 25, 41, 42, 49, 60};
    char hhmmss[8], mmdd[8];
    int64_t now = px_now_ms();
    int pr = SWITCH_PR_NONE;
    (void)s;
    if (iso8583_msg_response(&r->msg, rsp, e) != PX_OK)
        return e ? e->code : PX_EINVAL;
    for (size_t i = 0; i < sizeof echoed / sizeof echoed[0]; i++)
        copy_field(&r->msg, rsp, echoed[i]);
    px_time_format_utc(now, "%H%M%S", hhmmss, sizeof hhmmss);
    px_time_format_utc(now, "%m%d", mmdd, sizeof mmdd);
    (void)iso8583_set(rsp, 12, hhmmss, NULL);
    (void)iso8583_set(rsp, 13, mmdd, NULL);
    if (t != NULL && t->update_waiting)
        pr = SWITCH_PR_UPDATE_WAITING;
    else if (strcmp(rc, SWITCH_RC_NOT_SIGNED_ON) == 0)
        pr = SWITCH_PR_SIGN_ON;
    if (rsp->header_len >= 3) /* header: 60, version, status|requirement, software (3) */
        rsp->header[2] = (uint8_t)((rsp->header[2] & 0xF0) | pr);
    return iso8583_set(rsp, 39, rc, e);
}

int sw_rsp_pack(switch_svc *s, const iso8583_msg *rsp, const sw_term *t, int mac, uint8_t **out,
                size_t *outlen, px_error *e)
{
    uint8_t buf[PX_ISO_MSG_MAX];
    size_t n, off, span;
    iso8583_msg m;
    const iso8583_msg *src = rsp;
    *out = NULL;
    if (mac) {
        static const uint8_t zero[8] = {0};
        if (s->hsm == NULL || t == NULL || t->mak == NULL)
            return px_error_set(e, PX_ESTATE, "no MAC key to sign the response");
        memcpy(&m, rsp, sizeof m);
        if (iso8583_set_bin(&m, 64, zero, 8, e) != PX_OK)
            return e ? e->code : PX_EINVAL;
        src = &m;
    }
    if (iso8583_pack(&iso8583_unionpay_pos, src, buf, sizeof buf, &n, e) != PX_OK)
        return e ? e->code : PX_EINVAL;
    if (mac) {
        uint8_t mv[CRYPTO_MAC_MAX];
        size_t mlen = 0;
        int rc = iso8583_mac_span(&iso8583_unionpay_pos, buf, n, &off, &span, e);
        if (rc == PX_OK)
            rc = hsm_mac_generate(s->hsm, t->mak, CRYPTO_MAC_CUP_ECB, buf + off, span, mv,
                                  sizeof mv, &mlen, e);
        if (rc == PX_OK && mlen != 8)
            rc = px_error_set(e, PX_ECRYPTO, "MAC: %zu bytes, expected 8", mlen);
        if (rc != PX_OK) {
            iso8583_msg_cleanse(&m);
            return rc;
        }
        memcpy(buf + off + span, mv, 8);
        iso8583_msg_cleanse(&m);
    }
    *out = malloc(n);
    if (*out == NULL)
        return px_error_set(e, PX_ENOMEM, "out of memory");
    memcpy(*out, buf, n);
    *outlen = n;
    return PX_OK;
}

void sw_send(switch_svc *s, uint64_t conn, const uint8_t *p, size_t n)
{
    if (net_frame_server_send(s->srv, conn, p, n) == PX_OK)
        net_metric_add(s->m.tx, 1);
}

/* 0-9, A-Z: a response code's characters (the codes the switch sends, contract §1). */
static int code_index(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'Z')
        return 10 + c - 'A';
    return -1;
}

void sw_count_rc(switch_svc *s, const char *rc)
{
    static net_metric *by_code[36 * 36]; /* loop thread only; registered on first use */
    int a = code_index(rc[0]), b = rc[0] ? code_index(rc[1]) : -1;
    char labels[32];
    (void)s;
    if (a < 0 || b < 0)
        return;
    if (by_code[a * 36 + b] == NULL) {
        snprintf(labels, sizeof labels, "code=\"%.2s\"", rc);
        by_code[a * 36 + b] = net_metric_counter("possum_switch_responses_total",
                                                 "Responses sent to terminals, by field 39",
                                                 labels);
    }
    net_metric_add(by_code[a * 36 + b], 1);
}

void sw_answer(switch_svc *s, uint64_t conn, const sw_req *r, const sw_term *t, const char *rc)
{
    iso8583_msg rsp;
    uint8_t *out = NULL;
    size_t n = 0;
    px_error e = {0};
    int mac = r->maced && t != NULL && t->mak != NULL && strcmp(rc, SWITCH_RC_MAC_ERROR) != 0;
    if (sw_rsp_begin(s, r, t, rc, &rsp, &e) != PX_OK ||
        sw_rsp_pack(s, &rsp, t, mac, &out, &n, &e) != PX_OK) {
        px_errorlog("switch", "cannot build the %s response (%s): %s", r->msg.mti, rc,
                    px_error_text(&e));
        net_frame_server_close_conn(s->srv, conn);
        return;
    }
    sw_count_rc(s, rc);
    sw_send(s, conn, out, n);
    free(out);
}
