"""Flatline: a sensor repeating the same value is stuck, not measuring.

US EPA sensortoolkit flags >= 3 identical consecutive values at hourly resolution,
i.e. a value constant for at least two hours. On raw readings (minutes apart)
three equal readings are common and harmless, so a run must also span
``min_span_s`` of event time: with hourly means use ``min_span_s=0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streams.detectors.condition import Conditions, Severity, as_batch, make_conditions
from streams.detectors.state import SerialisableState

KIND = "flatline"


@dataclass(frozen=True)
class FlatlineConfig:
    min_run: int = 3
    min_span_s: float = 2 * 3600.0
    tolerance: float = 0.0  # values this close count as identical (quantisation)
    severity: Severity = Severity.WARNING

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity.parse(self.severity))


@dataclass(frozen=True)
class FlatlineState(SerialisableState):
    """The current run: its value, length and first event time."""

    last: float | None = None
    run: int = 0
    run_start: int | None = None


def detect_flatline(
    cfg: FlatlineConfig,
    state: FlatlineState,
    quantity: str,
    ts: np.ndarray | int,
    values: np.ndarray | float,
) -> tuple[Conditions, FlatlineState]:
    """Run length of identical values at each reading; active when long enough.

    ``value`` is the run length (readings), ``reference`` the repeated value.
    A missing reading (NaN) ends the run and is not evaluated.
    """
    t, x = as_batch(ts, values)
    n = len(x)
    prev = np.concatenate(([np.nan if state.last is None else state.last], x[:-1]))
    same = np.abs(x - prev) <= cfg.tolerance  # False where either side is NaN
    idx = np.arange(n)
    last_break = np.maximum.accumulate(np.where(same, -1, idx))
    carried = last_break < 0
    run = np.where(carried, state.run + idx + 1, idx - last_break + 1)
    start_ts = np.where(
        carried,
        -1 if state.run_start is None else state.run_start,
        t[np.maximum(last_break, 0)],
    )
    missing = np.isnan(x)
    run = np.where(missing, 0, run)
    active = (run >= cfg.min_run) & (t - start_ts >= cfg.min_span_s * 1000.0)
    conds = make_conditions(
        KIND,
        quantity,
        "readings",
        t,
        active,
        np.where(missing, np.nan, run),
        cfg.min_run,
        cfg.severity,
        reference=x,
    )
    if n == 0:
        return conds, state
    end_run = int(run[-1])
    return conds, FlatlineState(
        last=None if missing[-1] else float(x[-1]),
        run=end_run,
        run_start=int(start_ts[-1]) if end_run else None,
    )
