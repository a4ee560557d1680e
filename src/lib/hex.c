#include "lib/hex.h"
#include "lib/err.h"

#include <string.h>

static const char px_hex_digits[] = "0123456789ABCDEF";

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

void px_hex_encode(const uint8_t *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = px_hex_digits[in[i] >> 4];
        out[2 * i + 1] = px_hex_digits[in[i] & 0x0F];
    }
    out[2 * n] = 0;
}

int px_hex_decode_n(const char *hex, size_t hexlen, uint8_t *out, size_t outcap, size_t *outlen)
{
    if (hexlen % 2 != 0)
        return PX_EINVAL;
    if (hexlen / 2 > outcap)
        return PX_ETOOBIG;
    for (size_t i = 0; i < hexlen; i += 2) {
        int hi = hex_value(hex[i]), lo = hex_value(hex[i + 1]);
        if (hi < 0 || lo < 0)
            return PX_EINVAL;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    if (outlen != NULL)
        *outlen = hexlen / 2;
    return PX_OK;
}

int px_hex_decode(const char *hex, uint8_t *out, size_t outcap, size_t *outlen)
{
    return px_hex_decode_n(hex, strlen(hex), out, outcap, outlen);
}

int px_hex_is_valid(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (hex_value(s[i]) < 0)
            return 0;
    return 1;
}
