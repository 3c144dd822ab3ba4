"""The stream worker emits an hour's close over several batches and finishes it while its
input is idle: on the real embedded stack (Tansu, worker and sink processes, chDB), with
more units per partition than a small batch may emit at once (streams/eventtime.py
`_work`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bench.workload import START_MS, synthetic_registry, uplink_records
from livinglab.config import Settings
from livinglab.kafka import UPLINKS
from livinglab.stack import Stack
from schemas import codec
from streams.eventtime import CLOSE_UNITS

pytestmark = pytest.mark.slow

UNITS = 800  # ~200 per partition of 4: several times CLOSE_UNITS
CLOSED_AT = START_MS + 75 * 60_000  # the first hour closes once this time is seen (15 min lateness)


def _send(producer, records) -> None:
    for record in records:
        producer.produce(UPLINKS, key=record.key, value=record.value, headers=record.headers)
        producer.poll(0)
    producer.flush(30)


def _hours_stored(stack: Stack) -> int:
    out = stack.query(
        "SELECT count(DISTINCT sensor) AS n FROM aggregates "
        f"WHERE window = '1h' AND toUnixTimestamp64Milli(window_start) = {START_MS}"
    )
    return json.loads(out)["n"]


def test_a_close_is_finished_while_the_input_is_idle(tmp_path: Path) -> None:
    assert UNITS // 4 > 4 * CLOSE_UNITS
    registry = synthetic_registry(UNITS, tmp_path / "registry.yaml")
    uplink = codec("uplink")
    before, after = [], []
    for record, _ in uplink_records(registry, 76):
        at = uplink.decode(record.value, record.headers)["received_at"]
        (before if at < CLOSED_AT else after).append(record)
    settings = Settings.from_env(
        data_dir=tmp_path / "data", kafka=None, clickhouse=None, registry=tmp_path / "registry.yaml"
    )
    with Stack(settings, registry, alerting=False) as stack:
        producer = stack.producer()
        _send(producer, before)
        stack.wait_drained()
        assert _hours_stored(stack) == 0  # the hour is still open
        # The last minute in one small batch: the hour closes, and the batch may emit it
        # for CLOSE_UNITS units per partition; the rest follows with no input coming.
        _send(producer, after)
        deadline = time.monotonic() + 120
        while (stored := _hours_stored(stack)) < UNITS and time.monotonic() < deadline:
            stack.check_alive()
            time.sleep(0.5)
        assert stored == UNITS
    log = (tmp_path / "data" / "logs" / "worker-0.log").read_text()
    assert "checkpoint after 0 batches of 0 uplinks" in log  # emitted while idle
