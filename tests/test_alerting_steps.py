"""The alerting steps without Kafka: readings, aggregates and the lab step, as the worker runs them.

Records are real Avro/JSON as on the topics; the steps keep their state in plain dicts
(Faust tables in the worker). Cases are small and hand-made so the expected alerts can
be counted by hand; tests/test_alerting_scenarios.py runs the simulated fleet through
the whole path.
"""

from __future__ import annotations

import json

import pytest
import yaml

from livinglab.codec.payload import STATUS_BITS
from livinglab.registry import DEFAULT_REGISTRY, load_registry, parse_registry
from schemas import codec
from streams.alerting_labs import LabAlerting
from streams.alerting_limits import LimitAlerting
from streams.alerting_rules import Rules, partition_of
from streams.alerting_units import LIVE_DELAY_MS, UnitAlerting
from streams.processor import CONTROL_KEY, END_OF_INPUT

REGISTRY = load_registry()
RULES = Rules(REGISTRY)
LAB = REGISTRY.lab("zoetermeer")
MIN = 60_000
H = 3_600_000
T0 = 1_795_046_400_000 + 12 * H  # 2026-11-19 12:00 UTC, daytime
PARTITIONS = 4
READING, AGGREGATE = codec("reading"), codec("aggregate")
CALM = {"pm1": 6.0, "pm25": 9.0, "pm10": 14.0, "no2": 20.0, "o3": 40.0, "laeq": 50.0,
        "lamax": 60.0, "lamin": 42.0, "temperature": 9.0, "humidity": 80.0,
        "pressure": 1013.0, "battery": 3.9}  # fmt: skip


def reading(unit, ts: int, session: int = 1, status: int = 0, version: int = 1, **values) -> bytes:
    """A Reading as the processor emits it; values vary a little per minute unless given."""
    wobble = (ts // MIN) % 7 * 0.1
    vals = {q: v + wobble for q, v in CALM.items()} | values
    return READING.encode(
        {"lab": unit.lab, "sensor": unit.sensor, "dev_eui": unit.dev_eui, "ts": ts,
         "session": session, "f_cnt": ts // MIN, "f_port": 1, "uplink_version": version,
         "source": "test", "gateways": [], "frequency": None, "spreading_factor": None,
         "payload": b"", "status": status, "calibration": "none", "values": vals,
         "raw_values": vals, "flags": {}}
    )  # fmt: skip


class Units:
    """The readings step over several batches, with offsets per partition as Kafka keeps them."""

    def __init__(self, now: int = 0) -> None:
        self.units: dict = {}
        self.clocks: dict = {}
        self.offsets = [0] * PARTITIONS
        self.wall = now
        self.alerts: list[dict] = []

    def step(self, partition: int) -> UnitAlerting:
        return UnitAlerting(
            RULES, partition, PARTITIONS, self.units, self.clocks, now=lambda: self.wall
        )

    def feed(self, records: list[tuple[object, bytes]], redeliver: int = 0) -> None:
        """One batch of (unit, reading) in arrival order; ``redeliver`` repeats the last N."""
        by_partition: dict[int, list] = {}
        for unit, value in records:
            p = partition_of(unit.key, PARTITIONS)
            by_partition.setdefault(p, []).append((self.offsets[p], unit.key.encode(), value))
            self.offsets[p] += 1
        for p, batch in by_partition.items():
            step = self.step(p)
            for offset, key, value in batch + batch[len(batch) - redeliver :]:
                step.handle(offset, key, value, READING.headers)
            step.end_batch()
            self.take(step)

    def take(self, step) -> None:
        outputs, _ = step.take()
        self.alerts += [json.loads(v) for topic, _, v, _ in outputs if topic.startswith("alerts.")]

    def of(self, unit, kind: str | None = None) -> list[dict]:
        """The unit's alerts (units never heard go offline around it), of one kind."""
        return [a for a in self.alerts if a["sensor"] == unit.sensor and kind in (None, a["kind"])]


def minutes(units, start: int, n: int, **values) -> list[tuple[object, bytes]]:
    """One reading a minute per unit, interleaved in time order."""
    return [(u, reading(u, start + i * MIN, **values)) for i in range(n) for u in units]


# -- readings -------------------------------------------------------------------------------
def test_redelivered_readings_change_nothing() -> None:
    unit = LAB.units[0]
    once, twice = Units(), Units()
    batch = minutes([unit], T0, 5) + minutes([unit], T0 + 5 * MIN, 4, pm1=3.0, pm25=7.0, pm10=9.0)
    once.feed(batch)
    twice.feed(batch, redeliver=6)
    assert [(a["kind"], a["state"]) for a in once.of(unit)] == [("flatline", "open")]
    assert twice.alerts == once.alerts and twice.units == once.units


def test_late_gateway_copies_and_out_of_order_readings_are_not_judged_twice() -> None:
    unit = LAB.units[0]
    run = Units()
    frozen = minutes([unit], T0, 4, pm1=3.0, pm25=7.0, pm10=9.0)
    copies = [(unit, reading(unit, T0 + i * MIN, version=2, pm25=500.0)) for i in range(4)]
    run.feed(frozen + copies)
    old = [(unit, reading(unit, T0 - 10 * MIN, pm25=900.0))]  # delivered late, older
    run.feed(old)
    assert [(a["kind"], a["quantity"], a["state"]) for a in run.of(unit)] == [
        ("flatline", "pm25", "open")
    ]


def test_reboot_from_the_status_bit_or_a_new_session() -> None:
    unit = LAB.units[0]
    run = Units()
    run.feed([(unit, reading(unit, T0))])
    run.feed([(unit, reading(unit, T0 + MIN, status=STATUS_BITS["reboot"]))])
    run.feed([(unit, reading(unit, T0 + 30 * MIN)), (unit, reading(unit, T0 + 91 * MIN))])
    run.feed([(unit, reading(unit, T0 + 2 * H, session=2))])
    events = [(a["state"], a["ts"][11:16], a["value"]) for a in run.of(unit, "reboot")]
    # a point event: resolved an hour after the last restart; two restarts within 24 h
    assert events == [("open", "12:01", 1), ("resolved", "13:31", 0), ("open", "14:00", 2)]


def test_night_noise_needs_two_loud_minutes() -> None:
    unit = LAB.units[0]
    night = T0 + 11 * H  # 23:00 UTC = midnight in Amsterdam
    run = Units()
    run.feed(minutes([unit], night, 1, laeq=75.0) + minutes([unit], night + MIN, 2, laeq=45.0))
    assert run.of(unit) == []
    run.feed(minutes([unit], night + 3 * MIN, 2, laeq=76.0))
    [alert] = run.of(unit)
    assert (alert["kind"], alert["severity"], alert["window"]) == (
        "threshold.noise_night_level",
        "warning",
        None,
    )
    assert alert["ts"] == "2026-11-19T23:04:00.000Z" and alert["started"][11:16] == "23:03"
    assert "'s nachts" in alert["message_nl"]


# -- offline ---------------------------------------------------------------------------------
def _cell_mates() -> tuple[object, object, object]:
    """Two units sharing readings and uplinks partitions, and one on another uplinks partition."""
    cells: dict[tuple[int, int], list] = {}
    for u in REGISTRY.units:
        cells.setdefault(
            (partition_of(u.key, PARTITIONS), partition_of(u.dev_eui, PARTITIONS)), []
        ).append(u)
    mates = next(us for us in cells.values() if len(us) >= 2)
    q, p = partition_of(mates[0].key, PARTITIONS), partition_of(mates[0].dev_eui, PARTITIONS)
    other = next(us[0] for (q2, p2), us in cells.items() if q2 == q and p2 != p)
    return mates[0], mates[1], other


def test_offline_is_stamped_when_the_silence_crossed_the_limit() -> None:
    dead, mate, _ = _cell_mates()
    run = Units()
    run.feed(minutes([dead, mate], T0, 3))
    run.feed(minutes([mate], T0 + 3 * MIN, 16))
    assert run.of(dead) == []  # a late frame may still come: 15 min of lateness
    run.feed(minutes([mate], T0 + 19 * MIN, 10))
    offline = run.of(dead, "offline")
    assert [(a["state"], a["ts"]) for a in offline] == [("open", "2026-11-19T12:05:00.001Z")]
    assert offline[0]["value"] == pytest.approx(180.001) and offline[0]["unit"] == "s"
    run.feed(minutes([dead, mate], T0 + 29 * MIN, 1))
    back = run.of(dead, "offline")[-1]
    assert (back["state"], back["ts"], back["ended"]) == ("resolved", back["ts"], back["ts"])


def test_frames_delivered_late_are_not_silence() -> None:
    dead, mate, _ = _cell_mates()
    run = Units()
    run.feed(minutes([dead, mate], T0, 3) + minutes([mate], T0 + 3 * MIN, 12))
    run.feed(minutes([dead], T0 + 3 * MIN, 12) + minutes([dead, mate], T0 + 15 * MIN, 20))
    assert run.of(dead) == []


def test_a_batch_from_another_upstream_partition_does_not_make_units_silent() -> None:
    dead, mate, other = _cell_mates()
    run = Units()
    run.feed(minutes([dead, mate, other], T0, 1))
    # a worker batch: one upstream partition's half hour, then the other's (all alive)
    run.feed(minutes([other], T0 + MIN, 30) + minutes([dead, mate], T0 + MIN, 30))
    assert run.of(dead) + run.of(mate) + run.of(other) == []


def test_other_upstream_partitions_never_judge_a_units_silence() -> None:
    dead, mate, other = _cell_mates()
    run = Units()
    run.feed(minutes([dead, mate, other], T0, 1))
    run.feed(minutes([mate, other], T0 + MIN, 30))
    assert [a["state"] for a in run.of(dead)] == ["open"]  # its mate moves its clock on
    run.feed(minutes([dead, mate], T0 + 31 * MIN, 1))
    assert [a["state"] for a in run.of(dead)] == ["open", "resolved"]
    run.alerts.clear()
    run.feed(minutes([other], T0 + 32 * MIN, 6 * 60))  # hours ahead: maybe just fetched first
    assert run.of(dead) + run.of(mate) == []


def test_a_unit_alone_upstream_is_judged_when_it_comes_back() -> None:
    dead, mate, _ = _cell_mates()
    run = Units()
    run.feed(minutes([dead, mate], T0, 2))
    run.feed(minutes([dead], T0 + 40 * MIN, 1))  # back after 39 min; its mate went quiet
    events = [(a["state"], a["ts"][11:23]) for a in run.of(dead, "offline")]
    assert events == [("open", "12:04:00.001"), ("resolved", "12:40:00.000")]


def test_flush_judges_silence_up_to_the_newest_reading() -> None:
    dead, mate, other = _cell_mates()
    run = Units()
    run.feed(minutes([dead, mate, other], T0, 1) + minutes([other], T0 + MIN, 20))
    assert run.of(dead) + run.of(mate) == []
    step = run.step(partition_of(other.key, PARTITIONS))
    step.flush()
    run.take(step)
    assert [a["ts"] for a in run.of(dead) + run.of(mate)] == ["2026-11-19T12:03:00.001Z"] * 2


def test_units_never_heard_are_silent_since_the_partitions_first_reading() -> None:
    heard, _, _ = _cell_mates()
    run = Units()
    run.feed(minutes([heard], T0, 1))
    step = run.step(partition_of(heard.key, PARTITIONS))
    step.flush()
    run.take(step)
    assert run.alerts == []
    run.feed(minutes([heard], T0 + MIN, 10))
    step = run.step(partition_of(heard.key, PARTITIONS))
    step.flush()
    run.take(step)
    members = RULES.members(partition_of(heard.key, PARTITIONS), PARTITIONS)
    assert sorted(a["sensor"] for a in run.alerts) == sorted(
        u.sensor for u in members if u is not heard
    )
    assert {a["started"] for a in run.alerts} == {"2026-11-19T12:03:00.001Z"}


def test_live_clock_moves_silence_on_only_for_live_data() -> None:
    unit, _, _ = _cell_mates()
    p = partition_of(unit.key, PARTITIONS)
    old = Units(now=T0 + 30 * 24 * H)  # a replay of data a month old
    old.feed(minutes([unit], T0, 2))
    old.wall += H
    step = old.step(p)
    step.tick()
    old.take(step)
    assert old.of(unit) == []
    live = Units(now=T0 + MIN + 5_000)  # arriving seconds after measured
    live.feed(minutes([unit], T0, 2))
    live.wall = T0 + MIN + LIVE_DELAY_MS + 3 * MIN + 1
    step = live.step(p)
    step.tick()
    live.take(step)
    assert [a["kind"] for a in live.of(unit)] == ["offline"]


# -- aggregates ------------------------------------------------------------------------------
def aggregate(unit, start: int, window: str = "1h", **stats) -> bytes:
    end = start + (24 * H if window == "1d" else H)
    return AGGREGATE.encode(
        {
            "lab": unit.lab,
            "sensor": unit.sensor,
            "window": window,
            "window_start": start,
            "window_end": end,
            "version": 1,
            "stats": [
                {"quantity": q, "count": 60, "coverage": s.get("coverage", 1.0),
                 "mean": s["mean"], "min": s.get("min", s["mean"]), "max": s.get("max", s["mean"]),
                 "valid": s.get("coverage", 1.0) >= 0.75, "flags": 0, "valid_hours": 0,
                 "l10": None, "l50": None, "l90": None}
                for q, s in stats.items()
            ],
        }
    )  # fmt: skip


def _limits(records: list[tuple[object, bytes]]) -> tuple[list[dict], list[dict]]:
    state: dict = {}
    alerts, peers = [], []
    for offset, (unit, value) in enumerate(records):
        step = LimitAlerting(RULES, 0, state)
        step.handle(offset, unit.key.encode(), value, AGGREGATE.headers)
        step.handle(offset, unit.key.encode(), value, AGGREGATE.headers)  # redelivered
        for topic, _, v, _ in step.take()[0]:
            (alerts if topic.startswith("alerts.") else peers).append(json.loads(v))
    return alerts, peers


def test_hourly_limit_opens_escalates_and_resolves_on_window_ends() -> None:
    unit = LAB.units[2]
    alerts, peers = _limits(
        [(unit, aggregate(unit, T0 + i * H, o3={"mean": m})) for i, m in
         enumerate([150.0, 185.0, 250.0, 175.0, 160.0])]
    )  # fmt: skip
    got = [(a["state"], a["severity"], a["threshold"], a["ts"][11:16]) for a in alerts]
    assert got == [
        ("open", "warning", 180.0, "14:00"),
        ("update", "critical", 240.0, "15:00"),
        ("resolved", "critical", 180.0, "17:00"),  # 175 is within the 10 µg/m³ hysteresis
    ]
    assert alerts[0]["window"] == "1h" and alerts[0]["kind"] == "threshold.o3_hour"
    assert [p["means"] for p in peers] == [{"o3": m} for m in (150, 185, 250, 175, 160)]


def test_daily_limit_is_legal_by_default_and_thin_days_are_not_judged() -> None:
    unit = LAB.units[2]
    alerts, peers = _limits(
        [
            (unit, aggregate(unit, T0, "1d", pm25={"mean": 22.0})),  # WHO 15 only: no alert
            (unit, aggregate(unit, T0 + 24 * H, "1d", pm25={"mean": 40.0, "coverage": 0.5})),
            (unit, aggregate(unit, T0 + 48 * H, "1d", pm25={"mean": 31.0})),
        ]
    )
    assert [(a["kind"], a["value"], a["ts"][:10]) for a in alerts] == [
        ("threshold.pm25_day", 31.0, "2026-11-22")
    ]
    assert peers == []  # only hourly means go to the spatial check


def test_lamax_limits_judge_the_maximum() -> None:
    raw = yaml.safe_load(DEFAULT_REGISTRY.read_text())
    raw["labs"][0]["detectors"] = {
        "limits": {"threshold.noise_business_lamax_night": {"enabled": True}}
    }
    rules = Rules(parse_registry(raw, DEFAULT_REGISTRY))
    unit = rules.labs["zoetermeer"].units[0]
    step = LimitAlerting(rules, 0, {})
    value = aggregate(unit, T0, "lnight", lamax={"mean": 55.0, "max": 72.0})
    step.handle(0, unit.key.encode(), value, AGGREGATE.headers)
    [(_, _, alert, _)] = step.take()[0]
    assert json.loads(alert)["value"] == 72.0


# -- the lab step -----------------------------------------------------------------------------
def _lab(records: list[dict | None], now: int = 0) -> tuple[list[dict], dict]:
    """Records on `alerting.peers` in order (None: the end-of-input marker)."""
    state: dict = {}
    alerts = []
    partition = partition_of("zoetermeer", PARTITIONS)
    for offset, record in enumerate(records):
        step = LabAlerting(RULES, partition, PARTITIONS, state, now=lambda: now)
        if record is None:
            step.handle(offset, CONTROL_KEY, END_OF_INPUT, None)
        else:
            value = json.dumps(record).encode()
            step.handle(offset, b"zoetermeer", value, None)
            step.handle(offset, b"zoetermeer", value, None)  # redelivered
        alerts += [json.loads(v) for _, _, v, _ in step.take()[0]]
    return alerts, state["zoetermeer"]


def hourly(sensor: str, hour: int, pm25: float) -> dict:
    start = T0 + hour * H
    return {"type": "hourly", "sensor": sensor, "start": start, "end": start + H,
            "means": {"pm25": pm25}}  # fmt: skip


SENSORS = [u.sensor for u in LAB.units]


def test_spatial_outlier_after_six_outlying_hours_in_a_row() -> None:
    records = []
    for hour in range(8):
        records += [hourly(s, hour, 10.0 + i % 3) for i, s in enumerate(SENSORS[1:])]
        records.append(hourly(SENSORS[0], hour, 50.0 if hour >= 1 else 12.0))
    alerts, _ = _lab(records)
    assert [(a["sensor"], a["state"], a["ts"][11:16]) for a in alerts] == [
        (SENSORS[0], "open", "19:00")  # outlying hours 13-14 .. 18-19 UTC
    ]
    assert alerts[0]["reference"] == 11.0 and alerts[0]["threshold"] == 33.0


def test_an_hour_waits_until_every_unit_is_past_it() -> None:
    first = [hourly(s, 0, 10.0) for s in SENSORS[:-1]]
    _, state = _lab(first)
    assert list(state["h"]) == [str(T0)]  # the last unit may still report it
    _, state = _lab([*first, hourly(SENSORS[-1], 1, 10.0)])  # it has nothing for hour 0
    assert list(state["h"]) == [str(T0 + H)]
    sp = state["sp"]["pm25"]["history"]
    assert set(sp) == set(SENSORS[:-1])  # hour 0 judged without it


def test_a_unit_that_never_reports_holds_its_lab_until_the_end_of_input() -> None:
    records = [hourly(s, h, 10.0) for h in range(3) for s in SENSORS[:-1]]
    _, state = _lab(records)
    assert len(state["h"]) == 3
    _, state = _lab([*records, None])
    assert state["h"] == {}


def test_live_clock_judges_what_a_dead_unit_holds_up() -> None:
    records = [hourly(s, 0, 10.0) for s in SENSORS[:-1]]
    live = T0 + H + 16 * MIN  # the hour's data arrived as it closed
    _, state = _lab(records + [{"type": "progress", "sensor": SENSORS[0], "ts": live}], now=live)
    assert len(state["h"]) == 1
    step = LabAlerting(RULES, partition_of("zoetermeer", PARTITIONS), PARTITIONS,
                       {"zoetermeer": state}, now=lambda: live + 10 * MIN)  # fmt: skip
    step.tick()
    assert state["h"] == {}


def humid(sensor: str, minute: int, on: bool = True) -> dict:
    return {"type": "humid", "sensor": sensor, "ts": T0 + minute * MIN, "humid": on,
            "value": 99.3 if on else 94.0}  # fmt: skip


def progress(minute: int) -> list[dict]:
    return [{"type": "progress", "sensor": s, "ts": T0 + minute * MIN} for s in SENSORS]


def test_fog_alerts_the_humid_units_once_half_the_lab_is_humid() -> None:
    changes = [humid(s, i) for i, s in enumerate(SENSORS[:6])] + [humid(SENSORS[2], 9, False)]
    alerts, _ = _lab(changes + progress(10))
    opened = [(a["sensor"], a["ts"][11:16]) for a in alerts if a["state"] == "open"]
    assert opened == [(s, "12:04") for s in SENSORS[:5]] + [(SENSORS[5], "12:05")]
    resolved = [a["sensor"] for a in alerts if a["state"] == "resolved"]
    assert resolved == [SENSORS[2]]  # 5 of 10 are still humid: the others stay open
    assert alerts[0]["kind"] == "humidity_pm" and alerts[0]["severity"] == "info"


def test_fog_is_judged_in_event_time_whatever_order_units_arrive_in() -> None:
    in_order = [humid(s, i) for i, s in enumerate(SENSORS[:6])] + [humid(SENSORS[2], 9, False)]
    # upstream partitions read hours apart: half the lab's records come much later
    late = [r for r in in_order if r["sensor"] in SENSORS[::2]]
    early = [r for r in in_order if r not in late]
    far = [{"type": "progress", "sensor": s, "ts": T0 + 5 * H} for s in SENSORS[1::2]]
    skewed, _ = _lab(early + far + late + progress(10))
    expected, _ = _lab(in_order + progress(10))
    assert skewed == expected and len(expected) == 7
