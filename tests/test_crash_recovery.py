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


def _replayed(path: Path, data_dir: Path, workers: int) -> dict[str, list[dict]]:
    """Every table after `livinglab replay` of the file with this many stream workers."""
    livinglab("replay", str(path), "--json", "--workers", str(workers), "--data-dir", str(data_dir))
    tables = {}
    for table, query in TABLE_DUMPS.items():
        out = livinglab("sql", query, "--data-dir", str(data_dir), "--format", "JSONEachRow")
        tables[table] = [json.loads(line) for line in out.stdout.splitlines() if line]
    return tables


@pytest.fixture(scope="module")
def undisturbed(uplinks_file, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """The tables of an undisturbed run of the input with one worker."""
    return _replayed(uplinks_file[0], tmp_path_factory.mktemp("clean"), workers=1)


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


def _wait_progress(bootstrap: str, before: int, timeout: float = 90) -> int:
    """Wait until the worker's lag is below `before` (it committed work); return the lag."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lag = group_lag(bootstrap, WORKER_GROUP, [UPLINKS])
        if 0 <= lag < before:
            return lag
        time.sleep(0.1)
    raise AssertionError("the restarted worker made no progress")


def test_sigkilled_worker_and_sink_lose_and_duplicate_nothing(
    uplinks_file, undisturbed, tmp_path
) -> None:
    path, frames = uplinks_file
    rng = random.Random(20261124)
    registry = load_registry()
    settings = Settings.from_env(data_dir=tmp_path / "crashed", kafka=None, clickhouse=None)
    with Stack(settings, registry) as stack:
        from connectors.ingress import Ingress

        ingress = Ingress(stack.producer(), source="replay")
        lines = path.read_bytes().splitlines()
        worker = next(c for c in stack.children if c.name == "worker-0")
        sink = next(c for c in stack.children if c.name == "sink")
        # Fed in four parts, a kill while each of the first three is being worked on: the
        # worker gets through the whole input faster than three random kills otherwise.
        parts = [lines[i * len(lines) // 4 : (i + 1) * len(lines) // 4] for i in range(4)]
        sent = 0
        for round_, part in enumerate(parts):
            for line in part:
                ingress.submit(line)
            ingress.flush()
            sent += len(part)
            if round_ == len(parts) - 1:
                break
            lag = group_lag(stack.kafka, WORKER_GROUP, [UPLINKS])
            _wait_progress(stack.kafka, lag if lag >= 0 else sent)
            time.sleep(rng.uniform(0.0, 0.2))  # a random moment while it works
            worker.restart()
            if round_ == 1:
                sink.restart()
                stack._wait_owner(sink)
        stack.end_of_input(ingress.producer)
        stack.wait_drained()
        crashed = {table: _rows(query, stack.query) for table, query in TABLE_DUMPS.items()}

    # Exactly what the input implies.
    units = len(registry.units)
    assert len(crashed["uplinks"]) == frames
    assert len(crashed["readings"]) == frames * len(QUANTITIES)
    hourly = [row for row in crashed["aggregates"] if row["window"] == "1h"]
    assert len(hourly) == units * HOURS * len(QUANTITIES)
    assert crashed["deadletter"] == []

    # And the same content as an undisturbed run of the same input.
    for table in TABLE_DUMPS:
        assert_same_rows(table, crashed[table], undisturbed[table])


def test_two_workers_share_the_partitions_and_agree_with_one(
    uplinks_file, undisturbed, tmp_path
) -> None:
    """Scale-out: two stream workers split the partitions (the second joins while the
    first works, so partitions and their state move between them) and every table ends
    up as with one worker."""
    two = _replayed(uplinks_file[0], tmp_path, workers=2)
    logs = [(tmp_path / "logs" / f"worker-{i}.log").read_text() for i in range(2)]
    assert all("checkpoint after" in log for log in logs), "a worker processed nothing"
    for table in TABLE_DUMPS:
        assert_same_rows(table, two[table], undisturbed[table])
