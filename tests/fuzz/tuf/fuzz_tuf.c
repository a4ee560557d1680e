/*
 * fuzz_tuf: every parser a terminal runs on metadata the TMS sends (crypto/tuf.h): the
 * envelope, root (initial and next), targets and timestamp records, against a fixed root.
 * Built with POSSUM_FUZZ; seeds in tests/fuzz/corpus/fuzz_tuf.
 */
#include "crypto/tuf.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    static tuf_root fixed;
    static int ready;
    tuf_root r, next;
    tuf_target t;
    tuf_timestamp ts;
    json_t *env, *sp;
    if (!ready) {
        uint8_t priv[TUF_PRIV_LEN], pub[TUF_PUB_LEN];
        memset(priv, 7, sizeof priv);
        tuf_public_of(priv, pub, NULL);
        tuf_key_from_public(pub, &fixed.keys[0], NULL);
        fixed.nkeys = 1;
        fixed.version = 1;
        for (int i = 0; i < 3; i++) {
            memcpy(fixed.roles[i].keyids[0], fixed.keys[0].keyid, TUF_KEYID_HEX);
            fixed.roles[i].nkeys = 1;
            fixed.roles[i].threshold = 1;
        }
        ready = 1;
    }
    if (tuf_envelope_parse(data, n, "root", &env, &sp, NULL) == PX_OK) {
        (void)tuf_root_parse(sp, &r, NULL);
        json_decref(env);
    }
    (void)tuf_root_verify_initial(data, n, &r, NULL);
    (void)tuf_root_verify_next(&fixed, data, n, &next, NULL);
    (void)tuf_target_verify(&fixed, data, n, &t, NULL);
    if (tuf_timestamp_verify(&fixed, data, n, &ts, NULL) == PX_OK) {
        int64_t len;
        char sha[TUF_SHA256_HEX];
        (void)tuf_timestamp_find(&ts, "pos-app", "1.0.0", &len, sha);
        tuf_timestamp_free(&ts);
    }
    return 0;
}
