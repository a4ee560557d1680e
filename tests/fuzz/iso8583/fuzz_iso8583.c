/*
 * fuzz_iso8583: iso8583_unpack on arbitrary bytes, in both dialects. Whatever unpacks must
 * pack again, unpack again to the same values, and pack to the same bytes the second time;
 * the display, the dump and the MAC span must cope with it too.
 */
#include "iso8583/iso8583.h"

#include <stdlib.h>
#include <string.h>

static iso8583_msg m1, m2;
static uint8_t out1[PX_ISO_MSG_MAX], out2[PX_ISO_MSG_MAX];

static void same_values(const iso8583_msg *a, const iso8583_msg *b)
{
    if (strcmp(a->mti, b->mti) != 0 || a->tpdu_len != b->tpdu_len ||
        memcmp(a->tpdu, b->tpdu, a->tpdu_len) != 0 || a->header_len != b->header_len ||
        memcmp(a->header, b->header, a->header_len) != 0)
        abort();
    for (int f = 2; f <= PX_ISO_FIELDS; f++) {
        if (iso8583_has(a, f) != iso8583_has(b, f))
            abort();
        if (iso8583_has(a, f) && (a->len[f] != b->len[f] ||
                                  memcmp(a->data + a->off[f], b->data + b->off[f], a->len[f]) != 0))
            abort();
    }
}

static void roundtrip(const iso8583_dialect *d, const uint8_t *data, size_t size)
{
    size_t n1 = 0, n2 = 0, off, n;
    char shown[4 * PX_ISO_FIELD_MAX + 32];
    px_buf dump;
    if (iso8583_unpack(d, data, size, &m1, NULL) != PX_OK)
        return;
    if (iso8583_pack(d, &m1, out1, sizeof out1, &n1, NULL) != PX_OK)
        abort();
    if (iso8583_unpack(d, out1, n1, &m2, NULL) != PX_OK)
        abort();
    same_values(&m1, &m2);
    if (iso8583_pack(d, &m2, out2, sizeof out2, &n2, NULL) != PX_OK || n1 != n2 ||
        memcmp(out1, out2, n1) != 0)
        abort();
    if (iso8583_mac_span(d, out1, n1, &off, &n, NULL) == PX_OK && off + n + 8 != n1)
        abort();
    for (int f = iso8583_next_field(&m1, 0); f != 0; f = iso8583_next_field(&m1, f))
        iso8583_field_display(&m1, f, shown, sizeof shown);
    px_buf_init(&dump, PX_ISO_DUMP_MAX);
    (void)iso8583_dump(&m1, &dump);
    px_buf_free(&dump);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    roundtrip(&iso8583_unionpay_pos, data, size);
    roundtrip(&iso8583_1987_ascii, data, size);
    return 0;
}
