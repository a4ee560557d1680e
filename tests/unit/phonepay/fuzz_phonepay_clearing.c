/* fuzz_phonepay_clearing: the clearing-file parser, payee names and their masking, field 48.
 * Built with POSSUM_FUZZ (tests/unit/phonepay/CMakeLists.txt); seeds: any clearing file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/phonepay/phonepay_int.h"
#include "host/phonepay/phonepay_recon.h"
#include "lib/mobile_cn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    phonepay_clearing c;
    phonepay_field48 f;
    char *s, masked[PHONEPAY_NAME_MAX];
    if (phonepay_clearing_parse((const char *)data, size, "2026-03-01", &c, NULL) == PX_OK)
        phonepay_clearing_free(&c);
    (void)phonepay_field48_parse((const char *)data, size, size == 34, &f, NULL);
    (void)px_mobile_cn_is_valid((const char *)data, size, NULL);
    if (size > 4096 || (s = malloc(size + 1)) == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;
    if (phonepay_name_is_valid(s, NULL))
        (void)phonepay_name_mask(s, masked, sizeof masked);
    (void)phonepay_name_mask(s, masked, sizeof masked); /* also on names it refuses */
    free(s);
    return 0;
}
