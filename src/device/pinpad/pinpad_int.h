/* pinpad_int.h: the PIN pad's inside, shared by its own files only. */
#ifndef PX_DEVICE_PINPAD_INT_H
#define PX_DEVICE_PINPAD_INT_H

#include "device/pinpad/pinpad.h"

#define PP_AEAD_KEY 32 /* AES-256 */
#define PP_NONCE 12    /* GCM nonce */
#define PP_TAG 16      /* GCM tag */
#define PP_SALT 16     /* HKDF salt, fresh on every write */

typedef struct pp_slot {
    int present;
    uint8_t key[PINPAD_KEY_LEN];
    int64_t loaded_ms;
} pp_slot;

struct pinpad {
    char store_path[PX_PATH_MAX];
    char serial[PX_PINPAD_SERIAL_MAX];
    uint8_t secret[PX_PINPAD_SECRET_LEN];
    pp_slot slot[PINPAD_SLOTS];
    uint64_t generation; /* bumped on every write (see docs/pinpad.md on rollback) */
};

/* Write the key store (pinpad_store.c). */
int pp_save(pinpad *p, px_error *e);

/* HKDF-SHA256 (RFC 5869) of the device secret with salt and info = label || serial. */
int pp_derive(const pinpad *p, const char *label, const uint8_t *salt, size_t saltlen,
              uint8_t out[PP_AEAD_KEY], px_error *e);

/* AES-256-GCM (NIST SP 800-38D) with a 12-byte nonce and 16-byte tag. open fails with
 * PX_EAUTH when the tag does not verify, and then writes nothing usable to out. */
int pp_gcm_seal(const uint8_t key[PP_AEAD_KEY], const uint8_t nonce[PP_NONCE], const uint8_t *aad,
                size_t aadlen, const uint8_t *in, size_t n, uint8_t *out, uint8_t tag[PP_TAG],
                px_error *e);
int pp_gcm_open(const uint8_t key[PP_AEAD_KEY], const uint8_t nonce[PP_NONCE], const uint8_t *aad,
                size_t aadlen, const uint8_t *in, size_t n, uint8_t *out, const uint8_t tag[PP_TAG],
                px_error *e);

#endif
