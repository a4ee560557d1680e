/* test_pinblock.c: ISO 9564-1 PIN blocks, formats 0, 1, 3 and 4.
 * Known answers: tests/vectors/pinblock.ini (shared, X9.24-1 A.4, X9.24-3 supplement). */
#include "vectors.h"

#include "crypto/crypto.h"
#include "crypto/pinblock.h"

static void test_known_answers(void **state)
{
    px_config *c = vec_open("pinblock.ini");
    const char *sec;
    int per_format[5] = {0};
    VEC_EACH(c, sec, "fmt")
    {
        uint8_t block[16], out[16];
        char pin[16];
        size_t n = 0;
        px_error e = {0};
        int fmt = (int)vec_int(c, sec, "format");
        const char *pan = px_config_get(c, sec, "pan");
        size_t bl = vec_hex(c, sec, "block", block, sizeof block);
        if (fmt == 4) {
            uint8_t key[32], pinf[16], panf[16];
            size_t kl = vec_hex(c, sec, "key", key, sizeof key);
            vec_hex(c, sec, "pin_field", pinf, sizeof pinf);
            vec_hex(c, sec, "pan_field", panf, sizeof panf);
            uint8_t ours[16];
            assert_int_equal(crypto_pinblock4_pan_field(pan, ours, &e), PX_OK);
            assert_memory_equal(ours, panf, 16);
            crypto_key *k = NULL;
            assert_int_equal(crypto_key_new(CRYPTO_AES, key, kl, &k, &e), PX_OK);
            assert_int_equal(crypto_pinblock4_encipher(k, pinf, panf, out), PX_OK);
            assert_hex(out, 16, vec_str(c, sec, "block"), sec);
            assert_int_equal(crypto_pinblock4_decipher(k, block, panf, out), PX_OK);
            assert_memory_equal(out, pinf, 16);
            crypto_key_free(k);
            assert_int_equal(crypto_pinblock4_decrypt(key, kl, block, pan, pin, sizeof pin, &e),
                             PX_OK);
        } else {
            if (fmt == 0) { /* format 0 has no random part: encoding is exact */
                assert_int_equal(crypto_pinblock_encode(CRYPTO_PIN_ISO0, vec_str(c, sec, "pin"),
                                                        pan, out, sizeof out, &n, &e),
                                 PX_OK);
                assert_hex(out, n, vec_str(c, sec, "block"), sec);
            }
            assert_int_equal(crypto_pinblock_decode((crypto_pin_format)fmt, block, bl, pan, pin,
                                                    sizeof pin, &e),
                             PX_OK);
        }
        assert_string_equal(pin, vec_str(c, sec, "pin"));
        per_format[fmt]++;
    }
    assert_true(per_format[0] >= 2 && per_format[1] >= 2 && per_format[3] >= 2 &&
                per_format[4] >= 2);
    px_config_free(c);
}

/* Formats 1 and 3 carry random fill: encode twice, both decode, fill as the clause says. */
static void test_random_fill_formats(void **state)
{
    static const crypto_pin_format fmts[] = {CRYPTO_PIN_ISO1, CRYPTO_PIN_ISO3, CRYPTO_PIN_ISO4};
    const char *pan = "4111111111111111";
    for (size_t f = 0; f < 3; f++) {
        uint8_t a[16], b[16];
        size_t n = 0;
        char pin[16];
        px_error e = {0};
        assert_int_equal(crypto_pinblock_encode(fmts[f], "98765", pan, a, sizeof a, &n, &e), PX_OK);
        assert_int_equal(n, crypto_pinblock_len(fmts[f]));
        assert_int_equal(crypto_pinblock_encode(fmts[f], "98765", pan, b, sizeof b, &n, &e), PX_OK);
        assert_memory_not_equal(a, b, n);
        assert_int_equal(crypto_pinblock_decode(fmts[f], a, n, pan, pin, sizeof pin, &e), PX_OK);
        assert_string_equal(pin, "98765");
        assert_int_equal(a[0] >> 4, fmts[f]);
    }
    /* format 3 fill nibbles are all A..F, over many blocks */
    for (int i = 0; i < 200; i++) {
        uint8_t blk[8], panf[8], clear[8];
        size_t n = 0;
        crypto_pinblock_encode(CRYPTO_PIN_ISO3, "1234", "0000000000000000", blk, 8, &n, NULL);
        memset(panf, 0, 8);
        for (int j = 0; j < 8; j++)
            clear[j] = blk[j] ^ panf[j];
        for (int nib = 6; nib < 16; nib++) {
            int v = nib % 2 ? clear[nib / 2] & 0x0F : clear[nib / 2] >> 4;
            assert_true(v >= 0xA);
        }
    }
}

static void test_format4_round_trip(void **state)
{
    uint8_t key[32], block[16];
    char pin[16];
    px_error e = {0};
    crypto_random(key, sizeof key, &e);
    for (size_t kl = 16; kl <= 32; kl += 8) {
        assert_int_equal(crypto_pinblock4_encrypt(key, kl, "123456789012", "5413330089600010",
                                                  block, &e),
                         PX_OK);
        assert_int_equal(crypto_pinblock4_decrypt(key, kl, block, "5413330089600010", pin,
                                                  sizeof pin, &e),
                         PX_OK);
        assert_string_equal(pin, "123456789012");
        /* the PAN is bound in: another PAN gives garbage that fails the format checks */
        assert_int_not_equal(crypto_pinblock4_decrypt(key, kl, block, "5413330089600028", pin,
                                                      sizeof pin, &e),
                             PX_OK);
    }
    assert_int_equal(crypto_pinblock4_encrypt(key, 8, "1234", "5413330089600010", block, &e),
                     PX_EINVAL);
    crypto_key *tdes = NULL;
    uint8_t panf[16] = {0};
    assert_int_equal(crypto_key_new(CRYPTO_TDES, key, 16, &tdes, &e), PX_OK);
    assert_int_equal(crypto_pinblock4_encipher(tdes, panf, panf, block), PX_EINVAL);
    crypto_key_free(tdes);
}

static void test_rejects_bad_pin_and_pan(void **state)
{
    uint8_t out[16];
    size_t n = 0;
    px_error e = {0};
    const char *bad_pins[] = {"123", "1234567890123", "12a4", "", "12 34"};
    for (size_t i = 0; i < sizeof bad_pins / sizeof bad_pins[0]; i++) {
        assert_int_equal(crypto_pinblock_encode(CRYPTO_PIN_ISO0, bad_pins[i], "5555555551234567",
                                                out, sizeof out, &n, &e),
                         PX_EINVAL);
        assert_non_null(strstr(e.msg, "pin"));
        assert_null(strstr(e.msg, bad_pins[i][0] ? bad_pins[i] : "@")); /* never echoed */
    }
    const char *bad_pans[] = {"55555555512345A7", "12345678901", "12345678901234567890", ""};
    for (size_t i = 0; i < sizeof bad_pans / sizeof bad_pans[0]; i++) {
        assert_int_equal(crypto_pinblock_encode(CRYPTO_PIN_ISO3, "1234", bad_pans[i], out,
                                                sizeof out, &n, &e),
                         PX_EINVAL);
        assert_non_null(strstr(e.msg, "pan"));
    }
    assert_int_equal(crypto_pinblock_encode(CRYPTO_PIN_ISO1, "1234", NULL, out, sizeof out, &n, &e),
                     PX_OK); /* format 1 has no PAN */
    assert_int_equal(crypto_pinblock_encode((crypto_pin_format)2, "1234", NULL, out, 16, &n, &e),
                     PX_EINVAL);
    assert_int_equal(crypto_pinblock_encode(CRYPTO_PIN_ISO4, "1234", "5555555551234567", out, 8, &n,
                                            &e),
                     PX_ETOOBIG);
}

static void test_decode_rejects_malformed(void **state)
{
    static const char *blocks[] = {
        "241261AAAAEDCBA9", /* control 2 */
        "0F1261AAAAEDCBA9", /* length 15 */
        "021261AAAAEDCBA9", /* length 2 */
        "041261AAAAEDCBAA", /* fill not F */
        "051261AAAAEDCBA9", /* PIN not numeric */
    };
    uint8_t blk[8];
    char pin[16];
    px_error e = {0};
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
        px_hex_decode(blocks[i], blk, sizeof blk, NULL);
        assert_int_equal(crypto_pinblock_decode(CRYPTO_PIN_ISO0, blk, 8, "5555555551234567", pin,
                                                sizeof pin, &e),
                         PX_EFORMAT);
    }
    px_hex_decode("041261AAAAEDCBA9", blk, sizeof blk, NULL);
    assert_int_equal(crypto_pinblock_decode(CRYPTO_PIN_ISO0, blk, 7, "5555555551234567", pin,
                                            sizeof pin, &e),
                     PX_EINVAL);
    assert_int_equal(crypto_pinblock_decode(CRYPTO_PIN_ISO0, blk, 8, "5555555551234567", pin, 4,
                                            &e),
                     PX_ETOOBIG);
    /* format 3 with fill below A is refused */
    px_hex_decode("341234ABCDEF0BCD", blk, sizeof blk, NULL);
    assert_int_equal(crypto_pinblock_decode(CRYPTO_PIN_ISO3, blk, 8, "0000000000000", pin,
                                            sizeof pin, &e),
                     PX_EFORMAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_random_fill_formats),
        cmocka_unit_test(test_format4_round_trip),
        cmocka_unit_test(test_rejects_bad_pin_and_pan),
        cmocka_unit_test(test_decode_rejects_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
