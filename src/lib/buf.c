#include "lib/buf.h"
#include "lib/err.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void px_buf_init(px_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void px_buf_free(px_buf *b)
{
    free(b->data);
    px_buf_init(b, b->max);
}

void px_buf_cleanse_free(px_buf *b)
{
    if (b->data != NULL)
        OPENSSL_cleanse(b->data, b->cap);
    px_buf_free(b);
}

void px_buf_reset(px_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = 0;
}

int px_buf_reserve(px_buf *b, size_t extra)
{
    size_t need, cap;
    uint8_t *p;
    if (extra > b->max || b->len > b->max - extra)
        return PX_ETOOBIG;
    need = b->len + extra + 1; /* room for the NUL */
    if (need <= b->cap)
        return PX_OK;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    p = realloc(b->data, cap);
    if (p == NULL)
        return PX_ENOMEM;
    b->data = p;
    b->cap = cap;
    return PX_OK;
}

int px_buf_append(px_buf *b, const void *p, size_t n)
{
    int rc = px_buf_reserve(b, n);
    if (rc != PX_OK)
        return rc;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return PX_OK;
}

int px_buf_append_str(px_buf *b, const char *s)
{
    return px_buf_append(b, s, strlen(s));
}

int px_buf_append_byte(px_buf *b, uint8_t c)
{
    return px_buf_append(b, &c, 1);
}

int px_buf_printf(px_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n, rc;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return PX_EINVAL;
    rc = px_buf_reserve(b, (size_t)n);
    if (rc != PX_OK)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return PX_OK;
}

const char *px_buf_str(const px_buf *b)
{
    return b->data ? (const char *)b->data : "";
}
