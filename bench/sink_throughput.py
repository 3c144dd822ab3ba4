"""Sink throughput into chDB, in reading rows per second (one row per quantity).

Two figures from one run: the whole sink (Avro records already in Kafka -> decode ->
Arrow rows -> insert with dedup tokens -> commit) and the store alone (prepared Arrow
batches -> chDB), so the cost of the Python side is visible.

With `--fleet`, the sink alone on what our worker makes of `python -m bench`'s
throughput input (readings with their gateway lists and late copies, aggregates), with
the CPU seconds of the sink and of the broker: how fast the rest of the pipeline goes
when the worker takes nothing from the two cores, in uplinks/s.

    python -m bench.sink_throughput [--records N]
    python -m bench.sink_throughput --fleet [--uplinks N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from bench.inprocess import drive
from bench.measure import cpu_seconds
from bench.workload import COPIES_PER_FRAME, simulate, synthetic_registry
from livinglab.codec.payload import QUANTITIES
from livinglab.config import Settings
from livinglab.kafka import (
    AGGREGATES,
    DEADLETTER,
    READINGS,
    create_topics,
    produce,
    producer_config,
)
from livinglab.processes import start_tansu
from livinglab.store import ChdbStore, migrate
from schemas import codec
from streams.processor import Output
from streams.rows import reading_rows
from streams.sink import MAX_ROWS, Sink

TIMEOUT_S = 600.0  # for the sink to store everything


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


def synthetic_messages(records: list[dict]) -> list[Output]:
    enc = codec("reading")
    return [(READINGS, r["sensor"].encode(), enc.encode(r), enc.headers) for r in records]


def fleet_messages(units: int, uplinks: int, directory: Path) -> tuple[list[Output], int]:
    """What our worker sends the sink for the throughput input of `python -m bench`
    (its synthetic fleet, made by the processor without Kafka); and the uplinks it took."""
    directory.mkdir(parents=True, exist_ok=True)
    registry = synthetic_registry(units, directory / "registry.yaml")
    records = simulate(registry, uplinks / (units * COPIES_PER_FRAME) + 2).records[:uplinks]
    messages: list[Output] = []
    states, _ = drive(registry, records, directory / "state", collect=messages)
    for state in states.values():
        state.close()
    return messages, len(records)


def whole_sink(messages: list[Output], directory: Path) -> dict[str, Any]:
    """Produce the messages, then time the sink (in a thread of this process) from its
    first stored batch of readings until it has stored every message; with the CPU
    seconds of this process (the sink, chDB's threads) and the broker's meanwhile, and
    the broker's for taking in all the messages before."""
    child, bootstrap = start_tansu(directory / "tansu.log")
    try:
        create_topics(bootstrap, [READINGS, AGGREGATES, DEADLETTER], 4)
        producer = Producer(producer_config(bootstrap))
        expected: dict[str, int] = defaultdict(int)
        taking_in = cpu_seconds(child.proc.pid)
        for topic, key, value, headers in messages:
            produce(producer, topic, key, value, headers)
            expected[topic] += 1
        producer.flush(60)
        taking_in = cpu_seconds(child.proc.pid) - taking_in
        sink = Sink(Settings.from_env(kafka=bootstrap, data_dir=directory, clickhouse=None))
        thread = threading.Thread(target=sink.run, daemon=True)
        thread.start()
        stored, deadline = sink.records_stored, time.monotonic() + TIMEOUT_S
        while stored[READINGS] == 0:  # group joined, first batch stored
            _before(deadline, thread, "no readings stored")
            time.sleep(0.001)
        first, started = stored[READINGS], time.perf_counter()
        cpu = {"sink": cpu_seconds(os.getpid()), "broker": cpu_seconds(child.proc.pid)}
        while any(stored[topic] < n for topic, n in expected.items()):
            _before(deadline, thread, f"stored {dict(stored)} of {dict(expected)}")
            time.sleep(0.005)  # seldom enough to leave the GIL to the sink
        seconds = time.perf_counter() - started
        cpu = {
            "sink": round(cpu_seconds(os.getpid()) - cpu["sink"], 2),
            "broker": round(cpu_seconds(child.proc.pid) - cpu["broker"], 2),
        }
        sink.stopping = True
        thread.join(30)
        sink.close()
        cpu["broker_taking_in_all"] = round(taking_in, 2)
        return {"timed_readings": expected[READINGS] - first, "seconds": seconds, "cpu": cpu}
    finally:
        child.stop()


def fleet_report(messages: list[Output], uplinks: int, sink: dict[str, Any]) -> dict[str, Any]:
    """Rates in uplinks/s (the readings timed, scaled by the input's uplinks per reading)
    and CPU per uplink; no rates when the sink's first batch took everything."""
    readings = sum(1 for m in messages if m[0] == READINGS)
    report: dict[str, Any] = {
        "input": "fleet",
        "uplinks": uplinks,
        "messages": len(messages),
        "readings": readings,
        "cpu_seconds": sink["cpu"],
        "whole_sink_uplinks_per_s": None,
        "cpu_us_per_uplink": None,
    }
    timed = sink["timed_readings"] * uplinks / readings  # the uplinks behind them
    if timed == 0:
        print("the sink's first batch took everything: too few uplinks to time", file=sys.stderr)
        return report
    report["whole_sink_uplinks_per_s"] = round(timed / sink["seconds"])
    report["cpu_us_per_uplink"] = {
        "sink": round(sink["cpu"]["sink"] * 1e6 / timed, 1),
        "broker": round(sink["cpu"]["broker"] * 1e6 / timed, 1),
        "broker_taking_in": round(sink["cpu"]["broker_taking_in_all"] * 1e6 / uplinks, 1),
    }
    return report


def _before(deadline: float, thread: threading.Thread, what: str) -> None:
    if not thread.is_alive():
        raise SystemExit(f"the sink stopped: {what}")
    if time.monotonic() > deadline:
        raise SystemExit(f"the sink took over {TIMEOUT_S:.0f} s: {what}")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sink_throughput", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--records", type=int, default=300_000, help="synthetic Reading records")
    parser.add_argument(
        "--fleet",
        action="store_true",
        help="instead: the readings and aggregates our worker makes of `python -m bench`'s "
        "throughput input (2,000 units, 150,000 uplinks); the whole sink only",
    )
    parser.add_argument("--uplinks", type=int, default=150_000, help="uplinks with --fleet")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.fleet:
            messages, uplinks = fleet_messages(2_000, args.uplinks, Path(tmp) / "fleet")
            report = fleet_report(messages, uplinks, whole_sink(messages, Path(tmp) / "sink"))
        else:
            records = [reading(i) for i in range(args.records)]
            store_rate = store_only(records, Path(tmp) / "store")
            sink = whole_sink(synthetic_messages(records), Path(tmp) / "sink")
            report = {
                "records": args.records,
                "rows": args.records * len(QUANTITIES),
                "store_only_rows_per_s": round(store_rate),
                "whole_sink_rows_per_s": round(
                    sink["timed_readings"] * len(QUANTITIES) / sink["seconds"]
                ),
                "target_rows_per_s": 500_000,
            }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
