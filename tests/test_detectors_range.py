"""Range checks and tiered limits against hand-worked values (DESIGN §5)."""

from dataclasses import replace

import numpy as np
import pytest

from streams.detectors import (
    AGGREGATE_LIMITS,
    DetectorSettings,
    Limit,
    RangeConfig,
    Severity,
    check_aggregate,
    check_limit,
    check_range,
)

NAN = np.nan


def test_physical_range_flags_values_outside_the_inclusive_bounds() -> None:
    pm = RangeConfig(0.0, 999.0)
    c = check_range(pm, "pm25", "µg/m³", np.arange(6), [-1.0, 0.0, 500.0, 999.0, 1000.0, NAN])
    assert c.kind == "range.physical"
    assert c.active.tolist() == [True, False, False, False, True, False]
    assert c.threshold.tolist() == [0.0, 999.0, 999.0, 999.0, 999.0, 999.0]
    assert c.severity.tolist() == [2, 0, 0, 0, 2, 0]


def test_realistic_noise_range_is_informative() -> None:
    laeq = DetectorSettings().realistic["laeq"]
    c = check_range(laeq, "laeq", "dB(A)", np.arange(4), [24.9, 25.0, 130.0, 130.1])
    assert c.kind == "range.realistic"
    assert c.active.tolist() == [True, False, False, True]
    assert c[3].severity is Severity.INFO


def test_single_reading_is_a_batch_of_one() -> None:
    c = check_range(RangeConfig(-25.0, 60.0), "temperature", "°C", 1000, 61.0)
    assert len(c) == 1 and c[0].active and c[0].threshold == 60.0 and c[0].ts == 1000


def test_design_ranges_are_the_defaults() -> None:
    s = DetectorSettings()
    bounds = {q: (r.low, r.high) for q, r in s.physical.items()}
    assert bounds["pm25"] == bounds["pm10"] == bounds["pm1"] == (0.0, 999.0)
    assert bounds["humidity"] == (0.0, 100.0)
    assert bounds["temperature"] == (-25.0, 60.0)
    assert bounds["pressure"] == (200.0, 1100.0)
    assert bounds["laeq"] == (0.0, 195.0)
    assert (s.realistic["laeq"].low, s.realistic["laeq"].high) == (25.0, 130.0)


def test_upper_tiers_report_the_worst_tier_exceeded() -> None:
    o3 = Limit("threshold.o3_hour", "o3", ((180, "warning"), (240, "critical")), hysteresis=10)
    c = check_limit(o3, "µg/m³", np.arange(5), [179.0, 180.0, 180.1, 240.0, 240.5])
    assert c.active.tolist() == [False, False, True, True, True]
    assert c.threshold.tolist() == [180.0, 180.0, 180.0, 180.0, 240.0]
    assert c.severity.tolist() == [0, 0, 2, 2, 3]
    assert c.clear_threshold == 170.0


def test_lower_limit_battery() -> None:
    battery = DetectorSettings().battery
    c = check_limit(battery, "V", np.arange(5), [3.6, 3.5, 3.49, 3.3, 3.29])
    assert c.active.tolist() == [False, False, True, True, True]
    assert c.threshold.tolist() == [3.5, 3.5, 3.5, 3.5, 3.3]
    assert c.severity.tolist() == [0, 0, 2, 2, 3]
    assert c.clear_threshold == pytest.approx(3.6)


def test_humidity_affected_pm_at_fog_level() -> None:
    humid = DetectorSettings().humidity_pm
    c = check_limit(humid, "%", np.arange(3), [97.9, 98.0, 98.1])
    assert c.kind == "humidity_pm"
    assert c.active.tolist() == [False, False, True]
    assert c[2].severity is Severity.INFO


def test_tiers_must_worsen() -> None:
    with pytest.raises(ValueError):
        Limit("x", "pm25", ((25, "warning"), (15, "critical")))
    with pytest.raises(ValueError):
        Limit("x", "battery", ((3.3, "warning"), (3.5, "critical")), lower=True)


def _limit(kind: str) -> Limit:
    return next(limit for limit in AGGREGATE_LIMITS if limit.kind == kind)


def test_design_limit_values() -> None:
    def tiers(kind: str) -> list[tuple[float, str]]:
        return [(v, s.label) for v, s in _limit(kind).tiers]

    assert tiers("threshold.pm25_day") == [(15.0, "info"), (25.0, "warning")]
    assert tiers("threshold.pm10_day") == [(45.0, "warning")]
    assert tiers("threshold.no2_hour") == [(200.0, "warning")]
    assert tiers("threshold.no2_day") == [(25.0, "info"), (50.0, "warning")]
    assert tiers("threshold.o3_hour") == [(180.0, "warning"), (240.0, "critical")]
    assert tiers("threshold.o3_8h") == [(100.0, "info"), (120.0, "warning")]
    assert tiers("threshold.noise_night") == [(45.0, "warning")]
    assert [v for v, _ in _limit("threshold.noise_construction_day").tiers] == [60, 65, 70, 75, 80]
    business = [_limit(f"threshold.noise_business_{p}") for p in ("day", "evening", "night")]
    assert [(b.window, b.tiers[0][0]) for b in business] == [
        ("lday", 50.0),
        ("levening", 45.0),
        ("lnight", 40.0),
    ]


def test_aggregate_limits_drop_windows_with_too_little_coverage() -> None:
    out = check_aggregate(
        AGGREGATE_LIMITS, "1d", "pm25", "µg/m³", [0, 1, 2], [30.0, 40.0, 20.0], [0.8, 0.7, 0.75]
    )
    assert [c.kind for c in out] == ["threshold.pm25_day"]
    (c,) = out
    assert c.ts.tolist() == [0, 2]
    assert c.active.tolist() == [True, True]
    assert c.threshold.tolist() == [25.0, 15.0]
    assert c.severity.tolist() == [2, 1]
    assert c.window == "1d"


def test_site_specific_noise_limits_are_off_until_enabled() -> None:
    default = check_aggregate(AGGREGATE_LIMITS, "lnight", "laeq", "dB(A)", 0, 47.0)
    assert [c.kind for c in default] == ["threshold.noise_night"]
    settings = DetectorSettings.from_mapping(
        {"limits": {"threshold.noise_business_night": {"enabled": True}}}
    )
    enabled = check_aggregate(list(settings.limits.values()), "lnight", "laeq", "dB(A)", 0, 47.0)
    # the WHO Lnight guideline (an annual value) alerts only where a lab enables it
    assert sorted(c.kind for c in enabled) == ["threshold.noise_business_night"]
    assert all(c.active[0] for c in enabled)


def test_construction_noise_tiers() -> None:
    limit = replace(_limit("threshold.noise_construction_day"), enabled=True)
    c = check_limit(limit, "dB(A)", np.arange(5), [60.0, 64.0, 72.0, 79.9, 80.5])
    assert c.active.tolist() == [False, True, True, True, True]
    assert c.threshold.tolist() == [60.0, 60.0, 70.0, 75.0, 80.0]
    assert c.severity.tolist() == [0, 1, 2, 2, 3]
