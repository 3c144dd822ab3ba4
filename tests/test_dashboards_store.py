"""Every panel's SQL against a real embedded store filled by the demo.

The demo runs once per test session (`demo_store`, shared with the report tests) over
17:30-22:30 UTC, i.e. 18:30-23:30 in Amsterdam, so one Lden day has its day, evening and
night periods. The store is only read from subprocesses: chDB allows one data directory
per process, and the pytest process must stay free for other tests' stores.

The demo does not produce alerts yet, so the fixture adds alert episodes as the sink
would store them (one resolved, one still open, per lab), and a synthetic lab
`lden-check` with hourly LAeq over the DST day 2026-10-24 (25 hours).
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from dashboards import queries
from dashboards.macros import QueryContext, render
from livinglab.config import ENV_CLICKHOUSE
from livinglab.registry import load_registry
from streams.science.acoustics import day_levels
from streams.science.airquality import lki_subindex, lki_total
from tests.conftest import ROOT, livinglab

pytestmark = pytest.mark.slow  # runs the demo on the embedded stack

DEMO_START = datetime(2026, 11, 20, 17, 30, tzinfo=UTC)
DEMO_HOURS = 5
TZ = "Europe/Amsterdam"
REGISTRY = load_registry()
# The store under test is the embedded one, whatever the shell points at.
EMBEDDED_ENV = {k: v for k, v in os.environ.items() if k != ENV_CLICKHOUSE}

_RUN = """
import json, sys
from pathlib import Path
from dashboards.reader import Reader
from livinglab.config import Settings
with Reader(Settings.from_env(data_dir=Path(sys.argv[1]))) as reader:
    out = [reader.rows(sql) if kind == "rows" else reader.text(sql, "CSV")
           for kind, sql in json.load(sys.stdin)]
print(json.dumps(out))
"""


def in_store(data_dir: Path, *statements: tuple[str, str]) -> list:
    """Run ("rows" | "exec", sql) statements in a fresh process; rows come back as dicts."""
    result = subprocess.run(
        [sys.executable, "-c", _RUN, str(data_dir)],
        input=json.dumps(statements),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=EMBEDDED_ENV,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def _ts(t: datetime) -> str:
    return f"toDateTime64('{t:%Y-%m-%d %H:%M:%S}', 3, 'UTC')"


def _alert_rows() -> str:
    """Per lab: a resolved noise episode (open, update, resolved) and an open flatline."""
    rows = []
    for lab in REGISTRY.labs:
        a, b = lab.units[0].sensor, lab.units[1].sensor
        resolved = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{lab.id}/{a}/noise"))
        still_open = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{lab.id}/{b}/flatline"))
        t0 = DEMO_START + timedelta(hours=1)
        for state, severity, ts, ended, value in (
            ("open", "warning", t0, None, 47.5),
            ("update", "critical", t0 + timedelta(minutes=40), None, 52.0),
            ("resolved", "critical", t0 + timedelta(hours=2), t0 + timedelta(hours=2), 44.0),
        ):
            end = _ts(ended) if ended else "NULL"
            rows.append(
                f"('{resolved}', '{lab.id}', '{a}', 'threshold.noise_night', '{severity}', "
                f"'{state}', {_ts(ts)}, {_ts(t0)}, {end}, {value}, 45, 'LAeq above 45 dB(A)')"
            )
        t1 = DEMO_START + timedelta(hours=4)
        rows.append(
            f"('{still_open}', '{lab.id}', '{b}', 'flatline', 'info', 'open', {_ts(t1)}, "
            f"{_ts(t1)}, NULL, 3, 3, 'PM2.5 repeats the same value')"
        )
    columns = (
        "id, lab, sensor, kind, severity, state, ts, started, ended, value, threshold, message"
    )
    return f"INSERT INTO alerts ({columns}) VALUES " + ", ".join(rows)


LDEN_DAY = date(2026, 10, 24)  # the night to 25 October has 9 hours (DST ends)
LDEN_FIRST_HOUR = datetime(2026, 10, 24, 5, tzinfo=UTC)  # 07:00 CEST


def _lden_hours() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """25 hourly windows of the DST Lden day: start, LAeq, coverage (one hour missing)."""
    rng = np.random.default_rng(7)
    starts = np.array([(LDEN_FIRST_HOUR + timedelta(hours=h)).timestamp() for h in range(25)])
    levels = rng.uniform(35, 72, 25).round(1)
    coverage = rng.choice([1.0, 1.0, 0.75, 0.5], 25)
    keep = np.arange(25) != 20
    return starts[keep], levels[keep], coverage[keep]


def _lden_rows() -> str:
    rows = []
    for start, level, cov in zip(*_lden_hours()):
        t = datetime.fromtimestamp(start, UTC)
        rows.append(
            f"('lden-check', 's1', 'laeq', '1h', {_ts(t)}, {_ts(t + timedelta(hours=1))}, "
            f"{int(60 * cov)}, {cov}, {level}, {level - 5}, {level + 10}, 1)"
        )
    columns = (
        "lab, sensor, quantity, window, window_start, window_end, count, coverage, mean, min, "
        "max, version"
    )
    return f"INSERT INTO aggregates ({columns}) VALUES " + ", ".join(rows)


@functools.cache
def demo_store() -> Path:
    """The shared demo store (made on first use, removed when the session ends)."""
    root = Path(tempfile.mkdtemp(prefix="dashboards-demo-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    livinglab(
        "demo",
        "--hours",
        str(DEMO_HOURS),
        "--speed",
        "0",
        "--seed",
        "3",
        "--start",
        DEMO_START.isoformat(),
        "--data-dir",
        str(root),
    )
    in_store(root, ("exec", _alert_rows()), ("exec", _lden_rows()))
    return root


@pytest.fixture(scope="module")
def store() -> Path:
    return demo_store()


@pytest.fixture(scope="module")
def checked(store: Path) -> list[dict]:
    out = livinglab("dashboards", "check", "--json", "--hours", "6", "--data-dir", str(store))
    return json.loads(out.stdout)


def test_every_panel_query_runs_and_returns_the_columns_it_needs(checked: list[dict]) -> None:
    broken = [r for r in checked if r["error"] or r["missing"]]
    assert not broken, json.dumps(broken, indent=1)[:4000]
    labs = {r["dashboard"].split("-")[1] for r in checked}
    assert len({r["dashboard"] for r in checked}) == 4 * len(REGISTRY.labs), labs


def test_every_panel_query_finds_data_in_the_demo_store(checked: list[dict]) -> None:
    empty = [(r["dashboard"], r["panel"], r["ref"]) for r in checked if r["rows"] == 0]
    assert not empty


def _rendered(sql: str, lab: str, units: list[str], start: datetime, end: datetime) -> str:
    ctx = QueryContext(start, end, timedelta(hours=1))
    return render(sql, ctx, {"lab": lab, "tz": TZ, "unit": units})


def test_lden_sql_agrees_with_the_science_module_on_a_dst_day(store: Path) -> None:
    end = LDEN_FIRST_HOUR + timedelta(hours=24, minutes=59)
    sql = _rendered(queries.lden_table().sql, "lden-check", ["s1"], LDEN_FIRST_HOUR, end)
    [rows] = in_store(store, ("rows", sql))
    [row] = rows
    starts, levels, coverage = _lden_hours()
    seconds = coverage * 3600
    expected = day_levels(LDEN_DAY, starts, seconds * 10 ** (levels / 10), seconds, TZ)
    assert expected.period_s[2] == 9 * 3600
    for column, value in (
        ("Lden", expected.lden),
        ("Lday", expected.lday),
        ("Levening", expected.levening),
        ("Lnight", expected.lnight),
    ):
        assert row[column] == pytest.approx(value, abs=1e-6), column
    assert row["coverage"] == pytest.approx(sum(seconds) / (25 * 3600))
    assert row["time"] == "2026-10-23T22:00:00Z"  # local midnight of the 24th


def test_lden_and_lki_of_the_demo_agree_with_the_science_module(store: Path) -> None:
    lab = REGISTRY.labs[0]
    units = [u.sensor for u in lab.units]
    start, end = DEMO_START, DEMO_START + timedelta(hours=DEMO_HOURS)
    hourly = (
        f"SELECT sensor, quantity, toUnixTimestamp(window_start) AS start, mean, coverage "
        f"FROM aggregates FINAL WHERE lab = '{lab.id}' AND window = '1h' "
        f"AND quantity IN ('laeq', 'pm25', 'pm10', 'no2', 'o3') ORDER BY start"
    )
    lden, lki, means = in_store(
        store,
        ("rows", _rendered(queries.lden_table().sql, lab.id, units, start, end)),
        ("rows", _rendered(queries.lki_units().sql, lab.id, units, start, end)),
        ("rows", hourly),
    )
    by = {}
    for m in means:
        by.setdefault((m["sensor"], m["quantity"]), []).append(m)
    day = date(2026, 11, 20)
    assert {r["sensor"] for r in lden} == set(units)
    for r in lden:
        laeq = by[(r["sensor"], "laeq")]
        seconds = np.array([m["coverage"] * 3600 for m in laeq])
        energies = seconds * 10 ** (np.array([m["mean"] for m in laeq]) / 10)
        expected = day_levels(day, [m["start"] for m in laeq], energies, seconds, TZ)
        assert r["Lden"] == pytest.approx(expected.lden, abs=1e-6)
        assert r["Lnight"] == pytest.approx(expected.lnight, abs=1e-6)
    assert lki
    for r in lki:
        t = int(datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp())
        subs = {}
        for p in ("pm25", "pm10", "no2", "o3"):
            [m] = [m for m in by[(r["sensor"], p)] if m["start"] == t]
            subs[p] = lki_subindex(p, m["mean"] if m["coverage"] >= 0.75 else np.nan)
        assert r["LKI"] == pytest.approx(float(lki_total(subs)), abs=1e-9)
