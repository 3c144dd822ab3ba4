"""Faust table recovery that reads a changelog to its real end on Tansu.

Faust restores a table by reading its changelog up to the partition's high watermark
as the broker reports it (`AIOKafkaConsumer.end_offsets`). Tansu 0.6 reports the *last
batch's base offset* + 1 there, so a restarted worker stopped recovery at the first
record of the changelog's last batch and silently lost the state written by the rest
of that batch (seen: a closed hour missing from the running 8 h / 24 h windows after a
SIGKILL). The true end is found the way `livinglab.kafka.end_offsets` finds it: read
the last batch. On a broker with a correct high watermark this gives the same number.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from confluent_kafka import TopicPartition
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

from livinglab.kafka import end_offsets

_original = AIOKafkaConsumerThread._highwaters


def true_highwaters(bootstrap: str, partitions: Iterable[TP]) -> dict[TP, int]:
    """The offset after each partition's last record (what Faust calls its highwater)."""
    tps = list(partitions)
    ends = end_offsets(bootstrap, [TopicPartition(tp.topic, tp.partition) for tp in tps])
    return {tp: ends[(tp.topic, tp.partition)] for tp in tps}


def install(bootstrap: str) -> None:
    """Make every Faust consumer of this process use the true end offsets (recovery is
    the only user that depends on them being exact; lag metrics get them right too)."""

    async def _highwaters(self: AIOKafkaConsumerThread, partitions: list[TP]) -> Mapping[TP, int]:
        if self.consumer.in_transaction:  # not on Tansu (no transactions): Faust's own way
            return await _original(self, partitions)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, true_highwaters, bootstrap, partitions)

    AIOKafkaConsumerThread._highwaters = _highwaters  # type: ignore[method-assign]
