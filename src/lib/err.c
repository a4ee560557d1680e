#include "lib/err.h"
#include "lib/log.h"

#include <stdio.h>
#include <string.h>

static const char *const px_err_text[PX_ERR_COUNT_] = {
    "ok",
    "out of memory",
    "invalid argument",
    "value out of range",
    "larger than the limit",
    "format error",
    "I/O error",
    "not found",
    "already exists",
    "cryptographic failure",
    "not permitted",
    "timed out",
    "conflicts with stored data",
    "database error",
    "network error",
    "not allowed in this state",
    "authentication failed",
    "configuration error",
    "limit reached",
    "not supported",
    "internal error",
};

const char *px_strerror(int code)
{
    if (code > 0 || code <= -PX_ERR_COUNT_)
        return "unknown error";
    return px_err_text[-code];
}

int px_error_vset(px_error *e, int code, const char *fmt, va_list ap)
{
    if (e == NULL)
        return code;
    e->code = code;
    if (fmt == NULL) {
        snprintf(e->msg, sizeof e->msg, "%s", px_strerror(code));
        return code;
    }
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    return code;
}

int px_error_set(px_error *e, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    px_error_vset(e, code, fmt, ap);
    va_end(ap);
    return code;
}

int px_error_prefix(px_error *e, const char *fmt, ...)
{
    char prefix[PX_ERRMSG_MAX], old[PX_ERRMSG_MAX];
    va_list ap;
    if (e == NULL)
        return PX_EINVAL;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    snprintf(e->msg, sizeof e->msg, "%s%s", prefix, old[0] ? old : px_strerror(e->code));
    return e->code;
}

const char *px_error_text(const px_error *e)
{
    if (e == NULL)
        return "unknown error";
    return e->msg[0] ? e->msg : px_strerror(e->code);
}

void px_bug_report(const char *cond, const char *file, int line)
{
    px_log(PX_LOG_ERROR, "bug", "invariant failed: %s at %s:%d", cond, file, line);
}
