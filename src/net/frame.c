/*
 * frame.c: the framed TCP server (net.h): each message is a 2-byte big-endian length and
 * that many bytes. A length over max_frame is refused as soon as its two bytes arrive,
 * before anything is allocated for the body; frames are copied into one scratch buffer
 * per server (allocated at start-up) for the on_frame callback.
 */
#include "net/conn.h"
#include "lib/log.h"

#include <stdlib.h>
#include <string.h>

struct net_frame_server {
    net_server srv;
    net_frame_callbacks cb;
    uint8_t *scratch; /* max_frame bytes */
    net_metric *m_in, *m_out, *m_oversize, *m_output_full;
};

static net_frame_server *owner_of(net_conn *c)
{
    return c->srv->owner;
}

static void frame_on_open(net_conn *c)
{
    net_frame_server *fs = owner_of(c);
    if (fs->cb.on_open != NULL)
        fs->cb.on_open(fs, c->id, c->peer, fs->cb.user);
}

static void frame_on_close(net_conn *c, int reason)
{
    net_frame_server *fs = owner_of(c);
    px_debug("net", "%s: connection %s closed (%s)", fs->srv.cfg.name, c->peer,
             net_close_reason_name(reason));
    if (fs->cb.on_close != NULL)
        fs->cb.on_close(fs, c->id, reason, fs->cb.user);
}

static void refuse_oversize(net_frame_server *fs, net_conn *c, size_t n)
{
    net_metric_add(net_server_metric(&fs->srv, &fs->m_oversize, "possum_net_frames_rejected_total",
                                     "Frames refused", "reason=\"oversize\"", 0),
                   1);
    px_info("net", "%s: %s announced a %zu-byte frame (limit %lld): connection closed",
            fs->srv.cfg.name, c->peer, n, (long long)fs->srv.cfg.max_frame);
    net_conn_close(c, NET_CLOSE_OVERSIZE, 0);
}

/* Deliver every complete frame buffered, until the connection closes or pauses. */
static void frame_on_input(net_conn *c)
{
    net_frame_server *fs = owner_of(c);
    struct evbuffer *in = net_conn_input(c);
    uint8_t hdr[2];
    size_t n;
    while (c->state == NET_CONN_OPEN && !c->paused) {
        if (evbuffer_copyout(in, hdr, 2) < 2)
            return;
        n = ((size_t)hdr[0] << 8) | hdr[1];
        if (n > (size_t)fs->srv.cfg.max_frame) {
            refuse_oversize(fs, c, n);
            return;
        }
        if (evbuffer_get_length(in) < 2 + n)
            return;
        evbuffer_drain(in, 2);
        net_conn_touch(c);
        if (n == 0) /* keep-alive */
            continue;
        if (PX_BUG(evbuffer_remove(in, fs->scratch, n) != (int)n)) {
            net_conn_close(c, NET_CLOSE_ERROR, 0);
            return;
        }
        net_metric_add(fs->m_in, 1);
        if (fs->cb.on_frame != NULL)
            fs->cb.on_frame(fs, c->id, fs->scratch, n, fs->cb.user);
        net_conn_check_output(c);
    }
}

static const net_proto frame_proto = {frame_on_open, frame_on_input, frame_on_close, NULL};

int net_frame_server_new(struct event_base *base, const net_listener_config *cfg,
                         const net_frame_callbacks *cb, net_frame_server **out, px_error *e)
{
    net_frame_server *fs;
    char labels[64];
    size_t read_high;
    int rc;
    *out = NULL;
    if (cfg->max_frame < 1 || cfg->max_frame > PX_FRAME_MAX_CEILING)
        return px_error_set(e, PX_ECONFIG, "%s: max_frame %lld out of 1..%d", cfg->name,
                            (long long)cfg->max_frame, PX_FRAME_MAX_CEILING);
    fs = calloc(1, sizeof *fs);
    if (fs == NULL || (fs->scratch = malloc((size_t)cfg->max_frame)) == NULL) {
        free(fs);
        return px_error_set(e, PX_ENOMEM, "%s: out of memory", cfg->name);
    }
    if (cb != NULL)
        fs->cb = *cb;
    snprintf(labels, sizeof labels, "listener=\"%s\"", cfg->name);
    fs->m_in = net_metric_counter("possum_net_frames_received_total", "Frames received", labels);
    fs->m_out = net_metric_counter("possum_net_frames_sent_total", "Frames queued to send", labels);
    read_high = 2 * ((size_t)cfg->max_frame + 2) + 4096; /* a frame and the next, in part */
    rc = net_server_init(&fs->srv, base, cfg, &frame_proto, fs, read_high, "framed TCP", e);
    if (rc != PX_OK) {
        free(fs->scratch);
        free(fs);
        return rc;
    }
    *out = fs;
    return PX_OK;
}

void net_frame_server_free(net_frame_server *fs)
{
    if (fs == NULL)
        return;
    net_server_shutdown(&fs->srv);
    free(fs->scratch);
    free(fs);
}

int net_frame_server_port(const net_frame_server *fs)
{
    return fs->srv.port;
}

size_t net_frame_server_conn_count(const net_frame_server *fs)
{
    return fs->srv.nconns;
}

static net_conn *find_open(net_frame_server *fs, uint64_t conn_id)
{
    net_conn *c = net_server_find(&fs->srv, conn_id);
    if (c == NULL || c->state != NET_CONN_OPEN || !c->opened)
        return NULL;
    return c;
}

int net_frame_server_send(net_frame_server *fs, uint64_t conn_id, const void *data, size_t len)
{
    net_conn *c = find_open(fs, conn_id);
    struct evbuffer *out;
    struct evbuffer_iovec v;
    if (c == NULL)
        return PX_ENOTFOUND;
    if (len > (size_t)fs->srv.cfg.max_frame)
        return PX_ETOOBIG;
    out = net_conn_output(c);
    if (evbuffer_get_length(out) + 2 + len > 2 * (size_t)fs->srv.cfg.max_output) {
        net_metric_add(net_server_metric(&fs->srv, &fs->m_output_full,
                                         "possum_net_sends_refused_total", "Sends refused",
                                         "reason=\"output_full\"", 0),
                       1);
        px_info("net", "%s: %s does not read its replies: connection closed", fs->srv.cfg.name,
                c->peer);
        net_conn_close(c, NET_CLOSE_OUTPUT_FULL, 0);
        return PX_ELIMIT;
    }
    if (evbuffer_reserve_space(out, (ev_ssize_t)(len + 2), &v, 1) < 1)
        return PX_ENOMEM;
    ((uint8_t *)v.iov_base)[0] = (uint8_t)(len >> 8);
    ((uint8_t *)v.iov_base)[1] = (uint8_t)len;
    if (len > 0)
        memcpy((uint8_t *)v.iov_base + 2, data, len);
    v.iov_len = len + 2;
    if (evbuffer_commit_space(out, &v, 1) != 0)
        return PX_ENOMEM;
    net_metric_add(fs->m_out, 1);
    net_conn_check_output(c);
    return PX_OK;
}

int net_frame_server_close_conn(net_frame_server *fs, uint64_t conn_id)
{
    net_conn *c = net_server_find(&fs->srv, conn_id);
    if (c == NULL || c->state != NET_CONN_OPEN)
        return PX_ENOTFOUND;
    net_conn_close(c, NET_CLOSE_LOCAL, 1);
    return PX_OK;
}

int net_frame_server_peer_cn(net_frame_server *fs, uint64_t conn_id, char *out, size_t outsz)
{
    net_conn *c = find_open(fs, conn_id);
    if (c == NULL)
        return PX_ENOTFOUND;
    return net_conn_peer_cn(c, out, outsz);
}

int net_frame_server_pending(net_frame_server *fs, uint64_t conn_id, size_t *bytes)
{
    net_conn *c = find_open(fs, conn_id);
    *bytes = 0;
    if (c == NULL)
        return PX_ENOTFOUND;
    *bytes = evbuffer_get_length(net_conn_output(c));
    return PX_OK;
}
