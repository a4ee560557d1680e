/* test_mac.c: X9.19, ISO 9797-1 algorithm 1, PBOC, UnionPay ECB and CMAC.
 * Known answers: tests/vectors/mac.ini (ISO 9797-1, FIPS 113, X9.24-1 A.4, RFC 4493,
 * SP 800-38B, the shared PBOC and UnionPay examples). */
#include "vectors.h"

#include "crypto/crypto.h"
#include "crypto/mac.h"

static void test_known_answers(void **state)
{
    px_config *c = vec_open("mac.ini");
    const char *sec;
    int per_alg[8] = {0};
    VEC_EACH(c, sec, "")
    {
        uint8_t key[32], data[128], mac[16];
        size_t ml = 0;
        crypto_mac_alg alg;
        px_error e = {0};
        assert_int_equal(crypto_mac_alg_from_name(vec_str(c, sec, "alg"), &alg), PX_OK);
        size_t kl = vec_hex(c, sec, "key", key, sizeof key);
        size_t dl = vec_hex(c, sec, "data", data, sizeof data);
        assert_int_equal(crypto_mac(alg, key, kl, data, dl, mac, sizeof mac, &ml, &e), PX_OK);
        assert_int_equal(ml, crypto_mac_len(alg));
        assert_hex(mac, ml, vec_str(c, sec, "mac"), sec);
        assert_int_equal(crypto_mac_verify(alg, key, kl, data, dl, mac, ml, &e), PX_OK);
        per_alg[alg]++;
    }
    for (int a = CRYPTO_MAC_X919; a <= CRYPTO_MAC_TDES_CMAC; a++)
        assert_true(per_alg[a] >= 2);
    px_config_free(c);
}

/* The UnionPay example's MAC is the ASCII of "E267B6E2". */
static void test_cup_ecb_is_ascii(void **state)
{
    uint8_t key[8], data[16], mac[8];
    size_t ml = 0;
    px_hex_decode("2222222222222222", key, sizeof key, NULL);
    px_hex_decode("1234567890ABCDEFABCDEF1234567890", data, sizeof data, NULL);
    assert_int_equal(crypto_mac(CRYPTO_MAC_CUP_ECB, key, 8, data, 16, mac, 8, &ml, NULL), PX_OK);
    assert_memory_equal(mac, "E267B6E2", 8);
}

static void test_verify_refuses_tampering(void **state)
{
    uint8_t key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    uint8_t data[40] = "amount=000000010000;terminal=12345678";
    uint8_t mac[16];
    size_t ml = 0;
    px_error e = {0};
    for (int a = CRYPTO_MAC_X919; a <= CRYPTO_MAC_TDES_CMAC; a++) {
        size_t kl = a == CRYPTO_MAC_PBOC ? 8 : 16;
        assert_int_equal(crypto_mac((crypto_mac_alg)a, key, kl, data, sizeof data, mac, 16, &ml,
                                    &e),
                         PX_OK);
        assert_int_equal(crypto_mac_verify((crypto_mac_alg)a, key, kl, data, sizeof data, mac, 4,
                                           &e),
                         PX_OK); /* a truncated MAC verifies on its prefix */
        data[3] ^= 1;
        assert_int_equal(crypto_mac_verify((crypto_mac_alg)a, key, kl, data, sizeof data, mac, ml,
                                           &e),
                         PX_EAUTH);
        data[3] ^= 1;
        mac[ml - 1] ^= 0x80;
        assert_int_equal(crypto_mac_verify((crypto_mac_alg)a, key, kl, data, sizeof data, mac, ml,
                                           &e),
                         PX_EAUTH);
        assert_int_equal(crypto_mac_verify((crypto_mac_alg)a, key, kl, data, sizeof data, mac, 3,
                                           &e),
                         PX_EINVAL);
    }
}

/* Algorithm 1 over more than the internal chunk equals the last block of CBC encryption. */
static void test_long_data_streams(void **state)
{
    uint8_t key[16], data[1000], enc[1000], mac[8];
    static const uint8_t iv[8];
    size_t ml = 0;
    px_error e = {0};
    crypto_random(key, sizeof key, &e);
    crypto_random(data, sizeof data, &e);
    assert_int_equal(crypto_mac(CRYPTO_MAC_ISO9797_1, key, 16, data, 1000, mac, 8, &ml, &e), PX_OK);
    assert_int_equal(crypto_encrypt(CRYPTO_TDES, CRYPTO_CBC, key, 16, iv, data, 1000, enc, &e),
                     PX_OK);
    assert_memory_equal(mac, enc + 992, 8);
}

static void test_edge_cases(void **state)
{
    uint8_t key[16], mac[16];
    size_t ml = 0;
    px_error e = {0};
    px_hex_decode("0123456789ABCDEFFEDCBA9876543210", key, sizeof key, NULL);
    /* empty data, padding method 1: one zero block (ISO 9797-1:2011), so X9.19 of nothing
     * is the TDES encryption of zeros (independently computed). */
    assert_int_equal(crypto_mac(CRYPTO_MAC_X919, key, 16, NULL, 0, mac, 16, &ml, &e), PX_OK);
    assert_hex(mac, 8, "08D7B4FB629D0885", "x919 of empty data");
    /* wrong key lengths, each named */
    assert_int_equal(crypto_mac(CRYPTO_MAC_X919, key, 8, key, 8, mac, 16, &ml, &e), PX_EINVAL);
    assert_non_null(strstr(e.msg, "key"));
    assert_int_equal(crypto_mac(CRYPTO_MAC_AES_CMAC, key, 8, key, 8, mac, 16, &ml, &e), PX_EINVAL);
    assert_int_equal(crypto_mac(CRYPTO_MAC_TDES_CMAC, key, 8, key, 8, mac, 16, &ml, &e), PX_EINVAL);
    assert_int_equal(crypto_mac(CRYPTO_MAC_CUP_ECB, key, 12, key, 8, mac, 16, &ml, &e), PX_EINVAL);
    assert_int_equal(crypto_mac(CRYPTO_MAC_PBOC, key, 10, key, 8, mac, 16, &ml, &e), PX_EINVAL);
    assert_int_equal(crypto_mac(CRYPTO_MAC_AES_CMAC, key, 16, key, 8, mac, 8, &ml, &e), PX_ETOOBIG);
    assert_int_equal(crypto_mac((crypto_mac_alg)42, key, 16, key, 8, mac, 16, &ml, &e), PX_EINVAL);
    crypto_mac_alg a;
    assert_int_equal(crypto_mac_alg_from_name("md5", &a), PX_ENOTFOUND);
    assert_int_equal(crypto_mac_alg_from_name("cup-ecb", &a), PX_OK);
    assert_int_equal(a, CRYPTO_MAC_CUP_ECB);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_cup_ecb_is_ascii),
        cmocka_unit_test(test_verify_refuses_tampering),
        cmocka_unit_test(test_long_data_streams),
        cmocka_unit_test(test_edge_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
