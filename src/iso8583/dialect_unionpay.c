/*
 * dialect_unionpay.c: the UnionPay (CUP) POS terminal layout, as terminals in China speak it
 * to their acquirer ("中国银联POS终端规范" / "POS终端消息域说明"). Framing: 2-byte binary
 * length (stripped by the network layer), TPDU 5 bytes, header 6 bytes, MTI 2 bytes BCD,
 * bitmap 8 bytes binary, then the fields below. Numeric fields are BCD; LL/LLL prefixes are
 * BCD and count digits for n/z, bytes otherwise. docs/iso8583-unionpay.md lists every field
 * and the sources followed.
 */
#include "iso8583/iso8583.h"

/* clang-format off */
/* fixed n, BCD, right-aligned (odd: leading pad nibble 0) */
#define NB(nm, len) {nm, ISO8583_T_N, ISO8583_FIXED, 0, ISO8583_ENC_BCD, ISO8583_ALIGN_RIGHT, \
                     0x0, ISO8583_SENS_NONE, 0, len}
/* fixed n, BCD, left-aligned (odd: trailing pad nibble 0) */
#define NBL(nm, len) {nm, ISO8583_T_N, ISO8583_FIXED, 0, ISO8583_ENC_BCD, ISO8583_ALIGN_LEFT, \
                      0x0, ISO8583_SENS_NONE, 0, len}
/* variable n or z, BCD length (digits), BCD value left-aligned, trailing pad nibble 0 */
#define VB(nm, t, kind, max, sens) {nm, t, kind, ISO8583_ENC_BCD, ISO8583_ENC_BCD, \
                                    ISO8583_ALIGN_LEFT, 0x0, sens, 0, max}
/* fixed an/ans, ASCII */
#define FA(nm, t, len) {nm, t, ISO8583_FIXED, 0, ISO8583_ENC_ASCII, 0, 0, ISO8583_SENS_NONE, \
                        0, len}
/* variable an/ans, BCD length (bytes), ASCII value */
#define VA(nm, t, kind, max, flags) {nm, t, kind, ISO8583_ENC_BCD, ISO8583_ENC_ASCII, 0, 0, \
                                     ISO8583_SENS_NONE, flags, max}
/* binary, fixed or with a BCD length (bytes) */
#define FB(nm, len, sens) {nm, ISO8583_T_B, ISO8583_FIXED, 0, ISO8583_ENC_BINARY, 0, 0, sens, \
                           0, len}
#define VBIN(nm, kind, max, sens) {nm, ISO8583_T_B, kind, ISO8583_ENC_BCD, \
                                   ISO8583_ENC_BINARY, 0, 0, sens, 0, max}
/* clang-format on */

static const iso8583_field_spec unionpay_fields[PX_ISO_FIELDS + 1] = {
    [2] = VB("Primary account number", ISO8583_T_N, ISO8583_LLVAR, 19, ISO8583_SENS_PAN),
    [3] = NB("Processing code", 6),
    [4] = NB("Amount, transaction", 12),
    [11] = NB("System trace audit number", 6),
    [12] = NB("Time, local transaction", 6),
    [13] = NB("Date, local transaction", 4),
    [14] = NB("Date, expiration", 4),
    [15] = NB("Date, settlement", 4),
    [22] = NBL("Point of service entry mode", 3),
    [23] = NB("Card sequence number", 3),
    [25] = NB("Point of service condition code", 2),
    [26] = NB("Point of service PIN capture code", 2),
    [32] = VB("Acquiring institution id code", ISO8583_T_N, ISO8583_LLVAR, 11, ISO8583_SENS_NONE),
    [35] = VB("Track 2 data", ISO8583_T_Z, ISO8583_LLVAR, 37, ISO8583_SENS_TRACK),
    [36] = VB("Track 3 data", ISO8583_T_Z, ISO8583_LLLVAR, 104, ISO8583_SENS_TRACK),
    [37] = FA("Retrieval reference number", ISO8583_T_AN, 12),
    [38] = FA("Authorization id response", ISO8583_T_AN, 6),
    [39] = FA("Response code", ISO8583_T_AN, 2),
    [41] = FA("Card acceptor terminal id", ISO8583_T_ANS, 8),
    [42] = FA("Card acceptor id code", ISO8583_T_ANS, 15),
    [44] = VA("Additional response data", ISO8583_T_AN, ISO8583_LLVAR, 25, 0),
    [48] = VB("Additional data, private", ISO8583_T_N, ISO8583_LLLVAR, 322, ISO8583_SENS_NONE),
    [49] = FA("Currency code, transaction", ISO8583_T_AN, 3),
    [52] = FB("PIN data", 8, ISO8583_SENS_PIN),
    [53] = NB("Security related control info", 16),
    [54] = VA("Additional amounts", ISO8583_T_AN, ISO8583_LLLVAR, 20, 0),
    [55] = VBIN("ICC system related data", ISO8583_LLLVAR, 255, ISO8583_SENS_NONE),
    [58] = VA("PBOC electronic data", ISO8583_T_ANS, ISO8583_LLLVAR, 100, 0),
    [60] = VB("Reserved private (type, batch, net info)", ISO8583_T_N, ISO8583_LLLVAR, 17,
              ISO8583_SENS_NONE),
    [61] = VB("Original message data", ISO8583_T_N, ISO8583_LLLVAR, 29, ISO8583_SENS_NONE),
    [62] = VBIN("Reserved private (keys, terminal data)", ISO8583_LLLVAR, 512, ISO8583_SENS_KEY),
    [63] = VA("Reserved private (operator, card org)", ISO8583_T_ANS, ISO8583_LLLVAR, 163,
              ISO8583_F_8BIT),
    [64] = FB("Message authentication code", 8, ISO8583_SENS_MAC),
};

const iso8583_dialect iso8583_unionpay_pos = {
    .name = "unionpay",
    .title = "UnionPay POS terminal (TPDU, header, BCD MTI, binary bitmap, BCD numerics)",
    .frame_len_bytes = 2,
    .tpdu_len = 5,
    .header_len = 6,
    .mti_enc = ISO8583_ENC_BCD,
    .bitmap_enc = ISO8583_ENC_BINARY,
    .max_field = 64,
    .fields = unionpay_fields,
};
