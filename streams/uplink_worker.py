"""The stream worker: `lorawan.uplinks` -> `PartitionProcessor` -> readings, aggregates,
dead letters, on librdkafka in batches, with checkpoints.

Each poll takes whatever is waiting (up to BATCH records, at most POLL_S of waiting), so
a backlog goes through in large batches and a trickle in small ones with little delay. A
batch's outputs are handed to the producer at once (that is the latency path). Every
CHECKPOINT_S or MAX_DIRTY changed entries, when the input ran dry (IDLE_S), at a
revocation and at the end, a checkpoint waits until everything produced so far is
acknowledged (the outputs, and the previous checkpoint's state), commits the input
offsets of the previous checkpoint, whose state that included, then writes the state
changed since the previous checkpoint to its changelog. Its offsets are committed at the
next checkpoint (at once at a revocation, at the end, and when the input is idle):
waiting here for the broker to take a few MB of state stalled the worker for 100-300 ms
every checkpoint. A crash replays the input since the last commit onto the state last
written: nothing is counted twice (each state entry also remembers the last input offset
applied to it), and outputs produced again carry deterministic keys that the sink
deduplicates. Acknowledging, writing state and committing every few seconds instead of
per batch keeps small batches cheap, and a unit's decoded state (dedup ring, open
windows) is encoded once per checkpoint instead of once per batch.

State is per partition of `lorawan.uplinks` (device entries in memory, closed windows
in a local RocksDB: streams/state_store.py), backed by two compacted changelog topics
(the names and JSON encoding the earlier Faust worker used, so state written by it
restores). A partition's state is read back from its changelog partition when the
partition is assigned, and dropped when it is revoked, after a checkpoint: revocation
happens inside `consume`, between batches.
"""

from __future__ import annotations

import gc
import logging
import signal
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from livinglab.config import Settings
from livinglab.kafka import (
    UPLINKS,
    WORKER_GROUP,
    consumer_config,
    create_topics,
    end_offsets,
    new_producer,
    produce,
)
from livinglab.registry import Registry, load_registry
from streams.processor import PartitionProcessor, freeze
from streams.state_store import COLD, TieredState, partition_dir, remove_orphans

BATCH = 10_000  # most records per batch (a backlog)
POLL_S = 0.02  # longest wait for a batch to fill (a trickle: small batches, low latency)
# A broker pays a fixed cost per request, however little it carries. Fetching with a
# 10 ms wait and sending outputs every 5 ms (librdkafka's linger) took more of Tansu's
# CPU than the records did: in a short bench run the broker used 7.8 s of CPU, with the
# consumers' usual 100 ms wait and a 20 ms linger 3.7 s (the cores it frees go to the
# worker and the sink), for ~30 ms more at the median to the readings topic and ~10 ms
# end to end (docs/performance.md).
FETCH_WAIT_MS = 100
LINGER_MS = 20
# The input counts as dry (checkpoint now) once no record came for this long: longer than
# a fetch's wait, or every gap between two fetches under load would be a checkpoint.
IDLE_S = 0.25
# A checkpoint at least every CHECKPOINT_S (what a crash makes the worker redo; Quix
# Streams commits every 5 s by default, Kafka Streams every 30 s) and whenever
# MAX_DIRTY state entries changed: decoded entries take ~15 kB each until the checkpoint
# encodes them, so this bounds the memory a backlog of 100,000 units could take.
CHECKPOINT_S = 5.0
MAX_DIRTY = 10_000
DEVICES = f"{WORKER_GROUP}-devices-changelog"
PARTITIONS = f"{WORKER_GROUP}-partitions-changelog"
CHANGELOGS = (DEVICES, PARTITIONS)

log = logging.getLogger("livinglab.worker")


@dataclass
class PartitionState:
    """One input partition's state: per device (and closed window), and per partition."""

    devices: TieredState
    meta: dict[str, Any] = field(default_factory=dict)
    dirty: dict[str, None] = field(default_factory=dict)  # changed since the checkpoint
    position: int = -1  # the next input offset after what was processed
    unsaved: bool = False  # processed (input, or queued closes) since the checkpoint

    def changes(self) -> list[str]:
        """Changed keys to write, closed windows first: in one changelog partition a
        crash can only lose a suffix, so a device entry that made it implies that the
        closed windows it refers to did."""
        keys = list(self.dirty)
        return [k for k in keys if COLD in k] + [k for k in keys if COLD not in k]


def restore(bootstrap: str, partition: int, root: Path) -> PartitionState:
    """A partition's state as its changelog partitions hold it (tombstones delete)."""
    state = PartitionState(TieredState(partition_dir(root, partition)))
    tables = {DEVICES: state.devices, PARTITIONS: state.meta}
    tps = [TopicPartition(topic, partition) for topic in CHANGELOGS]
    ends = end_offsets(bootstrap, tps)
    todo = {(t, p): end for (t, p), end in ends.items() if end > 0}
    if not todo:
        return state
    reader = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{WORKER_GROUP}-restore",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 10,
            "enable.partition.eof": True,  # a compacted tail may end below `ends`
            "log_level": 3,
        }
    )
    try:
        reader.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in todo])
        while todo:
            for msg in reader.consume(num_messages=10_000, timeout=0.5):
                where = (msg.topic(), msg.partition())
                if msg.error() is not None:
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        raise RuntimeError(f"cannot restore state: {msg.error()}")
                    todo.pop(where, None)
                    continue
                table = tables[msg.topic()]
                key = orjson.loads(msg.key())
                if msg.value() is None:
                    table.pop(key, None)
                else:
                    table[key] = orjson.loads(msg.value())
                if msg.offset() + 1 >= todo.get(where, 0):
                    todo.pop(where, None)
    finally:
        reader.close()
    return state


class UplinkWorker:
    """The consume -> process -> produce -> changelog -> commit loop of one worker."""

    def __init__(self, settings: Settings, registry: Registry) -> None:
        if not settings.kafka:
            raise SystemExit("the stream worker needs LIVINGLAB_KAFKA (host:port of the broker)")
        self.settings = settings
        self.registry = registry
        self.bootstrap = settings.kafka
        self.producer: Producer = new_producer(settings.kafka, **{"linger.ms": LINGER_MS})
        self.states: dict[int, PartitionState] = {}
        self.state_root = settings.data_dir / "worker-state"
        remove_orphans(self.state_root)
        self.totals: dict[str, int] = defaultdict(int)
        self.stopping = False
        self.batches, self.uplinks, self.batch_ms = 0, 0, 0.0  # since the last checkpoint
        self.uncommitted: list[TopicPartition] = []  # offsets of the last checkpoint
        create_topics(settings.kafka, [UPLINKS], settings.partitions)
        create_topics(
            settings.kafka, CHANGELOGS, settings.partitions, {"cleanup.policy": "compact"}
        )

    # -- group membership ----------------------------------------------------------------
    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        started = time.monotonic()
        for tp in partitions:
            self.states[tp.partition] = restore(self.bootstrap, tp.partition, self.state_root)
        entries = sum(len(self.states[tp.partition].devices) for tp in partitions)
        log.info(
            "assigned partitions %s: %d state entries restored in %.1f s",
            sorted(tp.partition for tp in partitions),
            entries,
            time.monotonic() - started,
        )

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.checkpoint(consumer, final=True)
        for tp in partitions:
            state = self.states.pop(tp.partition, None)
            if state is not None:
                state.devices.close()
        log.info("revoked partitions %s", sorted(tp.partition for tp in partitions))

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> None:
        consumer = Consumer(
            consumer_config(self.bootstrap, WORKER_GROUP, **{"fetch.wait.max.ms": FETCH_WAIT_MS})
        )
        consumer.subscribe([UPLINKS], on_assign=self._assigned, on_revoke=self._revoked)
        last = fed = time.monotonic()
        try:
            while not self.stopping:
                messages = [m for m in consumer.consume(BATCH, POLL_S) if _ok(m)]
                self.process(messages)
                now = time.monotonic()
                if messages:
                    fed = now
                dirty = sum(len(state.dirty) for state in self.states.values())
                if now - fed >= IDLE_S or dirty >= MAX_DIRTY or now - last >= CHECKPOINT_S:
                    self.checkpoint(consumer)
                    last = time.monotonic()
            self.checkpoint(consumer, final=True)
        finally:
            consumer.close()
            self.producer.flush(30)
            for state in self.states.values():
                state.devices.close()

    def process(self, messages: list[Any]) -> None:
        """One batch (maybe empty: a partition whose closed windows are still being
        emitted goes on with them): its outputs go to the producer; the state changes
        wait for the checkpoint (see the module doc)."""
        started = time.perf_counter()
        by_partition: dict[int, list[Any]] = defaultdict(list)
        for m in messages:
            by_partition[m.partition()].append(m)
        for partition, state in self.states.items():
            batch = by_partition.get(partition, [])
            proc = PartitionProcessor(
                self.registry,
                partition,
                state.devices,
                state.meta,
                self.settings.lateness_s * 1000,
                self.settings.horizon_s * 1000,
                counts=self.totals,
            )
            if not batch and not proc.pending:
                continue
            for m in batch:
                proc.handle(m.offset(), m.key(), m.value(), m.headers())
            proc.end_batch()
            outputs, dirty = proc.take()
            for topic, key, value, headers in outputs:
                produce(self.producer, topic, key, value, headers)
            state.dirty.update(dict.fromkeys(dirty))
            state.unsaved = True
            if batch:
                state.position = batch[-1].offset() + 1
        self.producer.poll(0)
        if not messages:
            return
        self.batches += 1
        self.batch_ms += (time.perf_counter() - started) * 1000
        self.uplinks += len(messages)

    def checkpoint(self, consumer: Consumer, final: bool = False) -> None:
        """Everything produced so far acknowledged, the previous checkpoint's offsets
        committed, then the changed state written; its offsets are committed by the next
        checkpoint, or here and now if `final` (see the module doc)."""
        pending = {p: s for p, s in self.states.items() if s.unsaved}
        if not pending and not self.uncommitted:
            return
        started = time.perf_counter()
        self._flush("outputs and state")
        self._commit(consumer)
        flushed = time.perf_counter()
        if not pending:
            return
        keys = 0
        for partition, state in pending.items():
            # A key gone from the table (an expired closed window) is written as a tombstone.
            for key in state.changes():
                value = state_bytes(state.devices.get(key))
                produce(self.producer, DEVICES, orjson.dumps(key), value, partition=partition)
            keys += len(state.dirty)
            meta_key = str(partition)
            produce(
                self.producer,
                PARTITIONS,
                orjson.dumps(meta_key),
                state_bytes(state.meta[meta_key]),
                partition=partition,
            )
        self.uncommitted = [
            TopicPartition(UPLINKS, p, s.position) for p, s in pending.items() if s.position >= 0
        ]
        for state in pending.values():
            state.dirty.clear()
            state.position, state.unsaved = -1, False
        if final:
            self._flush("state changes")
            self._commit(consumer)
        log.info(
            "checkpoint after %d batches of %d uplinks (%.0f ms processing): %.0f ms acks and "
            "commit, %d state entries in %.0f ms; totals %s",
            self.batches,
            self.uplinks,
            self.batch_ms,
            (flushed - started) * 1000,
            keys,
            (time.perf_counter() - flushed) * 1000,
            dict(self.totals),
        )
        self.batches, self.uplinks, self.batch_ms = 0, 0, 0.0

    def _commit(self, consumer: Consumer) -> None:
        """Commit the last checkpoint's offsets (its state must be acknowledged)."""
        if not self.uncommitted:
            return
        try:
            consumer.commit(offsets=self.uncommitted, asynchronous=False)
        except KafkaException as exc:
            # Refused because the group is rebalancing: outputs and state are written, and
            # whoever gets the partition next replays from the last commit and recognises
            # the records by their offsets.
            log.warning(
                "offsets not committed (%s); the records will be recognised if replayed", exc
            )
        self.uncommitted = []

    def _flush(self, what: str) -> None:
        remaining = self.producer.flush(30)
        if remaining:
            raise RuntimeError(f"{remaining} {what} not acknowledged by Kafka")


def _ok(msg: Any) -> bool:
    err = msg.error()
    if err is None:
        return True
    if err.code() != KafkaError._PARTITION_EOF:
        log.warning("consumer error: %s", err)
    return False


def state_bytes(state: Any) -> bytes | None:
    """A state entry as its changelog value (compact JSON; None: a tombstone), its decoded
    parts turned back into their stored form (`processor.freeze`)."""
    return None if state is None else orjson.dumps(freeze(state))


def tune_gc() -> None:
    """Collect cycles less often than Python's default (every 700 net allocations).

    Handling an uplink allocates dozens of containers that live until the batch ends,
    so the default ran a young-generation collection every ~20 uplinks and moved them
    all to older generations, whose collections then walked every active unit's
    decoded state: ~6-9 us of ~45 per uplink, against ~2 with these thresholds (2,000
    units, `bench`). The state holds no reference cycles; what is garbage is freed by
    reference counting as before, so memory does not grow. Objects that exist when it
    is called (the registry) are frozen out of collections altogether."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


def run_uplink_worker(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT; the batch in hand is finished and committed first."""
    worker = UplinkWorker(settings, load_registry(settings.registry))
    tune_gc()

    def stop(*_: Any) -> None:
        worker.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.run()
