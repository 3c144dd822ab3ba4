"""The benchmark's input: a synthetic registry of N units and their uplinks as Kafka records.

The uplinks come from the simulator through the real ingress code (`Ingress` with a
producer that only records), so every contender reads exactly what the platform's
connectors would have written to `lorawan.uplinks`, duplicate gateway copies included.
The records are kept in memory and produced into each broker the harness starts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from confluent_kafka import Producer

from connectors.ingress import Ingress
from livinglab.registry import Registry, parse_registry
from livinglab.simulator.fleet import fleet_messages

UNITS_PER_LAB = 100
GATEWAYS_PER_LAB = 2  # each frame is heard by one or two of them: ~1.5 copies per frame
COPIES_PER_FRAME = 1.5
HOUR_MS = 3_600_000
START_MS = 1_767_225_600_000  # 2026-01-01T00:00Z: a fixed, hour-aligned event time


@dataclass(frozen=True)
class Record:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def registry_document(
    units: int, gateways: int = GATEWAYS_PER_LAB, interval_s: int = 60, seed: int = 7
) -> dict[str, Any]:
    """A registry of `units` units (one uplink every `interval_s`) in labs of 100, as the
    YAML document."""
    rng = np.random.default_rng(seed)
    labs = []
    for lab_no, first in enumerate(range(0, units, UNITS_PER_LAB)):
        lat, lon = 51.5 + lab_no % 50 * 0.02, 4.0 + lab_no // 50 * 0.02
        labs.append(
            {
                "id": f"bench-{lab_no:04d}",
                "gateways": [
                    {
                        "id": f"{0xB0 << 56 | lab_no << 8 | g:016x}",
                        "latitude": lat,
                        "longitude": lon,
                    }
                    for g in range(gateways)
                ],
                "units": [
                    {
                        "sensor": f"u-{i:06d}",
                        "dev_eui": f"{0xBE << 56 | i:016x}",
                        "dev_addr": f"{0x26 << 24 | i:08x}",
                        "nwk_s_key": rng.bytes(16).hex(),
                        "app_s_key": rng.bytes(16).hex(),
                        "latitude": lat + float(rng.uniform(-0.01, 0.01)),
                        "longitude": lon + float(rng.uniform(-0.01, 0.01)),
                    }
                    for i in range(first, min(units, first + UNITS_PER_LAB))
                ],
            }
        )
    return {"defaults": {"uplink_interval_s": interval_s}, "labs": labs}


def synthetic_registry(units: int, path: Path, gateways: int = GATEWAYS_PER_LAB) -> Registry:
    """Write the registry for the worker and sink processes and parse it here (without
    PyYAML's slow pure-Python loader, which the children pay once at start)."""
    document = registry_document(units, gateways)
    path.write_text(yaml.safe_dump(document, sort_keys=False, default_flow_style=None))
    return parse_registry(document, path)


class _Recorder:
    """Stands in for the Kafka producer of `Ingress`: keeps what it would have sent."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def produce(self, topic: str, value: bytes, key: bytes, headers: list, **_: Any) -> None:
        if topic != "lorawan.uplinks":
            raise RuntimeError(f"the simulator produced a dead letter to {topic}")
        self.records.append(Record(key, value, headers))


@dataclass(frozen=True)
class Uplinks:
    """Ingress output in delivery order, with the frame (dev_eui, f_cnt) of each record."""

    records: list[Record]
    frames: list[tuple[str, int]]


def uplink_records(
    registry: Registry, minutes: float, seed: int = 1, start_ms: int = START_MS
) -> Iterator[tuple[Record, tuple[str, int]]]:
    """`minutes` of every unit's uplinks through the real ingress normalisation, with the
    frame each record is a copy of."""
    recorder = _Recorder()
    ingress = Ingress(recorder, source="sim")  # type: ignore[arg-type]
    end_ms = start_ms + int(minutes * 60_000)
    for message in fleet_messages(registry, start_ms, end_ms, seed):
        ingress.submit(message.body)
        yield recorder.records.pop(), message.frame


def simulate(registry: Registry, minutes: float, seed: int = 1) -> Uplinks:
    pairs = list(uplink_records(registry, minutes, seed))
    return Uplinks([r for r, _ in pairs], [f for _, f in pairs])


def produce_all(producer: Producer, topic: str, records: list[Record]) -> float:
    """Produce everything as fast as the client goes; returns the seconds it took."""
    started = time.perf_counter()
    for record in records:
        send(producer, topic, record)
    if producer.flush(120):
        raise RuntimeError("the broker did not acknowledge the benchmark input")
    return time.perf_counter() - started


def send(producer: Producer, topic: str, record: Record) -> None:
    """One record, keyed by DevEUI (the platform's murmur2 partitioner picks the partition)."""
    while True:
        try:
            producer.produce(topic, key=record.key, value=record.value, headers=record.headers)
            return
        except BufferError:
            producer.poll(0.05)
