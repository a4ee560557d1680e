/* test_derive.c: key diversification (EMV option A, PBOC) from a master key.
 * Known answers: tests/vectors/derive.ini (pyemv EMV option A check digits; independent). */
#include "vectors.h"

#include "crypto/crypto.h"

static void test_known_answers(void **state)
{
    px_config *c = vec_open("derive.ini");
    const char *sec;
    int raw = 0, emv = 0;
    VEC_EACH(c, sec, "")
    {
        uint8_t mk[16], data[16], out[16], kcv[8];
        size_t n = 0;
        px_error e = {0};
        size_t ml = vec_hex(c, sec, "master", mk, sizeof mk);
        if (strcmp(vec_str(c, sec, "kind"), "raw") == 0) {
            size_t dl = vec_hex(c, sec, "data", data, sizeof data);
            assert_int_equal(crypto_derive_key(mk, ml, data, dl, out, &e), PX_OK);
            raw++;
        } else {
            assert_int_equal(crypto_derive_emv_option_a(mk, ml, vec_str(c, sec, "pan"),
                                                        vec_str(c, sec, "psn"), out, &e),
                             PX_OK);
            assert_true(crypto_des_has_odd_parity(out, 16));
            assert_int_equal(crypto_kcv(CRYPTO_TDES, out, 16, kcv, sizeof kcv, &n, &e), PX_OK);
            assert_hex(kcv, 2, vec_str(c, sec, "kcv"), sec);
            emv++;
        }
        assert_hex(out, 16, vec_str(c, sec, "key"), sec);
    }
    assert_true(raw >= 2 && emv >= 2);
    px_config_free(c);
}

/* 8-byte data is the 16-byte form with the complement on the right. */
static void test_short_and_long_forms_agree(void **state)
{
    uint8_t mk[16], d8[8], d16[16], a[16], b[16];
    px_error e = {0};
    crypto_random(mk, 16, &e);
    crypto_random(d8, 8, &e);
    memcpy(d16, d8, 8);
    for (int i = 0; i < 8; i++)
        d16[8 + i] = (uint8_t)~d8[i];
    assert_int_equal(crypto_derive_key(mk, 16, d8, 8, a, &e), PX_OK);
    assert_int_equal(crypto_derive_key(mk, 16, d16, 16, b, &e), PX_OK);
    assert_memory_equal(a, b, 16);
    /* different identifiers, different keys */
    d8[7] ^= 1;
    assert_int_equal(crypto_derive_key(mk, 16, d8, 8, b, &e), PX_OK);
    assert_memory_not_equal(a, b, 16);
}

static void test_rejects(void **state)
{
    uint8_t mk[24] = {0}, d[16] = {0}, out[16];
    px_error e = {0};
    assert_int_equal(crypto_derive_key(mk, 8, d, 8, out, &e), PX_EINVAL);
    assert_non_null(strstr(e.msg, "master"));
    assert_int_equal(crypto_derive_key(mk, 24, d, 8, out, &e), PX_EINVAL);
    assert_int_equal(crypto_derive_key(mk, 16, d, 7, out, &e), PX_EINVAL);
    assert_non_null(strstr(e.msg, "data"));
    assert_int_equal(crypto_derive_emv_option_a(mk, 16, "54133300896000A0", "00", out, &e),
                     PX_EINVAL);
    assert_non_null(strstr(e.msg, "pan"));
    assert_int_equal(crypto_derive_emv_option_a(mk, 16, "5413330089600010", "001", out, &e),
                     PX_EINVAL);
    assert_non_null(strstr(e.msg, "psn"));
    assert_int_equal(crypto_derive_emv_option_a(mk, 16, "5413330089600010", NULL, out, &e), PX_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_short_and_long_forms_agree),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
