/*
 * mobile.c: the libphonenumber CN mobile pattern (see mobile.h) as a table of the three-
 * digit prefixes it admits, plus its one four-digit-prefix range (1740[0-5], the maritime
 * satellite block). No regular-expression engine, no allocation.
 */
#include "device/pos/mobile.h"

#include <string.h>

/* Second and third digits after the leading 1: "[38]\d|4[57]|[59][0-35-9]|6[25-7]|7[0-35-8]". */
static int prefix_is_mobile(char b, char c)
{
    switch (b) {
    case '3':
    case '8': return 1;
    case '4': return c == '5' || c == '7';
    case '5':
    case '9': return c != '4';
    case '6': return c == '2' || (c >= '5' && c <= '7');
    case '7': return c != '4' && c != '9';
    default: return 0;
    }
}

int possum_mobile_cn_is_valid(const char *s, const char **why)
{
    const char *reason = NULL;
    size_t n = s != NULL ? strlen(s) : 0;
    for (size_t i = 0; i < n && reason == NULL; i++)
        if (s[i] < '0' || s[i] > '9')
            reason = "digits only";
    if (reason == NULL && n != POSSUM_MOBILE_CN_LEN)
        reason = "must be 11 digits";
    if (reason == NULL && s[0] != '1')
        reason = "a mobile number starts with 1";
    if (reason == NULL && !prefix_is_mobile(s[1], s[2]) &&
        !(s[1] == '7' && s[2] == '4' && s[3] == '0' && s[4] <= '5'))
        reason = "not a mainland China mobile range";
    if (why != NULL)
        *why = reason;
    return reason == NULL;
}

void possum_mobile_cn_mask(const char *s, char out[POSSUM_MOBILE_CN_LEN + 1])
{
    if (!possum_mobile_cn_is_valid(s, NULL)) {
        memset(out, '*', POSSUM_MOBILE_CN_LEN);
    } else {
        memcpy(out, s, POSSUM_MOBILE_CN_LEN);
        memset(out + 3, '*', 4);
    }
    out[POSSUM_MOBILE_CN_LEN] = 0;
}
