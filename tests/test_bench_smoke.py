"""The performance harness (`python -m bench`) runs end to end in its tiny configuration
and prints the JSON shape docs/performance.md describes. Figures are not checked here:
benchmarks measure, tests do not time (DESIGN.md section 7)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("quixstreams")

ROOT = Path(__file__).resolve().parent.parent
CONTENDERS = ("ours-1w", "quix", "faust", "bare", "ours-2w")


@pytest.fixture(scope="module")
def report() -> dict:
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def test_every_contender_gets_through_both_runs(report: dict) -> None:
    assert set(report["contenders"]) == set(CONTENDERS)
    for name, trial in report["contenders"].items():
        assert trial["throughput"]["finished"], name
        assert trial["throughput"]["uplinks_per_s"] > 0, name
        assert trial["peak_rss_mib"]["total"] > 0, name
        if name == "ours-2w":  # the scale-out run measures throughput only
            assert "latency" not in trial
            continue
        assert trial["latency"]["latency_ms"]["n"] > 0, name
        assert trial["latency"]["latency_ms"]["p99"] >= trial["latency"]["latency_ms"]["p50"]


def test_readings_arrive_for_every_frame(report: dict) -> None:
    frames = report["input"]["preloaded_frames"]
    for name in ("quix", "faust"):  # one reading per frame: gateway copies are dropped
        assert report["contenders"][name]["throughput"]["readings"] == frames
    for name in ("ours-1w", "ours-2w"):  # a late copy re-emits its reading, merged
        assert report["contenders"][name]["throughput"]["readings"] >= frames
    latency = report["contenders"]["ours-1w"]["latency"]
    assert latency["missing"] == 0
    assert latency["to_readings_topic_ms"]["p50"] <= latency["latency_ms"]["p50"]
    assert report["contenders"]["ours-2w"]["peak_rss_mib"].keys() >= {"worker-0", "worker-1"}
    cpu = report["contenders"]["ours-1w"]["cpu_seconds"]
    assert cpu["worker-0"] > 0 and cpu["sink"] > 0 and cpu["broker"] > 0, cpu  # from /proc


def test_processor_memory_and_targets(report: dict) -> None:
    assert report["ours_processor_only"]["uplinks_per_s"] > 0
    scaling = report["ours_processor_scaling"]
    one, two = scaling["one_process"], scaling["two_processes"]
    # both runs take the whole input, the two processes a share each
    assert one["uplinks"] == two["uplinks"] == report["input"]["preloaded_uplinks"]
    assert len(one["per_process_uplinks_per_s"]) == 1
    assert len(two["per_process_uplinks_per_s"]) == 2
    assert scaling["two_vs_one_x"] > 0
    sink = report["ours_sink_only"]  # what the processor made of the same input, all stored
    assert sink["uplinks"] == report["input"]["preloaded_uplinks"]
    # a reading per accepted copy; too few minutes in the smoke input to close a window
    assert 0 < sink["readings"] <= sink["uplinks"] <= sink["messages"]
    fresh, day = report["memory"]["after_two_uplinks"], report["memory"]["after_a_day"]
    for memory in (fresh, day):
        assert memory["rss_with_state_mib"] >= memory["rss_baseline_mib"]
    assert fresh["state_entries"] >= fresh["units"] > 0
    assert day["uplinks"] > day["units"] > 0
    # a day of closed hours per unit: far more entries than units, kept out of memory
    assert day["state_entries"] >= 20 * day["units"]
    assert day["state_entries_in_memory"] == day["units"]
    assert set(report["targets"]) == {
        "ours_vs_quix_throughput_x",
        "ours_uplinks_per_s_per_worker",
        "ours_p99_ms_at_offered_load",
        "two_workers_vs_one_x",
        "memory_100k_units_rss_mib",
    }
    for verdict in report["targets"].values():
        assert verdict["measured"] is not None
        assert verdict["met"] in (True, False)
    assert "ceiling_sink_alone" in report["targets"]["ours_uplinks_per_s_per_worker"]
    assert report["targets"]["two_workers_vs_one_x"]["processing_alone"] > 0


def test_the_merge_settings_bench_compares_both_variants() -> None:
    """`python -m bench.store_merges` in a tiny configuration: both variants' figures."""
    run = subprocess.run(
        [sys.executable, "-m", "bench.store_merges", "--inserts", "3",
         "--readings-per-insert", "20", "--interval", "0.01", "--settle", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout)
    assert set(report["variants"]) == {"clickhouse_defaults", "ours"}
    for variant in report["variants"].values():
        assert variant["cpu_us_per_reading"] > 0
        assert set(variant["tables"]) == {"readings", "uplinks", "readings_daily"}
        assert all(table["active_parts"] >= 1 for table in variant["tables"].values())
        assert "merged_rows_per_inserted_row" in variant
    assert report["cpu_ours_vs_defaults"] > 0


def test_the_sink_alone_stores_what_the_worker_makes_of_the_bench_input() -> None:
    """`python -m bench.sink_throughput --fleet` in a tiny configuration: the processor
    turns the bench's uplinks into readings and aggregates, and the sink stores them all
    (it waits for every message, or exits non-zero)."""
    run = subprocess.run(
        [sys.executable, "-m", "bench.sink_throughput", "--fleet", "--uplinks", "60000"],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout)
    assert report["uplinks"] == 60_000  # more than the sink's first batch takes: timed
    # every accepted copy gives a reading (late ones merged), aggregates come on top
    assert 0 < report["readings"] <= report["uplinks"] < report["messages"]
    assert report["whole_sink_uplinks_per_s"] > 0
    assert set(report["cpu_us_per_uplink"]) == {"sink", "broker", "broker_taking_in"}
    assert report["cpu_seconds"]["sink"] > 0
