"""Grafana provisioning files: the ClickHouse datasource, one dashboard folder per lab.

Layout under OUT (mount it into Grafana and point GF_PATHS_PROVISIONING at
OUT/provisioning):

    provisioning/datasources/livinglab.yaml
    provisioning/dashboards/livinglab.yaml     one file provider (= folder) per lab
    dashboards/<lab>/<uid>.json

The providers name the dashboard directories by the path Grafana sees (`grafana_path`),
which differs from OUT when Grafana runs in a container.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote, urlparse

import yaml

from dashboards.grafana import DATASOURCE_NAME, DATASOURCE_UID, PLUGIN_ID
from dashboards.layout import LabDashboard, folder_uid
from livinglab.registry import Lab

DEFAULT_CLICKHOUSE = "clickhouse://default@localhost:8123/default"


def datasource(clickhouse_url: str | None) -> dict:
    """The datasource as Grafana's provisioning and HTTP API both take it, pointing at the
    same ClickHouse the platform writes to (HTTP interface, like clickhouse-connect)."""
    u = urlparse(clickhouse_url or DEFAULT_CLICKHOUSE)
    secure = u.scheme in ("https", "clickhouses")
    entry: dict = {
        "name": DATASOURCE_NAME,
        "uid": DATASOURCE_UID,
        "type": PLUGIN_ID,
        "access": "proxy",
        "isDefault": True,
        "jsonData": {
            "host": u.hostname or "localhost",
            "port": u.port or (8443 if secure else 8123),
            "protocol": "http",
            "secure": secure,
            "username": unquote(u.username or "default"),
            "defaultDatabase": (u.path or "/default").lstrip("/") or "default",
        },
    }
    if u.password:
        entry["secureJsonData"] = {"password": unquote(u.password)}
    return entry


def _no_env_expansion(entry: dict) -> dict:
    """Grafana expands $VAR in provisioning files; a literal $ (in a password) is $$."""
    secure = entry.get("secureJsonData")
    if not secure:
        return entry
    return {**entry, "secureJsonData": {k: v.replace("$", "$$") for k, v in secure.items()}}


def _provider(lab: Lab, grafana_path: str) -> dict:
    return {
        "name": f"livinglab-{lab.id}",
        "orgId": 1,
        "folder": lab.name,
        "folderUid": folder_uid(lab.id),
        "type": "file",
        "disableDeletion": False,
        "allowUiUpdates": False,
        "updateIntervalSeconds": 60,
        "options": {"path": f"{grafana_path.rstrip('/')}/dashboards/{lab.id}"},
    }


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write(
    out: Path, boards: list[LabDashboard], clickhouse_url: str | None, grafana_path: str
) -> list[Path]:
    """Write every file; returns their paths."""
    labs = list({board.lab.id: board.lab for board in boards}.values())
    written = [
        _write(
            out / "provisioning" / "datasources" / "livinglab.yaml",
            yaml.safe_dump(
                {"apiVersion": 1, "datasources": [_no_env_expansion(datasource(clickhouse_url))]},
                sort_keys=False,
            ),
        ),
        _write(
            out / "provisioning" / "dashboards" / "livinglab.yaml",
            yaml.safe_dump(
                {"apiVersion": 1, "providers": [_provider(lab, grafana_path) for lab in labs]},
                sort_keys=False,
            ),
        ),
    ]
    for board in boards:
        path = out / "dashboards" / board.lab.id / f"{board.uid}.json"
        written.append(_write(path, json.dumps(board.model, indent=2, sort_keys=True) + "\n"))
    return written
