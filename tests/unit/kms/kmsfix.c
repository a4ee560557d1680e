/* kmsfix.c: see kmsfix.h. */
#include "kmsfix.h"
#include "lib/hex.h"
#include "lib/log.h"
#include "lib/time.h"
#include "tmpdir.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

static void die(const char *what, const px_error *e)
{
    fail_msg("%s: %s", what, px_error_text(e));
}

char *kf_crl(const kf *f)
{
    char *crl = NULL;
    px_error e = {0};
    if (pki_read_file(f->crl, PX_PKI_CRL_MAX, &crl, NULL, &e) != PX_OK)
        die("crl", &e);
    return crl;
}

void kf_kms_reopen(kf *f, kf_kms *m)
{
    kms_config c;
    px_error e = {0};
    kms_close(m->k);
    m->k = NULL;
    kms_config_default(&c);
    snprintf(c.customer, sizeof c.customer, "%s", m->customer);
    snprintf(c.recv_cert, sizeof c.recv_cert, "%s", m->recv_cert);
    snprintf(c.ca, sizeof c.ca, "%s", f->ca_crt);
    snprintf(c.crl, sizeof c.crl, "%s", f->crl);
    snprintf(c.mtms_cn, sizeof c.mtms_cn, "mtms:factory");
    c.challenge_ttl_ms = 60000;
    if (kms_open(&c, m->st, m->h, &m->k, &e) != PX_OK)
        die("kms open", &e);
}

void kf_kms_make(kf *f, kf_kms *m, const char *customer)
{
    store_config sc;
    uint8_t pub[HSM_EC_PUB_LEN];
    pki_issue_req r;
    char lmk_check[PX_HSM_KCV_HEX_MAX];
    px_error e = {0};
    memset(m, 0, sizeof *m);
    snprintf(m->customer, sizeof m->customer, "%s", customer);
    snprintf(m->dir, sizeof m->dir, "%s/kms-%s", f->dir, customer);
    mkdir(m->dir, 0700);
    setenv(HSM_ENV_PASSPHRASE, KF_PASSPHRASE, 1);
    hsm_config_default(&m->hcfg);
    m->hcfg.lmk_scrypt_log2n = 10;
    snprintf(m->hcfg.lmk_file, sizeof m->hcfg.lmk_file, "%s/lmk.bin", m->dir);
    snprintf(m->hcfg.audit_file, sizeof m->hcfg.audit_file, "%s/hsm-audit.log", m->dir);
    snprintf(m->hcfg.caller, sizeof m->hcfg.caller, "kms");
    if (hsm_lmk_init(&m->hcfg, lmk_check, &e) != PX_OK)
        die("lmk", &e);
    store_config_default(&sc);
    snprintf(sc.path, sizeof sc.path, "%s/kms.db", m->dir);
    sc.synchronous_full = 0;
    if (store_open(&sc, &m->st, &e) != PX_OK)
        die("store", &e);
    if (hsm_open(&m->hcfg, m->st, &m->h, &e) != PX_OK)
        die("hsm", &e);
    if (kms_recv_key_create(m->h, "kms.recv", pub, &e) != PX_OK)
        die("recv key", &e);
    memset(&r, 0, sizeof r);
    r.role = PKI_ROLE_KMS;
    r.purpose = PKI_PURPOSE_KEY_AGREEMENT;
    r.name = customer;
    r.days = 365;
    r.pub_point = pub;
    if (pki_ca_issue(f->ca, &r, &m->recv_pem, NULL, NULL, &e) != PX_OK)
        die("recv cert", &e);
    snprintf(m->recv_cert, sizeof m->recv_cert, "%s/recv.crt", m->dir);
    if (pki_write_file(m->recv_cert, m->recv_pem, strlen(m->recv_pem), 0644, &e) != PX_OK)
        die("recv cert file", &e);
    kf_kms_reopen(f, m);
}

void kf_kms_free(kf_kms *m)
{
    kms_close(m->k);
    hsm_close(m->h);
    store_close(m->st);
    free(m->recv_pem);
    memset(m, 0, sizeof *m);
}

void kf_setup(kf *f, const char *name)
{
    px_error e = {0};
    memset(f, 0, sizeof *f);
    px_log_setup(PX_LOG_ERROR, PX_LOG_TEXT, stderr);
    assert_int_equal(testlib_mkdtemp(name, f->dir, sizeof f->dir), 0);
    snprintf(f->ca_dir, sizeof f->ca_dir, "%s/ca", f->dir);
    snprintf(f->ca_crt, sizeof f->ca_crt, "%s/ca.crt", f->ca_dir);
    snprintf(f->crl, sizeof f->crl, "%s/crl.pem", f->ca_dir);
    unsetenv(PKI_ENV_PASSPHRASE);
    if (pki_ca_init(f->ca_dir, "possum test CA", 3650, 30, NULL, &e) != PX_OK ||
        pki_ca_open(f->ca_dir, &f->ca, &e) != PX_OK)
        die("ca", &e);
    kf_kms_make(f, &f->kms, "C001");
}

void kf_teardown(kf *f)
{
    kf_kms_free(&f->kms);
    pki_ca_close(f->ca);
    if (getenv("POSSUM_TEST_KEEP") == NULL)
        testlib_rmtree(f->dir);
}

pinpad *kf_pinpad(kf *f, const char *serial)
{
    char dir[PX_PATH_MAX], keys[PX_PATH_MAX + 16], secret[PX_PATH_MAX + 16],
        *csr = NULL, *cert = NULL, *ca = NULL, *crl = kf_crl(f);
    pinpad *p = NULL;
    pki_issue_req r;
    px_error e = {0};
    snprintf(dir, sizeof dir, "%s/pp-%s", f->dir, serial);
    mkdir(dir, 0700);
    snprintf(keys, sizeof keys, "%s/pinpad.keys", dir);
    snprintf(secret, sizeof secret, "%s/device.secret", dir);
    if (pinpad_secret_create(secret, &e) != PX_OK ||
        pinpad_create(keys, secret, serial, &p, &e) != PX_OK)
        die("pinpad", &e);
    if (tk_device_key_create(p, &csr, &e) != PX_OK)
        die("device key", &e);
    memset(&r, 0, sizeof r);
    r.role = PKI_ROLE_PINPAD;
    r.purpose = PKI_PURPOSE_DEVICE;
    r.name = serial;
    r.days = 3650;
    r.csr_pem = csr;
    if (pki_ca_issue(f->ca, &r, &cert, NULL, NULL, &e) != PX_OK)
        die("device cert", &e);
    if (pki_read_file(f->ca_crt, PX_PKI_PEM_MAX, &ca, NULL, &e) != PX_OK)
        die("ca file", &e);
    if (tk_device_install(p, cert, ca, crl, &e) != PX_OK)
        die("device install", &e);
    free(csr);
    free(cert);
    free(ca);
    free(crl);
    return p;
}

size_t kf_envelope(kf *f, pinpad *p, const kf_kms *m, uint8_t *out, size_t cap)
{
    char *crl = kf_crl(f);
    size_t n = 0;
    px_error e = {0};
    if (tk_export(p, m->recv_pem, crl, out, cap, &n, NULL, NULL, &e) != PX_OK)
        die("tk export", &e);
    free(crl);
    return n;
}

int kf_download(kf_kms *m, pinpad *p, px_error *e)
{
    kms_challenge c;
    kms_tmk t;
    uint8_t mac[TK_MAC_LEN], kcv[3];
    size_t n = 0;
    int rc = kms_download_challenge(m->k, pinpad_serial(p), "test", &c, e);
    if (rc != PX_OK)
        return rc;
    if ((rc = tk_download_proof(p, c.session, sizeof c.session, c.session_kcv, c.nonce,
                                sizeof c.nonce, mac, e)) != PX_OK)
        return rc;
    if ((rc = kms_download(m->k, pinpad_serial(p), c.nonce, sizeof c.nonce, mac, sizeof mac, "test",
                           &t, e)) != PX_OK)
        return rc;
    px_hex_decode(t.kcv, kcv, sizeof kcv, &n);
    if ((rc = pinpad_load_tmk_under_tk(p, t.cryptogram, sizeof t.cryptogram, kcv, n, e)) != PX_OK)
        return rc;
    if ((rc = tk_result_mac(p, c.session, sizeof c.session, c.nonce, sizeof c.nonce, "loaded", mac,
                            e)) != PX_OK)
        return rc;
    return kms_download_result(m->k, pinpad_serial(p), c.nonce, sizeof c.nonce, "loaded", mac,
                               sizeof mac, "test", e);
}

static int file_has(const char *path, const uint8_t key[16])
{
    char *data = NULL, hex[33];
    size_t len = 0;
    int found = 0;
    px_error e = {0};
    if (pki_read_file(path, 256u * 1024 * 1024, &data, &len, &e) != PX_OK)
        return 0;
    px_hex_encode(key, 16, hex);
    for (size_t i = 0; !found && len >= 16 && i <= len - 16; i++)
        found = memcmp(data + i, key, 16) == 0 ||
                (i + 32 <= len && strncasecmp(data + i, hex, 32) == 0);
    free(data);
    return found;
}

int kf_dir_has_key(const char *dir, const uint8_t key[16])
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int found = 0;
    if (d == NULL)
        return 0;
    while (!found && (de = readdir(d)) != NULL) {
        char p[PX_PATH_MAX + 300];
        struct stat sb;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (lstat(p, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode))
            found = kf_dir_has_key(p, key);
        else if (S_ISREG(sb.st_mode))
            found = file_has(p, key);
    }
    closedir(d);
    return found;
}
