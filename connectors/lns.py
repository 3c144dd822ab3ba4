"""Normalise network-server uplink JSON (The Things Stack v3, ChirpStack v4 and v3)
into our `Uplink` record.

The formats leave out zero-valued fields (ChirpStack omits `fCnt` 0, TTS omits
`f_cnt` 0 and `f_port` 0), so absent counters mean 0, never "unknown".
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from datetime import UTC, datetime
from typing import Any

MAX_MESSAGE_BYTES = 64 * 1024


class IngressError(ValueError):
    """A message that cannot become an uplink; `reason` goes into the dead letter.

    `dev_eui` names the device when it is known (a frame with a bad MIC, a join-request), so the
    dead letter can be found per device.
    """

    def __init__(self, reason: str, detail: str, dev_eui: str | None = None) -> None:
        self.reason = reason
        self.dev_eui = dev_eui
        super().__init__(detail)


_FRACTION = re.compile(r"(\.\d{1,6})\d*")
_HEX = re.compile(r"[0-9a-f]+")


def parse_time_ms(value: Any, field: str) -> int:
    """RFC 3339 time (any fraction length, Z or offset) -> epoch milliseconds."""
    if not isinstance(value, str):
        raise IngressError("field", f"{field} must be an RFC 3339 time string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:  # more than 6 fraction digits (ChirpStack sends nanoseconds)
        text = _FRACTION.sub(r"\1", value.strip()).replace("z", "Z")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise IngressError("field", f"{field} is not an RFC 3339 time: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _hex_eui(value: Any, field: str, length: int = 16) -> str:
    """EUIs come as hex, or base64 in ChirpStack v3's protobuf-JSON mode."""
    if isinstance(value, str):
        text = value.strip().lower()
        if len(text) == length and _HEX.fullmatch(text):
            return text
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == length // 2:
            return raw.hex()
    raise IngressError("field", f"{field} must be {length} hex digits, got {value!r}")


def _b64(value: Any, field: str) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):
        raise IngressError("field", f"{field} must be base64 text, got {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise IngressError("field", f"{field} is not valid base64") from None


def _int(value: Any, field: str, default: int | None = 0) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise IngressError("field", f"{field} must be an integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise IngressError("field", f"{field} must be an integer, got {value!r}") from None


def _float(value: Any) -> float | None:
    """Signal figures are optional metadata: anything but a finite number means unknown."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _gateway(gw_id: Any, rssi: Any, snr: Any, time_value: Any) -> dict[str, Any]:
    # Lower case, as the registry and the UDP bridge write EUIs (TTS sends them upper case).
    return {
        "id": str(gw_id or "unknown").lower(),
        "rssi": _float(rssi),
        "snr": _float(snr),
        "time": parse_time_ms(time_value, "gateway time") if time_value else None,
    }


def _from_tts(msg: dict[str, Any]) -> dict[str, Any]:
    ids = msg.get("end_device_ids") or {}
    up = msg["uplink_message"]
    if not isinstance(up, dict):
        raise IngressError("field", "uplink_message must be an object")
    settings = up.get("settings") or {}
    lora = ((settings.get("data_rate") or {}).get("lora")) or {}
    gateways = [
        _gateway(
            (rx.get("gateway_ids") or {}).get("eui")
            or (rx.get("gateway_ids") or {}).get("gateway_id"),
            rx.get("rssi", rx.get("channel_rssi")),
            rx.get("snr"),
            rx.get("time"),
        )
        for rx in up.get("rx_metadata") or []
        if isinstance(rx, dict)
    ]
    return {
        "source": "tts",
        "dev_eui": _hex_eui(ids.get("dev_eui"), "end_device_ids.dev_eui"),
        "dev_addr": _hex_eui(ids["dev_addr"], "dev_addr", 8) if ids.get("dev_addr") else None,
        "f_cnt": _int(up.get("f_cnt"), "f_cnt"),
        "f_port": _int(up.get("f_port"), "f_port"),
        "received_at": parse_time_ms(
            msg.get("received_at") or up.get("received_at"), "received_at"
        ),
        "gateways": gateways,
        "frequency": _int(settings.get("frequency"), "frequency", None),
        "spreading_factor": _int(lora.get("spreading_factor"), "spreading_factor", None),
        "payload": _b64(up.get("frm_payload"), "frm_payload"),
    }


def _from_chirpstack4(msg: dict[str, Any]) -> dict[str, Any]:
    info = msg["deviceInfo"]
    if not isinstance(info, dict):
        raise IngressError("field", "deviceInfo must be an object")
    tx = msg.get("txInfo") or {}
    lora = ((tx.get("modulation") or {}).get("lora")) or {}
    gateways = [
        _gateway(
            rx.get("gatewayId"), rx.get("rssi"), rx.get("snr"), rx.get("time") or rx.get("gwTime")
        )
        for rx in msg.get("rxInfo") or []
        if isinstance(rx, dict)
    ]
    return {
        "source": "chirpstack4",
        "dev_eui": _hex_eui(info.get("devEui"), "deviceInfo.devEui"),
        "dev_addr": _hex_eui(msg["devAddr"], "devAddr", 8) if msg.get("devAddr") else None,
        "f_cnt": _int(msg.get("fCnt"), "fCnt"),
        "f_port": _int(msg.get("fPort"), "fPort"),
        "received_at": parse_time_ms(msg.get("time"), "time"),
        "gateways": gateways,
        "frequency": _int(tx.get("frequency"), "frequency", None),
        "spreading_factor": _int(lora.get("spreadingFactor"), "spreadingFactor", None),
        "payload": _b64(msg.get("data"), "data"),
    }


def _from_chirpstack3(msg: dict[str, Any]) -> dict[str, Any]:
    tx = msg.get("txInfo") or {}
    rx_info = [rx for rx in msg.get("rxInfo") or [] if isinstance(rx, dict)]
    gateways = [
        _gateway(
            _hex_eui(rx["gatewayID"], "gatewayID") if rx.get("gatewayID") else None,
            rx.get("rssi"),
            rx.get("loRaSNR"),
            rx.get("time"),
        )
        for rx in rx_info
    ]
    times = [rx.get("time") for rx in rx_info if rx.get("time")]
    if not times and not msg.get("publishedAt"):
        raise IngressError("field", "ChirpStack v3 uplink has no rxInfo[].time to date it")
    lora = (tx.get("loRaModulationInfo")) or {}
    return {
        "source": "chirpstack3",
        "dev_eui": _hex_eui(msg.get("devEUI"), "devEUI"),
        "dev_addr": _hex_eui(msg["devAddr"], "devAddr", 8) if msg.get("devAddr") else None,
        "f_cnt": _int(msg.get("fCnt"), "fCnt"),
        "f_port": _int(msg.get("fPort"), "fPort"),
        "received_at": min(parse_time_ms(t, "rxInfo.time") for t in times)
        if times
        else parse_time_ms(msg["publishedAt"], "publishedAt"),
        "gateways": gateways,
        "frequency": _int(tx.get("frequency"), "frequency", None),
        "spreading_factor": _int(lora.get("spreadingFactor"), "spreadingFactor", None),
        "payload": _b64(msg.get("data"), "data"),
    }


def detect_format(msg: dict[str, Any]) -> str:
    if "uplink_message" in msg:
        return "tts"
    if "deviceInfo" in msg:
        return "chirpstack4"
    if "devEUI" in msg:
        return "chirpstack3"
    raise IngressError("format", "not an uplink of The Things Stack v3 or ChirpStack v3/v4")


# What the Uplink record (and LoRaWAN) can hold; EU868 and the other plans lie within 1..10 GHz.
_RANGES = {
    "f_cnt": (0, 2**32 - 1),
    "f_port": (0, 255),
    "frequency": (1, 10**10),
    "spreading_factor": (5, 12),
}

_PARSERS = {"tts": _from_tts, "chirpstack4": _from_chirpstack4, "chirpstack3": _from_chirpstack3}


def normalise(raw: bytes) -> dict[str, Any]:
    """LNS JSON bytes -> Uplink record (see schemas/avro/uplink.avsc)."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise IngressError("too_large", f"message of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        msg = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise IngressError("json", f"not JSON: {str(exc)[:200]}") from None
    if not isinstance(msg, dict):
        raise IngressError("json", f"expected a JSON object, got {type(msg).__name__}")
    fmt = detect_format(msg)
    try:
        uplink = _PARSERS[fmt](msg)
    except KeyError as exc:
        raise IngressError("field", f"{fmt} message lacks {exc}") from None
    except (AttributeError, TypeError) as exc:
        raise IngressError("field", f"{fmt} message has a field of the wrong type: {exc}") from None
    for name, (low, high) in _RANGES.items():
        value = uplink[name]
        if value is not None and not low <= value <= high:
            raise IngressError("field", f"{name} {value} outside {low}..{high}")
    uplink["original"] = raw
    return uplink
