/*
 * keyload.h: the terminal's remote key download (seed 001 [0029]: "when the POS terminal asks
 * for its TMK, the KMS encrypts it under TK and sends it; the terminal decrypts it with TK and
 * keeps it in the PIN pad"; docs/kms.md "Key download", docs/trust-model.md).
 *
 *   1. challenge: the KMS answers a fresh nonce and a one-time session key under TK;
 *   2. proof: the PIN pad decrypts the session key inside and MACs its serial number and
 *      the nonce (tk_download_proof); the KMS checks it and answers the TMK under TK with
 *      its check value;
 *   3. the PIN pad loads the TMK (pinpad_load_tmk_under_tk checks the check value first);
 *   4. the terminal reports the outcome to the KMS (loaded, or kcv_mismatch), MACed too.
 * Then the ordinary sign-on with the switch installs work keys under that TMK.
 */
#ifndef PX_DEVICE_KEYLOAD_H
#define PX_DEVICE_KEYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "device/pinpad/pinpad.h"
#include "lib/err.h"
#include "lib/limits.h"
#include "net/tls.h"

typedef struct keyload_config {
    char kms_url[PX_HTTPS_URL_MAX]; /* the KMS's download listener: https://host:port */
    net_tls_config tls;             /* ca: the CA the KMS's certificate chains to */
    int64_t timeout_ms;
} keyload_config;

typedef struct keyload_result {
    char serial[PX_PKI_NAME_MAX];
    char tmk_kcv[PINPAD_KCV_HEX];
    char kms_cn[PX_TLS_NAME_MAX]; /* the KMS's certificate CN ("" without TLS) */
    int64_t elapsed_ms;
} keyload_result;

/* Fetch the TMK for p's serial number and load it. Refused, with the reason: the KMS does
 * not know the serial (PX_ENOTFOUND), the PIN pad holds no TK or another TK than the KMS
 * (PX_ESTATE / PX_EAUTH), the KMS refuses the proof (PX_EAUTH), the TMK does not match its
 * check value (PX_EAUTH: nothing is loaded and the KMS is told), the KMS cannot be reached. */
int keyload_run(pinpad *p, const keyload_config *c, keyload_result *r, px_error *e);

/* `possum pos keyload --data DIR --kms URL [--tls-ca FILE] [--timeout-ms N]`: 0 ok, 1 failed,
 * 2 usage (the `possum` exit-code contract). argv[0] is "keyload". */
int keyload_cli(int argc, char **argv);

#endif
