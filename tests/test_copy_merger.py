"""Copies of a frame within the merge window become one uplink (pure, with a fake clock)."""

from __future__ import annotations

import base64
import json
from collections import Counter

from connectors.merge import CopyMerger


class RecordingIngress:
    """Stands in for Kafka only: records what the merger hands on."""

    def __init__(self) -> None:
        self.produced: list[dict] = []
        self.rejected: list[str] = []
        self.stats: Counter[str] = Counter()

    def produce_uplink(self, uplink: dict) -> None:
        self.produced.append(uplink)

    def reject(self, raw: bytes, reason: str, detail: str, origin: str = "", **_: object) -> None:
        self.rejected.append(reason)

    def flush(self, timeout: float = 30.0) -> None:
        pass


def tts(f_cnt: int, gateway: str, at: str = "2026-11-20T10:00:00Z") -> bytes:
    rx = [{"gateway_ids": {"eui": gateway}, "rssi": -90, "snr": 5}]
    up = {"f_cnt": f_cnt, "f_port": 1, "frm_payload": base64.b64encode(b"\x02").decode()}
    return json.dumps({
        "end_device_ids": {"dev_eui": "70B3D57ED0000040"},
        "received_at": at,
        "uplink_message": {**up, "rx_metadata": rx},
    }).encode()  # fmt: skip


def test_copies_within_the_window_merge_later_ones_pass_alone() -> None:
    now = [0.0]
    ingress = RecordingIngress()
    merger = CopyMerger(ingress, window_s=0.2, clock=lambda: now[0])  # type: ignore[arg-type]
    merger.submit(tts(7, "aa00000000000001"))
    now[0] = 0.1
    merger.submit(tts(7, "aa00000000000002"))
    merger.submit(tts(7, "aa00000000000001"))  # the same gateway again: nothing new
    merger.submit(b"{junk")
    merger.submit(tts(9, "aa00000000000001"))
    merger.submit(tts(9, "aa00000000000001", at="2026-11-20T10:05:00Z"))  # sent again: no copy
    now[0] = 0.5
    merger.submit(tts(8, "aa00000000000001"))  # releases frame 7
    merger.submit(tts(7, "aa00000000000003"))  # too late to merge: passes by itself
    merger.flush()
    assert [(u["f_cnt"], [g["id"] for g in u["gateways"]]) for u in ingress.produced] == [
        (9, ["aa00000000000001"]),
        (7, ["aa00000000000001", "aa00000000000002"]),
        (9, ["aa00000000000001"]),
        (8, ["aa00000000000001"]),
        (7, ["aa00000000000003"]),
    ]
    assert ingress.rejected == ["json"]
    assert ingress.stats["merged_copies"] == 2
