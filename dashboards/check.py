"""Run every dashboard query against a store, expanded as Grafana would, and judge it.

A panel is broken when its SQL fails or lacks a column the panel reads; it is empty when
no row comes back. Used by `livinglab dashboards check` after a schema or SQL change,
and by the tests against a demo store.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from dashboards.grafana import Query
from dashboards.layout import LabDashboard
from dashboards.macros import QueryContext, VariableValue, render
from dashboards.panels import REF_IDS
from dashboards.reader import Reader
from livinglab.store import StoreError

# Grafana's interval is the time range over the panel's data points (about its width in
# pixels); the plugin floors it to whole seconds.
DATA_POINTS = 1000
PREFERRED_QUANTITY = "laeq"


@dataclass
class Result:
    dashboard: str
    panel: str
    ref: str
    rows: int = 0
    columns: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def broken(self) -> bool:
        return self.error is not None or bool(self.missing)

    def as_dict(self) -> dict:
        return asdict(self)


def context(start: datetime, end: datetime) -> QueryContext:
    return QueryContext(start, end, max(timedelta(seconds=1), (end - start) / DATA_POINTS))


def data_range(reader: Reader, lab_id: str, hours: float = 24) -> tuple[datetime, datetime]:
    """The last `hours` up to the lab's newest uplink (so a demo store checks where its
    data is), or up to now for a lab without data."""
    rows = reader.rows(
        f"SELECT max(received_at) AS last, count() AS n FROM uplinks WHERE lab = '{lab_id}'"
    )
    end = datetime.now(UTC)
    if rows and int(rows[0]["n"]):
        end = datetime.fromisoformat(rows[0]["last"].replace("Z", "+00:00"))
    end = end.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return end - timedelta(hours=hours), end


def variable_values(
    reader: Reader, board: LabDashboard, ctx: QueryContext
) -> tuple[dict[str, VariableValue], list[Result]]:
    """Values Grafana would fill in: the constants, every unit ("All"), and for a query
    variable its first result (preferring laeq), after running its query."""
    values: dict[str, VariableValue] = {
        "lab": board.lab.id,
        "tz": board.lab.timezone,
        "unit": [u.sensor for u in board.lab.units],
    }
    results = []
    for name, sql in board.variable_queries.items():
        result = Result(board.uid, f"variable {name}", "-")
        try:
            found = [next(iter(r.values())) for r in reader.rows(render(sql, ctx, values))]
            result.rows, result.columns = len(found), [name]
        except (StoreError, RuntimeError, ValueError) as exc:
            found, result.error = [], str(exc)
        values[name] = PREFERRED_QUANTITY if PREFERRED_QUANTITY in found or not found else found[0]
        results.append(result)
    return values, results


def _run(reader: Reader, result: Result, query: Query, ctx: QueryContext, values: dict) -> Result:
    try:
        result.columns, result.rows = reader.columns(render(query.sql, ctx, values))
        result.missing = [c for c in query.columns if c not in result.columns]
    except (StoreError, RuntimeError, ValueError) as exc:
        result.error = str(exc)
    return result


def check_dashboard(reader: Reader, board: LabDashboard, ctx: QueryContext) -> list[Result]:
    values, results = variable_values(reader, board, ctx)
    for panel in board.panels:
        title = panel.builder.build().title or ""  # type: ignore[attr-defined]
        for ref, query in zip(REF_IDS, panel.queries):
            results.append(_run(reader, Result(board.uid, title, ref), query, ctx, values))
    for query in board.annotations:
        results.append(_run(reader, Result(board.uid, "annotations", "Alerts"), query, ctx, values))
    return results
