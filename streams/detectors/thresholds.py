"""Noise and air limit exceedances, judged on the window aggregate the limit is defined on.

A limit on a daily mean says nothing about one reading, so the caller passes the
window kind with the aggregate value. Window ids used here:

- ``1h``: 1-h mean; ``8h``: running 8-h mean (updated hourly); ``1d``: calendar-day mean
- ``lday`` 07–19, ``levening`` 19–23, ``lnight`` 23–07 (LAeq, or LAmax, of the period)
- ``lden``: day-evening-night level of one day (indicative; the legal one is annual)

Aggregates below the validity rule (>= 75 % coverage) are not judged at all: a
half-empty day must neither raise nor clear an alert. Annual limits are not real-time
alerts and are left to reporting. Business and construction noise limits only apply
near such sources, so they are off until a lab enables them for a unit.
"""

from __future__ import annotations

import numpy as np

from streams.detectors.condition import Conditions, Severity
from streams.detectors.limits import Limit, check_limit

INFO, WARNING, CRITICAL = Severity.INFO, Severity.WARNING, Severity.CRITICAL
MIN_COVERAGE = 0.75  # DESIGN §5: a daily mean needs >= 18 of 24 h, an hourly mean >= 75 %

_WHO_NOISE = "WHO 2018 Environmental Noise Guidelines, road traffic"
_BUSINESS = "Activiteitenbesluit business noise at the facade (LAr,LT resp. LAmax)"
_CONSTRUCTION = "Bouwbesluit day value: >60 dB(A) max 50 d, >65 30 d, >70 15 d, >75 5 d, >80 never"
_EU = "EU 2024/2881 limit value from 2030"


def _business(period: str, name: str, laeq: float, lamax: float) -> tuple[Limit, Limit]:
    return (
        Limit(f"threshold.noise_business_{name}", "laeq", ((laeq, WARNING),), period,
              hysteresis=1.0, enabled=False, source=_BUSINESS),
        Limit(f"threshold.noise_business_lamax_{name}", "lamax", ((lamax, WARNING),), period,
              hysteresis=1.0, enabled=False, source=_BUSINESS),
    )  # fmt: skip


AGGREGATE_LIMITS: tuple[Limit, ...] = (
    Limit("threshold.noise_night", "laeq", ((45.0, WARNING),), "lnight", hysteresis=1.0,
          source=f"{_WHO_NOISE}: Lnight 45 dB"),
    Limit("threshold.noise_lden", "laeq", ((53.0, INFO),), "lden", hysteresis=1.0,
          source=f"{_WHO_NOISE}: Lden 53 dB (daily value indicative only)"),
    *_business("lday", "day", 50.0, 70.0),
    *_business("levening", "evening", 45.0, 65.0),
    *_business("lnight", "night", 40.0, 60.0),
    Limit("threshold.noise_construction_day", "laeq",
          ((60.0, INFO), (65.0, INFO), (70.0, WARNING), (75.0, WARNING), (80.0, CRITICAL)),
          "lday", hysteresis=1.0, enabled=False, source=_CONSTRUCTION),
    Limit("threshold.pm25_day", "pm25", ((15.0, INFO), (25.0, WARNING)), "1d", hysteresis=2.0,
          source=f"WHO 2021 24-h guideline 15; {_EU} 25 (<= 18x/yr)"),
    Limit("threshold.pm10_day", "pm10", ((45.0, WARNING),), "1d", hysteresis=3.0,
          source=f"WHO 2021 24-h guideline 45 = {_EU} 45 (<= 18x/yr)"),
    Limit("threshold.no2_hour", "no2", ((200.0, WARNING),), "1h", hysteresis=10.0,
          source=f"{_EU} 200 (<= 3x/yr)"),
    Limit("threshold.no2_day", "no2", ((25.0, INFO), (50.0, WARNING)), "1d", hysteresis=3.0,
          source=f"WHO 2021 24-h guideline 25; {_EU} 50 (<= 18x/yr)"),
    Limit("threshold.o3_hour", "o3", ((180.0, WARNING), (240.0, CRITICAL)), "1h",
          hysteresis=10.0, source="EU 2024/2881 O3 information threshold 180, alert threshold 240"),
    Limit("threshold.o3_8h", "o3", ((100.0, INFO), (120.0, WARNING)), "8h", hysteresis=5.0,
          source="WHO 2021 8-h guideline 100; EU 2024/2881 target 120 (max daily 8-h mean)"),
)  # fmt: skip


def check_aggregate(
    limits: tuple[Limit, ...] | list[Limit],
    window: str,
    quantity: str,
    unit: str,
    ts: np.ndarray | int,
    values: np.ndarray | float,
    coverage: np.ndarray | float | None = None,
    min_coverage: float = MIN_COVERAGE,
) -> list[Conditions]:
    """Judge aggregates of one (window, quantity) against every enabled limit defined on it.

    ``ts`` is the event time the aggregate stands for (use the window end), ``coverage``
    the fraction of the window covered; aggregates under ``min_coverage`` are dropped.
    """
    t, x = np.atleast_1d(np.asarray(ts, np.int64)), np.atleast_1d(np.asarray(values, float))
    if coverage is not None:
        valid = np.broadcast_to(np.asarray(coverage, dtype=np.float64), x.shape) >= min_coverage
        t, x = t[valid], x[valid]
    return [
        check_limit(limit, unit, t, x)
        for limit in limits
        if limit.enabled and limit.window == window and limit.quantity == quantity
    ]
