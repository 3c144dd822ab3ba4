"""Offline: no uplink for ``factor`` × the unit's expected interval.

Silence produces no readings, so this cannot be driven by readings alone: uplinks
only move ``last_seen`` forward, and ``check_offline`` is called from a clock tick.
The clock is the caller's choice: wall-clock time live, the stream's event time
(e.g. the newest reading in the partition) when replaying, so a replay reproduces
the same alerts. A unit never seen is not judged (the registry may seed
``last_seen`` with its installation time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streams.detectors.condition import Conditions, Severity
from streams.detectors.limits import Limit, check_limit
from streams.detectors.state import SerialisableState

KIND = "offline"


@dataclass(frozen=True)
class OfflineConfig:
    expected_interval_s: float = 300.0
    factor: float = 3.0
    critical_after_s: float | None = 24 * 3600.0  # None: never escalate

    @property
    def limit(self) -> Limit:
        tiers = [(self.factor * self.expected_interval_s, Severity.WARNING)]
        if self.critical_after_s is not None and self.critical_after_s > tiers[0][0]:
            tiers.append((self.critical_after_s, Severity.CRITICAL))
        return Limit(KIND, None, tuple(tiers))


@dataclass(frozen=True)
class OfflineState(SerialisableState):
    last_seen: int | None = None  # event time (ms) of the newest uplink


def record_uplinks(state: OfflineState, ts: np.ndarray | int) -> OfflineState:
    """Remember the newest uplink time; late or redelivered uplinks never move it back."""
    t = np.atleast_1d(np.asarray(ts, dtype=np.int64))
    if len(t) == 0:
        return state
    newest = int(t.max())
    if state.last_seen is not None and state.last_seen >= newest:
        return state
    return OfflineState(last_seen=newest)


def check_offline(cfg: OfflineConfig, state: OfflineState, now: int) -> Conditions:
    """Silence (s) at clock time ``now`` against the expected interval; NaN if never seen."""
    silence = np.nan if state.last_seen is None else (now - state.last_seen) / 1000.0
    return check_limit(cfg.limit, "s", now, silence)
