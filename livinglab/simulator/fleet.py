"""The simulated fleet: every unit of the registry sending real LNS-shaped uplinks.

Each frame is heard by 1 to 3 of the lab's gateways, and each gateway's copy is
delivered as its own network-server message (as with several integrations or a
packet broker), so the platform must deduplicate. A few copies are held back and
delivered minutes later, out of order. Everything is seeded: the same seed and start
time give the same messages.
"""

from __future__ import annotations

import base64
import heapq
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Protocol

import numpy as np

from livinglab.codec.payload import encode
from livinglab.registry import Gateway, Lab, Registry, Unit
from livinglab.simulator.signals import unit_signals

LATE_SHARE = 0.03  # share of copies delivered late
LATE_DELAY_MS = (30_000, 600_000)  # how late: 30 s to 10 min
AIRTIME_MS = 60
EU868 = (868_100_000, 868_300_000, 868_500_000, 867_100_000, 867_300_000, 867_500_000)


@dataclass(frozen=True)
class Message:
    deliver_at: int  # simulated wall-clock time of delivery, epoch ms
    frame: tuple[str, int]  # (dev_eui, f_cnt): identifies the frame of this copy
    body: bytes


def iso(ms: int) -> str:
    """RFC 3339 with microseconds, as the LNSs write it (the simulator's hottest helper)."""
    seconds, millis = divmod(ms, 1000)
    return f"{_iso_second(seconds)}.{millis:03d}000Z"


@lru_cache(maxsize=1024)
def _iso_second(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _tts(
    unit: Unit,
    f_cnt: int,
    at: int,
    payload: bytes,
    gw: Gateway,
    rssi: float,
    snr: float,
    freq: int,
    sf: int,
) -> dict:
    return {
        "end_device_ids": {
            "device_id": unit.sensor,
            "application_ids": {"application_id": f"livinglab-{unit.lab}"},
            "dev_eui": unit.dev_eui.upper(),
            "dev_addr": unit.dev_addr.upper(),
        },
        "received_at": iso(at),
        "uplink_message": {
            "f_port": 1,
            "f_cnt": f_cnt,
            "frm_payload": base64.b64encode(payload).decode(),
            "rx_metadata": [
                {
                    "gateway_ids": {"gateway_id": f"gw-{gw.id[:6]}", "eui": gw.id.upper()},
                    "time": iso(at - AIRTIME_MS),
                    "rssi": rssi,
                    "channel_rssi": rssi,
                    "snr": snr,
                }
            ],
            "settings": {
                "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": sf}},
                "frequency": str(freq),
            },
            "received_at": iso(at),
        },
    }


def _chirpstack(
    unit: Unit,
    f_cnt: int,
    at: int,
    payload: bytes,
    gw: Gateway,
    rssi: float,
    snr: float,
    freq: int,
    sf: int,
) -> dict:
    msg = {
        "deduplicationId": f"{unit.dev_eui}-{f_cnt}",
        "time": iso(at),
        "deviceInfo": {
            "applicationName": f"livinglab-{unit.lab}",
            "deviceName": unit.sensor,
            "devEui": unit.dev_eui,
        },
        "devAddr": unit.dev_addr,
        "fPort": 1,
        "data": base64.b64encode(payload).decode(),
        "rxInfo": [
            {"gatewayId": gw.id, "rssi": int(rssi), "snr": snr, "gwTime": iso(at - AIRTIME_MS)}
        ],
        "txInfo": {
            "frequency": freq,
            "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": sf}},
        },
    }
    if f_cnt:  # ChirpStack omits zero-valued fields
        msg["fCnt"] = f_cnt
    return msg


def _distance_km(unit: Unit, gw: Gateway) -> float:
    dlat = (unit.latitude - gw.latitude) * 111.0
    dlon = (unit.longitude - gw.longitude) * 111.0 * np.cos(np.radians(unit.latitude))
    return float(np.hypot(dlat, dlon))


class Effects(Protocol):
    """A hook that changes what a unit measures and sends (livinglab/simulator/scenarios.py)."""

    def __call__(self, unit: Unit, sent: np.ndarray, signals: dict[str, np.ndarray]) -> np.ndarray:
        """Change ``signals`` in place; return which frames are actually sent."""
        ...


def send_times(
    unit: Unit, index: int, start_ms: int, end_ms: int, seed: int
) -> tuple[np.random.Generator, np.ndarray]:
    """The unit's random stream and the event times of its uplinks in [start, end)."""
    rng = np.random.default_rng([seed, index])
    interval = unit.uplink_interval_s * 1000
    phase = int(rng.integers(0, interval))
    sent = np.arange(start_ms + phase, end_ms, interval, dtype=np.int64)
    return rng, sent + rng.integers(-1500, 1500, len(sent))


def unit_messages(
    lab: Lab,
    unit: Unit,
    index: int,
    start_ms: int,
    end_ms: int,
    seed: int,
    effects: Effects | None = None,
) -> Iterator[Message]:
    """All messages of one unit in [start, end), in delivery order."""
    rng, sent = send_times(unit, index, start_ms, end_ms, seed)
    if len(sent) == 0:
        return
    signals = unit_signals(sent, lab.timezone, rng)
    keep = np.ones(len(sent), dtype=bool) if effects is None else effects(unit, sent, signals)
    first_fcnt = int(rng.integers(0, 5000))
    sf = int(rng.choice([7, 8, 9, 10]))
    build = _chirpstack if lab.integration == "chirpstack" else _tts
    gateways = lab.gateways or (Gateway("0000000000000000", unit.latitude, unit.longitude),)
    distances = [_distance_km(unit, gw) for gw in gateways]
    late: list[tuple[int, int, Message]] = []  # (deliver_at, seq, message)
    for i, at in enumerate(sent.tolist()):
        if not keep[i]:
            continue
        payload = encode({q: float(v[i]) for q, v in signals.items()})
        f_cnt = first_fcnt + i
        freq = EU868[int(rng.integers(0, len(EU868)))]
        heard = rng.choice(
            len(gateways), size=int(rng.integers(1, min(3, len(gateways)) + 1)), replace=False
        )
        for g in sorted(heard.tolist()):
            rssi = round(-60 - 25 * math.log10(1 + 10 * distances[g]) + rng.normal(0, 4), 0)
            snr = round(min(14.0, max(-20.0, 10 + (rssi + 90) / 4 + rng.normal(0, 2))), 1)
            body = json.dumps(
                build(unit, f_cnt, at, payload, gateways[g], rssi, snr, freq, sf),
                separators=(",", ":"),
            ).encode()
            deliver = at
            if rng.random() < LATE_SHARE:
                deliver += int(rng.integers(*LATE_DELAY_MS))
                heapq.heappush(
                    late, (deliver, len(late) + i, Message(deliver, (unit.dev_eui, f_cnt), body))
                )
                continue
            while late and late[0][0] <= at:
                yield heapq.heappop(late)[2]
            yield Message(deliver, (unit.dev_eui, f_cnt), body)
    while late:
        yield heapq.heappop(late)[2]


def fleet_messages(
    registry: Registry, start_ms: int, end_ms: int, seed: int, effects: Effects | None = None
) -> Iterator[Message]:
    """Every unit's messages merged into one stream in delivery order."""
    streams = [
        unit_messages(lab, unit, i, start_ms, end_ms, seed, effects)
        for i, (lab, unit) in enumerate((lab, u) for lab in registry.labs for u in lab.units)
    ]
    return heapq.merge(*streams, key=lambda m: m.deliver_at)
