"""Noise science against references written here from the DESIGN.md formulas.

Expectations come from plain Python loops, numpy.percentile and hand-computed numbers,
never from the module under test.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.science.acoustics import (
    BIN_DB,
    NoiseWindow,
    day_levels,
    energetic_mean,
    lden,
)

AMS = ZoneInfo("Europe/Amsterdam")
fast = settings(deadline=None, max_examples=60)

levels_st = st.floats(min_value=0.0, max_value=195.0, allow_nan=False)
durations_st = st.floats(min_value=0.01, max_value=3600.0, allow_nan=False)
# Sensor-like readings: 0.1 dB resolution, whole seconds (exact sums, so ties are exact).
decidb_st = st.integers(min_value=200, max_value=1300).map(lambda k: k / 10)
seconds_st = st.integers(min_value=1, max_value=120)


def ref_laeq(levels, durations) -> float:
    """LAeq,T = 10*log10(sum((t_i/T) * 10^(L_i/10))), T = sum(t_i)."""
    total = sum(durations)
    return 10 * math.log10(sum(t / total * 10 ** (lv / 10) for lv, t in zip(levels, durations)))


# --- energetic mean -----------------------------------------------------------------------


@fast
@given(st.lists(st.tuples(levels_st, durations_st), min_size=1, max_size=50))
def test_energetic_mean_matches_formula(readings):
    levels, durations = zip(*readings)
    assert energetic_mean(levels, durations) == pytest.approx(ref_laeq(levels, durations), abs=1e-9)


@fast
@given(st.lists(levels_st, min_size=1, max_size=50))
def test_energetic_mean_equal_weights_without_durations(levels):
    assert energetic_mean(levels) == pytest.approx(ref_laeq(levels, [1] * len(levels)), abs=1e-9)


def test_energetic_mean_reduces_along_axis():
    rng = np.random.default_rng(1)
    block = rng.uniform(30, 100, (4, 7))
    t = rng.uniform(1, 60, (4, 7))
    expected = [ref_laeq(block[r], t[r]) for r in range(4)]
    np.testing.assert_allclose(energetic_mean(block, t, axis=1), expected, atol=1e-9)


def test_energetic_mean_hand_examples():
    # 70 dB for an hour and 50 dB for an hour: 10*log10((1e7 + 1e5)/2) = 67.03 dB, not 60.
    assert float(energetic_mean([70, 50], [3600, 3600])) == pytest.approx(67.0329, abs=1e-4)
    # 60 and 70 dB equally long: 10*log10(5.5e6) = 67.40 dB.
    assert float(energetic_mean([60, 70])) == pytest.approx(67.4036, abs=1e-4)
    # 80 dB for 6 min in an otherwise 60 dB hour: 10*log10(0.1e8 + 0.9e6) = 70.37 dB.
    assert float(energetic_mean([80, 60], [360, 3240])) == pytest.approx(70.3743, abs=1e-4)


def test_energetic_mean_of_nothing_is_nan():
    assert np.isnan(energetic_mean([], []))


# --- Lden formula -------------------------------------------------------------------------


def test_lden_constant_level_is_plus_6_4_db():
    # Published rule of thumb: constant L gives Lden = L + 10*log10((12 + 4*10^0.5 + 8*10)/24).
    assert float(lden(50, 50, 50)) == pytest.approx(50 + 6.3953, abs=1e-4)


@fast
@given(levels_st, levels_st, levels_st)
def test_lden_matches_directive_formula(ld, le, ln):
    expected = 10 * math.log10(
        (12 * 10 ** (ld / 10) + 4 * 10 ** ((le + 5) / 10) + 8 * 10 ** ((ln + 10) / 10)) / 24
    )
    assert float(lden(ld, le, ln)) == pytest.approx(expected, abs=1e-9)


# --- NoiseWindow: merge, percentiles, serialisation ---------------------------------------


def window_of(levels, durations) -> NoiseWindow:
    w = NoiseWindow()
    w.add(levels, durations)
    return w


def assert_same_window(a: NoiseWindow, b: NoiseWindow) -> None:
    assert a.count == b.count
    assert a.lmax == b.lmax and a.lmin == b.lmin
    assert a.covered_s == pytest.approx(b.covered_s, rel=1e-12)
    assert a.energy == pytest.approx(b.energy, rel=1e-12)
    np.testing.assert_allclose(a.hist, b.hist, rtol=1e-12)


readings_st = st.lists(st.tuples(levels_st, durations_st), min_size=3, max_size=60)


@fast
@given(readings_st, st.data())
def test_merge_of_parts_equals_whole_and_is_associative(readings, data):
    levels, durations = map(list, zip(*readings))
    i = data.draw(st.integers(1, len(levels) - 2))
    j = data.draw(st.integers(i + 1, len(levels) - 1))
    a, b, c = (
        window_of(levels[s], durations[s]) for s in (slice(0, i), slice(i, j), slice(j, None))
    )
    whole = window_of(levels, durations)
    assert_same_window(a.merge(b).merge(c), whole)
    assert_same_window(a.merge(b.merge(c)), whole)
    assert_same_window(c.merge(a).merge(b), whole)
    assert_same_window(whole.merge(NoiseWindow()), whole)
    assert whole.laeq == pytest.approx(ref_laeq(levels, durations), abs=1e-9)
    assert whole.covered_s == pytest.approx(sum(durations))
    assert whole.lmax == max(levels) and whole.lmin == min(levels)


def test_merge_leaves_operands_untouched():
    a, b = window_of([60], [60]), window_of([70], [60])
    a.merge(b)
    assert (a.count, b.count, a.hist.sum(), b.hist.sum()) == (1, 1, 60, 60)


@fast
@given(
    st.lists(st.tuples(decidb_st, seconds_st), min_size=1, max_size=80),
    st.lists(st.integers(0, 100), min_size=1, max_size=5),
)
def test_exceedance_levels_within_one_bin_of_numpy(readings, ns):
    levels, durations = zip(*readings)
    w = window_of(levels, durations)
    # L_N is exceeded N % of the time: the (100-N)th time-weighted percentile.
    expected = [
        np.percentile(levels, 100 - n, weights=durations, method="inverted_cdf") for n in ns
    ]
    assert np.all(np.abs(w.exceeded(ns) - expected) <= BIN_DB + 1e-9)


@fast
@given(st.lists(levels_st, min_size=1, max_size=80))
def test_exceedance_levels_within_one_bin_for_equal_durations(levels):
    w = window_of(levels, 60.0)
    for n in (10, 50, 90):
        expected = np.percentile(levels, 100 - n, method="inverted_cdf")
        assert abs(w.exceeded(n) - expected) <= BIN_DB + 1e-9


def test_exceedance_levels_large_sample_close_to_linear_percentile():
    rng = np.random.default_rng(7)
    levels = np.round(rng.normal(55, 8, 20_000), 1)
    w = window_of(levels, 60.0)
    np.testing.assert_allclose(
        w.exceeded([10, 50, 90]), np.percentile(levels, [90, 50, 10]), atol=BIN_DB
    )


def test_exceedance_hand_example_documents_interpolation():
    # 80 s at 50 dB and 20 s at 70 dB. L10: 90 % of the time lies at or below the level;
    # the 70 dB bin [70, 70.5) holds it, halfway in -> 70.25, clamped to LAmax = 70.
    # L50: the 50 dB bin [50, 50.5), 50 of its 80 s -> 50 + 0.5 * 50/80 = 50.3125.
    # L100 and L0 are the clamped ends: LAmin and LAmax.
    w = window_of([50, 70], [80, 20])
    np.testing.assert_allclose(w.exceeded([10, 50, 100, 0]), [70, 50.3125, 50, 70])


def test_constant_level_gives_that_level_for_every_percentile():
    w = window_of([55.3] * 10, 60)
    np.testing.assert_array_equal(w.exceeded([0, 10, 50, 90, 100]), 55.3)


def test_bin_edges_lower_inclusive_and_range_clamped():
    w = window_of([55.0, 55.4, 55.5, -3.0, 0.0, 195.0, 250.0], [1, 2, 4, 8, 16, 32, 64])
    # Bin k is [k*0.5, (k+1)*0.5): 55.0 and 55.4 in bin 110, 55.5 in 111.
    assert (w.hist[110], w.hist[111]) == (3, 4)
    # Below 0 dB into the first bin, 195 dB and above into the last; extremes kept exact.
    assert (w.hist[0], w.hist[389], w.hist.size) == (24, 96, 390)
    assert (w.lmin, w.lmax) == (-3.0, 250.0)


def test_own_max_and_min_of_readings_bound_the_window():
    w = NoiseWindow()
    w.add([60, 62], [60, 60], lamax=[75, 71], lamin=[52, 55])
    assert (w.lmax, w.lmin, w.count) == (75, 52, 2)
    assert w.laeq == pytest.approx(ref_laeq([60, 62], [60, 60]))


def test_coverage_is_covered_over_window_length():
    w = window_of([60] * 45, 60)  # 45 one-minute readings in an hour
    assert w.coverage(3600) == 0.75


@pytest.mark.parametrize(
    ("levels", "durations"),
    [([float("nan")], [60]), ([60], [0]), ([60], [-1]), ([60], [float("inf")])],
)
def test_bad_readings_are_rejected_not_absorbed(levels, durations):
    w = NoiseWindow()
    with pytest.raises(ValueError):
        w.add(levels, durations)
    assert w.count == 0 and w.covered_s == 0


def test_empty_window_reports_nan():
    w = NoiseWindow()
    assert np.isnan(w.laeq)
    assert np.all(np.isnan(w.exceeded([10, 50, 90])))


@fast
@given(st.lists(st.tuples(levels_st, durations_st), min_size=0, max_size=40))
def test_serialisation_round_trips_exactly(readings):
    w = NoiseWindow()
    if readings:
        w.add(*zip(*readings))
    for back in (
        NoiseWindow.from_bytes(w.to_bytes()),
        NoiseWindow.from_dict(json.loads(json.dumps(w.to_dict()))),
    ):
        assert (back.covered_s, back.energy, back.count) == (w.covered_s, w.energy, w.count)
        assert (back.lmax, back.lmin) == (w.lmax, w.lmin)
        np.testing.assert_array_equal(back.hist, w.hist)


def test_serialised_form_is_compact():
    w = window_of(np.arange(50.0, 70.0, 0.1), 60)  # a 20 dB spread
    assert len(w.to_bytes()) <= 45 + 8 * 41


def test_unknown_format_version_is_refused():
    d = window_of([60], [60]).to_dict()
    with pytest.raises(ValueError):
        NoiseWindow.from_dict({**d, "v": 99})
    with pytest.raises(ValueError):
        NoiseWindow.from_bytes(b"\x63" + window_of([60], [60]).to_bytes()[1:])


# --- Lday / Levening / Lnight / Lden of a local day ---------------------------------------


def lden_day_and_period(local: datetime) -> tuple[date, str]:
    """Which Lden day (07:00 D -> 07:00 D+1) and which period a local wall time is in."""
    if local.hour < 7:
        return local.date() - timedelta(days=1), "night"
    period = "day" if local.hour < 19 else "evening" if local.hour < 23 else "night"
    return local.date(), period


def utc_hours_around(day: date) -> list[datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(days=1)
    return [start + timedelta(hours=h) for h in range(24 * 4)]


def reference_day(day: date, level_of, covered_of):
    """Loop over UTC hours, classify each by its local wall time, sum energy per period."""
    e = {"day": 0.0, "evening": 0.0, "night": 0.0}
    t = dict.fromkeys(e, 0.0)
    hours = dict.fromkeys(e, 0)
    for h in utc_hours_around(day):
        owner, period = lden_day_and_period(h.astimezone(AMS))
        if owner != day:
            continue
        hours[period] += 1
        e[period] += covered_of(h) * 10 ** (level_of(h) / 10)
        t[period] += covered_of(h)
    lvl = {p: 10 * math.log10(e[p] / t[p]) for p in e}
    weighted = (
        hours["day"] * 10 ** (lvl["day"] / 10)
        + hours["evening"] * 10 ** ((lvl["evening"] + 5) / 10)
        + hours["night"] * 10 ** ((lvl["night"] + 10) / 10)
    )
    return lvl, 10 * math.log10(weighted / sum(hours.values())), hours


def run_day(day: date, level_of, covered_of):
    hs = utc_hours_around(day)
    return day_levels(
        day,
        [h.timestamp() for h in hs],
        [covered_of(h) * 10 ** (level_of(h) / 10) for h in hs],
        [covered_of(h) for h in hs],
    )


def by_period(ld, le, ln):
    def level(h: datetime) -> float:
        hour = h.astimezone(AMS).hour
        return ld if 7 <= hour < 19 else le if 19 <= hour < 23 else ln

    return level


@pytest.mark.parametrize(
    ("day", "night_hours", "expected_lden"),
    [
        # Ld = Le = 60, Ln = 55: 10*log10((12e6 + (4 + N) * 10^6.5) / (16 + N)), N night hours.
        (date(2026, 6, 15), 8, 63.1830),
        (date(2026, 1, 15), 8, 63.1830),
        (date(2026, 3, 28), 7, 63.0838),  # night 28 -> 29 March loses 02:00-03:00: 23 h
        (date(2026, 10, 24), 9, 63.2723),  # night 24 -> 25 October repeats 02:00-03:00: 25 h
        (date(2026, 3, 29), 8, 63.1830),  # the calendar DST days are ordinary 24 h Lden days
        (date(2026, 10, 25), 8, 63.1830),
    ],
)
def test_lden_day_hand_computed_including_dst(day, night_hours, expected_lden):
    res = run_day(day, by_period(60, 60, 55), lambda h: 3600.0)
    assert res.period_s == (12 * 3600, 4 * 3600, night_hours * 3600)
    assert (res.lday, res.levening, res.lnight) == pytest.approx((60, 60, 55), abs=1e-9)
    assert res.lden == pytest.approx(expected_lden, abs=1e-4)
    assert res.coverage == pytest.approx((1, 1, 1))
    # Cross-check the hand number with the independent hour-by-hour reference.
    _, ref, hours = reference_day(day, by_period(60, 60, 55), lambda h: 3600.0)
    assert hours["night"] == night_hours
    assert res.lden == pytest.approx(ref, abs=1e-9)


@settings(deadline=None, max_examples=40)
@given(
    st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 12, 31))
    | st.sampled_from([date(2026, 3, 28), date(2026, 10, 24), date(2025, 3, 29)]),
    st.integers(0, 2**32 - 1),
)
def test_day_levels_match_hourly_reference(day, seed):
    rng = np.random.default_rng(seed)
    levels = {h: rng.uniform(30, 90) for h in utc_hours_around(day)}
    covered = {h: float(rng.integers(600, 3601)) for h in utc_hours_around(day)}
    res = run_day(day, levels.__getitem__, covered.__getitem__)
    lvl, ref, hours = reference_day(day, levels.__getitem__, covered.__getitem__)
    assert (res.lday, res.levening, res.lnight) == pytest.approx(
        (lvl["day"], lvl["evening"], lvl["night"]), abs=1e-9
    )
    assert res.lden == pytest.approx(ref, abs=1e-9)
    assert sum(res.period_s) == 3600 * sum(hours.values())


def test_finer_intervals_give_the_same_day():
    day = date(2026, 10, 24)
    hourly = run_day(day, by_period(62, 58, 49), lambda h: 3600.0)
    start = datetime(2026, 10, 23, tzinfo=UTC)
    quarters = [start + timedelta(minutes=15 * k) for k in range(4 * 24 * 3)]
    level = by_period(62, 58, 49)
    fine = day_levels(
        day,
        [q.timestamp() for q in quarters],
        [900 * 10 ** (level(q) / 10) for q in quarters],
        [900.0] * len(quarters),
    )
    assert fine.lden == pytest.approx(hourly.lden, abs=1e-9)
    assert fine.period_s == hourly.period_s


def test_partial_coverage_and_missing_period():
    day = date(2026, 6, 15)
    seven = datetime(2026, 6, 15, 5, tzinfo=UTC)  # 07:00 CEST
    # Only two day hours measured, half covered each: Lday from them, coverage 1/12.
    res = day_levels(
        day,
        [seven.timestamp(), seven.timestamp() + 3600],
        [1800 * 10**6, 1800 * 10**7],
        [1800.0, 1800.0],
    )
    assert res.lday == pytest.approx(10 * math.log10((10**6 + 10**7) / 2))
    assert res.coverage == pytest.approx((1 / 12, 0, 0))
    assert np.isnan(res.levening) and np.isnan(res.lnight) and np.isnan(res.lden)
