/*
 * phonepay_int.h: private to src/host/phonepay/ (and its tests). The published interface is
 * phonepay.h (switch) and phonepay_recon.h (possum recon); docs/phonepay.md is the story.
 */
#ifndef PX_HOST_PHONEPAY_INT_H
#define PX_HOST_PHONEPAY_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "host/phonepay/phonepay.h"
#include "hsm/hsm.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/limits.h"
#include "net/net.h"
#include "store/store.h"

#define PHONEPAY_MOD "phonepay"

/* Named HSM keys phonepay creates on first use when missing. */
#define PHONEPAY_KEY_CARD_DEFAULT "phonepay.card" /* D0 AES-256: payee cards at rest */
#define PHONEPAY_KEY_MAC_DEFAULT "phonepay.mac"   /* M6 AES-256: card binding, OTP digests */

#define PHONEPAY_CARD_BLOCK 32 /* padded card number: length byte, digits, random fill */
#define PHONEPAY_CARD_ENC_LEN (16 + PHONEPAY_CARD_BLOCK) /* IV || AES-CBC */
#define PHONEPAY_MAC_LEN 16                              /* AES-CMAC */
#define PHONEPAY_OTP_DIGITS 6
#define PHONEPAY_SALT_LEN 16
#define PHONEPAY_TOKEN_LEN 32 /* bearer token bytes (64 hex on the wire) */
#define PHONEPAY_MASKED_PAN_MAX 24

/* [phonepay] (docs/phonepay.md lists every key). */
typedef struct phonepay_config {
    net_listener_config api;      /* api_listen, api_tls_*, ...: the payee REST API */
    int api_enabled;              /* api_listen given (the CLI never listens) */
    int64_t lookup_ttl_ms;        /* a lookup reference is good this long */
    int64_t rate_window_ms;       /* lookup rate-limit window */
    int64_t terminal_lookups_max; /* lookups per terminal per window */
    int64_t terminal_misses_max;  /* "not registered" answers per terminal per window */
    int64_t payee_lookups_max;    /* lookups of one payee number per window */
    int64_t otp_ttl_ms;           /* a one-time code is good this long */
    int64_t otp_attempts_max;     /* wrong codes before the challenge is void */
    int64_t otp_sends_max;        /* codes sent to one number per otp_window_ms */
    int64_t otp_window_ms;
    int64_t session_ttl_ms; /* bearer token lifetime after a confirmation */
    int bin_check;          /* refuse payer cards of banks not in phonepay_bin */
    char card_key[PX_HSM_LABEL_MAX];
    char mac_key[PX_HSM_LABEL_MAX];
    char sms_url[PX_PHONEPAY_URL_MAX]; /* Kannel sendsms URL; "" = no SMS */
    char sms_username[PX_PHONEPAY_CRED_MAX];
    char sms_password_env[PX_PHONEPAY_CRED_MAX]; /* variable holding the password */
    char sms_from[PX_PHONEPAY_CRED_MAX];
    char sms_signature[PX_PHONEPAY_CRED_MAX]; /* prefix of every SMS, e.g. 【possum】 */
    char webhook_url[PX_PHONEPAY_URL_MAX];    /* "" = no webhook */
    char webhook_secret_env[PX_PHONEPAY_CRED_MAX];
    int64_t outbox_interval_ms;    /* how often the worker looks for due items */
    int64_t outbox_attempts_max;   /* deliveries tried before an item is failed */
    int64_t outbox_backoff_min_ms; /* first retry delay; doubles ... */
    int64_t outbox_backoff_max_ms; /* ... up to this */
    int64_t notify_timeout_ms;     /* one HTTP delivery */
    net_link_config provider;      /* provider_connect ...: recon's 0220 credits */
    int provider_enabled;
    int64_t credit_timeout_ms;      /* wait for a 0230 */
    net_tls_config notify_tls;      /* notify_tls_ca/_cert/_key: https SMS or webhook URLs */
    char clearing_dir[PX_PATH_MAX]; /* where recon finds clearing-YYYYMMDD.csv */
    char currency[4];
    hsm_config hsm; /* [hsm] if present, then hsm_* keys here */
} phonepay_config;

void phonepay_config_default(phonepay_config *c);
int phonepay_config_bind(px_config *cfg, phonepay_config *out, px_error *e);

struct phonepay {
    phonepay_config cfg;
    store *st; /* own connection, event-loop thread (or the CLI) only */
    int own_store;
    hsm *h;
    int own_hsm;                    /* 1: opened by phonepay_new, closed with it */
    hsm_key *card_key;              /* D0 */
    hsm_key *mac_key;               /* M6 */
    struct phonepay_outbox *outbox; /* NULL in the CLI: items wait for a daemon */
    int kick;                       /* notifications queued in the open transaction */
};

/* Build a phonepay on an open store (not taken) with cfg (copied): opens the HSM and the
 * two named keys (created when missing). For the service, the CLI and tests. */
int phonepay_new(const phonepay_config *cfg, store *st, phonepay **out, px_error *e);
/* phonepay_new on the hsm h the caller keeps (possumd's, px_daemon_hsm) instead of opening
 * cfg->hsm; h must outlive the phonepay. */
int phonepay_new_hsm(const phonepay_config *cfg, store *st, hsm *h, phonepay **out, px_error *e);

/* ---- text.c: names, masking, messages ---- */

/* 1 if s is a payee name: valid UTF-8, 1..PX_PHONEPAY_NAME_CHARS code points, no control
 * characters, no leading/trailing space. */
int phonepay_name_is_valid(const char *s, const char **why);
/* The name with its second code point replaced by '*' ([0042], [0048]): 张三丰 -> 张*丰,
 * 李四 -> 李*; a one-character name is shown as is. */
int phonepay_name_mask(const char *name, char *out, size_t outsz);
/* "138****5678" */
void phonepay_mobile_mask(const char *mobile, char out[PHONEPAY_MOBILE_LEN + 1]);
/* "1234.56" from fen */
void phonepay_amount_format(int64_t amount_minor, char *out, size_t outsz);
/* 1 if pan is 12..19 digits with a good Luhn check digit. */
int phonepay_pan_is_valid(const char *pan);

/* ---- card.c: card numbers at rest (HSM) ---- */

typedef struct phonepay_card_sealed {
    uint8_t enc[PHONEPAY_CARD_ENC_LEN];
    uint8_t mac[PHONEPAY_MAC_LEN];
    char masked[PHONEPAY_MASKED_PAN_MAX];
} phonepay_card_sealed;

/* Encrypt pan under the card key and bind it to mobile with the MAC key. */
int phonepay_card_seal(phonepay *pp, const char *mobile, const char *pan, phonepay_card_sealed *out,
                       px_error *e);
/* Verify the binding to mobile, then decrypt into pan (PHONEPAY_PAN_MAX). PX_EAUTH when the
 * stored value was tampered with or moved to another number. */
int phonepay_card_open(phonepay *pp, const char *mobile, const uint8_t *enc, size_t enclen,
                       const uint8_t *mac, size_t maclen, char pan[PHONEPAY_PAN_MAX], px_error *e);
/* CMAC under the MAC key over "label|" + data. */
int phonepay_mac(phonepay *pp, const char *label, const uint8_t *data, size_t n,
                 uint8_t out[PHONEPAY_MAC_LEN], px_error *e);

/* ---- otp.c: one-time codes ---- */

/* A fresh 6-digit code and salt; digest = CMAC("otp|" mobile | salt | code). */
int phonepay_otp_new(phonepay *pp, const char *mobile, char code[PHONEPAY_OTP_DIGITS + 1],
                     uint8_t salt[PHONEPAY_SALT_LEN], uint8_t digest[PHONEPAY_MAC_LEN],
                     px_error *e);
/* PX_OK when code matches the digest (constant time), PX_EAUTH when not, PX_EFORMAT when it
 * is not 6 digits. */
int phonepay_otp_check(phonepay *pp, const char *mobile, const char *code, const uint8_t *salt,
                       size_t saltlen, const uint8_t *digest, size_t digestlen, px_error *e);

/* ---- rate.c: fixed-window counters in the store, shared by every node ---- */

/* Count one hit on key in the window of window_ms containing now_ms (in the caller's open
 * transaction); *count = hits in this window including this one. */
int phonepay_rate_hit(store *st, const char *key, int64_t now_ms, int64_t window_ms, int64_t *count,
                      px_error *e);
/* Hits on key in the current window, without counting. */
int phonepay_rate_peek(store *st, const char *key, int64_t now_ms, int64_t window_ms,
                       int64_t *count, px_error *e);

/* ---- outbox.c: notifications ---- */

typedef enum phonepay_event {
    PHONEPAY_EV_OTP = 0,   /* a one-time code (body wiped once delivered) */
    PHONEPAY_EV_DEBIT = 1, /* payer: debited ([0054]) */
    PHONEPAY_EV_CREDIT = 2 /* payee: credited, with the payer's number ([0055]) */
} phonepay_event;

/* Queue text for mobile on every configured channel, in the caller's open transaction.
 * key makes it idempotent: queueing the same key again adds nothing. The running outbox
 * is woken when the transaction commits (phonepay_txn). */
int phonepay_notify(phonepay *pp, const char *key, phonepay_event ev, const char *mobile,
                    const char *text, int64_t now_ms, px_error *e);

/* The outbox deliverer: a timer on the daemon's event loop claims due items (a lease in the
 * store, so several nodes never send one twice at once), sends each with libevent's HTTP
 * client without blocking the loop, and records the outcome (sent, or retried with
 * exponential backoff up to outbox_attempts_max, then failed). */
typedef struct phonepay_outbox phonepay_outbox;
int phonepay_outbox_new(phonepay *pp, struct event_base *base, phonepay_outbox **out, px_error *e);
void phonepay_outbox_kick(phonepay_outbox *ob); /* a pass soon (new items) */
size_t phonepay_outbox_in_flight(const phonepay_outbox *ob);
void phonepay_outbox_drain(phonepay_outbox *ob); /* no new passes */
void phonepay_outbox_free(phonepay_outbox *ob);  /* cancels what is in flight; NULL ok */

/* Kannel's sendsms URL for one message (password from the environment at send time). */
int phonepay_sms_url(const phonepay_config *cfg, const char *password, const char *to,
                     const char *text, px_buf *out, px_error *e);
/* The webhook body: {"id","event","to","text","created_ms"}. */
int phonepay_webhook_body(const char *id, const char *event, const char *to, const char *text,
                          int64_t created_ms, px_buf *out, px_error *e);

/* ---- payee.c: registration, card update, confirmation, sessions ([0038], claim 2) ---- */

typedef enum phonepay_otp_purpose {
    PHONEPAY_OTP_REGISTER = 0,
    PHONEPAY_OTP_CARD = 1,
    PHONEPAY_OTP_LOGIN = 2
} phonepay_otp_purpose;

/* What the REST API answers; status is the HTTP status to use on failure. */
typedef struct phonepay_payee_view {
    char mobile[PHONEPAY_MOBILE_LEN + 1];
    char name[PHONEPAY_NAME_MAX];
    char status[16];
    char card_masked[PHONEPAY_MASKED_PAN_MAX];
    char pending_card_masked[PHONEPAY_MASKED_PAN_MAX];
    int64_t created_ms, updated_ms;
    int64_t otp_expires_ms;
} phonepay_payee_view;

int phonepay_payee_register(phonepay *pp, const char *name, const char *mobile, const char *card,
                            phonepay_payee_view *out, px_error *e);
int phonepay_payee_card_update(phonepay *pp, const char *mobile, const char *card,
                               phonepay_payee_view *out, px_error *e);
int phonepay_payee_login(phonepay *pp, const char *mobile, phonepay_payee_view *out, px_error *e);
/* Check the code; apply what it confirms; give a bearer token (hex, 64 + NUL). */
int phonepay_payee_confirm(phonepay *pp, const char *mobile, const char *code,
                           phonepay_payee_view *out, char token[2 * PHONEPAY_TOKEN_LEN + 1],
                           px_error *e);
/* PX_OK when token is a live session of mobile, PX_EAUTH otherwise. */
int phonepay_session_check(phonepay *pp, const char *mobile, const char *token, px_error *e);
int phonepay_payee_get(phonepay *pp, const char *mobile, phonepay_payee_view *out, px_error *e);

/* ---- rest.c ---- */
typedef struct phonepay_rest phonepay_rest;
int phonepay_rest_start(phonepay *pp, struct event_base *base, const char *announce_as,
                        void *daemon, phonepay_rest **out, px_error *e);
void phonepay_rest_free(phonepay_rest *r);

/* ---- credit.c: payee credits after reconciliation ([0055]) ---- */
struct phonepay_recon_report;
/* Send the payee credit (0220 / 210000) of each payment in refs to the provider, one
 * connection for all, and record each outcome (credited + the payee's notification, or
 * the provider's refusal; no answer leaves it to be sent again, identically, next run). */
int phonepay_credit_all(phonepay *pp, const char (*refs)[PHONEPAY_REF_LEN + 1], size_t n, FILE *out,
                        struct phonepay_recon_report *rep, px_error *e);

/* ---- metrics ---- */
/* Count one answer: possum_phonepay_answers_total{step="lookup|payment",code="00"}. Known
 * codes only (a bounded set of series); anything else counts as code="other". */
void phonepay_count_answer(const char *step, const char *code);

/* ---- housekeeping ---- */
/* Delete expired lookups, challenges, sessions and stale rate counters (bounded). */
int phonepay_sweep(phonepay *pp, int64_t now_ms, px_error *e);

/* Run fn(pp, ud) in one store transaction, retried on STORE_ERETRY. */
int phonepay_txn(phonepay *pp, int (*fn)(phonepay *pp, void *ud, px_error *e), void *ud,
                 px_error *e);

#endif
