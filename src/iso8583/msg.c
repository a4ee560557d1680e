/* msg.c: the iso8583_msg value area: set, get, clear, response, character classes. */
#include "iso8583/iso8583.h"
#include "iso8583/iso8583_int.h"

#include <openssl/crypto.h>
#include <string.h>

/* ISO_C_* bits of every byte (generated; see iso8583_int.h for the meaning of each bit). */
const uint8_t iso8583_cls[256] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x16, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14, 0x14,
    0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x14, 0x14, 0x14, 0x1c, 0x14, 0x14,
    0x14, 0x16, 0x16, 0x36, 0x36, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16,
    0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x14, 0x14, 0x14, 0x14, 0x14,
    0x14, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16,
    0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x16, 0x14, 0x14, 0x14, 0x14, 0x00,
    0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
    0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
    0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
    0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
    0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
    0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
    0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
    0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10,
};

static uint8_t class_bit(const iso8583_field_spec *s)
{
    switch (s->type) {
    case ISO8583_T_N:
    case ISO8583_T_XN: return ISO_C_N;
    case ISO8583_T_AN: return ISO_C_AN;
    case ISO8583_T_ANS: return (s->flags & ISO8583_F_8BIT) ? ISO_C_ANS8 : ISO_C_ANS;
    case ISO8583_T_Z: return ISO_C_Z;
    default: return 0;
    }
}

const char *iso_class_name(const iso8583_field_spec *s)
{
    switch (s->type) {
    case ISO8583_T_N: return "a digit";
    case ISO8583_T_XN: return "a digit after the C/D sign";
    case ISO8583_T_AN: return "alphanumeric or space";
    case ISO8583_T_ANS:
        return (s->flags & ISO8583_F_8BIT) ? "printable or 8-bit text" : "printable ASCII";
    case ISO8583_T_Z: return "a digit or '='";
    default: return "valid";
    }
}

/* The common case (all bytes fit) costs one table load and AND per byte; only a failure
 * pays for finding where. */
size_t iso_text_bad_pos(const iso8583_field_spec *s, const uint8_t *p, size_t n)
{
    uint8_t want = class_bit(s), acc = 0xFF;
    size_t i = 0;
    if (want == 0)
        return n; /* b: any byte */
    if (s->type == ISO8583_T_XN) {
        if (n == 0 || !(iso8583_cls[p[0]] & ISO_C_CD))
            return 0;
        i = 1;
    }
    for (size_t k = i; k < n; k++)
        acc &= iso8583_cls[p[k]];
    if (acc & want)
        return n;
    for (; i < n; i++)
        if (!(iso8583_cls[p[i]] & want))
            return i;
    return n;
}

void iso8583_msg_init(iso8583_msg *m, const iso8583_dialect *d)
{
    m->dialect = d;
    m->mti[0] = 0;
    m->mti_valid = 0;
    m->tpdu_len = 0;
    m->header_len = 0;
    m->present[0] = 0;
    m->present[1] = 0;
    m->wire_bitmap[0] = 0;
    m->wire_bitmap[1] = 0;
    m->used = 0;
}

void iso8583_msg_cleanse(iso8583_msg *m)
{
    OPENSSL_cleanse(m->data, m->used);
    iso8583_msg_init(m, m->dialect);
}

static int is_mti(const char *mti)
{
    if (mti == NULL || strlen(mti) != 4)
        return 0;
    for (size_t i = 0; i < 4; i++)
        if (!(iso8583_cls[(uint8_t)mti[i]] & ISO_C_N))
            return 0;
    return 1;
}

int iso8583_set_mti(iso8583_msg *m, const char *mti, px_error *e)
{
    if (!is_mti(mti))
        return px_error_set(e, PX_EINVAL, "MTI: not 4 digits");
    memcpy(m->mti, mti, 5);
    m->mti_valid = 1;
    return PX_OK;
}

int iso8583_set_tpdu(iso8583_msg *m, const uint8_t *tpdu, size_t n, px_error *e)
{
    if (n > PX_ISO_TPDU_MAX)
        return px_error_set(e, PX_ETOOBIG, "TPDU: %zu bytes exceed %d", n, PX_ISO_TPDU_MAX);
    memcpy(m->tpdu, tpdu, n);
    m->tpdu_len = (uint8_t)n;
    return PX_OK;
}

int iso8583_set_header(iso8583_msg *m, const uint8_t *hdr, size_t n, px_error *e)
{
    if (n > PX_ISO_HEADER_MAX)
        return px_error_set(e, PX_ETOOBIG, "header: %zu bytes exceed %d", n, PX_ISO_HEADER_MAX);
    memcpy(m->header, hdr, n);
    m->header_len = (uint8_t)n;
    return PX_OK;
}

static const iso8583_field_spec *spec_for_set(const iso8583_msg *m, int f, px_error *e)
{
    const iso8583_field_spec *s;
    if (m->dialect == NULL) {
        px_error_set(e, PX_EINVAL, "field %d: message has no dialect", f);
        return NULL;
    }
    s = iso8583_field_spec_of(m->dialect, f);
    if (s == NULL)
        px_error_set(e, PX_EINVAL, "field %d: not defined in dialect %s", f, m->dialect->name);
    return s;
}

/* Room for total value bytes and a NUL: reuse the field's old place when it is big enough. */
static uint8_t *reserve_value(iso8583_msg *m, int f, size_t total, px_error *e)
{
    size_t off;
    if (iso8583_has(m, f) && m->len[f] >= total) {
        off = m->off[f];
    } else {
        if (m->used + total + 1 > PX_ISO_DATA_MAX) {
            px_error_set(e, PX_ETOOBIG, "field %d: message value area full (%d bytes)", f,
                         PX_ISO_DATA_MAX);
            return NULL;
        }
        off = m->used;
        m->used = (uint16_t)(m->used + total + 1);
    }
    m->off[f] = (uint16_t)off;
    m->len[f] = (uint16_t)total;
    m->data[off + total] = 0;
    m->present[iso_field_word(f)] |= iso_field_bit(f);
    m->wire_bitmap[0] = m->wire_bitmap[1] = 0; /* no longer what was received */
    return m->data + off;
}

/* Length rules of iso8583_set_n/_bin; *total gets the stored length (after padding). */
static int check_set_length(const iso8583_field_spec *s, int f, size_t n, size_t *total,
                            px_error *e)
{
    int pads = s->type == ISO8583_T_N || s->type == ISO8583_T_AN || s->type == ISO8583_T_ANS;
    if (s->len_kind != ISO8583_FIXED) {
        if (n > s->max_len)
            return px_error_set(e, PX_ETOOBIG, "field %d: length %zu exceeds maximum %u", f, n,
                                (unsigned)s->max_len);
        *total = n;
        return PX_OK;
    }
    if (n > s->max_len || (n < s->max_len && !pads))
        return px_error_set(e, PX_EINVAL, "field %d: length %zu, must be %s%u", f, n,
                            pads ? "at most " : "exactly ", (unsigned)s->max_len);
    *total = s->max_len;
    return PX_OK;
}

int iso8583_set_n(iso8583_msg *m, int f, const char *text, size_t n, px_error *e)
{
    const iso8583_field_spec *s = spec_for_set(m, f, e);
    const uint8_t *p = (const uint8_t *)text;
    size_t total, bad;
    uint8_t *dst;
    int rc;
    if (s == NULL)
        return e ? e->code : PX_EINVAL;
    if (s->type == ISO8583_T_B)
        return px_error_set(e, PX_EINVAL, "field %d: binary field; use iso8583_set_bin", f);
    if ((rc = check_set_length(s, f, n, &total, e)) != PX_OK)
        return rc;
    bad = n > 0 ? iso_text_bad_pos(s, p, n) : 0;
    if (bad < n)
        return px_error_set(e, PX_EFORMAT, "field %d: character %zu is not %s", f, bad + 1,
                            iso_class_name(s));
    if ((dst = reserve_value(m, f, total, e)) == NULL)
        return PX_ETOOBIG;
    if (s->type == ISO8583_T_N) { /* numeric: right-aligned, zero-filled (ISO 8583 4.3) */
        memset(dst, '0', total - n);
        if (n > 0)
            memcpy(dst + (total - n), p, n);
    } else { /* text: left-aligned, space-filled */
        if (n > 0)
            memcpy(dst, p, n);
        memset(dst + n, ' ', total - n);
    }
    return PX_OK;
}

int iso8583_set(iso8583_msg *m, int f, const char *text, px_error *e)
{
    if (text == NULL)
        return px_error_set(e, PX_EINVAL, "field %d: no value", f);
    return iso8583_set_n(m, f, text, strlen(text), e);
}

int iso8583_set_bin(iso8583_msg *m, int f, const uint8_t *p, size_t n, px_error *e)
{
    const iso8583_field_spec *s = spec_for_set(m, f, e);
    size_t total;
    uint8_t *dst;
    int rc;
    if (s == NULL)
        return e ? e->code : PX_EINVAL;
    if (s->type != ISO8583_T_B)
        return px_error_set(e, PX_EINVAL, "field %d: text field; use iso8583_set", f);
    if ((rc = check_set_length(s, f, n, &total, e)) != PX_OK)
        return rc;
    if ((dst = reserve_value(m, f, total, e)) == NULL)
        return PX_ETOOBIG;
    if (n > 0)
        memcpy(dst, p, n);
    return PX_OK;
}

int iso8583_has(const iso8583_msg *m, int f)
{
    if (f < 2 || f > PX_ISO_FIELDS)
        return 0;
    return (m->present[iso_field_word(f)] & iso_field_bit(f)) != 0;
}

int iso8583_get(const iso8583_msg *m, int f, const uint8_t **p, size_t *n)
{
    if (!iso8583_has(m, f))
        return PX_ENOTFOUND;
    if (p != NULL)
        *p = m->data + m->off[f];
    if (n != NULL)
        *n = m->len[f];
    return PX_OK;
}

void iso8583_clear(iso8583_msg *m, int f)
{
    if (f >= 2 && f <= PX_ISO_FIELDS) {
        m->present[iso_field_word(f)] &= ~iso_field_bit(f);
        m->wire_bitmap[0] = m->wire_bitmap[1] = 0;
    }
}

int iso8583_next_field(const iso8583_msg *m, int after)
{
    int f = after < 1 ? 2 : after + 1;
    while (f <= PX_ISO_FIELDS) {
        int w = iso_field_word(f);
        /* bits of word w at and after f; field 1 (the secondary-bitmap flag) never counts */
        uint64_t bits = m->present[w] & (~(uint64_t)0 >> ((unsigned)(f - 1) & 63u));
        if (w == 0)
            bits &= ~ISO_TOP_BIT;
        if (bits != 0)
            return w * 64 + __builtin_clzll(bits) + 1;
        f = (w + 1) * 64 + 1;
    }
    return 0;
}

/* ISO 8583:1987 4.1: function digit (3rd) even = request/advice/notification, +1 = its
 * response; origin digit (4th) odd = repeat, and a response answers the original. */
int iso8583_response_mti(const char *mti, char out[5])
{
    if (!is_mti(mti))
        return PX_EINVAL;
    if ((mti[2] - '0') % 2 != 0)
        return PX_EINVAL;
    memcpy(out, mti, 5);
    out[2] = (char)(out[2] + 1);
    if ((out[3] - '0') % 2 != 0)
        out[3] = (char)(out[3] - 1);
    return PX_OK;
}

int iso8583_msg_response(const iso8583_msg *req, iso8583_msg *rsp, px_error *e)
{
    char mti[5];
    if (!req->mti_valid || iso8583_response_mti(req->mti, mti) != PX_OK)
        return px_error_set(e, PX_EINVAL, "MTI: %s has no response MTI",
                            req->mti_valid ? req->mti : "(unread)");
    iso8583_msg_init(rsp, req->dialect);
    memcpy(rsp->mti, mti, 5);
    rsp->mti_valid = 1;
    rsp->tpdu_len = req->tpdu_len;
    memcpy(rsp->tpdu, req->tpdu, req->tpdu_len);
    if (req->tpdu_len == 5) { /* TPDU: id, destination (2), source (2) -> swap */
        rsp->tpdu[1] = req->tpdu[3];
        rsp->tpdu[2] = req->tpdu[4];
        rsp->tpdu[3] = req->tpdu[1];
        rsp->tpdu[4] = req->tpdu[2];
    }
    rsp->header_len = req->header_len;
    memcpy(rsp->header, req->header, req->header_len);
    return PX_OK;
}
