/*
 * lmk.c: what the hsm does with an LMK whatever its backend: derive its working keys with
 * the one primitive every backend offers (AES-CMAC under the LMK, as the KDF in counter
 * mode of NIST SP 800-108), and obtain secrets from the environment or a prompt.
 */
#include "hsm/hsm_int.h"
#include "lib/hex.h"
#include "lib/str.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

void hsm_lmk_close(hsm_lmk *l)
{
    if (l != NULL && l->close != NULL)
        l->close(l->ctx);
    if (l != NULL)
        memset(l, 0, sizeof *l);
}

/* SP 800-108 counter mode, PRF = CMAC under the LMK: 32 bytes for label.
 * Block i (1, 2) = CMAC(LMK, i || label || 00 || 0100). */
static int kdf_cmac(hsm_lmk *l, const char *label, uint8_t out[32], px_error *e)
{
    uint8_t in[64];
    size_t ll = strlen(label);
    int rc = PX_OK;
    if (PX_BUG(ll + 4 > sizeof in))
        return PX_EINTERNAL;
    memcpy(in + 1, label, ll);
    in[1 + ll] = 0x00;
    in[2 + ll] = 0x01; /* L = 256 bits */
    in[3 + ll] = 0x00;
    for (uint8_t i = 1; i <= 2 && rc == PX_OK; i++) {
        in[0] = i;
        rc = l->cmac(l->ctx, in, ll + 4, out + 16 * (i - 1), e);
    }
    return rc;
}

int hsm_lmk_derive_keys(hsm_lmk *l, hsm_lmk_keys *out, px_error *e)
{
    static const uint8_t zero[16] = {0};
    uint8_t mac[16];
    int rc = l->cmac(l->ctx, zero, sizeof zero, mac, e); /* X9.24-1 AES KCV of the LMK */
    if (rc != PX_OK)
        return rc;
    px_hex_encode(mac, CRYPTO_KCV_AES_LEN, out->lmk_check);
    if ((rc = kdf_cmac(l, "possum.kbpk.v1", out->kbpk, e)) != PX_OK ||
        (rc = kdf_cmac(l, "possum.audit.v1", out->audit_key, e)) != PX_OK ||
        (rc = hsm_kcv_hex('A', out->kbpk, sizeof out->kbpk, out->kbpk_check, e)) != PX_OK) {
        OPENSSL_cleanse(out, sizeof *out);
        return rc;
    }
    return PX_OK;
}

int hsm_secret_get(const hsm_config *cfg, const char *env, const char *prompt, char *out,
                   size_t outsz, px_error *e)
{
    const char *v = getenv(env);
    int rc;
    if (v != NULL && *v != 0) {
        if (px_strlcpy(out, v, outsz) != PX_OK) {
            OPENSSL_cleanse(out, outsz);
            return px_error_set(e, PX_ETOOBIG, "%s: longer than %zu characters", env, outsz - 1);
        }
        return PX_OK;
    }
    if (cfg->secret_fn == NULL)
        return px_error_set(e, PX_EPERM, "%s is not set and no terminal to ask on", env);
    rc = cfg->secret_fn(cfg->secret_ud, prompt, out, outsz);
    if (rc == PX_OK && *out == 0)
        rc = PX_EINVAL;
    if (rc != PX_OK) {
        OPENSSL_cleanse(out, outsz);
        return px_error_set(e, rc, "%s: no secret entered (set %s or type it at the prompt)",
                            prompt, env);
    }
    return PX_OK;
}

int hsm_secret_prompt(void *ud, const char *prompt, char *out, size_t outsz)
{
    struct termios old, quiet;
    size_t n = 0;
    char c;
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC), echo_off = 0;
    (void)ud;
    if (fd < 0 || outsz == 0) {
        if (fd >= 0)
            close(fd);
        return PX_EPERM;
    }
    if (write(fd, prompt, strlen(prompt)) < 0) { /* best effort */
    }
    if (tcgetattr(fd, &old) == 0) {
        quiet = old;
        quiet.c_lflag &= (tcflag_t) ~(ECHO | ECHONL);
        echo_off = tcsetattr(fd, TCSAFLUSH, &quiet) == 0;
    }
    while (read(fd, &c, 1) == 1 && c != '\n' && c != '\r')
        if (n + 1 < outsz)
            out[n++] = c;
    out[n] = 0;
    c = 0;
    if (echo_off)
        tcsetattr(fd, TCSAFLUSH, &old);
    if (write(fd, "\n", 1) < 0) { /* best effort */
    }
    close(fd);
    return PX_OK;
}
