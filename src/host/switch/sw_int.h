/*
 * sw_int.h: private to src/host/switch: the service state, the parsed request, the terminal
 * cache, the group-commit writer and its jobs, the provider link. See docs/switch.md.
 *
 * Threads: everything here runs on the daemon's event-loop thread except the writer threads
 * (sw_writer.c), which own their store connections and run jobs (sw_jobs.c). A job is handed
 * to a writer by sw_writer_submit and comes back to the loop, committed or failed, through
 * its done callback. The loop never writes to the store itself.
 */
#ifndef PX_SWITCH_INT_H
#define PX_SWITCH_INT_H

#include <stddef.h>
#include <stdint.h>

#include "host/service.h"
#include "host/switch/switch.h"
#include "hsm/hsm.h"
#include "iso8583/iso8583.h"
#include "lib/limits.h"
#include "net/metrics.h"
#include "net/net.h"
#include "store/store.h"

struct event;
typedef struct switch_svc switch_svc;

/* ---- configuration ([switch]) ---- */

typedef struct sw_config {
    net_listener_config listen;
    hsm_config hsm;   /* [hsm] if present, then [switch] hsm_* keys */
    int has_provider; /* provider_connect given */
    net_link_config provider;
    char acquirer_id[16];                 /* field 32 on both links: n..11 */
    int64_t provider_timeout_ms;          /* no 0210 by then: 91 to the terminal, 0420 out */
    int64_t max_amount_minor;             /* above: 61 */
    char route_bins[PX_CONFIG_VALUE_MAX]; /* comma-separated BIN prefixes; "" = all */
    char zpk[PX_HSM_KEYBLOCK_MAX];        /* zone PIN key: a named key's label or a block */
    char dek_label[PX_HSM_LABEL_MAX];     /* data key for provider messages at rest */
    int64_t group_commit_max;             /* jobs in one store transaction */
    int64_t writers;                      /* writer threads (0: 1 on SQLite, 4 on PostgreSQL) */
    int64_t cache_ttl_ms;                 /* a cached terminal is re-read after this long */
    int64_t cache_terminals;              /* terminals kept in memory */
    int64_t reversal_retry_ms;            /* 0421 repeat interval */
    int64_t orphan_after_ms;              /* a pending request older than this is recovered */
    int64_t echo_interval_ms;             /* provider echo test; 0 = never */
    int64_t max_in_flight;                /* provider requests outstanding */
    int64_t fee_bp;                       /* merchant fee in basis points (0: none) */
    int64_t duplicate_wait_ms;            /* how long a retransmission waits for its original */
} sw_config;

/* ---- metrics ---- */

typedef struct sw_metrics {
    net_metric *rx, *tx, *format_err, *closed_unreadable, *unsupported;
    net_metric *security; /* possum_switch_security_events_total (A0) */
    net_metric *dup_replayed, *dup_refused, *dup_waiting;
    net_metric *approved, *declined;
    net_metric *prov_sent, *prov_timeout, *prov_late, *prov_up;
    net_metric *rev_sent, *rev_done, *outbox_pending;
    net_metric *gc_commits, *gc_jobs, *gc_failures, *gc_queue;
    net_metric *store_errors, *signons, *in_flight;
} sw_metrics;

/* ---- a parsed terminal request (sw_msg.c: the one parser that checks every field) ---- */

enum sw_mtype {
    SW_T_UNKNOWN = 0,
    SW_T_SIGNON,   /* 0800 60.3 = 003 */
    SW_T_ECHO,     /* 0800 / 0820 60.3 = 301 */
    SW_T_SIGNOFF,  /* 0820 60.3 = 002 */
    SW_T_PURCHASE, /* 0200 3 = 000000 */
    SW_T_BALANCE,  /* 0200 3 = 310000 */
    SW_T_VOID,     /* 0200 3 = 200000 */
    SW_T_PHONEPAY, /* 0200 3 = 480000 */
    SW_T_LOOKUP,   /* 0100 3 = 380000 */
    SW_T_REVERSAL, /* 0400 */
    SW_T_SETTLE,   /* 0500 */
    SW_T_UPLOAD,   /* 0320 */
    SW_T_OTHER     /* a request we do not support: 40 */
};

typedef struct sw_totals {
    int64_t debit_count, debit_amount, credit_count, credit_amount;
} sw_totals;

#define SW_RKEY_MAX 64  /* "TID|batch|date|K|STAN|MID" */
#define SW_UPLOAD_MAX 8 /* entries in one 0320 (contract: 1..8) */

typedef struct sw_upload_item {
    char stan[7];
    int64_t amount;
    char proc[7];
} sw_upload_item;

typedef struct sw_req {
    iso8583_msg msg;    /* the unpacked request */
    const uint8_t *raw; /* its bytes (valid during on_frame only) */
    size_t rawlen;
    int type;  /* enum sw_mtype */
    int maced; /* a MAC is expected (everything after sign-on) */
    char tid[9], mid[16], stan[7], proc[7];
    char f60_type[3], nmi[4];
    int64_t batch; /* 60.2 */
    int has_amount;
    int64_t amount;
    char pan[20]; /* from 2, else from 35; "" if none */
    char pan_masked[20];
    int has_pin;
    uint8_t pin_block[8];
    char orig_rrn[13];                /* void: 37 */
    int64_t orig_batch;               /* void: 61.1 */
    char orig_stan[7];                /* void: 61.2 */
    char rev_reason[3];               /* reversal: 39 */
    char f48[48];                     /* lookup (22 digits) and mobile-number payment (34) */
    sw_totals settle_dom, settle_for; /* settlement: 48 */
    size_t nupload;                   /* batch upload: 48 */
    sw_upload_item upload[SW_UPLOAD_MAX];
    uint8_t hash[32];        /* SHA-256 of the MAC span (MTI to field 63) */
    int no_hash;             /* set before parsing again a request already hashed */
    size_t mac_off, mac_len; /* span in raw (when a MAC is present) */
} sw_req;

/* r->msg is unpacked and r->raw/rawlen set (problems there were answered 30 already); this
 * classifies the request, checks the presence and content of every field its flow uses and
 * fills r. PX_EFORMAT with e naming the field. */
int sw_req_parse(sw_req *r, px_error *e);
const char *sw_mtype_name(int type);

/* ---- terminal cache (sw_term.c) ---- */

typedef struct sw_term {
    struct sw_term *hnext;         /* hash chain */
    struct sw_term *lprev, *lnext; /* age order (oldest first) for eviction */
    char tid[9], mid[16];
    int active, update_waiting, signed_on, batch_open;
    int64_t batch;
    char batch_date[9];
    int64_t key_version;    /* of the keys loaded below */
    hsm_key *pik, *mak;     /* loaded work keys (NULL when not signed on) */
    int64_t loaded_mono_ms; /* when the row was last read */
    int busy;               /* a sign-on is being written */
} sw_term;

typedef struct sw_cache {
    sw_term **buckets;
    size_t nbuckets, count, max;
    sw_term *oldest, *newest;
} sw_cache;

int sw_cache_init(sw_cache *c, size_t max, px_error *e);
void sw_cache_free(sw_cache *c, hsm *h);
/* The terminal, read from the store when absent or older than the TTL (or force).
 * PX_ENOTFOUND: not registered. Other errors: the store failed. */
int sw_term_get(switch_svc *s, const char *tid, int force, sw_term **out, px_error *e);
/* Drop the work keys of t. */
void sw_term_drop_keys(switch_svc *s, sw_term *t);

/* ---- the writer: group commit (sw_writer.c) ---- */

enum sw_job_kind {
    SW_J_SIGNON = 1,
    SW_J_SIGNOFF,
    SW_J_FINAL,
    SW_J_CLAIM,
    SW_J_COMPLETE,
    SW_J_REVERSAL,
    SW_J_SETTLE,
    SW_J_UPLOAD,
    SW_J_OUTBOX_DONE,
    SW_J_OUTBOX_TOUCH,
    SW_J_RECOVER,
    SW_J_RRN_BLOCK,
    SW_J_ATTACH
};

/* What a job found (out.outcome). */
enum sw_outcome {
    SW_O_NEW = 0,  /* written as asked */
    SW_O_REPLAY,   /* a retransmission: out.rsp holds the original response */
    SW_O_CONFLICT, /* same identifier, different content: 94 */
    SW_O_PENDING,  /* the original is still in flight (here or on another node) */
    SW_O_FAILED,   /* the original was never answered (it has been reversed) */
    SW_O_REFUSED,  /* a void whose original is not voidable (out.rc: 25 or 12) */
    SW_O_UNDONE,   /* completion found the request reversed meanwhile */
    SW_O_LOST      /* completion found the request no longer pending */
};

typedef struct sw_job sw_job;
typedef void (*sw_job_done_fn)(switch_svc *s, sw_job *j);

struct sw_job {
    sw_job *next;
    int kind;            /* enum sw_job_kind */
    sw_job_done_fn done; /* on the loop, after commit (or failure: status < 0) */
    int status;          /* PX_OK, or the store error (answer 96) */
    int batched;         /* run by sw_jobs_run_batched in this group */
    char errmsg[PX_ERRMSG_MAX];
    /* identity */
    char rkey[SW_RKEY_MAX];
    char tid[9], mid[16], stan[7], batch_date[9], kind_c;
    int64_t batch;
    char ttype[12];
    uint8_t hash[32];
    int has_hash;
    int64_t amount;
    char pan_masked[20];
    char rrn[13], auth[7], rc[3];
    char orig_rkey[SW_RKEY_MAX]; /* void: the purchase; reversal: the original */
    char orig_rrn[13];
    char ref[16];   /* mobile-number payment: the lookup reference */
    char owner[64]; /* claim token: tells our own earlier insert from another's */
    int64_t fee_bp; /* complete: the merchant fee */
    char reason[3]; /* outbox reason for the provider reversal */
    int outbox;     /* complete: add an outbox row */
    char prov_stan[7], prov_time[11];
    uint8_t *prov_blob; /* encrypted provider message (claim) */
    size_t prov_bloblen;
    uint8_t *rsp; /* response bytes to store (final, complete, reversal) */
    size_t rsplen;
    /* sign-on */
    char tmk[PX_HSM_KEYBLOCK_MAX];
    char pik[PX_HSM_KEYBLOCK_MAX], mak[PX_HSM_KEYBLOCK_MAX], tdk[PX_HSM_KEYBLOCK_MAX];
    uint8_t f62[60]; /* the work keys under the TMK with their check values */
    /* settlement / upload */
    sw_totals term_dom, term_for;
    size_t nupload;
    sw_upload_item upload[SW_UPLOAD_MAX];
    /* outbox touch / recover / rrn block */
    int64_t attempts, count;
    char node[64];
    int64_t cutoff_ms;
    /* results */
    struct {
        int outcome;  /* enum sw_outcome */
        uint8_t *rsp; /* REPLAY: the stored response (malloc) */
        size_t rsplen;
        char rc[3];    /* REFUSED */
        int64_t batch; /* sign-on: the new batch */
        char batch_date[9];
        int64_t key_version;
        int settle_result; /* 1 balanced, 2 not */
        sw_totals sw_dom;
        int64_t rrn_next; /* RRN block: first number */
        int64_t recovered;
        char ref[16]; /* reversal of a mobile-number payment: tell phonepay */
    } out;
    /* loop-side context for the done callback */
    switch_svc *svc;
    uint64_t conn;
    uint8_t *treq; /* the terminal's request bytes */
    size_t treqlen;
    uint8_t *preq; /* our packed provider request (clear: never stored) */
    size_t preqlen;
    int64_t t0_mono_ms;
};

typedef struct sw_writer sw_writer;

sw_job *sw_job_new(int kind, sw_job_done_fn done);
void sw_job_free(sw_job *j);

/* Start nthreads writers, each with its own store connection. Finished jobs come back on
 * base's thread through s's completion path. */
int sw_writer_start(switch_svc *s, const store_config *cfg, int nthreads, size_t max_group,
                    sw_writer **out, px_error *e);
/* Queue a job (loop thread). Never fails: a job that cannot be run comes back failed. */
void sw_writer_submit(sw_writer *w, sw_job *j);
size_t sw_writer_queued(sw_writer *w);
/* Finish what is queued, stop the threads, free. Undelivered completions are dropped. */
void sw_writer_stop(sw_writer *w);

/* Run one job inside the open transaction of st (sw_jobs.c). */
typedef struct sw_group sw_group;
int sw_job_run(store *st, sw_group *g, sw_job *j, px_error *e);
/* PostgreSQL: run the group's new purchase claims and its completions (with their
 * postings) as one statement each; marks the jobs done so (batched). SQLite: nothing (its
 * statements cost no round trip). */
int sw_jobs_run_batched(store *st, sw_group *g, sw_job **jobs, size_t n, px_error *e);

/* Entries deferred during a batched completion (sw_jobs.c). */
typedef struct sw_entry_buf sw_entry_buf;
sw_entry_buf *sw_group_entries(sw_group *g);
void sw_group_set_entries(sw_group *g, sw_entry_buf *eb);

/* Per-transaction aggregation of balance changes (sw_writer.c). */
int sw_group_add_delta(sw_group *g, const char *account, const char *kind, int64_t delta);
int sw_group_ensure_account(store *st, sw_group *g, const char *account, const char *kind,
                            px_error *e);
int64_t sw_group_now_ms(const sw_group *g);
const char *sw_group_node(const sw_group *g);

/* ---- the key worker: sign-on's HSM work off the event loop (sw_keys.c) ---- */

typedef struct sw_keyworker sw_keyworker;
int sw_keyworker_start(switch_svc *s, sw_keyworker **out, px_error *e);
/* j->tmk holds the TMK block; j->pik, mak, tdk and f62 come back filled (status PX_OK),
 * through sw_flow_keys_done on the loop. */
void sw_keyworker_submit(sw_keyworker *k, sw_job *j);
void sw_keyworker_stop(sw_keyworker *k);
void sw_flow_keys_done(switch_svc *s, sw_job *j);

/* ---- provider link (sw_provider.c) ---- */

typedef struct sw_flight sw_flight;

int sw_provider_start(switch_svc *s, px_error *e);
void sw_provider_stop(switch_svc *s);
int sw_provider_is_up(switch_svc *s);
size_t sw_provider_in_flight(switch_svc *s);
/* Send a financial request for a claimed request (job j, from its claim). The answer, or a
 * timeout, comes back through sw_flow_provider_answer. */
int sw_provider_send(switch_svc *s, const sw_job *claim, px_error *e);
/* Send (or resend) a reversal now for a request whose provider message is pmsg. */
void sw_provider_send_reversal(switch_svc *s, const char *rkey, const iso8583_msg *orig,
                               const char *reason, int repeat);
/* Poll the outbox (timer). */
void sw_provider_outbox_tick(switch_svc *s);
/* Take a fresh RRN (12 digits) and provider STAN (6 digits). PX_ELIMIT if none is left. */
int sw_next_rrn(switch_svc *s, char rrn[13], char stan[7]);

/* Encrypt / decrypt a provider message for storage under the DEK. */
int sw_seal(switch_svc *s, const uint8_t *in, size_t n, uint8_t **out, size_t *outlen, px_error *e);
int sw_unseal(switch_svc *s, const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *outlen,
              px_error *e);

/* ---- flows (sw_flow.c) ---- */

void sw_flow_request(switch_svc *s, uint64_t conn, sw_req *r);
/* The provider answered (rsp non-NULL) or timed out (rsp NULL) request described by f. */
void sw_flow_provider_answer(switch_svc *s, uint64_t conn, const uint8_t *treq, size_t treqlen,
                             const char *rkey, const iso8583_msg *prsp, const uint8_t *preq,
                             size_t preqlen);
/* A writer job came back. */
void sw_flow_job_done(switch_svc *s, sw_job *j);

/* ---- responses (sw_msg.c) ---- */

/* Begin the response to r with code rc: echoed fields, time and date, the processing
 * requirement nibble of the header (6: update waiting; 3: sign on again). */
int sw_rsp_begin(switch_svc *s, const sw_req *r, const sw_term *t, const char *rc, iso8583_msg *rsp,
                 px_error *e);
/* Pack rsp; MAC it under t's MAK when mac is set. *out is malloc'd. */
int sw_rsp_pack(switch_svc *s, const iso8583_msg *rsp, const sw_term *t, int mac, uint8_t **out,
                size_t *outlen, px_error *e);
/* Send bytes to a terminal connection. */
void sw_send(switch_svc *s, uint64_t conn, const uint8_t *p, size_t n);
/* Build, pack and send a response with only code rc (MACed when r->maced and t has keys). */
void sw_answer(switch_svc *s, uint64_t conn, const sw_req *r, const sw_term *t, const char *rc);
/* rkey of (tid, mid, stan, batch, date, kind): "TID|BATCH|DATE|KIND|STAN|MID". */
void sw_rkey(char out[SW_RKEY_MAX], const char *tid, const char *mid, const char *stan,
             int64_t batch, const char *date, char kind);
/* The rkeys of one batch's requests of one kind are exactly those in [lo, hi). */
void sw_rkey_range(char lo[SW_RKEY_MAX], char hi[SW_RKEY_MAX], const char *tid, int64_t batch,
                   const char *date, char kind);
void sw_count_rc(switch_svc *s, const char *rc);

/* ---- the service ---- */

struct switch_svc {
    sw_config cfg;
    px_daemon *d;
    net_frame_server *srv;
    hsm *hsm; /* NULL when the HSM could not be opened (96) */
    hsm_key *zpk, *dek;
    char hsm_error[PX_ERRMSG_MAX];
    sw_cache cache;
    sw_writer *writer;
    sw_keyworker *keys; /* NULL when the HSM could not be opened */
    sw_metrics m;
    /* routing */
    char bins[PX_SWITCH_ROUTES_MAX][12];
    size_t nbins;
    /* provider link */
    net_link *link;
    struct sw_pstate *prov;
    /* RRN blocks */
    int64_t rrn_next, rrn_end;   /* [next, end) available */
    int64_t rrn_next2, rrn_end2; /* the block fetched ahead */
    int rrn_fetching;
    /* timers */
    struct event *tick;
    int draining;
    size_t pending_jobs; /* submitted and not yet back */
    uint64_t owner_seq;
    char owner_prefix[48];
};

/* The operator endpoints (sw_ops.c) on the node's [http] listener. */
int sw_ops_routes(switch_svc *s, px_error *e);

/* The owner token of a new claim (unique per process run). */
void sw_owner_token(switch_svc *s, char out[64]);

#endif
