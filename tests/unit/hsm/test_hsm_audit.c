/* test_hsm_audit.c: the audit log: what is recorded, the hash chain and MACs, detection of
 * every kind of tampering (edit, deletion, reordering, truncation, forgery), aggregation of
 * hot-path operations, several writers, sessions on other threads, and refusing work when
 * the log cannot be written. */
#include "hsm_testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#define KEY "0123456789ABCDEFFEDCBA9876543210"

static int setup(void **state)
{
    hsm_fixture *f = calloc(1, sizeof *f);
    hsm_key_attrs a = fx_attrs("P0", 'T', 'B', 'S', 16);
    hsm_keyblock kb;
    fx_setup(f, "hsmaudit");
    for (int i = 0; i < 4; i++)
        assert_int_equal(hsm_key_generate(f->h, &a, NULL, &kb, NULL), PX_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_teardown(*state);
    free(*state);
    return 0;
}

/* Lines of the audit log (malloc'd copies), count in *n. */
static char **lines(const char *path, size_t *n)
{
    size_t len = 0, cap = 64;
    char *text = fx_read(path, &len), **out = calloc(cap, sizeof *out), *save = NULL;
    *n = 0;
    for (char *l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
        if (*n == cap)
            out = realloc(out, (cap *= 2) * sizeof *out);
        out[(*n)++] = strdup(l);
    }
    free(text);
    return out;
}

/* Write the lines back (each with its newline), optionally without the last newline. */
static void put_lines(const char *path, char **l, size_t n, int cut_last_newline)
{
    FILE *f = fopen(path, "wb");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%s", l[i], cut_last_newline && i + 1 == n ? "" : "\n");
    fclose(f);
}

static void free_lines(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

/* Verify a scratch copy of the log (and its head) after mutate() ran on its lines. */
static int verify_copy(hsm_fixture *f, const hsm_config *cfg,
                       void (*mutate)(char **l, size_t *n, int *cut), px_error *e)
{
    char copy[PX_PATH_MAX], head[PX_PATH_MAX + 8], src_head[PX_PATH_MAX + 8];
    size_t n = 0, entries = 0, hl = 0;
    int cut = 0;
    char **l = lines(f->cfg.audit_file, &n);
    fx_path(f, "copy.log", copy, sizeof copy);
    snprintf(head, sizeof head, "%s.head", copy);
    snprintf(src_head, sizeof src_head, "%s.head", f->cfg.audit_file);
    char *ht = fx_read(src_head, &hl);
    fx_write(head, ht, hl);
    free(ht);
    mutate(l, &n, &cut);
    put_lines(copy, l, n, cut);
    free_lines(l, n);
    return hsm_audit_verify(copy, cfg, &entries, e);
}

static void nothing(char **l, size_t *n, int *cut)
{
    (void)l, (void)n, (void)cut;
}

static void edit(char **l, size_t *n, int *cut)
{
    (void)n, (void)cut;
    char *p = strstr(l[2], "\"result\":\"ok\"");
    assert_non_null(p);
    memcpy(p + 10, "no", 2);
}

static void delete_middle(char **l, size_t *n, int *cut)
{
    (void)cut;
    free(l[3]);
    memmove(l + 3, l + 4, (*n - 4) * sizeof *l);
    (*n)--;
}

static void reorder(char **l, size_t *n, int *cut)
{
    (void)n, (void)cut;
    char *t = l[2];
    l[2] = l[3];
    l[3] = t;
}

static void drop_last(char **l, size_t *n, int *cut)
{
    (void)cut;
    free(l[--(*n)]);
}

static void cut_mid_line(char **l, size_t *n, int *cut)
{
    l[*n - 1][strlen(l[*n - 1]) / 2] = 0;
    *cut = 1;
}

static void hex_sha256(const char *s, size_t n, char out[65])
{
    uint8_t md[32];
    SHA256((const uint8_t *)s, n, md);
    px_hex_encode(md, 32, out);
}

/* Edit line 3 and rewrite its hash and every later prev/hash: a forger without the LMK. */
static void forge(char **l, size_t *n, int *cut)
{
    char prev[65] = "", h[65];
    (void)cut;
    edit(l, n, cut);
    for (size_t i = 2; i < *n; i++) {
        size_t len = strlen(l[i]);
        if (prev[0])
            memcpy(l[i] + len - 148 - 65, prev, 64);
        hex_sha256(l[i], len - 75, h);
        memcpy(l[i] + len - 66, h, 64);
        memcpy(prev, h, 65);
    }
}

static void test_chain_detects_tampering(void **state)
{
    hsm_fixture *f = *state;
    px_error e = {0};
    size_t entries = 0;
    assert_int_equal(hsm_audit_flush(f->h, &e), PX_OK);
    assert_int_equal(hsm_audit_verify(f->cfg.audit_file, &f->cfg, &entries, &e), PX_OK);
    assert_true(entries >= 6);
    assert_int_equal(hsm_audit_verify(f->cfg.audit_file, NULL, &entries, &e), PX_OK);
    assert_int_equal(verify_copy(f, &f->cfg, nothing, &e), PX_OK);

    assert_int_equal(verify_copy(f, NULL, edit, &e), PX_EAUTH);
    assert_non_null(strstr(e.msg, "line 3: hash does not match"));
    assert_int_equal(verify_copy(f, NULL, delete_middle, &e), PX_EAUTH);
    assert_non_null(strstr(e.msg, "line 4"));
    assert_non_null(strstr(e.msg, "deleted"));
    assert_int_equal(verify_copy(f, NULL, reorder, &e), PX_EAUTH);
    assert_non_null(strstr(e.msg, "line 3"));
    assert_int_equal(verify_copy(f, NULL, drop_last, &e), PX_EAUTH);
    assert_non_null(strstr(e.msg, "truncated"));
    assert_int_equal(verify_copy(f, NULL, cut_mid_line, &e), PX_EAUTH);
    assert_non_null(strstr(e.msg, "incomplete"));
    /* a forger who recomputes the SHA-256 chain passes the chain check, not the MACs */
    assert_int_equal(verify_copy(f, &f->cfg, forge, &e), PX_EAUTH);
    assert_non_null(strstr(e.msg, "line 3: MAC does not verify"));
    /* a log is checked against its own LMK only */
    hsm_fixture other;
    fx_setup(&other, "hsmaudit2");
    assert_int_equal(hsm_audit_verify(f->cfg.audit_file, &other.cfg, &entries, &e), PX_EAUTH);
    fx_teardown(&other);
}

static void test_entries_are_recorded(void **state)
{
    hsm_fixture *f = *state;
    hsm_key *k = fx_key(f->h, "M3", 'T', 'C', 'S', KEY, "MAK.audit", NULL);
    hsm_key *pin = fx_key(f->h, "P0", 'T', 'B', 'S', KEY, NULL, NULL);
    uint8_t mac[16], data[100] = {0};
    size_t n = 0, len = 0;
    px_error e = {0};
    assert_int_equal(hsm_mac_generate(f->h, k, CRYPTO_MAC_X919, data, 100, mac, sizeof mac, &n, &e),
                     PX_OK);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(hsm_mac_verify(f->h, k, CRYPTO_MAC_X919, data, 100, mac, 8, &e), PX_OK);
    mac[0] ^= 1;
    for (int i = 0; i < 3; i++)
        assert_int_equal(hsm_mac_verify(f->h, k, CRYPTO_MAC_X919, data, 100, mac, 8, &e), PX_EAUTH);
    assert_int_equal(hsm_mac_verify(f->h, pin, CRYPTO_MAC_X919, data, 100, mac, 8, &e), PX_EPERM);
    /* the refusal is on disk at once, the counts after a flush */
    char *text = fx_read(f->cfg.audit_file, &len);
    assert_non_null(strstr(
        text,
        "\"op\":\"mac.verify\",\"caller\":\"test:hsmaudit\",\"label\":\"\",\"kcv\":\"08D7B4\","
        "\"result\":\"refused\""));
    assert_null(strstr(text, "\"count\":1000"));
    free(text);
    assert_int_equal(hsm_audit_flush(f->h, &e), PX_OK);
    text = fx_read(f->cfg.audit_file, &len);
    assert_non_null(
        strstr(text, "\"op\":\"mac.verify\",\"caller\":\"test:hsmaudit\",\"label\":\"MAK.audit\","
                     "\"kcv\":\"08D7B4\",\"result\":\"ok\",\"count\":1000"));
    assert_non_null(
        strstr(text, "\"op\":\"mac.verify\",\"caller\":\"test:hsmaudit\",\"label\":\"MAK.audit\","
                     "\"kcv\":\"08D7B4\",\"result\":\"fail\",\"count\":3"));
    assert_non_null(strstr(text, "\"op\":\"key.form\""));
    assert_non_null(strstr(text, "\"op\":\"key.load\""));
    assert_non_null(strstr(text, "\"op\":\"lmk.init\""));
    free(text);
    hsm_key_free(f->h, k);
    hsm_key_free(f->h, pin);
    assert_false(fx_file_has_secret(f->cfg.audit_file, KEY));
}

static void test_two_writers_share_a_log(void **state)
{
    hsm_fixture *f = *state;
    hsm *h2 = NULL;
    hsm_key_attrs a = fx_attrs("D0", 'A', 'B', 'E', 16);
    hsm_keyblock kb;
    size_t entries = 0;
    px_error e = {0};
    assert_int_equal(hsm_open(&f->cfg, f->st, &h2, &e), PX_OK);
    assert_int_equal(hsm_set_caller(h2, "switch", &e), PX_OK);
    assert_int_equal(hsm_set_caller(h2, "no spaces", &e), PX_EINVAL);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(hsm_key_generate(f->h, &a, NULL, &kb, &e), PX_OK);
        assert_int_equal(hsm_key_generate(h2, &a, NULL, &kb, &e), PX_OK);
    }
    hsm_close(h2);
    assert_int_equal(hsm_audit_verify(f->cfg.audit_file, &f->cfg, &entries, &e), PX_OK);
    assert_true(entries >= 18);
}

typedef struct session_job {
    hsm *h;
    int failures;
} session_job;

/* Key management and MACs on one handle, as a worker thread does with its session. */
static void *session_work(void *arg)
{
    session_job *j = arg;
    hsm_key_attrs a = fx_attrs("M3", 'T', 'C', 'S', 16);
    hsm_keyblock kb;
    uint8_t mac[16], data[16] = {1, 2, 3};
    size_t n = 0;
    for (int i = 0; i < 20; i++) {
        hsm_key *k = NULL;
        j->failures += hsm_key_generate(j->h, &a, NULL, &kb, NULL) != PX_OK ||
                       hsm_key_load(j->h, kb.block, &k, NULL) != PX_OK ||
                       hsm_mac_generate(j->h, k, CRYPTO_MAC_X919, data, sizeof data, mac,
                                        sizeof mac, &n, NULL) != PX_OK;
        hsm_key_free(j->h, k);
    }
    return NULL;
}

/* A session: the core's LMK without unlocking it again (no passphrase, no LMK file needed),
 * its own caller and keys, the same audit chain, used on another thread beside the core. */
static void test_session_on_another_thread(void **state)
{
    hsm_fixture *f = *state;
    hsm *s = NULL;
    hsm_key *named = NULL;
    hsm_key_attrs a = fx_attrs("D0", 'A', 'B', 'E', 16);
    hsm_keyblock kb;
    session_job core = {0}, worker = {0};
    pthread_t th;
    char moved[PX_PATH_MAX], *text;
    size_t entries = 0, len = 0;
    px_error e = {0};
    fx_path(f, "lmk.moved", moved, sizeof moved);
    assert_int_equal(rename(f->cfg.lmk_file, moved), 0);
    assert_int_equal(hsm_session_open(f->h, f->st, "no spaces", &s, &e), PX_EINVAL);
    assert_null(s);
    assert_int_equal(hsm_session_open(f->h, f->st, "worker:1", &s, &e), PX_OK);
    assert_string_equal(hsm_lmk_check(s), hsm_lmk_check(f->h));
    /* a key the session makes is the core's LMK's: the core loads it by name */
    assert_int_equal(hsm_key_generate(s, &a, "session.key", &kb, &e), PX_OK);
    assert_int_equal(hsm_key_load_named(f->h, "session.key", &named, &e), PX_OK);
    hsm_key_free(f->h, named);
    core.h = f->h;
    worker.h = s;
    assert_int_equal(pthread_create(&th, NULL, session_work, &worker), 0);
    session_work(&core);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(core.failures, 0);
    assert_int_equal(worker.failures, 0);
    hsm_close(s);
    assert_int_equal(rename(moved, f->cfg.lmk_file), 0);
    assert_int_equal(hsm_audit_verify(f->cfg.audit_file, &f->cfg, &entries, &e), PX_OK);
    assert_true(entries >= 2 * 20 * 3);
    text = fx_read(f->cfg.audit_file, &len);
    assert_non_null(strstr(text, "\"op\":\"hsm.open\",\"caller\":\"worker:1\""));
    assert_non_null(strstr(text, " session\""));
    free(text);
}

static void test_unwritable_log_fails_closed(void **state)
{
    hsm_fixture *f = *state;
    hsm_key *k = fx_key(f->h, "M3", 'T', 'C', 'S', KEY, NULL, NULL);
    hsm_key_attrs a = fx_attrs("D0", 'A', 'B', 'E', 16);
    hsm_keyblock kb;
    uint8_t mac[16], data[8] = {0};
    size_t n = 0;
    px_error e = {0};
    /* a damaged tail: the log cannot be chained any more */
    FILE *fp = fopen(f->cfg.audit_file, "ab");
    fputs("{\"seq\":garbage", fp);
    fclose(fp);
    assert_int_equal(hsm_key_generate(f->h, &a, NULL, &kb, &e), PX_EIO);
    assert_string_equal(kb.block, "");
    assert_int_equal(hsm_mac_generate(f->h, k, CRYPTO_MAC_X919, data, 8, mac, sizeof mac, &n, &e),
                     PX_EIO);
    assert_non_null(strstr(e.msg, "audit log"));
    hsm_key_free(f->h, k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chain_detects_tampering, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entries_are_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_writers_share_a_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_on_another_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable_log_fails_closed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
