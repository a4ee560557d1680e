/* nettest.c: see nettest.h. */
#include "nettest.h"
#include "lib/time.h"

#include <event2/event.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- PKI -------------------------------------------------------------------------- */

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return 0;
    ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* A certificate for key, signed by (issuer, issuer_key), or self-signed when issuer NULL. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, long serial, X509 *issuer,
                       EVP_PKEY *issuer_key, int is_ca)
{
    X509 *x = X509_new();
    X509 *signer;
    int ok;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    signer = issuer ? issuer : x;
    X509_set_issuer_name(x, X509_get_subject_name(signer));
    ok = add_ext(x, signer, NID_subject_key_identifier, "hash");
    if (is_ca) {
        ok &= add_ext(x, signer, NID_basic_constraints, "critical,CA:TRUE");
        ok &= add_ext(x, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        ok &= add_ext(x, signer, NID_basic_constraints, "CA:FALSE");
        ok &= add_ext(x, signer, NID_authority_key_identifier, "keyid");
        ok &= add_ext(x, signer, NID_key_usage, "critical,digitalSignature");
        ok &= add_ext(x, signer, NID_ext_key_usage, "serverAuth,clientAuth");
        ok &= add_ext(x, signer, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    }
    if (!ok || X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) == 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static int write_cert(const char *path, X509 *x)
{
    FILE *f = fopen(path, "w");
    int ok = f != NULL && PEM_write_X509(f, x) == 1;
    if (f != NULL)
        fclose(f);
    return ok;
}

static int write_key(const char *path, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    int ok = f != NULL && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1;
    if (f != NULL)
        fclose(f);
    chmod(path, 0600);
    return ok;
}

static int write_crl(const char *path, X509 *ca, EVP_PKEY *ca_key, long revoked_serial)
{
    X509_CRL *crl = X509_CRL_new();
    X509_REVOKED *r = X509_REVOKED_new();
    ASN1_TIME *t = ASN1_TIME_new();
    ASN1_INTEGER *serial = ASN1_INTEGER_new();
    FILE *f;
    int ok = 1;
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
    X509_gmtime_adj(t, -60);
    X509_CRL_set1_lastUpdate(crl, t);
    X509_REVOKED_set_revocationDate(r, t);
    X509_gmtime_adj(t, 86400);
    X509_CRL_set1_nextUpdate(crl, t);
    ASN1_INTEGER_set(serial, revoked_serial);
    X509_REVOKED_set_serialNumber(r, serial);
    X509_CRL_add0_revoked(crl, r);
    X509_CRL_sort(crl);
    ok &= X509_CRL_sign(crl, ca_key, EVP_sha256()) > 0;
    f = fopen(path, "w");
    ok &= f != NULL && PEM_write_X509_CRL(f, crl) == 1;
    if (f != NULL)
        fclose(f);
    ASN1_INTEGER_free(serial);
    ASN1_TIME_free(t);
    X509_CRL_free(crl);
    return ok;
}

static int leaf(const char *cert_path, const char *key_path, const char *cn, long serial, X509 *ca,
                EVP_PKEY *ca_key)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = k ? make_cert(k, cn, serial, ca, ca_key, 0) : NULL;
    int ok = x != NULL && write_cert(cert_path, x) && write_key(key_path, k);
    X509_free(x);
    EVP_PKEY_free(k);
    return ok;
}

#define PATH(field, name) snprintf(c->field, sizeof c->field, "%s/%s", c->dir, name)

int nt_certs_make(nt_certs *c)
{
    EVP_PKEY *k1 = EVP_EC_gen("P-256"), *k2 = EVP_EC_gen("P-256");
    X509 *ca1 = NULL, *ca2 = NULL;
    int ok;
    snprintf(c->dir, sizeof c->dir, "/tmp/possum-net-test-XXXXXX");
    if (mkdtemp(c->dir) == NULL || k1 == NULL || k2 == NULL)
        return -1;
    PATH(ca, "ca.pem");
    PATH(ca2, "ca2.pem");
    PATH(crl, "crl.pem");
    PATH(server_cert, "server.pem");
    PATH(server_key, "server.key");
    PATH(client_cert, "client.pem");
    PATH(client_key, "client.key");
    PATH(rogue_cert, "rogue.pem");
    PATH(rogue_key, "rogue.key");
    PATH(revoked_cert, "revoked.pem");
    PATH(revoked_key, "revoked.key");
    ca1 = make_cert(k1, "possum test CA", 1, NULL, NULL, 1);
    ca2 = make_cert(k2, "other CA", 1, NULL, NULL, 1);
    ok = ca1 && ca2 && write_cert(c->ca, ca1) && write_cert(c->ca2, ca2) &&
         leaf(c->server_cert, c->server_key, "localhost", 10, ca1, k1) &&
         leaf(c->client_cert, c->client_key, "terminal-1", 11, ca1, k1) &&
         leaf(c->revoked_cert, c->revoked_key, "revoked", 12, ca1, k1) &&
         leaf(c->rogue_cert, c->rogue_key, "rogue", 13, ca2, k2) && write_crl(c->crl, ca1, k1, 12);
    X509_free(ca1);
    X509_free(ca2);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    return ok ? 0 : -1;
}

void nt_certs_remove(const nt_certs *c)
{
    const char *const files[] = {c->ca,         c->ca2,          c->crl,        c->server_cert,
                                 c->server_key, c->client_cert,  c->client_key, c->rogue_cert,
                                 c->rogue_key,  c->revoked_cert, c->revoked_key};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(files[i]);
    rmdir(c->dir);
}

/* ---- loop thread ------------------------------------------------------------------ */

static void keep_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

void nt_loop_init(nt_loop *l)
{
    struct timeval tv = {3600, 0};
    memset(l, 0, sizeof *l);
    if (net_base_new(&l->base, NULL) != PX_OK)
        abort();
    l->keep = event_new(l->base, -1, EV_PERSIST, keep_cb, NULL);
    event_add(l->keep, &tv);
}

static void *loop_main(void *arg)
{
    nt_loop *l = arg;
    event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

void nt_loop_start(nt_loop *l)
{
    l->running = 1;
    pthread_create(&l->thread, NULL, loop_main, l);
}

void nt_loop_stop(nt_loop *l)
{
    if (!l->running)
        return;
    event_base_loopbreak(l->base);
    pthread_join(l->thread, NULL);
    l->running = 0;
}

void nt_loop_free(nt_loop *l)
{
    nt_loop_stop(l);
    event_free(l->keep);
    net_base_free(l->base);
}

typedef struct call_rec {
    void (*fn)(void *);
    void *arg;
    int done;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} call_rec;

static void call_tramp(void *arg)
{
    call_rec *r = arg;
    r->fn(r->arg);
    pthread_mutex_lock(&r->mu);
    r->done = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

void nt_loop_call(nt_loop *l, void (*fn)(void *), void *arg)
{
    call_rec r = {fn, arg, 0, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
    if (!l->running) {
        fn(arg);
        return;
    }
    if (net_post(l->base, call_tramp, &r) != PX_OK)
        abort();
    pthread_mutex_lock(&r.mu);
    while (!r.done)
        pthread_cond_wait(&r.cv, &r.mu);
    pthread_mutex_unlock(&r.mu);
}

typedef struct cond_rec {
    int (*cond)(void *);
    void *arg;
    int result;
} cond_rec;

static void cond_tramp(void *arg)
{
    cond_rec *r = arg;
    r->result = r->cond(r->arg);
}

int nt_wait_for(nt_loop *l, int (*cond)(void *), void *arg, int64_t timeout_ms)
{
    int64_t deadline = px_mono_ms() + timeout_ms;
    cond_rec r = {cond, arg, 0};
    for (;;) {
        nt_loop_call(l, cond_tramp, &r);
        if (r.result)
            return 1;
        if (px_mono_ms() > deadline)
            return 0;
        usleep(10000);
    }
}

/* ---- HTTP ------------------------------------------------------------------------- */

static long content_length(const char *head)
{
    const char *p = head;
    while ((p = strchr(p, '\n')) != NULL) {
        p++;
        if (strncasecmp(p, "Content-Length:", 15) == 0)
            return strtol(p + 15, NULL, 10);
    }
    return 0;
}

int nt_http_exchange(net_client *c, const char *req, size_t reqlen, int head_only, nt_resp *r)
{
    static char buf[sizeof r->head + sizeof r->body];
    static net_client *carry_for; /* bytes past the last response belong to the next one */
    static size_t carry;
    size_t have = carry_for == c ? carry : 0, got, hl = 0;
    long cl = 0;
    char *end;
    memset(r, 0, sizeof *r);
    r->status = -1;
    if (reqlen > 0 && net_client_send_raw(c, req, reqlen, NULL) != PX_OK)
        return -1;
    for (;;) {
        buf[have] = 0;
        if (hl == 0 && (end = strstr(buf, "\r\n\r\n")) != NULL) {
            hl = (size_t)(end - buf) + 4;
            if (hl >= sizeof r->head)
                return -1;
            memcpy(r->head, buf, hl);
            r->head[hl] = 0;
            sscanf(buf, "HTTP/1.%*d %d", &r->status);
            cl = head_only ? 0 : content_length(r->head);
            if (cl < 0 || (size_t)cl >= sizeof r->body)
                return -1;
        }
        if (hl > 0 && have >= hl + (size_t)cl)
            break;
        if (have + 1 >= sizeof buf ||
            net_client_recv_raw(c, (uint8_t *)buf + have, sizeof buf - have - 1, &got, 5000,
                                NULL) != PX_OK)
            return -1;
        have += got;
    }
    memcpy(r->body, buf + hl, (size_t)cl);
    r->body[cl] = 0;
    r->body_len = (size_t)cl;
    carry_for = c;
    carry = have - hl - (size_t)cl;
    memmove(buf, buf + hl + cl, carry);
    return r->status;
}

int nt_http(int port, const char *req, nt_resp *r)
{
    net_client *c;
    int status;
    if (net_client_connect("127.0.0.1", port, NULL, 5000, &c, NULL) != PX_OK)
        return -1;
    status = nt_http_exchange(c, req, strlen(req), strncmp(req, "HEAD ", 5) == 0, r);
    net_client_close(c);
    return status;
}

const char *nt_resp_header(const nt_resp *r, const char *name, char *out, size_t outsz)
{
    size_t n = strlen(name);
    const char *p = r->head;
    while ((p = strchr(p, '\n')) != NULL) {
        p++;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1, *e;
            while (*v == ' ')
                v++;
            e = strstr(v, "\r\n");
            snprintf(out, outsz, "%.*s", (int)(e ? e - v : (long)strlen(v)), v);
            return out;
        }
    }
    return NULL;
}

int64_t nt_metric(const char *name, const char *labels)
{
    int64_t v = 0;
    if (net_metrics_lookup(name, labels, &v) != PX_OK)
        return 0;
    return v;
}
