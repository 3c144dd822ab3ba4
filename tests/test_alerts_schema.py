"""Alert records produced from real detector output validate against schemas/alert.schema.json."""

import json
from pathlib import Path

import numpy as np
import pytest

from streams.alerts import DEFAULT_POLICY, track_all
from streams.alerts.messages import duration, quantity_text
from streams.detectors import (
    AGGREGATE_LIMITS,
    DetectorSettings,
    OfflineConfig,
    OfflineState,
    SpatialConfig,
    SpatialState,
    UnitState,
    check_aggregate,
    check_offline,
    detect_spatial,
    detect_unit,
    record_uplinks,
)

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema validates the alert schema")
SCHEMA = json.loads((Path(__file__).parents[1] / "schemas" / "alert.schema.json").read_text())
H = 3_600_000


def _records() -> list[dict]:
    events, eps = [], {}
    ts = np.arange(40) * 5 * 60_000
    readings = {
        "pm25": np.where(np.arange(40) % 13 == 12, 300.0, 9.0 + np.arange(40) % 3),
        "humidity": np.r_[np.full(20, 99.0), np.full(20, 50.0)],
        "battery": np.r_[np.full(20, 3.2), np.full(20, 3.9)],
        "laeq": np.r_[np.full(10, 200.0), np.full(30, 55.0)],
    }
    reboot = np.arange(40) % 17 == 0
    conds, _ = detect_unit(DetectorSettings(), UnitState(), ts, readings, reboot)
    out, eps = track_all(DEFAULT_POLICY, eps, "zoetermeer", "zt-03", conds)
    events += out
    air = check_aggregate(AGGREGATE_LIMITS, "1h", "o3", "µg/m³", np.arange(4) * H,
                          [190.0, 250.0, 200.0, 100.0], 1.0)  # fmt: skip
    night = check_aggregate(AGGREGATE_LIMITS, "lnight", "laeq", "dB(A)", [0, 24 * H], [52.3, 40.0])
    out, eps = track_all(DEFAULT_POLICY, eps, "zoetermeer", "zt-03", air + night)
    events += out
    state = record_uplinks(OfflineState(), 0)
    for now in (H, 25 * H):
        out, eps = track_all(DEFAULT_POLICY, eps, "zoetermeer", "zt-03",
                             [check_offline(OfflineConfig(), state, now)])  # fmt: skip
        events += out
    state = record_uplinks(state, 25 * H + 1)
    out, eps = track_all(DEFAULT_POLICY, eps, "zoetermeer", "zt-03",
                         [check_offline(OfflineConfig(), state, 25 * H + 60_000)])  # fmt: skip
    events += out
    spatial = SpatialConfig(min_diff=10.0, window=1, min_hits=1)
    out_sp, _ = detect_spatial(spatial, SpatialState(), "pm25", "µg/m³", 0,
                               {"a": 10.0, "b": 11.0, "c": 12.0, "zt-03": 40.0})  # fmt: skip
    out, eps = track_all(DEFAULT_POLICY, eps, "zoetermeer", "zt-03", [out_sp["zt-03"]])
    events += out
    return [e.to_record() for e in events]


def test_produced_alerts_validate() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    validator = jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    records = _records()
    kinds = {(r["kind"], r["state"]) for r in records}
    for expected in [("range.physical", "open"), ("range.physical", "resolved"),
                     ("battery_low", "open"), ("battery_low", "resolved"), ("spike", "open"),
                     ("humidity_pm", "resolved"), ("reboot", "open"),
                     ("threshold.o3_hour", "update"),
                     ("threshold.noise_night", "resolved"), ("offline", "update"),
                     ("offline", "resolved"), ("spatial_outlier", "open")]:  # fmt: skip
        assert expected in kinds
    for record in records:
        json.dumps(record, allow_nan=False)
        errors = [e.message for e in validator.iter_errors(record)]
        assert errors == [], (record, errors)


def test_schema_rejects_inconsistent_records() -> None:
    record = next(r for r in _records() if r["state"] == "open")
    validator = jsonschema.Draft202012Validator(SCHEMA)
    assert validator.is_valid(record)
    assert not validator.is_valid({**record, "ended": "2026-01-01T00:00:00.000Z"})
    assert not validator.is_valid({**record, "severity": "high"})
    assert not validator.is_valid({k: v for k, v in record.items() if k != "message_nl"})


def test_number_and_duration_texts() -> None:
    assert quantity_text(52.34, "dB(A)", 0) == "52,3 dB(A)"
    assert quantity_text(45.0, "dB(A)", 1, bare=True) == "45"
    assert quantity_text(3.284, "V", 0) == "3,28 V"
    assert quantity_text(-0.04, "°C/min", 1) == "0 °C/min"
    assert quantity_text(5, "readings", 0) == "5 metingen"
    assert duration(45, 0) == "45 s"
    assert duration(900, 1) == "15 min"
    assert duration(2 * 3600 + 5 * 60, 0) == "2 uur 5 min"
    assert duration(86400 + 3600, 0) == "1 dag 1 uur"
    assert duration(3 * 86400, 1) == "3 d"
