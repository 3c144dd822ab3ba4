"""The running platform: broker, stream workers and sink, embedded or external.

`Stack` starts what the settings do not point elsewhere (Tansu when LIVINGLAB_KAFKA
is unset), the sink and the workers as child processes, and stops all of them on
exit, error or Ctrl-C.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import TracebackType

from confluent_kafka import Producer

from livinglab.config import Settings
from livinglab.kafka import (
    AGGREGATES,
    ALERTING_CONTROL,
    ALERTING_GROUP,
    DEADLETTER,
    PEERS,
    READINGS,
    SINK_GROUP,
    UPLINKS,
    WORKER_GROUP,
    create_topics,
    new_producer,
    topics_for,
    wait_drained,
)
from livinglab.processes import Child, python_module, start_tansu
from livinglab.registry import Registry
from livinglab.store import open_store
from streams.processor import CONTROL_KEY, END_OF_INPUT
from streams.sink import owner_file

log = logging.getLogger("livinglab.stack")
BROKER_FILE = "broker.json"


class Stack:
    def __init__(
        self, settings: Settings, registry: Registry, workers: int = 1, alerting: bool = True
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.workers = workers
        self.alerting = alerting  # an alerting worker next to the stream workers
        self.children: list[Child] = []
        self.kafka = settings.kafka or ""
        self.embedded_broker = False  # started Tansu and published it in broker.json

    def __enter__(self) -> Stack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _start(self) -> None:
        logs = self.settings.data_dir / "logs"
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.settings.kafka:
            tansu, self.kafka = start_tansu(logs / "tansu.log")
            self.children.append(tansu)
            self.settings = replace(self.settings, kafka=self.kafka)
            # Tansu lives only as long as this run: tell other commands where it is.
            broker_file(self.settings.data_dir).write_text(
                json.dumps({"pid": os.getpid(), "bootstrap": self.kafka})
            )
            self.embedded_broker = True
        create_topics(
            self.kafka, topics_for(lab.id for lab in self.registry.labs), self.settings.partitions
        )
        env = self.settings.env()
        sink = Child("sink", python_module("livinglab", "sink"), logs / "sink.log", env)
        self.children.append(sink)
        for i in range(self.workers):
            self.children.append(
                Child(
                    f"worker-{i}",
                    python_module("livinglab", "worker"),
                    logs / f"worker-{i}.log",
                    env,
                )
            )
        if self.alerting:
            argv = python_module("livinglab", "worker", "--role", "alerting")
            self.children.append(Child("alerting-0", argv, logs / "alerting-0.log", env))
        self._wait_owner(sink)

    def _wait_owner(self, sink: Child, timeout: float = 60) -> None:
        """The sink is up once it has migrated the store and published its query port."""
        path = owner_file(self.settings.data_dir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not sink.alive():
                raise RuntimeError(f"the sink exited during start-up:\n{sink.tail()}")
            if path.exists():
                return
            time.sleep(0.1)
        raise TimeoutError(f"the sink did not start within {timeout:.0f} s:\n{sink.tail()}")

    def check_alive(self) -> None:
        for child in self.children:
            if not child.alive():
                raise RuntimeError(f"{child.name} stopped unexpectedly:\n{child.tail()}")

    def producer(self) -> Producer:
        return new_producer(self.kafka)

    def end_of_input(self, producer: Producer) -> None:
        """Tell every partition the input is complete, so all windows close (final watermark)."""
        self._mark_end(producer, UPLINKS)

    def _mark_end(self, producer: Producer, topic: str) -> None:
        for partition in range(self.settings.partitions):
            producer.produce(topic, key=CONTROL_KEY, value=END_OF_INPUT, partition=partition)
        producer.flush(30)

    def wait_drained(
        self, timeout: float = 600, on_wait: Callable[[str, int], None] | None = None
    ) -> None:
        """Block until workers and sink have committed everything produced so far."""

        def waiting(group: str, lag: int) -> None:
            self.check_alive()
            if on_wait:
                on_wait(group, lag)

        deadline = time.monotonic() + timeout
        stages = [(WORKER_GROUP, [UPLINKS])]
        if self.alerting:
            stages.append((ALERTING_GROUP, [READINGS, AGGREGATES]))
        wait_drained(self.kafka, stages, timeout, waiting)
        # Every reading is in: the alerting workers may judge silence up to the newest one,
        # also for units whose upstream partition has no other unit to move its clock on,
        # and judge what waits for units of a lab that never came back.
        alerts = [lab.alert_topic for lab in self.registry.labs]
        stages = [(SINK_GROUP, [READINGS, AGGREGATES, DEADLETTER, *alerts])]
        if self.alerting:
            producer = self.producer()
            self._mark_end(producer, ALERTING_CONTROL)
            self._mark_end(producer, PEERS)
            stages.insert(0, (ALERTING_GROUP, [ALERTING_CONTROL, PEERS]))
        wait_drained(self.kafka, stages, max(0.0, deadline - time.monotonic()), waiting)

    def query(self, sql: str, fmt: str = "JSONEachRow") -> str:
        if self.settings.clickhouse:
            store = open_store(self.settings.clickhouse, self.settings.data_dir)
            try:
                return store.query(sql, fmt)
            finally:
                store.close()
        return query_owner(self.settings.data_dir, sql, fmt)

    def stop(self) -> None:
        # Workers first (they produce; all at once, each takes a while to leave its group),
        # then the sink, then the broker.
        workers = [c for c in self.children if c.name.startswith(("worker-", "alerting-"))]
        for child in workers:
            child.terminate()
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        if self.embedded_broker:
            broker_file(self.settings.data_dir).unlink(missing_ok=True)
            self.embedded_broker = False


def broker_file(data_dir: Path) -> Path:
    """Where a running demo or replay publishes its embedded broker's address."""
    return data_dir / BROKER_FILE


def running_broker(data_dir: Path) -> str | None:
    """The embedded broker of the demo or replay running on ``data_dir``, if one is."""
    try:
        info = json.loads(broker_file(data_dir).read_text())
        os.kill(info["pid"], 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info["bootstrap"]


def query_owner(data_dir: Path, sql: str, fmt: str) -> str:
    """Run SQL through the process that owns the embedded store."""
    owner = json.loads(owner_file(data_dir).read_text())
    request = urllib.request.Request(
        f"http://127.0.0.1:{owner['port']}/", data=sql.encode(), headers={"X-Format": fmt}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.read().decode()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(exc.read().decode()) from None
