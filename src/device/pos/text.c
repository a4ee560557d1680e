/*
 * text.c: what the terminal shows a person: response codes in plain words (the table of
 * docs/switch-protocol.md section 1, and the provider codes it passes through), amounts in
 * yuan, and the one-line result.
 */
#include "device/pos/pos.h"
#include "lib/str.h"

#include <stdio.h>
#include <string.h>

const char *pos_rsp_text(const char *code)
{
    static const struct {
        const char *code, *text;
    } table[] = {
        {"00", "approved"},
        {"03", "invalid merchant"},
        {"05", "do not honour"},
        {"12", "invalid transaction"},
        {"13", "invalid amount"},
        {"14", "invalid card number"},
        {"15", "no such issuer: the card's bank is not a contracted bank"},
        {"25", "original transaction not found"},
        {"30", "format error"},
        {"40", "function not supported"},
        {"51", "insufficient funds"},
        {"54", "expired card"},
        {"55", "incorrect PIN"},
        {"61", "exceeds amount limit"},
        {"75", "PIN tries exceeded"},
        {"77", "not signed on or batch closed: sign on again"},
        {"91", "card issuer unavailable, try later"},
        {"94", "duplicate transmission"},
        {"96", "system malfunction, nothing was charged"},
        {"97", "terminal not registered"},
        {"A0", "MAC error: sign on again"},
        {"Q1", "invalid mobile number"},
        {"Q2", "payee not registered"},
        {"Q4", "too many lookups, try later"},
    };
    for (size_t i = 0; code != NULL && i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].code, code) == 0)
            return table[i].text;
    return "refused";
}

void pos_amount_format(int64_t minor, char *out, size_t outsz)
{
    uint64_t v = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
    snprintf(out, outsz, "%s%llu.%02llu", minor < 0 ? "-" : "", (unsigned long long)(v / 100),
             (unsigned long long)(v % 100));
}

int pos_amount_parse(const char *s, int64_t *minor)
{
    const char *dot = s != NULL ? strchr(s, '.') : NULL;
    size_t whole = dot != NULL ? (size_t)(dot - s) : (s != NULL ? strlen(s) : 0);
    size_t frac = dot != NULL ? strlen(dot + 1) : 0;
    int64_t y = 0, f = 0;
    char buf[16];
    if (whole == 0 || whole > 10 || !px_is_digits(s, whole) || (dot != NULL && frac == 0) ||
        frac > 2 || (frac > 0 && !px_is_digits(dot + 1, frac)))
        return PX_EINVAL;
    memcpy(buf, s, whole);
    buf[whole] = 0;
    if (px_parse_i64(buf, 0, 9999999999LL, &y) != PX_OK)
        return PX_EINVAL;
    for (size_t i = 0; i < 2; i++)
        f = f * 10 + (i < frac ? dot[1 + i] - '0' : 0);
    *minor = y * 100 + f;
    return PX_OK;
}

void pos_result_format(const pos_result *r, char *out, size_t outsz)
{
    char amt[32] = "", bal[32] = "";
    int n = 0;
    switch (r->outcome) {
    case POS_APPROVED:
        pos_amount_format(r->amount_minor, amt, sizeof amt);
        pos_amount_format(r->balance_minor, bal, sizeof bal);
        n = snprintf(out, outsz, "APPROVED");
        if (r->amount_minor > 0 && n >= 0 && (size_t)n < outsz)
            n += snprintf(out + n, outsz - (size_t)n, "  amount %s CNY", amt);
        if (r->has_balance && n >= 0 && (size_t)n < outsz)
            n += snprintf(out + n, outsz - (size_t)n, "  balance %s CNY", bal);
        if (r->auth_code[0] != 0 && n >= 0 && (size_t)n < outsz)
            n += snprintf(out + n, outsz - (size_t)n, "  auth %s", r->auth_code);
        if (r->rrn[0] != 0 && n >= 0 && (size_t)n < outsz)
            snprintf(out + n, outsz - (size_t)n, "  RRN %s", r->rrn);
        break;
    case POS_DECLINED: snprintf(out, outsz, "DECLINED %s: %s", r->rsp_code, r->text); break;
    case POS_FAILED: snprintf(out, outsz, "FAILED: %s", r->text); break;
    default: snprintf(out, outsz, "REFUSED: %s", r->text); break;
    }
}
