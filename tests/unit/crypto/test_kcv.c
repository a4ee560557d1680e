/* test_kcv.c: key check values and key components.
 * Known answers: tests/vectors/kcv.ini (shared, TR-31:2018 A.7, X9.143:2021 8.1/8.5). */
#include "vectors.h"

#include "crypto/crypto.h"

static void test_known_answers(void **state)
{
    px_config *c = vec_open("kcv.ini");
    const char *sec;
    int tdes = 0, aes = 0;
    VEC_EACH(c, sec, "")
    {
        uint8_t key[32], kcv[8], want[8];
        size_t n = 0;
        px_error e = {0};
        crypto_alg alg = strcmp(vec_str(c, sec, "alg"), "aes") == 0 ? CRYPTO_AES : CRYPTO_TDES;
        size_t kl = vec_hex(c, sec, "key", key, sizeof key);
        size_t wl = vec_hex(c, sec, "kcv", want, sizeof want);
        assert_int_equal(crypto_kcv(alg, key, kl, kcv, sizeof kcv, &n, &e), PX_OK);
        assert_int_equal(n, alg == CRYPTO_AES ? CRYPTO_KCV_AES_LEN : CRYPTO_KCV_TDES_LEN);
        assert_hex(kcv, n, vec_str(c, sec, "kcv"), sec);
        assert_int_equal(crypto_kcv_verify(alg, key, kl, want, wl, &e), PX_OK);
        want[wl - 1] ^= 1;
        assert_int_equal(crypto_kcv_verify(alg, key, kl, want, wl, &e), PX_EAUTH);
        if (alg == CRYPTO_AES)
            aes++;
        else
            tdes++;
    }
    assert_true(tdes >= 2 && aes >= 2);
    px_config_free(c);
}

/* X9.24-1 component entry: K = C1 ^ C2 ^ C3, each component checked against its KCV. */
static void test_components(void **state)
{
    uint8_t c1[16], c2[16], c3[16], k[16], kcv1[3], kcv2[3], kcv3[3], kcv[8];
    size_t n = 0;
    px_error e = {0};
    px_hex_decode("11111111111111112222222222222222", c1, 16, NULL);
    px_hex_decode("4444444444444444AAAAAAAAAAAAAAAA", c2, 16, NULL);
    for (int i = 0; i < 16; i++) /* c3 makes the total 0123456789ABCDEFFEDCBA9876543210 */
        c3[i] = c1[i] ^ c2[i];
    px_hex_decode("0123456789ABCDEFFEDCBA9876543210", k, 16, NULL);
    for (int i = 0; i < 16; i++)
        c3[i] ^= k[i];
    crypto_kcv(CRYPTO_TDES, c1, 16, kcv1, 3, &n, &e);
    crypto_kcv(CRYPTO_TDES, c2, 16, kcv2, 3, &n, &e);
    crypto_kcv(CRYPTO_TDES, c3, 16, kcv3, 3, &n, &e);
    const uint8_t *comps[] = {c1, c2, c3};
    const uint8_t *kcvs[] = {kcv1, kcv2, kcv3};
    memset(k, 0, 16);
    assert_int_equal(crypto_key_combine(CRYPTO_TDES, comps, 3, 16, kcvs, 3, k, &e), PX_OK);
    assert_int_equal(crypto_kcv(CRYPTO_TDES, k, 16, kcv, sizeof kcv, &n, &e), PX_OK);
    assert_hex(kcv, 3, "08D7B4", "combined key");
    /* a wrong check value on the second component is refused, and named */
    kcv2[0] ^= 0xFF;
    uint8_t untouched[16] = {0};
    memset(k, 0, 16);
    assert_int_equal(crypto_key_combine(CRYPTO_TDES, comps, 3, 16, kcvs, 3, k, &e), PX_EAUTH);
    assert_non_null(strstr(e.msg, "component 2"));
    assert_memory_equal(k, untouched, 16);
    /* no KCVs: plain XOR; too few components; bad length */
    assert_int_equal(crypto_key_combine(CRYPTO_TDES, comps, 3, 16, NULL, 0, k, &e), PX_OK);
    assert_int_equal(crypto_key_combine(CRYPTO_TDES, comps, 1, 16, NULL, 0, k, &e), PX_EINVAL);
    assert_int_equal(crypto_key_combine(CRYPTO_TDES, comps, 2, 12, NULL, 0, k, &e), PX_EINVAL);
}

static void test_rejects(void **state)
{
    uint8_t key[32] = {0}, kcv[8];
    size_t n = 0;
    px_error e = {0};
    assert_int_equal(crypto_kcv(CRYPTO_TDES, key, 15, kcv, sizeof kcv, &n, &e), PX_EINVAL);
    assert_int_equal(crypto_kcv(CRYPTO_AES, key, 8, kcv, sizeof kcv, &n, &e), PX_EINVAL);
    assert_int_equal(crypto_kcv(CRYPTO_AES, key, 16, kcv, 4, &n, &e), PX_ETOOBIG);
    assert_int_equal(crypto_kcv_verify(CRYPTO_TDES, key, 16, kcv, 2, &e), PX_EINVAL);
    /* AES-256 check value works */
    assert_int_equal(crypto_kcv(CRYPTO_AES, key, 32, kcv, sizeof kcv, &n, &e), PX_OK);
    assert_int_equal(n, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_components),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
