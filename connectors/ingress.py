"""The one way into Kafka: every connector (LNS webhook or MQTT, UDP bridge, replay,
the simulator) hands raw messages to `Ingress`, which normalises them to `Uplink`
records keyed by DevEUI, or to dead letters with the reason.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from confluent_kafka import Producer

from connectors.lns import IngressError, normalise
from livinglab.deadletter import dead_letter
from livinglab.kafka import DEADLETTER, UPLINKS
from schemas import codec

_UPLINK = codec("uplink")
_DEADLETTER = codec("deadletter")


class Ingress:
    """Normalise and produce; `stats` counts what went where."""

    def __init__(self, producer: Producer, source: str = "lns") -> None:
        self.producer = producer
        self.source = source
        self.stats: Counter[str] = Counter()

    def submit(self, raw: bytes, origin: str = "") -> dict[str, Any] | None:
        """One raw LNS message in; returns the uplink produced, or None if dead-lettered."""
        try:
            uplink = normalise(raw)
        except IngressError as exc:
            self.reject(raw, exc.reason, str(exc), origin)
            return None
        self.produce_uplink(uplink)
        return uplink

    def produce_uplink(self, uplink: dict[str, Any]) -> None:
        self._produce(UPLINKS, uplink["dev_eui"].encode(), _UPLINK.encode(uplink), _UPLINK.headers)
        self.stats["uplinks"] += 1

    def reject(self, raw: bytes, reason: str, detail: str, origin: str = "") -> None:
        record = dead_letter(
            source=self.source,
            stage="ingress",
            reason=reason,
            detail=detail,
            original=raw,
            origin=origin,
        )
        self._produce(
            DEADLETTER, self.source.encode(), _DEADLETTER.encode(record), _DEADLETTER.headers
        )
        self.stats[f"rejected.{reason}"] += 1

    def _produce(self, topic: str, key: bytes, value: bytes, headers: list) -> None:
        while True:
            try:
                self.producer.produce(topic, value=value, key=key, headers=headers)
                return
            except BufferError:  # local queue full: wait for deliveries (backpressure)
                self.producer.poll(0.05)

    def flush(self, timeout: float = 30.0) -> None:
        if self.producer.flush(timeout) > 0:
            raise RuntimeError("Kafka did not acknowledge all uplinks in time")
