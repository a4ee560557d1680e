/*
 * phonepay_recon.h: reconciliation with the provider's clearing file (seed 002 [0055],
 * claim 5; docs/switch-protocol.md section 3) and the payee credits that follow it, for
 * `possum recon run` (src/app/cmd_recon.c). docs/phonepay.md, "Reconciliation".
 */
#ifndef PX_HOST_PHONEPAY_RECON_H
#define PX_HOST_PHONEPAY_RECON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "host/phonepay/phonepay.h"
#include "lib/err.h"

/* One line of clearing-YYYYMMDD.csv, checked field by field. */
typedef struct phonepay_clearing_line {
    size_t lineno; /* 2.. (the header is line 1) */
    char date[11]; /* YYYY-MM-DD */
    char rrn[13];
    char stan[7];
    char type[9]; /* purchase, void, reversal, debit, credit */
    char pan_masked[20];
    int64_t amount_minor;
    char currency[4];
    char response[3];
    char acquirer[12];
    char terminal[9];
    char merchant[16];
    char payee_card_masked[20];
    char payer_mobile[12];
} phonepay_clearing_line;

typedef struct phonepay_clearing {
    phonepay_clearing_line *lines;
    size_t n;
    char sha256[65]; /* of the whole file, hex */
} phonepay_clearing;

/* Parse a clearing file held in memory: the header exactly as the contract says, then
 * lines of 13 fields (RFC 4180 quoting), each checked; every line's date must be date
 * (YYYY-MM-DD) and no (rrn, type) may appear twice. An error names the line and field:
 * "line 7: amount_minor: not a positive amount". */
int phonepay_clearing_parse(const char *text, size_t len, const char *date, phonepay_clearing *out,
                            px_error *e);
/* Read path (at most PX_PHONEPAY_CLEARING_LINES_MAX lines) and parse it. */
int phonepay_clearing_load(const char *path, const char *date, phonepay_clearing *out, px_error *e);
void phonepay_clearing_free(phonepay_clearing *c);

/* What a run found and did. */
typedef struct phonepay_recon_report {
    size_t lines;            /* in the file */
    size_t matched;          /* lines matched with the journal, amounts equal */
    size_t missing_platform; /* in the file, not in the journal */
    size_t missing_provider; /* in the journal, not in the file */
    size_t mismatched;       /* both sides, different amounts */
    size_t credited_now;     /* payee credits approved during this run */
    size_t credited_before;  /* matched debits already credited by an earlier run */
    size_t credit_failed;    /* credits refused or unanswered (tried again next run) */
    int64_t runs;            /* this is run number ... for the date */
} phonepay_recon_report;

/* Reconcile business day date ("YYYY-MM-DD") with the clearing file at path (NULL:
 * [phonepay] clearing_dir/clearing-YYYYMMDD.csv): match by RRN and type with the journal
 * (mobile-number debits, payee credits and their reversals from phonepay's journal; card
 * purchases and voids from the switch's), record the differences, then send each matched,
 * not yet credited debit's payee credit (0220 / 210000) to the provider and queue the
 * payee's notification with the payer's number. Each difference and credit is written to
 * out as one line. Safe to run again: what is done stays done, and the report says so. */
int phonepay_recon_run(phonepay *pp, const char *date, const char *path, FILE *out,
                       phonepay_recon_report *rep, px_error *e);

#endif
