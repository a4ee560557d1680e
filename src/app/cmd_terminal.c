/*
 * possum terminal: the transaction platform's terminal and merchant registry (docs/switch.md):
 *   add    register a terminal (TID, MID, merchant name) with its TMK, formed in the HSM from
 *          two or three clear components (dual control) or given as a key block
 *   set-tmk re-key a registered terminal (the TMK given as for add): it is signed off and
 *          signs on again for work keys under the new TMK
 *   list   every terminal, one line each
 *   show   one terminal
 *   update-flag TID on|off   the TMS's "update waiting" flag (normally set by the TMS)
 * The store and the HSM come from --config FILE ([store], [hsm], [switch] hsm_* keys) or
 * --db PATH; the LMK passphrase from POSSUM_LMK_PASSPHRASE or a prompt.
 */
#include "app/cli.h"
#include "app/cli_env.h"
#include "crypto/crypto.h"
#include "host/switch/switch.h"
#include "lib/hex.h"
#include "lib/str.h"
#include "lib/time.h"

#include <stdio.h>
#include <string.h>

const char cmd_terminal_summary[] = "terminal and merchant registry of the transaction platform";

#define DEFAULT_CONFIG "etc/possum.ini"

/* clang-format off */
#define STORE_OPTS                                                                                 \
    {"config", 0, "configuration with [store] (and [hsm]); default etc/possum.ini", NULL},         \
    {"db", 0, "a SQLite database file instead of --config", NULL}
/* clang-format on */

static const cli_env_spec term_env = {DEFAULT_CONFIG, "cli:terminal", switch_hsm_config_bind};

/* The store (and with need_hsm the HSM) from --config or --db (cli_env.h). */
static int cli_open(cli_env *x, const cli_opt *opts, int need_hsm, px_error *e)
{
    cli_env_init(x, &term_env);
    return cli_env_open(x, opts,
                        CLI_ENV_DB | CLI_ENV_STORE | CLI_ENV_HSM_CONFIG |
                            (need_hsm ? CLI_ENV_HSM : 0u),
                        e);
}

/* "HEX[:KCV],HEX[:KCV][,HEX[:KCV]]" and --tmk-kcvs "KCV,KCV". Without check values the
 * components' own are computed and shown, so the custodians can compare them. */
static int parse_components(const char *spec, const char *kcvs, char hex[3][80], char kcv[3][24],
                            size_t *n, px_error *e)
{
    const char *p = spec, *k = kcvs;
    *n = 0;
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *colon = memchr(p, ':', len);
        size_t hl = colon ? (size_t)(colon - p) : len;
        if (*n >= 3)
            return px_error_set(e, PX_EINVAL, "--tmk-components: 2 or 3 components");
        if (hl >= sizeof hex[0] || (colon && len - hl - 1 >= sizeof kcv[0]))
            return px_error_set(e, PX_EINVAL, "--tmk-components: component %zu too long", *n + 1);
        memcpy(hex[*n], p, hl);
        hex[*n][hl] = 0;
        kcv[*n][0] = 0;
        if (colon) {
            memcpy(kcv[*n], colon + 1, len - hl - 1);
            kcv[*n][len - hl - 1] = 0;
        }
        (*n)++;
        p += len;
        if (*p == ',')
            p++;
    }
    for (size_t i = 0; k != NULL && *k && i < *n; i++) {
        size_t len = strcspn(k, ",");
        if (len >= sizeof kcv[0])
            return px_error_set(e, PX_EINVAL, "--tmk-kcvs: value %zu too long", i + 1);
        memcpy(kcv[i], k, len);
        kcv[i][len] = 0;
        k += len;
        if (*k == ',')
            k++;
    }
    if (*n < 2)
        return px_error_set(e, PX_EINVAL, "--tmk-components: 2 or 3 components (dual control)");
    for (size_t i = 0; i < *n; i++) {
        uint8_t key[CRYPTO_KEY_MAX], cv[CRYPTO_KCV_MAX];
        size_t kl = 0, cl = 0;
        if (kcv[i][0])
            continue;
        if (px_hex_decode(hex[i], key, sizeof key, &kl) != PX_OK || kl != 16) {
            crypto_cleanse(key, sizeof key);
            return px_error_set(e, PX_EINVAL, "component %zu: expected 32 hex digits", i + 1);
        }
        if (crypto_kcv(CRYPTO_TDES, key, kl, cv, sizeof cv, &cl, e) != PX_OK) {
            crypto_cleanse(key, sizeof key);
            return e->code;
        }
        crypto_cleanse(key, sizeof key);
        px_hex_encode(cv, cl, kcv[i]);
        fprintf(stderr,
                "component %zu: no check value given; its check value is %s: compare "
                "it with the custodian's\n",
                i + 1, kcv[i]);
    }
    return PX_OK;
}

/* A TMK as the operator gives it: 2 or 3 clear components with their check values, or a key
 * block under this LMK. add and set-tmk take it with the same options. */
typedef struct tmk_arg {
    char hex[3][80], kcv[3][24];
    hsm_component comp[3];
    size_t n; /* components; 0: the block */
    const char *block;
} tmk_arg;

/* clang-format off */
#define TMK_OPTS                                                                                   \
    {"tmk-components", 0, "HEX[:KCV],HEX[:KCV]: the TMK's clear components", NULL},                \
    {"tmk-kcvs", 0, "KCV,KCV: the components' check values", NULL},                                \
    {"tmk-block", 0, "the TMK as a key block under this LMK (K0)", NULL}
/* clang-format on */

/* 0 unless exactly one of --tmk-components and --tmk-block was given; else 1, with a filled
 * and *rc PX_OK, or *rc and e saying what is wrong with the components. */
static int tmk_arg_get(tmk_arg *a, const cli_opt *opts, int *rc, px_error *e)
{
    const char *spec = cli_get(opts, "tmk-components");
    memset(a, 0, sizeof *a);
    a->block = cli_get(opts, "tmk-block");
    *rc = PX_OK;
    if ((spec == NULL) == (a->block == NULL))
        return 0;
    if (spec != NULL)
        *rc = parse_components(spec, cli_get(opts, "tmk-kcvs"), a->hex, a->kcv, &a->n, e);
    for (size_t i = 0; *rc == PX_OK && i < a->n; i++) {
        a->comp[i].hex = a->hex[i];
        a->comp[i].kcv = a->kcv[i];
    }
    return 1;
}

static void tmk_arg_wipe(tmk_arg *a)
{
    crypto_cleanse(a->hex, sizeof a->hex);
}

static int terminal_add(int argc, char **argv)
{
    cli_opt opts[] = {{"tid", 0, "terminal id (8 letters or digits)", NULL},
                      {"mid", 0, "merchant id (15 letters or digits)", NULL},
                      {"name", 0, "merchant name", NULL},
                      TMK_OPTS,
                      STORE_OPTS,
                      {0, 0, 0, 0}};
    char tmk_kcv[PX_HSM_KCV_HEX_MAX] = "";
    tmk_arg a;
    cli_env x;
    px_error e = {0};
    const char *tid, *mid, *name;
    int rc =
        cli_parse(argc, argv, 1, opts, NULL, 0, NULL,
                  "possum terminal add --tid TID --mid MID --name NAME "
                  "(--tmk-components HEX,HEX | --tmk-block BLOCK) [--config FILE | --db PATH]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    tid = cli_get(opts, "tid");
    mid = cli_get(opts, "mid");
    name = cli_get(opts, "name");
    if (tid == NULL || mid == NULL || name == NULL || !tmk_arg_get(&a, opts, &rc, &e))
        return cli_usage_error("terminal add: --tid, --mid, --name and one of --tmk-components, "
                               "--tmk-block are required");
    if (rc != PX_OK)
        return cli_usage_error("terminal add: %s", px_error_text(&e));
    rc = cli_open(&x, opts, 1, &e);
    if (rc == PX_OK && a.n > 0)
        rc = switch_terminal_add_components(x.st, x.h, tid, mid, name, a.comp, a.n, tmk_kcv, &e);
    else if (rc == PX_OK)
        rc = switch_terminal_add(x.st, x.h, tid, mid, name, a.block, &e);
    tmk_arg_wipe(&a);
    cli_env_close(&x);
    if (rc != PX_OK)
        return cli_fail("terminal add: %s", px_error_text(&e));
    if (tmk_kcv[0])
        printf("terminal %s registered (merchant %s, %s), TMK check value %s\n", tid, mid, name,
               tmk_kcv);
    else
        printf("terminal %s registered (merchant %s, %s)\n", tid, mid, name);
    return CLI_OK;
}

/* Re-key a registered terminal (its PIN pad swapped and loaded remotely, its TMK suspected
 * compromised): the new TMK replaces the old one and the terminal's session ends. */
static int terminal_set_tmk(int argc, char **argv)
{
    cli_opt opts[] = {{"tid", 0, "the terminal's id", NULL}, TMK_OPTS, STORE_OPTS, {0, 0, 0, 0}};
    char tmk_kcv[PX_HSM_KCV_HEX_MAX] = "", caller[PX_HSM_CALLER_MAX];
    tmk_arg a;
    cli_env x;
    px_error e = {0};
    const char *tid;
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL,
                       "possum terminal set-tmk --tid TID (--tmk-components HEX[:KCV],HEX[:KCV] "
                       "[--tmk-kcvs KCV,KCV] | --tmk-block BLOCK) [--config FILE | --db PATH]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    tid = cli_get(opts, "tid");
    if (tid == NULL || !tmk_arg_get(&a, opts, &rc, &e))
        return cli_usage_error("terminal set-tmk: --tid and one of --tmk-components, "
                               "--tmk-block are required");
    if (rc != PX_OK)
        return cli_usage_error("terminal set-tmk: %s", px_error_text(&e));
    rc = cli_open(&x, opts, 1, &e);
    if (rc == PX_OK && switch_tid_is_valid(tid)) { /* the HSM's audit names the re-key */
        snprintf(caller, sizeof caller, "cli:terminal:set-tmk:%s", tid);
        rc = hsm_set_caller(x.h, caller, &e);
    }
    if (rc == PX_OK && a.n > 0)
        rc = switch_terminal_set_tmk_components(x.st, x.h, tid, a.comp, a.n, tmk_kcv, &e);
    else if (rc == PX_OK)
        rc = switch_terminal_set_tmk(x.st, x.h, tid, a.block, tmk_kcv, &e);
    tmk_arg_wipe(&a);
    cli_env_close(&x);
    if (rc != PX_OK)
        return cli_fail("terminal set-tmk: %s", px_error_text(&e));
    printf("terminal %s: new TMK, check value %s; signed off: it signs on again for work keys "
           "under the new TMK\n",
           tid, tmk_kcv);
    return CLI_OK;
}

static void print_terminal(const switch_terminal_info *t, int long_form)
{
    char when[32] = "-";
    if (t->signon_ms > 0)
        px_time_iso8601(t->signon_ms, when, sizeof when);
    if (!long_form) {
        printf("%-8s  %-15s  %-8s  %-10s  batch %06lld %-6s  %s%s\n", t->tid, t->mid, t->status,
               t->signed_on ? "signed-on" : "signed-off", (long long)t->batch_no,
               t->batch_open ? "open" : "closed", t->name,
               t->update_waiting ? "  [update waiting]" : "");
        return;
    }
    printf("terminal        %s\nmerchant        %s\nname            %s\nstatus          %s\n"
           "TMK check value %s\nsigned on       %s (last sign-on %s, keys version %lld)\n"
           "batch           %06lld (%s, opened %s)\nupdate waiting  %s\n",
           t->tid, t->mid, t->name, t->status, t->tmk_kcv, t->signed_on ? "yes" : "no", when,
           (long long)t->key_version, (long long)t->batch_no, t->batch_open ? "open" : "closed",
           t->batch_date[0] ? t->batch_date : "-", t->update_waiting ? "yes" : "no");
}

static int print_row(void *ud, const switch_terminal_info *t)
{
    (*(size_t *)ud)++;
    print_terminal(t, 0);
    return 0;
}

static int terminal_list(int argc, char **argv)
{
    cli_opt opts[] = {STORE_OPTS, {0, 0, 0, 0}};
    cli_env x;
    size_t n = 0;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL,
                       "possum terminal list [--config FILE | --db PATH]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    rc = cli_open(&x, opts, 0, &e);
    if (rc == PX_OK)
        rc = switch_terminal_list(x.st, print_row, &n, &e);
    cli_env_close(&x);
    if (rc != PX_OK)
        return cli_fail("terminal list: %s", px_error_text(&e));
    printf("%zu terminal%s\n", n, n == 1 ? "" : "s");
    return CLI_OK;
}

static int terminal_show(int argc, char **argv)
{
    cli_opt opts[] = {STORE_OPTS, {0, 0, 0, 0}};
    const char *pos[1];
    size_t npos = 0;
    cli_env x;
    switch_terminal_info t;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, pos, 1, &npos,
                       "possum terminal show TID [--config FILE | --db PATH]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (npos != 1)
        return cli_usage_error("terminal show: which TID?");
    rc = cli_open(&x, opts, 0, &e);
    if (rc == PX_OK)
        rc = switch_terminal_get(x.st, pos[0], &t, &e);
    cli_env_close(&x);
    if (rc != PX_OK)
        return cli_fail("terminal show: %s", px_error_text(&e));
    print_terminal(&t, 1);
    return CLI_OK;
}

static int terminal_update_flag(int argc, char **argv)
{
    cli_opt opts[] = {STORE_OPTS, {0, 0, 0, 0}};
    const char *pos[2];
    size_t npos = 0;
    cli_env x;
    px_error e = {0};
    int on;
    int rc = cli_parse(argc, argv, 1, opts, pos, 2, &npos,
                       "possum terminal update-flag TID on|off [--config FILE | --db PATH]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (npos != 2 || px_parse_bool(pos[1], &on) != PX_OK)
        return cli_usage_error("terminal update-flag: TID on|off");
    rc = cli_open(&x, opts, 0, &e);
    if (rc == PX_OK)
        rc = switch_terminal_set_update_waiting(x.st, pos[0], on, &e);
    cli_env_close(&x);
    if (rc != PX_OK)
        return cli_fail("terminal update-flag: %s", px_error_text(&e));
    printf("terminal %s: update waiting %s\n", pos[0], on ? "set" : "cleared");
    return CLI_OK;
}

int cmd_terminal(int argc, char **argv)
{
    static const cli_command sub[] = {
        {"add", terminal_add, "register a terminal with its TMK (components or key block)"},
        {"set-tmk", terminal_set_tmk, "re-key a terminal: a new TMK, its session ended"},
        {"list", terminal_list, "list the terminals"},
        {"show", terminal_show, "show one terminal"},
        {"update-flag", terminal_update_flag, "set or clear the update-waiting flag (TMS)"},
        {0, 0, 0}};
    return cli_dispatch_config("possum terminal", sub, argc, argv);
}
