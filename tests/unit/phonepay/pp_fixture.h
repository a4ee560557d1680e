/* pp_fixture.h: a phonepay on a fresh SQLite store and soft LMK in a temp directory. */
#ifndef PX_PP_FIXTURE_H
#define PX_PP_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "host/phonepay/phonepay_int.h"
#include "host/phonepay/phonepay_recon.h"
#include "lib/str.h"

#define PP_PASSPHRASE "phonepay unit test passphrase"

typedef struct pp_fixture {
    char dir[256];
    phonepay_config cfg;
    store_config scfg;
    store *st;
    phonepay *pp;
} pp_fixture;

/* Run every later pp_setup on a fresh database of a throwaway PostgreSQL cluster (started
 * now, stopped at exit). 0 ok, 77 when PostgreSQL is missing and POSSUM_SKIP_PG is set,
 * -1 on failure. */
int pp_use_postgres(void);

/* Temp dir, LMK (scrypt 2^10), store, config defaults with an SMS URL (nothing listens
 * there unless a test does), then tune(cfg) if non-NULL, then phonepay_new. */
void pp_setup(pp_fixture *f, const char *name, void (*tune)(phonepay_config *c));
void pp_teardown(pp_fixture *f);

/* The last OTP queued for mobile, read from the outbox text (before delivery wipes it). */
void pp_last_code(pp_fixture *f, const char *mobile, char code[7]);
/* Register and confirm a payee; the card must pass Luhn. */
void pp_add_payee(pp_fixture *f, const char *name, const char *mobile, const char *card);
/* Run one SQL statement without parameters (test set-up). */
void pp_exec(pp_fixture *f, const char *sql);
/* First column of the first row of sql as int64 (0 if none). */
int64_t pp_int(pp_fixture *f, const char *sql);

#endif
