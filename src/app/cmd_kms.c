/*
 * possum kms: a customer's key management system, from its own config (etc/kms.ini:
 * [store], [hsm], [kms]; docs/kms.md):
 *   init         make the receiving key pair in the HSM; write its public key for the CA
 *   list         terminals: serial, TK and TMK check values, status
 *   status S     one terminal
 *   audit        the audit trail (of one serial with --serial)
 *   tmk-export   a terminal's TMK under a zone key, for the transaction platform
 * The LMK passphrase comes from POSSUM_LMK_PASSPHRASE or a prompt.
 */
#include "app/cli.h"
#include "app/cli_env.h"
#include "host/kms/kms.h"
#include "lib/str.h"
#include "lib/time.h"
#include "net/net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/pem.h>

const char cmd_kms_summary[] = "key management system: init, list, status, audit, tmk-export";

#define DEFAULT_CONFIG "etc/kms.ini"
/* clang-format off */
#define CONFIG_OPT {"config", 0, "the KMS's configuration (default etc/kms.ini)", NULL}
/* clang-format on */

typedef struct kms_cli {
    cli_env env;
    kms *k;
} kms_cli;

static void cli_close(kms_cli *x)
{
    kms_close(x->k);
    cli_env_close(&x->env);
}

static const cli_env_spec kms_env = {DEFAULT_CONFIG, "cli:kms", kms_hsm_config_bind};

/* need: 0 store only, 1 store + HSM, 2 store + HSM + the KMS (receiving key, CA, CRL). */
static int cli_open(kms_cli *x, const cli_opt *opts, int need, px_error *e)
{
    int rc;
    x->k = NULL;
    cli_env_init(&x->env, &kms_env);
    rc = cli_env_open(&x->env, opts,
                      CLI_ENV_CONFIG | CLI_ENV_STORE | (need >= 1 ? CLI_ENV_HSM : 0u), e);
    if (rc == PX_OK && need >= 2) {
        net_listener_config lc;
        kms_config kc;
        const char *v;
        const char *cfgpath = px_config_path(x->env.ini), *slash = strrchr(cfgpath, '/');
        kms_config_default(&kc);
        net_listener_config_defaults(&lc, "kms");
        /* tls_ca, tls_crl resolved */
        rc = net_listener_config_bind(x->env.ini, "kms", NULL, &lc, e);
        if (rc == PX_OK) {
            px_strlcpy(kc.ca, lc.tls.ca, sizeof kc.ca);
            px_strlcpy(kc.crl, lc.tls.crl, sizeof kc.crl);
            if ((v = px_config_get(x->env.ini, "kms", "customer")) != NULL)
                px_strlcpy(kc.customer, v, sizeof kc.customer);
            if ((v = px_config_get(x->env.ini, "kms", "recv_key")) != NULL)
                px_strlcpy(kc.recv_key, v, sizeof kc.recv_key);
            if ((v = px_config_get(x->env.ini, "kms", "mtms_cn")) != NULL)
                px_strlcpy(kc.mtms_cn, v, sizeof kc.mtms_cn);
            if ((v = px_config_get(x->env.ini, "kms", "zone_key")) != NULL)
                px_strlcpy(kc.zone_key, v, sizeof kc.zone_key);
            if ((v = px_config_get(x->env.ini, "kms", "recv_cert")) != NULL)
                snprintf(kc.recv_cert, sizeof kc.recv_cert, "%.*s%s",
                         v[0] == '/' || slash == NULL ? 0 : (int)(slash - cfgpath + 1), cfgpath, v);
            rc = kms_open(&kc, x->env.st, x->env.h, &x->k, e);
        }
    }
    return rc;
}

static int parse(int argc, char **argv, cli_opt *opts, const char **pos, size_t maxpos,
                 size_t *npos, const char *synopsis, int *done)
{
    int rc = cli_parse(argc, argv, 1, opts, pos, maxpos, npos, synopsis);
    *done = rc != CLI_OK;
    return rc < 0 ? CLI_OK : rc;
}

static int kms_init_cmd(int argc, char **argv)
{
    cli_opt opts[] = {
        CONFIG_OPT,
        {"label", 0, "label of the receiving key (default kms.recv)", NULL},
        {"out", 0, "write its public key here (PEM), for `possum ca issue --pubkey`", NULL},
        {0, 0, 0, 0}};
    uint8_t pub[HSM_EC_PUB_LEN];
    kms_cli x;
    px_error e = {0};
    int done, rc = parse(argc, argv, opts, NULL, 0, NULL,
                         "possum kms init --out PUBKEY.pem [--label L] [--config FILE]", &done);
    EVP_PKEY *k = NULL;
    if (done)
        return rc;
    if (cli_get(opts, "out") == NULL)
        return cli_usage_error("kms init: --out FILE is required");
    if (cli_open(&x, opts, 1, &e) != PX_OK ||
        kms_recv_key_create(x.env.h, cli_get(opts, "label") ? cli_get(opts, "label") : "kms.recv",
                            pub, &e) != PX_OK) {
        cli_close(&x);
        return cli_fail("kms init: %s", px_error_text(&e));
    }
    k = pki_pkey_from_point(pub);
    if (k != NULL) {
        BIO *b = BIO_new(BIO_s_mem());
        char *data;
        long len;
        if (b != NULL && PEM_write_bio_PUBKEY(b, k) == 1 &&
            (len = BIO_get_mem_data(b, &data)) > 0 &&
            pki_write_file(cli_get(opts, "out"), data, (size_t)len, 0644, &e) == PX_OK)
            printf("receiving key %s made in the HSM; public key in %s\n"
                   "have the CA certify it: possum ca issue --role kms --name CUSTOMER --pubkey %s "
                   "--out recv\n",
                   cli_get(opts, "label") ? cli_get(opts, "label") : "kms.recv",
                   cli_get(opts, "out"), cli_get(opts, "out"));
        else
            rc = cli_fail("kms init: cannot write %s: %s", cli_get(opts, "out"), px_error_text(&e));
        BIO_free(b);
    } else {
        rc = cli_fail("kms init: the HSM returned a bad point");
    }
    EVP_PKEY_free(k);
    cli_close(&x);
    return rc;
}

static void print_terminal(const kms_terminal_info *t)
{
    char r[32], l[32] = "-";
    px_time_iso8601(t->received_ms, r, sizeof r);
    if (t->loaded_ms > 0)
        px_time_iso8601(t->loaded_ms, l, sizeof l);
    printf("%-20s %-7s TK %s  TMK %s  received %s  loaded %s  downloads %lld  (%s)\n", t->serial,
           t->status, t->tk_kcv, t->tmk_kcv, r, l, (long long)t->downloads, t->device_cn);
}

static int list_one(void *ud, const kms_terminal_info *t)
{
    (*(size_t *)ud)++;
    print_terminal(t);
    return 0;
}

static int kms_list_cmd(int argc, char **argv)
{
    cli_opt opts[] = {CONFIG_OPT, {0, 0, 0, 0}};
    kms_cli x;
    size_t n = 0;
    px_error e = {0};
    int done, rc = parse(argc, argv, opts, NULL, 0, NULL, "possum kms list [--config FILE]", &done);
    if (done)
        return rc;
    if (cli_open(&x, opts, 0, &e) != PX_OK ||
        kms_terminal_list(x.env.st, list_one, &n, &e) != PX_OK)
        rc = cli_fail("kms list: %s", px_error_text(&e));
    else
        printf("%zu terminal%s\n", n, n == 1 ? "" : "s");
    cli_close(&x);
    return rc;
}

static int kms_status_cmd(int argc, char **argv)
{
    cli_opt opts[] = {CONFIG_OPT, {0, 0, 0, 0}};
    const char *pos[1];
    size_t npos = 0;
    kms_cli x;
    kms_terminal_info t;
    px_error e = {0};
    int done, rc = parse(argc, argv, opts, pos, 1, &npos,
                         "possum kms status SERIAL [--config FILE]", &done);
    if (done)
        return rc;
    if (npos != 1)
        return cli_usage_error("kms status: give a serial number");
    if (cli_open(&x, opts, 0, &e) != PX_OK || kms_terminal_get(x.env.st, pos[0], &t, &e) != PX_OK)
        rc = cli_fail("kms status: %s", px_error_text(&e));
    else
        print_terminal(&t);
    cli_close(&x);
    return rc;
}

static int audit_one(void *ud, const kms_audit_row *r)
{
    char when[32];
    (void)ud;
    px_time_iso8601(r->ts_ms, when, sizeof when);
    printf("%s %-7s %-18s %-14s %-30s %s\n", when, r->result, r->action, r->serial, r->actor,
           r->reason);
    return 0;
}

static int kms_audit_cmd(int argc, char **argv)
{
    cli_opt opts[] = {CONFIG_OPT, {"serial", 0, "only this serial number", NULL}, {0, 0, 0, 0}};
    kms_cli x;
    px_error e = {0};
    int done, rc = parse(argc, argv, opts, NULL, 0, NULL,
                         "possum kms audit [--serial S] [--config FILE]", &done);
    if (done)
        return rc;
    if (cli_open(&x, opts, 0, &e) != PX_OK ||
        kms_audit_list(x.env.st, cli_get(opts, "serial"), audit_one, NULL, &e) != PX_OK)
        rc = cli_fail("kms audit: %s", px_error_text(&e));
    cli_close(&x);
    return rc;
}

static int kms_export_cmd(int argc, char **argv)
{
    cli_opt opts[] = {CONFIG_OPT,
                      {"serial", 0, "the terminal's serial number", NULL},
                      {"zone-key", 0,
                       "label of the zone key (default [kms] zone_key): K0 gives "
                       "an ECB cryptogram, K1 a TR-31 key block",
                       NULL},
                      {0, 0, 0, 0}};
    char out[PX_HSM_KEYBLOCK_MAX], kcv[PX_HSM_KCV_HEX_MAX], actor[64];
    kms_cli x;
    px_error e = {0};
    int done,
        rc = parse(argc, argv, opts, NULL, 0, NULL,
                   "possum kms tmk-export --serial S [--zone-key LABEL] [--config FILE]", &done);
    if (done)
        return rc;
    if (cli_get(opts, "serial") == NULL)
        return cli_usage_error("kms tmk-export: --serial is required");
    snprintf(actor, sizeof actor, "cli:%s", getenv("USER") ? getenv("USER") : "?");
    if (cli_open(&x, opts, 2, &e) != PX_OK ||
        kms_tmk_export(x.k, cli_get(opts, "serial"), cli_get(opts, "zone-key"), actor, out,
                       sizeof out, kcv, &e) != PX_OK)
        rc = cli_fail("kms tmk-export: %s", px_error_text(&e));
    else
        printf("%s: %s\nkcv: %s\n", strlen(out) == 32 || strlen(out) == 48 ? "cryptogram" : "block",
               out, kcv);
    OPENSSL_cleanse(out, sizeof out);
    cli_close(&x);
    return rc;
}

static const cli_command kms_commands[] = {
    {"init", kms_init_cmd, "make the receiving key pair in the HSM; write its public key"},
    {"list", kms_list_cmd, "terminals: serial, status, TK and TMK check values"},
    {"status", kms_status_cmd, "one terminal"},
    {"audit", kms_audit_cmd, "the audit trail (refusals with their reasons)"},
    {"tmk-export", kms_export_cmd, "a terminal's TMK under a zone key, for the switch"},
    {0, 0, 0}};

int cmd_kms(int argc, char **argv)
{
    char *args[64];
    if (argc > 64)
        return cli_usage_error("kms: too many arguments");
    for (int i = 0; i < argc; i++) /* -c CONFIG is --config CONFIG */
        args[i] = strcmp(argv[i], "-c") == 0 ? (char *)"--config" : argv[i];
    return cli_dispatch("possum kms", kms_commands, argc, args);
}
