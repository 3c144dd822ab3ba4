"""The decode-and-hourly-aggregate job as the peer frameworks are used: one record at a time.

Shared by the Quix Streams and the naive Faust contenders so that both do the same
work: Avro `Uplink` -> drop gateway copies of a frame already seen -> decode the payload
(the platform's own decoder) -> a JSON reading -> per unit and event-time hour: count,
energetic mean for noise levels, arithmetic mean for the rest, min and max per quantity.
It is less than our worker does (no calibration, quality flags, corrections, derived
windows, histograms or dead letters), so it flatters the peers, not us.
"""

from __future__ import annotations

import json
import math
from typing import Any

from livinglab.codec import decode_payload
from livinglab.codec.payload import PayloadError
from livinglab.registry import Registry
from schemas import codec
from streams.processor import CONTROL_KEY

HOUR_MS = 3_600_000
LATENESS_MS = 900_000  # the platform's default allowed lateness, as the windows' grace
RECENT = 16  # frame counters remembered per unit for deduplication
NOISE = frozenset({"laeq", "lamax", "lamin", "l10", "l50", "l90"})
_UPLINK = codec("uplink")


def parse_uplink(key: bytes | None, value: bytes, headers: Any) -> dict[str, Any] | None:
    """The Avro uplink, or None for the platform's control records and undecodable input."""
    if key == CONTROL_KEY:
        return None
    try:
        return _UPLINK.decode(value, headers)
    except (ValueError, EOFError, TypeError, IndexError):
        return None


def first_copy(recent: list[int], f_cnt: int) -> bool:
    """True for a frame not seen yet; remembers it in `recent` (the unit's state)."""
    if f_cnt in recent:
        return False
    recent.append(f_cnt)
    del recent[:-RECENT]
    return True


def reading(registry: Registry, uplink: dict[str, Any]) -> dict[str, Any] | None:
    """The decoded reading of a first copy; None for unknown units or broken payloads."""
    unit = registry.by_dev_eui.get(uplink["dev_eui"])
    if unit is None:
        return None
    try:
        decoded = decode_payload(uplink["payload"], unit.payload_format, unit.cayenne_channels)
    except PayloadError:
        return None
    return {
        "lab": unit.lab,
        "sensor": unit.sensor,
        "dev_eui": unit.dev_eui,
        "f_cnt": uplink["f_cnt"],
        "ts": uplink["received_at"],
        "values": {q: v for q, v in decoded.values.items() if v is not None},
    }


def encode(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode()


def hour_start(ts: int) -> int:
    return ts - ts % HOUR_MS


def hour_new(first: dict[str, Any]) -> dict[str, Any]:
    """An hourly accumulator holding one reading: {quantity: [count, sum, min, max]}."""
    return hour_add({"start": hour_start(first["ts"]), "q": {}}, first)


def hour_add(acc: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """Fold a reading in; noise levels add energy (10^(L/10)), never decibels."""
    stats = acc["q"]
    for quantity, value in item["values"].items():
        term = 10 ** (value / 10) if quantity in NOISE else value
        s = stats.get(quantity)
        if s is None:
            stats[quantity] = [1, term, value, value]
        else:
            s[0] += 1
            s[1] += term
            s[2] = min(s[2], value)
            s[3] = max(s[3], value)
    return acc


def hour_record(acc: dict[str, Any]) -> dict[str, Any]:
    """The aggregate of a closed hour."""
    stats = {}
    for quantity, (count, total, low, high) in acc["q"].items():
        mean = 10 * math.log10(total / count) if quantity in NOISE else total / count
        stats[quantity] = {"count": count, "mean": mean, "min": low, "max": high}
    return {"start": acc["start"], "end": acc["start"] + HOUR_MS, "q": stats}
