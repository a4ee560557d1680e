/*
 * screen.c: the POS screen (screen.h). Everything is read byte by byte from one descriptor,
 * so the PIN pad's own entry (pinpad_pin_entry, echo off) can share it with the prompts;
 * the PIN itself is never seen here.
 */
#include "device/pos/screen.h"
#include "lib/mobile_cn.h"
#include "lib/str.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct screen {
    pos_terminal *t;
    int in, out;
    int eof;
} screen;

static void say(screen *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(screen *s, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    for (size_t off = 0, len = n < 0                    ? 0
                               : (size_t)n < sizeof buf ? (size_t)n
                                                        : sizeof buf - 1;
         off < len;) {
        ssize_t w = write(s->out, buf + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        off += (size_t)w;
    }
}

/* One line (without its newline) into buf. 0, or -1 at end of input. A line longer than
 * the buffer is read to its end and comes back empty. */
static int ask(screen *s, const char *prompt, char *buf, size_t cap)
{
    size_t n = 0;
    int over = 0;
    say(s, "%s", prompt);
    for (;;) {
        char c;
        ssize_t r = read(s->in, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            s->eof = 1;
            say(s, "\n");
            return -1;
        }
        if (c == '\n')
            break;
        if (c == '\r')
            continue;
        if (n + 1 < cap)
            buf[n++] = c;
        else
            over = 1;
    }
    buf[over ? 0 : n] = 0;
    return 0;
}

static void show(screen *s, const pos_result *r)
{
    char line[PX_POS_TEXT_MAX + 128];
    pos_result_format(r, line, sizeof line);
    say(s, "\n  %s\n", line);
    if (r->stan[0] != 0 && (r->outcome == POS_APPROVED || r->outcome == POS_DECLINED))
        say(s, "  STAN %s  batch %s%s%s\n", r->stan, r->batch, r->pan_masked[0] ? "  card " : "",
            r->pan_masked);
    if (r->outcome == POS_APPROVED && r->text[0] != 0 && strcmp(r->text, "approved") != 0)
        say(s, "  %s\n", r->text);
    if (r->update_waiting)
        say(s, "  NOTE: a program update waits at the TMS\n");
    if (r->resign_required)
        say(s, "  NOTE: the platform asks for a new sign-on (menu 1)\n");
    say(s, "\n");
}

/* A card typed or swiped ("PAN=YYMM..." is a swipe). 1 ok, 0 abandoned. */
static int ask_card(screen *s, pos_card *card)
{
    char in[PX_POS_INPUT_MAX], exp[16] = "";
    px_error e = {0};
    int rc;
    if (ask(s, "Card number, or swipe (track 2): ", in, sizeof in) != 0 || in[0] == 0)
        return 0;
    if (strchr(in, '=') == NULL && ask(s, "Expiry YYMM (Enter to skip): ", exp, sizeof exp) != 0)
        return 0;
    rc = pos_card_parse(strchr(in, '=') ? NULL : in, strchr(in, '=') ? in : NULL, exp, card, &e);
    OPENSSL_cleanse(in, sizeof in);
    if (rc != PX_OK)
        say(s, "  %s\n\n", px_error_text(&e));
    return rc == PX_OK;
}

/* The PIN on the PIN pad. 1 with a PIN block, 0 without a PIN, -1 cancelled. */
static int ask_pin(screen *s, const pos_card *card, uint8_t pb[PINPAD_PINBLOCK_LEN])
{
    px_error e = {0};
    int rc = pinpad_pin_entry(pos_pinpad(s->t), s->in, s->out,
                              "PIN on the PIN pad (Enter for none): ", card->pan, pb, &e);
    if (rc == PX_OK)
        return 1;
    if (rc == PX_ENOTFOUND)
        return 0;
    say(s, "  %s\n\n", px_error_text(&e));
    return -1;
}

static int ask_amount(screen *s, int64_t *minor)
{
    char in[32];
    if (ask(s, "Amount (CNY, e.g. 12.34): ", in, sizeof in) != 0 || in[0] == 0)
        return 0;
    if (pos_amount_parse(in, minor) != PX_OK || *minor < 1) {
        say(s, "  amount: yuan with up to two decimals, more than 0\n\n");
        return 0;
    }
    return 1;
}

static int do_purchase(screen *s, int is_purchase, px_error *e)
{
    pos_card card;
    pos_result r;
    uint8_t pb[PINPAD_PINBLOCK_LEN];
    int64_t amount = 0;
    int pin, rc = PX_OK;
    if ((is_purchase && !ask_amount(s, &amount)) || !ask_card(s, &card))
        return PX_OK;
    pin = ask_pin(s, &card, pb);
    if (pin >= 0) {
        say(s, "  ... talking to the platform\n");
        rc = is_purchase ? pos_purchase(s->t, &card, amount, pin ? pb : NULL, &r, e)
                         : pos_balance(s->t, &card, pin ? pb : NULL, &r, e);
        if (rc == PX_OK)
            show(s, &r);
    }
    OPENSSL_cleanse(&card, sizeof card);
    OPENSSL_cleanse(pb, sizeof pb);
    return rc;
}

static int do_void(screen *s, px_error *e)
{
    char stan[16], rrn[16];
    pos_result r;
    int rc;
    if (ask(s, "STAN of the purchase: ", stan, sizeof stan) != 0 ||
        ask(s, "RRN of the purchase: ", rrn, sizeof rrn) != 0)
        return PX_OK;
    rc = pos_void(s->t, rrn, stan, NULL, NULL, &r, e);
    if (rc == PX_OK)
        show(s, &r);
    return rc;
}

/* A mobile number, asked again until it passes the mainland rules (or is left empty). */
static int ask_mobile(screen *s, const char *prompt, char out[16])
{
    const char *why = NULL;
    while (ask(s, prompt, out, 16) == 0 && out[0] != 0) {
        if (px_mobile_cn_is_valid(out, out ? strlen(out) : 0, &why))
            return 1;
        say(s, "  not a valid mobile number: %s\n", why);
    }
    return 0;
}

static int do_phonepay(screen *s, px_error *e)
{
    char payee[16], payer[16], yn[8], amt[32];
    pos_card card;
    pos_result look, r;
    uint8_t pb[PINPAD_PINBLOCK_LEN];
    int64_t amount = 0;
    int pin, rc;
    if (!ask_mobile(s, "Payee's mobile number: ", payee) ||
        !ask_mobile(s, "Your mobile number: ", payer) || !ask_amount(s, &amount))
        return PX_OK;
    say(s, "  ... looking the payee up\n");
    rc = pos_phonepay_lookup(s->t, payee, payer, amount, &look, e);
    if (rc != PX_OK || look.outcome != POS_APPROVED) {
        if (rc == PX_OK)
            show(s, &look);
        return rc;
    }
    pos_amount_format(amount, amt, sizeof amt);
    say(s, "\n  Payee: %s\n  Amount: %s CNY\n", look.payee_name, amt);
    if (ask(s, "Pay this payee? [y/N] ", yn, sizeof yn) != 0 || (yn[0] != 'y' && yn[0] != 'Y')) {
        say(s, "  not confirmed: nothing was paid\n\n");
        return PX_OK;
    }
    if (!ask_card(s, &card))
        return PX_OK;
    pin = ask_pin(s, &card, pb);
    if (pin >= 0) {
        say(s, "  ... paying\n");
        rc = pos_phonepay_pay(s->t, payee, payer, look.lookup_ref, amount, &card, pin ? pb : NULL,
                              &r, e);
        if (rc == PX_OK)
            show(s, &r);
    }
    OPENSSL_cleanse(&card, sizeof card);
    return rc;
}

static void banner(screen *s)
{
    pos_status st;
    const pos_config *c = pos_get_config(s->t);
    pos_status_get(s->t, &st);
    say(s, "==== possum POS  terminal %s  merchant %s ====\n", c->tid, c->mid);
    say(s, "batch %06u  %s%s%s\n", st.batch, st.signed_on ? "signed on" : "NOT signed on",
        st.reversal_pending ? "  reversal pending" : "",
        st.update_waiting ? "  update waiting" : "");
    say(s, " 1 Sign on          2 Purchase         3 Balance\n"
           " 4 Void             5 Mobile-number payment\n"
           " 6 Settle           7 Sign off         8 Echo test\n"
           " 0 Exit\n");
}

/* One menu choice. 1 to go on, 0 to leave, <0 when the terminal failed. */
static int choose(screen *s, const char *c)
{
    pos_result r;
    px_error e = {0};
    int rc = PX_OK, done = 1;
    if (strcmp(c, "1") == 0)
        rc = pos_signon(s->t, 0, &r, &e);
    else if (strcmp(c, "6") == 0)
        rc = pos_settle(s->t, &r, &e);
    else if (strcmp(c, "7") == 0)
        rc = pos_signoff(s->t, &r, &e);
    else if (strcmp(c, "8") == 0)
        rc = pos_echo(s->t, &r, &e);
    else {
        done = 0;
        if (strcmp(c, "2") == 0)
            rc = do_purchase(s, 1, &e);
        else if (strcmp(c, "3") == 0)
            rc = do_purchase(s, 0, &e);
        else if (strcmp(c, "4") == 0)
            rc = do_void(s, &e);
        else if (strcmp(c, "5") == 0)
            rc = do_phonepay(s, &e);
        else if (strcmp(c, "0") == 0 || strcmp(c, "q") == 0)
            return 0;
        else if (c[0] != 0)
            say(s, "  choose 0 to 8\n\n");
    }
    if (rc != PX_OK) {
        say(s, "  TERMINAL ERROR: %s\n", px_error_text(&e));
        return rc;
    }
    if (done)
        show(s, &r);
    return 1;
}

int pos_screen_run(pos_terminal *t, int fd_in, int fd_out)
{
    screen s = {t, fd_in, fd_out, 0};
    char choice[PX_POS_INPUT_MAX];
    int rc = 1;
    while (rc == 1 && !s.eof) {
        banner(&s);
        if (ask(&s, "Choose: ", choice, sizeof choice) != 0)
            break;
        rc = choose(&s, choice);
    }
    say(&s, "Goodbye.\n");
    return rc < 0 ? rc : 0;
}
