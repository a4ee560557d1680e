/*
 * sw_writer.c: group commit. The event loop never writes to the store: it queues jobs here.
 * Each writer thread (its own store connection) takes every job queued while its previous
 * commit was in flight (up to group_commit_max), runs them all in one transaction, applies
 * the group's balance changes once per account (in account order, so two writers or two
 * nodes never deadlock on them), commits, and only then hands the jobs back to the loop,
 * which answers the terminals. One fsync (SQLite) or one WAL flush (PostgreSQL) covers the
 * whole group: durability is unchanged, the cost is shared.
 *
 * A job that fails makes its group roll back; the group is then run again one job per
 * transaction, so only the failing job is answered 96 and nothing is half-posted. Lock
 * timeouts and serialization failures are retried.
 */
#include "host/switch/sw_int.h"
#include "host/switch/ledger.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <pthread.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#define SW_RETRIES 5

typedef struct sw_delta {
    char account[SWITCH_ACCOUNT_MAX];
    char kind[12];
    int64_t delta;
} sw_delta;

/* A set of account ids known to exist (per thread; grown by commits). */
typedef struct sw_known {
    char (*ids)[SWITCH_ACCOUNT_MAX];
    size_t n, cap;
} sw_known;

struct sw_group {
    sw_entry_buf *entries;
    int64_t now_ms;
    const char *node;
    sw_delta *deltas;
    size_t ndeltas, capdeltas;
    sw_known *known;
    char (*created)[SWITCH_ACCOUNT_MAX];
    size_t ncreated, capcreated;
};

typedef struct sw_wthread {
    pthread_t th;
    int started;
    store *st;
    struct sw_writer *w;
    sw_known known;
} sw_wthread;

struct sw_writer {
    switch_svc *s;
    struct event_base *base;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sw_job *head, *tail;
    size_t queued;
    int stopping;
    size_t max_group;
    int nthreads;
    sw_wthread th[PX_SWITCH_WRITERS_MAX];
    pthread_mutex_t dmu;
    sw_job *dhead, *dtail;
    int posted;
    /* SQLite: the checkpointer, so that no commit waits for one */
    pthread_t ck_th;
    int ck_started;
    store *ck_st;
    pthread_cond_t ck_cv; /* its own: a submit's signal must wake a writer */
};

#define SW_CHECKPOINT_EVERY_MS 100

/* SQLite: copy the WAL into the database every SW_CHECKPOINT_EVERY_MS from a connection of
 * its own (PASSIVE: writers go on meanwhile). The writers' own automatic checkpoints stay
 * as a backstop at 256 MB of WAL. */
static void *checkpointer_main(void *arg)
{
    sw_writer *w = arg;
    for (;;) {
        struct timespec until;
        int stop;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += SW_CHECKPOINT_EVERY_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&w->mu);
        if (!w->stopping)
            pthread_cond_timedwait(&w->ck_cv, &w->mu, &until);
        stop = w->stopping;
        pthread_mutex_unlock(&w->mu);
        if (stop)
            break;
        (void)store_exec(w->ck_st, "PRAGMA wal_checkpoint(PASSIVE)", NULL);
    }
    return NULL;
}

sw_job *sw_job_new(int kind, sw_job_done_fn done)
{
    sw_job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return NULL;
    j->kind = kind;
    j->done = done;
    return j;
}

void sw_job_free(sw_job *j)
{
    if (j == NULL)
        return;
    free(j->prov_blob);
    free(j->rsp);
    free(j->treq);
    if (j->preq != NULL) {
        crypto_cleanse(j->preq, j->preqlen);
        free(j->preq);
    }
    free(j->out.rsp);
    crypto_cleanse(j->f62, sizeof j->f62);
    crypto_cleanse(j->tmk, sizeof j->tmk);
    free(j);
}

/* ---- the group's aggregation ---- */

static int known_has(const sw_known *k, const char *id)
{
    for (size_t i = 0; i < k->n; i++) /* few accounts: merchants of one node's terminals */
        if (strcmp(k->ids[i], id) == 0)
            return 1;
    return 0;
}

static int known_add(sw_known *k, const char *id)
{
    if (known_has(k, id))
        return PX_OK;
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 64;
        void *p = realloc(k->ids, cap * sizeof *k->ids);
        if (p == NULL)
            return PX_ENOMEM;
        k->ids = p;
        k->cap = cap;
    }
    px_strlcpy(k->ids[k->n++], id, SWITCH_ACCOUNT_MAX);
    return PX_OK;
}

sw_entry_buf *sw_group_entries(sw_group *g)
{
    return g->entries;
}

void sw_group_set_entries(sw_group *g, sw_entry_buf *eb)
{
    g->entries = eb;
}

int64_t sw_group_now_ms(const sw_group *g)
{
    return g->now_ms;
}

const char *sw_group_node(const sw_group *g)
{
    return g->node;
}

int sw_group_add_delta(sw_group *g, const char *account, const char *kind, int64_t delta)
{
    for (size_t i = 0; i < g->ndeltas; i++)
        if (strcmp(g->deltas[i].account, account) == 0) {
            g->deltas[i].delta += delta;
            return PX_OK;
        }
    if (g->ndeltas == g->capdeltas) {
        size_t cap = g->capdeltas ? g->capdeltas * 2 : 16;
        void *p = realloc(g->deltas, cap * sizeof *g->deltas);
        if (p == NULL)
            return PX_ENOMEM;
        g->deltas = p;
        g->capdeltas = cap;
    }
    sw_delta *d = &g->deltas[g->ndeltas++];
    px_strlcpy(d->account, account, sizeof d->account);
    px_strlcpy(d->kind, kind, sizeof d->kind);
    d->delta = delta;
    return PX_OK;
}

/* Make sure the account row exists before an entry refers to it. */
int sw_group_ensure_account(store *st, sw_group *g, const char *account, const char *kind,
                            px_error *e)
{
    store_stmt *q;
    int rc;
    if (known_has(g->known, account))
        return PX_OK;
    for (size_t i = 0; i < g->ncreated; i++)
        if (strcmp(g->created[i], account) == 0)
            return PX_OK;
    rc = store_prepare(st,
                       "INSERT INTO ledger_account (id, kind, balance, currency, created_ms, "
                       "updated_ms) VALUES ($1, $2, 0, '156', $3, $3) ON CONFLICT DO NOTHING",
                       &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, account);
    store_bind_text(q, 2, kind);
    store_bind_int64(q, 3, g->now_ms);
    rc = store_step(q, e);
    store_done(q);
    if (rc < 0)
        return rc;
    if (g->ncreated == g->capcreated) {
        size_t cap = g->capcreated ? g->capcreated * 2 : 8;
        void *p = realloc(g->created, cap * sizeof *g->created);
        if (p == NULL)
            return px_error_set(e, PX_ENOMEM, "out of memory");
        g->created = p;
        g->capcreated = cap;
    }
    px_strlcpy(g->created[g->ncreated++], account, SWITCH_ACCOUNT_MAX);
    return PX_OK;
}

static int cmp_delta(const void *a, const void *b)
{
    return strcmp(((const sw_delta *)a)->account, ((const sw_delta *)b)->account);
}

/* PostgreSQL: every account of the group in one UPDATE (accounts in id order, so the rows
 * are locked in the same order by every writer; a deadlock would be retried anyway). */
static int apply_deltas_pg(store *st, sw_group *g, px_error *e)
{
    px_buf ids, ds;
    store_stmt *q;
    size_t n = 0;
    int rc;
    px_buf_init(&ids, PX_STORE_VALUE_MAX);
    px_buf_init(&ds, PX_STORE_VALUE_MAX);
    (void)px_buf_append_byte(&ids, '{');
    (void)px_buf_append_byte(&ds, '{');
    for (size_t i = 0; i < g->ndeltas; i++) {
        if (g->deltas[i].delta == 0)
            continue;
        /* account ids are "provider:settlement", "merchant:MID" (MID letters and digits) */
        (void)px_buf_printf(&ids, "%s\"%s\"", n ? "," : "", g->deltas[i].account);
        (void)px_buf_printf(&ds, "%s%lld", n ? "," : "", (long long)g->deltas[i].delta);
        n++;
    }
    (void)px_buf_append_byte(&ids, '}');
    (void)px_buf_append_byte(&ds, '}');
    rc = n == 0 ? PX_OK
                : store_prepare(st,
                                "UPDATE ledger_account AS a SET balance = a.balance + u.d, "
                                "updated_ms = CAST($3 AS BIGINT) FROM unnest($1::text[], "
                                "$2::bigint[]) AS u(id, d) WHERE a.id = u.id",
                                &q, e);
    if (n > 0 && rc == PX_OK) {
        store_bind_text(q, 1, px_buf_str(&ids));
        store_bind_text(q, 2, px_buf_str(&ds));
        store_bind_int64(q, 3, g->now_ms);
        rc = store_step(q, e);
        if (rc >= 0 && store_changes(q) != (int64_t)n)
            rc = px_error_set(e, PX_EINTERNAL, "ledger: %zu accounts to update, %lld found", n,
                              (long long)store_changes(q));
        store_done(q);
    }
    px_buf_free(&ids);
    px_buf_free(&ds);
    return rc < 0 ? rc : PX_OK;
}

/* SQLite: up to 15 accounts per UPDATE (two parameters each, within PX_STORE_PARAMS_MAX):
 * balance + CASE id WHEN $1 THEN $2 ... END WHERE id IN ($1, $3, ...). */
#define SW_DELTAS_PER_STMT 15

static const char *deltas_sql(size_t n)
{
    static char sql[SW_DELTAS_PER_STMT + 1][1024]; /* loop-invariant text, built once */
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&mu);
    if (sql[n][0] == 0) {
        px_buf b;
        px_buf_init(&b, sizeof sql[n]);
        (void)px_buf_append_str(&b, "UPDATE ledger_account SET balance = balance + CASE id");
        for (size_t i = 0; i < n; i++)
            (void)px_buf_printf(&b, " WHEN $%zu THEN CAST($%zu AS BIGINT)", 2 * i + 1, 2 * i + 2);
        (void)px_buf_printf(&b, " END, updated_ms = CAST($%zu AS BIGINT) WHERE id IN (", 2 * n + 1);
        for (size_t i = 0; i < n; i++)
            (void)px_buf_printf(&b, "%s$%zu", i ? ", " : "", 2 * i + 1);
        (void)px_buf_append_str(&b, ")");
        px_strlcpy(sql[n], px_buf_str(&b), sizeof sql[n]);
        px_buf_free(&b);
    }
    pthread_mutex_unlock(&mu);
    return sql[n];
}

static int apply_deltas_sqlite(store *st, sw_group *g, px_error *e)
{
    size_t i = 0;
    while (i < g->ndeltas) {
        const sw_delta *d[SW_DELTAS_PER_STMT];
        size_t n = 0;
        store_stmt *q;
        int rc;
        for (; i < g->ndeltas && n < SW_DELTAS_PER_STMT; i++)
            if (g->deltas[i].delta != 0)
                d[n++] = &g->deltas[i];
        if (n == 0)
            break;
        rc = store_prepare(st, deltas_sql(n), &q, e);
        if (rc != PX_OK)
            return rc;
        for (size_t k = 0; k < n; k++) {
            store_bind_text(q, (int)(2 * k + 1), d[k]->account);
            store_bind_int64(q, (int)(2 * k + 2), d[k]->delta);
        }
        store_bind_int64(q, (int)(2 * n + 1), g->now_ms);
        rc = store_step(q, e);
        if (rc >= 0 && store_changes(q) != (int64_t)n)
            rc = px_error_set(e, PX_EINTERNAL, "ledger: %zu accounts to update, %lld found", n,
                              (long long)store_changes(q));
        store_done(q);
        if (rc < 0)
            return rc;
    }
    return PX_OK;
}

/* One UPDATE per account the group touched, in account order. */
static int apply_deltas(store *st, sw_group *g, px_error *e)
{
    if (g->ndeltas > 1)
        qsort(g->deltas, g->ndeltas, sizeof *g->deltas, cmp_delta);
    if (g->ndeltas > 1 && store_get_backend(st) == STORE_POSTGRES)
        return apply_deltas_pg(st, g, e);
    if (g->ndeltas > 1)
        return apply_deltas_sqlite(st, g, e);
    for (size_t i = 0; i < g->ndeltas; i++) {
        store_stmt *q;
        int rc;
        if (g->deltas[i].delta == 0)
            continue;
        rc = store_prepare(st,
                           "UPDATE ledger_account SET balance = balance + $1, updated_ms = $2 "
                           "WHERE id = $3",
                           &q, e);
        if (rc != PX_OK)
            return rc;
        store_bind_int64(q, 1, g->deltas[i].delta);
        store_bind_int64(q, 2, g->now_ms);
        store_bind_text(q, 3, g->deltas[i].account);
        rc = store_step(q, e);
        if (rc >= 0 && store_changes(q) != 1)
            rc = px_error_set(e, PX_EINTERNAL, "ledger account %s missing", g->deltas[i].account);
        store_done(q);
        if (rc < 0)
            return rc;
    }
    return PX_OK;
}

static void reset_job(sw_job *j)
{
    free(j->out.rsp);
    memset(&j->out, 0, sizeof j->out);
    j->status = PX_OK;
    j->errmsg[0] = 0;
}

/* Run jobs[0..n) in one transaction; PX_OK when committed. */
static int run_once(sw_wthread *wt, sw_job **jobs, size_t n, px_error *e)
{
    sw_group g = {0};
    int rc;
    g.now_ms = px_now_ms();
    g.node = wt->w->s->d->node;
    g.known = &wt->known;
    rc = store_begin(wt->st, e);
    for (size_t i = 0; i < n; i++) {
        reset_job(jobs[i]);
        jobs[i]->batched = 0;
    }
    if (rc == PX_OK)
        rc = sw_jobs_run_batched(wt->st, &g, jobs, n, e);
    for (size_t i = 0; rc == PX_OK && i < n; i++) {
        if (jobs[i]->batched)
            continue;
        rc = sw_job_run(wt->st, &g, jobs[i], e);
        if (rc > 0)
            rc = PX_OK;
    }
    if (rc == PX_OK)
        rc = apply_deltas(wt->st, &g, e);
    if (rc == PX_OK)
        rc = store_commit(wt->st, e);
    if (rc != PX_OK)
        store_rollback(wt->st);
    else
        for (size_t i = 0; i < g.ncreated; i++)
            (void)known_add(&wt->known, g.created[i]);
    free(g.deltas);
    free(g.created);
    return rc;
}

static int run_retrying(sw_wthread *wt, sw_job **jobs, size_t n, px_error *e)
{
    int rc = PX_OK;
    for (int attempt = 0; attempt < SW_RETRIES; attempt++) {
        px_error tmp = {0};
        rc = run_once(wt, jobs, n, &tmp);
        if (rc == PX_OK)
            return PX_OK;
        if (e)
            *e = tmp;
        if (rc != PX_ETIMEOUT && rc != PX_ENET)
            return rc;
    }
    return rc;
}

static void deliver(void *arg);

static void hand_back(sw_writer *w, sw_job **jobs, size_t n)
{
    int post = 0;
    pthread_mutex_lock(&w->dmu);
    for (size_t i = 0; i < n; i++) {
        jobs[i]->next = NULL;
        if (w->dtail)
            w->dtail->next = jobs[i];
        else
            w->dhead = jobs[i];
        w->dtail = jobs[i];
    }
    if (!w->posted) {
        w->posted = 1;
        post = 1;
    }
    pthread_mutex_unlock(&w->dmu);
    if (post && net_post(w->base, deliver, w) != PX_OK) {
        px_errorlog("switch", "cannot hand committed jobs back to the event loop");
        pthread_mutex_lock(&w->dmu);
        w->posted = 0;
        pthread_mutex_unlock(&w->dmu);
    }
}

static void run_group(sw_wthread *wt, sw_job **jobs, size_t n)
{
    switch_svc *s = wt->w->s;
    px_error e = {0};
    int rc = run_retrying(wt, jobs, n, &e);
    net_metric_add(s->m.gc_commits, 1);
    net_metric_add(s->m.gc_jobs, (int64_t)n);
    if (rc != PX_OK && n > 1) {
        /* Isolate the failing job: each on its own. */
        px_warn("switch", "group of %zu jobs failed (%s): running them one by one", n,
                px_error_text(&e));
        for (size_t i = 0; i < n; i++)
            run_group(wt, &jobs[i], 1);
        return;
    }
    if (rc != PX_OK) {
        net_metric_add(s->m.gc_failures, 1);
        net_metric_add(s->m.store_errors, 1);
        jobs[0]->status = rc;
        px_strlcpy(jobs[0]->errmsg, px_error_text(&e), sizeof jobs[0]->errmsg);
        px_errorlog("switch", "store: job %d (%s) failed: %s", jobs[0]->kind, jobs[0]->rkey,
                    px_error_text(&e));
    }
    hand_back(wt->w, jobs, n);
}

static void *writer_main(void *arg)
{
    sw_wthread *wt = arg;
    sw_writer *w = wt->w;
    sw_job **batch = calloc(w->max_group, sizeof *batch);
    if (batch == NULL)
        return NULL;
    for (;;) {
        size_t n = 0;
        pthread_mutex_lock(&w->mu);
        while (w->head == NULL && !w->stopping)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->head == NULL && w->stopping) {
            pthread_mutex_unlock(&w->mu);
            break;
        }
        while (w->head != NULL && n < w->max_group) {
            batch[n++] = w->head;
            w->head = w->head->next;
            w->queued--;
        }
        if (w->head == NULL)
            w->tail = NULL;
        net_metric_set(w->s->m.gc_queue, (int64_t)w->queued);
        pthread_mutex_unlock(&w->mu);
        run_group(wt, batch, n);
    }
    free(batch);
    return NULL;
}

static void deliver(void *arg)
{
    sw_writer *w = arg;
    sw_job *list;
    pthread_mutex_lock(&w->dmu);
    list = w->dhead;
    w->dhead = w->dtail = NULL;
    w->posted = 0;
    pthread_mutex_unlock(&w->dmu);
    while (list != NULL) {
        sw_job *j = list;
        list = list->next;
        j->next = NULL;
        sw_flow_job_done(w->s, j);
    }
}

int sw_writer_start(switch_svc *s, const store_config *cfg, int nthreads, size_t max_group,
                    sw_writer **out, px_error *e)
{
    sw_writer *w = calloc(1, sizeof *w);
    int rc = PX_OK;
    *out = NULL;
    if (w == NULL)
        return px_error_set(e, PX_ENOMEM, "switch: out of memory");
    if (nthreads < 1)
        nthreads = 1;
    if (nthreads > PX_SWITCH_WRITERS_MAX)
        nthreads = PX_SWITCH_WRITERS_MAX;
    w->s = s;
    w->base = s->d->base;
    w->max_group = max_group;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    pthread_cond_init(&w->ck_cv, NULL);
    pthread_mutex_init(&w->dmu, NULL);
    for (int i = 0; i < nthreads && rc == PX_OK; i++) {
        rc = store_open(cfg, &w->th[i].st, e);
        if (rc != PX_OK)
            break;
        /* SQLite: a page cache that holds the hot part of the journal and its indexes, so
         * a group does not re-read pages from the OS at every statement; checkpoints are
         * the checkpointer's (below), not the commits' (measured: docs/switch.md). */
        if (store_get_backend(w->th[i].st) == STORE_SQLITE)
            (void)store_exec(w->th[i].st,
                             "PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 65536", NULL);
        w->th[i].w = w;
        if (pthread_create(&w->th[i].th, NULL, writer_main, &w->th[i]) != 0) {
            store_close(w->th[i].st);
            w->th[i].st = NULL;
            rc = px_error_set(e, PX_ENOMEM, "switch: cannot start a writer thread");
            break;
        }
        w->th[i].started = 1;
        w->nthreads = i + 1;
    }
    if (rc == PX_OK && store_get_backend(w->th[0].st) == STORE_SQLITE) {
        rc = store_open(cfg, &w->ck_st, e);
        if (rc == PX_OK && pthread_create(&w->ck_th, NULL, checkpointer_main, w) != 0)
            rc = px_error_set(e, PX_ENOMEM, "switch: cannot start the checkpointer");
        w->ck_started = rc == PX_OK;
    }
    if (rc != PX_OK) {
        sw_writer_stop(w);
        return px_error_prefix(e, "switch: writer: ");
    }
    *out = w;
    return PX_OK;
}

void sw_writer_submit(sw_writer *w, sw_job *j)
{
    j->next = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    w->queued++;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

size_t sw_writer_queued(sw_writer *w)
{
    size_t n;
    pthread_mutex_lock(&w->mu);
    n = w->queued;
    pthread_mutex_unlock(&w->mu);
    return n;
}

void sw_writer_stop(sw_writer *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_cond_broadcast(&w->ck_cv);
    pthread_mutex_unlock(&w->mu);
    if (w->ck_started)
        pthread_join(w->ck_th, NULL);
    store_close(w->ck_st);
    for (int i = 0; i < PX_SWITCH_WRITERS_MAX; i++) {
        if (w->th[i].started)
            pthread_join(w->th[i].th, NULL);
        store_close(w->th[i].st);
        free(w->th[i].known.ids);
    }
    while (w->head) { /* only when a thread could not start */
        sw_job *j = w->head;
        w->head = j->next;
        sw_job_free(j);
    }
    while (w->dhead) {
        sw_job *j = w->dhead;
        w->dhead = j->next;
        sw_job_free(j);
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    pthread_cond_destroy(&w->ck_cv);
    pthread_mutex_destroy(&w->dmu);
    free(w);
}
