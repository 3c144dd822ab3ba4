"""Labelled scenarios in the simulator, and the simulated fleet through the whole stream path.

The path runs in one process (streams/alerting_local.py: the real LNS normalisation,
partition processor and alerting steps, Kafka's partitioning emulated); the embedded
stack itself is in tests/test_e2e_alerts.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from livinglab.registry import Registry, load_registry
from livinglab.simulator.fleet import fleet_messages, send_times, unit_messages
from livinglab.simulator.scenarios import (
    FOG_RAMP_PER_MIN,
    FOG_RH,
    KINDS,
    Injector,
    ground_truth,
    parse_kinds,
    plan,
)
from livinglab.simulator.signals import unit_signals
from streams.alerting_local import LocalStreams

REGISTRY = load_registry()
ONE_LAB = Registry(REGISTRY.path, REGISTRY.labs[:1], REGISTRY.by_dev_eui, REGISTRY.by_dev_addr)
H = 3_600_000
START = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp() * 1000)
AMS = ZoneInfo("Europe/Amsterdam")


def test_kinds_and_the_standard_set() -> None:
    assert parse_kinds("standard") == KINDS
    assert parse_kinds("dead, stuck,dead") == ("dead", "stuck")
    with pytest.raises(ValueError, match="unknown scenario 'flood'"):
        parse_kinds("stuck,flood")


def test_standard_week_gives_every_lab_every_kind_at_its_hour() -> None:
    episodes = plan(REGISTRY, START, START + 7 * 24 * H, KINDS, seed=1)
    for lab in REGISTRY.labs:
        mine = [e for e in episodes if e.lab == lab.id]
        kinds = {k: [e for e in mine if e.kind == k] for k in KINDS}
        assert [len(kinds[k]) for k in KINDS] == [10, 1, 1, 1, 10, 1]  # lab-wide: every unit
        assert len({e.sensor for k in ("stuck", "dead", "construction", "drift")
                    for e in kinds[k]}) == 4  # fmt: skip
        local = {k: datetime.fromtimestamp(kinds[k][0].start / 1000, AMS) for k in KINDS}
        assert (local["fireworks"].hour, local["fireworks"].minute) == (0, 0)
        assert (local["construction"].hour, local["construction"].minute) == (23, 30)
        assert local["fog"].hour == 2
        assert kinds["drift"][0].end == START + 7 * 24 * H  # a drift does not heal
    starts = sorted({e.start for e in episodes if e.kind == "stuck"})
    assert np.diff(starts).tolist() == [H] * 6  # one lab an hour after the other


def test_too_short_a_run_for_a_night_kind_says_so() -> None:
    with pytest.raises(ValueError, match="fireworks: 1.0 simulated hours per scenario"):
        plan(REGISTRY, START + 12 * H, START + 14 * H, ("fireworks", "stuck"), seed=1)


def test_ground_truth_starts_at_the_first_affected_uplink() -> None:
    episodes = plan(ONE_LAB, START, START + 4 * H, ("stuck", "dead"), seed=1)
    truth = ground_truth(ONE_LAB, episodes, START, START + 4 * H, 1, ("stuck", "dead"))
    unit = next(u for u in ONE_LAB.units if u.sensor == episodes[0].sensor)
    _, sent = send_times(unit, ONE_LAB.units.index(unit), START, START + 4 * H, 1)
    first = sent[sent >= episodes[0].start][0]
    [stuck, dead] = truth["episodes"]
    assert stuck["start"] == datetime.fromtimestamp(first / 1000, UTC).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )
    assert (stuck["kind"], stuck["detected_by"], dead["detected_by"]) == (
        "stuck",
        ["flatline"],
        ["offline"],
    )
    assert dead["end"] == "2026-11-20T04:00:00.000000Z"  # dead until the end of the run


def _signals(kind: str) -> tuple[object, np.ndarray, dict, dict, np.ndarray, object]:
    episodes = plan(ONE_LAB, START, START + 7 * 24 * H, KINDS, seed=1)
    e = next(x for x in episodes if x.kind == kind)
    unit = next(u for u in ONE_LAB.units if u.sensor == e.sensor)
    index = ONE_LAB.units.index(unit)
    rng, sent = send_times(unit, index, START, START + 7 * 24 * H, 1)
    before = unit_signals(sent, ONE_LAB.labs[0].timezone, rng)
    after = {q: v.copy() for q, v in before.items()}
    keep = Injector(episodes, 1)(unit, sent, after)
    return e, sent, before, after, keep, unit


def test_stuck_pm_module_repeats_its_last_reading() -> None:
    e, sent, before, after, keep, _ = _signals("stuck")
    inside = (sent >= e.start) & (sent < e.end)
    last = np.flatnonzero(inside)[0] - 1
    for q in ("pm1", "pm25", "pm10"):
        assert np.all(after[q][inside] == after[q][last])
    assert keep.all()


def test_dead_unit_sends_nothing_during_its_episode() -> None:
    e, sent, _, _, keep, _ = _signals("dead")
    assert np.array_equal(keep, (sent < e.start) | (sent >= e.end))


def test_fog_saturates_without_a_jump_and_pm_over_reads() -> None:
    e, sent, before, after, _, _ = _signals("fog")
    inside = (sent >= e.start) & (sent < e.end)
    assert after["humidity"][inside].min() >= FOG_RH
    assert np.abs(np.diff(after["humidity"])).max() <= max(
        FOG_RAMP_PER_MIN * 1.1, np.abs(np.diff(before["humidity"])).max()
    )
    ratio = after["pm25"][inside] / before["pm25"][inside]
    assert ratio[0] < 1.05 and ratio[-1] == pytest.approx(2.5)  # droplets grow over 30 min


def test_without_scenarios_the_fleet_sends_what_it_always_sent() -> None:
    lab, unit = ONE_LAB.labs[0], ONE_LAB.units[4]
    plain = [m.body for m in unit_messages(lab, unit, 4, START, START + H, 7)]
    empty = [m.body for m in unit_messages(lab, unit, 4, START, START + H, 7, Injector([], 7))]
    assert plain == empty and len(plain) > 60


def test_a_stuck_sensor_and_a_dead_unit_are_alerted_in_time_and_nothing_else() -> None:
    end = START + 4 * H
    episodes = plan(ONE_LAB, START, end, ("stuck", "dead"), seed=1)
    truth = ground_truth(ONE_LAB, episodes, START, end, 1, ("stuck", "dead"))["episodes"]
    streams = LocalStreams(ONE_LAB)
    streams.feed(m.body for m in fleet_messages(ONE_LAB, START, end, 1, Injector(episodes, 1)))
    streams.end()
    opened = [a for a in streams.alerts if a["state"] == "open"]
    assert sorted((a["sensor"], a["kind"]) for a in opened) == sorted(
        (e["sensor"], e["detected_by"][0]) for e in truth
    )
    for e in truth:
        [alert] = [a for a in opened if a["sensor"] == e["sensor"]]
        latency_s = (_ms(alert["ts"]) - _ms(e["start"])) / 1000
        assert 0 <= latency_s <= (3 if e["kind"] == "dead" else 2) * e["interval_s"]


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)
