"""The emulation of Grafana + the ClickHouse plugin against the plugin's own test cases.

Expected strings are the ones in grafana/clickhouse-datasource pkg/macros/macros_test.go
(time range 2014-11-12T11:45:26.123Z .. 2015-11-12T11:45:26.456Z) and the argument
parsing rules of grafana-plugin-sdk-go data/sqlutil/macros_test.go; the variable
formatting follows src/data/CHDatasource.ts (`format`) and Grafana's `singlequote`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboards.macros import MacroError, QueryContext, expand_macros, render, replace_variables

FROM = datetime(2014, 11, 12, 11, 45, 26, 123000, tzinfo=UTC)
TO = datetime(2015, 11, 12, 11, 45, 26, 456000, tzinfo=UTC)
CTX = QueryContext(FROM, TO, timedelta(minutes=1))


@pytest.mark.parametrize(
    ("sql", "expanded"),
    [
        (
            "select * from foo where $__timeFilter(cast(sth as timestamp))",
            "select * from foo where cast(sth as timestamp) >= toDateTime(1415792726) "
            "AND cast(sth as timestamp) <= toDateTime(1447328726)",
        ),
        (
            "select * from foo where ( date >= $__fromTime_ms ) and ( date <= $__toTime_ms ) "
            "limit 100",
            "select * from foo where ( date >= fromUnixTimestamp64Milli(1415792726123) ) and "
            "( date <= fromUnixTimestamp64Milli(1447328726456) ) limit 100",
        ),
        (
            "SELECT $__timeInterval($__fromTime) AS from_time",
            "SELECT toStartOfInterval(toDateTime(toDateTime(1415792726)), INTERVAL 60 second) "
            "AS from_time",
        ),
        (
            "select * from foo where $__timeFilter(coalesce(closed_at, $__toTime))",
            "select * from foo where coalesce(closed_at, toDateTime(1447328726)) >= "
            "toDateTime(1415792726) AND coalesce(closed_at, toDateTime(1447328726)) <= "
            "toDateTime(1447328726)",
        ),
        (
            "select * from foo where msg = 'it''s' and $__fromTime",
            "select * from foo where msg = 'it''s' and toDateTime(1415792726)",
        ),
        ("WHERE $__dateFilter(d)", "WHERE d >= toDate('2014-11-12') AND d <= toDate('2015-11-12')"),
        (
            "$__timeFrom(t) AND $__timeTo(t)",
            "t >= toDateTime(1415792726) AND t <= toDateTime(1447328726)",
        ),
        ("$__timeGroup(t, '5m')", "toStartOfInterval(toDateTime(t), INTERVAL 300 second)"),
        # Arguments only when "(" follows the name at once (sqlds issue #82).
        ("$__fromTime > $__toTime (x)", "toDateTime(1415792726) > toDateTime(1447328726) (x)"),
        ("INTERVAL $__interval_s second", "INTERVAL 60 second"),
    ],
)
def test_macros_expand_like_the_plugin(sql: str, expanded: str) -> None:
    assert expand_macros(sql, CTX) == expanded


def test_interval_seconds_are_whole_and_at_least_one() -> None:
    assert expand_macros("$__interval_s", QueryContext(FROM, TO, timedelta(0))) == "1"
    assert expand_macros("$__interval_s", QueryContext(FROM, TO, timedelta(seconds=90.9))) == "90"


@pytest.mark.parametrize(
    "sql",
    [
        "select * from foo where $__timeFilter(whoops",  # missing close bracket
        "select $__timeFilter(a, b)",  # wrong argument count
        "select $__nosuchmacro",  # the plugin would pass it on and ClickHouse would fail
        "select 1 -- $__fromTime",  # the plugin strips comments first; not emulated
        "select $__timeGroup(t, 'five minutes')",
    ],
)
def test_what_the_plugin_rejects_or_we_do_not_emulate_raises(sql: str) -> None:
    with pytest.raises(MacroError):
        expand_macros(sql, CTX)


def test_variables_are_formatted_like_grafana_and_the_plugin() -> None:
    values = {"lab": "zoetermeer", "unit": ["zoe-01", "o'neil"], "one": ["zoe-02"]}
    assert replace_variables("lab = '${lab}' AND lab = '$lab'", values) == (
        "lab = 'zoetermeer' AND lab = 'zoetermeer'"
    )
    assert replace_variables("IN (${unit:singlequote})", values) == "IN ('zoe-01','o\\'neil')"
    # The plugin's own formatter for multi-values without an explicit format.
    assert replace_variables("IN ($one)", values) == "IN ('zoe-02')"
    # Unknown names (and the plugin's macros) are left for the next step, as Grafana does.
    assert replace_variables("$__interval_s $other", values) == "$__interval_s $other"


def test_render_replaces_variables_before_macros() -> None:
    sql = "SELECT 1 FROM t WHERE lab = '${lab}' AND $__timeFilter(${col})"
    assert render(sql, CTX, {"lab": "x", "col": "ts"}) == (
        "SELECT 1 FROM t WHERE lab = 'x' AND ts >= toDateTime(1415792726) "
        "AND ts <= toDateTime(1447328726)"
    )
