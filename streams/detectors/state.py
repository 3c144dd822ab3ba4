"""Detector and alert state as plain dicts, because it lives in changelog-backed tables.

States are frozen dataclasses whose fields are None, numbers, strings, tuples of
those, or dicts of them: ``to_dict`` gives JSON-safe values (tuples become lists)
and ``from_dict`` turns lists back into tuples, so a round trip compares equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, Self


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_thaw(v) for v in value)
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    return value


class SerialisableState:
    """Mixin for dataclass states: ``to_dict`` / ``from_dict`` round-trip."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Missing keys take their defaults, so older stored states still load."""
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: _thaw(v) for k, v in data.items() if k in names})
