/*
 * msg.c: the terminal's side of one exchange with the platform (docs/switch-protocol.md
 * section 1, "Framing"): TPDU and header, the MAC over the MTI-to-field-63 span under the
 * PIN pad's MAK, the answer matched on MTI, STAN and TID, its MAC verified before anything
 * in it is believed, and the header's processing requirement handed to the caller.
 */
#include "device/pos/pos_int.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"
#include "net/tls.h"

#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const uint8_t pos_tpdu[5] = {0x60, 0x00, 0x01, 0x00, 0x00};

int pos_msg_begin(pos_terminal *t, const char *mti, uint32_t stan, px_error *e)
{
    uint8_t hdr[6] = {0x60, 0x31, 0x00, 0, 0, 0};
    const char *v = t->cfg.sw_version;
    int rc;
    for (int i = 0; i < 3; i++) /* software version: 6 digits as 3 BCD bytes */
        hdr[3 + i] = (uint8_t)(((v[2 * i] - '0') << 4) | (v[2 * i + 1] - '0'));
    iso8583_msg_cleanse(&t->req);
    iso8583_msg_init(&t->req, &iso8583_unionpay_pos);
    rc = iso8583_set_tpdu(&t->req, pos_tpdu, sizeof pos_tpdu, e);
    if (rc == PX_OK)
        rc = iso8583_set_header(&t->req, hdr, sizeof hdr, e);
    if (rc == PX_OK)
        rc = iso8583_set_mti(&t->req, mti, e);
    if (rc == PX_OK)
        rc = pos_msg_setf(t, e, 11, "%06u", stan);
    if (rc == PX_OK)
        rc = pos_msg_set(t, 41, t->cfg.tid, e);
    if (rc == PX_OK)
        rc = pos_msg_set(t, 42, t->cfg.mid, e);
    return rc;
}

int pos_msg_set(pos_terminal *t, int f, const char *v, px_error *e)
{
    return iso8583_set(&t->req, f, v, e);
}

int pos_msg_setf(pos_terminal *t, px_error *e, int f, const char *fmt, ...)
{
    char v[PX_ISO_FIELD_MAX + 1];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= (int)sizeof v)
        return px_error_set(e, PX_ETOOBIG, "field %d: too long", f);
    return iso8583_set(&t->req, f, v, e);
}

/* 2 or 35, 14, 22 (contract: 021 swiped + PIN, 022 swiped, 012 manual), 25. */
int pos_msg_set_card(pos_terminal *t, const pos_card *card, int has_pin, px_error *e)
{
    int swiped = card->track2[0] != 0;
    int rc = swiped ? pos_msg_set(t, 35, card->track2, e) : pos_msg_set(t, 2, card->pan, e);
    if (rc == PX_OK && !swiped && card->expiry[0] != 0)
        rc = pos_msg_set(t, 14, card->expiry, e);
    if (rc == PX_OK)
        rc = pos_msg_set(t, 22, swiped ? (has_pin ? "021" : "022") : "012", e);
    if (rc == PX_OK)
        rc = pos_msg_set(t, 25, "00", e);
    return rc;
}

/* 26 = 12, 52 the PIN block, 53 = format 0 with PAN under double-length TDES. */
int pos_msg_set_pin(pos_terminal *t, const uint8_t *pin_block, px_error *e)
{
    int rc;
    if (pin_block == NULL)
        return PX_OK;
    rc = pos_msg_set(t, 26, "12", e);
    if (rc == PX_OK)
        rc = iso8583_set_bin(&t->req, 52, pin_block, PINPAD_PINBLOCK_LEN, e);
    if (rc == PX_OK)
        rc = pos_msg_set(t, 53, "2600000000000000", e);
    return rc;
}

const char *pos_rsp_get(const pos_terminal *t, int f)
{
    const uint8_t *p;
    size_t n;
    return iso8583_get(&t->rsp, f, &p, &n) == PX_OK ? (const char *)p : "";
}

void pos_msg_disconnect(pos_terminal *t)
{
    net_client_close(t->conn);
    t->conn = NULL;
}

int pos_msg_end(pos_terminal *t, int rc)
{
    iso8583_msg_cleanse(&t->req);
    iso8583_msg_cleanse(&t->rsp);
    OPENSSL_cleanse(t->wire, sizeof t->wire);
    pos_msg_disconnect(t);
    return rc;
}

/* Pack t->req into t->wire (without the frame length); with mac, field 64 is computed by
 * the PIN pad over iso8583_mac_span and written in place. */
static int pack_request(pos_terminal *t, int mac, size_t *len, px_error *e)
{
    static const uint8_t zero[PINPAD_MAC_LEN] = {0};
    size_t off = 0, n = 0;
    int rc = PX_OK;
    if (mac)
        rc = iso8583_set_bin(&t->req, 64, zero, sizeof zero, e);
    if (rc == PX_OK)
        rc = iso8583_pack(&iso8583_unionpay_pos, &t->req, t->wire, sizeof t->wire, len, e);
    if (rc == PX_OK && mac)
        rc = iso8583_mac_span(&iso8583_unionpay_pos, t->wire, *len, &off, &n, e);
    if (rc == PX_OK && mac)
        rc = pinpad_mac(t->pp, t->wire + off, n, t->wire + off + n, e);
    return rc;
}

static int connect_platform(pos_terminal *t, px_error *e)
{
    int rc;
    if (t->conn != NULL)
        return PX_OK;
    rc = net_init(e);
    if (rc == PX_OK)
        rc = net_client_connect(t->cfg.host, (int)t->cfg.port, (SSL_CTX *)t->tls,
                                t->cfg.connect_timeout_ms, &t->conn, e);
    if (rc != PX_OK)
        px_error_prefix(e, "cannot reach the platform at %s:%lld: ", t->cfg.host,
                        (long long)t->cfg.port);
    return rc;
}

/* Is the frame in t->wire (len bytes) the answer to t->req? Unparseable or foreign frames
 * are skipped (a late answer to an earlier request on the same connection). */
static int answer_matches(pos_terminal *t, size_t len)
{
    char want[5];
    const uint8_t *a, *b;
    size_t na, nb;
    if (iso8583_unpack(&iso8583_unionpay_pos, t->wire, len, &t->rsp, NULL) != PX_OK)
        return 0;
    if (iso8583_response_mti(t->req.mti, want) != PX_OK || strcmp(want, t->rsp.mti) != 0)
        return 0;
    if (iso8583_get(&t->req, 11, &a, &na) != PX_OK || iso8583_get(&t->rsp, 11, &b, &nb) != PX_OK ||
        na != nb || memcmp(a, b, na) != 0)
        return 0;
    return !iso8583_has(&t->rsp, 41) || strcmp(pos_rsp_get(t, 41), t->cfg.tid) == 0;
}

/* Codes the platform gives before it has checked, or could check, the request: an answer
 * with one of them proves nothing was done, so it needs no MAC to be believed. */
static int rsp_is_unprocessed(const char *code)
{
    return strcmp(code, "A0") == 0 || strcmp(code, "77") == 0 || strcmp(code, "97") == 0 ||
           strcmp(code, "30") == 0;
}

/* The answer's MAC (contract: every response to a MACed request carries one). *verified
 * is 0 for an unverified answer that is let through because it proves nothing was done. */
static int verify_answer(pos_terminal *t, size_t len, int *verified, px_error *e)
{
    size_t off = 0, n = 0;
    int has = iso8583_has(&t->rsp, 64);
    *verified = has &&
                iso8583_mac_span(&iso8583_unionpay_pos, t->wire, len, &off, &n, NULL) == PX_OK &&
                pinpad_mac_verify(t->pp, t->wire + off, n, t->wire + off + n, NULL) == PX_OK;
    if (*verified || rsp_is_unprocessed(pos_rsp_get(t, 39)))
        return PX_OK;
    return px_error_set(e, PX_EAUTH,
                        has ? "the platform's answer does not verify (MAC)"
                            : "the platform's answer carries no MAC");
}

static int recv_answer(pos_terminal *t, int64_t deadline, size_t *len, px_error *e)
{
    for (int skipped = 0; skipped <= PX_POS_STALE_FRAMES_MAX; skipped++) {
        int64_t left = deadline - px_mono_ms();
        int rc;
        if (left <= 0)
            break;
        rc = net_client_recv_frame(t->conn, t->wire, sizeof t->wire, len, left, e);
        if (rc != PX_OK)
            return rc;
        if (answer_matches(t, *len))
            return PX_OK;
        px_warn("pos", "terminal %s: skipped a frame that is not the answer to %s", t->cfg.tid,
                t->req.mti);
    }
    return px_error_set(e, PX_ETIMEOUT, "no answer");
}

int pos_msg_exchange(pos_terminal *t, int mac, int *sent, pos_result *res, px_error *e)
{
    int64_t t0;
    size_t len = 0;
    int verified = 1;
    int rc = pack_request(t, mac, &len, e);
    *sent = 0;
    if (rc == PX_OK)
        rc = connect_platform(t, e);
    if (rc != PX_OK)
        return rc;
    t0 = px_mono_ms();
    *sent = 1;
    rc = net_client_send_frame(t->conn, t->wire, len, e);
    if (rc == PX_OK)
        rc = recv_answer(t, t0 + t->cfg.timeout_ms, &len, e);
    if (rc == PX_EPERM) { /* the TLS handshake was refused: the request never got in */
        *sent = 0;
        px_error_prefix(e, "cannot reach the platform at %s:%lld: ", t->cfg.host,
                        (long long)t->cfg.port);
    }
    res->elapsed_ms = px_mono_ms() - t0;
    if (rc == PX_ETIMEOUT)
        px_error_set(e, PX_ETIMEOUT, "no answer from the platform in %lld ms",
                     (long long)t->cfg.timeout_ms);
    if (rc == PX_OK && mac)
        rc = verify_answer(t, len, &verified, e);
    if (rc != PX_OK) {
        pos_msg_disconnect(t); /* the stream's state is unknown */
        return rc;
    }
    px_strlcpy(res->rsp_code, pos_rsp_get(t, 39), sizeof res->rsp_code);
    res->proc_req = verified && t->rsp.header_len >= 3 ? (t->rsp.header[2] & 0x0F) : 0;
    return PX_OK;
}
