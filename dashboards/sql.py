"""Domain science as ClickHouse SQL expressions, shared by every panel and the report.

The same rules as streams.science (DESIGN §5), computed from the stored hourly
aggregates so a panel works on any ClickHouse that holds them: energetic means for
decibels, Lden on local days (07:00 to 07:00, periods weighted by their real length so
DST days count 23 or 25 hours), the RIVM LKI sub-index from the band edges in
streams.science.airquality, and the 75 % validity rule.

Placeholders: `${lab}`, `${tz}` and `${unit:singlequote}` are Grafana template
variables (hidden constants for lab and time zone, the unit picker); `$__...` are the
ClickHouse plugin's macros. dashboards.macros expands both the way Grafana does.
"""

from __future__ import annotations

from collections.abc import Sequence

from dashboards.limits import Line, PeriodNorm
from livinglab.registry import Lab
from streams.science.acoustics import (
    DAY_START_H,
    EVENING_PENALTY_DB,
    EVENING_START_H,
    NIGHT_PENALTY_DB,
    NIGHT_START_H,
)
from streams.science.airquality import LKI_EDGES, LKI_MAX

LAB = "lab = '${lab}'"
UNITS = "sensor IN (${unit:singlequote})"
TZ = "'${tz}'"
# An hourly mean is valid with >= 75 % of its expected samples (DESIGN §5). One place to
# change when the aggregates table gets its own `valid` column.
HOURLY_VALID = "coverage >= 0.75"
LKI_POLLUTANTS = ("pm25", "pm10", "no2", "o3")


def quote_name(name: str) -> str:
    """A column alias that may hold spaces and punctuation (not double quotes)."""
    if '"' in name or "$" in name:
        raise ValueError(f"column name {name!r} cannot be quoted safely")
    return f'"{name}"'


def energetic_mean(expr: str) -> str:
    """LAeq of equally long intervals: 10*log10(mean of 10^(L/10)); never avg(dB)."""
    return f"10 * log10(avg(exp10({expr} / 10)))"


def local_period(hour_expr: str) -> str:
    """0 day, 1 evening, 2 night for a local hour of day."""
    return (
        f"multiIf({hour_expr} >= {DAY_START_H} AND {hour_expr} < {EVENING_START_H}, 0, "
        f"{hour_expr} >= {EVENING_START_H} AND {hour_expr} < {NIGHT_START_H}, 1, 2)"
    )


def lki_subindex(pollutant: str, conc: str) -> str:
    """Continuous LKI sub-index I = (i-1) + (C - C(i-1)) / (C(i) - C(i-1)); 11 above the
    last edge; negative C counts as 0; NULL stays NULL."""
    c = f"greatest({conc}, 0)"
    branches, lower = [], 0.0
    for i, upper in enumerate(LKI_EDGES[pollutant]):
        branches.append(f"{c} <= {upper:g}, {i} + ({c} - {lower:g}) / {upper - lower:g}")
        lower = upper
    return f"if(isNull({conc}), NULL, multiIf({', '.join(branches)}, {LKI_MAX}))"


def lki_total(subindex_array: str) -> str:
    """Total LKI of an array of sub-indices (NULLs removed): the highest, one point higher
    (capped at 11) when at least two pollutants share the same integer level."""
    levels = f"arrayMap(x -> greatest(ceil(x), 1), {subindex_array})"
    return (
        f"if(empty({subindex_array}), NULL, least(arrayMax({subindex_array}) + "
        f"if(length({subindex_array}) >= 2 AND arrayMin({levels}) = arrayMax({levels}), 1, 0), "
        f"{LKI_MAX}))"
    )


def lki_from_columns(columns: Sequence[tuple[str, str]]) -> str:
    """Total LKI from (pollutant, concentration column) pairs."""
    subs = ", ".join(lki_subindex(p, c) for p, c in columns)
    return lki_total(f"arrayFilter(x -> isNotNull(x), [{subs}])")


def constant_lines(lines: Sequence[Line]) -> str:
    """Horizontal reference lines across the panel's time range, one column each."""
    values = ", ".join(f"{line.value:g} AS {quote_name(line.label)}" for line in lines)
    return f"SELECT arrayJoin([$__fromTime, $__toTime]) AS time, {values} ORDER BY time"


def period_norm_line(norm: PeriodNorm) -> str:
    """A limit that steps between day, evening and night values at the local period edges."""
    hour = f"toHour(time, {TZ})"
    return (
        f"SELECT toStartOfHour($__fromTime) + toIntervalHour(number) AS time, "
        f"[{norm.day:g}, {norm.evening:g}, {norm.night:g}][{local_period(hour)} + 1] "
        f"AS {quote_name(norm.label)} "
        f"FROM numbers(toUInt64(dateDiff('hour', $__fromTime, $__toTime) + 2)) ORDER BY time"
    )


def units_table(lab: Lab) -> str:
    """The lab's units from the registry as a table: positions and reporting intervals
    are not in ClickHouse, and units that never reported must still show up."""
    rows = ", ".join(
        f"('{u.sensor}', {u.latitude!r}, {u.longitude!r}, {u.uplink_interval_s})" for u in lab.units
    )
    return (
        f"values('sensor String, latitude Float64, longitude Float64, interval_s UInt32', {rows})"
    )


def lden_day(time: str) -> str:
    """The local day whose Lden a moment counts for: the day period starts it at 07:00."""
    return f"(toDate({time}, {TZ}) - if(toHour({time}, {TZ}) < {DAY_START_H}, 1, 0))"


def lden_days() -> str:
    """Lday, Levening, Lnight and Lden per unit and local day from the hourly LAeq.

    Day D runs 07:00 D to 07:00 D+1 local time (as streams.science.acoustics.day_levels).
    Each hour contributes its energy (covered seconds x 10^(LAeq/10)) to its period; a
    period's level is the LAeq over its covered time; Lden weights the periods by their
    real length (the night is 7 or 9 h on DST days) and needs all three. Every day that
    overlaps the time range is computed from all its hours; `coverage` tells how much of
    the day was measured. Columns: time (local midnight of D), sensor, Lden, Lday,
    Levening, Lnight, coverage.
    """
    start, end = (
        f"toDateTime(concat(toString(day{d}), ' {DAY_START_H:02d}:00:00'), {TZ})"
        for d in ("", " + 1")
    )
    span_s = f"dateDiff('second', {start}, {end})"
    day_h = EVENING_START_H - DAY_START_H
    evening_h = NIGHT_START_H - EVENING_START_H
    level = "if(t{p} > 0, 10 * log10(e{p} / t{p}), NULL)"
    return f"""SELECT toDateTime(day, {TZ}) AS time, sensor,
  if(td > 0 AND te > 0 AND tn > 0, 10 * log10(({day_h} * ed / td
    + {evening_h} * exp10({EVENING_PENALTY_DB:g} / 10) * ee / te
    + (span_s / 3600 - {day_h + evening_h}) * exp10({NIGHT_PENALTY_DB:g} / 10) * en / tn)
    / (span_s / 3600)), NULL) AS Lden,
  {level.format(p="d")} AS Lday, {level.format(p="e")} AS Levening,
  {level.format(p="n")} AS Lnight, (td + te + tn) / span_s AS coverage
FROM (
  SELECT sensor, day, {span_s} AS span_s,
    sumIf(e, p = 0) AS ed, sumIf(s, p = 0) AS td, sumIf(e, p = 1) AS ee,
    sumIf(s, p = 1) AS te, sumIf(e, p = 2) AS en, sumIf(s, p = 2) AS tn
  FROM (
    SELECT sensor, toHour(window_start, {TZ}) AS h, {local_period("h")} AS p,
      {lden_day("window_start")} AS day,
      coverage * dateDiff('second', window_start, window_end) AS s, s * exp10(mean / 10) AS e
    FROM aggregates FINAL
    WHERE {LAB} AND quantity = 'laeq' AND window = '1h' AND {UNITS}
      AND window_start >= $__fromTime - INTERVAL 2 DAY
      AND window_start < $__toTime + INTERVAL 2 DAY
  )
  WHERE day BETWEEN {lden_day("$__fromTime")} AND {lden_day("$__toTime")}
  GROUP BY sensor, day
)"""


def hourly_and_running(quantity: str, hours: int, min_valid: int, name: str) -> str:
    """Hourly means and the trailing `hours`-hour running mean of the valid hours,
    given only with at least `min_valid` of them (PM 24 h: 18; O3 8 h: 6). Columns: time,
    sensor, hourly, `name`."""
    return f"""SELECT time, sensor, hourly, if(n >= {min_valid}, running, NULL) AS {name}
FROM (
  SELECT window_start AS time, sensor, mean AS hourly,
    avgIf(mean, {HOURLY_VALID}) OVER w AS running, countIf({HOURLY_VALID}) OVER w AS n
  FROM aggregates FINAL
  WHERE {LAB} AND quantity = '{quantity}' AND window = '1h' AND {UNITS}
    AND window_start >= $__fromTime - INTERVAL {hours} HOUR AND window_start <= $__toTime
  WINDOW w AS (PARTITION BY sensor ORDER BY toUnixTimestamp(window_start)
    RANGE BETWEEN {(hours - 1) * 3600} PRECEDING AND CURRENT ROW)
)
WHERE $__timeFilter(time)
ORDER BY time, sensor"""


def lki_hourly(per_unit: bool) -> str:
    """Hourly LKI from valid hourly means: per unit (columns time, sensor, LKI), or for
    the lab from the median over its units of each pollutant (columns time, LKI), which a
    single drifting sensor cannot move."""
    pick = "avgOrNullIf" if per_unit else "medianExactOrNullIf"
    pollutants = ", ".join(f"{pick}(mean, quantity = '{p}') AS {p}" for p in LKI_POLLUTANTS)
    keys = "time, sensor" if per_unit else "time"
    units = f" AND {UNITS}" if per_unit else ""
    lki = lki_from_columns([(p, p) for p in LKI_POLLUTANTS])
    return f"""SELECT {keys}, {lki} AS LKI
FROM (
  SELECT window_start AS time{", sensor" if per_unit else ""}, {pollutants}
  FROM aggregates FINAL
  WHERE {LAB} AND window = '1h' AND quantity IN ({", ".join(f"'{p}'" for p in LKI_POLLUTANTS)})
    AND {HOURLY_VALID}{units} AND $__timeFilter(window_start)
  GROUP BY {keys}
)
ORDER BY {keys}"""
