/*
 * tmsclient.h: the terminal side of remote program update (seed 000; docs/update-protocol.md).
 * What a terminal vendor embeds next to the POS agent:
 *
 *   - it checks in with the TMS on the schedule the TMS sets, and at once when a transaction
 *     response carried the "update waiting" flag (processing requirement 6);
 *   - before any download it authenticates the TMS and itself (claim 4) with its DMK;
 *   - it trusts nothing it downloads until the signed metadata says so: a threshold of root
 *     keys (rotated only by a record the old keys sign), a fresh timestamp record, a targets
 *     record signed by a threshold of targets keys, never a version lower than installed,
 *     the length capped, the SHA-256 of the file;
 *   - it downloads in Range slices, resuming after a cut, within the TMS's pace;
 *   - it installs as [0083] says: stops the running application, installs into the inactive
 *     slot, switches atomically, starts the new version and runs its self-check, then
 *     commits or rolls back; it defers an install while the POS has an open batch or an
 *     unsent reversal; and it reports every outcome.
 *
 * Files (all under the terminal's data directory DIR):
 *   DIR/tms/client.ini   [tms] host, port, tls_ca, tls_cert, tls_key, serial, model,
 *                        timeout_ms, max_package_bytes
 *   DIR/tms/root.json    the trusted root record (provisioned, then rotated)
 *   DIR/tms/dmk.sealed   the DMK, sealed by the terminal's secure store (the PIN pad)
 *   DIR/tms/state        schedule, last timestamp version, reports not yet delivered
 *   DIR/tms/download/    SHA256.part while downloading
 *   DIR/apps/NAME/       slots a/ and b/ (manifest, program or params), current -> a|b,
 *                        trial while a new version is on trial
 */
#ifndef PX_DEVICE_TMSCLIENT_H
#define PX_DEVICE_TMSCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/tuf.h"
#include "lib/err.h"
#include "lib/limits.h"

typedef struct tmsc_config {
    char data_dir[PX_PATH_MAX];
    char host[256];
    int64_t port;
    char tls_ca[PX_PATH_MAX];   /* "" = plain HTTP (tests, the demo); else HTTPS */
    char tls_cert[PX_PATH_MAX]; /* optional client certificate (mutual TLS) */
    char tls_key[PX_PATH_MAX];
    char serial[PX_TMS_SERIAL_MAX];
    char model[PX_TMS_NAME_MAX];
    int64_t timeout_ms;
    int64_t max_package_bytes;
} tmsc_config;

/* What the terminal lends the updater (the POS agent, or a test). Any may be NULL. */
typedef struct tmsc_hooks {
    /* 1 with the reason when an install must wait (an open batch, an unsent reversal). */
    int (*busy)(void *ud, char *why, size_t whysz);
    /* Seal / unseal the DMK with the terminal's secure store (the PIN pad). Required. */
    int (*seal)(void *ud, const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *outlen,
                px_error *e);
    int (*unseal)(void *ud, const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *outlen,
                  px_error *e);
    /* A check-in succeeded: the "update waiting" flag has been answered. */
    void (*checked_in)(void *ud);
    /* Download progress of release name. */
    void (*progress)(void *ud, const char *name, int64_t done, int64_t total);
    /* A line for the operator ("verifying the metadata"). */
    void (*say)(void *ud, const char *line);
    void *ud;
} tmsc_hooks;

/* Defaults: port 7000 on 127.0.0.1, 30 s, packages up to 64 MiB. */
void tmsc_config_defaults(tmsc_config *c, const char *data_dir);
/* Read DIR/tms/client.ini over c. PX_ENOTFOUND when the terminal was never provisioned. */
int tmsc_config_load(tmsc_config *c, px_error *e);

/* Factory provisioning: open the DMK's TR-31 key block with the KBPK the custodians form
 * from clear components (hex, each with its check value), check its usage (K0) and check
 * value, seal it with hooks->seal; verify root_json on its own signatures; write client.ini,
 * root.json and dmk.sealed. */
typedef struct tmsc_provision_args {
    const char *dmk_block;
    const char *const *kbpk_components; /* "HEX" or "HEX:KCV", 2..3 */
    size_t ncomponents;
    const char *dmk_kcv; /* may be NULL */
    const void *root_json;
    size_t root_len;
} tmsc_provision_args;
int tmsc_provision(const tmsc_config *c, const tmsc_provision_args *a, const tmsc_hooks *h,
                   px_error *e);

typedef struct tmsc_offer {
    char campaign[PX_TMS_NAME_MAX];
    char name[PX_TMS_NAME_MAX];
    char kind[8];
    char version[PX_TMS_VERSION_MAX];
    int64_t length;
    char sha256[TUF_SHA256_HEX];
    int64_t slice_bytes;
} tmsc_offer;

typedef struct tmsc_checkin_result {
    tmsc_offer offers[PX_TMS_UPDATES_MAX];
    size_t noffers;
    int64_t next_checkin_ms;
    int64_t server_time_ms;
} tmsc_checkin_result;

/* Check in: who, model, installed versions, a fresh nonce (echoed back, or refused). */
int tmsc_checkin(const tmsc_config *c, const tmsc_hooks *h, tmsc_checkin_result *out, px_error *e);

/* The outcome of one update, as reported. */
typedef struct tmsc_outcome {
    tmsc_offer offer;
    char status[16]; /* installed, rolled_back, failed, deferred, "" */
    char reason[PX_TMS_REASON_MAX];
} tmsc_outcome;

typedef struct tmsc_run_result {
    tmsc_checkin_result checkin;
    tmsc_outcome outcomes[PX_TMS_UPDATES_MAX];
    size_t noutcomes;
    size_t reports_sent, reports_pending;
} tmsc_run_result;

/* One whole pass: finish an interrupted trial, deliver pending reports, check in, and for
 * each update offered: metadata, authentication, download, install (or defer), report.
 * PX_OK when it ran (each outcome says how its update went); an error when it could not
 * reach or trust the TMS at all (nothing installed, the running version untouched). */
int tmsc_run(const tmsc_config *c, const tmsc_hooks *h, tmsc_run_result *out, px_error *e);

/* Whether a pass is due now: the flag (flagged) or the schedule. *next_ms (may be NULL)
 * receives the next scheduled check-in (0 = never checked in). */
int tmsc_is_due(const tmsc_config *c, int flagged, int64_t now, int64_t *next_ms);

/* Installed applications and parameter sets: name, version, slot. */
typedef struct tmsc_app {
    char name[PX_TMS_NAME_MAX];
    char kind[8];
    char version[PX_TMS_VERSION_MAX];
    char slot[2];
    char sha256[TUF_SHA256_HEX];
} tmsc_app;
int tmsc_apps(const tmsc_config *c, tmsc_app *out, size_t max, size_t *n, px_error *e);

/* `possum pos update ...` (docs/update-protocol.md "On the terminal"): provision, check,
 * run, auto, status. argv[0] is "update". Exit 0 ok, 1 failed, 2 usage. */
int tmsclient_cli(int argc, char **argv);

/* For the POS agent: after a response with processing requirement 6, check in at once (a
 * whole pass) for the terminal in data_dir. Output goes to stdout. 0 ok, 1 failed. */
int tmsclient_on_flag(const char *data_dir);

#endif
