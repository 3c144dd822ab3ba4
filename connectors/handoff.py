"""Bounded hand-off from the LNS connectors to Kafka: a message is taken once Kafka holds it.

The webhook answers 2xx and the MQTT client sends its PUBACK only from Kafka's delivery report,
so whatever a network server believes delivered is in Kafka. At most `limit` messages wait for
their report: beyond that the webhook answers 503 and the MQTT client stops reading (its broker
keeps the rest). The producer retries without a deadline (`message.timeout.ms` 0): a waiting
message is never given up while the process lives, and one that dies with the process was never
acknowledged, so the network server sends it again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from confluent_kafka import KafkaError, Message, Producer

from connectors.ingress import Ingress, OnDelivery
from livinglab.kafka import new_producer

T = TypeVar("T")
Done = Callable[[KafkaError | None], None]
"""Called once per offered message, on the delivery thread: None = Kafka has it."""

DEFAULT_LIMIT = 1000


def connector_producer(bootstrap: str) -> Producer:
    """The platform's producer settings, retrying until Kafka takes each message."""
    return new_producer(bootstrap, **{"message.timeout.ms": 0})


class Handoff:
    """Counts messages between `offer` and their delivery report, and serves the reports."""

    def __init__(self, ingress: Ingress, limit: int = DEFAULT_LIMIT) -> None:
        self.ingress = ingress
        self.limit = limit
        self._pending = 0
        self._room = threading.Condition()
        self._closing = False
        self._poller = threading.Thread(target=self._poll, name="kafka-delivery", daemon=True)
        self._poller.start()

    @property
    def pending(self) -> int:
        """Messages offered and not yet confirmed by Kafka."""
        return self._pending

    def offer(
        self, send: Callable[[OnDelivery], T], done: Done, wait: float | None = 0.0
    ) -> T | None:
        """Run `send`, which must produce exactly one message with the callback it is given.

        Waits up to `wait` seconds (None: until `close`) for a free slot and returns None if
        none frees up; otherwise returns what `send` returned. `done` follows from the
        delivery thread.
        """
        with self._room:
            if not self._room.wait_for(lambda: self._pending < self.limit or self._closing, wait):
                return None
            if self._closing:
                return None
            self._pending += 1

        def delivered(error: KafkaError | None, _message: Message) -> None:
            self._release()
            done(error)

        try:
            return send(delivered)
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        with self._room:
            self._pending -= 1
            self._room.notify()

    def _poll(self) -> None:
        while not self._closing:
            self.ingress.producer.poll(0.1)

    def close(self, timeout: float = 10.0) -> int:
        """Wait up to `timeout` s for Kafka, then give up the rest (reported as errors to `done`).

        Returns how many messages were given up; none of them was acknowledged upstream.
        """
        producer = self.ingress.producer
        left = producer.flush(timeout)
        with self._room:
            self._closing = True
            self._room.notify_all()
        self._poller.join()
        if left:
            producer.purge()
            producer.flush(0)
        return left
