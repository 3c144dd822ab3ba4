"""Upsert the lab folders and dashboards into a running Grafana over its HTTP API.

Idempotent by uid: folders and dashboards are created once and overwritten after; the
datasource is created when missing and otherwise left as an administrator set it up.
"""

from __future__ import annotations

from collections.abc import Callable

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError

from dashboards.grafana import DATASOURCE_UID
from dashboards.layout import LabDashboard, folder_uid

NOT_FOUND = 404


def _exists(get: Callable[[], object]) -> dict | None:
    try:
        found = get()
    except GrafanaClientError as exc:
        if exc.status_code == NOT_FOUND:
            return None
        raise
    return found if isinstance(found, dict) else {}


def push(api: GrafanaApi, boards: list[LabDashboard], datasource: dict) -> list[str]:
    """Returns one line per action, for the operator."""
    done: list[str] = []
    if _exists(lambda: api.datasource.get_datasource_by_uid(DATASOURCE_UID)) is None:
        api.datasource.create_datasource(datasource)
        done.append(f"datasource {DATASOURCE_UID}: created")
    else:
        done.append(f"datasource {DATASOURCE_UID}: exists, kept")
    for lab in {board.lab.id: board.lab for board in boards}.values():
        uid = folder_uid(lab.id)
        folder = _exists(lambda uid=uid: api.folder.get_folder(uid))
        if folder is None:
            api.folder.create_folder(lab.name, uid=uid)
            done.append(f"folder {uid}: created")
        elif folder.get("title") != lab.name:
            api.folder.update_folder(uid, title=lab.name, overwrite=True)
            done.append(f"folder {uid}: renamed")
        else:
            done.append(f"folder {uid}: exists")
    for board in boards:
        api.dashboard.update_dashboard(
            {
                "dashboard": {**board.model, "id": None},
                "folderUid": folder_uid(board.lab.id),
                "overwrite": True,
                "message": "livinglab dashboards push",
            }
        )
        done.append(f"dashboard {board.uid}: saved")
    return done
