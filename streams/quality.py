"""Per-reading quality flags (pure): a flagged value is kept, never silently dropped."""

from __future__ import annotations

OUT_OF_RANGE = 1  # outside the physically plausible range of the sensor
HUMIDITY_AFFECTED = 2  # PM measured in humid air (low-cost sensors over-read)

# Plausible ranges (Smart Emission, DESIGN.md section 5).
RANGES: dict[str, tuple[float, float]] = {
    **dict.fromkeys(("laeq", "lamax", "lamin", "l10", "l50", "l90"), (0.0, 195.0)),
    **dict.fromkeys(("pm1", "pm25", "pm10"), (0.0, 999.0)),
    **dict.fromkeys(("no2", "o3"), (0.0, 2000.0)),
    "temperature": (-25.0, 60.0),
    "humidity": (0.0, 100.0),
    "pressure": (200.0, 1100.0),
}
HUMID_RH = 70.0
PM = ("pm1", "pm25", "pm10")


def flags(values: dict[str, float]) -> dict[str, int]:
    """Flag bits by quantity; quantities without a flag are left out."""
    out: dict[str, int] = {}
    for quantity, value in values.items():
        low, high = RANGES.get(quantity, (float("-inf"), float("inf")))
        if not low <= value <= high:
            out[quantity] = OUT_OF_RANGE
    humidity = values.get("humidity")
    if humidity is not None and humidity > HUMID_RH:
        for quantity in PM:
            if quantity in values:
                out[quantity] = out.get(quantity, 0) | HUMIDITY_AFFECTED
    return out
