"""connectors.handoff against a real Kafka (Tansu): a message counts as taken once Kafka has it.

Also the home of the helpers the other connector tests import: `tansu` and `Tap` for Kafka,
`running` for a connector verb run as a user runs it.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from connectors.handoff import Handoff, connector_producer
from connectors.ingress import Ingress
from connectors.lns import IngressError
from livinglab.kafka import DEADLETTER, UPLINKS, create_topics
from livinglab.processes import free_port, start_tansu
from schemas import codec

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "lns"
TTS_EXAMPLE = (FIXTURES / "tts_v3_uplink_example.json").read_bytes()


@contextmanager
def tansu(workdir: Path) -> Iterator[str]:
    """A fresh memory-only broker with the ingress topics (one partition each)."""
    child, bootstrap = start_tansu(workdir / "tansu.log")
    try:
        create_topics(bootstrap, [UPLINKS, DEADLETTER], 1)
        yield bootstrap
    finally:
        child.kill()  # memory-only: nothing to shut down cleanly, and no wait for idle clients
        child.stop()


class Tap:
    """What was produced to an ingress topic between two markers, decoded from Avro.

    Markers, not watermarks: Tansu's high watermark counts batches, not records.
    """

    MARKER = b"__tap__"

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.codec = codec("uplink" if topic == UPLINKS else "deadletter")
        self.producer = Producer({"bootstrap.servers": bootstrap})
        self.consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": "tap", "fetch.wait.max.ms": 10}
        )
        self.consumer.assign([TopicPartition(topic, 0, 0)])
        self.start = self._mark()

    def _mark(self) -> bytes:
        marker = uuid.uuid4().bytes
        self.producer.produce(self.topic, marker, key=self.MARKER)
        assert self.producer.flush(10) == 0
        return marker

    def read(self) -> list[dict[str, Any]]:
        """Records since the last read; flush the producer first, so all of them are there."""
        end, records, inside = self._mark(), [], False
        for _ in range(1000):
            message = self.consumer.poll(0.1)
            if message is None or message.error():
                continue
            if message.key() != self.MARKER:
                if inside:
                    records.append(self.codec.decode(message.value(), message.headers()))
            elif message.value() == end:
                self.start = end
                return records
            elif message.value() == self.start:
                inside = True
        raise AssertionError(f"the end marker never came back from {self.topic}")

    def close(self) -> None:
        self.consumer.close()


@contextmanager
def taps(bootstrap: str) -> Iterator[tuple[Tap, Tap]]:
    """(uplinks, dead letters) produced from now on."""
    uplinks, dead = Tap(bootstrap, UPLINKS), Tap(bootstrap, DEADLETTER)
    try:
        yield uplinks, dead
    finally:
        uplinks.close()
        dead.close()


@dataclass
class Verb:
    """A `livinglab` verb running in a child process; `log` collects its stderr lines."""

    process: subprocess.Popen
    log: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.log)


@contextmanager
def running(*args: str, env: dict[str, str], ready: str) -> Iterator[Verb]:
    """Run `livinglab ARGS` until its log says `ready`; SIGTERM it when the block ends."""
    process = subprocess.Popen(
        [sys.executable, "-m", "livinglab", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    verb = Verb(process)

    def read() -> None:
        for line in process.stderr:
            verb.log.append(line)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while ready not in verb.text:
            assert process.poll() is None, f"livinglab {args[0]} exited:\n{verb.text}"
            assert time.monotonic() < deadline, f"no {ready!r} in the log:\n{verb.text}"
            time.sleep(0.02)
        yield verb
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        reader.join()


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with tansu(tmp_path_factory.mktemp("kafka")) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="module")
def producer(kafka: str) -> Producer:
    """One connector producer per module: an idempotent producer's first send takes 0.5 s."""
    return connector_producer(kafka)


def test_done_follows_kafka_and_offer_returns_the_outcome(kafka: str) -> None:
    handoff = Handoff(Ingress(connector_producer(kafka), source="test"), limit=4)
    ingress, reports = handoff.ingress, queue.Queue()
    with taps(kafka) as (uplinks, dead):
        good = handoff.offer(lambda cb: ingress.admit(TTS_EXAMPLE, "t", cb), reports.put)
        junk = handoff.offer(lambda cb: ingress.admit(b"{", "t", cb), reports.put)
        assert [reports.get(timeout=10), reports.get(timeout=10)] == [None, None]
        assert handoff.pending == 0
        assert handoff.close() == 0
        assert good is not None and good["dev_eui"] == "0004a30b001c0530"
        assert isinstance(junk, IngressError) and junk.reason == "json"
        assert [u["dev_eui"] for u in uplinks.read()] == ["0004a30b001c0530"]
        assert [d["reason"] for d in dead.read()] == ["json"]


def test_without_kafka_the_bound_holds_and_nothing_is_confirmed() -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    handoff = Handoff(Ingress(connector_producer(nowhere), source="test"), limit=2)
    ingress, reports = handoff.ingress, []

    def send(on_delivery: Any) -> Any:
        return ingress.admit(TTS_EXAMPLE, "t", on_delivery)

    assert handoff.offer(send, reports.append) is not None
    assert handoff.offer(send, reports.append) is not None
    assert handoff.offer(send, reports.append) is None  # full: the caller answers "busy"
    assert handoff.offer(send, reports.append, wait=0.05) is None
    assert handoff.pending == 2 and reports == []  # retried without a deadline, never confirmed
    assert handoff.close(timeout=0.1) == 2
    assert len(reports) == 2 and all(error is not None for error in reports)
