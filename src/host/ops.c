/*
 * ops.c: operator endpoints every possumd serves on its [http] listener, beside /healthz
 * and /metrics:
 *   POST /v1/iso8583/decode  {"dialect":"unionpay"|"iso1987","hex":"..."}
 *     -> 200 {"mti":"0200","fields":[{"field":2,"name":"...","value":"622202*****0123"}]}
 *     -> 422 {"error":{... "code":"bad_message","message":"field 4: ..."}} when it does not parse
 * Values are shown as `possum iso8583 dump` shows them: PAN and tracks masked, PIN, MAC and
 * key fields hidden.
 */
#include "host/service.h"
#include "iso8583/iso8583.h"
#include "lib/hex.h"

#include <string.h>

static json_t *fields_json(const iso8583_msg *m)
{
    json_t *arr = json_array();
    char shown[2 * PX_ISO_FIELD_MAX + 64];
    for (int f = iso8583_next_field(m, 1); arr != NULL && f != 0; f = iso8583_next_field(m, f)) {
        const iso8583_field_spec *spec = iso8583_field_spec_of(m->dialect, f);
        iso8583_field_display(m, f, shown, sizeof shown);
        json_array_append_new(arr,
                              json_pack("{s:i,s:s,s:s}", "field", f, "name",
                                        spec && spec->name ? spec->name : "?", "value", shown));
    }
    return arr;
}

static void on_decode(net_http_req *req, void *user)
{
    uint8_t raw[PX_ISO_MSG_MAX];
    json_t *body = NULL;
    const char *hex, *dialect_name = "unionpay";
    const iso8583_dialect *d;
    iso8583_msg m;
    size_t n;
    px_error e = {0};
    if (net_http_body_json(req, &body, &e) != PX_OK) {
        net_http_reply_error(req, 400, "bad_json", "%s", e.msg);
        return;
    }
    hex = json_string_value(json_object_get(body, "hex"));
    if (json_is_string(json_object_get(body, "dialect")))
        dialect_name = json_string_value(json_object_get(body, "dialect"));
    d = iso8583_dialect_find(dialect_name);
    if (d == NULL)
        net_http_reply_error(req, 400, "bad_request", "dialect: '%.32s' is not unionpay or iso1987",
                             dialect_name);
    else if (hex == NULL)
        net_http_reply_error(req, 400, "bad_request", "hex: required, a string of hex digits");
    else if (px_hex_decode(hex, raw, sizeof raw, &n) != PX_OK)
        net_http_reply_error(req, 400, "bad_request", "hex: odd length, not hex, or over %d bytes",
                             PX_ISO_MSG_MAX);
    else if (iso8583_unpack(d, raw, n, &m, &e) != PX_OK)
        net_http_reply_error(req, 422, "bad_message", "%s", e.msg);
    else
        net_http_reply_json(req, 200,
                            json_pack("{s:s,s:s,s:o}", "dialect", d->name, "mti", m.mti, "fields",
                                      fields_json(&m)));
    json_decref(body);
}

int px_ops_routes(px_daemon *d, px_error *e)
{
    return net_http_route(d->http, "POST", "/v1/iso8583/decode", on_decode, d, e);
}
