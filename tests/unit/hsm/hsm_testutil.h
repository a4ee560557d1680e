/* hsm_testutil.h: fixtures shared by the hsm tests (a soft LMK, a store and an audit log in a
 * private temp dir; keys from known clear values through two components). */
#ifndef PX_HSM_TESTUTIL_H
#define PX_HSM_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "hsm/hsm.h"
#include "lib/hex.h"

#define TEST_PASSPHRASE "correct horse battery staple"

typedef struct hsm_fixture {
    char dir[PX_PATH_MAX];
    hsm_config cfg;
    store *st;
    hsm *h;
    char lmk_check[PX_HSM_KCV_HEX_MAX];
} hsm_fixture;

/* A fresh soft LMK (scrypt 2^10), SQLite store and audit log under a new temp dir. */
void fx_setup(hsm_fixture *f, const char *name);
void fx_teardown(hsm_fixture *f);
/* path = dir/name into out. */
void fx_path(const hsm_fixture *f, const char *name, char *out, size_t outsz);

/* Attributes in one call. */
hsm_key_attrs fx_attrs(const char *usage, char alg, char mode, char exp, size_t len);

/* Bring the clear key hex in as two components (random split), optionally named; load it.
 * kb (may be NULL) receives its block. */
hsm_key *fx_key(hsm *h, const char *usage, char alg, char mode, char exp, const char *hex,
                const char *label, hsm_keyblock *kb);

/* The clear PIN block of fmt for pin/pan, encrypted under the clear key hex (test side). */
void fx_pinblock(const char *keyhex, crypto_pin_format fmt, const char *pin, const char *pan,
                 hsm_pin_block *out);
/* Decrypt an encrypted PIN block under the clear key hex and decode it: the PIN. */
void fx_pin_of(const char *keyhex, const hsm_pin_block *in, const char *pan, char pin[13]);

/* 1 if the file holds hex (either case) or its bytes. */
int fx_file_has_secret(const char *path, const char *hex);
/* Every regular file under dir checked with fx_file_has_secret: 1 if any has it. */
int fx_dir_has_secret(const char *dir, const char *hex);

/* Read a whole small file into a malloc'd NUL-terminated string. */
char *fx_read(const char *path, size_t *len);
void fx_write(const char *path, const char *data, size_t len);

#endif
