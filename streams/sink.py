"""The ClickHouse sink: the one writer of the store.

Consumes the output topics in batches bounded by size and time, inserts each
(topic, partition) slice with the deduplication token
`topic:partition:firstOffset-lastOffset`, and commits offsets only after ClickHouse
acknowledged. A crash between insert and commit replays the same slice, which the
engine drops (token) or the tables collapse (ReplacingMergeTree keys).

For chDB, whose data directory only one process may open, the sink also answers SQL
for others (`livinglab sql`) on a loopback HTTP port written to the owner file.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from livinglab.config import Settings
from livinglab.kafka import AGGREGATES, DEADLETTER, READINGS, SINK_GROUP, consumer_config
from livinglab.store import Store, StoreError, migrate, open_store
from schemas import codec
from streams.rows import CODECS, TABLES

log = logging.getLogger("livinglab.sink")

MAX_ROWS = 20000  # records per batch
MAX_WAIT_S = 0.5  # time bound of a batch
OWNER_FILE = "store-owner.json"


def owner_file(data_dir: Path) -> Path:
    return data_dir / OWNER_FILE


class _Query(BaseHTTPRequestHandler):
    """POST SQL, get the result in ?format= (default TabSeparatedWithNames)."""

    store: Store
    lock: threading.Lock

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        sql = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode("utf-8")
        fmt = self.headers.get("X-Format", "TabSeparatedWithNames")
        try:
            with self.lock:
                body, status = self.store.query(sql, fmt).encode("utf-8"), 200
        except StoreError as exc:
            body, status = str(exc).encode("utf-8"), 400
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class Sink:
    def __init__(self, settings: Settings, topics: list[str] | None = None) -> None:
        self.settings = settings
        self.store = open_store(settings.clickhouse, settings.data_dir)
        applied = migrate(self.store)
        if applied:
            log.info("applied DDL %s", ", ".join(applied))
        self.topics = topics or [READINGS, AGGREGATES, DEADLETTER]
        self.lock = threading.Lock()
        self.stopping = False
        self.rows_written: dict[str, int] = defaultdict(int)

    def serve_queries(self) -> ThreadingHTTPServer:
        handler = type("Handler", (_Query,), {"store": self.store, "lock": self.lock})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True, name="sql").start()
        path = owner_file(self.settings.data_dir)
        path.write_text(json.dumps({"pid": os.getpid(), "port": server.server_address[1]}))
        return server

    def run(self) -> None:
        assert self.settings.kafka, "the sink needs LIVINGLAB_KAFKA"
        consumer = Consumer(consumer_config(self.settings.kafka, SINK_GROUP))
        consumer.subscribe(self.topics)
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        signal.signal(signal.SIGINT, lambda *_: setattr(self, "stopping", True))
        try:
            while not self.stopping:
                batch = self._collect(consumer)
                if batch:
                    self._write(batch)
                    consumer.commit(offsets=_next_offsets(batch), asynchronous=False)
        finally:
            consumer.close()

    def _collect(self, consumer: Consumer) -> list[Any]:
        batch: list[Any] = []
        deadline = time.monotonic() + MAX_WAIT_S
        while len(batch) < MAX_ROWS and not self.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for msg in consumer.consume(num_messages=MAX_ROWS - len(batch), timeout=left):
                err = msg.error()
                if err is None:
                    batch.append(msg)
                elif err.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", err)
        return batch

    def _write(self, batch: list[Any]) -> None:
        slices: dict[tuple[str, int], list[Any]] = defaultdict(list)
        for msg in batch:
            slices[(msg.topic(), msg.partition())].append(msg)
        for (topic, partition), msgs in slices.items():
            records = [codec(CODECS[topic]).decode(m.value(), m.headers()) for m in msgs]
            token = f"{topic}:{partition}:{msgs[0].offset()}-{msgs[-1].offset()}"
            for table, build in TABLES[topic]:
                rows = build(records)
                if rows.num_rows:
                    self._insert(table, rows, token)
                    self.rows_written[table] += rows.num_rows

    def _insert(self, table: str, rows: Any, token: str) -> None:
        """Insert, retrying with backoff while the store refuses; never drop the batch."""
        delay = 0.2
        while True:
            try:
                with self.lock:
                    self.store.insert_arrow(table, rows, token)
                return
            except StoreError as exc:
                log.warning("insert into %s failed (%s); retrying in %.1f s", table, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def close(self) -> None:
        owner_file(self.settings.data_dir).unlink(missing_ok=True)
        self.store.close()


def _next_offsets(batch: list[Any]) -> list[TopicPartition]:
    last: dict[tuple[str, int], int] = {}
    for msg in batch:
        last[(msg.topic(), msg.partition())] = msg.offset()
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]


def run_sink(settings: Settings) -> None:
    sink = Sink(settings)
    server = sink.serve_queries()
    try:
        sink.run()
    finally:
        server.shutdown()
        sink.close()
