/*
 * fuzz_tms_request: the TMS's parsers of terminal requests: a body as the HTTP layer parses
 * it (net_http_json_parse), then as a check-in and as a report; and a schedule text.
 * Built with POSSUM_FUZZ; seeds in corpus/fuzz_tms_request.
 */
#include "host/tms/tms_int.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    json_t *j = NULL;
    tms_checkin_req c;
    tms_report_req r;
    tms_schedule s;
    char text[80];
    if (net_http_json_parse(data, n, 64 * 1024, &j, NULL) == PX_OK) {
        (void)tms_checkin_parse(j, &c, NULL);
        (void)tms_report_parse(j, &r, NULL);
        json_decref(j);
    }
    if (n < sizeof text) {
        memcpy(text, data, n);
        text[n] = 0;
        if (tms_schedule_parse(text, &s, NULL) == PX_OK)
            (void)tms_schedule_next(&s, "SN0001", 1795310000000LL);
    }
    return 0;
}
