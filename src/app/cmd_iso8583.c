/* cmd_iso8583.c: `possum iso8583 dump HEX`: a packed message, field by field, for a human. */
#include "app/cli.h"
#include "iso8583/iso8583.h"
#include "lib/buf.h"
#include "lib/hex.h"

#include <stdio.h>
#include <string.h>

const char cmd_iso8583_summary[] = "ISO 8583 tools: dump a packed message field by field";

#define HEX_TEXT_MAX (4 * PX_ISO_MSG_MAX) /* hex digits plus room for spaces and newlines */

/* Read HEX from the argument, or from stdin when it is "-"; keeps hex digits only after
 * dropping white space and ':' separators. */
static int read_hex(const char *arg, char *hex, size_t hexsz, size_t *n)
{
    char text[HEX_TEXT_MAX + 1];
    size_t len = 0, k = 0;
    if (strcmp(arg, "-") == 0) {
        len = fread(text, 1, sizeof text - 1, stdin);
        if (len == sizeof text - 1 && fgetc(stdin) != EOF)
            return cli_usage_error("HEX: more than %d characters on stdin", HEX_TEXT_MAX);
    } else {
        len = strlen(arg);
        if (len > HEX_TEXT_MAX)
            return cli_usage_error("HEX: more than %d characters", HEX_TEXT_MAX);
        memcpy(text, arg, len);
    }
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ':')
            continue;
        if (k + 1 >= hexsz)
            return cli_usage_error("HEX: longer than %d bytes", PX_ISO_MSG_MAX);
        hex[k++] = c;
    }
    hex[k] = 0;
    *n = k;
    return CLI_OK;
}

/* Decide whether bytes start with the dialect's frame length: --length demands it,
 * --no-length forbids it, and otherwise it is stripped when it equals what follows. */
static int strip_frame(const iso8583_dialect *d, const cli_opt *opts, const uint8_t *buf,
                       size_t *off, size_t len)
{
    size_t k = d->frame_len_bytes, said = 0;
    *off = 0;
    if (k == 0 || cli_has(opts, "no-length"))
        return CLI_OK;
    for (size_t i = 0; i < k && i < len; i++)
        said = said << 8 | buf[i];
    if (len >= k && said == len - k) {
        *off = k;
        printf("length   %zu (0x%0*zX)\n", said, (int)(2 * k), said);
        return CLI_OK;
    }
    if (cli_has(opts, "length"))
        return cli_fail("iso8583: frame length says %zu bytes, %zu follow", said,
                        len >= k ? len - k : 0);
    return CLI_OK;
}

static int dump_message(const iso8583_dialect *d, const uint8_t *buf, size_t len)
{
    static iso8583_msg m; /* ~9 KB: kept off the stack */
    px_error e = {0};
    px_buf out;
    int rc = iso8583_unpack(d, buf, len, &m, &e), drc = PX_OK;
    px_buf_init(&out, PX_ISO_DUMP_MAX);
    if (rc == PX_OK || m.mti_valid) /* on failure: what was read before the error */
        drc = iso8583_dump(&m, &out);
    if (rc != PX_OK && m.mti_valid && drc == PX_OK)
        drc = px_buf_append_str(&out, "(incomplete: unpacking stopped at the error below)\n");
    fputs(px_buf_str(&out), stdout);
    fflush(stdout);
    px_buf_free(&out);
    iso8583_msg_cleanse(&m);
    if (rc != PX_OK)
        return cli_fail("iso8583: %s", px_error_text(&e));
    if (drc != PX_OK)
        return cli_fail("iso8583: dump: %s", px_strerror(drc));
    return CLI_OK;
}

static int cmd_dump(int argc, char **argv)
{
    cli_opt opts[] = {
        {"dialect", 0, "unionpay (default) or iso1987", NULL},
        {"length", 1, "HEX starts with the 2-byte frame length (default: detected)", NULL},
        {"no-length", 1, "HEX has no frame length", NULL},
        {NULL, 0, NULL, NULL},
    };
    static char hex[2 * PX_ISO_MSG_MAX + 1];
    static uint8_t buf[PX_ISO_MSG_MAX];
    const char *pos[1];
    const char *name;
    const iso8583_dialect *d;
    size_t npos = 0, nhex = 0, len = 0, off = 0;
    int rc = cli_parse(argc, argv, 1, opts, pos, 1, &npos,
                       "possum iso8583 dump [--dialect NAME] [--length|--no-length] HEX|-");
    if (rc != CLI_OK)
        return rc < 0 ? CLI_OK : rc;
    if (npos != 1)
        return cli_usage_error("iso8583 dump: needs HEX (or - to read it from stdin)");
    if (cli_has(opts, "length") && cli_has(opts, "no-length"))
        return cli_usage_error("iso8583 dump: --length and --no-length exclude each other");
    name = cli_get(opts, "dialect") ? cli_get(opts, "dialect") : "unionpay";
    if ((d = iso8583_dialect_find(name)) == NULL)
        return cli_usage_error("iso8583 dump: unknown dialect '%s' (unionpay, iso1987)", name);
    if ((rc = read_hex(pos[0], hex, sizeof hex, &nhex)) != CLI_OK)
        return rc;
    if (px_hex_decode_n(hex, nhex, buf, sizeof buf, &len) != PX_OK)
        return cli_usage_error("HEX: not an even number of hex digits");
    if ((rc = strip_frame(d, opts, buf, &off, len)) != CLI_OK)
        return rc;
    return dump_message(d, buf + off, len - off);
}

static const cli_command iso8583_commands[] = {
    {"dump", cmd_dump, "print a packed message field by field (PAN masked, secrets hidden)"},
    {NULL, NULL, NULL},
};

int cmd_iso8583(int argc, char **argv)
{
    return cli_dispatch("possum iso8583", iso8583_commands, argc, argv);
}
