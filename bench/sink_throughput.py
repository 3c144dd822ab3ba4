"""Sink throughput into chDB, in reading rows per second (one row per quantity).

Two figures from one run: the whole sink (Avro records already in Kafka -> decode ->
Arrow rows -> insert with dedup tokens -> commit) and the store alone (prepared Arrow
batches -> chDB), so the cost of the Python side is visible.

    python -m bench.sink_throughput [--records N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import Producer

from livinglab.codec.payload import QUANTITIES
from livinglab.config import Settings
from livinglab.kafka import READINGS, create_topics, producer_config
from livinglab.processes import start_tansu
from livinglab.store import ChdbStore, migrate
from schemas import codec
from streams.rows import reading_rows
from streams.sink import MAX_ROWS, Sink


def reading(i: int) -> dict:
    values = {q: 40.0 + (i * 7 + k) % 50 for k, q in enumerate(QUANTITIES)}
    return {
        "lab": f"lab-{i % 7}", "sensor": f"s-{i % 70:02d}", "dev_eui": f"{i % 70:016x}",
        "ts": 1_795_132_800_000 + i * 600, "session": 1, "f_cnt": i, "f_port": 1,
        "uplink_version": 1, "source": "tts",
        "gateways": [{"id": "0102030405060708", "rssi": -90.0, "snr": 7.0, "time": None}],
        "frequency": 868_100_000, "spreading_factor": 7, "payload": bytes(35), "status": 0,
        "calibration": "none", "values": values, "raw_values": values, "flags": {},
    }  # fmt: skip


def store_only(records: list[dict], directory: Path) -> float:
    store = ChdbStore(directory)
    migrate(store)
    batches = [reading_rows(records[i : i + MAX_ROWS]) for i in range(0, len(records), MAX_ROWS)]
    started = time.perf_counter()
    for n, batch in enumerate(batches):
        store.insert_arrow("readings", batch, f"bench:0:{n}")
    elapsed = time.perf_counter() - started
    store.close()
    return sum(b.num_rows for b in batches) / elapsed


def whole_sink(records: list[dict], directory: Path) -> float:
    child, bootstrap = start_tansu(directory / "tansu.log")
    try:
        create_topics(bootstrap, [READINGS, "aggregates", "deadletter"], 4)
        producer = Producer(producer_config(bootstrap))
        enc = codec("reading")
        for r in records:
            producer.produce(
                READINGS, key=r["sensor"].encode(), value=enc.encode(r), headers=enc.headers
            )
            producer.poll(0)
        producer.flush(60)
        sink = Sink(Settings.from_env(kafka=bootstrap, data_dir=directory, clickhouse=None))
        thread = threading.Thread(target=sink.run, daemon=True)
        thread.start()
        stored = sink.records_stored
        while stored[READINGS] == 0:  # group joined, first batch stored
            time.sleep(0.001)
        first, started = stored[READINGS], time.perf_counter()
        while stored[READINGS] < len(records):
            time.sleep(0.005)  # seldom enough to leave the GIL to the sink
        elapsed = time.perf_counter() - started
        rows = (len(records) - first) * len(QUANTITIES)
        sink.stopping = True
        thread.join(30)
        sink.close()
        return rows / elapsed
    finally:
        child.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300_000, help="Reading records")
    args = parser.parse_args()
    records = [reading(i) for i in range(args.records)]
    with tempfile.TemporaryDirectory() as tmp:
        store_rate = store_only(records, Path(tmp) / "store")
        sink_rate = whole_sink(records, Path(tmp) / "sink")
    print(json.dumps({
        "records": args.records,
        "rows": args.records * len(QUANTITIES),
        "store_only_rows_per_s": round(store_rate),
        "whole_sink_rows_per_s": round(sink_rate),
        "target_rows_per_s": 500_000,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
