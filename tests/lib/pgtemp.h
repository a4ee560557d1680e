/*
 * pgtemp.h: a throwaway PostgreSQL cluster for tests (scripts/pg-temp.sh underneath).
 *
 *   pgtemp pg;
 *   if (pgtemp_start(&pg, &err) != PX_OK) ...;   // initdb + pg_ctl in a fresh temp dir
 *   ... connect with pg.conninfo, or pgtemp_create_db(&pg, "t1", ci, sizeof ci, &err) ...
 *   pgtemp_stop(&pg);                            // stops it and removes the directory
 *
 * Run as root, the server runs as the unprivileged user "postgres" (or $PG_TEMP_USER).
 * A watchdog removes the cluster if the test process dies without calling pgtemp_stop.
 */
#ifndef PX_TESTLIB_PGTEMP_H
#define PX_TESTLIB_PGTEMP_H

#include <stddef.h>

#include "lib/err.h"
#include "lib/limits.h"

typedef struct pgtemp {
    char dir[PX_PATH_MAX];
    char conninfo[PX_STORE_CONNINFO_MAX]; /* database "possum", user "possum" */
    int port;
    int running;
} pgtemp;

/* 1 when PostgreSQL server binaries are installed (initdb found). */
int pgtemp_is_available(void);

int pgtemp_start(pgtemp *pg, px_error *e);
void pgtemp_stop(pgtemp *pg); /* safe to call twice or after a failed start */

/* CREATE DATABASE name (letters, digits, _) and its conninfo into out. */
int pgtemp_create_db(pgtemp *pg, const char *name, char *out, size_t outsz, px_error *e);

#endif
