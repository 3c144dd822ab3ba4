"""The Semtech UDP bridge: datagrams from the registry's gateways in, Uplink records into Kafka.

Frames are built as a device builds them (connectors.lorawan.build_uplink, itself checked against
lora-packet) and datagrams as a packet forwarder sends them (semtech_udp.build_push_data). Kafka
is a real broker (Tansu); most tests drive `UdpBridge.handle` directly with a long dedup window
and flush explicitly, so copies merge deterministically; one test goes through real sockets.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
import struct
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Producer

from connectors.ingress import Ingress
from connectors.lorawan import build_uplink
from connectors.semtech_udp import GatewayStat, RxPacket, build_push_data, pull_ack, push_ack
from connectors.udp_bridge import UdpBridge
from livinglab.processes import free_port
from livinglab.registry import load_registry
from tests import test_connectors_handoff as kit
from tests.test_connectors_handoff import running, taps

kafka, producer = kit.kafka, kit.producer  # the module's broker and connector producer
REGISTRY = load_registry()
LAB = REGISTRY.lab("zoetermeer")
UNIT, OTHER = LAB.units[0], LAB.units[1]
GW1, GW2, GW3 = (gateway.id for gateway in LAB.gateways)
STRANGER = "00000000deadbeef"
ADDR = ("127.0.0.1", 40000)
TOKEN = b"\x4a\x2f"
T0 = datetime.now(UTC).replace(microsecond=0)  # gateway clocks are near the bridge's


def frame(fcnt: int, payload: bytes = b"\x01\x02\x03", unit=UNIT, f_port: int = 2) -> bytes:
    return build_uplink(unit.dev_addr, fcnt, f_port, payload, unit.nwk_s_key, unit.app_s_key)


def rx(
    gateway: str,
    phy: bytes,
    *,
    rssi: int = -90,
    lsnr: float = 7.5,
    stat: int = 1,
    time: datetime | None = None,
) -> RxPacket:
    return RxPacket(
        gateway=gateway,
        data=phy,
        freq=868.1,
        datr="SF9BW125",
        modu="LORA",
        stat=stat,
        time=time,
        tmst=1_000_000,
        rssi=rssi,
        lsnr=lsnr,
    )


def push(
    gateway: str, *packets: RxPacket, stat: GatewayStat | None = None, version: int = 2
) -> bytes:
    return build_push_data(TOKEN, gateway, packets, stat, version)


def join_request(dev_eui: str) -> bytes:
    """MHDR 0x00 | JoinEUI | DevEUI (both little-endian) | DevNonce | MIC (LoRaWAN 1.0.x 6.2.4)."""
    return (
        b"\x00"
        + bytes.fromhex("70b3d57ed0000000")[::-1]
        + bytes.fromhex(dev_eui)[::-1]
        + struct.pack("<H", 7)
        + b"\x00\x00\x00\x00"
    )


def new_bridge(producer: Producer, **settings: Any) -> UdpBridge:
    return UdpBridge(REGISTRY, Ingress(producer, source="udp"), **settings)


@pytest.fixture
def bridge(producer: Producer) -> UdpBridge:
    """A bridge whose dedup window never closes by itself: tests call `flush()`."""
    return new_bridge(producer, dedup_window=3600)


def settle(bridge: UdpBridge) -> None:
    bridge.flush()
    bridge.ingress.flush(10)


def test_acks_echo_token_and_version(bridge: UdpBridge) -> None:
    assert bridge.handle(push(GW1, rx(GW1, frame(1))), ADDR) == push_ack(TOKEN, 2)
    assert bridge.handle(push(GW1, rx(GW1, frame(2)), version=1), ADDR) == push_ack(TOKEN, 1)
    pull = bytes([2]) + TOKEN + bytes([0x02]) + bytes.fromhex(GW2)
    assert bridge.handle(pull, ("10.0.0.7", 1701)) == pull_ack(TOKEN, 2)
    assert bridge.gateways[GW2].address == ("10.0.0.7", 1701)
    assert bridge.gateways[GW2].counts["pull_data"] == 1


def test_copies_within_the_window_become_one_uplink_with_every_gateway(
    bridge: UdpBridge,
    kafka: str,
) -> None:
    phy = frame(41, b"noise and air")
    with taps(kafka) as (uplinks, dead):
        bridge.handle(push(GW1, rx(GW1, phy, rssi=-101, lsnr=-3.25, time=T0)), ADDR)
        bridge.handle(
            push(GW2, rx(GW2, phy, rssi=-87, lsnr=6.0, time=T0 - timedelta(milliseconds=3))), ADDR
        )
        bridge.handle(push(GW3, rx(GW3, phy, rssi=-95, lsnr=2.5)), ADDR)
        bridge.handle(push(GW1, rx(GW1, phy, rssi=-102)), ADDR)  # GW1's second concentrator
        settle(bridge)
        [uplink] = uplinks.read()
        assert dead.read() == []
    first_time = int(T0.timestamp() * 1000)
    assert uplink == {
        "source": "udp",
        "dev_eui": UNIT.dev_eui,
        "dev_addr": UNIT.dev_addr,
        "f_cnt": 41,
        "f_port": 2,
        "received_at": first_time - 3,  # the earliest gateway time
        "gateways": [
            {"id": GW1, "rssi": -101.0, "snr": -3.25, "time": first_time},
            {"id": GW2, "rssi": -87.0, "snr": 6.0, "time": first_time - 3},
            {"id": GW3, "rssi": -95.0, "snr": 2.5, "time": None},
        ],
        "frequency": 868_100_000,
        "spreading_factor": 9,
        "payload": b"noise and air",
        "original": phy,
    }
    assert bridge.stats["copies_merged"] == 2 and bridge.stats["copies_repeated"] == 1


def test_a_copy_after_the_window_is_a_second_uplink_for_the_stream_worker_to_merge(
    bridge: UdpBridge,
    kafka: str,
) -> None:
    phy = frame(42)
    with taps(kafka) as (uplinks, _):
        bridge.handle(push(GW1, rx(GW1, phy)), ADDR)
        settle(bridge)
        bridge.handle(push(GW2, rx(GW2, phy)), ADDR)
        settle(bridge)
        records = uplinks.read()
    assert [(r["f_cnt"], [g["id"] for g in r["gateways"]]) for r in records] == [
        (42, [GW1]),
        (42, [GW2]),
    ]


def test_several_rxpk_per_datagram_and_crc_failures_are_counted_and_dropped(
    bridge: UdpBridge,
    kafka: str,
) -> None:
    mine, other = frame(7), frame(9, unit=OTHER)
    with taps(kafka) as (uplinks, dead):
        ack = bridge.handle(
            push(GW3, rx(GW3, mine), rx(GW3, b"\x40garbled", stat=-1), rx(GW3, other)), ADDR
        )
        settle(bridge)
        records = uplinks.read()
        assert dead.read() == []
    assert ack == push_ack(TOKEN, 2)
    assert sorted((r["dev_eui"], r["f_cnt"]) for r in records) == sorted(
        [(UNIT.dev_eui, 7), (OTHER.dev_eui, 9)]
    )
    counts = bridge.gateways[GW3].counts
    assert (counts["rxpk"], counts["crc_failed"]) == (3, 1)
    assert bridge.stats["crc_failed"] == 1


def test_the_32_bit_counter_is_rebuilt_across_rollover_restart_and_a_cold_start(
    kafka: str,
    producer: Producer,
) -> None:
    counters = [70_000, 70_001, 131_071, 131_072, 131_073, 0, 1, 65_535, 65_536]
    bridge = new_bridge(producer, dedup_window=0)
    with taps(kafka) as (uplinks, dead):
        for fcnt in counters:  # the first frame ever seen is already past 65535
            bridge.handle(push(GW1, rx(GW1, frame(fcnt, fcnt.to_bytes(4, "big")))), ADDR)
        bridge.ingress.flush(10)
        records = uplinks.read()
        assert dead.read() == []
    assert [r["f_cnt"] for r in records] == counters  # 0 after 131073: an ABP reboot
    assert [int.from_bytes(r["payload"], "big") for r in records] == counters


def test_bad_mic_unknown_devaddr_and_join_requests_are_dead_letters_once_per_frame(
    bridge: UdpBridge,
    kafka: str,
) -> None:
    good = frame(5, b"payload")
    tampered_mic = good[:-1] + bytes([good[-1] ^ 0x01])
    tampered_payload = good[:10] + bytes([good[10] ^ 0x80]) + good[11:]
    stranger = build_uplink("01020304", 5, 2, b"x", bytes(16), bytes(16))
    joining = join_request("70b3d57ed0000099")
    with taps(kafka) as (uplinks, dead):
        for gateway in (GW1, GW2):
            bridge.handle(
                push(
                    gateway,
                    *(
                        rx(gateway, phy)
                        for phy in (tampered_mic, tampered_payload, stranger, joining)
                    ),
                ),
                ADDR,
            )
        settle(bridge)
        assert uplinks.read() == []
        letters = dead.read()
    assert [(d["reason"], d["original"], d["dev_eui"]) for d in letters] == [
        ("mic", tampered_mic, UNIT.dev_eui),
        ("mic", tampered_payload, UNIT.dev_eui),
        ("unknown_devaddr", stranger, None),
        ("join_request", joining, "70b3d57ed0000099"),
    ]
    assert all(d["source"] == "udp" and d["stage"] == "ingress" for d in letters)
    assert all(f"via {GW1}, {GW2}" in d["detail"] for d in letters)


def test_strangers_are_counted_logged_once_and_not_answered(
    bridge: UdpBridge,
    kafka: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with taps(kafka) as (uplinks, dead), caplog.at_level(logging.WARNING):
        for _ in range(3):
            assert bridge.handle(push(STRANGER, rx(STRANGER, frame(3))), ADDR) is None
        assert bridge.handle(b"\x02\x00", ADDR) is None
        settle(bridge)
        assert uplinks.read() == [] and dead.read() == []
    assert bridge.stats["unknown_gateway"] == 3 and bridge.stats["unreadable_header"] == 1
    assert caplog.text.count(STRANGER) == 1


def test_junk_from_a_registered_gateway_is_dead_lettered_and_never_crashes(
    bridge: UdpBridge,
    kafka: str,
) -> None:
    header = bytes([2]) + TOKEN + bytes([0]) + bytes.fromhex(GW1)
    entries = [
        {"freq": 868.1, "datr": "SF7BW125", "data": "!!!not base64"},
        {"freq": 868.1, "datr": "SF7BW125", "data": "QAAAAAA", "size": 99},
        {"freq": "high", "datr": "SF7BW125", "data": "QAAAAAA"},
    ]
    with taps(kafka) as (uplinks, dead):
        assert bridge.handle(header + b'{"rxpk": [', ADDR) is None  # broken JSON: not acked
        assert bridge.handle(header + b"\xff" * 40, ADDR) is None
        assert bridge.handle(bytes([2]) + TOKEN + bytes([7]) + bytes.fromhex(GW1), ADDR) is None
        partial = (
            header
            + json.dumps(
                {
                    "rxpk": [
                        *entries,
                        {
                            "freq": 868.1,
                            "datr": "SF7BW125",
                            "data": base64.b64encode(frame(11)).decode(),
                        },
                    ]
                }
            ).encode()
        )
        assert bridge.handle(partial, ADDR) == push_ack(TOKEN, 2)  # the good entry is taken
        bridge.handle(push(GW1, rx(GW1, b"\x40\x00\x00")), ADDR)  # a frame too short
        settle(bridge)
        assert [r["f_cnt"] for r in uplinks.read()] == [11]
        reasons = [d["reason"] for d in dead.read()]
    assert reasons == ["json", "json", "identifier", "data", "size", "field", "truncated"]


def test_gateway_status_tx_ack_and_report(bridge: UdpBridge) -> None:
    stat = GatewayStat(
        time=T0,
        lati=52.0475,
        long=4.4811,
        alti=3,
        rxnb=10,
        rxok=9,
        rxfw=9,
        ackr=100.0,
        dwnb=0,
        txnb=0,
        temp=31.5,
    )
    assert bridge.handle(push(GW2, stat=stat), ADDR) == push_ack(TOKEN, 2)
    tx_ack = (
        bytes([2]) + TOKEN + bytes([5]) + bytes.fromhex(GW2) + b'{"txpk_ack":{"error":"TOO_LATE"}}'
    )
    assert bridge.handle(tx_ack, ADDR) is None
    assert bridge.gateways[GW2].stat == stat
    report = json.loads(json.dumps(bridge.report()))
    seen = report["gateways"][GW2]
    assert seen["stat"]["rxok"] == 9 and seen["stat"]["time"] == T0.isoformat()
    assert (seen["push_data"], seen["tx_ack"], seen["tx_ack_error"]) == (1, 1, 1)
    assert GW1 in report["silent_gateways"]


def test_while_kafka_lags_packets_are_dropped_unacknowledged(producer: Producer) -> None:
    bridge = new_bridge(producer, max_backlog=0)
    assert bridge.handle(push(GW1, rx(GW1, frame(1))), ADDR) is None
    assert bridge.handle(push(GW1, stat=GatewayStat(rxnb=1)), ADDR) == push_ack(TOKEN, 2)
    assert bridge.stats["dropped_backlog"] == 1 and bridge.stats["frames"] == 0


def test_gateway_clock_far_off_is_not_the_event_time(
    bridge: UdpBridge,
    kafka: str,
) -> None:
    before = int(time.time() * 1000)
    with taps(kafka) as (uplinks, _):
        bridge.handle(push(GW1, rx(GW1, frame(77), time=datetime(1980, 1, 6, tzinfo=UTC))), ADDR)
        settle(bridge)
        [uplink] = uplinks.read()
    assert before <= uplink["received_at"] <= int(time.time() * 1000)
    assert uplink["gateways"][0]["time"] == int(datetime(1980, 1, 6, tzinfo=UTC).timestamp() * 1000)


def test_over_real_sockets_copies_merge_and_acks_come_back(
    kafka: str,
    producer: Producer,
) -> None:
    bridge = new_bridge(producer, dedup_window=1.0)
    phy = frame(300, b"over the air")

    async def scenario() -> list[bytes]:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: bridge, local_addr=("127.0.0.1", 0)
        )
        port = transport.get_extra_info("sockname")[1]
        gateways = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
        try:
            for sock, gateway in zip(gateways, (GW1, GW2), strict=True):
                sock.setblocking(False)
                sock.sendto(push(gateway, rx(gateway, phy)), ("127.0.0.1", port))
            acks = [await loop.sock_recv(sock, 64) for sock in gateways]
            for _ in range(100):  # the window closes on the bridge's own timer
                if bridge.stats["frames"]:
                    break
                await asyncio.sleep(0.05)
            return acks
        finally:
            for sock in gateways:
                sock.close()
            transport.close()

    with taps(kafka) as (uplinks, _):
        acks = asyncio.run(scenario())
        bridge.ingress.flush(10)
        [uplink] = uplinks.read()
    assert acks == [push_ack(TOKEN, 2)] * 2
    assert uplink["payload"] == b"over the air"
    assert sorted(g["id"] for g in uplink["gateways"]) == sorted([GW1, GW2])


def test_the_gateway_udp_verb(kafka: str) -> None:
    port = free_port()  # a free TCP port number: the UDP one is free too in practice
    phy = frame(900, b"via the command line")
    args = ("gateway", "udp", "--listen", f"127.0.0.1:{port}", "--dedup-window", "30")
    with taps(kafka) as (uplinks, _):
        with running(*args, env={"LIVINGLAB_KAFKA": kafka}, ready="listening") as verb:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(5)
                for gateway in (GW1, GW2):
                    sock.sendto(push(gateway, rx(gateway, phy)), ("127.0.0.1", port))
                    assert sock.recv(64) == push_ack(TOKEN, 2)
        assert verb.process.returncode == 0  # SIGTERM: the open window is flushed, Kafka too
        [uplink] = uplinks.read()
    assert uplink["payload"] == b"via the command line"
    assert [g["id"] for g in uplink["gateways"]] == [GW1, GW2]
    assert '"uplinks": 1' in verb.text
