"""Topic records -> ClickHouse rows, column-wise as Arrow tables (pure)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pyarrow as pa

from livinglab.codec.payload import UNITS
from schemas import codec

_MS = pa.timestamp("ms", tz="UTC")


def _table(columns: dict[str, list[Any]], types: dict[str, pa.DataType]) -> pa.Table:
    return pa.table(
        {name: pa.array(values, type=types.get(name)) for name, values in columns.items()}
    )


def reading_rows(records: Iterable[dict[str, Any]]) -> pa.Table:
    """One row per quantity of every first-accepted uplink (uplink_version 1)."""
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "lab",
            "sensor",
            "dev_eui",
            "ts",
            "quantity",
            "value",
            "raw_value",
            "unit",
            "flags",
            "calibration",
            "session",
            "f_cnt",
        )
    }
    for r in records:
        if r["uplink_version"] != 1:
            continue
        flags, raw = r["flags"], r["raw_values"]
        for quantity, value in r["values"].items():
            cols["lab"].append(r["lab"])
            cols["sensor"].append(r["sensor"])
            cols["dev_eui"].append(r["dev_eui"])
            cols["ts"].append(r["ts"])
            cols["quantity"].append(quantity)
            cols["value"].append(value)
            cols["raw_value"].append(raw.get(quantity, value))
            cols["unit"].append(UNITS.get(quantity, ""))
            cols["flags"].append(flags.get(quantity, 0))
            cols["calibration"].append(r["calibration"])
            cols["session"].append(r["session"])
            cols["f_cnt"].append(r["f_cnt"])
    return _table(
        cols,
        {
            "ts": _MS,
            "flags": pa.uint32(),
            "session": pa.uint32(),
            "f_cnt": pa.uint32(),
            "value": pa.float64(),
            "raw_value": pa.float64(),
        },
    )


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
        cols["version"].append(r["uplink_version"])
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
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "lab",
            "sensor",
            "quantity",
            "window",
            "window_start",
            "window_end",
            "count",
            "coverage",
            "mean",
            "min",
            "max",
            "version",
        )
    }
    for r in records:
        for s in r["stats"]:
            for key in ("lab", "sensor", "window", "window_start", "window_end", "version"):
                cols[key].append(r[key])
            for key in ("quantity", "count", "coverage", "mean", "min", "max"):
                cols[key].append(s[key])
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


# topic -> [(table, rows builder)]; one topic may feed several tables.
Builder = Callable[[Iterable[dict[str, Any]]], pa.Table]
TABLES: dict[str, list[tuple[str, Builder]]] = {
    "readings": [("readings", reading_rows), ("uplinks", uplink_rows)],
    "aggregates": [("aggregates", aggregate_rows)],
    "deadletter": [("deadletter", deadletter_rows)],
}
CODECS = {"readings": "reading", "aggregates": "aggregate", "deadletter": "deadletter"}


def tables_for(topic: str) -> list[tuple[str, Builder]]:
    """The ClickHouse tables a topic's records go to, with their row builders."""
    return TABLES[topic]


def decode(topic: str, value: bytes, headers: list | None) -> dict[str, Any]:
    """One topic record -> dict; raises ValueError (or a subclass) for a record that is not."""
    try:
        return codec(CODECS[topic]).decode(value, headers)
    except (EOFError, IndexError, TypeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a {CODECS[topic]} record: {exc}") from exc
