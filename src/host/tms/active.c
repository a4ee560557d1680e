/*
 * active.c: the terminals a running campaign may have something for, kept by each node as a
 * sorted array of 64-bit hashes of their serials (docs/tms.md, "Performance"). A check-in of
 * any other terminal (nearly all of them, nearly always) then needs no campaign query. A hash
 * that collides only costs that query; the set is rebuilt by the tick when the running
 * campaigns or their waves change (on any node: the stamp is read from the store), so a
 * released terminal is found within one tick.
 */
#include "host/tms/tms_int.h"

#include "lib/str.h"

#include <stdlib.h>
#include <string.h>

uint64_t tms_serial_hash(const char *serial)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *c = serial; *c; c++)
        h = (h ^ (uint8_t)*c) * 1099511628211ULL;
    return h;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int tms_active_stamp(store *st, char out[128], px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st,
                           "SELECT COUNT(*), COALESCE(SUM(current_wave), 0), "
                           "COALESCE(MAX(wave_opened_ms), 0), COALESCE(MAX(updated_ms), 0) "
                           "FROM tms_campaign WHERE state = 'running'",
                           &q, e);
    if (rc != PX_OK)
        return rc;
    rc = store_step(q, e);
    if (rc == STORE_ROW)
        snprintf(out, 128, "%lld/%lld/%lld/%lld", (long long)store_col_int64(q, 0),
                 (long long)store_col_int64(q, 1), (long long)store_col_int64(q, 2),
                 (long long)store_col_int64(q, 3));
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

int tms_active_build(store *st, tms_active **out, px_error *e)
{
    tms_active *a = calloc(1, sizeof *a);
    store_stmt *q;
    size_t cap = 1024;
    int rc;
    *out = NULL;
    if (a == NULL || (a->h = malloc(cap * sizeof *a->h)) == NULL) {
        free(a);
        return px_error_set(e, PX_ENOMEM, "out of memory");
    }
    rc = store_prepare(st,
                       "SELECT t.serial FROM tms_target t JOIN tms_campaign c ON c.name = "
                       "t.campaign WHERE c.state = 'running' AND t.state IN ('pending', "
                       "'offered', 'downloaded', 'deferred')",
                       &q, e);
    if (rc != PX_OK) {
        tms_active_free(a);
        return rc;
    }
    while ((rc = store_step(q, e)) == STORE_ROW) {
        if (a->n == cap) {
            uint64_t *nh = realloc(a->h, 2 * cap * sizeof *nh);
            if (nh == NULL) {
                rc = px_error_set(e, PX_ENOMEM, "out of memory");
                break;
            }
            a->h = nh;
            cap *= 2;
        }
        a->h[a->n++] = tms_serial_hash(store_col_text(q, 0));
    }
    store_done(q);
    if (rc < 0) {
        tms_active_free(a);
        return rc;
    }
    qsort(a->h, a->n, sizeof *a->h, cmp_u64);
    *out = a;
    return PX_OK;
}

int tms_active_has(const tms_active *a, uint64_t h)
{
    size_t lo = 0, hi = a->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a->h[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < a->n && a->h[lo] == h;
}

void tms_active_free(tms_active *a)
{
    if (a != NULL) {
        free(a->h);
        free(a);
    }
}
