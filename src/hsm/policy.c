/*
 * policy.c: which key may do what. The rules follow the X9.143-2022 key usage and mode of
 * use tables (table 2 and 3); docs/hsm.md lists them per operation.
 */
#include "hsm/hsm_int.h"
#include "lib/hex.h"

#include <string.h>

#include <openssl/crypto.h>

/* Key usages this HSM creates, the modes of use each admits, and the algorithms. */
typedef struct usage_rule {
    const char *usage;
    const char *modes;
    const char *algs;
} usage_rule;

static const usage_rule rules[] = {
    {"B0", "XN", "TA"},        /* base derivation key (DUKPT) */
    {"B1", "XN", "TA"},        /* initial DUKPT key */
    {"C0", "CGVN", "T"},       /* card verification key */
    {"D0", "BDEN", "TA"},      /* symmetric data encryption (TDK, DWK) */
    {"E0", "BCDEGVXN", "TA"},  /* EMV / chip card master keys: application cryptograms */
    {"E1", "BCDEGVXN", "TA"},  /* ... secure messaging for confidentiality */
    {"E2", "BCDEGVXN", "TAD"}, /* ... secure messaging for integrity */
    {"E3", "BCDEGVXN", "TA"},  /* ... data authentication code */
    {"E4", "BCDEGVXN", "TA"},  /* ... dynamic numbers */
    {"E5", "BCDEGVXN", "TA"},  /* ... card personalisation */
    {"E6", "BCDEGVXN", "TAD"}, /* ... other (PBOC purse load and purchase keys) */
    {"K0", "BDEXN", "TA"},     /* key encryption key (TMK, TK, ZMK; X: a DMK master) */
    {"K1", "BDEXN", "TA"},     /* TR-31 key block protection key */
    {"K3", "DN", "E"},         /* key agreement / wrapping key pair (ECDH P-256, private) */
    {"M0", "CGVN", "T"},       /* ISO 16609 MAC algorithm 1 (TDES) */
    {"M1", "CGVN", "TD"},      /* ISO 9797-1 MAC algorithm 1 */
    {"M3", "CGVN", "T"},       /* ISO 9797-1 MAC algorithm 3 (X9.19 retail MAC) */
    {"M6", "CGVN", "TA"},      /* ISO 9797-1:2011 MAC algorithm 5 (CMAC) */
    {"P0", "BDEN", "TA"},      /* PIN encryption (PIK/TPK, ZPK) */
    {"V1", "CGVN", "T"},       /* PIN verification, IBM 3624 */
    {"V2", "CGVN", "T"},       /* PIN verification, Visa PVV */
    {NULL, NULL, NULL}};

static const usage_rule *find_rule(const char *usage)
{
    for (size_t i = 0; rules[i].usage != NULL; i++)
        if (strcmp(rules[i].usage, usage) == 0)
            return &rules[i];
    return NULL;
}

crypto_alg hsm_crypto_alg(char algorithm)
{
    return algorithm == 'T'   ? CRYPTO_TDES
           : algorithm == 'A' ? CRYPTO_AES
           : algorithm == 'D' ? CRYPTO_DES
                              : (crypto_alg)0;
}

int hsm_attrs_check(const hsm_key_attrs *a, px_error *e)
{
    const usage_rule *r = find_rule(a->usage);
    crypto_alg alg = hsm_crypto_alg(a->algorithm);
    if (r == NULL)
        return px_error_set(e, PX_EUNSUPPORTED, "key usage '%.2s' is not one this HSM manages",
                            a->usage);
    if (a->algorithm == 0 || strchr(r->algs, a->algorithm) == NULL)
        return px_error_set(e, PX_EINVAL, "key usage %s: algorithm '%c' not allowed (allowed: %s)",
                            r->usage, a->algorithm ? a->algorithm : '?', r->algs);
    if (a->mode == 0 || strchr(r->modes, a->mode) == NULL)
        return px_error_set(e, PX_EINVAL,
                            "key usage %s: mode of use '%c' not allowed (allowed: %s)", r->usage,
                            a->mode ? a->mode : '?', r->modes);
    if (a->exportability == 0 || strchr("ENS", a->exportability) == NULL)
        return px_error_set(e, PX_EINVAL, "exportability must be E, N or S");
    if (a->algorithm == 'E'
            ? a->length != 32
            : !crypto_key_len_is_valid(alg, a->length) || (alg == CRYPTO_TDES && a->length == 8))
        return px_error_set(e, PX_EINVAL, "key length %zu is not valid for algorithm '%c'",
                            a->length, a->algorithm);
    return PX_OK;
}

/* Does mode of use m permit need? N: no restriction beyond the usage. */
static int mode_permits(char m, hsm_need need)
{
    switch (need) {
    case HSM_NEED_ENCRYPT: return m == 'B' || m == 'E' || m == 'N';
    case HSM_NEED_DECRYPT: return m == 'B' || m == 'D' || m == 'N';
    case HSM_NEED_MAC_GEN: return m == 'C' || m == 'G' || m == 'N';
    case HSM_NEED_MAC_VERIFY: return m == 'C' || m == 'V' || m == 'N';
    case HSM_NEED_DERIVE: return m == 'X';
    }
    return 0;
}

static const char *need_name(hsm_need need)
{
    static const char *const names[] = {"",         "encrypt", "decrypt",
                                        "generate", "verify",  "derive keys"};
    return names[need];
}

int hsm_policy_check(const hsm_key *k, const char *const *usages, hsm_need need, const char *role,
                     px_error *e)
{
    const char *label = k->label[0] ? k->label : "(unnamed)";
    int ok = 0;
    for (size_t i = 0; usages[i] != NULL && !ok; i++)
        ok = strcmp(usages[i], k->attrs.usage) == 0;
    if (!ok)
        return px_error_set(e, PX_EPERM, "%s key %s (KCV %s) has usage %s: not allowed here", role,
                            label, k->kcv, k->attrs.usage);
    if (!mode_permits(k->attrs.mode, need))
        return px_error_set(e, PX_EPERM, "%s key %s (KCV %s) has mode of use %c: it may not %s",
                            role, label, k->kcv, k->attrs.mode, need_name(need));
    return PX_OK;
}

int hsm_key_strength(char algorithm, size_t length)
{
    if (algorithm == 'T')
        return length == 16 ? 80 : 112;
    if (algorithm == 'A')
        return (int)length * 8;
    return algorithm == 'D' ? 56 : algorithm == 'E' ? 128 : 0;
}

int hsm_kcv_hex(char algorithm, const uint8_t *key, size_t keylen, char out[PX_HSM_KCV_HEX_MAX],
                px_error *e)
{
    uint8_t kcv[CRYPTO_KCV_MAX];
    size_t n = 0;
    if (algorithm == 'E')
        return hsm_ec_kcv_hex(key, out, e);
    int rc = crypto_kcv(hsm_crypto_alg(algorithm), key, keylen, kcv, sizeof kcv, &n, e);
    if (rc != PX_OK)
        return rc;
    px_hex_encode(kcv, n, out);
    return PX_OK;
}

int hsm_key_is_degenerate(char algorithm, const uint8_t *key, size_t keylen)
{
    if (algorithm != 'T')
        return 0;
    if (CRYPTO_memcmp(key, key + 8, 8) == 0)
        return 1;
    return keylen == 24 && CRYPTO_memcmp(key + 8, key + 16, 8) == 0;
}
