/* testutil.h: known messages and small helpers shared by the iso8583 tests. */
#ifndef ISO8583_TESTUTIL_H
#define ISO8583_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "iso8583/iso8583.h"
#include "lib/hex.h"

/* UnionPay sign-on request 0800, built by hand from the layout in docs/iso8583-unionpay.md
 * (the frame length 003C is not part of it). */
/* clang-format off */
#define SIGNON_HEX                                                                        \
    "6000010000"                     /* TPDU: id 60, destination 0001, source 0000 */      \
    "603100310000"                   /* header */                                          \
    "0800"                           /* MTI, BCD */                                        \
    "0020000000C00012"               /* bitmap: 11 41 42 60 63 */                          \
    "000001"                         /* 11 n6 */                                           \
    "3132333435363738"               /* 41 ans8 "12345678" */                              \
    "313233343536373839303132333435" /* 42 ans15 "123456789012345" */                      \
    "0011" "000000010030"            /* 60 n...017: 11 digits 00 000001 003, pad 0 */      \
    "0003" "303031"                  /* 63 ans...163: "001" */

/* UnionPay purchase request 0200 with the fields of the benchmark. */
#define PURCHASE_HEX                                                                      \
    "6000010000" "603100310000" "0200"                                                    \
    "702404C030C09811" /* bitmap: 2 3 4 11 14 22 25 26 35 36 41 42 49 52 53 60 64 */     \
    "19" "62220202001122334450"                /* 2: 19 digits, left-aligned, pad 0 */    \
    "000000"                                   /* 3 */                                    \
    "000000010000"                             /* 4: 100.00 */                            \
    "000123"                                   /* 11 */                                   \
    "2512"                                     /* 14 */                                   \
    "0210"                                     /* 22: "021" left-aligned */               \
    "00"                                       /* 25 */                                   \
    "12"                                       /* 26 */                                   \
    "37" "6222020200112233445D251220100000123450" /* 35: '=' is nibble D */               \
    "0032" "996222020200112233445D1561560000"  /* 36 */                                   \
    "3132333435363738"                         /* 41 */                                   \
    "313233343536373839303132333435"           /* 42 */                                   \
    "313536"                                   /* 49 "156" */                             \
    "1122334455667788"                         /* 52 PIN block */                         \
    "2600000000000000"                         /* 53 */                                   \
    "0011" "220000010000"                      /* 60: 22 000001 000 */                    \
    "A1B2C3D4E5F60718"                         /* 64 MAC */
/* clang-format on */

#define TEST_PAN "6222020200112233445"
#define TEST_TRACK2 "6222020200112233445=25122010000012345"
#define TEST_TRACK3 "996222020200112233445=1561560000"

static inline size_t hex_to_bytes(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    assert_int_equal(px_hex_decode(hex, out, cap, &n), PX_OK);
    return n;
}

static inline void set_ok(iso8583_msg *m, int f, const char *v)
{
    px_error e = {0};
    int rc = iso8583_set(m, f, v, &e);
    if (rc != PX_OK)
        fail_msg("set field %d: %s", f, px_error_text(&e));
}

static inline void set_bin_hex(iso8583_msg *m, int f, const char *hex)
{
    uint8_t b[PX_ISO_FIELD_MAX];
    size_t n = hex_to_bytes(hex, b, sizeof b);
    px_error e = {0};
    if (iso8583_set_bin(m, f, b, n, &e) != PX_OK)
        fail_msg("set_bin field %d: %s", f, px_error_text(&e));
}

static inline void build_unionpay_head(iso8583_msg *m, const char *mti)
{
    static const uint8_t tpdu[5] = {0x60, 0x00, 0x01, 0x00, 0x00};
    static const uint8_t hdr[6] = {0x60, 0x31, 0x00, 0x31, 0x00, 0x00};
    iso8583_msg_init(m, &iso8583_unionpay_pos);
    assert_int_equal(iso8583_set_mti(m, mti, NULL), PX_OK);
    assert_int_equal(iso8583_set_tpdu(m, tpdu, 5, NULL), PX_OK);
    assert_int_equal(iso8583_set_header(m, hdr, 6, NULL), PX_OK);
}

static inline void build_signon(iso8583_msg *m)
{
    build_unionpay_head(m, "0800");
    set_ok(m, 11, "1");
    set_ok(m, 41, "12345678");
    set_ok(m, 42, "123456789012345");
    set_ok(m, 60, "00000001003");
    set_ok(m, 63, "001");
}

static inline void build_purchase(iso8583_msg *m)
{
    build_unionpay_head(m, "0200");
    set_ok(m, 2, TEST_PAN);
    set_ok(m, 3, "000000");
    set_ok(m, 4, "10000");
    set_ok(m, 11, "000123");
    set_ok(m, 14, "2512");
    set_ok(m, 22, "021");
    set_ok(m, 25, "00");
    set_ok(m, 26, "12");
    set_ok(m, 35, TEST_TRACK2);
    set_ok(m, 36, TEST_TRACK3);
    set_ok(m, 41, "12345678");
    set_ok(m, 42, "123456789012345");
    set_ok(m, 49, "156");
    set_bin_hex(m, 52, "1122334455667788");
    set_ok(m, 53, "2600000000000000");
    set_ok(m, 60, "22000001000");
    set_bin_hex(m, 64, "A1B2C3D4E5F60718");
}

/* Field f of m equals text (for text fields). */
static inline void assert_field(const iso8583_msg *m, int f, const char *text)
{
    const uint8_t *p;
    size_t n;
    if (iso8583_get(m, f, &p, &n) != PX_OK)
        fail_msg("field %d absent", f);
    if (n != strlen(text) || memcmp(p, text, n) != 0)
        fail_msg("field %d: got '%.*s', want '%s'", f, (int)n, (const char *)p, text);
    assert_int_equal(p[n], 0);
}

#endif
