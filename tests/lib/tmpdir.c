#define _XOPEN_SOURCE 700 /* nftw */
#include "tmpdir.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/err.h"

int testlib_mkdtemp(const char *prefix, char *out, size_t outsz)
{
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(out, outsz, "%s/possum-%s.XXXXXX", tmp && tmp[0] ? tmp : "/tmp", prefix);
    if (n < 0 || (size_t)n >= outsz)
        return PX_ETOOBIG;
    return mkdtemp(out) != NULL ? PX_OK : PX_EIO;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void testlib_rmtree(const char *dir)
{
    if (dir != NULL && dir[0] != 0)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
