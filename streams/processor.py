"""What happens to one partition of `lorawan.uplinks`, independent of the runtime.

dedup -> decode -> calibration -> quality flags -> readings; readings -> event-time
windows -> aggregates (streams/eventtime.py); everything rejected -> deadletter. State
lives in two mappings the runtime provides (Faust tables in the worker, plain dicts in
tests): per device (with the device's closed windows under their own keys) and per
partition. Each state entry remembers the last input offset applied to it, so a record
redelivered after a crash updates nothing twice; its outputs are produced again and
deduplicated downstream by their deterministic keys.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from livinglab.codec import decode_payload
from livinglab.codec.payload import PayloadError
from livinglab.deadletter import dead_letter
from livinglab.kafka import AGGREGATES, DEADLETTER, READINGS, UPLINKS
from livinglab.registry import Registry
from schemas import SchemaMismatch, codec
from streams import calibration, dedup, quality
from streams.eventtime import DEFAULT_HORIZON_MS, END_WATERMARK, EventTime
from streams.windows import HOUR_MS, window_start

_UPLINK = codec("uplink")
_READING = codec("reading")
_AGGREGATE = codec("aggregate")
_DEADLETTER = codec("deadletter")

CONTROL_KEY = b"__control__"
END_OF_INPUT = b"end"
DEFAULT_LATENESS_MS = 15 * 60 * 1000

Output = tuple[str, bytes, bytes, list[tuple[str, bytes]]]


def _ring(kept: str | dict[str, Any] | None) -> dict[str, Any]:
    """A device's dedup state (streams/dedup.py): a dict while the unit is active between
    two checkpoints, else one JSON string (see `freeze`; a dict is also what state
    written before strings looks like)."""
    if kept is None:
        return {}
    return orjson.loads(kept) if isinstance(kept, str) else kept


def freeze(entry: Any) -> Any:
    """A state entry in its stored form, converted in place: a device entry's dedup ring
    and open windows are decoded while the unit is active (decoding and encoding them
    for every batch cost more than the rest of a small batch's work), and go back to
    strings when the worker writes its state to the changelog. As strings they are what
    keeps 100,000 units' state small: the ring's 16 frames took ~9.5 kB per unit as
    Python objects when their gateway records were objects too (now each frame's are
    one JSON string, streams/dedup.py), ~2.5 kB as JSON; a decoded window holds a dense
    level histogram. Closed windows are always strings."""
    if isinstance(entry, dict):
        ring = entry.get("d")
        if ring is not None and not isinstance(ring, str):
            entry["d"] = orjson.dumps(ring).decode()
        for key, acc in entry.get("w", {}).items():
            if not isinstance(acc, str):
                entry["w"][key] = acc.to_str()
    return entry


@dataclass
class PartitionProcessor:
    registry: Registry
    partition: int
    devices: MutableMapping[str, dict[str, Any]]
    meta: MutableMapping[str, dict[str, Any]]
    lateness_ms: int = DEFAULT_LATENESS_MS
    horizon_ms: int = DEFAULT_HORIZON_MS
    outputs: list[Output] = field(default_factory=list)
    dirty_devices: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        key = str(self.partition)
        if key not in self.meta:
            # wm: watermark, max: highest event time, o: last control offset,
            # c: hour boundary up to which windows have been closed
            self.meta[key] = {"wm": -(2**62), "max": -(2**62), "o": -1, "c": -(2**62)}
        self._meta = self.meta[key]
        self._windows = EventTime(
            self.registry, self.partition, self.devices, self._meta, self.horizon_ms
        )

    # -- input -------------------------------------------------------------------------
    def handle(self, offset: int, key: bytes | None, value: bytes, headers: list | None) -> None:
        """Process one record of the partition (redeliveries are recognised by offset)."""
        if key == CONTROL_KEY:
            if offset > self._meta["o"]:
                self._watermark_marker(value)
                self._meta["o"] = offset
            return
        try:
            uplink = _UPLINK.decode(value, headers)
        except (SchemaMismatch, ValueError, EOFError, TypeError, IndexError) as exc:
            self._reject(UPLINKS, "decode", "avro", f"not an Uplink record: {exc}", value, offset)
            return
        unit = self.registry.by_dev_eui.get(uplink["dev_eui"])
        if unit is None:
            self._reject(
                uplink["source"],
                "decode",
                "unknown_device",
                f"DevEUI {uplink['dev_eui']} is not in the registry",
                uplink["original"],
                offset,
                uplink["dev_eui"],
            )
            return
        state = self.devices.get(unit.dev_eui)
        if state is None:
            state = {"p": self.partition, "o": -1}
        elif offset <= state["o"]:
            self._count("redelivered")
            return
        state["o"] = offset
        self.devices[unit.dev_eui] = state
        self.dirty_devices.add(unit.dev_eui)
        self._uplink(unit, state, uplink, offset)

    def _uplink(
        self, unit: Any, state: dict[str, Any], uplink: dict[str, Any], offset: int
    ) -> None:
        ts = uplink["received_at"]
        ring = _ring(state.get("d"))
        decision = dedup.decide(ring, uplink["f_cnt"], ts, uplink["gateways"])
        state["d"] = ring
        self._count(decision.verdict)
        if decision.verdict == "duplicate":
            return
        if decision.verdict in ("replay", "stale"):
            why = {
                "replay": f"frame counter {uplink['f_cnt']} was already used in this session",
                "stale": f"copy of frame {uplink['f_cnt']} arrived too late to be merged",
            }[decision.verdict]
            self._reject(
                uplink["source"],
                "decode",
                decision.verdict,
                why,
                uplink["original"],
                offset,
                unit.dev_eui,
            )
            return
        try:
            decoded = decode_payload(uplink["payload"], unit.payload_format, unit.cayenne_channels)
        except PayloadError as exc:
            self._reject(
                uplink["source"],
                "decode",
                f"payload.{exc.reason}",
                str(exc),
                uplink["original"],
                offset,
                unit.dev_eui,
            )
            return
        raw = {q: v for q, v in decoded.values.items() if v is not None}
        values, version = calibration.apply(unit.calibration, decision.ts, raw)
        reading = {
            "lab": unit.lab,
            "sensor": unit.sensor,
            "dev_eui": unit.dev_eui,
            "ts": decision.ts,
            "session": decision.session,
            "f_cnt": uplink["f_cnt"],
            "f_port": uplink["f_port"],
            "uplink_version": decision.uplink_version,
            "source": uplink["source"],
            "gateways": list(decision.gateways),
            "frequency": uplink["frequency"],
            "spreading_factor": uplink["spreading_factor"],
            "payload": uplink["payload"],
            "status": decoded.status,
            "calibration": version,
            "values": values,
            "raw_values": raw,
            "flags": quality.flags(raw, values),
        }
        self._emit(READINGS, unit.key.encode(), _READING.encode(reading), _READING.headers)
        if decision.verdict == "new":
            self._window(unit, state, reading, offset)

    def _window(
        self, unit: Any, state: dict[str, Any], reading: dict[str, Any], offset: int
    ) -> None:
        ts = reading["ts"]
        if window_start(ts, HOUR_MS) + HOUR_MS <= self._meta["wm"] - self.horizon_ms:
            self._reject(
                reading["source"],
                "window",
                "too_late",
                f"reading at {ts} arrived after its hour closed and beyond the "
                f"{self.horizon_ms // 3_600_000} h correction horizon",
                _READING.encode(reading),
                offset,
                unit.dev_eui,
            )
        else:
            self._windows.add(unit, reading, offset, self._meta["wm"])
        if ts > self._meta["max"]:
            self._meta["max"] = ts
            self._meta["wm"] = max(self._meta["wm"], ts - self.lateness_ms)

    def _watermark_marker(self, value: bytes) -> None:
        wm = END_WATERMARK if value == END_OF_INPUT else int(value)
        self._meta["wm"] = max(self._meta["wm"], wm)

    # -- end of a batch ------------------------------------------------------------------
    def end_batch(self) -> None:
        """Fold the batch into its windows; emit what closed and what was corrected."""
        for aggregate in self._windows.end_batch():
            self._emit(
                AGGREGATES,
                f"{aggregate['lab']}:{aggregate['sensor']}".encode(),
                _AGGREGATE.encode(aggregate),
                _AGGREGATE.headers,
            )

    @property
    def pending(self) -> bool:
        """Whether closed windows are still to be emitted (streams/eventtime.py `_work`):
        the runtime calls `end_batch` without input until they are not."""
        return bool(self._meta.get("q"))

    def take(self) -> tuple[list[Output], list[str]]:
        """Outputs to produce and state keys to write back (deleted ones: tombstones) since
        the last call. Closed windows come before device entries: in one changelog
        partition a crash can only lose a suffix, so a device entry that made it implies
        its closed windows did."""
        outputs = self.outputs
        dirty = [*self._windows.changed, *sorted(self.dirty_devices | self._windows.dirty_devices)]
        self.outputs, self.dirty_devices = [], set()
        self._windows.changed.clear()
        self._windows.dirty_devices.clear()
        return outputs, dirty

    # -- helpers -------------------------------------------------------------------------
    def _emit(self, topic: str, key: bytes, value: bytes, headers: list) -> None:
        self.outputs.append((topic, key, value, headers))

    def _reject(
        self,
        source: str,
        stage: str,
        reason: str,
        detail: str,
        original: bytes,
        offset: int,
        dev_eui: str | None = None,
    ) -> None:
        self._count(f"rejected.{reason}")
        record = dead_letter(
            source=source,
            stage=stage,
            reason=reason,
            detail=detail,
            original=original,
            dev_eui=dev_eui,
            origin=f"{UPLINKS}:{self.partition}:{offset}",
        )
        self._emit(DEADLETTER, source.encode(), _DEADLETTER.encode(record), _DEADLETTER.headers)

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1
