/*
 * End to end, remote key loading (seed 001): a CA (`possum ca`), the MTMS and two customers'
 * KMSes as separate possumd nodes with their own configs, stores and HSMs, operator
 * terminals (`possum operator`) reading simulated PIN pads (`possum pos init`), over mutual
 * TLS with certificates from the CA. Then the terminal loads its TMK from the KMS, the TMK
 * goes to the switch under a zone key, and the terminal signs on and buys.
 *
 * Security: a revoked operator, one from another CA, a certificate of another role; a TK
 * envelope delivered to another customer's KMS; a replayed download; a terminal without the
 * TK; a check-value mismatch: each refused with its reason and audited. No file the MTMS,
 * the KMSes or the switch wrote holds the TK or the TMK in the clear.
 * Bad input: an unknown serial, an unknown customer code, a malformed CSV, a KMS that is down
 * (the TK waits in the outbox and is delivered when the KMS is back).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "device/pinpad/pinpad_int.h"
#include "device/pinpad/tk.h"
#include "hsm/hsm.h"
#include "klfix.h"
#include "lib/hex.h"
#include "lib/str.h"
#include "net/net.h"
#include "pki/https.h"
#include "pki/pki.h"
#include "pki/tkenv.h"
#include "swfix.h"
#include "tmpdir.h"

#define MID "898100000000001"
/* The zone key between the customer's KMS and the switch, formed from two components on
 * both sides (public test values). */
#define ZMK_C1 "0123456789ABCDEFFEDCBA9876543210"
#define ZMK_C2 "1F1F1F1F1F1F1F1F0E0E0E0E0E0E0E0E"

typedef struct kl_env {
    char dir[PX_PATH_MAX];
    char ca_dir[PX_PATH_MAX], ca_crt[PX_PATH_MAX], crl[PX_PATH_MAX];
    kl_node mtms, kms1, kms2;
    char mtms_url[64], kms1_url[64], kms2_url[64], kms1_dl[64];
    char op_flags[4 * PX_PATH_MAX]; /* --mtms ... --tls-* of operator alice */
    char csv[PX_PATH_MAX];
} kl_env;

static kl_env G;
static swfix_node SW; /* the switch node, stopped by the teardown if a test failed */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void path(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void path(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, PX_PATH_MAX, fmt, ap);
    va_end(ap);
}

/* Run, and fail the test (showing the output) unless it exits with want. */
static void sh_expect(int want, px_buf *keep, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void sh_expect(int want, px_buf *keep, const char *fmt, ...)
{
    char line[8192];
    px_buf out;
    va_list ap;
    int rc;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    px_buf_init(&out, 16 * 1024 * 1024);
    rc = kl_sh(&out, "%s", line);
    if (rc != want)
        fail_msg("$ %s\n%s\nexit %d, expected %d", line, px_buf_str(&out), rc, want);
    if (keep != NULL)
        px_buf_append_str(keep, px_buf_str(&out));
    px_buf_free(&out);
}

static int has(px_buf *b, const char *needle)
{
    return strstr(px_buf_str(b), needle) != NULL;
}

#define EXPECT_IN(buf, needle)                                                                     \
    do {                                                                                           \
        if (!has(buf, needle))                                                                     \
            fail_msg("expected \"%s\" in:\n%s", needle, px_buf_str(buf));                          \
    } while (0)

/* ---- the nodes ---- */

static int kms_node(kl_node *n, const char *customer)
{
    static const char *const names[] = {"kms", "kms.download", "http", NULL};
    char dir[PX_PATH_MAX], ini[8192], pub[PX_PATH_MAX], recv[PX_PATH_MAX];
    path(dir, "%s/kms-%s", G.dir, customer);
    mkdir(dir, 0700);
    sh_expect(0, NULL, "possum ca issue --dir %s --role kms --name %s --san 127.0.0.1 --out %s/tls",
              G.ca_dir, customer, dir);
    snprintf(
        ini, sizeof ini,
        "[possumd]\nnode = kms-%s\nlog_level = info\ndrain_timeout_ms = 2000\n\n"
        "[store]\nbackend = sqlite\npath = %s/kms.db\n\n"
        "[http]\nlisten = 127.0.0.1:0\n\n"
        "[kms]\nenabled = true\ncustomer = %s\nlisten = 127.0.0.1:%d\ntls_cert = tls.crt\n"
        "hsm_lmk_file = %s/lmk.bin\nhsm_audit_file = %s/hsm-audit.log\nhsm_lmk_scrypt_log2n = 10\n"
        "tls_key = tls.key\ntls_ca = %s\ntls_crl = %s\ntls_require_client_cert = true\n"
        "mtms_cn = mtms:factory\nrecv_key = kms.recv\nrecv_cert = recv.crt\n"
        "zone_key = ZMK.platform\nchallenge_ttl_ms = 60000\n"
        "download_listen = 127.0.0.1:%d\ndownload_tls_cert = tls.crt\ndownload_tls_key = tls.key\n",
        customer, dir, customer, swfix_free_port(), dir, dir, G.ca_crt, G.crl, swfix_free_port());
    if (kl_node_config(n, dir, "kms", ini) != 0)
        return -1;
    path(pub, "%s/recv.pub", dir);
    path(recv, "%s/recv", dir);
    sh_expect(0, NULL, "possum hsm init -c %s --lmk-file %s/lmk.bin --audit-file %s/hsm-audit.log",
              n->ini, dir, dir);
    sh_expect(0, NULL, "possum kms init -c %s --out %s", n->ini, pub);
    sh_expect(0, NULL, "possum ca issue --dir %s --role kms --name %s --pubkey %s --out %s",
              G.ca_dir, customer, pub, recv);
    return kl_node_start(n, names);
}

static int mtms_node(void)
{
    static const char *const names[] = {"mtms", "http", NULL};
    char dir[PX_PATH_MAX], ini[8192];
    path(dir, "%s/mtms", G.dir);
    mkdir(dir, 0700);
    sh_expect(0, NULL,
              "possum ca issue --dir %s --role mtms --name factory --san 127.0.0.1 --out %s/tls",
              G.ca_dir, dir);
    snprintf(ini, sizeof ini,
             "[possumd]\nnode = mtms\nlog_level = info\ndrain_timeout_ms = 2000\n\n"
             "[store]\nbackend = sqlite\npath = %s/mtms.db\n\n"
             "[http]\nlisten = 127.0.0.1:0\n\n"
             "[mtms]\nenabled = true\nlisten = 127.0.0.1:0\ntls_cert = tls.crt\ntls_key = tls.key\n"
             "tls_ca = %s\ntls_crl = %s\ntls_require_client_cert = true\n"
             "outbox_interval_ms = 200\noutbox_backoff_min_ms = 200\noutbox_backoff_max_ms = 1000\n"
             "kms_timeout_ms = 3000\n",
             dir, G.ca_crt, G.crl);
    return kl_node_config(&G.mtms, dir, "mtms", ini) == 0 ? kl_node_start(&G.mtms, names) : -1;
}

static void url_of(char *out, const kl_node *n, const char *name)
{
    snprintf(out, 64, "https://127.0.0.1:%d", kl_node_port(n, name));
}

static int setup(void **state)
{
    char pos[PX_PATH_MAX];
    px_error e = {0};
    (void)state;
    memset(&G, 0, sizeof G);
    if (net_init(&e) != PX_OK || testlib_mkdtemp("keyload", G.dir, sizeof G.dir) != 0)
        return -1;
    setenv(HSM_ENV_PASSPHRASE, SWFIX_PASSPHRASE, 1);
    unsetenv(PKI_ENV_PASSPHRASE);
    path(G.ca_dir, "%s/ca", G.dir);
    path(G.ca_crt, "%s/ca.crt", G.ca_dir);
    path(G.crl, "%s/crl.pem", G.ca_dir);
    path(pos, "%s/pos", G.dir);
    mkdir(pos, 0700);
    sh_expect(0, NULL, "possum ca init --dir %s --name 'possum e2e CA'", G.ca_dir);
    sh_expect(0, NULL, "possum ca issue --dir %s --role operator --name alice --out %s/alice",
              G.ca_dir, G.dir);
    sh_expect(0, NULL, "possum ca issue --dir %s --role operator --name bob --out %s/bob", G.ca_dir,
              G.dir);
    if (kms_node(&G.kms1, "C001") != 0 || kms_node(&G.kms2, "C002") != 0 || mtms_node() != 0)
        return -1;
    url_of(G.mtms_url, &G.mtms, "mtms");
    url_of(G.kms1_url, &G.kms1, "kms");
    url_of(G.kms2_url, &G.kms2, "kms");
    url_of(G.kms1_dl, &G.kms1, "kms.download");
    snprintf(G.op_flags, sizeof G.op_flags,
             "--mtms %s --tls-ca %s --tls-cert %s/alice.crt --tls-key %s/alice.key", G.mtms_url,
             G.ca_crt, G.dir, G.dir);
    sh_expect(0, NULL,
              "possum mtms customer add -c %s --code C001 --name 'Bank of Possum' --kms-url %s "
              "--kms-cert %s/kms-C001/recv.crt",
              G.mtms.ini, G.kms1_url, G.dir);
    sh_expect(0, NULL,
              "possum mtms customer add -c %s --code C002 --name 'Acquirer Two' --kms-url %s "
              "--kms-cert %s/kms-C002/recv.crt",
              G.mtms.ini, G.kms2_url, G.dir);
    /* production order: PP10000001 is booked for C002 by mistake (the operator corrects it) */
    path(G.csv, "%s/order-1.csv", G.dir);
    {
        FILE *f = fopen(G.csv, "w");
        if (f == NULL)
            return -1;
        fprintf(f, "serial,customer\nPP10000001,C002\n");
        for (int i = 2; i <= 9; i++)
            fprintf(f, "PP1000000%d,C001\n", i);
        fclose(f);
    }
    sh_expect(0, NULL, "possum mtms import -c %s --order PO-2026-001 %s", G.mtms.ini, G.csv);
    return 0;
}

static int teardown(void **state)
{
    int a, b, c;
    (void)state;
    if (SW.pid > 0)
        swfix_stop(&SW, SIGKILL, 5000);
    a = kl_node_stop(&G.mtms, SIGTERM, 10000);
    b = kl_node_stop(&G.kms1, SIGTERM, 10000);
    c = kl_node_stop(&G.kms2, SIGTERM, 10000);
    if (a != 0 || b != 0 || c != 0) {
        fprintf(stderr, "exit status: mtms %d, kms1 %d, kms2 %d\n", a, b, c);
        kl_node_dump(&G.mtms);
    }
    if (getenv("POSSUM_E2E_KEEP") == NULL)
        testlib_rmtree(G.dir);
    return a == 0 && b == 0 && c == 0 ? 0 : -1;
}

/* ---- helpers ---- */

static void terminal(const char *tid, char dir[PX_PATH_MAX])
{
    path(dir, "%s/pos/%s", G.dir, tid);
    sh_expect(0, NULL, "possum pos init --data %s --tid %s", dir, tid);
    sh_expect(0, NULL, "possum operator personalise --pinpad %s --ca-dir %s", dir, G.ca_dir);
}

static void wait_status(const char *serial, const char *status)
{
    char needle[32];
    px_buf out;
    snprintf(needle, sizeof needle, " %s ", status);
    px_buf_init(&out, 1 << 20);
    for (int i = 0; i < 150; i++) {
        px_buf_reset(&out);
        kl_sh(&out, "possum mtms status -c %s %s", G.mtms.ini, serial);
        if (has(&out, needle)) {
            px_buf_free(&out);
            return;
        }
        sleep_ms(100);
    }
    fail_msg("serial %s never reached status %s:\n%s", serial, status, px_buf_str(&out));
}

static int keyload(const char *dir)
{
    px_buf out;
    int rc;
    px_buf_init(&out, 1 << 20);
    rc = kl_sh(&out, "possum pos keyload --data %s --kms %s --tls-ca %s", dir, G.kms1_dl, G.ca_crt);
    if (rc != 0 || !has(&out, "TMK loaded into PIN pad"))
        fprintf(stderr, "%s", px_buf_str(&out));
    px_buf_free(&out);
    return rc;
}

/* The PIN pad of a terminal directory, opened in this process (the test looks inside it). */
static pinpad *open_pinpad(const char *dir, const char *serial)
{
    char keys[PX_PATH_MAX], secret[PX_PATH_MAX];
    pinpad *p = NULL;
    px_error e = {0};
    path(keys, "%s/pinpad.keys", dir);
    path(secret, "%s/device.secret", dir);
    if (pinpad_open(keys, secret, serial, &p, &e) != PX_OK)
        fail_msg("pinpad: %s", e.msg);
    return p;
}

static int file_has(const char *file, const uint8_t key[16])
{
    char *data = NULL, hex[33];
    size_t len = 0;
    int found = 0;
    px_error e = {0};
    if (pki_read_file(file, 512u * 1024 * 1024, &data, &len, &e) != PX_OK)
        return 0;
    px_hex_encode(key, 16, hex);
    for (size_t i = 0; !found && len >= 16 && i <= len - 16; i++)
        found = memcmp(data + i, key, 16) == 0 ||
                (i + 32 <= len && strncasecmp(data + i, hex, 32) == 0);
    free(data);
    return found;
}

/* The first file under dir holding key (binary or hex), or NULL. */
static const char *dir_has(const char *dir, const uint8_t key[16], char *where)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    const char *found = NULL;
    if (d == NULL)
        return NULL;
    while (found == NULL && (de = readdir(d)) != NULL) {
        char p[PX_PATH_MAX];
        struct stat sb;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (lstat(p, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode))
            found = dir_has(p, key, where);
        else if (S_ISREG(sb.st_mode) && file_has(p, key)) {
            snprintf(where, PX_PATH_MAX, "%s", p);
            found = where;
        }
    }
    closedir(d);
    return found;
}

static void no_clear_key(const char *dir, const uint8_t key[16], const char *what)
{
    char where[PX_PATH_MAX];
    if (dir_has(dir, key, where) != NULL)
        fail_msg("the clear %s is in %s", what, where);
}

/* ---- the story ---- */

static void kcv_hex(const char *hex, char out[8])
{
    uint8_t k[16], kcv[8];
    size_t n = 0, kn = 0;
    assert_int_equal(px_hex_decode(hex, k, sizeof k, &kn), PX_OK);
    assert_int_equal(crypto_kcv(CRYPTO_TDES, k, kn, kcv, sizeof kcv, &n, NULL), PX_OK);
    px_hex_encode(kcv, 3, out);
}

static void test_factory_to_first_purchase(void **state)
{
    char dir[PX_PATH_MAX], crypt[64], kcv[32], block[PX_HSM_KEYBLOCK_MAX], k1[8], k2[8], sw[4096],
        is[4096], all[8192], comps[160];
    px_buf out;
    swfix F;
    pinpad *p;
    int port;
    (void)state;
    px_buf_init(&out, 1 << 20);
    terminal("10000001", dir);
    /* the operator reads PP10000001, sees C002, says no, types C001, confirms */
    sh_expect(0, &out,
              "possum operator run %s --pinpad %s --confirm no --customer C001 --confirm-again yes",
              G.op_flags, dir);
    EXPECT_IN(&out, "PIN pad serial number: PP10000001");
    EXPECT_IN(&out, "MTMS: customer C002  Acquirer Two");
    EXPECT_IN(&out, "MTMS: customer C001  Bank of Possum");
    EXPECT_IN(&out, "re-associated from C002");
    wait_status("PP10000001", "acknowledged");
    px_buf_reset(&out);
    sh_expect(0, &out, "possum mtms audit -c %s --serial PP10000001", G.mtms.ini);
    EXPECT_IN(&out, "reassociate");
    EXPECT_IN(&out, "operator:alice");
    EXPECT_IN(&out, "operator confirmed customer C001");
    EXPECT_IN(&out, "acknowledged by kms:C001");
    /* the terminal loads its TMK remotely */
    assert_int_equal(keyload(dir), 0);
    px_buf_reset(&out);
    sh_expect(0, &out, "possum kms status -c %s PP10000001", G.kms1.ini);
    EXPECT_IN(&out, "loaded");
    /* the TMK goes to the switch under the zone key; the terminal signs on and buys */
    assert_int_equal(swfix_init(&F, NULL), 0);
    kcv_hex(ZMK_C1, k1);
    kcv_hex(ZMK_C2, k2);
    snprintf(comps, sizeof comps, "%s:%s,%s:%s", ZMK_C1, k1, ZMK_C2, k2);
    sh_expect(0, NULL,
              "possum hsm form -c %s --lmk-file %s/lmk.bin --audit-file %s/hsm-audit.log "
              "--label ZMK.platform --usage K0 --mode E --exportable N --components %s",
              G.kms1.ini, G.kms1.dir, G.kms1.dir, comps);
    sh_expect(
        0, NULL,
        "possum hsm form --config %s --lmk-file %s --audit-file %s --label ZMK.kms --usage K0 "
        "--mode D --exportable N --components %s",
        F.cli_ini, F.lmk, F.audit, comps);
    px_buf_reset(&out);
    sh_expect(0, &out, "possum kms tmk-export -c %s --serial PP10000001", G.kms1.ini);
    assert_int_equal(kl_field(px_buf_str(&out), "cryptogram", crypt, sizeof crypt), 0);
    assert_int_equal(kl_field(px_buf_str(&out), "kcv", kcv, sizeof kcv), 0);
    px_buf_reset(&out);
    sh_expect(0, &out,
              "possum hsm import --config %s --lmk-file %s --audit-file %s --label TMK.10000001 "
              "--kek ZMK.kms --key %s --kcv %s --usage K0 --alg T --mode E --exportable N",
              F.cli_ini, F.lmk, F.audit, crypt, kcv);
    assert_int_equal(kl_field(px_buf_str(&out), "block", block, sizeof block), 0);
    sh_expect(0, NULL,
              "possum terminal add --config %s --tid 10000001 --mid %s --name 'Possum Coffee' "
              "--tmk-block %s",
              F.cli_ini, MID, block);
    port = swfix_free_port();
    swfix_switch_section(&F, sw, sizeof sw, port, "provider_timeout_ms = 3000\n");
    swfix_issuer_section(&F, is, sizeof is, port, NULL);
    snprintf(all, sizeof all, "%s\n%s", sw, is);
    assert_int_equal(swfix_start(&F, &SW, "switch", NULL, all), 0);
    px_buf_reset(&out);
    sh_expect(0, &out, "possum pos signon --data %s --port %d", dir, SW.switch_port);
    EXPECT_IN(&out, "APPROVED");
    px_buf_reset(&out);
    sh_expect(0, &out, "possum pos purchase --data %s --port %d --amount 1234 --card %s --pin %s",
              dir, SW.switch_port, SWFIX_CARD_OK, SWFIX_CARD_OK_PIN);
    EXPECT_IN(&out, "APPROVED");
    assert_int_equal(swfix_stop(&SW, SIGTERM, 15000), 0);
    /* neither key in the clear in anything the MTMS, the KMSes or the switch wrote */
    p = open_pinpad(dir, "PP10000001");
    assert_true(pinpad_has_key(p, PINPAD_TK) && pinpad_has_key(p, PINPAD_TMK));
    no_clear_key(G.mtms.dir, p->slot[PINPAD_TK].key, "TK");
    no_clear_key(G.mtms.dir, p->slot[PINPAD_TMK].key, "TMK");
    no_clear_key(G.kms1.dir, p->slot[PINPAD_TK].key, "TK");
    no_clear_key(G.kms1.dir, p->slot[PINPAD_TMK].key, "TMK");
    no_clear_key(G.kms2.dir, p->slot[PINPAD_TK].key, "TK");
    no_clear_key(F.dir, p->slot[PINPAD_TK].key, "TK");
    no_clear_key(F.dir, p->slot[PINPAD_TMK].key, "TMK");
    pinpad_close(p);
    swfix_cleanup(&F);
    px_buf_free(&out);
}

/* ---- security ---- */

static void test_operator_certificates(void **state)
{
    static const char *const names[] = {"mtms", "http", NULL};
    char flags[4 * PX_PATH_MAX], dir2[PX_PATH_MAX];
    px_buf out;
    (void)state;
    px_buf_init(&out, 1 << 20);
    /* bob is revoked; the MTMS takes the new CRL at its restart */
    sh_expect(0, NULL, "possum ca revoke --dir %s --cn operator:bob --reason keyCompromise",
              G.ca_dir);
    assert_int_equal(kl_node_stop(&G.mtms, SIGTERM, 10000), 0);
    assert_int_equal(kl_node_start(&G.mtms, names), 0);
    url_of(G.mtms_url, &G.mtms, "mtms");
    snprintf(G.op_flags, sizeof G.op_flags,
             "--mtms %s --tls-ca %s --tls-cert %s/alice.crt --tls-key %s/alice.key", G.mtms_url,
             G.ca_crt, G.dir, G.dir);
    snprintf(flags, sizeof flags,
             "--mtms %s --tls-ca %s --tls-cert %s/bob.crt --tls-key %s/bob.key", G.mtms_url,
             G.ca_crt, G.dir, G.dir);
    sh_expect(1, &out, "possum operator lookup %s --serial PP10000002", flags);
    EXPECT_IN(&out, "certificate revoked");
    for (int i = 0; i < 50 && !kl_node_log_has(&G.mtms, "TLS handshake"); i++)
        sleep_ms(100); /* the MTMS logs the refused handshake as the client reads the alert */
    assert_true(kl_node_log_has(&G.mtms, "TLS handshake"));
    /* an operator certificate from another CA */
    path(dir2, "%s/ca-rogue", G.dir);
    sh_expect(0, NULL, "possum ca init --dir %s --name rogue", dir2);
    sh_expect(0, NULL, "possum ca issue --dir %s --role operator --name alice --out %s/rogue", dir2,
              G.dir);
    snprintf(flags, sizeof flags,
             "--mtms %s --tls-ca %s --tls-cert %s/rogue.crt --tls-key %s/rogue.key", G.mtms_url,
             G.ca_crt, G.dir, G.dir);
    px_buf_reset(&out);
    sh_expect(1, &out, "possum operator lookup %s --serial PP10000002", flags);
    EXPECT_IN(&out, "unknown ca");
    /* a certificate from the CA, but not an operator's: refused by the MTMS and audited */
    snprintf(flags, sizeof flags,
             "--mtms %s --tls-ca %s --tls-cert %s/kms-C001/tls.crt --tls-key %s/kms-C001/tls.key",
             G.mtms_url, G.ca_crt, G.dir, G.dir);
    px_buf_reset(&out);
    sh_expect(1, &out, "possum operator lookup %s --serial PP10000002", flags);
    EXPECT_IN(&out, "certificate kms:C001 is not an operator terminal's");
    px_buf_reset(&out);
    sh_expect(0, &out, "possum mtms audit -c %s", G.mtms.ini);
    EXPECT_IN(&out, "only operator terminals may use the MTMS");
    /* alice still works */
    px_buf_reset(&out);
    sh_expect(0, &out, "possum operator lookup %s --serial PP10000002", G.op_flags);
    EXPECT_IN(&out, "customer C001  Bank of Possum");
    px_buf_free(&out);
}

/* The value of one series in a node's /metrics (matched at the start of a line), 0 when
 * absent. HTTP/1.0 over net's client: the node closes after the reply. */
static int64_t node_metric(const kl_node *n, const char *name_and_labels)
{
    static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
    char needle[256];
    const char *p;
    int64_t v = 0;
    uint8_t buf[16384];
    size_t got = 0;
    net_client *c = NULL;
    px_buf body;
    px_error e = {0};
    px_buf_init(&body, 1 << 20);
    assert_int_equal(net_client_connect("127.0.0.1", kl_node_port(n, "http"), NULL, 5000, &c, &e),
                     PX_OK);
    assert_int_equal(net_client_send_raw(c, req, sizeof req - 1, &e), PX_OK);
    while (net_client_recv_raw(c, buf, sizeof buf, &got, 5000, NULL) == PX_OK)
        assert_int_equal(px_buf_append(&body, buf, got), PX_OK);
    net_client_close(c);
    assert_non_null(strstr(px_buf_str(&body), " 200 "));
    snprintf(needle, sizeof needle, "\n%s ", name_and_labels);
    p = strstr(px_buf_str(&body), needle);
    if (p != NULL)
        v = strtoll(p + strlen(needle), NULL, 10);
    px_buf_free(&body);
    return v;
}

/* Wait (5 s at most) until the series reaches want; its last value. */
static int64_t wait_metric(const kl_node *n, const char *name_and_labels, int64_t want)
{
    int64_t v = node_metric(n, name_and_labels);
    for (int i = 0; i < 50 && v < want; i++) {
        sleep_ms(100);
        v = node_metric(n, name_and_labels);
    }
    return v;
}

/* Lines of text that contain every one of the (NULL-ended) needles. */
static int count_lines(px_buf *b, ...)
{
    const char *line = px_buf_str(b);
    int n = 0;
    while (*line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char copy[1024];
        const char *needle;
        int all = 1;
        va_list ap;
        snprintf(copy, sizeof copy, "%.*s", (int)len, line);
        va_start(ap, b);
        while (all && (needle = va_arg(ap, const char *)) != NULL)
            all = strstr(copy, needle) != NULL;
        va_end(ap);
        n += all;
        line += len + (end != NULL);
    }
    return n;
}

/* One HTTPS call to url with the client certificate prefix (NULL: none), which must fail. */
static void refused_call(const char *url, const char *cert_prefix)
{
    net_tls_config t;
    pki_https *h = NULL;
    json_t *reply = NULL;
    long status = 0;
    px_error e = {0};
    memset(&t, 0, sizeof t);
    snprintf(t.ca, sizeof t.ca, "%s", G.ca_crt);
    if (cert_prefix != NULL) {
        snprintf(t.cert, sizeof t.cert, "%s.crt", cert_prefix);
        snprintf(t.key, sizeof t.key, "%s.key", cert_prefix);
    }
    assert_int_equal(pki_https_open(url, &t, 5000, &h, &e), PX_OK);
    assert_int_not_equal(pki_https_call(h, "GET", "/healthz", NULL, &status, &reply, &e), PX_OK);
    json_decref(reply);
    pki_https_close(h);
}

#define MTMS_REFUSED(kind) "possum_mtms_tls_refused_total{kind=\"" kind "\"}"
#define KMS_REFUSED(kind) "possum_kms_tls_refused_total{kind=\"" kind "\"}"

/* Every refused operator handshake is one "tls.refused" row of the MTMS's audit trail
 * (possum mtms audit) with its reason and what was offered, and one count in /metrics: bob's
 * revoked certificate, a certificate from another CA, none at all. A bare TCP connection is
 * neither. The KMS's intake does the same for a client that is not the MTMS. After
 * test_operator_certificates (bob revoked, the rogue CA's alice issued). */
static void test_refused_handshakes_audited(void **state)
{
    static const char revoked[] = "TLS handshake refused: certificate revoked; offered "
                                  "certificate CN operator:bob, serial ";
    static const char foreign[] = "unable to get local issuer certificate; offered certificate "
                                  "CN operator:alice";
    static const char none[] = "peer did not return a certificate; no certificate offered";
    static const char failures[] = "possum_net_tls_handshake_failures_total{listener=\"mtms\"}";
    char prefix[PX_PATH_MAX];
    int64_t cert0 = node_metric(&G.mtms, MTMS_REFUSED("certificate"));
    int64_t none0 = node_metric(&G.mtms, MTMS_REFUSED("no_certificate"));
    int64_t fail0 = node_metric(&G.mtms, failures);
    int64_t kms0 = node_metric(&G.kms1, KMS_REFUSED("certificate"));
    int rows0, revoked0, foreign0;
    net_client *c = NULL;
    px_buf out;
    px_error e = {0};
    (void)state;
    px_buf_init(&out, 1 << 20);
    sh_expect(0, &out, "possum mtms audit -c %s", G.mtms.ini);
    rows0 = count_lines(&out, "tls.refused", NULL); /* test_operator_certificates' refusals */
    revoked0 = count_lines(&out, "tls.refused", revoked, NULL);
    foreign0 = count_lines(&out, "tls.refused", foreign, NULL);
    assert_true(revoked0 >= 1 && foreign0 >= 1);
    /* revoked */
    path(prefix, "%s/bob", G.dir);
    refused_call(G.mtms_url, prefix);
    assert_int_equal(wait_metric(&G.mtms, MTMS_REFUSED("certificate"), cert0 + 1), cert0 + 1);
    px_buf_reset(&out);
    sh_expect(0, &out, "possum mtms audit -c %s", G.mtms.ini);
    assert_int_equal(count_lines(&out, "tls.refused", NULL), rows0 + 1);
    assert_int_equal(count_lines(&out, "refused", "tls.refused", "127.0.0.1:", revoked,
                                 "issuer CN=possum e2e CA", NULL),
                     revoked0 + 1);
    /* another CA's certificate, claiming to be alice */
    path(prefix, "%s/rogue", G.dir);
    refused_call(G.mtms_url, prefix);
    assert_int_equal(wait_metric(&G.mtms, MTMS_REFUSED("certificate"), cert0 + 2), cert0 + 2);
    px_buf_reset(&out);
    sh_expect(0, &out, "possum mtms audit -c %s", G.mtms.ini);
    assert_int_equal(count_lines(&out, "tls.refused", NULL), rows0 + 2);
    assert_int_equal(count_lines(&out, "tls.refused", foreign, "issuer CN=rogue", NULL),
                     foreign0 + 1);
    /* no certificate */
    refused_call(G.mtms_url, NULL);
    assert_int_equal(wait_metric(&G.mtms, MTMS_REFUSED("no_certificate"), none0 + 1), none0 + 1);
    px_buf_reset(&out);
    sh_expect(0, &out, "possum mtms audit -c %s", G.mtms.ini);
    assert_int_equal(count_lines(&out, "tls.refused", NULL), rows0 + 3);
    assert_int_equal(count_lines(&out, "tls.refused", none, NULL), 1);
    /* a port scan: counted by the listener, not audited */
    assert_int_equal(net_client_connect("127.0.0.1", kl_node_port(&G.mtms, "mtms"), NULL, 3000, &c,
                                        &e),
                     PX_OK);
    net_client_close(c);
    assert_int_equal(wait_metric(&G.mtms, failures, fail0 + 4), fail0 + 4);
    px_buf_reset(&out);
    sh_expect(0, &out, "possum mtms audit -c %s", G.mtms.ini);
    assert_int_equal(count_lines(&out, "tls.refused", NULL), rows0 + 3);
    assert_int_equal(node_metric(&G.mtms, MTMS_REFUSED("certificate")), cert0 + 2);
    /* the KMS's intake: a client of another CA */
    refused_call(G.kms1_url, prefix);
    assert_int_equal(wait_metric(&G.kms1, KMS_REFUSED("certificate"), kms0 + 1), kms0 + 1);
    px_buf_reset(&out);
    sh_expect(0, &out, "possum kms audit -c %s", G.kms1.ini);
    assert_int_equal(count_lines(&out, "refused", "tls.refused", foreign, NULL), 1);
    px_buf_free(&out);
}

/* An HTTPS session with the MTMS's own certificate (what only the MTMS can do). */
static pki_https *as_mtms(const char *url)
{
    net_tls_config t;
    pki_https *h = NULL;
    px_error e = {0};
    memset(&t, 0, sizeof t);
    snprintf(t.ca, sizeof t.ca, "%s", G.ca_crt);
    snprintf(t.cert, sizeof t.cert, "%s/tls.crt", G.mtms.dir);
    snprintf(t.key, sizeof t.key, "%s/tls.key", G.mtms.dir);
    assert_int_equal(pki_https_open(url, &t, 5000, &h, &e), PX_OK);
    return h;
}

static json_t *post(pki_https *h, const char *p, json_t *body, long want)
{
    json_t *reply = NULL;
    long status = 0;
    px_error e = {0};
    if (pki_https_call(h, "POST", p, body, &status, &reply, &e) != PX_OK)
        fail_msg("POST %s: %s", p, e.msg);
    json_decref(body);
    if (status != want)
        fail_msg("POST %s: %ld, expected %ld: %s", p, status, want, json_dumps(reply, 0));
    return reply;
}

static void test_kms_refusals(void **state)
{
    char dir[PX_PATH_MAX], *recv1 = NULL, *crl = NULL, b64[PX_TKENV_B64_MAX], p1[PX_PATH_MAX];
    char nonce_hex[33], mac_hex[17];
    uint8_t env[PX_TKENV_MAX], nonce[16], session[16], skcv[3], mac[8], tmk[16], kcv[3];
    size_t n = 0, k = 0;
    pinpad *p;
    pki_https *h;
    json_t *r, *res;
    px_buf out;
    px_error e = {0};
    (void)state;
    px_buf_init(&out, 1 << 20);
    terminal("10000003", dir);
    p = open_pinpad(dir, "PP10000003");
    path(p1, "%s/kms-C001/recv.crt", G.dir);
    assert_int_equal(pki_read_file(p1, PX_PKI_PEM_MAX, &recv1, NULL, &e), PX_OK);
    assert_int_equal(pki_read_file(G.crl, PX_PKI_CRL_MAX, &crl, NULL, &e), PX_OK);
    assert_int_equal(tk_export(p, recv1, crl, env, sizeof env, &n, NULL, NULL, &e), PX_OK);
    pki_b64_encode(env, n, b64);
    /* a TK for C001 delivered to C002's KMS: refused, it cannot unwrap it */
    h = as_mtms(G.kms2_url);
    r = post(h, "/v1/kms/tks", json_pack("{s:[s]}", "envelopes", b64), 200);
    res = json_array_get(json_object_get(r, "results"), 0);
    assert_string_equal(json_string_value(json_object_get(res, "status")), "refused");
    assert_non_null(strstr(json_string_value(json_object_get(res, "message")),
                           "wrapped to another KMS"));
    json_decref(r);
    pki_https_close(h);
    sh_expect(0, &out, "possum kms audit -c %s --serial PP10000003", G.kms2.ini);
    EXPECT_IN(&out, "refused");
    EXPECT_IN(&out, "wrapped to another KMS");
    /* the right KMS takes it; only the MTMS may deliver */
    h = as_mtms(G.kms1_url);
    r = post(h, "/v1/kms/tks", json_pack("{s:[s]}", "envelopes", b64), 200);
    res = json_array_get(json_object_get(r, "results"), 0);
    assert_string_equal(json_string_value(json_object_get(res, "status")), "imported");
    json_decref(r);
    pki_https_close(h);
    /* key download over HTTPS, by hand: a good request, then replayed */
    {
        net_tls_config t;
        memset(&t, 0, sizeof t);
        snprintf(t.ca, sizeof t.ca, "%s", G.ca_crt);
        assert_int_equal(pki_https_open(G.kms1_dl, &t, 5000, &h, &e), PX_OK);
    }
    r = post(h, "/v1/kms/download/challenge", json_pack("{s:s}", "serial", "PP10000003"), 200);
    assert_int_equal(px_hex_decode(json_string_value(json_object_get(r, "nonce")), nonce, 16, &k),
                     PX_OK);
    assert_int_equal(px_hex_decode(json_string_value(json_object_get(r, "session")), session, 16,
                                   &k),
                     PX_OK);
    assert_int_equal(px_hex_decode(json_string_value(json_object_get(r, "session_kcv")), skcv, 3,
                                   &k),
                     PX_OK);
    json_decref(r);
    assert_int_equal(tk_download_proof(p, session, 16, skcv, nonce, 16, mac, &e), PX_OK);
    px_hex_encode(nonce, 16, nonce_hex);
    px_hex_encode(mac, 8, mac_hex);
    r = post(h, "/v1/kms/download",
             json_pack("{s:s, s:s, s:s}", "serial", "PP10000003", "nonce", nonce_hex, "mac",
                       mac_hex),
             200);
    assert_int_equal(px_hex_decode(json_string_value(json_object_get(r, "tmk")), tmk, 16, &k),
                     PX_OK);
    assert_int_equal(px_hex_decode(json_string_value(json_object_get(r, "tmk_kcv")), kcv, 3, &k),
                     PX_OK);
    json_decref(r);
    r = post(h, "/v1/kms/download",
             json_pack("{s:s, s:s, s:s}", "serial", "PP10000003", "nonce", nonce_hex, "mac",
                       mac_hex),
             409);
    assert_non_null(strstr(
        json_string_value(json_object_get(json_object_get(r, "error"), "message")), "replayed"));
    json_decref(r);
    /* the TMK altered on the way: the PIN pad refuses it, the terminal reports it */
    kcv[0] ^= 0x55;
    assert_int_equal(pinpad_load_tmk_under_tk(p, tmk, 16, kcv, 3, &e), PX_EAUTH);
    assert_int_equal(tk_result_mac(p, session, 16, nonce, 16, "kcv_mismatch", mac, &e), PX_OK);
    px_hex_encode(mac, 8, mac_hex);
    json_decref(post(h, "/v1/kms/download/result",
                     json_pack("{s:s, s:s, s:s, s:s}", "serial", "PP10000003", "nonce", nonce_hex,
                               "result", "kcv_mismatch", "mac", mac_hex),
                     200));
    /* a terminal that does not hold the TK */
    r = post(h, "/v1/kms/download/challenge", json_pack("{s:s}", "serial", "PP10000003"), 200);
    snprintf(nonce_hex, sizeof nonce_hex, "%s", json_string_value(json_object_get(r, "nonce")));
    json_decref(r);
    r = post(h, "/v1/kms/download",
             json_pack("{s:s, s:s, s:s}", "serial", "PP10000003", "nonce", nonce_hex, "mac",
                       "0000000000000000"),
             401);
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(r, "error"),
                                                             "message")),
                           "does not hold the TK"));
    json_decref(r);
    pki_https_close(h);
    px_buf_reset(&out);
    sh_expect(0, &out, "possum kms audit -c %s --serial PP10000003", G.kms1.ini);
    EXPECT_IN(&out, "replayed");
    EXPECT_IN(&out, "check value does not match");
    EXPECT_IN(&out, "does not hold the TK");
    /* and nothing of it in the clear */
    no_clear_key(G.kms1.dir, p->slot[PINPAD_TK].key, "TK");
    no_clear_key(G.kms2.dir, p->slot[PINPAD_TK].key, "TK");
    pinpad_close(p);
    free(recv1);
    free(crl);
    px_buf_free(&out);
}

/* ---- bad input ---- */

static void test_bad_input(void **state)
{
    static const char *const names[] = {"kms", "kms.download", "http", NULL};
    char dir[PX_PATH_MAX], bad[PX_PATH_MAX];
    px_buf out;
    FILE *f;
    (void)state;
    px_buf_init(&out, 1 << 20);
    sh_expect(1, &out, "possum operator lookup %s --serial PP404", G.op_flags);
    EXPECT_IN(&out, "unknown serial PP404: not in any production order");
    px_buf_reset(&out);
    sh_expect(1, &out, "possum operator customer %s --code C404", G.op_flags);
    EXPECT_IN(&out, "unknown customer code C404");
    /* a typed code that does not exist: the operator is told, then gives up */
    terminal("10000004", dir);
    px_buf_reset(&out);
    sh_expect(1, &out, "possum operator run %s --pinpad %s --confirm no --customer C404",
              G.op_flags, dir);
    EXPECT_IN(&out, "unknown customer code C404");
    EXPECT_IN(&out, "did not confirm");
    /* a CSV with bad lines: each named, nothing imported */
    path(bad, "%s/order-bad.csv", G.dir);
    f = fopen(bad, "w");
    assert_non_null(f);
    fprintf(f, "serial,customer\nPP20000001,C001\nPP 20000002,C001\nPP20000003\nPP20000004,C404\n");
    fclose(f);
    px_buf_reset(&out);
    sh_expect(1, &out, "possum mtms import -c %s --order PO-BAD %s", G.mtms.ini, bad);
    EXPECT_IN(&out, "line 3: serial:");
    EXPECT_IN(&out, "line 4: expected 2 fields");
    EXPECT_IN(&out, "line 5: serial PP20000004: unknown customer C404");
    EXPECT_IN(&out, "nothing imported");
    px_buf_reset(&out);
    sh_expect(1, &out, "possum mtms status -c %s PP20000001", G.mtms.ini);
    EXPECT_IN(&out, "unknown serial");
    /* the KMS is down: the TK waits in the outbox, and goes when the KMS is back */
    assert_int_equal(kl_node_stop(&G.kms1, SIGTERM, 10000), 0);
    px_buf_reset(&out);
    sh_expect(0, &out, "possum operator run %s --pinpad %s --confirm yes", G.op_flags, dir);
    for (int i = 0; i < 100; i++) {
        px_buf_reset(&out);
        kl_sh(&out, "possum mtms status -c %s PP10000004", G.mtms.ini);
        if (has(&out, "not reached"))
            break;
        sleep_ms(100);
    }
    EXPECT_IN(&out, "forwarded");
    EXPECT_IN(&out, "KMS of customer C001 not reached");
    px_buf_reset(&out);
    sh_expect(0, &out, "possum mtms outbox -c %s --pending", G.mtms.ini);
    EXPECT_IN(&out, "PP10000004");
    assert_int_equal(kl_node_start(&G.kms1, names), 0); /* back on its address */
    wait_status("PP10000004", "acknowledged");
    assert_int_equal(keyload(dir), 0);
    px_buf_free(&out);
}

/* ---- a PIN pad swap: the terminal re-keyed remotely, `possum terminal set-tmk` ---- */

/* A PIN pad for terminal tid with serial, personalised, its customer confirmed (C001), its
 * TK at the KMS and its TMK loaded remotely into it. */
static void swap_pinpad(const char *tid, const char *serial, char dir[PX_PATH_MAX])
{
    path(dir, "%s/pos/%s-%s", G.dir, tid, serial);
    sh_expect(0, NULL, "possum pos init --data %s --tid %s --serial %s", dir, tid, serial);
    sh_expect(0, NULL, "possum operator personalise --pinpad %s --ca-dir %s", dir, G.ca_dir);
    sh_expect(0, NULL, "possum operator run %s --pinpad %s --confirm yes", G.op_flags, dir);
    wait_status(serial, "acknowledged");
    assert_int_equal(keyload(dir), 0);
}

/* The TMK of serial from the KMS under the zone key, imported under the switch's LMK: its
 * key block (and the KMS's check value in kcv). */
static void swap_tmk_block(const swfix *f, const char *serial, char *block, char kcv[32])
{
    char crypt[64];
    px_buf out;
    px_buf_init(&out, 1 << 20);
    sh_expect(0, &out, "possum kms tmk-export -c %s --serial %s --zone-key ZMK.swap", G.kms1.ini,
              serial);
    assert_int_equal(kl_field(px_buf_str(&out), "cryptogram", crypt, sizeof crypt), 0);
    assert_int_equal(kl_field(px_buf_str(&out), "kcv", kcv, 32), 0);
    px_buf_reset(&out);
    sh_expect(0, &out,
              "possum hsm import --config %s --lmk-file %s --audit-file %s --label TMK.%s "
              "--kek ZMK.kms --key %s --kcv %s --usage K0 --alg T --mode E --exportable N",
              f->cli_ini, f->lmk, f->audit, serial, crypt, kcv);
    assert_int_equal(kl_field(px_buf_str(&out), "block", block, PX_HSM_KEYBLOCK_MAX), 0);
    px_buf_free(&out);
}

static void test_pinpad_swap_rekeys_terminal(void **state)
{
    char old_dir[PX_PATH_MAX], new_dir[PX_PATH_MAX], block[PX_HSM_KEYBLOCK_MAX], kcv[32], k1[8],
        k2[8], comps[160], sw[4096], is[4096], all[8192];
    px_buf out;
    swfix F;
    int port;
    (void)state;
    px_buf_init(&out, 1 << 20);
    /* terminal 10000006 with PIN pad PP10000006, registered at the switch with its TMK */
    swap_pinpad("10000006", "PP10000006", old_dir);
    assert_int_equal(swfix_init(&F, NULL), 0);
    kcv_hex(ZMK_C1, k1);
    kcv_hex(ZMK_C2, k2);
    snprintf(comps, sizeof comps, "%s:%s,%s:%s", ZMK_C1, k1, ZMK_C2, k2);
    sh_expect(0, NULL,
              "possum hsm form -c %s --lmk-file %s/lmk.bin --audit-file %s/hsm-audit.log "
              "--label ZMK.swap --usage K0 --mode E --exportable N --components %s",
              G.kms1.ini, G.kms1.dir, G.kms1.dir, comps);
    sh_expect(0, NULL,
              "possum hsm form --config %s --lmk-file %s --audit-file %s --label ZMK.kms "
              "--usage K0 --mode D --exportable N --components %s",
              F.cli_ini, F.lmk, F.audit, comps);
    swap_tmk_block(&F, "PP10000006", block, kcv);
    sh_expect(0, NULL,
              "possum terminal add --config %s --tid 10000006 --mid %s --name 'Possum Coffee' "
              "--tmk-block %s",
              F.cli_ini, MID, block);
    port = swfix_free_port();
    swfix_switch_section(&F, sw, sizeof sw, port,
                         "provider_timeout_ms = 3000\ncache_ttl_ms = 200\n");
    swfix_issuer_section(&F, is, sizeof is, port, NULL);
    snprintf(all, sizeof all, "%s\n%s", sw, is);
    assert_int_equal(swfix_start(&F, &SW, "switch", NULL, all), 0);
    sh_expect(0, NULL, "possum pos signon --data %s --port %d", old_dir, SW.switch_port);
    sh_expect(0, NULL, "possum pos purchase --data %s --port %d --amount 500 --card %s --pin %s",
              old_dir, SW.switch_port, SWFIX_CARD_OK, SWFIX_CARD_OK_PIN);
    px_buf_reset(&out);
    sh_expect(0, &out, "possum pos settle --data %s --port %d", old_dir, SW.switch_port);
    EXPECT_IN(&out, "balanced"); /* before the swap, while it still can */
    /* the PIN pad is swapped: PP10000007 gets its TMK from the KMS; the switch is re-keyed */
    swap_pinpad("10000006", "PP10000007", new_dir);
    swap_tmk_block(&F, "PP10000007", block, kcv);
    px_buf_reset(&out);
    sh_expect(0, &out, "possum terminal set-tmk --config %s --tid 10000006 --tmk-block %s",
              F.cli_ini, block);
    EXPECT_IN(&out, kcv);
    px_buf_reset(&out);
    sh_expect(0, &out, "possum terminal show 10000006 --config %s", F.cli_ini);
    EXPECT_IN(&out, "signed on       no");
    EXPECT_IN(&out, kcv);
    /* the old PIN pad's TMK is no use: it cannot read the work keys of a sign-on */
    px_buf_reset(&out);
    assert_int_not_equal(kl_sh(&out, "possum pos signon --data %s --port %d", old_dir,
                               SW.switch_port),
                         0);
    EXPECT_IN(&out, "does not match its check value"); /* its PIN pad refuses the keys */
    /* the new one signs on and buys */
    px_buf_reset(&out);
    sh_expect(0, &out, "possum pos signon --data %s --port %d", new_dir, SW.switch_port);
    EXPECT_IN(&out, "APPROVED");
    px_buf_reset(&out);
    sh_expect(0, &out, "possum pos purchase --data %s --port %d --amount 1234 --card %s --pin %s",
              new_dir, SW.switch_port, SWFIX_CARD_OK, SWFIX_CARD_OK_PIN);
    EXPECT_IN(&out, "APPROVED");
    assert_int_equal(swfix_stop(&SW, SIGTERM, 15000), 0);
    px_buf_reset(&out);
    sh_expect(0, &out, "possum ledger check --config %s", F.cli_ini);
    EXPECT_IN(&out, "ledger check OK");
    swfix_cleanup(&F);
    px_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_factory_to_first_purchase),
        cmocka_unit_test(test_kms_refusals),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_operator_certificates),
        cmocka_unit_test(test_refused_handshakes_audited),
        cmocka_unit_test(test_pinpad_swap_rekeys_terminal),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
