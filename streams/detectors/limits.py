"""Tiered limits: one rule, several levels of badness, each with its own severity.

Air and noise limits come in tiers (WHO guideline below the EU limit value; the O3
information threshold below the alert threshold; construction noise 60…80), and so
does a battery (low, then critical). One ``Limit`` holds the tiers of one rule so
a value climbing through them updates one alert instead of opening several.
A limit is exceeded strictly beyond its value (EU wording: "exceeds" means ">").
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from streams.detectors.condition import Conditions, Severity, as_batch, make_conditions


@dataclass(frozen=True)
class Limit:
    """Tiers ``(value, severity)`` from mildest to worst.

    ``lower`` limits are bad below their values (battery). ``hysteresis`` sets the
    level an open alert must pass back through to resolve: the first tier minus (or,
    for lower limits, plus) this margin. ``window`` names the aggregate the limit
    applies to (None: raw readings). ``source`` cites where the numbers come from.
    """

    kind: str
    quantity: str | None
    tiers: tuple[tuple[float, Severity], ...]
    window: str | None = None
    lower: bool = False
    hysteresis: float = 0.0
    enabled: bool = True
    source: str = ""

    def __post_init__(self) -> None:
        tiers = tuple((float(v), Severity.parse(s)) for v, s in self.tiers)
        object.__setattr__(self, "tiers", tiers)
        if not tiers:
            raise ValueError(f"limit {self.kind} has no tiers")
        sign = self.sign
        for (v0, s0), (v1, s1) in pairwise(tiers):
            if not (sign * v1 > sign * v0 and s1 >= s0):
                raise ValueError(f"limit {self.kind}: tiers must worsen in order, got {tiers}")

    @property
    def sign(self) -> int:
        return -1 if self.lower else 1

    @property
    def clear_threshold(self) -> float:
        return self.tiers[0][0] - self.sign * self.hysteresis


def check_limit(
    limit: Limit, unit: str, ts: np.ndarray | int, values: np.ndarray | float
) -> Conditions:
    """Active where a value is beyond the first tier; threshold/severity of the worst tier hit."""
    t, x = as_batch(ts, values)
    levels = np.array([v for v, _ in limit.tiers])
    codes = np.array([int(s) for _, s in limit.tiers], dtype=np.int8)
    sign = limit.sign
    # tiers worsen monotonically, so the tiers exceeded form a prefix: count them
    hit = (sign * x[:, None] > sign * levels[None, :]).sum(axis=1)
    tier = np.maximum(hit - 1, 0)
    return make_conditions(
        limit.kind,
        limit.quantity,
        unit,
        t,
        hit > 0,
        x,
        levels[tier],
        codes[tier],
        clear_threshold=limit.clear_threshold,
        window=limit.window,
    )
