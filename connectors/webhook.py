"""HTTP receiver for network-server webhooks: The Things Stack v3 and ChirpStack v3/v4.

  POST /tts[/...]            TTS webhook. Uplink messages are taken; the other message types
                             (join-accept, downlink events, ...) are answered 200 and ignored.
  POST /chirpstack?event=E   ChirpStack HTTP integration. `event=up` is taken; other events are
                             answered 200 and ignored.

Each integration has its own secret, sent by the network server in a header (`X-Livinglab-Secret`
unless configured otherwise) and compared in constant time; a missing or wrong one is a 401 and
the body is not read. A body over the size limit is a 413, junk a 400; both are dead-lettered
(an oversized body by its first `max_body` bytes). An answer other than 503 is given only once
Kafka holds the uplink or the dead letter; while Kafka is away the answer is 503 (the network
server retries), and a message answered 503 may still reach Kafka later: the stream worker drops
such duplicates by (DevEUI, FCnt). Secrets never appear in logs or answers.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from confluent_kafka import KafkaError

from connectors.handoff import Handoff
from connectors.ingress import OnDelivery
from connectors.lns import MAX_MESSAGE_BYTES, IngressError

log = logging.getLogger(__name__)

INTEGRATIONS = ("tts", "chirpstack")
DEFAULT_HEADER = "X-Livinglab-Secret"
DEFAULT_ACK_TIMEOUT = 10.0
# Top-level keys of the TTS message types other than uplinks (TTS "Data formats").
_TTS_OTHER = (
    "join_accept",
    "downlink_ack",
    "downlink_nack",
    "downlink_sent",
    "downlink_failed",
    "downlink_queued",
    "downlink_queue_invalidated",
    "location_solved",
    "service_data",
    "uplink_normalized",
)


@dataclass(frozen=True)
class Answer:
    """What the network server gets back: a status and a small JSON body saying why."""

    status: int
    body: dict[str, Any]

    def response(self) -> web.Response:
        headers = {"Retry-After": "5"} if self.status == 503 else None
        return web.json_response(self.body, status=self.status, headers=headers)


class Webhook:
    """The aiohttp application; `stats` counts answers by integration and status."""

    def __init__(
        self,
        handoff: Handoff,
        secrets: dict[str, bytes],
        *,
        header: str = DEFAULT_HEADER,
        max_body: int = MAX_MESSAGE_BYTES,
        ack_timeout: float = DEFAULT_ACK_TIMEOUT,
    ) -> None:
        unknown = set(secrets) - set(INTEGRATIONS)
        if unknown:
            raise ValueError(f"unknown integrations {sorted(unknown)}; known: {INTEGRATIONS}")
        self.handoff = handoff
        self._secrets = secrets
        self.header = header
        self.max_body = max_body
        self.ack_timeout = ack_timeout
        self.stats: Counter[str] = Counter()

    @property
    def integrations(self) -> list[str]:
        """The integrations enabled (those with a secret)."""
        return sorted(self._secrets)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/tts", self._tts)
        app.router.add_post("/tts/{tail:.*}", self._tts)
        app.router.add_post("/chirpstack", self._chirpstack)
        return app

    async def _tts(self, request: web.Request) -> web.Response:
        return await self._answer(request, "tts")

    async def _chirpstack(self, request: web.Request) -> web.Response:
        return await self._answer(request, "chirpstack")

    async def _answer(self, request: web.Request, name: str) -> web.Response:
        answer = await self._handle(request, name)
        self.stats[f"{name}.{answer.status}"] += 1
        level = logging.DEBUG if answer.status == 200 else logging.INFO
        log.log(
            level,
            "webhook %s from %s: %d %s",
            name,
            request.remote,
            answer.status,
            answer.body.get("error") or answer.body.get("ignored") or "uplink",
        )
        return answer.response()

    async def _handle(self, request: web.Request, name: str) -> Answer:
        secret = self._secrets.get(name)
        if secret is None:
            return Answer(404, {"error": "not_configured", "detail": f"no secret set for {name}"})
        given = request.headers.get(self.header, "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, secret):
            detail = f"missing or wrong {self.header}"
            return Answer(401, {"error": "unauthorized", "detail": detail})
        if name == "chirpstack":
            event = request.query.get("event")
            if event is None:
                return Answer(400, {"error": "event", "detail": "no ?event= in the URL"})
            if event != "up":
                return Answer(200, {"ignored": event})
        body, complete = await self._read(request)
        ingress, origin = self.handoff.ingress, f"http:{request.path}"
        if not complete:
            error = IngressError(
                "too_large", f"body over {self.max_body} bytes; the first {self.max_body} are kept"
            )

            def too_large(on_delivery: OnDelivery) -> IngressError:
                ingress.reject(body, error.reason, str(error), origin, on_delivery=on_delivery)
                return error

            return await self._deliver(too_large, status=413)
        if name == "tts" and (other := _tts_other_type(body)):
            return Answer(200, {"ignored": other})
        return await self._deliver(
            lambda on_delivery: ingress.admit(body, origin, on_delivery), status=400
        )

    async def _read(self, request: web.Request) -> tuple[bytes, bool]:
        """At most `max_body` bytes of the body, and whether that was all of it."""
        body = bytearray()
        async for chunk in request.content.iter_chunked(64 * 1024):
            body += chunk
            if len(body) > self.max_body:
                return bytes(body[: self.max_body]), False
        return bytes(body), True

    async def _deliver(
        self, send: Callable[[OnDelivery], dict[str, Any] | IngressError], status: int
    ) -> Answer:
        """Hand one message to Kafka; `status` is the answer when it was dead-lettered."""
        loop = asyncio.get_running_loop()
        delivered: asyncio.Future[KafkaError | None] = loop.create_future()

        def done(error: KafkaError | None) -> None:
            try:
                loop.call_soon_threadsafe(_settle, delivered, error)
            except RuntimeError:  # the loop is gone: nobody waits for the answer any more
                pass

        outcome = self.handoff.offer(send, done)
        if outcome is None:
            return Answer(
                503,
                {
                    "error": "busy",
                    "detail": f"{self.handoff.limit} messages wait for Kafka; send again later",
                },
            )
        try:
            error = await asyncio.wait_for(asyncio.shield(delivered), self.ack_timeout)
        except TimeoutError:
            return Answer(
                503,
                {
                    "error": "kafka",
                    "detail": f"Kafka did not confirm in {self.ack_timeout:g} s; send again later",
                },
            )
        if error is not None:
            return Answer(503, {"error": "kafka", "detail": f"Kafka refused: {error.str()}"})
        if isinstance(outcome, IngressError):
            return Answer(status, {"error": outcome.reason, "detail": str(outcome)})
        return Answer(200, {"dev_eui": outcome["dev_eui"], "f_cnt": outcome["f_cnt"]})


def _settle(future: asyncio.Future[KafkaError | None], error: KafkaError | None) -> None:
    if not future.done():
        future.set_result(error)


def _tts_other_type(body: bytes) -> str | None:
    """The message type of a TTS message that is not an uplink, if it is one."""
    try:
        message = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(message, dict) or "uplink_message" in message:
        return None
    return next((key for key in _TTS_OTHER if key in message), None)


async def serve(webhook: Webhook, host: str, port: int) -> web.AppRunner:
    """Start listening; `runner.addresses` tells the port, `runner.cleanup()` stops."""
    runner = web.AppRunner(webhook.app(), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
