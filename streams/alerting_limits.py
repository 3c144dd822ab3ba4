"""Limit exceedances on one partition of `aggregates`, independent of the runtime.

Each aggregate is judged against the lab's limits defined on its window kind
(streams/detectors/thresholds.py: ``1h`` today; daily, running and period windows
are judged as soon as `aggregates` carries them, with no change here). Hourly means
of the quantities the lab compares across units also go to the lab step
(streams/alerting_labs.py) for the spatial check.

State: per unit, the last input offset applied and the limit episodes.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from livinglab.codec.payload import UNITS
from schemas import SchemaMismatch, codec
from streams.alerting_rules import Changed, Output, Rules, alert_output, peer_output, track_into
from streams.detectors import check_aggregate
from streams.detectors.thresholds import MIN_COVERAGE

_AGGREGATE = codec("aggregate")
SPATIAL_WINDOW = "1h"
# The statistic a limit on a quantity is about: LAmax limits are on the maximum.
STATISTIC = {"lamax": "max", "lamin": "min"}


@dataclass
class LimitAlerting:
    rules: Rules
    partition: int
    units: MutableMapping[str, dict[str, Any]]
    outputs: list[Output] = field(default_factory=list)
    dirty: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)

    def handle(self, offset: int, key: bytes | None, value: bytes, headers: list | None) -> None:
        unit = self.rules.unit(key)
        if unit is None:
            self.counts["unknown_key"] = self.counts.get("unknown_key", 0) + 1
            return
        try:
            agg = _AGGREGATE.decode(value, headers)
        except (SchemaMismatch, ValueError, EOFError, TypeError, IndexError):
            self.counts["undecodable"] = self.counts.get("undecodable", 0) + 1
            return
        # o: last offset applied; e: episodes by kind:quantity
        entry = self.units.setdefault(unit.key, {"o": -1, "e": {}})
        if offset <= entry["o"]:
            return
        entry["o"] = offset
        self.dirty.add(unit.key)
        detectors = self.rules.labs[unit.lab].detectors
        limits = list(detectors.limits.values())
        window, end = agg["window"], agg["window_end"]
        conds = []
        for s in agg["stats"]:
            q = s["quantity"]
            value = s[STATISTIC.get(q, "mean")]
            conds += check_aggregate(limits, window, q, UNITS.get(q, ""), end, value, s["coverage"])
        alerts = track_into(self.rules.policy, entry["e"], unit.lab, unit.sensor, conds)
        self.outputs.extend(map(alert_output, alerts))
        if window == SPATIAL_WINDOW:
            means = {
                s["quantity"]: s["mean"]
                for s in agg["stats"]
                if s["quantity"] in detectors.spatial and s["coverage"] >= MIN_COVERAGE
            }
            record = {"type": "hourly", "sensor": unit.sensor, "start": agg["window_start"],
                      "end": end, "means": means}  # fmt: skip
            self.outputs.append(peer_output(unit.lab, record))

    def end_batch(self) -> None:
        """Aggregates are judged as they come; nothing waits for the batch end."""

    def take(self) -> tuple[list[Output], list[Changed]]:
        """Outputs to produce, and the state entries (mapping, key) to write back."""
        changed: list[Changed] = [(self.units, key) for key in self.dirty]
        outputs, self.outputs, self.dirty = self.outputs, [], set()
        return outputs, changed
