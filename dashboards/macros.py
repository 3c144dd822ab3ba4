"""What Grafana and the ClickHouse plugin do to a panel's SQL before ClickHouse runs it.

Panels, the report and the tests run the same SQL, so they expand it the same way the
real stack does, in the same order:

1. Grafana's frontend replaces template variables: `$name`, `${name}` and
   `${name:format}`. Without a format, the ClickHouse plugin's own formatter applies:
   a multi-value becomes `'a','b'`, a single value is inserted as it is
   (grafana/clickhouse-datasource src/data/CHDatasource.ts, `format`). Unknown names
   (such as `$__timeFilter`) are left for step 2, as Grafana does.
2. The plugin's backend expands `$__macro(args)` (pkg/macros/macros.go on
   grafana/macropro): a macro takes arguments only when `(` follows its name at once;
   arguments split at top-level commas and are trimmed; nested macros expand
   innermost first; times become `toDateTime(<unix s>)` or
   `fromUnixTimestamp64Milli(<unix ms>)`; `$__interval_s` is the query interval in
   whole seconds, at least 1.

The plugin strips SQL comments before expanding, so SQL with comments is refused here
rather than emulated. Anything this module does not know raises, so a typo fails a test
instead of reaching Grafana.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

VariableValue = str | list[str]

_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::(\w+))?\}")
_MACRO = re.compile(r"\$__(\w+)\b")
_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_GO_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


class MacroError(ValueError):
    """SQL the plugin would reject or that this emulation does not cover."""


@dataclass(frozen=True)
class QueryContext:
    """The time range and interval Grafana sends with a query (times are aware, UTC)."""

    start: datetime
    end: datetime
    interval: timedelta = timedelta(minutes=1)


def _format_value(value: VariableValue, fmt: str | None) -> str:
    values = value if isinstance(value, list) else [value]
    if fmt == "singlequote":  # Grafana: each value in single quotes, ' escaped as \'
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if fmt is None:  # the ClickHouse plugin's formatter
        return "'" + "','".join(values) + "'" if isinstance(value, list) else value
    if fmt == "raw":
        return ",".join(values)
    raise MacroError(f"variable format {fmt!r} is not emulated")


def replace_variables(sql: str, variables: Mapping[str, VariableValue]) -> str:
    """Step 1: Grafana's template variables (unknown names stay, as in Grafana)."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            return match.group(0)
        return _format_value(variables[name], match.group(3))

    return _VARIABLE.sub(one, sql)


def _unix(t: datetime) -> int:
    return math.floor(t.timestamp())


def _unix_ms(t: datetime) -> int:
    return math.floor(t.timestamp() * 1000)


def _interval_s(ctx: QueryContext) -> int:
    return int(max(ctx.interval.total_seconds(), 1))


def _go_duration_s(text: str) -> float:
    parts = _GO_DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise MacroError(f"$__timeGroup: invalid interval {text!r}")
    return sum(float(n) * _GO_UNIT_S[u] for n, u in parts)


def _args(n: int, name: str, fn: Callable[[QueryContext, list[str]], str]) -> Callable:
    def checked(ctx: QueryContext, args: list[str]) -> str:
        if len(args) != n:
            raise MacroError(f"$__{name} expected {n} argument(s), received {len(args)}")
        return fn(ctx, args)

    return checked


def _time_group(ctx: QueryContext, a: list[str]) -> str:
    seconds = round(_go_duration_s(a[1].strip().strip("'\"")))
    if seconds <= 0:
        raise MacroError(f"$__timeGroup: interval must be positive, got {a[1]!r}")
    return f"toStartOfInterval(toDateTime({a[0]}), INTERVAL {seconds} second)"


def _range(a: str, lo: str, hi: str) -> str:
    return f"{a} >= {lo} AND {a} <= {hi}"


MACROS: dict[str, Callable[[QueryContext, list[str]], str]] = {
    "fromTime": lambda c, a: f"toDateTime({_unix(c.start)})",
    "toTime": lambda c, a: f"toDateTime({_unix(c.end)})",
    "fromTime_ms": lambda c, a: f"fromUnixTimestamp64Milli({_unix_ms(c.start)})",
    "toTime_ms": lambda c, a: f"fromUnixTimestamp64Milli({_unix_ms(c.end)})",
    "timeFilter": _args(
        1,
        "timeFilter",
        lambda c, a: _range(a[0], f"toDateTime({_unix(c.start)})", f"toDateTime({_unix(c.end)})"),
    ),
    "timeFilter_ms": _args(
        1,
        "timeFilter_ms",
        lambda c, a: _range(
            a[0],
            f"fromUnixTimestamp64Milli({_unix_ms(c.start)})",
            f"fromUnixTimestamp64Milli({_unix_ms(c.end)})",
        ),
    ),
    "dateFilter": _args(
        1,
        "dateFilter",
        lambda c, a: _range(
            a[0],
            f"toDate('{c.start.astimezone(UTC):%Y-%m-%d}')",
            f"toDate('{c.end.astimezone(UTC):%Y-%m-%d}')",
        ),
    ),
    "timeFrom": _args(1, "timeFrom", lambda c, a: f"{a[0]} >= toDateTime({_unix(c.start)})"),
    "timeTo": _args(1, "timeTo", lambda c, a: f"{a[0]} <= toDateTime({_unix(c.end)})"),
    "timeGroup": _args(2, "timeGroup", _time_group),
    "timeInterval": _args(
        1,
        "timeInterval",
        lambda c, a: f"toStartOfInterval(toDateTime({a[0]}), INTERVAL {_interval_s(c)} second)",
    ),
    "interval_s": lambda c, a: str(_interval_s(c)),
}


def _parse_args(text: str) -> tuple[list[str], int]:
    """The bracketed argument list at the start of `text` and its length (0: none)."""
    if not text.startswith("("):
        return [], 0
    args: list[str] = []
    depth, current = 0, []
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
            if depth == 1:
                continue
        elif ch == ")":
            depth -= 1
            if depth == 0:
                args.append("".join(current).strip())
                return args, i + 1
        elif ch == "," and depth == 1:
            args.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    raise MacroError("failed to parse macro arguments (missing close bracket?)")


def expand_macros(sql: str, ctx: QueryContext) -> str:
    """Step 2: the plugin's `$__` macros, innermost first."""
    if "--" in sql or "/*" in sql:
        raise MacroError("SQL comments are stripped by the plugin; keep panel SQL free of them")
    out: list[str] = []
    pos = 0
    while match := _MACRO.search(sql, pos):
        name = match.group(1)
        if name not in MACROS:
            raise MacroError(f"unknown macro $__{name}")
        args, length = _parse_args(sql[match.end() :])
        args = [expand_macros(a, ctx) for a in args]
        out.append(sql[pos : match.start()])
        out.append(MACROS[name](ctx, args))
        pos = match.end() + length
    out.append(sql[pos:])
    return "".join(out)


def render(sql: str, ctx: QueryContext, variables: Mapping[str, VariableValue]) -> str:
    """The SQL ClickHouse receives for a panel query: variables, then macros."""
    return expand_macros(replace_variables(sql, variables), ctx)
