"""The worker processes of both roles.

`streams` (uplinks -> readings, aggregates) runs on librdkafka in batches
(streams/uplink_worker.py); `alerting` (readings, aggregates -> alerts.<lab>) runs the
Faust agents of streams/alerting.py, with their own consumer group, in their own
process, so the two share the machine's cores.

Faust is the alerting runtime (consumer group, rebalancing, tables with changelogs,
commits); outputs are produced with librdkafka and flushed before a batch is
acknowledged, and Faust flushes the changelog before it commits offsets, so a commit
never runs ahead of what was written.
"""

from __future__ import annotations

import faust

from livinglab.config import Settings
from livinglab.kafka import ALERTING_GROUP, new_producer
from livinglab.registry import load_registry
from streams import faust_tansu
from streams.alerting import install as install_alerting
from streams.uplink_worker import run_uplink_worker


def create_app(settings: Settings) -> faust.App:
    """The Faust app of the alerting role: readings, aggregates -> alerts.<lab>."""
    if not settings.kafka:
        raise SystemExit("the alerting worker needs LIVINGLAB_KAFKA (host:port of the broker)")
    registry = load_registry(settings.registry)
    faust_tansu.install(settings.kafka)  # restore tables to the changelog's real end
    app = faust_app(settings, ALERTING_GROUP)
    install_alerting(app, settings, registry, new_producer(settings.kafka))
    return app


def faust_app(settings: Settings, app_id: str) -> faust.App:
    """A Faust app configured for our brokers (Tansu included) and in-memory tables
    restored from their changelogs."""
    return faust.App(
        app_id,
        broker=f"kafka://{settings.kafka}",
        store="memory://",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        # Tansu holds a group join for the whole rebalance timeout: keep these short.
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=6.0,
        broker_max_poll_interval=60.0,
        broker_commit_interval=0.25,  # progress shows (and drain checks see) it soon
        stream_wait_empty=False,
        web_enabled=False,
        producer_acks=-1,
        datadir=str(settings.data_dir / "faust"),  # not ./<app id>-data in the cwd
        tabledir=str(settings.data_dir / "worker-tables"),
        key_serializer="json",  # table keys and values (our topics are raw bytes)
        value_serializer="json",
    )


def run_worker(settings: Settings, role: str = "streams", loglevel: str = "info") -> None:
    """Run one worker of a role until SIGTERM/SIGINT."""
    if role == "streams":
        run_uplink_worker(settings)
        return
    worker = faust.Worker(create_app(settings), loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
