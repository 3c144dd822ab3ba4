"""Verbs of this area: `livinglab dashboards build|push|check` and `livinglab report`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from livinglab.config import ENV_CLICKHOUSE, Settings
from livinglab.registry import Lab, Registry, load_registry

if TYPE_CHECKING:
    from dashboards.layout import LabDashboard


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(data_dir=args.data_dir, registry=args.registry)


class _UsageError(Exception):
    """A command line that names something the registry does not have."""


def _labs(registry: Registry, lab_id: str | None) -> list[Lab]:
    if lab_id is None:
        return list(registry.labs)
    try:
        return [registry.lab(lab_id)]
    except KeyError as exc:
        raise _UsageError(exc.args[0]) from None


def _boards(args: argparse.Namespace) -> tuple[Settings, list[LabDashboard]]:
    from dashboards.layout import lab_dashboards

    settings = _settings(args)
    registry = load_registry(settings.registry)
    return settings, [b for lab in _labs(registry, args.lab) for b in lab_dashboards(lab)]


def _build(args: argparse.Namespace) -> int:
    from dashboards import provisioning

    settings, boards = _boards(args)
    grafana_path = args.grafana_path or str(args.out.resolve())
    written = provisioning.write(args.out, boards, settings.clickhouse, grafana_path)
    labs = len({b.lab.id for b in boards})
    print(f"wrote {len(written)} files for {labs} labs ({len(boards)} dashboards) to {args.out}")
    if not settings.clickhouse:
        print(
            f"note: {ENV_CLICKHOUSE} is unset; the datasource points at localhost:8123 "
            "(Grafana cannot read the embedded store)",
            file=sys.stderr,
        )
    return 0


def _push(args: argparse.Namespace) -> int:
    from grafana_client import GrafanaApi
    from grafana_client.client import GrafanaException

    from dashboards import provisioning
    from dashboards.push import push

    settings, boards = _boards(args)
    api = GrafanaApi.from_url(args.url, credential=args.token)
    try:
        for line in push(api, boards, provisioning.datasource(settings.clickhouse)):
            print(line)
    except GrafanaException as exc:
        print(f"error: Grafana at {args.url} refused: {exc}", file=sys.stderr)
        return 1
    return 0


def _check(args: argparse.Namespace) -> int:
    from dashboards.check import check_dashboard, context, data_range
    from dashboards.reader import NoStore, Reader

    settings, boards = _boards(args)
    try:
        reader = Reader(settings)
    except NoStore as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results = []
    with reader:
        for board in boards:
            start, end = data_range(reader, board.lab.id, args.hours)
            results.extend(check_dashboard(reader, board, context(start, end)))
    broken = [r for r in results if r.broken]
    if args.json:
        print(json.dumps([r.as_dict() for r in results]))
    else:
        for r in results:
            verdict = "BROKEN" if r.broken else ("empty" if r.rows == 0 else "ok")
            detail = r.error or (
                f"missing {', '.join(r.missing)}" if r.missing else f"{r.rows} rows"
            )
            print(f"{verdict:6} {r.dashboard} / {r.panel} / {r.ref}: {detail}")
        print(f"{len(results)} queries, {len(broken)} broken")
    return 1 if broken else 0


def _report(args: argparse.Namespace) -> int:
    from dashboards.reader import NoStore, Reader
    from dashboards.report import write_report

    settings = _settings(args)
    [lab] = _labs(load_registry(settings.registry), args.lab)
    try:
        reader = Reader(settings)
    except NoStore as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with reader:
        index = write_report(reader, lab, args.out, args.days)
    print(f"report for {lab.name}: {index}")
    return 0


def _handled(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Unknown lab ids are a usage error (exit 2) that lists the known ones."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except _UsageError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return run


def register(
    verbs: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]
) -> None:
    dash = verbs.add_parser(
        "dashboards",
        help="Grafana dashboards per lab: build files, push, check against a store",
        description="One Grafana folder per lab (overview with map and alerts, noise, air "
        "quality, unit health), generated from the lab registry for the ClickHouse datasource "
        "plugin (grafana-clickhouse-datasource).",
    )
    actions = dash.add_subparsers(dest="action", required=True, metavar="ACTION")

    build = actions.add_parser(
        "build",
        help="write dashboard JSON and Grafana provisioning files",
        description="Write the dashboards and the provisioning for the datasource (from "
        f"{ENV_CLICKHOUSE}) and one folder per lab. Point Grafana's GF_PATHS_PROVISIONING at "
        "OUT/provisioning.",
    )
    build.add_argument("--out", type=Path, required=True, help="output directory")
    build.add_argument(
        "--grafana-path",
        default=None,
        help="where Grafana sees OUT (default: OUT itself); e.g. the mount point in a container",
    )

    push = actions.add_parser(
        "push",
        help="create or update the folders and dashboards in a running Grafana",
        description="Upsert by uid (running it twice changes nothing); creates the datasource "
        "when Grafana has none with our uid.",
    )
    push.add_argument("--url", required=True, help="Grafana base URL, e.g. http://localhost:3000")
    push.add_argument(
        "--token", default=None, help="service-account token (or put user:password in the URL)"
    )

    check = actions.add_parser(
        "check",
        help="run every panel query against the store and report broken ones",
        description="Expand every panel's SQL as Grafana and the ClickHouse plugin do, over "
        "the last --hours up to each lab's newest data, run it and check the columns the "
        "panel reads. Exit status 1 when a query fails.",
    )
    check.add_argument("--hours", type=float, default=24.0, help="time range (default 24)")
    check.add_argument("--json", action="store_true", help="print the results as JSON")

    for parser, handler in ((build, _build), (push, _push), (check, _check)):
        parser.add_argument("--lab", default=None, help="only this lab (default: all)")
        common(parser)
        parser.set_defaults(handler=_handled(handler))

    report = verbs.add_parser(
        "report",
        help="static HTML report with charts of a lab's last days",
        description="Write DIR/index.html and its PNG charts: Lden per unit against the WHO "
        "guideline, PM against EU limits and WHO guidelines, alerts on a time line, and data "
        "coverage per unit, over the last N days of data in the store.",
    )
    report.add_argument("--lab", required=True, help="lab id from the registry")
    report.add_argument("--out", type=Path, required=True, help="output directory")
    report.add_argument("--days", type=int, default=7, help="days to cover (default 7)")
    common(report)
    report.set_defaults(handler=_handled(_report))
