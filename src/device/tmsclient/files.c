/*
 * files.c: the updater's files: atomic writes (temporary file, fsync, rename, fsync of the
 * directory), bounded reads, hashing, and its state file DIR/tms/state:
 *   possum-tms-client 1
 *   timestamp-version N        the newest timestamp record seen (rollback and freeze guard)
 *   checkin LAST NEXT          last check-in and the next one due (ms)
 *   schedule PERIOD ANCHOR JITTER
 *   report CAMPAIGN STATUS NAME VERSION REASON...   not yet delivered, oldest first
 */
#include "device/tmsclient/tmsc_int.h"

#include "lib/str.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void tmsc_say(const tmsc_hooks *h, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    if (h == NULL || h->say == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    h->say(h->ud, line);
}

void tmsc_path(const tmsc_config *c, const char *rel, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/%s", c->data_dir, rel);
}

int tmsc_mkdirs(const char *path, px_error *e)
{
    char p[PX_PATH_MAX];
    if (px_strlcpy(p, path, sizeof p) != PX_OK)
        return px_error_set(e, PX_ETOOBIG, "%s: path too long", path);
    for (char *c = p + 1; *c; c++)
        if (*c == '/') {
            *c = 0;
            if (mkdir(p, 0700) != 0 && errno != EEXIST)
                return px_error_set(e, PX_EIO, "%s: %s", p, strerror(errno));
            *c = '/';
        }
    if (mkdir(p, 0700) != 0 && errno != EEXIST)
        return px_error_set(e, PX_EIO, "%s: %s", p, strerror(errno));
    return PX_OK;
}

int tmsc_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;
    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

int tmsc_write_file(const char *path, const void *data, size_t n, int mode, px_error *e)
{
    char tmp[PX_PATH_MAX + 8], dir[PX_PATH_MAX];
    const uint8_t *p = data;
    int fd;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return px_error_set(e, PX_EIO, "%s: %s", tmp, strerror(errno));
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int err = errno;
            close(fd);
            unlink(tmp);
            return px_error_set(e, PX_EIO, "%s: %s", tmp, strerror(err));
        }
        p += w;
        n -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return px_error_set(e, PX_EIO, "%s: %s", path, strerror(errno));
    }
    px_strlcpy(dir, path, sizeof dir);
    tmsc_fsync_dir(dirname(dir));
    return PX_OK;
}

int tmsc_read_file(const char *path, size_t max, px_buf *out, px_error *e)
{
    FILE *f = fopen(path, "rb");
    uint8_t buf[8192];
    size_t n;
    px_buf_reset(out);
    if (f == NULL)
        return px_error_set(e, errno == ENOENT ? PX_ENOTFOUND : PX_EIO, "%s: %s", path,
                            strerror(errno));
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (out->len + n > max || px_buf_append(out, buf, n) != PX_OK) {
            fclose(f);
            return px_error_set(e, PX_ETOOBIG, "%s: over %zu bytes", path, max);
        }
    }
    fclose(f);
    return PX_OK;
}

int tmsc_file_sha256(const char *path, char out[TUF_SHA256_HEX], int64_t *len, px_error *e)
{
    static const char hx[] = "0123456789abcdef";
    uint8_t buf[65536], dig[32];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *len = 0;
    if (fd < 0 || md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        if (fd >= 0)
            close(fd);
        EVP_MD_CTX_free(md);
        return px_error_set(e, PX_EIO, "%s: %s", path, strerror(errno));
    }
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        EVP_DigestUpdate(md, buf, (size_t)n);
        *len += n;
    }
    close(fd);
    EVP_DigestFinal_ex(md, dig, NULL);
    EVP_MD_CTX_free(md);
    if (n < 0)
        return px_error_set(e, PX_EIO, "%s: read failed", path);
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[dig[i] >> 4];
        out[2 * i + 1] = hx[dig[i] & 15];
    }
    out[64] = 0;
    return PX_OK;
}

/* ---- state ------------------------------------------------------------------------------ */

static int word(char **p, char *out, size_t outsz)
{
    size_t n;
    while (**p == ' ')
        (*p)++;
    n = strcspn(*p, " \n");
    if (n == 0 || n >= outsz)
        return 0;
    memcpy(out, *p, n);
    out[n] = 0;
    *p += n;
    return 1;
}

static int num(char **p, int64_t *v)
{
    char w[24];
    return word(p, w, sizeof w) && px_parse_i64(w, INT64_MIN + 1, INT64_MAX, v) == PX_OK;
}

int tmsc_state_load(const tmsc_config *c, tmsc_state *s, px_error *e)
{
    char path[PX_PATH_MAX + 16];
    px_buf b;
    char *p, *line;
    int rc, lineno = 0;
    memset(s, 0, sizeof *s);
    tmsc_path(c, "tms/state", path, sizeof path);
    px_buf_init(&b, 64 * 1024);
    rc = tmsc_read_file(path, 64 * 1024, &b, e);
    if (rc == PX_ENOTFOUND) {
        px_buf_free(&b);
        return PX_OK; /* a terminal that never checked in */
    }
    for (p = (char *)b.data; rc == PX_OK && p != NULL && *p; p = line) {
        char key[32];
        line = strchr(p, '\n');
        if (line != NULL)
            *line++ = 0;
        lineno++;
        if (!word(&p, key, sizeof key))
            continue;
        if (lineno == 1 && strcmp(key, "possum-tms-client") == 0)
            continue;
        if (strcmp(key, "timestamp-version") == 0 && num(&p, &s->timestamp_version))
            continue;
        if (strcmp(key, "checkin") == 0 && num(&p, &s->last_checkin_ms) &&
            num(&p, &s->next_checkin_ms))
            continue;
        if (strcmp(key, "schedule") == 0 && num(&p, &s->period_ms) && num(&p, &s->anchor_ms) &&
            num(&p, &s->jitter_ms))
            continue;
        if (strcmp(key, "report") == 0 && s->nreports < TMSC_REPORTS_MAX) {
            tmsc_report *r = &s->reports[s->nreports];
            if (word(&p, r->campaign, sizeof r->campaign) &&
                word(&p, r->status, sizeof r->status) && word(&p, r->name, sizeof r->name) &&
                word(&p, r->version, sizeof r->version)) {
                while (*p == ' ')
                    p++;
                px_strlcpy(r->reason, p, sizeof r->reason);
                s->nreports++;
                continue;
            }
        }
        rc = px_error_set(e, PX_EFORMAT, "%s:%d: unreadable (%s)", path, lineno, key);
    }
    px_buf_free(&b);
    return rc;
}

int tmsc_state_save(const tmsc_config *c, const tmsc_state *s, px_error *e)
{
    char path[PX_PATH_MAX + 16];
    px_buf b;
    int rc;
    px_buf_init(&b, 64 * 1024);
    rc = px_buf_printf(&b,
                       "possum-tms-client 1\ntimestamp-version %lld\ncheckin %lld %lld\n"
                       "schedule %lld %lld %lld\n",
                       (long long)s->timestamp_version, (long long)s->last_checkin_ms,
                       (long long)s->next_checkin_ms, (long long)s->period_ms,
                       (long long)s->anchor_ms, (long long)s->jitter_ms);
    for (size_t i = 0; rc == PX_OK && i < s->nreports; i++) {
        const tmsc_report *r = &s->reports[i];
        rc = px_buf_printf(&b, "report %s %s %s %s %s\n", r->campaign, r->status, r->name,
                           r->version, r->reason);
    }
    tmsc_path(c, "tms/state", path, sizeof path);
    if (rc == PX_OK)
        rc = tmsc_write_file(path, b.data, b.len, 0600, e);
    px_buf_free(&b);
    return rc;
}

void tmsc_state_queue(tmsc_state *s, const tmsc_offer *o, const char *status, const char *reason)
{
    tmsc_report *r;
    if (s->nreports == TMSC_REPORTS_MAX) {
        memmove(&s->reports[0], &s->reports[1], (TMSC_REPORTS_MAX - 1) * sizeof s->reports[0]);
        s->nreports--;
    }
    r = &s->reports[s->nreports++];
    memset(r, 0, sizeof *r);
    px_strlcpy(r->campaign, o->campaign, sizeof r->campaign);
    px_strlcpy(r->status, status, sizeof r->status);
    px_strlcpy(r->name, o->name, sizeof r->name);
    px_strlcpy(r->version, o->version, sizeof r->version);
    /* one printable line */
    for (size_t i = 0; reason != NULL && reason[i] && i + 1 < sizeof r->reason; i++)
        r->reason[i] = (reason[i] < 0x20 || reason[i] == 0x7f) ? ' ' : reason[i];
}
