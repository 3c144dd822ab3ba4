"""Detector additions for real-time alerting, against hand-computed cases.

Grouped flatlines (a frozen module), limits that hold at night only, per-lab settings
from the registry with errors that name the setting, and the lab quorum for fog.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from livinglab.registry import DEFAULT_REGISTRY, RegistryError, load_registry
from streams.alerting_rules import track_into
from streams.alerts import DEFAULT_POLICY, episode_key
from streams.detectors import (
    DetectorSettings,
    FlatlineConfig,
    FlatlineState,
    FogConfig,
    FogState,
    Limit,
    UnitState,
    check_limit_in_period,
    detect_flatline,
    detect_fog,
    detect_unit,
    local_hours,
)

MIN = 60_000
H = 3_600_000
T0 = 1_795_046_400_000  # 2026-11-20 00:00 UTC = 01:00 in Amsterdam (CET)


# -- grouped flatline ------------------------------------------------------------------------
def test_group_must_repeat_too() -> None:
    cfg = FlatlineConfig(min_run=3, min_span_s=0, group=("pm1", "pm10"))
    pm25 = [5.0, 5.0, 5.0, 5.0, 5.0]
    pm1 = [3.0, 3.0, 3.1, 3.1, 3.1]  # changes at the third reading
    pm10 = [8.0, 8.0, 8.0, 8.0, 8.0]
    c, state = detect_flatline(
        cfg, FlatlineState(), "pm25", np.arange(5) * MIN, pm25, {"pm1": pm1, "pm10": pm10}
    )
    assert c.value.tolist() == [1, 2, 1, 2, 3]
    assert c.active.tolist() == [False, False, False, False, True]
    assert state.last_group == {"pm1": 3.1, "pm10": 8.0}


def test_group_state_carries_over_batches() -> None:
    cfg = FlatlineConfig(min_run=3, min_span_s=0, group=("pm1",))
    state = FlatlineState()
    active = []
    for pm25, pm1 in [(5.0, 3.0), (5.0, 3.0), (5.0, 3.0), (5.0, 4.0)]:
        c, state = detect_flatline(cfg, state, "pm25", len(active) * MIN, pm25, {"pm1": pm1})
        state = FlatlineState.from_dict(state.to_dict())
        active.append(bool(c.active[0]))
    assert active == [False, False, True, False]


def test_missing_group_quantity_never_repeats() -> None:
    cfg = FlatlineConfig(min_run=3, min_span_s=0, group=("pm1",))
    c, state = detect_flatline(cfg, FlatlineState(), "pm25", np.arange(4) * MIN, [5.0] * 4)
    assert not c.active.any() and state.last_group == {"pm1": None}


def test_default_groups_are_modules() -> None:
    flat = DetectorSettings().flatline
    assert flat["pm25"].group == ("pm1", "pm10") and flat["pm25"].min_span_s == 0
    assert set(flat) == {"pm25", "laeq", "no2", "temperature"}


# -- limits at night only --------------------------------------------------------------------
NIGHT = Limit("threshold.n", "laeq", ((70.0, "warning"),), hysteresis=3.0, hours=(23.0, 7.0))


def test_local_hours_follow_the_lab_time_zone_and_dst() -> None:
    winter = local_hours(np.array([T0, T0 + 90 * MIN]), "Europe/Amsterdam")
    assert winter.tolist() == [1.0, 2.5]
    summer = 1_782_864_000_000  # 2026-07-01 00:00 UTC = 02:00 CEST
    assert local_hours(np.array([summer]), "Europe/Amsterdam").tolist() == [2.0]


def test_night_limit_splits_into_night_and_day_stretches() -> None:
    # 05:00 .. 08:00 local in hourly steps: 05, 06 inside the night; 07, 08 outside
    ts = T0 + np.arange(4) * H + 4 * H
    out = check_limit_in_period(NIGHT, "dB(A)", ts, [72.0, 68.0, 75.0, 75.0], "Europe/Amsterdam")
    assert [len(c) for c in out] == [2, 2]
    night, day = out
    assert night.active.tolist() == [True, False] and night.clear_threshold == 67.0
    assert day.active.tolist() == [False, False] and day.clear_threshold is None


def test_night_limit_wraps_midnight() -> None:
    ts = T0 - 3 * H + np.arange(4) * H  # 22:00, 23:00, 00:00, 01:00 local
    [day, night] = check_limit_in_period(NIGHT, "dB(A)", ts, [80.0] * 4, "Europe/Amsterdam")
    assert day.active.tolist() == [False] and night.active.tolist() == [True] * 3


def test_night_noise_is_a_default_reading_limit() -> None:
    limit = DetectorSettings().reading_limits["threshold.noise_night_level"]
    assert limit.hours == (23.0, 7.0) and limit.tiers[0][0] == 70.0


def test_hours_must_be_times_of_day() -> None:
    with pytest.raises(ValueError, match="hours"):
        Limit("x", "laeq", ((1.0, "info"),), hours=(7.0, 7.0))


# -- per-lab settings in the registry ---------------------------------------------------------
def _registry(tmp_path: Path, detectors: object) -> Path:
    raw = yaml.safe_load(DEFAULT_REGISTRY.read_text())
    raw["labs"][1]["detectors"] = detectors
    path = tmp_path / "labs.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_lab_section_overrides_the_defaults(tmp_path: Path) -> None:
    path = _registry(
        tmp_path,
        {"spike": {"pm25": {"z": 7}, "pm10": None}, "limits": {"threshold.pm25_day": None}},
    )
    registry = load_registry(path)
    lab = registry.labs[1]
    assert lab.detectors.spike["pm25"].z == 7 and "pm10" not in lab.detectors.spike
    assert "threshold.pm25_day" not in lab.detectors.limits
    assert registry.labs[0].detectors == DetectorSettings()


@pytest.mark.parametrize(
    ("detectors", "problem"),
    [
        ({"spikes": {}}, "unknown setting ['spikes']"),
        ({"spike": {"pm25": {"kk": 4}}}, "spike.pm25: unknown setting ['kk']"),
        ({"spike": {"pm25": {"k": "five"}}}, "spike.pm25.k: expected a number, got 'five'"),
        ({"spike": {"pm25": {"severity": "bad"}}}, "spike.pm25: severity must be info"),
        ({"flatline": 3}, "flatline: expected a mapping, got 3"),
        ({"limits": {"threshold.x": {"tiers": [[1, "info"]]}}}, "limits.threshold.x: "),
        ({"offline": {"expected_interval_s": 60}}, "comes from each unit's uplink_interval_s"),
        (["spike"], "field 'detectors' must be dict"),
    ],
)
def test_broken_section_names_file_lab_and_setting(
    tmp_path: Path, detectors: object, problem: str
) -> None:
    path = _registry(tmp_path, detectors)
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    lab = load_registry().labs[1].id
    assert str(info.value).startswith(f"{path}: lab {lab}")
    assert problem in str(info.value)


# -- fog: a quorum of the lab's units --------------------------------------------------------
FOG = FogConfig(quorum=0.5, min_units=3)
HUMID = DetectorSettings().humidity_pm


def _step(state: FogState, sensor: str, ts: int, humid: bool, value: float = 99.0):
    return detect_fog(FOG, state, HUMID, 6, sensor, ts, humid, value)


def test_fog_needs_half_the_units() -> None:
    state = FogState()
    out, state = _step(state, "a", 0, True)
    assert {s: bool(c.active[0]) for s, c in out.items()} == {"a": False}
    out, state = _step(state, "b", MIN, True)
    assert not any(c.active[0] for c in out.values())
    out, state = _step(state, "c", 2 * MIN, True)  # 3 of 6: foggy
    assert {s: bool(c.active[0]) for s, c in out.items()} == {"a": True, "b": True, "c": True}
    assert all(c.ts.tolist() == [2 * MIN] for c in out.values())
    out, state = _step(state, "b", 3 * MIN, False, 94.0)  # 2 of 6 left: clear for all
    assert {s: bool(c.active[0]) for s, c in out.items()} == {"a": False, "b": False, "c": False}
    assert out["b"].value.tolist() == [94.0] and out["a"].value.tolist() == [99.0]
    assert set(state.humid) == {"a", "c"}


def test_fog_needs_min_units_in_a_small_lab() -> None:
    state = FogState()
    for sensor in ("a", "b"):
        out, state = detect_fog(FOG, state, HUMID, 2, sensor, 0, True, 99.0)
    assert not any(c.active[0] for c in out.values())


# -- leaving out quiet stateless checks ------------------------------------------------------
def test_quiet_range_and_limit_checks_are_left_out_unless_an_episode_needs_them() -> None:
    ts = np.arange(4) * MIN
    readings = {"pm25": np.array([5.0, 6.0, 1200.0, 7.0]), "battery": np.full(4, 3.9),
                "humidity": np.full(4, 80.0), "laeq": np.full(4, 50.0)}  # fmt: skip
    settings = DetectorSettings()
    everything, _ = detect_unit(settings, UnitState(), ts, readings)
    quiet, _ = detect_unit(settings, UnitState(), ts, readings, needed=lambda k, q: False)
    kept, _ = detect_unit(
        settings, UnitState(), ts, readings, needed=lambda k, q: k == "battery_low"
    )
    kinds = {(c.kind, c.quantity) for c in everything}
    assert ("range.physical", "laeq") in kinds and ("battery_low", "battery") in kinds
    left = {(c.kind, c.quantity) for c in quiet}
    assert ("range.physical", "pm25") in left  # 1200 is out of range
    assert ("range.physical", "laeq") not in left and ("battery_low", "battery") not in left
    assert ("battery_low", "battery") in {(c.kind, c.quantity) for c in kept}
    assert {c.kind for c in quiet} >= {"flatline", "spike"}  # stateful: always there


def test_leaving_them_out_changes_no_alert() -> None:
    rng = np.random.default_rng(3)
    ts = np.arange(240) * MIN
    battery = np.r_[np.full(60, 3.9), np.full(60, 3.45), np.full(120, 3.9)]
    humidity = np.clip(85 + rng.normal(0, 8, 240), 0, 100)
    readings = {"pm25": 8 + rng.normal(0, 1, 240), "battery": battery, "humidity": humidity}
    runs = []
    for needs in (False, True):
        state, episodes, alerts = UnitState(), {}, []
        for i in range(0, 240, 17):
            batch = {q: x[i : i + 17] for q, x in readings.items()}
            needed = (lambda k, q, e=episodes: episode_key(k, q) in e) if needs else None
            conds, state = detect_unit(
                DetectorSettings(), state, ts[i : i + 17], batch, needed=needed
            )
            alerts += track_into(DEFAULT_POLICY, episodes, "l", "s", conds)
        runs.append([(a.kind, a.state.value, a.ts) for a in alerts])
    assert runs[0] == runs[1]
    battery_low = [a[1:] for a in runs[0] if a[0] == "battery_low"]
    assert battery_low == [("open", 62 * MIN), ("resolved", 122 * MIN)]
