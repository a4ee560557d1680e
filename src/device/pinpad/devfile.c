/* devfile.c: crash-safe file replacement and bounded reads for terminal state and keys. */
#include "device/pinpad/devfile.h"
#include "lib/limits.h"
#include "lib/str.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* fsync the directory holding path so the rename itself is durable (POSIX rename(2)). */
static int sync_parent(const char *path)
{
    char dir[PX_PATH_MAX];
    char *slash;
    int fd, rc;
    if (px_strlcpy(dir, path, sizeof dir) != PX_OK)
        return -1;
    slash = strrchr(dir, '/');
    if (slash == NULL)
        px_strlcpy(dir, ".", sizeof dir);
    else if (slash == dir)
        dir[1] = 0;
    else
        *slash = 0;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

int devfile_write_atomic(const char *path, const void *data, size_t n, mode_t mode, px_error *e)
{
    char tmp[PX_PATH_MAX];
    int fd, saved;
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return px_error_set(e, PX_ETOOBIG, "%s: path too long", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return px_error_set(e, PX_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    if (write_all(fd, data, n) != 0 || fsync(fd) != 0) {
        saved = errno;
        close(fd);
        unlink(tmp);
        return px_error_set(e, PX_EIO, "%s: cannot write: %s", tmp, strerror(saved));
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        saved = errno;
        unlink(tmp);
        return px_error_set(e, PX_EIO, "%s: cannot replace: %s", path, strerror(saved));
    }
    if (sync_parent(path) != 0)
        return px_error_set(e, PX_EIO, "%s: cannot sync its directory: %s", path, strerror(errno));
    return PX_OK;
}

int devfile_read(const char *path, px_buf *out, px_error *e)
{
    uint8_t chunk[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = PX_OK;
    if (fd < 0)
        return px_error_set(e, errno == ENOENT ? PX_ENOTFOUND : PX_EIO, "%s: cannot open: %s", path,
                            strerror(errno));
    px_buf_reset(out);
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = px_error_set(e, PX_EIO, "%s: cannot read: %s", path, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        if (px_buf_append(out, chunk, (size_t)r) != PX_OK) {
            rc = px_error_set(e, PX_ETOOBIG, "%s: larger than %zu bytes", path, out->max);
            break;
        }
    }
    memset(chunk, 0, sizeof chunk);
    close(fd);
    return rc;
}

int devfile_mkdirs(const char *dir, mode_t mode, px_error *e)
{
    char p[PX_PATH_MAX];
    if (px_strlcpy(p, dir, sizeof p) != PX_OK || p[0] == 0)
        return px_error_set(e, PX_EINVAL, "directory path empty or too long");
    for (char *s = p + 1;; s++) {
        char c = *s;
        if (c != '/' && c != 0)
            continue;
        *s = 0;
        if (mkdir(p, mode) != 0 && errno != EEXIST)
            return px_error_set(e, PX_EIO, "%s: cannot create: %s", p, strerror(errno));
        *s = c;
        if (c == 0)
            break;
    }
    return PX_OK;
}

int devfile_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}
