/*
 * kms.h: a customer's key management system (seed 001 [0028]-[0029], claims 3 and 6;
 * docs/kms.md, docs/trust-model.md). Run by the customer as its own possumd with its own
 * HSM (LMK) and database; the `kms` service serves it over HTTPS.
 *
 *   TK intake      envelopes from the MTMS only (mutual TLS, the MTMS's certificate): each
 *                  must be wrapped to this KMS's receiving key and signed by a PIN pad whose
 *                  certificate chains to the CA and is not revoked; the TK is unwrapped
 *                  inside the HSM straight into a key block, and a unique TMK is generated
 *                  for the terminal.
 *   Key download   the terminal asks for a challenge (a fresh nonce and a one-time session
 *                  key sent under its TK), proves it holds TK with a MAC over its serial
 *                  number and the nonce under that session key, and receives its TMK
 *                  encrypted under TK with the TMK's check value; it then reports the
 *                  outcome (loaded, or a check-value mismatch).
 *   The platform   the TMK goes to the transaction platform (the switch) as a cryptogram or
 *                  a TR-31 block under a zone key (kms_tmk_export).
 * Every refusal names its reason and is written to the audit table kms_audit.
 * A kms is used by one thread at a time (its HSM and store are).
 */
#ifndef PX_HOST_KMS_H
#define PX_HOST_KMS_H

#include <stddef.h>
#include <stdint.h>

#include "hsm/hsm.h"
#include "lib/config.h"
#include "lib/err.h"
#include "lib/limits.h"
#include "net/tls.h"
#include "pki/pki.h"
#include "pki/tkenv.h"
#include "store/store.h"

#define KMS_MAC_LEN 8 /* TDES CMAC, as the PIN pad computes it (device/pinpad/tk.h) */

/* Attributes of the keys the KMS makes (docs/kms.md "Keys"). */
extern const hsm_key_attrs kms_tk_attrs;      /* K0 TDES 16, mode E, exportability N */
extern const hsm_key_attrs kms_tmk_attrs;     /* K0 TDES 16, mode E, exportability S */
extern const hsm_key_attrs kms_session_attrs; /* M6 TDES 16 (CMAC), mode C, exportability S */

typedef struct kms_config {
    char customer[PX_CUSTOMER_CODE_MAX]; /* the customer this KMS serves: CN "kms:<customer>" */
    char recv_key[PX_HSM_LABEL_MAX];     /* label of the receiving EC key in the HSM */
    char recv_cert[PX_PATH_MAX];         /* its key-agreement certificate from the CA */
    char ca[PX_PATH_MAX];                /* the CA (PIN pad certificates are checked against it) */
    char crl[PX_PATH_MAX];               /* and its CRL (required) */
    char mtms_cn[256];                   /* CNs allowed to deliver TKs, comma-separated */
    char zone_key[PX_HSM_LABEL_MAX];     /* default zone key for kms_tmk_export ("" none) */
    int64_t challenge_ttl_ms;
} kms_config;

void kms_config_default(kms_config *c);

/* The KMS's own HSM settings: [hsm] when the file has it, then the [kms] keys hsm_backend,
 * hsm_lmk_file, hsm_audit_file, hsm_lmk_scrypt_log2n, hsm_pkcs11_module, hsm_pkcs11_token,
 * hsm_pkcs11_key (as the switch takes its own). Caller "kms". */
int kms_hsm_config_bind(px_config *c, hsm_config *out, px_error *e);

typedef struct kms kms;

/* Load the receiving key (named, K3) and check its certificate certifies that very key and
 * is this customer's KMS receiving key from the CA; load the CA and CRL. */
int kms_open(const kms_config *c, store *st, hsm *h, kms **out, px_error *e);
void kms_close(kms *k); /* NULL is fine */
/* The receiving certificate's SHA-256 fingerprint (hex). */
const char *kms_recv_fingerprint(const kms *k);

/* `possum kms init`: make the receiving key pair in the HSM under label; pub gets its point
 * (to be certified by the CA as "kms:<customer>", purpose key-agreement). */
int kms_recv_key_create(hsm *h, const char *label, uint8_t pub[HSM_EC_PUB_LEN], px_error *e);

/* ---- TK intake ---- */

typedef struct kms_intake_result {
    char serial[PKI_TKENV_SERIAL_MAX + 1];
    const char *status; /* "imported", "duplicate", "refused" */
    int code;           /* px_err of a refusal */
    char reason[PX_ERRMSG_MAX];
    char tk_kcv[PX_HSM_KCV_HEX_MAX];
    char tmk_kcv[PX_HSM_KCV_HEX_MAX];
} kms_intake_result;

/* 1 if peer_cn may deliver TKs (listed in mtms_cn). */
int kms_peer_is_mtms(const kms *k, const char *peer_cn);

/* Take one envelope (its bytes) from peer_cn. Every outcome fills r (a refusal too, which is
 * audited); returns PX_OK for imported/duplicate, else the refusal's code. Inside the
 * caller's store transaction when one is open (a batch commits once); the caller must then
 * treat a failed commit as "nothing imported". */
int kms_tk_intake(kms *k, const char *peer_cn, const uint8_t *env, size_t n, kms_intake_result *r,
                  px_error *e);

/* ---- key download ---- */

typedef struct kms_challenge {
    uint8_t nonce[PX_KMS_NONCE_LEN];
    uint8_t session[16]; /* the session key, TDES-ECB under TK */
    uint8_t session_kcv[3];
    int64_t expires_ms;
} kms_challenge;

int kms_download_challenge(kms *k, const char *serial, const char *peer, kms_challenge *out,
                           px_error *e);

typedef struct kms_tmk {
    uint8_t cryptogram[16]; /* TMK, TDES-ECB under TK */
    char kcv[PX_HSM_KCV_HEX_MAX];
} kms_tmk;

/* Verify the proof (mac over serial and nonce under the session key) and answer the TMK.
 * Refusals (audited): unknown serial or nonce (PX_ENOTFOUND), a nonce already used
 * (PX_ECONFLICT, "replayed"), an expired one (PX_ETIMEOUT), a wrong MAC (PX_EAUTH: the
 * terminal does not hold TK). */
int kms_download(kms *k, const char *serial, const uint8_t *nonce, size_t nonce_len,
                 const uint8_t *mac, size_t mac_len, const char *peer, kms_tmk *out, px_error *e);

/* The terminal's report ("loaded", "kcv_mismatch", "error"), MACed under the session key. */
int kms_download_result(kms *k, const char *serial, const uint8_t *nonce, size_t nonce_len,
                        const char *result, const uint8_t *mac, size_t mac_len, const char *peer,
                        px_error *e);

/* ---- the platform ---- */

/* The TMK under a zone key (K0: ECB cryptogram hex; K1: TR-31 block), for the switch. */
int kms_tmk_export(kms *k, const char *serial, const char *zone_key, const char *actor, char *out,
                   size_t outcap, char kcv[PX_HSM_KCV_HEX_MAX], px_error *e);

/* ---- reading ---- */

typedef struct kms_terminal_info {
    char serial[PKI_TKENV_SERIAL_MAX + 1];
    char tk_kcv[PX_HSM_KCV_HEX_MAX], tmk_kcv[PX_HSM_KCV_HEX_MAX];
    char device_cn[PX_PKI_CN_MAX];
    char status[12];
    int64_t received_ms, loaded_ms, downloads;
} kms_terminal_info;

int kms_terminal_get(store *st, const char *serial, kms_terminal_info *out, px_error *e);
int kms_terminal_list(store *st, int (*fn)(void *ud, const kms_terminal_info *t), void *ud,
                      px_error *e);

typedef struct kms_audit_row {
    int64_t id, ts_ms;
    char actor[PX_PKI_CN_MAX + 16];
    char action[32];
    char serial[PKI_TKENV_SERIAL_MAX + 1];
    char result[8];
    char reason[PX_ERRMSG_MAX];
} kms_audit_row;

/* Audit rows (of serial, or all when NULL), oldest first. */
int kms_audit_list(store *st, const char *serial, int (*fn)(void *ud, const kms_audit_row *r),
                   void *ud, px_error *e);

/* A TLS handshake the intake listener refused (a client that is not the MTMS: revoked, from
 * another CA, no certificate, ...), as an audit row: action "tls.refused", serial "-",
 * actor the peer's address (the offered certificate is a claim, never an identity), reason
 * the refusal and the offered certificate's CN, serial and issuer (net_tls_refusal_text). */
void kms_audit_tls_refused(kms *k, const net_tls_refusal *r);

#endif
