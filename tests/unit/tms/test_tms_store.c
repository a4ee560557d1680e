/*
 * test_tms_store.c: the TMS's store side: the registry, packages checked against their signed
 * records, campaigns (waves, window, flags, halting, completion), check-ins, reports, the
 * mutual authentication of claim 4 against a terminal computed here, and schedules.
 */
#include "tmsfix.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef TMSFIX_PG
#include "pgtemp.h"
#endif
#include "crypto/crypto.h"
#include "crypto/tr31.h"
#include "host/tms/tms_int.h"
#include "lib/hex.h"
#include "lib/str.h"
#include "lib/time.h"

static int64_t count_rows(store *st, const char *sql)
{
    store_stmt *q;
    int64_t n = -1;
    assert_int_equal(store_prepare(st, sql, &q, NULL), PX_OK);
    if (store_step(q, NULL) == STORE_ROW)
        n = store_col_int64(q, 0);
    store_done(q);
    return n;
}

static void test_registry(void **state)
{
    tmsfix *f = *state;
    tms_terminal t, got;
    px_error e = {0};
    tmsfix_terminal(f, "SN0001", "A920", "10000001", "pilot,north");
    assert_int_equal(tms_terminal_get(f->st, "SN0001", &got, &e), PX_OK);
    assert_string_equal(got.model, "A920");
    assert_string_equal(got.tid, "10000001");
    assert_int_equal(got.ngroups, 2);
    assert_string_equal(got.groups[0], "north");
    memset(&t, 0, sizeof t);
    px_strlcpy(t.serial, "SN0001", sizeof t.serial);
    px_strlcpy(t.model, "A920", sizeof t.model);
    assert_int_equal(tms_terminal_add(f->st, &t, &e), PX_EEXIST);
    px_strlcpy(t.serial, "SN 2", sizeof t.serial);
    assert_int_equal(tms_terminal_add(f->st, &t, &e), PX_EINVAL);
    assert_non_null(strstr(e.msg, "serial"));
    px_strlcpy(t.serial, "SN0002", sizeof t.serial);
    px_strlcpy(t.tid, "123", sizeof t.tid);
    assert_int_equal(tms_terminal_add(f->st, &t, &e), PX_EINVAL);
    t.tid[0] = 0;
    px_strlcpy(t.schedule, "7x", sizeof t.schedule);
    assert_int_equal(tms_terminal_add(f->st, &t, &e), PX_EINVAL);
    assert_non_null(strstr(e.msg, "schedule"));
    assert_int_equal(tms_terminal_get(f->st, "SN0002", &got, &e), PX_ENOTFOUND);
    assert_int_equal(count_rows(f->st, "SELECT COUNT(*) FROM tms_terminal"), 1);
}

static void test_dmk_and_provision(void **state)
{
    tmsfix *f = *state;
    hsm_keyblock kb;
    uint8_t dmk[16], kek[16], key[64], kcv[8];
    char block[PX_HSM_KEYBLOCK_MAX], pkcv[PX_HSM_KCV_HEX_MAX], kcvhex[17];
    crypto_tr31_header h;
    size_t n = 0, kn = 0;
    px_error e = {0};
    tmsfix_terminal(f, "SN0001", "A920", "", NULL);
    assert_int_equal(tms_terminal_dmk(f->st, f->h, "tms.master", "SN0001", &kb, &e), PX_OK);
    tmsfix_dmk("SN0001", dmk);
    crypto_kcv(CRYPTO_TDES, dmk, 16, kcv, sizeof kcv, &kn, NULL);
    px_hex_encode(kcv, 3, kcvhex);
    assert_string_equal(kb.kcv, kcvhex); /* the HSM derived what the terminal will hold */
    /* provisioning: a TR-31 block under the KEK, which the factory station opens */
    assert_int_equal(tms_terminal_provision(f->st, f->h, "tms.master", "SN0001", "tms.kek", block,
                                            sizeof block, pkcv, &e),
                     PX_OK);
    assert_int_equal(px_hex_decode(TMSFIX_KEK_HEX, kek, sizeof kek, &n), PX_OK);
    assert_int_equal(crypto_tr31_unwrap(kek, 16, block, strlen(block), &h, key, sizeof key, &n, &e),
                     PX_OK);
    assert_int_equal(n, 16);
    assert_memory_equal(key, dmk, 16);
    assert_string_equal(h.usage, "K0");
    assert_int_equal(tms_terminal_provision(f->st, f->h, "tms.master", "NOPE", "tms.kek", block,
                                            sizeof block, pkcv, &e),
                     PX_ENOTFOUND);
}

static void test_packages(void **state)
{
    tmsfix *f = *state;
    char path[PX_PATH_MAX], other[PX_PATH_MAX], *meta, *one;
    tms_package p;
    px_error e = {0};
    tmsfix_file(f, "app.bin", 3 * PX_TMS_CHUNK + 17, 3, path, sizeof path);
    meta = tmsfix_targets_text(f, path, "pos-app", "2.0.0", "A920", 2);
    assert_int_equal(tms_package_add(f->st, path, meta, strlen(meta), &p, &e), PX_ESTATE);
    assert_non_null(strstr(e.msg, "no root metadata"));
    tmsfix_publish_root(f);
    /* the record is signed, but for other bytes */
    tmsfix_file(f, "other.bin", 3 * PX_TMS_CHUNK + 17, 4, other, sizeof other);
    assert_int_equal(tms_package_add(f->st, other, meta, strlen(meta), &p, &e), PX_EINVAL);
    assert_non_null(strstr(e.msg, "SHA-256"));
    assert_int_equal(count_rows(f->st, "SELECT COUNT(*) FROM tms_blob"), 0);
    /* too few signatures */
    one = tmsfix_targets_text(f, path, "pos-app", "2.0.0", "A920", 1);
    assert_int_equal(tms_package_add(f->st, path, one, strlen(one), &p, &e), PX_EAUTH);
    assert_string_equal(e.msg, "targets pos-app 2.0.0: 1 valid targets signature, threshold 2");
    assert_int_equal(count_rows(f->st, "SELECT COUNT(*) FROM tms_package"), 0);
    /* right */
    assert_int_equal(tms_package_add(f->st, path, meta, strlen(meta), &p, &e), PX_OK);
    assert_int_equal(p.t.length, 3 * PX_TMS_CHUNK + 17);
    assert_int_equal(count_rows(f->st, "SELECT COUNT(*) FROM tms_blob"), 4);
    assert_int_equal(tms_package_add(f->st, path, meta, strlen(meta), &p, &e), PX_EEXIST);
    assert_int_equal(tms_package_get(f->st, "pos-app", "2.0.0", &p, &e), PX_OK);
    assert_string_equal(p.t.models[0], "A920");
    /* the stored file comes back whole */
    {
        char out[PX_PATH_MAX];
        size_t a, b;
        char *x = tmsfix_read(path, &a), *y;
        tmsfix_path(f, "export.bin", out, sizeof out);
        assert_int_equal(tms_blob_export(f->st, p.t.sha256, p.t.length, out, &e), PX_OK);
        y = tmsfix_read(out, &b);
        assert_int_equal(a, b);
        assert_memory_equal(x, y, a);
        free(x);
        free(y);
    }
    free(meta);
    free(one);
}

static void test_timestamp(void **state)
{
    tmsfix *f = *state;
    px_buf b;
    tuf_timestamp ts;
    int signed_new = 0;
    int64_t v, now = px_now_ms(), len;
    char sha[TUF_SHA256_HEX];
    px_error e = {0};
    px_buf_init(&b, PX_TMS_META_MAX);
    tmsfix_publish_root(f);
    assert_int_equal(tms_timestamp_refresh(f->st, f->ts_priv, 60000, now, &signed_new, &e), PX_OK);
    assert_true(signed_new);
    assert_int_equal(tms_timestamp_refresh(f->st, f->ts_priv, 60000, now + 1000, &signed_new, &e),
                     PX_OK);
    assert_false(signed_new); /* nothing changed, still fresh */
    tmsfix_package(f, "pos-app", "1.0.0", "A920", 100);
    assert_int_equal(tms_timestamp_refresh(f->st, f->ts_priv, 60000, now + 2000, &signed_new, &e),
                     PX_OK);
    assert_true(signed_new); /* a new release */
    assert_int_equal(tms_timestamp_refresh(f->st, f->ts_priv, 60000, now + 33000, &signed_new, &e),
                     PX_OK);
    assert_true(signed_new); /* half its life gone */
    assert_int_equal(tms_meta_latest(f->st, "timestamp", &b, &v, NULL, &e), PX_OK);
    assert_int_equal(v, 3);
    assert_int_equal(tuf_timestamp_verify(&f->root, b.data, b.len, &ts, &e), PX_OK);
    assert_int_equal(tuf_timestamp_find(&ts, "pos-app", "1.0.0", &len, sha), PX_OK);
    tuf_timestamp_free(&ts);
    px_buf_free(&b);
}

/* 100 terminals (even ones with a TID), a package for A920, a campaign of waves 10/50/100. */
static void fleet(tmsfix *f)
{
    tmsfix_publish_root(f);
    tmsfix_package(f, "pos-app", "2.0.0", "A920", 1000);
    for (int i = 0; i < 100; i++) {
        char serial[16], tid[9];
        snprintf(serial, sizeof serial, "SN%04d", i);
        snprintf(tid, sizeof tid, "%08d", 10000000 + i);
        tmsfix_terminal(f, serial, "A920", i % 2 == 0 ? tid : "", i < 20 ? "pilot" : NULL);
    }
    tmsfix_terminal(f, "OTHER1", "S90", "", "pilot");
}

static void checkin_of(const char *serial, const char *installed, tms_checkin_req *r)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:{s:s}}", "serial", serial, "model", "A920", "nonce",
                          "00112233445566778899aabbccddeeff", "installed", "pos-app", installed);
    px_error e = {0};
    if (tms_checkin_parse(j, r, &e) != PX_OK)
        fail_msg("checkin parse: %s", e.msg);
    json_decref(j);
}

static void report(tmsfix *f, const char *serial, const char *campaign, const char *status,
                   int want)
{
    tms_report_req r;
    px_error e = {0};
    memset(&r, 0, sizeof r);
    px_strlcpy(r.campaign, campaign, sizeof r.campaign);
    px_strlcpy(r.status, status, sizeof r.status);
    px_strlcpy(r.version, "2.0.0", sizeof r.version);
    px_strlcpy(r.reason, strcmp(status, "installed") && strcmp(status, "downloaded") ? "test" : "",
               sizeof r.reason);
    assert_int_equal(tms_report_record(f->st, serial, &r, px_now_ms(), NULL, &e), want);
}

static void test_campaign_waves(void **state)
{
    tmsfix *f = *state;
    tms_campaign_spec s;
    tms_campaign_info *c = calloc(1, sizeof *c);
    tms_checkin_req r;
    tms_offer offers[PX_TMS_UPDATES_MAX];
    size_t n = 0;
    int64_t total = 0, changed;
    px_error e = {0};
    fleet(f);
    tms_campaign_spec_default(&s);
    px_strlcpy(s.name, "c1", sizeof s.name);
    px_strlcpy(s.pkg_name, "pos-app", sizeof s.pkg_name);
    px_strlcpy(s.pkg_version, "2.0.0", sizeof s.pkg_version);
    s.all = 1;
    s.waves[0] = 10;
    s.waves[1] = 50;
    s.waves[2] = 100;
    s.nwaves = 3;
    s.max_failure_pct = 20;
    assert_int_equal(tms_campaign_create(f->st, &s, &e), PX_OK);
    assert_int_equal(tms_campaign_create(f->st, &s, &e), PX_EEXIST);
    assert_int_equal(tms_campaign_pause(f->st, "c1", &e), PX_ESTATE);
    assert_int_equal(tms_campaign_start(f->st, "c1", &total, &e), PX_OK);
    assert_int_equal(total, 100); /* the S90 does not fit the package */
    assert_int_equal(tms_campaign_start(f->st, "c1", &total, &e), PX_ESTATE);
    assert_int_equal(tms_campaign_get(f->st, "c1", c, &e), PX_OK);
    assert_int_equal(c->counts[0][TMS_T_SCHEDULED], 10);
    assert_int_equal(c->counts[1][TMS_T_SCHEDULED], 40);
    assert_int_equal(c->counts[2][TMS_T_SCHEDULED], 50);
    /* the tick opens wave 1 and flags the terminals that have a TID */
    assert_int_equal(tms_campaign_tick(f->st, px_now_ms(), &f->flagger, &changed, &e), PX_OK);
    assert_int_equal(tms_campaign_get(f->st, "c1", c, &e), PX_OK);
    assert_int_equal(c->current_wave, 1);
    assert_int_equal(c->counts[0][TMS_T_PENDING], 10);
    assert_int_equal((int64_t)f->nflags, count_rows(f->st, "SELECT COUNT(*) FROM tms_target t JOIN "
                                                           "tms_terminal m ON m.serial = t.serial "
                                                           "WHERE t.wave = 1 AND m.tid <> ''"));
    assert_int_equal(count_rows(f->st, "SELECT COUNT(*) FROM tms_target WHERE flagged = 0 AND "
                                       "state = 'pending'"),
                     0);
    /* every wave-1 terminal checks in, is offered the update, installs; one fails */
    {
        store_stmt *q;
        char serials[10][PX_TMS_SERIAL_MAX];
        size_t k = 0;
        assert_int_equal(
            store_prepare(f->st, "SELECT serial FROM tms_target WHERE wave = 1 ORDER BY serial", &q,
                          NULL),
            PX_OK);
        while (store_step(q, NULL) == STORE_ROW)
            px_strlcpy(serials[k++], store_col_text(q, 0), sizeof serials[0]);
        store_done(q);
        assert_int_equal(k, 10);
        /* a report before the offer: never offered */
        report(f, serials[0], "c1", "installed", PX_ENOTFOUND);
        for (size_t i = 0; i < k; i++) {
            f->nflags = 0;
            checkin_of(serials[i], "1.0.0", &r);
            assert_int_equal(tms_checkin_offers(f->st, &r, px_now_ms(), &f->flagger, offers, &n,
                                                &e),
                             PX_OK);
            assert_int_equal(n, 1);
            assert_string_equal(offers[0].version, "2.0.0");
            assert_string_equal(offers[0].state, "offered");
            report(f, serials[i], "c1", "downloaded", PX_OK);
            report(f, serials[i], "c1", i == 3 ? "failed" : "installed", PX_OK);
        }
        report(f, serials[3], "c1", "installed", PX_ECONFLICT); /* a final state stays */
        report(f, serials[4], "c1", "installed", PX_OK);        /* the same again: idempotent */
    }
    assert_int_equal(tms_campaign_tick(f->st, px_now_ms(), &f->flagger, &changed, &e), PX_OK);
    assert_int_equal(tms_campaign_get(f->st, "c1", c, &e), PX_OK);
    assert_int_equal(c->counts[0][TMS_T_INSTALLED], 9);
    assert_int_equal(c->counts[0][TMS_T_FAILED], 1);
    assert_int_equal(c->current_wave, 2); /* 1 of 10 failed: under 20 % */
    assert_string_equal(c->state, "running");
    /* a terminal that already runs 2.0.0 is skipped when it checks in */
    {
        store_stmt *q;
        char serial[PX_TMS_SERIAL_MAX];
        assert_int_equal(store_prepare(f->st,
                                       "SELECT serial FROM tms_target WHERE wave = 2 LIMIT 1", &q,
                                       NULL),
                         PX_OK);
        assert_int_equal(store_step(q, NULL), STORE_ROW);
        px_strlcpy(serial, store_col_text(q, 0), sizeof serial);
        store_done(q);
        checkin_of(serial, "2.0.0", &r);
        assert_int_equal(tms_checkin_offers(f->st, &r, px_now_ms(), &f->flagger, offers, &n, &e),
                         PX_OK);
        assert_int_equal(n, 0);
    }
    assert_int_equal(tms_campaign_get(f->st, "c1", c, &e), PX_OK);
    assert_int_equal(c->counts[1][TMS_T_SKIPPED], 1);
    /* 10 of the 40 fail: over 20 %: halted; its flags are cleared */
    {
        store_stmt *q;
        char serials[40][PX_TMS_SERIAL_MAX];
        size_t k = 0;
        assert_int_equal(
            store_prepare(
                f->st,
                "SELECT serial FROM tms_target WHERE wave = 2 AND state = 'pending' ORDER BY serial",
                &q, NULL),
            PX_OK);
        while (store_step(q, NULL) == STORE_ROW)
            px_strlcpy(serials[k++], store_col_text(q, 0), sizeof serials[0]);
        store_done(q);
        for (size_t i = 0; i < 10; i++) {
            checkin_of(serials[i], "1.0.0", &r);
            assert_int_equal(tms_checkin_offers(f->st, &r, px_now_ms(), &f->flagger, offers, &n,
                                                &e),
                             PX_OK);
            report(f, serials[i], "c1", "rolled_back", PX_OK);
        }
    }
    f->nflags = 0;
    assert_int_equal(tms_campaign_tick(f->st, px_now_ms(), &f->flagger, &changed, &e), PX_OK);
    assert_int_equal(tms_campaign_get(f->st, "c1", c, &e), PX_OK);
    assert_string_equal(c->state, "halted");
    assert_non_null(strstr(c->reason, "wave 2: 10 of 40 terminals failed"));
    assert_true(f->nflags > 0);
    assert_non_null(strstr(f->flags[0], ":0"));
    assert_int_equal(count_rows(f->st, "SELECT COUNT(*) FROM tms_target WHERE flagged = 1 AND "
                                       "state = 'pending'"),
                     0);
    /* a halted campaign offers nothing and allows no download */
    checkin_of("SN0099", "1.0.0", &r);
    assert_int_equal(tms_checkin_offers(f->st, &r, px_now_ms(), &f->flagger, offers, &n, &e),
                     PX_OK);
    assert_int_equal(n, 0);
    {
        tms_package p;
        assert_int_equal(tms_download_allowed(f->st, "SN0099", "pos-app", "2.0.0", &p, &e),
                         PX_EPERM);
    }
    /* resumed, the failures of wave 2 still pass the threshold: halted again */
    assert_int_equal(tms_campaign_resume(f->st, "c1", &e), PX_OK);
    assert_int_equal(tms_campaign_tick(f->st, px_now_ms(), &f->flagger, &changed, &e), PX_OK);
    assert_int_equal(tms_campaign_get(f->st, "c1", c, &e), PX_OK);
    assert_string_equal(c->state, "halted");
    free(c);
}

static void test_campaign_select_and_complete(void **state)
{
    tmsfix *f = *state;
    tms_campaign_spec s;
    tms_campaign_info *c = calloc(1, sizeof *c);
    const char *list[] = {"SN0001", "SN0002", "SN0003", "NOSUCH"};
    tms_checkin_req r;
    tms_offer offers[PX_TMS_UPDATES_MAX];
    size_t n;
    int64_t total = 0;
    px_error e = {0};
    fleet(f);
    /* by group */
    tms_campaign_spec_default(&s);
    px_strlcpy(s.name, "pilot", sizeof s.name);
    px_strlcpy(s.pkg_name, "pos-app", sizeof s.pkg_name);
    px_strlcpy(s.pkg_version, "2.0.0", sizeof s.pkg_version);
    px_strlcpy(s.groups[0], "pilot", sizeof s.groups[0]);
    s.ngroups = 1;
    assert_int_equal(tms_campaign_create(f->st, &s, &e), PX_OK);
    assert_int_equal(tms_campaign_start(f->st, "pilot", &total, &e), PX_OK);
    assert_int_equal(total, 20);
    /* by list, within a window that is not now */
    tms_campaign_spec_default(&s);
    px_strlcpy(s.name, "list", sizeof s.name);
    px_strlcpy(s.pkg_name, "pos-app", sizeof s.pkg_name);
    px_strlcpy(s.pkg_version, "2.0.0", sizeof s.pkg_version);
    s.serials = list;
    s.nserials = 4;
    {
        int64_t m = (px_now_ms() / 60000) % 1440;
        s.window_start_min = (m + 60) % 1440;
        s.window_end_min = (m + 120) % 1440;
    }
    assert_int_equal(tms_campaign_create(f->st, &s, &e), PX_OK);
    assert_int_equal(tms_campaign_start(f->st, "list", &total, &e), PX_OK);
    assert_int_equal(total, 3);
    assert_int_equal(tms_campaign_tick(f->st, px_now_ms(), &f->flagger, NULL, &e), PX_OK);
    assert_int_equal(tms_campaign_get(f->st, "list", c, &e), PX_OK);
    assert_int_equal(c->current_wave, 0); /* outside its window: nothing released */
    /* bad selectors */
    tms_campaign_spec_default(&s);
    px_strlcpy(s.name, "none", sizeof s.name);
    px_strlcpy(s.pkg_name, "pos-app", sizeof s.pkg_name);
    px_strlcpy(s.pkg_version, "2.0.0", sizeof s.pkg_version);
    assert_int_equal(tms_campaign_create(f->st, &s, &e), PX_EINVAL);
    s.all = 1;
    px_strlcpy(s.pkg_version, "9.9.9", sizeof s.pkg_version);
    assert_int_equal(tms_campaign_create(f->st, &s, &e), PX_ENOTFOUND);
    px_strlcpy(s.pkg_version, "2.0.0", sizeof s.pkg_version);
    s.waves[0] = 50;
    s.nwaves = 1;
    assert_int_equal(tms_campaign_create(f->st, &s, &e), PX_EINVAL);
    /* the pilot campaign runs to completion */
    assert_int_equal(tms_campaign_tick(f->st, px_now_ms(), &f->flagger, NULL, &e), PX_OK);
    for (int i = 0; i < 20; i++) {
        char serial[16];
        snprintf(serial, sizeof serial, "SN%04d", i);
        checkin_of(serial, "1.0.0", &r);
        assert_int_equal(tms_checkin_offers(f->st, &r, px_now_ms(), &f->flagger, offers, &n, &e),
                         PX_OK);
        assert_int_equal(n, 1);
        report(f, serial, "pilot", i == 7 ? "deferred" : "installed", PX_OK);
    }
    assert_int_equal(tms_campaign_tick(f->st, px_now_ms(), &f->flagger, NULL, &e), PX_OK);
    assert_int_equal(tms_campaign_get(f->st, "pilot", c, &e), PX_OK);
    assert_string_equal(c->state, "running"); /* one deferred */
    checkin_of("SN0007", "1.0.0", &r);
    assert_int_equal(tms_checkin_offers(f->st, &r, px_now_ms(), &f->flagger, offers, &n, &e),
                     PX_OK);
    assert_int_equal(n, 1); /* offered again */
    report(f, "SN0007", "pilot", "installed", PX_OK);
    assert_int_equal(tms_campaign_tick(f->st, px_now_ms(), &f->flagger, NULL, &e), PX_OK);
    assert_int_equal(tms_campaign_get(f->st, "pilot", c, &e), PX_OK);
    assert_string_equal(c->state, "completed");
    assert_int_equal(c->counts[0][TMS_T_INSTALLED], 20);
    {
        tms_terminal t;
        assert_int_equal(tms_terminal_get(f->st, "SN0007", &t, &e), PX_OK);
        assert_string_equal(t.installed[0].version, "2.0.0");
    }
    free(c);
}

static void test_reports_bad(void **state)
{
    tmsfix *f = *state;
    const char *bad[] = {
        "{}",
        "{\"campaign\":\"c1\",\"status\":\"bogus\",\"version\":\"1\"}",
        "{\"campaign\":\"c1\",\"status\":\"failed\",\"version\":\"1\"}",
        "{\"campaign\":\"c1\",\"status\":\"installed\",\"version\":\"x\"}",
        "{\"campaign\":\"c1\",\"status\":\"installed\",\"version\":\"1\",\"extra\":1}",
        "{\"campaign\":\"../x\",\"status\":\"installed\",\"version\":\"1\"}"};
    tms_report_req r;
    px_error e = {0};
    (void)f;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *j = json_loads(bad[i], 0, NULL);
        assert_int_equal(tms_report_parse(j, &r, &e), PX_EINVAL);
        json_decref(j);
    }
}

/* The terminal's side of claim 4, computed here with its DMK. */
static void terminal_answer(const uint8_t dmk[16], const uint8_t t_data[16],
                            const tms_auth_challenge *c, int *tac_ok, char sac_hex[33])
{
    uint8_t dwk1[16], dwk[16], tac1[16], tac0[16], s_data[16], sac[16];
    static const uint8_t iv[8];
    size_t n;
    assert_int_equal(px_hex_decode(c->dwk, dwk1, 16, &n), PX_OK);
    assert_int_equal(px_hex_decode(c->tac, tac1, 16, &n), PX_OK);
    assert_int_equal(px_hex_decode(c->s_data, s_data, 16, &n), PX_OK);
    assert_int_equal(crypto_decrypt(CRYPTO_TDES, CRYPTO_ECB, dmk, 16, NULL, dwk1, 16, dwk, NULL),
                     PX_OK);
    assert_int_equal(crypto_encrypt(CRYPTO_TDES, CRYPTO_CBC, dwk, 16, iv, t_data, 16, tac0, NULL),
                     PX_OK);
    *tac_ok = memcmp(tac0, tac1, 16) == 0;
    assert_int_equal(crypto_encrypt(CRYPTO_TDES, CRYPTO_CBC, dwk, 16, iv, s_data, 16, sac, NULL),
                     PX_OK);
    px_hex_encode(sac, 16, sac_hex);
}

static void test_auth(void **state)
{
    tmsfix *f = *state;
    tms_auth_config c = {"tms.master", 60000, 600000, 0};
    tms_auth_challenge ch;
    uint8_t dmk[16], wrong[16], t_data[16];
    char thex[33], sac[33], token[2 * TMS_TOKEN_LEN + 1], serial[PX_TMS_SERIAL_MAX];
    int64_t now = px_now_ms(), exp;
    int ok;
    px_error e = {0};
    tmsfix_terminal(f, "SN0001", "A920", "", NULL);
    tmsfix_dmk("SN0001", dmk);
    crypto_random(t_data, 16, NULL);
    px_hex_encode(t_data, 16, thex);
    /* the right terminal */
    assert_int_equal(tms_auth_begin(f->st, f->h, &c, "SN0001", thex, now, &ch, &e), PX_OK);
    terminal_answer(dmk, t_data, &ch, &ok, sac);
    assert_true(ok); /* the TMS proved it holds the DMK */
    assert_int_equal(tms_auth_finish(f->st, f->h, &c, "SN0001", ch.session, sac, 1, now, token,
                                     &exp, &e),
                     PX_OK);
    assert_int_equal(tms_session_check(f->st, token, now, serial, &e), PX_OK);
    assert_string_equal(serial, "SN0001");
    assert_int_equal(tms_session_check(f->st, token, exp + 1, serial, &e), PX_EAUTH);
    assert_non_null(strstr(e.msg, "expired"));
    /* a replayed SAC */
    assert_int_equal(tms_auth_finish(f->st, f->h, &c, "SN0001", ch.session, sac, 1, now, token,
                                     &exp, &e),
                     PX_EAUTH);
    assert_non_null(strstr(e.msg, "replayed"));
    /* the wrong DMK on the terminal's side: its TAC check fails, and so would its SAC */
    assert_int_equal(tms_auth_begin(f->st, f->h, &c, "SN0001", thex, now, &ch, &e), PX_OK);
    memcpy(wrong, dmk, 16);
    wrong[3] ^= 0x10;
    terminal_answer(wrong, t_data, &ch, &ok, sac);
    assert_false(ok);
    assert_int_equal(tms_auth_finish(f->st, f->h, &c, "SN0001", ch.session, sac, 1, now, token,
                                     &exp, &e),
                     PX_EAUTH);
    assert_non_null(strstr(e.msg, "SAC does not match"));
    /* the terminal refusing the TMS's TAC */
    assert_int_equal(tms_auth_begin(f->st, f->h, &c, "SN0001", thex, now, &ch, &e), PX_OK);
    terminal_answer(dmk, t_data, &ch, &ok, sac);
    assert_int_equal(tms_auth_finish(f->st, f->h, &c, "SN0001", ch.session, sac, 0, now, token,
                                     &exp, &e),
                     PX_EAUTH);
    assert_non_null(strstr(e.msg, "did not accept"));
    /* an expired challenge */
    assert_int_equal(tms_auth_begin(f->st, f->h, &c, "SN0001", thex, now, &ch, &e), PX_OK);
    terminal_answer(dmk, t_data, &ch, &ok, sac);
    assert_int_equal(tms_auth_finish(f->st, f->h, &c, "SN0001", ch.session, sac, 1, now + 60001,
                                     token, &exp, &e),
                     PX_EAUTH);
    assert_non_null(strstr(e.msg, "expired"));
    /* unknown serial, bad T-DATA, too soon */
    assert_int_equal(tms_auth_begin(f->st, f->h, &c, "NOPE", thex, now, &ch, &e), PX_ENOTFOUND);
    assert_int_equal(tms_auth_begin(f->st, f->h, &c, "SN0001", "00", now, &ch, &e), PX_EINVAL);
    c.min_interval_ms = 5000;
    assert_int_equal(tms_auth_begin(f->st, f->h, &c, "SN0001", thex, now + 10, &ch, &e), PX_ELIMIT);
    assert_int_equal(tms_session_check(f->st, "abc", now, serial, &e), PX_EAUTH);
    assert_int_equal(count_rows(f->st, "SELECT COUNT(*) FROM tms_session WHERE state = 'open'"), 1);
}

static void test_schedule(void **state)
{
    tms_schedule s;
    px_error e = {0};
    int64_t fri = 1763658000000LL; /* 2025-11-20 17:00 UTC is a Thursday; +1 day Friday */
    int64_t t;
    (void)state;
    assert_int_equal(tms_schedule_parse("7d@Fri 17:00~30m", &s, &e), PX_OK);
    assert_int_equal(s.period_ms, 7 * 86400000LL);
    t = tms_schedule_next(&s, "SN0001", fri);
    assert_true(t >= fri + 86400000LL && t <= fri + 86400000LL + 1800000);
    assert_int_equal(tms_schedule_next(&s, "SN0001", fri), t); /* a terminal keeps its place */
    assert_int_equal(tms_schedule_parse("1d@02:00+08:00", &s, &e), PX_OK);
    assert_int_equal(s.anchor_ms, -6LL * 3600000);
    assert_int_equal(tms_schedule_next(&s, "x", 0), 18LL * 3600000);
    assert_int_equal(tms_schedule_parse("1h~5m", &s, &e), PX_OK);
    assert_int_equal(tms_schedule_parse("30s", &s, &e), PX_EINVAL);
    assert_int_equal(tms_schedule_parse("1d@25:00", &s, &e), PX_EINVAL);
    assert_int_equal(tms_schedule_parse("1h~2h", &s, &e), PX_EINVAL);
    assert_int_equal(tms_schedule_parse("1d@Fri17:00", &s, &e), PX_EINVAL);
    /* a fleet spreads over the jitter */
    {
        int64_t lo = INT64_MAX, hi = 0;
        assert_int_equal(tms_schedule_parse("1d@02:00~1h", &s, &e), PX_OK);
        for (int i = 0; i < 1000; i++) {
            char serial[16];
            snprintf(serial, sizeof serial, "SN%d", i);
            t = tms_schedule_next(&s, serial, 0);
            lo = t < lo ? t : lo;
            hi = t > hi ? t : hi;
        }
        assert_true(lo >= 2 * 3600000LL && hi <= 3 * 3600000LL && hi - lo > 3000000);
    }
}

static void test_limiter(void **state)
{
    tms_limiter l;
    int64_t retry;
    (void)state;
    tms_limiter_init(&l, 2, 1000, 100);
    assert_int_equal(tms_limiter_admit(&l, "A", 500, 0, &retry), PX_OK);
    assert_int_equal(tms_limiter_admit(&l, "A", 500, 100, &retry), PX_ELIMIT); /* 400 still owed */
    assert_int_equal(retry, 400);
    assert_int_equal(tms_limiter_admit(&l, "A", 500, 500, &retry), PX_OK);
    assert_int_equal(tms_limiter_admit(&l, "B", 10, 500, &retry), PX_OK);
    assert_int_equal(tms_limiter_admit(&l, "C", 10, 500, &retry), PX_ESTATE); /* two already */
    assert_int_equal(tms_limiter_admit(&l, "C", 10, 2000, &retry), PX_OK);    /* they went idle */
    tms_limiter_free(&l);
}

static void test_registry_copy(void **state)
{
    tmsfix *f = *state;
    tms_regcache *c = NULL;
    char model[PX_TMS_NAME_MAX], sched[64];
    px_error e = {0};
    tmsfix_terminal(f, "SN0001", "A920", "", NULL);
    tmsfix_terminal(f, "SN0002", "P2", "", NULL);
    assert_int_equal(tms_regcache_new(1, &c, &e), PX_OK); /* room for one */
    assert_int_equal(tms_regcache_refresh(c, f->st, &e), PX_OK);
    assert_int_equal(tms_regcache_count(c), 1);
    tms_regcache_free(c);
    assert_int_equal(tms_regcache_new(100, &c, &e), PX_OK);
    assert_int_equal(tms_regcache_refresh(c, f->st, &e), PX_OK);
    assert_int_equal(tms_regcache_get(c, "SN0002", model, sched), 1);
    assert_string_equal(model, "P2");
    assert_string_equal(sched, "");
    assert_int_equal(tms_regcache_get(c, "SN0003", model, sched), 0);
    /* a change seen at the next refresh, a new terminal too (a change within the same
     * millisecond as the last row read waits for the margin pass: regcache.c) */
    usleep(2000);
    assert_int_equal(tms_terminal_set_schedule(f->st, "SN0002", "7d@Fri 17:00~30m", &e), PX_OK);
    tmsfix_terminal(f, "SN0003", "A920", "", NULL);
    assert_int_equal(tms_regcache_refresh(c, f->st, &e), PX_OK);
    assert_int_equal(tms_regcache_get(c, "SN0002", model, sched), 1);
    assert_string_equal(sched, "7d@Fri 17:00~30m");
    assert_int_equal(tms_regcache_get(c, "SN0003", model, sched), 1);
    assert_int_equal(tms_regcache_count(c), 3);
    tms_regcache_free(c);
}

static int setup(void **state)
{
    tmsfix *f = calloc(1, sizeof *f);
    tmsfix_setup(f, "tms-store");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    tmsfix_teardown(*state);
    free(*state);
    return 0;
}

int main(void)
{
#ifdef TMSFIX_PG
    if (!pgtemp_is_available()) {
        const char *skip = getenv("POSSUM_SKIP_PG");
        fprintf(stderr, "PostgreSQL server binaries not installed (scripts/deps.sh)\n");
        return skip != NULL && strcmp(skip, "1") == 0 ? 77 : 1;
    }
#endif
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_registry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dmk_and_provision, setup, teardown),
        cmocka_unit_test_setup_teardown(test_packages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_campaign_waves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_campaign_select_and_complete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reports_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_limiter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
