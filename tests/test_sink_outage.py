"""The sink against a store that goes away, refuses rows, and comes back.

Real parts: the Tansu broker, the chDB store, the sink's consumer. The outage and the
refused row are injected by wrapping the real store (a ClickHouse server cannot be
switched off here), so the sink sees exactly the errors a server would raise.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest
from confluent_kafka import Producer

from livinglab.codec.payload import QUANTITIES
from livinglab.config import Settings
from livinglab.kafka import READINGS, SINK_GROUP, create_topics, group_lag, producer_config
from livinglab.processes import start_tansu
from livinglab.store import StoreError
from schemas import codec
from streams.sink import Sink

GOOD = 600
POISON_SENSOR = "poison-1"


class FlakyStore:
    """Fault injection around the real store: down until `up_at`, and refusing one sensor."""

    def __init__(self, real, up_at: float) -> None:
        self.real, self.up_at = real, up_at
        self.refused_while_down = 0

    def _check(self) -> None:
        if time.monotonic() < self.up_at:
            self.refused_while_down += 1
            raise StoreError("injected: Connection refused (clickhouse:8123)")

    def query(self, sql: str, fmt: str = "JSONEachRow") -> str:
        self._check()
        return self.real.query(sql, fmt)

    def execute(self, sql: str) -> None:
        self._check()
        self.real.execute(sql)

    def insert_arrow(self, table: str, data: pa.Table, token: str) -> None:
        self._check()
        if table == "readings" and POISON_SENSOR in data.column("sensor").to_pylist():
            raise StoreError("injected: Code: 53. TYPE_MISMATCH in row")
        self.real.insert_arrow(table, data, token)

    def insert_avro(self, table: str, select: str, container: bytes, token: str) -> None:
        """The sink's fast path (a batch as one Avro file): refused whole while down, and
        whenever the batch holds the poison record, like a server refusing the insert."""
        self._check()
        if table == "readings" and POISON_SENSOR.encode() in container:
            raise StoreError("injected: Code: 53. TYPE_MISMATCH in row")
        self.real.insert_avro(table, select, container, token)

    def close(self) -> None:
        self.real.close()


def reading(i: int, sensor: str = "s-01") -> dict:
    values = {q: float(i % 50) for q in QUANTITIES}
    return {
        "lab": "testlab", "sensor": sensor, "dev_eui": "00000000000000aa",
        "ts": 1_795_000_000_000 + i * 60_000,
        "session": 1, "f_cnt": i, "f_port": 1, "uplink_version": 1, "source": "tts",
        "gateways": [{"id": "gw", "rssi": -80.0, "snr": 5.0, "time": None}],
        "frequency": None, "spreading_factor": None, "payload": b"\x02", "status": 0,
        "calibration": "none", "values": values, "raw_values": values, "flags": {},
    }  # fmt: skip


@pytest.fixture
def broker(tmp_path: Path):
    child, bootstrap = start_tansu(tmp_path / "tansu.log")
    try:
        yield bootstrap
    finally:
        child.stop()


def test_outage_pauses_nothing_lost_poison_row_dead_lettered(broker: str, tmp_path: Path) -> None:
    create_topics(broker, [READINGS, "aggregates", "deadletter"], 2)
    producer = Producer(producer_config(broker))
    enc = codec("reading")
    for i in range(GOOD):
        producer.produce(
            READINGS, key=b"k%d" % (i % 7), value=enc.encode(reading(i)), headers=enc.headers
        )
    producer.produce(
        READINGS, key=b"k1", value=enc.encode(reading(9999, POISON_SENSOR)), headers=enc.headers
    )
    producer.produce(READINGS, key=b"k2", value=b"\xff\x00 not avro")
    producer.flush(10)

    settings = Settings.from_env(kafka=broker, data_dir=tmp_path / "d", clickhouse=None)
    sink = Sink(settings)
    real = sink.store
    sink.store = FlakyStore(real, up_at=time.monotonic() + 9.0)
    thread = threading.Thread(target=sink.run, daemon=True)
    thread.start()
    try:
        time.sleep(7.0)  # the store is still down: nothing may be committed yet
        assert group_lag(broker, SINK_GROUP, [READINGS]) in (-1, GOOD + 2)
        deadline = time.monotonic() + 60
        while group_lag(broker, SINK_GROUP, [READINGS]) != 0:
            assert time.monotonic() < deadline, "the sink did not catch up after the outage"
            time.sleep(0.2)
    finally:
        sink.stopping = True
        thread.join(30)
    assert sink.store.refused_while_down >= 3  # it kept retrying through the outage

    def one(sql: str) -> str:
        return real.query(sql, "TabSeparated").strip()

    assert one("SELECT count() FROM readings FINAL") == str(GOOD * len(QUANTITIES))
    assert one(f"SELECT count() FROM readings FINAL WHERE sensor = '{POISON_SENSOR}'") == "0"
    assert one("SELECT count() FROM uplinks FINAL WHERE sensor = 's-01'") == str(GOOD)
    dead = one("SELECT reason, source FROM deadletter FINAL ORDER BY reason")
    # The refused record's 15 quantity rows, each kept with the reason; the junk record.
    assert dead.splitlines() == ["store_rejected\treadings"] * len(QUANTITIES) + [
        "undecodable\treadings"
    ]
    sink.close()
