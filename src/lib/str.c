#include "lib/str.h"
#include "lib/err.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int px_strlcpy(char *dst, const char *src, size_t dstsz)
{
    size_t n = strlen(src);
    if (dstsz == 0)
        return PX_ETOOBIG;
    if (n >= dstsz) {
        memcpy(dst, src, dstsz - 1);
        dst[dstsz - 1] = 0;
        return PX_ETOOBIG;
    }
    memcpy(dst, src, n + 1);
    return PX_OK;
}

int px_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    long long v;
    if (s == NULL || *s == 0 || (*s != '-' && (*s < '0' || *s > '9')))
        return PX_EFORMAT;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*end != 0)
        return PX_EFORMAT;
    if (errno == ERANGE || v < min || v > max)
        return PX_ERANGE;
    *out = (int64_t)v;
    return PX_OK;
}

int px_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return PX_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return PX_OK;
        }
    }
    return PX_EFORMAT;
}

int px_is_digits(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

int px_parse_hostport(const char *s, char *host, size_t hostsz, int *port)
{
    const char *colon = strrchr(s, ':');
    const char *h = s;
    size_t hlen;
    int64_t p;
    if (colon == NULL)
        return PX_EFORMAT;
    hlen = (size_t)(colon - s);
    if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
        h = s + 1;
        hlen -= 2;
    }
    if (hlen >= hostsz)
        return PX_ETOOBIG;
    if (px_parse_i64(colon + 1, 0, 65535, &p) != PX_OK)
        return PX_ERANGE;
    memcpy(host, h, hlen);
    host[hlen] = 0;
    *port = (int)p;
    return PX_OK;
}

int px_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

void px_mask_pan(const char *pan, char *out, size_t outsz)
{
    size_t n = strlen(pan);
    if (outsz == 0)
        return;
    if (n + 1 > outsz)
        n = outsz - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (i < 6 || i + 4 >= n) ? pan[i] : '*';
    if (n < 11) /* too short to show 10 digits safely: mask all but the last 4 */
        for (size_t i = 0; i + 4 < n; i++)
            out[i] = '*';
    out[n] = 0;
}
