/* fuzz_switch_request: any bytes as a terminal frame: the codec, then the switch's own
 * parser (sw_req_parse) must refuse or accept without a crash or a leak. */
#include "host/switch/sw_int.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sw_req *r = calloc(1, sizeof *r);
    px_error e = {0};
    if (r == NULL)
        return 0;
    if (iso8583_unpack(&iso8583_unionpay_pos, data, size, &r->msg, &e) == PX_OK) {
        r->raw = data;
        r->rawlen = size;
        (void)sw_req_parse(r, &e);
    }
    free(r);
    return 0;
}
