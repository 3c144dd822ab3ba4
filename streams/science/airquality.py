"""Air-quality science: validity-aware hourly, running and daily means, the Dutch LKI, limits.

Validity criteria are the EU data-aggregation rules (Directive 2008/50/EC Annex VII A.2
for ozone and Annex XI for the other pollutants, the same 75 % rules as DESIGN.md):
an hourly value needs 75 % of its samples, an 8-hour value 6 of 8 hours, a 24-hour value
18 hours, a maximum daily 8-hour mean 18 of the day's 24 running 8-hour means.

Hourly inputs are a gapless hourly grid along the last axis (a missing hour is NaN or
valid=False); every mean reports its value from the valid inputs it has, how many it had
and whether that is enough, so dashboards can show a provisional value with its flag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike

from streams.science.localtime import DEFAULT_TZ, local_days

HOUR_S = 3600
DAILY_MIN_VALID_HOURS = 18
O3_WINDOW_H, O3_MIN_VALID_H = 8, 6
PM_WINDOW_H, PM_MIN_VALID_H = 24, 18
DAILY_MIN_VALID_8H_MEANS = 18


@dataclass(frozen=True, slots=True)
class Means:
    """Averages with the number of valid inputs behind each and the validity verdict."""

    value: np.ndarray
    n: np.ndarray
    valid: np.ndarray


@dataclass(frozen=True, slots=True)
class DailyMeans(Means):
    """Per local day: `day` (datetime64[D]) labels the last axis of value/n/valid."""

    day: np.ndarray


def hourly_mean(sums: ArrayLike, counts: ArrayLike, expected_interval_s: ArrayLike) -> Means:
    """Hourly mean from a window's sum and sample count; valid with >= 75 % of samples.

    Expected samples are 3600 / the unit's reporting interval; the test is done in exact
    arithmetic as 4 * count * interval >= 3 * 3600 (e.g. 60 s: 45 of 60; 300 s: 9 of 12;
    420 s: 7, as 6.43 samples are needed). NaN mean where there is no sample.
    """
    s = np.asarray(sums, dtype=np.float64)
    n = np.asarray(counts)
    interval = np.asarray(expected_interval_s, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(n > 0, s / n, np.nan)
    return Means(value=value, n=n, valid=4 * n * interval >= 3 * HOUR_S)


def _valid_values(hourly: ArrayLike, valid: ArrayLike | None) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(hourly, dtype=np.float64)
    ok = np.isfinite(x) if valid is None else np.asarray(valid, dtype=bool) & np.isfinite(x)
    return np.where(ok, x, 0.0), ok


def _mean(total: np.ndarray, n: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, total / n, np.nan)


def running_mean(
    hourly: ArrayLike, valid: ArrayLike | None, window_h: int, min_valid_h: int
) -> Means:
    """Trailing running mean over `window_h` hours, updated every hour.

    Element k is the mean of the valid hours k-window_h+1 .. k, i.e. the mean that ends
    at the end of hour k and is labelled with it. Hours before the first element count as
    missing, so pass the preceding window_h-1 hours to get the first values right.
    """
    x, ok = _valid_values(hourly, valid)
    pad = [(0, 0)] * (x.ndim - 1) + [(window_h - 1, 0)]
    total = sliding_window_view(np.pad(x, pad), window_h, axis=-1).sum(axis=-1)
    n = sliding_window_view(np.pad(ok, pad), window_h, axis=-1).sum(axis=-1)
    return Means(value=_mean(total, n), n=n, valid=n >= min_valid_h)


def o3_running_8h(hourly: ArrayLike, valid: ArrayLike | None = None) -> Means:
    """O3 8-hour running mean, valid with >= 6 valid hours (2008/50/EC Annex VII A.2)."""
    return running_mean(hourly, valid, O3_WINDOW_H, O3_MIN_VALID_H)


def pm_running_24h(hourly: ArrayLike, valid: ArrayLike | None = None) -> Means:
    """PM 24-hour running mean, valid with >= 18 valid hours (75 %, 2008/50/EC Annex XI)."""
    return running_mean(hourly, valid, PM_WINDOW_H, PM_MIN_VALID_H)


def _day_segments(
    hour_starts: ArrayLike, tz: str | ZoneInfo, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Local day of each run of hours and the index where each run starts."""
    t = np.asarray(hour_starts, dtype=np.float64)
    if t.ndim != 1 or t.size != length or t.size == 0:
        raise ValueError("hour_starts must be 1-D, non-empty and match the hourly axis")
    if np.any(np.diff(t) != HOUR_S):
        raise ValueError("hour_starts must be a gapless hourly grid (step 3600 s)")
    days = local_days(t, tz)
    starts = np.flatnonzero(np.r_[True, days[1:] != days[:-1]])
    return days[starts], starts


def daily_mean(
    hour_starts: ArrayLike,
    hourly: ArrayLike,
    valid: ArrayLike | None = None,
    tz: str | ZoneInfo = DEFAULT_TZ,
) -> DailyMeans:
    """Mean of the valid hours of each local day; valid with >= 18 valid hours.

    Hours belong to the local day their start falls in, so DST days have 23 or 25 hours;
    the threshold stays 18 hours as DESIGN.md states it (78 % / 72 % on those days).
    """
    x, ok = _valid_values(hourly, valid)
    days, starts = _day_segments(hour_starts, tz, x.shape[-1])
    total = np.add.reduceat(x, starts, axis=-1)
    n = np.add.reduceat(ok.astype(np.int64), starts, axis=-1)
    return DailyMeans(_mean(total, n), n, n >= DAILY_MIN_VALID_HOURS, days)


def o3_daily_max_8h(
    hour_starts: ArrayLike,
    hourly: ArrayLike,
    valid: ArrayLike | None = None,
    tz: str | ZoneInfo = DEFAULT_TZ,
) -> DailyMeans:
    """Maximum daily 8-hour mean of O3, each 8-h mean assigned to the day on which it ends.

    The 8-h mean ending at the end of hour k counts for the day of hour k's start, so day
    D holds the means ending 01:00 .. 24:00 D (17:00 D-1 -> 01:00 D first, 16:00 -> 24:00
    last), as in 2008/50/EC Annex VII B. Only valid 8-h means enter the maximum; the day
    is valid with >= 18 of them (Annex VII A.2). `n` counts the valid 8-h means.
    """
    running = o3_running_8h(hourly, valid)
    days, starts = _day_segments(hour_starts, tz, running.value.shape[-1])
    best = np.maximum.reduceat(np.where(running.valid, running.value, -np.inf), starts, axis=-1)
    n = np.add.reduceat(running.valid.astype(np.int64), starts, axis=-1)
    value = np.where(n > 0, best, np.nan)
    return DailyMeans(value, n, n >= DAILY_MIN_VALID_8H_MEANS, days)


# --- Dutch air-quality index (LKI, RIVM) -------------------------------------------------

# Upper edges C(1)..C(10) of sub-index bands 1..10 in ug/m3; above C(10) is 11.
LKI_EDGES: Mapping[str, tuple[float, ...]] = {
    "pm25": (10, 15, 20, 30, 40, 50, 70, 90, 100, 140),
    "pm10": (10, 20, 30, 45, 60, 75, 100, 125, 150, 200),
    "no2": (10, 20, 30, 45, 60, 75, 100, 125, 150, 200),
    "o3": (15, 30, 40, 60, 80, 100, 140, 180, 200, 240),
}
LKI_MAX = 11
LKI_BANDS = ("good", "moderate", "insufficient", "bad", "very bad")
# Band name by integer level (levels per band 3, 3, 2, 2, 1); level 0 means no data.
_BAND_OF_LEVEL = np.concatenate([[""], np.repeat(LKI_BANDS, (3, 3, 2, 2, 1))])


def lki_subindex(pollutant: str, conc: ArrayLike) -> np.ndarray:
    """Continuous LKI sub-index of hourly concentrations: I = (i-1) + (C-C(i-1))/(C(i)-C(i-1)).

    Band i is C(i-1) < C <= C(i) with C(0) = 0 (edges are upper-inclusive), so I runs
    through (i-1, i] and is continuous across edges: C exactly on C(i) gives I = i.
    Below the first edge I = C/C(1) in [0, 1] (level 1); negative C (sensor offset) is
    taken as 0; above the last edge I = 11 (a step up from 10); NaN stays NaN.
    """
    edges = np.asarray(LKI_EDGES[pollutant], dtype=np.float64)
    c = np.maximum(np.asarray(conc, dtype=np.float64), 0.0)
    i = np.searchsorted(edges, c, side="left") + 1  # band number: first edge >= C
    lower = np.r_[0.0, edges][np.minimum(i, edges.size) - 1]
    upper = edges[np.minimum(i, edges.size) - 1]
    index = (i - 1) + (c - lower) / (upper - lower)
    return np.where(np.isnan(c), np.nan, np.where(i > edges.size, float(LKI_MAX), index))


def lki_level(index: ArrayLike) -> np.ndarray:
    """Integer index 1..11 of a continuous index (its ceiling, at least 1); 0 for NaN."""
    idx = np.asarray(index, dtype=np.float64)
    level = np.clip(np.ceil(np.nan_to_num(idx, nan=0.0)), 1, LKI_MAX).astype(np.int8)
    return np.where(np.isnan(idx), np.int8(0), level)


def lki_total(subindices: Mapping[str, ArrayLike]) -> np.ndarray:
    """Total LKI: the highest sub-index, one point higher when all integer levels are equal.

    "All equal" compares the integer levels (the published numbers, as luchtmeetnet.nl
    words it: "als alle stoffen hetzelfde indexgetal hebben") of the pollutants that have
    a value, and needs at least two of them, otherwise a lone pollutant would always be
    raised. The raise adds 1 to the continuous maximum, capped at 11. NaN without data.
    """
    stack = np.stack(np.broadcast_arrays(*(np.asarray(v, float) for v in subindices.values())))
    have = ~np.isnan(stack)
    levels = lki_level(stack)
    highest = np.fmax.reduce(stack, axis=0)
    lo = np.where(have, levels, LKI_MAX + 1).min(axis=0)
    hi = np.where(have, levels, 0).max(axis=0)
    all_equal = (have.sum(axis=0) >= 2) & (lo == hi)
    return np.where(all_equal, np.minimum(highest + 1, LKI_MAX), highest)


def lki_band(index: ArrayLike) -> np.ndarray:
    """Band name of a (continuous or integer) index: 1-3 good, 4-6 moderate, 7-8
    insufficient, 9-10 bad, 11 very bad; '' without data."""
    return _BAND_OF_LEVEL[lki_level(index)]


# --- Limit values and guidelines ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AirStandard:
    """One air-quality standard, as data for detectors and dashboards.

    averaging: "1h" (hourly mean), "24h" (daily mean), "8h_daily_max" (maximum daily 8-h
    running mean), "1y" (calendar-year mean). max_exceedances: how many periods per
    calendar year may exceed the value (None: never, or not applicable).
    """

    pollutant: str
    averaging: str
    value: float  # ug/m3
    max_exceedances: int | None
    kind: str  # limit | target | information | alert | guideline
    source: str
    valid_from: date | None = None
    valid_until: date | None = None
    note: str = ""


_EU_2030 = "EU 2024/2881"
_EU_OLD = "EU 2008/50/EC"
_WHO = "WHO 2021"
_FROM_2030 = date(2030, 1, 1)
_UNTIL_2030 = date(2029, 12, 31)
_WHO_99 = "99th percentile: 3-4 exceedance days per year"

AIR_STANDARDS: tuple[AirStandard, ...] = (
    # EU limit values from 2030 (Directive (EU) 2024/2881, Annex I).
    AirStandard("pm25", "24h", 25, 18, "limit", _EU_2030, _FROM_2030),
    AirStandard("pm25", "1y", 10, None, "limit", _EU_2030, _FROM_2030),
    AirStandard("pm10", "24h", 45, 18, "limit", _EU_2030, _FROM_2030),
    AirStandard("pm10", "1y", 20, None, "limit", _EU_2030, _FROM_2030),
    AirStandard("no2", "1h", 200, 3, "limit", _EU_2030, _FROM_2030),
    AirStandard("no2", "24h", 50, 18, "limit", _EU_2030, _FROM_2030),
    AirStandard("no2", "1y", 20, None, "limit", _EU_2030, _FROM_2030),
    AirStandard(
        "o3",
        "8h_daily_max",
        120,
        18,
        "target",
        _EU_2030,
        _FROM_2030,
        note="exceedance days averaged over three years",
    ),
    # Values in force until the 2030 ones apply (set by Directive 2008/50/EC).
    AirStandard("pm10", "24h", 50, 35, "limit", _EU_OLD, None, _UNTIL_2030),
    AirStandard("pm10", "1y", 40, None, "limit", _EU_OLD, None, _UNTIL_2030),
    AirStandard("pm25", "1y", 25, None, "limit", _EU_OLD, None, _UNTIL_2030),
    AirStandard("no2", "1h", 200, 18, "limit", _EU_OLD, None, _UNTIL_2030),
    AirStandard("no2", "1y", 40, None, "limit", _EU_OLD, None, _UNTIL_2030),
    AirStandard(
        "o3",
        "8h_daily_max",
        120,
        25,
        "target",
        _EU_OLD,
        None,
        _UNTIL_2030,
        note="exceedance days averaged over three years (2008/50/EC Annex VII B)",
    ),
    # O3 public thresholds, the same in both directives.
    AirStandard("o3", "1h", 180, None, "information", f"{_EU_OLD}, {_EU_2030}"),
    AirStandard("o3", "1h", 240, None, "alert", f"{_EU_OLD}, {_EU_2030}"),
    # WHO 2021 air quality guidelines.
    AirStandard("pm25", "24h", 15, None, "guideline", _WHO, note=_WHO_99),
    AirStandard("pm25", "1y", 5, None, "guideline", _WHO),
    AirStandard("pm10", "24h", 45, None, "guideline", _WHO, note=_WHO_99),
    AirStandard("pm10", "1y", 15, None, "guideline", _WHO),
    AirStandard("no2", "24h", 25, None, "guideline", _WHO, note=_WHO_99),
    AirStandard("no2", "1y", 10, None, "guideline", _WHO),
    AirStandard("o3", "8h_daily_max", 100, None, "guideline", _WHO, note=_WHO_99),
)


def standards_in_force(on: date, pollutant: str | None = None) -> tuple[AirStandard, ...]:
    """The standards that apply on a date (EU by their dates, WHO always)."""
    return tuple(
        s
        for s in AIR_STANDARDS
        if (pollutant is None or s.pollutant == pollutant)
        and (s.valid_from is None or s.valid_from <= on)
        and (s.valid_until is None or on <= s.valid_until)
    )
