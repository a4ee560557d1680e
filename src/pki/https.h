/*
 * https.h: a small blocking HTTPS/JSON client for the certificate-authenticated links of
 * seed 001: operator terminal -> MTMS, MTMS -> KMS (mutual TLS), terminal -> KMS (server
 * authentication). Built on net's blocking client (net/net.h): TLS 1.2/1.3, the server's
 * certificate checked against the CA and the host name, a client certificate when one is
 * configured. One connection, kept alive between calls; every step has a deadline.
 *
 * Not for the event loop: a service calls it from a worker thread (the MTMS outbox does).
 */
#ifndef PX_PKI_HTTPS_H
#define PX_PKI_HTTPS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/limits.h"
#include "net/tls.h"

typedef struct pki_https pki_https;

/* url: "https://host:port[/prefix]" (or "http://" with tls NULL or without a CA, for tests
 * of plain listeners). tls: ca (required for https), cert/key for mutual TLS, crl to check
 * the server's certificate against. Nothing is connected yet. */
int pki_https_open(const char *url, const net_tls_config *tls, int64_t timeout_ms, pki_https **out,
                   px_error *e);
void pki_https_close(pki_https *c); /* NULL is fine */

/* One request: method and path (appended to the URL's prefix), body (NULL: none; borrowed)
 * sent as JSON. *status gets the HTTP status; *reply the body parsed as JSON (NULL when the
 * body is empty or not JSON; caller decrefs). A connection the server closed between calls
 * is reopened once. PX_ENET / PX_ETIMEOUT / PX_EPERM (TLS: the server's certificate, or ours
 * refused) with the reason. */
int pki_https_call(pki_https *c, const char *method, const char *path, const json_t *body,
                   long *status, json_t **reply, px_error *e);

/* The CN of the server's certificate on the last connection ("" without TLS), kept after
 * the server closed it, so the last answer can be attributed. */
const char *pki_https_peer_cn(const pki_https *c);

/* The "message" of an error reply ({"error":{"message":...}}), or fallback. */
const char *pki_https_error_message(const json_t *reply, const char *fallback);

/* Drop the connection (the next call reconnects). */
void pki_https_disconnect(pki_https *c);

#endif
