"""Our processing in two processes against one, without Kafka: does it scale out when it
has the cores?

`python -m bench`'s scale-out run puts two workers, the sink (chDB), the broker (Tansu)
and the harness on the same two cores, so the second worker mostly takes CPU from the
first. Here each process runs the worker's processing (`bench.inprocess.drive`: dedup,
decode, windows, outputs, changed state serialised) on its share of the partitions of
the same input, with nothing else running: the processes hold no state in common, so
this is how far the worker's own work scales with processes on this machine. Each
process reads its records first and starts when all are ready; the rate is all uplinks
over the time from the first start to the last end. Batches hold as many records per
partition as in one process.

    python -m bench.processor_scaling REGISTRY RECORDS SHARE   (a child, SHARE = i/n;
                                                                the harness starts them)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.inprocess import PARTITIONS, drive, partition_of, read_records, write_records
from bench.workload import Record
from livinglab.processes import python_module
from livinglab.registry import load_registry
from streams.uplink_worker import BATCH

TIMEOUT_S = 900.0


def scaling(registry_path: Path, records: list[Record], workdir: Path) -> dict[str, Any]:
    """One process on every partition, then two on half each, on the same records."""
    records_file = workdir / "scaling.records"
    write_records(records_file, records)
    one = _run(registry_path, records_file, 1)
    two = _run(registry_path, records_file, 2)
    return {
        "one_process": one,
        "two_processes": two,
        "two_vs_one_x": round(two["uplinks_per_s"] / one["uplinks_per_s"], 2),
    }


def _run(registry_path: Path, records_file: Path, processes: int) -> dict[str, Any]:
    argv = [str(registry_path), str(records_file)]
    children = [
        subprocess.Popen(
            python_module("bench.processor_scaling", *argv, f"{i}/{processes}"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(processes)
    ]
    try:
        for child in children:  # each has read its share
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a processing child exited early ({child.wait()})")
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        results = [_result(child) for child in children]
    finally:
        for child in children:
            child.kill()
    seconds = max(r["ended"] for r in results) - min(r["started"] for r in results)
    uplinks = sum(r["uplinks"] for r in results)
    return {
        "processes": processes,
        "uplinks": uplinks,
        "seconds": round(seconds, 2),
        "uplinks_per_s": round(uplinks / seconds),
        "per_process_uplinks_per_s": [round(r["uplinks"] / r["seconds"]) for r in results],
    }


def _result(child: subprocess.Popen) -> dict[str, Any]:
    """A child's figures once it has exited; a clear error if it failed instead."""
    line = child.stdout.readline()
    code = child.wait(TIMEOUT_S)
    if code != 0 or not line:
        raise RuntimeError(f"a processing child failed (exit {code}); its error is above")
    return json.loads(line)


def child(registry_path: Path, records_file: Path, share: str) -> dict[str, Any]:
    """Process the records of partitions p with p % n == i (SHARE = i/n)."""
    i, n = (int(x) for x in share.split("/"))
    registry = load_registry(registry_path)
    mine = [r for r in read_records(records_file) if partition_of(r.key) % n == i]
    owned = sum(1 for p in range(PARTITIONS) if p % n == i)
    print("ready", flush=True)
    sys.stdin.readline()
    with tempfile.TemporaryDirectory(prefix="livinglab-scaling-") as tmp:
        started = time.time()
        states, outputs = drive(registry, mine, Path(tmp), batch=BATCH * owned // PARTITIONS)
        ended = time.time()
        for state in states.values():
            state.close()
    return {
        "uplinks": len(mine),
        "outputs": outputs,
        "started": started,
        "ended": ended,
        "seconds": ended - started,
    }


if __name__ == "__main__":
    print(json.dumps(child(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])), flush=True)
