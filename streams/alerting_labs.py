"""Lab-wide judgements on one partition of `alerting.peers` (keyed by lab), pure.

Two rules need all of a lab's units at once:

- spatial outliers: a unit's hourly mean against the median of the lab's others.
  An hour is judged once every unit reported it, or once a unit reported two hours
  later (a dead unit must not hold the lab up); hours are judged in order, so the
  persistence history stays in time order; a straggler for a judged hour is ignored.
- fog: units' humid triggers (from streams/alerting_units.py) against the quorum.

State: per lab, the last input offset applied, hours waiting to be judged, the
spatial and fog states, and episodes per sensor.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from livinglab.codec.payload import UNITS
from livinglab.registry import Lab
from streams.alerting_rules import Changed, Output, Rules, alert_output, track_into
from streams.detectors import FogState, SpatialState, detect_fog, detect_spatial

HOUR_MS = 3_600_000
WAIT_FOR_LATER_MS = 2 * HOUR_MS  # judge an hour without stragglers this much later


@dataclass
class LabAlerting:
    rules: Rules
    partition: int
    labs: MutableMapping[str, dict[str, Any]]
    outputs: list[Output] = field(default_factory=list)
    dirty: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)

    def handle(self, offset: int, key: bytes | None, value: bytes, headers: list | None) -> None:
        lab = self.rules.labs.get((key or b"").decode("utf-8", "replace"))
        try:
            record = json.loads(value)
        except ValueError:
            record = None
        if lab is None or not isinstance(record, dict):
            self.counts["ignored"] = self.counts.get("ignored", 0) + 1
            return
        # o: last offset; h: hours waiting {start: {sensor: means}}; j: last hour judged;
        # sp: spatial state per quantity; fog: fog state; e: {sensor: episodes}
        entry = self.labs.setdefault(
            lab.id, {"o": -1, "h": {}, "j": None, "sp": {}, "fog": {}, "e": {}}
        )
        if offset <= entry["o"]:
            return
        entry["o"] = offset
        self.dirty.add(lab.id)
        if record.get("type") == "hourly":
            self._hourly(lab, entry, record)
        elif record.get("type") == "humid":
            self._humid(lab, entry, record)

    def end_batch(self) -> None:
        """Records are judged as they come; nothing waits for the batch end."""

    def take(self) -> tuple[list[Output], list[Changed]]:
        """Outputs to produce, and the state entries (mapping, key) to write back."""
        changed: list[Changed] = [(self.labs, key) for key in self.dirty]
        outputs, self.outputs, self.dirty = self.outputs, [], set()
        return outputs, changed

    # -- spatial -------------------------------------------------------------------------
    def _hourly(self, lab: Lab, entry: dict[str, Any], record: dict[str, Any]) -> None:
        start = int(record["start"])
        if entry["j"] is not None and start <= entry["j"]:
            return  # its hour was judged without it
        entry["h"].setdefault(str(start), {})[record["sensor"]] = record["means"]
        newest = max(int(s) for s in entry["h"])
        for hour in sorted(int(s) for s in entry["h"]):
            reported = entry["h"][str(hour)]
            if len(reported) < len(lab.units) and newest < hour + WAIT_FOR_LATER_MS:
                break
            del entry["h"][str(hour)]
            entry["j"] = hour
            self._judge_hour(lab, entry, hour + HOUR_MS, reported)

    def _judge_hour(
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

    # -- fog -----------------------------------------------------------------------------
    def _humid(self, lab: Lab, entry: dict[str, Any], record: dict[str, Any]) -> None:
        d = lab.detectors
        conds, state = detect_fog(
            d.fog,
            FogState.from_dict(entry["fog"]),
            d.humidity_pm,
            len(lab.units),
            record["sensor"],
            int(record["ts"]),
            bool(record["humid"]),
            float(record["value"]),
        )
        entry["fog"] = state.to_dict()
        for sensor, c in conds.items():
            self._track(lab, entry, sensor, c)

    def _track(self, lab: Lab, entry: dict[str, Any], sensor: str, conds: Any) -> None:
        episodes = entry["e"].setdefault(sensor, {})
        self.outputs.extend(
            map(alert_output, track_into(self.rules.policy, episodes, lab.id, sensor, [conds]))
        )
        if not episodes:
            del entry["e"][sensor]
