/* test_pki_tkenv.c: the TK envelope: encode, sign, parse, verify; every cut and every altered
 * byte refused; the PIN pad's certificate checked (CA, revocation, serial). */
#include "pkitest.h"
#include "pki/tkenv.h"
#include "lib/time.h"

#include <stdlib.h>
#include <string.h>

#include "lib/str.h"

typedef struct env_fixture {
    pki_fixture pf;
    EVP_PKEY *dev;
    uint8_t *der;
    size_t derlen;
    pki_cert_info devinfo;
} env_fixture;

static int setup(void **state)
{
    env_fixture *f = calloc(1, sizeof *f);
    pki_issue_req r;
    char *csr, *cert = NULL;
    px_error e = {0};
    pt_setup(&f->pf, "pkienv");
    f->dev = pt_keygen();
    csr = pt_csr(f->dev);
    memset(&r, 0, sizeof r);
    r.role = PKI_ROLE_PINPAD;
    r.purpose = PKI_PURPOSE_DEVICE;
    r.name = "PP10000001";
    r.days = 365;
    r.csr_pem = csr;
    assert_int_equal(pki_ca_issue(f->pf.ca, &r, &cert, NULL, &f->devinfo, &e), PX_OK);
    assert_int_equal(pki_cert_pem_to_der(cert, strlen(cert), &f->der, &f->derlen, &e), PX_OK);
    free(cert);
    free(csr);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    env_fixture *f = *state;
    EVP_PKEY_free(f->dev);
    free(f->der);
    pt_teardown(&f->pf);
    free(f);
    return 0;
}

/* A signed envelope for serial into out. */
static size_t make(env_fixture *f, const char *serial, uint8_t *out, size_t cap)
{
    pki_tkenv env;
    uint8_t sig[80];
    size_t body = 0, len = 0, siglen;
    px_error e = {0};
    memset(&env, 0, sizeof env);
    px_strlcpy(env.serial, serial, sizeof env.serial);
    memset(env.kms_fp, 0xAB, sizeof env.kms_fp);
    env.eph[0] = 0x04;
    memset(env.eph + 1, 0x11, sizeof env.eph - 1);
    env.wrapped_len = 24;
    memset(env.wrapped, 0x22, 24);
    memcpy(env.tk_kcv, "\x08\xD7\xB4", 3);
    env.created_ms = 1700000000000LL;
    env.device_cert = f->der;
    env.device_cert_len = f->derlen;
    assert_int_equal(pki_tkenv_encode_body(&env, out, cap, &body, &e), PX_OK);
    siglen = pt_sign(f->dev, PKI_TKENV_SIG_LABEL, out, body, sig, sizeof sig);
    assert_int_equal(pki_tkenv_append_sig(out, cap, body, sig, siglen, &len, &e), PX_OK);
    return len;
}

static void test_round_trip(void **state)
{
    env_fixture *f = *state;
    uint8_t buf[PX_TKENV_MAX], back[PX_TKENV_MAX];
    char b64[PX_TKENV_B64_MAX];
    size_t n = make(f, "PP10000001", buf, sizeof buf), m = 0;
    pki_tkenv env;
    pki_cert_info dev;
    pki_trust *t = pt_trust(&f->pf);
    px_error e = {0};
    assert_int_equal(pki_tkenv_parse(buf, n, &env, &e), PX_OK);
    assert_string_equal(env.serial, "PP10000001");
    assert_int_equal(env.wrapped_len, 24);
    assert_memory_equal(env.tk_kcv, "\x08\xD7\xB4", 3);
    assert_int_equal(env.created_ms, 1700000000000LL);
    assert_int_equal(env.device_cert_len, f->derlen);
    assert_int_equal(pki_tkenv_verify(t, buf, n, &env, px_now_ms(), &dev, &e), PX_OK);
    assert_string_equal(dev.cn, "pinpad:PP10000001");
    pki_b64_encode(buf, n, b64);
    assert_int_equal(pki_tkenv_parse_b64(b64, back, sizeof back, &m, &env, &e), PX_OK);
    assert_int_equal(m, n);
    assert_memory_equal(back, buf, n);
    assert_int_equal(pki_tkenv_parse_b64("not base64!", back, sizeof back, &m, &env, &e),
                     PX_EFORMAT);
    pki_trust_free(t);
}

static void test_every_cut_and_flip(void **state)
{
    env_fixture *f = *state;
    uint8_t buf[PX_TKENV_MAX], longer[PX_TKENV_MAX + 1];
    size_t n = make(f, "PP10000001", buf, sizeof buf);
    pki_tkenv env;
    pki_trust *t = pt_trust(&f->pf);
    px_error e = {0};
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(pki_tkenv_parse(buf, cut, &env, &e), PX_EFORMAT);
    memcpy(longer, buf, n);
    longer[n] = 0;
    assert_int_equal(pki_tkenv_parse(longer, n + 1, &env, &e), PX_EFORMAT);
    assert_non_null(strstr(e.msg, "after the signature"));
    /* any byte of the signed part altered: refused by the format or by the signature */
    for (size_t i = 0; i < n; i += 7) {
        int rc;
        buf[i] ^= 0x01;
        rc = pki_tkenv_parse(buf, n, &env, &e);
        if (rc == PX_OK)
            rc = pki_tkenv_verify(t, buf, n, &env, px_now_ms(), NULL, &e);
        assert_int_not_equal(rc, PX_OK);
        buf[i] ^= 0x01;
    }
    assert_int_equal(pki_tkenv_parse(buf, n, &env, &e), PX_OK);
    assert_int_equal(pki_tkenv_verify(t, buf, n, &env, px_now_ms(), NULL, &e), PX_OK);
    /* bad fields named */
    buf[4] = 2;
    assert_int_equal(pki_tkenv_parse(buf, n, &env, &e), PX_EFORMAT);
    assert_non_null(strstr(e.msg, "version 2"));
    buf[4] = 1;
    buf[0] = 'X';
    assert_int_equal(pki_tkenv_parse(buf, n, &env, &e), PX_EFORMAT);
    assert_non_null(strstr(e.msg, "magic"));
    pki_trust_free(t);
}

static void test_device_checks(void **state)
{
    env_fixture *f = *state;
    uint8_t buf[PX_TKENV_MAX];
    size_t n = make(f, "PP99999999", buf, sizeof buf), k = 0;
    pki_tkenv env;
    pki_trust *t = pt_trust(&f->pf);
    px_error e = {0};
    /* signed by PP10000001's key, claiming another serial */
    assert_int_equal(pki_tkenv_parse(buf, n, &env, &e), PX_OK);
    assert_int_equal(pki_tkenv_verify(t, buf, n, &env, px_now_ms(), NULL, &e), PX_EPERM);
    assert_non_null(strstr(e.msg, "not serial PP99999999's"));
    pki_trust_free(t);
    /* a revoked PIN pad */
    n = make(f, "PP10000001", buf, sizeof buf);
    assert_int_equal(pki_ca_revoke(f->pf.ca, f->devinfo.serial, NULL, "keyCompromise", 30, &k, &e),
                     PX_OK);
    t = pt_trust(&f->pf);
    assert_int_equal(pki_tkenv_parse(buf, n, &env, &e), PX_OK);
    assert_int_equal(pki_tkenv_verify(t, buf, n, &env, px_now_ms(), NULL, &e), PX_EPERM);
    assert_non_null(strstr(e.msg, "PIN pad certificate revoked (keyCompromise)"));
    pki_trust_free(t);
}

/* Found by fuzz_pki_tkenv: a NUL inside the serial number made the serial used ("PP10")
 * shorter than the serial the signature covers ("PP10\0000001"). Refused now. */
static void test_serial_with_nul_refused(void **state)
{
    env_fixture *f = *state;
    uint8_t buf[PX_TKENV_MAX];
    size_t n = make(f, "PP10000001", buf, sizeof buf);
    pki_tkenv env;
    px_error e = {0};
    /* magic (4), version (1), serial length (1), then the serial's 10 bytes */
    assert_int_equal(buf[5], 10);
    buf[6 + 4] = 0;
    assert_int_equal(pki_tkenv_parse(buf, n, &env, &e), PX_EFORMAT);
    assert_non_null(strstr(e.msg, "serial number"));
}

static void test_encode_refusals(void **state)
{
    pki_tkenv env;
    uint8_t out[64];
    size_t n;
    px_error e = {0};
    (void)state;
    memset(&env, 0, sizeof env);
    px_strlcpy(env.serial, "bad serial", sizeof env.serial);
    assert_int_equal(pki_tkenv_encode_body(&env, out, sizeof out, &n, &e), PX_EINVAL);
    px_strlcpy(env.serial, "PP1", sizeof env.serial);
    env.wrapped_len = 25;
    assert_int_equal(pki_tkenv_encode_body(&env, out, sizeof out, &n, &e), PX_EINVAL);
    env.wrapped_len = 24;
    env.device_cert = out;
    env.device_cert_len = 10;
    assert_int_equal(pki_tkenv_encode_body(&env, out, sizeof out, &n, &e), PX_ETOOBIG);
    assert_true(pki_serial_is_valid("PP10000001"));
    assert_false(pki_serial_is_valid("123456789012345678901234567890123"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_cut_and_flip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serial_with_nul_refused, setup, teardown),
        cmocka_unit_test(test_encode_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
