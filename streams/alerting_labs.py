"""Lab-wide judgements on one partition of `alerting.peers` (keyed by lab), pure.

Two rules need all of a lab's units at once, and a lab's units reach this topic
through different partitions upstream, which a stream worker may read hours apart.
So both are judged in event time, once every unit of the lab is known to be past the
moment judged; each unit's records arrive here in order, so its latest one tells how
far it is:

- spatial outliers: a unit's hourly mean against the median of the lab's others. An
  hour is judged once every unit reported it or a later hour (a unit that reports a
  later hour has nothing for this one), in order, so the persistence history is in
  time order.
- fog: units' humid triggers (from streams/alerting_units.py, which also reports each
  unit's progress) against the quorum, applied in time order up to the moment every
  unit has reached.

A dead unit would hold its lab up: at the end of a replay (a marker on this topic,
``flush``) everything waiting is judged, and in live operation the wall clock moves
every unit on (``tick``). State: per lab, the last input offset applied, units'
progress, hours and fog changes waiting, the spatial and fog states, and episodes per
sensor.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from livinglab.codec.payload import UNITS
from livinglab.registry import Lab
from streams.alerting_rules import Changed, Output, Rules, alert_output, partition_of, track_into
from streams.alerting_units import LIVE_DELAY_MS, LIVE_SLACK_MS, wall_ms
from streams.detectors import FogState, SpatialState, detect_fog, detect_spatial
from streams.processor import CONTROL_KEY

HOUR_MS = 3_600_000
NEVER = math.inf


@dataclass
class LabAlerting:
    rules: Rules
    partition: int
    partitions: int
    labs: MutableMapping[str, dict[str, Any]]
    lateness_ms: int = 900_000
    now: Callable[[], int] = wall_ms
    outputs: list[Output] = field(default_factory=list)
    dirty: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)

    def handle(self, offset: int, key: bytes | None, value: bytes, headers: list | None) -> None:
        if key == CONTROL_KEY:
            self.flush()
            return
        lab = self.rules.labs.get((key or b"").decode("utf-8", "replace"))
        try:
            record = json.loads(value)
        except ValueError:
            record = None
        if lab is None or not isinstance(record, dict):
            self.counts["ignored"] = self.counts.get("ignored", 0) + 1
            return
        entry = self._entry(lab)
        if offset <= entry["o"]:
            return
        entry["o"] = offset
        kind, sensor = record.get("type"), record.get("sensor")
        if kind == "hourly":
            entry["h"].setdefault(str(record["start"]), {})[sensor] = record["means"]
            _advance(entry["hp"], sensor, int(record["start"]))
        elif kind == "humid":
            bisect.insort(entry["f"], [int(record["ts"]), sensor, record["humid"], record["value"]])
            _advance(entry["fp"], sensor, int(record["ts"]))
        elif kind == "progress":
            _advance(entry["fp"], sensor, int(record["ts"]))
        self.dirty.add(lab.id)
        self._judge(lab, entry)
        entry["w"] = self.now()

    def end_batch(self) -> None:
        """Records are judged as they come; nothing waits for the batch end."""

    def flush(self) -> None:
        """The input is complete (a replay ended): judge everything waiting."""
        for lab in self._mine():
            if lab.id in self.labs:
                self.dirty.add(lab.id)
                self._judge(lab, self.labs[lab.id], NEVER)

    def tick(self) -> None:
        """Live operation: units not heard from are taken to be where the wall clock is."""
        now = self.now()
        for lab in self._mine():
            entry = self.labs.get(lab.id)
            newest = max(entry["fp"].values(), default=None) if entry else None
            if newest is None or newest < entry["w"] - LIVE_SLACK_MS:
                continue  # not live: a replay of old data judges as its data arrives
            self.dirty.add(lab.id)
            self._judge(lab, entry, now - LIVE_DELAY_MS)

    def take(self) -> tuple[list[Output], list[Changed]]:
        """Outputs to produce, and the state entries (mapping, key) to write back."""
        changed: list[Changed] = [(self.labs, key) for key in self.dirty]
        outputs, self.outputs, self.dirty = self.outputs, [], set()
        return outputs, changed

    # -- judging ---------------------------------------------------------------------------
    def _judge(self, lab: Lab, entry: dict[str, Any], now: float = -NEVER) -> None:
        """Judge, in time order, whatever every unit of the lab is past; units are at least
        at event time ``now`` (an hour's mean comes once the hour and its lateness are)."""
        units = [u.sensor for u in lab.units]
        hour_floor = now - HOUR_MS - self.lateness_ms
        hours_done = min(max(entry["hp"].get(s, -NEVER), hour_floor) for s in units)
        for hour in sorted(int(s) for s in entry["h"]):
            if hour > hours_done:
                break
            self._spatial(lab, entry, hour + HOUR_MS, entry["h"].pop(str(hour)))
        fog_done = min(max(entry["fp"].get(s, -NEVER), now) for s in units)
        while entry["f"] and entry["f"][0][0] <= fog_done:
            self._fog(lab, entry, *entry["f"].pop(0))

    def _spatial(
        self, lab: Lab, entry: dict[str, Any], end: int, reported: dict[str, dict[str, float]]
    ) -> None:
        for q, cfg in lab.detectors.spatial.items():
            values = {s: means[q] for s, means in reported.items() if q in means}
            if not values:
                continue
            state = SpatialState.from_dict(entry["sp"].get(q, {}))
            conds, state = detect_spatial(cfg, state, q, UNITS.get(q, ""), end, values)
            entry["sp"][q] = state.to_dict()
            for sensor, c in conds.items():
                self._track(lab, entry, sensor, c)

    def _fog(
        self, lab: Lab, entry: dict[str, Any], ts: int, sensor: str, humid: bool, value: float
    ) -> None:
        d = lab.detectors
        state = FogState.from_dict(entry["fog"])
        conds, state = detect_fog(
            d.fog, state, d.humidity_pm, len(lab.units), sensor, ts, humid, value
        )
        entry["fog"] = state.to_dict()
        for s, c in conds.items():
            self._track(lab, entry, s, c)

    def _track(self, lab: Lab, entry: dict[str, Any], sensor: str, conds: Any) -> None:
        episodes = entry["e"].setdefault(sensor, {})
        self.outputs.extend(
            map(alert_output, track_into(self.rules.policy, episodes, lab.id, sensor, [conds]))
        )
        if not episodes:
            del entry["e"][sensor]

    # -- helpers ---------------------------------------------------------------------------
    def _entry(self, lab: Lab) -> dict[str, Any]:
        # o: last offset; h: hours waiting {start: {sensor: means}}; hp: newest hour per
        # unit; f: fog changes waiting [ts, sensor, humid, value]; fp: newest event time
        # per unit; sp: spatial state per quantity; fog: fog state; e: {sensor: episodes};
        # w: wall-clock time of the last record
        return self.labs.setdefault(
            lab.id,
            {"o": -1, "h": {}, "hp": {}, "f": [], "fp": {}, "sp": {}, "fog": {}, "e": {}, "w": 0},
        )

    def _mine(self) -> list[Lab]:
        return [
            lab
            for lab in self.rules.labs.values()
            if partition_of(lab.id, self.partitions) == self.partition
        ]


def _advance(progress: dict[str, int], sensor: str, ts: int) -> None:
    if ts > progress.get(sensor, -NEVER):
        progress[sensor] = ts
