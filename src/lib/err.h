/*
 * err.h: possum's error codes and an error record that carries a human message.
 * Functions return 0 (PX_OK) or a negative px_err; detail goes into an optional px_error.
 */
#ifndef PX_ERR_H
#define PX_ERR_H

#include <stdarg.h>
#include "lib/limits.h"

typedef enum px_err {
    PX_OK = 0,
    PX_ENOMEM = -1,        /* out of memory */
    PX_EINVAL = -2,        /* invalid argument or input */
    PX_ERANGE = -3,        /* value out of range */
    PX_ETOOBIG = -4,       /* larger than a configured limit */
    PX_EFORMAT = -5,       /* input does not parse */
    PX_EIO = -6,           /* system I/O failed */
    PX_ENOTFOUND = -7,     /* no such thing */
    PX_EEXIST = -8,        /* already exists */
    PX_ECRYPTO = -9,       /* cryptographic operation failed */
    PX_EPERM = -10,        /* not permitted (key usage, certificate, policy) */
    PX_ETIMEOUT = -11,     /* timed out */
    PX_ECONFLICT = -12,    /* conflicts with what is stored (duplicate with other content) */
    PX_ESTORE = -13,       /* database error */
    PX_ENET = -14,         /* network error */
    PX_ESTATE = -15,       /* not allowed in the current state */
    PX_EAUTH = -16,        /* authentication failed (MAC, signature, cryptogram) */
    PX_ECONFIG = -17,      /* configuration error */
    PX_ELIMIT = -18,       /* rate or count limit reached */
    PX_EUNSUPPORTED = -19, /* not supported */
    PX_EINTERNAL = -20,    /* a bug: an invariant did not hold */
    PX_ERR_COUNT_ = 21
} px_err;

/* An error with its message. Zero-initialise; pass NULL where detail is not wanted. */
typedef struct px_error {
    int code;
    char msg[PX_ERRMSG_MAX];
} px_error;

/* Short, fixed text for a code ("out of memory"). Never NULL. */
const char *px_strerror(int code);

/* Record code and a printf-style message in e (if non-NULL); returns code, so callers can
 * `return px_error_set(e, PX_EINVAL, "field %d: too long", n);`. */
int px_error_set(px_error *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int px_error_vset(px_error *e, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Prefix an existing message: "config: " + "line 3: bad key". Returns e->code. */
int px_error_prefix(px_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The message if one was set, else px_strerror(code). */
const char *px_error_text(const px_error *e);

/* Tor-style recoverable impossibility: logs the failed condition once and yields true. */
#define PX_BUG(cond) ((cond) ? (px_bug_report(#cond, __FILE__, __LINE__), 1) : 0)
void px_bug_report(const char *cond, const char *file, int line);

#endif
