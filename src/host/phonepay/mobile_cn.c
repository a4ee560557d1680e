/*
 * mobile_cn.c: mainland-China mobile numbers and field 48 of the mobile-number payment
 * messages. The platform-side copy of the terminal's check (seed claims 10 and 12,
 * [0039], [0048]-[0049]): layering forbids host -> device includes, so the rule lives here
 * too; both follow libphonenumber's CN mobile pattern (docs/phonepay.md).
 */
#include "host/phonepay/phonepay.h"
#include "lib/str.h"

#include <string.h>

/* libphonenumber metadata, region CN, <mobile> nationalNumberPattern:
 *   1740[0-5]\d{6} | 1(?:[38]\d|4[57]|[59][0-35-9]|6[25-7]|7[0-35-8])\d{8}
 * As a table: for each second digit, the allowed third digits (bit d set = d allowed). */
static int prefix_is_valid(const char *s)
{
    static const unsigned short third[10] = {
        [3] = 0x3FF,                                     /* 13x */
        [4] = (1u << 5) | (1u << 7),                     /* 145, 147 */
        [5] = 0x3FF & ~(1u << 4),                        /* 15x but 154 */
        [6] = (1u << 2) | (1u << 5) | (1u << 6) | (1u << 7), /* 162, 165-167 */
        [7] = 0x1FF & ~(1u << 4),                        /* 170-173, 175-178 */
        [8] = 0x3FF,                                     /* 18x */
        [9] = 0x3FF & ~(1u << 4),                        /* 19x but 194 */
    };
    int d2 = s[1] - '0', d3 = s[2] - '0';
    if (s[0] != '1')
        return 0;
    if (d2 == 7 && d3 == 4) /* 1740[0-5] only (the 174 block is satellite/maritime else) */
        return s[3] == '0' && s[4] >= '0' && s[4] <= '5';
    return (third[d2] >> d3) & 1u;
}

int phonepay_mobile_is_valid(const char *s, size_t len, const char **why)
{
    const char *reason = NULL;
    if (s == NULL || len != PHONEPAY_MOBILE_LEN)
        reason = "must be 11 digits";
    else if (!px_is_digits(s, len))
        reason = "must be digits only";
    else if (!prefix_is_valid(s))
        reason = "is not a mainland-China mobile number";
    if (why != NULL)
        *why = reason;
    return reason == NULL;
}

int phonepay_field48_parse(const char *f48, size_t len, int with_reference,
                           phonepay_field48 *out, px_error *e)
{
    size_t want = 2 * PHONEPAY_MOBILE_LEN + (with_reference ? PHONEPAY_REF_LEN : 0);
    memset(out, 0, sizeof *out);
    if (f48 == NULL || len != want)
        return px_error_set(e, PX_EFORMAT, "field 48: expected %zu digits, got %zu", want,
                            f48 == NULL ? (size_t)0 : len);
    if (!px_is_digits(f48, len))
        return px_error_set(e, PX_EFORMAT, "field 48: digits only");
    memcpy(out->payee_mobile, f48, PHONEPAY_MOBILE_LEN);
    memcpy(out->payer_mobile, f48 + PHONEPAY_MOBILE_LEN, PHONEPAY_MOBILE_LEN);
    if (with_reference)
        memcpy(out->reference, f48 + 2 * PHONEPAY_MOBILE_LEN, PHONEPAY_REF_LEN);
    return PX_OK;
}
