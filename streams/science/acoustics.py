"""Noise science: energetic means, a mergeable window accumulator, and Lden on local days.

Decibels are logarithmic, so every combination here goes through energy
E = sum(t_i * 10^(L_i/10)) (seconds x relative intensity) and back with 10*log10(E/T):
never through an arithmetic mean of dB values (DESIGN.md section 5).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import date
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import ArrayLike

from streams.science.localtime import DEFAULT_TZ, local_epoch, zone

# 0.5 dB bins: a power of two, so level/BIN_DB is exact in binary floating point and a
# sensor value reported in 0.1 dB that lies on an edge (55.0, 55.5) always lands in the
# bin it names (0.1 dB bins would put 0.3 in bin 2: 0.3/0.1 = 2.9999999999999996).
# It bounds percentile error at 0.5 dB, below the +-1..2 dB of a low-cost class-2 sensor,
# and keeps the dense histogram at 390 float64 (3 KB); serialised, only the occupied span.
BIN_DB = 0.5
LEVEL_MIN_DB = 0.0
LEVEL_MAX_DB = 195.0  # plausible sensor range (Smart Emission)
N_BINS = round((LEVEL_MAX_DB - LEVEL_MIN_DB) / BIN_DB)

EVENING_PENALTY_DB = 5.0
NIGHT_PENALTY_DB = 10.0
# Local hours at which day, evening and night start (2002/49/EC default, used in NL).
DAY_START_H, EVENING_START_H, NIGHT_START_H = 7, 19, 23


def energy(levels: ArrayLike, durations: ArrayLike, axis: int = -1) -> np.ndarray:
    """Sum of t_i * 10^(L_i/10): the additive quantity behind every noise combination."""
    levels = np.asarray(levels, dtype=np.float64)
    durations = np.broadcast_to(np.asarray(durations, dtype=np.float64), levels.shape)
    return np.sum(durations * np.power(10.0, levels / 10.0), axis=axis)


def level_from_energy(energy_sum: ArrayLike, seconds: ArrayLike) -> np.ndarray:
    """10*log10(E/T): the equivalent continuous level; NaN where nothing was covered."""
    e = np.asarray(energy_sum, dtype=np.float64)
    t = np.asarray(seconds, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(t > 0, 10.0 * np.log10(e / t), np.nan)


def energetic_mean(
    levels: ArrayLike, durations: ArrayLike | None = None, axis: int = -1
) -> np.ndarray:
    """LAeq,T = 10*log10(sum((t_i/T) * 10^(L_i/10))) with T = sum(t_i), the covered time.

    Equal weights when `durations` is None. Reduces along `axis`, so one call handles a
    (sensors x readings) block.
    """
    levels = np.asarray(levels, dtype=np.float64)
    t = np.ones_like(levels) if durations is None else np.asarray(durations, dtype=np.float64)
    t = np.broadcast_to(t, levels.shape)
    return level_from_energy(energy(levels, t, axis=axis), np.sum(t, axis=axis))


def lden(
    ld: ArrayLike,
    le: ArrayLike,
    ln: ArrayLike,
    hours: tuple[float, float, float] = (12.0, 4.0, 8.0),
) -> np.ndarray:
    """Lden from the period levels, weighting each period by its duration in hours.

    The default (12, 4, 8) is the 2002/49/EC formula; pass the actual durations on a DST
    day (night 7 h or 9 h), so every hour weighs the same and the divisor is 23 or 25.
    """
    hd, he, hn = hours
    weighted = (
        hd * np.power(10.0, np.asarray(ld, dtype=np.float64) / 10.0)
        + he * np.power(10.0, (np.asarray(le, dtype=np.float64) + EVENING_PENALTY_DB) / 10.0)
        + hn * np.power(10.0, (np.asarray(ln, dtype=np.float64) + NIGHT_PENALTY_DB) / 10.0)
    )
    return 10.0 * np.log10(weighted / (hd + he + hn))


@dataclass(frozen=True, slots=True)
class DayLevels:
    """Lday/Levening/Lnight/Lden of one local day, with what they rest on.

    coverage is covered seconds / period seconds per period (day, evening, night);
    period_s is each period's actual length (the night is 7 h or 9 h on DST nights).
    """

    day: date
    lday: float
    levening: float
    lnight: float
    lden: float
    coverage: tuple[float, float, float]
    period_s: tuple[float, float, float]


def day_levels(
    day: date,
    starts: ArrayLike,
    energies: ArrayLike,
    covered_s: ArrayLike,
    tz: str | ZoneInfo = DEFAULT_TZ,
) -> DayLevels:
    """Lday, Levening, Lnight and Lden of the local day `day` from interval energy sums.

    Day D runs 07:00 D -> 07:00 D+1 local time: day 07-19, evening 19-23 and the night
    23:00 D -> 07:00 D+1, as in 2002/49/EC where the 24 h period starts with the day
    period. So the DST nights fall in the Lden days 2026-03-28 (night 7 h, day 23 h) and
    2026-10-24 (night 9 h, day 25 h); the calendar days 03-29 and 10-25 have 24 h here.

    Each interval (epoch-second start, energy sum E = sum t*10^(L/10), covered seconds),
    e.g. an hourly NoiseWindow, counts in the period its start falls in, so intervals must
    not straddle a period edge (UTC-hour windows never do in a whole-hour-offset zone).
    Intervals starting outside day D are ignored, so a longer series can be passed.
    Each period level is the LAeq over its covered time; Lden weights periods by their
    actual length. A period without coverage gives NaN for it and for Lden.
    """
    tzinfo = zone(tz)
    edges = np.array(
        [
            local_epoch(day, h, tzinfo)
            for h in (DAY_START_H, EVENING_START_H, NIGHT_START_H, 24 + DAY_START_H)
        ]
    )
    starts = np.asarray(starts, dtype=np.float64)
    period = np.searchsorted(edges, starts, side="right") - 1
    inside = (period >= 0) & (period < 3)
    e = np.bincount(period[inside], np.asarray(energies, dtype=np.float64)[inside], 3)
    t = np.bincount(period[inside], np.asarray(covered_s, dtype=np.float64)[inside], 3)
    period_s = np.diff(edges)
    levels = level_from_energy(e, t)
    return DayLevels(
        day=day,
        lday=float(levels[0]),
        levening=float(levels[1]),
        lnight=float(levels[2]),
        lden=float(lden(*levels, hours=tuple(period_s / 3600.0))),
        coverage=tuple(float(c) for c in t / period_s),
        period_s=tuple(float(p) for p in period_s),
    )


def bin_index(levels: np.ndarray) -> np.ndarray:
    """Histogram bin of each level: [k*BIN_DB, (k+1)*BIN_DB), clamped to the plausible range."""
    k = np.floor((levels - LEVEL_MIN_DB) / BIN_DB).astype(np.int64)
    return np.clip(k, 0, N_BINS - 1)


def _finite(name: str, a: np.ndarray) -> None:
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite")


# version, covered_s, energy, lmax, lmin, count, first occupied bin, number of bins stored
_HEADER = struct.Struct("<BddddqHH")
_FORMAT_VERSION = 1


@dataclass(slots=True, eq=False)
class NoiseWindow:
    """Mergeable, serialisable noise state of one window (or any union of windows).

    Holds exactly what combines: covered seconds, energy sum, LAmax, LAmin, reading count
    and a histogram of covered seconds per 0.5 dB level bin, from which the percentile
    levels are recomputed (percentiles themselves do not combine). `add` folds readings in
    place; `merge` returns a new window and is associative and commutative. Redelivered
    readings would count twice: deduplicate before `add`.
    """

    covered_s: float = 0.0
    energy: float = 0.0
    lmax: float = -np.inf
    lmin: float = np.inf
    count: int = 0
    hist: np.ndarray = field(default_factory=lambda: np.zeros(N_BINS))

    def add(
        self,
        laeq: ArrayLike,
        durations: ArrayLike,
        lamax: ArrayLike | None = None,
        lamin: ArrayLike | None = None,
    ) -> None:
        """Fold in readings: each an LAeq over `durations` seconds, optionally its own max/min.

        Without lamax/lamin the LAeq values bound the window's max/min. Levels outside
        0-195 dB go to the edge bins (their max/min are kept exactly). Raises ValueError on
        non-finite values or non-positive durations so the caller can dead-letter them.
        """
        levels = np.atleast_1d(np.asarray(laeq, dtype=np.float64))
        t = np.broadcast_to(np.asarray(durations, dtype=np.float64), levels.shape)
        hi = levels if lamax is None else np.broadcast_to(np.asarray(lamax, float), levels.shape)
        lo = levels if lamin is None else np.broadcast_to(np.asarray(lamin, float), levels.shape)
        for name, a in (("laeq", levels), ("durations", t), ("lamax", hi), ("lamin", lo)):
            _finite(name, a)
        if np.any(t <= 0):
            raise ValueError("durations must be positive")
        if levels.size == 0:
            return
        self.covered_s += float(t.sum())
        self.energy += float(energy(levels, t))
        self.lmax = max(self.lmax, float(hi.max()))
        self.lmin = min(self.lmin, float(lo.min()))
        self.count += int(levels.size)
        self.hist += np.bincount(bin_index(levels), weights=t, minlength=N_BINS)

    def merge(self, other: NoiseWindow) -> NoiseWindow:
        """The state of both windows together (sums add, extremes combine as max/min)."""
        return NoiseWindow(
            covered_s=self.covered_s + other.covered_s,
            energy=self.energy + other.energy,
            lmax=max(self.lmax, other.lmax),
            lmin=min(self.lmin, other.lmin),
            count=self.count + other.count,
            hist=self.hist + other.hist,
        )

    @property
    def laeq(self) -> float:
        """Energetic mean over the covered time (NaN when empty)."""
        return float(level_from_energy(self.energy, self.covered_s))

    def coverage(self, window_s: float) -> float:
        """Covered seconds / window length; above 1 means overlapping or repeated readings."""
        return self.covered_s / window_s

    def exceeded(self, percent: ArrayLike) -> np.ndarray:
        """L_N: the level exceeded N % of the covered time (L10, L50, L90 for 10, 50, 90).

        L_N is the (100-N)th percentile of the time-weighted level distribution. The bin
        holding it is the first whose cumulative share of time reaches q = (100-N)/100
        (numpy's 'inverted_cdf' rule; q = 0 takes the first occupied bin); within the bin
        time is taken as spread uniformly, so the value is interpolated linearly from the
        bin's lower edge, then clamped to [LAmin, LAmax]. The error against the exact
        time-weighted percentile of the readings is therefore below one bin (0.5 dB).
        NaN when empty.
        """
        n = np.asarray(percent, dtype=np.float64)
        if np.any((n < 0) | (n > 100)):
            raise ValueError("percent must lie in [0, 100]")
        total = self.hist.sum()
        if self.count == 0 or total <= 0:
            return np.full(n.shape, np.nan)
        q = (100.0 - n) / 100.0
        cum = np.cumsum(self.hist)
        cdf = cum / cum[-1]
        b = np.where(
            q > 0, np.searchsorted(cdf, q, side="left"), np.searchsorted(cdf, 0, side="right")
        )
        b = np.minimum(b, N_BINS - 1)
        before = cum[b] - self.hist[b]
        within = np.clip((q * cum[-1] - before) / self.hist[b], 0.0, 1.0)
        level = LEVEL_MIN_DB + (b + within) * BIN_DB
        return np.clip(level, self.lmin, self.lmax)

    def to_dict(self) -> dict:
        """JSON-safe dict (for a JSON-serialised table); the histogram as its occupied span."""
        lo, span = self._span()
        return {
            "v": _FORMAT_VERSION,
            "covered_s": self.covered_s,
            "energy": self.energy,
            "lmax": self.lmax if self.count else None,
            "lmin": self.lmin if self.count else None,
            "count": self.count,
            "bin0": lo,
            "hist": span.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> NoiseWindow:
        """Inverse of `to_dict`."""
        _check_version(d["v"])
        return cls(
            covered_s=float(d["covered_s"]),
            energy=float(d["energy"]),
            lmax=-np.inf if d["lmax"] is None else float(d["lmax"]),
            lmin=np.inf if d["lmin"] is None else float(d["lmin"]),
            count=int(d["count"]),
            hist=_unspan(d["bin0"], np.asarray(d["hist"], dtype=np.float64)),
        )

    def to_bytes(self) -> bytes:
        """Compact exact binary form (45-byte header + 8 bytes per occupied-span bin)."""
        lo, span = self._span()
        header = _HEADER.pack(
            _FORMAT_VERSION,
            self.covered_s,
            self.energy,
            self.lmax,
            self.lmin,
            self.count,
            lo,
            span.size,
        )
        return header + span.astype("<f8").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> NoiseWindow:
        """Inverse of `to_bytes`."""
        version, covered, e, lmax, lmin, count, lo, n = _HEADER.unpack_from(data)
        _check_version(version)
        span = np.frombuffer(data, dtype="<f8", count=n, offset=_HEADER.size)
        return cls(covered, e, lmax, lmin, count, _unspan(lo, span.astype(np.float64)))

    def _span(self) -> tuple[int, np.ndarray]:
        occupied = np.flatnonzero(self.hist)
        if occupied.size == 0:
            return 0, np.zeros(0)
        return int(occupied[0]), self.hist[occupied[0] : occupied[-1] + 1]


def _unspan(lo: int, span: np.ndarray) -> np.ndarray:
    if lo < 0 or lo + span.size > N_BINS:
        raise ValueError("histogram span outside the level range")
    hist = np.zeros(N_BINS)
    hist[lo : lo + span.size] = span
    return hist


def _check_version(version: int) -> None:
    if version != _FORMAT_VERSION:
        raise ValueError(f"unknown NoiseWindow format version {version}")
