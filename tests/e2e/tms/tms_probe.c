/*
 * tms_probe.c: a terminal that misbehaves on purpose, for the TMS's security tests. It runs
 * the claim-4 exchange against a live TMS with a DMK it opens from a provisioning block, and
 * then replays its SAC, or sends a wrong one while claiming TAC matched, or prints the bearer
 * token it got (to send malformed requests with). Prints each answer's status and message,
 * one per line:
 *   tms_probe HOST PORT SERIAL DMK_BLOCK KBPK_COMPONENT1,KBPK_COMPONENT2 replay|bad-sac|token
 */
#include "crypto/crypto.h"
#include "crypto/tr31.h"
#include "device/tmsclient/tmsc_int.h"
#include "lib/hex.h"
#include "lib/str.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t zero_iv[8];

static int post(tmsc_http *h, const char *path, const char *body, tmsc_resp *r, json_t **j)
{
    px_error e = {0};
    tmsc_resp_init(r);
    *j = NULL;
    if (tmsc_http_request(h, "POST", path, NULL, body, strlen(body), -1, 0, r, &e) != PX_OK) {
        printf("error %s\n", px_error_text(&e));
        return -1;
    }
    if (tmsc_resp_json(r, j, &e) != PX_OK)
        printf("%d %s\n", r->status, e.msg);
    else
        printf("%d ok\n", r->status);
    return 0;
}

static int hex16(json_t *j, const char *k, uint8_t out[16])
{
    size_t n = 0;
    const char *s = json_string_value(json_object_get(j, k));
    return s != NULL && px_hex_decode(s, out, 16, &n) == PX_OK && n == 16;
}

int main(int argc, char **argv)
{
    tmsc_config c;
    tmsc_http *h = NULL;
    tmsc_resp r;
    json_t *j = NULL;
    crypto_tr31_header hdr;
    uint8_t kbpk[16], k2[16], dmk[64], dwk1[16], dwk[16], s_data[16], sac[16];
    char body[512], path[64], sachex[33], session[40];
    size_t n = 0;
    px_error e = {0};
    if (argc != 7) {
        fprintf(stderr,
                "usage: tms_probe HOST PORT SERIAL DMK_BLOCK KBPK1,KBPK2 replay|bad-sac|token\n");
        return 2;
    }
    tmsc_config_defaults(&c, "/nonexistent");
    px_strlcpy(c.host, argv[1], sizeof c.host);
    c.port = strtol(argv[2], NULL, 10);
    if (strlen(argv[5]) != 65 || argv[5][32] != ',' ||
        px_hex_decode_n(argv[5], 32, kbpk, sizeof kbpk, &n) != PX_OK ||
        px_hex_decode(argv[5] + 33, k2, sizeof k2, &n) != PX_OK) {
        fprintf(stderr, "tms_probe: KBPK: two components of 32 hex digits\n");
        return 2;
    }
    for (int i = 0; i < 16; i++)
        kbpk[i] ^= k2[i];
    if (crypto_tr31_unwrap(kbpk, 16, argv[4], strlen(argv[4]), &hdr, dmk, sizeof dmk, &n, &e) !=
            PX_OK ||
        tmsc_http_open(&c, &h, &e) != PX_OK) {
        fprintf(stderr, "tms_probe: %s\n", px_error_text(&e));
        return 1;
    }
    snprintf(body, sizeof body,
             "{\"serial\":\"%s\",\"t_data\":\"00112233445566778899AABBCCDDEEFF\"}", argv[3]);
    if (post(h, "/v1/sessions", body, &r, &j) != 0 || r.status != 201 || !hex16(j, "dwk", dwk1) ||
        !hex16(j, "s_data", s_data) ||
        px_strlcpy(session,
                   json_string_value(json_object_get(j, "session"))
                       ? json_string_value(json_object_get(j, "session"))
                       : "",
                   sizeof session) != PX_OK)
        return 1;
    json_decref(j);
    tmsc_resp_free(&r);
    crypto_decrypt(CRYPTO_TDES, CRYPTO_ECB, dmk, 16, NULL, dwk1, 16, dwk, NULL);
    crypto_encrypt(CRYPTO_TDES, CRYPTO_CBC, dwk, 16, zero_iv, s_data, 16, sac, NULL);
    if (strcmp(argv[6], "bad-sac") == 0)
        sac[0] ^= 1;
    px_hex_encode(sac, 16, sachex);
    snprintf(path, sizeof path, "/v1/sessions/%s", session);
    snprintf(body, sizeof body, "{\"serial\":\"%s\",\"sac\":\"%s\",\"tac_ok\":true}", argv[3],
             sachex);
    for (int i = 0; i < (strcmp(argv[6], "replay") == 0 ? 2 : 1); i++) {
        post(h, path, body, &r, &j);
        if (strcmp(argv[6], "token") == 0 && json_string_value(json_object_get(j, "token")) != NULL)
            printf("token %s\n", json_string_value(json_object_get(j, "token")));
        json_decref(j);
        tmsc_resp_free(&r);
    }
    tmsc_http_close(h);
    return 0;
}
