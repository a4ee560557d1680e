/* swfix.c: fixtures for the switch's end-to-end tests (swfix.h). */
#include "swfix.h"

#include "crypto/crypto.h"
#include "harness.h"
#include "hsm/hsm.h"
#include "lib/hex.h"
#include "lib/str.h"
#include "store/store.h"
#include "tmpdir.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int swfix_free_port(void)
{
    return e2e_free_port();
}

/* The demo zone PIN key (src/host/issuer/seed.c; public components, tests only). */
static int form_demo_zpk(swfix *f, const store_config *sc)
{
    static const hsm_key_attrs zpk = {"P0", 'T', 'B', 'E', 16};
    static const hsm_component comp[3] = {{"F891803DA162AB9D080EA162CD042A6E", "D90CF3"},
                                          {"7FB67F3BA15D4C678643F1B0B5CE8579", "187918"},
                                          {"E9495723DCE364C185F15E9BB0F76E98", "E5F0FA"}};
    hsm_config hc;
    hsm *h = NULL;
    store *st = NULL;
    hsm_keyblock kb;
    px_error e = {0};
    int rc = store_open(sc, &st, &e);
    hsm_config_default(&hc);
    px_strlcpy(hc.lmk_file, f->lmk, sizeof hc.lmk_file);
    px_strlcpy(hc.audit_file, f->audit, sizeof hc.audit_file);
    if (rc == PX_OK)
        rc = hsm_open(&hc, st, &h, &e);
    if (rc == PX_OK) {
        rc = hsm_key_form(h, &zpk, comp, 3, "demo.zpk", &kb, &e);
        if (rc == PX_EEXIST)
            rc = PX_OK;
    }
    if (rc != PX_OK)
        fprintf(stderr, "swfix: demo ZPK: %s\n", px_error_text(&e));
    hsm_close(h);
    store_close(st);
    return rc;
}

int swfix_init(swfix *f, const char *conninfo)
{
    hsm_config hc;
    store_config sc;
    char check[PX_HSM_KCV_HEX_MAX];
    px_error e = {0};
    FILE *fp;
    memset(f, 0, sizeof *f);
    if (testlib_mkdtemp("switch", f->dir, sizeof f->dir) != 0)
        return -1;
    setenv(HSM_ENV_PASSPHRASE, SWFIX_PASSPHRASE, 1);
    snprintf(f->lmk, sizeof f->lmk, "%s/lmk.bin", f->dir);
    snprintf(f->audit, sizeof f->audit, "%s/hsm-audit.log", f->dir);
    hsm_config_default(&hc);
    px_strlcpy(hc.lmk_file, f->lmk, sizeof hc.lmk_file);
    px_strlcpy(hc.audit_file, f->audit, sizeof hc.audit_file);
    hc.lmk_scrypt_log2n = 12; /* fast: a test LMK */
    if (hsm_lmk_init(&hc, check, &e) != PX_OK) {
        fprintf(stderr, "swfix: LMK: %s\n", px_error_text(&e));
        return -1;
    }
    store_config_default(&sc);
    sc.synchronous_full = 1;
    if (conninfo != NULL) {
        sc.backend = STORE_POSTGRES;
        px_strlcpy(sc.conninfo, conninfo, sizeof sc.conninfo);
        snprintf(f->store_ini, sizeof f->store_ini, "[store]\nbackend = postgres\nconninfo = %s\n",
                 conninfo);
    } else {
        snprintf(sc.path, sizeof sc.path, "%s/switch.db", f->dir);
        snprintf(f->store_ini, sizeof f->store_ini, "[store]\nbackend = sqlite\npath = %s\n",
                 sc.path);
    }
    if (form_demo_zpk(f, &sc) != PX_OK)
        return -1;
    snprintf(f->cli_ini, sizeof f->cli_ini, "%s/cli.ini", f->dir);
    fp = fopen(f->cli_ini, "w");
    if (fp == NULL)
        return -1;
    fprintf(fp, "%s\n[switch]\nhsm_lmk_file = %s\nhsm_audit_file = %s\n", f->store_ini, f->lmk,
            f->audit);
    return fclose(fp) == 0 ? 0 : -1;
}

void swfix_cleanup(swfix *f)
{
    if (f->dir[0] && getenv("POSSUM_E2E_KEEP") == NULL)
        testlib_rmtree(f->dir);
}

void swfix_switch_section(const swfix *f, char *out, size_t outsz, int issuer_port,
                          const char *extra)
{
    char prov[128] = "";
    if (issuer_port > 0)
        snprintf(prov, sizeof prov, "provider_connect = 127.0.0.1:%d\n", issuer_port);
    snprintf(out, outsz,
             "[switch]\nenabled = true\nlisten = 127.0.0.1:0\nmax_frame = 4096\n"
             "idle_timeout_ms = 60000\nhsm_lmk_file = %s\nhsm_audit_file = %s\n%s%s\n",
             f->lmk, f->audit, prov, extra ? extra : "");
}

void swfix_issuer_section(const swfix *f, char *out, size_t outsz, int port, const char *extra)
{
    snprintf(out, outsz,
             "[issuer]\nenabled = true\nlisten = 127.0.0.1:%d\nseed_demo = true\n"
             "hsm_lmk_file = %s\nhsm_audit_file = %s\n%s\n",
             port, f->lmk, f->audit, extra ? extra : "");
}

static int read_ports(swfix_node *n)
{
    char line[256];
    FILE *fp = fopen(n->ports, "r");
    if (fp == NULL)
        return 0;
    n->switch_port = n->http_port = n->issuer_port = 0;
    while (fgets(line, sizeof line, fp) != NULL) {
        char *colon = strrchr(line, ':');
        int64_t port;
        if (colon == NULL)
            continue;
        colon[strcspn(colon, "\r\n")] = 0;
        if (px_parse_i64(colon + 1, 1, 65535, &port) != 0)
            continue;
        if (strncmp(line, "switch=", 7) == 0)
            n->switch_port = (int)port;
        else if (strncmp(line, "http=", 5) == 0)
            n->http_port = (int)port;
        else if (strncmp(line, "issuer=", 7) == 0)
            n->issuer_port = (int)port;
    }
    fclose(fp);
    return 1;
}

void swfix_dump_log(const swfix_node *n)
{
    char cmd[PX_PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "tail -n 60 '%s' >&2", n->log);
    if (system(cmd) != 0)
        fprintf(stderr, "(no log)\n");
}

static int wants(const swfix_node *n, const char *ini_text, const char *svc)
{
    char sec[40];
    (void)n;
    snprintf(sec, sizeof sec, "[%s]", svc);
    return strstr(ini_text, sec) != NULL;
}

static int launch(swfix_node *n, int want_switch, int want_issuer)
{
    char exe[PX_PATH_MAX];
    e2e_binary("src/app/possumd", exe, sizeof exe);
    remove(n->ports);
    n->pid = fork();
    if (n->pid < 0)
        return -1;
    if (n->pid == 0) {
        if (freopen(n->log, "a", stderr) == NULL)
            _exit(127);
        execl(exe, "possumd", "-c", n->ini, "--ports-file", n->ports, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 600; i++) { /* up to 30 s: sanitizer builds start slowly */
        int status;
        if (read_ports(n) && n->http_port > 0 && (!want_switch || n->switch_port > 0) &&
            (!want_issuer || n->issuer_port > 0))
            return 0;
        if (waitpid(n->pid, &status, WNOHANG) == n->pid) {
            n->pid = 0;
            swfix_dump_log(n);
            return -1;
        }
        sleep_ms(50);
    }
    swfix_dump_log(n);
    swfix_stop(n, SIGKILL, 1000);
    return -1;
}

int swfix_start(swfix *f, swfix_node *n, const char *name, const char *own_store,
                const char *sections)
{
    FILE *fp;
    memset(n, 0, sizeof *n);
    px_strlcpy(n->name, name, sizeof n->name);
    snprintf(n->ini, sizeof n->ini, "%s/%s.ini", f->dir, name);
    snprintf(n->log, sizeof n->log, "%s/%s.log", f->dir, name);
    snprintf(n->ports, sizeof n->ports, "%s/%s.ports", f->dir, name);
    fp = fopen(n->ini, "w");
    if (fp == NULL)
        return -1;
    fprintf(fp,
            "[possumd]\nnode = %s\nlog_level = info\ndrain_timeout_ms = 5000\n\n%s\n"
            "[http]\nlisten = 127.0.0.1:0\n\n%s\n",
            name, own_store ? own_store : f->store_ini, sections);
    if (fclose(fp) != 0)
        return -1;
    return launch(n, wants(n, sections, "switch"), wants(n, sections, "issuer"));
}

int swfix_restart(swfix_node *n)
{
    px_buf b;
    char chunk[4096];
    size_t got;
    int sw, is;
    FILE *fp = fopen(n->ini, "r");
    if (fp == NULL)
        return -1;
    px_buf_init(&b, 1 << 20);
    while ((got = fread(chunk, 1, sizeof chunk, fp)) > 0)
        (void)px_buf_append(&b, chunk, got);
    fclose(fp);
    sw = strstr(px_buf_str(&b), "[switch]") != NULL;
    is = strstr(px_buf_str(&b), "[issuer]") != NULL;
    px_buf_free(&b);
    return launch(n, sw, is);
}

int swfix_stop(swfix_node *n, int sig, int timeout_ms)
{
    return e2e_child_stop(&n->pid, sig, timeout_ms);
}

int swfix_log_contains(const swfix_node *n, const char *needle)
{
    return e2e_file_contains(n->log, needle);
}

int swfix_cli(swfix *f, px_buf *out, const char *fmt, ...)
{
    char exe[PX_PATH_MAX], args[2048], cmd[4096];
    px_buf local;
    va_list ap;
    int rc;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    e2e_binary("src/app/possum", exe, sizeof exe);
    snprintf(cmd, sizeof cmd, "%s %s --config %s 2>&1", exe, args, f->cli_ini);
    px_buf_init(&local, 1 << 22);
    rc = e2e_run(cmd, out ? out : &local);
    if (rc != 0 && out == NULL)
        fprintf(stderr, "%s\n-> %d: %s\n", cmd, rc, px_buf_str(&local));
    px_buf_free(&local);
    return rc;
}

static void kcv_of(const char *hex, char out[16])
{
    uint8_t k[16], cv[8];
    size_t n = 0, cn = 0;
    out[0] = 0;
    if (px_hex_decode(hex, k, sizeof k, &n) == PX_OK &&
        crypto_kcv(CRYPTO_TDES, k, n, cv, sizeof cv, &cn, NULL) == PX_OK)
        px_hex_encode(cv, cn, out);
}

int swfix_add_terminal(swfix *f, const char *tid, const char *mid, const char *name)
{
    char k1[16], k2[16];
    kcv_of(SWFIX_TMK_C1, k1);
    kcv_of(SWFIX_TMK_C2, k2);
    return swfix_cli(f, NULL,
                     "terminal add --tid %s --mid %s --name '%s' --tmk-components %s:%s,%s:%s", tid,
                     mid, name, SWFIX_TMK_C1, k1, SWFIX_TMK_C2, k2) == 0
               ? 0
               : -1;
}

long long swfix_metric(const swfix_node *n, const char *series)
{
    px_buf body;
    long status = 0;
    const char *p;
    char needle[512];
    long long v = 0;
    px_buf_init(&body, 1 << 22);
    if (e2e_http(n->http_port, "GET", "/metrics", NULL, &status, &body) == 0 && status == 200) {
        snprintf(needle, sizeof needle, "\n%s ", series);
        p = strstr(px_buf_str(&body), needle);
        if (p != NULL)
            v = strtoll(p + strlen(needle), NULL, 10);
    }
    px_buf_free(&body);
    return v;
}
