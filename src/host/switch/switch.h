/*
 * switch.h: the transaction platform's published interface (ARCHITECTURE: other services
 * talk to the switch only through this header or the store).
 */
#ifndef PX_HOST_SWITCH_H
#define PX_HOST_SWITCH_H

/* UnionPay field 39 response codes the switch sends (docs/switch.md). */
#define SWITCH_RC_APPROVED        "00"
#define SWITCH_RC_FORMAT_ERROR    "30"
#define SWITCH_RC_NOT_SUPPORTED   "40"

/* Field 60.3 network management information codes (UnionPay POS). */
#define SWITCH_NMI_ECHO           "301"

#endif
