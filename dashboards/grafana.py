"""The ClickHouse datasource as Grafana sees it: its reference and its query model.

grafana-foundation-sdk has no ClickHouse query type, so the target is defined here
with the fields the plugin (v4) reads: `editorType: sql`, `rawSql`, `format`
(0 time series: long rows are pivoted into one series per string column value;
1 table) and `pluginVersion` >= 4, which keeps the plugin from migrating it as a v3 query.
"""

from __future__ import annotations

from dataclasses import dataclass

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

PLUGIN_ID = "grafana-clickhouse-datasource"
PLUGIN_VERSION = "4.20.0"
DATASOURCE_UID = "livinglab-clickhouse"
DATASOURCE_NAME = "Living Lab ClickHouse"
DATASOURCE = DataSourceRef(type_val=PLUGIN_ID, uid=DATASOURCE_UID)


@dataclass(frozen=True)
class Query:
    """One panel query: its SQL (with Grafana variables and plugin macros) and the
    columns the panel reads from the result, so a check can tell a broken panel."""

    sql: str
    columns: tuple[str, ...]
    table: bool = False


class ClickHouseTarget(cogvariants.Dataquery):
    def __init__(self, ref_id: str, query: Query) -> None:
        self.ref_id = ref_id
        self.query = query

    def to_json(self) -> dict[str, object]:
        return {
            "refId": self.ref_id,
            "datasource": DATASOURCE.to_json(),
            "editorType": "sql",
            "format": 1 if self.query.table else 0,
            "queryType": "table" if self.query.table else "timeseries",
            "pluginVersion": PLUGIN_VERSION,
            "rawSql": self.query.sql,
        }


class Target(cogbuilder.Builder[ClickHouseTarget]):
    """Builder wrapper, because the SDK's panels take builders of targets."""

    def __init__(self, ref_id: str, query: Query) -> None:
        self._target = ClickHouseTarget(ref_id, query)

    def build(self) -> ClickHouseTarget:
        return self._target
