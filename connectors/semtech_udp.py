"""Semtech UDP packet-forwarder protocol (versions 1 and 2), pure: datagrams in, structures out.

The UDP bridge owns the socket; this module only reads and writes datagrams, so the bridge,
the simulator and the tests share one definition of the protocol. References:
Lora-net/packet_forwarder PROTOCOL.TXT (v1.4), the later rxpk fields of Lora-net/sx1302_hal
packet_forwarder/PROTOCOL.md (rssis, ...) and the per-antenna `rsig` array that v2 gateways
(JSON "jver" 2, e.g. Kerlink) send instead of a top-level rssi/lsnr.

A PUSH_DATA whose header and JSON are sound is acknowledged even when single rxpk entries are
unreadable: those come back in `PushData.errors` so they can be deadlettered one by one.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

PROTOCOL_VERSIONS = frozenset({1, 2})
_HEADER = 4  # version, token (2 bytes), identifier
_GATEWAY_HEADER = 12  # ... then the gateway EUI (8 bytes)
_LORA_DATR = re.compile(r"SF(\d{1,2})BW(\d{1,4})")
_URLSAFE_TO_STD = bytes.maketrans(b"-_", b"+/")


class Identifier(IntEnum):
    """Datagram type, byte 3 of every datagram."""

    PUSH_DATA = 0x00
    PUSH_ACK = 0x01
    PULL_DATA = 0x02
    PULL_RESP = 0x03
    PULL_ACK = 0x04
    TX_ACK = 0x05


class SemtechError(ValueError):
    """A datagram, or one entry of it, that cannot be read; `reason` tags the deadletter record.

    Reasons: "truncated", "length", "version", "identifier", "json", "field", "data", "size",
    "datr", "time". `where` says which part failed ("" for the datagram, "rxpk[2]", "stat").
    """

    def __init__(self, reason: str, detail: str, where: str = "") -> None:
        super().__init__(reason, detail, where)
        self.reason = reason
        self.detail = detail
        self.where = where

    def __str__(self) -> str:
        return f"{self.reason}: {self.where + ': ' if self.where else ''}{self.detail}"


@dataclass(frozen=True, slots=True)
class Antenna:
    """One antenna's view of a packet (`rsig` entry of v2 multi-antenna gateways)."""

    ant: int | None = None
    chan: int | None = None
    rssic: int | None = None  # channel RSSI, dBm
    rssis: int | None = None  # signal RSSI, dBm
    lsnr: float | None = None


@dataclass(frozen=True, slots=True)
class RxPacket:
    """One received radio packet (`rxpk` entry) with its gateway's metadata."""

    gateway: str  # gateway EUI, 16 lower-case hex chars
    data: bytes  # the PHYPayload
    freq: float  # MHz
    datr: str | int  # "SF7BW125" for LoRa, bits/s for FSK
    modu: str | None = None  # "LORA", "FSK", "LR-FHSS"
    stat: int | None = None  # CRC: 1 ok, -1 failed, 0 no CRC
    time: datetime | None = None  # UTC, from the gateway's GPS or clock
    tmst: int | None = None  # concentrator counter at end of RX, microseconds, wraps at 2**32
    tmms: int | None = None  # GPS time, milliseconds since 1980-01-06
    chan: int | None = None
    rfch: int | None = None
    codr: str | None = None
    rssi: int | None = None  # channel RSSI, dBm
    rssis: int | None = None  # signal RSSI, dBm (SX1302 gateways)
    lsnr: float | None = None  # dB
    antennas: tuple[Antenna, ...] = ()

    @property
    def spreading_factor(self) -> int | None:
        return _lora_datr(self.datr)[0]

    @property
    def bandwidth_khz(self) -> int | None:
        return _lora_datr(self.datr)[1]

    @property
    def best_rssi(self) -> int | None:
        """The top-level RSSI, else the strongest antenna's: one figure per gateway."""
        if self.rssi is not None:
            return self.rssi
        return max((a.rssic for a in self.antennas if a.rssic is not None), default=None)

    @property
    def best_lsnr(self) -> float | None:
        """The top-level SNR, else the best antenna's."""
        if self.lsnr is not None:
            return self.lsnr
        return max((a.lsnr for a in self.antennas if a.lsnr is not None), default=None)


@dataclass(frozen=True, slots=True)
class GatewayStat:
    """The gateway's periodic status report (`stat` object)."""

    time: datetime | None = None
    lati: float | None = None
    long: float | None = None
    alti: int | None = None
    rxnb: int | None = None
    rxok: int | None = None
    rxfw: int | None = None
    ackr: float | None = None
    dwnb: int | None = None
    txnb: int | None = None
    temp: float | None = None


@dataclass(frozen=True, slots=True)
class PushData:
    """PUSH_DATA: received packets and/or a status report; answer with `push_ack`."""

    version: int
    token: bytes  # 2 bytes as on the wire, echoed in the ack
    gateway: str
    rxpk: tuple[RxPacket, ...]
    stat: GatewayStat | None
    errors: tuple[SemtechError, ...]  # unreadable rxpk entries or stat; the rest is usable


@dataclass(frozen=True, slots=True)
class PullData:
    """PULL_DATA: the gateway keeps its downlink route open; answer with `pull_ack`."""

    version: int
    token: bytes
    gateway: str


@dataclass(frozen=True, slots=True)
class TxAck:
    """TX_ACK: the gateway's verdict on a downlink; no error means it was scheduled."""

    version: int
    token: bytes
    gateway: str
    error: str | None
    warn: str | None


def parse_datagram(datagram: bytes) -> PushData | PullData | TxAck:
    """Read a datagram a gateway sent to the server."""
    if len(datagram) < _HEADER:
        raise SemtechError("truncated", f"{len(datagram)} bytes, a header has 4")
    version, identifier = datagram[0], datagram[3]
    if version not in PROTOCOL_VERSIONS:
        raise SemtechError("version", f"protocol version {version}")
    if identifier not in (Identifier.PUSH_DATA, Identifier.PULL_DATA, Identifier.TX_ACK):
        raise SemtechError("identifier", f"identifier {identifier:#04x} is not gateway-to-server")
    if len(datagram) < _GATEWAY_HEADER:
        raise SemtechError("truncated", f"{len(datagram)} bytes, a gateway header has 12")
    token, gateway, body = datagram[1:3], datagram[4:12].hex(), datagram[12:]
    if identifier == Identifier.PULL_DATA:
        if body:
            raise SemtechError("length", f"PULL_DATA of {len(datagram)} bytes, expected 12")
        return PullData(version, token, gateway)
    if identifier == Identifier.TX_ACK:
        body = body.rstrip(b"\x00")  # Kerlink iBTS sends a lone NUL when there is no JSON
        ack = _field(_json(body), "txpk_ack", dict, "") if body else None
        error = _field(ack, "error", str, "txpk_ack") if ack else None
        warn = _field(ack, "warn", str, "txpk_ack") if ack else None
        return TxAck(version, token, gateway, None if error == "NONE" else error, warn)
    return _push_data(version, token, gateway, _json(body))


def _push_data(version: int, token: bytes, gateway: str, root: dict[str, Any]) -> PushData:
    entries = root.get("rxpk", [])
    if not isinstance(entries, list):
        raise SemtechError("field", "rxpk is not an array")
    packets: list[RxPacket] = []
    errors: list[SemtechError] = []
    for index, entry in enumerate(entries):
        try:
            packets.append(parse_rxpk(entry, gateway, f"rxpk[{index}]"))
        except SemtechError as error:
            errors.append(error)
    stat = None
    if "stat" in root:
        try:
            stat = _parse_stat(root["stat"])
        except SemtechError as error:
            errors.append(error)
    return PushData(version, token, gateway, tuple(packets), stat, tuple(errors))


def parse_rxpk(entry: object, gateway: str, where: str = "rxpk") -> RxPacket:
    """Read one `rxpk` JSON object; `gateway` is the EUI from the datagram header."""
    if not isinstance(entry, dict):
        raise SemtechError("field", "not an object", where)
    data = _decode_data(_field(entry, "data", str, where, required=True), where)
    size = _field(entry, "size", int, where)
    if size is not None and size != len(data):
        raise SemtechError("size", f"size {size} but data has {len(data)} bytes", where)
    datr = _field(entry, "datr", (str, int), where, required=True)
    modu = _field(entry, "modu", str, where)
    if (modu == "LORA" or modu is None and isinstance(datr, str)) and _lora_datr(datr)[0] is None:
        raise SemtechError("datr", f"LoRa data rate {datr!r} is not SF<n>BW<khz>", where)
    stat = _field(entry, "stat", int, where)
    if stat not in (None, -1, 0, 1):
        raise SemtechError("field", f"stat {stat} is not -1, 0 or 1", where)
    rsig = _field(entry, "rsig", list, where) or []
    return RxPacket(
        gateway=gateway,
        data=data,
        freq=_field(entry, "freq", float, where, required=True),
        datr=datr,
        modu=modu,
        stat=stat,
        time=_parse_time(_field(entry, "time", str, where), where),
        tmst=_field(entry, "tmst", int, where),
        tmms=_field(entry, "tmms", int, where),
        chan=_field(entry, "chan", int, where),
        rfch=_field(entry, "rfch", int, where),
        codr=_field(entry, "codr", str, where),
        rssi=_field(entry, "rssi", int, where),
        rssis=_field(entry, "rssis", int, where),
        lsnr=_field(entry, "lsnr", float, where),
        antennas=tuple(_parse_antenna(s, f"{where}.rsig[{i}]") for i, s in enumerate(rsig)),
    )


def _parse_antenna(entry: object, where: str) -> Antenna:
    if not isinstance(entry, dict):
        raise SemtechError("field", "not an object", where)
    return Antenna(
        ant=_field(entry, "ant", int, where),
        chan=_field(entry, "chan", int, where),
        rssic=_field(entry, "rssic", int, where),
        rssis=_field(entry, "rssis", int, where),
        lsnr=_field(entry, "lsnr", float, where),
    )


def _parse_stat(entry: object) -> GatewayStat:
    if not isinstance(entry, dict):
        raise SemtechError("field", "not an object", "stat")
    text = _field(entry, "time", str, "stat")
    return GatewayStat(
        time=None if text is None else _parse_stat_time(text),
        lati=_field(entry, "lati", float, "stat"),
        long=_field(entry, "long", float, "stat"),
        alti=_field(entry, "alti", int, "stat"),
        rxnb=_field(entry, "rxnb", int, "stat"),
        rxok=_field(entry, "rxok", int, "stat"),
        rxfw=_field(entry, "rxfw", int, "stat"),
        ackr=_field(entry, "ackr", float, "stat"),
        dwnb=_field(entry, "dwnb", int, "stat"),
        txnb=_field(entry, "txnb", int, "stat"),
        temp=_field(entry, "temp", float, "stat"),
    )


def push_ack(token: bytes, version: int = 2) -> bytes:
    """The immediate answer to a PUSH_DATA."""
    return _header(version, token, Identifier.PUSH_ACK)


def pull_ack(token: bytes, version: int = 2) -> bytes:
    """The answer to a PULL_DATA."""
    return _header(version, token, Identifier.PULL_ACK)


def build_push_data(
    token: bytes,
    gateway: str,
    rxpk: Sequence[RxPacket] = (),
    stat: GatewayStat | None = None,
    version: int = 2,
) -> bytes:
    """A PUSH_DATA datagram as a packet forwarder sends it (for the simulator and tests)."""
    eui = bytes.fromhex(gateway)
    if len(eui) != 8:
        raise ValueError(f"gateway EUI must be 8 bytes, got {gateway!r}")
    if any(packet.gateway != gateway for packet in rxpk):
        raise ValueError("every rxpk must come from the gateway that sends the datagram")
    root: dict[str, Any] = {}
    if rxpk:
        root["rxpk"] = [_encode_rxpk(packet) for packet in rxpk]
    if stat is not None:
        root["stat"] = _encode_stat(stat)
    body = json.dumps(root, separators=(",", ":"), allow_nan=False).encode()
    return _header(version, token, Identifier.PUSH_DATA) + eui + body


def _encode_rxpk(packet: RxPacket) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if packet.time is not None:
        entry["time"] = _utc(packet.time).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for key in ("tmst", "tmms", "chan", "rfch"):
        _put(entry, key, getattr(packet, key))
    entry["freq"] = packet.freq
    for key in ("stat", "modu"):
        _put(entry, key, getattr(packet, key))
    entry["datr"] = packet.datr
    for key in ("codr", "rssi", "rssis", "lsnr"):
        _put(entry, key, getattr(packet, key))
    entry["size"] = len(packet.data)
    entry["data"] = base64.b64encode(packet.data).decode("ascii")
    if packet.antennas:
        entry["rsig"] = [_encode_antenna(antenna) for antenna in packet.antennas]
    return entry


def _encode_antenna(antenna: Antenna) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    for key in ("ant", "chan", "rssic", "rssis", "lsnr"):
        _put(entry, key, getattr(antenna, key))
    return entry


def _encode_stat(stat: GatewayStat) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if stat.time is not None:
        entry["time"] = _utc(stat.time).strftime("%Y-%m-%d %H:%M:%S GMT")
    for key in ("lati", "long", "alti", "rxnb", "rxok", "rxfw", "ackr", "dwnb", "txnb", "temp"):
        _put(entry, key, getattr(stat, key))
    return entry


def _put(entry: dict[str, Any], key: str, value: object) -> None:
    if value is not None:
        entry[key] = value


def _header(version: int, token: bytes, identifier: Identifier) -> bytes:
    if version not in PROTOCOL_VERSIONS:
        raise ValueError(f"protocol version {version} is not 1 or 2")
    if len(token) != 2:
        raise ValueError(f"token must be 2 bytes, got {len(token)}")
    return bytes((version,)) + token + bytes((identifier,))


def _json(body: bytes) -> dict[str, Any]:
    try:
        root = _DECODER.decode(body.decode("utf-8"))
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError
        raise SemtechError("json", str(error)[:200]) from None
    if not isinstance(root, dict):
        raise SemtechError("json", "the JSON root is not an object")
    return root


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


# One decoder for all datagrams: json.loads with options builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _field(
    entry: dict[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    where: str,
    required: bool = False,
) -> Any:
    """`entry[key]` checked against `kind`; a float field admits integers, never a bool."""
    value = entry.get(key)
    if type(value) is kind and (kind is not float or math.isfinite(value)):
        return value  # the common, well-typed case (exact type: a bool is not an int here)
    if value is None:
        if required:
            raise SemtechError("field", f"{key} is missing", where)
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else kind):
        raise SemtechError("field", f"{key} is {type(value).__name__}", where)
    if kind is float:
        try:
            value = float(value)
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            raise SemtechError("field", f"{key} is not a finite number", where)
    return value


def _decode_data(text: str, where: str) -> bytes:
    """Base64, padded or not; the URL-safe alphabet is accepted because PROTOCOL.TXT uses it."""
    try:
        raw = text.encode("ascii").translate(_URLSAFE_TO_STD)
        return base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
    except (UnicodeEncodeError, binascii.Error) as error:
        raise SemtechError("data", f"data is not base64: {error}", where) from None


def _lora_datr(datr: str | int) -> tuple[int, int] | tuple[None, None]:
    match = _LORA_DATR.fullmatch(datr) if isinstance(datr, str) else None
    return (int(match[1]), int(match[2])) if match else (None, None)


def _parse_time(text: str | None, where: str) -> datetime | None:
    if text is None:
        return None
    try:
        return _utc(datetime.fromisoformat(text))
    except (ValueError, OverflowError):
        raise SemtechError("time", f"time {text[:40]!r} is not ISO 8601", where) from None


def _parse_stat_time(text: str) -> datetime:
    """'2014-01-12 08:59:28 GMT', the 'expanded' format of the stat object."""
    try:
        if text[-4:] not in (" GMT", " UTC"):
            raise ValueError(text)
        return datetime.strptime(text[:-4], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise SemtechError(
            "time", f"time {text[:40]!r} is not 'YYYY-MM-DD hh:mm:ss GMT'", "stat"
        ) from None


def _utc(moment: datetime) -> datetime:
    """Gateways speak UTC; a naive time is taken to be UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
