#include "lib/config.h"
#include "lib/limits.h"
#include "lib/str.h"

#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct px_config_entry {
    char section[PX_CONFIG_NAME_MAX];
    char key[PX_CONFIG_NAME_MAX];
    char *value;
    int line;
    int used;
} px_config_entry;

struct px_config {
    char path[PX_PATH_MAX];
    px_config_entry *entries;
    size_t n;
    char sections[PX_CONFIG_ENTRIES_MAX][PX_CONFIG_NAME_MAX];
    size_t nsections;
    /* parse state */
    int line;
    px_error *err;
    const char *text_pos; /* for string sources */
};

static void note_section(px_config *c, const char *section)
{
    for (size_t i = 0; i < c->nsections; i++)
        if (strcmp(c->sections[i], section) == 0)
            return;
    if (c->nsections < PX_CONFIG_ENTRIES_MAX)
        px_strlcpy(c->sections[c->nsections++], section, PX_CONFIG_NAME_MAX);
}

static int on_entry(void *user, const char *section, const char *key, const char *value)
{
    px_config *c = user;
    px_config_entry *ent;
    if (key == NULL) { /* inih >= 50 reports a bare section header this way */
        note_section(c, section);
        return 1;
    }
    if (c->n >= PX_CONFIG_ENTRIES_MAX) {
        px_error_set(c->err, PX_ETOOBIG, "%s:%d: more than %d entries", c->path, c->line,
                     PX_CONFIG_ENTRIES_MAX);
        return 0;
    }
    if (strlen(section) >= PX_CONFIG_NAME_MAX || strlen(key) >= PX_CONFIG_NAME_MAX ||
        strlen(value) >= PX_CONFIG_VALUE_MAX) {
        px_error_set(c->err, PX_ETOOBIG, "%s:%d: [%.32s] %.32s: name or value too long", c->path,
                     c->line, section, key);
        return 0;
    }
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->entries[i].section, section) == 0 && strcmp(c->entries[i].key, key) == 0) {
            px_error_set(c->err, PX_ECONFIG, "%s:%d: [%s] %s: set twice (first on line %d)",
                         c->path, c->line, section, key, c->entries[i].line);
            return 0;
        }
    note_section(c, section);
    ent = &c->entries[c->n];
    memset(ent, 0, sizeof *ent);
    px_strlcpy(ent->section, section, sizeof ent->section);
    px_strlcpy(ent->key, key, sizeof ent->key);
    ent->value = strdup(value);
    if (ent->value == NULL)
        return 0;
    ent->line = c->line;
    c->n++;
    return 1;
}

static char *read_file_line(char *str, int num, void *stream)
{
    px_config *c = stream;
    FILE *f = (FILE *)(void *)c->text_pos;
    char *r = fgets(str, num, f);
    if (r != NULL)
        c->line++;
    return r;
}

static char *read_string_line(char *str, int num, void *stream)
{
    px_config *c = stream;
    const char *p = c->text_pos, *nl;
    size_t n;
    if (p == NULL || *p == 0)
        return NULL;
    nl = strchr(p, '\n');
    n = nl ? (size_t)(nl - p) + 1 : strlen(p);
    if (n > (size_t)num - 1)
        n = (size_t)num - 1;
    memcpy(str, p, n);
    str[n] = 0;
    c->text_pos = p + n;
    c->line++;
    return str;
}

static int config_new(const char *name, px_config **out)
{
    px_config *c = calloc(1, sizeof *c);
    if (c == NULL)
        return PX_ENOMEM;
    c->entries = calloc(PX_CONFIG_ENTRIES_MAX, sizeof *c->entries);
    if (c->entries == NULL) {
        free(c);
        return PX_ENOMEM;
    }
    px_strlcpy(c->path, name, sizeof c->path);
    *out = c;
    return PX_OK;
}

static int config_parse(px_config *c, ini_reader reader, void *stream, px_error *e)
{
    int rc;
    px_error local = {0};
    c->err = e ? e : &local;
    c->err->code = 0;
    rc = ini_parse_stream(reader, stream, on_entry, c);
    if (c->err->code != 0)
        return c->err->code;
    if (rc > 0)
        return px_error_set(e, PX_ECONFIG,
                            "%s:%d: syntax error (expected [section] or key = value)", c->path, rc);
    if (rc < 0)
        return px_error_set(e, PX_EIO, "%s: cannot read", c->path);
    return PX_OK;
}

int px_config_load_file(const char *path, px_config **out, px_error *e)
{
    px_config *c;
    FILE *f;
    int rc;
    f = fopen(path, "r");
    if (f == NULL)
        return px_error_set(e, PX_EIO, "%s: cannot open config file", path);
    rc = config_new(path, &c);
    if (rc != PX_OK) {
        fclose(f);
        return px_error_set(e, rc, "%s: out of memory", path);
    }
    c->text_pos = (const char *)(void *)f;
    rc = config_parse(c, read_file_line, c, e);
    fclose(f);
    c->text_pos = NULL;
    if (rc != PX_OK) {
        px_config_free(c);
        return rc;
    }
    *out = c;
    return PX_OK;
}

int px_config_load_string(const char *text, const char *name, px_config **out, px_error *e)
{
    px_config *c;
    int rc = config_new(name, &c);
    if (rc != PX_OK)
        return px_error_set(e, rc, "%s: out of memory", name);
    c->text_pos = text;
    rc = config_parse(c, read_string_line, c, e);
    c->text_pos = NULL;
    if (rc != PX_OK) {
        px_config_free(c);
        return rc;
    }
    *out = c;
    return PX_OK;
}

void px_config_free(px_config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->entries[i].value);
    free(c->entries);
    free(c);
}

const char *px_config_path(const px_config *c)
{
    return c->path;
}

int px_config_has_section(const px_config *c, const char *section)
{
    for (size_t i = 0; i < c->nsections; i++)
        if (strcmp(c->sections[i], section) == 0)
            return 1;
    return 0;
}

const char *px_config_section_at(const px_config *c, size_t i)
{
    return i < c->nsections ? c->sections[i] : NULL;
}

static px_config_entry *find(const px_config *c, const char *section, const char *key)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->entries[i].section, section) == 0 && strcmp(c->entries[i].key, key) == 0)
            return &c->entries[i];
    return NULL;
}

const char *px_config_get(px_config *c, const char *section, const char *key)
{
    px_config_entry *ent = find(c, section, key);
    if (ent == NULL)
        return NULL;
    ent->used = 1;
    return ent->value;
}

int px_config_line(const px_config *c, const char *section, const char *key)
{
    px_config_entry *ent = find(c, section, key);
    return ent ? ent->line : 0;
}

/* Store one textual value into its field; reason on failure (no location). */
static int set_field(const px_config_field *f, const char *v, void *out, const char **why)
{
    char *p = (char *)out + f->offset;
    int64_t i64;
    int b, port;
    char host[256];
    switch (f->type) {
    case PX_CFG_STRING:
        if (strlen(v) >= f->size)
            return *why = "value too long", PX_ETOOBIG;
        px_strlcpy(p, v, f->size);
        return PX_OK;
    case PX_CFG_HOSTPORT:
        if (px_parse_hostport(v, host, sizeof host, &port) != PX_OK)
            return *why = "expected host:port with a port of 0-65535", PX_ECONFIG;
        if (strlen(v) >= f->size)
            return *why = "value too long", PX_ETOOBIG;
        px_strlcpy(p, v, f->size);
        return PX_OK;
    case PX_CFG_INT:
        switch (px_parse_i64(v, f->min, f->max, &i64)) {
        case PX_OK: memcpy(p, &i64, sizeof i64); return PX_OK;
        case PX_ERANGE: return *why = "number out of range", PX_ERANGE;
        default: return *why = "expected a whole number", PX_ECONFIG;
        }
    case PX_CFG_BOOL:
        if (px_parse_bool(v, &b) != PX_OK)
            return *why = "expected true or false", PX_ECONFIG;
        memcpy(p, &b, sizeof b);
        return PX_OK;
    case PX_CFG_ENUM:
        for (int k = 0; f->choices[k] != NULL; k++)
            if (strcmp(f->choices[k], v) == 0) {
                memcpy(p, &k, sizeof k);
                return PX_OK;
            }
        return *why = "not one of the allowed values", PX_ECONFIG;
    }
    return *why = "unknown field type", PX_EINTERNAL;
}

int px_config_bind(px_config *c, const char *section, const px_config_field *fields, size_t nfields,
                   void *out, px_error *e)
{
    for (size_t i = 0; i < nfields; i++) {
        const px_config_field *f = &fields[i];
        px_config_entry *ent = find(c, section, f->key);
        const char *why = NULL;
        const char *v = ent ? ent->value : f->def;
        int rc;
        if (v == NULL) {
            if (f->required)
                return px_error_set(e, PX_ECONFIG, "%s: [%s] %s: required but missing", c->path,
                                    section, f->key);
            continue;
        }
        rc = set_field(f, v, out, &why);
        if (rc != PX_OK) {
            if (ent == NULL)
                return px_error_set(e, PX_EINTERNAL, "[%s] %s: bad default: %s", section, f->key,
                                    why);
            if (f->type == PX_CFG_ENUM) {
                char list[256] = "";
                size_t o = 0;
                for (int k = 0; f->choices[k] && o < sizeof list - 1; k++)
                    o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", k ? ", " : "",
                                          f->choices[k]);
                return px_error_set(e, rc, "%s:%d: [%s] %s: '%s' %s (%s)", c->path, ent->line,
                                    section, f->key, ent->value, why, list);
            }
            if (f->type == PX_CFG_INT)
                return px_error_set(e, rc, "%s:%d: [%s] %s: %s (%lld..%lld)", c->path, ent->line,
                                    section, f->key, why, (long long)f->min, (long long)f->max);
            return px_error_set(e, rc, "%s:%d: [%s] %s: %s", c->path, ent->line, section, f->key,
                                why);
        }
        if (ent != NULL)
            ent->used = 1;
    }
    return PX_OK;
}

int px_config_check_unused(const px_config *c, const char *const *ignore, px_error *e)
{
    for (size_t i = 0; i < c->n; i++) {
        const px_config_entry *ent = &c->entries[i];
        int skip = 0;
        for (size_t k = 0; ignore != NULL && ignore[k] != NULL; k++)
            if (strcmp(ignore[k], ent->section) == 0)
                skip = 1;
        if (!skip && !ent->used)
            return px_error_set(e, PX_ECONFIG, "%s:%d: [%s] %s: unknown key", c->path, ent->line,
                                ent->section, ent->key);
    }
    return PX_OK;
}
