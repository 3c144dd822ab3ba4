"""Device reboots and frame-counter resets, flagged upstream (payload status bit, FCnt reset).

One reboot is worth knowing (a power cut, a firmware update); many in a day mean a
crash loop or a failing supply. Each flagged reading is an event whose value is the
number of resets within ``window_s`` up to and including it; more than
``max_resets`` escalates to a warning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streams.detectors.condition import Conditions, Severity
from streams.detectors.limits import Limit, check_limit
from streams.detectors.state import SerialisableState

KIND = "reboot"
_KEEP = 64  # resets remembered; a counted value saturates there (a crash loop either way)


@dataclass(frozen=True)
class RebootConfig:
    max_resets: int = 2
    window_s: float = 24 * 3600.0

    @property
    def limit(self) -> Limit:
        return Limit(KIND, None, ((0.0, Severity.INFO), (float(self.max_resets), Severity.WARNING)))


@dataclass(frozen=True)
class RebootState(SerialisableState):
    resets: tuple[int, ...] = ()  # event times (ms) of recent resets, oldest first


def detect_reboots(
    cfg: RebootConfig,
    state: RebootState,
    ts: np.ndarray | int,
    flags: np.ndarray | bool,
) -> tuple[Conditions, RebootState]:
    """Active at each flagged reading; a redelivered flag (not newer than the last) is ignored."""
    t = np.atleast_1d(np.asarray(ts, dtype=np.int64))
    f = np.atleast_1d(np.asarray(flags, dtype=bool))
    if state.resets:
        f = f & (t > state.resets[-1])
    resets = np.concatenate((np.asarray(state.resets, dtype=np.int64), t[f]))
    window_ms = int(cfg.window_s * 1000)
    upto = np.searchsorted(resets, t, side="right")
    after = np.searchsorted(resets, t - window_ms, side="right")
    count = np.where(f, upto - after, 0).astype(np.float64)
    conds = check_limit(cfg.limit, "resets", t, count)
    if len(t):
        resets = resets[resets > t.max() - window_ms]
    return conds, RebootState(resets=tuple(int(r) for r in resets[-_KEEP:]))
