/*
 * fakeswitch.h: a small transaction platform for the terminal's tests, speaking
 * docs/switch-protocol.md section 1 over a real framed TCP listener (net_frame_server on
 * its own event-loop thread). It knows one terminal, delivers work keys under a known TMK,
 * MACs its answers, and can be told to misbehave: drop answers, spoil MACs, decline.
 */
#ifndef PX_TEST_FAKESWITCH_H
#define PX_TEST_FAKESWITCH_H

#include <pthread.h>
#include <stdint.h>
#include "iso8583/iso8583.h"
#include "net/net.h"

#define FS_TMK_HEX "70F2A84CCBC2AE8625CBB0F2C22AB923"
#define FS_C1_HEX "0123456789ABCDEFFEDCBA9876543210" /* TMK component 1 (KCV 08D7B4) */
#define FS_PIK_HEX "0123456789ABCDEFFEDCBA9876543210"
#define FS_MAK_HEX "C24A8FB57AA20123C24A8FB57AA20123"
#define FS_TDK_HEX "F1E2D3C4B5A697880011223344556677"
#define FS_PAYEE "13800138000"                    /* the one registered payee */
#define FS_PAYEE_NAME "\xE5\xBC\xA0*\xE4\xB8\x89" /* 张*三 */
#define FS_LOOKUP_REF "000000000123"

typedef struct fake_switch {
    struct event_base *base;
    net_frame_server *srv;
    pthread_t thread;
    pthread_mutex_t mu;
    int port;
    /* behaviour (set under mu, or before the terminal talks) */
    int drop;           /* leave this many matching requests unanswered */
    char drop_mti[5];   /* ... with this MTI ("" = any) */
    int spoil_mac;      /* spoil the MAC of this many answers */
    char decline[3];    /* answer financial requests with this code ("" = 00) */
    int proc_req;       /* processing requirement nibble on every answer */
    char settle_result; /* '1' balanced, '2' not */
    int spoil_cv;       /* spoil the TDK's check value at sign-on */
    /* what it saw */
    char seen[512];       /* MTIs in order: "0800 0200 0400 " */
    int bad_mac_requests; /* requests whose MAC did not verify */
    int upload_entries;
    iso8583_msg last[8]; /* last request per kind: see fs_last() */
    uint32_t batch;
    int rrn;
} fake_switch;

enum { FS_0800, FS_0820, FS_0200, FS_0400, FS_0500, FS_0320, FS_0100, FS_OTHER };

int fs_start(fake_switch *fs);
void fs_stop(fake_switch *fs);
/* Copy of the last request of a kind (FS_*), taken under the lock. */
void fs_last(fake_switch *fs, int kind, iso8583_msg *out);
/* Number of times mti appears in seen. */
int fs_count(fake_switch *fs, const char *mti);
void fs_hex(const char *hex, uint8_t *out, size_t n);

#endif
