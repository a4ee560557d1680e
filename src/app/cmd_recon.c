/*
 * possum recon run --date YYYY-MM-DD [--file PATH] [--config FILE]
 *   Reconcile one business day: the platform's journal against the provider's clearing file
 *   (docs/switch-protocol.md section 3), by RRN and type. Prints every difference (missing on
 *   the platform, missing at the provider, amount mismatches), then sends the payee credit of
 *   each matched mobile-number debit not credited yet (seed 002 [0055]) and queues the
 *   payee's notification. Safe to run twice: the second run changes nothing and says so.
 *   Exit status: 0 everything matched and credited, 3 differences or credits still owed,
 *   1 the run failed (the file does not parse, the store failed), 2 usage.
 *   See docs/phonepay.md, "Reconciliation".
 */
#include "app/cli.h"
#include "app/cli_env.h"
#include "host/phonepay/phonepay_recon.h"
#include "lib/config.h"
#include "lib/log.h"

#include <stdio.h>
#include <string.h>

const char cmd_recon_summary[] = "reconcile a day with the provider's clearing file, credit payees";

#define DEFAULT_CONFIG "etc/possum.ini"
#define CLI_DIFFERENCES 3

static const cli_env_spec recon_env = {DEFAULT_CONFIG, NULL, NULL};

static int recon_run(int argc, char **argv)
{
    cli_opt opts[] = {
        {"date", 0, "business day, YYYY-MM-DD (required)", NULL},
        {"file", 0,
         "clearing file; default [phonepay] clearing_dir/"
         "clearing-YYYYMMDD.csv",
         NULL},
        {"config", 0, "configuration ([store], [phonepay]); default " DEFAULT_CONFIG, NULL},
        {0, 0, 0, 0}};
    cli_env x;
    phonepay *pp = NULL;
    phonepay_recon_report r;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL,
                       "possum recon run --date YYYY-MM-DD [--file PATH] [--config FILE]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (cli_get(opts, "date") == NULL)
        return cli_usage_error("recon run: --date YYYY-MM-DD is required");
    px_log_setup(PX_LOG_WARN, PX_LOG_TEXT, NULL);
    cli_env_init(&x, &recon_env);
    rc = cli_env_open(&x, opts, CLI_ENV_CONFIG, &e); /* phonepay opens its store itself */
    if (rc == PX_OK)
        rc = phonepay_open(x.ini, &pp, &e);
    if (rc == PX_OK)
        rc = phonepay_recon_run(pp, cli_get(opts, "date"), cli_get(opts, "file"), stdout, &r, &e);
    phonepay_close(pp);
    cli_env_close(&x);
    if (rc != PX_OK)
        return cli_fail("recon run: %s", px_error_text(&e));
    printf("recon %s run %lld: %zu lines, %zu matched, %zu missing on the platform, %zu missing "
           "at the provider, %zu amount mismatches\n",
           cli_get(opts, "date"), (long long)r.runs, r.lines, r.matched, r.missing_platform,
           r.missing_provider, r.mismatched);
    printf("payee credits: %zu sent now, %zu credited before, %zu failed (sent again next run)\n",
           r.credited_now, r.credited_before, r.credit_failed);
    if (r.credited_now == 0 && r.credit_failed == 0 && r.runs > 1)
        printf("nothing changed: this day was reconciled before\n");
    return r.missing_platform || r.missing_provider || r.mismatched || r.credit_failed
               ? CLI_DIFFERENCES
               : CLI_OK;
}

int cmd_recon(int argc, char **argv)
{
    static const cli_command sub[] = {
        {"run", recon_run, "reconcile one business day and credit the payees"}, {0, 0, 0}};
    return cli_dispatch_config("possum recon", sub, argc, argv);
}
