/*
 * switch.c: the transaction platform (`switch` service): terminals speak the UnionPay POS
 * dialect of ISO 8583 over 2-byte framed TCP (docs/iso8583-unionpay.md).
 * Implemented so far: the network-management echo (0800/0820 with field 60.3 = 301) and the
 * answer to malformed messages (response code 30 when the MTI can be read, else the
 * connection is closed). Everything else gets response code 40, "function not supported".
 */
#include "host/service.h"
#include "host/switch/switch.h"
#include "iso8583/iso8583.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"
#include "net/metrics.h"
#include "net/net.h"

#include <stdlib.h>
#include <string.h>

typedef struct switch_svc {
    net_listener_config listen;
    net_frame_server *srv;
    px_daemon *d;
    net_metric *m_rx, *m_tx, *m_format_err, *m_closed_unreadable, *m_unsupported;
} switch_svc;

static int switch_configure(px_daemon *d, void **state, px_error *e)
{
    switch_svc *s = calloc(1, sizeof *s);
    int rc;
    if (s == NULL)
        return px_error_set(e, PX_ENOMEM, "switch: out of memory");
    net_listener_config_defaults(&s->listen, "switch");
    px_strlcpy(s->listen.listen, "127.0.0.1:5000", sizeof s->listen.listen);
    rc = net_listener_config_bind(d->cfg, "switch", NULL, &s->listen, e);
    if (rc != PX_OK) {
        free(s);
        return rc;
    }
    s->d = d;
    s->m_rx = net_metric_counter("possum_switch_messages_received_total",
                                 "ISO 8583 messages received from terminals", NULL);
    s->m_tx = net_metric_counter("possum_switch_messages_sent_total",
                                 "ISO 8583 messages sent to terminals", NULL);
    s->m_format_err = net_metric_counter("possum_switch_format_errors_total",
                                         "Messages that did not parse (answered with code 30)",
                                         "action=\"code30\"");
    s->m_closed_unreadable = net_metric_counter("possum_switch_format_errors_total",
                                                "Messages that did not parse (answered with code 30)",
                                                "action=\"closed\"");
    s->m_unsupported = net_metric_counter("possum_switch_unsupported_total",
                                          "Requests answered with code 40 (not supported)", NULL);
    *state = s;
    return PX_OK;
}

static void send_msg(switch_svc *s, uint64_t conn, const iso8583_msg *rsp)
{
    uint8_t out[PX_ISO_MSG_MAX];
    size_t n;
    px_error e = {0};
    if (iso8583_pack(&iso8583_unionpay_pos, rsp, out, sizeof out, &n, &e) != PX_OK) {
        px_errorlog("switch", "cannot pack %s response: %s", rsp->mti, px_error_text(&e));
        net_frame_server_close_conn(s->srv, conn);
        return;
    }
    if (net_frame_server_send(s->srv, conn, out, n) == PX_OK)
        net_metric_add(s->m_tx, 1);
}

/* Copy the fields a response echoes back (UnionPay POS: 11, 41, 42 and 60 when present). */
static void copy_echoed_fields(const iso8583_msg *req, iso8583_msg *rsp)
{
    static const int echoed[] = {3, 4, 11, 41, 42, 60};
    for (size_t i = 0; i < sizeof echoed / sizeof echoed[0]; i++) {
        const uint8_t *p;
        size_t n;
        if (iso8583_get(req, echoed[i], &p, &n) == PX_OK)
            (void)iso8583_set(rsp, echoed[i], (const char *)p, NULL);
    }
}

/* Begin a response carrying code rc and the local time and date (fields 12, 13). */
static int start_response(const iso8583_msg *req, iso8583_msg *rsp, const char *rc)
{
    char hhmmss[8], mmdd[8];
    px_error e = {0};
    int64_t now = px_now_ms();
    if (iso8583_msg_response(req, rsp, &e) != PX_OK)
        return e.code;
    copy_echoed_fields(req, rsp);
    px_time_format_utc(now, "%H%M%S", hhmmss, sizeof hhmmss);
    px_time_format_utc(now, "%m%d", mmdd, sizeof mmdd);
    (void)iso8583_set(rsp, 12, hhmmss, NULL);
    (void)iso8583_set(rsp, 13, mmdd, NULL);
    return iso8583_set(rsp, 39, rc, &e);
}

/* A message that did not parse: code 30 when its MTI is a readable request, else close. */
static void answer_format_error(switch_svc *s, uint64_t conn, const iso8583_msg *req,
                                const px_error *why)
{
    iso8583_msg rsp;
    char rmti[5];
    if (req->mti_valid && iso8583_response_mti(req->mti, rmti) == PX_OK) {
        iso8583_msg bare;
        /* Only the framing and MTI of a broken message are trusted in the answer. */
        iso8583_msg_init(&bare, &iso8583_unionpay_pos);
        (void)iso8583_set_tpdu(&bare, req->tpdu, req->tpdu_len, NULL);
        (void)iso8583_set_header(&bare, req->header, req->header_len, NULL);
        (void)iso8583_set_mti(&bare, req->mti, NULL);
        px_warn("switch", "conn %llu: format error in %s: %s (answered 30)",
                (unsigned long long)conn, req->mti, px_error_text(why));
        net_metric_add(s->m_format_err, 1);
        if (start_response(&bare, &rsp, SWITCH_RC_FORMAT_ERROR) == PX_OK) {
            send_msg(s, conn, &rsp);
            return;
        }
    }
    px_warn("switch", "conn %llu: unreadable message: %s (closing)", (unsigned long long)conn,
            px_error_text(why));
    net_metric_add(s->m_closed_unreadable, 1);
    net_frame_server_close_conn(s->srv, conn);
}

/* Field 60.3, the network management information code, or "" (60 = 60.1 n2, 60.2 n6, 60.3 n3). */
static void field60_nmi(const iso8583_msg *m, char out[4])
{
    const uint8_t *p;
    size_t n;
    out[0] = 0;
    if (iso8583_get(m, 60, &p, &n) == PX_OK && n >= 11) {
        memcpy(out, p + 8, 3);
        out[3] = 0;
    }
}

static void handle_request(switch_svc *s, uint64_t conn, const iso8583_msg *req)
{
    iso8583_msg rsp;
    char nmi[4];
    const char *rc = SWITCH_RC_NOT_SUPPORTED;
    field60_nmi(req, nmi);
    if ((strcmp(req->mti, "0800") == 0 || strcmp(req->mti, "0820") == 0) &&
        strcmp(nmi, SWITCH_NMI_ECHO) == 0) {
        rc = SWITCH_RC_APPROVED;
        px_info("switch", "conn %llu: echo %s answered", (unsigned long long)conn, req->mti);
    } else {
        net_metric_add(s->m_unsupported, 1);
        px_info("switch", "conn %llu: %s (60.3 %s) not supported yet: code 40",
                (unsigned long long)conn, req->mti, nmi[0] ? nmi : "-");
    }
    if (start_response(req, &rsp, rc) != PX_OK) {
        net_frame_server_close_conn(s->srv, conn);
        return;
    }
    send_msg(s, conn, &rsp);
}

static void on_frame(net_frame_server *srv, uint64_t conn, const uint8_t *data, size_t len,
                     void *user)
{
    switch_svc *s = user;
    iso8583_msg req;
    char rmti[5];
    px_error e = {0};
    net_metric_add(s->m_rx, 1);
    if (iso8583_unpack(&iso8583_unionpay_pos, data, len, &req, &e) != PX_OK) {
        answer_format_error(s, conn, &req, &e);
        return;
    }
    if (iso8583_response_mti(req.mti, rmti) != PX_OK) {
        px_warn("switch", "conn %llu: unexpected %s from a terminal (ignored)",
                (unsigned long long)conn, req.mti);
        return;
    }
    handle_request(s, conn, &req);
    iso8583_msg_cleanse(&req);
}

static int switch_start(void *state, px_daemon *d, px_error *e)
{
    switch_svc *s = state;
    net_frame_callbacks cb = {.on_frame = on_frame, .user = s};
    int rc = net_frame_server_new(d->base, &s->listen, &cb, &s->srv, e);
    if (rc != PX_OK)
        return px_error_prefix(e, "switch: ");
    return px_daemon_announce(d, "switch", s->listen.listen, net_frame_server_port(s->srv));
}

static void switch_free(void *state)
{
    switch_svc *s = state;
    if (s == NULL)
        return;
    net_frame_server_free(s->srv);
    free(s);
}

const px_service px_service_switch = {
    .name = "switch",
    .configure = switch_configure,
    .start = switch_start,
    .drain = NULL,
    .busy = NULL,
    .free = switch_free,
};
