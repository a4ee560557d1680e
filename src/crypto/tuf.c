/*
 * tuf.c: signed release metadata (tuf.h; docs/update-protocol.md, "Metadata"). Ed25519
 * through OpenSSL 3 EVP; JSON through jansson, canonicalised by sorting keys without
 * whitespace after refusing every value canonical JSON cannot carry (reals, null).
 */
#include "crypto/tuf.h"

#include "lib/str.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TUF_DEPTH_MAX 8

static const char *const role_names[3] = {"root", "targets", "timestamp"};

const char *tuf_role_name(tuf_role_id r)
{
    return (unsigned)r < 3 ? role_names[r] : "?";
}

/* ---- small helpers -------------------------------------------------------------------- */

static void hex_lower(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = 0;
}

/* Exactly 2*n lower-case hex digits into n bytes. */
static int hex_exact(const char *s, uint8_t *out, size_t n)
{
    if (s == NULL || strlen(s) != 2 * n)
        return 0;
    for (size_t i = 0; i < 2 * n; i++)
        if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
            return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned hi = (unsigned)(isdigit((unsigned char)s[2 * i]) ? s[2 * i] - '0'
                                                                  : s[2 * i] - 'a' + 10);
        unsigned lo = (unsigned)(isdigit((unsigned char)s[2 * i + 1]) ? s[2 * i + 1] - '0'
                                                                      : s[2 * i + 1] - 'a' + 10);
        if (out != NULL)
            out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 1;
}

void tuf_sha256_hex(const void *data, size_t n, char out[TUF_SHA256_HEX])
{
    uint8_t md[SHA256_DIGEST_LENGTH];
    SHA256(data, n, md);
    hex_lower(md, sizeof md, out);
}

int tuf_name_is_valid(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n >= PX_TMS_NAME_MAX || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

int tuf_version_parse(const char *s, int64_t *num, px_error *e)
{
    int64_t parts[3] = {0, 0, 0};
    size_t np = 0;
    const char *p = s;
    if (s == NULL || *s == 0 || strlen(s) >= PX_TMS_VERSION_MAX)
        return px_error_set(e, PX_EFORMAT,
                            "version: expected MAJOR[.MINOR[.PATCH]], at most %d "
                            "characters",
                            PX_TMS_VERSION_MAX - 1);
    while (np < 3) {
        size_t n = 0;
        int64_t v = 0;
        while (isdigit((unsigned char)p[n])) {
            if (n < 7) /* past 6 digits it is refused below: stop adding before it overflows */
                v = v * 10 + (p[n] - '0');
            n++;
        }
        if (n == 0 || n > 6 || (n > 1 && p[0] == '0'))
            return px_error_set(e, PX_EFORMAT,
                                "version \"%s\": each part is 0 to 999999 "
                                "without leading zeros",
                                s);
        parts[np++] = v;
        p += n;
        if (*p == 0)
            break;
        if (*p != '.' || np == 3)
            return px_error_set(e, PX_EFORMAT, "version \"%s\": expected MAJOR[.MINOR[.PATCH]]", s);
        p++;
    }
    *num = parts[0] * 1000000000000LL + parts[1] * 1000000LL + parts[2];
    return PX_OK;
}

/* ---- canonical JSON ------------------------------------------------------------------- */

static int check_canonical(const json_t *j, int depth, px_error *e)
{
    const char *k;
    json_t *v;
    size_t i;
    if (depth > TUF_DEPTH_MAX)
        return px_error_set(e, PX_EFORMAT, "metadata nested deeper than %d", TUF_DEPTH_MAX);
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        json_object_foreach ((json_t *)j, k, v) {
            int rc = check_canonical(v, depth + 1, e);
            if (rc != PX_OK)
                return rc;
        }
        return PX_OK;
    case JSON_ARRAY:
        json_array_foreach (j, i, v) {
            int rc = check_canonical(v, depth + 1, e);
            if (rc != PX_OK)
                return rc;
        }
        return PX_OK;
    case JSON_STRING:
    case JSON_INTEGER:
    case JSON_TRUE:
    case JSON_FALSE: return PX_OK;
    default: return px_error_set(e, PX_EFORMAT, "metadata: reals and null have no canonical form");
    }
}

static int dump_cb(const char *buffer, size_t size, void *data)
{
    return px_buf_append(data, buffer, size) == PX_OK ? 0 : -1;
}

int tuf_canonical(const json_t *j, px_buf *out, px_error *e)
{
    int rc;
    px_buf_reset(out);
    if ((rc = check_canonical(j, 0, e)) != PX_OK)
        return rc;
    if (json_dump_callback(j, dump_cb, out, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) != 0)
        return px_error_set(e, PX_ETOOBIG, "metadata: canonical form over %zu bytes", out->max);
    return PX_OK;
}

/* ---- keys and signatures -------------------------------------------------------------- */

static json_t *public_json(const uint8_t pub[TUF_PUB_LEN])
{
    char hex[2 * TUF_PUB_LEN + 1];
    hex_lower(pub, TUF_PUB_LEN, hex);
    return json_pack("{s:s, s:s}", "keytype", "ed25519", "public", hex);
}

int tuf_key_from_public(const uint8_t pub[TUF_PUB_LEN], tuf_key *k, px_error *e)
{
    json_t *j = public_json(pub);
    px_buf b;
    int rc;
    if (j == NULL)
        return px_error_set(e, PX_ENOMEM, "out of memory");
    px_buf_init(&b, 256);
    rc = tuf_canonical(j, &b, e);
    if (rc == PX_OK) {
        tuf_sha256_hex(b.data, b.len, k->keyid);
        memcpy(k->pub, pub, TUF_PUB_LEN);
    }
    px_buf_free(&b);
    json_decref(j);
    return rc;
}

int tuf_public_of(const uint8_t priv[TUF_PRIV_LEN], uint8_t pub[TUF_PUB_LEN], px_error *e)
{
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, priv, TUF_PRIV_LEN);
    size_t n = TUF_PUB_LEN;
    int ok = k != NULL && EVP_PKEY_get_raw_public_key(k, pub, &n) == 1 && n == TUF_PUB_LEN;
    EVP_PKEY_free(k);
    return ok ? PX_OK : px_error_set(e, PX_ECRYPTO, "ed25519: bad private key");
}

int tuf_keypair_generate(uint8_t priv[TUF_PRIV_LEN], uint8_t pub[TUF_PUB_LEN], px_error *e)
{
    EVP_PKEY *k = NULL;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    size_t n1 = TUF_PRIV_LEN, n2 = TUF_PUB_LEN;
    int ok = c != NULL && EVP_PKEY_keygen_init(c) == 1 && EVP_PKEY_keygen(c, &k) == 1 &&
             EVP_PKEY_get_raw_private_key(k, priv, &n1) == 1 &&
             EVP_PKEY_get_raw_public_key(k, pub, &n2) == 1 && n1 == TUF_PRIV_LEN &&
             n2 == TUF_PUB_LEN;
    EVP_PKEY_free(k);
    EVP_PKEY_CTX_free(c);
    return ok ? PX_OK : px_error_set(e, PX_ECRYPTO, "ed25519: key generation failed");
}

static int ed25519_sign(const uint8_t priv[TUF_PRIV_LEN], const uint8_t *m, size_t n,
                        uint8_t sig[TUF_SIG_LEN])
{
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, priv, TUF_PRIV_LEN);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    size_t slen = TUF_SIG_LEN;
    int ok = k != NULL && c != NULL && EVP_DigestSignInit(c, NULL, NULL, NULL, k) == 1 &&
             EVP_DigestSign(c, sig, &slen, m, n) == 1 && slen == TUF_SIG_LEN;
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(k);
    return ok;
}

static int ed25519_verify(const uint8_t pub[TUF_PUB_LEN], const uint8_t *m, size_t n,
                          const uint8_t sig[TUF_SIG_LEN])
{
    EVP_PKEY *k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, TUF_PUB_LEN);
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok = k != NULL && c != NULL && EVP_DigestVerifyInit(c, NULL, NULL, NULL, k) == 1 &&
             EVP_DigestVerify(c, sig, TUF_SIG_LEN, m, n) == 1;
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(k);
    return ok;
}

int tuf_envelope_sign(json_t *env, const uint8_t priv[TUF_PRIV_LEN], px_error *e)
{
    uint8_t pub[TUF_PUB_LEN], sig[TUF_SIG_LEN];
    char sighex[2 * TUF_SIG_LEN + 1];
    json_t *sigs, *s;
    tuf_key k;
    px_buf b;
    size_t i;
    int rc;
    json_t *signed_part = json_object_get(env, "signed");
    if (!json_is_object(signed_part))
        return px_error_set(e, PX_EFORMAT, "metadata: no \"signed\" object to sign");
    if ((rc = tuf_public_of(priv, pub, e)) != PX_OK ||
        (rc = tuf_key_from_public(pub, &k, e)) != PX_OK)
        return rc;
    px_buf_init(&b, PX_TMS_META_MAX);
    rc = tuf_canonical(signed_part, &b, e);
    if (rc == PX_OK && !ed25519_sign(priv, b.data, b.len, sig))
        rc = px_error_set(e, PX_ECRYPTO, "ed25519: signing failed");
    px_buf_free(&b);
    if (rc != PX_OK)
        return rc;
    hex_lower(sig, TUF_SIG_LEN, sighex);
    sigs = json_object_get(env, "signatures");
    if (!json_is_array(sigs)) {
        sigs = json_array();
        if (sigs == NULL || json_object_set_new(env, "signatures", sigs) != 0)
            return px_error_set(e, PX_ENOMEM, "out of memory");
    }
    json_array_foreach (sigs, i, s) {
        if (json_is_string(json_object_get(s, "keyid")) &&
            strcmp(json_string_value(json_object_get(s, "keyid")), k.keyid) == 0) {
            json_array_remove(sigs, i);
            break;
        }
    }
    if (json_array_size(sigs) >= PX_TMS_SIGS_MAX)
        return px_error_set(e, PX_ELIMIT, "metadata: at most %d signatures", PX_TMS_SIGS_MAX);
    if (json_array_append_new(sigs, json_pack("{s:s, s:s}", "keyid", k.keyid, "sig", sighex)) != 0)
        return px_error_set(e, PX_ENOMEM, "out of memory");
    return PX_OK;
}

/* ---- key files ------------------------------------------------------------------------ */

static int read_small_file(const char *path, char *buf, size_t cap, px_error *e)
{
    FILE *f = fopen(path, "r");
    size_t n;
    if (f == NULL)
        return px_error_set(e, errno == ENOENT ? PX_ENOTFOUND : PX_EIO, "%s: %s", path,
                            strerror(errno));
    n = fread(buf, 1, cap - 1, f);
    if (!feof(f)) {
        fclose(f);
        return px_error_set(e, PX_ETOOBIG, "%s: more than %zu bytes: not a key file", path,
                            cap - 1);
    }
    fclose(f);
    buf[n] = 0;
    return PX_OK;
}

static int write_new_file(const char *path, const char *text, mode_t mode, px_error *e)
{
    size_t n = strlen(text);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return px_error_set(e, errno == EEXIST ? PX_EEXIST : PX_EIO, "%s: %s", path,
                            strerror(errno));
    if (write(fd, text, n) != (ssize_t)n || fsync(fd) != 0) {
        int err = errno;
        close(fd);
        unlink(path);
        return px_error_set(e, PX_EIO, "%s: %s", path, strerror(err));
    }
    return close(fd) == 0 ? PX_OK : px_error_set(e, PX_EIO, "%s: %s", path, strerror(errno));
}

int tuf_private_key_write(const char *path, const uint8_t priv[TUF_PRIV_LEN], px_error *e)
{
    uint8_t pub[TUF_PUB_LEN];
    char hpriv[2 * TUF_PRIV_LEN + 1], hpub[2 * TUF_PUB_LEN + 1], text[256];
    int rc = tuf_public_of(priv, pub, e);
    if (rc != PX_OK)
        return rc;
    hex_lower(priv, TUF_PRIV_LEN, hpriv);
    hex_lower(pub, TUF_PUB_LEN, hpub);
    snprintf(text, sizeof text, "{\"keytype\":\"ed25519\",\"private\":\"%s\",\"public\":\"%s\"}\n",
             hpriv, hpub);
    rc = write_new_file(path, text, 0600, e);
    OPENSSL_cleanse(hpriv, sizeof hpriv);
    OPENSSL_cleanse(text, sizeof text);
    return rc;
}

int tuf_public_key_write(const char *path, const uint8_t pub[TUF_PUB_LEN], px_error *e)
{
    char hpub[2 * TUF_PUB_LEN + 1], text[160];
    hex_lower(pub, TUF_PUB_LEN, hpub);
    snprintf(text, sizeof text, "{\"keytype\":\"ed25519\",\"public\":\"%s\"}\n", hpub);
    return write_new_file(path, text, 0644, e);
}

/* A key file's object: keytype ed25519, public (64 hex), private (64 hex) when want_priv. */
static int key_file_parse(const char *path, int want_priv, uint8_t *priv, uint8_t *pub, px_error *e)
{
    char text[512];
    json_error_t je;
    json_t *j, *v;
    const char *k;
    int rc = read_small_file(path, text, sizeof text, e);
    if (rc != PX_OK)
        return rc;
    j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    OPENSSL_cleanse(text, sizeof text);
    if (!json_is_object(j)) {
        json_decref(j);
        return px_error_set(e, PX_EFORMAT, "%s: not a key file (a JSON object)", path);
    }
    rc = PX_OK;
    json_object_foreach (j, k, v) {
        if (strcmp(k, "keytype") != 0 && strcmp(k, "public") != 0 && strcmp(k, "private") != 0)
            rc = px_error_set(e, PX_EFORMAT, "%s: unknown field \"%s\"", path, k);
    }
    if (rc == PX_OK && (!json_is_string(json_object_get(j, "keytype")) ||
                        strcmp(json_string_value(json_object_get(j, "keytype")), "ed25519") != 0))
        rc = px_error_set(e, PX_EFORMAT, "%s: keytype: expected \"ed25519\"", path);
    if (rc == PX_OK &&
        !hex_exact(json_string_value(json_object_get(j, "public")), pub, TUF_PUB_LEN))
        rc = px_error_set(e, PX_EFORMAT, "%s: public: expected 64 lower-case hex digits", path);
    if (rc == PX_OK && want_priv &&
        !hex_exact(json_string_value(json_object_get(j, "private")), priv, TUF_PRIV_LEN))
        rc = px_error_set(e, PX_EFORMAT,
                          "%s: private: expected 64 lower-case hex digits "
                          "(is this a public key file?)",
                          path);
    if ((v = json_object_get(j, "private")) != NULL && json_is_string(v))
        OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
    json_decref(j);
    if (rc == PX_OK && want_priv) {
        uint8_t check[TUF_PUB_LEN];
        if (tuf_public_of(priv, check, e) != PX_OK || memcmp(check, pub, TUF_PUB_LEN) != 0)
            rc = px_error_set(e, PX_EFORMAT, "%s: the public key is not the private key's", path);
    }
    if (rc != PX_OK && want_priv)
        OPENSSL_cleanse(priv, TUF_PRIV_LEN);
    return rc;
}

int tuf_private_key_read(const char *path, uint8_t priv[TUF_PRIV_LEN], px_error *e)
{
    uint8_t pub[TUF_PUB_LEN];
    return key_file_parse(path, 1, priv, pub, e);
}

int tuf_public_key_read(const char *path, uint8_t pub[TUF_PUB_LEN], px_error *e)
{
    return key_file_parse(path, 0, NULL, pub, e);
}

/* ---- field access on the signed part -------------------------------------------------- */

/* Refuse keys of obj other than the allowed ones. */
static int only_keys(const json_t *obj, const char *const *allowed, const char *what, px_error *e)
{
    const char *k;
    json_t *v;
    json_object_foreach ((json_t *)obj, k, v) {
        size_t i = 0;
        while (allowed[i] != NULL && strcmp(allowed[i], k) != 0)
            i++;
        if (allowed[i] == NULL)
            return px_error_set(e, PX_EFORMAT, "%s: unknown field \"%s\"", what, k);
    }
    return PX_OK;
}

static int get_int(const json_t *obj, const char *key, int64_t lo, int64_t hi, int64_t *out,
                   const char *what, px_error *e)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return px_error_set(e, PX_EFORMAT, "%s: %s: expected an integer from %lld to %lld", what,
                            key, (long long)lo, (long long)hi);
    *out = (int64_t)json_integer_value(v);
    return PX_OK;
}

static int get_str(const json_t *obj, const char *key, char *out, size_t outsz, const char *what,
                   px_error *e)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= outsz ||
        strlen(json_string_value(v)) != json_string_length(v))
        return px_error_set(e, PX_EFORMAT, "%s: %s: expected a string of 1 to %zu characters", what,
                            key, outsz - 1);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return PX_OK;
}

static int get_sha256(const json_t *obj, const char *key, char out[TUF_SHA256_HEX],
                      const char *what, px_error *e)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (!hex_exact(s, NULL, 32))
        return px_error_set(e, PX_EFORMAT, "%s: %s: expected 64 lower-case hex digits", what, key);
    memcpy(out, s, TUF_SHA256_HEX);
    return PX_OK;
}

int tuf_envelope_parse(const void *bytes, size_t n, const char *type, json_t **env,
                       json_t **signed_part, px_error *e)
{
    static const char *const env_keys[] = {"signed", "signatures", NULL};
    static const char *const sig_keys[] = {"keyid", "sig", NULL};
    json_error_t je;
    json_t *j, *sigs, *s;
    size_t i;
    int rc = PX_OK;
    *env = NULL;
    *signed_part = NULL;
    if (n > PX_TMS_META_MAX)
        return px_error_set(e, PX_ETOOBIG, "%s metadata: %zu bytes, at most %d", type, n,
                            PX_TMS_META_MAX);
    j = json_loadb(bytes, n, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL)
        return px_error_set(e, PX_EFORMAT, "%s metadata: line %d column %d: %s", type, je.line,
                            je.column, je.text);
    if (!json_is_object(j))
        rc = px_error_set(e, PX_EFORMAT, "%s metadata: expected a JSON object", type);
    if (rc == PX_OK)
        rc = only_keys(j, env_keys, "metadata", e);
    sigs = json_object_get(j, "signatures");
    if (rc == PX_OK && (!json_is_object(json_object_get(j, "signed")) || !json_is_array(sigs)))
        rc = px_error_set(e, PX_EFORMAT,
                          "%s metadata: expected {\"signed\":{...},"
                          "\"signatures\":[...]}",
                          type);
    if (rc == PX_OK && json_array_size(sigs) > PX_TMS_SIGS_MAX)
        rc = px_error_set(e, PX_ELIMIT, "%s metadata: %zu signatures, at most %d", type,
                          json_array_size(sigs), PX_TMS_SIGS_MAX);
    if (rc == PX_OK) {
        json_array_foreach (sigs, i, s) {
            if (!json_is_object(s) || only_keys(s, sig_keys, "signature", e) != PX_OK ||
                !hex_exact(json_string_value(json_object_get(s, "keyid")), NULL, 32) ||
                !hex_exact(json_string_value(json_object_get(s, "sig")), NULL, TUF_SIG_LEN)) {
                rc = px_error_set(e, PX_EFORMAT,
                                  "%s metadata: signature %zu: expected "
                                  "{\"keyid\":64 hex,\"sig\":128 hex}",
                                  type, i + 1);
                break;
            }
        }
    }
    if (rc == PX_OK) {
        json_t *sp = json_object_get(j, "signed");
        const char *t = json_string_value(json_object_get(sp, "_type"));
        const char *sv = json_string_value(json_object_get(sp, "spec_version"));
        if (t == NULL || strcmp(t, type) != 0)
            rc = px_error_set(e, PX_EFORMAT, "metadata: _type is \"%s\", expected \"%s\"",
                              t != NULL ? t : "", type);
        else if (sv == NULL || strcmp(sv, TUF_SPEC) != 0)
            rc = px_error_set(e, PX_EFORMAT, "%s metadata: spec_version: expected \"%s\"", type,
                              TUF_SPEC);
        else
            *signed_part = sp;
    }
    if (rc != PX_OK) {
        json_decref(j);
        return rc;
    }
    *env = j;
    return PX_OK;
}

/* ---- root ----------------------------------------------------------------------------- */

static const tuf_key *find_key(const tuf_root *r, const char *keyid)
{
    for (size_t i = 0; i < r->nkeys; i++)
        if (strcmp(r->keys[i].keyid, keyid) == 0)
            return &r->keys[i];
    return NULL;
}

static int parse_keys(const json_t *keys, tuf_root *out, px_error *e)
{
    static const char *const kk[] = {"keytype", "public", NULL};
    const char *id;
    json_t *v;
    if (!json_is_object(keys) || json_object_size(keys) == 0 ||
        json_object_size(keys) > PX_TMS_ROOT_KEYS_MAX)
        return px_error_set(e, PX_EFORMAT, "root: keys: expected an object of 1 to %d keys",
                            PX_TMS_ROOT_KEYS_MAX);
    json_object_foreach ((json_t *)keys, id, v) {
        uint8_t pub[TUF_PUB_LEN];
        tuf_key *k = &out->keys[out->nkeys];
        const char *kt = json_string_value(json_object_get(v, "keytype"));
        if (!json_is_object(v) || only_keys(v, kk, "root: key", e) != PX_OK || kt == NULL ||
            strcmp(kt, "ed25519") != 0 ||
            !hex_exact(json_string_value(json_object_get(v, "public")), pub, TUF_PUB_LEN))
            return px_error_set(e, PX_EFORMAT,
                                "root: key %.16s: expected {\"keytype\":\"ed25519\","
                                "\"public\":64 hex}",
                                id);
        if (tuf_key_from_public(pub, k, e) != PX_OK)
            return e != NULL ? e->code : PX_EFORMAT;
        if (strcmp(k->keyid, id) != 0)
            return px_error_set(e, PX_EFORMAT,
                                "root: key %.16s: its id is not the SHA-256 of "
                                "its public key",
                                id);
        out->nkeys++;
    }
    return PX_OK;
}

static int parse_role(const json_t *roles, tuf_role_id rid, tuf_root *out, px_error *e)
{
    static const char *const rk[] = {"keyids", "threshold", NULL};
    const char *name = role_names[rid];
    json_t *r = json_object_get(roles, name), *ids, *v;
    tuf_role *role = &out->roles[rid];
    char what[32];
    size_t i;
    int rc;
    snprintf(what, sizeof what, "root: role %s", name);
    if (!json_is_object(r))
        return px_error_set(e, PX_EFORMAT, "%s: missing", what);
    if ((rc = only_keys(r, rk, what, e)) != PX_OK)
        return rc;
    ids = json_object_get(r, "keyids");
    if (!json_is_array(ids) || json_array_size(ids) == 0 ||
        json_array_size(ids) > PX_TMS_ROLE_KEYS_MAX)
        return px_error_set(e, PX_EFORMAT, "%s: keyids: expected 1 to %d key ids", what,
                            PX_TMS_ROLE_KEYS_MAX);
    json_array_foreach (ids, i, v) {
        const char *id = json_string_value(v);
        if (id == NULL || find_key(out, id) == NULL)
            return px_error_set(e, PX_EFORMAT, "%s: key id %zu is not in keys", what, i + 1);
        for (size_t j = 0; j < role->nkeys; j++)
            if (strcmp(role->keyids[j], id) == 0)
                return px_error_set(e, PX_EFORMAT, "%s: key id %zu listed twice", what, i + 1);
        memcpy(role->keyids[role->nkeys++], id, TUF_KEYID_HEX);
    }
    return get_int(r, "threshold", 1, (int64_t)role->nkeys, &role->threshold, what, e);
}

int tuf_root_parse(const json_t *sp, tuf_root *out, px_error *e)
{
    static const char *const keys[] = {"_type", "spec_version", "version", "expires_ms",
                                       "keys",  "roles",        NULL};
    static const char *const rkeys[] = {"root", "targets", "timestamp", NULL};
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = only_keys(sp, keys, "root", e)) != PX_OK ||
        (rc = get_int(sp, "version", 1, INT32_MAX, &out->version, "root", e)) != PX_OK ||
        (rc = get_int(sp, "expires_ms", 1, INT64_MAX, &out->expires_ms, "root", e)) != PX_OK ||
        (rc = parse_keys(json_object_get(sp, "keys"), out, e)) != PX_OK)
        return rc;
    if (!json_is_object(json_object_get(sp, "roles")))
        return px_error_set(e, PX_EFORMAT, "root: roles: expected an object");
    if ((rc = only_keys(json_object_get(sp, "roles"), rkeys, "root: roles", e)) != PX_OK)
        return rc;
    for (int r = 0; r < 3; r++)
        if ((rc = parse_role(json_object_get(sp, "roles"), (tuf_role_id)r, out, e)) != PX_OK)
            return rc;
    return PX_OK;
}

json_t *tuf_root_build(const tuf_root *r)
{
    json_t *keys = json_object(), *roles = json_object();
    for (size_t i = 0; i < r->nkeys; i++)
        json_object_set_new(keys, r->keys[i].keyid, public_json(r->keys[i].pub));
    for (int k = 0; k < 3; k++) {
        json_t *ids = json_array();
        for (size_t i = 0; i < r->roles[k].nkeys; i++)
            json_array_append_new(ids, json_string(r->roles[k].keyids[i]));
        json_object_set_new(roles, role_names[k],
                            json_pack("{s:o, s:I}", "keyids", ids, "threshold",
                                      (json_int_t)r->roles[k].threshold));
    }
    return json_pack("{s:s, s:s, s:I, s:I, s:o, s:o}", "_type", "root", "spec_version", TUF_SPEC,
                     "version", (json_int_t)r->version, "expires_ms", (json_int_t)r->expires_ms,
                     "keys", keys, "roles", roles);
}

int tuf_verify_role(const json_t *env, const tuf_root *root, tuf_role_id rid, const char *what,
                    int64_t *nvalid, px_error *e)
{
    const tuf_role *role = &root->roles[rid];
    const json_t *sigs = json_object_get(env, "signatures"), *s;
    int counted[PX_TMS_ROLE_KEYS_MAX] = {0};
    int64_t valid = 0;
    px_buf b;
    size_t i;
    int rc;
    px_buf_init(&b, PX_TMS_META_MAX);
    if ((rc = tuf_canonical(json_object_get(env, "signed"), &b, e)) != PX_OK) {
        px_buf_free(&b);
        return rc;
    }
    json_array_foreach (sigs, i, s) {
        const char *id = json_string_value(json_object_get(s, "keyid"));
        uint8_t sig[TUF_SIG_LEN];
        const tuf_key *k;
        size_t slot = 0;
        if (id == NULL)
            continue;
        while (slot < role->nkeys && strcmp(role->keyids[slot], id) != 0)
            slot++;
        if (slot == role->nkeys || counted[slot] || (k = find_key(root, id)) == NULL ||
            !hex_exact(json_string_value(json_object_get(s, "sig")), sig, TUF_SIG_LEN))
            continue; /* a key of another role, a repeated key, or a bad shape: not counted */
        if (ed25519_verify(k->pub, b.data, b.len, sig)) {
            counted[slot] = 1;
            valid++;
        }
    }
    px_buf_free(&b);
    if (nvalid != NULL)
        *nvalid = valid;
    if (valid < role->threshold)
        return px_error_set(e, PX_EAUTH, "%s: %lld valid %s signature%s, threshold %lld", what,
                            (long long)valid, role_names[rid], valid == 1 ? "" : "s",
                            (long long)role->threshold);
    return PX_OK;
}

int tuf_root_verify_initial(const void *bytes, size_t n, tuf_root *out, px_error *e)
{
    json_t *env, *sp;
    int rc = tuf_envelope_parse(bytes, n, "root", &env, &sp, e);
    if (rc == PX_OK && (rc = tuf_root_parse(sp, out, e)) == PX_OK)
        rc = tuf_verify_role(env, out, TUF_ROLE_ROOT, "root", NULL, e);
    json_decref(env);
    return rc;
}

int tuf_root_verify_next(const tuf_root *trusted, const void *bytes, size_t n, tuf_root *out,
                         px_error *e)
{
    json_t *env, *sp;
    char what[48];
    int rc = tuf_envelope_parse(bytes, n, "root", &env, &sp, e);
    if (rc == PX_OK && (rc = tuf_root_parse(sp, out, e)) == PX_OK &&
        out->version != trusted->version + 1)
        rc = px_error_set(e, PX_EAUTH, "root: version %lld where %lld was expected",
                          (long long)out->version, (long long)trusted->version + 1);
    if (rc == PX_OK) {
        snprintf(what, sizeof what, "root %lld (by root %lld's keys)", (long long)out->version,
                 (long long)trusted->version);
        rc = tuf_verify_role(env, trusted, TUF_ROLE_ROOT, what, NULL, e);
    }
    if (rc == PX_OK) {
        snprintf(what, sizeof what, "root %lld (by its own keys)", (long long)out->version);
        rc = tuf_verify_role(env, out, TUF_ROLE_ROOT, what, NULL, e);
    }
    json_decref(env);
    return rc;
}

/* ---- targets -------------------------------------------------------------------------- */

int tuf_target_parse(const json_t *sp, tuf_target *out, px_error *e)
{
    static const char *const keys[] = {"_type",  "spec_version", "name",   "kind",       "version",
                                       "length", "hashes",       "models", "expires_ms", NULL};
    static const char *const hkeys[] = {"sha256", NULL};
    json_t *models = json_object_get(sp, "models"), *h = json_object_get(sp, "hashes"), *v;
    size_t i;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = only_keys(sp, keys, "targets", e)) != PX_OK ||
        (rc = get_str(sp, "name", out->name, sizeof out->name, "targets", e)) != PX_OK ||
        (rc = get_str(sp, "kind", out->kind, sizeof out->kind, "targets", e)) != PX_OK ||
        (rc = get_str(sp, "version", out->version, sizeof out->version, "targets", e)) != PX_OK ||
        (rc = get_int(sp, "length", 1, PX_TMS_PACKAGE_MAX, &out->length, "targets", e)) != PX_OK ||
        (rc = get_int(sp, "expires_ms", 1, INT64_MAX, &out->expires_ms, "targets", e)) != PX_OK)
        return rc;
    if (!tuf_name_is_valid(out->name))
        return px_error_set(e, PX_EFORMAT, "targets: name: 1 to %d of A-Z a-z 0-9 . _ -",
                            PX_TMS_NAME_MAX - 1);
    if (strcmp(out->kind, "app") != 0 && strcmp(out->kind, "params") != 0)
        return px_error_set(e, PX_EFORMAT, "targets: kind: expected \"app\" or \"params\"");
    if ((rc = tuf_version_parse(out->version, &out->version_num, e)) != PX_OK)
        return px_error_prefix(e, "targets: ");
    if (!json_is_object(h))
        return px_error_set(e, PX_EFORMAT, "targets: hashes: expected {\"sha256\":64 hex}");
    if ((rc = only_keys(h, hkeys, "targets: hashes", e)) != PX_OK ||
        (rc = get_sha256(h, "sha256", out->sha256, "targets: hashes", e)) != PX_OK)
        return rc;
    if (!json_is_array(models) || json_array_size(models) == 0 ||
        json_array_size(models) > PX_TMS_MODELS_MAX)
        return px_error_set(e, PX_EFORMAT, "targets: models: expected 1 to %d model names",
                            PX_TMS_MODELS_MAX);
    json_array_foreach (models, i, v) {
        const char *m = json_string_value(v);
        if (!tuf_name_is_valid(m))
            return px_error_set(e, PX_EFORMAT, "targets: models: entry %zu is not a model name",
                                i + 1);
        px_strlcpy(out->models[out->nmodels++], m, PX_TMS_NAME_MAX);
    }
    return PX_OK;
}

json_t *tuf_target_build(const tuf_target *t)
{
    json_t *models = json_array();
    for (size_t i = 0; i < t->nmodels; i++)
        json_array_append_new(models, json_string(t->models[i]));
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:{s:s}, s:o, s:I}", "_type", "targets",
                     "spec_version", TUF_SPEC, "name", t->name, "kind", t->kind, "version",
                     t->version, "length", (json_int_t)t->length, "hashes", "sha256", t->sha256,
                     "models", models, "expires_ms", (json_int_t)t->expires_ms);
}

int tuf_target_fits_model(const tuf_target *t, const char *model)
{
    for (size_t i = 0; i < t->nmodels; i++)
        if (strcmp(t->models[i], model) == 0)
            return 1;
    return 0;
}

int tuf_target_verify(const tuf_root *root, const void *bytes, size_t n, tuf_target *out,
                      px_error *e)
{
    json_t *env, *sp;
    char what[PX_TMS_NAME_MAX + PX_TMS_VERSION_MAX + 16];
    int rc = tuf_envelope_parse(bytes, n, "targets", &env, &sp, e);
    if (rc == PX_OK && (rc = tuf_target_parse(sp, out, e)) == PX_OK) {
        snprintf(what, sizeof what, "targets %s %s", out->name, out->version);
        rc = tuf_verify_role(env, root, TUF_ROLE_TARGETS, what, NULL, e);
    }
    json_decref(env);
    return rc;
}

/* ---- timestamp ------------------------------------------------------------------------ */

/* "NAME/VERSION" with a valid name and version. */
static int release_key_is_valid(const char *k)
{
    const char *slash = strchr(k, '/');
    char name[PX_TMS_NAME_MAX];
    int64_t num;
    if (slash == NULL || (size_t)(slash - k) >= sizeof name)
        return 0;
    memcpy(name, k, (size_t)(slash - k));
    name[slash - k] = 0;
    return tuf_name_is_valid(name) && tuf_version_parse(slash + 1, &num, NULL) == PX_OK;
}

int tuf_timestamp_verify(const tuf_root *root, const void *bytes, size_t n, tuf_timestamp *out,
                         px_error *e)
{
    static const char *const keys[] = {"_type",        "spec_version", "version", "expires_ms",
                                       "root_version", "targets",      NULL};
    static const char *const ek[] = {"length", "sha256", NULL};
    json_t *env, *sp, *t, *v;
    const char *k;
    int rc = tuf_envelope_parse(bytes, n, "timestamp", &env, &sp, e);
    memset(out, 0, sizeof *out);
    if (rc == PX_OK && (rc = only_keys(sp, keys, "timestamp", e)) == PX_OK &&
        (rc = get_int(sp, "version", 1, INT64_MAX, &out->version, "timestamp", e)) == PX_OK &&
        (rc = get_int(sp, "expires_ms", 1, INT64_MAX, &out->expires_ms, "timestamp", e)) == PX_OK)
        rc = get_int(sp, "root_version", 1, INT32_MAX, &out->root_version, "timestamp", e);
    t = json_object_get(sp, "targets");
    if (rc == PX_OK && (!json_is_object(t) || json_object_size(t) > PX_TMS_TIMESTAMP_TARGETS_MAX))
        rc = px_error_set(e, PX_EFORMAT,
                          "timestamp: targets: expected an object of at most %d "
                          "releases",
                          PX_TMS_TIMESTAMP_TARGETS_MAX);
    if (rc == PX_OK) {
        json_object_foreach (t, k, v) {
            int64_t len;
            char sha[TUF_SHA256_HEX];
            if (!release_key_is_valid(k) || !json_is_object(v) ||
                only_keys(v, ek, "timestamp: release", e) != PX_OK ||
                get_int(v, "length", 1, PX_TMS_META_MAX, &len, "timestamp: release", e) != PX_OK ||
                get_sha256(v, "sha256", sha, "timestamp: release", e) != PX_OK) {
                rc = px_error_set(e, PX_EFORMAT,
                                  "timestamp: targets: entry \"%.80s\": expected "
                                  "\"NAME/VERSION\":{\"length\":N,\"sha256\":64 hex}",
                                  k);
                break;
            }
        }
    }
    if (rc == PX_OK)
        rc = tuf_verify_role(env, root, TUF_ROLE_TIMESTAMP, "timestamp", NULL, e);
    if (rc == PX_OK)
        out->targets = json_incref(t);
    json_decref(env);
    return rc;
}

void tuf_timestamp_free(tuf_timestamp *t)
{
    if (t != NULL) {
        json_decref(t->targets);
        t->targets = NULL;
    }
}

int tuf_timestamp_find(const tuf_timestamp *t, const char *name, const char *version,
                       int64_t *length, char sha256[TUF_SHA256_HEX])
{
    char key[PX_TMS_NAME_MAX + PX_TMS_VERSION_MAX + 2];
    json_t *v;
    snprintf(key, sizeof key, "%s/%s", name, version);
    v = json_object_get(t->targets, key);
    if (v == NULL)
        return PX_ENOTFOUND;
    *length = (int64_t)json_integer_value(json_object_get(v, "length"));
    px_strlcpy(sha256, json_string_value(json_object_get(v, "sha256")), TUF_SHA256_HEX);
    return PX_OK;
}
