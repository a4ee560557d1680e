/*
 * test_tuf.c: signed release metadata (crypto/tuf.h): canonical JSON, versions, key files,
 * thresholds, root rotation, targets and timestamp records, and what each refusal says.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto/tuf.h"
#include "lib/str.h"
#include "lib/time.h"
#include "tmpdir.h"

/* Ed25519 keys for the three roles and the root record naming them, in a private temp dir. */
typedef struct tuffix {
    char dir[PX_PATH_MAX];
    uint8_t root_priv[3][TUF_PRIV_LEN], targets_priv[2][TUF_PRIV_LEN], ts_priv[TUF_PRIV_LEN];
    tuf_root root; /* version 1: root 2 of 3, targets 2 of 2, timestamp 1 of 1 */
} tuffix;

/* n fresh keys of role id into f->root, with threshold. */
static void add_role(tuffix *f, tuf_role_id id, uint8_t (*privs)[TUF_PRIV_LEN], size_t n,
                     int64_t threshold)
{
    uint8_t pub[TUF_PUB_LEN];
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(tuf_keypair_generate(privs[i], pub, NULL), PX_OK);
        tuf_key_from_public(pub, &f->root.keys[f->root.nkeys], NULL);
        px_strlcpy(f->root.roles[id].keyids[i], f->root.keys[f->root.nkeys++].keyid, TUF_KEYID_HEX);
    }
    f->root.roles[id].nkeys = n;
    f->root.roles[id].threshold = threshold;
}

static void fix_setup(tuffix *f)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(testlib_mkdtemp("tuf", f->dir, sizeof f->dir), 0);
    f->root.version = 1;
    f->root.expires_ms = px_now_ms() + 365LL * 86400000;
    add_role(f, TUF_ROLE_ROOT, f->root_priv, 3, 2);
    add_role(f, TUF_ROLE_TARGETS, f->targets_priv, 2, 2);
    add_role(f, TUF_ROLE_TIMESTAMP, &f->ts_priv, 1, 1);
}

static void fix_path(const tuffix *f, const char *name, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/%s", f->dir, name);
}

/* The envelope of sp signed by the first nsig of privs, as text (malloc'd). */
static char *signed_text(json_t *sp, uint8_t (*privs)[TUF_PRIV_LEN], size_t nsig)
{
    json_t *env = json_pack("{s:o, s:[]}", "signed", sp, "signatures");
    char *text;
    for (size_t i = 0; i < nsig; i++)
        assert_int_equal(tuf_envelope_sign(env, privs[i], NULL), PX_OK);
    text = json_dumps(env, JSON_INDENT(1));
    json_decref(env);
    assert_non_null(text);
    return text;
}

/* The root record r signed by the first nsig root keys (malloc'd text). */
static char *root_text(tuffix *f, const tuf_root *r, size_t nsig)
{
    return signed_text(tuf_root_build(r), f->root_priv, nsig);
}

/* A package file of n bytes (a pattern seeded by seed) at dir/name. */
static void package_file(tuffix *f, const char *name, size_t n, int seed, char *path, size_t pathsz)
{
    FILE *fp;
    fix_path(f, name, path, pathsz);
    fp = fopen(path, "w");
    assert_non_null(fp);
    for (size_t i = 0; i < n; i++)
        fputc((int)((i * 131 + (size_t)seed * 7) & 0xff), fp);
    assert_int_equal(fclose(fp), 0);
}

/* The targets record for the file at path (malloc'd text), signed by nsig targets keys. */
static char *targets_text(tuffix *f, const char *path, const char *name, const char *version,
                          const char *models, size_t nsig)
{
    tuf_target t;
    uint8_t *data;
    long n;
    const char *m = models;
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    n = ftell(fp);
    assert_true(n >= 0);
    rewind(fp);
    data = malloc((size_t)n + 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    memset(&t, 0, sizeof t);
    px_strlcpy(t.name, name, sizeof t.name);
    px_strlcpy(t.kind, "app", sizeof t.kind);
    px_strlcpy(t.version, version, sizeof t.version);
    t.length = (int64_t)n;
    tuf_sha256_hex(data, (size_t)n, t.sha256);
    t.expires_ms = px_now_ms() + 365LL * 86400000;
    while (*m) {
        size_t k = strcspn(m, ",");
        memcpy(t.models[t.nmodels], m, k);
        t.models[t.nmodels++][k] = 0;
        m += k + (m[k] == ',');
    }
    free(data);
    return signed_text(tuf_target_build(&t), f->targets_priv, nsig);
}

static void test_canonical(void **state)
{
    json_t *j = json_loads("{\"b\": [1, true, \"x\"], \"a\": {\"d\": 2, \"c\": \"\\u00e9\"}}", 0,
                           NULL);
    json_t *r = json_loads("{\"a\": 1.5}", 0, NULL), *n = json_loads("{\"a\": null}", 0, NULL);
    px_buf b;
    px_error e = {0};
    (void)state;
    px_buf_init(&b, 4096);
    assert_int_equal(tuf_canonical(j, &b, &e), PX_OK);
    assert_string_equal(px_buf_str(&b),
                        "{\"a\":{\"c\":\"\xc3\xa9\",\"d\":2},\"b\":[1,true,\"x\"]}");
    assert_int_equal(tuf_canonical(r, &b, &e), PX_EFORMAT);
    assert_non_null(strstr(e.msg, "reals and null"));
    assert_int_equal(tuf_canonical(n, &b, &e), PX_EFORMAT);
    px_buf_free(&b);
    json_decref(j);
    json_decref(r);
    json_decref(n);
}

static void test_versions(void **state)
{
    int64_t a, b, c;
    px_error e = {0};
    (void)state;
    assert_int_equal(tuf_version_parse("1", &a, &e), PX_OK);
    assert_int_equal(tuf_version_parse("1.0.1", &b, &e), PX_OK);
    assert_int_equal(tuf_version_parse("1.10", &c, &e), PX_OK);
    assert_true(a < b && b < c);
    assert_int_equal(a, 1000000000000LL);
    assert_int_equal(tuf_version_parse("999999.999999.999999", &a, &e), PX_OK);
    assert_int_equal(tuf_version_parse("01.2", &a, &e), PX_EFORMAT);
    assert_non_null(strstr(e.msg, "leading zeros"));
    assert_int_equal(tuf_version_parse("1.2.3.4", &a, &e), PX_EFORMAT);
    assert_int_equal(tuf_version_parse("1..2", &a, &e), PX_EFORMAT);
    assert_int_equal(tuf_version_parse("1.2-rc", &a, &e), PX_EFORMAT);
    assert_int_equal(tuf_version_parse("", &a, &e), PX_EFORMAT);
    assert_int_equal(tuf_version_parse("1000000", &a, &e), PX_EFORMAT);
    assert_int_equal(tuf_version_parse("24733333333333337771.1", &a, &e), PX_EFORMAT); /* fuzz */
    assert_true(tuf_name_is_valid("pos-app_2.x"));
    assert_false(tuf_name_is_valid(".hidden"));
    assert_false(tuf_name_is_valid("a/b"));
    assert_false(tuf_name_is_valid(""));
}

static void test_key_files(void **state)
{
    tuffix *f = *state;
    uint8_t priv[TUF_PRIV_LEN], pub[TUF_PUB_LEN], priv2[TUF_PRIV_LEN], pub2[TUF_PUB_LEN];
    char p1[PX_PATH_MAX], p2[PX_PATH_MAX];
    struct stat sb;
    px_error e = {0};
    fix_path(f, "k1.key", p1, sizeof p1);
    fix_path(f, "k1.pub", p2, sizeof p2);
    assert_int_equal(tuf_keypair_generate(priv, pub, &e), PX_OK);
    assert_int_equal(tuf_private_key_write(p1, priv, &e), PX_OK);
    assert_int_equal(stat(p1, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(tuf_private_key_write(p1, priv, &e), PX_EEXIST); /* never overwritten */
    assert_int_equal(tuf_public_key_write(p2, pub, &e), PX_OK);
    assert_int_equal(tuf_private_key_read(p1, priv2, &e), PX_OK);
    assert_memory_equal(priv, priv2, TUF_PRIV_LEN);
    assert_int_equal(tuf_public_key_read(p2, pub2, &e), PX_OK);
    assert_memory_equal(pub, pub2, TUF_PUB_LEN);
    assert_int_equal(tuf_public_key_read(p1, pub2, &e), PX_OK); /* the public half of a key file */
    assert_int_equal(tuf_private_key_read(p2, priv2, &e), PX_EFORMAT);
    assert_non_null(strstr(e.msg, "public key file"));
}

static void test_root_threshold(void **state)
{
    tuffix *f = *state;
    tuf_root r;
    char *one = root_text(f, &f->root, 1), *two = root_text(f, &f->root, 2);
    json_t *env;
    char *dup;
    px_error e = {0};
    assert_int_equal(tuf_root_verify_initial(one, strlen(one), &r, &e), PX_EAUTH);
    assert_string_equal(e.msg, "root: 1 valid root signature, threshold 2");
    assert_int_equal(tuf_root_verify_initial(two, strlen(two), &r, &e), PX_OK);
    assert_int_equal(r.version, 1);
    assert_int_equal(r.nkeys, 6);
    /* one key signing twice counts once */
    env = json_loads(one, 0, NULL);
    json_array_append(json_object_get(env, "signatures"),
                      json_array_get(json_object_get(env, "signatures"), 0));
    dup = json_dumps(env, 0);
    assert_int_equal(tuf_root_verify_initial(dup, strlen(dup), &r, &e), PX_EAUTH);
    free(dup);
    /* a changed byte under the signatures */
    json_object_set_new(json_object_get(env, "signed"), "expires_ms", json_integer(1));
    assert_int_equal(tuf_envelope_sign(env, f->root_priv[1], &e), PX_OK); /* only one valid now */
    dup = json_dumps(env, 0);
    assert_int_equal(tuf_root_verify_initial(dup, strlen(dup), &r, &e), PX_EAUTH);
    free(dup);
    json_decref(env);
    /* a targets key's signature does not count for root */
    env = json_loads(one, 0, NULL);
    assert_int_equal(tuf_envelope_sign(env, f->targets_priv[0], &e), PX_OK);
    dup = json_dumps(env, 0);
    assert_int_equal(tuf_root_verify_initial(dup, strlen(dup), &r, &e), PX_EAUTH);
    free(dup);
    json_decref(env);
    free(one);
    free(two);
}

static void test_root_shape(void **state)
{
    tuffix *f = *state;
    tuf_root r;
    px_error e = {0};
    const char *bad[] = {
        "[]",
        "{\"signed\":{}}",
        "{\"signed\":{\"_type\":\"targets\",\"spec_version\":\"1\"},\"signatures\":[]}",
        "{\"signed\":{\"_type\":\"root\",\"spec_version\":\"2\"},\"signatures\":[]}",
        "{\"signed\":{\"_type\":\"root\",\"spec_version\":\"1\"},\"signatures\":[{\"keyid\":\"x\",\"sig\":\"y\"}]}",
        "{\"signed\":{\"_type\":\"root\",\"spec_version\":\"1\",\"version\":1,\"expires_ms\":1,\"keys\":{},\"roles\":{}},\"signatures\":[]}",
        "{\"signed\":{\"_type\":\"root\",\"spec_version\":\"1\",\"extra\":1},\"signatures\":[]}",
        "not json"};
    (void)f;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&e, 0, sizeof e);
        assert_int_not_equal(tuf_root_verify_initial(bad[i], strlen(bad[i]), &r, &e), PX_OK);
        assert_true(e.msg[0] != 0);
    }
    /* a key id that is not its key's hash */
    {
        tuf_root x = f->root;
        char *t;
        x.keys[0].keyid[0] = x.keys[0].keyid[0] == 'a' ? 'b' : 'a';
        memcpy(x.roles[TUF_ROLE_ROOT].keyids[0], x.keys[0].keyid, TUF_KEYID_HEX);
        t = root_text(f, &x, 2);
        assert_int_equal(tuf_root_verify_initial(t, strlen(t), &r, &e), PX_EFORMAT);
        assert_non_null(strstr(e.msg, "not the SHA-256"));
        free(t);
    }
}

static void test_root_rotation(void **state)
{
    tuffix *f = *state;
    tuf_root v2 = f->root, out;
    uint8_t newpriv[TUF_PRIV_LEN], pub[TUF_PUB_LEN];
    json_t *env;
    char *t;
    px_error e = {0};
    /* v2 replaces root key 0 with a new one */
    assert_int_equal(tuf_keypair_generate(newpriv, pub, NULL), PX_OK);
    tuf_key_from_public(pub, &v2.keys[0], NULL);
    memcpy(v2.roles[TUF_ROLE_ROOT].keyids[0], v2.keys[0].keyid, TUF_KEYID_HEX);
    v2.version = 2;
    env = json_pack("{s:o, s:[]}", "signed", tuf_root_build(&v2), "signatures");
    /* signed by the new key and old key 1: one old signature is below the old threshold */
    tuf_envelope_sign(env, newpriv, NULL);
    tuf_envelope_sign(env, f->root_priv[1], NULL);
    t = json_dumps(env, 0);
    assert_int_equal(tuf_root_verify_next(&f->root, t, strlen(t), &out, &e), PX_EAUTH);
    assert_string_equal(e.msg, "root 2 (by root 1's keys): 1 valid root signature, threshold 2");
    free(t);
    /* and old key 2: two old (1, 2), two new (new, 1) */
    tuf_envelope_sign(env, f->root_priv[2], NULL);
    t = json_dumps(env, 0);
    assert_int_equal(tuf_root_verify_next(&f->root, t, strlen(t), &out, &e), PX_OK);
    assert_int_equal(out.version, 2);
    /* the same record is not version 3's successor, nor its own */
    assert_int_equal(tuf_root_verify_next(&out, t, strlen(t), &out, &e), PX_EAUTH);
    assert_non_null(strstr(e.msg, "version 2 where 3 was expected"));
    free(t);
    json_decref(env);
}

static void test_targets_and_timestamp(void **state)
{
    tuffix *f = *state;
    char path[PX_PATH_MAX], *one, *two, *tsx;
    tuf_target t;
    tuf_timestamp ts;
    int64_t len;
    char sha[TUF_SHA256_HEX];
    json_t *env;
    px_error e = {0};
    package_file(f, "app.bin", 5000, 1, path, sizeof path);
    one = targets_text(f, path, "pos-app", "1.2.0", "A920,P2", 1);
    two = targets_text(f, path, "pos-app", "1.2.0", "A920,P2", 2);
    assert_int_equal(tuf_target_verify(&f->root, one, strlen(one), &t, &e), PX_EAUTH);
    assert_string_equal(e.msg, "targets pos-app 1.2.0: 1 valid targets signature, threshold 2");
    assert_int_equal(tuf_target_verify(&f->root, two, strlen(two), &t, &e), PX_OK);
    assert_int_equal(t.length, 5000);
    assert_true(tuf_target_fits_model(&t, "P2"));
    assert_false(tuf_target_fits_model(&t, "S90"));
    /* a timestamp binding it */
    env = json_pack("{s:{s:s, s:s, s:I, s:I, s:I, s:{s:{s:I, s:s}}}, s:[]}", "signed", "_type",
                    "timestamp", "spec_version", "1", "version", (json_int_t)7, "expires_ms",
                    (json_int_t)(px_now_ms() + 60000), "root_version", (json_int_t)1, "targets",
                    "pos-app/1.2.0", "length", (json_int_t)strlen(two), "sha256",
                    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
                    "signatures");
    tuf_envelope_sign(env, f->targets_priv[0], NULL); /* the wrong role */
    tsx = json_dumps(env, 0);
    assert_int_equal(tuf_timestamp_verify(&f->root, tsx, strlen(tsx), &ts, &e), PX_EAUTH);
    free(tsx);
    tuf_envelope_sign(env, f->ts_priv, NULL);
    tsx = json_dumps(env, 0);
    assert_int_equal(tuf_timestamp_verify(&f->root, tsx, strlen(tsx), &ts, &e), PX_OK);
    assert_int_equal(ts.version, 7);
    assert_int_equal(tuf_timestamp_find(&ts, "pos-app", "1.2.0", &len, sha), PX_OK);
    assert_int_equal(len, (int64_t)strlen(two));
    assert_int_equal(tuf_timestamp_find(&ts, "pos-app", "1.3.0", &len, sha), PX_ENOTFOUND);
    tuf_timestamp_free(&ts);
    free(tsx);
    json_decref(env);
    free(one);
    free(two);
}

static int setup(void **state)
{
    tuffix *f = calloc(1, sizeof *f);
    assert_non_null(f);
    fix_setup(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    tuffix *f = *state;
    testlib_rmtree(f->dir);
    OPENSSL_cleanse(f, sizeof *f);
    free(f);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical),
        cmocka_unit_test(test_versions),
        cmocka_unit_test_setup_teardown(test_key_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_threshold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_targets_and_timestamp, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
