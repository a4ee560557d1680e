/*
 * mobile_cn.h: mainland-China mobile numbers, one rule for the terminal (refuse a bad number
 * before any message) and the platform (refuse again, code Q1) — seed 002 claims 10 and 12,
 * [0039], [0048]-[0049].
 *
 * A number is valid when it is exactly 11 ASCII digits matching the CN "mobile"
 * nationalNumberPattern of Google libphonenumber's PhoneNumberMetadata.xml:
 *     1740[0-5]\d{6} | 1(?:[38]\d|4[57]|[59][0-35-9]|6[25-7]|7[0-35-8])\d{8}
 * No +86 prefix, spaces or dashes: callers strip those before they ask.
 */
#ifndef PX_LIB_MOBILE_CN_H
#define PX_LIB_MOBILE_CN_H

#include <stddef.h>

#define PX_MOBILE_CN_LEN 11

/* 1 if the len bytes at s are a valid mobile number; else 0 and, when why is not NULL, a
 * short reason a payer understands ("must be 11 digits", "must be digits only", "is not a
 * mainland-China mobile number"), a static string that never quotes the input. */
int px_mobile_cn_is_valid(const char *s, size_t len, const char **why);

/* The number for a screen or log with its middle four digits hidden: "138****5678".
 * An invalid number gives "***********". */
void px_mobile_cn_mask(const char *s, char out[PX_MOBILE_CN_LEN + 1]);

#endif
