"""Schema management on the real ClickHouse engine (chDB): versioned migrations applied
once, retention (TTL), the daily rollup, and the analyst grants' SQL.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import schemas
from livinglab.grants import analyst_grants
from livinglab.registry import load_registry
from livinglab.store import ChdbStore, apply_retention, migrate
from streams.rows import reading_rows


@pytest.fixture
def store(tmp_path: Path):
    s = ChdbStore(tmp_path / "ch")
    try:
        yield s
    finally:
        s.close()


def _one(store: ChdbStore, sql: str) -> str:
    return store.query(sql, "TabSeparatedRaw").strip()


def test_migrations_apply_once_and_are_recorded(store: ChdbStore) -> None:
    files = [p.name for p in schemas.ddl_files()]
    assert migrate(store) == files
    assert migrate(store) == []
    recorded = _one(
        store, "SELECT groupArray(name) FROM (SELECT name FROM schema_migrations ORDER BY version)"
    )
    assert recorded == "[" + ",".join(f"'{f}'" for f in files) + "]"


def test_every_table_the_sink_writes_merges_wide(store: ChdbStore) -> None:
    """005_merges.sql: with ClickHouse's default merge base the sink's several inserts a
    second kept re-merging each partition's largest part (bench/store_merges.py). A
    MergeTree table added later without the settings fails here."""
    migrate(store)
    tables = _one(
        store,
        "SELECT arrayStringConcat(groupArray(name), ' ') FROM system.tables WHERE database = "
        "currentDatabase() AND engine LIKE '%MergeTree' AND name != 'schema_migrations'",
    ).split()
    assert {"readings", "uplinks", "readings_daily", "aggregates"} <= set(tables)
    for table in tables:
        create = _one(
            store,
            f"SELECT create_table_query FROM system.tables "
            f"WHERE database = currentDatabase() AND name = '{table}'",
        )
        for setting in (
            "merge_selector_base = 20",
            "min_age_to_force_merge_seconds = 3600",
            "min_age_to_force_merge_on_partition_only = 1",
        ):
            assert setting in create, (table, setting)


def test_retention_sets_and_removes_ttl(store: ChdbStore) -> None:
    migrate(store)
    apply_retention(store, 30)
    for table, column in (("readings", "ts"), ("uplinks", "received_at")):
        create = _one(store, f"SELECT create_table_query FROM system.tables WHERE name = '{table}'")
        assert f"TTL toDateTime({column}) + toIntervalDay(30)" in create
    apply_retention(store, None)
    create = _one(store, "SELECT create_table_query FROM system.tables WHERE name = 'readings'")
    assert " TTL " not in create


def _reading(i: int, sensor: str, value: float) -> dict:
    return {"lab": "lab-a", "sensor": sensor, "dev_eui": "00", "ts": 1_795_132_800_000 + i * 60_000,
            "session": 1, "f_cnt": i, "uplink_version": 1, "calibration": "none",
            "values": {"pm25": value}, "raw_values": {"pm25": value}, "flags": {}}  # fmt: skip


def test_daily_rollup_counts_frames_exactly_even_with_a_replayed_batch(store: ChdbStore) -> None:
    migrate(store)
    rng = np.random.default_rng(5)
    values = rng.uniform(0, 80, 3000)  # 3000 minutes: two UTC days + a bit
    records = [_reading(i, "s1", float(v)) for i, v in enumerate(values)]
    store.insert_arrow("readings", reading_rows(records), "readings:0:0-2999")
    store.insert_arrow("readings", reading_rows(records[:500]), "readings:0:0-499")  # replay
    rows = store.query(
        "SELECT day, uniqExactMerge(frames) AS n, minMerge(low) AS lo, maxMerge(high) AS hi "
        "FROM readings_daily GROUP BY day ORDER BY day",
        "TabSeparated",
    ).splitlines()
    days = np.arange(3000) // 1440  # 2026-11-20 starts at midnight UTC
    assert len(rows) == 3
    for row, day in zip(rows, range(3)):
        _, n, lo, hi = row.split("\t")
        mine = values[days == day]
        assert int(n) == len(mine)
        assert float(lo) == pytest.approx(mine.min()) and float(hi) == pytest.approx(mine.max())


def test_analyst_grants_parse_and_confine_each_lab(store: ChdbStore) -> None:
    registry = load_registry()
    sql = analyst_grants(registry, "livinglab")
    statements = [
        "\n".join(x for x in s.splitlines() if not x.startswith("--")).strip()
        for s in sql.split(";")
    ]
    statements = [s for s in statements if s]
    for statement in statements:  # ClickHouse's own parser accepts every statement
        store.query(f"EXPLAIN AST {statement}", "CSV")
    for lab in registry.labs:
        role = f"analyst_{lab.id.replace('-', '_')}"
        for table in ("uplinks", "readings", "aggregates", "alerts"):
            assert f"ON `livinglab`.{table} FOR SELECT USING lab = '{lab.id}' TO `{role}`" in sql
        assert f"`livinglab`.deadletter TO `{role}`" not in sql
