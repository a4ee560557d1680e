/*
 * vectors.h: known-answer vectors for the crypto tests, read from tests/vectors/NAME.ini
 * (one section per vector, each with its `source`). Header-only, for test files only.
 */
#ifndef PX_TEST_CRYPTO_VECTORS_H
#define PX_TEST_CRYPTO_VECTORS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/config.h"
#include "lib/hex.h"
#include "lib/str.h"

static inline px_config *vec_open(const char *file)
{
    char path[PX_PATH_MAX];
    const char *dir = getenv("POSSUM_SOURCE_DIR");
    px_config *c = NULL;
    px_error e = {0};
    snprintf(path, sizeof path, "%s/tests/vectors/%s", dir != NULL ? dir : ".", file);
    if (px_config_load_file(path, &c, &e) != PX_OK)
        fail_msg("%s: %s", path, px_error_text(&e));
    return c;
}

/* A required value of a vector. */
static inline const char *vec_str(px_config *c, const char *sec, const char *key)
{
    const char *v = px_config_get(c, sec, key);
    if (v == NULL)
        fail_msg("vector [%s]: missing %s", sec, key);
    return v;
}

/* A required hex value, decoded into out; returns its length. */
static inline size_t vec_hex(px_config *c, const char *sec, const char *key, uint8_t *out,
                             size_t cap)
{
    size_t n = 0;
    if (px_hex_decode(vec_str(c, sec, key), out, cap, &n) != PX_OK)
        fail_msg("vector [%s]: %s is not hex or too long", sec, key);
    return n;
}

/* A required decimal value. */
static inline int64_t vec_int(px_config *c, const char *sec, const char *key)
{
    int64_t v = 0;
    if (px_parse_i64(vec_str(c, sec, key), INT64_MIN, INT64_MAX, &v) != PX_OK)
        fail_msg("vector [%s]: %s is not a number", sec, key);
    return v;
}

/* Fail with both values when bytes differ from the expected hex. */
static inline void assert_hex(const uint8_t *got, size_t n, const char *want, const char *what)
{
    char buf[2 * 512 + 1];
    if (n > 512)
        fail_msg("%s: value too long to compare", what);
    px_hex_encode(got, n, buf);
    if (strcmp(buf, want) != 0)
        fail_msg("%s: got %s, want %s", what, buf, want);
}

/* Iterate over the sections of c whose name starts with prefix. */
#define VEC_EACH(c, sec, prefix)                                                                   \
    for (size_t vec_i_ = 0; ((sec) = px_config_section_at((c), vec_i_)) != NULL; vec_i_++)         \
        if (strncmp((sec), (prefix), strlen(prefix)) == 0)

#endif
