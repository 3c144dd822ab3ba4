"""Spatial outliers: leave-one-out median, ratio AND difference, persistence."""

import numpy as np

from streams.detectors import SpatialConfig, SpatialState, detect_spatial, peer_medians

CFG = SpatialConfig(min_diff=10.0, ratio=2.0, min_peers=3, window=4, min_hits=2)


def test_peer_medians_leave_the_unit_out() -> None:
    median, count = peer_medians(np.array([1.0, 2.0, 3.0, np.nan]))
    assert median.tolist() == [2.5, 2.0, 1.5, 2.0]
    assert count.tolist() == [2, 2, 2, 3]


def test_persistent_outlier_becomes_active() -> None:
    values = {"a": 10.0, "b": 12.0, "c": 11.0, "d": 40.0}
    first, state = detect_spatial(CFG, SpatialState(), "pm25", "µg/m³", 0, values)
    d = first["d"][0]
    # peers of d: 10, 12, 11 -> median 11; edge max(2 x 11, 11 + 10) = 22
    assert (d.reference, d.threshold, d.value) == (11.0, 22.0, 40.0)
    assert not d.active  # one hit of the 2 needed
    second, state = detect_spatial(CFG, state, "pm25", "µg/m³", 1, values)
    assert second["d"][0].active
    a = second["a"][0]  # peers 12, 11, 40 -> median 12; lower edge min(12/2, 12-10) = 2
    assert not a.active and a.threshold == 2.0 and a.reference == 12.0
    assert state.history == {"a": 0, "b": 0, "c": 0, "d": 0b11}


def test_both_ratio_and_difference_must_be_exceeded() -> None:
    clean = {"a": 1.0, "b": 1.0, "c": 1.0, "d": 5.0}  # ratio 5 but only 4 apart (edge 11)
    polluted = {"a": 100.0, "b": 100.0, "c": 100.0, "d": 115.0}  # 15 apart, ratio 1.15 (edge 200)
    low = {"a": 100.0, "b": 100.0, "c": 100.0, "d": 30.0}  # below min(50, 90) = 50
    state = SpatialState()
    for _ in range(2):
        out_clean, _ = detect_spatial(CFG, state, "pm25", "µg/m³", 0, clean)
        out_polluted, _ = detect_spatial(CFG, state, "pm25", "µg/m³", 0, polluted)
        out_low, state = detect_spatial(CFG, state, "pm25", "µg/m³", 0, low)
    assert out_clean["d"][0].threshold == 11.0 and not out_clean["d"][0].active
    assert out_polluted["d"][0].threshold == 200.0 and not out_polluted["d"][0].active
    assert out_low["d"][0].threshold == 50.0 and out_low["d"][0].active


def test_difference_only_for_temperature_and_too_few_peers() -> None:
    cfg = SpatialConfig(min_diff=3.0, ratio=None, min_peers=3, window=1, min_hits=1)
    out, _ = detect_spatial(cfg, SpatialState(), "temperature", "°C", 0,
                            {"a": 10.0, "b": 10.5, "c": 9.5, "d": 13.5})  # fmt: skip
    assert out["d"][0].active and out["d"][0].threshold == 13.0
    few, state = detect_spatial(cfg, SpatialState(), "temperature", "°C", 0,
                                {"a": 10.0, "b": 10.5, "d": 20.0})  # fmt: skip
    assert few == {} and state.history == {}


def test_old_hits_leave_the_window() -> None:
    cfg = SpatialConfig(min_diff=10.0, ratio=2.0, min_peers=3, window=4, min_hits=2)
    out_of_line = {"a": 10.0, "b": 10.0, "c": 10.0, "d": 40.0}
    in_line = {**out_of_line, "d": 10.0}
    state, active = SpatialState(), []
    for values in (out_of_line, in_line, in_line, in_line, out_of_line):
        out, state = detect_spatial(cfg, state, "pm25", "µg/m³", 0, values)
        active.append(bool(out["d"][0].active))
    assert active == [False] * 5  # the first hit left the 4-wide window before the second
    assert state.history["d"] == 0b0001
    assert SpatialState.from_dict(state.to_dict()) == state
