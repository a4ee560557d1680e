/*
 * tmsfix.h: fixtures of the tms tests: a soft LMK, a SQLite store and an audit log in a private
 * temp dir; the TMS master key formed from known components (so a test can compute a
 * terminal's DMK on its own, as the terminal holds it); Ed25519 keys for the metadata roles;
 * signed root and targets records; a fake transaction platform that records flags.
 */
#ifndef PX_TMSFIX_H
#define PX_TMSFIX_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "crypto/tuf.h"
#include "host/tms/tms.h"

#define TMSFIX_PASSPHRASE "tms unit test passphrase"
#define TMSFIX_MASTER_HEX "0123456789ABCDEFFEDCBA9876543210" /* the TMS master key (K0, X) */
#define TMSFIX_KEK_HEX "1F1F1F1F1F1F1F1F0E0E0E0E0E0E0E0E"    /* a K1 provisioning KEK */
#define TMSFIX_FLAGS_MAX 64

typedef struct tmsfix {
    char dir[PX_PATH_MAX];
    hsm_config hcfg;
    store *st;
    hsm *h;
    uint8_t root_priv[3][TUF_PRIV_LEN], targets_priv[2][TUF_PRIV_LEN], ts_priv[TUF_PRIV_LEN];
    tuf_root root;                    /* version 1: root 2 of 3, targets 2 of 2, timestamp 1 of 1 */
    tms_flagger flagger;              /* records into flags[] */
    char flags[TMSFIX_FLAGS_MAX][12]; /* "TID:1" / "TID:0" */
    size_t nflags;
} tmsfix;

void tmsfix_setup(tmsfix *f, const char *name);
void tmsfix_teardown(tmsfix *f);
void tmsfix_path(const tmsfix *f, const char *name, char *out, size_t outsz);

/* The root record of f->root signed by the first nsig root keys (malloc'd text). */
char *tmsfix_root_text(tmsfix *f, const tuf_root *r, size_t nsig);
/* Publish f->root (2 signatures). */
void tmsfix_publish_root(tmsfix *f);

/* Write a package file of n bytes (a repeating pattern seeded by seed) at dir/name. */
void tmsfix_file(tmsfix *f, const char *name, size_t n, int seed, char *path, size_t pathsz);
/* The targets record for the file at path (malloc'd text), signed by nsig targets keys. */
char *tmsfix_targets_text(tmsfix *f, const char *path, const char *name, const char *version,
                          const char *models, size_t nsig);
/* Add a package from a new file of n bytes; fails the test if refused. */
void tmsfix_package(tmsfix *f, const char *name, const char *version, const char *models, size_t n);

/* Register terminal serial (model, tid may be ""). */
void tmsfix_terminal(tmsfix *f, const char *serial, const char *model, const char *tid,
                     const char *groups);

/* The DMK of serial as the terminal holds it (derived on the test side from the clear master). */
void tmsfix_dmk(const char *serial, uint8_t dmk[16]);

char *tmsfix_read(const char *path, size_t *len);

#endif
