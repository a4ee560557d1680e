/* test_mtms.c: the MTMS of seed 001 with the real PIN pad and KMS code around it: customers,
 * the CSV import (all or nothing, bad lines named), look-ups (claims 1-2), TK upload with
 * re-association ([0046]) and its refusals, the outbox against a KMS that is down and then
 * up (claim 3), the audit trail, and no clear TK anywhere in the MTMS's database. */
#include "kmsfix.h"
#include "device/pinpad/pinpad_int.h"
#include "host/mtms/mtms.h"
#include "lib/hex.h"
#include "lib/log.h"
#include "lib/time.h"
#include "net/http.h"
#include "net/net.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct mf {
    kf k;
    char db[PX_PATH_MAX];
    store *st;
    pki_trust *trust;
    mtms *m;
    char csv[PX_PATH_MAX];
    char mtms_crt[PX_PATH_MAX], mtms_key[PX_PATH_MAX], kms_crt[PX_PATH_MAX], kms_key[PX_PATH_MAX];
} mf;

static void write_text(const char *path, const char *text)
{
    px_error e = {0};
    assert_int_equal(pki_write_file(path, text, strlen(text), 0600, &e), PX_OK);
}

static void issue_to(mf *f, pki_role role, const char *name, char *crt, char *key)
{
    pki_issue_req r;
    char *c = NULL, *k = NULL;
    px_error e = {0};
    memset(&r, 0, sizeof r);
    r.role = role;
    r.purpose = PKI_PURPOSE_TLS;
    r.name = name;
    r.days = 30;
    r.san[0] = "127.0.0.1";
    assert_int_equal(pki_ca_issue(f->k.ca, &r, &c, &k, NULL, &e), PX_OK);
    snprintf(crt, PX_PATH_MAX, "%s/%s.crt", f->k.dir, name);
    snprintf(key, PX_PATH_MAX, "%s/%s.key", f->k.dir, name);
    write_text(crt, c);
    write_text(key, k);
    free(c);
    free(k);
}

static int setup(void **state)
{
    mf *f = calloc(1, sizeof *f);
    store_config sc;
    px_error e = {0};
    kf_setup(&f->k, "mtms");
    store_config_default(&sc);
    snprintf(sc.path, sizeof sc.path, "%s/mtms.db", f->k.dir);
    snprintf(f->db, sizeof f->db, "%s", sc.path);
    sc.synchronous_full = 0;
    assert_int_equal(store_open(&sc, &f->st, &e), PX_OK);
    assert_int_equal(pki_trust_load(f->k.ca_crt, f->k.crl, &f->trust, &e), PX_OK);
    assert_int_equal(mtms_open(f->st, f->trust, &f->m, &e), PX_OK);
    snprintf(f->csv, sizeof f->csv, "%s/order.csv", f->k.dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    mf *f = *state;
    mtms_close(f->m);
    pki_trust_free(f->trust);
    store_close(f->st);
    kf_teardown(&f->k);
    free(f);
    return 0;
}

typedef struct find {
    const char *action, *result, *needle;
    int found;
} find;

static int on_audit(void *ud, const mtms_audit_row *r)
{
    find *a = ud;
    if (strcmp(r->action, a->action) == 0 && strcmp(r->result, a->result) == 0 &&
        (a->needle == NULL || strstr(r->detail, a->needle) || strstr(r->actor, a->needle)))
        a->found++;
    return 0;
}

static int audited(mf *f, const char *serial, const char *action, const char *result,
                   const char *needle)
{
    find a = {action, result, needle, 0};
    px_error e = {0};
    assert_int_equal(mtms_audit_list(f->st, serial, on_audit, &a, &e), PX_OK);
    return a.found;
}

/* Customers C001 (the fixture's KMS) and, with a second KMS, C002. */
static void customers(mf *f, kf_kms *second)
{
    px_error e = {0};
    assert_int_equal(mtms_customer_put(f->m, "C001", "Bank of Possum 第一支行",
                                       "https://127.0.0.1:1", f->k.kms.recv_pem, "cli:test", &e),
                     PX_OK);
    if (second != NULL) {
        kf_kms_make(&f->k, second, "C002");
        assert_int_equal(mtms_customer_put(f->m, "C002", "Acquirer Two", "https://127.0.0.1:2",
                                           second->recv_pem, "cli:test", &e),
                         PX_OK);
    }
}

static void import_ok(mf *f, const char *order, const char *csv)
{
    mtms_import_report r;
    px_error e = {0};
    write_text(f->csv, csv);
    if (mtms_import_csv(f->m, order, f->csv, "cli:test", &r, &e) != PX_OK)
        fail_msg("import: %s", e.msg);
}

static void test_customers(void **state)
{
    mf *f = *state;
    kf_kms second;
    mtms_customer c;
    px_error e = {0};
    customers(f, &second);
    assert_int_equal(mtms_customer_get(f->st, "C001", &c, &e), PX_OK);
    assert_string_equal(c.kms_cn, "kms:C001");
    assert_string_equal(c.name, "Bank of Possum 第一支行");
    /* C002's certificate is not C001's; a bad name; a bad address */
    assert_int_equal(mtms_customer_put(f->m, "C001", "x", "https://127.0.0.1:1", second.recv_pem,
                                       "cli:test", &e),
                     PX_EPERM);
    assert_non_null(strstr(e.msg, "not customer C001's"));
    assert_int_equal(mtms_customer_put(f->m, "C003", "bad\nname", "https://127.0.0.1:1",
                                       f->k.kms.recv_pem, "cli:test", &e),
                     PX_EINVAL);
    assert_int_equal(mtms_customer_put(f->m, "C001", "x", "http://127.0.0.1:1", f->k.kms.recv_pem,
                                       "cli:test", &e),
                     PX_EINVAL);
    assert_int_equal(mtms_customer_get(f->st, "C404", &c, &e), PX_ENOTFOUND);
    assert_string_equal(e.msg, "unknown customer code C404");
    assert_true(mtms_name_is_valid("张三"));
    assert_false(mtms_name_is_valid("\xC3"));
    assert_false(mtms_name_is_valid("\xFF\xFE"));
    kf_kms_free(&second);
}

static void test_import(void **state)
{
    mf *f = *state;
    mtms_import_report r;
    mtms_serial_info si;
    px_error e = {0};
    customers(f, NULL);
    /* every bad line is named, and nothing is imported */
    write_text(f->csv, "\xEF\xBB\xBF"
                       "serial,customer\r\n"
                       "PP1,C001\r\n"
                       "PP 2,C001\n"
                       "PP3,C001,extra\n"
                       "PP4,C404\n"
                       "\n"
                       "PP1,C001\n"
                       "PP6,\n");
    assert_int_equal(mtms_import_csv(f->m, "PO-1", f->csv, "cli:test", &r, &e), PX_EFORMAT);
    assert_int_equal(r.bad, 5);
    assert_string_equal(r.errors[0], "line 3: serial: 1 to 32 of A-Z a-z 0-9 . _ - @");
    assert_string_equal(r.errors[1], "line 4: expected 2 fields (serial,customer)");
    assert_string_equal(r.errors[2], "line 5: serial PP4: unknown customer C404");
    assert_string_equal(r.errors[3],
                        "line 8: serial PP6: customer code: 1 to 32 of A-Z a-z 0-9 . _ - @");
    assert_string_equal(r.errors[4], "line 7: serial PP1 is also on line 2");
    assert_non_null(strstr(e.msg, "5 bad lines, nothing imported"));
    assert_int_equal(mtms_serial_get(f->st, "PP1", &si, &e), PX_ENOTFOUND);
    assert_true(audited(f, "-", "import", "refused", "PO-1") == 1);
    /* a missing header */
    write_text(f->csv, "PP1,C001\n");
    assert_int_equal(mtms_import_csv(f->m, "PO-1", f->csv, "cli:test", &r, &e), PX_EFORMAT);
    assert_string_equal(r.errors[0], "line 1: expected the header \"serial,customer\"");
    /* a good one, then the same order again, then a serial already in the table */
    import_ok(f, "PO-1", "serial,customer\nPP1,C001\nPP2,C001\n");
    assert_int_equal(mtms_serial_get(f->st, "PP2", &si, &e), PX_OK);
    assert_string_equal(si.status, "new");
    assert_string_equal(si.order_no, "PO-1");
    assert_int_equal(mtms_import_csv(f->m, "PO-1", f->csv, "cli:test", &r, &e), PX_EEXIST);
    write_text(f->csv, "serial,customer\nPP3,C001\nPP2,C001\n");
    assert_int_equal(mtms_import_csv(f->m, "PO-2", f->csv, "cli:test", &r, &e), PX_EFORMAT);
    assert_string_equal(r.errors[0], "line 3: serial PP2 is already in order PO-1");
    assert_int_equal(mtms_serial_get(f->st, "PP3", &si, &e), PX_ENOTFOUND);
    assert_int_equal(mtms_import_csv(f->m, "bad order", f->csv, "cli:test", &r, &e), PX_EINVAL);
    assert_int_equal(mtms_import_csv(f->m, "PO-3", "/nonexistent.csv", "cli:test", &r, &e),
                     PX_ENOTFOUND);
}

static void submit_env(mf *f, pinpad *p, kf_kms *to, char *b64)
{
    uint8_t env[PX_TKENV_MAX];
    size_t n = kf_envelope(&f->k, p, to, env, sizeof env);
    pki_b64_encode(env, n, b64);
}

static void test_operator_flow(void **state)
{
    mf *f = *state;
    kf_kms second;
    pinpad *p1, *p2;
    mtms_serial_info si;
    mtms_customer *c = malloc(sizeof *c);
    mtms_submit_result r;
    char b64[PX_TKENV_B64_MAX], b64b[PX_TKENV_B64_MAX];
    px_error e = {0};
    customers(f, &second);
    import_ok(f, "PO-1", "serial,customer\nPP10000001,C001\nPP10000002,C002\n");
    p1 = kf_pinpad(&f->k, "PP10000001");
    p2 = kf_pinpad(&f->k, "PP10000002");
    /* claim 1: the serial gives the customer; confirmed: the TK goes up */
    assert_int_equal(mtms_lookup_serial(f->m, "PP10000001", "operator:alice", &si, c, &e), PX_OK);
    assert_string_equal(c->code, "C001");
    assert_true(audited(f, "PP10000001", "lookup", "ok", "operator:alice") == 1);
    submit_env(f, p1, &f->k.kms, b64);
    assert_int_equal(mtms_tk_submit(f->m, "operator:alice", "PP10000001", "C001", 0, b64, &r, &e),
                     PX_EPERM);
    assert_non_null(strstr(e.msg, "not confirmed"));
    assert_int_equal(mtms_tk_submit(f->m, "operator:alice", "PP10000001", "C001", 1, b64, &r, &e),
                     PX_OK);
    assert_string_equal(r.previous_customer, "");
    assert_int_equal(mtms_serial_get(f->st, "PP10000001", &si, &e), PX_OK);
    assert_string_equal(si.status, "received");
    assert_string_equal(si.confirmed_by, "operator:alice");
    assert_true(audited(f, "PP10000001", "confirm", "ok", "confirmed customer C001") == 1);
    /* again (the operator terminal retried): nothing new */
    assert_int_equal(mtms_tk_submit(f->m, "operator:alice", "PP10000001", "C001", 1, b64, &r, &e),
                     PX_OK);
    assert_true(r.duplicate);
    /* claim 2: the table says C002 for PP10000002; the operator does not confirm, types C001 */
    assert_int_equal(mtms_lookup_serial(f->m, "PP10000002", "operator:bob", &si, c, &e), PX_OK);
    assert_string_equal(c->code, "C002");
    assert_int_equal(mtms_lookup_customer(f->m, "C404", "operator:bob", c, &e), PX_ENOTFOUND);
    assert_true(audited(f, "-", "customer.lookup", "refused", "C404") == 1);
    assert_int_equal(mtms_lookup_customer(f->m, "C001", "operator:bob", c, &e), PX_OK);
    submit_env(f, p2, &f->k.kms, b64b);
    /* a TK wrapped for C001 but sent as C002's is refused */
    assert_int_equal(mtms_tk_submit(f->m, "operator:bob", "PP10000002", "C002", 1, b64b, &r, &e),
                     PX_ECONFLICT);
    assert_non_null(strstr(e.msg, "wrapped to another KMS"));
    assert_int_equal(mtms_tk_submit(f->m, "operator:bob", "PP10000002", "C001", 1, b64b, &r, &e),
                     PX_OK);
    assert_string_equal(r.previous_customer, "C002");
    assert_int_equal(mtms_serial_get(f->st, "PP10000002", &si, &e), PX_OK);
    assert_string_equal(si.customer_code, "C001");
    assert_true(audited(f, "PP10000002", "reassociate", "ok", "from customer C002 to C001") == 1);
    /* another serial's envelope; an unknown serial; garbage */
    assert_int_equal(mtms_tk_submit(f->m, "operator:bob", "PP10000001", "C001", 1, b64b, &r, &e),
                     PX_EPERM);
    assert_non_null(strstr(e.msg, "not serial PP10000001's"));
    assert_int_equal(mtms_tk_submit(f->m, "operator:bob", "PP404", "C001", 1, b64b, &r, &e),
                     PX_ENOTFOUND);
    assert_int_equal(mtms_lookup_serial(f->m, "PP404", "operator:bob", &si, c, &e), PX_ENOTFOUND);
    assert_string_equal(e.msg, "unknown serial PP404: not in any production order");
    assert_int_equal(mtms_tk_submit(f->m, "operator:bob", "PP10000001", "C001", 1, "!!", &r, &e),
                     PX_EFORMAT);
    assert_true(audited(f, "PP10000001", "tk.submit", "refused", NULL) >= 2);
    /* nothing anywhere (MTMS database and WAL, the KMS, the PIN pads' files) is a clear TK */
    assert_false(kf_dir_has_key(f->k.dir, p1->slot[PINPAD_TK].key));
    assert_false(kf_dir_has_key(f->k.dir, p2->slot[PINPAD_TK].key));
    pinpad_close(p1);
    pinpad_close(p2);
    kf_kms_free(&second);
    free(c);
}

/* ---- a KMS behind HTTPS, for the outbox ---- */

typedef struct kms_srv {
    kf_kms *kms;
    struct event_base *base;
    struct event *keep;
    net_http_server *http;
    pthread_t thread;
    int port;
} kms_srv;

static void on_tks(net_http_req *req, void *user)
{
    kms_srv *s = user;
    json_t *in = NULL, *res = json_array(), *list;
    char cn[PX_TLS_NAME_MAX] = "";
    px_error e = {0};
    (void)net_http_peer_cn(req, cn, sizeof cn);
    if (net_http_body_json(req, &in, &e) != PX_OK) {
        net_http_reply_error(req, 400, "bad_json", "%s", e.msg);
        json_decref(res);
        return;
    }
    list = json_object_get(in, "envelopes");
    for (size_t i = 0; i < json_array_size(list); i++) {
        uint8_t buf[PX_TKENV_MAX];
        size_t n = 0;
        kms_intake_result r;
        pki_b64_decode(json_string_value(json_array_get(list, i)), buf, sizeof buf, &n);
        kms_tk_intake(s->kms->k, cn, buf, n, &r, &e);
        json_array_append_new(res, json_pack("{s:s, s:s, s:s, s:s, s:s}", "serial", r.serial,
                                             "status", r.status, "tk_kcv", r.tk_kcv, "tmk_kcv",
                                             r.tmk_kcv, "message", r.reason));
    }
    json_decref(in);
    net_http_reply_json(req, 200, json_pack("{s:o}", "results", res));
}

static void keep_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
}

static void *srv_run(void *arg)
{
    kms_srv *s = arg;
    event_base_dispatch(s->base);
    return NULL;
}

static void srv_stop_cb(void *arg)
{
    kms_srv *s = arg;
    net_http_server_free(s->http);
    event_del(s->keep);
    event_base_loopbreak(s->base);
}

static void srv_start(mf *f, kms_srv *s, kf_kms *km, int port)
{
    net_listener_config cfg;
    struct timeval tv = {3600, 0};
    px_error e = {0};
    memset(s, 0, sizeof *s);
    s->kms = km;
    assert_int_equal(net_init(&e), PX_OK);
    assert_int_equal(net_base_new(&s->base, &e), PX_OK);
    s->keep = event_new(s->base, -1, EV_PERSIST, keep_cb, NULL);
    event_add(s->keep, &tv);
    net_listener_config_defaults(&cfg, "kms");
    snprintf(cfg.listen, sizeof cfg.listen, "127.0.0.1:%d", port);
    cfg.max_body = 1024 * 1024;
    snprintf(cfg.tls.cert, sizeof cfg.tls.cert, "%s", f->kms_crt);
    snprintf(cfg.tls.key, sizeof cfg.tls.key, "%s", f->kms_key);
    snprintf(cfg.tls.ca, sizeof cfg.tls.ca, "%s", f->k.ca_crt);
    snprintf(cfg.tls.crl, sizeof cfg.tls.crl, "%s", f->k.crl);
    cfg.tls.require_client_cert = 1;
    if (net_http_server_new(s->base, &cfg, &s->http, &e) != PX_OK)
        fail_msg("kms server: %s", e.msg);
    net_http_route(s->http, "POST", "/v1/kms/tks", on_tks, s, &e);
    s->port = net_http_server_port(s->http);
    pthread_create(&s->thread, NULL, srv_run, s);
}

static void srv_stop(kms_srv *s)
{
    net_post(s->base, srv_stop_cb, s);
    pthread_join(s->thread, NULL);
    event_free(s->keep);
    net_base_free(s->base);
}

static void test_outbox(void **state)
{
    mf *f = *state;
    pinpad *p = kf_pinpad(&f->k, "PP10000001");
    mtms_forward_config fc;
    mtms_forward_stats st;
    mtms_serial_info si;
    mtms_submit_result r;
    kms_srv srv;
    char b64[PX_TKENV_B64_MAX], url[64];
    int port;
    px_error e = {0};
    issue_to(f, PKI_ROLE_MTMS, "factory", f->mtms_crt, f->mtms_key);
    issue_to(f, PKI_ROLE_KMS, "C001", f->kms_crt, f->kms_key);
    customers(f, NULL);
    import_ok(f, "PO-1", "serial,customer\nPP10000001,C001\n");
    /* find a port, then leave it closed: the KMS is down */
    srv_start(f, &srv, &f->k.kms, 0);
    port = srv.port;
    srv_stop(&srv);
    snprintf(url, sizeof url, "https://127.0.0.1:%d", port);
    assert_int_equal(mtms_customer_put(f->m, "C001", "Bank of Possum", url, f->k.kms.recv_pem,
                                       "cli:test", &e),
                     PX_OK);
    submit_env(f, p, &f->k.kms, b64);
    assert_int_equal(mtms_tk_submit(f->m, "operator:alice", "PP10000001", "C001", 1, b64, &r, &e),
                     PX_OK);
    mtms_forward_config_default(&fc);
    fc.backoff_min_ms = 10;
    fc.backoff_max_ms = 20;
    fc.timeout_ms = 2000;
    snprintf(fc.tls.ca, sizeof fc.tls.ca, "%s", f->k.ca_crt);
    snprintf(fc.tls.crl, sizeof fc.tls.crl, "%s", f->k.crl);
    snprintf(fc.tls.cert, sizeof fc.tls.cert, "%s", f->mtms_crt);
    snprintf(fc.tls.key, sizeof fc.tls.key, "%s", f->mtms_key);
    assert_int_equal(mtms_forward_due(f->m, &fc, &st, &e), PX_OK);
    assert_int_equal(st.failed, 1);
    assert_int_equal(mtms_serial_get(f->st, "PP10000001", &si, &e), PX_OK);
    assert_string_equal(si.status, "forwarded");
    assert_non_null(strstr(si.last_error, "KMS of customer C001 not reached"));
    /* the KMS comes back: the TK waited, and now it is delivered and acknowledged */
    srv_start(f, &srv, &f->k.kms, port);
    for (int i = 0; i < 100; i++) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
        assert_int_equal(mtms_forward_due(f->m, &fc, &st, &e), PX_OK);
        if (st.acknowledged > 0)
            break;
    }
    srv_stop(&srv);
    assert_int_equal(st.acknowledged, 1);
    assert_int_equal(mtms_serial_get(f->st, "PP10000001", &si, &e), PX_OK);
    assert_string_equal(si.status, "acknowledged");
    assert_string_equal(si.last_error, "");
    assert_true(audited(f, "PP10000001", "forward", "ok", "acknowledged by kms:C001") == 1);
    /* the KMS has it and can give the terminal its TMK */
    assert_int_equal(kf_download(&f->k.kms, p, &e), PX_OK);
    /* nothing more to send */
    assert_int_equal(mtms_forward_due(f->m, &fc, &st, &e), PX_OK);
    assert_int_equal(st.sent, 0);
    assert_false(kf_dir_has_key(f->k.dir, p->slot[PINPAD_TK].key));
    assert_false(kf_dir_has_key(f->k.dir, p->slot[PINPAD_TMK].key));
    pinpad_close(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_customers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import, setup, teardown),
        cmocka_unit_test_setup_teardown(test_operator_flow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
