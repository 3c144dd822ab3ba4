"""Every query a panel or the report runs, with the columns its reader needs.

Time-series queries return long rows (time, sensor, values...); the plugin pivots them
into one series per unit. Table queries return one row per unit or alert.
"""

from __future__ import annotations

from dashboards.grafana import Query
from dashboards.limits import Line, PeriodNorm
from dashboards.sql import (
    HOURLY_VALID,
    LAB,
    TZ,
    UNITS,
    constant_lines,
    energetic_mean,
    hourly_and_running,
    lden_days,
    lki_hourly,
    period_norm_line,
    units_table,
)
from livinglab.registry import Lab

# Buckets never finer than the readings (one a minute), whatever Grafana's interval.
_MINUTE_BUCKET = "toStartOfInterval(ts, toIntervalSecond(greatest($__interval_s, 60)))"


def lines(reference: list[Line] | tuple[Line, ...]) -> Query:
    return Query(constant_lines(reference), ("time", *(line.label for line in reference)))


def period_norm(norm: PeriodNorm) -> Query:
    return Query(period_norm_line(norm), ("time", norm.label))


def _noise_minutes(quantity: str, aggregate: str, name: str) -> Query:
    sql = f"""SELECT {_MINUTE_BUCKET} AS time, sensor, {aggregate} AS {name}
FROM readings FINAL
WHERE {LAB} AND quantity = '{quantity}' AND {UNITS} AND $__timeFilter(ts)
GROUP BY time, sensor
ORDER BY time, sensor"""
    return Query(sql, ("time", "sensor", name))


def laeq_minutes() -> Query:
    """LAeq per minute (the readings), energetic means when Grafana asks for coarser steps."""
    return _noise_minutes("laeq", energetic_mean("value"), "LAeq")


def lamax_minutes() -> Query:
    return _noise_minutes("lamax", "max(value)", "LAmax")


def daily_level(column: str) -> Query:
    """One column of lden_days (Lden or Lnight) per unit and day."""
    sql = f"SELECT time, sensor, {column} FROM ({lden_days()}) ORDER BY time, sensor"
    return Query(sql, ("time", "sensor", column))


def lden_table() -> Query:
    """All day levels with coverage: the report's noise data."""
    columns = ("time", "sensor", "Lden", "Lday", "Levening", "Lnight", "coverage")
    sql = f"SELECT {', '.join(columns)} FROM ({lden_days()}) ORDER BY time, sensor"
    return Query(sql, columns, table=True)


def air_running(quantity: str, hours: int, min_valid: int) -> Query:
    name = f"mean_{hours}h"
    return Query(
        hourly_and_running(quantity, hours, min_valid, name), ("time", "sensor", "hourly", name)
    )


def lki_units() -> Query:
    return Query(lki_hourly(per_unit=True), ("time", "sensor", "LKI"))


def lki_lab() -> Query:
    return Query(lki_hourly(per_unit=False), ("time", "LKI"))


def quantity_hourly() -> Query:
    """The hourly mean of the quantity picked in the `quantity` variable (energetic for
    noise levels: that is how the aggregates are stored)."""
    sql = f"""SELECT window_start AS time, sensor, mean
FROM aggregates FINAL
WHERE {LAB} AND quantity = '${{quantity}}' AND window = '1h' AND {UNITS}
  AND $__timeFilter(window_start)
ORDER BY time, sensor"""
    return Query(sql, ("time", "sensor", "mean"))


def quantities() -> str:
    """Query of the `quantity` template variable: what the lab actually measures."""
    return f"SELECT DISTINCT quantity FROM aggregates WHERE {LAB} ORDER BY quantity"


# An episode's latest message wins; on a tie in time, the one that resolves it.
_ALERT_EPISODES = f"""SELECT id, any(sensor) AS unit, any(kind) AS kind,
    argMax(severity, rank) AS severity, argMax(state, rank) AS state, min(started) AS started,
    argMax(ended, rank) AS ended, max(ts) AS updated, argMax(value, rank) AS value,
    argMax(threshold, rank) AS threshold, argMax(message, rank) AS message
  FROM (
    SELECT *, (ts, state = 'resolved') AS rank FROM alerts FINAL
    WHERE {LAB} AND {UNITS} AND started <= $__toTime
  )
  GROUP BY id"""

ALERT_COLUMNS = (
    "started",
    "unit",
    "kind",
    "severity",
    "state",
    "value",
    "threshold",
    "message",
    "ended",
    "updated",
    "id",
)


def alerts() -> Query:
    """Alert episodes (one row each, in their latest state) that are open now or had news
    in the time range: open ones first, newest first."""
    sql = f"""SELECT {", ".join(ALERT_COLUMNS)}
FROM ({_ALERT_EPISODES})
WHERE state != 'resolved' OR updated >= $__fromTime
ORDER BY state = 'resolved', updated DESC
LIMIT 500"""
    return Query(sql, ALERT_COLUMNS, table=True)


def alert_annotations() -> Query:
    """Alert episodes as Grafana annotations: a region from start to end (to the end of
    the range while open), the unit and kind as tags."""
    sql = f"""SELECT started AS time,
  coalesce(ended, toDateTime64($__toTime, 3, 'UTC')) AS timeEnd,
  concat(unit, ': ', message, ' (', severity, ')') AS text,
  concat(unit, ',', kind, ',', severity) AS tags
FROM ({_ALERT_EPISODES})
WHERE state != 'resolved' OR updated >= $__fromTime
ORDER BY time"""
    return Query(sql, ("time", "timeEnd", "text", "tags"), table=True)


def unit_state(lab: Lab) -> Query:
    """Latest state of every registered unit, with its position for the map: `ok`,
    `alert` (open alerts), `offline` (silent for 3 reporting intervals before the end of
    the range) or `no data` (nothing in the range), and the last hourly mean of the
    picked quantity."""
    sql = f"""SELECT u.sensor AS unit, u.latitude AS latitude, u.longitude AS longitude,
  multiIf(s.last_seen IS NULL, 'no data',
    dateDiff('second', s.last_seen, $__toTime) > 3 * u.interval_s, 'offline',
    ifNull(a.open_alerts, 0) > 0, 'alert', 'ok') AS state,
  s.last_seen AS last_seen, q.value AS value, ifNull(a.open_alerts, 0) AS open_alerts
FROM {units_table(lab)} AS u
LEFT JOIN (
  SELECT sensor, max(received_at) AS last_seen FROM uplinks FINAL
  WHERE {LAB} AND $__timeFilter(received_at) GROUP BY sensor
) AS s ON s.sensor = u.sensor
LEFT JOIN (
  SELECT sensor, argMax(mean, window_start) AS value FROM aggregates FINAL
  WHERE {LAB} AND quantity = '${{quantity}}' AND window = '1h' AND $__timeFilter(window_start)
  GROUP BY sensor
) AS q ON q.sensor = u.sensor
LEFT JOIN (
  SELECT unit AS sensor, count() AS open_alerts FROM ({_ALERT_EPISODES})
  WHERE state != 'resolved' GROUP BY unit
) AS a ON a.sensor = u.sensor
WHERE u.{UNITS}
ORDER BY unit
SETTINGS join_use_nulls = 1"""
    columns = ("unit", "latitude", "longitude", "state", "last_seen", "value", "open_alerts")
    return Query(sql, columns, table=True)


_BEST = "arrayMax(arrayFilter(x -> isNotNull(x), gateway_{0}))"


def unit_health(lab: Lab) -> Query:
    """Per registered unit over the time range: last uplink, share of the expected uplinks
    received, battery, median best-gateway RSSI and SNR, the gateways that heard it and the
    frame-counter resets (distinct sessions - 1)."""
    sql = f"""SELECT u.sensor AS unit, s.last_seen AS last_seen,
  round(100 * ifNull(s.uplinks, 0) * u.interval_s
    / greatest(dateDiff('second', $__fromTime, $__toTime), 1), 1) AS received_pct,
  b.battery AS battery, s.rssi AS rssi, s.snr AS snr, ifNull(s.gateways, 0) AS gateways,
  s.heard_by AS gateway_ids, ifNull(s.fcnt_resets, 0) AS fcnt_resets
FROM {units_table(lab)} AS u
LEFT JOIN (
  SELECT sensor, max(received_at) AS last_seen, count() AS uplinks,
    median({_BEST.format("rssi")}) AS rssi, median({_BEST.format("snr")}) AS snr,
    length(groupUniqArrayArray(gateway_ids)) AS gateways,
    arrayStringConcat(arraySort(groupUniqArrayArray(gateway_ids)), ', ') AS heard_by,
    uniqExact(session) - 1 AS fcnt_resets
  FROM uplinks FINAL WHERE {LAB} AND $__timeFilter(received_at) GROUP BY sensor
) AS s ON s.sensor = u.sensor
LEFT JOIN (
  SELECT sensor, argMax(value, ts) AS battery FROM readings FINAL
  WHERE {LAB} AND quantity = 'battery' AND $__timeFilter(ts) GROUP BY sensor
) AS b ON b.sensor = u.sensor
WHERE u.{UNITS}
ORDER BY unit
SETTINGS join_use_nulls = 1"""
    columns = (
        "unit",
        "last_seen",
        "received_pct",
        "battery",
        "rssi",
        "snr",
        "gateways",
        "gateway_ids",
        "fcnt_resets",
    )
    return Query(sql, columns, table=True)


def uplinks_hourly() -> Query:
    sql = f"""SELECT toStartOfHour(received_at) AS time, sensor, count() AS uplinks
FROM uplinks FINAL
WHERE {LAB} AND {UNITS} AND $__timeFilter(received_at)
GROUP BY time, sensor
ORDER BY time, sensor"""
    return Query(sql, ("time", "sensor", "uplinks"))


def radio() -> Query:
    """Median best-gateway RSSI and SNR per unit, at least per 5 minutes."""
    sql = f"""SELECT toStartOfInterval(received_at, toIntervalSecond(greatest($__interval_s, 300)))
    AS time, sensor, median({_BEST.format("rssi")}) AS rssi, median({_BEST.format("snr")}) AS snr
FROM uplinks FINAL
WHERE {LAB} AND {UNITS} AND $__timeFilter(received_at)
GROUP BY time, sensor
ORDER BY time, sensor"""
    return Query(sql, ("time", "sensor", "rssi", "snr"))


def battery() -> Query:
    sql = f"""SELECT window_start AS time, sensor, mean AS battery
FROM aggregates FINAL
WHERE {LAB} AND quantity = 'battery' AND window = '1h' AND {UNITS}
  AND $__timeFilter(window_start)
ORDER BY time, sensor"""
    return Query(sql, ("time", "sensor", "battery"))


def daily_means(quantity: str) -> Query:
    """Mean of the valid hourly means per unit and local day; `valid` needs >= 18 hours."""
    sql = f"""SELECT toDateTime(day, {TZ}) AS time, sensor, avg(mean) AS mean, count() AS hours,
  hours >= 18 AS valid
FROM (
  SELECT sensor, toDate(window_start, {TZ}) AS day, mean FROM aggregates FINAL
  WHERE {LAB} AND quantity = '{quantity}' AND window = '1h' AND {HOURLY_VALID} AND {UNITS}
    AND $__timeFilter(window_start)
)
GROUP BY time, sensor
ORDER BY time, sensor"""
    return Query(sql, ("time", "sensor", "mean", "hours", "valid"), table=True)


def received_per_period(lab: Lab, daily: bool) -> Query:
    """Share of the expected uplinks received per unit and local day (or hour) of the time
    range: the data coverage a reader should weigh every other figure by. A period cut by
    the range (today, so far) expects only its part inside it."""
    bucket, bucket_end = (
        (f"toStartOfDay(received_at, {TZ})", f"toStartOfDay(time + INTERVAL 26 HOUR, {TZ})")
        if daily
        else ("toStartOfHour(received_at)", "time + INTERVAL 1 HOUR")
    )
    expected_s = f"dateDiff('second', greatest(time, $__fromTime), least({bucket_end}, $__toTime))"
    sql = f"""SELECT {bucket} AS time, u.sensor AS sensor,
  least(100, 100 * count() * any(u.interval_s) / greatest({expected_s}, 1)) AS received_pct
FROM uplinks AS r FINAL
INNER JOIN {units_table(lab)} AS u ON u.sensor = r.sensor
WHERE r.{LAB} AND r.{UNITS} AND $__timeFilter(received_at)
GROUP BY time, sensor
ORDER BY time, sensor"""
    return Query(sql, ("time", "sensor", "received_pct"), table=True)
