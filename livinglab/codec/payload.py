"""Native Living Lab sensor payload: encode (simulator) and decode (streams).

The byte layout is specified in ``firmware/PAYLOAD.md``; the C encoder in
``firmware/src/`` and the JavaScript formatter implement the same tables, and
``firmware/test-vectors.json`` pins all three to the same bytes.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

QUANTITIES: tuple[str, ...] = (
    "laeq",
    "lamax",
    "lamin",
    "l10",
    "l50",
    "l90",
    "pm1",
    "pm25",
    "pm10",
    "no2",
    "o3",
    "temperature",
    "humidity",
    "pressure",
    "battery",
)

UNITS: dict[str, str] = {
    **dict.fromkeys(("laeq", "lamax", "lamin", "l10", "l50", "l90"), "dB(A)"),
    **dict.fromkeys(("pm1", "pm25", "pm10", "no2", "o3"), "µg/m³"),
    "temperature": "°C",
    "humidity": "%",
    "pressure": "hPa",
    "battery": "V",
}

STATUS_BITS: dict[str, int] = {
    "noise_fault": 1 << 0,
    "pm_fault": 1 << 1,
    "gas_fault": 1 << 2,
    "climate_fault": 1 << 3,
    "heater_on": 1 << 4,
    "reboot": 1 << 5,
    "low_battery": 1 << 6,
    "clamped": 1 << 7,
    "gas_warmup": 1 << 8,
    "noise_overload": 1 << 9,
}

VERSION = 2
"""Latest payload format version; what ``encode`` writes by default."""

FIRMWARE = 0x0100
"""Firmware version the simulator claims by default: ``major << 8 | minor`` (1.0)."""


class PayloadError(ValueError):
    """A payload that cannot be decoded; ``reason`` is a short machine-readable code.

    Reasons: ``empty``, ``version``, ``truncated``, ``length`` (too long), ``range``
    (a field holds a value no conforming encoder writes), ``format`` (unknown
    payload format), and for Cayenne LPP ``type`` and ``channels``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(slots=True)  # not frozen: ~4x cheaper to build, and one is built per uplink
class Decoded:
    """One decoded uplink.

    ``values`` holds every quantity of ``QUANTITIES`` (None = not measured);
    ``firmware`` is ``major << 8 | minor`` (0 = not transmitted, as in v1 and
    Cayenne LPP); ``version`` is 0 for Cayenne LPP payloads; ``warnings`` lists what
    a lenient decoder (Cayenne LPP) skipped.
    """

    version: int
    values: dict[str, float | None]
    status: int
    firmware: int
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class BatchDecoded:
    """Column-wise result of ``decode_batch``; rows where ``ok`` is False are NaN/0."""

    values: dict[str, np.ndarray]
    status: np.ndarray
    firmware: np.ndarray
    version: np.ndarray
    ok: np.ndarray
    errors: dict[int, PayloadError]


@dataclass(frozen=True)
class _Column:
    """One field after the version byte; ``factor`` None means an unscaled integer."""

    name: str
    kind: str  # struct code: "B" u8, "H" u16, "h" i16 (all big-endian)
    factor: int | None = None
    lo: int = 0
    hi: int = 0

    @property
    def missing(self) -> int:
        return _MISSING[self.kind]


_MISSING = {"B": 0xFF, "H": 0xFFFF, "h": -0x8000}  # the raw value "not measured"


class _Layout:
    """Byte layout of one format version, with its struct and NumPy views."""

    def __init__(self, version: int, columns: Sequence[_Column]) -> None:
        self.version = version
        self.columns = tuple(columns)
        self.quantities = tuple(c for c in self.columns if c.factor is not None)
        # What `decode` needs per field, in the struct's order after the version byte:
        # the decoder's inner loop, kept free of attribute and property lookups.
        self.fields = tuple((c.name, c.factor, c.missing, c.lo, c.hi, c) for c in self.columns)
        self.struct = struct.Struct(">B" + "".join(c.kind for c in self.columns))
        self.length = self.struct.size
        np_kind = {"B": "u1", "H": ">u2", "h": ">i2"}
        self.dtype = np.dtype(
            [("version", "u1")] + [(c.name, np_kind[c.kind]) for c in self.columns]
        )


def _noise(name: str) -> _Column:
    return _Column(name, "H", 10, 0, 1950)


_LAYOUTS: dict[int, _Layout] = {
    1: _Layout(
        1,
        [
            _Column("status", "B"),
            *(_noise(q) for q in ("laeq", "lamax", "lamin")),
            _Column("pm25", "H", 1, 0, 999),
            _Column("pm10", "H", 1, 0, 999),
            _Column("temperature", "h", 10, -400, 850),
            _Column("humidity", "B", 2, 0, 200),
            _Column("battery", "B", 50, 0, 250),
        ],
    ),
    2: _Layout(
        2,
        [
            _Column("status", "H"),
            _Column("firmware", "H"),
            *(_noise(q) for q in ("laeq", "lamax", "lamin", "l10", "l50", "l90")),
            *(_Column(q, "H", 10, 0, 65534) for q in ("pm1", "pm25", "pm10", "no2", "o3")),
            _Column("temperature", "h", 100, -4000, 8500),
            _Column("humidity", "H", 10, 0, 1000),
            _Column("pressure", "H", 10, 3000, 11000),
            _Column("battery", "H", 1000, 0, 25000),
        ],
    ),
}


def _layout_for(payload: bytes) -> _Layout:
    if not payload:
        raise PayloadError("empty", "payload has no bytes")
    layout = _LAYOUTS.get(payload[0])
    if layout is None:
        raise PayloadError("version", f"unknown payload version {payload[0]}")
    if len(payload) < layout.length:
        raise PayloadError(
            "truncated",
            f"{len(payload)} bytes, version {layout.version} needs {layout.length}",
        )
    if len(payload) > layout.length:
        raise PayloadError(
            "length", f"{len(payload)} bytes, version {layout.version} has {layout.length}"
        )
    return layout


def _out_of_range(column: _Column, raw: int) -> PayloadError:
    return PayloadError("range", f"{column.name} raw value {raw} outside {column.lo}..{column.hi}")


def decode(payload: bytes) -> Decoded:
    """Decode one native payload; raises PayloadError for anything not per spec."""
    layout = _layout_for(payload)
    raws = layout.struct.unpack(payload)
    values: dict[str, float | None] = dict.fromkeys(QUANTITIES)
    ints = {"status": 0, "firmware": 0}
    for (name, factor, missing, lo, hi, column), raw in zip(layout.fields, raws[1:]):
        if factor is None:
            ints[name] = raw
        elif raw != missing:
            if not lo <= raw <= hi:
                raise _out_of_range(column, raw)
            values[name] = raw / factor
    return Decoded(layout.version, values, ints["status"], ints["firmware"])


def decode_batch(payloads: Sequence[bytes]) -> BatchDecoded:
    """Decode many payloads column-wise with NumPy; agrees exactly with ``decode``.

    Rows that fail keep NaN values, zero status/firmware/version, and their
    PayloadError (the same one ``decode`` raises) in ``errors``.
    """
    n = len(payloads)
    lengths = np.fromiter(map(len, payloads), dtype=np.int64, count=n)
    buf = np.frombuffer(b"".join(payloads), dtype=np.uint8)
    starts = np.cumsum(lengths) - lengths
    first = np.zeros(n, dtype=np.uint8)
    nonempty = lengths > 0
    first[nonempty] = buf[starts[nonempty]]

    values = {q: np.full(n, np.nan) for q in QUANTITIES}
    status = np.zeros(n, dtype=np.uint16)
    firmware = np.zeros(n, dtype=np.uint16)
    version = np.zeros(n, dtype=np.uint8)
    ok = np.zeros(n, dtype=bool)
    for layout in _LAYOUTS.values():
        rows = np.flatnonzero((first == layout.version) & (lengths == layout.length))
        if rows.size == 0:
            continue
        if rows.size == n:  # uniform batch: the joined bytes already are the records
            records = buf.view(layout.dtype)
        else:
            gather = starts[rows, None] + np.arange(layout.length)
            records = buf[gather].view(layout.dtype)[:, 0]
        good = np.ones(rows.size, dtype=bool)
        for column in layout.quantities:
            raw = records[column.name]
            present = raw != column.missing
            good &= ~present | ((raw >= column.lo) & (raw <= column.hi))
            values[column.name][rows] = np.where(present, raw / column.factor, np.nan)
        status[rows] = records["status"]
        if "firmware" in layout.dtype.names:
            firmware[rows] = records["firmware"]
        version[rows] = layout.version
        ok[rows] = good

    bad = ~ok
    for column in values.values():
        column[bad] = np.nan
    status[bad] = firmware[bad] = version[bad] = 0
    errors: dict[int, PayloadError] = {}
    for i in np.flatnonzero(bad).tolist():
        try:
            decode(payloads[i])
        except PayloadError as exc:
            errors[i] = exc
    return BatchDecoded(values, status, firmware, version, ok, errors)


def _round_half_away(y: float) -> int:
    """Round like C99 ``round()`` so the C and Python encoders agree byte for byte."""
    a = abs(y)
    r = math.floor(a)
    r += a - r >= 0.5
    return -r if y < 0 else r


def _to_raw(column: _Column, value: float | None) -> tuple[int, bool]:
    """Scale one value to its raw integer; returns (raw, clamped)."""
    if value is None or math.isnan(value):
        return column.missing, False
    y = float(value) * column.factor
    if y >= column.hi + 0.5:
        return column.hi, True
    if y <= column.lo - 0.5:
        return column.lo, True
    return _round_half_away(y), False


def encode(
    values: Mapping[str, float | None],
    *,
    status: int = 0,
    firmware: int = FIRMWARE,
    version: int = VERSION,
) -> bytes:
    """Encode one reading; missing keys, None and NaN mean "not measured".

    Values are rounded half away from zero to the field resolution; values outside
    a field's range are clamped to it and set the ``clamped`` status bit. Unknown
    quantities, quantities the version cannot carry, and status bits or firmware
    numbers that do not fit raise ValueError. Version 1 has no firmware field.
    """
    layout = _LAYOUTS.get(version)
    if layout is None:
        raise ValueError(f"cannot encode payload version {version}")
    unknown = set(values) - set(QUANTITIES)
    if unknown:
        raise ValueError(f"unknown quantities: {sorted(unknown)}")
    carried = {c.name for c in layout.quantities}
    lost = [q for q, v in values.items() if q not in carried and v is not None]
    if lost:
        raise ValueError(f"version {version} has no field for {lost}")
    raw: dict[str, int] = {"status": status, "firmware": firmware}
    for column in layout.quantities:
        raw[column.name], clamped = _to_raw(column, values.get(column.name))
        raw["status"] |= STATUS_BITS["clamped"] if clamped else 0
    for column in layout.columns:
        limit = (1 << 8 * struct.calcsize(column.kind)) - 1
        if column.factor is None and not 0 <= raw[column.name] <= limit:
            raise ValueError(f"{column.name} {raw[column.name]:#x} does not fit version {version}")
    return layout.struct.pack(version, *(raw[c.name] for c in layout.columns))


def status_flags(status: int) -> tuple[str, ...]:
    """Names of the status bits set in ``status`` (reserved bits are not named)."""
    return tuple(name for name, mask in STATUS_BITS.items() if status & mask)


def firmware_version(firmware: int) -> str:
    """Human form ``major.minor`` of the firmware field (``0.0`` = unknown)."""
    return f"{firmware >> 8}.{firmware & 0xFF}"
