/*
 * ledger.h: the switch's double-entry ledger, as operators read it (docs/ledger.md).
 *
 * Accounts (ids): "provider:settlement" (asset: what the provider owes us for approved
 * purchases and mobile-number debits), "merchant:MID" (liability: what we owe merchant MID),
 * "phonepay:payees" (liability: what we owe payees of mobile-number payments until the
 * provider credits them), "fees:income" (income, when [switch] fee_bp > 0). An entry's
 * amount is in fen, positive for a debit and negative for a credit; a transaction's entries
 * (txn = the request that posted them, or "credit:<reference>" for a payee credit) sum to
 * zero, and an account's balance is the sum of its entries.
 */
#ifndef PX_HOST_SWITCH_LEDGER_H
#define PX_HOST_SWITCH_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "store/store.h"

#define SWITCH_ACCOUNT_MAX 64
#define SWITCH_ACCOUNT_PROVIDER "provider:settlement"
#define SWITCH_ACCOUNT_FEES "fees:income"
#define SWITCH_ACCOUNT_MERCHANT "merchant:" /* + MID */
#define SWITCH_ACCOUNT_PAYEES "phonepay:payees"
#define SWITCH_TXN_PAYEE_CREDIT "credit:" /* + the payment's lookup reference */

/* What `possum ledger check` found. Everything but the counts must be 0. */
typedef struct switch_ledger_check_result {
    int64_t accounts, entries, txns; /* examined */
    int64_t bad_balances;            /* accounts whose balance is not the sum of their entries */
    int64_t bad_txns;                /* transactions whose entries do not sum to zero */
    int64_t unposted;                /* requests marked posted without entries */
    int64_t orphans;                 /* entries whose transaction is no posted request */
    int64_t pending;                 /* requests still waiting for the provider (not an error) */
    int64_t outbox;                  /* reversals not yet answered by the provider (not an error) */
} switch_ledger_check_result;

/* Verify the ledger; each problem is passed to problem (may be NULL) as one line. PX_OK when
 * the checks ran (look at the result), an error when the store failed. */
int switch_ledger_check(store *st, switch_ledger_check_result *r,
                        void (*problem)(void *ud, const char *line), void *ud, px_error *e);

typedef struct switch_ledger_account {
    char id[SWITCH_ACCOUNT_MAX];
    char kind[12];
    int64_t balance; /* debit positive */
    int64_t entries;
} switch_ledger_account;

/* Seed 002 [0055]: the provider credited the payee of mobile-number payment `reference`
 * (debit RRN debit_rrn) with amount_minor, paying it out of what it owed us. Posts, as
 * transaction "credit:<reference>" (a ledger_txn row, which `possum ledger check` holds as
 * posted), phonepay:payees +amount and provider:settlement -amount, in the caller's open
 * transaction on st (the one that marks the payment credited). *posted = 1 when it posted
 * now; 0 when it was posted before, or when the ledger does not carry the debit (approved
 * before the switch posted mobile-number debits): a credit is never posted twice, nor
 * without its debit. Balances are updated in account order (docs/ledger.md). */
int switch_ledger_post_payee_credit(store *st, const char *reference, const char *debit_rrn,
                                    int64_t amount_minor, int *posted, px_error *e);

/* Every account in id order. */
int switch_ledger_balances(store *st, int (*fn)(void *ud, const switch_ledger_account *a), void *ud,
                           px_error *e);

/* One batch of a terminal: the switch's totals and the terminal's (from its settlement),
 * and the differences found against its batch upload. */
typedef struct switch_batch_report {
    char tid[9];
    int64_t batch_no;
    char state[12]; /* open, settled, closed */
    int result;     /* 0 not settled, 1 balanced, 2 not balanced */
    int64_t sw_debit_count, sw_debit_amount, sw_credit_count, sw_credit_amount;
    int64_t term_debit_count, term_debit_amount, term_credit_count, term_credit_amount;
    int64_t uploaded; /* entries the terminal uploaded */
} switch_batch_report;

/* A difference line: "switch only" (we approved it, the terminal did not upload it) or
 * "terminal only" (uploaded, but not approved here), with STAN, amount and type. */
typedef struct switch_batch_diff {
    const char *side; /* "switch-only" | "terminal-only" | "amount-differs" */
    char stan[7];
    int64_t amount_switch, amount_terminal;
    char ttype[12];
} switch_batch_diff;

/* The report of (tid, batch), and each difference through fn (may be NULL) when the
 * terminal uploaded its batch. PX_ENOTFOUND if there is no such batch. */
int switch_ledger_batch(store *st, const char *tid, int64_t batch_no, switch_batch_report *out,
                        int (*fn)(void *ud, const switch_batch_diff *d), void *ud, px_error *e);

#endif
