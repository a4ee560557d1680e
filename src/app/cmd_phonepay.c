/*
 * possum phonepay: operator commands of mobile-number payment (docs/phonepay.md):
 *   bin add BIN BANK     a contracted bank's card BIN (6..11 digits): payer cards of other
 *                        banks are refused with 15 (seed 002 claim 4, [0053])
 *   bin list             the contracted BINs
 *   payees               every payee, card masked
 *   outbox               notifications not yet delivered (or failed), text withheld
 * The store comes from --config FILE ([store]); default etc/possum.ini.
 */
#include "app/cli.h"
#include "app/cli_env.h"
#include "host/phonepay/phonepay.h"
#include "lib/config.h"
#include "lib/str.h"
#include "lib/time.h"
#include "store/store.h"

#include <stdio.h>
#include <string.h>

const char cmd_phonepay_summary[] = "mobile-number payment: contracted BINs, payees, outbox";

#define DEFAULT_CONFIG "etc/possum.ini"
/* clang-format off */
#define CONFIG_OPT {"config", 0, "configuration with [store]; default " DEFAULT_CONFIG, NULL}
/* clang-format on */

static const cli_env_spec phonepay_env = {DEFAULT_CONFIG, NULL, NULL};

/* The store from --config (cli_env.h). */
static int cli_open(cli_env *x, const cli_opt *opts, px_error *e)
{
    cli_env_init(x, &phonepay_env);
    return cli_env_open(x, opts, CLI_ENV_CONFIG | CLI_ENV_STORE, e);
}

static int bin_add(int argc, char **argv)
{
    cli_opt opts[] = {CONFIG_OPT, {0, 0, 0, 0}};
    const char *pos[2];
    size_t npos = 0, n;
    cli_env x;
    store_stmt *s;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, pos, 2, &npos,
                       "possum phonepay bin add BIN BANK [--config FILE]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    n = npos == 2 ? strlen(pos[0]) : 0;
    if (n < 6 || n > 11 || !px_is_digits(pos[0], n) || strlen(pos[1]) < 1 || strlen(pos[1]) > 64)
        return cli_usage_error("bin add: BIN is 6..11 digits, BANK 1..64 bytes");
    rc = cli_open(&x, opts, &e);
    if (rc == PX_OK && (rc = store_prepare(x.st,
                                           "INSERT INTO phonepay_bin (bin, bank, created_ms) "
                                           "VALUES ($1, $2, $3) ON CONFLICT (bin) DO UPDATE "
                                           "SET bank = excluded.bank",
                                           &s, &e)) == PX_OK) {
        store_bind_text(s, 1, pos[0]);
        store_bind_text(s, 2, pos[1]);
        store_bind_int64(s, 3, px_now_ms());
        rc = store_step(s, &e);
        store_done(s);
    }
    cli_env_close(&x);
    if (rc < 0)
        return cli_fail("bin add: %s", px_error_text(&e));
    printf("BIN %s: %s (contracted)\n", pos[0], pos[1]);
    return CLI_OK;
}

/* Print every row of sql (text columns) with fmt's column count. */
static int list(int argc, char **argv, const char *synopsis, const char *sql, int cols)
{
    cli_opt opts[] = {CONFIG_OPT, {0, 0, 0, 0}};
    cli_env x;
    store_stmt *s;
    px_error e = {0};
    size_t rows = 0;
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL, synopsis);
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    rc = cli_open(&x, opts, &e);
    if (rc == PX_OK && (rc = store_prepare(x.st, sql, &s, &e)) == PX_OK) {
        while ((rc = store_step(s, &e)) == STORE_ROW) {
            for (int c = 0; c < cols; c++) {
                const char *v = store_col_text(s, c);
                printf("%s%s", c ? "  " : "", v ? v : "-");
            }
            printf("\n");
            rows++;
        }
        store_done(s);
    }
    cli_env_close(&x);
    if (rc < 0)
        return cli_fail("%s", px_error_text(&e));
    printf("(%zu)\n", rows);
    return CLI_OK;
}

static int bin_list(int argc, char **argv)
{
    return list(argc, argv, "possum phonepay bin list [--config FILE]",
                "SELECT bin, bank FROM phonepay_bin ORDER BY bin LIMIT 100000", 2);
}

static int bin_cmd(int argc, char **argv)
{
    static const cli_command sub[] = {{"add", bin_add, "add a contracted bank's BIN"},
                                      {"list", bin_list, "list the contracted BINs"},
                                      {0, 0, 0}};
    return cli_dispatch("possum phonepay bin", sub, argc, argv);
}

static int payees(int argc, char **argv)
{
    return list(argc, argv, "possum phonepay payees [--config FILE]",
                "SELECT mobile, status, card_masked, name FROM phonepay_payee ORDER BY mobile "
                "LIMIT 100000",
                4);
}

static int outbox(int argc, char **argv)
{
    return list(argc, argv, "possum phonepay outbox [--config FILE]",
                "SELECT id, state, CAST(attempts AS TEXT), COALESCE(last_error, '') FROM "
                "phonepay_outbox WHERE state <> 'sent' ORDER BY created_ms LIMIT 100000",
                4);
}

int cmd_phonepay(int argc, char **argv)
{
    static const cli_command sub[] = {{"bin", bin_cmd, "contracted banks by BIN: add, list"},
                                      {"payees", payees, "registered payees (cards masked)"},
                                      {"outbox", outbox, "notifications not delivered yet"},
                                      {0, 0, 0}};
    return cli_dispatch_config("possum phonepay", sub, argc, argv);
}
