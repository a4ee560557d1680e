/*
 * mobile.h: mainland-China mobile number rules, shared by the terminal (refuse a bad number
 * before any message, seed 002) and the platform (answer Q1).
 *
 * A number is valid when it is exactly 11 ASCII digits matching the CN "mobile"
 * nationalNumberPattern of Google libphonenumber's PhoneNumberMetadata.xml:
 *     1740[0-5]\d{6} | 1(?:[38]\d|4[57]|[59][0-35-9]|6[25-7]|7[0-35-8])\d{8}
 * No +86 prefix, spaces or dashes: callers strip those before they ask.
 */
#ifndef PX_DEVICE_POS_MOBILE_H
#define PX_DEVICE_POS_MOBILE_H

#define POSSUM_MOBILE_CN_LEN 11

/* 1 if s is a valid mobile number; else 0 and, when why is not NULL, a short reason for a
 * person ("must be 11 digits", ...), a static string that never quotes the input. */
int possum_mobile_cn_is_valid(const char *s, const char **why);

/* The number for a screen or log with its middle four digits hidden: "138****5678".
 * out must hold 12 bytes; an invalid number gives "***********". */
void possum_mobile_cn_mask(const char *s, char out[POSSUM_MOBILE_CN_LEN + 1]);

#endif
