/*
 * core.c: the KMS's work (kms.h): opening with its receiving key, TK intake, key download
 * (challenge, proof, TMK under TK, the terminal's report) and the TMK for the platform.
 * Seed 001 [0028]-[0029]: "the KMS encrypts the TMK under TK and sends it to the POS
 * terminal, which decrypts it with TK and keeps it in the PIN pad".
 */
#include "host/kms/kms_int.h"
#include "crypto/crypto.h"
#include "crypto/mac.h"
#include "lib/hex.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

const hsm_key_attrs kms_tk_attrs = {"K0", 'T', 'E', 'N', 16};
const hsm_key_attrs kms_tmk_attrs = {"K0", 'T', 'E', 'S', 16};
const hsm_key_attrs kms_session_attrs = {"M6", 'T', 'C', 'S', 16};

#define KEEP_USED_MS 3600000 /* spent challenges stay this long after expiry: replays are named */

void kms_config_default(kms_config *c)
{
    memset(c, 0, sizeof *c);
    px_strlcpy(c->recv_key, "kms.recv", sizeof c->recv_key);
    c->challenge_ttl_ms = 60000;
}

int kms_hsm_config_bind(px_config *c, hsm_config *h, px_error *e)
{
    const char *v;
    int rc = PX_OK;
    hsm_config_default(h);
    if (px_config_has_section(c, "hsm"))
        rc = hsm_config_bind(c, "hsm", h, e);
    if (rc == PX_OK)
        rc = hsm_config_bind_overrides(c, "kms", h, e);
    if (rc != PX_OK)
        return rc;
    if ((v = px_config_get(c, "kms", "hsm_lmk_scrypt_log2n")) != NULL &&
        px_parse_i64(v, 10, 22, &h->lmk_scrypt_log2n) != PX_OK)
        return px_error_set(e, PX_ECONFIG, "%s:%d: [kms] hsm_lmk_scrypt_log2n: 10 to 22",
                            px_config_path(c), px_config_line(c, "kms", "hsm_lmk_scrypt_log2n"));
    px_strlcpy(h->caller, "kms", sizeof h->caller);
    return PX_OK;
}

static int parse_allowed(kms *k, px_error *e)
{
    const char *p = k->cfg.mtms_cn;
    k->nallowed = 0;
    while (*p) {
        size_t n = strcspn(p, ", ");
        if (n > 0) {
            if (n >= PX_PKI_CN_MAX || k->nallowed >= KMS_ALLOWED_MAX)
                return px_error_set(e, PX_ECONFIG,
                                    "[kms] mtms_cn: at most %d CNs of at most %d "
                                    "characters",
                                    KMS_ALLOWED_MAX, PX_PKI_CN_MAX - 1);
            memcpy(k->allowed[k->nallowed], p, n);
            k->allowed[k->nallowed++][n] = 0;
        }
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
    }
    if (k->nallowed == 0)
        return px_error_set(e, PX_ECONFIG,
                            "[kms] mtms_cn: name the MTMS certificate(s) allowed "
                            "to deliver TKs (e.g. mtms:factory)");
    return PX_OK;
}

static int check_recv_cert(kms *k, px_error *e)
{
    char *pem = NULL;
    size_t len = 0;
    uint8_t pub[HSM_EC_PUB_LEN];
    int rc = pki_read_file(k->cfg.recv_cert, PX_PKI_PEM_MAX, &pem, &len, e);
    if (rc == PX_OK &&
        (rc = pki_trust_verify(k->trust, (const uint8_t *)pem, len, PKI_ROLE_KMS,
                               PKI_PURPOSE_KEY_AGREEMENT, px_now_ms(), &k->recv_cert, e)) != PX_OK)
        px_error_prefix(e, "recv_cert %s: ", k->cfg.recv_cert);
    if (rc == PX_OK && strcmp(k->recv_cert.name, k->cfg.customer) != 0)
        rc = px_error_set(e, PX_ECONFIG, "recv_cert %s is %s's, this KMS serves customer %s",
                          k->cfg.recv_cert, k->recv_cert.cn, k->cfg.customer);
    if (rc == PX_OK && (rc = hsm_ec_public(k->recv, pub, e)) == PX_OK &&
        memcmp(pub, k->recv_cert.point, sizeof pub) != 0)
        rc = px_error_set(e, PX_ECONFIG, "recv_cert %s certifies another key than %s",
                          k->cfg.recv_cert, k->cfg.recv_key);
    free(pem);
    return rc;
}

int kms_open(const kms_config *c, store *st, hsm *h, kms **out, px_error *e)
{
    kms *k = calloc(1, sizeof *k);
    hsm_key_attrs a;
    int rc = k ? PX_OK : px_error_set(e, PX_ENOMEM, "kms: out of memory");
    *out = NULL;
    if (rc == PX_OK) {
        k->cfg = *c;
        k->st = st;
        k->h = h;
    }
    if (rc == PX_OK && (h == NULL || st == NULL))
        rc = px_error_set(e, PX_ECONFIG, "kms: needs an HSM ([hsm]) and a store");
    if (rc == PX_OK && !pki_name_is_valid(c->customer))
        rc = px_error_set(e, PX_ECONFIG, "[kms] customer: the customer code this KMS serves");
    if (rc == PX_OK)
        rc = parse_allowed(k, e);
    if (rc == PX_OK && (c->ca[0] == 0 || c->crl[0] == 0))
        rc = px_error_set(e, PX_ECONFIG,
                          "kms: the CA certificate and its CRL are required to "
                          "check PIN pad certificates (tls_ca, tls_crl)");
    if (rc == PX_OK && (rc = pki_trust_load(c->ca, c->crl, &k->trust, e)) != PX_OK)
        px_error_prefix(e, "kms: ");
    if (rc == PX_OK && (rc = hsm_key_load_named(h, c->recv_key, &k->recv, e)) != PX_OK)
        px_error_prefix(e, "kms: receiving key (possum kms init makes it): ");
    if (rc == PX_OK) {
        hsm_key_get_attrs(k->recv, &a);
        if (strcmp(a.usage, "K3") != 0)
            rc = px_error_set(e, PX_ECONFIG, "kms: %s is a %s key, not a receiving key (K3)",
                              c->recv_key, a.usage);
    }
    if (rc == PX_OK)
        rc = check_recv_cert(k, e);
    if (rc != PX_OK) {
        kms_close(k);
        return rc;
    }
    *out = k;
    return PX_OK;
}

void kms_close(kms *k)
{
    if (k == NULL)
        return;
    hsm_key_free(k->h, k->recv);
    pki_trust_free(k->trust);
    free(k);
}

const char *kms_recv_fingerprint(const kms *k)
{
    return k->recv_cert.fingerprint_hex;
}

int kms_recv_key_create(hsm *h, const char *label, uint8_t pub[HSM_EC_PUB_LEN], px_error *e)
{
    hsm_keyblock kb;
    int rc = hsm_ec_generate(h, label, &kb, pub, e);
    OPENSSL_cleanse(&kb, sizeof kb);
    return rc;
}

int kms_peer_is_mtms(const kms *k, const char *peer_cn)
{
    for (size_t i = 0; peer_cn != NULL && i < k->nallowed; i++)
        if (strcmp(peer_cn, k->allowed[i]) == 0)
            return 1;
    return 0;
}

/* ---- TK intake ------------------------------------------------------------------------- */

static int refuse(kms *k, kms_intake_result *r, const char *peer, int rc, const px_error *why,
                  px_error *e)
{
    r->status = "refused";
    r->code = rc;
    px_strlcpy(r->reason, px_error_text(why), sizeof r->reason);
    kms_audit(k, peer, "tk.intake", r->serial[0] ? r->serial : "?", 0, "%s", r->reason);
    px_warn(KMS_MOD, "TK for %s from %s refused: %s", r->serial[0] ? r->serial : "?", peer,
            r->reason);
    if (e != NULL && e != why)
        *e = *why;
    return rc;
}

typedef struct held {
    int found;
    char hash[2 * SHA256_DIGEST_LENGTH + 1];
    int64_t created_ms;
    char tk_kcv[PX_HSM_KCV_HEX_MAX], tmk_kcv[PX_HSM_KCV_HEX_MAX];
} held;

static int held_get(kms *k, const char *serial, held *h, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(k->st,
                           "SELECT envelope_hash, envelope_created_ms, tk_kcv, tmk_kcv FROM "
                           "kms_terminal WHERE serial = $1",
                           &q, e);
    memset(h, 0, sizeof *h);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, serial);
    rc = store_step(q, e);
    if (rc == STORE_ROW) {
        h->found = 1;
        px_strlcpy(h->hash, store_col_text(q, 0), sizeof h->hash);
        h->created_ms = store_col_int64(q, 1);
        px_strlcpy(h->tk_kcv, store_col_text(q, 2), sizeof h->tk_kcv);
        px_strlcpy(h->tmk_kcv, store_col_text(q, 3), sizeof h->tmk_kcv);
    }
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

static int terminal_put(kms *k, const pki_tkenv *env, const pki_cert_info *dev, const char *hash,
                        const hsm_keyblock *tk, const hsm_keyblock *tmk, px_error *e)
{
    store_stmt *q;
    int64_t now = px_now_ms();
    int rc = store_prepare(
        k->st,
        "INSERT INTO kms_terminal (serial, tk_block, tk_kcv, tmk_block, tmk_kcv, envelope_hash, "
        "envelope_created_ms, device_cn, device_cert_serial, status, received_ms, loaded_ms, "
        "downloads, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'ready', $10, 0, 0, "
        "$10) ON CONFLICT (serial) DO UPDATE SET tk_block = excluded.tk_block, tk_kcv = "
        "excluded.tk_kcv, tmk_block = excluded.tmk_block, tmk_kcv = excluded.tmk_kcv, "
        "envelope_hash = excluded.envelope_hash, envelope_created_ms = "
        "excluded.envelope_created_ms, device_cn = excluded.device_cn, device_cert_serial = "
        "excluded.device_cert_serial, status = 'ready', received_ms = excluded.received_ms, "
        "loaded_ms = 0, updated_ms = excluded.updated_ms",
        &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, env->serial);
    store_bind_text(q, 2, tk->block);
    store_bind_text(q, 3, tk->kcv);
    store_bind_text(q, 4, tmk->block);
    store_bind_text(q, 5, tmk->kcv);
    store_bind_text(q, 6, hash);
    store_bind_int64(q, 7, env->created_ms);
    store_bind_text(q, 8, dev->cn);
    store_bind_text(q, 9, dev->serial);
    store_bind_int64(q, 10, now);
    rc = store_step(q, e);
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

int kms_tk_intake(kms *k, const char *peer_cn, const uint8_t *in, size_t n, kms_intake_result *r,
                  px_error *e)
{
    pki_tkenv env;
    pki_cert_info dev;
    hsm_keyblock tk, tmk;
    uint8_t md[SHA256_DIGEST_LENGTH];
    char hash[sizeof md * 2 + 1], kcv[8], fp[2 * PKI_FP_LEN + 1];
    held h;
    px_error why = {0};
    int rc, own;
    memset(r, 0, sizeof *r);
    if ((rc = pki_tkenv_parse(in, n, &env, &why)) != PX_OK)
        return refuse(k, r, peer_cn, rc, &why, e);
    px_strlcpy(r->serial, env.serial, sizeof r->serial);
    if (memcmp(env.kms_fp, k->recv_cert.fingerprint, PKI_FP_LEN) != 0) {
        px_hex_encode(env.kms_fp, PKI_FP_LEN, fp);
        px_error_set(&why, PX_EPERM,
                     "TK envelope for %s is wrapped to another KMS (certificate "
                     "%.16s...), this is %s (%.16s...): it cannot be unwrapped here",
                     env.serial, fp, k->recv_cert.cn, k->recv_cert.fingerprint_hex);
        return refuse(k, r, peer_cn, PX_EPERM, &why, e);
    }
    if ((rc = pki_tkenv_verify(k->trust, in, n, &env, px_now_ms(), &dev, &why)) != PX_OK)
        return refuse(k, r, peer_cn, rc, &why, e);
    SHA256(in, n, md);
    px_hex_encode(md, sizeof md, hash);
    if ((rc = held_get(k, env.serial, &h, &why)) != PX_OK)
        return refuse(k, r, peer_cn, rc, &why, e);
    if (h.found && strcmp(h.hash, hash) == 0) { /* the MTMS sent it again: same answer */
        r->status = "duplicate";
        px_strlcpy(r->tk_kcv, h.tk_kcv, sizeof r->tk_kcv);
        px_strlcpy(r->tmk_kcv, h.tmk_kcv, sizeof r->tmk_kcv);
        return PX_OK;
    }
    if (h.found && env.created_ms <= h.created_ms) {
        px_error_set(&why, PX_ECONFLICT, "TK envelope for %s is older than the TK held (KCV %s)",
                     env.serial, h.tk_kcv);
        return refuse(k, r, peer_cn, PX_ECONFLICT, &why, e);
    }
    px_hex_encode(env.tk_kcv, PKI_TKENV_KCV_LEN, kcv);
    rc = hsm_key_import_ecdh(k->h, k->recv, env.eph, env.wrapped, env.wrapped_len, &kms_tk_attrs,
                             kcv, NULL, &tk, &why);
    if (rc != PX_OK) {
        px_error_prefix(&why, "cannot unwrap the TK of %s in the HSM: ", env.serial);
        return refuse(k, r, peer_cn, rc, &why, e);
    }
    rc = hsm_key_generate(k->h, &kms_tmk_attrs, NULL, &tmk, &why);
    /* in the caller's transaction when there is one (a batch: one commit for all) */
    own = !store_in_transaction(k->st);
    if (rc == PX_OK && (!own || (rc = store_begin(k->st, &why)) == PX_OK)) {
        rc = terminal_put(k, &env, &dev, hash, &tk, &tmk, &why);
        if (rc == PX_OK)
            kms_audit(k, peer_cn, "tk.intake", env.serial, 1,
                      "TK (KCV %s) signed by %s taken in; TMK generated (KCV %s)", tk.kcv, dev.cn,
                      tmk.kcv);
        if (rc == PX_OK && own)
            rc = store_commit(k->st, &why);
        if (rc != PX_OK && own)
            store_rollback(k->st);
    }
    if (rc != PX_OK) {
        OPENSSL_cleanse(&tk, sizeof tk);
        OPENSSL_cleanse(&tmk, sizeof tmk);
        return refuse(k, r, peer_cn, rc, &why, e);
    }
    r->status = "imported";
    px_strlcpy(r->tk_kcv, tk.kcv, sizeof r->tk_kcv);
    px_strlcpy(r->tmk_kcv, tmk.kcv, sizeof r->tmk_kcv);
    px_info(KMS_MOD, "TK of %s (KCV %s) taken in from %s; TMK KCV %s", env.serial, tk.kcv, peer_cn,
            tmk.kcv);
    OPENSSL_cleanse(&tk, sizeof tk);
    OPENSSL_cleanse(&tmk, sizeof tmk);
    return PX_OK;
}

/* ---- key download ---------------------------------------------------------------------- */

/* The named column (0: tk_block, 1: tmk_block) of serial's row, loaded. */
static int load_terminal_key(kms *k, const char *serial, int col, hsm_key **out, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(k->st, "SELECT tk_block, tmk_block FROM kms_terminal WHERE serial = $1",
                           &q, e);
    *out = NULL;
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, serial);
    rc = store_step(q, e);
    if (rc == STORE_ROW)
        rc = hsm_key_load(k->h, store_col_text(q, col), out, e);
    else if (rc == STORE_DONE)
        rc = px_error_set(e, PX_ENOTFOUND, "unknown serial %s: no TK has reached this KMS for it",
                          serial);
    store_done(q);
    return rc;
}

static int refuse_dl(kms *k, const char *peer, const char *action, const char *serial, int rc,
                     px_error *e)
{
    kms_audit(k, peer, action, pki_serial_is_valid(serial) ? serial : "?", 0, "%s",
              px_error_text(e));
    px_warn(KMS_MOD, "%s for %s refused: %s", action, pki_serial_is_valid(serial) ? serial : "?",
            px_error_text(e));
    return rc;
}

static void sweep_challenges(kms *k)
{
    store_stmt *q;
    px_error e = {0};
    if (store_prepare(k->st,
                      "DELETE FROM kms_challenge WHERE nonce IN (SELECT nonce FROM kms_challenge "
                      "WHERE expires_ms < $1 LIMIT 1000)",
                      &q, &e) != PX_OK)
        return;
    store_bind_int64(q, 1, px_now_ms() - KEEP_USED_MS);
    (void)store_step(q, &e);
    store_done(q);
}

int kms_download_challenge(kms *k, const char *serial, const char *peer, kms_challenge *out,
                           px_error *e)
{
    hsm_key *tk = NULL, *sk = NULL;
    hsm_keyblock sb;
    char crypt[PX_HSM_KEYBLOCK_MAX], kcv[PX_HSM_KCV_HEX_MAX], nonce_hex[2 * PX_KMS_NONCE_LEN + 1];
    size_t n = 0;
    store_stmt *q;
    int rc;
    memset(out, 0, sizeof *out);
    if (!pki_serial_is_valid(serial))
        return px_error_set(e, PX_EINVAL, "serial: 1 to 32 of A-Z a-z 0-9 . _ - @");
    rc = load_terminal_key(k, serial, 0, &tk, e);
    if (rc == PX_OK)
        rc = hsm_key_generate(k->h, &kms_session_attrs, NULL, &sb, e);
    if (rc == PX_OK)
        rc = hsm_key_load(k->h, sb.block, &sk, e);
    if (rc == PX_OK)
        rc = hsm_key_export(k->h, tk, sk, HSM_EXPORT_ECB, crypt, sizeof crypt, kcv, e);
    if (rc == PX_OK &&
        (px_hex_decode(crypt, out->session, sizeof out->session, &n) != PX_OK ||
         n != sizeof out->session || px_hex_decode_n(kcv, 6, out->session_kcv, 3, &n) != PX_OK))
        rc = px_error_set(e, PX_EINTERNAL, "session key: unexpected cryptogram");
    if (rc == PX_OK)
        rc = crypto_random(out->nonce, sizeof out->nonce, e);
    hsm_key_free(k->h, sk);
    hsm_key_free(k->h, tk);
    if (rc == PX_OK) {
        if ((k->challenges++ & 255) == 0) /* now and then: spent challenges are kept an hour */
            sweep_challenges(k);
        out->expires_ms = px_now_ms() + k->cfg.challenge_ttl_ms;
        px_hex_encode(out->nonce, sizeof out->nonce, nonce_hex);
        rc = store_prepare(k->st,
                           "INSERT INTO kms_challenge (nonce, serial, session_block, "
                           "created_ms, expires_ms, state) VALUES ($1, $2, $3, $4, $5, "
                           "'issued')",
                           &q, e);
        if (rc == PX_OK) {
            store_bind_text(q, 1, nonce_hex);
            store_bind_text(q, 2, serial);
            store_bind_text(q, 3, sb.block);
            store_bind_int64(q, 4, px_now_ms());
            store_bind_int64(q, 5, out->expires_ms);
            rc = store_step(q, e);
            rc = rc < 0 ? rc : PX_OK;
            store_done(q);
        }
    }
    OPENSSL_cleanse(&sb, sizeof sb);
    if (rc != PX_OK) {
        memset(out, 0, sizeof *out);
        return refuse_dl(k, peer, "download.challenge", serial, rc, e);
    }
    return PX_OK;
}

typedef struct chal_row {
    char serial[PKI_TKENV_SERIAL_MAX + 1];
    char session_block[PX_HSM_KEYBLOCK_MAX];
    int64_t expires_ms;
    char state[8];
} chal_row;

static int chal_get(kms *k, const char *nonce_hex, chal_row *c, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(k->st,
                           "SELECT serial, session_block, expires_ms, state FROM "
                           "kms_challenge WHERE nonce = $1",
                           &q, e);
    memset(c, 0, sizeof *c);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, nonce_hex);
    rc = store_step(q, e);
    if (rc == STORE_ROW) {
        px_strlcpy(c->serial, store_col_text(q, 0), sizeof c->serial);
        px_strlcpy(c->session_block, store_col_text(q, 1), sizeof c->session_block);
        c->expires_ms = store_col_int64(q, 2);
        px_strlcpy(c->state, store_col_text(q, 3), sizeof c->state);
    } else if (rc == STORE_DONE) {
        rc = px_error_set(e, PX_ENOTFOUND, "unknown nonce: ask for a challenge first");
    }
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

/* Move the challenge from state `from` to `to`; PX_ECONFLICT when someone else did first. */
static int chal_move(kms *k, const char *nonce_hex, const char *from, const char *to, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(k->st,
                           "UPDATE kms_challenge SET state = $3, used_ms = $4 WHERE nonce = "
                           "$1 AND state = $2",
                           &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, nonce_hex);
    store_bind_text(q, 2, from);
    store_bind_text(q, 3, to);
    store_bind_int64(q, 4, px_now_ms());
    rc = store_step(q, e);
    if (rc >= 0 && store_changes(q) != 1)
        rc = px_error_set(e, PX_ECONFLICT, "nonce already used: a replayed request");
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

static int verify_mac(kms *k, const chal_row *c, const char *label, const char *serial,
                      const uint8_t *nonce, size_t nonce_len, const char *result,
                      const uint8_t *mac, size_t mac_len, px_error *e)
{
    uint8_t data[PKI_KEYLOAD_DATA_MAX];
    size_t dlen = 0;
    hsm_key *sk = NULL;
    int rc = pki_keyload_mac_data(label, serial, nonce, nonce_len, result, data, sizeof data, &dlen,
                                  e);
    if (rc == PX_OK && mac_len != KMS_MAC_LEN)
        rc = px_error_set(e, PX_EINVAL, "mac: %zu bytes, expected %d", mac_len, KMS_MAC_LEN);
    if (rc == PX_OK)
        rc = hsm_key_load(k->h, c->session_block, &sk, e);
    if (rc == PX_OK)
        rc = hsm_mac_verify(k->h, sk, CRYPTO_MAC_TDES_CMAC, data, dlen, mac, mac_len, e);
    hsm_key_free(k->h, sk);
    return rc;
}

/* Checks shared by download and result: the challenge is serial's, in state `state`, and
 * (for the download) not expired. */
static int chal_check(kms *k, const char *serial, const uint8_t *nonce, size_t nonce_len,
                      const char *state, int check_expiry, chal_row *c, char *nonce_hex,
                      px_error *e)
{
    int rc;
    if (!pki_serial_is_valid(serial))
        return px_error_set(e, PX_EINVAL, "serial: 1 to 32 of A-Z a-z 0-9 . _ - @");
    if (nonce_len != PX_KMS_NONCE_LEN)
        return px_error_set(e, PX_EINVAL, "nonce: %zu bytes, expected %d", nonce_len,
                            PX_KMS_NONCE_LEN);
    px_hex_encode(nonce, nonce_len, nonce_hex);
    if ((rc = chal_get(k, nonce_hex, c, e)) != PX_OK)
        return rc;
    if (strcmp(c->serial, serial) != 0)
        return px_error_set(e, PX_EPERM, "nonce was issued to another terminal");
    if (strcmp(c->state, state) != 0 && strcmp(state, "issued") == 0)
        return px_error_set(e, PX_ECONFLICT, "nonce already used: a replayed request");
    if (strcmp(c->state, state) != 0)
        return px_error_set(e, PX_ECONFLICT,
                            strcmp(c->state, "done") == 0
                                ? "result already reported: a replayed request"
                                : "no key download with this nonce yet");
    if (check_expiry && c->expires_ms < px_now_ms())
        return px_error_set(e, PX_ETIMEOUT, "challenge expired: ask for a new one");
    return PX_OK;
}

int kms_download(kms *k, const char *serial, const uint8_t *nonce, size_t nonce_len,
                 const uint8_t *mac, size_t mac_len, const char *peer, kms_tmk *out, px_error *e)
{
    chal_row c;
    char nonce_hex[2 * PX_KMS_NONCE_LEN + 1], crypt[PX_HSM_KEYBLOCK_MAX];
    hsm_key *tk = NULL, *tmk = NULL;
    store_stmt *q;
    size_t n = 0;
    int rc, spent = 0;
    memset(out, 0, sizeof *out);
    rc = chal_check(k, serial, nonce, nonce_len, "issued", 1, &c, nonce_hex, e);
    /* one transaction: the nonce is spent, the TMK counted and the download audited together;
     * a wrong MAC still spends the nonce (it cannot be tried again) */
    if (rc == PX_OK && (rc = store_begin(k->st, e)) == PX_OK &&
        (rc = chal_move(k, nonce_hex, "issued", "used", e)) == PX_OK)
        spent = 1;
    if (rc == PX_OK && (rc = verify_mac(k, &c, PKI_KEYLOAD_PROOF_LABEL, serial, nonce, nonce_len,
                                        NULL, mac, mac_len, e)) == PX_EAUTH) {
        px_error keep;
        px_error_set(e, PX_EAUTH, "the terminal does not hold the TK (its proof does not verify)");
        kms_audit(k, peer, "download", serial, 0, "%s", e->msg);
        keep = *e;
        if (store_commit(k->st, e) != PX_OK)
            store_rollback(k->st);
        *e = keep;
        px_warn(KMS_MOD, "download for %s refused: %s", serial, e->msg);
        return PX_EAUTH;
    }
    if (rc == PX_OK)
        rc = load_terminal_key(k, serial, 0, &tk, e);
    if (rc == PX_OK)
        rc = load_terminal_key(k, serial, 1, &tmk, e);
    if (rc == PX_OK)
        rc = hsm_key_export(k->h, tk, tmk, HSM_EXPORT_ECB, crypt, sizeof crypt, out->kcv, e);
    if (rc == PX_OK &&
        (px_hex_decode(crypt, out->cryptogram, sizeof out->cryptogram, &n) != PX_OK ||
         n != sizeof out->cryptogram))
        rc = px_error_set(e, PX_EINTERNAL, "TMK: unexpected cryptogram");
    hsm_key_free(k->h, tmk);
    hsm_key_free(k->h, tk);
    OPENSSL_cleanse(crypt, sizeof crypt);
    if (rc == PX_OK && (rc = store_prepare(k->st,
                                           "UPDATE kms_terminal SET downloads = downloads "
                                           "+ 1, updated_ms = $2 WHERE serial = $1",
                                           &q, e)) == PX_OK) {
        store_bind_text(q, 1, serial);
        store_bind_int64(q, 2, px_now_ms());
        rc = store_step(q, e);
        rc = rc < 0 ? rc : PX_OK;
        store_done(q);
    }
    if (rc == PX_OK)
        kms_audit(k, peer, "download", serial, 1, "TMK (KCV %s) sent under TK", out->kcv);
    if (rc == PX_OK)
        rc = store_commit(k->st, e);
    if (rc != PX_OK) {
        store_rollback(k->st);
        memset(out, 0, sizeof *out);
        (void)spent;
        return refuse_dl(k, peer, "download", serial, rc, e);
    }
    return PX_OK;
}

int kms_download_result(kms *k, const char *serial, const uint8_t *nonce, size_t nonce_len,
                        const char *result, const uint8_t *mac, size_t mac_len, const char *peer,
                        px_error *e)
{
    chal_row c;
    char nonce_hex[2 * PX_KMS_NONCE_LEN + 1];
    store_stmt *q;
    int loaded = result != NULL && strcmp(result, "loaded") == 0, rc;
    if (result == NULL ||
        (!loaded && strcmp(result, "kcv_mismatch") != 0 && strcmp(result, "error") != 0))
        return px_error_set(e, PX_EINVAL, "result: loaded, kcv_mismatch or error");
    rc = chal_check(k, serial, nonce, nonce_len, "used", 0, &c, nonce_hex, e);
    if (rc == PX_OK && (rc = verify_mac(k, &c, PKI_KEYLOAD_RESULT_LABEL, serial, nonce, nonce_len,
                                        result, mac, mac_len, e)) == PX_EAUTH)
        px_error_set(e, PX_EAUTH, "the result report does not verify");
    if (rc == PX_OK && (rc = store_begin(k->st, e)) == PX_OK)
        rc = chal_move(k, nonce_hex, "used", "done", e);
    if (rc == PX_OK && loaded &&
        (rc = store_prepare(k->st,
                            "UPDATE kms_terminal SET status = 'loaded', loaded_ms = $2, "
                            "updated_ms = $2 WHERE serial = $1",
                            &q, e)) == PX_OK) {
        store_bind_text(q, 1, serial);
        store_bind_int64(q, 2, px_now_ms());
        rc = store_step(q, e);
        rc = rc < 0 ? rc : PX_OK;
        store_done(q);
    }
    if (rc == PX_OK && loaded)
        kms_audit(k, peer, "download.result", serial, 1, "the terminal loaded its TMK");
    else if (rc == PX_OK)
        kms_audit(k, peer, "download.result", serial, 0, "the terminal refused the TMK: %s",
                  strcmp(result, "kcv_mismatch") == 0 ? "its check value does not match"
                                                      : "error in the terminal");
    if (rc == PX_OK)
        rc = store_commit(k->st, e);
    if (rc != PX_OK) {
        store_rollback(k->st);
        return refuse_dl(k, peer, "download.result", serial, rc, e);
    }
    if (!loaded)
        px_warn(KMS_MOD, "terminal %s reports %s for its TMK", serial, result);
    return PX_OK;
}

/* ---- the platform ---------------------------------------------------------------------- */

int kms_tmk_export(kms *k, const char *serial, const char *zone_key, const char *actor, char *out,
                   size_t outcap, char kcv[PX_HSM_KCV_HEX_MAX], px_error *e)
{
    hsm_key *zk = NULL, *tmk = NULL;
    hsm_key_attrs a;
    const char *label = zone_key && zone_key[0] ? zone_key : k->cfg.zone_key;
    int rc = PX_OK;
    if (!pki_serial_is_valid(serial))
        return px_error_set(e, PX_EINVAL, "serial: 1 to 32 of A-Z a-z 0-9 . _ - @");
    if (label[0] == 0)
        rc = px_error_set(e, PX_EINVAL, "no zone key: give one or set [kms] zone_key");
    if (rc == PX_OK && (rc = hsm_key_load_named(k->h, label, &zk, e)) != PX_OK)
        px_error_prefix(e, "zone key %s: ", label);
    if (rc == PX_OK)
        rc = load_terminal_key(k, serial, 1, &tmk, e);
    if (rc == PX_OK) {
        hsm_key_get_attrs(zk, &a);
        rc = hsm_key_export(k->h, zk, tmk,
                            strcmp(a.usage, "K1") == 0 ? HSM_EXPORT_TR31 : HSM_EXPORT_ECB, out,
                            outcap, kcv, e);
    }
    hsm_key_free(k->h, tmk);
    hsm_key_free(k->h, zk);
    if (rc != PX_OK)
        return refuse_dl(k, actor, "tmk.export", serial, rc, e);
    kms_audit(k, actor, "tmk.export", serial, 1, "TMK (KCV %s) exported under zone key %s", kcv,
              label);
    return PX_OK;
}
