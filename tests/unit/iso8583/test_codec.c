/* test_codec.c: iso8583 pack/unpack (codec.c) and the message API (msg.c). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>

static iso8583_msg g_m, g_m2; /* ~9 KB each: off the stack */
static uint8_t g_buf[PX_ISO_MSG_MAX + 64];

static void assert_packs_to(const iso8583_dialect *d, const iso8583_msg *m, const char *hex)
{
    uint8_t want[PX_ISO_MSG_MAX];
    size_t wn = hex_to_bytes(hex, want, sizeof want), n = 0;
    px_error e = {0};
    if (iso8583_pack(d, m, g_buf, sizeof g_buf, &n, &e) != PX_OK)
        fail_msg("pack: %s", px_error_text(&e));
    if (n != wn || memcmp(g_buf, want, n) != 0) {
        char got[2 * PX_ISO_MSG_MAX + 1];
        px_hex_encode(g_buf, n, got);
        fail_msg("packed\n  got  %s\n  want %s", got, hex);
    }
}

static void unpack_hex_ok(const iso8583_dialect *d, const char *hex, iso8583_msg *m)
{
    uint8_t b[PX_ISO_MSG_MAX];
    size_t n = hex_to_bytes(hex, b, sizeof b);
    px_error e = {0};
    if (iso8583_unpack(d, b, n, m, &e) != PX_OK)
        fail_msg("unpack: %s", px_error_text(&e));
}

static void test_signon_layout(void **state)
{
    size_t n = 0;
    (void)state;
    build_signon(&g_m);
    assert_packs_to(&iso8583_unionpay_pos, &g_m, SIGNON_HEX);
    /* framed: the 2-byte big-endian length 0x003C (60) comes first */
    assert_int_equal(iso8583_pack_framed(&iso8583_unionpay_pos, &g_m, g_buf, sizeof g_buf, &n,
                                         NULL),
                     PX_OK);
    assert_int_equal(n, 62);
    assert_int_equal(g_buf[0], 0x00);
    assert_int_equal(g_buf[1], 0x3C);
}

static void test_purchase_layout(void **state)
{
    (void)state;
    build_purchase(&g_m);
    assert_packs_to(&iso8583_unionpay_pos, &g_m, PURCHASE_HEX);
}

static void test_purchase_unpack_values(void **state)
{
    const uint8_t *p;
    size_t n;
    (void)state;
    unpack_hex_ok(&iso8583_unionpay_pos, PURCHASE_HEX, &g_m);
    assert_true(g_m.mti_valid);
    assert_string_equal(g_m.mti, "0200");
    assert_int_equal(g_m.tpdu_len, 5);
    assert_int_equal(g_m.header_len, 6);
    assert_field(&g_m, 2, TEST_PAN);
    assert_field(&g_m, 3, "000000");
    assert_field(&g_m, 4, "000000010000");
    assert_field(&g_m, 11, "000123");
    assert_field(&g_m, 22, "021");
    assert_field(&g_m, 26, "12");
    assert_field(&g_m, 35, TEST_TRACK2);
    assert_field(&g_m, 36, TEST_TRACK3);
    assert_field(&g_m, 41, "12345678");
    assert_field(&g_m, 42, "123456789012345");
    assert_field(&g_m, 49, "156");
    assert_field(&g_m, 53, "2600000000000000");
    assert_field(&g_m, 60, "22000001000");
    assert_int_equal(iso8583_get(&g_m, 52, &p, &n), PX_OK);
    assert_int_equal(n, 8);
    assert_memory_equal(p, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
    assert_false(iso8583_has(&g_m, 5));
    assert_int_equal(iso8583_get(&g_m, 5, &p, &n), PX_ENOTFOUND);
}

static void test_unionpay_roundtrip(void **state)
{
    size_t n = 0;
    (void)state;
    unpack_hex_ok(&iso8583_unionpay_pos, SIGNON_HEX, &g_m);
    assert_field(&g_m, 11, "000001");
    assert_field(&g_m, 60, "00000001003");
    assert_field(&g_m, 63, "001");
    assert_packs_to(&iso8583_unionpay_pos, &g_m, SIGNON_HEX);
    /* a response: sign-on reply with keys in 62 and a GBK issuer text in 63 */
    build_unionpay_head(&g_m, "0810");
    set_ok(&g_m, 39, "00");
    set_bin_hex(&g_m, 62, "00112233445566778899AABBCCDDEEFF0011223344556677");
    assert_int_equal(iso8583_set(&g_m, 63, "CUP\xD6\xD0\xB9\xFA", NULL), PX_OK);
    set_ok(&g_m, 32, "12345"); /* odd LLVAR n: trailing pad nibble */
    assert_int_equal(iso8583_pack(&iso8583_unionpay_pos, &g_m, g_buf, sizeof g_buf, &n, NULL),
                     PX_OK);
    assert_int_equal(iso8583_unpack(&iso8583_unionpay_pos, g_buf, n, &g_m2, NULL), PX_OK);
    assert_field(&g_m2, 32, "12345");
    assert_field(&g_m2, 63, "CUP\xD6\xD0\xB9\xFA");
    assert_int_equal(g_m2.len[62], 24);
}

static void test_pad_nibble_f_accepted(void **state)
{
    /* field 2 padded with F instead of 0, field 23 right-aligned with a leading F */
    static const char hex[] = "6000010000603100310000"
                              "0200"
                              "4000020000000000"
                              "19"
                              "6222020200112233445F"
                              "F001";
    (void)state;
    unpack_hex_ok(&iso8583_unionpay_pos, hex, &g_m);
    assert_field(&g_m, 2, TEST_PAN);
    assert_field(&g_m, 23, "001");
}

/* ISO 8583:1987 ASCII network management request, built by hand: fields 7, 11 and 70. */
static void test_1987_layout(void **state)
{
    static const char want[] = "0800"
                               "8220000000000000"
                               "0400000000000000"
                               "0611120000"
                               "000001"
                               "301";
    size_t n = 0;
    (void)state;
    iso8583_msg_init(&g_m, &iso8583_1987_ascii);
    assert_int_equal(iso8583_set_mti(&g_m, "0800", NULL), PX_OK);
    set_ok(&g_m, 7, "0611120000");
    set_ok(&g_m, 11, "1");
    set_ok(&g_m, 70, "301");
    assert_int_equal(iso8583_pack(&iso8583_1987_ascii, &g_m, g_buf, sizeof g_buf, &n, NULL), PX_OK);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(g_buf, want, n);
    /* lower-case hex bitmaps are accepted too */
    static const char rsp[] = "0810"
                              "a220000002000000"
                              "0400000000000000"
                              "000000"
                              "0611120000"
                              "000001"
                              "00"
                              "301";
    assert_int_equal(iso8583_unpack(&iso8583_1987_ascii, (const uint8_t *)rsp, strlen(rsp), &g_m2,
                                    NULL),
                     PX_OK);
    assert_field(&g_m2, 39, "00");
    assert_field(&g_m2, 70, "301");
}

static void build_1987_purchase(iso8583_msg *m)
{
    iso8583_msg_init(m, &iso8583_1987_ascii);
    assert_int_equal(iso8583_set_mti(m, "0200", NULL), PX_OK);
    set_ok(m, 2, TEST_PAN);
    set_ok(m, 3, "000000");
    set_ok(m, 4, "10000");
    set_ok(m, 7, "0611120000");
    set_ok(m, 11, "123");
    set_ok(m, 28, "C00000150");
    set_ok(m, 32, "48020000");
    set_ok(m, 35, TEST_TRACK2);
    set_ok(m, 37, "123456789012");
    set_ok(m, 41, "1234");
    set_ok(m, 43, "POSSUM TEST SHOP        SHANGHAI      CN");
    set_ok(m, 49, "156");
    set_bin_hex(m, 52, "1122334455667788");
    set_bin_hex(m, 55, "9F2608A1B2C3D4E5F60718");
    set_ok(m, 90, "020000012306111200000048020000000000000000");
    set_ok(m, 102, "ACC-001");
    set_bin_hex(m, 128, "0102030405060708");
}

static void test_1987_roundtrip(void **state)
{
    size_t n = 0, n2 = 0;
    static uint8_t again[PX_ISO_MSG_MAX];
    (void)state;
    build_1987_purchase(&g_m);
    assert_field(&g_m, 41, "1234    ");
    assert_field(&g_m, 11, "000123");
    assert_int_equal(iso8583_pack(&iso8583_1987_ascii, &g_m, g_buf, sizeof g_buf, &n, NULL), PX_OK);
    assert_memory_equal(g_buf, "0200F", 5);                      /* 1, 2, 3, 4 present */
    assert_memory_equal(g_buf + 4 + 16, "0000004004000001", 16); /* secondary: 90 102 128 */
    assert_memory_equal(g_buf + 36, "19" TEST_PAN, 21);
    assert_int_equal(iso8583_unpack(&iso8583_1987_ascii, g_buf, n, &g_m2, NULL), PX_OK);
    for (int f = 2; f <= 128; f++) {
        assert_int_equal(iso8583_has(&g_m, f), iso8583_has(&g_m2, f));
        if (iso8583_has(&g_m, f)) {
            assert_int_equal(g_m.len[f], g_m2.len[f]);
            assert_memory_equal(g_m.data + g_m.off[f], g_m2.data + g_m2.off[f], g_m.len[f]);
        }
    }
    assert_int_equal(iso8583_pack(&iso8583_1987_ascii, &g_m2, again, sizeof again, &n2, NULL),
                     PX_OK);
    assert_int_equal(n, n2);
    assert_memory_equal(g_buf, again, n);
}

/* A value set for one dialect packs in the other when the specs agree, and is re-checked. */
static void test_cross_dialect(void **state)
{
    px_error e = {0};
    size_t n = 0;
    (void)state;
    unpack_hex_ok(&iso8583_unionpay_pos, PURCHASE_HEX, &g_m);
    assert_int_equal(iso8583_pack(&iso8583_1987_ascii, &g_m, g_buf, sizeof g_buf, &n, &e),
                     PX_EINVAL);
    assert_string_equal(e.msg, "TPDU: message has 5 bytes, dialect iso1987 needs 0");
    g_m.tpdu_len = 0;
    g_m.header_len = 0;
    assert_int_equal(iso8583_pack(&iso8583_1987_ascii, &g_m, g_buf, sizeof g_buf, &n, &e), PX_OK);
    assert_memory_equal(g_buf, "0200", 4);
    assert_int_equal(iso8583_unpack(&iso8583_1987_ascii, g_buf, n, &g_m2, &e), PX_OK);
    assert_field(&g_m2, 35, TEST_TRACK2);
    assert_field(&g_m2, 60, "22000001000");
    /* UnionPay 62 is binary; in ISO 8583:1987 it is ans */
    build_unionpay_head(&g_m, "0810");
    set_bin_hex(&g_m, 62, "00FF");
    g_m.tpdu_len = 0;
    g_m.header_len = 0;
    assert_int_equal(iso8583_pack(&iso8583_1987_ascii, &g_m, g_buf, sizeof g_buf, &n, &e),
                     PX_EINVAL);
    assert_string_equal(e.msg, "field 62: binary in one dialect, text in iso1987");
}

struct bad_case {
    const iso8583_dialect *d;
    const char *input; /* hex for unionpay, ASCII for iso1987 */
    const char *error;
    int mti_valid;
};

#define HDR "6000010000603100310000"

/* clang-format off */
static const struct bad_case bad_cases[] = {
    {&iso8583_unionpay_pos, "", "message: empty", 0},
    {&iso8583_unionpay_pos, "6000", "TPDU: needs 5 bytes, 2 remain", 0},
    {&iso8583_unionpay_pos, "600001000060", "header: needs 6 bytes, 1 remain", 0},
    {&iso8583_unionpay_pos, HDR "08", "MTI: needs 2 bytes, 1 remain", 0},
    {&iso8583_unionpay_pos, HDR "0A00", "MTI: not 4 BCD digits", 0},
    {&iso8583_unionpay_pos, HDR "08000020", "bitmap: primary bitmap needs 8 bytes, 2 remain", 1},
    {&iso8583_unionpay_pos, HDR "0800" "0020000000000000" "0000",
     "field 11: expected 6 digits (3 bytes), 2 bytes remain", 1},
    {&iso8583_unionpay_pos, HDR "0800" "0020000000000000" "00000A",
     "field 11: digit 6 is not a BCD digit 0-9", 1},
    {&iso8583_unionpay_pos, HDR "0200" "4000000000000000",
     "field 2: length prefix needs 1 byte, 0 remain", 1},
    {&iso8583_unionpay_pos, HDR "0200" "4000000000000000" "1A",
     "field 2: length prefix is not BCD", 1},
    {&iso8583_unionpay_pos, HDR "0200" "4000000000000000" "25" "62220202001122334455667788",
     "field 2: length 25 exceeds maximum 19", 1},
    {&iso8583_unionpay_pos, HDR "0200" "4000000000000000" "19" "62220202001122334455",
     "field 2: pad nibble is not 0 or F", 1},
    {&iso8583_unionpay_pos, HDR "0200" "4000000000000000" "19" "622202020011",
     "field 2: expected 19 digits (10 bytes), 6 bytes remain", 1},
    {&iso8583_unionpay_pos, HDR "0200" "0000000020000000" "04" "62E2",
     "field 35: digit 3 is not a BCD digit 0-9 or separator D", 1},
    {&iso8583_unionpay_pos, HDR "0200" "0000000000800000" "3132013334353637",
     "field 41: byte 3 is not printable ASCII", 1},
    {&iso8583_unionpay_pos, HDR "0210" "0000000002000000" "3021",
     "field 39: byte 2 is not alphanumeric or space", 1},
    {&iso8583_unionpay_pos, HDR "0200" "0800000000000000" "000000000000",
     "field 5: present in bitmap but not defined in dialect unionpay", 1},
    {&iso8583_unionpay_pos, HDR "0200" "8000000000000000" "0000000000000000",
     "bitmap: field 1 (secondary bitmap) set, but dialect unionpay has fields 2-64 only", 1},
    {&iso8583_unionpay_pos, SIGNON_HEX "00", "message: 1 trailing byte after field 63", 1},
    {&iso8583_unionpay_pos, HDR "0800" "0000000000000000" "FFFF",
     "message: 2 trailing bytes after the bitmap", 1},
    {&iso8583_unionpay_pos, HDR "0810" "0000000000000004" "1000",
     "field 62: length 1000 exceeds maximum 512", 1},
    {&iso8583_1987_ascii, "08A0", "MTI: not 4 ASCII digits", 0},
    {&iso8583_1987_ascii, "0800822000000000000G", "bitmap: primary bitmap is not 16 hex digits",
     1},
    {&iso8583_1987_ascii, "08008000000000000000", "bitmap: secondary bitmap needs 16 bytes, 0 "
                                                  "remain", 1},
    {&iso8583_1987_ascii, "020040000000000000001X", "field 2: length prefix is not 2 digits", 1},
    {&iso8583_1987_ascii, "02004000000000000000196222", "field 2: expected 19 bytes, 4 remain",
     1},
    {&iso8583_1987_ascii, "02000000001000000000X00000100",
     "field 28: byte 1 is not a digit after the C/D sign", 1},
    {&iso8583_1987_ascii, "02000000001000000000C0000010A",
     "field 28: byte 9 is not a digit after the C/D sign", 1},
    {&iso8583_1987_ascii, "080080000000000000008000000000000000",
     "field 65: present in bitmap but not defined in dialect iso1987", 1},
    {&iso8583_1987_ascii, "0200000000002000000008123=ABCD",
     "field 35: byte 5 is not a digit or '='", 1},
};
/* clang-format on */

static void test_unpack_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        uint8_t b[PX_ISO_MSG_MAX];
        size_t n = strlen(c->input);
        px_error e = {0};
        int rc;
        if (c->d == &iso8583_unionpay_pos) {
            n = c->input[0] != 0 ? hex_to_bytes(c->input, b, sizeof b) : 0;
        } else {
            memcpy(b, c->input, n);
        }
        rc = iso8583_unpack(c->d, b, n, &g_m, &e);
        if (rc == PX_OK || strcmp(e.msg, c->error) != 0)
            fail_msg("case %zu: got rc %d '%s', want '%s'", i, rc, e.msg, c->error);
        if (g_m.mti_valid != c->mti_valid)
            fail_msg("case %zu: mti_valid %d, want %d", i, g_m.mti_valid, c->mti_valid);
    }
}

static void test_unpack_limits(void **state)
{
    static uint8_t big[PX_ISO_MSG_MAX + 1];
    px_error e = {0};
    (void)state;
    memset(big, '0', sizeof big);
    assert_int_equal(iso8583_unpack(&iso8583_1987_ascii, big, sizeof big, &g_m, &e), PX_ETOOBIG);
    assert_string_equal(e.msg, "message: 4097 bytes exceed maximum 4094");
    assert_int_equal(iso8583_unpack(&iso8583_1987_ascii, NULL, 0, &g_m, &e), PX_EFORMAT);
    assert_string_equal(e.msg, "message: empty");
    /* the MTI of a message whose fields are bad is still there for a response code 30 */
    assert_int_equal(iso8583_unpack(&iso8583_1987_ascii, (const uint8_t *)"02004", 5, &g_m, &e),
                     PX_EFORMAT);
    assert_true(g_m.mti_valid);
    assert_string_equal(g_m.mti, "0200");
}

static void test_set_checks(void **state)
{
    px_error e = {0};
    uint8_t pin[9] = {0};
    (void)state;
    build_unionpay_head(&g_m, "0200");
    assert_int_equal(iso8583_set(&g_m, 4, "12a", &e), PX_EFORMAT);
    assert_string_equal(e.msg, "field 4: character 3 is not a digit");
    assert_int_equal(iso8583_set(&g_m, 4, "1234567890123", &e), PX_EINVAL);
    assert_string_equal(e.msg, "field 4: length 13, must be at most 12");
    assert_int_equal(iso8583_set(&g_m, 2, "12345678901234567890", &e), PX_ETOOBIG);
    assert_string_equal(e.msg, "field 2: length 20 exceeds maximum 19");
    assert_int_equal(iso8583_set(&g_m, 5, "1", &e), PX_EINVAL);
    assert_string_equal(e.msg, "field 5: not defined in dialect unionpay");
    assert_int_equal(iso8583_set(&g_m, 65, "1", &e), PX_EINVAL);
    assert_int_equal(iso8583_set(&g_m, 1, "1", &e), PX_EINVAL);
    assert_int_equal(iso8583_set(&g_m, 52, "1234", &e), PX_EINVAL);
    assert_string_equal(e.msg, "field 52: binary field; use iso8583_set_bin");
    assert_int_equal(iso8583_set_bin(&g_m, 4, pin, 8, &e), PX_EINVAL);
    assert_string_equal(e.msg, "field 4: text field; use iso8583_set");
    assert_int_equal(iso8583_set_bin(&g_m, 52, pin, 9, &e), PX_EINVAL);
    assert_string_equal(e.msg, "field 52: length 9, must be exactly 8");
    assert_int_equal(iso8583_set(&g_m, 35, "1234D5678", &e), PX_EFORMAT);
    assert_string_equal(e.msg, "field 35: character 5 is not a digit or '='");
    assert_int_equal(iso8583_set(&g_m, 41, "AB\tC", &e), PX_EFORMAT);
    assert_int_equal(iso8583_set(&g_m, 63, "ok\xB9\xFA", &e), PX_OK); /* 63 admits GBK */
    assert_int_equal(iso8583_set(&g_m, 42, "\xB9\xFA", &e), PX_EFORMAT);
    assert_int_equal(iso8583_set_mti(&g_m, "02000", &e), PX_EINVAL);
    assert_int_equal(iso8583_set_mti(&g_m, "02a0", &e), PX_EINVAL);
    assert_int_equal(iso8583_set_tpdu(&g_m, pin, PX_ISO_TPDU_MAX + 1, &e), PX_ETOOBIG);
    assert_int_equal(iso8583_set_header(&g_m, pin, PX_ISO_HEADER_MAX + 1, &e), PX_ETOOBIG);
    /* padding of short fixed values: numbers zero-filled on the left, text space-filled */
    set_ok(&g_m, 4, "100");
    assert_field(&g_m, 4, "000000000100");
    set_ok(&g_m, 41, "T1");
    assert_field(&g_m, 41, "T1      ");
    /* a shorter value reuses the field's place; a longer one takes a new place */
    set_ok(&g_m, 2, "1234567890123");
    set_ok(&g_m, 2, "123");
    assert_field(&g_m, 2, "123");
    set_ok(&g_m, 2, TEST_PAN);
    assert_field(&g_m, 2, TEST_PAN);
}

static void test_value_area_full(void **state)
{
    static char big[PX_ISO_FIELD_MAX + 1];
    px_error e = {0};
    int rc = PX_OK;
    (void)state;
    memset(big, 'A', PX_ISO_FIELD_MAX);
    iso8583_msg_init(&g_m, &iso8583_1987_ascii);
    for (int f = 105; f <= 127 && rc == PX_OK; f++)
        rc = iso8583_set(&g_m, f, big, &e);
    assert_int_equal(rc, PX_ETOOBIG);
    assert_non_null(strstr(e.msg, "message value area full"));
}

static void test_pack_errors(void **state)
{
    px_error e = {0};
    size_t n = 0, want = strlen(PURCHASE_HEX) / 2;
    char msg[128];
    (void)state;
    iso8583_msg_init(&g_m, &iso8583_unionpay_pos);
    assert_int_equal(iso8583_pack(&iso8583_unionpay_pos, &g_m, g_buf, sizeof g_buf, &n, &e),
                     PX_EINVAL);
    assert_string_equal(e.msg, "MTI: not set");
    assert_int_equal(iso8583_set_mti(&g_m, "0800", NULL), PX_OK);
    assert_int_equal(iso8583_pack(&iso8583_unionpay_pos, &g_m, g_buf, sizeof g_buf, &n, &e),
                     PX_EINVAL);
    assert_string_equal(e.msg, "TPDU: message has 0 bytes, dialect unionpay needs 5");
    build_purchase(&g_m);
    for (size_t cap = 0; cap < want; cap++)
        assert_int_equal(iso8583_pack(&iso8583_unionpay_pos, &g_m, g_buf, cap, &n, &e), PX_ETOOBIG);
    snprintf(msg, sizeof msg, "message: does not fit in %zu bytes (at field 64)", want - 1);
    assert_string_equal(e.msg, msg);
    assert_int_equal(iso8583_pack(&iso8583_unionpay_pos, &g_m, g_buf, want, &n, &e), PX_OK);
    assert_int_equal(n, want);
    assert_int_equal(iso8583_pack_framed(&iso8583_unionpay_pos, &g_m, g_buf, want + 1, &n, &e),
                     PX_ETOOBIG);
    assert_int_equal(iso8583_pack_framed(&iso8583_unionpay_pos, &g_m, g_buf, want + 2, &n, &e),
                     PX_OK);
    assert_int_equal(iso8583_pack_framed(&iso8583_unionpay_pos, &g_m, g_buf, 1, &n, &e),
                     PX_ETOOBIG);
}

static void test_mac_span(void **state)
{
    uint8_t b[PX_ISO_MSG_MAX];
    size_t n = hex_to_bytes(PURCHASE_HEX, b, sizeof b), off = 0, len = 0;
    px_error e = {0};
    (void)state;
    assert_int_equal(iso8583_mac_span(&iso8583_unionpay_pos, b, n, &off, &len, &e), PX_OK);
    assert_int_equal(off, 11);          /* after TPDU and header: the MTI */
    assert_int_equal(off + len, n - 8); /* up to field 64 */
    assert_memory_equal(b + off + len, "\xA1\xB2\xC3\xD4\xE5\xF6\x07\x18", 8);
    n = hex_to_bytes(SIGNON_HEX, b, sizeof b);
    assert_int_equal(iso8583_mac_span(&iso8583_unionpay_pos, b, n, &off, &len, &e), PX_EFORMAT);
    assert_string_equal(e.msg, "bitmap: MAC field 64 is not present");
    assert_int_equal(iso8583_mac_span(&iso8583_unionpay_pos, b, 5, &off, &len, &e), PX_EFORMAT);
    /* ISO 8583:1987 with a secondary bitmap: the MAC is field 128 */
    build_1987_purchase(&g_m);
    assert_int_equal(iso8583_pack(&iso8583_1987_ascii, &g_m, b, sizeof b, &n, NULL), PX_OK);
    assert_int_equal(iso8583_mac_span(&iso8583_1987_ascii, b, n, &off, &len, &e), PX_OK);
    assert_int_equal(off, 0);
    assert_int_equal(len, n - 8);
    assert_memory_equal(b + len, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
}

static void test_response_mti(void **state)
{
    static const char *const pairs[][2] = {{"0200", "0210"}, {"0800", "0810"}, {"0100", "0110"},
                                           {"0420", "0430"}, {"0421", "0430"}, {"0220", "0230"},
                                           {"0500", "0510"}, {"0320", "0330"}};
    char out[5];
    (void)state;
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        assert_int_equal(iso8583_response_mti(pairs[i][0], out), PX_OK);
        assert_string_equal(out, pairs[i][1]);
    }
    assert_int_equal(iso8583_response_mti("0210", out), PX_EINVAL);
    assert_int_equal(iso8583_response_mti("02x0", out), PX_EINVAL);
    assert_int_equal(iso8583_response_mti("020", out), PX_EINVAL);
    assert_int_equal(iso8583_response_mti(NULL, out), PX_EINVAL);
}

static void test_msg_response(void **state)
{
    (void)state;
    unpack_hex_ok(&iso8583_unionpay_pos, PURCHASE_HEX, &g_m);
    assert_int_equal(iso8583_msg_response(&g_m, &g_m2, NULL), PX_OK);
    assert_string_equal(g_m2.mti, "0210");
    assert_memory_equal(g_m2.tpdu, "\x60\x00\x00\x00\x01", 5);
    assert_memory_equal(g_m2.header, g_m.header, 6);
    assert_int_equal(iso8583_next_field(&g_m2, 1), 0);
    iso8583_msg_init(&g_m, &iso8583_unionpay_pos);
    assert_int_equal(iso8583_msg_response(&g_m, &g_m2, NULL), PX_EINVAL);
}

static void test_iterate_clear_cleanse(void **state)
{
    static const int want[] = {2, 3, 4, 11, 14, 22, 25, 26, 35, 36, 41, 42, 49, 52, 53, 60, 64};
    size_t k = 0;
    (void)state;
    build_purchase(&g_m);
    for (int f = iso8583_next_field(&g_m, 0); f != 0; f = iso8583_next_field(&g_m, f))
        assert_int_equal(f, want[k++]);
    assert_int_equal(k, sizeof want / sizeof want[0]);
    iso8583_clear(&g_m, 52);
    assert_false(iso8583_has(&g_m, 52));
    assert_int_equal(iso8583_next_field(&g_m, 49), 53);
    assert_int_equal(iso8583_next_field(&g_m, 64), 0);
    assert_int_equal(iso8583_next_field(&g_m, 128), 0);
    iso8583_msg_init(&g_m2, &iso8583_1987_ascii);
    set_ok(&g_m2, 100, "1");
    assert_int_equal(iso8583_next_field(&g_m2, 0), 100);
    assert_int_equal(iso8583_next_field(&g_m2, 64), 100);
    iso8583_msg_cleanse(&g_m);
    assert_int_equal(g_m.used, 0);
    assert_false(iso8583_has(&g_m, 2));
    for (size_t i = 0; i < 64; i++)
        assert_int_equal(g_m.data[i], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signon_layout),
        cmocka_unit_test(test_purchase_layout),
        cmocka_unit_test(test_purchase_unpack_values),
        cmocka_unit_test(test_unionpay_roundtrip),
        cmocka_unit_test(test_pad_nibble_f_accepted),
        cmocka_unit_test(test_1987_layout),
        cmocka_unit_test(test_1987_roundtrip),
        cmocka_unit_test(test_cross_dialect),
        cmocka_unit_test(test_unpack_errors),
        cmocka_unit_test(test_unpack_limits),
        cmocka_unit_test(test_set_checks),
        cmocka_unit_test(test_value_area_full),
        cmocka_unit_test(test_pack_errors),
        cmocka_unit_test(test_mac_span),
        cmocka_unit_test(test_response_mti),
        cmocka_unit_test(test_msg_response),
        cmocka_unit_test(test_iterate_clear_cleanse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
