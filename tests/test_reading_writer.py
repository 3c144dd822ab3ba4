"""schemas/reading_writer.py against fastavro's public writer, the independent Avro
implementation: the same bytes for any Reading the schema admits, and fastavro reads
them back to the same record."""

from __future__ import annotations

import io

import fastavro
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import codec, expanded_fingerprint, reading_writer

READING = codec("reading")

ints = st.integers(-(2**31), 2**31 - 1)
longs = st.integers(-(2**63), 2**63 - 1)
texts = st.text(max_size=40)  # any Unicode, also empty and multi-byte
floats32 = st.floats(width=32, allow_nan=False)  # NaN != NaN would fail the round trip
gateway = st.fixed_dictionaries(
    {
        "id": texts,
        "rssi": st.none() | floats32,
        "snr": st.none() | floats32,
        "time": st.none() | longs,
    }
)
reading = st.fixed_dictionaries(
    {
        "lab": texts,
        "sensor": texts,
        "dev_eui": texts,
        "ts": longs,
        "session": ints,
        "f_cnt": longs,
        "f_port": st.none() | ints,
        "uplink_version": ints,
        "source": texts,
        "gateways": st.lists(gateway, max_size=4),
        "frequency": st.none() | longs,
        "spreading_factor": st.none() | ints,
        "payload": st.binary(max_size=80),
        "status": ints,
        "calibration": texts,
        "values": st.dictionaries(texts, st.floats(allow_nan=False), max_size=20),
        "raw_values": st.dictionaries(texts, st.floats(allow_nan=False), max_size=20),
        "flags": st.dictionaries(texts, ints, max_size=20),
    }
)


def _fastavro(record: dict) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, READING.schema, record)
    return out.getvalue()


@settings(max_examples=400, deadline=None)
@given(reading, st.booleans())
def test_any_reading_is_written_as_fastavro_writes_it(record: dict, uncalibrated: bool) -> None:
    if uncalibrated:  # the processor hands an uncalibrated unit's raw dict over as both
        record["raw_values"] = record["values"]
    written = reading_writer.encode(record)
    assert written == _fastavro(record)
    assert fastavro.schemaless_reader(io.BytesIO(written), READING.schema, None) == record


def test_the_same_key_sets_and_strings_again_give_the_same_bytes() -> None:
    """The writer keeps encoded strings and map layouts; a second record with the same
    keys but other values must not get the first one's bytes."""
    first = {
        "lab": "lab-1", "sensor": "s-1", "dev_eui": "0000000000000001", "ts": 1, "session": 1,
        "f_cnt": 1, "f_port": 1, "uplink_version": 1, "source": "tts", "gateways": [],
        "frequency": None, "spreading_factor": None, "payload": b"\x02", "status": 0,
        "calibration": "none", "values": {"laeq": 50.0, "pm25": 9.5},
        "raw_values": {"laeq": 50.0, "pm25": 9.5}, "flags": {"pm25": 2},
    }  # fmt: skip
    second = {**first, "values": {"laeq": 71.25, "pm25": 120.0}, "flags": {"pm25": 3}}
    for record in (first, second, first):
        assert reading_writer.encode(record) == _fastavro(record)


def test_the_reading_codec_writes_with_it_while_the_schema_is_unchanged() -> None:
    """A change to reading.avsc or gateway.avsc changes the fingerprint: the codec then
    falls back to fastavro, and this test says the writer must follow the schema."""
    assert expanded_fingerprint(READING.schema) == reading_writer.FINGERPRINT, (
        "schemas/avro/reading.avsc or gateway.avsc changed: update schemas/reading_writer.py "
        "and its FINGERPRINT"
    )
    assert READING._direct is reading_writer.encode
    assert codec("aggregate")._direct is None
