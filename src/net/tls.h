/*
 * tls.h: OpenSSL contexts for possum's listeners and clients. TLS 1.2 and 1.3 only.
 *
 * Server: certificate chain + key; with a CA file, client certificates are verified against
 * it (and required when require_client_cert is set: mutual TLS); with a CRL file, every
 * client certificate is checked against it (X509_V_FLAG_CRL_CHECK), so a revoked one fails
 * the handshake.
 * Client: the CA file is required (nothing is trusted by default); an optional certificate
 * and key are presented for mutual TLS; the server's certificate must match the name the
 * caller connects to (DNS name or IP address), or server_name when set.
 *
 * Authorisation is the caller's: after the handshake, net_tls_peer_cn() gives the verified
 * peer certificate's subject CN.
 */
#ifndef NET_TLS_H
#define NET_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>
#include "lib/err.h"
#include "lib/limits.h"

typedef struct net_tls_config {
    char cert[PX_PATH_MAX];        /* PEM certificate chain; "" = no certificate */
    char key[PX_PATH_MAX];         /* PEM private key for cert */
    char ca[PX_PATH_MAX];          /* PEM CA bundle to verify the peer; "" = none */
    char crl[PX_PATH_MAX];         /* PEM CRL(s) checked against the peer's certificate */
    char server_name[PX_TLS_NAME_MAX]; /* client: name to expect instead of the host */
    int require_client_cert;       /* server: 1 = mutual TLS, refuse clients without one */
} net_tls_config;

/* 1 if cfg asks for TLS at all (a certificate for a server, a CA for a client). */
int net_tls_is_enabled(const net_tls_config *cfg);

/* Build a server context. Errors name the file and OpenSSL's reason. */
int net_tls_server_ctx(const net_tls_config *cfg, SSL_CTX **out, px_error *e);

/* Build a client context (cfg->ca required). */
int net_tls_client_ctx(const net_tls_config *cfg, SSL_CTX **out, px_error *e);

/* Reference counted: every user of a context may free it. NULL is fine. */
void net_tls_ctx_free(SSL_CTX *ctx);

/* New client SSL on ctx that checks the server's certificate against name (a DNS name or
 * an IP literal) and sends it as SNI when it is a DNS name. */
int net_tls_client_ssl(SSL_CTX *ctx, const char *name, SSL **out, px_error *e);

/* Subject CN of the verified peer certificate. PX_ENOTFOUND if the peer sent none (or the
 * handshake is not complete), PX_ETOOBIG if it does not fit outsz. */
int net_tls_peer_cn(SSL *ssl, char *out, size_t outsz);

/* The last OpenSSL error as text, for messages ("" if none); clears the error queue. */
const char *net_tls_last_error(char *buf, size_t bufsz);

#endif
