/*
 * msg.c: the switch's requests, parsed once into an issuer_req (docs/switch-protocol.md
 * §2), and the small pure checks the handlers use (Luhn, mobile numbers, expiry, BIN
 * ranges, field 54, field 90). Nothing past issuer_req_parse looks at raw fields again.
 */
#include "host/issuer/issuer_int.h"
#include "lib/str.h"
#include "lib/time.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

int issuer_pan_is_valid(const char *pan)
{
    size_t n = strlen(pan);
    int sum = 0;
    if (n < CRYPTO_PAN_MIN || n > CRYPTO_PAN_MAX || !px_is_digits(pan, n))
        return 0;
    for (size_t i = 0; i < n; i++) {
        int d = pan[n - 1 - i] - '0';
        if (i % 2 == 1) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    return sum % 10 == 0;
}

int issuer_mobile_is_valid(const char *s)
{
    return strlen(s) == 11 && px_is_digits(s, 11) && s[0] == '1' && s[1] >= '3';
}

int issuer_expiry_is_past(const char *yymm, int64_t now_ms)
{
    char now[5];
    if (strlen(yymm) != 4 || !px_is_digits(yymm, 4))
        return 1;
    px_time_format_utc(now_ms, "%y%m", now, sizeof now);
    return strcmp(yymm, now) < 0; /* YYMM compares as text within 2000..2099 */
}

int issuer_orig_parse(const char *f90, issuer_orig *o, px_error *e)
{
    if (strlen(f90) != 42 || !px_is_digits(f90, 42))
        return px_error_set(e, PX_EFORMAT, "field 90: expected 42 digits");
    memcpy(o->mti, f90, 4);
    o->mti[4] = 0;
    memcpy(o->stan, f90 + 4, 6);
    o->stan[6] = 0;
    memcpy(o->tx_time, f90 + 10, 10);
    o->tx_time[10] = 0;
    memcpy(o->acquirer, f90 + 20, 11);
    o->acquirer[11] = 0;
    memcpy(o->forwarding, f90 + 31, 11);
    o->forwarding[11] = 0;
    return PX_OK;
}

void issuer_field54(const char *currency, int64_t balance_minor, char out[21])
{
    snprintf(out, 21, "1002%.3s%c%012lld", currency, balance_minor < 0 ? 'D' : 'C',
             (long long)(balance_minor < 0 ? -balance_minor : balance_minor));
}

int issuer_bin_range_is_valid(const char *low, const char *high)
{
    size_t n = strlen(low);
    return n >= 6 && n <= 11 && strlen(high) == n && px_is_digits(low, n) &&
           px_is_digits(high, n) && strcmp(low, high) <= 0;
}

int issuer_bin_matches(const char *pan, const char *low, const char *high)
{
    size_t n = strlen(low);
    if (!issuer_bin_range_is_valid(low, high) || strlen(pan) <= n)
        return 0;
    return strncmp(pan, low, n) >= 0 && strncmp(pan, high, n) <= 0;
}

/* ---- the parser ---- */

/* Copy text field f into out (size outsz). PX_ENOTFOUND when absent; a value that does
 * not fit is a format error (the dialect's limits are wider than ours only for 32). */
static int text(const iso8583_msg *m, int f, char *out, size_t outsz, px_error *e)
{
    const uint8_t *p;
    size_t n;
    out[0] = 0;
    if (iso8583_get(m, f, &p, &n) != PX_OK)
        return PX_ENOTFOUND;
    if (n >= outsz)
        return px_error_set(e, PX_EFORMAT, "field %d: longer than %zu", f, outsz - 1);
    memcpy(out, p, n);
    out[n] = 0;
    return PX_OK;
}

static int need(const iso8583_msg *m, int f, char *out, size_t outsz, px_error *e)
{
    int rc = text(m, f, out, outsz, e);
    if (rc == PX_ENOTFOUND)
        return px_error_set(e, PX_EFORMAT, "field %d: missing", f);
    return rc;
}

/* Institution ids compare as numbers: "00012345678" (field 90) is "12345678" (field 32). */
static void strip_zeros(char *id)
{
    size_t z = strspn(id, "0");
    if (id[0] != 0 && id[z] == 0)
        z--;
    memmove(id, id + z, strlen(id + z) + 1);
}

/* Field 7 (MMDDhhmmss) must name a real month, day and time. */
static int check_tx_time(const char *t, px_error *e)
{
    int mo = (t[0] - '0') * 10 + (t[1] - '0'), d = (t[2] - '0') * 10 + (t[3] - '0');
    int h = (t[4] - '0') * 10 + (t[5] - '0'), mi = (t[6] - '0') * 10 + (t[7] - '0');
    int s = (t[8] - '0') * 10 + (t[9] - '0');
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59)
        return px_error_set(e, PX_EFORMAT, "field 7: not a date and time MMDDhhmmss");
    return PX_OK;
}

/* The card: field 2, else the PAN and expiry of track 2 (35 = PAN '=' YYMM ...). */
static int parse_card(const iso8583_msg *m, issuer_req *r, px_error *e)
{
    char t2[40];
    int rc = text(m, 2, r->pan, sizeof r->pan, e);
    if (rc == PX_ENOTFOUND && (rc = text(m, 35, t2, sizeof t2, e)) == PX_OK) {
        const char *sep = strchr(t2, '=');
        size_t n = sep ? (size_t)(sep - t2) : 0;
        if (sep == NULL || n >= sizeof r->pan || strlen(sep + 1) < 4 || !px_is_digits(sep + 1, 4))
            rc = px_error_set(e, PX_EFORMAT, "field 35: not PAN '=' expiry ...");
        else {
            memcpy(r->pan, t2, n);
            r->pan[n] = 0;
            memcpy(r->expiry, sep + 1, 4);
            r->expiry[4] = 0;
        }
        OPENSSL_cleanse(t2, sizeof t2);
    }
    if (rc == PX_ENOTFOUND)
        return px_error_set(e, PX_EFORMAT, "field 2 or 35: missing (no card)");
    if (rc != PX_OK)
        return rc;
    if (strlen(r->pan) < CRYPTO_PAN_MIN || !px_is_digits(r->pan, strlen(r->pan)))
        return px_error_set(e, PX_EFORMAT, "field %d: the PAN is not 12..19 digits",
                            iso8583_has(m, 2) ? 2 : 35);
    if (r->expiry[0] == 0 && (rc = text(m, 14, r->expiry, sizeof r->expiry, e)) != PX_OK)
        return rc == PX_ENOTFOUND ? PX_OK : rc;
    return PX_OK;
}

/* Field 4 into amount_minor (required: 1), or -1 when absent and not required. */
static int parse_amount(const iso8583_msg *m, issuer_req *r, int required, px_error *e)
{
    char a[13];
    int rc = required ? need(m, 4, a, sizeof a, e) : text(m, 4, a, sizeof a, e);
    r->amount_minor = -1;
    if (rc == PX_ENOTFOUND)
        return PX_OK;
    if (rc != PX_OK)
        return rc;
    if (px_parse_i64(a, 0, 999999999999LL, &r->amount_minor) != PX_OK)
        return px_error_set(e, PX_EFORMAT, "field 4: not an amount");
    return PX_OK;
}

/* What every request on the link carries: 7, 11, and 32 (optional on 0220). */
static int parse_common(const iso8583_msg *m, issuer_req *r, px_error *e)
{
    int rc = need(m, 7, r->tx_time, sizeof r->tx_time, e);
    if (rc == PX_OK)
        rc = check_tx_time(r->tx_time, e);
    if (rc == PX_OK)
        rc = need(m, 11, r->stan, sizeof r->stan, e);
    if (rc == PX_OK && r->kind != ISSUER_K_NETMGMT) {
        rc = text(m, 32, r->acquirer, sizeof r->acquirer, e);
        strip_zeros(r->acquirer);
        if (rc == PX_ENOTFOUND)
            rc = r->kind == ISSUER_K_CREDIT
                     ? PX_OK
                     : px_error_set(e, PX_EFORMAT, "field 32: missing (acquirer)");
    }
    return rc;
}

/* Field 52 and, when present, 90. */
static int parse_pin_and_orig(const iso8583_msg *m, issuer_req *r, px_error *e)
{
    const uint8_t *p;
    size_t n;
    char f90[43];
    int rc;
    if (iso8583_get(m, 52, &p, &n) == PX_OK) {
        if (PX_BUG(n != sizeof r->pin_block))
            return PX_EINTERNAL;
        memcpy(r->pin_block, p, n);
        r->has_pin = 1;
    }
    rc = text(m, 90, f90, sizeof f90, e);
    if (rc == PX_ENOTFOUND)
        return r->kind == ISSUER_K_VOID ? px_error_set(e, PX_EFORMAT, "field 90: missing") : PX_OK;
    if (rc == PX_OK && (rc = issuer_orig_parse(f90, &r->orig, e)) == PX_OK) {
        strip_zeros(r->orig.acquirer);
        r->has_orig = 1;
    }
    return rc;
}

/* Field 48 of a mobile-number debit (payee n11 ‖ payer n11) or a payee credit (payer n11),
 * and 103 (payee card) of the debit. */
static int parse_mobile(const iso8583_msg *m, issuer_req *r, px_error *e)
{
    char f48[24];
    int rc = need(m, 48, f48, sizeof f48, e);
    if (rc != PX_OK)
        return rc;
    if (r->kind == ISSUER_K_CREDIT) {
        if (!issuer_mobile_is_valid(f48))
            return px_error_set(e, PX_EFORMAT, "field 48: not a payer mobile number");
        px_strlcpy(r->payer_mobile, f48, sizeof r->payer_mobile);
        return PX_OK;
    }
    if (strlen(f48) != 22)
        return px_error_set(e, PX_EFORMAT, "field 48: expected payee ‖ payer mobile (22 digits)");
    memcpy(r->payee_mobile, f48, 11);
    memcpy(r->payer_mobile, f48 + 11, 11);
    r->payee_mobile[11] = r->payer_mobile[11] = 0;
    if (!issuer_mobile_is_valid(r->payee_mobile) || !issuer_mobile_is_valid(r->payer_mobile))
        return px_error_set(e, PX_EFORMAT, "field 48: not two mobile numbers");
    rc = need(m, 103, r->payee_card, sizeof r->payee_card, e);
    if (rc == PX_OK && !issuer_pan_is_valid(r->payee_card))
        rc = px_error_set(e, PX_EFORMAT, "field 103: not a card number");
    return rc;
}

/* The kind from MTI and processing code; PX_EUNSUPPORTED for anything else. */
static int classify(const iso8583_msg *m, issuer_req *r, px_error *e)
{
    static const struct {
        const char *mti, *proc;
        issuer_kind kind;
    } kinds[] = {{"0200", "000000", ISSUER_K_PURCHASE}, {"0200", "310000", ISSUER_K_BALANCE},
                 {"0200", "200000", ISSUER_K_VOID},     {"0200", "400000", ISSUER_K_MOBILE_DEBIT},
                 {"0220", "210000", ISSUER_K_CREDIT},   {"0420", NULL, ISSUER_K_REVERSAL},
                 {"0800", NULL, ISSUER_K_NETMGMT}};
    int known_mti = 0;
    px_strlcpy(r->mti, m->mti, sizeof r->mti);
    px_strlcpy(r->mti_class, m->mti, sizeof r->mti_class);
    if (strcmp(r->mti, "0421") == 0)
        r->mti_class[3] = '0';
    (void)text(m, 3, r->proc, sizeof r->proc, e);
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strcmp(kinds[i].mti, r->mti_class) != 0)
            continue;
        known_mti = 1;
        if (kinds[i].proc == NULL || strcmp(kinds[i].proc, r->proc) == 0) {
            r->kind = kinds[i].kind;
            return PX_OK;
        }
    }
    return px_error_set(e, PX_EUNSUPPORTED,
                        known_mti ? "processing code %s not served" : "MTI %s not served",
                        known_mti ? (r->proc[0] ? r->proc : "(none)") : r->mti);
}

/* The fields of a financial request beyond the common ones. */
static int parse_financial(const iso8583_msg *m, issuer_req *r, px_error *e)
{
    int rc = parse_card(m, r, e);
    if (rc == PX_OK && r->kind != ISSUER_K_REVERSAL && r->kind != ISSUER_K_CREDIT)
        rc = need(m, 41, r->terminal, sizeof r->terminal, e);
    if (rc == PX_OK && r->kind != ISSUER_K_REVERSAL && r->kind != ISSUER_K_CREDIT)
        rc = need(m, 42, r->merchant, sizeof r->merchant, e);
    if (rc == PX_OK && r->kind == ISSUER_K_REVERSAL) {
        (void)text(m, 41, r->terminal, sizeof r->terminal, e);
        (void)text(m, 42, r->merchant, sizeof r->merchant, e);
    }
    if (rc == PX_OK)
        rc = r->kind == ISSUER_K_REVERSAL ? text(m, 37, r->rrn, sizeof r->rrn, e)
                                          : need(m, 37, r->rrn, sizeof r->rrn, e);
    if (rc == PX_ENOTFOUND)
        rc = PX_OK;
    if (rc == PX_OK)
        rc = parse_amount(m, r, r->kind != ISSUER_K_BALANCE && r->kind != ISSUER_K_REVERSAL, e);
    if (rc == PX_OK && text(m, 49, r->currency, sizeof r->currency, e) == PX_ENOTFOUND)
        px_strlcpy(r->currency, "156", sizeof r->currency);
    if (rc == PX_OK)
        rc = parse_pin_and_orig(m, r, e);
    if (rc == PX_OK && (r->kind == ISSUER_K_MOBILE_DEBIT || r->kind == ISSUER_K_CREDIT))
        rc = parse_mobile(m, r, e);
    return rc;
}

int issuer_req_parse(const iso8583_msg *m, issuer_req *r, px_error *e)
{
    int rc;
    memset(r, 0, sizeof *r);
    r->amount_minor = -1;
    if (PX_BUG(!m->mti_valid))
        return PX_EINTERNAL;
    rc = classify(m, r, e);
    if (rc == PX_OK)
        rc = parse_common(m, r, e);
    if (rc == PX_OK && r->kind == ISSUER_K_NETMGMT)
        return need(m, 70, r->nmi, sizeof r->nmi, e);
    if (rc == PX_OK)
        rc = parse_financial(m, r, e);
    if (rc != PX_OK)
        issuer_req_cleanse(r);
    return rc;
}

void issuer_req_cleanse(issuer_req *r)
{
    OPENSSL_cleanse(r->pan, sizeof r->pan);
    OPENSSL_cleanse(r->pin_block, sizeof r->pin_block);
    OPENSSL_cleanse(r->payee_card, sizeof r->payee_card);
}
