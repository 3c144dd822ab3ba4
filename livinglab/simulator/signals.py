"""Seeded, plausible noise and air signals for one unit (pure NumPy).

Shapes follow what Dutch living labs see: traffic-shaped noise with quiet nights and
rush-hour peaks; NO2 with rush hours; O3 peaking in the afternoon and depressed where
NO2 is high; PM drifting slowly and over-read in humid air; humidity high at night.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np


def _local_hours(ts_ms: np.ndarray, tz: str) -> np.ndarray:
    """Fractional local hour of day (0..24) for each timestamp, DST-aware."""
    zone = ZoneInfo(tz)
    # Offsets change at most a few times in a simulated span: evaluate per hour.
    hours = (ts_ms // 3_600_000).astype(np.int64)
    uniq = np.unique(hours)
    offsets = {
        h: datetime.fromtimestamp(h * 3600, UTC).astimezone(zone).utcoffset().total_seconds()
        for h in uniq
    }
    offset_s = np.array([offsets[h] for h in hours])
    return ((ts_ms / 1000 + offset_s) % 86400) / 3600


def _bump(hours: np.ndarray, centre: float, width: float) -> np.ndarray:
    d = np.minimum(np.abs(hours - centre), 24 - np.abs(hours - centre))
    return np.exp(-0.5 * (d / width) ** 2)


def _ar1(rng: np.random.Generator, n: int, rho: float, sigma: float) -> np.ndarray:
    """Slow random drift: an AR(1) process with stationary std `sigma`."""
    eps = rng.normal(0, sigma * np.sqrt(1 - rho**2), n)
    out = np.empty(n)
    acc = rng.normal(0, sigma)
    for i in range(n):
        acc = rho * acc + eps[i]
        out[i] = acc
    return out


def unit_signals(ts_ms: np.ndarray, tz: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """All quantities of one unit at the given event times."""
    n = len(ts_ms)
    h = _local_hours(ts_ms, tz)
    site = rng.normal(0, 3)  # a busier or quieter street
    traffic = 0.15 + 0.85 * np.clip(
        _bump(h, 8.0, 1.3) * 1.0 + _bump(h, 17.3, 1.6) * 0.95 + _bump(h, 13, 3.5) * 0.7, 0, 1
    )
    traffic = np.where((h < 5.5) | (h > 23.0), traffic * 0.35, traffic)
    laeq = 38 + site + 24 * traffic + rng.normal(0, 1.8, n)
    spread = 6 + 4 * traffic + rng.gamma(2.0, 1.2, n)
    noise = {
        "laeq": laeq,
        "lamax": laeq + spread + rng.gamma(2.0, 1.5, n),
        "lamin": laeq - 0.6 * spread,
        "l10": laeq + 0.35 * spread,
        "l50": laeq - 0.2 * spread,
        "l90": laeq - 0.5 * spread,
    }
    humidity = np.clip(78 + 12 * np.cos((h - 4) / 24 * 2 * np.pi) + _ar1(rng, n, 0.995, 5), 30, 100)
    temperature = 9 + 4 * np.cos((h - 15) / 24 * 2 * np.pi) + _ar1(rng, n, 0.998, 1.5)
    pm25_dry = np.clip(8 + _ar1(rng, n, 0.999, 3.5) + 3 * traffic, 1, None)
    humid = np.clip(humidity - 70, 0, None)
    pm25 = pm25_dry * (1 + 0.025 * humid + 0.0015 * humid**2) + rng.normal(0, 0.6, n)
    no2 = np.clip(12 + 28 * traffic + _ar1(rng, n, 0.995, 4) + rng.normal(0, 2, n), 0, None)
    o3 = np.clip(35 + 35 * _bump(h, 15, 3) - 0.4 * no2 + _ar1(rng, n, 0.997, 5), 0, None)
    air = {
        "pm1": np.clip(pm25 * 0.68 + rng.normal(0, 0.3, n), 0, None),
        "pm25": np.clip(pm25, 0, None),
        "pm10": np.clip(pm25 * 1.55 + rng.normal(0, 1.0, n), 0, None),
        "no2": no2,
        "o3": o3,
        "temperature": temperature,
        "humidity": humidity,
        "pressure": 1013 + _ar1(rng, n, 0.9995, 6),
        "battery": np.linspace(3.95, 3.9, n) + rng.normal(0, 0.005, n),
    }
    return {**noise, **air}
