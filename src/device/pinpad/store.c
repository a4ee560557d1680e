/*
 * store.c: the PIN pad's key store at rest (docs/pinpad.md, "At-rest format").
 *
 *   0  "PXPINPAD"            magic
 *   8  01                    format version
 *   9  00 00 00              reserved
 *  12  serial (32, NUL-padded)
 *  44  salt (16)             fresh on every write: HKDF salt of this file's key
 *  60  nonce (12)            AES-256-GCM nonce
 *  72  ciphertext (133)      generation u64 BE, then per slot: present u8, key 16, loaded_ms i64 BE
 * 205  tag (16)              GCM tag over bytes 0..71 (additional data) and the ciphertext
 */
#include "device/pinpad/devfile.h"
#include "device/pinpad/pinpad_int.h"
#include "crypto/crypto.h"
#include "lib/str.h"
#include "lib/time.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PP_MAGIC "PXPINPAD"
#define PP_VERSION 1
#define PP_SERIAL_FIELD 32
#define PP_HDR (8 + 1 + 3 + PP_SERIAL_FIELD + PP_SALT + PP_NONCE)
#define PP_SLOT_BYTES (1 + PINPAD_KEY_LEN + 8)
#define PP_PLAIN (8 + PINPAD_SLOTS * PP_SLOT_BYTES)
#define PP_FILE (PP_HDR + PP_PLAIN + PP_TAG)
#define PP_STORE_LABEL "possum pinpad key store v1"

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static int serial_is_valid(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > PP_SERIAL_FIELD)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= 'a' && s[i] <= 'z') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
            return 0;
    return 1;
}

int pinpad_secret_create(const char *secret_path, px_error *e)
{
    uint8_t s[PX_PINPAD_SECRET_LEN];
    int fd, rc = crypto_random(s, sizeof s, e);
    if (rc != PX_OK)
        return rc;
    fd = open(secret_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        OPENSSL_cleanse(s, sizeof s);
        return px_error_set(e, errno == EEXIST ? PX_EEXIST : PX_EIO,
                            "%s: cannot create the device secret: %s", secret_path,
                            strerror(errno));
    }
    if (write(fd, s, sizeof s) != (ssize_t)sizeof s || fsync(fd) != 0)
        rc = px_error_set(e, PX_EIO, "%s: cannot write the device secret", secret_path);
    close(fd);
    OPENSSL_cleanse(s, sizeof s);
    if (rc != PX_OK)
        unlink(secret_path);
    return rc;
}

/* The device secret must be exactly PX_PINPAD_SECRET_LEN bytes, readable by its owner only. */
static int secret_read(pinpad *p, const char *path, px_error *e)
{
    struct stat st;
    px_buf b;
    int rc;
    if (stat(path, &st) != 0)
        return px_error_set(e, errno == ENOENT ? PX_ENOTFOUND : PX_EIO, "%s: no device secret: %s",
                            path, strerror(errno));
    if ((st.st_mode & 077) != 0)
        return px_error_set(e, PX_EPERM, "%s: device secret is readable by others (mode %03o)",
                            path, (unsigned)(st.st_mode & 0777));
    px_buf_init(&b, PX_PINPAD_SECRET_LEN + 1);
    rc = devfile_read(path, &b, e);
    if (rc == PX_OK && b.len != PX_PINPAD_SECRET_LEN)
        rc = px_error_set(e, PX_EFORMAT, "%s: device secret must be %d bytes", path,
                          PX_PINPAD_SECRET_LEN);
    if (rc == PX_OK)
        memcpy(p->secret, b.data, PX_PINPAD_SECRET_LEN);
    else if (rc == PX_ETOOBIG)
        rc = px_error_set(e, PX_EFORMAT, "%s: device secret must be %d bytes", path,
                          PX_PINPAD_SECRET_LEN);
    px_buf_cleanse_free(&b);
    return rc;
}

static int pp_new(const char *store_path, const char *secret_path, const char *serial, pinpad **out,
                  px_error *e)
{
    pinpad *p;
    int rc;
    if (!serial_is_valid(serial))
        return px_error_set(e, PX_EINVAL,
                            "serial number: 1 to %d letters, digits, '-', '_' "
                            "or '.'",
                            PP_SERIAL_FIELD);
    p = calloc(1, sizeof *p);
    if (p == NULL)
        return px_error_set(e, PX_ENOMEM, "pinpad: out of memory");
    if (px_strlcpy(p->store_path, store_path, sizeof p->store_path) != PX_OK) {
        free(p);
        return px_error_set(e, PX_ETOOBIG, "key store path too long");
    }
    px_strlcpy(p->serial, serial, sizeof p->serial);
    rc = secret_read(p, secret_path, e);
    if (rc != PX_OK) {
        pinpad_close(p);
        return rc;
    }
    *out = p;
    return PX_OK;
}

int pp_save(pinpad *p, px_error *e)
{
    uint8_t file[PP_FILE], plain[PP_PLAIN], key[PP_AEAD_KEY];
    uint8_t *q = plain;
    int rc;
    memset(file, 0, PP_HDR);
    memcpy(file, PP_MAGIC, 8);
    file[8] = PP_VERSION;
    memcpy(file + 12, p->serial, strlen(p->serial));
    rc = crypto_random(file + 12 + PP_SERIAL_FIELD, PP_SALT + PP_NONCE, e);
    put_u64(q, ++p->generation);
    q += 8;
    for (int i = 0; i < PINPAD_SLOTS; i++, q += PP_SLOT_BYTES) {
        q[0] = (uint8_t)(p->slot[i].present ? 1 : 0);
        memcpy(q + 1, p->slot[i].key, PINPAD_KEY_LEN);
        put_u64(q + 1 + PINPAD_KEY_LEN, (uint64_t)p->slot[i].loaded_ms);
    }
    if (rc == PX_OK)
        rc = pp_derive(p, PP_STORE_LABEL, file + 12 + PP_SERIAL_FIELD, PP_SALT, key, e);
    if (rc == PX_OK)
        rc = pp_gcm_seal(key, file + PP_HDR - PP_NONCE, file, PP_HDR, plain, PP_PLAIN,
                         file + PP_HDR, file + PP_HDR + PP_PLAIN, e);
    if (rc == PX_OK)
        rc = devfile_write_atomic(p->store_path, file, sizeof file, 0600, e);
    OPENSSL_cleanse(plain, sizeof plain);
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

/* Check the header, authenticate and decrypt, then unpack the slots. */
static int pp_load(pinpad *p, const uint8_t *file, size_t n, px_error *e)
{
    uint8_t plain[PP_PLAIN], key[PP_AEAD_KEY];
    char serial[PP_SERIAL_FIELD + 1] = {0};
    const uint8_t *q = plain;
    int rc;
    if (n != PP_FILE || memcmp(file, PP_MAGIC, 8) != 0)
        return px_error_set(e, PX_EFORMAT, "%s: not a possum PIN pad key store", p->store_path);
    if (file[8] != PP_VERSION)
        return px_error_set(e, PX_EUNSUPPORTED, "%s: key store format %u not supported",
                            p->store_path, file[8]);
    memcpy(serial, file + 12, PP_SERIAL_FIELD);
    if (strcmp(serial, p->serial) != 0)
        return px_error_set(e, PX_EAUTH, "%s: key store belongs to another PIN pad", p->store_path);
    rc = pp_derive(p, PP_STORE_LABEL, file + 12 + PP_SERIAL_FIELD, PP_SALT, key, e);
    if (rc == PX_OK)
        rc = pp_gcm_open(key, file + PP_HDR - PP_NONCE, file, PP_HDR, file + PP_HDR, PP_PLAIN,
                         plain, file + PP_HDR + PP_PLAIN, e);
    OPENSSL_cleanse(key, sizeof key);
    if (rc != PX_OK)
        return px_error_set(e, PX_EAUTH,
                            "%s: key store does not authenticate (altered, or "
                            "not written under this device secret)",
                            p->store_path);
    p->generation = get_u64(q);
    q += 8;
    for (int i = 0; i < PINPAD_SLOTS; i++, q += PP_SLOT_BYTES) {
        p->slot[i].present = q[0] == 1;
        memcpy(p->slot[i].key, q + 1, PINPAD_KEY_LEN);
        p->slot[i].loaded_ms = (int64_t)get_u64(q + 1 + PINPAD_KEY_LEN);
    }
    OPENSSL_cleanse(plain, sizeof plain);
    return PX_OK;
}

int pinpad_create(const char *store_path, const char *secret_path, const char *serial, pinpad **out,
                  px_error *e)
{
    pinpad *p = NULL;
    int rc;
    if (devfile_exists(store_path))
        return px_error_set(e, PX_EEXIST, "%s: a key store is already there", store_path);
    rc = pp_new(store_path, secret_path, serial, &p, e);
    if (rc == PX_OK)
        rc = pp_save(p, e);
    if (rc != PX_OK) {
        pinpad_close(p);
        return rc;
    }
    *out = p;
    return PX_OK;
}

int pinpad_open(const char *store_path, const char *secret_path, const char *serial, pinpad **out,
                px_error *e)
{
    pinpad *p = NULL;
    px_buf b;
    int rc = pp_new(store_path, secret_path, serial, &p, e);
    if (rc != PX_OK)
        return rc;
    px_buf_init(&b, PP_FILE + 1);
    rc = devfile_read(store_path, &b, e);
    if (rc == PX_ETOOBIG)
        rc = px_error_set(e, PX_EFORMAT, "%s: not a possum PIN pad key store", store_path);
    if (rc == PX_OK)
        rc = pp_load(p, b.data, b.len, e);
    px_buf_free(&b);
    if (rc != PX_OK) {
        pinpad_close(p);
        return rc;
    }
    *out = p;
    return PX_OK;
}

void pinpad_close(pinpad *p)
{
    if (p == NULL)
        return;
    OPENSSL_cleanse(p, sizeof *p);
    free(p);
}

const char *pinpad_serial(const pinpad *p)
{
    return p->serial;
}
