/* pos_int.h: the terminal agent's inside, shared by the files of src/device/pos only. */
#ifndef PX_DEVICE_POS_INT_H
#define PX_DEVICE_POS_INT_H

#include "device/pos/pos.h"
#include "iso8583/iso8583.h"
#include "net/net.h"

/* Sealed PAN or track 2 as hex: (37 + PINPAD_SEAL_OVERHEAD) * 2 + NUL. */
#define POS_SEALED_HEX (2 * (37 + PINPAD_SEAL_OVERHEAD) + 1)

typedef struct pos_txn {
    char kind; /* 'S', 'M', 'V' */
    char stan[7], rrn[13], auth[7], proc[7];
    int64_t amount_minor;
    char pan_masked[20];
    char sealed_pan[POS_SEALED_HEX]; /* "" for a void */
    int voided;
} pos_txn;

/* What a reversal (0400) repeats of its original (docs/switch-protocol.md, "Reversal"). */
typedef struct pos_reversal {
    int pending;
    char kind;       /* the original's: 'S', 'M', 'V' */
    char reason[3];  /* 98 no answer, A0 answer's MAC bad, 06 other */
    char proc[7];    /* 3 */
    char amount[13]; /* 4 */
    char stan[7];    /* 11: the original's */
    char entry[4];   /* 22 */
    char f60[18];    /* 60 */
    int is_track;    /* sealed holds field 35 (else field 2) */
    char sealed[POS_SEALED_HEX];
    int sends;
} pos_reversal;

typedef struct pos_state {
    uint32_t stan; /* last used, 0..999999 */
    uint32_t batch;
    int signed_on;
    int update_waiting;
    int last_proc_req;
    pos_reversal rev;
    size_t ntxn;
    pos_txn txn[PX_POS_BATCH_MAX];
} pos_state;

struct pos_terminal {
    pos_config cfg;
    pinpad *pp;
    char state_path[PX_PATH_MAX];
    pos_state st;
    int lock_fd;          /* DIR/lock, held (flock) while open */
    net_client *conn;     /* open for the length of one flow */
    void *tls;            /* SSL_CTX when cfg.tls_ca is set */
    iso8583_msg req, rsp; /* scratch: one exchange at a time */
    uint8_t wire[PX_ISO_MSG_MAX];
};

/* state.c */
int pos_state_save(pos_terminal *t, px_error *e);
int pos_state_load(pos_terminal *t, px_error *e);
void pos_state_fresh(pos_state *st);
uint32_t pos_stan_next(pos_state *st); /* 1..999999, then 1 again */
int pos_state_write_batch_file(pos_terminal *t, px_error *e);
int pos_state_encode(const pos_state *st, px_buf *out);
int pos_state_decode(const char *text, size_t n, pos_state *st, px_error *e);

/* msg.c: building, exchanging and checking messages */
enum { POS_NOMAC = 0, POS_MAC = 1 };
int pos_msg_begin(pos_terminal *t, const char *mti, uint32_t stan, px_error *e);
int pos_msg_set(pos_terminal *t, int f, const char *v, px_error *e);
int pos_msg_setf(pos_terminal *t, px_error *e, int f, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int pos_msg_set_card(pos_terminal *t, const pos_card *card, int has_pin, px_error *e);
int pos_msg_set_pin(pos_terminal *t, const uint8_t *pin_block, px_error *e);
/* Send t->req (MACed when mac) and wait for its answer in t->rsp. *sent tells whether the
 * request may have left. PX_ETIMEOUT, PX_ENET, PX_EAUTH (answer's MAC missing or bad),
 * PX_EFORMAT (answer unreadable), or PX_OK with the answer verified. */
int pos_msg_exchange(pos_terminal *t, int mac, int *sent, pos_result *res, px_error *e);
void pos_msg_disconnect(pos_terminal *t);
/* End of a flow: wipe both messages (PAN, PIN block) and hang up; returns rc. */
int pos_msg_end(pos_terminal *t, int rc);
const char *pos_rsp_get(const pos_terminal *t, int f); /* text field of t->rsp, or "" */

/* txn.c */
int pos_prepare_financial(pos_terminal *t, pos_result *res, px_error *e);
void pos_res_refused(pos_result *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pos_res_failed(pos_terminal *t, pos_result *res, int rc, const px_error *why);
void pos_res_answer(pos_terminal *t, pos_result *res);
int pos_txn_financial(pos_terminal *t, char kind, const pos_card *card, pos_result *res,
                      px_error *e);
void pos_mask_pan(const char *pan, char out[20]);

#endif
