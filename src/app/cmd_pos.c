/*
 * possum pos: a POS terminal on the command line, on the terminal agent of src/device/pos
 * (docs/pos.md). Every flow runs from flags for scripts; with no subcommand on a terminal
 * (or `possum pos screen`) it is an interactive POS screen. Exit status: 0 approved,
 * 1 declined or failed, 2 usage.
 */
#include "app/cli.h"
#include "lib/mobile_cn.h"
#include "device/keyload/keyload.h"
#include "device/pos/pos.h"
#include "device/pos/screen.h"
#include "device/tmsclient/tmsclient.h"
#include "iso8583/iso8583.h"
#include "lib/buf.h"
#include "lib/hex.h"
#include "lib/str.h"
#include "lib/time.h"
#include "net/net.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char cmd_pos_summary[] =
    "a POS terminal: sign on, purchase, void, settle, mobile-number payment, echo";

/* clang-format off */
#define GLOBAL_OPTS                                                                                \
    {"data", 0, "the terminal's directory (default var/pos/TID)", NULL},                           \
    {"host", 0, "transaction platform address (default 127.0.0.1)", NULL},                         \
    {"port", 0, "its port (default 5000)", NULL},                                                  \
    {"tid", 0, "terminal id, 8 characters (default 10000001)", NULL},                              \
    {"mid", 0, "merchant id, 15 characters (default 898100000000001)", NULL},                      \
    {"timeout-ms", 0, "how long to wait for an answer (default 30000)", NULL}
#define CARD_OPTS                                                                                  \
    {"card", 0, "card number typed in (12-19 digits)", NULL},                                      \
    {"track2", 0, "track 2 data as swiped: PAN=YYMM...", NULL},                                    \
    {"expiry", 0, "expiry YYMM, with --card", NULL},                                               \
    {"pin", 0, "PIN digits (scripts and tests only: visible to ps)", NULL}
/* clang-format on */
#define NGLOBAL 6
#define CARD_SYN "--card PAN|--track2 DATA [--expiry YYMM] [--pin DIGITS]"
#define SYN_PURCHASE "possum pos purchase --amount FEN " CARD_SYN
#define SYN_BALANCE "possum pos balance " CARD_SYN
#define SYN_VOID "possum pos void --rrn RRN --stan STAN [" CARD_SYN "]"
#define SYN_PHONEPAY                                                                               \
    "possum pos phonepay --payee MOBILE --payer MOBILE --amount FEN " CARD_SYN " [--yes]"

/* Global options given before the subcommand; the subcommand's own copies win. */
static cli_opt globals[] = {GLOBAL_OPTS, {0, 0, 0, 0}};

static const char *opt(const cli_opt *opts, const char *name)
{
    const char *v = cli_get(opts, name);
    return v != NULL ? v : cli_get(globals, name);
}

/* Defaults, then DIR/terminal.ini when there is one, then the flags. */
static int load_config(const cli_opt *opts, pos_config *c, int must_exist)
{
    px_error e = {0};
    int64_t v;
    int rc;
    pos_config_defaults(c);
    if (opt(opts, "tid") != NULL && px_strlcpy(c->tid, opt(opts, "tid"), sizeof c->tid) != PX_OK)
        return cli_usage_error("--tid: 8 characters");
    snprintf(c->serial, sizeof c->serial, "PP%s", c->tid);
    if (opt(opts, "data") != NULL)
        px_strlcpy(c->data_dir, opt(opts, "data"), sizeof c->data_dir);
    else
        snprintf(c->data_dir, sizeof c->data_dir, "var/pos/%s", c->tid);
    rc = pos_config_load(c, &e);
    if (rc != PX_OK && (rc != PX_ENOTFOUND || must_exist))
        return cli_fail("%s", px_error_text(&e));
    if (opt(opts, "tid") != NULL)
        px_strlcpy(c->tid, opt(opts, "tid"), sizeof c->tid);
    if (opt(opts, "mid") != NULL && px_strlcpy(c->mid, opt(opts, "mid"), sizeof c->mid) != PX_OK)
        return cli_usage_error("--mid: 15 characters");
    if (opt(opts, "host") != NULL)
        px_strlcpy(c->host, opt(opts, "host"), sizeof c->host);
    if (opt(opts, "port") != NULL) {
        if (px_parse_i64(opt(opts, "port"), 1, 65535, &v) != PX_OK)
            return cli_usage_error("--port: a number from 1 to 65535");
        c->port = v;
    }
    if (opt(opts, "timeout-ms") != NULL) {
        if (px_parse_i64(opt(opts, "timeout-ms"), 100, 600000, &v) != PX_OK)
            return cli_usage_error("--timeout-ms: a number from 100 to 600000");
        c->timeout_ms = v;
    }
    if (pos_config_check(c, &e) != PX_OK)
        return cli_usage_error("%s", px_error_text(&e));
    return CLI_OK;
}

static int open_terminal(const cli_opt *opts, pos_terminal **t)
{
    pos_config c;
    px_error e = {0};
    int rc = load_config(opts, &c, 1);
    if (rc != CLI_OK)
        return rc;
    if (pos_open(&c, t, &e) != PX_OK)
        return cli_fail("terminal %s: %s", c.tid, px_error_text(&e));
    return CLI_OK;
}

/* The result as a person reads it; the exit status follows the outcome. */
static int show(const pos_result *r)
{
    char line[PX_POS_TEXT_MAX + 128];
    pos_result_format(r, line, sizeof line);
    printf("%s\n", line);
    if ((r->outcome == POS_APPROVED || r->outcome == POS_DECLINED) && r->stan[0] != 0)
        printf("  STAN %s  batch %s%s%s\n", r->stan, r->batch, r->pan_masked[0] ? "  card " : "",
               r->pan_masked);
    if (r->outcome == POS_APPROVED && r->text[0] != 0 && strcmp(r->text, "approved") != 0)
        printf("  %s\n", r->text);
    if (r->update_waiting)
        printf("  NOTE: a program update waits at the TMS: check in\n");
    if (r->resign_required)
        printf("  NOTE: the platform asks for a new sign-on\n");
    fflush(stdout);
    return r->outcome == POS_APPROVED ? CLI_OK : CLI_FAIL;
}

static int flow_error(const px_error *e)
{
    return cli_fail("terminal error: %s", px_error_text(e));
}

/* Card from --card/--track2/--expiry and, with --pin, the PIN block made by the PIN pad.
 * The PIN's characters in argv are wiped once used. */
static int card_and_pin(pos_terminal *t, cli_opt *opts, pos_card *card, uint8_t pb[8], int *has_pin)
{
    px_error e = {0};
    char *pin = (char *)cli_get(opts, "pin");
    int rc;
    *has_pin = 0;
    if (pos_card_parse(cli_get(opts, "card"), cli_get(opts, "track2"), cli_get(opts, "expiry"),
                       card, &e) != PX_OK)
        return cli_usage_error("%s", px_error_text(&e));
    if (pin == NULL)
        return CLI_OK;
    rc = pinpad_pin_block(pos_pinpad(t), pin, card->pan, pb, &e);
    OPENSSL_cleanse(pin, strlen(pin));
    if (rc == PX_ESTATE)
        return cli_fail("%s", px_error_text(&e));
    if (rc != PX_OK)
        return cli_usage_error("%s", px_error_text(&e));
    *has_pin = 1;
    return CLI_OK;
}

static int parse_amount_fen(const char *s, int64_t *out)
{
    if (s == NULL)
        return cli_usage_error("--amount FEN is required");
    if (px_parse_i64(s, 1, POS_AMOUNT_MAX, out) != PX_OK)
        return cli_usage_error("--amount: fen (minor units), 1 to %lld", POS_AMOUNT_MAX);
    return CLI_OK;
}

/* ---- init and status ------------------------------------------------------------------- */

/* "HEX[:KCV],HEX[:KCV]...": components of 16 bytes, check values all given or none. */
static int load_components(pinpad *pp, char *arg, const char *tmk_kcv)
{
    uint8_t comp[9][16], kcv[9][8], tk[8];
    const uint8_t *cp[9], *kp[9];
    size_t n = 0, nk = 0, kl = 0, len, tkl = 0, arglen = strlen(arg);
    px_error e = {0};
    pinpad_key_info info;
    int rc = CLI_OK;
    for (char *save = arg, *c; rc == CLI_OK && (c = strsep(&save, ",")) != NULL; n++) {
        char *k = strchr(c, ':');
        if (k != NULL)
            *k++ = 0;
        if (n >= 9 || px_hex_decode(c, comp[n], 16, &len) != PX_OK || len != 16)
            rc = cli_usage_error("--tmk-components: up to 9 components of 32 hex digits");
        else if (k != NULL && (px_hex_decode(k, kcv[n], 8, &kl) != PX_OK || kl < 3))
            rc = cli_usage_error("--tmk-components: a check value is 6 to 16 hex digits");
        cp[n] = comp[n];
        kp[n] = kcv[n];
        nk += k != NULL;
    }
    if (rc == CLI_OK && nk != 0 && nk != n)
        rc = cli_usage_error("--tmk-components: give a check value for every component or none");
    if (rc == CLI_OK && tmk_kcv != NULL &&
        (px_hex_decode(tmk_kcv, tk, 8, &tkl) != PX_OK || tkl < 3))
        rc = cli_usage_error("--tmk-kcv: 6 to 16 hex digits");
    if (rc == CLI_OK && pinpad_load_tmk_components(pp, cp, n, nk ? kp : NULL, kl,
                                                   tmk_kcv ? tk : NULL, tkl, &e) != PX_OK)
        rc = cli_fail("TMK not loaded: %s", px_error_text(&e));
    OPENSSL_cleanse(comp, sizeof comp);
    OPENSSL_cleanse(arg, arglen); /* strsep cut it up: wipe all of it */
    if (rc == CLI_OK) {
        pinpad_key_info_get(pp, PINPAD_TMK, &info);
        printf("TMK loaded into the PIN pad from %zu components: check value %s\n", n, info.kcv);
    }
    return rc;
}

static int pos_init_cmd(int argc, char **argv)
{
    cli_opt opts[] = {
        GLOBAL_OPTS,
        {"serial", 0, "the PIN pad's serial number (default PP + TID)", NULL},
        {"tls-ca", 0, "CA file: talk TLS to the platform", NULL},
        {"tls-cert", 0, "client certificate for mutual TLS", NULL},
        {"tls-key", 0, "its key", NULL},
        {"tmk-components", 0, "HEX[:KCV],HEX[:KCV]: the TMK from clear components", NULL},
        {"tmk-kcv", 0, "check value of the combined TMK", NULL},
        {0, 0, 0, 0}};
    pos_config c;
    pos_terminal *t = NULL;
    px_error e = {0};
    int exists, rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL, "possum pos init [OPTIONS]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if ((rc = load_config(opts, &c, 0)) != CLI_OK)
        return rc;
    exists = pos_config_load(&c, NULL) == PX_OK;
    if (cli_get(opts, "serial") != NULL)
        px_strlcpy(c.serial, cli_get(opts, "serial"), sizeof c.serial);
    if (cli_get(opts, "tls-ca") != NULL)
        px_strlcpy(c.tls_ca, cli_get(opts, "tls-ca"), sizeof c.tls_ca);
    if (cli_get(opts, "tls-cert") != NULL)
        px_strlcpy(c.tls_cert, cli_get(opts, "tls-cert"), sizeof c.tls_cert);
    if (cli_get(opts, "tls-key") != NULL)
        px_strlcpy(c.tls_key, cli_get(opts, "tls-key"), sizeof c.tls_key);
    if (exists && cli_get(opts, "tmk-components") == NULL)
        return cli_fail("%s: a terminal is already there", c.data_dir);
    if (!exists && pos_init(&c, &e) != PX_OK)
        return cli_fail("%s", px_error_text(&e));
    if (!exists)
        printf("Terminal %s of merchant %s created in %s (PIN pad %s, platform %s:%lld)\n", c.tid,
               c.mid, c.data_dir, c.serial, c.host, (long long)c.port);
    if (cli_get(opts, "tmk-components") == NULL)
        return CLI_OK;
    if (pos_open(&c, &t, &e) != PX_OK)
        return cli_fail("%s", px_error_text(&e));
    rc = load_components(pos_pinpad(t), (char *)cli_get(opts, "tmk-components"),
                         cli_get(opts, "tmk-kcv"));
    pos_close(t);
    return rc;
}

static void show_keys(const pos_status *s)
{
    printf("PIN pad keys (check values only; keys never leave the PIN pad):\n");
    for (int i = 0; i < PINPAD_SLOTS; i++) {
        char when[32] = "";
        if (s->keys[i].present)
            px_time_iso8601(s->keys[i].loaded_ms, when, sizeof when);
        printf("  %-4s %s%s%s\n", pinpad_slot_name((pinpad_slot)i),
               s->keys[i].present ? s->keys[i].kcv : "absent",
               s->keys[i].present ? "  loaded " : "", when);
    }
}

static int pos_status_cmd(int argc, char **argv)
{
    cli_opt opts[] = {
        GLOBAL_OPTS, {"list", 1, "list the open batch's transactions", NULL}, {0, 0, 0, 0}};
    pos_terminal *t = NULL;
    pos_status s;
    pos_batch_entry b;
    char amt[32];
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL, "possum pos status [OPTIONS]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if ((rc = open_terminal(opts, &t)) != CLI_OK)
        return rc;
    const pos_config *c = pos_get_config(t);
    pos_status_get(t, &s);
    printf("Terminal %s  merchant %s  PIN pad %s\n", c->tid, c->mid, c->serial);
    printf("Platform %s:%lld%s\n", c->host, (long long)c->port, c->tls_ca[0] ? " (TLS)" : "");
    printf("Batch %06u  last STAN %06u  signed on: %s\n", s.batch, s.stan,
           s.signed_on ? "yes" : "no");
    printf("Update waiting at the TMS: %s\n", s.update_waiting ? "yes" : "no");
    pos_amount_format(s.reversal_amount_minor, amt, sizeof amt);
    if (s.reversal_pending)
        printf("Pending reversal: STAN %s, %s CNY, reason %s, sent %d times\n", s.reversal_stan,
               amt, s.reversal_reason, s.reversal_sends);
    else
        printf("Pending reversal: none\n");
    pos_amount_format(s.debit_minor, amt, sizeof amt);
    printf("Open batch: %zu transaction%s, %zu debit%s totalling %s CNY", s.batch_count,
           s.batch_count == 1 ? "" : "s", s.debit_count, s.debit_count == 1 ? "" : "s", amt);
    pos_amount_format(s.credit_minor, amt, sizeof amt);
    printf(", %zu credit%s (voids) totalling %s CNY\n", s.credit_count,
           s.credit_count == 1 ? "" : "s", amt);
    for (size_t i = 0; cli_has(opts, "list") && pos_batch_get(t, i, &b) == PX_OK; i++) {
        pos_amount_format(b.amount_minor, amt, sizeof amt);
        printf("  %c STAN %s RRN %-12s auth %-6s %s CNY card %s%s\n", b.kind, b.stan, b.rrn,
               b.auth_code, amt, b.pan_masked, b.voided ? " (voided)" : "");
    }
    show_keys(&s);
    pos_close(t);
    return CLI_OK;
}

/* ---- flows from flags -------------------------------------------------------------------- */

static int pos_signon_cmd(int argc, char **argv)
{
    cli_opt opts[] = {GLOBAL_OPTS,
                      {"force", 1, "drop an unsettled batch (kept in batch-N.txt)", NULL},
                      {0, 0, 0, 0}};
    pos_terminal *t = NULL;
    pos_result r;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL, "possum pos signon [OPTIONS]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if ((rc = open_terminal(opts, &t)) != CLI_OK)
        return rc;
    rc = pos_signon(t, cli_has(opts, "force"), &r, &e) == PX_OK ? show(&r) : flow_error(&e);
    pos_close(t);
    return rc;
}

/* signoff, settle, reversal: no options of their own. */
static int simple_flow(int argc, char **argv, const char *synopsis,
                       int (*fn)(pos_terminal *, pos_result *, px_error *))
{
    cli_opt opts[] = {GLOBAL_OPTS, {0, 0, 0, 0}};
    pos_terminal *t = NULL;
    pos_result r;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL, synopsis);
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if ((rc = open_terminal(opts, &t)) != CLI_OK)
        return rc;
    rc = fn(t, &r, &e) == PX_OK ? show(&r) : flow_error(&e);
    pos_close(t);
    return rc;
}

static int pos_signoff_cmd(int argc, char **argv)
{
    return simple_flow(argc, argv, "possum pos signoff [OPTIONS]", pos_signoff);
}

static int pos_settle_cmd(int argc, char **argv)
{
    return simple_flow(argc, argv, "possum pos settle [OPTIONS]", pos_settle);
}

static int pos_reversal_cmd(int argc, char **argv)
{
    return simple_flow(argc, argv, "possum pos reversal [OPTIONS]", pos_reversal_flush);
}

/* purchase and balance: a card, an optional PIN, and for a purchase an amount. */
static int card_flow(int argc, char **argv, int is_purchase)
{
    cli_opt opts[] = {GLOBAL_OPTS,
                      CARD_OPTS,
                      {"amount", 0, "amount in fen (1234 = 12.34 CNY)", NULL},
                      {0, 0, 0, 0}};
    pos_terminal *t = NULL;
    pos_card card;
    pos_result r;
    px_error e = {0};
    uint8_t pb[8];
    int64_t amount = 0;
    int has_pin = 0, rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL,
                                    is_purchase ? SYN_PURCHASE : SYN_BALANCE);
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (is_purchase && (rc = parse_amount_fen(cli_get(opts, "amount"), &amount)) != CLI_OK)
        return rc;
    if ((rc = open_terminal(opts, &t)) != CLI_OK)
        return rc;
    if ((rc = card_and_pin(t, opts, &card, pb, &has_pin)) == CLI_OK) {
        int frc = is_purchase ? pos_purchase(t, &card, amount, has_pin ? pb : NULL, &r, &e)
                              : pos_balance(t, &card, has_pin ? pb : NULL, &r, &e);
        rc = frc == PX_OK ? show(&r) : flow_error(&e);
    }
    OPENSSL_cleanse(&card, sizeof card);
    OPENSSL_cleanse(pb, sizeof pb);
    pos_close(t);
    return rc;
}

static int pos_purchase_cmd(int argc, char **argv)
{
    return card_flow(argc, argv, 1);
}

static int pos_balance_cmd(int argc, char **argv)
{
    return card_flow(argc, argv, 0);
}

static int pos_void_cmd(int argc, char **argv)
{
    cli_opt opts[] = {GLOBAL_OPTS,
                      CARD_OPTS,
                      {"rrn", 0, "the purchase's RRN", NULL},
                      {"stan", 0, "the purchase's STAN", NULL},
                      {0, 0, 0, 0}};
    pos_terminal *t = NULL;
    pos_card card;
    pos_result r;
    px_error e = {0};
    uint8_t pb[8];
    int has_pin = 0, given, rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL, SYN_VOID);
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (cli_get(opts, "rrn") == NULL || cli_get(opts, "stan") == NULL)
        return cli_usage_error("void: --rrn and --stan of the purchase are required");
    if ((rc = open_terminal(opts, &t)) != CLI_OK)
        return rc;
    given = cli_has(opts, "card") || cli_has(opts, "track2");
    if (!given && cli_has(opts, "pin"))
        rc = cli_usage_error("void: --pin goes with the card presented (--card or --track2)");
    if (rc == CLI_OK && given)
        rc = card_and_pin(t, opts, &card, pb, &has_pin);
    if (rc == CLI_OK)
        rc = pos_void(t, cli_get(opts, "rrn"), cli_get(opts, "stan"), given ? &card : NULL,
                      has_pin ? pb : NULL, &r, &e) == PX_OK
                 ? show(&r)
                 : flow_error(&e);
    OPENSSL_cleanse(&card, sizeof card);
    pos_close(t);
    return rc;
}

/* Ask the payer (y/N) on a terminal; from a script, only --yes confirms. */
static int confirm(const char *question, int yes)
{
    char ans[8] = "";
    if (yes)
        return 1;
    if (!isatty(0))
        return 0;
    printf("%s [y/N] ", question);
    fflush(stdout);
    return fgets(ans, sizeof ans, stdin) != NULL && (ans[0] == 'y' || ans[0] == 'Y');
}

static void show_payee(const pos_result *look, const char *payee, int64_t amount)
{
    char masked[12], amt[32];
    px_mobile_cn_mask(payee, masked);
    pos_amount_format(amount, amt, sizeof amt);
    printf("Payee %s  (mobile %s)  amount %s CNY\n", look->payee_name, masked, amt);
    fflush(stdout);
}

static int pos_phonepay_cmd(int argc, char **argv)
{
    cli_opt opts[] = {GLOBAL_OPTS,
                      CARD_OPTS,
                      {"payee", 0, "payee's mobile number (11 digits)", NULL},
                      {"payer", 0, "payer's mobile number", NULL},
                      {"amount", 0, "amount in fen", NULL},
                      {"yes", 1, "the payer confirms the payee without being asked", NULL},
                      {0, 0, 0, 0}};
    pos_terminal *t = NULL;
    pos_card card;
    pos_result look, r;
    px_error e = {0};
    uint8_t pb[8];
    int64_t amount = 0;
    int has_pin = 0, rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL, SYN_PHONEPAY);
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (cli_get(opts, "payee") == NULL || cli_get(opts, "payer") == NULL)
        return cli_usage_error("phonepay: --payee and --payer are required");
    if ((rc = parse_amount_fen(cli_get(opts, "amount"), &amount)) != CLI_OK)
        return rc;
    if ((rc = open_terminal(opts, &t)) != CLI_OK)
        return rc;
    if ((rc = card_and_pin(t, opts, &card, pb, &has_pin)) != CLI_OK) {
        pos_close(t);
        return rc;
    }
    if (pos_phonepay_lookup(t, cli_get(opts, "payee"), cli_get(opts, "payer"), amount, &look, &e) !=
        PX_OK)
        rc = flow_error(&e);
    else if (look.outcome != POS_APPROVED)
        rc = show(&look);
    else {
        show_payee(&look, cli_get(opts, "payee"), amount);
        if (!confirm("Pay this payee?", cli_has(opts, "yes"))) {
            printf("NOT CONFIRMED: nothing was paid (use --yes in scripts)\n");
            rc = CLI_FAIL;
        } else {
            rc = pos_phonepay_pay(t, cli_get(opts, "payee"), cli_get(opts, "payer"),
                                  look.lookup_ref, amount, &card, has_pin ? pb : NULL, &r,
                                  &e) == PX_OK
                     ? show(&r)
                     : flow_error(&e);
        }
    }
    OPENSSL_cleanse(&card, sizeof card);
    pos_close(t);
    return rc;
}

/* ---- echo (unchanged from the first version: no terminal directory needed) -------------- */

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

static int pos_echo_cmd(int argc, char **argv)
{
    cli_opt opts[] = {GLOBAL_OPTS,
                      {"mti", 0, "0800 (default) or 0820", NULL},
                      {"stan", 0, "system trace audit number (default 000001)", NULL},
                      {"verbose", 1, "print both messages field by field", NULL},
                      {0, 0, 0, 0}};
    const char *mti;
    pos_config c;
    int64_t timeout_ms = 5000, elapsed = 0;
    iso8583_msg req, rsp;
    const uint8_t *rc39;
    size_t n;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL, "possum pos echo [OPTIONS]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if ((rc = load_config(opts, &c, 0)) != CLI_OK)
        return rc;
    if (opt(opts, "timeout-ms") != NULL)
        timeout_ms = c.timeout_ms;
    mti = cli_get(opts, "mti") ? cli_get(opts, "mti") : "0800";
    if (strcmp(mti, "0800") != 0 && strcmp(mti, "0820") != 0)
        return cli_fail("--mti: '%s' is not 0800 or 0820", mti);
    if (build_echo(&req, mti, cli_get(opts, "stan") ? cli_get(opts, "stan") : "000001", c.tid,
                   c.mid, &e) != PX_OK)
        return cli_fail("%s", px_error_text(&e));
    printf("Terminal %s: sending echo test (%s) to %s:%lld\n", c.tid, mti, c.host,
           (long long)c.port);
    if (cli_has(opts, "verbose"))
        print_dump("-- request --", &req);
    if (exchange(c.host, (int)c.port, timeout_ms, &req, &rsp, &elapsed, &e) != PX_OK)
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

/* ---- the interactive POS screen ------------------------------------------------------------ */

static int pos_screen_cmd(int argc, char **argv)
{
    cli_opt opts[] = {GLOBAL_OPTS, {0, 0, 0, 0}};
    pos_terminal *t = NULL;
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL, "possum pos [screen] [OPTIONS]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if ((rc = open_terminal(opts, &t)) != CLI_OK)
        return rc;
    rc = pos_screen_run(t, 0, 1) == PX_OK ? CLI_OK : CLI_FAIL;
    pos_close(t);
    return rc;
}

static const cli_command pos_commands[] = {
    {"init", pos_init_cmd, "create the terminal and its PIN pad; load a TMK from components"},
    {"signon", pos_signon_cmd, "sign on: work keys into the PIN pad, open a batch"},
    {"echo", pos_echo_cmd, "echo test (network management 301) with the platform"},
    {"purchase", pos_purchase_cmd, "a purchase: --amount FEN --card PAN|--track2 DATA [--pin]"},
    {"balance", pos_balance_cmd, "balance inquiry"},
    {"void", pos_void_cmd, "void a purchase of the open batch: --rrn R --stan S"},
    {"phonepay", pos_phonepay_cmd, "mobile-number payment: --payee --payer --amount --card"},
    {"reversal", pos_reversal_cmd, "send the pending reversal now"},
    {"settle", pos_settle_cmd, "settle the batch (upload it when not balanced)"},
    {"signoff", pos_signoff_cmd, "sign off: the PIN pad erases the work keys"},
    {"status", pos_status_cmd, "batch, STAN, pending reversal, keys (check values only)"},
    {"screen", pos_screen_cmd, "the interactive POS screen (default on a terminal)"},
    {"keyload", keyload_cli, "remote key download: the TMK from the KMS under TK (seed 001)"},
    {"update", tmsclient_cli,
     "remote program update from the TMS: provision, check, run, auto, status"},
    {0, 0, 0}};

static int is_global(const char *a)
{
    for (int i = 0; i < NGLOBAL; i++)
        if (strncmp(a, "--", 2) == 0 && strcmp(a + 2, globals[i].name) == 0)
            return i;
    return -1;
}

int cmd_pos(int argc, char **argv)
{
    int i = 1;
    for (int g; i < argc && (g = is_global(argv[i])) >= 0; i += 2) {
        if (i + 1 >= argc)
            return cli_usage_error("option '%s' needs a value", argv[i]);
        globals[g].value = argv[i + 1];
    }
    if (i >= argc && isatty(0) && isatty(1))
        return pos_screen_cmd(1, argv);
    if (i >= argc || strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
        printf("Global options (before or after the command): --data DIR --host H --port P "
               "--tid TID --mid MID --timeout-ms N\n");
    return cli_dispatch("possum pos", pos_commands, argc - i + 1, argv + i - 1);
}
