/*
 * config.h: INI configuration (inih), validated into structs by schema.
 * Load a file once; each module binds its own [section] with a table of fields. Every error
 * names the file, the line and the key: "etc/possum.ini:12: [switch] listen: bad port".
 */
#ifndef PX_CONFIG_H
#define PX_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include "lib/err.h"

typedef struct px_config px_config;

typedef enum px_config_type {
    PX_CFG_STRING,   /* char[size] at offset */
    PX_CFG_INT,      /* int64_t at offset, within [min, max] */
    PX_CFG_BOOL,     /* int at offset: 0 or 1 */
    PX_CFG_HOSTPORT, /* char[size] at offset, checked as host:port */
    PX_CFG_ENUM      /* int at offset: index into choices (NULL-terminated) */
} px_config_type;

typedef struct px_config_field {
    const char *key;
    px_config_type type;
    size_t offset;              /* offsetof(struct, member) */
    size_t size;                /* for strings: sizeof member */
    int64_t min, max;           /* for integers */
    const char *def;            /* default as text, NULL = none */
    int required;               /* 1: error when absent and no default */
    const char *const *choices; /* for enums */
} px_config_field;

/* clang-format off */
#define PX_CFG_STR(st, m, k, d)        {k, PX_CFG_STRING, offsetof(st, m), sizeof(((st *)0)->m), 0, 0, d, 0, NULL}
#define PX_CFG_STR_REQ(st, m, k)       {k, PX_CFG_STRING, offsetof(st, m), sizeof(((st *)0)->m), 0, 0, NULL, 1, NULL}
#define PX_CFG_INT_(st, m, k, lo, hi, d) {k, PX_CFG_INT, offsetof(st, m), sizeof(((st *)0)->m), lo, hi, d, 0, NULL}
#define PX_CFG_BOOL_(st, m, k, d)      {k, PX_CFG_BOOL, offsetof(st, m), sizeof(int), 0, 1, d, 0, NULL}
#define PX_CFG_ADDR(st, m, k, d)       {k, PX_CFG_HOSTPORT, offsetof(st, m), sizeof(((st *)0)->m), 0, 0, d, 0, NULL}
#define PX_CFG_ENUM_(st, m, k, ch, d)  {k, PX_CFG_ENUM, offsetof(st, m), sizeof(int), 0, 0, d, 0, ch}
/* clang-format on */

int px_config_load_file(const char *path, px_config **out, px_error *e);
int px_config_load_string(const char *text, const char *name, px_config **out, px_error *e);
void px_config_free(px_config *c);

/* Path the config was loaded from, and its directory (relative paths resolve against it). */
const char *px_config_path(const px_config *c);

int px_config_has_section(const px_config *c, const char *section);
/* Raw value, or NULL. Marks it used. */
const char *px_config_get(px_config *c, const char *section, const char *key);
/* Line of a key (0 if absent), for messages of the caller's own checks. */
int px_config_line(const px_config *c, const char *section, const char *key);

/* Fill out from [section] per fields (defaults first). Marks keys used. */
int px_config_bind(px_config *c, const char *section, const px_config_field *fields, size_t nfields,
                   void *out, px_error *e);

/* After every module has bound its sections: the first key nobody used is an error
 * ("unknown key"), so typos never pass silently. Sections in `ignore` are skipped. */
int px_config_check_unused(const px_config *c, const char *const *ignore, px_error *e);

/* Iterate section names in file order; returns NULL past the end. */
const char *px_config_section_at(const px_config *c, size_t i);

#endif
