"""Subscribing to a lab's alerts: the open/resolved view, and fan-out without loss.

Fan-out runs against a real broker (Tansu) with a webhook served here that fails on
purpose, and against Mosquitto for MQTT.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from confluent_kafka import Consumer, TopicPartition

from livinglab.kafka import consumer_config, create_topics, new_producer
from livinglab.processes import Child, free_port, start_tansu, wait_port
from streams.alerting_feed import (
    AlertBook,
    DeliveryError,
    MqttTarget,
    Webhook,
    fanout,
    fanout_consumer,
    line,
)

FAST = (0.05, 0.2)  # retry backoff for tests


def event(episode: int, seq: int, state: str, sensor: str = "zoe-01") -> dict:
    return {
        "id": f"00000000-0000-5000-8000-{episode:012d}",
        "lab": "zoetermeer", "sensor": sensor, "kind": "offline", "quantity": None,
        "severity": "warning", "state": state, "seq": seq,
        "started": "2026-11-20T02:32:36.388Z", "ended": None if state != "resolved" else
        "2026-11-20T04:00:00.000Z", "ts": f"2026-11-20T0{2 + seq}:32:36.388Z",
        "value": 180.0, "threshold": 180.0, "peak": 180.0, "reference": None, "unit": "s",
        "window": None, "message_nl": "Sensor stuurt geen gegevens",
        "message_en": "Sensor is not sending data",
    }  # fmt: skip


# -- the subscriber's view -------------------------------------------------------------------
def test_book_keeps_each_episodes_latest_event_and_drops_copies() -> None:
    book = AlertBook()
    assert book.add(event(1, 0, "open"))
    assert book.add(event(2, 0, "open", "zoe-02"))
    assert book.add(event(1, 1, "resolved"))
    assert not book.add(event(1, 1, "resolved"))  # redelivered
    assert not book.add(event(2, 0, "open", "zoe-02"))
    assert [(r["id"][-1], r["state"]) for r in book.open()] == [("2", "open")]


def test_a_line_for_people() -> None:
    text = line(event(7, 0, "open"), "nl")
    assert text.startswith("2026-11-20 02:32:36Z  warning   open      zoe-01")
    assert text.endswith("Sensor stuurt geen gegevens  [00000000]")


# -- fan-out ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    child, bootstrap = start_tansu(tmp_path_factory.mktemp("tansu") / "tansu.log")
    try:
        yield bootstrap
    finally:
        child.stop()


def topic_with(bootstrap: str, name: str, *events: dict) -> str:
    """A fresh two-partition alert topic holding ``events``."""
    topic = f"alerts.{name}"
    create_topics(bootstrap, [topic], 2)
    producer = new_producer(bootstrap)
    for e in events:
        producer.produce(topic, key=e["sensor"].encode(), value=json.dumps(e).encode())
    producer.flush(10)
    return topic


class Hook:
    """A webhook that answers 503 to the first ``fail`` requests, then 204."""

    def __init__(self, fail: int) -> None:
        self.fail, self.received, self.refused = fail, [], 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hook.refused < hook.fail:
                    hook.refused += 1
                    self.send_response(503)
                else:
                    hook.received.append((self.headers["X-Livinglab-Alert"], json.loads(body)))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def close(self) -> None:
        self.server.shutdown()


def committed(bootstrap: str, topic: str, group: str) -> int:
    consumer = Consumer(consumer_config(bootstrap, group))
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in (0, 1)], timeout=10)
        return sum(max(tp.offset, 0) for tp in tps)
    finally:
        consumer.close()


def test_webhook_gets_every_event_in_order_despite_failures(kafka: str) -> None:
    events = [event(1, 0, "open"), event(1, 1, "update"), event(1, 2, "resolved")]
    topic = topic_with(kafka, "hook", *events)
    hook = Hook(fail=2)
    consumer = fanout_consumer(kafka, topic, "fanout-hook")
    try:
        n = fanout(consumer, Webhook(hook.url), lambda: len(hook.received) == 3, FAST)
    finally:
        consumer.close()
        hook.close()
    assert n == 3 and hook.refused == 2
    assert [b["seq"] for _, b in hook.received] == [0, 1, 2]  # one sensor: one partition
    assert {h for h, _ in hook.received} == {events[0]["id"]}
    assert committed(kafka, topic, "fanout-hook") == 3


class Recorder:
    """A target that takes ``take`` events, then refuses; counts refusals."""

    def __init__(self, take: int) -> None:
        self.take, self.got, self.refusals = take, [], 0

    def deliver(self, record: dict, body: bytes) -> None:
        if len(self.got) == self.take:
            self.refusals += 1
            raise DeliveryError("away")
        self.got.append(record["seq"])

    def close(self) -> None:
        """Nothing to release."""


def test_an_undelivered_event_is_not_committed_and_comes_again(kafka: str) -> None:
    states = ("open", "update", "resolved")
    topic = topic_with(kafka, "restart", *(event(2, s, st) for s, st in enumerate(states)))
    first = Recorder(take=1)
    consumer = fanout_consumer(kafka, topic, "fanout-restart")
    try:
        fanout(consumer, first, lambda: first.refusals >= 3, FAST)  # stopped while refused
    finally:
        consumer.close()
    assert first.got == [0] and committed(kafka, topic, "fanout-restart") == 1
    second = Recorder(take=2)
    consumer = fanout_consumer(kafka, topic, "fanout-restart")
    try:
        fanout(consumer, second, lambda: len(second.got) == 2, FAST)
    finally:
        consumer.close()
    assert second.got == [1, 2]  # the refused event first, nothing twice
    assert committed(kafka, topic, "fanout-restart") == 3


def test_mqtt_target_publishes_each_event_under_its_sensor(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "m.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    broker = Child("mosquitto", ["/usr/sbin/mosquitto", "-c", str(tmp_path / "m.conf")],
                   tmp_path / "mosquitto.log")  # fmt: skip
    got: list[tuple[str, dict]] = []
    ready = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_connect = lambda c, *_: c.subscribe("city/alerts/#", qos=1)
    sub.on_subscribe = lambda *_: ready.set()
    sub.on_message = lambda c, u, m: got.append((m.topic, json.loads(m.payload)))
    try:
        wait_port(port, 10, broker.proc)
        sub.connect("127.0.0.1", port)
        sub.loop_start()
        assert ready.wait(10)
        target = MqttTarget(f"mqtt://127.0.0.1:{port}/city/alerts", "zoetermeer")
        try:
            record = event(3, 0, "open", "zoe-03")
            target.deliver(record, json.dumps(record).encode())
        finally:
            target.close()
        for _ in range(50):
            if got:
                break
            threading.Event().wait(0.1)
    finally:
        sub.loop_stop()
        broker.stop()
    assert got == [("city/alerts/zoe-03", event(3, 0, "open", "zoe-03"))]


def test_mqtt_target_without_a_broker_refuses(tmp_path: Path) -> None:
    target = MqttTarget(f"mqtt://127.0.0.1:{free_port()}", "zoetermeer", timeout_s=0.5)
    try:
        with pytest.raises(DeliveryError):
            target.deliver(event(4, 0, "open"), b"{}")
    finally:
        target.close()
