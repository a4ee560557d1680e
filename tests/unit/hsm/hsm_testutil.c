/* hsm_testutil.c: see hsm_testutil.h. */
#include "hsm_testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "crypto/crypto.h"
#include "crypto/pinblock.h"
#include "tmpdir.h"

void fx_path(const hsm_fixture *f, const char *name, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/%s", f->dir, name);
}

void fx_setup(hsm_fixture *f, const char *name)
{
    store_config sc;
    px_error e = {0};
    memset(f, 0, sizeof *f);
    assert_int_equal(testlib_mkdtemp(name, f->dir, sizeof f->dir), 0);
    setenv(HSM_ENV_PASSPHRASE, TEST_PASSPHRASE, 1);
    hsm_config_default(&f->cfg);
    f->cfg.lmk_scrypt_log2n = 10;
    fx_path(f, "var/lmk.bin", f->cfg.lmk_file, sizeof f->cfg.lmk_file);
    fx_path(f, "var/hsm-audit.log", f->cfg.audit_file, sizeof f->cfg.audit_file);
    snprintf(f->cfg.caller, sizeof f->cfg.caller, "test:%s", name);
    if (hsm_lmk_init(&f->cfg, f->lmk_check, &e) != PX_OK)
        fail_msg("lmk init: %s", px_error_text(&e));
    store_config_default(&sc);
    fx_path(f, "var/possum.db", sc.path, sizeof sc.path);
    if (store_open(&sc, &f->st, &e) != PX_OK)
        fail_msg("store open: %s", px_error_text(&e));
    if (hsm_open(&f->cfg, f->st, &f->h, &e) != PX_OK)
        fail_msg("hsm open: %s", px_error_text(&e));
}

void fx_teardown(hsm_fixture *f)
{
    hsm_close(f->h);
    store_close(f->st);
    testlib_rmtree(f->dir);
    memset(f, 0, sizeof *f);
}

hsm_key_attrs fx_attrs(const char *usage, char alg, char mode, char exp, size_t len)
{
    hsm_key_attrs a;
    memset(&a, 0, sizeof a);
    memcpy(a.usage, usage, 2);
    a.algorithm = alg;
    a.mode = mode;
    a.exportability = exp;
    a.length = len;
    return a;
}

hsm_key *fx_key(hsm *h, const char *usage, char alg, char mode, char exp, const char *hex,
                const char *label, hsm_keyblock *kb)
{
    uint8_t key[32], c1[32], c2[32], kcv[8];
    char h1[65], h2[65], k1[17], k2[17];
    size_t n = 0, kn = 0;
    hsm_keyblock local;
    hsm_key *k = NULL;
    px_error e = {0};
    crypto_alg ca = alg == 'A' ? CRYPTO_AES : CRYPTO_TDES;
    assert_int_equal(px_hex_decode(hex, key, sizeof key, &n), PX_OK);
    assert_int_equal(crypto_random(c1, n, NULL), PX_OK);
    for (size_t i = 0; i < n; i++)
        c2[i] = key[i] ^ c1[i];
    px_hex_encode(c1, n, h1);
    px_hex_encode(c2, n, h2);
    crypto_kcv(ca, c1, n, kcv, sizeof kcv, &kn, NULL);
    px_hex_encode(kcv, 3, k1);
    crypto_kcv(ca, c2, n, kcv, sizeof kcv, &kn, NULL);
    px_hex_encode(kcv, 3, k2);
    hsm_component comps[2] = {{h1, k1}, {h2, k2}};
    hsm_key_attrs a = fx_attrs(usage, alg, mode, exp, n);
    if (kb == NULL)
        kb = &local;
    if (hsm_key_form(h, &a, comps, 2, label, kb, &e) != PX_OK)
        fail_msg("form %s: %s", usage, px_error_text(&e));
    if (hsm_key_load(h, kb->block, &k, &e) != PX_OK)
        fail_msg("load %s: %s", usage, px_error_text(&e));
    return k;
}

void fx_pinblock(const char *keyhex, crypto_pin_format fmt, const char *pin, const char *pan,
                 hsm_pin_block *out)
{
    uint8_t key[32], clear[16];
    size_t kl = 0, n = 0;
    px_error e = {0};
    assert_int_equal(px_hex_decode(keyhex, key, sizeof key, &kl), PX_OK);
    memset(out, 0, sizeof *out);
    out->format = fmt;
    if (fmt == CRYPTO_PIN_ISO4) {
        assert_int_equal(crypto_pinblock4_encrypt(key, kl, pin, pan, out->data, &e), PX_OK);
        out->len = 16;
        return;
    }
    assert_int_equal(crypto_pinblock_encode(fmt, pin, pan, clear, sizeof clear, &n, &e), PX_OK);
    assert_int_equal(crypto_encrypt(CRYPTO_TDES, CRYPTO_ECB, key, kl, NULL, clear, n, out->data,
                                    &e),
                     PX_OK);
    out->len = n;
}

void fx_pin_of(const char *keyhex, const hsm_pin_block *in, const char *pan, char pin[13])
{
    uint8_t key[32], clear[16];
    size_t kl = 0;
    px_error e = {0};
    assert_int_equal(px_hex_decode(keyhex, key, sizeof key, &kl), PX_OK);
    if (in->format == CRYPTO_PIN_ISO4) {
        assert_int_equal(crypto_pinblock4_decrypt(key, kl, in->data, pan, pin, 13, &e), PX_OK);
        return;
    }
    assert_int_equal(crypto_decrypt(CRYPTO_TDES, CRYPTO_ECB, key, kl, NULL, in->data, in->len,
                                    clear, &e),
                     PX_OK);
    if (crypto_pinblock_decode(in->format, clear, in->len, pan, pin, 13, &e) != PX_OK)
        fail_msg("decode: %s", px_error_text(&e));
}

char *fx_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n)
        fail_msg("read %s", path);
    buf[n] = 0;
    fclose(f);
    if (len != NULL)
        *len = (size_t)n;
    return buf;
}

void fx_write(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static int mem_has(const char *buf, size_t n, const void *needle, size_t nl, int nocase)
{
    for (size_t i = 0; nl > 0 && i + nl <= n; i++)
        if (nocase ? strncasecmp(buf + i, needle, nl) == 0 : memcmp(buf + i, needle, nl) == 0)
            return 1;
    return 0;
}

int fx_file_has_secret(const char *path, const char *hex)
{
    uint8_t raw[64];
    size_t n = 0, rn = 0;
    char *buf = fx_read(path, &n);
    int found;
    if (buf == NULL)
        return 0;
    px_hex_decode(hex, raw, sizeof raw, &rn);
    found = mem_has(buf, n, hex, strlen(hex), 1) || mem_has(buf, n, raw, rn, 0);
    free(buf);
    return found;
}

int fx_dir_has_secret(const char *dir, const char *hex)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int found = 0;
    if (d == NULL)
        return 0;
    while (!found && (de = readdir(d)) != NULL) {
        char p[PX_PATH_MAX * 2];
        struct stat st;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (lstat(p, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            found = fx_dir_has_secret(p, hex);
        else if (S_ISREG(st.st_mode))
            found = fx_file_has_secret(p, hex);
    }
    closedir(d);
    return found;
}
