/*
 * harness.h: end-to-end tests run the real possumd on free ports (port 0, read back from
 * --ports-file) with a temporary directory for its store and log, and talk to it over real
 * sockets.
 */
#ifndef PX_E2E_HARNESS_H
#define PX_E2E_HARNESS_H

#include <stddef.h>
#include <sys/types.h>
#include "lib/buf.h"

typedef struct e2e_daemon {
    pid_t pid;
    char dir[256]; /* temporary directory: possum.ini, possum.db, possumd.log, ports */
    char ini[512];
    char log[512];
    char ports[512];
    int switch_port;
    int http_port;
} e2e_daemon;

/* Path of a built program ("src/app/possumd") under POSSUM_BINARY_DIR. */
void e2e_binary(const char *rel, char *out, size_t outsz);

/* Write the config (core sections + extra_ini, which may be NULL), start possumd, wait
 * until every listener is announced. 0 or -1 (with the daemon's log on stderr). */
int e2e_start(e2e_daemon *d, const char *extra_ini);

/* Send sig (SIGTERM to drain) and wait up to timeout_ms; returns the exit status, or -1
 * (the daemon is then killed). Removes nothing: see e2e_cleanup. */
int e2e_stop(e2e_daemon *d, int sig, int timeout_ms);

void e2e_cleanup(e2e_daemon *d);

/* 1 if the daemon's log contains needle. */
int e2e_log_contains(const e2e_daemon *d, const char *needle);

/* Send sig to the child *pid and wait up to timeout_ms for it; then SIGKILL. Returns its exit
 * status (128 + signal when killed by one), or -1 when it had to be killed or *pid was not
 * running; *pid becomes 0. Every harness (e2e, switch, keyload) stops its daemons this way. */
int e2e_child_stop(pid_t *pid, int sig, int timeout_ms);

/* 1 if the file at path contains needle (read whole, up to 64 MiB). */
int e2e_file_contains(const char *path, const char *needle);

/* HTTP request to 127.0.0.1:port with libcurl; status and body out. 0 or -1. */
int e2e_http(int port, const char *method, const char *path, const char *body, long *status,
             px_buf *out);

/* Run a shell command, capture stdout+stderr into out; returns the exit status. */
int e2e_run(const char *cmd, px_buf *out);

/* A loopback TCP port nothing listens on, for a listener that others must know before it
 * starts (-1 if none found). Picked below Linux's ephemeral range (32768-60999), so that
 * port-0 listeners and outgoing connections of tests running beside it cannot take it in
 * the meantime. */
int e2e_free_port(void);

#endif
