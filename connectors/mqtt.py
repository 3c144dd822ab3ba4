"""MQTT client for network-server integrations: The Things Stack v3 and ChirpStack v3/v4.

Topics (MQTT wildcards): The Things Stack publishes uplinks on `v3/{app}@{tenant}/devices/+/up`
(its MQTT user name is `{app}@{tenant}`), ChirpStack on `application/+/device/+/event/up`.

Subscriptions are QoS 1 in a persistent session (clean session off, a fixed client id), and a
message is acknowledged only once Kafka holds its uplink or dead letter (manual acks): a message
the connector never passed on is sent again by the broker after a reconnect or restart. paho
reconnects on its own, waiting 1 s, 2 s, 4 s ... up to `max_backoff` between attempts.
The password never reaches a log line: `Broker` keeps it out of its repr and str.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from confluent_kafka import KafkaError

from connectors.handoff import Handoff
from connectors.ingress import OnDelivery
from connectors.lns import IngressError

log = logging.getLogger(__name__)

LNS_TOPICS = {"tts": "v3/{username}/devices/+/up", "chirpstack": "application/+/device/+/event/up"}
_SCHEMES = {"mqtt": (False, 1883), "mqtts": (True, 8883)}


@dataclass(frozen=True)
class Broker:
    """Where to connect, from a URL `mqtt[s]://[user[:password]@]host[:port]`."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str, *, tls: bool = False, password: str | None = None) -> Broker:
        """`password` (e.g. from the environment) wins over one in the URL."""
        parts = urlsplit(url)
        if parts.scheme not in _SCHEMES or not parts.hostname:
            raise ValueError(
                "the broker URL must look like mqtt[s]://[user[:password]@]host[:port]"
            )
        scheme_tls, default_port = _SCHEMES[parts.scheme]
        try:
            port = parts.port or default_port
        except ValueError:
            raise ValueError("the broker URL has a port that is not a number") from None
        return cls(
            host=parts.hostname,
            port=port,
            tls=tls or scheme_tls,
            username=unquote(parts.username) if parts.username else None,
            password=password
            if password is not None
            else (unquote(parts.password) if parts.password else None),
        )

    def __str__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def lns_topic(lns: str, broker: Broker) -> str:
    """The uplink topic filter of a network server; TTS's names the user `{app}@{tenant}`."""
    if lns == "tts" and (not broker.username or "@" not in broker.username):
        raise ValueError(
            "The Things Stack's MQTT user name is {app}@{tenant}; give it in the URL "
            "(with @ written %40) or name the topic with --topic"
        )
    return LNS_TOPICS[lns].format(username=broker.username)


class MqttIngest:
    """Subscribes, hands each message to Kafka, acknowledges it when Kafka has it.

    Runs on paho's network thread; `stopped` is set when `stop` is called or when Kafka refused
    a message for good (`failure` then says why: the message stays unacknowledged at the broker
    and comes again to the next run).
    """

    def __init__(
        self,
        handoff: Handoff,
        broker: Broker,
        topics: Sequence[str],
        client_id: str,
        *,
        ca_file: str | None = None,
        keepalive: int = 60,
        max_backoff: int = 60,
    ) -> None:
        self.handoff = handoff
        self.broker = broker
        self.topics = list(topics)
        self.keepalive = keepalive
        self.stats: Counter[str] = Counter()
        self.stopped = threading.Event()
        self.subscribed = threading.Event()
        self.failure: KafkaError | None = None
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            manual_ack=True,
        )
        client.enable_logger(logging.getLogger(f"{__name__}.paho"))
        if broker.username is not None:
            client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            client.tls_set(ca_certs=ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.reconnect_delay_set(1, max_backoff)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self.client = client

    def start(self) -> None:
        log.info("mqtt: connecting to %s, topics %s", self.broker, ", ".join(self.topics))
        self.client.connect_async(self.broker.host, self.broker.port, self.keepalive)
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect; messages still waiting for Kafka stay unacknowledged at the broker."""
        self.stopped.set()
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, flags: Any, reason: Any, _properties: Any
    ) -> None:
        if reason.is_failure:
            self.stats["refused"] += 1
            log.warning("mqtt: %s refused the connection: %s; trying again", self.broker, reason)
            return
        self.stats["connected"] += 1
        log.info(
            "mqtt: connected to %s (session %s)",
            self.broker,
            "resumed" if flags.session_present else "new",
        )
        client.subscribe([(topic, 1) for topic in self.topics])

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        self.stats["unreachable"] += 1
        log.warning("mqtt: cannot reach %s; trying again", self.broker)

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: list, _properties: Any
    ) -> None:
        refused = [t for t, r in zip(self.topics, reasons, strict=False) if r.is_failure]
        if refused:
            log.error("mqtt: %s refused the subscription to %s", self.broker, ", ".join(refused))
        else:
            log.info("mqtt: subscribed to %s", ", ".join(self.topics))
            self.subscribed.set()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _properties: Any
    ) -> None:
        self.subscribed.clear()
        if not self.stopped.is_set():
            self.stats["disconnected"] += 1
            log.warning("mqtt: lost %s (%s); reconnecting with backoff", self.broker, reason)

    def _on_message(self, client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        mid, qos, origin = message.mid, message.qos, f"mqtt:{message.topic}"
        self.stats["received"] += 1

        def done(error: KafkaError | None) -> None:
            if error is None:
                self.stats["acked"] += 1
                client.ack(mid, qos)
            elif not self.stopped.is_set():
                self.failure = error
                log.error(
                    "mqtt: Kafka refused a message for good (%s); stopping, the broker "
                    "keeps it for the next run",
                    error.str(),
                )
                self.stopped.set()

        def send(on_delivery: OnDelivery) -> dict[str, Any] | IngressError:
            return self.handoff.ingress.admit(message.payload, origin, on_delivery)

        # No room: paho's thread waits here, so it stops reading and the broker keeps the rest.
        while not self.stopped.is_set():
            if self.handoff.offer(send, done, wait=0.5) is not None:
                return
