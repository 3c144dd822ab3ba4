"""Spikes: the Hampel identifier, robust z = |x - median| / (1.4826 * MAD) > z over 2k+1 values.

The textbook filter is centered: it judges the middle of the window, so it needs k
later readings and reports k readings late. For real-time alerts the default is
the causal (trailing) variant: the window is the newest reading and the 2k before
it, and the newest is judged at once. The price: after a genuine level shift the
first readings at the new level look like spikes until they fill half the window,
so trailing mode flags up to k readings of a step; centered mode does not.
Both modes use the same 2k+1 window, so they share one small state.

MAD is 0 when most of the window is identical (quantised or idle sensors); then
any difference would be infinitely significant, so the scale never drops below
``min_scale`` (about the sensor's resolution). Missing readings are skipped. A window
spanning a gap longer than ``max_gap_s`` is not judged: after a unit was away, its
first readings differ from the old ones because time passed, not because they spike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from streams.detectors.condition import Conditions, Severity, as_batch, make_conditions
from streams.detectors.state import SerialisableState

KIND = "spike"
MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its sigma


@dataclass(frozen=True)
class SpikeConfig:
    k: int = 3
    z: float = 3.0
    centered: bool = False
    min_scale: float = 0.0  # floor for 1.4826*MAD, in the quantity's unit
    max_gap_s: float = 1800.0
    severity: Severity = Severity.WARNING

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity.parse(self.severity))
        if self.k < 1:
            raise ValueError("spike window half-width k must be >= 1")


@dataclass(frozen=True)
class SpikeState(SerialisableState):
    """The last 2k valid readings (values and event times), oldest first."""

    values: tuple[float, ...] = ()
    ts: tuple[int, ...] = ()


def detect_spikes(
    cfg: SpikeConfig,
    state: SpikeState,
    quantity: str,
    unit: str,
    ts: np.ndarray | int,
    values: np.ndarray | float,
) -> tuple[Conditions, SpikeState]:
    """One condition per reading that has a full window around it (trailing or centered).

    ``value`` is the reading, ``reference`` the window median and ``threshold`` the
    edge median ± z·scale on the reading's side.
    """
    t, x = as_batch(ts, values)
    ok = ~np.isnan(x)
    buf = np.concatenate((np.asarray(state.values, dtype=np.float64), x[ok]))
    tbuf = np.concatenate((np.asarray(state.ts, dtype=np.int64), t[ok]))
    width = 2 * cfg.k + 1
    tested = cfg.k if cfg.centered else width - 1
    if len(buf) >= width:
        windows = sliding_window_view(buf, width)
        median = np.median(windows, axis=1)
        mad = np.median(np.abs(windows - median[:, None]), axis=1)
        scale = np.maximum(MAD_TO_SIGMA * mad, cfg.min_scale)
        value = windows[:, tested]
        deviation = np.abs(value - median)
        with np.errstate(divide="ignore", invalid="ignore"):
            score = np.where(scale > 0, deviation / scale, np.where(deviation > 0, np.inf, 0.0))
        side = np.where(value >= median, 1.0, -1.0)
        ev_ts = tbuf[tested : tested + len(windows)]
        gap = np.diff(tbuf) > cfg.max_gap_s * 1000
        whole = ~sliding_window_view(gap, width - 1).any(axis=1)
        median, scale, value, score, side, ev_ts = (
            a[whole] for a in (median, scale, value, score, side, ev_ts)
        )
    else:
        median = scale = value = score = side = np.empty(0)
        ev_ts = np.empty(0, dtype=np.int64)
    conds = make_conditions(
        KIND,
        quantity,
        unit,
        ev_ts,
        score > cfg.z,
        value,
        median + side * cfg.z * scale,
        cfg.severity,
        reference=median,
    )
    keep = 2 * cfg.k
    new_state = SpikeState(
        values=tuple(float(v) for v in buf[-keep:]),
        ts=tuple(int(v) for v in tbuf[-keep:]),
    )
    return conds, new_state
