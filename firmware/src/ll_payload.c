/* Table-driven encoder: one field table per format version, as in PAYLOAD.md. */
#include "ll_payload.h"

#include <math.h>

enum ll_kind { LL_U8, LL_U16, LL_I16 };

#define LL_STATUS_FIELD (-1)
#define LL_FIRMWARE_FIELD (-2)

struct ll_field {
    int8_t quantity; /* enum ll_quantity, LL_STATUS_FIELD or LL_FIRMWARE_FIELD */
    uint8_t kind;    /* enum ll_kind, big-endian on air */
    uint16_t factor; /* raw = value * factor */
    int32_t lo, hi;  /* raw range; anything outside is clamped */
};

struct ll_layout {
    uint8_t version;
    uint8_t count;
    const struct ll_field *fields;
};

#define NOISE(q) {q, LL_U16, 10, 0, 1950}
#define UGM3(q) {q, LL_U16, 10, 0, 65534}

static const struct ll_field v1_fields[] = {
    {LL_STATUS_FIELD, LL_U8, 0, 0, 0xFF},
    NOISE(LL_LAEQ), NOISE(LL_LAMAX), NOISE(LL_LAMIN),
    {LL_PM25, LL_U16, 1, 0, 999},
    {LL_PM10, LL_U16, 1, 0, 999},
    {LL_TEMPERATURE, LL_I16, 10, -400, 850},
    {LL_HUMIDITY, LL_U8, 2, 0, 200},
    {LL_BATTERY, LL_U8, 50, 0, 250},
};

static const struct ll_field v2_fields[] = {
    {LL_STATUS_FIELD, LL_U16, 0, 0, 0xFFFF},
    {LL_FIRMWARE_FIELD, LL_U16, 0, 0, 0xFFFF},
    NOISE(LL_LAEQ), NOISE(LL_LAMAX), NOISE(LL_LAMIN),
    NOISE(LL_L10), NOISE(LL_L50), NOISE(LL_L90),
    UGM3(LL_PM1), UGM3(LL_PM25), UGM3(LL_PM10), UGM3(LL_NO2), UGM3(LL_O3),
    {LL_TEMPERATURE, LL_I16, 100, -4000, 8500},
    {LL_HUMIDITY, LL_U16, 10, 0, 1000},
    {LL_PRESSURE, LL_U16, 10, 3000, 11000},
    {LL_BATTERY, LL_U16, 1000, 0, 25000},
};

#define COUNT(a) ((uint8_t)(sizeof(a) / sizeof((a)[0])))

static const struct ll_layout layouts[] = {
    {1, COUNT(v1_fields), v1_fields},
    {2, COUNT(v2_fields), v2_fields},
};

void ll_reading_init(ll_reading *reading)
{
    int q;
    for (q = 0; q < LL_QUANTITY_COUNT; q++) {
        reading->value[q] = NAN;
    }
    reading->status = 0;
    reading->firmware = LL_FIRMWARE;
}

static const struct ll_layout *find_layout(unsigned version)
{
    size_t i;
    for (i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++) {
        if (layouts[i].version == version) {
            return &layouts[i];
        }
    }
    return NULL;
}

static size_t layout_size(const struct ll_layout *layout)
{
    size_t size = 1; /* version byte */
    uint8_t i;
    for (i = 0; i < layout->count; i++) {
        size += layout->fields[i].kind == LL_U8 ? 1u : 2u;
    }
    return size;
}

/* A measured value for a quantity the layout cannot carry would vanish silently. */
static int drops_a_value(const struct ll_layout *layout, const ll_reading *reading)
{
    int q;
    uint8_t i;
    for (q = 0; q < LL_QUANTITY_COUNT; q++) {
        int carried = 0;
        for (i = 0; i < layout->count; i++) {
            carried |= layout->fields[i].quantity == q;
        }
        if (!carried && !isnan(reading->value[q])) {
            return 1;
        }
    }
    return 0;
}

static int32_t not_measured(const struct ll_field *field)
{
    return field->kind == LL_I16 ? -0x8000 : field->kind == LL_U8 ? 0xFF : 0xFFFF;
}

/* Scale, round half away from zero (C99 round) and clamp; mirrors payload.py. */
static int32_t to_raw(const struct ll_field *field, double value, uint16_t *status)
{
    double y;
    if (isnan(value)) {
        return not_measured(field);
    }
    y = value * field->factor;
    if (y >= field->hi + 0.5) {
        *status |= LL_STATUS_CLAMPED;
        return field->hi;
    }
    if (y <= field->lo - 0.5) {
        *status |= LL_STATUS_CLAMPED;
        return field->lo;
    }
    return (int32_t)round(y);
}

static size_t put(uint8_t *buf, size_t pos, uint8_t kind, int32_t raw)
{
    uint16_t bits = (uint16_t)(raw & 0xFFFF); /* two's complement for LL_I16 */
    if (kind == LL_U8) {
        buf[pos] = (uint8_t)bits;
        return pos + 1;
    }
    buf[pos] = (uint8_t)(bits >> 8);
    buf[pos + 1] = (uint8_t)(bits & 0xFF);
    return pos + 2;
}

int ll_encode(const ll_reading *reading, unsigned version, uint8_t *buf, size_t cap)
{
    const struct ll_layout *layout = find_layout(version);
    uint16_t status = reading->status;
    size_t pos = 1, status_pos = 0;
    uint8_t status_kind = LL_U8, i;

    if (layout == NULL) {
        return LL_ERR_VERSION;
    }
    if (cap < layout_size(layout)) {
        return LL_ERR_BUFFER;
    }
    if (drops_a_value(layout, reading)) {
        return LL_ERR_QUANTITY;
    }
    buf[0] = layout->version;
    for (i = 0; i < layout->count; i++) {
        const struct ll_field *field = &layout->fields[i];
        if (field->quantity == LL_STATUS_FIELD) {
            status_pos = pos; /* written last: clamping below may set a bit */
            status_kind = field->kind;
            pos += field->kind == LL_U8 ? 1u : 2u;
        } else if (field->quantity == LL_FIRMWARE_FIELD) {
            pos = put(buf, pos, field->kind, reading->firmware);
        } else {
            pos = put(buf, pos, field->kind,
                      to_raw(field, reading->value[field->quantity], &status));
        }
    }
    if (status_kind == LL_U8 && status > 0xFF) {
        return LL_ERR_STATUS;
    }
    put(buf, status_pos, status_kind, status);
    return (int)pos;
}
