"""Dedup and the partition processor, without Kafka (windows: tests/test_windows_*.py).

Expected numbers come from the definitions (DESIGN.md section 5), computed here
independently of the code under test.
"""

from __future__ import annotations

import base64
import json
import math

from livinglab.codec.payload import encode
from livinglab.registry import load_registry
from schemas import codec
from streams import dedup
from streams.processor import CONTROL_KEY, END_OF_INPUT, PartitionProcessor
from streams.uplink_worker import state_bytes

REGISTRY = load_registry()
UNIT = REGISTRY.units[0]
T0 = 1_795_000_000_000 - 1_795_000_000_000 % 3_600_000


def gw(i: int) -> dict:
    return {"id": f"gw{i}", "rssi": -80.0 - i, "snr": 5.0, "time": None}


# -- dedup ---------------------------------------------------------------------------------
def test_copies_merge_gateways_and_bump_version() -> None:
    state: dict = {}
    assert dedup.decide(state, 10, T0, [gw(1)]).verdict == "new"
    merged = dedup.decide(state, 10, T0 + 5, [gw(2)])
    assert merged.verdict == "merge" and merged.uplink_version == 2
    assert [g["id"] for g in merged.gateways] == ["gw1", "gw2"]
    assert merged.ts == T0  # the first copy dates the frame
    assert dedup.decide(state, 10, T0 + 9, [gw(1)]).verdict == "duplicate"
    assert dedup.decide(state, 10, T0 + 60_000, [gw(1)]).verdict == "replay"


def test_gateway_records_come_back_exactly_through_the_stored_state() -> None:
    """The state keeps each frame's gateways as JSON (written to the changelog, read back
    after a restart); a late copy's merged reading must carry the first copy's records
    unchanged, float32-rounded values included."""
    first = {"id": "gw1", "rssi": -79.0, "snr": 13.399999618530273, "time": T0 - 60}
    second = {"id": "gw0", "rssi": -101.5, "snr": -7.199999809265137, "time": None}
    state: dict = {}
    dedup.decide(state, 10, T0, [first])
    restored = json.loads(json.dumps(state))  # as a restarted worker reads it back
    merged = dedup.decide(restored, 10, T0 + 5, [second])
    assert merged.verdict == "merge" and list(merged.gateways) == [second, first]  # by id
    again = dedup.decide(json.loads(json.dumps(restored)), 10, T0 + 9, [first])
    assert again.verdict == "duplicate" and list(again.gateways) == [second, first]


def test_state_written_before_gateways_were_kept_as_json_still_merges() -> None:
    """Earlier workers stored each frame's gateway records as a JSON array inside the
    device's state; restored from their changelog, those frames must still merge."""
    old_form = {"s": 1, "f": 10, "t": T0, "r": {"10": [T0, 1, [gw(1)]]}}
    merged = dedup.decide(old_form, 10, T0 + 5, [gw(2)])
    assert merged.verdict == "merge" and [g["id"] for g in merged.gateways] == ["gw1", "gw2"]
    assert dedup.decide(old_form, 10, T0 + 6, [gw(1), gw(2)]).verdict == "duplicate"


def test_out_of_order_frame_is_new_old_counter_is_replay_reset_is_new_session() -> None:
    state: dict = {}
    for f in (100, 101, 103):
        assert dedup.decide(state, f, T0, [gw(1)]).verdict == "new"
    assert dedup.decide(state, 102, T0, [gw(1)]).verdict == "new"  # overtaken in transit
    assert dedup.decide(state, 50, T0 + 1, [gw(1)]).verdict == "replay"
    assert dedup.decide(state, 50, T0 - 1, [gw(1)]).verdict == "stale"
    reset = dedup.decide(state, 0, T0 + 1, [gw(1)])
    assert (reset.verdict, reset.session, reset.reset) == ("new", 2, True)
    assert dedup.decide(state, 1, T0 + 2, [gw(1)]).session == 2


# -- processor -----------------------------------------------------------------------------
UPLINK = codec("uplink")


def uplink(
    f_cnt: int,
    ts: int,
    gateways: list[dict],
    payload: bytes | None = None,
    dev_eui: str = UNIT.dev_eui,
) -> bytes:
    payload = payload if payload is not None else encode({"laeq": 55.0, "pm25": 10.0})
    return UPLINK.encode(
        {
            "source": "tts",
            "dev_eui": dev_eui,
            "dev_addr": None,
            "f_cnt": f_cnt,
            "f_port": 1,
            "received_at": ts,
            "gateways": gateways,
            "frequency": 868_100_000,
            "spreading_factor": 7,
            "payload": payload,
            "original": b"{}",
        }
    )


def run(
    records: list[tuple[bytes | None, bytes]],
    devices: dict | None = None,
    meta: dict | None = None,
    first_offset: int = 0,
) -> tuple[PartitionProcessor, list]:
    proc = PartitionProcessor(
        REGISTRY,
        0,
        devices if devices is not None else {},
        meta if meta is not None else {},
        lateness_ms=15 * 60_000,
    )
    for offset, (key, value) in enumerate(records, first_offset):
        proc.handle(offset, key, value, UPLINK.headers)
    proc.end_batch()
    outputs, _ = proc.take()
    return proc, [
        (
            topic,
            codec(
                {"readings": "reading", "aggregates": "aggregate", "deadletter": "deadletter"}[
                    topic
                ]
            ).decode(value),
        )
        for topic, _, value, _ in outputs
    ]


def test_processor_emits_one_reading_per_frame_and_closes_hours_at_end_of_input() -> None:
    records = [(b"k", uplink(f, T0 + f * 60_000, [gw(1)])) for f in range(60)]
    records += [(b"k", uplink(50, T0 + 50 * 60_000, [gw(2)]))]  # late copy of frame 50
    records += [(b"k", uplink(5, T0 + 5 * 60_000, [gw(3)]))]  # copy too late to merge
    records += [(CONTROL_KEY, END_OF_INPUT)]
    _, out = run(records)
    readings = [r for t, r in out if t == "readings"]
    assert len([r for r in readings if r["uplink_version"] == 1]) == 60
    [update] = [r for r in readings if r["uplink_version"] == 2]
    assert update["f_cnt"] == 50 and [g["id"] for g in update["gateways"]] == ["gw1", "gw2"]
    [stale] = [r for t, r in out if t == "deadletter"]
    assert stale["reason"] == "stale"
    [agg] = [r for t, r in out if t == "aggregates" and r["window"] == "1h"]
    assert (agg["window_start"], agg["version"]) == (T0, 1)
    laeq = next(s for s in agg["stats"] if s["quantity"] == "laeq")
    assert laeq["count"] == 60 and math.isclose(laeq["mean"], 55.0)


def test_bad_input_goes_to_deadletter_with_reason() -> None:
    records = [
        (b"k", b"\x00\x01junk"),
        (b"k", uplink(1, T0, [gw(1)], dev_eui="ffffffffffffffff")),
        (b"k", uplink(2, T0, [gw(1)], payload=b"\x63\x00")),
        (b"k", uplink(500, T0, [gw(1)])),
        (b"k", uplink(300, T0 + 60_000, [gw(1)])),
    ]
    proc, out = run(records)
    reasons = [r["reason"] for t, r in out if t == "deadletter"]
    assert reasons == ["avro", "unknown_device", "payload.version", "replay"]
    assert proc.counts["new"] == 2


def test_too_late_reading_is_kept_raw_and_dead_lettered() -> None:
    records = [(b"k", uplink(f, T0 + f * 60_000, [gw(1)])) for f in range(0, 100, 20)]
    week = 7 * 24 * 3_600_000  # the default correction horizon
    records += [(b"k", uplink(200, T0 - week, [gw(1)]))]  # its hour closed beyond the horizon
    _, out = run(records)
    assert any(t == "readings" and r["f_cnt"] == 200 for t, r in out)
    [dead] = [r for t, r in out if t == "deadletter"]
    assert dead["reason"] == "too_late" and dead["stage"] == "window"


def test_redelivered_records_change_no_state() -> None:
    devices: dict = {}
    meta: dict = {}
    records = [(b"k", uplink(f, T0 + f * 60_000, [gw(1)])) for f in range(10)]
    run(records, devices, meta)
    snapshot = {key: state_bytes(value) for key, value in devices.items()}
    proc, out = run(records[5:], devices, meta, first_offset=5)  # after a crash
    assert {key: state_bytes(value) for key, value in devices.items()} == snapshot
    assert proc.counts["redelivered"] == 5 and out == []


def test_simulated_lns_messages_normalise_to_what_was_sent() -> None:
    from connectors.lns import normalise
    from livinglab.simulator.fleet import unit_messages

    lab = REGISTRY.labs[1]  # a ChirpStack lab
    messages = list(unit_messages(lab, lab.units[0], 0, T0, T0 + 600_000, seed=3))
    for message in messages:
        body = json.loads(message.body)
        up = normalise(message.body)
        assert (up["dev_eui"], up["f_cnt"]) == message.frame
        assert up["payload"] == base64.b64decode(body["data"])
        assert up["gateways"][0]["id"] == body["rxInfo"][0]["gatewayId"]
        assert up["f_cnt"] == body.get("fCnt", 0)
