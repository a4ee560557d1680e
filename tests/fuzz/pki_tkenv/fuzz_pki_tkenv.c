/*
 * Fuzz the TK envelope parser (src/pki/tkenv.h): the PIN pad's wrapped transmission key as
 * the MTMS and the KMS receive it (seed 001). Whatever parses must re-encode to exactly the
 * bytes its signature covers, and every pointer it returns must lie inside the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pki/tkenv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pki_tkenv env;
    uint8_t *again;
    size_t len = 0;
    if (pki_tkenv_parse(data, size, &env, NULL) != 0)
        return 0;
    if (env.signed_len > size || env.sig < data || env.sig + env.sig_len > data + size ||
        (env.device_cert_len > 0 &&
         (env.device_cert < data || env.device_cert + env.device_cert_len > data + size)))
        abort();
    again = malloc(size + 1);
    if (again == NULL)
        return 0;
    if (pki_tkenv_encode_body(&env, again, size + 1, &len, NULL) != 0 || len != env.signed_len ||
        memcmp(again, data, len) != 0)
        abort(); /* parse and encode disagree: the signature would cover other bytes */
    free(again);
    return 0;
}
