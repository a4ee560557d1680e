/* mtms_int.h: the MTMS's inside, shared by its files only. */
#ifndef PX_HOST_MTMS_INT_H
#define PX_HOST_MTMS_INT_H

#include "host/mtms/mtms.h"

#define MTMS_MOD "mtms"

struct mtms {
    store *st;
    const pki_trust *trust;
};

/* One audit row. Never fails the caller: a row that cannot be written is logged. */
void mtms_audit(mtms *m, const char *actor, const char *action, const char *serial,
                const char *customer, int ok, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

#endif
