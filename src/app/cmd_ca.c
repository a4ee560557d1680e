/*
 * possum ca: the certificate authority of seed 001 (docs/ca.md):
 *   init     a CA in a directory (P-256 key, self-signed certificate, empty CRL)
 *   issue    a certificate for an operator terminal, the MTMS, a KMS (TLS, or its receiving
 *            key), a PIN pad (from its request) or another service
 *   revoke   by serial number or CN; rewrites the CRL
 *   crl      a fresh CRL (before the current one's next update)
 *   list     every certificate issued, valid or revoked
 *   show     a certificate, checked against a CA and CRL when given
 * The CA key is encrypted under POSSUM_CA_PASSPHRASE when that is set.
 */
#include "app/cli.h"
#include "lib/str.h"
#include "lib/time.h"
#include "pki/pki.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>

const char cmd_ca_summary[] = "certificate authority: init, issue, revoke, crl, list, show";

#define DEFAULT_DIR "var/ca"

static const char *dir_of(const cli_opt *opts)
{
    return cli_get(opts, "dir") ? cli_get(opts, "dir") : DEFAULT_DIR;
}

static int days_of(const cli_opt *opts, const char *name, int64_t def, int64_t *out)
{
    const char *v = cli_get(opts, name);
    *out = def;
    if (v != NULL && px_parse_i64(v, 1, PX_PKI_DAYS_MAX, out) != PX_OK)
        return cli_usage_error("--%s: a number of days from 1 to %d", name, PX_PKI_DAYS_MAX);
    return CLI_OK;
}

static void show_info(const pki_cert_info *ci)
{
    char nb[32], na[32];
    px_time_iso8601(ci->not_before_ms, nb, sizeof nb);
    px_time_iso8601(ci->not_after_ms, na, sizeof na);
    printf("subject:     %s (role %s, %s)\nserial:      %s\nvalid:       %s .. %s\n"
           "fingerprint: %s\n",
           ci->cn, pki_role_name(ci->role), pki_purpose_name(ci->purpose), ci->serial, nb, na,
           ci->fingerprint_hex);
}

static int ca_init(int argc, char **argv)
{
    cli_opt opts[] = {{"dir", 0, "the CA's directory (default var/ca)", NULL},
                      {"name", 0, "the CA's name (default \"possum CA\")", NULL},
                      {"days", 0, "validity of the CA certificate (default 3650)", NULL},
                      {"crl-days", 0, "validity of the CRL (default 30)", NULL},
                      {0, 0, 0, 0}};
    pki_cert_info ci;
    int64_t days, crl_days;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL,
                       "possum ca init [--dir DIR] [--name NAME] [--days N] [--crl-days N]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if ((rc = days_of(opts, "days", 3650, &days)) != CLI_OK ||
        (rc = days_of(opts, "crl-days", 30, &crl_days)) != CLI_OK)
        return rc;
    if (pki_ca_init(dir_of(opts), cli_get(opts, "name") ? cli_get(opts, "name") : "possum CA", days,
                    crl_days, &ci, &e) != PX_OK)
        return cli_fail("ca init: %s", px_error_text(&e));
    printf("CA %s created in %s\nfingerprint: %s\n", ci.cn, dir_of(opts), ci.fingerprint_hex);
    if (getenv(PKI_ENV_PASSPHRASE) == NULL)
        fprintf(stderr, "possum: warning: %s is not set: ca.key is not encrypted (mode 0600)\n",
                PKI_ENV_PASSPHRASE);
    return CLI_OK;
}

/* A PEM public key (SubjectPublicKeyInfo) -> its P-256 point. */
static int read_pubkey(const char *path, uint8_t point[PKI_EC_POINT_LEN])
{
    char *pem = NULL;
    size_t len = 0;
    px_error e = {0};
    BIO *b;
    EVP_PKEY *k;
    int ok;
    if (pki_read_file(path, PX_PKI_PEM_MAX, &pem, &len, &e) != PX_OK)
        return cli_fail("--pubkey: %s", px_error_text(&e));
    b = BIO_new_mem_buf(pem, (int)len);
    k = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    free(pem);
    ok = k != NULL &&
         EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, point, PKI_EC_POINT_LEN,
                                         &len) == 1 &&
         len == PKI_EC_POINT_LEN;
    EVP_PKEY_free(k);
    return ok ? CLI_OK : cli_fail("--pubkey %s: not an uncompressed P-256 public key", path);
}

/* "a,b,c" into r->san. */
static int split_san(char *list, pki_issue_req *r)
{
    size_t n = 0;
    for (char *p = list; p != NULL && *p;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = 0;
        if (*p) {
            if (n >= PX_PKI_SAN_MAX - 1)
                return cli_usage_error("--san: at most %d names", PX_PKI_SAN_MAX - 1);
            r->san[n++] = p;
        }
        p = comma ? comma + 1 : NULL;
    }
    return CLI_OK;
}

static int write_out(const char *prefix, const char *ext, const char *text, int mode)
{
    char path[PX_PATH_MAX];
    px_error e = {0};
    if ((size_t)snprintf(path, sizeof path, "%s%s", prefix, ext) >= sizeof path)
        return cli_fail("--out: path too long");
    if (pki_write_file(path, text, strlen(text), mode, &e) != PX_OK)
        return cli_fail("%s", px_error_text(&e));
    printf("wrote %s\n", path);
    return CLI_OK;
}

static int ca_issue(int argc, char **argv)
{
    cli_opt opts[] = {
        {"dir", 0, "the CA's directory (default var/ca)", NULL},
        {"role", 0, "operator, mtms, kms, pinpad or service", NULL},
        {"name", 0, "the name after \"role:\" in the CN (customer code, serial...)", NULL},
        {"purpose", 0, "tls, key-agreement or device (default by role)", NULL},
        {"san", 0, "host names / IP addresses of a TLS server, comma-separated", NULL},
        {"days", 0, "validity (default 825)", NULL},
        {"csr", 0, "a certificate request (PEM) signed by the subject's key", NULL},
        {"pubkey", 0, "a P-256 public key (PEM) of a key-agreement key", NULL},
        {"out", 0, "write OUT.crt (and OUT.key when the CA makes the key)", NULL},
        {0, 0, 0, 0}};
    pki_issue_req r;
    pki_cert_info ci;
    pki_ca *ca = NULL;
    uint8_t point[PKI_EC_POINT_LEN];
    char san[512] = "", *cert = NULL, *key = NULL, *csr = NULL;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL,
                       "possum ca issue --role ROLE --name NAME [--purpose P] [--san H,...] "
                       "[--csr FILE | --pubkey FILE] --out PREFIX [--dir DIR]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    memset(&r, 0, sizeof r);
    if (pki_role_parse(cli_get(opts, "role"), &r.role) != PX_OK)
        return cli_usage_error("--role: operator, mtms, kms, pinpad or service");
    if (cli_get(opts, "name") == NULL || cli_get(opts, "out") == NULL)
        return cli_usage_error("ca issue: --name and --out are required");
    r.name = cli_get(opts, "name");
    r.purpose = r.role == PKI_ROLE_PINPAD ? PKI_PURPOSE_DEVICE
                : cli_has(opts, "pubkey") ? PKI_PURPOSE_KEY_AGREEMENT
                                          : PKI_PURPOSE_TLS;
    if (cli_has(opts, "purpose") &&
        pki_purpose_parse(cli_get(opts, "purpose"), &r.purpose) != PX_OK)
        return cli_usage_error("--purpose: tls, key-agreement or device");
    if ((rc = days_of(opts, "days", 825, &r.days)) != CLI_OK)
        return rc;
    if (cli_has(opts, "san")) {
        px_strlcpy(san, cli_get(opts, "san"), sizeof san);
        if ((rc = split_san(san, &r)) != CLI_OK)
            return rc;
    }
    if (cli_has(opts, "pubkey")) {
        if ((rc = read_pubkey(cli_get(opts, "pubkey"), point)) != CLI_OK)
            return rc;
        r.pub_point = point;
    }
    if (cli_has(opts, "csr")) {
        if (pki_read_file(cli_get(opts, "csr"), PX_PKI_PEM_MAX, &csr, NULL, &e) != PX_OK)
            return cli_fail("--csr: %s", px_error_text(&e));
        r.csr_pem = csr;
    }
    if (pki_ca_open(dir_of(opts), &ca, &e) != PX_OK)
        rc = cli_fail("ca issue: %s", px_error_text(&e));
    else if (pki_ca_issue(ca, &r, &cert, &key, &ci, &e) != PX_OK)
        rc = cli_fail("ca issue: %s", px_error_text(&e));
    if (rc == CLI_OK) {
        show_info(&ci);
        rc = write_out(cli_get(opts, "out"), ".crt", cert, 0644);
        if (rc == CLI_OK && key != NULL)
            rc = write_out(cli_get(opts, "out"), ".key", key, 0600);
    }
    if (key != NULL) {
        OPENSSL_cleanse(key, strlen(key));
        free(key);
    }
    free(cert);
    free(csr);
    pki_ca_close(ca);
    return rc;
}

static int ca_revoke(int argc, char **argv)
{
    cli_opt opts[] = {{"dir", 0, "the CA's directory (default var/ca)", NULL},
                      {"serial", 0, "the certificate's serial number (hex)", NULL},
                      {"cn", 0, "or every valid certificate with this CN (role:name)", NULL},
                      {"reason", 0,
                       "unspecified, keyCompromise, affiliationChanged, superseded, "
                       "cessationOfOperation",
                       NULL},
                      {"crl-days", 0, "validity of the new CRL (default 30)", NULL},
                      {0, 0, 0, 0}};
    pki_ca *ca = NULL;
    int64_t crl_days;
    size_t n = 0;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL,
                       "possum ca revoke (--serial HEX | --cn ROLE:NAME) [--reason R] [--dir DIR]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (cli_has(opts, "serial") == cli_has(opts, "cn"))
        return cli_usage_error("ca revoke: --serial or --cn");
    if ((rc = days_of(opts, "crl-days", 30, &crl_days)) != CLI_OK)
        return rc;
    if (pki_ca_open(dir_of(opts), &ca, &e) != PX_OK ||
        pki_ca_revoke(ca, cli_get(opts, "serial"), cli_get(opts, "cn"), cli_get(opts, "reason"),
                      crl_days, &n, &e) != PX_OK)
        rc = cli_fail("ca revoke: %s", px_error_text(&e));
    else
        printf("revoked %zu certificate%s; %s/crl.pem rewritten: give it to every service and "
               "restart their listeners\n",
               n, n == 1 ? "" : "s", dir_of(opts));
    pki_ca_close(ca);
    return rc;
}

static int ca_crl(int argc, char **argv)
{
    cli_opt opts[] = {{"dir", 0, "the CA's directory (default var/ca)", NULL},
                      {"crl-days", 0, "validity (default 30)", NULL},
                      {0, 0, 0, 0}};
    pki_ca *ca = NULL;
    int64_t crl_days;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL,
                       "possum ca crl [--crl-days N] [--dir DIR]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if ((rc = days_of(opts, "crl-days", 30, &crl_days)) != CLI_OK)
        return rc;
    if (pki_ca_open(dir_of(opts), &ca, &e) != PX_OK || pki_ca_crl(ca, crl_days, &e) != PX_OK)
        rc = cli_fail("ca crl: %s", px_error_text(&e));
    else
        printf("%s/crl.pem rewritten (valid %lld days)\n", dir_of(opts), (long long)crl_days);
    pki_ca_close(ca);
    return rc;
}

static int list_row(void *ud, const pki_cert_row *r)
{
    char when[32];
    (void)ud;
    px_time_iso8601(r->status == 'R' ? r->revoked_ms : r->not_after_ms, when, sizeof when);
    printf("%-7s %-32s %-13s %-28s %s %s%s%s\n", r->status == 'V' ? "valid" : "revoked", r->serial,
           pki_purpose_name(r->purpose), r->cn, r->status == 'V' ? "until" : "on", when,
           r->status == 'R' ? " reason " : "", r->status == 'R' ? r->reason : "");
    return 0;
}

static int ca_list(int argc, char **argv)
{
    cli_opt opts[] = {{"dir", 0, "the CA's directory (default var/ca)", NULL}, {0, 0, 0, 0}};
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL, "possum ca list [--dir DIR]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (pki_ca_list(dir_of(opts), list_row, NULL, &e) != PX_OK)
        return cli_fail("ca list: %s", px_error_text(&e));
    return CLI_OK;
}

static int ca_show(int argc, char **argv)
{
    cli_opt opts[] = {{"cert", 0, "the certificate (PEM)", NULL},
                      {"ca", 0, "check it against this CA certificate ...", NULL},
                      {"crl", 0, "... and this CRL", NULL},
                      {0, 0, 0, 0}};
    char *pem = NULL;
    size_t len = 0;
    pki_cert_info ci;
    pki_trust *t = NULL;
    px_error e = {0};
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL,
                       "possum ca show --cert FILE [--ca FILE --crl FILE]");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (cli_get(opts, "cert") == NULL || cli_has(opts, "ca") != cli_has(opts, "crl"))
        return cli_usage_error("ca show: --cert, and --ca with --crl to check it");
    if (pki_read_file(cli_get(opts, "cert"), PX_PKI_PEM_MAX, &pem, &len, &e) != PX_OK ||
        pki_cert_parse((const uint8_t *)pem, len, &ci, &e) != PX_OK) {
        free(pem);
        return cli_fail("ca show: %s", px_error_text(&e));
    }
    show_info(&ci);
    if (cli_has(opts, "ca")) {
        if (pki_trust_load(cli_get(opts, "ca"), cli_get(opts, "crl"), &t, &e) != PX_OK ||
            pki_trust_verify(t, (const uint8_t *)pem, len, ci.role, ci.purpose, px_now_ms(), &ci,
                             &e) != PX_OK)
            rc = cli_fail("check: %s", px_error_text(&e));
        else
            printf("check:       OK (chains to the CA, not revoked)\n");
    }
    pki_trust_free(t);
    free(pem);
    return rc;
}

static const cli_command ca_commands[] = {
    {"init", ca_init, "create a CA: P-256 key, self-signed certificate, empty CRL"},
    {"issue", ca_issue, "issue a certificate (operator, mtms, kms, pinpad, service)"},
    {"revoke", ca_revoke, "revoke by serial or CN and rewrite the CRL"},
    {"crl", ca_crl, "write a fresh CRL"},
    {"list", ca_list, "every certificate issued, valid or revoked"},
    {"show", ca_show, "show a certificate; check it against a CA and CRL"},
    {0, 0, 0}};

int cmd_ca(int argc, char **argv)
{
    return cli_dispatch("possum ca", ca_commands, argc, argv);
}
