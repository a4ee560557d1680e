/*
 * Fuzz the HSM audit log verifier (hsm_audit_verify, src/hsm/audit.c): JSON lines chained by
 * SHA-256 and MACed, and the "<file>.head" anchor beside them.
 *
 * Input: the first byte's low bit says whether there is a head file; if so, it is what follows
 * up to and including the first newline. The rest is the log. Both go to per-process files in
 * /tmp, and the log is verified for its chain only (no LMK). When that passes, it is verified
 * again with the MACs under the throwaway test LMK below (the one the seeds in
 * tests/fuzz/corpus/fuzz_hsm_audit/ were written under; scrypt 2^10, so it stays cheap, and
 * it runs only for the rare inputs whose chain holds).
 *
 * Checked: no crash or leak; an accepted log has as many entries as it has lines, each ended
 * by a newline; the MAC check never accepts what the chain check refused and never counts
 * differently; the LMK always unlocks; an error always names what was wrong.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hsm/hsm.h"
#include "lib/str.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* tests/fuzz/corpus/fuzz_hsm_lmk/lmk.bin: a throwaway test LMK, not a secret. */
#define FZ_PASSPHRASE "possum fuzz seed: throwaway test LMK, not a secret"
static const char fz_lmk_text[] =
    "possum-lmk 1\n"
    "kdf scrypt 10 8 1\n"
    "salt 29B4977C7A8BCF67973FFB277CFF278A3C245A921997994D0B35823A83E58F34\n"
    "nonce FF8A79820E50E4D9DA587F2A\n"
    "check C743644A63\n"
    "created 1795308560035\n"
    "lmk C814D12902573ECE624D96B0D34706016DC35095453CAD91A88E30243811E102\n"
    "tag E91BA0826ECAC5371AF54F52FFBBC276\n";

static hsm_config fz_cfg;
static char fz_log[PX_PATH_MAX], fz_head[PX_PATH_MAX + 8];
static int fz_log_fd = -1, fz_head_fd = -1; /* kept open while the file exists */

static void fz_cleanup(void)
{
    unlink(fz_log);
    unlink(fz_head);
    unlink(fz_cfg.lmk_file);
}

/* Replace a file's content in place (creating it when *fd is -1): no truncation to zero,
 * which on ext4 makes every later close() wait for the blocks to be allocated (auto_da_alloc)
 * and costs 100x. */
static void fz_put(const char *path, int *fd, const uint8_t *p, size_t n)
{
    if (*fd < 0 && (*fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) < 0)
        abort();
    if ((n > 0 && pwrite(*fd, p, n, 0) != (ssize_t)n) || ftruncate(*fd, (off_t)n) != 0)
        abort();
}

static int fz_secret(void *ud, const char *prompt, char *out, size_t outsz)
{
    (void)ud, (void)prompt;
    return px_strlcpy(out, FZ_PASSPHRASE, outsz);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    int fd = -1;
    (void)argc, (void)argv;
    unsetenv(HSM_ENV_PASSPHRASE);
    hsm_config_default(&fz_cfg);
    fz_cfg.backend = HSM_BACKEND_SOFT;
    snprintf(fz_cfg.lmk_file, sizeof fz_cfg.lmk_file, "/tmp/possum-fuzz-hsm-audit.%ld.lmk",
             (long)getpid());
    snprintf(fz_log, sizeof fz_log, "/tmp/possum-fuzz-hsm-audit.%ld.log", (long)getpid());
    snprintf(fz_head, sizeof fz_head, "%s.head", fz_log);
    fz_cfg.secret_fn = fz_secret;
    unlink(fz_log);
    unlink(fz_head);
    unlink(fz_cfg.lmk_file);
    fz_put(fz_cfg.lmk_file, &fd, (const uint8_t *)fz_lmk_text, sizeof fz_lmk_text - 1);
    close(fd);
    atexit(fz_cleanup);
    return 0;
}

static void fz_check_error(int rc, const px_error *e)
{
    if (rc != PX_OK && (e->code != rc || e->msg[0] == 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *log, *nl;
    size_t loglen, lines = 0, n = 0, n2 = 0;
    px_error e = {0}, e2 = {0};
    int rc, rc2;
    if (size == 0)
        return 0;
    log = data + 1;
    loglen = size - 1;
    if (data[0] & 1) { /* a head file: the first line */
        nl = memchr(log, '\n', loglen);
        size_t hl = nl != NULL ? (size_t)(nl - log) + 1 : loglen;
        fz_put(fz_head, &fz_head_fd, log, hl);
        log += hl;
        loglen -= hl;
    } else if (fz_head_fd >= 0) {
        close(fz_head_fd);
        fz_head_fd = -1;
        unlink(fz_head);
    }
    fz_put(fz_log, &fz_log_fd, log, loglen);
    for (size_t i = 0; i < loglen; i++)
        lines += log[i] == '\n';

    rc = hsm_audit_verify(fz_log, NULL, &n, &e);
    fz_check_error(rc, &e);
    if (rc != PX_OK)
        return 0;
    if (n != lines || (loglen > 0 && log[loglen - 1] != '\n'))
        abort(); /* accepted a log with a line that is not a whole entry */

    rc2 = hsm_audit_verify(fz_log, &fz_cfg, &n2, &e2);
    fz_check_error(rc2, &e2);
    if (rc2 != PX_OK && rc2 != PX_EAUTH)
        abort(); /* the test LMK did not unlock */
    if (rc2 == PX_OK && n2 != n)
        abort();
    return 0;
}
