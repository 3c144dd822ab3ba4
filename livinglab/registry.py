"""The lab registry: which sensor units exist, where they stand and how to read them.

Loaded from YAML and validated up front, because a typo in a DevEUI or a key would
otherwise surface hours later as a stream of `unknown_device` or `mic` dead letters.
Every error names the file, the entry and the problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from streams.calibration import Calibration
from streams.calibration import parse as parse_calibration
from streams.detectors import DetectorSettings

DEFAULT_REGISTRY = Path(__file__).resolve().parent.parent / "config" / "labs.yaml"
PAYLOAD_FORMATS = ("livinglab", "cayenne")
INTEGRATIONS = ("tts", "chirpstack", "udp")

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class RegistryError(ValueError):
    """A registry file that cannot be used, with the place and the reason."""

    def __init__(self, path: Path | str, entry: str, problem: str) -> None:
        self.path, self.entry, self.problem = str(path), entry, problem
        super().__init__(f"{path}: {entry}: {problem}")


@dataclass(frozen=True)
class Gateway:
    id: str
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Unit:
    """One sensor unit (a LoRaWAN end device) in one lab."""

    lab: str
    sensor: str
    dev_eui: str
    dev_addr: str
    nwk_s_key: bytes = field(repr=False)
    app_s_key: bytes = field(repr=False)
    payload_format: str
    latitude: float
    longitude: float
    uplink_interval_s: int
    cayenne_channels: dict[int, str] = field(default_factory=dict)
    calibration: tuple[Calibration, ...] = ()  # versions by valid_from (streams/calibration.py)

    @property
    def key(self) -> str:
        """The Kafka key of this unit's readings and aggregates."""
        return f"{self.lab}:{self.sensor}"


@dataclass(frozen=True)
class Lab:
    id: str
    name: str
    timezone: str
    integration: str
    units: tuple[Unit, ...]
    gateways: tuple[Gateway, ...]
    detectors: DetectorSettings = field(default_factory=DetectorSettings)

    @property
    def alert_topic(self) -> str:
        return f"alerts.{self.id}"


@dataclass(frozen=True)
class Registry:
    path: Path
    labs: tuple[Lab, ...]
    by_dev_eui: dict[str, Unit]
    by_dev_addr: dict[str, Unit]

    def lab(self, lab_id: str) -> Lab:
        for lab in self.labs:
            if lab.id == lab_id:
                return lab
        known = ", ".join(lab.id for lab in self.labs)
        raise KeyError(f"unknown lab {lab_id!r}; the registry has: {known}")

    @property
    def units(self) -> list[Unit]:
        return [unit for lab in self.labs for unit in lab.units]

    @cached_property
    def dev_euis(self) -> list[str]:
        """Every DevEUI, sorted: an order to work through units in that a reordered
        registry file does not change."""
        return sorted(self.by_dev_eui)


class _Checker:
    """Reads typed fields out of a YAML mapping, raising errors that point at the entry."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, entry: str, problem: str) -> RegistryError:
        return RegistryError(self.path, entry, problem)

    def mapping(self, value: Any, entry: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(entry, f"expected a mapping, got {type(value).__name__}")
        return value

    def get(
        self, data: dict[str, Any], name: str, kind: type, entry: str, default: Any = ...
    ) -> Any:
        if name not in data:
            if default is ...:
                raise self.fail(entry, f"missing field '{name}'")
            return default
        value = data[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise self.fail(entry, f"field '{name}' must be {kind.__name__}, got {value!r}")
        return value

    def hex_field(self, data: dict[str, Any], name: str, length: int, entry: str) -> str:
        value = str(self.get(data, name, str, entry)).lower()
        if len(value) != length or not _HEX.match(value):
            raise self.fail(entry, f"field '{name}' must be {length} hex digits, got {value!r}")
        return value


def load_registry(path: Path | str | None = None) -> Registry:
    """Load and validate a registry file (default: the sample in config/labs.yaml)."""
    path = Path(path) if path else DEFAULT_REGISTRY
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistryError(path, "file", "does not exist") from None
    except yaml.YAMLError as exc:
        raise RegistryError(path, "file", f"is not valid YAML: {exc}") from None
    return parse_registry(raw, path)


def parse_registry(raw: Any, path: Path) -> Registry:
    c = _Checker(path)
    top = c.mapping(raw, "top level")
    defaults = c.mapping(top.get("defaults", {}), "defaults")
    labs_raw = c.get(top, "labs", list, "top level")
    if not labs_raw:
        raise c.fail("labs", "no labs defined")
    labs: list[Lab] = []
    by_eui: dict[str, Unit] = {}
    by_addr: dict[str, Unit] = {}
    for i, lab_raw in enumerate(labs_raw):
        lab = _parse_lab(c, c.mapping(lab_raw, f"labs[{i}]"), f"labs[{i}]", defaults)
        if any(other.id == lab.id for other in labs):
            raise c.fail(f"labs[{i}]", f"duplicate lab id {lab.id!r}")
        for unit in lab.units:
            entry = f"lab {lab.id}, unit {unit.sensor}"
            for index, value, what in (
                (by_eui, unit.dev_eui, "dev_eui"),
                (by_addr, unit.dev_addr, "dev_addr"),
            ):
                if value in index:
                    other = index[value]
                    raise c.fail(
                        entry, f"{what} {value} is also used by {other.lab}:{other.sensor}"
                    )
                index[value] = unit
        labs.append(lab)
    return Registry(path=path, labs=tuple(labs), by_dev_eui=by_eui, by_dev_addr=by_addr)


def _parse_lab(c: _Checker, data: dict[str, Any], entry: str, defaults: dict[str, Any]) -> Lab:
    lab_id = c.get(data, "id", str, entry)
    if not _ID.match(lab_id):
        raise c.fail(entry, f"lab id {lab_id!r} must be lower-case letters, digits, '-' or '_'")
    entry = f"lab {lab_id}"
    tz = c.get(data, "timezone", str, entry, defaults.get("timezone", "Europe/Amsterdam"))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise c.fail(entry, f"unknown time zone {tz!r}") from None
    integration = c.get(data, "integration", str, entry, defaults.get("integration", "tts"))
    if integration not in INTEGRATIONS:
        raise c.fail(entry, f"integration must be one of {INTEGRATIONS}, got {integration!r}")
    gateways = tuple(
        Gateway(
            id=c.hex_field(g, "id", 16, f"{entry}, gateways[{j}]"),
            latitude=c.get(g, "latitude", float, f"{entry}, gateways[{j}]"),
            longitude=c.get(g, "longitude", float, f"{entry}, gateways[{j}]"),
        )
        for j, g in enumerate(c.get(data, "gateways", list, entry, []))
    )
    units_raw = c.get(data, "units", list, entry)
    if not units_raw:
        raise c.fail(entry, "no units defined")
    units: list[Unit] = []
    for j, unit_raw in enumerate(units_raw):
        unit = _parse_unit(
            c, c.mapping(unit_raw, f"{entry}, units[{j}]"), lab_id, f"{entry}, units[{j}]", defaults
        )
        if any(u.sensor == unit.sensor for u in units):
            raise c.fail(f"{entry}, units[{j}]", f"duplicate sensor id {unit.sensor!r}")
        units.append(unit)
    name = c.get(data, "name", str, entry, lab_id)
    detectors = _parse_detectors(c, data, entry)
    return Lab(lab_id, name, tz, integration, tuple(units), gateways, detectors)


def _parse_detectors(c: _Checker, data: dict[str, Any], entry: str) -> DetectorSettings:
    """The lab's `detectors` section over the defaults (streams/detectors/config.py)."""
    raw = c.mapping(c.get(data, "detectors", dict, entry, {}), f"{entry}, detectors")
    if "expected_interval_s" in (raw.get("offline") or {}):
        raise c.fail(
            f"{entry}, detectors",
            "offline.expected_interval_s comes from each unit's uplink_interval_s; set that",
        )
    try:
        return DetectorSettings.from_mapping(raw)
    except ValueError as exc:
        raise c.fail(f"{entry}, detectors", str(exc)) from None


def _parse_unit(
    c: _Checker, data: dict[str, Any], lab: str, entry: str, defaults: dict[str, Any]
) -> Unit:
    sensor = c.get(data, "sensor", str, entry)
    if not _ID.match(sensor):
        raise c.fail(entry, f"sensor id {sensor!r} must be lower-case letters, digits, '-' or '_'")
    entry = f"lab {lab}, unit {sensor}"
    fmt = c.get(data, "payload_format", str, entry, defaults.get("payload_format", "livinglab"))
    if fmt not in PAYLOAD_FORMATS:
        raise c.fail(entry, f"payload_format must be one of {PAYLOAD_FORMATS}, got {fmt!r}")
    interval = c.get(data, "uplink_interval_s", int, entry, defaults.get("uplink_interval_s", 60))
    if interval <= 0:
        raise c.fail(entry, f"uplink_interval_s must be positive, got {interval}")
    lat = c.get(data, "latitude", float, entry)
    lon = c.get(data, "longitude", float, entry)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise c.fail(entry, f"latitude/longitude out of range: {lat}, {lon}")
    channels_raw = c.mapping(c.get(data, "cayenne_channels", dict, entry, {}), entry)
    channels: dict[int, str] = {}
    for ch, quantity in channels_raw.items():
        if not isinstance(ch, int) or not 0 <= ch <= 255 or not isinstance(quantity, str):
            raise c.fail(
                entry, f"cayenne_channels: {ch!r}: {quantity!r} is not channel(0-255): name"
            )
        channels[ch] = quantity
    if fmt == "cayenne" and not channels:
        raise c.fail(entry, "payload_format cayenne needs a cayenne_channels mapping")
    try:
        calibration = parse_calibration(data.get("calibration", []))
    except ValueError as exc:
        raise c.fail(entry, str(exc)) from None
    return Unit(
        lab=lab,
        sensor=sensor,
        dev_eui=c.hex_field(data, "dev_eui", 16, entry),
        dev_addr=c.hex_field(data, "dev_addr", 8, entry),
        nwk_s_key=bytes.fromhex(c.hex_field(data, "nwk_s_key", 32, entry)),
        app_s_key=bytes.fromhex(c.hex_field(data, "app_s_key", 32, entry)),
        payload_format=fmt,
        latitude=lat,
        longitude=lon,
        uplink_interval_s=interval,
        cayenne_channels=channels,
        calibration=calibration,
    )
