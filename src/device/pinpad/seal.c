/*
 * seal.c: card data the terminal keeps on disk (the PAN of a voidable sale, the track of
 * a pending reversal) goes through here: AES-256-GCM under a key the PIN pad derives from
 * its device secret, so the state file never holds a clear PAN or track (PCI DSS 3.4).
 * Sealed layout: version 01 ‖ nonce (12) ‖ ciphertext ‖ tag (16).
 */
#include "device/pinpad/pinpad_int.h"
#include "crypto/crypto.h"

#include <openssl/crypto.h>
#include <string.h>

#define SEAL_VERSION 1
#define SEAL_LABEL "possum pinpad card data v1"

int pinpad_seal(pinpad *p, const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *outlen,
                px_error *e)
{
    uint8_t key[PP_AEAD_KEY];
    int rc;
    if (n > PX_PINPAD_SEAL_MAX)
        return px_error_set(e, PX_ETOOBIG, "seal: more than %d bytes", PX_PINPAD_SEAL_MAX);
    if (cap < n + PINPAD_SEAL_OVERHEAD)
        return px_error_set(e, PX_ETOOBIG, "seal: output buffer too small");
    out[0] = SEAL_VERSION;
    rc = crypto_random(out + 1, PP_NONCE, e);
    if (rc == PX_OK)
        rc = pp_derive(p, SEAL_LABEL, NULL, 0, key, e);
    if (rc == PX_OK)
        rc = pp_gcm_seal(key, out + 1, out, 1, in, n, out + 1 + PP_NONCE, out + 1 + PP_NONCE + n,
                         e);
    OPENSSL_cleanse(key, sizeof key);
    if (rc == PX_OK)
        *outlen = n + PINPAD_SEAL_OVERHEAD;
    return rc;
}

int pinpad_unseal(pinpad *p, const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *outlen,
                  px_error *e)
{
    uint8_t key[PP_AEAD_KEY];
    size_t len;
    int rc;
    if (n < PINPAD_SEAL_OVERHEAD || in[0] != SEAL_VERSION)
        return px_error_set(e, PX_EFORMAT, "unseal: not sealed data");
    len = n - PINPAD_SEAL_OVERHEAD;
    if (cap < len)
        return px_error_set(e, PX_ETOOBIG, "unseal: output buffer too small");
    rc = pp_derive(p, SEAL_LABEL, NULL, 0, key, e);
    if (rc == PX_OK)
        rc = pp_gcm_open(key, in + 1, in, 1, in + 1 + PP_NONCE, len, out, in + 1 + PP_NONCE + len,
                         e);
    OPENSSL_cleanse(key, sizeof key);
    if (rc == PX_EAUTH)
        return px_error_set(e, PX_EAUTH, "unseal: sealed data does not authenticate");
    if (rc == PX_OK)
        *outlen = len;
    return rc;
}
