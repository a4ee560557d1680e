/*
 * test_http.c: the HTTP/JSON server over real sockets: routing, the one error shape for
 * 400/404/405/413/431/501/500, JSON bodies, keep-alive and pipelining, HEAD, decoding of
 * paths and queries, /healthz, /metrics, files with Range, and TLS / mutual TLS with curl.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "nettest.h"
#include "net/http.h"

#include <event2/event.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static nt_certs CERTS;
static nt_loop LOOP;
static net_http_server *SRV;
static int PORT;
static char FILE_PATH[256];

/* ---- handlers ------------------------------------------------------------------------ */

static void h_echo(net_http_req *req, void *user)
{
    json_t *segs = json_array();
    char x[64] = "";
    (void)user;
    for (size_t i = 0; i < net_http_segment_count(req); i++)
        json_array_append_new(segs, json_string(net_http_segment(req, i)));
    net_http_query(req, "x", x, sizeof x);
    net_http_reply_json(req, 200,
                        json_pack("{s:o,s:s,s:s}", "segments", segs, "path", net_http_path(req),
                                  "x", x));
}

static void h_items_post(net_http_req *req, void *user)
{
    json_t *body;
    px_error e = {0};
    (void)user;
    if (net_http_body_json(req, &body, &e) != PX_OK) {
        net_http_reply_error(req, 400, "bad_json", "%s", e.msg);
        return;
    }
    net_http_add_header(req, "Location", "/v1/items/1");
    net_http_reply_json(req, 201, json_pack("{s:o}", "got", body));
}

static void h_items_put(net_http_req *req, void *user)
{
    (void)user;
    net_http_reply_json(req, 200, NULL);
}

static void h_item_detail(net_http_req *req, void *user)
{
    (void)user;
    net_http_reply_json(req, 200, json_pack("{s:s}", "id", net_http_segment(req, 2)));
}

static void h_whoami(net_http_req *req, void *user)
{
    char cn[PX_TLS_NAME_MAX];
    (void)user;
    if (net_http_peer_cn(req, cn, sizeof cn) != PX_OK) {
        net_http_reply_error(req, 401, "unauthorized", "a client certificate is required");
        return;
    }
    net_http_reply_json(req, 200, json_pack("{s:s}", "cn", cn));
}

static void h_file(net_http_req *req, void *user)
{
    int fd = open(FILE_PATH, O_RDONLY);
    struct stat st;
    (void)user;
    fstat(fd, &st);
    net_http_reply_file(req, fd, st.st_size, "application/octet-stream");
}

static void h_noreply(net_http_req *req, void *user)
{
    (void)req;
    (void)user;
}

static void h_missing(net_http_req *req, void *user)
{
    px_error e = {0};
    (void)user;
    px_error_set(&e, PX_ENOTFOUND, "terminal 12345678 not found");
    net_http_reply_px_error(req, e.code, &e);
}

static void add_routes(net_http_server *s)
{
    px_error e = {0};
    assert_int_equal(net_http_route(s, "GET", "/v1/echo/*", h_echo, NULL, &e), PX_OK);
    assert_int_equal(net_http_route(s, "POST", "/v1/items", h_items_post, NULL, &e), PX_OK);
    assert_int_equal(net_http_route(s, "PUT", "/v1/items", h_items_put, NULL, &e), PX_OK);
    assert_int_equal(net_http_route(s, "GET", "/v1/items/*/detail", h_item_detail, NULL, &e),
                     PX_OK);
    assert_int_equal(net_http_route(s, "GET", "/v1/whoami", h_whoami, NULL, &e), PX_OK);
    assert_int_equal(net_http_route(s, "GET", "/v1/file", h_file, NULL, &e), PX_OK);
    assert_int_equal(net_http_route(s, "GET", "/v1/noreply", h_noreply, NULL, &e), PX_OK);
    assert_int_equal(net_http_route(s, "GET", "/v1/missing", h_missing, NULL, &e), PX_OK);
    assert_int_equal(net_http_route(s, "GET", "/v1/echo/*", h_echo, NULL, &e), PX_EEXIST);
    assert_int_equal(net_http_route(s, "GET", "v1/x", h_echo, NULL, &e), PX_EINVAL);
    assert_int_equal(net_http_route(s, "GET", "/v1/a*", h_echo, NULL, &e), PX_EINVAL);
    assert_int_equal(net_http_route(s, "get", "/v1/x", h_echo, NULL, &e), PX_EINVAL);
}

/* ---- helpers ------------------------------------------------------------------------- */

#define ERR_SHAPE(status, code) "{\"error\":{\"status\":" #status ",\"code\":\"" code "\""

static json_t *body_json(const nt_resp *r)
{
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    assert_non_null(j);
    return j;
}

/* The one error shape: status and code as expected, a message string, nothing else. */
static void assert_error_shape(const nt_resp *r, int status, const char *code)
{
    json_t *j = body_json(r), *err = json_object_get(j, "error");
    char ct[64];
    assert_int_equal(r->status, status);
    assert_non_null(nt_resp_header(r, "Content-Type", ct, sizeof ct));
    assert_string_equal(ct, "application/json");
    assert_int_equal(json_object_size(j), 1);
    assert_int_equal(json_object_size(err), 3);
    assert_int_equal(json_integer_value(json_object_get(err, "status")), status);
    assert_string_equal(json_string_value(json_object_get(err, "code")), code);
    assert_true(json_is_string(json_object_get(err, "message")));
    json_decref(j);
}

static int get(const char *path, nt_resp *r)
{
    char req[1024];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    return nt_http(PORT, req, r);
}

static int post(const char *path, const char *body, nt_resp *r)
{
    char req[4096];
    snprintf(req, sizeof req,
             "POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             path, strlen(body), body);
    return nt_http(PORT, req, r);
}

/* ---- tests --------------------------------------------------------------------------- */

static void test_healthz_and_shapes(void **state)
{
    nt_resp r;
    char allow[64];
    (void)state;
    assert_int_equal(get("/healthz", &r), 200);
    assert_string_equal(r.body, "{\"status\":\"ok\"}");
    assert_int_equal(get("/nope", &r), 404);
    assert_error_shape(&r, 404, "not_found");
    assert_string_equal(r.body, ERR_SHAPE(404, "not_found") ",\"message\":\"no such path\"}}");
    assert_int_equal(nt_http(PORT, "DELETE /v1/items HTTP/1.1\r\nHost: t\r\n\r\n", &r), 405);
    assert_error_shape(&r, 405, "method_not_allowed");
    assert_non_null(nt_resp_header(&r, "Allow", allow, sizeof allow));
    assert_string_equal(allow, "POST, PUT");
    assert_int_equal(get("/v1/noreply", &r), 500); /* a handler that forgot to reply */
    assert_error_shape(&r, 500, "internal");
    assert_int_equal(get("/v1/missing", &r), 404);
    assert_error_shape(&r, 404, "not_found");
    assert_non_null(strstr(r.body, "terminal 12345678 not found"));
}

static void test_json_bodies(void **state)
{
    nt_resp r;
    char loc[64];
    json_t *j;
    (void)state;
    assert_int_equal(post("/v1/items", "{\"amount\":100,\"currency\":\"156\"}", &r), 201);
    j = body_json(&r);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "got"), "amount")), 100);
    json_decref(j);
    assert_string_equal(nt_resp_header(&r, "Location", loc, sizeof loc), "/v1/items/1");
    assert_int_equal(post("/v1/items", "{\"amount\": 1,", &r), 400);
    assert_error_shape(&r, 400, "bad_json");
    assert_non_null(strstr(r.body, "line 1 column"));
    assert_int_equal(post("/v1/items", "[1,2]", &r), 400);
    assert_error_shape(&r, 400, "bad_json");
    assert_non_null(strstr(r.body, "expected a JSON object"));
    assert_int_equal(post("/v1/items", "{\"a\":1,\"a\":2}", &r), 400); /* duplicate key */
    assert_int_equal(post("/v1/items", "{\"a\":\"\\u0000\"}", &r), 400);
    assert_int_equal(post("/v1/items", "{\"a\":\"\xff\"}", &r), 400); /* not UTF-8 */
    assert_int_equal(post("/v1/items", "", &r), 400);
    assert_int_equal(nt_metric("possum_http_errors_total", "listener=\"t_http\",code=\"bad_json\""),
                     6);
}

static void test_limits(void **state)
{
    static char req[32768], big[8192];
    nt_resp r;
    (void)state;
    memset(big, 'x', sizeof big - 1);
    snprintf(req, sizeof req, "POST /v1/items HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(big), big);
    assert_int_equal(nt_http(PORT, req, &r), 413); /* max_body is 1024 */
    assert_error_shape(&r, 413, "body_too_large");
    snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: %s%s%s\r\n\r\n", big, big, big);
    assert_int_equal(nt_http(PORT, req, &r), 431);
    assert_error_shape(&r, 431, "headers_too_large");
    assert_int_equal(nt_http(PORT, "GARBAGE\r\n\r\n", &r), 400);
    assert_error_shape(&r, 400, "bad_request");
    assert_int_equal(nt_http(PORT, "GET / HTTP/2.0\r\nHost: t\r\n\r\n", &r), 505);
    assert_int_equal(nt_http(PORT, "GET / HTTP/1.1\r\n\r\n", &r), 400); /* no Host */
    assert_int_equal(nt_http(PORT, "GET / HTTP/1.1\r\nHost : t\r\n\r\n", &r), 400);
    assert_int_equal(nt_http(PORT, "GET / HTTP/1.1\r\nHost: t\r\n folded\r\n\r\n", &r), 400);
    assert_int_equal(nt_http(PORT,
                             "POST /v1/items HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
                             "Content-Length: 3\r\n\r\n{}",
                             &r),
                     400);
    assert_int_equal(nt_http(PORT,
                             "POST /v1/items HTTP/1.1\r\nHost: t\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                             &r),
                     501);
    assert_error_shape(&r, 501, "not_implemented");
    assert_true(nt_metric("possum_http_errors_total",
                          "listener=\"t_http\",code=\"body_too_large\"") >= 1);
    assert_int_equal(get("/healthz", &r), 200); /* and the server still serves */
}

static void test_paths_and_queries(void **state)
{
    nt_resp r;
    json_t *j;
    (void)state;
    assert_int_equal(get("/v1/echo/a%20b/c?x=1%2B2+3&y=z", &r), 200);
    j = body_json(&r);
    assert_int_equal(json_array_size(json_object_get(j, "segments")), 4);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "segments"), 2)),
                        "a b");
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/v1/echo/a b/c");
    assert_string_equal(json_string_value(json_object_get(j, "x")), "1+2 3");
    json_decref(j);
    assert_int_equal(get("/v1/items/42/detail", &r), 200);
    assert_string_equal(r.body, "{\"id\":\"42\"}");
    assert_int_equal(get("/v1/items/42", &r), 404);
    assert_int_equal(get("/v1/echo", &r), 404); /* a trailing "*" needs one segment */
    assert_int_equal(get("/v1/echo/a%2Fb", &r), 400);
    assert_error_shape(&r, 400, "bad_path");
    assert_int_equal(get("/v1/echo/../../etc/passwd", &r), 400);
    assert_int_equal(get("/v1/echo/%00", &r), 400);
    assert_int_equal(get("/v1/echo/%zz", &r), 400);
}

static void test_keepalive_pipelining_head(void **state)
{
    const char *two = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
                      "POST /v1/items HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}";
    net_client *c;
    nt_resp r;
    char v[64];
    (void)state;
    assert_int_equal(net_client_connect("127.0.0.1", PORT, NULL, 3000, &c, NULL), PX_OK);
    assert_int_equal(nt_http_exchange(c, two, strlen(two), 0, &r), 200);
    assert_int_equal(nt_http_exchange(c, NULL, 0, 0, &r), 201);
    assert_int_equal(nt_http_exchange(c, "HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 35, 1, &r),
                     200);
    assert_string_equal(nt_resp_header(&r, "Content-Length", v, sizeof v), "15");
    assert_int_equal(nt_http_exchange(c, "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", 34, 0, &r),
                     200);
    assert_string_equal(r.body, "{\"status\":\"ok\"}"); /* HEAD left no body behind */
    net_client_close(c);
    assert_int_equal(nt_http(PORT, "GET /healthz HTTP/1.0\r\n\r\n", &r), 200);
    assert_string_equal(nt_resp_header(&r, "Connection", v, sizeof v), "close");
}

static void test_metrics_text(void **state)
{
    nt_resp r;
    char ct[64];
    (void)state;
    assert_int_equal(get("/metrics", &r), 200);
    assert_string_equal(nt_resp_header(&r, "Content-Type", ct, sizeof ct),
                        "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(strstr(r.body, "# TYPE possum_http_errors_total counter\n"));
    assert_non_null(strstr(r.body,
                           "possum_http_errors_total{listener=\"t_http\",code=\"bad_json\"} 6\n"));
    assert_non_null(strstr(r.body, "# TYPE possum_net_connections_open gauge\n"));
    assert_non_null(strstr(r.body,
                           "possum_http_requests_total{listener=\"t_http\",class=\"2xx\"}"));
}

static void test_file_and_ranges(void **state)
{
    nt_resp r;
    char v[64];
    (void)state;
    assert_int_equal(get("/v1/file", &r), 200);
    assert_int_equal(r.body_len, 100);
    assert_string_equal(nt_resp_header(&r, "Accept-Ranges", v, sizeof v), "bytes");
    assert_int_equal(nt_http(PORT, "GET /v1/file HTTP/1.1\r\nHost: t\r\nRange: bytes=2-5\r\n\r\n",
                             &r),
                     206);
    assert_string_equal(r.body, "2345");
    assert_string_equal(nt_resp_header(&r, "Content-Range", v, sizeof v), "bytes 2-5/100");
    assert_int_equal(nt_http(PORT, "GET /v1/file HTTP/1.1\r\nHost: t\r\nRange: bytes=-3\r\n\r\n",
                             &r),
                     206);
    assert_string_equal(r.body, "789");
    assert_int_equal(nt_http(PORT, "GET /v1/file HTTP/1.1\r\nHost: t\r\nRange: bytes=95-\r\n\r\n",
                             &r),
                     206);
    assert_string_equal(r.body, "56789");
    assert_int_equal(nt_http(PORT, "GET /v1/file HTTP/1.1\r\nHost: t\r\nRange: bytes=100-\r\n\r\n",
                             &r),
                     416);
    assert_error_shape(&r, 416, "range_not_satisfiable");
    assert_string_equal(nt_resp_header(&r, "Content-Range", v, sizeof v), "bytes */100");
    assert_int_equal(nt_http(PORT, "GET /v1/file HTTP/1.1\r\nHost: t\r\nRange: items=1-2\r\n\r\n",
                             &r),
                     200); /* ignored */
    assert_int_equal(r.body_len, 100);
}

/* ---- curl: a real client, TLS and mutual TLS ------------------------------------------ */

static int curl(const char *args, char *out, size_t outsz)
{
    char cmd[2048];
    FILE *p;
    size_t n;
    int status = -1;
    snprintf(cmd, sizeof cmd, "curl -s -m 5 -w '\\n%%{http_code}' %s 2>/dev/null", args);
    p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    n = fread(out, 1, outsz - 1, p);
    out[n] = 0;
    pclose(p);
    if (n > 0 && strrchr(out, '\n') != NULL) {
        status = (int)strtol(strrchr(out, '\n') + 1, NULL, 10);
        *strrchr(out, '\n') = 0;
    }
    return status;
}

static void test_curl_big_body(void **state)
{
    char args[512], out[4096];
    (void)state;
    if (system("curl --version >/dev/null 2>&1") != 0)
        skip();
    /* 2 MB: curl sends Expect: 100-continue and gets the 413 instead */
    snprintf(args, sizeof args,
             "-X POST -H 'Content-Type: application/json' "
             "--data-binary @%s/big.json http://127.0.0.1:%d/v1/items",
             CERTS.dir, PORT);
    assert_int_equal(curl(args, out, sizeof out), 413);
    assert_non_null(strstr(out, ERR_SHAPE(413, "body_too_large")));
    snprintf(args, sizeof args, "-X POST -d '{\"a\":' http://127.0.0.1:%d/v1/items", PORT);
    assert_int_equal(curl(args, out, sizeof out), 400);
    assert_non_null(strstr(out, ERR_SHAPE(400, "bad_json")));
}

static void tls_server(void *arg)
{
    net_http_server **out = arg;
    net_listener_config cfg;
    px_error e = {0};
    net_listener_config_defaults(&cfg, "t_https");
    snprintf(cfg.tls.cert, sizeof cfg.tls.cert, "%s", CERTS.server_cert);
    snprintf(cfg.tls.key, sizeof cfg.tls.key, "%s", CERTS.server_key);
    snprintf(cfg.tls.ca, sizeof cfg.tls.ca, "%s", CERTS.ca);
    snprintf(cfg.tls.crl, sizeof cfg.tls.crl, "%s", CERTS.crl);
    cfg.tls.require_client_cert = 1;
    if (net_http_server_new(LOOP.base, &cfg, out, &e) != PX_OK)
        fail_msg("https: %s", e.msg);
    add_routes(*out);
}

static void tls_server_free(void *arg)
{
    net_http_server_free(arg);
}

static void test_curl_mutual_tls(void **state)
{
    net_http_server *https = NULL;
    char args[1024], out[4096];
    int port;
    (void)state;
    if (system("curl --version >/dev/null 2>&1") != 0)
        skip();
    nt_loop_call(&LOOP, tls_server, &https);
    port = net_http_server_port(https);
    snprintf(args, sizeof args, "--cacert %s --cert %s --key %s https://127.0.0.1:%d/v1/whoami",
             CERTS.ca, CERTS.client_cert, CERTS.client_key, port);
    assert_int_equal(curl(args, out, sizeof out), 200);
    assert_string_equal(out, "{\"cn\":\"terminal-1\"}");
    snprintf(args, sizeof args, "--cacert %s https://127.0.0.1:%d/v1/whoami", CERTS.ca, port);
    assert_true(curl(args, out, sizeof out) <= 0); /* no client certificate: no HTTP at all */
    snprintf(args, sizeof args, "--cacert %s --cert %s --key %s https://127.0.0.1:%d/v1/whoami",
             CERTS.ca, CERTS.revoked_cert, CERTS.revoked_key, port);
    assert_true(curl(args, out, sizeof out) <= 0); /* revoked */
    snprintf(args, sizeof args, "--cacert %s --cert %s --key %s https://localhost:%d/healthz",
             CERTS.ca, CERTS.client_cert, CERTS.client_key, port);
    assert_int_equal(curl(args, out, sizeof out), 200);
    nt_loop_call(&LOOP, tls_server_free, https);
}

/* ---- fixture ------------------------------------------------------------------------- */

static int setup(void **state)
{
    net_listener_config cfg;
    px_error e = {0};
    FILE *f;
    (void)state;
    net_init(NULL);
    if (nt_certs_make(&CERTS) != 0)
        return -1;
    snprintf(FILE_PATH, sizeof FILE_PATH, "%s/file.bin", CERTS.dir);
    f = fopen(FILE_PATH, "w");
    for (int i = 0; i < 100; i++)
        fputc('0' + i % 10, f);
    fclose(f);
    {
        char big[256];
        snprintf(big, sizeof big, "%s/big.json", CERTS.dir);
        f = fopen(big, "w");
        fputs("{\"pad\":\"", f);
        for (int i = 0; i < 2 * 1024 * 1024; i++)
            fputc('x', f);
        fputs("\"}", f);
        fclose(f);
    }
    nt_loop_init(&LOOP);
    net_listener_config_defaults(&cfg, "t_http");
    cfg.max_body = 1024;
    if (net_http_server_new(LOOP.base, &cfg, &SRV, &e) != PX_OK)
        return -1;
    add_routes(SRV);
    PORT = net_http_server_port(SRV);
    nt_loop_start(&LOOP);
    return 0;
}

static int teardown(void **state)
{
    char path[256];
    (void)state;
    nt_loop_stop(&LOOP);
    net_http_server_free(SRV);
    nt_loop_free(&LOOP);
    unlink(FILE_PATH);
    snprintf(path, sizeof path, "%s/big.json", CERTS.dir);
    unlink(path);
    nt_certs_remove(&CERTS);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthz_and_shapes),
        cmocka_unit_test(test_json_bodies),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_paths_and_queries),
        cmocka_unit_test(test_keepalive_pipelining_head),
        cmocka_unit_test(test_metrics_text),
        cmocka_unit_test(test_file_and_ranges),
        cmocka_unit_test(test_curl_big_body),
        cmocka_unit_test(test_curl_mutual_tls),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    libevent_global_shutdown();
    return rc;
}
