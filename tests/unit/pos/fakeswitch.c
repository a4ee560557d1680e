/* fakeswitch.c: see fakeswitch.h. Answers follow docs/switch-protocol.md section 1. */
#include "fakeswitch.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "crypto/mac.h"
#include "lib/hex.h"

void fs_hex(const char *hex, uint8_t *out, size_t n)
{
    size_t got = 0;
    if (px_hex_decode(hex, out, n, &got) != PX_OK || got != n)
        abort();
}

static int kind_of(const char *mti)
{
    static const char *const k[] = {"0800", "0820", "0200", "0400", "0500", "0320", "0100"};
    for (int i = 0; i < FS_OTHER; i++)
        if (strcmp(mti, k[i]) == 0)
            return i;
    return FS_OTHER;
}

static const char *get(const iso8583_msg *m, int f)
{
    const uint8_t *p;
    size_t n;
    return iso8583_get(m, f, &p, &n) == PX_OK ? (const char *)p : "";
}

static void echo(const iso8583_msg *req, iso8583_msg *rsp, const int *fields)
{
    for (; *fields != 0; fields++)
        if (iso8583_has(req, *fields))
            iso8583_set(rsp, *fields, get(req, *fields), NULL);
}

static int mac_ok(const uint8_t *buf, size_t len)
{
    uint8_t mak[16];
    size_t off, n;
    fs_hex(FS_MAK_HEX, mak, 16);
    if (iso8583_mac_span(&iso8583_unionpay_pos, buf, len, &off, &n, NULL) != PX_OK)
        return 0;
    return crypto_mac_verify(CRYPTO_MAC_CUP_ECB, mak, 16, buf + off, n, buf + off + n, 8, NULL) ==
           PX_OK;
}

static void signon_keys(fake_switch *fs, iso8583_msg *rsp)
{
    static const uint8_t zero[8] = {0};
    const char *clear[3] = {FS_PIK_HEX, FS_MAK_HEX, FS_TDK_HEX};
    uint8_t tmk[16], k[16], cv[8], f62[60];
    fs_hex(FS_TMK_HEX, tmk, 16);
    for (int i = 0; i < 3; i++) {
        fs_hex(clear[i], k, 16);
        crypto_encrypt(CRYPTO_TDES, CRYPTO_ECB, tmk, 16, NULL, k, 16, f62 + 20 * i, NULL);
        crypto_encrypt(CRYPTO_TDES, CRYPTO_ECB, k, 16, NULL, zero, 8, cv, NULL);
        memcpy(f62 + 20 * i + 16, cv, 4);
    }
    if (fs->spoil_cv)
        f62[59] ^= 1;
    iso8583_set_bin(rsp, 62, f62, sizeof f62, NULL);
}

/* The answer's content by message kind; returns 1 when it must carry a MAC. */
static int answer(fake_switch *fs, int kind, const iso8583_msg *req, iso8583_msg *rsp)
{
    static const int common[] = {2, 3, 4, 11, 25, 41, 42, 49, 60, 0};
    const char *proc = get(req, 3), *code = fs->decline[0] ? fs->decline : "00";
    char v[64];
    echo(req, rsp, common);
    iso8583_set(rsp, 12, "101500", NULL);
    iso8583_set(rsp, 13, "1122", NULL);
    switch (kind) {
    case FS_0800:
        snprintf(v, sizeof v, "00%06u003", ++fs->batch);
        iso8583_set(rsp, 60, v, NULL);
        iso8583_set(rsp, 32, "00010000", NULL);
        iso8583_set(rsp, 37, "000000000000", NULL);
        iso8583_set(rsp, 39, "00", NULL);
        signon_keys(fs, rsp);
        return 0;
    case FS_0820: iso8583_set(rsp, 39, "00", NULL); return 0;
    case FS_0100:
        if (strncmp(get(req, 48), FS_PAYEE, 11) != 0) {
            iso8583_set(rsp, 39, "Q2", NULL);
            iso8583_set(rsp, 63, "payee not registered", NULL);
            return 1;
        }
        iso8583_set(rsp, 39, "00", NULL);
        iso8583_set(rsp, 37, FS_LOOKUP_REF, NULL);
        iso8583_set(rsp, 63, FS_PAYEE_NAME, NULL);
        return 1;
    case FS_0500:
        snprintf(v, sizeof v, "%.30s%c%.31s", get(req, 48),
                 fs->settle_result ? fs->settle_result : '1', get(req, 48) + 31);
        iso8583_set(rsp, 48, v, NULL);
        iso8583_set(rsp, 39, "00", NULL);
        return 1;
    case FS_0320:
        fs->upload_entries += (int)strtol((char[3]){get(req, 48)[0], get(req, 48)[1], 0}, NULL, 10);
        iso8583_set(rsp, 39, "00", NULL);
        return 1;
    case FS_0400: iso8583_set(rsp, 39, "00", NULL); return 1;
    default: break;
    }
    snprintf(v, sizeof v, "%012d", ++fs->rrn);
    iso8583_set(rsp, 37, v, NULL);
    iso8583_set(rsp, 15, "1122", NULL);
    iso8583_set(rsp, 32, "00010000", NULL);
    iso8583_set(rsp, 39, code, NULL);
    if (strcmp(code, "00") == 0 && strcmp(proc, "310000") != 0)
        iso8583_set(rsp, 38, "A1B2C3", NULL);
    if (strcmp(code, "00") == 0 && strcmp(proc, "310000") == 0)
        iso8583_set(rsp, 54, "1002156C000000012345", NULL);
    if (strcmp(proc, "480000") == 0 && strcmp(code, "00") == 0)
        iso8583_set(rsp, 63, "payee will be credited after reconciliation", NULL);
    return 1;
}

static void send_answer(fake_switch *fs, uint64_t conn, iso8583_msg *rsp, int mac)
{
    static const uint8_t zero[8] = {0};
    uint8_t out[PX_ISO_MSG_MAX], mak[16];
    size_t n = 0, off, len;
    if (mac)
        iso8583_set_bin(rsp, 64, zero, 8, NULL);
    if (iso8583_pack(&iso8583_unionpay_pos, rsp, out, sizeof out, &n, NULL) != PX_OK)
        return;
    if (mac && iso8583_mac_span(&iso8583_unionpay_pos, out, n, &off, &len, NULL) == PX_OK) {
        fs_hex(FS_MAK_HEX, mak, 16);
        size_t ml;
        crypto_mac(CRYPTO_MAC_CUP_ECB, mak, 16, out + off, len, out + off + len, 8, &ml, NULL);
        if (fs->spoil_mac > 0) {
            fs->spoil_mac--;
            out[off + len] ^= 1;
        }
    }
    net_frame_server_send(fs->srv, conn, out, n);
}

static void on_frame(net_frame_server *srv, uint64_t conn, const uint8_t *data, size_t len,
                     void *user)
{
    fake_switch *fs = user;
    static iso8583_msg req, rsp; /* one event-loop thread */
    int kind, mac = 0;
    if (iso8583_unpack(&iso8583_unionpay_pos, data, len, &req, NULL) != PX_OK)
        return;
    pthread_mutex_lock(&fs->mu);
    kind = kind_of(req.mti);
    fs->last[kind] = req;
    snprintf(fs->seen + strlen(fs->seen), sizeof fs->seen - strlen(fs->seen), "%s ", req.mti);
    iso8583_msg_response(&req, &rsp, NULL);
    rsp.header[2] = (uint8_t)((rsp.header[2] & 0xF0) | (fs->proc_req & 0x0F));
    if (iso8583_has(&req, 64) && !mac_ok(data, len)) {
        fs->bad_mac_requests++;
        static const int ids[] = {11, 41, 42, 0};
        echo(&req, &rsp, ids);
        iso8583_set(&rsp, 39, "A0", NULL);
    } else if (fs->drop > 0 && (fs->drop_mti[0] == 0 || strcmp(fs->drop_mti, req.mti) == 0)) {
        fs->drop--;
        pthread_mutex_unlock(&fs->mu);
        return;
    } else {
        mac = answer(fs, kind, &req, &rsp);
    }
    send_answer(fs, conn, &rsp, mac);
    pthread_mutex_unlock(&fs->mu);
    (void)srv;
}

static void *run(void *arg)
{
    fake_switch *fs = arg;
    event_base_dispatch(fs->base);
    return NULL;
}

static void stop_loop(void *arg)
{
    event_base_loopbreak(arg);
}

int fs_start(fake_switch *fs)
{
    net_listener_config cfg;
    net_frame_callbacks cb = {NULL, on_frame, NULL, fs};
    memset(fs, 0, sizeof *fs);
    pthread_mutex_init(&fs->mu, NULL);
    if (net_init(NULL) != PX_OK || net_base_new(&fs->base, NULL) != PX_OK)
        return -1;
    net_listener_config_defaults(&cfg, "fakeswitch");
    if (net_frame_server_new(fs->base, &cfg, &cb, &fs->srv, NULL) != PX_OK)
        return -1;
    fs->port = net_frame_server_port(fs->srv);
    return pthread_create(&fs->thread, NULL, run, fs) == 0 ? 0 : -1;
}

void fs_stop(fake_switch *fs)
{
    net_post(fs->base, stop_loop, fs->base);
    pthread_join(fs->thread, NULL);
    net_frame_server_free(fs->srv);
    /* libevent finalises freed bufferevents from the loop: give it a turn before freeing */
    for (int i = 0; i < 4; i++)
        event_base_loop(fs->base, EVLOOP_NONBLOCK);
    event_base_free(fs->base);
    pthread_mutex_destroy(&fs->mu);
}

void fs_last(fake_switch *fs, int kind, iso8583_msg *out)
{
    pthread_mutex_lock(&fs->mu);
    *out = fs->last[kind];
    pthread_mutex_unlock(&fs->mu);
}

int fs_count(fake_switch *fs, const char *mti)
{
    int n = 0;
    pthread_mutex_lock(&fs->mu);
    for (const char *p = fs->seen; (p = strstr(p, mti)) != NULL; p += 4)
        n++;
    pthread_mutex_unlock(&fs->mu);
    return n;
}
