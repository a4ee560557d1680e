/* hsm_int.h: private to src/hsm: the hsm and key structs, LMK backends, audit, policy. */
#ifndef PX_HSM_INT_H
#define PX_HSM_INT_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "crypto/tr31.h"
#include "hsm/hsm.h"
#include "lib/buf.h"

#define HSM_LMK_LEN 32       /* the LMK: AES-256 */
#define HSM_KBPK_LEN 32      /* key block protection key derived from the LMK: AES-256 */
#define HSM_AUDIT_KEY_LEN 32 /* HMAC-SHA-256 key derived from the LMK */
#define HSM_SHA256_HEX 64

/* ---- LMK backends: each offers one primitive, AES-CMAC under the LMK ---- */

typedef struct hsm_lmk {
    int (*cmac)(void *ctx, const uint8_t *msg, size_t n, uint8_t out[16], px_error *e);
    void (*close)(void *ctx);
    void *ctx;
} hsm_lmk;

int hsm_lmk_soft_open(const hsm_config *cfg, hsm_lmk *out, px_error *e);
/* Create a new LMK and return it open (so no secret is asked for twice). */
int hsm_lmk_soft_create(const hsm_config *cfg, hsm_lmk *out, px_error *e);
int hsm_lmk_pkcs11_open(const hsm_config *cfg, hsm_lmk *out, px_error *e);
int hsm_lmk_pkcs11_create(const hsm_config *cfg, hsm_lmk *out, px_error *e);
void hsm_lmk_close(hsm_lmk *l);

/* The secret named by env (environment first, else cfg->secret_fn with prompt). */
int hsm_secret_get(const hsm_config *cfg, const char *env, const char *prompt, char *out,
                   size_t outsz, px_error *e);

/* Keys the hsm derives from the LMK once, at open. */
typedef struct hsm_lmk_keys {
    uint8_t kbpk[HSM_KBPK_LEN];
    uint8_t audit_key[HSM_AUDIT_KEY_LEN];
    char lmk_check[PX_HSM_KCV_HEX_MAX];  /* AES CMAC KCV of the LMK, 10 hex */
    char kbpk_check[PX_HSM_KCV_HEX_MAX]; /* KCV of the KBPK: the KP block of our blocks */
} hsm_lmk_keys;

int hsm_lmk_derive_keys(hsm_lmk *l, hsm_lmk_keys *out, px_error *e);
/* Unlock the configured LMK and derive its keys; the backend is closed again at once. */
int hsm_unlock_lmk(const hsm_config *cfg, hsm_lmk_keys *out, px_error *e);

/* ---- audit ---- */

/* Operations counted per key and written as aggregated entries. */
typedef enum hsm_agg_op {
    HSM_AGG_PIN_TRANSLATE = 0,
    HSM_AGG_PIN_TRANSLATE_DUKPT,
    HSM_AGG_PIN_VERIFY,
    HSM_AGG_PIN_GENERATE,
    HSM_AGG_MAC_GENERATE,
    HSM_AGG_MAC_VERIFY,
    HSM_AGG_DATA_ENCRYPT,
    HSM_AGG_DATA_DECRYPT,
    HSM_AGG_N
} hsm_agg_op;

typedef struct hsm_audit {
    int fd; /* the log, O_APPEND; -1 when closed */
    char path[PX_PATH_MAX];
    char head_path[PX_PATH_MAX]; /* path + ".head": the anchor against truncation */
    px_buf pending;              /* entry bodies waiting to be chained and written */
    uint8_t key[HSM_AUDIT_KEY_LEN];
    int broken; /* a write failed: operations refuse until one works */
} hsm_audit;

/* One entry's fields (strings may be NULL or ""). */
typedef struct hsm_audit_entry {
    const char *op;
    const char *label;
    const char *kcv;
    const char *result; /* "ok", "refused", "fail", "error" */
    uint64_t count;
    const char *detail; /* no secret: a reason or a parameter name */
} hsm_audit_entry;

int hsm_audit_open(hsm_audit *a, const char *path, const uint8_t key[HSM_AUDIT_KEY_LEN],
                   px_error *e);
void hsm_audit_close(hsm_audit *a);
/* How soon an entry reaches the disk. */
typedef enum hsm_audit_level {
    HSM_AUDIT_QUEUE = 0, /* with the next write (aggregated hot-path counts) */
    HSM_AUDIT_WRITE = 1, /* written now, fsynced with the next SYNC (loads, refusals) */
    HSM_AUDIT_SYNC = 2   /* written and fsynced before the call returns (key management) */
} hsm_audit_level;

/* Add an entry by caller at level. */
int hsm_audit_add(hsm_audit *a, const char *caller, const hsm_audit_entry *en,
                  hsm_audit_level level, px_error *e);
/* Chain and write what is queued; fsync when sync. */
int hsm_audit_write(hsm_audit *a, int sync, px_error *e);

/* ---- loaded keys ---- */

struct hsm_key {
    struct hsm_key *prev, *next; /* h->loaded */
    hsm_key_attrs attrs;
    char key_version[3];
    uint8_t key[CRYPTO_KEY_MAX];
    crypto_key *sched; /* key schedule for ECB/CBC (NULL for 'D' and 'E' keys) */
    char kcv[PX_HSM_KCV_HEX_MAX];
    char label[PX_HSM_LABEL_MAX];
    uint64_t agg[HSM_AGG_N][2]; /* [op][0 ok, 1 fail]: not yet written */
};

struct hsm {
    hsm_config cfg;
    hsm_lmk_keys lk;
    store *st;
    hsm_audit audit;
    hsm_key *loaded;
    size_t nloaded;
    int64_t next_flush_ms; /* monotonic */
    unsigned ticks;        /* operations since the clock was last read */
};

/* Aggregate one hot-path result on k (and flush on schedule). Returns rc unchanged. */
int hsm_agg(hsm *h, hsm_key *k, hsm_agg_op op, int rc);
/* Record one event (a refusal is written at least at HSM_AUDIT_WRITE); returns rc when it
 * is an error, else the result of writing the audit entry. */
int hsm_audit_event(hsm *h, const char *op, const hsm_key *k, const char *label, const char *kcv,
                    int rc, const char *detail, hsm_audit_level level, px_error *e);
/* PX_EIO while the audit log cannot be written (fail closed). */
int hsm_audit_ok(hsm *h, px_error *e);

/* ---- policy (policy.c) ---- */

typedef enum hsm_need {
    HSM_NEED_ENCRYPT = 1,
    HSM_NEED_DECRYPT,
    HSM_NEED_MAC_GEN,
    HSM_NEED_MAC_VERIFY,
    HSM_NEED_DERIVE
} hsm_need;

/* Attributes a new key may have (usage known, mode valid for it, length for alg). */
int hsm_attrs_check(const hsm_key_attrs *a, px_error *e);
/* k has usage among the NULL-terminated list and its mode permits need. */
int hsm_policy_check(const hsm_key *k, const char *const *usages, hsm_need need, const char *role,
                     px_error *e);
/* Effective strength in bits (SP 800-57): 2TDEA 80, 3TDEA 112, AES n*8, DES 56, P-256 128. */
int hsm_key_strength(char algorithm, size_t length);
/* crypto_alg of a TR-31 algorithm letter (0 if none). */
crypto_alg hsm_crypto_alg(char algorithm);
/* KCV of a clear key as hex (TDES/DES 6, AES 10). */
int hsm_kcv_hex(char algorithm, const uint8_t *key, size_t keylen, char out[PX_HSM_KCV_HEX_MAX],
                px_error *e);
/* KCV of a P-256 private key: the first 5 bytes of SHA-256 of its public point, as hex. */
int hsm_ec_kcv_hex(const uint8_t d[32], char out[PX_HSM_KCV_HEX_MAX], px_error *e);
/* 1 for a TDES key with K1 = K2 or K2 = K3: single DES in disguise. */
int hsm_key_is_degenerate(char algorithm, const uint8_t *key, size_t keylen);

/* ---- key blocks under the LMK (keyblock.c) ---- */

/* Wrap a clear key with attributes a (and label, may be NULL) into out. */
int hsm_block_wrap(hsm *h, const hsm_key_attrs *a, const char *label, const uint8_t *key,
                   size_t keylen, hsm_keyblock *out, px_error *e);
/* Make a new key from clear material: wrap, optionally store under label, audit (SYNC)
 * with its attributes and extra (may be NULL) as detail. */
int hsm_key_emit(hsm *h, const char *op, const hsm_key_attrs *a, const char *label,
                 const uint8_t *key, size_t keylen, const char *extra, hsm_keyblock *out,
                 px_error *e);

/* ---- named keys (keystore.c) ---- */

int hsm_store_insert(hsm *h, const char *label, const hsm_key_attrs *a, const hsm_keyblock *kb,
                     px_error *e);
int hsm_store_get(hsm *h, const char *label, char *block, size_t cap, px_error *e);
int hsm_store_delete(hsm *h, const char *label, px_error *e);

#endif
