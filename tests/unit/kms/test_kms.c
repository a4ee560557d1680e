/* test_kms.c: the KMS of seed 001 with the real PIN pad code on the other side: TK intake,
 * key download, the TMK for the platform, and every refusal the security tests ask for
 * (another customer's KMS, a revoked or foreign PIN pad, a replayed download, a terminal
 * without TK, a check-value mismatch), each audited; no clear TK or TMK in any file. */
#include "kmsfix.h"
#include "device/pinpad/pinpad_int.h"
#include "lib/hex.h"
#include "lib/time.h"
#include "pki/tkenv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/str.h"
#include <time.h>

static int setup(void **state)
{
    kf *f = calloc(1, sizeof *f);
    kf_setup(f, "kms");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    kf_teardown(*state);
    free(*state);
    return 0;
}

typedef struct audit_find {
    const char *action, *result, *needle;
    int found;
} audit_find;

static int on_audit(void *ud, const kms_audit_row *r)
{
    audit_find *a = ud;
    if (strcmp(r->action, a->action) == 0 && strcmp(r->result, a->result) == 0 &&
        (a->needle == NULL || strstr(r->reason, a->needle) != NULL))
        a->found++;
    return 0;
}

static int audited(kf_kms *m, const char *serial, const char *action, const char *result,
                   const char *needle)
{
    audit_find a = {action, result, needle, 0};
    px_error e = {0};
    assert_int_equal(kms_audit_list(m->st, serial, on_audit, &a, &e), PX_OK);
    return a.found;
}

static void test_intake_and_download(void **state)
{
    kf *f = *state;
    pinpad *p = kf_pinpad(f, "PP10000001");
    uint8_t env[PX_TKENV_MAX];
    size_t n = kf_envelope(f, p, &f->kms, env, sizeof env);
    kms_intake_result r;
    kms_terminal_info t;
    pinpad_key_info tk, tmk;
    px_error e = {0};
    assert_int_equal(kms_tk_intake(f->kms.k, "mtms:factory", env, n, &r, &e), PX_OK);
    assert_string_equal(r.status, "imported");
    assert_string_equal(r.serial, "PP10000001");
    pinpad_key_info_get(p, PINPAD_TK, &tk);
    assert_string_equal(r.tk_kcv, tk.kcv);
    /* the MTMS retries: the same answer, nothing new */
    assert_int_equal(kms_tk_intake(f->kms.k, "mtms:factory", env, n, &r, &e), PX_OK);
    assert_string_equal(r.status, "duplicate");
    assert_int_equal(kms_terminal_get(f->kms.st, "PP10000001", &t, &e), PX_OK);
    assert_string_equal(t.status, "ready");
    assert_string_equal(t.device_cn, "pinpad:PP10000001");
    /* the terminal loads its TMK */
    assert_int_equal(kf_download(&f->kms, p, &e), PX_OK);
    pinpad_key_info_get(p, PINPAD_TMK, &tmk);
    assert_true(tmk.present);
    assert_string_equal(tmk.kcv, r.tmk_kcv);
    assert_int_equal(kms_terminal_get(f->kms.st, "PP10000001", &t, &e), PX_OK);
    assert_string_equal(t.status, "loaded");
    assert_int_equal(t.downloads, 1);
    assert_true(audited(&f->kms, "PP10000001", "tk.intake", "ok", "TK (KCV") == 1);
    assert_true(audited(&f->kms, "PP10000001", "download", "ok", NULL) == 1);
    assert_true(audited(&f->kms, "PP10000001", "download.result", "ok", "loaded") == 1);
    /* neither key is anywhere on the KMS's disk in the clear (database, HSM audit log) */
    assert_false(kf_dir_has_key(f->kms.dir, p->slot[PINPAD_TK].key));
    assert_false(kf_dir_has_key(f->kms.dir, p->slot[PINPAD_TMK].key));
    /* the PIN pad's own files hold them encrypted only; and the scan finds a key that is there */
    assert_false(kf_dir_has_key(f->dir, p->slot[PINPAD_TMK].key));
    {
        char path[PX_PATH_MAX + 16], hex[33];
        px_hex_encode(p->slot[PINPAD_TMK].key, 16, hex);
        snprintf(path, sizeof path, "%s/control.txt", f->kms.dir);
        assert_int_equal(pki_write_file(path, hex, 32, 0600, &e), PX_OK);
        assert_true(kf_dir_has_key(f->kms.dir, p->slot[PINPAD_TMK].key));
        remove(path);
    }
    pinpad_close(p);
}

static void test_another_customers_kms(void **state)
{
    kf *f = *state;
    kf_kms other;
    pinpad *p = kf_pinpad(f, "PP10000002");
    uint8_t env[PX_TKENV_MAX];
    size_t n = kf_envelope(f, p, &f->kms, env, sizeof env); /* for C001 */
    kms_intake_result r;
    pki_tkenv pe;
    hsm_key *recv = NULL;
    hsm_keyblock kb;
    px_error e = {0};
    kf_kms_make(f, &other, "C002");
    assert_int_equal(kms_tk_intake(other.k, "mtms:factory", env, n, &r, &e), PX_EPERM);
    assert_string_equal(r.status, "refused");
    assert_non_null(strstr(r.reason, "wrapped to another KMS"));
    assert_true(audited(&other, "PP10000002", "tk.intake", "refused", "another KMS") == 1);
    /* and even inside its HSM it cannot unwrap it */
    assert_int_equal(pki_tkenv_parse(env, n, &pe, &e), PX_OK);
    assert_int_equal(hsm_key_load_named(other.h, "kms.recv", &recv, &e), PX_OK);
    assert_int_equal(hsm_key_import_ecdh(other.h, recv, pe.eph, pe.wrapped, pe.wrapped_len,
                                         &kms_tk_attrs, NULL, NULL, &kb, &e),
                     PX_EAUTH);
    hsm_key_free(other.h, recv);
    /* pretending it is for C002 breaks the PIN pad's signature */
    {
        pki_cert_info ci;
        assert_int_equal(pki_cert_parse((const uint8_t *)other.recv_pem, strlen(other.recv_pem),
                                        &ci, &e),
                         PX_OK);
        memcpy(env + 6 + strlen("PP10000002"), ci.fingerprint, PKI_FP_LEN);
    }
    assert_int_equal(kms_tk_intake(other.k, "mtms:factory", env, n, &r, &e), PX_EAUTH);
    assert_non_null(strstr(r.reason, "signature does not verify"));
    /* the MTMS only: another client may not deliver */
    assert_false(kms_peer_is_mtms(other.k, "operator:alice"));
    assert_true(kms_peer_is_mtms(other.k, "mtms:factory"));
    kf_kms_free(&other);
    pinpad_close(p);
}

static void test_pinpad_refusals(void **state)
{
    kf *f = *state;
    pinpad *p = kf_pinpad(f, "PP10000003");
    uint8_t env[PX_TKENV_MAX];
    size_t n = kf_envelope(f, p, &f->kms, env, sizeof env), k = 0;
    kms_intake_result r;
    px_error e = {0};
    /* the PIN pad's certificate is revoked (stolen device): the KMS, with the new CRL, refuses */
    assert_int_equal(pki_ca_revoke(f->ca, NULL, "pinpad:PP10000003", "keyCompromise", 30, &k, &e),
                     PX_OK);
    kf_kms_reopen(f, &f->kms);
    assert_int_equal(kms_tk_intake(f->kms.k, "mtms:factory", env, n, &r, &e), PX_EPERM);
    assert_non_null(strstr(r.reason, "PIN pad certificate revoked (keyCompromise)"));
    assert_true(audited(&f->kms, "PP10000003", "tk.intake", "refused", "revoked") == 1);
    /* garbage */
    assert_int_equal(kms_tk_intake(f->kms.k, "mtms:factory", (const uint8_t *)"PXTKjunk", 8, &r,
                                   &e),
                     PX_EFORMAT);
    assert_true(audited(&f->kms, "?", "tk.intake", "refused", "TK envelope") == 1);
    pinpad_close(p);
}

static void test_replay_and_no_tk(void **state)
{
    kf *f = *state;
    pinpad *p = kf_pinpad(f, "PP10000004");
    uint8_t env[PX_TKENV_MAX], mac[TK_MAC_LEN], bad[TK_MAC_LEN];
    size_t n = kf_envelope(f, p, &f->kms, env, sizeof env);
    kms_intake_result r;
    kms_challenge c;
    kms_tmk t;
    char kcv[PINPAD_KCV_HEX];
    px_error e = {0};
    assert_int_equal(kms_tk_intake(f->kms.k, "mtms:factory", env, n, &r, &e), PX_OK);
    /* a good request, then the same bytes again */
    assert_int_equal(kms_download_challenge(f->kms.k, "PP10000004", "t", &c, &e), PX_OK);
    assert_int_equal(tk_download_proof(p, c.session, 16, c.session_kcv, c.nonce, 16, mac, &e),
                     PX_OK);
    assert_int_equal(kms_download(f->kms.k, "PP10000004", c.nonce, 16, mac, 8, "t", &t, &e), PX_OK);
    assert_int_equal(kms_download(f->kms.k, "PP10000004", c.nonce, 16, mac, 8, "t", &t, &e),
                     PX_ECONFLICT);
    assert_non_null(strstr(e.msg, "replayed"));
    assert_true(audited(&f->kms, "PP10000004", "download", "refused", "replayed") == 1);
    /* a terminal that does not hold TK: its MAC is wrong, and the nonce is spent anyway */
    assert_int_equal(kms_download_challenge(f->kms.k, "PP10000004", "t", &c, &e), PX_OK);
    memset(bad, 0x5A, sizeof bad);
    assert_int_equal(kms_download(f->kms.k, "PP10000004", c.nonce, 16, bad, 8, "t", &t, &e),
                     PX_EAUTH);
    assert_non_null(strstr(e.msg, "does not hold the TK"));
    assert_true(audited(&f->kms, "PP10000004", "download", "refused", "does not hold the TK") == 1);
    assert_int_equal(tk_download_proof(p, c.session, 16, c.session_kcv, c.nonce, 16, mac, &e),
                     PX_OK);
    assert_int_equal(kms_download(f->kms.k, "PP10000004", c.nonce, 16, mac, 8, "t", &t, &e),
                     PX_ECONFLICT);
    /* the PIN pad with another TK sees it at once from the session key's check value */
    assert_int_equal(pinpad_tk_generate(p, kcv, &e), PX_OK);
    assert_int_equal(kms_download_challenge(f->kms.k, "PP10000004", "t", &c, &e), PX_OK);
    assert_int_equal(tk_download_proof(p, c.session, 16, c.session_kcv, c.nonce, 16, mac, &e),
                     PX_EAUTH);
    assert_non_null(strstr(e.msg, "not the one the KMS holds"));
    /* a nonce of another serial, an unknown one, an unknown serial */
    assert_int_equal(kms_download(f->kms.k, "PP99", c.nonce, 16, mac, 8, "t", &t, &e), PX_EPERM);
    c.nonce[0] ^= 1;
    assert_int_equal(kms_download(f->kms.k, "PP10000004", c.nonce, 16, mac, 8, "t", &t, &e),
                     PX_ENOTFOUND);
    assert_int_equal(kms_download_challenge(f->kms.k, "PP404", "t", &c, &e), PX_ENOTFOUND);
    assert_non_null(strstr(e.msg, "unknown serial PP404"));
    assert_true(audited(&f->kms, "PP404", "download.challenge", "refused", "unknown serial") == 1);
    assert_int_equal(kms_download_challenge(f->kms.k, "bad serial", "t", &c, &e), PX_EINVAL);
    pinpad_close(p);
}

static void test_kcv_mismatch_and_expiry(void **state)
{
    kf *f = *state;
    pinpad *p = kf_pinpad(f, "PP10000005");
    uint8_t env[PX_TKENV_MAX], mac[TK_MAC_LEN], kcv[3];
    size_t n = kf_envelope(f, p, &f->kms, env, sizeof env), k = 0;
    kms_intake_result r;
    kms_challenge c;
    kms_tmk t;
    kms_terminal_info ti;
    px_error e = {0};
    assert_int_equal(kms_tk_intake(f->kms.k, "mtms:factory", env, n, &r, &e), PX_OK);
    assert_int_equal(kms_download_challenge(f->kms.k, "PP10000005", "t", &c, &e), PX_OK);
    assert_int_equal(tk_download_proof(p, c.session, 16, c.session_kcv, c.nonce, 16, mac, &e),
                     PX_OK);
    assert_int_equal(kms_download(f->kms.k, "PP10000005", c.nonce, 16, mac, 8, "t", &t, &e), PX_OK);
    /* altered on the way: the PIN pad refuses it and the terminal says so */
    assert_int_equal(px_hex_decode(t.kcv, kcv, sizeof kcv, &k), PX_OK);
    kcv[0] ^= 0xFF;
    assert_int_equal(pinpad_load_tmk_under_tk(p, t.cryptogram, 16, kcv, 3, &e), PX_EAUTH);
    assert_false(pinpad_has_key(p, PINPAD_TMK));
    assert_int_equal(tk_result_mac(p, c.session, 16, c.nonce, 16, "kcv_mismatch", mac, &e), PX_OK);
    assert_int_equal(kms_download_result(f->kms.k, "PP10000005", c.nonce, 16, "kcv_mismatch", mac,
                                         8, "t", &e),
                     PX_OK);
    assert_true(audited(&f->kms, "PP10000005", "download.result", "refused", "check value") == 1);
    assert_int_equal(kms_terminal_get(f->kms.st, "PP10000005", &ti, &e), PX_OK);
    assert_string_equal(ti.status, "ready");
    /* reported twice: refused */
    assert_int_equal(kms_download_result(f->kms.k, "PP10000005", c.nonce, 16, "kcv_mismatch", mac,
                                         8, "t", &e),
                     PX_ECONFLICT);
    /* a report whose MAC is wrong */
    assert_int_equal(kms_download_challenge(f->kms.k, "PP10000005", "t", &c, &e), PX_OK);
    assert_int_equal(tk_download_proof(p, c.session, 16, c.session_kcv, c.nonce, 16, mac, &e),
                     PX_OK);
    assert_int_equal(kms_download(f->kms.k, "PP10000005", c.nonce, 16, mac, 8, "t", &t, &e), PX_OK);
    assert_int_equal(kms_download_result(f->kms.k, "PP10000005", c.nonce, 16, "loaded", mac, 8, "t",
                                         &e),
                     PX_EAUTH);
    /* an expired challenge */
    {
        kms_config kc;
        struct timespec ts = {0, 20 * 1000000L};
        kms *k2 = NULL;
        kms_config_default(&kc);
        px_strlcpy(kc.customer, "C001", sizeof kc.customer);
        px_strlcpy(kc.recv_cert, f->kms.recv_cert, sizeof kc.recv_cert);
        px_strlcpy(kc.ca, f->ca_crt, sizeof kc.ca);
        px_strlcpy(kc.crl, f->crl, sizeof kc.crl);
        px_strlcpy(kc.mtms_cn, "mtms:factory", sizeof kc.mtms_cn);
        kc.challenge_ttl_ms = 1;
        assert_int_equal(kms_open(&kc, f->kms.st, f->kms.h, &k2, &e), PX_OK);
        assert_int_equal(kms_download_challenge(k2, "PP10000005", "t", &c, &e), PX_OK);
        nanosleep(&ts, NULL);
        assert_int_equal(tk_download_proof(p, c.session, 16, c.session_kcv, c.nonce, 16, mac, &e),
                         PX_OK);
        assert_int_equal(kms_download(k2, "PP10000005", c.nonce, 16, mac, 8, "t", &t, &e),
                         PX_ETIMEOUT);
        assert_non_null(strstr(e.msg, "expired"));
        kms_close(k2);
    }
    pinpad_close(p);
}

static void test_new_tk_and_platform(void **state)
{
    kf *f = *state;
    pinpad *p = kf_pinpad(f, "PP10000006");
    uint8_t env1[PX_TKENV_MAX], env2[PX_TKENV_MAX];
    size_t n1 = kf_envelope(f, p, &f->kms, env1, sizeof env1);
    struct timespec ts = {0, 3 * 1000000L};
    size_t n2;
    kms_intake_result r1, r2;
    hsm_keyblock zb, kb;
    hsm_key *zk = NULL;
    static const hsm_key_attrs zmk = {"K0", 'T', 'B', 'N', 16}, k1 = {"K1", 'T', 'B', 'N', 16},
                               sw_tmk = {"K0", 'T', 'E', 'N', 16};
    char out[PX_HSM_KEYBLOCK_MAX], kcv[PX_HSM_KCV_HEX_MAX];
    px_error e = {0};
    nanosleep(&ts, NULL);
    n2 = kf_envelope(f, p, &f->kms, env2, sizeof env2); /* repair: a new TK */
    assert_int_equal(kms_tk_intake(f->kms.k, "mtms:factory", env2, n2, &r2, &e), PX_OK);
    /* the older one arriving late is refused: it would replace the newer TK */
    assert_int_equal(kms_tk_intake(f->kms.k, "mtms:factory", env1, n1, &r1, &e), PX_ECONFLICT);
    assert_non_null(strstr(r1.reason, "older than the TK held"));
    assert_int_equal(kf_download(&f->kms, p, &e), PX_OK);
    /* the TMK for the switch under a zone key: ECB under K0, TR-31 under K1 */
    assert_int_equal(hsm_key_generate(f->kms.h, &zmk, "ZMK.switch", &zb, &e), PX_OK);
    assert_int_equal(kms_tmk_export(f->kms.k, "PP10000006", "ZMK.switch", "cli:test", out,
                                    sizeof out, kcv, &e),
                     PX_OK);
    assert_string_equal(kcv, r2.tmk_kcv);
    assert_int_equal(strlen(out), 32);
    assert_int_equal(hsm_key_load_named(f->kms.h, "ZMK.switch", &zk, &e), PX_OK);
    assert_int_equal(hsm_key_import(f->kms.h, zk, out, &sw_tmk, kcv, NULL, &kb, &e), PX_OK);
    hsm_key_free(f->kms.h, zk);
    assert_int_equal(hsm_key_generate(f->kms.h, &k1, "KBPK.switch", &zb, &e), PX_OK);
    assert_int_equal(kms_tmk_export(f->kms.k, "PP10000006", "KBPK.switch", "cli:test", out,
                                    sizeof out, kcv, &e),
                     PX_OK);
    assert_true(out[0] == 'B' || out[0] == 'D');
    assert_int_equal(kms_tmk_export(f->kms.k, "PP10000006", "nothing", "cli:test", out, sizeof out,
                                    kcv, &e),
                     PX_ENOTFOUND);
    assert_int_equal(kms_tmk_export(f->kms.k, "PP404", "ZMK.switch", "cli:test", out, sizeof out,
                                    kcv, &e),
                     PX_ENOTFOUND);
    assert_true(audited(&f->kms, "PP10000006", "tmk.export", "ok", "ZMK.switch") == 1);
    pinpad_close(p);
}

static void test_open_refusals(void **state)
{
    kf *f = *state;
    kms_config kc;
    kms *k = NULL;
    px_error e = {0};
    kms_config_default(&kc);
    px_strlcpy(kc.customer, "C009", sizeof kc.customer);
    px_strlcpy(kc.recv_cert, f->kms.recv_cert, sizeof kc.recv_cert);
    px_strlcpy(kc.ca, f->ca_crt, sizeof kc.ca);
    px_strlcpy(kc.crl, f->crl, sizeof kc.crl);
    px_strlcpy(kc.mtms_cn, "mtms:factory", sizeof kc.mtms_cn);
    assert_int_equal(kms_open(&kc, f->kms.st, f->kms.h, &k, &e), PX_ECONFIG);
    assert_non_null(strstr(e.msg, "this KMS serves customer C009"));
    px_strlcpy(kc.customer, "C001", sizeof kc.customer);
    kc.mtms_cn[0] = 0;
    assert_int_equal(kms_open(&kc, f->kms.st, f->kms.h, &k, &e), PX_ECONFIG);
    px_strlcpy(kc.mtms_cn, "mtms:factory", sizeof kc.mtms_cn);
    px_strlcpy(kc.recv_key, "nothing", sizeof kc.recv_key);
    assert_int_not_equal(kms_open(&kc, f->kms.st, f->kms.h, &k, &e), PX_OK);
    assert_non_null(strstr(e.msg, "possum kms init"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_intake_and_download, setup, teardown),
        cmocka_unit_test_setup_teardown(test_another_customers_kms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pinpad_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_and_no_tk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kcv_mismatch_and_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_tk_and_platform, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
