"""Run every per-unit detector over a batch of one unit's readings.

This is what the readings agent calls per ``lab:sensor`` key: the state is one
small dict in a changelog-backed table, the batch is column arrays in event-time
order (one reading is a batch of one). Aggregate-driven checks (limits, spatial)
and the offline clock tick run elsewhere because their input is not a reading.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from livinglab.codec.payload import UNITS
from streams.detectors.condition import Conditions
from streams.detectors.config import PM, DetectorSettings
from streams.detectors.flatline import FlatlineState, detect_flatline
from streams.detectors.limits import any_beyond, check_limit, check_limit_in_period
from streams.detectors.offline import OfflineState, record_uplinks
from streams.detectors.range import any_outside, check_range
from streams.detectors.rate import RateState, detect_rate
from streams.detectors.reboot import RebootState, detect_reboots
from streams.detectors.spike import SpikeState, detect_spikes

_PER_QUANTITY = {"flatline": FlatlineState, "spike": SpikeState, "rate": RateState}


@dataclass(frozen=True)
class UnitState:
    """Detector state of one unit; a few hundred bytes as a dict."""

    flatline: dict[str, FlatlineState] = field(default_factory=dict)
    spike: dict[str, SpikeState] = field(default_factory=dict)
    rate: dict[str, RateState] = field(default_factory=dict)
    reboot: RebootState = field(default_factory=RebootState)
    offline: OfflineState = field(default_factory=OfflineState)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            name: {q: s.to_dict() for q, s in getattr(self, name).items()} for name in _PER_QUANTITY
        }
        out["reboot"] = self.reboot.to_dict()
        out["offline"] = self.offline.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UnitState:
        per_quantity = {
            name: {q: kind.from_dict(s) for q, s in data.get(name, {}).items()}
            for name, kind in _PER_QUANTITY.items()
        }
        return cls(
            **per_quantity,
            reboot=RebootState.from_dict(data.get("reboot", {})),
            offline=OfflineState.from_dict(data.get("offline", {})),
        )


def detect_unit(
    settings: DetectorSettings,
    state: UnitState,
    ts: np.ndarray,
    readings: Mapping[str, np.ndarray],
    reboot: np.ndarray | None = None,
    tz: str = "Europe/Amsterdam",
    needed: Callable[[str, str | None], bool] | None = None,
) -> tuple[list[Conditions], UnitState]:
    """Conditions of every configured detector for this batch, and the new state.

    ``readings`` maps quantity -> values aligned with ``ts`` (NaN = not measured);
    ``reboot`` flags readings that follow a device reset or frame-counter reset;
    ``tz`` is the lab's time zone, for limits that hold at certain hours only.
    Inactive conditions are returned too: the lifecycle needs them to resolve alerts.
    A stateless check (range, limit) that finds nothing is left out, though, unless
    ``needed(kind, quantity)`` says an open or pending episode waits for its samples
    (None: keep them all): on a stream of normal readings that saves most of the work.
    """
    ts = np.asarray(ts, dtype=np.int64)
    out: list[Conditions] = []
    flat, spike, rate = dict(state.flatline), dict(state.spike), dict(state.rate)

    def wanted(kind: str, quantity: str | None, bad: bool) -> bool:
        return bad or needed is None or needed(kind, quantity)

    for q, x in readings.items():
        unit = UNITS.get(q, "")
        for ranges in (settings.physical, settings.realistic):
            if q in ranges and wanted(ranges[q].kind, q, any_outside(ranges[q], x)):
                out.append(check_range(ranges[q], q, unit, ts, x))
        if q in settings.flatline:
            cfg = settings.flatline[q]
            group = {g: readings[g] for g in cfg.group if g in readings}
            conds, flat[q] = detect_flatline(cfg, flat.get(q, FlatlineState()), q, ts, x, group)
            out.append(conds)
        if q in settings.spike:
            cfg = settings.spike[q]
            conds, spike[q] = detect_spikes(cfg, spike.get(q, SpikeState()), q, unit, ts, x)
            out.append(conds)
        if q in settings.rate:
            cfg = settings.rate[q]
            conds, rate[q] = detect_rate(cfg, rate.get(q, RateState()), q, unit, ts, x)
            out.append(conds)
    for limit in settings.reading_limits.values():
        if limit.enabled and limit.quantity in readings:
            x, unit = readings[limit.quantity], UNITS.get(limit.quantity, "")
            if not wanted(limit.kind, limit.quantity, any_beyond(limit, x)):
                continue
            if limit.hours is None:
                out.append(check_limit(limit, unit, ts, x))
            else:
                out.extend(check_limit_in_period(limit, unit, ts, x, tz))
    humid, battery = settings.humidity_pm, settings.battery
    for limit, applies in ((humid, any(q in readings for q in PM)), (battery, True)):
        x = readings.get(limit.quantity) if applies else None
        if x is not None and wanted(limit.kind, limit.quantity, any_beyond(limit, x)):
            out.append(check_limit(limit, UNITS.get(limit.quantity, ""), ts, x))
    reboot_state = state.reboot
    if reboot is not None:
        conds, reboot_state = detect_reboots(settings.reboot, state.reboot, ts, reboot)
        out.append(conds)
    new_state = UnitState(
        flatline=flat,
        spike=spike,
        rate=rate,
        reboot=reboot_state,
        offline=record_uplinks(state.offline, ts),
    )
    return out, new_state
