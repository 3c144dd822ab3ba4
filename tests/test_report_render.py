"""The council report for every sample lab, from the shared demo store.

The demo covers 17:30-22:30 UTC of one day for every unit; the store fixture adds two
alert episodes per lab (tests/test_dashboards_store.py), so every chart has something
to draw and the counts are known.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from livinglab.registry import load_registry
from tests.conftest import ROOT, livinglab
from tests.test_dashboards_store import EMBEDDED_ENV, demo_store

pytestmark = pytest.mark.slow  # runs the demo on the embedded stack

REGISTRY = load_registry()
DAYS = 2  # short enough for hourly coverage cells

_RENDER_ALL = """
import sys
from pathlib import Path
from dashboards.reader import Reader
from dashboards.report import write_report
from livinglab.config import Settings
from livinglab.registry import load_registry
out = Path(sys.argv[2])
with Reader(Settings.from_env(data_dir=Path(sys.argv[1]))) as reader:
    for lab in load_registry().labs:
        write_report(reader, lab, out / lab.id, int(sys.argv[3]))
"""


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every lab's report, rendered in one process (the store opens once)."""
    out = tmp_path_factory.mktemp("reports")
    result = subprocess.run(
        [sys.executable, "-c", _RENDER_ALL, str(demo_store()), str(out), str(DAYS)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=EMBEDDED_ENV,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("lab", REGISTRY.labs, ids=lambda lab: lab.id)
def test_every_lab_gets_a_page_whose_charts_hold_its_data(reports: Path, lab) -> None:
    folder = reports / lab.id
    manifest = json.loads((folder / "report.json").read_text())
    units = len(lab.units)
    assert manifest["charts"] == {
        "noise.png": 2 * units,  # Lden and Lnight of the one measured day, every unit
        "pm.png": 2 * units,  # PM2.5 and PM10 daily means (provisional: 5 of 18 hours)
        "alerts.png": 2,  # the fixture's resolved and open episodes
        "coverage.png": 6 * units,  # hours 17..22 UTC have uplinks, the rest are empty
    }
    page = (folder / "index.html").read_text()
    assert lab.name in page
    for chart in manifest["charts"]:
        width, height = _png_size(folder / chart)
        assert width >= 800 and height >= 300, chart
        assert f'src="{chart}"' in page
    assert "still open" in page and "limit exceeded: noise night" in page


def test_report_verb_writes_one_lab(tmp_path: Path) -> None:
    lab = REGISTRY.labs[-1]
    out = tmp_path / "report"
    run = livinglab(
        "report", "--lab", lab.id, "--out", str(out), "--days", "3", "--data-dir", str(demo_store())
    )
    assert str(out / "index.html") in run.stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "alerts.png",
        "coverage.png",
        "index.html",
        "noise.png",
        "pm.png",
        "report.json",
    ]
    coverage = json.loads((out / "report.json").read_text())["facts"]["coverage"]
    # Every unit sent once a minute for 5 of the report's 72 hours (3 local days).
    assert coverage == pytest.approx({u.sensor: 100 * 5 / 72 for u in lab.units}, abs=0.3)
    unknown = livinglab("report", "--lab", "atlantis", "--out", str(out), check=False)
    assert unknown.returncode == 2 and lab.id in unknown.stderr
