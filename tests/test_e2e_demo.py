"""End to end on the real embedded stack (Tansu, Faust workers, chDB sink).

The demo sends every frame as 1-3 gateway copies, some minutes late and out of
order; whatever the timing, every unique frame must be stored exactly once.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from livinglab.codec.payload import QUANTITIES, encode
from livinglab.registry import load_registry
from tests.conftest import demo_summary, livinglab, sql_rows

pytestmark = pytest.mark.slow

TABLE_DUMPS = {
    "uplinks": "SELECT * FROM uplinks FINAL ORDER BY dev_eui, session, f_cnt",
    "readings": "SELECT * FROM readings FINAL ORDER BY lab, sensor, quantity, ts",
    "aggregates": "SELECT * FROM aggregates FINAL "
    "ORDER BY lab, sensor, quantity, window, window_start",
    "deadletter": "SELECT id, source, stage, reason, detail FROM deadletter FINAL ORDER BY id",
}


def test_every_frame_stored_exactly_once(demo_6h: tuple[Path, dict]) -> None:
    data_dir, summary = demo_6h
    frames = summary["uplinks_sent"]
    assert frames == 70 * 6 * 60  # one uplink a minute per unit
    assert summary["gateway_copies_sent"] > frames * 1.5  # duplicates really were sent
    assert summary["uplinks_stored"] == frames
    assert summary["readings_stored"] == frames * len(QUANTITIES)
    # Without FINAL too: the sink wrote no duplicate rows at all in a clean run.
    [row] = sql_rows(
        data_dir, "SELECT count() AS n, uniqExact(dev_eui, session, f_cnt) AS u FROM uplinks FINAL"
    )
    assert int(row["n"]) == int(row["u"]) == frames
    [gw] = sql_rows(
        data_dir,
        "SELECT min(length(gateway_ids)) AS lo, max(length(gateway_ids)) AS hi FROM uplinks FINAL",
    )
    assert (gw["lo"], gw["hi"]) == (1, 3)


def test_every_unit_has_hourly_aggregates(demo_6h: tuple[Path, dict]) -> None:
    data_dir, summary = demo_6h
    rows = sql_rows(
        data_dir,
        "SELECT lab, sensor, count() AS n, uniqExact(window_start) AS h, "
        "sum(count) AS samples FROM aggregates FINAL WHERE quantity = 'laeq' "
        "AND window = '1h' GROUP BY lab, sensor",
    )
    units = {(u.lab, u.sensor) for u in load_registry().units}
    assert {(r["lab"], r["sensor"]) for r in rows} == units
    assert all(int(r["n"]) == 6 and int(r["h"]) == 6 for r in rows)
    assert all(int(r["samples"]) == 360 for r in rows)  # every reading in exactly one hour
    [hourly] = sql_rows(data_dir, "SELECT count() AS n FROM aggregates FINAL WHERE window = '1h'")
    assert int(hourly["n"]) == 70 * 6 * len(QUANTITIES)


def test_hourly_laeq_matches_an_independent_energetic_mean(demo_6h: tuple[Path, dict]) -> None:
    data_dir, _ = demo_6h
    rows = sql_rows(
        data_dir,
        "SELECT a.sensor, a.window_start, a.mean AS stored, r.ref FROM aggregates AS a FINAL "
        "JOIN (SELECT sensor, toStartOfHour(ts) AS h, 10 * log10(avg(pow(10, value / 10))) AS ref "
        "      FROM readings FINAL WHERE quantity = 'laeq' GROUP BY sensor, h) AS r "
        "ON a.sensor = r.sensor AND a.window_start = r.h "
        "WHERE a.quantity = 'laeq' AND a.window = '1h'",
    )
    assert len(rows) == 420
    assert all(abs(r["stored"] - r["ref"]) < 1e-9 for r in rows)


def test_second_identical_run_gives_identical_tables(demo_6h, tmp_path: Path) -> None:
    data_dir, summary = demo_6h
    again = tmp_path / "again"
    assert demo_summary(again)["uplinks_stored"] == summary["uplinks_stored"]
    for table, query in TABLE_DUMPS.items():
        assert sql_rows(again, query) == sql_rows(data_dir, query), f"{table} differs"


def _tts(unit, f_cnt: int, payload: bytes, at: str = "2026-11-20T10:00:00Z") -> str:
    return json.dumps(
        {
            "end_device_ids": {"dev_eui": unit.dev_eui, "device_id": unit.sensor},
            "received_at": at,
            "uplink_message": {
                "f_port": 1,
                "f_cnt": f_cnt,
                "frm_payload": base64.b64encode(payload).decode(),
                "rx_metadata": [
                    {"gateway_ids": {"eui": "0102030405060708"}, "rssi": -90, "snr": 7.5}
                ],
            },
        }
    )


def test_replay_with_bad_input_dead_letters_and_keeps_running(tmp_path: Path) -> None:
    unit = load_registry().units[3]
    good = encode({"laeq": 61.2, "pm25": 12.5, "no2": 30.0})
    lines = [
        _tts(unit, 7, good),
        "{this is not json",
        json.dumps({"hello": "world"}),
        _tts(unit, 8, good).replace(unit.dev_eui, "0000000000000bad"),
        _tts(unit, 9, b"\x09\x09\x09"),
        json.dumps({"deviceInfo": {"devEui": unit.dev_eui}, "time": 12}),
        _tts(unit, 10, good, at="2026-11-20T10:01:00Z"),
        _tts(unit, 7, good, at="2026-11-20T10:02:00Z"),  # counter 7 again, later: a replay
    ]
    path = tmp_path / "uplinks.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = livinglab("replay", str(path), "--json", "--data-dir", str(tmp_path / "d")).stdout
    result = json.loads(out.splitlines()[-1])
    assert result["messages_read"] == 8
    assert result["uplinks_stored"] == 2
    assert result["readings_stored"] == 6
    assert result["deadletter_reasons"] == {
        "json": 1,
        "format": 1,
        "unknown_device": 1,
        "payload.version": 1,
        "field": 1,
        "replay": 1,
    }
    rows = sql_rows(
        tmp_path / "d",
        "SELECT quantity, value, unit FROM readings FINAL WHERE f_cnt = 7 ORDER BY quantity",
    )
    assert rows == [
        {"quantity": "laeq", "value": 61.2, "unit": "dB(A)"},
        {"quantity": "no2", "value": 30, "unit": "µg/m³"},
        {"quantity": "pm25", "value": 12.5, "unit": "µg/m³"},
    ]
