"""The connectors' verbs: `gateway udp`, `ingest mqtt`, `ingest http` and `decode`.

The gateway bridge and the ingest connectors feed a running platform: they need its Kafka
(`--kafka` or LIVINGLAB_KAFKA). Secrets come from the environment, never from flags, so they
stay out of shell histories and process lists.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.handoff import DEFAULT_LIMIT, Handoff, connector_producer
from connectors.ingress import Ingress
from connectors.lns import MAX_MESSAGE_BYTES
from livinglab.config import ENV_KAFKA, Settings
from livinglab.registry import Registry, load_registry

if TYPE_CHECKING:  # the verbs import their modules when run: `livinglab --help` stays quick
    from connectors.udp_bridge import UdpBridge
    from connectors.webhook import Webhook

log = logging.getLogger(__name__)

ENV_MQTT_PASSWORD = "LIVINGLAB_MQTT_PASSWORD"
ENV_WEBHOOK_SECRETS = {
    "tts": "LIVINGLAB_TTS_WEBHOOK_SECRET",
    "chirpstack": "LIVINGLAB_CHIRPSTACK_WEBHOOK_SECRET",
}
_FORMATTER = argparse.RawDescriptionHelpFormatter


def register(
    verbs: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]
) -> None:
    gateway = verbs.add_parser(
        "gateway",
        help="run a LoRaWAN gateway bridge into Kafka",
        description="Bridges that take gateways' traffic directly, without a network server.",
    )
    bridges = gateway.add_subparsers(dest="bridge", required=True, metavar="PROTOCOL")
    udp = bridges.add_parser(
        "udp",
        help="Semtech UDP packet-forwarder bridge",
        formatter_class=_FORMATTER,
        description="Receive the Semtech UDP packet-forwarder protocol from the gateways listed in "
        "the registry, verify and decrypt their frames with the units' ABP session keys and "
        "produce one Uplink per frame (copies from several gateways merged) into Kafka. Datagrams "
        "of other gateways are counted and not acknowledged; unknown DevAddrs, join-requests, bad "
        "MICs and unreadable data become dead letters. Logs its counters every --report-every s.",
    )
    udp.add_argument(
        "--listen",
        type=_host_port,
        default=("0.0.0.0", 1700),
        metavar="HOST:PORT",
        help="HOST:PORT to receive datagrams on (default 0.0.0.0:1700)",
    )
    udp.add_argument(
        "--dedup-window",
        type=float,
        default=0.2,
        metavar="SECONDS",
        help="merge copies of a frame arriving within this time (default 0.2)",
    )
    udp.add_argument(
        "--max-backlog",
        type=int,
        default=100_000,
        metavar="N",
        help="drop packets unacknowledged while N messages wait for Kafka (default 100000)",
    )
    _kafka_and_reports(udp)
    common(udp)
    udp.set_defaults(handler=_gateway_udp)

    ingest = verbs.add_parser(
        "ingest",
        help="take uplinks from a network server (MQTT or webhook) into Kafka",
        description="Connectors for The Things Stack v3 and ChirpStack v3/v4. A message is "
        "acknowledged to the network server only once Kafka holds it (its uplink or, for junk, "
        "its dead letter); while Kafka is away at most --max-pending messages wait.",
    )
    sources = ingest.add_subparsers(dest="source", required=True, metavar="SOURCE")
    mqtt = sources.add_parser(
        "mqtt",
        help="subscribe to a network server's MQTT broker",
        formatter_class=_FORMATTER,
        description="Subscribe at QoS 1 in a persistent session and acknowledge each message "
        "when Kafka has it; reconnects with backoff.\n\n"
        "  The Things Stack: --url mqtts://APP%40TENANT@eu1.cloud.thethings.network --lns tts\n"
        "                    (topic v3/APP@TENANT/devices/+/up; the password is an API key)\n"
        "  ChirpStack:       --url mqtt://user@host:1883 --lns chirpstack\n"
        "                    (topic application/+/device/+/event/up)\n\n"
        f"The password comes from {ENV_MQTT_PASSWORD} (or the URL).",
    )
    mqtt.add_argument(
        "--url",
        required=True,
        help="mqtt[s]://[user[:password]@]host[:port]; mqtts means TLS (port 8883)",
    )
    mqtt.add_argument(
        "--lns",
        choices=("tts", "chirpstack"),
        help="the network server, to subscribe to its uplink topic",
    )
    mqtt.add_argument(
        "--topic",
        action="append",
        default=[],
        help="topic filter to subscribe to instead (repeatable)",
    )
    mqtt.add_argument("--tls", action="store_true", help="use TLS (implied by mqtts://)")
    mqtt.add_argument("--ca-file", help="CA certificates for TLS (default: the system's)")
    mqtt.add_argument(
        "--client-id",
        help="MQTT client id; the broker keeps unacknowledged messages for it "
        "(default livinglab-HOSTNAME-LNS; give each running connector its own)",
    )
    _pending(mqtt)
    _kafka_and_reports(mqtt)
    common(mqtt)
    mqtt.set_defaults(handler=_ingest_mqtt)

    http = sources.add_parser(
        "http",
        help="receive network-server webhooks",
        formatter_class=_FORMATTER,
        description="Receive webhooks:\n\n"
        "  POST /tts                  The Things Stack webhook (uplink messages)\n"
        "  POST /chirpstack?event=up  ChirpStack HTTP integration (other events: 200, ignored)\n\n"
        "Each integration is enabled by its secret, which the network server must send in the "
        f"secret header: {ENV_WEBHOOK_SECRETS['tts']} and "
        f"{ENV_WEBHOOK_SECRETS['chirpstack']}. Answers: 200 taken, 400 junk (dead-lettered), "
        "401 bad secret, 413 too large (dead-lettered), 503 Kafka busy or away (send again).",
    )
    http.add_argument(
        "--listen",
        type=_host_port,
        default=("0.0.0.0", 8090),
        metavar="HOST:PORT",
        help="HOST:PORT to listen on (default 0.0.0.0:8090)",
    )
    http.add_argument(
        "--secret-header",
        default="X-Livinglab-Secret",
        help="header carrying the secret (default X-Livinglab-Secret)",
    )
    http.add_argument(
        "--max-body",
        type=int,
        default=MAX_MESSAGE_BYTES,
        metavar="BYTES",
        help=f"largest accepted body (default {MAX_MESSAGE_BYTES})",
    )
    http.add_argument(
        "--ack-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="answer 503 when Kafka has not confirmed within this time (default 10)",
    )
    _pending(http)
    _kafka_and_reports(http)
    common(http)
    http.set_defaults(handler=_ingest_http)

    decode = verbs.add_parser(
        "decode",
        help="decode uplink messages to JSON lines (no Kafka needed)",
        formatter_class=_FORMATTER,
        description="Read uplink messages, one per line: The Things Stack v3, ChirpStack v4 or "
        'v3 JSON, or Semtech UDP rxpk JSON (a bare rxpk object or {"rxpk": [...]}; frames are '
        "verified and decrypted with the registry's ABP keys). Print one JSON line per uplink:\n"
        "  line, source, dev_eui, sensor, f_cnt, f_port, payload_hex, gateways [{id, rssi, snr}],\n"
        "  received_at, and reading {values, status, firmware, version, warnings} or error.\n"
        "Exit status 1 when any message could not be decoded.",
    )
    decode.add_argument("file", nargs="?", default="-", help="input file (default -: stdin)")
    common(decode)
    decode.set_defaults(handler=_decode)


def _kafka_and_reports(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kafka", metavar="HOST:PORT", help=f"Kafka bootstrap servers (default ${ENV_KAFKA})"
    )
    parser.add_argument(
        "--report-every",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="log the counters this often (default 60)",
    )


def _pending(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-pending",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"messages that may wait for Kafka at once (default {DEFAULT_LIMIT})",
    )


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(data_dir=args.data_dir, registry=args.registry)


def _registry(args: argparse.Namespace) -> Registry:
    return load_registry(_settings(args).registry)


def _bootstrap(args: argparse.Namespace) -> str:
    bootstrap = args.kafka or _settings(args).kafka
    if not bootstrap:
        print(
            f"error: connectors feed a running platform: set {ENV_KAFKA} or --kafka",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return bootstrap


# -- gateway udp --------------------------------------------------------------------------------
def _gateway_udp(args: argparse.Namespace) -> int:
    from connectors.udp_bridge import UdpBridge

    registry = _registry(args)
    ingress = Ingress(connector_producer(_bootstrap(args)), source="udp")
    bridge = UdpBridge(
        registry, ingress, dedup_window=args.dedup_window, max_backlog=args.max_backlog
    )
    if not bridge.gateways:
        log.warning("udp bridge: the registry lists no gateways; every datagram will be ignored")
    if not _listen(_run_bridge(bridge, args.listen, args.report_every), args.listen):
        return 2
    try:
        ingress.flush()
    except RuntimeError as exc:
        log.error("udp bridge: %s", exc)
        return 1
    finally:
        log.info("udp bridge: stopped: %s", json.dumps(bridge.report()))
    return 0


async def _run_bridge(bridge: UdpBridge, listen: tuple[str, int], report_every: float) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: bridge, local_addr=listen)
    stop = _stop_on_signals(loop)
    log.info("udp bridge: listening on %s:%d for %d gateways", *listen, len(bridge.gateways))
    try:
        while not await _stopped(stop, report_every):
            log.info("udp bridge: %s", json.dumps(bridge.report()))
    finally:
        transport.close()  # flushes the frames still in their dedup window


def _listen(server: Coroutine[Any, Any, None], listen: tuple[str, int]) -> bool:
    """Run a server until a signal stops it; False (after saying why) if it cannot listen."""
    try:
        asyncio.run(server)
    except OSError as exc:
        print(f"error: cannot listen on {listen[0]}:{listen[1]}: {exc.strerror}", file=sys.stderr)
        return False
    return True


async def _stopped(stop: asyncio.Event, within: float) -> bool:
    """Wait up to `within` seconds for `stop`; says whether it came."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), within)
    return stop.is_set()


def _stop_on_signals(loop: asyncio.AbstractEventLoop) -> asyncio.Event:
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


# -- ingest mqtt --------------------------------------------------------------------------------
def _ingest_mqtt(args: argparse.Namespace) -> int:
    from connectors.mqtt import Broker, MqttIngest, lns_topic

    try:
        broker = Broker.from_url(args.url, tls=args.tls, password=os.environ.get(ENV_MQTT_PASSWORD))
        if not args.topic and not args.lns:
            raise ValueError("name the network server (--lns) or the topics (--topic)")
        topics = args.topic or [lns_topic(args.lns, broker)]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    client_id = args.client_id or f"livinglab-{socket.gethostname()}-{args.lns or 'mqtt'}"
    handoff = Handoff(
        Ingress(connector_producer(_bootstrap(args)), source="mqtt"), args.max_pending
    )
    ingest = MqttIngest(handoff, broker, topics, client_id, ca_file=args.ca_file)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: ingest.stopped.set())
    ingest.start()
    while not ingest.stopped.wait(args.report_every):
        _report("mqtt", ingest.stats, handoff)
    ingest.stop()
    left = handoff.close()
    _report("mqtt: stopped", ingest.stats, handoff, left)
    return 1 if ingest.failure else 0


def _report(name: str, stats: dict, handoff: Handoff, given_up: int = 0) -> None:
    counts = {**stats, **handoff.ingress.stats, "waiting_for_kafka": handoff.pending}
    if given_up:
        counts["left_unacknowledged"] = given_up
    log.info("%s: %s", name, json.dumps(counts))


# -- ingest http --------------------------------------------------------------------------------
def _ingest_http(args: argparse.Namespace) -> int:
    from connectors.webhook import Webhook

    secrets = {
        name: os.environ[var].encode()
        for name, var in ENV_WEBHOOK_SECRETS.items()
        if os.environ.get(var)
    }
    if not secrets:
        print(f"error: set {' and/or '.join(ENV_WEBHOOK_SECRETS.values())}", file=sys.stderr)
        return 2
    handoff = Handoff(
        Ingress(connector_producer(_bootstrap(args)), source="webhook"), args.max_pending
    )
    webhook = Webhook(
        handoff,
        secrets,
        header=args.secret_header,
        max_body=args.max_body,
        ack_timeout=args.ack_timeout,
    )
    return 0 if _listen(_run_webhook(webhook, args.listen, args.report_every), args.listen) else 2


async def _run_webhook(webhook: Webhook, listen: tuple[str, int], report_every: float) -> None:
    from connectors.webhook import serve

    loop = asyncio.get_running_loop()
    runner = await serve(webhook, *listen)
    stop = _stop_on_signals(loop)
    log.info("webhook: listening on %s:%d for %s", *listen, ", ".join(webhook.integrations))
    try:
        while not await _stopped(stop, report_every):
            _report("webhook", webhook.stats, webhook.handoff)
    finally:
        await runner.cleanup()
        left = await asyncio.to_thread(webhook.handoff.close)
        _report("webhook: stopped", webhook.stats, webhook.handoff, left)


# -- decode -------------------------------------------------------------------------------------
def _decode(args: argparse.Namespace) -> int:
    from connectors.decode import decode_stream

    registry = _registry(args)
    if args.file != "-" and not Path(args.file).is_file():
        print(f"error: {args.file} does not exist", file=sys.stderr)
        return 2
    failed = 0
    with contextlib.ExitStack() as stack:
        stream = (
            sys.stdin.buffer if args.file == "-" else stack.enter_context(open(args.file, "rb"))
        )
        try:
            for result in decode_stream(stream, registry):
                failed += "error" in result
                print(json.dumps(result), flush=True)
        except BrokenPipeError:  # the reader went away (`| head`): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 1 if failed else 0
