"""The harness reads only the frame (dev_eui, f_cnt) of each output record; checked
against decoding the whole record with fastavro and the json module."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.contenders import avro_frame, json_frame
from bench.contenders.job import encode
from schemas import codec

READING = codec("reading")
names = st.text(max_size=30)  # also multi-byte: lengths are in bytes


def _reading(lab: str, sensor: str, dev_eui: str, ts: int, session: int, f_cnt: int) -> dict:
    return {
        "lab": lab, "sensor": sensor, "dev_eui": dev_eui, "ts": ts, "session": session,
        "f_cnt": f_cnt, "f_port": 1, "uplink_version": 1, "source": "sim",
        "gateways": [{"id": "g", "rssi": -90.0, "snr": 7.0, "time": ts}],
        "frequency": 868_100_000, "spreading_factor": 7, "payload": b"\x02",
        "status": 0, "calibration": "none", "values": {"laeq": 55.0},
        "raw_values": {"laeq": 55.0}, "flags": {},
    }  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    names,
    names,
    names,
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(-(2**63), 2**63 - 1),
)
def test_avro_frame_is_the_decoded_readings(lab, sensor, dev_eui, ts, session, f_cnt) -> None:
    value = READING.encode(_reading(lab, sensor, dev_eui, ts, session, f_cnt))
    decoded = READING.decode(value)
    assert avro_frame(value) == (decoded["dev_eui"], decoded["f_cnt"])


@settings(max_examples=300, deadline=None)
@given(st.text("0123456789abcdef", min_size=16, max_size=16), st.integers(0, 2**32 - 1))
def test_json_frame_is_the_parsed_readings(dev_eui: str, f_cnt: int) -> None:
    value = encode(
        {"lab": "lab-1", "sensor": "s-1", "dev_eui": dev_eui, "f_cnt": f_cnt,
         "ts": 1_767_225_600_000, "values": {"laeq": 55.0, "pm25": 9.0}}
    )  # fmt: skip
    parsed = json.loads(value)
    assert json_frame(value) == (parsed["dev_eui"], parsed["f_cnt"])
    assert json_frame(json.dumps(parsed, indent=1).encode()) == json_frame(value)
    assert json_frame(b'{"other": 1}') is None
