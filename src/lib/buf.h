/*
 * buf.h: growable byte buffers with a ceiling (after curl's dynbuf).
 * Every append fails with PX_ETOOBIG rather than grow past max; nothing is ever unbounded.
 */
#ifndef PX_BUF_H
#define PX_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct px_buf {
    uint8_t *data; /* NUL-terminated after every append, for text use */
    size_t len;
    size_t cap;
    size_t max; /* the ceiling: len never exceeds it */
} px_buf;

void px_buf_init(px_buf *b, size_t max);
void px_buf_free(px_buf *b);         /* frees and re-initialises (max kept) */
void px_buf_reset(px_buf *b);        /* len = 0, memory kept */
void px_buf_cleanse_free(px_buf *b); /* zeroes then frees: for buffers that held secrets */
int px_buf_reserve(px_buf *b, size_t extra);
int px_buf_append(px_buf *b, const void *p, size_t n);
int px_buf_append_str(px_buf *b, const char *s);
int px_buf_append_byte(px_buf *b, uint8_t c);
int px_buf_printf(px_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *px_buf_str(const px_buf *b); /* "" when empty */

#endif
