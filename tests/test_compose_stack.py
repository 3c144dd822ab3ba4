"""docker-compose.yml, Dockerfile and deploy/ against the code they run.

No Docker engine here, so the stack cannot start; instead every reference it makes is
checked against the code and the files: commands parse with the real CLI parser,
environment names are the ones the code reads, ports, hosts, users and paths line up
across services, and the health-check script and the Mosquitto configuration are run
for real (Mosquitto from its binary).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import importlib.util
import io
import re
import shutil
import socket
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

import connectors.cli
import livinglab.config
from connectors.semtech_udp import PullData, parse_datagram, pull_ack
from dashboards.grafana import PLUGIN_ID, PLUGIN_VERSION
from dashboards.provisioning import datasource
from livinglab.cli import build_parser
from livinglab.config import Settings
from livinglab.registry import load_registry
from tests.conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]
OURS = {name: s for name, s in SERVICES.items() if s.get("build")}
ONE_SHOT = {name for name, s in SERVICES.items() if s.get("restart") == "no"}
CORE_ENV = ("LIVINGLAB_KAFKA", "LIVINGLAB_CLICKHOUSE", "LIVINGLAB_REGISTRY", "LIVINGLAB_DATA_DIR")
_DEFAULTED = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def effective(value: object) -> str:
    """A compose value with every ${VAR:-default} at its default (no .env)."""
    return _DEFAULTED.sub(lambda m: m.group(2) or "", str(value))


def _env(name: str) -> dict[str, str]:
    return {k: effective(v) for k, v in SERVICES[name].get("environment", {}).items()}


def _option(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def _port(address: str) -> int:
    return int(address.rpartition(":")[2])


def _published(name: str) -> set[str]:
    """Container ports a service publishes, as "port/proto"."""
    out = set()
    for mapping in SERVICES[name].get("ports", []):
        container = str(mapping).split(":")[-1]
        out.add(container if "/" in container else f"{container}/tcp")
    return out


def _unknown_verbs(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """The verb path of argv up to the first word the parser has no subcommand for."""
    path = []
    for word in argv:
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None or word.startswith("-"):
            return []
        path.append(word)
        if word not in sub.choices:
            return path
        parser = sub.choices[word]
    return []


def test_every_service_command_is_a_verb_the_cli_has() -> None:
    parser = build_parser()
    missing = []
    for name, service in OURS.items():
        command = service["command"]
        assert command[0] == "livinglab", name
        if unknown := _unknown_verbs(parser, command[1:]):
            missing.append(f"{name}: livinglab {' '.join(unknown)}")
    assert not missing, "compose runs verbs livinglab does not have: " + "; ".join(missing)
    for name, service in OURS.items():
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                args = parser.parse_args(service["command"][1:])
            except SystemExit:
                pytest.fail(f"{name}: {' '.join(service['command'])}: {err.getvalue()}")
        assert getattr(args, "handler", None) or args.verb in ("worker", "sink"), name


def _names_the_code_reads() -> set[str]:
    names: set[str] = set()
    for module in (livinglab.config, connectors.cli):
        for key, value in vars(module).items():
            if key.startswith("ENV_"):
                names.update(value.values() if isinstance(value, dict) else [value])
    return names


def test_environment_names_are_the_ones_the_code_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    known = _names_the_code_reads()
    for name in OURS:
        env = _env(name)
        unknown = {k for k in env if k.startswith("LIVINGLAB_")} - known
        assert not unknown, f"{name} sets {unknown}, which no code reads"
        assert set(CORE_ENV) <= set(env), name
        for key in [k for k in env if k.startswith("LIVINGLAB_")]:
            monkeypatch.setenv(key, env[key])
        settings = Settings.from_env()
        assert settings.kafka == "kafka:9092" and settings.clickhouse == env["LIVINGLAB_CLICKHOUSE"]
        assert str(settings.registry) == env["LIVINGLAB_REGISTRY"]
        mounts = [v.split(":")[1] for v in SERVICES[name]["volumes"] if v.startswith("./config/")]
        assert env["LIVINGLAB_REGISTRY"] in mounts, f"{name}: the registry is not mounted there"


def test_kafka_address_is_the_brokers_advertised_listener() -> None:
    kafka = _env("kafka")
    host_port = _env("worker")["LIVINGLAB_KAFKA"]
    assert host_port.split(":")[0] == "kafka"
    advertised = dict(
        (urlparse(u).scheme.upper(), urlparse(u).netloc)
        for u in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    )
    inner = kafka["KAFKA_INTER_BROKER_LISTENER_NAME"]
    assert advertised[inner] == host_port
    listeners = {
        urlparse(u).scheme.upper(): urlparse(u).port for u in kafka["KAFKA_LISTENERS"].split(",")
    }
    assert listeners[inner] == _port(host_port)
    external = advertised["EXTERNAL"]
    assert f"{listeners['EXTERNAL']}/tcp" in _published("kafka") and external.startswith(
        "localhost"
    )


def test_clickhouse_url_matches_the_server_and_the_grafana_datasource() -> None:
    url = urlparse(_env("sink")["LIVINGLAB_CLICKHOUSE"])
    server = _env("clickhouse")
    config = ET.parse(ROOT / "deploy/clickhouse/config.d/livinglab.xml").getroot()
    assert config.tag == "clickhouse"
    http_port = int(config.findtext("http_port"))
    assert (url.hostname, url.port) == ("clickhouse", http_port)
    assert f"{http_port}/tcp" in _published("clickhouse")
    assert (url.username, url.password, url.path.lstrip("/")) == (
        server["CLICKHOUSE_USER"],
        server["CLICKHOUSE_PASSWORD"],
        server["CLICKHOUSE_DB"],
    )
    # Secrets come from the same variable, not from two defaults that happen to agree.
    raw = SERVICES["clickhouse"]["environment"]["CLICKHOUSE_PASSWORD"]
    assert raw in COMPOSE["x-livinglab"]["environment"]["LIVINGLAB_CLICKHOUSE"]
    ds = datasource(_env("dashboards")["LIVINGLAB_CLICKHOUSE"])["jsonData"]
    assert (ds["host"], ds["port"], ds["defaultDatabase"]) == ("clickhouse", http_port, "livinglab")


def test_mqtt_connector_reaches_mosquitto_as_its_user() -> None:
    command = SERVICES["ingest-chirpstack"]["command"]
    url = urlparse(_option(command, "--url"))
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    [listener] = re.findall(r"^listener (\d+)", conf, re.MULTILINE)
    assert (url.hostname, url.port) == ("mosquitto", int(listener))
    assert f"{listener}/tcp" in _published("mosquitto")
    mqtt = SERVICES["mosquitto"]["environment"]
    assert url.username == mqtt["MQTT_USER"]
    password = SERVICES["ingest-chirpstack"]["environment"][connectors.cli.ENV_MQTT_PASSWORD]
    assert password == mqtt["MQTT_PASSWORD"]


def test_listening_services_publish_the_ports_they_listen_on() -> None:
    udp = SERVICES["gateway-udp"]
    port = _port(_option(udp["command"], "--listen"))
    assert f"{port}/udp" in _published("gateway-udp")
    assert udp["healthcheck"]["test"][-1] == f"127.0.0.1:{port}"
    web = SERVICES["ingest-webhook"]
    port = _port(_option(web["command"], "--listen"))
    assert f"{port}/tcp" in _published("ingest-webhook")
    assert urlparse(web["healthcheck"]["test"][-1]).port == port


def _service_ports() -> dict[str, set[int]]:
    ports = {
        "kafka": {_port(_env("worker")["LIVINGLAB_KAFKA"])},
        "clickhouse": {urlparse(_env("sink")["LIVINGLAB_CLICKHOUSE"]).port},
        "mosquitto": {urlparse(_option(SERVICES["ingest-chirpstack"]["command"], "--url")).port},
    }
    return ports


def test_health_checks_and_start_order() -> None:
    ports = _service_ports()
    for name, service in SERVICES.items():
        if name in ONE_SHOT:
            continue
        test = service.get("healthcheck", {}).get("test")
        assert test, f"{name} has no health check"
        if test[:3] == ["CMD", "livinglab-healthcheck", "tcp"]:
            for target in test[3:]:
                host, _, port = target.partition(":")
                assert int(port) in ports[host], f"{name} checks {target}"
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in SERVICES, f"{name} waits for unknown {dependency}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dependency]
            else:
                assert rule["condition"] == "service_completed_successfully"
                assert dependency in ONE_SHOT
        if name in OURS:
            assert "kafka" in service.get("depends_on", {}), f"{name} starts before Kafka"


def test_grafana_reads_what_the_dashboards_service_writes() -> None:
    build = SERVICES["dashboards"]["command"]
    out, seen_as = _option(build, "--out"), _option(build, "--grafana-path")
    assert out == seen_as
    grafana = SERVICES["grafana"]
    assert _env("grafana")["GF_PATHS_PROVISIONING"] == f"{seen_as}/provisioning"
    volume = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["dashboards"]["volumes"]}[out]
    assert f"{volume}:{seen_as}:ro" in grafana["volumes"] and volume in COMPOSE["volumes"]
    assert _env("grafana")["GF_PLUGINS_PREINSTALL_SYNC"] == f"{PLUGIN_ID}@{PLUGIN_VERSION}"
    assert grafana["depends_on"]["dashboards"]["condition"] == "service_completed_successfully"


def test_dockerfile_copies_what_exists_and_installs_the_health_check() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copies = re.findall(r"^COPY (?:--\S+ )*(.+) (\S+)$", dockerfile, re.MULTILINE)
    assert copies
    for sources, _ in copies:
        for source in sources.split():
            assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
            assert not any(Path(source).match(p) or source == p for p in ignored), source
    destinations = {dest for _, dest in copies}
    assert "/usr/local/bin/livinglab-healthcheck" in destinations
    for package in ("livinglab", "connectors", "streams", "schemas", "dashboards", "config"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert all(s.get("build") == "." for s in OURS.values())


# --- the health-check script, run against stand-ins for the services it probes ----------


def _load_healthcheck():
    spec = importlib.util.spec_from_file_location("healthcheck", ROOT / "deploy/healthcheck.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.TIMEOUT_S = 0.5
    return module


def _udp_bridge_stand_in(answer: bool) -> tuple[socket.socket, threading.Thread, list]:
    """Parses what it gets with the bridge's own protocol code; acks like the bridge."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    received: list = []

    def serve() -> None:
        data, peer = server.recvfrom(1024)
        message = parse_datagram(data)
        received.append(message)
        if answer:
            server.sendto(pull_ack(message.token), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread, received


@pytest.mark.parametrize("answer", [True, False])
def test_udp_check_speaks_semtech_as_a_registered_gateway(answer: bool) -> None:
    check = _load_healthcheck()
    server, thread, received = _udp_bridge_stand_in(answer)
    with server:
        assert check.udp(f"127.0.0.1:{server.getsockname()[1]}") is answer
        thread.join(2)
    [message] = received
    assert isinstance(message, PullData)
    registered = {g.id for lab in load_registry().labs for g in lab.gateways}
    assert message.gateway.lower() in registered


class _Answer(BaseHTTPRequestHandler):
    status = 404

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(("status", "healthy"), [(404, True), (200, True), (503, False)])
def test_http_and_tcp_checks(status: int, healthy: bool) -> None:
    check = _load_healthcheck()
    handler = type("Handler", (_Answer,), {"status": status})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        assert check.http(f"http://127.0.0.1:{port}/") is healthy
        assert check.tcp(f"127.0.0.1:{port}") is True
    finally:
        server.shutdown()
        server.server_close()
    assert check.tcp(f"127.0.0.1:{port}") is False  # nothing listens any more


def _mqtt_connect(port: int, user: str | None) -> int:
    """CONNACK reason code for a login (0 = accepted)."""
    import paho.mqtt.client as mqtt

    done = threading.Event()
    code: list[int] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    if user:
        client.username_pw_set(user, "pw")
    client.on_connect = lambda c, u, flags, rc, props: (code.append(rc.value), done.set())
    client.connect("127.0.0.1", port)
    client.loop_start()
    done.wait(5)
    client.loop_stop()
    client.disconnect()
    return code[0]


@pytest.mark.skipif(not shutil.which("mosquitto"), reason="no mosquitto binary")
def test_mosquitto_config_starts_and_refuses_anonymous_clients(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    conf = re.sub(r"^listener \d+", f"listener {port} 127.0.0.1", conf, flags=re.MULTILINE)
    conf = conf.replace("/mosquitto/data", str(tmp_path))
    # In the container the broker drops to the `mosquitto` user, which owns the password
    # file (the compose command chowns it); here it stays the user running the tests.
    conf += f"\nuser {getpass.getuser()}\n"
    (tmp_path / "mosquitto.conf").write_text(conf)
    passwd = ["mosquitto_passwd", "-b", "-c", str(tmp_path / "passwd"), "livinglab", "pw"]
    subprocess.run(passwd, check=True, capture_output=True)
    (tmp_path / "passwd").chmod(0o600)
    broker = subprocess.Popen(
        ["mosquitto", "-c", str(tmp_path / "mosquitto.conf")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 5
        while not _load_healthcheck().tcp(f"127.0.0.1:{port}"):
            assert broker.poll() is None and time.monotonic() < deadline, "mosquitto did not start"
            time.sleep(0.05)
        assert _mqtt_connect(port, "livinglab") == 0
        assert _mqtt_connect(port, None) != 0  # not authorised
    finally:
        broker.terminate()
        log = broker.communicate(timeout=5)[0].decode()
    assert "Error" not in log, log
