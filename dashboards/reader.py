"""Read access to the store for dashboard checks and reports, wherever the store lives.

A ClickHouse server when LIVINGLAB_CLICKHOUSE is set; otherwise the embedded chDB store,
through the running platform when one owns it (chDB allows one process per directory)
or opened directly when nothing runs.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from livinglab.config import Settings
from livinglab.stack import query_owner
from livinglab.store import Store, open_store
from streams.sink import owner_file

# Times in results as ISO 8601 UTC, whatever time zone a column carries.
_ISO_TIMES = "date_time_output_format = 'iso'"
_TRAILING_SETTINGS = re.compile(r"\bSETTINGS\b[^()']*$", re.IGNORECASE)


class NoStore(RuntimeError):
    """Neither a ClickHouse server nor an embedded store to read."""


def _owner_alive(data_dir: Path) -> bool:
    try:
        os.kill(json.loads(owner_file(data_dir).read_text())["pid"], 0)
        return True
    except (OSError, ValueError, KeyError):
        return False


def with_iso_times(sql: str) -> str:
    joiner = ", " if _TRAILING_SETTINGS.search(sql) else "\nSETTINGS "
    return f"{sql}{joiner}{_ISO_TIMES}"


class Reader:
    def __init__(self, settings: Settings) -> None:
        self._data_dir = settings.data_dir
        self._store: Store | None = None
        if settings.clickhouse:
            self._store = open_store(settings.clickhouse, settings.data_dir)
        elif not _owner_alive(settings.data_dir):
            if not (settings.data_dir / "clickhouse").exists():
                raise NoStore(
                    f"no store in {settings.data_dir}: run `livinglab demo` first, pass "
                    "--data-dir, or set LIVINGLAB_CLICKHOUSE"
                )
            self._store = open_store(None, settings.data_dir)

    def text(self, sql: str, fmt: str) -> str:
        if self._store is None:
            return query_owner(self._data_dir, sql, fmt)
        return self._store.query(sql, fmt)

    def rows(self, sql: str) -> list[dict]:
        """Result rows as dicts, times as ISO 8601 UTC strings."""
        out = self.text(with_iso_times(sql), "JSONEachRow")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def columns(self, sql: str) -> tuple[list[str], int]:
        """Column names and row count of a result."""
        out = self.text(sql, "JSONCompactEachRowWithNames").splitlines()
        return (json.loads(out[0]) if out else []), max(len(out) - 1, 0)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
