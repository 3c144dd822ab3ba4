"""The dashboards of one living lab, generated from its registry entry.

Four dashboards per lab, in the lab's own folder: an overview (map, alerts, LKI), noise,
air quality and unit health. The SQL is the same for every lab; the hidden constants
`lab` and `tz` and the unit list come from the registry. Uids are derived from the lab
id, so a rebuild or a push updates the same dashboards instead of adding new ones.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    DashboardLinkType,
    VariableOption,
    VariableRefresh,
)

from dashboards import limits
from dashboards import queries as q
from dashboards.grafana import DATASOURCE, Query, Target
from dashboards.panels import PanelSpec, grid, lki, lki_now, series, unit_map
from livinglab.registry import Lab

KINDS = ("overview", "noise", "air", "health")
UID_MAX = 40  # Grafana's limit
DB_A = "suffix: dB(A)"
UG_M3 = "conµgm3"


def _uid(lab_id: str, *suffix: str) -> str:
    """`ll-<lab>[-<suffix>]`, shortened with a hash of the lab id when too long for Grafana."""
    uid = "-".join(("ll", lab_id, *suffix))
    if len(uid) <= UID_MAX:
        return uid
    digest = hashlib.sha1(lab_id.encode()).hexdigest()[:8]
    room = UID_MAX - len("-".join(("ll", "", digest, *suffix)))
    return "-".join(("ll", lab_id[:room], digest, *suffix))


def folder_uid(lab_id: str) -> str:
    return _uid(lab_id)


def dashboard_uid(lab_id: str, kind: str) -> str:
    return _uid(lab_id, kind)


@dataclass(frozen=True)
class LabDashboard:
    lab: Lab
    kind: str
    uid: str
    model: dict
    panels: tuple[PanelSpec, ...]
    variable_queries: dict[str, str]
    annotations: tuple[Query, ...] = ()


def variables(lab: Lab, with_quantity: bool) -> tuple[list, dict[str, str]]:
    """Template variables: hidden lab and time zone, the unit picker (all units by
    default) and, where a panel needs it, the quantity picker filled from ClickHouse."""
    unit = db.CustomVariable("unit").label("Unit").values(",".join(u.sensor for u in lab.units))
    unit.multi(True).current(VariableOption(selected=True, text="All", value="$__all"))
    unit._internal.include_all = True  # the SDK has no builder method for it
    found = [
        db.ConstantVariable("lab").value(lab.id),
        db.ConstantVariable("tz").value(lab.timezone),
        unit,
    ]
    queries: dict[str, str] = {}
    if with_quantity:
        sql = q.quantities()
        found.append(
            db.QueryVariable("quantity")
            .label("Quantity")
            .datasource(DATASOURCE)
            .query({"editorType": "sql", "rawSql": sql})
            .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
            .current(VariableOption(selected=True, text="pm25", value="pm25"))
        )
        queries["quantity"] = sql
    return found, queries


def _overview(lab: Lab, on: date) -> list[PanelSpec]:
    lat = sum(u.latitude for u in lab.units) / len(lab.units)
    lon = sum(u.longitude for u in lab.units) / len(lab.units)
    return [
        unit_map(1, q.unit_state(lab), lat, lon),
        grid(
            2,
            "Alerts: open, and news in the time range",
            "One row per alert episode in its latest state; open episodes first.",
            q.alerts(),
            w=12,
            h=14,
        ),
        series(
            3,
            "${quantity}: hourly mean per unit",
            "Hourly mean of the quantity picked above (energetic mean for sound levels).",
            "none",
            q.quantity_hourly(),
            w=18,
        ),
        lki_now(4, q.lki_lab()),
    ]


def _noise(lab: Lab, on: date) -> list[PanelSpec]:
    return [
        series(
            1,
            "Sound level LAeq per minute",
            "Each unit's 1-minute LAeq (energetic means over longer steps when zoomed out), "
            "with the Dutch business-noise norm per period; the night value applies 23-07.",
            DB_A,
            q.laeq_minutes(),
            [(q.period_norm(limits.NL_LAEQ), True)],
            w=24,
        ),
        series(
            2,
            "Maximum sound level LAmax per minute",
            "Loudest moment in each minute, with the Dutch LAmax norm per period (night 23-07).",
            DB_A,
            q.lamax_minutes(),
            [(q.period_norm(limits.NL_LAMAX), True)],
            w=24,
        ),
        series(
            3,
            "Lden per day",
            "Day-evening-night level of each local day (07:00 to 07:00; evening +5 dB, night "
            "+10 dB), from the hourly LAeq; only days with all three periods measured. Daily "
            "values are indicative: the legal indicator is the annual Lden.",
            DB_A,
            q.daily_level("Lden"),
            [(q.lines([limits.WHO_LDEN]), False)],
            bars=True,
        ),
        series(
            4,
            "Lnight per night",
            "LAeq 23-07 of each night, against the WHO night guideline.",
            DB_A,
            q.daily_level("Lnight"),
            [(q.lines([limits.WHO_LNIGHT]), False)],
            bars=True,
        ),
    ]


def _air_panel(
    panel_id: int,
    title: str,
    pollutant: str,
    hours: int,
    min_valid: int,
    averagings: tuple[str, ...],
    on: date,
) -> PanelSpec:
    return series(
        panel_id,
        title,
        f"Hourly means and the {hours}-hour running mean (shown once {min_valid} valid hours "
        f"are in it), with the EU limit values and WHO guidelines that apply.",
        UG_M3,
        q.air_running(pollutant, hours, min_valid),
        [(q.lines(limits.air_lines(pollutant, averagings, on)), False)],
        display="${__field.labels.sensor} ${__field.name}",
    )


def _air(lab: Lab, on: date) -> list[PanelSpec]:
    return [
        _air_panel(1, "PM2.5", "pm25", 24, 18, ("24h",), on),
        _air_panel(2, "PM10", "pm10", 24, 18, ("24h",), on),
        _air_panel(3, "NO2", "no2", 24, 18, ("1h", "24h"), on),
        _air_panel(4, "O3", "o3", 8, 6, ("1h", "8h_daily_max"), on),
        lki(
            5,
            "Air quality index (LKI) per hour",
            "RIVM LKI from valid hourly means of PM2.5, PM10, NO2 and O3, per unit and for the "
            "lab (median of its units). Bands: 1-3 good, 4-6 moderate, 7-8 insufficient, "
            "9-10 bad, 11 very bad.",
            q.lki_units(),
            q.lki_lab(),
        ),
    ]


def _health(lab: Lab, on: date) -> list[PanelSpec]:
    return [
        grid(
            1,
            "Unit health",
            "Per unit over the time range: last uplink, share of the expected uplinks received, "
            "battery, median RSSI and SNR of the best gateway, the gateways that heard it and "
            "frame-counter resets (reboots or rejoins).",
            q.unit_health(lab),
            h=10,
            units={"received_pct": "percent", "battery": "volt", "rssi": "dBm", "snr": "dB"},
            relative_time=("last_seen",),
        ),
        series(
            2,
            "Uplinks per hour",
            "Stored uplinks per unit and hour.",
            "short",
            q.uplinks_hourly(),
            w=24,
        ),
        series(
            3,
            "Radio: best-gateway RSSI and SNR",
            "Median RSSI (dBm) and SNR (dB) of the gateway that heard each uplink best.",
            "none",
            q.radio(),
            display="${__field.labels.sensor} ${__field.name}",
        ),
        series(4, "Battery", "Hourly mean battery voltage.", "volt", q.battery()),
    ]


_CONTENT = {
    "overview": ("Overview", "now-24h", _overview),
    "noise": ("Noise", "now-7d", _noise),
    "air": ("Air quality", "now-7d", _air),
    "health": ("Unit health", "now-24h", _health),
}


def lab_dashboard(lab: Lab, kind: str, on: date) -> LabDashboard:
    title, since, content = _CONTENT[kind]
    panels = content(lab, on)
    found, variable_queries = variables(lab, with_quantity=kind == "overview")
    builder = (
        db.Dashboard(f"{lab.name}: {title}")
        .uid(dashboard_uid(lab.id, kind))
        .tags(["livinglab", f"lab:{lab.id}"])
        .timezone(lab.timezone)
        .time(since, "now")
        .refresh("1m")
        .editable()
        .link(
            db.DashboardLink(f"{lab.name} dashboards")
            .type(DashboardLinkType.DASHBOARDS)
            .tags([f"lab:{lab.id}"])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )
    for variable in found:
        builder.with_variable(variable)
    annotations = (q.alert_annotations(),) if kind in ("noise", "air") else ()
    for query in annotations:
        builder.annotation(
            db.AnnotationQuery()
            .name("Alerts")
            .datasource(DATASOURCE)
            .enable(True)
            .icon_color("red")
            .target(Target("Alerts", query))  # type: ignore[arg-type]
        )
    for panel in panels:
        builder.with_panel(panel.builder)  # type: ignore[arg-type]
    model = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return LabDashboard(
        lab, kind, model["uid"], model, tuple(panels), variable_queries, annotations
    )


def lab_dashboards(lab: Lab, on: date | None = None) -> list[LabDashboard]:
    """`on` picks the air-quality standards shown (those in force then or later)."""
    return [lab_dashboard(lab, kind, on or date.today()) for kind in KINDS]
