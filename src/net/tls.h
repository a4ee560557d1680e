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
 * peer certificate's subject CN. A handshake a server refused is described by
 * net_tls_refusal_fill() (why, and what certificate the client offered): listeners report
 * it through net_listener_config.on_tls_refused (net.h).
 */
#ifndef NET_TLS_H
#define NET_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>
#include "lib/err.h"
#include "lib/limits.h"

typedef struct net_tls_config {
    char cert[PX_PATH_MAX];            /* PEM certificate chain; "" = no certificate */
    char key[PX_PATH_MAX];             /* PEM private key for cert */
    char ca[PX_PATH_MAX];              /* PEM CA bundle to verify the peer; "" = none */
    char crl[PX_PATH_MAX];             /* PEM CRL(s) checked against the peer's certificate */
    char server_name[PX_TLS_NAME_MAX]; /* client: name to expect instead of the host */
    int require_client_cert;           /* server: 1 = mutual TLS, refuse clients without one */
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

/* ---- refused handshakes (server side) ---------------------------------------------- */

/* What kind of refusal (net_tls_refusal.kind). */
typedef enum net_tls_refusal_kind {
    NET_TLS_REFUSED_CERT = 0, /* the client's certificate failed verification: revoked, from
                                 another CA, expired, ... (verify_error says which) */
    NET_TLS_REFUSED_NO_CERT,  /* a client certificate is required and none was sent */
    NET_TLS_REFUSED_HANDSHAKE /* any other failure after a ClientHello: protocol or version,
                                 an alert from the client, closed or timed out midway */
} net_tls_refusal_kind;

/* One refused TLS handshake, as a listener reports it (net_listener_config.on_tls_refused).
 * The certificate fields are what the client offered: claims, not verified facts (a
 * certificate from another CA can say anything). Text fields are printable ASCII (other
 * bytes become '?') and cut to fit. Nothing secret is in here. */
typedef struct net_tls_refusal {
    const char *listener; /* the listener's name ("mtms") */
    const char *peer;     /* "127.0.0.1:53211" */
    int kind;             /* net_tls_refusal_kind */
    long verify_error;    /* X509_V_ERR_* for NET_TLS_REFUSED_CERT, else 0 (X509_V_OK) */
    /* X509_verify_cert_error_string(verify_error): "certificate revoked", "unable to get
     * local issuer certificate", "certificate has expired", ...; else OpenSSL's reason: "peer
     * did not return a certificate", "tlsv1 alert unknown ca", "unsupported protocol", ...;
     * else "connection closed during the handshake" or "handshake timed out". */
    char reason[PX_TLS_REASON_MAX];
    int has_cert;                            /* the client offered a certificate: */
    char cert_cn[PX_TLS_NAME_MAX];           /* its first subject CN ("" if none) */
    char cert_serial[PX_TLS_SERIAL_HEX_MAX]; /* its serial number, upper-case hex */
    char cert_issuer[PX_TLS_DN_MAX];         /* its issuer, RFC 2253: "CN=possum CA,O=possum" */
    uint64_t unreported; /* refusals of this listener over the rate limit since the previous
                            report (not reported, not logged); 0 mostly */
} net_tls_refusal;

/* "certificate", "no_certificate", "handshake" (metric labels); "unknown" otherwise. */
const char *net_tls_refusal_kind_name(int kind);

/* One line for logs and audit trails: the reason, then what was offered, e.g.
 * "certificate revoked; offered certificate CN operator:bob, serial 5F3A..., issuer
 * CN=possum CA,O=possum (unverified)" or "peer did not return a certificate; no
 * certificate offered". Cut to outsz. */
void net_tls_refusal_text(const net_tls_refusal *r, char *out, size_t outsz);

/* After a server-side handshake on ssl failed with OpenSSL error err (0 if none; timed_out
 * when it never finished): fill r (listener, peer and unreported are left to the caller).
 * Returns 1 if the client got as far as a ClientHello, 0 if it sent none (a bare connect,
 * or bytes that are not TLS): such a peer is counted, never reported. Needs a context made
 * by net_tls_server_ctx() (it remembers the offered certificate during verification). */
int net_tls_refusal_fill(SSL *ssl, unsigned long err, int timed_out, net_tls_refusal *r);

#endif
