/* test_tr31.c: X9.143 / TR-31 key blocks, versions B and D.
 * Known answers: tests/vectors/tr31.ini (TR-31:2018 Annex A.7, X9.143:2021 clause 8, Thales
 * examples); header cases after the psec test-suite's. */
#include "vectors.h"

#include "crypto/crypto.h"
#include "crypto/tr31.h"

static void hexin(const char *h, uint8_t *out, size_t cap, size_t *n)
{
    assert_int_equal(px_hex_decode(h, out, cap, n), PX_OK);
}

static void test_known_answers(void **state)
{
    px_config *c = vec_open("tr31.ini");
    const char *sec;
    int b = 0, d = 0, wraps = 0;
    VEC_EACH(c, sec, "")
    {
        uint8_t kbpk[32], key[64], want[64], pad[32];
        size_t kl = 0;
        crypto_tr31_header h;
        px_error e = {0};
        size_t pl = vec_hex(c, sec, "kbpk", kbpk, sizeof kbpk);
        size_t wl = vec_hex(c, sec, "key", want, sizeof want);
        const char *blk = vec_str(c, sec, "block");
        assert_int_equal(crypto_tr31_unwrap(kbpk, pl, blk, strlen(blk), &h, key, sizeof key, &kl,
                                            &e),
                         PX_OK);
        assert_int_equal(kl, wl);
        assert_hex(key, kl, vec_str(c, sec, "key"), sec);
        assert_int_equal(h.version, blk[0]);
        if (px_config_get(c, sec, "pad") != NULL) { /* wrapping reproduces the block exactly */
            char out[CRYPTO_TR31_BLOCK_MAX + 1];
            size_t padlen = vec_hex(c, sec, "pad", pad, sizeof pad);
            assert_int_equal(crypto_tr31_wrap_padded(kbpk, pl, &h, want, wl, pad, padlen, out,
                                                     sizeof out, &e),
                             PX_OK);
            assert_string_equal(out, blk);
            wraps++;
        }
        if (blk[0] == 'B')
            b++;
        else
            d++;
    }
    assert_true(b >= 2 && d >= 2 && wraps >= 2);
    px_config_free(c);
}

/* The parsed header is what the HSM enforces: every field and the KS block come out. */
static void test_header_fields(void **state)
{
    crypto_tr31_header h;
    px_error e = {0};
    const char *data = NULL;
    size_t len = 0;
    const char *s = "B0104B0TX12S0100KS1800604B120F9292800000";
    assert_int_equal(crypto_tr31_header_parse(s, strlen(s), &h, &e), PX_OK);
    assert_int_equal(h.version, 'B');
    assert_int_equal(h.length, 104);
    assert_string_equal(h.usage, "B0");
    assert_int_equal(h.algorithm, 'T');
    assert_int_equal(h.mode, 'X');
    assert_string_equal(h.key_version, "12");
    assert_int_equal(h.exportability, 'S');
    assert_int_equal(h.nopt, 1);
    assert_int_equal(h.header_len, 40);
    assert_int_equal(crypto_tr31_header_find_opt(&h, "KS", &data, &len), PX_OK);
    assert_int_equal(len, 20);
    assert_memory_equal(data, "00604B120F9292800000", 20);
    assert_int_equal(crypto_tr31_header_find_opt(&h, "KC", &data, &len), PX_ENOTFOUND);
    /* extended length, an empty block, several blocks, a pad block */
    s = "B0000P0TE00N0200KS00011600604B120F9292PB0A000000";
    assert_int_equal(crypto_tr31_header_parse(s, strlen(s), &h, &e), PX_OK);
    assert_int_equal(h.header_len, 48);
    assert_int_equal(crypto_tr31_header_find_opt(&h, "KS", &data, &len), PX_OK);
    assert_int_equal(len, 14);
    s = "B0000P0TE00N0400KS1800604B120F9292800000T104T20600PB0600";
    assert_int_equal(crypto_tr31_header_parse(s, strlen(s), &h, &e), PX_OK);
    assert_int_equal(h.nopt, 4);
    assert_int_equal(crypto_tr31_header_find_opt(&h, "T1", &data, &len), PX_OK);
    assert_int_equal(len, 0);
    assert_int_equal(crypto_tr31_header_find_opt(&h, "T2", &data, &len), PX_OK);
    assert_memory_equal(data, "00", 2);
}

static void test_header_rejects(void **state)
{
    static const struct {
        const char *s;
        int code;
    } bad[] = {
        {"B0000P0TE00N000", PX_EFORMAT},       /* short */
        {"BX040P0TE00N0000", PX_EFORMAT},      /* length not digits */
        {"A0072P0TE00E0000", PX_EUNSUPPORTED}, /* variant binding (A) */
        {"C0072P0TE00E0000", PX_EUNSUPPORTED},    {"X0072P0TE00E0000", PX_EUNSUPPORTED},
        {"B0016Q9TE00N0000", PX_EFORMAT},         /* unknown usage */
        {"B0016P0QE00N0000", PX_EFORMAT},         /* unknown algorithm */
        {"B0016P0TQ00N0000", PX_EFORMAT},         /* unknown mode */
        {"B0016P0TE0_N0000", PX_EFORMAT},         /* key version */
        {"B0016P0TE00Q0000", PX_EFORMAT},         /* exportability */
        {"B0016P0TE00N0X00", PX_EFORMAT},         /* block count */
        {"B0016P0TE00N0001", PX_EFORMAT},         /* reserved */
        {"B0000P0TE00N0100", PX_EFORMAT},         /* block missing */
        {"B0000P0TE00N0100KS1Y", PX_EFORMAT},     /* length not hex */
        {"B0000P0TE00N0100KS02", PX_EFORMAT},     /* length below 4 */
        {"B0000P0TE00N0100KS071", PX_EFORMAT},    /* data truncated */
        {"B0000P0TE00N0100KS0000", PX_EFORMAT},   /* length of length 0 */
        {"B0000P0TE00N0100KS0001FF", PX_EFORMAT}, /* extended data truncated */
        {"B0000P0TE00N0100**04", PX_EFORMAT},     /* ID not alphanumeric */
        {"B0000P0TE00N0100KS05\x03", PX_EFORMAT}, /* data not printable */
        {"B0000P0TE00N0200PB04KS04", PX_EFORMAT}, /* PB not last */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        crypto_tr31_header h;
        px_error e = {0};
        int rc = crypto_tr31_header_parse(bad[i].s, strlen(bad[i].s), &h, &e);
        if (rc != bad[i].code)
            fail_msg("header %zu (%s): got %d, want %d (%s)", i, bad[i].s, rc, bad[i].code, e.msg);
        assert_true(strlen(e.msg) > 0);
    }
}

/* Wrap then unwrap, over versions, KBPK lengths, key algorithms and optional blocks. */
static void test_round_trips(void **state)
{
    static const struct {
        char ver;
        size_t kbpklen;
        char alg;
        size_t keylen;
        const char *usage;
    } cases[] = {
        {'B', 16, 'T', 16, "P0"}, {'B', 24, 'T', 24, "K0"}, {'B', 16, 'T', 8, "M3"},
        {'D', 16, 'A', 16, "P0"}, {'D', 24, 'A', 24, "D0"}, {'D', 32, 'A', 32, "K1"},
        {'D', 32, 'T', 16, "B0"}, {'D', 16, 'H', 32, "M7"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t kbpk[32], key[32], back[64];
        char blk[CRYPTO_TR31_BLOCK_MAX + 1], big[300];
        size_t kl = 0;
        crypto_tr31_header h, got;
        px_error e = {0};
        crypto_random(kbpk, sizeof kbpk, &e);
        crypto_random(key, sizeof key, &e);
        assert_int_equal(crypto_tr31_header_init(&h, cases[i].ver, cases[i].usage, cases[i].alg,
                                                 'N', "00", 'E', &e),
                         PX_OK);
        if (i % 2 == 1) {
            assert_int_equal(crypto_tr31_header_add_opt(&h, "KS", "FFFF9876543210E00000", 20, &e),
                             PX_OK);
            memset(big, 'Z', sizeof big);
            assert_int_equal(crypto_tr31_header_add_opt(&h, "TS", big, sizeof big, &e), PX_OK);
        }
        assert_int_equal(crypto_tr31_wrap(kbpk, cases[i].kbpklen, &h, key, cases[i].keylen, blk,
                                          sizeof blk, &e),
                         PX_OK);
        assert_int_equal(crypto_tr31_unwrap(kbpk, cases[i].kbpklen, blk, strlen(blk), &got, back,
                                            sizeof back, &kl, &e),
                         PX_OK);
        assert_int_equal(kl, cases[i].keylen);
        assert_memory_equal(back, key, kl);
        assert_string_equal(got.usage, cases[i].usage);
        assert_int_equal(got.header_len % (cases[i].ver == 'B' ? 8 : 16), 0);
        assert_int_equal(got.length, strlen(blk));
        /* random padding: the same key wraps differently each time */
        char blk2[CRYPTO_TR31_BLOCK_MAX + 1];
        crypto_tr31_wrap(kbpk, cases[i].kbpklen, &h, key, cases[i].keylen, blk2, sizeof blk2, &e);
        assert_string_not_equal(blk, blk2);
    }
}

/* Any change to header, key data or MAC fails the MAC; so does the wrong KBPK. */
static void test_tampered_blocks_refused(void **state)
{
    uint8_t kbpk[16], key[64];
    size_t kl = 0, pl = 0;
    crypto_tr31_header h;
    px_error e = {0};
    char blk[] = "B0080P0TE00E000094B420079CC80BA3461F86FE26EFC4A3B8E4FA4C5F5341176EED7B727B8A248E";
    hexin("DD7515F2BFC17F85CE48F3CA25CB21F6", kbpk, sizeof kbpk, &pl);
    static const size_t where[] = {11, 7, 8, 20, 60, 70, 79};
    for (size_t i = 0; i < sizeof where / sizeof where[0]; i++) {
        char saved = blk[where[i]];
        blk[where[i]] = where[i] == 11  ? 'N'
                        : where[i] == 7 ? 'D'
                        : where[i] == 8 ? 'D'
                        : saved == '0'  ? '1'
                                        : '0';
        int rc = crypto_tr31_unwrap(kbpk, pl, blk, strlen(blk), &h, key, sizeof key, &kl, &e);
        if (rc != PX_EAUTH)
            fail_msg("tamper at %zu: got %d (%s)", where[i], rc, e.msg);
        assert_non_null(strstr(e.msg, "MAC"));
        blk[where[i]] = saved;
    }
    kbpk[0] ^= 0x02; /* bit 0 is a DES parity bit, which DES ignores */
    assert_int_equal(crypto_tr31_unwrap(kbpk, pl, blk, strlen(blk), &h, key, sizeof key, &kl, &e),
                     PX_EAUTH);
    kbpk[0] ^= 0x02;
    assert_int_equal(crypto_tr31_unwrap(kbpk, pl, blk, strlen(blk), &h, key, sizeof key, &kl, &e),
                     PX_OK);
}

static void test_unwrap_rejects_malformed(void **state)
{
    uint8_t kbpk[32] = {0}, key[64];
    size_t kl = 0;
    crypto_tr31_header h;
    px_error e = {0};
    static const struct {
        const char *blk;
        size_t kbpklen;
        int code;
    } bad[] = {
        {"B0040P0TE00N0000", 16, PX_EFORMAT}, /* length field does not match */
        {"B0064M3TC00E0000BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBFFFFFFFF9AA5BBA6", 16, PX_EAUTH},
        {"B0032M3TC00E0000FFFFFFFF9AA5BBA6", 16, PX_EFORMAT}, /* no key data */
        {"B0088M3TC00E000062C2C14D8785A01A9E8283525CA96F490D0CC6346FC7C2AC1E6FF35X468910379AA5BBA6",
         16, PX_EFORMAT}, /* key data not hex */
        {"B0064M3TC00E0000BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBFFFFFFFF9AA5BBA6", 8, PX_EINVAL},
        {"D0064M3TC00E0000BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBFFFFFFFF9AA5BBA6", 16, PX_EFORMAT},
        {"B0024M3TC00E00009AA5BBA6", 16, PX_EFORMAT}, /* MAC too short */
        {"B0000P0TE00N0100KS1800604B120F9292800000xxxxxxxx", 16, PX_EFORMAT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = crypto_tr31_unwrap(kbpk, bad[i].kbpklen, bad[i].blk, strlen(bad[i].blk), &h, key,
                                    sizeof key, &kl, &e);
        if (rc != bad[i].code)
            fail_msg("block %zu: got %d, want %d (%s)", i, rc, bad[i].code, e.msg);
    }
    char huge[CRYPTO_TR31_BLOCK_MAX + 2];
    memset(huge, 'B', sizeof huge);
    assert_int_equal(crypto_tr31_unwrap(kbpk, 16, huge, sizeof huge, &h, key, sizeof key, &kl, &e),
                     PX_EFORMAT);
}

static void test_wrap_policy(void **state)
{
    uint8_t kbpk[32] = {1}, key[32] = {2};
    char blk[CRYPTO_TR31_BLOCK_MAX + 1];
    crypto_tr31_header h;
    px_error e = {0};
    /* an AES key may not ride in a TDES (B) block; a TDES key may not outgrow its KBPK */
    assert_int_equal(crypto_tr31_header_init(&h, 'B', "P0", 'A', 'E', "00", 'E', &e), PX_OK);
    assert_int_equal(crypto_tr31_wrap(kbpk, 16, &h, key, 16, blk, sizeof blk, &e), PX_EPERM);
    assert_int_equal(crypto_tr31_header_init(&h, 'B', "P0", 'T', 'E', "00", 'E', &e), PX_OK);
    assert_int_equal(crypto_tr31_wrap(kbpk, 16, &h, key, 24, blk, sizeof blk, &e), PX_EPERM);
    assert_int_equal(crypto_tr31_wrap(kbpk, 16, &h, key, 15, blk, sizeof blk, &e), PX_EINVAL);
    assert_int_equal(crypto_tr31_wrap(kbpk, 32, &h, key, 16, blk, sizeof blk, &e), PX_EINVAL);
    assert_int_equal(crypto_tr31_wrap(kbpk, 16, &h, key, 16, blk, 40, &e), PX_ETOOBIG);
    assert_int_equal(crypto_tr31_header_init(&h, 'D', "P0", 'A', 'E', "00", 'E', &e), PX_OK);
    assert_int_equal(crypto_tr31_wrap(kbpk, 16, &h, key, 32, blk, sizeof blk, &e), PX_EPERM);
    /* header from text: its length field is filled in */
    assert_int_equal(crypto_tr31_wrap_str(kbpk, 16, "D0000P0AE00E0000", key, 16, blk, sizeof blk,
                                          &e),
                     PX_OK);
    assert_memory_equal(blk, "D0112P0AE00E0000", 16);
    assert_int_equal(crypto_tr31_wrap_str(kbpk, 16, "D0000P0AE00E0000XX", key, 16, blk, sizeof blk,
                                          &e),
                     PX_EFORMAT);
    assert_int_equal(crypto_tr31_wrap_padded(kbpk, 16, &h, key, 16, key, 3, blk, sizeof blk, &e),
                     PX_EINVAL);
    assert_int_equal(crypto_tr31_header_init(&h, 'D', "Z9", 'A', 'E', "00", 'E', &e), PX_EFORMAT);
    assert_true(crypto_tr31_usage_is_known("42"));
    assert_false(crypto_tr31_usage_is_known("P"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_header_fields),
        cmocka_unit_test(test_header_rejects),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_tampered_blocks_refused),
        cmocka_unit_test(test_unwrap_rejects_malformed),
        cmocka_unit_test(test_wrap_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
