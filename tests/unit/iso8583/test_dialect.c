/* test_dialect.c: the built-in dialect tables (dialect*.c) and their checker. */
#include "testutil.h"

static void test_builtin_dialects_are_consistent(void **state)
{
    px_error e = {0};
    (void)state;
    if (iso8583_dialect_check(&iso8583_unionpay_pos, &e) != PX_OK)
        fail_msg("%s", e.msg);
    if (iso8583_dialect_check(&iso8583_1987_ascii, &e) != PX_OK)
        fail_msg("%s", e.msg);
}

static void test_find(void **state)
{
    (void)state;
    assert_ptr_equal(iso8583_dialect_find("unionpay"), &iso8583_unionpay_pos);
    assert_ptr_equal(iso8583_dialect_find("iso1987"), &iso8583_1987_ascii);
    assert_null(iso8583_dialect_find("iso1993"));
    assert_null(iso8583_dialect_find(NULL));
}

static const char *fmt(const iso8583_dialect *d, int f)
{
    static char out[16];
    const iso8583_field_spec *s = iso8583_field_spec_of(d, f);
    assert_non_null(s);
    iso8583_spec_format(s, out, sizeof out);
    return out;
}

/* Spot checks against the published layouts (docs/iso8583-*.md cite the sources). */
static void test_unionpay_specs(void **state)
{
    const iso8583_dialect *d = &iso8583_unionpay_pos;
    (void)state;
    assert_string_equal(fmt(d, 2), "n..19");
    assert_string_equal(fmt(d, 4), "n12");
    assert_string_equal(fmt(d, 35), "z..37");
    assert_string_equal(fmt(d, 36), "z...104");
    assert_string_equal(fmt(d, 41), "ans8");
    assert_string_equal(fmt(d, 52), "b8");
    assert_string_equal(fmt(d, 60), "n...17");
    assert_string_equal(fmt(d, 62), "b...512");
    assert_int_equal(d->fields[22].align, ISO8583_ALIGN_LEFT);
    assert_int_equal(d->fields[23].align, ISO8583_ALIGN_RIGHT);
    assert_int_equal(d->fields[2].data_enc, ISO8583_ENC_BCD);
    assert_int_equal(d->fields[49].data_enc, ISO8583_ENC_ASCII);
    assert_int_equal(d->fields[62].sens, ISO8583_SENS_KEY);
    assert_int_equal(d->fields[53].sens, ISO8583_SENS_NONE);
    assert_null(iso8583_field_spec_of(d, 5));
    assert_null(iso8583_field_spec_of(d, 65));
    assert_null(iso8583_field_spec_of(d, 1));
    assert_int_equal(d->tpdu_len, 5);
    assert_int_equal(d->header_len, 6);
}

static void test_1987_specs(void **state)
{
    const iso8583_dialect *d = &iso8583_1987_ascii;
    int defined = 0;
    (void)state;
    assert_string_equal(fmt(d, 2), "n..19");
    assert_string_equal(fmt(d, 7), "n10");
    assert_string_equal(fmt(d, 28), "x+n8");
    assert_string_equal(fmt(d, 43), "ans40");
    assert_string_equal(fmt(d, 48), "ans...999");
    assert_string_equal(fmt(d, 90), "n42");
    assert_string_equal(fmt(d, 95), "an42");
    assert_string_equal(fmt(d, 97), "x+n16");
    assert_string_equal(fmt(d, 102), "ans..28");
    assert_string_equal(fmt(d, 128), "b8");
    for (int f = 2; f <= 128; f++)
        defined += iso8583_field_spec_of(d, f) != NULL;
    assert_int_equal(defined, 126); /* all but 65, the tertiary bitmap */
    assert_int_equal(d->fields[96].sens, ISO8583_SENS_MAC);
    assert_int_equal(d->fields[45].sens, ISO8583_SENS_TRACK);
}

static void test_check_rejects_bad_tables(void **state)
{
    static iso8583_field_spec fields[PX_ISO_FIELDS + 1];
    iso8583_dialect d = iso8583_1987_ascii;
    px_error e = {0};
    (void)state;
    d.fields = fields;
    memcpy(fields, iso8583_1987_ascii.fields, sizeof fields);
    fields[2].max_len = 150; /* LLVAR cannot say 150 */
    assert_int_equal(iso8583_dialect_check(&d, &e), PX_ECONFIG);
    assert_string_equal(e.msg, "dialect iso1987: field 2: LLVAR maximum over 99");
    fields[2] = iso8583_1987_ascii.fields[2];
    fields[41].data_enc = ISO8583_ENC_BCD;
    assert_int_equal(iso8583_dialect_check(&d, &e), PX_ECONFIG);
    assert_string_equal(e.msg, "dialect iso1987: field 41: BCD is only for n and z");
    fields[41] = iso8583_1987_ascii.fields[41];
    fields[52].data_enc = ISO8583_ENC_ASCII;
    assert_int_equal(iso8583_dialect_check(&d, &e), PX_ECONFIG);
    fields[52] = iso8583_1987_ascii.fields[52];
    d.max_field = 64;
    assert_int_equal(iso8583_dialect_check(&d, &e), PX_ECONFIG);
    assert_string_equal(e.msg, "dialect iso1987: field 66: beyond max_field 64");
    d.max_field = 128;
    d.tpdu_len = PX_ISO_TPDU_MAX + 1;
    assert_int_equal(iso8583_dialect_check(&d, &e), PX_ECONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_dialects_are_consistent),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_unionpay_specs),
        cmocka_unit_test(test_1987_specs),
        cmocka_unit_test(test_check_rejects_bad_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
