/*
 * state.c: the terminal's state file (docs/pos.md, "The state file"): one line per fact,
 * written whole through devfile_write_atomic, read back by one strict parser.
 *
 *   possum-pos-state 1
 *   stan 000123
 *   batch 000001
 *   signed-on 1
 *   update-waiting 0
 *   proc-req 0
 *   reversal KIND REASON PROC AMOUNT STAN ENTRY F60 P|T SEALED SENDS      (when pending)
 *   txn KIND STAN RRN AUTH PROC AMOUNT PAN-MASKED SEALED VOIDED           (one per entry)
 *   end
 *
 * "-" stands for an empty value. PAN and track appear only sealed by the PIN pad.
 */
#include "device/pinpad/devfile.h"
#include "device/pos/pos_int.h"
#include "lib/hex.h"
#include "lib/str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_MAGIC "possum-pos-state 1"
#define TOK_MAX 12

void pos_state_fresh(pos_state *st)
{
    memset(st, 0, sizeof *st);
    st->batch = 1;
}

uint32_t pos_stan_next(pos_state *st)
{
    st->stan = st->stan >= POS_STAN_MAX ? 1 : st->stan + 1;
    return st->stan;
}

static const char *dash(const char *s)
{
    return s[0] != 0 ? s : "-";
}

int pos_state_encode(const pos_state *st, px_buf *out)
{
    const pos_reversal *r = &st->rev;
    int rc = px_buf_printf(out,
                           "%s\nstan %06u\nbatch %06u\nsigned-on %d\nupdate-waiting %d\n"
                           "proc-req %d\n",
                           STATE_MAGIC, st->stan, st->batch, st->signed_on, st->update_waiting,
                           st->last_proc_req);
    if (rc == PX_OK && r->pending)
        rc = px_buf_printf(out, "reversal %c %s %s %s %s %s %s %c %s %d\n", r->kind, r->reason,
                           r->proc, dash(r->amount), r->stan, r->entry, r->f60,
                           r->is_track ? 'T' : 'P', dash(r->sealed), r->sends);
    for (size_t i = 0; rc == PX_OK && i < st->ntxn; i++) {
        const pos_txn *x = &st->txn[i];
        rc = px_buf_printf(out, "txn %c %s %s %s %s %012lld %s %s %d\n", x->kind, x->stan,
                           dash(x->rrn), dash(x->auth), x->proc, (long long)x->amount_minor,
                           dash(x->pan_masked), dash(x->sealed_pan), x->voided);
    }
    if (rc == PX_OK)
        rc = px_buf_append_str(out, "end\n");
    return rc;
}

/* ---- parsing ---------------------------------------------------------------------- */

typedef struct line_ctx {
    const char *tok[TOK_MAX];
    size_t ntok;
    int lineno;
    px_error *e;
} line_ctx;

static int bad(line_ctx *l, const char *what)
{
    return px_error_set(l->e, PX_EFORMAT, "state line %d: bad %s", l->lineno, what);
}

/* Copy token i into out when it is n digits (n > 0), or 1..cap-1 characters of the class. */
static int tok_digits(line_ctx *l, size_t i, size_t n, char *out, size_t cap, const char *what)
{
    const char *s = l->tok[i];
    size_t len = strlen(s);
    if (strcmp(s, "-") == 0 && n == 0) {
        out[0] = 0;
        return PX_OK;
    }
    if ((n > 0 && len != n) || len == 0 || len >= cap || !px_is_digits(s, len))
        return bad(l, what);
    memcpy(out, s, len + 1);
    return PX_OK;
}

static int tok_text(line_ctx *l, size_t i, const char *chars, char *out, size_t cap,
                    const char *what)
{
    const char *s = l->tok[i];
    size_t len = strlen(s);
    if (strcmp(s, "-") == 0) {
        out[0] = 0;
        return PX_OK;
    }
    if (len >= cap || strspn(s, chars) != len)
        return bad(l, what);
    memcpy(out, s, len + 1);
    return PX_OK;
}

static int tok_num(line_ctx *l, size_t i, int64_t max, int64_t *out, const char *what)
{
    return px_parse_i64(l->tok[i], 0, max, out) == PX_OK ? PX_OK : bad(l, what);
}

static int tok_kind(line_ctx *l, size_t i, char *out)
{
    const char *s = l->tok[i];
    if (strlen(s) != 1 || strchr("SMV", s[0]) == NULL)
        return bad(l, "kind");
    *out = s[0];
    return PX_OK;
}

#define HEXC "0123456789ABCDEF"
#define DIGITS "0123456789"
#define ALNUM "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

static int parse_reversal(line_ctx *l, pos_reversal *r)
{
    int64_t sends = 0;
    int rc;
    if (l->ntok != 11)
        return bad(l, "reversal (11 fields)");
    rc = tok_kind(l, 1, &r->kind);
    if (rc == PX_OK && strcmp(l->tok[2], "98") != 0 && strcmp(l->tok[2], "A0") != 0 &&
        strcmp(l->tok[2], "06") != 0)
        rc = bad(l, "reversal reason");
    if (rc == PX_OK)
        memcpy(r->reason, l->tok[2], 3);
    if (rc == PX_OK)
        rc = tok_digits(l, 3, 6, r->proc, sizeof r->proc, "processing code");
    if (rc == PX_OK)
        rc = tok_digits(l, 4, 0, r->amount, sizeof r->amount, "amount");
    if (rc == PX_OK)
        rc = tok_digits(l, 5, 6, r->stan, sizeof r->stan, "STAN");
    if (rc == PX_OK)
        rc = tok_digits(l, 6, 3, r->entry, sizeof r->entry, "entry mode");
    if (rc == PX_OK)
        rc = tok_digits(l, 7, 11, r->f60, sizeof r->f60, "field 60");
    if (rc == PX_OK && strcmp(l->tok[8], "T") != 0 && strcmp(l->tok[8], "P") != 0)
        rc = bad(l, "card data kind");
    r->is_track = l->tok[8][0] == 'T';
    if (rc == PX_OK)
        rc = tok_text(l, 9, HEXC, r->sealed, sizeof r->sealed, "sealed card");
    if (rc == PX_OK && (r->sealed[0] == 0 || strlen(r->sealed) % 2 != 0))
        rc = bad(l, "sealed card");
    if (rc == PX_OK)
        rc = tok_num(l, 10, 1000000000, &sends, "sends");
    r->sends = (int)sends;
    r->pending = rc == PX_OK;
    return rc;
}

static int parse_txn(line_ctx *l, pos_txn *x)
{
    int64_t v = 0;
    int rc;
    if (l->ntok != 10)
        return bad(l, "txn (10 fields)");
    rc = tok_kind(l, 1, &x->kind);
    if (rc == PX_OK)
        rc = tok_digits(l, 2, 6, x->stan, sizeof x->stan, "STAN");
    if (rc == PX_OK)
        rc = tok_text(l, 3, ALNUM, x->rrn, sizeof x->rrn, "RRN");
    if (rc == PX_OK)
        rc = tok_text(l, 4, ALNUM, x->auth, sizeof x->auth, "auth code");
    if (rc == PX_OK)
        rc = tok_digits(l, 5, 6, x->proc, sizeof x->proc, "processing code");
    if (rc == PX_OK)
        rc = tok_num(l, 6, POS_AMOUNT_MAX, &x->amount_minor, "amount");
    if (rc == PX_OK)
        rc = tok_text(l, 7, DIGITS "*", x->pan_masked, sizeof x->pan_masked, "masked PAN");
    if (rc == PX_OK)
        rc = tok_text(l, 8, HEXC, x->sealed_pan, sizeof x->sealed_pan, "sealed PAN");
    if (rc == PX_OK)
        rc = tok_num(l, 9, 1, &v, "voided flag");
    x->voided = (int)v;
    return rc;
}

/* One "key value..." line into st. */
static int parse_line(line_ctx *l, pos_state *st, int *ended)
{
    const char *k = l->tok[0];
    int64_t v = 0;
    if (strcmp(k, "end") == 0 && l->ntok == 1) {
        *ended = 1;
        return PX_OK;
    }
    if (strcmp(k, "reversal") == 0)
        return st->rev.pending ? bad(l, "second reversal") : parse_reversal(l, &st->rev);
    if (strcmp(k, "txn") == 0) {
        if (st->ntxn >= PX_POS_BATCH_MAX)
            return bad(l, "batch (too many transactions)");
        return parse_txn(l, &st->txn[st->ntxn++]);
    }
    if (l->ntok != 2)
        return bad(l, k);
    if (strcmp(k, "stan") == 0 && tok_num(l, 1, POS_STAN_MAX, &v, "stan") == PX_OK)
        st->stan = (uint32_t)v;
    else if (strcmp(k, "batch") == 0 && tok_num(l, 1, 999999, &v, "batch") == PX_OK)
        st->batch = (uint32_t)v;
    else if (strcmp(k, "signed-on") == 0 && tok_num(l, 1, 1, &v, k) == PX_OK)
        st->signed_on = (int)v;
    else if (strcmp(k, "update-waiting") == 0 && tok_num(l, 1, 1, &v, k) == PX_OK)
        st->update_waiting = (int)v;
    else if (strcmp(k, "proc-req") == 0 && tok_num(l, 1, 15, &v, k) == PX_OK)
        st->last_proc_req = (int)v;
    else
        return bad(l, k);
    return PX_OK;
}

int pos_state_decode(const char *text, size_t n, pos_state *st, px_error *e)
{
    char line[1024];
    line_ctx l = {.e = e};
    size_t pos = 0;
    int ended = 0, rc = PX_OK;
    pos_state_fresh(st);
    while (rc == PX_OK && pos < n && !ended) {
        const char *nl = memchr(text + pos, '\n', n - pos);
        size_t len = nl != NULL ? (size_t)(nl - (text + pos)) : n - pos;
        char *save = line;
        l.lineno++;
        if (nl == NULL || len >= sizeof line)
            return px_error_set(e, PX_EFORMAT, "state line %d: unterminated or too long", l.lineno);
        memcpy(line, text + pos, len);
        line[len] = 0;
        pos += len + 1;
        if (l.lineno == 1) {
            if (strcmp(line, STATE_MAGIC) != 0)
                return px_error_set(e, PX_EFORMAT, "not a possum terminal state file");
            continue;
        }
        for (l.ntok = 0; l.ntok < TOK_MAX && save != NULL;) {
            char *tok = strsep(&save, " ");
            if (tok[0] == 0)
                return bad(&l, "spacing");
            l.tok[l.ntok++] = tok;
        }
        if (save != NULL)
            return bad(&l, "line (too many fields)");
        rc = parse_line(&l, st, &ended);
    }
    if (rc == PX_OK && (!ended || pos != n))
        rc = px_error_set(e, PX_EFORMAT, "state file: %s",
                          ended ? "data after end" : "truncated (no end line)");
    return rc;
}

int pos_state_save(pos_terminal *t, px_error *e)
{
    px_buf b;
    int rc;
    px_buf_init(&b, PX_POS_STATE_FILE_MAX);
    rc = pos_state_encode(&t->st, &b);
    if (rc != PX_OK)
        rc = px_error_set(e, rc, "state: larger than %d bytes", PX_POS_STATE_FILE_MAX);
    else
        rc = devfile_write_atomic(t->state_path, b.data, b.len, 0600, e);
    px_buf_free(&b);
    return rc;
}

int pos_state_load(pos_terminal *t, px_error *e)
{
    px_buf b;
    pos_state *tmp = malloc(sizeof *tmp);
    int rc;
    if (tmp == NULL)
        return px_error_set(e, PX_ENOMEM, "state: out of memory");
    px_buf_init(&b, PX_POS_STATE_FILE_MAX);
    rc = devfile_read(t->state_path, &b, e);
    if (rc == PX_OK)
        rc = pos_state_decode((const char *)b.data, b.len, tmp, e);
    if (rc == PX_OK)
        memcpy(&t->st, tmp, sizeof *tmp);
    else if (rc == PX_EFORMAT)
        px_error_prefix(e, "%s: ", t->state_path);
    px_buf_free(&b);
    free(tmp);
    return rc;
}

/* The closed batch as the merchant's settlement record: masked PANs only, no sealed data. */
int pos_state_write_batch_file(pos_terminal *t, px_error *e)
{
    char path[PX_PATH_MAX + 32];
    px_buf b;
    int rc = PX_OK;
    snprintf(path, sizeof path, "%s/batch-%06u.txt", t->cfg.data_dir, t->st.batch);
    px_buf_init(&b, PX_POS_STATE_FILE_MAX);
    rc = px_buf_printf(&b, "terminal %s merchant %s batch %06u\n", t->cfg.tid, t->cfg.mid,
                       t->st.batch);
    for (size_t i = 0; rc == PX_OK && i < t->st.ntxn; i++) {
        const pos_txn *x = &t->st.txn[i];
        rc = px_buf_printf(&b, "%c stan %s rrn %s auth %s proc %s amount %012lld card %s%s\n",
                           x->kind, x->stan, dash(x->rrn), dash(x->auth), x->proc,
                           (long long)x->amount_minor, dash(x->pan_masked),
                           x->voided ? " voided" : "");
    }
    if (rc == PX_OK)
        rc = devfile_write_atomic(path, b.data, b.len, 0600, e);
    else
        rc = px_error_set(e, rc, "%s: too large", path);
    px_buf_free(&b);
    return rc;
}
