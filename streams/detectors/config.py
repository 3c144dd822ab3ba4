"""All detector settings of one lab, with defaults, and per-lab overrides from the registry.

Defaults follow DESIGN.md §5 where it gives numbers (ranges, flatline run, Hampel
k and z, humidity, noise and air limits); the rest (rate limits, spike scale floors,
spatial margins, battery voltages, offline interval) are engineering defaults
marked as such, meant to be tuned per lab. A registry section overrides any field:

    detectors:
      offline: {factor: 5}
      spike: {pm25: {k: 5}, laeq: {min_scale: 0.5}}   # adds a detector for laeq
      rate: {pressure: null}                             # removes one
      limits: {threshold.noise_business_night: {enabled: true}}
      reading_limits: {threshold.noise_night_level: {tiers: [[65, warning]]}}
      fog: {quorum: 0.3}

Unknown keys raise, so a typo in the registry fails loudly instead of being ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from enum import Enum
from typing import Any, TypeVar

from streams.detectors.condition import Severity
from streams.detectors.flatline import FlatlineConfig
from streams.detectors.fog import FogConfig
from streams.detectors.limits import Limit
from streams.detectors.offline import OfflineConfig
from streams.detectors.range import REALISTIC, RangeConfig
from streams.detectors.rate import RateConfig
from streams.detectors.reboot import RebootConfig
from streams.detectors.spatial import SpatialConfig
from streams.detectors.spike import SpikeConfig
from streams.detectors.thresholds import AGGREGATE_LIMITS

T = TypeVar("T")

NOISE = ("laeq", "lamax", "lamin", "l10", "l50", "l90")
PM = ("pm1", "pm25", "pm10")
GASES = ("no2", "o3")
CLIMATE = ("temperature", "humidity", "pressure")


def _default_physical() -> dict[str, RangeConfig]:
    """DESIGN §5 (Smart Emission): PM 0–999, RH 0–100, −25…60 °C, 200–1100 hPa, 0–195 dB(A)."""
    return {
        **{q: RangeConfig(0.0, 999.0) for q in PM},
        "humidity": RangeConfig(0.0, 100.0),
        "temperature": RangeConfig(-25.0, 60.0),
        "pressure": RangeConfig(200.0, 1100.0),
        **{q: RangeConfig(0.0, 195.0) for q in NOISE},
    }


def _default_realistic() -> dict[str, RangeConfig]:
    """DESIGN §5: noise realistically 25–130 dB(A); LAmax left out (fireworks exceed 130)."""
    return {"laeq": RangeConfig(25.0, 130.0, kind=REALISTIC, severity=Severity.INFO)}


def _default_flatline() -> dict[str, FlatlineConfig]:
    """EPA sensortoolkit's >= 3 identical values, on raw readings of a whole module.

    Alone, one channel at 0.1 resolution repeats three times several times a day by
    chance; a module's channels repeating together (PM1/PM2.5/PM10 of the optical
    counter, the noise levels, the gas board, the climate chip) practically never
    does, so a frozen module is caught on its third reading, not after two hours.
    """
    groups = {"pm25": ("pm1", "pm10"), "laeq": ("lamax", "lamin"), "no2": ("o3",),
              "temperature": ("humidity", "pressure")}  # fmt: skip
    return {q: FlatlineConfig(min_span_s=0.0, group=g) for q, g in groups.items()}


def _default_spike() -> dict[str, SpikeConfig]:
    """DESIGN §5's Hampel filter at its wide end (k = 5), judged at z = 5, not 3.

    z = 3 over minute readings flags ~0.3 % of normal readings (several a day per
    unit) and a short window's MAD is itself noisy; k = 5, z = 5 and scale floors of
    about twice the readings' short-term noise leave spikes that are events (measured
    on the simulator: none in 49 lab-days). One channel stands for each module (PM2.5
    for the optical counter, NO2 for the gas board), as the spatial check does. Noise
    has none: a loud event is real, not a fault; the climate's faults show as rates.
    """
    floors = {"pm25": 2.0, "no2": 4.0}
    return {q: SpikeConfig(k=5, z=5.0, min_scale=s) for q, s in floors.items()}


def _default_rate() -> dict[str, RateConfig]:
    """Engineering defaults, per minute: faster than open air changes between two uplinks."""
    return {
        "temperature": RateConfig(1.0),
        "humidity": RateConfig(5.0),
        "pressure": RateConfig(1.0),
    }


def _default_spatial() -> dict[str, SpatialConfig]:
    """Engineering defaults: (min_diff, ratio), outlying six hours in a row.

    One PM channel stands for the optical counter (its PM1 and PM10 drift with it).
    Units of one lab differ by up to 2-3x in humid hours (each sits in its own
    microclimate), so PM needs 3x its peers and 15 µg/m³; on the simulated fleet that
    leaves about one false alert in 49 lab-days and finds a +2.5 µg/m³/h drift within
    a day. Temperature, humidity and pressure are left to labs that know their units
    agree (add them with e.g. ``temperature: {min_diff: 3, ratio: null}``).
    """
    margins = {"pm25": (15.0, 3.0), "no2": (20.0, 2.0), "o3": (20.0, 2.0)}
    return {
        q: SpatialConfig(min_diff=d, ratio=r, window=6, min_hits=6) for q, (d, r) in margins.items()
    }


def _default_limits() -> dict[str, Limit]:
    """DESIGN §5's limits, alerting by default where a legal limit value is exceeded.

    The WHO guidelines are opt-in per lab: the noise ones (Lnight, Lden) are annual
    values, judged per night or day only indicatively, and the info tiers of the air
    limits are WHO daily guidelines; on the simulated fleet either would alert most
    units every day. E.g. ``limits: {threshold.pm25_day: {tiers: [[15, info], [25,
    warning]]}, threshold.noise_night: {enabled: true}}`` brings them back.
    """
    out = {}
    for limit in AGGREGATE_LIMITS:
        if limit.kind in WHO_GUIDELINES:
            limit = replace(limit, enabled=False)
        elif limit.enabled and limit.tiers[0][1] is Severity.INFO:
            limit = replace(limit, tiers=tuple(t for t in limit.tiers if t[1] > Severity.INFO))
        out[limit.kind] = limit
    return out


WHO_GUIDELINES = ("threshold.noise_night", "threshold.noise_lden")


HUMIDITY_PM = Limit(
    "humidity_pm", "humidity", ((98.0, Severity.INFO),), hysteresis=2.0,
    source="DESIGN §5: low-cost PM over-reads in fog; above ~70 % RH readings are only flagged",
)  # fmt: skip
NIGHT_NOISE = Limit(
    "threshold.noise_night_level", "laeq", ((70.0, Severity.WARNING),), hysteresis=3.0,
    hours=(23.0, 7.0), source="engineering default: 1-min LAeq at night (23-07) above 70 "
    "dB(A), beyond even the Activiteitenbesluit night LAmax 60; traffic stays below",
)  # fmt: skip
BATTERY_LOW = Limit(
    "battery_low", "battery", ((3.5, Severity.WARNING), (3.3, Severity.CRITICAL)), lower=True,
    hysteresis=0.1, source="engineering default for a single Li-ion cell (3.7 V nominal)",
)  # fmt: skip


@dataclass(frozen=True)
class DetectorSettings:
    """Every detector's configuration for one lab; per-quantity dicts choose what runs."""

    physical: dict[str, RangeConfig] = field(
        default_factory=_default_physical, metadata={"item": RangeConfig}
    )
    realistic: dict[str, RangeConfig] = field(
        default_factory=_default_realistic, metadata={"item": RangeConfig}
    )
    flatline: dict[str, FlatlineConfig] = field(
        default_factory=_default_flatline, metadata={"item": FlatlineConfig}
    )
    spike: dict[str, SpikeConfig] = field(
        default_factory=_default_spike, metadata={"item": SpikeConfig}
    )
    rate: dict[str, RateConfig] = field(
        default_factory=_default_rate, metadata={"item": RateConfig}
    )
    spatial: dict[str, SpatialConfig] = field(
        default_factory=_default_spatial, metadata={"item": SpatialConfig}
    )
    limits: dict[str, Limit] = field(
        default_factory=_default_limits, metadata={"item": Limit, "key": "kind"}
    )
    reading_limits: dict[str, Limit] = field(
        default_factory=lambda: {NIGHT_NOISE.kind: NIGHT_NOISE},
        metadata={"item": Limit, "key": "kind"},
    )
    humidity_pm: Limit = HUMIDITY_PM
    fog: FogConfig = field(default_factory=FogConfig)
    battery: Limit = BATTERY_LOW
    reboot: RebootConfig = field(default_factory=RebootConfig)
    offline: OfflineConfig = field(default_factory=OfflineConfig)

    @classmethod
    def from_mapping(cls, overrides: Mapping[str, Any] | None) -> DetectorSettings:
        """Defaults with a registry section (parsed YAML) applied on top."""
        return override(cls(), overrides or {})


def override(config: T, changes: Mapping[str, Any], path: str = "") -> T:
    """A copy of dataclass ``config`` with ``changes`` applied, recursing into nested configs.

    In per-quantity dicts a mapping updates (or adds) an entry and None removes it.
    Errors are ValueErrors naming the setting (``path``, e.g. ``spike.pm25.k``).
    """
    if not isinstance(changes, Mapping):
        raise ValueError(f"{path or 'settings'}: expected a mapping, got {changes!r}")
    known = {f.name: f for f in fields(config)}  # type: ignore[arg-type]
    unknown = set(changes) - set(known)
    if unknown:
        where = f"{path}: " if path else ""
        raise ValueError(f"{where}unknown setting {sorted(unknown)}; known: {sorted(known)}")
    updates: dict[str, Any] = {}
    for name, new in changes.items():
        old, here = getattr(config, name), f"{path}.{name}" if path else name
        item = known[name].metadata.get("item")
        if item is not None:
            updates[name] = _override_items(old, new, item, known[name].metadata.get("key"), here)
        elif is_dataclass(old):
            updates[name] = override(old, new, here)
        else:
            updates[name] = _checked(old, new, here)
    try:
        return replace(config, **updates)  # type: ignore[type-var]
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{path or 'settings'}: {exc}") from None


def _checked(old: Any, new: Any, path: str) -> Any:
    """A scalar setting keeps its kind: numbers stay numbers, switches stay booleans."""
    number = isinstance(old, int | float) and not isinstance(old, bool | Enum)
    if isinstance(old, bool) and not isinstance(new, bool):
        raise ValueError(f"{path}: expected true or false, got {new!r}")
    if number and (not isinstance(new, int | float) or isinstance(new, bool)):
        raise ValueError(f"{path}: expected a number, got {new!r}")
    return new


def _override_items(
    old: Mapping[str, Any], changes: Any, item: type, key: str | None, path: str
) -> dict[str, Any]:
    if not isinstance(changes, Mapping):
        raise ValueError(f"{path}: expected a mapping, got {changes!r}")
    merged = dict(old)
    for name, new in changes.items():
        here = f"{path}.{name}"
        if new is None:
            merged.pop(name, None)
        elif name in merged:
            merged[name] = override(merged[name], new, here)
        elif not isinstance(new, Mapping):
            raise ValueError(f"{here}: expected a mapping or null, got {new!r}")
        else:
            try:
                merged[name] = item(**({key: name} if key else {}), **new)
            except (ValueError, TypeError, KeyError) as exc:
                raise ValueError(f"{here}: {exc}") from None
    return merged
