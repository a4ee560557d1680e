/*
 * cmd_hsm.c: `possum hsm`, the operator's key management console (docs/hsm.md).
 *   init | generate | form | import | export | list | delete | audit verify
 * Every subcommand takes -c CONFIG (default etc/possum.ini when present; sections [hsm] and
 * [store]), --lmk-file and --audit-file. Secrets (LMK passphrase, token PIN, key components)
 * come from the environment or hidden prompts, never from the config. Nothing here prints a
 * clear key: keys leave as key blocks under the LMK or cryptograms under a KEK, with KCVs.
 * Exit 0 ok, 1 failed, 2 usage.
 */
#include "app/cli.h"
#include "app/cli_env.h"
#include "hsm/hsm.h"
#include "lib/str.h"
#include "lib/time.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

int cmd_hsm(int argc, char **argv);
extern const char cmd_hsm_summary[];

const char cmd_hsm_summary[] =
    "key management: init, generate, form, import, export, list, delete, audit verify";

#define DEFAULT_CONFIG "etc/possum.ini"
#define ARGS_MAX 64

/* Options every subcommand takes, first in each table. */
/* clang-format off */
#define COMMON_OPTS                                                                                \
    {"config", 0, "config file (also -c; default etc/possum.ini if present)", NULL},               \
    {"lmk-file", 0, "soft LMK file (overrides [hsm] lmk_file)", NULL},                             \
    {"audit-file", 0, "audit log (overrides [hsm] audit_file)", NULL}
/* clang-format on */

/* What a subcommand works with: its configuration is optional ([hsm], [store]). */
typedef cli_env hsm_ctx;
static const cli_env_spec hsm_env = {DEFAULT_CONFIG, NULL, NULL};

/* "cli:<user>", the user name reduced to label characters. */
static void set_caller(hsm_config *cfg)
{
    struct passwd *pw = getpwuid(geteuid());
    const char *user = pw != NULL ? pw->pw_name : "unknown";
    snprintf(cfg->caller, sizeof cfg->caller, "cli:%s", user);
    for (char *p = cfg->caller + 4; *p != 0; p++)
        if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *p) == NULL)
            *p = '_';
}

/* Read the config (if any), bind [hsm] and [store], apply overrides. */
static int load_config(const cli_opt *opts, hsm_ctx *c)
{
    const char *v;
    px_error e = {0};
    cli_env_init(c, &hsm_env);
    if (cli_env_open(c, opts, CLI_ENV_HSM_CONFIG, &e) != PX_OK) {
        cli_env_close(c);
        return cli_fail("%s", px_error_text(&e));
    }
    if ((v = cli_get(opts, "lmk-file")) != NULL &&
        px_strlcpy(c->hcfg.lmk_file, v, sizeof c->hcfg.lmk_file) != PX_OK) {
        cli_env_close(c);
        return cli_usage_error("--lmk-file: path too long");
    }
    if ((v = cli_get(opts, "audit-file")) != NULL &&
        px_strlcpy(c->hcfg.audit_file, v, sizeof c->hcfg.audit_file) != PX_OK) {
        cli_env_close(c);
        return cli_usage_error("--audit-file: path too long");
    }
    set_caller(&c->hcfg);
    c->hcfg.secret_fn = hsm_secret_prompt;
    return CLI_OK;
}

/* Load the config, then open the store (if need_store) and the hsm. */
static int ctx_open(const cli_opt *opts, hsm_ctx *c, int need_store)
{
    px_error e = {0};
    int rc = load_config(opts, c);
    if (rc != CLI_OK)
        return rc;
    if (need_store && cli_env_open(c, opts, CLI_ENV_STORE, &e) != PX_OK) {
        cli_env_close(c);
        return cli_fail("store: %s", px_error_text(&e));
    }
    if (cli_env_open(c, opts, CLI_ENV_HSM, &e) != PX_OK) {
        cli_env_close(c);
        return cli_fail("%s", px_error_text(&e));
    }
    return CLI_OK;
}

static void ctx_close(hsm_ctx *c)
{
    cli_env_close(c);
}

/* Parse argv (after the subcommand name) into opts; *done when the caller should return rc. */
static int parse(int argc, char **argv, cli_opt *opts, const char *synopsis, int *done)
{
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL, synopsis);
    *done = rc != CLI_OK;
    return rc == -1 ? CLI_OK : rc;
}

static int need(const cli_opt *opts, const char *cmd, const char *const *names)
{
    for (size_t i = 0; names[i] != NULL; i++)
        if (!cli_has(opts, names[i]))
            return cli_usage_error("hsm %s: --%s is required (see --help)", cmd, names[i]);
    return CLI_OK;
}

/* The mode of use a usage normally has when --mode is not given. */
static char default_mode(const char *usage)
{
    if (usage[0] == 'M' || usage[0] == 'V' || usage[0] == 'C')
        return 'C';
    if (usage[0] == 'B' || usage[0] == 'E')
        return 'X';
    return 'B';
}

/* Attributes from --usage --alg --len --mode --exportable (len may be absent: 0). */
static int attrs_from(const cli_opt *opts, hsm_key_attrs *a, int need_len)
{
    const char *u = cli_get(opts, "usage"), *alg = cli_get(opts, "alg"),
               *len = cli_get(opts, "len");
    const char *mode = cli_get(opts, "mode"), *exp = cli_get(opts, "exportable");
    int64_t n = 0;
    memset(a, 0, sizeof *a);
    if (u == NULL || strlen(u) != 2)
        return cli_usage_error("--usage: two characters, e.g. P0, K0, M3, D0 (see docs/hsm.md)");
    memcpy(a->usage, u, 2);
    if (alg != NULL && (strlen(alg) != 1 || strchr("TAD", alg[0]) == NULL))
        return cli_usage_error("--alg: T (TDES), A (AES) or D (DES, import only)");
    a->algorithm = alg ? alg[0] : 'T';
    if (len != NULL && px_parse_i64(len, 8, 32, &n) != PX_OK)
        return cli_usage_error("--len: key length in bytes (16, 24 or 32)");
    a->length = len ? (size_t)n : need_len ? (a->algorithm == 'A' ? 32 : 16) : 0;
    if ((mode != NULL && strlen(mode) != 1) ||
        (exp != NULL && (strlen(exp) != 1 || strchr("ENS", exp[0]) == NULL)))
        return cli_usage_error("--mode: one letter (B C D E G N V X); --exportable: E, N or S");
    a->mode = mode ? mode[0] : default_mode(a->usage);
    a->exportability = exp ? exp[0] : 'E';
    return CLI_OK;
}

static void print_key(const char *label, const hsm_keyblock *kb)
{
    printf("label: %s\nkcv:   %s\nblock: %s\n", label ? label : "-", kb->kcv, kb->block);
}

/* ---- init ---- */

static int hsm_init(int argc, char **argv)
{
    cli_opt opts[] = {COMMON_OPTS, {0, 0, 0, 0}};
    char check[PX_HSM_KCV_HEX_MAX];
    hsm_ctx c;
    px_error e = {0};
    int done, rc = parse(argc, argv, opts,
                         "possum hsm init [-c CONFIG] [--lmk-file F] [--audit-file F]", &done);
    if (done || (rc = load_config(opts, &c)) != CLI_OK)
        return rc;
    rc = hsm_lmk_init(&c.hcfg, check, &e);
    if (rc != PX_OK)
        rc = cli_fail("%s", px_error_text(&e));
    else if (c.hcfg.backend == HSM_BACKEND_PKCS11)
        printf("LMK created in token '%s' as '%s'\n", c.hcfg.pkcs11_token_label,
               c.hcfg.pkcs11_key_label);
    else
        printf("LMK created in %s\n", c.hcfg.lmk_file);
    if (rc == PX_OK)
        printf("LMK check value: %s\n", check);
    ctx_close(&c);
    return rc;
}

/* ---- generate ---- */

static int hsm_generate(int argc, char **argv)
{
    static const char *const required[] = {"label", "usage", NULL};
    cli_opt opts[] = {
        COMMON_OPTS,
        {"label", 0, "name of the new key", NULL},
        {"usage", 0, "TR-31 key usage: P0 K0 K1 M0 M1 M3 M6 D0 V1 V2 B0 C0 E0-E6", NULL},
        {"alg", 0, "T (TDES, default) or A (AES)", NULL},
        {"len", 0, "bytes: 16 (default for T), 24, 32 (default for A)", NULL},
        {"mode", 0, "mode of use (default by usage: B, C or X)", NULL},
        {"exportable", 0, "E (default), N or S", NULL},
        {0, 0, 0, 0}};
    hsm_key_attrs a;
    hsm_keyblock kb;
    hsm_ctx c;
    px_error e = {0};
    int done, rc = parse(argc, argv, opts,
                         "possum hsm generate --label L --usage U [--alg T|A] [--len N] "
                         "[--mode M] [--exportable E|N|S]",
                         &done);
    if (done || (rc = need(opts, "generate", required)) != CLI_OK ||
        (rc = attrs_from(opts, &a, 1)) != CLI_OK || (rc = ctx_open(opts, &c, 1)) != CLI_OK)
        return rc;
    if (hsm_key_generate(c.h, &a, cli_get(opts, "label"), &kb, &e) != PX_OK)
        rc = cli_fail("generate: %s", px_error_text(&e));
    else
        print_key(cli_get(opts, "label"), &kb);
    ctx_close(&c);
    return rc;
}

/* ---- form ---- */

/* Split "HEX:KCV,HEX:KCV[,HEX:KCV]" (in buf, modified) into components. */
static int split_components(char *buf, hsm_component *c, size_t *n)
{
    char *next = NULL;
    *n = 0;
    for (char *part = buf; part != NULL; part = next) {
        char *colon = strchr(part, ':');
        if ((next = strchr(part, ',')) != NULL)
            *next++ = 0;
        if (*n == 3 || colon == NULL)
            return cli_usage_error("--components: 2 or 3 of HEX:KCV separated by commas");
        *colon = 0;
        c[*n].hex = part;
        c[(*n)++].kcv = colon + 1;
    }
    return *n >= 2 ? CLI_OK
                   : cli_usage_error("--components: 2 or 3 of HEX:KCV separated by commas");
}

/* Ask each key custodian for a component and its check value, with hidden input. */
static int prompt_components(size_t count, char bufs[3][2][80], hsm_component *c)
{
    for (size_t i = 0; i < count; i++) {
        char p[64];
        snprintf(p, sizeof p, "Component %zu (hex, hidden): ", i + 1);
        if (hsm_secret_prompt(NULL, p, bufs[i][0], sizeof bufs[i][0]) != PX_OK)
            return cli_fail("form: no terminal to read components from (use --components)");
        snprintf(p, sizeof p, "Check value of component %zu: ", i + 1);
        if (hsm_secret_prompt(NULL, p, bufs[i][1], sizeof bufs[i][1]) != PX_OK)
            return cli_fail("form: no terminal to read components from");
        c[i].hex = bufs[i][0];
        c[i].kcv = bufs[i][1];
    }
    return CLI_OK;
}

/* Form the key from components c (n of them) and print it. */
static int form_run(const cli_opt *opts, hsm_key_attrs *a, hsm_component *c, size_t n)
{
    hsm_keyblock kb;
    hsm_ctx ctx;
    px_error e = {0};
    int rc;
    a->length = strlen(c[0].hex) / 2;
    if ((rc = ctx_open(opts, &ctx, 1)) != CLI_OK)
        return rc;
    if (hsm_key_form(ctx.h, a, c, n, cli_get(opts, "label"), &kb, &e) != PX_OK)
        rc = cli_fail("form: %s", px_error_text(&e));
    else
        print_key(cli_get(opts, "label"), &kb);
    ctx_close(&ctx);
    return rc;
}

static int hsm_form(int argc, char **argv)
{
    static const char *const required[] = {"label", "usage", NULL};
    cli_opt opts[] = {COMMON_OPTS,
                      {"label", 0, "name of the new key", NULL},
                      {"usage", 0, "TR-31 key usage (P0, K0, M3, ...)", NULL},
                      {"alg", 0, "T (TDES, default) or A (AES)", NULL},
                      {"mode", 0, "mode of use (default by usage)", NULL},
                      {"exportable", 0, "E (default), N or S", NULL},
                      {"components", 0, "HEX:KCV,HEX:KCV[,HEX:KCV] (else asked for, hidden)", NULL},
                      {"count", 0, "components to ask for: 2 (default) or 3", NULL},
                      {0, 0, 0, 0}};
    char list[3 * 80], bufs[3][2][80];
    hsm_component c[3];
    hsm_key_attrs a;
    size_t n = 0;
    int64_t count = 2;
    int done, rc = parse(argc, argv, opts,
                         "possum hsm form --label L --usage U [--alg T|A] [--mode M] "
                         "[--exportable E|N|S] [--components HEX:KCV,...] [--count 2|3]",
                         &done);
    if (done || (rc = need(opts, "form", required)) != CLI_OK ||
        (rc = attrs_from(opts, &a, 0)) != CLI_OK)
        return rc;
    if (cli_has(opts, "components")) {
        if (px_strlcpy(list, cli_get(opts, "components"), sizeof list) != PX_OK)
            return cli_usage_error("--components: too long");
        rc = split_components(list, c, &n);
    } else if (cli_has(opts, "count") &&
               px_parse_i64(cli_get(opts, "count"), 2, 3, &count) != PX_OK) {
        rc = cli_usage_error("--count: 2 or 3");
    } else {
        n = (size_t)count;
        rc = prompt_components(n, bufs, c);
    }
    if (rc == CLI_OK)
        rc = form_run(opts, &a, c, n);
    OPENSSL_cleanse(list, sizeof list);
    OPENSSL_cleanse(bufs, sizeof bufs);
    return rc;
}

/* ---- import / export ---- */

/* Load the named KEK and check it is a KEK at all (K0 or K1). */
static int load_kek(hsm_ctx *c, const char *label, hsm_key **kek)
{
    px_error e = {0};
    hsm_key_attrs a;
    if (hsm_key_load_named(c->h, label, kek, &e) != PX_OK)
        return cli_fail("--kek: %s", px_error_text(&e));
    hsm_key_get_attrs(*kek, &a);
    if (strcmp(a.usage, "K0") != 0 && strcmp(a.usage, "K1") != 0)
        return cli_fail("--kek: key %s has usage %s, not a key encryption key (K0 or K1)", label,
                        a.usage);
    return CLI_OK;
}

static int hsm_import(int argc, char **argv)
{
    static const char *const required[] = {"label", "kek", "key", NULL};
    cli_opt opts[] = {
        COMMON_OPTS,
        {"label", 0, "name of the imported key", NULL},
        {"kek", 0, "label of the key encryption key (K0: ECB cryptogram, K1: TR-31 block)", NULL},
        {"key", 0, "the key encrypted under the KEK: hex, or a TR-31 key block", NULL},
        {"kcv", 0, "expected check value (hex)", NULL},
        {"usage", 0, "with a K0 KEK: the key's usage", NULL},
        {"alg", 0, "with a K0 KEK: T (default), A or D", NULL},
        {"mode", 0, "with a K0 KEK: mode of use (default by usage)", NULL},
        {"exportable", 0, "with a K0 KEK: E (default), N or S", NULL},
        {0, 0, 0, 0}};
    hsm_key_attrs a, ka;
    hsm_keyblock kb;
    hsm_key *kek = NULL;
    hsm_ctx c;
    px_error e = {0};
    int done, rc = parse(argc, argv, opts,
                         "possum hsm import --label L --kek LABEL --key HEX|BLOCK [--kcv KCV] "
                         "[--usage U --alg T|A|D --mode M --exportable E|N|S]",
                         &done);
    if (done || (rc = need(opts, "import", required)) != CLI_OK ||
        (rc = ctx_open(opts, &c, 1)) != CLI_OK)
        return rc;
    if ((rc = load_kek(&c, cli_get(opts, "kek"), &kek)) == CLI_OK) {
        hsm_key_get_attrs(kek, &ka);
        int tr31 = strcmp(ka.usage, "K1") == 0;
        if (tr31 && cli_has(opts, "usage"))
            rc = cli_usage_error("hsm import: a TR-31 block carries its own usage; drop --usage");
        else if (!tr31)
            rc = attrs_from(opts, &a, 0);
        if (rc == CLI_OK &&
            hsm_key_import(c.h, kek, cli_get(opts, "key"), tr31 ? NULL : &a, cli_get(opts, "kcv"),
                           cli_get(opts, "label"), &kb, &e) != PX_OK)
            rc = cli_fail("import: %s", px_error_text(&e));
        else if (rc == CLI_OK)
            print_key(cli_get(opts, "label"), &kb);
    }
    ctx_close(&c);
    return rc;
}

static int hsm_export(int argc, char **argv)
{
    static const char *const required[] = {"label", "kek", NULL};
    cli_opt opts[] = {COMMON_OPTS,
                      {"label", 0, "the key to export", NULL},
                      {"kek", 0, "label of the key encryption key", NULL},
                      {"format", 0,
                       "ecb (legacy cryptogram, exportability S) or tr31 (default for a K1 KEK)",
                       NULL},
                      {0, 0, 0, 0}};
    char out[PX_HSM_KEYBLOCK_MAX], kcv[PX_HSM_KCV_HEX_MAX];
    const char *fmt = NULL;
    hsm_key *kek = NULL, *key = NULL;
    hsm_key_attrs ka;
    hsm_ctx c;
    px_error e = {0};
    int done, rc = parse(argc, argv, opts,
                         "possum hsm export --label L --kek LABEL [--format ecb|tr31]", &done);
    if (done || (rc = need(opts, "export", required)) != CLI_OK)
        return rc;
    fmt = cli_get(opts, "format");
    if (fmt != NULL && strcmp(fmt, "ecb") != 0 && strcmp(fmt, "tr31") != 0)
        return cli_usage_error("--format: ecb or tr31");
    if ((rc = ctx_open(opts, &c, 1)) != CLI_OK)
        return rc;
    if ((rc = load_kek(&c, cli_get(opts, "kek"), &kek)) == CLI_OK &&
        hsm_key_load_named(c.h, cli_get(opts, "label"), &key, &e) != PX_OK)
        rc = cli_fail("--label: %s", px_error_text(&e));
    if (rc == CLI_OK) {
        hsm_key_get_attrs(kek, &ka);
        hsm_export_format f = fmt ? (strcmp(fmt, "tr31") == 0 ? HSM_EXPORT_TR31 : HSM_EXPORT_ECB)
                                  : (strcmp(ka.usage, "K1") == 0 ? HSM_EXPORT_TR31
                                                                 : HSM_EXPORT_ECB);
        if (hsm_key_export(c.h, kek, key, f, out, sizeof out, kcv, &e) != PX_OK)
            rc = cli_fail("export: %s", px_error_text(&e));
        else
            printf("%s %s\nkcv:        %s\n",
                   f == HSM_EXPORT_TR31 ? "block:     " : "cryptogram:", out, kcv);
    }
    ctx_close(&c);
    return rc;
}

/* ---- list / delete ---- */

static int print_row(void *ud, const hsm_key_row *r)
{
    char when[32];
    (void)ud;
    px_time_iso8601(r->created_ms, when, sizeof when);
    printf("%-24s %-5s %c%-3zu %-4c %-3c %-10s %-10s %s\n", r->label, r->attrs.usage,
           r->attrs.algorithm, r->attrs.length, r->attrs.mode, r->attrs.exportability, r->kcv,
           r->lmk_check, when);
    return 0;
}

static int hsm_list(int argc, char **argv)
{
    cli_opt opts[] = {COMMON_OPTS, {0, 0, 0, 0}};
    hsm_ctx c;
    px_error e = {0};
    int done,
        rc = parse(argc, argv, opts,
                   "possum hsm list [-c CONFIG]   (no LMK needed: clear headers only)", &done);
    if (done || (rc = load_config(opts, &c)) != CLI_OK)
        return rc;
    if (cli_env_open(&c, opts, CLI_ENV_STORE, &e) != PX_OK) {
        cli_env_close(&c);
        return cli_fail("store: %s", px_error_text(&e));
    }
    printf("%-24s %-5s %-4s %-4s %-3s %-10s %-10s %s\n", "LABEL", "USAGE", "ALG", "MODE", "EXP",
           "KCV", "LMK", "CREATED");
    if (hsm_keys_list(c.st, print_row, NULL, &e) != PX_OK)
        rc = cli_fail("list: %s", px_error_text(&e));
    cli_env_close(&c);
    return rc;
}

static int hsm_delete(int argc, char **argv)
{
    static const char *const required[] = {"label", NULL};
    cli_opt opts[] = {COMMON_OPTS, {"label", 0, "the named key to delete", NULL}, {0, 0, 0, 0}};
    hsm_ctx c;
    px_error e = {0};
    int done, rc = parse(argc, argv, opts, "possum hsm delete --label L", &done);
    if (done || (rc = need(opts, "delete", required)) != CLI_OK ||
        (rc = ctx_open(opts, &c, 1)) != CLI_OK)
        return rc;
    if (hsm_key_delete(c.h, cli_get(opts, "label"), &e) != PX_OK)
        rc = cli_fail("delete: %s", px_error_text(&e));
    else
        printf("deleted %s\n", cli_get(opts, "label"));
    ctx_close(&c);
    return rc;
}

/* ---- audit ---- */

static int hsm_audit_cmd(int argc, char **argv)
{
    cli_opt opts[] = {
        COMMON_OPTS,
        {"file", 0, "audit log to verify (default: [hsm] audit_file)", NULL},
        {"chain-only", 1, "check the hash chain without the LMK (MACs not checked)", NULL},
        {0, 0, 0, 0}};
    const char *pos[1];
    size_t npos = 0, entries = 0;
    hsm_ctx c;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, pos, 1, &npos,
                       "possum hsm audit verify [--file F] [--chain-only] [-c CONFIG]");
    if (rc != CLI_OK)
        return rc == -1 ? CLI_OK : rc;
    if (npos != 1 || strcmp(pos[0], "verify") != 0)
        return cli_usage_error("hsm audit: expected 'verify' (see --help)");
    if ((rc = load_config(opts, &c)) != CLI_OK)
        return rc;
    const char *file = cli_has(opts, "file") ? cli_get(opts, "file") : c.hcfg.audit_file;
    int chain_only = cli_has(opts, "chain-only");
    if (hsm_audit_verify(file, chain_only ? NULL : &c.hcfg, &entries, &e) != PX_OK)
        rc = cli_fail("audit %s: %s", file, px_error_text(&e));
    else
        printf("audit OK: %zu entries in %s (%s)\n", entries, file,
               chain_only ? "hash chain verified; MACs not checked"
                          : "hash chain and MACs verified");
    ctx_close(&c);
    return rc;
}

/* ---- dispatch ---- */

static const cli_command hsm_commands[] = {
    {"init", hsm_init, "create the LMK (soft file or PKCS#11 token key)"},
    {"generate", hsm_generate, "generate a named key: key block + KCV"},
    {"form", hsm_form, "form a named key from 2 or 3 clear components (dual control)"},
    {"import", hsm_import, "import a key encrypted under a named KEK"},
    {"export", hsm_export, "export a named key under a named KEK: cryptogram + KCV"},
    {"list", hsm_list, "list named keys: label, usage, algorithm, KCV, exportability, created"},
    {"delete", hsm_delete, "delete a named key"},
    {"audit", hsm_audit_cmd, "audit verify: check the audit log's chain and MACs"},
    {0, 0, 0}};

int cmd_hsm(int argc, char **argv)
{
    char *args[ARGS_MAX];
    if (argc > ARGS_MAX)
        return cli_usage_error("hsm: too many arguments");
    for (int i = 0; i < argc; i++) /* -c CONFIG is --config CONFIG */
        args[i] = strcmp(argv[i], "-c") == 0 ? (char *)"--config" : argv[i];
    return cli_dispatch("possum hsm", hsm_commands, argc, args);
}
