"""Benchmark: alerts against labelled scenarios (issue 6): precision, recall, latency per kind.

Run ``python -m bench.alerts_eval``: simulates the standard scenario set (fireworks,
stuck sensor, dead unit, night construction, fog, PM drift) for all labs over 7 days
through the whole platform (``livinglab demo --scenarios standard``: broker, worker,
ClickHouse), scores the stored alerts against the ground truth and prints one JSON
object (progress on stderr). ``--in-process`` runs the same steps without Kafka and
ClickHouse (streams/alerting_local.py), several times faster, to tune detectors.

Scoring. An alert is its episode's `open` event. It detects an injected episode when
lab and sensor agree, its kind is one the episode kind is detected by, and it opened
between ``EARLY`` before the episode's first affected uplink and its end. Alerts an
episode causes besides (side effects, e.g. PM spikes at a fog front, a daily PM limit
exceeded on a fireworks day) are neither true nor false if they open by ``SIDE_GRACE``
after its end; an alert that matches no episode at all is false. Latency is the
alert's event time minus the first affected uplink's. Targets: recall 1.0, at most one
false alert per lab per simulated day, latency within 2 uplink intervals (offline 3).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

from livinglab.config import Settings
from livinglab.registry import load_registry
from livinglab.run import run_demo
from livinglab.simulator.fleet import fleet_messages
from livinglab.simulator.scenarios import KINDS, Injector, ground_truth, plan
from livinglab.store import open_store

START = datetime(2026, 11, 16, tzinfo=UTC)  # a Monday; nights get long
EARLY_S = 600  # a fog front rises before the fog
SIDE_GRACE_S = 25 * 3600  # the day's window closes at the next local midnight
LATENCY_INTERVALS = {"dead": 3.0}  # offline is judged on silence of 3 intervals
HOURLY = {"drift"}  # judged on hourly means: latency in hours, not uplink intervals


def simulate_in_process(days: float, seed: int) -> tuple[list[dict], dict]:
    """The scenario run through the stream steps in this process: (alerts, ground truth)."""
    from streams.alerting_local import LocalStreams

    registry = load_registry()
    start = int(START.timestamp() * 1000)
    end = start + int(days * 86_400_000)
    episodes = plan(registry, start, end, KINDS, seed)
    streams = LocalStreams(registry)
    streams.feed(
        m.body for m in fleet_messages(registry, start, end, seed, Injector(episodes, seed))
    )
    streams.end()
    return streams.alerts, ground_truth(registry, episodes, start, end, seed, KINDS)


def simulate_platform(days: float, seed: int, data_dir: Path) -> tuple[list[dict], dict]:
    """The scenario run through the embedded platform, alerts read back from ClickHouse."""
    settings = Settings.from_env(data_dir=data_dir, kafka=None, clickhouse=None)
    run_demo(settings, load_registry(), days * 24, 0, seed, START, 1, scenarios=KINDS)
    store = open_store(None, data_dir)
    try:
        text = store.query(
            "SELECT id, lab, sensor, kind, quantity, state, seq, "
            "formatDateTime(ts, '%Y-%m-%dT%H:%i:%S.%fZ') AS ts FROM alerts FINAL"
        )
    finally:
        store.close()
    alerts = [json.loads(line) for line in text.splitlines() if line]
    return alerts, json.loads((data_dir / "ground_truth.json").read_text())


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def score(alerts: list[dict], truth: dict, days: float, labs: list[str]) -> dict[str, Any]:
    """Recall, precision, latency per scenario kind and false alerts per lab-day."""
    opened = [a for a in alerts if a["state"] == "open"]
    episodes = truth["episodes"]
    for e in episodes:
        e["_start"], e["_end"] = _ms(e["start"]), _ms(e["end"])

    def matches(alert: dict, e: dict, kinds: list[str], grace_s: float = 0) -> bool:
        t = _ms(alert["ts"])
        return (
            alert["lab"] == e["lab"]
            and alert["sensor"] == e["sensor"]
            and alert["kind"] in kinds
            and e["_start"] - EARLY_S * 1000 <= t <= e["_end"] + grace_s * 1000
        )

    per_kind: dict[str, dict[str, Any]] = {}
    detecting = {kind: set() for kind in KINDS}
    for e in episodes:
        found = [a for a in opened if matches(a, e, e["detected_by"])]
        stats = per_kind.setdefault(e["kind"], {"episodes": 0, "detected": 0, "latency_s": []})
        stats["episodes"] += 1
        if found:
            stats["detected"] += 1
            first = min(_ms(a["ts"]) for a in found)
            stats["latency_s"].append((first - e["_start"]) / 1000)
            stats.setdefault("interval_s", e["interval_s"])
        detecting[e["kind"]].update(a["id"] for a in found)
    explained = {
        a["id"]
        for a in opened
        for e in episodes
        if matches(a, e, e["detected_by"]) or matches(a, e, e["side_effects"], SIDE_GRACE_S)
    }
    false = [a for a in opened if a["id"] not in explained]
    for kind, stats in per_kind.items():
        kinds = next(e["detected_by"] for e in episodes if e["kind"] == kind)
        true = len(detecting[kind])
        unexplained = sum(a["kind"] in kinds for a in false)
        lat = stats.pop("latency_s")
        interval = stats.pop("interval_s", 60)
        unit = 3600 if kind in HOURLY else interval
        stats.update(
            recall=round(stats["detected"] / stats["episodes"], 3),
            alerts=true + unexplained,
            precision=round(true / (true + unexplained), 3) if true + unexplained else None,
            latency_s={"median": median(lat), "max": max(lat)} if lat else None,
            **{f"latency_max_{'hours' if kind in HOURLY else 'intervals'}": round(
                max(lat) / unit, 2) if lat else None},
        )  # fmt: skip
    per_lab = {lab: 0 for lab in labs}
    for a in false:
        per_lab[a["lab"]] += 1
    per_lab_day = {lab: round(n / days, 2) for lab, n in per_lab.items()}
    by_kind: dict[str, int] = defaultdict(int)
    for a in false:
        by_kind[a["kind"]] += 1
    return {
        "episodes": len(episodes),
        "alerts_opened": len(opened),
        "per_kind": per_kind,
        "false_alerts": {
            "total": len(false),
            "by_kind": dict(sorted(by_kind.items())),
            "per_lab_day": per_lab_day,
            "max_per_lab_day": max(per_lab_day.values(), default=0),
        },
        "targets": {
            "recall_1": all(s["recall"] == 1.0 for s in per_kind.values()),
            "false_per_lab_day_at_most_1": max(per_lab_day.values(), default=0) <= 1,
            "latency": {
                kind: None
                if kind in HOURLY
                else s.get("latency_max_intervals") is not None
                and s["latency_max_intervals"] <= LATENCY_INTERVALS.get(kind, 2.0)
                for kind, s in per_kind.items()
            },
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=float, default=7.0, help="simulated days (default 7)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--in-process", action="store_true", help="without Kafka and ClickHouse (faster)"
    )
    parser.add_argument("--data-dir", type=Path, help="keep the platform's store here")
    args = parser.parse_args(argv)
    wall0 = time.monotonic()
    print(f"simulating {args.days:g} days of every lab with the standard scenarios",
          file=sys.stderr)  # fmt: skip
    if args.in_process:
        alerts, truth = simulate_in_process(args.days, args.seed)
    elif args.data_dir:
        alerts, truth = simulate_platform(args.days, args.seed, args.data_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="alerts-eval-") as tmp:
            alerts, truth = simulate_platform(args.days, args.seed, Path(tmp))
    labs = [lab.id for lab in load_registry().labs]
    result = {
        "benchmark": "alerts_eval",
        "mode": "in-process" if args.in_process else "platform",
        "days": args.days,
        "labs": len(labs),
        "seed": args.seed,
        **score(alerts, truth, args.days, labs),
        "wall_seconds": round(time.monotonic() - wall0, 1),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
