"""Per-lab overrides of detector settings and the per-unit bundle."""

import json

import numpy as np
import pytest

from streams.detectors import (
    DetectorSettings,
    Severity,
    SpikeConfig,
    UnitState,
    detect_unit,
)

MIN = 60_000


def test_registry_section_overrides_adds_and_removes() -> None:
    s = DetectorSettings.from_mapping(
        {
            "offline": {"expected_interval_s": 600},
            "spike": {"pm25": {"k": 5}, "laeq": {"min_scale": 0.5}, "pm10": None},
            "flatline": {"pm25": {"severity": "critical"}},
            "battery": {"tiers": [[3.6, "warning"], [3.4, "critical"]]},
            "limits": {
                "threshold.custom": {"quantity": "pm25", "window": "1d", "tiers": [[5, "info"]]}
            },
        }
    )  # fmt: skip
    assert s.offline.expected_interval_s == 600 and s.offline.factor == 3.0
    assert s.spike["pm25"] == SpikeConfig(k=5, z=5.0, min_scale=2.0)
    assert s.spike["laeq"] == SpikeConfig(min_scale=0.5)
    assert "pm10" not in s.spike
    assert s.flatline["pm25"].severity is Severity.CRITICAL
    assert s.battery.tiers == ((3.6, Severity.WARNING), (3.4, Severity.CRITICAL))
    assert s.limits["threshold.custom"].kind == "threshold.custom"
    assert DetectorSettings().spike["pm25"].k == 5  # defaults untouched
    assert DetectorSettings.from_mapping({"spike": {"pm25": {"k": 3}}}).spike["pm25"].k == 3


def test_unknown_settings_fail_loudly() -> None:
    with pytest.raises(ValueError, match="unknown"):
        DetectorSettings.from_mapping({"spikes": {}})
    with pytest.raises(ValueError, match="unknown"):
        DetectorSettings.from_mapping({"spike": {"pm25": {"kk": 4}}})


def _readings(n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    ts = np.arange(n) * 5 * MIN
    pm25 = np.array([8, 9, 8, 10, 9, 8, 90, 9, 8, 9, 10, 9], dtype=float)[:n]
    return ts, {
        "pm25": pm25,
        "humidity": np.full(n, 99.0),
        "temperature": np.array([12, 12.1, 12.2, 19, 12.3, 12.2, 12.1, 12, 12, 12, 12, 12])[:n],
        "battery": np.full(n, 3.4),
        "laeq": np.full(n, 200.0),
    }


def test_unit_bundle_runs_the_configured_detectors() -> None:
    ts, readings = _readings(12)
    reboot = np.zeros(12, dtype=bool)
    reboot[0] = True
    settings = DetectorSettings.from_mapping({"spike": {"pm25": {"k": 3, "z": 3}}})
    conds, state = detect_unit(settings, UnitState(), ts, readings, reboot)
    active = {(c.kind, c.quantity): c.ts[c.active].tolist() for c in conds}
    assert active[("spike", "pm25")] == [6 * 5 * MIN]
    assert active[("rate", "temperature")] == [3 * 5 * MIN, 4 * 5 * MIN]  # +6.8/5 and -6.7/5
    assert active[("humidity_pm", "humidity")] == ts.tolist()
    assert active[("battery_low", "battery")] == ts.tolist()
    assert active[("range.physical", "laeq")] == ts.tolist()
    assert active[("reboot", None)] == [0]
    assert state.offline.last_seen == 11 * 5 * MIN


def test_unit_bundle_batches_and_single_readings_agree() -> None:
    ts, readings = _readings(12)
    settings = DetectorSettings()
    whole, end = detect_unit(settings, UnitState(), ts, readings)
    state, fired = UnitState(), {}
    for i in range(12):
        conds, state = detect_unit(settings, state, ts[i], {q: x[i] for q, x in readings.items()})
        state = UnitState.from_dict(json.loads(json.dumps(state.to_dict())))
        for c in conds:
            fired.setdefault((c.kind, c.quantity), []).extend(c.ts[c.active].tolist())
    assert fired == {(c.kind, c.quantity): c.ts[c.active].tolist() for c in whole}
    assert state == end
