/* hex.h: strict hexadecimal conversion (upper-case out, either case in). */
#ifndef PX_HEX_H
#define PX_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Write 2*n upper-case hex digits and a NUL into out (size >= 2*n+1). */
void px_hex_encode(const uint8_t *in, size_t n, char *out);

/* Decode exactly strlen(hex) digits into out (capacity outcap); *outlen = bytes written.
 * PX_EINVAL on odd length or a non-hex character, PX_ETOOBIG if it does not fit. */
int px_hex_decode(const char *hex, uint8_t *out, size_t outcap, size_t *outlen);

/* Same, for a counted input that need not be NUL-terminated. */
int px_hex_decode_n(const char *hex, size_t hexlen, uint8_t *out, size_t outcap, size_t *outlen);

int px_hex_is_valid(const char *s, size_t len); /* 1 if all len chars are hex digits */

#endif
