/*
 * End to end, platform core: possumd started from a config file, a terminal's echo test
 * over real sockets, bad input of every kind while other clients are served, the operator
 * endpoints, a clean stop on SIGTERM, and configuration errors that name file, line, key.
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

#include "harness.h"
#include "iso8583/iso8583.h"
#include "lib/buf.h"
#include "net/net.h"
#include "store/store.h"

static e2e_daemon D;

static int setup(void **state)
{
    px_error e = {0};
    if (net_init(&e) != 0)
        return -1;
    return e2e_start(&D, NULL);
}

static int teardown(void **state)
{
    int status = e2e_stop(&D, SIGTERM, 10000);
    e2e_cleanup(&D);
    return status == 0 ? 0 : -1;
}

static void build_echo(iso8583_msg *m, const char *stan)
{
    static const uint8_t tpdu[5] = {0x60, 0x00, 0x01, 0x00, 0x02};
    static const uint8_t hdr[6] = {0x60, 0x31, 0x00, 0x31, 0x00, 0x00};
    iso8583_msg_init(m, &iso8583_unionpay_pos);
    assert_int_equal(iso8583_set_tpdu(m, tpdu, 5, NULL), 0);
    assert_int_equal(iso8583_set_header(m, hdr, 6, NULL), 0);
    assert_int_equal(iso8583_set_mti(m, "0800", NULL), 0);
    assert_int_equal(iso8583_set(m, 11, stan, NULL), 0);
    assert_int_equal(iso8583_set(m, 41, "10000001", NULL), 0);
    assert_int_equal(iso8583_set(m, 42, "898100000000001", NULL), 0);
    assert_int_equal(iso8583_set(m, 60, "00000000301", NULL), 0);
}

static net_client *connect_switch(void)
{
    net_client *c = NULL;
    px_error e = {0};
    if (net_client_connect("127.0.0.1", D.switch_port, NULL, 5000, &c, &e) != 0)
        fail_msg("connect: %s", e.msg);
    return c;
}

/* Send raw bytes (already framed or not); receive one frame or report why none came. */
static int send_and_recv(net_client *c, const uint8_t *raw, size_t n, iso8583_msg *rsp)
{
    uint8_t in[PX_ISO_MSG_MAX];
    size_t got;
    px_error e = {0};
    int rc;
    assert_int_equal(net_client_send_raw(c, raw, n, &e), 0);
    rc = net_client_recv_frame(c, in, sizeof in, &got, 5000, &e);
    if (rc != 0)
        return rc;
    assert_int_equal(iso8583_unpack(&iso8583_unionpay_pos, in, got, rsp, &e), 0);
    return 0;
}

static void expect_echo_works(net_client *c, const char *stan)
{
    uint8_t out[PX_ISO_MSG_MAX];
    size_t n;
    iso8583_msg req, rsp;
    const uint8_t *v;
    size_t vn;
    build_echo(&req, stan);
    assert_int_equal(iso8583_pack_framed(&iso8583_unionpay_pos, &req, out, sizeof out, &n, NULL),
                     0);
    assert_int_equal(send_and_recv(c, out, n, &rsp), 0);
    assert_string_equal(rsp.mti, "0810");
    assert_int_equal(iso8583_get(&rsp, 39, &v, &vn), 0);
    assert_string_equal((const char *)v, "00");
    assert_int_equal(iso8583_get(&rsp, 11, &v, &vn), 0);
    assert_string_equal((const char *)v, stan);
    assert_int_equal(iso8583_get(&rsp, 41, &v, &vn), 0);
    assert_string_equal((const char *)v, "10000001");
    /* the response TPDU swaps destination and source */
    assert_int_equal(rsp.tpdu[1], 0x00);
    assert_int_equal(rsp.tpdu[2], 0x02);
    assert_int_equal(rsp.tpdu[3], 0x00);
    assert_int_equal(rsp.tpdu[4], 0x01);
}

static void test_echo_over_real_socket(void **state)
{
    net_client *c = connect_switch();
    expect_echo_works(c, "000001");
    expect_echo_works(c, "000002"); /* the connection stays open for more */
    net_client_close(c);
    assert_true(e2e_log_contains(&D, "switch listening on 127.0.0.1:"));
}

static void test_echo_from_the_cli(void **state)
{
    char exe[512], cmd[800];
    px_buf out;
    px_buf_init(&out, 1 << 20);
    e2e_binary("src/app/possum", exe, sizeof exe);
    snprintf(cmd, sizeof cmd, "%s pos echo --port %d --stan 000123 2>&1", exe, D.switch_port);
    assert_int_equal(e2e_run(cmd, &out), 0);
    assert_non_null(strstr(px_buf_str(&out), "answered 0810 with response code 00 (approved)"));
    px_buf_free(&out);
}

/* The value of one series in /metrics (matched at the start of a line), 0 when absent. */
static int64_t metric(const char *name_and_labels)
{
    px_buf body;
    long status = 0;
    const char *p;
    char needle[256];
    int64_t v = 0;
    px_buf_init(&body, 1 << 20);
    assert_int_equal(e2e_http(D.http_port, "GET", "/metrics", NULL, &status, &body), 0);
    assert_int_equal(status, 200);
    snprintf(needle, sizeof needle, "\n%s", name_and_labels);
    p = strstr(px_buf_str(&body), needle);
    if (p != NULL)
        v = strtoll(p + strlen(needle), NULL, 10);
    px_buf_free(&body);
    return v;
}

static void test_oversize_frame_refused_others_served(void **state)
{
    const uint8_t huge[2] = {0xFF, 0xF0}; /* announces 65520 bytes; the limit is 4096 */
    net_client *bad = connect_switch(), *good = connect_switch();
    iso8583_msg rsp;
    int64_t before =
        metric("possum_net_frames_rejected_total{listener=\"switch\",reason=\"oversize\"} ");
    assert_int_not_equal(send_and_recv(bad, huge, sizeof huge, &rsp), 0); /* closed */
    expect_echo_works(good, "000003");
    assert_int_equal(
        metric("possum_net_frames_rejected_total{listener=\"switch\",reason=\"oversize\"} "),
        before + 1);
    net_client_close(bad);
    net_client_close(good);
}

static void test_malformed_with_mti_gets_code_30(void **state)
{
    /* frame: TPDU, header, MTI 0200, bitmap claiming field 2 only, then a BCD length of 99
     * for a PAN of at most 19 digits */
    static const uint8_t msg[] = {0x00, 0x17, 0x60, 0x00, 0x01, 0x00, 0x02, 0x60, 0x31,
                                  0x00, 0x31, 0x00, 0x00, 0x02, 0x00, 0x40, 0x00, 0x00,
                                  0x00, 0x00, 0x00, 0x00, 0x00, 0x99, 0x12};
    net_client *c = connect_switch();
    iso8583_msg rsp;
    const uint8_t *v;
    size_t n;
    int64_t before = metric("possum_switch_format_errors_total{action=\"code30\"} ");
    assert_int_equal(send_and_recv(c, msg, sizeof msg, &rsp), 0);
    assert_string_equal(rsp.mti, "0210");
    assert_int_equal(iso8583_get(&rsp, 39, &v, &n), 0);
    assert_string_equal((const char *)v, "30");
    assert_int_equal(metric("possum_switch_format_errors_total{action=\"code30\"} "), before + 1);
    expect_echo_works(c, "000004"); /* the same connection goes on */
    net_client_close(c);
    assert_true(e2e_log_contains(&D, "field 2"));
}

static void test_unreadable_message_closes_connection(void **state)
{
    static const uint8_t junk[] = {0x00, 0x04, 'j', 'u', 'n', 'k'};
    net_client *bad = connect_switch(), *good = connect_switch();
    iso8583_msg rsp;
    int64_t before = metric("possum_switch_format_errors_total{action=\"closed\"} ");
    assert_int_not_equal(send_and_recv(bad, junk, sizeof junk, &rsp), 0);
    assert_int_equal(metric("possum_switch_format_errors_total{action=\"closed\"} "), before + 1);
    expect_echo_works(good, "000005");
    net_client_close(bad);
    net_client_close(good);
}

static void test_operator_endpoints(void **state)
{
    px_buf body;
    long status = 0;
    px_buf_init(&body, 1 << 20);
    assert_int_equal(e2e_http(D.http_port, "GET", "/healthz", NULL, &status, &body), 0);
    assert_int_equal(status, 200);
    assert_non_null(strstr(px_buf_str(&body), "\"ok\""));
    px_buf_reset(&body);
    assert_int_equal(e2e_http(D.http_port, "GET", "/nowhere", NULL, &status, &body), 0);
    assert_int_equal(status, 404);
    assert_non_null(strstr(px_buf_str(&body), "\"error\""));
    px_buf_reset(&body);
    assert_int_equal(e2e_http(D.http_port, "POST", "/v1/iso8583/decode", "{\"hex\": ", &status,
                              &body),
                     0);
    assert_int_equal(status, 400);
    assert_non_null(strstr(px_buf_str(&body), "\"code\":\"bad_json\""));
    px_buf_free(&body);
    assert_true(metric("possum_switch_messages_received_total ") > 0);
}

static void test_store_migrated(void **state)
{
    store_config cfg;
    store *st = NULL;
    int version = 0;
    px_error e = {0};
    store_config_default(&cfg);
    snprintf(cfg.path, sizeof cfg.path, "%s/possum.db", D.dir);
    assert_int_equal(store_open(&cfg, &st, &e), 0);
    assert_int_equal(store_schema_version(st, &version, &e), 0);
    assert_true(version >= 1);
    store_close(st);
}

/* Each configuration mistake is refused before anything starts, naming file, line and key. */
static void test_bad_config_named(void **state)
{
    static const struct {
        const char *ini, *expect;
    } cases[] = {
        {"[switch]\nenabled = true\nlisten = 127.0.0.1:99999\n", ":3: [switch] listen"},
        {"[switch]\nenabled = true\nmax_frame = lots\n", ":3: [switch] max_frame"},
        {"[switch]\nenabled = true\nlisen = 127.0.0.1:1\n", ":3: [switch] lisen: unknown key"},
        {"[swich]\nenabled = true\n", "[swich]: unknown section"},
        {"[store]\nbackend = oracle\n", ":2: [store] backend"},
    };
    char exe[512], path[600], cmd[1400];
    e2e_binary("src/app/possumd", exe, sizeof exe);
    snprintf(path, sizeof path, "%s/bad.ini", D.dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        px_buf out;
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(cases[i].ini, f);
        fclose(f);
        px_buf_init(&out, 1 << 16);
        snprintf(cmd, sizeof cmd, "%s -c %s --check 2>&1", exe, path);
        assert_int_equal(e2e_run(cmd, &out), 1);
        if (strstr(px_buf_str(&out), cases[i].expect) == NULL)
            fail_msg("case %zu: expected '%s' in '%s'", i, cases[i].expect, px_buf_str(&out));
        px_buf_free(&out);
    }
}

/* Occurrences of needle in the file at path. */
static int count_in_file(const char *path, const char *needle)
{
    char chunk[4096];
    size_t n;
    int count = 0;
    px_buf b;
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    px_buf_init(&b, 16 << 20);
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        assert_int_equal(px_buf_append(&b, chunk, n), 0);
    fclose(f);
    for (const char *p = px_buf_str(&b); (p = strstr(p, needle)) != NULL; p += strlen(needle))
        count++;
    px_buf_free(&b);
    return count;
}

/* A soft LMK (scrypt 2^10) dir/name.lmk with its audit log dir/name.audit. */
static void make_lmk(const char *dir, const char *name)
{
    char ini[512], exe[512], cmd[1200];
    px_buf out;
    FILE *f;
    snprintf(ini, sizeof ini, "%s/%s.ini", dir, name);
    f = fopen(ini, "w");
    assert_non_null(f);
    fprintf(f, "[hsm]\nlmk_file = %s/%s.lmk\naudit_file = %s/%s.audit\nlmk_scrypt_log2n = 10\n",
            dir, name, dir, name);
    assert_int_equal(fclose(f), 0);
    e2e_binary("src/app/possum", exe, sizeof exe);
    snprintf(cmd, sizeof cmd, "%s hsm init -c %s 2>&1", exe, ini);
    px_buf_init(&out, 1 << 16);
    if (e2e_run(cmd, &out) != 0)
        fail_msg("hsm init: %s", px_buf_str(&out));
    px_buf_free(&out);
}

/* Start a second node with extra, stop it cleanly; its log says whether it has needle. */
static int run_node(const char *extra, const char *needle)
{
    e2e_daemon n;
    int found;
    assert_int_equal(e2e_start(&n, extra), 0);
    assert_int_equal(e2e_stop(&n, SIGTERM, 15000), 0);
    found = e2e_log_contains(&n, needle);
    e2e_cleanup(&n);
    return found;
}

/* One LMK unlock per HSM per node: the switch, its key worker and phonepay take sessions
 * of the node's [hsm] (each audited under its own name), also when phonepay's hsm_* keys
 * name the same LMK by another path; a service naming another LMK gets a second core, and
 * the log says so. */
static void test_one_key_management_core(void **state)
{
    char dir[] = "/tmp/possum-e2e-hsm-XXXXXX", node[300], other[300], extra[2048], cmd[300];
    px_buf out;
    const char *open = "\"op\":\"hsm.open\"", *session = " session\"";
    assert_non_null(mkdtemp(dir));
    setenv("POSSUM_LMK_PASSPHRASE", "e2e core passphrase", 1);
    make_lmk(dir, "node");
    make_lmk(dir, "other");
    snprintf(node, sizeof node, "%s/node.audit", dir);
    snprintf(other, sizeof other, "%s/other.audit", dir);
    snprintf(extra, sizeof extra,
             "[hsm]\nlmk_file = %s/node.lmk\naudit_file = %s\n\n"
             "[phonepay]\nenabled = true\nhsm_lmk_file = %s/./node.lmk\nhsm_audit_file = %s\n",
             dir, node, dir, node);
    assert_false(run_node(extra, "second key-management core"));
    /* init, the node; a session each for the switch, its key worker and phonepay */
    assert_int_equal(count_in_file(node, open), 5);
    assert_int_equal(count_in_file(node, session), 3); /* no second unlock */
    assert_int_equal(count_in_file(node, "\"hsm.open\",\"caller\":\"switch:keys\""), 1);
    assert_int_equal(count_in_file(node, "\"hsm.open\",\"caller\":\"switch\""), 1);
    assert_int_equal(count_in_file(node, "\"hsm.open\",\"caller\":\"phonepay\""), 1);
    snprintf(extra, sizeof extra,
             "[hsm]\nlmk_file = %s/node.lmk\naudit_file = %s\n\n"
             "[phonepay]\nenabled = true\nhsm_lmk_file = %s/other.lmk\nhsm_audit_file = %s\n",
             dir, node, dir, other);
    assert_true(run_node(extra, "second key-management core"));
    assert_int_equal(count_in_file(node, open), 8);
    assert_int_equal(count_in_file(node, session), 5);
    /* init, the second core, phonepay's session of it */
    assert_int_equal(count_in_file(other, open), 3);
    assert_int_equal(count_in_file(other, session), 1);
    assert_int_equal(count_in_file(other, "\"hsm.open\",\"caller\":\"phonepay\""), 1);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    px_buf_init(&out, 1 << 10);
    assert_int_equal(e2e_run(cmd, &out), 0);
    px_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_over_real_socket),
        cmocka_unit_test(test_echo_from_the_cli),
        cmocka_unit_test(test_oversize_frame_refused_others_served),
        cmocka_unit_test(test_malformed_with_mti_gets_code_30),
        cmocka_unit_test(test_unreadable_message_closes_connection),
        cmocka_unit_test(test_operator_endpoints),
        cmocka_unit_test(test_store_migrated),
        cmocka_unit_test(test_bad_config_named),
        cmocka_unit_test(test_one_key_management_core),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
