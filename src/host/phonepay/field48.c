/*
 * mobile_cn.c: field 48 of the mobile-number payment messages (docs/switch-protocol.md).
 * The mobile-number rule itself is lib/mobile_cn.h, shared with the terminal.
 */
#include "host/phonepay/phonepay.h"
#include "lib/mobile_cn.h"
#include "lib/str.h"

#include <string.h>

int phonepay_field48_parse(const char *f48, size_t len, int with_reference, phonepay_field48 *out,
                           px_error *e)
{
    size_t want = 2 * PHONEPAY_MOBILE_LEN + (with_reference ? PHONEPAY_REF_LEN : 0);
    memset(out, 0, sizeof *out);
    if (f48 == NULL || len != want)
        return px_error_set(e, PX_EFORMAT, "field 48: expected %zu digits, got %zu", want,
                            f48 == NULL ? (size_t)0 : len);
    if (!px_is_digits(f48, len))
        return px_error_set(e, PX_EFORMAT, "field 48: digits only");
    memcpy(out->payee_mobile, f48, PHONEPAY_MOBILE_LEN);
    memcpy(out->payer_mobile, f48 + PHONEPAY_MOBILE_LEN, PHONEPAY_MOBILE_LEN);
    if (with_reference)
        memcpy(out->reference, f48 + 2 * PHONEPAY_MOBILE_LEN, PHONEPAY_REF_LEN);
    return PX_OK;
}
