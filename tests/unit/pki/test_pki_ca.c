/* test_pki_ca.c: the CA of seed 001: init, issue for every role, revoke, CRL, list, and the
 * checks every party makes (chain, revocation, role, purpose, expiry, key type). */
#include "pkitest.h"
#include "lib/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tmpdir.h"

static int setup(void **state)
{
    pki_fixture *f = calloc(1, sizeof *f);
    pt_setup(f, "pkica");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    pt_teardown(*state);
    free(*state);
    return 0;
}

static int verify(const pki_trust *t, const char *pem, pki_role role, pki_purpose purpose,
                  int64_t now, pki_cert_info *ci, px_error *e)
{
    return pki_trust_verify(t, (const uint8_t *)pem, strlen(pem), role, purpose, now, ci, e);
}

static void test_init(void **state)
{
    pki_fixture *f = *state;
    char p[PX_PATH_MAX + 16];
    struct stat sb;
    px_error e = {0};
    snprintf(p, sizeof p, "%s/ca.key", f->ca_dir);
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(pki_ca_init(f->ca_dir, "again", 3650, 30, NULL, &e), PX_EEXIST);
    assert_non_null(strstr(e.msg, "already holds a CA"));
    assert_int_equal(pki_ca_init(f->ca_dir, "", 3650, 30, NULL, &e), PX_EINVAL);
    assert_int_equal(pki_ca_init(f->ca_dir, "x", 0, 30, NULL, &e), PX_ERANGE);
}

static void test_issue_every_role(void **state)
{
    pki_fixture *f = *state;
    static const struct {
        pki_role role;
        pki_purpose purpose;
        const char *name;
    } cases[] = {
        {PKI_ROLE_OPERATOR, PKI_PURPOSE_TLS, "alice"},
        {PKI_ROLE_MTMS, PKI_PURPOSE_TLS, "factory"},
        {PKI_ROLE_KMS, PKI_PURPOSE_TLS, "C001"},
        {PKI_ROLE_SERVICE, PKI_PURPOSE_TLS, "switch"},
    };
    pki_trust *t;
    px_error e = {0};
    char *certs[4], *key = NULL;
    pki_cert_info ci;
    for (size_t i = 0; i < 4; i++)
        pt_issue(f, cases[i].role, cases[i].purpose, cases[i].name, &certs[i], i == 0 ? &key : NULL,
                 NULL);
    assert_non_null(strstr(key, "PRIVATE KEY"));
    t = pt_trust(f);
    for (size_t i = 0; i < 4; i++) {
        char cn[PX_PKI_CN_MAX];
        assert_int_equal(verify(t, certs[i], cases[i].role, cases[i].purpose, px_now_ms(), &ci, &e),
                         PX_OK);
        snprintf(cn, sizeof cn, "%s:%s", pki_role_name(cases[i].role), cases[i].name);
        assert_string_equal(ci.cn, cn);
        assert_string_equal(ci.name, cases[i].name);
        assert_int_equal(ci.role, cases[i].role);
        assert_int_equal(ci.point[0], 0x04);
        assert_int_equal(strlen(ci.fingerprint_hex), 64);
    }
    /* the operator's certificate is not an MTMS's, nor a KMS's receiving key */
    assert_int_equal(verify(t, certs[0], PKI_ROLE_MTMS, PKI_PURPOSE_TLS, px_now_ms(), &ci, &e),
                     PX_EPERM);
    assert_non_null(strstr(e.msg, "role is operator, expected mtms"));
    assert_int_equal(verify(t, certs[2], PKI_ROLE_KMS, PKI_PURPOSE_KEY_AGREEMENT, px_now_ms(), &ci,
                            &e),
                     PX_EPERM);
    assert_non_null(strstr(e.msg, "a tls certificate, expected key-agreement"));
    /* the key the CA made matches its certificate */
    EVP_PKEY *k = pt_key_from_pem(key);
    uint8_t pt[PKI_EC_POINT_LEN];
    assert_int_equal(verify(t, certs[0], PKI_ROLE_OPERATOR, PKI_PURPOSE_TLS, px_now_ms(), &ci, &e),
                     PX_OK);
    pt_point(k, pt);
    assert_memory_equal(pt, ci.point, sizeof pt);
    EVP_PKEY_free(k);
    for (size_t i = 0; i < 4; i++)
        free(certs[i]);
    free(key);
    pki_trust_free(t);
}

static void test_kms_receiving_key_and_device_csr(void **state)
{
    pki_fixture *f = *state;
    EVP_PKEY *kms = pt_keygen(), *dev = pt_keygen();
    uint8_t point[PKI_EC_POINT_LEN];
    pki_issue_req r;
    char *cert = NULL, *key = NULL, *csr;
    pki_cert_info ci;
    pki_trust *t;
    px_error e = {0};
    pt_point(kms, point);
    memset(&r, 0, sizeof r);
    r.role = PKI_ROLE_KMS;
    r.purpose = PKI_PURPOSE_KEY_AGREEMENT;
    r.name = "C001";
    r.days = 365;
    r.pub_point = point;
    assert_int_equal(pki_ca_issue(f->ca, &r, &cert, &key, &ci, &e), PX_OK);
    assert_null(key);
    assert_memory_equal(ci.point, point, sizeof point);
    t = pt_trust(f);
    assert_int_equal(verify(t, cert, PKI_ROLE_KMS, PKI_PURPOSE_KEY_AGREEMENT, px_now_ms(), &ci, &e),
                     PX_OK);
    assert_int_equal(verify(t, cert, PKI_ROLE_KMS, PKI_PURPOSE_TLS, px_now_ms(), &ci, &e),
                     PX_EPERM);
    free(cert);
    /* a bare point is only for key agreement; a point off the curve is refused */
    r.purpose = PKI_PURPOSE_TLS;
    assert_int_equal(pki_ca_issue(f->ca, &r, &cert, NULL, NULL, &e), PX_EINVAL);
    r.purpose = PKI_PURPOSE_KEY_AGREEMENT;
    point[40] ^= 1;
    assert_int_equal(pki_ca_issue(f->ca, &r, &cert, NULL, NULL, &e), PX_EINVAL);
    assert_non_null(strstr(e.msg, "not a point on P-256"));
    /* a PIN pad's device key comes as a signed request: proof of possession */
    csr = pt_csr(dev);
    memset(&r, 0, sizeof r);
    r.role = PKI_ROLE_PINPAD;
    r.purpose = PKI_PURPOSE_DEVICE;
    r.name = "PP10000001";
    r.days = 3650;
    r.csr_pem = csr;
    assert_int_equal(pki_ca_issue(f->ca, &r, &cert, NULL, &ci, &e), PX_OK);
    assert_string_equal(ci.cn, "pinpad:PP10000001");
    pki_trust_free(t);
    t = pt_trust(f);
    assert_int_equal(verify(t, cert, PKI_ROLE_PINPAD, PKI_PURPOSE_DEVICE, px_now_ms(), &ci, &e),
                     PX_OK);
    free(cert);
    /* a request whose signature does not verify */
    char *bad = strdup(csr), *mid = strstr(bad, "\n") + 40;
    *mid = *mid == 'A' ? 'B' : 'A';
    r.csr_pem = bad;
    assert_int_not_equal(pki_ca_issue(f->ca, &r, &cert, NULL, &ci, &e), PX_OK);
    free(bad);
    /* roles and purposes that do not go together, names that are not names */
    r.csr_pem = csr;
    r.purpose = PKI_PURPOSE_TLS;
    assert_int_equal(pki_ca_issue(f->ca, &r, &cert, NULL, &ci, &e), PX_EINVAL);
    assert_non_null(strstr(e.msg, "role pinpad cannot have purpose tls"));
    r.purpose = PKI_PURPOSE_DEVICE;
    r.name = "bad name";
    assert_int_equal(pki_ca_issue(f->ca, &r, &cert, NULL, &ci, &e), PX_EINVAL);
    r.name = "a:b";
    assert_int_equal(pki_ca_issue(f->ca, &r, &cert, NULL, &ci, &e), PX_EINVAL);
    free(csr);
    pki_trust_free(t);
    EVP_PKEY_free(kms);
    EVP_PKEY_free(dev);
}

static void test_revoke_and_crl(void **state)
{
    pki_fixture *f = *state;
    char *op1, *op2, *op3;
    pki_cert_info c1, c2, ci;
    pki_trust *before, *after;
    size_t n = 0;
    px_error e = {0};
    pt_issue(f, PKI_ROLE_OPERATOR, PKI_PURPOSE_TLS, "alice", &op1, NULL, &c1);
    pt_issue(f, PKI_ROLE_OPERATOR, PKI_PURPOSE_TLS, "bob", &op2, NULL, &c2);
    pt_issue(f, PKI_ROLE_OPERATOR, PKI_PURPOSE_TLS, "bob", &op3, NULL, NULL);
    before = pt_trust(f);
    assert_int_equal(pki_ca_revoke(f->ca, c1.serial, NULL, "keyCompromise", 30, &n, &e), PX_OK);
    assert_int_equal(n, 1);
    assert_int_equal(pki_ca_revoke(f->ca, NULL, "operator:bob", "affiliationChanged", 30, &n, &e),
                     PX_OK);
    assert_int_equal(n, 2);
    assert_int_equal(pki_ca_revoke(f->ca, c1.serial, NULL, NULL, 30, &n, &e), PX_ENOTFOUND);
    assert_int_equal(pki_ca_revoke(f->ca, NULL, "operator:carol", NULL, 30, &n, &e), PX_ENOTFOUND);
    assert_int_equal(pki_ca_revoke(f->ca, "00", NULL, "because", 30, &n, &e), PX_EINVAL);
    after = pt_trust(f);
    /* the old CRL does not know yet: that is why services must take the fresh one */
    assert_int_equal(verify(before, op1, PKI_ROLE_OPERATOR, PKI_PURPOSE_TLS, px_now_ms(), &ci, &e),
                     PX_OK);
    assert_int_equal(verify(after, op1, PKI_ROLE_OPERATOR, PKI_PURPOSE_TLS, px_now_ms(), &ci, &e),
                     PX_EPERM);
    assert_string_equal(e.msg, "certificate revoked (keyCompromise)");
    assert_int_equal(verify(after, op2, PKI_ROLE_OPERATOR, PKI_PURPOSE_TLS, px_now_ms(), &ci, &e),
                     PX_EPERM);
    assert_string_equal(e.msg, "certificate revoked (affiliationChanged)");
    assert_int_equal(verify(after, op3, PKI_ROLE_OPERATOR, PKI_PURPOSE_TLS, px_now_ms(), &ci, &e),
                     PX_EPERM);
    /* a CRL past its next update fails closed; so does a certificate past its end */
    assert_true(pki_trust_crl_next_update_ms(after) > px_now_ms() + 29LL * 86400000);
    assert_int_equal(verify(after, op1, PKI_ROLE_OPERATOR, PKI_PURPOSE_TLS,
                            px_now_ms() + 31LL * 86400000, &ci, &e),
                     PX_EPERM);
    assert_non_null(strstr(e.msg, "CRL is out of date"));
    free(op1);
    free(op2);
    free(op3);
    pki_trust_free(before);
    pki_trust_free(after);
}

static int count_row(void *ud, const pki_cert_row *r)
{
    size_t *n = ud;
    n[0]++;
    if (r->status == 'R')
        n[1]++;
    return 0;
}

static void test_list_and_refresh(void **state)
{
    pki_fixture *f = *state;
    char *c;
    pki_cert_info ci;
    size_t n[2] = {0, 0}, k = 0;
    px_error e = {0};
    pt_issue(f, PKI_ROLE_MTMS, PKI_PURPOSE_TLS, "factory", &c, NULL, &ci);
    free(c);
    pt_issue(f, PKI_ROLE_KMS, PKI_PURPOSE_TLS, "C001", &c, NULL, NULL);
    free(c);
    assert_int_equal(pki_ca_revoke(f->ca, ci.serial, NULL, "superseded", 30, &k, &e), PX_OK);
    assert_int_equal(pki_ca_list(f->ca_dir, count_row, n, &e), PX_OK);
    assert_int_equal(n[0], 2);
    assert_int_equal(n[1], 1);
    assert_int_equal(pki_ca_crl(f->ca, 7, &e), PX_OK);
    pki_trust *t = pt_trust(f);
    assert_true(pki_trust_crl_next_update_ms(t) < px_now_ms() + 8LL * 86400000);
    pki_trust_free(t);
    assert_int_equal(pki_ca_crl(f->ca, 0, &e), PX_ERANGE);
    assert_int_equal(pki_ca_list("/nonexistent/ca", count_row, n, &e), PX_ENOTFOUND);
}

static void test_other_ca(void **state)
{
    pki_fixture *f = *state, g;
    char *mine, *theirs, crl[PX_PATH_MAX + 16], ca[PX_PATH_MAX + 16];
    pki_cert_info ci;
    pki_trust *t, *mixed = NULL;
    px_error e = {0};
    pt_setup(&g, "pkica2");
    pt_issue(f, PKI_ROLE_OPERATOR, PKI_PURPOSE_TLS, "alice", &mine, NULL, NULL);
    pt_issue(&g, PKI_ROLE_OPERATOR, PKI_PURPOSE_TLS, "alice", &theirs, NULL, NULL);
    t = pt_trust(f);
    assert_int_equal(verify(t, mine, PKI_ROLE_OPERATOR, PKI_PURPOSE_TLS, px_now_ms(), &ci, &e),
                     PX_OK);
    assert_int_equal(verify(t, theirs, PKI_ROLE_OPERATOR, PKI_PURPOSE_TLS, px_now_ms(), &ci, &e),
                     PX_EPERM);
    assert_string_equal(e.msg, "certificate not issued by this CA");
    /* a CRL signed by another CA is refused at load */
    snprintf(ca, sizeof ca, "%s/ca.crt", f->ca_dir);
    snprintf(crl, sizeof crl, "%s/crl.pem", g.ca_dir);
    assert_int_equal(pki_trust_load(ca, crl, &mixed, &e), PX_EPERM);
    assert_non_null(strstr(e.msg, "CRL: not signed by this CA"));
    /* without a CRL nothing verifies (fail closed) */
    assert_int_equal(pki_trust_load(ca, NULL, &mixed, &e), PX_OK);
    assert_int_equal(verify(mixed, mine, PKI_ROLE_OPERATOR, PKI_PURPOSE_TLS, px_now_ms(), &ci, &e),
                     PX_EPERM);
    assert_non_null(strstr(e.msg, "no CRL"));
    /* garbage */
    assert_int_equal(pki_trust_verify(t, (const uint8_t *)"xyz", 3, PKI_ROLE_OPERATOR,
                                      PKI_PURPOSE_TLS, px_now_ms(), &ci, &e),
                     PX_EFORMAT);
    /* a certificate past its end */
    assert_int_equal(verify(t, mine, PKI_ROLE_OPERATOR, PKI_PURPOSE_TLS,
                            px_now_ms() + 400LL * 86400000, &ci, &e),
                     PX_EPERM);
    pki_trust_free(mixed);
    pki_trust_free(t);
    free(mine);
    free(theirs);
    pt_teardown(&g);
}

static void test_passphrase(void **state)
{
    pki_fixture *f = *state;
    char dir[PX_PATH_MAX + 16], keyfile[PX_PATH_MAX + 32], *text = NULL;
    pki_ca *ca = NULL;
    px_error e = {0};
    snprintf(dir, sizeof dir, "%s/ca2", f->dir);
    setenv(PKI_ENV_PASSPHRASE, "a CA passphrase for tests", 1);
    assert_int_equal(pki_ca_init(dir, "sealed CA", 365, 30, NULL, &e), PX_OK);
    snprintf(keyfile, sizeof keyfile, "%s/ca.key", dir);
    assert_int_equal(pki_read_file(keyfile, PX_PKI_PEM_MAX, &text, NULL, &e), PX_OK);
    assert_non_null(strstr(text, "ENCRYPTED PRIVATE KEY"));
    free(text);
    assert_int_equal(pki_ca_open(dir, &ca, &e), PX_OK);
    pki_ca_close(ca);
    setenv(PKI_ENV_PASSPHRASE, "the wrong one", 1);
    assert_int_equal(pki_ca_open(dir, &ca, &e), PX_EAUTH);
    assert_non_null(strstr(e.msg, "POSSUM_CA_PASSPHRASE"));
    unsetenv(PKI_ENV_PASSPHRASE);
    assert_int_equal(pki_ca_open(dir, &ca, &e), PX_EAUTH);
}

static void test_names_and_b64(void **state)
{
    char cn[PX_PKI_CN_MAX], name[PX_PKI_NAME_MAX], out[64];
    uint8_t bin[64];
    size_t n;
    pki_role r;
    px_error e = {0};
    (void)state;
    assert_true(pki_name_is_valid("C-001_x.y@z"));
    assert_false(pki_name_is_valid(""));
    assert_false(pki_name_is_valid("a b"));
    assert_false(pki_name_is_valid("a:b"));
    assert_int_equal(pki_cn_make(PKI_ROLE_KMS, "C001", cn, &e), PX_OK);
    assert_string_equal(cn, "kms:C001");
    assert_int_equal(pki_cn_split("kms:C001", &r, name), PX_OK);
    assert_int_equal(r, PKI_ROLE_KMS);
    assert_string_equal(name, "C001");
    assert_int_equal(pki_cn_split("boss:C001", &r, name), PX_EFORMAT);
    assert_int_equal(pki_cn_split("kms:", &r, name), PX_EFORMAT);
    assert_int_equal(pki_cn_split("C001", &r, name), PX_EFORMAT);
    pki_b64_encode((const uint8_t *)"possum", 6, out);
    assert_string_equal(out, "cG9zc3Vt");
    pki_b64_encode((const uint8_t *)"pos", 3, out);
    assert_int_equal(pki_b64_decode("cG9zc3Vt", bin, sizeof bin, &n), PX_OK);
    assert_int_equal(n, 6);
    assert_memory_equal(bin, "possum", 6);
    assert_int_equal(pki_b64_decode("cG8=", bin, sizeof bin, &n), PX_OK);
    assert_int_equal(n, 2);
    assert_int_equal(pki_b64_decode("cA==", bin, sizeof bin, &n), PX_OK);
    assert_int_equal(n, 1);
    assert_int_equal(pki_b64_decode("cG8", bin, sizeof bin, &n), PX_EFORMAT);
    assert_int_equal(pki_b64_decode("cG9=", bin, sizeof bin, &n), PX_EFORMAT); /* not canonical */
    assert_int_equal(pki_b64_decode("c=8=", bin, sizeof bin, &n), PX_EFORMAT);
    assert_int_equal(pki_b64_decode("cG8 ", bin, sizeof bin, &n), PX_EFORMAT);
    assert_int_equal(pki_b64_decode("cG9zc3Vt", bin, 5, &n), PX_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issue_every_role, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kms_receiving_key_and_device_csr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_and_crl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_and_refresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_passphrase, setup, teardown),
        cmocka_unit_test(test_names_and_b64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
