"""Throughput of the LoRaWAN layer: parse + verify MIC + decrypt uplinks, one core.

Run `python -m bench.lorawan_frames`; prints one JSON object. Frames come from many devices
with their own session keys, as a network server sees them; "warm" reuses the per-key cipher
cache (the steady state), "cold" clears it before every frame (first frame of each session).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from collections.abc import Callable
from importlib.metadata import version

from connectors import lorawan
from connectors.lorawan import DataFrame, build_uplink, open_uplink, parse_frame

Session = tuple[bytes, bytes, int]  # NwkSKey, AppSKey, last FCnt


def make_frames(
    frames: int, devices: int, payload_bytes: int, seed: int
) -> tuple[list[bytes], dict[str, Session]]:
    """Uplinks in arrival order, plus each device's session as the server knows it."""
    rng = random.Random(seed)
    keys = {
        rng.randbytes(4).hex(): (rng.randbytes(16), rng.randbytes(16), rng.randrange(2**31))
        for _ in range(devices)
    }
    addrs = list(keys)
    phys = []
    for index in range(frames):
        addr = addrs[index % devices]
        nwk, app, start = keys[addr]
        fcnt = start + 1 + index // devices
        phys.append(build_uplink(addr, fcnt, 2, rng.randbytes(payload_bytes), nwk, app))
    return phys, keys


def run(phys: list[bytes], sessions: dict[str, Session], before: Callable[[], None]) -> float:
    """Seconds to open every frame; `before` runs ahead of each one (cache policy)."""
    start = time.perf_counter()
    for phy in phys:
        before()
        frame = parse_frame(phy)
        assert isinstance(frame, DataFrame)
        nwk, app, last = sessions[frame.dev_addr]
        open_uplink(frame, nwk, app, last)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=50_000)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--payload-bytes", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    phys, sessions = make_frames(args.frames, args.devices, args.payload_bytes, seed=1)
    warm = min(run(phys, sessions, lambda: None) for _ in range(args.repeat))
    cold_slice = phys[: max(1, args.frames // 10)]
    clear = lorawan._aes.cache_clear  # drop every cached cipher: each frame pays key setup
    cold = min(run(cold_slice, sessions, clear) for _ in range(args.repeat))
    print(
        json.dumps(
            {
                "benchmark": "lorawan_frames",
                "operation": "parse_frame + open_uplink (MIC verify + FRMPayload decrypt)",
                "frames": args.frames,
                "devices": args.devices,
                "payload_bytes": args.payload_bytes,
                "frames_per_s": round(args.frames / warm),
                "us_per_frame": round(warm / args.frames * 1e6, 2),
                "cold_key_frames_per_s": round(len(cold_slice) / cold),
                "target_frames_per_s": 20_000,
                "python": platform.python_version(),
                "cryptography": version("cryptography"),
            }
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
