"""Range checks: a reading outside what the sensor can physically report is broken data.

Two strengths share one rule: the physical range (Smart Emission's plausibility
limits) means the reading is impossible; the realistic range (noise 25–130 dB(A))
means it is possible but suspicious, so it is only informative.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streams.detectors.condition import Conditions, Severity, as_batch, make_conditions

PHYSICAL = "range.physical"
REALISTIC = "range.realistic"


@dataclass(frozen=True)
class RangeConfig:
    """Inclusive bounds of one quantity; ``kind`` and ``severity`` set the strength."""

    low: float
    high: float
    kind: str = PHYSICAL
    severity: Severity = Severity.WARNING

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity.parse(self.severity))
        if not self.low < self.high:
            raise ValueError(f"range low {self.low} must be below high {self.high}")


def check_range(
    cfg: RangeConfig, quantity: str, unit: str, ts: np.ndarray | int, values: np.ndarray | float
) -> Conditions:
    """Active where a reading lies outside [low, high]; threshold is the bound crossed."""
    t, x = as_batch(ts, values)
    below = x < cfg.low
    return make_conditions(
        cfg.kind,
        quantity,
        unit,
        t,
        below | (x > cfg.high),
        x,
        np.where(below, cfg.low, cfg.high),
        cfg.severity,
    )


def any_outside(cfg: RangeConfig, values: np.ndarray | float) -> bool:
    """Whether ``check_range`` would find any reading outside the range."""
    x = np.asarray(values, dtype=np.float64)
    return bool(((x < cfg.low) | (x > cfg.high)).any())
