/*
 * dialect_1987.c: ISO 8583:1987 in ASCII, as used on provider and issuer links. Framing:
 * 2-byte binary length (stripped by the network layer), MTI 4 ASCII digits, bitmap 16 ASCII
 * hex characters (32 with the secondary bitmap), then the fields of ISO 8583:1987 clause 4.4
 * (table 3) with their standard names and sizes. LL/LLL prefixes are ASCII digits; b fields
 * are raw bytes. docs/iso8583-1987.md lists every field.
 */
#include "iso8583/iso8583.h"

/* clang-format off */
/* fixed n, ASCII digits */
#define NA(nm, len) {nm, ISO8583_T_N, ISO8583_FIXED, 0, ISO8583_ENC_ASCII, 0, 0, \
                     ISO8583_SENS_NONE, 0, len}
/* fixed an/ans, ASCII */
#define FA(nm, t, len) {nm, t, ISO8583_FIXED, 0, ISO8583_ENC_ASCII, 0, 0, ISO8583_SENS_NONE, \
                        0, len}
/* variable text, ASCII length, ASCII value */
#define VA(nm, t, kind, max, sens) {nm, t, kind, ISO8583_ENC_ASCII, ISO8583_ENC_ASCII, 0, 0, \
                                    sens, 0, max}
#define LLN(nm, max) VA(nm, ISO8583_T_N, ISO8583_LLVAR, max, ISO8583_SENS_NONE)
#define LLLANS(nm) VA(nm, ISO8583_T_ANS, ISO8583_LLLVAR, 999, ISO8583_SENS_NONE)
/* x+n: 'C' or 'D' and len-1 digits */
#define XN(nm, len) {nm, ISO8583_T_XN, ISO8583_FIXED, 0, ISO8583_ENC_ASCII, 0, 0, \
                     ISO8583_SENS_NONE, 0, len}
/* binary, fixed or with an ASCII length (bytes) */
#define FB(nm, len, sens) {nm, ISO8583_T_B, ISO8583_FIXED, 0, ISO8583_ENC_BINARY, 0, 0, sens, \
                           0, len}
#define VBIN(nm, kind, max) {nm, ISO8583_T_B, kind, ISO8583_ENC_ASCII, ISO8583_ENC_BINARY, 0, \
                             0, ISO8583_SENS_NONE, 0, max}
/* clang-format on */

static const iso8583_field_spec iso1987_fields[PX_ISO_FIELDS + 1] = {
    [2] = VA("Primary account number", ISO8583_T_N, ISO8583_LLVAR, 19, ISO8583_SENS_PAN),
    [3] = NA("Processing code", 6),
    [4] = NA("Amount, transaction", 12),
    [5] = NA("Amount, settlement", 12),
    [6] = NA("Amount, cardholder billing", 12),
    [7] = NA("Transmission date and time", 10),
    [8] = NA("Amount, cardholder billing fee", 8),
    [9] = NA("Conversion rate, settlement", 8),
    [10] = NA("Conversion rate, cardholder billing", 8),
    [11] = NA("System trace audit number", 6),
    [12] = NA("Time, local transaction", 6),
    [13] = NA("Date, local transaction", 4),
    [14] = NA("Date, expiration", 4),
    [15] = NA("Date, settlement", 4),
    [16] = NA("Date, conversion", 4),
    [17] = NA("Date, capture", 4),
    [18] = NA("Merchant type", 4),
    [19] = NA("Acquiring institution country code", 3),
    [20] = NA("PAN extended, country code", 3),
    [21] = NA("Forwarding institution country code", 3),
    [22] = NA("Point of service entry mode", 3),
    [23] = NA("Card sequence number", 3),
    [24] = NA("Network international identifier", 3),
    [25] = NA("Point of service condition code", 2),
    [26] = NA("Point of service PIN capture code", 2),
    [27] = NA("Authorization id response length", 1),
    [28] = XN("Amount, transaction fee", 9),
    [29] = XN("Amount, settlement fee", 9),
    [30] = XN("Amount, transaction processing fee", 9),
    [31] = XN("Amount, settlement processing fee", 9),
    [32] = LLN("Acquiring institution id code", 11),
    [33] = LLN("Forwarding institution id code", 11),
    [34] = VA("Primary account number, extended", ISO8583_T_ANS, ISO8583_LLVAR, 28,
              ISO8583_SENS_PAN),
    [35] = VA("Track 2 data", ISO8583_T_Z, ISO8583_LLVAR, 37, ISO8583_SENS_TRACK),
    [36] = VA("Track 3 data", ISO8583_T_Z, ISO8583_LLLVAR, 104, ISO8583_SENS_TRACK),
    [37] = FA("Retrieval reference number", ISO8583_T_AN, 12),
    [38] = FA("Authorization id response", ISO8583_T_AN, 6),
    [39] = FA("Response code", ISO8583_T_AN, 2),
    [40] = FA("Service restriction code", ISO8583_T_AN, 3),
    [41] = FA("Card acceptor terminal id", ISO8583_T_ANS, 8),
    [42] = FA("Card acceptor id code", ISO8583_T_ANS, 15),
    [43] = FA("Card acceptor name/location", ISO8583_T_ANS, 40),
    [44] = VA("Additional response data", ISO8583_T_AN, ISO8583_LLVAR, 25, ISO8583_SENS_NONE),
    [45] = VA("Track 1 data", ISO8583_T_ANS, ISO8583_LLVAR, 76, ISO8583_SENS_TRACK),
    [46] = LLLANS("Additional data, ISO"),
    [47] = LLLANS("Additional data, national"),
    [48] = LLLANS("Additional data, private"),
    [49] = FA("Currency code, transaction", ISO8583_T_AN, 3),
    [50] = FA("Currency code, settlement", ISO8583_T_AN, 3),
    [51] = FA("Currency code, cardholder billing", ISO8583_T_AN, 3),
    [52] = FB("PIN data", 8, ISO8583_SENS_PIN),
    [53] = NA("Security related control info", 16),
    [54] = VA("Additional amounts", ISO8583_T_AN, ISO8583_LLLVAR, 120, ISO8583_SENS_NONE),
    [55] = VBIN("ICC system related data", ISO8583_LLLVAR, 255),
    [56] = LLLANS("Reserved ISO"),
    [57] = LLLANS("Reserved national"),
    [58] = LLLANS("Reserved national"),
    [59] = LLLANS("Reserved national"),
    [60] = LLLANS("Reserved national"),
    [61] = LLLANS("Reserved private"),
    [62] = LLLANS("Reserved private"),
    [63] = LLLANS("Reserved private"),
    [64] = FB("Message authentication code", 8, ISO8583_SENS_MAC),
    /* 65, the tertiary bitmap, is not supported: its presence is an error */
    [66] = NA("Settlement code", 1),
    [67] = NA("Extended payment code", 2),
    [68] = NA("Receiving institution country code", 3),
    [69] = NA("Settlement institution country code", 3),
    [70] = NA("Network management information code", 3),
    [71] = NA("Message number", 4),
    [72] = NA("Message number, last", 4),
    [73] = NA("Date, action", 6),
    [74] = NA("Credits, number", 10),
    [75] = NA("Credits, reversal number", 10),
    [76] = NA("Debits, number", 10),
    [77] = NA("Debits, reversal number", 10),
    [78] = NA("Transfer, number", 10),
    [79] = NA("Transfer, reversal number", 10),
    [80] = NA("Inquiries, number", 10),
    [81] = NA("Authorizations, number", 10),
    [82] = NA("Credits, processing fee amount", 12),
    [83] = NA("Credits, transaction fee amount", 12),
    [84] = NA("Debits, processing fee amount", 12),
    [85] = NA("Debits, transaction fee amount", 12),
    [86] = NA("Credits, amount", 16),
    [87] = NA("Credits, reversal amount", 16),
    [88] = NA("Debits, amount", 16),
    [89] = NA("Debits, reversal amount", 16),
    [90] = NA("Original data elements", 42),
    [91] = FA("File update code", ISO8583_T_AN, 1),
    [92] = FA("File security code", ISO8583_T_AN, 2),
    [93] = FA("Response indicator", ISO8583_T_AN, 5),
    [94] = FA("Service indicator", ISO8583_T_AN, 7),
    [95] = FA("Replacement amounts", ISO8583_T_AN, 42),
    [96] = FB("Message security code", 8, ISO8583_SENS_MAC),
    [97] = XN("Amount, net settlement", 17),
    [98] = FA("Payee", ISO8583_T_ANS, 25),
    [99] = LLN("Settlement institution id code", 11),
    [100] = LLN("Receiving institution id code", 11),
    [101] = VA("File name", ISO8583_T_ANS, ISO8583_LLVAR, 17, ISO8583_SENS_NONE),
    [102] = VA("Account identification 1", ISO8583_T_ANS, ISO8583_LLVAR, 28, ISO8583_SENS_PAN),
    [103] = VA("Account identification 2", ISO8583_T_ANS, ISO8583_LLVAR, 28, ISO8583_SENS_PAN),
    [104] = VA("Transaction description", ISO8583_T_ANS, ISO8583_LLLVAR, 100, ISO8583_SENS_NONE),
    [105] = LLLANS("Reserved ISO"),
    [106] = LLLANS("Reserved ISO"),
    [107] = LLLANS("Reserved ISO"),
    [108] = LLLANS("Reserved ISO"),
    [109] = LLLANS("Reserved ISO"),
    [110] = LLLANS("Reserved ISO"),
    [111] = LLLANS("Reserved ISO"),
    [112] = LLLANS("Reserved national"),
    [113] = LLLANS("Reserved national"),
    [114] = LLLANS("Reserved national"),
    [115] = LLLANS("Reserved national"),
    [116] = LLLANS("Reserved national"),
    [117] = LLLANS("Reserved national"),
    [118] = LLLANS("Reserved national"),
    [119] = LLLANS("Reserved national"),
    [120] = LLLANS("Reserved private"),
    [121] = LLLANS("Reserved private"),
    [122] = LLLANS("Reserved private"),
    [123] = LLLANS("Reserved private"),
    [124] = LLLANS("Reserved private"),
    [125] = LLLANS("Reserved private"),
    [126] = LLLANS("Reserved private"),
    [127] = LLLANS("Reserved private"),
    [128] = FB("Message authentication code", 8, ISO8583_SENS_MAC),
};

const iso8583_dialect iso8583_1987_ascii = {
    .name = "iso1987",
    .title = "ISO 8583:1987 ASCII (ASCII MTI, hex bitmap, ASCII lengths, raw binary fields)",
    .frame_len_bytes = 2,
    .tpdu_len = 0,
    .header_len = 0,
    .mti_enc = ISO8583_ENC_ASCII,
    .bitmap_enc = ISO8583_ENC_ASCII,
    .max_field = 128,
    .fields = iso1987_fields,
};
