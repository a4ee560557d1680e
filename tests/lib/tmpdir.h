/* tmpdir.h: private temporary directories for tests. */
#ifndef PX_TESTLIB_TMPDIR_H
#define PX_TESTLIB_TMPDIR_H

#include <stddef.h>

/* mkdtemp under $TMPDIR (else /tmp) named possum-PREFIX.XXXXXX; 0 or a negative px_err. */
int testlib_mkdtemp(const char *prefix, char *out, size_t outsz);

/* rm -rf dir (no symlinks followed). */
void testlib_rmtree(const char *dir);

#endif
