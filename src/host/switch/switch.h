/*
 * switch.h: the transaction platform's published interface (ARCHITECTURE: other services
 * talk to the switch only through this header or the store). See docs/switch.md.
 *
 *   - the terminal and merchant registry (`possum terminal add|set-tmk|list|show`);
 *   - the "update waiting" flag the TMS sets on a terminal: the switch puts processing
 *     requirement 6 into the header of that terminal's next responses until it is cleared
 *     (docs/switch-protocol.md section 1, seed 000 claims 3 and 8).
 * The ledger's reports are in host/switch/ledger.h.
 */
#ifndef PX_HOST_SWITCH_H
#define PX_HOST_SWITCH_H

#include <stddef.h>
#include <stdint.h>

#include "hsm/hsm.h"
#include "lib/config.h"
#include "lib/err.h"
#include "store/store.h"

/* UnionPay field 39 response codes the switch sends (docs/switch-protocol.md). */
#define SWITCH_RC_APPROVED "00"
#define SWITCH_RC_INVALID_MERCHANT "03"
#define SWITCH_RC_DO_NOT_HONOUR "05"
#define SWITCH_RC_INVALID_TXN "12"
#define SWITCH_RC_INVALID_AMOUNT "13"
#define SWITCH_RC_NO_ISSUER "15"
#define SWITCH_RC_ORIG_NOT_FOUND "25"
#define SWITCH_RC_FORMAT_ERROR "30"
#define SWITCH_RC_NOT_SUPPORTED "40"
#define SWITCH_RC_INCORRECT_PIN "55"
#define SWITCH_RC_AMOUNT_LIMIT "61"
#define SWITCH_RC_NOT_SIGNED_ON "77"
#define SWITCH_RC_PROVIDER_DOWN "91"
#define SWITCH_RC_DUPLICATE "94"
#define SWITCH_RC_SYSTEM_ERROR "96"
#define SWITCH_RC_UNKNOWN_TERMINAL "97"
#define SWITCH_RC_MAC_ERROR "A0"

/* Field 60.3 network management information codes (UnionPay POS). */
#define SWITCH_NMI_SIGNON "003"
#define SWITCH_NMI_SIGNOFF "002"
#define SWITCH_NMI_ECHO "301"
#define SWITCH_NMI_SETTLE "201"
#define SWITCH_NMI_UPLOAD_LAST "202"

/* Processing requirement (low nibble of the header's third byte) in a response. */
#define SWITCH_PR_NONE 0
#define SWITCH_PR_SIGN_ON 3
#define SWITCH_PR_UPDATE_WAITING 6

/* Key attributes the switch gives the keys it keeps (docs/switch.md, "Keys"). */
extern const hsm_key_attrs switch_tmk_attrs; /* K0, TDES 16, E, exportable N */

/* The HSM settings the switch uses: [hsm] when the file has it (else the defaults), then
 * the [switch] keys hsm_backend, hsm_lmk_file, hsm_audit_file, hsm_pkcs11_module,
 * hsm_pkcs11_token, hsm_pkcs11_key. For possumd and the `possum terminal` commands. */
int switch_hsm_config_bind(px_config *c, hsm_config *out, px_error *e);

/* ---- the registry ---- */

typedef struct switch_terminal_info {
    char tid[9];  /* 8 characters (ans) */
    char mid[16]; /* 15 characters (ans) */
    char name[65];
    char tmk_kcv[PX_HSM_KCV_HEX_MAX];
    char status[12]; /* "active" */
    int update_waiting;
    int signed_on;
    int64_t batch_no; /* the current (last opened) batch */
    int batch_open;
    char batch_date[9];
    int64_t key_version;
    int64_t signon_ms, created_ms;
} switch_terminal_info;

/* TID: 8 printable ASCII characters; MID: 15. */
int switch_tid_is_valid(const char *tid);
int switch_mid_is_valid(const char *mid);

/* Register a terminal whose TMK is the key block tmk_block (under this LMK, usage K0).
 * PX_EEXIST if the TID is taken. */
int switch_terminal_add(store *st, hsm *h, const char *tid, const char *mid, const char *name,
                        const char *tmk_block, px_error *e);

/* Form the TMK in the HSM from 2 or 3 clear components (hex, each checked against its KCV
 * when one is given: dual control) and register the terminal with it. kcv receives the
 * TMK's check value. */
int switch_terminal_add_components(store *st, hsm *h, const char *tid, const char *mid,
                                   const char *name, const hsm_component *c, size_t n,
                                   char kcv[PX_HSM_KCV_HEX_MAX], px_error *e);

/* Re-key a registered terminal: its TMK becomes tmk_block (under this LMK, a TDES K0; else
 * PX_EPERM, or the HSM's refusal) and, in the same store transaction, its session ends
 * (signed off, work keys dropped, key version + 1: its next request gets 77 and it must sign
 * on again, getting work keys under the new TMK). Its batch is left as it is. kcv receives
 * the new TMK's check value. PX_ENOTFOUND if the TID is unknown (nothing changed). */
int switch_terminal_set_tmk(store *st, hsm *h, const char *tid, const char *tmk_block,
                            char kcv[PX_HSM_KCV_HEX_MAX], px_error *e);

/* The same with the TMK formed from 2 or 3 clear components, as for
 * switch_terminal_add_components (nothing is formed for an unknown TID). */
int switch_terminal_set_tmk_components(store *st, hsm *h, const char *tid, const hsm_component *c,
                                       size_t n, char kcv[PX_HSM_KCV_HEX_MAX], px_error *e);

/* One terminal (PX_ENOTFOUND if unknown). */
int switch_terminal_get(store *st, const char *tid, switch_terminal_info *out, px_error *e);

/* Every terminal in TID order; fn returning non-zero stops (and is returned). */
int switch_terminal_list(store *st, int (*fn)(void *ud, const switch_terminal_info *t), void *ud,
                         px_error *e);

/* Set (on = 1) or clear (on = 0) the "update waiting" flag of a terminal, in the store, so
 * every node sees it: a node re-reads a terminal at most [switch] cache_ttl_ms after its
 * last read, and the node this is called in (from its event-loop thread) at once.
 * PX_ENOTFOUND if the terminal is unknown. */
int switch_terminal_set_update_waiting(store *st, const char *tid, int on, px_error *e);

#endif
