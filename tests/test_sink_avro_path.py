"""The sink's fast path: a batch of Reading messages handed to ClickHouse as one Avro
container, the rows built by ClickHouse (streams/rows.py FROM_AVRO), must give exactly
the rows of the record-by-record path (fastavro decode + Arrow builders).

Real parts: fastavro as the independent reader of our container file, the chDB engine.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import fastavro
import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_NOT_AVAILABLE

from livinglab.codec.payload import QUANTITIES
from livinglab.deadletter import dead_letter
from livinglab.store import ChdbStore, migrate
from schemas import SCHEMA_HEADER, codec
from streams.rows import FROM_AVRO, tables_for
from streams.sink import MAX_WAIT_S, waited_s

READING = codec("reading")


def _reading(i: int, **changes) -> dict:
    values = {q: round(30.0 + 0.37 * i + k, 3) for k, q in enumerate(QUANTITIES)}
    record = {
        "lab": f"lab-{i % 3}", "sensor": f"s-{i % 5}", "dev_eui": f"{i % 5:016x}",
        "ts": 1_795_132_800_123 + i * 60_000, "session": 1 + i % 2, "f_cnt": 1000 + i,
        "f_port": 2, "uplink_version": 1, "source": "chirpstack",
        "gateways": [{"id": "0102030405060708", "rssi": -101.5, "snr": -3.25, "time": None},
                     {"id": "aa-gw", "rssi": None, "snr": 7.0, "time": 1_795_132_800_000}],
        "frequency": 868_300_000, "spreading_factor": 9, "payload": bytes([i % 256, 0xAB, 0]),
        "status": 3, "calibration": "v2", "values": values, "raw_values": dict(values),
        "flags": {},
    }  # fmt: skip
    record.update(changes)
    return record


def edge_cases() -> list[dict]:
    only_noise = {"laeq": 61.2, "lamax": 80.5}
    return [
        _reading(0),
        _reading(1, flags={"pm25": 6, "laeq": 1}),  # some quantities flagged
        _reading(2, raw_values={"pm25": 12.0}),  # raw value missing for most: value is raw
        _reading(3, values=only_noise, raw_values=dict(only_noise)),  # a noise-only unit
        _reading(4, uplink_version=2),  # a late copy: an uplinks row, no reading rows
        _reading(5, f_port=None, frequency=None, spreading_factor=None, gateways=[]),
        _reading(6, raw_values={**_reading(6)["raw_values"], "pm10": 99.0}),
    ]


def test_container_is_a_valid_avro_file_for_an_independent_reader() -> None:
    records = edge_cases()
    container = READING.container([READING.encode(r) for r in records])
    assert list(fastavro.reader(io.BytesIO(container))) == records


def test_encoding_is_byte_for_byte_fastavros_public_writer() -> None:
    for record in edge_cases():
        public = io.BytesIO()
        fastavro.schemaless_writer(public, READING.schema, record)
        assert READING.encode(record) == public.getvalue()


def test_aggregates_and_dead_letters_are_byte_for_byte_fastavros_public_writer() -> None:
    """They go through fastavro's compiled writer called directly (readings have their own
    writer, tests/test_reading_writer.py)."""
    aggregate = {
        "lab": "lab-1", "sensor": "s-1", "window": "1h", "window_start": 1_795_132_800_000,
        "window_end": 1_795_136_400_000, "version": 2,
        "stats": [{"quantity": "laeq", "count": 58, "coverage": 0.97, "mean": 61.25,
                   "min": 48.0, "max": 77.5, "valid": True, "flags": 1, "valid_hours": None,
                   "l10": 66.5, "l50": 60.0, "l90": None}],
        "indices": [{"name": "lki", "value": 3.5, "coverage": 0.75, "valid": False}],
    }  # fmt: skip
    letter = dead_letter(
        source="tts", stage="decode", reason="payload.range", detail="pm25 raw 1200",
        original=b'{"x": 1}', dev_eui="0000000000000001", origin="lorawan.uplinks:0:7",
    )  # fmt: skip
    for name, record in (("aggregate", aggregate), ("deadletter", letter)):
        public = io.BytesIO()
        fastavro.schemaless_writer(public, codec(name).schema, record)
        assert codec(name).encode(record) == public.getvalue()


def test_only_messages_with_our_fingerprint_take_the_fast_path() -> None:
    assert READING.written_by_us(READING.headers)
    assert not READING.written_by_us([(SCHEMA_HEADER, b"0123456789abcdef")])
    assert not READING.written_by_us(None)


@pytest.fixture
def store(tmp_path: Path):
    s = ChdbStore(tmp_path / "ch")
    migrate(s)
    try:
        yield s
    finally:
        s.close()


def _dump(store: ChdbStore, table: str) -> list[dict]:
    text = store.query(f"SELECT * FROM {table} ORDER BY ALL", "JSONEachRow")
    return [json.loads(line) for line in text.splitlines()]


def test_clickhouse_builds_the_same_rows_as_the_python_builders(store: ChdbStore) -> None:
    records = edge_cases()
    container = READING.container([READING.encode(r) for r in records])
    for table, build in tables_for("readings"):
        store.insert_arrow(table, build(records), "python")
        by_python = _dump(store, table)
        store.execute(f"TRUNCATE TABLE {table}")
        store.insert_avro(table, FROM_AVRO["readings"][table], container, "avro")
        assert _dump(store, table) == by_python, table
    readings = _dump(store, "readings")
    assert len(readings) == 15 * 6 - 13  # six first copies, one of two quantities only
    raw = {(r["f_cnt"], r["quantity"]): r["raw_value"] for r in readings}
    assert raw[(1002, "pm25")] == 12.0 and raw[(1002, "no2")] == records[2]["values"]["no2"]


def test_a_repeated_batch_is_dropped_by_its_token(store: ChdbStore) -> None:
    container = READING.container([READING.encode(r) for r in edge_cases()])
    select = FROM_AVRO["readings"]["readings"]
    for _ in range(2):
        store.insert_avro("readings", select, container, "readings:0:0-6:readings")
    assert int(store.query("SELECT count() FROM readings", "TabSeparatedRaw")) == 15 * 6 - 13


def test_a_batch_waits_for_its_first_record_at_most_max_wait() -> None:
    """Records that queued up during the previous insert close the batch at once; a
    producer clock ahead of ours or a missing timestamp never makes a batch wait longer."""
    now = 1_795_132_800.0
    created = TIMESTAMP_CREATE_TIME
    assert waited_s((created, int((now - 0.05) * 1000)), now) == pytest.approx(0.05)
    assert waited_s((created, int((now - 5) * 1000)), now) == MAX_WAIT_S
    assert waited_s((created, int((now + 5) * 1000)), now) == 0.0
    assert waited_s((TIMESTAMP_NOT_AVAILABLE, 0), now) == 0.0
