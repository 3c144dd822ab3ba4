"""`livinglab alerts tail|fanout`: a lab's alerts for people, webhooks and MQTT brokers."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable
from typing import Any

from livinglab.config import ENV_KAFKA, Settings
from livinglab.registry import Lab, load_registry
from livinglab.stack import broker_file, running_broker

NO_BROKER = (
    "error: no Kafka to read from: set {env}, or start the platform in another terminal, "
    "e.g. `livinglab demo --speed 60 --data-dir {data_dir}` (it writes {file} while it runs)"
)


def register(verbs: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    alerts = verbs.add_parser(
        "alerts",
        help="follow a lab's alerts, or pass them on to a webhook or MQTT broker",
        description="Alerts of one lab, from its Kafka topic alerts.<lab> (JSON, see "
        "schemas/alert.schema.json and docs/alerts.md). Reads the Kafka in "
        f"{ENV_KAFKA}, or the embedded broker of a demo or replay running on --data-dir.",
    )
    actions = alerts.add_subparsers(dest="action", required=True, metavar="ACTION")
    tail = actions.add_parser(
        "tail",
        help="print a lab's alerts as they come",
        description="Print a lab's alert events as they arrive, one line each (or the JSON "
        "records with --json). --open first prints every episode still open, read from the "
        "start of the topic, then follows.",
    )
    tail.add_argument("--lab", required=True, help="lab id, as in the registry")
    start = tail.add_mutually_exclusive_group()
    start.add_argument(
        "--from-beginning", action="store_true", help="print every event the topic holds first"
    )
    start.add_argument(
        "--open", action="store_true", help="print the episodes still open first, then follow"
    )
    tail.add_argument("--json", action="store_true", help="print the JSON records")
    tail.add_argument("--lang", choices=("en", "nl"), default="en", help="message language")
    common(tail)
    tail.set_defaults(handler=_tail)

    fan = actions.add_parser(
        "fanout",
        help="deliver a lab's alerts to a webhook or an MQTT broker, without loss",
        description="Deliver every alert event of a lab, in order, to a webhook (HTTP POST of "
        "the JSON record) or an MQTT broker (QoS 1 on TOPIC/<sensor>). An event counts as "
        "delivered on a 2xx answer or the broker's acknowledgement; until then it is retried "
        "with backoff (1 s doubling to 5 min) and its Kafka offset is not committed, so a "
        "restart continues where delivery stopped. Events may repeat: (id, seq) identifies one.",
    )
    fan.add_argument("--lab", required=True, help="lab id, as in the registry")
    target = fan.add_mutually_exclusive_group(required=True)
    target.add_argument("--webhook", metavar="URL", help="http(s) URL to POST each event to")
    target.add_argument(
        "--mqtt",
        metavar="URL",
        help="mqtt[s]://[user[:password]@]host[:port][/topic] (topic default "
        "livinglab/alerts/<lab>)",
    )
    fan.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="extra HTTP header for the webhook, e.g. 'Authorization: Bearer ...' (repeatable)",
    )
    fan.add_argument(
        "--group",
        help="Kafka consumer group that remembers what was delivered "
        "(default livinglab-fanout-<lab>-webhook|mqtt)",
    )
    common(fan)
    fan.set_defaults(handler=_fanout)


def _lab_and_kafka(args: argparse.Namespace) -> tuple[Lab, str, bool] | int:
    """The lab, the bootstrap servers, and whether they belong to a local demo; or an exit code."""
    settings = Settings.from_env(data_dir=args.data_dir, registry=args.registry)
    try:
        lab = load_registry(settings.registry).lab(args.lab)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    if settings.kafka:
        return lab, settings.kafka, False
    bootstrap = running_broker(settings.data_dir)
    if bootstrap is None:
        print(
            NO_BROKER.format(
                env=ENV_KAFKA, data_dir=settings.data_dir, file=broker_file(settings.data_dir)
            ),
            file=sys.stderr,
        )
        return 2
    return lab, bootstrap, True


def _stopper(data_dir: Any, local: bool) -> Callable[[], bool]:
    """Stop on SIGTERM/SIGINT, and when the demo whose broker this is has ended."""
    stopped = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.append(True))

    def stop() -> bool:
        if local and not stopped and running_broker(data_dir) is None:
            print("the platform stopped; its embedded broker is gone", file=sys.stderr)
            stopped.append(True)
        return bool(stopped)

    return stop


def _tail(args: argparse.Namespace) -> int:
    from streams.alerting_feed import AlertBook, catch_up, follow, line, subscriber

    found = _lab_and_kafka(args)
    if isinstance(found, int):
        return found
    lab, bootstrap, local = found
    stop = _stopper(Settings.from_env(data_dir=args.data_dir).data_dir, local)

    def show(record: dict[str, Any]) -> None:
        text = json.dumps(record, ensure_ascii=False) if args.json else line(record, args.lang)
        print(text, flush=True)

    try:
        consumer = subscriber(bootstrap, lab.alert_topic, args.from_beginning or args.open)
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        if args.open:
            book = AlertBook()
            catch_up(consumer, book, stop)
            episodes = book.open()
            print(f"{len(episodes)} open alert(s) in {lab.id}", file=sys.stderr, flush=True)
            for record in episodes:
                show(record)
        follow(consumer, show, stop)
    finally:
        consumer.close()
    return 0


def _fanout(args: argparse.Namespace) -> int:
    from streams.alerting_feed import MqttTarget, Target, Webhook, fanout, fanout_consumer

    found = _lab_and_kafka(args)
    if isinstance(found, int):
        return found
    lab, bootstrap, local = found
    try:
        headers = dict(_header(h) for h in args.header)
        target: Target = (
            Webhook(args.webhook, headers) if args.webhook else MqttTarget(args.mqtt, lab.id)
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    kind = "webhook" if args.webhook else "mqtt"
    consumer = fanout_consumer(
        bootstrap, lab.alert_topic, args.group or f"livinglab-fanout-{lab.id}-{kind}"
    )
    stop = _stopper(Settings.from_env(data_dir=args.data_dir).data_dir, local)
    print(f"delivering {lab.alert_topic} to {args.webhook or target}", file=sys.stderr)
    try:
        delivered = fanout(consumer, target, stop)
    finally:
        consumer.close()
        target.close()
    print(f"{delivered} alert event(s) delivered", file=sys.stderr)
    return 0


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"--header must look like NAME:VALUE, got {text!r}")
    return name.strip(), value.strip()
