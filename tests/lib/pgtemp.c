/* pgtemp.c: see pgtemp.h. Drives scripts/pg-temp.sh, found through $POSSUM_SOURCE_DIR or
 * the source directory compiled in. */
#include "pgtemp.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/str.h"
#include "tmpdir.h"

static void script_path(char *out, size_t outsz)
{
    const char *src = getenv("POSSUM_SOURCE_DIR");
    snprintf(out, outsz, "%s/scripts/pg-temp.sh", src && src[0] ? src : PX_SOURCE_DIR);
}

int pgtemp_is_available(void)
{
    const char *bin = getenv("PGBIN");
    char path[PX_PATH_MAX];
    FILE *p;
    if (bin != NULL && bin[0] != 0) {
        snprintf(path, sizeof path, "%s/initdb", bin);
        return access(path, X_OK) == 0;
    }
    p = popen("ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null", "r");
    if (p == NULL)
        return 0;
    path[0] = 0;
    if (fgets(path, sizeof path, p) == NULL)
        path[0] = 0;
    pclose(p);
    return path[0] != 0;
}

/* The port out of "host=127.0.0.1 port=N ...". */
static int parse_port(const char *conninfo)
{
    const char *p = strstr(conninfo, "port=");
    int port = 0;
    for (p = p ? p + 5 : ""; isdigit((unsigned char)*p) && port < 65536; p++)
        port = port * 10 + (*p - '0');
    return port;
}

int pgtemp_start(pgtemp *pg, px_error *e)
{
    char script[PX_PATH_MAX], cmd[3 * PX_PATH_MAX];
    FILE *p;
    int status;
    memset(pg, 0, sizeof *pg);
    if (testlib_mkdtemp("pg", pg->dir, sizeof pg->dir) != PX_OK)
        return px_error_set(e, PX_EIO, "pgtemp: cannot make a temporary directory");
    chmod(pg->dir, 0755);
    script_path(script, sizeof script);
    snprintf(cmd, sizeof cmd, "bash '%s' start '%s' --owner-pid %ld", script, pg->dir,
             (long)getpid());
    p = popen(cmd, "r");
    if (p == NULL)
        return px_error_set(e, PX_EIO, "pgtemp: cannot run %s", script);
    if (fgets(pg->conninfo, sizeof pg->conninfo, p) == NULL)
        pg->conninfo[0] = 0;
    status = pclose(p);
    pg->conninfo[strcspn(pg->conninfo, "\n")] = 0;
    pg->running = 1; /* stop cleans up whatever part of the start happened */
    pg->port = parse_port(pg->conninfo);
    if (status != 0 || pg->port == 0) {
        pgtemp_stop(pg);
        return px_error_set(e, PX_EIO, "pgtemp: %s start failed (see its messages above)", script);
    }
    return PX_OK;
}

void pgtemp_stop(pgtemp *pg)
{
    char script[PX_PATH_MAX], cmd[3 * PX_PATH_MAX];
    if (pg == NULL || !pg->running)
        return;
    script_path(script, sizeof script);
    snprintf(cmd, sizeof cmd, "bash '%s' stop '%s'", script, pg->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "pgtemp: %s failed\n", cmd);
    pg->running = 0;
}

int pgtemp_create_db(pgtemp *pg, const char *name, char *out, size_t outsz, px_error *e)
{
    char sql[128];
    PGconn *c;
    PGresult *r;
    int ok;
    for (const char *q = name; *q; q++)
        if (!isalnum((unsigned char)*q) && *q != '_')
            return px_error_set(e, PX_EINVAL, "pgtemp: bad database name");
    if (strlen(name) > 63)
        return px_error_set(e, PX_EINVAL, "pgtemp: database name too long");
    c = PQconnectdb(pg->conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        px_error_set(e, PX_ENET, "pgtemp: %s", PQerrorMessage(c));
        PQfinish(c);
        return PX_ENET;
    }
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", name);
    r = PQexec(c, sql);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        px_error_set(e, PX_ESTORE, "pgtemp: %s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    if (!ok)
        return PX_ESTORE;
    snprintf(out, outsz, "host=127.0.0.1 port=%d user=possum dbname=%s", pg->port, name);
    return PX_OK;
}
