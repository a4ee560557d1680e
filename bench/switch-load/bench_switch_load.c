/*
 * bench_switch_load: N simulated terminals against possumd (the switch) and the issuer
 * simulator (a second possumd), all on this machine: each terminal signs on, then sends
 * purchases with a PIN and a MAC, one at a time, for --seconds after a warm-up. Prints the
 * approved transactions per second, p50/p99 latency (request sent to answer received and
 * its MAC checked) and errors (anything but an approval: refusals, timeouts, bad MACs).
 * Last line:
 *   {"bench":"switch-load","store":"sqlite|postgres","approved_per_s":N,"p50_ms":N,
 *    "p99_ms":N,"errors":N}
 * The switch's ledger postings are durable before each approval is sent ([store]
 * synchronous = full; PostgreSQL with fsync and synchronous_commit on). The issuer
 * simulator stands in for the provider (a remote system in production) and is not what is
 * measured: its store is in memory (--issuer-store file: a SQLite file, synchronous =
 * normal). docs/switch.md ("Performance") has the figures and how to read them.
 *
 *   bench_switch_load [--terminals N] [--seconds S] [--warmup S] [--store sqlite|postgres]
 *                     [--issuer-store memory|file] [--writers N] [--group-max N] [--keep]
 */
#include "host/switch/switch.h"
#include "lib/hex.h"
#include "lib/str.h"
#include "lib/time.h"
#include "net/net.h"
#include "pgtemp.h"
#include "swfix.h"
#include "termsim.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#define MAX_TERMINALS 2000
#define MAX_SAMPLES 4000000
#define RESPONSE_TIMEOUT_MS 10000

typedef struct conn {
    termsim t;
    int fd;
    uint8_t in[PX_ISO_MSG_MAX + 2];
    size_t inlen;
    int64_t sent_ns;
    int waiting;
} conn;

static conn *g_conns;
static int g_nconns;
static int64_t *g_lat_us;
static size_t g_nlat;
static long g_approved, g_errors, g_timeouts;
static int g_measuring;

static void die(const char *what, const px_error *e)
{
    fprintf(stderr, "bench_switch_load: %s%s%s\n", what, e ? ": " : "", e ? px_error_text(e) : "");
    exit(1);
}

static int connect_nb(int port)
{
    struct sockaddr_in a;
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static int send_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EAGAIN)
            continue; /* a few hundred bytes: the socket buffer takes them */
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Send the next purchase of terminal c. */
static void send_purchase(conn *c)
{
    iso8583_msg m;
    uint8_t out[PX_ISO_MSG_MAX + 2];
    size_t n = 0;
    char stan[7];
    px_error e = {0};
    termsim_next_stan(&c->t, stan);
    termsim_begin(&c->t, &m, "0200", stan, "22", "000");
    if (termsim_card(&c->t, &m, "000000", SWFIX_CARD_OK, 1, SWFIX_CARD_OK_PIN, &e) != PX_OK ||
        termsim_pack(&c->t, &m, 1, out, sizeof out, &n, &e) != PX_OK)
        die("build purchase", &e);
    c->sent_ns = px_mono_ns();
    c->waiting = 1;
    if (send_all(c->fd, out, n) != 0)
        die("send", NULL);
}

/* One whole frame in c->in: check it, count it, send the next. */
static void on_answer(conn *c, const uint8_t *frame, size_t n)
{
    iso8583_msg rsp;
    px_error e = {0};
    int64_t lat_us = (px_mono_ns() - c->sent_ns) / 1000;
    int ok = termsim_unpack(&c->t, frame, n, &rsp, &e) == PX_OK &&
             strcmp(termsim_rc(&rsp), "00") == 0;
    c->waiting = 0;
    if (g_measuring) {
        if (ok)
            g_approved++;
        else
            g_errors++;
        if (g_nlat < MAX_SAMPLES)
            g_lat_us[g_nlat++] = lat_us;
    }
    send_purchase(c);
}

static void on_readable(conn *c)
{
    for (;;) {
        ssize_t r = read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen);
        if (r < 0 && errno == EAGAIN)
            break;
        if (r <= 0)
            die("the switch closed a connection", NULL);
        c->inlen += (size_t)r;
        while (c->inlen >= 2) {
            size_t flen = (size_t)c->in[0] << 8 | c->in[1];
            if (c->inlen < 2 + flen)
                break;
            on_answer(c, c->in + 2, flen);
            memmove(c->in, c->in + 2 + flen, c->inlen - 2 - flen);
            c->inlen -= 2 + flen;
        }
    }
}

static int arg_int(const char *s)
{
    int64_t v = -1;
    return px_parse_i64(s, 0, 1000000, &v) == PX_OK ? (int)v : -1;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Register the terminals in the switch's store (in-process: the HSM forms each TMK). */
static void register_terminals(swfix *f, const char *conninfo, int n)
{
    store_config sc;
    hsm_config hc;
    store *st = NULL;
    hsm *h = NULL;
    px_error e = {0};
    char k1[16], k2[16], kcv[PX_HSM_KCV_HEX_MAX];
    uint8_t key[16], cv[8];
    size_t kl = 0, cl = 0;
    store_config_default(&sc);
    if (conninfo) {
        sc.backend = STORE_POSTGRES;
        px_strlcpy(sc.conninfo, conninfo, sizeof sc.conninfo);
    } else {
        snprintf(sc.path, sizeof sc.path, "%s/switch.db", f->dir);
    }
    hsm_config_default(&hc);
    px_strlcpy(hc.lmk_file, f->lmk, sizeof hc.lmk_file);
    px_strlcpy(hc.audit_file, f->audit, sizeof hc.audit_file);
    if (store_open(&sc, &st, &e) != PX_OK || hsm_open(&hc, st, &h, &e) != PX_OK)
        die("open the store and HSM", &e);
    px_hex_decode(SWFIX_TMK_C1, key, sizeof key, &kl);
    crypto_kcv(CRYPTO_TDES, key, kl, cv, sizeof cv, &cl, NULL);
    px_hex_encode(cv, cl, k1);
    px_hex_decode(SWFIX_TMK_C2, key, sizeof key, &kl);
    crypto_kcv(CRYPTO_TDES, key, kl, cv, sizeof cv, &cl, NULL);
    px_hex_encode(cv, cl, k2);
    for (int i = 0; i < n; i++) {
        char tid[9], mid[16];
        hsm_component c[2] = {{SWFIX_TMK_C1, k1}, {SWFIX_TMK_C2, k2}};
        snprintf(tid, sizeof tid, "B%07d", i + 1);
        snprintf(mid, sizeof mid, "89810000000%04d", i % 100);
        if (switch_terminal_add_components(st, h, tid, mid, "Bench Shop", c, 2, kcv, &e) != PX_OK &&
            e.code != PX_EEXIST)
            die("register a terminal", &e);
    }
    hsm_close(h);
    store_close(st);
}

int main(int argc, char **argv)
{
    int nterm = 64, seconds = 10, warmup = 3, keep = 0, writers = 0, group_max = 0;
    const char *backend = "sqlite", *issuer_store = "memory";
    swfix f;
    swfix_node iss, sw;
    pgtemp pg;
    px_error e = {0};
    char sec[8192], all[16384], issstore[1024], extra[512];
    const char *conninfo = NULL;
    int iss_port, ep;
    struct epoll_event evs[256];
    int64_t t_start, t_end, t_measure = 0;
    double secs;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--terminals") == 0 && i + 1 < argc)
            nterm = arg_int(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = arg_int(argv[++i]);
        else if (strcmp(argv[i], "--warmup") == 0 && i + 1 < argc)
            warmup = arg_int(argv[++i]);
        else if (strcmp(argv[i], "--store") == 0 && i + 1 < argc)
            backend = argv[++i];
        else if (strcmp(argv[i], "--writers") == 0 && i + 1 < argc)
            writers = arg_int(argv[++i]);
        else if (strcmp(argv[i], "--group-max") == 0 && i + 1 < argc)
            group_max = arg_int(argv[++i]);
        else if (strcmp(argv[i], "--issuer-store") == 0 && i + 1 < argc)
            issuer_store = argv[++i];
        else if (strcmp(argv[i], "--keep") == 0)
            keep = 1;
        else {
            fprintf(stderr, "usage: bench_switch_load [--terminals N] [--seconds S] [--warmup S] "
                            "[--store sqlite|postgres] [--issuer-store memory|file] "
                            "[--writers N] [--group-max N] [--keep]\n");
            return 2;
        }
    }
    if (nterm < 1 || nterm > MAX_TERMINALS || seconds < 1 || warmup < 0 || writers < 0 ||
        group_max < 0 || (strcmp(backend, "sqlite") != 0 && strcmp(backend, "postgres") != 0) ||
        (strcmp(issuer_store, "memory") != 0 && strcmp(issuer_store, "file") != 0)) {
        fprintf(stderr, "bench_switch_load: bad arguments\n");
        return 2;
    }
    if (getenv("POSSUM_BINARY_DIR") == NULL)
        setenv("POSSUM_BINARY_DIR", POSSUM_BENCH_BINARY_DIR, 1);
    if (keep)
        setenv("POSSUM_E2E_KEEP", "1", 1);
    signal(SIGPIPE, SIG_IGN);
    if (net_init(&e) != PX_OK)
        die("net", &e);
    memset(&pg, 0, sizeof pg);
    if (strcmp(backend, "postgres") == 0) {
        setenv("PG_TEMP_OPTIONS", "-c fsync=on -c synchronous_commit=on -c max_connections=100", 1);
        if (pgtemp_start(&pg, &e) != PX_OK)
            die("PostgreSQL", &e);
        conninfo = pg.conninfo;
    }
    if (swfix_init(&f, conninfo) != 0)
        die("set up the LMK and the store", NULL);
    fprintf(stderr, "registering %d terminals...\n", nterm);
    register_terminals(&f, conninfo, nterm);

    /* The issuer simulator: its own node and store. */
    iss_port = swfix_free_port();
    swfix_issuer_section(&f, sec, sizeof sec, iss_port, NULL);
    if (strcmp(issuer_store, "memory") == 0)
        snprintf(issstore, sizeof issstore, "[store]\nbackend = sqlite\npath = :memory:\n");
    else
        snprintf(issstore, sizeof issstore,
                 "[store]\nbackend = sqlite\npath = %s/issuer.db\nsynchronous = normal\n", f.dir);
    if (swfix_start(&f, &iss, "issuer", issstore, sec) != 0)
        die("start the issuer simulator", NULL);
    /* The switch. */
    {
        char w[128] = "", g[128] = "";
        if (writers > 0)
            snprintf(w, sizeof w, "writers = %d\n", writers);
        if (group_max > 0)
            snprintf(g, sizeof g, "group_commit_max = %d\n", group_max);
        snprintf(extra, sizeof extra,
                 "provider_timeout_ms = 10000\nmax_in_flight = 100000\nmax_connections = 4096\n"
                 "%s%s",
                 w, g);
    }
    swfix_switch_section(&f, all, sizeof all, iss_port, extra);
    if (swfix_start(&f, &sw, "switch", NULL, all) != 0)
        die("start the switch", NULL);

    g_conns = calloc((size_t)nterm, sizeof *g_conns);
    g_lat_us = malloc(MAX_SAMPLES * sizeof *g_lat_us);
    if (g_conns == NULL || g_lat_us == NULL)
        die("out of memory", NULL);
    ep = epoll_create1(0);
    fprintf(stderr, "signing on %d terminals...\n", nterm);
    for (int i = 0; i < nterm; i++) {
        conn *c = &g_conns[i];
        char tid[9], mid[16];
        iso8583_msg rsp;
        struct epoll_event ev;
        snprintf(tid, sizeof tid, "B%07d", i + 1);
        snprintf(mid, sizeof mid, "89810000000%04d", i % 100);
        if (termsim_init(&c->t, tid, mid, SWFIX_TMK_C1, SWFIX_TMK_C2, &e) != PX_OK ||
            termsim_connect(&c->t, sw.switch_port, &e) != PX_OK ||
            termsim_signon(&c->t, &rsp, &e) != PX_OK)
            die("sign-on", &e);
        termsim_close(&c->t);
        c->fd = connect_nb(sw.switch_port);
        if (c->fd < 0)
            die("connect", NULL);
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    g_nconns = nterm;
    fprintf(stderr, "load: %d terminals, %d s warm-up, %d s measured, store %s, issuer store %s\n",
            nterm, warmup, seconds, backend, issuer_store);
    for (int i = 0; i < nterm; i++)
        send_purchase(&g_conns[i]);
    t_start = px_mono_ms();
    t_end = t_start + (int64_t)(warmup + seconds) * 1000;
    while (px_mono_ms() < t_end) {
        int n = epoll_wait(ep, evs, 256, 100);
        int64_t now = px_mono_ms();
        if (!g_measuring && now - t_start >= (int64_t)warmup * 1000) {
            g_measuring = 1;
            t_measure = now;
        }
        for (int i = 0; i < n; i++)
            on_readable(evs[i].data.ptr);
        for (int i = 0; i < g_nconns && n == 0; i++) {
            conn *c = &g_conns[i];
            if (c->waiting && (px_mono_ns() - c->sent_ns) / 1000000 > RESPONSE_TIMEOUT_MS) {
                g_timeouts++;
                g_errors += g_measuring;
                send_purchase(c); /* the terminal would reverse it; not measured here */
            }
        }
    }
    secs = (double)(px_mono_ms() - t_measure) / 1000.0;
    qsort(g_lat_us, g_nlat, sizeof *g_lat_us, cmp_i64);
    {
        double p50 = g_nlat ? (double)g_lat_us[g_nlat / 2] / 1000.0 : 0;
        double p99 = g_nlat ? (double)g_lat_us[g_nlat * 99 / 100] / 1000.0 : 0;
        long long rate = (long long)((double)g_approved / secs);
        long long commits = swfix_metric(&sw, "possum_switch_group_commits_total");
        long long jobs = swfix_metric(&sw, "possum_switch_group_jobs_total");
        fprintf(stderr,
                "approved %ld in %.1f s, errors %ld (timeouts %ld); group commits %lld "
                "(%.1f jobs each)\n",
                g_approved, secs, g_errors, g_timeouts, commits,
                commits ? (double)jobs / (double)commits : 0.0);
        printf("terminals %d, store %s: %lld approved purchases/s, p50 %.2f ms, p99 %.2f ms, "
               "errors %ld\n",
               nterm, backend, rate, p50, p99, g_errors);
        printf("{\"bench\":\"switch-load\",\"store\":\"%s\",\"approved_per_s\":%lld,"
               "\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"errors\":%ld}\n",
               backend, rate, p50, p99, g_errors);
        fflush(stdout);
    }
    for (int i = 0; i < g_nconns; i++)
        close(g_conns[i].fd);
    close(ep);
    if (swfix_stop(&sw, SIGTERM, 30000) != 0)
        fprintf(stderr, "bench_switch_load: the switch did not stop cleanly (see %s)\n", sw.log);
    swfix_stop(&iss, SIGTERM, 30000);
    if (keep)
        fprintf(stderr, "kept %s\n", f.dir);
    swfix_cleanup(&f);
    if (conninfo)
        pgtemp_stop(&pg);
    free(g_conns);
    free(g_lat_us);
    return 0;
}
