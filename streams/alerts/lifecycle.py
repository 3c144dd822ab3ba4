"""Alert lifecycle: conditions per (lab, sensor, kind, quantity) become episodes.

An episode is one alert id with events ``open``, ``update`` ... ``resolved``. The
rules keep a value hovering at a limit from flapping:

- open only after ``min_samples`` consecutive active samples spanning at least
  ``min_duration_s`` (a one-sample blip never opens); ``started`` is the first of them;
- hysteresis: while open, a sample that is inactive but still beyond the
  condition's ``clear_threshold`` keeps the episode open without counting as clear;
- resolve only after ``clear_samples`` consecutive clear samples spanning at least
  ``clear_after_s``; ``ended`` is the first clear sample, ``ts`` the confirming one;
- ``update`` only when the severity changes or the value worsens by ``worsen_by``
  since the last message, never per reading;
- ids are UUIDv5 of lab, sensor, kind, quantity and ``started``: replaying the same
  conditions gives the same ids, and a recurrence (new ``started``) a new one.

Samples not newer than the last one seen for the key are ignored (redelivery after
a rebalance), as are samples with a NaN value (not evaluated).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import numpy as np

from streams.alerts.messages import render
from streams.detectors.condition import Conditions, Severity
from streams.detectors.config import override
from streams.detectors.state import SerialisableState
from streams.detectors.thresholds import AGGREGATE_LIMITS

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:livinglab:alert")


class AlertState(StrEnum):
    OPEN = "open"
    UPDATE = "update"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class LifecycleConfig:
    min_samples: int = 1
    min_duration_s: float = 0.0
    clear_samples: int = 1
    clear_after_s: float = 0.0
    worsen_by: float | None = None  # in the condition's unit; None: no value-driven updates


def _default_policy() -> dict[str, LifecycleConfig]:
    """Per-kind rules; the detectors already demand persistence where they can.

    Raw-reading checks need 3 samples to open and to clear; point events (spike,
    rate, reboot) open at once and resolve after an hour without recurrence;
    aggregate limits open on one window (it already is a duration) and update when
    3 dB (a doubling of sound energy) or about 20 % of the limit worse; the
    night-time reading limit needs two loud minutes in a row (a passing truck is
    one); fog (humidity_pm) is judged on units' debounced triggers, so it opens at once.
    """
    persistent = LifecycleConfig(min_samples=3, clear_samples=3)
    point_event = LifecycleConfig(clear_after_s=3600.0)
    policy = {
        "default": LifecycleConfig(min_samples=2, clear_samples=2),
        "threshold": LifecycleConfig(),
        "range.physical": persistent,
        "range.realistic": persistent,
        "humidity_pm": LifecycleConfig(),
        "threshold.noise_night_level": LifecycleConfig(
            min_samples=2, clear_samples=2, worsen_by=3.0
        ),
        "battery_low": persistent,
        "flatline": LifecycleConfig(),
        "offline": LifecycleConfig(),
        "spatial_outlier": LifecycleConfig(clear_samples=3),
        "spike": point_event,
        "rate": point_event,
        "reboot": point_event,
    }
    for limit in AGGREGATE_LIMITS:
        noise = limit.quantity in ("laeq", "lamax")
        step = 3.0 if noise else round(0.2 * limit.tiers[-1][0])
        policy[limit.kind] = LifecycleConfig(worsen_by=step)
    return policy


DEFAULT_POLICY: dict[str, LifecycleConfig] = _default_policy()


def lifecycle_policy(
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, LifecycleConfig]:
    """The default policy with a registry section applied (kind -> fields)."""
    policy = dict(DEFAULT_POLICY)
    for kind, changes in (overrides or {}).items():
        policy[kind] = override(config_for(policy, kind), changes)
    return policy


def config_for(policy: Mapping[str, LifecycleConfig], kind: str) -> LifecycleConfig:
    """Exact kind, else its family (``threshold`` for ``threshold.x``), else ``default``."""
    return policy.get(kind) or policy.get(kind.split(".")[0]) or policy["default"]


@dataclass(frozen=True)
class Episode(SerialisableState):
    """Lifecycle state of one (lab, sensor, kind, quantity)."""

    last_ts: int | None = None
    pending_since: int | None = None  # first active sample of a run not yet opened
    pending_count: int = 0
    alert_id: str | None = None  # set while an episode is open
    started: int | None = None
    seq: int = 0  # number of the last event sent for this episode
    direction: int = 1  # +1: higher values are worse
    severity: int = 0  # of the last event sent
    value: float | None = None  # of the last event sent
    peak: float | None = None
    clearing_since: int | None = None
    clearing_count: int = 0


@dataclass(frozen=True)
class Alert:
    """One alert event as published on ``alerts.<lab>`` (see schemas/alert.schema.json)."""

    id: str
    lab: str
    sensor: str
    kind: str
    quantity: str | None
    severity: Severity
    state: AlertState
    seq: int
    started: int
    ended: int | None
    ts: int
    value: float
    threshold: float
    peak: float
    reference: float | None
    unit: str
    window: str | None
    message_nl: str
    message_en: str

    def to_record(self) -> dict[str, Any]:
        """JSON-ready dict: times as ISO 8601 UTC, severity and state as labels."""
        return {
            "id": self.id,
            "lab": self.lab,
            "sensor": self.sensor,
            "kind": self.kind,
            "quantity": self.quantity,
            "severity": self.severity.label,
            "state": self.state.value,
            "seq": self.seq,
            "started": iso(self.started),
            "ended": None if self.ended is None else iso(self.ended),
            "ts": iso(self.ts),
            "value": self.value,
            "threshold": self.threshold,
            "peak": self.peak,
            "reference": self.reference,
            "unit": self.unit,
            "window": self.window,
            "message_nl": self.message_nl,
            "message_en": self.message_en,
        }


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC with a Z, millisecond precision."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def alert_id(lab: str, sensor: str, kind: str, quantity: str | None, started: int) -> str:
    """Deterministic episode id, so a replay reproduces ids and sinks deduplicate."""
    return str(
        uuid.uuid5(_NAMESPACE, f"{lab}\x1f{sensor}\x1f{kind}\x1f{quantity or ''}\x1f{started}")
    )


def episode_key(kind: str, quantity: str | None) -> str:
    return f"{kind}:{quantity or ''}"


def track(
    cfg: LifecycleConfig, episode: Episode, lab: str, sensor: str, conds: Conditions
) -> tuple[list[Alert], Episode]:
    """Feed one batch of conditions of one key; returns the alert events and the new state."""
    fresh = ~np.isnan(conds.value)
    if episode.last_ts is not None:
        fresh &= conds.ts > episode.last_ts
    rows = np.flatnonzero(fresh)
    if len(rows) == 0:
        return [], episode
    run = _Run(cfg, episode, lab, sensor, conds)
    active_rows = rows[conds.active[rows]]
    pos = 0
    while pos < len(rows):
        if run.idle:  # nothing pending or open: only an active sample can matter
            nxt = np.searchsorted(active_rows, rows[pos])
            if nxt == len(active_rows):
                break
            pos = int(np.searchsorted(rows, active_rows[nxt]))
        run.step(int(rows[pos]))
        pos += 1
    return run.events, replace(run.ep, last_ts=int(conds.ts[rows].max()))


def track_all(
    policy: Mapping[str, LifecycleConfig],
    episodes: Mapping[str, Episode],
    lab: str,
    sensor: str,
    batches: Iterable[Conditions],
) -> tuple[list[Alert], dict[str, Episode]]:
    """``track`` every batch under its key (``episode_key``); returns events and all states."""
    states = dict(episodes)
    events: list[Alert] = []
    for conds in batches:
        key = episode_key(conds.kind, conds.quantity)
        out, states[key] = track(
            config_for(policy, conds.kind), states.get(key, Episode()), lab, sensor, conds
        )
        events.extend(out)
    return events, states


class _Run:
    """The state machine over one batch; ``ep`` is replaced, never mutated."""

    def __init__(
        self, cfg: LifecycleConfig, ep: Episode, lab: str, sensor: str, conds: Conditions
    ) -> None:
        self.cfg, self.ep, self.lab, self.sensor, self.c = cfg, ep, lab, sensor, conds
        self.events: list[Alert] = []

    @property
    def idle(self) -> bool:
        return self.ep.alert_id is None and self.ep.pending_since is None

    def step(self, i: int) -> None:
        if self.ep.alert_id is None:
            self._pending(i)
        else:
            self._open(i)

    def _pending(self, i: int) -> None:
        c, ep = self.c, self.ep
        if not c.active[i]:
            self.ep = replace(ep, pending_since=None, pending_count=0)  # a blip: forget it
            return
        ts = int(c.ts[i])
        since = ts if ep.pending_since is None else ep.pending_since
        count = ep.pending_count + 1
        long_enough = ts - since >= self.cfg.min_duration_s * 1000
        if count < self.cfg.min_samples or not long_enough:
            self.ep = replace(ep, pending_since=since, pending_count=count)
            return
        value = float(c.value[i])
        self.ep = replace(
            ep,
            pending_since=None,
            pending_count=0,
            alert_id=alert_id(self.lab, self.sensor, c.kind, c.quantity, since),
            started=since,
            seq=0,
            direction=-1 if value < c.threshold[i] else 1,
            peak=value,
        )
        self._emit(i, AlertState.OPEN)

    def _open(self, i: int) -> None:
        c, ep, cfg = self.c, self.ep, self.cfg
        value, ts = float(c.value[i]), int(c.ts[i])
        worse = ep.direction * value
        held = c.clear_threshold is not None and worse > ep.direction * c.clear_threshold
        if c.active[i] or held:
            self.ep = ep = replace(
                ep,
                clearing_since=None,
                clearing_count=0,
                peak=value if ep.peak is None or worse > ep.direction * ep.peak else ep.peak,
            )
            if not c.active[i]:
                return
            last = value if ep.value is None else ep.value
            step = cfg.worsen_by
            if int(c.severity[i]) != ep.severity or (
                step is not None and worse - ep.direction * last >= step
            ):
                self._emit(i, AlertState.UPDATE)
            return
        since = ts if ep.clearing_since is None else ep.clearing_since
        count = ep.clearing_count + 1
        if count >= cfg.clear_samples and ts - since >= cfg.clear_after_s * 1000:
            self._emit(i, AlertState.RESOLVED, ended=since)
            self.ep = Episode()
        else:
            self.ep = replace(ep, clearing_since=since, clearing_count=count)

    def _emit(self, i: int, state: AlertState, ended: int | None = None) -> None:
        c, ep = self.c, self.ep
        resolved = state is AlertState.RESOLVED
        seq = ep.seq + 1 if state is not AlertState.OPEN else 0
        severity = Severity(ep.severity) if resolved else Severity(int(c.severity[i]))
        value, threshold = float(c.value[i]), float(c.threshold[i])
        ref = None if c.reference is None or np.isnan(c.reference[i]) else float(c.reference[i])
        peak = ep.peak if ep.peak is not None else value
        nl, en = render(
            kind=c.kind,
            quantity=c.quantity,
            state=state.value,
            sensor=self.sensor,
            value=value,
            threshold=threshold,
            reference=ref,
            peak=peak,
            unit=c.unit,
        )
        assert ep.alert_id is not None and ep.started is not None
        self.events.append(
            Alert(
                id=ep.alert_id,
                lab=self.lab,
                sensor=self.sensor,
                kind=c.kind,
                quantity=c.quantity,
                severity=severity,
                state=state,
                seq=seq,
                started=ep.started,
                ended=ended,
                ts=int(c.ts[i]),
                value=value,
                threshold=threshold,
                peak=peak,
                reference=ref,
                unit=c.unit,
                window=c.window,
                message_nl=nl,
                message_en=en,
            )
        )
        if not resolved:
            self.ep = replace(ep, seq=seq, severity=int(severity), value=value)
