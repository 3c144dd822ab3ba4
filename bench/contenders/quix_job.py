"""Contender (b): the job written idiomatically with Quix Streams 3.x.

A StreamingDataFrame over the uplinks (event time from the record), a stateful apply
for deduplication, the decode as an apply, the readings to a topic, and an event-time
tumbling hour with `.reduce()` whose closed windows go to an aggregates topic. Quix
keeps the window and dedup state in RocksDB with changelog topics, as it does by default.

    python -m bench.contenders.quix_job BROKER INPUT_TOPIC GROUP OUTPUT_PREFIX STATE_DIR
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from typing import Any

from quixstreams import Application, State
from quixstreams.models.serializers import Deserializer

from bench.contenders import job
from livinglab.registry import load_registry


class UplinkDeserializer(Deserializer):
    """Avro `Uplink` (schema fingerprint in the headers); None for control records."""

    def __call__(self, value: bytes, ctx: Any) -> dict[str, Any] | None:
        return job.parse_uplink(None, value, ctx.headers)


def event_time(value: Any, headers: Any, timestamp: int, kind: Any) -> int:
    return value["received_at"] if value else timestamp


def main(broker: str, source: str, group: str, prefix: str, state_dir: str) -> None:
    registry = load_registry(os.environ.get("LIVINGLAB_REGISTRY"))
    app = Application(
        broker_address=broker,
        consumer_group=group,
        auto_offset_reset="earliest",
        commit_interval=1.0,
        state_dir=state_dir,
        loglevel="WARNING",
        # Tansu holds a group join for the whole rebalance timeout: keep it short.
        consumer_extra_config={"session.timeout.ms": 6000, "max.poll.interval.ms": 60000},
    )
    uplinks = app.topic(
        source,
        key_deserializer="bytes",
        value_deserializer=UplinkDeserializer(),
        timestamp_extractor=event_time,
    )
    readings = app.topic(f"{prefix}readings", key_serializer="bytes", value_serializer="json")
    aggregates = app.topic(f"{prefix}aggregates", key_serializer="bytes", value_serializer="json")

    def dedup(uplink: dict[str, Any], state: State) -> dict[str, Any] | None:
        recent = state.get("recent", [])
        if not job.first_copy(recent, uplink["f_cnt"]):
            return None
        state.set("recent", recent)
        return uplink

    sdf = app.dataframe(uplinks)
    sdf = sdf.filter(lambda uplink: uplink is not None)
    sdf = sdf.apply(dedup, stateful=True).filter(lambda uplink: uplink is not None)
    sdf = sdf.apply(lambda uplink: job.reading(registry, uplink)).filter(lambda r: r is not None)
    sdf.to_topic(readings)
    hours = sdf.tumbling_window(timedelta(hours=1), grace_ms=job.LATENESS_MS)
    sdf = hours.reduce(reducer=job.hour_add, initializer=job.hour_new).final()
    sdf = sdf.apply(lambda window: job.hour_record(window["value"]))
    sdf.to_topic(aggregates)
    app.run()


if __name__ == "__main__":
    main(*sys.argv[1:6])
