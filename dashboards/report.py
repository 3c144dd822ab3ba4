"""A static HTML report of one lab's last days, for a council member.

It runs the dashboards' own SQL (dashboards.queries, expanded by dashboards.macros as
Grafana would), so the report and the dashboards show the same numbers, draws four
charts and writes them with a plain-language page and a `report.json` manifest saying
what each chart holds.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from dashboards import charts, limits
from dashboards import queries as q
from dashboards.macros import QueryContext, render
from dashboards.reader import Reader
from livinglab.registry import Lab

DAILY_COVERAGE_AFTER_DAYS = 2  # longer reports show coverage per day, shorter per hour
NOISE_FLOOR_DB = 30.0  # quiet-night level: noise bars rise from here, not from 0 dB


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def period(reader: Reader, lab: Lab, days: int) -> tuple[datetime, datetime]:
    """The last `days` local days up to the lab's newest uplink (now when it has none)."""
    [row] = reader.rows(
        f"SELECT max(received_at) AS last, count() AS n FROM uplinks WHERE lab = '{lab.id}'"
    )
    last = _time(row["last"]) if int(row["n"]) else datetime.now(UTC)
    end = last.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    zone = ZoneInfo(lab.timezone)
    last_day = (end - timedelta(seconds=1)).astimezone(zone).date()
    first_day = last_day - timedelta(days=days - 1)
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=zone).astimezone(UTC)
    return start, end


class _Data:
    """The lab's rows for the period, from the panel queries."""

    def __init__(self, reader: Reader, lab: Lab, start: datetime, end: datetime) -> None:
        self.ctx = QueryContext(start, end, timedelta(hours=1))
        self.vars = {"lab": lab.id, "tz": lab.timezone, "unit": [u.sensor for u in lab.units]}
        self.reader = reader

    def rows(self, sql: str) -> list[dict]:
        return self.reader.rows(render(sql, self.ctx, self.vars))


def _day(text: str, tz: str) -> str:
    return _time(text).astimezone(ZoneInfo(tz)).strftime("%a %d %b")


def _noise_chart(
    data: _Data, lab: Lab, units: list[str], days: list[str], out: Path
) -> tuple[int, dict]:
    rows = data.rows(q.lden_table().sql)
    lden, lnight = {}, {}
    for r in rows:
        key = (_day(r["time"], lab.timezone), r["sensor"])
        if r["Lden"] is not None:
            lden[key] = r["Lden"]
        if r["Lnight"] is not None:
            lnight[key] = r["Lnight"]
    drawn = charts.two_panel_daily(
        out,
        days,
        units,
        [
            (lden, set(), [limits.WHO_LDEN], "dB(A)", "Lden per day (geluidsbelasting per dag)"),
            (lnight, set(), [limits.WHO_LNIGHT], "dB(A)", "Lnight per night (nachtelijk geluid)"),
        ],
        ymin=NOISE_FLOOR_DB,
    )
    over = {
        "lden": sum(v > limits.WHO_LDEN.value for v in lden.values()),
        "lden_n": len(lden),
        "lnight": sum(v > limits.WHO_LNIGHT.value for v in lnight.values()),
        "lnight_n": len(lnight),
    }
    return drawn, over


def _pm_chart(
    data: _Data, lab: Lab, units: list[str], days: list[str], on: date, out: Path
) -> tuple[int, dict]:
    panels, summary = [], {}
    for pollutant, name in (("pm25", "PM2.5"), ("pm10", "PM10")):
        values, faded = {}, set()
        for r in data.rows(q.daily_means(pollutant).sql):
            key = (_day(r["time"], lab.timezone), r["sensor"])
            values[key] = r["mean"]
            if not int(r["valid"]):
                faded.add(key)
        lines = limits.air_lines(pollutant, ("24h",), on)
        who = min(line.value for line in lines if line.label.startswith("WHO"))
        valid = [v for k, v in values.items() if k not in faded]
        summary[pollutant] = {
            "days": len(valid),
            "over_who": sum(v > who for v in valid),
            "who": who,
        }
        panels.append(
            (values, faded, lines, "µg/m³", f"{name} daily mean (fijnstof, daggemiddelde)")
        )
    return charts.two_panel_daily(out, days, units, panels), summary


def _alerts(data: _Data) -> list[dict]:
    episodes = data.rows(q.alerts().sql)
    for e in episodes:
        for key in ("started", "ended", "updated"):
            e[key] = _time(e[key])
    return sorted(episodes, key=lambda e: e["started"])


def _coverage_chart(
    data: _Data, lab: Lab, units: list[str], start: datetime, end: datetime, days: int, out: Path
) -> tuple[int, dict]:
    daily = days > DAILY_COVERAGE_AFTER_DAYS
    received = {
        (_time(r["time"]), r["sensor"]): r["received_pct"]
        for r in data.rows(q.received_per_period(lab, daily).sql)
    }
    periods = charts.period_edges(start, end, daily, lab.timezone)
    drawn = charts.coverage_heatmap(out, units, periods, received, lab.timezone, daily)
    # A unit's share over the whole period weighs each day (or hour) by its part in it.
    weights = [
        (min(b, end) - max(p, start)).total_seconds() for p, b in zip(periods, [*periods[1:], end])
    ]
    per_unit = {
        u: sum(received.get((p, u), 0.0) * w for p, w in zip(periods, weights)) / sum(weights)
        for u in units
    }
    return drawn, per_unit


_CSS = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222;
  line-height:1.5}
h1{margin-bottom:.2rem} h2{margin-top:2.2rem;border-bottom:1px solid #ddd}
.sub{color:#555;margin-top:0} img{max-width:100%}
table{border-collapse:collapse;font-size:.9rem}
td,th{border-bottom:1px solid #eee;padding:.25rem .6rem;text-align:left}
.note{color:#555;font-size:.9rem}"""


def _alert_table(episodes: list[dict], tz: str) -> str:
    if not episodes:
        return "<p>No alerts in this period.</p>"
    zone = ZoneInfo(tz)

    def when(t: datetime | None) -> str:
        return t.astimezone(zone).strftime("%d %b %H:%M") if t else "still open"

    rows = "".join(
        f"<tr><td>{html.escape(e['unit'])}</td><td>{html.escape(charts.kind_words(e['kind']))}</td>"
        f"<td>{html.escape(e['severity'])}</td><td>{when(e['started'])}</td>"
        f"<td>{when(e['ended'])}</td><td>{html.escape(e['message'])}</td></tr>"
        for e in episodes
    )
    return (
        "<table><tr><th>Unit</th><th>What</th><th>Severity</th><th>Started</th><th>Ended</th>"
        f"<th>Message</th></tr>{rows}</table>"
    )


def _summary(facts: dict, episodes: list[dict]) -> list[str]:
    """The page's first lines: what a reader should take away, in plain words."""
    noise, pm25 = facts["noise"], facts["pm"]["pm25"]
    lines = []
    if noise["lden_n"]:
        lines.append(
            f"Noise: on {noise['lden']} of {noise['lden_n']} unit-days with day, evening and "
            f"night measured, Lden was above the WHO guideline of {limits.WHO_LDEN.value:g} dB."
        )
    else:
        lines.append("Noise: no day had its day, evening and night measured, so no Lden yet.")
    if noise["lnight_n"]:
        lines.append(
            f"Night noise: on {noise['lnight']} of {noise['lnight_n']} unit-nights Lnight was "
            f"above the WHO guideline of {limits.WHO_LNIGHT.value:g} dB."
        )
    if pm25["days"]:
        lines.append(
            f"Fine dust: on {pm25['over_who']} of {pm25['days']} unit-days the PM2.5 daily mean "
            f"was above the WHO guideline of {pm25['who']:g} µg/m³."
        )
    else:
        lines.append(
            "Fine dust: no day had the 18 measured hours a valid daily mean needs; the chart "
            "shows the incomplete days for information."
        )
    still_open = sum(e["ended"] is None for e in episodes)
    lines.append(f"Alerts: {len(episodes)} in this period, {still_open} still open.")
    worst = sorted(facts["coverage"].items(), key=lambda kv: kv[1])[:3]
    lines.append(
        "Data: least received (share of expected measurements): "
        + ", ".join(f"{html.escape(u)} {v:.0f} %" for u, v in worst)
        + "."
    )
    return lines


def _page(lab: Lab, start: datetime, end: datetime, facts: dict, episodes: list[dict]) -> str:
    zone = ZoneInfo(lab.timezone)
    span = f"{start.astimezone(zone):%d %B %Y %H:%M} to {end.astimezone(zone):%d %B %Y %H:%M}"
    name = html.escape(lab.name)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{name}: noise and air quality</title>
<style>{_CSS}</style></head><body>
<h1>{name}: noise and air quality</h1>
<p class="sub">Living lab report (meetrapport geluid en luchtkwaliteit), {span}
({html.escape(lab.timezone)}), {len(lab.units)} sensor units.</p>

<h2>In short (samenvatting)</h2>
<ul>{"".join(f"<li>{line}</li>" for line in _summary(facts, episodes))}</ul>

<h2>Noise (geluid)</h2>
<p>Lden is the average sound level over a day in which evening sound counts 5 dB and night sound
10 dB extra, because it disturbs more. The WHO advises keeping road-traffic noise below
{limits.WHO_LDEN.value:g} dB Lden and {limits.WHO_LNIGHT.value:g} dB at night (Lnight, 23:00-07:00).
A day counts from 07:00 to 07:00; Lden is only shown for days on which day, evening and night were
all measured. Daily values are indicative: the legal indicator is the yearly average.</p>
<img src="noise.png" alt="Lden and Lnight per unit and day against the WHO guidelines">

<h2>Fine dust (fijnstof)</h2>
<p>Daily means of PM2.5 and PM10 per unit, with the EU limit values (dashed red) and the WHO
guidelines (dashed orange). Pale bars are days with fewer than 18 measured hours: not enough for a
valid daily mean, shown for information only. These are low-cost sensors: read them as indications
next to the official RIVM stations.</p>
<img src="pm.png" alt="PM2.5 and PM10 daily means per unit against EU limits and WHO guidelines">

<h2>Alerts (meldingen)</h2>
<p>Each bar is one alert from when it started to when it ended; hatched bars are still open.</p>
<img src="alerts.png" alt="Alerts per unit on a time line">
{_alert_table(episodes, lab.timezone)}

<h2>Data coverage (datadekking)</h2>
<p>The share of expected measurements that arrived, per unit. Figures above rest on the data
that arrived; where coverage is low, read them with care.</p>
<img src="coverage.png" alt="Share of expected measurements received per unit">

<p class="note">Generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `livinglab report` from the
platform's ClickHouse store, with the same calculations as the Grafana dashboards.</p>
</body></html>
"""


def write_report(reader: Reader, lab: Lab, out: Path, days: int = 7) -> Path:
    """Write out/index.html, its four PNG charts and report.json; returns the index path."""
    out.mkdir(parents=True, exist_ok=True)
    start, end = period(reader, lab, days)
    data = _Data(reader, lab, start, end)
    units = [u.sensor for u in lab.units]
    day_labels = [
        p.astimezone(ZoneInfo(lab.timezone)).strftime("%a %d %b")
        for p in charts.period_edges(start, end, True, lab.timezone)
    ]
    noise_points, noise = _noise_chart(data, lab, units, day_labels, out / "noise.png")
    pm_points, pm = _pm_chart(data, lab, units, day_labels, end.date(), out / "pm.png")
    episodes = _alerts(data)
    alert_points = charts.alert_timeline(
        out / "alerts.png", units, episodes, start, end, lab.timezone
    )
    coverage_points, coverage = _coverage_chart(
        data, lab, units, start, end, days, out / "coverage.png"
    )
    facts = {"noise": noise, "pm": pm, "coverage": coverage}
    index = out / "index.html"
    index.write_text(_page(lab, start, end, facts, episodes), encoding="utf-8")
    manifest = {
        "lab": lab.id,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "charts": {
            "noise.png": noise_points,
            "pm.png": pm_points,
            "alerts.png": alert_points,
            "coverage.png": coverage_points,
        },
        "facts": facts,
    }
    (out / "report.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return index
