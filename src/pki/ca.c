/*
 * ca.c: the certificate authority of seed 001 [0031]: init, issue, revoke, list, CRL.
 *
 * index.txt, one line per certificate ever issued (tab-separated):
 *   status serial role purpose cn issued_ms not_after_ms revoked_ms reason fingerprint
 * status V (valid) or R (revoked). Names are restricted (pki_name_is_valid), so no field
 * can hold a tab or a line break.
 */
#include "pki/pki_int.h"
#include "lib/buf.h"
#include "lib/hex.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#define CA_KEY "ca.key"
#define CA_CRT "ca.crt"
#define CA_INDEX "index.txt"
#define CA_CRL "crl.pem"
#define CA_LOCK "lock"
#define CA_CERTS "certs"
#define SKEW_S 300 /* notBefore this far in the past: clocks of devices drift */

struct pki_ca {
    char dir[PX_PATH_MAX];
    EVP_PKEY *key;
    X509 *cert;
    int lockfd;
};

static int path_in(const char *dir, const char *name, char *out, px_error *e)
{
    if ((size_t)snprintf(out, PX_PATH_MAX, "%s/%s", dir, name) >= PX_PATH_MAX)
        return px_error_set(e, PX_ETOOBIG, "CA: path too long: %s/%s", dir, name);
    return PX_OK;
}

static int lock_dir(const char *dir, int *fd, px_error *e)
{
    char p[PX_PATH_MAX];
    int rc = path_in(dir, CA_LOCK, p, e);
    if (rc != PX_OK)
        return rc;
    *fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (*fd < 0)
        return px_error_set(e, PX_EIO, "CA: %s: %s", p, strerror(errno));
    if (flock(*fd, LOCK_EX) != 0) {
        close(*fd);
        *fd = -1;
        return px_error_set(e, PX_EIO, "CA: cannot lock %s: %s", p, strerror(errno));
    }
    return PX_OK;
}

static void unlock_dir(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

static int random_serial(ASN1_INTEGER *out, px_error *e)
{
    uint8_t b[16];
    BIGNUM *bn;
    int ok;
    if (RAND_bytes(b, sizeof b) != 1)
        return pki_ossl_fail(e, PX_ECRYPTO, "CA: random serial");
    b[0] = (uint8_t)((b[0] & 0x7F) | 0x40); /* positive, and always 16 bytes long */
    bn = BN_bin2bn(b, sizeof b, NULL);
    ok = bn != NULL && BN_to_ASN1_INTEGER(bn, out) != NULL;
    BN_free(bn);
    return ok ? PX_OK : pki_ossl_fail(e, PX_ECRYPTO, "CA: serial");
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value, px_error *e)
{
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = ex != NULL && X509_add_ext(x, ex, -1) == 1;
    X509_EXTENSION_free(ex);
    return ok ? PX_OK : pki_ossl_fail(e, PX_ECRYPTO, "CA: certificate extension");
}

static int set_validity(X509 *x, int64_t days)
{
    return X509_gmtime_adj(X509_getm_notBefore(x), -SKEW_S) != NULL &&
           X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, NULL) != NULL;
}

/* Passphrase from the environment, or NULL (key kept unencrypted, mode 0600). */
static const char *passphrase(void)
{
    const char *p = getenv(PKI_ENV_PASSPHRASE);
    return p != NULL && p[0] != 0 ? p : NULL;
}

static int write_key(const char *path, EVP_PKEY *k, const char *pass, px_error *e)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    long len;
    int rc;
    if (b == NULL || PEM_write_bio_PKCS8PrivateKey(b, k, pass ? EVP_aes_256_cbc() : NULL, NULL, 0,
                                                   NULL, (void *)pass) != 1) {
        BIO_free(b);
        return pki_ossl_fail(e, PX_ECRYPTO, "CA: cannot encode the key");
    }
    len = BIO_get_mem_data(b, &data);
    rc = pki_write_file(path, data, (size_t)len, 0600, e);
    OPENSSL_cleanse(data, (size_t)len);
    BIO_free(b);
    return rc;
}

static int pem_of_x509(X509 *x, char **out, px_error *e)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    long len;
    *out = NULL;
    if (b == NULL || PEM_write_bio_X509(b, x) != 1) {
        BIO_free(b);
        return pki_ossl_fail(e, PX_ECRYPTO, "CA: cannot encode a certificate");
    }
    len = BIO_get_mem_data(b, &data);
    *out = malloc((size_t)len + 1);
    if (*out != NULL) {
        memcpy(*out, data, (size_t)len);
        (*out)[len] = 0;
    }
    BIO_free(b);
    return *out ? PX_OK : px_error_set(e, PX_ENOMEM, "CA: out of memory");
}

static int write_x509(const char *path, X509 *x, int mode, px_error *e)
{
    char *pem;
    int rc = pem_of_x509(x, &pem, e);
    if (rc == PX_OK)
        rc = pki_write_file(path, pem, strlen(pem), mode, e);
    free(pem);
    return rc;
}

/* ---- index ----------------------------------------------------------------------------- */

static int row_parse(char *line, pki_cert_row *r)
{
    char *f[10];
    size_t n = 0;
    int64_t v[3];
    char *p = line;
    memset(r, 0, sizeof *r);
    while (n < 10) {
        f[n++] = p;
        p = strchr(p, '\t');
        if (p == NULL)
            break;
        *p++ = 0;
    }
    if (n != 10 || p != NULL || strlen(f[0]) != 1 || (f[0][0] != 'V' && f[0][0] != 'R'))
        return PX_EFORMAT;
    r->status = f[0][0];
    if (px_strlcpy(r->serial, f[1], sizeof r->serial) != PX_OK ||
        pki_role_parse(f[2], &r->role) != PX_OK || pki_purpose_parse(f[3], &r->purpose) != PX_OK ||
        px_strlcpy(r->cn, f[4], sizeof r->cn) != PX_OK ||
        px_parse_i64(f[5], 0, INT64_MAX, &v[0]) != PX_OK ||
        px_parse_i64(f[6], 0, INT64_MAX, &v[1]) != PX_OK ||
        px_parse_i64(f[7], 0, INT64_MAX, &v[2]) != PX_OK ||
        px_strlcpy(r->reason, f[8], sizeof r->reason) != PX_OK ||
        px_strlcpy(r->fingerprint_hex, f[9], sizeof r->fingerprint_hex) != PX_OK)
        return PX_EFORMAT;
    r->issued_ms = v[0];
    r->not_after_ms = v[1];
    r->revoked_ms = v[2];
    return PX_OK;
}

static int row_format(const pki_cert_row *r, char *out, size_t outsz)
{
    int n = snprintf(out, outsz, "%c\t%s\t%s\t%s\t%s\t%lld\t%lld\t%lld\t%s\t%s\n", r->status,
                     r->serial, pki_role_name(r->role), pki_purpose_name(r->purpose), r->cn,
                     (long long)r->issued_ms, (long long)r->not_after_ms, (long long)r->revoked_ms,
                     r->reason, r->fingerprint_hex);
    return n > 0 && (size_t)n < outsz ? PX_OK : PX_ETOOBIG;
}

typedef struct index_rows {
    pki_cert_row *rows;
    size_t n, cap;
} index_rows;

static int index_push(index_rows *ix, const pki_cert_row *r, px_error *e)
{
    if (ix->n == ix->cap) {
        size_t cap = ix->cap ? ix->cap * 2 : 64;
        pki_cert_row *p;
        if (ix->n >= PX_PKI_INDEX_MAX)
            return px_error_set(e, PX_ELIMIT, "CA: more than %d certificates in the index",
                                PX_PKI_INDEX_MAX);
        p = realloc(ix->rows, cap * sizeof *p);
        if (p == NULL)
            return px_error_set(e, PX_ENOMEM, "CA: out of memory");
        ix->rows = p;
        ix->cap = cap;
    }
    ix->rows[ix->n++] = *r;
    return PX_OK;
}

static int index_read(const char *dir, index_rows *ix, px_error *e)
{
    char p[PX_PATH_MAX], line[PX_PKI_INDEX_LINE_MAX];
    int rc = path_in(dir, CA_INDEX, p, e), lineno = 0;
    FILE *f;
    memset(ix, 0, sizeof *ix);
    if (rc != PX_OK)
        return rc;
    f = fopen(p, "r");
    if (f == NULL)
        return px_error_set(e, errno == ENOENT ? PX_ENOTFOUND : PX_EIO,
                            "CA: %s: %s (not a CA directory?)", p, strerror(errno));
    while (rc == PX_OK && fgets(line, sizeof line, f) != NULL) {
        pki_cert_row r;
        size_t len = strlen(line);
        lineno++;
        if (len == 0 || line[len - 1] != '\n') {
            rc = px_error_set(e, PX_EFORMAT, "CA: %s:%d: line too long or cut off", p, lineno);
            break;
        }
        line[len - 1] = 0;
        if (row_parse(line, &r) != PX_OK)
            rc = px_error_set(e, PX_EFORMAT, "CA: %s:%d: malformed line", p, lineno);
        else
            rc = index_push(ix, &r, e);
    }
    fclose(f);
    if (rc != PX_OK) {
        free(ix->rows);
        memset(ix, 0, sizeof *ix);
    }
    return rc;
}

static int index_write(const char *dir, const index_rows *ix, px_error *e)
{
    char p[PX_PATH_MAX], line[PX_PKI_INDEX_LINE_MAX];
    px_buf b;
    int rc = path_in(dir, CA_INDEX, p, e);
    if (rc != PX_OK)
        return rc;
    px_buf_init(&b, (size_t)PX_PKI_INDEX_MAX * PX_PKI_INDEX_LINE_MAX);
    for (size_t i = 0; rc == PX_OK && i < ix->n; i++) {
        rc = row_format(&ix->rows[i], line, sizeof line);
        if (rc == PX_OK)
            rc = px_buf_append_str(&b, line);
    }
    if (rc == PX_OK)
        rc = pki_write_file(p, b.data ? (const char *)b.data : "", b.len, 0644, e);
    else
        px_error_set(e, rc, "CA: cannot format the index");
    px_buf_free(&b);
    return rc;
}

/* One line at the end of the index, synced (issuing does not rewrite the index). */
static int index_append(const char *dir, const pki_cert_row *r, px_error *e)
{
    char p[PX_PATH_MAX], line[PX_PKI_INDEX_LINE_MAX];
    size_t len;
    int fd, ok, rc = path_in(dir, CA_INDEX, p, e);
    if (rc != PX_OK)
        return rc;
    if (row_format(r, line, sizeof line) != PX_OK)
        return px_error_set(e, PX_ETOOBIG, "CA: index line too long");
    len = strlen(line);
    fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0)
        return px_error_set(e, PX_EIO, "CA: %s: %s", p, strerror(errno));
    ok = write(fd, line, len) == (ssize_t)len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    return ok ? PX_OK : px_error_set(e, PX_EIO, "CA: cannot append to %s", p);
}

/* ---- CRL ------------------------------------------------------------------------------- */

static int crl_add(X509_CRL *crl, const pki_cert_row *r, px_error *e)
{
    X509_REVOKED *rev = X509_REVOKED_new();
    BIGNUM *bn = NULL;
    ASN1_INTEGER *sn = NULL;
    ASN1_TIME *t = ASN1_TIME_new();
    ASN1_ENUMERATED *why = ASN1_ENUMERATED_new();
    int code = CRL_REASON_UNSPECIFIED, ok;
    (void)pki_reason_code(r->reason, &code);
    ok = rev != NULL && t != NULL && why != NULL && BN_hex2bn(&bn, r->serial) > 0 &&
         (sn = BN_to_ASN1_INTEGER(bn, NULL)) != NULL &&
         X509_REVOKED_set_serialNumber(rev, sn) == 1 &&
         ASN1_TIME_set(t, (time_t)(r->revoked_ms / 1000)) != NULL &&
         X509_REVOKED_set_revocationDate(rev, t) == 1 && ASN1_ENUMERATED_set(why, code) == 1 &&
         X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, why, 0, 0) == 1 &&
         X509_CRL_add0_revoked(crl, rev) == 1;
    if (ok)
        rev = NULL; /* the CRL owns it */
    X509_REVOKED_free(rev);
    ASN1_ENUMERATED_free(why);
    ASN1_TIME_free(t);
    ASN1_INTEGER_free(sn);
    BN_free(bn);
    return ok ? PX_OK : pki_ossl_fail(e, PX_ECRYPTO, "CA: CRL entry");
}

static int crl_write(pki_ca *ca, const index_rows *ix, int64_t crl_days, px_error *e)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *now = ASN1_TIME_new(), *next = ASN1_TIME_new();
    ASN1_INTEGER *number = ASN1_INTEGER_new();
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca->cert);
    char p[PX_PATH_MAX];
    BIO *b = NULL;
    int rc = path_in(ca->dir, CA_CRL, p, e);
    if (rc == PX_OK && (crl_days < 1 || crl_days > PX_PKI_DAYS_MAX))
        rc = px_error_set(e, PX_ERANGE, "CA: CRL validity: 1 to %d days", PX_PKI_DAYS_MAX);
    if (rc == PX_OK &&
        !(crl && now && next && number && akid && ski &&
          X509_CRL_set_version(crl, X509_CRL_VERSION_2) == 1 &&
          X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) == 1 &&
          X509_gmtime_adj(now, 0) != NULL && X509_CRL_set1_lastUpdate(crl, now) == 1 &&
          X509_time_adj_ex(next, (int)crl_days, 0, NULL) != NULL &&
          X509_CRL_set1_nextUpdate(crl, next) == 1 &&
          ASN1_INTEGER_set_int64(number, px_now_ms()) == 1 &&
          X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, 0) == 1 &&
          (akid->keyid = ASN1_OCTET_STRING_dup(ski)) != NULL &&
          X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0, 0) == 1))
        rc = pki_ossl_fail(e, PX_ECRYPTO, "CA: CRL");
    for (size_t i = 0; rc == PX_OK && i < ix->n; i++)
        if (ix->rows[i].status == 'R')
            rc = crl_add(crl, &ix->rows[i], e);
    if (rc == PX_OK && (X509_CRL_sort(crl) != 1 || X509_CRL_sign(crl, ca->key, EVP_sha256()) <= 0))
        rc = pki_ossl_fail(e, PX_ECRYPTO, "CA: cannot sign the CRL");
    if (rc == PX_OK) {
        char *data;
        long len;
        b = BIO_new(BIO_s_mem());
        if (b == NULL || PEM_write_bio_X509_CRL(b, crl) != 1)
            rc = pki_ossl_fail(e, PX_ECRYPTO, "CA: cannot encode the CRL");
        else {
            len = BIO_get_mem_data(b, &data);
            rc = pki_write_file(p, data, (size_t)len, 0644, e);
        }
    }
    BIO_free(b);
    AUTHORITY_KEYID_free(akid);
    ASN1_INTEGER_free(number);
    ASN1_TIME_free(next);
    ASN1_TIME_free(now);
    X509_CRL_free(crl);
    return rc;
}

/* ---- init / open ----------------------------------------------------------------------- */

static X509 *self_signed(EVP_PKEY *k, const char *name, int64_t days, px_error *e)
{
    X509 *x = X509_new();
    X509V3_CTX ctx;
    X509_NAME *nm;
    int rc = PX_OK;
    if (x == NULL || X509_set_version(x, X509_VERSION_3) != 1 ||
        random_serial(X509_get_serialNumber(x), e) != PX_OK || !set_validity(x, days) ||
        X509_set_pubkey(x, k) != 1)
        rc = PX_ECRYPTO;
    nm = X509_get_subject_name(x);
    if (rc == PX_OK &&
        (X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_UTF8, (const unsigned char *)"possum", -1, -1,
                                    0) != 1 ||
         X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)name, -1, -1,
                                    0) != 1 ||
         X509_set_issuer_name(x, nm) != 1))
        rc = PX_ECRYPTO;
    if (rc == PX_OK) {
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        rc = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0", e);
        if (rc == PX_OK)
            rc = add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign", e);
        if (rc == PX_OK)
            rc = add_ext(x, &ctx, NID_subject_key_identifier, "hash", e);
        if (rc == PX_OK)
            rc = add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always", e);
    }
    if (rc == PX_OK && X509_sign(x, k, EVP_sha256()) <= 0)
        rc = PX_ECRYPTO;
    if (rc != PX_OK) {
        if (e == NULL || e->code == 0)
            pki_ossl_fail(e, PX_ECRYPTO, "CA: cannot make the CA certificate");
        X509_free(x);
        return NULL;
    }
    return x;
}

int pki_ca_init(const char *dir, const char *name, int64_t days, int64_t crl_days,
                pki_cert_info *info, px_error *e)
{
    pki_ca ca;
    char p[PX_PATH_MAX];
    index_rows none = {0};
    int rc, fd = -1;
    memset(&ca, 0, sizeof ca);
    if (name == NULL || name[0] == 0 || strlen(name) > 64 || strchr(name, '\t') != NULL ||
        strchr(name, '\n') != NULL)
        return px_error_set(e, PX_EINVAL, "CA name: 1 to 64 characters on one line");
    if (days < 1 || days > PX_PKI_DAYS_MAX)
        return px_error_set(e, PX_ERANGE, "CA validity: 1 to %d days", PX_PKI_DAYS_MAX);
    if (px_strlcpy(ca.dir, dir, sizeof ca.dir) != PX_OK)
        return px_error_set(e, PX_ETOOBIG, "CA: directory path too long");
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return px_error_set(e, PX_EIO, "CA: cannot create %s: %s", dir, strerror(errno));
    if ((rc = lock_dir(dir, &fd, e)) != PX_OK)
        return rc;
    if ((rc = path_in(dir, CA_KEY, p, e)) == PX_OK && access(p, F_OK) == 0)
        rc = px_error_set(e, PX_EEXIST, "CA: %s already holds a CA (%s)", dir, p);
    if (rc == PX_OK && (ca.key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL)
        rc = pki_ossl_fail(e, PX_ECRYPTO, "CA: key generation");
    if (rc == PX_OK && (ca.cert = self_signed(ca.key, name, days, e)) == NULL)
        rc = PX_ECRYPTO;
    if (rc == PX_OK && (rc = path_in(dir, CA_CERTS, p, e)) == PX_OK && mkdir(p, 0700) != 0 &&
        errno != EEXIST)
        rc = px_error_set(e, PX_EIO, "CA: cannot create %s: %s", p, strerror(errno));
    if (rc == PX_OK)
        rc = index_write(dir, &none, e);
    if (rc == PX_OK && (rc = path_in(dir, CA_CRT, p, e)) == PX_OK)
        rc = write_x509(p, ca.cert, 0644, e);
    if (rc == PX_OK)
        rc = crl_write(&ca, &none, crl_days, e);
    if (rc == PX_OK && (rc = path_in(dir, CA_KEY, p, e)) == PX_OK) /* last: it marks a CA */
        rc = write_key(p, ca.key, passphrase(), e);
    if (rc == PX_OK && info != NULL) {
        unsigned int mdlen = 0;
        memset(info, 0, sizeof *info);
        px_strlcpy(info->cn, name, sizeof info->cn);
        X509_digest(ca.cert, EVP_sha256(), info->fingerprint, &mdlen);
        px_hex_encode(info->fingerprint, PKI_FP_LEN, info->fingerprint_hex);
        info->not_before_ms = pki_asn1_time_ms(X509_get0_notBefore(ca.cert));
        info->not_after_ms = pki_asn1_time_ms(X509_get0_notAfter(ca.cert));
    }
    unlock_dir(fd);
    EVP_PKEY_free(ca.key);
    X509_free(ca.cert);
    return rc;
}

int pki_ca_open(const char *dir, pki_ca **out, px_error *e)
{
    pki_ca *ca = calloc(1, sizeof *ca);
    char p[PX_PATH_MAX], *pem = NULL;
    size_t len = 0;
    int rc = ca ? PX_OK : px_error_set(e, PX_ENOMEM, "CA: out of memory");
    *out = NULL;
    if (rc == PX_OK && px_strlcpy(ca->dir, dir, sizeof ca->dir) != PX_OK)
        rc = px_error_set(e, PX_ETOOBIG, "CA: directory path too long");
    if (rc == PX_OK && (rc = path_in(dir, CA_CRT, p, e)) == PX_OK &&
        (rc = pki_read_file(p, PX_PKI_PEM_MAX, &pem, &len, e)) == PX_OK &&
        (ca->cert = pki_x509_parse((const uint8_t *)pem, len, e)) == NULL)
        rc = PX_EFORMAT;
    free(pem);
    pem = NULL;
    if (rc == PX_OK && (rc = path_in(dir, CA_KEY, p, e)) == PX_OK &&
        (rc = pki_read_file(p, PX_PKI_PEM_MAX, &pem, &len, e)) == PX_OK) {
        BIO *b = BIO_new_mem_buf(pem, (int)len);
        const char *pass = passphrase();
        ca->key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)(pass ? pass : "")) : NULL;
        BIO_free(b);
        if (ca->key == NULL)
            rc = pki_ossl_fail(e, PX_EAUTH,
                               strstr(pem, "ENCRYPTED") != NULL
                                   ? "CA: cannot read the key (POSSUM_CA_PASSPHRASE wrong or unset)"
                                   : "CA: cannot read the key");
        else if (X509_check_private_key(ca->cert, ca->key) != 1)
            rc = pki_ossl_fail(e, PX_EAUTH, "CA: ca.key does not match ca.crt");
        OPENSSL_cleanse(pem, len);
    }
    free(pem);
    ca->lockfd = -1;
    if (rc != PX_OK) {
        pki_ca_close(ca);
        return rc;
    }
    *out = ca;
    return PX_OK;
}

void pki_ca_close(pki_ca *ca)
{
    if (ca == NULL)
        return;
    EVP_PKEY_free(ca->key);
    X509_free(ca->cert);
    free(ca);
}

const char *pki_ca_dir(const pki_ca *ca)
{
    return ca->dir;
}

/* ---- issue ----------------------------------------------------------------------------- */

/* The subject's key: from the request, the point, or a new pair (private half to *key_pem). */
static EVP_PKEY *subject_key(const pki_issue_req *r, char **key_pem, px_error *e)
{
    EVP_PKEY *k = NULL;
    if (r->csr_pem != NULL) {
        size_t n = strlen(r->csr_pem);
        BIO *b = n <= PX_PKI_PEM_MAX ? BIO_new_mem_buf(r->csr_pem, (int)n) : NULL;
        X509_REQ *req = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        if (req == NULL) {
            pki_ossl_fail(e, PX_EFORMAT, "certificate request: does not parse");
            return NULL;
        }
        k = X509_REQ_get_pubkey(req);
        if (k == NULL || X509_REQ_verify(req, k) != 1) {
            pki_ossl_fail(e, PX_EAUTH,
                          "certificate request: its signature does not verify "
                          "(no proof of possession)");
            EVP_PKEY_free(k);
            k = NULL;
        }
        X509_REQ_free(req);
        return k;
    }
    if (r->pub_point != NULL) {
        if ((k = pki_pkey_from_point(r->pub_point)) == NULL)
            px_error_set(e, PX_EINVAL, "public key: not a point on P-256");
        return k;
    }
    if ((k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL) {
        pki_ossl_fail(e, PX_ECRYPTO, "key generation");
        return NULL;
    }
    if (key_pem != NULL) {
        BIO *b = BIO_new(BIO_s_mem());
        char *data;
        long len;
        if (b == NULL || PEM_write_bio_PKCS8PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) != 1 ||
            (len = BIO_get_mem_data(b, &data)) <= 0 ||
            (*key_pem = malloc((size_t)len + 1)) == NULL) {
            pki_ossl_fail(e, PX_ECRYPTO, "key: cannot encode");
            EVP_PKEY_free(k);
            k = NULL;
        } else {
            memcpy(*key_pem, data, (size_t)len);
            (*key_pem)[len] = 0;
            OPENSSL_cleanse(data, (size_t)len);
        }
        BIO_free(b);
    }
    return k;
}

/* "DNS:a,IP:1.2.3.4" from the request's names. */
static int san_value(const pki_issue_req *r, char *out, size_t outsz, px_error *e)
{
    size_t used = 0;
    out[0] = 0;
    for (int i = 0; i < PX_PKI_SAN_MAX && r->san[i] != NULL; i++) {
        const char *s = r->san[i];
        unsigned char ip[16];
        int is_ip = inet_pton(AF_INET, s, ip) == 1 || inet_pton(AF_INET6, s, ip) == 1, n;
        if (!is_ip && !pki_name_is_valid(s))
            return px_error_set(e, PX_EINVAL, "subjectAltName %d: not a host name or IP address",
                                i + 1);
        n = snprintf(out + used, outsz - used, "%s%s:%s", used ? "," : "", is_ip ? "IP" : "DNS", s);
        if (n < 0 || (size_t)n >= outsz - used)
            return px_error_set(e, PX_ETOOBIG, "subjectAltName: too long");
        used += (size_t)n;
    }
    return PX_OK;
}

static int leaf_extensions(pki_ca *ca, X509 *x, const pki_issue_req *r, px_error *e)
{
    X509V3_CTX ctx;
    char san[PX_PKI_SAN_MAX * (PX_PKI_NAME_MAX + 8)];
    const char *ku = r->purpose == PKI_PURPOSE_KEY_AGREEMENT ? "critical,keyAgreement"
                                                             : "critical,digitalSignature";
    const char *eku = NULL;
    int rc;
    if (r->purpose == PKI_PURPOSE_TLS)
        eku = r->role == PKI_ROLE_OPERATOR ? "clientAuth" : "serverAuth,clientAuth";
    X509V3_set_ctx(&ctx, ca->cert, x, NULL, NULL, 0);
    rc = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE", e);
    if (rc == PX_OK)
        rc = add_ext(x, &ctx, NID_key_usage, ku, e);
    if (rc == PX_OK && eku != NULL)
        rc = add_ext(x, &ctx, NID_ext_key_usage, eku, e);
    if (rc == PX_OK)
        rc = add_ext(x, &ctx, NID_subject_key_identifier, "hash", e);
    if (rc == PX_OK)
        rc = add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always", e);
    if (rc == PX_OK)
        rc = san_value(r, san, sizeof san, e);
    if (rc == PX_OK && san[0] != 0)
        rc = add_ext(x, &ctx, NID_subject_alt_name, san, e);
    return rc;
}

static int check_request(const pki_issue_req *r, px_error *e)
{
    if ((unsigned)r->role >= PKI_ROLE_COUNT || (unsigned)r->purpose >= PKI_PURPOSE_COUNT)
        return px_error_set(e, PX_EINVAL, "certificate: unknown role or purpose");
    if (!pki_role_allows(r->role, r->purpose))
        return px_error_set(e, PX_EINVAL, "certificate: role %s cannot have purpose %s",
                            pki_role_name(r->role), pki_purpose_name(r->purpose));
    if (r->days < 1 || r->days > PX_PKI_DAYS_MAX)
        return px_error_set(e, PX_ERANGE, "certificate validity: 1 to %d days", PX_PKI_DAYS_MAX);
    if (r->csr_pem != NULL && r->pub_point != NULL)
        return px_error_set(e, PX_EINVAL, "certificate: a request or a public key, not both");
    if (r->pub_point != NULL && r->purpose != PKI_PURPOSE_KEY_AGREEMENT)
        return px_error_set(e, PX_EINVAL,
                            "certificate: a bare public key (no proof of possession) "
                            "is taken only for a key-agreement key");
    if (r->san[0] != NULL && r->purpose != PKI_PURPOSE_TLS)
        return px_error_set(e, PX_EINVAL, "certificate: host names are for TLS certificates");
    return PX_OK;
}

int pki_ca_issue(pki_ca *ca, const pki_issue_req *r, char **cert_pem, char **key_pem,
                 pki_cert_info *info, px_error *e)
{
    char cn[PX_PKI_CN_MAX], p[PX_PATH_MAX];
    X509 *x = NULL;
    EVP_PKEY *k = NULL;
    X509_NAME *nm;
    pki_cert_info ci;
    pki_cert_row row;
    int rc, fd = -1;
    *cert_pem = NULL;
    if (key_pem)
        *key_pem = NULL;
    if ((rc = check_request(r, e)) != PX_OK || (rc = pki_cn_make(r->role, r->name, cn, e)) != PX_OK)
        return rc;
    if ((k = subject_key(r, key_pem, e)) == NULL)
        return e && e->code ? e->code : PX_ECRYPTO;
    if (!pki_pkey_is_p256(k))
        rc = px_error_set(e, PX_EPERM, "certificate: the key is not EC P-256");
    if (rc == PX_OK && ((x = X509_new()) == NULL || X509_set_version(x, X509_VERSION_3) != 1 ||
                        (rc = random_serial(X509_get_serialNumber(x), e)) != PX_OK ||
                        !set_validity(x, r->days) || X509_set_pubkey(x, k) != 1 ||
                        X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) != 1))
        rc = rc != PX_OK ? rc : pki_ossl_fail(e, PX_ECRYPTO, "certificate");
    nm = x ? X509_get_subject_name(x) : NULL;
    if (rc == PX_OK &&
        (X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_UTF8, (const unsigned char *)"possum", -1, -1,
                                    0) != 1 ||
         X509_NAME_add_entry_by_txt(nm, "OU", MBSTRING_UTF8,
                                    (const unsigned char *)pki_role_name(r->role), -1, -1,
                                    0) != 1 ||
         X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                    0) != 1))
        rc = pki_ossl_fail(e, PX_ECRYPTO, "certificate subject");
    if (rc == PX_OK)
        rc = leaf_extensions(ca, x, r, e);
    if (rc == PX_OK && X509_sign(x, ca->key, EVP_sha256()) <= 0)
        rc = pki_ossl_fail(e, PX_ECRYPTO, "certificate: cannot sign");
    if (rc == PX_OK)
        rc = pki_x509_info(x, &ci, e);
    if (rc == PX_OK) {
        memset(&row, 0, sizeof row);
        row.status = 'V';
        px_strlcpy(row.serial, ci.serial, sizeof row.serial);
        row.role = r->role;
        row.purpose = r->purpose;
        px_strlcpy(row.cn, cn, sizeof row.cn);
        row.issued_ms = px_now_ms();
        row.not_after_ms = ci.not_after_ms;
        px_strlcpy(row.fingerprint_hex, ci.fingerprint_hex, sizeof row.fingerprint_hex);
        rc = lock_dir(ca->dir, &fd, e);
    }
    if (rc == PX_OK) {
        char name[PX_PKI_SERIAL_HEX_MAX + 16];
        snprintf(name, sizeof name, CA_CERTS "/%s.pem", ci.serial);
        if ((rc = path_in(ca->dir, name, p, e)) == PX_OK)
            rc = write_x509(p, x, 0644, e);
    }
    if (rc == PX_OK) /* last: a certificate is issued once its line is in the index */
        rc = index_append(ca->dir, &row, e);
    unlock_dir(fd);
    if (rc == PX_OK)
        rc = pem_of_x509(x, cert_pem, e);
    if (rc == PX_OK && info != NULL)
        *info = ci;
    if (rc == PX_OK)
        px_info("pki", "issued %s certificate %s (%s) serial %s", pki_purpose_name(r->purpose), cn,
                pki_role_name(r->role), ci.serial);
    if (rc != PX_OK && key_pem != NULL && *key_pem != NULL) {
        OPENSSL_cleanse(*key_pem, strlen(*key_pem));
        free(*key_pem);
        *key_pem = NULL;
    }
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

/* ---- revoke, CRL, list ----------------------------------------------------------------- */

int pki_ca_revoke(pki_ca *ca, const char *serial, const char *cn, const char *reason,
                  int64_t crl_days, size_t *count, px_error *e)
{
    index_rows ix = {0};
    int code, rc, fd = -1;
    size_t n = 0;
    *count = 0;
    if (reason == NULL)
        reason = "unspecified";
    if (pki_reason_code(reason, &code) != PX_OK)
        return px_error_set(e, PX_EINVAL,
                            "revocation reason %s: expected unspecified, "
                            "keyCompromise, affiliationChanged, superseded or "
                            "cessationOfOperation",
                            reason);
    if ((serial == NULL) == (cn == NULL))
        return px_error_set(e, PX_EINVAL, "revoke: a serial number or a CN");
    if ((rc = lock_dir(ca->dir, &fd, e)) != PX_OK)
        return rc;
    rc = index_read(ca->dir, &ix, e);
    for (size_t i = 0; rc == PX_OK && i < ix.n; i++) {
        pki_cert_row *r = &ix.rows[i];
        int match = serial ? strcasecmp(r->serial, serial) == 0 : strcmp(r->cn, cn) == 0;
        if (!match || r->status != 'V')
            continue;
        r->status = 'R';
        r->revoked_ms = px_now_ms();
        px_strlcpy(r->reason, reason, sizeof r->reason);
        px_info("pki", "revoked certificate %s (%s), reason %s", r->serial, r->cn, reason);
        n++;
    }
    if (rc == PX_OK && n == 0)
        rc = px_error_set(e, PX_ENOTFOUND, "revoke: no valid certificate with %s %s",
                          serial ? "serial" : "CN", serial ? serial : cn);
    if (rc == PX_OK)
        rc = index_write(ca->dir, &ix, e);
    if (rc == PX_OK)
        rc = crl_write(ca, &ix, crl_days, e);
    unlock_dir(fd);
    free(ix.rows);
    if (rc == PX_OK)
        *count = n;
    return rc;
}

int pki_ca_crl(pki_ca *ca, int64_t crl_days, px_error *e)
{
    index_rows ix = {0};
    int fd = -1, rc = lock_dir(ca->dir, &fd, e);
    if (rc == PX_OK)
        rc = index_read(ca->dir, &ix, e);
    if (rc == PX_OK)
        rc = crl_write(ca, &ix, crl_days, e);
    unlock_dir(fd);
    free(ix.rows);
    return rc;
}

int pki_ca_list(const char *dir, int (*fn)(void *ud, const pki_cert_row *row), void *ud,
                px_error *e)
{
    index_rows ix = {0};
    int rc = index_read(dir, &ix, e);
    for (size_t i = 0; rc == PX_OK && i < ix.n; i++) {
        int stop = fn(ud, &ix.rows[i]);
        if (stop != 0) {
            rc = stop;
            break;
        }
    }
    free(ix.rows);
    return rc;
}
