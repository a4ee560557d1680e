/*
 * package.c: releases and their metadata (docs/update-protocol.md "Metadata"). Root records
 * come signed from offline keys and are checked before they are kept; each package comes with
 * the signed targets record of its release, checked against the current root and against the
 * file itself; the service signs timestamp records with its online key. Files are kept in
 * the store in PX_TMS_CHUNK chunks keyed by their SHA-256.
 */
#include "host/tms/tms_int.h"

#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- stored metadata ------------------------------------------------------------------ */

int tms_meta_latest(store *st, const char *role, px_buf *out, int64_t *version, int64_t *expires_ms,
                    px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st,
                           "SELECT body, version, expires_ms FROM tms_meta WHERE role = $1 "
                           "ORDER BY version DESC LIMIT 1",
                           &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, role);
    rc = store_step(q, e);
    if (rc == STORE_ROW) {
        px_buf_reset(out);
        rc = px_buf_append_str(out, store_col_text(q, 0));
        if (version != NULL)
            *version = store_col_int64(q, 1);
        if (expires_ms != NULL)
            *expires_ms = store_col_int64(q, 2);
        if (rc != PX_OK)
            rc = px_error_set(e, rc, "%s metadata: over %zu bytes", role, out->max);
    } else if (rc == STORE_DONE) {
        rc = px_error_set(e, PX_ENOTFOUND, "no %s metadata has been published", role);
    }
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

int tms_meta_root(store *st, int64_t version, px_buf *out, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st, "SELECT body FROM tms_meta WHERE role = 'root' AND version = $1", &q,
                           e);
    if (rc != PX_OK)
        return rc;
    store_bind_int64(q, 1, version);
    rc = store_step(q, e);
    if (rc == STORE_ROW) {
        px_buf_reset(out);
        rc = px_buf_append_str(out, store_col_text(q, 0)) == PX_OK
                 ? PX_OK
                 : px_error_set(e, PX_ETOOBIG, "root %lld: too large", (long long)version);
    } else if (rc == STORE_DONE) {
        rc = px_error_set(e, PX_ENOTFOUND, "no root version %lld", (long long)version);
    }
    store_done(q);
    return rc;
}

int tms_root_latest(store *st, tuf_root *out, px_error *e)
{
    px_buf b;
    int rc;
    px_buf_init(&b, PX_TMS_META_MAX);
    rc = tms_meta_latest(st, "root", &b, NULL, NULL, e);
    if (rc == PX_OK)
        rc = tuf_root_verify_initial(b.data, b.len, out, e);
    px_buf_free(&b);
    return rc;
}

typedef struct publish_ctx {
    const void *bytes;
    size_t n;
    tuf_root root;
} publish_ctx;

static int publish_txn(store *st, void *ud, px_error *e)
{
    publish_ctx *c = ud;
    tuf_root latest;
    store_stmt *q;
    int rc = tms_root_latest(st, &latest, e);
    if (rc == PX_ENOTFOUND)
        rc = tuf_root_verify_initial(c->bytes, c->n, &c->root, e);
    else if (rc == PX_OK)
        rc = tuf_root_verify_next(&latest, c->bytes, c->n, &c->root, e);
    if (rc != PX_OK)
        return rc;
    if ((rc = store_prepare(st,
                            "INSERT INTO tms_meta (role, version, body, expires_ms, created_ms) "
                            "VALUES ('root', $1, $2, $3, $4)",
                            &q, e)) != PX_OK)
        return rc;
    store_bind_int64(q, 1, c->root.version);
    store_bind_text(q, 2, (const char *)c->bytes);
    store_bind_int64(q, 3, c->root.expires_ms);
    store_bind_int64(q, 4, px_now_ms());
    rc = store_step(q, e);
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

int tms_root_publish(store *st, const void *bytes, size_t n, px_error *e)
{
    publish_ctx c = {.bytes = bytes, .n = n};
    int rc;
    if (memchr(bytes, 0, n) != NULL || ((const char *)bytes)[n] != 0)
        return px_error_set(e, PX_EINVAL, "root metadata: expected text ending in NUL");
    rc = tms_txn(st, publish_txn, &c, e);
    if (rc == PX_OK)
        px_info(TMS_MOD, "root metadata version %lld published (%zu keys)",
                (long long)c.root.version, c.root.nkeys);
    return rc;
}

/* ---- packages ------------------------------------------------------------------------- */

static void models_join(const tuf_target *t, char *out, size_t outsz)
{
    out[0] = 0;
    for (size_t i = 0; i < t->nmodels; i++) {
        size_t n = strlen(out);
        snprintf(out + n, outsz - n, "%s%s", i ? "," : "", t->models[i]);
    }
}

static void models_split(const char *s, tuf_target *t)
{
    t->nmodels = 0;
    while (*s && t->nmodels < PX_TMS_MODELS_MAX) {
        size_t n = strcspn(s, ",");
        if (n > 0 && n < PX_TMS_NAME_MAX) {
            memcpy(t->models[t->nmodels], s, n);
            t->models[t->nmodels++][n] = 0;
        }
        s += n;
        if (*s == ',')
            s++;
    }
}

typedef struct add_ctx {
    const char *path;
    const char *meta;
    size_t metalen;
    tms_package pkg;
    uint8_t *chunk;
} add_ctx;

/* Store the file's chunks (unless a file with this SHA-256 is stored already) while hashing
 * it; the hash and length must be the record's. */
static int add_blob(store *st, add_ctx *c, px_error *e)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t dig[32];
    char hex[TUF_SHA256_HEX];
    int64_t total = 0, seq = 0;
    store_stmt *q;
    int rc = PX_OK, fd = open(c->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        EVP_MD_CTX_free(md);
        return px_error_set(e, PX_EIO, "%s: %s", c->path, strerror(errno));
    }
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
        rc = px_error_set(e, PX_ENOMEM, "out of memory");
    while (rc == PX_OK) {
        size_t have = 0;
        ssize_t r = 1;
        while (have < PX_TMS_CHUNK && (r = read(fd, c->chunk + have, PX_TMS_CHUNK - have)) > 0)
            have += (size_t)r;
        if (r < 0) {
            rc = px_error_set(e, PX_EIO, "%s: %s", c->path, strerror(errno));
            break;
        }
        if (have == 0)
            break;
        total += (int64_t)have;
        if (total > c->pkg.t.length) {
            rc = px_error_set(e, PX_EINVAL,
                              "%s: longer than the %lld bytes its targets record "
                              "says",
                              c->path, (long long)c->pkg.t.length);
            break;
        }
        EVP_DigestUpdate(md, c->chunk, have);
        if ((rc = store_prepare(st,
                                "INSERT INTO tms_blob (sha256, seq, data) VALUES ($1, $2, $3) "
                                "ON CONFLICT DO NOTHING",
                                &q, e)) != PX_OK)
            break;
        store_bind_text(q, 1, c->pkg.t.sha256);
        store_bind_int64(q, 2, seq++);
        store_bind_blob(q, 3, c->chunk, have);
        rc = store_step(q, e);
        store_done(q);
        rc = rc < 0 ? rc : PX_OK;
    }
    close(fd);
    if (rc == PX_OK && EVP_DigestFinal_ex(md, dig, NULL) != 1)
        rc = px_error_set(e, PX_ECRYPTO, "sha-256 failed");
    EVP_MD_CTX_free(md);
    if (rc != PX_OK)
        return rc;
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", dig[i]);
    if (total != c->pkg.t.length)
        return px_error_set(e, PX_EINVAL, "%s: %lld bytes, its targets record says %lld", c->path,
                            (long long)total, (long long)c->pkg.t.length);
    if (strcmp(hex, c->pkg.t.sha256) != 0)
        return px_error_set(e, PX_EINVAL,
                            "%s: SHA-256 %.16s... differs from its targets "
                            "record's %.16s...",
                            c->path, hex, c->pkg.t.sha256);
    return PX_OK;
}

static int add_txn(store *st, void *ud, px_error *e)
{
    add_ctx *c = ud;
    char models[PX_TMS_MODELS_MAX * PX_TMS_NAME_MAX];
    tuf_root root;
    store_stmt *q;
    int rc = tms_root_latest(st, &root, e);
    if (rc == PX_ENOTFOUND)
        return px_error_set(e, PX_ESTATE,
                            "no root metadata yet: publish one first "
                            "(possum tms root publish)");
    if (rc != PX_OK || (rc = tuf_target_verify(&root, c->meta, c->metalen, &c->pkg.t, e)) != PX_OK)
        return rc;
    if (c->pkg.t.expires_ms <= px_now_ms())
        return px_error_set(e, PX_EINVAL, "targets %s %s: expired", c->pkg.t.name,
                            c->pkg.t.version);
    if ((rc = add_blob(st, c, e)) != PX_OK)
        return rc;
    tuf_sha256_hex(c->meta, c->metalen, c->pkg.meta_sha256);
    c->pkg.meta_length = (int64_t)c->metalen;
    c->pkg.created_ms = px_now_ms();
    models_join(&c->pkg.t, models, sizeof models);
    if ((rc = store_prepare(st,
                            "INSERT INTO tms_package (name, version, version_num, kind, models, "
                            "length, sha256, meta, meta_sha256, created_ms) VALUES ($1, $2, $3, "
                            "$4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING RETURNING name",
                            &q, e)) != PX_OK)
        return rc;
    store_bind_text(q, 1, c->pkg.t.name);
    store_bind_text(q, 2, c->pkg.t.version);
    store_bind_int64(q, 3, c->pkg.t.version_num);
    store_bind_text(q, 4, c->pkg.t.kind);
    store_bind_text(q, 5, models);
    store_bind_int64(q, 6, c->pkg.t.length);
    store_bind_text(q, 7, c->pkg.t.sha256);
    store_bind_text(q, 8, c->meta);
    store_bind_text(q, 9, c->pkg.meta_sha256);
    store_bind_int64(q, 10, c->pkg.created_ms);
    rc = store_step(q, e);
    store_done(q);
    if (rc == STORE_DONE)
        return px_error_set(e, PX_EEXIST, "package %s %s is already stored", c->pkg.t.name,
                            c->pkg.t.version);
    return rc < 0 ? rc : PX_OK;
}

int tms_package_add(store *st, const char *path, const void *meta, size_t metalen, tms_package *out,
                    px_error *e)
{
    add_ctx c = {.path = path, .meta = meta, .metalen = metalen};
    int rc;
    if (memchr(meta, 0, metalen) != NULL || ((const char *)meta)[metalen] != 0)
        return px_error_set(e, PX_EINVAL, "targets metadata: expected text ending in NUL");
    if ((c.chunk = malloc(PX_TMS_CHUNK)) == NULL)
        return px_error_set(e, PX_ENOMEM, "out of memory");
    rc = tms_txn(st, add_txn, &c, e);
    free(c.chunk);
    if (rc == PX_OK) {
        px_info(TMS_MOD, "package %s %s (%s, %lld bytes) stored", c.pkg.t.name, c.pkg.t.version,
                c.pkg.t.kind, (long long)c.pkg.t.length);
        if (out != NULL)
            *out = c.pkg;
    }
    return rc;
}

#define PKG_COLS                                                                                   \
    "name, version, version_num, kind, models, length, sha256, meta_sha256, "                      \
    "length(meta), created_ms"

static void pkg_row(store_stmt *q, tms_package *p)
{
    memset(p, 0, sizeof *p);
    px_strlcpy(p->t.name, store_col_text(q, 0), sizeof p->t.name);
    px_strlcpy(p->t.version, store_col_text(q, 1), sizeof p->t.version);
    p->t.version_num = store_col_int64(q, 2);
    px_strlcpy(p->t.kind, store_col_text(q, 3), sizeof p->t.kind);
    models_split(store_col_text(q, 4), &p->t);
    p->t.length = store_col_int64(q, 5);
    px_strlcpy(p->t.sha256, store_col_text(q, 6), sizeof p->t.sha256);
    px_strlcpy(p->meta_sha256, store_col_text(q, 7), sizeof p->meta_sha256);
    p->meta_length = store_col_int64(q, 8);
    p->created_ms = store_col_int64(q, 9);
}

int tms_package_get(store *st, const char *name, const char *version, tms_package *out, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st,
                           "SELECT " PKG_COLS " FROM tms_package WHERE name = $1 AND "
                           "version = $2",
                           &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, name);
    store_bind_text(q, 2, version);
    rc = store_step(q, e);
    if (rc == STORE_ROW)
        pkg_row(q, out);
    store_done(q);
    if (rc == STORE_DONE)
        return px_error_set(e, PX_ENOTFOUND, "no package %s %s", name, version);
    return rc < 0 ? rc : PX_OK;
}

int tms_package_list(store *st, int (*fn)(void *ud, const tms_package *p), void *ud, px_error *e)
{
    store_stmt *q;
    tms_package p;
    int rc = store_prepare(st,
                           "SELECT " PKG_COLS " FROM tms_package ORDER BY name, version_num "
                           "DESC",
                           &q, e);
    int stop = 0;
    if (rc != PX_OK)
        return rc;
    while ((rc = store_step(q, e)) == STORE_ROW) {
        pkg_row(q, &p);
        if ((stop = fn(ud, &p)) != 0)
            break;
    }
    store_done(q);
    return stop ? stop : rc < 0 ? rc : PX_OK;
}

int tms_package_meta(store *st, const char *name, const char *version, px_buf *out, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st, "SELECT meta FROM tms_package WHERE name = $1 AND version = $2", &q,
                           e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, name);
    store_bind_text(q, 2, version);
    rc = store_step(q, e);
    if (rc == STORE_ROW) {
        px_buf_reset(out);
        rc = px_buf_append_str(out, store_col_text(q, 0)) == PX_OK
                 ? PX_OK
                 : px_error_set(e, PX_ETOOBIG, "targets %s %s: too large", name, version);
    } else if (rc == STORE_DONE) {
        rc = px_error_set(e, PX_ENOTFOUND, "no package %s %s", name, version);
    }
    store_done(q);
    return rc;
}

/* ---- the timestamp record ------------------------------------------------------------- */

/* The releases and root the next timestamp binds: {"NAME/VERSION": {length, sha256}}. */
static int timestamp_content(store *st, json_t **targets, int64_t *root_version, px_error *e)
{
    store_stmt *q;
    px_buf b;
    int64_t n = 0;
    int rc;
    px_buf_init(&b, PX_TMS_META_MAX);
    rc = tms_meta_latest(st, "root", &b, root_version, NULL, e);
    px_buf_free(&b);
    if (rc != PX_OK)
        return rc;
    *targets = json_object();
    if ((rc = store_prepare(st,
                            "SELECT name, version, length(meta), meta_sha256 FROM tms_package "
                            "ORDER BY created_ms DESC, name, version",
                            &q, e)) != PX_OK)
        return rc;
    while ((rc = store_step(q, e)) == STORE_ROW && n++ < PX_TMS_TIMESTAMP_TARGETS_MAX) {
        char key[PX_TMS_NAME_MAX + PX_TMS_VERSION_MAX + 2];
        snprintf(key, sizeof key, "%s/%s", store_col_text(q, 0), store_col_text(q, 1));
        json_object_set_new(*targets, key,
                            json_pack("{s:I, s:s}", "length", (json_int_t)store_col_int64(q, 2),
                                      "sha256", store_col_text(q, 3)));
    }
    store_done(q);
    if (n > PX_TMS_TIMESTAMP_TARGETS_MAX)
        px_warn(TMS_MOD, "timestamp: only the newest %d releases are listed",
                PX_TMS_TIMESTAMP_TARGETS_MAX);
    return rc < 0 ? rc : PX_OK;
}

typedef struct ts_ctx {
    const uint8_t *priv;
    int64_t ttl_ms, now;
    int signed_new;
    int64_t version;
} ts_ctx;

static int timestamp_txn(store *st, void *ud, px_error *e)
{
    ts_ctx *c = ud;
    json_t *targets = NULL, *env = NULL, *old = NULL, *osp;
    int64_t root_version = 0, version = 0, expires = 0;
    char *text = NULL;
    store_stmt *q;
    px_buf b;
    int rc = timestamp_content(st, &targets, &root_version, e);
    c->signed_new = 0;
    px_buf_init(&b, PX_TMS_META_MAX);
    if (rc == PX_OK) {
        rc = tms_meta_latest(st, "timestamp", &b, &version, &expires, e);
        if (rc == PX_ENOTFOUND)
            rc = PX_OK;
    }
    if (rc == PX_OK && version > 0 &&
        tuf_envelope_parse(b.data, b.len, "timestamp", &old, &osp, NULL) == PX_OK &&
        expires - c->now > c->ttl_ms / 2 &&
        json_integer_value(json_object_get(osp, "root_version")) == root_version &&
        json_equal(json_object_get(osp, "targets"), targets)) {
        json_decref(old);
        json_decref(targets);
        px_buf_free(&b);
        return PX_OK; /* still fresh and still true */
    }
    json_decref(old);
    px_buf_free(&b);
    if (rc != PX_OK) {
        json_decref(targets);
        return rc;
    }
    c->version = version + 1;
    env = json_pack("{s:{s:s, s:s, s:I, s:I, s:I, s:o}, s:[]}", "signed", "_type", "timestamp",
                    "spec_version", TUF_SPEC, "version", (json_int_t)c->version, "expires_ms",
                    (json_int_t)(c->now + c->ttl_ms), "root_version", (json_int_t)root_version,
                    "targets", targets, "signatures");
    if (env == NULL)
        return px_error_set(e, PX_ENOMEM, "out of memory");
    rc = tuf_envelope_sign(env, c->priv, e);
    if (rc == PX_OK && (text = json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
        rc = px_error_set(e, PX_ENOMEM, "out of memory");
    json_decref(env);
    if (rc == PX_OK && (rc = store_prepare(st,
                                           "INSERT INTO tms_meta (role, version, body, "
                                           "expires_ms, created_ms) VALUES ('timestamp', $1, "
                                           "$2, $3, $4) ON CONFLICT DO NOTHING",
                                           &q, e)) == PX_OK) {
        store_bind_int64(q, 1, c->version);
        store_bind_text(q, 2, text);
        store_bind_int64(q, 3, c->now + c->ttl_ms);
        store_bind_int64(q, 4, c->now);
        rc = store_step(q, e);
        c->signed_new = rc >= 0 && store_changes(q) > 0;
        store_done(q);
        rc = rc < 0 ? rc : PX_OK;
    }
    free(text);
    return rc;
}

int tms_timestamp_refresh(store *st, const uint8_t priv[TUF_PRIV_LEN], int64_t ttl_ms, int64_t now,
                          int *signed_new, px_error *e)
{
    ts_ctx c = {.priv = priv, .ttl_ms = ttl_ms, .now = now};
    int rc = tms_txn(st, timestamp_txn, &c, e);
    if (rc == PX_OK && c.signed_new)
        px_info(TMS_MOD, "timestamp metadata version %lld signed (expires in %lld s)",
                (long long)c.version, (long long)(ttl_ms / 1000));
    if (signed_new != NULL)
        *signed_new = rc == PX_OK && c.signed_new;
    return rc;
}

/* ---- files ---------------------------------------------------------------------------- */

int tms_blob_export(store *st, const char *sha256, int64_t length, const char *path, px_error *e)
{
    char hex[TUF_SHA256_HEX];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t dig[32];
    int64_t total = 0, want = 0;
    store_stmt *q;
    int rc, fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        EVP_MD_CTX_free(md);
        return px_error_set(e, PX_EIO, "%s: %s", path, strerror(errno));
    }
    rc = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1
             ? store_prepare(st, "SELECT seq, data FROM tms_blob WHERE sha256 = $1 ORDER BY seq",
                             &q, e)
             : px_error_set(e, PX_ENOMEM, "out of memory");
    if (rc == PX_OK) {
        store_bind_text(q, 1, sha256);
        while ((rc = store_step(q, e)) == STORE_ROW) {
            size_t n;
            const void *d = store_col_blob(q, 1, &n);
            if (store_col_int64(q, 0) != want++ || total + (int64_t)n > length) {
                rc = px_error_set(e, PX_EINTERNAL, "package %.16s...: stored chunks do not add up",
                                  sha256);
                break;
            }
            if (write(fd, d, n) != (ssize_t)n) {
                rc = px_error_set(e, PX_EIO, "%s: %s", path, strerror(errno));
                break;
            }
            EVP_DigestUpdate(md, d, n);
            total += (int64_t)n;
        }
        store_done(q);
        rc = rc < 0 ? rc : PX_OK;
    }
    if (rc == PX_OK && fsync(fd) != 0)
        rc = px_error_set(e, PX_EIO, "%s: %s", path, strerror(errno));
    close(fd);
    if (rc == PX_OK && EVP_DigestFinal_ex(md, dig, NULL) == 1) {
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", dig[i]);
        if (total != length || strcmp(hex, sha256) != 0)
            rc = px_error_set(e, PX_EINTERNAL,
                              "package %.16s...: stored file does not match its "
                              "length and SHA-256",
                              sha256);
    }
    EVP_MD_CTX_free(md);
    if (rc != PX_OK)
        unlink(path);
    return rc;
}
