"""The Python codec against firmware/test-vectors.json, the shared spec vectors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from livinglab.codec import payload

VECTORS = json.loads(
    (Path(__file__).parents[1] / "firmware" / "test-vectors.json").read_text(encoding="utf-8")
)["vectors"]
GOOD = [v for v in VECTORS if "error" not in v]
BAD = [v for v in VECTORS if "error" in v]


def _ids(vectors: list[dict]) -> list[str]:
    return [v["name"] for v in vectors]


def test_vectors_cover_the_issue_edge_cases() -> None:
    names = _ids(GOOD)
    for name in ("every field at its minimum", "every field at its maximum", "nothing measured"):
        assert name in names and f"v1 {name}" in names
    every_bit = {flag for v in GOOD for flag in v["decoded"]["flags"]}
    assert every_bit == set(payload.STATUS_BITS)
    assert {v["error"]["reason"] for v in BAD} == {
        "empty",
        "version",
        "truncated",
        "length",
        "range",
    }
    assert max(len(v["hex"]) // 2 for v in GOOD) <= 51


@pytest.mark.parametrize("vector", GOOD, ids=_ids(GOOD))
def test_decode(vector: dict) -> None:
    got = payload.decode(bytes.fromhex(vector["hex"]))
    want = vector["decoded"]
    assert (got.version, got.status, got.firmware) == (
        want["version"],
        want["status"],
        want["firmware"],
    )
    assert got.values == want["values"]
    assert list(payload.status_flags(got.status)) == want["flags"]


@pytest.mark.parametrize("vector", GOOD, ids=_ids(GOOD))
def test_encode(vector: dict) -> None:
    spec = vector["encode"]
    kwargs = {k: spec[k] for k in ("version", "status", "firmware") if k in spec}
    assert payload.encode(spec["values"], **kwargs).hex() == vector["hex"]


@pytest.mark.parametrize("vector", BAD, ids=_ids(BAD))
def test_decode_errors(vector: dict) -> None:
    with pytest.raises(payload.PayloadError) as caught:
        payload.decode(bytes.fromhex(vector["hex"]))
    assert caught.value.reason == vector["error"]["reason"]
    assert str(caught.value) == vector["error"]["message"]


def test_decode_batch_on_all_vectors() -> None:
    batch = payload.decode_batch([bytes.fromhex(v["hex"]) for v in VECTORS])
    for i, vector in enumerate(VECTORS):
        if "error" in vector:
            assert not batch.ok[i]
            assert batch.errors[i].reason == vector["error"]["reason"]
            assert all(math.isnan(batch.values[q][i]) for q in payload.QUANTITIES)
            continue
        want = vector["decoded"]
        assert batch.ok[i] and i not in batch.errors
        assert (batch.version[i], batch.status[i], batch.firmware[i]) == (
            want["version"],
            want["status"],
            want["firmware"],
        )
        for q, value in want["values"].items():
            assert np.isnan(batch.values[q][i]) if value is None else batch.values[q][i] == value
