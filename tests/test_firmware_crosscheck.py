"""C encoder, JavaScript formatter and Python codec against the vectors and each other.

The suite builds the C code with gcc (into a temporary directory, so parallel runs
and the working tree do not interfere) and drives node for the formatter.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from livinglab.codec import payload

FIRMWARE = Path(__file__).parents[1] / "firmware"
SPEC = json.loads((FIRMWARE / "test-vectors.json").read_text(encoding="utf-8"))
GOOD = [v for v in SPEC["vectors"] if "error" not in v]
FIELDS = {int(v): [f for f in rows if "unit" in f] for v, rows in SPEC["fields"].items()}


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _need("gcc")
    _need("make")
    build = tmp_path_factory.mktemp("firmware-build")
    subprocess.run(
        ["make", "-s", "-C", str(FIRMWARE), f"BUILD={build}", "all"],
        check=True,
        capture_output=True,
    )
    return build


def c_encode(build: Path, lines: list[str]) -> list[str]:
    """Run the ll_encode CLI: one "version status firmware v0..v14" line per reading."""
    out = subprocess.run(
        [str(build / "ll_encode")],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.splitlines()


def js_decode(hexes: list[str]) -> list[dict]:
    _need("node")
    out = subprocess.run(
        ["node", str(FIRMWARE / "tests" / "decode_hex.js")],
        input="\n".join(hexes) + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    return [json.loads(line) for line in out.stdout.splitlines()]


def cli_line(version: int, status: int, firmware: int, values: dict[str, float | None]) -> str:
    numbers = [
        "nan" if values.get(q) is None else repr(float(values[q])) for q in payload.QUANTITIES
    ]
    return " ".join([str(version), str(status), str(firmware), *numbers])


def test_make_test_passes(tmp_path: Path) -> None:
    """`make -C firmware test`: C unit tests under ASan/UBSan and the no-heap check."""
    _need("gcc")
    _need("make")
    done = subprocess.run(
        ["make", "-C", str(FIRMWARE), f"BUILD={tmp_path}", "test"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok: 0 failure(s)" in done.stdout
    assert "no heap use" in done.stdout


def test_c_encoder_matches_vectors(build_dir: Path) -> None:
    lines = [
        cli_line(
            v["encode"]["version"],
            v["encode"]["status"],
            v["encode"].get("firmware", 0),
            v["encode"]["values"],
        )
        for v in GOOD
    ]
    assert c_encode(build_dir, lines) == [v["hex"] for v in GOOD]


def test_c_encoder_refuses_what_the_format_cannot_carry(build_dir: Path) -> None:
    lines = [
        cli_line(3, 0, 0, {}),  # no such version
        cli_line(1, 0, 0, {"pm1": 5.0}),  # v1 has no pm1
        cli_line(1, 0x100, 0, {}),  # v1 status is one byte
    ]
    assert c_encode(build_dir, lines) == ["error -1", "error -3", "error -4"]


def test_formatter_node_tests() -> None:
    _need("node")
    done = subprocess.run(
        ["node", "--test", str(FIRMWARE / "tests" / "formatter.test.js")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_formatter_errors_match_python_on_garbage() -> None:
    rng = np.random.default_rng(11)
    hexes = [
        bytes(rng.integers(0, 256, size=n, dtype=np.uint8)).hex()
        for n in rng.integers(0, 40, size=300)
    ]
    hexes += [f"{v:02x}" + "ab" * (n - 1) for v in (1, 2) for n in (15, 16, 17, 34, 35, 36)]
    for hex_, out in zip(hexes, js_decode(hexes)):
        try:
            decoded = payload.decode(bytes.fromhex(hex_))
        except payload.PayloadError as exc:
            assert out["errors"] == [str(exc)], hex_
            continue
        assert out["errors"] == []
        assert out["data"] == {
            "version": decoded.version,
            "status": decoded.status,
            "flags": list(payload.status_flags(decoded.status)),
            "firmware": decoded.firmware,
            **decoded.values,
        }


def random_readings(rng: np.random.Generator, version: int, n: int) -> list[dict]:
    """Values inside, at and beyond each field's range, plus ties and not-measured."""
    readings = []
    for _ in range(n):
        values: dict[str, float | None] = {}
        for field in FIELDS[version]:
            lo, hi, step = field["min"], field["max"], field["resolution"]
            kind = rng.integers(0, 10)
            if kind == 0:
                values[field["name"]] = None
            elif kind == 1:
                values[field["name"]] = float(rng.choice([lo - 1000 * step, hi + 1000 * step]))
            elif kind == 2:
                values[field["name"]] = (
                    int(rng.integers(0, round((hi - lo) / step))) + 0.5
                ) * step + lo
            else:
                values[field["name"]] = float(rng.uniform(lo - 2 * step, hi + 2 * step))
        readings.append(values)
    return readings


@pytest.mark.parametrize("version", [1, 2])
def test_random_readings_encoded_in_c_decode_alike_in_js_and_python(
    build_dir: Path, version: int
) -> None:
    rng = np.random.default_rng(version)
    readings = random_readings(rng, version, 1500)
    clamped = payload.STATUS_BITS["clamped"]
    statuses = rng.integers(0, 0x100 if version == 1 else 0x400, size=len(readings)) & ~clamped
    firmware = rng.integers(0, 0x10000, size=len(readings))
    lines = [cli_line(version, int(s), int(f), r) for r, s, f in zip(readings, statuses, firmware)]
    hexes = c_encode(build_dir, lines)
    js = js_decode(hexes)
    for values, status, fw, hex_, out in zip(readings, statuses, firmware, hexes, js):
        kwargs = {"firmware": int(fw)} if version == 2 else {}
        assert payload.encode(values, status=int(status), version=version, **kwargs).hex() == hex_
        py = payload.decode(bytes.fromhex(hex_))
        assert out["errors"] == []
        assert {q: out["data"][q] for q in payload.QUANTITIES} == py.values
        assert (out["data"]["status"], out["data"]["firmware"]) == (py.status, py.firmware)
        assert py.status & ~clamped == status
        assert py.firmware == (fw if version == 2 else 0)
        for field in FIELDS[version]:
            x, got = values[field["name"]], py.values[field["name"]]
            if x is None:
                assert got is None
                continue
            target = min(max(x, field["min"]), field["max"])
            assert math.isclose(got, target, abs_tol=field["resolution"] * 0.5000001)
            if abs(x - target) > field["resolution"]:
                assert py.status & clamped
