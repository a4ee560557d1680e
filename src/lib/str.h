/* str.h: bounded string copies and strict number parsing (no atoi, no strcpy). */
#ifndef PX_STR_H
#define PX_STR_H

#include <stddef.h>
#include <stdint.h>

/* Copy src into dst (size dstsz), always NUL-terminated. PX_ETOOBIG if it was cut. */
int px_strlcpy(char *dst, const char *src, size_t dstsz);

/* Parse a whole decimal string into [min, max]. PX_EFORMAT / PX_ERANGE otherwise. */
int px_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* "true/yes/on/1" and "false/no/off/0". */
int px_parse_bool(const char *s, int *out);

/* 1 if all len bytes are ASCII digits (len > 0). */
int px_is_digits(const char *s, size_t len);

/* Parse "host:port" (host may be "[v6]" or empty for any). host gets at most hostsz-1. */
int px_parse_hostport(const char *s, char *host, size_t hostsz, int *port);

/* Constant-time comparison of two equal-length secrets: 1 if equal. */
int px_ct_equal(const void *a, const void *b, size_t n);

/* Mask a PAN for display: first 6, last 4, the rest '*'. out size >= strlen(pan)+1. */
void px_mask_pan(const char *pan, char *out, size_t outsz);

#endif
