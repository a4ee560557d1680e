/*
 * ecdh.c: receiving a key wrapped to our public key (the transmission key TK of seed 001,
 * sent by the PIN pad to the KMS so that only the KMS can read it).
 *
 * The receiver's key pair is ECDH on P-256; its private scalar is a key block under the LMK
 * (usage K3, algorithm E, mode D, non-exportable). The sender, with an ephemeral key pair
 * (e, E) and our public point Q:
 *   Z   = x-coordinate of e*Q                                     (32 bytes)
 *   KEK = HKDF-SHA-256(IKM = Z, salt = none,
 *                      info = "possum.key-wrap.v1" || E || Q)     (32 bytes, RFC 5869)
 *   C   = AES-256 key wrap of the key under KEK                   (RFC 3394)
 * and sends E (65 bytes, uncompressed) and C. Written here on OpenSSL EVP because
 * crypto/ has no public-key primitives; docs/hsm.md describes the sender's side.
 */
#include "hsm/hsm_int.h"
#include "lib/hex.h"

#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>

#define EC_PRIV_LEN 32
#define WRAP_INFO "possum.key-wrap.v1"

/* Our public point from the private scalar d. */
static int ec_public_of(const uint8_t d[EC_PRIV_LEN], uint8_t pub[HSM_EC_PUB_LEN])
{
    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    BIGNUM *bn = BN_secure_new();
    EC_POINT *p = g ? EC_POINT_new(g) : NULL;
    int ok = g && bn && p && BN_bin2bn(d, EC_PRIV_LEN, bn) != NULL && !BN_is_zero(bn) &&
             EC_POINT_mul(g, p, bn, NULL, NULL, NULL) == 1 &&
             EC_POINT_point2oct(g, p, POINT_CONVERSION_UNCOMPRESSED, pub, HSM_EC_PUB_LEN, NULL) ==
                 HSM_EC_PUB_LEN;
    BN_clear_free(bn);
    EC_POINT_free(p);
    EC_GROUP_free(g);
    return ok ? PX_OK : PX_ECRYPTO;
}

int hsm_ec_kcv_hex(const uint8_t d[EC_PRIV_LEN], char out[PX_HSM_KCV_HEX_MAX], px_error *e)
{
    uint8_t pub[HSM_EC_PUB_LEN], md[SHA256_DIGEST_LENGTH];
    if (ec_public_of(d, pub) != PX_OK)
        return px_error_set(e, PX_ECRYPTO, "EC key: not a P-256 private key");
    SHA256(pub, sizeof pub, md);
    px_hex_encode(md, CRYPTO_KCV_AES_LEN, out);
    return PX_OK;
}

/* An EVP_PKEY for P-256 from a public point, and the private scalar when d is not NULL. */
static EVP_PKEY *ec_pkey(const uint8_t *d, const uint8_t pub[HSM_EC_PUB_LEN])
{
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    BIGNUM *bn = d ? BN_secure_new() : NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *pk = NULL;
    int ok = b && c && (d == NULL || (bn && BN_bin2bn(d, EC_PRIV_LEN, bn))) &&
             OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
             OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pub, HSM_EC_PUB_LEN) &&
             (d == NULL || OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_PRIV_KEY, bn)) &&
             (params = OSSL_PARAM_BLD_to_param(b)) != NULL && EVP_PKEY_fromdata_init(c) == 1;
    if (ok && EVP_PKEY_fromdata(c, &pk, d ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params) != 1)
        pk = NULL;
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(b);
    BN_clear_free(bn);
    EVP_PKEY_CTX_free(c);
    return pk;
}

int hsm_ec_public(const hsm_key *k, uint8_t pub[HSM_EC_PUB_LEN], px_error *e)
{
    if (k->attrs.algorithm != 'E')
        return px_error_set(e, PX_EINVAL, "key %s is not an EC key",
                            k->label[0] ? k->label : "(unnamed)");
    return ec_public_of(k->key, pub) == PX_OK
               ? PX_OK
               : px_error_set(e, PX_ECRYPTO, "EC key: bad private key");
}

int hsm_ec_generate(hsm *h, const char *label, hsm_keyblock *out, uint8_t pub[HSM_EC_PUB_LEN],
                    px_error *e)
{
    static const hsm_key_attrs a = {"K3", 'E', 'D', 'N', EC_PRIV_LEN};
    uint8_t d[EC_PRIV_LEN];
    px_error local = {0};
    EVP_PKEY *pk = NULL;
    BIGNUM *bn = NULL;
    int rc;
    if (e == NULL)
        e = &local;
    if ((rc = hsm_audit_ok(h, e)) != PX_OK)
        return rc;
    if (label != NULL && !hsm_label_is_valid(label))
        return px_error_set(e, PX_EINVAL, "key label: 1 to %d of A-Z a-z 0-9 . _ - : /",
                            PX_HSM_LABEL_MAX - 1);
    pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    rc = pk != NULL && EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_PRIV_KEY, &bn) == 1 &&
                 BN_bn2binpad(bn, d, EC_PRIV_LEN) == EC_PRIV_LEN && ec_public_of(d, pub) == PX_OK
             ? PX_OK
             : px_error_set(e, PX_ECRYPTO, "EC key generation failed");
    BN_clear_free(bn);
    EVP_PKEY_free(pk);
    if (rc == PX_OK)
        rc = hsm_key_emit(h, "key.generate", &a, label, d, EC_PRIV_LEN, "curve=P-256", out, e);
    OPENSSL_cleanse(d, sizeof d);
    return rc;
}

/* Z = x-coordinate of ECDH(our key k, their point eph); q receives our public point. */
static int ecdh_z(const hsm_key *k, const uint8_t eph[HSM_EC_PUB_LEN], uint8_t q[HSM_EC_PUB_LEN],
                  uint8_t z[32], px_error *e)
{
    size_t zl = 32;
    EVP_PKEY *ours = NULL, *theirs = ec_pkey(NULL, eph);
    EVP_PKEY_CTX *dc = NULL;
    int ok = theirs != NULL && ec_public_of(k->key, q) == PX_OK &&
             (ours = ec_pkey(k->key, q)) != NULL &&
             (dc = EVP_PKEY_CTX_new_from_pkey(NULL, ours, NULL)) != NULL &&
             EVP_PKEY_derive_init(dc) == 1 && EVP_PKEY_derive_set_peer(dc, theirs) == 1 &&
             EVP_PKEY_derive(dc, z, &zl) == 1 && zl == 32;
    EVP_PKEY_CTX_free(dc);
    EVP_PKEY_free(ours);
    EVP_PKEY_free(theirs);
    return ok ? PX_OK
              : px_error_set(e, PX_EINVAL, "ECDH: the ephemeral public key is not a P-256 point");
}

/* KEK = HKDF-SHA-256(IKM = Z, info = "possum.key-wrap.v1" || E || Q), 32 bytes. */
static int wrap_kek(const hsm_key *k, const uint8_t eph[HSM_EC_PUB_LEN], uint8_t kek[32],
                    px_error *e)
{
    uint8_t q[HSM_EC_PUB_LEN], z[32], info[sizeof WRAP_INFO - 1 + 2 * HSM_EC_PUB_LEN];
    size_t il = sizeof WRAP_INFO - 1;
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *kc = NULL;
    int rc = ecdh_z(k, eph, q, z, e), ok;
    if (rc != PX_OK)
        return rc;
    memcpy(info, WRAP_INFO, il);
    memcpy(info + il, eph, HSM_EC_PUB_LEN);
    memcpy(info + il + HSM_EC_PUB_LEN, q, HSM_EC_PUB_LEN);
    OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
                      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, z, sizeof z),
                      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof info),
                      OSSL_PARAM_construct_end()};
    kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    ok = kc != NULL && EVP_KDF_derive(kc, kek, 32, p) == 1;
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);
    OPENSSL_cleanse(z, sizeof z);
    return ok ? PX_OK : px_error_set(e, PX_ECRYPTO, "ECDH: key derivation failed");
}

/* RFC 3394 AES key unwrap of c (n bytes) under kek into key (*keylen = n - 8). */
static int aes_unwrap(const uint8_t kek[32], const uint8_t *c, size_t n, uint8_t *key,
                      size_t *keylen, px_error *e)
{
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int l1 = 0, l2 = 0, ok;
    if (n < 24 || n > CRYPTO_KEY_MAX + 8 || n % 8 != 0) {
        EVP_CIPHER_CTX_free(x);
        return px_error_set(e, PX_EINVAL,
                            "ECDH: wrapped key must be 24 to 40 bytes, a multiple of 8");
    }
    EVP_CIPHER_CTX_set_flags(x, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    ok = x != NULL && EVP_DecryptInit_ex(x, EVP_aes_256_wrap(), NULL, kek, NULL) == 1 &&
         EVP_DecryptUpdate(x, key, &l1, c, (int)n) == 1 &&
         EVP_DecryptFinal_ex(x, key + l1, &l2) == 1;
    EVP_CIPHER_CTX_free(x);
    *keylen = ok ? (size_t)(l1 + l2) : 0;
    return ok ? PX_OK
              : px_error_set(e, PX_EAUTH,
                             "ECDH: the wrapped key does not unwrap (wrong recipient or altered)");
}

int hsm_key_import_ecdh(hsm *h, hsm_key *priv, const uint8_t eph[HSM_EC_PUB_LEN],
                        const uint8_t *wrapped, size_t n, const hsm_key_attrs *a, const char *kcv,
                        const char *label, hsm_keyblock *out, px_error *e)
{
    static const char *const k3[] = {"K3", NULL};
    uint8_t kek[32], key[CRYPTO_KEY_MAX + 8], want[CRYPTO_KCV_MAX * 2];
    hsm_key_attrs got;
    char detail[PX_HSM_LABEL_MAX + 48];
    size_t keylen = 0, wn = 0;
    px_error local = {0};
    int rc;
    if (e == NULL)
        e = &local;
    if ((rc = hsm_audit_ok(h, e)) != PX_OK)
        return rc;
    rc = hsm_policy_check(priv, k3, HSM_NEED_DECRYPT, "ECDH receiving", e);
    if (rc == PX_OK && (a == NULL || priv->attrs.algorithm != 'E'))
        rc = px_error_set(e, PX_EINVAL,
                          "ECDH import: an EC key (K3, E) and the key's attributes are required");
    if (rc == PX_OK && label != NULL && !hsm_label_is_valid(label))
        rc = px_error_set(e, PX_EINVAL, "key label: 1 to %d of A-Z a-z 0-9 . _ - : /",
                          PX_HSM_LABEL_MAX - 1);
    if (rc == PX_OK && (rc = wrap_kek(priv, eph, kek, e)) == PX_OK)
        rc = aes_unwrap(kek, wrapped, n, key, &keylen, e);
    OPENSSL_cleanse(kek, sizeof kek);
    if (rc == PX_OK) {
        got = *a;
        got.length = keylen;
        if ((rc = hsm_attrs_check(&got, e)) == PX_OK &&
            hsm_key_strength(got.algorithm, got.length) > 128)
            rc = px_error_set(e, PX_EPERM,
                              "ECDH import: P-256 (128 bits) cannot carry a %zu-byte %c key",
                              got.length, got.algorithm);
    }
    if (rc == PX_OK && hsm_key_is_degenerate(got.algorithm, key, got.length))
        rc = px_error_set(e, PX_EINVAL, "ECDH import: the TDES key has equal halves (single DES)");
    if (rc == PX_OK && kcv != NULL &&
        (px_hex_decode(kcv, want, sizeof want, &wn) != PX_OK || wn < 3 ||
         crypto_kcv_verify(hsm_crypto_alg(got.algorithm), key, got.length, want, wn, NULL) !=
             PX_OK))
        rc = px_error_set(e, PX_EAUTH, "ECDH import: the key does not match check value %s", kcv);
    if (rc == PX_OK) {
        snprintf(detail, sizeof detail, "ecdh kek=%s kek_kcv=%s",
                 priv->label[0] ? priv->label : "-", priv->kcv);
        rc = hsm_key_emit(h, "key.import", &got, label, key, got.length, detail, out, e);
    } else {
        hsm_audit_event(h, "key.import", priv, NULL, NULL, rc, px_error_text(e), HSM_AUDIT_SYNC,
                        NULL);
    }
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}
