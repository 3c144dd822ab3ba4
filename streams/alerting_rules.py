"""What the three alerting steps share: the rules per lab, episode states, the wire formats.

Alerts leave as JSON (schemas/alert.schema.json) on ``alerts.<lab>`` keyed by
sensor, so a municipality reads them with any Kafka client. The steps talk to the
lab step over ``alerting.peers`` (keyed by lab) in JSON too: it is the alerting
app's own repartition topic, like a Faust changelog, not a contract.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, MutableMapping
from dataclasses import replace
from functools import cache
from typing import Any

from aiokafka.partitioner import murmur2

from livinglab.kafka import ALERTS_PREFIX, PEERS
from livinglab.registry import Lab, Registry, Unit
from streams.alerts import DEFAULT_POLICY, Alert, Episode, LifecycleConfig, config_for
from streams.alerts.lifecycle import episode_key, track
from streams.detectors import Conditions, OfflineConfig

Output = tuple[str, bytes, bytes, list[tuple[str, bytes]]]  # topic, key, value, headers
Changed = tuple[MutableMapping[str, Any], str]  # a state entry to write back
JSON_HEADERS = [("content-type", b"application/json")]


class Rules:
    """The registry seen from the alerting steps: labs, units by key, lifecycle policy."""

    def __init__(self, registry: Registry, policy: dict[str, LifecycleConfig] | None = None):
        self.registry = registry
        self.policy = dict(DEFAULT_POLICY if policy is None else policy)
        self.labs: dict[str, Lab] = {lab.id: lab for lab in registry.labs}
        self._units: dict[str, Unit] = {u.key: u for u in registry.units}
        self._offline: dict[str, tuple[OfflineConfig, list[float]]] = {}

    def unit(self, key: bytes | str | None) -> Unit | None:
        if isinstance(key, bytes):
            key = key.decode("utf-8", "replace")
        return self._units.get(key or "")

    def offline(self, unit: Unit) -> tuple[OfflineConfig, list[float]]:
        """The lab's offline rule with the unit's own uplink interval, and its tiers in ms."""
        found = self._offline.get(unit.key)
        if found is None:
            base = self.labs[unit.lab].detectors.offline
            cfg = replace(base, expected_interval_s=float(unit.uplink_interval_s))
            found = self._offline[unit.key] = (cfg, [v * 1000 for v, _ in cfg.limit.tiers])
        return found

    def members(self, partition: int, partitions: int) -> list[Unit]:
        """Units whose `lab:sensor` key Kafka's default partitioner puts on ``partition``."""
        return [u for u in self.registry.units if partition_of(u.key, partitions) == partition]


@cache
def partition_of(key: str, partitions: int) -> int:
    """Kafka's murmur2 partitioner (Java client, librdkafka murmur2_random, aiokafka)."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def track_into(
    policy: dict[str, LifecycleConfig],
    episodes: MutableMapping[str, dict[str, Any]],
    lab: str,
    sensor: str,
    batches: Iterable[Conditions],
) -> list[Alert]:
    """Feed conditions through the lifecycle, keeping episode states as plain dicts.

    Idle episodes (nothing pending, open or clearing) are dropped: they hold nothing
    the next sample needs, and keep table entries small.
    """
    events: list[Alert] = []
    for conds in batches:
        key = episode_key(conds.kind, conds.quantity)
        if key not in episodes and not conds.active.any():
            continue  # idle and nothing to start: the lifecycle would not change
        before = Episode.from_dict(episodes.get(key, {}))
        out, after = track(config_for(policy, conds.kind), before, lab, sensor, conds)
        events.extend(out)
        if after.alert_id is None and after.pending_since is None:
            episodes.pop(key, None)
        else:
            episodes[key] = after.to_dict()
    return events


def is_open(episodes: MutableMapping[str, dict[str, Any]], kind: str, quantity: str | None) -> bool:
    return episodes.get(episode_key(kind, quantity), {}).get("alert_id") is not None


def alert_output(alert: Alert) -> Output:
    record = json.dumps(alert.to_record(), ensure_ascii=False, separators=(",", ":"))
    return (f"{ALERTS_PREFIX}{alert.lab}", alert.sensor.encode(), record.encode(), JSON_HEADERS)


def peer_output(lab: str, record: dict[str, Any]) -> Output:
    return (PEERS, lab.encode(), json.dumps(record, separators=(",", ":")).encode(), JSON_HEADERS)
