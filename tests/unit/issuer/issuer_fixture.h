/*
 * issuer_fixture.h: what the issuer's tests share. The test plays the switch: it builds
 * ISO 8583:1987 requests (docs/switch-protocol.md §2) and, as the PIN pad and the switch's
 * HSM would, PIN blocks under the demo ZPK, whose public components docs/issuer.md lists.
 */
#ifndef PX_TEST_ISSUER_FIXTURE_H
#define PX_TEST_ISSUER_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "host/issuer/issuer.h"

/* Demo cards (docs/issuer.md). */
#define CARD_ZHANG "6222020000000007"  /* ICBC demo, PVV, PIN 123456, 1,000,000 fen */
#define CARD_LI "6222020000000015"     /* ICBC demo, PVV, PIN 111111, 5,000 fen */
#define CARD_WANG "6217000000000006"   /* CCB demo, IBM 3624, PIN 888888 */
#define CARD_ZHAO "6217000000000014"   /* CCB demo, IBM 3624, PIN 246810, expired 2001 */
#define CARD_QIAN "9558800000000000"   /* not contracted, PIN 123456 */
#define CARD_SUN "6222021234567890128" /* ICBC demo, 19 digits, PIN 654321 */

#define FX_PASSPHRASE "issuer-test-passphrase"

/* Create a soft LMK (cheap scrypt) in dir/var/lmk.bin and point cfg at it and at
 * dir/var/hsm-audit.log; sets POSSUM_LMK_PASSPHRASE for this process and its children. */
void fx_lmk_init(const char *dir, hsm_config *cfg);

/* The demo ZPK in the clear (XOR of its components): what the test's "PIN pad" uses. */
void fx_demo_zpk(uint8_t out[16]);

/* A format 0 PIN block for pin/pan under the demo ZPK. */
void fx_pin_block(const char *pin, const char *pan, uint8_t out[8]);

/* A request as the switch sends it. mti "0200", "0220", "0420", "0421", "0800"; proc the
 * processing code (NULL: none); amount < 0: no field 4; pin NULL: no field 52. */
typedef struct fx_req {
    const char *mti, *proc, *pan;
    int64_t amount;
    const char *stan, *tx_time, *rrn, *pin;
    const char *f48, *f90, *f103, *f70;
    const char *f39; /* a reversal's reason */
} fx_req;

void fx_build(iso8583_msg *m, const fx_req *r);

/* Pack m (no frame length) into out. */
size_t fx_pack(const iso8583_msg *m, uint8_t *out, size_t cap);

/* Field f of m as text ("" when absent). */
const char *fx_field(const iso8583_msg *m, int f);

/* Field 90 for an original (0200 with stan and tx_time, acquirer 12345678). */
void fx_f90(const char *mti, const char *stan, const char *tx_time, char out[43]);

#define FX_ACQUIRER "12345678"
#define FX_TX_TIME "1122101530"

#endif
