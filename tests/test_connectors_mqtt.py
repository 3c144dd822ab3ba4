"""The MQTT connector against a real Mosquitto (started here, on a free port) and Tansu.

Messages are the network servers' documented examples (tests/fixtures/lns), published on the
topics The Things Stack and ChirpStack use. What the connector acknowledges is tested through
the broker: a message left unacknowledged is delivered again to the next connector that resumes
the session, which is the only way an MQTT broker can say "not acked".
"""

from __future__ import annotations

import datetime as dt
import getpass
import ipaddress
import json
import logging
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from confluent_kafka import Producer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from connectors.handoff import Handoff, connector_producer
from connectors.ingress import Ingress
from connectors.mqtt import LNS_TOPICS, Broker, MqttIngest, lns_topic
from livinglab.processes import Child, free_port, wait_port
from tests import test_connectors_handoff as kit
from tests.test_connectors_handoff import running, taps

kafka, producer = kit.kafka, kit.producer  # the module's broker and connector producer
FIXTURES = Path(__file__).parent / "fixtures" / "lns"
USER, PASSWORD = "app1@tenant1", "NNSXS.s3cr3t-api-key"  # TTS: user {app}@{tenant}, API key
TTS_UP = "v3/app1@tenant1/devices/dev1/up"
CS4_UP = "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/0101010101010101/event/up"
CS3_UP = "application/123/device/0202020202020202/event/up"
TTS = (FIXTURES / "tts_v3_uplink_example.json").read_bytes()
CS4 = (FIXTURES / "chirpstack_v4_up_example.json").read_bytes()
CS3 = json.dumps(
    {**json.loads((FIXTURES / "chirpstack_v3_up_example.json").read_bytes()), "data": "AQID"}
).encode()


@contextmanager
def mosquitto(workdir: Path, port: int, tls: tuple[Path, Path] | None = None) -> Iterator[int]:
    """A broker that wants USER/PASSWORD, optionally TLS only (certificate, key)."""
    passwords = workdir / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwords), USER, PASSWORD], check=True)
    config = [
        f"user {getpass.getuser()}",
        f"listener {port} 127.0.0.1",
        "allow_anonymous false",
        f"password_file {passwords}",
        "persistence false",
    ]
    if tls:
        config += [f"certfile {tls[0]}", f"keyfile {tls[1]}"]
    (workdir / f"mosquitto-{port}.conf").write_text("\n".join(config) + "\n")
    child = Child(
        "mosquitto",
        ["/usr/sbin/mosquitto", "-c", str(workdir / f"mosquitto-{port}.conf")],
        workdir / "mosquitto.log",
    )
    try:
        wait_port(port, 10, child.proc)
        yield port
    finally:
        child.stop()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with mosquitto(tmp_path_factory.mktemp("mosquitto"), free_port()) as port:
        yield port


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def publish(port: int, *messages: tuple[str, bytes], tls_ca: Path | None = None) -> None:
    """Publish at QoS 1 as the network server would, and wait for the broker's PUBACKs."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="lns")
    client.username_pw_set(USER, PASSWORD)
    if tls_ca:
        client.tls_set(ca_certs=str(tls_ca))
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for topic, payload in messages:
            client.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def start(
    producer: Producer,
    port: int,
    client_id: str,
    topics: list[str] | None = None,
    *,
    url: str | None = None,
    password: str | None = PASSWORD,
    ca_file: Path | None = None,
) -> MqttIngest:
    target = Broker.from_url(url or f"mqtt://app1%40tenant1@127.0.0.1:{port}", password=password)
    handoff = Handoff(Ingress(producer, source="mqtt"), limit=8)
    topics = topics or [lns_topic("tts", target), LNS_TOPICS["chirpstack"]]
    ingest = MqttIngest(handoff, target, topics, client_id, ca_file=ca_file and str(ca_file))
    ingest.client.reconnect_delay_set(0.1, 0.5)  # keep the tests quick
    ingest.start()
    return ingest


def finish(ingest: MqttIngest) -> int:
    ingest.stop()
    return ingest.handoff.close(timeout=0.5)


def test_tts_and_chirpstack_uplinks_reach_kafka_and_are_acknowledged(
    broker: int, producer: Producer, kafka: str
) -> None:
    with taps(kafka) as (uplinks, dead):
        ingest = start(producer, broker, "test-both")
        wait_for(ingest.subscribed.is_set, "the subscription")
        publish(broker, (TTS_UP, TTS), (CS4_UP, CS4), (CS3_UP, CS3))
        wait_for(lambda: ingest.stats["acked"] == 3, "three acknowledgements")
        assert finish(ingest) == 0
        records = uplinks.read()
        assert dead.read() == []
    assert [(r["source"], r["dev_eui"], r["f_cnt"]) for r in records] == [
        ("tts", "0004a30b001c0530", 1),
        ("chirpstack4", "0101010101010101", 0),
        ("chirpstack3", "0202020202020202", 10),
    ]
    assert [r["original"] for r in records] == [TTS, CS4, CS3]


def test_junk_is_dead_lettered_and_acknowledged_and_the_connector_carries_on(
    broker: int, producer: Producer, kafka: str
) -> None:
    v4 = json.loads(CS4)
    junk = [
        b"\x00\xff\xfe\x80",
        b"{not json",
        json.dumps({**v4, "fCnt": "many"}).encode(),
        json.dumps({**v4, "pad": "x" * 100_000}).encode(),
    ]
    with taps(kafka) as (uplinks, dead):
        ingest = start(producer, broker, "test-junk")
        wait_for(ingest.subscribed.is_set, "the subscription")
        publish(broker, *((CS4_UP, body) for body in junk), (CS4_UP, CS4))
        wait_for(lambda: ingest.stats["acked"] == 5, "five acknowledgements")
        assert finish(ingest) == 0
        assert [r["dev_eui"] for r in uplinks.read()] == ["0101010101010101"]
        letters = dead.read()
    assert [d["reason"] for d in letters] == ["json", "json", "field", "too_large"]
    assert [d["original"] for d in letters] == junk
    assert all(d["source"] == "mqtt" for d in letters)


def test_without_kafka_nothing_is_acknowledged_and_the_broker_delivers_again(
    broker: int, producer: Producer, kafka: str
) -> None:
    nowhere = connector_producer(f"127.0.0.1:{free_port()}")
    first = start(nowhere, broker, "test-redelivery", [TTS_UP])
    wait_for(first.subscribed.is_set, "the subscription")
    publish(broker, (TTS_UP, TTS), (TTS_UP, TTS.replace(b'"f_cnt" : 1', b'"f_cnt" : 2')))
    wait_for(lambda: first.handoff.pending == 2, "two messages waiting for Kafka")
    assert first.stats["acked"] == 0
    assert finish(first) == 2  # given up unacknowledged when the connector stops
    with taps(kafka) as (uplinks, _):
        second = start(producer, broker, "test-redelivery", [TTS_UP])  # resumes the session
        wait_for(lambda: second.stats["acked"] == 2, "the redelivered messages")
        assert finish(second) == 0
        assert sorted(r["f_cnt"] for r in uplinks.read()) == [1, 2]


def test_waits_for_the_broker_and_reconnects_after_it_restarts(
    tmp_path: Path, producer: Producer, kafka: str
) -> None:
    port = free_port()
    ingest = start(producer, port, "test-reconnect", [CS4_UP])  # nothing listens there yet
    wait_for(lambda: ingest.stats["unreachable"] >= 1, "a failed first attempt")
    with mosquitto(tmp_path, port):
        wait_for(ingest.subscribed.is_set, "the subscription")
    wait_for(lambda: ingest.stats["disconnected"] >= 1, "the connector noticing")
    with taps(kafka) as (uplinks, _), mosquitto(tmp_path, port):
        wait_for(ingest.subscribed.is_set, "the subscription after reconnecting")
        publish(port, (CS4_UP, CS4))
        wait_for(lambda: ingest.stats["acked"] == 1, "the acknowledgement")
        assert finish(ingest) == 0
        assert [r["dev_eui"] for r in uplinks.read()] == ["0101010101010101"]
    assert ingest.stats["connected"] == 2


def test_tls_with_a_private_ca(tmp_path: Path, producer: Producer, kafka: str) -> None:
    ca_file, cert, key = make_certificates(tmp_path)
    port = free_port()
    with taps(kafka) as (uplinks, _), mosquitto(tmp_path, port, tls=(cert, key)):
        ingest = start(
            producer,
            port,
            "test-tls",
            [CS4_UP],
            url=f"mqtts://app1%40tenant1@127.0.0.1:{port}",
            ca_file=ca_file,
        )
        wait_for(ingest.subscribed.is_set, "the subscription over TLS")
        publish(port, (CS4_UP, CS4), tls_ca=ca_file)
        wait_for(lambda: ingest.stats["acked"] == 1, "the acknowledgement")
        assert finish(ingest) == 0
        assert [r["source"] for r in uplinks.read()] == ["chirpstack4"]


def test_the_password_never_reaches_a_log_line(
    broker: int, producer: Producer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-" + PASSWORD
    with caplog.at_level(logging.DEBUG):
        refused = start(producer, broker, "test-wrong", password=wrong)
        wait_for(lambda: refused.stats["refused"] >= 1, "the broker refusing")
        finish(refused)
        url = f"mqtt://app1%40tenant1:{PASSWORD}@127.0.0.1:{broker}"
        accepted = start(producer, broker, "test-url", url=url, password=None)
        wait_for(accepted.subscribed.is_set, "the subscription")
        finish(accepted)
        logging.getLogger("test").info("broker %s %r", accepted.broker, accepted.broker)
    assert "Not authorized" in caplog.text and "subscribed" in caplog.text
    assert PASSWORD not in caplog.text and wrong not in caplog.text


def test_broker_urls() -> None:
    broker = Broker.from_url("mqtts://app1%40ttn:pw@eu1.cloud.thethings.network")
    assert (broker.host, broker.port, broker.tls, broker.username, broker.password) == (
        "eu1.cloud.thethings.network",
        8883,
        True,
        "app1@ttn",
        "pw",
    )
    assert lns_topic("tts", broker) == "v3/app1@ttn/devices/+/up"
    assert (
        Broker.from_url("mqtt://h", tls=True).port == 1883
        and Broker.from_url("mqtt://h", tls=True).tls
    )
    assert Broker.from_url("mqtt://u:url@h:1884", password="env").password == "env"
    for bad in ("http://h", "mqtt://", "mqtt://h:port"):
        with pytest.raises(ValueError):
            Broker.from_url(bad)
    with pytest.raises(ValueError, match="app"):
        lns_topic("tts", Broker.from_url("mqtt://plainuser@h"))


def make_certificates(workdir: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for 127.0.0.1 it signed: (ca, cert, key)."""
    now = dt.datetime.now(dt.UTC)

    def certificate(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: str,
        signer: ec.EllipticCurvePrivateKey,
        ca: bool,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    paths = workdir / "ca.pem", workdir / "server.pem", workdir / "server.key"
    pem = serialization.Encoding.PEM
    paths[0].write_bytes(certificate("test CA", ca_key, "test CA", ca_key, True).public_bytes(pem))
    paths[1].write_bytes(
        certificate("127.0.0.1", server_key, "test CA", ca_key, False).public_bytes(pem)
    )
    paths[2].write_bytes(
        server_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


def test_the_ingest_mqtt_verb(broker: int, kafka: str) -> None:
    env = {"LIVINGLAB_KAFKA": kafka, "LIVINGLAB_MQTT_PASSWORD": PASSWORD}
    url = f"mqtt://app1%40tenant1@127.0.0.1:{broker}"
    args = (
        "ingest",
        "mqtt",
        "--url",
        url,
        "--lns",
        "tts",
        "--client-id",
        "test-cli",
        "--report-every",
        "0.1",
    )
    with taps(kafka) as (uplinks, _):
        with running(*args, env=env, ready="subscribed") as verb:
            publish(broker, (TTS_UP, TTS))
            wait_for(lambda: '"acked": 1' in verb.text, "the acknowledgement")
        assert verb.process.returncode == 0
        assert [r["dev_eui"] for r in uplinks.read()] == ["0004a30b001c0530"]
    assert "v3/app1@tenant1/devices/+/up" in verb.text and PASSWORD not in verb.text
