/*
 * sw_term.c: the terminal cache. Each terminal's registry row and session (batch, keys,
 * update flag) is read from the store once and kept, with its work keys loaded in the HSM,
 * for [switch] cache_ttl_ms; after that the next request re-reads it, so what another node
 * (a sign-on there) or the TMS (the update flag) wrote is seen within that time. A MAC that
 * does not verify or a batch that does not match forces a re-read first.
 */
#include "host/switch/sw_int.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <stdlib.h>
#include <string.h>

static size_t hash_tid(const char *tid, size_t nbuckets)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = tid; *p; p++) {
        h ^= (uint8_t)*p;
        h *= 1099511628211ULL;
    }
    return (size_t)(h % nbuckets);
}

int sw_cache_init(sw_cache *c, size_t max, px_error *e)
{
    memset(c, 0, sizeof *c);
    c->max = max;
    c->nbuckets = max < 1024 ? 1024 : max;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    if (c->buckets == NULL)
        return px_error_set(e, PX_ENOMEM, "switch: out of memory for the terminal cache");
    return PX_OK;
}

static void age_unlink(sw_cache *c, sw_term *t)
{
    if (t->lprev)
        t->lprev->lnext = t->lnext;
    else
        c->oldest = t->lnext;
    if (t->lnext)
        t->lnext->lprev = t->lprev;
    else
        c->newest = t->lprev;
    t->lprev = t->lnext = NULL;
}

static void age_append(sw_cache *c, sw_term *t)
{
    t->lprev = c->newest;
    t->lnext = NULL;
    if (c->newest)
        c->newest->lnext = t;
    else
        c->oldest = t;
    c->newest = t;
}

static void free_term(hsm *h, sw_term *t)
{
    hsm_key_free(h, t->pik);
    hsm_key_free(h, t->mak);
    free(t);
}

static void cache_remove(switch_svc *s, sw_term *t)
{
    sw_cache *c = &s->cache;
    sw_term **pp = &c->buckets[hash_tid(t->tid, c->nbuckets)];
    while (*pp && *pp != t)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = t->hnext;
    age_unlink(c, t);
    c->count--;
    free_term(s->hsm, t);
}

void sw_cache_free(sw_cache *c, hsm *h)
{
    if (c->buckets == NULL)
        return;
    for (size_t i = 0; i < c->nbuckets; i++) {
        sw_term *t = c->buckets[i];
        while (t) {
            sw_term *next = t->hnext;
            free_term(h, t);
            t = next;
        }
    }
    free(c->buckets);
    memset(c, 0, sizeof *c);
}

void sw_term_drop_keys(switch_svc *s, sw_term *t)
{
    hsm_key_free(s->hsm, t->pik);
    hsm_key_free(s->hsm, t->mak);
    t->pik = t->mak = NULL;
}

static sw_term *cache_find(sw_cache *c, const char *tid)
{
    for (sw_term *t = c->buckets[hash_tid(tid, c->nbuckets)]; t; t = t->hnext)
        if (strcmp(t->tid, tid) == 0)
            return t;
    return NULL;
}

/* Load the work keys named in the row into t (the HSM checks each block). */
static void load_keys(switch_svc *s, sw_term *t, const char *pik, const char *mak)
{
    px_error e = {0};
    sw_term_drop_keys(s, t);
    if (s->hsm == NULL || pik == NULL || mak == NULL || !pik[0] || !mak[0])
        return;
    if (hsm_key_load(s->hsm, pik, &t->pik, &e) != PX_OK ||
        hsm_key_load(s->hsm, mak, &t->mak, &e) != PX_OK) {
        px_errorlog("switch", "terminal %s: cannot load its work keys: %s", t->tid,
                    px_error_text(&e));
        sw_term_drop_keys(s, t);
    }
}

static const char sql_term[] =
    "SELECT mid, status, update_waiting, signed_on, batch_no, batch_date, batch_open, "
    "key_version, pik_block, mak_block FROM switch_terminal WHERE tid = $1";

int sw_term_get(switch_svc *s, const char *tid, int force, sw_term **out, px_error *e)
{
    sw_cache *c = &s->cache;
    sw_term *t = cache_find(c, tid);
    int64_t now = px_mono_ms();
    store_stmt *st = NULL;
    int rc;
    *out = NULL;
    if (t != NULL && !force && now - t->loaded_mono_ms < s->cfg.cache_ttl_ms) {
        *out = t;
        return PX_OK;
    }
    if (t != NULL && t->busy) { /* a sign-on is being written: its result will replace it */
        *out = t;
        return PX_OK;
    }
    rc = store_prepare(s->d->st, sql_term, &st, e);
    if (rc == PX_OK) {
        store_bind_text(st, 1, tid);
        rc = store_step(st, e);
    }
    if (rc == STORE_DONE) {
        store_done(st);
        if (t != NULL)
            cache_remove(s, t);
        return PX_ENOTFOUND;
    }
    if (rc != STORE_ROW) {
        store_done(st);
        return rc < 0 ? rc : PX_ESTORE;
    }
    if (t == NULL) {
        if (c->count >= c->max && c->oldest != NULL && !c->oldest->busy)
            cache_remove(s, c->oldest);
        t = calloc(1, sizeof *t);
        if (t == NULL) {
            store_done(st);
            return px_error_set(e, PX_ENOMEM, "out of memory");
        }
        px_strlcpy(t->tid, tid, sizeof t->tid);
        size_t b = hash_tid(tid, c->nbuckets);
        t->hnext = c->buckets[b];
        c->buckets[b] = t;
        c->count++;
        t->key_version = -1;
    } else {
        age_unlink(c, t);
    }
    age_append(c, t);
    px_strlcpy(t->mid, store_col_text(st, 0) ? store_col_text(st, 0) : "", sizeof t->mid);
    t->active = store_col_text(st, 1) && strcmp(store_col_text(st, 1), "active") == 0;
    t->update_waiting = store_col_int64(st, 2) != 0;
    t->signed_on = store_col_int64(st, 3) != 0;
    t->batch = store_col_int64(st, 4);
    px_strlcpy(t->batch_date, store_col_text(st, 5) ? store_col_text(st, 5) : "",
               sizeof t->batch_date);
    t->batch_open = store_col_int64(st, 6) != 0;
    int64_t kv = store_col_int64(st, 7);
    if (!t->signed_on)
        sw_term_drop_keys(s, t);
    else if (kv != t->key_version || t->mak == NULL)
        load_keys(s, t, store_col_text(st, 8), store_col_text(st, 9));
    t->key_version = kv;
    t->loaded_mono_ms = now;
    store_done(st);
    *out = t;
    return PX_OK;
}
