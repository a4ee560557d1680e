/*
 * possum ledger: the transaction platform's double-entry ledger (docs/ledger.md):
 *   check     every account's balance equals the sum of its entries, every transaction's
 *             entries sum to zero, every posted request has its entries and no entry lacks
 *             one; exit status 0 when all hold, 1 otherwise
 *   balances  every account and its balance
 *   batch TID BATCH   a terminal's batch: our totals, the terminal's, and what differs
 *             between our journal and its batch upload
 * The store comes from --config FILE ([store]) or --db PATH.
 */
#include "app/cli.h"
#include "app/cli_env.h"
#include "host/switch/ledger.h"
#include "lib/str.h"

#include <stdio.h>
#include <string.h>

const char cmd_ledger_summary[] = "the transaction platform's ledger: check, balances, batches";

#define DEFAULT_CONFIG "etc/possum.ini"

/* clang-format off */
#define STORE_OPTS                                                                                 \
    {"config", 0, "configuration with [store]; default etc/possum.ini", NULL},                     \
    {"db", 0, "a SQLite database file instead of --config", NULL}
/* clang-format on */

static const cli_env_spec ledger_env = {DEFAULT_CONFIG, NULL, NULL};

/* The store from --config or --db (cli_env.h). */
static int cli_open(cli_env *x, const cli_opt *opts, px_error *e)
{
    cli_env_init(x, &ledger_env);
    return cli_env_open(x, opts, CLI_ENV_DB | CLI_ENV_STORE, e);
}

static void money(int64_t minor, char out[32])
{
    int64_t a = minor < 0 ? -minor : minor;
    snprintf(out, 32, "%s%lld.%02lld", minor < 0 ? "-" : "", (long long)(a / 100),
             (long long)(a % 100));
}

static void print_problem(void *ud, const char *line)
{
    (void)ud;
    printf("  PROBLEM %s\n", line);
}

static int ledger_check(int argc, char **argv)
{
    cli_opt opts[] = {STORE_OPTS, {0, 0, 0, 0}};
    cli_env x;
    switch_ledger_check_result r;
    px_error e = {0};
    int bad;
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL,
                       "possum ledger check [--config FILE | --db PATH]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    rc = cli_open(&x, opts, &e);
    if (rc == PX_OK)
        rc = switch_ledger_check(x.st, &r, print_problem, NULL, &e);
    cli_env_close(&x);
    if (rc != PX_OK)
        return cli_fail("ledger check: %s", px_error_text(&e));
    bad = r.bad_balances || r.bad_txns || r.unposted || r.orphans;
    printf("ledger check: %lld accounts, %lld transactions, %lld entries\n"
           "  balances equal to the sum of their entries: %s\n"
           "  transactions that sum to zero:              %s\n"
           "  posted requests with their entries:         %s\n"
           "  entries without a posted request:           %lld\n"
           "  (requests at the provider: %lld; reversals owed to the provider: %lld)\n"
           "%s\n",
           (long long)r.accounts, (long long)r.txns, (long long)r.entries,
           r.bad_balances ? "NO" : "yes", r.bad_txns ? "NO" : "yes", r.unposted ? "NO" : "yes",
           (long long)r.orphans, (long long)r.pending, (long long)r.outbox,
           bad ? "ledger check FAILED" : "ledger check OK");
    return bad ? CLI_FAIL : CLI_OK;
}

typedef struct bal_totals {
    int64_t sum;
    size_t n;
} bal_totals;

static int print_balance(void *ud, const switch_ledger_account *a)
{
    bal_totals *t = ud;
    char m[32];
    money(a->balance, m);
    printf("%-40s %-9s %16s  (%lld entries)\n", a->id, a->kind, m, (long long)a->entries);
    t->sum += a->balance;
    t->n++;
    return 0;
}

static int ledger_balances(int argc, char **argv)
{
    cli_opt opts[] = {STORE_OPTS, {0, 0, 0, 0}};
    cli_env x;
    bal_totals t = {0, 0};
    char m[32];
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL,
                       "possum ledger balances [--config FILE | --db PATH]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    rc = cli_open(&x, opts, &e);
    if (rc == PX_OK) {
        printf("%-40s %-9s %16s  (debit +, credit -; CNY)\n", "account", "kind", "balance");
        rc = switch_ledger_balances(x.st, print_balance, &t, &e);
    }
    cli_env_close(&x);
    if (rc != PX_OK)
        return cli_fail("ledger balances: %s", px_error_text(&e));
    money(t.sum, m);
    printf("%zu accounts; sum of all balances %s (must be 0.00)\n", t.n, m);
    return t.sum == 0 ? CLI_OK : CLI_FAIL;
}

static int print_diff(void *ud, const switch_batch_diff *d)
{
    char a[32], b[32];
    (*(size_t *)ud)++;
    money(d->amount_switch, a);
    money(d->amount_terminal, b);
    if (strcmp(d->side, "switch-only") == 0)
        printf("  %-14s STAN %s  %-8s %12s  (approved here, not in the terminal's upload)\n",
               d->side, d->stan, d->ttype, a);
    else if (strcmp(d->side, "terminal-only") == 0)
        printf("  %-14s STAN %s  %-8s %12s  (uploaded, not approved here)\n", d->side, d->stan,
               d->ttype, b);
    else
        printf("  %-14s STAN %s  %-8s switch %s, terminal %s\n", d->side, d->stan, d->ttype, a, b);
    return 0;
}

static int ledger_batch(int argc, char **argv)
{
    cli_opt opts[] = {STORE_OPTS, {0, 0, 0, 0}};
    const char *pos[2];
    size_t npos = 0, ndiff = 0;
    cli_env x;
    switch_batch_report b;
    int64_t batch;
    char m1[32], m2[32], m3[32], m4[32];
    px_error e = {0};
    static const char *const results[] = {"not settled", "balanced", "NOT balanced"};
    int rc = cli_parse(argc, argv, 1, opts, pos, 2, &npos,
                       "possum ledger batch TID BATCH [--config FILE | --db PATH]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (npos != 2 || px_parse_i64(pos[1], 0, 999999, &batch) != PX_OK)
        return cli_usage_error("ledger batch: TID BATCH (a batch number, up to 6 digits)");
    rc = cli_open(&x, opts, &e);
    if (rc == PX_OK) {
        rc = switch_ledger_batch(x.st, pos[0], batch, &b, NULL, NULL, &e);
        if (rc == PX_OK) {
            money(b.sw_debit_amount, m1);
            money(b.sw_credit_amount, m2);
            printf("terminal %s batch %06lld: %s, %s\n", b.tid, (long long)b.batch_no, b.state,
                   results[b.result < 0 || b.result > 2 ? 0 : b.result]);
            printf("  switch:   debits %lld = %s, credits %lld = %s\n", (long long)b.sw_debit_count,
                   m1, (long long)b.sw_credit_count, m2);
            if (b.result != 0) {
                money(b.term_debit_amount, m3);
                money(b.term_credit_amount, m4);
                printf("  terminal: debits %lld = %s, credits %lld = %s\n",
                       (long long)b.term_debit_count, m3, (long long)b.term_credit_count, m4);
            }
            printf("  batch upload: %lld entries\n", (long long)b.uploaded);
            if (b.uploaded > 0)
                rc = switch_ledger_batch(x.st, pos[0], batch, &b, print_diff, &ndiff, &e);
            if (rc == PX_OK && b.uploaded > 0)
                printf("  %zu difference%s\n", ndiff, ndiff == 1 ? "" : "s");
        }
    }
    cli_env_close(&x);
    if (rc != PX_OK)
        return cli_fail("ledger batch: %s", px_error_text(&e));
    return CLI_OK;
}

int cmd_ledger(int argc, char **argv)
{
    static const cli_command sub[] = {
        {"check", ledger_check, "verify balances, transactions and postings"},
        {"balances", ledger_balances, "every account's balance"},
        {"batch", ledger_batch, "a terminal's batch: totals and differences with its upload"},
        {0, 0, 0}};
    return cli_dispatch_config("possum ledger", sub, argc, argv);
}
