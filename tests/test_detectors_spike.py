"""Hampel spikes: robust z = |x - median| / (1.4826 MAD) > 3, hand-computed windows."""

import numpy as np
import pytest

from streams.detectors import SpikeConfig, SpikeState, detect_spikes

SIGMA = 1.4826


def test_trailing_window_judges_the_newest_reading() -> None:
    # window [10,11,10,12,11,10,50]: median 11, |dev| [1,0,1,1,0,1,39] -> MAD 1
    cfg = SpikeConfig(k=3)
    values = [10, 11, 10, 12, 11, 10, 50, 11]
    c, state = detect_spikes(cfg, SpikeState(), "pm25", "µg/m³", np.arange(8), values)
    assert c.ts.tolist() == [6, 7]  # readings with a full window behind them
    assert c.active.tolist() == [True, False]
    assert c.reference.tolist() == [11.0, 11.0]
    assert c.threshold[0] == pytest.approx(11 + 3 * SIGMA)
    assert c.value[0] == 50.0
    assert state.values == (10.0, 12.0, 11.0, 10.0, 50.0, 11.0)


def test_centered_window_judges_the_middle_reading_k_late() -> None:
    cfg = SpikeConfig(k=3, centered=True)
    values = [10, 11, 10, 50, 12, 11, 10]
    c, _ = detect_spikes(cfg, SpikeState(), "pm25", "µg/m³", np.arange(7) * 60_000, values)
    assert c.ts.tolist() == [3 * 60_000]
    assert c.active.tolist() == [True]
    assert c.reference.tolist() == [11.0]


def test_zero_mad_uses_the_scale_floor() -> None:
    values = [5, 5, 5, 5, 5, 5, 6]
    bare, _ = detect_spikes(SpikeConfig(k=3), SpikeState(), "pm25", "µg/m³", np.arange(7), values)
    assert bare.active.tolist() == [True] and bare.threshold.tolist() == [5.0]
    cfg = SpikeConfig(k=3, min_scale=1.0)
    floored, _ = detect_spikes(cfg, SpikeState(), "pm25", "µg/m³", np.arange(7), values)
    assert floored.active.tolist() == [False]  # z = 1 / 1


def test_step_change_flags_k_readings_trailing_and_none_centered() -> None:
    values = [10.0] * 7 + [20.0] * 4
    ts = np.arange(11)
    trailing, _ = detect_spikes(SpikeConfig(k=3, min_scale=1.0), SpikeState(), "o3", "", ts, values)
    # medians of the windows ending at the 20s: 10, 10, 10, then 20
    assert trailing.ts[trailing.active].tolist() == [7, 8, 9]
    cfg = SpikeConfig(k=3, min_scale=1.0, centered=True)
    centered, _ = detect_spikes(cfg, SpikeState(), "o3", "", ts, values)
    assert not centered.active.any()


def test_missing_readings_are_skipped_and_batches_agree() -> None:
    cfg = SpikeConfig(k=3, min_scale=0.5)
    values = np.array([10, 11, np.nan, 10, 12, 11, 10, 50, 11, 10, 9, 30])
    ts = np.arange(len(values))
    whole, end = detect_spikes(cfg, SpikeState(), "pm10", "µg/m³", ts, values)
    state, parts = SpikeState(), []
    for chunk in (slice(0, 5), slice(5, 6), slice(6, 12)):
        c, state = detect_spikes(cfg, state, "pm10", "µg/m³", ts[chunk], values[chunk])
        parts.append(c)
    assert np.concatenate([p.ts for p in parts]).tolist() == whole.ts.tolist()
    assert np.concatenate([p.active for p in parts]).tolist() == whole.active.tolist()
    assert 2 not in whole.ts.tolist()
    assert state == end
    assert SpikeState.from_dict(end.to_dict()) == end
