/*
 * test_tmsclient.c: the terminal side against the TMS's own HTTP handlers, in one process:
 * the TMS's routes on a worker thread (api.c, download.c), a terminal directory with hooks
 * the test controls. Covers what needs the POS agent's state: an install deferred while the
 * batch is open (and the verified download kept), a trial interrupted by a power cut rolled
 * back at the next pass, progress, and provisioning refusals.
 */
#include "tmsfix.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "device/tmsclient/tmsc_int.h"
#include "host/tms/tms_int.h"
#include "lib/hex.h"
#include "lib/str.h"
#include "lib/time.h"

/* The check-in's batched registry write lives in service.c: here it is written at once. */
void tms_worker_contact(tms_worker *w, const tms_checkin_req *r, int64_t now)
{
    tms_contact c;
    memset(&c, 0, sizeof c);
    px_strlcpy(c.serial, r->serial, sizeof c.serial);
    c.at_ms = now;
    px_strlcpy(c.installed_json, r->installed_json, sizeof c.installed_json);
    (void)tms_contacts_write(w->st, &c, 1, NULL);
}

typedef struct world {
    tmsfix f;
    tms_svc svc;
    tms_worker w;
    pthread_t thread;
    tmsc_config c;
    tmsc_hooks h;
    int busy;     /* the POS has an open batch */
    int progress; /* progress calls */
} world;

static void *loop(void *arg)
{
    world *x = arg;
    event_base_loop(x->w.base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static void stop(void *arg)
{
    event_base_loopbreak(((world *)arg)->w.base);
}

/* A "secure store" for the test: XOR with a fixed pad (the POS uses its PIN pad). */
static int seal(void *ud, const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *outlen,
                px_error *e)
{
    (void)ud;
    if (n > cap)
        return px_error_set(e, PX_ETOOBIG, "too big");
    for (size_t i = 0; i < n; i++)
        out[i] = in[i] ^ 0x5a;
    *outlen = n;
    return PX_OK;
}

static int busy(void *ud, char *why, size_t whysz)
{
    world *x = ud;
    if (x->busy)
        snprintf(why, whysz, "the open batch 000001 holds 2 transactions: settle it first");
    return x->busy;
}

static void progress(void *ud, const char *name, int64_t done, int64_t total)
{
    (void)name;
    (void)done;
    (void)total;
    ((world *)ud)->progress++;
}

static void app(world *x, const char *version, int selfcheck, char *path, size_t pathsz)
{
    FILE *fp;
    char name[64];
    snprintf(name, sizeof name, "app-%s.sh", version);
    tmsfix_path(&x->f, name, path, pathsz);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp,
            "#!/bin/sh\ncase \"$1\" in\n  start) echo %s > \"$POSSUM_TERMINAL_DIR/running\" ;;\n"
            "  stop) rm -f \"$POSSUM_TERMINAL_DIR/running\" ;;\n  self-check) exit %d ;;\nesac\n",
            version, selfcheck);
    fclose(fp);
}

static void release(world *x, const char *version, int selfcheck, const char *campaign)
{
    char path[PX_PATH_MAX], *meta;
    tms_campaign_spec s;
    const char *serials[] = {"SN0001"};
    px_error e = {0};
    app(x, version, selfcheck, path, sizeof path);
    meta = tmsfix_targets_text(&x->f, path, "pos-app", version, "A920", 2);
    if (tms_package_add(x->f.st, path, meta, strlen(meta), NULL, &e) != PX_OK)
        fail_msg("package: %s", e.msg);
    free(meta);
    tms_campaign_spec_default(&s);
    px_strlcpy(s.name, campaign, sizeof s.name);
    px_strlcpy(s.pkg_name, "pos-app", sizeof s.pkg_name);
    px_strlcpy(s.pkg_version, version, sizeof s.pkg_version);
    s.serials = serials;
    s.nserials = 1;
    assert_int_equal(tms_campaign_create(x->f.st, &s, &e), PX_OK);
    assert_int_equal(tms_campaign_start(x->f.st, campaign, NULL, &e), PX_OK);
    assert_int_equal(tms_campaign_tick(x->f.st, px_now_ms(), &x->f.flagger, NULL, &e), PX_OK);
    assert_int_equal(tms_timestamp_refresh(x->f.st, x->f.ts_priv, 3600000, px_now_ms(), NULL, &e),
                     PX_OK);
}

static const char *running(world *x)
{
    static char v[32];
    char path[PX_PATH_MAX + 16];
    FILE *fp;
    snprintf(path, sizeof path, "%s/running", x->c.data_dir);
    v[0] = 0;
    if ((fp = fopen(path, "r")) != NULL) {
        if (fgets(v, sizeof v, fp) != NULL)
            v[strcspn(v, "\n")] = 0;
        fclose(fp);
    }
    return v;
}

static tms_tstate target_state(world *x, const char *campaign)
{
    tms_campaign_info *c = calloc(1, sizeof *c);
    tms_tstate s = TMS_T_COUNT_;
    assert_int_equal(tms_campaign_get(x->f.st, campaign, c, NULL), PX_OK);
    for (int i = 0; i < TMS_T_COUNT_; i++)
        if (c->counts[0][i] == 1)
            s = (tms_tstate)i;
    free(c);
    return s;
}

static int setup(void **state)
{
    world *x = calloc(1, sizeof *x);
    net_listener_config lc;
    store_config sc;
    char block[PX_HSM_KEYBLOCK_MAX], kcv[PX_HSM_KCV_HEX_MAX], root_path[PX_PATH_MAX], *root;
    char c1[33], c2[33];
    const char *comps[2] = {c1, c2};
    uint8_t kek[16], r1[16], r2[16];
    size_t n;
    tmsc_provision_args a;
    px_error e = {0};
    tmsfix_setup(&x->f, "tmsclient");
    tmsfix_publish_root(&x->f);
    tmsfix_terminal(&x->f, "SN0001", "A920", "", NULL);
    /* the TMS's routes on their own thread, as a worker runs them */
    assert_int_equal(tms_schedule_parse("1d@02:00~1h", &x->svc.default_schedule, &e), PX_OK);
    x->svc.cfg.slice_bytes = 100;
    x->svc.cfg.max_downloads = 10;
    x->svc.cfg.download_idle_ms = 30000;
    tmsfix_path(&x->f, "cache", x->svc.cfg.cache_dir, sizeof x->svc.cfg.cache_dir);
    mkdir(x->svc.cfg.cache_dir, 0700);
    px_strlcpy(x->svc.cfg.auth.master_label, "tms.master", sizeof x->svc.cfg.auth.master_label);
    x->svc.cfg.auth.challenge_ttl_ms = 60000;
    x->svc.cfg.auth.session_ttl_ms = 600000;
    x->svc.h = x->f.h;
    x->svc.flagger = x->f.flagger;
    pthread_mutex_init(&x->svc.hsm_lock, NULL);
    tms_limiter_init(&x->svc.lim, 10, 0, 30000);
    x->w.svc = &x->svc;
    store_config_default(&sc);
    tmsfix_path(&x->f, "possum.db", sc.path, sizeof sc.path);
    sc.synchronous_full = 0;
    net_listener_config_defaults(&lc, "tms");
    assert_int_equal(net_init(&e), PX_OK);
    assert_int_equal(net_base_new(&x->w.base, &e), PX_OK);
    assert_int_equal(store_open(&sc, &x->w.st, &e), PX_OK);
    assert_int_equal(net_http_server_new(x->w.base, &lc, &x->w.http, &e), PX_OK);
    assert_int_equal(tms_api_routes(&x->w, &e), PX_OK);
    assert_int_equal(pthread_create(&x->thread, NULL, loop, x), 0);
    /* the terminal: provisioned with its DMK under the factory KBPK, and the root */
    tmsfix_path(&x->f, "term", root_path, sizeof root_path);
    tmsc_config_defaults(&x->c, root_path);
    x->c.port = net_http_server_port(x->w.http);
    px_strlcpy(x->c.serial, "SN0001", sizeof x->c.serial);
    px_strlcpy(x->c.model, "A920", sizeof x->c.model);
    x->h.seal = seal;
    x->h.unseal = seal;
    x->h.busy = busy;
    x->h.progress = progress;
    x->h.ud = x;
    assert_int_equal(tms_terminal_provision(x->f.st, x->f.h, "tms.master", "SN0001", "tms.kek",
                                            block, sizeof block, kcv, &e),
                     PX_OK);
    assert_int_equal(px_hex_decode(TMSFIX_KEK_HEX, kek, 16, &n), PX_OK);
    crypto_random(r1, 16, NULL);
    for (int i = 0; i < 16; i++)
        r2[i] = kek[i] ^ r1[i];
    px_hex_encode(r1, 16, c1);
    px_hex_encode(r2, 16, c2);
    root = tmsfix_root_text(&x->f, &x->f.root, 2);
    memset(&a, 0, sizeof a);
    a.dmk_block = block;
    a.dmk_kcv = kcv;
    a.kbpk_components = comps;
    a.ncomponents = 2;
    a.root_json = root;
    a.root_len = strlen(root);
    if (tmsc_provision(&x->c, &a, &x->h, &e) != PX_OK)
        fail_msg("provision: %s", e.msg);
    /* a DMK block opened with the wrong KBPK is refused */
    c2[0] = c2[0] == '0' ? '1' : '0';
    assert_int_equal(tmsc_provision(&x->c, &a, &x->h, &e), PX_EAUTH);
    free(root);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    world *x = *state;
    net_post(x->w.base, stop, x);
    pthread_join(x->thread, NULL);
    net_http_server_free(x->w.http);
    store_close(x->w.st);
    net_base_free(x->w.base);
    tms_limiter_free(&x->svc.lim);
    pthread_mutex_destroy(&x->svc.hsm_lock);
    tmsfix_teardown(&x->f);
    free(x);
    return 0;
}

static void test_deferred_then_installed(void **state)
{
    world *x = *state;
    tmsc_run_result *r = calloc(1, sizeof *r);
    px_error e = {0};
    release(x, "1.0.0", 0, "c1");
    x->busy = 1;
    assert_int_equal(tmsc_run(&x->c, &x->h, r, &e), PX_OK);
    assert_int_equal(r->noutcomes, 1);
    assert_string_equal(r->outcomes[0].status, "deferred");
    assert_non_null(strstr(r->outcomes[0].reason, "the open batch 000001 holds 2 transactions"));
    assert_string_equal(running(x), "");
    assert_int_equal(target_state(x, "c1"), TMS_T_DEFERRED);
    assert_true(x->progress >= 2); /* 100-byte slices */
    /* settled: the kept download is installed without fetching it again */
    x->busy = 0;
    x->progress = 0;
    assert_int_equal(tmsc_run(&x->c, &x->h, r, &e), PX_OK);
    assert_string_equal(r->outcomes[0].status, "installed");
    assert_int_equal(x->progress, 0);
    assert_string_equal(running(x), "1.0.0");
    assert_int_equal(target_state(x, "c1"), TMS_T_INSTALLED);
    assert_int_equal(r->reports_pending, 0);
    free(r);
}

static void test_power_cut_during_trial(void **state)
{
    world *x = *state;
    tmsc_run_result *r = calloc(1, sizeof *r);
    char dir[PX_PATH_MAX + 32], path[PX_PATH_MAX + 48];
    FILE *fp;
    px_error e = {0};
    release(x, "1.0.0", 0, "c1");
    assert_int_equal(tmsc_run(&x->c, &x->h, r, &e), PX_OK);
    assert_string_equal(running(x), "1.0.0");
    /* 1.1.0 is offered, installed into slot b and on trial when the power goes */
    release(x, "1.1.0", 0, "c2");
    {
        tmsc_checkin_result ck;
        assert_int_equal(tmsc_checkin(&x->c, &x->h, &ck, &e), PX_OK);
        assert_int_equal(ck.noffers, 1);
    }
    snprintf(dir, sizeof dir, "%s/apps/pos-app", x->c.data_dir);
    snprintf(path, sizeof path, "%s/b", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/trial", dir);
    fp = fopen(path, "w");
    fprintf(fp, "from a\nto b\nkind app\nversion 1.1.0\ncampaign c2\n");
    fclose(fp);
    snprintf(path, sizeof path, "%s/current", dir);
    unlink(path);
    assert_int_equal(symlink("b", path), 0);
    /* the next pass rolls back first, reports it, and does not offer 1.1.0 again */
    assert_int_equal(tmsc_run(&x->c, &x->h, r, &e), PX_OK);
    assert_string_equal(running(x), "1.0.0");
    snprintf(path, sizeof path, "%s/trial", dir);
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_equal(r->noutcomes, 0);
    assert_int_equal(target_state(x, "c2"), TMS_T_ROLLED_BACK);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_deferred_then_installed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_cut_during_trial, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
