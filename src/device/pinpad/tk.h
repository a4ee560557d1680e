/*
 * tk.h: the PIN pad's side of remote key loading (seed 001 [0028]-[0031]; docs/trust-model.md).
 *
 *   - Its device key: an EC P-256 key made inside the PIN pad, kept sealed beside the key
 *     store (device.key: AES-256-GCM under a key derived from the device secret), certified
 *     by the CA as "pinpad:<serial>" (device.crt). The CA's certificate (ca.crt) is the
 *     PIN pad's trust anchor, installed with it at manufacture.
 *   - TK export: a fresh TK from the strong random source (pinpad_tk_generate) kept in the
 *     key store, leaving only wrapped to the public key of one KMS, taken from a
 *     key-agreement certificate that chains to the CA and is not on its current CRL:
 *     ECDH P-256 + HKDF-SHA-256 + AES key wrap (RFC 3394), the envelope signed with the
 *     device key and bound to the serial number (pki/tkenv.h). Every export makes a new TK,
 *     so a TK never reaches two KMSes.
 *   - Key download: the KMS proves nothing by itself; the PIN pad proves it holds TK by
 *     decrypting a one-time session key the KMS sent under TK and MACing (TDES CMAC) its
 *     serial number and the KMS's fresh nonce with it (key separation: TK only ever
 *     decrypts keys, the session key only MACs).
 * The files live in the directory of the key store (the terminal's directory).
 */
#ifndef PX_DEVICE_PINPAD_TK_H
#define PX_DEVICE_PINPAD_TK_H

#include <stddef.h>
#include <stdint.h>

#include "device/pinpad/pinpad.h"
#include "lib/err.h"
#include "pki/pki.h"
#include "pki/tkenv.h"

#define TK_DEVICE_KEY_FILE "device.key"
#define TK_DEVICE_CERT_FILE "device.crt"
#define TK_CA_FILE "ca.crt"
#define TK_PROOF_LABEL PKI_KEYLOAD_PROOF_LABEL
#define TK_RESULT_LABEL PKI_KEYLOAD_RESULT_LABEL
#define TK_MAC_LEN 8      /* TDES CMAC */
#define TK_SESSION_LEN 16 /* the session key's cryptogram under TK */

/* Make the device key inside (refused with PX_EEXIST when there is one) and write a
 * certificate request for it, signed by it, into *csr_pem (malloc'd; the CA ignores its
 * subject and names it "pinpad:<serial>"). */
int tk_device_key_create(pinpad *p, char **csr_pem, px_error *e);

/* A new request from the existing device key (PX_ENOTFOUND without one). */
int tk_device_csr(pinpad *p, char **csr_pem, px_error *e);

/* Install the CA's certificate (trust anchor) and the device certificate the CA issued:
 * it must certify this device key, name this serial, be a device certificate and chain to
 * that CA (crl_pem, when not NULL, is checked too). */
int tk_device_install(pinpad *p, const char *cert_pem, const char *ca_pem, const char *crl_pem,
                      px_error *e);

/* 1 when the PIN pad has a device key, its certificate and a CA. */
int tk_device_is_ready(pinpad *p);

/* Generate a new TK and export it for the KMS whose receiving certificate is kms_cert_pem,
 * checked against ca.crt and crl_pem (required: the CA's current CRL). out (cap at least
 * PX_TKENV_MAX) receives the signed envelope; kms (may be NULL) the KMS's certificate;
 * kcv_hex (may be NULL, 7 bytes) the new TK's check value. Refused: a certificate that is not
 * a KMS's receiving key, not from the CA, revoked, expired (PX_EPERM with the reason). */
int tk_export(pinpad *p, const char *kms_cert_pem, const char *crl_pem, uint8_t *out, size_t cap,
              size_t *len, pki_cert_info *kms, char kcv_hex[PINPAD_KCV_HEX], px_error *e);

/* Key download, step 1: session (TK_SESSION_LEN bytes, TDES-ECB under TK) with its check
 * value session_kcv (3 bytes; a mismatch means this PIN pad's TK is not the one the KMS
 * holds: PX_EAUTH); mac = CMAC(session key, TK_PROOF_LABEL || serial || nonce). */
int tk_download_proof(pinpad *p, const uint8_t *session, size_t n, const uint8_t *session_kcv,
                      const uint8_t *nonce, size_t nonce_len, uint8_t mac[TK_MAC_LEN], px_error *e);

/* Key download, last step: mac = CMAC(session key, TK_RESULT_LABEL || serial || nonce ||
 * result) for the outcome the terminal reports ("loaded", "kcv_mismatch", ...). */
int tk_result_mac(pinpad *p, const uint8_t *session, size_t n, const uint8_t *nonce,
                  size_t nonce_len, const char *result, uint8_t mac[TK_MAC_LEN], px_error *e);

#endif
