/*
 * pin.c: PIN translation (terminal key or DUKPT -> zone key) and PIN verification (IBM 3624
 * offset, Visa PVV). The clear PIN exists only in a stack buffer of these functions and is
 * wiped before they return; no function returns it.
 */
#include "hsm/hsm_int.h"
#include "crypto/dukpt.h"
#include "lib/hex.h"
#include "lib/str.h"

#include <string.h>

#include <openssl/crypto.h>

static const char *const pin_usages[] = {"P0", NULL};
static const char *const bdk_usages[] = {"B0", NULL};
static const char *const ibm_usages[] = {"V1", NULL};
static const char *const pvv_usages[] = {"V2", NULL};

/* Record a policy refusal at once (and return rc); other failures are aggregated. */
static int refuse(hsm *h, const char *op, const hsm_key *k, int rc, px_error *e)
{
    hsm_audit_event(h, op, k, NULL, NULL, rc, px_error_text(e), HSM_AUDIT_WRITE, NULL);
    return rc;
}

/* The cipher a PIN block format needs: TDES for 0, 1, 3; AES for 4. */
static int format_fits(crypto_pin_format f, char algorithm, const char *role, px_error *e)
{
    size_t len = crypto_pinblock_len(f);
    if (len == 0)
        return px_error_set(e, PX_EINVAL, "%s PIN block: unknown format %d", role, (int)f);
    if ((f == CRYPTO_PIN_ISO4) != (algorithm == 'A'))
        return px_error_set(e, PX_EINVAL, "%s PIN block: format %d needs a%s key", role, (int)f,
                            f == CRYPTO_PIN_ISO4 ? "n AES" : " TDES");
    return PX_OK;
}

/* Decrypt in under sched (a key of algorithm alg) and recover the PIN digits. */
static int pin_open(crypto_key *sched, char alg, const hsm_pin_block *in, const char *pan,
                    char pin[13], px_error *e)
{
    uint8_t clear[CRYPTO_PINBLOCK_MAX], panf[16];
    int rc = format_fits(in->format, alg, "source", e);
    if (rc != PX_OK)
        return rc;
    if (in->len != crypto_pinblock_len(in->format))
        return px_error_set(e, PX_EINVAL, "source PIN block: %zu bytes for format %d", in->len,
                            (int)in->format);
    if (in->format == CRYPTO_PIN_ISO4) {
        if ((rc = crypto_pinblock4_pan_field(pan, panf, e)) == PX_OK)
            rc = crypto_pinblock4_decipher(sched, in->data, panf, clear);
    } else {
        rc = crypto_key_ecb_decrypt(sched, in->data, in->len, clear);
    }
    if (rc == PX_OK &&
        crypto_pinblock_decode(in->format, clear, in->len, pan, pin, 13, NULL) != PX_OK)
        rc = px_error_set(e, PX_EFORMAT,
                          "source PIN block does not decode as format %d (wrong key, format "
                          "or PAN)",
                          (int)in->format);
    OPENSSL_cleanse(clear, sizeof clear);
    return rc;
}

/* Build the block of format f for pin and encrypt it under k. */
static int pin_seal(hsm_key *k, crypto_pin_format f, const char *pin, const char *pan,
                    hsm_pin_block *out, px_error *e)
{
    uint8_t clear[CRYPTO_PINBLOCK_MAX], panf[16];
    size_t len = 0;
    int rc = crypto_pinblock_encode(f, pin, pan, clear, sizeof clear, &len, e);
    if (rc == PX_OK && f == CRYPTO_PIN_ISO4) {
        if ((rc = crypto_pinblock4_pan_field(pan, panf, e)) == PX_OK)
            rc = crypto_pinblock4_encipher(k->sched, clear, panf, out->data);
    } else if (rc == PX_OK) {
        rc = crypto_key_ecb_encrypt(k->sched, clear, len, out->data);
    }
    OPENSSL_cleanse(clear, sizeof clear);
    out->len = len;
    out->format = f;
    return rc;
}

/* Policy of a translation to dst in dst_format (ISO 9564-1: no PAN-bound format to format 1). */
static int translate_allowed(const hsm_pin_block *in, hsm_key *dst, crypto_pin_format dst_format,
                             px_error *e)
{
    int rc = hsm_policy_check(dst, pin_usages, HSM_NEED_ENCRYPT, "destination PIN", e);
    if (rc != PX_OK ||
        (rc = format_fits(dst_format, dst->attrs.algorithm, "destination", e)) != PX_OK)
        return rc;
    if (dst_format == CRYPTO_PIN_ISO1 && in->format != CRYPTO_PIN_ISO1)
        return px_error_set(
            e, PX_EPERM, "PIN translation from format %d to format 1 is not allowed (ISO 9564-1)",
            (int)in->format);
    return PX_OK;
}

int hsm_pin_translate(hsm *h, hsm_key *src, const hsm_pin_block *in, hsm_key *dst,
                      crypto_pin_format dst_format, const char *pan, hsm_pin_block *out,
                      px_error *e)
{
    char pin[13];
    px_error local = {0};
    int rc;
    if (e == NULL)
        e = &local;
    if ((rc = hsm_audit_ok(h, e)) != PX_OK)
        return rc;
    if ((rc = hsm_policy_check(src, pin_usages, HSM_NEED_DECRYPT, "source PIN", e)) != PX_OK ||
        (rc = translate_allowed(in, dst, dst_format, e)) != PX_OK)
        return refuse(h, "pin.translate", src, rc, e);
    if ((rc = pin_open(src->sched, src->attrs.algorithm, in, pan, pin, e)) == PX_OK)
        rc = pin_seal(dst, dst_format, pin, pan, out, e);
    OPENSSL_cleanse(pin, sizeof pin);
    return hsm_agg(h, src, HSM_AGG_PIN_TRANSLATE, rc);
}

/* The DUKPT PIN key for ksn under bdk, as a ready key schedule; *alg its algorithm. */
static int dukpt_pin_key(hsm_key *bdk, const uint8_t *ksn, size_t ksnlen, crypto_pin_format f,
                         crypto_key **out, char *alg, px_error *e)
{
    uint8_t key[CRYPTO_DUKPT_AES_KEY_MAX];
    size_t n = 16;
    int rc;
    if (bdk->attrs.algorithm == 'T') {
        if (ksnlen != CRYPTO_DUKPT_KSN_LEN || bdk->attrs.length != 16)
            return px_error_set(e, PX_EINVAL,
                                "DUKPT: a TDES BDK is 16 bytes and takes a 10-byte KSN");
        rc = crypto_dukpt_host_key(bdk->key, ksn, CRYPTO_DUKPT_PIN, key, e);
        *alg = 'T';
    } else {
        crypto_dukpt_aes_keytype t = f != CRYPTO_PIN_ISO4      ? CRYPTO_DUKPT_AES_2TDEA
                                     : bdk->attrs.length == 16 ? CRYPTO_DUKPT_AES_AES128
                                     : bdk->attrs.length == 24 ? CRYPTO_DUKPT_AES_AES192
                                                               : CRYPTO_DUKPT_AES_AES256;
        if (ksnlen != CRYPTO_DUKPT_AES_KSN_LEN)
            return px_error_set(e, PX_EINVAL, "DUKPT: an AES BDK takes a 12-byte KSN");
        rc = crypto_dukpt_aes_host_key(bdk->key, bdk->attrs.length, ksn, CRYPTO_DUKPT_AES_PIN, t,
                                       key, sizeof key, &n, e);
        *alg = t == CRYPTO_DUKPT_AES_2TDEA ? 'T' : 'A';
    }
    if (rc == PX_OK)
        rc = crypto_key_new(hsm_crypto_alg(*alg), key, n, out, e);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

int hsm_pin_translate_dukpt(hsm *h, hsm_key *bdk, const uint8_t *ksn, size_t ksnlen,
                            const hsm_pin_block *in, hsm_key *dst, crypto_pin_format dst_format,
                            const char *pan, hsm_pin_block *out, px_error *e)
{
    crypto_key *k = NULL;
    char pin[13], alg = 0;
    px_error local = {0};
    int rc;
    if (e == NULL)
        e = &local;
    if ((rc = hsm_audit_ok(h, e)) != PX_OK)
        return rc;
    if ((rc = hsm_policy_check(bdk, bdk_usages, HSM_NEED_DERIVE, "DUKPT BDK", e)) != PX_OK ||
        (rc = translate_allowed(in, dst, dst_format, e)) != PX_OK)
        return refuse(h, "pin.translate.dukpt", bdk, rc, e);
    if (ksn == NULL)
        rc = px_error_set(e, PX_EINVAL, "DUKPT: KSN required");
    if (rc == PX_OK && (rc = dukpt_pin_key(bdk, ksn, ksnlen, in->format, &k, &alg, e)) == PX_OK &&
        (rc = pin_open(k, alg, in, pan, pin, e)) == PX_OK)
        rc = pin_seal(dst, dst_format, pin, pan, out, e);
    crypto_key_free(k);
    OPENSSL_cleanse(pin, sizeof pin);
    return hsm_agg(h, bdk, HSM_AGG_PIN_TRANSLATE_DUKPT, rc);
}

/* ---- verification ---- */

/* Visa PVV (Visa PIN verification service): TSP = 11 rightmost PAN digits before the check
 * digit || PVKI || 4 leftmost PIN digits, 3DES-encrypted under the PVK pair; the PVV is the
 * first 4 decimal digits of the result, then (A-F) - 10 if there are too few. */
static int pvv_compute(hsm_key *pvk, const char *pan, int pvki, const char *pin, char pvv[5],
                       px_error *e)
{
    char tsp[17];
    uint8_t blk[8], enc[8];
    size_t pl = pan ? strlen(pan) : 0, n = 0;
    if (pl < 12 || !px_is_digits(pan, pl) || pvki < 0 || pvki > 9 || strlen(pin) < 4)
        return px_error_set(e, PX_EINVAL,
                            "PVV: PAN of 12+ digits, PVKI 0-9 and a PIN of 4+ digits required");
    memcpy(tsp, pan + pl - 12, 11);
    tsp[11] = (char)('0' + pvki);
    memcpy(tsp + 12, pin, 4);
    for (size_t i = 0; i < 8; i++)
        blk[i] = (uint8_t)(((tsp[2 * i] - '0') << 4) | (tsp[2 * i + 1] - '0'));
    int rc = crypto_key_ecb_encrypt(pvk->sched, blk, 8, enc);
    for (int pass = 0; rc == PX_OK && pass < 2 && n < 4; pass++)
        for (size_t i = 0; i < 16 && n < 4; i++) {
            int d = (enc[i / 2] >> (i % 2 ? 0 : 4)) & 0xF;
            if (pass == 0 && d < 10)
                pvv[n++] = (char)('0' + d);
            else if (pass == 1 && d >= 10)
                pvv[n++] = (char)('0' + d - 10);
        }
    pvv[4] = 0;
    OPENSSL_cleanse(tsp, sizeof tsp);
    OPENSSL_cleanse(blk, sizeof blk);
    OPENSSL_cleanse(enc, sizeof enc);
    return rc;
}

/* IBM 3624 natural PIN digits: the validation data (padded with pad to 16 hex), encrypted
 * under the PVK, each hex digit of the result mapped through the decimalisation table. */
static int ibm_natural(hsm_key *pvk, const hsm_ibm3624 *p, char natural[17], px_error *e)
{
    char vd[17];
    uint8_t blk[8], enc[8];
    size_t vl = p->validation_data ? strlen(p->validation_data) : 0;
    if (p->dec_table == NULL || strlen(p->dec_table) != 16 || !px_is_digits(p->dec_table, 16))
        return px_error_set(e, PX_EINVAL, "IBM 3624: decimalisation table must be 16 digits");
    if (vl == 0 || vl > 16 || !px_hex_is_valid(p->validation_data, vl) ||
        !px_hex_is_valid(&p->pad, 1))
        return px_error_set(
            e, PX_EINVAL,
            "IBM 3624: validation data must be 1 to 16 hex digits, pad one hex digit");
    memcpy(vd, p->validation_data, vl);
    memset(vd + vl, p->pad, 16 - vl);
    vd[16] = 0;
    size_t n = 0;
    if (px_hex_decode(vd, blk, sizeof blk, &n) != PX_OK || n != 8)
        return px_error_set(e, PX_EINVAL, "IBM 3624: bad validation data");
    int rc = crypto_key_ecb_encrypt(pvk->sched, blk, 8, enc);
    for (size_t i = 0; rc == PX_OK && i < 16; i++)
        natural[i] = p->dec_table[(enc[i / 2] >> (i % 2 ? 0 : 4)) & 0xF];
    natural[16] = 0;
    OPENSSL_cleanse(enc, sizeof enc);
    return rc;
}

/* Offset digits for pin: (pin - natural) mod 10, as many as the PIN has. */
static void ibm_offset(const char *natural, const char *pin, char *offset)
{
    size_t i;
    for (i = 0; pin[i] != 0; i++)
        offset[i] = (char)('0' + (pin[i] - natural[i] + 10) % 10);
    offset[i] = 0;
}

/* Decrypt the PIN under pin_key after the policy checks of a verification with pvk. */
static int verify_prepare(hsm *h, const char *op, hsm_key *pin_key, const hsm_pin_block *in,
                          const char *pan, hsm_key *pvk, const char *const *pvk_usages,
                          hsm_need need, char pin[13], px_error *e)
{
    int rc = hsm_audit_ok(h, e);
    if (rc != PX_OK)
        return rc;
    if ((rc = hsm_policy_check(pin_key, pin_usages, HSM_NEED_DECRYPT, "PIN", e)) != PX_OK ||
        (rc = hsm_policy_check(pvk, pvk_usages, need, "PIN verification", e)) != PX_OK)
        return refuse(h, op, pvk, rc, e);
    if (pvk->attrs.algorithm != 'T' || (pvk_usages == pvv_usages && pvk->attrs.length != 16))
        return refuse(h, op, pvk,
                      px_error_set(e, PX_EPERM, "PIN verification key must be %s TDES",
                                   pvk_usages == pvv_usages ? "double-length" : "a"),
                      e);
    return pin_open(pin_key->sched, pin_key->attrs.algorithm, in, pan, pin, e);
}

int hsm_pin_verify_pvv(hsm *h, hsm_key *pin_key, const hsm_pin_block *in, const char *pan,
                       hsm_key *pvk, int pvki, const char *pvv, px_error *e)
{
    char pin[13], want[5];
    px_error local = {0};
    int rc;
    if (e == NULL)
        e = &local;
    rc = verify_prepare(h, "pin.verify", pin_key, in, pan, pvk, pvv_usages, HSM_NEED_MAC_VERIFY,
                        pin, e);
    if (rc == PX_EPERM || rc == PX_EIO)
        return rc;
    if (rc == PX_OK && (pvv == NULL || strlen(pvv) != 4 || !px_is_digits(pvv, 4)))
        rc = px_error_set(e, PX_EINVAL, "PVV: 4 digits required");
    if (rc == PX_OK && (rc = pvv_compute(pvk, pan, pvki, pin, want, e)) == PX_OK &&
        !px_ct_equal(want, pvv, 4))
        rc = px_error_set(e, PX_EAUTH, "PIN verification failed");
    OPENSSL_cleanse(pin, sizeof pin);
    OPENSSL_cleanse(want, sizeof want);
    return hsm_agg(h, pvk, HSM_AGG_PIN_VERIFY, rc);
}

int hsm_pin_pvv(hsm *h, hsm_key *pin_key, const hsm_pin_block *in, const char *pan, hsm_key *pvk,
                int pvki, char pvv[5], px_error *e)
{
    char pin[13];
    px_error local = {0};
    int rc;
    if (e == NULL)
        e = &local;
    pvv[0] = 0;
    rc = verify_prepare(h, "pin.generate", pin_key, in, pan, pvk, pvv_usages, HSM_NEED_MAC_GEN, pin,
                        e);
    if (rc == PX_EPERM || rc == PX_EIO)
        return rc;
    if (rc == PX_OK)
        rc = pvv_compute(pvk, pan, pvki, pin, pvv, e);
    OPENSSL_cleanse(pin, sizeof pin);
    return hsm_agg(h, pvk, HSM_AGG_PIN_GENERATE, rc);
}

int hsm_pin_verify_ibm3624(hsm *h, hsm_key *pin_key, const hsm_pin_block *in, const char *pan,
                           hsm_key *pvk, const hsm_ibm3624 *p, px_error *e)
{
    char pin[13], natural[17], got[13];
    size_t ol = p && p->offset ? strlen(p->offset) : 0;
    px_error local = {0};
    int rc;
    if (e == NULL)
        e = &local;
    rc = verify_prepare(h, "pin.verify", pin_key, in, pan, pvk, ibm_usages, HSM_NEED_MAC_VERIFY,
                        pin, e);
    if (rc == PX_EPERM || rc == PX_EIO)
        return rc;
    if (rc == PX_OK && (ol < 4 || ol > 12 || !px_is_digits(p->offset, ol)))
        rc = px_error_set(e, PX_EINVAL, "IBM 3624: offset must be 4 to 12 digits");
    if (rc == PX_OK && (rc = ibm_natural(pvk, p, natural, e)) == PX_OK) {
        ibm_offset(natural, pin, got);
        if (strlen(pin) < ol || !px_ct_equal(got, p->offset, ol))
            rc = px_error_set(e, PX_EAUTH, "PIN verification failed");
    }
    OPENSSL_cleanse(pin, sizeof pin);
    OPENSSL_cleanse(natural, sizeof natural);
    OPENSSL_cleanse(got, sizeof got);
    return hsm_agg(h, pvk, HSM_AGG_PIN_VERIFY, rc);
}

int hsm_pin_offset_ibm3624(hsm *h, hsm_key *pin_key, const hsm_pin_block *in, const char *pan,
                           hsm_key *pvk, const hsm_ibm3624 *p, char offset[13], px_error *e)
{
    char pin[13], natural[17];
    px_error local = {0};
    int rc;
    if (e == NULL)
        e = &local;
    offset[0] = 0;
    rc = verify_prepare(h, "pin.generate", pin_key, in, pan, pvk, ibm_usages, HSM_NEED_MAC_GEN, pin,
                        e);
    if (rc == PX_EPERM || rc == PX_EIO)
        return rc;
    if (rc == PX_OK && (rc = ibm_natural(pvk, p, natural, e)) == PX_OK)
        ibm_offset(natural, pin, offset);
    OPENSSL_cleanse(pin, sizeof pin);
    OPENSSL_cleanse(natural, sizeof natural);
    return hsm_agg(h, pvk, HSM_AGG_PIN_GENERATE, rc);
}
