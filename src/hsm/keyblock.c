/*
 * keyblock.c: keys under the LMK. A key block is TR-31 version D under the KBPK derived
 * from the LMK, with optional blocks (X9.143 6.3):
 *   KC  the key's check value ("00" + TDES KCV, "01" + AES CMAC KCV; none for EC keys)
 *   KP  the check value of the KBPK ("01" + CMAC KCV): tells which LMK made the block
 *   TS  creation time ("00" + YYYYMMDDhhmmssZ)
 *   LB  the label of a named key (so a swapped row in the store is caught at load)
 * Loading checks the MAC before anything in the block is trusted.
 */
#include "hsm/hsm_int.h"
#include "lib/hex.h"
#include "lib/str.h"
#include "lib/time.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

int hsm_label_is_valid(const char *label)
{
    size_t n = label ? strlen(label) : 0;
    if (n == 0 || n >= PX_HSM_LABEL_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = label[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              strchr("._-:/", c) != NULL))
            return 0;
    }
    return 1;
}

/* Header of a block under the LMK for attributes a, with our optional blocks. */
static int build_header(hsm *h, const hsm_key_attrs *a, const char *label, const char *kcv,
                        crypto_tr31_header *hd, px_error *e)
{
    char kc[2 + PX_HSM_KCV_HEX_MAX], kp[2 + PX_HSM_KCV_HEX_MAX], ts[20];
    int rc = crypto_tr31_header_init(hd, 'D', a->usage, a->algorithm, a->mode, "00",
                                     a->exportability, e);
    if (rc != PX_OK)
        return rc;
    snprintf(kc, sizeof kc, "%s%s", a->algorithm == 'T' || a->algorithm == 'D' ? "00" : "01", kcv);
    snprintf(kp, sizeof kp, "01%s", h->lk.kbpk_check);
    px_strlcpy(ts, "00", sizeof ts);
    px_time_format_utc(px_now_ms(), "%Y%m%d%H%M%SZ", ts + 2, sizeof ts - 2);
    if ((a->algorithm != 'E' &&
         (rc = crypto_tr31_header_add_opt(hd, "KC", kc, strlen(kc), e)) != PX_OK) ||
        (rc = crypto_tr31_header_add_opt(hd, "KP", kp, strlen(kp), e)) != PX_OK ||
        (rc = crypto_tr31_header_add_opt(hd, "TS", ts, strlen(ts), e)) != PX_OK)
        return rc;
    if (label != NULL)
        rc = crypto_tr31_header_add_opt(hd, "LB", label, strlen(label), e);
    return rc;
}

int hsm_block_wrap(hsm *h, const hsm_key_attrs *a, const char *label, const uint8_t *key,
                   size_t keylen, hsm_keyblock *out, px_error *e)
{
    crypto_tr31_header *hd = malloc(sizeof *hd);
    int rc;
    if (hd == NULL)
        return px_error_set(e, PX_ENOMEM, "key block: out of memory");
    if ((rc = hsm_kcv_hex(a->algorithm, key, keylen, out->kcv, e)) == PX_OK &&
        (rc = build_header(h, a, label, out->kcv, hd, e)) == PX_OK)
        rc = crypto_tr31_wrap(h->lk.kbpk, sizeof h->lk.kbpk, hd, key, keylen, out->block,
                              sizeof out->block, e);
    free(hd);
    return rc;
}

int hsm_key_emit(hsm *h, const char *op, const hsm_key_attrs *a, const char *label,
                 const uint8_t *key, size_t keylen, const char *extra, hsm_keyblock *out,
                 px_error *e)
{
    char detail[128];
    int rc = hsm_block_wrap(h, a, label, key, keylen, out, e);
    snprintf(detail, sizeof detail, "usage=%s alg=%c mode=%c exportability=%c length=%zu%s%s",
             a->usage, a->algorithm, a->mode, a->exportability, keylen, extra ? " " : "",
             extra ? extra : "");
    if (rc == PX_OK && label != NULL)
        rc = hsm_store_insert(h, label, a, out, e);
    if (rc != PX_OK) {
        hsm_audit_event(h, op, NULL, label, NULL, rc, e ? px_error_text(e) : NULL, HSM_AUDIT_SYNC,
                        NULL);
        memset(out, 0, sizeof *out);
        return rc;
    }
    rc = hsm_audit_event(h, op, NULL, label, out->kcv, PX_OK, detail, HSM_AUDIT_SYNC, e);
    if (rc != PX_OK) { /* fail closed: a key nobody can account for is not handed out */
        if (label != NULL)
            hsm_store_delete(h, label, NULL);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

/* Optional block id of hd as a NUL-terminated string into out (empty when absent). */
static void opt_str(const crypto_tr31_header *hd, const char *id, char *out, size_t cap)
{
    const char *d = NULL;
    size_t n = 0;
    out[0] = 0;
    if (crypto_tr31_header_find_opt(hd, id, &d, &n) == PX_OK && n < cap) {
        memcpy(out, d, n);
        out[n] = 0;
    }
}

/* Parse, authenticate and decrypt block into k (attributes, key, KCV, label). */
static int unwrap_into(hsm *h, const char *block, hsm_key *k, crypto_tr31_header *hd, px_error *e)
{
    size_t n = strnlen(block, PX_HSM_KEYBLOCK_MAX), keylen = 0;
    char kp[PX_HSM_KCV_HEX_MAX + 4], kc[PX_HSM_KCV_HEX_MAX + 4];
    int rc;
    if (n >= PX_HSM_KEYBLOCK_MAX)
        return px_error_set(e, PX_ETOOBIG, "key block: longer than %d characters",
                            PX_HSM_KEYBLOCK_MAX - 1);
    if ((rc = crypto_tr31_header_parse(block, n, hd, e)) != PX_OK)
        return px_error_prefix(e, "key block: ");
    if (hd->version != 'D')
        return px_error_set(e, PX_EAUTH, "key block: version %c is not a block under this LMK",
                            hd->version);
    opt_str(hd, "KP", kp, sizeof kp);
    if (kp[0] != 0 && strcmp(kp + 2, h->lk.kbpk_check) != 0)
        return px_error_set(e, PX_EAUTH,
                            "key block: made under another LMK (key block protection key "
                            "check %s, this LMK's is %s)",
                            kp + 2, h->lk.kbpk_check);
    rc = crypto_tr31_unwrap(h->lk.kbpk, sizeof h->lk.kbpk, block, n, hd, k->key, sizeof k->key,
                            &keylen, e);
    if (rc == PX_EAUTH)
        return px_error_set(e, PX_EAUTH,
                            "key block: does not authenticate under this LMK (tampered, "
                            "or made under another LMK)");
    if (rc != PX_OK)
        return px_error_prefix(e, "key block: ");
    memcpy(k->attrs.usage, hd->usage, 3);
    k->attrs.algorithm = hd->algorithm;
    k->attrs.mode = hd->mode;
    k->attrs.exportability = hd->exportability;
    k->attrs.length = keylen;
    memcpy(k->key_version, hd->key_version, 3);
    if ((rc = hsm_attrs_check(&k->attrs, e)) != PX_OK)
        return px_error_prefix(e, "key block: ");
    if ((rc = hsm_kcv_hex(k->attrs.algorithm, k->key, keylen, k->kcv, e)) != PX_OK)
        return rc;
    opt_str(hd, "KC", kc, sizeof kc);
    if (kc[0] != 0 && strcmp(kc + 2, k->kcv) != 0)
        return px_error_set(e, PX_EAUTH, "key block: its KC block does not match the key");
    opt_str(hd, "LB", k->label, sizeof k->label);
    return PX_OK;
}

/* Unwrap and prepare a key; *out NULL on failure. */
static int key_from_block(hsm *h, const char *block, hsm_key **out, px_error *e)
{
    hsm_key *k = calloc(1, sizeof *k);
    crypto_tr31_header *hd = malloc(sizeof *hd);
    int rc = k && hd ? PX_OK : px_error_set(e, PX_ENOMEM, "key block: out of memory");
    *out = NULL;
    if (rc == PX_OK)
        rc = unwrap_into(h, block, k, hd, e);
    if (rc == PX_OK && k->attrs.algorithm != 'D' && k->attrs.algorithm != 'E')
        rc = crypto_key_new(hsm_crypto_alg(k->attrs.algorithm), k->key, k->attrs.length, &k->sched,
                            e);
    free(hd);
    if (rc != PX_OK) {
        if (k != NULL)
            OPENSSL_cleanse(k, sizeof *k);
        free(k);
        return rc;
    }
    *out = k;
    return PX_OK;
}

int hsm_key_load(hsm *h, const char *block, hsm_key **out, px_error *e)
{
    hsm_key *k = NULL;
    px_error local = {0};
    int rc;
    *out = NULL;
    if (e == NULL)
        e = &local;
    if ((rc = hsm_audit_ok(h, e)) != PX_OK)
        return rc;
    if (h->nloaded >= PX_HSM_KEYS_LOADED_MAX)
        return px_error_set(e, PX_ELIMIT, "key load: %d keys already loaded",
                            PX_HSM_KEYS_LOADED_MAX);
    if ((rc = key_from_block(h, block, &k, e)) != PX_OK) {
        hsm_audit_event(h, "key.load", NULL, NULL, NULL, rc, px_error_text(e), HSM_AUDIT_SYNC,
                        NULL);
        return rc;
    }
    if ((rc = hsm_audit_event(h, "key.load", k, NULL, NULL, PX_OK, k->attrs.usage, HSM_AUDIT_WRITE,
                              e)) != PX_OK) {
        crypto_key_free(k->sched);
        OPENSSL_cleanse(k, sizeof *k);
        free(k);
        return rc;
    }
    k->next = h->loaded;
    if (h->loaded != NULL)
        h->loaded->prev = k;
    h->loaded = k;
    h->nloaded++;
    *out = k;
    return PX_OK;
}

int hsm_key_load_named(hsm *h, const char *label, hsm_key **out, px_error *e)
{
    char block[PX_HSM_KEYBLOCK_MAX];
    px_error local = {0};
    int rc;
    *out = NULL;
    if (e == NULL)
        e = &local;
    if (!hsm_label_is_valid(label))
        return px_error_set(e, PX_EINVAL, "key label: 1 to %d of A-Z a-z 0-9 . _ - : /",
                            PX_HSM_LABEL_MAX - 1);
    if ((rc = hsm_store_get(h, label, block, sizeof block, e)) != PX_OK)
        return rc;
    if ((rc = hsm_key_load(h, block, out, e)) != PX_OK)
        return px_error_prefix(e, "key %s: ", label);
    if (strcmp((*out)->label, label) != 0) {
        hsm_key_free(h, *out);
        *out = NULL;
        return px_error_set(e, PX_EAUTH, "key %s: the stored block is bound to another label",
                            label);
    }
    return PX_OK;
}

void hsm_key_get_attrs(const hsm_key *k, hsm_key_attrs *out)
{
    *out = k->attrs;
}

const char *hsm_key_kcv(const hsm_key *k)
{
    return k->kcv;
}

int hsm_key_check_value(hsm *h, hsm_key *k, size_t n, uint8_t *out, px_error *e)
{
    static const uint8_t zero[16] = {0};
    uint8_t full[CRYPTO_MAC_MAX];
    size_t got = 0;
    int rc;
    (void)h;
    if (k->attrs.algorithm == 'T' && k->sched != NULL && n >= 1 && n <= 8) {
        rc = crypto_key_ecb_encrypt(k->sched, zero, 8, full);
        if (rc != PX_OK)
            return px_error_set(e, rc, "check value: TDES encryption failed");
    } else if (k->attrs.algorithm == 'A' && n >= 1 && n <= 16) {
        rc = crypto_cmac(CRYPTO_AES, k->key, k->attrs.length, zero, 16, full, sizeof full, &got, e);
        if (rc != PX_OK)
            return rc;
    } else {
        return px_error_set(e, PX_EINVAL, "check value: %zu bytes of a '%c' key is not defined", n,
                            k->attrs.algorithm);
    }
    memcpy(out, full, n);
    OPENSSL_cleanse(full, sizeof full);
    return PX_OK;
}

const char *hsm_key_label(const hsm_key *k)
{
    return k->label;
}
