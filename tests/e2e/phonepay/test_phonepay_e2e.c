/*
 * End to end, mobile-number payment (seed 002): possumd runs the switch, phonepay and the
 * issuer simulator (the provider); SMS go through a real Kannel (scripts/kannel-test.sh:
 * bearerbox, smsbox, kannel-extras' fakesmsc as the operator's SMSC). A payee registers over
 * the REST API with the code read from fakesmsc and changes the card the same way. Then a
 * terminal does what a merchant's does: registered with `possum terminal add`, signed on with
 * `possum pos`, it pays the payee by mobile number (masked name, APPROVED, the payer's SMS,
 * the payer debited at the provider, the switch's ledger owing it to the payee); the
 * provider's clearing file from `possum issuer clearing`, `possum recon run` credits the payee
 * (the payee's SMS carries the payer's number, the ledger owes nothing more), a second run
 * changes nothing, `possum ledger check` passes and the terminal's batch settles balanced.
 * The refusals a payer sees on the terminal: a bad number (refused before anything is sent),
 * a card of a bank that is not contracted, a wrong PIN. Last, phonepay.h's lookup limits
 * driven in this process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "host/phonepay/phonepay.h"
#include "hsm/hsm.h"
#include "lib/str.h"
#include "lib/time.h"
#include "tmpdir.h"

#define PASSPHRASE "e2e phonepay test passphrase"
#define PAYEE "13812345678"
#define PAYER "13987654321"
#define PAYEE_CARD "6217000000000006"     /* 王五, CCB demo: the issuer can credit it */
#define PAYEE_CARD2 "6222021234567890128" /* 孙八, ICBC demo */
#define PAYER_PAN "6222020000000007"      /* 张三, ICBC demo */
#define PAYER_PIN "123456"
#define RURAL_PAN "9558800000000000" /* 钱七: the rural bank is not contracted */
/* The masked forms the issuer's cardholder list and clearing file show. */
#define PAYER_MASKED "622202******0007"
#define PAYEE_MASKED "621700******0006"
#define RURAL_MASKED "955880******0000"
/* The switch's ledger accounts a mobile-number payment moves (docs/ledger.md). */
#define ACC_PROVIDER "provider:settlement"
#define ACC_PAYEES "phonepay:payees"

/* The merchant's terminal, its TMK from the demo's two components (scripts/demo.sh). */
#define TID "10000001"
#define MID "898100000000001"
#define TMK_COMPONENTS                                                                             \
    "0123456789ABCDEFFEDCBA9876543210:08D7B4,1F1F1F1F1F1F1F1F0E0E0E0E0E0E0E0E:22CAE3"

typedef struct fixture {
    char dir[256], ini[512], log[512], ports[512], kdir[512], fakelog[512];
    char sms_url[256], sms_password[64];
    pid_t pid;
    int api_port, http_port, issuer_port, switch_port;
    int kannel_up;
} fixture;

static fixture F;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* scripts/kannel-test.sh start, then read kannel.env. */
static int kannel_start(void)
{
    char cmd[1024], line[512], *src = getenv("POSSUM_SOURCE_DIR");
    px_buf out;
    FILE *fp;
    int rc;
    snprintf(F.kdir, sizeof F.kdir, "%s/kannel", F.dir);
    snprintf(cmd, sizeof cmd, "'%s/scripts/kannel-test.sh' start '%s' %d %d %d %d 2>&1",
             src ? src : ".", F.kdir, e2e_free_port(), e2e_free_port(), e2e_free_port(),
             e2e_free_port());
    px_buf_init(&out, 65536);
    rc = e2e_run(cmd, &out);
    if (rc != 0)
        fprintf(stderr, "kannel did not start:\n%s\n", px_buf_str(&out));
    px_buf_free(&out);
    if (rc != 0)
        return -1;
    F.kannel_up = 1;
    snprintf(line, sizeof line, "%s/kannel.env", F.kdir);
    if ((fp = fopen(line, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof line, fp) != NULL) {
        line[strcspn(line, "\n")] = 0;
        if (strncmp(line, "KANNEL_SENDSMS_URL=", 19) == 0)
            px_strlcpy(F.sms_url, line + 19, sizeof F.sms_url);
        else if (strncmp(line, "KANNEL_PASSWORD=", 16) == 0)
            px_strlcpy(F.sms_password, line + 16, sizeof F.sms_password);
        else if (strncmp(line, "KANNEL_FAKESMSC_LOG=", 20) == 0)
            px_strlcpy(F.fakelog, line + 20, sizeof F.fakelog);
    }
    fclose(fp);
    return F.sms_url[0] && F.fakelog[0] ? 0 : -1;
}

static void kannel_stop(void)
{
    char cmd[1024], *src = getenv("POSSUM_SOURCE_DIR");
    px_buf out;
    if (!F.kannel_up)
        return;
    px_buf_init(&out, 65536);
    snprintf(cmd, sizeof cmd, "'%s/scripts/kannel-test.sh' stop '%s'", src ? src : ".", F.kdir);
    (void)e2e_run(cmd, &out);
    px_buf_free(&out);
    F.kannel_up = 0;
}

static int write_ini(void)
{
    const char *d = F.dir;
    FILE *fp = fopen(F.ini, "w");
    if (fp == NULL)
        return -1;
    fprintf(fp, "[possumd]\nnode = e2e-phonepay\nlog_level = debug\ndrain_timeout_ms = 3000\n\n");
    fprintf(fp, "[store]\nbackend = sqlite\npath = %s/possum.db\nsynchronous = normal\n\n", d);
    fprintf(fp, "[http]\nlisten = 127.0.0.1:0\n\n");
    fprintf(fp, "[issuer]\nenabled = true\nlisten = 127.0.0.1:%d\nseed_demo = true\n",
            F.issuer_port);
    fprintf(fp, "hsm_lmk_file = %s/lmk.bin\nhsm_audit_file = %s/hsm-audit.log\n", d, d);
    /* the test writes the clearing file itself (possum issuer clearing), never the timer */
    fprintf(fp, "clearing_dir = %s/clearing\nclearing_at_day_end = false\n\n", d);
    /* the transaction platform the terminal talks to, with the issuer as its provider */
    fprintf(fp, "[switch]\nenabled = true\nlisten = 127.0.0.1:0\nprovider_connect = 127.0.0.1:%d\n",
            F.issuer_port);
    fprintf(fp, "hsm_lmk_file = %s/lmk.bin\nhsm_audit_file = %s/hsm-audit.log\n\n", d, d);
    fprintf(fp, "[phonepay]\nenabled = true\napi_listen = 127.0.0.1:0\nsms_url = %s\n", F.sms_url);
    fprintf(fp, "sms_username = possum\nsms_from = 10690001\noutbox_interval_ms = 100\n");
    fprintf(fp, "outbox_backoff_min_ms = 200\nprovider_connect = 127.0.0.1:%d\n", F.issuer_port);
    fprintf(fp, "clearing_dir = %s/clearing\nterminal_misses_max = 3\n", d);
    fprintf(fp, "hsm_lmk_file = %s/lmk.bin\nhsm_audit_file = %s/hsm-audit.log\n", d, d);
    return fclose(fp);
}

/* NAME=HOST:PORT lines of the ports file. */
static int read_ports(void)
{
    char line[256];
    FILE *fp = fopen(F.ports, "r");
    if (fp == NULL)
        return 0;
    while (fgets(line, sizeof line, fp) != NULL) {
        char *colon = strrchr(line, ':');
        int64_t port;
        if (colon == NULL)
            continue;
        colon[strcspn(colon, "\r\n")] = 0;
        if (px_parse_i64(colon + 1, 1, 65535, &port) != PX_OK)
            continue;
        if (strncmp(line, "phonepay=", 9) == 0)
            F.api_port = (int)port;
        else if (strncmp(line, "http=", 5) == 0)
            F.http_port = (int)port;
        else if (strncmp(line, "switch=", 7) == 0)
            F.switch_port = (int)port;
    }
    fclose(fp);
    return F.api_port > 0 && F.http_port > 0 && F.switch_port > 0;
}

static void dump_log(void)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "tail -n 60 '%s' >&2", F.log);
    if (system(cmd) != 0)
        fprintf(stderr, "(no log)\n");
}

/* A series' value on the daemon's /metrics ("name" or "name{labels}"); -1 when absent. */
static long long metric(const char *series)
{
    px_buf body;
    long status = 0;
    char needle[256];
    const char *p;
    long long v = -1;
    px_buf_init(&body, 1 << 22);
    if (e2e_http(F.http_port, "GET", "/metrics", NULL, &status, &body) == 0 && status == 200) {
        snprintf(needle, sizeof needle, "\n%s ", series);
        if ((p = strstr(px_buf_str(&body), needle)) != NULL)
            v = strtoll(p + strlen(needle), NULL, 10);
    }
    px_buf_free(&body);
    return v;
}

static int daemon_start(void)
{
    char exe[512];
    e2e_binary("src/app/possumd", exe, sizeof exe);
    F.pid = fork();
    if (F.pid < 0)
        return -1;
    if (F.pid == 0) {
        if (freopen(F.log, "w", stderr) == NULL)
            _exit(127);
        execl(exe, "possumd", "-c", F.ini, "--ports-file", F.ports, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 600; i++) { /* sanitizer builds and the LMK's scrypt start slowly */
        int status;
        /* listening, and the switch's link to the provider up: a payment is not a 91 */
        if (read_ports() && metric("possum_switch_provider_up") == 1)
            return 0;
        if (waitpid(F.pid, &status, WNOHANG) == F.pid) {
            F.pid = 0;
            dump_log();
            return -1;
        }
        sleep_ms(50);
    }
    dump_log();
    (void)e2e_child_stop(&F.pid, SIGKILL, 5000);
    return -1;
}

static int daemon_stop(void)
{
    int status = 0;
    if (F.pid <= 0)
        return -1;
    kill(F.pid, SIGTERM);
    for (int waited = 0; waited <= 15000; waited += 20) {
        if (waitpid(F.pid, &status, WNOHANG) == F.pid) {
            F.pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        sleep_ms(20);
    }
    kill(F.pid, SIGKILL);
    waitpid(F.pid, &status, 0);
    F.pid = 0;
    return -1;
}

static int group_setup(void **state)
{
    hsm_config hc;
    char check[PX_HSM_KCV_HEX_MAX];
    px_error e = {0};
    memset(&F, 0, sizeof F);
    if (testlib_mkdtemp("e2e-phonepay", F.dir, sizeof F.dir) != 0)
        return -1;
    snprintf(F.ini, sizeof F.ini, "%s/possum.ini", F.dir);
    snprintf(F.log, sizeof F.log, "%s/possumd.log", F.dir);
    snprintf(F.ports, sizeof F.ports, "%s/ports", F.dir);
    setenv(HSM_ENV_PASSPHRASE, PASSPHRASE, 1);
    hsm_config_default(&hc);
    snprintf(hc.lmk_file, sizeof hc.lmk_file, "%s/lmk.bin", F.dir);
    snprintf(hc.audit_file, sizeof hc.audit_file, "%s/hsm-audit.log", F.dir);
    hc.lmk_scrypt_log2n = 12;
    if (hsm_lmk_init(&hc, check, &e) != PX_OK) {
        fprintf(stderr, "LMK: %s\n", px_error_text(&e));
        return -1;
    }
    if (kannel_start() != 0) {
        kannel_stop();
        return -1;
    }
    setenv("POSSUM_SMS_PASSWORD", F.sms_password, 1);
    F.issuer_port = e2e_free_port();
    if (write_ini() != 0 || daemon_start() != 0) {
        kannel_stop();
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    int status = daemon_stop();
    kannel_stop();
    if (status != 0)
        dump_log();
    if (getenv("POSSUM_E2E_KEEP") == NULL)
        testlib_rmtree(F.dir);
    else
        fprintf(stderr, "kept %s\n", F.dir);
    return status == 0 ? 0 : -1;
}

/* ---- HTTP ---- */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    return px_buf_append(ud, p, size * n) == PX_OK ? size * n : 0;
}

/* method path [body] [bearer token] -> status, JSON body (NULL when not JSON). */
static long api(const char *method, const char *path, const char *body, const char *token,
                json_t **out)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char url[512], auth[128];
    px_buf b;
    long status = 0;
    px_buf_init(&b, 1 << 20);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", F.api_port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    if (body != NULL) {
        h = curl_slist_append(h, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    if (token != NULL) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (out != NULL)
        *out = json_loadb((const char *)b.data, b.len, 0, NULL);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    px_buf_free(&b);
    return status;
}

static const char *jstr(json_t *o, const char *k)
{
    const char *v = json_string_value(json_object_get(o, k));
    return v ? v : "";
}

/* ---- SMS as fakesmsc saw them ---- */

/* Kannel's url-encoded UCS-2 (big-endian) into UTF-8. */
static void ucs2_to_utf8(const char *enc, char *out, size_t outsz)
{
    uint8_t raw[1024];
    size_t n = 0, o = 0;
    for (const char *p = enc; *p && n < sizeof raw; p++) {
        unsigned v;
        if (*p == '%' && p[1] && p[2] && sscanf(p + 1, "%2x", &v) == 1) {
            raw[n++] = (uint8_t)v;
            p += 2;
        } else {
            raw[n++] = (uint8_t)*p;
        }
    }
    for (size_t i = 0; i + 1 < n && o + 4 < outsz; i += 2) {
        uint32_t c = (uint32_t)raw[i] << 8 | raw[i + 1];
        if (c >= 0xD800 && c < 0xDC00 && i + 3 < n) {
            c = 0x10000 + ((c - 0xD800) << 10) +
                (((uint32_t)raw[i + 2] << 8 | raw[i + 3]) - 0xDC00);
            i += 2;
        }
        if (c < 0x80)
            out[o++] = (char)c;
        else if (c < 0x800)
            out[o++] = (char)(0xC0 | c >> 6), out[o++] = (char)(0x80 | (c & 0x3F));
        else if (c < 0x10000)
            out[o++] = (char)(0xE0 | c >> 12), out[o++] = (char)(0x80 | ((c >> 6) & 0x3F)),
            out[o++] = (char)(0x80 | (c & 0x3F));
        else
            out[o++] = (char)(0xF0 | c >> 18), out[o++] = (char)(0x80 | ((c >> 12) & 0x3F)),
            out[o++] = (char)(0x80 | ((c >> 6) & 0x3F)), out[o++] = (char)(0x80 | (c & 0x3F));
    }
    out[o] = 0;
}

/* How many messages fakesmsc has received so far for `to` whose text contains needle; the
 * (skip+1)-th of them (0 = the first) into text when there are that many. */
static int sms_scan(const char *to, const char *needle, int skip, char *text, size_t textsz)
{
    char line[2048], one[1024];
    int seen = 0;
    FILE *fp = fopen(F.fakelog, "r");
    text[0] = 0;
    while (fp != NULL && fgets(line, sizeof line, fp) != NULL) {
        char from[32], dst[32], type[16], data[1536];
        const char *m = strstr(line, "Got message ");
        const char *lt = m ? strchr(m, '<') : NULL;
        if (lt == NULL || sscanf(lt + 1, "%31s %31s %15s %1535[^>]", from, dst, type, data) != 4)
            continue;
        if (strcmp(dst, to) != 0 || strcmp(type, "ucs-2") != 0)
            continue;
        ucs2_to_utf8(data, one, sizeof one);
        if (strstr(one, needle) != NULL && seen++ == skip)
            px_strlcpy(text, one, textsz);
    }
    if (fp != NULL)
        fclose(fp);
    return seen;
}

/* Wait up to 15 s for the (skip+1)-th message to `to` containing needle. 0 or -1. */
static int wait_sms(const char *to, const char *needle, int skip, char *text, size_t textsz)
{
    for (int tries = 0; tries < 150; tries++) {
        if (sms_scan(to, needle, skip, text, textsz) > skip)
            return 0;
        sleep_ms(100);
    }
    return -1;
}

/* The 6-digit code in the n-th code message to mobile. */
static void sms_code(const char *mobile, int nth, char code[7])
{
    char text[1024];
    const char *p;
    if (wait_sms(mobile, "验证码", nth, text, sizeof text) != 0)
        fail_msg("no code message %d for %s in %s", nth, mobile, F.fakelog);
    p = strstr(text, "验证码") + strlen("验证码");
    memcpy(code, p, 6);
    code[6] = 0;
    assert_true(px_is_digits(code, 6));
}

/* ---- the tests ---- */

static int cli(const char *args, px_buf *out)
{
    char cmd[1024], exe[512];
    e2e_binary("src/app/possum", exe, sizeof exe);
    snprintf(cmd, sizeof cmd, "'%s' %s --config '%s' 2>&1", exe, args, F.ini);
    px_buf_reset(out);
    return e2e_run(cmd, out);
}

/* [0038], claim 2: registration confirmed by a code sent to the number; card masked only. */
static void test_register_over_rest_with_sms_code(void **state)
{
    json_t *j = NULL;
    char code[7], token[80], bad[7];
    long st;
    st = api("POST", "/v1/payees",
             "{\"name\":\"王五\",\"mobile\":\"" PAYEE "\",\"card\":\"" PAYEE_CARD "\"}", NULL, &j);
    assert_int_equal(st, 202);
    assert_string_equal(jstr(j, "status"), "pending");
    assert_string_equal(jstr(j, "card"), "621700******0006");
    {
        char *dump = json_dumps(j, 0);
        assert_null(strstr(dump, PAYEE_CARD));
        free(dump);
    }
    json_decref(j);
    sms_code(PAYEE, 0, code);
    px_strlcpy(bad, code, sizeof bad);
    bad[0] = bad[0] == '9' ? '0' : (char)(bad[0] + 1);
    st = api("POST", "/v1/payees/" PAYEE "/confirm", "{\"code\":\"", NULL, NULL);
    assert_int_equal(st, 400); /* not JSON */
    {
        char body[64];
        snprintf(body, sizeof body, "{\"code\":\"%s\"}", bad);
        st = api("POST", "/v1/payees/" PAYEE "/confirm", body, NULL, &j);
        assert_int_equal(st, 401);
        assert_non_null(strstr(jstr(json_object_get(j, "error"), "message"), "tries left"));
        json_decref(j);
        snprintf(body, sizeof body, "{\"code\":\"%s\"}", code);
        st = api("POST", "/v1/payees/" PAYEE "/confirm", body, NULL, &j);
    }
    assert_int_equal(st, 200);
    assert_string_equal(jstr(j, "status"), "active");
    px_strlcpy(token, jstr(j, "token"), sizeof token);
    assert_int_equal(strlen(token), 64);
    json_decref(j);
    st = api("GET", "/v1/payees/" PAYEE, NULL, token, &j);
    assert_int_equal(st, 200);
    assert_string_equal(jstr(j, "name"), "王五");
    assert_string_equal(jstr(j, "card"), "621700******0006");
    json_decref(j);
    assert_int_equal(api("GET", "/v1/payees/" PAYEE, NULL, NULL, NULL), 401);
    assert_int_equal(api("GET", "/v1/payees/" PAYER, NULL, token, NULL), 403);
    st = api("POST", "/v1/payees",
             "{\"name\":\"李四\",\"mobile\":\"12345678901\",\"card\":\"" PAYEE_CARD "\"}", NULL,
             &j);
    assert_int_equal(st, 400);
    assert_string_equal(jstr(json_object_get(j, "error"), "message"),
                        "mobile: is not a mainland-China mobile number");
    json_decref(j);
    assert_int_equal(api("POST", "/v1/payees",
                         "{\"name\":\"王五\",\"mobile\":\"" PAYEE "\",\"card\":\"" PAYEE_CARD "\"}",
                         NULL, NULL),
                     409);
}

/* A card change is confirmed by a new code before it takes effect. */
static void test_card_change(void **state)
{
    json_t *j = NULL;
    char code[7], body[64];
    long st = api("PUT", "/v1/payees/" PAYEE "/card", "{\"card\":\"" PAYEE_CARD2 "\"}", NULL, &j);
    assert_int_equal(st, 202);
    assert_string_equal(jstr(j, "card"), "621700******0006");
    assert_string_equal(jstr(j, "pending_card"), "622202*********0128");
    json_decref(j);
    sms_code(PAYEE, 1, code);
    snprintf(body, sizeof body, "{\"code\":\"%s\"}", code);
    st = api("POST", "/v1/payees/" PAYEE "/confirm", body, NULL, &j);
    assert_int_equal(st, 200);
    assert_string_equal(jstr(j, "card"), "622202*********0128");
    json_decref(j);
    /* back to the demo card the provider can credit */
    assert_int_equal(api("PUT", "/v1/payees/" PAYEE "/card", "{\"card\":\"" PAYEE_CARD "\"}", NULL,
                         NULL),
                     202);
    sms_code(PAYEE, 2, code);
    snprintf(body, sizeof body, "{\"code\":\"%s\"}", code);
    assert_int_equal(api("POST", "/v1/payees/" PAYEE "/confirm", body, NULL, NULL), 200);
}

/* ---- the terminal, as a merchant's runs it ---- */

/* `possum pos ARGS` as the terminal TID in its own directory, against the daemon's switch. */
static int pos(px_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int pos(px_buf *out, const char *fmt, ...)
{
    char exe[512], args[512], cmd[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    e2e_binary("src/app/possum", exe, sizeof exe);
    snprintf(cmd, sizeof cmd,
             "'%s' pos %s --data '%s/pos' --port %d --tid " TID " --mid " MID
             " --timeout-ms 15000 2>&1",
             exe, args, F.dir, F.switch_port);
    px_buf_reset(out);
    return e2e_run(cmd, out);
}

/* The word after key in out ("RRN 000000000036" -> "000000000036"); "" when absent. */
static void grab(const px_buf *out, const char *key, char *v, size_t vsz)
{
    const char *p = strstr(px_buf_str(out), key);
    size_t n = 0;
    v[0] = 0;
    if (p == NULL)
        return;
    p += strlen(key);
    while (p[n] && p[n] != ' ' && p[n] != '\n' && n + 1 < vsz)
        n++;
    memcpy(v, p, n);
    v[n] = 0;
}

/* A cardholder's balance in fen as the provider's operator sees it (`possum issuer cardholder
 * list`: "... 10000.00 CNY" at the end of the card's line). */
static int64_t issuer_balance(const char *pan_masked)
{
    px_buf out;
    char yuan[32], digits[32];
    const char *line, *end, *cny;
    size_t n = 0, k = 0;
    int64_t v = -1;
    px_buf_init(&out, 1 << 20);
    if (cli("issuer cardholder list", &out) != 0)
        fail_msg("issuer cardholder list:\n%s", px_buf_str(&out));
    line = strstr(px_buf_str(&out), pan_masked);
    if (line == NULL)
        fail_msg("%s is not in the cardholder list:\n%s", pan_masked, px_buf_str(&out));
    end = strchr(line, '\n');
    cny = strstr(line, " CNY");
    if (cny == NULL || (end != NULL && cny > end))
        fail_msg("no balance on the line of %s", pan_masked);
    while (cny - n > line && cny[-(ptrdiff_t)n - 1] != ' ' && n + 1 < sizeof yuan)
        n++;
    memcpy(yuan, cny - n, n);
    yuan[n] = 0;
    for (size_t i = 0; i < n; i++)
        if (yuan[i] != '.')
            digits[k++] = yuan[i];
    digits[k] = 0;
    if (n < 4 || yuan[n - 3] != '.' || px_parse_i64(digits, 0, INT64_MAX, &v) != PX_OK)
        fail_msg("balance of %s: \"%s\"", pan_masked, yuan);
    px_buf_free(&out);
    return v;
}

/* An account's balance in the switch's ledger (GET /v1/switch/ledger/balances on the running
 * node), in fen with docs/ledger.md's sign; 0 for an account not made yet. */
static int64_t ledger_balance(const char *id)
{
    px_buf body;
    long status = 0;
    json_t *j, *a;
    size_t i;
    int64_t v = 0;
    px_buf_init(&body, 1 << 22);
    if (e2e_http(F.http_port, "GET", "/v1/switch/ledger/balances", NULL, &status, &body) != 0 ||
        status != 200)
        fail_msg("GET /v1/switch/ledger/balances: %ld %s", status, px_buf_str(&body));
    j = json_loads(px_buf_str(&body), 0, NULL);
    assert_non_null(j);
    json_array_foreach (json_object_get(j, "accounts"), i, a) {
        if (strcmp(jstr(a, "id"), id) == 0)
            v = json_integer_value(json_object_get(a, "balance_minor"));
    }
    json_decref(j);
    px_buf_free(&body);
    return v;
}

/* How many SMS fakesmsc has received for `to` whose text contains needle (now, no wait). */
static int sms_count(const char *to, const char *needle)
{
    char text[1024];
    return sms_scan(to, needle, -1, text, sizeof text);
}

/* The operator registers the terminal with its TMK (dual control), the same components go
 * into the terminal's PIN pad, the terminal signs on (work keys in field 62, checked by the
 * PIN pad); the contracted banks' BINs are entered. */
static void test_terminal_registered_and_signed_on(void **state)
{
    px_buf out;
    px_buf_init(&out, 1 << 20);
    if (cli("terminal add --tid " TID " --mid " MID
            " --name 'Possum Coffee' --tmk-components " TMK_COMPONENTS,
            &out) != 0)
        fail_msg("terminal add:\n%s", px_buf_str(&out));
    if (pos(&out, "init --tmk-components %s", TMK_COMPONENTS) != 0)
        fail_msg("pos init:\n%s", px_buf_str(&out));
    if (pos(&out, "signon") != 0)
        fail_msg("pos signon:\n%s", px_buf_str(&out));
    assert_int_equal(cli("phonepay bin add 622202 'ICBC demo'", &out), 0);
    assert_int_equal(cli("phonepay bin add 621700 'CCB demo'", &out), 0);
    px_buf_free(&out);
}

/* What a payer is refused at the terminal, and that none of it moves money or sends an SMS. */
static void test_pos_refusals(void **state)
{
    px_buf out;
    int64_t payer = issuer_balance(PAYER_MASKED), rural = issuer_balance(RURAL_MASKED);
    int64_t settlement = ledger_balance(ACC_PROVIDER), payees = ledger_balance(ACC_PAYEES);
    long long received = metric("possum_switch_messages_received_total");
    assert_true(received > 0); /* the sign-on at least */
    px_buf_init(&out, 1 << 20);
    /* claims 10, 12: the terminal's own number check, before any message */
    assert_int_equal(pos(&out, "phonepay --payee 12345678901 --payer " PAYER " --amount 1001 "
                               "--card " PAYER_PAN " --pin " PAYER_PIN " --yes"),
                     1);
    assert_non_null(strstr(px_buf_str(&out),
                           "REFUSED: payee mobile number: is not a mainland-China mobile number"));
    assert_null(strstr(px_buf_str(&out), "Payee "));
    assert_int_equal(metric("possum_switch_messages_received_total"), received);
    /* claim 4: a card of a bank the provider has no contract with; the reason is shown */
    assert_int_equal(pos(&out, "phonepay --payee " PAYEE " --payer " PAYER " --amount 1002 "
                               "--card " RURAL_PAN " --pin " PAYER_PIN " --yes"),
                     1);
    assert_non_null(strstr(px_buf_str(&out), "Payee 王*  (mobile 138****5678)"));
    if (strstr(px_buf_str(&out), "DECLINED 15: ") == NULL ||
        strstr(px_buf_str(&out), "card's bank is not a contracted bank") == NULL)
        fail_msg("not contracted:\n%s", px_buf_str(&out));
    /* a wrong PIN: the provider's 55 */
    assert_int_equal(pos(&out, "phonepay --payee " PAYEE " --payer " PAYER " --amount 1003 "
                               "--card " PAYER_PAN " --pin 000000 --yes"),
                     1);
    if (strstr(px_buf_str(&out), "DECLINED 55: ") == NULL)
        fail_msg("wrong PIN:\n%s", px_buf_str(&out));
    assert_int_equal(issuer_balance(PAYER_MASKED), payer);
    assert_int_equal(issuer_balance(RURAL_MASKED), rural);
    assert_int_equal(ledger_balance(ACC_PROVIDER), settlement);
    assert_int_equal(ledger_balance(ACC_PAYEES), payees);
    px_buf_free(&out);
}

/* The business day (UTC) whose clearing file from `possum issuer clearing` holds rrn: today,
 * or, when the payment straddled midnight, the day before. */
static void clearing_day_of(const char *rrn, const char *days[2], char path[600], char date[11])
{
    px_buf out;
    char args[256], ymd[9];
    px_buf_init(&out, 1 << 20);
    for (int i = 0; i < 2; i++) {
        snprintf(args, sizeof args, "issuer clearing --date %s --out '%s/clearing'", days[i],
                 F.dir);
        if (cli(args, &out) != 0)
            fail_msg("%s:\n%s", args, px_buf_str(&out));
        snprintf(ymd, sizeof ymd, "%.4s%.2s%.2s", days[i], days[i] + 5, days[i] + 8);
        snprintf(path, 600, "%s/clearing/clearing-%s.csv", F.dir, ymd);
        if (e2e_file_contains(path, rrn)) {
            px_strlcpy(date, days[i], 11);
            px_buf_free(&out);
            return;
        }
    }
    fail_msg("RRN %s is in no clearing file of %s or %s", rrn, days[0], days[1]);
}

/* [0045]-[0055] at a real terminal: the payee's masked name, the payment approved, the payer
 * told and debited; at the end of the day the provider's clearing file, reconciliation
 * crediting the payee, the payee told with the payer's number; a second run changes nothing. */
static void test_pos_payment_then_recon_credits_payee(void **state)
{
    px_buf out;
    char rrn[16], text[1024], line[128], args[256], path[600], date[11], before[11], after[11];
    const char *days[2] = {after, before};
    int64_t payer = issuer_balance(PAYER_MASKED), payee = issuer_balance(PAYEE_MASKED);
    int64_t settlement = ledger_balance(ACC_PROVIDER), payees = ledger_balance(ACC_PAYEES);
    FILE *fp;
    px_buf_init(&out, 1 << 20);
    px_time_format_utc(px_now_ms(), "%Y-%m-%d", before, sizeof before);
    if (pos(&out, "phonepay --payee " PAYEE " --payer " PAYER " --amount 6789 --card " PAYER_PAN
                  " --pin " PAYER_PIN " --yes") != 0)
        fail_msg("pos phonepay:\n%s", px_buf_str(&out));
    px_time_format_utc(px_now_ms(), "%Y-%m-%d", after, sizeof after);
    /* [0048]: the name with its second character hidden, never in full */
    assert_non_null(strstr(px_buf_str(&out), "Payee 王*  (mobile 138****5678)  amount 67.89 CNY"));
    assert_null(strstr(px_buf_str(&out), "王五"));
    assert_non_null(strstr(px_buf_str(&out), "APPROVED  amount 67.89 CNY"));
    assert_non_null(strstr(px_buf_str(&out), "card 622202******0007"));
    assert_non_null(strstr(px_buf_str(&out), "the payee will be credited after reconciliation"));
    grab(&out, "RRN ", rrn, sizeof rrn);
    assert_int_equal(strlen(rrn), 12);
    /* [0054]: the payer is told who was paid, how much, and the reference */
    if (wait_sms(PAYER, "付款67.89元", 0, text, sizeof text) != 0)
        fail_msg("no debit SMS to the payer in %s", F.fakelog);
    assert_non_null(strstr(text, "王*(138****5678)"));
    assert_non_null(strstr(text, rrn));
    assert_null(strstr(text, "王五"));
    /* the provider debited the payer, and nobody else yet */
    assert_int_equal(issuer_balance(PAYER_MASKED), payer - 6789);
    assert_int_equal(issuer_balance(PAYEE_MASKED), payee);
    /* docs/ledger.md: the provider holds A for us, and we owe it to the payee */
    assert_int_equal(ledger_balance(ACC_PROVIDER), settlement + 6789);
    assert_int_equal(ledger_balance(ACC_PAYEES), payees - 6789);
    /* the provider's clearing file (switch-protocol.md section 3) has the debit */
    clearing_day_of(rrn, days, path, date);
    snprintf(line, sizeof line, ",%s,", rrn);
    assert_true(e2e_file_contains(path, line));
    assert_true(e2e_file_contains(path, ",debit," PAYER_MASKED ",6789,156,00,"));
    assert_true(e2e_file_contains(path, "," PAYEE_MASKED "," PAYER "\n"));
    /* [0055], claim 5: matched and credited to the payee's card at the provider */
    snprintf(args, sizeof args, "recon run --date %s", date);
    if (cli(args, &out) != 0)
        fail_msg("recon run:\n%s", px_buf_str(&out));
    assert_non_null(strstr(px_buf_str(&out), "1 lines, 1 matched, 0 missing on the platform, "
                                             "0 missing at the provider, 0 amount mismatches"));
    assert_non_null(strstr(px_buf_str(&out), "payee credits: 1 sent now, 0 credited before"));
    assert_int_equal(issuer_balance(PAYEE_MASKED), payee + 6789);
    /* the provider paid the payee out of what it owed us: both accounts back where they were */
    assert_int_equal(ledger_balance(ACC_PROVIDER), settlement);
    assert_int_equal(ledger_balance(ACC_PAYEES), payees);
    if (wait_sms(PAYEE, PAYER, 0, text, sizeof text) != 0)
        fail_msg("no credit SMS to the payee in %s", F.fakelog);
    assert_non_null(strstr(text, "付款67.89元"));
    assert_non_null(strstr(text, "尾号0006"));
    assert_non_null(strstr(text, rrn));
    /* a second run changes nothing and says so */
    assert_int_equal(cli(args, &out), 0);
    assert_non_null(strstr(px_buf_str(&out), "0 sent now, 1 credited before"));
    assert_non_null(strstr(px_buf_str(&out), "nothing changed"));
    assert_int_equal(issuer_balance(PAYEE_MASKED), payee + 6789);
    assert_int_equal(issuer_balance(PAYER_MASKED), payer - 6789);
    assert_int_equal(ledger_balance(ACC_PROVIDER), settlement);
    assert_int_equal(ledger_balance(ACC_PAYEES), payees);
    /* one debit SMS and one credit SMS: the refusals before sent none */
    assert_int_equal(sms_count(PAYER, "付款"), 1);
    assert_int_equal(sms_count(PAYEE, "您收到"), 1);
    /* the switch's ledger holds together */
    if (cli("ledger check", &out) != 0 || strstr(px_buf_str(&out), "ledger check OK") == NULL)
        fail_msg("ledger check:\n%s", px_buf_str(&out));
    /* the terminal's batch (the payment a debit, the refusals nothing) agrees with the switch */
    if (pos(&out, "settle") != 0 || strstr(px_buf_str(&out), "balanced") == NULL ||
        strstr(px_buf_str(&out), "not balanced") != NULL)
        fail_msg("pos settle:\n%s", px_buf_str(&out));
    /* a clearing file with a bad line is refused, naming the line */
    fp = fopen(path, "a");
    assert_non_null(fp);
    fprintf(fp, "%s,000000777002,000002,debit," PAYER_MASKED ",12x45,156,00,1,T1,M1,,%s\n", date,
            PAYER);
    fclose(fp);
    assert_int_equal(cli(args, &out), 1);
    assert_non_null(strstr(px_buf_str(&out), "line 3: amount_minor"));
    /* no card number in the clear in the daemon's log */
    assert_false(e2e_file_contains(F.log, PAYER_PAN));
    assert_false(e2e_file_contains(F.log, PAYEE_CARD));
    px_buf_free(&out);
}

/* The switch's side of phonepay.h in this process against the daemon's database: the payee's
 * card for field 103 comes out of payment_begin (then the payment is reversed, as the switch
 * does when the provider never answers); names are not for harvesting (Q2 misses, then Q4). */
static void test_lookup_and_limits_through_phonepay_h(void **state)
{
    px_config *cfg = NULL;
    phonepay *pp = NULL;
    phonepay_lookup_result r;
    phonepay_payment p;
    phonepay_payment_request q = {"T0000001", NULL, PAYEE, PAYER, 12345, PAYER_PAN};
    px_error e = {0};
    assert_int_equal(px_config_load_file(F.ini, &cfg, &e), PX_OK);
    if (phonepay_open(cfg, &pp, &e) != PX_OK)
        fail_msg("phonepay_open: %s", e.msg);
    assert_int_equal(phonepay_lookup(pp, "T0000001", PAYEE, PAYER, 12345, &r, &e), PX_OK);
    assert_string_equal(r.response_code, "00");
    assert_string_equal(r.masked_name, "王*");
    q.reference = r.reference;
    assert_int_equal(phonepay_payment_begin(pp, &q, &p, &e), PX_OK);
    assert_string_equal(p.response_code, "00");
    assert_string_equal(p.payee_card, PAYEE_CARD);
    assert_int_equal(phonepay_payment_reverse(pp, r.reference, &e), PX_OK);
    /* 3 misses (terminal_misses_max), then this terminal gets Q4 even for a payee */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(phonepay_lookup(pp, "T0000009", "13911112222", PAYER, 100, &r, &e), PX_OK);
        assert_string_equal(r.response_code, "Q2");
    }
    assert_int_equal(phonepay_lookup(pp, "T0000009", PAYEE, PAYER, 100, &r, &e), PX_OK);
    assert_string_equal(r.response_code, "Q4");
    phonepay_close(pp);
    px_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_over_rest_with_sms_code),
        cmocka_unit_test(test_card_change),
        cmocka_unit_test(test_terminal_registered_and_signed_on),
        cmocka_unit_test(test_pos_refusals),
        cmocka_unit_test(test_pos_payment_then_recon_credits_payee),
        cmocka_unit_test(test_lookup_and_limits_through_phonepay_h),
    };
    if (access("/usr/sbin/bearerbox", X_OK) != 0 && getenv("POSSUM_SKIP_KANNEL") != NULL) {
        fprintf(stderr, "kannel is not installed and POSSUM_SKIP_KANNEL is set: skipped\n");
        return 77;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
    curl_global_cleanup();
    return rc;
}
