/* tr31.c: ANSI X9.143 / TR-31 key blocks, versions B and D (key derivation binding). */
#include "crypto/tr31.h"
#include "crypto/crypto.h"
#include "crypto/crypto_int.h"
#include "crypto/mac.h"
#include "lib/hex.h"
#include "lib/str.h"

#include <string.h>
#include <openssl/crypto.h>

#define KEYDATA_MAX (CRYPTO_TR31_BLOCK_MAX / 2) /* bytes of key data a block can carry */

/* X9.143-2022 / TR-31:2018 key usages (numeric pairs are reserved for proprietary use). */
static const char *const known_usages[] = {
    "B0", "B1", "B2", "B3", "C0", "D0", "D1", "D2", "D3", "E0", "E1", "E2", "E3", "E4", "E5",
    "E6", "E7", "I0", "K0", "K1", "K2", "K3", "K4", "M0", "M1", "M2", "M3", "M4", "M5", "M6",
    "M7", "M8", "P0", "P1", "S0", "S1", "S2", "V0", "V1", "V2", "V3", "V4", "V5", NULL};

static int is_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int is_printable(char c)
{
    return c >= 0x20 && c <= 0x7E;
}

int crypto_tr31_usage_is_known(const char *usage)
{
    if (usage == NULL || strlen(usage) != 2)
        return 0;
    if (px_is_digits(usage, 2))
        return 1;
    for (size_t i = 0; known_usages[i] != NULL; i++)
        if (strcmp(usage, known_usages[i]) == 0)
            return 1;
    return 0;
}

/* Check the fixed header fields (X9.143 / TR-31 key block header) of h; each failure names its
 * field. */
static int check_fields(const crypto_tr31_header *h, px_error *e)
{
    if (h->version != 'B' && h->version != 'D')
        return px_error_set(e, PX_EUNSUPPORTED,
                            "header: key block version '%c' is not supported (B or D)",
                            is_printable(h->version) ? h->version : '?');
    if (!crypto_tr31_usage_is_known(h->usage))
        return px_error_set(e, PX_EFORMAT, "header: unknown key usage");
    if (strchr("ADEHRST", h->algorithm) == NULL || h->algorithm == 0)
        return px_error_set(e, PX_EFORMAT, "header: unknown algorithm");
    if (strchr("BCDEGNSTVXY", h->mode) == NULL || h->mode == 0)
        return px_error_set(e, PX_EFORMAT, "header: unknown mode of use");
    if (!is_alnum(h->key_version[0]) || !is_alnum(h->key_version[1]) || h->key_version[2] != 0)
        return px_error_set(e, PX_EFORMAT, "header: key version must be two alphanumerics");
    if (strchr("ENS", h->exportability) == NULL || h->exportability == 0)
        return px_error_set(e, PX_EFORMAT, "header: exportability must be E, N or S");
    return PX_OK;
}

int crypto_tr31_header_init(crypto_tr31_header *h, char version, const char *usage, char algorithm,
                            char mode, const char *key_version, char exportability, px_error *e)
{
    memset(h, 0, sizeof *h);
    h->version = version;
    if (usage == NULL || strlen(usage) != 2 || key_version == NULL || strlen(key_version) != 2)
        return px_error_set(e, PX_EFORMAT, "header: usage and key version are two characters");
    memcpy(h->usage, usage, 2);
    h->algorithm = algorithm;
    h->mode = mode;
    memcpy(h->key_version, key_version, 2);
    h->exportability = exportability;
    return check_fields(h, e);
}

int crypto_tr31_header_add_opt(crypto_tr31_header *h, const char *id, const char *data, size_t len,
                               px_error *e)
{
    if (id == NULL || strlen(id) != 2 || !is_alnum(id[0]) || !is_alnum(id[1]))
        return px_error_set(e, PX_EFORMAT, "optional block: ID must be two alphanumerics");
    if (h->nopt > 0 && strcmp(h->opt[h->nopt - 1].id, "PB") == 0)
        return px_error_set(e, PX_EFORMAT, "optional block: PB must be the last block");
    if (h->nopt >= CRYPTO_TR31_OPT_MAX)
        return px_error_set(e, PX_ETOOBIG, "optional block: more than %d blocks",
                            CRYPTO_TR31_OPT_MAX);
    if (len > sizeof h->optdata - h->optdata_len)
        return px_error_set(e, PX_ETOOBIG, "optional block %s: data too long", id);
    for (size_t i = 0; i < len; i++)
        if (!is_printable(data[i]))
            return px_error_set(e, PX_EFORMAT, "optional block %s: data must be printable ASCII",
                                id);
    crypto_tr31_opt *o = &h->opt[h->nopt++];
    memcpy(o->id, id, 3);
    o->off = h->optdata_len;
    o->len = len;
    memcpy(h->optdata + h->optdata_len, data, len);
    h->optdata_len += len;
    return PX_OK;
}

int crypto_tr31_header_find_opt(const crypto_tr31_header *h, const char *id, const char **data,
                                size_t *len)
{
    for (size_t i = 0; i < h->nopt; i++)
        if (strcmp(h->opt[i].id, id) == 0) {
            *data = h->optdata + h->opt[i].off;
            *len = h->opt[i].len;
            return PX_OK;
        }
    return PX_ENOTFOUND;
}

/* Read exactly `digits` hex (hex != 0) or decimal characters as a number. */
static int read_num(const char *s, size_t digits, int hex, size_t *out)
{
    size_t v = 0;
    for (size_t i = 0; i < digits; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'          ? c - '0'
                : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10
                : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
                                              : -1;
        if (d < 0)
            return PX_EFORMAT;
        v = v * (hex ? 16 : 10) + (size_t)d;
    }
    *out = v;
    return PX_OK;
}

/* X9.143 / TR-31 optional header block: one optional block at s[0..n): ID, length (2 hex; or 00,
 * then the length of the length in bytes as 2 hex, then the length), data. *used gets the block's
 * length. */
static int parse_opt(const char *s, size_t n, crypto_tr31_header *h, size_t *used, px_error *e)
{
    size_t len = 0, hdr = 4, lol = 0;
    char id[3] = {0};
    if (n < 4)
        return px_error_set(e, PX_EFORMAT, "optional block: truncated");
    memcpy(id, s, 2);
    if (!is_alnum(id[0]) || !is_alnum(id[1]))
        return px_error_set(e, PX_EFORMAT, "optional block: ID must be two alphanumerics");
    if (read_num(s + 2, 2, 1, &len) != PX_OK)
        return px_error_set(e, PX_EFORMAT, "optional block %s: bad length", id);
    if (len == 0) { /* extended length */
        if (n < 6 || read_num(s + 4, 2, 1, &lol) != PX_OK || lol == 0 || lol > 2 ||
            n < 6 + 2 * lol || read_num(s + 6, 2 * lol, 1, &len) != PX_OK)
            return px_error_set(e, PX_EFORMAT, "optional block %s: bad extended length", id);
        hdr = 6 + 2 * lol;
    }
    if (len < hdr || len > n)
        return px_error_set(e, PX_EFORMAT, "optional block %s: length %zu out of range", id, len);
    *used = len;
    return crypto_tr31_header_add_opt(h, id, s + hdr, len - hdr, e);
}

int crypto_tr31_header_parse(const char *s, size_t n, crypto_tr31_header *h, px_error *e)
{
    size_t nopt = 0, off = CRYPTO_TR31_HEADER_FIXED;
    memset(h, 0, sizeof *h);
    if (s == NULL || n < CRYPTO_TR31_HEADER_FIXED)
        return px_error_set(e, PX_EFORMAT, "header: shorter than %d characters",
                            CRYPTO_TR31_HEADER_FIXED);
    h->version = s[0];
    if (read_num(s + 1, 4, 0, &h->length) != PX_OK)
        return px_error_set(e, PX_EFORMAT, "header: length must be 4 digits");
    memcpy(h->usage, s + 5, 2);
    h->algorithm = s[7];
    h->mode = s[8];
    memcpy(h->key_version, s + 9, 2);
    h->exportability = s[11];
    int rc = check_fields(h, e);
    if (rc != PX_OK)
        return rc;
    if (read_num(s + 12, 2, 0, &nopt) != PX_OK)
        return px_error_set(e, PX_EFORMAT, "header: optional block count must be 2 digits");
    if (s[14] != '0' || s[15] != '0')
        return px_error_set(e, PX_EFORMAT, "header: reserved field must be 00");
    for (size_t i = 0; i < nopt; i++) {
        size_t used = 0;
        if ((rc = parse_opt(s + off, n - off, h, &used, e)) != PX_OK)
            return rc;
        off += used;
    }
    h->header_len = off;
    return PX_OK;
}

/* ---- key derivation binding method (TR-31:2018 versions B and D, X9.143) ---- */

typedef struct kb_params {
    crypto_alg alg; /* of the KBPK and its derived keys */
    size_t bs;      /* cipher block = MAC length in bytes (8 for B, 16 for D) */
} kb_params;

static int kb_params_for(char version, size_t kbpklen, kb_params *p, px_error *e)
{
    p->alg = version == 'B' ? CRYPTO_TDES : CRYPTO_AES;
    p->bs = crypto_block_size(p->alg);
    if (version != 'B' && version != 'D')
        return px_error_set(e, PX_EUNSUPPORTED,
                            "kbpk: key block version is not supported (B or D)");
    if (!crypto_key_len_is_valid(p->alg, kbpklen))
        return px_error_set(e, PX_EINVAL,
                            "kbpk: %zu bytes is not a valid %s key block protection key", kbpklen,
                            version == 'B' ? "TDES (16 or 24 bytes)" : "AES (16, 24 or 32 bytes)");
    return PX_OK;
}

/* TR-31:2018 / X9.143 key derivation binding: KBEK and KBAK by the CMAC counter-mode KDF of SP
 * 800-108: input = counter | usage (0000 enc, 0001 MAC) | 00 | algorithm | length in bits. */
static int derive_kb_keys(const kb_params *p, const uint8_t *kbpk, size_t kbpklen, uint8_t kbek[32],
                          uint8_t kbak[32], px_error *e)
{
    static const uint8_t algcode[2][3] = {{0x00, 0x01, 0x01}, {0x02, 0x03, 0x04}};
    size_t bits = kbpklen * 8, ml = 0;
    uint8_t in[8], out[16];
    int rc = PX_OK;
    in[3] = 0x00;
    in[4] = 0x00;
    in[5] = algcode[p->alg == CRYPTO_AES][(kbpklen - 16) / 8];
    in[6] = (uint8_t)(bits >> 8);
    in[7] = (uint8_t)bits;
    for (int usage = 0; usage < 2 && rc == PX_OK; usage++) {
        uint8_t *dst = usage == 0 ? kbek : kbak;
        in[1] = 0x00;
        in[2] = (uint8_t)usage;
        for (size_t i = 0; i * p->bs < kbpklen && rc == PX_OK; i++) {
            in[0] = (uint8_t)(i + 1);
            rc = crypto_cmac(p->alg, kbpk, kbpklen, in, sizeof in, out, sizeof out, &ml, e);
            size_t take = kbpklen - i * p->bs < p->bs ? kbpklen - i * p->bs : p->bs;
            if (rc == PX_OK)
                memcpy(dst + i * p->bs, out, take);
        }
    }
    OPENSSL_cleanse(out, sizeof out);
    return rc;
}

/* Characters an optional block takes when written (extended length past 255). */
static size_t opt_size(size_t datalen)
{
    return datalen + 4 <= 255 ? datalen + 4 : datalen + 10;
}

/* Serialize h with total length total_len; adds a PB block to align to bs. Returns chars
 * written (not NUL-terminated) or 0 if it does not fit in cap. */
static size_t header_write(const crypto_tr31_header *h, size_t bs, size_t total_len, char *out,
                           size_t cap)
{
    size_t base = CRYPTO_TR31_HEADER_FIXED, nopt = 0, pad = 0;
    for (size_t i = 0; i < h->nopt; i++)
        if (strcmp(h->opt[i].id, "PB") != 0) {
            base += opt_size(h->opt[i].len);
            nopt++;
        }
    if (base % bs != 0) {
        pad = bs - base % bs;
        pad += pad < 4 ? bs : 0;
        nopt++;
    }
    if (base + pad + 1 > cap || nopt > 99)
        return 0;
    snprintf(out, cap, "%c%04zu%.2s%c%c%.2s%c%02zu00", h->version, total_len % 10000, h->usage,
             h->algorithm, h->mode, h->key_version, h->exportability, nopt);
    size_t off = CRYPTO_TR31_HEADER_FIXED;
    for (size_t i = 0; i < h->nopt; i++) {
        const crypto_tr31_opt *o = &h->opt[i];
        if (strcmp(o->id, "PB") == 0)
            continue;
        if (o->len + 4 <= 255)
            off += (size_t)snprintf(out + off, cap - off, "%.2s%02zX", o->id, o->len + 4);
        else
            off += (size_t)snprintf(out + off, cap - off, "%.2s0002%04zX", o->id, o->len + 10);
        memcpy(out + off, h->optdata + o->off, o->len);
        off += o->len;
    }
    if (pad > 0) {
        off += (size_t)snprintf(out + off, cap - off, "PB%02zX", pad);
        memset(out + off, '0', pad - 4);
        off += pad - 4;
    }
    return off;
}

/* Key lengths an algorithm allows (T also 8: single-length keys still travel as 'T'). */
static int check_key_len(char algorithm, size_t keylen, px_error *e)
{
    int ok = algorithm == 'T'   ? keylen == 8 || keylen == 16 || keylen == 24
             : algorithm == 'A' ? keylen == 16 || keylen == 24 || keylen == 32
             : algorithm == 'D' ? keylen == 8
                                : keylen > 0 && keylen <= CRYPTO_TR31_KEY_MAX;
    if (!ok || keylen > CRYPTO_TR31_KEY_MAX)
        return px_error_set(e, PX_EINVAL, "key: %zu bytes is not a valid length for algorithm %c",
                            keylen, algorithm);
    return PX_OK;
}

/* X9.24-1 protection rule: a key block never protects a stronger key than its KBPK. */
static int check_strength(const crypto_tr31_header *h, size_t kbpklen, size_t keylen, px_error *e)
{
    if (h->version == 'B' && h->algorithm == 'A')
        return px_error_set(e, PX_EPERM, "key: an AES key must be wrapped in a version D block");
    if (h->version == 'B' && h->algorithm == 'T' && keylen > kbpklen)
        return px_error_set(e, PX_EPERM, "key: a %zu-byte TDES key needs a KBPK at least as long",
                            keylen);
    if (h->version == 'D' && h->algorithm == 'A' && keylen > kbpklen)
        return px_error_set(e, PX_EPERM, "key: an AES-%zu key needs a KBPK at least as long",
                            keylen * 8);
    return PX_OK;
}

/* TR-31:2018 / X9.143 key block wrapping: key data = bit length (2 bytes) | key | padding; MAC =
 * CMAC(KBAK, header | key data); encrypted key data = CBC(KBEK, IV = MAC). */
static int wrap_core(const uint8_t *kbpk, size_t kbpklen, const crypto_tr31_header *h,
                     const uint8_t *key, size_t keylen, const uint8_t *pad, size_t padlen,
                     char *out, size_t outcap, px_error *e)
{
    kb_params p;
    uint8_t kd[2 + CRYPTO_TR31_KEY_MAX + 16], kbek[32], kbak[32], mac[16];
    size_t ml = 0;
    int rc;
    if ((rc = check_fields(h, e)) != PX_OK ||
        (rc = kb_params_for(h->version, kbpklen, &p, e)) != PX_OK ||
        (rc = check_key_len(h->algorithm, keylen, e)) != PX_OK ||
        (rc = check_strength(h, kbpklen, keylen, e)) != PX_OK)
        return rc;
    size_t kdlen = (2 + keylen + p.bs - 1) / p.bs * p.bs, npad = kdlen - 2 - keylen;
    if (pad != NULL && padlen != npad)
        return px_error_set(e, PX_EINVAL, "padding: %zu bytes needed, got %zu", npad, padlen);
    size_t hlen = header_write(h, p.bs, 0, out, outcap);
    size_t total = hlen + 2 * kdlen + 2 * p.bs;
    if (hlen == 0 || total > CRYPTO_TR31_BLOCK_MAX || total + 1 > outcap)
        return px_error_set(e, PX_ETOOBIG, "key block: %zu characters do not fit", total);
    header_write(h, p.bs, total, out, outcap);
    kd[0] = (uint8_t)((keylen * 8) >> 8);
    kd[1] = (uint8_t)(keylen * 8);
    memcpy(kd + 2, key, keylen);
    rc = pad != NULL ? (memcpy(kd + 2 + keylen, pad, npad), PX_OK)
                     : crypto_random(kd + 2 + keylen, npad, e);
    if (rc == PX_OK)
        rc = derive_kb_keys(&p, kbpk, kbpklen, kbek, kbak, e);
    if (rc == PX_OK)
        rc = crypto_int_cmac2(p.alg, kbak, kbpklen, (const uint8_t *)out, hlen, kd, kdlen, mac,
                              sizeof mac, &ml, e);
    if (rc == PX_OK)
        rc = crypto_encrypt(p.alg, CRYPTO_CBC, kbek, kbpklen, mac, kd, kdlen, kd, e);
    if (rc == PX_OK) {
        px_hex_encode(kd, kdlen, out + hlen);
        px_hex_encode(mac, p.bs, out + hlen + 2 * kdlen);
    } else {
        out[0] = 0;
    }
    OPENSSL_cleanse(kd, sizeof kd);
    OPENSSL_cleanse(kbek, sizeof kbek);
    OPENSSL_cleanse(kbak, sizeof kbak);
    return rc;
}

int crypto_tr31_wrap(const uint8_t *kbpk, size_t kbpklen, const crypto_tr31_header *h,
                     const uint8_t *key, size_t keylen, char *out, size_t outcap, px_error *e)
{
    return wrap_core(kbpk, kbpklen, h, key, keylen, NULL, 0, out, outcap, e);
}

int crypto_tr31_wrap_padded(const uint8_t *kbpk, size_t kbpklen, const crypto_tr31_header *h,
                            const uint8_t *key, size_t keylen, const uint8_t *pad, size_t padlen,
                            char *out, size_t outcap, px_error *e)
{
    if (pad == NULL && padlen > 0)
        return px_error_set(e, PX_EINVAL, "padding: missing");
    static const uint8_t none[1];
    return wrap_core(kbpk, kbpklen, h, key, keylen, pad != NULL ? pad : none, padlen, out, outcap,
                     e);
}

int crypto_tr31_wrap_str(const uint8_t *kbpk, size_t kbpklen, const char *header,
                         const uint8_t *key, size_t keylen, char *out, size_t outcap, px_error *e)
{
    crypto_tr31_header h;
    size_t n = header != NULL ? strlen(header) : 0;
    int rc = crypto_tr31_header_parse(header, n, &h, e);
    if (rc == PX_OK && h.header_len != n)
        rc = px_error_set(e, PX_EFORMAT, "header: %zu unexpected characters after the header",
                          n - h.header_len);
    if (rc == PX_OK)
        rc = crypto_tr31_wrap(kbpk, kbpklen, &h, key, keylen, out, outcap, e);
    return rc;
}

/* Split a block after its header into key data and MAC, checking lengths and hex. */
static int split_body(const char *s, size_t n, const kb_params *p, uint8_t *kd, size_t *kdlen,
                      uint8_t mac[16], px_error *e)
{
    size_t machex = 2 * p->bs;
    if (n < machex + 2 * p->bs || (n - machex) % (2 * p->bs) != 0)
        return px_error_set(e, PX_EFORMAT, "key block: key data is not a whole number of blocks");
    size_t kdhex = n - machex;
    if (px_hex_decode_n(s, kdhex, kd, KEYDATA_MAX, kdlen) != PX_OK)
        return px_error_set(e, PX_EFORMAT, "key block: encrypted key data is not hex");
    if (px_hex_decode_n(s + kdhex, machex, mac, 16, NULL) != PX_OK)
        return px_error_set(e, PX_EFORMAT, "key block: MAC is not hex");
    return PX_OK;
}

/* TR-31:2018 / X9.143 key block unwrapping: decrypt with IV = MAC, recompute the MAC over header |
 * key data, compare in constant time; only then read the key length and the key. */
int crypto_tr31_unwrap(const uint8_t *kbpk, size_t kbpklen, const char *block, size_t n,
                       crypto_tr31_header *h, uint8_t *key, size_t keycap, size_t *keylen,
                       px_error *e)
{
    kb_params p;
    uint8_t kd[KEYDATA_MAX], kbek[32], kbak[32], mac[16], want[16];
    size_t kdlen = 0, ml = 0, bits;
    int rc;
    if (block == NULL || n > CRYPTO_TR31_BLOCK_MAX)
        return px_error_set(e, PX_EFORMAT, "key block: longer than %d characters",
                            CRYPTO_TR31_BLOCK_MAX);
    if ((rc = crypto_tr31_header_parse(block, n, h, e)) != PX_OK)
        return rc;
    if (h->length != n)
        return px_error_set(e, PX_EFORMAT, "key block: length field says %zu, block has %zu",
                            h->length, n);
    if ((rc = kb_params_for(h->version, kbpklen, &p, e)) != PX_OK)
        return rc;
    if (h->header_len % p.bs != 0)
        return px_error_set(e, PX_EFORMAT, "header: %zu characters is not a multiple of %zu",
                            h->header_len, p.bs);
    if ((rc = split_body(block + h->header_len, n - h->header_len, &p, kd, &kdlen, mac, e)) !=
        PX_OK)
        return rc;
    rc = derive_kb_keys(&p, kbpk, kbpklen, kbek, kbak, e);
    if (rc == PX_OK)
        rc = crypto_decrypt(p.alg, CRYPTO_CBC, kbek, kbpklen, mac, kd, kdlen, kd, e);
    if (rc == PX_OK)
        rc = crypto_int_cmac2(p.alg, kbak, kbpklen, (const uint8_t *)block, h->header_len, kd,
                              kdlen, want, sizeof want, &ml, e);
    if (rc == PX_OK && !px_ct_equal(want, mac, p.bs))
        rc = px_error_set(e, PX_EAUTH,
                          "key block: MAC does not verify (wrong KBPK or tampered block)");
    bits = (size_t)kd[0] << 8 | kd[1];
    if (rc == PX_OK && (bits == 0 || bits % 8 != 0 || bits / 8 > kdlen - 2))
        rc = px_error_set(e, PX_EFORMAT, "key block: key length field is invalid");
    if (rc == PX_OK && (rc = check_key_len(h->algorithm, bits / 8, e)) == PX_OK) {
        if (keycap < bits / 8)
            rc = px_error_set(e, PX_ETOOBIG, "key: output buffer too small");
        else {
            memcpy(key, kd + 2, bits / 8);
            *keylen = bits / 8;
        }
    }
    OPENSSL_cleanse(kd, sizeof kd);
    OPENSSL_cleanse(kbek, sizeof kbek);
    OPENSSL_cleanse(kbak, sizeof kbak);
    return rc;
}
