/* codec.c: iso8583_unpack, iso8583_pack and the MAC span, all driven by the dialect tables. */
#include "iso8583/iso8583.h"
#include "iso8583/iso8583_int.h"

#include "lib/hex.h"

#include <string.h>

/* A cursor over the input. */
typedef struct rd {
    const uint8_t *p;
    size_t len;
    size_t pos;
} rd;

static size_t rd_left(const rd *r)
{
    return r->len - r->pos;
}

/* ---------------------------------------------------------------- BCD */

/* BCD byte -> its two nibbles as '0' + nibble (D is '=', A-F are ":;<>?" that no class
 * admits), and which BCD classes both nibbles belong to (generated). */
enum { BCD_OK_N = 1, BCD_OK_Z = 2 }; /* 0-9; 0-9 or separator D */
typedef struct bcd_entry {
    char c[2];
    uint8_t ok;
} bcd_entry;

static const bcd_entry bcd_tab[256] = {
    {"00", 3}, {"01", 3}, {"02", 3}, {"03", 3}, {"04", 3}, {"05", 3}, {"06", 3}, {"07", 3},
    {"08", 3}, {"09", 3}, {"0:", 0}, {"0;", 0}, {"0<", 0}, {"0=", 2}, {"0>", 0}, {"0?", 0},
    {"10", 3}, {"11", 3}, {"12", 3}, {"13", 3}, {"14", 3}, {"15", 3}, {"16", 3}, {"17", 3},
    {"18", 3}, {"19", 3}, {"1:", 0}, {"1;", 0}, {"1<", 0}, {"1=", 2}, {"1>", 0}, {"1?", 0},
    {"20", 3}, {"21", 3}, {"22", 3}, {"23", 3}, {"24", 3}, {"25", 3}, {"26", 3}, {"27", 3},
    {"28", 3}, {"29", 3}, {"2:", 0}, {"2;", 0}, {"2<", 0}, {"2=", 2}, {"2>", 0}, {"2?", 0},
    {"30", 3}, {"31", 3}, {"32", 3}, {"33", 3}, {"34", 3}, {"35", 3}, {"36", 3}, {"37", 3},
    {"38", 3}, {"39", 3}, {"3:", 0}, {"3;", 0}, {"3<", 0}, {"3=", 2}, {"3>", 0}, {"3?", 0},
    {"40", 3}, {"41", 3}, {"42", 3}, {"43", 3}, {"44", 3}, {"45", 3}, {"46", 3}, {"47", 3},
    {"48", 3}, {"49", 3}, {"4:", 0}, {"4;", 0}, {"4<", 0}, {"4=", 2}, {"4>", 0}, {"4?", 0},
    {"50", 3}, {"51", 3}, {"52", 3}, {"53", 3}, {"54", 3}, {"55", 3}, {"56", 3}, {"57", 3},
    {"58", 3}, {"59", 3}, {"5:", 0}, {"5;", 0}, {"5<", 0}, {"5=", 2}, {"5>", 0}, {"5?", 0},
    {"60", 3}, {"61", 3}, {"62", 3}, {"63", 3}, {"64", 3}, {"65", 3}, {"66", 3}, {"67", 3},
    {"68", 3}, {"69", 3}, {"6:", 0}, {"6;", 0}, {"6<", 0}, {"6=", 2}, {"6>", 0}, {"6?", 0},
    {"70", 3}, {"71", 3}, {"72", 3}, {"73", 3}, {"74", 3}, {"75", 3}, {"76", 3}, {"77", 3},
    {"78", 3}, {"79", 3}, {"7:", 0}, {"7;", 0}, {"7<", 0}, {"7=", 2}, {"7>", 0}, {"7?", 0},
    {"80", 3}, {"81", 3}, {"82", 3}, {"83", 3}, {"84", 3}, {"85", 3}, {"86", 3}, {"87", 3},
    {"88", 3}, {"89", 3}, {"8:", 0}, {"8;", 0}, {"8<", 0}, {"8=", 2}, {"8>", 0}, {"8?", 0},
    {"90", 3}, {"91", 3}, {"92", 3}, {"93", 3}, {"94", 3}, {"95", 3}, {"96", 3}, {"97", 3},
    {"98", 3}, {"99", 3}, {"9:", 0}, {"9;", 0}, {"9<", 0}, {"9=", 2}, {"9>", 0}, {"9?", 0},
    {":0", 0}, {":1", 0}, {":2", 0}, {":3", 0}, {":4", 0}, {":5", 0}, {":6", 0}, {":7", 0},
    {":8", 0}, {":9", 0}, {"::", 0}, {":;", 0}, {":<", 0}, {":=", 0}, {":>", 0}, {":?", 0},
    {";0", 0}, {";1", 0}, {";2", 0}, {";3", 0}, {";4", 0}, {";5", 0}, {";6", 0}, {";7", 0},
    {";8", 0}, {";9", 0}, {";:", 0}, {";;", 0}, {";<", 0}, {";=", 0}, {";>", 0}, {";?", 0},
    {"<0", 0}, {"<1", 0}, {"<2", 0}, {"<3", 0}, {"<4", 0}, {"<5", 0}, {"<6", 0}, {"<7", 0},
    {"<8", 0}, {"<9", 0}, {"<:", 0}, {"<;", 0}, {"<<", 0}, {"<=", 0}, {"<>", 0}, {"<?", 0},
    {"=0", 2}, {"=1", 2}, {"=2", 2}, {"=3", 2}, {"=4", 2}, {"=5", 2}, {"=6", 2}, {"=7", 2},
    {"=8", 2}, {"=9", 2}, {"=:", 0}, {"=;", 0}, {"=<", 0}, {"==", 2}, {"=>", 0}, {"=?", 0},
    {">0", 0}, {">1", 0}, {">2", 0}, {">3", 0}, {">4", 0}, {">5", 0}, {">6", 0}, {">7", 0},
    {">8", 0}, {">9", 0}, {">:", 0}, {">;", 0}, {"><", 0}, {">=", 0}, {">>", 0}, {">?", 0},
    {"?0", 0}, {"?1", 0}, {"?2", 0}, {"?3", 0}, {"?4", 0}, {"?5", 0}, {"?6", 0}, {"?7", 0},
    {"?8", 0}, {"?9", 0}, {"?:", 0}, {"?;", 0}, {"?<", 0}, {"?=", 0}, {"?>", 0}, {"??", 0},
};

/* Decode count digits from (count + 1) / 2 bytes into out as '0' + nibble. Returns the
 * BCD_OK_* classes all digits belong to, or -1 when the pad nibble of an odd count is
 * neither 0 nor F. A byte holding a lone digit is looked up with its pad nibble zeroed. */
static int bcd_decode(const uint8_t *in, size_t count, int left, char *out)
{
    size_t full = count / 2;
    unsigned pad = 0, ok = BCD_OK_N | BCD_OK_Z;
    if ((count & 1) && !left) {
        pad = *in >> 4;
        ok &= bcd_tab[*in & 0x0F].ok;
        *out++ = bcd_tab[*in].c[1];
        in++;
    }
    for (size_t i = 0; i < full; i++) {
        const bcd_entry *t = &bcd_tab[in[i]];
        out[2 * i] = t->c[0];
        out[2 * i + 1] = t->c[1];
        ok &= t->ok;
    }
    if ((count & 1) && left) {
        ok &= bcd_tab[in[full] & 0xF0].ok;
        out[2 * full] = bcd_tab[in[full]].c[0];
        pad = in[full] & 15u;
    }
    return pad == 0 || pad == 15 ? (int)ok : -1;
}

/* Inverse of bcd_decode for checked text ('0'-'9', '=' -> nibble D). */
static void bcd_encode(const uint8_t *in, size_t count, int left, unsigned pad, uint8_t *out)
{
    size_t full = count / 2;
    if ((count & 1) && !left) {
        *out++ = (uint8_t)(pad << 4 | (unsigned)(*in++ - '0'));
    }
    for (size_t i = 0; i < full; i++)
        out[i] = (uint8_t)((unsigned)(in[2 * i] - '0') << 4 | (unsigned)(in[2 * i + 1] - '0'));
    if ((count & 1) && left)
        out[full] = (uint8_t)((unsigned)(in[2 * full] - '0') << 4 | pad);
}

static size_t wire_bytes(const iso8583_field_spec *s, size_t count)
{
    return s->data_enc == ISO8583_ENC_BCD ? (count + 1) / 2 : count;
}

/* ---------------------------------------------------------------- unpack */

static int read_length(rd *r, const iso8583_field_spec *s, int f, size_t *count, px_error *e)
{
    int lll = s->len_kind == ISO8583_LLLVAR;
    const uint8_t *p = r->p + r->pos;
    size_t need = s->len_enc == ISO8583_ENC_ASCII ? (lll ? 3u : 2u) : (lll ? 2u : 1u);
    size_t v = 0;
    if (rd_left(r) < need)
        return px_error_set(e, PX_EFORMAT,
                            "field %d: length prefix needs %zu byte%s, %zu "
                            "remain",
                            f, need, need == 1 ? "" : "s", rd_left(r));
    if (s->len_enc == ISO8583_ENC_ASCII) {
        for (size_t i = 0; i < need; i++) {
            if (!(iso8583_cls[p[i]] & ISO_C_N))
                return px_error_set(e, PX_EFORMAT, "field %d: length prefix is not %zu digits", f,
                                    need);
            v = v * 10 + (size_t)(p[i] - '0');
        }
    } else if (s->len_enc == ISO8583_ENC_BCD) {
        for (size_t i = 0; i < need; i++) {
            unsigned hi = p[i] >> 4, lo = p[i] & 15;
            if (hi > 9 || lo > 9)
                return px_error_set(e, PX_EFORMAT, "field %d: length prefix is not BCD", f);
            v = v * 100 + hi * 10 + lo;
        }
    } else {
        v = need == 2 ? (size_t)p[0] << 8 | p[1] : p[0];
    }
    if (v > s->max_len)
        return px_error_set(e, PX_EFORMAT, "field %d: length %zu exceeds maximum %u", f, v,
                            (unsigned)s->max_len);
    r->pos += need;
    *count = v;
    return PX_OK;
}

static int short_field(int f, const iso8583_field_spec *s, size_t count, size_t left, px_error *e)
{
    if (s->data_enc == ISO8583_ENC_BCD)
        return px_error_set(e, PX_EFORMAT,
                            "field %d: expected %zu digits (%zu bytes), %zu bytes "
                            "remain",
                            f, count, (count + 1) / 2, left);
    return px_error_set(e, PX_EFORMAT, "field %d: expected %zu bytes, %zu remain", f, count, left);
}

static int bad_char(int f, const iso8583_field_spec *s, size_t bad, px_error *e)
{
    if (s->data_enc != ISO8583_ENC_BCD)
        return px_error_set(e, PX_EFORMAT, "field %d: byte %zu is not %s", f, bad + 1,
                            iso_class_name(s));
    return px_error_set(e, PX_EFORMAT, "field %d: digit %zu is not %s", f, bad + 1,
                        s->type == ISO8583_T_Z ? "a BCD digit 0-9 or separator D"
                                               : "a BCD digit 0-9");
}

/* One data element at the cursor, per its spec (ISO 8583:1987 4.3/4.4). */
static int unpack_field(rd *r, const iso8583_dialect *d, int f, iso8583_msg *m, px_error *e)
{
    const iso8583_field_spec *s = &d->fields[f];
    size_t count = s->max_len, wire, bad;
    uint8_t *dst;
    int rc, check = 1;
    if (s->type == ISO8583_T_UNDEF || f > d->max_field)
        return px_error_set(e, PX_EFORMAT,
                            "field %d: present in bitmap but not defined in "
                            "dialect %s",
                            f, d->name);
    if (s->len_kind != ISO8583_FIXED && (rc = read_length(r, s, f, &count, e)) != PX_OK)
        return rc;
    wire = wire_bytes(s, count);
    if (rd_left(r) < wire)
        return short_field(f, s, count, rd_left(r), e);
    if (PX_BUG((size_t)m->used + count + 1 > PX_ISO_DATA_MAX))
        return px_error_set(e, PX_EINTERNAL, "field %d: value area full", f);
    dst = m->data + m->used;
    if (s->data_enc == ISO8583_ENC_BCD) {
        int ok = bcd_decode(r->p + r->pos, count, s->align == ISO8583_ALIGN_LEFT, (char *)dst);
        if (ok < 0)
            return px_error_set(e, PX_EFORMAT, "field %d: pad nibble is not 0 or F", f);
        check = !(ok & (s->type == ISO8583_T_Z ? BCD_OK_Z : BCD_OK_N)); /* then: where */
    } else {
        memcpy(dst, r->p + r->pos, count);
    }
    if (check && (bad = iso_text_bad_pos(s, dst, count)) < count)
        return bad_char(f, s, bad, e);
    dst[count] = 0;
    m->off[f] = m->used;
    m->len[f] = (uint16_t)count;
    m->used = (uint16_t)(m->used + count + 1);
    m->present[iso_field_word(f)] |= iso_field_bit(f);
    r->pos += wire;
    return PX_OK;
}

static int read_mti(rd *r, const iso8583_dialect *d, iso8583_msg *m, px_error *e)
{
    const uint8_t *p = r->p + r->pos;
    int bcd = d->mti_enc == ISO8583_ENC_BCD;
    size_t need = bcd ? 2 : 4;
    if (rd_left(r) < need)
        return px_error_set(e, PX_EFORMAT, "MTI: needs %zu bytes, %zu remain", need, rd_left(r));
    if (bcd)
        bcd_decode(p, 4, 0, m->mti);
    else
        memcpy(m->mti, p, 4);
    m->mti[4] = 0;
    for (size_t i = 0; i < 4; i++)
        if (!(iso8583_cls[(uint8_t)m->mti[i]] & ISO_C_N)) {
            m->mti[0] = 0;
            return px_error_set(e, PX_EFORMAT, "MTI: not 4 %s digits", bcd ? "BCD" : "ASCII");
        }
    m->mti_valid = 1;
    r->pos += need;
    return PX_OK;
}

/* One 64-bit bitmap: 8 bytes binary or 16 hex characters. */
static int read_bitmap_word(rd *r, const iso8583_dialect *d, const char *what, uint64_t *out,
                            px_error *e)
{
    int hex = d->bitmap_enc == ISO8583_ENC_ASCII;
    size_t need = hex ? 16 : 8;
    uint8_t raw[8];
    uint64_t v = 0;
    if (rd_left(r) < need)
        return px_error_set(e, PX_EFORMAT, "bitmap: %s bitmap needs %zu bytes, %zu remain", what,
                            need, rd_left(r));
    if (hex) {
        size_t got;
        if (px_hex_decode_n((const char *)r->p + r->pos, 16, raw, 8, &got) != PX_OK)
            return px_error_set(e, PX_EFORMAT, "bitmap: %s bitmap is not 16 hex digits", what);
    } else {
        memcpy(raw, r->p + r->pos, 8);
    }
    for (int i = 0; i < 8; i++)
        v = v << 8 | raw[i];
    *out = v;
    r->pos += need;
    return PX_OK;
}

static int read_bitmaps(rd *r, const iso8583_dialect *d, uint64_t bm[2], px_error *e)
{
    int rc = read_bitmap_word(r, d, "primary", &bm[0], e);
    bm[1] = 0;
    if (rc != PX_OK)
        return rc;
    if (!(bm[0] & ISO_TOP_BIT))
        return PX_OK;
    if (d->max_field <= 64)
        return px_error_set(e, PX_EFORMAT,
                            "bitmap: field 1 (secondary bitmap) set, but dialect "
                            "%s has fields 2-64 only",
                            d->name);
    return read_bitmap_word(r, d, "secondary", &bm[1], e);
}

static int read_framing(rd *r, const iso8583_dialect *d, iso8583_msg *m, px_error *e)
{
    if (rd_left(r) < d->tpdu_len)
        return px_error_set(e, PX_EFORMAT, "TPDU: needs %u bytes, %zu remain",
                            (unsigned)d->tpdu_len, rd_left(r));
    memcpy(m->tpdu, r->p + r->pos, d->tpdu_len);
    m->tpdu_len = d->tpdu_len;
    r->pos += d->tpdu_len;
    if (rd_left(r) < d->header_len)
        return px_error_set(e, PX_EFORMAT, "header: needs %u bytes, %zu remain",
                            (unsigned)d->header_len, rd_left(r));
    memcpy(m->header, r->p + r->pos, d->header_len);
    m->header_len = d->header_len;
    r->pos += d->header_len;
    return PX_OK;
}

int iso8583_unpack(const iso8583_dialect *d, const uint8_t *buf, size_t len, iso8583_msg *out,
                   px_error *e)
{
    rd r = {buf, len, 0};
    uint64_t bm[2];
    int rc, last = 0;
    iso8583_msg_init(out, d);
    if (len == 0 || buf == NULL)
        return px_error_set(e, PX_EFORMAT, "message: empty");
    if (len > (size_t)PX_ISO_MSG_MAX - d->frame_len_bytes)
        return px_error_set(e, PX_ETOOBIG, "message: %zu bytes exceed maximum %d", len,
                            PX_ISO_MSG_MAX - d->frame_len_bytes);
    if ((rc = read_framing(&r, d, out, e)) != PX_OK || (rc = read_mti(&r, d, out, e)) != PX_OK ||
        (rc = read_bitmaps(&r, d, bm, e)) != PX_OK)
        return rc;
    out->wire_bitmap[0] = bm[0];
    out->wire_bitmap[1] = bm[1];
    bm[0] &= ~ISO_TOP_BIT; /* field 1 is the secondary bitmap itself, already read */
    for (int w = 0; w < 2; w++) {
        uint64_t bits = bm[w];
        while (bits != 0) {
            int lz = __builtin_clzll(bits);
            last = w * 64 + lz + 1;
            bits &= ~(ISO_TOP_BIT >> lz);
            if ((rc = unpack_field(&r, d, last, out, e)) != PX_OK)
                return rc;
        }
    }
    if (rd_left(&r) != 0 && last != 0)
        return px_error_set(e, PX_EFORMAT, "message: %zu trailing byte%s after field %d",
                            rd_left(&r), rd_left(&r) == 1 ? "" : "s", last);
    if (rd_left(&r) != 0)
        return px_error_set(e, PX_EFORMAT, "message: %zu trailing byte%s after the bitmap",
                            rd_left(&r), rd_left(&r) == 1 ? "" : "s");
    return PX_OK;
}

/* ---------------------------------------------------------------- pack */

/* A cursor over the output. */
typedef struct wr {
    uint8_t *p;
    size_t cap;
    size_t pos;
} wr;

static int no_room(const wr *w, const char *what, int f, px_error *e)
{
    if (f > 0)
        return px_error_set(e, PX_ETOOBIG, "message: does not fit in %zu bytes (at field %d)",
                            w->cap, f);
    return px_error_set(e, PX_ETOOBIG, "message: does not fit in %zu bytes (at the %s)", w->cap,
                        what);
}

static void put_length(uint8_t *o, unsigned enc, int lll, size_t n)
{
    if (enc == ISO8583_ENC_ASCII) {
        if (lll)
            *o++ = (uint8_t)('0' + n / 100);
        o[0] = (uint8_t)('0' + n / 10 % 10);
        o[1] = (uint8_t)('0' + n % 10);
    } else if (enc == ISO8583_ENC_BCD) {
        if (lll)
            *o++ = (uint8_t)(n / 100);
        o[0] = (uint8_t)((n / 10 % 10) << 4 | n % 10);
    } else {
        if (lll)
            *o++ = (uint8_t)(n >> 8);
        o[0] = (uint8_t)(n & 0xFF);
    }
}

/* Values set for another dialect: check them against d's spec s as set/unpack would. */
static int recheck_value(const iso8583_dialect *d, const iso8583_msg *m, int f,
                         const iso8583_field_spec *s, px_error *e)
{
    const iso8583_field_spec *from = iso8583_field_spec_of(m->dialect, f);
    size_t n = m->len[f];
    size_t bad;
    if (from == NULL || (from->type == ISO8583_T_B) != (s->type == ISO8583_T_B))
        return px_error_set(e, PX_EINVAL, "field %d: binary in one dialect, text in %s", f,
                            d->name);
    if (s->len_kind == ISO8583_FIXED && n != s->max_len)
        return px_error_set(e, PX_EINVAL, "field %d: length %zu, dialect %s needs %u", f, n,
                            d->name, (unsigned)s->max_len);
    bad = iso_text_bad_pos(s, m->data + m->off[f], n);
    if (bad < n)
        return px_error_set(e, PX_EINVAL, "field %d: character %zu is not %s (dialect %s)", f,
                            bad + 1, iso_class_name(s), d->name);
    return PX_OK;
}

static int pack_field(wr *w, const iso8583_dialect *d, const iso8583_msg *m, int f, px_error *e)
{
    const iso8583_field_spec *s = &d->fields[f];
    size_t n = m->len[f], wire, plen = 0;
    int lll = s->len_kind == ISO8583_LLLVAR;
    int rc;
    if (s->type == ISO8583_T_UNDEF || f > d->max_field)
        return px_error_set(e, PX_EINVAL, "field %d: not defined in dialect %s", f, d->name);
    if (m->dialect != d && (rc = recheck_value(d, m, f, s, e)) != PX_OK)
        return rc;
    if (n > s->max_len || (s->len_kind == ISO8583_FIXED && n != s->max_len))
        return px_error_set(e, PX_EINTERNAL, "field %d: length %zu does not fit its spec", f, n);
    if (s->len_kind != ISO8583_FIXED)
        plen = s->len_enc == ISO8583_ENC_ASCII ? (size_t)(lll ? 3 : 2) : (size_t)(lll ? 2 : 1);
    wire = wire_bytes(s, n);
    if (w->cap - w->pos < plen + wire)
        return no_room(w, NULL, f, e);
    if (plen != 0)
        put_length(w->p + w->pos, s->len_enc, lll, n);
    w->pos += plen;
    if (s->data_enc == ISO8583_ENC_BCD)
        bcd_encode(m->data + m->off[f], n, s->align == ISO8583_ALIGN_LEFT, s->pad & 15u,
                   w->p + w->pos);
    else if (n > 0)
        memcpy(w->p + w->pos, m->data + m->off[f], n);
    w->pos += wire;
    return PX_OK;
}

static int pack_framing(wr *w, const iso8583_dialect *d, const iso8583_msg *m, px_error *e)
{
    size_t mti_len = d->mti_enc == ISO8583_ENC_BCD ? 2 : 4;
    if (!m->mti_valid)
        return px_error_set(e, PX_EINVAL, "MTI: not set");
    if (m->tpdu_len != d->tpdu_len)
        return px_error_set(e, PX_EINVAL, "TPDU: message has %u bytes, dialect %s needs %u",
                            (unsigned)m->tpdu_len, d->name, (unsigned)d->tpdu_len);
    if (m->header_len != d->header_len)
        return px_error_set(e, PX_EINVAL, "header: message has %u bytes, dialect %s needs %u",
                            (unsigned)m->header_len, d->name, (unsigned)d->header_len);
    if (w->cap - w->pos < (size_t)d->tpdu_len + d->header_len + mti_len)
        return no_room(w, "MTI", 0, e);
    memcpy(w->p + w->pos, m->tpdu, d->tpdu_len);
    w->pos += d->tpdu_len;
    memcpy(w->p + w->pos, m->header, d->header_len);
    w->pos += d->header_len;
    if (d->mti_enc == ISO8583_ENC_BCD)
        bcd_encode((const uint8_t *)m->mti, 4, 0, 0, w->p + w->pos);
    else
        memcpy(w->p + w->pos, m->mti, 4);
    w->pos += mti_len;
    return PX_OK;
}

static void put_bitmap_word(uint8_t *o, int hex, uint64_t v)
{
    static const char digits[] = "0123456789ABCDEF";
    for (int i = 0; i < 8; i++) {
        uint8_t b = (uint8_t)(v >> (56 - 8 * i));
        if (hex) {
            o[2 * i] = (uint8_t)digits[b >> 4];
            o[2 * i + 1] = (uint8_t)digits[b & 15];
        } else {
            o[i] = b;
        }
    }
}

static int pack_bitmaps(wr *w, const iso8583_dialect *d, const uint64_t bm[2], px_error *e)
{
    int hex = d->bitmap_enc == ISO8583_ENC_ASCII;
    size_t word = hex ? 16 : 8, words = bm[1] != 0 ? 2 : 1;
    if (bm[1] != 0 && d->max_field <= 64)
        return px_error_set(e, PX_EINVAL, "field %d: dialect %s has fields 2-64 only",
                            __builtin_clzll(bm[1]) + 65, d->name);
    if (w->cap - w->pos < word * words)
        return no_room(w, "bitmap", 0, e);
    put_bitmap_word(w->p + w->pos, hex, bm[0] | (bm[1] != 0 ? ISO_TOP_BIT : 0));
    if (words == 2)
        put_bitmap_word(w->p + w->pos + word, hex, bm[1]);
    w->pos += word * words;
    return PX_OK;
}

int iso8583_pack(const iso8583_dialect *d, const iso8583_msg *m, uint8_t *out, size_t cap,
                 size_t *outlen, px_error *e)
{
    wr w = {out, cap, 0};
    uint64_t bm[2] = {m->present[0] & ~ISO_TOP_BIT, m->present[1]};
    int rc;
    if ((rc = pack_framing(&w, d, m, e)) != PX_OK || (rc = pack_bitmaps(&w, d, bm, e)) != PX_OK)
        return rc;
    for (int wi = 0; wi < 2; wi++) {
        uint64_t bits = bm[wi];
        while (bits != 0) {
            int lz = __builtin_clzll(bits);
            bits &= ~(ISO_TOP_BIT >> lz);
            if ((rc = pack_field(&w, d, m, wi * 64 + lz + 1, e)) != PX_OK)
                return rc;
        }
    }
    if (w.pos + d->frame_len_bytes > PX_ISO_MSG_MAX)
        return px_error_set(e, PX_ETOOBIG, "message: %zu bytes exceed maximum %d", w.pos,
                            PX_ISO_MSG_MAX - d->frame_len_bytes);
    if (outlen != NULL)
        *outlen = w.pos;
    return PX_OK;
}

int iso8583_pack_framed(const iso8583_dialect *d, const iso8583_msg *m, uint8_t *out, size_t cap,
                        size_t *outlen, px_error *e)
{
    size_t k = d->frame_len_bytes, n = 0;
    int rc;
    if (cap < k)
        return px_error_set(e, PX_ETOOBIG, "message: does not fit in %zu bytes", cap);
    if ((rc = iso8583_pack(d, m, out + k, cap - k, &n, e)) != PX_OK)
        return rc;
    if (PX_BUG(k > 4) || (k > 0 && (uint64_t)n >> (8 * k) != 0))
        return px_error_set(e, PX_ETOOBIG, "message: %zu bytes do not fit a %zu-byte length", n, k);
    for (size_t i = 0; i < k; i++)
        out[i] = (uint8_t)(n >> (8 * (k - 1 - i)));
    if (outlen != NULL)
        *outlen = n + k;
    return PX_OK;
}

/* ---------------------------------------------------------------- MAC span */

/* UnionPay POS terminal spec, MAC calculation: the MAC covers the message from the MTI to
 * the last byte before field 64 (TPDU and header excluded); the same rule, applied to the
 * last field, serves ISO 8583:1987 links whose MAC is field 64 or 128. */
int iso8583_mac_span(const iso8583_dialect *d, const uint8_t *packed, size_t len, size_t *off,
                     size_t *n, px_error *e)
{
    size_t start = (size_t)d->tpdu_len + d->header_len;
    rd r = {packed, len, start + (d->mti_enc == ISO8583_ENC_BCD ? 2u : 4u)};
    const iso8583_field_spec *s;
    uint64_t bm[2];
    int rc, mac;
    if (packed == NULL || len < r.pos)
        return px_error_set(e, PX_EFORMAT, "message: %zu bytes, too short for a MAC", len);
    if ((rc = read_bitmaps(&r, d, bm, e)) != PX_OK)
        return rc;
    mac = bm[1] != 0 || (bm[0] & ISO_TOP_BIT) ? 128 : 64;
    if ((bm[mac / 64 - 1] & 1u) == 0)
        return px_error_set(e, PX_EFORMAT, "bitmap: MAC field %d is not present", mac);
    s = iso8583_field_spec_of(d, mac);
    if (s == NULL || s->type != ISO8583_T_B || s->len_kind != ISO8583_FIXED || s->max_len != 8)
        return px_error_set(e, PX_EINVAL, "field %d: not an 8-byte MAC in dialect %s", mac,
                            d->name);
    if (len < r.pos + 8)
        return px_error_set(e, PX_EFORMAT, "field %d: expected 8 bytes, %zu remain", mac,
                            len - r.pos);
    *off = start;
    *n = len - 8 - start;
    return PX_OK;
}
