"""connectors.lns against the network servers' own documented uplink examples, and junk.

The examples are in tests/fixtures/lns (SOURCES.md names each one's origin); the expected values
are read off the published JSON by hand. Every message either becomes an Uplink record that
encodes with the Avro contract or raises IngressError with a reason: never anything else.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.lns import MAX_MESSAGE_BYTES, IngressError, normalise
from schemas import codec

FIXTURES = Path(__file__).parent / "fixtures" / "lns"
UPLINK = codec("uplink")


def example(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def ms(text: str) -> int:
    return round(datetime.fromisoformat(text).timestamp() * 1000)


def test_tts_data_formats_uplink_example() -> None:
    uplink = normalise(example("tts_v3_uplink_example.json"))
    assert uplink["source"] == "tts"
    assert uplink["dev_eui"] == "0004a30b001c0530"
    assert uplink["dev_addr"] == "00bcb929"
    assert uplink["f_cnt"] == 1
    assert uplink["f_port"] == 0  # omitted in the example: zero fields are left out
    assert uplink["payload"] == bytes.fromhex("8241de")  # "gkHe"
    assert uplink["received_at"] == ms("2020-02-12T15:15:46.014+00:00")
    assert uplink["gateways"] == [
        {
            "id": "9c5c8e00001a05c4",
            "rssi": -35.0,
            "snr": 5.0,
            "time": ms("2020-02-12T15:15:45.787+00:00"),
        }
    ]
    assert uplink["frequency"] == 868_300_000  # a string in the example
    assert uplink["spreading_factor"] == 7
    UPLINK.encode(uplink)


def test_chirpstack_v4_event_types_up_example() -> None:
    uplink = normalise(example("chirpstack_v4_up_example.json"))
    assert uplink["source"] == "chirpstack4"
    assert uplink["dev_eui"] == "0101010101010101"
    assert uplink["dev_addr"] == "00189440"
    assert uplink["f_cnt"] == 0  # fCnt 0 is omitted by ChirpStack
    assert uplink["f_port"] == 1
    assert uplink["payload"] == b"\xaa"  # "qg=="
    assert uplink["received_at"] == ms("2022-07-18T09:34:15.775+00:00")  # nanoseconds cut
    assert uplink["gateways"] == [
        {"id": "0016c001f153a14c", "rssi": -36.0, "snr": 10.5, "time": None}
    ]
    assert uplink["frequency"] == 867_100_000
    assert uplink["spreading_factor"] == 11
    UPLINK.encode(uplink)


def test_chirpstack_v3_event_types_up_example() -> None:
    published = json.loads(example("chirpstack_v3_up_example.json"))
    with pytest.raises(IngressError, match="data is not valid base64") as caught:
        normalise(json.dumps(published).encode())  # the docs elide the payload as "..."
    assert caught.value.reason == "field"
    uplink = normalise(json.dumps({**published, "data": "AQID"}).encode())
    assert uplink["source"] == "chirpstack3"
    assert uplink["dev_eui"] == "0202020202020202"  # "AgICAgICAgI=", protobuf JSON bytes
    assert uplink["f_cnt"] == 10
    assert uplink["f_port"] == 5
    assert uplink["payload"] == b"\x01\x02\x03"
    assert uplink["received_at"] == ms("2019-11-08T13:59:25.048+00:00")
    assert uplink["gateways"] == [
        {
            "id": "0303030303030303",
            "rssi": -48.0,
            "snr": 9.0,
            "time": ms("2019-11-08T13:59:25.048+00:00"),
        }
    ]
    assert uplink["frequency"] == 868_100_000
    assert uplink["spreading_factor"] == 11
    UPLINK.encode(uplink)


V4 = json.loads(example("chirpstack_v4_up_example.json"))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x00\xff\xfe junk", "json"),
        (b"", "json"),
        (b"{not json", "json"),
        (b"[1, 2, 3]", "json"),
        (b"[" * 20_000 + b"]" * 20_000, "json"),  # nested past the recursion limit
        (b'{"hello": "world"}', "format"),
        (json.dumps({**V4, "deviceInfo": []}).encode(), "field"),
        (json.dumps({**V4, "deviceInfo": {"devEui": 42}}).encode(), "field"),
        (json.dumps({**V4, "fCnt": "many"}).encode(), "field"),
        (json.dumps({**V4, "fCnt": True}).encode(), "field"),
        (json.dumps({**V4, "fCnt": 2**32}).encode(), "field"),
        (json.dumps({**V4, "fPort": 256}).encode(), "field"),
        (json.dumps({**V4, "fPort": -1}).encode(), "field"),
        (json.dumps({**V4, "txInfo": {"frequency": 10**30}}).encode(), "field"),
        (
            json.dumps(
                {**V4, "txInfo": {"modulation": {"lora": {"spreadingFactor": 2**40}}}}
            ).encode(),
            "field",
        ),
        (json.dumps({**V4, "time": 1658136855}).encode(), "field"),
        (json.dumps({**V4, "time": "yesterday"}).encode(), "field"),
        (json.dumps({**V4, "data": 12}).encode(), "field"),
        (json.dumps({**V4, "data": "not base64!"}).encode(), "field"),
        (json.dumps({**V4, "pad": "x" * MAX_MESSAGE_BYTES}).encode(), "too_large"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_junk_is_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(IngressError) as caught:
        normalise(raw)
    assert caught.value.reason == reason
    assert str(caught.value)


def test_unreadable_signal_figures_are_unknown_not_fatal() -> None:
    rx = {"gatewayId": "0016c001f153a14c", "rssi": 10**400, "snr": "NaN"}
    uplink = normalise(json.dumps({**V4, "rxInfo": [rx, "junk"]}).encode())
    assert uplink["gateways"] == [
        {"id": "0016c001f153a14c", "rssi": None, "snr": None, "time": None}
    ]
    uplink = normalise(
        b'{"deviceInfo": {"devEui": "0101010101010101"}, "time": "2022-07-18T09:34:15Z",'
        b' "rxInfo": [{"gatewayId": "g", "rssi": NaN, "snr": Infinity}]}'
    )
    assert uplink["gateways"][0]["rssi"] is None and uplink["gateways"][0]["snr"] is None
    UPLINK.encode(uplink)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
TOP_LEVEL = sorted(
    {"end_device_ids", "uplink_message", "received_at"}  # TTS
    | {"deviceInfo", "fCnt", "fPort", "data", "time", "rxInfo", "txInfo", "devAddr"}  # v4
    | {"devEUI", "publishedAt"}  # ChirpStack v3 (and the v4 names it shares)
)
TEMPLATES = {
    "tts": json.loads(example("tts_v3_uplink_example.json")),
    "chirpstack4": V4,
    "chirpstack3": {**json.loads(example("chirpstack_v3_up_example.json")), "data": "AQID"},
}


@settings(max_examples=300, deadline=None)
@given(
    fmt=st.sampled_from(sorted(TEMPLATES)),
    changes=st.dictionaries(st.sampled_from(TOP_LEVEL), json_values, max_size=3),
    nested=st.dictionaries(
        st.sampled_from(
            ["f_cnt", "f_port", "frm_payload", "rx_metadata", "settings", "received_at"]
        ),
        json_values,
        max_size=2,
    ),
)
def test_any_shape_becomes_an_encodable_uplink_or_an_ingress_error(
    fmt: str, changes: dict[str, Any], nested: dict[str, Any]
) -> None:
    message = {**TEMPLATES[fmt], **changes}
    if fmt == "tts" and isinstance(message.get("uplink_message"), dict):
        message["uplink_message"] = {**message["uplink_message"], **nested}
    raw = json.dumps(message).encode()
    try:
        uplink = normalise(raw)
    except IngressError as exc:
        assert exc.reason in {"json", "format", "field", "too_large"}
        return
    UPLINK.encode(uplink)
    assert uplink["original"] == raw


def test_base64_euis_of_chirpstack_v3_must_have_eight_bytes() -> None:
    published = {**TEMPLATES["chirpstack3"], "devEUI": base64.b64encode(b"\x02" * 7).decode()}
    with pytest.raises(IngressError, match="devEUI"):
        normalise(json.dumps(published).encode())
