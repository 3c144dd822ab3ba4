"""connectors.lorawan against a second implementation: lora-packet 0.9.3 (node, crypto-js AES,
aes-cmac CMAC), driven through tests/lorawan_node/oracle.js in one batch per test.

Needs node and `npm ci --prefix tests/lorawan_node`; skipped with that hint otherwise.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from connectors.lorawan import DataFrame, FrameError, build_uplink, open_uplink, parse_frame
from tests.test_lorawan_frames import LP32_FRAMES, LP_APP, LP_NWK

ORACLE = Path(__file__).parent / "lorawan_node"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (ORACLE / "node_modules" / "lora-packet").is_dir(),
    reason="lora-packet missing: run `npm ci --prefix tests/lorawan_node` (needs node)",
)


def oracle(cases: list[dict]) -> list[dict]:
    done = subprocess.run(
        ["node", str(ORACLE / "oracle.js")],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout)


def random_uplinks(count: int) -> list[dict]:
    """Seeded, so a failure names a case that comes back on the next run."""
    rng = random.Random(20240604)
    cases = []
    for index in range(count):
        f_port = [None, 0, 1, 2, 224, rng.randint(1, 255)][index % 6]
        cases.append(
            {
                "dev_addr": rng.randbytes(4).hex(),
                "fcnt": rng.choice([0, 1, 0xFFFF, 0x1_0000, rng.randrange(2**32)]),
                "f_port": f_port,
                "payload": b"" if f_port is None else rng.randbytes(rng.randint(0, 60)),
                "f_opts": b"" if f_port == 0 else rng.randbytes(rng.choice([0, 0, 1, 5, 15])),
                "nwk_s_key": rng.randbytes(16),
                "app_s_key": rng.randbytes(16),
                "confirmed": rng.random() < 0.5,
                "adr": rng.random() < 0.5,
                "adr_ack_req": rng.random() < 0.5,
                "ack": rng.random() < 0.5,
                "class_b": rng.random() < 0.5,
            }
        )
    return cases


def as_build_case(fields: dict) -> dict:
    return {
        "op": "build",
        **fields,
        "payload": fields["payload"].hex(),
        "f_opts": fields["f_opts"].hex(),
        "nwk": fields["nwk_s_key"].hex(),
        "app": fields["app_s_key"].hex(),
        "nwk_s_key": None,
        "app_s_key": None,
    }


def as_open_case(phy: bytes, fields: dict) -> dict:
    return {
        "op": "open",
        "phy": phy.hex(),
        "nwk": fields["nwk_s_key"].hex(),
        "app": fields["app_s_key"].hex(),
        "fcnt_msb": fields["fcnt"] >> 16,
    }


def test_built_frames_match_lora_packet_byte_for_byte() -> None:
    cases = random_uplinks(240)
    theirs = oracle([as_build_case(fields) for fields in cases])
    for fields, answer in zip(cases, theirs, strict=True):
        assert build_uplink(**fields).hex() == answer["phy"], fields


def test_lora_packet_reads_our_frames_as_we_do() -> None:
    cases = random_uplinks(240)
    frames = [build_uplink(**fields) for fields in cases]
    theirs = oracle([as_open_case(phy, f) for phy, f in zip(frames, cases, strict=True)])
    for phy, fields, answer in zip(frames, cases, theirs, strict=True):
        frame = parse_frame(phy)
        assert isinstance(frame, DataFrame)
        uplink = open_uplink(
            frame, fields["nwk_s_key"], fields["app_s_key"], (fields["fcnt"] - 1) % 2**32
        )
        assert answer["mic_ok"] and answer["mic"] == frame.mic.hex()
        assert answer["payload"] == uplink.payload.hex() == fields["payload"].hex()
        assert answer["mtype"] == ("Confirmed" if frame.confirmed else "Unconfirmed") + " Data Up"
        assert (answer["dir"], answer["dev_addr"]) == ("up", frame.dev_addr)
        assert (answer["fcnt"], answer["f_port"]) == (frame.fcnt16, frame.f_port)
        assert answer["f_opts"] == frame.f_opts.hex()
        assert (answer["adr"], answer["adr_ack_req"]) == (frame.adr, frame.adr_ack_req)
        assert (answer["ack"], answer["bit4"]) == (frame.ack, frame.class_b)


def test_tampered_frames_fail_in_both() -> None:
    cases = [fields for fields in random_uplinks(120) if fields["payload"]]
    tampered = []
    for fields in cases:
        phy = bytearray(build_uplink(**fields))
        phy[-5] ^= 0x01  # last FRMPayload byte
        tampered.append(bytes(phy))
    theirs = oracle([as_open_case(phy, f) for phy, f in zip(tampered, cases, strict=True)])
    for phy, fields, answer in zip(tampered, cases, theirs, strict=True):
        assert not answer["mic_ok"]
        frame = parse_frame(phy)
        assert isinstance(frame, DataFrame)
        with pytest.raises(FrameError) as caught:
            open_uplink(
                frame, fields["nwk_s_key"], fields["app_s_key"], (fields["fcnt"] - 1) % 2**32
            )
        assert caught.value.reason == "mic"


def test_lp32_vectors_are_what_lora_packet_makes() -> None:
    """The 32-bit FCnt vectors pinned in test_lorawan_frames.py come from lora-packet."""
    cases = [
        {
            "dev_addr": "26011f5a",
            "fcnt": fcnt,
            "f_port": 2,
            "payload": bytes.fromhex("022b5c"),
            "f_opts": b"",
            "nwk_s_key": LP_NWK,
            "app_s_key": LP_APP,
            "confirmed": False,
            "adr": False,
            "adr_ack_req": False,
            "ack": False,
            "class_b": False,
        }
        for fcnt in sorted(LP32_FRAMES)
    ]
    theirs = oracle([as_build_case(fields) for fields in cases])
    assert [answer["phy"] for answer in theirs] == [LP32_FRAMES[f] for f in sorted(LP32_FRAMES)]
