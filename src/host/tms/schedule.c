/*
 * schedule.c: when a terminal calls the TMS by itself (seed 000 claim 2, [0053]: "a period of
 * a week, every Friday at 17:00"), with jitter so a fleet does not arrive at once.
 *
 * Text form: PERIOD[@[DAY ]HH:MM[ZONE]][~JITTER]
 *   PERIOD, JITTER: a number and a unit m (minutes), h, d, w: "7d", "30m"
 *   DAY: Mon Tue Wed Thu Fri Sat Sun; ZONE: Z (default) or +HH:MM / -HH:MM
 * e.g. "7d@Fri 17:00+08:00~30m", "1d@02:00~1h", "1h~5m".
 */
#include "host/tms/tms_int.h"

#include "lib/str.h"

#include <ctype.h>
#include <string.h>

#define MIN_MS 60000LL
#define DAY_MS 86400000LL

static int parse_duration(const char **p, int64_t *ms)
{
    int64_t v = 0;
    int n = 0;
    while (isdigit((unsigned char)**p) && n < 7) {
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    if (n == 0 || isdigit((unsigned char)**p))
        return 0;
    switch (**p) {
    case 'm': *ms = v * MIN_MS; break;
    case 'h': *ms = v * 60 * MIN_MS; break;
    case 'd': *ms = v * DAY_MS; break;
    case 'w': *ms = v * 7 * DAY_MS; break;
    default: return 0;
    }
    (*p)++;
    return 1;
}

static int parse_2digits(const char **p, int max, int *out)
{
    if (!isdigit((unsigned char)(*p)[0]) || !isdigit((unsigned char)(*p)[1]))
        return 0;
    *out = ((*p)[0] - '0') * 10 + ((*p)[1] - '0');
    *p += 2;
    return *out <= max;
}

/* "[DAY ]HH:MM[ZONE]" into the anchor (ms since the epoch, UTC). */
static int parse_anchor(const char **p, int64_t *anchor)
{
    static const char *const days[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
    int64_t day = 0, zone_min = 0;
    int hh, mm, zh, zm;
    for (int i = 0; i < 7; i++)
        if (strncmp(*p, days[i], 3) == 0 && (*p)[3] == ' ') {
            day = i; /* 1970-01-01 was a Thursday */
            *p += 4;
            break;
        }
    if (!parse_2digits(p, 23, &hh) || **p != ':' || (++*p, !parse_2digits(p, 59, &mm)))
        return 0;
    if (**p == 'Z') {
        (*p)++;
    } else if (**p == '+' || **p == '-') {
        int sign = **p == '-' ? -1 : 1;
        (*p)++;
        if (!parse_2digits(p, 14, &zh) || **p != ':' || (++*p, !parse_2digits(p, 59, &zm)))
            return 0;
        zone_min = sign * (zh * 60 + zm);
    }
    *anchor = day * DAY_MS + (hh * 60 + mm - zone_min) * MIN_MS;
    return 1;
}

int tms_schedule_parse(const char *s, tms_schedule *out, px_error *e)
{
    const char *p = s;
    memset(out, 0, sizeof *out);
    if (s == NULL || strlen(s) >= 64 || !parse_duration(&p, &out->period_ms) ||
        out->period_ms < MIN_MS || out->period_ms > 366 * DAY_MS)
        return px_error_set(e, PX_EINVAL,
                            "\"%.63s\": expected PERIOD[@[DAY ]HH:MM[ZONE]][~JITTER]"
                            " with a period from 1m to 366d, e.g. \"7d@Fri 17:00+08:00~30m\"",
                            s != NULL ? s : "");
    if (*p == '@' && (++p, !parse_anchor(&p, &out->anchor_ms)))
        return px_error_set(e, PX_EINVAL,
                            "\"%s\": after @ expected [DAY ]HH:MM[Z|+HH:MM], e.g. "
                            "\"Fri 17:00\"",
                            s);
    if (*p == '~' && (++p, !parse_duration(&p, &out->jitter_ms) || out->jitter_ms > out->period_ms))
        return px_error_set(e, PX_EINVAL,
                            "\"%s\": after ~ expected a jitter no longer than the "
                            "period, e.g. \"30m\"",
                            s);
    if (*p != 0)
        return px_error_set(e, PX_EINVAL, "\"%s\": unexpected \"%s\"", s, p);
    return PX_OK;
}

/* FNV-1a of the serial and the slot number: a terminal's place within the jitter. */
static uint64_t slot_hash(const char *serial, int64_t slot)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *c = serial; *c; c++)
        h = (h ^ (uint8_t)*c) * 1099511628211ULL;
    for (int i = 0; i < 8; i++)
        h = (h ^ (uint8_t)((uint64_t)slot >> (8 * i))) * 1099511628211ULL;
    return h;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t tms_schedule_next(const tms_schedule *s, const char *serial, int64_t now)
{
    int64_t k;
    if (PX_BUG(s->period_ms <= 0))
        return now;
    k = floor_div(now - s->anchor_ms, s->period_ms);
    for (int i = 0; i < 2; i++, k++) {
        int64_t jitter = s->jitter_ms > 0
                             ? (int64_t)(slot_hash(serial, k) % (uint64_t)(s->jitter_ms + 1))
                             : 0;
        int64_t t = s->anchor_ms + k * s->period_ms + jitter;
        if (t > now)
            return t;
    }
    return s->anchor_ms + k * s->period_ms; /* not reached: slot k+1 is after now */
}
