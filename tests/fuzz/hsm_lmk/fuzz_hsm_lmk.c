/*
 * Fuzz the soft LMK file parser (src/hsm/lmk_soft.c): the input is written to a per-process
 * file in /tmp and unlocked with hsm_unlock_lmk (hsm_int.h), which reads and parses the file
 * strictly, then derives the key-encrypting key with scrypt and opens the AES-256-GCM seal.
 *
 * KDF cost: the parser takes scrypt's cost from the file, so the passphrase callback (called
 * only once the structure parsed) hands out the passphrase only when the file names the least
 * cost, "kdf scrypt 10 8 1"; any other file stops there, before scrypt. The seed is the
 * throwaway test LMK in tests/fuzz/corpus/fuzz_hsm_lmk/ (see its README).
 *
 * Checked: no crash or leak; an unlock succeeds only for an authentic file, whose "check" line
 * is the check value of the LMK it unlocked; no error message holds the passphrase.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hsm/hsm_int.h"
#include "lib/str.h"

#include <openssl/crypto.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_PASSPHRASE "possum fuzz seed: throwaway test LMK, not a secret"
#define FZ_CHEAP_HEAD "possum-lmk 1\nkdf scrypt 10 8 1\n"

typedef struct fz_input {
    const uint8_t *data;
    size_t size;
} fz_input;

static hsm_config fz_cfg;
static fz_input fz_cur;
static int fz_fd = -1; /* the file, kept open */

static void fz_cleanup(void)
{
    unlink(fz_cfg.lmk_file);
}

/* Replace the file's content in place: no truncation to zero, which on ext4 makes every
 * later close() wait for the blocks to be allocated (auto_da_alloc) and costs 100x. */
static void fz_put(const uint8_t *p, size_t n)
{
    if ((n > 0 && pwrite(fz_fd, p, n, 0) != (ssize_t)n) || ftruncate(fz_fd, (off_t)n) != 0)
        abort();
}

/* The passphrase, only for a file asking for the cheapest scrypt. */
static int fz_secret(void *ud, const char *prompt, char *out, size_t outsz)
{
    const fz_input *in = ud;
    (void)prompt;
    if (in->size < sizeof FZ_CHEAP_HEAD - 1 ||
        memcmp(in->data, FZ_CHEAP_HEAD, sizeof FZ_CHEAP_HEAD - 1) != 0)
        return PX_EPERM;
    return px_strlcpy(out, FZ_PASSPHRASE, outsz);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    unsetenv(HSM_ENV_PASSPHRASE); /* the callback decides */
    hsm_config_default(&fz_cfg);
    fz_cfg.backend = HSM_BACKEND_SOFT;
    snprintf(fz_cfg.lmk_file, sizeof fz_cfg.lmk_file, "/tmp/possum-fuzz-hsm-lmk.%ld.bin",
             (long)getpid());
    fz_cfg.secret_fn = fz_secret;
    fz_cfg.secret_ud = &fz_cur;
    if ((fz_fd = open(fz_cfg.lmk_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
        abort();
    atexit(fz_cleanup);
    return 0;
}

/* 1 if data holds "\ncheck <check>\n". */
static int fz_has_check(const uint8_t *data, size_t size, const char *check)
{
    char want[64];
    int n = snprintf(want, sizeof want, "\ncheck %s\n", check);
    if (n <= 0 || (size_t)n >= sizeof want)
        return 0;
    for (size_t i = 0; i + (size_t)n <= size; i++)
        if (memcmp(data + i, want, (size_t)n) == 0)
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hsm_lmk_keys lk;
    px_error e = {0};
    fz_put(data, size);
    fz_cur.data = data;
    fz_cur.size = size;
    memset(&lk, 0, sizeof lk);
    int rc = hsm_unlock_lmk(&fz_cfg, &lk, &e);
    if (rc == PX_OK && (strlen(lk.lmk_check) != 10 || !fz_has_check(data, size, lk.lmk_check)))
        abort(); /* unlocked a file whose check value is not the LMK's */
    if (rc != PX_OK && (e.code != rc || strstr(e.msg, FZ_PASSPHRASE) != NULL))
        abort();
    OPENSSL_cleanse(&lk, sizeof lk);
    return 0;
}
