/*
 * util.c: names, roles, files, base64 and the OpenSSL glue the rest of pki shares.
 */
#include "pki/pki_int.h"
#include "lib/hex.h"
#include "lib/str.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

static const char *const role_names[PKI_ROLE_COUNT] = {"operator", "mtms", "kms", "pinpad",
                                                       "service"};
static const char *const purpose_names[PKI_PURPOSE_COUNT] = {"tls", "key-agreement", "device"};

const char *pki_role_name(pki_role r)
{
    return (unsigned)r < PKI_ROLE_COUNT ? role_names[r] : "?";
}

int pki_role_parse(const char *s, pki_role *out)
{
    for (int i = 0; i < PKI_ROLE_COUNT; i++)
        if (s != NULL && strcmp(s, role_names[i]) == 0) {
            *out = (pki_role)i;
            return PX_OK;
        }
    return PX_ENOTFOUND;
}

const char *pki_purpose_name(pki_purpose p)
{
    return (unsigned)p < PKI_PURPOSE_COUNT ? purpose_names[p] : "?";
}

int pki_purpose_parse(const char *s, pki_purpose *out)
{
    for (int i = 0; i < PKI_PURPOSE_COUNT; i++)
        if (s != NULL && strcmp(s, purpose_names[i]) == 0) {
            *out = (pki_purpose)i;
            return PX_OK;
        }
    return PX_ENOTFOUND;
}

int pki_role_allows(pki_role r, pki_purpose p)
{
    switch (r) {
    case PKI_ROLE_OPERATOR:
    case PKI_ROLE_MTMS:
    case PKI_ROLE_SERVICE: return p == PKI_PURPOSE_TLS;
    case PKI_ROLE_KMS: return p == PKI_PURPOSE_TLS || p == PKI_PURPOSE_KEY_AGREEMENT;
    case PKI_ROLE_PINPAD: return p == PKI_PURPOSE_DEVICE;
    default: return 0;
    }
}

int pki_name_is_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= PX_PKI_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '@'))
            return 0;
    }
    return 1;
}

int pki_cn_make(pki_role r, const char *name, char out[PX_PKI_CN_MAX], px_error *e)
{
    if ((unsigned)r >= PKI_ROLE_COUNT)
        return px_error_set(e, PX_EINVAL, "certificate: unknown role");
    if (!pki_name_is_valid(name))
        return px_error_set(e, PX_EINVAL,
                            "certificate name: expected 1 to %d of A-Z a-z 0-9 . _ - @",
                            PX_PKI_NAME_MAX - 1);
    snprintf(out, PX_PKI_CN_MAX, "%s:%s", role_names[r], name);
    return PX_OK;
}

int pki_cn_split(const char *cn, pki_role *role, char name[PX_PKI_NAME_MAX])
{
    const char *colon = cn ? strchr(cn, ':') : NULL;
    char r[16];
    size_t n;
    if (colon == NULL || (n = (size_t)(colon - cn)) == 0 || n >= sizeof r)
        return PX_EFORMAT;
    memcpy(r, cn, n);
    r[n] = 0;
    if (pki_role_parse(r, role) != PX_OK || !pki_name_is_valid(colon + 1))
        return PX_EFORMAT;
    px_strlcpy(name, colon + 1, PX_PKI_NAME_MAX);
    return PX_OK;
}

int pki_ossl_fail(px_error *e, int code, const char *what)
{
    char why[200] = "";
    unsigned long err = ERR_peek_last_error();
    if (err != 0)
        ERR_error_string_n(err, why, sizeof why);
    ERR_clear_error();
    return px_error_set(e, code, "%s%s%s", what, why[0] ? ": " : "", why);
}

int64_t pki_asn1_time_ms(const ASN1_TIME *t)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm) * 1000;
}

EVP_PKEY *pki_pkey_from_point(const uint8_t point[PKI_EC_POINT_LEN])
{
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    OSSL_PARAM *p = NULL;
    EVP_PKEY_CTX *c = NULL;
    EVP_PKEY *k = NULL;
    if (b != NULL && point[0] == 0x04 &&
        OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
        OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, point, PKI_EC_POINT_LEN) ==
            1 &&
        (p = OSSL_PARAM_BLD_to_param(b)) != NULL &&
        (c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) != NULL &&
        EVP_PKEY_fromdata_init(c) == 1)
        (void)EVP_PKEY_fromdata(c, &k, EVP_PKEY_PUBLIC_KEY, p);
    EVP_PKEY_CTX_free(c);
    OSSL_PARAM_free(p);
    OSSL_PARAM_BLD_free(b);
    if (k != NULL) { /* fromdata does not always check the point: do it */
        EVP_PKEY_CTX *chk = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
        int ok = chk != NULL && EVP_PKEY_public_check(chk) == 1;
        EVP_PKEY_CTX_free(chk);
        if (!ok) {
            EVP_PKEY_free(k);
            k = NULL;
        }
    }
    ERR_clear_error();
    return k;
}

int pki_pkey_is_p256(const EVP_PKEY *k)
{
    char group[32];
    size_t len = 0;
    if (k == NULL || EVP_PKEY_get_base_id(k) != EVP_PKEY_EC)
        return 0;
    if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) !=
        1)
        return 0;
    return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

int pki_pkey_point(const EVP_PKEY *k, uint8_t point[PKI_EC_POINT_LEN], px_error *e)
{
    EC_GROUP *g = NULL;
    EC_POINT *pt = NULL;
    uint8_t raw[PKI_EC_POINT_LEN + 8];
    size_t len = 0;
    int ok;
    if (!pki_pkey_is_p256(k))
        return px_error_set(e, PX_EPERM, "key: not an EC P-256 key");
    if (EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, raw, sizeof raw, &len) != 1)
        return pki_ossl_fail(e, PX_ECRYPTO, "key: no public point");
    if (len == PKI_EC_POINT_LEN && raw[0] == 0x04) {
        memcpy(point, raw, PKI_EC_POINT_LEN);
        return PX_OK;
    }
    /* compressed in the certificate: expand */
    g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    pt = g ? EC_POINT_new(g) : NULL;
    ok = pt != NULL && EC_POINT_oct2point(g, pt, raw, len, NULL) == 1 &&
         EC_POINT_point2oct(g, pt, POINT_CONVERSION_UNCOMPRESSED, point, PKI_EC_POINT_LEN, NULL) ==
             PKI_EC_POINT_LEN;
    EC_POINT_free(pt);
    EC_GROUP_free(g);
    return ok ? PX_OK : pki_ossl_fail(e, PX_ECRYPTO, "key: bad public point");
}

X509 *pki_x509_parse(const uint8_t *data, size_t n, px_error *e)
{
    X509 *x = NULL;
    if (data == NULL || n == 0 || n > PX_PKI_PEM_MAX) {
        px_error_set(e, PX_EFORMAT, "certificate: empty or over %d bytes", PX_PKI_PEM_MAX);
        return NULL;
    }
    if (data[0] == '-') {
        BIO *b = BIO_new_mem_buf(data, (int)n);
        x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
    } else {
        const unsigned char *p = data;
        x = d2i_X509(NULL, &p, (long)n);
        if (x != NULL && p != data + n) {
            X509_free(x);
            x = NULL;
        }
    }
    if (x == NULL)
        pki_ossl_fail(e, PX_EFORMAT, "certificate: does not parse");
    return x;
}

/* The single value of a subject attribute (nid), or PX_EFORMAT. */
static int subject_entry(X509 *x, int nid, char *out, size_t outsz)
{
    X509_NAME *nm = X509_get_subject_name(x);
    int idx = X509_NAME_get_index_by_NID(nm, nid, -1);
    ASN1_STRING *s;
    if (idx < 0 || X509_NAME_get_index_by_NID(nm, nid, idx) >= 0)
        return PX_EFORMAT;
    s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(nm, idx));
    if (s == NULL || (size_t)ASN1_STRING_length(s) >= outsz ||
        memchr(ASN1_STRING_get0_data(s), 0, (size_t)ASN1_STRING_length(s)) != NULL)
        return PX_EFORMAT;
    memcpy(out, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
    out[ASN1_STRING_length(s)] = 0;
    return PX_OK;
}

/* The purpose the key usages say (or -1 when they match none of ours). */
static int purpose_of(X509 *x)
{
    uint32_t ku = X509_get_key_usage(x), xku = X509_get_extended_key_usage(x);
    if (ku == KU_KEY_AGREEMENT && xku == UINT32_MAX)
        return PKI_PURPOSE_KEY_AGREEMENT;
    if (ku == KU_DIGITAL_SIGNATURE && xku == UINT32_MAX)
        return PKI_PURPOSE_DEVICE;
    if (ku == KU_DIGITAL_SIGNATURE && xku != UINT32_MAX &&
        (xku & (XKU_SSL_SERVER | XKU_SSL_CLIENT)) &&
        !(xku & ~(uint32_t)(XKU_SSL_SERVER | XKU_SSL_CLIENT)))
        return PKI_PURPOSE_TLS;
    return -1;
}

int pki_x509_info(X509 *x, pki_cert_info *info, px_error *e)
{
    char ou[16];
    unsigned int mdlen = 0;
    const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
    BIGNUM *bn = sn ? ASN1_INTEGER_to_BN(sn, NULL) : NULL;
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    int purpose, rc = PX_OK;
    memset(info, 0, sizeof *info);
    if (hex == NULL || strlen(hex) >= sizeof info->serial)
        rc = px_error_set(e, PX_EFORMAT, "certificate: bad serial number");
    else
        px_strlcpy(info->serial, hex, sizeof info->serial);
    OPENSSL_free(hex);
    BN_free(bn);
    if (rc == PX_OK && subject_entry(x, NID_commonName, info->cn, sizeof info->cn) != PX_OK)
        rc = px_error_set(e, PX_EFORMAT, "certificate: subject has no single CN");
    if (rc == PX_OK && pki_cn_split(info->cn, &info->role, info->name) != PX_OK)
        rc = px_error_set(e, PX_EFORMAT, "certificate %s: CN is not \"role:name\"", info->serial);
    if (rc == PX_OK && (subject_entry(x, NID_organizationalUnitName, ou, sizeof ou) != PX_OK ||
                        strcmp(ou, pki_role_name(info->role)) != 0))
        rc = px_error_set(e, PX_EFORMAT, "certificate %s: OU does not name role %s", info->cn,
                          pki_role_name(info->role));
    if (rc == PX_OK && (purpose = purpose_of(x)) < 0)
        rc = px_error_set(e, PX_EFORMAT, "certificate %s: key usages match no purpose", info->cn);
    else if (rc == PX_OK)
        info->purpose = (pki_purpose)purpose;
    if (rc == PX_OK && X509_digest(x, EVP_sha256(), info->fingerprint, &mdlen) != 1)
        rc = pki_ossl_fail(e, PX_ECRYPTO, "certificate: fingerprint");
    if (rc == PX_OK)
        rc = pki_pkey_point(X509_get0_pubkey(x), info->point, e);
    if (rc == PX_OK) {
        px_hex_encode(info->fingerprint, PKI_FP_LEN, info->fingerprint_hex);
        info->not_before_ms = pki_asn1_time_ms(X509_get0_notBefore(x));
        info->not_after_ms = pki_asn1_time_ms(X509_get0_notAfter(x));
    }
    return rc;
}

int pki_cert_parse(const uint8_t *cert, size_t n, pki_cert_info *info, px_error *e)
{
    X509 *x = pki_x509_parse(cert, n, e);
    int rc;
    if (x == NULL)
        return PX_EFORMAT;
    rc = pki_x509_info(x, info, e);
    X509_free(x);
    return rc;
}

int pki_cert_pem_to_der(const char *pem, size_t n, uint8_t **der, size_t *derlen, px_error *e)
{
    X509 *x = pki_x509_parse((const uint8_t *)pem, n, e);
    unsigned char *out = NULL;
    int len;
    *der = NULL;
    *derlen = 0;
    if (x == NULL)
        return PX_EFORMAT;
    len = i2d_X509(x, &out);
    X509_free(x);
    if (len <= 0)
        return pki_ossl_fail(e, PX_ECRYPTO, "certificate: cannot encode");
    *der = malloc((size_t)len);
    if (*der == NULL) {
        OPENSSL_free(out);
        return px_error_set(e, PX_ENOMEM, "certificate: out of memory");
    }
    memcpy(*der, out, (size_t)len);
    *derlen = (size_t)len;
    OPENSSL_free(out);
    return PX_OK;
}

int pki_cert_der_to_pem(const uint8_t *der, size_t n, char **pem, px_error *e)
{
    X509 *x = pki_x509_parse(der, n, e);
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    long len;
    int rc = PX_OK;
    *pem = NULL;
    if (x == NULL || b == NULL || PEM_write_bio_X509(b, x) != 1)
        rc = x == NULL ? PX_EFORMAT : pki_ossl_fail(e, PX_ECRYPTO, "certificate: cannot encode");
    if (rc == PX_OK) {
        len = BIO_get_mem_data(b, &data);
        *pem = malloc((size_t)len + 1);
        if (*pem == NULL)
            rc = px_error_set(e, PX_ENOMEM, "certificate: out of memory");
        else {
            memcpy(*pem, data, (size_t)len);
            (*pem)[len] = 0;
        }
    }
    BIO_free(b);
    X509_free(x);
    return rc;
}

static const struct {
    const char *name;
    int code;
} reasons[] = {
    {"unspecified", CRL_REASON_UNSPECIFIED},
    {"keyCompromise", CRL_REASON_KEY_COMPROMISE},
    {"affiliationChanged", CRL_REASON_AFFILIATION_CHANGED},
    {"superseded", CRL_REASON_SUPERSEDED},
    {"cessationOfOperation", CRL_REASON_CESSATION_OF_OPERATION},
};

int pki_reason_code(const char *name, int *code)
{
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (strcmp(name, reasons[i].name) == 0) {
            *code = reasons[i].code;
            return PX_OK;
        }
    return PX_ENOTFOUND;
}

const char *pki_reason_name(int code)
{
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].code == code)
            return reasons[i].name;
    return "unspecified";
}

int pki_read_file(const char *path, size_t max, char **out, size_t *len, px_error *e)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n = 0, got;
    *out = NULL;
    if (len)
        *len = 0;
    if (f == NULL)
        return px_error_set(e, errno == ENOENT ? PX_ENOTFOUND : PX_EIO, "%s: %s", path,
                            strerror(errno));
    buf = malloc(max + 1);
    if (buf == NULL) {
        fclose(f);
        return px_error_set(e, PX_ENOMEM, "%s: out of memory", path);
    }
    while ((got = fread(buf + n, 1, max + 1 - n, f)) > 0 && n + got <= max)
        n += got;
    if (got > 0 || ferror(f)) {
        int toobig = got > 0;
        fclose(f);
        free(buf);
        return toobig ? px_error_set(e, PX_ETOOBIG, "%s: larger than %zu bytes", path, max)
                      : px_error_set(e, PX_EIO, "%s: cannot read", path);
    }
    fclose(f);
    buf[n] = 0;
    *out = buf;
    if (len)
        *len = n;
    return PX_OK;
}

int pki_write_file(const char *path, const void *data, size_t len, int mode, px_error *e)
{
    char tmp[PX_PATH_MAX + 16];
    int fd, ok;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid()) >= sizeof tmp)
        return px_error_set(e, PX_ETOOBIG, "%s: path too long", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
    if (fd < 0)
        return px_error_set(e, PX_EIO, "%s: %s", tmp, strerror(errno));
    ok = fchmod(fd, (mode_t)mode) == 0;
    for (size_t done = 0; ok && done < len;) {
        ssize_t w = write(fd, (const char *)data + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        ok = w > 0;
        done += ok ? (size_t)w : 0;
    }
    ok = ok && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int err = errno;
        unlink(tmp);
        return px_error_set(e, PX_EIO, "%s: cannot write: %s", path, strerror(err));
    }
    return PX_OK;
}

void pki_b64_encode(const uint8_t *in, size_t n, char *out)
{
    if (n == 0) {
        out[0] = 0;
        return;
    }
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int pki_b64_decode(const char *in, uint8_t *out, size_t cap, size_t *outlen)
{
    size_t n = strlen(in), o = 0;
    *outlen = 0;
    if (n % 4 != 0)
        return PX_EFORMAT;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int j = 0; j < 4; j++) {
            char c = in[i + (size_t)j];
            if (c == '=' && i + 4 == n && j >= 2 && (j == 3 || in[i + 3] == '=')) {
                v[j] = 0;
                pad++;
            } else if (pad > 0 || (v[j] = b64_value(c)) < 0) {
                return PX_EFORMAT;
            }
        }
        if (o + 3 - (size_t)pad > cap)
            return PX_ETOOBIG;
        /* the unused bits of the last character must be zero (canonical form) */
        if ((pad == 1 && (v[2] & 3) != 0) || (pad == 2 && (v[1] & 15) != 0))
            return PX_EFORMAT;
        out[o++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
        if (pad < 2)
            out[o++] = (uint8_t)((v[1] & 15) << 4 | v[2] >> 2);
        if (pad < 1)
            out[o++] = (uint8_t)((v[2] & 3) << 6 | v[3]);
    }
    *outlen = o;
    return PX_OK;
}
