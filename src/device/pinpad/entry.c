/*
 * entry.c: PIN entry on the PIN pad's own keypad, here the controlling terminal: echo off,
 * a '*' per digit. The digits live only in a local buffer that is wiped before return; what
 * leaves is the encrypted PIN block.
 */
#include "device/pinpad/pinpad_int.h"
#include "crypto/pinblock.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

static void say(int fd, const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* Read digits until Enter into pin (cap >= CRYPTO_PIN_MAX + 1). 0 ok, -1 cancelled or
 * end of input, -2 a character that is not a digit (or too many digits). */
static int read_digits(int fd_in, int fd_out, int is_tty, char *pin, size_t cap)
{
    size_t n = 0;
    int bad = 0;
    for (;;) {
        char c;
        ssize_t r = read(fd_in, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || c == 27 || c == 3 || c == 4)
            return -1;
        if (c == '\n' || c == '\r')
            break;
        if ((c == 127 || c == 8) && n > 0) {
            n--;
            if (is_tty)
                say(fd_out, "\b \b");
            continue;
        }
        if (c < '0' || c > '9' || n + 1 >= cap) {
            bad = 1;
            continue;
        }
        pin[n++] = c;
        if (is_tty)
            say(fd_out, "*");
    }
    pin[n] = 0;
    return bad ? -2 : 0;
}

int pinpad_pin_entry(pinpad *p, int fd_in, int fd_out, const char *prompt, const char *pan,
                     uint8_t out[PINPAD_PINBLOCK_LEN], px_error *e)
{
    char pin[CRYPTO_PIN_MAX + 2];
    struct termios old, raw;
    int is_tty = isatty(fd_in) && tcgetattr(fd_in, &old) == 0;
    int got, rc;
    if (!pinpad_has_key(p, PINPAD_PIK))
        return px_error_set(e, PX_ESTATE, "PIN entry: no PIN key (sign on first)");
    if (prompt != NULL)
        say(fd_out, prompt);
    if (is_tty) {
        raw = old;
        raw.c_lflag &= (tcflag_t) ~(ECHO | ICANON | ISIG); /* Ctrl-C arrives as 3: cancel */
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        tcsetattr(fd_in, TCSAFLUSH, &raw);
    }
    got = read_digits(fd_in, fd_out, is_tty, pin, sizeof pin);
    if (is_tty) {
        tcsetattr(fd_in, TCSAFLUSH, &old);
        say(fd_out, "\n");
    }
    if (got == -1)
        rc = px_error_set(e, PX_EPERM, "PIN entry cancelled");
    else if (got == -2)
        rc = px_error_set(e, PX_EINVAL, "PIN: digits only, at most %d", CRYPTO_PIN_MAX);
    else if (pin[0] == 0)
        rc = px_error_set(e, PX_ENOTFOUND, "no PIN entered");
    else
        rc = pinpad_pin_block(p, pin, pan, out, e);
    OPENSSL_cleanse(pin, sizeof pin);
    return rc;
}
