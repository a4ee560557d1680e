/*
 * tls.c: server and client SSL_CTX construction (tls.h). TLS 1.2 minimum, forward-secret
 * AEAD suites only for 1.2, no renegotiation, no compression.
 */
#include "net/tls.h"
#include "lib/str.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define TLS12_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"
#define SESSION_ID_CONTEXT "possum"

const char *net_tls_last_error(char *buf, size_t bufsz)
{
    unsigned long first = ERR_get_error();
    if (bufsz == 0)
        return "";
    buf[0] = 0;
    if (first != 0)
        ERR_error_string_n(first, buf, bufsz);
    ERR_clear_error();
    return buf;
}

static int tls_fail(px_error *e, const char *what, const char *path)
{
    char why[160];
    net_tls_last_error(why, sizeof why);
    return px_error_set(e, PX_ECRYPTO, "tls: %s %s: %s", what, path, why);
}

int net_tls_is_enabled(const net_tls_config *cfg)
{
    return cfg->cert[0] != 0 || cfg->ca[0] != 0;
}

static SSL_CTX *ctx_new(const SSL_METHOD *method)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (ctx == NULL)
        return NULL;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}

static int load_cert_key(SSL_CTX *ctx, const net_tls_config *cfg, px_error *e)
{
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert) != 1)
        return tls_fail(e, "cannot load certificate", cfg->cert);
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key, SSL_FILETYPE_PEM) != 1)
        return tls_fail(e, "cannot load key", cfg->key);
    if (SSL_CTX_check_private_key(ctx) != 1)
        return tls_fail(e, "key does not match certificate", cfg->cert);
    return PX_OK;
}

/* Every CRL in a PEM file into the context's store, and turn CRL checking on: from then
 * on a peer certificate whose issuer has no CRL here fails too (fail closed). */
static int load_crl(SSL_CTX *ctx, const char *path, px_error *e)
{
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    STACK_OF(X509_INFO) * infos;
    BIO *bio = BIO_new_file(path, "r");
    int ncrl = 0, rc = PX_OK;
    if (bio == NULL)
        return tls_fail(e, "cannot read CRL", path);
    infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (infos == NULL)
        return tls_fail(e, "cannot parse CRL", path);
    for (int i = 0; i < sk_X509_INFO_num(infos) && rc == PX_OK; i++) {
        X509_INFO *info = sk_X509_INFO_value(infos, i);
        if (info->crl == NULL)
            continue;
        if (X509_STORE_add_crl(store, info->crl) != 1)
            rc = tls_fail(e, "cannot add CRL", path);
        ncrl++;
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    if (rc == PX_OK && ncrl == 0)
        rc = px_error_set(e, PX_ECRYPTO, "tls: no CRL in %s", path);
    if (rc == PX_OK)
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    return rc;
}

/* ---- the offered client certificate, kept for a refusal report ---- */

static pthread_once_t g_offered_once = PTHREAD_ONCE_INIT;
static int g_offered_idx = -1; /* SSL ex_data: the X509 the client offered (a reference) */

static void offered_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                         void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    X509_free(ptr); /* NULL is fine */
}

static void offered_index_once(void)
{
    g_offered_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, offered_free);
}

/* Verification as OpenSSL does it (ok unchanged); on the first call it keeps a reference to
 * the client's leaf certificate: after a failed handshake OpenSSL has dropped it, and a
 * refusal report names it. */
static int server_verify_cb(int ok, X509_STORE_CTX *x)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    X509 *leaf = X509_STORE_CTX_get0_cert(x);
    if (ssl == NULL || leaf == NULL || g_offered_idx < 0 ||
        SSL_get_ex_data(ssl, g_offered_idx) != NULL)
        return ok;
    if (X509_up_ref(leaf) == 1 && SSL_set_ex_data(ssl, g_offered_idx, leaf) != 1)
        X509_free(leaf);
    return ok;
}

static int load_verify(SSL_CTX *ctx, const net_tls_config *cfg, int server, px_error *e)
{
    int mode = SSL_VERIFY_PEER;
    if (SSL_CTX_load_verify_locations(ctx, cfg->ca, NULL) != 1)
        return tls_fail(e, "cannot load CA file", cfg->ca);
    if (server) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca);
        if (names == NULL)
            return tls_fail(e, "no CA names in", cfg->ca);
        SSL_CTX_set_client_CA_list(ctx, names);
        if (cfg->require_client_cert)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    }
    if (server)
        pthread_once(&g_offered_once, offered_index_once);
    SSL_CTX_set_verify(ctx, mode, server ? server_verify_cb : NULL);
    if (cfg->crl[0] != 0)
        return load_crl(ctx, cfg->crl, e);
    return PX_OK;
}

int net_tls_server_ctx(const net_tls_config *cfg, SSL_CTX **out, px_error *e)
{
    SSL_CTX *ctx;
    int rc;
    *out = NULL;
    if (cfg->cert[0] == 0 || cfg->key[0] == 0)
        return px_error_set(e, PX_ECONFIG, "tls: a server needs tls_cert and tls_key");
    if ((cfg->require_client_cert || cfg->crl[0] != 0) && cfg->ca[0] == 0)
        return px_error_set(e, PX_ECONFIG, "tls: client certificates need tls_ca");
    ctx = ctx_new(TLS_server_method());
    if (ctx == NULL)
        return tls_fail(e, "cannot create context", "(server)");
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)SESSION_ID_CONTEXT,
                                   sizeof SESSION_ID_CONTEXT - 1);
    rc = load_cert_key(ctx, cfg, e);
    if (rc == PX_OK && cfg->ca[0] != 0)
        rc = load_verify(ctx, cfg, 1, e);
    if (rc != PX_OK) {
        SSL_CTX_free(ctx);
        return rc;
    }
    *out = ctx;
    return PX_OK;
}

int net_tls_client_ctx(const net_tls_config *cfg, SSL_CTX **out, px_error *e)
{
    SSL_CTX *ctx;
    int rc;
    *out = NULL;
    if (cfg->ca[0] == 0)
        return px_error_set(e, PX_ECONFIG, "tls: a client needs tls_ca");
    if ((cfg->cert[0] == 0) != (cfg->key[0] == 0))
        return px_error_set(e, PX_ECONFIG, "tls: tls_cert and tls_key go together");
    ctx = ctx_new(TLS_client_method());
    if (ctx == NULL)
        return tls_fail(e, "cannot create context", "(client)");
    rc = load_verify(ctx, cfg, 0, e);
    if (rc == PX_OK && cfg->cert[0] != 0)
        rc = load_cert_key(ctx, cfg, e);
    if (rc != PX_OK) {
        SSL_CTX_free(ctx);
        return rc;
    }
    *out = ctx;
    return PX_OK;
}

void net_tls_ctx_free(SSL_CTX *ctx)
{
    SSL_CTX_free(ctx); /* NULL-safe, reference counted */
}

static int is_ip_literal(const char *name)
{
    unsigned char a[16];
    return inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
}

int net_tls_client_ssl(SSL_CTX *ctx, const char *name, SSL **out, px_error *e)
{
    SSL *ssl = SSL_new(ctx);
    int ok;
    *out = NULL;
    if (ssl == NULL)
        return tls_fail(e, "cannot create connection for", name);
    if (is_ip_literal(name)) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1;
    } else {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set1_host(ssl, name) == 1 && SSL_set_tlsext_host_name(ssl, name) == 1;
    }
    if (!ok) {
        SSL_free(ssl);
        return tls_fail(e, "cannot set the expected server name", name);
    }
    *out = ssl;
    return PX_OK;
}

/* The CN only when the chain verified and there is exactly one CN without NUL bytes. */
int net_tls_peer_cn(SSL *ssl, char *out, size_t outsz)
{
    X509 *cert;
    X509_NAME *subject;
    unsigned char *utf8 = NULL;
    int idx, len, rc = PX_ENOTFOUND;
    if (outsz > 0)
        out[0] = 0;
    if (ssl == NULL || SSL_get_verify_result(ssl) != X509_V_OK)
        return PX_ENOTFOUND;
    cert = SSL_get1_peer_certificate(ssl);
    if (cert == NULL)
        return PX_ENOTFOUND;
    subject = X509_get_subject_name(cert);
    idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (idx >= 0 && X509_NAME_get_index_by_NID(subject, NID_commonName, idx) < 0) {
        X509_NAME_ENTRY *entry = X509_NAME_get_entry(subject, idx);
        len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
        if (len < 0 || memchr(utf8, 0, (size_t)len) != NULL)
            rc = PX_EFORMAT;
        else if ((size_t)len >= outsz)
            rc = PX_ETOOBIG;
        else {
            memcpy(out, utf8, (size_t)len);
            out[len] = 0;
            rc = PX_OK;
        }
        OPENSSL_free(utf8);
    }
    X509_free(cert);
    return rc;
}

/* ---- refused handshakes ---- */

const char *net_tls_refusal_kind_name(int kind)
{
    static const char *const names[] = {"certificate", "no_certificate", "handshake"};
    if (kind < NET_TLS_REFUSED_CERT || kind > NET_TLS_REFUSED_HANDSHAKE)
        return "unknown";
    return names[kind];
}

/* Peer-chosen bytes made safe for logs and audit rows: printable ASCII, others '?'. */
static void printable(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = '?';
}

static void offered_cn(X509 *x, char *out, size_t outsz)
{
    X509_NAME *subject = X509_get_subject_name(x);
    int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    unsigned char *utf8 = NULL;
    int len;
    if (idx < 0)
        return;
    len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx)));
    if (len > 0) /* an embedded NUL ends it: what follows is not shown */
        snprintf(out, outsz, "%.*s", len, (const char *)utf8);
    OPENSSL_free(utf8);
}

static void offered_serial(X509 *x, char *out, size_t outsz)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    if (hex != NULL)
        px_strlcpy(out, hex, outsz);
    OPENSSL_free(hex);
    BN_free(bn);
}

static void offered_issuer(X509 *x, char *out, size_t outsz)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int n;
    if (bio == NULL)
        return;
    if (X509_NAME_print_ex(bio, X509_get_issuer_name(x), 0, XN_FLAG_RFC2253) >= 0 &&
        (n = BIO_read(bio, out, (int)outsz - 1)) > 0)
        out[n] = 0;
    BIO_free(bio);
}

/* The certificate the client offered (kept by server_verify_cb), into r. */
static void describe_offered(SSL *ssl, net_tls_refusal *r)
{
    X509 *x = g_offered_idx >= 0 ? SSL_get_ex_data(ssl, g_offered_idx) : NULL;
    if (x == NULL)
        return;
    r->has_cert = 1;
    offered_cn(x, r->cert_cn, sizeof r->cert_cn);
    offered_serial(x, r->cert_serial, sizeof r->cert_serial);
    offered_issuer(x, r->cert_issuer, sizeof r->cert_issuer);
    printable(r->cert_cn);
    printable(r->cert_serial);
    printable(r->cert_issuer);
}

int net_tls_refusal_fill(SSL *ssl, unsigned long err, int timed_out, net_tls_refusal *r)
{
    long verify = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
    const char *why = err != 0 ? ERR_reason_error_string(err) : NULL;
    memset(r, 0, sizeof *r);
    if (ssl == NULL || SSL_get_state(ssl) == TLS_ST_BEFORE)
        return 0; /* no ClientHello: a port probe, or not TLS at all */
    if (verify != X509_V_OK) {
        r->kind = NET_TLS_REFUSED_CERT;
        r->verify_error = verify;
        why = X509_verify_cert_error_string(verify);
    } else if (err != 0 && ERR_GET_LIB(err) == ERR_LIB_SSL &&
               ERR_GET_REASON(err) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
        r->kind = NET_TLS_REFUSED_NO_CERT;
    } else {
        r->kind = NET_TLS_REFUSED_HANDSHAKE;
        if (timed_out)
            why = "handshake timed out";
    }
    px_strlcpy(r->reason, why != NULL ? why : "connection closed during the handshake",
               sizeof r->reason);
    printable(r->reason);
    describe_offered(ssl, r);
    return 1;
}

void net_tls_refusal_text(const net_tls_refusal *r, char *out, size_t outsz)
{
    if (!r->has_cert)
        snprintf(out, outsz, "%s; no certificate offered", r->reason);
    else
        snprintf(out, outsz, "%s; offered certificate CN %s, serial %s, issuer %s (unverified)",
                 r->reason, r->cert_cn[0] ? r->cert_cn : "(none)",
                 r->cert_serial[0] ? r->cert_serial : "?",
                 r->cert_issuer[0] ? r->cert_issuer : "?");
}
