/*
 * cli.c: `possum pos update ...` (tmsclient_cli), the terminal's side of remote program
 * update on the POS agent (device/pos/pos.h): the DMK is sealed by the terminal's PIN pad,
 * the "update waiting" flag is the one the agent keeps from the platform's responses
 * (processing requirement 6), and an install waits while the agent has an open batch or an
 * unsent reversal. The POS terminal is opened only for those moments, and kept (locked) from
 * the busy check through the install, so no transaction starts while its program changes.
 *
 *   possum pos update provision --tms HOST:PORT --model M --dmk-block B --kbpk-components
 *                     C1[:KCV],C2[:KCV] --root ROOT.json [--dmk-kcv K] [--serial S] [--tls-*]
 *   possum pos update check     check in; show what waits and when the next call is due
 *   possum pos update run       a whole pass now (check-in, verify, authenticate, download,
 *                               install, report)
 *   possum pos update auto      a pass when the flag is up or the schedule is due
 *   possum pos update status    installed versions, slots, schedule, reports waiting
 * Each takes --data DIR (or --tid TID for var/pos/TID). Exit 0 ok, 1 failed, 2 usage.
 */
#include "device/pos/pos.h"
#include "device/tmsclient/tmsc_int.h"

#include "lib/str.h"
#include "lib/time.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { OK = 0, FAIL = 1, USAGE = 2 };

typedef struct opt {
    const char *name;
    int is_flag;
    const char *help;
    const char *value;
} opt;

static int parse_opts(int argc, char **argv, opt *opts, const char *synopsis)
{
    for (int i = 1; i < argc; i++) {
        opt *o = NULL;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: %s\n", synopsis);
            for (o = opts; o->name != NULL; o++)
                printf("  --%-20s %s\n", o->name, o->help);
            return -1;
        }
        if (strncmp(argv[i], "--", 2) == 0)
            for (o = opts; o->name != NULL && strcmp(o->name, argv[i] + 2) != 0; o++)
                ;
        if (o == NULL || o->name == NULL) {
            fprintf(stderr, "possum: unknown argument '%s' (see --help)\n", argv[i]);
            return USAGE;
        }
        if (o->is_flag) {
            o->value = "1";
        } else if (i + 1 < argc) {
            o->value = argv[++i];
        } else {
            fprintf(stderr, "possum: option '--%s' needs a value\n", o->name);
            return USAGE;
        }
    }
    return OK;
}

static const char *get(const opt *opts, const char *name)
{
    for (; opts->name != NULL; opts++)
        if (strcmp(opts->name, name) == 0)
            return opts->value;
    return NULL;
}

static int fail(const char *what, const px_error *e)
{
    fprintf(stderr, "possum: %s%s%s\n", what, what[0] ? ": " : "", px_error_text(e));
    return FAIL;
}

/* ---- the POS agent as the updater's host --------------------------------------------------- */

typedef struct glue {
    pos_config pc;
    pos_terminal *t;
    int hold; /* keep the terminal open (locked) until the pass ends */
    int quiet;
    int64_t last_pct;
} glue;

static int glue_open(glue *g, px_error *e)
{
    return g->t != NULL ? PX_OK : pos_open(&g->pc, &g->t, e);
}

static void glue_release(glue *g)
{
    if (!g->hold) {
        pos_close(g->t);
        g->t = NULL;
    }
}

static int hook_seal(void *ud, const uint8_t *in, size_t n, uint8_t *out, size_t cap,
                     size_t *outlen, px_error *e)
{
    glue *g = ud;
    int rc = glue_open(g, e);
    if (rc == PX_OK)
        rc = pinpad_seal(pos_pinpad(g->t), in, n, out, cap, outlen, e);
    glue_release(g);
    return rc;
}

static int hook_unseal(void *ud, const uint8_t *in, size_t n, uint8_t *out, size_t cap,
                       size_t *outlen, px_error *e)
{
    glue *g = ud;
    int rc = glue_open(g, e);
    if (rc == PX_OK)
        rc = pinpad_unseal(pos_pinpad(g->t), in, n, out, cap, outlen, e);
    glue_release(g);
    return rc;
}

static int hook_busy(void *ud, char *why, size_t whysz)
{
    glue *g = ud;
    pos_status s;
    px_error e = {0};
    if (glue_open(g, &e) != PX_OK) {
        snprintf(why, whysz, "the POS terminal cannot be checked: %s", px_error_text(&e));
        return 1;
    }
    pos_status_get(g->t, &s);
    if (s.reversal_pending) {
        snprintf(why, whysz, "a reversal (STAN %s) has not been sent yet", s.reversal_stan);
    } else if (s.batch_count > 0) {
        snprintf(why, whysz, "the open batch %06u holds %zu transaction%s: settle it first",
                 s.batch, s.batch_count, s.batch_count == 1 ? "" : "s");
    } else {
        g->hold = 1; /* no transaction starts until the install is over */
        return 0;
    }
    glue_release(g);
    return 1;
}

static void hook_checked_in(void *ud)
{
    glue *g = ud;
    px_error e = {0};
    if (glue_open(g, &e) == PX_OK)
        (void)pos_update_flag_clear(g->t, &e);
    glue_release(g);
}

static void hook_progress(void *ud, const char *name, int64_t done, int64_t total)
{
    glue *g = ud;
    int64_t pct = total > 0 ? done * 100 / total : 100;
    char bar[41];
    if (g->quiet || (pct == g->last_pct && done != total))
        return;
    g->last_pct = pct;
    for (int i = 0; i < 40; i++)
        bar[i] = i < pct * 40 / 100 ? '#' : '.';
    bar[40] = 0;
    printf("\r  %s [%s] %3lld%%  %lld/%lld bytes", name, bar, (long long)pct, (long long)done,
           (long long)total);
    if (done == total)
        printf("\n");
    fflush(stdout);
}

static void hook_say(void *ud, const char *line)
{
    glue *g = ud;
    if (!g->quiet) {
        printf("  %s\n", line);
        fflush(stdout);
    }
}

static void glue_hooks(glue *g, tmsc_hooks *h)
{
    memset(h, 0, sizeof *h);
    h->busy = hook_busy;
    h->seal = hook_seal;
    h->unseal = hook_unseal;
    h->checked_in = hook_checked_in;
    h->progress = hook_progress;
    h->say = hook_say;
    h->ud = g;
}

static void glue_end(glue *g)
{
    g->hold = 0;
    glue_release(g);
}

/* clang-format off */
#define TERMINAL_OPTS                                                                              \
    {"data", 0, "the terminal's directory (default var/pos/TID)", NULL},                           \
    {"tid", 0, "terminal id, for the default directory (default 10000001)", NULL},                 \
    {"quiet", 1, "print only the outcome", NULL}
/* clang-format on */

/* The POS terminal's configuration and the updater's, from --data/--tid. */
static int load(const opt *opts, glue *g, tmsc_config *c, int need_tms, px_error *e)
{
    int rc;
    memset(g, 0, sizeof *g);
    g->last_pct = -1;
    g->quiet = get(opts, "quiet") != NULL;
    pos_config_defaults(&g->pc);
    if (get(opts, "tid") != NULL &&
        px_strlcpy(g->pc.tid, get(opts, "tid"), sizeof g->pc.tid) != PX_OK)
        return px_error_set(e, PX_EINVAL, "--tid: 8 characters");
    snprintf(g->pc.serial, sizeof g->pc.serial, "PP%s", g->pc.tid);
    if (get(opts, "data") != NULL)
        px_strlcpy(g->pc.data_dir, get(opts, "data"), sizeof g->pc.data_dir);
    else
        snprintf(g->pc.data_dir, sizeof g->pc.data_dir, "var/pos/%s", g->pc.tid);
    if ((rc = pos_config_load(&g->pc, e)) != PX_OK)
        return rc;
    tmsc_config_defaults(c, g->pc.data_dir);
    px_strlcpy(c->serial, g->pc.serial, sizeof c->serial);
    if (need_tms)
        return tmsc_config_load(c, e);
    return PX_OK;
}

/* ---- commands ------------------------------------------------------------------------------- */

/* Split s in place at commas into at most max non-empty parts. */
static int split_list(char *s, const char **out, size_t max)
{
    size_t n = 0;
    while (*s && n < max) {
        char *comma = strchr(s, ',');
        if (comma != NULL)
            *comma = 0;
        if (*s)
            out[n++] = s;
        if (comma == NULL)
            break;
        s = comma + 1;
    }
    return (int)n;
}

static int cmd_provision(int argc, char **argv)
{
    opt opts[] = {
        TERMINAL_OPTS,
        {"tms", 0, "the TMS's terminal listener HOST:PORT", NULL},
        {"model", 0, "this terminal's model", NULL},
        {"serial", 0, "serial number (default: the PIN pad's)", NULL},
        {"dmk-block", 0, "the DMK as a TR-31 key block (possum tms terminal provision)", NULL},
        {"dmk-kcv", 0, "its check value", NULL},
        {"kbpk-components", 0, "the factory KBPK: HEX[:KCV],HEX[:KCV][,HEX[:KCV]]", NULL},
        {"root", 0, "the root record to trust (root.json)", NULL},
        {"tls-ca", 0, "CA file: talk HTTPS to the TMS", NULL},
        {"tls-cert", 0, "client certificate (mutual TLS)", NULL},
        {"tls-key", 0, "its key", NULL},
        {"max-package-bytes", 0, "largest package accepted (default 64 MiB)", NULL},
        {NULL, 0, NULL, NULL}};
    char comps[512], host[256];
    const char *list[3];
    tmsc_provision_args a;
    tmsc_config c;
    tmsc_hooks h;
    px_buf root;
    glue g;
    int port = 0, rc;
    px_error e = {0};
    rc = parse_opts(argc, argv, opts,
                    "possum pos update provision --tms HOST:PORT --model M "
                    "--dmk-block B --kbpk-components C1,C2 --root ROOT.json");
    if (rc != OK)
        return rc < 0 ? OK : rc;
    if (get(opts, "tms") == NULL || get(opts, "model") == NULL || get(opts, "dmk-block") == NULL ||
        get(opts, "kbpk-components") == NULL || get(opts, "root") == NULL) {
        fprintf(stderr,
                "possum: --tms, --model, --dmk-block, --kbpk-components and --root are required\n");
        return USAGE;
    }
    if (px_parse_hostport(get(opts, "tms"), host, sizeof host, &port) != PX_OK || port <= 0) {
        fprintf(stderr, "possum: --tms: HOST:PORT\n");
        return USAGE;
    }
    if ((rc = load(opts, &g, &c, 0, &e)) != PX_OK)
        return fail("terminal", &e);
    px_strlcpy(c.host, host[0] ? host : "127.0.0.1", sizeof c.host);
    c.port = port;
    px_strlcpy(c.model, get(opts, "model"), sizeof c.model);
    if (get(opts, "serial") != NULL)
        px_strlcpy(c.serial, get(opts, "serial"), sizeof c.serial);
    if (get(opts, "tls-ca") != NULL)
        px_strlcpy(c.tls_ca, get(opts, "tls-ca"), sizeof c.tls_ca);
    if (get(opts, "tls-cert") != NULL)
        px_strlcpy(c.tls_cert, get(opts, "tls-cert"), sizeof c.tls_cert);
    if (get(opts, "tls-key") != NULL)
        px_strlcpy(c.tls_key, get(opts, "tls-key"), sizeof c.tls_key);
    if (get(opts, "max-package-bytes") != NULL &&
        px_parse_i64(get(opts, "max-package-bytes"), 1, PX_TMS_PACKAGE_MAX, &c.max_package_bytes) !=
            PX_OK) {
        fprintf(stderr, "possum: --max-package-bytes: 1 to %lld\n", (long long)PX_TMS_PACKAGE_MAX);
        return USAGE;
    }
    px_strlcpy(comps, get(opts, "kbpk-components"), sizeof comps);
    memset(&a, 0, sizeof a);
    a.ncomponents = (size_t)split_list(comps, list, 3);
    a.kbpk_components = list;
    a.dmk_block = get(opts, "dmk-block");
    a.dmk_kcv = get(opts, "dmk-kcv");
    px_buf_init(&root, PX_TMS_META_MAX);
    rc = tmsc_read_file(get(opts, "root"), PX_TMS_META_MAX, &root, &e);
    a.root_json = root.data;
    a.root_len = root.len;
    glue_hooks(&g, &h);
    if (rc == PX_OK)
        rc = tmsc_provision(&c, &a, &h, &e);
    glue_end(&g);
    px_buf_free(&root);
    OPENSSL_cleanse(comps, sizeof comps);
    if (rc != PX_OK)
        return fail("provision", &e);
    printf("terminal %s (model %s) provisioned for the TMS at %s:%lld: DMK sealed by the PIN pad, "
           "root trusted\n",
           c.serial, c.model, c.host, (long long)c.port);
    return OK;
}

static void print_offers(const tmsc_checkin_result *r)
{
    char when[32];
    for (size_t i = 0; i < r->noffers; i++)
        printf("update waiting: %s %s (%s, %lld bytes, campaign %s)\n", r->offers[i].name,
               r->offers[i].version, r->offers[i].kind, (long long)r->offers[i].length,
               r->offers[i].campaign);
    if (r->noffers == 0)
        printf("no update waits\n");
    px_time_iso8601(r->next_checkin_ms, when, sizeof when);
    printf("next check-in: %s\n", when);
}

static int cmd_check(int argc, char **argv)
{
    opt opts[] = {TERMINAL_OPTS, {NULL, 0, NULL, NULL}};
    tmsc_checkin_result r;
    tmsc_config c;
    tmsc_hooks h;
    glue g;
    px_error e = {0};
    int rc = parse_opts(argc, argv, opts, "possum pos update check [--data DIR]");
    if (rc != OK)
        return rc < 0 ? OK : rc;
    if ((rc = load(opts, &g, &c, 1, &e)) != PX_OK)
        return fail("", &e);
    glue_hooks(&g, &h);
    rc = tmsc_checkin(&c, &h, &r, &e);
    glue_end(&g);
    if (rc != PX_OK)
        return fail("", &e);
    print_offers(&r);
    return OK;
}

static int run_pass(glue *g, const tmsc_config *c)
{
    tmsc_run_result *r = calloc(1, sizeof *r);
    tmsc_hooks h;
    px_error e = {0};
    int rc, bad = 0;
    if (r == NULL)
        return FAIL;
    glue_hooks(g, &h);
    rc = tmsc_run(c, &h, r, &e);
    glue_end(g);
    if (rc != PX_OK) {
        free(r);
        return fail("update", &e);
    }
    if (r->checkin.noffers == 0)
        printf("no update waits\n");
    for (size_t i = 0; i < r->noutcomes; i++) {
        const tmsc_outcome *o = &r->outcomes[i];
        printf("%s %s: %s%s%s\n", o->offer.name, o->offer.version, o->status,
               o->reason[0] ? ": " : "", o->reason);
        bad |= strcmp(o->status, "installed") != 0 && strcmp(o->status, "deferred") != 0;
    }
    if (r->reports_pending > 0)
        printf("%zu report%s wait for the next pass\n", r->reports_pending,
               r->reports_pending == 1 ? "" : "s");
    free(r);
    return bad ? FAIL : OK;
}

static int cmd_run(int argc, char **argv)
{
    opt opts[] = {TERMINAL_OPTS, {NULL, 0, NULL, NULL}};
    tmsc_config c;
    glue g;
    px_error e = {0};
    int rc = parse_opts(argc, argv, opts, "possum pos update run [--data DIR]");
    if (rc != OK)
        return rc < 0 ? OK : rc;
    if ((rc = load(opts, &g, &c, 1, &e)) != PX_OK)
        return fail("", &e);
    return run_pass(&g, &c);
}

static int cmd_auto(int argc, char **argv)
{
    opt opts[] = {TERMINAL_OPTS, {NULL, 0, NULL, NULL}};
    tmsc_config c;
    pos_status s;
    int64_t next = 0, now = px_now_ms();
    char when[32];
    glue g;
    px_error e = {0};
    int rc = parse_opts(argc, argv, opts, "possum pos update auto [--data DIR]");
    if (rc != OK)
        return rc < 0 ? OK : rc;
    if ((rc = load(opts, &g, &c, 1, &e)) != PX_OK || (rc = glue_open(&g, &e)) != PX_OK)
        return fail("", &e);
    pos_status_get(g.t, &s);
    glue_end(&g);
    if (!tmsc_is_due(&c, s.update_waiting, now, &next)) {
        px_time_iso8601(next, when, sizeof when);
        printf("nothing due: no update flag, next scheduled check-in %s\n", when);
        return OK;
    }
    printf("%s: checking in with the TMS now\n",
           s.update_waiting ? "the platform flagged an update (processing requirement 6)"
                            : "the scheduled check-in is due");
    return run_pass(&g, &c);
}

static int cmd_status(int argc, char **argv)
{
    opt opts[] = {TERMINAL_OPTS, {NULL, 0, NULL, NULL}};
    tmsc_app apps[PX_TMS_INSTALLED_MAX];
    tmsc_config c;
    tmsc_state st;
    tuf_root root;
    px_buf b;
    char path[PX_PATH_MAX + 32], when[32];
    size_t n = 0;
    glue g;
    px_error e = {0};
    int rc = parse_opts(argc, argv, opts, "possum pos update status [--data DIR]");
    if (rc != OK)
        return rc < 0 ? OK : rc;
    if ((rc = load(opts, &g, &c, 1, &e)) != PX_OK ||
        (rc = tmsc_apps(&c, apps, PX_TMS_INSTALLED_MAX, &n, &e)) != PX_OK ||
        (rc = tmsc_state_load(&c, &st, &e)) != PX_OK)
        return fail("", &e);
    printf("terminal %s (model %s), TMS %s:%lld\n", c.serial, c.model, c.host, (long long)c.port);
    for (size_t i = 0; i < n; i++)
        printf("  %-20s %-12s %-6s slot %s  sha256 %.16s...\n", apps[i].name, apps[i].version,
               apps[i].kind, apps[i].slot, apps[i].sha256);
    if (n == 0)
        printf("  nothing installed through the TMS yet\n");
    px_buf_init(&b, PX_TMS_META_MAX);
    tmsc_path(&c, "tms/root.json", path, sizeof path);
    if (tmsc_read_file(path, PX_TMS_META_MAX, &b, NULL) == PX_OK &&
        tuf_root_verify_initial(b.data, b.len, &root, NULL) == PX_OK)
        printf("trusted root: version %lld; newest timestamp seen: version %lld\n",
               (long long)root.version, (long long)st.timestamp_version);
    px_buf_free(&b);
    if (st.next_checkin_ms > 0) {
        px_time_iso8601(st.next_checkin_ms, when, sizeof when);
        printf("next check-in: %s (every %lld min, jitter %lld min)\n", when,
               (long long)(st.period_ms / 60000), (long long)(st.jitter_ms / 60000));
    } else {
        printf("next check-in: now (never checked in)\n");
    }
    for (size_t i = 0; i < st.nreports; i++)
        printf("report waiting: %s %s %s %s %s\n", st.reports[i].campaign, st.reports[i].name,
               st.reports[i].version, st.reports[i].status, st.reports[i].reason);
    return OK;
}

int tmsclient_cli(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int, char **);
        const char *help;
    } cmds[] = {
        {"provision", cmd_provision,
         "at the factory: DMK sealed by the PIN pad, the root to trust"},
        {"check", cmd_check, "check in: what waits, when the next call is due"},
        {"run", cmd_run, "a whole update pass now"},
        {"auto", cmd_auto, "a pass when the platform flagged an update or the schedule is due"},
        {"status", cmd_status, "installed versions, slots, schedule, reports waiting"},
    };
    if (argc >= 2)
        for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
            if (strcmp(argv[1], cmds[i].name) == 0)
                return cmds[i].run(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "--help") != 0 && strcmp(argv[1], "-h") != 0) {
        fprintf(stderr, "possum: pos update: unknown command '%s'\n", argv[1]);
        return USAGE;
    }
    printf("usage: possum pos update COMMAND [--data DIR | --tid TID]\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        printf("  %-10s %s\n", cmds[i].name, cmds[i].help);
    return argc >= 2 ? OK : USAGE;
}

int tmsclient_on_flag(const char *data_dir)
{
    char *argv[] = {"auto", "--data", (char *)data_dir, NULL};
    return cmd_auto(3, argv);
}
