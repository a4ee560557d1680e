/*
 * tmsc_int.h: inside the terminal-side updater (tmsclient.h).
 */
#ifndef PX_DEVICE_TMSC_INT_H
#define PX_DEVICE_TMSC_INT_H

#include <jansson.h>
#include <openssl/ssl.h>

#include "device/tmsclient/tmsclient.h"
#include "lib/buf.h"

#define TMSC_MOD "tmsclient"
#define TMSC_REPORTS_MAX 32           /* reports kept until the TMS has them */
#define TMSC_RETRY_WAIT_MAX_MS 600000 /* longest total wait on 429/503 for one download */
#define TMSC_CUTS_MAX 8               /* connection cuts survived in one download */

/* ---- a small blocking HTTP/1.1 client (keep-alive, Content-Length bodies only) -------- */

typedef struct tmsc_http tmsc_http;

typedef struct tmsc_resp {
    int status;
    int64_t content_length;
    int64_t range_first, range_last, range_total; /* Content-Range, -1 when absent */
    int64_t retry_after_ms;                       /* Retry-After-Ms / Retry-After, 0 none */
    px_buf body;                                  /* JSON bodies (not file bodies) */
} tmsc_resp;

int tmsc_http_open(const tmsc_config *c, tmsc_http **out, px_error *e);
void tmsc_http_close(tmsc_http *h);
void tmsc_resp_init(tmsc_resp *r);
void tmsc_resp_free(tmsc_resp *r);

/* One request (reconnecting once if the kept-alive connection was closed). extra: header
 * lines ending in CRLF, or NULL. With fd >= 0, a 200/206 body is written to fd at offset
 * fd_off (as it arrives, so a cut keeps what came), else it goes to resp->body. */
int tmsc_http_request(tmsc_http *h, const char *method, const char *path, const char *extra,
                      const void *body, size_t len, int fd, int64_t fd_off, tmsc_resp *resp,
                      px_error *e);

/* The JSON object of an answer, or the server's error message in e ("409 conflict: ..."). */
int tmsc_resp_json(const tmsc_resp *r, json_t **out, px_error *e);

/* ---- files ------------------------------------------------------------------------------ */

void tmsc_path(const tmsc_config *c, const char *rel, char *out, size_t outsz);
int tmsc_mkdirs(const char *path, px_error *e);
/* Write a whole file atomically (tmp, fsync, rename, fsync of the directory). */
int tmsc_write_file(const char *path, const void *data, size_t n, int mode, px_error *e);
/* Read a whole file (at most max bytes) into out. PX_ENOTFOUND when it is missing. */
int tmsc_read_file(const char *path, size_t max, px_buf *out, px_error *e);
int tmsc_fsync_dir(const char *dir);
/* SHA-256 (hex) and length of a file. */
int tmsc_file_sha256(const char *path, char out[TUF_SHA256_HEX], int64_t *len, px_error *e);

/* ---- state ------------------------------------------------------------------------------- */

typedef struct tmsc_report {
    char campaign[PX_TMS_NAME_MAX];
    char status[16];
    char name[PX_TMS_NAME_MAX];
    char version[PX_TMS_VERSION_MAX];
    char reason[PX_TMS_REASON_MAX];
} tmsc_report;

typedef struct tmsc_state {
    int64_t timestamp_version;
    int64_t last_checkin_ms, next_checkin_ms;
    int64_t period_ms, anchor_ms, jitter_ms;
    tmsc_report reports[TMSC_REPORTS_MAX];
    size_t nreports;
} tmsc_state;

int tmsc_state_load(const tmsc_config *c, tmsc_state *s, px_error *e);
int tmsc_state_save(const tmsc_config *c, const tmsc_state *s, px_error *e);
/* Queue a report (the oldest is dropped past TMSC_REPORTS_MAX). */
void tmsc_state_queue(tmsc_state *s, const tmsc_offer *o, const char *status, const char *reason);

/* ---- slots (slots.c) ----------------------------------------------------------------------- */

/* The installed version of name (0 and "" when none). */
int tmsc_installed(const tmsc_config *c, const char *name, char version[PX_TMS_VERSION_MAX],
                   int64_t *num);

/* Install the verified file for release t, as [0083] says. status receives "installed",
 * "rolled_back" or "failed", reason why. PX_OK when it ran (status says how). */
int tmsc_install(const tmsc_config *c, const tmsc_hooks *h, const tuf_target *t,
                 const char *campaign, const char *file, char status[16], char *reason,
                 size_t reasonsz, px_error *e);

/* A trial interrupted by a crash or power cut: roll back to the previous version and queue
 * the report. */
int tmsc_recover(const tmsc_config *c, const tmsc_hooks *h, tmsc_state *s, px_error *e);

void tmsc_say(const tmsc_hooks *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
