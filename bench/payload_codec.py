"""Benchmark: native payload batch decode throughput on one core.

Run ``python -m bench.payload_codec``; prints one JSON object on stdout (progress on
stderr). Target: ``decode_batch`` >= 1,000,000 payloads/s at stream batch sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

from livinglab.codec import payload

TARGET = 1_000_000


def realistic_payloads(rng: np.random.Generator, n: int) -> list[bytes]:
    """Distinct v2 payloads with urban noise/air values and some fields not measured."""
    noise = rng.normal(55, 8, size=(n, 6)).clip(25, 130)
    air = rng.lognormal(2.5, 0.8, size=(n, 5))
    climate = np.column_stack(
        [
            rng.normal(12, 6, n),
            rng.uniform(40, 100, n),
            rng.normal(1013, 8, n),
            rng.uniform(3.3, 4.2, n),
        ]
    )
    rows = np.column_stack([noise, air, climate])
    missing = rng.random(rows.shape) < 0.02
    return [
        payload.encode(
            {q: None if gap else float(v) for q, v, gap in zip(payload.QUANTITIES, row, holes)}
        )
        for row, holes in zip(rows.tolist(), missing.tolist())
    ]


def mixed(rng: np.random.Generator, good: list[bytes]) -> list[bytes]:
    """The same stream with 4 % version-1 nodes and 1 % broken payloads."""
    out = list(good)
    old = payload.encode({"laeq": 48.2, "pm25": 9.0, "temperature": 8.5}, version=1)
    for i in rng.choice(len(out), size=len(out) // 20, replace=False).tolist():
        out[i] = old if i % 5 else out[i][:-3]
    return out


def rate(
    decode: Callable[[Sequence[bytes]], object], payloads: list[bytes], batch: int, repeat: int
) -> float:
    """Best payloads/s over ``repeat`` passes, slicing the stream into batches."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for i in range(0, len(payloads), batch):
            decode(payloads[i : i + batch])
        best = min(best, time.perf_counter() - start)
    return len(payloads) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payloads", type=int, default=1_000_000)
    parser.add_argument("--distinct", type=int, default=20_000, help="distinct payloads to cycle")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})  # one core, as one stream worker gets
    rng = np.random.default_rng(2024)
    print(f"encoding {args.distinct} distinct payloads", file=sys.stderr)
    distinct = realistic_payloads(rng, args.distinct)
    good = (distinct * (args.payloads // args.distinct + 1))[: args.payloads]
    streams = {"uniform_v2": good, "mixed_v1_v2_1pct_errors": mixed(rng, good)}

    results = []
    for name, stream in streams.items():
        for batch in (1_000, 10_000, 100_000):
            print(f"decode_batch {name} batch={batch}", file=sys.stderr)
            per_s = rate(payload.decode_batch, stream, batch, args.repeat)
            results.append({"stream": name, "batch": batch, "payloads_per_s": round(per_s)})
    print("scalar decode", file=sys.stderr)
    scalar = rate(lambda ps: [payload.decode(p) for p in ps], good[:100_000], 100_000, args.repeat)

    headline = min(r["payloads_per_s"] for r in results if r["batch"] == 10_000)
    print(
        json.dumps(
            {
                "benchmark": "payload_codec.decode_batch",
                "cpu": cpu,
                "payload_bytes": len(good[0]),
                "payloads": args.payloads,
                "results": results,
                "scalar_decode_payloads_per_s": round(scalar),
                "payloads_per_s": headline,
                "target_payloads_per_s": TARGET,
                "meets_target": headline >= TARGET,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
