"""Cayenne LPP decoding against the independent encoder/decoder pycayennelpp."""

from __future__ import annotations

import pytest
from cayennelpp import LppFrame
from cayennelpp.lpp_type import LppType
from hypothesis import given, settings
from hypothesis import strategies as st

from livinglab.codec import PayloadError, cayenne, decode_payload
from livinglab.codec.payload import QUANTITIES

LPP_TYPES = {t: LppType.get_lpp_type(t) for t in range(256) if LppType.get_lpp_type(t)}


def reference(frame: bytes) -> dict[int, tuple[float, ...]]:
    """Channel -> values as pycayennelpp decodes the frame."""
    return {item.channel: tuple(item.value) for item in LppFrame.from_bytes(frame).data}


def test_typical_off_the_shelf_node() -> None:
    frame = LppFrame()
    frame.add_analog_input(1, 55.3)  # LAeq
    frame.add_analog_input(2, 78.91)  # LAmax
    frame.add_concentration(3, 1850)  # PM2.5 on New Year's Eve: above analog input's 327.67
    frame.add_temperature(4, -3.4)
    frame.add_humidity(5, 61.5)
    frame.add_barometer(6, 1013.2)
    frame.add_voltage(7, 3.61)
    channels = {1: "laeq", 2: "lamax", 3: "pm25", 4: "temperature", 5: "humidity"}
    channels |= {6: "pressure", 7: "battery"}
    data = bytes(frame)
    decoded = cayenne.decode(data, channels)
    want = reference(data)
    assert decoded.values == {q: None for q in QUANTITIES} | {
        q: want[ch][0] for ch, q in channels.items()
    }
    assert decoded.values["pm25"] == 1850 and decoded.values["temperature"] == -3.4
    assert (decoded.version, decoded.status, decoded.firmware, decoded.warnings) == (0, 0, 0, ())
    assert decode_payload(data, "cayenne", channels) == decoded


def test_knows_every_type_pycayennelpp_knows() -> None:
    for lpp_type, spec in LPP_TYPES.items():
        raws = [(1 << (8 * size - 1)) - 1 for size in spec.sizes]  # largest positive
        values = tuple(raw / scale for raw, scale in zip(raws, spec.scales))
        frame = LppFrame()
        frame.add_by_type(lpp_type, 9, values)
        data = bytes(frame)
        decoded = cayenne.decode(data, {9: "laeq"})
        if spec.dimension == 1:
            assert decoded.values["laeq"] == reference(data)[9][0], spec.name
        else:
            assert decoded.values["laeq"] is None
            assert "values; ignored" in decoded.warnings[0], spec.name
    for lpp_type in set(range(256)) - set(LPP_TYPES):
        with pytest.raises(PayloadError) as caught:
            cayenne.decode(bytes([1, lpp_type]) + bytes(9), {1: "laeq"})
        assert caught.value.reason == "type"


@st.composite
def lpp_items(draw: st.DrawFn) -> tuple[int, tuple[float, ...]]:
    """An LPP type with values drawn as raw integers in the type's range."""
    lpp_type = draw(st.sampled_from(sorted(LPP_TYPES)))
    spec = LPP_TYPES[lpp_type]
    values = []
    for size, scale, signed in zip(spec.sizes, spec.scales, spec.signs):
        bits = 8 * size
        lo, hi = (-(1 << bits - 1), (1 << bits - 1) - 1) if signed else (0, (1 << bits) - 1)
        values.append(draw(st.integers(lo, hi)) / scale)
    return lpp_type, tuple(values)


@settings(max_examples=200, deadline=None)
@given(st.lists(lpp_items(), min_size=1, max_size=8))
def test_agrees_with_pycayennelpp_on_random_frames(items: list) -> None:
    frame = LppFrame()
    for channel, (lpp_type, values) in enumerate(items):
        frame.add_by_type(lpp_type, channel, values)
    data = bytes(frame)
    channels = {ch: QUANTITIES[ch] for ch in range(len(items))}
    decoded = cayenne.decode(data, channels)
    for channel, values in reference(data).items():
        got = decoded.values[channels[channel]]
        if len(values) > 1 or (values[0] < 0 and channels[channel] != "temperature"):
            assert got is None
        else:
            assert got == values[0]


def test_warnings_for_what_is_skipped() -> None:
    frame = LppFrame()
    frame.add_analog_input(1, 330.0)  # wraps to -325.36 on the air
    frame.add_gps(2, 52.0907, 5.1214, 5.0)
    frame.add_temperature(3, 21.5)
    frame.add_temperature(4, 21.7)
    frame.add_luminosity(5, 800)
    decoded = cayenne.decode(
        bytes(frame), {1: "pm25", 2: "laeq", 3: "temperature", 4: "temperature"}
    )
    assert decoded.values["pm25"] is None and decoded.values["laeq"] is None
    assert decoded.values["temperature"] == 21.7
    assert decoded.warnings == (
        "channel 1 (analog input) gives pm25 = -325.36: negative, likely an overflow; dropped",
        "channel 2 (gps location) has 3 values; ignored",
        "temperature appears twice; the later channel 4 wins",
        "channel 5 (illuminance) is not mapped; ignored",
    )


@pytest.mark.parametrize(
    ("data", "channels", "reason"),
    [
        (b"", {1: "laeq"}, "empty"),
        (b"\x01", {1: "laeq"}, "truncated"),
        (b"\x01\x02\x15", {1: "laeq"}, "truncated"),
        (b"\x01\x02\x15\x7c\x02", {1: "laeq"}, "truncated"),
        (b"\x01\x88" + bytes(8), {1: "laeq"}, "truncated"),
        (b"\x01\x63\x00", {1: "laeq"}, "type"),
        (b"\x01\x02\x15\x7c", {1: "noise"}, "channels"),
    ],
)
def test_errors(data: bytes, channels: dict[int, str], reason: str) -> None:
    with pytest.raises(PayloadError) as caught:
        cayenne.decode(data, channels)
    assert caught.value.reason == reason
    assert str(caught.value).startswith(f"{reason}: ")


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=40))
def test_fuzz_returns_or_raises_payload_error(data: bytes) -> None:
    try:
        decoded = cayenne.decode(data, {ch: QUANTITIES[ch % len(QUANTITIES)] for ch in range(256)})
    except PayloadError as exc:
        assert exc.reason in {"empty", "truncated", "type"}
    else:
        assert set(decoded.values) == set(QUANTITIES)
