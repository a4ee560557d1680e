/*
 * log.h: levelled logging, human-readable or JSON lines, to stderr or a file.
 * Never a secret: every message passes through a redactor that masks digit runs that
 * look like a PAN (13-19 digits: first 6 and last 4 kept) and hides hex runs of 16 or
 * more characters (key or PIN block material). Callers still must not log secrets.
 */
#ifndef PX_LOG_H
#define PX_LOG_H

#include <stddef.h>
#include <stdio.h>

typedef enum px_log_level {
    PX_LOG_DEBUG = 0,
    PX_LOG_INFO = 1,
    PX_LOG_WARN = 2,
    PX_LOG_ERROR = 3,
    PX_LOG_OFF = 4
} px_log_level;

typedef enum px_log_format { PX_LOG_TEXT = 0, PX_LOG_JSON = 1 } px_log_format;

void px_log_setup(px_log_level level, px_log_format format, FILE *out);
px_log_level px_log_get_level(void);
int px_log_parse_level(const char *s, px_log_level *out);
int px_log_parse_format(const char *s, px_log_format *out);

void px_log(px_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Redact a message in place-safe fashion into out (see the header comment). */
void px_log_redact(const char *in, char *out, size_t outsz);

#define px_debug(mod, ...) px_log(PX_LOG_DEBUG, mod, __VA_ARGS__)
#define px_info(mod, ...) px_log(PX_LOG_INFO, mod, __VA_ARGS__)
#define px_warn(mod, ...) px_log(PX_LOG_WARN, mod, __VA_ARGS__)
#define px_errorlog(mod, ...) px_log(PX_LOG_ERROR, mod, __VA_ARGS__)

#endif
