/*
 * tkenv.h: the TK envelope: a PIN pad's transmission key wrapped to one KMS's certified
 * public key and signed by the PIN pad (seed 001 [0028], [0031]; docs/trust-model.md).
 *
 * The operator terminal and the MTMS relay it as an opaque blob (base64 in JSON); they can
 * read its clear header (serial number, which KMS it is for, the TK's check value) and
 * check its signature, but nothing in it lets them unwrap the TK: that takes the private
 * half of the KMS's receiving key, a key block inside the KMS's HSM.
 *
 * Layout (integers big-endian):
 *   "PXTK" | version 1 (1) | serial length s (1) | serial (s: 1..32 of A-Z a-z 0-9 . _ - @)
 *   | KMS certificate fingerprint (32: SHA-256 of the receiving certificate's DER)
 *   | ephemeral point E (65) | wrapped length w (1: 24, 32 or 40) | wrapped TK (w)
 *   | TK check value (3) | created_ms (8) | device certificate length d (2) | its DER (d)
 *   | signature length g (1) | ECDSA P-256 SHA-256 signature, DER (g)
 * The signature covers "possum.tk-envelope.v1" followed by every byte before its length.
 * The wrap is docs/hsm.md "Receiving a key under our public key": Z = ECDH(e, Q),
 * KEK = HKDF-SHA-256(Z, info = "possum.key-wrap.v1" || E || Q), RFC 3394 AES-256 key wrap.
 */
#ifndef PX_PKI_TKENV_H
#define PX_PKI_TKENV_H

#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/limits.h"
#include "pki/pki.h"

#define PKI_TKENV_MAGIC "PXTK"
#define PKI_TKENV_VERSION 1
#define PKI_TKENV_SIG_LABEL "possum.tk-envelope.v1"
#define PKI_TKENV_SERIAL_MAX 32 /* characters of a serial number */
#define PKI_TKENV_WRAPPED_MAX 40
#define PKI_TKENV_KCV_LEN 3
#define PKI_TKENV_CERT_MAX 1200 /* bytes of the device certificate (DER) */
#define PKI_TKENV_SIG_MAX 72

typedef struct pki_tkenv {
    char serial[PKI_TKENV_SERIAL_MAX + 1];
    uint8_t kms_fp[PKI_FP_LEN];
    uint8_t eph[PKI_EC_POINT_LEN];
    uint8_t wrapped[PKI_TKENV_WRAPPED_MAX];
    size_t wrapped_len;
    uint8_t tk_kcv[PKI_TKENV_KCV_LEN];
    int64_t created_ms;
    const uint8_t *device_cert; /* into the parsed input (or the caller's, to encode) */
    size_t device_cert_len;
    const uint8_t *sig; /* into the parsed input */
    size_t sig_len;
    size_t signed_len; /* bytes of the input the signature covers */
} pki_tkenv;

/* 1 if s is a usable serial number (1..32 of A-Z a-z 0-9 . _ - @). */
int pki_serial_is_valid(const char *s);

/* Parse n bytes into env, checking every length; pointers in env point into in.
 * PX_EFORMAT names the field ("TK envelope: wrapped key: 23 bytes, expected 24, 32 or 40"). */
int pki_tkenv_parse(const uint8_t *in, size_t n, pki_tkenv *env, px_error *e);

/* The same from base64 text into buf (capacity PX_TKENV_MAX). */
int pki_tkenv_parse_b64(const char *b64, uint8_t *buf, size_t cap, size_t *len, pki_tkenv *env,
                        px_error *e);

/* Encode everything up to the signature (env's fields, its device_cert) into out. */
int pki_tkenv_encode_body(const pki_tkenv *env, uint8_t *out, size_t cap, size_t *len, px_error *e);

/* Append the signature to a body of bodylen bytes already in out. */
int pki_tkenv_append_sig(uint8_t *out, size_t cap, size_t bodylen, const uint8_t *sig,
                         size_t siglen, size_t *len, px_error *e);

/* Check a parsed envelope (in, n: what was parsed): its device certificate chains to the
 * CA, is not revoked, is a PIN pad's ("pinpad:<serial>" with the envelope's serial) and its
 * signature verifies. device (may be NULL) receives the certificate. PX_EPERM / PX_EAUTH
 * with the reason. */
int pki_tkenv_verify(const pki_trust *t, const uint8_t *in, size_t n, const pki_tkenv *env,
                     int64_t now_ms, pki_cert_info *device, px_error *e);

/* The bytes a key-download MAC covers (docs/kms.md "Key download"):
 *   label || serial length (1) || serial || nonce length (1) || nonce
 *   [|| result length (1) || result]             (result NULL: left out)
 * out needs at most 64 + 1 + 32 + 1 + 64 + 1 + 32 bytes (PKI_KEYLOAD_DATA_MAX). */
#define PKI_KEYLOAD_DATA_MAX 196
#define PKI_KEYLOAD_PROOF_LABEL "possum.keyload.proof.v1"   /* the terminal holds TK */
#define PKI_KEYLOAD_RESULT_LABEL "possum.keyload.result.v1" /* what the terminal did */
int pki_keyload_mac_data(const char *label, const char *serial, const uint8_t *nonce,
                         size_t nonce_len, const char *result, uint8_t *out, size_t cap,
                         size_t *len, px_error *e);

#endif
