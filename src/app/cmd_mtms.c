/*
 * possum mtms: the material tracking system's administration, on its database ([store] of
 * the MTMS's config; [mtms] tls_ca and tls_crl check KMS certificates; docs/mtms.md):
 *   customer add|list   customers: code, name, KMS address and certificate
 *   import              a production order's serial numbers from CSV (all or nothing)
 *   serials             the serial-number table (of one order with --order)
 *   status S            one serial: customer, status, who confirmed, last error
 *   audit               the audit trail (of one serial with --serial)
 *   outbox              TKs on their way to KMSes (--pending: only those still waiting)
 */
#include "app/cli.h"
#include "app/cli_env.h"
#include "host/mtms/mtms.h"
#include "lib/str.h"
#include "lib/time.h"
#include "net/net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cmd_mtms_summary[] =
    "material tracking system: customers, CSV import, serials, audit, outbox";

#define DEFAULT_CONFIG "etc/mtms.ini"
/* clang-format off */
#define CONFIG_OPT {"config", 0, "the MTMS's configuration (default etc/mtms.ini)", NULL}
/* clang-format on */

typedef struct mtms_cli {
    cli_env env;
    pki_trust *trust;
    mtms *m;
} mtms_cli;

static void cli_close(mtms_cli *x)
{
    mtms_close(x->m);
    pki_trust_free(x->trust);
    cli_env_close(&x->env);
}

static const cli_env_spec mtms_env = {DEFAULT_CONFIG, NULL, NULL};

static int cli_open(mtms_cli *x, const cli_opt *opts, px_error *e)
{
    net_listener_config lc;
    int rc;
    x->trust = NULL;
    x->m = NULL;
    cli_env_init(&x->env, &mtms_env);
    rc = cli_env_open(&x->env, opts, CLI_ENV_CONFIG, e);
    if (rc == PX_OK && px_config_has_section(x->env.ini, "mtms")) {
        net_listener_config_defaults(&lc, "mtms");
        rc = net_listener_config_bind(x->env.ini, "mtms", NULL, &lc, e); /* paths resolved */
        if (rc == PX_OK && lc.tls.ca[0] != 0 && lc.tls.crl[0] != 0)
            rc = pki_trust_load(lc.tls.ca, lc.tls.crl, &x->trust, e);
    }
    if (rc == PX_OK)
        rc = cli_env_open(&x->env, opts, CLI_ENV_STORE, e);
    if (rc == PX_OK)
        rc = mtms_open(x->env.st, x->trust, &x->m, e);
    return rc;
}

static const char *actor(void)
{
    static char a[64];
    snprintf(a, sizeof a, "cli:%s", getenv("USER") ? getenv("USER") : "?");
    return a;
}

static int parse(int argc, char **argv, cli_opt *opts, const char **pos, size_t maxpos,
                 size_t *npos, const char *synopsis, int *done)
{
    int rc = cli_parse(argc, argv, 1, opts, pos, maxpos, npos, synopsis);
    *done = rc != CLI_OK;
    return rc < 0 ? CLI_OK : rc;
}

/* ---- customers ---- */

static int customer_add(int argc, char **argv)
{
    cli_opt opts[] = {CONFIG_OPT,
                      {"code", 0, "customer code", NULL},
                      {"name", 0, "customer name (UTF-8)", NULL},
                      {"kms-url", 0, "the customer's KMS: https://host:port", NULL},
                      {"kms-cert", 0, "the KMS's receiving certificate (PEM, from the CA)", NULL},
                      {0, 0, 0, 0}};
    mtms_cli x;
    char *pem = NULL;
    px_error e = {0};
    int done, rc = parse(argc, argv, opts, NULL, 0, NULL,
                         "possum mtms customer add --code C --name N --kms-url URL --kms-cert FILE",
                         &done);
    if (done)
        return rc;
    if (!cli_has(opts, "code") || !cli_has(opts, "name") || !cli_has(opts, "kms-url") ||
        !cli_has(opts, "kms-cert"))
        return cli_usage_error("mtms customer add: --code, --name, --kms-url and --kms-cert");
    if (pki_read_file(cli_get(opts, "kms-cert"), MTMS_KMS_CERT_MAX - 1, &pem, NULL, &e) != PX_OK)
        return cli_fail("--kms-cert: %s", px_error_text(&e));
    if (cli_open(&x, opts, &e) != PX_OK ||
        mtms_customer_put(x.m, cli_get(opts, "code"), cli_get(opts, "name"),
                          cli_get(opts, "kms-url"), pem, actor(), &e) != PX_OK)
        rc = cli_fail("mtms customer add: %s", px_error_text(&e));
    else
        printf("customer %s (%s): KMS %s\n", cli_get(opts, "code"), cli_get(opts, "name"),
               cli_get(opts, "kms-url"));
    if (rc == CLI_OK && x.trust == NULL)
        fprintf(stderr,
                "possum: warning: no [mtms] tls_ca/tls_crl: the KMS certificate was parsed, "
                "not checked against the CA\n");
    free(pem);
    cli_close(&x);
    return rc;
}

static int customer_one(void *ud, const mtms_customer *c)
{
    (void)ud;
    printf("%-12s %-32s %-36s %s %.16s...\n", c->code, c->name, c->kms_address, c->kms_cn,
           c->kms_fp);
    return 0;
}

static int customer_list(int argc, char **argv)
{
    cli_opt opts[] = {CONFIG_OPT, {0, 0, 0, 0}};
    mtms_cli x;
    px_error e = {0};
    int done, rc = parse(argc, argv, opts, NULL, 0, NULL, "possum mtms customer list", &done);
    if (done)
        return rc;
    if (cli_open(&x, opts, &e) != PX_OK ||
        mtms_customer_list(x.env.st, customer_one, NULL, &e) != PX_OK)
        rc = cli_fail("mtms customer list: %s", px_error_text(&e));
    cli_close(&x);
    return rc;
}

static const cli_command customer_commands[] = {
    {"add", customer_add, "add or update a customer and its KMS"},
    {"list", customer_list, "every customer"},
    {0, 0, 0}};

static int mtms_customer_cmd(int argc, char **argv)
{
    return cli_dispatch("possum mtms customer", customer_commands, argc, argv);
}

/* ---- serials ---- */

static int mtms_import_cmd(int argc, char **argv)
{
    cli_opt opts[] = {
        CONFIG_OPT, {"order", 0, "the production order's number", NULL}, {0, 0, 0, 0}};
    const char *pos[1];
    size_t npos = 0;
    mtms_cli x;
    mtms_import_report r;
    px_error e = {0};
    int done,
        rc = parse(argc, argv, opts, pos, 1, &npos,
                   "possum mtms import --order NO FILE.csv   (header: serial,customer)", &done);
    if (done)
        return rc;
    if (npos != 1 || !cli_has(opts, "order"))
        return cli_usage_error("mtms import: --order NO and the CSV file");
    memset(&r, 0, sizeof r);
    if (cli_open(&x, opts, &e) != PX_OK) {
        rc = cli_fail("mtms import: %s", px_error_text(&e));
    } else if (mtms_import_csv(x.m, cli_get(opts, "order"), pos[0], actor(), &r, &e) != PX_OK) {
        for (size_t i = 0; i < r.nerrors; i++)
            fprintf(stderr, "%s: %s\n", pos[0], r.errors[i]);
        if (r.bad > r.nerrors)
            fprintf(stderr, "%s: ... and %zu more bad lines\n", pos[0], r.bad - r.nerrors);
        rc = cli_fail("mtms import: %s", px_error_text(&e));
    } else {
        printf("order %s: %zu serial numbers imported from %s\n", cli_get(opts, "order"),
               r.imported, pos[0]);
    }
    cli_close(&x);
    return rc;
}

static void print_serial(const mtms_serial_info *s)
{
    char when[32] = "-";
    if (s->updated_ms > 0)
        px_time_iso8601(s->updated_ms, when, sizeof when);
    printf("%-20s %-12s %-14s %-12s TK %-6s %s%s%s\n", s->serial, s->customer_code, s->order_no,
           s->status, s->tk_kcv[0] ? s->tk_kcv : "-", when,
           s->confirmed_by[0] ? "  confirmed by " : "", s->confirmed_by);
    if (s->last_error[0])
        printf("    last error: %s\n", s->last_error);
}

static int serial_one(void *ud, const mtms_serial_info *s)
{
    (*(size_t *)ud)++;
    print_serial(s);
    return 0;
}

static int mtms_serials_cmd(int argc, char **argv)
{
    cli_opt opts[] = {CONFIG_OPT, {"order", 0, "only this production order", NULL}, {0, 0, 0, 0}};
    mtms_cli x;
    size_t n = 0;
    px_error e = {0};
    int done,
        rc = parse(argc, argv, opts, NULL, 0, NULL, "possum mtms serials [--order NO]", &done);
    if (done)
        return rc;
    if (cli_open(&x, opts, &e) != PX_OK ||
        mtms_serial_list(x.env.st, cli_get(opts, "order"), serial_one, &n, &e) != PX_OK)
        rc = cli_fail("mtms serials: %s", px_error_text(&e));
    else
        printf("%zu serial number%s\n", n, n == 1 ? "" : "s");
    cli_close(&x);
    return rc;
}

static int mtms_status_cmd(int argc, char **argv)
{
    cli_opt opts[] = {CONFIG_OPT, {0, 0, 0, 0}};
    const char *pos[1];
    size_t npos = 0;
    mtms_cli x;
    mtms_serial_info s;
    px_error e = {0};
    int done, rc = parse(argc, argv, opts, pos, 1, &npos, "possum mtms status SERIAL", &done);
    if (done)
        return rc;
    if (npos != 1)
        return cli_usage_error("mtms status: give a serial number");
    if (cli_open(&x, opts, &e) != PX_OK || mtms_serial_get(x.env.st, pos[0], &s, &e) != PX_OK)
        rc = cli_fail("mtms status: %s", px_error_text(&e));
    else
        print_serial(&s);
    cli_close(&x);
    return rc;
}

static int audit_one(void *ud, const mtms_audit_row *r)
{
    char when[32];
    (void)ud;
    px_time_iso8601(r->ts_ms, when, sizeof when);
    printf("%s %-7s %-16s %-14s %-8s %-24s %s\n", when, r->result, r->action, r->serial,
           r->customer_code, r->actor, r->detail);
    return 0;
}

static int mtms_audit_cmd(int argc, char **argv)
{
    cli_opt opts[] = {CONFIG_OPT, {"serial", 0, "only this serial number", NULL}, {0, 0, 0, 0}};
    mtms_cli x;
    px_error e = {0};
    int done, rc = parse(argc, argv, opts, NULL, 0, NULL, "possum mtms audit [--serial S]", &done);
    if (done)
        return rc;
    if (cli_open(&x, opts, &e) != PX_OK ||
        mtms_audit_list(x.env.st, cli_get(opts, "serial"), audit_one, NULL, &e) != PX_OK)
        rc = cli_fail("mtms audit: %s", px_error_text(&e));
    cli_close(&x);
    return rc;
}

static int outbox_one(void *ud, const mtms_outbox_item *i)
{
    char when[32];
    (void)ud;
    px_time_iso8601(i->state[0] == 'p' ? i->next_ms : i->done_ms, when, sizeof when);
    printf("%-20s %-12s %-12s TK %-6s attempts %-3lld %s %s%s%s\n", i->serial, i->customer_code,
           i->state, i->tk_kcv, (long long)i->attempts, i->state[0] == 'p' ? "next" : "done", when,
           i->last_error[0] ? "  " : "", i->last_error);
    return 0;
}

static int mtms_outbox_cmd(int argc, char **argv)
{
    cli_opt opts[] = {
        CONFIG_OPT, {"pending", 1, "only TKs still waiting for their KMS", NULL}, {0, 0, 0, 0}};
    mtms_cli x;
    px_error e = {0};
    int done, rc = parse(argc, argv, opts, NULL, 0, NULL, "possum mtms outbox [--pending]", &done);
    if (done)
        return rc;
    if (cli_open(&x, opts, &e) != PX_OK ||
        mtms_outbox_list(x.env.st, cli_has(opts, "pending"), outbox_one, NULL, &e) != PX_OK)
        rc = cli_fail("mtms outbox: %s", px_error_text(&e));
    cli_close(&x);
    return rc;
}

static const cli_command mtms_commands[] = {
    {"customer", mtms_customer_cmd, "customers: add, list"},
    {"import", mtms_import_cmd, "import a production order's serial numbers from CSV"},
    {"serials", mtms_serials_cmd, "the serial-number table"},
    {"status", mtms_status_cmd, "one serial: customer, status, who confirmed, last error"},
    {"audit", mtms_audit_cmd, "the audit trail"},
    {"outbox", mtms_outbox_cmd, "TKs on their way to the customers' KMSes"},
    {0, 0, 0}};

int cmd_mtms(int argc, char **argv)
{
    char *args[64];
    if (argc > 64)
        return cli_usage_error("mtms: too many arguments");
    for (int i = 0; i < argc; i++) /* -c CONFIG is --config CONFIG */
        args[i] = strcmp(argv[i], "-c") == 0 ? (char *)"--config" : argv[i];
    return cli_dispatch("possum mtms", mtms_commands, argc, args);
}
