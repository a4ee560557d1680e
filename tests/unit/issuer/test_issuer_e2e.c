/*
 * test_issuer_e2e.c: the real possumd with [issuer] enabled (and the demo seed), spoken to
 * over real sockets in ISO 8583:1987 ASCII as the switch speaks it (docs/switch-protocol.md
 * §2): approval, refusals (51, 55, 15), a retransmission answered with the same bytes, a
 * reversal that restores the balance once, the daily clearing file and the cardholder list
 * from the `possum issuer` CLI; then a second daemon with latency and dropped answers.
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
#include <time.h>

#include "harness.h"
#include "issuer_fixture.h"
#include "lib/str.h"
#include "lib/time.h"
#include "net/net.h"
#include "tmpdir.h"

static char keydir[PX_PATH_MAX];

/* The [issuer] section: demo seed, LMK and clearing files in keydir, plus extra keys. */
static void issuer_ini(char *out, size_t outsz, const char *extra)
{
    snprintf(out, outsz,
             "[issuer]\nenabled = true\nlisten = 127.0.0.1:0\nseed_demo = true\n"
             "institution_id = 48020000\nhsm_lmk_file = %s/var/lmk.bin\n"
             "hsm_audit_file = %s/var/hsm-audit.log\nclearing_dir = %s/clearing\n%s",
             keydir, keydir, keydir, extra ? extra : "");
}

/* The issuer's port from the daemon's ports file ("issuer=host:port"). */
static int issuer_port(const e2e_daemon *d)
{
    for (int i = 0; i < 200; i++) {
        char line[256];
        FILE *f = fopen(d->ports, "r");
        while (f != NULL && fgets(line, sizeof line, f) != NULL) {
            char *colon = strrchr(line, ':');
            int64_t port;
            line[strcspn(line, "\r\n")] = 0;
            if (strncmp(line, "issuer=", 7) == 0 && colon != NULL &&
                px_parse_i64(colon + 1, 1, 65535, &port) == PX_OK) {
                fclose(f);
                return (int)port;
            }
        }
        if (f != NULL)
            fclose(f);
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fail_msg("no issuer= line in %s", d->ports);
    return -1;
}

typedef struct suite {
    e2e_daemon d;
    int port;
    net_client *c;
} suite;

static suite S;
static int harness_failed; /* cmocka counts no test as failed when a group setup fails */

static int start_daemon(const char *extra)
{
    char ini[2048];
    px_error e = {0};
    if (net_init(&e) != PX_OK) {
        fprintf(stderr, "net_init: %s\n", px_error_text(&e));
        return -1;
    }
    if (keydir[0] == 0) {
        hsm_config hc;
        if (testlib_mkdtemp("issuer-e2e", keydir, sizeof keydir) != 0)
            return -1;
        fx_lmk_init(keydir, &hc); /* keydir/var/lmk.bin; the passphrase in the environment */
    }
    issuer_ini(ini, sizeof ini, extra);
    if (e2e_start(&S.d, ini) != 0) {
        fprintf(stderr, "possumd did not start (its log is above)\n");
        return -1;
    }
    S.port = issuer_port(&S.d);
    if (net_client_connect("127.0.0.1", S.port, NULL, 5000, &S.c, &e) != PX_OK) {
        fprintf(stderr, "connect to the issuer: %s\n", px_error_text(&e));
        return -1;
    }
    return 0;
}

static int stop_daemon(void)
{
    int status;
    net_client_close(S.c);
    S.c = NULL;
    status = e2e_stop(&S.d, SIGTERM, 10000);
    e2e_cleanup(&S.d);
    return status == 0 ? 0 : -1;
}

static int setup_plain(void **state)
{
    (void)state;
    harness_failed |= start_daemon(NULL) != 0;
    return harness_failed ? -1 : 0;
}

static int setup_faults(void **state)
{
    (void)state;
    harness_failed |= start_daemon("latency_ms = 300\nlatency_jitter_ms = 50\n"
                                   "drop_every_n = 2\n") != 0;
    return harness_failed ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    harness_failed |= stop_daemon() != 0; /* possumd must stop cleanly on SIGTERM */
    return harness_failed ? -1 : 0;
}

/* Send one request; the raw answer into buf (PX_ETIMEOUT if none in timeout_ms). */
static int roundtrip(const fx_req *r, uint8_t *buf, size_t cap, size_t *len, int64_t timeout_ms)
{
    iso8583_msg m;
    uint8_t out[PX_ISO_MSG_MAX];
    px_error e = {0};
    size_t n;
    fx_build(&m, r);
    n = fx_pack(&m, out, sizeof out);
    assert_int_equal(net_client_send_frame(S.c, out, n, &e), PX_OK);
    return net_client_recv_frame(S.c, buf, cap, len, timeout_ms, &e);
}

static const char *ask(const fx_req *r, iso8583_msg *rsp)
{
    uint8_t in[PX_ISO_MSG_MAX];
    size_t n = 0;
    px_error e = {0};
    assert_int_equal(roundtrip(r, in, sizeof in, &n, 5000), PX_OK);
    if (iso8583_unpack(&iso8583_1987_ascii, in, n, rsp, &e) != PX_OK)
        fail_msg("answer: %s", px_error_text(&e));
    assert_string_equal(fx_field(rsp, 11), r->stan);
    return fx_field(rsp, 39);
}

static fx_req purchase(const char *pan, int64_t amount, const char *stan, const char *pin)
{
    fx_req r = {
        .mti = "0200", .proc = "000000", .pan = pan, .amount = amount, .stan = stan, .pin = pin};
    return r;
}

/* The balance as a balance inquiry (310000) shows it in field 54. */
static int64_t balance(const char *pan, const char *pin, const char *stan)
{
    iso8583_msg rsp;
    int64_t v = -1;
    fx_req r = {
        .mti = "0200", .proc = "310000", .pan = pan, .amount = -1, .stan = stan, .pin = pin};
    assert_string_equal(ask(&r, &rsp), "00");
    assert_int_equal(px_parse_i64(fx_field(&rsp, 54) + 8, 0, 999999999999LL, &v), PX_OK);
    return v;
}

static void t_echo_and_purchase(void **state)
{
    iso8583_msg rsp;
    fx_req echo = {.mti = "0800", .amount = -1, .stan = "000001", .f70 = "301"};
    fx_req p = purchase(CARD_ZHANG, 12345, "000002", "123456");
    (void)state;
    assert_string_equal(ask(&echo, &rsp), "00");
    assert_string_equal(rsp.mti, "0810");
    assert_string_equal(ask(&p, &rsp), "00");
    assert_string_equal(rsp.mti, "0210");
    assert_int_equal(strlen(fx_field(&rsp, 38)), 6);
    assert_string_equal(fx_field(&rsp, 54), "1002156C000000987655");
    assert_string_equal(fx_field(&rsp, 100), "48020000");
    assert_int_equal(balance(CARD_ZHANG, "123456", "000003"), 987655);
    assert_true(e2e_log_contains(&S.d, "issuer listening on 127.0.0.1:"));
    assert_true(e2e_log_contains(&S.d, "622202******0007"));
    assert_false(e2e_log_contains(&S.d, CARD_ZHANG));
}

static void t_refusals(void **state)
{
    iso8583_msg rsp;
    fx_req r = purchase(CARD_LI, 5001, "000010", "111111");
    (void)state;
    assert_string_equal(ask(&r, &rsp), "51");
    r = purchase(CARD_WANG, 100, "000011", "000000");
    assert_string_equal(ask(&r, &rsp), "55");
    r = purchase(CARD_QIAN, 100, "000012", "123456");
    assert_string_equal(ask(&r, &rsp), "15");
    assert_int_equal(balance(CARD_LI, "111111", "000013"), 5000);
}

static void t_duplicate_and_reversal(void **state)
{
    uint8_t a[PX_ISO_MSG_MAX], b[PX_ISO_MSG_MAX];
    size_t na = 0, nb = 0;
    char f90[43];
    iso8583_msg rsp;
    fx_req p = purchase(CARD_SUN, 40000, "000020", "654321");
    fx_req rev = {.mti = "0420",
                  .proc = "000000",
                  .pan = CARD_SUN,
                  .amount = 40000,
                  .stan = "000021",
                  .tx_time = "1122102000",
                  .f90 = f90};
    (void)state;
    assert_int_equal(roundtrip(&p, a, sizeof a, &na, 5000), PX_OK);
    assert_int_equal(roundtrip(&p, b, sizeof b, &nb, 5000), PX_OK);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na); /* byte for byte */
    assert_int_equal(balance(CARD_SUN, "654321", "000022"), 960000);
    fx_f90("0200", "000020", FX_TX_TIME, f90);
    assert_int_equal(roundtrip(&rev, a, sizeof a, &na, 5000), PX_OK);
    rev.mti = "0421";
    assert_int_equal(roundtrip(&rev, b, sizeof b, &nb, 5000), PX_OK);
    assert_memory_equal(a, b, na);
    rev.mti = "0420", rev.stan = "000023";
    assert_string_equal(ask(&rev, &rsp), "00");
    assert_string_equal(rsp.mti, "0430");
    assert_int_equal(balance(CARD_SUN, "654321", "000024"), 1000000); /* restored once */
}

static void t_cli_clearing_and_list(void **state)
{
    char exe[512], cmd[2048], today[11], path[PX_PATH_MAX + 64];
    px_buf out, file;
    FILE *f;
    char chunk[4096];
    size_t n;
    (void)state;
    px_buf_init(&out, 1 << 20);
    px_buf_init(&file, 1 << 20);
    e2e_binary("src/app/possum", exe, sizeof exe);
    px_time_format_utc(px_now_ms(), "%Y-%m-%d", today, sizeof today);
    snprintf(cmd, sizeof cmd, "%s issuer clearing --date %s --db %s/possum.db --out %s/out 2>&1",
             exe, today, S.d.dir, keydir);
    assert_int_equal(e2e_run(cmd, &out), 0);
    assert_non_null(strstr(px_buf_str(&out), "entries for"));
    snprintf(path, sizeof path, "%s/out/clearing-%.4s%.2s%.2s.csv", keydir, today, today + 5,
             today + 8);
    f = fopen(path, "r");
    assert_non_null(f);
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        assert_int_equal(px_buf_append(&file, chunk, n), PX_OK);
    fclose(f);
    assert_int_equal(strncmp(px_buf_str(&file), "date,rrn,stan,type,pan_masked,", 30), 0);
    assert_non_null(strstr(px_buf_str(&file), ",000002,purchase,622202******0007,12345,156,00,"));
    assert_non_null(strstr(px_buf_str(&file), ",000020,purchase,622202*********0128,40000,"));
    assert_non_null(strstr(px_buf_str(&file), ",000021,reversal,622202*********0128,40000,"));
    assert_null(strstr(px_buf_str(&file), ",000010,")); /* the 51 is not cleared */
    assert_null(strstr(px_buf_str(&file), CARD_ZHANG));
    px_buf_reset(&out);
    snprintf(cmd, sizeof cmd, "%s issuer cardholder list --db %s/possum.db 2>&1", exe, S.d.dir);
    assert_int_equal(e2e_run(cmd, &out), 0);
    assert_non_null(strstr(px_buf_str(&out), "622202******0007"));
    assert_non_null(strstr(px_buf_str(&out), "9876.55 CNY"));
    assert_null(strstr(px_buf_str(&out), CARD_ZHANG));
    px_buf_free(&out);
    px_buf_free(&file);
}

/* Approvals made after a CLI run are still seen by the next one (the CLI's store
 * connection must not disturb the daemon's: SQLite WAL and POSIX locks). */
static void t_cli_sees_later_approvals(void **state)
{
    char exe[512], cmd[2048], today[11], path[PX_PATH_MAX + 64];
    px_buf out;
    iso8583_msg rsp;
    fx_req p = purchase(CARD_WANG, 777, "000050", "888888");
    (void)state;
    assert_string_equal(ask(&p, &rsp), "00");
    px_buf_init(&out, 1 << 20);
    e2e_binary("src/app/possum", exe, sizeof exe);
    px_time_format_utc(px_now_ms(), "%Y-%m-%d", today, sizeof today);
    snprintf(cmd, sizeof cmd,
             "%s issuer clearing --date %s --db %s/possum.db --out %s/out2 2>&1"
             " && cat %s/out2/clearing-%.4s%.2s%.2s.csv",
             exe, today, S.d.dir, keydir, keydir, today, today + 5, today + 8);
    (void)path;
    assert_int_equal(e2e_run(cmd, &out), 0);
    assert_non_null(strstr(px_buf_str(&out), ",000050,purchase,621700******0006,777,"));
    px_buf_free(&out);
}

/* latency_ms = 300 and drop_every_n = 2: the first 0200 is answered late, the second never;
 * its effect stands until the switch reverses it; its retransmission gets the stored answer. */
static void t_latency_and_dropped_answer(void **state)
{
    uint8_t in[PX_ISO_MSG_MAX];
    size_t n = 0;
    char f90[43];
    iso8583_msg rsp;
    int64_t t0 = px_mono_ms();
    fx_req p1 = purchase(CARD_WANG, 1000, "000030", "888888");
    fx_req p2 = purchase(CARD_WANG, 2000, "000031", "888888");
    fx_req rev = {.mti = "0420",
                  .proc = "000000",
                  .pan = CARD_WANG,
                  .amount = 2000,
                  .stan = "000032",
                  .tx_time = "1122102100",
                  .f90 = f90};
    (void)state;
    assert_string_equal(ask(&p1, &rsp), "00");
    assert_true(px_mono_ms() - t0 >= 300);
    assert_int_equal(roundtrip(&p2, in, sizeof in, &n, 1500), PX_ETIMEOUT); /* dropped */
    assert_true(e2e_log_contains(&S.d, "answer dropped on purpose"));
    fx_f90("0200", "000031", FX_TX_TIME, f90);
    assert_string_equal(ask(&rev, &rsp), "00"); /* the switch's reversal undoes it */
    p2.stan = "000031";
    assert_string_equal(ask(&p2, &rsp), "00"); /* 3rd 0200: answered, with the stored answer */
}

int main(void)
{
    const struct CMUnitTest plain[] = {
        cmocka_unit_test(t_echo_and_purchase),        cmocka_unit_test(t_refusals),
        cmocka_unit_test(t_duplicate_and_reversal),   cmocka_unit_test(t_cli_clearing_and_list),
        cmocka_unit_test(t_cli_sees_later_approvals),
    };
    const struct CMUnitTest faults[] = {cmocka_unit_test(t_latency_and_dropped_answer)};
    int failed = cmocka_run_group_tests_name("issuer_e2e", plain, setup_plain, teardown);
    failed += cmocka_run_group_tests_name("issuer_e2e_faults", faults, setup_faults, teardown);
    if (keydir[0] != 0 && getenv("POSSUM_E2E_KEEP") == NULL)
        testlib_rmtree(keydir);
    return failed || harness_failed ? 1 : 0;
}
