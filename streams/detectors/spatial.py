"""Spatial outliers: a unit far from the median of its lab's other units, persistently.

PM, NO2, O3 and the weather vary little across one city, so a unit that keeps
reading far from its neighbours is drifting or broken. Noise is local by nature
and has no default here.

Criterion, per evaluation (one window aggregate per unit, e.g. hourly means):
the reference ``m`` is the median of the *other* units (at least ``min_peers``
with data). The unit is outlying when it is beyond both a ratio and an absolute
difference: above ``max(ratio·m, m + min_diff)`` or below
``min(m / ratio, m - min_diff)`` (ratio None: difference only, for °C, % and hPa
where a ratio means nothing). Requiring both keeps clean-air hours (tiny m, large
ratios) and polluted hours (large m, large differences) quiet.
Persistence catches slow drift without reacting to a local source (a barbecue):
a unit is active when it is outlying now and in at least ``min_hits`` of its last
``window`` evaluations. History is a bit mask per unit, so the state stays tiny.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from streams.detectors.condition import Conditions, Severity, make_conditions
from streams.detectors.state import SerialisableState

KIND = "spatial_outlier"


@dataclass(frozen=True)
class SpatialConfig:
    min_diff: float
    ratio: float | None = 2.0
    min_peers: int = 3
    window: int = 24
    min_hits: int = 18
    severity: Severity = Severity.WARNING

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity.parse(self.severity))
        if not 1 <= self.min_hits <= self.window:
            raise ValueError("spatial min_hits must lie in 1..window")


@dataclass(frozen=True)
class SpatialState(SerialisableState):
    """Per unit: bit i set = outlying i evaluations ago (bit 0 = latest)."""

    history: dict[str, int] = field(default_factory=dict)


def peer_medians(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out median of every unit's peers and how many peers had data."""
    n = len(values)
    others = np.where(np.eye(n, dtype=bool), np.nan, np.broadcast_to(values, (n, n)))
    count = np.sum(~np.isnan(others), axis=1)
    with np.errstate(all="ignore"):
        median = np.array([np.median(row[~np.isnan(row)]) if c else np.nan
                           for row, c in zip(others, count)])  # fmt: skip
    return median, count


def detect_spatial(
    cfg: SpatialConfig,
    state: SpatialState,
    quantity: str,
    unit: str,
    ts: int,
    values: Mapping[str, float],
) -> tuple[dict[str, Conditions], SpatialState]:
    """Judge one time slot of a lab: one condition per unit that could be compared.

    ``value`` is the unit's aggregate, ``reference`` its peers' median and
    ``threshold`` the edge on the unit's side of that median.
    """
    sensors = list(values)
    x = np.array([values[s] for s in sensors], dtype=np.float64)
    median, peers = peer_medians(x)
    upper, lower = median + cfg.min_diff, median - cfg.min_diff
    if cfg.ratio is not None:
        upper = np.maximum(upper, median * cfg.ratio)
        lower = np.minimum(lower, median / cfg.ratio)
    judged = ~np.isnan(x) & (peers >= cfg.min_peers)
    outlying = judged & ((x > upper) | (x < lower))
    mask = (1 << cfg.window) - 1
    history = dict(state.history)
    out: dict[str, Conditions] = {}
    for i, sensor in enumerate(sensors):
        if not judged[i]:
            continue
        bits = ((history.get(sensor, 0) << 1) | int(outlying[i])) & mask
        history[sensor] = bits
        active = bool(outlying[i]) and bits.bit_count() >= cfg.min_hits
        out[sensor] = make_conditions(
            KIND,
            quantity,
            unit,
            np.array([ts]),
            np.array([active]),
            x[i : i + 1],
            upper[i] if x[i] >= median[i] else lower[i],
            cfg.severity,
            reference=median[i : i + 1],
        )
    return out, SpatialState(history=history)
