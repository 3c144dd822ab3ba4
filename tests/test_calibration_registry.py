"""Per-unit calibration: registry entries, the correction formulas against references
written here, version selection by event time, and what the processor stores."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from livinglab.codec.payload import encode
from livinglab.registry import DEFAULT_REGISTRY, RegistryError, load_registry, parse_registry
from schemas import codec
from streams import quality
from streams.calibration import Calibration, apply
from streams.processor import CONTROL_KEY, END_OF_INPUT, PartitionProcessor

REGISTRY = load_registry()
ZOE02 = REGISTRY.lab("zoetermeer").units[1]
NOV20_NOON = int(datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp() * 1000)


def ref_pm(pm: float, rh: float, kappa: float, offset: float, slope: float) -> float:
    """Crilley et al. (2018): PM / (1 + (kappa/1.65) / (-1 + 1/a_w)), a_w = RH/100, RH
    clipped to 95 %; then the linear calibration."""
    aw = min(max(rh, 0.0), 95.0) / 100
    growth = 1 + (kappa / 1.65) / (-1 + 1 / aw) if aw > 0 else 1.0
    return offset + slope * pm / growth


number = st.floats(-50, 50, allow_nan=False)


@settings(deadline=None, max_examples=80)
@given(
    pm=st.floats(0, 500),
    rh=st.floats(0, 100),
    kappa=st.floats(0, 1),
    offset=number,
    slope=st.floats(0.5, 1.5),
    rh_offset=st.floats(-5, 5),
)
def test_pm_humidity_and_linear_correction_match_the_formula(
    pm, rh, kappa, offset, slope, rh_offset
) -> None:
    cal = Calibration(
        "v1", linear={"pm25": (offset, slope), "humidity": (rh_offset, 1.0)}, pm_kappa=kappa
    )
    values, version = apply((cal,), 0, {"pm25": pm, "humidity": rh, "no2": 20.0})
    assert version == "v1"
    assert values["humidity"] == pytest.approx(rh + rh_offset)
    assert values["pm25"] == pytest.approx(ref_pm(pm, rh + rh_offset, kappa, offset, slope))
    assert values["no2"] == 20.0  # no entry: as measured


def test_pm_without_humidity_gets_the_linear_correction_only() -> None:
    cal = Calibration("v1", linear={"pm10": (1.0, 2.0)}, pm_kappa=0.4)
    assert apply((cal,), 0, {"pm10": 10.0}) == ({"pm10": 21.0}, "v1")


def test_the_version_valid_at_the_event_time_applies() -> None:
    raw = {"pm25": 20.0, "humidity": 80.0, "no2": 30.0}
    assert apply(ZOE02.calibration, 0, raw) == (raw, "none")  # before the first version
    early, early_version = apply(ZOE02.calibration, NOV20_NOON - 1, raw)
    late, late_version = apply(ZOE02.calibration, NOV20_NOON, raw)
    assert (early_version, late_version) == ("zoe-02/2026-03", "zoe-02/2026-11")
    assert early["pm25"] == pytest.approx(ref_pm(20.0, 80.0, 0.4, -0.4, 0.92))
    assert late["pm25"] == pytest.approx(ref_pm(20.0, 78.0, 0.35, -0.2, 0.9))
    assert (early["no2"], late["no2"]) == (27.0, 27.5)
    assert raw == {"pm25": 20.0, "humidity": 80.0, "no2": 30.0}  # untouched


def _broken(tmp_path: Path, calibration) -> Path:
    raw = yaml.safe_load(DEFAULT_REGISTRY.read_text())
    raw["labs"][0]["units"][2]["calibration"] = calibration
    path = tmp_path / "labs.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("calibration", "problem"),
    [
        ({"version": "a"}, "calibration must be a list"),
        ([{"pm25": {"slope": 1}}], "'version' must be a non-empty name"),
        ([{"version": "none"}], "other than 'none'"),
        ([{"version": "a"}, {"version": "a", "valid_from": "2026-01-01"}], "duplicate version"),
        ([{"version": "a"}, {"version": "b"}], "'valid_from' is required"),
        (
            [
                {"version": "a", "valid_from": "2026-05-01T00:00:00Z"},
                {"version": "b", "valid_from": "2026-01-01T00:00:00Z"},
            ],
            "increasing valid_from",
        ),
        ([{"version": "a", "valid_from": "soon"}], "not an ISO 8601 time"),
        ([{"version": "a", "pm26": {"slope": 1}}], "unknown quantity 'pm26'"),
        ([{"version": "a", "pm25": {"slope": "x"}}], "'slope' must be a finite number"),
        ([{"version": "a", "pm25": {"slope": 0}}], "'slope' must be positive"),
        ([{"version": "a", "pm25": {"gain": 2}}], "unknown field(s) ['gain']"),
        ([{"version": "a", "pm_humidity": {"kappa": -1}}], "needs only 'kappa' >= 0"),
        ([{"version": "a", "pm_humidity": {}}], "'kappa' must be a finite number"),
    ],
)
def test_broken_calibration_names_the_unit_and_the_problem(tmp_path, calibration, problem):
    with pytest.raises(RegistryError) as err:
        load_registry(_broken(tmp_path, calibration))
    assert err.value.entry == "lab zoetermeer, unit zoe-03"
    assert problem in err.value.problem
    assert str(err.value).startswith(f"{tmp_path / 'labs.yaml'}: lab zoetermeer, unit zoe-03:")


def test_valid_from_may_be_a_yaml_timestamp_or_a_string() -> None:
    raw = yaml.safe_load(DEFAULT_REGISTRY.read_text())
    unit = raw["labs"][0]["units"][2]
    unit["calibration"] = [
        {"version": "a", "valid_from": datetime(2026, 1, 1)},  # naive: UTC
        {"version": "b", "valid_from": "2026-02-01T01:00:00+01:00"},
    ]
    cal = parse_registry(raw, DEFAULT_REGISTRY).lab("zoetermeer").units[2].calibration
    assert [c.valid_from for c in cal] == [1767225600000, 1769904000000]


def test_readings_keep_raw_and_calibrated_values_and_windows_use_calibrated() -> None:
    up = codec("uplink")
    records = [
        (
            b"k",
            up.encode(
                {
                    "source": "tts",
                    "dev_eui": ZOE02.dev_eui,
                    "dev_addr": None,
                    "f_cnt": f,
                    "f_port": 1,
                    "received_at": NOV20_NOON + f * 60_000,
                    "gateways": [{"id": "gw", "rssi": -80.0, "snr": 5.0, "time": None}],
                    "frequency": None,
                    "spreading_factor": None,
                    "payload": encode({"pm25": 10.0 + f % 7, "humidity": 60.0 + f % 20}),
                    "original": b"{}",
                }
            ),
        )
        for f in range(60)
    ] + [(CONTROL_KEY, END_OF_INPUT)]
    proc = PartitionProcessor(REGISTRY, 0, {}, {})
    for offset, (key, value) in enumerate(records):
        proc.handle(offset, key, value, up.headers)
    proc.end_batch()
    outputs, _ = proc.take()
    readings = [codec("reading").decode(v) for t, _, v, _ in outputs if t == "readings"]
    assert {r["calibration"] for r in readings} == {"zoe-02/2026-11"}
    for r in readings:
        raw = r["raw_values"]
        assert raw["pm25"] == pytest.approx(10.0 + r["f_cnt"] % 7, abs=0.05)
        rh = raw["humidity"] - 2.0
        assert r["values"]["humidity"] == pytest.approx(rh)
        assert r["values"]["pm25"] == pytest.approx(ref_pm(raw["pm25"], rh, 0.35, -0.2, 0.9))
        humid = quality.HUMIDITY_AFFECTED if rh > quality.HUMID_RH else 0
        assert r["flags"].get("pm25", 0) == humid
    [hour] = [
        codec("aggregate").decode(v)
        for t, _, v, _ in outputs
        if t == "aggregates" and codec("aggregate").decode(v)["window"] == "1h"
    ]
    pm25 = next(s for s in hour["stats"] if s["quantity"] == "pm25")
    expected = sum(r["values"]["pm25"] for r in readings) / len(readings)
    assert pm25["mean"] == pytest.approx(expected, rel=1e-12)
    assert pm25["flags"] == quality.HUMIDITY_AFFECTED  # some of the hour was humid
