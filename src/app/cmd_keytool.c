/*
 * cmd_keytool.c: `possum keytool`, a clear-key calculator for developers and tests
 * (docs/crypto.md). Every subcommand prints bare upper-case hex (or, for tr31 wrap, the
 * key block) on stdout; on bad input it prints one line naming the argument to stderr and
 * exits 1, writing nothing to stdout; a missing option or unknown subcommand exits 2.
 * Clear keys on a command line are for test keys only.
 */
#include "app/cli.h"
#include "crypto/crypto.h"
#include "crypto/dukpt.h"
#include "crypto/mac.h"
#include "crypto/pinblock.h"
#include "crypto/tr31.h"
#include "lib/hex.h"
#include "lib/limits.h"
#include "lib/str.h"

#include <stdio.h>
#include <string.h>

int cmd_keytool(int argc, char **argv);
extern const char cmd_keytool_summary[];

const char cmd_keytool_summary[] =
    "clear-key calculator: kcv, pinblock, mac, dukpt, tr31, encrypt, decrypt, derive";

/* Decode the hex value of --opt into out (at most cap bytes); exit-code style result. */
static int hex_arg(const char *opt, const char *v, uint8_t *out, size_t cap, size_t *n)
{
    size_t len = strlen(v);
    if (len % 2 != 0)
        return cli_fail("--%s: odd-length hex (%zu digits)", opt, len);
    if (!px_hex_is_valid(v, len))
        return cli_fail("--%s: not hexadecimal", opt);
    if (len / 2 > cap)
        return cli_fail("--%s: too long (at most %zu bytes)", opt, cap);
    px_hex_decode_n(v, len, out, cap, n);
    return CLI_OK;
}

/* Print bytes as upper-case hex and a newline. */
static int print_hex(const uint8_t *b, size_t n)
{
    char buf[2 * PX_KEYTOOL_DATA_MAX + 1];
    px_hex_encode(b, n, buf);
    puts(buf);
    crypto_cleanse(buf, sizeof buf);
    return CLI_OK;
}

/* Parse options; 1 means --help was printed (exit 0), other non-zero is an exit code. */
static int parse(int argc, char **argv, cli_opt *opts, const char *synopsis, int *done)
{
    int rc = cli_parse(argc, argv, 1, opts, NULL, 0, NULL, synopsis);
    *done = rc != CLI_OK;
    return rc == -1 ? CLI_OK : rc;
}

/* The required options (NULL-terminated names) are all present, or a usage error. */
static int need(const cli_opt *opts, const char *cmd, const char *const *names)
{
    for (size_t i = 0; names[i] != NULL; i++)
        if (!cli_has(opts, names[i]))
            return cli_usage_error("keytool %s: --%s is required (see --help)", cmd, names[i]);
    return CLI_OK;
}

/* A library error; its leading "field:" becomes "--field:" when that is one of the options. */
static int lib_fail(const cli_opt *opts, const px_error *e)
{
    const char *msg = px_error_text(e), *colon = strchr(msg, ':');
    for (size_t i = 0; colon != NULL && opts[i].name != NULL; i++)
        if (strlen(opts[i].name) == (size_t)(colon - msg) &&
            strncmp(msg, opts[i].name, (size_t)(colon - msg)) == 0)
            return cli_fail("--%s", msg);
    return cli_fail("%s", msg);
}

/* ---- kcv ---- */

static int kt_kcv(int argc, char **argv)
{
    cli_opt o[] = {{"key", 0, "key in hex (TDES 16/24 bytes; AES with --aes or 32 bytes)", 0},
                   {"aes", 1, "AES key: 5-byte CMAC check value instead of 3-byte TDES", 0},
                   {0, 0, 0, 0}};
    static const char *const req[] = {"key", NULL};
    uint8_t key[CRYPTO_KEY_MAX], kcv[CRYPTO_KCV_MAX];
    size_t kl = 0, n = 0;
    px_error e = {0};
    int done, rc = parse(argc, argv, o, "possum keytool kcv --key HEX [--aes]", &done);
    if (done || (rc = need(o, "kcv", req)) != CLI_OK ||
        (rc = hex_arg("key", cli_get(o, "key"), key, sizeof key, &kl)) != CLI_OK)
        return rc;
    crypto_alg alg = cli_has(o, "aes") || kl == 32 ? CRYPTO_AES : CRYPTO_TDES;
    if (crypto_kcv(alg, key, kl, kcv, sizeof kcv, &n, &e) != PX_OK)
        rc = lib_fail(o, &e);
    else
        rc = print_hex(kcv, n);
    crypto_cleanse(key, sizeof key);
    return rc;
}

/* ---- pinblock ---- */

static int kt_pinblock(int argc, char **argv)
{
    cli_opt o[] = {{"format", 0, "ISO 9564-1 format: 0, 1, 3 or 4", 0},
                   {"pin", 0, "PIN, 4 to 12 digits", 0},
                   {"pan", 0, "PAN, 12 to 19 digits (not used by format 1)", 0},
                   {"key", 0, "format 4 only: AES key; prints the enciphered block", 0},
                   {0, 0, 0, 0}};
    static const char *const req[] = {"format", "pin", NULL};
    uint8_t key[CRYPTO_KEY_MAX], blk[CRYPTO_PINBLOCK_MAX];
    size_t kl = 0, n = 0;
    int64_t fmt = 0;
    px_error e = {0};
    int done, rc = parse(argc, argv, o,
                         "possum keytool pinblock --format N --pin DIGITS --pan DIGITS [--key HEX]",
                         &done);
    if (done || (rc = need(o, "pinblock", req)) != CLI_OK)
        return rc;
    if (px_parse_i64(cli_get(o, "format"), 0, 4, &fmt) != PX_OK || fmt == 2)
        return cli_fail("--format: must be 0, 1, 3 or 4");
    if (fmt != 1 && !cli_has(o, "pan"))
        return cli_usage_error("keytool pinblock: --pan is required for format %d", (int)fmt);
    if (cli_has(o, "key") && fmt != 4)
        return cli_usage_error("keytool pinblock: --key is only for format 4");
    if (cli_has(o, "key") &&
        (rc = hex_arg("key", cli_get(o, "key"), key, sizeof key, &kl)) != CLI_OK)
        return rc;
    if (cli_has(o, "key")) {
        n = 16;
        rc = crypto_pinblock4_encrypt(key, kl, cli_get(o, "pin"), cli_get(o, "pan"), blk, &e);
    } else {
        rc = crypto_pinblock_encode((crypto_pin_format)fmt, cli_get(o, "pin"), cli_get(o, "pan"),
                                    blk, sizeof blk, &n, &e);
    }
    rc = rc == PX_OK ? print_hex(blk, n) : lib_fail(o, &e);
    crypto_cleanse(key, sizeof key);
    crypto_cleanse(blk, sizeof blk);
    return rc;
}

/* ---- mac ---- */

static int kt_mac(int argc, char **argv)
{
    cli_opt o[] = {
        {"alg", 0, "x919 | iso9797-1 | pboc | cup-ecb | cmac (also aes-cmac, tdes-cmac)", 0},
        {"key", 0, "MAC key in hex", 0},
        {"data", 0, "message in hex", 0},
        {"aes", 1, "with --alg cmac: AES-CMAC (default TDES for 16/24-byte keys)", 0},
        {0, 0, 0, 0}};
    static const char *const req[] = {"alg", "key", "data", NULL};
    static uint8_t data[PX_KEYTOOL_DATA_MAX];
    uint8_t key[CRYPTO_KEY_MAX], mac[CRYPTO_MAC_MAX];
    size_t kl = 0, dl = 0, ml = 0;
    crypto_mac_alg alg;
    px_error e = {0};
    int done, rc = parse(argc, argv, o, "possum keytool mac --alg ALG --key HEX --data HEX [--aes]",
                         &done);
    if (done || (rc = need(o, "mac", req)) != CLI_OK)
        return rc;
    const char *name = cli_get(o, "alg");
    if (strcmp(name, "cmac") != 0 && crypto_mac_alg_from_name(name, &alg) != PX_OK)
        return cli_fail("--alg: unknown algorithm '%s' (x919, iso9797-1, pboc, cup-ecb, cmac)",
                        name);
    if ((rc = hex_arg("key", cli_get(o, "key"), key, sizeof key, &kl)) != CLI_OK ||
        (rc = hex_arg("data", cli_get(o, "data"), data, sizeof data, &dl)) != CLI_OK)
        return rc;
    if (strcmp(name, "cmac") == 0)
        alg = cli_has(o, "aes") || kl == 32 ? CRYPTO_MAC_AES_CMAC : CRYPTO_MAC_TDES_CMAC;
    rc = crypto_mac(alg, key, kl, data, dl, mac, sizeof mac, &ml, &e) == PX_OK ? print_hex(mac, ml)
                                                                               : lib_fail(o, &e);
    crypto_cleanse(key, sizeof key);
    return rc;
}

/* ---- dukpt ---- */

/* TDES DUKPT: --bdk 16 bytes, --ksn 10 bytes. */
static int dukpt_tdes(const cli_opt *o, const uint8_t *bdk, size_t bl, const uint8_t *ksn,
                      size_t sl)
{
    static const char *const names[] = {"pin", "mac", "mac-resp", "data", "data-resp"};
    crypto_dukpt_variant v = CRYPTO_DUKPT_NONE;
    uint8_t out[16];
    px_error e = {0};
    int rc;
    if (bl != 16)
        return cli_fail("--bdk: TDES DUKPT needs a 16-byte BDK, got %zu", bl);
    if (sl != CRYPTO_DUKPT_KSN_LEN)
        return cli_fail("--ksn: TDES DUKPT needs a 10-byte KSN, got %zu", sl);
    const char *var = cli_get(o, "variant");
    for (size_t i = 0; var != NULL && i < 5; i++)
        if (strcmp(var, names[i]) == 0)
            v = (crypto_dukpt_variant)(i + 1);
    if (var != NULL && v == CRYPTO_DUKPT_NONE)
        return cli_fail("--variant: unknown variant '%s' (pin, mac, mac-resp, data, data-resp)",
                        var);
    if (cli_has(o, "ipek"))
        rc = crypto_dukpt_derive_ipek(bdk, ksn, out, &e);
    else
        rc = crypto_dukpt_host_key(bdk, ksn, v, out, &e);
    rc = rc == PX_OK ? print_hex(out, 16) : lib_fail(o, &e);
    crypto_cleanse(out, sizeof out);
    return rc;
}

/* Working key usage of an AES DUKPT --variant name; 0 if unknown. */
static crypto_dukpt_aes_usage aes_usage(const char *s)
{
    static const struct {
        const char *name;
        crypto_dukpt_aes_usage u;
    } t[] = {{"pin", CRYPTO_DUKPT_AES_PIN},
             {"mac", CRYPTO_DUKPT_AES_MAC_GEN},
             {"mac-verify", CRYPTO_DUKPT_AES_MAC_VERIFY},
             {"mac-both", CRYPTO_DUKPT_AES_MAC_BOTH},
             {"data", CRYPTO_DUKPT_AES_DATA_ENC},
             {"data-dec", CRYPTO_DUKPT_AES_DATA_DEC},
             {"data-both", CRYPTO_DUKPT_AES_DATA_BOTH},
             {"kek", CRYPTO_DUKPT_AES_KEK}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcmp(s, t[i].name) == 0)
            return t[i].u;
    return 0;
}

/* AES DUKPT: --bdk 16/24/32 bytes, --ksn 12 bytes; working key type from --key-type or BDK. */
static int dukpt_aes(const cli_opt *o, const uint8_t *bdk, size_t bl, const uint8_t *ksn, size_t sl)
{
    static const char *const types[] = {"2tdea", "3tdea", "aes128", "aes192", "aes256"};
    uint8_t ik[32], out[32];
    size_t ol = 0;
    px_error e = {0};
    int rc, type = bl == 16   ? CRYPTO_DUKPT_AES_AES128
                   : bl == 24 ? CRYPTO_DUKPT_AES_AES192
                              : CRYPTO_DUKPT_AES_AES256;
    if (sl != CRYPTO_DUKPT_AES_KSN_LEN)
        return cli_fail("--ksn: AES DUKPT needs a 12-byte KSN, got %zu", sl);
    const char *var = cli_get(o, "variant"), *kt = cli_get(o, "key-type");
    if (var != NULL && aes_usage(var) == 0)
        return cli_fail("--variant: unknown usage '%s' (pin, mac, mac-verify, mac-both, data, "
                        "data-dec, data-both, kek)",
                        var);
    if (kt != NULL) {
        type = -1;
        for (int i = 0; i < 5; i++)
            if (strcmp(kt, types[i]) == 0)
                type = i;
    }
    if (type < 0)
        return cli_fail("--key-type: unknown type '%s' (2tdea, 3tdea, aes128, aes192, aes256)", kt);
    rc = crypto_dukpt_aes_derive_initial_key(bdk, bl, ksn, ik, &e);
    ol = bl;
    if (rc == PX_OK && cli_has(o, "ipek"))
        memcpy(out, ik, bl);
    else if (rc == PX_OK && var == NULL)
        rc = crypto_dukpt_aes_derive_key(ik, bl, ksn, out, &e);
    else if (rc == PX_OK)
        rc = crypto_dukpt_aes_host_key(bdk, bl, ksn, aes_usage(var), (crypto_dukpt_aes_keytype)type,
                                       out, sizeof out, &ol, &e);
    rc = rc == PX_OK ? print_hex(out, ol) : lib_fail(o, &e);
    crypto_cleanse(ik, sizeof ik);
    crypto_cleanse(out, sizeof out);
    return rc;
}

static int kt_dukpt(int argc, char **argv)
{
    cli_opt o[] = {
        {"bdk", 0, "base derivation key in hex", 0},
        {"ksn", 0, "key serial number in hex (TDES 10 bytes, AES 12 bytes)", 0},
        {"aes", 1, "AES DUKPT (X9.24-3) instead of TDES (X9.24-1)", 0},
        {"ipek", 1, "print the initial key (IPEK) instead", 0},
        {"variant", 0,
         "pin | mac | data (TDES also mac-resp, data-resp; AES also "
         "mac-verify, mac-both, data-dec, data-both, kek)",
         0},
        {"key-type", 0, "AES DUKPT working key type: aes128 | aes192 | aes256 | 2tdea | 3tdea", 0},
        {0, 0, 0, 0}};
    static const char *const req[] = {"bdk", "ksn", NULL};
    uint8_t bdk[32], ksn[16];
    size_t bl = 0, sl = 0;
    int done,
        rc = parse(
            argc, argv, o,
            "possum keytool dukpt --bdk HEX --ksn HEX [--aes] [--ipek] [--variant pin|mac|data]",
            &done);
    if (done || (rc = need(o, "dukpt", req)) != CLI_OK)
        return rc;
    if (cli_has(o, "ipek") && (cli_has(o, "variant") || cli_has(o, "key-type")))
        return cli_usage_error("keytool dukpt: --ipek takes no --variant or --key-type");
    if (cli_has(o, "key-type") && !cli_has(o, "aes"))
        return cli_usage_error("keytool dukpt: --key-type is for --aes only");
    if ((rc = hex_arg("bdk", cli_get(o, "bdk"), bdk, sizeof bdk, &bl)) != CLI_OK ||
        (rc = hex_arg("ksn", cli_get(o, "ksn"), ksn, sizeof ksn, &sl)) != CLI_OK)
        return rc;
    rc = cli_has(o, "aes") ? dukpt_aes(o, bdk, bl, ksn, sl) : dukpt_tdes(o, bdk, bl, ksn, sl);
    crypto_cleanse(bdk, sizeof bdk);
    return rc;
}

/* ---- tr31 ---- */

static int kt_tr31_wrap(int argc, char **argv)
{
    cli_opt o[] = {
        {"kbpk", 0, "key block protection key in hex (B: TDES 16/24; D: AES 16/24/32)", 0},
        {"header", 0, "header, e.g. D0000P0AE00E0000 (length filled in; blocks allowed)", 0},
        {"key", 0, "clear key to wrap, in hex", 0},
        {0, 0, 0, 0}};
    static const char *const req[] = {"kbpk", "header", "key", NULL};
    uint8_t kbpk[32], key[CRYPTO_TR31_KEY_MAX];
    char out[CRYPTO_TR31_BLOCK_MAX + 1];
    size_t pl = 0, kl = 0;
    px_error e = {0};
    int done, rc = parse(argc, argv, o,
                         "possum keytool tr31 wrap --kbpk HEX --header STR --key HEX", &done);
    if (done || (rc = need(o, "tr31 wrap", req)) != CLI_OK)
        return rc;
    if ((rc = hex_arg("kbpk", cli_get(o, "kbpk"), kbpk, sizeof kbpk, &pl)) != CLI_OK ||
        (rc = hex_arg("key", cli_get(o, "key"), key, sizeof key, &kl)) != CLI_OK)
        return rc;
    if (crypto_tr31_wrap_str(kbpk, pl, cli_get(o, "header"), key, kl, out, sizeof out, &e) ==
        PX_OK) {
        puts(out);
        rc = CLI_OK;
    } else {
        rc = lib_fail(o, &e);
    }
    crypto_cleanse(kbpk, sizeof kbpk);
    crypto_cleanse(key, sizeof key);
    return rc;
}

static int kt_tr31_unwrap(int argc, char **argv)
{
    cli_opt o[] = {{"kbpk", 0, "key block protection key in hex", 0},
                   {"block", 0, "the TR-31 key block", 0},
                   {0, 0, 0, 0}};
    static const char *const req[] = {"kbpk", "block", NULL};
    static crypto_tr31_header h;
    uint8_t kbpk[32], key[CRYPTO_TR31_KEY_MAX];
    size_t pl = 0, kl = 0;
    px_error e = {0};
    int done, rc = parse(argc, argv, o, "possum keytool tr31 unwrap --kbpk HEX --block STR", &done);
    if (done || (rc = need(o, "tr31 unwrap", req)) != CLI_OK)
        return rc;
    if ((rc = hex_arg("kbpk", cli_get(o, "kbpk"), kbpk, sizeof kbpk, &pl)) != CLI_OK)
        return rc;
    const char *blk = cli_get(o, "block");
    if (crypto_tr31_unwrap(kbpk, pl, blk, strlen(blk), &h, key, sizeof key, &kl, &e) == PX_OK)
        rc = print_hex(key, kl);
    else
        rc = lib_fail(o, &e);
    crypto_cleanse(kbpk, sizeof kbpk);
    crypto_cleanse(key, sizeof key);
    return rc;
}

static int kt_tr31(int argc, char **argv)
{
    static const cli_command sub[] = {
        {"wrap", kt_tr31_wrap, "wrap a clear key into a version B or D key block"},
        {"unwrap", kt_tr31_unwrap, "verify and unwrap a key block; prints the key"},
        {0, 0, 0}};
    return cli_dispatch("possum keytool tr31", sub, argc, argv);
}

/* ---- encrypt / decrypt ---- */

static int kt_cipher(int argc, char **argv, int enc)
{
    cli_opt o[] = {{"alg", 0, "tdes-ecb | tdes-cbc | aes-ecb | aes-cbc (also des-ecb, des-cbc)", 0},
                   {"key", 0, "key in hex", 0},
                   {"data", 0, "data in hex, a whole number of blocks (no padding is added)", 0},
                   {"iv", 0, "CBC initial vector in hex (default all zeros)", 0},
                   {0, 0, 0, 0}};
    static const char *const req[] = {"alg", "key", "data", NULL};
    static const struct {
        const char *name;
        crypto_alg alg;
        crypto_mode mode;
    } algs[] = {{"tdes-ecb", CRYPTO_TDES, CRYPTO_ECB}, {"tdes-cbc", CRYPTO_TDES, CRYPTO_CBC},
                {"aes-ecb", CRYPTO_AES, CRYPTO_ECB},   {"aes-cbc", CRYPTO_AES, CRYPTO_CBC},
                {"des-ecb", CRYPTO_DES, CRYPTO_ECB},   {"des-cbc", CRYPTO_DES, CRYPTO_CBC}};
    static uint8_t data[PX_KEYTOOL_DATA_MAX];
    uint8_t key[CRYPTO_KEY_MAX], iv[CRYPTO_BLOCK_MAX] = {0};
    size_t kl = 0, dl = 0, il = 0, a;
    px_error e = {0};
    int done, rc = parse(argc, argv, o,
                         enc ? "possum keytool encrypt --alg ALG --key HEX --data HEX [--iv HEX]"
                             : "possum keytool decrypt --alg ALG --key HEX --data HEX [--iv HEX]",
                         &done);
    if (done || (rc = need(o, enc ? "encrypt" : "decrypt", req)) != CLI_OK)
        return rc;
    for (a = 0; a < sizeof algs / sizeof algs[0] && strcmp(algs[a].name, cli_get(o, "alg")) != 0;
         a++)
        ;
    if (a == sizeof algs / sizeof algs[0])
        return cli_fail("--alg: unknown algorithm '%s' (tdes-ecb, tdes-cbc, aes-ecb, aes-cbc)",
                        cli_get(o, "alg"));
    if (cli_has(o, "iv") && algs[a].mode != CRYPTO_CBC)
        return cli_usage_error("keytool: --iv is only for CBC");
    if ((rc = hex_arg("key", cli_get(o, "key"), key, sizeof key, &kl)) != CLI_OK ||
        (rc = hex_arg("data", cli_get(o, "data"), data, sizeof data, &dl)) != CLI_OK ||
        (cli_has(o, "iv") && (rc = hex_arg("iv", cli_get(o, "iv"), iv, sizeof iv, &il)) != CLI_OK))
        return rc;
    if (cli_has(o, "iv") && il != crypto_block_size(algs[a].alg))
        return cli_fail("--iv: must be %zu bytes, got %zu", crypto_block_size(algs[a].alg), il);
    rc = enc ? crypto_encrypt(algs[a].alg, algs[a].mode, key, kl, iv, data, dl, data, &e)
             : crypto_decrypt(algs[a].alg, algs[a].mode, key, kl, iv, data, dl, data, &e);
    rc = rc == PX_OK ? print_hex(data, dl) : lib_fail(o, &e);
    crypto_cleanse(key, sizeof key);
    crypto_cleanse(data, dl);
    return rc;
}

static int kt_encrypt(int argc, char **argv)
{
    return kt_cipher(argc, argv, 1);
}

static int kt_decrypt(int argc, char **argv)
{
    return kt_cipher(argc, argv, 0);
}

/* ---- derive ---- */

static int kt_derive(int argc, char **argv)
{
    cli_opt o[] = {{"master", 0, "double-length TDES master key in hex", 0},
                   {"data", 0, "8 bytes D (right half from D XOR FF..FF) or 16 bytes DL DR", 0},
                   {0, 0, 0, 0}};
    static const char *const req[] = {"master", "data", NULL};
    uint8_t mk[CRYPTO_KEY_MAX], d[16], out[16];
    size_t ml = 0, dl = 0;
    px_error e = {0};
    int done, rc = parse(argc, argv, o, "possum keytool derive --master HEX --data HEX", &done);
    if (done || (rc = need(o, "derive", req)) != CLI_OK)
        return rc;
    if ((rc = hex_arg("master", cli_get(o, "master"), mk, sizeof mk, &ml)) != CLI_OK ||
        (rc = hex_arg("data", cli_get(o, "data"), d, sizeof d, &dl)) != CLI_OK)
        return rc;
    rc = crypto_derive_key(mk, ml, d, dl, out, &e) == PX_OK ? print_hex(out, 16) : lib_fail(o, &e);
    crypto_cleanse(mk, sizeof mk);
    crypto_cleanse(out, sizeof out);
    return rc;
}

int cmd_keytool(int argc, char **argv)
{
    static const cli_command sub[] = {
        {"kcv", kt_kcv, "key check value (TDES 3 bytes; AES 5 bytes of CMAC with --aes)"},
        {"pinblock", kt_pinblock, "ISO 9564 PIN block, formats 0, 1, 3, 4"},
        {"mac", kt_mac, "MAC: x919, iso9797-1, pboc, cup-ecb, cmac"},
        {"dukpt", kt_dukpt, "DUKPT keys from a BDK and KSN (TDES X9.24-1, AES X9.24-3)"},
        {"tr31", kt_tr31, "TR-31 / X9.143 key blocks: wrap, unwrap"},
        {"encrypt", kt_encrypt, "encrypt with TDES or AES, ECB or CBC, no padding"},
        {"decrypt", kt_decrypt, "decrypt with TDES or AES, ECB or CBC, no padding"},
        {"derive", kt_derive, "3DES key diversification (EMV option A / PBOC)"},
        {0, 0, 0}};
    return cli_dispatch("possum keytool", sub, argc, argv);
}
