/*
 * possum operator: the operator terminal of seed 001 (claims 1-2; docs/mtms.md).
 *
 *   possum operator [run]   the whole flow: read the PIN pad's serial, show the customer the
 *                           MTMS holds, ask to confirm; if not, ask for a customer code, show
 *                           its name, ask again; then the PIN pad exports a fresh TK for that
 *                           customer's KMS and TK, serial and code go up together.
 *                           Interactive on a terminal; --confirm yes|no, --customer CODE and
 *                           --confirm-again yes|no answer in advance (scripts, tests); without
 *                           a terminal the answers are read line by line from stdin.
 *   read | lookup | customer | upload   each step alone
 *   personalise | csr | install         the PIN pad's device key and certificate (factory)
 * The MTMS settings come from flags or from --config FILE, section [operator] (mtms, tls_ca,
 * tls_cert, tls_key, tls_crl, pinpad, timeout_ms).
 */
#include "app/cli.h"
#include "device/operator/operator.h"
#include "device/pinpad/tk.h"
#include "device/pos/pos.h"
#include "lib/config.h"
#include "lib/str.h"
#include "pki/pki.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char cmd_operator_summary[] =
    "operator terminal: confirm the customer, send a PIN pad's TK to the MTMS";

/* clang-format off */
#define MTMS_OPTS                                                                                  \
    {"config", 0, "a file with an [operator] section (mtms, tls_*, pinpad)", NULL},                \
    {"mtms", 0, "the MTMS: https://host:port", NULL},                                              \
    {"tls-ca", 0, "the CA certificate", NULL},                                                     \
    {"tls-cert", 0, "the operator's certificate (operator:NAME)", NULL},                           \
    {"tls-key", 0, "its key", NULL},                                                               \
    {"tls-crl", 0, "the CA's CRL, to check the MTMS's certificate too", NULL},                     \
    {"pinpad", 0, "the POS terminal's directory (its PIN pad)", NULL},                             \
    {"timeout-ms", 0, "how long to wait for the MTMS (default 10000)", NULL}
/* clang-format on */

/* Flags over the [operator] section of --config. */
static int load_config(const cli_opt *opts, operator_config *c)
{
    static const char *const keys[][2] = {{"mtms", "mtms"},
                                          {"tls-ca", "tls_ca"},
                                          {"tls-cert", "tls_cert"},
                                          {"tls-key", "tls_key"},
                                          {"tls-crl", "tls_crl"},
                                          {"pinpad", "pinpad"},
                                          {"timeout-ms", "timeout_ms"}};
    char *dst[] = {c->mtms_url, c->tls.ca,     c->tls.cert, c->tls.key,
                   c->tls.crl,  c->pinpad_dir, NULL};
    size_t sizes[] = {sizeof c->mtms_url,
                      sizeof c->tls.ca,
                      sizeof c->tls.cert,
                      sizeof c->tls.key,
                      sizeof c->tls.crl,
                      sizeof c->pinpad_dir,
                      0};
    px_config *ini = NULL;
    px_error e = {0};
    memset(c, 0, sizeof *c);
    c->timeout_ms = 10000;
    if (cli_get(opts, "config") != NULL &&
        px_config_load_file(cli_get(opts, "config"), &ini, &e) != PX_OK)
        return cli_fail("%s", px_error_text(&e));
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *v = cli_get(opts, keys[i][0]);
        if (v == NULL && ini != NULL)
            v = px_config_get(ini, "operator", keys[i][1]);
        if (v == NULL)
            continue;
        if (dst[i] != NULL && px_strlcpy(dst[i], v, sizes[i]) != PX_OK) {
            px_config_free(ini);
            return cli_usage_error("--%s: too long", keys[i][0]);
        }
        if (dst[i] == NULL && px_parse_i64(v, 100, 600000, &c->timeout_ms) != PX_OK) {
            px_config_free(ini);
            return cli_usage_error("--timeout-ms: a number from 100 to 600000");
        }
    }
    px_config_free(ini);
    return CLI_OK;
}

static int open_session(const cli_opt *opts, int need_mtms, int need_pinpad, operator_session **s)
{
    operator_config c;
    px_error e = {0};
    int rc = load_config(opts, &c);
    if (rc != CLI_OK)
        return rc;
    if (need_mtms && c.mtms_url[0] == 0)
        return cli_usage_error("give the MTMS: --mtms https://HOST:PORT (or [operator] mtms)");
    if (need_pinpad && c.pinpad_dir[0] == 0)
        return cli_usage_error("give the PIN pad: --pinpad DIR (the POS terminal's directory)");
    if (operator_open(&c, s, &e) != PX_OK)
        return cli_fail("%s", px_error_text(&e));
    return CLI_OK;
}

static int parse(int argc, char **argv, cli_opt *opts, const char *synopsis, int *done)
{
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL, synopsis);
    *done = rc != CLI_OK;
    return rc < 0 ? CLI_OK : rc;
}

/* ---- the user interface: a person at a terminal, or answers given in advance ---- */

typedef struct answers {
    const char *list[3]; /* confirm, customer code, confirm again */
    size_t next, n;
    int interactive;
} answers;

static void ui_show(void *ud, const char *text)
{
    (void)ud;
    printf("%s\n", text);
    fflush(stdout);
}

static int read_line(const char *prompt, char *out, size_t outsz)
{
    size_t n;
    printf("%s", prompt);
    fflush(stdout);
    if (fgets(out, (int)outsz, stdin) == NULL)
        return PX_EIO;
    n = strcspn(out, "\r\n");
    out[n] = 0;
    return PX_OK;
}

static int ui_confirm(void *ud, const char *question)
{
    answers *a = ud;
    char line[32];
    const char *ans;
    char q[300];
    snprintf(q, sizeof q, "%s [y/n] ", question);
    if (a->next < a->n) {
        ans = a->list[a->next++];
        printf("%s%s\n", q, ans);
    } else if (a->n > 0) {
        printf("%s(no answer given: cancelled)\n", q);
        return -1;
    } else {
        if (read_line(q, line, sizeof line) != PX_OK)
            return -1;
        ans = line;
        if (!a->interactive)
            printf("%s\n", ans);
    }
    if (strcmp(ans, "y") == 0 || strcmp(ans, "yes") == 0 || strcmp(ans, "Y") == 0)
        return 1;
    if (strcmp(ans, "n") == 0 || strcmp(ans, "no") == 0 || strcmp(ans, "N") == 0)
        return 0;
    return -1;
}

static int ui_ask(void *ud, const char *prompt, char *out, size_t outsz)
{
    answers *a = ud;
    if (a->next < a->n) {
        px_strlcpy(out, a->list[a->next++], outsz);
        printf("%s%s\n", prompt, out);
        return PX_OK;
    }
    if (a->n > 0) {
        printf("%s(no customer code given: cancelled)\n", prompt);
        return PX_EPERM;
    }
    if (read_line(prompt, out, outsz) != PX_OK || out[0] == 0)
        return PX_EPERM;
    if (!a->interactive)
        printf("%s\n", out);
    return PX_OK;
}

static int op_run(int argc, char **argv)
{
    cli_opt opts[] = {MTMS_OPTS,
                      {"confirm", 0, "yes|no: the answer to the first question", NULL},
                      {"customer", 0, "the customer code to type after 'no'", NULL},
                      {"confirm-again", 0, "yes|no: the answer for that customer", NULL},
                      {0, 0, 0, 0}};
    operator_session *s = NULL;
    operator_result r;
    answers a;
    operator_ui ui = {ui_show, ui_confirm, ui_ask, &a};
    px_error e = {0};
    int done,
        rc = parse(argc, argv, opts,
                   "possum operator [run] --mtms URL --tls-ca CA --tls-cert CRT --tls-key KEY "
                   "--pinpad DIR [--confirm yes|no [--customer CODE --confirm-again yes|no]]",
                   &done);
    if (done)
        return rc;
    memset(&a, 0, sizeof a);
    a.interactive = isatty(STDIN_FILENO);
    if (cli_has(opts, "confirm")) {
        a.list[a.n++] = cli_get(opts, "confirm");
        if (cli_has(opts, "customer"))
            a.list[a.n++] = cli_get(opts, "customer");
        if (cli_has(opts, "confirm-again"))
            a.list[a.n++] = cli_get(opts, "confirm-again");
    } else if (cli_has(opts, "customer") || cli_has(opts, "confirm-again")) {
        return cli_usage_error("operator: --customer and --confirm-again follow --confirm no");
    }
    if ((rc = open_session(opts, 1, 1, &s)) != CLI_OK)
        return rc;
    if (operator_run(s, &ui, &r, &e) != PX_OK)
        rc = cli_fail("operator: %s", px_error_text(&e));
    operator_close(s);
    return rc;
}

static int op_read(int argc, char **argv)
{
    cli_opt opts[] = {MTMS_OPTS, {0, 0, 0, 0}};
    operator_session *s = NULL;
    char serial[PX_PKI_NAME_MAX];
    px_error e = {0};
    int done, rc = parse(argc, argv, opts, "possum operator read --pinpad DIR", &done);
    if (done)
        return rc;
    if ((rc = open_session(opts, 0, 1, &s)) != CLI_OK)
        return rc;
    if (operator_read_serial(s, serial, &e) != PX_OK)
        rc = cli_fail("operator read: %s", px_error_text(&e));
    else
        printf("%s\n", serial);
    operator_close(s);
    return rc;
}

static int op_lookup(int argc, char **argv)
{
    cli_opt opts[] = {MTMS_OPTS,
                      {"serial", 0, "the serial number (default: read the PIN pad)", NULL},
                      {0, 0, 0, 0}};
    operator_session *s = NULL;
    operator_customer c;
    char serial[PX_PKI_NAME_MAX], status[16];
    px_error e = {0};
    int done, rc = parse(argc, argv, opts, "possum operator lookup (--serial S | --pinpad DIR) ...",
                         &done);
    if (done)
        return rc;
    if ((rc = open_session(opts, 1, !cli_has(opts, "serial"), &s)) != CLI_OK)
        return rc;
    if (cli_has(opts, "serial"))
        px_strlcpy(serial, cli_get(opts, "serial"), sizeof serial);
    else if (operator_read_serial(s, serial, &e) != PX_OK)
        rc = cli_fail("operator lookup: %s", px_error_text(&e));
    if (rc == CLI_OK && operator_lookup_serial(s, serial, &c, status, &e) != PX_OK)
        rc = cli_fail("operator lookup: %s", px_error_text(&e));
    else if (rc == CLI_OK)
        printf("serial %s: customer %s  %s  (status %s)\n", serial, c.code, c.name, status);
    operator_customer_clear(&c);
    operator_close(s);
    return rc;
}

static int op_customer(int argc, char **argv)
{
    cli_opt opts[] = {MTMS_OPTS, {"code", 0, "the customer code", NULL}, {0, 0, 0, 0}};
    operator_session *s = NULL;
    operator_customer c;
    px_error e = {0};
    int done, rc = parse(argc, argv, opts, "possum operator customer --code C ...", &done);
    if (done)
        return rc;
    if (!cli_has(opts, "code"))
        return cli_usage_error("operator customer: --code C");
    if ((rc = open_session(opts, 1, 0, &s)) != CLI_OK)
        return rc;
    memset(&c, 0, sizeof c);
    if (operator_lookup_customer(s, cli_get(opts, "code"), &c, &e) != PX_OK)
        rc = cli_fail("operator customer: %s", px_error_text(&e));
    else
        printf("customer %s  %s\n", c.code, c.name);
    operator_customer_clear(&c);
    operator_close(s);
    return rc;
}

static int op_upload(int argc, char **argv)
{
    cli_opt opts[] = {MTMS_OPTS,
                      {"customer", 0, "the customer code the operator confirmed", NULL},
                      {"yes", 1, "the operator confirmed that customer (required)", NULL},
                      {0, 0, 0, 0}};
    operator_session *s = NULL;
    operator_customer c;
    operator_upload_result r;
    char serial[PX_PKI_NAME_MAX];
    px_error e = {0};
    int done, rc = parse(argc, argv, opts,
                         "possum operator upload --pinpad DIR --customer C --yes ...", &done);
    if (done)
        return rc;
    if (!cli_has(opts, "customer") || !cli_has(opts, "yes"))
        return cli_usage_error("operator upload: --customer C and --yes (the operator confirmed)");
    if ((rc = open_session(opts, 1, 1, &s)) != CLI_OK)
        return rc;
    memset(&c, 0, sizeof c);
    if (operator_read_serial(s, serial, &e) != PX_OK ||
        operator_lookup_customer(s, cli_get(opts, "customer"), &c, &e) != PX_OK ||
        operator_upload(s, serial, &c, &r, &e) != PX_OK)
        rc = cli_fail("operator upload: %s", px_error_text(&e));
    else
        printf("TK (check value %s) of %s sent for customer %s%s%s%s\n", r.tk_kcv, serial, c.code,
               r.reassociated_from[0] ? "; re-associated from " : "", r.reassociated_from,
               r.duplicate ? " (already there)" : "");
    operator_customer_clear(&c);
    operator_close(s);
    return rc;
}

/* ---- the PIN pad's device key and certificate (factory personalisation) ---- */

static int open_pinpad(const char *dir, pos_terminal **t)
{
    pos_config pc;
    px_error e = {0};
    pos_config_defaults(&pc);
    px_strlcpy(pc.data_dir, dir, sizeof pc.data_dir);
    snprintf(pc.serial, sizeof pc.serial, "PP%s", pc.tid);
    if (pos_config_load(&pc, &e) != PX_OK || pos_open(&pc, t, &e) != PX_OK)
        return cli_fail("PIN pad in %s: %s", dir, px_error_text(&e));
    return CLI_OK;
}

static int op_csr(int argc, char **argv)
{
    cli_opt opts[] = {{"pinpad", 0, "the POS terminal's directory", NULL},
                      {"out", 0, "where to write the certificate request (PEM)", NULL},
                      {0, 0, 0, 0}};
    pos_terminal *t = NULL;
    char *csr = NULL;
    px_error e = {0};
    int done, rc = parse(argc, argv, opts, "possum operator csr --pinpad DIR --out FILE", &done),
              r2;
    if (done)
        return rc;
    if (!cli_has(opts, "pinpad") || !cli_has(opts, "out"))
        return cli_usage_error("operator csr: --pinpad DIR --out FILE");
    if ((rc = open_pinpad(cli_get(opts, "pinpad"), &t)) != CLI_OK)
        return rc;
    r2 = tk_device_key_create(pos_pinpad(t), &csr, &e);
    if (r2 == PX_EEXIST)
        r2 = tk_device_csr(pos_pinpad(t), &csr, &e);
    if (r2 != PX_OK || pki_write_file(cli_get(opts, "out"), csr, strlen(csr), 0644, &e) != PX_OK)
        rc = cli_fail("operator csr: %s", px_error_text(&e));
    else
        printf("certificate request of PIN pad %s in %s\n", pinpad_serial(pos_pinpad(t)),
               cli_get(opts, "out"));
    free(csr);
    pos_close(t);
    return rc;
}

static int op_install(int argc, char **argv)
{
    cli_opt opts[] = {{"pinpad", 0, "the POS terminal's directory", NULL},
                      {"cert", 0, "the device certificate the CA issued", NULL},
                      {"ca", 0, "the CA certificate (the PIN pad's trust anchor)", NULL},
                      {"crl", 0, "the CA's CRL (checks the certificate too)", NULL},
                      {0, 0, 0, 0}};
    pos_terminal *t = NULL;
    char *cert = NULL, *ca = NULL, *crl = NULL;
    px_error e = {0};
    int done, rc = parse(argc, argv, opts,
                         "possum operator install --pinpad DIR --cert FILE --ca FILE [--crl FILE]",
                         &done);
    if (done)
        return rc;
    if (!cli_has(opts, "pinpad") || !cli_has(opts, "cert") || !cli_has(opts, "ca"))
        return cli_usage_error("operator install: --pinpad DIR --cert FILE --ca FILE");
    if (pki_read_file(cli_get(opts, "cert"), PX_PKI_PEM_MAX, &cert, NULL, &e) != PX_OK ||
        pki_read_file(cli_get(opts, "ca"), PX_PKI_PEM_MAX, &ca, NULL, &e) != PX_OK ||
        (cli_has(opts, "crl") &&
         pki_read_file(cli_get(opts, "crl"), PX_PKI_CRL_MAX, &crl, NULL, &e) != PX_OK))
        rc = cli_fail("operator install: %s", px_error_text(&e));
    if (rc == CLI_OK && (rc = open_pinpad(cli_get(opts, "pinpad"), &t)) == CLI_OK) {
        if (tk_device_install(pos_pinpad(t), cert, ca, crl, &e) != PX_OK)
            rc = cli_fail("operator install: %s", px_error_text(&e));
        else
            printf("PIN pad %s: device certificate and CA installed\n",
                   pinpad_serial(pos_pinpad(t)));
        pos_close(t);
    }
    free(cert);
    free(ca);
    free(crl);
    return rc;
}

/* The factory shortcut with the CA at hand: device key, certificate and CA in one go. */
static int op_personalise(int argc, char **argv)
{
    cli_opt opts[] = {{"pinpad", 0, "the POS terminal's directory", NULL},
                      {"ca-dir", 0, "the CA's directory (possum ca init)", NULL},
                      {"days", 0, "validity of the device certificate (default 3650)", NULL},
                      {0, 0, 0, 0}};
    pos_terminal *t = NULL;
    pki_ca *ca = NULL;
    pki_issue_req r;
    pki_cert_info ci;
    char *csr = NULL, *cert = NULL, *cacert = NULL, *crl = NULL, path[PX_PATH_MAX];
    px_error e = {0};
    int done, rc = parse(argc, argv, opts, "possum operator personalise --pinpad DIR --ca-dir DIR",
                         &done);
    if (done)
        return rc;
    if (!cli_has(opts, "pinpad") || !cli_has(opts, "ca-dir"))
        return cli_usage_error("operator personalise: --pinpad DIR --ca-dir DIR");
    memset(&r, 0, sizeof r);
    r.role = PKI_ROLE_PINPAD;
    r.purpose = PKI_PURPOSE_DEVICE;
    r.days = 3650;
    if (cli_has(opts, "days") &&
        px_parse_i64(cli_get(opts, "days"), 1, PX_PKI_DAYS_MAX, &r.days) != PX_OK)
        return cli_usage_error("--days: 1 to %d", PX_PKI_DAYS_MAX);
    if ((rc = open_pinpad(cli_get(opts, "pinpad"), &t)) != CLI_OK)
        return rc;
    r.name = pinpad_serial(pos_pinpad(t));
    if (pki_ca_open(cli_get(opts, "ca-dir"), &ca, &e) != PX_OK ||
        tk_device_key_create(pos_pinpad(t), &csr, &e) != PX_OK)
        rc = cli_fail("operator personalise: %s", px_error_text(&e));
    if (rc == CLI_OK) {
        r.csr_pem = csr;
        snprintf(path, sizeof path, "%s/ca.crt", cli_get(opts, "ca-dir"));
        if (pki_ca_issue(ca, &r, &cert, NULL, &ci, &e) != PX_OK ||
            pki_read_file(path, PX_PKI_PEM_MAX, &cacert, NULL, &e) != PX_OK)
            rc = cli_fail("operator personalise: %s", px_error_text(&e));
    }
    if (rc == CLI_OK) {
        snprintf(path, sizeof path, "%s/crl.pem", cli_get(opts, "ca-dir"));
        if (pki_read_file(path, PX_PKI_CRL_MAX, &crl, NULL, &e) != PX_OK ||
            tk_device_install(pos_pinpad(t), cert, cacert, crl, &e) != PX_OK)
            rc = cli_fail("operator personalise: %s", px_error_text(&e));
        else
            printf("PIN pad %s personalised: device certificate %s (serial %s)\n", r.name, ci.cn,
                   ci.serial);
    }
    free(csr);
    free(cert);
    free(cacert);
    free(crl);
    pki_ca_close(ca);
    pos_close(t);
    return rc;
}

static const cli_command operator_commands[] = {
    {"run", op_run, "the whole flow of claims 1-2 (interactive, or answers as flags)"},
    {"read", op_read, "S1: the PIN pad's serial number"},
    {"lookup", op_lookup, "S2: the customer the MTMS holds for a serial"},
    {"customer", op_customer, "claim 2: the name of a customer code"},
    {"upload", op_upload, "S5: export the TK for a confirmed customer and send it up"},
    {"personalise", op_personalise,
     "factory: the PIN pad's device key and certificate from a local CA"},
    {"csr", op_csr, "factory: the PIN pad's device key and its certificate request"},
    {"install", op_install, "factory: install the device certificate and the CA"},
    {0, 0, 0}};

int cmd_operator(int argc, char **argv)
{
    char *args[64];
    if (argc > 63)
        return cli_usage_error("operator: too many arguments");
    /* `possum operator --mtms ...` (no step named) is `possum operator run --mtms ...` */
    if (argc < 2 || (strncmp(argv[1], "--", 2) == 0 && strcmp(argv[1], "--help") != 0)) {
        args[0] = argv[0];
        args[1] = (char *)"run";
        for (int i = 1; i < argc; i++)
            args[i + 1] = strcmp(argv[i], "-c") == 0 ? (char *)"--config" : argv[i];
        return cli_dispatch("possum operator", operator_commands, argc + 1, args);
    }
    for (int i = 0; i < argc; i++)
        args[i] = strcmp(argv[i], "-c") == 0 ? (char *)"--config" : argv[i];
    return cli_dispatch("possum operator", operator_commands, argc, args);
}
