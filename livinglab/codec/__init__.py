"""Sensor payload codecs: the native Living Lab format and Cayenne LPP.

Streams call ``decode_payload`` with the format the lab registry lists for a unit;
every failure is a ``PayloadError`` whose ``reason`` becomes the deadletter reason.
"""

from __future__ import annotations

from collections.abc import Mapping

from livinglab.codec import cayenne
from livinglab.codec.payload import Decoded, PayloadError
from livinglab.codec.payload import decode as _decode_native

FORMATS: tuple[str, ...] = ("livinglab", "cayenne")


def decode_payload(payload: bytes, fmt: str, channels: Mapping[int, str] | None = None) -> Decoded:
    """Decode ``payload`` in format ``fmt``; Cayenne LPP needs the unit's channel mapping."""
    if fmt == "livinglab":
        return _decode_native(payload)
    if fmt == "cayenne":
        if channels is None:
            raise PayloadError("channels", "Cayenne LPP needs a channel -> quantity mapping")
        return cayenne.decode(payload, channels)
    raise PayloadError("format", f"unknown payload format {fmt!r}; expected one of {FORMATS}")


__all__ = ["FORMATS", "Decoded", "PayloadError", "decode_payload"]
