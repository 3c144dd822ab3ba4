"""The stream path in one process, without Kafka: to evaluate detector settings quickly.

Runs the real steps (LNS normalisation, streams/processor.py, the three alerting
steps) over LNS messages, with Kafka's part emulated: keys partitioned by murmur2,
records handled in batches per partition, offsets, the end-of-input marker. A week
of the sample fleet takes minutes this way instead of a broker and a store. It is a
harness, not a runtime: nothing is durable and nothing runs in parallel.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from itertools import islice
from typing import Any

from connectors.lns import IngressError, normalise
from livinglab.kafka import AGGREGATES, ALERTS_PREFIX, PEERS, READINGS, UPLINKS
from livinglab.registry import Registry
from schemas import codec
from streams.alerting_labs import LabAlerting
from streams.alerting_limits import LimitAlerting
from streams.alerting_rules import Rules, partition_of
from streams.alerting_units import UnitAlerting
from streams.processor import CONTROL_KEY, END_OF_INPUT, PartitionProcessor

_UPLINK = codec("uplink")
Record = tuple[int, bytes | None, bytes, list | None]  # offset, key, value, headers


class LocalStreams:
    """Feed LNS messages; alert records collect in ``alerts`` (as published, decoded)."""

    def __init__(
        self, registry: Registry, partitions: int = 4, lateness_ms: int = 900_000, batch: int = 2000
    ) -> None:
        self.registry, self.partitions, self.batch = registry, partitions, batch
        self.lateness_ms = lateness_ms
        self.rules = Rules(registry)
        self.devices: dict[str, Any] = {}
        self.meta: dict[str, Any] = {}
        self.units: dict[str, Any] = {}
        self.clocks: dict[str, Any] = {}
        self.limits: dict[str, Any] = {}
        self.labs: dict[str, Any] = {}
        self.queues: dict[tuple[str, int], list[Record]] = defaultdict(list)
        self.offsets: dict[tuple[str, int], int] = defaultdict(int)
        self.alerts: list[dict[str, Any]] = []
        self.readings_seen = 0

    def feed(self, bodies: Iterable[bytes]) -> None:
        """LNS JSON messages in delivery order; processed a batch at a time."""
        it = iter(bodies)
        while chunk := list(islice(it, self.batch)):
            for body in chunk:
                try:
                    uplink = normalise(body)
                except IngressError:
                    continue
                key = uplink["dev_eui"].encode()
                self._append(UPLINKS, key, _UPLINK.encode(uplink), _UPLINK.headers)
            self._drain()

    def end(self) -> None:
        """End of input, as demo and replay mark it: every window closes; once every
        reading is in, silence is judged up to the newest (`alerting.control`), and the
        lab step judges what waits for units that never came back."""
        for p in range(self.partitions):
            self._append(UPLINKS, CONTROL_KEY, END_OF_INPUT, None, p)
        self._drain()
        for p in range(self.partitions):
            step = self._units(p)
            step.flush()
            self._route(step)
        self._drain()
        for p in range(self.partitions):  # and the marker on `alerting.peers`
            self._append(PEERS, CONTROL_KEY, END_OF_INPUT, None, p)
        self._drain()

    # -- plumbing ------------------------------------------------------------------------
    def _append(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        headers: list | None,
        partition: int | None = None,
    ) -> None:
        if partition is None:
            partition = partition_of(key.decode(), self.partitions)
        tp = (topic, partition)
        self.queues[tp].append((self.offsets[tp], key, value, headers))
        self.offsets[tp] += 1

    def _drain(self) -> None:
        """Run every step on its queued records until nothing is left, upstream first."""
        for topic in (UPLINKS, READINGS, AGGREGATES, PEERS):
            for p in range(self.partitions):
                records = self.queues.pop((topic, p), [])
                if records:
                    self._step(topic, p, records)

    def _step(self, topic: str, p: int, records: list[Record]) -> None:
        if topic == UPLINKS:
            lateness = self.lateness_ms
            step: Any = PartitionProcessor(self.registry, p, self.devices, self.meta, lateness)
        elif topic == READINGS:
            self.readings_seen += len(records)
            step = self._units(p)
        elif topic == AGGREGATES:
            step = LimitAlerting(self.rules, p, self.limits)
        else:
            step = LabAlerting(self.rules, p, self.partitions, self.labs, self.lateness_ms)
        for record in records:
            step.handle(*record)
        step.end_batch()
        self._route(step)

    def _units(self, p: int) -> UnitAlerting:
        return UnitAlerting(
            self.rules, p, self.partitions, self.units, self.clocks, self.lateness_ms
        )

    def _route(self, step: Any) -> None:
        for topic, key, value, headers in step.take()[0]:
            if topic.startswith(ALERTS_PREFIX):
                self.alerts.append(json.loads(value))
            elif topic in (READINGS, AGGREGATES, PEERS):
                self._append(topic, key, value, headers)
