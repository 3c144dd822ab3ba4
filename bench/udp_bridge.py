"""Throughput of the Semtech UDP bridge: datagrams in, Uplink records acknowledged by Kafka.

Run `python -m bench.udp_bridge`; prints one JSON object. Each frame of many ABP devices reaches
the bridge as PUSH_DATA datagrams from one to three gateways (as a packet forwarder sends them),
and the bridge does everything it does in service, sockets aside: parse the datagram and its
JSON, keep gateway state, merge the copies in the dedup window, rebuild the 32-bit counter,
verify the MIC, decrypt, encode the Avro record and produce it to Kafka (the embedded Tansu
broker unless --kafka names one). `frames_per_s` counts the bridge thread's CPU time (one
core); `wall_frames_per_s` runs until Kafka has acknowledged every record.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from connectors.handoff import connector_producer
from connectors.ingress import Ingress
from connectors.lorawan import build_uplink
from connectors.semtech_udp import RxPacket, build_push_data
from connectors.udp_bridge import UdpBridge
from livinglab.codec.payload import encode
from livinglab.kafka import DEADLETTER, UPLINKS, create_topics
from livinglab.processes import start_tansu
from livinglab.registry import Registry, parse_registry

GATEWAYS = ["a0a0a0a0a0a0a0a1", "a0a0a0a0a0a0a0a2", "a0a0a0a0a0a0a0a3"]
READING = {
    "laeq": 52.3,
    "lamax": 71.8,
    "l90": 41.5,
    "pm25": 7.9,
    "pm10": 15.3,
    "no2": 23.4,
    "temperature": 12.3,
    "humidity": 81.2,
    "pressure": 1013.2,
    "battery": 3.9,
}


def registry(devices: int, rng: random.Random) -> Registry:
    units = [
        {
            "sensor": f"u{i:05d}",
            "dev_eui": f"70b3d57e{i:08x}",
            "dev_addr": f"26{i:06x}",
            "nwk_s_key": rng.randbytes(16).hex(),
            "app_s_key": rng.randbytes(16).hex(),
            "latitude": 52.0,
            "longitude": 4.4,
        }
        for i in range(devices)
    ]
    gateways = [{"id": gw, "latitude": 52.0, "longitude": 4.4} for gw in GATEWAYS]
    raw = {"labs": [{"id": "bench", "gateways": gateways, "units": units}]}
    return parse_registry(raw, Path("bench"))


def datagrams(
    reg: Registry, frames: int, rounds: int, max_copies: int, rng: random.Random
) -> list[list[bytes]]:
    """Rounds of PUSH_DATA datagrams in arrival order: each frame via 1..max_copies gateways.

    One stream cut into rounds, so each device's counter keeps going up from round to round.
    """
    units = reg.units
    counters = {u.dev_eui: rng.randrange(2**20) for u in units}  # devices years into service
    payload, now = encode(READING), datetime.now(UTC)
    out: list[list[bytes]] = [[] for _ in range(rounds)]
    for index in range(frames * rounds):
        unit = units[index % len(units)]
        counters[unit.dev_eui] += 1
        phy = build_uplink(
            unit.dev_addr, counters[unit.dev_eui], 1, payload, unit.nwk_s_key, unit.app_s_key
        )
        for gateway in rng.sample(GATEWAYS, rng.randint(1, max_copies)):
            packet = RxPacket(
                gateway=gateway,
                data=phy,
                freq=868.1,
                datr="SF9BW125",
                modu="LORA",
                codr="4/5",
                stat=1,
                time=now,
                tmst=index,
                chan=2,
                rfch=0,
                rssi=rng.randint(-120, -60),
                lsnr=rng.uniform(-10, 10),
            )
            out[index // frames].append(build_push_data(rng.randbytes(2), gateway, [packet]))
    return out


def run(bridge: UdpBridge, batch: list[bytes]) -> tuple[float, float]:
    """(bridge thread CPU seconds, wall seconds until Kafka acknowledged) for one batch."""
    addr = ("127.0.0.1", 1700)
    wall, cpu = time.perf_counter(), time.thread_time()
    for datagram in batch:
        bridge.handle(datagram, addr)
    bridge.flush()
    cpu = time.thread_time() - cpu
    bridge.ingress.flush(60)
    return cpu, time.perf_counter() - wall


def scenario(bootstrap: str, args: argparse.Namespace, max_copies: int) -> dict[str, float]:
    """Best of the rounds, for frames heard by 1..max_copies gateways."""
    rng = random.Random(max_copies)
    reg = registry(args.devices, rng)
    rounds = datagrams(reg, args.frames, args.rounds, max_copies, rng)
    ingress = Ingress(connector_producer(bootstrap), source="udp")
    bridge = UdpBridge(reg, ingress, max_backlog=10**7)
    timings = [run(bridge, batch) for batch in rounds]
    assert ingress.stats == {"uplinks": args.frames * args.rounds}, ingress.stats
    cpu, wall = min(t[0] for t in timings), min(t[1] for t in timings)
    copies = sum(map(len, rounds)) / (args.frames * args.rounds)
    return {
        "gateway_copies_per_frame": round(copies, 2),
        "frames_per_s": round(args.frames / cpu),
        "us_per_frame": round(cpu / args.frames * 1e6, 2),
        "datagrams_per_s": round(args.frames * copies / cpu),
        "wall_frames_per_s": round(args.frames / wall),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20_000, help="frames per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the best is reported")
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--kafka", help="bootstrap servers (default: start the embedded Tansu)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        tansu = None
        bootstrap = args.kafka
        if bootstrap is None:
            tansu, bootstrap = start_tansu(Path(workdir) / "tansu.log")
            create_topics(bootstrap, [UPLINKS, DEADLETTER], 4)
        try:
            copies = scenario(bootstrap, args, max_copies=3)
            single = scenario(bootstrap, args, max_copies=1)
        finally:
            if tansu is not None:
                tansu.kill()
                tansu.stop()
    result = {
        "benchmark": "udp_bridge",
        "operation": "PUSH_DATA parse, dedup window, FCnt, MIC, decrypt, Avro, produce",
        "frames": args.frames,
        "rounds": args.rounds,
        "devices": args.devices,
        **copies,
        "one_gateway_per_frame": single,
        "kafka": args.kafka or "embedded Tansu",
        "target_frames_per_s": 20_000,
        "python": platform.python_version(),
    }
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
