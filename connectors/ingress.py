"""The one way into Kafka: every connector (LNS webhook or MQTT, UDP bridge, replay,
the simulator) hands raw messages to `Ingress`, which normalises them to `Uplink`
records keyed by DevEUI, or to dead letters with the reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from connectors.lns import IngressError, normalise
from livinglab.deadletter import dead_letter
from livinglab.kafka import DEADLETTER, UPLINKS
from schemas import codec

_UPLINK = codec("uplink")
_DEADLETTER = codec("deadletter")

OnDelivery = Callable[[KafkaError | None, Message], None]
"""Kafka's verdict on one produced message, called from `Producer.poll`."""


class Ingress:
    """Normalise and produce; `stats` counts what went where."""

    def __init__(self, producer: Producer, source: str = "lns") -> None:
        self.producer = producer
        self.source = source
        self.stats: Counter[str] = Counter()

    def submit(
        self, raw: bytes, origin: str = "", on_delivery: OnDelivery | None = None
    ) -> dict[str, Any] | None:
        """One raw LNS message in; returns the uplink produced, or None if dead-lettered."""
        outcome = self.admit(raw, origin, on_delivery)
        return None if isinstance(outcome, IngressError) else outcome

    def admit(
        self, raw: bytes, origin: str = "", on_delivery: OnDelivery | None = None
    ) -> dict[str, Any] | IngressError:
        """Like `submit`, but returns why a message was dead-lettered, for connectors to answer.

        Exactly one message is produced either way, so `on_delivery` is called exactly once.
        """
        try:
            uplink = normalise(raw)
        except IngressError as exc:
            self.reject(
                raw, exc.reason, str(exc), origin, dev_eui=exc.dev_eui, on_delivery=on_delivery
            )
            return exc
        self.produce_uplink(uplink, on_delivery)
        return uplink

    def produce_uplink(self, uplink: dict[str, Any], on_delivery: OnDelivery | None = None) -> None:
        self._produce(
            UPLINKS,
            uplink["dev_eui"].encode(),
            _UPLINK.encode(uplink),
            _UPLINK.headers,
            on_delivery,
        )
        self.stats["uplinks"] += 1

    def reject(
        self,
        raw: bytes,
        reason: str,
        detail: str,
        origin: str = "",
        *,
        dev_eui: str | None = None,
        on_delivery: OnDelivery | None = None,
    ) -> None:
        record = dead_letter(
            source=self.source,
            stage="ingress",
            reason=reason,
            detail=detail,
            original=raw,
            dev_eui=dev_eui,
            origin=origin,
        )
        self._produce(
            DEADLETTER,
            self.source.encode(),
            _DEADLETTER.encode(record),
            _DEADLETTER.headers,
            on_delivery,
        )
        self.stats[f"rejected.{reason}"] += 1

    def _produce(
        self, topic: str, key: bytes, value: bytes, headers: list, on_delivery: OnDelivery | None
    ) -> None:
        extra = {} if on_delivery is None else {"on_delivery": on_delivery}
        while True:
            try:
                self.producer.produce(topic, value=value, key=key, headers=headers, **extra)
                return
            except BufferError:  # local queue full: wait for deliveries (backpressure)
                self.producer.poll(0.05)

    def flush(self, timeout: float = 30.0) -> None:
        if self.producer.flush(timeout) > 0:
            raise RuntimeError("Kafka did not acknowledge all uplinks in time")
