/*
 * tms.h: the terminal management system (seed 000; docs/tms.md, docs/update-protocol.md).
 * What `possum tms` and the tests call; the service itself (`[tms]`, px_service_tms) serves
 * terminals over HTTP/JSON and runs campaigns on its own.
 *
 *   - the terminal registry (serial, model, merchant, groups, installed versions, last
 *     contact, update schedule, the check value of its download master key DMK);
 *   - packages: an application or parameter set, its version, the models it fits, its file
 *     (kept in the store in chunks: every node can serve it) with length and SHA-256, and
 *     the signed targets record of its release;
 *   - release metadata: root records (published by an operator, signed offline) and the
 *     timestamp record the service signs online;
 *   - campaigns: a package to terminals chosen by model, group or list, in waves by
 *     percentage, from a start time within a daily maintenance window, halted by itself
 *     when failures in a wave pass a threshold.
 * Every function works on the caller's store connection, in its own transaction.
 */
#ifndef PX_HOST_TMS_H
#define PX_HOST_TMS_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/tuf.h"
#include "hsm/hsm.h"
#include "lib/err.h"
#include "lib/limits.h"
#include "store/store.h"

/* ---- terminals ------------------------------------------------------------------------ */

typedef struct tms_installed {
    char name[PX_TMS_NAME_MAX];
    char version[PX_TMS_VERSION_MAX];
} tms_installed;

typedef struct tms_terminal {
    char serial[PX_TMS_SERIAL_MAX]; /* 1..32 of A-Z a-z 0-9 . _ - */
    char model[PX_TMS_NAME_MAX];
    char merchant[PX_TMS_NAME_MAX]; /* "" = none */
    char tid[PX_TMS_TID_MAX];       /* the switch's terminal id: "" = not flagged */
    char groups[PX_TMS_GROUPS_MAX][PX_TMS_NAME_MAX];
    size_t ngroups;
    char schedule[64]; /* "" = the service's default (tms_schedule_parse) */
    tms_installed installed[PX_TMS_INSTALLED_MAX];
    size_t ninstalled;
    char dmk_kcv[PX_HSM_KCV_HEX_MAX]; /* "" until the DMK was derived */
    int64_t last_contact_ms, created_ms, updated_ms;
} tms_terminal;

int tms_serial_is_valid(const char *s);

/* Register a terminal (checks every field). PX_EEXIST if the serial is taken. */
int tms_terminal_add(store *st, const tms_terminal *t, px_error *e);
/* PX_ENOTFOUND for an unknown serial. */
int tms_terminal_get(store *st, const char *serial, tms_terminal *out, px_error *e);
/* Change the schedule ("" = default) of a terminal. */
int tms_terminal_set_schedule(store *st, const char *serial, const char *schedule, px_error *e);

/* The attributes of a DMK (download master key, K0, double-length TDES, may encrypt keys,
 * exportable only as a TR-31 block) and of the TMS master key it derives from (K0, mode X). */
extern const hsm_key_attrs tms_dmk_attrs;

/* The terminal's DMK as a key block under the LMK: derived once in the HSM from the master
 * key (label master_label) and the serial number (docs/update-protocol.md, "Keys") and kept
 * in the registry. kcv (may be NULL) receives its check value. */
int tms_terminal_dmk(store *st, hsm *h, const char *master_label, const char *serial,
                     hsm_keyblock *out, px_error *e);

/* Provisioning (the factory): the DMK exported as a TR-31 key block under the KEK kek_label
 * (K1), for the terminal's key store. block receives the key block, kcv its check value. */
int tms_terminal_provision(store *st, hsm *h, const char *master_label, const char *serial,
                           const char *kek_label, char *block, size_t blockcap,
                           char kcv[PX_HSM_KCV_HEX_MAX], px_error *e);

/* ---- metadata ------------------------------------------------------------------------- */

/* Store a root record: the first must be signed by a threshold of its own root keys, each
 * later one be version latest+1 signed by a threshold of the latest's root keys and of its
 * own. PX_EAUTH names what did not verify. */
int tms_root_publish(store *st, const void *bytes, size_t n, px_error *e);
/* The latest root record (parsed) and its version; PX_ENOTFOUND before the first. */
int tms_root_latest(store *st, tuf_root *out, px_error *e);

/* ---- packages ------------------------------------------------------------------------- */

typedef struct tms_package {
    tuf_target t;                     /* name, kind, version, length, sha256, models */
    char meta_sha256[TUF_SHA256_HEX]; /* of the targets record as stored */
    int64_t meta_length;
    int64_t created_ms;
} tms_package;

/* Add a package: the file at path and the signed targets record of its release. Refused:
 * a record not signed by a threshold of the current root's targets keys, a file whose length
 * or SHA-256 differs from the record's, a release already stored (PX_EEXIST). */
int tms_package_add(store *st, const char *path, const void *meta, size_t metalen, tms_package *out,
                    px_error *e);
int tms_package_get(store *st, const char *name, const char *version, tms_package *out,
                    px_error *e);
/* Every package, newest first per name; fn returning non-zero stops (returned). */
int tms_package_list(store *st, int (*fn)(void *ud, const tms_package *p), void *ud, px_error *e);

/* ---- campaigns ------------------------------------------------------------------------ */

typedef enum tms_tstate {
    TMS_T_SCHEDULED = 0, /* in a wave not open yet */
    TMS_T_PENDING,       /* its wave is open: an update waits (the switch flags it) */
    TMS_T_OFFERED,       /* the terminal checked in and was told */
    TMS_T_DOWNLOADED,    /* reported: downloaded and verified */
    TMS_T_DEFERRED,      /* reported: deferred (open batch, pending reversal); offered again */
    TMS_T_INSTALLED,     /* reported: the new version started and passed its self-check */
    TMS_T_FAILED,        /* reported: failed, with a reason */
    TMS_T_ROLLED_BACK,   /* reported: the new version failed its self-check; old one runs */
    TMS_T_SKIPPED,       /* already ran this version or newer */
    TMS_T_COUNT_
} tms_tstate;

const char *tms_tstate_name(tms_tstate s); /* "scheduled", "pending", ... */
int tms_tstate_parse(const char *s, tms_tstate *out);

typedef struct tms_campaign_spec {
    char name[PX_TMS_NAME_MAX];
    char pkg_name[PX_TMS_NAME_MAX];
    char pkg_version[PX_TMS_VERSION_MAX];
    char models[PX_TMS_MODELS_MAX][PX_TMS_NAME_MAX];
    size_t nmodels;
    char groups[PX_TMS_GROUPS_MAX][PX_TMS_NAME_MAX];
    size_t ngroups;
    const char *const *serials; /* a list of serials (may be NULL) */
    size_t nserials;
    int all;                         /* 1: every terminal the package fits */
    int64_t waves[PX_TMS_WAVES_MAX]; /* cumulative percentages, increasing, last 100 */
    size_t nwaves;
    int64_t start_ms;         /* not before */
    int64_t window_start_min; /* daily window [start, end) in minutes after 00:00 */
    int64_t window_end_min;   /* UTC; -1 and -1 = any time */
    int64_t max_failure_pct;  /* halt when failures in a wave pass it (0..100) */
    int64_t advance_pct;      /* open the next wave when this share has finished */
    int64_t wave_min_ms;      /* and this long after the wave opened */
} tms_campaign_spec;

/* Defaults: one wave of 100 %, start now, any time, 5 % failures, advance at 100 %. */
void tms_campaign_spec_default(tms_campaign_spec *s);

/* Parse "HH:MM-HH:MM" (UTC; may wrap midnight) into minutes. */
int tms_window_parse(const char *s, int64_t *start_min, int64_t *end_min, px_error *e);

typedef struct tms_campaign_info {
    tms_campaign_spec spec;         /* serials left NULL */
    char state[12];                 /* draft, running, paused, halted, completed */
    char reason[PX_TMS_REASON_MAX]; /* why it halted */
    int64_t current_wave;           /* 0 before start */
    int64_t wave_opened_ms;
    int64_t total;
    int64_t counts[PX_TMS_WAVES_MAX][TMS_T_COUNT_]; /* per wave (0-based), per state */
    int64_t created_ms, updated_ms;
} tms_campaign_info;

/* Create a campaign (draft). Checks the package exists and every selector. */
int tms_campaign_create(store *st, const tms_campaign_spec *s, px_error *e);
/* Start: choose its terminals now (those selected whose model the package fits), assign
 * them to waves, and run. *total (may be NULL) receives how many. */
int tms_campaign_start(store *st, const char *name, int64_t *total, px_error *e);
int tms_campaign_pause(store *st, const char *name, px_error *e);
/* Resume a paused or halted campaign. */
int tms_campaign_resume(store *st, const char *name, px_error *e);
int tms_campaign_get(store *st, const char *name, tms_campaign_info *out, px_error *e);
int tms_campaign_list(store *st, int (*fn)(void *ud, const tms_campaign_info *c), void *ud,
                      px_error *e);

/* Asks the transaction platform to flag a terminal (its TID) as having an update waiting
 * (seed 000 claims 3 and 8), or to clear the flag. PX_ENOTFOUND when the platform does not
 * know the terminal. */
typedef struct tms_flagger {
    int (*set)(void *ud, store *st, const char *tid, int on, px_error *e);
    void *ud;
} tms_flagger;

/* One step of every running campaign at time now: open the next wave when due (within the
 * window), flag up to PX_TMS_FLAG_BATCH released terminals, halt a campaign whose current
 * wave's failures pass its threshold, complete one that has nothing left. *changed (may be
 * NULL) receives the number of campaigns or targets that moved. */
int tms_campaign_tick(store *st, int64_t now, const tms_flagger *f, int64_t *changed, px_error *e);

/* ---- schedules: "PERIOD[@[DAY ]HH:MM][~JITTER]", e.g. "7d@Fri 17:00~30m", "1d@02:00~1h" ---- */

typedef struct tms_schedule {
    int64_t period_ms; /* 1 minute .. 366 days */
    int64_t anchor_ms; /* a time (ms since the epoch, UTC) on the schedule */
    int64_t jitter_ms; /* 0 .. period */
} tms_schedule;

int tms_schedule_parse(const char *s, tms_schedule *out, px_error *e);
/* The first time on the schedule after now, plus this serial's jitter (a hash of the serial
 * and the slot, so one terminal keeps its place and the fleet spreads out). */
int64_t tms_schedule_next(const tms_schedule *s, const char *serial, int64_t now);

#endif
