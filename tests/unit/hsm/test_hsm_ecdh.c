/* test_hsm_ecdh.c: receiving a key wrapped to the HSM's public key (the PIN pad's TK sent to
 * the KMS, seed 001). The sender's side is written here with OpenSSL exactly as docs/hsm.md
 * describes it (ECDH P-256, HKDF-SHA-256, RFC 3394 AES key wrap). */
#include "hsm_testutil.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>

#define TK "0123456789ABCDEFFEDCBA9876543210"

static int setup(void **state)
{
    hsm_fixture *f = calloc(1, sizeof *f);
    fx_setup(f, "hsmecdh");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_teardown(*state);
    free(*state);
    return 0;
}

static EVP_PKEY *public_key(const uint8_t q[HSM_EC_PUB_LEN])
{
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
    OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, q, HSM_EC_PUB_LEN);
    OSSL_PARAM *p = OSSL_PARAM_BLD_to_param(b);
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *pk = NULL;
    assert_int_equal(EVP_PKEY_fromdata_init(c), 1);
    assert_int_equal(EVP_PKEY_fromdata(c, &pk, EVP_PKEY_PUBLIC_KEY, p), 1);
    EVP_PKEY_CTX_free(c);
    OSSL_PARAM_free(p);
    OSSL_PARAM_BLD_free(b);
    return pk;
}

/* The sender (PIN pad): wrap key (hex) to the receiver's point q. */
static void wrap_to(const uint8_t q[HSM_EC_PUB_LEN], const char *hex, uint8_t eph[HSM_EC_PUB_LEN],
                    uint8_t *c, size_t *cl)
{
    uint8_t key[32], z[32], kek[32], info[18 + 2 * HSM_EC_PUB_LEN];
    size_t kl = 0, el = 0, zl = sizeof z;
    int l1 = 0, l2 = 0;
    px_hex_decode(hex, key, sizeof key, &kl);
    EVP_PKEY *ep = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), *peer = public_key(q);
    assert_int_equal(EVP_PKEY_get_octet_string_param(ep, OSSL_PKEY_PARAM_PUB_KEY, eph,
                                                     HSM_EC_PUB_LEN, &el),
                     1);
    assert_int_equal(el, HSM_EC_PUB_LEN);
    EVP_PKEY_CTX *dc = EVP_PKEY_CTX_new_from_pkey(NULL, ep, NULL);
    assert_int_equal(EVP_PKEY_derive_init(dc), 1);
    assert_int_equal(EVP_PKEY_derive_set_peer(dc, peer), 1);
    assert_int_equal(EVP_PKEY_derive(dc, z, &zl), 1);
    memcpy(info, "possum.key-wrap.v1", 18);
    memcpy(info + 18, eph, HSM_EC_PUB_LEN);
    memcpy(info + 18 + HSM_EC_PUB_LEN, q, HSM_EC_PUB_LEN);
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kc = EVP_KDF_CTX_new(kdf);
    OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
                      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, z, sizeof z),
                      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof info),
                      OSSL_PARAM_construct_end()};
    assert_int_equal(EVP_KDF_derive(kc, kek, 32, p), 1);
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    EVP_CIPHER_CTX_set_flags(x, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    assert_int_equal(EVP_EncryptInit_ex(x, EVP_aes_256_wrap(), NULL, kek, NULL), 1);
    assert_int_equal(EVP_EncryptUpdate(x, c, &l1, key, (int)kl), 1);
    assert_int_equal(EVP_EncryptFinal_ex(x, c + l1, &l2), 1);
    *cl = (size_t)(l1 + l2);
    EVP_CIPHER_CTX_free(x);
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);
    EVP_PKEY_CTX_free(dc);
    EVP_PKEY_free(ep);
    EVP_PKEY_free(peer);
}

static void test_tk_to_kms(void **state)
{
    hsm_fixture *f = *state;
    uint8_t q[HSM_EC_PUB_LEN], q2[HSM_EC_PUB_LEN], eph[HSM_EC_PUB_LEN], c[48];
    size_t cl = 0;
    hsm_keyblock kb, tk;
    hsm_key *recv = NULL;
    px_error e = {0};
    hsm_key_attrs a = fx_attrs("K0", 'T', 'E', 'S', 0);
    assert_int_equal(hsm_ec_generate(f->h, "KMS.recv", &kb, q, &e), PX_OK);
    assert_int_equal(q[0], 0x04);
    assert_int_equal(strlen(kb.kcv), 10);
    assert_memory_equal(kb.block + 5, "K3ED00N", 7);
    assert_int_equal(hsm_key_load_named(f->h, "KMS.recv", &recv, &e), PX_OK);
    assert_int_equal(hsm_ec_public(recv, q2, &e), PX_OK);
    assert_memory_equal(q, q2, sizeof q);
    assert_string_equal(hsm_key_kcv(recv), kb.kcv);
    /* the PIN pad wraps its TK to our public key; only we can take it in */
    wrap_to(q, TK, eph, c, &cl);
    assert_int_equal(cl, 24);
    assert_int_equal(hsm_key_import_ecdh(f->h, recv, eph, c, cl, &a, "08D7B4", "TK.pinpad1", &tk,
                                         &e),
                     PX_OK);
    assert_string_equal(tk.kcv, "08D7B4");
    assert_memory_equal(tk.block + 5, "K0TE00S", 7);
    assert_int_equal(hsm_key_import_ecdh(f->h, recv, eph, c, cl, &a, "000000", NULL, &tk, &e),
                     PX_EAUTH);
    /* altered in transit, or sent to someone else: refused */
    c[5] ^= 1;
    assert_int_equal(hsm_key_import_ecdh(f->h, recv, eph, c, cl, &a, NULL, NULL, &tk, &e),
                     PX_EAUTH);
    c[5] ^= 1;
    eph[10] ^= 1;
    assert_int_equal(hsm_key_import_ecdh(f->h, recv, eph, c, cl, &a, NULL, NULL, &tk, &e),
                     PX_EINVAL);
    eph[10] ^= 1;
    hsm_key *other = NULL;
    assert_int_equal(hsm_ec_generate(f->h, NULL, &kb, q2, &e), PX_OK);
    assert_int_equal(hsm_key_load(f->h, kb.block, &other, &e), PX_OK);
    assert_int_equal(hsm_key_import_ecdh(f->h, other, eph, c, cl, &a, NULL, NULL, &tk, &e),
                     PX_EAUTH);
    /* an AES-256 key is stronger than P-256 can carry */
    wrap_to(q, TK TK, eph, c, &cl);
    hsm_key_attrs big = fx_attrs("K0", 'A', 'E', 'S', 0);
    assert_int_equal(hsm_key_import_ecdh(f->h, recv, eph, c, cl, &big, NULL, NULL, &tk, &e),
                     PX_EPERM);
    hsm_key_free(f->h, other);
    hsm_key_free(f->h, recv);
}

static void test_ec_key_does_nothing_else(void **state)
{
    hsm_fixture *f = *state;
    uint8_t q[HSM_EC_PUB_LEN], buf[16] = {0}, mac[16], eph[HSM_EC_PUB_LEN], c[48];
    size_t n = 0, cl = 0;
    char out[256], kcv[PX_HSM_KCV_HEX_MAX];
    hsm_keyblock kb, tk;
    hsm_key *ec = NULL;
    px_error e = {0};
    hsm_key *kek = fx_key(f->h, "K0", 'A', 'B', 'S', TK TK, NULL, NULL);
    hsm_key *pin = fx_key(f->h, "P0", 'T', 'B', 'S', TK, NULL, NULL);
    hsm_key_attrs a = fx_attrs("K0", 'T', 'E', 'S', 0);
    assert_int_equal(hsm_ec_generate(f->h, NULL, &kb, q, &e), PX_OK);
    assert_int_equal(hsm_key_load(f->h, kb.block, &ec, &e), PX_OK);
    assert_int_equal(hsm_key_export(f->h, kek, ec, HSM_EXPORT_ECB, out, sizeof out, kcv, &e),
                     PX_EPERM);
    assert_int_equal(hsm_data_decrypt(f->h, ec, CRYPTO_ECB, NULL, buf, 16, buf, &e), PX_EPERM);
    assert_int_equal(hsm_mac_generate(f->h, ec, CRYPTO_MAC_X919, buf, 8, mac, sizeof mac, &n, &e),
                     PX_EPERM);
    assert_int_equal(hsm_key_export(f->h, ec, pin, HSM_EXPORT_ECB, out, sizeof out, kcv, &e),
                     PX_EPERM);
    /* and a symmetric key is no ECDH receiving key */
    wrap_to(q, TK, eph, c, &cl);
    assert_int_equal(hsm_key_import_ecdh(f->h, pin, eph, c, cl, &a, NULL, NULL, &tk, &e), PX_EPERM);
    /* an EC private key is never brought in under a KEK */
    hsm_key_attrs ea = fx_attrs("K3", 'E', 'D', 'N', 0);
    assert_int_equal(
        hsm_key_import(f->h, kek,
                       "0123456789ABCDEFFEDCBA98765432100123456789ABCDEFFEDCBA9876543210", &ea,
                       NULL, NULL, &tk, &e),
        PX_EINVAL);
    hsm_key_free(f->h, ec);
    hsm_key_free(f->h, kek);
    hsm_key_free(f->h, pin);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tk_to_kms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ec_key_does_nothing_else, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
