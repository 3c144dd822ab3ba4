"""Shared helpers: run the real `livinglab` command as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def livinglab(
    *args: str, check: bool = True, timeout: float = 600, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run `python -m livinglab ARGS` in the repository, capturing output."""
    result = subprocess.run(
        [sys.executable, "-m", "livinglab", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"livinglab {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
        )
    return result


def sql_rows(data_dir: Path, query: str) -> list[dict]:
    out = livinglab("sql", query, "--data-dir", str(data_dir), "--format", "JSONEachRow").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def demo_summary(data_dir: Path, hours: int = 6, seed: int = 1) -> dict:
    """Run the demo as a user would, from a fixed start time; return its JSON summary."""
    out = livinglab(
        "demo",
        "--hours",
        str(hours),
        "--speed",
        "0",
        "--seed",
        str(seed),
        "--json",
        "--start",
        "2026-11-20T00:00:00Z",
        "--data-dir",
        str(data_dir),
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def demo_6h(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One 6-hour demo run shared by the end-to-end tests: (data dir, its JSON summary)."""
    data_dir = tmp_path_factory.mktemp("demo6h")
    return data_dir, demo_summary(data_dir)
