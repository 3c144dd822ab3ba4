"""Air-quality science against references written here from DESIGN.md and the EU rules.

Expectations come from plain Python loops, exact fractions and hand-computed numbers,
never from the module under test.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.science.airquality import (
    AIR_STANDARDS,
    daily_mean,
    hourly_mean,
    lki_band,
    lki_level,
    lki_subindex,
    lki_total,
    o3_daily_max_8h,
    o3_running_8h,
    pm_running_24h,
    running_mean,
    standards_in_force,
)

AMS = ZoneInfo("Europe/Amsterdam")
fast = settings(deadline=None, max_examples=60)

# --- hourly validity: >= 75 % of the expected samples -------------------------------------


@pytest.mark.parametrize(
    ("interval_s", "needed"),
    [(60, 45), (120, 23), (300, 9), (420, 7), (600, 5), (900, 3), (3600, 1), (7200, 1)],
)
def test_hourly_validity_at_the_75_percent_edge(interval_s, needed):
    # needed = ceil(0.75 * 3600 / interval): 420 s -> 8.57 expected -> 6.43 -> 7 samples.
    counts = np.array([needed - 1, needed])
    res = hourly_mean(counts * 10.0, counts, interval_s)
    assert res.valid.tolist() == [False, True]
    np.testing.assert_allclose(res.value[1], 10.0)


@fast
@given(st.integers(1, 7200), st.integers(0, 400))
def test_hourly_validity_matches_exact_fraction(interval_s, count):
    expected = Fraction(count) >= Fraction(3, 4) * Fraction(3600, interval_s)
    assert bool(hourly_mean(count * 1.5, count, interval_s).valid) == expected


def test_hourly_mean_without_samples_is_nan_and_invalid():
    res = hourly_mean([0.0], [0], 60)
    assert np.isnan(res.value[0]) and not res.valid[0]


# --- running means ------------------------------------------------------------------------


def ref_running(values, window, min_valid):
    """Mean of the valid (finite) hours among the window ending at each hour."""
    out = []
    for k in range(len(values)):
        got = [v for v in values[max(0, k - window + 1) : k + 1] if not math.isnan(v)]
        mean = sum(got) / len(got) if got else math.nan
        out.append((mean, len(got), len(got) >= min_valid))
    return out


hourly_st = st.lists(
    st.one_of(st.floats(0, 500, allow_nan=False), st.just(math.nan)), min_size=1, max_size=80
)


@fast
@given(hourly_st)
def test_running_means_match_loop_reference(values):
    for fn, window, min_valid in ((o3_running_8h, 8, 6), (pm_running_24h, 24, 18)):
        res = fn(values)
        for k, (mean, n, valid) in enumerate(ref_running(values, window, min_valid)):
            assert (int(res.n[k]), bool(res.valid[k])) == (n, valid)
            if n:
                assert res.value[k] == pytest.approx(mean, rel=1e-12, abs=1e-12)
            else:
                assert np.isnan(res.value[k])


@pytest.mark.parametrize(
    ("fn", "window", "min_valid"), [(o3_running_8h, 8, 6), (pm_running_24h, 24, 18)]
)
def test_running_mean_validity_edge(fn, window, min_valid):
    just_enough = [math.nan] * (window - min_valid) + [10.0] * min_valid
    one_short = [math.nan] * (window - min_valid + 1) + [10.0] * (min_valid - 1)
    assert bool(fn(just_enough).valid[-1]) and fn(just_enough).value[-1] == 10.0
    assert not fn(one_short).valid[-1]


def test_running_mean_hand_example_and_explicit_validity_mask():
    # Hours 1..8 -> mean 4.5; with hour 8 marked invalid the mean of 1..7 is 4 (7 >= 6 valid).
    values = np.arange(1.0, 9.0)
    assert o3_running_8h(values).value[-1] == 4.5
    mask = np.ones(8, bool)
    mask[-1] = False
    res = o3_running_8h(values, mask)
    assert (res.value[-1], res.n[-1], res.valid[-1]) == (4.0, 7, True)


def test_running_mean_runs_along_last_axis_per_sensor():
    block = np.array([[1.0] * 10, [2.0] * 10])
    res = running_mean(block, None, 4, 3)
    assert res.value.shape == (2, 10)
    np.testing.assert_array_equal(res.n[:, :5], [[1, 2, 3, 4, 4]] * 2)
    np.testing.assert_array_equal(res.value[:, -1], [1.0, 2.0])


# --- daily means on local days ------------------------------------------------------------


def hour_grid(first: date, days: int) -> list[datetime]:
    """UTC hour starts covering the local days first .. first+days-1 (and a margin)."""
    start = datetime(first.year, first.month, first.day, tzinfo=UTC) - timedelta(hours=3)
    return [start + timedelta(hours=h) for h in range(24 * days + 6)]


def ref_daily(hours, values, min_valid):
    groups: dict[date, list[float]] = {}
    for h, v in zip(hours, values):
        groups.setdefault(h.astimezone(AMS).date(), []).append(v)
    out = {}
    for d, vs in groups.items():
        got = [v for v in vs if not math.isnan(v)]
        out[d] = (
            sum(got) / len(got) if got else math.nan,
            len(got),
            len(got) >= min_valid,
            len(vs),
        )
    return out


@fast
@given(
    st.sampled_from([date(2026, 3, 27), date(2026, 10, 23), date(2026, 7, 1)]),
    st.integers(0, 2**32 - 1),
)
def test_daily_mean_matches_loop_reference_across_dst(first, seed):
    rng = np.random.default_rng(seed)
    hours = hour_grid(first, 4)
    values = rng.uniform(0, 80, len(hours))
    values[rng.random(len(hours)) < 0.25] = np.nan
    res = daily_mean([h.timestamp() for h in hours], values)
    ref = ref_daily(hours, values.tolist(), 18)
    assert [str(d) for d in res.day] == [d.isoformat() for d in ref]
    for k, (mean, n, valid, _) in enumerate(ref.values()):
        assert (int(res.n[k]), bool(res.valid[k])) == (n, valid)
        if n:
            assert res.value[k] == pytest.approx(mean, rel=1e-12)


def test_dst_days_have_23_and_25_hours_and_18_valid_hours_suffice():
    for first, length in ((date(2026, 3, 29), 23), (date(2026, 10, 25), 25)):
        hours = hour_grid(first - timedelta(days=1), 3)
        on_day = [h.astimezone(AMS).date() == first for h in hours]
        assert sum(on_day) == length
        for n_valid, valid in ((18, True), (17, False)):
            values = np.full(len(hours), 20.0)
            day_idx = np.flatnonzero(on_day)
            values[day_idx[n_valid:]] = np.nan
            res = daily_mean([h.timestamp() for h in hours], values)
            k = list(res.day).index(np.datetime64(first))
            assert (int(res.n[k]), bool(res.valid[k])) == (n_valid, valid)


def test_daily_mean_rejects_a_grid_with_gaps():
    with pytest.raises(ValueError):
        daily_mean([0, 3600, 10800], [1.0, 2.0, 3.0])


# --- O3 maximum daily 8-hour mean ---------------------------------------------------------


def ref_daily_max_8h(hours, values):
    """Directive rule by loop: 8-h means (>= 6 valid hours) assigned to the day they end on."""
    means = ref_running(values, 8, 6)
    per_day: dict[date, list[float]] = {}
    for h, (mean, _, valid) in zip(hours, means):
        # The mean ends at h + 1 h; the day it ends on is the local day of its last hour.
        day = (h + timedelta(hours=1)).astimezone(AMS) - timedelta(microseconds=1)
        per_day.setdefault(day.date(), [])
        if valid:
            per_day[day.date()].append(mean)
    return {d: (max(ms) if ms else math.nan, len(ms), len(ms) >= 18) for d, ms in per_day.items()}


@fast
@given(st.integers(0, 2**32 - 1), st.floats(0, 0.5))
def test_o3_daily_max_matches_loop_reference(seed, missing):
    rng = np.random.default_rng(seed)
    hours = hour_grid(date(2026, 10, 24), 3)
    values = rng.uniform(20, 200, len(hours))
    values[rng.random(len(hours)) < missing] = np.nan
    res = o3_daily_max_8h([h.timestamp() for h in hours], values)
    ref = ref_daily_max_8h(hours, values.tolist())
    assert [str(d) for d in res.day] == [d.isoformat() for d in ref]
    for k, (best, n, valid) in enumerate(ref.values()):
        assert (int(res.n[k]), bool(res.valid[k])) == (n, valid)
        if n:
            assert res.value[k] == pytest.approx(best, rel=1e-12)


@pytest.mark.parametrize(
    ("spike_local_hour", "day_d_max", "day_d1_max"), [(16, 200, 100), (17, 200, 200)]
)
def test_o3_first_8h_mean_of_a_day_is_17_to_01(spike_local_hour, day_d_max, day_d1_max):
    # 100 ug/m3 everywhere and one hour of 900: every 8-h mean holding it is (7*100+900)/8 = 200.
    # A spike at 16:00-17:00 D is last seen by the mean 16:00-24:00, assigned to D; a spike at
    # 17:00-18:00 D is also in 17:00 D -> 01:00 D+1, the first mean of D+1.
    d = date(2026, 6, 15)
    hours = hour_grid(d - timedelta(days=1), 4)
    values = np.array(
        [
            900.0
            if h.astimezone(AMS).date() == d and h.astimezone(AMS).hour == spike_local_hour
            else 100.0
            for h in hours
        ]
    )
    res = o3_daily_max_8h([h.timestamp() for h in hours], values)
    k = list(res.day).index(np.datetime64(d))
    assert res.value[k] == day_d_max and res.value[k + 1] == day_d1_max
    assert res.valid[k] and res.n[k] == 24


# --- LKI ----------------------------------------------------------------------------------

EDGES = {
    "pm25": [10, 15, 20, 30, 40, 50, 70, 90, 100, 140],
    "pm10": [10, 20, 30, 45, 60, 75, 100, 125, 150, 200],
    "no2": [10, 20, 30, 45, 60, 75, 100, 125, 150, 200],
    "o3": [15, 30, 40, 60, 80, 100, 140, 180, 200, 240],
}


def ref_subindex(pollutant: str, c: float) -> float:
    """I = (i-1) + (C - C(i-1))/(C(i) - C(i-1)) for the band i with C(i-1) < C <= C(i)."""
    edges = [0.0, *EDGES[pollutant]]
    c = max(c, 0.0)
    for i in range(1, 11):
        if c <= edges[i]:
            return (i - 1) + (c - edges[i - 1]) / (edges[i] - edges[i - 1])
    return 11.0


@pytest.mark.parametrize("pollutant", sorted(EDGES))
def test_lki_every_band_edge_and_beyond(pollutant):
    edges = EDGES[pollutant]
    on_edges = lki_subindex(pollutant, edges)
    np.testing.assert_array_equal(on_edges, np.arange(1, 11))  # exactly on C(i): I = i
    np.testing.assert_array_equal(lki_level(on_edges), np.arange(1, 11))  # edges belong below
    just_above = lki_subindex(pollutant, np.array(edges) + 1e-6)
    np.testing.assert_array_equal(lki_level(just_above), np.arange(2, 12))
    lows = [0.0, *edges[:-1]]
    mids = [(lo + hi) / 2 for lo, hi in zip(lows, edges)]
    np.testing.assert_allclose(lki_subindex(pollutant, mids), np.arange(10) + 0.5)
    beyond = lki_subindex(pollutant, [edges[-1] + 0.1, 10 * edges[-1]])
    np.testing.assert_array_equal(beyond, [11, 11])
    below = lki_subindex(pollutant, [-5.0, 0.0])
    np.testing.assert_array_equal(below, [0, 0])
    np.testing.assert_array_equal(lki_level(below), [1, 1])


@fast
@given(st.sampled_from(sorted(EDGES)), st.lists(st.floats(-10, 400), min_size=1, max_size=30))
def test_lki_subindex_matches_loop_reference(pollutant, concs):
    expected = [ref_subindex(pollutant, c) for c in concs]
    np.testing.assert_allclose(lki_subindex(pollutant, concs), expected, rtol=1e-12, atol=1e-12)


def test_lki_hand_examples():
    # PM2.5 = 25: band 4 (20 < C <= 30), I = 3 + (25-20)/(30-20) = 3.5.
    assert lki_subindex("pm25", 25.0) == 3.5
    # O3 = 190: band 9 (180 < C <= 200), I = 8 + 10/20 = 8.5; NO2 = 35: 3 + 5/15.
    assert lki_subindex("o3", 190.0) == 8.5
    assert lki_subindex("no2", 35.0) == pytest.approx(3 + 1 / 3)
    assert np.isnan(lki_subindex("pm10", math.nan))


def test_lki_total_is_max_plus_one_only_when_all_levels_equal():
    # Levels 3, 3, 3 -> "all substances have the same index number": 2.8 + 1.
    assert lki_total({"pm25": 2.5, "no2": 2.2, "o3": 2.8}) == pytest.approx(3.8)
    # Levels 3, 3, 2 -> the highest sub-index.
    assert lki_total({"pm25": 2.5, "no2": 2.2, "o3": 1.8}) == 2.5
    # One pollutant alone is not raised; a missing one does not block the rule for the rest.
    assert lki_total({"pm25": 2.5}) == 2.5
    assert lki_total({"pm25": 2.5, "no2": math.nan, "o3": 2.1}) == pytest.approx(3.5)
    # Raised never past 11; no data at all stays NaN.
    assert lki_total({"pm25": 11.0, "o3": 11.0}) == 11
    assert np.isnan(lki_total({"pm25": math.nan, "o3": math.nan}))


def test_lki_total_vectorised_over_hours():
    res = lki_total({"pm25": [2.5, 2.5, 10.0], "o3": [2.1, 1.0, 10.0]})
    np.testing.assert_allclose(res, [3.5, 2.5, 11.0])


def test_lki_band_names():
    levels = np.arange(1, 12)
    expected = ["good"] * 3 + ["moderate"] * 3 + ["insufficient"] * 2 + ["bad"] * 2
    assert lki_band(levels).tolist() == [*expected, "very bad"]
    assert lki_band([0.2, 3.0, 3.01, 8.5, math.nan]).tolist() == [
        "good",
        "good",
        "moderate",
        "bad",
        "",
    ]


# --- limit values -------------------------------------------------------------------------


def find(source_prefix: str, pollutant: str, averaging: str, kind: str = "limit"):
    (hit,) = [
        s
        for s in AIR_STANDARDS
        if s.source.startswith(source_prefix)
        and (s.pollutant, s.averaging, s.kind) == (pollutant, averaging, kind)
    ]
    return hit.value, hit.max_exceedances


def test_limit_values_as_in_design():
    eu30, old = "EU 2024/2881", "EU 2008/50/EC"
    assert find(eu30, "pm25", "24h") == (25, 18)
    assert find(eu30, "pm25", "1y") == (10, None)
    assert find(eu30, "pm10", "24h") == (45, 18)
    assert find(eu30, "pm10", "1y") == (20, None)
    assert find(eu30, "no2", "1h") == (200, 3)
    assert find(eu30, "no2", "24h") == (50, 18)
    assert find(eu30, "no2", "1y") == (20, None)
    assert find(eu30, "o3", "8h_daily_max", "target") == (120, 18)
    assert find(old, "pm10", "24h") == (50, 35)
    assert find(old, "pm10", "1y") == (40, None)
    assert find(old, "pm25", "1y") == (25, None)
    assert find(old, "no2", "1h") == (200, 18)
    assert find(old, "no2", "1y") == (40, None)
    assert find(old, "o3", "1h", "information")[0] == 180
    assert find(old, "o3", "1h", "alert")[0] == 240
    who = "WHO 2021"
    assert find(who, "pm25", "24h", "guideline")[0] == 15
    assert find(who, "pm25", "1y", "guideline")[0] == 5
    assert find(who, "pm10", "24h", "guideline")[0] == 45
    assert find(who, "pm10", "1y", "guideline")[0] == 15
    assert find(who, "no2", "24h", "guideline")[0] == 25
    assert find(who, "no2", "1y", "guideline")[0] == 10
    assert find(who, "o3", "8h_daily_max", "guideline")[0] == 100


def test_standards_switch_on_1_january_2030():
    def pm10_day_limits(on):
        return {
            (s.value, s.max_exceedances)
            for s in standards_in_force(on, "pm10")
            if s.averaging == "24h" and s.kind == "limit"
        }

    assert pm10_day_limits(date(2029, 12, 31)) == {(50, 35)}
    assert pm10_day_limits(date(2030, 1, 1)) == {(45, 18)}
    assert any(s.kind == "guideline" for s in standards_in_force(date(2026, 1, 1), "pm10"))
