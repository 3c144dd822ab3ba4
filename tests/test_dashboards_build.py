"""Generated dashboards and provisioning files: uids, datasource references, layout.

No Grafana here: the checks are on the JSON and YAML Grafana would load.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dashboards.grafana import DATASOURCE_UID, PLUGIN_ID
from dashboards.layout import KINDS, UID_MAX, dashboard_uid, folder_uid, lab_dashboards
from dashboards.provisioning import datasource, write
from livinglab.cli import main
from livinglab.registry import load_registry

REGISTRY = load_registry()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("grafana")
    assert main(["dashboards", "build", "--out", str(out), "--grafana-path", "/grafana"]) == 0
    return out


def _boards(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "dashboards").glob("*/*.json"))]


def _panels_and_targets(board: dict):
    for panel in board["panels"]:
        yield panel, panel.get("targets", [])


def test_one_folder_per_lab_with_every_kind_of_dashboard(built: Path) -> None:
    providers = yaml.safe_load((built / "provisioning/dashboards/livinglab.yaml").read_text())
    by_folder = {p["folderUid"]: p for p in providers["providers"]}
    assert set(by_folder) == {folder_uid(lab.id) for lab in REGISTRY.labs}
    for lab in REGISTRY.labs:
        provider = by_folder[folder_uid(lab.id)]
        assert provider["folder"] == lab.name and provider["type"] == "file"
        assert provider["options"]["path"] == f"/grafana/dashboards/{lab.id}"
        files = sorted(p.stem for p in (built / "dashboards" / lab.id).glob("*.json"))
        assert files == sorted(dashboard_uid(lab.id, kind) for kind in KINDS)


def test_uids_are_unique_stable_and_fit_grafana(built: Path) -> None:
    uids = [b["uid"] for b in _boards(built)]
    assert len(uids) == len(set(uids)) == len(REGISTRY.labs) * len(KINDS)
    assert all(len(uid) <= UID_MAX for uid in uids)
    again = [b.uid for lab in REGISTRY.labs for b in lab_dashboards(lab)]
    assert sorted(again) == sorted(uids)
    # Lab ids too long for a readable uid keep distinct, stable, short ones.
    long_a, long_b = "a" * 45 + "-noord", "a" * 45 + "-zuid"
    made = {dashboard_uid(lab, kind) for lab in (long_a, long_b) for kind in KINDS}
    assert len(made) == 2 * len(KINDS) and all(len(u) <= UID_MAX for u in made)
    assert dashboard_uid(long_a, "noise") == dashboard_uid(long_a, "noise")


def test_every_panel_and_query_names_the_provisioned_datasource(built: Path) -> None:
    provisioned = yaml.safe_load((built / "provisioning/datasources/livinglab.yaml").read_text())
    [ds] = provisioned["datasources"]
    assert (ds["uid"], ds["type"]) == (DATASOURCE_UID, PLUGIN_ID)
    expected = {"type": PLUGIN_ID, "uid": DATASOURCE_UID}
    for board in _boards(built):
        for panel, targets in _panels_and_targets(board):
            assert panel["datasource"] == expected, (board["uid"], panel["title"])
            assert targets, (board["uid"], panel["title"])
            for target in targets:
                assert target["datasource"] == expected
                assert target["editorType"] == "sql" and target["rawSql"].strip()
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                assert variable["datasource"] == expected
        for annotation in board["annotations"].get("list", []):
            assert annotation["datasource"] == annotation["target"]["datasource"] == expected


def test_json_holds_exactly_the_queries_the_checks_run(built: Path) -> None:
    for lab in REGISTRY.labs:
        for spec in lab_dashboards(lab):
            on_disk = json.loads((built / "dashboards" / lab.id / f"{spec.uid}.json").read_text())
            queries = [
                (t["refId"], t["rawSql"]) for _, ts in _panels_and_targets(on_disk) for t in ts
            ]
            from_spec = [
                (ref, query.sql)
                for panel in spec.panels
                for ref, query in zip("ABCDEFGH", panel.queries)
            ]
            assert queries == from_spec
            annotations = [a["target"]["rawSql"] for a in on_disk["annotations"].get("list", [])]
            assert annotations == [query.sql for query in spec.annotations]
            assert bool(annotations) == (spec.kind in ("noise", "air"))  # alerts on time lines


def test_overrides_name_columns_of_their_queries() -> None:
    """Limit lines and table cells are styled by column name: a renamed column must not go
    unstyled."""
    for spec in lab_dashboards(REGISTRY.labs[0]):
        for panel in spec.panels:
            columns = {c for q in panel.queries for c in q.columns}
            overrides = panel.builder.build().field_config.overrides  # type: ignore[attr-defined]
            for override in overrides:
                if override.matcher.id_val == "byName":
                    assert override.matcher.options in columns, override.matcher.options


def test_unit_variable_lists_the_registry_units_and_defaults_to_all(built: Path) -> None:
    for board in _boards(built):
        lab = REGISTRY.lab(next(t for t in board["tags"] if t.startswith("lab:"))[4:])
        variables = {v["name"]: v for v in board["templating"]["list"]}
        unit = variables["unit"]
        assert unit["query"].split(",") == [u.sensor for u in lab.units]
        assert unit["includeAll"] and unit["multi"] and unit["current"]["value"] == "$__all"
        assert variables["lab"]["query"] == lab.id and variables["tz"]["query"] == lab.timezone
        assert ("quantity" in variables) == board["uid"].endswith("-overview")


def test_map_reads_the_columns_its_query_returns() -> None:
    [overview] = [b for b in lab_dashboards(REGISTRY.labs[0]) if b.kind == "overview"]
    [geomap] = [p for p in overview.model["panels"] if p["type"] == "geomap"]
    [layer] = geomap["options"]["layers"]
    [state_query] = overview.panels[0].queries
    read = {layer["location"]["latitude"], layer["location"]["longitude"]}
    read |= {layer["config"]["style"]["color"]["field"], layer["config"]["style"]["text"]["field"]}
    assert read <= set(state_query.columns)


def test_datasource_follows_the_platform_clickhouse_url(tmp_path: Path) -> None:
    entry = datasource("clickhouse://ll:pa%24s@clickhouse:8123/livinglab")
    assert entry["jsonData"] == {
        "host": "clickhouse",
        "port": 8123,
        "protocol": "http",
        "secure": False,
        "username": "ll",
        "defaultDatabase": "livinglab",
    }
    assert entry["secureJsonData"] == {"password": "pa$s"}
    assert datasource("https://u@ch.example:8443/db")["jsonData"]["secure"] is True
    # Grafana expands $VAR in provisioning files: the written password escapes its $.
    write(
        tmp_path,
        lab_dashboards(REGISTRY.labs[0])[:1],
        "clickhouse://ll:pa%24s@clickhouse:8123/x",
        "/g",
    )
    text = (tmp_path / "provisioning/datasources/livinglab.yaml").read_text()
    assert yaml.safe_load(text)["datasources"][0]["secureJsonData"]["password"] == "pa$$s"
