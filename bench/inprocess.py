"""Our processing alone, without Faust or Kafka: `PartitionProcessor` driven the way the
worker (streams/app.py) drives it: batches, split by partition, outputs taken, changed
state serialised for the changelog. Two uses:

- the processor-only rate on the throughput input, which splits the worker's cost into
  our processing and the runtime around it;
- the memory run (`python -m bench.inprocess RECORDS_FILE UNITS`, a child process so
  that its RSS is the state's): 100,000 one-minute units whose input crosses an hour, so
  every unit has a closed hour and an open one, then extra closed hours added per unit
  to measure what one more closed hour costs in memory, and from that a whole day's.
"""

from __future__ import annotations

import gc
import json
import os
import struct
import sys
import time
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from bench.measure import peak_rss_mib
from bench.workload import Record, registry_document
from livinglab.registry import Registry, parse_registry
from schemas import codec
from streams.app import BATCH
from streams.processor import PartitionProcessor

_LENGTHS = struct.Struct("<II")
EXTRA_HOURS = 3  # closed hours added per unit to measure the cost of one
DAY_HOURS = 24


def drive(
    registry: Registry, records: Iterable[Record], partitions: int = 4, lateness_ms: int = 900_000
) -> tuple[dict[str, Any], int]:
    """Process everything; returns the per-device state mapping and the outputs' count."""
    devices: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    offsets = [0] * partitions
    outputs = 0
    for batch in _batches(records):
        by_partition: dict[int, list[tuple[int, Record]]] = defaultdict(list)
        for record in batch:
            p = zlib.crc32(record.key) % partitions
            by_partition[p].append((offsets[p], record))
            offsets[p] += 1
        for p, items in by_partition.items():
            proc = PartitionProcessor(
                registry=registry, partition=p, devices=devices, meta=meta, lateness_ms=lateness_ms
            )
            for offset, record in items:
                proc.handle(offset, record.key, record.value, record.headers)
            proc.end_batch()
            produced, dirty = proc.take()
            outputs += len(produced)
            for key in dirty:  # the worker serialises changed state for its changelog
                json.dumps(devices.get(key), separators=(",", ":"))
    return devices, outputs


def _batches(records: Iterable[Record]) -> Iterator[list[Record]]:
    batch: list[Record] = []
    for record in records:
        batch.append(record)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def processor_rate(registry: Registry, records: list[Record]) -> dict[str, Any]:
    started = time.perf_counter()
    devices, outputs = drive(registry, records)
    seconds = time.perf_counter() - started
    return {
        "uplinks_per_s": round(len(records) / seconds),
        "outputs": outputs,
        "state_entries": len(devices),
    }


def write_records(path: Path, records: Iterable[Record]) -> None:
    """Records for the memory run's child process (all uplinks share the schema header)."""
    with path.open("wb") as out:
        for record in records:
            out.write(_LENGTHS.pack(len(record.key), len(record.value)))
            out.write(record.key)
            out.write(record.value)


def read_records(path: Path) -> Iterator[Record]:
    headers = codec("uplink").headers
    with path.open("rb") as data:
        while head := data.read(_LENGTHS.size):
            key_len, value_len = _LENGTHS.unpack(head)
            yield Record(data.read(key_len), data.read(value_len), headers)


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def memory_run(records_file: Path, units: int) -> dict[str, Any]:
    """See the module doc. Lateness 0: each hour closes as soon as the next one starts,
    which gives the state of a late-running day without simulating the whole day."""
    registry = parse_registry(registry_document(units, gateways=1), Path("<memory run>"))
    gc.collect()
    baseline = rss_mib()
    started = time.perf_counter()
    devices, _ = drive(registry, read_records(records_file), lateness_ms=0)
    seconds = time.perf_counter() - started
    gc.collect()
    with_state, peak = rss_mib(), peak_rss_mib(os.getpid())
    closed = [k for k in devices if k.count("/") == 2 and k.split("/")[1] == "3600"]
    units_with = {k.split("/")[0] for k in closed}
    open_hours = sum(len(v.get("w", {})) for v in devices.values() if isinstance(v, dict))
    for key in closed:  # more closed hours of the same size, as a day's would be
        dev_eui, size, start = key.split("/")
        for h in range(1, EXTRA_HOURS + 1):
            value = devices[key]
            devices[f"{dev_eui}/{size}/{int(start) - h * 3_600_000}"] = value[:-1] + value[-1:]
    gc.collect()
    per_hour = (rss_mib() - with_state) * 2**20 / (len(closed) * EXTRA_HOURS) if closed else 0
    day_mib = with_state + units * (DAY_HOURS - 1) * per_hour / 2**20
    return {
        "units": units,
        "uplinks": sum(1 for _ in read_records(records_file)),
        "seconds": round(seconds, 1),
        "units_with_closed_hour": len(units_with),
        "open_windows": open_hours,
        "rss_baseline_mib": round(baseline, 1),
        "rss_with_state_mib": round(with_state, 1),
        "state_mib": round(with_state - baseline, 1),
        "peak_rss_mib": peak,
        "closed_hour_bytes_in_memory": round(per_hour),
        "closed_hour_serialised_bytes": round(sum(len(devices[k]) for k in closed) / len(closed))
        if closed
        else None,
        "projected_rss_full_day_mib": round(day_mib),
    }


if __name__ == "__main__":
    print(json.dumps(memory_run(Path(sys.argv[1]), int(sys.argv[2]))))
