"""Our processing alone, without Kafka: `PartitionProcessor` driven the way the worker
(streams/uplink_worker.py) drives it: batches, split by partition, state in the worker's
layout (streams/state_store.py), outputs taken, changed state serialised for the
changelog after every batch (the worker does that at its checkpoints, which span one
or more batches, so this is the higher cost). Two uses:

- the processor-only rate on the throughput input, which splits the worker's cost into
  our processing and the runtime around it;
- the memory run (`python -m bench.inprocess RECORDS_FILE UNITS INTERVAL_S`, a child
  process so that its RSS is the state's): the RSS before and after the state of UNITS
  units is built from the records (written by `bench.__main__.memory_run`).
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
from streams.processor import Output, PartitionProcessor
from streams.state_store import TieredState
from streams.uplink_worker import BATCH, state_bytes, tune_gc

_LENGTHS = struct.Struct("<II")
PARTITIONS = 4  # of lorawan.uplinks, as in `python -m bench`


def drive(
    registry: Registry,
    records: Iterable[Record],
    workdir: Path,
    partitions: int = PARTITIONS,
    collect: list[Output] | None = None,
    batch: int = BATCH,
) -> tuple[dict[int, TieredState], int]:
    """Process everything into the worker's state layout (device entries in memory,
    closed windows in RocksDB under `workdir`) in batches of `batch` records; returns the
    states and the outputs' count, and appends the outputs to `collect` if given. The
    caller closes the states."""
    tune_gc()  # as the worker process does
    states = {p: TieredState(workdir / f"p{p}") for p in range(partitions)}
    meta: dict[str, Any] = {}
    offsets = [0] * partitions
    outputs = 0

    def step(p: int, items: list[tuple[int, Record]]) -> bool:
        """One partition's batch (or, without input, more of its queued closes); whether
        closes are still queued."""
        nonlocal outputs
        proc = PartitionProcessor(registry=registry, partition=p, devices=states[p], meta=meta)
        if items or proc.pending:
            for offset, record in items:
                proc.handle(offset, record.key, record.value, record.headers)
            proc.end_batch()
            produced, dirty = proc.take()
            outputs += len(produced)
            if collect is not None:
                collect.extend(produced)
            for key in dirty:  # the worker serialises changed state for its changelog
                state_bytes(states[p].get(key))
        return proc.pending

    for records_of_batch in _batches(records, batch):
        by_partition: dict[int, list[tuple[int, Record]]] = defaultdict(list)
        for record in records_of_batch:
            p = partition_of(record.key, partitions)
            by_partition[p].append((offsets[p], record))
            offsets[p] += 1
        for p in states:
            step(p, by_partition[p])
    while any([step(p, []) for p in states]):  # the worker goes on with them when idle
        pass
    return states, outputs


def partition_of(key: bytes, partitions: int = PARTITIONS) -> int:
    """The partition of `lorawan.uplinks` a key goes to (librdkafka's default
    partitioner for keyed records is consistent_random: CRC32 of the key)."""
    return zlib.crc32(key) % partitions


def _batches(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    batch: list[Record] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def processor_rate(
    registry: Registry, records: list[Record], workdir: Path, collect: list[Output] | None = None
) -> dict[str, Any]:
    """Our processing's rate on `records`; its outputs go to `collect` if given."""
    started = time.perf_counter()
    states, outputs = drive(registry, records, workdir, collect=collect)
    seconds = time.perf_counter() - started
    entries = sum(len(state) for state in states.values())
    for state in states.values():
        state.close()
    return {
        "uplinks_per_s": round(len(records) / seconds),
        "outputs": outputs,
        "state_entries": entries,
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


def memory_run(records_file: Path, units: int, interval_s: int) -> dict[str, Any]:
    """See the module doc: the RSS before and after the state is built."""
    document = registry_document(units, gateways=1, interval_s=interval_s)
    registry = parse_registry(document, Path("<memory run>"))
    gc.collect()
    baseline = rss_mib()
    started = time.perf_counter()
    states, _ = drive(registry, read_records(records_file), records_file.parent / "state")
    seconds = time.perf_counter() - started
    gc.collect()
    with_state = rss_mib()
    entries = sum(len(state) for state in states.values())
    hot = sum(len(state.hot) for state in states.values())
    serialised = sum(len(state_bytes(state[k])) for state in states.values() for k in state)
    on_disk = sum(
        f.stat().st_size for f in (records_file.parent / "state").rglob("*") if f.is_file()
    )
    for state in states.values():
        state.close()
    return {
        "units": units,
        "uplink_interval_s": interval_s,
        "uplinks": sum(1 for _ in read_records(records_file)),
        "seconds": round(seconds, 1),
        "state_entries": entries,
        "state_entries_in_memory": hot,
        "state_on_disk_mib": round(on_disk / 2**20, 1),
        "state_serialised_mib": round(serialised / 2**20, 1),
        "rss_baseline_mib": round(baseline, 1),
        "rss_with_state_mib": round(with_state, 1),
        "state_mib": round(with_state - baseline, 1),
        "state_bytes_per_unit": round((with_state - baseline) * 2**20 / units),
        "peak_rss_mib": peak_rss_mib(os.getpid()),
    }


if __name__ == "__main__":
    print(json.dumps(memory_run(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))))
