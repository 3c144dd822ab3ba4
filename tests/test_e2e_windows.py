"""Event-time windows end to end on the real embedded stack (Tansu, Faust worker, chDB).

The same simulated uplinks of a few units are replayed three times through
`livinglab replay`: in event-time order; shuffled within the allowed lateness with
duplicates; and shuffled beyond it (so windows close before some of their readings
arrive and are corrected) plus one reading older than the correction horizon. The final
windows (the highest version of each) must be the same in all three stores.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from connectors.lns import normalise
from livinglab.registry import load_registry
from livinglab.simulator.fleet import iso, unit_messages
from tests.conftest import livinglab, sql_rows

pytestmark = pytest.mark.slow

START = 1_795_132_800_000  # 2026-11-20T00:00:00Z
HOURS = 26
ENV = {"LIVINGLAB_LATENESS_S": "120", "LIVINGLAB_HORIZON_S": str(6 * 3600)}
FINAL = """
SELECT sensor, quantity, window, toUnixTimestamp64Milli(window_start) AS start,
       argMax(tuple(count, coverage, mean, min, max, valid, flags, valid_hours, l10, l50, l90),
              version) AS stats
FROM aggregates GROUP BY sensor, quantity, window, window_start
ORDER BY sensor, quantity, window, start"""
FINAL_INDICES = """
SELECT sensor, indicator, window, toUnixTimestamp64Milli(window_start) AS start,
       argMax(tuple(value, coverage, valid), version) AS value
FROM indices GROUP BY sensor, indicator, window, window_start
ORDER BY sensor, indicator, window, start"""


def _messages() -> list[tuple[int, bytes]]:
    registry = load_registry()
    units = [(registry.lab("zoetermeer"), 1), (registry.lab("zoetermeer"), 4)]
    units += [(registry.lab("veldhoven"), 2)]  # ChirpStack
    out = []
    for i, (lab, k) in enumerate(units):
        for m in unit_messages(lab, lab.units[k], i, START, START + HOURS * 3_600_000, seed=9):
            out.append((normalise(m.body)["received_at"], m.body))
    return out


def _shuffled(messages, spread_ms: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    keyed = [(ts + int(rng.integers(0, spread_ms)), body) for ts, body in messages]
    keyed += [
        (ts + int(rng.integers(0, 2 * spread_ms)), body)
        for ts, body in messages
        if rng.random() < 0.05
    ]
    return [body for _, body in sorted(keyed, key=lambda k: k[0])]


def _too_late(messages) -> bytes:
    """A new frame of a TTS unit whose event time is 20 h before the end of the data."""
    bodies = [json.loads(b) for _, b in messages if b"end_device_ids" in b]
    last = max(bodies, key=lambda b: b["uplink_message"]["f_cnt"])
    at = iso(START + 6 * 3_600_000)
    last["received_at"] = last["uplink_message"]["received_at"] = at
    last["uplink_message"]["f_cnt"] += 5
    return json.dumps(last).encode()


def _replay(tmp_path: Path, name: str, lines: list[bytes]) -> tuple[Path, dict]:
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    data = tmp_path / name
    out = livinglab("replay", str(path), "--json", "--data-dir", str(data), env=ENV).stdout
    return data, json.loads(out.splitlines()[-1])


def _same(a: list[dict], b: list[dict], field: str) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert [x[k] for k in x if k != field] == [y[k] for k in y if k != field]
        for u, v in zip(x[field], y[field]):
            if isinstance(u, float) or isinstance(v, float):
                assert (u is None) == (v is None)
                if u is not None:
                    assert u == pytest.approx(v, rel=1e-9) or (math.isnan(u) and math.isnan(v))
            else:
                assert u == v


@pytest.fixture(scope="module")
def replays(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict]]:
    tmp = tmp_path_factory.mktemp("windows")
    messages = _messages()
    in_order = [body for _, body in sorted(messages, key=lambda m: m[0])]
    return {
        "in_order": _replay(tmp, "in_order", in_order),
        "within": _replay(tmp, "within", _shuffled(messages, 90_000, seed=1)),
        "beyond": _replay(
            tmp, "beyond", [*_shuffled(messages, 10 * 60_000, seed=2), _too_late(messages)]
        ),
    }


def test_shuffled_replays_give_the_same_final_windows(replays) -> None:
    (ordered, _), (within, _), (beyond, summary) = (
        replays["in_order"],
        replays["within"],
        replays["beyond"],
    )
    reference = sql_rows(ordered, FINAL)
    assert {r["window"] for r in reference} == {"1h", "8h", "24h", "1d"}
    assert len([r for r in reference if r["window"] == "1h"]) == 3 * HOURS * 15
    for data in (within, beyond):
        _same(sql_rows(data, FINAL), reference, "stats")
        _same(sql_rows(data, FINAL_INDICES), sql_rows(ordered, FINAL_INDICES), "value")
    # Within the lateness nothing was corrected; beyond it, windows were.
    versions = "SELECT max(version) AS v FROM aggregates WHERE window = '1h'"
    assert sql_rows(within, versions) == [{"v": 1}]
    assert sql_rows(beyond, versions)[0]["v"] > 1
    assert summary["deadletter_reasons"].get("too_late") == 1


def test_a_reading_beyond_the_horizon_is_kept_raw_and_dead_lettered(replays) -> None:
    beyond, _ = replays["beyond"]
    [dead] = sql_rows(
        beyond, "SELECT stage, detail, dev_eui FROM deadletter FINAL WHERE reason = 'too_late'"
    )
    assert dead["stage"] == "window" and "correction horizon" in dead["detail"]
    # The reading itself is stored like any other, at its event time.
    rows = sql_rows(
        beyond,
        f"SELECT count() AS n FROM readings FINAL WHERE dev_eui = '{dead['dev_eui']}' "
        f"AND ts = fromUnixTimestamp64Milli({START + 6 * 3_600_000}) AND quantity = 'laeq'",
    )
    assert rows == [{"n": 1}]


def test_lab_lki_view_is_the_median_over_units(replays) -> None:
    ordered, _ = replays["in_order"]
    units = sql_rows(
        ordered,
        "SELECT lab, toUnixTimestamp64Milli(window_start) AS t, indicator, value "
        "FROM indices FINAL WHERE window = '1h' AND startsWith(indicator, 'lki_') AND valid "
        "AND lab = 'zoetermeer' ORDER BY t",
    )
    lab = {
        r["t"]: r
        for r in sql_rows(
            ordered,
            "SELECT toUnixTimestamp64Milli(window_start) AS t, lki, subindices, pollutants "
            "FROM lki_lab WHERE lab = 'zoetermeer'",
        )
    }
    assert len(lab) == HOURS
    for t, row in lab.items():
        subs = {}
        for p in row["pollutants"]:
            values = sorted(
                r["value"] for r in units if r["t"] == t and r["indicator"] == f"lki_{p}"
            )
            subs[p] = values[len(values) // 2]  # the upper median: a member, as medianExact
        assert row["subindices"] == pytest.approx([subs[p] for p in row["pollutants"]])
        levels = {min(11, max(1, math.ceil(s))) for s in subs.values()}
        expected = min(11.0, max(subs.values()) + (len(subs) >= 2 and len(levels) == 1))
        assert row["lki"] == pytest.approx(expected)
