/*
 * hsm.h: the only door to keys (docs/hsm.md, docs/key-hierarchy.md).
 *
 * Every key possum keeps is a TR-31 / X9.143 key block, version D, under a key derived from
 * the local master key (LMK). The block binds the key to its usage (P0, M3, K0...), mode of
 * use (E, D, B, G, V, C, X, N) and exportability (E, N, S); every operation checks them
 * before it touches the key. No function here returns a clear key or a clear PIN.
 *
 * Two ways to pass a key, as a payment HSM takes them:
 *   - a key block string (what is stored, sent and logged: it is ciphertext);
 *   - a loaded handle: hsm_key_load() checks the block once and keeps the clear key and its
 *     ready key schedule inside the hsm (wiped on hsm_key_free / hsm_close), so hot paths
 *     (PIN translation, MAC verification) do no unwrapping.
 * Named keys (label -> key block + KCV) live in the store table hsm_key (migration 0100).
 *
 * LMK backends: "soft" (the LMK in a file, AES-256-GCM under scrypt(passphrase)) and
 * "pkcs11" (a sensitive, non-extractable AES key inside a token). Secrets come from
 * POSSUM_LMK_PASSPHRASE / POSSUM_PKCS11_PIN or a prompt, never from the config file.
 *
 * Audit: every operation is recorded in a hash-chained, MACed JSON-lines file. Key management
 * (LMK init, generate, form, import, export, derive, delete, failed loads) is written and
 * fsynced before the call returns; a successful load is written at once and fsynced with the
 * next sync; PIN, MAC and data operations are counted per key and written as one entry per
 * (operation, key, result) every audit_flush_ms, on hsm_audit_flush, hsm_set_caller,
 * hsm_key_free and hsm_close. Policy refusals are written at once. If the log cannot be
 * written, operations fail with PX_EIO until it can.
 *
 * Threads: an hsm is used by one thread at a time (loaded keys hold reusable cipher state,
 * the audit queue and the store connection are unlocked). Another thread takes a session
 * (hsm_session_open): the same LMK without a second unlock, its own keys and audit queue.
 * Several handles and processes may share one audit file (appends are serialised with flock).
 */
#ifndef PX_HSM_H
#define PX_HSM_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "crypto/mac.h"
#include "crypto/pinblock.h"
#include "lib/config.h"
#include "lib/err.h"
#include "lib/limits.h"
#include "store/store.h"

typedef struct hsm hsm;
typedef struct hsm_key hsm_key;

#define HSM_ENV_PASSPHRASE "POSSUM_LMK_PASSPHRASE" /* soft LMK passphrase */
#define HSM_ENV_PKCS11_PIN "POSSUM_PKCS11_PIN"     /* PKCS#11 user PIN */
#define HSM_PASSPHRASE_MIN 12                      /* characters, for a new soft LMK */

/* ---- configuration and lifetime ---- */

typedef enum hsm_backend { HSM_BACKEND_SOFT = 0, HSM_BACKEND_PKCS11 = 1 } hsm_backend;

/* Asks for a secret (prompt names it) when its environment variable is unset: writes a
 * NUL-terminated secret of at most outsz-1 bytes into out, returns PX_OK or an error. */
typedef int (*hsm_secret_fn)(void *ud, const char *prompt, char *out, size_t outsz);

typedef struct hsm_config {
    hsm_backend backend;                     /* backend = soft | pkcs11 */
    char lmk_file[PX_PATH_MAX];              /* soft: lmk_file = var/lmk.bin */
    int64_t lmk_scrypt_log2n;                /* soft, at init: scrypt cost N = 2^this */
    char pkcs11_module[PX_PATH_MAX];         /* pkcs11: the module to dlopen */
    char pkcs11_token_label[33];             /* pkcs11: token holding the LMK */
    char pkcs11_key_label[PX_HSM_LABEL_MAX]; /* pkcs11: the LMK object's CKA_LABEL */
    char audit_file[PX_PATH_MAX];            /* audit_file = var/hsm-audit.log */
    int64_t audit_flush_ms;                  /* longest delay of an aggregated entry */
    /* Set by the program, not read from the file: */
    char caller[PX_HSM_CALLER_MAX]; /* who is calling: "switch", "cli:alice" */
    hsm_secret_fn secret_fn;        /* NULL: environment variables only */
    void *secret_ud;
} hsm_config;

/* Defaults: soft, var/lmk.bin, scrypt 2^17, SoftHSM2 module, token "possum", key
 * "possum-lmk", var/hsm-audit.log, flush every 1000 ms, caller "possum". */
void hsm_config_default(hsm_config *cfg);

/* Fill cfg from [section] (defaults first); unknown keys in that section are errors. */
int hsm_config_bind(px_config *c, const char *section, hsm_config *cfg, px_error *e);

/* A service's own HSM keys over cfg: [section] hsm_backend, hsm_lmk_file, hsm_audit_file,
 * hsm_pkcs11_module, hsm_pkcs11_token, hsm_pkcs11_key, where present. PX_ECONFIG naming
 * file:line and key on a bad backend or a value too long; cfg is then partly set. */
int hsm_config_bind_overrides(px_config *c, const char *section, hsm_config *cfg, px_error *e);

/* A hsm_secret_fn that reads from the terminal with echo off (PX_EPERM without a tty). */
int hsm_secret_prompt(void *ud, const char *prompt, char *out, size_t outsz);

/* Create a new LMK: soft: a random 256-bit key in a new lmk_file (refused if it exists);
 * pkcs11: C_GenerateKey in the token (refused if a key with that label exists). Writes the
 * LMK check value (10 hex) into check and records "lmk.init" in the audit log. */
int hsm_lmk_init(const hsm_config *cfg, char check[PX_HSM_KCV_HEX_MAX], px_error *e);

/* Unlock the LMK and open the audit log. st may be NULL (then named keys are unavailable);
 * the caller keeps ownership of st and closes it after hsm_close. */
int hsm_open(const hsm_config *cfg, store *st, hsm **out, px_error *e);
void hsm_close(hsm *h); /* flushes the audit log, wipes every loaded key; NULL is fine */
/* A session of h for another thread or store connection: h's LMK keys (copied: no unlock,
 * no PKCS#11 call), h's audit log through a descriptor of its own, its own loaded keys and
 * audit queue, caller (NULL: h's) and st (NULL: named keys unavailable). Audited as
 * hsm.open with "session" in its detail. Independent of h once open: close either first. */
int hsm_session_open(const hsm *h, store *st, const char *caller, hsm **out, px_error *e);

const char *hsm_lmk_check(const hsm *h); /* LMK check value, 10 hex */
int hsm_set_caller(hsm *h, const char *caller, px_error *e);
int hsm_audit_flush(hsm *h, px_error *e); /* write aggregated entries now (no fsync) */

/* ---- keys ---- */

/* What a key block binds (TR-31 header fields) and the key length in bytes. */
typedef struct hsm_key_attrs {
    char usage[3];      /* "P0", "M3", "K0", ... */
    char algorithm;     /* 'T' TDES (16, 24), 'A' AES (16, 24, 32), 'D' DES (8: derived or
                         * imported only), 'E' P-256 private key (32, hsm_ec_generate only) */
    char mode;          /* 'B' 'C' 'D' 'E' 'G' 'N' 'V' 'X' */
    char exportability; /* 'E' exportable under a key block, 'S' also as a legacy
                         * cryptogram (ECB), 'N' never */
    size_t length;      /* key bytes */
} hsm_key_attrs;

/* A key as it leaves the HSM: its block under the LMK and its check value. */
typedef struct hsm_keyblock {
    char block[PX_HSM_KEYBLOCK_MAX];
    char kcv[PX_HSM_KCV_HEX_MAX]; /* TDES: 6 hex; AES: 10 hex (CMAC, X9.24-1 2017) */
} hsm_keyblock;

/* Labels: 1..63 of A-Z a-z 0-9 . _ - : / */
int hsm_label_is_valid(const char *label);

/* Check a key block under the LMK and keep it ready (see the top). Refused: a block made
 * under another LMK, a tampered block (PX_EAUTH), or a header this HSM does not allow. */
int hsm_key_load(hsm *h, const char *block, hsm_key **out, px_error *e);
/* The same for a named key (the label bound inside the block must match). */
int hsm_key_load_named(hsm *h, const char *label, hsm_key **out, px_error *e);
void hsm_key_free(hsm *h, hsm_key *k); /* NULL is fine */

void hsm_key_get_attrs(const hsm_key *k, hsm_key_attrs *out);
const char *hsm_key_kcv(const hsm_key *k);
/* A longer check value than the KCV, for protocols that carry one: the first n bytes of the
 * key's encryption of a zero block (TDES, n 1..8; UnionPay terminals check 4 bytes of each
 * work key in the sign-on field 62) or of AES-CMAC over a zero block (AES, n 1..16). It
 * reveals no more about the key than its KCV does. */
int hsm_key_check_value(hsm *h, hsm_key *k, size_t n, uint8_t *out, px_error *e);
const char *hsm_key_label(const hsm_key *k); /* "" when the block carries none */

/* Random key with attributes a. label: NULL keeps it out of the store, else it is bound
 * into the block and stored as a named key (PX_EEXIST if taken). */
int hsm_key_generate(hsm *h, const hsm_key_attrs *a, const char *label, hsm_keyblock *out,
                     px_error *e);

/* A clear key component as key custodians enter it: hex, and its check value (hex). */
typedef struct hsm_component {
    const char *hex;
    const char *kcv;
} hsm_component;

/* Form a key from 2 or 3 components (XOR), each checked against its KCV first (dual
 * control); a mismatch names the component. */
int hsm_key_form(hsm *h, const hsm_key_attrs *a, const hsm_component *c, size_t n,
                 const char *label, hsm_keyblock *out, px_error *e);

/* Import a key encrypted under kek:
 *   kek usage K0: cryptogram is hex of the key ECB-encrypted under kek; a gives the
 *                 attributes (length from the cryptogram); exportability S or E or N.
 *   kek usage K1: cryptogram is a TR-31 key block under kek; its header gives the
 *                 attributes (a must be NULL).
 * kcv (hex, may be NULL) is checked against the imported key. */
int hsm_key_import(hsm *h, hsm_key *kek, const char *cryptogram, const hsm_key_attrs *a,
                   const char *kcv, const char *label, hsm_keyblock *out, px_error *e);

typedef enum hsm_export_format {
    HSM_EXPORT_ECB = 0, /* legacy cryptogram (UnionPay field 62, TMK under TK): needs
                         * exportability S and a K0 KEK */
    HSM_EXPORT_TR31 = 1 /* TR-31 key block (B under a TDES, D under an AES KEK): needs
                         * exportability E or S and a K1 KEK */
} hsm_export_format;

/* Export key under kek. out receives the cryptogram (hex) or key block; kcv the key's check
 * value. Refused: a non-exportable key, a KEK weaker than the key, a KEK that may not
 * encrypt, the key itself as KEK. */
int hsm_key_export(hsm *h, hsm_key *kek, hsm_key *key, hsm_export_format fmt, char *out,
                   size_t outcap, char kcv[PX_HSM_KCV_HEX_MAX], px_error *e);

typedef enum hsm_derive_method {
    HSM_DERIVE_3DES = 1,   /* crypto_derive_key: 8 or 16 bytes of data (PBOC, TMS DMK) */
    HSM_DERIVE_EMV_A = 2,  /* EMV option A from pan and psn */
    HSM_DERIVE_SESSION = 3 /* DES session key = 3DES-ECB(master, 8 bytes of data): PBOC */
} hsm_derive_method;

typedef struct hsm_derive_params {
    hsm_derive_method method;
    const uint8_t *data; /* HSM_DERIVE_3DES, HSM_DERIVE_SESSION */
    size_t datalen;
    const char *pan; /* HSM_DERIVE_EMV_A */
    const char *psn; /* HSM_DERIVE_EMV_A, may be NULL */
} hsm_derive_params;

/* Derive a key from a master of mode X (double-length TDES). a gives the derived key's
 * usage (same class letter as the master's), mode and exportability (no looser than the
 * master's); algorithm and length follow from the method. */
int hsm_key_derive(hsm *h, hsm_key *master, const hsm_derive_params *p, const hsm_key_attrs *a,
                   const char *label, hsm_keyblock *out, px_error *e);

/* ---- keys sent to us under our public key (ECDH P-256; docs/hsm.md "Receiving a key") ---- */

#define HSM_EC_PUB_LEN 65 /* uncompressed P-256 point: 04 || X || Y */

/* A receiving key pair: the private key as a block (K3, algorithm E, mode D, non-exportable;
 * KCV = first 5 bytes of SHA-256 of the public point), optionally named; pub = public point. */
int hsm_ec_generate(hsm *h, const char *label, hsm_keyblock *out, uint8_t pub[HSM_EC_PUB_LEN],
                    px_error *e);
/* The public point of a loaded EC key. */
int hsm_ec_public(const hsm_key *k, uint8_t pub[HSM_EC_PUB_LEN], px_error *e);
/* Import a key the sender wrapped to priv's public point: eph = its ephemeral point, wrapped
 * = RFC 3394 AES key wrap under HKDF-SHA-256(ECDH). a gives the attributes (length from the
 * data); at most 128 bits of strength; kcv (may be NULL) is checked. */
int hsm_key_import_ecdh(hsm *h, hsm_key *priv, const uint8_t eph[HSM_EC_PUB_LEN],
                        const uint8_t *wrapped, size_t n, const hsm_key_attrs *a, const char *kcv,
                        const char *label, hsm_keyblock *out, px_error *e);

/* Delete a named key (PX_ENOTFOUND if absent). */
int hsm_key_delete(hsm *h, const char *label, px_error *e);

/* A named key's listing row (from the block's clear header: no LMK needed). */
typedef struct hsm_key_row {
    char label[PX_HSM_LABEL_MAX];
    hsm_key_attrs attrs;
    char kcv[PX_HSM_KCV_HEX_MAX];
    char lmk_check[PX_HSM_KCV_HEX_MAX];
    int64_t created_ms;
} hsm_key_row;

/* Call fn for each named key in label order; fn returning non-zero stops (returned). */
int hsm_keys_list(store *st, int (*fn)(void *ud, const hsm_key_row *row), void *ud, px_error *e);

/* ---- PIN ---- */

/* An encrypted PIN block and its ISO 9564-1 format (8 bytes for 0, 1, 3; 16 for 4). */
typedef struct hsm_pin_block {
    uint8_t data[CRYPTO_PINBLOCK_MAX];
    size_t len;
    crypto_pin_format format;
} hsm_pin_block;

/* Translate a PIN block from src (P0, may decrypt) to dst (P0, may encrypt) and dst_format.
 * pan: 12..19 digits (formats 0, 3, 4). Refused: a key of another usage or mode, format
 * 0/3/4 -> 1 (ISO 9564-1 forbids dropping the PAN binding), a block that does not decode. */
int hsm_pin_translate(hsm *h, hsm_key *src, const hsm_pin_block *in, hsm_key *dst,
                      crypto_pin_format dst_format, const char *pan, hsm_pin_block *out,
                      px_error *e);

/* The same from a DUKPT device: bdk (B0, mode X) and the KSN (10 bytes TDES DUKPT, 12 AES
 * DUKPT). AES DUKPT uses an AES PIN key of the BDK's length for format 4, 2TDEA else. */
int hsm_pin_translate_dukpt(hsm *h, hsm_key *bdk, const uint8_t *ksn, size_t ksnlen,
                            const hsm_pin_block *in, hsm_key *dst, crypto_pin_format dst_format,
                            const char *pan, hsm_pin_block *out, px_error *e);

/* IBM 3624 PIN offset parameters. */
typedef struct hsm_ibm3624 {
    const char *dec_table;       /* decimalisation table: 16 decimal digits */
    const char *validation_data; /* 1..16 hex digits, padded on the right with pad */
    char pad;                    /* a hex digit, usually 'F' */
    const char *offset;          /* verify: 4..12 digits; its length = digits checked */
} hsm_ibm3624;

/* Verify the PIN in `in` (under pin_key, P0) against an IBM 3624 offset with pvk (V1,
 * TDES). PX_OK when it matches, PX_EAUTH when not. The PIN never leaves. */
int hsm_pin_verify_ibm3624(hsm *h, hsm_key *pin_key, const hsm_pin_block *in, const char *pan,
                           hsm_key *pvk, const hsm_ibm3624 *p, px_error *e);
/* Compute the offset of the PIN in `in` (issuer set-up); p->offset is ignored; offset
 * receives as many digits as the PIN has (at most 12) and a NUL. */
int hsm_pin_offset_ibm3624(hsm *h, hsm_key *pin_key, const hsm_pin_block *in, const char *pan,
                           hsm_key *pvk, const hsm_ibm3624 *p, char offset[13], px_error *e);

/* Visa PVV: verify the PIN in `in` against pvv (4 digits) with pvk (V2, double-length
 * TDES) and pvki (0..9); PX_EAUTH on mismatch. */
int hsm_pin_verify_pvv(hsm *h, hsm_key *pin_key, const hsm_pin_block *in, const char *pan,
                       hsm_key *pvk, int pvki, const char *pvv, px_error *e);
/* Compute the PVV of the PIN in `in` (issuer set-up). */
int hsm_pin_pvv(hsm *h, hsm_key *pin_key, const hsm_pin_block *in, const char *pan, hsm_key *pvk,
                int pvki, char pvv[5], px_error *e);

/* ---- MAC and data ---- */

/* Generate a MAC (crypto/mac.h algorithm) over n bytes (<= PX_HSM_DATA_MAX). The key must
 * be a MAC key for alg (docs/hsm.md: X9.19 M3; ISO 9797-1 alg 1 and UnionPay ECB M0/M1;
 * CMAC M6; PBOC M1/E2/E6) of mode C or G. */
int hsm_mac_generate(hsm *h, hsm_key *k, crypto_mac_alg alg, const uint8_t *data, size_t n,
                     uint8_t *mac, size_t maccap, size_t *maclen, px_error *e);
/* Verify (mode C or V); maclen may truncate (4..full). PX_EAUTH when it does not match. */
int hsm_mac_verify(hsm *h, hsm_key *k, crypto_mac_alg alg, const uint8_t *data, size_t n,
                   const uint8_t *mac, size_t maclen, px_error *e);

/* Encrypt / decrypt data with a data key (D0; E, D or B) in ECB or CBC (iv one block);
 * n a multiple of the block size, <= PX_HSM_DATA_MAX. */
int hsm_data_encrypt(hsm *h, hsm_key *k, crypto_mode mode, const uint8_t *iv, const uint8_t *in,
                     size_t n, uint8_t *out, px_error *e);
int hsm_data_decrypt(hsm *h, hsm_key *k, crypto_mode mode, const uint8_t *iv, const uint8_t *in,
                     size_t n, uint8_t *out, px_error *e);

/* ---- audit ---- */

/* Verify the audit file at path: sequence, hash chain and the head anchor; with cfg, also
 * unlock that LMK (without writing to any log) and check every entry's MAC and the anchor's.
 * PX_OK and *entries, or PX_EAUTH with a message naming the first bad line. */
int hsm_audit_verify(const char *path, const hsm_config *cfg, size_t *entries, px_error *e);

#endif
