"""The ClickHouse sink: the one writer of the store.

Consumes the output topics in batches bounded by size and time, inserts each topic's
slice (all its partitions at once: an insert has a fixed cost of tens of ms in chDB) with
the deduplication token `topic:partition:first-last,...`, and commits offsets only after
ClickHouse acknowledged. A crash between insert and commit replays the same slice, which the
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

import pyarrow as pa
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError

from livinglab.config import Settings
from livinglab.deadletter import dead_letter
from livinglab.kafka import (
    AGGREGATES,
    ALERT_TOPICS,
    DEADLETTER,
    READINGS,
    SINK_GROUP,
    consumer_config,
    next_offsets,
)
from livinglab.store import Store, StoreError, apply_retention, migrate, open_store
from schemas import codec
from streams import rows

log = logging.getLogger("livinglab.sink")

MAX_ROWS = 50_000  # records per batch
MAX_WAIT_S = 0.1  # most time a record waits in Kafka for its batch to fill
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 10.0
POISON_AFTER = 3  # failed attempts before looking for rows the store refuses
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
        apply_retention(self.store, settings.retention_days)
        self.topics = topics or [READINGS, AGGREGATES, DEADLETTER, ALERT_TOPICS]
        self.lock = threading.Lock()
        self.stopping = False
        self.records_stored: dict[str, int] = defaultdict(int)  # per topic, for progress

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
        try:
            while not self.stopping:
                batch = self._collect(consumer)
                started = time.perf_counter()
                if batch and self._write(batch, consumer):
                    consumer.commit(offsets=next_offsets(batch), asynchronous=False)
                    log.info(
                        "stored %d records in %.0f ms; totals %s",
                        len(batch),
                        (time.perf_counter() - started) * 1000,
                        dict(self.records_stored),
                    )
        finally:
            consumer.close()

    def _collect(self, consumer: Consumer) -> list[Any]:
        """Up to MAX_ROWS records; the batch closes when its first record has waited
        MAX_WAIT_S since it was produced, so records that queued up during the previous
        insert are not kept waiting for another full MAX_WAIT_S."""
        batch: list[Any] = []
        deadline = time.monotonic() + MAX_WAIT_S
        while len(batch) < MAX_ROWS and not self.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for msg in consumer.consume(num_messages=MAX_ROWS - len(batch), timeout=left):
                err = msg.error()
                if err is None:
                    if not batch:
                        waited = waited_s(msg.timestamp(), time.time())
                        deadline = time.monotonic() + MAX_WAIT_S - waited
                    batch.append(msg)
                elif err.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", err)
        return batch

    def _write(self, batch: list[Any], consumer: Consumer) -> bool:
        """Insert a batch slice by slice; False if stopped before all of it was stored."""
        slices: dict[str, list[Any]] = defaultdict(list)
        for msg in batch:
            slices[msg.topic()].append(msg)
        for topic, msgs in slices.items():
            token = slice_token(topic, msgs)
            stored = self._store_as_avro(topic, msgs, token) or self._store_records(
                topic, msgs, token, consumer
            )
            if not stored:
                return False
            self.records_stored[topic] += len(msgs)
        return True

    def _store_records(self, topic: str, msgs: list[Any], token: str, consumer: Consumer) -> bool:
        """Record by record: decode, build the rows, dead-letter what cannot be stored,
        insert with retries; False if stopped before all of it was stored."""
        records, rejected = [], []
        for m in msgs:
            try:
                records.append(rows.decode(topic, m.value(), m.headers()))
            except ValueError as exc:
                rejected.append(_rejected(topic, m.partition(), m.offset(), m.value(), exc))
        outputs = []
        for table, build in rows.tables_for(topic):
            data, unfit = _build(build, records)
            outputs.append((table, data))
            rejected += [_rejected(topic, None, -1, rows_json(r), exc) for r, exc in unfit]
        if rejected:
            outputs.append(("deadletter", rows.deadletter_rows(rejected)))
        for table, data in outputs:
            if data.num_rows and not self._insert(table, data, f"{token}:{table}", consumer):
                return False
        return True

    def _store_as_avro(self, topic: str, msgs: list[Any], token: str) -> bool:
        """The fast path: hand the slice's messages to ClickHouse as they are (one Avro
        container) and let it build the rows (rows.FROM_AVRO). Only for messages that all
        carry our schema's fingerprint and a store that reads Avro; on any refusal the
        slice goes the record-by-record way, which dead-letters and retries (same tokens,
        so a table the fast path already filled drops the repeat)."""
        selects = rows.FROM_AVRO.get(topic)
        insert_avro = getattr(self.store, "insert_avro", None)
        if selects is None or insert_avro is None:
            return False
        avro = codec(rows.CODECS[topic])
        values = [m.value() for m in msgs]
        if None in values or not all([avro.written_by_us(m.headers()) for m in msgs]):
            return False
        container = avro.container(values)
        try:
            with self.lock:
                for table, select in selects.items():
                    insert_avro(table, select, container, f"{token}:{table}")
        except StoreError as exc:
            log.warning("%s: ClickHouse refused the batch as Avro (%s); record by record",
                        token, str(exc).splitlines()[0][:300])  # fmt: skip
            return False
        return True

    def _insert(self, table: str, data: pa.Table, token: str, consumer: Consumer) -> bool:
        """Insert, retrying with backoff while the store is away or refuses; never drop rows.

        Consumption is paused meanwhile (the consumer keeps its group membership). When the
        store answers but keeps refusing this insert, the batch is split to find the rows it
        refuses: those go to the dead-letter table, the rest is stored. If it refuses every
        row alone, the fault is the store's, not the data's, and the sink keeps waiting.
        """
        delay, attempts, stored = RETRY_FIRST_S, 0, False
        while not stored and not self.stopping:
            try:
                with self.lock:
                    self.store.insert_arrow(table, data, token)
                stored = True
            except StoreError as exc:
                attempts += 1
                if attempts == 1:
                    consumer.pause(consumer.assignment())
                if attempts >= POISON_AFTER and self._reachable():
                    poison = self._bisect(table, data, token, 0, data.num_rows)
                    if len(poison) < data.num_rows:
                        self._dead_letter_rows(table, data, token, poison)
                        stored = True
                        continue
                log.warning(
                    "insert into %s failed (%s); retry %d in %.1f s",
                    table,
                    str(exc).splitlines()[0][:300],
                    attempts,
                    delay,
                )
                _sleep_polling(consumer, delay)
                delay = min(delay * 2, RETRY_MAX_S)
        if attempts:
            consumer.resume(consumer.assignment())
        return stored

    def _reachable(self) -> bool:
        try:
            with self.lock:
                self.store.query("SELECT 1", "CSV")
            return True
        except StoreError:
            return False

    def _bisect(self, table: str, data: pa.Table, token: str, lo: int, hi: int) -> list[int]:
        """Insert rows [lo, hi) in halves; return the indexes of the rows refused alone."""
        try:
            with self.lock:
                self.store.insert_arrow(table, data.slice(lo, hi - lo), f"{token}#{lo}-{hi}")
            return []
        except StoreError:
            if hi - lo == 1:
                return [lo]
        mid = (lo + hi) // 2
        return self._bisect(table, data, token, lo, mid) + self._bisect(table, data, token, mid, hi)

    def _dead_letter_rows(self, table: str, data: pa.Table, token: str, poison: list[int]) -> None:
        records = []
        for index in poison:
            row = data.slice(index, 1).to_pylist()[0]
            original = json.dumps(row, default=str).encode()
            records.append(
                dead_letter(
                    source=table,
                    stage="sink",
                    reason="store_rejected",
                    detail=f"ClickHouse refused this {table} row",
                    original=original,
                    origin=f"{token}#{index}",
                )
            )
        log.error(
            "%d %s rows refused by ClickHouse went to the dead-letter table", len(records), table
        )
        with self.lock:
            self.store.insert_arrow("deadletter", rows.deadletter_rows(records), f"{token}:poison")

    def close(self) -> None:
        owner_file(self.settings.data_dir).unlink(missing_ok=True)
        self.store.close()


def _build(
    build: rows.Builder, records: list[dict]
) -> tuple[pa.Table, list[tuple[dict, Exception]]]:
    """Rows for a table; records that cannot become rows are returned, not fatal."""
    try:
        return build(records), []
    except (pa.ArrowException, ValueError, TypeError, OverflowError, KeyError):
        good, unfit = [], []
        for record in records:
            try:
                build([record])
                good.append(record)
            except (pa.ArrowException, ValueError, TypeError, OverflowError, KeyError) as exc:
                unfit.append((record, exc))
        return build(good), unfit


def waited_s(timestamp: tuple[int, int], now: float) -> float:
    """How long a record has been in Kafka by its (type, epoch ms) timestamp, within
    [0, MAX_WAIT_S]: the producer's clock may be off, so a batch never waits longer than
    MAX_WAIT_S, and a record without a timestamp counts as just produced."""
    kind, ms = timestamp
    if kind == TIMESTAMP_NOT_AVAILABLE:
        return 0.0
    return min(MAX_WAIT_S, max(0.0, now - ms / 1000))


def rows_json(record: dict) -> bytes:
    return json.dumps(record, default=repr).encode()


def _sleep_polling(consumer: Consumer, seconds: float) -> None:
    """Wait while keeping the (paused) consumer's group membership alive."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        consumer.poll(min(0.2, max(0.0, deadline - time.monotonic())))


def _rejected(topic: str, partition: int | None, offset: int, value: bytes, exc: Exception) -> dict:
    """A record the sink cannot store; its origin is the message, or only the topic for
    a decoded record that does not fit the table's columns."""
    return dead_letter(
        source=topic,
        stage="sink",
        reason="undecodable",
        detail=str(exc),
        original=value or b"",
        origin=topic if partition is None else f"{topic}:{partition}:{offset}",
    )


def slice_token(topic: str, msgs: list[Any]) -> str:
    """The insert deduplication token of a topic's slice of a batch: its offset range per
    partition, so the same slice delivered again is dropped by the engine."""
    ranges: dict[int, list[int]] = {}
    for m in msgs:
        span = ranges.setdefault(m.partition(), [m.offset(), m.offset()])
        span[0], span[1] = min(span[0], m.offset()), max(span[1], m.offset())
    parts = ",".join(f"{p}:{lo}-{hi}" for p, (lo, hi) in sorted(ranges.items()))
    return f"{topic}:{parts}"


def run_sink(settings: Settings) -> None:
    sink = Sink(settings)
    signal.signal(signal.SIGTERM, lambda *_: setattr(sink, "stopping", True))
    signal.signal(signal.SIGINT, lambda *_: setattr(sink, "stopping", True))
    server = sink.serve_queries()
    try:
        sink.run()
    finally:
        server.shutdown()
        sink.close()
