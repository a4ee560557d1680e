/*
 * bench_iso8583: pack and unpack a typical UnionPay purchase request (fields 2 3 4 11 14 22
 * 25 26 35 36 41 42 49 52 53 60 64) on one core; prints messages per second for each, the
 * last line as {"bench":"iso8583","unpack_per_s":N,"pack_per_s":N}: the median of 5 rounds
 * of 0.3 s of thread CPU time each, so that other load on a shared machine counts less.
 */
#include "iso8583/iso8583.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ROUNDS 5             /* rounds per operation; the median is reported */
#define ROUND_NS 300000000LL /* CPU time per round */

static iso8583_msg g_msg;
static uint8_t g_wire[PX_ISO_MSG_MAX];
static size_t g_wire_len;
static volatile size_t g_sink;

/* CPU time of this thread: the machine is shared, and the figure is per core. */
static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void must(int rc, px_error *e, const char *what)
{
    if (rc != PX_OK) {
        fprintf(stderr, "bench_iso8583: %s: %s\n", what, px_error_text(e));
        exit(1);
    }
}

static void build_purchase(iso8583_msg *m)
{
    static const uint8_t tpdu[5] = {0x60, 0x00, 0x01, 0x00, 0x00};
    static const uint8_t hdr[6] = {0x60, 0x31, 0x00, 0x31, 0x00, 0x00};
    static const uint8_t pin[8] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};
    static const uint8_t mac[8] = {0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6, 0x07, 0x18};
    static const struct {
        int f;
        const char *v;
    } text[] = {
        {2, "6222020200112233445"},
        {3, "000000"},
        {4, "000000010000"},
        {11, "000123"},
        {14, "2512"},
        {22, "021"},
        {25, "00"},
        {26, "12"},
        {35, "6222020200112233445=25122010000012345"},
        {36, "996222020200112233445=1561560000000000000003000000114000025=000000000000=0000"},
        {41, "12345678"},
        {42, "123456789012345"},
        {49, "156"},
        {53, "2600000000000000"},
        {60, "22000001000"},
    };
    px_error e = {0};
    iso8583_msg_init(m, &iso8583_unionpay_pos);
    must(iso8583_set_mti(m, "0200", &e), &e, "MTI");
    must(iso8583_set_tpdu(m, tpdu, sizeof tpdu, &e), &e, "TPDU");
    must(iso8583_set_header(m, hdr, sizeof hdr, &e), &e, "header");
    for (size_t i = 0; i < sizeof text / sizeof text[0]; i++)
        must(iso8583_set(m, text[i].f, text[i].v, &e), &e, "set");
    must(iso8583_set_bin(m, 52, pin, sizeof pin, &e), &e, "field 52");
    must(iso8583_set_bin(m, 64, mac, sizeof mac, &e), &e, "field 64");
}

static double bench_unpack(void)
{
    static iso8583_msg out;
    int64_t start = now_ns(), end, n = 0;
    do {
        for (int i = 0; i < 10000; i++) {
            if (iso8583_unpack(&iso8583_unionpay_pos, g_wire, g_wire_len, &out, NULL) != PX_OK)
                exit(1);
            g_sink += out.used;
        }
        n += 10000;
        end = now_ns();
    } while (end - start < ROUND_NS);
    return (double)n * 1e9 / (double)(end - start);
}

static double bench_pack(void)
{
    static uint8_t out[PX_ISO_MSG_MAX];
    int64_t start = now_ns(), end, n = 0;
    size_t len = 0;
    do {
        for (int i = 0; i < 10000; i++) {
            if (iso8583_pack(&iso8583_unionpay_pos, &g_msg, out, sizeof out, &len, NULL) != PX_OK)
                exit(1);
            g_sink += out[len - 1];
        }
        n += 10000;
        end = now_ns();
    } while (end - start < ROUND_NS);
    return (double)n * 1e9 / (double)(end - start);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double (*round)(void))
{
    double r[ROUNDS];
    for (int i = 0; i < ROUNDS; i++)
        r[i] = round();
    qsort(r, ROUNDS, sizeof r[0], cmp_double);
    return r[ROUNDS / 2];
}

int main(void)
{
    px_error e = {0};
    double up, pk;
    build_purchase(&g_msg);
    must(iso8583_pack(&iso8583_unionpay_pos, &g_msg, g_wire, sizeof g_wire, &g_wire_len, &e), &e,
         "pack");
    bench_unpack(); /* warm up */
    up = median_of(bench_unpack);
    pk = median_of(bench_pack);
    printf("iso8583 unionpay purchase 0200 (17 fields, %zu bytes)\n", g_wire_len);
    printf("unpack: %.0f messages/s (%.0f ns each)\n", up, 1e9 / up);
    printf("pack:   %.0f messages/s (%.0f ns each)\n", pk, 1e9 / pk);
    printf("{\"bench\":\"iso8583\",\"unpack_per_s\":%.0f,\"pack_per_s\":%.0f}\n", up, pk);
    return 0;
}
