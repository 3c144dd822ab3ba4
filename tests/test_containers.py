"""Production parts in containers: Apache Kafka (KRaft) and a ClickHouse server.

These run wherever a Docker engine answers (testcontainers) and skip with the reason
where none does, as on the development machines of this project, which have only the
docker client. The same code paths run on the embedded stack in the other tests.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from livinglab.codec.payload import QUANTITIES
from livinglab.config import Settings
from livinglab.registry import load_registry
from livinglab.simulator.fleet import fleet_messages
from livinglab.stack import Stack


def _no_engine() -> str | None:
    try:
        import docker

        docker.from_env(timeout=5).ping()
    except Exception as exc:  # any failure to reach an engine means: skip
        return f"no Docker engine answers ({type(exc).__name__}): testcontainers cannot run"
    return None


REASON = _no_engine()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(REASON is not None, reason=REASON or "")]

START_MS = 1_795_132_800_000  # 2026-11-20T00:00:00Z


@pytest.fixture(scope="module")
def servers():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from testcontainers.clickhouse import ClickHouseContainer
        from testcontainers.kafka import KafkaContainer

    kafka = KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft()
    clickhouse = ClickHouseContainer(
        "clickhouse/clickhouse-server:24.8", username="admin", password="secret", dbname="lab"
    ).with_exposed_ports(8123)
    with kafka, clickhouse:
        host = clickhouse.get_container_host_ip()
        url = f"clickhouse://admin:secret@{host}:{clickhouse.get_exposed_port(8123)}/lab"
        yield kafka.get_bootstrap_server(), url


def test_replay_into_kafka_and_clickhouse_server(servers, tmp_path: Path) -> None:
    bootstrap, url = servers
    registry = load_registry()
    lab = registry.labs[0]
    settings = Settings.from_env(kafka=bootstrap, clickhouse=url, data_dir=tmp_path)
    frames = set()
    with Stack(settings, registry) as stack:
        from connectors.ingress import Ingress

        ingress = Ingress(stack.producer(), source="replay")
        for msg in fleet_messages(registry, START_MS, START_MS + 2 * 3_600_000, 11):
            if msg.frame[0] in {u.dev_eui for u in lab.units}:
                frames.add(msg.frame)
                ingress.submit(msg.body)
        ingress.flush()
        stack.end_of_input(ingress.producer)
        stack.wait_drained()
        counts = json.loads(
            stack.query(
                "SELECT (SELECT count() FROM uplinks FINAL) AS u, "
                "(SELECT count() FROM readings FINAL) AS r, "
                "(SELECT count() FROM aggregates FINAL WHERE window = '1h') AS a"
            )
        )
    assert counts["u"] == len(frames)
    assert counts["r"] == len(frames) * len(QUANTITIES)
    assert counts["a"] == len(lab.units) * 2 * len(QUANTITIES)


def test_row_policy_confines_a_lab_analyst(servers) -> None:
    import clickhouse_connect

    from livinglab.grants import analyst_grants
    from livinglab.store import ServerStore, migrate

    _, url = servers
    admin = ServerStore(url)
    migrate(admin)
    admin.execute("INSERT INTO aggregates (lab, sensor, quantity, window, window_start, "
                  "window_end, count, coverage, mean, min, max, version) VALUES "
                  "('zoetermeer','z1','laeq','1h',now(),now(),1,1,50,50,50,1),"
                  "('utrecht','u1','laeq','1h',now(),now(),1,1,50,50,50,1)")  # fmt: skip
    for statement in analyst_grants(load_registry(), "lab").split(";"):
        sql = "\n".join(x for x in statement.splitlines() if not x.startswith("--")).strip()
        if sql:
            admin.execute(sql)
    admin.execute(
        "CREATE USER IF NOT EXISTS zt IDENTIFIED WITH sha256_password BY 'pw' "
        "DEFAULT ROLE analyst_zoetermeer"
    )
    admin.execute("GRANT analyst_zoetermeer TO zt")
    host_port = url.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    analyst = clickhouse_connect.get_client(
        host=host, port=int(port), username="zt", password="pw", database="lab"
    )
    labs = {row[0] for row in analyst.query("SELECT DISTINCT lab FROM aggregates").result_rows}
    assert labs == {"zoetermeer"}
    with pytest.raises(Exception, match="(?i)not enough privileges|ACCESS_DENIED"):
        analyst.query("SELECT count() FROM deadletter")
