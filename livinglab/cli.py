"""`livinglab`: one command in front of the whole platform."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from livinglab.config import ENV_CLICKHOUSE, ENV_DATA_DIR, ENV_KAFKA, ENV_REGISTRY, Settings
from livinglab.registry import RegistryError, load_registry

EPILOG = f"""
environment:
  {ENV_KAFKA}       host:port of an external Kafka (unset: start the embedded Tansu broker)
  {ENV_CLICKHOUSE}  clickhouse://user:password@host:8123/db of a ClickHouse server
                        (unset: the embedded chDB store under --data-dir)
  {ENV_REGISTRY}    the lab registry YAML (default: config/labs.yaml)
  {ENV_DATA_DIR}    default for --data-dir
"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the embedded store, logs and state live (default: ./data)",
    )
    p.add_argument(
        "--registry", type=Path, default=None, help="lab registry YAML (default: config/labs.yaml)"
    )


def _start_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _scenarios(text: str) -> tuple[str, ...]:
    from livinglab.simulator.scenarios import parse_kinds

    try:
        return parse_kinds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livinglab",
        description="Living-lab streaming platform: LoRaWAN noise and air sensors -> Kafka -> "
        "stream workers -> ClickHouse. Runs embedded (Tansu + chDB) unless pointed elsewhere.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    demo = verbs.add_parser(
        "demo",
        help="simulate every unit of every lab through the whole platform",
        description="Start the platform, simulate H hours of all labs' sensor units sending "
        "LoRaWAN uplinks through the real ingress (with duplicate and late gateway copies), wait "
        "until everything is in ClickHouse and print a per-lab summary. The data stays in "
        "--data-dir; query it with `livinglab sql`.",
    )
    demo.add_argument("--hours", type=float, default=6.0, help="simulated hours (default 6)")
    demo.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="simulated seconds per wall-clock second; 0 = as fast as possible",
    )
    demo.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    demo.add_argument(
        "--start",
        type=_start_time,
        default=None,
        help="simulated start time, ISO 8601 (default: H hours before this hour)",
    )
    demo.add_argument("--workers", type=int, default=1, help="stream worker processes")
    demo.add_argument(
        "--scenarios",
        type=_scenarios,
        default=(),
        metavar="KINDS",
        help="inject labelled anomaly episodes: 'standard' or some of fireworks, stuck, dead, "
        "construction, fog, drift (comma-separated); ground truth in DATA_DIR/ground_truth.json",
    )
    demo.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    _common(demo)

    replay = verbs.add_parser(
        "replay",
        help="feed uplink messages from a JSON-lines file through the platform",
        description="Feed LNS uplink messages (The Things Stack v3, ChirpStack v3/v4 JSON, one "
        "per line; '-' for stdin) through the full streaming path, wait until everything has "
        "reached ClickHouse and print a summary. Use it to back-fill a lab's history.",
    )
    replay.add_argument("file", type=Path, help="JSON-lines file, or - for stdin")
    replay.add_argument("--workers", type=int, default=1, help="stream worker processes")
    replay.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    _common(replay)

    sql = verbs.add_parser(
        "sql",
        help="run ClickHouse SQL against the store",
        description="Run one ClickHouse SQL statement against the store: the running platform's "
        "embedded store, the embedded store on disk when nothing runs, or the server in "
        f"{ENV_CLICKHOUSE}. Tables: uplinks, readings, aggregates, alerts, deadletter "
        "(use FINAL for the deduplicated state).",
    )
    sql.add_argument("query", help="the SQL statement")
    sql.add_argument(
        "--format",
        default="PrettyCompact",
        help="any ClickHouse output format, e.g. PrettyCompact (default), "
        "JSONEachRow, CSVWithNames, TabSeparatedWithNames",
    )
    _common(sql)

    grants = verbs.add_parser(
        "grants",
        help="print the SQL for read-only analyst roles, one per lab",
        description="Print ClickHouse SQL that creates a read-only `analyst` role and one "
        "`analyst_<lab>` role per lab whose row policies show only that lab's rows. Run it "
        "as an admin on the ClickHouse server (chDB has no users). See docs/analysts.md.",
    )
    grants.add_argument("--lab", default=None, help="only this lab's role")
    grants.add_argument("--database", default="default", help="the store's database")
    grants.add_argument(
        "--registry", type=Path, default=None, help="lab registry YAML (default: config/labs.yaml)"
    )
    grants.set_defaults(handler=_grants)

    worker = verbs.add_parser(
        "worker",
        help="run one stream worker (decode, dedup, windows; or alerting) against Kafka",
        description=f"Run one stream worker. Needs {ENV_KAFKA}; start several for more "
        "throughput (workers of a role share the partitions of their input topics). A "
        "deployment runs both roles: `streams` workers and at least one `alerting` worker.",
    )
    worker.add_argument(
        "--role",
        choices=("streams", "alerting"),
        default="streams",
        help="streams: lorawan.uplinks -> readings and window aggregates (default); "
        "alerting: readings and aggregates -> detectors -> alerts.<lab>",
    )
    _common(worker)
    sink = verbs.add_parser(
        "sink",
        help="run the ClickHouse sink (the one writer of the store)",
        description=f"Consume the output topics and write them into ClickHouse in batches, "
        f"exactly once in effect. Needs {ENV_KAFKA}.",
    )
    _common(sink)
    # Each area of the platform adds its own verbs (they set `handler`).
    for register in _verb_modules():
        register(verbs, _common)
    return parser


def _verb_modules() -> list:
    """`register(verbs, common)` functions of the areas that bring their own verbs."""
    import importlib

    found = []
    for name in ("connectors.cli", "streams.cli", "dashboards.cli"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # that area is not installed in this tree
            if not exc.name or not name.startswith(exc.name):
                raise
            continue
        found.append(module.register)
    return found


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(data_dir=args.data_dir, registry=args.registry)


def _sql(args: argparse.Namespace) -> int:
    from livinglab.stack import query_owner
    from livinglab.store import StoreError, open_store
    from streams.sink import owner_file

    settings = _settings(args)
    owner = owner_file(settings.data_dir)
    try:
        if not settings.clickhouse and owner.exists() and _pid_alive(owner):
            text = query_owner(settings.data_dir, args.query, args.format)
        else:
            if not settings.clickhouse and not (settings.data_dir / "clickhouse").exists():
                print(
                    f"error: no store in {settings.data_dir}; run `livinglab demo` first "
                    f"or pass --data-dir",
                    file=sys.stderr,
                )
                return 2
            store = open_store(settings.clickhouse, settings.data_dir)
            try:
                text = store.query(args.query, args.format)
            finally:
                store.close()
    except (StoreError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


def _grants(args: argparse.Namespace) -> int:
    from livinglab.grants import analyst_grants

    registry = load_registry(Settings.from_env(registry=args.registry).registry)
    try:
        sys.stdout.write(analyst_grants(registry, args.database, args.lab))
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    return 0


def _pid_alive(owner: Path) -> bool:
    try:
        os.kill(json.loads(owner.read_text())["pid"], 0)
        return True
    except (OSError, ValueError, KeyError):
        return False


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        if getattr(args, "handler", None):
            return args.handler(args)
        if args.verb == "sql":
            return _sql(args)
        settings = _settings(args)
        registry = load_registry(settings.registry)
        if args.verb == "worker":
            from streams.app import run_worker

            run_worker(settings, args.role)
            return 0
        if args.verb == "sink":
            from streams.sink import run_sink

            run_sink(settings)
            return 0
        from livinglab.run import print_summary, run_demo, run_replay

        if args.verb == "demo":
            result = run_demo(
                settings,
                registry,
                args.hours,
                args.speed,
                args.seed,
                args.start,
                args.workers,
                scenarios=args.scenarios,
            )
        else:
            if str(args.file) != "-" and not args.file.exists():
                print(f"error: {args.file} does not exist", file=sys.stderr)
                return 2
            result = run_replay(settings, registry, args.file, args.workers)
        if args.json:
            print(json.dumps(result))
        else:
            print_summary(result)
        return 0
    except RegistryError as exc:
        print(f"error: broken registry: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the platform was shut down", file=sys.stderr)
        return 130
