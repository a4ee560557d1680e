/*
 * credit.c: the payee credit of seed 002 [0055]: after reconciliation the provider credits
 * the payee's bound card (0220 / 210000, docs/switch-protocol.md section 2) and the payee
 * is told, with the payer's mobile number ([0028]: it tells payments apart). The switch's
 * ledger gets the credit in the same transaction (host/switch/ledger.h, docs/ledger.md).
 */
#include "host/phonepay/phonepay_int.h"
#include "host/phonepay/phonepay_recon.h"
#include "host/switch/ledger.h"
#include "iso8583/iso8583.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/time.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

typedef struct credit_job {
    const char *ref;
    char state[16];
    int64_t amount_minor;
    char payee[16], payer[16], rrn[16], stan[8], time[12], masked[PHONEPAY_MASKED_PAN_MAX];
    uint8_t enc[PHONEPAY_CARD_ENC_LEN], mac[PHONEPAY_MAC_LEN];
    size_t enclen, maclen;
    char rc[3]; /* the provider's answer, "" none */
    int skip;   /* credited already, or not creditable */
} credit_job;

/* Read the payment; read-only here. */
static int job_load(phonepay *pp, credit_job *j, px_error *e)
{
    store_stmt *s;
    int rc = store_prepare(pp->st,
                           "SELECT state, amount_minor, payee_mobile, payer_mobile, "
                           "rrn, COALESCE(credit_stan, ''), COALESCE(credit_time, ''), "
                           "card_masked, card_enc, card_mac FROM phonepay_payment WHERE "
                           "reference = $1",
                           &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, j->ref);
    rc = store_step(s, e);
    if (rc == STORE_ROW) {
        const void *p;
        px_strlcpy(j->state, store_col_text(s, 0), sizeof j->state);
        j->amount_minor = store_col_int64(s, 1);
        px_strlcpy(j->payee, store_col_text(s, 2), sizeof j->payee);
        px_strlcpy(j->payer, store_col_text(s, 3), sizeof j->payer);
        px_strlcpy(j->rrn, store_col_text(s, 4), sizeof j->rrn);
        px_strlcpy(j->stan, store_col_text(s, 5), sizeof j->stan);
        px_strlcpy(j->time, store_col_text(s, 6), sizeof j->time);
        px_strlcpy(j->masked, store_col_text(s, 7), sizeof j->masked);
        if ((p = store_col_blob(s, 8, &j->enclen)) != NULL && j->enclen == sizeof j->enc)
            memcpy(j->enc, p, sizeof j->enc);
        if ((p = store_col_blob(s, 9, &j->maclen)) != NULL && j->maclen == sizeof j->mac)
            memcpy(j->mac, p, sizeof j->mac);
    }
    store_done(s);
    if (rc == STORE_DONE)
        return px_error_set(e, PX_ENOTFOUND, "payment %s: gone", j->ref);
    return rc < 0 ? rc : PX_OK;
}

/* Claim the credit: approved -> crediting with a new STAN and transmission time; a credit
 * already sent (crediting) keeps both, so the repeat is the identical message. */
static int claim_txn(phonepay *pp, void *ud, px_error *e)
{
    credit_job *j = ud;
    store_stmt *s;
    int rc = job_load(pp, j, e);
    if (rc != PX_OK)
        return rc;
    j->skip = strcmp(j->state, "approved") != 0 && strcmp(j->state, "crediting") != 0;
    if (j->skip || strcmp(j->state, "crediting") == 0)
        return PX_OK;
    rc = store_prepare(pp->st,
                       "UPDATE phonepay_counter SET next = next + 1 WHERE name = "
                       "'credit_stan' RETURNING next",
                       &s, e);
    if (rc != PX_OK)
        return rc;
    rc = store_step(s, e);
    if (rc == STORE_ROW)
        snprintf(j->stan, sizeof j->stan, "%06lld",
                 (long long)((store_col_int64(s, 0) - 2) % 999999 + 1));
    store_done(s);
    if (rc != STORE_ROW)
        return rc < 0 ? rc : px_error_set(e, PX_EINTERNAL, "credit_stan counter missing");
    px_time_format_utc(px_now_ms(), "%m%d%H%M%S", j->time, sizeof j->time);
    rc = store_prepare(pp->st,
                       "UPDATE phonepay_payment SET state = 'crediting', credit_stan = $2, "
                       "credit_time = $3, credit_tries = credit_tries + 1, updated_ms = $4 "
                       "WHERE reference = $1 AND state = 'approved'",
                       &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, j->ref);
    store_bind_text(s, 2, j->stan);
    store_bind_text(s, 3, j->time);
    store_bind_int64(s, 4, px_now_ms());
    rc = store_step(s, e);
    store_done(s);
    return rc < 0 ? rc : PX_OK;
}

/* The 0220: 2 payee card, 3 210000, 4, 7, 11, 37 the debit's RRN, 48 payer mobile, 49. */
static int build_credit(phonepay *pp, const credit_job *j, const char *pan, uint8_t *buf,
                        size_t cap, size_t *len, px_error *e)
{
    iso8583_msg m;
    char amount[13];
    int rc;
    snprintf(amount, sizeof amount, "%012lld", (long long)j->amount_minor);
    iso8583_msg_init(&m, &iso8583_1987_ascii);
    rc = iso8583_set_mti(&m, "0220", e);
    if (rc == PX_OK)
        rc = iso8583_set(&m, 2, pan, e);
    if (rc == PX_OK)
        rc = iso8583_set(&m, 3, "210000", e);
    if (rc == PX_OK)
        rc = iso8583_set(&m, 4, amount, e);
    if (rc == PX_OK)
        rc = iso8583_set(&m, 7, j->time, e);
    if (rc == PX_OK)
        rc = iso8583_set(&m, 11, j->stan, e);
    if (rc == PX_OK)
        rc = iso8583_set(&m, 37, j->rrn, e);
    if (rc == PX_OK)
        rc = iso8583_set(&m, 48, j->payer, e);
    if (rc == PX_OK)
        rc = iso8583_set(&m, 49, pp->cfg.currency, e);
    if (rc == PX_OK)
        rc = iso8583_pack(&iso8583_1987_ascii, &m, buf, cap, len, e);
    iso8583_msg_cleanse(&m);
    return rc;
}

/* Send the 0220 and wait for the 0230 with our STAN; j->rc gets field 39. A frame that
 * answers something else is skipped (a late answer to an earlier run). */
static int exchange(phonepay *pp, net_client *cl, credit_job *j, const char *pan, px_error *e)
{
    uint8_t buf[PX_ISO_MSG_MAX];
    size_t len = 0;
    int64_t deadline = px_mono_ms() + pp->cfg.credit_timeout_ms;
    int rc = build_credit(pp, j, pan, buf, sizeof buf, &len, e);
    if (rc == PX_OK)
        rc = net_client_send_frame(cl, buf, len, e);
    OPENSSL_cleanse(buf, sizeof buf);
    while (rc == PX_OK && j->rc[0] == 0) {
        iso8583_msg m;
        const uint8_t *p;
        size_t n;
        int64_t left = deadline - px_mono_ms();
        if (left <= 0)
            return px_error_set(e, PX_ETIMEOUT, "no 0230 within %lld ms",
                                (long long)pp->cfg.credit_timeout_ms);
        rc = net_client_recv_frame(cl, buf, sizeof buf, &len, left, e);
        if (rc != PX_OK || iso8583_unpack(&iso8583_1987_ascii, buf, len, &m, NULL) != PX_OK)
            continue;
        if (strcmp(m.mti, "0230") == 0 && iso8583_get(&m, 11, &p, &n) == PX_OK &&
            strcmp((const char *)p, j->stan) == 0 && iso8583_get(&m, 39, &p, &n) == PX_OK && n == 2)
            memcpy(j->rc, p, 3);
        iso8583_msg_cleanse(&m);
    }
    return rc;
}

/* The payee's message ([0055], claim 5): the amount, the card, and the payer's number. */
static int notify_payee(phonepay *pp, const credit_job *j, px_error *e)
{
    char text[PX_PHONEPAY_SMS_MAX], amount[32], key[64];
    size_t ml = strlen(j->masked);
    phonepay_amount_format(j->amount_minor, amount, sizeof amount);
    snprintf(text, sizeof text, "%s您收到手机号%s的付款%s元，已转入尾号%s的银行卡，参考号%s。",
             pp->cfg.sms_signature, j->payer, amount, ml >= 4 ? j->masked + ml - 4 : j->masked,
             j->rrn);
    snprintf(key, sizeof key, "credit:%s", j->ref);
    return phonepay_notify(pp, key, PHONEPAY_EV_CREDIT, j->payee, text, px_now_ms(), e);
}

/* Record the provider's answer to the credit ([0055]): on 00 the payment is credited, the
 * payee's notification queued and the credit posted in the switch's ledger, all in this
 * one transaction and only by the run that moved it from crediting (so never twice); a
 * refusal puts it back to approved, posting nothing. */
static int finish_txn(phonepay *pp, void *ud, px_error *e)
{
    credit_job *j = ud;
    int ok = strcmp(j->rc, "00") == 0, posted = 0;
    int64_t changed = 0;
    store_stmt *s;
    int rc = store_prepare(pp->st,
                           "UPDATE phonepay_payment SET state = $2, credit_rc = $3, "
                           "updated_ms = $4 WHERE reference = $1 AND state = 'crediting'",
                           &s, e);
    if (rc != PX_OK)
        return rc;
    store_bind_text(s, 1, j->ref);
    store_bind_text(s, 2, ok ? "credited" : "approved");
    store_bind_text(s, 3, j->rc);
    store_bind_int64(s, 4, px_now_ms());
    rc = store_step(s, e);
    if (rc >= 0)
        changed = store_changes(s);
    store_done(s);
    if (rc >= 0 && ok)
        rc = notify_payee(pp, j, e);
    if (rc >= 0 && ok && changed == 1)
        rc = switch_ledger_post_payee_credit(pp->st, j->ref, j->rrn, j->amount_minor, &posted, e);
    if (rc >= 0 && ok && changed == 1 && !posted)
        px_info(PHONEPAY_MOD,
                "payment %s credited: its debit is not in the ledger, nothing "
                "posted",
                j->ref);
    return rc < 0 ? rc : PX_OK;
}

/* Connect to the provider (TLS when provider_tls_ca is set). */
static int provider_connect(phonepay *pp, net_client **cl, SSL_CTX **tls, px_error *e)
{
    char host[256];
    int port, rc;
    if (!pp->cfg.provider_enabled)
        return px_error_set(e, PX_ECONFIG,
                            "[phonepay] provider_connect is not set: payee "
                            "credits cannot be sent");
    if (px_parse_hostport(pp->cfg.provider.connect, host, sizeof host, &port) != PX_OK)
        return px_error_set(e, PX_ECONFIG, "[phonepay] provider_connect: bad host:port");
    if (net_tls_is_enabled(&pp->cfg.provider.tls) &&
        (rc = net_tls_client_ctx(&pp->cfg.provider.tls, tls, e)) != PX_OK)
        return rc;
    return net_client_connect(host[0] ? host : "127.0.0.1", port, *tls,
                              pp->cfg.provider.connect_timeout_ms, cl, e);
}

/* One credit: claim, open the card, exchange, record. PX_OK unless the store failed. */
static int credit_one(phonepay *pp, net_client *cl, credit_job *j, FILE *out,
                      phonepay_recon_report *rep, px_error *e)
{
    char pan[PHONEPAY_PAN_MAX];
    px_error why = {0};
    int rc = phonepay_txn(pp, claim_txn, j, e);
    if (rc != PX_OK || j->skip) {
        rep->credited_before += rc == PX_OK && strcmp(j->state, "credited") == 0;
        return rc;
    }
    rc = phonepay_card_open(pp, j->payee, j->enc, j->enclen, j->mac, j->maclen, pan, &why);
    if (rc == PX_OK)
        rc = cl != NULL ? exchange(pp, cl, j, pan, &why) : PX_ENET;
    OPENSSL_cleanse(pan, sizeof pan);
    OPENSSL_cleanse(j->enc, sizeof j->enc);
    if (j->rc[0] != 0 && (rc = phonepay_txn(pp, finish_txn, j, e)) != PX_OK)
        return rc;
    if (strcmp(j->rc, "00") == 0)
        rep->credited_now++;
    else
        rep->credit_failed++;
    if (out != NULL)
        fprintf(out, "%-16s rrn %s debit    card %s %s\n",
                strcmp(j->rc, "00") == 0 ? "credited" : "credit_failed", j->rrn, j->masked,
                j->rc[0] ? j->rc : (cl == NULL ? "provider unreachable" : px_error_text(&why)));
    return PX_OK;
}

int phonepay_credit_all(phonepay *pp, const char (*refs)[PHONEPAY_REF_LEN + 1], size_t n, FILE *out,
                        phonepay_recon_report *rep, px_error *e)
{
    net_client *cl = NULL;
    SSL_CTX *tls = NULL;
    px_error why = {0};
    int rc = PX_OK;
    if (n > 0 && provider_connect(pp, &cl, &tls, &why) != PX_OK)
        px_errorlog(PHONEPAY_MOD, "recon: provider: %s (credits wait for the next run)",
                    px_error_text(&why));
    for (size_t i = 0; rc == PX_OK && i < n; i++) {
        credit_job j;
        memset(&j, 0, sizeof j);
        j.ref = refs[i];
        rc = credit_one(pp, cl, &j, out, rep, e);
        if (rc == PX_OK && cl != NULL && j.rc[0] == 0) { /* the link is in doubt: reconnect */
            net_client_close(cl);
            cl = NULL;
            (void)provider_connect(pp, &cl, &tls, &why);
        }
    }
    net_client_close(cl);
    net_tls_ctx_free(tls);
    return rc;
}
