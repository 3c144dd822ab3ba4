"""Alerts end to end on the embedded stack (Tansu, Faust worker, chDB sink).

Two labs send four simulated hours through the real ingress; in the first lab one
unit's PM module freezes and later another unit goes dead. Its municipality's topic
must carry exactly those alerts (the other lab's stays empty), ClickHouse must hold
what the topic carries, and a subscriber arriving afterwards must see which episode
is still open.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from connectors.ingress import Ingress
from livinglab.config import ENV_KAFKA, Settings
from livinglab.registry import DEFAULT_REGISTRY, Registry, load_registry
from livinglab.simulator.fleet import fleet_messages
from livinglab.simulator.scenarios import Injector, ground_truth, plan
from livinglab.stack import Stack
from streams.alerting_feed import AlertBook, catch_up, subscriber
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

H = 3_600_000
START = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp() * 1000)
END = START + 4 * H


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory):
    """The running stack after the run was fed and drained, with the run's ground truth."""
    tmp = tmp_path_factory.mktemp("alerts")
    raw = yaml.safe_load(DEFAULT_REGISTRY.read_text())
    raw["labs"] = raw["labs"][:2]
    path = tmp / "labs.yaml"
    path.write_text(yaml.safe_dump(raw))
    registry = load_registry(path)
    first = Registry(path, registry.labs[:1], registry.by_dev_eui, registry.by_dev_addr)
    episodes = plan(first, START, END, ("stuck", "dead"), seed=1)
    truth = ground_truth(first, episodes, START, END, 1, ("stuck", "dead"))["episodes"]
    settings = replace(Settings.from_env(data_dir=tmp / "data", registry=path), kafka=None)
    with Stack(settings, registry) as stack:
        ingress = Ingress(stack.producer(), source="sim")
        for msg in fleet_messages(registry, START, END, 1, Injector(episodes, 1)):
            ingress.submit(msg.body)
        ingress.flush()
        stack.end_of_input(ingress.producer)
        stack.wait_drained(timeout=120)
        yield stack, registry, truth


def _topic(stack: Stack, topic: str) -> AlertBook:
    """What a subscriber reading the topic from its beginning makes of it."""
    consumer = subscriber(stack.kafka, topic, from_beginning=True)
    book = AlertBook()
    try:
        catch_up(consumer, book, lambda: False)
    finally:
        consumer.close()
    return book


def test_each_episode_is_alerted_on_its_labs_topic_only(platform) -> None:
    stack, registry, truth = platform
    first, second = registry.labs
    book = _topic(stack, first.alert_topic)
    episodes = sorted((r["sensor"], r["kind"], r["state"]) for r in book.latest.values())
    stuck, dead = truth
    assert episodes == sorted(
        [(stuck["sensor"], "flatline", "resolved"), (dead["sensor"], "offline", "open")]
    )
    assert _topic(stack, second.alert_topic).latest == {}


def test_clickhouse_holds_what_the_topic_carries(platform) -> None:
    stack, registry, _ = platform
    lab = registry.labs[0]
    rows = [
        json.loads(line)
        for line in stack.query(
            "SELECT id, seq, sensor, kind, quantity, state, severity, message_nl, "
            "toUnixTimestamp64Milli(ts) AS ts FROM alerts FINAL ORDER BY id, seq"
        ).splitlines()
    ]
    consumer = subscriber(stack.kafka, lab.alert_topic, from_beginning=True)
    events: list[dict] = []

    class Every(AlertBook):
        def add(self, record: dict) -> bool:
            events.append(record)
            return super().add(record)

    try:
        catch_up(consumer, Every(), lambda: False)
    finally:
        consumer.close()
    expected = sorted(
        (e["id"], e["seq"], e["sensor"], e["kind"], e["quantity"], e["state"], e["severity"],
         e["message_nl"], int(datetime.fromisoformat(e["ts"][:-1] + "+00:00").timestamp() * 1000))
        for e in events
    )  # fmt: skip
    assert [tuple(r.values()) for r in rows] == expected
    assert [e["state"] for e in events if e["kind"] == "flatline"] == ["open", "resolved"]


def test_a_late_subscriber_sees_what_is_still_open(platform) -> None:
    stack, registry, truth = platform
    lab = registry.labs[0]
    data_dir = stack.settings.data_dir
    env = {k: v for k, v in os.environ.items() if k != ENV_KAFKA}
    tail = subprocess.Popen(
        [sys.executable, "-m", "livinglab", "alerts", "tail", "--lab", lab.id, "--open",
         "--json", "--data-dir", str(data_dir), "--registry", str(registry.path)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        [line] = _lines(tail, 1)
    finally:
        tail.terminate()
        tail.wait(10)
    record = json.loads(line)
    dead = truth[1]
    assert (record["sensor"], record["kind"], record["state"]) == (
        dead["sensor"],
        "offline",
        "open",
    )
    assert "1 open alert(s)" in tail.stderr.read()


def _lines(proc: subprocess.Popen, n: int, timeout: float = 30) -> list[str]:
    """The first ``n`` lines the process prints, waiting at most ``timeout`` seconds."""
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    lines: list[str] = []
    while len(lines) < n and selector.select(timeout):
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
    assert len(lines) == n, f"got {lines}; stderr: {proc.stderr.read() if proc.poll() else ''}"
    return lines


def test_broker_file_points_at_the_running_broker(platform) -> None:
    stack, _, _ = platform
    info = json.loads((Path(stack.settings.data_dir) / "broker.json").read_text())
    assert info == {"pid": os.getpid(), "bootstrap": stack.kafka}
