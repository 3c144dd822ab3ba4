"""The contenders, each started as child processes against one broker and input topic.

- `ours`: the real `livinglab worker` (1 or more) and `livinglab sink` processes;
  done when the sink has committed everything (it commits only after ClickHouse
  acknowledged); readings appear in the `readings` topic (Avro).
- `quix`, `faust`: jobs in bench/contenders/*_job.py writing JSON readings to
  `bench.<name>.readings`; done when their group has committed the whole input and no
  output came for a while.
- `bare`: a consumer that only counts (the broker limit); it reports on its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from livinglab.config import Settings
from livinglab.kafka import READINGS, UPLINKS, WORKER_GROUP
from livinglab.processes import Child, python_module
from livinglab.registry import Registry
from livinglab.stack import Stack

Frame = tuple[str, int]


# The harness reads every output record's frame while the contenders run on the same
# cores, so it reads no more than the frame: decoding whole readings took ~20 us each
# (Avro) and ~6-12 us (JSON), CPU taken from the contenders under test.


def _varint(data: bytes, i: int) -> tuple[int, int]:
    """An Avro int/long at `i` (zig-zag varint) and the position after it."""
    shift = n = 0
    while True:
        byte = data[i]
        i += 1
        n |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (n >> 1) ^ -(n & 1), i
        shift += 7


def avro_frame(value: bytes) -> Frame | None:
    """(dev_eui, f_cnt) of a Reading from its first six fields (lab, sensor, dev_eui,
    ts, session, f_cnt: schemas/avro/reading.avsc)."""
    size, i = _varint(value, 0)
    size, i = _varint(value, i + size)  # past lab
    size, i = _varint(value, i + size)  # past sensor
    dev_eui = value[i : i + size].decode()
    _, i = _varint(value, i + size)  # ts
    _, i = _varint(value, i)  # session
    f_cnt, _ = _varint(value, i)
    return dev_eui, f_cnt


_DEV_EUI = re.compile(rb'"dev_eui":\s*"([^"]*)"')
_F_CNT = re.compile(rb'"f_cnt":\s*(-?\d+)')


def json_frame(value: bytes) -> Frame | None:
    """(dev_eui, f_cnt) of a peer's JSON reading (bench/contenders/job.py `reading`: flat
    apart from its values map, so each key occurs once); None for anything else."""
    dev_eui, f_cnt = _DEV_EUI.search(value), _F_CNT.search(value)
    if dev_eui is None or f_cnt is None:
        return None
    return dev_eui.group(1).decode(), int(f_cnt.group(1))


@dataclass(frozen=True)
class Broker:
    """One Tansu broker and what every contender needs to know about the run."""

    kafka: str
    partitions: int
    registry: Registry
    registry_path: Path
    workdir: Path
    pid: int  # the broker's process, whose CPU time a trial also reports


@dataclass(frozen=True)
class Contender:
    name: str
    output: str | None  # the readings topic the harness observes; None: reports itself
    frame_of: Callable[[bytes], Frame | None] | None
    workers: int = 1
    paced: bool = True  # also run the latency part (the scale-out run is about throughput)

    @property
    def group(self) -> str:
        """The consumer group reading the input (our worker's name is fixed)."""
        return WORKER_GROUP if self.is_ours else f"bench-{self.name}"

    @property
    def is_ours(self) -> bool:
        return self.name.startswith("ours")


def ours(workers: int = 1) -> Contender:
    return Contender(f"ours-{workers}w", READINGS, avro_frame, workers, paced=workers == 1)


QUIX = Contender("quix", "bench.quix.readings", json_frame)
FAUST = Contender("faust", "bench.faust.readings", json_frame)
BARE = Contender("bare", None, None)


def ours_stack(contender: Contender, broker: Broker) -> Stack:
    """Sink and workers through the platform's own `Stack` (topics, start-up, shutdown)."""
    settings = Settings.from_env(
        kafka=broker.kafka,
        data_dir=broker.workdir / contender.name,
        registry=broker.registry_path,
        partitions=broker.partitions,
    )
    settings = replace(settings, clickhouse=None)
    # The compared job is decode + hourly aggregates -> ClickHouse: no alerting worker.
    return Stack(settings, broker.registry, contender.workers, alerting=False)


def peer_dir(contender: Contender, broker: Broker) -> Path:
    return broker.workdir / contender.name


def start_peer(contender: Contender, broker: Broker, expect: int, preloaded: int) -> Child:
    """A peer job (or the bare consumer) as one child process reading `lorawan.uplinks`."""
    state = peer_dir(contender, broker)
    state.mkdir(parents=True, exist_ok=True)
    if contender is BARE:
        args = [broker.kafka, UPLINKS, contender.group, str(expect), str(preloaded), str(state)]
        argv = python_module("bench.contenders.bare", *args)
    else:
        module = f"bench.contenders.{contender.name}_job"
        prefix = f"bench.{contender.name}."
        argv = python_module(module, broker.kafka, UPLINKS, contender.group, prefix, str(state))
    env = {
        "LIVINGLAB_REGISTRY": str(broker.registry_path),
        "LIVINGLAB_PARTITIONS": str(broker.partitions),
    }
    return Child(contender.name, argv, broker.workdir / "logs" / f"{contender.name}.log", env)
