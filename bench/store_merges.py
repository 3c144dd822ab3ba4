"""What the merge settings of schemas/clickhouse/005_merges.sql save, side by side with
ClickHouse's defaults: the sink's insert pattern (a few hundred Reading records a few
times a second, each batch one Avro container into `readings` and `uplinks`, which also
fills `readings_daily`) into a fresh chDB store, once per variant, each in its own process
so that one variant's background merges do not land in the other's CPU time.

    python -m bench.store_merges [--inserts N] [--readings-per-insert N] [--interval S]

Per variant: CPU of the process per reading (inserts and background merges, until
`--settle` seconds after the last insert), rows read by merges per row inserted (the
engine's own counters), insert time, active parts and their highest level at the end.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.measure import cpu_seconds, percentiles
from bench.sink_throughput import reading
from livinglab.store import ChdbStore, migrate
from schemas import codec
from streams.rows import FROM_AVRO

TABLES = ("readings", "uplinks", "readings_daily")  # what a batch of readings writes
SETTINGS = (
    "merge_selector_base",
    "min_age_to_force_merge_seconds",
    "min_age_to_force_merge_on_partition_only",
)


def _rows(store: ChdbStore, sql: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in store.query(sql, "JSONEachRow").splitlines() if line]


def run_variant(
    defaults: bool, inserts: int, per_insert: int, interval: float, settle: float
) -> dict[str, Any]:
    """One store, `inserts` paced inserts; the figures of this variant."""
    avro = codec("reading")
    batches = [
        avro.container([avro.encode(reading(i * per_insert + j)) for j in range(per_insert)])
        for i in range(inserts)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        store = ChdbStore(Path(tmp))
        migrate(store)
        if defaults:
            for table in TABLES:
                store.execute(f"ALTER TABLE {table} RESET SETTING {', '.join(SETTINGS)}")
        took: list[float] = []
        cpu, start = cpu_seconds(os.getpid()), time.monotonic()  # merge threads included
        for n, container in enumerate(batches):
            began = time.perf_counter()
            for table, select in FROM_AVRO["readings"].items():
                store.insert_avro(table, select, container, f"bench:{n}:{table}")
            took.append((time.perf_counter() - began) * 1000)
            time.sleep(max(0.0, start + (n + 1) * interval - time.monotonic()))
        time.sleep(settle)
        cpu = cpu_seconds(os.getpid()) - cpu
        parts = _rows(
            store,
            "SELECT table, count() AS active_parts, max(level) AS top_level FROM system.parts "
            f"WHERE database = currentDatabase() AND active AND table IN {TABLES} GROUP BY table",
        )
        # Counters of this process since it started: the variant's store is its only one.
        events = {
            e["event"]: int(e["value"])
            for e in _rows(
                store,
                "SELECT event, value FROM system.events "
                "WHERE event IN ('InsertedRows', 'MergedRows')",
            )
        }
        store.close()
    return {
        "cpu_us_per_reading": round(cpu / (inserts * per_insert) * 1e6, 1),
        "cpu_seconds": round(cpu, 2),
        "insert_ms": percentiles(took),
        # rows read by background merges per row inserted (all three tables)
        "merged_rows_per_inserted_row": round(
            events.get("MergedRows", 0) / max(events.get("InsertedRows", 0), 1), 2
        ),
        "tables": {
            p["table"]: {"active_parts": int(p["active_parts"]), "top_level": int(p["top_level"])}
            for p in parts
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inserts", type=int, default=100, help="paced inserts per variant")
    parser.add_argument("--readings-per-insert", type=int, default=800, help="batch size")
    parser.add_argument("--interval", type=float, default=0.15, help="seconds between inserts")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds measured after")
    args = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")
    variants: dict[str, Any] = {}
    for name, defaults in (("clickhouse_defaults", True), ("ours", False)):
        with spawn.Pool(1) as pool:
            variants[name] = pool.apply(
                run_variant,
                (defaults, args.inserts, args.readings_per_insert, args.interval, args.settle),
            )
    ours, peer = variants["ours"]["cpu_us_per_reading"], variants["clickhouse_defaults"]
    print(json.dumps({
        "inserts": args.inserts,
        "readings_per_insert": args.readings_per_insert,
        "interval_s": args.interval,
        "variants": variants,
        "cpu_ours_vs_defaults": round(ours / max(peer["cpu_us_per_reading"], 1e-9), 2),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
