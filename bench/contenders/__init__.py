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

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from livinglab.config import Settings
from livinglab.kafka import READINGS, UPLINKS, WORKER_GROUP
from livinglab.processes import Child, python_module
from livinglab.registry import Registry
from livinglab.stack import Stack
from schemas import codec

Frame = tuple[str, int]
_READING = codec("reading")


def avro_frame(value: bytes) -> Frame | None:
    record = _READING.decode(value)
    return record["dev_eui"], record["f_cnt"]


def json_frame(value: bytes) -> Frame | None:
    record = json.loads(value)
    return record["dev_eui"], record["f_cnt"]


@dataclass(frozen=True)
class Broker:
    """One Tansu broker and what every contender needs to know about the run."""

    kafka: str
    partitions: int
    registry: Registry
    registry_path: Path
    workdir: Path


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
