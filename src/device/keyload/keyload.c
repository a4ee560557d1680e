/*
 * keyload.c: the terminal's remote key download (keyload.h) and `possum pos keyload`.
 */
#include "device/keyload/keyload.h"
#include "device/pinpad/tk.h"
#include "device/pos/pos.h"
#include "lib/hex.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"
#include "pki/https.h"
#include "pki/pki.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

/* hex field of exactly n bytes from o[key]. */
static int hex_of(const json_t *o, const char *key, uint8_t *out, size_t n, px_error *e)
{
    const char *v = json_string_value(json_object_get(o, key));
    size_t got = 0;
    if (v == NULL || strlen(v) != 2 * n || px_hex_decode(v, out, n, &got) != PX_OK || got != n)
        return px_error_set(e, PX_EFORMAT, "KMS answer: %s is not %zu hex digits", key, 2 * n);
    return PX_OK;
}

/* POST body to path; a non-2xx answer becomes an error carrying the KMS's message. */
static int post(pki_https *h, const char *path, json_t *body, json_t **reply, px_error *e)
{
    long status = 0;
    int rc = pki_https_call(h, "POST", path, body, &status, reply, e);
    json_decref(body);
    if (rc != PX_OK)
        return px_error_prefix(e, "KMS: ");
    if (status / 100 == 2)
        return PX_OK;
    rc = status == 404   ? PX_ENOTFOUND
         : status == 401 ? PX_EAUTH
         : status == 409 ? PX_ECONFLICT
         : status == 410 ? PX_ETIMEOUT
         : status == 403 ? PX_EPERM
         : status == 400 ? PX_EINVAL
                         : PX_ENET;
    px_error_set(e, rc, "KMS refused (%ld): %s", status,
                 pki_https_error_message(*reply, "(no message)"));
    json_decref(*reply);
    *reply = NULL;
    return rc;
}

static int report(pki_https *h, pinpad *p, const uint8_t *session, const uint8_t *nonce,
                  const char *result, px_error *e)
{
    uint8_t mac[TK_MAC_LEN];
    char nonce_hex[2 * PX_KMS_NONCE_LEN + 1], mac_hex[2 * TK_MAC_LEN + 1];
    json_t *reply = NULL;
    int rc = tk_result_mac(p, session, TK_SESSION_LEN, nonce, PX_KMS_NONCE_LEN, result, mac, e);
    if (rc != PX_OK)
        return rc;
    px_hex_encode(nonce, PX_KMS_NONCE_LEN, nonce_hex);
    px_hex_encode(mac, sizeof mac, mac_hex);
    rc = post(h, "/v1/kms/download/result",
              json_pack("{s:s, s:s, s:s, s:s}", "serial", pinpad_serial(p), "nonce", nonce_hex,
                        "result", result, "mac", mac_hex),
              &reply, e);
    json_decref(reply);
    return rc;
}

int keyload_run(pinpad *p, const keyload_config *c, keyload_result *r, px_error *e)
{
    pki_https *h = NULL;
    json_t *reply = NULL;
    uint8_t nonce[PX_KMS_NONCE_LEN], session[TK_SESSION_LEN], skcv[3], mac[TK_MAC_LEN], tmk[16],
        kcv[3];
    char nonce_hex[2 * PX_KMS_NONCE_LEN + 1], mac_hex[2 * TK_MAC_LEN + 1];
    const char *kcv_hex;
    size_t n = 0;
    int64_t t0 = px_mono_ms();
    int rc;
    memset(r, 0, sizeof *r);
    px_strlcpy(r->serial, pinpad_serial(p), sizeof r->serial);
    if (!pinpad_has_key(p, PINPAD_TK))
        return px_error_set(e, PX_ESTATE,
                            "PIN pad %s holds no transmission key: it must be "
                            "exported to the customer's KMS first (possum operator)",
                            pinpad_serial(p));
    rc = pki_https_open(c->kms_url, &c->tls, c->timeout_ms, &h, e);
    /* 1. challenge */
    if (rc == PX_OK)
        rc = post(h, "/v1/kms/download/challenge", json_pack("{s:s}", "serial", pinpad_serial(p)),
                  &reply, e);
    if (rc == PX_OK) {
        pki_role role;
        char name[PX_PKI_NAME_MAX];
        px_strlcpy(r->kms_cn, pki_https_peer_cn(h), sizeof r->kms_cn);
        if (r->kms_cn[0] != 0 &&
            (pki_cn_split(r->kms_cn, &role, name) != PX_OK || role != PKI_ROLE_KMS))
            rc = px_error_set(e, PX_EPERM, "the server at %s is %s, not a KMS", c->kms_url,
                              r->kms_cn);
    }
    if (rc == PX_OK && (rc = hex_of(reply, "nonce", nonce, sizeof nonce, e)) == PX_OK &&
        (rc = hex_of(reply, "session", session, sizeof session, e)) == PX_OK)
        rc = hex_of(reply, "session_kcv", skcv, sizeof skcv, e);
    json_decref(reply);
    reply = NULL;
    /* 2. proof of TK, inside the PIN pad */
    if (rc == PX_OK)
        rc = tk_download_proof(p, session, sizeof session, skcv, nonce, sizeof nonce, mac, e);
    if (rc == PX_OK) {
        px_hex_encode(nonce, sizeof nonce, nonce_hex);
        px_hex_encode(mac, sizeof mac, mac_hex);
        rc = post(h, "/v1/kms/download",
                  json_pack("{s:s, s:s, s:s}", "serial", pinpad_serial(p), "nonce", nonce_hex,
                            "mac", mac_hex),
                  &reply, e);
    }
    if (rc == PX_OK && (rc = hex_of(reply, "tmk", tmk, sizeof tmk, e)) == PX_OK) {
        kcv_hex = json_string_value(json_object_get(reply, "tmk_kcv"));
        if (kcv_hex == NULL ||
            px_hex_decode_n(kcv_hex, strlen(kcv_hex) < 6 ? strlen(kcv_hex) : 6, kcv, sizeof kcv,
                            &n) != PX_OK ||
            n != 3)
            rc = px_error_set(e, PX_EFORMAT, "KMS answer: tmk_kcv is not a check value");
    }
    json_decref(reply);
    /* 3. into the PIN pad, which checks the check value first */
    if (rc == PX_OK) {
        int lrc = pinpad_load_tmk_under_tk(p, tmk, sizeof tmk, kcv, sizeof kcv, e);
        px_error e2 = {0};
        /* 4. tell the KMS either way */
        int rrc = report(h, p, session, nonce,
                         lrc == PX_OK      ? "loaded"
                         : lrc == PX_EAUTH ? "kcv_mismatch"
                                           : "error",
                         &e2);
        if (lrc != PX_OK)
            rc = lrc == PX_EAUTH ? px_error_set(e, PX_EAUTH,
                                                "the TMK from the KMS does not match "
                                                "its check value: nothing loaded "
                                                "(reported to the KMS)")
                                 : lrc;
        else if (rrc != PX_OK)
            px_warn("keyload", "TMK loaded, but the report to the KMS failed: %s",
                    px_error_text(&e2));
    }
    OPENSSL_cleanse(tmk, sizeof tmk);
    OPENSSL_cleanse(session, sizeof session);
    if (rc == PX_OK) {
        pinpad_key_info info;
        pinpad_key_info_get(p, PINPAD_TMK, &info);
        px_strlcpy(r->tmk_kcv, info.kcv, sizeof r->tmk_kcv);
    }
    r->elapsed_ms = px_mono_ms() - t0;
    pki_https_close(h);
    return rc;
}

/* ---- possum pos keyload ---- */

/* The entry point is here (not in src/app) so that cmd_pos.c gives it one table row; it
 * keeps the `possum` contract (0 ok, 1 failed, 2 usage) without src/app's helpers, which a
 * device library may not include. */
enum { KL_OK = 0, KL_FAIL = 1, KL_USAGE = 2 };

static const char *const kl_opts[][2] = {
    {"data", "the terminal's directory (default var/pos/TID)"},
    {"tid", "terminal id, for the default directory (default 10000001)"},
    {"kms", "the KMS's key-download address: https://host:port (required)"},
    {"tls-ca", "the CA certificate the KMS's certificate chains to"},
    {"timeout-ms", "how long to wait for each answer (default 10000)"},
};
#define KL_NOPTS (sizeof kl_opts / sizeof kl_opts[0])

static int kl_usage(FILE *out, int rc)
{
    fprintf(out, "usage: possum pos keyload --kms https://HOST:PORT --tls-ca CA [--data DIR]\n");
    for (size_t i = 0; i < KL_NOPTS; i++)
        fprintf(out, "  --%-12s %s\n", kl_opts[i][0], kl_opts[i][1]);
    return rc;
}

int keyload_cli(int argc, char **argv)
{
    const char *val[KL_NOPTS] = {0};
    pos_config pc;
    keyload_config kc;
    keyload_result r;
    pos_terminal *t = NULL;
    px_error e = {0};
    int64_t v;
    int rc;
    for (int i = 1; i < argc; i++) {
        size_t k = KL_NOPTS;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return kl_usage(stdout, KL_OK);
        for (size_t j = 0; strncmp(argv[i], "--", 2) == 0 && j < KL_NOPTS; j++)
            if (strcmp(argv[i] + 2, kl_opts[j][0]) == 0)
                k = j;
        if (k == KL_NOPTS || i + 1 >= argc) {
            fprintf(stderr, "possum: pos keyload: %s '%s'\n",
                    k == KL_NOPTS ? "unknown option" : "missing value for", argv[i]);
            return kl_usage(stderr, KL_USAGE);
        }
        val[k] = argv[++i];
    }
    if (val[2] == NULL) {
        fprintf(stderr, "possum: pos keyload: --kms https://HOST:PORT is required\n");
        return kl_usage(stderr, KL_USAGE);
    }
    memset(&kc, 0, sizeof kc);
    kc.timeout_ms = 10000;
    if (px_strlcpy(kc.kms_url, val[2], sizeof kc.kms_url) != PX_OK ||
        (val[3] != NULL && px_strlcpy(kc.tls.ca, val[3], sizeof kc.tls.ca) != PX_OK)) {
        fprintf(stderr, "possum: pos keyload: --kms or --tls-ca too long\n");
        return KL_USAGE;
    }
    if (val[4] != NULL) {
        if (px_parse_i64(val[4], 100, 600000, &v) != PX_OK) {
            fprintf(stderr, "possum: pos keyload: --timeout-ms: a number from 100 to 600000\n");
            return KL_USAGE;
        }
        kc.timeout_ms = v;
    }
    pos_config_defaults(&pc);
    if (val[1] != NULL &&
        (strlen(val[1]) != 8 || px_strlcpy(pc.tid, val[1], sizeof pc.tid) != PX_OK)) {
        fprintf(stderr, "possum: pos keyload: --tid: 8 characters\n");
        return KL_USAGE;
    }
    snprintf(pc.serial, sizeof pc.serial, "PP%s", pc.tid);
    if (val[0] != NULL)
        px_strlcpy(pc.data_dir, val[0], sizeof pc.data_dir);
    else
        snprintf(pc.data_dir, sizeof pc.data_dir, "var/pos/%s", pc.tid);
    if (pos_config_load(&pc, &e) != PX_OK || pos_open(&pc, &t, &e) != PX_OK) {
        fprintf(stderr, "possum: pos keyload: %s\n", px_error_text(&e));
        return KL_FAIL;
    }
    rc = keyload_run(pos_pinpad(t), &kc, &r, &e);
    pos_close(t);
    if (rc != PX_OK) {
        fprintf(stderr, "possum: pos keyload: PIN pad %s: %s\n", r.serial, px_error_text(&e));
        return KL_FAIL;
    }
    printf("TMK loaded into PIN pad %s (check value %s) from %s in %lld ms\n", r.serial, r.tmk_kcv,
           r.kms_cn[0] ? r.kms_cn : kc.kms_url, (long long)r.elapsed_ms);
    return KL_OK;
}
