"""The alerting agents of the stream worker (Faust), installed next to the uplink agent.

Thin adapters like streams/app.py: each agent hands its batches per partition to a
step that knows nothing of Kafka (streams/alerting_units.py on `readings`,
alerting_limits.py on `aggregates`, alerting_labs.py on `alerting.peers`), produces
the step's outputs with the worker's librdkafka producer, flushes them, and only then
writes the changed state entries (with the input offsets they applied) to their
changelogs, so a commit never runs ahead of what was written. A timer judges silence
by the wall clock in live operation; a marker on `alerting.control` (sent by demo and
replay once every reading is in) judges it up to the newest reading.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, MutableMapping
from typing import Any, Protocol

import faust

from livinglab.config import Settings
from livinglab.kafka import AGGREGATES, ALERTING_CONTROL, PEERS, READINGS, produce
from livinglab.registry import Registry
from streams.alerting_labs import LabAlerting
from streams.alerting_limits import LimitAlerting
from streams.alerting_rules import Changed, Output, Rules
from streams.alerting_units import UnitAlerting

BATCH = 10_000
BATCH_WITHIN_S = 2.0  # alerts are about minutes; larger batches cost less per reading
TICK_S = 10.0

log = logging.getLogger("livinglab.alerting")


class Step(Protocol):
    def handle(self, offset: int, key: bytes | None, value: bytes, headers: list | None) -> None:
        """One input record."""

    def end_batch(self) -> None:
        """The batch is complete."""

    def take(self) -> tuple[list[Output], list[Changed]]:
        """Outputs, and the state entries to write back."""


def install(app: faust.App, settings: Settings, registry: Registry, producer: Any) -> None:
    """Add the alerting tables, agents and the live clock to the worker's app."""
    rules = Rules(registry)
    tables = {
        name: app.Table(name, default=None)
        for name in ("alert_units", "alert_clocks", "alert_limits", "alert_labs")
    }
    data = {name: t.data for name, t in tables.items()}

    def units(p: int) -> UnitAlerting:
        return UnitAlerting(
            rules,
            p,
            settings.partitions,
            data["alert_units"],
            data["alert_clocks"],
            settings.lateness_s * 1000,
        )

    writer = _Writer(producer, {id(t.data): t for t in tables.values()})
    _agent(app, READINGS, units, writer)
    _agent(app, AGGREGATES, lambda p: LimitAlerting(rules, p, data["alert_limits"]), writer)

    def labs(p: int) -> LabAlerting:
        return LabAlerting(
            rules, p, settings.partitions, data["alert_labs"], settings.lateness_s * 1000
        )

    _agent(app, PEERS, labs, writer)
    _agent(app, ALERTING_CONTROL, lambda p: _Flush(units(p)), writer)

    @app.timer(TICK_S, name="alerting-clock")
    async def live_clock() -> None:
        if app.rebalancing:
            return
        steps: list[tuple[int, Step]] = []
        for tp in app.assignor.assigned_actives():
            step = {READINGS: units, PEERS: labs}.get(tp.topic)
            if step is not None:
                steps.append((tp.partition, step(tp.partition)))
                steps[-1][1].tick()  # type: ignore[attr-defined]
        writer.write(steps)


class _Flush:
    """A marker on `alerting.control`: every reading of the partition so far is in."""

    def __init__(self, step: UnitAlerting) -> None:
        self.step = step

    def handle(self, offset: int, key: bytes | None, value: bytes, headers: list | None) -> None:
        self.step.flush()

    def end_batch(self) -> None:
        """Each marker acted on arrival."""

    def take(self) -> tuple[list[Output], list[Changed]]:
        return self.step.take()


class _Writer:
    """Outputs first, flushed; then the changelog of every state entry that changed."""

    def __init__(self, producer: Any, tables: dict[int, Any]) -> None:
        self.producer, self.tables = producer, tables

    def write(self, steps: list[tuple[int, Step]]) -> None:
        changes: list[tuple[Any, int, str, bytes]] = []
        for partition, step in steps:
            outputs, changed = step.take()
            for topic, key, value, headers in outputs:
                produce(self.producer, topic, key, value, headers)
            # Serialised now: the state objects keep changing in the next batch.
            changes += [
                (self.tables[id(mapping)], partition, key, _json(mapping[key]))
                for mapping, key in changed
            ]
        remaining = self.producer.flush(30)
        if remaining:
            raise RuntimeError(f"{remaining} alerting outputs not acknowledged by Kafka")
        for table, partition, key, value in changes:
            table.send_changelog(partition, key, value, value_serializer="raw")


def _agent(app: faust.App, topic: str, make: Callable[[int], Step], writer: _Writer) -> None:
    source = app.topic(topic, key_serializer="raw", value_serializer="raw")

    async def run(stream: Any) -> None:
        async for events in stream.take_events(BATCH, within=BATCH_WITHIN_S):
            by_partition: dict[int, list[Any]] = defaultdict(list)
            for event in events:
                by_partition[event.message.partition].append(event.message)
            steps = []
            for partition, messages in by_partition.items():
                step = make(partition)
                for m in messages:
                    step.handle(m.offset, m.key, m.value, m.headers)
                step.end_batch()
                steps.append((partition, step))
            writer.write(steps)
            log.info("%s: batch of %d", topic, len(events))

    app.agent(source, name=f"alerting-{topic}")(run)


def _json(state: MutableMapping[str, Any]) -> bytes:
    return json.dumps(state, separators=(",", ":")).encode()
