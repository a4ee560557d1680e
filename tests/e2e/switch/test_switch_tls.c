/*
 * End to end, the terminal link over mutual TLS (docs/switch.md "Configuration", net.md
 * "TLS"): a CA made with the project's own `possum ca` in a temp directory, possumd running
 * the switch (TLS listener, client certificates required, the CA's CRL) and the issuer
 * simulator (the provider), terminals registered with `possum terminal add` and driven with
 * the real terminal CLI (`possum pos`). A terminal with its certificate signs on, buys and
 * settles; a terminal without a certificate, one with a certificate of another CA and one
 * whose certificate was revoked (`possum ca revoke`, the switch restarted to read the new
 * CRL) are refused at the handshake with a message that names the TLS failure, and the
 * ledger does not move; a plain-TCP terminal on the TLS port fails cleanly and the node goes
 * on serving. `possum ledger check` passes at the end, against the running node and after.
 *
 * The CA has no role for POS terminals (docs/ca.md: operator, mtms, kms, pinpad, service).
 * Terminals get `service` certificates (CN service:pos-TID): `operator` is the only other
 * TLS-client role, and the MTMS admits every operator:* certificate to its operator API, so
 * a POS terminal must not hold one; `pinpad` is a device-signing key with no TLS purpose.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "harness.h"
#include "hsm/hsm.h"
#include "lib/str.h"
#include "swfix.h"

static swfix F;
static swfix_node N;

#define MID "898100000000001"
#define CA_PASSPHRASE "e2e switch tls CA passphrase"
/* scripts/demo.sh: the demo TMK, two custodians' components with their check values */
#define DEMO_TMK "0123456789ABCDEFFEDCBA9876543210:08D7B4,1F1F1F1F1F1F1F1F0E0E0E0E0E0E0E0E:22CAE3"

#define T_GOOD "10000001"    /* a certificate from the CA */
#define T_NOCERT "10000002"  /* trusts the CA, presents nothing */
#define T_OTHERCA "10000003" /* a certificate from another CA */
#define T_REVOKED "10000004" /* a certificate from the CA, revoked half-way */
#define T_PLAIN "10000005"   /* plain TCP */

/* ---- commands as a user runs them ---- */

static int run_possum(px_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* `possum ARGS` (stdout and stderr) into out, which is reset first; the exit status. */
static int run_possum(px_buf *out, const char *fmt, ...)
{
    char exe[PX_PATH_MAX], args[3072], cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    e2e_binary("src/app/possum", exe, sizeof exe);
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", exe, args);
    px_buf_reset(out);
    return e2e_run(cmd, out);
}

static int pos(px_buf *out, const char *tid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* `possum pos ARGS` for terminal tid (its directory under F.dir), at the node's switch. */
static int pos(px_buf *out, const char *tid, const char *fmt, ...)
{
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return run_possum(out, "pos %s --data %s/pos-%s --port %d --tid %s --mid %s --timeout-ms 10000",
                      args, F.dir, tid, N.switch_port, tid, MID);
}

static int has(const px_buf *out, const char *needle)
{
    return strstr(px_buf_str(out), needle) != NULL;
}

/* ---- the PKI: the CA, another CA, the switch's and the terminals' certificates ---- */

static int ca_issue(px_buf *out, const char *ca, const char *name, const char *san)
{
    char sanopt[64] = "";
    if (san != NULL)
        snprintf(sanopt, sizeof sanopt, "--san %s", san);
    if (run_possum(out, "ca issue --dir %s/%s --role service --name %s %s --out %s/%s/%s", F.dir,
                   ca, name, sanopt, F.dir, ca, name) == 0)
        return 0;
    fprintf(stderr, "ca issue %s: %s\n", name, px_buf_str(out));
    return -1;
}

static int make_pki(void)
{
    px_buf out;
    int rc = 0;
    px_buf_init(&out, 1 << 16);
    setenv("POSSUM_CA_PASSPHRASE", CA_PASSPHRASE, 1); /* the CA's key sealed, as in production */
    if (run_possum(&out, "ca init --dir %s/ca --name 'possum e2e CA'", F.dir) != 0 ||
        run_possum(&out, "ca init --dir %s/otherca --name 'another CA'", F.dir) != 0) {
        fprintf(stderr, "ca init: %s\n", px_buf_str(&out));
        rc = -1;
    }
    if (rc == 0)
        rc = ca_issue(&out, "ca", "switch", "127.0.0.1");
    if (rc == 0)
        rc = ca_issue(&out, "ca", "pos-" T_GOOD, NULL);
    if (rc == 0)
        rc = ca_issue(&out, "ca", "pos-" T_REVOKED, NULL);
    if (rc == 0) /* the same name as the good terminal's: only the issuer differs */
        rc = ca_issue(&out, "otherca", "pos-" T_OTHERCA, NULL);
    px_buf_free(&out);
    return rc;
}

/* ---- the node ---- */

static int register_terminals(void)
{
    static const char *const tids[] = {T_GOOD, T_NOCERT, T_OTHERCA, T_REVOKED, T_PLAIN};
    px_buf out;
    int rc = 0;
    px_buf_init(&out, 1 << 16);
    for (size_t i = 0; rc == 0 && i < sizeof tids / sizeof tids[0]; i++)
        if (swfix_cli(&F, &out,
                      "terminal add --tid %s --mid %s --name 'Possum Coffee' --tmk-components %s",
                      tids[i], MID, DEMO_TMK) != 0) {
            fprintf(stderr, "terminal add %s: %s\n", tids[i], px_buf_str(&out));
            rc = -1;
        }
    px_buf_free(&out);
    return rc;
}

static int setup(void **state)
{
    char tls[2048], sw[8192], is[4096], all[16384];
    int port = swfix_free_port();
    (void)state;
    if (swfix_init(&F, NULL) != 0 || make_pki() != 0)
        return -1;
    /* the terminal listener: mutual TLS against the CA, its CRL read at start */
    snprintf(tls, sizeof tls,
             "tls_cert = %s/ca/switch.crt\ntls_key = %s/ca/switch.key\ntls_ca = %s/ca/ca.crt\n"
             "tls_crl = %s/ca/crl.pem\ntls_require_client_cert = true\n",
             F.dir, F.dir, F.dir, F.dir);
    swfix_switch_section(&F, sw, sizeof sw, port, tls);
    swfix_issuer_section(&F, is, sizeof is, port, NULL);
    snprintf(all, sizeof all, "%s\n%s\n", sw, is);
    /* registered before the node starts (docs/switch.md, "Operating on SQLite") */
    if (register_terminals() != 0)
        return -1;
    return swfix_start(&F, &N, "node1", NULL, all);
}

static int teardown(void **state)
{
    px_buf out;
    size_t entries = 0;
    px_error e = {0};
    int status, check = 0;
    (void)state;
    status = swfix_stop(&N, SIGTERM, 15000);
    if (status != 0)
        swfix_dump_log(&N);
    /* the node has stopped: the operator's CLI checks the ledger it left */
    px_buf_init(&out, 1 << 20);
    if (swfix_cli(&F, &out, "ledger check") != 0 || !has(&out, "ledger check OK")) {
        fprintf(stderr, "%s", px_buf_str(&out));
        check = -1;
    }
    px_buf_free(&out);
    if (hsm_audit_verify(F.audit, NULL, &entries, &e) != PX_OK) {
        fprintf(stderr, "audit: %s\n", px_error_text(&e));
        check = -1;
    }
    swfix_cleanup(&F);
    return status == 0 && check == 0 ? 0 : -1;
}

/* ---- the ledger, read from the running node ---- */

static json_t *get_json(const char *path)
{
    px_buf body;
    long status = 0;
    json_t *j = NULL;
    px_buf_init(&body, 1 << 22);
    if (e2e_http(N.http_port, "GET", path, NULL, &status, &body) == 0 && status == 200)
        j = json_loads(px_buf_str(&body), 0, NULL);
    px_buf_free(&body);
    return j;
}

/* What the ledger holds: its check (ok, transactions, entries) and every balance, as one
 * string to compare before and after a refusal. */
static void ledger_snapshot(char *out, size_t outsz)
{
    json_t *c = get_json("/v1/switch/ledger/check"), *b = get_json("/v1/switch/ledger/balances");
    char *bs = b != NULL ? json_dumps(b, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
    assert_non_null(c);
    assert_non_null(bs);
    assert_true(json_is_true(json_object_get(c, "ok")));
    snprintf(out, outsz, "transactions %lld entries %lld %s",
             (long long)json_integer_value(json_object_get(c, "transactions")),
             (long long)json_integer_value(json_object_get(c, "entries")), bs);
    free(bs);
    json_decref(b);
    json_decref(c);
}

static long long merchant_balance(void)
{
    json_t *j = get_json("/v1/switch/ledger/balances"), *a;
    size_t i;
    long long v = 0;
    assert_non_null(j);
    json_array_foreach (json_object_get(j, "accounts"), i, a)
        if (strcmp(json_string_value(json_object_get(a, "id")), "merchant:" MID) == 0)
            v = json_integer_value(json_object_get(a, "balance_minor"));
    json_decref(j);
    return v;
}

#define TLS_FAILURES "possum_net_tls_handshake_failures_total{listener=\"switch\"}"

/* ---- the terminals ---- */

/* `possum pos init` for tid with TLS settings (tls_ca NULL: plain TCP; cert NULL: none). */
static void pos_init(const char *tid, const char *ca, const char *cert)
{
    char tlsopt[1024] = "";
    px_buf out;
    px_buf_init(&out, 1 << 16);
    if (ca != NULL && cert != NULL)
        snprintf(tlsopt, sizeof tlsopt, "--tls-ca %s/%s --tls-cert %s/%s.crt --tls-key %s/%s.key",
                 F.dir, ca, F.dir, cert, F.dir, cert);
    else if (ca != NULL)
        snprintf(tlsopt, sizeof tlsopt, "--tls-ca %s/%s", F.dir, ca);
    if (pos(&out, tid, "init %s --tmk-components %s", tlsopt, DEMO_TMK) != 0 ||
        !has(&out, "check value"))
        fail_msg("pos init %s: %s", tid, px_buf_str(&out));
    px_buf_free(&out);
}

static void pos_purchase_approved(const char *tid, long long amount)
{
    px_buf out;
    px_buf_init(&out, 1 << 16);
    if (pos(&out, tid, "purchase --amount %lld --card %s --pin %s", amount, SWFIX_CARD_OK,
            SWFIX_CARD_OK_PIN) != 0 ||
        !has(&out, "APPROVED"))
        fail_msg("pos purchase %s: %s", tid, px_buf_str(&out));
    px_buf_free(&out);
}

/* A terminal the switch refuses at the handshake: `possum pos CMD` fails (exit 1) with a
 * message naming TLS and the reason (what the server's alert says), the switch logs the
 * refusal with its reason, nothing in the ledger moved and the terminal queued no
 * reversal (the request never reached the platform). */
static void refused(const char *tid, const char *cmd, const char *client_says,
                    const char *switch_logs)
{
    char before[16384], after[16384];
    long long failures = swfix_metric(&N, TLS_FAILURES);
    px_buf out;
    px_buf_init(&out, 1 << 16);
    ledger_snapshot(before, sizeof before);
    if (pos(&out, tid, "%s", cmd) != 1 || !has(&out, "FAILED") ||
        !has(&out, "TLS: the server refused the handshake") || !has(&out, client_says) ||
        has(&out, "reversal"))
        fail_msg("pos %s %s: expected a TLS refusal (%s): %s", tid, cmd, client_says,
                 px_buf_str(&out));
    ledger_snapshot(after, sizeof after);
    assert_string_equal(before, after);
    assert_int_equal(swfix_metric(&N, TLS_FAILURES), failures + 1);
    if (!swfix_log_contains(&N, switch_logs)) {
        swfix_dump_log(&N);
        fail_msg("the switch's log does not say \"%s\"", switch_logs);
    }
    if (pos(&out, tid, "status") != 0 || !has(&out, "(TLS)") ||
        !has(&out, "Pending reversal: none"))
        fail_msg("pos status %s: %s", tid, px_buf_str(&out));
    px_buf_free(&out);
}

/* ---- the tests, in order ---- */

static void test_mutual_tls_signon_and_purchase(void **state)
{
    px_buf out;
    (void)state;
    px_buf_init(&out, 1 << 16);
    assert_true(swfix_log_contains(&N, "switch listening on"));
    pos_init(T_GOOD, "ca/ca.crt", "ca/pos-" T_GOOD);
    if (pos(&out, T_GOOD, "signon") != 0 || !has(&out, "APPROVED"))
        fail_msg("pos signon: %s", px_buf_str(&out));
    pos_purchase_approved(T_GOOD, 1500);
    assert_int_equal(merchant_balance(), -1500);
    if (pos(&out, T_GOOD, "status") != 0 || !has(&out, "(TLS)") || !has(&out, "signed on: yes"))
        fail_msg("pos status: %s", px_buf_str(&out));
    /* the terminal whose certificate is revoked later works while it is valid */
    pos_init(T_REVOKED, "ca/ca.crt", "ca/pos-" T_REVOKED);
    if (pos(&out, T_REVOKED, "signon") != 0)
        fail_msg("pos signon %s: %s", T_REVOKED, px_buf_str(&out));
    px_buf_free(&out);
}

static void test_no_client_certificate_refused(void **state)
{
    (void)state;
    pos_init(T_NOCERT, "ca/ca.crt", NULL);
    refused(T_NOCERT, "signon", "certificate required", "peer did not return a certificate");
}

static void test_certificate_of_another_ca_refused(void **state)
{
    (void)state;
    pos_init(T_OTHERCA, "ca/ca.crt", "otherca/pos-" T_OTHERCA);
    refused(T_OTHERCA, "signon", "unknown ca", "unable to get local issuer certificate");
}

/* `possum ca revoke` rewrites the CRL; the listener reads it at start (net.md, "TLS"), so the
 * operator restarts the switch, as docs/ca.md says. */
static void test_revoked_certificate_refused(void **state)
{
    char purchase[256];
    px_buf out;
    (void)state;
    px_buf_init(&out, 1 << 16);
    if (run_possum(&out, "ca revoke --dir %s/ca --cn service:pos-%s --reason keyCompromise", F.dir,
                   T_REVOKED) != 0)
        fail_msg("ca revoke: %s", px_buf_str(&out));
    if (run_possum(&out, "ca show --cert %s/ca/pos-%s.crt --ca %s/ca/ca.crt --crl %s/ca/crl.pem",
                   F.dir, T_REVOKED, F.dir, F.dir) == 0 ||
        !has(&out, "revoked"))
        fail_msg("ca show: %s", px_buf_str(&out));
    assert_int_equal(swfix_stop(&N, SIGTERM, 15000), 0);
    assert_int_equal(swfix_restart(&N), 0);
    /* signed on before the revocation: the purchase is refused at the handshake */
    snprintf(purchase, sizeof purchase, "purchase --amount 700 --card %s --pin %s", SWFIX_CARD_OK,
             SWFIX_CARD_OK_PIN);
    refused(T_REVOKED, purchase, "certificate revoked", "certificate revoked");
    refused(T_REVOKED, "signon", "certificate revoked", "certificate revoked");
    /* the restarted node still serves the good terminal (its session is in the store) */
    pos_purchase_approved(T_GOOD, 2500);
    assert_int_equal(merchant_balance(), -4000);
    px_buf_free(&out);
}

/* A terminal configured without TLS sends its frame in the clear to the TLS port: the
 * handshake fails on the first byte and the connection is closed; the terminal says it
 * failed, queues nothing, and the node serves the good terminal afterwards. */
static void test_plain_tcp_terminal_fails_cleanly(void **state)
{
    char before[16384], after[16384];
    px_buf out;
    (void)state;
    px_buf_init(&out, 1 << 16);
    long long failures = swfix_metric(&N, TLS_FAILURES);
    pos_init(T_PLAIN, NULL, NULL);
    ledger_snapshot(before, sizeof before);
    /* closed or reset: the listener closes with our frame unread */
    if (pos(&out, T_PLAIN, "signon") != 1 || !has(&out, "FAILED") ||
        (!has(&out, "closed the connection") && !has(&out, "reset by peer")))
        fail_msg("pos signon (plain TCP): %s", px_buf_str(&out));
    ledger_snapshot(after, sizeof after);
    assert_string_equal(before, after);
    assert_int_equal(swfix_metric(&N, TLS_FAILURES), failures + 1);
    if (pos(&out, T_PLAIN, "status") != 0 || has(&out, "(TLS)") || !has(&out, "signed on: no"))
        fail_msg("pos status (plain TCP): %s", px_buf_str(&out));
    pos_purchase_approved(T_GOOD, 1200);
    assert_int_equal(merchant_balance(), -5200);
    /* the terminal's totals (three debits) are the switch's: balanced */
    if (pos(&out, T_GOOD, "settle") != 0 || !has(&out, "balanced") || has(&out, "not balanced"))
        fail_msg("pos settle: %s", px_buf_str(&out));
    px_buf_free(&out);
}

static void test_ledger_check(void **state)
{
    px_buf out;
    (void)state;
    px_buf_init(&out, 1 << 16);
    if (swfix_cli(&F, &out, "ledger check") != 0 || !has(&out, "ledger check OK"))
        fail_msg("ledger check: %s", px_buf_str(&out));
    px_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutual_tls_signon_and_purchase),
        cmocka_unit_test(test_no_client_certificate_refused),
        cmocka_unit_test(test_certificate_of_another_ca_refused),
        cmocka_unit_test(test_revoked_certificate_refused),
        cmocka_unit_test(test_plain_tcp_terminal_fails_cleanly),
        cmocka_unit_test(test_ledger_check),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
