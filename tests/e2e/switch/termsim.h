/*
 * termsim.h: a simulated UnionPay POS terminal for the switch's end-to-end tests and for
 * bench/switch-load: it builds requests exactly as docs/switch-protocol.md section 1 says
 * (TPDU, header, field 60, PIN block under the PIK, MAC under the MAK), installs the work
 * keys of a sign-on (field 62, checking each check value) and checks response MACs. It
 * holds its keys in the clear, as a PIN pad does; it is a test device, not a product.
 * Message building is separate from I/O, so a load generator can drive many at once.
 */
#ifndef PX_TERMSIM_H
#define PX_TERMSIM_H

#include <stddef.h>
#include <stdint.h>

#include "iso8583/iso8583.h"
#include "lib/err.h"
#include "net/net.h"

typedef struct termsim {
    char tid[9], mid[16];
    uint8_t tmk[16];
    uint8_t pik[16], mak[16], tdk[16];
    int signed_on;
    int64_t batch;
    unsigned stan;
    int header_flag; /* processing requirement of the last response */
    net_client *c;   /* blocking connection (tests); NULL for the bench */
} termsim;

/* A terminal with its TMK given as two components (hex). */
int termsim_init(termsim *t, const char *tid, const char *mid, const char *comp1, const char *comp2,
                 px_error *e);

/* The next STAN (6 digits) into out. */
void termsim_next_stan(termsim *t, char out[7]);

/* Begin a request: TPDU, header, MTI, 11 = stan, 41, 42, 60 = type + batch + nmi. */
void termsim_begin(termsim *t, iso8583_msg *m, const char *mti, const char *stan,
                   const char *f60_type, const char *nmi);

/* Fields of a card payment: 2 (PAN), 3, 4 (amount; < 0 = none), 22, 25, 49 and, when pin is
 * not NULL, 26, 52 (format 0 under the PIK) and 53. */
int termsim_card(termsim *t, iso8583_msg *m, const char *proc, const char *pan, int64_t amount,
                 const char *pin, px_error *e);

/* Pack m (framed: 2-byte length first); with mac, field 64 is computed under the MAK. */
int termsim_pack(termsim *t, const iso8583_msg *m, int mac, uint8_t *out, size_t cap, size_t *n,
                 px_error *e);

/* Unpack a response (without its frame length) and, when it carries one, check its MAC:
 * PX_EAUTH if wrong. Records the header's processing requirement. */
int termsim_unpack(termsim *t, const uint8_t *in, size_t n, iso8583_msg *rsp, px_error *e);

/* Install the work keys of a sign-on answer: field 62 decrypted under the TMK, each check
 * value compared (4 bytes; the PIK's first pik_cv_bytes), batch from 60.2. */
int termsim_install_keys(termsim *t, const iso8583_msg *rsp, size_t pik_cv_bytes, px_error *e);

/* Bytes of the PIK's check value checked at sign-on (all three keys carry 4). */
#define TERMSIM_PIK_CV_BYTES 4

/* Field 39 of rsp ("" when absent). */
const char *termsim_rc(const iso8583_msg *rsp);

/* ---- blocking helpers for tests ---- */

int termsim_connect(termsim *t, int port, px_error *e);
void termsim_close(termsim *t);
/* Send m (MACed when mac) and wait for one answer. PX_ETIMEOUT when none came. */
int termsim_exchange(termsim *t, const iso8583_msg *m, int mac, iso8583_msg *rsp,
                     int64_t timeout_ms, px_error *e);
/* Send raw already-packed bytes and wait for one answer. */
int termsim_exchange_raw(termsim *t, const uint8_t *out, size_t n, iso8583_msg *rsp,
                         int64_t timeout_ms, px_error *e);
int termsim_signon(termsim *t, iso8583_msg *rsp, px_error *e);

#endif
