"""Event-time windows through the partition processor, without Kafka.

Simulated units send real LNS messages over the DST weekend of October 2026; the
windows the processor emits are checked against references computed here with plain
NumPy from the readings it emitted and the DESIGN.md section 5 formulas. Replaying the
same uplinks shuffled, with duplicates, late copies and a restart must give the same
final windows (the highest version of each).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import yaml

from bench.workload import START_MS as BENCH_START
from bench.workload import registry_document, uplink_records
from connectors.lns import normalise
from livinglab.codec.payload import QUANTITIES, encode
from livinglab.registry import DEFAULT_REGISTRY, load_registry, parse_registry
from livinglab.simulator.fleet import unit_messages
from schemas import codec
from streams import derived, eventtime
from streams.processor import CONTROL_KEY, END_OF_INPUT, PartitionProcessor
from streams.uplink_worker import state_bytes
from streams.windows import Acc

REGISTRY = load_registry()
LAB = REGISTRY.lab("zoetermeer")
UNITS = LAB.units[1:3]  # zoe-02 is calibrated, zoe-03 is not
AMS = ZoneInfo("Europe/Amsterdam")
H = 3_600_000
START = int(datetime(2026, 10, 24, tzinfo=UTC).timestamp() * 1000)
END = int(datetime(2026, 10, 26, 8, tzinfo=UTC).timestamp() * 1000)
UPLINK = codec("uplink")
DECODE = {t: codec(n) for t, n in (("readings", "reading"), ("aggregates", "aggregate"))}
DECODE["deadletter"] = codec("deadletter")
LKI_EDGES = {  # DESIGN.md section 5
    "pm25": (10, 15, 20, 30, 40, 50, 70, 90, 100, 140),
    "pm10": (10, 20, 30, 45, 60, 75, 100, 125, 150, 200),
    "no2": (10, 20, 30, 45, 60, 75, 100, 125, 150, 200),
    "o3": (15, 30, 40, 60, 80, 100, 140, 180, 200, 240),
}


def messages(units=UNITS, start=START, end=END, seed=11, lab=LAB) -> list[tuple[int, bytes]]:
    """(event time, Uplink record) of every gateway copy, in the simulator's delivery order."""
    out = []
    for i, unit in enumerate(units):
        for m in unit_messages(lab, unit, i, start, end, seed):
            up = normalise(m.body)
            out.append((up["received_at"], UPLINK.encode({**up, "source": "sim"})))
    return out


def in_event_order(msgs):
    return sorted(msgs, key=lambda m: m[0])


def shuffled(msgs, spread_ms: int, seed: int, duplicates: float = 0.05):
    """Each copy delayed by up to spread_ms, some sent twice (the second within 2 spreads)."""
    rng = np.random.default_rng(seed)
    keyed = [(ts + rng.integers(0, spread_ms), ts, v) for ts, v in msgs]
    keyed += [
        (ts + rng.integers(0, 2 * spread_ms), ts, v) for ts, v in msgs if rng.random() < duplicates
    ]
    return [(ts, v) for _, ts, v in sorted(keyed, key=lambda k: k[0])]


class Run:
    """A partition processor fed in batches, with its state kept like the Faust tables."""

    def __init__(self, registry=REGISTRY, lateness_ms=15 * 60_000, horizon_ms=7 * 24 * H):
        self.registry, self.lateness_ms, self.horizon_ms = registry, lateness_ms, horizon_ms
        self.devices: dict = {}
        self.meta: dict = {}
        self.offset = 0
        self.out: dict[str, list[dict]] = defaultdict(list)

    def feed(self, values: list[bytes], batch: int = 700, end: bool = True) -> Run:
        records = [(b"k", v) for v in values] + ([(CONTROL_KEY, END_OF_INPUT)] if end else [])
        for i in range(0, len(records), batch):
            self.batch(records[i : i + batch])
        return self

    def batch(self, records, first_offset: int | None = None) -> None:
        proc = PartitionProcessor(
            self.registry, 0, self.devices, self.meta, self.lateness_ms, self.horizon_ms
        )
        offset = self.offset if first_offset is None else first_offset
        for key, value in records:
            proc.handle(offset, key, value, UPLINK.headers)
            offset += 1
        self.offset = max(self.offset, offset)
        proc.end_batch()
        outputs, _ = proc.take()
        for topic, _, value, _ in outputs:
            self.out[topic].append(DECODE[topic].decode(value))

    def final(self) -> dict[tuple, dict]:
        """The highest version of every window, by (sensor, window, start); of equal
        versions the last emitted, as ReplacingMergeTree(version) keeps it."""
        best: dict[tuple, dict] = {}
        for a in self.out["aggregates"]:
            key = (a["sensor"], a["window"], a["window_start"])
            if key not in best or a["version"] >= best[key]["version"]:
                best[key] = a
        return best

    def readings(self) -> dict[str, dict[str, np.ndarray]]:
        """sensor -> {"ts": ..., quantity: ...} of the first accepted copy of every frame."""
        rows = defaultdict(list)
        for r in self.out["readings"]:
            if r["uplink_version"] == 1:
                rows[r["sensor"]].append(r)
        return {
            sensor: {
                "ts": np.array([r["ts"] for r in rs]),
                **{q: np.array([r["values"][q] for r in rs]) for q in rs[0]["values"]},
            }
            for sensor, rs in rows.items()
        }


def stats_of(aggregate: dict) -> dict[str, dict]:
    return {s["quantity"]: s for s in aggregate["stats"]}


def indices_of(aggregate: dict) -> dict[str, dict]:
    return {i["name"]: i for i in aggregate["indices"]}


def assert_same_windows(a: dict[tuple, dict], b: dict[tuple, dict]) -> None:
    """The same windows with the same statistics (floats up to summation order)."""
    assert a.keys() == b.keys()
    for key in a:
        x, y = a[key], b[key]
        assert x["window_end"] == y["window_end"]
        for part in ("stats", "indices"):
            assert len(x[part]) == len(y[part]), key
            for s, t in zip(x[part], y[part]):
                for field, value in s.items():
                    if isinstance(value, float):
                        assert value == pytest.approx(t[field], rel=1e-9, nan_ok=True), (key, field)
                    else:
                        assert value == t[field], (key, field)


# -- references -----------------------------------------------------------------------------
def ref_laeq(levels, seconds=60.0) -> float:
    levels = np.asarray(levels)
    return float(10 * np.log10(np.mean(10 ** (levels / 10)))) if levels.size else math.nan


def ref_hourly(series: dict[str, np.ndarray], quantity: str, start: int) -> tuple[float, bool, int]:
    """(mean, valid, count) of the readings in [start, start + 1 h): valid at >= 45 of 60."""
    inside = (series["ts"] >= start) & (series["ts"] < start + H)
    x = series[quantity][inside]
    mean = ref_laeq(x) if quantity == "laeq" else (float(x.mean()) if x.size else math.nan)
    return mean, 4 * x.size * 60 >= 3 * 3600, int(x.size)


def ref_subindex(pollutant: str, c: float) -> float:
    edges = LKI_EDGES[pollutant]
    if c > edges[-1]:
        return 11.0
    return float(np.interp(max(c, 0.0), (0, *edges), range(11)))


def ref_lki_total(subs: list[float]) -> float:
    levels = [min(11, max(1, math.ceil(s))) for s in subs]
    bump = len(subs) >= 2 and len(set(levels)) == 1
    return min(11.0, max(subs) + bump)


def local_ms(d: date, hour: int) -> int:
    day = d + timedelta(days=hour // 24)
    return int(datetime(day.year, day.month, day.day, hour % 24, tzinfo=AMS).timestamp() * 1000)


@pytest.fixture(scope="module")
def in_order() -> Run:
    return Run().feed([v for _, v in in_event_order(messages())])


# -- the tests ------------------------------------------------------------------------------
def test_hourly_windows_and_lki_match_the_readings(in_order: Run) -> None:
    series, final = in_order.readings(), in_order.final()
    hours = [k for k in final if k[1] == "1h"]
    assert len(hours) == len(UNITS) * (END - START) // H
    for sensor, _, start in hours:
        agg = final[(sensor, "1h", start)]
        assert agg["version"] == 1 and agg["window_end"] == start + H
        stats = stats_of(agg)
        for quantity in ("laeq", "pm25", "no2", "o3", "temperature"):
            mean, valid, count = ref_hourly(series[sensor], quantity, start)
            assert stats[quantity]["count"] == count
            assert stats[quantity]["mean"] == pytest.approx(mean, rel=1e-9)
            assert stats[quantity]["valid"] is valid
        inside = (series[sensor]["ts"] >= start) & (series[sensor]["ts"] < start + H)
        lamax = series[sensor]["lamax"][inside]
        assert stats["lamax"]["max"] == lamax.max()
        subs = {p: ref_subindex(p, ref_hourly(series[sensor], p, start)[0]) for p in LKI_EDGES}
        got = indices_of(agg)
        for p, s in subs.items():
            assert got[f"lki_{p}"]["value"] == pytest.approx(s, abs=1e-9)
        assert got["lki"]["value"] == pytest.approx(ref_lki_total(list(subs.values())), abs=1e-9)


def test_local_day_across_the_dst_change_has_25_hours(in_order: Run) -> None:
    series, final = in_order.readings(), in_order.final()
    day_start, day_end = local_ms(date(2026, 10, 25), 0), local_ms(date(2026, 10, 26), 0)
    assert day_end - day_start == 25 * H
    for sensor in (u.sensor for u in UNITS):
        agg = final[(sensor, "1d", day_start)]
        assert agg["window_end"] == day_end
        stats = stats_of(agg)
        hourly = [ref_hourly(series[sensor], "pm25", h) for h in range(day_start, day_end, H)]
        valid = [m for m, ok, _ in hourly if ok]
        assert stats["pm25"]["valid_hours"] == len(valid)
        assert stats["pm25"]["mean"] == pytest.approx(np.mean(valid), rel=1e-9)
        assert stats["pm25"]["valid"] is (len(valid) >= 18)
        inside = (series[sensor]["ts"] >= day_start) & (series[sensor]["ts"] < day_end)
        assert stats["laeq"]["mean"] == pytest.approx(ref_laeq(series[sensor]["laeq"][inside]))
        assert stats["laeq"]["count"] == inside.sum()
        # O3: maximum of the valid 8-h means ending in the day (01:00 ... 24:00 local).
        o3 = {h: ref_hourly(series[sensor], "o3", h) for h in range(day_start - 7 * H, day_end, H)}
        means = []
        for end in range(day_start + H, day_end + H, H):
            ok = [o3[h][0] for h in range(end - 8 * H, end, H) if o3[h][1]]
            if len(ok) >= 6:
                means.append(np.mean(ok))
        got = indices_of(agg)["o3_max_8h"]
        assert got["value"] == pytest.approx(max(means), rel=1e-9)
        assert got["valid"] is (len(means) >= 18)


def test_lden_across_the_dst_night_weights_9_night_hours(in_order: Run) -> None:
    series, final = in_order.readings(), in_order.final()
    day = date(2026, 10, 24)
    edges = [local_ms(day, h) for h in (7, 19, 23, 31)]
    assert [(b - a) // H for a, b in zip(edges, edges[1:])] == [12, 4, 9]
    for sensor in (u.sensor for u in UNITS):
        got = indices_of(final[(sensor, "lden", edges[0])])
        ts, laeq = series[sensor]["ts"], series[sensor]["laeq"]
        period = [ref_laeq(laeq[(ts >= a) & (ts < b)]) for a, b in zip(edges, edges[1:])]
        ld, le, ln = period
        lden = 10 * np.log10(
            (12 * 10 ** (ld / 10) + 4 * 10 ** ((le + 5) / 10) + 9 * 10 ** ((ln + 10) / 10)) / 25
        )
        assert got["lday"]["value"] == pytest.approx(ld, rel=1e-9)
        assert got["levening"]["value"] == pytest.approx(le, rel=1e-9)
        assert got["lnight"]["value"] == pytest.approx(ln, rel=1e-9)
        assert got["lden"]["value"] == pytest.approx(lden, rel=1e-9)
        assert got["lden"]["valid"]


def test_running_means_of_o3_and_pm(in_order: Run) -> None:
    series, final = in_order.readings(), in_order.final()
    checked = 0
    for (sensor, window, start), agg in final.items():
        if window not in ("8h", "24h"):
            continue
        quantity, n_hours, need = ("o3", 8, 6) if window == "8h" else ("pm10", 24, 18)
        assert agg["window_end"] - start == n_hours * H
        hourly = [
            ref_hourly(series[sensor], quantity, h) for h in range(start, start + n_hours * H, H)
        ]
        valid = [m for m, ok, _ in hourly if ok]
        stat = stats_of(agg)[quantity]
        assert stat["valid_hours"] == len(valid) and stat["valid"] is (len(valid) >= need)
        assert stat["mean"] == pytest.approx(np.mean(valid) if valid else math.nan, nan_ok=True)
        checked += 1
    # every hour end from the first data hour to 24 h past the last, for both kinds
    assert checked == len(UNITS) * ((END - START) // H + 7 + (END - START) // H + 23)


def test_shuffled_within_the_lateness_gives_the_same_windows(in_order: Run) -> None:
    again = Run().feed([v for _, v in shuffled(messages(), 10 * 60_000, seed=3)])
    assert {a["version"] for a in again.out["aggregates"]} == {1}
    assert_same_windows(again.final(), in_order.final())


def test_shuffled_beyond_the_lateness_corrects_to_the_same_windows() -> None:
    msgs = messages(end=START + 30 * H)
    reference = Run(lateness_ms=2 * 60_000).feed([v for _, v in in_event_order(msgs)])
    late = Run(lateness_ms=2 * 60_000).feed([v for _, v in shuffled(msgs, 10 * 60_000, seed=4)])
    versions = [a["version"] for a in late.out["aggregates"] if a["window"] == "1h"]
    assert max(versions) > 1  # corrections happened
    assert not late.out["deadletter"] or {d["reason"] for d in late.out["deadletter"]} <= {"stale"}
    assert_same_windows(late.final(), reference.final())


def _uplink(unit, f_cnt: int, ts: int, laeq: float = 60.0, pm25: float = 12.0) -> bytes:
    return UPLINK.encode(
        {
            "source": "tts",
            "dev_eui": unit.dev_eui,
            "dev_addr": None,
            "f_cnt": f_cnt,
            "f_port": 1,
            "received_at": ts,
            "gateways": [{"id": "gw1", "rssi": -80.0, "snr": 5.0, "time": None}],
            "frequency": 868_100_000,
            "spreading_factor": 7,
            "payload": encode({"laeq": laeq, "pm25": pm25, "o3": 50.0}),
            "original": b"{}",
        }
    )


def test_a_late_reading_corrects_its_closed_windows_with_a_higher_version() -> None:
    unit = UNITS[1]
    run = Run()
    t0 = START + 10 * H
    run.feed([_uplink(unit, f, t0 + f * 60_000) for f in range(120)], end=False)
    [hour] = [a for a in run.out["aggregates"] if a["window"] == "1h"]
    assert (hour["window_start"], hour["version"], stats_of(hour)["laeq"]["count"]) == (t0, 1, 60)
    closed = {(a["window"], a["window_start"]): a["version"] for a in run.out["aggregates"]}
    run.out.clear()
    run.feed([_uplink(unit, 500, t0 + 30_000, laeq=90.0)], end=False)  # 90 min late
    corrected = {(a["window"], a["window_start"]): a for a in run.out["aggregates"]}
    fixed = corrected[("1h", t0)]
    assert fixed["version"] == 2
    assert stats_of(fixed)["laeq"]["count"] == 61
    assert stats_of(fixed)["laeq"]["mean"] == pytest.approx(ref_laeq([60.0] * 60 + [90.0]))
    assert stats_of(fixed)["laeq"]["max"] == 90.0
    # Every window already emitted that holds the hour comes again, with a higher version.
    assert set(corrected) == {("1h", t0), ("8h", t0 - 7 * H), ("24h", t0 - 23 * H)}
    for key, agg in corrected.items():
        assert agg["version"] > closed[key]
    assert run.out["deadletter"] == []


def test_a_reading_beyond_the_horizon_is_stored_and_dead_lettered_too_late() -> None:
    unit = UNITS[1]
    run = Run(horizon_ms=2 * H)
    t0 = START + 10 * H
    run.feed([_uplink(unit, f, t0 + f * 60_000) for f in range(240)], end=False)
    before = run.final()
    run.feed([_uplink(unit, 900, t0 + 30_000, laeq=90.0)], end=False)  # 4 h late
    [dead] = run.out["deadletter"]
    assert (dead["reason"], dead["stage"]) == ("too_late", "window")
    assert codec("reading").decode(dead["original"])["f_cnt"] == 900
    assert any(r["f_cnt"] == 900 for r in run.out["readings"])  # the raw reading is kept
    assert run.final() == before


def from_changelog(table: dict) -> dict:
    """The table as the worker's changelog would give it back."""
    return {key: json.loads(state_bytes(value)) for key, value in table.items()}


def test_a_restarted_worker_resumes_exactly() -> None:
    msgs = [v for _, v in shuffled(messages(end=START + 20 * H), 10 * 60_000, seed=5)]
    records = [(b"k", v) for v in msgs] + [(CONTROL_KEY, END_OF_INPUT)]
    whole = Run(lateness_ms=2 * 60_000).feed(msgs, batch=500)
    run = Run(lateness_ms=2 * 60_000)
    cut = len(records) // 1000 * 500
    for i in range(0, cut, 500):
        run.batch(records[i : i + 500])
    # Crash: the state comes back from the JSON changelog; the consumer resumes from an
    # older committed offset, so 300 records are delivered again.
    run.devices, run.meta = from_changelog(run.devices), from_changelog(run.meta)
    for i in range(cut - 300, len(records), 500):
        run.batch(records[i : min(i + 500, len(records))], first_offset=i)
    assert_same_windows(run.final(), whole.final())
    assert versions(run) == versions(whole)


def test_closed_windows_are_dropped_after_the_horizon() -> None:
    unit = UNITS[1]
    run = Run(horizon_ms=24 * H)
    readings = [_uplink(unit, f, START + f * 600_000) for f in range(6 * 24 * 6)]
    run.feed(readings, batch=36, end=False)  # 6 h per batch
    closed = [k for k in run.devices if "/" in k]
    # the horizon, the 2-day reach of derived windows, the lateness and one batch
    assert 0 < len(closed) <= 24 + 48 + 1 + 6
    run.feed([], end=True)
    run.feed([], end=True)  # expiry follows the watermark of the batch before
    assert list(run.devices) == [unit.dev_eui]
    assert set(run.devices[unit.dev_eui]) >= {"d", "o", "p"} and not run.devices[unit.dev_eui].get(
        "w"
    )


def test_units_reporting_faster_than_once_a_minute_get_1_minute_windows() -> None:
    raw = yaml.safe_load(DEFAULT_REGISTRY.read_text())
    raw["labs"][0]["units"][2]["uplink_interval_s"] = 10
    registry = parse_registry(raw, DEFAULT_REGISTRY)
    lab = registry.lab("zoetermeer")
    unit = lab.units[2]
    msgs = messages([unit], START, START + 20 * 60_000, lab=lab)
    run = Run(registry).feed([v for _, v in in_event_order(msgs)])
    series = run.readings()[unit.sensor]
    minutes = {k: a for k, a in run.final().items() if k[1] == "1m"}
    assert len(minutes) >= 19
    for (_, _, start), agg in minutes.items():
        inside = (series["ts"] >= start) & (series["ts"] < start + 60_000)
        stats = stats_of(agg)
        assert stats["laeq"]["count"] == inside.sum()
        assert stats["laeq"]["mean"] == pytest.approx(ref_laeq(series["laeq"][inside]))
        assert stats["laeq"]["valid"] is bool(4 * 10 * inside.sum() >= 3 * 60)
    assert not any(
        k[1] == "1m"
        for k in Run().feed([v for _, v in in_event_order(messages(end=START + H))]).final()
    )


def test_a_crash_between_changelog_writes_counts_nothing_twice() -> None:
    """Closed windows are written to the changelog before their device's entry (same
    partition, so a crash keeps a prefix), the partition's watermark to another table:
    a batch whose closed windows made it but whose device entries and watermark did not,
    or whose watermark alone did not, is delivered again and changes nothing twice."""
    msgs = [v for _, v in shuffled(messages(end=START + 12 * H), 10 * 60_000, seed=6)]
    records = [(b"k", v) for v in msgs] + [(CONTROL_KEY, END_OF_INPUT)]
    whole = Run(lateness_ms=2 * 60_000).feed(msgs, batch=400)
    run = Run(lateness_ms=2 * 60_000)
    for i in range(0, len(records), 400):
        before = [from_changelog(run.devices), from_changelog(run.meta)]
        run.batch(records[i : i + 400], first_offset=i)
        if i // 400 % 3 == 1:  # lose the device entries and the watermark
            closed = {k: v for k, v in run.devices.items() if isinstance(v, str)}
            run.devices = {**closed, **{k: v for k, v in before[0].items() if isinstance(v, dict)}}
            run.meta = before[1]
            run.batch(records[i : i + 400], first_offset=i)
        elif i // 400 % 3 == 2:  # lose the watermark only
            run.meta = before[1]
            run.batch(records[i : i + 400], first_offset=i)
    assert_same_windows(run.final(), whole.final())
    assert versions(run) == versions(whole)


def versions(run: Run) -> dict[tuple, list[int]]:
    """Per window the versions emitted, without repeats; they must only grow."""
    seen: dict[tuple, list[int]] = defaultdict(list)
    for a in run.out["aggregates"]:
        key = (a["sensor"], a["window"], a["window_start"])
        if not seen[key] or seen[key][-1] != a["version"]:
            seen[key].append(a["version"])
    assert all(v == sorted(v) for v in seen.values())
    return {key: v[-1] for key, v in seen.items()}


def test_a_lost_watermark_does_not_reopen_a_closed_window() -> None:
    """The watermark lives in another table than the windows: if a crash loses its last
    update, a late reading for a window that is already closed must still correct it."""
    unit = UNITS[1]
    run = Run()
    t0 = START + 10 * H
    run.feed([_uplink(unit, f, t0 + f * 60_000) for f in range(60)], end=False)
    stale_meta = json.loads(json.dumps(run.meta))
    run.feed([_uplink(unit, f, t0 + f * 60_000) for f in range(60, 120)], end=False)
    assert run.final()[(unit.sensor, "1h", t0)]["version"] == 1  # closed
    run.meta = stale_meta
    run.feed([_uplink(unit, 500, t0 + 30_000, laeq=90.0)], end=True)
    hour = run.final()[(unit.sensor, "1h", t0)]
    assert (hour["version"], stats_of(hour)["laeq"]["count"]) == (2, 61)


def test_windows_do_not_depend_on_batch_boundaries_to_the_last_bit() -> None:
    """Sums are added in arrival order, so however the worker cuts its input into batches
    (timing, restarts) the stored windows are identical, not merely close."""
    msgs = [v for _, v in shuffled(messages(end=START + 12 * H), 10 * 60_000, seed=7)]
    runs = [Run(lateness_ms=2 * 60_000).feed(msgs, batch=size) for size in (97, 1000)]
    first, second = (json.dumps(sorted(r.final().items()), default=str) for r in runs)
    assert first == second


def test_hourly_lki_uses_the_valid_means_and_marks_hours_without_any() -> None:
    """streams.derived.lki over hours with every mix of pollutants, some under the 45 of
    60 readings an hourly mean needs, against the DESIGN.md section 5 rule done here."""
    rng = np.random.default_rng(3)
    pollutants = list(LKI_EDGES)
    accs, expected = [], []
    for _ in range(200):
        acc, used, valid_subs, all_subs = Acc(), {}, {}, {}
        for p in pollutants:
            n = int(rng.choice([0, 10, 44, 45, 60]))
            if not n:
                continue
            x = rng.uniform(0, 1.3 * LKI_EDGES[p][-1], n)
            values = np.full((n, len(QUANTITIES)), np.nan)
            values[:, QUANTITIES.index(p)] = x
            acc.fold(values, np.zeros(values.shape, np.uint32), np.full(n, 60.0), np.arange(n))
            sub = ref_subindex(p, float(x.mean()))
            all_subs[p] = (sub, n * 60 / 3600)
            if 4 * n * 60 >= 3 * 3600:
                valid_subs[p] = all_subs[p]
        used = valid_subs or all_subs
        accs.append(acc)
        expected.append((all_subs, used, bool(valid_subs)))
    for got, (all_subs, used, valid) in zip(derived.lki(accs), expected):
        if not all_subs:
            assert got == []
            continue
        got = {i["name"]: i for i in got}
        assert got.keys() == {f"lki_{p}" for p in all_subs} | {"lki"}
        for p, (sub, coverage) in all_subs.items():
            assert got[f"lki_{p}"]["value"] == pytest.approx(sub, abs=1e-9)
            assert got[f"lki_{p}"]["coverage"] == pytest.approx(coverage)
            assert got[f"lki_{p}"]["valid"] is (4 * coverage >= 3)
        total = ref_lki_total([s for s, _ in used.values()])
        assert got["lki"]["value"] == pytest.approx(total, abs=1e-9)
        assert got["lki"]["coverage"] == pytest.approx(min(c for _, c in used.values()))
        assert got["lki"]["valid"] is valid


@pytest.fixture(scope="module")
def fleet() -> tuple:
    """200 units of one partition, 80 minutes of one-minute uplinks (real ingress): the
    first hour closes, with the default lateness, and no reading is late for it."""
    registry = parse_registry(registry_document(200), "<fleet>")
    records = [(b"k", r.value) for r, _ in uplink_records(registry, 80)]
    return registry, records


def _hour_zero(run: Run, first: int = 0) -> list[str]:
    return [
        a["sensor"]
        for a in run.out["aggregates"][first:]
        if a["window"] == "1h" and a["window_start"] == BENCH_START
    ]


def test_an_hours_close_is_emitted_over_several_batches(fleet, monkeypatch) -> None:
    """An hour's aggregates of many units are emitted a bounded number of units per batch,
    so no batch stalls for all of them; every unit's hour comes out once, the same as
    when all are emitted at once, and a crash half-way through resumes where it was."""
    registry, records = fleet
    monkeypatch.setattr(eventtime, "CLOSE_UNITS", 50)
    per_batch, run = [], Run(registry)
    snapshot = None
    for i in range(0, len(records), 40):
        seen = len(run.out["aggregates"])
        run.batch(records[i : i + 40])
        per_batch.append(len(set(_hour_zero(run, seen))))
        if snapshot is None and run.meta["0"]["q"] and per_batch[-1]:
            snapshot = (i + 40, from_changelog(run.devices), from_changelog(run.meta))
    assert max(per_batch) == 50  # CLOSE_UNITS units per batch (of fewer uplinks than that)
    assert sum(n > 0 for n in per_batch) == 4
    assert sorted(_hour_zero(run)) == sorted(u.sensor for u in registry.units)  # each once
    assert not run.meta["0"]["q"]
    run.batch([(CONTROL_KEY, END_OF_INPUT)])

    monkeypatch.setattr(eventtime, "CLOSE_UNITS", 10**6)
    at_once = Run(registry).feed([v for _, v in records], batch=40)
    assert_same_windows(run.final(), at_once.final())
    assert len(_hour_zero(at_once)) == 200

    # A crash after the first 50 units: the state comes back from the changelog and the
    # input resumes there; the remaining 150 units follow, none is lost.
    monkeypatch.setattr(eventtime, "CLOSE_UNITS", 50)
    cut, devices, meta = snapshot
    resumed = Run(registry)
    resumed.devices, resumed.meta, resumed.offset = devices, meta, cut
    resumed.feed([v for _, v in records[cut:]], batch=40)
    assert len(_hour_zero(resumed)) == 150
    assert set(_hour_zero(resumed)).isdisjoint(_hour_zero(run)[:50])
