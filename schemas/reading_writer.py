"""The `Reading` record's Avro binary encoding, written directly.

Encoding every reading through fastavro's generic writer was the stream worker's
largest single cost per uplink (~17 us of ~60): it dispatches on the schema for every
field. This writer follows `schemas/avro/reading.avsc` field by field (Avro 1.11
spec, "Binary encoding": zig-zag varints for int/long, little-endian IEEE floats,
length-prefixed UTF-8 strings and bytes, unions as the branch index then the value,
arrays and maps as one counted block then 0). A map's keys are a handful of quantity
names, so each distinct key set gets one `struct` that packs keys and values at once.

`schemas.AvroCodec` uses it only for the schema it was written for (by fingerprint),
and tests hold its bytes equal to fastavro's for varied records.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from itertools import chain
from typing import Any

# reading.avsc with livinglab.Gateway written out (schemas.expanded_fingerprint)
FINGERPRINT = "8be95eaff67fca7d"

_NULL, _SOME = b"\x00", b"\x02"  # union branch 0 (null) and 1 (the value)
_FLOAT = struct.Struct("<f").pack
_SMALL = [bytes(((n << 1),)) for n in range(64)]  # varints of 0..63, one byte each
_CACHE_MAX = 65_536  # distinct strings and map key sets kept encoded (bounded memory)
_texts: dict[str, bytes] = {}
_double_maps: dict[tuple[str, ...], tuple[bytes, Callable[..., bytes], list[bytes]]] = {}


def long(n: int) -> bytes:
    """An Avro int or long: zig-zag, then 7 bits per byte, low bits first."""
    if 0 <= n < 64:
        return _SMALL[n]
    n = (n << 1) ^ (n >> 63)
    out = []  # a list, then bytes: about half the time of appending to a bytearray
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def text(s: str) -> bytes:
    """An Avro string; the labs', units' and quantities' names recur, so kept encoded."""
    encoded = _texts.get(s)
    if encoded is None:
        raw = s.encode()
        encoded = long(len(raw)) + raw
        if len(_texts) >= _CACHE_MAX:
            _texts.clear()
        _texts[s] = encoded
    return encoded


def _optional_long(n: int | None) -> bytes:
    return _NULL if n is None else _SOME + long(n)


def _optional_float(x: float | None) -> bytes:
    return _NULL if x is None else _SOME + _FLOAT(x)


def _doubles(values: Mapping[str, float]) -> bytes:
    """A map of doubles: keys and values packed by one struct per distinct key set."""
    if not values:
        return _NULL
    keys = tuple(values)
    packer = _double_maps.get(keys)
    if packer is None:
        names = [text(k) for k in keys]
        layout = struct.Struct("<" + "".join(f"{len(n)}sd" for n in names))
        if len(_double_maps) >= _CACHE_MAX:
            _double_maps.clear()
        packer = _double_maps[keys] = (long(len(keys)), layout.pack, names)
    count, pack, names = packer
    return count + pack(*chain.from_iterable(zip(names, values.values()))) + _NULL


def _ints(values: Mapping[str, int]) -> bytes:
    if not values:
        return _NULL
    body = b"".join([text(k) + long(v) for k, v in values.items()])
    return long(len(values)) + body + _NULL


def _gateway(g: Mapping[str, Any]) -> bytes:
    """livinglab.Gateway: id, rssi, snr, time."""
    return (
        text(g["id"])
        + _optional_float(g["rssi"])
        + _optional_float(g["snr"])
        + _optional_long(g["time"])
    )


def encode(r: Mapping[str, Any]) -> bytes:
    """One Reading, fields in the schema's order."""
    gateways = r["gateways"]
    payload = r["payload"]
    values = _doubles(r["values"])
    # an uncalibrated unit's values are its raw values, the same dict (streams/calibration)
    raw_values = values if r["raw_values"] is r["values"] else _doubles(r["raw_values"])
    return b"".join(
        (
            text(r["lab"]),
            text(r["sensor"]),
            text(r["dev_eui"]),
            long(r["ts"]),
            long(r["session"]),
            long(r["f_cnt"]),
            _optional_long(r["f_port"]),
            long(r["uplink_version"]),
            text(r["source"]),
            long(len(gateways)) + b"".join([_gateway(g) for g in gateways]) + _NULL
            if gateways
            else _NULL,
            _optional_long(r["frequency"]),
            _optional_long(r["spreading_factor"]),
            long(len(payload)),
            payload,
            long(r["status"]),
            text(r["calibration"]),
            values,
            raw_values,
            _ints(r["flags"]),
        )
    )
