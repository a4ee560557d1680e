/*
 * mac.c: MAC generation and verification, data encryption and decryption with loaded keys.
 * Which key usage serves which MAC algorithm is the table below (docs/hsm.md).
 */
#include "hsm/hsm_int.h"

#include <string.h>

static const char *const x919_usages[] = {"M3", NULL};
static const char *const alg1_usages[] = {"M0", "M1", NULL};
static const char *const pboc_usages[] = {"M1", "E2", "E6", NULL};
static const char *const cmac_usages[] = {"M6", NULL};
static const char *const data_usages[] = {"D0", "E1", NULL};

/* Key usages allowed to compute alg, or NULL for an unknown algorithm. */
static const char *const *mac_usages(crypto_mac_alg alg)
{
    switch (alg) {
    case CRYPTO_MAC_X919: return x919_usages;
    case CRYPTO_MAC_ISO9797_1:
    case CRYPTO_MAC_CUP_ECB: return alg1_usages;
    case CRYPTO_MAC_PBOC: return pboc_usages;
    case CRYPTO_MAC_AES_CMAC:
    case CRYPTO_MAC_TDES_CMAC: return cmac_usages;
    }
    return NULL;
}

/* Policy for a MAC with k: usage for alg, mode for need, data length bounded. */
static int mac_allowed(hsm *h, hsm_key *k, crypto_mac_alg alg, size_t n, hsm_need need,
                       const char *op, px_error *e)
{
    const char *const *u = mac_usages(alg);
    int rc = hsm_audit_ok(h, e);
    if (rc != PX_OK)
        return rc;
    if (u == NULL)
        rc = px_error_set(e, PX_EINVAL, "MAC: unknown algorithm %d", (int)alg);
    else if (n > PX_HSM_DATA_MAX)
        rc = px_error_set(e, PX_ETOOBIG, "MAC: %zu bytes is more than %d", n, PX_HSM_DATA_MAX);
    else if ((rc = hsm_policy_check(k, u, need, "MAC", e)) == PX_OK &&
             (alg == CRYPTO_MAC_AES_CMAC) != (k->attrs.algorithm == 'A'))
        rc = px_error_set(e, PX_EPERM, "MAC: key algorithm %c does not suit this MAC",
                          k->attrs.algorithm);
    if (rc == PX_EPERM)
        hsm_audit_event(h, op, k, NULL, NULL, rc, px_error_text(e), HSM_AUDIT_WRITE, NULL);
    return rc;
}

int hsm_mac_generate(hsm *h, hsm_key *k, crypto_mac_alg alg, const uint8_t *data, size_t n,
                     uint8_t *mac, size_t maccap, size_t *maclen, px_error *e)
{
    px_error local = {0};
    int rc;
    if (e == NULL)
        e = &local;
    *maclen = 0;
    if ((rc = mac_allowed(h, k, alg, n, HSM_NEED_MAC_GEN, "mac.generate", e)) != PX_OK)
        return rc;
    rc = crypto_mac(alg, k->key, k->attrs.length, data, n, mac, maccap, maclen, e);
    return hsm_agg(h, k, HSM_AGG_MAC_GENERATE, rc);
}

int hsm_mac_verify(hsm *h, hsm_key *k, crypto_mac_alg alg, const uint8_t *data, size_t n,
                   const uint8_t *mac, size_t maclen, px_error *e)
{
    px_error local = {0};
    int rc;
    if (e == NULL)
        e = &local;
    if ((rc = mac_allowed(h, k, alg, n, HSM_NEED_MAC_VERIFY, "mac.verify", e)) != PX_OK)
        return rc;
    rc = crypto_mac_verify(alg, k->key, k->attrs.length, data, n, mac, maclen, e);
    return hsm_agg(h, k, HSM_AGG_MAC_VERIFY, rc);
}

/* Shared body of data encryption (enc 1) and decryption (enc 0). */
static int data_crypt(hsm *h, hsm_key *k, int enc, crypto_mode mode, const uint8_t *iv,
                      const uint8_t *in, size_t n, uint8_t *out, px_error *e)
{
    const char *op = enc ? "data.encrypt" : "data.decrypt";
    int rc = hsm_audit_ok(h, e);
    if (rc != PX_OK)
        return rc;
    if ((rc = hsm_policy_check(k, data_usages, enc ? HSM_NEED_ENCRYPT : HSM_NEED_DECRYPT, "data",
                               e)) == PX_OK &&
        k->sched == NULL)
        rc = px_error_set(e, PX_EPERM, "data: a single-DES key may not encrypt data");
    if (rc != PX_OK) {
        hsm_audit_event(h, op, k, NULL, NULL, rc, px_error_text(e), HSM_AUDIT_WRITE, NULL);
        return rc;
    }
    if (n > PX_HSM_DATA_MAX || n % crypto_key_block_size(k->sched) != 0 ||
        (mode == CRYPTO_CBC && iv == NULL))
        rc = px_error_set(e, PX_EINVAL,
                          "data: %zu bytes must be whole blocks (at most %d), CBC needs an IV", n,
                          PX_HSM_DATA_MAX);
    else if (mode == CRYPTO_ECB)
        rc = enc ? crypto_key_ecb_encrypt(k->sched, in, n, out)
                 : crypto_key_ecb_decrypt(k->sched, in, n, out);
    else if (mode == CRYPTO_CBC)
        rc = enc ? crypto_key_cbc_encrypt(k->sched, iv, in, n, out)
                 : crypto_key_cbc_decrypt(k->sched, iv, in, n, out);
    else
        rc = px_error_set(e, PX_EINVAL, "data: mode must be ECB or CBC");
    return hsm_agg(h, k, enc ? HSM_AGG_DATA_ENCRYPT : HSM_AGG_DATA_DECRYPT, rc);
}

int hsm_data_encrypt(hsm *h, hsm_key *k, crypto_mode mode, const uint8_t *iv, const uint8_t *in,
                     size_t n, uint8_t *out, px_error *e)
{
    px_error local = {0};
    return data_crypt(h, k, 1, mode, iv, in, n, out, e ? e : &local);
}

int hsm_data_decrypt(hsm *h, hsm_key *k, crypto_mode mode, const uint8_t *iv, const uint8_t *in,
                     size_t n, uint8_t *out, px_error *e)
{
    px_error local = {0};
    return data_crypt(h, k, 0, mode, iv, in, n, out, e ? e : &local);
}
