/* text.c: payee names (UTF-8), the masked name of [0042]/[0048], masked numbers, amounts. */
#include "host/phonepay/phonepay_int.h"
#include "lib/str.h"

#include <stdio.h>
#include <string.h>

/* Length of the UTF-8 sequence at s (1..4) with its code point, or 0 when it is not valid
 * UTF-8 (overlong forms, surrogates and values past U+10FFFF are refused). */
static size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
    size_t n, i;
    uint32_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, c &= 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, c &= 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, c &= 0x07;
    else
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
        (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return n;
}

int phonepay_name_is_valid(const char *s, const char **why)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t chars = 0;
    uint32_t cp = 0, last = 0;
    const char *reason = NULL;
    if (s == NULL || *s == 0)
        reason = "must not be empty";
    while (reason == NULL && *p != 0) {
        size_t n = utf8_next(p, &cp);
        if (n == 0)
            reason = "is not valid UTF-8";
        else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0) || cp == 0x2028 ||
                 cp == 0x2029)
            reason = "must not contain control characters";
        else if (chars == 0 && cp == ' ')
            reason = "must not start with a space";
        else if (++chars > PX_PHONEPAY_NAME_CHARS)
            reason = "is too long (32 characters at most)";
        last = cp;
        p += n;
    }
    if (reason == NULL && last == ' ')
        reason = "must not end with a space";
    if (reason == NULL && (size_t)(p - (const unsigned char *)s) >= PHONEPAY_NAME_MAX)
        reason = "is too long";
    if (why != NULL)
        *why = reason;
    return reason == NULL;
}

int phonepay_name_mask(const char *name, char *out, size_t outsz)
{
    const unsigned char *p = (const unsigned char *)name;
    uint32_t cp;
    size_t first, second, rest;
    if (outsz == 0)
        return PX_EINVAL;
    out[0] = 0;
    if ((first = utf8_next(p, &cp)) == 0 || p[0] == 0)
        return PX_EFORMAT;
    if (p[first] == 0) /* one character: nothing to hide behind */
        return px_strlcpy(out, name, outsz);
    if ((second = utf8_next(p + first, &cp)) == 0)
        return PX_EFORMAT;
    rest = strlen(name + first + second);
    if (first + 1 + rest + 1 > outsz)
        return PX_ETOOBIG;
    memcpy(out, name, first);
    out[first] = '*';
    memcpy(out + first + 1, name + first + second, rest + 1);
    return PX_OK;
}

void phonepay_mobile_mask(const char *mobile, char out[PHONEPAY_MOBILE_LEN + 1])
{
    size_t n = strlen(mobile);
    if (n != PHONEPAY_MOBILE_LEN) {
        px_strlcpy(out, "***********", PHONEPAY_MOBILE_LEN + 1);
        return;
    }
    memcpy(out, mobile, 3);
    memset(out + 3, '*', 4);
    memcpy(out + 7, mobile + 7, 4);
    out[PHONEPAY_MOBILE_LEN] = 0;
}

void phonepay_amount_format(int64_t amount_minor, char *out, size_t outsz)
{
    const char *sign = amount_minor < 0 ? "-" : "";
    uint64_t a = amount_minor < 0 ? (uint64_t)0 - (uint64_t)amount_minor : (uint64_t)amount_minor;
    snprintf(out, outsz, "%s%llu.%02llu", sign, (unsigned long long)(a / 100),
             (unsigned long long)(a % 100));
}

int phonepay_pan_is_valid(const char *pan)
{
    size_t n = pan ? strlen(pan) : 0;
    int sum = 0;
    if (n < 12 || n > 19 || !px_is_digits(pan, n))
        return 0;
    for (size_t i = 0; i < n; i++) {
        int d = pan[n - 1 - i] - '0';
        if (i % 2 == 1 && (d *= 2) > 9)
            d -= 9;
        sum += d;
    }
    return sum % 10 == 0;
}
