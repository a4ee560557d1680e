/* dump.c: human-readable views of a message that never show a secret. */
#include "iso8583/iso8583.h"
#include "iso8583/iso8583_int.h"
#include "lib/hex.h"

#include <stdio.h>
#include <string.h>

/* A bounded text builder (cap > 0): ends in "..." when something was cut. */
typedef struct sb {
    char *p;
    size_t cap;
    size_t len;
    int cut;
} sb;

static void sb_putc(sb *b, char c)
{
    if (b->cut)
        return;
    if (b->len + 1 < b->cap) {
        b->p[b->len++] = c;
        return;
    }
    b->cut = 1;
    if (b->cap >= 4) {
        memcpy(b->p + b->cap - 4, "...", 3);
        b->len = b->cap - 1;
    }
}

static void sb_puts(sb *b, const char *s)
{
    while (*s)
        sb_putc(b, *s++);
}

static void sb_end(sb *b)
{
    b->p[b->len] = 0;
}

static void put_hex_byte(sb *b, uint8_t c)
{
    static const char digits[] = "0123456789ABCDEF";
    sb_putc(b, digits[c >> 4]);
    sb_putc(b, digits[c & 15]);
}

/* Printable ASCII as is; a backslash doubled; anything else as \xHH. */
static void put_escaped(sb *b, uint8_t c)
{
    if (c == '\\') {
        sb_puts(b, "\\\\");
    } else if (c >= 0x20 && c <= 0x7E) {
        sb_putc(b, (char)c);
    } else {
        sb_puts(b, "\\x");
        put_hex_byte(b, c);
    }
}

/* PCI DSS 3.4 display rule, as px_mask_pan: first 6 and last 4 shown; shorter than 11
 * characters, only the last 4. */
static void put_masked_account(sb *b, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int shown = n >= 11 ? (i < 6 || i + 4 >= n) : i + 4 >= n;
        uint8_t c = p[i];
        sb_putc(b, !shown ? '*' : (c >= 0x20 && c <= 0x7E && c != '\\') ? (char)c : '?');
    }
}

/* Track data: the account part (before the first '=' or '^') masked like a PAN, the
 * separator kept, everything after it (expiry, service code, CVV, name) as '*'. */
static void put_masked_track(sb *b, const uint8_t *p, size_t n)
{
    size_t sep = 0;
    while (sep < n && p[sep] != '=' && p[sep] != '^')
        sep++;
    put_masked_account(b, p, sep);
    if (sep < n)
        sb_putc(b, (char)p[sep]);
    for (size_t i = sep + 1; i < n; i++)
        sb_putc(b, '*');
}

void iso8583_field_display(const iso8583_msg *m, int f, char *out, size_t outsz)
{
    const iso8583_field_spec *s = iso8583_field_spec_of(m->dialect, f);
    const uint8_t *p;
    size_t n;
    sb b = {out, outsz, 0, 0};
    if (outsz == 0)
        return;
    out[0] = 0;
    if (iso8583_get(m, f, &p, &n) != PX_OK)
        return;
    if (s == NULL || s->sens == ISO8583_SENS_PIN || s->sens == ISO8583_SENS_MAC ||
        s->sens == ISO8583_SENS_KEY) {
        snprintf(out, outsz, "[hidden, %zu bytes]", n);
        return;
    }
    if (s->sens == ISO8583_SENS_PAN)
        put_masked_account(&b, p, n);
    else if (s->sens == ISO8583_SENS_TRACK)
        put_masked_track(&b, p, n);
    else if (s->type == ISO8583_T_B)
        for (size_t i = 0; i < n; i++)
            put_hex_byte(&b, p[i]);
    else
        for (size_t i = 0; i < n; i++)
            put_escaped(&b, p[i]);
    sb_end(&b);
}

static int dump_framing(const iso8583_msg *m, px_buf *out)
{
    const iso8583_dialect *d = m->dialect;
    char hex[2 * PX_ISO_HEADER_MAX + 1];
    int rc = px_buf_printf(out, "dialect  %s\n", d ? d->name : "(none)");
    if (rc == PX_OK && m->tpdu_len > 0) {
        px_hex_encode(m->tpdu, m->tpdu_len, hex);
        rc = px_buf_printf(out, "TPDU     %s\n", hex);
    }
    if (rc == PX_OK && m->header_len > 0) {
        px_hex_encode(m->header, m->header_len, hex);
        rc = px_buf_printf(out, "header   %s\n", hex);
    }
    if (rc == PX_OK)
        rc = px_buf_printf(out, "MTI      %s\n", m->mti_valid ? m->mti : "(unreadable)");
    return rc;
}

/* The bitmap as received when the message was unpacked (it names the fields a failed
 * unpack did not reach), else as pack would write it. */
static int dump_bitmap(const iso8583_msg *m, px_buf *out)
{
    int got = m->wire_bitmap[0] != 0;
    uint64_t w1 = got ? m->wire_bitmap[1] : m->present[1];
    uint64_t w0 = got ? m->wire_bitmap[0]
                      : (m->present[0] & ~ISO_TOP_BIT) | (w1 != 0 ? ISO_TOP_BIT : 0);
    int rc = px_buf_printf(out, "bitmap   %016llX", (unsigned long long)w0);
    if (rc == PX_OK && (w0 & ISO_TOP_BIT))
        rc = px_buf_printf(out, " %016llX", (unsigned long long)w1);
    if (rc == PX_OK)
        rc = px_buf_append_str(out, "\n");
    return rc;
}

/* ISO 8583 message as a table: one line per present field, secrets masked or hidden. */
int iso8583_dump(const iso8583_msg *m, px_buf *out)
{
    char value[4 * PX_ISO_FIELD_MAX + 32], fmt[16];
    int rc = dump_framing(m, out);
    if (rc == PX_OK)
        rc = dump_bitmap(m, out);
    for (int f = iso8583_next_field(m, 1); rc == PX_OK && f != 0; f = iso8583_next_field(m, f)) {
        const iso8583_field_spec *s = iso8583_field_spec_of(m->dialect, f);
        if (s != NULL)
            iso8583_spec_format(s, fmt, sizeof fmt);
        iso8583_field_display(m, f, value, sizeof value);
        rc = px_buf_printf(out, "%5d  %-42s %-9s %s\n", f, s ? s->name : "(undefined)",
                           s ? fmt : "?", value);
    }
    return rc;
}
