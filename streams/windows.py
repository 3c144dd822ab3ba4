"""Event-time tumbling windows for one unit, closed by a per-partition watermark (pure).

Faust's own windowed tables expire by wall-clock and have no grace period, so the
window semantics live here: a window closes when the watermark (highest event time
seen on the partition minus the allowed lateness) passes its end, and only then is
its final aggregate emitted.
"""

from __future__ import annotations

import math
from typing import Any

NOISE = frozenset({"laeq", "lamax", "lamin", "l10", "l50", "l90"})
HOUR_MS = 3_600_000

# Per quantity accumulator: [count, covered_ms, sum (energy for noise), min, max]
Acc = list[float]


def window_start(ts: int, size_ms: int = HOUR_MS) -> int:
    return ts - ts % size_ms


def add(
    windows: dict[str, dict[str, Acc]],
    ts: int,
    values: dict[str, float],
    sample_ms: int,
    size_ms: int = HOUR_MS,
) -> None:
    """Add one reading (held for sample_ms) to the window that contains ts."""
    accs = windows.setdefault(str(window_start(ts, size_ms)), {})
    for quantity, value in values.items():
        contribution = sample_ms * (10 ** (value / 10) if quantity in NOISE else value)
        acc = accs.get(quantity)
        if acc is None:
            accs[quantity] = [1, sample_ms, contribution, value, value]
        else:
            acc[0] += 1
            acc[1] += sample_ms
            acc[2] += contribution
            if value < acc[3]:
                acc[3] = value
            if value > acc[4]:
                acc[4] = value


def stats(accs: dict[str, Acc], size_ms: int = HOUR_MS) -> list[dict[str, Any]]:
    """Final per-quantity statistics of one window (Aggregate.stats)."""
    out = []
    for quantity in sorted(accs):
        count, covered, total, low, high = accs[quantity]
        mean = total / covered
        if quantity in NOISE:
            mean = 10 * math.log10(mean)
        out.append(
            {
                "quantity": quantity,
                "count": int(count),
                "coverage": min(1.0, covered / size_ms),
                "mean": mean,
                "min": low,
                "max": high,
            }
        )
    return out


def close(
    windows: dict[str, dict[str, Acc]], watermark: int, size_ms: int = HOUR_MS
) -> list[tuple[int, dict[str, Acc]]]:
    """Remove and return the windows whose end is at or before the watermark, oldest first."""
    due = sorted(int(s) for s in windows if int(s) + size_ms <= watermark)
    return [(start, windows.pop(str(start))) for start in due]
