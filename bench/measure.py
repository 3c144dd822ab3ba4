"""What the harness measures from outside the contenders: when outputs appear, when the
sink has stored them, and the peak memory of processes.

Times are wall-clock seconds (`time.time()`), so marks taken in different processes
on this machine compare directly.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import Consumer, TopicPartition

from livinglab.kafka import consumer_config

Frame = tuple[str, int]  # (dev_eui, f_cnt): what identifies an uplink across contenders


def percentiles(samples_ms: Iterable[float]) -> dict[str, float | None]:
    values = np.fromiter(samples_ms, dtype=np.float64)
    n = int(values.size)
    if n == 0:
        return {"p50": None, "p99": None, "max": None, "n": 0}
    p50, p99 = np.percentile(values, [50, 99])
    return {"p50": round(p50, 1), "p99": round(p99, 1), "max": round(values.max(), 1), "n": n}


def _tree(pid: int) -> list[int]:
    """The process and its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(c) for c in children.read_text().split()]
            except OSError:
                pass
    return found


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process and its children, added up, in MiB.
    Read it before the process exits."""
    total_kib = 0
    for member in _tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total_kib += int(line.split()[1])
    return round(total_kib / 1024, 1)


class Observer(threading.Thread):
    """Reads an output topic from the start with its own group and notes when each record
    arrived; with `frame_of` also which uplink each record came from, and where it sits."""

    def __init__(
        self, broker: str, topic: str, frame_of: Callable[[bytes], Frame | None] | None = None
    ) -> None:
        super().__init__(daemon=True, name=f"observe-{topic}")
        self.consumer = Consumer(
            consumer_config(broker, f"bench-observer-{topic}", **{"fetch.wait.max.ms": 10})
        )
        self.consumer.subscribe([topic])
        self.frame_of = frame_of
        self.arrivals: list[float] = []
        self.first_seen: dict[Frame, float] = {}
        self.position: dict[Frame, tuple[int, int]] = {}  # partition, offset of first record
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            messages = self.consumer.consume(num_messages=10_000, timeout=0.05)
            now = time.time()
            for msg in messages:
                if msg.error():
                    continue
                self.arrivals.append(now)
                frame = self.frame_of(msg.value()) if self.frame_of else None
                if frame is not None and frame not in self.first_seen:
                    self.first_seen[frame] = now
                    self.position[frame] = (msg.partition(), msg.offset())
        self.consumer.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(10)

    def idle_for(self) -> float:
        """Seconds since the last record arrived (infinite before the first)."""
        return time.time() - self.arrivals[-1] if self.arrivals else float("inf")


class CommitWatch(threading.Thread):
    """Polls a consumer group's committed offsets on a topic: our sink commits only after
    ClickHouse acknowledged, so a committed offset past a record means it is stored."""

    def __init__(self, broker: str, group: str, topic: str, partitions: int, every_s: float = 0.05):
        super().__init__(daemon=True, name=f"commits-{group}")
        self.consumer = Consumer(consumer_config(broker, group))
        self.tps = [TopicPartition(topic, p) for p in range(partitions)]
        self.every_s = every_s
        self.history: dict[int, tuple[list[int], list[float]]] = {
            p: ([], []) for p in range(partitions)
        }
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.every_s):
            try:
                committed = self.consumer.committed(self.tps, timeout=5)
            except Exception:  # the group is not known yet: nothing committed
                continue
            now = time.time()
            for tp in committed:
                offsets, times = self.history[tp.partition]
                if tp.offset >= 0 and (not offsets or tp.offset > offsets[-1]):
                    offsets.append(tp.offset)
                    times.append(now)
        self.consumer.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(10)

    def stored_at(self, partition: int, offset: int) -> float | None:
        """When the commit first covered this record, None if it never did."""
        offsets, times = self.history[partition]
        i = bisect.bisect_right(offsets, offset)
        return times[i] if i < len(offsets) else None


def latencies_ms(
    produced: dict[Frame, float], arrived: Callable[[Frame], float | None]
) -> tuple[dict[str, Any], int]:
    """Latency percentiles over the produced frames, and how many never arrived."""
    samples, missing = [], 0
    for frame, at in produced.items():
        seen = arrived(frame)
        if seen is None:
            missing += 1
        else:
            samples.append((seen - at) * 1000)
    return percentiles(samples), missing


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process and its children so far, in seconds: with
    the peak RSS, where a contender's work went (worker, sink) on the shared cores."""
    ticks = 0
    for member in _tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return round(ticks / os.sysconf("SC_CLK_TCK"), 2)
