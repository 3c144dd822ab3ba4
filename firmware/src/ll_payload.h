/*
 * Living Lab sensor payload encoder (format spec: firmware/PAYLOAD.md).
 *
 * Plain C99, no heap, no global state: a node fills an ll_reading and calls
 * ll_encode() into its LoRaWAN TX buffer. Arithmetic is IEEE double so the bytes
 * match the Python and JavaScript implementations exactly.
 */
#ifndef LL_PAYLOAD_H
#define LL_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#define LL_PAYLOAD_VERSION 2u  /* latest format version, written by default */
#define LL_PAYLOAD_MAX_SIZE 35u /* bytes of a version 2 payload */
#define LL_FIRMWARE 0x0100u     /* this firmware: major << 8 | minor (1.0) */

enum ll_quantity {
    LL_LAEQ, LL_LAMAX, LL_LAMIN, LL_L10, LL_L50, LL_L90,
    LL_PM1, LL_PM25, LL_PM10, LL_NO2, LL_O3,
    LL_TEMPERATURE, LL_HUMIDITY, LL_PRESSURE, LL_BATTERY,
    LL_QUANTITY_COUNT
};

enum ll_status_bit {
    LL_STATUS_NOISE_FAULT = 1u << 0,
    LL_STATUS_PM_FAULT = 1u << 1,
    LL_STATUS_GAS_FAULT = 1u << 2,
    LL_STATUS_CLIMATE_FAULT = 1u << 3,
    LL_STATUS_HEATER_ON = 1u << 4,
    LL_STATUS_REBOOT = 1u << 5,
    LL_STATUS_LOW_BATTERY = 1u << 6,
    LL_STATUS_CLAMPED = 1u << 7, /* set by ll_encode when a value was clamped */
    LL_STATUS_GAS_WARMUP = 1u << 8,
    LL_STATUS_NOISE_OVERLOAD = 1u << 9
};

enum ll_error {
    LL_ERR_VERSION = -1,  /* no such format version */
    LL_ERR_BUFFER = -2,   /* output buffer too small */
    LL_ERR_QUANTITY = -3, /* a measured quantity the version has no field for */
    LL_ERR_STATUS = -4    /* status bits the version cannot carry */
};

typedef struct {
    double value[LL_QUANTITY_COUNT]; /* in PAYLOAD.md units; NAN = not measured */
    uint16_t status;                 /* enum ll_status_bit flags */
    uint16_t firmware;               /* major << 8 | minor */
} ll_reading;

/* Mark every quantity not measured, clear status, set firmware to LL_FIRMWARE. */
void ll_reading_init(ll_reading *reading);

/*
 * Encode reading as format version into buf (cap bytes). Values are rounded half
 * away from zero to the field resolution and clamped to the field range (setting
 * LL_STATUS_CLAMPED). Returns the payload length or a negative enum ll_error
 * (after an error the contents of buf are unspecified).
 */
int ll_encode(const ll_reading *reading, unsigned version, uint8_t *buf, size_t cap);

#endif
