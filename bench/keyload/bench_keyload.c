/*
 * bench_keyload: remote key loading at the scale of a production order (seed 001).
 *
 *   setup    N PIN pads made and personalised (device key, certificate from the CA)
 *   import   the production order's CSV into the MTMS's serial-number table
 *   upload   operator terminals: look the serial up, the PIN pad exports its TK for the
 *            customer's KMS, TK + serial + customer go to the MTMS (HTTPS, mutual TLS)
 *   relay    the MTMS's outbox forwards every TK to the KMS (started only now, so the relay
 *            is measured alone) until the KMS has acknowledged all of them
 *   keyload  every terminal fetches its TMK from the KMS (challenge, proof, TMK under TK,
 *            report) and loads it into its PIN pad
 * The MTMS and the KMS are real possumd nodes (SQLite, synchronous = full; the KMS with its
 * own soft HSM, every key-management operation audited and fsynced). Terminals per second
 * for each stage; the last line is JSON with the slowest stage as terminals_per_s.
 *
 *   bench_keyload [--terminals N] [--threads T]      (default 10000 and 4)
 * possumd is found beside this program (BUILD/src/app/possumd) or in $POSSUM_BINARY_DIR.
 * PIN pads live in /dev/shm when it is there (they are the devices, not what is measured).
 */
#include "device/keyload/keyload.h"
#include "device/pinpad/pinpad.h"
#include "device/pinpad/tk.h"
#include "hsm/hsm.h"
#include "host/kms/kms.h"
#include "host/mtms/mtms.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"
#include "net/net.h"
#include "pki/https.h"
#include "pki/pki.h"
#include "pki/tkenv.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PASSPHRASE "bench keyload passphrase"
#define CUSTOMER "C001"

typedef struct node {
    pid_t pid;
    char ini[PX_PATH_MAX + 16], ports[PX_PATH_MAX + 16], log[PX_PATH_MAX + 16];
} node;

static struct {
    char dir[PX_PATH_MAX];    /* daemons: stores, logs, HSM */
    char devdir[PX_PATH_MAX]; /* PIN pads and the CA */
    char possumd[PX_PATH_MAX];
    char ca_dir[PX_PATH_MAX + 8], ca_crt[PX_PATH_MAX + 16], crl[PX_PATH_MAX + 16];
    char mtms_url[64], kms_url[64], dl_url[64];
    int kms_port, dl_port;
    size_t n, threads;
    pinpad **pp;
    char *kms_recv_pem, *crl_pem;
    node mtms, kms;
    size_t next; /* work queue for the threads */
    size_t failed;
    char first_error[PX_ERRMSG_MAX];
    pthread_mutex_t mu;
} B;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "bench_keyload: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (B.mtms.pid > 0)
        kill(B.mtms.pid, SIGKILL);
    if (B.kms.pid > 0)
        kill(B.kms.pid, SIGKILL);
    exit(1);
}

/* Ctrl-C or a kill: take the daemons down too. */
static void on_signal(int sig)
{
    if (B.mtms.pid > 0)
        kill(B.mtms.pid, SIGKILL);
    if (B.kms.pid > 0)
        kill(B.kms.pid, SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double secs_since(int64_t t0)
{
    return (double)(px_mono_ns() - t0) / 1e9;
}

static void put_file(const char *path, const char *text)
{
    px_error e = {0};
    if (pki_write_file(path, text, strlen(text), 0600, &e) != PX_OK)
        die("%s", e.msg);
}

/* A free TCP port on 127.0.0.1 (bound and released). */
static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int port = -1, fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int node_port(const node *n, const char *name)
{
    char line[256];
    size_t nl = strlen(name);
    int port = -1;
    FILE *f = fopen(n->ports, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        char *colon = strrchr(line, ':');
        int64_t p;
        if (strncmp(line, name, nl) != 0 || line[nl] != '=' || colon == NULL)
            continue;
        colon[strcspn(colon, "\r\n")] = 0;
        if (px_parse_i64(colon + 1, 1, 65535, &p) == 0)
            port = (int)p;
    }
    fclose(f);
    return port;
}

static void node_start(node *n, const char *name, const char *ini, const char *want)
{
    snprintf(n->ini, sizeof n->ini, "%s/%s.ini", B.dir, name);
    snprintf(n->ports, sizeof n->ports, "%s/%s.ports", B.dir, name);
    snprintf(n->log, sizeof n->log, "%s/%s.log", B.dir, name);
    put_file(n->ini, ini);
    unlink(n->ports);
    n->pid = fork();
    if (n->pid < 0)
        die("fork: %s", strerror(errno));
    if (n->pid == 0) {
        if (freopen(n->log, "a", stderr) == NULL)
            _exit(127);
        execl(B.possumd, "possumd", "-c", n->ini, "--ports-file", n->ports, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 600; i++) {
        int status;
        if (node_port(n, want) > 0)
            return;
        if (waitpid(n->pid, &status, WNOHANG) == n->pid) {
            n->pid = 0;
            die("%s did not start: see %s", name, n->log);
        }
        sleep_ms(50);
    }
    die("%s did not start in 30 s: see %s", name, n->log);
}

static void node_stop(node *n)
{
    int status;
    if (n->pid <= 0)
        return;
    kill(n->pid, SIGTERM);
    waitpid(n->pid, &status, 0);
    n->pid = 0;
}

/* ---- setup ---- */

static void find_possumd(const char *argv0)
{
    const char *bin = getenv("POSSUM_BINARY_DIR");
    char self[PX_PATH_MAX];
    ssize_t n;
    if (bin != NULL) {
        snprintf(B.possumd, sizeof B.possumd, "%s/src/app/possumd", bin);
        return;
    }
    n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        snprintf(self, sizeof self, "%s", argv0);
    else
        self[n] = 0;
    /* BUILD/bench/keyload/bench_keyload -> BUILD/src/app/possumd */
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr(self, '/');
        if (slash == NULL)
            die("cannot find possumd (set POSSUM_BINARY_DIR)");
        *slash = 0;
    }
    snprintf(B.possumd, sizeof B.possumd, "%s/src/app/possumd", self);
    if (access(B.possumd, X_OK) != 0)
        die("%s: not found (set POSSUM_BINARY_DIR)", B.possumd);
}

static void make_dirs(void)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(B.dir, sizeof B.dir, "%s/possum-bench-keyload.XXXXXX", tmp);
    if (mkdtemp(B.dir) == NULL)
        die("mkdtemp: %s", strerror(errno));
    snprintf(B.devdir, sizeof B.devdir, "%s/possum-bench-devices.XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : tmp);
    if (mkdtemp(B.devdir) == NULL)
        die("mkdtemp: %s", strerror(errno));
}

static void issue_tls(pki_ca *ca, pki_role role, const char *name, const char *prefix)
{
    pki_issue_req r;
    char *cert = NULL, *key = NULL, p[PX_PATH_MAX + 16];
    px_error e = {0};
    memset(&r, 0, sizeof r);
    r.role = role;
    r.purpose = PKI_PURPOSE_TLS;
    r.name = name;
    r.days = 30;
    if (role != PKI_ROLE_OPERATOR)
        r.san[0] = "127.0.0.1";
    if (pki_ca_issue(ca, &r, &cert, &key, NULL, &e) != PX_OK)
        die("issue %s: %s", name, e.msg);
    snprintf(p, sizeof p, "%s.crt", prefix);
    put_file(p, cert);
    snprintf(p, sizeof p, "%s.key", prefix);
    put_file(p, key);
    free(cert);
    free(key);
}

/* The KMS's LMK and receiving key (possum hsm init + possum kms init), its certificate. */
static void kms_keys(pki_ca *ca)
{
    hsm_config hc;
    store_config sc;
    store *st = NULL;
    hsm *h = NULL;
    uint8_t pub[HSM_EC_PUB_LEN];
    char check[PX_HSM_KCV_HEX_MAX], p[PX_PATH_MAX + 16];
    pki_issue_req r;
    px_error e = {0};
    hsm_config_default(&hc);
    hc.lmk_scrypt_log2n = 10;
    snprintf(hc.lmk_file, sizeof hc.lmk_file, "%s/lmk.bin", B.dir);
    snprintf(hc.audit_file, sizeof hc.audit_file, "%s/hsm-audit.log", B.dir);
    store_config_default(&sc);
    snprintf(sc.path, sizeof sc.path, "%s/kms.db", B.dir);
    if (hsm_lmk_init(&hc, check, &e) != PX_OK || store_open(&sc, &st, &e) != PX_OK ||
        hsm_open(&hc, st, &h, &e) != PX_OK || kms_recv_key_create(h, "kms.recv", pub, &e) != PX_OK)
        die("KMS keys: %s", e.msg);
    hsm_close(h);
    store_close(st);
    memset(&r, 0, sizeof r);
    r.role = PKI_ROLE_KMS;
    r.purpose = PKI_PURPOSE_KEY_AGREEMENT;
    r.name = CUSTOMER;
    r.days = 30;
    r.pub_point = pub;
    if (pki_ca_issue(ca, &r, &B.kms_recv_pem, NULL, NULL, &e) != PX_OK)
        die("KMS certificate: %s", e.msg);
    snprintf(p, sizeof p, "%s/recv.crt", B.dir);
    put_file(p, B.kms_recv_pem);
}

static pinpad *make_pinpad(pki_ca *ca, const char *ca_pem, size_t i)
{
    char d[PX_PATH_MAX + 32], keys[PX_PATH_MAX + 64], secret[PX_PATH_MAX + 64], serial[24],
        *csr = NULL, *cert = NULL;
    pinpad *p = NULL;
    pki_issue_req r;
    px_error e = {0};
    snprintf(serial, sizeof serial, "BK%08zu", i);
    snprintf(d, sizeof d, "%s/%s", B.devdir, serial);
    mkdir(d, 0700);
    snprintf(keys, sizeof keys, "%s/pinpad.keys", d);
    snprintf(secret, sizeof secret, "%s/device.secret", d);
    if (pinpad_secret_create(secret, &e) != PX_OK ||
        pinpad_create(keys, secret, serial, &p, &e) != PX_OK ||
        tk_device_key_create(p, &csr, &e) != PX_OK)
        die("PIN pad %s: %s", serial, e.msg);
    memset(&r, 0, sizeof r);
    r.role = PKI_ROLE_PINPAD;
    r.purpose = PKI_PURPOSE_DEVICE;
    r.name = serial;
    r.days = 365;
    r.csr_pem = csr;
    if (pki_ca_issue(ca, &r, &cert, NULL, NULL, &e) != PX_OK ||
        tk_device_install(p, cert, ca_pem, NULL, &e) != PX_OK)
        die("PIN pad %s: %s", serial, e.msg);
    free(csr);
    free(cert);
    return p;
}

/* ---- the stages ---- */

static void fail_one(const char *serial, const px_error *e)
{
    pthread_mutex_lock(&B.mu);
    if (B.failed++ == 0)
        snprintf(B.first_error, sizeof B.first_error, "%s: %s", serial, px_error_text(e));
    pthread_mutex_unlock(&B.mu);
}

static size_t take(void)
{
    size_t i;
    pthread_mutex_lock(&B.mu);
    i = B.next++;
    pthread_mutex_unlock(&B.mu);
    return i;
}

static void client_tls(net_tls_config *t, int operator_cert)
{
    memset(t, 0, sizeof *t);
    snprintf(t->ca, sizeof t->ca, "%s", B.ca_crt);
    if (operator_cert) {
        snprintf(t->cert, sizeof t->cert, "%s/operator.crt", B.dir);
        snprintf(t->key, sizeof t->key, "%s/operator.key", B.dir);
    }
}

/* An operator terminal: look up, export, upload; terminals taken from the shared queue. */
static void *upload_worker(void *arg)
{
    net_tls_config t;
    pki_https *h = NULL;
    px_error e = {0};
    (void)arg;
    client_tls(&t, 1);
    if (pki_https_open(B.mtms_url, &t, 30000, &h, &e) != PX_OK)
        die("%s", e.msg);
    for (size_t i; (i = take()) < B.n;) {
        pinpad *p = B.pp[i];
        uint8_t env[PX_TKENV_MAX];
        char path[96], b64[PX_TKENV_B64_MAX];
        size_t n = 0;
        long status = 0;
        json_t *reply = NULL;
        int rc;
        snprintf(path, sizeof path, "/v1/mtms/serials/%s", pinpad_serial(p));
        rc = pki_https_call(h, "GET", path, NULL, &status, &reply, &e);
        json_decref(reply);
        reply = NULL;
        if (rc == PX_OK && status != 200)
            rc = px_error_set(&e, PX_ENET, "lookup answered %ld", status);
        if (rc == PX_OK)
            rc = tk_export(p, B.kms_recv_pem, B.crl_pem, env, sizeof env, &n, NULL, NULL, &e);
        if (rc == PX_OK) {
            json_t *body;
            pki_b64_encode(env, n, b64);
            body = json_pack("{s:s, s:s, s:b, s:s}", "serial", pinpad_serial(p), "customer_code",
                             CUSTOMER, "confirmed", 1, "envelope", b64);
            rc = pki_https_call(h, "POST", "/v1/mtms/tks", body, &status, &reply, &e);
            json_decref(body);
            if (rc == PX_OK && status != 202)
                rc = px_error_set(&e, PX_ENET, "upload answered %ld: %s", status,
                                  pki_https_error_message(reply, "?"));
            json_decref(reply);
        }
        if (rc != PX_OK)
            fail_one(pinpad_serial(p), &e);
    }
    pki_https_close(h);
    return NULL;
}

static void *keyload_worker(void *arg)
{
    keyload_config c;
    (void)arg;
    memset(&c, 0, sizeof c);
    snprintf(c.kms_url, sizeof c.kms_url, "%s", B.dl_url);
    client_tls(&c.tls, 0);
    c.timeout_ms = 30000;
    for (size_t i; (i = take()) < B.n;) {
        keyload_result r;
        px_error e = {0};
        if (keyload_run(B.pp[i], &c, &r, &e) != PX_OK)
            fail_one(pinpad_serial(B.pp[i]), &e);
    }
    return NULL;
}

static double run_threads(void *(*fn)(void *))
{
    pthread_t th[64];
    int64_t t0 = px_mono_ns();
    B.next = 0;
    B.failed = 0;
    for (size_t i = 0; i < B.threads; i++)
        pthread_create(&th[i], NULL, fn, NULL);
    for (size_t i = 0; i < B.threads; i++)
        pthread_join(th[i], NULL);
    if (B.failed > 0)
        die("%zu terminals failed; the first: %s", B.failed, B.first_error);
    return secs_since(t0);
}

static int64_t count_status(store *st, const char *status)
{
    store_stmt *q;
    px_error e = {0};
    int64_t n = -1;
    if (store_prepare(st, "SELECT COUNT(*) FROM mtms_serial WHERE status = $1", &q, &e) != PX_OK)
        die("%s", e.msg);
    store_bind_text(q, 1, status);
    if (store_step(q, &e) == STORE_ROW)
        n = store_col_int64(q, 0);
    store_done(q);
    return n;
}

/* Why the MTMS could not deliver (the first serial still waiting that says). */
static const char *last_error(store *st)
{
    static char why[PX_ERRMSG_MAX];
    store_stmt *q;
    px_error e = {0};
    snprintf(why, sizeof why, "(no error recorded)");
    if (store_prepare(st,
                      "SELECT last_error FROM mtms_serial WHERE status <> 'acknowledged' AND "
                      "last_error <> '' LIMIT 1",
                      &q, &e) == PX_OK) {
        if (store_step(q, &e) == STORE_ROW)
            snprintf(why, sizeof why, "%s", store_col_text(q, 0));
        store_done(q);
    }
    return why;
}

static void print_stage(const char *name, double s)
{
    printf("%-8s %6zu terminals in %8.2f s: %8.0f terminals/s\n", name, B.n, s, (double)B.n / s);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    char ini[8192], p[PX_PATH_MAX + 16], *ca_pem = NULL;
    pki_ca *ca = NULL;
    store_config sc;
    store *st = NULL;
    pki_trust *trust = NULL;
    mtms *m = NULL;
    mtms_import_report rep;
    double t_setup, t_import, t_upload, t_relay, t_keyload, slowest;
    int64_t t0;
    px_error e = {0};
    FILE *f;
    B.n = 10000;
    B.threads = 4;
    for (int i = 1; i + 1 < argc; i += 2) {
        int64_t v;
        if (strcmp(argv[i], "--terminals") == 0 && px_parse_i64(argv[i + 1], 1, 1000000, &v) == 0)
            B.n = (size_t)v;
        else if (strcmp(argv[i], "--threads") == 0 && px_parse_i64(argv[i + 1], 1, 64, &v) == 0)
            B.threads = (size_t)v;
        else
            die("usage: bench_keyload [--terminals N] [--threads T]");
    }
    px_log_setup(PX_LOG_ERROR, PX_LOG_TEXT, stderr);
    pthread_mutex_init(&B.mu, NULL);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    setenv(HSM_ENV_PASSPHRASE, PASSPHRASE, 1);
    unsetenv(PKI_ENV_PASSPHRASE);
    if (net_init(&e) != PX_OK)
        die("%s", e.msg);
    find_possumd(argv[0]);
    make_dirs();
    snprintf(B.ca_dir, sizeof B.ca_dir, "%s/ca", B.devdir);
    snprintf(B.ca_crt, sizeof B.ca_crt, "%s/ca.crt", B.ca_dir);
    snprintf(B.crl, sizeof B.crl, "%s/crl.pem", B.ca_dir);
    if (pki_ca_init(B.ca_dir, "bench CA", 30, 30, NULL, &e) != PX_OK ||
        pki_ca_open(B.ca_dir, &ca, &e) != PX_OK ||
        pki_read_file(B.ca_crt, PX_PKI_PEM_MAX, &ca_pem, NULL, &e) != PX_OK)
        die("CA: %s", e.msg);
    snprintf(p, sizeof p, "%s/mtms", B.dir);
    issue_tls(ca, PKI_ROLE_MTMS, "factory", p);
    snprintf(p, sizeof p, "%s/kms", B.dir);
    issue_tls(ca, PKI_ROLE_KMS, CUSTOMER, p);
    snprintf(p, sizeof p, "%s/operator", B.dir);
    issue_tls(ca, PKI_ROLE_OPERATOR, "bench", p);
    kms_keys(ca);

    /* setup: the PIN pads */
    printf("bench_keyload: %zu terminals, %zu client threads; daemons in %s, PIN pads in %s\n", B.n,
           B.threads, B.dir, B.devdir);
    B.pp = calloc(B.n, sizeof *B.pp);
    t0 = px_mono_ns();
    for (size_t i = 0; i < B.n; i++)
        B.pp[i] = make_pinpad(ca, ca_pem, i);
    t_setup = secs_since(t0);
    print_stage("setup", t_setup);
    if (pki_read_file(B.crl, PX_PKI_CRL_MAX, &B.crl_pem, NULL, &e) != PX_OK)
        die("%s", e.msg);

    /* import: the production order into the MTMS's table (what `possum mtms import` does) */
    snprintf(p, sizeof p, "%s/order.csv", B.dir);
    f = fopen(p, "w");
    if (f == NULL)
        die("%s: %s", p, strerror(errno));
    fprintf(f, "serial,customer\n");
    for (size_t i = 0; i < B.n; i++)
        fprintf(f, "%s,%s\n", pinpad_serial(B.pp[i]), CUSTOMER);
    fclose(f);
    store_config_default(&sc);
    snprintf(sc.path, sizeof sc.path, "%s/mtms.db", B.dir);
    B.kms_port = free_port();
    B.dl_port = free_port();
    if (B.dl_port == B.kms_port)
        B.dl_port = free_port();
    snprintf(B.kms_url, sizeof B.kms_url, "https://127.0.0.1:%d", B.kms_port);
    snprintf(B.dl_url, sizeof B.dl_url, "https://127.0.0.1:%d", B.dl_port);
    if (store_open(&sc, &st, &e) != PX_OK || pki_trust_load(B.ca_crt, B.crl, &trust, &e) != PX_OK ||
        mtms_open(st, trust, &m, &e) != PX_OK ||
        mtms_customer_put(m, CUSTOMER, "Bench Bank", B.kms_url, B.kms_recv_pem, "bench", &e) !=
            PX_OK)
        die("MTMS: %s", e.msg);
    t0 = px_mono_ns();
    if (mtms_import_csv(m, "PO-BENCH", p, "bench", &rep, &e) != PX_OK)
        die("import: %s", e.msg);
    t_import = secs_since(t0);
    print_stage("import", t_import);

    /* upload: operator terminals to the MTMS */
    snprintf(
        ini, sizeof ini,
        "[possumd]\nnode = mtms\nlog_level = warn\n\n[store]\nbackend = sqlite\npath = %s/mtms.db\n\n"
        "[http]\nlisten = 127.0.0.1:0\n\n"
        "[mtms]\nenabled = true\nlisten = 127.0.0.1:0\ntls_cert = %s/mtms.crt\ntls_key = %s/mtms.key\n"
        "tls_ca = %s\ntls_crl = %s\ntls_require_client_cert = true\noutbox_interval_ms = 100\n"
        "outbox_backoff_min_ms = 1000\noutbox_backoff_max_ms = 2000\noutbox_batch = 200\n",
        B.dir, B.dir, B.dir, B.ca_crt, B.crl);
    node_start(&B.mtms, "mtms", ini, "mtms");
    snprintf(B.mtms_url, sizeof B.mtms_url, "https://127.0.0.1:%d", node_port(&B.mtms, "mtms"));
    t_upload = run_threads(upload_worker);
    print_stage("upload", t_upload);

    /* relay: the KMS comes up; the MTMS's outbox delivers everything */
    snprintf(
        ini, sizeof ini,
        "[possumd]\nnode = kms\nlog_level = warn\n\n[store]\nbackend = sqlite\npath = %s/kms.db\n\n"
        "[http]\nlisten = 127.0.0.1:0\n\n"
        "[kms]\nenabled = true\ncustomer = %s\nhsm_lmk_file = %s/lmk.bin\nhsm_audit_file = %s/hsm-audit.log\n"
        "listen = 127.0.0.1:%d\ntls_cert = %s/kms.crt\ntls_key = %s/kms.key\ntls_ca = %s\ntls_crl = %s\n"
        "tls_require_client_cert = true\nmtms_cn = mtms:factory\nrecv_cert = %s/recv.crt\n"
        "download_listen = 127.0.0.1:%d\ndownload_tls_cert = %s/kms.crt\ndownload_tls_key = %s/kms.key\n",
        B.dir, CUSTOMER, B.dir, B.dir, B.kms_port, B.dir, B.dir, B.ca_crt, B.crl, B.dir, B.dl_port,
        B.dir, B.dir);
    t0 = px_mono_ns();
    node_start(&B.kms, "kms", ini, "kms.download");
    for (int64_t last = -1, since = px_mono_ns();;) {
        int64_t acked = count_status(st, "acknowledged"), refused = count_status(st, "refused");
        if (refused > 0)
            die("%lld TKs refused by the KMS (possum mtms serials)", (long long)refused);
        if (acked >= (int64_t)B.n)
            break;
        if (acked != last) {
            last = acked;
            since = px_mono_ns();
        } else if (secs_since(since) > 120) {
            die("relay stalled at %lld of %zu acknowledged: %s", (long long)acked, B.n,
                last_error(st));
        }
        sleep_ms(20);
    }
    t_relay = secs_since(t0);
    print_stage("relay", t_relay);

    /* keyload: every terminal fetches its TMK */
    t_keyload = run_threads(keyload_worker);
    print_stage("keyload", t_keyload);
    for (size_t i = 0; i < B.n; i++)
        if (!pinpad_has_key(B.pp[i], PINPAD_TMK))
            die("%s has no TMK", pinpad_serial(B.pp[i]));

    slowest = t_import;
    if (t_upload > slowest)
        slowest = t_upload;
    if (t_relay > slowest)
        slowest = t_relay;
    if (t_keyload > slowest)
        slowest = t_keyload;
    node_stop(&B.kms);
    node_stop(&B.mtms);
    printf(
        "{\"bench\":\"keyload\",\"terminals\":%zu,\"terminals_per_s\":%.0f,\"import_per_s\":%.0f,"
        "\"upload_per_s\":%.0f,\"relay_per_s\":%.0f,\"keyload_per_s\":%.0f,\"setup_per_s\":%.0f,"
        "\"threads\":%zu}\n",
        B.n, (double)B.n / slowest, (double)B.n / t_import, (double)B.n / t_upload,
        (double)B.n / t_relay, (double)B.n / t_keyload, (double)B.n / t_setup, B.threads);
    for (size_t i = 0; i < B.n; i++)
        pinpad_close(B.pp[i]);
    free(B.pp);
    mtms_close(m);
    pki_trust_free(trust);
    store_close(st);
    pki_ca_close(ca);
    free(ca_pem);
    free(B.kms_recv_pem);
    free(B.crl_pem);
    if (getenv("POSSUM_BENCH_KEEP") == NULL) {
        char cmd[2 * PX_PATH_MAX + 32];
        snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", B.dir, B.devdir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_keyload: cannot remove %s\n", B.dir);
    }
    return 0;
}
