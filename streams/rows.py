"""Topic records -> ClickHouse rows, column-wise as Arrow tables (pure)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import cache
from typing import Any

import jsonschema
import numpy as np
import pyarrow as pa

from livinglab.codec.payload import UNITS
from livinglab.kafka import ALERTS_PREFIX
from schemas import DDL_DIR, codec

_MS = pa.timestamp("ms", tz="UTC")


def _table(columns: dict[str, list[Any]], types: dict[str, pa.DataType]) -> pa.Table:
    return pa.table(
        {name: pa.array(values, type=types.get(name)) for name, values in columns.items()}
    )


def reading_rows(records: Iterable[dict[str, Any]]) -> pa.Table:
    """One row per quantity of every first-accepted uplink (uplink_version 1).

    Built column-wise: per-uplink fields are gathered once and repeated by index, which
    keeps the sink's Python work per reading row small.
    """
    per_uplink: dict[str, list[Any]] = {
        k: [] for k in ("lab", "sensor", "dev_eui", "ts", "calibration", "session", "f_cnt")
    }
    counts: list[int] = []
    quantities: list[str] = []
    values: list[float] = []
    raws: list[float] = []
    flags: list[int] = []
    for r in records:
        if r["uplink_version"] != 1:
            continue
        for key, column in per_uplink.items():
            column.append(r[key])
        vals, raw, flag = r["values"], r["raw_values"], r["flags"]
        keys = list(vals)
        counts.append(len(keys))
        quantities.extend(keys)
        values.extend(vals.values())
        raws.extend(raw.values() if list(raw) == keys else [raw.get(q, vals[q]) for q in keys])
        flags.extend([flag.get(q, 0) for q in keys] if flag else [0] * len(keys))
    index = pa.array(np.repeat(np.arange(len(counts)), counts))
    types = {"ts": _MS, "session": pa.uint32(), "f_cnt": pa.uint32()}
    table = {k: pa.array(v, type=types.get(k)).take(index) for k, v in per_uplink.items()}
    table.update(
        quantity=pa.array(quantities, type=pa.string()),
        value=pa.array(values, type=pa.float64()),
        raw_value=pa.array(raws, type=pa.float64()),
        unit=pa.array([UNITS.get(q, "") for q in quantities], type=pa.string()),
        flags=pa.array(flags, type=pa.uint32()),
    )
    return pa.table(table)


def uplink_rows(records: Iterable[dict[str, Any]]) -> pa.Table:
    """One row per accepted uplink; later copies carry a higher version and more gateways."""
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "dev_eui",
            "session",
            "f_cnt",
            "lab",
            "sensor",
            "received_at",
            "f_port",
            "source",
            "frequency",
            "spreading_factor",
            "gateway_ids",
            "gateway_rssi",
            "gateway_snr",
            "payload",
            "version",
        )
    }
    for r in records:
        gws = r["gateways"]
        cols["dev_eui"].append(r["dev_eui"])
        cols["session"].append(r["session"])
        cols["f_cnt"].append(r["f_cnt"])
        cols["lab"].append(r["lab"])
        cols["sensor"].append(r["sensor"])
        cols["received_at"].append(r["ts"])
        cols["f_port"].append(r["f_port"])
        cols["source"].append(r["source"])
        cols["frequency"].append(r["frequency"])
        cols["spreading_factor"].append(r["spreading_factor"])
        cols["gateway_ids"].append([g["id"] for g in gws])
        cols["gateway_rssi"].append([g["rssi"] for g in gws])
        cols["gateway_snr"].append([g["snr"] for g in gws])
        cols["payload"].append(r["payload"].hex())
        # The gateway list only grows as copies merge, so its length orders the versions of
        # an uplink row whether the copies merged at the ingress or in the worker.
        cols["version"].append(len(gws))
    return _table(
        cols,
        {
            "received_at": _MS,
            "session": pa.uint32(),
            "f_cnt": pa.uint32(),
            "f_port": pa.uint8(),
            "frequency": pa.uint64(),
            "spreading_factor": pa.uint8(),
            "version": pa.uint32(),
            "gateway_rssi": pa.list_(pa.float32()),
            "gateway_snr": pa.list_(pa.float32()),
        },
    )


def aggregate_rows(records: Iterable[dict[str, Any]]) -> pa.Table:
    """One row per quantity of every emitted window (corrections have higher versions)."""
    per_window = ("lab", "sensor", "window", "window_start", "window_end", "version")
    per_stat = (
        "quantity",
        "count",
        "coverage",
        "mean",
        "min",
        "max",
        "valid",
        "flags",
        "valid_hours",
        "l10",
        "l50",
        "l90",
    )
    cols: dict[str, list[Any]] = {k: [] for k in per_window + per_stat}
    for r in records:
        for s in r["stats"]:
            for key in per_window:
                cols[key].append(r[key])
            for key in per_stat:
                cols[key].append(s[key])
            cols["valid"][-1] = int(s["valid"])
    return _table(
        cols,
        {
            "window_start": _MS,
            "window_end": _MS,
            "count": pa.uint32(),
            "coverage": pa.float32(),
            "version": pa.uint32(),
            "mean": pa.float64(),
            "min": pa.float64(),
            "max": pa.float64(),
            "valid": pa.uint8(),
            "flags": pa.uint32(),
            "valid_hours": pa.uint16(),
            "l10": pa.float64(),
            "l50": pa.float64(),
            "l90": pa.float64(),
        },
    )


def index_rows(records: Iterable[dict[str, Any]]) -> pa.Table:
    """One row per indicator of every emitted window (LKI, Lden family, O3 daily max)."""
    per_window = ("lab", "sensor", "window", "window_start", "window_end", "version")
    cols: dict[str, list[Any]] = {
        k: [] for k in (*per_window, "indicator", "value", "coverage", "valid")
    }
    for r in records:
        for index in r["indices"]:
            for key in per_window:
                cols[key].append(r[key])
            cols["indicator"].append(index["name"])
            cols["value"].append(index["value"])
            cols["coverage"].append(index["coverage"])
            cols["valid"].append(int(index["valid"]))
    return _table(
        cols,
        {
            "window_start": _MS,
            "window_end": _MS,
            "version": pa.uint32(),
            "value": pa.float64(),
            "coverage": pa.float32(),
            "valid": pa.uint8(),
        },
    )


def deadletter_rows(records: Iterable[dict[str, Any]]) -> pa.Table:
    cols: dict[str, list[Any]] = {
        k: [] for k in ("id", "ts", "source", "stage", "reason", "detail", "dev_eui", "original")
    }
    for r in records:
        for key in cols:
            cols[key].append(r[key])
    return _table(cols, {"ts": _MS, "original": pa.binary(), "dev_eui": pa.string()})


_ALERT_COLUMNS = ("id", "seq", "lab", "sensor", "kind", "quantity", "severity", "state", "ts",
                  "started", "ended", "value", "threshold", "peak", "reference", "unit", "window",
                  "message_nl", "message_en")  # fmt: skip
_ALERT_TIMES = ("ts", "started", "ended")


def alert_rows(records: Iterable[dict[str, Any]]) -> pa.Table:
    """One row per alert event, as published (times already epoch ms, see ``decode``)."""
    cols: dict[str, list[Any]] = {k: [] for k in _ALERT_COLUMNS}
    for r in records:
        for key, column in cols.items():
            column.append(r[key])
    return _table(
        cols,
        {
            **dict.fromkeys(_ALERT_TIMES, _MS),
            "seq": pa.uint32(),
            "quantity": pa.string(),
            "window": pa.string(),
            **dict.fromkeys(("value", "threshold", "peak", "reference"), pa.float64()),
        },
    )


@cache
def _alert_validator() -> Any:
    schema = json.loads((DDL_DIR.parent / "alert.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def _alert(value: bytes) -> dict[str, Any]:
    """A JSON alert event, checked against schemas/alert.schema.json, times as epoch ms."""
    try:
        record = json.loads(value)
    except (ValueError, TypeError) as exc:  # also undecodable UTF-8
        raise ValueError(f"not a JSON alert: {exc}") from exc
    error = jsonschema.exceptions.best_match(_alert_validator().iter_errors(record))
    if error is not None:
        raise ValueError(f"not an alert record: {error.message}")
    for key in _ALERT_TIMES:
        if record[key] is not None:
            when = datetime.fromisoformat(record[key].replace("Z", "+00:00"))
            record[key] = round(when.timestamp() * 1000)
    return record


# topic -> [(table, rows builder)]; one topic may feed several tables.
Builder = Callable[[Iterable[dict[str, Any]]], pa.Table]
TABLES: dict[str, list[tuple[str, Builder]]] = {
    "readings": [("readings", reading_rows), ("uplinks", uplink_rows)],
    "aggregates": [("aggregates", aggregate_rows), ("indices", index_rows)],
    "deadletter": [("deadletter", deadletter_rows)],
}
CODECS = {"readings": "reading", "aggregates": "aggregate", "deadletter": "deadletter"}

# The same rows as reading_rows / uplink_rows, built by ClickHouse itself from a batch of
# Reading records handed over as one Avro container ({source}): no per-record Python work,
# which is what bounds the sink's throughput (tests/test_sink_avro_path.py holds the two
# to the same rows).
_UNIT_OF = "transform(q, [{}], [{}], '')".format(
    ", ".join(f"'{q}'" for q in UNITS), ", ".join(f"'{u}'" for u in UNITS.values())
)
FROM_AVRO: dict[str, dict[str, str]] = {
    "readings": {
        "readings": "(lab, sensor, dev_eui, ts, quantity, value, raw_value, unit, flags, "
        "calibration, session, f_cnt) "
        "SELECT lab, sensor, dev_eui, fromUnixTimestamp64Milli(ts, 'UTC'), q, v, rv, "
        + _UNIT_OF
        + ", if(empty(flags), 0, toUInt32(flags[q])), calibration, toUInt32(session), "
        "toUInt32(f_cnt) FROM {source} ARRAY JOIN mapKeys(values) AS q, mapValues(values) AS v, "
        # raw values: as a whole when they have the calibrated values' keys (the usual case:
        # a map lookup is a scan), else looked up, the calibrated value where none was kept
        "if(mapKeys(raw_values) = mapKeys(values), mapValues(raw_values), arrayMap(k -> "
        "if(mapContains(raw_values, k), raw_values[k], values[k]), mapKeys(values))) AS rv "
        "WHERE uplink_version = 1",
        "uplinks": "(dev_eui, session, f_cnt, lab, sensor, received_at, f_port, source, "
        "frequency, spreading_factor, gateway_ids, gateway_rssi, gateway_snr, payload, version) "
        "SELECT dev_eui, session, f_cnt, lab, sensor, fromUnixTimestamp64Milli(ts, 'UTC'), "
        "f_port, source, frequency, spreading_factor, arrayMap(g -> g.1, gateways), "
        "arrayMap(g -> g.2, gateways), arrayMap(g -> g.3, gateways), lower(hex(payload)), "
        "length(gateways) FROM {source}",
    },
}


ALERT_TABLES: list[tuple[str, Builder]] = [("alerts", alert_rows)]  # every alerts.<lab>


def tables_for(topic: str) -> list[tuple[str, Builder]]:
    """The ClickHouse tables a topic's records go to, with their row builders."""
    return ALERT_TABLES if topic.startswith(ALERTS_PREFIX) else TABLES[topic]


def decode(topic: str, value: bytes, headers: list | None) -> dict[str, Any]:
    """One topic record -> dict; raises ValueError (or a subclass) for a record that is not.

    Alert topics carry JSON for any client to read; the internal topics carry Avro.
    """
    if topic.startswith(ALERTS_PREFIX):
        return _alert(value)
    try:
        return codec(CODECS[topic]).decode(value, headers)
    except (EOFError, IndexError, TypeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a {CODECS[topic]} record: {exc}") from exc
