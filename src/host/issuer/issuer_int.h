/* issuer_int.h: private to src/host/issuer (and its unit tests). */
#ifndef PX_HOST_ISSUER_INT_H
#define PX_HOST_ISSUER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/pinblock.h"
#include "host/issuer/issuer.h"

#define ISSUER_TOKEN_HEX 32 /* PAN token: 16 bytes of AES-CMAC, hex */
#define ISSUER_PAN_MAX (CRYPTO_PAN_MAX + 1)
#define ISSUER_MASKED_MAX (CRYPTO_PAN_MAX + 1)
#define ISSUER_NAME_MAX 65
#define ISSUER_BANK_ID_MAX 17

/* ---- requests (msg.c): one parser checks everything a handler relies on ---- */

typedef enum issuer_kind {
    ISSUER_K_NETMGMT = 1,  /* 0800: sign-on 001, sign-off 002, echo 301 */
    ISSUER_K_PURCHASE,     /* 0200, 3 = 000000 */
    ISSUER_K_BALANCE,      /* 0200, 3 = 310000 */
    ISSUER_K_VOID,         /* 0200, 3 = 200000 */
    ISSUER_K_MOBILE_DEBIT, /* 0200, 3 = 400000 */
    ISSUER_K_CREDIT,       /* 0220, 3 = 210000 */
    ISSUER_K_REVERSAL      /* 0420 / 0421 */
} issuer_kind;

/* Field 90, original data elements: MTI n4, STAN n6, transmission time n10, acquirer n11,
 * forwarding institution n11 (ISO 8583:1987 4.4, field 90). */
typedef struct issuer_orig {
    char mti[5];
    char stan[7];
    char tx_time[11];
    char acquirer[12];
    char forwarding[12];
} issuer_orig;

typedef struct issuer_req {
    issuer_kind kind;
    char mti[5];
    char mti_class[5]; /* the MTI with a repeat made plain: 0421 -> 0420 */
    char proc[7];
    char nmi[4]; /* field 70 (0800) */
    char stan[7];
    char tx_time[11];  /* field 7, MMDDhhmmss UTC */
    char acquirer[12]; /* field 32, "" when absent (0220 may omit it) */
    char rrn[13];
    char terminal[9];
    char merchant[16];
    char currency[4];
    char pan[ISSUER_PAN_MAX]; /* from 2 or 35; wiped by issuer_req_cleanse */
    char expiry[5];           /* YYMM from 14 or 35, "" when neither */
    int64_t amount_minor;     /* -1 when field 4 is absent */
    int has_pin;
    uint8_t pin_block[8]; /* field 52: ISO 9564 format 0 under the ZPK */
    char payee_mobile[12];
    char payer_mobile[12];
    char payee_card[ISSUER_PAN_MAX]; /* field 103 (mobile-number debit) */
    int has_orig;
    issuer_orig orig;
} issuer_req;

/* Parse an unpacked message into r. PX_EFORMAT (e names the field) when a field the
 * message needs is missing or out of range: answer 30. PX_EUNSUPPORTED when the MTI or
 * processing code is not one the issuer serves: answer 40 / 12. */
int issuer_req_parse(const iso8583_msg *m, issuer_req *r, px_error *e);
void issuer_req_cleanse(issuer_req *r);

/* 1 if pan is 12..19 digits with a valid Luhn check digit (ISO/IEC 7812-1 annex B). */
int issuer_pan_is_valid(const char *pan);
/* 1 if s is a mainland China mobile number: 11 digits, 1 then 3..9 (seed 002 [0046]). */
int issuer_mobile_is_valid(const char *s);
/* 1 if the card expired before the month of now_ms (YYMM: valid through that month). */
int issuer_expiry_is_past(const char *yymm, int64_t now_ms);
/* Parse field 90 (42 digits). */
int issuer_orig_parse(const char *f90, issuer_orig *o, px_error *e);
/* Field 54, additional amounts (ISO 8583:1987 4.4): account type 10, amount type 02
 * (available), currency, C/D, 12 digits. out: 21 bytes. */
void issuer_field54(const char *currency, int64_t balance_minor, char out[21]);
/* 1 if the first length(low) digits of pan lie in [low, high] (same-length digit strings). */
int issuer_bin_matches(const char *pan, const char *low, const char *high);
/* 1 if low/high form a BIN range: 6..11 digits each, same length, low <= high. */
int issuer_bin_range_is_valid(const char *low, const char *high);

/* ---- the store (ledger.c); every call runs inside the caller's transaction ---- */

typedef struct issuer_bank_row {
    char bank_id[ISSUER_BANK_ID_MAX];
    char name[ISSUER_NAME_MAX];
    int contracted;
} issuer_bank_row;

typedef struct issuer_account {
    char token[ISSUER_TOKEN_HEX + 1];
    char bank_id[ISSUER_BANK_ID_MAX];
    char pan_masked[ISSUER_MASKED_MAX];
    char expiry[5];
    issuer_pin_method method;
    char pvk_label[PX_HSM_LABEL_MAX];
    int pvki;
    char pin_check[13];
    int64_t pin_tries;
    int64_t balance_minor;
    char currency[4];
    char status[8];
} issuer_account;

typedef struct issuer_entry {
    int64_t id;
    char business_date[11];
    char type[9]; /* purchase, void, reversal, debit, credit */
    char mti[5];
    char acquirer[12];
    char stan[7];
    char tx_time[11];
    char rrn[13];
    char auth_code[7];
    char token[ISSUER_TOKEN_HEX + 1];
    char pan_masked[ISSUER_MASKED_MAX];
    int64_t amount_minor;
    char currency[4];
    char response[3];
    char terminal[9];
    char merchant[16];
    char payee_card_masked[ISSUER_MASKED_MAX];
    char payer_mobile[12];
    int64_t original_id; /* 0 = none */
    int64_t undone_by;   /* 0 = not undone */
    int64_t balance_after;
} issuer_entry;

/* The bank whose longest BIN range holds pan. PX_ENOTFOUND when none. */
int issuer_db_bank_for_pan(store *st, const char *pan, issuer_bank_row *out, px_error *e);
/* The account of a token (row locked on PostgreSQL). PX_ENOTFOUND when none. */
int issuer_db_account_get(store *st, const char *token, issuer_account *out, px_error *e);
int issuer_db_account_insert(store *st, const issuer_account *a, const char *pan_enc,
                             const char *first6, const char *last4, size_t pan_len,
                             const char *name, px_error *e);
int issuer_db_account_set_tries(store *st, const char *token, int64_t tries, px_error *e);
/* balance += delta unless it would go below zero (then PX_ERANGE, nothing changes). */
int issuer_db_account_add(store *st, const char *token, int64_t delta, int64_t *balance,
                          px_error *e);
int issuer_db_entry_insert(store *st, issuer_entry *en, px_error *e); /* sets en->id */
/* The approved entry made by the message (acquirer, stan, tx_time, mti). PX_ENOTFOUND. */
int issuer_db_entry_find(store *st, const char *acquirer, const char *stan, const char *tx_time,
                         const char *mti, issuer_entry *out, px_error *e);
int issuer_db_entry_get(store *st, int64_t id, issuer_entry *out, px_error *e);
/* Mark id undone by `by` (or not undone: by = 0); PX_ESTATE if it already was (by != 0). */
int issuer_db_entry_set_undone(store *st, int64_t id, int64_t by, px_error *e);
/* 1 if a credit for rrn exists. */
int issuer_db_credit_exists(store *st, const char *rrn, int *exists, px_error *e);

/* The stored answer to (acquirer, stan, tx_time, mti_class): PX_ENOTFOUND when none;
 * else its request MAC (hex) and the response bytes. */
int issuer_db_message_get(store *st, const issuer_req *r, char *mac_hex, size_t machexsz,
                          uint8_t *rsp, size_t cap, size_t *len, px_error *e);
int issuer_db_message_put(store *st, const issuer_req *r, const char *mac_hex, const uint8_t *rsp,
                          size_t len, px_error *e);

int issuer_db_bank_get(store *st, const char *bank_id, issuer_bank_row *out, px_error *e);

/* ---- keys and PINs (keys.c) ---- */

typedef struct issuer_pvk_slot {
    char label[PX_HSM_LABEL_MAX];
    hsm_key *key;
    uint64_t used; /* for least-recently-used eviction */
} issuer_pvk_slot;

struct issuer_core {
    issuer_config cfg;
    store *st;
    hsm *h;
    int own_hsm;  /* 1: opened by issuer_core_open, closed with the core */
    hsm_key *zpk; /* NULL when the CLI opened the core without one */
    hsm_key *pan_key;
    hsm_key *index_key;
    issuer_pvk_slot pvk[PX_ISSUER_PVK_CACHE];
    uint64_t pvk_clock;
    uint32_t rng; /* xorshift state: auth codes' spread, not security */
};

/* issuer_core_open on the hsm h the caller keeps (possumd's, px_daemon_hsm) instead of
 * opening cfg->hsm; h must outlive the core. */
int issuer_core_open_hsm(const issuer_config *cfg, store *st, hsm *h, int need_zpk,
                         issuer_core **out, px_error *e);

/* The PAN's token: AES-CMAC under issuer.pan-index, 32 hex. */
int issuer_pan_token(issuer_core *c, const char *pan, char out[ISSUER_TOKEN_HEX + 1], px_error *e);
/* The PAN encrypted under issuer.pan: hex of IV (16) || AES-CBC(PAN padded to 32). */
int issuer_pan_encrypt(issuer_core *c, const char *pan, char *out, size_t outsz, px_error *e);
/* AES-CMAC under issuer.pan-index over n bytes, hex. */
int issuer_mac_hex(issuer_core *c, const uint8_t *p, size_t n, char out[33], px_error *e);

/* Verify the PIN block (under the ZPK) for pan against the account's PVV or offset.
 * PX_OK when it matches, PX_EAUTH when it does not, PX_ECRYPTO when the block does not
 * decode (a ZPK mismatch), another error when the HSM failed. */
int issuer_pin_verify(issuer_core *c, const issuer_account *a, const char *pan,
                      const uint8_t block[8], px_error *e);

/* IBM 3624 validation data the issuer uses: the 12 PAN digits left of the check digit
 * (the ISO 9564 format 0 account number field). out: 13 bytes. */
void issuer_ibm_validation_data(const char *pan, char out[13]);
#define ISSUER_IBM_DEC_TABLE "0123456789012345" /* IBM 3624 default decimalisation table */

/* A named key loaded (and kept in the cache for PVKs). */
int issuer_pvk_get(issuer_core *c, const char *label, hsm_key **out, px_error *e);

/* Load the named key, creating it with attrs when missing (hsm_key_generate). */
int issuer_key_ensure(issuer_core *c, const char *label, const hsm_key_attrs *a, hsm_key **out,
                      px_error *e);

/* ---- transactions (txn.c) ---- */

/* The answer's code and the balance to show (field 54) for one parsed request, with every
 * change made in the caller's open transaction. */
typedef struct issuer_outcome {
    char rc[3];
    int has_balance;
    int64_t balance_minor;
    char currency[4];
    char auth_code[7];   /* "" unless approved */
    char settle_mmdd[5]; /* field 15: the business day the entry is cleared in */
} issuer_outcome;

/* Run r (a financial kind) against the store. Returns PX_OK with o->rc set, or a store /
 * HSM error (the caller rolls back and answers 96, or retries a retryable one). */
int issuer_txn_run(issuer_core *c, const issuer_req *r, int64_t now_ms, issuer_outcome *o,
                   px_error *e);

/* ---- clearing (clearing.c) ---- */

/* Append s to b as one CSV field (RFC 4180: quoted when it holds , " CR or LF). */
int issuer_csv_field(px_buf *b, const char *s);
/* Append one clearing line for en (with its LF). */
int issuer_clearing_line(px_buf *b, const issuer_entry *en);
#define ISSUER_CLEARING_HEADER                                                                     \
    "date,rrn,stan,type,pan_masked,amount_minor,currency,response,acquirer,terminal,"              \
    "merchant,payee_card_masked,payer_mobile"

#endif
