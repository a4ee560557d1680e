/* klfix.c: see klfix.h. */
#include "klfix.h"
#include "harness.h"
#include "lib/str.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int kl_node_config(kl_node *n, const char *dir, const char *name, const char *ini_text)
{
    FILE *f;
    memset(n, 0, sizeof *n);
    snprintf(n->name, sizeof n->name, "%s", name);
    snprintf(n->dir, sizeof n->dir, "%s", dir);
    snprintf(n->ini, sizeof n->ini, "%s/%s.ini", dir, name);
    snprintf(n->log, sizeof n->log, "%s/%s.log", dir, name);
    snprintf(n->ports, sizeof n->ports, "%s/%s.ports", dir, name);
    f = fopen(n->ini, "w");
    if (f == NULL)
        return -1;
    fputs(ini_text, f);
    return fclose(f) == 0 ? 0 : -1;
}

int kl_node_port(const kl_node *n, const char *name)
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

void kl_node_dump(const kl_node *n)
{
    char cmd[PX_PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "cat '%s' >&2", n->log);
    if (system(cmd) != 0)
        fprintf(stderr, "(no log %s)\n", n->log);
}

int kl_node_start(kl_node *n, const char *const *names)
{
    char exe[PX_PATH_MAX];
    unlink(n->ports);
    e2e_binary("src/app/possumd", exe, sizeof exe);
    n->pid = fork();
    if (n->pid < 0)
        return -1;
    if (n->pid == 0) {
        if (freopen(n->log, "a", stderr) == NULL)
            _exit(127);
        execl(exe, "possumd", "-c", n->ini, "--ports-file", n->ports, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 600; i++) { /* 30 s: sanitizer builds start slowly */
        int status, all = 1;
        for (size_t k = 0; names[k] != NULL; k++)
            all = all && kl_node_port(n, names[k]) > 0;
        if (all)
            return 0;
        if (waitpid(n->pid, &status, WNOHANG) == n->pid) {
            n->pid = 0;
            kl_node_dump(n);
            return -1;
        }
        sleep_ms(50);
    }
    kl_node_dump(n);
    kl_node_stop(n, SIGKILL, 1000);
    return -1;
}

int kl_node_stop(kl_node *n, int sig, int timeout_ms)
{
    return e2e_child_stop(&n->pid, sig, timeout_ms);
}

int kl_node_log_has(const kl_node *n, const char *needle)
{
    return e2e_file_contains(n->log, needle);
}

int kl_sh(px_buf *out, const char *fmt, ...)
{
    char line[8192], cmd[8800], exe[PX_PATH_MAX];
    px_buf tmp;
    va_list ap;
    int rc;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    e2e_binary("src/app/possum", exe, sizeof exe);
    if (strncmp(line, "possum ", 7) == 0)
        snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", exe, line + 7);
    else
        snprintf(cmd, sizeof cmd, "%s 2>&1", line);
    px_buf_init(&tmp, 16 * 1024 * 1024);
    rc = e2e_run(cmd, out ? out : &tmp);
    if (getenv("POSSUM_E2E_VERBOSE"))
        fprintf(stderr, "$ %s\n%s[exit %d]\n", line, px_buf_str(out ? out : &tmp), rc);
    px_buf_free(&tmp);
    return rc;
}

int kl_field(const char *text, const char *key, char *val, size_t valsz)
{
    size_t kl = strlen(key);
    const char *p = text;
    while (p != NULL && *p) {
        if (strncmp(p, key, kl) == 0 && p[kl] == ':') {
            const char *v = p + kl + 1;
            size_t n;
            while (*v == ' ')
                v++;
            n = strcspn(v, "\r\n");
            if (n >= valsz)
                return -1;
            memcpy(val, v, n);
            val[n] = 0;
            return 0;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -1;
}
