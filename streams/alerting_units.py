"""Per-unit alerting on one partition of `readings`, independent of the runtime.

Each unit's first-accepted readings (uplink_version 1) run through its lab's
detectors (streams/detectors/unit.py) and the alert lifecycle. Fog is a lab matter:
each unit's debounced humid trigger goes to the lab step (streams/alerting_labs.py)
instead of becoming an alert, and so does, every few minutes, how far the unit is.

Silence has no readings, so `offline` needs a clock. It is event time, so a replay
raises the alerts the live stream did: per unit, the newest reading of the units that
share its `lorawan.uplinks` partition. One stream worker handles those in order, so
their readings arrive here in order; readings of different upstream partitions can
arrive hours apart (a consumer fetches partitions unevenly), so they never judge each
other. A unit's silence is judged once its clock is ``lateness_ms`` past the limit, so
a frame that arrives late (all its gateway copies delayed) is not mistaken for silence;
the alert is stamped with the moment the silence crossed the limit. A unit
alone in its upstream partition is judged when the input is known complete (``flush``:
demo and replay mark it) and, in live operation, by the wall clock (``tick``). A unit
never heard is silent since the partition's first reading.

State is one entry per unit (``units``, a Faust table in the worker) with the last
input offset applied, so a redelivered record changes nothing; the clocks live in
``clocks``, one entry per partition.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from livinglab.codec.payload import STATUS_BITS
from livinglab.registry import Unit
from schemas import SchemaMismatch, codec
from streams.alerting_rules import (
    Changed,
    Output,
    Rules,
    alert_output,
    is_open,
    partition_of,
    peer_output,
    track_into,
)
from streams.alerts import LifecycleConfig, episode_key
from streams.detectors import OfflineState, Severity, UnitState, check_offline, detect_unit

_READING = codec("reading")
REBOOT = STATUS_BITS["reboot"]
FOG_TRIGGER = LifecycleConfig(min_samples=2, clear_samples=2)  # two readings each way
PROGRESS_MS = 5 * 60 * 1000  # tell the lab step how far a unit is, this often
LIVE_SLACK_MS = 15 * 60 * 1000  # data this close to the wall clock on arrival is live
LIVE_DELAY_MS = 30_000  # how far behind the wall clock live readings may arrive
NEVER = math.inf


def wall_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class UnitAlerting:
    rules: Rules
    partition: int
    partitions: int
    units: MutableMapping[str, dict[str, Any]]
    clocks: MutableMapping[str, dict[str, Any]]
    lateness_ms: int = 900_000
    now: Callable[[], int] = wall_ms
    outputs: list[Output] = field(default_factory=list)
    dirty: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # in: newest event time per upstream (uplinks) partition; first: the first event
        # time seen; w: wall-clock time when the newest moved
        self._clock = self.clocks.setdefault(
            str(self.partition), {"in": {}, "first": None, "w": None}
        )
        self._cells: dict[str, list[Unit]] = {}  # members by upstream partition
        for unit in self.rules.members(self.partition, self.partitions):
            self._cells.setdefault(self._source(unit), []).append(unit)
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._next_due: dict[str, float] = {}  # per cell: no judgement can change before
        self.clock_moved = False

    # -- input ---------------------------------------------------------------------------
    def handle(self, offset: int, key: bytes | None, value: bytes, headers: list | None) -> None:
        """One `readings` record; redeliveries are recognised by offset."""
        unit = self.rules.unit(key)
        if unit is None:
            self._count("unknown_key")
            return
        try:
            reading = _READING.decode(value, headers)
        except (SchemaMismatch, ValueError, EOFError, TypeError, IndexError):
            self._count("undecodable")  # the sink dead-letters it
            return
        if reading["uplink_version"] != 1:
            return  # a late gateway copy: same measurements
        entry = self._entry(unit)
        if offset <= entry["o"]:
            self._count("redelivered")
            return
        entry["o"] = offset
        self.dirty.add(unit.key)
        self._pending.setdefault(unit.key, []).append(reading)
        ts = reading["ts"]
        self._advance(unit, ts)  # first: the silence this reading ends may be due
        offline = entry["d"].setdefault("offline", {})
        if ts > (offline.get("last_seen") or -NEVER):
            offline["last_seen"] = ts
        if is_open(entry["e"], "offline", None):
            self._judge_offline(unit, entry, max(ts, self._clock["in"][self._source(unit)]))

    def end_batch(self) -> None:
        """Judge the batch's readings per unit, in event-time order."""
        for key, readings in self._pending.items():
            unit = self.rules.unit(key)
            assert unit is not None
            self._detect(unit, self.units[key], readings)
        self._pending.clear()

    def tick(self) -> None:
        """Live operation: judge silence by the wall clock too, between readings.

        Only when the partition's data was live when it last arrived; a replay of old
        data keeps its event-time clocks, so it alerts as it did then.
        """
        newest, w = self._newest(), self._clock["w"]
        if newest is None or newest < w - LIVE_SLACK_MS:
            return
        self._scan_all(self.now() - LIVE_DELAY_MS)

    def flush(self) -> None:
        """Every reading up to the partition's newest has arrived (a replay ended): judge
        every unit's silence up to it, also where no other unit moved the clock on."""
        newest = self._newest()
        if newest is not None:
            self._scan_all(newest)

    def take(self) -> tuple[list[Output], list[Changed]]:
        """Outputs to produce, and the state entries (mapping, key) to write back."""
        changed: list[Changed] = [(self.units, key) for key in self.dirty]
        if self.clock_moved:
            changed.append((self.clocks, str(self.partition)))
        outputs, self.outputs, self.dirty, self.clock_moved = self.outputs, [], set(), False
        return outputs, changed

    # -- per-unit detectors --------------------------------------------------------------
    def _detect(self, unit: Unit, entry: dict[str, Any], readings: list[dict[str, Any]]) -> None:
        readings.sort(key=lambda r: r["ts"])
        newest = entry["t"]
        if newest is not None:  # older than what was judged: detectors need time order
            readings = [r for r in readings if r["ts"] > newest]
        if not readings:
            return
        lab = self.rules.labs[unit.lab]
        ts = np.fromiter((r["ts"] for r in readings), dtype=np.int64, count=len(readings))
        # Faults show in what the sensor measured: raw values, before any calibration.
        quantities = {q for r in readings for q in r["raw_values"]}
        values = {
            q: np.fromiter((r["raw_values"].get(q, np.nan) for r in readings), float, len(readings))
            for q in quantities
        }
        sessions = [entry["s"] if entry["s"] is not None else readings[0]["session"]]
        sessions += [r["session"] for r in readings]
        reboot = np.array(
            [bool(r["status"] & REBOOT) or s != r["session"] for r, s in zip(readings, sessions)]
        )
        episodes = entry["e"]
        conds, state = detect_unit(
            lab.detectors,
            UnitState.from_dict(entry["d"]),
            ts,
            values,
            reboot,
            lab.timezone,
            needed=lambda kind, quantity: episode_key(kind, quantity) in episodes,
        )
        entry["d"], entry["t"], entry["s"] = state.to_dict(), int(ts[-1]), readings[-1]["session"]
        fog = lab.detectors.humidity_pm.kind
        own = [c for c in conds if c.kind != fog]
        alerts = track_into(self.rules.policy, entry["e"], unit.lab, unit.sensor, own)
        self.outputs.extend(map(alert_output, alerts))
        humid = [c for c in conds if c.kind == fog]
        triggers = track_into({"default": FOG_TRIGGER}, entry["e"], unit.lab, unit.sensor, humid)
        for t in triggers:
            record = {"type": "humid", "sensor": unit.sensor, "ts": t.ts,
                      "humid": t.state.value != "resolved", "value": t.value}  # fmt: skip
            self.outputs.append(peer_output(unit.lab, record))
        if entry["t"] >= (entry.get("p") or -NEVER) + PROGRESS_MS:  # how far the unit is
            entry["p"] = entry["t"]
            record = {"type": "progress", "sensor": unit.sensor, "ts": entry["t"]}
            self.outputs.append(peer_output(unit.lab, record))

    # -- offline -------------------------------------------------------------------------
    def _advance(self, unit: Unit, ts: int) -> None:
        inputs, source = self._clock["in"], self._source(unit)
        if ts <= inputs.get(source, -NEVER):
            return
        if self._clock["first"] is None:
            self._clock["first"] = ts
        if ts > (self._newest() or -NEVER):
            self._clock["w"] = self.now()
        inputs[source] = ts
        self.clock_moved = True
        self._scan(source)

    def _source(self, unit: Unit) -> str:
        return str(partition_of(unit.dev_eui, self.partitions))

    def _newest(self) -> int | None:
        return max(self._clock["in"].values(), default=None)

    def _scan_all(self, floor: float) -> None:
        """Judge every member's silence up to its clock, at least ``floor``."""
        for source in self._cells:
            self._scan(source, floor)

    def _scan(self, source: str, floor: float = -NEVER) -> None:
        """Judge the silence of the units of one upstream partition up to their clock.

        Dues only move later as units report, so the earliest one found last time
        tells when the next judgement can change anything.
        """
        units = self._cells.get(source, [])
        clock = max(self._clock["in"].get(source, -NEVER) - self.lateness_ms, floor)
        if not units or clock < self._next_due.get(source, -NEVER):
            return
        next_due = NEVER
        for unit in units:
            entry = self._entry(unit)
            due = self._due(unit, entry)
            while due <= clock:
                self._judge_offline(unit, entry, int(due))
                due = self._due(unit, entry)
            next_due = min(next_due, due)
        self._next_due[source] = next_due

    def _due(self, unit: Unit, entry: dict[str, Any]) -> float:
        """Earliest clock time at which judging silence can change the unit's alert."""
        last = entry["d"]["offline"].get("last_seen")
        if last is None:
            return NEVER
        tiers = self.rules.offline(unit)[1]
        episode = entry["e"].get("offline:")
        if episode is None or episode.get("alert_id") is None:
            return last + tiers[0] + 1
        if episode["severity"] < int(Severity.CRITICAL) and len(tiers) > 1:
            return last + tiers[1] + 1
        return NEVER

    def _judge_offline(self, unit: Unit, entry: dict[str, Any], now: int) -> None:
        state = OfflineState.from_dict(entry["d"]["offline"])
        conds = check_offline(self.rules.offline(unit)[0], state, now)
        alerts = track_into(self.rules.policy, entry["e"], unit.lab, unit.sensor, [conds])
        self.outputs.extend(map(alert_output, alerts))
        self.dirty.add(unit.key)

    # -- helpers -------------------------------------------------------------------------
    def _entry(self, unit: Unit) -> dict[str, Any]:
        """The unit's state; a unit never heard is silent since the partition's first reading."""
        entry = self.units.get(unit.key)
        if entry is None:
            # o: last offset applied; t: newest reading judged; s: its session;
            # d: detector state (UnitState); e: episodes by kind:quantity; p: the
            # progress last reported to the lab step
            entry = {"o": -1, "t": None, "s": None, "d": {"offline": {}}, "e": {}}
            self.units[unit.key] = entry
            self.dirty.add(unit.key)
        offline = entry["d"].setdefault("offline", {})
        if offline.get("last_seen") is None and self._clock["first"] is not None:
            offline["last_seen"] = self._clock["first"]
            self.dirty.add(unit.key)
        return entry

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1
