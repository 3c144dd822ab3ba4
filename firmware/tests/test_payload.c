/* Host unit tests for ll_encode(); expected bytes are worked out by hand from PAYLOAD.md. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ll_payload.h"

static int failures;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
            failures++;                                                    \
        }                                                                  \
    } while (0)

/* Encode and compare with the expected hex string. */
static void expect_hex(const ll_reading *reading, unsigned version, const char *hex)
{
    uint8_t buf[LL_PAYLOAD_MAX_SIZE];
    char got[2 * LL_PAYLOAD_MAX_SIZE + 1] = "";
    int n = ll_encode(reading, version, buf, sizeof buf), i;
    for (i = 0; i < n; i++) {
        sprintf(got + 2 * i, "%02x", buf[i]);
    }
    if (n < 0 || strcmp(got, hex) != 0) {
        printf("FAIL v%u: got %s (%d), want %s\n", version, got, n, hex);
        failures++;
    }
}

static void test_nothing_measured(void)
{
    ll_reading r;
    ll_reading_init(&r);
    expect_hex(&r, 2,
               "02" "0000" "0100"
               "ffffffffffffffffffffffff" "ffffffffffffffffffff"
               "8000" "ffff" "ffff" "ffff");
}

static void test_typical_reading(void)
{
    static const double values[LL_QUANTITY_COUNT] = {
        52.3, 71.8, 38.1, 55.0, 50.2, 41.5, 4.2, 7.9, 15.3, 23.4, 61.0,
        12.34, 81.2, 1013.2, 3.912};
    ll_reading r;
    ll_reading_init(&r);
    memcpy(r.value, values, sizeof values);
    r.status = LL_STATUS_HEATER_ON | LL_STATUS_GAS_WARMUP;
    r.firmware = 0x0102;
    expect_hex(&r, 2,
               "02" "0110" "0102"
               "020b" "02ce" "017d" "0226" "01f6" "019f"
               "002a" "004f" "0099" "00ea" "0262"
               "04d2" "032c" "2794" "0f48");
}

static void test_rounds_half_away_from_zero(void)
{
    ll_reading r;
    ll_reading_init(&r);
    r.value[LL_LAEQ] = 52.25;         /* 522.5 -> 523 */
    r.value[LL_TEMPERATURE] = -0.125; /* -12.5 -> -13 */
    r.value[LL_HUMIDITY] = 0.04;      /* 0.4 -> 0 */
    r.value[LL_BATTERY] = 0.0;
    expect_hex(&r, 2,
               "02" "0000" "0100"
               "020b" "ffffffffffffffffffff" "ffffffffffffffffffff"
               "fff3" "0000" "ffff" "0000");
}

static void test_clamps_and_flags(void)
{
    ll_reading r;
    ll_reading_init(&r);
    r.value[LL_LAEQ] = INFINITY;       /* -> 1950 */
    r.value[LL_LAMAX] = 195.04;        /* 1950.4 -> 1950, in range */
    r.value[LL_PM25] = 1e9;            /* -> 65534 */
    r.value[LL_TEMPERATURE] = -100.0;  /* -> -4000 */
    r.value[LL_PRESSURE] = 0.0;        /* -> 3000 */
    r.value[LL_BATTERY] = -INFINITY;   /* -> 0 */
    expect_hex(&r, 2,
               "02" "0080" "0100"
               "079e" "079e" "ffffffffffffffff"
               "ffff" "fffe" "ffffffffffff"
               "f060" "ffff" "0bb8" "0000");
}

static void test_in_range_does_not_flag(void)
{
    ll_reading r;
    uint8_t buf[LL_PAYLOAD_MAX_SIZE];
    ll_reading_init(&r);
    r.value[LL_PM10] = 6553.4;
    r.value[LL_TEMPERATURE] = 85.0;
    CHECK(ll_encode(&r, 2, buf, sizeof buf) == 35);
    CHECK(buf[1] == 0 && buf[2] == 0);
}

static void test_version_1(void)
{
    ll_reading r;
    uint8_t buf[16];
    ll_reading_init(&r);
    r.value[LL_LAEQ] = 52.3;
    r.value[LL_PM25] = 12.4;
    r.value[LL_PM10] = 20.6;
    r.value[LL_TEMPERATURE] = 12.34;
    r.value[LL_HUMIDITY] = 81.2;
    r.value[LL_BATTERY] = 3.912;
    r.status = LL_STATUS_REBOOT;
    expect_hex(&r, 1, "01" "20" "020b" "ffff" "ffff" "000c" "0015" "007b" "a2" "c4");
    CHECK(ll_encode(&r, 1, buf, sizeof buf) == 16);
    r.status = LL_STATUS_GAS_WARMUP; /* bit 8 does not fit the v1 status byte */
    CHECK(ll_encode(&r, 1, buf, sizeof buf) == LL_ERR_STATUS);
    r.status = 0;
    r.value[LL_PM1] = 3.0; /* v1 has no pm1 field */
    CHECK(ll_encode(&r, 1, buf, sizeof buf) == LL_ERR_QUANTITY);
}

static void test_rejects_bad_arguments(void)
{
    ll_reading r;
    uint8_t buf[LL_PAYLOAD_MAX_SIZE];
    ll_reading_init(&r);
    CHECK(ll_encode(&r, 0, buf, sizeof buf) == LL_ERR_VERSION);
    CHECK(ll_encode(&r, 3, buf, sizeof buf) == LL_ERR_VERSION);
    CHECK(ll_encode(&r, 2, buf, sizeof buf - 1) == LL_ERR_BUFFER);
    CHECK(ll_encode(&r, LL_PAYLOAD_VERSION, buf, sizeof buf) == (int)LL_PAYLOAD_MAX_SIZE);
}

int main(void)
{
    test_nothing_measured();
    test_typical_reading();
    test_rounds_half_away_from_zero();
    test_clamps_and_flags();
    test_in_range_does_not_flag();
    test_version_1();
    test_rejects_bad_arguments();
    printf("%s: %d failure(s)\n", failures ? "FAILED" : "ok", failures);
    return failures != 0;
}
