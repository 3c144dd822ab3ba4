"""Merge the copies of one frame that arrive close together into one uplink.

A network server deduplicates what its gateways hear; messages that reach us one
copy each (several integrations, a packet broker, the simulator) get the same
treatment here: copies within `window_s` of the first become one Uplink with every
gateway, so Kafka carries each frame once in the common case. A copy arriving later
is passed on by itself and the stream worker merges it into the stored uplink.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from connectors.ingress import Ingress
from connectors.lns import IngressError, normalise

DEFAULT_WINDOW_S = 0.2  # ChirpStack's default deduplication delay
COPY_SPREAD_MS = 10_000  # copies of one frame carry (nearly) the same event time


class CopyMerger:
    def __init__(
        self,
        ingress: Ingress,
        window_s: float = DEFAULT_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ingress, self.window_s, self.clock = ingress, window_s, clock
        # (dev_eui, f_cnt, payload) -> (deadline, uplink); insertion order = deadline order
        self._pending: dict[tuple[str, int, bytes], tuple[float, dict[str, Any]]] = {}

    def submit(self, raw: bytes, origin: str = "") -> None:
        """One raw LNS message in; junk goes to the dead letters at once."""
        try:
            uplink = normalise(raw)
        except IngressError as exc:
            self.ingress.reject(raw, exc.reason, str(exc), origin, dev_eui=exc.dev_eui)
            return
        now = self.clock()
        self._release(now)
        key = (uplink["dev_eui"], uplink["f_cnt"], uplink["payload"])
        held = self._pending.get(key)
        if (
            held is not None
            and abs(held[1]["received_at"] - uplink["received_at"]) > COPY_SPREAD_MS
        ):
            # The same counter sent again later is no copy (a replay, for the worker to judge):
            # pass the held frame on first so the order stays as it arrived.
            del self._pending[key]
            self.ingress.produce_uplink(held[1])
            held = None
        if held is None:
            self._pending[key] = (now + self.window_s, uplink)
            return
        first = held[1]
        known = {g["id"] for g in first["gateways"]}
        first["gateways"] += [g for g in uplink["gateways"] if g["id"] not in known]
        first["received_at"] = min(first["received_at"], uplink["received_at"])
        self.ingress.stats["merged_copies"] += 1

    def _release(self, now: float) -> None:
        while self._pending:
            key = next(iter(self._pending))
            deadline, uplink = self._pending[key]
            if deadline > now:
                return
            del self._pending[key]
            self.ingress.produce_uplink(uplink)

    def flush(self, timeout: float = 30.0) -> None:
        """Pass on everything held and wait until Kafka has it."""
        self._release(float("inf"))
        self.ingress.flush(timeout)
