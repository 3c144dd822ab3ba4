"""`livinglab decode`: what uplink messages say, one JSON line each, without Kafka.

Input lines: The Things Stack v3, ChirpStack v4 or ChirpStack v3 uplink JSON, or Semtech UDP
`rxpk` JSON: a bare rxpk object, or a PUSH_DATA body `{"rxpk": [...]}` (one output line per
entry). Network-server messages carry the decrypted payload already; rxpk frames are verified
and decrypted here with the registry's ABP session keys, frame counters carried from line to
line as the UDP bridge carries them. The payload is decoded with the unit's payload format,
exactly as the stream worker decodes it, so a line that fails here fails there for the same
reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO

from connectors.lns import MAX_MESSAGE_BYTES, IngressError, normalise
from connectors.semtech_udp import SemtechError, parse_rxpk
from connectors.sessions import Sessions
from connectors.udp_bridge import gateway_entry
from livinglab.codec import PayloadError, decode_payload
from livinglab.registry import Registry, Unit

_SKIP_CHUNK = 64 * 1024
FIELDS = (
    "source",
    "dev_eui",
    "sensor",
    "f_cnt",
    "f_port",
    "payload_hex",
    "gateways",
    "received_at",
)
"""Every result has these (None where unknown) and then `reading` or `error`."""


def decode_stream(stream: BinaryIO, registry: Registry) -> Iterator[dict[str, Any]]:
    """One result per message: the uplink's fields and `reading`, or `error`."""
    sessions = Sessions(registry)
    for lineno, raw in _lines(stream, MAX_MESSAGE_BYTES):
        if raw is None:
            yield {"line": lineno, **_failure(f"too_large: line over {MAX_MESSAGE_BYTES} bytes")}
            continue
        for result in _decode(raw, registry, sessions):
            yield {"line": lineno, **result}


def _lines(stream: BinaryIO, limit: int) -> Iterator[tuple[int, bytes | None]]:
    """Non-empty lines; None for a line over `limit` bytes, which is skipped, not held."""
    lineno = 0
    while line := stream.readline(limit + 1):
        lineno += 1
        if len(line) > limit and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = stream.readline(_SKIP_CHUNK)
            yield lineno, None
        elif line := line.strip():
            yield lineno, line


def _decode(raw: bytes, registry: Registry, sessions: Sessions) -> list[dict[str, Any]]:
    try:
        entries = _rxpk_entries(raw)
        if entries is None:
            uplink = normalise(raw)
            return [_result(uplink, registry.by_dev_eui.get(uplink["dev_eui"]))]
    except IngressError as exc:
        return [_failure(f"{exc.reason}: {exc}")]
    return [_from_rxpk(entry, sessions) for entry in entries]


def _rxpk_entries(raw: bytes) -> list[Any] | None:
    """The rxpk entries of a Semtech line; None when the line is something else."""
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError):
        return None  # normalise() explains
    if not isinstance(message, dict):
        return None
    if "rxpk" in message:
        if not isinstance(message["rxpk"], list) or not message["rxpk"]:
            raise IngressError("field", "rxpk must be a non-empty array")
        return message["rxpk"]
    return [message] if "data" in message and ("datr" in message or "freq" in message) else None


def _from_rxpk(entry: Any, sessions: Sessions) -> dict[str, Any]:
    try:
        packet = parse_rxpk(entry, "")
    except SemtechError as exc:
        return _failure(f"{exc.reason}: {exc}", source="udp")
    gateway = {**gateway_entry(packet), "id": None}  # a bare rxpk does not name its gateway
    known = {"source": "udp", "gateways": [gateway], "received_at": gateway["time"]}
    if packet.stat == -1:
        return _failure("crc_failed: the gateway reports a failed CRC", **known)
    try:
        opened = sessions.open(packet.data)
    except IngressError as exc:
        return _failure(f"{exc.reason}: {exc}", **known, dev_eui=exc.dev_eui)
    uplink = {
        **known,
        "dev_eui": opened.unit.dev_eui,
        "f_cnt": opened.f_cnt,
        "f_port": opened.f_port,
        "payload": opened.payload,
    }
    return _result(uplink, opened.unit)


def _result(uplink: dict[str, Any], unit: Unit | None) -> dict[str, Any]:
    known = {
        "source": uplink["source"],
        "dev_eui": uplink["dev_eui"],
        "sensor": unit.key if unit else None,
        "f_cnt": uplink["f_cnt"],
        "f_port": uplink["f_port"],
        "payload_hex": uplink["payload"].hex(),
        "gateways": uplink["gateways"],
        "received_at": uplink["received_at"],
    }
    if unit is None:
        detail = f"unknown_device: DevEUI {uplink['dev_eui']} is not in the registry"
        return _failure(detail, **known)
    try:
        decoded = decode_payload(uplink["payload"], unit.payload_format, unit.cayenne_channels)
    except PayloadError as exc:
        return _failure(f"payload.{exc.reason}: {exc}", **known)
    reading = {
        "values": {q: v for q, v in decoded.values.items() if v is not None},
        "status": decoded.status,
        "firmware": decoded.firmware,
        "version": decoded.version,
        "warnings": list(decoded.warnings),
    }
    return {**_fields(known), "reading": reading}


def _failure(error: str, **known: Any) -> dict[str, Any]:
    return {**_fields(known), "error": error}


def _fields(known: dict[str, Any]) -> dict[str, Any]:
    """All of FIELDS, in order; gateways as {id, rssi, snr}, the time as RFC 3339."""
    result = {name: known.get(name) for name in FIELDS}
    if result["gateways"] is not None:
        result["gateways"] = [{k: g[k] for k in ("id", "rssi", "snr")} for g in result["gateways"]]
    if result["received_at"] is not None:
        result["received_at"] = _iso(result["received_at"])
    return result


def _iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
