"""Fog: most of a lab's units read saturated air at once, so their PM over-reads.

One unit at 100 % RH is condensation on its sensor or a damp corner, and Dutch
nights bring it often; fog is weather and covers the lab. Each unit has a humid
trigger (its ``humidity_pm`` limit, debounced by the alert lifecycle); the lab is
foggy while at least ``quorum`` of its units, and at least ``min_units``, are humid.
Then every humid unit is active: its PM readings are humidity-affected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from streams.detectors.condition import Conditions, make_conditions
from streams.detectors.limits import Limit
from streams.detectors.state import SerialisableState


@dataclass(frozen=True)
class FogConfig:
    quorum: float = 0.5  # share of the lab's units
    min_units: int = 3


@dataclass(frozen=True)
class FogState(SerialisableState):
    """Humid units: sensor -> humidity when its trigger went on."""

    humid: dict[str, float] = field(default_factory=dict)


def detect_fog(
    cfg: FogConfig,
    state: FogState,
    limit: Limit,
    units: int,
    sensor: str,
    ts: int,
    humid: bool,
    value: float,
) -> tuple[dict[str, Conditions], FogState]:
    """Apply one unit's trigger change at ``ts``; judge that unit and every humid one.

    ``units`` is the number of units in the lab; ``value`` the unit's humidity at
    the change. A unit going dry gets an inactive condition (its alert resolves).
    """
    after = dict(state.humid)
    if humid:
        after[sensor] = value
    else:
        after.pop(sensor, None)
    foggy = len(after) >= max(cfg.min_units, math.ceil(cfg.quorum * units))
    judged = {**after, sensor: value}
    out = {
        s: make_conditions(limit.kind, limit.quantity, "%", np.array([ts]),
                           np.array([foggy and s in after]), np.array([x]), limit.tiers[0][0],
                           limit.tiers[0][1])
        for s, x in judged.items()
    }  # fmt: skip
    return out, FogState(humid=after)
