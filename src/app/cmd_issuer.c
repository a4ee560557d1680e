/*
 * possum issuer: the provider and banks simulator's operator commands (docs/issuer.md):
 * the daily clearing file, cardholders (add, list masked, reset PIN tries), banks and BIN
 * ranges, and the demo seed. The database comes from --config FILE ([store], [issuer]) or
 * --db PATH (a SQLite file); commands that touch PANs open the HSM ([issuer] hsm_* keys).
 */
#include "app/cli.h"
#include "app/cli_env.h"
#include "host/issuer/issuer.h"
#include "lib/hex.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

const char cmd_issuer_summary[] = "the issuer simulator: clearing file, cardholders, banks";

#define ISSUER_DEFAULT_CONFIG "etc/issuer.ini"

typedef struct issuer_cli {
    cli_env env;
    issuer_config icfg;
    issuer_core *core;
} issuer_cli;

static const cli_env_spec issuer_env = {ISSUER_DEFAULT_CONFIG, NULL, NULL};

/* The store (and with need_hsm the issuer core) from --config or --db (cli_env.h). */
static int cli_open(issuer_cli *x, const cli_opt *opts, int need_hsm, int seed, px_error *e)
{
    int rc;
    x->core = NULL;
    issuer_config_default(&x->icfg);
    cli_env_init(&x->env, &issuer_env);
    rc = cli_env_open(&x->env, opts, CLI_ENV_DB, e);
    if (rc == PX_OK && x->env.ini != NULL)
        rc = issuer_config_bind(x->env.ini, &x->icfg, e);
    if (rc == PX_OK)
        rc = cli_env_open(&x->env, opts, CLI_ENV_STORE, e);
    x->icfg.seed_demo = seed;
    x->icfg.hsm.secret_fn = isatty(STDIN_FILENO) ? hsm_secret_prompt : NULL;
    if (rc == PX_OK && need_hsm)
        rc = issuer_core_open(&x->icfg, x->env.st, 0, &x->core, e);
    return rc;
}

static void cli_close(issuer_cli *x)
{
    issuer_core_close(x->core);
    cli_env_close(&x->env);
}

/* clang-format off */
#define STORE_OPTS                                                                                 \
    {"config", 0, "configuration with [store] and [issuer] (default etc/issuer.ini)", NULL},       \
    {"db", 0, "a SQLite database file instead of --config", NULL}
/* clang-format on */

static int issuer_clearing(int argc, char **argv)
{
    cli_opt opts[] = {{"date", 0, "business day YYYY-MM-DD (UTC; default today)", NULL},
                      {"out", 0, "directory (default [issuer] clearing_dir, var/clearing)", NULL},
                      STORE_OPTS,
                      {0, 0, 0, 0}};
    char today[11], path[PX_PATH_MAX + 64];
    const char *date, *dir;
    issuer_cli x;
    size_t lines = 0;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL,
                       "possum issuer clearing --date YYYY-MM-DD [--config FILE | --db PATH] "
                       "[--out DIR]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    px_time_format_utc(px_now_ms(), "%Y-%m-%d", today, sizeof today);
    date = cli_get(opts, "date") ? cli_get(opts, "date") : today;
    rc = cli_open(&x, opts, 0, 0, &e);
    dir = cli_get(opts, "out") ? cli_get(opts, "out") : x.icfg.clearing_dir;
    if (rc == PX_OK)
        rc = issuer_clearing_write(x.env.st, date, dir, path, sizeof path, &lines, &e);
    cli_close(&x);
    if (rc != PX_OK)
        return cli_fail("clearing: %s", px_error_text(&e));
    printf("%s: %zu entries for %s\n", path, lines, date);
    return CLI_OK;
}

/* --pvv / --offset given, or computed in the HSM from --pin-block under --pin-key. */
static int pin_check_of(issuer_cli *x, const cli_opt *opts, issuer_cardholder_new *n, char out[13],
                        px_error *e)
{
    uint8_t block[8];
    size_t len = 0;
    const char *hex = cli_get(opts, "pin-block");
    int rc;
    if (hex == NULL) {
        n->pin_check = n->method == ISSUER_PIN_PVV ? cli_get(opts, "pvv") : cli_get(opts, "offset");
        return n->pin_check ? PX_OK
                            : px_error_set(e, PX_EINVAL, "give --pvv, --offset or --pin-block");
    }
    if (cli_get(opts, "pin-key") == NULL)
        return px_error_set(e, PX_EINVAL, "--pin-block needs --pin-key (the P0 key it is under)");
    if (px_hex_decode(hex, block, sizeof block, &len) != PX_OK || len != 8)
        return px_error_set(e, PX_EINVAL, "--pin-block: 16 hex digits (ISO 9564 format 0)");
    rc = issuer_pin_check_compute(x->core, n->method, n->pan, cli_get(opts, "pin-key"), block, len,
                                  n->pvk_label, n->pvki, out, e);
    OPENSSL_cleanse(block, sizeof block);
    n->pin_check = out;
    return rc;
}

/* The new cardholder from the options (PIN method from --offset / --method). */
static int new_from_opts(const cli_opt *opts, issuer_cardholder_new *n, px_error *e)
{
    const char *m = cli_get(opts, "method");
    int64_t v = 0;
    memset(n, 0, sizeof *n);
    n->pan = cli_get(opts, "pan");
    n->name = cli_get(opts, "name");
    n->bank_id = cli_get(opts, "bank");
    n->expiry = cli_get(opts, "expiry");
    n->currency = cli_get(opts, "currency") ? cli_get(opts, "currency") : "156";
    n->method = (m && strcmp(m, "ibm3624") == 0) || (!m && cli_has(opts, "offset"))
                    ? ISSUER_PIN_IBM3624
                    : ISSUER_PIN_PVV;
    if (m != NULL && strcmp(m, "pvv") != 0 && strcmp(m, "ibm3624") != 0)
        return px_error_set(e, PX_EINVAL, "--method: pvv or ibm3624");
    n->pvk_label = cli_get(opts, "pvk")          ? cli_get(opts, "pvk")
                   : n->method == ISSUER_PIN_PVV ? ISSUER_DEMO_PVK_PVV
                                                 : ISSUER_DEMO_PVK_IBM;
    if (cli_get(opts, "pvki") && px_parse_i64(cli_get(opts, "pvki"), 0, 9, &v) != PX_OK)
        return px_error_set(e, PX_EINVAL, "--pvki: 0..9");
    n->pvki = cli_get(opts, "pvki") ? (int)v : n->method == ISSUER_PIN_PVV ? 1 : 0;
    v = 0;
    if (cli_get(opts, "balance") &&
        px_parse_i64(cli_get(opts, "balance"), 0, 999999999999LL, &v) != PX_OK)
        return px_error_set(e, PX_EINVAL, "--balance: minor units (fen), 0 or more");
    n->balance_minor = v;
    if (!n->pan || !n->name || !n->bank_id || !n->expiry)
        return px_error_set(e, PX_EINVAL, "--pan, --name, --bank and --expiry are required");
    return PX_OK;
}

static int cardholder_add(int argc, char **argv)
{
    cli_opt opts[] = {{"pan", 0, "card number (never stored in the clear)", NULL},
                      {"name", 0, "cardholder name", NULL},
                      {"bank", 0, "bank id (its BIN ranges must hold the card)", NULL},
                      {"expiry", 0, "YYMM", NULL},
                      {"method", 0, "pvv (default) or ibm3624", NULL},
                      {"pvv", 0, "Visa PVV, 4 digits", NULL},
                      {"pvki", 0, "PVV key index 0..9 (default 1)", NULL},
                      {"offset", 0, "IBM 3624 offset, 4..12 digits", NULL},
                      {"pvk", 0, "PIN verification key label (default the demo key)", NULL},
                      {"pin-block", 0, "compute the PVV/offset from this format 0 block", NULL},
                      {"pin-key", 0, "label of the P0 key --pin-block is under", NULL},
                      {"balance", 0, "opening balance in fen (default 0)", NULL},
                      {"currency", 0, "ISO 4217 numeric (default 156)", NULL},
                      STORE_OPTS,
                      {0, 0, 0, 0}};
    issuer_cardholder_new n;
    issuer_cli x;
    char computed[13], masked[24];
    px_error e = {0};
    int rc =
        cli_parse(argc, argv, 1, opts, NULL, 0, NULL,
                  "possum issuer cardholder add --pan PAN --name NAME --bank ID --expiry YYMM "
                  "(--pvv NNNN | --offset DIGITS | --pin-block HEX --pin-key LABEL) [OPTIONS]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (new_from_opts(opts, &n, &e) != PX_OK)
        return cli_usage_error("cardholder add: %s", px_error_text(&e));
    rc = cli_open(&x, opts, 1, 0, &e);
    if (rc == PX_OK)
        rc = pin_check_of(&x, opts, &n, computed, &e);
    if (rc == PX_OK)
        rc = issuer_cardholder_add(x.core, &n, &e);
    cli_close(&x);
    OPENSSL_cleanse(computed, sizeof computed);
    if (rc != PX_OK)
        return cli_fail("cardholder add: %s", px_error_text(&e));
    px_mask_pan(n.pan, masked, sizeof masked);
    printf("cardholder %s added to %s\n", masked, n.bank_id);
    return CLI_OK;
}

static int print_row(void *ud, const issuer_cardholder_row *r)
{
    (void)ud;
    printf("%-20s %-10s %-12s %-6s %-8s %-5lld %-8s %lld.%02lld %s\n", r->pan_masked, r->name,
           r->bank_id, r->expiry, r->pin_method, (long long)r->pin_tries, r->status,
           (long long)(r->balance_minor / 100), (long long)(r->balance_minor % 100),
           strcmp(r->currency, "156") == 0 ? "CNY" : r->currency);
    return 0;
}

static int cardholder_list(int argc, char **argv)
{
    cli_opt opts[] = {STORE_OPTS, {0, 0, 0, 0}};
    issuer_cli x;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL,
                       "possum issuer cardholder list [--config FILE | --db PATH]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    rc = cli_open(&x, opts, 0, 0, &e);
    if (rc == PX_OK) {
        printf("%-20s %-10s %-12s %-6s %-8s %-5s %-8s %s\n", "PAN", "NAME", "BANK", "EXPIRY", "PIN",
               "TRIES", "STATUS", "BALANCE");
        rc = issuer_cardholders_list(x.env.st, print_row, NULL, &e);
    }
    cli_close(&x);
    return rc == PX_OK ? CLI_OK : cli_fail("cardholder list: %s", px_error_text(&e));
}

static int cardholder_reset(int argc, char **argv)
{
    cli_opt opts[] = {{"pan", 0, "the card", NULL}, STORE_OPTS, {0, 0, 0, 0}};
    issuer_cli x;
    px_error e = {0};
    int rc =
        cli_parse(argc, argv, 1, opts, NULL, 0, NULL,
                  "possum issuer cardholder reset-pin-tries --pan PAN [--config FILE | --db PATH]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (cli_get(opts, "pan") == NULL)
        return cli_usage_error("cardholder reset-pin-tries: --pan is required");
    rc = cli_open(&x, opts, 1, 0, &e);
    if (rc == PX_OK)
        rc = issuer_cardholder_reset_pin_tries(x.core, cli_get(opts, "pan"), &e);
    cli_close(&x);
    if (rc != PX_OK)
        return cli_fail("cardholder reset-pin-tries: %s", px_error_text(&e));
    printf("wrong-PIN counter reset\n");
    return CLI_OK;
}

static int issuer_cardholder(int argc, char **argv)
{
    static const cli_command sub[] = {
        {"add", cardholder_add, "add a cardholder (PAN encrypted in the HSM)"},
        {"list", cardholder_list, "list cardholders, PANs masked, with balances"},
        {"reset-pin-tries", cardholder_reset, "clear a card's wrong-PIN counter (after 75)"},
        {0, 0, 0}};
    return cli_dispatch("possum issuer cardholder", sub, argc, argv);
}

static int issuer_bank(int argc, char **argv)
{
    cli_opt opts[] = {{"id", 0, "bank id, 1..16 characters", NULL},
                      {"name", 0, "bank name (for a new bank)", NULL},
                      {"bin-low", 0, "first BIN of a range, 6..11 digits", NULL},
                      {"bin-high", 0, "last BIN of the range (default bin-low)", NULL},
                      {"not-contracted", 1, "a bank whose cards get 15", NULL},
                      STORE_OPTS,
                      {0, 0, 0, 0}};
    const char *low, *high;
    issuer_cli x;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL,
                       "possum issuer bank --id ID [--name NAME] [--bin-low BIN [--bin-high BIN]] "
                       "[--not-contracted] [--config FILE | --db PATH]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    low = cli_get(opts, "bin-low");
    high = cli_get(opts, "bin-high") ? cli_get(opts, "bin-high") : low;
    if (cli_get(opts, "id") == NULL || (cli_get(opts, "name") == NULL && low == NULL))
        return cli_usage_error("bank: --id and --name (new bank) or --bin-low (new range)");
    rc = cli_open(&x, opts, 0, 0, &e);
    if (rc == PX_OK && cli_get(opts, "name") != NULL)
        rc = issuer_bank_add(x.env.st, cli_get(opts, "id"), cli_get(opts, "name"),
                             !cli_has(opts, "not-contracted"), &e);
    if (rc == PX_OK && low != NULL)
        rc = issuer_bin_range_add(x.env.st, cli_get(opts, "id"), low, high, &e);
    cli_close(&x);
    if (rc != PX_OK)
        return cli_fail("bank: %s", px_error_text(&e));
    printf("bank %s updated\n", cli_get(opts, "id"));
    return CLI_OK;
}

static int issuer_seed(int argc, char **argv)
{
    cli_opt opts[] = {STORE_OPTS, {0, 0, 0, 0}};
    issuer_cli x;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL,
                       "possum issuer seed-demo [--config FILE | --db PATH]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    px_log_setup(PX_LOG_INFO, PX_LOG_TEXT, NULL);
    rc = cli_open(&x, opts, 1, 1, &e);
    cli_close(&x);
    if (rc != PX_OK)
        return cli_fail("seed-demo: %s", px_error_text(&e));
    printf("demo banks, keys and cardholders are in place (docs/issuer.md)\n");
    return CLI_OK;
}

int cmd_issuer(int argc, char **argv)
{
    static const cli_command sub[] = {
        {"clearing", issuer_clearing, "write the day's clearing file (clearing-YYYYMMDD.csv)"},
        {"cardholder", issuer_cardholder, "add, list cardholders; reset PIN tries"},
        {"bank", issuer_bank, "add a bank or a BIN range"},
        {"seed-demo", issuer_seed, "create the demo banks, keys and cardholders"},
        {0, 0, 0}};
    return cli_dispatch("possum issuer", sub, argc, argv);
}
