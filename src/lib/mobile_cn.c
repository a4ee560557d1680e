/*
 * mobile_cn.c: the libphonenumber CN mobile pattern (see mobile_cn.h) as a table of the
 * three-digit prefixes it admits, plus its one four-digit-prefix range (1740[0-5], the
 * maritime satellite block). No regular-expression engine, no allocation.
 */
#include "lib/mobile_cn.h"
#include "lib/str.h"

#include <string.h>

/* For each second digit after the leading 1, the allowed third digits (bit d = d allowed):
 * "[38]\d|4[57]|[59][0-35-9]|6[25-7]|7[0-35-8]". */
static int prefix_is_mobile(const char *s)
{
    static const unsigned short third[10] = {
        [3] = 0x3FF,                                         /* 13x */
        [4] = (1u << 5) | (1u << 7),                         /* 145, 147 */
        [5] = 0x3FF & ~(1u << 4),                            /* 15x but 154 */
        [6] = (1u << 2) | (1u << 5) | (1u << 6) | (1u << 7), /* 162, 165-167 */
        [7] = 0x1FF & ~(1u << 4),                            /* 170-173, 175-178 */
        [8] = 0x3FF,                                         /* 18x */
        [9] = 0x3FF & ~(1u << 4),                            /* 19x but 194 */
    };
    int d2 = s[1] - '0', d3 = s[2] - '0';
    if (s[0] != '1')
        return 0;
    if (d2 == 7 && d3 == 4) /* 1740[0-5] only */
        return s[3] == '0' && s[4] >= '0' && s[4] <= '5';
    return (third[d2] >> d3) & 1u;
}

int px_mobile_cn_is_valid(const char *s, size_t len, const char **why)
{
    const char *reason = NULL;
    if (s == NULL || len != PX_MOBILE_CN_LEN)
        reason = "must be 11 digits";
    else if (!px_is_digits(s, len))
        reason = "must be digits only";
    else if (!prefix_is_mobile(s))
        reason = "is not a mainland-China mobile number";
    if (why != NULL)
        *why = reason;
    return reason == NULL;
}

void px_mobile_cn_mask(const char *s, char out[PX_MOBILE_CN_LEN + 1])
{
    if (!px_mobile_cn_is_valid(s, s != NULL ? strlen(s) : 0, NULL)) {
        memset(out, '*', PX_MOBILE_CN_LEN);
    } else {
        memcpy(out, s, PX_MOBILE_CN_LEN);
        memset(out + 3, '*', 4);
    }
    out[PX_MOBILE_CN_LEN] = 0;
}
