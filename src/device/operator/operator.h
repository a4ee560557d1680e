/*
 * operator.h: the operator terminal of seed 001 (claims 1, 2, 4 and 5; [0036]-[0046];
 * docs/mtms.md "The operator terminal", docs/trust-model.md).
 *
 * At the factory or repair shop it reads a POS terminal's serial number from its PIN pad,
 * asks the MTMS (mutual TLS with the operator's certificate) which customer the serial
 * belongs to, shows the customer code and name and asks the operator to confirm. If the
 * operator does not confirm, it asks for a customer code, shows that customer's name and
 * asks again. Once confirmed, the PIN pad makes a fresh TK and exports it wrapped to that
 * customer's KMS (the KMS certificate comes from the MTMS and is checked by the PIN pad
 * against its own CA and the CA's current CRL), and the operator terminal uploads TK, serial
 * and customer code together. It only ever relays the envelope: it cannot read the TK.
 *
 * Each step is a function (scripts and tests run them one by one); operator_run strings
 * them together with a user interface (a terminal, or answers given in advance).
 */
#ifndef PX_DEVICE_OPERATOR_H
#define PX_DEVICE_OPERATOR_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/limits.h"
#include "net/tls.h"

typedef struct operator_config {
    char mtms_url[PX_HTTPS_URL_MAX]; /* https://host:port */
    net_tls_config tls;              /* ca (required), cert + key (the operator's), crl */
    int64_t timeout_ms;
    char pinpad_dir[PX_PATH_MAX]; /* the POS terminal's directory (its PIN pad) */
} operator_config;

typedef struct operator_session operator_session;

/* Nothing is connected (or checked) until the first call that needs the MTMS. */
int operator_open(const operator_config *c, operator_session **out, px_error *e);
void operator_close(operator_session *s); /* NULL is fine */

/* The operator's name as the MTMS sees it (the certificate CN), once connected. */
const char *operator_mtms_cn(const operator_session *s);

typedef struct operator_customer {
    char code[PX_CUSTOMER_CODE_MAX];
    char name[PX_CUSTOMER_NAME_MAX];
    char kms_cn[PX_PKI_CN_MAX];
    char *kms_cert; /* PEM, malloc'd: freed by operator_customer_clear */
} operator_customer;

void operator_customer_clear(operator_customer *c);

/* S1: the serial number of the PIN pad in pinpad_dir. */
int operator_read_serial(operator_session *s, char serial[PX_PKI_NAME_MAX], px_error *e);

/* S2: the customer the MTMS holds for serial (status: the serial's status there). */
int operator_lookup_serial(operator_session *s, const char *serial, operator_customer *c,
                           char status[16], px_error *e);

/* Claim 2: the customer of a code typed by the operator. */
int operator_lookup_customer(operator_session *s, const char *code, operator_customer *c,
                             px_error *e);

typedef struct operator_upload_result {
    char tk_kcv[8];
    char reassociated_from[PX_CUSTOMER_CODE_MAX];
    int duplicate;
} operator_upload_result;

/* S5 / claim 2: the PIN pad makes a TK and exports it for c's KMS (with the CA's current
 * CRL, fetched from the MTMS), then TK, serial and c's code go to the MTMS together, marked
 * as confirmed by the operator. */
int operator_upload(operator_session *s, const char *serial, const operator_customer *c,
                    operator_upload_result *r, px_error *e);

/* What the operator sees and answers. confirm: 1 yes, 0 no, negative to cancel. ask: a line
 * typed (PX_OK), or an error to cancel. */
typedef struct operator_ui {
    void (*show)(void *ud, const char *text);
    int (*confirm)(void *ud, const char *question);
    int (*ask)(void *ud, const char *prompt, char *out, size_t outsz);
    void *ud;
} operator_ui;

typedef struct operator_result {
    char serial[PX_PKI_NAME_MAX];
    char customer_code[PX_CUSTOMER_CODE_MAX];
    char customer_name[PX_CUSTOMER_NAME_MAX];
    int corrected; /* the operator gave another customer code */
    operator_upload_result upload;
} operator_result;

#define OPERATOR_TRIES_MAX 3 /* customer codes the operator may try before giving up */

/* Claims 1 and 2 end to end. PX_EPERM when the operator cancels (nothing uploaded). */
int operator_run(operator_session *s, const operator_ui *ui, operator_result *r, px_error *e);

#endif
