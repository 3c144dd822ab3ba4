"""Per-unit calibration (pure): versioned, selected by event time, applied to raw values.

A unit may carry several calibration versions in the registry, each valid from an event
time on, so re-processing old uplinks applies the calibration that was valid then and
every reading stores the version it got. One version holds, per quantity, a linear
correction value = offset + slope * x, and for PM an optional humidity correction
(low-cost optical counters see particles grown by water uptake): the kappa-Koehler form
of Crilley et al. (2018, Atmos. Meas. Tech. 11, 709) with a_w = RH/100,

    PM_dry = PM / (1 + (kappa / 1.65) * RH / (100 - RH)),

with RH clipped to [0, 95] % (the growth term diverges towards 100 %, in fog the
reading is flagged humidity-affected anyway). The humidity correction is applied first
(with the calibrated RH of the same uplink), then the linear one. PM without a humidity
value in the uplink gets only the linear correction.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from livinglab.codec.payload import QUANTITIES

NONE = "none"  # calibration version of values stored as measured
PM = ("pm1", "pm25", "pm10")
KOEHLER_DIVISOR = 1.65  # kappa/1.65: Crilley et al. (2018), eq. 3
RH_CLIP = 95.0


@dataclass(frozen=True)
class Calibration:
    """One calibration version of one unit."""

    version: str
    valid_from: int = -(2**62)  # event time (epoch ms) from which it applies
    linear: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # offset, slope
    pm_kappa: float | None = None


def humidity_growth(rh: float, kappa: float) -> float:
    """Growth factor of PM mass with relative humidity (kappa-Koehler, RH in %)."""
    rh = min(max(rh, 0.0), RH_CLIP)
    return 1.0 + kappa / KOEHLER_DIVISOR * rh / (100.0 - rh)


def select(calibrations: Sequence[Calibration], ts: int) -> Calibration | None:
    """The version valid at event time ts (versions are sorted by valid_from)."""
    chosen = None
    for cal in calibrations:
        if cal.valid_from > ts:
            break
        chosen = cal
    return chosen


def apply(calibrations: Sequence[Calibration], ts: int, raw: dict[str, float]) -> tuple[dict, str]:
    """(calibrated values, version) of one uplink; the raw dict is left as it is."""
    cal = select(calibrations, ts)
    if cal is None:
        return raw, NONE
    out = dict(raw)
    for quantity, (offset, slope) in cal.linear.items():
        if quantity in out and quantity not in PM:
            out[quantity] = offset + slope * out[quantity]
    rh = out.get("humidity")
    for quantity in PM:
        if quantity not in out:
            continue
        value = out[quantity]
        if cal.pm_kappa is not None and rh is not None:
            value /= humidity_growth(rh, cal.pm_kappa)
        offset, slope = cal.linear.get(quantity, (0.0, 1.0))
        out[quantity] = offset + slope * value
    return out, cal.version


# --- registry entries ------------------------------------------------------------------


def _number(entry: Mapping[str, Any], name: str, default: float, where: str) -> float:
    value = entry.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}: '{name}' must be a finite number, got {value!r}")
    return float(value)


def _instant(value: Any, where: str) -> int:
    """valid_from as epoch ms: a YAML timestamp or an ISO 8601 string (UTC if no zone)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{where}: valid_from {value!r} is not an ISO 8601 time") from None
    if not isinstance(value, datetime):
        raise ValueError(f"{where}: valid_from must be a time like 2026-01-01T00:00:00Z")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def parse(raw: Any) -> tuple[Calibration, ...]:
    """The `calibration` list of a registry unit; ValueError says which entry is wrong.

    Each entry: version (required, unique), valid_from (required after the first),
    per quantity {offset, slope} and pm_humidity {kappa}.
    """
    if not isinstance(raw, list):
        raise ValueError("calibration must be a list of versions (each with 'version')")
    out: list[Calibration] = []
    for i, entry in enumerate(raw):
        where = f"calibration[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected a mapping, got {type(entry).__name__}")
        version = entry.get("version")
        if not isinstance(version, str) or not version or version == NONE:
            raise ValueError(f"{where}: 'version' must be a non-empty name other than 'none'")
        if any(c.version == version for c in out):
            raise ValueError(f"{where}: duplicate version {version!r}")
        if "valid_from" not in entry and out:
            raise ValueError(f"{where}: 'valid_from' is required after the first version")
        valid_from = _instant(entry["valid_from"], where) if "valid_from" in entry else -(2**62)
        if out and valid_from <= out[-1].valid_from:
            raise ValueError(f"{where}: versions must be listed by increasing valid_from")
        linear: dict[str, tuple[float, float]] = {}
        kappa = None
        for key, value in entry.items():
            if key in ("version", "valid_from"):
                continue
            if not isinstance(value, dict):
                raise ValueError(f"{where}: '{key}' must be a mapping, got {value!r}")
            if key == "pm_humidity":
                unknown = set(value) - {"kappa"}
                kappa = _number(value, "kappa", float("nan"), f"{where}, pm_humidity")
                if unknown or kappa < 0:
                    raise ValueError(f"{where}, pm_humidity: needs only 'kappa' >= 0")
            elif key in QUANTITIES:
                unknown = set(value) - {"offset", "slope"}
                if unknown:
                    raise ValueError(f"{where}, {key}: unknown field(s) {sorted(unknown)}")
                offset = _number(value, "offset", 0.0, f"{where}, {key}")
                slope = _number(value, "slope", 1.0, f"{where}, {key}")
                if slope <= 0:
                    raise ValueError(f"{where}, {key}: 'slope' must be positive, got {slope}")
                linear[key] = (offset, slope)
            else:
                raise ValueError(
                    f"{where}: unknown quantity {key!r} (known: {', '.join(QUANTITIES)}, "
                    "pm_humidity)"
                )
        out.append(Calibration(version, valid_from, linear, kappa))
    return tuple(out)
