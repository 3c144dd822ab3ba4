"""Panel builders: the few kinds of panel the lab dashboards are made of.

Every panel reads the ClickHouse datasource; series come per unit (the plugin pivots
long rows on `sensor`), reference lines come from further queries and are drawn dashed,
red for EU and Dutch norms, orange for WHO guidelines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import geomap, stat, table, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DynamicConfigValue,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
)
from grafana_foundation_sdk.models.geomap import TooltipMode

from dashboards.grafana import DATASOURCE, Query, Target

REF_IDS = "ABCDEFGH"
LKI_BANDS = ((None, "green"), (3, "yellow"), (6, "orange"), (8, "red"), (10, "purple"))
STATE_COLOURS = {"ok": "green", "alert": "red", "offline": "orange", "no data": "text"}


@dataclass
class PanelSpec:
    """A panel and the queries behind it, kept together so checks can run them."""

    builder: object
    queries: list[Query] = field(default_factory=list)


def _cfg(key: str, value: object) -> DynamicConfigValue:
    return DynamicConfigValue(id_val=key, value=value)


def _colour(name: str) -> DynamicConfigValue:
    return _cfg("color", {"mode": "fixed", "fixedColor": name})


def _reference_style(label: str, stepped: bool = False) -> list[DynamicConfigValue]:
    style = [
        _colour("orange" if label.startswith("WHO") else "red"),
        _cfg("custom.lineStyle", {"fill": "dash", "dash": [10, 10]}),
        _cfg("custom.drawStyle", "line"),
        _cfg("custom.fillOpacity", 0),
        _cfg("custom.lineWidth", 2),
        _cfg("custom.showPoints", "never"),
        _cfg("custom.spanNulls", True),
    ]
    return style + ([_cfg("custom.lineInterpolation", "stepAfter")] if stepped else [])


def _targets(builder: object, queries: Sequence[Query]) -> None:
    builder.targets([Target(REF_IDS[i], q) for i, q in enumerate(queries)])  # type: ignore[attr-defined]


def _common(builder: object, panel_id: int, title: str, description: str, w: int, h: int):
    return (
        builder.id(panel_id)  # type: ignore[attr-defined]
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .span(w)
        .height(h)
    )


def series(
    panel_id: int,
    title: str,
    description: str,
    unit: str,
    data: Query,
    references: Sequence[tuple[Query, bool]] = (),
    w: int = 12,
    h: int = 9,
    bars: bool = False,
    display: str = "${__field.labels.sensor}",
) -> PanelSpec:
    """Per-unit series from `data` (ref A) plus reference lines, each (query, stepped)."""
    p = _common(timeseries.Panel(), panel_id, title, description, w, h).unit(unit)
    p.legend(
        common_builder.VizLegendOptions()
        .show_legend(True)
        .display_mode(common.LegendDisplayMode.TABLE)
        .placement(common.LegendPlacement.RIGHT)
        .calcs(["mean", "max"])
    )
    p.tooltip(common_builder.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI))
    p.span_nulls(False).show_points(common.VisibilityMode.NEVER).line_width(1)
    if bars:
        p.draw_style(common.GraphDrawStyle.BARS).fill_opacity(60)
    p.override_by_query("A", [_cfg("displayName", display)])
    for query, stepped in references:
        for label in query.columns[1:]:
            p.override_by_name(label, _reference_style(label, stepped))
    queries = [data, *(q for q, _ in references)]
    _targets(p, queries)
    return PanelSpec(p, queries)


def lki(panel_id: int, title: str, description: str, units: Query, lab: Query) -> PanelSpec:
    """The hourly LKI per unit, and the lab's as a thick black line, over the band colours."""
    p = _common(timeseries.Panel(), panel_id, title, description, 24, 9).min(0).max(11)
    p.thresholds(
        db.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=v, color=c) for v, c in LKI_BANDS])
    )
    p.thresholds_style(
        common_builder.GraphThresholdsStyleConfig().mode(common.GraphTresholdsStyleMode.AREA)
    )
    p.legend(
        common_builder.VizLegendOptions()
        .show_legend(True)
        .display_mode(common.LegendDisplayMode.TABLE)
        .placement(common.LegendPlacement.RIGHT)
        .calcs(["mean", "max"])
    )
    p.show_points(common.VisibilityMode.NEVER)
    p.override_by_query("A", [_cfg("displayName", "${__field.labels.sensor}")])
    p.override_by_query(
        "B",
        [
            _cfg("displayName", "Lab (median of units)"),
            _colour("text"),
            _cfg("custom.lineWidth", 4),
        ],
    )
    _targets(p, [units, lab])
    return PanelSpec(p, [units, lab])


def lki_now(panel_id: int, lab: Query) -> PanelSpec:
    p = _common(
        stat.Panel(),
        panel_id,
        "Air quality index (LKI), latest hour",
        "RIVM LKI of the lab (median of its units): 1-3 good, 4-6 moderate, 7-8 insufficient, "
        "9-10 bad, 11 very bad.",
        6,
        8,
    )
    p.decimals(1).min(0).max(11).color_mode(common.BigValueColorMode.BACKGROUND)
    p.reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]).fields("/^LKI$/"))
    p.thresholds(
        db.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=v, color=c) for v, c in LKI_BANDS])
    )
    _targets(p, [lab])
    return PanelSpec(p, [lab])


def _state_mappings() -> list[ValueMap]:
    return [
        ValueMap(
            options={
                state: ValueMappingResult(text=state, color=colour, index=i)
                for i, (state, colour) in enumerate(STATE_COLOURS.items())
            }
        )
    ]


def grid(
    panel_id: int,
    title: str,
    description: str,
    data: Query,
    w: int = 24,
    h: int = 9,
    units: dict[str, str] | None = None,
    relative_time: tuple[str, ...] = (),
) -> PanelSpec:
    """A table; `units` sets Grafana units per column, `relative_time` shows times as
    'x minutes ago'."""
    p = _common(table.Panel(), panel_id, title, description, w, h)
    if "state" in data.columns:
        p.mappings(_state_mappings())
        p.override_by_name("state", [_cfg("custom.cellOptions", {"type": "color-text"})])
    for column, unit in (units or {}).items():
        p.override_by_name(column, [_cfg("unit", unit)])
    for column in relative_time:
        p.override_by_name(column, [_cfg("unit", "dateTimeFromNow")])
    _targets(p, [data])
    return PanelSpec(p, [data])


def unit_map(panel_id: int, data: Query, latitude: float, longitude: float) -> PanelSpec:
    """Markers at the units' positions, coloured by state, labelled with the unit id."""
    p = _common(
        geomap.Panel(),
        panel_id,
        "Units: latest state",
        "Every registered unit at its position. Colour: ok (green), open alert (red), offline "
        "(orange: silent for 3 reporting intervals), no data in the range (grey). Hover for "
        "the last hourly mean of the quantity picked above.",
        12,
        14,
    )
    p.mappings(_state_mappings())
    view = geomap.MapViewConfig().id("coords").zoom(13)
    view._internal.lat, view._internal.lon = latitude, longitude  # the SDK types them int
    p.view(view)
    p.basemap(common_builder.MapLayerOptions().type("default").name("Basemap"))
    p.tooltip(geomap.TooltipOptions().mode(TooltipMode.DETAILS))
    p.layers(
        [
            common_builder.MapLayerOptions()
            .type("markers")
            .name("Units")
            .location(
                common_builder.FrameGeometrySource()
                .mode(common.FrameGeometrySourceMode.COORDS)
                .latitude("latitude")
                .longitude("longitude")
            )
            .config(
                {
                    "showLegend": True,
                    "style": {
                        "color": {"field": "state", "fixed": "dark-green"},
                        "size": {"fixed": 10},
                        "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"},
                        "text": {"field": "unit", "mode": "field"},
                        "textConfig": {"fontSize": 11, "offsetY": -14, "textAlign": "center"},
                    },
                }
            )
            .tooltip(True)
        ]
    )
    _targets(p, [data])
    return PanelSpec(p, [data])
