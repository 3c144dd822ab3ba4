"""Rate of change: a step between consecutive readings faster than the air can change.

Temperature, humidity and pressure change slowly in the open air; a jump between
two readings points at a sensor fault, a heater, or a unit moved indoors. Noise and
PM change fast for real (a passing truck, a smoker), so they have no default limit.
Readings further apart than ``max_gap_s`` are not compared: the gap itself is not
evidence of a jump.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streams.detectors.condition import Conditions, Severity, as_batch, make_conditions
from streams.detectors.state import SerialisableState

KIND = "rate"


@dataclass(frozen=True)
class RateConfig:
    max_per_min: float  # largest plausible |change| per minute, in the quantity's unit
    max_gap_s: float = 1800.0
    severity: Severity = Severity.WARNING

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity.parse(self.severity))


@dataclass(frozen=True)
class RateState(SerialisableState):
    """The previous valid reading."""

    last_ts: int | None = None
    last_value: float | None = None


def detect_rate(
    cfg: RateConfig,
    state: RateState,
    quantity: str,
    unit: str,
    ts: np.ndarray | int,
    values: np.ndarray | float,
) -> tuple[Conditions, RateState]:
    """Change per minute since the previous valid reading, signed so the limit reads ±.

    ``value`` is the rate (unit/min), ``threshold`` ±max_per_min on its side,
    ``reference`` the previous reading. Unevaluated readings (first, missing, after a
    long gap, same timestamp) get a NaN value.
    """
    t, x = as_batch(ts, values)
    ok = ~np.isnan(x)
    vt = np.concatenate(([state.last_ts if state.last_ts is not None else -1], t[ok]))
    vx = np.concatenate(([np.nan if state.last_value is None else state.last_value], x[ok]))
    dt_min = (vt[1:] - vt[:-1]) / 60_000.0
    comparable = (dt_min > 0) & (dt_min * 60.0 <= cfg.max_gap_s) & ~np.isnan(vx[:-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        valid_rate = np.where(comparable, (vx[1:] - vx[:-1]) / dt_min, np.nan)
    rate = np.full(len(x), np.nan)
    rate[ok] = valid_rate
    prev = np.full(len(x), np.nan)
    prev[ok] = vx[:-1]
    conds = make_conditions(
        KIND,
        quantity,
        f"{unit}/min",
        t,
        np.abs(rate) > cfg.max_per_min,
        rate,
        np.where(rate < 0, -cfg.max_per_min, cfg.max_per_min),
        cfg.severity,
        reference=prev,
    )
    if not ok.any():
        return conds, state
    return conds, RateState(last_ts=int(vt[-1]), last_value=float(vx[-1]))
