"""Windows derived from a unit's closed hourly windows (pure): running means, local days,
Lden days and the hourly LKI.

Hourly accumulators are the building block: every longer window is computed from the
hours it spans (a gapless grid, None for an hour without data), with the rules of
streams.science, so a late reading only has to correct its hour and re-derive what
depends on that hour. Hours are UTC hours, which tile local days and the Lden periods
exactly in whole-hour-offset time zones (all of Europe).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import numpy as np

from livinglab.codec.payload import QUANTITIES
from streams.science.acoustics import NoiseWindow, day_levels
from streams.science.airquality import (
    DAILY_MIN_VALID_HOURS,
    LKI_EDGES,
    daily_mean,
    lki_subindex,
    lki_total,
    o3_daily_max_8h,
    o3_running_8h,
    pm_running_24h,
)
from streams.windows import COLUMN, IS_NOISE, NOISE, PERCENTS, Acc, mean_of, stat

HOUR_S = 3600
VALID_SHARE = 0.75  # Lden periods: a period level needs 75 % of it covered
# Running windows: kind -> (quantities, running-mean function, hours)
RUNNING = {
    "8h": (("o3",), o3_running_8h, 8),
    "24h": (("pm1", "pm25", "pm10"), pm_running_24h, 24),
}
O3_MAX_LEAD_H = 7  # the first 8-h mean of a day ends at 01:00, so it starts 7 h before

_EMPTY = Acc()


class HourGrid:
    """A unit's hourly accumulators on a gapless grid, as arrays for the whole span."""

    def __init__(self, hours: Sequence[Acc | None]) -> None:
        self.hours = [acc or _EMPTY for acc in hours]
        self.rows = np.stack([acc.rows for acc in self.hours])  # (hours, 5, quantities)
        self.flags = np.bitwise_or.reduce(np.stack([acc.flags for acc in self.hours]), axis=0)
        count, covered, total = self.rows[:, 0], self.rows[:, 1], self.rows[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = np.where(IS_NOISE, 10 * np.log10(total / covered), total / count)
        self.mean = np.where(count > 0, mean, np.nan).T  # (quantities, hours)
        self.valid = (4 * covered >= 3 * HOUR_S).T

    def count(self, quantity: str) -> int:
        return int(self.rows[:, 0, COLUMN[quantity]].sum())

    def series(self, quantities: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Hourly means and their validity, (len(quantities), hours); NaN/False if absent."""
        columns = [COLUMN[q] for q in quantities]
        return self.mean[columns], self.valid[columns]

    def stat(self, quantity: str, mean: float, n_valid: int, valid: bool) -> dict[str, Any]:
        """A derived window's stats entry: count, coverage, min/max and flags over the
        grid (L10/L50/L90 of LAeq from the merged histograms), the mean and validity from
        the rule of the window."""
        count, covered, _, low, high = self.rows[:, :, COLUMN[quantity]].T
        percentiles = None
        if quantity == "laeq":
            noise = NoiseWindow()
            for acc in self.hours:
                noise = noise.merge(acc.noise) if acc.noise.count else noise
            percentiles = [float(v) for v in noise.exceeded(PERCENTS)]
        return stat(
            quantity,
            int(count.sum()),
            covered.sum() / (len(self.hours) * HOUR_S),
            float(mean),
            float(low.min()),
            float(high.max()),
            bool(valid),
            int(self.flags[COLUMN[quantity]]),
            valid_hours=int(n_valid),
            percentiles=percentiles,
        )


def running(kind: str, grids: Sequence[HourGrid]) -> list[list[dict[str, Any]]]:
    """Stats of the running windows ending at the end of each grid's last hour, one grid
    per unit (one vectorised call for all units that close the same hour): the mean of
    the valid hourly means (O3 8 h: valid with 6; PM 24 h: with 18 valid hours)."""
    quantities, mean_of, n_hours = RUNNING[kind]
    assert all(len(grid.hours) == n_hours for grid in grids)
    series = [grid.series(quantities) for grid in grids]
    result = mean_of(np.stack([m for m, _ in series]), np.stack([v for _, v in series]))
    return [
        [
            grid.stat(q, result.value[u, i, -1], result.n[u, i, -1], result.valid[u, i, -1])
            for i, q in enumerate(quantities)
            if grid.count(q)
        ]
        for u, grid in enumerate(grids)
    ]


def local_day(
    lead: HourGrid, day: HourGrid, hour_starts_s: np.ndarray, tz: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Stats and indices of one local day (its 23, 24 or 25 hours in `day`).

    Air and other arithmetic quantities: the mean of the valid hourly means, valid with
    >= 18 valid hours (streams.science.airquality.daily_mean); noise levels: the LAeq
    over the covered time, valid under the same 18-hour rule; L10/L50/L90 of the day
    from the merged level histograms. `lead` are the 7 hours before the day, for the
    O3 maximum daily 8-h mean (index o3_max_8h, each 8-h mean counted for the day it
    ends in).
    """
    present = [q for i, q in enumerate(QUANTITIES) if day.count(q) or day.flags[i]]
    if not present:
        return [], []
    mean, valid = day.series(present)
    daily = daily_mean(hour_starts_s, mean, valid, tz)
    stats = []
    for i, q in enumerate(present):
        n = int(daily.n[i, -1])
        if q in NOISE:
            value = mean_of(q, *day.rows[:, :3, COLUMN[q]].sum(axis=0))
        else:
            value = daily.value[i, -1]
        stats.append(day.stat(q, value, n, n >= DAILY_MIN_VALID_HOURS))
    indices = []
    if day.count("o3"):
        o3, o3_valid = (
            np.concatenate(pair, axis=1) for pair in zip(lead.series(["o3"]), day.series(["o3"]))
        )
        lead_s = hour_starts_s[0] - HOUR_S * np.arange(len(lead.hours), 0, -1)
        best = o3_daily_max_8h(np.r_[lead_s, hour_starts_s], o3[0], o3_valid[0], tz)
        n = int(best.n[-1])
        indices.append(index("o3_max_8h", best.value[-1], n / len(day.hours), best.valid[-1]))
    return stats, indices


def lden_day(day: date, grid: HourGrid, hour_starts_s: np.ndarray, tz: str) -> list[dict]:
    """Lden, Lday, Levening and Lnight of the Lden day `day` (07:00 to 07:00 local) from
    its hours' LAeq energies (streams.science.acoustics.day_levels); each level is valid
    when its periods are at least 75 % covered."""
    count, covered, energy = grid.rows[:, :3, COLUMN["laeq"]].T
    have = count > 0
    if not have.any():
        return []
    levels = day_levels(day, hour_starts_s[have], energy[have], covered[have], tz)
    cov = levels.coverage
    total = sum(c * p for c, p in zip(cov, levels.period_s)) / sum(levels.period_s)
    ok = [c >= VALID_SHARE for c in cov]
    return [
        index("lden", levels.lden, total, all(ok)),
        index("lday", levels.lday, cov[0], ok[0]),
        index("levening", levels.levening, cov[1], ok[1]),
        index("lnight", levels.lnight, cov[2], ok[2]),
    ]


def lki(accs: Sequence[Acc]) -> list[list[dict[str, Any]]]:
    """Hourly LKI of units' hours, one list per hour: the sub-index of each pollutant's
    hourly mean and the total (streams.science.airquality). The total uses the valid
    hourly means only; an hour without any gets the total of what it has, marked invalid.
    One vectorised call for all units closing an hour (per unit, NumPy's per-call cost
    on four scalars was a fifth of the hour's close)."""
    if not accs:
        return []
    pollutants = list(LKI_EDGES)
    columns = [COLUMN[p] for p in pollutants]
    rows = np.stack([acc.rows[:3, columns] for acc in accs])  # (hours, 3, pollutants)
    count, covered, total = rows[:, 0], rows[:, 1], rows[:, 2]
    have = count > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(have, total / count, np.nan)
    subs = np.stack([lki_subindex(p, mean[:, i]) for i, p in enumerate(pollutants)], axis=1)
    valid = have & (4 * covered >= 3 * HOUR_S)
    used = np.where(valid.any(axis=1, keepdims=True), valid, have)
    totals = lki_total(dict(enumerate(np.where(used, subs, np.nan).T)))
    coverage = np.minimum(covered / HOUR_S, 1.0)
    lowest = np.where(used, coverage, np.inf).min(axis=1)
    out = []
    for h in range(len(accs)):
        if not have[h].any():
            out.append([])
            continue
        entries = [
            index(f"lki_{p}", subs[h, i], coverage[h, i], valid[h, i])
            for i, p in enumerate(pollutants)
            if have[h, i]
        ]
        entries.append(index("lki", totals[h], lowest[h], valid[h].any()))
        out.append(entries)
    return out


def index(name: str, value: float, coverage: float, valid: bool) -> dict[str, Any]:
    """One Aggregate.indices entry."""
    return {
        "name": name,
        "value": float(value),
        "coverage": float(min(1.0, coverage)),
        "valid": bool(valid),
    }
