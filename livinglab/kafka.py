"""Kafka plumbing shared by every process: topic names, client settings, lag.

Producers and the partitioner are set up so that a key lands on the same partition
whichever client wrote it (murmur2, as the Java client and aiokafka/Faust do).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

UPLINKS = "lorawan.uplinks"
READINGS = "readings"
AGGREGATES = "aggregates"
DEADLETTER = "deadletter"
ALERTS_PREFIX = "alerts."  # + lab id: one JSON alert topic per lab, for its municipality
ALERT_TOPICS = "^alerts\\..+"  # subscription pattern: every lab's alert topic
PEERS = "alerting.peers"  # internal: units' hourly means and fog triggers, keyed by lab
ALERTING_CONTROL = "alerting.control"  # internal: "every reading so far is in" per partition
WORKER_GROUP = "livinglab-streams"
ALERTING_GROUP = "livinglab-alerting"
SINK_GROUP = "livinglab-sink"
CONTROL_HEADER = "ll-control"


def topics_for(lab_ids: Iterable[str]) -> list[str]:
    alerts = (f"{ALERTS_PREFIX}{lab}" for lab in lab_ids)
    return [UPLINKS, READINGS, AGGREGATES, DEADLETTER, PEERS, ALERTING_CONTROL, *alerts]


def producer_config(bootstrap: str, **extra: object) -> dict[str, object]:
    return {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "batch.num.messages": 10000,
        "queue.buffering.max.messages": 1_000_000,
        "compression.type": "lz4",
        "partitioner": "murmur2_random",
        "log_level": 3,  # errors only: idle-connection notices are not news
        **extra,
    }


def consumer_config(bootstrap: str, group: str, **extra: object) -> dict[str, object]:
    # Short group timeouts: Tansu holds a join for the whole rebalance timeout.
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
        "max.poll.interval.ms": 60000,
        "fetch.wait.max.ms": 100,
        "isolation.level": "read_uncommitted",
        **extra,
    }


def create_topics(
    bootstrap: str, names: Iterable[str], partitions: int, config: dict[str, str] | None = None
) -> None:
    """Create missing topics (with `config`, e.g. compaction); existing ones are left as
    they are."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=10).topics)
    new = [
        NewTopic(name, partitions, 1, config=config or {}) for name in names if name not in existing
    ]
    if not new:
        return
    for name, future in admin.create_topics(new, operation_timeout=10).items():
        try:
            future.result()
        except Exception as exc:  # already created by a concurrent process is fine
            if "already exists" not in str(exc).lower() and "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise RuntimeError(f"cannot create topic {name}: {exc}") from exc


def group_lag(bootstrap: str, group: str, topics: Iterable[str]) -> int:
    """Messages in `topics` not yet committed by `group` (-1 when unknown yet)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        meta = consumer.list_topics(timeout=10)
        tps = [
            TopicPartition(t, p)
            for t in topics
            if t in meta.topics
            for p in meta.topics[t].partitions
        ]
        committed = consumer.committed(tps, timeout=10)
        ends = end_offsets(bootstrap, tps)
        lag = 0
        for tp in committed:
            end = ends[(tp.topic, tp.partition)]
            if end == 0:
                continue
            if tp.offset < 0:
                return -1
            lag += max(0, end - tp.offset)
        return lag
    finally:
        consumer.close()


def end_offsets(bootstrap: str, tps: list[TopicPartition]) -> dict[tuple[str, int], int]:
    """The offset after the last record of each partition.

    Not the broker's high watermark alone: Tansu reports the last *batch's* base offset
    + 1 there, which undercounts by the rest of that batch. So the last batch is read
    and its last record's offset taken.
    """
    reader = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "livinglab-end-offsets",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 5,  # the end is reached when a fetch comes back empty
        }
    )
    try:
        ends: dict[tuple[str, int], int] = {}
        tail: list[TopicPartition] = []
        for tp in tps:
            _, high = reader.get_watermark_offsets(tp, timeout=10, cached=False)
            ends[(tp.topic, tp.partition)] = high
            if high > 0:
                tail.append(TopicPartition(tp.topic, tp.partition, high - 1))
        if not tail:
            return ends
        reader.assign(tail)
        pending = {(tp.topic, tp.partition) for tp in tail}
        deadline = time.monotonic() + 10
        while pending and time.monotonic() < deadline:
            for msg in reader.consume(num_messages=10_000, timeout=0.01):
                key = (msg.topic(), msg.partition())
                if msg.error() is None:
                    ends[key] = max(ends[key], msg.offset() + 1)
                elif msg.error().code() == KafkaError._PARTITION_EOF:
                    pending.discard(key)
        return ends
    finally:
        reader.close()


def wait_drained(
    bootstrap: str,
    stages: list[tuple[str, list[str]]],
    timeout: float,
    on_wait: callable | None = None,
) -> None:  # type: ignore[valid-type]
    """Block until every (group, topics) stage has committed everything, in order."""
    deadline = time.monotonic() + timeout
    for group, topics in stages:
        while True:
            lag = group_lag(bootstrap, group, topics)
            if lag == 0:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{group} still has {lag} messages to process on {topics}")
            if on_wait:
                on_wait(group, lag)
            time.sleep(0.1)


def next_offsets(messages: Iterable[Message]) -> list[TopicPartition]:
    """The offsets to commit once `messages` are done: each partition's last + 1."""
    last: dict[tuple[str, int], int] = {}
    for msg in messages:
        last[(msg.topic(), msg.partition())] = msg.offset()
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]


def new_producer(bootstrap: str, **extra: object) -> Producer:
    return Producer(producer_config(bootstrap, **extra))


def produce(
    producer: Producer,
    topic: str,
    key: bytes,
    value: bytes | None,
    headers: list | None = None,
    partition: int | None = None,
) -> None:
    """Produce, waiting for deliveries while the local queue is full (backpressure).
    `partition` overrides the partitioner (changelogs follow their input partition)."""
    where = {} if partition is None else {"partition": partition}
    while True:
        try:
            producer.produce(topic, value=value, key=key, headers=headers, **where)
            return
        except BufferError:
            producer.poll(0.05)
