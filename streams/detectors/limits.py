"""Tiered limits: one rule, several levels of badness, each with its own severity.

Air and noise limits come in tiers (WHO guideline below the EU limit value; the O3
information threshold below the alert threshold; construction noise 60…80), and so
does a battery (low, then critical). One ``Limit`` holds the tiers of one rule so
a value climbing through them updates one alert instead of opening several.
A limit is exceeded strictly beyond its value (EU wording: "exceeds" means ">").
A limit on raw readings may hold only in a period of the local day (night-time
noise): outside it the limit does not apply, so every reading there clears.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from zoneinfo import ZoneInfo

import numpy as np

from streams.detectors.condition import Conditions, Severity, as_batch, make_conditions


@dataclass(frozen=True)
class Limit:
    """Tiers ``(value, severity)`` from mildest to worst.

    ``lower`` limits are bad below their values (battery). ``hysteresis`` sets the
    level an open alert must pass back through to resolve: the first tier minus (or,
    for lower limits, plus) this margin. ``window`` names the aggregate the limit
    applies to (None: raw readings). ``hours`` = (from, to) restricts a raw-reading
    limit to that local time of day, wrapping midnight (23, 7 is the night).
    ``source`` cites where the numbers come from.
    """

    kind: str
    quantity: str | None
    tiers: tuple[tuple[float, Severity], ...]
    window: str | None = None
    lower: bool = False
    hysteresis: float = 0.0
    enabled: bool = True
    hours: tuple[float, float] | None = None
    source: str = ""

    def __post_init__(self) -> None:
        tiers = tuple((float(v), Severity.parse(s)) for v, s in self.tiers)
        object.__setattr__(self, "tiers", tiers)
        if self.hours is not None:
            start, end = (float(h) for h in self.hours)
            if not (0 <= start < 24 and 0 <= end <= 24 and start != end):
                raise ValueError(f"limit {self.kind}: hours must be two times of day: {self.hours}")
            object.__setattr__(self, "hours", (start, end))
        if not tiers:
            raise ValueError(f"limit {self.kind} has no tiers")
        sign = self.sign
        for (v0, s0), (v1, s1) in pairwise(tiers):
            if not (sign * v1 > sign * v0 and s1 >= s0):
                raise ValueError(f"limit {self.kind}: tiers must worsen in order, got {tiers}")

    @property
    def sign(self) -> int:
        return -1 if self.lower else 1

    @property
    def clear_threshold(self) -> float:
        return self.tiers[0][0] - self.sign * self.hysteresis


def check_limit(
    limit: Limit, unit: str, ts: np.ndarray | int, values: np.ndarray | float
) -> Conditions:
    """Active where a value is beyond the first tier; threshold/severity of the worst tier hit."""
    t, x = as_batch(ts, values)
    levels = np.array([v for v, _ in limit.tiers])
    codes = np.array([int(s) for _, s in limit.tiers], dtype=np.int8)
    sign = limit.sign
    # tiers worsen monotonically, so the tiers exceeded form a prefix: count them
    hit = (sign * x[:, None] > sign * levels[None, :]).sum(axis=1)
    tier = np.maximum(hit - 1, 0)
    return make_conditions(
        limit.kind,
        limit.quantity,
        unit,
        t,
        hit > 0,
        x,
        levels[tier],
        codes[tier],
        clear_threshold=limit.clear_threshold,
        window=limit.window,
    )


def any_beyond(limit: Limit, values: np.ndarray | float) -> bool:
    """Whether ``check_limit`` would find any value beyond the limit's first tier."""
    x = np.asarray(values, dtype=np.float64)
    return bool((limit.sign * x > limit.sign * limit.tiers[0][0]).any())


def check_limit_in_period(
    limit: Limit, unit: str, ts: np.ndarray | int, values: np.ndarray | float, tz: str
) -> list[Conditions]:
    """``check_limit`` inside ``limit.hours`` (local time in ``tz``); outside, readings clear.

    One batch per stretch inside or outside the period, in time order: outside there
    is no hysteresis (the limit does not apply there), so an alert resolves when its
    period ends even if the level stays up.
    """
    t, x = as_batch(ts, values)
    assert limit.hours is not None, f"limit {limit.kind} has no hours"
    start, end = limit.hours
    hour = local_hours(t, tz)
    inside = (hour >= start) & (hour < end) if start < end else (hour >= start) | (hour < end)
    out = []
    for run in np.split(np.arange(len(t)), np.flatnonzero(np.diff(inside)) + 1):
        if not len(run):
            continue
        if inside[run[0]]:
            out.append(check_limit(limit, unit, t[run], x[run]))
        else:
            out.append(
                make_conditions(limit.kind, limit.quantity, unit, t[run], np.zeros(len(run)),
                                x[run], limit.tiers[0][0], limit.tiers[0][1], window=limit.window)
            )  # fmt: skip
    return out


def local_hours(ts: np.ndarray, tz: str) -> np.ndarray:
    """Fractional local hour of day (0..24) of epoch-ms times; UTC offsets looked up per hour."""
    zone = ZoneInfo(tz)
    hours = ts // 3_600_000
    unique, index = np.unique(hours, return_inverse=True)
    offset_s = np.array(
        [datetime.fromtimestamp(int(h) * 3600, UTC).astimezone(zone).utcoffset().total_seconds()
         for h in unique]
    )  # fmt: skip
    return ((ts / 1000 + offset_s[index]) % 86400) / 3600
