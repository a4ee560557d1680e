/*
 * keymgmt.c: key management commands: generate, form from components, import, export,
 * derive, delete. Each is audited individually and fsynced; each refusal too.
 */
#include "hsm/hsm_int.h"
#include "lib/hex.h"
#include "lib/str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define HSM_FORM_MAX 3 /* components a key is formed from */

/* Record a refusal or failure of op and return rc (e is never NULL here). */
static int refuse(hsm *h, const char *op, const hsm_key *k, const char *label, int rc, px_error *e)
{
    hsm_audit_event(h, op, k, label, NULL, rc, px_error_text(e), HSM_AUDIT_SYNC, NULL);
    return rc;
}

/* Common checks for a new key: audit usable, attributes valid, label valid (if any). */
static int check_new(hsm *h, const hsm_key_attrs *a, const char *label, px_error *e)
{
    int rc = hsm_audit_ok(h, e);
    if (rc != PX_OK)
        return rc;
    if (a == NULL)
        return px_error_set(e, PX_EINVAL, "key attributes: required");
    if (label != NULL && !hsm_label_is_valid(label))
        return px_error_set(e, PX_EINVAL, "key label: 1 to %d of A-Z a-z 0-9 . _ - : /",
                            PX_HSM_LABEL_MAX - 1);
    return hsm_attrs_check(a, e);
}

int hsm_key_generate(hsm *h, const hsm_key_attrs *a, const char *label, hsm_keyblock *out,
                     px_error *e)
{
    uint8_t key[CRYPTO_KEY_MAX];
    px_error local = {0};
    int rc, tries = 0;
    if (e == NULL)
        e = &local;
    if ((rc = check_new(h, a, label, e)) != PX_OK)
        return refuse(h, "key.generate", NULL, label, rc, e);
    if (a->algorithm != 'T' && a->algorithm != 'A')
        return refuse(h, "key.generate", NULL, label,
                      px_error_set(e, PX_EINVAL, "generate: algorithm must be T (TDES) or A (AES)"),
                      e);
    do {
        if ((rc = crypto_random(key, a->length, e)) != PX_OK)
            return rc;
        if (a->algorithm == 'T')
            crypto_des_set_odd_parity(key, a->length);
    } while (hsm_key_is_degenerate(a->algorithm, key, a->length) && ++tries < 8);
    rc = hsm_key_emit(h, "key.generate", a, label, key, a->length, NULL, out, e);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

/* Decode component i (hex of keylen bytes) and check it against its KCV. */
static int take_component(const hsm_key_attrs *a, const hsm_component *c, size_t i, uint8_t *out,
                          px_error *e)
{
    uint8_t kcv[CRYPTO_KCV_MAX * 2];
    size_t n = 0, kn = 0;
    if (c->hex == NULL || px_hex_decode(c->hex, out, CRYPTO_KEY_MAX, &n) != PX_OK || n != a->length)
        return px_error_set(e, PX_EINVAL, "component %zu: expected %zu bytes of hex", i + 1,
                            a->length);
    if (c->kcv == NULL || px_hex_decode(c->kcv, kcv, sizeof kcv, &kn) != PX_OK || kn < 3)
        return px_error_set(e, PX_EINVAL, "component %zu: check value required (at least 6 hex)",
                            i + 1);
    if (crypto_kcv_verify(hsm_crypto_alg(a->algorithm), out, n, kcv, kn, NULL) != PX_OK)
        return px_error_set(e, PX_EAUTH, "component %zu: check value does not match (mistyped?)",
                            i + 1);
    return PX_OK;
}

int hsm_key_form(hsm *h, const hsm_key_attrs *a, const hsm_component *c, size_t n,
                 const char *label, hsm_keyblock *out, px_error *e)
{
    uint8_t comp[HSM_FORM_MAX][CRYPTO_KEY_MAX], key[CRYPTO_KEY_MAX];
    const uint8_t *ptrs[HSM_FORM_MAX];
    px_error local = {0};
    char detail[32];
    int rc;
    if (e == NULL)
        e = &local;
    if ((rc = check_new(h, a, label, e)) == PX_OK && (n < 2 || n > HSM_FORM_MAX))
        rc = px_error_set(e, PX_EINVAL, "form: 2 or 3 components, not %zu", n);
    if (rc == PX_OK && a->algorithm != 'T' && a->algorithm != 'A')
        rc = px_error_set(e, PX_EINVAL, "form: algorithm must be T (TDES) or A (AES)");
    for (size_t i = 0; rc == PX_OK && i < n; i++) {
        rc = take_component(a, &c[i], i, comp[i], e);
        ptrs[i] = comp[i];
    }
    if (rc == PX_OK)
        rc = crypto_key_combine(hsm_crypto_alg(a->algorithm), ptrs, n, a->length, NULL, 0, key, e);
    if (rc == PX_OK && a->algorithm == 'T')
        crypto_des_set_odd_parity(key, a->length);
    if (rc == PX_OK && hsm_key_is_degenerate(a->algorithm, key, a->length))
        rc = px_error_set(e, PX_EINVAL,
                          "form: the combined TDES key has equal halves (single DES)");
    OPENSSL_cleanse(comp, sizeof comp);
    if (rc != PX_OK) {
        OPENSSL_cleanse(key, sizeof key);
        return refuse(h, "key.form", NULL, label, rc, e);
    }
    snprintf(detail, sizeof detail, "components=%zu", n);
    rc = hsm_key_emit(h, "key.form", a, label, key, a->length, detail, out, e);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

/* The strength rule of X9.24-1: a key is only ever protected by a key at least as strong. */
static int check_strength(const hsm_key *kek, const hsm_key_attrs *a, px_error *e)
{
    int ks = hsm_key_strength(kek->attrs.algorithm, kek->attrs.length),
        s = hsm_key_strength(a->algorithm, a->length);
    if (s > ks)
        return px_error_set(e, PX_EPERM,
                            "KEK %s (KCV %s, %d bits) is weaker than the key (%d bits)",
                            kek->label[0] ? kek->label : "(unnamed)", kek->kcv, ks, s);
    return PX_OK;
}

/* Import a TR-31 block under a K1 KBPK: attributes come from its header. */
static int import_tr31(hsm *h, hsm_key *kek, const char *block, hsm_key_attrs *a, uint8_t *key,
                       px_error *e)
{
    crypto_tr31_header *hd = malloc(sizeof *hd);
    size_t n = strnlen(block, PX_HSM_KEYBLOCK_MAX), keylen = 0;
    int rc = hd != NULL ? PX_OK : px_error_set(e, PX_ENOMEM, "import: out of memory");
    (void)h;
    if (rc == PX_OK && n >= PX_HSM_KEYBLOCK_MAX)
        rc = px_error_set(e, PX_ETOOBIG, "import: key block longer than %d characters",
                          PX_HSM_KEYBLOCK_MAX - 1);
    if (rc == PX_OK && (block[0] != (kek->attrs.algorithm == 'T' ? 'B' : 'D')))
        rc = px_error_set(e, PX_EINVAL, "import: a %s KBPK takes key blocks of version %c",
                          kek->attrs.algorithm == 'T' ? "TDES" : "AES",
                          kek->attrs.algorithm == 'T' ? 'B' : 'D');
    if (rc == PX_OK && (rc = crypto_tr31_unwrap(kek->key, kek->attrs.length, block, n, hd, key,
                                                CRYPTO_TR31_KEY_MAX, &keylen, e)) != PX_OK)
        px_error_prefix(e, "import: ");
    if (rc == PX_OK) {
        memcpy(a->usage, hd->usage, 3);
        a->algorithm = hd->algorithm;
        a->mode = hd->mode;
        a->exportability = hd->exportability;
        a->length = keylen;
    }
    free(hd);
    return rc;
}

/* Import a legacy cryptogram (hex, ECB under a K0 KEK) with the caller's attributes. */
static int import_ecb(hsm_key *kek, const char *hex, const hsm_key_attrs *given, hsm_key_attrs *a,
                      uint8_t *key, px_error *e)
{
    uint8_t ct[CRYPTO_KEY_MAX];
    size_t n = 0, bs = crypto_key_block_size(kek->sched);
    if (given == NULL)
        return px_error_set(e, PX_EINVAL, "import: key attributes required with a K0 KEK");
    *a = *given;
    if (hex == NULL || px_hex_decode(hex, ct, sizeof ct, &n) != PX_OK || n == 0 || n % bs != 0)
        return px_error_set(e, PX_EINVAL, "import: cryptogram must be hex of whole %zu-byte blocks",
                            bs);
    a->length = n;
    if (crypto_key_ecb_decrypt(kek->sched, ct, n, key) != PX_OK)
        return px_error_set(e, PX_ECRYPTO, "import: decryption failed");
    return PX_OK;
}

int hsm_key_import(hsm *h, hsm_key *kek, const char *cryptogram, const hsm_key_attrs *a,
                   const char *kcv, const char *label, hsm_keyblock *out, px_error *e)
{
    static const char *const k0[] = {"K0", NULL}, *const k1[] = {"K1", NULL};
    uint8_t key[CRYPTO_TR31_KEY_MAX], want[CRYPTO_KCV_MAX * 2];
    hsm_key_attrs got;
    px_error local = {0};
    size_t wn = 0;
    int is_tr31, rc;
    if (e == NULL)
        e = &local;
    if ((rc = hsm_audit_ok(h, e)) != PX_OK)
        return rc;
    is_tr31 = strcmp(kek->attrs.usage, "K1") == 0;
    memset(&got, 0, sizeof got);
    rc = hsm_policy_check(kek, is_tr31 ? k1 : k0, HSM_NEED_DECRYPT, "import KEK", e);
    if (rc == PX_OK && label != NULL && !hsm_label_is_valid(label))
        rc = px_error_set(e, PX_EINVAL, "key label: 1 to %d of A-Z a-z 0-9 . _ - : /",
                          PX_HSM_LABEL_MAX - 1);
    if (rc == PX_OK)
        rc = is_tr31 ? (a != NULL ? px_error_set(e, PX_EINVAL,
                                                 "import: a TR-31 block carries its own attributes")
                                  : import_tr31(h, kek, cryptogram, &got, key, e))
                     : import_ecb(kek, cryptogram, a, &got, key, e);
    if (rc == PX_OK && strchr("TAD", got.algorithm) == NULL)
        rc = px_error_set(e, PX_EINVAL,
                          "import: only TDES, AES and DES keys are imported under a KEK");
    if (rc == PX_OK && (rc = hsm_attrs_check(&got, e)) == PX_OK &&
        (rc = check_strength(kek, &got, e)) == PX_OK &&
        hsm_key_is_degenerate(got.algorithm, key, got.length))
        rc = px_error_set(e, PX_EINVAL, "import: the TDES key has equal halves (single DES)");
    if (rc == PX_OK && kcv != NULL &&
        (px_hex_decode(kcv, want, sizeof want, &wn) != PX_OK || wn < 3 ||
         crypto_kcv_verify(hsm_crypto_alg(got.algorithm), key, got.length, want, wn, NULL) !=
             PX_OK))
        rc = px_error_set(e, PX_EAUTH, "import: the key does not match check value %s", kcv);
    if (rc == PX_OK) {
        char detail[PX_HSM_LABEL_MAX + 48];
        snprintf(detail, sizeof detail, "kek=%s kek_kcv=%s", kek->label[0] ? kek->label : "-",
                 kek->kcv);
        rc = hsm_key_emit(h, "key.import", &got, label, key, got.length, detail, out, e);
    } else
        refuse(h, "key.import", NULL, label, rc, e);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

/* May key go out under kek in fmt? (exportability, KEK usage and mode, strength) */
static int export_allowed(const hsm_key *kek, const hsm_key *key, hsm_export_format fmt,
                          px_error *e)
{
    static const char *const k0[] = {"K0", NULL}, *const k1[] = {"K1", NULL};
    const char *name = key->label[0] ? key->label : "(unnamed)";
    int rc;
    if (kek == key)
        return px_error_set(e, PX_EPERM, "export: a key cannot be exported under itself");
    if (key->attrs.exportability == 'N')
        return px_error_set(e, PX_EPERM, "export: key %s (KCV %s) is non-exportable", name,
                            key->kcv);
    if (fmt == HSM_EXPORT_ECB && key->attrs.exportability != 'S')
        return px_error_set(e, PX_EPERM,
                            "export: key %s (KCV %s) has exportability E: only as a TR-31 key "
                            "block, not as an ECB cryptogram",
                            name, key->kcv);
    if ((rc = hsm_policy_check(kek, fmt == HSM_EXPORT_TR31 ? k1 : k0, HSM_NEED_ENCRYPT,
                               "export KEK", e)) != PX_OK)
        return rc;
    return check_strength(kek, &key->attrs, e);
}

/* The key as a TR-31 block under kek (version B under TDES, D under AES). */
static int export_tr31(const hsm_key *kek, const hsm_key *key, char *out, size_t cap, px_error *e)
{
    crypto_tr31_header *hd = malloc(sizeof *hd);
    char kc[2 + PX_HSM_KCV_HEX_MAX];
    int rc = hd != NULL ? PX_OK : px_error_set(e, PX_ENOMEM, "export: out of memory");
    if (rc == PX_OK)
        rc = crypto_tr31_header_init(hd, kek->attrs.algorithm == 'T' ? 'B' : 'D', key->attrs.usage,
                                     key->attrs.algorithm, key->attrs.mode, key->key_version,
                                     key->attrs.exportability, e);
    snprintf(kc, sizeof kc, "%s%s", key->attrs.algorithm == 'A' ? "01" : "00", key->kcv);
    if (rc == PX_OK)
        rc = crypto_tr31_header_add_opt(hd, "KC", kc, strlen(kc), e);
    if (rc == PX_OK)
        rc = crypto_tr31_wrap(kek->key, kek->attrs.length, hd, key->key, key->attrs.length, out,
                              cap, e);
    free(hd);
    return rc;
}

int hsm_key_export(hsm *h, hsm_key *kek, hsm_key *key, hsm_export_format fmt, char *out,
                   size_t outcap, char kcv[PX_HSM_KCV_HEX_MAX], px_error *e)
{
    uint8_t ct[CRYPTO_KEY_MAX];
    px_error local = {0};
    char detail[PX_HSM_LABEL_MAX + 64];
    int rc;
    if (e == NULL)
        e = &local;
    if ((rc = hsm_audit_ok(h, e)) != PX_OK)
        return rc;
    out[0] = 0;
    if ((rc = export_allowed(kek, key, fmt, e)) == PX_OK) {
        if (fmt == HSM_EXPORT_TR31) {
            rc = export_tr31(kek, key, out, outcap, e);
        } else if (key->attrs.length % crypto_key_block_size(kek->sched) != 0 ||
                   outcap < 2 * key->attrs.length + 1) {
            rc = px_error_set(e, PX_EINVAL,
                              "export: a %zu-byte key is not whole blocks of the KEK's cipher "
                              "(use a TR-31 block)",
                              key->attrs.length);
        } else if ((rc = crypto_key_ecb_encrypt(kek->sched, key->key, key->attrs.length, ct)) ==
                   PX_OK) {
            px_hex_encode(ct, key->attrs.length, out);
        }
    }
    OPENSSL_cleanse(ct, sizeof ct);
    if (rc != PX_OK) {
        out[0] = 0;
        return refuse(h, "key.export", key, NULL, rc, e);
    }
    snprintf(detail, sizeof detail, "format=%s kek=%s kek_kcv=%s",
             fmt == HSM_EXPORT_TR31 ? "tr31" : "ecb", kek->label[0] ? kek->label : "-", kek->kcv);
    if ((rc = hsm_audit_event(h, "key.export", key, NULL, NULL, PX_OK, detail, HSM_AUDIT_SYNC,
                              e)) != PX_OK) {
        out[0] = 0;
        return rc;
    }
    px_strlcpy(kcv, key->kcv, PX_HSM_KCV_HEX_MAX);
    return PX_OK;
}

/* Exportability order: N is tightest, then E, then S. */
static int export_rank(char x)
{
    return x == 'N' ? 0 : x == 'E' ? 1 : 2;
}

/* The derived key material for p under master (16 bytes T, or 8 bytes D). */
static int derive_material(const hsm_key *master, const hsm_derive_params *p, hsm_key_attrs *a,
                           uint8_t *key, px_error *e)
{
    int rc;
    switch (p->method) {
    case HSM_DERIVE_3DES:
        a->algorithm = 'T';
        a->length = 16;
        rc = crypto_derive_key(master->key, master->attrs.length, p->data, p->datalen, key, e);
        break;
    case HSM_DERIVE_EMV_A:
        a->algorithm = 'T';
        a->length = 16;
        return crypto_derive_emv_option_a(master->key, master->attrs.length, p->pan, p->psn, key,
                                          e);
    case HSM_DERIVE_SESSION:
        a->algorithm = 'D';
        a->length = 8;
        if (p->data == NULL || p->datalen != 8)
            return px_error_set(e, PX_EINVAL, "derive: a session key takes 8 bytes of data");
        rc = crypto_encrypt(CRYPTO_TDES, CRYPTO_ECB, master->key, master->attrs.length, NULL,
                            p->data, 8, key, e);
        break;
    default: return px_error_set(e, PX_EINVAL, "derive: unknown method %d", (int)p->method);
    }
    if (rc == PX_OK)
        crypto_des_set_odd_parity(key, a->length);
    return rc;
}

/* May master derive a key with attributes a? */
static int derive_allowed(const hsm_key *master, const hsm_key_attrs *a, px_error *e)
{
    static const char *const any[] = {"B0", "B1", "C0", "D0", "E0", "E1", "E2",
                                      "E3", "E4", "E5", "E6", "K0", "K1", "M0",
                                      "M1", "M3", "M6", "P0", "V1", "V2", NULL};
    int rc = hsm_policy_check(master, any, HSM_NEED_DERIVE, "derivation master", e);
    if (rc != PX_OK)
        return rc;
    if (master->attrs.algorithm != 'T' || master->attrs.length != 16)
        return px_error_set(e, PX_EINVAL, "derive: the master must be a double-length TDES key");
    if (a->usage[0] != master->attrs.usage[0])
        return px_error_set(e, PX_EPERM, "derive: a %s master derives %c* keys, not %s",
                            master->attrs.usage, master->attrs.usage[0], a->usage);
    if (export_rank(a->exportability) > export_rank(master->attrs.exportability))
        return px_error_set(e, PX_EPERM, "derive: exportability %c is looser than the master's %c",
                            a->exportability, master->attrs.exportability);
    return PX_OK;
}

int hsm_key_derive(hsm *h, hsm_key *master, const hsm_derive_params *p, const hsm_key_attrs *a,
                   const char *label, hsm_keyblock *out, px_error *e)
{
    uint8_t key[16];
    hsm_key_attrs d;
    px_error local = {0};
    char detail[PX_HSM_LABEL_MAX + 48];
    int rc;
    if (e == NULL)
        e = &local;
    if ((rc = hsm_audit_ok(h, e)) != PX_OK)
        return rc;
    if (a == NULL || p == NULL)
        return px_error_set(e, PX_EINVAL, "derive: parameters and attributes required");
    d = *a;
    if ((rc = derive_allowed(master, a, e)) == PX_OK && label != NULL && !hsm_label_is_valid(label))
        rc = px_error_set(e, PX_EINVAL, "key label: 1 to %d of A-Z a-z 0-9 . _ - : /",
                          PX_HSM_LABEL_MAX - 1);
    if (rc == PX_OK && (rc = derive_material(master, p, &d, key, e)) == PX_OK)
        rc = hsm_attrs_check(&d, e);
    if (rc != PX_OK) {
        OPENSSL_cleanse(key, sizeof key);
        return refuse(h, "key.derive", master, NULL, rc, e);
    }
    snprintf(detail, sizeof detail, "master=%s master_kcv=%s method=%d",
             master->label[0] ? master->label : "-", master->kcv, (int)p->method);
    rc = hsm_key_emit(h, "key.derive", &d, label, key, d.length, detail, out, e);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

int hsm_key_delete(hsm *h, const char *label, px_error *e)
{
    px_error local = {0};
    int rc;
    if (e == NULL)
        e = &local;
    if ((rc = hsm_audit_ok(h, e)) != PX_OK)
        return rc;
    if (!hsm_label_is_valid(label))
        return px_error_set(e, PX_EINVAL, "key label: 1 to %d of A-Z a-z 0-9 . _ - : /",
                            PX_HSM_LABEL_MAX - 1);
    rc = hsm_store_delete(h, label, e);
    if (rc != PX_OK)
        return refuse(h, "key.delete", NULL, label, rc, e);
    return hsm_audit_event(h, "key.delete", NULL, label, NULL, PX_OK, NULL, HSM_AUDIT_SYNC, e);
}
