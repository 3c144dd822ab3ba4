"""The two jobs that push data through the whole platform: `demo` (simulated fleet)
and `replay` (uplink messages from a file). Both feed the real ingress, wait until
everything is in ClickHouse and summarise what got there.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from connectors.ingress import Ingress
from connectors.merge import CopyMerger
from livinglab.config import Settings
from livinglab.kafka import ALERTING_GROUP, WORKER_GROUP
from livinglab.registry import Registry
from livinglab.simulator.fleet import fleet_messages
from livinglab.simulator.scenarios import Injector, ground_truth, plan
from livinglab.stack import Stack

HOUR_MS = 3_600_000
GROUND_TRUTH = "ground_truth.json"


@dataclass
class Progress:
    """Progress lines on stderr, at most every `every` seconds."""

    out: TextIO
    every: float = 2.0
    last: float = 0.0

    def __call__(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= self.every:
            self.last = now
            print(text, file=self.out, flush=True)


def summary(stack: Stack) -> dict[str, Any]:
    """Counts per table and per lab, after deduplication (FINAL)."""

    def rows(sql: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in stack.query(sql).splitlines() if line]

    totals = rows(
        "SELECT (SELECT count() FROM uplinks FINAL) AS uplinks,"
        " (SELECT count() FROM readings FINAL) AS readings,"
        " (SELECT count() FROM aggregates FINAL) AS aggregates,"
        " (SELECT count() FROM alerts FINAL) AS alerts,"
        " (SELECT count() FROM deadletter FINAL) AS deadletter"
    )[0]
    per_lab = rows(
        "SELECT lab, uniqExact(sensor) AS units, count() AS uplinks,"
        " round(avg(length(gateway_ids)), 2) AS gateways_per_uplink"
        " FROM uplinks FINAL GROUP BY lab ORDER BY lab"
    )
    agg = {
        r["lab"]: r
        for r in rows(
            "SELECT lab, count() AS aggregates, uniqExact(sensor) AS units_with_aggregates,"
            " round(avgIf(mean, quantity = 'laeq'), 1) AS laeq_mean_db,"
            " round(avgIf(mean, quantity = 'pm25'), 1) AS pm25_mean"
            " FROM aggregates FINAL WHERE window = '1h' GROUP BY lab"
        )
    }
    dead = rows("SELECT reason, count() AS n FROM deadletter FINAL GROUP BY reason ORDER BY reason")
    return {
        "uplinks_stored": int(totals["uplinks"]),
        "readings_stored": int(totals["readings"]),
        "aggregates_stored": int(totals["aggregates"]),
        "alerts_stored": int(totals["alerts"]),
        "deadletters_stored": int(totals["deadletter"]),
        "deadletter_reasons": {r["reason"]: int(r["n"]) for r in dead},
        "labs": [
            {**lab, **{k: v for k, v in agg.get(lab["lab"], {}).items() if k != "lab"}}
            for lab in per_lab
        ],
    }


def _feed(
    stack: Stack,
    ingress: Ingress,
    messages: Iterable[tuple[bytes, str]],
    progress: Progress,
    describe: Any,
) -> int:
    n = 0
    merger = CopyMerger(ingress)  # copies of a frame arriving together become one uplink
    for n, (body, origin) in enumerate(messages, 1):
        merger.submit(body, origin)
        if n % 2000 == 0:
            ingress.producer.poll(0)
            progress(describe(n))
            stack.check_alive()
    merger.flush()
    stack.end_of_input(ingress.producer)
    return n


def _drain(stack: Stack, progress: Progress) -> None:
    def report(group: str, lag: int) -> None:
        what = {WORKER_GROUP: "stream workers", ALERTING_GROUP: "alerting worker"}.get(
            group, "ClickHouse sink"
        )
        progress(
            f"waiting for the {what} to start"
            if lag < 0
            else f"waiting for the {what}: {lag} records to go"
        )

    stack.wait_drained(on_wait=report)


def run_demo(
    settings: Settings,
    registry: Registry,
    hours: float,
    speed: float,
    seed: int,
    start: datetime | None,
    workers: int,
    out: TextIO = sys.stderr,
    scenarios: Sequence[str] = (),
) -> dict[str, Any]:
    """``scenarios``: kinds of labelled episodes to inject (livinglab/simulator/scenarios.py);
    their ground truth goes to data_dir/ground_truth.json."""
    if start is None:
        now = int(time.time() * 1000)
        start_ms = now - now % HOUR_MS - int(hours * HOUR_MS)
    else:
        start_ms = int(start.timestamp() * 1000)
    end_ms = start_ms + int(hours * HOUR_MS)
    effects, truth = None, None
    if scenarios:
        try:
            episodes = plan(registry, start_ms, end_ms, scenarios, seed)
        except ValueError as exc:
            raise SystemExit(f"error: --scenarios: {exc}") from None
        effects = Injector(episodes, seed)
        truth = settings.data_dir / GROUND_TRUTH
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        labels = ground_truth(registry, episodes, start_ms, end_ms, seed, scenarios)
        truth.write_text(json.dumps(labels, indent=1))
    progress = Progress(out)
    wall0 = time.monotonic()
    frames: set[tuple[str, int]] = set()
    sim_at = [start_ms]

    def paced() -> Iterator[tuple[bytes, str]]:
        for msg in fleet_messages(registry, start_ms, end_ms, seed, effects):
            if speed > 0:  # simulated seconds per wall second
                ahead = (msg.deliver_at - start_ms) / 1000 / speed - (time.monotonic() - wall0)
                if ahead > 0:
                    time.sleep(ahead)
            frames.add(msg.frame)
            sim_at[0] = msg.deliver_at
            yield msg.body, ""

    def describe(n: int) -> str:
        done = min(1.0, (sim_at[0] - start_ms) / max(1, end_ms - start_ms))
        at = datetime.fromtimestamp(sim_at[0] / 1000, UTC).strftime("%Y-%m-%d %H:%M")
        return f"simulated {at} UTC ({done:4.0%}): {len(frames)} frames, {n} gateway copies sent"

    print(f"starting the platform in {settings.data_dir} ...", file=out, flush=True)
    with Stack(settings, registry, workers) as stack:
        ingress = Ingress(stack.producer(), source="sim")
        print(
            f"broker {stack.kafka}; simulating {hours:g} h for {len(registry.units)} units "
            f"in {len(registry.labs)} labs",
            file=out,
            flush=True,
        )
        copies = _feed(stack, ingress, paced(), progress, describe)
        progress(describe(copies), force=True)
        _drain(stack, progress)
        result = summary(stack)
    result = {
        "uplinks_sent": len(frames),
        "gateway_copies_sent": copies,
        **result,
        "start": datetime.fromtimestamp(start_ms / 1000, UTC).isoformat(),
        "hours": hours,
        "seed": seed,
        **({"scenarios": list(scenarios), "ground_truth": str(truth)} if truth else {}),
        "wall_seconds": round(time.monotonic() - wall0, 2),
        "data_dir": str(settings.data_dir),
    }
    return result


def read_lines(path: Path) -> Iterator[tuple[bytes, str]]:
    """Non-empty lines of a JSON-lines file ('-' = stdin) with their position."""
    stream = sys.stdin.buffer if str(path) == "-" else path.open("rb")
    try:
        for lineno, line in enumerate(stream, 1):
            if line.strip():
                yield line.rstrip(b"\r\n"), f"{path}:{lineno}"
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def run_replay(
    settings: Settings, registry: Registry, path: Path, workers: int, out: TextIO = sys.stderr
) -> dict[str, Any]:
    progress = Progress(out)
    wall0 = time.monotonic()
    print(f"starting the platform in {settings.data_dir} ...", file=out, flush=True)
    with Stack(settings, registry, workers) as stack:
        ingress = Ingress(stack.producer(), source="replay")
        sent = _feed(stack, ingress, read_lines(path), progress, lambda n: f"{n} messages sent")
        progress(f"{sent} messages sent", force=True)
        _drain(stack, progress)
        result = summary(stack)
    return {
        "messages_read": sent,
        "messages_rejected_at_ingress": sum(
            v for k, v in ingress.stats.items() if k.startswith("rejected.")
        ),
        **result,
        "wall_seconds": round(time.monotonic() - wall0, 2),
        "data_dir": str(settings.data_dir),
    }


def print_summary(result: dict[str, Any], out: TextIO = sys.stdout) -> None:
    """The human form of a run's result."""
    lines = []
    for key, value in result.items():
        if key == "labs":
            continue
        lines.append(f"{key:>28}: {value}")
    lines.append("")
    header = (
        f"{'lab':<24}{'units':>6}{'uplinks':>9}{'gw/uplink':>10}{'aggregates':>11}"
        f"{'LAeq dB(A)':>11}{'PM2.5 µg/m³':>12}"
    )
    lines.append(header)
    lines.append("-" * len(header))
    for lab in result.get("labs", []):
        lines.append(
            f"{lab['lab']:<24}{lab['units']:>6}{lab['uplinks']:>9}{lab['gateways_per_uplink']:>10}"
            f"{lab.get('aggregates', 0):>11}{lab.get('laeq_mean_db', '-'):>11}"
            f"{lab.get('pm25_mean', '-'):>12}"
        )
    print("\n".join(lines), file=out)
