#include "harness.h"
#include "lib/str.h"
#include "lib/time.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <signal.h>
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

void e2e_binary(const char *rel, char *out, size_t outsz)
{
    const char *bin = getenv("POSSUM_BINARY_DIR");
    snprintf(out, outsz, "%s/%s", bin ? bin : "build", rel);
}

static int write_ini(const e2e_daemon *d, const char *extra)
{
    FILE *f = fopen(d->ini, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "[possumd]\nnode = e2e\nlog_level = debug\ndrain_timeout_ms = 3000\n\n"
            "[store]\nbackend = sqlite\npath = %s/possum.db\n\n"
            "[http]\nlisten = 127.0.0.1:0\n\n"
            "[switch]\nenabled = true\nlisten = 127.0.0.1:0\nmax_frame = 4096\n"
            "idle_timeout_ms = 30000\n\n%s\n",
            d->dir, extra ? extra : "");
    return fclose(f);
}

/* Read NAME=HOST:PORT lines; 1 when both listeners are there. */
static int read_ports(e2e_daemon *d)
{
    char line[256];
    FILE *f = fopen(d->ports, "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL) {
        char *colon = strrchr(line, ':');
        int64_t port;
        if (colon == NULL)
            continue;
        colon[strcspn(colon, "\r\n")] = 0;
        if (px_parse_i64(colon + 1, 1, 65535, &port) != 0)
            continue;
        if (strncmp(line, "switch=", 7) == 0)
            d->switch_port = (int)port;
        else if (strncmp(line, "http=", 5) == 0)
            d->http_port = (int)port;
    }
    fclose(f);
    return d->switch_port > 0 && d->http_port > 0;
}

static void dump_log(const e2e_daemon *d)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "cat '%s' >&2", d->log);
    if (system(cmd) != 0)
        fprintf(stderr, "(no log)\n");
}

int e2e_start(e2e_daemon *d, const char *extra_ini)
{
    char exe[512];
    memset(d, 0, sizeof *d);
    snprintf(d->dir, sizeof d->dir, "/tmp/possum-e2e-XXXXXX");
    if (mkdtemp(d->dir) == NULL)
        return -1;
    snprintf(d->ini, sizeof d->ini, "%s/possum.ini", d->dir);
    snprintf(d->log, sizeof d->log, "%s/possumd.log", d->dir);
    snprintf(d->ports, sizeof d->ports, "%s/ports", d->dir);
    if (write_ini(d, extra_ini) != 0)
        return -1;
    e2e_binary("src/app/possumd", exe, sizeof exe);
    d->pid = fork();
    if (d->pid < 0)
        return -1;
    if (d->pid == 0) {
        if (freopen(d->log, "w", stderr) == NULL)
            _exit(127);
        execl(exe, "possumd", "-c", d->ini, "--ports-file", d->ports, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 400; i++) { /* up to 20 s: sanitizer builds start slowly */
        int status;
        if (read_ports(d))
            return 0;
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            d->pid = 0;
            dump_log(d);
            return -1;
        }
        sleep_ms(50);
    }
    dump_log(d);
    e2e_stop(d, SIGKILL, 1000);
    return -1;
}

int e2e_child_stop(pid_t *pid, int sig, int timeout_ms)
{
    int status = 0;
    if (*pid <= 0)
        return -1;
    kill(*pid, sig);
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        if (waitpid(*pid, &status, WNOHANG) == *pid) {
            *pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        sleep_ms(20);
    }
    kill(*pid, SIGKILL);
    waitpid(*pid, &status, 0);
    *pid = 0;
    return -1;
}

int e2e_stop(e2e_daemon *d, int sig, int timeout_ms)
{
    return e2e_child_stop(&d->pid, sig, timeout_ms);
}

void e2e_cleanup(e2e_daemon *d)
{
    char cmd[400];
    if (d->pid > 0)
        e2e_stop(d, SIGKILL, 1000);
    if (d->dir[0] == 0 || getenv("POSSUM_E2E_KEEP") != NULL)
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", d->dir);
}

int e2e_file_contains(const char *path, const char *needle)
{
    px_buf b;
    char chunk[4096];
    size_t n;
    int found;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    px_buf_init(&b, 64 * 1024 * 1024);
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (px_buf_append(&b, chunk, n) != 0)
            break;
    fclose(f);
    found = strstr(px_buf_str(&b), needle) != NULL;
    px_buf_free(&b);
    return found;
}

int e2e_log_contains(const e2e_daemon *d, const char *needle)
{
    return e2e_file_contains(d->log, needle);
}

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
    return px_buf_append(user, p, size * n) == 0 ? size * n : 0;
}

int e2e_http(int port, const char *method, const char *path, const char *body, long *status,
             px_buf *out)
{
    char url[512];
    CURL *c = curl_easy_init();
    CURLcode rc;
    struct curl_slist *hdr = NULL;
    if (c == NULL)
        return -1;
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    if (body != NULL) {
        hdr = curl_slist_append(hdr, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    return rc == CURLE_OK ? 0 : -1;
}

int e2e_run(const char *cmd, px_buf *out)
{
    char chunk[4096];
    size_t n;
    int status;
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        (void)px_buf_append(out, chunk, n);
    status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int e2e_free_port(void)
{
    static unsigned seed;
    struct sockaddr_in a;
    if (seed == 0)
        seed = (unsigned)getpid() ^ (unsigned)px_now_ms();
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < 200; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
        if (fd < 0)
            return -1;
        a.sin_port = htons((uint16_t)(20000 + rand_r(&seed) % 12000));
        ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok)
            return ntohs(a.sin_port);
    }
    return -1;
}
