"""Semtech UDP packet-forwarder bridge: gateways' datagrams in, `Uplink` records into Kafka.

Protocol choices (Lora-net/packet_forwarder PROTOCOL.TXT):
- PUSH_DATA gets PUSH_ACK and PULL_DATA gets PULL_ACK, echoing version and token, right away:
  the acks say "received", and a forwarder never sends a datagram twice anyway.
- Only gateways listed in the registry are answered. A datagram from any other gateway (or one
  too short to name its gateway) is counted, logged once per gateway EUI and not acknowledged:
  the forwarder then shows no acknowledgements in its `ackr` statistic, which tells its operator
  that this server does not take its traffic, and a stranger cannot fill Kafka with dead letters.
- While more than `max_backlog` messages wait for Kafka, PUSH_DATA carrying packets is dropped,
  counted and not acknowledged: UDP cannot push back, so memory stays bounded instead.
- A datagram from a registered gateway that cannot be read is dead-lettered and not
  acknowledged; a readable PUSH_DATA is acknowledged even when single rxpk entries are not
  (those are dead-lettered one by one).
- TX_ACK is counted, an error in it logged (this bridge sends no downlinks yet).
- rxpk with `stat` -1 (CRC failed) are radio noise: counted per gateway and dropped.

Frames: copies of the same PHYPayload that reach the bridge within `dedup_window` seconds of the
first become one uplink carrying every gateway; a copy arriving later becomes a second uplink,
which the stream worker merges into the first. Unknown DevAddrs, join-requests, bad MICs and
unreadable frames become one dead letter per frame, not one per copy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from connectors.ingress import Ingress
from connectors.lns import IngressError
from connectors.semtech_udp import (
    GatewayStat,
    PullData,
    PushData,
    RxPacket,
    SemtechError,
    TxAck,
    parse_datagram,
    pull_ack,
    push_ack,
)
from connectors.sessions import Opened, Sessions
from livinglab.registry import Registry

log = logging.getLogger(__name__)

DEFAULT_DEDUP_WINDOW = 0.2
DEFAULT_MAX_BACKLOG = 100_000
DEFAULT_MAX_CLOCK_SKEW = 300.0
_MAX_STRANGERS_LOGGED = 1024


@dataclass
class GatewayState:
    """What the bridge knows about one registered gateway."""

    address: tuple[Any, ...] | None = None  # where its datagrams come from (downlinks go there)
    last_seen: float | None = None  # epoch seconds
    stat: GatewayStat | None = None  # its last status report
    counts: Counter[str] = field(default_factory=Counter)

    def summary(self) -> dict[str, Any]:
        stat = {k: v for k, v in asdict(self.stat).items() if v is not None} if self.stat else {}
        if isinstance(stat.get("time"), datetime):
            stat["time"] = stat["time"].isoformat()
        return {
            "address": f"{self.address[0]}:{self.address[1]}" if self.address else None,
            "last_seen": self.last_seen,
            **self.counts,
            "stat": stat,
        }


@dataclass(slots=True)
class _Frame:
    """One PHYPayload waiting out the dedup window."""

    deadline: float  # time.monotonic()
    arrived_ms: int  # wall clock of the first copy
    copies: list[RxPacket]


def gateway_entry(packet: RxPacket) -> dict[str, Any]:
    """One gateway's view of a frame, as the `Gateway` record has it."""
    rssi, snr = packet.best_rssi, packet.best_lsnr
    return {
        "id": packet.gateway,
        "rssi": None if rssi is None else float(rssi),
        "snr": snr,
        "time": None if packet.time is None else int(packet.time.timestamp() * 1000),
    }


def uplink_record(
    opened: Opened, copies: Sequence[RxPacket], arrived_ms: int, max_skew_ms: float
) -> dict[str, Any]:
    """The `Uplink` record of a frame; event time is the earliest plausible gateway time.

    A gateway time further than `max_skew_ms` from the arrival is a clock without GPS or NTP and
    is ignored for the event time (it stays in the gateway entry).
    """
    gateways = [gateway_entry(packet) for packet in copies]
    times = [
        g["time"]
        for g in gateways
        if g["time"] is not None and abs(g["time"] - arrived_ms) <= max_skew_ms
    ]
    first = copies[0]
    return {
        "source": "udp",
        "dev_eui": opened.unit.dev_eui,
        "dev_addr": opened.unit.dev_addr,
        "f_cnt": opened.f_cnt,
        "f_port": opened.f_port,
        "received_at": min(times, default=arrived_ms),
        "gateways": gateways,
        "frequency": round(first.freq * 1_000_000),
        "spreading_factor": first.spreading_factor,
        "payload": opened.payload,
        "original": first.data,
    }


class UdpBridge(asyncio.DatagramProtocol):
    """The server side of the protocol for the registry's gateways; see the module doc."""

    def __init__(
        self,
        registry: Registry,
        ingress: Ingress,
        *,
        dedup_window: float = DEFAULT_DEDUP_WINDOW,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
        max_clock_skew: float = DEFAULT_MAX_CLOCK_SKEW,
    ) -> None:
        self.ingress = ingress
        self.sessions = Sessions(registry)
        self.gateways = {gw.id: GatewayState() for lab in registry.labs for gw in lab.gateways}
        self.stats: Counter[str] = Counter()
        self.dedup_window = dedup_window
        self.max_backlog = max_backlog
        self._max_skew_ms = max_clock_skew * 1000
        self._pending: dict[bytes, _Frame] = {}
        self._strangers: set[str] = set()
        self._dropping = False
        self._transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        reply = self.handle(data, addr)
        if reply is not None and self._transport is not None:
            self._transport.sendto(reply, addr)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.flush()

    def _arm(self) -> None:
        """One timer, for the oldest frame's window: frames arrive in deadline order."""
        if self._pending and self._timer is None:
            delay = next(iter(self._pending.values())).deadline - time.monotonic()
            self._timer = asyncio.get_running_loop().call_later(max(0.0, delay), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.flush(time.monotonic())
        self._arm()

    # -- datagrams -------------------------------------------------------------------------
    def handle(self, data: bytes, addr: tuple[Any, ...]) -> bytes | None:
        """Take one datagram; returns the answer to send back, if any."""
        self.stats["datagrams"] += 1
        eui = data[4:12].hex() if len(data) >= 12 else ""
        gateway = self.gateways.get(eui)
        if gateway is None:
            self._stranger(eui, addr)
            return None
        wall = time.time()
        gateway.address, gateway.last_seen = addr, wall
        try:
            message = parse_datagram(data)
        except SemtechError as exc:
            gateway.counts["unreadable"] += 1
            self.ingress.reject(data, exc.reason, f"gateway {eui}: {exc}", origin=f"udp:{eui}")
            return None
        if isinstance(message, PullData):
            gateway.counts["pull_data"] += 1
            return pull_ack(message.token, message.version)
        if isinstance(message, TxAck):
            gateway.counts["tx_ack"] += 1
            if message.error:
                gateway.counts["tx_ack_error"] += 1
                log.warning("udp bridge: gateway %s refused a downlink: %s", eui, message.error)
            return None
        return self._push(gateway, message, data, wall)

    def _push(
        self, gateway: GatewayState, push: PushData, data: bytes, wall: float
    ) -> bytes | None:
        backlog = len(self.ingress.producer)
        if push.rxpk and backlog >= self.max_backlog:
            gateway.counts["dropped_backlog"] += 1
            self.stats["dropped_backlog"] += len(push.rxpk)
            if not self._dropping:
                self._dropping = True
                log.error(
                    "udp bridge: %d messages wait for Kafka; dropping packets unacknowledged "
                    "until it catches up",
                    backlog,
                )
            return None
        if self._dropping:
            self._dropping = False
            log.warning(
                "udp bridge: Kafka caught up (%d messages wait); taking packets again", backlog
            )
        gateway.counts["push_data"] += 1
        for error in push.errors:
            self.ingress.reject(
                data, error.reason, f"gateway {push.gateway}: {error}", origin=f"udp:{push.gateway}"
            )
        if push.stat is not None:
            gateway.stat = push.stat
        now, arrived_ms = time.monotonic(), int(wall * 1000)
        for packet in push.rxpk:
            self._packet(gateway, packet, now, arrived_ms)
        self.flush(now)
        return push_ack(push.token, push.version)

    def _packet(self, gateway: GatewayState, packet: RxPacket, now: float, arrived_ms: int) -> None:
        gateway.counts["rxpk"] += 1
        if packet.stat == -1:
            gateway.counts["crc_failed"] += 1
            self.stats["crc_failed"] += 1
            return
        frame = self._pending.get(packet.data)
        if frame is None:
            self._pending[packet.data] = _Frame(now + self.dedup_window, arrived_ms, [packet])
        elif all(copy.gateway != packet.gateway for copy in frame.copies):
            frame.copies.append(packet)
            self.stats["copies_merged"] += 1
        else:  # the same gateway twice (two concentrators hearing one frame)
            self.stats["copies_repeated"] += 1

    def _stranger(self, eui: str, addr: tuple[Any, ...]) -> None:
        self.stats["unknown_gateway" if eui else "unreadable_header"] += 1
        if eui not in self._strangers and len(self._strangers) < _MAX_STRANGERS_LOGGED:
            self._strangers.add(eui)
            log.warning(
                "udp bridge: ignoring %s from %s:%s; further ones are only counted",
                f"gateway {eui} (not in the registry)"
                if eui
                else "a datagram too short to name its gateway",
                addr[0],
                addr[1],
            )

    # -- frames ----------------------------------------------------------------------------
    def flush(self, now: float = float("inf")) -> None:
        """Pass on every frame whose dedup window has closed by `now` (default: all)."""
        pending = self._pending
        while pending:
            phy = next(iter(pending))
            frame = pending[phy]
            if frame.deadline > now:
                break
            del pending[phy]
            self._frame(phy, frame)
        self.ingress.producer.poll(0)

    def _frame(self, phy: bytes, frame: _Frame) -> None:
        self.stats["frames"] += 1
        try:
            opened = self.sessions.open(phy)
        except IngressError as exc:
            via = ", ".join(copy.gateway for copy in frame.copies)
            origin = f"udp:{frame.copies[0].gateway}:{frame.arrived_ms}"
            self.ingress.reject(phy, exc.reason, f"{exc} (via {via})", origin, dev_eui=exc.dev_eui)
            return
        self.ingress.produce_uplink(
            uplink_record(opened, frame.copies, frame.arrived_ms, self._max_skew_ms)
        )

    def report(self) -> dict[str, Any]:
        """Counters for the periodic log line and for tests."""
        self.ingress.producer.poll(0)  # serve delivery reports: the backlog figure is current
        return {
            "bridge": dict(self.stats),
            "ingress": dict(self.ingress.stats),
            "frames_in_window": len(self._pending),
            "kafka_backlog": len(self.ingress.producer),
            "gateways": {
                eui: state.summary() for eui, state in self.gateways.items() if state.last_seen
            },
            "silent_gateways": sorted(eui for eui, s in self.gateways.items() if not s.last_seen),
        }
