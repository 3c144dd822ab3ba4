"""Quality flags (pure): a flagged value is kept, never silently dropped.

Readings carry per-quantity bits 1 and 2; window aggregates carry the OR of their
readings' bits plus 4 when the window is not valid (too little of it covered).
Out-of-range values are stored with their reading but left out of window statistics.
"""

from __future__ import annotations

OUT_OF_RANGE = 1  # outside the physically plausible range of the sensor
HUMIDITY_AFFECTED = 2  # PM measured in humid air (low-cost sensors over-read)
LOW_COVERAGE = 4  # aggregate: below the validity rule (75 % of samples or of hours)

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


def flags(raw: dict[str, float], calibrated: dict[str, float] | None = None) -> dict[str, int]:
    """Flag bits by quantity; quantities without a flag are left out.

    The range check is on the raw values (what the sensor can plausibly report); the
    humidity test uses the calibrated relative humidity when there is one.
    """
    out: dict[str, int] = {}
    for quantity, value in raw.items():
        bounds = RANGES.get(quantity)
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            out[quantity] = OUT_OF_RANGE
    humidity = (calibrated or raw).get("humidity")
    if humidity is not None and humidity > HUMID_RH:
        for quantity in PM:
            if quantity in raw:
                out[quantity] = out.get(quantity, 0) | HUMIDITY_AFFECTED
    return out
