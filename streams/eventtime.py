"""Event-time windows of one partition: closing by watermark, corrections, retention.

The state lives in the processor's per-device mapping (a changelog-backed Faust table):

- device entry `state["w"]`: the unit's open tumbling windows {"<size_s>/<start>": Acc}
  (decoded while the unit is active between two checkpoints, else as stored strings);
  `state["s"]`: per window size the [oldest, newest] start of its closed windows;
- closed windows under their own keys "<dev_eui>/<size_s>/<start>" (Acc with version
  and the highest input offset folded in), kept until they are older than the
  correction horizon plus the reach of the windows derived from them, then deleted -
  judged by the watermark at the start of a batch, so that a batch delivered again
  after a crash still finds every hour the windows it emits depend on.

Every window kind is emitted once it is closed, i.e. once the partition's watermark
(highest event time minus the allowed lateness) has passed its end: tumbling windows
(1 min for units that report more often than once a minute, 1 h for all) from their
accumulator, running windows (8 h O3, 24 h PM, every hour), local days (1d) and Lden
days (07:00-07:00 local) from the closed hours. A reading whose window is already
closed but within the horizon is folded into the closed window, which is emitted again
with a higher version, and so is every closed window derived from its hour; a reading
beyond the horizon never gets here (the processor dead-letters it as too_late).

A close stores the windows at once but emits them, and the windows derived from them,
a bounded number of units per batch (`_work`, in DevEUI order, its progress kept in the
partition's state): a worker holding many units does not stall at every hour.

Which readings count as late is decided by the watermark when each reading is handled,
and versions grow by one per late reading, so the windows' final content and version
do not depend on how the input was cut into batches.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np

from livinglab.codec.payload import QUANTITIES
from livinglab.registry import Registry, Unit
from streams import derived, quality
from streams.derived import RUNNING
from streams.science.localtime import local_epoch, zone
from streams.windows import HOUR_MS, MINUTE_MS, Acc, window_start

DAY_MS = 24 * HOUR_MS
DEFAULT_HORIZON_MS = 7 * DAY_MS
# A derived window ending at E depends on hours back to E - 32 h (an O3 day of 25 h and
# its 7 lead hours), so an hour matters to windows ending up to REACH after its start,
# and closed hours are kept that much longer than the horizon (with a margin).
REACH_MS = 33 * HOUR_MS
RETAIN_EXTRA_MS = 2 * DAY_MS
NAMES = {MINUTE_MS: "1m", HOUR_MS: "1h"}
_QIDX = {q: i for i, q in enumerate(QUANTITIES)}
_ALL_QUANTITIES = itemgetter(*QUANTITIES)
_NAN = float("nan")


def _quantities(values: dict[str, float]) -> tuple[float, ...] | list[float]:
    """A reading's values in QUANTITIES order, NaN where not measured (a unit measuring
    everything, the usual case, in one C-level lookup)."""
    try:
        return _ALL_QUANTITIES(values)
    except KeyError:
        return [values.get(q, _NAN) for q in QUANTITIES]


_NEVER = 2**63
CHUNK = 256  # windows per vectorised call: bounds the hours decoded at once
# Units whose closed windows are emitted per batch (see `_work`): at least CLOSE_UNITS,
# more in a batch of many readings, one unit per READINGS_PER_UNIT of them (emitting a
# unit's hour with its running windows costs about as much as processing that many
# readings), so that a close adds at most about as much again to a batch's time and a
# backlog's closes keep up with it.
CLOSE_UNITS = 32
READINGS_PER_UNIT = 4
END_WATERMARK = 2**62  # the watermark after the end-of-input marker: everything closes


def sizes(unit: Unit) -> tuple[int, ...]:
    """Tumbling window sizes of a unit: a 1-min window of a unit that reports once a
    minute or less often would only repeat its readings, so those get hours only."""
    return (MINUTE_MS, HOUR_MS) if unit.uplink_interval_s * 1000 < MINUTE_MS else (HOUR_MS,)


def entry_key(dev_eui: str, size_ms: int, start: int) -> str:
    return f"{dev_eui}/{size_ms // 1000}/{start}"


@lru_cache(maxsize=8192)
def local_day(ts_ms: int, tz: str, start_hour: int = 0) -> tuple[date, int, int]:
    """(date, start, end) in epoch ms of the local day [start_hour D, start_hour D+1)
    that contains ts (23 or 25 hours long on DST days)."""
    tzinfo = zone(tz)
    local = datetime.fromtimestamp(ts_ms / 1000, tzinfo)
    day = local.date()
    start = int(local_epoch(day, start_hour, tzinfo) * 1000)
    if start > ts_ms:
        day = day.fromordinal(day.toordinal() - 1)
        start = int(local_epoch(day, start_hour, tzinfo) * 1000)
    return day, start, int(local_epoch(day, start_hour + 24, tzinfo) * 1000)


@dataclass(slots=True)
class _Reading:
    dev_eui: str
    unit: Unit
    ts: int
    values: dict[str, float]
    flags: dict[str, int]
    offset: int
    watermark: int  # the partition's watermark when the reading was handled


@dataclass
class EventTime:
    """One batch's window work for one partition (created per batch, state in `devices`)."""

    registry: Registry
    partition: int
    devices: MutableMapping[str, Any]
    meta: dict[str, Any]
    horizon_ms: int = DEFAULT_HORIZON_MS
    pending: list[_Reading] = field(default_factory=list)
    changed: dict[str, None] = field(default_factory=dict)  # closed-window keys, in order
    dirty_devices: set[str] = field(default_factory=set)
    _emit: set[tuple[str, int, int]] = field(default_factory=set)
    _derive: set[tuple[str, str, int]] = field(default_factory=set)
    _arrays: tuple[np.ndarray, ...] = ()  # the batch's readings: values, flags, seconds, offsets

    def __post_init__(self) -> None:
        self.meta.setdefault("n", -(2**62))  # watermark at which windows are next due
        self.meta.setdefault("x", -(2**62))  # watermark at which closed ones next expire
        self.meta.setdefault("e", self.meta["c"])  # watermark of the last close
        self.meta.setdefault("q", [])  # closes whose windows are still to emit (`_work`)
        self._wm0 = self.meta["wm"]  # before this batch
        self._retain_ms = self.horizon_ms + RETAIN_EXTRA_MS
        self._tz = {lab.id: lab.timezone for lab in self.registry.labs}

    def add(self, unit: Unit, reading: dict[str, Any], offset: int, watermark: int) -> None:
        self.pending.append(
            _Reading(
                unit.dev_eui,
                unit,
                reading["ts"],
                reading["values"],
                reading["flags"],
                offset,
                watermark,
            )
        )

    # -- the end of a batch ----------------------------------------------------------------
    def end_batch(self) -> Iterator[dict[str, Any]]:
        """Fold the batch's readings in, close what the watermark passed, apply late
        readings as corrections, drop what is past retention; yields the aggregates.

        A generator, to be run to its end: at an hour's close every unit of the
        partition has several aggregates, and building them all before encoding any
        held hundreds of MB for 100,000 units. Retention and the closed-hours mark
        are applied after the last one."""
        wm, c_old = self.meta["wm"], self.meta["c"]
        c_new = max(c_old, window_start(wm, HOUR_MS))
        on_time, late = self._groups()
        self._fold_open(on_time)
        due = wm >= self.meta["n"] or c_new > c_old
        if due:
            self._close_all(wm, c_new)
        for (dev_eui, size, start), rows in late.items():
            self._fold_late(dev_eui, size, start, rows, c_new)
        budget = max(CLOSE_UNITS, len(self.pending) // READINGS_PER_UNIT)
        self._work(END_WATERMARK if wm >= END_WATERMARK else budget)
        records = chain(
            self._tumbling(),
            self._running(),
            (self._day(*key) for key in sorted(self._derive) if key[1] not in RUNNING),
        )
        yield from (r for r in records if r is not None)
        if self._wm0 >= self.meta["x"]:
            self._expire(self._wm0 - self._retain_ms)
        self.meta["c"] = c_new

    def _groups(self) -> tuple[dict[tuple, Any], dict[tuple, Any]]:
        """The batch's readings as arrays, grouped by (device, window size, start) and by
        whether their window had closed when they were handled."""
        if not self.pending:
            return {}, {}
        n = len(self.pending)
        values = np.fromiter(
            chain.from_iterable(_quantities(r.values) for r in self.pending),
            np.float64,
            count=n * len(QUANTITIES),
        ).reshape(n, len(QUANTITIES))
        flags = np.zeros(values.shape, dtype=np.uint32)
        for i, r in enumerate(self.pending):
            for q, f in r.flags.items():
                if q in _QIDX:
                    flags[i, _QIDX[q]] = f
        values[(flags & quality.OUT_OF_RANGE) != 0] = _NAN  # kept in readings, not in windows
        durations = np.array([r.unit.uplink_interval_s for r in self.pending], dtype=np.float64)
        offsets = np.array([r.offset for r in self.pending], dtype=np.int64)
        self._arrays = (values, flags, durations, offsets)
        on_time: dict[tuple, list[int]] = {}
        late: dict[tuple, list[int]] = {}
        for i, r in enumerate(self.pending):
            for size in sizes(r.unit):
                start = r.ts - r.ts % size  # window_start, inlined: once per reading
                key = (r.dev_eui, size, start)
                closed = start + size <= r.watermark or entry_key(*key) in self.devices
                (late if closed else on_time).setdefault(key, []).append(i)
        return on_time, late

    def _rows(self, rows: list[int]) -> tuple[np.ndarray, ...]:
        idx = np.asarray(rows)
        return tuple(a[idx] for a in self._arrays)

    def _fold_open(self, groups: dict[tuple, list[int]]) -> None:
        """Fold each open window's readings of the batch in, all windows in one go."""
        if not groups:
            return
        accs, slots = [], []
        for dev_eui, size, start in groups:
            open_ = self.devices[dev_eui].setdefault("w", {})
            key = f"{size // 1000}/{start}"
            accs.append(Acc.thaw(open_[key]) if key in open_ else Acc())
            slots.append((open_, key))
            self.dirty_devices.add(dev_eui)
            self.meta["n"] = min(self.meta["n"], start + size)
        Acc.fold_many(accs, [np.asarray(rows) for rows in groups.values()], *self._arrays)
        for (open_, key), acc in zip(slots, accs):
            open_[key] = acc  # encoded at the next checkpoint (processor.freeze)

    def _fold_late(self, dev_eui: str, size: int, start: int, rows: list[int], c: int) -> None:
        """A correction: fold late readings into the closed window (skipping any already
        in it: redelivered after a crash) and emit it again, version + 1 per reading. A
        window that had no data when it closed counts as closed empty at version 1."""
        key = entry_key(dev_eui, size, start)
        text = self.devices.get(key)
        acc = Acc(version=1) if text is None else Acc.from_str(text)
        values, flags, durations, offsets = self._rows(rows)
        new = offsets > acc.offset
        if not new.any():
            return
        acc.fold(values[new], flags[new], durations[new], offsets[new])
        acc.version += int(new.sum())
        self._store(dev_eui, size, start, acc)
        if size == HOUR_MS:
            self._touched(dev_eui, start, c)
            self.meta["n"] = min(self.meta["n"], c + HOUR_MS)

    def _store(self, dev_eui: str, size: int, start: int, acc: Acc, emit: bool = True) -> None:
        key = entry_key(dev_eui, size, start)
        self.devices[key] = acc.to_str()
        self.changed[key] = None
        if emit:
            self._emit.add((dev_eui, size, start))
        self.meta["x"] = min(self.meta["x"], start + size + self._retain_ms)
        spans = self.devices[dev_eui].setdefault("s", {})
        span = spans.get(str(size // 1000))
        spans[str(size // 1000)] = (
            [min(span[0], start), max(span[1], start)] if span else [start] * 2
        )
        self.dirty_devices.add(dev_eui)

    def _partition_devices(self) -> Iterator[tuple[str, dict[str, Any], Unit]]:
        """The registered devices with state on this partition (looked up by DevEUI: the
        table also holds every device's closed windows, far more keys than devices)."""
        for dev_eui, unit in self.registry.by_dev_eui.items():
            state = self.devices.get(dev_eui)
            if state is not None and state.get("p") == self.partition:
                yield dev_eui, state, unit

    def _close_all(self, wm: int, c_new: int) -> None:
        """Close every open window the watermark passed and queue the emission of what
        closed since the last close and of the derived windows ending in that span; find
        when windows are next due (derived ones while a unit's hours reach past c_new)."""
        due = _NEVER
        for dev_eui, state, _ in self._partition_devices():
            open_ = state.get("w", {})
            for key in sorted(open_, key=lambda k: int(k.split("/")[1])):
                size_s, start = (int(x) for x in key.split("/"))
                size = size_s * 1000
                if start + size > wm:
                    due = min(due, start + size)
                    continue
                acc = Acc.thaw(open_.pop(key))
                self.dirty_devices.add(dev_eui)
                if entry_key(dev_eui, size, start) in self.devices:
                    continue  # stored before a crash, with all of this and maybe more
                acc.version = 1
                self._store(dev_eui, size, start, acc, emit=False)
            span = state.get("s", {}).get(str(HOUR_MS // 1000))
            if span is not None and span[1] + REACH_MS > c_new:
                due = min(due, c_new + HOUR_MS)
        self.meta["n"] = due
        self._queue(self.meta["e"], wm)
        self.meta["e"] = wm

    def _queue(self, lo: int, hi: int) -> None:
        """Queue a close: each unit's windows that end in (lo, hi] are to be emitted."""
        queue = self.meta["q"]
        if queue and not queue[-1][2] and queue[-1][1] == lo:
            queue[-1][1] = hi  # not started yet: one pass does both
        else:
            queue.append([lo, hi, ""])

    def _work(self, budget: float) -> None:
        """Emit the queued closes for up to `budget` units, in DevEUI order, remembering
        where to go on (state, so a restarted worker goes on there too).

        An hour's close of every unit at once stalled the worker for ~0.6 ms per unit
        (a minute or two for 100,000 units) with uplinks queueing behind it; spread over
        the following batches, no batch waits long. Windows are closed and stored at
        once (late readings need to find them); only building and sending the
        aggregates waits, and it reads them as stored then (a correction that came in
        between is included, with its higher version). Emitting a window twice (after
        a crash) is harmless: the sink keeps one row per key and version."""
        queue, order = self.meta["q"], self.registry.dev_euis
        while queue and budget > 0:
            lo, hi, after = queue[0]
            i = bisect.bisect_right(order, after)
            while i < len(order) and budget > 0:
                dev_eui = order[i]
                i += 1
                state = self.devices.get(dev_eui)
                if state is not None and state.get("p") == self.partition:
                    self._unit_closed(dev_eui, state, lo, hi)
                    budget -= 1
            if i < len(order):
                queue[0][2] = order[i - 1]
            else:
                queue.pop(0)

    def _unit_closed(self, dev_eui: str, state: dict[str, Any], lo: int, hi: int) -> None:
        """A unit's share of a close: its closed windows that end in (lo, hi] and its
        derived windows that end in that span's hours."""
        spans = state.get("s", {})
        for size_s, (oldest, newest) in spans.items():
            size = int(size_s) * 1000
            start = max(window_start(lo, size), oldest)
            while start <= newest and start + size <= hi:
                self._emit.add((dev_eui, size, start))  # gaps (no data): skipped by _tumbling
                start += size
        span = spans.get(str(HOUR_MS // 1000))
        if span is not None:
            unit = self.registry.by_dev_eui[dev_eui]
            self._schedule(
                dev_eui, unit, span, window_start(lo, HOUR_MS), window_start(hi, HOUR_MS)
            )

    def _schedule(self, dev_eui: str, unit: Unit, span: list[int], c_old: int, c_new: int) -> None:
        """Derived windows that end in (c_old, c_new] and may hold data of the unit."""
        oldest, newest = span
        end = max(c_old, oldest)
        end += HOUR_MS - end % HOUR_MS
        tz = self._tz[unit.lab]
        while end <= min(c_new, newest + REACH_MS):
            self._derive_ending(dev_eui, tz, end, newest)
            end += HOUR_MS

    def _derive_ending(self, dev_eui: str, tz: str, end: int, newest: int) -> None:
        for kind, (_, _, hours) in RUNNING.items():
            if end - hours * HOUR_MS <= newest:
                self._derive.add((dev_eui, kind, end))
        _, start, day_end = local_day(end - HOUR_MS, tz)
        if day_end == end and start - derived.O3_MAX_LEAD_H * HOUR_MS <= newest:
            self._derive.add((dev_eui, "1d", end))
        _, start, day_end = local_day(end - HOUR_MS, tz, 7)
        if day_end == end and start <= newest:
            self._derive.add((dev_eui, "lden", end))

    def _touched(self, dev_eui: str, hour: int, c: int) -> None:
        """Closed derived windows that depend on a corrected hour: emitted again."""
        unit = self.registry.by_dev_eui[dev_eui]
        tz = self._tz[unit.lab]
        for kind, (_, _, hours) in RUNNING.items():
            for k in range(1, hours + 1):
                if hour + k * HOUR_MS <= c:
                    self._derive.add((dev_eui, kind, hour + k * HOUR_MS))
        for ts, kind, start_hour in (
            (hour, "1d", 0),
            (hour + derived.O3_MAX_LEAD_H * HOUR_MS, "1d", 0),
            (hour, "lden", 7),
        ):
            end = local_day(ts, tz, start_hour)[2]
            if end <= c:
                self._derive.add((dev_eui, kind, end))

    def _expire(self, cutoff: int) -> None:
        """Delete closed windows that ended at or before `cutoff` (past any correction)
        and note when the oldest remaining one will be due."""
        due = _NEVER
        for dev_eui, state, _ in self._partition_devices():
            spans = state.get("s", {})
            for size_s, (oldest, newest) in list(spans.items()):
                size = int(size_s) * 1000
                start = oldest
                while start <= newest and start + size <= cutoff:
                    key = entry_key(dev_eui, size, start)
                    if key in self.devices:
                        del self.devices[key]
                        self.changed[key] = None
                    start += size
                if start > newest:
                    del spans[size_s]
                else:
                    spans[size_s] = [start, newest]
                    due = min(due, start + size + self._retain_ms)
                if start != oldest:
                    self.dirty_devices.add(dev_eui)
            if not spans:
                state.pop("s", None)
        self.meta["x"] = due

    # -- records ---------------------------------------------------------------------------
    def _hour(self, dev_eui: str, start: int) -> Acc | None:
        """A closed hour, decoded afresh each time: decoded hours are large (a dense level
        histogram each), and keeping every unit's day of them for a batch took GBs."""
        text = self.devices.get(entry_key(dev_eui, HOUR_MS, start))
        return None if text is None else Acc.from_str(text)

    def _record(
        self, dev_eui: str, window: str, start: int, end: int, version: int, stats, indices
    ) -> dict[str, Any] | None:
        if not stats and not indices:
            return None
        unit = self.registry.by_dev_eui[dev_eui]
        return {
            "lab": unit.lab,
            "sensor": unit.sensor,
            "window": window,
            "window_start": start,
            "window_end": end,
            "version": version,
            "stats": stats,
            "indices": indices,
        }

    def _tumbling(self) -> Iterator[dict[str, Any] | None]:
        """The closed and corrected tumbling windows, a chunk at a time (the hours' LKI in
        one vectorised call per chunk)."""
        keys = sorted(self._emit)
        for first in range(0, len(keys), CHUNK):
            texts = {key: self.devices.get(entry_key(*key)) for key in keys[first : first + CHUNK]}
            chunk = [key for key, text in texts.items() if text is not None]  # not a span's gaps
            accs = [Acc.from_str(texts[key]) for key in chunk]
            hourly = [acc for (_, size, _), acc in zip(chunk, accs) if size == HOUR_MS]
            indices = iter(derived.lki(hourly))
            for (dev_eui, size, start), acc in zip(chunk, accs):
                yield self._record(
                    dev_eui,
                    NAMES[size],
                    start,
                    start + size,
                    acc.version,
                    acc.stats(size / 1000),
                    next(indices) if size == HOUR_MS else [],
                )

    def _hours(self, dev_eui: str, start: int, end: int) -> list[Acc | None]:
        """The unit's closed hours in [start, end), None where it has none."""
        return [self._hour(dev_eui, h) for h in range(start, end, HOUR_MS)]

    @staticmethod
    def _version(hours: list[Acc | None]) -> int:
        """The version of a window derived from these hours: 1 + the late readings folded
        into them, so it grows whenever one of them is corrected (0: no data at all)."""
        present = [acc for acc in hours if acc is not None]
        return 1 + sum(acc.version - 1 for acc in present) if present else 0

    def _running(self) -> Iterator[dict[str, Any] | None]:
        """Running windows, computed together for all units that end one at the same time;
        a unit's hours are decoded once for all its running windows of that end."""
        by_end: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for dev_eui, kind, end in self._derive:
            if kind in RUNNING:
                by_end[end][dev_eui].add(kind)
        for end, devices in sorted(by_end.items()):
            units = sorted(devices.items())
            for first in range(0, len(units), CHUNK):
                chunk = units[first : first + CHUNK]
                decoded = {
                    dev: self._hours(dev, end - max(RUNNING[k][2] for k in kinds) * HOUR_MS, end)
                    for dev, kinds in chunk
                }
                for kind, (_, _, n) in RUNNING.items():
                    found = [(dev, decoded[dev][-n:]) for dev, kinds in chunk if kind in kinds]
                    found = [(dev, hours, v) for dev, hours in found if (v := self._version(hours))]
                    if not found:
                        continue
                    grids = [derived.HourGrid(hours) for _, hours, _ in found]
                    start = end - n * HOUR_MS
                    for (dev, _, version), stats in zip(found, derived.running(kind, grids)):
                        yield self._record(dev, kind, start, end, version, stats, [])

    def _day(self, dev_eui: str, kind: str, end: int) -> dict[str, Any] | None:
        """A local day (1d, with the 7 hours before it for the O3 8-h maximum) or an Lden
        day (07:00-07:00) from the unit's closed hours."""
        tz = self._tz[self.registry.by_dev_eui[dev_eui].lab]
        day, start, day_end = local_day(end - HOUR_MS, tz, 7 if kind == "lden" else 0)
        assert day_end == end
        lead = derived.O3_MAX_LEAD_H * HOUR_MS if kind == "1d" else 0
        hours = self._hours(dev_eui, start - lead, end)
        version = self._version(hours)
        if not version:
            return None
        n_lead = lead // HOUR_MS
        starts_s = np.arange(start, end, HOUR_MS) / 1000
        if kind == "1d":
            lead_grid, day_grid = derived.HourGrid(hours[:n_lead]), derived.HourGrid(hours[n_lead:])
            stats, indices = derived.local_day(lead_grid, day_grid, starts_s, tz)
        else:
            stats, indices = [], derived.lden_day(day, derived.HourGrid(hours), starts_s, tz)
        return self._record(dev_eui, kind, start, end, version, stats, indices)
