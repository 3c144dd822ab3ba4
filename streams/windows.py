"""Event-time tumbling windows of one unit: a compact, mergeable accumulator (pure).

Faust's windowed tables expire by wall-clock and have no grace period, so the window
semantics are ours (streams/eventtime.py closes windows by a watermark). This module
holds what one window of one unit has to remember so that it can be closed, corrected
by a late reading, merged into a longer window and stored in a JSON changelog:

- per quantity: sample count, covered seconds, sum, min, max and the OR of the readings'
  quality flags. Noise levels sum energy t*10^(L/10) (never dB); the others sum values,
  so an hourly mean is sum/count as in streams.science.airquality.hourly_mean;
- the 0.5 dB LAeq level histogram of a NoiseWindow (streams.science.acoustics), from
  which L10/L50/L90 are recomputed (percentiles do not combine);
- the window's version (1 when it closed, +1 per late reading folded in afterwards) and
  the highest input offset folded in, so a record redelivered after a crash is not
  counted twice.

Serialised as one ASCII string (base64 of a zlib-compressed fixed binary layout, about
450 characters for an hour of one-minute readings): compact in memory and cheap to
write to a JSON changelog.
"""

from __future__ import annotations

import base64
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import lz4.block
import numpy as np

from livinglab.codec.payload import QUANTITIES
from streams import quality
from streams.science.acoustics import N_BINS, NoiseWindow, bin_index

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
NOISE = frozenset({"laeq", "lamax", "lamin", "l10", "l50", "l90"})
COLUMN = {q: i for i, q in enumerate(QUANTITIES)}
IS_NOISE = np.array([q in NOISE for q in QUANTITIES])
LAEQ = COLUMN["laeq"]
PERCENTS = (10.0, 50.0, 90.0)  # L10, L50, L90

_HEAD = struct.Struct("<Iq")  # version, highest input offset folded in
# Stored form: this prefix, then base64 of the LZ4 block (zlib took 9 us per window, LZ4
# 1 us, 16 % larger); strings without it are zlib, written before.
_LZ4 = "4:"
_ROWS = 5  # count, covered_s, sum, min, max
_ROWS_BYTES = _ROWS * len(QUANTITIES) * 8
_FLAGS_BYTES = len(QUANTITIES) * 4


def window_start(ts: int, size_ms: int) -> int:
    return ts - ts % size_ms


def is_valid(covered_s: float, window_s: float) -> bool:
    """>= 75 % of the window covered, in exact arithmetic (DESIGN.md section 5).

    covered = samples x the unit's interval, so this is the "75 % of expected samples"
    rule of streams.science.airquality.hourly_mean, for any window length.
    """
    return bool(4 * covered_s >= 3 * window_s)


def mean_of(quantity: str, count: float, covered: float, total: float) -> float:
    """Energetic mean over the covered time for noise levels, arithmetic otherwise."""
    if count == 0:
        return float("nan")
    return float(10 * np.log10(total / covered) if quantity in NOISE else total / count)


def _empty_rows() -> np.ndarray:
    rows = np.zeros((_ROWS, len(QUANTITIES)))
    rows[3], rows[4] = np.inf, -np.inf
    return rows


@dataclass(slots=True)
class Acc:
    """Accumulated state of one tumbling window of one unit (or of a union of windows).

    rows[:, q] = count, covered seconds, sum, min, max of quantity q. Sums are added one
    reading at a time in arrival order, so a window's figures are the same to the last
    bit however the input was cut into batches (a restarted worker, a second run). The
    NoiseWindow holds the LAeq level histogram (exact: whole seconds per bin) for the
    statistical levels; its own energy sum is not used.
    """

    rows: np.ndarray = field(default_factory=_empty_rows)
    flags: np.ndarray = field(default_factory=lambda: np.zeros(len(QUANTITIES), np.uint32))
    noise: NoiseWindow = field(default_factory=NoiseWindow)
    version: int = 0
    offset: int = -1

    def fold(
        self, values: np.ndarray, flags: np.ndarray, duration_s: np.ndarray, offsets: np.ndarray
    ) -> None:
        """Add readings in arrival order: values (n, Q) with NaN where a quantity is absent
        or excluded, their flags (n, Q), the seconds each stands for, its input offset."""
        if not len(values):
            return
        have = np.isfinite(values)
        x = np.where(have, values, 0.0)
        t = duration_s[:, None]
        summand = np.where(have, np.where(IS_NOISE, t * np.power(10.0, x / 10.0), x), 0.0)
        self.rows[0] += have.sum(axis=0)
        self.rows[1] += np.where(have, t, 0.0).sum(axis=0)  # whole seconds: exact
        self.rows[2] = np.add.accumulate(np.vstack([self.rows[2], summand]), axis=0)[-1]
        np.minimum(self.rows[3], np.where(have, values, np.inf).min(axis=0), out=self.rows[3])
        np.maximum(self.rows[4], np.where(have, values, -np.inf).max(axis=0), out=self.rows[4])
        self.flags |= np.bitwise_or.reduce(flags.astype(np.uint32), axis=0)
        laeq = have[:, LAEQ]
        if laeq.any():
            self.noise.add(values[laeq, LAEQ], duration_s[laeq])
        self.offset = max(self.offset, int(offsets.max()))

    @staticmethod
    def fold_many(
        accs: list[Acc],
        groups: list[np.ndarray],
        values: np.ndarray,
        flags: np.ndarray,
        duration_s: np.ndarray,
        offsets: np.ndarray,
    ) -> None:
        """`accs[g].fold(rows groups[g] of the arrays)` for every g, in a fixed number of
        NumPy calls instead of a dozen per window: with small batches most windows get one
        or two readings, and per-call overhead was most of the worker's time.

        The result is the same to the last bit: counts, covered seconds and histogram
        bins hold whole numbers, extremes and flags do not depend on order, and the sums
        are added position by position, so each window still adds its readings one at a
        time in arrival order. (The NoiseWindow's own energy sum, which no output uses,
        is summed per group in one go, as `fold` does per batch.)
        """
        sizes = np.array([len(g) for g in groups])
        n_groups, idx = len(accs), np.concatenate(groups)
        gid = np.repeat(np.arange(n_groups), sizes)
        pos = np.arange(idx.size) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        v, t, o = values[idx], duration_s[idx], offsets[idx]
        have = np.isfinite(v)
        x = np.where(have, v, 0.0)
        summand = np.where(have, np.where(IS_NOISE, t[:, None] * np.power(10.0, x / 10.0), x), 0.0)
        rows = np.stack([acc.rows for acc in accs])
        np.add.at(rows[:, 0], gid, have.astype(np.float64))
        np.add.at(rows[:, 1], gid, np.where(have, t[:, None], 0.0))
        for k in range(int(sizes.max())):
            at = pos == k
            rows[gid[at], 2] += summand[at]
        np.minimum.at(rows[:, 3], gid, np.where(have, v, np.inf))
        np.maximum.at(rows[:, 4], gid, np.where(have, v, -np.inf))
        bits = np.stack([acc.flags for acc in accs])
        np.bitwise_or.at(bits, gid, flags[idx].astype(np.uint32))
        latest = np.array([acc.offset for acc in accs], dtype=np.int64)
        np.maximum.at(latest, gid, o)
        noisy = have[:, LAEQ]
        g_n, level, t_n = gid[noisy], v[noisy, LAEQ], t[noisy]
        covered = np.bincount(g_n, t_n, n_groups)
        energies = np.bincount(g_n, t_n * np.power(10.0, level / 10.0), n_groups)
        counts = np.bincount(g_n, minlength=n_groups)
        high = np.full(n_groups, -np.inf)
        low = np.full(n_groups, np.inf)
        np.maximum.at(high, g_n, level)
        np.minimum.at(low, g_n, level)
        # Seconds per (window, level bin), only for the pairs that occur: a dense
        # windows x bins array would be tens of MB per batch.
        cells, cell = np.unique(g_n * N_BINS + bin_index(level), return_inverse=True)
        seconds = np.bincount(cell, t_n)
        first = np.searchsorted(cells // N_BINS, np.arange(n_groups + 1))
        for g, acc in enumerate(accs):
            acc.rows, acc.flags, acc.offset = rows[g], bits[g], int(latest[g])
            if counts[g]:
                w = acc.noise
                w.covered_s += float(covered[g])
                w.energy += float(energies[g])
                w.lmax, w.lmin = max(w.lmax, float(high[g])), min(w.lmin, float(low[g]))
                w.count += int(counts[g])
                at = slice(first[g], first[g + 1])
                w.hist[cells[at] % N_BINS] += seconds[at]

    def merge(self, other: Acc) -> Acc:
        """Both windows together (sums add, extremes combine); version and offset are
        per stored window and do not carry over."""
        rows = self.rows.copy()
        rows[:3] += other.rows[:3]
        np.minimum(rows[3], other.rows[3], out=rows[3])
        np.maximum(rows[4], other.rows[4], out=rows[4])
        return Acc(rows, self.flags | other.flags, self.noise.merge(other.noise))

    def count(self, quantity: str) -> int:
        return int(self.rows[0, COLUMN[quantity]])

    def stats(self, window_s: float) -> list[dict[str, Any]]:
        """Aggregate.stats of the window: every quantity with a sample or a flag.

        A quantity whose readings were all out of range still gets a row (count 0, NaN
        mean) so the rejection is visible next to the valid quantities. (Plain floats:
        NumPy scalars took most of the time at an hour's close of thousands of units.)
        """
        out = []
        nan = float("nan")
        for quantity, (count, covered, total, low, high), flags in zip(
            QUANTITIES, self.rows.T.tolist(), self.flags.tolist()
        ):
            if count == 0 and not flags:
                continue
            percentiles = None
            if quantity == "laeq" and count:
                percentiles = self.noise.exceeded(PERCENTS).tolist()
            out.append(
                stat(
                    quantity,
                    int(count),
                    covered / window_s,
                    mean_of(quantity, count, covered, total),
                    low if count else nan,
                    high if count else nan,
                    is_valid(covered, window_s),
                    flags,
                    percentiles=percentiles,
                )
            )
        return out

    def to_str(self) -> str:
        raw = b"".join(
            (
                _HEAD.pack(self.version, self.offset),
                self.rows.astype("<f8").tobytes(),
                self.flags.astype("<u4").tobytes(),
                self.noise.to_bytes(),
            )
        )
        return _LZ4 + base64.b64encode(lz4.block.compress(raw)).decode("ascii")

    @classmethod
    def thaw(cls, kept: Acc | str) -> Acc:
        """An open window as the device entry holds it: decoded since the last checkpoint
        (streams/uplink_worker.py), or its stored string."""
        return kept if isinstance(kept, Acc) else cls.from_str(kept)

    @classmethod
    def from_str(cls, text: str) -> Acc:
        if text.startswith(_LZ4):
            raw = lz4.block.decompress(base64.b64decode(text[len(_LZ4) :]))
        else:  # zlib: written before lz4
            raw = zlib.decompress(base64.b64decode(text))
        version, offset = _HEAD.unpack_from(raw)
        at = _HEAD.size
        rows = np.frombuffer(raw, "<f8", _ROWS * len(QUANTITIES), at).reshape(_ROWS, -1).copy()
        at += _ROWS_BYTES
        flags = np.frombuffer(raw, "<u4", len(QUANTITIES), at).astype(np.uint32)
        noise = NoiseWindow.from_bytes(raw[at + _FLAGS_BYTES :])
        return cls(rows, flags, noise, version, offset)


def stat(
    quantity: str,
    count: int,
    coverage: float,
    mean: float,
    low: float,
    high: float,
    valid: bool,
    flags: int,
    valid_hours: int | None = None,
    percentiles: list[float | None] | None = None,
) -> dict[str, Any]:
    """One Aggregate.stats entry; coverage is capped at 1 (jittered samples may overlap)."""
    l10, l50, l90 = percentiles or (None, None, None)
    return {
        "quantity": quantity,
        "count": count,
        "coverage": min(1.0, coverage),
        "mean": mean,
        "min": low,
        "max": high,
        "valid": valid,
        "flags": flags | (0 if valid else quality.LOW_COVERAGE),
        "valid_hours": valid_hours,
        "l10": l10,
        "l50": l50,
        "l90": l90,
    }
