"""The Faust workers: a thin adapter that feeds batches of `lorawan.uplinks` records to
`PartitionProcessor` and keeps its state in changelog-backed Faust tables; the alerting
agents (streams/alerting.py) run as a second app with its own consumer group, in their
own process, so the two share the machine's cores instead of one.

Faust is the runtime (consumer group, rebalancing, tables with changelogs, commits);
the event-time semantics are ours (streams/windows.py). Outputs are produced with
librdkafka and flushed before the batch is acknowledged, and Faust flushes the
changelog before it commits offsets, so a commit never runs ahead of what was written.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from typing import Any

import faust

from livinglab.config import Settings
from livinglab.kafka import ALERTING_GROUP, UPLINKS, WORKER_GROUP, new_producer
from livinglab.registry import load_registry
from streams import faust_tansu
from streams.alerting import install as install_alerting
from streams.processor import PartitionProcessor

BATCH = 10_000
BATCH_WITHIN_S = 0.2

log = logging.getLogger("livinglab.worker")


def create_app(settings: Settings, role: str = "streams") -> faust.App:
    """The Faust app of one worker role: `streams` (uplinks -> readings, aggregates) or
    `alerting` (readings, aggregates -> alerts.<lab>)."""
    if not settings.kafka:
        raise SystemExit("the stream worker needs LIVINGLAB_KAFKA (host:port of the broker)")
    registry = load_registry(settings.registry)
    faust_tansu.install(settings.kafka)  # restore tables to the changelog's real end
    app = faust_app(settings, WORKER_GROUP if role == "streams" else ALERTING_GROUP)
    producer = new_producer(settings.kafka)
    if role == "alerting":
        install_alerting(app, settings, registry, producer)
    else:
        _install_streams(app, settings, registry, producer)
    return app


def faust_app(settings: Settings, app_id: str) -> faust.App:
    """A Faust app configured for our brokers (Tansu included) and in-memory tables
    restored from their changelogs."""
    return faust.App(
        app_id,
        broker=f"kafka://{settings.kafka}",
        store="memory://",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        # Tansu holds a group join for the whole rebalance timeout: keep these short.
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=6.0,
        broker_max_poll_interval=60.0,
        broker_commit_interval=0.25,  # progress shows (and drain checks see) it soon
        stream_wait_empty=False,
        web_enabled=False,
        producer_acks=-1,
        datadir=str(settings.data_dir / "faust"),  # not ./<app id>-data in the cwd
        tabledir=str(settings.data_dir / "worker-tables"),
        key_serializer="json",  # table keys and values (our topics are raw bytes)
        value_serializer="json",
    )


def _install_streams(app: faust.App, settings: Settings, registry: Any, producer: Any) -> None:
    """The uplink agent and its tables."""
    source = app.topic(UPLINKS, key_serializer="raw", value_serializer="raw")
    devices = app.Table("devices", default=None)
    partitions = app.Table("partitions", default=None)
    lateness_ms, horizon_ms = settings.lateness_s * 1000, settings.horizon_s * 1000
    totals: dict[str, int] = defaultdict(int)

    @app.agent(source)
    async def process(stream: Any) -> None:
        async for events in stream.take_events(BATCH, within=BATCH_WITHIN_S):
            by_partition: dict[int, list[Any]] = defaultdict(list)
            for event in events:
                by_partition[event.message.partition].append(event.message)
            changes: list[tuple[Any, int, str, bytes | None]] = []
            for partition, messages in by_partition.items():
                proc = PartitionProcessor(
                    registry,
                    partition,
                    devices.data,
                    partitions.data,
                    lateness_ms,
                    horizon_ms,
                    counts=totals,
                )
                for m in messages:
                    proc.handle(m.offset, m.key, m.value, m.headers)
                proc.end_batch()
                outputs, dirty = proc.take()
                for topic, key, value, headers in outputs:
                    _produce(producer, topic, key, value, headers)
                # Serialised now: the state objects keep changing in the next batch. A key
                # gone from the table (an expired closed window) is written as a tombstone.
                changes += [(devices, partition, k, _json(devices.data.get(k))) for k in dirty]
                meta_key = str(partition)
                changes.append((partitions, partition, meta_key, _json(partitions.data[meta_key])))
            # Outputs first: a state change (with its input offset) may only reach the
            # changelog once the outputs it implies are safely in Kafka.
            remaining = producer.flush(30)
            if remaining:
                raise RuntimeError(f"{remaining} outputs not acknowledged by Kafka")
            for table, partition, key, value in changes:
                table.send_changelog(partition, key, value, value_serializer="raw")
            log.info("batch of %d uplinks; totals %s", len(events), dict(totals))


def _json(state: Any) -> bytes | None:
    return None if state is None else json.dumps(state, separators=(",", ":")).encode()


def _produce(producer: Any, topic: str, key: bytes, value: bytes, headers: list) -> None:
    while True:
        try:
            producer.produce(topic, value=value, key=key, headers=headers)
            return
        except BufferError:
            producer.poll(0.05)


def run_worker(settings: Settings, role: str = "streams", loglevel: str = "info") -> None:
    """Run one worker of a role until SIGTERM/SIGINT (Faust handles the signals)."""
    app = create_app(settings, role)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
