/*
 * tkenv.c: encoding, parsing and checking the TK envelope (pki/tkenv.h).
 */
#include "pki/tkenv.h"
#include "pki/pki_int.h"
#include "lib/str.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#define MAGIC_LEN 4

int pki_serial_is_valid(const char *s)
{
    return pki_name_is_valid(s) && strlen(s) <= PKI_TKENV_SERIAL_MAX;
}

/* A cursor over the input; every take checks the remaining length. */
typedef struct rd {
    const uint8_t *p;
    size_t left;
} rd;

static const uint8_t *take(rd *r, size_t n)
{
    const uint8_t *at = r->p;
    if (n > r->left)
        return NULL;
    r->p += n;
    r->left -= n;
    return at;
}

static int short_at(px_error *e, const char *field)
{
    return px_error_set(e, PX_EFORMAT, "TK envelope: cut off in %s", field);
}

int pki_tkenv_parse(const uint8_t *in, size_t n, pki_tkenv *env, px_error *e)
{
    rd r = {in, n};
    const uint8_t *p;
    size_t len;
    memset(env, 0, sizeof *env);
    if (n > PX_TKENV_MAX)
        return px_error_set(e, PX_EFORMAT, "TK envelope: %zu bytes, at most %d", n, PX_TKENV_MAX);
    if ((p = take(&r, MAGIC_LEN)) == NULL || memcmp(p, PKI_TKENV_MAGIC, MAGIC_LEN) != 0)
        return px_error_set(e, PX_EFORMAT, "TK envelope: not a TK envelope (magic)");
    if ((p = take(&r, 1)) == NULL || p[0] != PKI_TKENV_VERSION)
        return px_error_set(e, PX_EFORMAT, "TK envelope: version %d, expected %d", p ? p[0] : -1,
                            PKI_TKENV_VERSION);
    if ((p = take(&r, 1)) == NULL)
        return short_at(e, "serial number");
    len = p[0];
    if (len == 0 || len > PKI_TKENV_SERIAL_MAX || (p = take(&r, len)) == NULL)
        return px_error_set(e, PX_EFORMAT, "TK envelope: serial number: bad length %zu", len);
    memcpy(env->serial, p, len);
    env->serial[len] = 0;
    /* an embedded NUL would make the serial used shorter than the serial signed */
    if (strlen(env->serial) != len || !pki_serial_is_valid(env->serial))
        return px_error_set(e, PX_EFORMAT, "TK envelope: serial number: bad character");
    if ((p = take(&r, PKI_FP_LEN)) == NULL)
        return short_at(e, "KMS fingerprint");
    memcpy(env->kms_fp, p, PKI_FP_LEN);
    if ((p = take(&r, PKI_EC_POINT_LEN)) == NULL)
        return short_at(e, "ephemeral point");
    if (p[0] != 0x04)
        return px_error_set(e, PX_EFORMAT, "TK envelope: ephemeral point not uncompressed");
    memcpy(env->eph, p, PKI_EC_POINT_LEN);
    if ((p = take(&r, 1)) == NULL)
        return short_at(e, "wrapped key");
    len = p[0];
    if ((len != 24 && len != 32 && len != 40) || (p = take(&r, len)) == NULL)
        return px_error_set(e, PX_EFORMAT,
                            "TK envelope: wrapped key: %zu bytes, expected 24, 32 or 40", len);
    memcpy(env->wrapped, p, len);
    env->wrapped_len = len;
    if ((p = take(&r, PKI_TKENV_KCV_LEN)) == NULL)
        return short_at(e, "check value");
    memcpy(env->tk_kcv, p, PKI_TKENV_KCV_LEN);
    if ((p = take(&r, 8)) == NULL)
        return short_at(e, "creation time");
    env->created_ms = 0;
    for (int i = 0; i < 8; i++)
        env->created_ms = (int64_t)((uint64_t)env->created_ms << 8 | p[i]);
    if (env->created_ms <= 0)
        return px_error_set(e, PX_EFORMAT, "TK envelope: bad creation time");
    if ((p = take(&r, 2)) == NULL)
        return short_at(e, "device certificate");
    len = (size_t)p[0] << 8 | p[1];
    if (len == 0 || len > PKI_TKENV_CERT_MAX || (p = take(&r, len)) == NULL)
        return px_error_set(e, PX_EFORMAT, "TK envelope: device certificate: bad length %zu", len);
    env->device_cert = p;
    env->device_cert_len = len;
    env->signed_len = n - r.left;
    if ((p = take(&r, 1)) == NULL)
        return short_at(e, "signature");
    len = p[0];
    if (len < 8 || len > PKI_TKENV_SIG_MAX || (p = take(&r, len)) == NULL)
        return px_error_set(e, PX_EFORMAT, "TK envelope: signature: bad length %zu", len);
    env->sig = p;
    env->sig_len = len;
    if (r.left != 0)
        return px_error_set(e, PX_EFORMAT, "TK envelope: %zu bytes after the signature", r.left);
    return PX_OK;
}

int pki_tkenv_parse_b64(const char *b64, uint8_t *buf, size_t cap, size_t *len, pki_tkenv *env,
                        px_error *e)
{
    *len = 0;
    if (b64 == NULL || strlen(b64) >= PX_TKENV_B64_MAX)
        return px_error_set(e, PX_EFORMAT, "TK envelope: missing or longer than %d characters",
                            PX_TKENV_B64_MAX - 1);
    if (pki_b64_decode(b64, buf, cap, len) != PX_OK)
        return px_error_set(e, PX_EFORMAT, "TK envelope: not base64");
    return pki_tkenv_parse(buf, *len, env, e);
}

int pki_tkenv_encode_body(const pki_tkenv *env, uint8_t *out, size_t cap, size_t *len, px_error *e)
{
    size_t s = strlen(env->serial), o = 0;
    size_t need = MAGIC_LEN + 2 + s + PKI_FP_LEN + PKI_EC_POINT_LEN + 1 + env->wrapped_len +
                  PKI_TKENV_KCV_LEN + 8 + 2 + env->device_cert_len;
    *len = 0;
    if (!pki_serial_is_valid(env->serial))
        return px_error_set(e, PX_EINVAL, "TK envelope: bad serial number");
    if (env->wrapped_len != 24 && env->wrapped_len != 32 && env->wrapped_len != 40)
        return px_error_set(e, PX_EINVAL, "TK envelope: wrapped key of %zu bytes",
                            env->wrapped_len);
    if (env->device_cert_len == 0 || env->device_cert_len > PKI_TKENV_CERT_MAX)
        return px_error_set(e, PX_EINVAL, "TK envelope: device certificate of %zu bytes",
                            env->device_cert_len);
    if (need > cap)
        return px_error_set(e, PX_ETOOBIG, "TK envelope: %zu bytes do not fit", need);
    memcpy(out, PKI_TKENV_MAGIC, MAGIC_LEN);
    o = MAGIC_LEN;
    out[o++] = PKI_TKENV_VERSION;
    out[o++] = (uint8_t)s;
    memcpy(out + o, env->serial, s);
    o += s;
    memcpy(out + o, env->kms_fp, PKI_FP_LEN);
    o += PKI_FP_LEN;
    memcpy(out + o, env->eph, PKI_EC_POINT_LEN);
    o += PKI_EC_POINT_LEN;
    out[o++] = (uint8_t)env->wrapped_len;
    memcpy(out + o, env->wrapped, env->wrapped_len);
    o += env->wrapped_len;
    memcpy(out + o, env->tk_kcv, PKI_TKENV_KCV_LEN);
    o += PKI_TKENV_KCV_LEN;
    for (int i = 7; i >= 0; i--)
        out[o++] = (uint8_t)((uint64_t)env->created_ms >> (8 * i));
    out[o++] = (uint8_t)(env->device_cert_len >> 8);
    out[o++] = (uint8_t)env->device_cert_len;
    memcpy(out + o, env->device_cert, env->device_cert_len);
    o += env->device_cert_len;
    *len = o;
    return PX_OK;
}

int pki_tkenv_append_sig(uint8_t *out, size_t cap, size_t bodylen, const uint8_t *sig,
                         size_t siglen, size_t *len, px_error *e)
{
    if (siglen < 8 || siglen > PKI_TKENV_SIG_MAX)
        return px_error_set(e, PX_EINVAL, "TK envelope: signature of %zu bytes", siglen);
    if (bodylen + 1 + siglen > cap || bodylen + 1 + siglen > PX_TKENV_MAX)
        return px_error_set(e, PX_ETOOBIG, "TK envelope: does not fit");
    out[bodylen] = (uint8_t)siglen;
    memcpy(out + bodylen + 1, sig, siglen);
    *len = bodylen + 1 + siglen;
    return PX_OK;
}

int pki_tkenv_verify(const pki_trust *t, const uint8_t *in, size_t n, const pki_tkenv *env,
                     int64_t now_ms, pki_cert_info *device, px_error *e)
{
    pki_cert_info ci;
    EVP_PKEY *k = NULL;
    EVP_MD_CTX *md = NULL;
    int rc, ok;
    if (env->signed_len == 0 || env->signed_len > n)
        return px_error_set(e, PX_EINVAL, "TK envelope: not parsed");
    rc = pki_trust_verify(t, env->device_cert, env->device_cert_len, PKI_ROLE_PINPAD,
                          PKI_PURPOSE_DEVICE, now_ms, &ci, e);
    if (rc != PX_OK)
        return px_error_prefix(e, "TK envelope: PIN pad ");
    if (strcmp(ci.name, env->serial) != 0)
        return px_error_set(e, PX_EPERM,
                            "TK envelope: the device certificate is %s's, not serial %s's", ci.name,
                            env->serial);
    k = pki_pkey_from_point(ci.point);
    md = EVP_MD_CTX_new();
    ok = k != NULL && md != NULL && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
         EVP_DigestVerifyUpdate(md, PKI_TKENV_SIG_LABEL, strlen(PKI_TKENV_SIG_LABEL)) == 1 &&
         EVP_DigestVerifyUpdate(md, in, env->signed_len) == 1 &&
         EVP_DigestVerifyFinal(md, env->sig, env->sig_len) == 1;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(k);
    ERR_clear_error();
    if (!ok)
        return px_error_set(e, PX_EAUTH,
                            "TK envelope: the PIN pad's signature does not verify (altered)");
    if (device != NULL)
        *device = ci;
    return PX_OK;
}

static int put_field(uint8_t *out, size_t cap, size_t *o, const void *p, size_t n, int counted)
{
    if (*o + (counted ? 1 : 0) + n > cap)
        return PX_ETOOBIG;
    if (counted)
        out[(*o)++] = (uint8_t)n;
    memcpy(out + *o, p, n);
    *o += n;
    return PX_OK;
}

int pki_keyload_mac_data(const char *label, const char *serial, const uint8_t *nonce,
                         size_t nonce_len, const char *result, uint8_t *out, size_t cap,
                         size_t *len, px_error *e)
{
    size_t o = 0;
    int rc;
    *len = 0;
    if (label == NULL || strlen(label) > 64 || !pki_serial_is_valid(serial) || nonce == NULL ||
        nonce_len == 0 || nonce_len > 64 || (result != NULL && strlen(result) > 32))
        return px_error_set(e, PX_EINVAL, "key download: bad MAC input");
    rc = put_field(out, cap, &o, label, strlen(label), 0);
    if (rc == PX_OK)
        rc = put_field(out, cap, &o, serial, strlen(serial), 1);
    if (rc == PX_OK)
        rc = put_field(out, cap, &o, nonce, nonce_len, 1);
    if (rc == PX_OK && result != NULL)
        rc = put_field(out, cap, &o, result, strlen(result), 1);
    if (rc != PX_OK)
        return px_error_set(e, rc, "key download: MAC input does not fit");
    *len = o;
    return PX_OK;
}
