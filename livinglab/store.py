"""ClickHouse access: chDB in-process (embedded) or a ClickHouse server, one interface.

The SQL is the same dialect in both; inserts go in as Arrow tables with a
deduplication token so that a replayed batch is dropped by the engine itself.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

import pyarrow as pa

import schemas

_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version UInt32, name String, applied_at DateTime) ENGINE = MergeTree ORDER BY version"
)


# Batches handed to chDB as files: in memory where the system has a RAM disk.
_SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


class StoreError(RuntimeError):
    """ClickHouse refused or could not be reached; the caller decides to retry."""


class Store(Protocol):
    def execute(self, sql: str) -> None: ...
    def query(self, sql: str, fmt: str = "JSONEachRow") -> str: ...
    def insert_arrow(self, table: str, data: pa.Table, token: str) -> None: ...
    def close(self) -> None: ...


class ChdbStore:
    """ClickHouse engine in this process, data under `path` (one owner at a time)."""

    def __init__(self, path: Path) -> None:
        import chdb.session

        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._session = chdb.session.Session(str(path))

    def execute(self, sql: str) -> None:
        self.query(sql, "CSV")

    def query(self, sql: str, fmt: str = "JSONEachRow") -> str:
        try:
            result = self._session.query(sql, fmt)
        except Exception as exc:  # chDB raises its own error type per version
            raise StoreError(str(exc)) from exc
        return result.bytes().decode("utf-8") if hasattr(result, "bytes") else str(result)

    def insert_arrow(self, table: str, data: pa.Table, token: str) -> None:
        # chDB reads the local variable named in Python(...) from this frame.
        _arrow = data  # noqa: F841
        self.execute(
            f"INSERT INTO {table} ({', '.join(data.column_names)}) "
            f"SELECT * FROM Python(_arrow) SETTINGS insert_deduplication_token = '{token}'"
        )

    def insert_avro(self, table: str, select: str, container: bytes, token: str) -> None:
        """Insert rows that ClickHouse builds with `select` from an Avro container file
        (its `{source}`). The file lives only for this call."""
        with tempfile.NamedTemporaryFile(suffix=".avro", dir=_SCRATCH) as f:
            f.write(container)
            f.flush()
            sql = select.format(source=f"file('{f.name}', 'Avro')")
            # No replacing pass on insert: a batch holds no duplicates of itself.
            self.execute(
                f"INSERT INTO {table} {sql} SETTINGS insert_deduplication_token = '{token}', "
                "optimize_on_insert = 0"
            )

    def close(self) -> None:
        self._session.close()


class ServerStore:
    """A ClickHouse server over HTTP(S) through clickhouse-connect."""

    def __init__(self, url: str) -> None:
        import clickhouse_connect

        u = urlparse(url)
        self._client = clickhouse_connect.get_client(
            host=u.hostname or "localhost",
            port=u.port or (8443 if u.scheme in ("https", "clickhouses") else 8123),
            username=unquote(u.username or "default"),
            password=unquote(u.password or ""),
            database=(u.path or "/default").lstrip("/") or "default",
            secure=u.scheme in ("https", "clickhouses"),
        )

    def execute(self, sql: str) -> None:
        try:
            self._client.command(sql)
        except Exception as exc:
            raise StoreError(str(exc)) from exc

    def query(self, sql: str, fmt: str = "JSONEachRow") -> str:
        try:
            return self._client.raw_query(sql, fmt=fmt).decode("utf-8")
        except Exception as exc:
            raise StoreError(str(exc)) from exc

    def insert_arrow(self, table: str, data: pa.Table, token: str) -> None:
        try:
            self._client.insert_arrow(table, data, settings={"insert_deduplication_token": token})
        except Exception as exc:
            raise StoreError(str(exc)) from exc

    def close(self) -> None:
        self._client.close()


def open_store(url: str | None, data_dir: Path) -> Store:
    """`url` None means the embedded chDB store under data_dir/clickhouse."""
    if url:
        return ServerStore(url)
    return ChdbStore(data_dir / "clickhouse")


def _statements(sql: str) -> list[str]:
    without_comments = re.sub(r"--[^\n]*", "", sql)
    return [s.strip() for s in without_comments.split(";") if s.strip()]


def migrate(store: Store) -> list[str]:
    """Apply the versioned DDL in schemas/clickhouse once each; returns what was applied."""
    store.execute(_MIGRATIONS)
    done = {int(v) for v in store.query("SELECT version FROM schema_migrations", "CSV").split()}
    applied = []
    for path in schemas.ddl_files():
        version = int(path.name[:3])
        if version in done:
            continue
        for statement in _statements(path.read_text(encoding="utf-8")):
            store.execute(statement)
        store.execute(
            f"INSERT INTO schema_migrations VALUES ({version}, '{path.name}', {int(time.time())})"
        )
        applied.append(path.name)
    return applied


RETAINED = {"readings": "ts", "uplinks": "received_at"}  # raw data; aggregates are kept


def apply_retention(store: Store, days: int | None) -> None:
    """Keep raw readings and uplinks `days` days (None: keep them for ever)."""
    for table, column in RETAINED.items():
        create = store.query(
            f"SELECT create_table_query FROM system.tables "
            f"WHERE database = currentDatabase() AND name = '{table}'",
            "TabSeparatedRaw",
        )
        if days is not None:
            store.execute(
                f"ALTER TABLE {table} MODIFY TTL toDateTime({column}) + INTERVAL {int(days)} DAY"
            )
        elif " TTL " in create:
            store.execute(f"ALTER TABLE {table} REMOVE TTL")
