"""Flatline: a sensor repeating the same value is stuck, not measuring.

US EPA sensortoolkit flags >= 3 identical consecutive values at hourly resolution,
i.e. a value constant for at least two hours. On raw readings (minutes apart)
three equal readings are common and harmless, so a run must also span
``min_span_s`` of event time: with hourly means use ``min_span_s=0``. A frozen module
repeats all of its channels at once (the PM counter its PM1, PM2.5 and PM10), which
noise hardly ever does: with a ``group`` a reading only extends the run when the
grouped quantities repeat too, so three raw readings are enough evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    group: tuple[str, ...] = ()  # quantities that must repeat as well
    severity: Severity = Severity.WARNING

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity.parse(self.severity))
        object.__setattr__(self, "group", tuple(self.group))


@dataclass(frozen=True)
class FlatlineState(SerialisableState):
    """The current run: its value, length and first event time."""

    last: float | None = None
    run: int = 0
    run_start: int | None = None
    last_group: dict[str, float | None] | None = None  # last values of the group


def detect_flatline(
    cfg: FlatlineConfig,
    state: FlatlineState,
    quantity: str,
    ts: np.ndarray | int,
    values: np.ndarray | float,
    group: Mapping[str, np.ndarray | float] | None = None,
) -> tuple[Conditions, FlatlineState]:
    """Run length of identical values at each reading; active when long enough.

    ``value`` is the run length (readings), ``reference`` the repeated value.
    A missing reading (NaN) ends the run and is not evaluated. ``group`` holds the
    values of ``cfg.group`` aligned with ``values``; a grouped quantity the unit does not
    send never repeats, so the rule stays conservative rather than judging one channel.
    """
    t, x = as_batch(ts, values)
    n = len(x)
    same = _repeats(x, state.last, cfg.tolerance)
    last_group = dict(state.last_group or {})
    for q in cfg.group:
        g = np.broadcast_to(np.asarray((group or {}).get(q, np.nan), dtype=np.float64), (n,))
        same &= _repeats(g, last_group.get(q), cfg.tolerance)
        if n:
            last_group[q] = None if np.isnan(g[-1]) else float(g[-1])
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
        last_group=last_group or None,
    )


def _repeats(x: np.ndarray, last: float | None, tolerance: float) -> np.ndarray:
    """Whether each value equals the one before it (False where either side is NaN)."""
    prev = np.concatenate(([np.nan if last is None else last], x[:-1]))
    return np.abs(x - prev) <= tolerance
