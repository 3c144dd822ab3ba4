"""The tumbling-window accumulator (streams/windows.py) against references computed here
with plain NumPy from the DESIGN.md section 5 formulas, never from the module under test.
"""

from __future__ import annotations

import base64
import json
import math
import zlib

import lz4.block
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livinglab.codec.payload import QUANTITIES
from streams import quality
from streams.science.airquality import hourly_mean
from streams.windows import Acc

fast = settings(deadline=None, max_examples=60)
Q = len(QUANTITIES)
COL = {q: i for i, q in enumerate(QUANTITIES)}
HOUR_S = 3600.0

# Sensor-like readings: LAeq in 0.1 dB, PM2.5 in 0.1 ug/m3; one reading per 60 s.
readings_st = st.lists(
    st.tuples(
        st.integers(250, 1100).map(lambda k: k / 10),
        st.integers(0, 3000).map(lambda k: k / 10),
    ),
    min_size=1,
    max_size=70,
)


def fold(rows: list[tuple[float, float]], duration_s: float = 60.0, acc: Acc | None = None):
    values = np.full((len(rows), Q), np.nan)
    values[:, COL["laeq"]] = [r[0] for r in rows]
    values[:, COL["lamax"]] = [r[0] + 7 for r in rows]
    values[:, COL["pm25"]] = [r[1] for r in rows]
    acc = acc or Acc()
    n = len(rows)
    acc.fold(values, np.zeros((n, Q), np.uint32), np.full(n, duration_s), np.arange(n))
    return acc


def by_quantity(acc: Acc, window_s: float = HOUR_S) -> dict[str, dict]:
    return {s["quantity"]: s for s in acc.stats(window_s)}


def ref_laeq(levels, seconds) -> float:
    """LAeq,T = 10 log10( sum (t_i / T) 10^(L_i/10) ), T = covered time."""
    levels, seconds = np.asarray(levels), np.asarray(seconds, dtype=float)
    return float(10 * np.log10(np.sum(seconds / seconds.sum() * 10 ** (levels / 10))))


def ref_exceeded(levels, seconds, n: float) -> float:
    """L_N: the level exceeded N % of the time, from the time-weighted sample distribution
    (each reading repeated once per covered second)."""
    samples = np.repeat(np.asarray(levels), np.asarray(seconds, dtype=int))
    return float(np.percentile(samples, 100 - n, method="inverted_cdf"))


@fast
@given(readings_st)
def test_hourly_stats_match_references(rows) -> None:
    levels = [r[0] for r in rows]
    pm = [r[1] for r in rows]
    stats = by_quantity(fold(rows))
    laeq, pm25, lamax = stats["laeq"], stats["pm25"], stats["lamax"]
    assert laeq["count"] == pm25["count"] == len(rows)
    assert laeq["mean"] == pytest.approx(ref_laeq(levels, [60] * len(rows)), abs=1e-9)
    assert lamax["mean"] == pytest.approx(ref_laeq(np.add(levels, 7), [60] * len(rows)), abs=1e-9)
    assert pm25["mean"] == pytest.approx(float(np.mean(pm)), rel=1e-12, abs=1e-12)
    assert (laeq["min"], laeq["max"]) == (min(levels), max(levels))
    assert (pm25["min"], pm25["max"], lamax["max"]) == (min(pm), max(pm), max(levels) + 7)
    assert laeq["coverage"] == pytest.approx(min(1.0, len(rows) * 60 / HOUR_S))
    # Validity is the 75 %-of-expected-samples rule of airquality.hourly_mean.
    expected = bool(hourly_mean(sum(pm), len(rows), 60).valid)
    assert pm25["valid"] is laeq["valid"] is expected
    assert pm25["flags"] == (0 if expected else quality.LOW_COVERAGE)
    assert pm25["l10"] is None and pm25["valid_hours"] is None


@fast
@given(readings_st)
def test_percentiles_from_the_histogram_within_one_bin(rows) -> None:
    levels = [r[0] for r in rows]
    laeq = by_quantity(fold(rows))["laeq"]
    for key, n in (("l10", 10), ("l50", 50), ("l90", 90)):
        assert abs(laeq[key] - ref_exceeded(levels, [60] * len(rows), n)) <= 0.5
    assert laeq["l10"] >= laeq["l50"] >= laeq["l90"]


def test_validity_edge_is_45_of_60_minutes() -> None:
    for n, valid in ((44, False), (45, True), (60, True)):
        stats = by_quantity(fold([(50.0, 10.0)] * n))
        assert stats["pm25"]["valid"] is valid and stats["laeq"]["valid"] is valid
    # Five-minute units: 9 of 12 samples.
    assert by_quantity(fold([(50.0, 10.0)] * 9, 300))["pm25"]["valid"] is True
    assert by_quantity(fold([(50.0, 10.0)] * 8, 300))["pm25"]["valid"] is False


def assert_same(a: dict, b: dict) -> None:
    """Equal statistics: floats up to summation order, everything else exactly."""
    assert a.keys() == b.keys()
    for key, value in a.items():
        if isinstance(value, float):
            assert value == pytest.approx(b[key], rel=1e-12, abs=1e-12, nan_ok=True), key
        else:
            assert value == b[key], key


@fast
@given(readings_st, st.integers(0, 70))
def test_folding_in_parts_equals_folding_at_once(rows, cut) -> None:
    whole = by_quantity(fold(rows))
    parts = by_quantity(fold(rows[cut:], acc=fold(rows[:cut]) if rows[:cut] else None))
    assert parts.keys() == whole.keys()
    for quantity, stat in parts.items():
        assert_same(stat, whole[quantity])


@fast
@given(readings_st, st.integers(0, 2**31), st.integers(-1, 2**40))
def test_serialised_form_is_exact_and_json_safe(rows, version, offset) -> None:
    acc = fold(rows)
    acc.flags[COL["pm25"]] = quality.HUMIDITY_AFFECTED
    acc.version, acc.offset = version, offset
    text = json.loads(json.dumps(acc.to_str()))
    # State written before LZ4: the same bytes, zlib-compressed, without the prefix.
    raw = lz4.block.decompress(base64.b64decode(text.removeprefix("4:")))
    older = base64.b64encode(zlib.compress(raw, 1)).decode()
    for back in (Acc.from_str(text), Acc.from_str(older)):
        assert (back.version, back.offset) == (version, offset)
        np.testing.assert_array_equal(back.rows, acc.rows)
        np.testing.assert_array_equal(back.flags, acc.flags)
        np.testing.assert_array_equal(back.noise.hist, acc.noise.hist)
        assert back.stats(HOUR_S) == acc.stats(HOUR_S)


def test_merge_is_the_union_of_readings() -> None:
    rng = np.random.default_rng(5)
    a = [
        (float(x), float(y))
        for x, y in zip(rng.uniform(30, 90, 40).round(1), rng.uniform(0, 50, 40).round(1))
    ]
    b = a[:15]
    merged = by_quantity(fold(a).merge(fold(b)), 2 * HOUR_S)
    together = by_quantity(fold(a + b), 2 * HOUR_S)
    for quantity in ("laeq", "pm25"):
        assert_same(merged[quantity], together[quantity])


def test_out_of_range_values_are_left_out_but_flagged() -> None:
    values = np.full((3, Q), np.nan)
    values[:, COL["pm25"]] = [10.0, np.nan, 20.0]  # the window gets NaN for excluded ones
    values[:, COL["o3"]] = np.nan
    flags = np.zeros((3, Q), np.uint32)
    flags[1, COL["pm25"]] = quality.OUT_OF_RANGE | quality.HUMIDITY_AFFECTED
    flags[:, COL["o3"]] = quality.OUT_OF_RANGE
    acc = Acc()
    acc.fold(values, flags, np.full(3, 60.0), np.arange(3))
    stats = by_quantity(acc)
    assert stats["pm25"]["count"] == 2 and stats["pm25"]["mean"] == 15.0
    assert stats["pm25"]["flags"] == quality.OUT_OF_RANGE | quality.HUMIDITY_AFFECTED | 4
    # A quantity with only rejected readings still shows up, with no statistics.
    o3 = stats["o3"]
    assert o3["count"] == 0 and math.isnan(o3["mean"]) and not o3["valid"]
    assert "laeq" not in stats


def test_energetic_mean_is_not_the_arithmetic_mean() -> None:
    stats = by_quantity(fold([(70.0, 0.0), (50.0, 0.0)], 1800))
    assert round(stats["laeq"]["mean"], 2) == 67.03  # not 60


@fast
@given(st.integers(0, 2**32 - 1), st.integers(1, 12), st.integers(1, 40))
def test_folding_many_windows_at_once_equals_folding_each(seed, n_windows, n_rows) -> None:
    """The vectorised fold of a batch (every window at once) against `fold` per window,
    to the last bit: random readings, missing values, flags, offsets, windows that
    already hold data, and windows that get several readings or none with LAeq."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(20, 110, (n_rows, Q)).round(1)
    values[rng.random((n_rows, Q)) < 0.3] = np.nan
    flags = rng.choice([0, 0, 0, quality.HUMIDITY_AFFECTED], (n_rows, Q)).astype(np.uint32)
    durations = rng.choice([10.0, 60.0, 300.0], n_rows)
    offsets = rng.permutation(n_rows).astype(np.int64) + 1000
    owner = rng.integers(0, n_windows, n_rows)
    groups = [np.flatnonzero(owner == g) for g in range(n_windows)]
    groups = [g for g in groups if g.size]

    def start(g: int) -> Acc:
        acc = Acc()
        if g % 2:  # a window that already holds readings from earlier batches
            acc.fold(values[:1] + 1, flags[:1], durations[:1], np.array([7]))
        return acc

    each = [start(g) for g in range(len(groups))]
    for acc, rows in zip(each, groups):
        acc.fold(values[rows], flags[rows], durations[rows], offsets[rows])
    many = [start(g) for g in range(len(groups))]
    Acc.fold_many(many, groups, values, flags, durations, offsets)
    for a, b in zip(many, each):
        np.testing.assert_array_equal(a.rows, b.rows)
        np.testing.assert_array_equal(a.flags, b.flags)
        np.testing.assert_array_equal(a.noise.hist, b.noise.hist)
        assert (a.offset, a.noise.count, a.noise.covered_s) == (
            b.offset,
            b.noise.count,
            b.noise.covered_s,
        )
        assert (a.noise.lmin, a.noise.lmax) == (b.noise.lmin, b.noise.lmax)
        assert json.dumps(a.stats(HOUR_S)) == json.dumps(b.stats(HOUR_S))  # NaN-aware
