/* test_cipher.c: TDES and AES in ECB/CBC, one-shot and reusable key schedules.
 * Known answers: tests/vectors/cipher.ini (FIPS 197, SP 800-38A, SP 800-67, shared). */
#include "vectors.h"

#include "crypto/crypto.h"

typedef struct alg_mode {
    crypto_alg alg;
    crypto_mode mode;
} alg_mode;

static alg_mode parse_alg(const char *s)
{
    alg_mode am = {CRYPTO_TDES, CRYPTO_ECB};
    if (strncmp(s, "aes", 3) == 0)
        am.alg = CRYPTO_AES;
    else if (strncmp(s, "des-", 4) == 0)
        am.alg = CRYPTO_DES;
    if (strstr(s, "cbc") != NULL)
        am.mode = CRYPTO_CBC;
    return am;
}

static void test_known_answers(void **state)
{
    px_config *c = vec_open("cipher.ini");
    const char *sec;
    int count = 0;
    VEC_EACH(c, sec, "")
    {
        uint8_t key[32], iv[16], plain[64], cipher[64], out[64];
        alg_mode am = parse_alg(vec_str(c, sec, "alg"));
        size_t kl = vec_hex(c, sec, "key", key, sizeof key);
        size_t pl = vec_hex(c, sec, "plain", plain, sizeof plain);
        vec_hex(c, sec, "cipher", cipher, sizeof cipher);
        if (am.mode == CRYPTO_CBC)
            vec_hex(c, sec, "iv", iv, sizeof iv);
        px_error e = {0};
        assert_int_equal(crypto_encrypt(am.alg, am.mode, key, kl, iv, plain, pl, out, &e), PX_OK);
        assert_hex(out, pl, vec_str(c, sec, "cipher"), sec);
        assert_int_equal(crypto_decrypt(am.alg, am.mode, key, kl, iv, cipher, pl, out, &e), PX_OK);
        assert_hex(out, pl, vec_str(c, sec, "plain"), sec);
        count++;
    }
    assert_true(count >= 9); /* at least two per algorithm and mode */
    px_config_free(c);
}

/* A key schedule gives the one-shot results, many times over, in place too. */
static void test_key_schedule_matches_one_shot(void **state)
{
    static const struct {
        crypto_alg alg;
        size_t keylen;
    } cases[] = {{CRYPTO_TDES, 16}, {CRYPTO_TDES, 24}, {CRYPTO_AES, 16},
                 {CRYPTO_AES, 24},  {CRYPTO_AES, 32},  {CRYPTO_DES, 8}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t key[32], iv[16], data[64], a[64], b[64];
        crypto_key *k = NULL, *d = NULL;
        px_error e = {0};
        assert_int_equal(crypto_random(key, sizeof key, &e), PX_OK);
        assert_int_equal(crypto_random(iv, sizeof iv, &e), PX_OK);
        assert_int_equal(crypto_random(data, sizeof data, &e), PX_OK);
        assert_int_equal(crypto_key_new(cases[i].alg, key, cases[i].keylen, &k, &e), PX_OK);
        assert_int_equal(crypto_key_dup(k, &d, &e), PX_OK);
        for (int round = 0; round < 3; round++) {
            assert_int_equal(crypto_encrypt(cases[i].alg, CRYPTO_ECB, key, cases[i].keylen, NULL,
                                            data, 64, a, &e),
                             PX_OK);
            assert_int_equal(crypto_key_ecb_encrypt(round == 2 ? d : k, data, 64, b), PX_OK);
            assert_memory_equal(a, b, 64);
            assert_int_equal(crypto_key_ecb_decrypt(k, b, 64, b), PX_OK); /* in place */
            assert_memory_equal(b, data, 64);
            assert_int_equal(crypto_encrypt(cases[i].alg, CRYPTO_CBC, key, cases[i].keylen, iv,
                                            data, 64, a, &e),
                             PX_OK);
            assert_int_equal(crypto_key_cbc_encrypt(k, iv, data, 64, b), PX_OK);
            assert_memory_equal(a, b, 64); /* the IV is reset on every call */
            assert_int_equal(crypto_key_cbc_decrypt(d, iv, a, 64, b), PX_OK);
            assert_memory_equal(b, data, 64);
        }
        assert_int_equal(crypto_key_alg(k), cases[i].alg);
        assert_int_equal(crypto_key_block_size(k), crypto_block_size(cases[i].alg));
        crypto_key_free(k);
        crypto_key_free(d);
    }
    crypto_key_free(NULL);
}

static void test_round_trips(void **state)
{
    for (int i = 0; i < 50; i++) {
        uint8_t key[32], iv[16], data[96], enc[96], dec[96];
        px_error e = {0};
        crypto_random(key, sizeof key, &e);
        crypto_random(iv, sizeof iv, &e);
        crypto_random(data, sizeof data, &e);
        crypto_alg alg = i % 2 ? CRYPTO_AES : CRYPTO_TDES;
        size_t kl = alg == CRYPTO_AES ? (size_t)(16 + 8 * (i % 3)) : (size_t)(16 + 8 * (i % 2));
        crypto_mode mode = (i / 2) % 2 ? CRYPTO_CBC : CRYPTO_ECB;
        assert_int_equal(crypto_encrypt(alg, mode, key, kl, iv, data, 96, enc, &e), PX_OK);
        assert_memory_not_equal(enc, data, 96);
        assert_int_equal(crypto_decrypt(alg, mode, key, kl, iv, enc, 96, dec, &e), PX_OK);
        assert_memory_equal(dec, data, 96);
    }
}

static void test_rejects_bad_input(void **state)
{
    uint8_t key[32] = {0}, data[32] = {0}, out[32];
    crypto_key *k = NULL;
    px_error e = {0};
    assert_int_equal(crypto_encrypt(CRYPTO_TDES, CRYPTO_ECB, key, 8, NULL, data, 8, out, &e),
                     PX_EINVAL);
    assert_non_null(strstr(e.msg, "key"));
    assert_int_equal(crypto_encrypt(CRYPTO_AES, CRYPTO_ECB, key, 20, NULL, data, 16, out, &e),
                     PX_EINVAL);
    assert_int_equal(crypto_encrypt(CRYPTO_TDES, CRYPTO_ECB, key, 16, NULL, data, 12, out, &e),
                     PX_EINVAL);
    assert_non_null(strstr(e.msg, "data"));
    assert_int_equal(crypto_encrypt(CRYPTO_AES, CRYPTO_ECB, key, 16, NULL, data, 8, out, &e),
                     PX_EINVAL);
    assert_int_equal(crypto_decrypt(CRYPTO_AES, CRYPTO_CBC, key, 16, NULL, data, 16, out, &e),
                     PX_EINVAL);
    assert_non_null(strstr(e.msg, "iv"));
    assert_int_equal(crypto_encrypt((crypto_alg)99, CRYPTO_ECB, key, 16, NULL, data, 16, out, &e),
                     PX_EINVAL);
    assert_int_equal(crypto_encrypt(CRYPTO_AES, (crypto_mode)9, key, 16, NULL, data, 16, out, &e),
                     PX_EINVAL);
    assert_int_equal(crypto_key_new(CRYPTO_AES, key, 15, &k, &e), PX_EINVAL);
    assert_null(k);
    assert_int_equal(crypto_key_new(CRYPTO_TDES, key, 16, &k, &e), PX_OK);
    assert_int_equal(crypto_key_ecb_encrypt(k, data, 7, out), PX_EINVAL);
    assert_int_equal(crypto_key_cbc_encrypt(k, NULL, data, 8, out), PX_EINVAL);
    crypto_key_free(k);
    /* zero-length data is fine and writes nothing */
    assert_int_equal(crypto_encrypt(CRYPTO_AES, CRYPTO_ECB, key, 16, NULL, data, 0, out, &e),
                     PX_OK);
}

/* Single DES runs as DES-EDE3 with K K K: same as TDES with three equal parts. */
static void test_single_des_and_parity(void **state)
{
    uint8_t k8[8] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF}, k24[24], a[8], b[8];
    uint8_t data[8] = "Now is t";
    px_error e = {0};
    for (int i = 0; i < 3; i++)
        memcpy(k24 + 8 * i, k8, 8);
    assert_int_equal(crypto_encrypt(CRYPTO_DES, CRYPTO_ECB, k8, 8, NULL, data, 8, a, &e), PX_OK);
    assert_int_equal(crypto_encrypt(CRYPTO_TDES, CRYPTO_ECB, k24, 24, NULL, data, 8, b, &e), PX_OK);
    assert_memory_equal(a, b, 8);
    assert_hex(a, 8, "3FA40E8A984D4815", "DES 'Now is t' (FIPS 81 example)");
    uint8_t p[4] = {0x00, 0x01, 0xFE, 0x7F};
    assert_false(crypto_des_has_odd_parity(p, 4));
    crypto_des_set_odd_parity(p, 4);
    assert_hex(p, 4, "0101FE7F", "odd parity");
    assert_true(crypto_des_has_odd_parity(p, 4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_key_schedule_matches_one_shot),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_rejects_bad_input),
        cmocka_unit_test(test_single_des_and_parity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
