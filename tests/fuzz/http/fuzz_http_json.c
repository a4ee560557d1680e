/*
 * fuzz_http_json: the request-body path of every JSON route: net_http_json_parse() on any
 * bytes, then the error body the server would send for a failure (it must always be the
 * one error shape, whatever bytes the parser's message echoes), or a round trip of a
 * parsed object.
 */
#include "net/http.h"
#include "net/http_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *obj = NULL, *back;
    px_error e = {0};
    char *text;
    int rc = net_http_json_parse(data, size, 64 * 1024, &obj, &e);
    if (rc != PX_OK) {
        if (obj != NULL || e.msg[0] == 0)
            abort();
        text = http_error_body(400, "bad_json", e.msg);
        if (text == NULL)
            abort();
        back = json_loads(text, 0, NULL);
        if (!json_is_object(json_object_get(back, "error")))
            abort();
        json_decref(back);
        free(text);
        return 0;
    }
    if (!json_is_object(obj))
        abort();
    text = json_dumps(obj, JSON_COMPACT);
    if (text != NULL) {
        json_t *again = NULL;
        if (net_http_json_parse(text, strlen(text), SIZE_MAX, &again, NULL) != PX_OK ||
            !json_equal(obj, again))
            abort();
        json_decref(again);
        free(text);
    }
    json_decref(obj);
    return 0;
}
