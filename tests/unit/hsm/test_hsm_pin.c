/* test_hsm_pin.c: PIN translation (terminal key and DUKPT to zone key), PIN verification
 * (Visa PVV, IBM 3624 offset), MACs and data encryption through loaded keys, and the key
 * usage rules that keep them apart.
 * Known answers: PVV and IBM 3624 from the published examples of the cardutil and psec
 * test suites, re-computed independently with `openssl enc -des-ede3`; DUKPT from
 * ANSI X9.24-1:2009 A.4; X9.19 and format 0 from the shared vectors. */
#include "hsm_testutil.h"

#include <stdlib.h>
#include <string.h>

#include "crypto/dukpt.h"

#define TPK "0123456789ABCDEFFEDCBA9876543210"
#define ZPK "89ABCDEF0123456776543210FEDCBA98"
#define ZPK_AES "000102030405060708090A0B0C0D0E0F"
#define PAN "5555555551234567"

static int setup(void **state)
{
    hsm_fixture *f = calloc(1, sizeof *f);
    fx_setup(f, "hsmpin");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_teardown(*state);
    free(*state);
    return 0;
}

static void test_translate_formats(void **state)
{
    hsm_fixture *f = *state;
    hsm_key *tpk = fx_key(f->h, "P0", 'T', 'B', 'S', TPK, NULL, NULL);
    hsm_key *zpk = fx_key(f->h, "P0", 'T', 'B', 'S', ZPK, NULL, NULL);
    hsm_key *zpk_aes = fx_key(f->h, "P0", 'A', 'B', 'S', ZPK_AES, NULL, NULL);
    hsm_pin_block in, out, out2;
    char pin[13];
    px_error e = {0};
    /* format 0 under the terminal key -> format 0 under the zone key: shared vector */
    fx_pinblock(TPK, CRYPTO_PIN_ISO0, "1234", PAN, &in);
    assert_int_equal(hsm_pin_translate(f->h, tpk, &in, zpk, CRYPTO_PIN_ISO0, PAN, &out, &e), PX_OK);
    assert_int_equal(out.len, 8);
    uint8_t key[16], clear[8], want[8];
    px_hex_decode(ZPK, key, 16, NULL);
    crypto_decrypt(CRYPTO_TDES, CRYPTO_ECB, key, 16, NULL, out.data, 8, clear, NULL);
    px_hex_decode("041261AAAAEDCBA9", want, 8, NULL);
    assert_memory_equal(clear, want, 8);
    /* 0 -> 3 -> 4 (AES) -> 0 */
    assert_int_equal(hsm_pin_translate(f->h, tpk, &in, zpk, CRYPTO_PIN_ISO3, PAN, &out, &e), PX_OK);
    fx_pin_of(ZPK, &out, PAN, pin);
    assert_string_equal(pin, "1234");
    assert_int_equal(hsm_pin_translate(f->h, zpk, &out, zpk_aes, CRYPTO_PIN_ISO4, PAN, &out2, &e),
                     PX_OK);
    assert_int_equal(out2.len, 16);
    fx_pin_of(ZPK_AES, &out2, PAN, pin);
    assert_string_equal(pin, "1234");
    assert_int_equal(hsm_pin_translate(f->h, zpk_aes, &out2, tpk, CRYPTO_PIN_ISO0, PAN, &out, &e),
                     PX_OK);
    fx_pin_of(TPK, &out, PAN, pin);
    assert_string_equal(pin, "1234");
    /* format 1 to format 1 is fine; dropping the PAN binding (0 -> 1) is not */
    fx_pinblock(TPK, CRYPTO_PIN_ISO1, "987654", NULL, &in);
    assert_int_equal(hsm_pin_translate(f->h, tpk, &in, zpk, CRYPTO_PIN_ISO1, NULL, &out, &e),
                     PX_OK);
    fx_pin_of(ZPK, &out, NULL, pin);
    assert_string_equal(pin, "987654");
    fx_pinblock(TPK, CRYPTO_PIN_ISO0, "1234", PAN, &in);
    assert_int_equal(hsm_pin_translate(f->h, tpk, &in, zpk, CRYPTO_PIN_ISO1, PAN, &out, &e),
                     PX_EPERM);
    /* wrong PAN, wrong key, wrong format: the block does not decode */
    assert_int_equal(hsm_pin_translate(f->h, tpk, &in, zpk, CRYPTO_PIN_ISO0, "4111111111111111",
                                       &out, &e),
                     PX_EFORMAT);
    assert_int_equal(hsm_pin_translate(f->h, zpk, &in, tpk, CRYPTO_PIN_ISO0, PAN, &out, &e),
                     PX_EFORMAT);
    assert_null(strstr(e.msg, "1234"));
    /* a TDES format into an AES key and the reverse are refused */
    assert_int_equal(hsm_pin_translate(f->h, tpk, &in, zpk_aes, CRYPTO_PIN_ISO0, PAN, &out, &e),
                     PX_EINVAL);
    in.len = 7;
    assert_int_equal(hsm_pin_translate(f->h, tpk, &in, zpk, CRYPTO_PIN_ISO0, PAN, &out, &e),
                     PX_EINVAL);
    hsm_key_free(f->h, tpk);
    hsm_key_free(f->h, zpk);
    hsm_key_free(f->h, zpk_aes);
}

static void test_translate_key_rules(void **state)
{
    hsm_fixture *f = *state;
    hsm_key *tpk = fx_key(f->h, "P0", 'T', 'B', 'S', TPK, NULL, NULL);
    hsm_key *zpk = fx_key(f->h, "P0", 'T', 'B', 'S', ZPK, NULL, NULL);
    hsm_key *mak = fx_key(f->h, "M3", 'T', 'C', 'S', TPK, NULL, NULL);
    hsm_key *dek = fx_key(f->h, "D0", 'T', 'B', 'S', TPK, NULL, NULL);
    hsm_key *enc_only = fx_key(f->h, "P0", 'T', 'E', 'S', TPK, NULL, NULL);
    hsm_key *dec_only = fx_key(f->h, "P0", 'T', 'D', 'S', ZPK, NULL, NULL);
    hsm_pin_block in, out;
    uint8_t buf[8];
    px_error e = {0};
    fx_pinblock(TPK, CRYPTO_PIN_ISO0, "1234", PAN, &in);
    /* a MAC key (same clear value as the PIN key!) can never decrypt a PIN block */
    assert_int_equal(hsm_pin_translate(f->h, mak, &in, zpk, CRYPTO_PIN_ISO0, PAN, &out, &e),
                     PX_EPERM);
    assert_non_null(strstr(e.msg, "usage M3"));
    assert_int_equal(hsm_pin_translate(f->h, tpk, &in, mak, CRYPTO_PIN_ISO0, PAN, &out, &e),
                     PX_EPERM);
    /* a data key cannot either, and a PIN key cannot be used to decrypt "data" */
    assert_int_equal(hsm_pin_translate(f->h, dek, &in, zpk, CRYPTO_PIN_ISO0, PAN, &out, &e),
                     PX_EPERM);
    assert_int_equal(hsm_data_decrypt(f->h, tpk, CRYPTO_ECB, NULL, in.data, 8, buf, &e), PX_EPERM);
    /* modes of use: E cannot decrypt, D cannot encrypt */
    assert_int_equal(hsm_pin_translate(f->h, enc_only, &in, zpk, CRYPTO_PIN_ISO0, PAN, &out, &e),
                     PX_EPERM);
    assert_non_null(strstr(e.msg, "mode of use E"));
    assert_int_equal(hsm_pin_translate(f->h, tpk, &in, dec_only, CRYPTO_PIN_ISO0, PAN, &out, &e),
                     PX_EPERM);
    assert_int_equal(hsm_pin_translate(f->h, tpk, &in, enc_only, CRYPTO_PIN_ISO0, PAN, &out, &e),
                     PX_OK);
    hsm_key *all[] = {tpk, zpk, mak, dek, enc_only, dec_only};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        hsm_key_free(f->h, all[i]);
}

static void test_translate_dukpt(void **state)
{
    hsm_fixture *f = *state;
    hsm_key *bdk = fx_key(f->h, "B0", 'T', 'X', 'N', TPK, NULL, NULL);
    hsm_key *bdk_n = fx_key(f->h, "B0", 'T', 'N', 'N', TPK, NULL, NULL);
    hsm_key *zpk = fx_key(f->h, "P0", 'T', 'B', 'S', ZPK, NULL, NULL);
    hsm_pin_block in, out;
    uint8_t ksn[10];
    char pin[13];
    px_error e = {0};
    /* X9.24-1:2009 A.4: PIN 1234, PAN 4012345678909, KSN FFFF9876543210E00001 */
    px_hex_decode("FFFF9876543210E00001", ksn, 10, NULL);
    memset(&in, 0, sizeof in);
    px_hex_decode("1B9C1845EB993A7A", in.data, 8, NULL);
    in.len = 8;
    in.format = CRYPTO_PIN_ISO0;
    assert_int_equal(hsm_pin_translate_dukpt(f->h, bdk, ksn, 10, &in, zpk, CRYPTO_PIN_ISO0,
                                             "4012345678909", &out, &e),
                     PX_OK);
    fx_pin_of(ZPK, &out, "4012345678909", pin);
    assert_string_equal(pin, "1234");
    /* another counter: another key, so the block no longer decodes */
    ksn[9] = 0x02;
    assert_int_equal(hsm_pin_translate_dukpt(f->h, bdk, ksn, 10, &in, zpk, CRYPTO_PIN_ISO0,
                                             "4012345678909", &out, &e),
                     PX_EFORMAT);
    assert_int_equal(hsm_pin_translate_dukpt(f->h, bdk, ksn, 12, &in, zpk, CRYPTO_PIN_ISO0,
                                             "4012345678909", &out, &e),
                     PX_EINVAL);
    /* a BDK only derives (mode X); it is never a PIN key itself */
    assert_int_equal(hsm_pin_translate_dukpt(f->h, bdk_n, ksn, 10, &in, zpk, CRYPTO_PIN_ISO0,
                                             "4012345678909", &out, &e),
                     PX_EPERM);
    assert_int_equal(hsm_pin_translate(f->h, bdk, &in, zpk, CRYPTO_PIN_ISO0, "4012345678909", &out,
                                       &e),
                     PX_EPERM);
    assert_int_equal(hsm_pin_translate_dukpt(f->h, zpk, ksn, 10, &in, zpk, CRYPTO_PIN_ISO0,
                                             "4012345678909", &out, &e),
                     PX_EPERM);

    /* AES DUKPT (X9.24-3), format 4, round trip with the device-side derivation */
    hsm_key *abdk = fx_key(f->h, "B0", 'A', 'X', 'N', ZPK_AES, NULL, NULL);
    hsm_key *zaes = fx_key(f->h, "P0", 'A', 'B', 'S', ZPK, NULL, NULL);
    uint8_t aksn[12], bdkb[16], pk[32];
    char pkhex[65];
    size_t n = 0;
    px_hex_decode("123456789012345600000005", aksn, 12, NULL);
    px_hex_decode(ZPK_AES, bdkb, 16, NULL);
    assert_int_equal(crypto_dukpt_aes_host_key(bdkb, 16, aksn, CRYPTO_DUKPT_AES_PIN,
                                               CRYPTO_DUKPT_AES_AES128, pk, sizeof pk, &n, &e),
                     PX_OK);
    px_hex_encode(pk, n, pkhex);
    fx_pinblock(pkhex, CRYPTO_PIN_ISO4, "246810", PAN, &in);
    assert_int_equal(hsm_pin_translate_dukpt(f->h, abdk, aksn, 12, &in, zaes, CRYPTO_PIN_ISO4, PAN,
                                             &out, &e),
                     PX_OK);
    fx_pin_of(ZPK, &out, PAN, pin);
    assert_string_equal(pin, "246810");
    hsm_key *all[] = {bdk, bdk_n, zpk, abdk, zaes};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        hsm_key_free(f->h, all[i]);
}

static void test_visa_pvv(void **state)
{
    hsm_fixture *f = *state;
    hsm_key *pvk = fx_key(f->h, "V2", 'T', 'C', 'N', "5CA64B3C22BEC347CA7E6609904BAAED", NULL,
                          NULL);
    hsm_key *pvk2 = fx_key(f->h, "V2", 'T', 'C', 'N', TPK, NULL, NULL);
    hsm_key *ibm = fx_key(f->h, "V1", 'T', 'C', 'N', TPK, NULL, NULL);
    hsm_key *gen_only = fx_key(f->h, "V2", 'T', 'G', 'N', TPK, NULL, NULL);
    hsm_key *tpk = fx_key(f->h, "P0", 'T', 'B', 'S', TPK, NULL, NULL);
    static const struct {
        const char *pan, *pin, *pvv;
        int pvki;
    } v[] = {
        {"4564320000980369", "2205", "3856", 1},
        {"4564320000980369", "0654", "0885", 1}, /* needs the second (A-F) scan */
        {"1122334455667788", "4524", "8523", 1},
        {"1122334455667788", "1912", "3244", 2},
    };
    hsm_pin_block in;
    char pvv[5];
    px_error e = {0};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        hsm_key *k = i < 2 ? pvk : pvk2;
        fx_pinblock(TPK, CRYPTO_PIN_ISO0, v[i].pin, v[i].pan, &in);
        assert_int_equal(hsm_pin_pvv(f->h, tpk, &in, v[i].pan, k, v[i].pvki, pvv, &e), PX_OK);
        assert_string_equal(pvv, v[i].pvv);
        assert_int_equal(hsm_pin_verify_pvv(f->h, tpk, &in, v[i].pan, k, v[i].pvki, v[i].pvv, &e),
                         PX_OK);
    }
    fx_pinblock(TPK, CRYPTO_PIN_ISO0, "2206", "4564320000980369", &in);
    assert_int_equal(hsm_pin_verify_pvv(f->h, tpk, &in, "4564320000980369", pvk, 1, "3856", &e),
                     PX_EAUTH);
    assert_int_equal(hsm_pin_verify_pvv(f->h, tpk, &in, "4564320000980369", pvk, 1, "38x6", &e),
                     PX_EINVAL);
    /* the PVK must be a V2 key that may verify; the PIN key a P0 */
    assert_int_equal(hsm_pin_verify_pvv(f->h, tpk, &in, "4564320000980369", ibm, 1, "3856", &e),
                     PX_EPERM);
    assert_int_equal(hsm_pin_verify_pvv(f->h, tpk, &in, "4564320000980369", gen_only, 1, "3856",
                                        &e),
                     PX_EPERM);
    assert_int_equal(hsm_pin_pvv(f->h, tpk, &in, "4564320000980369", gen_only, 1, pvv, &e), PX_OK);
    assert_int_equal(hsm_pin_verify_pvv(f->h, pvk, &in, "4564320000980369", pvk, 1, "3856", &e),
                     PX_EPERM);
    hsm_key *all[] = {pvk, pvk2, ibm, gen_only, tpk};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        hsm_key_free(f->h, all[i]);
}

static void test_ibm3624_offset(void **state)
{
    hsm_fixture *f = *state;
    hsm_key *pvk = fx_key(f->h, "V1", 'T', 'C', 'N', TPK, NULL, NULL);
    hsm_key *visa = fx_key(f->h, "V2", 'T', 'C', 'N', TPK, NULL, NULL);
    hsm_key *tpk = fx_key(f->h, "P0", 'T', 'B', 'S', ZPK, NULL, NULL);
    static const struct {
        const char *vd, *pin, *offset;
    } v[] = {
        {"1122334455667788", "4524", "0000"},
        {"1122334455667788", "5635", "1111"},
        {"1122334455667788", "1234", "7710"},
        {"11223344556677", "5518", "0000"}, /* padded with F */
    };
    hsm_pin_block in;
    char offset[13];
    px_error e = {0};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        hsm_ibm3624 p = {"1234567890123456", v[i].vd, 'F', v[i].offset};
        fx_pinblock(ZPK, CRYPTO_PIN_ISO0, v[i].pin, PAN, &in);
        assert_int_equal(hsm_pin_offset_ibm3624(f->h, tpk, &in, PAN, pvk, &p, offset, &e), PX_OK);
        assert_string_equal(offset, v[i].offset);
        assert_int_equal(hsm_pin_verify_ibm3624(f->h, tpk, &in, PAN, pvk, &p, &e), PX_OK);
    }
    hsm_ibm3624 p = {"1234567890123456", "1122334455667788", 'F', "7711"};
    fx_pinblock(ZPK, CRYPTO_PIN_ISO0, "1234", PAN, &in);
    assert_int_equal(hsm_pin_verify_ibm3624(f->h, tpk, &in, PAN, pvk, &p, &e), PX_EAUTH);
    assert_int_equal(hsm_pin_verify_ibm3624(f->h, tpk, &in, PAN, visa, &p, &e), PX_EPERM);
    p.dec_table = "123456789012345";
    p.offset = "7710";
    assert_int_equal(hsm_pin_verify_ibm3624(f->h, tpk, &in, PAN, pvk, &p, &e), PX_EINVAL);
    p.dec_table = "1234567890123456";
    p.offset = "771";
    assert_int_equal(hsm_pin_verify_ibm3624(f->h, tpk, &in, PAN, pvk, &p, &e), PX_EINVAL);
    hsm_key_free(f->h, pvk);
    hsm_key_free(f->h, visa);
    hsm_key_free(f->h, tpk);
}

static void test_macs(void **state)
{
    hsm_fixture *f = *state;
    hsm_key *m3 = fx_key(f->h, "M3", 'T', 'C', 'S', TPK, NULL, NULL);
    hsm_key *m3_gen = fx_key(f->h, "M3", 'T', 'G', 'S', TPK, NULL, NULL);
    hsm_key *m3_ver = fx_key(f->h, "M3", 'T', 'V', 'S', TPK, NULL, NULL);
    hsm_key *m1 = fx_key(f->h, "M1", 'T', 'C', 'S', TPK, NULL, NULL);
    hsm_key *m6 = fx_key(f->h, "M6", 'A', 'C', 'S', ZPK_AES, NULL, NULL);
    hsm_key *pin = fx_key(f->h, "P0", 'T', 'B', 'S', TPK, NULL, NULL);
    const uint8_t *data = (const uint8_t *)"Now is the time for all ";
    uint8_t mac[16], want[8];
    size_t n = 0;
    px_error e = {0};
    assert_int_equal(hsm_mac_generate(f->h, m3, CRYPTO_MAC_X919, data, 24, mac, sizeof mac, &n, &e),
                     PX_OK);
    px_hex_decode("A1C72E74EA3FA9B6", want, 8, NULL);
    assert_int_equal(n, 8);
    assert_memory_equal(mac, want, 8);
    assert_int_equal(hsm_mac_verify(f->h, m3, CRYPTO_MAC_X919, data, 24, want, 8, &e), PX_OK);
    assert_int_equal(hsm_mac_verify(f->h, m3, CRYPTO_MAC_X919, data, 24, want, 4, &e), PX_OK);
    assert_int_equal(hsm_mac_verify(f->h, m3, CRYPTO_MAC_X919, data, 23, want, 8, &e), PX_EAUTH);
    /* modes: G generates only, V verifies only */
    assert_int_equal(hsm_mac_generate(f->h, m3_gen, CRYPTO_MAC_X919, data, 24, mac, sizeof mac, &n,
                                      &e),
                     PX_OK);
    assert_int_equal(hsm_mac_verify(f->h, m3_gen, CRYPTO_MAC_X919, data, 24, want, 8, &e),
                     PX_EPERM);
    assert_int_equal(hsm_mac_verify(f->h, m3_ver, CRYPTO_MAC_X919, data, 24, want, 8, &e), PX_OK);
    assert_int_equal(hsm_mac_generate(f->h, m3_ver, CRYPTO_MAC_X919, data, 24, mac, sizeof mac, &n,
                                      &e),
                     PX_EPERM);
    /* usage per algorithm: an X9.19 key is not a UnionPay ECB key; a PIN key is no MAC key */
    assert_int_equal(hsm_mac_generate(f->h, m3, CRYPTO_MAC_CUP_ECB, data, 24, mac, sizeof mac, &n,
                                      &e),
                     PX_EPERM);
    assert_int_equal(hsm_mac_generate(f->h, m1, CRYPTO_MAC_CUP_ECB, data, 24, mac, sizeof mac, &n,
                                      &e),
                     PX_OK);
    assert_int_equal(n, 8);
    assert_int_equal(hsm_mac_generate(f->h, pin, CRYPTO_MAC_X919, data, 24, mac, sizeof mac, &n,
                                      &e),
                     PX_EPERM);
    assert_int_equal(hsm_mac_generate(f->h, m6, CRYPTO_MAC_AES_CMAC, data, 24, mac, sizeof mac, &n,
                                      &e),
                     PX_OK);
    assert_int_equal(n, 16);
    assert_int_equal(hsm_mac_verify(f->h, m6, CRYPTO_MAC_AES_CMAC, data, 24, mac, 16, &e), PX_OK);
    assert_int_equal(hsm_mac_generate(f->h, m6, CRYPTO_MAC_TDES_CMAC, data, 24, mac, sizeof mac, &n,
                                      &e),
                     PX_EPERM);
    assert_int_equal(hsm_mac_generate(f->h, m3, CRYPTO_MAC_X919, data, PX_HSM_DATA_MAX + 1, mac,
                                      sizeof mac, &n, &e),
                     PX_ETOOBIG);
    hsm_key *all[] = {m3, m3_gen, m3_ver, m1, m6, pin};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        hsm_key_free(f->h, all[i]);
}

static void test_data(void **state)
{
    hsm_fixture *f = *state;
    hsm_key *dwk = fx_key(f->h, "D0", 'T', 'B', 'S', TPK, NULL, NULL);
    hsm_key *enc = fx_key(f->h, "D0", 'A', 'E', 'S', ZPK_AES, NULL, NULL);
    const uint8_t in[16] = "T-DATA 12345678", iv[16] = {0};
    uint8_t out[16], back[16], want[16], key[16];
    px_error e = {0};
    /* TMS: TAC = T-DATA under the DWK (ECB) */
    assert_int_equal(hsm_data_encrypt(f->h, dwk, CRYPTO_ECB, NULL, in, 16, out, &e), PX_OK);
    px_hex_decode(TPK, key, 16, NULL);
    crypto_encrypt(CRYPTO_TDES, CRYPTO_ECB, key, 16, NULL, in, 16, want, NULL);
    assert_memory_equal(out, want, 16);
    assert_int_equal(hsm_data_decrypt(f->h, dwk, CRYPTO_ECB, NULL, out, 16, back, &e), PX_OK);
    assert_memory_equal(back, in, 16);
    assert_int_equal(hsm_data_encrypt(f->h, enc, CRYPTO_CBC, iv, in, 16, out, &e), PX_OK);
    assert_int_equal(hsm_data_decrypt(f->h, enc, CRYPTO_CBC, iv, out, 16, back, &e), PX_EPERM);
    assert_int_equal(hsm_data_encrypt(f->h, enc, CRYPTO_CBC, NULL, in, 16, out, &e), PX_EINVAL);
    assert_int_equal(hsm_data_encrypt(f->h, dwk, CRYPTO_ECB, NULL, in, 12, out, &e), PX_EINVAL);
    hsm_key_free(f->h, dwk);
    hsm_key_free(f->h, enc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_translate_formats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_translate_key_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_translate_dukpt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_visa_pvv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ibm3624_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_macs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
