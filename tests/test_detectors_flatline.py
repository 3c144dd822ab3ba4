"""Flatline runs against hand-counted runs."""

import json

import numpy as np

from streams.detectors import FlatlineConfig, FlatlineState, detect_flatline

H = 3_600_000
NAN = np.nan


def test_runs_counted_and_broken_by_changes_and_gaps() -> None:
    cfg = FlatlineConfig(min_run=3, min_span_s=0)
    values = [1, 1, 1, 2, 2, NAN, 2, 2, 2, 2]
    c, state = detect_flatline(cfg, FlatlineState(), "pm25", np.arange(10) * H, values)
    assert np.array_equal(c.value, [1, 2, 3, 1, 2, NAN, 1, 2, 3, 4], equal_nan=True)
    assert c.active.tolist() == [False, False, True, False, False, False, False, False, True, True]
    assert c.threshold.tolist() == [3.0] * 10
    assert c[8].reference == 2.0 and c.unit == "readings"
    assert state == FlatlineState(last=2.0, run=4, run_start=6 * H)


def test_run_must_also_span_min_span_on_raw_readings() -> None:
    # five equal readings 30 min apart: runs 1..5 spanning 0, 0.5, 1, 1.5, 2 h
    cfg = FlatlineConfig(min_run=3, min_span_s=7200)
    c, _ = detect_flatline(cfg, FlatlineState(), "pm25", np.arange(5) * H // 2, [7.0] * 5)
    assert c.active.tolist() == [False, False, False, False, True]
    # hourly means: three equal values span 2 h, as EPA's rule means
    c, _ = detect_flatline(cfg, FlatlineState(), "pm25", np.arange(3) * H, [7.0] * 3)
    assert c.active.tolist() == [False, False, True]


def test_tolerance_absorbs_quantisation() -> None:
    cfg = FlatlineConfig(min_run=3, min_span_s=0, tolerance=0.1)
    c, _ = detect_flatline(cfg, FlatlineState(), "temperature", np.arange(4), [1.0, 1.05, 1.1, 1.5])
    assert c.value.tolist() == [1, 2, 3, 1]


def test_batches_and_single_values_agree_through_serialised_state() -> None:
    cfg = FlatlineConfig(min_run=3, min_span_s=2 * 3600)
    ts = np.arange(12) * H // 2
    values = np.array([3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4], dtype=float)
    whole, end = detect_flatline(cfg, FlatlineState(), "pm10", ts, values)
    state = FlatlineState()
    active = []
    for t, x in zip(ts, values):
        c, state = detect_flatline(cfg, state, "pm10", t, x)
        state = FlatlineState.from_dict(json.loads(json.dumps(state.to_dict())))
        active.append(bool(c.active[0]))
    assert active == whole.active.tolist()
    assert state == end
    assert whole.active.tolist() == [False] * 4 + [True] + [False] * 4 + [True] * 3
