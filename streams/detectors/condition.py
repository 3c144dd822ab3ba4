"""What every detector returns: conditions, one per evaluated sample.

A condition says whether a rule is violated at one event time, by how much and how
badly. Detectors work column-wise (``Conditions``: NumPy arrays for a batch of one
unit's readings) so a batch costs a few vector operations, not a Python object per
reading; index or iterate to get single ``Condition`` objects.

Invariant the alert lifecycle relies on: when a condition is active, ``value`` lies
at or beyond ``threshold`` on the bad side (above an upper limit, below a lower
one), so the side of the value tells which way is worse. Timestamps are event time
in epoch milliseconds. A NaN ``value`` means "not evaluated" (missing reading).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class Severity(IntEnum):
    """Ordered severities; 0 is reserved for "no severity" in arrays of codes."""

    INFO = 1
    WARNING = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: Severity | int | str) -> Severity:
        """Accept the enum, its code or its label (as written in a YAML registry)."""
        if isinstance(value, str):
            if value.upper() not in cls.__members__:
                raise ValueError(f"severity must be info, warning or critical, got {value!r}")
            return cls[value.upper()]
        return cls(value)


@dataclass(frozen=True)
class Condition:
    """One evaluated sample of one rule.

    ``threshold`` is the limit the value is judged against (the highest tier reached
    for tiered limits); ``clear_threshold``, when set, is the hysteresis level an
    open alert must get back past before it may resolve; ``reference`` is the value
    the reading was compared with where that helps a reader (peer median, window
    median, the repeated value, the previous reading).
    """

    kind: str
    quantity: str | None
    unit: str
    ts: int
    active: bool
    value: float
    threshold: float
    severity: Severity | None
    clear_threshold: float | None = None
    reference: float | None = None
    window: str | None = None


@dataclass(frozen=True)
class Conditions:
    """A batch of conditions of one rule for one unit, in event-time order."""

    kind: str
    quantity: str | None
    unit: str
    ts: np.ndarray  # int64 epoch ms
    active: np.ndarray  # bool
    value: np.ndarray  # float64
    threshold: np.ndarray  # float64
    severity: np.ndarray  # int8 Severity codes, 0 where inactive
    clear_threshold: float | None = None
    reference: np.ndarray | None = None  # float64, NaN where not applicable
    window: str | None = None

    def __len__(self) -> int:
        return len(self.ts)

    def __getitem__(self, i: int) -> Condition:
        code = int(self.severity[i])
        ref = None if self.reference is None else float(self.reference[i])
        return Condition(
            kind=self.kind,
            quantity=self.quantity,
            unit=self.unit,
            ts=int(self.ts[i]),
            active=bool(self.active[i]),
            value=float(self.value[i]),
            threshold=float(self.threshold[i]),
            severity=Severity(code) if code else None,
            clear_threshold=self.clear_threshold,
            reference=None if ref is None or np.isnan(ref) else ref,
            window=self.window,
        )

    def __iter__(self) -> Iterator[Condition]:
        return (self[i] for i in range(len(self)))


def make_conditions(
    kind: str,
    quantity: str | None,
    unit: str,
    ts: np.ndarray,
    active: np.ndarray,
    value: np.ndarray,
    threshold: np.ndarray | float,
    severity: np.ndarray | Severity,
    *,
    clear_threshold: float | None = None,
    reference: np.ndarray | None = None,
    window: str | None = None,
) -> Conditions:
    """Build a batch, broadcasting scalars and zeroing severity where inactive."""
    active = np.asarray(active, dtype=bool)
    n = len(active)
    sev = np.broadcast_to(np.asarray(severity, dtype=np.int8), (n,))
    return Conditions(
        kind=kind,
        quantity=quantity,
        unit=unit,
        ts=np.asarray(ts, dtype=np.int64),
        active=active,
        value=np.asarray(value, dtype=np.float64),
        threshold=np.broadcast_to(np.asarray(threshold, dtype=np.float64), (n,)).copy(),
        severity=np.where(active, sev, 0).astype(np.int8),
        clear_threshold=clear_threshold,
        reference=None if reference is None else np.asarray(reference, dtype=np.float64),
        window=window,
    )


def as_batch(ts: np.ndarray | int, values: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Accept one reading or a batch: returns (int64 ts, float64 values) 1-d arrays."""
    t = np.atleast_1d(np.asarray(ts, dtype=np.int64))
    x = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if t.shape != x.shape:
        raise ValueError(f"ts and values differ in shape: {t.shape} vs {x.shape}")
    return t, x
