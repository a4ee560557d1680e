/*
 * download.c: GET /v1/packages/NAME/VERSION for an authenticated terminal (docs/tms.md,
 * "Downloads"). The file is served from the node's cache directory (materialised once from
 * the store and checked against its SHA-256) with net_http_reply_file: sendfile(2) on plain
 * connections, a single Range for resuming after a cut.
 *
 * Caps are enforced per request: the terminal asks for slices of at most slice_bytes; a
 * terminal counts as downloading while its last slice is younger than download_idle_ms, and
 * no more than max_downloads terminals do at once (503 otherwise); each terminal's slices
 * are paced to download_rate bytes per second (a debt repaid at that rate: 429 with
 * Retry-After until it is). Both answers carry retry_after_ms; the terminal waits and asks
 * again for the same range.
 */
#include "host/tms/tms_int.h"

#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- admission -------------------------------------------------------------------------- */

void tms_limiter_init(tms_limiter *l, int64_t max, int64_t rate, int64_t idle_ms)
{
    memset(l, 0, sizeof *l);
    pthread_mutex_init(&l->lock, NULL);
    l->max = max;
    l->rate = rate;
    l->idle_ms = idle_ms;
}

void tms_limiter_free(tms_limiter *l)
{
    for (size_t b = 0; b < TMS_DL_BUCKETS; b++)
        while (l->buckets[b] != NULL) {
            tms_dl_entry *x = l->buckets[b];
            l->buckets[b] = x->next;
            free(x);
        }
    l->count = 0;
    pthread_mutex_destroy(&l->lock);
}

static size_t bucket_of(const char *serial)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *c = serial; *c; c++)
        h = (h ^ (uint8_t)*c) * 1099511628211ULL;
    return (size_t)(h % TMS_DL_BUCKETS);
}

/* An entry is gone once idle and with its debt repaid (so a terminal cannot shed its debt
 * by pausing a moment). */
static int entry_is_done(const tms_limiter *l, const tms_dl_entry *x, int64_t now)
{
    int64_t repaid = l->rate > 0 ? (now - x->debt_ms) * l->rate / 1000 : x->debt_bytes;
    return now - x->last_ms > l->idle_ms && repaid >= x->debt_bytes;
}

static void sweep_locked(tms_limiter *l, int64_t now)
{
    for (size_t b = 0; b < TMS_DL_BUCKETS; b++) {
        tms_dl_entry **p = &l->buckets[b];
        while (*p != NULL) {
            if (entry_is_done(l, *p, now)) {
                tms_dl_entry *x = *p;
                *p = x->next;
                free(x);
                l->count--;
            } else {
                p = &(*p)->next;
            }
        }
    }
}

void tms_limiter_sweep(tms_limiter *l, int64_t now)
{
    pthread_mutex_lock(&l->lock);
    sweep_locked(l, now);
    pthread_mutex_unlock(&l->lock);
}

size_t tms_limiter_active(tms_limiter *l)
{
    size_t n;
    pthread_mutex_lock(&l->lock);
    n = l->count;
    pthread_mutex_unlock(&l->lock);
    return n;
}

int tms_limiter_admit(tms_limiter *l, const char *serial, int64_t bytes, int64_t now,
                      int64_t *retry_ms)
{
    size_t b = bucket_of(serial);
    tms_dl_entry *x;
    int rc = PX_OK;
    *retry_ms = 0;
    pthread_mutex_lock(&l->lock);
    for (x = l->buckets[b]; x != NULL && strcmp(x->serial, serial) != 0; x = x->next)
        ;
    if (x == NULL && l->count >= (size_t)l->max)
        sweep_locked(l, now);
    if (x == NULL && l->count >= (size_t)l->max) {
        *retry_ms = l->idle_ms > 5000 ? 5000 : l->idle_ms + 1;
        rc = PX_ESTATE;
    } else if (x == NULL && (x = calloc(1, sizeof *x)) == NULL) {
        *retry_ms = 1000;
        rc = PX_ESTATE;
    } else if (x->serial[0] == 0) {
        px_strlcpy(x->serial, serial, sizeof x->serial);
        x->debt_ms = now;
        x->next = l->buckets[b];
        l->buckets[b] = x;
        l->count++;
    }
    if (rc == PX_OK && l->rate > 0) {
        int64_t repaid = (now - x->debt_ms) * l->rate / 1000;
        if (repaid > 0) {
            x->debt_bytes = repaid >= x->debt_bytes ? 0 : x->debt_bytes - repaid;
            x->debt_ms = now;
        }
        if (x->debt_bytes > 0) {
            *retry_ms = (x->debt_bytes * 1000 + l->rate - 1) / l->rate;
            rc = PX_ELIMIT;
        } else {
            x->debt_bytes = bytes;
        }
    }
    if (rc == PX_OK)
        x->last_ms = now;
    pthread_mutex_unlock(&l->lock);
    return rc;
}

/* ---- the request ------------------------------------------------------------------------ */

/* How many bytes a single "bytes=" range asks of size (what net_http_reply_file will send);
 * size when there is none or it is not one net would honour. -1 when unsatisfiable. */
static int64_t range_length(const char *h, int64_t size)
{
    int64_t a = -1, b = -1;
    const char *p;
    char *end;
    if (h == NULL || strncmp(h, "bytes=", 6) != 0 || strchr(h, ',') != NULL)
        return size;
    p = h + 6;
    if (*p == '-') {
        long long n = strtoll(p + 1, &end, 10);
        if (end == p + 1 || *end != 0 || n <= 0)
            return size;
        return n >= size ? size : n;
    }
    a = strtoll(p, &end, 10);
    if (end == p || *end != '-' || a < 0)
        return size;
    p = end + 1;
    if (*p != 0) {
        b = strtoll(p, &end, 10);
        if (*end != 0 || b < a)
            return size;
    }
    if (a >= size)
        return -1;
    if (b < 0 || b >= size)
        b = size - 1;
    return b - a + 1;
}

static void reply_retry(net_http_req *req, int status, const char *code, int64_t retry_ms,
                        const char *msg)
{
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)((retry_ms + 999) / 1000));
    net_http_add_header(req, "Retry-After", v);
    snprintf(v, sizeof v, "%lld", (long long)retry_ms);
    net_http_add_header(req, "Retry-After-Ms", v);
    net_http_reply_error(req, status, code, "%s; retry after %lld ms", msg, (long long)retry_ms);
}

/* The package file in the cache (materialised from the store the first time), open. */
static int open_cached(tms_worker *w, const tms_package *p, int *fd, px_error *e)
{
    char path[PX_PATH_MAX], tmp[PX_PATH_MAX + 32];
    struct stat sb;
    int rc;
    snprintf(path, sizeof path, "%s/%s", w->svc->cfg.cache_dir, p->t.sha256);
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd >= 0 && fstat(*fd, &sb) == 0 && sb.st_size == p->t.length)
        return PX_OK;
    if (*fd >= 0)
        close(*fd);
    snprintf(tmp, sizeof tmp, "%s.tmp%d.%ld", path, w->idx, (long)getpid());
    if ((rc = tms_blob_export(w->st, p->t.sha256, p->t.length, tmp, e)) != PX_OK)
        return rc;
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return px_error_set(e, PX_EIO, "%s: %s", path, strerror(errno));
    }
    px_info(TMS_MOD, "package %s %s cached in %s", p->t.name, p->t.version, path);
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return px_error_set(e, PX_EIO, "%s: %s", path, strerror(errno));
    return PX_OK;
}

static const char *bearer(net_http_req *req)
{
    const char *a = net_http_header(req, "Authorization");
    return a != NULL && strncmp(a, "Bearer ", 7) == 0 ? a + 7 : NULL;
}

void tms_api_download(net_http_req *req, void *user)
{
    tms_worker *w = user;
    tms_svc *s = w->svc;
    char serial[PX_TMS_SERIAL_MAX];
    int64_t now = px_now_ms(), len, retry = 0;
    tms_package p;
    px_error e = {0};
    int fd = -1, rc;
    if (net_http_segment_count(req) != 4) {
        net_http_reply_error(req, 404, "not_found", "no such resource");
        return;
    }
    if ((rc = tms_session_check(w->st, bearer(req), now, serial, &e)) != PX_OK) {
        net_metric_add(s->m.security, 1);
        net_http_add_header(req, "WWW-Authenticate", "Bearer");
        net_http_reply_px_error(req, rc, &e);
        return;
    }
    rc = tms_download_allowed(w->st, serial, net_http_segment(req, 2), net_http_segment(req, 3), &p,
                              &e);
    if (rc != PX_OK) {
        net_metric_add(s->m.dl_refused_perm, 1);
        net_http_reply_px_error(req, rc, &e);
        return;
    }
    len = range_length(net_http_header(req, "Range"), p.t.length);
    if (s->cfg.slice_bytes > 0 && len > s->cfg.slice_bytes) {
        net_http_reply_error(req, 400, "range_required",
                             "ask for at most %lld bytes per request "
                             "(Range: bytes=FIRST-LAST)",
                             (long long)s->cfg.slice_bytes);
        return;
    }
    if (len > 0 && !net_http_is_head(req)) {
        rc = tms_limiter_admit(&s->lim, serial, len, now, &retry);
        if (rc == PX_ESTATE) {
            net_metric_add(s->m.dl_refused_limit, 1);
            reply_retry(req, 503, "too_many_downloads", retry,
                        "too many terminals are downloading");
            return;
        }
        if (rc == PX_ELIMIT) {
            net_metric_add(s->m.dl_refused_rate, 1);
            reply_retry(req, 429, "rate_limited", retry, "over this terminal's download rate");
            return;
        }
    }
    if ((rc = open_cached(w, &p, &fd, &e)) != PX_OK) {
        px_errorlog(TMS_MOD, "package %s %s: %s", p.t.name, p.t.version, px_error_text(&e));
        net_http_reply_px_error(req, rc, &e);
        return;
    }
    net_metric_add(s->m.downloads, 1);
    if (len > 0)
        net_metric_add(s->m.download_bytes, len);
    net_http_reply_file(req, fd, p.t.length, "application/octet-stream");
}
