/*
 * possum pos: a POS terminal on the command line. Today: `echo`, the network-management
 * echo test (0800 or 0820 with field 60.3 = 301) against the transaction platform.
 */
#include "app/cli.h"
#include "iso8583/iso8583.h"
#include "lib/buf.h"
#include "lib/str.h"
#include "lib/time.h"
#include "net/net.h"

#include <stdio.h>
#include <string.h>

const char cmd_pos_summary[] = "a POS terminal: echo test with the transaction platform";

static const uint8_t pos_tpdu[5] = {0x60, 0x00, 0x01, 0x00, 0x00};
static const uint8_t pos_header[6] = {0x60, 0x31, 0x00, 0x31, 0x00, 0x00};

/* Build the echo request: MTI, STAN, terminal and merchant ids, 60 = type 00, batch, 301. */
static int build_echo(iso8583_msg *m, const char *mti, const char *stan, const char *tid,
                      const char *mid, px_error *e)
{
    int rc;
    iso8583_msg_init(m, &iso8583_unionpay_pos);
    rc = iso8583_set_tpdu(m, pos_tpdu, sizeof pos_tpdu, e);
    if (rc == PX_OK)
        rc = iso8583_set_header(m, pos_header, sizeof pos_header, e);
    if (rc == PX_OK)
        rc = iso8583_set_mti(m, mti, e);
    if (rc == PX_OK)
        rc = iso8583_set(m, 11, stan, e);
    if (rc == PX_OK)
        rc = iso8583_set(m, 41, tid, e);
    if (rc == PX_OK)
        rc = iso8583_set(m, 42, mid, e);
    if (rc == PX_OK)
        rc = iso8583_set(m, 60, "00000000301", e);
    return rc;
}

static void print_dump(const char *title, const iso8583_msg *m)
{
    px_buf b;
    px_buf_init(&b, 64 * 1024);
    if (iso8583_dump(m, &b) == PX_OK)
        printf("%s\n%s", title, px_buf_str(&b));
    px_buf_free(&b);
}

/* Send one request and read its response; prints what a terminal operator would see. */
static int exchange(const char *host, int port, int64_t timeout_ms, const iso8583_msg *req,
                    iso8583_msg *rsp, int64_t *elapsed_ms, px_error *e)
{
    uint8_t out[PX_ISO_MSG_MAX], in[PX_ISO_MSG_MAX];
    size_t n, got;
    net_client *c = NULL;
    int64_t t0;
    int rc = iso8583_pack(&iso8583_unionpay_pos, req, out, sizeof out, &n, e);
    if (rc != PX_OK)
        return rc;
    if ((rc = net_init(e)) != PX_OK)
        return rc;
    t0 = px_mono_ms();
    rc = net_client_connect(host, port, NULL, timeout_ms, &c, e);
    if (rc == PX_OK)
        rc = net_client_send_frame(c, out, n, e);
    if (rc == PX_OK)
        rc = net_client_recv_frame(c, in, sizeof in, &got, timeout_ms, e);
    net_client_close(c);
    if (rc != PX_OK)
        return rc;
    *elapsed_ms = px_mono_ms() - t0;
    return iso8583_unpack(&iso8583_unionpay_pos, in, got, rsp, e);
}

static int pos_echo(int argc, char **argv)
{
    cli_opt opts[] = {
        {"host", 0, "transaction platform address (default 127.0.0.1)", NULL},
        {"port", 0, "its port (default 5000)", NULL},
        {"tid", 0, "terminal id, 8 characters (default 10000001)", NULL},
        {"mid", 0, "merchant id, 15 characters (default 898100000000001)", NULL},
        {"mti", 0, "0800 (default) or 0820", NULL},
        {"stan", 0, "system trace audit number (default 000001)", NULL},
        {"timeout-ms", 0, "how long to wait for the answer (default 5000)", NULL},
        {"verbose", 1, "print both messages field by field", NULL},
        {0, 0, 0, 0}};
    const char *host, *mti;
    int64_t port = 5000, timeout_ms = 5000, elapsed = 0;
    iso8583_msg req, rsp;
    const uint8_t *rc39;
    size_t n;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL, "possum pos echo [OPTIONS]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    host = cli_get(opts, "host") ? cli_get(opts, "host") : "127.0.0.1";
    mti = cli_get(opts, "mti") ? cli_get(opts, "mti") : "0800";
    if (strcmp(mti, "0800") != 0 && strcmp(mti, "0820") != 0)
        return cli_fail("--mti: '%s' is not 0800 or 0820", mti);
    if (cli_get(opts, "port") && px_parse_i64(cli_get(opts, "port"), 1, 65535, &port) != PX_OK)
        return cli_fail("--port: expected a number from 1 to 65535");
    if (cli_get(opts, "timeout-ms") &&
        px_parse_i64(cli_get(opts, "timeout-ms"), 1, 600000, &timeout_ms) != PX_OK)
        return cli_fail("--timeout-ms: expected a number from 1 to 600000");
    if (build_echo(&req, mti, cli_get(opts, "stan") ? cli_get(opts, "stan") : "000001",
                   cli_get(opts, "tid") ? cli_get(opts, "tid") : "10000001",
                   cli_get(opts, "mid") ? cli_get(opts, "mid") : "898100000000001", &e) != PX_OK)
        return cli_fail("%s", px_error_text(&e));
    printf("Terminal %s: sending echo test (%s) to %s:%lld\n",
           cli_get(opts, "tid") ? cli_get(opts, "tid") : "10000001", mti, host, (long long)port);
    if (cli_has(opts, "verbose"))
        print_dump("-- request --", &req);
    if (exchange(host, (int)port, timeout_ms, &req, &rsp, &elapsed, &e) != PX_OK)
        return cli_fail("echo failed: %s", px_error_text(&e));
    if (cli_has(opts, "verbose"))
        print_dump("-- response --", &rsp);
    if (iso8583_get(&rsp, 39, &rc39, &n) != PX_OK)
        return cli_fail("the %s answer carries no response code", rsp.mti);
    printf("Platform answered %s with response code %s (%s) in %lld ms\n", rsp.mti,
           (const char *)rc39, strcmp((const char *)rc39, "00") == 0 ? "approved" : "refused",
           (long long)elapsed);
    return strcmp((const char *)rc39, "00") == 0 ? CLI_OK : CLI_FAIL;
}

int cmd_pos(int argc, char **argv)
{
    static const cli_command sub[] = {
        {"echo", pos_echo, "echo test (network management 301) with the platform"},
        {0, 0, 0}};
    return cli_dispatch("possum pos", sub, argc, argv);
}
