/*
 * lmk_soft.c: the soft LMK backend. The LMK is 32 random bytes kept in a text file,
 * encrypted with AES-256-GCM under a key from scrypt(passphrase, salt). The GCM tag covers
 * every header line, so a wrong passphrase and an edited file both fail authentication.
 *
 *   possum-lmk 1
 *   kdf scrypt <log2 N> <r> <p>
 *   salt <32 bytes hex>
 *   nonce <12 bytes hex>
 *   check <LMK check value, 10 hex>
 *   created <ms since the epoch>
 *   lmk <32 bytes ciphertext hex>
 *   tag <16 bytes hex>
 */
#include "hsm/hsm_int.h"
#include "lib/hex.h"
#include "lib/str.h"
#include "lib/time.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#define SALT_LEN 32
#define NONCE_LEN 12
#define TAG_LEN 16
#define SCRYPT_R 8
#define SCRYPT_P 1

typedef struct soft_lmk {
    uint8_t lmk[HSM_LMK_LEN];
} soft_lmk;

typedef struct lmk_file {
    int64_t log2n, r, p, created_ms;
    uint8_t salt[SALT_LEN], nonce[NONCE_LEN], ct[HSM_LMK_LEN], tag[TAG_LEN];
    char check[PX_HSM_KCV_HEX_MAX];
    size_t aad_len; /* bytes of the file covered as AAD: everything before "lmk " */
} lmk_file;

static int soft_cmac(void *ctx, const uint8_t *msg, size_t n, uint8_t out[16], px_error *e)
{
    soft_lmk *s = ctx;
    size_t len = 0;
    return crypto_cmac(CRYPTO_AES, s->lmk, sizeof s->lmk, msg, n, out, 16, &len, e);
}

static void soft_close(void *ctx)
{
    soft_lmk *s = ctx;
    if (s == NULL)
        return;
    OPENSSL_cleanse(s, sizeof *s);
    free(s);
}

/* scrypt (RFC 7914) through OpenSSL 3 EVP_KDF: 32 bytes from the passphrase. */
static int kdf_scrypt(const char *pass, const uint8_t salt[SALT_LEN], int64_t log2n, int64_t r,
                      int64_t p, uint8_t out[32], px_error *e)
{
    uint64_t n = (uint64_t)1 << log2n,
             maxmem = 2 * 128 * (uint64_t)r * (n + (uint64_t)p) + (1u << 20);
    uint32_t r32 = (uint32_t)r, p32 = (uint32_t)p;
    OSSL_PARAM params[7];
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
    EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    int ok;
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pass,
                                                  strlen(pass));
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, SALT_LEN);
    params[2] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
    params[3] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r32);
    params[4] = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p32);
    params[5] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
    params[6] = OSSL_PARAM_construct_end();
    ok = kctx != NULL && EVP_KDF_derive(kctx, out, 32, params) == 1;
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    return ok ? PX_OK : px_error_set(e, PX_ECRYPTO, "LMK file: scrypt key derivation failed");
}

/* AES-256-GCM seal (enc = 1) or open (enc = 0) of the 32-byte LMK with aad. */
static int gcm(int enc, const uint8_t key[32], const uint8_t nonce[NONCE_LEN], const uint8_t *aad,
               size_t aadlen, const uint8_t *in, uint8_t *out, uint8_t tag[TAG_LEN])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int len = 0, ok;
    ok = c != NULL && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
         EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) == 1 &&
         EVP_CipherUpdate(c, NULL, &len, aad, (int)aadlen) == 1 &&
         EVP_CipherUpdate(c, out, &len, in, HSM_LMK_LEN) == 1;
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1;
    ok = ok && EVP_CipherFinal_ex(c, out + len, &len) == 1;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? PX_OK : PX_EAUTH;
}

/* Read "name value" at *p; advance past the newline. */
static int take_line(const char **p, const char *end, const char *name, char *val, size_t cap)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t nlen = strlen(name), vlen;
    if (nl == NULL || (size_t)(nl - *p) <= nlen || strncmp(*p, name, nlen) != 0 ||
        (*p)[nlen] != ' ')
        return PX_EFORMAT;
    vlen = (size_t)(nl - *p) - nlen - 1;
    if (vlen >= cap)
        return PX_EFORMAT;
    memcpy(val, *p + nlen + 1, vlen);
    val[vlen] = 0;
    *p = nl + 1;
    return PX_OK;
}

static int take_hex(const char **p, const char *end, const char *name, uint8_t *out, size_t n)
{
    char v[2 * HSM_LMK_LEN + 2];
    size_t got = 0;
    if (take_line(p, end, name, v, sizeof v) != PX_OK || strlen(v) != 2 * n ||
        px_hex_decode(v, out, n, &got) != PX_OK || got != n)
        return PX_EFORMAT;
    return PX_OK;
}

/* Parse the file text strictly (every line, in order). */
static int parse_file(const char *text, size_t len, lmk_file *f)
{
    const char *p = text, *end = text + len;
    char v[128];
    int rc = take_line(&p, end, "possum-lmk", v, sizeof v);
    if (rc != PX_OK || strcmp(v, "1") != 0)
        return PX_EFORMAT;
    if (take_line(&p, end, "kdf", v, sizeof v) != PX_OK ||
        sscanf(v, "scrypt %2" SCNd64 " %2" SCNd64 " %2" SCNd64, &f->log2n, &f->r, &f->p) != 3 ||
        f->log2n < 10 || f->log2n > 22 || f->r != SCRYPT_R || f->p != SCRYPT_P)
        return PX_EFORMAT;
    if (take_hex(&p, end, "salt", f->salt, SALT_LEN) != PX_OK ||
        take_hex(&p, end, "nonce", f->nonce, NONCE_LEN) != PX_OK ||
        take_line(&p, end, "check", f->check, sizeof f->check) != PX_OK ||
        take_line(&p, end, "created", v, sizeof v) != PX_OK ||
        px_parse_i64(v, 0, INT64_MAX, &f->created_ms) != PX_OK)
        return PX_EFORMAT;
    f->aad_len = (size_t)(p - text);
    if (take_hex(&p, end, "lmk", f->ct, HSM_LMK_LEN) != PX_OK ||
        take_hex(&p, end, "tag", f->tag, TAG_LEN) != PX_OK || p != end)
        return PX_EFORMAT;
    return PX_OK;
}

/* Read the whole file (bounded) into buf. */
static int read_small_file(const char *path, char *buf, size_t cap, size_t *len, px_error *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;
    size_t got = 0;
    if (fd < 0)
        return px_error_set(e, errno == ENOENT ? PX_ENOTFOUND : PX_EIO,
                            "LMK file %s: cannot open (%s)%s", path, strerror(errno),
                            errno == ENOENT ? "; create one with 'possum hsm init'" : "");
    while ((n = read(fd, buf + got, cap - got)) > 0 && got < cap)
        got += (size_t)n;
    close(fd);
    if (n < 0)
        return px_error_set(e, PX_EIO, "LMK file %s: read failed", path);
    if (got >= cap)
        return px_error_set(e, PX_ETOOBIG, "LMK file %s: larger than %d bytes", path,
                            PX_HSM_LMK_FILE_MAX);
    *len = got;
    return PX_OK;
}

int hsm_lmk_soft_open(const hsm_config *cfg, hsm_lmk *out, px_error *e)
{
    char text[PX_HSM_LMK_FILE_MAX], pass[PX_HSM_SECRET_MAX];
    uint8_t kek[32];
    lmk_file f;
    size_t len = 0;
    soft_lmk *s;
    int rc = read_small_file(cfg->lmk_file, text, sizeof text, &len, e);
    if (rc != PX_OK)
        return rc;
    memset(&f, 0, sizeof f);
    if (parse_file(text, len, &f) != PX_OK)
        return px_error_set(e, PX_EFORMAT, "LMK file %s: not a possum LMK file (damaged?)",
                            cfg->lmk_file);
    if ((rc = hsm_secret_get(cfg, HSM_ENV_PASSPHRASE, "LMK passphrase: ", pass, sizeof pass, e)) !=
        PX_OK)
        return rc;
    rc = kdf_scrypt(pass, f.salt, f.log2n, f.r, f.p, kek, e);
    OPENSSL_cleanse(pass, sizeof pass);
    if (rc != PX_OK)
        return rc;
    if ((s = calloc(1, sizeof *s)) == NULL) {
        OPENSSL_cleanse(kek, sizeof kek);
        return px_error_set(e, PX_ENOMEM, "LMK: out of memory");
    }
    rc = gcm(0, kek, f.nonce, (const uint8_t *)text, f.aad_len, f.ct, s->lmk, f.tag);
    OPENSSL_cleanse(kek, sizeof kek);
    if (rc != PX_OK) {
        soft_close(s);
        return px_error_set(e, PX_EAUTH, "LMK file %s: wrong passphrase (or the file was altered)",
                            cfg->lmk_file);
    }
    out->cmac = soft_cmac;
    out->close = soft_close;
    out->ctx = s;
    return PX_OK;
}

/* Ask for the new passphrase (twice when prompting) and check its length. */
static int new_passphrase(const hsm_config *cfg, char *pass, size_t cap, px_error *e)
{
    char again[PX_HSM_SECRET_MAX];
    const char *env = getenv(HSM_ENV_PASSPHRASE);
    int rc = hsm_secret_get(cfg, HSM_ENV_PASSPHRASE, "New LMK passphrase: ", pass, cap, e);
    if (rc != PX_OK)
        return rc;
    if (strlen(pass) < HSM_PASSPHRASE_MIN)
        rc = px_error_set(e, PX_EINVAL, "LMK passphrase: at least %d characters",
                          HSM_PASSPHRASE_MIN);
    else if ((env == NULL || *env == 0) &&
             (rc = hsm_secret_get(cfg, HSM_ENV_PASSPHRASE, "Repeat LMK passphrase: ", again,
                                  sizeof again, e)) == PX_OK &&
             strcmp(pass, again) != 0)
        rc = px_error_set(e, PX_EINVAL, "LMK passphrase: the two entries differ");
    OPENSSL_cleanse(again, sizeof again);
    return rc;
}

/* Build the file text for the fresh LMK lmk under pass. */
static int build_file(const hsm_config *cfg, const char *pass, const uint8_t lmk[HSM_LMK_LEN],
                      char *text, size_t cap, size_t *len, px_error *e)
{
    uint8_t kek[32], salt[SALT_LEN], nonce[NONCE_LEN], ct[HSM_LMK_LEN], tag[TAG_LEN];
    char sh[2 * SALT_LEN + 1], nh[2 * NONCE_LEN + 1], ch[2 * HSM_LMK_LEN + 1], th[2 * TAG_LEN + 1];
    char check[PX_HSM_KCV_HEX_MAX];
    int n, rc;
    if ((rc = crypto_random(salt, sizeof salt, e)) != PX_OK ||
        (rc = crypto_random(nonce, sizeof nonce, e)) != PX_OK ||
        (rc = hsm_kcv_hex('A', lmk, HSM_LMK_LEN, check, e)) != PX_OK ||
        (rc = kdf_scrypt(pass, salt, cfg->lmk_scrypt_log2n, SCRYPT_R, SCRYPT_P, kek, e)) != PX_OK)
        goto out;
    px_hex_encode(salt, SALT_LEN, sh);
    px_hex_encode(nonce, NONCE_LEN, nh);
    n = snprintf(text, cap,
                 "possum-lmk 1\nkdf scrypt %d %d %d\nsalt %s\nnonce %s\ncheck %s\ncreated %lld\n",
                 (int)cfg->lmk_scrypt_log2n, SCRYPT_R, SCRYPT_P, sh, nh, check,
                 (long long)px_now_ms());
    if ((rc = gcm(1, kek, nonce, (const uint8_t *)text, (size_t)n, lmk, ct, tag)) != PX_OK) {
        rc = px_error_set(e, PX_ECRYPTO, "LMK file: encryption failed");
        goto out;
    }
    px_hex_encode(ct, sizeof ct, ch);
    px_hex_encode(tag, sizeof tag, th);
    n += snprintf(text + n, cap - (size_t)n, "lmk %s\ntag %s\n", ch, th);
    *len = (size_t)n;
out:
    OPENSSL_cleanse(kek, sizeof kek);
    return rc;
}

/* Write text to a new file at path, never replacing one: temp file, fsync, link. */
static int write_new_file(const char *path, const char *text, size_t len, px_error *e)
{
    char tmp[PX_PATH_MAX + 16];
    int fd, rc = PX_OK;
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
        return px_error_set(e, PX_EIO, "LMK file %s: cannot create (%s)", tmp, strerror(errno));
    if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0)
        rc = px_error_set(e, PX_EIO, "LMK file %s: write failed", tmp);
    close(fd);
    if (rc == PX_OK && link(tmp, path) != 0)
        rc = px_error_set(e, errno == EEXIST ? PX_EEXIST : PX_EIO, "LMK file %s: %s", path,
                          errno == EEXIST ? "already exists (an LMK is never overwritten)"
                                          : strerror(errno));
    unlink(tmp);
    return rc;
}

int hsm_lmk_soft_create(const hsm_config *cfg, hsm_lmk *out, px_error *e)
{
    char pass[PX_HSM_SECRET_MAX], text[PX_HSM_LMK_FILE_MAX];
    size_t len = 0;
    struct stat st;
    soft_lmk *s;
    int rc;
    if (stat(cfg->lmk_file, &st) == 0)
        return px_error_set(e, PX_EEXIST,
                            "LMK file %s: already exists (an LMK is never overwritten)",
                            cfg->lmk_file);
    if ((s = calloc(1, sizeof *s)) == NULL)
        return px_error_set(e, PX_ENOMEM, "LMK: out of memory");
    if ((rc = crypto_random(s->lmk, sizeof s->lmk, e)) == PX_OK &&
        (rc = new_passphrase(cfg, pass, sizeof pass, e)) == PX_OK &&
        (rc = build_file(cfg, pass, s->lmk, text, sizeof text, &len, e)) == PX_OK)
        rc = write_new_file(cfg->lmk_file, text, len, e);
    OPENSSL_cleanse(pass, sizeof pass);
    if (rc != PX_OK) {
        soft_close(s);
        return rc;
    }
    out->cmac = soft_cmac;
    out->close = soft_close;
    out->ctx = s;
    return PX_OK;
}
