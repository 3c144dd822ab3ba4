"""Properties of the native Python codec: round trips, clamping, errors, fuzzing.

Field ranges and resolutions come from the field table in firmware/test-vectors.json
(the spec in machine-readable form), not from the codec's own tables.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livinglab.codec import Decoded, PayloadError, decode_payload, payload

SPEC = json.loads(
    (Path(__file__).parents[1] / "firmware" / "test-vectors.json").read_text(encoding="utf-8")
)
FIELDS = {int(v): [f for f in rows if "unit" in f] for v, rows in SPEC["fields"].items()}
RESOLUTION = {v: {f["name"]: f["resolution"] for f in rows} for v, rows in FIELDS.items()}
BOUNDS = {v: {f["name"]: (f["min"], f["max"]) for f in rows} for v, rows in FIELDS.items()}
CLAMPED = payload.STATUS_BITS["clamped"]


def check_round_trip(values: dict[str, float | None], version: int, decoded: Decoded) -> None:
    """Values come back within half a resolution step; beyond that past a bound, clamped."""
    assert decoded.version == version
    must_clamp = may_clamp = False
    for q in payload.QUANTITIES:
        x = values.get(q)
        got = decoded.values[q]
        if x is None or math.isnan(x):
            assert got is None, q
            continue
        lo, hi = BOUNDS[version][q]
        half = RESOLUTION[version][q] / 2
        nearest = min(max(x, lo), hi)
        assert lo <= got <= hi, (q, x, got)
        if x == nearest:
            assert abs(got - x) <= half * (1 + 1e-9) + 1e-12, (q, x, got)
        else:
            assert got == nearest, (q, x, got)
            must_clamp |= abs(x - nearest) > half * (1 + 1e-9)
            may_clamp |= abs(x - nearest) >= half * (1 - 1e-9)
    if must_clamp:
        assert decoded.status & CLAMPED
    if not may_clamp:
        assert not decoded.status & CLAMPED


def readings(version: int) -> st.SearchStrategy[dict[str, float | None]]:
    """Readings around and beyond each field's range, ties, NaN and infinities."""

    def value(q: str) -> st.SearchStrategy[float | None]:
        lo, hi = BOUNDS[version][q]
        step = RESOLUTION[version][q]
        return st.one_of(
            st.none(),
            st.floats(lo - 10 * step, hi + 10 * step),
            st.integers(round(lo / step), round(hi / step)).map(lambda k: (k + 0.5) * step),
            st.floats(allow_nan=True, allow_infinity=True),
        )

    return st.fixed_dictionaries({}, optional={q: value(q) for q in RESOLUTION[version]})


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([1, 2]).flatmap(lambda v: st.tuples(st.just(v), readings(v))))
def test_encode_decode_round_trip(case: tuple[int, dict[str, float | None]]) -> None:
    version, values = case
    encoded = payload.encode(values, version=version)
    check_round_trip(values, version, payload.decode(encoded))


def test_units_match_the_spec() -> None:
    assert SPEC["quantities"] == list(payload.QUANTITIES)
    assert {f["name"]: f["unit"] for f in FIELDS[payload.VERSION]} == payload.UNITS


def test_clamping_sets_status_and_keeps_other_bits() -> None:
    reboot = payload.STATUS_BITS["reboot"]
    decoded = payload.decode(payload.encode({"pm25": 7000.0}, status=reboot))
    assert decoded.values["pm25"] == 6553.4
    assert decoded.status == reboot | CLAMPED
    assert payload.decode(payload.encode({"pm25": 6553.4})).status == 0


def test_firmware_and_status_helpers() -> None:
    decoded = payload.decode(payload.encode({}, firmware=0x0203))
    assert decoded.firmware == 0x0203 and payload.firmware_version(decoded.firmware) == "2.3"
    assert payload.decode(payload.encode({}, version=1)).firmware == 0
    assert payload.status_flags(0xFC21) == ("noise_fault", "reboot")


@pytest.mark.parametrize(
    ("values", "kwargs", "message"),
    [
        ({"noise": 50.0}, {}, "unknown quantities"),
        ({"pm1": 3.0}, {"version": 1}, "no field for"),
        ({}, {"version": 1, "status": 0x100}, "status"),
        ({}, {"status": 0x10000}, "status"),
        ({}, {"firmware": -1}, "firmware"),
        ({}, {"version": 3}, "version 3"),
    ],
)
def test_encode_rejects_caller_errors(values: dict, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        payload.encode(values, **kwargs)


def test_version_1_accepts_absent_quantities_as_none() -> None:
    encoded = payload.encode({"laeq": 50.0, "pm1": None}, version=1)
    assert payload.decode(encoded).values["pm1"] is None


def test_payload_error_is_a_value_error_with_reason() -> None:
    with pytest.raises(ValueError) as caught:
        payload.decode(b"\x02\x00")
    assert isinstance(caught.value, PayloadError)
    assert caught.value.reason == "truncated"


def test_decode_payload_dispatch() -> None:
    encoded = payload.encode({"laeq": 61.2})
    assert decode_payload(encoded, "livinglab") == payload.decode(encoded)
    assert decode_payload(b"\x01\x02\x15\x7c", "cayenne", {1: "laeq"}).values["laeq"] == 55.0
    for args, reason in [
        ((encoded, "json"), "format"),
        ((encoded, "cayenne"), "channels"),
        ((b"", "livinglab"), "empty"),
    ]:
        with pytest.raises(PayloadError) as caught:
            decode_payload(*args)
        assert caught.value.reason == reason


def assert_batch_agrees(payloads: list[bytes]) -> None:
    batch = payload.decode_batch(payloads)
    assert len(batch.ok) == len(payloads)
    for i, data in enumerate(payloads):
        try:
            one = payload.decode(data)
        except PayloadError as exc:
            assert not batch.ok[i]
            assert (batch.errors[i].reason, str(batch.errors[i])) == (exc.reason, str(exc))
            assert (batch.version[i], batch.status[i], batch.firmware[i]) == (0, 0, 0)
            assert all(np.isnan(batch.values[q][i]) for q in payload.QUANTITIES)
            continue
        assert batch.ok[i] and i not in batch.errors
        assert (batch.version[i], batch.status[i], batch.firmware[i]) == (
            one.version,
            one.status,
            one.firmware,
        )
        for q, value in one.values.items():
            got = batch.values[q][i]
            assert np.isnan(got) if value is None else got == value
    assert set(batch.errors) == set(np.flatnonzero(~batch.ok).tolist())


# Payloads with a valid version byte and length, so fuzzing reaches the field checks.
framed = st.sampled_from([(1, 15), (2, 34)]).flatmap(
    lambda vl: st.binary(min_size=vl[1], max_size=vl[1]).map(lambda b: bytes([vl[0]]) + b)
)
any_payload = st.one_of(st.binary(max_size=60), framed)


@settings(max_examples=500, deadline=None)
@given(any_payload)
def test_fuzz_decode_returns_or_raises_payload_error(data: bytes) -> None:
    try:
        decoded = payload.decode(data)
    except PayloadError as exc:
        assert exc.reason in {"empty", "version", "truncated", "length", "range"}
        return
    assert set(decoded.values) == set(payload.QUANTITIES)
    assert payload.encode(
        decoded.values, status=decoded.status, firmware=decoded.firmware, version=decoded.version
    ) == bytes(data)


@settings(max_examples=150, deadline=None)
@given(st.lists(any_payload, max_size=30))
def test_fuzz_decode_batch_agrees_with_decode(payloads: list[bytes]) -> None:
    assert_batch_agrees(payloads)


def test_decode_batch_uniform_and_mixed_batches() -> None:
    rng = np.random.default_rng(3)
    v2 = [
        payload.encode({"laeq": float(x), "pm25": float(y)})
        for x, y in rng.uniform(20, 120, size=(200, 2))
    ]
    v1 = [payload.encode({"laeq": 40.0}, version=1), payload.encode({}, version=1)]
    assert_batch_agrees(v2)
    assert_batch_agrees(v2[:50] + v1 + [b"", b"\x02", v2[0] + b"\x00"] + v2[50:])
    assert_batch_agrees([])
