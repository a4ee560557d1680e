/* dukpt_aes.c: AES DUKPT, ANSI X9.24-3:2017 (host derivation and device registers). */
#include "crypto/dukpt.h"
#include "crypto/crypto.h"
#include "crypto/crypto_int.h"

#include <string.h>
#include <openssl/crypto.h>

static int popcount32(uint32_t v)
{
    int n = 0;
    for (; v != 0; v &= v - 1)
        n++;
    return n;
}

size_t crypto_dukpt_aes_keytype_len(crypto_dukpt_aes_keytype t)
{
    static const size_t len[] = {16, 24, 16, 24, 32};
    return (int)t >= 0 && (size_t)t < sizeof len / sizeof len[0] ? len[t] : 0;
}

/* The key type of an AES derivation key of keylen bytes (the BDK's type carries through). */
static int aes_type_for(size_t keylen, crypto_dukpt_aes_keytype *t)
{
    if (keylen == 16)
        *t = CRYPTO_DUKPT_AES_AES128;
    else if (keylen == 24)
        *t = CRYPTO_DUKPT_AES_AES192;
    else if (keylen == 32)
        *t = CRYPTO_DUKPT_AES_AES256;
    else
        return PX_EINVAL;
    return PX_OK;
}

uint32_t crypto_dukpt_aes_ksn_counter(const uint8_t ksn[12])
{
    return (uint32_t)ksn[8] << 24 | (uint32_t)ksn[9] << 16 | (uint32_t)ksn[10] << 8 | ksn[11];
}

static void put_counter(uint8_t *p, uint32_t c)
{
    p[0] = (uint8_t)(c >> 24);
    p[1] = (uint8_t)(c >> 16);
    p[2] = (uint8_t)(c >> 8);
    p[3] = (uint8_t)c;
}

/*
 * X9.24-3:2017 "Create Derivation Data" and "Derive Key": derivation data is
 * 01 | block counter | usage(2) | algorithm(2) | length in bits(2) | 8 bytes of id/counter;
 * each 16-byte block of the new key is AES-ECB(derivation key, data with its counter).
 */
static int derive(const uint8_t *dk, size_t dklen, crypto_dukpt_aes_usage usage,
                  crypto_dukpt_aes_keytype type, const uint8_t tail[8], uint8_t *out, px_error *e)
{
    size_t outlen = crypto_dukpt_aes_keytype_len(type), bits = outlen * 8;
    uint8_t dd[16], block[16], key[CRYPTO_DUKPT_AES_KEY_MAX];
    int rc = PX_OK;
    dd[0] = 0x01;
    dd[2] = (uint8_t)(usage >> 8);
    dd[3] = (uint8_t)usage;
    dd[4] = 0;
    dd[5] = (uint8_t)type;
    dd[6] = (uint8_t)(bits >> 8);
    dd[7] = (uint8_t)bits;
    memcpy(dd + 8, tail, 8);
    for (size_t i = 0; i * 16 < outlen && rc == PX_OK; i++) {
        dd[1] = (uint8_t)(i + 1);
        rc = crypto_encrypt(CRYPTO_AES, CRYPTO_ECB, dk, dklen, NULL, dd, 16, block, e);
        size_t n = outlen - i * 16 < 16 ? outlen - i * 16 : 16;
        if (rc == PX_OK)
            memcpy(key + i * 16, block, n);
    }
    if (rc == PX_OK) /* out may be dk itself: written only once every block is done */
        memcpy(out, key, outlen);
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(dd, sizeof dd);
    return rc;
}

/* The 8-byte tail of derivation data after the initial key: derivation ID and counter. */
static void tail_for(const uint8_t ksn[12], uint32_t c, uint8_t tail[8])
{
    memcpy(tail, ksn + 4, 4);
    put_counter(tail + 4, c);
}

/* X9.24-3:2017 "Derive Initial Key" from the BDK and the initial key ID. */
int crypto_dukpt_aes_derive_initial_key(const uint8_t *bdk, size_t bdklen, const uint8_t ikid[8],
                                        uint8_t *ik, px_error *e)
{
    crypto_dukpt_aes_keytype t;
    if (aes_type_for(bdklen, &t) != PX_OK)
        return px_error_set(e, PX_EINVAL, "bdk: AES DUKPT needs a 16, 24 or 32-byte BDK, got %zu",
                            bdklen);
    return derive(bdk, bdklen, CRYPTO_DUKPT_AES_KEY_DERIVATION_INITIAL, t, ikid, ik, e);
}

/* X9.24-3:2017 host (receiving side) derivation of the intermediate derivation key: one step per
 * one-bit of the counter, high first. */
int crypto_dukpt_aes_derive_key(const uint8_t *ik, size_t iklen, const uint8_t ksn[12], uint8_t *dk,
                                px_error *e)
{
    uint32_t c = crypto_dukpt_aes_ksn_counter(ksn), acc = 0;
    uint8_t k[CRYPTO_DUKPT_AES_KEY_MAX], tail[8];
    crypto_dukpt_aes_keytype t;
    int rc = PX_OK;
    if (aes_type_for(iklen, &t) != PX_OK)
        return px_error_set(e, PX_EINVAL, "key: AES DUKPT keys are 16, 24 or 32 bytes, got %zu",
                            iklen);
    if (c == 0 || popcount32(c) > CRYPTO_DUKPT_AES_MAX_ONES)
        return px_error_set(e, PX_EINVAL, "ksn: counter %u is not a valid AES DUKPT counter", c);
    memcpy(k, ik, iklen);
    for (uint32_t bit = 1u << 31; bit != 0 && rc == PX_OK; bit >>= 1) {
        if ((c & bit) == 0)
            continue;
        acc |= bit;
        tail_for(ksn, acc, tail);
        rc = derive(k, iklen, CRYPTO_DUKPT_AES_KEY_DERIVATION, t, tail, k, e);
    }
    if (rc == PX_OK)
        memcpy(dk, k, iklen);
    OPENSSL_cleanse(k, sizeof k);
    return rc;
}

/* X9.24-3:2017 "Derive Working Key": a working key of a usage and type from the derivation key. */
int crypto_dukpt_aes_working_key(const uint8_t *dk, size_t dklen, const uint8_t ksn[12],
                                 crypto_dukpt_aes_usage usage, crypto_dukpt_aes_keytype type,
                                 uint8_t *out, size_t outcap, size_t *outlen, px_error *e)
{
    crypto_dukpt_aes_keytype t;
    uint8_t tail[8];
    size_t len = crypto_dukpt_aes_keytype_len(type);
    if (aes_type_for(dklen, &t) != PX_OK)
        return px_error_set(e, PX_EINVAL, "key: AES DUKPT keys are 16, 24 or 32 bytes, got %zu",
                            dklen);
    if (len == 0)
        return px_error_set(e, PX_EINVAL, "type: unknown working key type");
    if (type >= CRYPTO_DUKPT_AES_AES128 && len > dklen) /* 6.1: never stronger than dk */
        return px_error_set(e, PX_EINVAL,
                            "type: an AES-%zu working key needs a derivation key at least as long",
                            len * 8);
    if (outcap < len)
        return px_error_set(e, PX_ETOOBIG, "key: output buffer too small");
    tail_for(ksn, crypto_dukpt_aes_ksn_counter(ksn), tail);
    int rc = derive(dk, dklen, usage, type, tail, out, e);
    if (rc == PX_OK)
        *outlen = len;
    return rc;
}

int crypto_dukpt_aes_host_key(const uint8_t *bdk, size_t bdklen, const uint8_t ksn[12],
                              crypto_dukpt_aes_usage usage, crypto_dukpt_aes_keytype type,
                              uint8_t *out, size_t outcap, size_t *outlen, px_error *e)
{
    uint8_t ik[CRYPTO_DUKPT_AES_KEY_MAX], dk[CRYPTO_DUKPT_AES_KEY_MAX];
    int rc = crypto_dukpt_aes_derive_initial_key(bdk, bdklen, ksn, ik, e);
    if (rc == PX_OK)
        rc = crypto_dukpt_aes_derive_key(ik, bdklen, ksn, dk, e);
    if (rc == PX_OK)
        rc = crypto_dukpt_aes_working_key(dk, bdklen, ksn, usage, type, out, outcap, outlen, e);
    OPENSSL_cleanse(ik, sizeof ik);
    OPENSSL_cleanse(dk, sizeof dk);
    return rc;
}

/* ---- device side (X9.24-3:2017 transaction-originating algorithm) ---- */

void crypto_dukpt_aes_device_wipe(crypto_dukpt_aes_device *d)
{
    OPENSSL_cleanse(d, sizeof *d);
}

uint32_t crypto_dukpt_aes_device_counter(const crypto_dukpt_aes_device *d)
{
    return crypto_dukpt_aes_ksn_counter(d->ksn);
}

/* Intermediate derivation keys for counters c | 2^b, b below top, from key k ("Update Derivation
 * Keys"). */
static int fill_below(crypto_dukpt_aes_device *d, const uint8_t *k, uint32_t c, int top,
                      px_error *e)
{
    crypto_dukpt_aes_keytype t;
    uint8_t tail[8];
    if (aes_type_for(d->keylen, &t) != PX_OK)
        return px_error_set(e, PX_EINVAL, "AES DUKPT: key length %zu is not 16, 24 or 32",
                            d->keylen);
    for (int b = top - 1; b >= 0; b--) {
        tail_for(d->ksn, c | 1u << b, tail);
        int rc = derive(k, d->keylen, CRYPTO_DUKPT_AES_KEY_DERIVATION, t, tail, d->reg[b], e);
        if (rc != PX_OK)
            return rc;
        d->valid |= 1u << b;
    }
    return PX_OK;
}

/* X9.24-3:2017 "Load Initial Key": registers for counters 2^0 .. 2^31 from the initial key. */
int crypto_dukpt_aes_device_load(crypto_dukpt_aes_device *d, const uint8_t *ik, size_t iklen,
                                 const uint8_t ikid[8], px_error *e)
{
    crypto_dukpt_aes_keytype t;
    memset(d, 0, sizeof *d);
    if (aes_type_for(iklen, &t) != PX_OK)
        return px_error_set(e, PX_EINVAL, "key: AES DUKPT keys are 16, 24 or 32 bytes, got %zu",
                            iklen);
    d->keylen = iklen;
    memcpy(d->ksn, ikid, 8);
    int rc = fill_below(d, ik, 0, CRYPTO_DUKPT_AES_COUNTER_BITS, e);
    if (rc != PX_OK) {
        crypto_dukpt_aes_device_wipe(d);
        return rc;
    }
    put_counter(d->ksn + 8, 1);
    return PX_OK;
}

/* Registers as just before counter c (same rule as TDES DUKPT, with 32 bits and 16 ones). */
int crypto_dukpt_aes_device_load_at(crypto_dukpt_aes_device *d, const uint8_t *ik, size_t iklen,
                                    const uint8_t ksn[12], px_error *e)
{
    uint32_t c = crypto_dukpt_aes_ksn_counter(ksn);
    crypto_dukpt_aes_keytype t;
    uint8_t ks[12];
    int rc = PX_OK;
    memset(d, 0, sizeof *d);
    if (aes_type_for(iklen, &t) != PX_OK)
        return px_error_set(e, PX_EINVAL, "key: AES DUKPT keys are 16, 24 or 32 bytes, got %zu",
                            iklen);
    if (c == 0 || popcount32(c) > CRYPTO_DUKPT_AES_MAX_ONES)
        return px_error_set(e, PX_EINVAL, "ksn: counter %u is not a valid AES DUKPT counter", c);
    d->keylen = iklen;
    memcpy(d->ksn, ksn, 12);
    memcpy(ks, ksn, 12);
    for (int p = 0; p < CRYPTO_DUKPT_AES_COUNTER_BITS && rc == PX_OK; p++) {
        uint64_t mask = (2ull << p) - 1;
        uint32_t which = (uint32_t)((c & ~mask) | 1ull << p);
        int low = (c & mask) == (1ull << p);
        if (!low && ((c >> p) & 1 || (c & ((1ull << p) - 1)) == 0 ||
                     popcount32(which) > CRYPTO_DUKPT_AES_MAX_ONES))
            continue;
        put_counter(ks + 8, which);
        rc = crypto_dukpt_aes_derive_key(ik, iklen, ks, d->reg[p], e);
        d->valid |= 1u << p;
    }
    OPENSSL_cleanse(ks, sizeof ks);
    if (rc != PX_OK)
        crypto_dukpt_aes_device_wipe(d);
    return rc;
}

/* X9.24-3:2017 "Generate Working Keys" and "Update State for Next Transaction": hand out the
 * intermediate derivation key of the current counter, derive the registers below it when the
 * counter has fewer than 16 one-bits, erase it and advance. */
int crypto_dukpt_aes_device_next(crypto_dukpt_aes_device *d, uint8_t *dk, size_t dkcap,
                                 size_t *dklen, uint8_t ksn[12], px_error *e)
{
    uint64_t c = crypto_dukpt_aes_device_counter(d);
    int b = 0;
    if (dkcap < d->keylen)
        return px_error_set(e, PX_ETOOBIG, "key: output buffer too small");
    for (;;) {
        if (d->exhausted || c == 0 || c > 0xFFFFFFFFull) {
            d->exhausted = 1;
            return px_error_set(e, PX_ELIMIT,
                                "dukpt: transaction counter exhausted; reload the device");
        }
        for (b = 0; ((c >> b) & 1) == 0; b++)
            ;
        if (d->valid & (1u << b))
            break;
        c += 1ull << b;
    }
    put_counter(d->ksn + 8, (uint32_t)c);
    memcpy(dk, d->reg[b], d->keylen);
    memcpy(ksn, d->ksn, 12);
    *dklen = d->keylen;
    if (popcount32((uint32_t)c) < CRYPTO_DUKPT_AES_MAX_ONES) {
        int rc = fill_below(d, d->reg[b], (uint32_t)c, b, e);
        if (rc != PX_OK) {
            OPENSSL_cleanse(dk, d->keylen);
            return rc;
        }
        c += 1;
    } else {
        c += 1ull << b;
    }
    OPENSSL_cleanse(d->reg[b], sizeof d->reg[b]);
    d->valid &= ~(1u << b);
    if (c > 0xFFFFFFFFull) {
        d->exhausted = 1;
        c = 0;
    }
    put_counter(d->ksn + 8, (uint32_t)c);
    return PX_OK;
}
