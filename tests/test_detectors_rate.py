"""Rate of change per minute between consecutive valid readings."""

import numpy as np

from streams.detectors import RateConfig, RateState, detect_rate

MIN = 60_000


def test_rates_against_the_limit_and_gap() -> None:
    cfg = RateConfig(max_per_min=1.0, max_gap_s=1800)
    ts = np.array([0, 5, 10, 50, 55]) * MIN
    c, state = detect_rate(cfg, RateState(), "temperature", "°C", ts, [10, 12, 20, 21, 15])
    # (12-10)/5 = 0.4; (20-12)/5 = 1.6; 40 min gap > 30 min: not compared; (15-21)/5 = -1.2
    assert np.allclose(c.value, [np.nan, 0.4, 1.6, np.nan, -1.2], equal_nan=True)
    assert c.active.tolist() == [False, False, True, False, True]
    assert c.threshold.tolist() == [1.0, 1.0, 1.0, 1.0, -1.0]
    assert c[4].reference == 21.0 and c.unit == "°C/min"
    assert state == RateState(last_ts=55 * MIN, last_value=15.0)


def test_missing_reading_compares_with_the_last_valid_one_across_batches() -> None:
    cfg = RateConfig(max_per_min=1.0)
    _, state = detect_rate(cfg, RateState(), "humidity", "%", [0, 5 * MIN], [10.0, 12.0])
    c, _ = detect_rate(cfg, state, "humidity", "%", [7 * MIN, 10 * MIN], [np.nan, 13.0])
    assert np.allclose(c.value, [np.nan, 0.2], equal_nan=True)  # (13-12)/5
    assert c[1].reference == 12.0
