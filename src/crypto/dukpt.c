/* dukpt.c: TDES DUKPT, ANSI X9.24-1:2009 Annex A (host derivation and device registers). */
#include "crypto/dukpt.h"
#include "crypto/crypto.h"
#include "crypto/crypto_int.h"

#include <string.h>
#include <openssl/crypto.h>

/* X9.24-1:2009 Annex A: the key XOR mask that separates the two halves of the derivations. */
static const uint8_t key_mask[16] = {0xC0, 0xC0, 0xC0, 0xC0, 0, 0, 0, 0,
                                     0xC0, 0xC0, 0xC0, 0xC0, 0, 0, 0, 0};

static int popcount32(uint32_t v)
{
    int n = 0;
    for (; v != 0; v &= v - 1)
        n++;
    return n;
}

uint32_t crypto_dukpt_ksn_counter(const uint8_t ksn[10])
{
    return (uint32_t)(ksn[7] & 0x1F) << 16 | (uint32_t)ksn[8] << 8 | ksn[9];
}

/* Write a 21-bit counter into the last 3 bytes of a KSN or of its 64-bit register. */
static void ksn_set_counter(uint8_t *ksn_tail3, uint32_t c)
{
    ksn_tail3[0] = (uint8_t)((ksn_tail3[0] & 0xE0) | ((c >> 16) & 0x1F));
    ksn_tail3[1] = (uint8_t)(c >> 8);
    ksn_tail3[2] = (uint8_t)c;
}

/* X9.24-1:2009 Annex A (A.2) "Non-reversible Key Generation Process": new key from a key and the
 * 64-bit crypto register (rightmost KSN bytes with the counter so far). */
static int nrkgp(const uint8_t key[16], const uint8_t reg[8], uint8_t out[16], px_error *e)
{
    uint8_t k[16], cr1[8], cr2[8];
    int rc;
    memcpy(k, key, 16);
    memcpy(cr2, reg, 8);
    crypto_int_xor(cr2, k + 8, 8);
    rc = crypto_encrypt(CRYPTO_DES, CRYPTO_ECB, k, 8, NULL, cr2, 8, cr2, e);
    crypto_int_xor(cr2, k + 8, 8);
    crypto_int_xor(k, key_mask, 16);
    memcpy(cr1, reg, 8);
    crypto_int_xor(cr1, k + 8, 8);
    if (rc == PX_OK)
        rc = crypto_encrypt(CRYPTO_DES, CRYPTO_ECB, k, 8, NULL, cr1, 8, cr1, e);
    crypto_int_xor(cr1, k + 8, 8);
    if (rc == PX_OK) {
        memcpy(out, cr1, 8);
        memcpy(out + 8, cr2, 8);
    }
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(cr1, sizeof cr1);
    OPENSSL_cleanse(cr2, sizeof cr2);
    return rc;
}

/* The 64-bit register: rightmost 8 bytes of the KSN with the counter replaced by c. */
static void ksn_register(const uint8_t ksn[10], uint32_t c, uint8_t reg[8])
{
    memcpy(reg, ksn + 2, 8);
    ksn_set_counter(reg + 5, c);
}

/* X9.24-1:2009 Annex A (A.6): derivation of the Initial PIN Encryption Key (IPEK). */
int crypto_dukpt_derive_ipek(const uint8_t bdk[16], const uint8_t ksn[10], uint8_t ipek[16],
                             px_error *e)
{
    uint8_t id[8], k[16];
    memcpy(id, ksn, 8);
    id[7] &= 0xE0; /* clear the counter bits that fall in the leftmost 8 bytes */
    int rc = crypto_encrypt(CRYPTO_TDES, CRYPTO_ECB, bdk, 16, NULL, id, 8, ipek, e);
    memcpy(k, bdk, 16);
    crypto_int_xor(k, key_mask, 16);
    if (rc == PX_OK)
        rc = crypto_encrypt(CRYPTO_TDES, CRYPTO_ECB, k, 16, NULL, id, 8, ipek + 8, e);
    OPENSSL_cleanse(k, sizeof k);
    return rc;
}

/* X9.24-1:2009 Annex A, host derivation of the current key: one NRKGP per one-bit of the counter,
 * high first. */
int crypto_dukpt_derive_key(const uint8_t ipek[16], const uint8_t ksn[10], uint8_t key[16],
                            px_error *e)
{
    uint32_t c = crypto_dukpt_ksn_counter(ksn), acc = 0;
    uint8_t reg[8], k[16];
    int rc = PX_OK;
    if (c == 0 || popcount32(c) > CRYPTO_DUKPT_MAX_ONES)
        return px_error_set(e, PX_EINVAL, "ksn: counter %u is not a valid DUKPT counter", c);
    memcpy(k, ipek, 16);
    for (uint32_t bit = 1u << 20; bit != 0 && rc == PX_OK; bit >>= 1) {
        if ((c & bit) == 0)
            continue;
        acc |= bit;
        ksn_register(ksn, acc, reg);
        rc = nrkgp(k, reg, k, e);
    }
    if (rc == PX_OK)
        memcpy(key, k, 16);
    OPENSSL_cleanse(k, sizeof k);
    return rc;
}

/* X9.24-1:2009 Annex A, table A-1 variants of the current key; the data variants are then encrypted
 * under themselves (each half, TDES-ECB), as the 2009 edition's data encryption key. */
int crypto_dukpt_variant_key(const uint8_t key[16], crypto_dukpt_variant v, uint8_t out[16],
                             px_error *e)
{
    static const int byte_of[] = {-1, 7, 6, 4, 5, 3};
    uint8_t k[16];
    int rc = PX_OK;
    if ((int)v < 0 || (size_t)v >= sizeof byte_of / sizeof byte_of[0])
        return px_error_set(e, PX_EINVAL, "variant: unknown DUKPT key variant");
    memcpy(k, key, 16);
    if (byte_of[v] >= 0) {
        k[byte_of[v]] ^= 0xFF;
        k[8 + byte_of[v]] ^= 0xFF;
    }
    if (v == CRYPTO_DUKPT_DATA_REQ || v == CRYPTO_DUKPT_DATA_RESP)
        rc = crypto_encrypt(CRYPTO_TDES, CRYPTO_ECB, k, 16, NULL, k, 16, out, e);
    else
        memcpy(out, k, 16);
    OPENSSL_cleanse(k, sizeof k);
    return rc;
}

int crypto_dukpt_host_key(const uint8_t bdk[16], const uint8_t ksn[10], crypto_dukpt_variant v,
                          uint8_t out[16], px_error *e)
{
    uint8_t ipek[16], key[16];
    int rc = crypto_dukpt_derive_ipek(bdk, ksn, ipek, e);
    if (rc == PX_OK)
        rc = crypto_dukpt_derive_key(ipek, ksn, key, e);
    if (rc == PX_OK)
        rc = crypto_dukpt_variant_key(key, v, out, e);
    OPENSSL_cleanse(ipek, sizeof ipek);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

/* ---- device side ---- */

void crypto_dukpt_device_wipe(crypto_dukpt_device *d)
{
    OPENSSL_cleanse(d, sizeof *d);
}

uint32_t crypto_dukpt_device_counter(const crypto_dukpt_device *d)
{
    return crypto_dukpt_ksn_counter(d->ksn);
}

/* Fill the future key registers below bit `top` from key k for counter c (A.2 "New Key-3"). */
static int fill_below(crypto_dukpt_device *d, const uint8_t k[16], uint32_t c, int top, px_error *e)
{
    uint8_t reg[8];
    for (int b = top - 1; b >= 0; b--) {
        ksn_register(d->ksn, c | 1u << b, reg);
        int rc = nrkgp(k, reg, d->fkr[b], e);
        if (rc != PX_OK)
            return rc;
        d->valid |= 1u << b;
    }
    return PX_OK;
}

/* A.2 "Load Initial Key": future keys for counters 1, 2, 4, ... 2^20 from the IPEK. */
int crypto_dukpt_device_load(crypto_dukpt_device *d, const uint8_t ipek[16], const uint8_t ksn[10],
                             px_error *e)
{
    memset(d, 0, sizeof *d);
    if (crypto_dukpt_ksn_counter(ksn) != 0)
        return px_error_set(e, PX_EINVAL, "ksn: the initial KSN must have a zero counter");
    memcpy(d->ksn, ksn, 10);
    int rc = fill_below(d, ipek, 0, CRYPTO_DUKPT_COUNTER_BITS, e);
    if (rc != PX_OK) {
        crypto_dukpt_device_wipe(d);
        return rc;
    }
    ksn_set_counter(d->ksn + 7, 1);
    return PX_OK;
}

/* The registers just before counter c: fkr[p] holds the key of c's bits above p plus bit
 * p, when that bit is 0 in c and the count of one-bits allows it; fkr[low bit] = key(c). */
int crypto_dukpt_device_load_at(crypto_dukpt_device *d, const uint8_t ipek[16],
                                const uint8_t ksn[10], px_error *e)
{
    uint32_t c = crypto_dukpt_ksn_counter(ksn);
    uint8_t ks[10];
    int rc = PX_OK;
    memset(d, 0, sizeof *d);
    if (c == 0 || popcount32(c) > CRYPTO_DUKPT_MAX_ONES)
        return px_error_set(e, PX_EINVAL, "ksn: counter %u is not a valid DUKPT counter", c);
    memcpy(d->ksn, ksn, 10);
    memcpy(ks, ksn, 10);
    for (int p = 0; p < CRYPTO_DUKPT_COUNTER_BITS && rc == PX_OK; p++) {
        uint32_t above = c & ~((2u << p) - 1);
        uint32_t which = above | 1u << p;
        int low = (c & ((2u << p) - 1)) == (1u << p); /* p is c's lowest one-bit */
        if (!low && ((c >> p) & 1 || (c & ((1u << p) - 1)) == 0 ||
                     popcount32(which) > CRYPTO_DUKPT_MAX_ONES))
            continue;
        ksn_set_counter(ks + 7, which);
        rc = crypto_dukpt_derive_key(ipek, ks, d->fkr[p], e);
        d->valid |= 1u << p;
    }
    OPENSSL_cleanse(ks, sizeof ks);
    if (rc != PX_OK)
        crypto_dukpt_device_wipe(d);
    return rc;
}

/* A.2 "Request PIN Entry" and "New Key": hand out the key of the current counter, then
 * derive the future keys below it (if the counter has fewer than 10 one-bits), erase it
 * and move to the next counter, skipping those with more than 10 one-bits. */
int crypto_dukpt_device_next(crypto_dukpt_device *d, uint8_t key[16], uint8_t ksn[10], px_error *e)
{
    uint32_t c = crypto_dukpt_device_counter(d);
    int b = 0, rc;
    for (;;) {
        if (d->exhausted || c == 0 || c > CRYPTO_DUKPT_COUNTER_MAX) {
            d->exhausted = 1;
            return px_error_set(e, PX_ELIMIT,
                                "dukpt: transaction counter exhausted; reload the device");
        }
        for (b = 0; ((c >> b) & 1) == 0; b++)
            ;
        if (d->valid & (1u << b))
            break;
        c += 1u << b; /* "Request PIN Entry 2": skip a counter whose key is gone */
    }
    ksn_set_counter(d->ksn + 7, c);
    memcpy(key, d->fkr[b], 16);
    memcpy(ksn, d->ksn, 10);
    if (popcount32(c) < CRYPTO_DUKPT_MAX_ONES) {
        rc = fill_below(d, d->fkr[b], c, b, e);
        if (rc != PX_OK) {
            OPENSSL_cleanse(key, 16);
            return rc;
        }
        c += 1;
    } else {
        c += 1u << b;
    }
    OPENSSL_cleanse(d->fkr[b], 16);
    d->valid &= ~(1u << b);
    if (c > CRYPTO_DUKPT_COUNTER_MAX) {
        d->exhausted = 1;
        c = 0;
    }
    ksn_set_counter(d->ksn + 7, c);
    return PX_OK;
}
