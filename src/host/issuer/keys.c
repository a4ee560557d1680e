/*
 * keys.c: everything the issuer asks of the HSM. PANs are tokenised (AES-CMAC) and
 * encrypted (AES-CBC) under named keys; PINs are verified from the ZPK-encrypted block
 * against a Visa PVV or an IBM 3624 offset. No clear key or PIN exists outside the hsm.
 */
#include "host/issuer/issuer_int.h"
#include "lib/hex.h"
#include "lib/str.h"

#include <string.h>

#include <openssl/crypto.h>

int issuer_key_ensure(issuer_core *c, const char *label, const hsm_key_attrs *a, hsm_key **out,
                      px_error *e)
{
    hsm_keyblock kb;
    int rc = hsm_key_load_named(c->h, label, out, e);
    if (rc != PX_ENOTFOUND)
        return rc;
    rc = hsm_key_generate(c->h, a, label, &kb, e);
    if (rc == PX_OK)
        rc = hsm_key_load_named(c->h, label, out, e);
    return rc;
}

int issuer_mac_hex(issuer_core *c, const uint8_t *p, size_t n, char out[33], px_error *e)
{
    uint8_t mac[16];
    size_t len = 0;
    int rc = hsm_mac_generate(c->h, c->index_key, CRYPTO_MAC_AES_CMAC, p, n, mac, sizeof mac, &len,
                              e);
    if (rc != PX_OK)
        return rc;
    if (PX_BUG(len != sizeof mac))
        return PX_EINTERNAL;
    px_hex_encode(mac, len, out);
    return PX_OK;
}

int issuer_pan_token(issuer_core *c, const char *pan, char out[ISSUER_TOKEN_HEX + 1], px_error *e)
{
    /* Domain-separated from request MACs by the prefix. */
    uint8_t buf[4 + CRYPTO_PAN_MAX];
    size_t n = strlen(pan);
    int rc;
    if (n < CRYPTO_PAN_MIN || n > CRYPTO_PAN_MAX)
        return px_error_set(e, PX_EINVAL, "pan: not 12..19 digits");
    memcpy(buf, "PAN:", 4);
    memcpy(buf + 4, pan, n);
    rc = issuer_mac_hex(c, buf, 4 + n, out, e);
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}

int issuer_pan_encrypt(issuer_core *c, const char *pan, char *out, size_t outsz, px_error *e)
{
    uint8_t iv[16], clear[32], ct[32], all[48];
    size_t n = strlen(pan);
    int rc;
    if (n < CRYPTO_PAN_MIN || n > CRYPTO_PAN_MAX || outsz < 2 * sizeof all + 1)
        return px_error_set(e, PX_EINVAL, "pan: not 12..19 digits");
    memset(clear, 0, sizeof clear);
    memcpy(clear, pan, n);
    rc = crypto_random(iv, sizeof iv, e);
    if (rc == PX_OK)
        rc = hsm_data_encrypt(c->h, c->pan_key, CRYPTO_CBC, iv, clear, sizeof clear, ct, e);
    OPENSSL_cleanse(clear, sizeof clear);
    if (rc != PX_OK)
        return rc;
    memcpy(all, iv, 16);
    memcpy(all + 16, ct, 32);
    px_hex_encode(all, sizeof all, out);
    return PX_OK;
}

int issuer_pvk_get(issuer_core *c, const char *label, hsm_key **out, px_error *e)
{
    issuer_pvk_slot *victim = &c->pvk[0];
    int rc;
    for (size_t i = 0; i < PX_ISSUER_PVK_CACHE; i++) {
        issuer_pvk_slot *s = &c->pvk[i];
        if (s->key != NULL && strcmp(s->label, label) == 0) {
            s->used = ++c->pvk_clock;
            *out = s->key;
            return PX_OK;
        }
        if (s->key == NULL || (victim->key != NULL && s->used < victim->used))
            victim = s;
    }
    hsm_key_free(c->h, victim->key);
    victim->key = NULL;
    rc = hsm_key_load_named(c->h, label, &victim->key, e);
    if (rc != PX_OK)
        return rc;
    px_strlcpy(victim->label, label, sizeof victim->label);
    victim->used = ++c->pvk_clock;
    *out = victim->key;
    return PX_OK;
}

void issuer_ibm_validation_data(const char *pan, char out[13])
{
    size_t n = strlen(pan);
    out[0] = 0;
    if (n >= 13) {
        memcpy(out, pan + n - 13, 12);
        out[12] = 0;
    }
}

int issuer_pin_verify(issuer_core *c, const issuer_account *a, const char *pan,
                      const uint8_t block[8], px_error *e)
{
    hsm_pin_block pb = {.len = 8, .format = CRYPTO_PIN_ISO0};
    hsm_key *pvk = NULL;
    char vd[13];
    int rc;
    if (c->zpk == NULL)
        return px_error_set(e, PX_ESTATE, "no ZPK loaded");
    rc = issuer_pvk_get(c, a->pvk_label, &pvk, e);
    if (rc != PX_OK)
        return px_error_prefix(e, "PIN verification key %s: ", a->pvk_label);
    memcpy(pb.data, block, 8);
    if (a->method == ISSUER_PIN_PVV) {
        rc = hsm_pin_verify_pvv(c->h, c->zpk, &pb, pan, pvk, a->pvki, a->pin_check, e);
    } else {
        hsm_ibm3624 p = {.dec_table = ISSUER_IBM_DEC_TABLE,
                         .validation_data = vd,
                         .pad = 'F',
                         .offset = a->pin_check};
        issuer_ibm_validation_data(pan, vd);
        rc = hsm_pin_verify_ibm3624(c->h, c->zpk, &pb, pan, pvk, &p, e);
    }
    OPENSSL_cleanse(&pb, sizeof pb);
    return rc;
}

int issuer_pin_check_compute(issuer_core *c, issuer_pin_method method, const char *pan,
                             const char *pin_key, const uint8_t *pin_block, size_t n,
                             const char *pvk_label, int pvki, char out[13], px_error *e)
{
    hsm_pin_block pb = {.len = 8, .format = CRYPTO_PIN_ISO0};
    hsm_key *pk = NULL, *pvk = NULL;
    char vd[13];
    int rc;
    if (n != 8)
        return px_error_set(e, PX_EINVAL, "PIN block: expected 8 bytes (ISO 9564 format 0)");
    memcpy(pb.data, pin_block, 8);
    rc = hsm_key_load_named(c->h, pin_key, &pk, e);
    if (rc == PX_OK)
        rc = issuer_pvk_get(c, pvk_label, &pvk, e);
    if (rc == PX_OK && method == ISSUER_PIN_PVV) {
        char pvv[5];
        rc = hsm_pin_pvv(c->h, pk, &pb, pan, pvk, pvki, pvv, e);
        if (rc == PX_OK)
            px_strlcpy(out, pvv, 13);
    } else if (rc == PX_OK) {
        hsm_ibm3624 p = {.dec_table = ISSUER_IBM_DEC_TABLE, .validation_data = vd, .pad = 'F'};
        issuer_ibm_validation_data(pan, vd);
        rc = hsm_pin_offset_ibm3624(c->h, pk, &pb, pan, pvk, &p, out, e);
    }
    hsm_key_free(c->h, pk);
    OPENSSL_cleanse(&pb, sizeof pb);
    return rc;
}
