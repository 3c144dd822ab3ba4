"""The reference lines on panels and report charts.

Noise lines are read from the alert thresholds (streams.detectors.thresholds), air lines
from the limit-value table (streams.science.airquality.AIR_STANDARDS), so a line on a
chart is exactly the value that raises an alert or that the law names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from streams.detectors.thresholds import AGGREGATE_LIMITS
from streams.science.airquality import AIR_STANDARDS, AirStandard


@dataclass(frozen=True)
class Line:
    label: str
    value: float


@dataclass(frozen=True)
class PeriodNorm:
    """A limit that differs by period: day 07-19, evening 19-23, night 23-07 local time."""

    label: str
    day: float
    evening: float
    night: float


def _threshold(kind: str) -> float:
    for limit in AGGREGATE_LIMITS:
        if limit.kind == kind:
            return limit.tiers[0][0]
    raise KeyError(f"no alert threshold {kind!r} in streams.detectors.thresholds")


def _period_norm(label: str, kind: str) -> PeriodNorm:
    day, evening, night = (_threshold(f"{kind}_{p}") for p in ("day", "evening", "night"))
    return PeriodNorm(
        f"{label} ({day:g} day, {evening:g} evening, {night:g} night)", day, evening, night
    )


WHO_LDEN = Line(
    f"WHO Lden {_threshold('threshold.noise_lden'):g}", _threshold("threshold.noise_lden")
)
WHO_LNIGHT = Line(
    f"WHO Lnight {_threshold('threshold.noise_night'):g}", _threshold("threshold.noise_night")
)
NL_LAEQ = _period_norm("NL norm LAr,LT", "threshold.noise_business")
NL_LAMAX = _period_norm("NL norm LAmax", "threshold.noise_business_lamax")

_AVERAGING = {"1h": "1-h", "24h": "24-h", "8h_daily_max": "8-h"}


def _air_label(s: AirStandard, on: date, timeless: bool) -> str:
    who = "WHO" if s.kind == "guideline" else "EU"
    label = f"{who} {_AVERAGING[s.averaging]} {s.kind} {s.value:g}"
    if timeless:
        return label
    if s.valid_from and s.valid_from > on:
        return f"{label} from {s.valid_from.year}"
    return f"{label} until {s.valid_until.year}" if s.valid_until else label


def air_lines(pollutant: str, averagings: tuple[str, ...], on: date) -> tuple[Line, ...]:
    """Standards for `pollutant` on these averaging periods that are in force on `on` or
    come into force later (so the 2030 EU values show up before 2030); a value that the
    old and the new directive share is one line."""
    chosen = [
        s
        for s in AIR_STANDARDS
        if s.pollutant == pollutant
        and s.averaging in averagings
        and (s.valid_until is None or s.valid_until >= on)
    ]
    lines: dict[str, Line] = {}
    for s in chosen:
        same = [
            t for t in chosen if (t.kind, t.averaging, t.value) == (s.kind, s.averaging, s.value)
        ]
        label = _air_label(s, on, timeless=len(same) > 1)
        lines.setdefault(label, Line(label, float(s.value)))
    return tuple(lines.values())
