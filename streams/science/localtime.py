"""Local civil time as epoch seconds: the science is defined on local days, the stream on UTC."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from numpy.typing import ArrayLike

DEFAULT_TZ = "Europe/Amsterdam"


def zone(tz: str | ZoneInfo) -> ZoneInfo:
    """Accept an IANA name or a ZoneInfo so callers can pass either."""
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


def local_epoch(day: date, hour: int, tz: str | ZoneInfo = DEFAULT_TZ) -> float:
    """Epoch seconds of `hour` o'clock local time on `day`; hours >= 24 roll into later days.

    A wall time that does not exist (inside a DST gap) maps to the instant of the gap, and
    an ambiguous one to its first occurrence (PEP 495 fold=0); Europe/Amsterdam switches
    at 02:00/03:00 so the noise and air period edges (00, 07, 19, 23 h) are never affected.
    """
    day = day + timedelta(days=hour // 24)
    return datetime.combine(day, time(hour % 24), zone(tz)).timestamp()


def local_days(epoch_s: ArrayLike, tz: str | ZoneInfo = DEFAULT_TZ) -> np.ndarray:
    """Local calendar date (datetime64[D]) of each instant, vectorised over the array.

    Converts only the few midnights in range with zoneinfo, then bins with searchsorted,
    so a year of hourly stamps costs ~365 zoneinfo calls instead of 8760.
    """
    t = np.asarray(epoch_s, dtype=np.float64)
    if t.size == 0:
        return np.empty(t.shape, dtype="datetime64[D]")
    tzinfo = zone(tz)
    first = datetime.fromtimestamp(float(t.min()), tzinfo).date()
    last = datetime.fromtimestamp(float(t.max()), tzinfo).date()
    n = (last - first).days + 1
    midnights = np.array([local_epoch(first + timedelta(days=k), 0, tzinfo) for k in range(n)])
    index = np.searchsorted(midnights, t, side="right") - 1
    return np.datetime64(first, "D") + index.astype("timedelta64[D]")
