/*
 * iso8583.h: an ISO 8583 codec driven by field tables. A dialect (framing + 128 field specs)
 * is data; two are built in: the UnionPay POS terminal layout and ISO 8583:1987 ASCII.
 *
 * A message (iso8583_msg) holds every value in one fixed area inside the struct, as text for
 * n/an/ans/z/x+n fields (BCD decoded to '0'-'9'; the track separator is '=' on this side and
 * nibble D on the wire) and as raw bytes for b fields. No call allocates. See docs/iso8583.md.
 */
#ifndef PX_ISO8583_H
#define PX_ISO8583_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/limits.h"

/* Field types (ISO 8583:1987 clause 4.3 notation). */
typedef enum iso8583_type {
    ISO8583_T_UNDEF = 0, /* not defined in this dialect: its presence is an error */
    ISO8583_T_N,         /* numeric digits */
    ISO8583_T_AN,        /* alphanumeric and space */
    ISO8583_T_ANS,       /* printable ASCII 0x20-0x7E */
    ISO8583_T_B,         /* binary bytes */
    ISO8583_T_Z,         /* track 2/3 code set: digits and the separator '=' */
    ISO8583_T_XN         /* 'C' (credit) or 'D' (debit), then digits (amount fees) */
} iso8583_type;

typedef enum iso8583_len_kind { ISO8583_FIXED = 0, ISO8583_LLVAR, ISO8583_LLLVAR } iso8583_len_kind;

/* How bytes are written: a value or a length prefix. */
typedef enum iso8583_enc {
    ISO8583_ENC_ASCII = 0, /* one character per byte (lengths: 2 or 3 ASCII digits) */
    ISO8583_ENC_BCD,       /* two digits per byte (lengths: 1 or 2 bytes of BCD) */
    ISO8583_ENC_BINARY     /* raw bytes (lengths: 1 or 2 bytes, big-endian) */
} iso8583_enc;

/* Where an odd BCD digit count puts its pad nibble. */
typedef enum iso8583_align {
    ISO8583_ALIGN_RIGHT = 0, /* value right-aligned: pad nibble first ("0123" for 123) */
    ISO8583_ALIGN_LEFT       /* value left-aligned: pad nibble last ("1230" for 123) */
} iso8583_align;

/* What a field may reveal; used by displays (iso8583_field_display, iso8583_dump). */
typedef enum iso8583_sensitivity {
    ISO8583_SENS_NONE = 0,
    ISO8583_SENS_PAN,   /* shown masked: first 6 and last 4 digits */
    ISO8583_SENS_TRACK, /* shown masked: account part like a PAN, all after the separator hidden */
    ISO8583_SENS_PIN,   /* hidden */
    ISO8583_SENS_MAC,   /* hidden */
    ISO8583_SENS_KEY    /* hidden (key material, e.g. UnionPay field 62 in sign-on) */
} iso8583_sensitivity;

#define ISO8583_F_8BIT 0x01 /* ans also admits bytes 0x80-0xFF (GBK text in UnionPay 63) */

/* One data element. Lengths count digits for BCD-encoded n/z, characters or bytes otherwise. */
typedef struct iso8583_field_spec {
    const char *name; /* NULL when the field is not defined (type ISO8583_T_UNDEF) */
    uint8_t type;     /* iso8583_type */
    uint8_t len_kind; /* iso8583_len_kind */
    uint8_t len_enc;  /* iso8583_enc of the LL/LLL prefix */
    uint8_t data_enc; /* iso8583_enc of the value */
    uint8_t align;    /* iso8583_align, for an odd number of BCD digits */
    uint8_t pad;      /* pad nibble written (0x0 or 0xF); unpack accepts either */
    uint8_t sens;     /* iso8583_sensitivity */
    uint8_t flags;    /* ISO8583_F_* */
    uint16_t max_len; /* the length of a fixed field, the maximum of a variable one */
} iso8583_field_spec;

/* A dialect: framing plus the table of fields. Message layout on the wire, after the
 * frame length that the network layer strips: TPDU, header, MTI, bitmap(s), fields. */
typedef struct iso8583_dialect {
    const char *name;        /* "unionpay", "iso1987" */
    const char *title;       /* one line for humans */
    uint8_t frame_len_bytes; /* binary big-endian length before the message (2), or 0 */
    uint8_t tpdu_len;        /* 0..PX_ISO_TPDU_MAX */
    uint8_t header_len;      /* 0..PX_ISO_HEADER_MAX */
    uint8_t mti_enc;         /* ISO8583_ENC_BCD (2 bytes) or ISO8583_ENC_ASCII (4 bytes) */
    uint8_t bitmap_enc;      /* ISO8583_ENC_BINARY (8 bytes) or ISO8583_ENC_ASCII (16 hex) */
    uint8_t max_field;       /* 64 (no secondary bitmap) or 128 */
    const iso8583_field_spec *fields; /* PX_ISO_FIELDS + 1 entries, indexed by number */
} iso8583_dialect;

extern const iso8583_dialect iso8583_unionpay_pos; /* docs/iso8583-unionpay.md */
extern const iso8583_dialect iso8583_1987_ascii;   /* docs/iso8583-1987.md */

/* The built-in dialect called name ("unionpay", "iso1987"), or NULL. */
const iso8583_dialect *iso8583_dialect_find(const char *name);

/* Check a dialect's tables for consistency (lengths within LL/LLL, encodings that fit the
 * type, framing sizes within limits). For tests and for anyone adding a dialect. */
int iso8583_dialect_check(const iso8583_dialect *d, px_error *e);

/* The spec of field f (2..128) in d, or NULL when f is out of range or undefined. */
const iso8583_field_spec *iso8583_field_spec_of(const iso8583_dialect *d, int f);

/* "n..19", "ans8", "b...512", "z..37", "x+n8": the ISO notation of a spec. */
void iso8583_spec_format(const iso8583_field_spec *s, char *out, size_t outsz);

/* A message. Treat the members as read-only: change them through the functions below. */
typedef struct iso8583_msg {
    const iso8583_dialect *dialect; /* the dialect values were checked against */
    char mti[5];                    /* 4 digits and NUL, when mti_valid */
    uint8_t mti_valid;              /* 1 once the MTI was read or set */
    uint8_t tpdu_len;
    uint8_t header_len;
    uint8_t tpdu[PX_ISO_TPDU_MAX];
    uint8_t header[PX_ISO_HEADER_MAX];
    uint64_t present[2];     /* fields 1-64, 65-128; bit 63 of [0] is field 1 */
    uint64_t wire_bitmap[2]; /* as unpack read it (0 if not read); set/clear zero it */
    uint16_t used;           /* bytes of data in use */
    uint16_t off[PX_ISO_FIELDS + 1];
    uint16_t len[PX_ISO_FIELDS + 1];
    uint8_t data[PX_ISO_DATA_MAX]; /* values, each followed by a NUL */
} iso8583_msg;

/* Start an empty message for dialect d (cheap: touches only the header of the struct). */
void iso8583_msg_init(iso8583_msg *m, const iso8583_dialect *d);

/* Wipe every value (PIN blocks, keys) with OPENSSL_cleanse and empty the message. */
void iso8583_msg_cleanse(iso8583_msg *m);

int iso8583_set_mti(iso8583_msg *m, const char *mti, px_error *e);
int iso8583_set_tpdu(iso8583_msg *m, const uint8_t *tpdu, size_t n, px_error *e);
int iso8583_set_header(iso8583_msg *m, const uint8_t *hdr, size_t n, px_error *e);

/* Set a text field (n, an, ans, z, x+n) after checking its character class and length.
 * A short fixed n value is padded on the left with '0', a short fixed an/ans value on the
 * right with spaces. Errors name the field and the reason; they never quote the value. */
int iso8583_set(iso8583_msg *m, int f, const char *text, px_error *e);
int iso8583_set_n(iso8583_msg *m, int f, const char *text, size_t n, px_error *e);

/* Set a binary (b) field; a fixed one must be exactly its length. */
int iso8583_set_bin(iso8583_msg *m, int f, const uint8_t *p, size_t n, px_error *e);

/* Value of field f: text fields are NUL-terminated, b fields are raw (use *n).
 * PX_ENOTFOUND when absent. */
int iso8583_get(const iso8583_msg *m, int f, const uint8_t **p, size_t *n);
int iso8583_has(const iso8583_msg *m, int f); /* 1 if field f (2..128) is present */
void iso8583_clear(iso8583_msg *m, int f);
int iso8583_next_field(const iso8583_msg *m, int after); /* next present > after, or 0 */

/* Parse one message: buf is everything AFTER the frame length (the network layer strips
 * the 2 bytes), i.e. TPDU + header + MTI + bitmap + fields. Checks every length against
 * the table and the bytes left, every character class, and that nothing trails. On
 * failure e names the part ("MTI", "bitmap", "field 4") and the reason; out->mti_valid
 * tells whether the MTI (and so the TPDU and header before it) could still be read, and
 * the fields before the bad one remain readable for diagnostics. */
int iso8583_unpack(const iso8583_dialect *d, const uint8_t *buf, size_t len, iso8583_msg *out,
                   px_error *e);

/* Write m in dialect d's layout, without the frame length. If m was built for another
 * dialect its values are checked again against d. PX_ETOOBIG if cap is too small. */
int iso8583_pack(const iso8583_dialect *d, const iso8583_msg *m, uint8_t *out, size_t cap,
                 size_t *outlen, px_error *e);

/* Same, preceded by the dialect's binary big-endian frame length (2 bytes for both
 * built-in dialects); *outlen counts the prefix too. */
int iso8583_pack_framed(const iso8583_dialect *d, const iso8583_msg *m, uint8_t *out, size_t cap,
                        size_t *outlen, px_error *e);

/* The bytes a MAC covers in a packed message (from pack, or accepted by unpack) whose last
 * field is the MAC (64, or 128 with a secondary bitmap): from the MTI up to the MAC field,
 * excluding TPDU and header (UnionPay POS: "MTI through field 63"). The 8 MAC bytes are at
 * packed + *off + *n. Pack with a zero MAC, compute it over the span, write it there. */
int iso8583_mac_span(const iso8583_dialect *d, const uint8_t *packed, size_t len, size_t *off,
                     size_t *n, px_error *e);

/* The response MTI of a request or advice: function digit + 1 (0200 -> 0210,
 * 0800 -> 0810, 0420 -> 0430), and a repeat's origin made plain (0421 -> 0430).
 * PX_EINVAL when mti is not 4 digits or is already a response. */
int iso8583_response_mti(const char *mti, char out[5]);

/* Begin the response to req: same dialect, response MTI, TPDU with destination and
 * source addresses swapped (UnionPay: ID, dest 2 bytes, source 2 bytes), header copied. */
int iso8583_msg_response(const iso8583_msg *req, iso8583_msg *rsp, px_error *e);

/* Human-readable value of field f for a display or a log: PAN masked (first 6, last 4),
 * track data masked, PIN/MAC/key fields replaced by "[hidden, N bytes]", binary in hex,
 * bytes outside printable ASCII as \xHH. Always NUL-terminates out (truncates if small). */
void iso8583_field_display(const iso8583_msg *m, int f, char *out, size_t outsz);

/* Append a field-by-field description of m to out (TPDU, header, MTI, bitmap, then each
 * field's number, name, format and display value). */
int iso8583_dump(const iso8583_msg *m, px_buf *out);

#endif
