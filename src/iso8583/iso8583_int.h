/* iso8583_int.h: private to src/iso8583: character classes and bitmap helpers. */
#ifndef PX_ISO8583_INT_H
#define PX_ISO8583_INT_H

#include <stddef.h>
#include <stdint.h>

#include "iso8583/iso8583.h"

/* Character classes, one bit each, looked up in iso8583_cls[byte]. */
enum {
    ISO_C_N = 0x01,    /* '0'-'9' */
    ISO_C_AN = 0x02,   /* 'A'-'Z' 'a'-'z' '0'-'9' and space */
    ISO_C_ANS = 0x04,  /* printable ASCII 0x20-0x7E */
    ISO_C_Z = 0x08,    /* '0'-'9' and '=' */
    ISO_C_ANS8 = 0x10, /* printable ASCII or 0x80-0xFF */
    ISO_C_CD = 0x20    /* 'C' or 'D' */
};

extern const uint8_t iso8583_cls[256];

#define ISO_TOP_BIT ((uint64_t)1 << 63)

/* The bit of field f (1..128) within its 64-bit word, and the word's index. */
static inline uint64_t iso_field_bit(int f)
{
    return ISO_TOP_BIT >> ((unsigned)(f - 1) & 63u);
}

static inline int iso_field_word(int f)
{
    return (f - 1) >> 6;
}

/* Index of the first byte of p[0..n) outside the class of spec s, or n when all fit. */
size_t iso_text_bad_pos(const iso8583_field_spec *s, const uint8_t *p, size_t n);

/* "a digit", "a printable ASCII character", ...: what the class of s admits. */
const char *iso_class_name(const iso8583_field_spec *s);

#endif
