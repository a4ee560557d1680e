/*
 * sw_keys.c: the key worker. A sign-on needs about ten HSM key-management calls (load the
 * TMK; generate, load, export and check each work key), and the HSM writes and fsyncs an
 * audit entry for each before it returns: tens of milliseconds. They run here, on a thread
 * with its own HSM session, so the event loop keeps serving other terminals meanwhile; the
 * job then goes on to the store (sw_flow.c). Only key blocks and cryptograms cross back.
 */
#include "host/switch/sw_int.h"
#include "lib/hex.h"
#include "lib/log.h"
#include "lib/str.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct sw_keyworker {
    switch_svc *s;
    hsm *h;
    pthread_t th;
    int started, stopping;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sw_job *head, *tail;
};

/* The key attributes of the work keys (docs/switch.md, "Terminals and keys"). */
static const hsm_key_attrs pik_attrs = {"P0", 'T', 'B', 'S', 16};
static const hsm_key_attrs mak_attrs = {"M1", 'T', 'C', 'S', 16};
static const hsm_key_attrs tdk_attrs = {"D0", 'T', 'B', 'S', 16};

/* Generate one work key, export it under the TMK: 16 bytes of cryptogram + 4 of CV. */
static int make_work_key(hsm *h, hsm_key *tmk, const hsm_key_attrs *a, char *block,
                         uint8_t out62[20], px_error *e)
{
    hsm_keyblock kb;
    hsm_key *k = NULL;
    char crypt[2 * CRYPTO_KEY_MAX + 1], kcv[PX_HSM_KCV_HEX_MAX];
    size_t n = 0;
    int rc = hsm_key_generate(h, a, NULL, &kb, e);
    if (rc == PX_OK)
        rc = hsm_key_load(h, kb.block, &k, e);
    if (rc == PX_OK)
        rc = hsm_key_export(h, tmk, k, HSM_EXPORT_ECB, crypt, sizeof crypt, kcv, e);
    if (rc == PX_OK && (px_hex_decode(crypt, out62, 16, &n) != PX_OK || n != 16))
        rc = px_error_set(e, PX_ECRYPTO, "work key cryptogram: unexpected length");
    /* field 62's check value: 4 bytes of the key's encryption of a zero block */
    if (rc == PX_OK)
        rc = hsm_key_check_value(h, k, 4, out62 + 16, e);
    if (rc == PX_OK)
        px_strlcpy(block, kb.block, PX_HSM_KEYBLOCK_MAX);
    hsm_key_free(h, k);
    crypto_cleanse(crypt, sizeof crypt);
    return rc;
}

/* Fresh PIK, MAK and TDK under the TMK (j->tmk): their blocks and field 62. */
static void make_keys(sw_keyworker *k, sw_job *j)
{
    hsm_key *tmk = NULL;
    px_error e = {0};
    int rc = hsm_key_load(k->h, j->tmk, &tmk, &e);
    if (rc == PX_OK)
        rc = make_work_key(k->h, tmk, &pik_attrs, j->pik, j->f62, &e);
    if (rc == PX_OK)
        rc = make_work_key(k->h, tmk, &mak_attrs, j->mak, j->f62 + 20, &e);
    if (rc == PX_OK)
        rc = make_work_key(k->h, tmk, &tdk_attrs, j->tdk, j->f62 + 40, &e);
    hsm_key_free(k->h, tmk);
    j->status = rc;
    if (rc != PX_OK) {
        crypto_cleanse(j->f62, sizeof j->f62);
        px_strlcpy(j->errmsg, px_error_text(&e), sizeof j->errmsg);
    }
}

static void keys_back(void *arg)
{
    sw_job *j = arg;
    sw_flow_keys_done(j->svc, j);
}

static void *keyworker_main(void *arg)
{
    sw_keyworker *k = arg;
    for (;;) {
        sw_job *j;
        pthread_mutex_lock(&k->mu);
        while (k->head == NULL && !k->stopping)
            pthread_cond_wait(&k->cv, &k->mu);
        if (k->head == NULL) {
            pthread_mutex_unlock(&k->mu);
            break;
        }
        j = k->head;
        k->head = j->next;
        if (k->head == NULL)
            k->tail = NULL;
        pthread_mutex_unlock(&k->mu);
        j->next = NULL;
        make_keys(k, j);
        if (net_post(k->s->d->base, keys_back, j) != PX_OK) {
            px_errorlog("switch", "key worker: cannot hand a sign-on back to the event loop");
            sw_job_free(j);
        }
    }
    return NULL;
}

int sw_keyworker_start(switch_svc *s, sw_keyworker **out, px_error *e)
{
    sw_keyworker *k = calloc(1, sizeof *k);
    int rc;
    *out = NULL;
    if (k == NULL)
        return px_error_set(e, PX_ENOMEM, "switch: out of memory");
    k->s = s;
    rc = hsm_session_open(s->hsm, NULL, "switch:keys", &k->h, e);
    if (rc != PX_OK) {
        free(k);
        return rc;
    }
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    if (pthread_create(&k->th, NULL, keyworker_main, k) != 0) {
        sw_keyworker_stop(k);
        return px_error_set(e, PX_ENOMEM, "switch: cannot start the key worker");
    }
    k->started = 1;
    *out = k;
    return PX_OK;
}

void sw_keyworker_submit(sw_keyworker *k, sw_job *j)
{
    j->next = NULL;
    pthread_mutex_lock(&k->mu);
    if (k->tail)
        k->tail->next = j;
    else
        k->head = j;
    k->tail = j;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

void sw_keyworker_stop(sw_keyworker *k)
{
    if (k == NULL)
        return;
    pthread_mutex_lock(&k->mu);
    k->stopping = 1;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
    if (k->started)
        pthread_join(k->th, NULL);
    while (k->head != NULL) {
        sw_job *j = k->head;
        k->head = j->next;
        sw_job_free(j);
    }
    hsm_close(k->h);
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->cv);
    free(k);
}
