"""`livinglab decode` as a user runs it: messages on stdin (or a file), JSON lines out.

References: the network servers' documented examples (tests/fixtures/lns), the shared payload
test vectors of the firmware (firmware/test-vectors.json, checked against the C encoder and the
JavaScript formatter), and frames built as a device builds them (connectors.lorawan).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from connectors.decode import FIELDS
from connectors.lorawan import build_uplink
from livinglab.registry import load_registry

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "lns"
VECTOR = next(
    v
    for v in json.loads((ROOT / "firmware" / "test-vectors.json").read_text())["vectors"]
    if v["name"] == "typical urban reading"
)
PAYLOAD = bytes.fromhex(VECTOR["hex"])
UNIT = load_registry().lab("zoetermeer").units[0]


def decode(*lines: bytes | str, args: tuple[str, ...] = ()) -> tuple[int, list[dict[str, Any]]]:
    """Run `livinglab decode -` with the lines on stdin: (exit status, parsed output lines)."""
    stdin = b"\n".join(line.encode() if isinstance(line, str) else line for line in lines)
    result = subprocess.run(
        [sys.executable, "-m", "livinglab", "decode", *args, "-"],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode in (0, 1), result.stderr.decode()
    out = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert all(list(o)[:-1] == ["line", *FIELDS] for o in out), "every line has every field"
    return result.returncode, out


def compact(name: str) -> str:
    return json.dumps(json.loads((FIXTURES / name).read_text()))


def rxpk(phy: bytes, **fields: Any) -> dict[str, Any]:
    return {
        "time": "2026-05-04T10:11:12.345678Z",
        "tmst": 1,
        "freq": 868.5,
        "stat": 1,
        "modu": "LORA",
        "datr": "SF10BW125",
        "codr": "4/5",
        "rssi": -97,
        "lsnr": -4.5,
        "size": len(phy),
        "data": base64.b64encode(phy).decode(),
        **fields,
    }


def frame(fcnt: int, payload: bytes = PAYLOAD) -> bytes:
    return build_uplink(UNIT.dev_addr, fcnt, 1, payload, UNIT.nwk_s_key, UNIT.app_s_key)


def test_documented_examples_decode_to_their_fields() -> None:
    v3 = {**json.loads((FIXTURES / "chirpstack_v3_up_example.json").read_text()), "data": "AQID"}
    status, out = decode(
        compact("tts_v3_uplink_example.json"),
        compact("chirpstack_v4_up_example.json"),
        json.dumps(v3),
    )
    assert status == 1  # none of the documentation's devices is in our registry
    tts, v4, cs3 = out
    assert {k: tts[k] for k in ("source", "dev_eui", "f_cnt", "f_port", "payload_hex")} == {
        "source": "tts",
        "dev_eui": "0004a30b001c0530",
        "f_cnt": 1,
        "f_port": 0,
        "payload_hex": "8241de",
    }
    assert tts["gateways"] == [{"id": "9c5c8e00001a05c4", "rssi": -35.0, "snr": 5.0}]
    assert tts["received_at"] == "2020-02-12T15:15:46.014Z"
    assert (v4["dev_eui"], v4["f_cnt"], v4["f_port"], v4["payload_hex"]) == (
        "0101010101010101",
        0,
        1,
        "aa",
    )  # fCnt 0 is omitted by ChirpStack
    assert v4["gateways"] == [{"id": "0016c001f153a14c", "rssi": -36.0, "snr": 10.5}]
    assert v4["received_at"] == "2022-07-18T09:34:15.775Z"
    assert (cs3["dev_eui"], cs3["f_cnt"], cs3["f_port"], cs3["payload_hex"]) == (
        "0202020202020202",
        10,
        5,
        "010203",
    )
    assert [o["line"] for o in out] == [1, 2, 3]
    assert all(o["error"].startswith("unknown_device: ") for o in out)


def test_registered_units_get_their_reading() -> None:
    b64 = base64.b64encode(PAYLOAD).decode()
    tts = {
        "end_device_ids": {"dev_eui": UNIT.dev_eui.upper()},
        "received_at": "2026-05-04T10:00:00Z",
        "uplink_message": {"f_port": 1, "f_cnt": 12, "frm_payload": b64},
    }
    chirpstack = {
        "deviceInfo": {"devEui": UNIT.dev_eui},
        "time": "2026-05-04T10:01:00Z",
        "fPort": 1,
        "data": b64,
    }  # no fCnt: it is 0
    status, out = decode(json.dumps(tts), "", json.dumps(chirpstack))
    assert status == 0
    assert [(o["line"], o["sensor"], o["f_cnt"]) for o in out] == [
        (1, UNIT.key, 12),
        (3, UNIT.key, 0),
    ]
    expected = VECTOR["decoded"]
    for o in out:
        assert o["reading"]["values"] == expected["values"]
        assert (o["reading"]["status"], o["reading"]["firmware"], o["reading"]["version"]) == (
            expected["status"],
            expected["firmware"],
            expected["version"],
        )


def test_semtech_rxpk_frames_are_verified_decrypted_and_decoded() -> None:
    good = frame(70_000)  # the first frame seen is already past 65535
    tampered = frame(70_001)[:-1] + b"\x00"
    join = (
        b"\x00"
        + bytes.fromhex("0102030405060708")[::-1]
        + bytes.fromhex("70b3d57ed0000099")[::-1]
        + b"\x07\x00"
        + b"\x00" * 4
    )
    stranger = build_uplink("01020304", 1, 1, b"x", bytes(16), bytes(16))
    status, out = decode(
        json.dumps(rxpk(good)),
        json.dumps({"rxpk": [rxpk(frame(70_001)), rxpk(tampered)]}),
        json.dumps(rxpk(join)),
        json.dumps(rxpk(stranger)),
        json.dumps(rxpk(frame(70_002), stat=-1)),
        json.dumps(rxpk(good, datr="SF99")),
    )
    assert status == 1
    first = out[0]
    assert (
        first["source"],
        first["dev_eui"],
        first["sensor"],
        first["f_cnt"],
        first["f_port"],
    ) == ("udp", UNIT.dev_eui, UNIT.key, 70_000, 1)
    assert first["payload_hex"] == VECTOR["hex"]
    assert first["reading"]["values"] == VECTOR["decoded"]["values"]
    assert first["gateways"] == [{"id": None, "rssi": -97.0, "snr": -4.5}]
    assert first["received_at"] == "2026-05-04T10:11:12.345Z"
    assert [o["line"] for o in out] == [1, 2, 2, 3, 4, 5, 6]
    assert out[1]["f_cnt"] == 70_001 and "reading" in out[1]
    assert [o["error"].split(":")[0] for o in out[2:]] == [
        "mic",
        "join_request",
        "unknown_devaddr",
        "crc_failed",
        "datr",
    ]
    assert (out[2]["dev_eui"], out[3]["dev_eui"]) == (UNIT.dev_eui, "70b3d57ed0000099")


def test_junk_lines_get_a_clear_error_and_the_rest_still_decodes() -> None:
    good = {
        "deviceInfo": {"devEui": UNIT.dev_eui},
        "time": "2026-05-04T10:01:00Z",
        "fCnt": 3,
        "fPort": 1,
        "data": base64.b64encode(PAYLOAD).decode(),
    }
    lines = [
        b"\x00\xff\xfe junk bytes",
        b"{not json",
        json.dumps({**good, "fCnt": "three"}).encode(),
        json.dumps({**good, "data": base64.b64encode(b"\x07short").decode()}).encode(),
        b'{"pad": "' + b"x" * 200_000 + b'"}',
        json.dumps({"rxpk": "not a list"}).encode(),
        json.dumps(good).encode(),
    ]
    status, out = decode(*lines)
    assert status == 1
    assert [o["error"].split(":")[0] for o in out[:-1]] == [
        "json",
        "json",
        "field",
        "payload.version",
        "too_large",
        "field",
    ]
    assert out[-1]["f_cnt"] == 3 and "reading" in out[-1]
    assert [o["line"] for o in out] == list(range(1, 8))


def test_a_file_argument_and_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "uplinks.jsonl"
    path.write_text(compact("chirpstack_v4_up_example.json") + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "livinglab", "decode", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(result.stdout)["dev_eui"] == "0101010101010101"
    missing = subprocess.run(
        [sys.executable, "-m", "livinglab", "decode", str(tmp_path / "no")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and "does not exist" in missing.stderr


@pytest.mark.parametrize(
    ("when", "received_at"),
    [("2026-05-04T10:11:12.345678Z", "2026-05-04T10:11:12.345Z"), (None, None)],
)
def test_rxpk_time_is_the_event_time_when_the_gateway_gives_one(
    when: str | None, received_at: str | None
) -> None:
    _, [out] = decode(json.dumps(rxpk(frame(5), time=when)))
    assert out["received_at"] == received_at and "reading" in out
