/*
 * swfix.h: fixtures for the switch's end-to-end tests: an LMK for the HSM in a private
 * directory, possumd nodes running the switch and the issuer simulator (the provider) on
 * SQLite or a shared PostgreSQL, terminals registered with the real CLI.
 */
#ifndef PX_SWFIX_H
#define PX_SWFIX_H

#include <stddef.h>
#include <sys/types.h>

#include "lib/buf.h"
#include "lib/limits.h"

#define SWFIX_PASSPHRASE "e2e switch test passphrase"

/* The TMK components the tests register terminals with (dual control: two). */
#define SWFIX_TMK_C1 "0123456789ABCDEFFEDCBA9876543210"
#define SWFIX_TMK_C2 "1F1F1F1F1F1F1F1F0E0E0E0E0E0E0E0E"

/* Demo cardholders of the issuer simulator (src/host/issuer/seed.c). */
#define SWFIX_CARD_OK "6222020000000007" /* PIN 123456, 10,000.00 */
#define SWFIX_CARD_OK_PIN "123456"
#define SWFIX_CARD_POOR "6222020000000015"  /* PIN 111111, 50.00 */
#define SWFIX_CARD_RURAL "9558800000000000" /* bank not contracted */

typedef struct swfix_node {
    pid_t pid;
    char name[32];
    char ini[PX_PATH_MAX];
    char log[PX_PATH_MAX];
    char ports[PX_PATH_MAX];
    int switch_port, http_port, issuer_port;
} swfix_node;

typedef struct swfix {
    char dir[PX_PATH_MAX]; /* LMK, audit log, SQLite files, node files */
    char lmk[PX_PATH_MAX], audit[PX_PATH_MAX];
    char store_ini[2048];      /* the [store] section the switch nodes and the CLI use */
    char cli_ini[PX_PATH_MAX]; /* a config for `possum terminal|ledger` */
} swfix;

/* A private directory with a fresh LMK (POSSUM_LMK_PASSPHRASE is set for children), [store]
 * on SQLite in it or on PostgreSQL (conninfo not NULL), migrated, with the demo zone PIN
 * key formed in it. */
int swfix_init(swfix *f, const char *conninfo);
void swfix_cleanup(swfix *f);

/* A free TCP port on 127.0.0.1 (bound and released). */
int swfix_free_port(void);

/* The [switch] section (enabled, listen on port 0, HSM files, provider at issuer_port when
 * > 0) plus extra keys (may be NULL) into out. */
void swfix_switch_section(const swfix *f, char *out, size_t outsz, int issuer_port,
                          const char *extra);
/* The [issuer] section (seed_demo, listen on port) plus extra keys into out. */
void swfix_issuer_section(const swfix *f, char *out, size_t outsz, int port, const char *extra);

/* Start node `name`: [possumd], [store] (f's unless own_store is not NULL, then that
 * section), [http], then sections. Waits until every listener is announced. 0 or -1. */
int swfix_start(swfix *f, swfix_node *n, const char *name, const char *own_store,
                const char *sections);
/* Restart a stopped node with its config as it is. */
int swfix_restart(swfix_node *n);
/* Stop with sig (SIGTERM drains; SIGKILL kills); returns the exit status or -1. */
int swfix_stop(swfix_node *n, int sig, int timeout_ms);
int swfix_log_contains(const swfix_node *n, const char *needle);
void swfix_dump_log(const swfix_node *n);

/* Run `possum ARGS --config <cli_ini>`; output in out (may be NULL); returns the status. */
int swfix_cli(swfix *f, px_buf *out, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Register a terminal with the test components (their check values given). 0 or -1. */
int swfix_add_terminal(swfix *f, const char *tid, const char *mid, const char *name);

/* A value from a node's /metrics (series name with its labels), 0 if absent. */
long long swfix_metric(const swfix_node *n, const char *series);

#endif
