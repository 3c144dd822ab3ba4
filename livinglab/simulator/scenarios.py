"""Labelled anomaly episodes injected into the simulated fleet, with their ground truth.

Each episode is what a lab would want to hear about: fireworks (a New Year-like night:
PM and noise up across the lab), a stuck sensor (the PM module repeats its last
reading), a dead unit (stops sending), a drifting PM sensor (reads ever higher than
its neighbours), construction noise at night (one unit), fog (the lab's air
saturates and PM over-reads). ``plan`` places the chosen kinds one after another in
the simulated span, night kinds at their local hour and each lab an hour after the
previous one; ``Injector`` changes the units' signals accordingly (a hook of
``fleet_messages``); ``ground_truth`` says which uplinks each episode affected.

Everything is seeded: the same registry, span, kinds and seed give the same episodes.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from livinglab.registry import Registry, Unit
from livinglab.simulator.fleet import iso, send_times

HOUR_MS = 3_600_000
MIN_MS = 60_000
KINDS = ("fireworks", "stuck", "dead", "construction", "fog", "drift")
SETS = {"standard": KINDS}

# Alert kinds that detect each episode kind, and those it may cause besides (a fog
# front makes PM jump, fireworks raise the day's PM mean): evaluation counts neither
# as a false alert.
DETECTED_BY: dict[str, tuple[str, ...]] = {
    "fireworks": ("spike", "threshold.noise_night_level"),
    "stuck": ("flatline",),
    "dead": ("offline",),
    "construction": ("threshold.noise_night_level",),
    "fog": ("humidity_pm",),
    "drift": ("spatial_outlier",),
}
DAILY = ("threshold.pm25_day", "threshold.pm10_day")  # a day's mean holds the episode
SIDE_EFFECTS: dict[str, tuple[str, ...]] = {
    "fireworks": ("range.realistic", "spatial_outlier", *DAILY),
    "fog": ("spike", "spatial_outlier", *DAILY),
    "drift": ("spike", *DAILY),
    "stuck": ("spike", *DAILY),  # the module's first real reading after a frozen stretch
}

# Nominal length, and local hour (None: any time) each kind starts at.
DURATION_H = {"fireworks": 2, "stuck": 6, "dead": 5, "construction": 5, "fog": 5, "drift": None}
LOCAL_START_H = {"fireworks": 0.0, "construction": 23.5, "fog": 2.0}
LAB_WIDE = ("fireworks", "fog")
UNIT_SLOT = {"stuck": 1, "dead": 3, "construction": 5, "drift": 7}  # which unit of the lab

PM = {"pm1": 0.7, "pm25": 1.0, "pm10": 1.5}  # share of a PM2.5 change seen by each size
NOISE = ("laeq", "lamax", "lamin", "l10", "l50", "l90")
FOG_RH = 99.0  # saturated: what a low-cost sensor reads in fog
FOG_RAMP_PER_MIN = 3.0  # %RH per minute while fog forms and lifts (slower than a fault)
DRIFT_PER_H = 2.5  # µg/m³ PM2.5 per hour


@dataclass(frozen=True)
class Episode:
    lab: str
    sensor: str
    kind: str
    start: int  # epoch ms: nominal start
    end: int  # nominal end (exclusive)


def parse_kinds(text: str) -> tuple[str, ...]:
    """`standard` or a comma-separated list of kinds; raises ValueError naming the bad one."""
    names: list[str] = []
    for name in (n.strip() for n in text.split(",") if n.strip()):
        if name in SETS:
            names += SETS[name]
        elif name in KINDS:
            names.append(name)
        else:
            raise ValueError(f"unknown scenario {name!r}; use {', '.join([*SETS, *KINDS])}")
    if not names:
        raise ValueError("no scenario named")
    return tuple(dict.fromkeys(names))


def plan(
    registry: Registry, start_ms: int, end_ms: int, kinds: Sequence[str], seed: int
) -> list[Episode]:
    """The episodes of ``kinds`` in [start, end): kind j in the j-th of len(kinds) equal slots."""
    span = (end_ms - start_ms) / len(kinds)
    episodes: list[Episode] = []
    for j, kind in enumerate(kinds):
        slot_start, slot_end = start_ms + int(j * span), start_ms + int((j + 1) * span)
        lead = min(2 * HOUR_MS, int(span / 4))
        for i, lab in enumerate(registry.labs):
            shift = min(i * HOUR_MS, int(span / 4 / len(registry.labs)) * i)
            begin = _local_start(kind, slot_start + lead + shift, lab.timezone)
            hours = DURATION_H[kind]
            length = end_ms - begin if hours is None else min(hours * HOUR_MS, slot_end - begin)
            if begin >= slot_end or length < 10 * MIN_MS:
                raise ValueError(
                    f"{kind}: {span / HOUR_MS:.1f} simulated hours per scenario is too short "
                    f"(it starts at {LOCAL_START_H.get(kind, 0):g} h local); simulate more hours"
                )
            if kind in LAB_WIDE:
                units = lab.units
            else:
                units = (lab.units[(UNIT_SLOT[kind] + seed) % len(lab.units)],)
            episodes += [Episode(lab.id, u.sensor, kind, begin, begin + length) for u in units]
    return episodes


def _local_start(kind: str, earliest: int, tz: str) -> int:
    """``earliest``, or the first time after it at the kind's local hour."""
    hour = LOCAL_START_H.get(kind)
    if hour is None:
        return earliest
    local = datetime.fromtimestamp(earliest / 1000, ZoneInfo(tz))
    at = local.replace(hour=int(hour), minute=int(hour % 1 * 60), second=0, microsecond=0)
    if at < local:
        at += timedelta(days=1)
    return int(at.timestamp() * 1000)


class Injector:
    """The fleet hook: applies the episodes of a unit to its signals (see ``fleet.Effects``)."""

    def __init__(self, episodes: Sequence[Episode], seed: int) -> None:
        self.by_unit: dict[tuple[str, str], list[Episode]] = {}
        for e in episodes:
            self.by_unit.setdefault((e.lab, e.sensor), []).append(e)
        self.seed = seed

    def __call__(self, unit: Unit, sent: np.ndarray, signals: dict[str, np.ndarray]) -> np.ndarray:
        keep = np.ones(len(sent), dtype=bool)
        for e in self.by_unit.get((unit.lab, unit.sensor), ()):
            rng = np.random.default_rng([self.seed, e.start, _stable(unit.key)])
            inside = (sent >= e.start) & (sent < e.end)
            minutes = (sent - e.start) / MIN_MS
            if e.kind == "dead":
                keep &= ~inside
            else:
                _EFFECTS[e.kind](signals, inside, minutes, rng)
        return keep


def _stable(text: str) -> int:
    """A hash of ``text`` that is the same in every process (unlike ``hash``)."""
    return zlib.crc32(text.encode())


def _fireworks(s: dict[str, np.ndarray], inside: np.ndarray, minutes: np.ndarray, rng) -> None:
    """Midnight: PM2.5 jumps by 60-150 µg/m³ and decays (~40 min, on past the episode's
    two hours); bangs for ~45 min."""
    plume = np.where(minutes >= 0, rng.uniform(60, 150) * np.exp(-minutes / 40), 0.0)
    for q, share in PM.items():
        s[q] = s[q] + share * plume
    bangs = 80 - minutes / 3 + rng.normal(0, 2, len(minutes))
    _add_noise(s, bangs, inside & (minutes < 45), rng)


def _stuck(s: dict[str, np.ndarray], inside: np.ndarray, minutes: np.ndarray, rng) -> None:
    """The PM module freezes: it repeats the reading it made just before."""
    idx = np.flatnonzero(inside)
    if len(idx):
        last = max(idx[0] - 1, 0)
        for q in PM:
            s[q][idx] = s[q][last]


def _construction(s: dict[str, np.ndarray], inside: np.ndarray, minutes: np.ndarray, rng) -> None:
    """Machines at night next to the unit: around 76 dB(A) for the whole episode."""
    _add_noise(s, 76 + rng.normal(0, 2, len(s["laeq"])), inside, rng)


def _fog(s: dict[str, np.ndarray], inside: np.ndarray, minutes: np.ndarray, rng) -> None:
    """The air saturates (rising ahead of the episode, so no fault-like jump), PM over-reads.

    Humidity reaches ``FOG_RH`` at the episode's first reading; PM rises to 2.5 times
    its reading over 30 minutes as droplets grow, and falls back as the fog lifts.
    """
    n = len(inside)
    idx = np.flatnonzero(inside)
    if not len(idx):
        return
    rh = s["humidity"]
    step = FOG_RAMP_PER_MIN * float(np.median(np.diff(minutes))) if n > 1 else FOG_RH
    first, last = idx[0], idx[-1]
    target = np.full(n, np.nan)
    target[idx] = np.minimum(100.0, FOG_RH + rng.uniform(0, 1, len(idx)))
    for k in range(1, first + 1):  # before: rising towards saturation
        level = target[first] - k * step
        if level <= rh[first - k]:
            break
        target[first - k] = level
    for k in range(1, n - last):  # after: lifting
        level = target[last] - k * step
        if level <= rh[last + k]:
            break
        target[last + k] = level
    s["humidity"] = np.where(np.isnan(target), rh, target)
    over = np.where(inside, 1.5 * np.minimum(1.0, minutes / 30), 0.0)
    after = np.arange(n) > last
    over[after] = 1.5 * np.maximum(0.0, 1 - (np.arange(n)[after] - last) / 30)
    for q in PM:
        s[q] = s[q] * (1 + over)


def _drift(s: dict[str, np.ndarray], inside: np.ndarray, minutes: np.ndarray, rng) -> None:
    """The PM sensor reads ever higher: +2.5 µg/m³ PM2.5 per hour, up to +60."""
    offset = np.where(inside, np.minimum(60.0, DRIFT_PER_H * minutes / 60), 0.0)
    for q, share in PM.items():
        s[q] = s[q] + share * offset


def _add_noise(
    s: dict[str, np.ndarray], level: np.ndarray, where: np.ndarray, rng: np.random.Generator
) -> None:
    """Add a source of ``level`` dB(A) (LAeq over a minute) to the noise levels where set;
    its peaks, troughs and percentiles vary from minute to minute on their own."""
    for q in NOISE:
        offset = {"lamax": 8.0, "lamin": -6.0, "l10": 2.0, "l90": -4.0}.get(q)
        extra = level if offset is None else level + offset + rng.normal(0, 1.5, len(level))
        total = 10 * np.log10(10 ** (s[q] / 10) + 10 ** (extra / 10))
        s[q] = np.where(where, total, s[q])


_EFFECTS = {
    "fireworks": _fireworks,
    "stuck": _stuck,
    "construction": _construction,
    "fog": _fog,
    "drift": _drift,
}


def ground_truth(
    registry: Registry,
    episodes: Sequence[Episode],
    start_ms: int,
    end_ms: int,
    seed: int,
    kinds: Sequence[str],
) -> dict[str, Any]:
    """The episodes with the event times of the first and after-last affected uplinks.

    ``start`` is the first uplink the episode changed (for a dead unit: the first one
    it did not send), ``end`` the first one after it (or the end of the simulation).
    """
    index = {u.key: i for i, u in enumerate(registry.units)}
    units = {u.key: u for u in registry.units}
    out = []
    for e in episodes:
        unit = units[f"{e.lab}:{e.sensor}"]
        _, sent = send_times(unit, index[unit.key], start_ms, end_ms, seed)
        after = sent[sent >= e.start]
        first = int(after[0]) if len(after) else e.start
        later = sent[sent >= e.end]
        out.append(
            {
                **asdict(e),
                "start": iso(first),
                "end": iso(int(later[0]) if len(later) else end_ms),
                "nominal_start": iso(e.start),
                "interval_s": unit.uplink_interval_s,
                "detected_by": list(DETECTED_BY[e.kind]),
                "side_effects": list(SIDE_EFFECTS.get(e.kind, ())),
            }
        )
    return {
        "kinds": list(kinds),
        "seed": seed,
        "start": iso(start_ms),
        "end": iso(end_ms),
        "episodes": out,
    }
