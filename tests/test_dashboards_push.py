"""`livinglab dashboards push` through grafana-client against a stand-in Grafana.

There is no Grafana server here, so a small HTTP server plays the part of the few
endpoints of Grafana's HTTP API that push uses (folders, dashboards/db, datasources),
with Grafana's answers: 404 for unknown uids, 409 for a folder uid taken, 412 for a
dashboard that exists unless `overwrite` is set. The real client library talks to it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dashboards.grafana import DATASOURCE_UID, PLUGIN_ID
from dashboards.layout import KINDS, folder_uid
from livinglab.cli import main
from livinglab.registry import load_registry

REGISTRY = load_registry()


class FakeGrafana:
    def __init__(self) -> None:
        self.folders: dict[str, dict] = {}
        self.dashboards: dict[str, dict] = {}
        self.datasources: dict[str, dict] = {}
        self.auth: set[str] = set()
        self.writes = 0


def _handler(state: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict:
            state.auth.add(self.headers.get("Authorization", ""))
            state.writes += 1
            return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

        def do_GET(self) -> None:
            state.auth.add(self.headers.get("Authorization", ""))
            kind, _, uid = self.path.removeprefix("/api/").rpartition("/")
            found = {"folders": state.folders, "datasources/uid": state.datasources}.get(kind, {})
            if uid in found:
                self._reply(200, found[uid])
            else:
                self._reply(404, {"message": "not found"})

        def do_POST(self) -> None:
            body = self._body()
            if self.path == "/api/folders":
                if body["uid"] in state.folders:
                    return self._reply(409, {"message": "folder uid exists"})
                state.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"]}
                return self._reply(200, state.folders[body["uid"]])
            if self.path == "/api/datasources":
                state.datasources[body["uid"]] = body
                return self._reply(200, {"datasource": body})
            if self.path == "/api/dashboards/db":
                board = body["dashboard"]
                if body.get("folderUid") not in state.folders:
                    return self._reply(400, {"message": "folder not found"})
                if board["uid"] in state.dashboards and not body.get("overwrite"):
                    return self._reply(412, {"message": "version-mismatch"})
                state.dashboards[board["uid"]] = body
                return self._reply(200, {"status": "success", "uid": board["uid"]})
            self._reply(404, {"message": "no such endpoint"})

        def do_PUT(self) -> None:
            body = self._body()
            uid = self.path.removeprefix("/api/folders/")
            state.folders[uid].update(title=body["title"])
            self._reply(200, state.folders[uid])

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    state = FakeGrafana()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_push_creates_folders_dashboards_and_datasource_once(
    grafana: tuple[FakeGrafana, str], capsys: pytest.CaptureFixture
) -> None:
    state, url = grafana
    assert main(["dashboards", "push", "--url", url, "--token", "glsa_test"]) == 0
    assert state.auth == {"Bearer glsa_test"}
    assert set(state.folders) == {folder_uid(lab.id) for lab in REGISTRY.labs}
    assert len(state.dashboards) == len(REGISTRY.labs) * len(KINDS)
    for body in state.dashboards.values():
        lab = body["dashboard"]["templating"]["list"][0]["query"]
        assert body["folderUid"] == folder_uid(lab) and body["overwrite"] is True
        assert body["dashboard"]["id"] is None  # Grafana matches by uid, not by a local id
    [ds] = state.datasources.values()
    assert (ds["uid"], ds["type"]) == (DATASOURCE_UID, PLUGIN_ID)
    first = {uid: json.dumps(b, sort_keys=True) for uid, b in state.dashboards.items()}
    writes = state.writes
    capsys.readouterr()

    # A second push changes nothing: same uids, same content, no new folder or datasource.
    state.folders[folder_uid(REGISTRY.labs[0].id)]["title"] = "renamed by hand"
    assert main(["dashboards", "push", "--url", url, "--token", "glsa_test"]) == 0
    out = capsys.readouterr().out
    assert {uid: json.dumps(b, sort_keys=True) for uid, b in state.dashboards.items()} == first
    assert "datasource livinglab-clickhouse: exists, kept" in out
    assert f"folder {folder_uid(REGISTRY.labs[0].id)}: renamed" in out
    assert state.folders[folder_uid(REGISTRY.labs[0].id)]["title"] == REGISTRY.labs[0].name
    # Writes the second time: the dashboards and the one folder rename, nothing else.
    assert state.writes - writes == len(state.dashboards) + 1


def test_push_of_one_lab_and_a_refusing_grafana(
    grafana: tuple[FakeGrafana, str], capsys: pytest.CaptureFixture
) -> None:
    state, url = grafana
    lab = REGISTRY.labs[2]
    assert main(["dashboards", "push", "--url", url, "--lab", lab.id]) == 0
    assert set(state.folders) == {folder_uid(lab.id)} and len(state.dashboards) == len(KINDS)
    assert main(["dashboards", "push", "--url", url, "--lab", "atlantis"]) == 2
    assert "atlantis" in capsys.readouterr().err
    assert main(["dashboards", "push", "--url", url + "/nothing-here"]) == 1
