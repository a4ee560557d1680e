/*
 * phonepay.h: mobile-number payment (seed 002, CN101976403A), the published interface of the
 * `phonepay` service. docs/phonepay.md tells the whole flow; docs/switch-protocol.md carries
 * it on the wire ("Mobile-number payment" in section 1, "mobile-number debit" and "payee
 * credit" in section 2).
 *
 * Who calls what:
 *   - the switch, on a terminal's 0100 with processing code 380000 (payee lookup,
 *     [0047]-[0048]): phonepay_field48_parse, then phonepay_lookup;
 *   - the switch, on a terminal's 0200 with processing code 480000 (payment,
 *     [0050]-[0054]): phonepay_field48_parse, phonepay_payment_begin (contracted-BIN check
 *     and the payee's card for field 103 of the provider's 0200/400000), then
 *     phonepay_payment_result with the provider's answer (queues the payer's SMS);
 *     phonepay_payment_reverse when it reverses an approved debit;
 *   - `possum recon run` (src/app/cmd_recon.c): phonepay_open / phonepay_close and the
 *     reconciliation calls in phonepay_recon.h.
 *
 * The instance: the running service registers itself at start; phonepay_instance() returns
 * it (NULL when [phonepay] is not enabled in this daemon, or before it started). Every call
 * below runs on the daemon's event-loop thread (the phonepay object has its own store
 * connection and HSM session, used by that thread only) and must not be made while the
 * caller holds a store transaction open on the same database file (SQLite has one writer).
 *
 * Card numbers: the payee's card is stored encrypted under an HSM data key and
 * authenticated with an HSM MAC key bound to the payee's mobile number (docs/phonepay.md,
 * "Card numbers at rest"). phonepay_payment_begin is the only function that returns it in
 * the clear, into the caller's buffer, for field 103 of the provider message; the caller
 * wipes it (OPENSSL_cleanse) as soon as the message is packed. Nothing here logs or stores
 * a clear card number, and no error message contains one.
 *
 * Return values: PX_OK when an answer was decided, including refusals (the answer's
 * response_code and text say what the terminal shows); a negative px_err only when the
 * platform failed (store, HSM): the switch then answers 96 and nothing was recorded.
 */
#ifndef PX_HOST_PHONEPAY_H
#define PX_HOST_PHONEPAY_H

#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"
#include "lib/err.h"

#define PHONEPAY_MOBILE_LEN 11 /* mainland-China mobile number: 11 digits */
#define PHONEPAY_REF_LEN 12    /* lookup reference (field 37 of the 0110): 12 digits */
#define PHONEPAY_RRN_LEN 12    /* retrieval reference number on the provider link */
#define PHONEPAY_PAN_MAX 20    /* 12..19 digits and NUL */
#define PHONEPAY_NAME_MAX 160  /* payee name, UTF-8, NUL included (32 code points max) */
#define PHONEPAY_TEXT_MAX 192  /* field 63 text for the terminal, UTF-8, NUL included */

/* Field 39 codes phonepay decides (docs/switch-protocol.md, section 1). */
#define PHONEPAY_RC_APPROVED "00"
#define PHONEPAY_RC_INVALID_TXN "12" /* lookup reference unknown, expired or used */
#define PHONEPAY_RC_INVALID_AMOUNT "13"
#define PHONEPAY_RC_NO_ISSUER "15" /* payer card's bank is not a contracted bank */
#define PHONEPAY_RC_BAD_MOBILE "Q1"
#define PHONEPAY_RC_NOT_REGISTERED "Q2"
#define PHONEPAY_RC_TOO_MANY "Q4"

typedef struct phonepay phonepay;

/* ---- mainland-China mobile numbers (seed claims 10, 12; [0039], [0048]-[0049]) ---- */

/* Mobile numbers are checked with px_mobile_cn_is_valid (lib/mobile_cn.h), the same rule
 * the terminal applies. */

/* ---- field 48 ---- */

typedef struct phonepay_field48 {
    char payee_mobile[PHONEPAY_MOBILE_LEN + 1];
    char payer_mobile[PHONEPAY_MOBILE_LEN + 1];
    char reference[PHONEPAY_REF_LEN + 1]; /* "" in a lookup */
} phonepay_field48;

/* Split field 48: payee n11 ‖ payer n11 (lookup, 22 digits), plus reference n12 (payment,
 * 34 digits) when with_reference. Only lengths and digits are checked here (PX_EFORMAT,
 * answer 30); the numbering rules are checked by phonepay_lookup (answer Q1). */
int phonepay_field48_parse(const char *f48, size_t len, int with_reference, phonepay_field48 *out,
                           px_error *e);

/* ---- the running service ---- */

/* The phonepay of this daemon, or NULL (not enabled, not started, or stopped). */
phonepay *phonepay_instance(void);

/* ---- payee lookup: 0100 / 380000 ([0047]-[0048]) ---- */

typedef struct phonepay_lookup_result {
    char response_code[3];                /* 00, Q1, Q2, Q4 */
    char reference[PHONEPAY_REF_LEN + 1]; /* on 00: field 37, valid lookup_ttl_ms */
    char masked_name[PHONEPAY_NAME_MAX];  /* on 00: field 63, e.g. "张*丰" */
    char text[PHONEPAY_TEXT_MAX];         /* on a refusal: field 63, for the payer */
} phonepay_lookup_result;

/* Validate both numbers (Q1), apply the per-terminal and per-payee rate limits (Q4), find
 * the active payee (Q2) and answer the name with its second character masked and a
 * one-time reference bound to (tid, both numbers, amount). */
int phonepay_lookup(phonepay *pp, const char *tid, const char *payee_mobile,
                    const char *payer_mobile, int64_t amount_minor, phonepay_lookup_result *out,
                    px_error *e);

/* ---- payment: 0200 / 480000 -> provider 0200 / 400000 ([0050]-[0054]) ---- */

typedef struct phonepay_payment_request {
    const char *tid;          /* field 41 */
    const char *reference;    /* from field 48 */
    const char *payee_mobile; /* from field 48 */
    const char *payer_mobile; /* from field 48 */
    int64_t amount_minor;     /* field 4: must equal the lookup's */
    const char *payer_pan;    /* from field 2 or 35: for the contracted-BIN check only,
                                 never stored */
} phonepay_payment_request;

typedef struct phonepay_payment {
    char response_code[3];             /* 00: send the debit; else refuse with text */
    char text[PHONEPAY_TEXT_MAX];      /* field 63 for the terminal */
    char payee_card[PHONEPAY_PAN_MAX]; /* on 00: clear payee card for field 103;
                                          the caller wipes it after packing */
} phonepay_payment;

/* Check the reference (unknown, expired, used, other terminal, other numbers or amount:
 * 12 or 13), that the payee is still active (Q2) and that the payer card's BIN belongs to
 * a contracted bank (15, with the reason, claim 4 / [0053]); then mark the reference in
 * use and give the payee's card for field 103. A reference is used at most once. */
int phonepay_payment_begin(phonepay *pp, const phonepay_payment_request *req, phonepay_payment *out,
                           px_error *e);

/* Record the provider's answer to the debit of `reference`: rrn is field 37 the switch
 * sent on the provider link (what the clearing file carries), stan its field 11,
 * response_code the provider's field 39. On 00 the payer's notification is queued
 * ([0054]); the payment then waits for reconciliation ([0055]). Idempotent: the same
 * result again is PX_OK; another result for a finished payment is PX_ECONFLICT. */
int phonepay_payment_result(phonepay *pp, const char *reference, const char *rrn, const char *stan,
                            const char *response_code, px_error *e);

/* The switch reversed the debit of `reference` (timeout, terminal 0400): it will never be
 * credited to the payee. PX_OK also when it was already reversed or never approved. */
int phonepay_payment_reverse(phonepay *pp, const char *reference, px_error *e);

/* ---- for the CLI and tests: an instance outside the daemon ---- */

/* Bind [phonepay] from cfg (as the service does), open its own store connection (store
 * section "store") and HSM session. */
int phonepay_open(px_config *cfg, phonepay **out, px_error *e);
void phonepay_close(phonepay *pp); /* NULL is fine */

#endif
