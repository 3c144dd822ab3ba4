"""The topic contracts: Avro schemas for internal topics and the ClickHouse DDL.

Each Avro message carries its schema's fingerprint (CRC-64-AVRO of the canonical form)
in the `ll-schema` header, so a consumer can tell which writer schema produced a
record and schemas can evolve without a registry server.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import expand_schema, fingerprint, to_parsing_canonical_form

from schemas import reading_writer
from schemas.reading_writer import long

try:
    # The compiled writer behind `schemaless_writer`, called directly: the public
    # wrapper's set-up per call (an IO object, the schema parsed again, an options dict)
    # took a third of encoding a record (24 -> 17 us for a reading). Readings now have
    # their own writer (below); aggregates and dead letters still come this way.
    # Output checked equal to `schemaless_writer`'s (tests/test_sink_avro_path.py).
    from fastavro._write import write_data as _write_data
except ImportError:  # fastavro without its compiled modules
    _write_data = None
_OPTIONS = {"strict": False, "strict_allow_default": False, "disable_tuple_notation": False}

# Writers for one schema each, used only while the schema is the one they were written
# for: the fingerprint of its canonical form with named types written out.
_DIRECT_WRITERS = {reading_writer.FINGERPRINT: reading_writer.encode}

HERE = Path(__file__).resolve().parent
AVRO_DIR = HERE / "avro"
DDL_DIR = HERE / "clickhouse"
SCHEMA_HEADER = "ll-schema"

# Load order matters: named types must be parsed before the schemas that use them.
_FILES = ("gateway", "uplink", "reading", "aggregate", "deadletter")


class SchemaMismatch(ValueError):
    """A message whose schema fingerprint this code does not know."""


@cache
def _named() -> dict[str, dict[str, Any]]:
    named: dict[str, Any] = {}
    parsed: dict[str, dict[str, Any]] = {}
    for name in _FILES:
        raw = json.loads((AVRO_DIR / f"{name}.avsc").read_text(encoding="utf-8"))
        parsed[name] = parse_schema(raw, named_schemas=named)
    return parsed


class AvroCodec:
    """Encode/decode one record type; checks the fingerprint header on the way in."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.schema = _named()[name]
        self.fingerprint = fingerprint(to_parsing_canonical_form(self.schema), "CRC-64-AVRO")
        self.headers = [(SCHEMA_HEADER, self.fingerprint.encode())]
        self._direct = _DIRECT_WRITERS.get(expanded_fingerprint(self.schema))

    def encode(self, record: dict[str, Any]) -> bytes:
        if self._direct is not None:
            return self._direct(record)
        if _write_data is None:
            buf = io.BytesIO()
            schemaless_writer(buf, self.schema, record)
            return buf.getvalue()
        out = bytearray()
        _write_data(out, record, self.schema, self.schema["__named_schemas"], "", _OPTIONS)
        return bytes(out)

    def decode(
        self, data: bytes, headers: Iterable[tuple[str, bytes]] | None = None
    ) -> dict[str, Any]:
        for key, value in headers or ():
            if key == SCHEMA_HEADER and value.decode() != self.fingerprint:
                raise SchemaMismatch(
                    f"{self.name}: message written with schema {value.decode()}, "
                    f"this reader knows {self.fingerprint}"
                )
        return schemaless_reader(io.BytesIO(data), self.schema, None)

    def written_by_us(self, headers: Iterable[tuple[str, bytes]] | None) -> bool:
        """Whether a message says it was written with exactly this schema."""
        return self.headers[0] in (headers or ())

    def container(self, records: list[bytes]) -> bytes:
        """Encoded records as one Avro object container file (one block, null codec), so
        an engine that reads Avro itself (ClickHouse) can take a batch of messages as is:
        a block's body is exactly the records' binary encodings one after the other."""
        body = b"".join(records)
        return self._container_header + long(len(records)) + long(len(body)) + body + _SYNC

    @cached_property
    def _container_header(self) -> bytes:
        """Magic, metadata (the schema with its named types written out) and sync marker."""
        schema = to_parsing_canonical_form(expand_schema(self.schema)).encode()
        meta = long(2) + _bytes(b"avro.schema") + _bytes(schema)
        meta += _bytes(b"avro.codec") + _bytes(b"null") + long(0)
        return b"Obj\x01" + meta + _SYNC


_SYNC = b"livinglab.batch!"  # any 16 bytes; marks the end of the header and the block


def _bytes(data: bytes) -> bytes:
    return long(len(data)) + data


def expanded_fingerprint(schema: dict[str, Any]) -> str:
    """CRC-64-AVRO of the canonical form with named types written out: unlike the header's
    fingerprint, it changes when a type the schema refers to (livinglab.Gateway) does."""
    return fingerprint(to_parsing_canonical_form(expand_schema(schema)), "CRC-64-AVRO")


@cache
def codec(name: str) -> AvroCodec:
    return AvroCodec(name)


def ddl_files() -> list[Path]:
    """Versioned ClickHouse DDL files, in the order they must be applied."""
    return sorted(DDL_DIR.glob("[0-9][0-9][0-9]_*.sql"))
