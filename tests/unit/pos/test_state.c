/* test_state.c: the terminal's state file: round trip, STAN wraparound, strict parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "device/pos/pos_int.h"

static void test_stan_wraps_to_one(void **state)
{
    pos_state *st = calloc(1, sizeof *st);
    pos_state_fresh(st);
    assert_int_equal(pos_stan_next(st), 1);
    st->stan = 999998;
    assert_int_equal(pos_stan_next(st), 999999);
    assert_int_equal(pos_stan_next(st), 1); /* never 000000 */
    free(st);
}

static void test_round_trip(void **state)
{
    pos_state *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    px_buf out;
    pos_state_fresh(a);
    a->stan = 42;
    a->batch = 7;
    a->signed_on = 1;
    a->update_waiting = 1;
    a->last_proc_req = 6;
    a->rev = (pos_reversal){.pending = 1,
                            .kind = 'S',
                            .reason = "A0",
                            .proc = "000000",
                            .amount = "000000001234",
                            .stan = "000041",
                            .entry = "021",
                            .f60 = "22000007000",
                            .is_track = 1,
                            .sealed = "01AB",
                            .sends = 2};
    a->ntxn = 2;
    a->txn[0] = (pos_txn){.kind = 'S',
                          .stan = "000040",
                          .rrn = "000000000001",
                          .auth = "A1B2C3",
                          .proc = "000000",
                          .amount_minor = 99,
                          .pan_masked = "622202*********0128",
                          .sealed_pan = "01CD",
                          .voided = 1};
    a->txn[1] = (pos_txn){.kind = 'V', .stan = "000041", .proc = "200000", .amount_minor = 99};
    px_buf_init(&out, 1 << 20);
    assert_int_equal(pos_state_encode(a, &out), PX_OK);
    assert_int_equal(pos_state_decode((const char *)out.data, out.len, b, NULL), PX_OK);
    assert_true(b->rev.pending && b->rev.is_track);
    assert_int_equal(b->rev.kind, 'S');
    assert_string_equal(b->rev.reason, "A0");
    assert_string_equal(b->rev.amount, "000000001234");
    assert_string_equal(b->rev.stan, "000041");
    assert_string_equal(b->rev.entry, "021");
    assert_string_equal(b->rev.f60, "22000007000");
    assert_string_equal(b->rev.sealed, "01AB");
    assert_int_equal(b->rev.sends, 2);
    assert_int_equal(b->ntxn, 2);
    assert_string_equal(b->txn[0].rrn, "000000000001");
    assert_string_equal(b->txn[0].auth, "A1B2C3");
    assert_string_equal(b->txn[0].pan_masked, "622202*********0128");
    assert_string_equal(b->txn[0].sealed_pan, "01CD");
    assert_int_equal(b->txn[0].amount_minor, 99);
    assert_true(b->txn[0].voided);
    assert_int_equal(b->txn[1].kind, 'V');
    assert_string_equal(b->txn[1].rrn, "");
    assert_string_equal(b->txn[1].proc, "200000");
    assert_int_equal(b->stan, 42);
    assert_int_equal(b->batch, 7);
    assert_int_equal(b->last_proc_req, 6);
    px_buf_free(&out);
    free(a);
    free(b);
}

static void test_rejects(void **state)
{
    static const char *const bad[] = {
        "possum-pos-state 2\nend\n",
        "possum-pos-state 1\nstan 000001\n", /* no end */
        "possum-pos-state 1\nstan 1000000\nend\n",
        "possum-pos-state 1\nstan abc\nend\n",
        "possum-pos-state 1\nwhat 1\nend\n",
        "possum-pos-state 1\nstan 1 2\nend\n",
        "possum-pos-state 1\nstan  1\nend\n",
        "possum-pos-state 1\nend\nstan 1\n",
        "possum-pos-state 1\nreversal S 99 000000 - 000001 021 22000001000 P 01AB 0\nend\n",
        "possum-pos-state 1\nreversal S 98 000000 - 000001 021 22000001000 P - 0\nend\n",
        "possum-pos-state 1\ntxn X 000001 - - 000000 000000000001 - - 0\nend\n",
        "possum-pos-state 1\ntxn S 000001 - - 000000 000000000001 6222021234567890128 - 2\nend\n",
    };
    pos_state *st = calloc(1, sizeof *st);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        px_error e = {0};
        int rc = pos_state_decode(bad[i], strlen(bad[i]), st, &e);
        if (rc != PX_EFORMAT)
            fail_msg("case %zu accepted", i);
    }
    const char *ok = "possum-pos-state 1\nstan 000001\nbatch 000002\nsigned-on 0\nend\n";
    assert_int_equal(pos_state_decode(ok, strlen(ok), st, NULL), PX_OK);
    free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stan_wraps_to_one),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests_name("pos_state", tests, NULL, NULL);
}
