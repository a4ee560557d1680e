/*
 * test_pinpad.c: the PIN pad key store: known answers for the UnionPay work keys under a
 * TMK (tests/vectors: "UnionPay work key under TMK"), check values, PIN blocks and MACs
 * made inside, and the key file at rest: no clear key in it, tampering and a foreign
 * device secret or serial refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "crypto/mac.h"
#include "device/pinpad/devfile.h"
#include "device/pinpad/pinpad.h"
#include "device/pinpad/pinpad_int.h" /* white box: the TK, to play the KMS */
#include "lib/hex.h"
#include "tmpdir.h"

/* Vector: TMK 70F2A84CCBC2AE8625CBB0F2C22AB923, MAC key ciphertext 96D605EA176B7E9E
 * -> clear C24A8FB57AA20123 (used as both halves of a double-length MAK). */
#define TMK_HEX "70F2A84CCBC2AE8625CBB0F2C22AB923"
#define MAK_CT_HEX "96D605EA176B7E9E96D605EA176B7E9E"
#define MAK_HEX "C24A8FB57AA20123C24A8FB57AA20123"
/* Component 1 is the X9.24 check-value vector key (KCV 08D7B4); component 2 = TMK ^ C1. */
#define C1_HEX "0123456789ABCDEFFEDCBA9876543210"
#define PIK_HEX "0123456789ABCDEFFEDCBA9876543210"
#define TDK_HEX "F1E2D3C4B5A697880011223344556677"

typedef struct fixture {
    char dir[512], store[600], secret[600];
    pinpad *p;
} fixture;

static const void *find(const void *hay, size_t n, const void *needle, size_t m)
{
    for (size_t i = 0; m <= n && i <= n - m; i++)
        if (memcmp((const uint8_t *)hay + i, needle, m) == 0)
            return (const uint8_t *)hay + i;
    return NULL;
}

static void hex(const char *h, uint8_t *out, size_t n)
{
    size_t got = 0;
    assert_int_equal(px_hex_decode(h, out, n, &got), PX_OK);
    assert_int_equal(got, n);
}

static int setup(void **state)
{
    static fixture f;
    memset(&f, 0, sizeof f);
    assert_int_equal(testlib_mkdtemp("pinpad", f.dir, sizeof f.dir), PX_OK);
    snprintf(f.store, sizeof f.store, "%s/pinpad.keys", f.dir);
    snprintf(f.secret, sizeof f.secret, "%s/device.secret", f.dir);
    assert_int_equal(pinpad_secret_create(f.secret, NULL), PX_OK);
    assert_int_equal(pinpad_create(f.store, f.secret, "PP-0001", &f.p, NULL), PX_OK);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    pinpad_close(f->p);
    testlib_rmtree(f->dir);
    return 0;
}

static void load_tmk(pinpad *p)
{
    uint8_t c1[16], c2[16], tmk[16], k1[3] = {0x08, 0xD7, 0xB4}, k2[8], tk[8];
    size_t n;
    px_error e = {0};
    hex(C1_HEX, c1, 16);
    hex(TMK_HEX, tmk, 16);
    for (int i = 0; i < 16; i++)
        c2[i] = (uint8_t)(tmk[i] ^ c1[i]);
    assert_int_equal(crypto_kcv(CRYPTO_TDES, c2, 16, k2, sizeof k2, &n, NULL), PX_OK);
    assert_int_equal(crypto_kcv(CRYPTO_TDES, tmk, 16, tk, sizeof tk, &n, NULL), PX_OK);
    const uint8_t *comps[2] = {c1, c2}, *kcvs[2] = {k1, k2};
    assert_int_equal(pinpad_load_tmk_components(p, comps, 2, kcvs, 3, tk, 3, &e), PX_OK);
}

/* Field 62 as the platform builds it: each key under the TMK, 4 bytes of its check value. */
static void make_f62(uint8_t f62[60], int spoil_cv_of)
{
    const char *clear[3] = {PIK_HEX, MAK_HEX, TDK_HEX};
    static const uint8_t zero[8] = {0};
    uint8_t tmk[16], k[16], cv[8];
    hex(TMK_HEX, tmk, 16);
    for (int i = 0; i < 3; i++) {
        hex(clear[i], k, 16);
        assert_int_equal(crypto_encrypt(CRYPTO_TDES, CRYPTO_ECB, tmk, 16, NULL, k, 16, f62 + i * 20,
                                        NULL),
                         PX_OK);
        assert_int_equal(crypto_encrypt(CRYPTO_TDES, CRYPTO_ECB, k, 16, NULL, zero, 8, cv, NULL),
                         PX_OK);
        memcpy(f62 + i * 20 + 16, cv, 4);
        if (i == spoil_cv_of)
            f62[i * 20 + 19] ^= 0x01;
    }
}

static void test_work_key_known_answer(void **state)
{
    fixture *f = *state;
    uint8_t f62[60], mak[16], mac[8], want[8];
    size_t n;
    pinpad_key_info info;
    load_tmk(f->p);
    make_f62(f62, -1);
    /* the MAK's cryptogram is the published vector's */
    hex(MAK_CT_HEX, mak, 16);
    assert_memory_equal(f62 + 20, mak, 16);
    assert_int_equal(pinpad_install_work_keys(f->p, f62, sizeof f62, NULL), PX_OK);
    pinpad_key_info_get(f->p, PINPAD_PIK, &info);
    assert_true(info.present);
    assert_string_equal(info.kcv, "08D7B4");
    /* the MAC made inside equals a MAC under the vector's clear key */
    hex(MAK_HEX, mak, 16);
    assert_int_equal(pinpad_mac(f->p, (const uint8_t *)"0200 message", 12, mac, NULL), PX_OK);
    assert_int_equal(crypto_mac(CRYPTO_MAC_CUP_ECB, mak, 16, (const uint8_t *)"0200 message", 12,
                                want, sizeof want, &n, NULL),
                     PX_OK);
    assert_memory_equal(mac, want, 8);
    assert_int_equal(pinpad_mac_verify(f->p, (const uint8_t *)"0200 message", 12, mac, NULL),
                     PX_OK);
    mac[0] ^= 1;
    assert_int_equal(pinpad_mac_verify(f->p, (const uint8_t *)"0200 message", 12, mac, NULL),
                     PX_EAUTH);
}

static void test_bad_check_value_refuses_all(void **state)
{
    fixture *f = *state;
    uint8_t f62[60];
    px_error e = {0};
    load_tmk(f->p);
    make_f62(f62, 2);
    assert_int_equal(pinpad_install_work_keys(f->p, f62, sizeof f62, &e), PX_EAUTH);
    assert_non_null(strstr(e.msg, "TDK"));
    assert_false(pinpad_has_key(f->p, PINPAD_PIK)); /* the good PIK and MAK were not kept */
    assert_false(pinpad_has_key(f->p, PINPAD_MAK));
    assert_int_equal(pinpad_install_work_keys(f->p, f62, 40, &e), PX_EFORMAT);
}

static void test_work_keys_need_a_tmk(void **state)
{
    fixture *f = *state;
    uint8_t f62[60], out[8];
    make_f62(f62, -1);
    assert_int_equal(pinpad_install_work_keys(f->p, f62, sizeof f62, NULL), PX_ESTATE);
    assert_int_equal(pinpad_pin_block(f->p, "1234", "5555555551234567", out, NULL), PX_ESTATE);
    assert_int_equal(pinpad_mac(f->p, (const uint8_t *)"x", 1, out, NULL), PX_ESTATE);
}

static void test_pin_block_format0_under_pik(void **state)
{
    fixture *f = *state;
    uint8_t f62[60], pik[16], blk[8], clear[8], want[8];
    load_tmk(f->p);
    make_f62(f62, -1);
    assert_int_equal(pinpad_install_work_keys(f->p, f62, sizeof f62, NULL), PX_OK);
    assert_int_equal(pinpad_pin_block(f->p, "1234", "5555555551234567", blk, NULL), PX_OK);
    hex(PIK_HEX, pik, 16);
    assert_int_equal(crypto_decrypt(CRYPTO_TDES, CRYPTO_ECB, pik, 16, NULL, blk, 8, clear, NULL),
                     PX_OK);
    hex("041261AAAAEDCBA9", want, 8); /* ISO 9564 format 0 vector */
    assert_memory_equal(clear, want, 8);
    assert_int_equal(pinpad_pin_block(f->p, "12", "5555555551234567", blk, NULL), PX_EINVAL);
}

static void test_pin_entry_from_a_pipe(void **state)
{
    fixture *f = *state;
    uint8_t f62[60], blk[8], ref[8];
    int fds[2];
    px_error e = {0};
    load_tmk(f->p);
    make_f62(f62, -1);
    assert_int_equal(pinpad_install_work_keys(f->p, f62, sizeof f62, NULL), PX_OK);
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], "1234\n12a4\n", 10), 10);
    close(fds[1]);
    int devnull = open("/dev/null", O_WRONLY);
    assert_int_equal(pinpad_pin_entry(f->p, fds[0], devnull, "PIN: ", "5555555551234567", blk,
                                      NULL),
                     PX_OK);
    assert_int_equal(pinpad_pin_block(f->p, "1234", "5555555551234567", ref, NULL), PX_OK);
    uint8_t pik[16], c1[8], c2[8];
    hex(PIK_HEX, pik, 16);
    crypto_decrypt(CRYPTO_TDES, CRYPTO_ECB, pik, 16, NULL, blk, 8, c1, NULL);
    crypto_decrypt(CRYPTO_TDES, CRYPTO_ECB, pik, 16, NULL, ref, 8, c2, NULL);
    assert_memory_equal(c1, c2, 8);
    assert_int_equal(pinpad_pin_entry(f->p, fds[0], devnull, NULL, "5555555551234567", blk, &e),
                     PX_EINVAL);
    assert_null(strstr(e.msg, "12a4"));
    assert_int_equal(pinpad_pin_entry(f->p, fds[0], devnull, NULL, "5555555551234567", blk, &e),
                     PX_EPERM); /* end of input cancels */
    close(fds[0]);
    close(devnull);
}

/* No key, component or its hex text anywhere in the file at rest. */
static void test_file_holds_no_clear_key(void **state)
{
    fixture *f = *state;
    uint8_t f62[60], k[16];
    const char *keys[] = {TMK_HEX, C1_HEX, MAK_HEX, PIK_HEX, TDK_HEX};
    px_buf b;
    load_tmk(f->p);
    make_f62(f62, -1);
    assert_int_equal(pinpad_install_work_keys(f->p, f62, sizeof f62, NULL), PX_OK);
    px_buf_init(&b, 1 << 16);
    assert_int_equal(devfile_read(f->store, &b, NULL), PX_OK);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        hex(keys[i], k, 16);
        for (size_t off = 0; off + 8 <= b.len; off++) {
            assert_false(memcmp(b.data + off, k, 8) == 0);
            assert_false(memcmp(b.data + off, k + 8, 8) == 0);
        }
        assert_null(find(b.data, b.len, keys[i], 16));
    }
    struct stat st;
    assert_int_equal(stat(f->store, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
    px_buf_free(&b);
}

static void test_reopen_keeps_keys(void **state)
{
    fixture *f = *state;
    uint8_t f62[60], m1[8], m2[8];
    pinpad_key_info a, b;
    load_tmk(f->p);
    make_f62(f62, -1);
    assert_int_equal(pinpad_install_work_keys(f->p, f62, sizeof f62, NULL), PX_OK);
    assert_int_equal(pinpad_mac(f->p, (const uint8_t *)"abc", 3, m1, NULL), PX_OK);
    pinpad_key_info_get(f->p, PINPAD_TMK, &a);
    pinpad_close(f->p);
    f->p = NULL;
    assert_int_equal(pinpad_open(f->store, f->secret, "PP-0001", &f->p, NULL), PX_OK);
    pinpad_key_info_get(f->p, PINPAD_TMK, &b);
    assert_string_equal(a.kcv, b.kcv);
    assert_int_equal(pinpad_mac(f->p, (const uint8_t *)"abc", 3, m2, NULL), PX_OK);
    assert_memory_equal(m1, m2, 8);
}

static void flip_byte(const char *path, size_t off)
{
    px_buf b;
    px_buf_init(&b, 1 << 16);
    assert_int_equal(devfile_read(path, &b, NULL), PX_OK);
    assert_true(off < b.len);
    b.data[off] ^= 0x40;
    assert_int_equal(devfile_write_atomic(path, b.data, b.len, 0600, NULL), PX_OK);
    px_buf_free(&b);
}

static void test_tampered_file_refused(void **state)
{
    fixture *f = *state;
    static const size_t offsets[] = {9, 13, 50, 65, 80, 140, 215};
    px_error e = {0};
    pinpad *q = NULL;
    load_tmk(f->p);
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        flip_byte(f->store, offsets[i]);
        assert_int_not_equal(pinpad_open(f->store, f->secret, "PP-0001", &q, &e), PX_OK);
        assert_null(q);
        flip_byte(f->store, offsets[i]); /* restore */
    }
    flip_byte(f->store, 100);
    assert_int_equal(pinpad_open(f->store, f->secret, "PP-0001", &q, &e), PX_EAUTH);
    assert_non_null(strstr(e.msg, "does not authenticate"));
    flip_byte(f->store, 100);
    assert_int_equal(pinpad_open(f->store, f->secret, "PP-0001", &q, NULL), PX_OK);
    pinpad_close(q);
}

static void test_foreign_secret_or_serial_refused(void **state)
{
    fixture *f = *state;
    char other[700];
    pinpad *q = NULL;
    px_error e = {0};
    load_tmk(f->p);
    snprintf(other, sizeof other, "%s/other.secret", f->dir);
    assert_int_equal(pinpad_secret_create(other, NULL), PX_OK);
    assert_int_equal(pinpad_secret_create(other, NULL), PX_EEXIST);
    assert_int_equal(pinpad_open(f->store, other, "PP-0001", &q, &e), PX_EAUTH);
    assert_int_equal(pinpad_open(f->store, f->secret, "PP-0002", &q, &e), PX_EAUTH);
    assert_int_equal(pinpad_open(f->store, f->secret, "bad serial!", &q, &e), PX_EINVAL);
    chmod(f->secret, 0644);
    assert_int_equal(pinpad_open(f->store, f->secret, "PP-0001", &q, &e), PX_EPERM);
    chmod(f->secret, 0600);
    assert_int_equal(pinpad_create(f->store, f->secret, "PP-0001", &q, &e), PX_EEXIST);
    assert_null(q);
}

static void test_component_check_values(void **state)
{
    fixture *f = *state;
    uint8_t c1[16], c2[16] = {1}, k1[3] = {0x08, 0xD7, 0xB5}, k2[3] = {0};
    const uint8_t *comps[2] = {c1, c2}, *kcvs[2] = {k1, k2};
    px_error e = {0};
    hex(C1_HEX, c1, 16);
    assert_int_equal(pinpad_load_tmk_components(f->p, comps, 2, kcvs, 3, NULL, 0, &e), PX_EAUTH);
    assert_non_null(strstr(e.msg, "component 1"));
    assert_false(pinpad_has_key(f->p, PINPAD_TMK));
    assert_int_equal(pinpad_load_tmk_components(f->p, comps, 2, NULL, 0, k2, 3, &e), PX_EAUTH);
    assert_non_null(strstr(e.msg, "combined"));
    assert_int_equal(pinpad_load_tmk_components(f->p, comps, 1, NULL, 0, NULL, 0, &e), PX_EINVAL);
}

static void test_wipe(void **state)
{
    fixture *f = *state;
    uint8_t f62[60];
    pinpad *q = NULL;
    load_tmk(f->p);
    make_f62(f62, -1);
    assert_int_equal(pinpad_install_work_keys(f->p, f62, sizeof f62, NULL), PX_OK);
    assert_int_equal(pinpad_wipe_work_keys(f->p, NULL), PX_OK);
    assert_true(pinpad_has_key(f->p, PINPAD_TMK));
    assert_false(pinpad_has_key(f->p, PINPAD_MAK));
    assert_int_equal(pinpad_open(f->store, f->secret, "PP-0001", &q, NULL), PX_OK);
    assert_false(pinpad_has_key(q, PINPAD_PIK)); /* on disk too */
    pinpad_close(q);
    assert_int_equal(pinpad_wipe_all(f->p, NULL), PX_OK);
    assert_false(pinpad_has_key(f->p, PINPAD_TMK));
}

static void test_tmk_under_tk(void **state)
{
    fixture *f = *state;
    uint8_t tmk[16], ct[16] = {0}, kcv[8] = {0};
    char tk_kcv[PINPAD_KCV_HEX];
    size_t n;
    pinpad_key_info info;
    assert_int_equal(pinpad_load_tmk_under_tk(f->p, ct, 16, kcv, 3, NULL), PX_ESTATE);
    assert_int_equal(pinpad_tk_generate(f->p, tk_kcv, NULL), PX_OK);
    assert_int_equal(strlen(tk_kcv), 6);
    hex(TMK_HEX, tmk, 16);
    /* the KMS's side: TMK under TK, with the TMK's check value */
    assert_int_equal(crypto_encrypt(CRYPTO_TDES, CRYPTO_ECB, f->p->slot[PINPAD_TK].key, 16, NULL,
                                    tmk, 16, ct, NULL),
                     PX_OK);
    assert_int_equal(crypto_kcv(CRYPTO_TDES, tmk, 16, kcv, sizeof kcv, &n, NULL), PX_OK);
    kcv[0] ^= 1;
    assert_int_equal(pinpad_load_tmk_under_tk(f->p, ct, 16, kcv, 3, NULL), PX_EAUTH);
    assert_false(pinpad_has_key(f->p, PINPAD_TMK));
    kcv[0] ^= 1;
    assert_int_equal(pinpad_load_tmk_under_tk(f->p, ct, 16, kcv, 3, NULL), PX_OK);
    pinpad_key_info_get(f->p, PINPAD_TMK, &info);
    char want[7];
    px_hex_encode(kcv, 3, want);
    assert_string_equal(info.kcv, want);
}

static void test_seal(void **state)
{
    fixture *f = *state;
    uint8_t sealed[128], back[64];
    size_t n, m;
    pinpad *q = NULL;
    char other[700];
    assert_int_equal(pinpad_seal(f->p, (const uint8_t *)"6222021234567890123", 19, sealed,
                                 sizeof sealed, &n, NULL),
                     PX_OK);
    assert_int_equal(n, 19 + PINPAD_SEAL_OVERHEAD);
    assert_null(find(sealed, n, "6222021234567890123", 19));
    assert_int_equal(pinpad_unseal(f->p, sealed, n, back, sizeof back, &m, NULL), PX_OK);
    assert_int_equal(m, 19);
    assert_memory_equal(back, "6222021234567890123", 19);
    sealed[20] ^= 1;
    assert_int_equal(pinpad_unseal(f->p, sealed, n, back, sizeof back, &m, NULL), PX_EAUTH);
    sealed[20] ^= 1;
    /* another device cannot open it */
    snprintf(other, sizeof other, "%s/b.secret", f->dir);
    assert_int_equal(pinpad_secret_create(other, NULL), PX_OK);
    snprintf(f->store + strlen(f->store), 8, ".b");
    assert_int_equal(pinpad_create(f->store, other, "PP-0001", &q, NULL), PX_OK);
    assert_int_equal(pinpad_unseal(q, sealed, n, back, sizeof back, &m, NULL), PX_EAUTH);
    pinpad_close(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_work_key_known_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_check_value_refuses_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_work_keys_need_a_tmk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pin_block_format0_under_pik, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pin_entry_from_a_pipe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_holds_no_clear_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_file_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_secret_or_serial_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_component_check_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wipe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tmk_under_tk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seal, setup, teardown),
    };
    return cmocka_run_group_tests_name("pinpad", tests, NULL, NULL);
}
