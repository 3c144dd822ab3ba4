"""Alert lifecycle: episodes, hysteresis, minimum duration, updates, deterministic ids."""

import json
import uuid

import numpy as np

from streams.alerts import (
    DEFAULT_POLICY,
    AlertState,
    Episode,
    LifecycleConfig,
    alert_id,
    config_for,
    lifecycle_policy,
    track,
    track_all,
)
from streams.detectors import Conditions, Severity, make_conditions

H = 3_600_000
MIN = 60_000
NIGHT = "threshold.noise_night"


def night(
    values: list[float], ts: np.ndarray | None = None, clear: float | None = 44.0
) -> Conditions:
    """Night LAeq against 45 dB (resolve below 44), one value per night."""
    x = np.asarray(values, dtype=float)
    t = np.arange(len(x)) * 24 * H if ts is None else ts
    return make_conditions(NIGHT, "laeq", "dB(A)", t, x > 45.0, x, 45.0, Severity.WARNING,
                           clear_threshold=clear, window="lnight")  # fmt: skip


def states(events: list) -> list[tuple[str, int]]:
    return [(e.state.value, e.ts) for e in events]


def test_flapping_around_the_limit_is_one_episode() -> None:
    cfg = LifecycleConfig(worsen_by=3.0)
    events, ep = track(cfg, Episode(), "zoetermeer", "zt-03", night([46, 44.5, 46, 44.2, 47, 43]))
    day = 24 * H
    assert states(events) == [("open", 0), ("resolved", 5 * day)]
    assert events[0].id == events[1].id
    assert events[1].ended == 5 * day and events[1].started == 0
    assert events[1].peak == 47.0 and events[1].value == 43.0
    assert ep.alert_id is None


def test_clear_after_n_inactive_samples_without_hysteresis() -> None:
    cfg = LifecycleConfig(clear_samples=2)
    events, _ = track(cfg, Episode(), "l", "s", night([46, 44, 46, 44, 46, 44, 44], clear=None))
    assert [e.state for e in events] == [AlertState.OPEN, AlertState.RESOLVED]
    assert events[1].ended == 5 * 24 * H and events[1].ts == 6 * 24 * H


def test_minimum_samples_suppress_a_one_sample_blip() -> None:
    cfg = LifecycleConfig(min_samples=2)
    events, ep = track(cfg, Episode(), "l", "s", night([40, 50, 40, 40]))
    assert events == [] and ep.pending_since is None
    events, _ = track(cfg, Episode(), "l", "s", night([40, 50, 50]))
    assert states(events) == [("open", 2 * 24 * H)]
    assert events[0].started == 24 * H  # the first active sample, not the confirming one


def test_minimum_duration_in_event_time() -> None:
    cfg = LifecycleConfig(min_duration_s=600)
    ts = np.array([0, 5, 10, 20, 25]) * MIN
    events, _ = track(cfg, Episode(), "l", "s", night([50, 40, 50, 50, 50], ts=ts))
    # 0 alone is a blip; the run from 10 min reaches 10 min of duration at 20 min
    assert states(events) == [("open", 20 * MIN)] and events[0].started == 10 * MIN


def test_recurrence_after_resolve_gets_a_new_id() -> None:
    events, _ = track(LifecycleConfig(), Episode(), "l", "s", night([50, 40, 50, 40]))
    day = 24 * H
    assert states(events) == [
        ("open", 0),
        ("resolved", day),
        ("open", 2 * day),
        ("resolved", 3 * day),
    ]
    first, second = events[0].id, events[2].id
    assert first != second
    assert first == str(uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, "urn:livinglab:alert"),
                                   f"l\x1fs\x1f{NIGHT}\x1flaeq\x1f0"))  # fmt: skip
    assert second == alert_id("l", "s", NIGHT, "laeq", 2 * day)
    assert [e.seq for e in events] == [0, 1, 0, 1]


def test_replay_gives_the_same_ids_whatever_the_batching() -> None:
    values = [40, 46, 47, 44.5, 52, 43, 41, 48, 49, 40]
    conds = night(values)
    once, _ = track(LifecycleConfig(worsen_by=3.0), Episode(), "l", "s", conds)
    again, _ = track(LifecycleConfig(worsen_by=3.0), Episode(), "l", "s", conds)
    assert once == again
    ep, split = Episode(), []
    for lo, hi in ((0, 3), (3, 4), (4, 10)):
        part = night(values[lo:hi], ts=conds.ts[lo:hi])
        out, ep = track(LifecycleConfig(worsen_by=3.0), ep, "l", "s", part)
        ep = Episode.from_dict(json.loads(json.dumps(ep.to_dict())))
        split.extend(out)
    assert split == once
    assert [e.state.value for e in once] == ["open", "update", "resolved", "open", "resolved"]


def test_redelivered_samples_are_ignored() -> None:
    conds = night([50, 50, 40])
    events, ep = track(LifecycleConfig(), Episode(), "l", "s", conds)
    assert len(events) == 2
    assert track(LifecycleConfig(), ep, "l", "s", conds) == ([], ep)


def test_updates_only_on_severity_change_or_material_worsening() -> None:
    events, _ = track(
        LifecycleConfig(worsen_by=3.0), Episode(), "l", "s", night([46, 47, 49.5, 49.6, 48])
    )
    assert [(e.state.value, e.value) for e in events] == [("open", 46.0), ("update", 49.5)]
    o3 = make_conditions("threshold.o3_hour", "o3", "µg/m³", np.arange(5) * H,
                         np.array([True, True, True, True, False]),
                         [190.0, 250.0, 260.0, 200.0, 160.0], [180.0, 240.0, 240.0, 180.0, 180.0],
                         np.array([2, 3, 3, 2, 0]), clear_threshold=170.0)  # fmt: skip
    events, _ = track(LifecycleConfig(), Episode(), "l", "s", o3)
    assert [(e.state.value, e.severity.label) for e in events] == [
        ("open", "warning"),
        ("update", "critical"),
        ("update", "warning"),
        ("resolved", "warning"),
    ]
    assert events[-1].peak == 260.0


def test_lower_limit_hysteresis() -> None:
    battery = make_conditions("battery_low", "battery", "V", np.arange(4) * H,
                              np.array([True, False, False, False]), [3.4, 3.55, 3.65, 3.7],
                              3.5, Severity.WARNING, clear_threshold=3.6)  # fmt: skip
    events, _ = track(LifecycleConfig(), Episode(), "l", "s", battery)
    # 3.55 is above the limit but below the clear level: the alert stays open
    assert states(events) == [("open", 0), ("resolved", 2 * H)]
    assert events[1].peak == 3.4


def test_clear_after_time_and_missing_values() -> None:
    ts = np.array([0, 10, 30, 40, 71]) * MIN
    spikes = make_conditions("spike", "pm25", "µg/m³", ts,
                             np.array([True, False, False, False, False]),
                             [90.0, 10.0, np.nan, 11.0, 9.0], 20.0, Severity.WARNING)  # fmt: skip
    events, _ = track(LifecycleConfig(clear_after_s=3600), Episode(), "l", "s", spikes)
    assert states(events) == [("open", 0), ("resolved", 71 * MIN)]
    assert events[1].ended == 10 * MIN


def test_track_all_keys_by_kind_and_quantity() -> None:
    a = night([50, 50])
    b = make_conditions("flatline", "pm25", "readings", a.ts, np.array([True, True]),
                        [3.0, 4.0], 3.0, Severity.WARNING)  # fmt: skip
    events, eps = track_all(DEFAULT_POLICY, {}, "l", "s", [a, b])
    assert sorted(eps) == ["flatline:pm25", "threshold.noise_night:laeq"]
    assert sorted(e.kind for e in events) == ["flatline", NIGHT]


def test_policy_defaults_and_overrides() -> None:
    assert config_for(DEFAULT_POLICY, NIGHT).worsen_by == 3.0
    assert config_for(DEFAULT_POLICY, "threshold.custom") == LifecycleConfig()
    assert config_for(DEFAULT_POLICY, "something_new") == DEFAULT_POLICY["default"]
    policy = lifecycle_policy({NIGHT: {"min_samples": 2}})
    assert config_for(policy, NIGHT) == LifecycleConfig(min_samples=2, worsen_by=3.0)


def test_messages_read_like_the_design_example() -> None:
    events, _ = track(LifecycleConfig(), Episode(), "zoetermeer", "zt-03", night([52.3, 43.04]))
    assert events[0].message_nl == (
        "Geluidsniveau 's nachts boven de norm, sensor zt-03: 52,3 dB(A) (grens 45)"
    )
    assert events[0].message_en == (
        "Night-time noise level above the limit, sensor zt-03: 52.3 dB(A) (limit 45)"
    )
    assert events[1].message_nl == (
        "Opgelost – Geluidsniveau 's nachts boven de norm, sensor zt-03: "
        "was 52,3 dB(A), nu 43 dB(A) (grens 45)"
    )
