/*
 * pos.h: the POS terminal agent: what a terminal vendor embeds to talk to the transaction
 * platform (docs/pos.md; the messages are docs/switch-protocol.md section 1).
 *
 * A terminal is a data directory holding its configuration (terminal.ini), its PIN pad
 * (pinpad.keys under device.secret, docs/pinpad.md) and its state (state: STAN, batch,
 * sign-on, pending reversal, the batch's transactions), replaced atomically on every change.
 * The agent is blocking and single-threaded: one call is one flow (a sign-on, a purchase
 * with the reversal it may have to send first, a settlement with its batch upload).
 *
 * Every flow fills a pos_result and returns PX_OK when it has an outcome to show (approved,
 * declined, failed, refused on the terminal); a negative px_err means the terminal itself
 * could not work (its files, its memory) and nothing was sent after the failure.
 * PINs never enter the agent: the caller has the PIN pad build the PIN block
 * (pinpad_pin_entry / pinpad_pin_block on pos_pinpad()) and passes the 8 encrypted bytes.
 */
#ifndef PX_DEVICE_POS_H
#define PX_DEVICE_POS_H

#include <stddef.h>
#include <stdint.h>
#include "device/pinpad/pinpad.h"
#include "lib/err.h"
#include "lib/limits.h"

#define POS_TID_LEN 8
#define POS_MID_LEN 15
#define POS_AMOUNT_MAX 999999999999LL /* n12 fen */
#define POS_STAN_MAX 999999

/* ---- configuration ------------------------------------------------------------------ */

typedef struct pos_config {
    char tid[POS_TID_LEN + 1]; /* field 41 */
    char mid[POS_MID_LEN + 1]; /* field 42 */
    char host[256];            /* the transaction platform */
    int64_t port;
    char tls_ca[PX_PATH_MAX];   /* "" = plain TCP; else TLS checked against this CA */
    char tls_cert[PX_PATH_MAX]; /* optional client certificate (mutual TLS) */
    char tls_key[PX_PATH_MAX];
    int64_t timeout_ms; /* wait for an answer (then: reversal) */
    int64_t connect_timeout_ms;
    char data_dir[PX_PATH_MAX];
    char serial[PX_PINPAD_SERIAL_MAX]; /* the PIN pad's serial number */
    char sw_version[7];                /* header bytes 4-6, e.g. "310000" */
} pos_config;

/* tid 10000001, mid 898100000000001, 127.0.0.1:5000, 30 s answer, 10 s connect,
 * data dir var/pos/TID, serial "PP" + TID, software 310000. */
void pos_config_defaults(pos_config *c);

/* Read DIR/terminal.ini ([pos] tid, mid, host, port, tls_ca, tls_cert, tls_key, timeout_ms,
 * connect_timeout_ms, serial, sw_version) over c; data_dir is kept. PX_ENOTFOUND when the
 * directory holds no terminal. Errors name the file, line and key. */
int pos_config_load(pos_config *c, px_error *e);

/* Check every value (lengths, character classes, ranges); errors name the setting. */
int pos_config_check(const pos_config *c, px_error *e);

/* ---- the terminal ------------------------------------------------------------------- */

typedef struct pos_terminal pos_terminal;

/* Create a terminal in c->data_dir (mode 0700): terminal.ini, a device secret, an empty
 * PIN pad and a fresh state (STAN 000000, batch 000001, not signed on). PX_EEXIST when a
 * terminal is already there. */
int pos_init(const pos_config *c, px_error *e);

/* Open the terminal in c->data_dir with configuration c (already loaded and checked).
 * One process at a time: PX_ESTATE when another holds it for more than 5 s. PX_EAUTH when
 * its PIN pad does not authenticate (docs/pinpad.md). */
int pos_open(const pos_config *c, pos_terminal **out, px_error *e);
void pos_close(pos_terminal *t); /* NULL is fine */

/* The PIN pad, for key loading and PIN entry. Owned by the terminal. */
pinpad *pos_pinpad(pos_terminal *t);
const pos_config *pos_get_config(const pos_terminal *t);

/* ---- cards and results -------------------------------------------------------------- */

typedef struct pos_card {
    char pan[20];    /* 12..19 digits */
    char track2[38]; /* swiped: "PAN=YYMM..." (z..37); "" for manual entry */
    char expiry[5];  /* YYMM for manual entry, "" when not given */
} pos_card;

/* From a typed PAN (with optional expiry YYMM) or a swiped track 2: exactly one of pan and
 * track2. Checks lengths, digits and the Luhn check digit. Errors never quote the number. */
int pos_card_parse(const char *pan, const char *track2, const char *expiry, pos_card *out,
                   px_error *e);

typedef enum pos_outcome {
    POS_APPROVED = 0, /* 39 = 00 and the answer verified */
    POS_DECLINED = 1, /* the platform refused (rsp_code, text) */
    POS_FAILED = 2,   /* no usable answer (timeout, link, bad MAC); money may have moved:
                         a reversal is queued (reversal_pending) */
    POS_REFUSED = 3   /* refused on the terminal before anything was sent (text says why) */
} pos_outcome;

typedef struct pos_result {
    pos_outcome outcome;
    char rsp_code[3];           /* field 39, "" when there was no answer */
    char text[PX_POS_TEXT_MAX]; /* the reason in plain words */
    char stan[7], rrn[13], auth_code[7], batch[7];
    int64_t amount_minor;
    char pan_masked[20];
    int has_balance;
    int64_t balance_minor;            /* balance inquiry (field 54), signed */
    int proc_req;                     /* processing requirement of the answer's header (0, 3, 6) */
    int update_waiting;               /* 6: an update waits at the TMS (seed 000) */
    int resign_required;              /* 3: sign on again */
    int reversal_pending;             /* a reversal is queued on this terminal */
    char payee_name[PX_POS_TEXT_MAX]; /* mobile-number lookup: masked name */
    char lookup_ref[13];
    int settle_balanced; /* settlement: 1 balanced, 0 not (batch uploaded) */
    size_t uploaded;     /* settlement: transactions sent in the batch upload */
    int64_t elapsed_ms;
} pos_result;

/* Meaning of a response code for a person ("insufficient funds"); never NULL. */
const char *pos_rsp_text(const char *code);

/* One line a person reads: "APPROVED  amount 12.34 CNY  auth 123456  RRN 000000000001",
 * "DECLINED 51: insufficient funds", "FAILED: no answer ...". */
void pos_result_format(const pos_result *r, char *out, size_t outsz);

/* "12.34" for 1234. */
void pos_amount_format(int64_t minor, char *out, size_t outsz);
/* "12.34", "12.3", "12" (yuan) into fen; PX_EINVAL otherwise. */
int pos_amount_parse(const char *s, int64_t *minor);

/* ---- flows ---------------------------------------------------------------------------- */

/* Sign on (0800, 60.3 = 003): install the work keys of field 62 in the PIN pad and take the
 * new batch number. Refused when the open batch holds unsettled transactions, unless force
 * (they are then written to DIR/batch-NNNNNN.txt and dropped). */
int pos_signon(pos_terminal *t, int force, pos_result *res, px_error *e);
/* Sign off (0820, 60.3 = 002): on 00 the PIN pad erases the work keys. */
int pos_signoff(pos_terminal *t, pos_result *res, px_error *e);
/* Echo test (0820, 60.3 = 301). */
int pos_echo(pos_terminal *t, pos_result *res, px_error *e);

/* Purchase (0200, 3 = 000000). pin_block: 8 bytes from the PIN pad, or NULL. */
int pos_purchase(pos_terminal *t, const pos_card *card, int64_t amount_minor,
                 const uint8_t *pin_block, pos_result *res, px_error *e);
/* Balance inquiry (0200, 3 = 310000): res->balance_minor. */
int pos_balance(pos_terminal *t, const pos_card *card, const uint8_t *pin_block, pos_result *res,
                px_error *e);
/* Void (0200, 3 = 200000) of a purchase of the open batch, found by its STAN and RRN.
 * card NULL: the PAN the PIN pad sealed at the sale (then no PIN). */
int pos_void(pos_terminal *t, const char *rrn, const char *stan, const pos_card *card,
             const uint8_t *pin_block, pos_result *res, px_error *e);
/* Send the pending reversal now (it also goes before every transaction by itself). */
int pos_reversal_flush(pos_terminal *t, pos_result *res, px_error *e);
/* Settlement (0500) of the open batch; batch upload (0320) when the platform answers not
 * balanced. The batch closes either way (written to DIR/batch-NNNNNN.txt); sign on again
 * to open the next. */
int pos_settle(pos_terminal *t, pos_result *res, px_error *e);

/* Mobile-number payment (seed 002), two steps with the payer's confirmation between:
 * lookup (0100, 3 = 380000) gives res->payee_name (masked by the platform) and
 * res->lookup_ref; pay (0200, 3 = 480000) with the same numbers and amount. Numbers are
 * checked here first (mobile.h): a bad one is refused before any message. */
int pos_phonepay_lookup(pos_terminal *t, const char *payee, const char *payer, int64_t amount_minor,
                        pos_result *res, px_error *e);
int pos_phonepay_pay(pos_terminal *t, const char *payee, const char *payer, const char *lookup_ref,
                     int64_t amount_minor, const pos_card *card, const uint8_t *pin_block,
                     pos_result *res, px_error *e);

/* The TMS check-in (later issue) clears the update flag once it has run. */
int pos_update_flag_clear(pos_terminal *t, px_error *e);

/* ---- what the terminal knows --------------------------------------------------------- */

typedef struct pos_status {
    uint32_t stan; /* last STAN used */
    uint32_t batch;
    int signed_on;
    int update_waiting;
    int last_proc_req;
    int reversal_pending;
    char reversal_stan[7];
    char reversal_reason[3];
    int64_t reversal_amount_minor;
    int reversal_sends;
    size_t batch_count; /* transactions in the open batch, voids included */
    size_t debit_count; /* approved purchases and mobile payments (voided or not) */
    int64_t debit_minor;
    size_t credit_count; /* approved voids (docs/switch-protocol.md, settlement) */
    int64_t credit_minor;
    pinpad_key_info keys[PINPAD_SLOTS];
} pos_status;

void pos_status_get(const pos_terminal *t, pos_status *out);

typedef struct pos_batch_entry {
    char kind; /* 'S' purchase, 'M' mobile-number payment, 'V' void */
    char stan[7], rrn[13], auth_code[7], proc[7];
    int64_t amount_minor;
    char pan_masked[20];
    int voided;
} pos_batch_entry;

/* Entry i (0-based) of the open batch; PX_ENOTFOUND past the end. */
int pos_batch_get(const pos_terminal *t, size_t i, pos_batch_entry *out);

#endif
