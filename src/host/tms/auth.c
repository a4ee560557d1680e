/*
 * auth.c: mutual authentication of terminal and TMS before any download, exactly as seed 000
 * claim 4 and [0076]-[0082] describe, with the cryptograms computed in the HSM:
 *
 *   terminal -> TMS   T-DATA (16 random bytes)
 *   TMS               DWK = a fresh double-length TDES key (D0, in the HSM)
 *                     TAC-1 = TDES-CBC(DWK, IV 0, T-DATA)
 *                     DWK-1 = TDES-ECB(DMK, DWK)   (DMK: this terminal's, derived from the
 *                                                   TMS master key and the serial number)
 *   TMS -> terminal   TAC-1, DWK-1, S-DATA (16 random bytes), a session id
 *   terminal          DWK = DMK^-1(DWK-1); TAC-0 = TDES-CBC(DWK, 0, T-DATA); TAC-0 == TAC-1?
 *   terminal -> TMS   SAC-1 = TDES-CBC(DWK, 0, S-DATA) and its result (TAC matched)
 *   TMS               SAC-0 = TDES-CBC(DWK, 0, S-DATA); SAC-0 == SAC-1 (constant time)
 *
 * A session is answered once: the first answer, right or wrong, consumes it, so a replayed
 * SAC finds nothing to open. An open session gives the terminal a bearer token for its
 * downloads and reports until it expires. No clear key leaves the HSM: DWK lives here as a
 * key block under the LMK, and leaves only as DWK-1.
 */
#include "host/tms/tms_int.h"

#include "crypto/crypto.h"
#include "lib/hex.h"
#include "lib/log.h"
#include "lib/str.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <string.h>

/* D0, TDES 16, encrypt only (TAC, SAC), exportable as a legacy cryptogram (DWK-1). */
static const hsm_key_attrs dwk_attrs = {"D0", 'T', 'E', 'S', 16};
static const uint8_t zero_iv[8];

static void token_hash(const char *token, char out[TUF_SHA256_HEX])
{
    tuf_sha256_hex(token, strlen(token), out);
}

static int last_challenge(store *st, const char *serial, int64_t *last, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st, "SELECT MAX(created_ms) FROM tms_session WHERE serial = $1", &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, serial);
    rc = store_step(q, e);
    *last = rc == STORE_ROW ? store_col_int64(q, 0) : 0;
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

/* DWK, DWK-1 and TAC-1 for t_data, in the HSM. */
static int make_cryptograms(hsm *h, const hsm_keyblock *dmk_block, const uint8_t *t_data,
                            hsm_keyblock *dwk_block, tms_auth_challenge *out, px_error *e)
{
    hsm_key *dmk = NULL, *dwk = NULL;
    uint8_t tac[TMS_AUTH_DATA_LEN];
    int rc = hsm_key_load(h, dmk_block->block, &dmk, e);
    if (rc == PX_OK)
        rc = hsm_key_generate(h, &dwk_attrs, NULL, dwk_block, e);
    if (rc == PX_OK)
        rc = hsm_key_load(h, dwk_block->block, &dwk, e);
    if (rc == PX_OK)
        rc = hsm_key_export(h, dmk, dwk, HSM_EXPORT_ECB, out->dwk, sizeof out->dwk, out->dwk_kcv,
                            e);
    if (rc == PX_OK)
        rc = hsm_data_encrypt(h, dwk, CRYPTO_CBC, zero_iv, t_data, TMS_AUTH_DATA_LEN, tac, e);
    if (rc == PX_OK)
        px_hex_encode(tac, sizeof tac, out->tac);
    hsm_key_free(h, dwk);
    hsm_key_free(h, dmk);
    return rc;
}

int tms_auth_begin(store *st, hsm *h, const tms_auth_config *c, const char *serial,
                   const char *t_data_hex, int64_t now, tms_auth_challenge *out, px_error *e)
{
    uint8_t t_data[TMS_AUTH_DATA_LEN], s_data[TMS_AUTH_DATA_LEN], id[TMS_SESSION_ID_LEN];
    hsm_keyblock dmk, dwk;
    store_stmt *q;
    size_t n = 0;
    int64_t last;
    int rc;
    memset(out, 0, sizeof *out);
    if (t_data_hex == NULL || strlen(t_data_hex) != 2 * TMS_AUTH_DATA_LEN ||
        px_hex_decode(t_data_hex, t_data, sizeof t_data, &n) != PX_OK || n != sizeof t_data)
        return px_error_set(e, PX_EINVAL, "t_data: %d bytes in hex", TMS_AUTH_DATA_LEN);
    if ((rc = last_challenge(st, serial, &last, e)) != PX_OK)
        return rc;
    if (last > 0 && now - last < c->min_interval_ms)
        return px_error_set(e, PX_ELIMIT,
                            "terminal %s: another challenge %lld ms ago: wait %lld ms", serial,
                            (long long)(now - last), (long long)c->min_interval_ms);
    if ((rc = tms_terminal_dmk(st, h, c->master_label, serial, &dmk, e)) != PX_OK)
        return rc;
    rc = make_cryptograms(h, &dmk, t_data, &dwk, out, e);
    OPENSSL_cleanse(&dmk, sizeof dmk);
    if (rc == PX_OK && ((rc = crypto_random(s_data, sizeof s_data, e)) != PX_OK ||
                        (rc = crypto_random(id, sizeof id, e)) != PX_OK))
        rc = px_error_set(e, PX_ECRYPTO, "no random bytes");
    if (rc != PX_OK)
        return rc;
    px_hex_encode(s_data, sizeof s_data, out->s_data);
    px_hex_encode(id, sizeof id, out->session);
    out->expires_ms = now + c->challenge_ttl_ms;
    if ((rc = store_prepare(st,
                            "INSERT INTO tms_session (id, serial, state, dwk_block, s_data, "
                            "created_ms, expires_ms) VALUES ($1, $2, 'challenged', $3, $4, $5, "
                            "$6)",
                            &q, e)) != PX_OK)
        return rc;
    store_bind_text(q, 1, out->session);
    store_bind_text(q, 2, serial);
    store_bind_text(q, 3, dwk.block);
    store_bind_text(q, 4, out->s_data);
    store_bind_int64(q, 5, now);
    store_bind_int64(q, 6, out->expires_ms);
    rc = store_step(q, e);
    store_done(q);
    OPENSSL_cleanse(&dwk, sizeof dwk);
    if (rc < 0)
        return rc;
    px_debug(TMS_MOD, "terminal %s: challenge %s (DWK kcv %s)", serial, out->session, out->dwk_kcv);
    return PX_OK;
}

typedef struct finish_ctx {
    hsm *h;
    const tms_auth_config *c;
    const char *serial, *session, *sac_hex;
    int terminal_ok;
    int64_t now;
    char token[2 * TMS_TOKEN_LEN + 1];
    int64_t expires_ms;
    px_error verdict; /* why the session failed: kept after the commit that records it */
} finish_ctx;

/* SAC-0 for the stored session, compared with SAC-1 in constant time. */
static int check_sac(finish_ctx *f, const char *dwk_block, const char *s_data_hex, px_error *e)
{
    uint8_t s_data[TMS_AUTH_DATA_LEN], sac0[TMS_AUTH_DATA_LEN], sac1[TMS_AUTH_DATA_LEN];
    size_t n1 = 0, n2 = 0;
    hsm_key *dwk = NULL;
    int rc, same;
    if (px_hex_decode(s_data_hex, s_data, sizeof s_data, &n1) != PX_OK || n1 != sizeof s_data)
        return px_error_set(e, PX_EINTERNAL, "session %s: stored S-DATA is damaged", f->session);
    if (f->sac_hex == NULL || strlen(f->sac_hex) != 2 * TMS_AUTH_DATA_LEN ||
        px_hex_decode(f->sac_hex, sac1, sizeof sac1, &n2) != PX_OK || n2 != sizeof sac1)
        return px_error_set(&f->verdict, PX_EAUTH, "sac: %d bytes in hex", TMS_AUTH_DATA_LEN);
    if ((rc = hsm_key_load(f->h, dwk_block, &dwk, e)) != PX_OK)
        return rc;
    rc = hsm_data_encrypt(f->h, dwk, CRYPTO_CBC, zero_iv, s_data, sizeof s_data, sac0, e);
    hsm_key_free(f->h, dwk);
    if (rc != PX_OK)
        return rc;
    same = px_ct_equal(sac0, sac1, sizeof sac0);
    OPENSSL_cleanse(sac0, sizeof sac0);
    if (!same)
        px_error_set(&f->verdict, PX_EAUTH,
                     "SAC does not match: the terminal does not hold the "
                     "DMK of %s",
                     f->serial);
    return PX_OK;
}

static int finish_txn(store *st, void *ud, px_error *e)
{
    finish_ctx *f = ud;
    char serial[PX_TMS_SERIAL_MAX] = "", state[16] = "", dwk[PX_HSM_KEYBLOCK_MAX] = "",
         s_data[40] = "";
    char hash[TUF_SHA256_HEX];
    uint8_t tok[TMS_TOKEN_LEN];
    int64_t expires = 0;
    store_stmt *q;
    int rc = store_prepare(st,
                           "SELECT serial, state, dwk_block, s_data, expires_ms FROM "
                           "tms_session WHERE id = $1",
                           &q, e);
    memset(&f->verdict, 0, sizeof f->verdict);
    if (rc != PX_OK)
        return rc;
    store_bind_text(q, 1, f->session);
    if ((rc = store_step(q, e)) == STORE_ROW) {
        px_strlcpy(serial, store_col_text(q, 0), sizeof serial);
        px_strlcpy(state, store_col_text(q, 1), sizeof state);
        px_strlcpy(dwk, store_col_text(q, 2), sizeof dwk);
        px_strlcpy(s_data, store_col_text(q, 3), sizeof s_data);
        expires = store_col_int64(q, 4);
    }
    store_done(q);
    if (rc < 0)
        return rc;
    if (rc == STORE_DONE || strcmp(serial, f->serial) != 0)
        return px_error_set(e, PX_EAUTH, "no challenge %.32s for terminal %s", f->session,
                            f->serial);
    if (strcmp(state, "challenged") != 0)
        return px_error_set(e, PX_EAUTH, "session %s was answered already (a replayed SAC?)",
                            f->session);
    if (expires <= f->now)
        px_error_set(&f->verdict, PX_EAUTH, "session %s: the challenge expired", f->session);
    else if (!f->terminal_ok)
        px_error_set(&f->verdict, PX_EAUTH, "terminal %s did not accept the TMS's TAC", f->serial);
    else if ((rc = check_sac(f, dwk, s_data, e)) != PX_OK)
        return rc;
    OPENSSL_cleanse(dwk, sizeof dwk);
    if (f->verdict.code == PX_OK) {
        if ((rc = crypto_random(tok, sizeof tok, e)) != PX_OK)
            return rc;
        px_hex_encode(tok, sizeof tok, f->token);
        OPENSSL_cleanse(tok, sizeof tok);
        token_hash(f->token, hash);
        f->expires_ms = f->now + f->c->session_ttl_ms;
    }
    if ((rc = store_prepare(st,
                            "UPDATE tms_session SET state = $2, token_hash = $3, expires_ms = "
                            "$4 WHERE id = $1 AND state = 'challenged'",
                            &q, e)) != PX_OK)
        return rc;
    store_bind_text(q, 1, f->session);
    store_bind_text(q, 2, f->verdict.code == PX_OK ? "open" : "failed");
    store_bind_text(q, 3, f->verdict.code == PX_OK ? hash : NULL);
    store_bind_int64(q, 4, f->verdict.code == PX_OK ? f->expires_ms : expires);
    rc = store_step(q, e);
    if (rc >= 0 && store_changes(q) != 1)
        rc = px_error_set(e, PX_EAUTH, "session %s was answered already (a replayed SAC?)",
                          f->session);
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

int tms_auth_finish(store *st, hsm *h, const tms_auth_config *c, const char *serial,
                    const char *session, const char *sac_hex, int terminal_ok, int64_t now,
                    char token[2 * TMS_TOKEN_LEN + 1], int64_t *expires_ms, px_error *e)
{
    finish_ctx f = {.h = h,
                    .c = c,
                    .serial = serial,
                    .session = session,
                    .sac_hex = sac_hex,
                    .terminal_ok = terminal_ok,
                    .now = now};
    int rc;
    if (session == NULL || strlen(session) != 2 * TMS_SESSION_ID_LEN ||
        !px_hex_is_valid(session, strlen(session)))
        return px_error_set(e, PX_EINVAL, "session: %d bytes in hex", TMS_SESSION_ID_LEN);
    rc = tms_txn(st, finish_txn, &f, e);
    if (rc == PX_OK && f.verdict.code != PX_OK) {
        px_warn(TMS_MOD, "terminal %s: authentication failed: %s", serial, f.verdict.msg);
        if (e != NULL)
            *e = f.verdict;
        rc = f.verdict.code;
    } else if (rc == PX_EAUTH) {
        px_warn(TMS_MOD, "terminal %s: authentication refused: %s", serial, px_error_text(e));
    }
    if (rc == PX_OK) {
        memcpy(token, f.token, sizeof f.token);
        *expires_ms = f.expires_ms;
        px_info(TMS_MOD, "terminal %s authenticated (session %s)", serial, session);
    }
    OPENSSL_cleanse(f.token, sizeof f.token);
    return rc;
}

int tms_session_check(store *st, const char *token, int64_t now, char serial[PX_TMS_SERIAL_MAX],
                      px_error *e)
{
    char hash[TUF_SHA256_HEX];
    store_stmt *q;
    int rc;
    if (token == NULL || strlen(token) != 2 * TMS_TOKEN_LEN ||
        !px_hex_is_valid(token, strlen(token)))
        return px_error_set(e, PX_EAUTH, "no session: authenticate first (POST /v1/sessions)");
    token_hash(token, hash);
    if ((rc = store_prepare(st,
                            "SELECT serial, expires_ms FROM tms_session WHERE token_hash = $1 "
                            "AND state = 'open'",
                            &q, e)) != PX_OK)
        return rc;
    store_bind_text(q, 1, hash);
    rc = store_step(q, e);
    if (rc == STORE_ROW) {
        px_strlcpy(serial, store_col_text(q, 0), PX_TMS_SERIAL_MAX);
        if (store_col_int64(q, 1) <= now)
            rc = px_error_set(e, PX_EAUTH, "session expired: authenticate again");
    } else if (rc == STORE_DONE) {
        rc = px_error_set(e, PX_EAUTH, "no session: authenticate first (POST /v1/sessions)");
    }
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}

int tms_session_sweep(store *st, int64_t now, px_error *e)
{
    store_stmt *q;
    int rc = store_prepare(st,
                           "DELETE FROM tms_session WHERE id IN (SELECT id FROM tms_session "
                           "WHERE expires_ms < $1 LIMIT 1000)",
                           &q, e);
    if (rc != PX_OK)
        return rc;
    store_bind_int64(q, 1, now);
    rc = store_step(q, e);
    store_done(q);
    return rc < 0 ? rc : PX_OK;
}
