"""The lab registry: the shipped sample loads, and broken files say where and why."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from livinglab.registry import DEFAULT_REGISTRY, RegistryError, load_registry
from tests.conftest import livinglab

LABS = {
    "zoetermeer",
    "veldhoven",
    "leidschendam-voorburg",
    "rijswijk",
    "den-haag-scheveningen",
    "nijmegen",
    "utrecht",
}


def test_sample_has_seven_labs_of_ten_units() -> None:
    registry = load_registry()
    assert {lab.id for lab in registry.labs} == LABS
    assert all(len(lab.units) == 10 for lab in registry.labs)
    assert len(registry.by_dev_eui) == 70 and len(registry.by_dev_addr) == 70
    unit = registry.by_dev_eui[registry.units[0].dev_eui]
    assert len(unit.nwk_s_key) == 16 and len(unit.app_s_key) == 16
    assert unit.uplink_interval_s == 60 and unit.payload_format == "livinglab"


def _broken(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load(DEFAULT_REGISTRY.read_text())
    mutate(raw)
    path = tmp_path / "labs.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("mutate", "entry", "problem"),
    [
        (
            lambda r: r["labs"][0]["units"][2].__setitem__("dev_eui", "xyz"),
            "lab zoetermeer, unit zoe-03",
            "dev_eui' must be 16 hex digits",
        ),
        (
            lambda r: r["labs"][1]["units"][0].pop("app_s_key"),
            "lab veldhoven, unit vel-01",
            "missing field 'app_s_key'",
        ),
        (
            lambda r: r["labs"][2].__setitem__("timezone", "Mars/Olympus"),
            "lab leidschendam-voorburg",
            "unknown time zone",
        ),
        (
            lambda r: r["labs"][3]["units"][1].__setitem__(
                "dev_eui", r["labs"][3]["units"][0]["dev_eui"]
            ),
            "lab rijswijk, unit rij-02",
            "is also used by rijswijk:rij-01",
        ),
        (
            lambda r: r["labs"][4]["units"][0].__setitem__("payload_format", "csv"),
            "lab den-haag-scheveningen, unit den-01",
            "payload_format must be one of",
        ),
        (
            lambda r: r["labs"][5]["units"][0].__setitem__("uplink_interval_s", "often"),
            "lab nijmegen, unit nij-01",
            "'uplink_interval_s' must be int",
        ),
    ],
)
def test_broken_registry_names_file_entry_and_problem(tmp_path, mutate, entry, problem) -> None:
    path = _broken(tmp_path, mutate)
    with pytest.raises(RegistryError) as err:
        load_registry(path)
    assert err.value.path == str(path)
    assert err.value.entry == entry
    assert problem in err.value.problem


def test_not_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("labs: [unclosed")
    with pytest.raises(RegistryError, match="is not valid YAML"):
        load_registry(bad)
    with pytest.raises(RegistryError, match="does not exist"):
        load_registry(tmp_path / "missing.yaml")


def test_cli_reports_broken_registry_clearly(tmp_path: Path) -> None:
    path = _broken(tmp_path, lambda r: r["labs"][0]["units"][0].pop("dev_addr"))
    result = livinglab(
        "demo",
        "--hours",
        "1",
        "--registry",
        str(path),
        "--data-dir",
        str(tmp_path / "d"),
        check=False,
    )
    assert result.returncode == 2
    assert f"{path}: lab zoetermeer, unit zoe-01: missing field 'dev_addr'" in result.stderr
    assert "Traceback" not in result.stderr
