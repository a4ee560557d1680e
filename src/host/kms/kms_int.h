/* kms_int.h: the KMS's inside, shared by its files only. */
#ifndef PX_HOST_KMS_INT_H
#define PX_HOST_KMS_INT_H

#include "host/kms/kms.h"

#define KMS_MOD "kms"
#define KMS_ALLOWED_MAX 8

struct kms {
    kms_config cfg;
    store *st;
    hsm *h;
    hsm_key *recv;
    pki_trust *trust;
    pki_cert_info recv_cert;
    char allowed[KMS_ALLOWED_MAX][PX_PKI_CN_MAX];
    size_t nallowed;
    unsigned challenges; /* issued since start: the sweep of spent ones runs every 256 */
};

/* One audit row (outside or inside the caller's transaction). Never fails the caller: an
 * audit row that cannot be written is logged as an error. */
void kms_audit(kms *k, const char *actor, const char *action, const char *serial, int ok,
               const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif
