/*
 * regcache.c: a node's copy of what a check-in needs from the registry (serial -> model and
 * schedule), so a check-in costs no store read (docs/tms.md, "Performance"). Loaded at start,
 * refreshed by the tick with the rows changed since (tms_terminal.updated_ms, on any node,
 * with a margin for clocks), filled on a miss. Models and schedules are interned (a fleet has
 * few of each). Past max_entries nothing more is kept: those terminals are read from the
 * store as before.
 */
#include "host/tms/tms_int.h"

#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <stdlib.h>
#include <string.h>

#define REFRESH_MARGIN_MS 5000
#define REFRESH_MARGIN_EVERY_MS 30000
#define NAMES_MAX 4096

struct tms_regcache {
    pthread_rwlock_t lock;
    char (*names)[PX_TMS_NAME_MAX];
    size_t nnames;
    struct rc_entry {
        char serial[PX_TMS_SERIAL_MAX];
        uint16_t model, sched;
    } * v;
    size_t n, max;
    uint32_t *slots; /* index + 1 into v, 0 = empty; nslots a power of two >= 2 max */
    size_t nslots;
    int64_t since_ms; /* the last row read: (since_ms, since_serial) */
    char since_serial[PX_TMS_SERIAL_MAX];
    int64_t margin_at; /* when the margin was last read again (mono ms) */
};

/* Intern a model or schedule; NAMES_MAX when the table is full (caller writes lock held). */
static uint16_t intern(tms_regcache *c, const char *s)
{
    for (size_t i = 0; i < c->nnames; i++)
        if (strcmp(c->names[i], s) == 0)
            return (uint16_t)i;
    if (c->nnames == NAMES_MAX || px_strlcpy(c->names[c->nnames], s, PX_TMS_NAME_MAX) != PX_OK)
        return NAMES_MAX;
    return (uint16_t)c->nnames++;
}

static size_t find_slot(const tms_regcache *c, const char *serial)
{
    size_t i = (size_t)tms_serial_hash(serial) & (c->nslots - 1);
    while (c->slots[i] != 0 && strcmp(c->v[c->slots[i] - 1].serial, serial) != 0)
        i = (i + 1) & (c->nslots - 1);
    return i;
}

/* Insert or update (write lock held). */
static void put(tms_regcache *c, const char *serial, const char *model, const char *schedule)
{
    size_t i = find_slot(c, serial);
    uint16_t m = intern(c, model), s = intern(c, schedule);
    struct rc_entry *x;
    if (m == NAMES_MAX || s == NAMES_MAX || strlen(serial) >= PX_TMS_SERIAL_MAX)
        return;
    if (c->slots[i] == 0) {
        if (c->n == c->max)
            return;
        c->slots[i] = (uint32_t)++c->n;
        px_strlcpy(c->v[c->n - 1].serial, serial, PX_TMS_SERIAL_MAX);
    }
    x = &c->v[c->slots[i] - 1];
    x->model = m;
    x->sched = s;
}

int tms_regcache_new(size_t max_entries, tms_regcache **out, px_error *e)
{
    tms_regcache *c = calloc(1, sizeof *c);
    *out = NULL;
    if (c == NULL)
        return px_error_set(e, PX_ENOMEM, "out of memory");
    c->max = max_entries;
    for (c->nslots = 16; c->nslots < 2 * max_entries; c->nslots *= 2)
        ;
    c->names = calloc(NAMES_MAX, sizeof *c->names);
    c->v = calloc(max_entries > 0 ? max_entries : 1, sizeof *c->v);
    c->slots = calloc(c->nslots, sizeof *c->slots);
    if (c->names == NULL || c->v == NULL || c->slots == NULL) {
        tms_regcache_free(c);
        return px_error_set(e, PX_ENOMEM, "tms: registry copy of %zu terminals: out of memory",
                            max_entries);
    }
    pthread_rwlock_init(&c->lock, NULL);
    c->since_ms = -1;
    c->margin_at = px_mono_ms();
    *out = c;
    return PX_OK;
}

void tms_regcache_free(tms_regcache *c)
{
    if (c == NULL)
        return;
    if (c->slots != NULL && c->v != NULL && c->names != NULL)
        pthread_rwlock_destroy(&c->lock);
    free(c->names);
    free(c->v);
    free(c->slots);
    free(c);
}

int tms_regcache_get(tms_regcache *c, const char *serial, char model[PX_TMS_NAME_MAX],
                     char schedule[64])
{
    int found = 0;
    pthread_rwlock_rdlock(&c->lock);
    {
        size_t i = find_slot(c, serial);
        if (c->slots[i] != 0) {
            const struct rc_entry *x = &c->v[c->slots[i] - 1];
            px_strlcpy(model, c->names[x->model], PX_TMS_NAME_MAX);
            px_strlcpy(schedule, c->names[x->sched], 64);
            found = 1;
        }
    }
    pthread_rwlock_unlock(&c->lock);
    return found;
}

void tms_regcache_put(tms_regcache *c, const char *serial, const char *model, const char *schedule)
{
    pthread_rwlock_wrlock(&c->lock);
    put(c, serial, model, schedule);
    pthread_rwlock_unlock(&c->lock);
}

int tms_regcache_refresh(tms_regcache *c, store *st, px_error *e)
{
    typedef struct {
        char serial[PX_TMS_SERIAL_MAX], model[PX_TMS_NAME_MAX], sched[64];
    } row;
    row *rows = malloc(PX_TMS_PAGE_ROWS * sizeof *rows);
    int64_t from = c->since_ms, now = px_mono_ms();
    char after[PX_TMS_SERIAL_MAX];
    store_stmt *q;
    size_t n;
    int rc = PX_OK;
    if (rows == NULL)
        return px_error_set(e, PX_ENOMEM, "out of memory");
    px_strlcpy(after, c->since_serial, sizeof after);
    if (c->since_ms >= 0 && now - c->margin_at >= REFRESH_MARGIN_EVERY_MS) {
        from = c->since_ms - REFRESH_MARGIN_MS;
        after[0] = 0;
        c->margin_at = now;
    }
    do { /* keyset pages on (updated_ms, serial): the write lock is held a page at a time */
        n = 0;
        if ((rc = store_prepare(st,
                                "SELECT serial, model, schedule, updated_ms FROM tms_terminal "
                                "WHERE (updated_ms, serial) > ($1, $2) "
                                "ORDER BY updated_ms, serial LIMIT 1000",
                                &q, e)) != PX_OK)
            break;
        store_bind_int64(q, 1, from);
        store_bind_text(q, 2, after);
        while ((rc = store_step(q, e)) == STORE_ROW && n < PX_TMS_PAGE_ROWS) {
            px_strlcpy(rows[n].serial, store_col_text(q, 0), PX_TMS_SERIAL_MAX);
            px_strlcpy(rows[n].model, store_col_text(q, 1), PX_TMS_NAME_MAX);
            px_strlcpy(rows[n].sched, store_col_text(q, 2), 64);
            from = store_col_int64(q, 3);
            n++;
        }
        store_done(q);
        if (rc < 0)
            break;
        rc = PX_OK;
        if (n > 0)
            px_strlcpy(after, rows[n - 1].serial, sizeof after);
        pthread_rwlock_wrlock(&c->lock);
        for (size_t i = 0; i < n; i++)
            put(c, rows[i].serial, rows[i].model, rows[i].sched);
        pthread_rwlock_unlock(&c->lock);
    } while (n == PX_TMS_PAGE_ROWS);
    free(rows);
    /* continue after the last row read (a margin pass may end before the mark: keep it) */
    if (rc == PX_OK &&
        (from > c->since_ms || (from == c->since_ms && strcmp(after, c->since_serial) > 0))) {
        c->since_ms = from;
        px_strlcpy(c->since_serial, after, sizeof c->since_serial);
    }
    return rc;
}

size_t tms_regcache_count(tms_regcache *c)
{
    size_t n;
    pthread_rwlock_rdlock(&c->lock);
    n = c->n;
    pthread_rwlock_unlock(&c->lock);
    return n;
}
