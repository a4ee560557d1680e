/* termsim.c: a simulated UnionPay POS terminal (termsim.h). */
#include "termsim.h"

#include "crypto/crypto.h"
#include "crypto/mac.h"
#include "crypto/pinblock.h"
#include "lib/hex.h"
#include "lib/str.h"

#include <stdio.h>
#include <string.h>

static const uint8_t sim_tpdu[5] = {0x60, 0x00, 0x01, 0x00, 0x00};
static const uint8_t sim_header[6] = {0x60, 0x31, 0x00, 0x31, 0x00, 0x00};

int termsim_init(termsim *t, const char *tid, const char *mid, const char *comp1, const char *comp2,
                 px_error *e)
{
    uint8_t c1[16], c2[16];
    size_t n1 = 0, n2 = 0;
    memset(t, 0, sizeof *t);
    px_strlcpy(t->tid, tid, sizeof t->tid);
    px_strlcpy(t->mid, mid, sizeof t->mid);
    if (px_hex_decode(comp1, c1, sizeof c1, &n1) != PX_OK || n1 != 16 ||
        px_hex_decode(comp2, c2, sizeof c2, &n2) != PX_OK || n2 != 16)
        return px_error_set(e, PX_EINVAL, "TMK components: 32 hex digits each");
    for (int i = 0; i < 16; i++)
        t->tmk[i] = c1[i] ^ c2[i];
    crypto_des_set_odd_parity(t->tmk, 16); /* as the HSM forms it */
    return PX_OK;
}

void termsim_next_stan(termsim *t, char out[7])
{
    t->stan = t->stan % 999999 + 1;
    snprintf(out, 7, "%06u", t->stan);
}

void termsim_begin(termsim *t, iso8583_msg *m, const char *mti, const char *stan,
                   const char *f60_type, const char *nmi)
{
    char f60[20];
    iso8583_msg_init(m, &iso8583_unionpay_pos);
    (void)iso8583_set_tpdu(m, sim_tpdu, sizeof sim_tpdu, NULL);
    (void)iso8583_set_header(m, sim_header, sizeof sim_header, NULL);
    (void)iso8583_set_mti(m, mti, NULL);
    (void)iso8583_set(m, 11, stan, NULL);
    (void)iso8583_set(m, 41, t->tid, NULL);
    (void)iso8583_set(m, 42, t->mid, NULL);
    snprintf(f60, sizeof f60, "%s%06lld%s", f60_type, (long long)t->batch, nmi);
    (void)iso8583_set(m, 60, f60, NULL);
}

int termsim_card(termsim *t, iso8583_msg *m, const char *proc, const char *pan, int64_t amount,
                 const char *pin, px_error *e)
{
    char f4[16];
    int rc = iso8583_set(m, 2, pan, e);
    if (rc == PX_OK)
        rc = iso8583_set(m, 3, proc, e);
    if (rc == PX_OK && amount >= 0) {
        snprintf(f4, sizeof f4, "%012lld", (long long)amount);
        rc = iso8583_set(m, 4, f4, e);
    }
    if (rc == PX_OK)
        rc = iso8583_set(m, 22, pin ? "021" : "022", e);
    if (rc == PX_OK)
        rc = iso8583_set(m, 25, "00", e);
    if (rc == PX_OK)
        rc = iso8583_set(m, 49, "156", e);
    if (rc == PX_OK && pin != NULL) {
        uint8_t clear[8], block[8];
        size_t n = 0;
        rc = crypto_pinblock_encode(CRYPTO_PIN_ISO0, pin, pan, clear, sizeof clear, &n, e);
        if (rc == PX_OK)
            rc = crypto_encrypt(CRYPTO_TDES, CRYPTO_ECB, t->pik, 16, NULL, clear, 8, block, e);
        if (rc == PX_OK)
            rc = iso8583_set(m, 26, "12", e);
        if (rc == PX_OK)
            rc = iso8583_set_bin(m, 52, block, 8, e);
        if (rc == PX_OK)
            rc = iso8583_set(m, 53, "2600000000000000", e);
        crypto_cleanse(clear, sizeof clear);
    }
    return rc;
}

int termsim_pack(termsim *t, const iso8583_msg *m, int mac, uint8_t *out, size_t cap, size_t *n,
                 px_error *e)
{
    iso8583_msg tmp;
    const iso8583_msg *src = m;
    size_t off, span, ml = 0;
    uint8_t mv[CRYPTO_MAC_MAX];
    int rc;
    if (mac) {
        static const uint8_t zero[8] = {0};
        memcpy(&tmp, m, sizeof tmp);
        (void)iso8583_set_bin(&tmp, 64, zero, 8, NULL);
        src = &tmp;
    }
    rc = iso8583_pack_framed(&iso8583_unionpay_pos, src, out, cap, n, e);
    if (rc != PX_OK || !mac)
        return rc;
    rc = iso8583_mac_span(&iso8583_unionpay_pos, out + 2, *n - 2, &off, &span, e);
    if (rc == PX_OK)
        rc = crypto_mac(CRYPTO_MAC_CUP_ECB, t->mak, 16, out + 2 + off, span, mv, sizeof mv, &ml, e);
    if (rc == PX_OK)
        memcpy(out + 2 + off + span, mv, 8);
    return rc;
}

int termsim_unpack(termsim *t, const uint8_t *in, size_t n, iso8583_msg *rsp, px_error *e)
{
    int rc = iso8583_unpack(&iso8583_unionpay_pos, in, n, rsp, e);
    size_t off, span;
    if (rc != PX_OK)
        return rc;
    if (rsp->header_len >= 3)
        t->header_flag = rsp->header[2] & 0x0F;
    if (!iso8583_has(rsp, 64))
        return PX_OK;
    rc = iso8583_mac_span(&iso8583_unionpay_pos, in, n, &off, &span, e);
    if (rc == PX_OK)
        rc = crypto_mac_verify(CRYPTO_MAC_CUP_ECB, t->mak, 16, in + off, span, in + off + span, 8,
                               e);
    return rc;
}

int termsim_install_keys(termsim *t, const iso8583_msg *rsp, size_t pik_cv_bytes, px_error *e)
{
    const uint8_t *p;
    size_t n;
    uint8_t *dst[3] = {t->pik, t->mak, t->tdk};
    static const char *const names[3] = {"PIK", "MAK", "TDK"};
    if (iso8583_get(rsp, 62, &p, &n) != PX_OK || n != 60)
        return px_error_set(e, PX_EFORMAT, "field 62: expected 60 bytes");
    for (int i = 0; i < 3; i++) {
        const uint8_t *k = p + i * 20;
        int rc = crypto_decrypt(CRYPTO_TDES, CRYPTO_ECB, t->tmk, 16, NULL, k, 16, dst[i], e);
        if (rc == PX_OK)
            rc = crypto_kcv_verify(CRYPTO_TDES, dst[i], 16, k + 16, i == 0 ? pik_cv_bytes : 4, e);
        if (rc != PX_OK)
            return px_error_set(e, PX_EAUTH, "field 62: %s does not match its check value",
                                names[i]);
    }
    if (iso8583_get(rsp, 60, &p, &n) == PX_OK && n >= 8) {
        char b[7];
        int64_t v = 0;
        memcpy(b, p + 2, 6);
        b[6] = 0;
        if (px_parse_i64(b, 0, 999999, &v) == PX_OK)
            t->batch = v;
    }
    t->signed_on = 1;
    return PX_OK;
}

const char *termsim_rc(const iso8583_msg *rsp)
{
    const uint8_t *p;
    size_t n;
    if (iso8583_get(rsp, 39, &p, &n) != PX_OK)
        return "";
    return (const char *)p;
}

int termsim_connect(termsim *t, int port, px_error *e)
{
    return net_client_connect("127.0.0.1", port, NULL, 5000, &t->c, e);
}

void termsim_close(termsim *t)
{
    net_client_close(t->c);
    t->c = NULL;
}

int termsim_exchange_raw(termsim *t, const uint8_t *out, size_t n, iso8583_msg *rsp,
                         int64_t timeout_ms, px_error *e)
{
    uint8_t in[PX_ISO_MSG_MAX];
    size_t got = 0;
    int rc = net_client_send_raw(t->c, out, n, e);
    if (rc == PX_OK)
        rc = net_client_recv_frame(t->c, in, sizeof in, &got, timeout_ms, e);
    if (rc == PX_OK)
        rc = termsim_unpack(t, in, got, rsp, e);
    return rc;
}

int termsim_exchange(termsim *t, const iso8583_msg *m, int mac, iso8583_msg *rsp,
                     int64_t timeout_ms, px_error *e)
{
    uint8_t out[PX_ISO_MSG_MAX + 2];
    size_t n = 0;
    int rc = termsim_pack(t, m, mac, out, sizeof out, &n, e);
    if (rc == PX_OK)
        rc = termsim_exchange_raw(t, out, n, rsp, timeout_ms, e);
    return rc;
}

int termsim_signon(termsim *t, iso8583_msg *rsp, px_error *e)
{
    iso8583_msg m;
    char stan[7];
    int rc;
    termsim_next_stan(t, stan);
    termsim_begin(t, &m, "0800", stan, "00", "003");
    (void)iso8583_set(&m, 63, "01 ", NULL);
    rc = termsim_exchange(t, &m, 0, rsp, 20000, e);
    if (rc == PX_OK && strcmp(termsim_rc(rsp), "00") != 0)
        rc = px_error_set(e, PX_EAUTH, "sign-on answered %s", termsim_rc(rsp));
    if (rc == PX_OK)
        rc = termsim_install_keys(t, rsp, TERMSIM_PIK_CV_BYTES, e);
    return rc;
}
