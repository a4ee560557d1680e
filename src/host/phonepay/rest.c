/*
 * rest.c: the payee REST API ([0038]: the payee interface unit's data interface), on its own
 * listener ([phonepay] api_listen, TLS / mutual TLS through the api_tls_* keys). JSON in and
 * out, errors in the net/http.h shape; docs/openapi/phonepay.yaml is the contract.
 * Card numbers arrive here in the clear and leave only masked; the request's copy is wiped.
 */
#include "host/phonepay/phonepay_int.h"
#include "host/service.h"
#include "lib/log.h"
#include "lib/str.h"
#include "net/http.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

struct phonepay_rest {
    phonepay *pp;
    net_http_server *srv;
};

/* Wipe a JSON string in place (the card number a client sent) before it is freed. */
static void wipe_string(json_t *v)
{
    if (json_is_string(v))
        OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
}

/* The body as an object holding only the given string keys (all required). */
static int body_fields(net_http_req *req, json_t **j, const char *const *keys, size_t n,
                       const char **vals, px_error *e)
{
    const char *k;
    json_t *v;
    int rc = net_http_body_json(req, j, e);
    if (rc != PX_OK)
        return rc;
    json_object_foreach (*j, k, v) {
        size_t i = 0;
        while (i < n && strcmp(keys[i], k) != 0)
            i++;
        if (i == n)
            return px_error_set(e, PX_EINVAL, "%s: unknown field", k);
    }
    for (size_t i = 0; i < n; i++) {
        v = json_object_get(*j, keys[i]);
        if (!json_is_string(v))
            return px_error_set(e, PX_EINVAL, "%s: required (a string)", keys[i]);
        vals[i] = json_string_value(v);
    }
    return PX_OK;
}

static void free_body(json_t *j, const char *card_key)
{
    if (j != NULL && card_key != NULL)
        wipe_string(json_object_get(j, card_key));
    json_decref(j);
}

static void reply_error(net_http_req *req, int rc, const px_error *e)
{
    if (rc == PX_EFORMAT)
        rc = PX_EINVAL;
    if (rc == PX_EAUTH)
        (void)net_http_add_header(req, "WWW-Authenticate", "Bearer");
    net_http_reply_px_error(req, rc, e);
}

static json_t *view_json(const phonepay_payee_view *v)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "mobile", v->mobile, "name", v->name,
                          "status", v->status, "card", v->card_masked, "created_ms",
                          (json_int_t)v->created_ms, "updated_ms", (json_int_t)v->updated_ms);
    if (o != NULL && v->pending_card_masked[0])
        json_object_set_new(o, "pending_card", json_string(v->pending_card_masked));
    if (o != NULL && v->otp_expires_ms > 0)
        json_object_set_new(o, "code_expires_ms", json_integer((json_int_t)v->otp_expires_ms));
    return o;
}

/* POST /v1/payees {name, mobile, card} -> 202, a code is sent to the number. */
static void on_register(net_http_req *req, void *user)
{
    phonepay_rest *r = user;
    static const char *const keys[] = {"name", "mobile", "card"};
    const char *vals[3];
    phonepay_payee_view v;
    json_t *j = NULL;
    px_error e = {0};
    int rc = body_fields(req, &j, keys, 3, vals, &e);
    if (rc == PX_OK)
        rc = phonepay_payee_register(r->pp, vals[0], vals[1], vals[2], &v, &e);
    free_body(j, "card");
    if (rc != PX_OK) {
        reply_error(req, rc, &e);
        return;
    }
    net_http_reply_json(req, 202, view_json(&v));
}

/* The {mobile} segment of /v1/payees/{mobile}[/...]; replies 404 when the path is longer
 * than want segments. */
static const char *mobile_of(net_http_req *req, size_t want)
{
    if (net_http_segment_count(req) != want) {
        net_http_reply_error(req, 404, "not_found", "no such resource");
        return NULL;
    }
    return net_http_segment(req, 2);
}

/* POST /v1/payees/{mobile}/confirm {code} -> 200 with a bearer token. */
static void on_confirm(net_http_req *req, void *user)
{
    phonepay_rest *r = user;
    static const char *const keys[] = {"code"};
    const char *vals[1], *mobile = mobile_of(req, 4);
    char token[2 * PHONEPAY_TOKEN_LEN + 1];
    phonepay_payee_view v;
    json_t *j = NULL, *o;
    px_error e = {0};
    int rc;
    if (mobile == NULL)
        return;
    rc = body_fields(req, &j, keys, 1, vals, &e);
    if (rc == PX_OK)
        rc = phonepay_payee_confirm(r->pp, mobile, vals[0], &v, token, &e);
    free_body(j, "code");
    if (rc != PX_OK) {
        reply_error(req, rc, &e);
        return;
    }
    o = view_json(&v);
    if (o != NULL) {
        json_object_set_new(o, "token", json_string(token));
        json_object_set_new(o, "token_expires_in_ms",
                            json_integer((json_int_t)r->pp->cfg.session_ttl_ms));
    }
    OPENSSL_cleanse(token, sizeof token);
    net_http_reply_json(req, 200, o);
}

/* PUT /v1/payees/{mobile}/card {card} -> 202; the card changes once the code is confirmed. */
static void on_card(net_http_req *req, void *user)
{
    phonepay_rest *r = user;
    static const char *const keys[] = {"card"};
    const char *vals[1], *mobile = mobile_of(req, 4);
    phonepay_payee_view v;
    json_t *j = NULL;
    px_error e = {0};
    int rc;
    if (mobile == NULL)
        return;
    rc = body_fields(req, &j, keys, 1, vals, &e);
    if (rc == PX_OK)
        rc = phonepay_payee_card_update(r->pp, mobile, vals[0], &v, &e);
    free_body(j, "card");
    if (rc != PX_OK) {
        reply_error(req, rc, &e);
        return;
    }
    net_http_reply_json(req, 202, view_json(&v));
}

/* POST /v1/payees/{mobile}/login -> 202: a code to confirm for a bearer token. */
static void on_login(net_http_req *req, void *user)
{
    phonepay_rest *r = user;
    const char *mobile = mobile_of(req, 4);
    phonepay_payee_view v;
    px_error e = {0};
    int rc;
    if (mobile == NULL)
        return;
    rc = phonepay_payee_login(r->pp, mobile, &v, &e);
    if (rc != PX_OK) {
        reply_error(req, rc, &e);
        return;
    }
    net_http_reply_json(req, 202,
                        json_pack("{s:s, s:I}", "mobile", v.mobile, "code_expires_ms",
                                  (json_int_t)v.otp_expires_ms));
}

/* GET /v1/payees/{mobile} with "Authorization: Bearer <token>" -> the payee, card masked. */
static void on_get(net_http_req *req, void *user)
{
    phonepay_rest *r = user;
    const char *mobile = mobile_of(req, 3), *auth;
    phonepay_payee_view v;
    px_error e = {0};
    int rc;
    if (mobile == NULL)
        return;
    auth = net_http_header(req, "Authorization");
    rc = phonepay_session_check(r->pp, mobile,
                                auth != NULL && strncmp(auth, "Bearer ", 7) == 0 ? auth + 7 : NULL,
                                &e);
    if (rc == PX_OK)
        rc = phonepay_payee_get(r->pp, mobile, &v, &e);
    if (rc != PX_OK) {
        reply_error(req, rc, &e);
        return;
    }
    net_http_reply_json(req, 200, view_json(&v));
}

int phonepay_rest_start(phonepay *pp, struct event_base *base, const char *announce_as,
                        void *daemon, phonepay_rest **out, px_error *e)
{
    static const struct {
        const char *method, *pattern;
        net_http_handler h;
    } routes[] = {
        {"POST", "/v1/payees", on_register},      {"POST", "/v1/payees/*/confirm", on_confirm},
        {"POST", "/v1/payees/*/login", on_login}, {"PUT", "/v1/payees/*/card", on_card},
        {"GET", "/v1/payees/*", on_get},
    };
    phonepay_rest *r = calloc(1, sizeof *r);
    int rc;
    *out = NULL;
    if (r == NULL)
        return px_error_set(e, PX_ENOMEM, "phonepay: out of memory");
    r->pp = pp;
    rc = net_http_server_new(base, &pp->cfg.api, &r->srv, e);
    for (size_t i = 0; rc == PX_OK && i < sizeof routes / sizeof routes[0]; i++)
        rc = net_http_route(r->srv, routes[i].method, routes[i].pattern, routes[i].h, r, e);
    if (rc == PX_OK && daemon != NULL)
        rc = px_daemon_announce(daemon, announce_as, pp->cfg.api.listen,
                                net_http_server_port(r->srv));
    if (rc != PX_OK) {
        phonepay_rest_free(r);
        return px_error_prefix(e, "phonepay: api: ");
    }
    *out = r;
    return PX_OK;
}

void phonepay_rest_free(phonepay_rest *r)
{
    if (r == NULL)
        return;
    net_http_server_free(r->srv);
    free(r);
}
