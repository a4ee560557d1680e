/*
 * bench_tms: the TMS under load, on this machine, side by side with nginx (docs/tms.md,
 * "Performance"). Not a timed test: it prints what it measured, the last line as JSON.
 *
 *   1. a store with 1,000,000 registered terminals, a signed root, one release;
 *   2. the real possumd running the tms service (its configured worker threads) and nginx
 *      (/usr/sbin/nginx, a config of its own in a temp dir, as many workers) on loopback;
 *   3. check-ins: CONNS keep-alive connections, each request for another of the million
 *      terminals; nginx answers the same request with a static body of the same size:
 *      requests per second and p99 latency of each;
 *   4. downloads: the same file from both, in 4 MiB Range slices over keep-alive
 *      connections (the TMS with a session token, through sendfile): MB/s of each;
 *   5. a campaign of 100,000 simulated terminals in three waves: each checks in, runs the
 *      claim-4 authentication, downloads and reports (1 in 50 reports a failure); the
 *      campaign must complete with exactly 98,000 installed and 2,000 failed.
 * The load generator is an epoll client in this process; it shares the cores with the
 * servers, the same for both. The work directory is on /dev/shm unless TMPDIR says otherwise;
 * POSSUM_BENCH_TERMINALS and POSSUM_BENCH_CAMPAIGN shrink the fleet, POSSUM_BENCH_HEALTHZ=1
 * also measures GET /healthz (the HTTP layer alone), POSSUM_BENCH_KEEP=1 keeps the directory.
 */
#include "crypto/crypto.h"
#include "device/tmsclient/tmsc_int.h"
#include "host/tms/tms.h"
#include "host/tms/tms_int.h"
#include "lib/hex.h"
#include "lib/str.h"
#include "lib/time.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* POSSUM_BENCH_TERMINALS and POSSUM_BENCH_CAMPAIGN change the fleet (for a quick look) */
static int TERMINALS = 1000000, CAMPAIGN = 100000;
#define CONNS 64
#define DL_CONNS 8
#define SECONDS 5
#define FILE_BYTES (64 * 1024 * 1024)
#define SLICE (4 * 1024 * 1024)
#define PASS "bench tms passphrase"
#define MASTER_HEX "0123456789ABCDEFFEDCBA9876543210"

static char dir[PX_PATH_MAX];

static void die(const char *what, const px_error *e)
{
    fprintf(stderr, "bench_tms: %s: %s\n", what, e != NULL ? px_error_text(e) : strerror(errno));
    exit(1);
}

static void path_of(const char *name, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/%s", dir, name);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* ---- the store: keys, terminals, root, release ------------------------------------------ */

typedef struct setup {
    store *st;
    hsm *h;
    uint8_t root_priv[TUF_PRIV_LEN], targets_priv[TUF_PRIV_LEN], ts_priv[TUF_PRIV_LEN];
    tuf_root root;
} setup;

static void form_master(setup *s)
{
    static const hsm_key_attrs a = {"K0", 'T', 'X', 'E', 16};
    uint8_t key[16], c1[16], c2[16], kcv[8];
    char h1[33], h2[33], k1[7], k2[7];
    hsm_component c[2] = {{h1, k1}, {h2, k2}};
    hsm_keyblock kb;
    size_t n = 0, kn = 0;
    px_error e = {0};
    px_hex_decode(MASTER_HEX, key, 16, &n);
    crypto_random(c1, 16, NULL);
    for (int i = 0; i < 16; i++)
        c2[i] = key[i] ^ c1[i];
    px_hex_encode(c1, 16, h1);
    px_hex_encode(c2, 16, h2);
    crypto_kcv(CRYPTO_TDES, c1, 16, kcv, sizeof kcv, &kn, NULL);
    px_hex_encode(kcv, 3, k1);
    crypto_kcv(CRYPTO_TDES, c2, 16, kcv, sizeof kcv, &kn, NULL);
    px_hex_encode(kcv, 3, k2);
    if (hsm_key_form(s->h, &a, c, 2, "tms.master", &kb, &e) != PX_OK)
        die("master key", &e);
}

static void add_role_key(tuf_root *r, tuf_role_id id, uint8_t priv[TUF_PRIV_LEN])
{
    uint8_t pub[TUF_PUB_LEN];
    tuf_keypair_generate(priv, pub, NULL);
    tuf_key_from_public(pub, &r->keys[r->nkeys], NULL);
    px_strlcpy(r->roles[id].keyids[0], r->keys[r->nkeys++].keyid, TUF_KEYID_HEX);
    r->roles[id].nkeys = 1;
    r->roles[id].threshold = 1;
}

static char *signed_text(json_t *sp, const uint8_t *priv)
{
    json_t *env = json_pack("{s:o, s:[]}", "signed", sp, "signatures");
    char *t;
    tuf_envelope_sign(env, priv, NULL);
    t = json_dumps(env, JSON_COMPACT);
    json_decref(env);
    return t;
}

static void register_fleet(setup *s)
{
    int64_t t0 = px_mono_ms(), now = px_now_ms();
    px_error e = {0};
    for (int base = 0; base < TERMINALS; base += 100000) {
        if (store_begin(s->st, &e) != PX_OK)
            die("begin", &e);
        for (int i = base; i < base + 100000 && i < TERMINALS; i++) {
            char serial[16];
            store_stmt *q;
            snprintf(serial, sizeof serial, "SN%07d", i);
            if (store_prepare(s->st,
                              "INSERT INTO tms_terminal (serial, model, created_ms, updated_ms) "
                              "VALUES ($1, 'A920', $2, $2)",
                              &q, &e) != PX_OK)
                die("insert", &e);
            store_bind_text(q, 1, serial);
            store_bind_int64(q, 2, now);
            if (store_step(q, &e) < 0)
                die("insert", &e);
            store_done(q);
            if (i < CAMPAIGN) {
                if (store_prepare(s->st,
                                  "INSERT INTO tms_terminal_group (serial, grp) VALUES ($1, "
                                  "'bench')",
                                  &q, &e) != PX_OK)
                    die("group", &e);
                store_bind_text(q, 1, serial);
                if (store_step(q, &e) < 0)
                    die("group", &e);
                store_done(q);
            }
        }
        if (store_commit(s->st, &e) != PX_OK)
            die("commit", &e);
    }
    printf("registered %d terminals in %.1f s\n", TERMINALS, (px_mono_ms() - t0) / 1000.0);
}

static void release(setup *s, const char *name, const char *version, int64_t bytes,
                    const char *file)
{
    tuf_target t;
    FILE *fp = fopen(file, "w");
    uint8_t *buf = malloc(1 << 20);
    char *meta, sha[TUF_SHA256_HEX];
    int64_t len = 0;
    px_error e = {0};
    for (int64_t done = 0; done < bytes; done += 1 << 20) {
        size_t n = bytes - done < (1 << 20) ? (size_t)(bytes - done) : (size_t)1 << 20;
        crypto_random(buf, n, NULL);
        fwrite(buf, 1, n, fp);
    }
    fclose(fp);
    free(buf);
    tmsc_file_sha256(file, sha, &len, NULL);
    memset(&t, 0, sizeof t);
    px_strlcpy(t.name, name, sizeof t.name);
    px_strlcpy(t.kind, "app", sizeof t.kind);
    px_strlcpy(t.version, version, sizeof t.version);
    t.length = len;
    px_strlcpy(t.sha256, sha, sizeof t.sha256);
    px_strlcpy(t.models[0], "A920", PX_TMS_NAME_MAX);
    t.nmodels = 1;
    t.expires_ms = px_now_ms() + 86400000;
    meta = signed_text(tuf_target_build(&t), s->targets_priv);
    if (tms_package_add(s->st, file, meta, strlen(meta), NULL, &e) != PX_OK)
        die("package", &e);
    free(meta);
}

static void prepare(setup *s)
{
    hsm_config hc;
    store_config sc;
    char check[PX_HSM_KCV_HEX_MAX], file[PX_PATH_MAX], *root;
    px_error e = {0};
    hsm_config_default(&hc);
    hc.lmk_scrypt_log2n = 10;
    path_of("lmk.bin", hc.lmk_file, sizeof hc.lmk_file);
    path_of("hsm-audit.log", hc.audit_file, sizeof hc.audit_file);
    store_config_default(&sc);
    path_of("possum.db", sc.path, sizeof sc.path);
    if (hsm_lmk_init(&hc, check, &e) != PX_OK || store_open(&sc, &s->st, &e) != PX_OK ||
        hsm_open(&hc, s->st, &s->h, &e) != PX_OK)
        die("hsm / store", &e);
    form_master(s);
    s->root.version = 1;
    s->root.expires_ms = px_now_ms() + 86400000;
    add_role_key(&s->root, TUF_ROLE_ROOT, s->root_priv);
    add_role_key(&s->root, TUF_ROLE_TARGETS, s->targets_priv);
    add_role_key(&s->root, TUF_ROLE_TIMESTAMP, s->ts_priv);
    root = signed_text(tuf_root_build(&s->root), s->root_priv);
    if (tms_root_publish(s->st, root, strlen(root), &e) != PX_OK)
        die("root", &e);
    free(root);
    path_of("timestamp.key", file, sizeof file);
    tuf_private_key_write(file, s->ts_priv, NULL);
    register_fleet(s);
    path_of("big.bin", file, sizeof file);
    release(s, "firmware", "1.0.0", FILE_BYTES, file);
    path_of("small.bin", file, sizeof file);
    release(s, "pos-app", "2.0.0", 4096, file);
}

/* ---- the servers ----------------------------------------------------------------------------- */

static pid_t spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static int wait_port(int port, int ms)
{
    for (int i = 0; i < ms / 20; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int fd = socket(AF_INET, SOCK_STREAM, 0),
            ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok)
            return 0;
        sleep_ms(20);
    }
    return -1;
}

static pid_t start_possumd(const char *possumd, int port, int http_port, int workers)
{
    char ini[PX_PATH_MAX], log[PX_PATH_MAX];
    char *argv[] = {(char *)possumd, "-c", ini, NULL};
    FILE *f;
    path_of("possumd.ini", ini, sizeof ini);
    path_of("possumd.log", log, sizeof log);
    f = fopen(ini, "w");
    fprintf(f,
            "[possumd]\nnode = bench\nlog_level = info\n[store]\npath = %s/possum.db\n"
            "[http]\nlisten = 127.0.0.1:%d\n[tms]\nenabled = true\nlisten = 127.0.0.1:%d\n"
            "workers = %d\nmax_connections = 4096\nhsm_lmk_file = %s/lmk.bin\n"
            "hsm_audit_file = %s/hsm-audit.log\ntimestamp_key = %s/timestamp.key\n"
            "cache_dir = %s/cache\ntick_ms = 100\nauth_min_interval_ms = 0\n"
            "max_downloads = 100000\nslice_bytes = %d\n",
            dir, http_port, port, workers, dir, dir, dir, dir, SLICE);
    fclose(f);
    return spawn(argv, log);
}

static pid_t start_nginx(int port, int workers, const char *body, size_t blen)
{
    char conf[PX_PATH_MAX], log[PX_PATH_MAX], prefix[PX_PATH_MAX + 4];
    char *argv[] = {"/usr/sbin/nginx", "-p", prefix, "-c", conf, "-g", "daemon off;", NULL};
    FILE *f;
    path_of("nginx.conf", conf, sizeof conf);
    path_of("nginx.log", log, sizeof log);
    snprintf(prefix, sizeof prefix, "%s/", dir);
    f = fopen(conf, "w");
    fprintf(f,
            "%sworker_processes %d;\npid %s/nginx.pid;\nerror_log %s/nginx-error.log;\n"
            "events { worker_connections 4096; }\nhttp {\n  access_log off;\n"
            "  client_body_temp_path %s/nb; proxy_temp_path %s/np; fastcgi_temp_path %s/nf;\n"
            "  uwsgi_temp_path %s/nu; scgi_temp_path %s/ns;\n  keepalive_requests 1000000;\n"
            "  server {\n    listen 127.0.0.1:%d;\n    sendfile on;\n"
            "    location = /v1/checkin { default_type application/json; return 200 '%.*s'; }\n"
            "    location /files/ { alias %s/; }\n  }\n}\n",
            geteuid() == 0 ? "user root;\n" : "", workers, dir, dir, dir, dir, dir, dir, dir, port,
            (int)blen, body, dir);
    fclose(f);
    return spawn(argv, log);
}

/* ---- the load generator ---------------------------------------------------------------------- */

typedef struct lconn {
    int fd;
    char req[2048];
    size_t reqlen, sent;
    char head[4096];
    size_t hlen;
    int64_t body_left; /* -1 while reading the head */
    int64_t t0_ns;
    uint64_t seq;
} lconn;

typedef struct load {
    int port;
    int nconns;
    int check_in;        /* 1: check-ins (a new serial each); 0: download slices; 2: GET
                            /healthz (the HTTP layer alone) */
    const char *dl_path; /* download path */
    const char *token;   /* bearer token for the TMS, or NULL */
    int64_t file_bytes;
    int64_t seconds;
    /* results */
    uint64_t done, bytes, errors;
    int64_t *lat_us;
    size_t nlat, cap;
} load;

static void build_req(load *l, lconn *c)
{
    if (l->check_in == 2) {
        c->reqlen = (size_t)snprintf(c->req, sizeof c->req,
                                     "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    } else if (l->check_in) {
        char body[256];
        int n = snprintf(body, sizeof body,
                         "{\"serial\":\"SN%07llu\",\"model\":\"A920\",\"nonce\":"
                         "\"00112233445566778899aabbccddeeff\",\"installed\":"
                         "{\"pos-app\":\"1.0.0\"}}",
                         (unsigned long long)(CAMPAIGN + c->seq % (TERMINALS - CAMPAIGN)));
        c->reqlen = (size_t)
            snprintf(c->req, sizeof c->req,
                     "POST /v1/checkin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                     "application/json\r\nContent-Length: %d\r\n\r\n%s",
                     n, body);
    } else {
        int64_t first = (int64_t)(c->seq % (uint64_t)(l->file_bytes / SLICE)) * SLICE;
        c->reqlen = (size_t)
            snprintf(c->req, sizeof c->req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%sRange: bytes=%lld-%lld\r\n\r\n",
                     l->dl_path, l->token ? "Authorization: Bearer " : "", l->token ? l->token : "",
                     l->token ? "\r\n" : "", (long long)first, (long long)(first + SLICE - 1));
    }
    c->sent = 0;
    c->hlen = 0;
    c->body_left = -1;
    c->t0_ns = px_mono_ns();
}

static int lconnect(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* Run the load for l->seconds after one second of warm-up. */
static void run_load(load *l)
{
    int ep = epoll_create1(0);
    lconn *cs = calloc((size_t)l->nconns, sizeof *cs);
    static char sink[1 << 20];
    int64_t start = px_mono_ns(), measure_from = start + 1000000000LL,
            end = measure_from + l->seconds * 1000000000LL;
    uint64_t seq = 0;
    l->cap = 4 * 1024 * 1024;
    l->lat_us = malloc(l->cap * sizeof *l->lat_us);
    for (int i = 0; i < l->nconns; i++) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = &cs[i]};
        cs[i].fd = lconnect(l->port);
        if (cs[i].fd < 0)
            die("connect", NULL);
        cs[i].seq = seq++;
        build_req(l, &cs[i]);
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    }
    for (;;) {
        struct epoll_event evs[256];
        int64_t now = px_mono_ns();
        int n;
        if (now >= end)
            break;
        n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            lconn *c = evs[i].data.ptr;
            if (c->sent < c->reqlen) {
                ssize_t w = send(c->fd, c->req + c->sent, c->reqlen - c->sent, MSG_NOSIGNAL);
                if (w > 0)
                    c->sent += (size_t)w;
                if (c->sent == c->reqlen) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
                continue;
            }
            for (;;) {
                ssize_t r;
                if (c->body_left < 0) {
                    char *e2;
                    r = recv(c->fd, c->head + c->hlen, sizeof c->head - 1 - c->hlen, 0);
                    if (r <= 0)
                        break;
                    c->hlen += (size_t)r;
                    c->head[c->hlen] = 0;
                    if ((e2 = strstr(c->head, "\r\n\r\n")) == NULL)
                        continue;
                    {
                        char *cl = strstr(c->head,
                                          "Content-Length:"); /* both servers write it so */
                        int64_t len = cl != NULL ? strtoll(cl + 15, NULL, 10) : 0;
                        int64_t extra = (int64_t)c->hlen - (int64_t)(e2 + 4 - c->head);
                        if (strncmp(c->head + 9, "20", 2) != 0)
                            l->errors++;
                        c->body_left = len - extra;
                        if (now >= measure_from)
                            l->bytes += (uint64_t)len;
                    }
                } else {
                    r = recv(c->fd, sink,
                             c->body_left < (int64_t)sizeof sink ? (size_t)c->body_left
                                                                 : sizeof sink,
                             0);
                    if (r <= 0)
                        break;
                    c->body_left -= r;
                }
                if (c->body_left == 0) {
                    int64_t t = px_mono_ns();
                    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
                    if (t >= measure_from && t < end) {
                        l->done++;
                        if (l->nlat < l->cap)
                            l->lat_us[l->nlat++] = (t - c->t0_ns) / 1000;
                    }
                    c->seq = seq++;
                    build_req(l, c);
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                    break;
                }
            }
        }
    }
    for (int i = 0; i < l->nconns; i++)
        close(cs[i].fd);
    close(ep);
    free(cs);
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double p99_ms(load *l)
{
    if (l->nlat == 0)
        return 0;
    qsort(l->lat_us, l->nlat, sizeof *l->lat_us, cmp64);
    return l->lat_us[l->nlat * 99 / 100] / 1000.0;
}

/* ---- a terminal, simulated: claim 4, a download, reports ------------------------------------ */

typedef struct sim {
    int port;
    int from, to; /* serials SN<from>..SN<to-1> */
    int64_t installed, failed, rounds, requests, errors;
    char why[160];
    char token[80]; /* the last session's */
    int ok;
} sim;

static void client_cfg(tmsc_config *c, int port)
{
    memset(c, 0, sizeof *c);
    px_strlcpy(c->host, "127.0.0.1", sizeof c->host);
    c->port = port;
    c->timeout_ms = 60000;
}

static int post_json(tmsc_http *h, const char *path, const char *body, const char *extra,
                     json_t **ans)
{
    tmsc_resp r;
    int rc;
    tmsc_resp_init(&r);
    rc = tmsc_http_request(h, "POST", path, extra, body, strlen(body), -1, 0, &r, NULL);
    if (rc == PX_OK)
        rc = tmsc_resp_json(&r, ans, NULL);
    tmsc_resp_free(&r);
    return rc;
}

static int hex16(json_t *j, const char *k, uint8_t out[16])
{
    size_t n = 0;
    const char *s = json_string_value(json_object_get(j, k));
    return s != NULL && px_hex_decode(s, out, 16, &n) == PX_OK && n == 16;
}

/* Claim 4 for serial with its DMK (derived here from the known master): a bearer token. */
static int sim_auth(tmsc_http *h, const char *serial, char token[80])
{
    static const uint8_t iv[8];
    uint8_t master[16], data[16], dmk[16], dwk1[16], dwk[16], tdata[16] = {1, 2, 3}, tac0[16],
                                                              tac1[16], sdata[16], sac[16];
    char body[512], thex[33], sachex[33], url[64];
    json_t *a = NULL;
    size_t n;
    px_hex_decode(MASTER_HEX, master, 16, &n);
    tms_dmk_data(serial, data);
    crypto_derive_key(master, 16, data, 16, dmk, NULL);
    crypto_des_set_odd_parity(dmk, 16);
    px_hex_encode(tdata, 16, thex);
    snprintf(body, sizeof body, "{\"serial\":\"%s\",\"t_data\":\"%s\"}", serial, thex);
    if (post_json(h, "/v1/sessions", body, NULL, &a) != PX_OK || !hex16(a, "dwk", dwk1) ||
        !hex16(a, "tac", tac1) || !hex16(a, "s_data", sdata)) {
        json_decref(a);
        return -1;
    }
    crypto_decrypt(CRYPTO_TDES, CRYPTO_ECB, dmk, 16, NULL, dwk1, 16, dwk, NULL);
    crypto_encrypt(CRYPTO_TDES, CRYPTO_CBC, dwk, 16, iv, tdata, 16, tac0, NULL);
    crypto_encrypt(CRYPTO_TDES, CRYPTO_CBC, dwk, 16, iv, sdata, 16, sac, NULL);
    px_hex_encode(sac, 16, sachex);
    snprintf(url, sizeof url, "/v1/sessions/%s", json_string_value(json_object_get(a, "session")));
    json_decref(a);
    a = NULL;
    if (memcmp(tac0, tac1, 16) != 0)
        return -1;
    snprintf(body, sizeof body, "{\"serial\":\"%s\",\"sac\":\"%s\",\"tac_ok\":true}", serial,
             sachex);
    if (post_json(h, url, body, NULL, &a) != PX_OK ||
        json_string_value(json_object_get(a, "token")) == NULL ||
        px_strlcpy(token, json_string_value(json_object_get(a, "token")), 80) != PX_OK) {
        json_decref(a);
        return -1;
    }
    json_decref(a);
    return 0;
}

/* One terminal's whole update; 1 done, 0 nothing offered yet, -1 failed. */
static int sim_one(sim *s, tmsc_http *h, int i)
{
    char serial[16], body[512], camp[PX_TMS_NAME_MAX] = "", extra[160];
    json_t *a = NULL;
    tmsc_resp r;
    int rc, fd;
    snprintf(serial, sizeof serial, "SN%07d", i);
    snprintf(
        body, sizeof body,
        "{\"serial\":\"%s\",\"model\":\"A920\",\"nonce\":\"00112233445566778899aabbccddeeff\"}",
        serial);
    s->requests++;
    if (post_json(h, "/v1/checkin", body, NULL, &a) != PX_OK)
        return -1;
    if (json_array_size(json_object_get(a, "updates")) == 0) {
        json_decref(a);
        return 0;
    }
    if (json_string_value(json_object_get(json_array_get(json_object_get(a, "updates"), 0),
                                          "campaign")) != NULL)
        px_strlcpy(camp,
                   json_string_value(json_object_get(
                       json_array_get(json_object_get(a, "updates"), 0), "campaign")),
                   sizeof camp);
    json_decref(a);
    s->requests += 5;
    if (sim_auth(h, serial, s->token) != 0)
        return -1;
    snprintf(extra, sizeof extra, "Authorization: Bearer %s\r\n", s->token);
    fd = open("/dev/null", O_WRONLY);
    tmsc_resp_init(&r);
    rc = tmsc_http_request(h, "GET", "/v1/packages/pos-app/2.0.0", extra, NULL, 0, fd, 0, &r, NULL);
    close(fd);
    rc = rc == PX_OK && r.status == 200 ? PX_OK : PX_ENET;
    tmsc_resp_free(&r);
    if (rc != PX_OK)
        return -1;
    snprintf(body, sizeof body,
             "{\"campaign\":\"%s\",\"status\":\"downloaded\",\"version\":\"2.0.0\"}", camp);
    if (post_json(h, "/v1/reports", body, extra, &a) != PX_OK)
        return -1;
    json_decref(a);
    if (i % 50 == 7)
        snprintf(body, sizeof body,
                 "{\"campaign\":\"%s\",\"status\":\"failed\",\"version\":\"2.0.0\","
                 "\"reason\":\"simulated: self-check failed\"}",
                 camp);
    else
        snprintf(body, sizeof body,
                 "{\"campaign\":\"%s\",\"status\":\"installed\",\"version\":\"2.0.0\"}", camp);
    if (post_json(h, "/v1/reports", body, extra, &a) != PX_OK)
        return -1;
    json_decref(a);
    if (i % 50 == 7)
        s->failed++;
    else
        s->installed++;
    return 1;
}

static void *sim_thread(void *arg)
{
    sim *s = arg;
    tmsc_config c;
    tmsc_http *h = NULL;
    char *done = calloc((size_t)(s->to - s->from), 1);
    int left = s->to - s->from;
    client_cfg(&c, s->port);
    if (done == NULL || tmsc_http_open(&c, &h, NULL) != PX_OK) {
        free(done);
        return NULL;
    }
    /* each round, every terminal not finished checks in; those whose wave is open update */
    while (left > 0 && s->rounds < 100) {
        int progress = 0;
        s->rounds++;
        for (int i = s->from; i < s->to; i++) {
            int rc;
            if (done[i - s->from] || (rc = sim_one(s, h, i)) == 0)
                continue;
            if (rc < 0 && s->errors++ == 0)
                snprintf(s->why, sizeof s->why, "terminal SN%07d: the update failed", i);
            done[i - s->from] = 1;
            left--;
            progress++;
        }
        if (progress == 0)
            sleep_ms(100); /* the next wave opens at the TMS's next tick */
    }
    s->ok = left == 0;
    tmsc_http_close(h);
    free(done);
    return NULL;
}

/* ---- the run --------------------------------------------------------------------------------- */

static int64_t campaign_count(store *st, const char *state)
{
    tms_campaign_info *c = calloc(1, sizeof *c);
    tms_tstate s;
    int64_t n = 0;
    if (tms_campaign_get(st, "bench", c, NULL) == PX_OK && tms_tstate_parse(state, &s) == PX_OK)
        for (int w = 0; w < PX_TMS_WAVES_MAX; w++)
            n += c->counts[w][s];
    free(c);
    return n;
}

static void campaign_for(setup *s, const char *name, const char *pkg, const char *version,
                         const char *group, const char *const *serials, size_t n, int waves)
{
    tms_campaign_spec sp;
    px_error e = {0};
    tms_campaign_spec_default(&sp);
    px_strlcpy(sp.name, name, sizeof sp.name);
    px_strlcpy(sp.pkg_name, pkg, sizeof sp.pkg_name);
    px_strlcpy(sp.pkg_version, version, sizeof sp.pkg_version);
    if (group != NULL) {
        px_strlcpy(sp.groups[0], group, PX_TMS_NAME_MAX);
        sp.ngroups = 1;
    }
    sp.serials = serials;
    sp.nserials = n;
    if (waves) {
        sp.waves[0] = 1;
        sp.waves[1] = 10;
        sp.waves[2] = 100;
        sp.nwaves = 3;
    }
    if (tms_campaign_create(s->st, &sp, &e) != PX_OK)
        die("campaign", &e);
}

static void stop_child(pid_t pid, int sig)
{
    int st;
    kill(pid, sig);
    waitpid(pid, &st, 0);
}

int main(int argc, char **argv)
{
    char last[16];
    const char *dl_serial[] = {last};
    setup s;
    char possumd[PX_PATH_MAX], body[4096], token[80] = "", url[64];
    const char *bin = getenv("POSSUM_BINARY_DIR");
    int tms_port = free_port(), http_port = free_port(), ngx_port = free_port(), workers = 2;
    pid_t pd, ng;
    load ck = {0}, nk = {0}, dl = {0}, nd = {0};
    sim sims[4];
    pthread_t th[4];
    tmsc_config c;
    tmsc_http *h = NULL;
    tmsc_resp r;
    int64_t t0, installed, failed;
    int ok = 1, blen;
    (void)argc;
    memset(&s, 0, sizeof s);
    signal(SIGPIPE, SIG_IGN);
    /* tmpfs by default: the campaign's HSM audit and store fsyncs would measure the disk */
    snprintf(dir, sizeof dir, "%s/possum-bench-tms.XXXXXX",
             getenv("TMPDIR")                ? getenv("TMPDIR")
             : access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                                             : "/tmp");
    if (mkdtemp(dir) == NULL)
        die("mkdtemp", NULL);
    setenv(HSM_ENV_PASSPHRASE, PASS, 1);
    {
        int64_t v;
        if (getenv("POSSUM_BENCH_TERMINALS") != NULL &&
            px_parse_i64(getenv("POSSUM_BENCH_TERMINALS"), 10000, 9999999, &v) == PX_OK)
            TERMINALS = (int)v;
        if (getenv("POSSUM_BENCH_CAMPAIGN") != NULL &&
            px_parse_i64(getenv("POSSUM_BENCH_CAMPAIGN"), 200, 4999999, &v) == PX_OK)
            CAMPAIGN = (int)v;
    }
    if (TERMINALS < 1000000 / 100 || CAMPAIGN < 200 || CAMPAIGN > TERMINALS / 2)
        die("POSSUM_BENCH_TERMINALS >= 10000, 200 <= POSSUM_BENCH_CAMPAIGN <= half of it", NULL);
    if (bin != NULL) {
        snprintf(possumd, sizeof possumd, "%s/src/app/possumd", bin);
    } else {
        const char *slash = strrchr(argv[0], '/');
        snprintf(possumd, sizeof possumd, "%.*s/../../src/app/possumd",
                 slash != NULL ? (int)(slash - argv[0]) : 1, slash != NULL ? argv[0] : ".");
    }
    if (access(possumd, X_OK) != 0 || access("/usr/sbin/nginx", X_OK) != 0) {
        fprintf(stderr, "bench_tms: needs %s and /usr/sbin/nginx\n", possumd);
        return 1;
    }
    printf("bench_tms in %s (2 TMS workers, 2 nginx workers, %d connections)\n", dir, CONNS);
    snprintf(last, sizeof last, "SN%07d", TERMINALS - 1);
    prepare(&s);
    campaign_for(&s, "dl", "firmware", "1.0.0", NULL, dl_serial, 1, 0);
    if (tms_campaign_start(s.st, "dl", NULL, NULL) != PX_OK)
        die("campaign dl", NULL);
    campaign_for(&s, "bench", "pos-app", "2.0.0", "bench", NULL, 0, 1);
    pd = start_possumd(possumd, tms_port, http_port, workers);
    if (wait_port(tms_port, 30000) != 0)
        die("possumd did not start (see possumd.log)", NULL);
    sleep_ms(300); /* the first tick: the timestamp, the dl campaign's wave */

    /* the size of a check-in answer, and nginx with a body of that size */
    client_cfg(&c, tms_port);
    tmsc_http_open(&c, &h, NULL);
    tmsc_resp_init(&r);
    snprintf(body, sizeof body,
             "{\"serial\":\"SN%07d\",\"model\":\"A920\",\"nonce\":"
             "\"00112233445566778899aabbccddeeff\",\"installed\":{\"pos-app\":\"1.0.0\"}}",
             CAMPAIGN);
    if (tmsc_http_request(h, "POST", "/v1/checkin", NULL, body, strlen(body), -1, 0, &r, NULL) !=
            PX_OK ||
        r.status != 200)
        die("first check-in", NULL);
    blen = (int)r.body.len;
    memset(body, 'x', sizeof body);
    snprintf(body, sizeof body, "{\"updates\":[],\"pad\":\"");
    memset(body + strlen(body), 'x', (size_t)blen - strlen(body) - 2);
    body[blen - 2] = '"';
    body[blen - 1] = '}';
    body[blen] = 0;
    tmsc_resp_free(&r);
    ng = start_nginx(ngx_port, workers, body, (size_t)blen);
    if (wait_port(ngx_port, 10000) != 0)
        die("nginx did not start (see nginx-error.log)", NULL);

    /* check-ins */
    ck.port = tms_port;
    ck.nconns = CONNS;
    ck.check_in = 1;
    ck.seconds = SECONDS;
    run_load(&ck);
    {
        int st;
        if (waitpid(pd, &st, WNOHANG) == pd) {
            fprintf(stderr,
                    "bench_tms: possumd exited during the check-ins (status %d, signal %d)\n",
                    WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
            return 1;
        }
    }
    if (getenv("POSSUM_BENCH_HEALTHZ") != NULL) {
        load hz = ck;
        hz.check_in = 2;
        hz.done = hz.bytes = hz.errors = 0;
        hz.nlat = 0;
        hz.lat_us = NULL;
        run_load(&hz);
        printf("GET /healthz on the tms listener (the HTTP layer alone): %.0f/s\n",
               hz.done / (double)SECONDS);
        free(hz.lat_us);
    }
    nk = ck;
    nk.port = ngx_port;
    nk.done = nk.bytes = nk.errors = 0;
    nk.nlat = 0;
    run_load(&nk);
    printf("check-in: tms %.0f/s (p99 %.2f ms, %llu errors), nginx static %.0f/s (p99 %.2f ms); "
           "answers of %d bytes\n",
           ck.done / (double)SECONDS, p99_ms(&ck), (unsigned long long)ck.errors,
           nk.done / (double)SECONDS, p99_ms(&nk), (unsigned long long)nk.errors ? 0 : blen);

    /* downloads: a session for the terminal the dl campaign reaches */
    snprintf(
        body, sizeof body,
        "{\"serial\":\"%s\",\"model\":\"A920\",\"nonce\":\"00112233445566778899aabbccddeeff\"}",
        last);
    tmsc_resp_init(&r);
    if (tmsc_http_request(h, "POST", "/v1/checkin", NULL, body, strlen(body), -1, 0, &r, NULL) !=
            PX_OK ||
        sim_auth(h, last, token) != 0)
        die("download session", NULL);
    tmsc_resp_free(&r);
    {
        char extra[160];
        int fd = open("/dev/null", O_WRONLY);
        snprintf(extra, sizeof extra, "Authorization: Bearer %s\r\nRange: bytes=0-0\r\n", token);
        tmsc_resp_init(&r); /* the node caches the file from the store once */
        tmsc_http_request(h, "GET", "/v1/packages/firmware/1.0.0", extra, NULL, 0, fd, 0, &r, NULL);
        tmsc_resp_free(&r);
        close(fd);
    }
    dl.port = tms_port;
    dl.nconns = DL_CONNS;
    dl.dl_path = "/v1/packages/firmware/1.0.0";
    dl.token = token;
    dl.file_bytes = FILE_BYTES;
    dl.seconds = SECONDS;
    run_load(&dl);
    nd = dl;
    nd.port = ngx_port;
    nd.dl_path = "/files/big.bin";
    nd.token = NULL;
    nd.done = nd.bytes = nd.errors = 0;
    nd.nlat = 0;
    run_load(&nd);
    printf("download (%d connections, %d MiB Range slices of a %d MiB file): tms %.0f MB/s (%llu "
           "errors), nginx %.0f MB/s\n",
           DL_CONNS, SLICE >> 20, FILE_BYTES >> 20, dl.bytes / 1e6 / SECONDS,
           (unsigned long long)dl.errors, nd.bytes / 1e6 / SECONDS);
    tmsc_http_close(h);
    stop_child(ng, SIGQUIT);

    /* the campaign: 100,000 simulated terminals */
    t0 = px_mono_ms();
    if (tms_campaign_start(s.st, "bench", NULL, NULL) != PX_OK)
        die("campaign start", NULL);
    printf("campaign of %d terminals started in %.1f s\n", CAMPAIGN, (px_mono_ms() - t0) / 1000.0);
    t0 = px_mono_ms();
    for (int i = 0; i < 4; i++) {
        memset(&sims[i], 0, sizeof sims[i]);
        sims[i].port = tms_port;
        sims[i].from = i * (CAMPAIGN / 4);
        sims[i].to = (i + 1) * (CAMPAIGN / 4);
        pthread_create(&th[i], NULL, sim_thread, &sims[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ok &= sims[i].ok && sims[i].errors == 0;
        if (sims[i].errors > 0)
            printf("simulated terminals %d..%d: %lld errors (%s)\n", sims[i].from, sims[i].to - 1,
                   (long long)sims[i].errors, sims[i].why);
    }
    snprintf(url, sizeof url, "bench");
    for (int i = 0; i < 100; i++) { /* the last tick completes it */
        tms_campaign_info *ci = calloc(1, sizeof *ci);
        int done = tms_campaign_get(s.st, url, ci, NULL) == PX_OK &&
                   strcmp(ci->state, "completed") == 0;
        free(ci);
        if (done)
            break;
        sleep_ms(100);
    }
    installed = campaign_count(s.st, "installed");
    failed = campaign_count(s.st, "failed");
    {
        tms_campaign_info *ci = calloc(1, sizeof *ci);
        tms_campaign_get(s.st, "bench", ci, NULL);
        printf("campaign: %s in %.1f s: %lld installed, %lld failed (expected %d and %d)%s\n",
               ci->state, (px_mono_ms() - t0) / 1000.0, (long long)installed, (long long)failed,
               CAMPAIGN - CAMPAIGN / 50, CAMPAIGN / 50,
               ok && installed == CAMPAIGN - CAMPAIGN / 50 && failed == CAMPAIGN / 50 &&
                       strcmp(ci->state, "completed") == 0
                   ? ": exact"
                   : ": MISMATCH");
        ok &= installed == CAMPAIGN - CAMPAIGN / 50 && failed == CAMPAIGN / 50 &&
              strcmp(ci->state, "completed") == 0;
        free(ci);
    }
    stop_child(pd, SIGTERM);
    hsm_close(s.h);
    store_close(s.st);
    printf("{\"bench\":\"tms\",\"checkin_per_s\":%.0f,\"checkin_p99_ms\":%.2f,\"nginx_per_s\":%.0f,"
           "\"checkin_vs_nginx\":%.2f,\"download_mb_per_s\":%.0f,\"nginx_download_mb_per_s\":%.0f,"
           "\"download_vs_nginx\":%.2f}\n",
           ck.done / (double)SECONDS, p99_ms(&ck), nk.done / (double)SECONDS,
           nk.done > 0 ? (double)ck.done / (double)nk.done : 0, dl.bytes / 1e6 / SECONDS,
           nd.bytes / 1e6 / SECONDS, nd.bytes > 0 ? (double)dl.bytes / (double)nd.bytes : 0);
    free(ck.lat_us);
    free(nk.lat_us);
    free(dl.lat_us);
    free(nd.lat_us);
    if (getenv("POSSUM_BENCH_KEEP") == NULL) {
        char cmd[PX_PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_tms: could not remove %s\n", dir);
    }
    return ok ? 0 : 1;
}
