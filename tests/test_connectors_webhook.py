"""The webhook receiver over real HTTP (the standard library's client) into a real Kafka (Tansu).

Bodies are the network servers' documented examples (tests/fixtures/lns), posted the way The
Things Stack webhooks and the ChirpStack HTTP integration post them.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from connectors.handoff import Handoff, connector_producer
from connectors.ingress import Ingress
from connectors.lns import MAX_MESSAGE_BYTES
from connectors.webhook import Webhook, serve
from livinglab.processes import free_port
from tests import test_connectors_handoff as kit
from tests.test_connectors_handoff import running, taps

kafka, producer = kit.kafka, kit.producer  # the module's broker and connector producer
FIXTURES = Path(__file__).parent / "fixtures" / "lns"
TTS = (FIXTURES / "tts_v3_uplink_example.json").read_bytes()
CS4 = (FIXTURES / "chirpstack_v4_up_example.json").read_bytes()
SECRETS = {"tts": b"tts-webhook-s3cret", "chirpstack": b"chirpstack-webhook-s3cret"}
HEADER = "X-Livinglab-Secret"


@contextmanager
def serving(webhook: Webhook) -> Iterator[int]:
    """Serve `webhook` on a free port from a thread of its own; yields the port."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runner = asyncio.run_coroutine_threadsafe(serve(webhook, "127.0.0.1", 0), loop).result(10)
    try:
        yield runner.addresses[0][1]
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


def post(
    port: int, path: str, body: bytes, secret: bytes | None, chunked: bool = False, **headers: str
) -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    if secret is not None:
        headers[HEADER] = secret.decode()
    headers["Content-Type"] = "application/json"
    try:
        if chunked:
            chunks = (body[i : i + 8192] for i in range(0, len(body), 8192))
            connection.request("POST", path, chunks, headers, encode_chunked=True)
        else:
            connection.request("POST", path, body, headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    except (ConnectionError, http.client.HTTPException):  # the server may close on a huge body
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.fixture
def webhook(producer: Producer) -> Iterator[Webhook]:
    hook = Webhook(Handoff(Ingress(producer, source="webhook")), SECRETS, ack_timeout=10)
    yield hook
    assert hook.handoff.close() == 0


def test_uplinks_are_answered_once_kafka_has_them(webhook: Webhook, kafka: str) -> None:
    with taps(kafka) as (uplinks, dead), serving(webhook) as port:
        assert post(port, "/tts", TTS, SECRETS["tts"]) == (
            200,
            {"dev_eui": "0004a30b001c0530", "f_cnt": 1},
        )
        assert post(port, "/tts/uplink", TTS, SECRETS["tts"])[0] == 200  # TTS appends paths
        assert post(port, "/chirpstack?event=up", CS4, SECRETS["chirpstack"]) == (
            200,
            {"dev_eui": "0101010101010101", "f_cnt": 0},
        )
        records = uplinks.read()
        assert dead.read() == []
    assert [(r["source"], r["original"]) for r in records] == [
        ("tts", TTS),
        ("tts", TTS),
        ("chirpstack4", CS4),
    ]


def test_other_events_are_acknowledged_and_ignored(webhook: Webhook, kafka: str) -> None:
    join_accept = {"end_device_ids": {"device_id": "dev1"}, "join_accept": {"session_key_id": "x"}}
    with taps(kafka) as (uplinks, dead), serving(webhook) as port:
        for event in ("join", "status", "ack", "txack", "log", "location", "integration"):
            assert post(port, f"/chirpstack?event={event}", b"{}", SECRETS["chirpstack"]) == (
                200,
                {"ignored": event},
            )
        assert post(port, "/tts", json.dumps(join_accept).encode(), SECRETS["tts"]) == (
            200,
            {"ignored": "join_accept"},
        )
        assert uplinks.read() == [] and dead.read() == []


def test_secrets_are_checked_per_integration(webhook: Webhook, kafka: str) -> None:
    with taps(kafka) as (uplinks, dead), serving(webhook) as port:
        assert post(port, "/tts", TTS, None)[0] == 401
        assert post(port, "/tts", TTS, b"guess")[0] == 401
        assert post(port, "/tts", TTS, SECRETS["chirpstack"])[0] == 401  # the other one's
        assert post(port, "/tts", TTS, SECRETS["tts"] + b"x")[0] == 401
        assert post(port, "/chirpstack?event=up", CS4, SECRETS["tts"])[0] == 401
        assert uplinks.read() == [] and dead.read() == []
        only_tts = Webhook(webhook.handoff, {"tts": SECRETS["tts"]})
    with serving(only_tts) as port:
        assert post(port, "/chirpstack?event=up", CS4, SECRETS["chirpstack"])[0] == 404


def test_junk_is_a_400_and_a_dead_letter(webhook: Webhook, kafka: str) -> None:
    v4 = json.loads(CS4)
    junk = {
        b"\x00\xff junk": "json",
        b"{not json": "json",
        b"[" * 30_000 + b"]" * 30_000: "json",  # nested past the recursion limit
        b"[" * 40_000 + b"]" * 40_000: "too_large",
        json.dumps({**v4, "fCnt": [1]}).encode(): "field",
        json.dumps({**v4, "deviceInfo": {"devEui": "not hex"}}).encode(): "field",
        json.dumps({"hello": "world"}).encode(): "format",
    }
    with taps(kafka) as (uplinks, dead), serving(webhook) as port:
        answers = [post(port, "/chirpstack?event=up", body, SECRETS["chirpstack"]) for body in junk]
        assert post(port, "/chirpstack", CS4, SECRETS["chirpstack"])[0] == 400  # no ?event=
        assert uplinks.read() == []
        letters = dead.read()
    expected_status = [413 if reason == "too_large" else 400 for reason in junk.values()]
    assert [status for status, _ in answers] == expected_status
    assert [body["error"] for _, body in answers] == list(junk.values())
    assert [d["reason"] for d in letters] == list(junk.values())
    assert [d["original"] for d in letters] == [body[:MAX_MESSAGE_BYTES] for body in junk]


def test_a_huge_chunked_body_is_cut_off_at_the_limit(webhook: Webhook, kafka: str) -> None:
    huge = b'{"pad": "' + b"x" * 1_000_000 + b'"}'
    with taps(kafka) as (_, dead), serving(webhook) as port:
        status, body = post(port, "/tts", huge, SECRETS["tts"], chunked=True)
        letters = dead.read()
    assert (status, body["error"]) == (413, "too_large")
    assert [(d["reason"], len(d["original"])) for d in letters] == [
        ("too_large", MAX_MESSAGE_BYTES)
    ]


def test_without_kafka_the_answer_is_503_and_the_bound_holds() -> None:
    nowhere = connector_producer(f"127.0.0.1:{free_port()}")
    hook = Webhook(Handoff(Ingress(nowhere, source="webhook"), limit=1), SECRETS, ack_timeout=0.2)
    with serving(hook) as port:
        status, body = post(port, "/tts", TTS, SECRETS["tts"])
        assert (status, body["error"]) == (503, "kafka")  # not confirmed in time
        status, body = post(port, "/tts", TTS, SECRETS["tts"])
        assert (status, body["error"]) == (503, "busy")  # the first one still waits
    assert hook.stats == {"tts.503": 2}
    assert hook.handoff.close(timeout=0.1) == 1


def test_secrets_never_reach_logs_or_answers(
    webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG), serving(webhook) as port:
        answers = [
            post(port, "/tts", TTS, SECRETS["tts"]),
            post(port, "/tts", TTS, SECRETS["chirpstack"]),
            post(port, "/chirpstack?event=up", b"junk", SECRETS["chirpstack"]),
            post(port, "/chirpstack?event=up", CS4, SECRETS["tts"]),
        ]
    assert "webhook tts" in caplog.text and "401" in caplog.text
    for secret in SECRETS.values():
        assert secret.decode() not in caplog.text
        assert all(secret.decode() not in json.dumps(body) for _, body in answers)


def test_the_ingest_http_verb(kafka: str) -> None:
    port = free_port()
    env = {"LIVINGLAB_KAFKA": kafka, "LIVINGLAB_CHIRPSTACK_WEBHOOK_SECRET": "cli-s3cret"}
    args = ("ingest", "http", "--listen", f"127.0.0.1:{port}")
    with taps(kafka) as (uplinks, _):
        with running(*args, env=env, ready="listening") as verb:
            assert post(port, "/chirpstack?event=up", CS4, b"cli-s3cret")[0] == 200
            assert post(port, "/chirpstack?event=up", CS4, b"cli-guess")[0] == 401
            assert post(port, "/tts", TTS, b"cli-s3cret")[0] == 404  # no TTS secret set
        assert verb.process.returncode == 0
        assert [r["source"] for r in uplinks.read()] == ["chirpstack4"]
    assert '"chirpstack.200": 1' in verb.text and "cli-s3cret" not in verb.text
