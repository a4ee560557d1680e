#include "lib/time.h"
#include "lib/err.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t px_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t px_mono_ms(void)
{
    return px_mono_ns() / 1000000;
}

int64_t px_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int px_time_format_utc(int64_t ms, const char *fmt, char *out, size_t outsz)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL)
        return PX_EINVAL;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    size_t n = strftime(out, outsz, fmt, &tm);
#pragma GCC diagnostic pop
    if (n == 0 && outsz > 0 && fmt[0] != 0)
        return PX_EINVAL;
    return PX_OK;
}

void px_time_iso8601(int64_t ms, char *out, size_t outsz)
{
    char base[32];
    if (px_time_format_utc(ms, "%Y-%m-%dT%H:%M:%S", base, sizeof base) != PX_OK)
        base[0] = 0;
    snprintf(out, outsz, "%s.%03dZ", base, (int)(ms % 1000));
}

int px_time_parse_date(const char *s, int64_t *ms)
{
    struct tm tm;
    int y, m, d;
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return PX_EFORMAT;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return PX_EFORMAT;
    y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    m = (s[5] - '0') * 10 + (s[6] - '0');
    d = (s[8] - '0') * 10 + (s[9] - '0');
    if (m < 1 || m > 12 || d < 1 || d > 31)
        return PX_EFORMAT;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    time_t t = timegm(&tm);
    if (tm.tm_mday != d) /* timegm normalised an impossible day such as 02-30 */
        return PX_EFORMAT;
    *ms = (int64_t)t * 1000;
    return PX_OK;
}
