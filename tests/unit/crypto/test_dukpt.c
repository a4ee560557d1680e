/* test_dukpt.c: TDES DUKPT (X9.24-1:2009 Annex A) and AES DUKPT (X9.24-3:2017), host and
 * device. Known answers: tests/vectors/dukpt.ini (X9.24-1 A.4.2/A.4.3, X9.24-3 supplement). */
#include "vectors.h"

#include "crypto/crypto.h"
#include "crypto/dukpt.h"

static void hexin(const char *h, uint8_t *out, size_t cap)
{
    assert_int_equal(px_hex_decode(h, out, cap, NULL), PX_OK);
}

/* ---- TDES ---- */

static void test_tdes_host(void **state)
{
    px_config *c = vec_open("dukpt.ini");
    uint8_t bdk[16], ksn[10], ipek[16], key[16], pinkey[16], clear[8], enc[8];
    px_error e = {0};
    const char *sec;
    int n = 0;
    vec_hex(c, "tdes", "bdk", bdk, sizeof bdk);
    vec_hex(c, "tdes", "ksn", ksn, sizeof ksn);
    vec_hex(c, "tdes", "clear_pinblock", clear, sizeof clear);
    assert_int_equal(crypto_dukpt_derive_ipek(bdk, ksn, ipek, &e), PX_OK);
    assert_hex(ipek, 16, vec_str(c, "tdes", "ipek"), "IPEK");
    VEC_EACH(c, sec, "tdes-")
    {
        vec_hex(c, sec, "ksn", ksn, sizeof ksn);
        uint8_t ipek2[16];
        assert_int_equal(crypto_dukpt_derive_ipek(bdk, ksn, ipek2, &e),
                         PX_OK); /* counter ignored */
        assert_memory_equal(ipek, ipek2, 16);
        assert_int_equal(crypto_dukpt_derive_key(ipek, ksn, key, &e), PX_OK);
        assert_hex(key, 16, vec_str(c, sec, "key"), sec);
        assert_int_equal(crypto_dukpt_host_key(bdk, ksn, CRYPTO_DUKPT_PIN, pinkey, &e), PX_OK);
        assert_int_equal(crypto_encrypt(CRYPTO_TDES, CRYPTO_ECB, pinkey, 16, NULL, clear, 8, enc,
                                        &e),
                         PX_OK);
        assert_hex(enc, 8, vec_str(c, sec, "pinblock"), sec);
        n++;
    }
    assert_int_equal(n, 34);
    px_config_free(c);
}

/* Table A-1 variants (the data ones encrypted under themselves), checked against the
 * X9.24-1 A.4.2 MAC and data examples that mac.ini and cipher.ini hold. */
static void test_tdes_variants(void **state)
{
    uint8_t key[16], out[16];
    px_error e = {0};
    hexin("042666B49184CFA368DE9628D0397BC9", key, sizeof key);
    static const struct {
        crypto_dukpt_variant v;
        const char *want;
    } cases[] = {
        {CRYPTO_DUKPT_NONE, "042666B49184CFA368DE9628D0397BC9"},
        {CRYPTO_DUKPT_PIN, "042666B49184CF5C68DE9628D0397B36"},
        {CRYPTO_DUKPT_MAC_REQ, "042666B4918430A368DE9628D03984C9"},
        {CRYPTO_DUKPT_MAC_RESP, "042666B46E84CFA368DE96282F397BC9"},
        {CRYPTO_DUKPT_DATA_REQ, "448D3F076D8304036A55A3D7E0055A78"},
        {CRYPTO_DUKPT_DATA_RESP, "AD7BFC8B06AD3A08A560B4105CF8D9E5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(crypto_dukpt_variant_key(key, cases[i].v, out, &e), PX_OK);
        assert_hex(out, 16, cases[i].want, "variant");
    }
    assert_int_equal(crypto_dukpt_variant_key(key, (crypto_dukpt_variant)9, out, &e), PX_EINVAL);
}

/* The device hands out the published keys and KSNs, in order, from "Load Initial Key". */
static void test_tdes_device_initial_sequence(void **state)
{
    px_config *c = vec_open("dukpt.ini");
    uint8_t ipek[16], ksn[10], key[16], got_ksn[10];
    crypto_dukpt_device d;
    px_error e = {0};
    vec_hex(c, "tdes", "ipek", ipek, sizeof ipek);
    vec_hex(c, "tdes", "ksn", ksn, sizeof ksn);
    assert_int_equal(crypto_dukpt_device_load(&d, ipek, ksn, &e), PX_OK);
    assert_int_equal(crypto_dukpt_device_counter(&d), 1);
    for (int i = 1; i <= 21; i++) {
        char sec[32];
        snprintf(sec, sizeof sec, "tdes-%06X", i);
        assert_int_equal(crypto_dukpt_device_next(&d, key, got_ksn, &e), PX_OK);
        vec_hex(c, sec, "ksn", ksn, sizeof ksn);
        assert_memory_equal(got_ksn, ksn, 10);
        assert_hex(key, 16, vec_str(c, sec, "key"), sec);
    }
    crypto_dukpt_device_wipe(&d);
    px_config_free(c);
}

/* A.4.3: from counter EFF800 the device skips to EFF801, 802, 804 ... F00000. */
static void test_tdes_device_rollover(void **state)
{
    px_config *c = vec_open("dukpt.ini");
    uint8_t ipek[16], ksn[10], key[16], got[10];
    crypto_dukpt_device d;
    px_error e = {0};
    const char *sec;
    int n = 0;
    vec_hex(c, "tdes", "ipek", ipek, sizeof ipek);
    vec_hex(c, "tdes-EFF800", "ksn", ksn, sizeof ksn);
    assert_int_equal(crypto_dukpt_device_load_at(&d, ipek, ksn, &e), PX_OK);
    VEC_EACH(c, sec, "tdes-")
    {
        vec_hex(c, sec, "ksn", ksn, sizeof ksn);
        if (crypto_dukpt_ksn_counter(ksn) < 0x0FF800)
            continue;
        assert_int_equal(crypto_dukpt_device_next(&d, key, got, &e), PX_OK);
        assert_memory_equal(got, ksn, 10);
        assert_hex(key, 16, vec_str(c, sec, "key"), sec);
        n++;
    }
    assert_int_equal(n, 13);
    crypto_dukpt_device_wipe(&d);
    px_config_free(c);
}

/* Device and host agree over the first counters. */
static void test_tdes_device_matches_host(void **state)
{
    uint8_t ipek[16], ksn[10], key[16], host[16];
    crypto_dukpt_device d;
    px_error e = {0};
    hexin("6AC292FAA1315B4D858AB3A3D7D5933A", ipek, sizeof ipek);
    hexin("FFFF9876543210E00000", ksn, sizeof ksn);
    assert_int_equal(crypto_dukpt_device_load(&d, ipek, ksn, &e), PX_OK);
    for (int i = 0; i < 1500; i++) {
        assert_int_equal(crypto_dukpt_device_next(&d, key, ksn, &e), PX_OK);
        assert_int_equal(crypto_dukpt_derive_key(ipek, ksn, host, &e), PX_OK);
        assert_memory_equal(key, host, 16);
    }
    crypto_dukpt_device_wipe(&d);
}

/* The last counters: 0x1FE000 has 8 one-bits; 92 transactions remain (the low 13 bits may
 * hold at most 2 more ones), each equal to the host's key, then PX_ELIMIT for good. */
static void test_tdes_exhaustion(void **state)
{
    uint8_t ipek[16], ksn[10], key[16], host[16];
    crypto_dukpt_device d;
    px_error e = {0};
    int n = 0;
    hexin("6AC292FAA1315B4D858AB3A3D7D5933A", ipek, sizeof ipek);
    hexin("FFFF9876543210FFE000", ksn, sizeof ksn);
    assert_int_equal(crypto_dukpt_ksn_counter(ksn), 0x1FE000);
    assert_int_equal(crypto_dukpt_device_load_at(&d, ipek, ksn, &e), PX_OK);
    while (crypto_dukpt_device_next(&d, key, ksn, &e) == PX_OK) {
        assert_int_equal(crypto_dukpt_derive_key(ipek, ksn, host, &e), PX_OK);
        assert_memory_equal(key, host, 16);
        assert_true(++n <= 92);
    }
    assert_int_equal(n, 92);
    assert_int_equal(e.code, PX_ELIMIT);
    assert_non_null(strstr(e.msg, "exhausted"));
    assert_int_equal(crypto_dukpt_device_next(&d, key, ksn, &e), PX_ELIMIT);
    crypto_dukpt_device_wipe(&d);
}

static void test_tdes_rejects(void **state)
{
    uint8_t ipek[16] = {0}, ksn[10], key[16];
    crypto_dukpt_device d;
    px_error e = {0};
    hexin("FFFF9876543210E00000", ksn, sizeof ksn);
    assert_int_equal(crypto_dukpt_derive_key(ipek, ksn, key, &e), PX_EINVAL); /* counter 0 */
    hexin("FFFF9876543210E007FF", ksn, sizeof ksn);                           /* 11 one-bits */
    assert_int_equal(crypto_dukpt_derive_key(ipek, ksn, key, &e), PX_EINVAL);
    assert_non_null(strstr(e.msg, "ksn"));
    assert_int_equal(crypto_dukpt_device_load_at(&d, ipek, ksn, &e), PX_EINVAL);
    hexin("FFFF9876543210E00001", ksn, sizeof ksn);
    assert_int_equal(crypto_dukpt_device_load(&d, ipek, ksn, &e), PX_EINVAL);
}

/* ---- AES ---- */

static crypto_dukpt_aes_usage usage_of(const char *s)
{
    static const struct {
        const char *name;
        crypto_dukpt_aes_usage u;
    } t[] = {{"pin", CRYPTO_DUKPT_AES_PIN},
             {"mac-gen", CRYPTO_DUKPT_AES_MAC_GEN},
             {"mac-verify", CRYPTO_DUKPT_AES_MAC_VERIFY},
             {"mac-both", CRYPTO_DUKPT_AES_MAC_BOTH},
             {"data-enc", CRYPTO_DUKPT_AES_DATA_ENC},
             {"data-dec", CRYPTO_DUKPT_AES_DATA_DEC},
             {"data-both", CRYPTO_DUKPT_AES_DATA_BOTH},
             {"kek", CRYPTO_DUKPT_AES_KEK}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcmp(s, t[i].name) == 0)
            return t[i].u;
    fail_msg("unknown usage %s", s);
    return CRYPTO_DUKPT_AES_PIN;
}

static crypto_dukpt_aes_keytype type_of(const char *s)
{
    static const char *names[] = {"2tdea", "3tdea", "aes128", "aes192", "aes256"};
    for (size_t i = 0; i < 5; i++)
        if (strcmp(s, names[i]) == 0)
            return (crypto_dukpt_aes_keytype)i;
    fail_msg("unknown key type %s", s);
    return CRYPTO_DUKPT_AES_AES128;
}

static void test_aes_host(void **state)
{
    px_config *c = vec_open("dukpt.ini");
    const char *sec;
    uint8_t bdk[32], ikid[8], ik[32], ksn[12], dk[32], wk[32];
    size_t wl = 0;
    px_error e = {0};
    int ndk = 0, nwk = 0;
    static const char *sets[] = {"aes128", "aes256"};
    for (int s = 0; s < 2; s++) {
        size_t bl = vec_hex(c, sets[s], "bdk", bdk, sizeof bdk);
        vec_hex(c, sets[s], "ikid", ikid, sizeof ikid);
        assert_int_equal(crypto_dukpt_aes_derive_initial_key(bdk, bl, ikid, ik, &e), PX_OK);
        assert_hex(ik, bl, vec_str(c, sets[s], "ik"), sets[s]);
    }
    VEC_EACH(c, sec, "aes128-dk-")
    {
        vec_hex(c, sec, "ksn", ksn, sizeof ksn);
        size_t il = vec_hex(c, "aes128", "ik", ik, sizeof ik);
        assert_int_equal(crypto_dukpt_aes_derive_key(ik, il, ksn, dk, &e), PX_OK);
        assert_hex(dk, il, vec_str(c, sec, "dk"), sec);
        ndk++;
    }
    VEC_EACH(c, sec, "aes")
    {
        if (strstr(sec, "-wk-") == NULL)
            continue;
        const char *set = vec_str(c, sec, "set");
        size_t bl = vec_hex(c, set, "bdk", bdk, sizeof bdk);
        vec_hex(c, sec, "ksn", ksn, sizeof ksn);
        assert_int_equal(crypto_dukpt_aes_host_key(bdk, bl, ksn, usage_of(vec_str(c, sec, "usage")),
                                                   type_of(vec_str(c, sec, "type")), wk, sizeof wk,
                                                   &wl, &e),
                         PX_OK);
        assert_hex(wk, wl, vec_str(c, sec, "key"), sec);
        nwk++;
    }
    assert_int_equal(ndk, 15);
    assert_true(nwk >= 16);
    px_config_free(c);
}

/* Device: the first eight derivation keys, then the published end of the counter space
 * (FFFE2000 .. FFFF0000) and exhaustion after it; 0x1FFFF (17 ones) is skipped. */
static void test_aes_device(void **state)
{
    px_config *c = vec_open("dukpt.ini");
    uint8_t ik[16], ikid[8], ksn[12], dk[32], host[32];
    size_t dl = 0;
    crypto_dukpt_aes_device d;
    px_error e = {0};
    vec_hex(c, "aes128", "ik", ik, sizeof ik);
    vec_hex(c, "aes128", "ikid", ikid, sizeof ikid);
    assert_int_equal(crypto_dukpt_aes_device_load(&d, ik, 16, ikid, &e), PX_OK);
    for (int i = 1; i <= 8; i++) {
        char sec[32];
        snprintf(sec, sizeof sec, "aes128-dk-%08X", i);
        assert_int_equal(crypto_dukpt_aes_device_next(&d, dk, sizeof dk, &dl, ksn, &e), PX_OK);
        assert_int_equal(crypto_dukpt_aes_ksn_counter(ksn), i);
        assert_hex(dk, dl, vec_str(c, sec, "dk"), sec);
    }
    static const char *tail[] = {"aes128-dk-0001FFFE", "aes128-dk-00020000", "aes128-dk-00020001"};
    vec_hex(c, tail[0], "ksn", ksn, sizeof ksn);
    assert_int_equal(crypto_dukpt_aes_device_load_at(&d, ik, 16, ksn, &e), PX_OK);
    for (int i = 0; i < 3; i++) {
        uint8_t want[12];
        assert_int_equal(crypto_dukpt_aes_device_next(&d, dk, sizeof dk, &dl, ksn, &e), PX_OK);
        vec_hex(c, tail[i], "ksn", want, sizeof want);
        assert_memory_equal(ksn, want, 12);
        assert_hex(dk, dl, vec_str(c, tail[i], "dk"), tail[i]);
    }
    static const char *end[] = {"aes128-dk-FFFE2000", "aes128-dk-FFFE4000", "aes128-dk-FFFE8000",
                                "aes128-dk-FFFF0000"};
    vec_hex(c, end[0], "ksn", ksn, sizeof ksn);
    assert_int_equal(crypto_dukpt_aes_device_load_at(&d, ik, 16, ksn, &e), PX_OK);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(crypto_dukpt_aes_device_next(&d, dk, sizeof dk, &dl, ksn, &e), PX_OK);
        assert_hex(dk, dl, vec_str(c, end[i], "dk"), end[i]);
        assert_int_equal(crypto_dukpt_aes_derive_key(ik, 16, ksn, host, &e), PX_OK);
        assert_memory_equal(dk, host, dl);
    }
    assert_int_equal(crypto_dukpt_aes_device_next(&d, dk, sizeof dk, &dl, ksn, &e), PX_ELIMIT);
    assert_int_equal(crypto_dukpt_aes_device_next(&d, dk, sizeof dk, &dl, ksn, &e), PX_ELIMIT);
    crypto_dukpt_aes_device_wipe(&d);
    px_config_free(c);
}

static void test_aes_device_matches_host(void **state)
{
    uint8_t ik[32], ikid[8] = {1, 2, 3, 4, 5, 6, 7, 8}, ksn[12], dk[32], host[32], wk[32];
    size_t dl = 0, wl = 0;
    crypto_dukpt_aes_device d;
    px_error e = {0};
    crypto_random(ik, sizeof ik, &e);
    assert_int_equal(crypto_dukpt_aes_device_load(&d, ik, 32, ikid, &e), PX_OK);
    for (int i = 0; i < 600; i++) {
        assert_int_equal(crypto_dukpt_aes_device_next(&d, dk, sizeof dk, &dl, ksn, &e), PX_OK);
        assert_int_equal(dl, 32);
        assert_int_equal(crypto_dukpt_aes_derive_key(ik, 32, ksn, host, &e), PX_OK);
        assert_memory_equal(dk, host, 32);
    }
    assert_int_equal(crypto_dukpt_aes_working_key(dk, 32, ksn, CRYPTO_DUKPT_AES_PIN,
                                                  CRYPTO_DUKPT_AES_AES128, wk, sizeof wk, &wl, &e),
                     PX_OK);
    assert_int_equal(wl, 16);
    crypto_dukpt_aes_device_wipe(&d);
}

static void test_aes_rejects(void **state)
{
    uint8_t k[32] = {0}, ksn[12] = {0}, out[32];
    size_t ol = 0;
    crypto_dukpt_aes_device d;
    px_error e = {0};
    assert_int_equal(crypto_dukpt_aes_derive_initial_key(k, 20, ksn, out, &e), PX_EINVAL);
    assert_non_null(strstr(e.msg, "bdk"));
    assert_int_equal(crypto_dukpt_aes_derive_key(k, 16, ksn, out, &e), PX_EINVAL); /* counter 0 */
    hexin("12345678901234560001FFFF", ksn, sizeof ksn);                            /* 17 ones */
    assert_int_equal(crypto_dukpt_aes_derive_key(k, 16, ksn, out, &e), PX_EINVAL);
    assert_int_equal(crypto_dukpt_aes_device_load_at(&d, k, 16, ksn, &e), PX_EINVAL);
    hexin("123456789012345600000001", ksn, sizeof ksn);
    assert_int_equal(crypto_dukpt_aes_working_key(k, 16, ksn, CRYPTO_DUKPT_AES_PIN,
                                                  CRYPTO_DUKPT_AES_AES256, out, sizeof out, &ol,
                                                  &e),
                     PX_EINVAL); /* never stronger than the derivation key */
    assert_int_equal(crypto_dukpt_aes_working_key(k, 16, ksn, CRYPTO_DUKPT_AES_PIN,
                                                  CRYPTO_DUKPT_AES_AES128, out, 8, &ol, &e),
                     PX_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tdes_host),
        cmocka_unit_test(test_tdes_variants),
        cmocka_unit_test(test_tdes_device_initial_sequence),
        cmocka_unit_test(test_tdes_device_rollover),
        cmocka_unit_test(test_tdes_device_matches_host),
        cmocka_unit_test(test_tdes_exhaustion),
        cmocka_unit_test(test_tdes_rejects),
        cmocka_unit_test(test_aes_host),
        cmocka_unit_test(test_aes_device),
        cmocka_unit_test(test_aes_device_matches_host),
        cmocka_unit_test(test_aes_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
