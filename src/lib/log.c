#include "lib/log.h"
#include "lib/limits.h"
#include "lib/time.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>

static struct {
    px_log_level level;
    px_log_format format;
    FILE *out;
    pthread_mutex_t lock;
} px_logger = {PX_LOG_INFO, PX_LOG_TEXT, NULL, PTHREAD_MUTEX_INITIALIZER};

static const char *const px_level_names[] = {"debug", "info", "warn", "error", "off"};

void px_log_setup(px_log_level level, px_log_format format, FILE *out)
{
    px_logger.level = level;
    px_logger.format = format;
    px_logger.out = out;
}

px_log_level px_log_get_level(void)
{
    return px_logger.level;
}

int px_log_parse_level(const char *s, px_log_level *out)
{
    for (int i = 0; i <= PX_LOG_OFF; i++)
        if (strcasecmp(s, px_level_names[i]) == 0) {
            *out = (px_log_level)i;
            return 0;
        }
    return -1;
}

int px_log_parse_format(const char *s, px_log_format *out)
{
    if (strcasecmp(s, "text") == 0)
        *out = PX_LOG_TEXT;
    else if (strcasecmp(s, "json") == 0)
        *out = PX_LOG_JSON;
    else
        return -1;
    return 0;
}

static size_t run_length(const char *s, int (*cls)(int))
{
    size_t n = 0;
    while (s[n] && cls((unsigned char)s[n]))
        n++;
    return n;
}

static int is_digit_cls(int c)
{
    return c >= '0' && c <= '9';
}
static int is_hex_cls(int c)
{
    return isxdigit(c);
}

/* Append src[0..n) to out at *o, bounded. */
static void put(char *out, size_t outsz, size_t *o, const char *src, size_t n)
{
    for (size_t i = 0; i < n && *o + 1 < outsz; i++)
        out[(*o)++] = src[i];
}

void px_log_redact(const char *in, char *out, size_t outsz)
{
    size_t o = 0;
    int prev_alnum = 0;
    if (outsz == 0)
        return;
    while (*in) {
        size_t hex = prev_alnum ? 0 : run_length(in, is_hex_cls);
        size_t dig = prev_alnum ? 0 : run_length(in, is_digit_cls);
        if (hex >= 16 && hex > dig) {
            put(out, outsz, &o, "[redacted]", 10);
            in += hex;
        } else if (dig >= 13 && dig <= 19 && !isalnum((unsigned char)in[dig])) {
            put(out, outsz, &o, in, 6);
            for (size_t i = 6; i + 4 < dig; i++)
                put(out, outsz, &o, "*", 1);
            put(out, outsz, &o, in + dig - 4, 4);
            in += dig;
        } else if (dig >= 16 || hex >= 16) {
            put(out, outsz, &o, "[redacted]", 10);
            in += dig > hex ? dig : hex;
        } else {
            prev_alnum = isalnum((unsigned char)*in);
            put(out, outsz, &o, in, 1);
            in++;
            continue;
        }
        prev_alnum = 0;
    }
    out[o] = 0;
}

static void json_escape(const char *s, char *out, size_t outsz)
{
    size_t o = 0;
    for (; *s && o + 7 < outsz; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, outsz - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = 0;
}

void px_log(px_log_level level, const char *module, const char *fmt, ...)
{
    char raw[PX_LOG_LINE_MAX], clean[PX_LOG_LINE_MAX], esc[PX_LOG_LINE_MAX], ts[40];
    FILE *out = px_logger.out ? px_logger.out : stderr;
    va_list ap;
    if (level < px_logger.level || level >= PX_LOG_OFF)
        return;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    px_log_redact(raw, clean, sizeof clean);
    px_time_iso8601(px_now_ms(), ts, sizeof ts);
    pthread_mutex_lock(&px_logger.lock);
    if (px_logger.format == PX_LOG_JSON) {
        json_escape(clean, esc, sizeof esc);
        fprintf(out, "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":\"%s\",\"msg\":\"%s\"}\n", ts,
                px_level_names[level], module, esc);
    } else {
        fprintf(out, "%s %-5s [%s] %s\n", ts, px_level_names[level], module, clean);
    }
    fflush(out);
    pthread_mutex_unlock(&px_logger.lock);
}
