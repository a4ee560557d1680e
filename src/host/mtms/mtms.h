/*
 * mtms.h: the material tracking system of seed 001 (claims 1-6, [0031]-[0048]; docs/mtms.md).
 *
 *   - The serial-number table: serial -> customer, imported from CSV by production order.
 *   - Customers: code, name, their KMS (protocol and address, claim 3) and the KMS's
 *     receiving certificate, which PIN pads wrap TKs to.
 *   - Operator terminals (mutual TLS, "operator:*" certificates): look a serial up (claim 1
 *     S2), look a customer code up (claim 2), upload TK + serial + customer code once the
 *     operator confirmed; a customer other than the table's re-associates the serial (claim
 *     2, [0046]).
 *   - TK envelopes are opaque here: the MTMS checks their PIN pad signature and that they
 *     are wrapped to the confirmed customer's KMS, and forwards them through an outbox with
 *     retries (claim 3) to that KMS over mutual TLS. Nothing in the MTMS can unwrap a TK.
 *   - Per serial: new, received, forwarded, acknowledged (or refused by the KMS); an audit
 *     trail of which operator confirmed which customer for which serial.
 * An mtms is used by one thread at a time (its store is).
 */
#ifndef PX_HOST_MTMS_H
#define PX_HOST_MTMS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/limits.h"
#include "net/tls.h"
#include "pki/pki.h"
#include "pki/tkenv.h"
#include "store/store.h"

#define MTMS_KMS_CERT_MAX 4096 /* bytes of a KMS receiving certificate (PEM) */

typedef struct mtms mtms;

/* trust: the CA and its CRL (PIN pad and KMS certificates are checked against them); NULL
 * for the read-only CLI commands (then customer certificates are only parsed and TK intake
 * is refused). The caller keeps st and trust. */
int mtms_open(store *st, const pki_trust *trust, mtms **out, px_error *e);
void mtms_close(mtms *m); /* NULL is fine */

/* ---- customers ---- */

typedef struct mtms_customer {
    char code[PX_CUSTOMER_CODE_MAX];
    char name[PX_CUSTOMER_NAME_MAX];
    char kms_protocol[8]; /* "https" */
    char kms_address[PX_HTTPS_URL_MAX];
    char kms_cert[MTMS_KMS_CERT_MAX]; /* PEM: the KMS's key-agreement certificate */
    char kms_cn[PX_PKI_CN_MAX];
    char kms_fp[2 * PKI_FP_LEN + 1];
    int64_t created_ms, updated_ms;
} mtms_customer;

/* 1 if s is a customer code (1..32 of A-Z a-z 0-9 . _ - @). */
int mtms_code_is_valid(const char *s);
/* 1 if s is a customer name (1..128 bytes of UTF-8 without control characters). */
int mtms_name_is_valid(const char *s);

/* Add or update a customer (actor is audited). kms_cert must be "kms:<code>", purpose
 * key-agreement, and (with a trust) chain to the CA and not be revoked. */
int mtms_customer_put(mtms *m, const char *code, const char *name, const char *kms_address,
                      const char *kms_cert_pem, const char *actor, px_error *e);
int mtms_customer_get(store *st, const char *code, mtms_customer *out, px_error *e);
int mtms_customer_list(store *st, int (*fn)(void *ud, const mtms_customer *c), void *ud,
                       px_error *e);

/* ---- the serial-number table ---- */

typedef struct mtms_import_report {
    size_t lines;                             /* lines read (header included) */
    size_t imported;                          /* serial numbers imported */
    size_t bad;                               /* lines refused (then nothing is imported) */
    char errors[PX_MTMS_CSV_ERRORS_MAX][160]; /* "line 7: serial PP1: unknown customer C9" */
    size_t nerrors;
} mtms_import_report;

/* Import production order order_no from the CSV file at path: a header line
 * "serial,customer" then one terminal per line. All or nothing: any bad line (its number and
 * reason reported, the first PX_MTMS_CSV_ERRORS_MAX of them) refuses the whole import
 * (PX_EFORMAT); so does an order already imported (PX_EEXIST) or a serial already in another
 * order. */
int mtms_import_csv(mtms *m, const char *order_no, const char *path, const char *actor,
                    mtms_import_report *r, px_error *e);

typedef struct mtms_serial_info {
    char serial[PKI_TKENV_SERIAL_MAX + 1];
    char customer_code[PX_CUSTOMER_CODE_MAX];
    char order_no[PX_ORDER_NO_MAX];
    char status[16];
    char tk_kcv[8];
    char confirmed_by[PX_PKI_CN_MAX];
    int64_t received_ms, forwarded_ms, acked_ms, updated_ms;
    char last_error[PX_ERRMSG_MAX];
} mtms_serial_info;

int mtms_serial_get(store *st, const char *serial, mtms_serial_info *out, px_error *e);
/* Every serial (of order_no when not NULL), in serial order. */
int mtms_serial_list(store *st, const char *order_no,
                     int (*fn)(void *ud, const mtms_serial_info *s), void *ud, px_error *e);

/* ---- what operator terminals do (claims 1 and 2) ---- */

/* S1/S2: the customer the table holds for serial (audited as "lookup" by actor). */
int mtms_lookup_serial(mtms *m, const char *serial, const char *actor, mtms_serial_info *si,
                       mtms_customer *c, px_error *e);
/* Claim 2: the customer of a code the operator typed (audited). */
int mtms_lookup_customer(mtms *m, const char *code, const char *actor, mtms_customer *c,
                         px_error *e);

typedef struct mtms_submit_result {
    char serial[PKI_TKENV_SERIAL_MAX + 1];
    char customer_code[PX_CUSTOMER_CODE_MAX];
    char previous_customer[PX_CUSTOMER_CODE_MAX]; /* "" unless re-associated */
    char tk_kcv[8];
    int duplicate; /* the same envelope again */
} mtms_submit_result;

/* S5 / claim 2: TK (envelope, base64), serial and the customer code the operator confirmed
 * (confirmed must be 1). Checks the envelope (its serial, the PIN pad's certificate and
 * signature) and that it is wrapped to that customer's KMS; re-associates the serial when
 * the code differs from the table's; queues the envelope for the KMS. Every outcome is
 * audited; a refusal names its reason. */
int mtms_tk_submit(mtms *m, const char *actor, const char *serial, const char *customer_code,
                   int confirmed, const char *envelope_b64, mtms_submit_result *r, px_error *e);

/* ---- the outbox (claim 3) ---- */

typedef struct mtms_outbox_item {
    char id[PKI_TKENV_SERIAL_MAX + 80];
    char serial[PKI_TKENV_SERIAL_MAX + 1];
    char customer_code[PX_CUSTOMER_CODE_MAX];
    char tk_kcv[8];
    char state[16];
    int64_t attempts, next_ms, created_ms, done_ms;
    char last_error[PX_ERRMSG_MAX];
} mtms_outbox_item;

int mtms_outbox_list(store *st, int pending_only, int (*fn)(void *ud, const mtms_outbox_item *i),
                     void *ud, px_error *e);

typedef struct mtms_forward_config {
    net_tls_config tls; /* CA, CRL, and the MTMS's client certificate */
    int64_t timeout_ms;
    int64_t backoff_min_ms, backoff_max_ms;
    int64_t lease_ms; /* an item claimed by a node that died is taken again after */
    size_t batch;     /* envelopes per request (<= PX_MTMS_OUTBOX_BATCH) */
} mtms_forward_config;

void mtms_forward_config_default(mtms_forward_config *c);

typedef struct mtms_forward_stats {
    size_t sent, acknowledged, refused, failed; /* items */
} mtms_forward_stats;

/* One pass of the outbox: claim what is due, send it customer by customer, record every
 * outcome. Blocking (HTTPS): run it on a worker thread with its own store. */
int mtms_forward_due(mtms *m, const mtms_forward_config *c, mtms_forward_stats *st, px_error *e);

/* ---- audit ---- */

typedef struct mtms_audit_row {
    int64_t id, ts_ms;
    char actor[PX_PKI_CN_MAX + 16];
    char action[32];
    char serial[PKI_TKENV_SERIAL_MAX + 1];
    char customer_code[PX_CUSTOMER_CODE_MAX];
    char result[8];
    char detail[PX_ERRMSG_MAX];
} mtms_audit_row;

int mtms_audit_list(store *st, const char *serial, int (*fn)(void *ud, const mtms_audit_row *r),
                    void *ud, px_error *e);

/* An operator terminal's TLS handshake the listener refused (revoked, from another CA, no
 * certificate, ...), as an audit row: action "tls.refused", result "refused", actor the
 * peer's address (the offered certificate is a claim, never an identity), detail the reason
 * and the offered certificate's CN, serial and issuer (net_tls_refusal_text). */
void mtms_audit_tls_refused(mtms *m, const net_tls_refusal *r);

#endif
