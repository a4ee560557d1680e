/* test_dump.c: displays (dump.c) mask the PAN and track data and hide PIN, MAC and keys. */
#include "testutil.h"

static iso8583_msg g_m;

static char *dump_of(const iso8583_msg *m, px_buf *out)
{
    px_buf_init(out, PX_ISO_DUMP_MAX);
    assert_int_equal(iso8583_dump(m, out), PX_OK);
    return (char *)out->data;
}

static void assert_line(const char *text, const char *line)
{
    if (strstr(text, line) == NULL)
        fail_msg("no line '%s' in:\n%s", line, text);
}

static void test_purchase_dump_masks(void **state)
{
    uint8_t b[PX_ISO_MSG_MAX];
    size_t n = hex_to_bytes(PURCHASE_HEX, b, sizeof b);
    px_buf out;
    char *t;
    (void)state;
    assert_int_equal(iso8583_unpack(&iso8583_unionpay_pos, b, n, &g_m, NULL), PX_OK);
    t = dump_of(&g_m, &out);
    assert_line(t, "dialect  unionpay\n");
    assert_line(t, "TPDU     6000010000\n");
    assert_line(t, "header   603100310000\n");
    assert_line(t, "MTI      0200\n");
    assert_line(t, "bitmap   702404C030C09811\n");
    assert_line(t, "    2  Primary account number");
    assert_line(t, "n..19     622202*********3445\n");
    assert_line(t, "z..37     622202*********3445=*****************\n");
    assert_line(t, "z...104   996222***********3445=**********\n");
    assert_line(t, "   52  PIN data");
    assert_line(t, "b8        [hidden, 8 bytes]\n");
    assert_line(t, "   53  Security related control info");
    assert_line(t, "n16       2600000000000000\n");
    assert_line(t, "   64  Message authentication code");
    assert_line(t, "ans8      12345678\n");
    /* nothing secret anywhere */
    assert_null(strstr(t, TEST_PAN));
    assert_null(strstr(t, "0200112233"));
    assert_null(strstr(t, "2512201"));
    assert_null(strstr(t, "1122334455667788"));
    assert_null(strstr(t, "A1B2C3D4E5F60718"));
    px_buf_free(&out);
}

static void test_signon_response_hides_keys(void **state)
{
    px_buf out;
    char *t;
    (void)state;
    build_unionpay_head(&g_m, "0810");
    set_ok(&g_m, 39, "00");
    set_bin_hex(&g_m, 62, "0123456789ABCDEFFEDCBA98765432100123456789ABCDEF");
    set_bin_hex(&g_m, 55, "9F2608A1B2C3D4E5F60718");
    assert_int_equal(iso8583_set(&g_m, 63, "CUP\xD6\xD0", NULL), PX_OK);
    t = dump_of(&g_m, &out);
    assert_line(t, "b...512   [hidden, 24 bytes]\n");
    assert_line(t, "b...255   9F2608A1B2C3D4E5F60718\n"); /* IC data: shown */
    assert_line(t, "ans...163 CUP\\xD6\\xD0\n");          /* GBK escaped */
    assert_null(strstr(t, "0123456789ABCDEF"));
    px_buf_free(&out);
}

static void test_field_display(void **state)
{
    char out[64], tiny[8];
    (void)state;
    iso8583_msg_init(&g_m, &iso8583_1987_ascii);
    set_ok(&g_m, 2, "4000001234"); /* short: all but the last 4 masked */
    set_ok(&g_m, 45, "B4000001234567899^DOE/JOHN^2512101");
    set_ok(&g_m, 48, "back\\slash");
    set_ok(&g_m, 43, "A VERY LONG MERCHANT NAME THAT IS CUT");
    iso8583_field_display(&g_m, 2, out, sizeof out);
    assert_string_equal(out, "******1234");
    iso8583_field_display(&g_m, 45, out, sizeof out);
    assert_string_equal(out, "B40000*******7899^****************");
    iso8583_field_display(&g_m, 48, out, sizeof out);
    assert_string_equal(out, "back\\\\slash");
    iso8583_field_display(&g_m, 43, tiny, sizeof tiny);
    assert_string_equal(tiny, "A VE...");
    iso8583_field_display(&g_m, 3, out, sizeof out); /* absent */
    assert_string_equal(out, "");
    iso8583_field_display(&g_m, 43, out, 0); /* nothing written, no crash */
}

/* After a failed unpack the dump shows the bitmap as received and the fields before the
 * bad one; once a field is set, the bitmap is the one pack would write. */
static void test_partial_dump(void **state)
{
    uint8_t b[PX_ISO_MSG_MAX];
    size_t n = hex_to_bytes(PURCHASE_HEX, b, sizeof b);
    px_error e = {0};
    px_buf out;
    char *t;
    (void)state;
    assert_int_equal(iso8583_unpack(&iso8583_unionpay_pos, b, n - 10, &g_m, &e), PX_EFORMAT);
    assert_string_equal(e.msg, "field 60: expected 11 digits (6 bytes), 4 bytes remain");
    t = dump_of(&g_m, &out);
    assert_line(t, "bitmap   702404C030C09811\n");
    assert_line(t, "   53  Security related control info");
    assert_null(strstr(t, "   60  "));
    px_buf_free(&out);
    iso8583_clear(&g_m, 53);
    t = dump_of(&g_m, &out);
    assert_line(t, "bitmap   702404C030C09000\n");
    px_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_purchase_dump_masks),
        cmocka_unit_test(test_signon_response_hides_keys),
        cmocka_unit_test(test_field_display),
        cmocka_unit_test(test_partial_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
