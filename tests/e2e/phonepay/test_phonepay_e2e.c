/*
 * End to end, mobile-number payment (seed 002): possumd runs phonepay and the issuer
 * simulator (the provider); SMS go through a real Kannel (scripts/kannel-test.sh: bearerbox,
 * smsbox, kannel-extras' fakesmsc as the operator's SMSC). A payee registers over the REST
 * API with the code read from fakesmsc, changes the card the same way; the switch's side
 * of phonepay.h (lookup, payment, provider answer) runs in this process against the
 * daemon's database, the payer's SMS leaves through the daemon's outbox, and
 * `possum recon run` matches the clearing file, credits the payee at the provider and the
 * payee's SMS carries the payer's number. A second recon run changes nothing.
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
#define PAYEE_CARD "6217000000000006"  /* 王五, CCB demo: the issuer can credit it */
#define PAYEE_CARD2 "6222021234567890128" /* 孙八, ICBC demo */
#define PAYER_PAN "6222020000000007"   /* 张三, ICBC demo */

typedef struct fixture {
    char dir[256], ini[512], log[512], ports[512], kdir[512], fakelog[512];
    char sms_url[256], sms_password[64];
    pid_t pid;
    int api_port, http_port, issuer_port;
    int kannel_up;
} fixture;

static fixture F;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &al) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
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
             src ? src : ".", F.kdir, free_port(), free_port(), free_port(), free_port());
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
    fprintf(fp, "clearing_dir = %s/clearing\n\n", d);
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
    }
    fclose(fp);
    return F.api_port > 0 && F.http_port > 0;
}

static void dump_log(void)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "tail -n 60 '%s' >&2", F.log);
    if (system(cmd) != 0)
        fprintf(stderr, "(no log)\n");
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
        if (read_ports())
            return 0;
        if (waitpid(F.pid, &status, WNOHANG) == F.pid) {
            F.pid = 0;
            dump_log();
            return -1;
        }
        sleep_ms(50);
    }
    dump_log();
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
    F.issuer_port = free_port();
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
            c = 0x10000 + ((c - 0xD800) << 10) + (((uint32_t)raw[i + 2] << 8 | raw[i + 3]) - 0xDC00);
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

/* The newest message fakesmsc received for `to` whose text contains needle (waits up to
 * 15 s); skip: how many such messages to pass over (0 = the first). 0 or -1. */
static int wait_sms(const char *to, const char *needle, int skip, char *text, size_t textsz)
{
    for (int tries = 0; tries < 150; tries++) {
        char line[2048];
        int seen = 0;
        FILE *fp = fopen(F.fakelog, "r");
        while (fp != NULL && fgets(line, sizeof line, fp) != NULL) {
            char from[32], dst[32], type[16], data[1536];
            const char *m = strstr(line, "Got message ");
            const char *lt = m ? strchr(m, '<') : NULL;
            if (lt == NULL || sscanf(lt + 1, "%31s %31s %15s %1535[^>]", from, dst, type, data) != 4)
                continue;
            if (strcmp(dst, to) != 0 || strcmp(type, "ucs-2") != 0)
                continue;
            ucs2_to_utf8(data, text, textsz);
            if (strstr(text, needle) != NULL && seen++ == skip) {
                fclose(fp);
                return 0;
            }
        }
        if (fp != NULL)
            fclose(fp);
        sleep_ms(100);
    }
    text[0] = 0;
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
    snprintf(cmd, sizeof cmd, "'%s' %s -c '%s' 2>&1", exe, args, F.ini);
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
    st = api("POST", "/v1/payees", "{\"name\":\"李四\",\"mobile\":\"12345678901\",\"card\":\""
             PAYEE_CARD "\"}", NULL, &j);
    assert_int_equal(st, 400);
    assert_string_equal(jstr(json_object_get(j, "error"), "message"),
                        "mobile: is not a mainland-China mobile number");
    json_decref(j);
    assert_int_equal(api("POST", "/v1/payees", "{\"name\":\"王五\",\"mobile\":\"" PAYEE
                         "\",\"card\":\"" PAYEE_CARD "\"}", NULL, NULL), 409);
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
    assert_int_equal(api("PUT", "/v1/payees/" PAYEE "/card", "{\"card\":\"" PAYEE_CARD "\"}",
                         NULL, NULL), 202);
    sms_code(PAYEE, 2, code);
    snprintf(body, sizeof body, "{\"code\":\"%s\"}", code);
    assert_int_equal(api("POST", "/v1/payees/" PAYEE "/confirm", body, NULL, NULL), 200);
}

/* The switch's side of phonepay.h ([0047]-[0054]) against the daemon's database: the daemon
 * is the one that delivers the payer's SMS. Then recon credits the payee ([0055]). */
static void test_payment_then_recon_credits_payee(void **state)
{
    px_config *cfg = NULL;
    phonepay *pp = NULL;
    phonepay_lookup_result r;
    phonepay_payment p;
    phonepay_payment_request q = {"T0000001", NULL, PAYEE, PAYER, 12345, PAYER_PAN};
    px_error e = {0};
    px_buf out;
    char text[1024], date[11], ymd[9], path[600], args[256];
    FILE *fp;
    px_buf_init(&out, 1 << 20);
    assert_int_equal(cli("phonepay bin add 622202 ICBC", &out), 0);
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
    assert_int_equal(phonepay_payment_result(pp, r.reference, "000000777001", "000001", "00", &e),
                     PX_OK);
    /* the payer is told by SMS ([0054]) */
    if (wait_sms(PAYER, "付款123.45元", 0, text, sizeof text) != 0)
        fail_msg("no debit SMS to the payer");
    assert_non_null(strstr(text, "王*"));
    /* names are not for harvesting: 3 misses, then this terminal gets Q4 even for a payee */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(phonepay_lookup(pp, "T0000009", "13911112222", PAYER, 100, &r, &e), PX_OK);
        assert_string_equal(r.response_code, "Q2");
    }
    assert_int_equal(phonepay_lookup(pp, "T0000009", PAYEE, PAYER, 100, &r, &e), PX_OK);
    assert_string_equal(r.response_code, "Q4");
    phonepay_close(pp);
    px_config_free(cfg);
    /* the provider's clearing file of the day, with the debit */
    px_time_format_utc(px_now_ms(), "%Y-%m-%d", date, sizeof date);
    px_time_format_utc(px_now_ms(), "%Y%m%d", ymd, sizeof ymd);
    snprintf(path, sizeof path, "%s/clearing", F.dir);
    mkdir(path, 0750);
    snprintf(path, sizeof path, "%s/clearing/clearing-%s.csv", F.dir, ymd);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, "date,rrn,stan,type,pan_masked,amount_minor,currency,response,acquirer,terminal,"
                "merchant,payee_card_masked,payer_mobile\n"
                "%s,000000777001,000001,debit,622202******0007,12345,156,00,99900001,T0000001,"
                "M00000000000001,621700******0006,%s\n", date, PAYER);
    fclose(fp);
    snprintf(args, sizeof args, "recon run --date %s", date);
    if (cli(args, &out) != 0)
        fail_msg("recon run:\n%s", px_buf_str(&out));
    assert_non_null(strstr(px_buf_str(&out), "1 lines, 1 matched"));
    assert_non_null(strstr(px_buf_str(&out), "1 sent now"));
    /* the payee is told, with the payer's number ([0055]) */
    if (wait_sms(PAYEE, PAYER, 0, text, sizeof text) != 0)
        fail_msg("no credit SMS to the payee");
    assert_non_null(strstr(text, "123.45"));
    /* a second run changes nothing and says so */
    assert_int_equal(cli(args, &out), 0);
    assert_non_null(strstr(px_buf_str(&out), "0 sent now, 1 credited before"));
    assert_non_null(strstr(px_buf_str(&out), "nothing changed"));
    /* a clearing file with a bad line is refused, naming the line */
    fp = fopen(path, "a");
    fprintf(fp, "%s,000000777002,000002,debit,622202******0007,12x45,156,00,1,T1,M1,,%s\n", date,
            PAYER);
    fclose(fp);
    assert_int_equal(cli(args, &out), 1);
    assert_non_null(strstr(px_buf_str(&out), "line 3: amount_minor"));
    px_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_over_rest_with_sms_code),
        cmocka_unit_test(test_card_change),
        cmocka_unit_test(test_payment_then_recon_credits_payee),
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
