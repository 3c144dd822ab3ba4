"""A lab's alert topic from the subscriber's side: follow it, know what is open, pass it on.

What a municipality's own consumer of ``alerts.<lab>`` does, done by the platform's
CLI (streams/cli.py): events arrive at least once, so (id, seq) drops a redelivered
copy; a subscriber that joins late reads the topic from the beginning and keeps each
episode's latest event, which tells the open episodes from the resolved ones. Fan-out
hands every event to a webhook or an MQTT broker and commits its offset only once the
target has it, retrying with backoff meanwhile: nothing is lost, a copy may repeat.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from connectors.mqtt import Broker
from livinglab.kafka import consumer_config

log = logging.getLogger("livinglab.alerts")

RETRY_FIRST_S = 1.0
RETRY_MAX_S = 300.0


@dataclass
class AlertBook:
    """Each episode's latest event, as far as the events read so far tell."""

    latest: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, record: dict[str, Any]) -> bool:
        """Keep an event; False for a copy of one already seen (same id, seq not newer)."""
        last = self.latest.get(record["id"])
        if last is not None and record["seq"] <= last["seq"]:
            return False
        self.latest[record["id"]] = record
        return True

    def open(self) -> list[dict[str, Any]]:
        """The latest event of every episode not resolved yet, oldest episode first."""
        return sorted(
            (r for r in self.latest.values() if r["state"] != "resolved"),
            key=lambda r: (r["started"], r["sensor"], r["kind"]),
        )


def line(record: dict[str, Any], lang: str = "en") -> str:
    """One event for people: when (UTC), severity, state, sensor, the message, the episode."""
    when = record["ts"].replace("T", " ")[:19] + "Z"
    return (
        f"{when}  {record['severity']:<8}  {record['state']:<8}  {record['sensor']:<10}  "
        f"{record[f'message_{lang}']}  [{record['id'][:8]}]"
    )


# -- reading the topic -------------------------------------------------------------------------
def subscriber(bootstrap: str, topic: str, from_beginning: bool) -> Consumer:
    """A consumer of every partition of ``topic`` from its start or its end; commits nothing."""
    consumer = Consumer(
        consumer_config(
            bootstrap, f"livinglab-tail-{uuid.uuid4()}", **{"enable.partition.eof": True}
        )
    )
    meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
    if meta is None or meta.error is not None or not meta.partitions:
        consumer.close()
        raise LookupError(f"topic {topic} does not exist on {bootstrap}")
    start = OFFSET_BEGINNING if from_beginning else OFFSET_END
    consumer.assign([TopicPartition(topic, p, start) for p in meta.partitions])
    return consumer


def catch_up(consumer: Consumer, book: AlertBook, stop: Callable[[], bool]) -> None:
    """Read everything already in the assigned partitions into ``book``."""
    left = {tp.partition for tp in consumer.assignment()}
    while left and not stop():
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error() is None:
            book.add(json.loads(msg.value()))
        elif msg.error().code() == KafkaError._PARTITION_EOF:
            left.discard(msg.partition())
        else:
            log.warning("alerts: %s", msg.error())


def follow(
    consumer: Consumer, on_event: Callable[[dict[str, Any]], None], stop: Callable[[], bool]
) -> None:
    """Hand every new event to ``on_event`` until ``stop()``; copies are dropped."""
    book = AlertBook()
    while not stop():
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error() is None:
            record = json.loads(msg.value())
            if book.add(record):
                on_event(record)
        elif msg.error().code() != KafkaError._PARTITION_EOF:
            log.warning("alerts: %s", msg.error())


# -- fan-out -----------------------------------------------------------------------------------
class DeliveryError(RuntimeError):
    """The target did not take the event; try again later."""


class Target(Protocol):
    def deliver(self, record: dict[str, Any], body: bytes) -> None:
        """Hand over one event; raise DeliveryError if the target did not confirm it."""

    def close(self) -> None:
        """Release connections."""


@dataclass
class Webhook:
    """POST each event as JSON; any 2xx answer is a delivery."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 10.0

    def deliver(self, record: dict[str, Any], body: bytes) -> None:
        headers = {"Content-Type": "application/json", "X-Livinglab-Alert": record["id"]}
        request = urllib.request.Request(
            self.url, data=body, headers={**headers, **self.headers}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise DeliveryError(f"{self.url} answered {exc.code}") from None
        except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections
            raise DeliveryError(f"{self.url}: {exc}") from None

    def close(self) -> None:
        """Nothing is kept open between events."""


class MqttTarget:
    """Publish each event with QoS 1 on ``<topic>/<sensor>``; the broker's PUBACK delivers."""

    def __init__(self, url: str, lab: str, timeout_s: float = 10.0) -> None:
        self.broker = Broker.from_url(url)
        self.topic = urlsplit(url).path.strip("/") or f"livinglab/alerts/{lab}"
        self.timeout_s = timeout_s
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"livinglab-{lab}")
        if self.broker.username is not None:
            client.username_pw_set(self.broker.username, self.broker.password)
        if self.broker.tls:
            client.tls_set(tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.reconnect_delay_set(1, 60)
        self.connected = threading.Event()
        client.on_connect = lambda c, u, f, rc, p: (
            self.connected.set() if not rc.is_failure else None
        )
        client.on_disconnect = lambda *_: self.connected.clear()
        client.connect_async(self.broker.host, self.broker.port)
        client.loop_start()
        self.client = client

    def deliver(self, record: dict[str, Any], body: bytes) -> None:
        for attempt in (1, 2):  # a connection that drops between the check and the publish
            if not self.connected.wait(self.timeout_s):
                raise DeliveryError(f"{self.broker} is not reachable")
            info = self.client.publish(f"{self.topic}/{record['sensor']}", body, qos=1)
            try:
                info.wait_for_publish(self.timeout_s)
                break
            except (RuntimeError, ValueError) as exc:  # not connected (yet), queue full
                if attempt == 2:
                    raise DeliveryError(f"{self.broker}: {exc}") from None
                self.connected.clear()
        if not info.is_published():
            raise DeliveryError(f"{self.broker} did not confirm within {self.timeout_s:g} s")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def fanout_consumer(bootstrap: str, topic: str, group: str) -> Consumer:
    """A group member of ``topic``; a new group starts at the topic's beginning."""
    consumer = Consumer(consumer_config(bootstrap, group, **{"max.poll.interval.ms": 300_000}))
    consumer.subscribe([topic])
    return consumer


def fanout(
    consumer: Consumer,
    target: Target,
    stop: Callable[[], bool],
    retry_s: tuple[float, float] = (RETRY_FIRST_S, RETRY_MAX_S),
) -> int:
    """Deliver events in order, committing each offset only after its delivery.

    While the target is away, consumption pauses (the group membership stays) and the
    event is tried again after 1 s, 2 s, 4 s ... up to 5 min (``retry_s``). Returns how
    many events were delivered.
    """
    delivered = 0
    while not stop():
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        if msg.error() is not None:
            if msg.error().code() != KafkaError._PARTITION_EOF:
                log.warning("alerts: %s", msg.error())
            continue
        record, delay = json.loads(msg.value()), retry_s[0]
        while True:
            try:
                target.deliver(record, msg.value())
                break
            except DeliveryError as exc:
                log.warning("alert %s/%d not delivered (%s); again in %g s",
                            record["id"], record["seq"], exc, delay)  # fmt: skip
                consumer.pause(consumer.assignment())
                _wait_polling(consumer, delay, stop)
                consumer.resume(consumer.assignment())
                if stop():
                    return delivered  # not committed: the next run delivers it
                delay = min(2 * delay, retry_s[1])
        try:
            consumer.commit(message=msg, asynchronous=False)
        except KafkaException as exc:  # the partition moved to another member meanwhile
            log.warning("alerts: commit after delivery failed (%s); it may come again", exc)
        delivered += 1
    return delivered


def _wait_polling(consumer: Consumer, seconds: float, stop: Callable[[], bool]) -> None:
    """Wait, polling the paused consumer so the group does not drop it.

    A message can still arrive from a partition assigned meanwhile: it is put back.
    """
    deadline = time.monotonic() + seconds
    while not stop() and (left := deadline - time.monotonic()) > 0:
        msg = consumer.poll(min(0.2, left))
        if msg is not None and msg.error() is None:
            consumer.seek(TopicPartition(msg.topic(), msg.partition(), msg.offset()))
