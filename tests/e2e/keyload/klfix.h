/*
 * klfix.h: a small harness for the keyload end-to-end tests: several possumd nodes (the
 * MTMS, customers' KMSes) each with its own config, store and log, started on port 0 and
 * found through --ports-file; the real `possum` CLI run as a child.
 */
#ifndef PX_KLFIX_H
#define PX_KLFIX_H

#include <stddef.h>
#include <sys/types.h>

#include "lib/buf.h"
#include "lib/limits.h"

typedef struct kl_node {
    pid_t pid;
    char name[32];
    char dir[PX_PATH_MAX];
    char ini[PX_PATH_MAX];
    char log[PX_PATH_MAX];
    char ports[PX_PATH_MAX];
} kl_node;

/* Write dir/NAME.ini with text (the directory must exist). */
int kl_node_config(kl_node *n, const char *dir, const char *name, const char *ini_text);
/* Start possumd on n's config; wait until every listener in `names` (NULL-ended, e.g.
 * "mtms", "http") is in the ports file. 0 or -1 (the log is printed). */
int kl_node_start(kl_node *n, const char *const *names);
/* Stop with sig (SIGTERM drains) within timeout_ms; the exit status or -1. */
int kl_node_stop(kl_node *n, int sig, int timeout_ms);
/* The port announced as name, or -1. */
int kl_node_port(const kl_node *n, const char *name);
int kl_node_log_has(const kl_node *n, const char *needle);
void kl_node_dump(const kl_node *n);

/* Run a shell command line (stdout and stderr into out, may be NULL); the exit status.
 * "possum" at the start of the line is the built binary. */
int kl_sh(px_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The value after "key: " on a line of text, into val. 0 or -1. */
int kl_field(const char *text, const char *key, char *val, size_t valsz);

#endif
