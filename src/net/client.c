/*
 * client.c: the blocking framed client (net.h) for tools, simulators and tests. A
 * non-blocking socket under poll() so every step has a deadline; TLS through the same loop.
 */
#include "net/net.h"
#include "lib/time.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct net_client {
    int fd;
    SSL *ssl;
    int64_t io_timeout_ms;
};

/* Wait for events on fd until the monotonic deadline. */
static int wait_fd(int fd, short events, int64_t deadline, px_error *e)
{
    struct pollfd p = {.fd = fd, .events = events, .revents = 0};
    for (;;) {
        int64_t left = deadline - px_mono_ms();
        int n;
        if (left <= 0)
            return px_error_set(e, PX_ETIMEOUT, "net: timed out");
        n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0)
            return PX_OK;
        if (n < 0 && errno != EINTR)
            return px_error_set(e, PX_ENET, "net: poll: %s", strerror(errno));
    }
}

static int connect_addr(const struct addrinfo *ai, int64_t deadline, int *out, px_error *e)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1, err = 0, rc;
    socklen_t errlen = sizeof err;
    if (fd < 0)
        return px_error_set(e, PX_ENET, "net: socket: %s", strerror(errno));
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
        rc = px_error_set(e, PX_ENET, "net: connect: %s", strerror(errno));
        close(fd);
        return rc;
    }
    rc = wait_fd(fd, POLLOUT, deadline, e);
    if (rc == PX_OK && (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) != 0 || err != 0))
        rc = px_error_set(e, PX_ENET, "net: connect: %s", strerror(err ? err : errno));
    if (rc != PX_OK) {
        close(fd);
        return rc;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *out = fd;
    return PX_OK;
}

static int tcp_connect(const char *host, int port, int64_t deadline, int *fd, px_error *e)
{
    struct addrinfo hints, *res = NULL;
    char portstr[8];
    int rc, gai;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(portstr, sizeof portstr, "%d", port);
    gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0)
        return px_error_set(e, PX_ENET, "net: %s: %s", host, gai_strerror(gai));
    rc = px_error_set(e, PX_ENET, "net: %s: no address", host);
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        rc = connect_addr(ai, deadline, fd, e);
        if (rc == PX_OK || rc == PX_ETIMEOUT)
            break;
    }
    freeaddrinfo(res);
    if (rc != PX_OK)
        px_error_prefix(e, "%s:%d: ", host, port);
    return rc;
}

/* Is err a fatal alert a TLS server sends only while it refuses the handshake (RFC 8446
 * 6.2)? TLS 1.3 servers check the client's certificate after the client's side of the
 * handshake is done, so the client reads that alert at its first write or read instead of
 * in SSL_connect; either way nothing it sent reached the server's application. */
static int is_handshake_refusal(unsigned long err)
{
    if (ERR_GET_LIB(err) != ERR_LIB_SSL)
        return 0;
    switch (ERR_GET_REASON(err)) {
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
    case SSL_R_TLSV1_ALERT_DECRYPT_ERROR:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED: return 1;
    default: return 0;
    }
}

/* After an SSL_* call returned r <= 0: wait as OpenSSL asks, or fail. */
static int ssl_wait(net_client *c, int r, int64_t deadline, const char *what, px_error *e)
{
    char why[160];
    const char *reason;
    unsigned long err;
    long verify;
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ: return wait_fd(c->fd, POLLIN, deadline, e);
    case SSL_ERROR_WANT_WRITE: return wait_fd(c->fd, POLLOUT, deadline, e);
    case SSL_ERROR_ZERO_RETURN: return px_error_set(e, PX_ENET, "net: peer closed the connection");
    default:
        err = ERR_peek_error();
        if (is_handshake_refusal(err)) {
            reason = ERR_reason_error_string(err);
            ERR_clear_error();
            return px_error_set(e, PX_EPERM, "net: TLS: the server refused the handshake: %s",
                                reason != NULL ? reason : "alert");
        }
        verify = SSL_get_verify_result(c->ssl);
        net_tls_last_error(why, sizeof why);
        if (verify != X509_V_OK)
            return px_error_set(e, PX_EPERM, "net: TLS %s: certificate: %s", what,
                                X509_verify_cert_error_string(verify));
        return px_error_set(e, PX_ENET, "net: TLS %s failed: %s", what,
                            why[0] ? why : "connection closed");
    }
}

static int tls_handshake(net_client *c, SSL_CTX *ctx, const char *host, int64_t deadline,
                         px_error *e)
{
    int rc = net_tls_client_ssl(ctx, host, &c->ssl, e);
    if (rc != PX_OK)
        return rc;
    if (SSL_set_fd(c->ssl, c->fd) != 1)
        return px_error_set(e, PX_ECRYPTO, "net: SSL_set_fd failed");
    for (;;) {
        int r = SSL_connect(c->ssl);
        if (r == 1)
            return PX_OK;
        rc = ssl_wait(c, r, deadline, "handshake", e);
        if (rc != PX_OK)
            return rc;
    }
}

int net_client_connect(const char *host, int port, SSL_CTX *tls, int64_t timeout_ms,
                       net_client **out, px_error *e)
{
    int64_t deadline = px_mono_ms() + timeout_ms;
    net_client *c;
    int rc = net_init(e);
    *out = NULL;
    if (rc != PX_OK)
        return rc;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return px_error_set(e, PX_ENOMEM, "net: out of memory");
    c->fd = -1;
    c->io_timeout_ms = timeout_ms;
    rc = tcp_connect(host, port, deadline, &c->fd, e);
    if (rc == PX_OK && tls != NULL)
        rc = tls_handshake(c, tls, host, deadline, e);
    if (rc != PX_OK) {
        net_client_close(c);
        return rc;
    }
    *out = c;
    return PX_OK;
}

static int read_some(net_client *c, uint8_t *p, size_t cap, size_t *got, int64_t deadline,
                     px_error *e);

/* A write on a TLS connection failed (rc): the server may have refused the handshake and
 * closed, its alert still unread (TLS 1.3, is_handshake_refusal). That refusal is the
 * error to report; anything else leaves rc and e as they were. */
static int write_failed(net_client *c, int rc, px_error *e)
{
    uint8_t b[64];
    size_t got = 0;
    px_error alert = {0};
    if (c->ssl == NULL || rc != PX_ENET)
        return rc;
    if (read_some(c, b, sizeof b, &got, px_mono_ms() + PX_TLS_ALERT_WAIT_MS, &alert) != PX_EPERM)
        return rc;
    if (e != NULL)
        *e = alert;
    return PX_EPERM;
}

static int write_all(net_client *c, const uint8_t *p, size_t len, px_error *e)
{
    int64_t deadline = px_mono_ms() + c->io_timeout_ms;
    while (len > 0) {
        ssize_t n;
        int rc;
        if (c->ssl != NULL) {
            int r = SSL_write(c->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
            if (r > 0) {
                p += r;
                len -= (size_t)r;
                continue;
            }
            rc = write_failed(c, ssl_wait(c, r, deadline, "write", e), e);
        } else {
            n = send(c->fd, p, len, MSG_NOSIGNAL);
            if (n > 0) {
                p += n;
                len -= (size_t)n;
                continue;
            }
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                return px_error_set(e, PX_ENET, "net: send: %s", strerror(errno));
            rc = wait_fd(c->fd, POLLOUT, deadline, e);
        }
        if (rc != PX_OK)
            return rc;
    }
    return PX_OK;
}

/* Some bytes (at least one), or an error (PX_ENET on end of stream). */
static int read_some(net_client *c, uint8_t *p, size_t cap, size_t *got, int64_t deadline,
                     px_error *e)
{
    for (;;) {
        ssize_t n;
        int rc;
        if (c->ssl != NULL) {
            int r = SSL_read(c->ssl, p, cap > INT32_MAX ? INT32_MAX : (int)cap);
            if (r > 0) {
                *got = (size_t)r;
                return PX_OK;
            }
            rc = ssl_wait(c, r, deadline, "read", e);
        } else {
            n = recv(c->fd, p, cap, 0);
            if (n > 0) {
                *got = (size_t)n;
                return PX_OK;
            }
            if (n == 0)
                return px_error_set(e, PX_ENET, "net: peer closed the connection");
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                return px_error_set(e, PX_ENET, "net: recv: %s", strerror(errno));
            rc = wait_fd(c->fd, POLLIN, deadline, e);
        }
        if (rc != PX_OK)
            return rc;
    }
}

static int read_exact(net_client *c, uint8_t *p, size_t len, int64_t deadline, px_error *e)
{
    while (len > 0) {
        size_t got;
        int rc = read_some(c, p, len, &got, deadline, e);
        if (rc != PX_OK)
            return rc;
        p += got;
        len -= got;
    }
    return PX_OK;
}

int net_client_recv_raw(net_client *c, uint8_t *buf, size_t cap, size_t *len, int64_t timeout_ms,
                        px_error *e)
{
    *len = 0;
    if (cap == 0)
        return px_error_set(e, PX_EINVAL, "net: no room to receive into");
    return read_some(c, buf, cap, len, px_mono_ms() + timeout_ms, e);
}

int net_client_send_raw(net_client *c, const void *data, size_t len, px_error *e)
{
    return write_all(c, data, len, e);
}

int net_client_send_frame(net_client *c, const void *data, size_t len, px_error *e)
{
    uint8_t *buf;
    int rc;
    if (len > PX_FRAME_MAX_CEILING)
        return px_error_set(e, PX_ETOOBIG, "net: frame of %zu bytes (at most %d)", len,
                            PX_FRAME_MAX_CEILING);
    buf = malloc(len + 2);
    if (buf == NULL)
        return px_error_set(e, PX_ENOMEM, "net: out of memory");
    buf[0] = (uint8_t)(len >> 8);
    buf[1] = (uint8_t)len;
    if (len > 0)
        memcpy(buf + 2, data, len);
    rc = write_all(c, buf, len + 2, e);
    free(buf);
    return rc;
}

int net_client_recv_frame(net_client *c, uint8_t *buf, size_t cap, size_t *len, int64_t timeout_ms,
                          px_error *e)
{
    int64_t deadline = px_mono_ms() + timeout_ms;
    uint8_t hdr[2];
    size_t n;
    int rc;
    *len = 0;
    do {
        rc = read_exact(c, hdr, 2, deadline, e);
        if (rc != PX_OK)
            return rc;
        n = ((size_t)hdr[0] << 8) | hdr[1];
    } while (n == 0); /* keep-alives */
    if (n > cap)
        return px_error_set(e, PX_ETOOBIG, "net: frame of %zu bytes, room for %zu", n, cap);
    rc = read_exact(c, buf, n, deadline, e);
    if (rc == PX_OK)
        *len = n;
    return rc;
}

int net_client_peer_cn(net_client *c, char *out, size_t outsz)
{
    return net_tls_peer_cn(c->ssl, out, outsz);
}

void net_client_close(net_client *c)
{
    if (c == NULL)
        return;
    if (c->ssl != NULL) {
        if (SSL_is_init_finished(c->ssl))
            SSL_shutdown(c->ssl); /* best effort close_notify; non-blocking */
        SSL_free(c->ssl);
        ERR_clear_error();
    }
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}
