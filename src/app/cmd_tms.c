/*
 * possum tms: the terminal management system's operator commands (docs/tms.md):
 *   keygen                   an Ed25519 key pair for a metadata role (offline)
 *   root make | publish      a root record (who signs what); publish a signed one
 *   targets make             the targets record of a release, for offline signing
 *   sign                     add one key's signature to a record (offline, its own key file)
 *   package add | list       store a release: its file and its signed targets record
 *   terminal add | show | provision
 *   campaign create | start | pause | resume | status | list
 * The store and the HSM come from --config FILE ([store], [hsm], [tms] master_key) or --db
 * PATH; the LMK passphrase from POSSUM_LMK_PASSPHRASE or a prompt. Exit 0 ok, 1 failed,
 * 2 usage.
 */
#include "app/cli.h"
#include "app/cli_env.h"
#include "host/tms/tms.h"
#include "lib/str.h"
#include "lib/time.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char cmd_tms_summary[] =
    "terminal management: releases and their signed metadata, terminals, campaigns";

#define DEFAULT_CONFIG "etc/possum.ini"
/* clang-format off */
#define STORE_OPTS                                                                                 \
    {"config", 0, "configuration with [store] (and [hsm], [tms]); default etc/possum.ini", NULL},  \
    {"db", 0, "a SQLite database file instead of --config", NULL}
/* clang-format on */

static const cli_env_spec tms_env = {DEFAULT_CONFIG, "cli:tms", NULL};

/* The store (and with need_hsm the HSM) from --config or --db (cli_env.h). */
static int cli_open(cli_env *x, const cli_opt *opts, int need_hsm, px_error *e)
{
    cli_env_init(x, &tms_env);
    return cli_env_open(x, opts,
                        CLI_ENV_DB | CLI_ENV_STORE | CLI_ENV_HSM_CONFIG |
                            (need_hsm ? CLI_ENV_HSM : 0u),
                        e);
}

/* The TMS master key's label: [tms] master_key, else tms.master. */
static void master_key(const cli_env *x, char out[PX_HSM_LABEL_MAX])
{
    const char *v = x->ini != NULL ? px_config_get(x->ini, "tms", "master_key") : NULL;
    px_strlcpy(out, v != NULL ? v : "tms.master", PX_HSM_LABEL_MAX);
}

/* A whole text file (at most max bytes) into a malloc'd NUL-terminated buffer. */
static char *read_text(const char *path, size_t max, size_t *len, px_error *e)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;
    if (f == NULL) {
        px_error_set(e, PX_EIO, "%s: cannot open", path);
        return NULL;
    }
    buf = malloc(max + 1);
    n = buf != NULL ? fread(buf, 1, max + 1, f) : 0;
    fclose(f);
    if (buf == NULL || n > max) {
        free(buf);
        px_error_set(e, PX_ETOOBIG, "%s: over %zu bytes", path, max);
        return NULL;
    }
    buf[n] = 0;
    if (strlen(buf) != n) {
        free(buf);
        px_error_set(e, PX_EINVAL, "%s: not text (a NUL byte)", path);
        return NULL;
    }
    *len = n;
    return buf;
}

static int write_text(const char *path, const char *text, px_error *e)
{
    char tmp[PX_PATH_MAX + 8];
    FILE *f;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if ((f = fopen(tmp, "w")) == NULL)
        return px_error_set(e, PX_EIO, "%s: cannot write", tmp);
    fputs(text, f);
    fputc('\n', f);
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        return px_error_set(e, PX_EIO, "%s: cannot write", path);
    return PX_OK;
}

/* "a,b,c" into names (each valid); PX_EINVAL names the option. */
static int split_names(const char *s, char (*out)[PX_TMS_NAME_MAX], size_t max, size_t *n,
                       const char *opt, px_error *e)
{
    *n = 0;
    while (s != NULL && *s) {
        size_t k = strcspn(s, ",");
        if (*n >= max || k == 0 || k >= PX_TMS_NAME_MAX)
            return px_error_set(e, PX_EINVAL, "--%s: at most %zu comma-separated names", opt, max);
        memcpy(out[*n], s, k);
        out[*n][k] = 0;
        if (!tuf_name_is_valid(out[*n]))
            return px_error_set(e, PX_EINVAL, "--%s: \"%s\" is not a name", opt, out[*n]);
        (*n)++;
        s += k + (s[k] == ',');
    }
    return PX_OK;
}

static int fail_e(const px_error *e)
{
    return cli_fail("%s", px_error_text(e));
}

static int64_t days_ms(const cli_opt *opts, const char *name, int64_t def)
{
    int64_t d = def;
    if (cli_get(opts, name) != NULL && px_parse_i64(cli_get(opts, name), 1, 3650, &d) != PX_OK)
        return -1;
    return px_now_ms() + d * 86400000LL;
}

/* ---- keys and metadata (offline) ----------------------------------------------------------- */

static int tms_keygen(int argc, char **argv)
{
    cli_opt opts[] = {{"out", 0, "the private key file to create (mode 0600); FILE.pub too", NULL},
                      {0, 0, 0, 0}};
    uint8_t priv[TUF_PRIV_LEN], pub[TUF_PUB_LEN];
    char pubpath[PX_PATH_MAX + 8];
    tuf_key k;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL, "possum tms keygen --out FILE");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (cli_get(opts, "out") == NULL)
        return cli_usage_error("--out FILE is required");
    snprintf(pubpath, sizeof pubpath, "%s.pub", cli_get(opts, "out"));
    rc = tuf_keypair_generate(priv, pub, &e);
    if (rc == PX_OK)
        rc = tuf_private_key_write(cli_get(opts, "out"), priv, &e);
    OPENSSL_cleanse(priv, sizeof priv);
    if (rc == PX_OK)
        rc = tuf_public_key_write(pubpath, pub, &e);
    if (rc == PX_OK)
        rc = tuf_key_from_public(pub, &k, &e);
    if (rc != PX_OK)
        return fail_e(&e);
    printf("private key: %s (keep it offline, mode 0600)\npublic key:  %s\nkey id:      %s\n",
           cli_get(opts, "out"), pubpath, k.keyid);
    return CLI_OK;
}

/* Keys of one role from "a.pub,b.pub" into the root. */
static int role_keys(tuf_root *r, tuf_role_id rid, const char *files, const char *thr, px_error *e)
{
    tuf_role *role = &r->roles[rid];
    int64_t t = 1;
    while (files != NULL && *files) {
        char path[PX_PATH_MAX];
        size_t k = strcspn(files, ",");
        uint8_t pub[TUF_PUB_LEN];
        tuf_key key;
        size_t i;
        if (k >= sizeof path || role->nkeys >= PX_TMS_ROLE_KEYS_MAX)
            return px_error_set(e, PX_EINVAL, "%s keys: at most %d files", tuf_role_name(rid),
                                PX_TMS_ROLE_KEYS_MAX);
        memcpy(path, files, k);
        path[k] = 0;
        files += k + (files[k] == ',');
        if (tuf_public_key_read(path, pub, e) != PX_OK ||
            tuf_key_from_public(pub, &key, e) != PX_OK)
            return e->code;
        for (i = 0; i < r->nkeys && strcmp(r->keys[i].keyid, key.keyid) != 0; i++)
            ;
        if (i == r->nkeys) {
            if (r->nkeys >= PX_TMS_ROOT_KEYS_MAX)
                return px_error_set(e, PX_EINVAL, "at most %d keys", PX_TMS_ROOT_KEYS_MAX);
            r->keys[r->nkeys++] = key;
        }
        px_strlcpy(role->keyids[role->nkeys++], key.keyid, TUF_KEYID_HEX);
    }
    if (role->nkeys == 0)
        return px_error_set(e, PX_EINVAL, "--%s-keys: at least one public key file",
                            tuf_role_name(rid));
    if (thr != NULL && px_parse_i64(thr, 1, (int64_t)role->nkeys, &t) != PX_OK)
        return px_error_set(e, PX_EINVAL, "--%s-threshold: 1 to %zu", tuf_role_name(rid),
                            role->nkeys);
    role->threshold = t;
    return PX_OK;
}

static int tms_root_make(int argc, char **argv)
{
    cli_opt opts[] = {
        {"root-keys", 0, "public key files of the root role, comma-separated", NULL},
        {"root-threshold", 0, "signatures a root record needs (default 1)", NULL},
        {"targets-keys", 0, "public key files of the targets role", NULL},
        {"targets-threshold", 0, "signatures a targets record needs (default 1)", NULL},
        {"timestamp-keys", 0, "public key files of the timestamp role (online)", NULL},
        {"timestamp-threshold", 0, "default 1", NULL},
        {"version", 0, "the root version (default 1)", NULL},
        {"expires-days", 0, "valid for this many days (default 365)", NULL},
        {"out", 0, "the unsigned record to write", NULL},
        {0, 0, 0, 0}};
    tuf_root *r = calloc(1, sizeof *r);
    json_t *env;
    char *text = NULL;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL,
                       "possum tms root make --root-keys A.pub,... --targets-keys ... "
                       "--timestamp-keys ... --out root.json");
    if (r == NULL || rc != CLI_OK) {
        free(r);
        return rc < 0 ? CLI_OK : rc;
    }
    if (cli_get(opts, "out") == NULL) {
        free(r);
        return cli_usage_error("--out FILE is required");
    }
    r->version = 1;
    if (cli_get(opts, "version") != NULL &&
        px_parse_i64(cli_get(opts, "version"), 1, INT32_MAX, &r->version) != PX_OK)
        rc = px_error_set(&e, PX_EINVAL, "--version: a positive number");
    if (rc == PX_OK && (r->expires_ms = days_ms(opts, "expires-days", 365)) < 0)
        rc = px_error_set(&e, PX_EINVAL, "--expires-days: 1 to 3650");
    if (rc == PX_OK)
        rc = role_keys(r, TUF_ROLE_ROOT, cli_get(opts, "root-keys"),
                       cli_get(opts, "root-threshold"), &e);
    if (rc == PX_OK)
        rc = role_keys(r, TUF_ROLE_TARGETS, cli_get(opts, "targets-keys"),
                       cli_get(opts, "targets-threshold"), &e);
    if (rc == PX_OK)
        rc = role_keys(r, TUF_ROLE_TIMESTAMP, cli_get(opts, "timestamp-keys"),
                       cli_get(opts, "timestamp-threshold"), &e);
    if (rc == PX_OK) {
        env = json_pack("{s:o, s:[]}", "signed", tuf_root_build(r), "signatures");
        text = env != NULL ? json_dumps(env, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
        json_decref(env);
        rc = text != NULL ? write_text(cli_get(opts, "out"), text, &e)
                          : px_error_set(&e, PX_ENOMEM, "out of memory");
    }
    free(text);
    if (rc == PX_OK)
        printf("root version %lld written to %s (unsigned: sign it with %lld root keys: possum tms "
               "sign --key ROOTKEY %s)\n",
               (long long)r->version, cli_get(opts, "out"),
               (long long)r->roles[TUF_ROLE_ROOT].threshold, cli_get(opts, "out"));
    free(r);
    return rc == PX_OK ? CLI_OK : fail_e(&e);
}

static int tms_targets_make(int argc, char **argv)
{
    cli_opt opts[] = {{"name", 0, "the package name (e.g. pos-app)", NULL},
                      {"version", 0, "MAJOR[.MINOR[.PATCH]]", NULL},
                      {"kind", 0, "app or params", NULL},
                      {"models", 0, "terminal models it fits, comma-separated", NULL},
                      {"file", 0, "the package file", NULL},
                      {"expires-days", 0, "valid for this many days (default 365)", NULL},
                      {"out", 0, "the unsigned record to write", NULL},
                      {0, 0, 0, 0}};
    tuf_target t;
    FILE *f;
    json_t *env;
    char *text = NULL;
    uint8_t buf[65536];
    EVP_MD_CTX *md;
    uint8_t dig[32];
    size_t n;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL,
                       "possum tms targets make --name N --version V --kind app|params --models "
                       "A,B --file F --out targets.json");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    memset(&t, 0, sizeof t);
    if (cli_get(opts, "name") == NULL || cli_get(opts, "version") == NULL ||
        cli_get(opts, "file") == NULL || cli_get(opts, "out") == NULL ||
        cli_get(opts, "models") == NULL)
        return cli_usage_error("--name, --version, --models, --file and --out are required");
    px_strlcpy(t.name, cli_get(opts, "name"), sizeof t.name);
    px_strlcpy(t.kind, cli_get(opts, "kind") != NULL ? cli_get(opts, "kind") : "app",
               sizeof t.kind);
    px_strlcpy(t.version, cli_get(opts, "version"), sizeof t.version);
    if ((t.expires_ms = days_ms(opts, "expires-days", 365)) < 0)
        return cli_usage_error("--expires-days: 1 to 3650");
    rc = split_names(cli_get(opts, "models"), t.models, PX_TMS_MODELS_MAX, &t.nmodels, "models",
                     &e);
    if (rc != PX_OK)
        return cli_usage_error("%s", e.msg);
    if ((f = fopen(cli_get(opts, "file"), "rb")) == NULL)
        return cli_fail("%s: cannot open", cli_get(opts, "file"));
    md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        EVP_DigestUpdate(md, buf, n);
        t.length += (int64_t)n;
    }
    fclose(f);
    EVP_DigestFinal_ex(md, dig, NULL);
    EVP_MD_CTX_free(md);
    for (int i = 0; i < 32; i++)
        snprintf(t.sha256 + 2 * i, 3, "%02x", dig[i]);
    env = json_pack("{s:o, s:[]}", "signed", tuf_target_build(&t), "signatures");
    /* check it as a terminal would, then write it */
    text = env != NULL ? json_dumps(env, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(env);
    if (text == NULL)
        return cli_fail("out of memory");
    {
        json_t *env2, *sp;
        tuf_target chk;
        rc = tuf_envelope_parse(text, strlen(text), "targets", &env2, &sp, &e);
        if (rc == PX_OK)
            rc = tuf_target_parse(sp, &chk, &e);
        json_decref(env2);
    }
    if (rc == PX_OK)
        rc = write_text(cli_get(opts, "out"), text, &e);
    free(text);
    if (rc != PX_OK)
        return fail_e(&e);
    printf("targets record for %s %s (%lld bytes, sha256 %s) written to %s (unsigned)\n", t.name,
           t.version, (long long)t.length, t.sha256, cli_get(opts, "out"));
    return CLI_OK;
}

static int tms_sign(int argc, char **argv)
{
    cli_opt opts[] = {{"key", 0, "the private key file of a root or targets key", NULL},
                      {0, 0, 0, 0}};
    const char *pos[1];
    size_t npos = 0, n;
    uint8_t priv[TUF_PRIV_LEN], pub[TUF_PUB_LEN];
    tuf_key k;
    json_t *env;
    json_error_t je;
    char *text, *out = NULL;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, pos, 1, &npos,
                       "possum tms sign --key KEYFILE RECORD.json");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (npos != 1 || cli_get(opts, "key") == NULL)
        return cli_usage_error("give --key KEYFILE and the record to sign");
    if ((text = read_text(pos[0], PX_TMS_META_MAX, &n, &e)) == NULL)
        return fail_e(&e);
    env = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!json_is_object(env)) {
        json_decref(env);
        return cli_fail("%s: line %d: %s", pos[0], je.line, je.text);
    }
    rc = tuf_private_key_read(cli_get(opts, "key"), priv, &e);
    if (rc == PX_OK)
        rc = tuf_envelope_sign(env, priv, &e);
    if (rc == PX_OK)
        rc = tuf_public_of(priv, pub, &e);
    OPENSSL_cleanse(priv, sizeof priv);
    if (rc == PX_OK)
        rc = tuf_key_from_public(pub, &k, &e);
    if (rc == PX_OK && (out = json_dumps(env, JSON_INDENT(2) | JSON_SORT_KEYS)) == NULL)
        rc = px_error_set(&e, PX_ENOMEM, "out of memory");
    json_decref(env);
    if (rc == PX_OK)
        rc = write_text(pos[0], out, &e);
    free(out);
    if (rc != PX_OK)
        return fail_e(&e);
    printf("%s: signed by key %s\n", pos[0], k.keyid);
    return CLI_OK;
}

static int tms_root_publish_cmd(int argc, char **argv)
{
    cli_opt opts[] = {STORE_OPTS, {0, 0, 0, 0}};
    const char *pos[1];
    size_t npos = 0, n;
    cli_env x;
    tuf_root r;
    char *text;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, pos, 1, &npos, "possum tms root publish ROOT.json");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (npos != 1)
        return cli_usage_error("give the signed root record");
    if ((text = read_text(pos[0], PX_TMS_META_MAX, &n, &e)) == NULL)
        return fail_e(&e);
    rc = cli_open(&x, opts, 0, &e);
    if (rc == PX_OK)
        rc = tms_root_publish(x.st, text, n, &e);
    if (rc == PX_OK)
        rc = tms_root_latest(x.st, &r, &e);
    cli_env_close(&x);
    free(text);
    if (rc != PX_OK)
        return fail_e(&e);
    printf("root version %lld published: root %lld of %zu keys, targets %lld of %zu, timestamp "
           "%lld of %zu\n",
           (long long)r.version, (long long)r.roles[0].threshold, r.roles[0].nkeys,
           (long long)r.roles[1].threshold, r.roles[1].nkeys, (long long)r.roles[2].threshold,
           r.roles[2].nkeys);
    return CLI_OK;
}

/* ---- packages ------------------------------------------------------------------------------ */

static int tms_package_add_cmd(int argc, char **argv)
{
    cli_opt opts[] = {STORE_OPTS,
                      {"file", 0, "the package file", NULL},
                      {"metadata", 0, "its targets record, signed offline", NULL},
                      {0, 0, 0, 0}};
    cli_env x;
    tms_package p;
    size_t n;
    char *meta;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL,
                       "possum tms package add --file F --metadata TARGETS.json");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (cli_get(opts, "file") == NULL || cli_get(opts, "metadata") == NULL)
        return cli_usage_error("--file and --metadata are required");
    if ((meta = read_text(cli_get(opts, "metadata"), PX_TMS_META_MAX, &n, &e)) == NULL)
        return fail_e(&e);
    rc = cli_open(&x, opts, 0, &e);
    if (rc == PX_OK)
        rc = tms_package_add(x.st, cli_get(opts, "file"), meta, n, &p, &e);
    cli_env_close(&x);
    free(meta);
    if (rc != PX_OK)
        return fail_e(&e);
    printf("package %s %s (%s) stored: %lld bytes, sha256 %s, models", p.t.name, p.t.version,
           p.t.kind, (long long)p.t.length, p.t.sha256);
    for (size_t i = 0; i < p.t.nmodels; i++)
        printf("%s%s", i ? "," : " ", p.t.models[i]);
    printf("\n");
    return CLI_OK;
}

static int print_package(void *ud, const tms_package *p)
{
    char when[32];
    (void)ud;
    px_time_iso8601(p->created_ms, when, sizeof when);
    printf("%-20s %-12s %-6s %12lld  %.16s...  %s  ", p->t.name, p->t.version, p->t.kind,
           (long long)p->t.length, p->t.sha256, when);
    for (size_t i = 0; i < p->t.nmodels; i++)
        printf("%s%s", i ? "," : "", p->t.models[i]);
    printf("\n");
    return 0;
}

static int tms_package_list_cmd(int argc, char **argv)
{
    cli_opt opts[] = {STORE_OPTS, {0, 0, 0, 0}};
    cli_env x;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL, "possum tms package list");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    rc = cli_open(&x, opts, 0, &e);
    if (rc == PX_OK) {
        printf("%-20s %-12s %-6s %12s  %-19s  %-24s  %s\n", "NAME", "VERSION", "KIND", "BYTES",
               "SHA-256", "ADDED", "MODELS");
        rc = tms_package_list(x.st, print_package, NULL, &e);
    }
    cli_env_close(&x);
    return rc == PX_OK ? CLI_OK : fail_e(&e);
}

/* ---- terminals ----------------------------------------------------------------------------- */

static int tms_terminal_add_cmd(int argc, char **argv)
{
    cli_opt opts[] = {STORE_OPTS,
                      {"model", 0, "the terminal model", NULL},
                      {"merchant", 0, "the merchant", NULL},
                      {"tid", 0, "its terminal id at the transaction platform (8)", NULL},
                      {"groups", 0, "groups, comma-separated", NULL},
                      {"schedule", 0, "e.g. \"7d@Fri 17:00+08:00~30m\" (default: the TMS's)", NULL},
                      {0, 0, 0, 0}};
    const char *pos[1];
    size_t npos = 0;
    tms_terminal t;
    cli_env x;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, pos, 1, &npos,
                       "possum tms terminal add SERIAL --model M [--merchant X] [--tid T] "
                       "[--groups a,b] [--schedule S]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (npos != 1 || cli_get(opts, "model") == NULL)
        return cli_usage_error("give the serial number and --model");
    memset(&t, 0, sizeof t);
    if (px_strlcpy(t.serial, pos[0], sizeof t.serial) != PX_OK ||
        px_strlcpy(t.model, cli_get(opts, "model"), sizeof t.model) != PX_OK ||
        (cli_get(opts, "merchant") &&
         px_strlcpy(t.merchant, cli_get(opts, "merchant"), sizeof t.merchant) != PX_OK) ||
        (cli_get(opts, "tid") && px_strlcpy(t.tid, cli_get(opts, "tid"), sizeof t.tid) != PX_OK) ||
        (cli_get(opts, "schedule") &&
         px_strlcpy(t.schedule, cli_get(opts, "schedule"), sizeof t.schedule) != PX_OK))
        return cli_usage_error("a value is too long");
    if (split_names(cli_get(opts, "groups"), t.groups, PX_TMS_GROUPS_MAX, &t.ngroups, "groups",
                    &e) != PX_OK)
        return cli_usage_error("%s", e.msg);
    rc = cli_open(&x, opts, 0, &e);
    if (rc == PX_OK)
        rc = tms_terminal_add(x.st, &t, &e);
    cli_env_close(&x);
    if (rc != PX_OK)
        return fail_e(&e);
    printf("terminal %s registered (model %s)\n", t.serial, t.model);
    return CLI_OK;
}

static int tms_terminal_show(int argc, char **argv)
{
    cli_opt opts[] = {STORE_OPTS, {0, 0, 0, 0}};
    const char *pos[1];
    size_t npos = 0;
    tms_terminal t;
    cli_env x;
    char when[32];
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, pos, 1, &npos, "possum tms terminal show SERIAL");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (npos != 1)
        return cli_usage_error("give the serial number");
    rc = cli_open(&x, opts, 0, &e);
    if (rc == PX_OK)
        rc = tms_terminal_get(x.st, pos[0], &t, &e);
    cli_env_close(&x);
    if (rc != PX_OK)
        return fail_e(&e);
    printf("serial:       %s\nmodel:        %s\nmerchant:     %s\ntid:          %s\n", t.serial,
           t.model, t.merchant[0] ? t.merchant : "-", t.tid[0] ? t.tid : "-");
    printf("groups:      ");
    for (size_t i = 0; i < t.ngroups; i++)
        printf(" %s", t.groups[i]);
    printf("%s\ninstalled:   ", t.ngroups ? "" : " -");
    for (size_t i = 0; i < t.ninstalled; i++)
        printf(" %s %s", t.installed[i].name, t.installed[i].version);
    printf("%s\nschedule:     %s\n", t.ninstalled ? "" : " -",
           t.schedule[0] ? t.schedule : "(the TMS's default)");
    if (t.last_contact_ms > 0)
        px_time_iso8601(t.last_contact_ms, when, sizeof when);
    printf("last contact: %s\nDMK kcv:      %s\n", t.last_contact_ms > 0 ? when : "never",
           t.dmk_kcv[0] ? t.dmk_kcv : "(not derived yet)");
    return CLI_OK;
}

static int tms_terminal_provision_cmd(int argc, char **argv)
{
    cli_opt opts[] = {STORE_OPTS,
                      {"kek", 0, "label of the K1 key the factory station shares", NULL},
                      {0, 0, 0, 0}};
    const char *pos[1];
    size_t npos = 0;
    char block[PX_HSM_KEYBLOCK_MAX], kcv[PX_HSM_KCV_HEX_MAX], master[PX_HSM_LABEL_MAX];
    cli_env x;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, pos, 1, &npos,
                       "possum tms terminal provision SERIAL --kek LABEL");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (npos != 1 || cli_get(opts, "kek") == NULL)
        return cli_usage_error("give the serial number and --kek LABEL");
    rc = cli_open(&x, opts, 1, &e);
    master_key(&x, master);
    if (rc == PX_OK)
        rc = tms_terminal_provision(x.st, x.h, master, pos[0], cli_get(opts, "kek"), block,
                                    sizeof block, kcv, &e);
    cli_env_close(&x);
    if (rc != PX_OK)
        return fail_e(&e);
    printf("dmk-block: %s\ndmk-kcv:   %s\n", block, kcv);
    return CLI_OK;
}

/* ---- campaigns ----------------------------------------------------------------------------- */

/* "now", "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM" (UTC) into ms. */
static int parse_start(const char *s, int64_t *ms)
{
    int64_t day;
    int hh = 0, mm = 0;
    char date[11];
    if (strcmp(s, "now") == 0) {
        *ms = 0;
        return PX_OK;
    }
    if (strlen(s) != 10 &&
        !(strlen(s) == 16 && s[10] == 'T' && sscanf(s + 11, "%2d:%2d", &hh, &mm) == 2 &&
          s[13] == ':' && hh < 24 && mm < 60))
        return PX_EINVAL;
    memcpy(date, s, 10);
    date[10] = 0;
    if (px_time_parse_date(date, &day) != PX_OK)
        return PX_EINVAL;
    *ms = day + (hh * 60 + mm) * 60000LL;
    return PX_OK;
}

static int parse_waves(const char *s, tms_campaign_spec *sp)
{
    sp->nwaves = 0;
    while (*s) {
        size_t k = strcspn(s, ",");
        char num[8];
        int64_t v;
        if (k == 0 || k >= sizeof num || sp->nwaves >= PX_TMS_WAVES_MAX)
            return PX_EINVAL;
        memcpy(num, s, k);
        num[k] = 0;
        if (px_parse_i64(num, 1, 100, &v) != PX_OK)
            return PX_EINVAL;
        sp->waves[sp->nwaves++] = v;
        s += k + (s[k] == ',');
    }
    return sp->nwaves > 0 ? PX_OK : PX_EINVAL;
}

/* Serials from "a,b" or from a file of one per line into a malloc'd array. */
static int read_serials(const char *list, const char *file, char ***out, size_t *n, px_error *e)
{
    char *text = NULL, *p;
    size_t len, cap = 0;
    *out = NULL;
    *n = 0;
    if (file != NULL && (text = read_text(file, 64u * 1024 * 1024, &len, e)) == NULL)
        return e->code;
    p = text != NULL ? text : (char *)list;
    while (p != NULL && *p) {
        size_t k = strcspn(p, text != NULL ? "\r\n" : ",");
        if (k > 0) {
            char *s;
            if (*n == cap) {
                char **nv = realloc(*out, (cap = cap ? cap * 2 : 64) * sizeof *nv);
                if (nv == NULL)
                    break;
                *out = nv;
            }
            if ((s = malloc(k + 1)) == NULL)
                break;
            memcpy(s, p, k);
            s[k] = 0;
            (*out)[(*n)++] = s;
        }
        p += k;
        while (*p == ',' || *p == '\r' || *p == '\n')
            p++;
    }
    free(text);
    return PX_OK;
}

static void free_serials(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int tms_campaign_create_cmd(int argc, char **argv)
{
    cli_opt opts[] = {
        STORE_OPTS,
        {"package", 0, "NAME@VERSION of the release to send", NULL},
        {"all", 1, "every terminal the package fits", NULL},
        {"models", 0, "terminal models, comma-separated", NULL},
        {"groups", 0, "terminal groups, comma-separated", NULL},
        {"serials", 0, "a list of serial numbers, comma-separated", NULL},
        {"serials-file", 0, "a file of serial numbers, one per line", NULL},
        {"waves", 0, "cumulative percentages, e.g. 1,10,50,100 (default 100)", NULL},
        {"start", 0, "now (default), YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)", NULL},
        {"window", 0, "daily maintenance window HH:MM-HH:MM (UTC)", NULL},
        {"max-failures", 0, "halt when this % of a wave fails (default 5)", NULL},
        {"advance", 0, "open the next wave when this % of one has finished (default 100)", NULL},
        {"wave-min-ms", 0, "and at least this long after it opened (default 0)", NULL},
        {0, 0, 0, 0}};
    const char *pos[1], *pkg;
    size_t npos = 0, nserials = 0;
    char **serials = NULL;
    tms_campaign_spec sp;
    const char *at;
    cli_env x;
    px_error e = {0};
    int rc =
        cli_parse(argc, argv, 1, opts, pos, 1, &npos,
                  "possum tms campaign create NAME --package NAME@VERSION (--all | --models M "
                  "| --groups G | --serials S | --serials-file F) [--waves 10,50,100] [--start T] "
                  "[--window HH:MM-HH:MM] [--max-failures PCT]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    pkg = cli_get(opts, "package");
    if (npos != 1 || pkg == NULL || (at = strchr(pkg, '@')) == NULL)
        return cli_usage_error("give the campaign name and --package NAME@VERSION");
    tms_campaign_spec_default(&sp);
    if (px_strlcpy(sp.name, pos[0], sizeof sp.name) != PX_OK ||
        (size_t)(at - pkg) >= sizeof sp.pkg_name ||
        px_strlcpy(sp.pkg_version, at + 1, sizeof sp.pkg_version) != PX_OK)
        return cli_usage_error("a name is too long");
    memcpy(sp.pkg_name, pkg, (size_t)(at - pkg));
    sp.all = cli_has(opts, "all");
    if (split_names(cli_get(opts, "models"), sp.models, PX_TMS_MODELS_MAX, &sp.nmodels, "models",
                    &e) != PX_OK ||
        split_names(cli_get(opts, "groups"), sp.groups, PX_TMS_GROUPS_MAX, &sp.ngroups, "groups",
                    &e) != PX_OK)
        return cli_usage_error("%s", e.msg);
    if (cli_get(opts, "waves") != NULL && parse_waves(cli_get(opts, "waves"), &sp) != PX_OK)
        return cli_usage_error("--waves: comma-separated percentages from 1 to 100");
    if (cli_get(opts, "start") != NULL &&
        parse_start(cli_get(opts, "start"), &sp.start_ms) != PX_OK)
        return cli_usage_error("--start: now, YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)");
    if (cli_get(opts, "window") != NULL &&
        tms_window_parse(cli_get(opts, "window"), &sp.window_start_min, &sp.window_end_min, &e) !=
            PX_OK)
        return cli_usage_error("--window: %s", e.msg);
    if ((cli_get(opts, "max-failures") &&
         px_parse_i64(cli_get(opts, "max-failures"), 0, 100, &sp.max_failure_pct) != PX_OK) ||
        (cli_get(opts, "advance") &&
         px_parse_i64(cli_get(opts, "advance"), 1, 100, &sp.advance_pct) != PX_OK) ||
        (cli_get(opts, "wave-min-ms") &&
         px_parse_i64(cli_get(opts, "wave-min-ms"), 0, INT64_MAX, &sp.wave_min_ms) != PX_OK))
        return cli_usage_error("--max-failures 0..100, --advance 1..100, --wave-min-ms >= 0");
    if (read_serials(cli_get(opts, "serials"), cli_get(opts, "serials-file"), &serials, &nserials,
                     &e) != PX_OK)
        return fail_e(&e);
    sp.serials = (const char *const *)serials;
    sp.nserials = nserials;
    rc = cli_open(&x, opts, 0, &e);
    if (rc == PX_OK)
        rc = tms_campaign_create(x.st, &sp, &e);
    cli_env_close(&x);
    free_serials(serials, nserials);
    if (rc != PX_OK)
        return fail_e(&e);
    printf("campaign %s created (draft): %s %s; start it with possum tms campaign start %s\n",
           sp.name, sp.pkg_name, sp.pkg_version, sp.name);
    return CLI_OK;
}

static void print_status(const tms_campaign_info *c)
{
    int64_t total[TMS_T_COUNT_] = {0};
    char when[32] = "-";
    if (c->wave_opened_ms > 0)
        px_time_iso8601(c->wave_opened_ms, when, sizeof when);
    printf("campaign %s: %s %s, %s, wave %lld of %zu (opened %s), %lld terminals\n", c->spec.name,
           c->spec.pkg_name, c->spec.pkg_version, c->state, (long long)c->current_wave,
           c->spec.nwaves, when, (long long)c->total);
    if (c->reason[0])
        printf("  %s\n", c->reason);
    printf("%-5s %4s", "WAVE", "PCT");
    for (int s = 0; s < TMS_T_COUNT_; s++)
        printf(" %11s", tms_tstate_name((tms_tstate)s));
    printf("\n");
    for (size_t w = 0; w < c->spec.nwaves; w++) {
        printf("%-5zu %4lld", w + 1, (long long)c->spec.waves[w]);
        for (int s = 0; s < TMS_T_COUNT_; s++) {
            printf(" %11lld", (long long)c->counts[w][s]);
            total[s] += c->counts[w][s];
        }
        printf("\n");
    }
    printf("%-5s %4s", "all", "");
    for (int s = 0; s < TMS_T_COUNT_; s++)
        printf(" %11lld", (long long)total[s]);
    printf("\n");
}

static int campaign_action(int argc, char **argv, const char *verb)
{
    cli_opt opts[] = {STORE_OPTS, {0, 0, 0, 0}};
    const char *pos[1];
    size_t npos = 0;
    char syn[64];
    tms_campaign_info *c = malloc(sizeof *c);
    int64_t total = 0;
    cli_env x;
    px_error e = {0};
    int rc;
    snprintf(syn, sizeof syn, "possum tms campaign %s NAME", verb);
    rc = cli_parse(argc, argv, 1, opts, pos, 1, &npos, syn);
    if (c == NULL || rc != CLI_OK || npos != 1) {
        free(c);
        return rc < 0 ? CLI_OK : rc != CLI_OK ? rc : cli_usage_error("give the campaign name");
    }
    rc = cli_open(&x, opts, 0, &e);
    if (rc == PX_OK && strcmp(verb, "start") == 0)
        rc = tms_campaign_start(x.st, pos[0], &total, &e);
    else if (rc == PX_OK && strcmp(verb, "pause") == 0)
        rc = tms_campaign_pause(x.st, pos[0], &e);
    else if (rc == PX_OK && strcmp(verb, "resume") == 0)
        rc = tms_campaign_resume(x.st, pos[0], &e);
    if (rc == PX_OK)
        rc = tms_campaign_get(x.st, pos[0], c, &e);
    cli_env_close(&x);
    if (rc == PX_OK)
        print_status(c);
    free(c);
    return rc == PX_OK ? CLI_OK : fail_e(&e);
}

static int tms_campaign_start_cmd(int argc, char **argv)
{
    return campaign_action(argc, argv, "start");
}
static int tms_campaign_pause_cmd(int argc, char **argv)
{
    return campaign_action(argc, argv, "pause");
}
static int tms_campaign_resume_cmd(int argc, char **argv)
{
    return campaign_action(argc, argv, "resume");
}
static int tms_campaign_status_cmd(int argc, char **argv)
{
    return campaign_action(argc, argv, "status");
}

static int print_campaign_line(void *ud, const tms_campaign_info *c)
{
    (void)ud;
    printf("%-24s %-20s %-12s %-10s wave %lld/%zu  %lld terminals%s%s\n", c->spec.name,
           c->spec.pkg_name, c->spec.pkg_version, c->state, (long long)c->current_wave,
           c->spec.nwaves, (long long)c->total, c->reason[0] ? "  " : "", c->reason);
    return 0;
}

static int tms_campaign_list_cmd(int argc, char **argv)
{
    cli_opt opts[] = {STORE_OPTS, {0, 0, 0, 0}};
    cli_env x;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL, "possum tms campaign list");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    rc = cli_open(&x, opts, 0, &e);
    if (rc == PX_OK)
        rc = tms_campaign_list(x.st, print_campaign_line, NULL, &e);
    cli_env_close(&x);
    return rc == PX_OK ? CLI_OK : fail_e(&e);
}

/* ---- dispatch ------------------------------------------------------------------------------ */

static const cli_command root_cmds[] = {
    {"make", tms_root_make, "write an unsigned root record from public key files"},
    {"publish", tms_root_publish_cmd, "store a signed root record (the first or the next version)"},
    {0, 0, 0}};
static const cli_command targets_cmds[] = {
    {"make", tms_targets_make, "write the unsigned targets record of a release"}, {0, 0, 0}};
static const cli_command package_cmds[] = {
    {"add", tms_package_add_cmd, "store a release: --file F --metadata SIGNED-TARGETS.json"},
    {"list", tms_package_list_cmd, "every release"},
    {0, 0, 0}};
static const cli_command terminal_cmds[] = {
    {"add", tms_terminal_add_cmd, "register a terminal: SERIAL --model M [--tid T] [--groups G]"},
    {"show", tms_terminal_show, "one terminal: versions, last contact, schedule, DMK check value"},
    {"provision", tms_terminal_provision_cmd, "its DMK as a TR-31 block under a factory KEK"},
    {0, 0, 0}};
static const cli_command campaign_cmds[] = {
    {"create", tms_campaign_create_cmd, "a campaign (draft): NAME --package NAME@VERSION ..."},
    {"start", tms_campaign_start_cmd, "choose its terminals and run it"},
    {"pause", tms_campaign_pause_cmd, "stop offering it"},
    {"resume", tms_campaign_resume_cmd, "offer it again (paused or halted)"},
    {"status", tms_campaign_status_cmd, "counts per state and wave"},
    {"list", tms_campaign_list_cmd, "every campaign"},
    {0, 0, 0}};

static int root_group(int argc, char **argv)
{
    return cli_dispatch("possum tms root", root_cmds, argc, argv);
}
static int targets_group(int argc, char **argv)
{
    return cli_dispatch("possum tms targets", targets_cmds, argc, argv);
}
static int package_group(int argc, char **argv)
{
    return cli_dispatch("possum tms package", package_cmds, argc, argv);
}
static int terminal_group(int argc, char **argv)
{
    return cli_dispatch("possum tms terminal", terminal_cmds, argc, argv);
}
static int campaign_group(int argc, char **argv)
{
    return cli_dispatch("possum tms campaign", campaign_cmds, argc, argv);
}

static const cli_command tms_cmds[] = {
    {"keygen", tms_keygen, "an Ed25519 key pair for a metadata role (offline)"},
    {"root", root_group, "root records: make, publish"},
    {"targets", targets_group, "targets records: make"},
    {"sign", tms_sign, "add a key's signature to a record (offline)"},
    {"package", package_group, "releases: add, list"},
    {"terminal", terminal_group, "terminals: add, show, provision"},
    {"campaign", campaign_group, "campaigns: create, start, pause, resume, status, list"},
    {0, 0, 0}};

int cmd_tms(int argc, char **argv)
{
    return cli_dispatch("possum tms", tms_cmds, argc, argv);
}
