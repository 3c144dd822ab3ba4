"""One trial per contender, each on a fresh Tansu broker holding the same input.

A fresh broker per contender because our worker's group, topics and state tables have
fixed names; the input records are the same bytes every time.

Throughput: the first part of the input is produced into `lorawan.uplinks` before the
contender starts. Its rate is taken from the moment 10 % of its readings had appeared
to the end (ours: the sink has committed everything, i.e. it is in ClickHouse; peers:
their last reading; bare: its last record), so start-up and group joins are left out
and the same share of the input is timed for everyone.

Latency: then, with the contender warm and idle, the rest of the input (the simulated
time that follows) is produced at a fixed rate. A frame's latency runs from its first
copy being produced to its reading being in ClickHouse (ours: covered by the sink's
commit), in the output topic (peers), or to the record being consumed (bare).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic

from bench.contenders import BARE, Broker, Contender, ours_stack, peer_dir, start_peer
from bench.contenders.bare import READY, RESULT
from bench.measure import (
    CommitWatch,
    Frame,
    Observer,
    cpu_seconds,
    latencies_ms,
    peak_rss_mib,
)
from bench.workload import Uplinks, produce_all, send
from livinglab.kafka import (
    READINGS,
    SINK_GROUP,
    UPLINKS,
    create_topics,
    group_lag,
    new_producer,
    topics_for,
)
from livinglab.processes import start_tansu
from livinglab.registry import Registry

QUIET_S = 2.0  # a peer is done when its group committed everything and it went quiet
DRAIN_S = 20.0  # how long a latency run waits for the last frames after producing
# The paced producer sleeps only once it is this far ahead (a burst of 25 uplinks at
# 5,000/s): sleeping before every record took a fifth of a core from the contenders.
# Each frame's clock starts when it is actually produced.
PACE_SLACK_S = 0.005


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Plan:
    """The input split into the throughput part and the paced part, and the pace."""

    uplinks: Uplinks
    preloaded: int
    rate: int
    timeout_s: float

    @property
    def paced(self) -> list[tuple[Any, Frame]]:
        return list(zip(self.uplinks.records, self.uplinks.frames))[self.preloaded :]


@contextmanager
def fresh_broker(
    workdir: Path,
    partitions: int,
    registry: Registry,
    registry_path: Path,
    extra: list[str],
    keep: bool = False,
) -> Iterator[Broker]:
    """A memory-only Tansu broker with the platform's topics and the peers' outputs;
    `workdir` (logs, state) is removed afterwards unless `keep`.

    The input topic states its retention: Quix Streams derives its changelog topics'
    settings from it, and Tansu only describes settings given at creation."""
    workdir.mkdir(parents=True, exist_ok=True)
    tansu, bootstrap = start_tansu(workdir / "logs" / "tansu.log")
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(UPLINKS, partitions, 1, config={"retention.ms": "-1"})])[
            UPLINKS
        ].result()
        topics = [*topics_for(lab.id for lab in registry.labs), *extra]
        create_topics(bootstrap, topics, partitions)
        yield Broker(bootstrap, partitions, registry, registry_path, workdir, tansu.proc.pid)
    finally:
        tansu.kill()  # memory-only: nothing to shut down cleanly
        tansu.stop()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Running:
    """A started contender: its processes and how to tell that it is still healthy."""

    contender: Contender
    pids: dict[str, int]
    check: Callable[[], None]
    stack: Any = None
    rss: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)

    def record_rss(self) -> None:
        """Peak RSS and CPU seconds (throughput and latency parts together) per process."""
        self.rss = {name: peak_rss_mib(pid) for name, pid in self.pids.items()}
        self.rss["total"] = round(sum(self.rss.values()), 1)
        self.cpu = {name: cpu_seconds(pid) for name, pid in self.pids.items()}


@contextmanager
def running(contender: Contender, b: Broker, expect: int, preloaded: int) -> Iterator[Running]:
    """The contender's processes from start to end; their peak RSS is read at the end.
    They are killed, not stopped: a graceful shutdown is not part of what is measured."""
    if contender.is_ours:
        with ours_stack(contender, b) as stack:
            pids = {c.name: c.proc.pid for c in stack.children}
            run = Running(contender, pids, stack.check_alive, stack=stack)
            yield run
            run.record_rss()
            for child in stack.children:
                child.kill()
        return
    child = start_peer(contender, b, expect, preloaded)

    def check() -> None:
        if not child.alive() and contender is not BARE:
            raise RuntimeError(f"{contender.name} stopped:\n{child.tail()}")

    run = Running(contender, {contender.name: child.proc.pid}, check)
    try:
        yield run
        run.record_rss()
    finally:
        child.kill()
        child.stop()  # closes its log


def wait_done(run: Running, b: Broker, observer: Observer | None, timeout: float) -> bool:
    """Block until the contender has worked through everything produced so far."""
    if run.stack is not None:
        try:
            run.stack.wait_drained(timeout)
            return True
        except TimeoutError:
            return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.check()
        if run.contender is BARE:
            if (peer_dir(BARE, b) / READY).exists():
                return True
        elif observer.arrivals and observer.idle_for() > QUIET_S:
            if not group_lag(b.kafka, run.contender.group, [UPLINKS]):
                return True
        time.sleep(0.2)
    return False


def trial(contender: Contender, b: Broker, plan: Plan) -> dict[str, Any]:
    """Throughput, then latency at the plan's rate, of one contender on its own broker."""
    records = plan.uplinks.records
    producer = new_producer(b.kafka)
    produce_all(producer, UPLINKS, records[: plan.preloaded])
    broker_cpu = cpu_seconds(b.pid)  # taking the input in is not the contender's work
    observer = Observer(b.kafka, contender.output, contender.frame_of) if contender.output else None
    commits = (
        CommitWatch(b.kafka, SINK_GROUP, READINGS, b.partitions) if contender.is_ours else None
    )
    for thread in (observer, commits):
        if thread:
            thread.start()
    log(f"{contender.name}: throughput over {plan.preloaded} uplinks")
    with running(contender, b, len(records), plan.preloaded) as run:
        finished = wait_done(run, b, observer, plan.timeout_s)
        done_at = time.time()
        left = 0 if finished else group_lag(b.kafka, contender.group, [UPLINKS])
        rates = _rates(contender, b, plan, observer, done_at, left)
        result: dict[str, Any] = {"throughput": {**rates, "finished": finished}}
        if finished and contender.paced:
            log(f"{contender.name}: latency at {plan.rate} uplinks/s")
            result["latency"] = _paced(contender, b, plan, run, producer, observer, commits)
    for thread in (observer, commits):
        if thread:
            thread.stop()
    result["peak_rss_mib"] = run.rss
    result["cpu_seconds"] = {**run.cpu, "broker": round(cpu_seconds(b.pid) - broker_cpu, 2)}
    if contender is BARE:
        peak = json.loads((peer_dir(BARE, b) / RESULT).read_text())["peak_rss_mib"]
        result["peak_rss_mib"] = {"bare": peak, "total": peak}
    return result


def _rates(
    contender: Contender,
    b: Broker,
    plan: Plan,
    observer: Observer | None,
    done_at: float,
    left: int,
) -> dict[str, Any]:
    """Rates over the last 90 % of the preloaded input (see the module doc). A run stopped
    by the timeout counts the uplinks its group had committed (`left` still to go);
    `readings_per_s` is the rate at which readings reached the output topic."""
    readings_per_s = None
    if contender is BARE:
        marks = json.loads((peer_dir(BARE, b) / READY).read_text())
        at10, end, readings = marks["at10"], marks["last"], None
    else:
        arrivals = list(observer.arrivals)
        if len(arrivals) < 10:
            return {"uplinks_per_s": None, "readings_per_s": None, "readings": len(arrivals)}
        readings, at10 = len(arrivals), arrivals[len(arrivals) // 10]
        readings_per_s = round((readings - readings // 10) / max(arrivals[-1] - at10, 1e-3))
        end = done_at if contender.is_ours or left else arrivals[-1]
    seconds = max(end - at10, 1e-3)  # tiny inputs may arrive in one poll
    uplinks = plan.preloaded - left - plan.preloaded // 10 if left >= 0 else None
    return {
        "uplinks_per_s": round(uplinks / seconds) if uplinks else None,
        "readings_per_s": readings_per_s,
        "readings": readings,
        "timed_seconds": round(seconds, 2),
    }


def _paced(
    contender: Contender,
    b: Broker,
    plan: Plan,
    run: Running,
    producer: Any,
    observer: Observer | None,
    commits: CommitWatch | None,
) -> dict[str, Any]:
    """Produce the rest of the input at the plan's rate; latency per frame."""
    seen_before = set(plan.uplinks.frames[: plan.preloaded])
    produced: dict[Frame, float] = {}
    paced = plan.paced
    started = time.time()
    for i, (record, frame) in enumerate(paced):
        delay = started + i / plan.rate - time.time()
        if delay > PACE_SLACK_S:
            time.sleep(delay)
        if frame not in seen_before and frame not in produced:
            produced[frame] = time.time()
        send(producer, UPLINKS, record)
        producer.poll(0)
    producer.flush(30)
    result: dict[str, Any] = {"offered_uplinks_per_s": round(len(paced) / (time.time() - started))}
    if contender is BARE:
        deadline = time.monotonic() + DRAIN_S
        while not (peer_dir(BARE, b) / RESULT).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        result["latency_ms"] = json.loads((peer_dir(BARE, b) / RESULT).read_text())["latency_ms"]
        return result
    arrived = _arrival(observer, commits)
    deadline = time.monotonic() + DRAIN_S
    waiting = set(produced)  # looking up every frame every time took the contenders' CPU
    while time.monotonic() < deadline and waiting:
        run.check()
        waiting = {f for f in waiting if arrived(f) is None}
        time.sleep(0.25)
    result["latency_ms"], result["missing"] = latencies_ms(produced, arrived)
    if commits:
        result["to_readings_topic_ms"], _ = latencies_ms(produced, observer.first_seen.get)
    return result


def _arrival(observer: Observer, commits: CommitWatch | None) -> Callable[[Frame], float | None]:
    """When a frame's reading arrived: in the output topic, or stored by our sink."""
    if commits is None:
        return observer.first_seen.get

    def stored(frame: Frame) -> float | None:
        position = observer.position.get(frame)
        return None if position is None else commits.stored_at(*position)

    return stored
