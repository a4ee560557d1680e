/*
 * rate.c: fixed-window rate counters in the store, so every node sharing the database
 * counts together (limits against harvesting names by trying numbers, MISSION §3, and
 * against SMS flooding). A window is [now - now % window, +window); at most twice the limit
 * can pass across one window edge, which the limits are sized for (docs/phonepay.md).
 */
#include "host/phonepay/phonepay_int.h"

static int64_t window_start(int64_t now_ms, int64_t window_ms)
{
    return window_ms > 0 ? now_ms - now_ms % window_ms : 0;
}

int phonepay_rate_hit(store *st, const char *key, int64_t now_ms, int64_t window_ms, int64_t *count,
                      px_error *e)
{
    store_stmt *s;
    int rc = store_prepare(st,
                           "INSERT INTO phonepay_rate (rkey, window_start_ms, hits) "
                           "VALUES ($1, $2, 1) ON CONFLICT (rkey) DO UPDATE SET "
                           "hits = CASE WHEN phonepay_rate.window_start_ms = "
                           "excluded.window_start_ms THEN phonepay_rate.hits + 1 ELSE 1 END, "
                           "window_start_ms = excluded.window_start_ms RETURNING hits",
                           &s, e);
    *count = 0;
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, key);
    store_bind_int64(s, 2, window_start(now_ms, window_ms));
    rc = store_step(s, e);
    if (rc == STORE_ROW)
        *count = store_col_int64(s, 0);
    store_done(s);
    if (rc == STORE_DONE)
        return px_error_set(e, PX_EINTERNAL, "rate: upsert returned no row");
    return rc < 0 ? rc : PX_OK;
}

int phonepay_rate_peek(store *st, const char *key, int64_t now_ms, int64_t window_ms,
                       int64_t *count, px_error *e)
{
    store_stmt *s;
    int rc = store_prepare(st,
                           "SELECT hits FROM phonepay_rate WHERE rkey = $1 AND "
                           "window_start_ms = $2",
                           &s, e);
    *count = 0;
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, key);
    store_bind_int64(s, 2, window_start(now_ms, window_ms));
    rc = store_step(s, e);
    if (rc == STORE_ROW)
        *count = store_col_int64(s, 0);
    store_done(s);
    return rc < 0 ? rc : PX_OK;
}
