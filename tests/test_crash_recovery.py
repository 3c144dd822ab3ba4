"""Crash test on the real embedded stack: SIGKILL the stream worker (and once the sink)
at random moments while it works, restart it each time; afterwards every table holds
exactly the expected rows: as many as the input implies, and the same content as an
undisturbed run of the same input.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from livinglab.codec.payload import QUANTITIES
from livinglab.config import Settings
from livinglab.kafka import UPLINKS, WORKER_GROUP, group_lag
from livinglab.registry import load_registry
from livinglab.simulator.fleet import fleet_messages
from livinglab.stack import Stack
from tests.conftest import livinglab
from tests.test_e2e_demo import TABLE_DUMPS

pytestmark = pytest.mark.slow

HOURS = 6
START_MS = 1_795_132_800_000  # 2026-11-20T00:00:00Z


@pytest.fixture(scope="module")
def uplinks_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("crash") / "uplinks.jsonl"
    frames = set()
    with path.open("wb") as out:
        for msg in fleet_messages(load_registry(), START_MS, START_MS + HOURS * 3_600_000, 7):
            frames.add(msg.frame)
            out.write(msg.body + b"\n")
    return path, len(frames)


def _rows(query: str, run) -> list[dict]:
    return [json.loads(line) for line in run(query).splitlines() if line]


def assert_same_rows(table: str, got: list[dict], want: list[dict]) -> None:
    """Row-for-row equality, reporting a few differing rows (not a diff of the whole table)."""
    if got == want:
        return
    got_set = {json.dumps(r, sort_keys=True) for r in got}
    want_set = {json.dumps(r, sort_keys=True) for r in want}
    extra, missing = sorted(got_set - want_set)[:3], sorted(want_set - got_set)[:3]
    raise AssertionError(
        f"{table}: {len(got)} rows after crashes vs {len(want)} undisturbed; "
        f"only after crashes: {extra}; only undisturbed: {missing}"
    )


def _wait_progress(bootstrap: str, total: int, before: int, timeout: float = 90) -> int:
    """Wait until the worker has committed more of the input than `before`; return its lag."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lag = group_lag(bootstrap, WORKER_GROUP, [UPLINKS])
        if 0 <= lag < before:
            return lag
        time.sleep(0.1)
    raise AssertionError("the restarted worker made no progress")


def test_sigkilled_worker_and_sink_lose_and_duplicate_nothing(uplinks_file, tmp_path) -> None:
    path, frames = uplinks_file
    rng = random.Random(20261124)
    registry = load_registry()
    settings = Settings.from_env(data_dir=tmp_path / "crashed", kafka=None, clickhouse=None)
    kills = 0
    with Stack(settings, registry) as stack:
        from connectors.ingress import Ingress

        ingress = Ingress(stack.producer(), source="replay")
        lines = path.read_bytes().splitlines()
        for line in lines:
            ingress.submit(line)
        ingress.flush()
        total = len(lines) + 0
        lag = total + 1
        worker = next(c for c in stack.children if c.name == "worker-0")
        sink = next(c for c in stack.children if c.name == "sink")
        for round_ in range(3):
            lag = _wait_progress(stack.kafka, total, lag)
            if lag == 0:
                break
            time.sleep(rng.uniform(0.0, 0.4))  # a random moment while it works
            worker.restart()
            kills += 1
            if round_ == 1:
                sink.restart()
                stack._wait_owner(sink)
        stack.end_of_input(ingress.producer)
        stack.wait_drained()
        crashed = {table: _rows(query, stack.query) for table, query in TABLE_DUMPS.items()}
    assert kills >= 3, "the input was processed before three crashes could happen"

    # Exactly what the input implies.
    units = len(registry.units)
    assert len(crashed["uplinks"]) == frames
    assert len(crashed["readings"]) == frames * len(QUANTITIES)
    hourly = [row for row in crashed["aggregates"] if row["window"] == "1h"]
    assert len(hourly) == units * HOURS * len(QUANTITIES)
    assert crashed["deadletter"] == []

    # And the same content as an undisturbed run of the same input.
    clean_dir = tmp_path / "clean"
    livinglab("replay", str(path), "--json", "--data-dir", str(clean_dir))
    for table, query in TABLE_DUMPS.items():
        out = livinglab("sql", query, "--data-dir", str(clean_dir), "--format", "JSONEachRow")
        clean = [json.loads(line) for line in out.stdout.splitlines() if line]
        assert_same_rows(table, crashed[table], clean)
