/*
 * tms_int.h: inside the tms module. The store-level pieces (registry, packages, metadata,
 * campaigns, schedules) are in tms.h; this adds what the service's files share.
 */
#ifndef PX_HOST_TMS_INT_H
#define PX_HOST_TMS_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

#include "host/service.h"
#include "host/tms/tms.h"
#include "lib/buf.h"
#include "net/http.h"

#define TMS_MOD "tms"
#define TMS_TXN_TRIES 5
#define TMS_NONCE_MIN 8 /* bytes of a check-in nonce, at least */
#define TMS_NONCE_MAX 32
#define TMS_AUTH_DATA_LEN 16  /* T-DATA and S-DATA: two TDES blocks */
#define TMS_TOKEN_LEN 32      /* bytes of a session token (64 hex) */
#define TMS_SESSION_ID_LEN 16 /* bytes of a session id (32 hex) */

/* Run fn inside one store transaction, again (up to TMS_TXN_TRIES) when the store says
 * retry. fn's error ends it. */
int tms_txn(store *st, int (*fn)(store *st, void *ud, px_error *e), void *ud, px_error *e);

/* The DMK derivation data of a serial: the first 16 bytes of SHA-256(serial). */
void tms_dmk_data(const char *serial, uint8_t out[16]);

/* ---- stored metadata ------------------------------------------------------------------ */

/* The latest record of role ("root" or "timestamp") as stored: body into out (reset
 * first), its version and expiry. PX_ENOTFOUND when there is none. */
int tms_meta_latest(store *st, const char *role, px_buf *out, int64_t *version, int64_t *expires_ms,
                    px_error *e);
/* Root record of one version. */
int tms_meta_root(store *st, int64_t version, px_buf *out, px_error *e);
/* The targets record of a release as stored. */
int tms_package_meta(store *st, const char *name, const char *version, px_buf *out, px_error *e);

/* Sign a new timestamp record with the online key priv when there is none, when the latest
 * expires within ttl_ms/2, or when the releases or the root it should bind have changed.
 * *signed_new (may be NULL) says whether one was written. */
int tms_timestamp_refresh(store *st, const uint8_t priv[TUF_PRIV_LEN], int64_t ttl_ms, int64_t now,
                          int *signed_new, px_error *e);

/* Copy a stored package file (its chunks) to path (created 0600, fsynced), checking its
 * length and SHA-256 on the way. */
int tms_blob_export(store *st, const char *sha256, int64_t length, const char *path, px_error *e);

/* ---- the terminal protocol (store side; the HTTP glue is api.c) ------------------------ */

typedef struct tms_offer {
    char campaign[PX_TMS_NAME_MAX];
    char name[PX_TMS_NAME_MAX];
    char kind[8];
    char version[PX_TMS_VERSION_MAX];
    int64_t length;
    char sha256[TUF_SHA256_HEX];
    char state[16];
} tms_offer;

typedef struct tms_checkin_req {
    char serial[PX_TMS_SERIAL_MAX];
    char model[PX_TMS_NAME_MAX];
    char nonce[2 * TMS_NONCE_MAX + 1];
    tms_installed installed[PX_TMS_INSTALLED_MAX];
    size_t ninstalled;
    char installed_json[1024]; /* canonical {name: version} */
} tms_checkin_req;

/* Parse a check-in body: {"serial","model","nonce", "installed":{name: version}}. */
int tms_checkin_parse(const json_t *body, tms_checkin_req *out, px_error *e);

/* What waits for the terminal (at most PX_TMS_UPDATES_MAX), as of now: targets of running
 * campaigns within their window. A pending target becomes offered (and its switch flag is
 * cleared through f); one the terminal already runs (or runs newer) becomes skipped. */
int tms_checkin_offers(store *st, const tms_checkin_req *r, int64_t now, const tms_flagger *f,
                       tms_offer *offers, size_t *noffers, px_error *e);

/* The terminal's registry row for a check-in: model, tid and schedule. PX_ENOTFOUND. */
int tms_checkin_terminal(store *st, const char *serial, char model[PX_TMS_NAME_MAX],
                         char schedule[64], px_error *e);

/* Record contacts (serial, time, installed) in one transaction. */
typedef struct tms_contact {
    char serial[PX_TMS_SERIAL_MAX];
    int64_t at_ms;
    char installed_json[1024];
} tms_contact;
int tms_contacts_write(store *st, const tms_contact *c, size_t n, px_error *e);

/* A report from an authenticated terminal about a campaign's update. PX_ENOTFOUND (404)
 * when no such update was offered to it; PX_ECONFLICT when it does not follow (a report
 * after a final one, a version that is not the campaign's). */
typedef struct tms_report_req {
    char campaign[PX_TMS_NAME_MAX];
    char status[16]; /* downloaded, installed, failed, rolled_back, deferred */
    char version[PX_TMS_VERSION_MAX];
    char reason[PX_TMS_REASON_MAX];
} tms_report_req;
int tms_report_parse(const json_t *body, tms_report_req *out, px_error *e);
int tms_report_record(store *st, const char *serial, const tms_report_req *r, int64_t now,
                      tms_tstate *state, px_error *e);

/* Whether serial may download release name/version now: an active target of a running
 * campaign offers it. PX_EPERM (with the reason) otherwise. */
int tms_download_allowed(store *st, const char *serial, const char *name, const char *version,
                         tms_package *pkg, px_error *e);

/* ---- mutual authentication (claim 4; docs/update-protocol.md "Mutual authentication") --- */

typedef struct tms_auth_challenge {
    char session[2 * TMS_SESSION_ID_LEN + 1];
    char tac[2 * TMS_AUTH_DATA_LEN + 1]; /* TAC-1 = TDES-CBC(DWK, IV 0, T-DATA) */
    char dwk[2 * 16 + 1];                /* DWK-1 = TDES-ECB(DMK, DWK) */
    char dwk_kcv[PX_HSM_KCV_HEX_MAX];
    char s_data[2 * TMS_AUTH_DATA_LEN + 1];
    int64_t expires_ms;
} tms_auth_challenge;

typedef struct tms_auth_config {
    char master_label[PX_HSM_LABEL_MAX];
    int64_t challenge_ttl_ms; /* a challenge must be answered within it */
    int64_t session_ttl_ms;   /* an open session may download and report until then */
    int64_t min_interval_ms;  /* between two challenges for one terminal */
} tms_auth_config;

/* Step 1: T-DATA (32 hex) from terminal serial -> a new session with TAC-1, DWK-1, S-DATA.
 * PX_ENOTFOUND unknown serial, PX_ELIMIT asked again too soon. */
int tms_auth_begin(store *st, hsm *h, const tms_auth_config *c, const char *serial,
                   const char *t_data_hex, int64_t now, tms_auth_challenge *out, px_error *e);

/* Step 2: SAC-1 and the terminal's own result. The session must be challenged, unexpired,
 * this serial's, and answered once: a second answer (a replayed SAC) is refused. On a
 * match: token (64 hex) for Authorization: Bearer. PX_EAUTH when SAC-1 != SAC-0 or the
 * terminal refused TAC. */
int tms_auth_finish(store *st, hsm *h, const tms_auth_config *c, const char *serial,
                    const char *session, const char *sac_hex, int terminal_ok, int64_t now,
                    char token[2 * TMS_TOKEN_LEN + 1], int64_t *expires_ms, px_error *e);

/* The serial of an open, unexpired session with this bearer token. PX_EAUTH otherwise. */
int tms_session_check(store *st, const char *token, int64_t now, char serial[PX_TMS_SERIAL_MAX],
                      px_error *e);

/* Delete sessions that expired before now (at most PX_TMS_PAGE_ROWS). */
int tms_session_sweep(store *st, int64_t now, px_error *e);

/* ---- terminals with something running for them (active.c) --------------------------- */

typedef struct tms_active {
    uint64_t *h; /* tms_serial_hash of each, sorted */
    size_t n;
} tms_active;

uint64_t tms_serial_hash(const char *serial);
/* What the set depends on (running campaigns, their waves), as text to compare. */
int tms_active_stamp(store *st, char out[128], px_error *e);
int tms_active_build(store *st, tms_active **out, px_error *e);
int tms_active_has(const tms_active *a, uint64_t h);
void tms_active_free(tms_active *a); /* NULL is fine */

/* ---- the node's copy of the registry for check-ins (regcache.c) --------------------- */

typedef struct tms_regcache tms_regcache;

int tms_regcache_new(size_t max_entries, tms_regcache **out, px_error *e);
void tms_regcache_free(tms_regcache *c); /* NULL is fine */
/* 1 and model, schedule when serial is known here; 0 when it is not (ask the store). */
int tms_regcache_get(tms_regcache *c, const char *serial, char model[PX_TMS_NAME_MAX],
                     char schedule[64]);
void tms_regcache_put(tms_regcache *c, const char *serial, const char *model, const char *schedule);
/* Read the rows changed since the last refresh (all of them the first time). */
int tms_regcache_refresh(tms_regcache *c, store *st, px_error *e);
size_t tms_regcache_count(tms_regcache *c);

/* ---- the service (service.c, api.c, download.c) ------------------------------------ */

struct event_base;
struct event;

typedef struct tms_config {
    net_listener_config listen;      /* [tms] listen, tls_*, max_connections, max_body, ... */
    int64_t workers;                 /* threads serving terminals */
    tms_auth_config auth;            /* master_key, challenge_ttl_ms, session_ttl_ms, ... */
    char timestamp_key[PX_PATH_MAX]; /* the online Ed25519 key of the timestamp role */
    int64_t timestamp_ttl_ms;
    char schedule[64];           /* the default schedule */
    int64_t max_downloads;       /* terminals downloading at once */
    int64_t download_rate;       /* bytes per second per terminal, 0 = no limit */
    int64_t slice_bytes;         /* most bytes one download request may ask, 0 = any */
    int64_t download_idle_ms;    /* a terminal stops counting as downloading after it */
    char cache_dir[PX_PATH_MAX]; /* package files, materialised from the store */
    int64_t tick_ms;             /* campaigns, timestamp, sweeps */
    int64_t contact_flush_ms;    /* longest delay of a check-in's registry write */
    int64_t registry_cache;      /* terminals a node keeps in memory for check-ins; 0 = none */
    hsm_config hsm;
} tms_config;

typedef struct tms_svc tms_svc;

/* Download admission: at most max terminals at once, rate bytes/s each (docs/tms.md). */
typedef struct tms_dl_entry {
    char serial[PX_TMS_SERIAL_MAX];
    int64_t last_ms;    /* last request */
    int64_t debt_bytes; /* bytes sent ahead of the rate, repaid at rate bytes/s */
    int64_t debt_ms;    /* when debt_bytes was last brought up to date */
    struct tms_dl_entry *next;
} tms_dl_entry;

#define TMS_DL_BUCKETS 4096

typedef struct tms_limiter {
    pthread_mutex_t lock;
    tms_dl_entry *buckets[TMS_DL_BUCKETS];
    size_t count;
    int64_t max, rate, idle_ms;
} tms_limiter;

/* May serial have bytes more now? PX_OK; PX_ELIMIT with *retry_ms when it is over its rate;
 * PX_ESTATE with *retry_ms when max other terminals are downloading. */
int tms_limiter_admit(tms_limiter *l, const char *serial, int64_t bytes, int64_t now,
                      int64_t *retry_ms);
void tms_limiter_sweep(tms_limiter *l, int64_t now);
size_t tms_limiter_active(tms_limiter *l);
void tms_limiter_init(tms_limiter *l, int64_t max, int64_t rate, int64_t idle_ms);
void tms_limiter_free(tms_limiter *l);

typedef struct tms_metrics {
    net_metric *checkins, *offers, *auth_ok, *auth_fail, *downloads, *download_bytes,
        *dl_refused_limit, *dl_refused_rate, *dl_refused_perm, *reports, *security;
} tms_metrics;

typedef struct tms_worker {
    tms_svc *svc;
    int idx;
    pthread_t thread;
    int started;
    struct event_base *base;
    net_http_server *http;
    store *st;
    /* its check-ins' registry writes, taken by the writer thread (an uncontended lock) */
    pthread_mutex_t qlock;
    tms_contact *q, *spare; /* PX_TMS_CONTACT_QUEUE_MAX / PX_TMS_WORKERS_MAX... each */
    size_t n, qmax;
} tms_worker;

/* The registry writes of check-ins (last contact, installed versions), off the workers'
 * loops: each worker queues its own, one thread of its own writes them in batches of
 * PX_TMS_WRITE_BATCH. */
typedef struct tms_writer {
    pthread_t thread;
    int started, stop;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    tms_contact *batch; /* what the writer took */
    int64_t flush_ms;
    store *st;
    net_metric *written, *dropped;
} tms_writer;

struct tms_svc {
    tms_config cfg;
    px_daemon *d;
    store *st;  /* the loop thread's: tick and operator routes */
    hsm *core;  /* the node's (px_daemon_hsm): loop thread */
    hsm *h;     /* a session of it, the workers' under hsm_lock */
    store *hst; /* the HSM's own connection (named keys), under hsm_lock */
    pthread_mutex_t hsm_lock;
    uint8_t ts_priv[TUF_PRIV_LEN]; /* the online timestamp key */
    int has_ts_key;
    tms_schedule default_schedule;
    tms_flagger flagger;
    tms_limiter lim;
    tms_metrics m;
    tms_writer writer;
    tms_worker workers[PX_TMS_WORKERS_MAX];
    size_t nworkers;
    struct event *tick_ev;
    /* the tick publishes a new set with one atomic store and frees the one before only at the
     * swap after (a check-in holds it for one lookup; swaps are a tick apart at least) */
    tms_active *_Atomic active; /* NULL until the first tick built it: query always */
    tms_active *active_old;
    tms_regcache *reg; /* NULL: every check-in reads the registry */
    char active_stamp[128];
    volatile int draining;
    int inited; /* the mutexes and the limiter exist */
};

/* Terminal-facing routes on a worker's server; operator routes on the daemon's. */
int tms_api_routes(tms_worker *w, px_error *e);
int tms_api_operator_routes(tms_svc *s, net_http_server *http, px_error *e);
/* GET /v1/packages/NAME/VERSION (download.c). */
void tms_api_download(net_http_req *req, void *user);
/* Queue a check-in's registry write (the writer thread flushes it in batches). */
void tms_worker_contact(tms_worker *w, const tms_checkin_req *r, int64_t now);

#endif
