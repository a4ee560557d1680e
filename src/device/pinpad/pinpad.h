/*
 * pinpad.h: the terminal's PIN pad, a secure key store the POS application reaches only
 * through this API (docs/pinpad.md).
 *
 * Inside: the terminal master key TMK, the work keys PIK (PIN), MAK (MAC) and TDK (data)
 * delivered at sign-on, and the transmission key TK of remote key loading (seed 001). No
 * call returns a clear key: keys go in (as clear components typed by key custodians, or
 * encrypted under a key already inside) and only their results come out (PIN blocks, MACs,
 * check values). A PIN goes in as digits and leaves only as an encrypted PIN block; nothing
 * here stores it.
 *
 * At rest the keys live in one file encrypted with AES-256-GCM under a device key derived
 * (HKDF-SHA256) from the device secret and the serial number; a real PIN pad keeps that
 * secret in tamper-responsive memory that is erased when the case is opened.
 * Every call that changes a key rewrites the file atomically before it returns.
 */
#ifndef PX_DEVICE_PINPAD_H
#define PX_DEVICE_PINPAD_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"
#include "lib/limits.h"

typedef enum pinpad_slot {
    PINPAD_TMK = 0, /* terminal master key: encrypts the work keys (seed 001) */
    PINPAD_PIK = 1, /* PIN key: encrypts PIN blocks (field 52) */
    PINPAD_MAK = 2, /* MAC key: field 64 */
    PINPAD_TDK = 3, /* data key: track and card data */
    PINPAD_TK = 4,  /* transmission key: carries the TMK from the KMS (seed 001) */
    PINPAD_SLOTS = 5
} pinpad_slot;

#define PINPAD_KEY_LEN 16 /* every key is double-length TDES */
#define PINPAD_F62_LEN 60 /* sign-on field 62: three keys, each with a 4-byte check value */
#define PINPAD_PINBLOCK_LEN 8
#define PINPAD_MAC_LEN 8 /* field 64: 8 ASCII hex characters (CUP ECB MAC) */
#define PINPAD_KCV_HEX 7 /* 3-byte check value as hex, NUL included */

typedef struct pinpad pinpad;

/* What may be said about a key: whether it is there, its check value, when it came. */
typedef struct pinpad_key_info {
    int present;
    char kcv[PINPAD_KCV_HEX]; /* X9.24 TDES check value (3 bytes) in hex, "" when absent */
    int64_t loaded_ms;
} pinpad_key_info;

/* "TMK", "PIK", "MAK", "TDK", "TK" ("?" otherwise). */
const char *pinpad_slot_name(pinpad_slot s);

/* Create the device secret: PX_PINPAD_SECRET_LEN random bytes, mode 0600. PX_EEXIST if
 * the file is already there (a secret is never replaced: it would orphan the key store). */
int pinpad_secret_create(const char *secret_path, px_error *e);

/* Create an empty key store for serial (1..32 printable characters) and open it.
 * PX_EEXIST if store_path exists. */
int pinpad_create(const char *store_path, const char *secret_path, const char *serial, pinpad **out,
                  px_error *e);

/* Open an existing key store. PX_EAUTH when it does not authenticate: tampered, written
 * under another device secret, or for another serial number. */
int pinpad_open(const char *store_path, const char *secret_path, const char *serial, pinpad **out,
                px_error *e);

/* Wipe every key from memory and free. NULL is fine. */
void pinpad_close(pinpad *p);

const char *pinpad_serial(const pinpad *p);
void pinpad_key_info_get(const pinpad *p, pinpad_slot s, pinpad_key_info *out);
int pinpad_has_key(const pinpad *p, pinpad_slot s);

/* Key custodians load the TMK as clear components (X9.24-1 component entry): n (2..9)
 * components of PINPAD_KEY_LEN bytes, each checked against its check value (kcvs[i] of
 * kcvlen 3..8 bytes; kcvs NULL = unchecked) and the combined key against tmk_kcv (NULL =
 * unchecked). Any mismatch refuses the whole load and names the component. Replacing the
 * TMK erases the work keys, which it no longer protects. */
int pinpad_load_tmk_components(pinpad *p, const uint8_t *const *components, size_t n,
                               const uint8_t *const *kcvs, size_t kcvlen, const uint8_t *tmk_kcv,
                               size_t tmk_kcvlen, px_error *e);

/* Remote key loading (seed 001): generate a fresh TK inside; *kcv gets its check value. */
int pinpad_tk_generate(pinpad *p, char kcv_hex[PINPAD_KCV_HEX], px_error *e);

/* Load the TMK from its cryptogram under TK (TDES-ECB, 16 bytes) and its check value
 * (kcvlen 3..8). PX_EAUTH and nothing changes when the check value does not match. */
int pinpad_load_tmk_under_tk(pinpad *p, const uint8_t *cryptogram, size_t n, const uint8_t *kcv,
                             size_t kcvlen, px_error *e);

/* Install the work keys of a sign-on answer (docs/switch-protocol.md, "Sign-on"): field 62
 * = PIK(16) CV(4) MAK(16) CV(4) TDK(16) CV(4), each key TDES-ECB under the TMK, each CV
 * the first 4 bytes of the clear key's encryption of zeros. Every CV is checked before
 * any key is used: one mismatch refuses all three and the old keys stay. */
int pinpad_install_work_keys(pinpad *p, const uint8_t *f62, size_t n, px_error *e);

/* ISO 9564-1 format 0 PIN block of pin (4..12 digits) and pan (12..19 digits), TDES-ECB
 * under the PIK, into out (field 52). */
int pinpad_pin_block(pinpad *p, const char *pin, const char *pan, uint8_t out[PINPAD_PINBLOCK_LEN],
                     px_error *e);

/* Read a PIN from the terminal (fd_in, echo off, one '*' per digit on fd_out, Enter ends,
 * Backspace corrects, Esc, Ctrl-C or end of input cancels: PX_EPERM; Enter alone: no PIN,
 * PX_ENOTFOUND) and build the PIN block as pinpad_pin_block does; the digits are wiped
 * before return. When fd_in is not a terminal a line is read as typed (scripts, tests). */
int pinpad_pin_entry(pinpad *p, int fd_in, int fd_out, const char *prompt, const char *pan,
                     uint8_t out[PINPAD_PINBLOCK_LEN], px_error *e);

/* UnionPay POS ECB MAC (CRYPTO_MAC_CUP_ECB) under the MAK over data: 8 ASCII hex bytes. */
int pinpad_mac(pinpad *p, const uint8_t *data, size_t n, uint8_t out[PINPAD_MAC_LEN], px_error *e);
/* Constant-time check of a received MAC. PX_EAUTH when it does not match. */
int pinpad_mac_verify(pinpad *p, const uint8_t *data, size_t n, const uint8_t mac[PINPAD_MAC_LEN],
                      px_error *e);

/* Erase the work keys (sign-off), or every key (decommissioning), in memory and on disk. */
int pinpad_wipe_work_keys(pinpad *p, px_error *e);
int pinpad_wipe_all(pinpad *p, px_error *e);

/*
 * Card data the terminal must keep for a while (the PAN of a voidable sale, the track of a
 * pending reversal) is sealed by the PIN pad: AES-256-GCM under a key derived from the
 * device secret (not a work key, so it survives a sign-on). Sealed size = n + PINPAD_SEAL_OVERHEAD.
 */
#define PINPAD_SEAL_OVERHEAD 29 /* version 1, nonce 12, tag 16 */
int pinpad_seal(pinpad *p, const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *outlen,
                px_error *e);
int pinpad_unseal(pinpad *p, const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *outlen,
                  px_error *e);

#endif
