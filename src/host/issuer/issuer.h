/*
 * issuer.h: the payment service provider and banks simulator (`issuer` service,
 * docs/issuer.md). A real ISO 8583:1987 ASCII peer of the switch (docs/switch-protocol.md
 * §2): contracted banks by BIN range, cardholder accounts with balances, PIN verification
 * in the HSM (Visa PVV or IBM 3624 offset), debits, credits, voids and reversals, each in
 * one store transaction, and the daily clearing file (§3).
 *
 * The core (issuer_core) is what the service and the `possum issuer` CLI share: a store
 * connection, an hsm and the keys the issuer uses. It is used by one thread at a time.
 */
#ifndef PX_HOST_ISSUER_H
#define PX_HOST_ISSUER_H

#include <stddef.h>
#include <stdint.h>

#include "hsm/hsm.h"
#include "iso8583/iso8583.h"
#include "lib/config.h"
#include "lib/err.h"
#include "net/net.h"
#include "store/store.h"

/* Field 39 codes the issuer answers with (docs/switch-protocol.md §2). */
#define ISSUER_RC_APPROVED "00"
#define ISSUER_RC_DO_NOT_HONOUR "05"
#define ISSUER_RC_INVALID_TXN "12"
#define ISSUER_RC_INVALID_AMOUNT "13"
#define ISSUER_RC_INVALID_CARD "14"
#define ISSUER_RC_NO_SUCH_ISSUER "15"
#define ISSUER_RC_ORIGINAL_NOT_FOUND "25"
#define ISSUER_RC_FORMAT_ERROR "30"
#define ISSUER_RC_NOT_SUPPORTED "40"
#define ISSUER_RC_INSUFFICIENT_FUNDS "51"
#define ISSUER_RC_EXPIRED_CARD "54"
#define ISSUER_RC_INCORRECT_PIN "55"
#define ISSUER_RC_EXCEEDS_LIMIT "61"
#define ISSUER_RC_RESTRICTED_CARD "62"
#define ISSUER_RC_PIN_TRIES_EXCEEDED "75"
#define ISSUER_RC_DUPLICATE "94"
#define ISSUER_RC_SYSTEM_ERROR "96"

/* Named HSM keys the issuer creates on first start when they are missing. */
#define ISSUER_KEY_PAN "issuer.pan"             /* D0 AES-256: encrypts stored PANs */
#define ISSUER_KEY_PAN_INDEX "issuer.pan-index" /* M6 AES-256: PAN tokens, request MACs */
/* Demo keys, formed from the public components in docs/issuer.md (seed_demo only). */
#define ISSUER_DEMO_ZPK "demo.zpk"                /* P0: the zone PIN key shared with the switch */
#define ISSUER_DEMO_PVK_PVV "issuer.demo.pvk-pvv" /* V2: Visa PVV */
#define ISSUER_DEMO_PVK_IBM "issuer.demo.pvk-ibm" /* V1: IBM 3624 */

#define ISSUER_INSTITUTION_MAX 12 /* n..11 and NUL */

/* [issuer] (docs/issuer.md lists every key). */
typedef struct issuer_config {
    net_listener_config listen;                  /* listen, max_frame, ..., TLS keys */
    char institution_id[ISSUER_INSTITUTION_MAX]; /* our id: field 100 of every answer */
    char zpk[PX_HSM_KEYBLOCK_MAX];               /* the ZPK: a key block, or a named key's label */
    char clearing_dir[PX_PATH_MAX];              /* where clearing files go */
    int64_t latency_ms;                          /* hold every answer this long ... */
    int64_t latency_jitter_ms;                   /* ... plus 0..this (uniform) */
    int64_t decline_every_n;                     /* 0 off; else every n-th new 0200 is declined */
    int64_t decline_rate;                        /* 0..100: percent of new 0200s declined */
    char decline_code[3];                        /* the code an injected decline carries */
    int64_t drop_every_n;                        /* 0 off; else every n-th 0200 is not answered */
    int64_t pin_tries_max;                       /* wrong PINs in a row before 75 */
    int64_t amount_limit_minor;                  /* largest debit (61 above it); 0 = none */
    int require_pin;                             /* debits without field 52 get 55 */
    int seed_demo;                               /* create the demo banks, cards and keys */
    int clearing_at_day_end;                     /* the service writes each day's file itself */
    hsm_config hsm;                              /* [hsm] if present, then hsm_* keys here */
} issuer_config;

void issuer_config_default(issuer_config *c);

/* Fill out from [issuer] (and [hsm] when the file has one; the hsm_backend, hsm_lmk_file,
 * hsm_audit_file, hsm_pkcs11_module, hsm_pkcs11_token and hsm_pkcs11_key keys of [issuer]
 * override it). Errors name file, line and key. */
int issuer_config_bind(px_config *c, issuer_config *out, px_error *e);

typedef struct issuer_core issuer_core;

/* Open the HSM (per cfg->hsm, with st for named keys), create the PAN keys if missing,
 * seed the demo when cfg->seed_demo, and load the ZPK (a missing ZPK is an error unless
 * need_zpk is 0: the CLI needs none). st stays the caller's; it must outlive the core. */
int issuer_core_open(const issuer_config *cfg, store *st, int need_zpk, issuer_core **out,
                     px_error *e);
void issuer_core_close(issuer_core *c); /* NULL is fine */

/* Create the demo banks, BIN ranges, keys and cardholders (docs/issuer.md); what exists
 * already is kept, so running it twice changes nothing. */
int issuer_seed_demo(issuer_core *c, px_error *e);

/* What one request produced. */
typedef struct issuer_reply {
    uint8_t data[PX_ISO_MSG_MAX]; /* the packed response (no frame length) */
    size_t len;                   /* 0: nothing to send (a response MTI, or unreadable) */
    char rc[3];                   /* field 39 sent, "" when none */
    int duplicate;                /* 1: the stored answer to an earlier identical request */
    int close;                    /* 1: the message was unreadable: close the connection */
} issuer_reply;

/* Answer one message received from the switch. raw/rawlen are its bytes (after the frame
 * length), req the result of iso8583_unpack (unpack_rc its return code, why its error).
 * inject_decline: answer a new financial request with cfg->decline_code without looking
 * at the account (tests). Never fails: store or HSM trouble becomes code 96. */
void issuer_handle(issuer_core *c, const uint8_t *raw, size_t rawlen, const iso8583_msg *req,
                   int unpack_rc, const px_error *why, int inject_decline, issuer_reply *out);

/* ---- operators ---- */

typedef enum issuer_pin_method { ISSUER_PIN_PVV = 0, ISSUER_PIN_IBM3624 = 1 } issuer_pin_method;

/* A new cardholder (possum issuer cardholder add). The PAN is checked (12..19 digits,
 * Luhn, a BIN of bank_id), encrypted and tokenised in the HSM, and never stored clear. */
typedef struct issuer_cardholder_new {
    const char *pan;
    const char *name; /* 1..64 bytes of UTF-8 */
    const char *bank_id;
    const char *expiry; /* YYMM */
    issuer_pin_method method;
    const char *pvk_label; /* V2 (PVV) or V1 (IBM 3624) named key */
    int pvki;              /* PVV key index 0..9 */
    const char *pin_check; /* the PVV (4 digits) or the offset (4..12 digits) */
    int64_t balance_minor;
    const char *currency; /* "156" */
} issuer_cardholder_new;

/* Add a cardholder. PX_EEXIST when the card is already there. */
int issuer_cardholder_add(issuer_core *c, const issuer_cardholder_new *n, px_error *e);

/* Compute a PVV or IBM 3624 offset in the HSM from a PIN block encrypted under pin_key
 * (a P0 named key) for pan, with the named pvk: for `cardholder add --pin-block`. */
int issuer_pin_check_compute(issuer_core *c, issuer_pin_method method, const char *pan,
                             const char *pin_key, const uint8_t *pin_block, size_t n,
                             const char *pvk_label, int pvki, char out[13], px_error *e);

/* A cardholder as operators see it. */
typedef struct issuer_cardholder_row {
    char pan_masked[20];
    char name[65];
    char bank_id[17];
    char expiry[5];
    char pin_method[8];
    char status[8];
    int64_t pin_tries;
    int64_t balance_minor;
    char currency[4];
} issuer_cardholder_row;

/* Call fn for every cardholder (bank, then first 6 / last 4 order); fn returning non-zero
 * stops the walk and is returned. */
int issuer_cardholders_list(store *st, int (*fn)(void *ud, const issuer_cardholder_row *r),
                            void *ud, px_error *e);

/* Add a bank (contracted 1 or 0) and a BIN range of it. PX_EEXIST if there already. */
int issuer_bank_add(store *st, const char *bank_id, const char *name, int contracted, px_error *e);
int issuer_bin_range_add(store *st, const char *bank_id, const char *low, const char *high,
                         px_error *e);

/* Reset a card's wrong-PIN counter (after 75). PX_ENOTFOUND if no such card. */
int issuer_cardholder_reset_pin_tries(issuer_core *c, const char *pan, px_error *e);

/* ---- clearing (docs/switch-protocol.md §3) ---- */

/* Write dir/clearing-YYYYMMDD.csv for date ("YYYY-MM-DD"): the header and every entry
 * approved that business day (UTC) in approval order. Written to a temporary file and
 * renamed, so a reader never sees half a file. path gets the file's path. */
int issuer_clearing_write(store *st, const char *date, const char *dir, char *path, size_t pathsz,
                          size_t *lines, px_error *e);

#endif
