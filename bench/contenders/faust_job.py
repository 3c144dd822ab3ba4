"""Contender (c): the job as a naive per-event Faust agent.

`async for event in stream.events()`: decode, deduplicate against a table, send the
reading, update the unit's hourly accumulator in a table (one changelog write per
event), and send the previous hour once a reading of a later hour arrives. This is how
Faust is usually written; it is what our worker's batching is measured against.

    python -m bench.contenders.faust_job BROKER INPUT_TOPIC GROUP OUTPUT_PREFIX STATE_DIR
"""

from __future__ import annotations

import os
import sys
from typing import Any

import faust

from bench.contenders import job
from livinglab.registry import load_registry


def create_app(broker: str, source: str, group: str, prefix: str, state_dir: str) -> faust.App:
    registry = load_registry(os.environ.get("LIVINGLAB_REGISTRY"))
    app = faust.App(
        group,
        broker=f"kafka://{broker}",
        store="memory://",
        topic_partitions=int(os.environ.get("LIVINGLAB_PARTITIONS", "4")),
        topic_replication_factor=1,
        # Tansu holds a group join for the whole rebalance timeout: keep these short.
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=6.0,
        broker_commit_interval=1.0,
        stream_wait_empty=False,
        web_enabled=False,
        datadir=state_dir,  # not ./<group>-data in the cwd
        tabledir=state_dir,
        key_serializer="json",
        value_serializer="json",
    )
    uplinks = app.topic(source, key_serializer="raw", value_serializer="raw")
    readings = app.topic(f"{prefix}readings", key_serializer="raw", value_serializer="raw")
    aggregates = app.topic(f"{prefix}aggregates", key_serializer="raw", value_serializer="raw")
    recent = app.Table("recent", default=list)
    hours = app.Table("hours", default=None)

    @app.agent(uplinks)
    async def process(stream: Any) -> None:
        async for event in stream.events():
            uplink = job.parse_uplink(event.key, event.value, event.message.headers)
            if uplink is None:
                continue
            dev_eui = uplink["dev_eui"]
            seen = recent[dev_eui]
            if not job.first_copy(seen, uplink["f_cnt"]):
                continue
            recent[dev_eui] = seen
            item = job.reading(registry, uplink)
            if item is None:
                continue
            key = dev_eui.encode()
            await readings.send(key=key, value=job.encode(item))
            acc = hours.get(dev_eui)
            if acc is not None and acc["start"] < job.hour_start(item["ts"]):
                await aggregates.send(key=key, value=job.encode(job.hour_record(acc)))
                acc = None
            hours[dev_eui] = job.hour_new(item) if acc is None else job.hour_add(acc, item)

    return app


if __name__ == "__main__":
    worker = faust.Worker(create_app(*sys.argv[1:6]), loglevel="warning", quiet=True)
    worker.execute_from_commandline()
