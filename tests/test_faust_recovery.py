"""A restarted worker restores its Faust tables to the changelog's last record.

Tansu reports a partition's high watermark as the last *batch's* base offset + 1, and
Faust stops restoring a table there: the rest of that batch (the state the worker wrote
last before it died) was lost. Written as one producer batch here, the way Faust's own
producer writes a batch's state changes, and read back by a real Faust worker.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka import Producer
from faust.types import TP

from livinglab.kafka import create_topics
from livinglab.processes import start_tansu
from streams.faust_tansu import true_highwaters
from tests.conftest import ROOT

KEYS = 300


def _write_changelog_in_one_batch(bootstrap: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 200})
    for i in range(KEYS):
        producer.produce(
            "recovery-probe-state-changelog",
            key=json.dumps(f"k{i}").encode(),
            value=json.dumps({"n": i}).encode(),
            partition=0,
        )
    producer.produce("probe-in", value=b"go", partition=0)
    assert producer.flush(10) == 0


def test_restarted_faust_worker_restores_every_key(tmp_path: Path) -> None:
    broker, bootstrap = start_tansu(tmp_path / "tansu.log")
    try:
        create_topics(bootstrap, ["recovery-probe-state-changelog", "probe-in"], 1)
        _write_changelog_in_one_batch(bootstrap)
        tp = TP("recovery-probe-state-changelog", 0)
        assert true_highwaters(bootstrap, [tp]) == {tp: KEYS}
        probe = subprocess.Popen(
            [sys.executable, "-m", "tests.fixtures.faust_recovery_probe", bootstrap, str(tmp_path)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "probe.log").open("w"),
        )
        report = tmp_path / "recovered"
        try:
            deadline = time.monotonic() + 90
            while not report.exists() and probe.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            log = (tmp_path / "probe.log").read_text()[-3000:]
            assert report.exists(), f"the probe worker never reported:\n{log}"
            assert int(report.read_text()) == KEYS, "the table lost its changelog's tail"
        finally:
            probe.kill()
            probe.wait()
    finally:
        broker.stop()
