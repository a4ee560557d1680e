/*
 * dukpt.h: Derived Unique Key Per Transaction.
 *
 * TDES DUKPT, ANSI X9.24-1:2009 Annex A (host derivation and the device algorithms):
 *   KSN 10 bytes = key set ID and TRSM ID (59 bits) + a 21-bit transaction counter.
 *   BDK and every key: double-length TDES, 16 bytes.
 * AES DUKPT, ANSI X9.24-3:2017 (its algorithms and the published reference code):
 *   KSN 12 bytes = initial key ID (BDK ID 4 bytes + derivation ID 4 bytes) + 32-bit counter.
 *   BDK: AES-128/192/256; working keys: 2TDEA, 3TDEA, AES-128/192/256.
 *
 * Host side: derive from a BDK and a KSN. Device side: the key registers of an
 * originating device in a struct the device owns and persists (fields are private).
 */
#ifndef PX_CRYPTO_DUKPT_H
#define PX_CRYPTO_DUKPT_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

#define CRYPTO_DUKPT_KSN_LEN 10 /* TDES DUKPT KSN */
#define CRYPTO_DUKPT_KEY_LEN 16 /* TDES DUKPT keys are double-length */
#define CRYPTO_DUKPT_COUNTER_BITS 21
#define CRYPTO_DUKPT_COUNTER_MAX 0x1FFFFFu
#define CRYPTO_DUKPT_MAX_ONES 10 /* counters with more one-bits are skipped */

#define CRYPTO_DUKPT_AES_KSN_LEN 12 /* AES DUKPT KSN: initial key ID 8 + counter 4 */
#define CRYPTO_DUKPT_AES_IKID_LEN 8 /* initial key ID: BDK ID 4 + derivation ID 4 */
#define CRYPTO_DUKPT_AES_COUNTER_BITS 32
#define CRYPTO_DUKPT_AES_MAX_ONES 16
#define CRYPTO_DUKPT_AES_KEY_MAX 32

/* ---- TDES DUKPT, host side ---- */

/* Key variants of X9.24-1:2009 Annex A table A-1: the transaction key XOR a mask in both halves. */
typedef enum crypto_dukpt_variant {
    CRYPTO_DUKPT_NONE = 0,     /* the transaction key itself */
    CRYPTO_DUKPT_PIN = 1,      /* 00000000000000FF */
    CRYPTO_DUKPT_MAC_REQ = 2,  /* 000000000000FF00 */
    CRYPTO_DUKPT_MAC_RESP = 3, /* 00000000FF000000 */
    CRYPTO_DUKPT_DATA_REQ = 4, /* 0000000000FF0000, then encrypted under itself */
    CRYPTO_DUKPT_DATA_RESP = 5 /* 000000FF00000000, then encrypted under itself */
} crypto_dukpt_variant;

/* Initial PIN encryption key (IPEK, "initial key") from the BDK and any KSN of the device
 * (its counter is ignored): A.6 "Calculate Initial Key". */
int crypto_dukpt_derive_ipek(const uint8_t bdk[16], const uint8_t ksn[10], uint8_t ipek[16],
                             px_error *e);

/* Transaction key for the KSN's counter from the IPEK (A.6 non-reversible key generation
 * over the counter's one-bits). PX_EINVAL for a counter of 0 or with more than 10 ones. */
int crypto_dukpt_derive_key(const uint8_t ipek[16], const uint8_t ksn[10], uint8_t key[16],
                            px_error *e);

/* Apply a variant to a transaction key (CRYPTO_DUKPT_NONE copies it). */
int crypto_dukpt_variant_key(const uint8_t key[16], crypto_dukpt_variant v, uint8_t out[16],
                             px_error *e);

/* BDK + KSN -> variant of the transaction key, in one call (the host's usual need). */
int crypto_dukpt_host_key(const uint8_t bdk[16], const uint8_t ksn[10], crypto_dukpt_variant v,
                          uint8_t out[16], px_error *e);

/* Transaction counter of a KSN (rightmost 21 bits). */
uint32_t crypto_dukpt_ksn_counter(const uint8_t ksn[10]);

/* ---- TDES DUKPT, device side (A.2 "future key registers") ---- */
typedef struct crypto_dukpt_device {
    uint8_t fkr[CRYPTO_DUKPT_COUNTER_BITS][16]; /* fkr[b]: future key for counter bit b */
    uint32_t valid;                             /* bit b: fkr[b] holds a key */
    uint8_t ksn[CRYPTO_DUKPT_KSN_LEN];          /* counter = the next one to use */
    int exhausted;                              /* counter overflowed: device inoperative */
} crypto_dukpt_device;

/* "Load Initial Key": from the IPEK and the initial KSN (counter bits must be 0). The IPEK
 * itself is not kept. */
int crypto_dukpt_device_load(crypto_dukpt_device *d, const uint8_t ipek[16], const uint8_t ksn[10],
                             px_error *e);

/* Registers as they are just before the transaction with the KSN's counter (as if the
 * device had run up to it): for simulators and tests. */
int crypto_dukpt_device_load_at(crypto_dukpt_device *d, const uint8_t ipek[16],
                                const uint8_t ksn[10], px_error *e);

/* "Request PIN Entry" + "New Key": the current transaction key and its KSN, then advance
 * (erase the key used, derive the future keys below it, skip counters with more than 10
 * one-bits). PX_ELIMIT once the 21-bit counter is exhausted (the device must be reloaded). */
int crypto_dukpt_device_next(crypto_dukpt_device *d, uint8_t key[16], uint8_t ksn[10], px_error *e);

/* Counter the next transaction will use. */
uint32_t crypto_dukpt_device_counter(const crypto_dukpt_device *d);

void crypto_dukpt_device_wipe(crypto_dukpt_device *d);

/* ---- AES DUKPT (X9.24-3:2017) ---- */

/* Key usage indicators of the X9.24-3 derivation data. */
typedef enum crypto_dukpt_aes_usage {
    CRYPTO_DUKPT_AES_KEK = 0x0002,
    CRYPTO_DUKPT_AES_PIN = 0x1000,
    CRYPTO_DUKPT_AES_MAC_GEN = 0x2000,
    CRYPTO_DUKPT_AES_MAC_VERIFY = 0x2001,
    CRYPTO_DUKPT_AES_MAC_BOTH = 0x2002,
    CRYPTO_DUKPT_AES_DATA_ENC = 0x3000,
    CRYPTO_DUKPT_AES_DATA_DEC = 0x3001,
    CRYPTO_DUKPT_AES_DATA_BOTH = 0x3002,
    CRYPTO_DUKPT_AES_KEY_DERIVATION = 0x8000,
    CRYPTO_DUKPT_AES_KEY_DERIVATION_INITIAL = 0x8001
} crypto_dukpt_aes_usage;

/* Key types (algorithm indicators of the X9.24-3 derivation data). */
typedef enum crypto_dukpt_aes_keytype {
    CRYPTO_DUKPT_AES_2TDEA = 0,
    CRYPTO_DUKPT_AES_3TDEA = 1,
    CRYPTO_DUKPT_AES_AES128 = 2,
    CRYPTO_DUKPT_AES_AES192 = 3,
    CRYPTO_DUKPT_AES_AES256 = 4
} crypto_dukpt_aes_keytype;

/* Length in bytes of a key type (16, 24, 16, 24, 32), 0 if unknown. */
size_t crypto_dukpt_aes_keytype_len(crypto_dukpt_aes_keytype t);

/* Initial key from the BDK (16/24/32 bytes) and the 8-byte initial key ID;
 * ik receives bdklen bytes. */
int crypto_dukpt_aes_derive_initial_key(const uint8_t *bdk, size_t bdklen, const uint8_t ikid[8],
                                        uint8_t *ik, px_error *e);

/* Intermediate derivation key for the KSN's counter from the initial key (host
 * derivation). dk receives iklen bytes. PX_EINVAL for counter 0 or more than 16 ones. */
int crypto_dukpt_aes_derive_key(const uint8_t *ik, size_t iklen, const uint8_t ksn[12], uint8_t *dk,
                                px_error *e);

/* Working key of a usage and type from an intermediate derivation key. */
int crypto_dukpt_aes_working_key(const uint8_t *dk, size_t dklen, const uint8_t ksn[12],
                                 crypto_dukpt_aes_usage usage, crypto_dukpt_aes_keytype type,
                                 uint8_t *out, size_t outcap, size_t *outlen, px_error *e);

/* BDK + KSN -> working key, in one call. */
int crypto_dukpt_aes_host_key(const uint8_t *bdk, size_t bdklen, const uint8_t ksn[12],
                              crypto_dukpt_aes_usage usage, crypto_dukpt_aes_keytype type,
                              uint8_t *out, size_t outcap, size_t *outlen, px_error *e);

uint32_t crypto_dukpt_aes_ksn_counter(const uint8_t ksn[12]);

/* Device side: intermediate derivation key registers. */
typedef struct crypto_dukpt_aes_device {
    uint8_t reg[CRYPTO_DUKPT_AES_COUNTER_BITS][CRYPTO_DUKPT_AES_KEY_MAX];
    uint32_t valid;                        /* bit b: reg[b] holds a key */
    size_t keylen;                         /* 16, 24 or 32 */
    uint8_t ksn[CRYPTO_DUKPT_AES_KSN_LEN]; /* counter = the next one to use */
    int exhausted;
} crypto_dukpt_aes_device;

/* Load the initial key (iklen 16/24/32) with its 8-byte initial key ID; counter 0. */
int crypto_dukpt_aes_device_load(crypto_dukpt_aes_device *d, const uint8_t *ik, size_t iklen,
                                 const uint8_t ikid[8], px_error *e);
/* Registers as just before the transaction with the KSN's counter (simulators, tests). */
int crypto_dukpt_aes_device_load_at(crypto_dukpt_aes_device *d, const uint8_t *ik, size_t iklen,
                                    const uint8_t ksn[12], px_error *e);
/* The current intermediate derivation key (dk, keylen bytes) and its KSN, then advance.
 * Derive working keys from dk with crypto_dukpt_aes_working_key. PX_ELIMIT once the
 * 32-bit counter is exhausted. */
int crypto_dukpt_aes_device_next(crypto_dukpt_aes_device *d, uint8_t *dk, size_t dkcap,
                                 size_t *dklen, uint8_t ksn[12], px_error *e);
uint32_t crypto_dukpt_aes_device_counter(const crypto_dukpt_aes_device *d);
void crypto_dukpt_aes_device_wipe(crypto_dukpt_aes_device *d);

#endif
