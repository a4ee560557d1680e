/*
 * tuf.h: signed release metadata in the manner of The Update Framework (docs/update-protocol.md,
 * "Metadata"). One implementation for both halves: the terminal verifies with it, the TMS and
 * `possum tms` sign and check uploads with it.
 *
 * A record is a JSON envelope {"signed":{...},"signatures":[{"keyid":K,"sig":S}]}; the
 * signature is Ed25519 over the canonical JSON of "signed" (keys sorted, no whitespace, only
 * strings, integers, booleans, arrays and objects). A key's id is the SHA-256 (hex) of the
 * canonical JSON of {"keytype":"ed25519","public":HEX}.
 *
 * Roles: root (its keys sign root records: who may sign what, rotated by a new root signed by
 * a threshold of the old root keys and of the new), targets (offline keys sign one record per
 * release: name, kind, version, length, SHA-256, models) and timestamp (the TMS's online key
 * signs a short-lived record binding the hash of every current targets record).
 *
 * Every parse function checks every field (type, length, range) and refuses unknown ones;
 * nothing past it re-reads raw JSON. Needs only lib/, OpenSSL and jansson, so it lives in
 * crypto/, below both the TMS (host/tms) and the terminal (device/tmsclient) that use it.
 */
#ifndef PX_CRYPTO_TUF_H
#define PX_CRYPTO_TUF_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/limits.h"

#define TUF_SPEC "1"     /* spec_version of every record */
#define TUF_PUB_LEN 32   /* Ed25519 public key */
#define TUF_PRIV_LEN 32  /* Ed25519 private key (seed) */
#define TUF_SIG_LEN 64   /* Ed25519 signature */
#define TUF_KEYID_HEX 65 /* SHA-256 hex, NUL included */
#define TUF_SHA256_HEX 65

/* ---- versions: "MAJOR[.MINOR[.PATCH]]", each 0..999999, compared numerically ---------- */

/* Parse a version into a number that orders as the versions do (major*10^12 + minor*10^6 +
 * patch). PX_EFORMAT names what is wrong. */
int tuf_version_parse(const char *s, int64_t *num, px_error *e);

/* ---- names: package, model and group names -------------------------------------------- */

/* 1..64 of A-Z a-z 0-9 . _ - (no leading dot). */
int tuf_name_is_valid(const char *s);

/* ---- canonical JSON, keys, signatures ------------------------------------------------- */

/* The canonical bytes of j into out (reset first). PX_EFORMAT for a real number or null
 * anywhere inside. */
int tuf_canonical(const json_t *j, px_buf *out, px_error *e);

typedef struct tuf_key {
    char keyid[TUF_KEYID_HEX];
    uint8_t pub[TUF_PUB_LEN];
} tuf_key;

/* Fill k from a public key (its keyid computed). */
int tuf_key_from_public(const uint8_t pub[TUF_PUB_LEN], tuf_key *k, px_error *e);

/* A fresh Ed25519 key pair. priv must be wiped by the caller. */
int tuf_keypair_generate(uint8_t priv[TUF_PRIV_LEN], uint8_t pub[TUF_PUB_LEN], px_error *e);

/* The public half of priv. */
int tuf_public_of(const uint8_t priv[TUF_PRIV_LEN], uint8_t pub[TUF_PUB_LEN], px_error *e);

/* Key files. Private: {"keytype":"ed25519","private":HEX,"public":HEX}, written mode 0600
 * (refused if the file exists); public: {"keytype":"ed25519","public":HEX}. */
int tuf_private_key_write(const char *path, const uint8_t priv[TUF_PRIV_LEN], px_error *e);
int tuf_private_key_read(const char *path, uint8_t priv[TUF_PRIV_LEN], px_error *e);
int tuf_public_key_write(const char *path, const uint8_t pub[TUF_PUB_LEN], px_error *e);
/* Reads a public key file, or the public half of a private key file. */
int tuf_public_key_read(const char *path, uint8_t pub[TUF_PUB_LEN], px_error *e);

/* Add (or replace) the signature of priv on the envelope env (object with "signed"). */
int tuf_envelope_sign(json_t *env, const uint8_t priv[TUF_PRIV_LEN], px_error *e);

/* Split a record's bytes (at most PX_TMS_META_MAX) into its envelope; *env is a new
 * reference; *signed_part is borrowed from it. Checks the envelope's shape, the signatures'
 * shape, and that "signed" has "_type" == type and "spec_version" == TUF_SPEC. */
int tuf_envelope_parse(const void *bytes, size_t n, const char *type, json_t **env,
                       json_t **signed_part, px_error *e);

/* ---- root ----------------------------------------------------------------------------- */

typedef struct tuf_role {
    char keyids[PX_TMS_ROLE_KEYS_MAX][TUF_KEYID_HEX];
    size_t nkeys;
    int64_t threshold;
} tuf_role;

typedef enum tuf_role_id {
    TUF_ROLE_ROOT = 0,
    TUF_ROLE_TARGETS = 1,
    TUF_ROLE_TIMESTAMP = 2
} tuf_role_id;

typedef struct tuf_root {
    int64_t version;
    int64_t expires_ms;
    tuf_key keys[PX_TMS_ROOT_KEYS_MAX];
    size_t nkeys;
    tuf_role roles[3]; /* by tuf_role_id */
} tuf_root;

const char *tuf_role_name(tuf_role_id r); /* "root", "targets", "timestamp" */

/* Parse the signed part of a root record. */
int tuf_root_parse(const json_t *signed_part, tuf_root *out, px_error *e);

/* Build the signed part of a root record (a new reference). */
json_t *tuf_root_build(const tuf_root *r);

/* Count the distinct keys of role r (in root) whose signature on env verifies; PX_EAUTH
 * with "WHAT: N valid signatures, threshold T" when fewer than the threshold. what names the
 * record in messages ("targets pos-app 1.2.0"). nvalid may be NULL. */
int tuf_verify_role(const json_t *env, const tuf_root *root, tuf_role_id r, const char *what,
                    int64_t *nvalid, px_error *e);

/* Trust a root record on its own signatures (the first root, provisioned at the factory or
 * uploaded by an operator): a threshold of its own root keys. */
int tuf_root_verify_initial(const void *bytes, size_t n, tuf_root *out, px_error *e);

/* The next root after trusted: version trusted+1 exactly, signed by a threshold of trusted's
 * root keys and a threshold of its own (TUF 5.3.4). Expiry is the caller's to check. */
int tuf_root_verify_next(const tuf_root *trusted, const void *bytes, size_t n, tuf_root *out,
                         px_error *e);

/* ---- targets (one record per release) ------------------------------------------------- */

typedef struct tuf_target {
    char name[PX_TMS_NAME_MAX];
    char kind[8]; /* "app" or "params" */
    char version[PX_TMS_VERSION_MAX];
    int64_t version_num;
    int64_t length;
    char sha256[TUF_SHA256_HEX]; /* lower-case hex */
    char models[PX_TMS_MODELS_MAX][PX_TMS_NAME_MAX];
    size_t nmodels;
    int64_t expires_ms;
} tuf_target;

int tuf_target_parse(const json_t *signed_part, tuf_target *out, px_error *e);
json_t *tuf_target_build(const tuf_target *t);
int tuf_target_fits_model(const tuf_target *t, const char *model);

/* Verify a targets record against root: its shape, a threshold of targets keys. */
int tuf_target_verify(const tuf_root *root, const void *bytes, size_t n, tuf_target *out,
                      px_error *e);

/* ---- timestamp ------------------------------------------------------------------------ */

typedef struct tuf_timestamp {
    int64_t version;
    int64_t expires_ms;
    int64_t root_version;
    json_t *targets; /* {"NAME/VERSION":{"length":N,"sha256":HEX}} (owned reference) */
} tuf_timestamp;

/* Verify a timestamp record against root (threshold of timestamp keys) and parse it. The
 * caller frees with tuf_timestamp_free. Expiry and rollback are the caller's to check. */
int tuf_timestamp_verify(const tuf_root *root, const void *bytes, size_t n, tuf_timestamp *out,
                         px_error *e);
void tuf_timestamp_free(tuf_timestamp *t);

/* The entry for release name/version: its targets record's length and SHA-256 (hex).
 * PX_ENOTFOUND when the timestamp does not list it. */
int tuf_timestamp_find(const tuf_timestamp *t, const char *name, const char *version,
                       int64_t *length, char sha256[TUF_SHA256_HEX]);

/* ---- hashing -------------------------------------------------------------------------- */

/* SHA-256 of n bytes as lower-case hex. */
void tuf_sha256_hex(const void *data, size_t n, char out[TUF_SHA256_HEX]);

#endif
