"""connectors.semtech_udp against the protocol's published examples, plus round-trip and fuzzing.

Sources (each test names its own):
- PT: Lora-net/packet_forwarder v4.0.1 PROTOCOL.TXT (commit d0226ea), sections 3-6.
- PM: Lora-net/sx1302_hal packet_forwarder/PROTOCOL.md (protocol v1.6: tmms, ftime, mid, foff,
  rssis, stat.temp, txpk_ack warn).
- CS: chirpstack/chirpstack-gateway-bridge internal/backend/semtechudp/packets/*_test.go
  (byte-level datagrams; "uplink with multiple antennas" for rsig; iBTS TX_ACK NUL byte).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.semtech_udp import (
    Antenna,
    GatewayStat,
    PullData,
    PushData,
    RxPacket,
    SemtechError,
    TxAck,
    build_push_data,
    parse_datagram,
    pull_ack,
    push_ack,
)

GATEWAY = "0102030405060708"
HEADER = bytes([2, 0x4A, 0x2F, 0x00]) + bytes.fromhex(GATEWAY)  # PUSH_DATA, token 4a2f

# PT section 4, first example, verbatim (whitespace as published).
PT_RXPK = b"""{"rxpk":[
\t{
\t\t"time":"2013-03-31T16:21:17.528002Z",
\t\t"tmst":3512348611,
\t\t"chan":2,
\t\t"rfch":0,
\t\t"freq":866.349812,
\t\t"stat":1,
\t\t"modu":"LORA",
\t\t"datr":"SF7BW125",
\t\t"codr":"4/6",
\t\t"rssi":-35,
\t\t"lsnr":5.1,
\t\t"size":32,
\t\t"data":"-DS4CGaDCdG+48eJNM3Vai-zDpsR71Pn9CPA9uCON84"
\t},{
\t\t"time":"2013-03-31T16:21:17.530974Z",
\t\t"tmst":3512348514,
\t\t"chan":9,
\t\t"rfch":1,
\t\t"freq":869.1,
\t\t"stat":1,
\t\t"modu":"FSK",
\t\t"datr":50000,
\t\t"rssi":-75,
\t\t"size":16,
\t\t"data":"VEVTVF9QQUNLRVRfMTIzNA=="
\t},{
\t\t"time":"2013-03-31T16:21:17.532038Z",
\t\t"tmst":3316387610,
\t\t"chan":0,
\t\t"rfch":0,
\t\t"freq":863.00981,
\t\t"stat":1,
\t\t"modu":"LORA",
\t\t"datr":"SF10BW125",
\t\t"codr":"4/7",
\t\t"rssi":-38,
\t\t"lsnr":5.5,
\t\t"size":32,
\t\t"data":"ysgRl452xNLep9S1NTIg2lomKDxUgn3DJ7DE+b00Ass"
\t}
]}"""

# PT section 4, stat example, verbatim.
PT_STAT = b"""{"stat":{
\t"time":"2014-01-12 08:59:28 GMT",
\t"lati":46.24000,
\t"long":3.25230,
\t"alti":145,
\t"rxnb":2,
\t"rxok":2,
\t"rxfw":2,
\t"ackr":100.0,
\t"dwnb":2,
\t"txnb":2
}}"""


def push(body: bytes) -> PushData:
    packet = parse_datagram(HEADER + body)
    assert isinstance(packet, PushData)
    return packet


def test_pt_rxpk_example() -> None:
    packet = push(PT_RXPK)
    assert (packet.version, packet.token, packet.gateway) == (2, b"\x4a\x2f", GATEWAY)
    assert packet.stat is None and packet.errors == ()
    first, fsk, third = packet.rxpk
    assert first.gateway == GATEWAY
    assert first.time == datetime(2013, 3, 31, 16, 21, 17, 528002, tzinfo=UTC)
    assert (first.tmst, first.chan, first.rfch, first.freq) == (3512348611, 2, 0, 866.349812)
    assert (first.stat, first.modu, first.datr, first.codr) == (1, "LORA", "SF7BW125", "4/6")
    assert (first.spreading_factor, first.bandwidth_khz) == (7, 125)
    assert (first.rssi, first.lsnr, first.best_rssi, first.best_lsnr) == (-35, 5.1, -35, 5.1)
    # Published unpadded and with '-' (URL-safe alphabet); "size" says 32 bytes.
    assert len(first.data) == 32
    assert first.data == base64.b64decode("+DS4CGaDCdG+48eJNM3Vai+zDpsR71Pn9CPA9uCON84=")
    assert (fsk.modu, fsk.datr, fsk.spreading_factor, fsk.lsnr) == ("FSK", 50000, None, None)
    assert (fsk.freq, fsk.rssi, fsk.data) == (869.1, -75, b"TEST_PACKET_1234")
    assert (third.spreading_factor, third.bandwidth_khz, third.codr) == (10, 125, "4/7")
    assert (third.tmst, third.freq, len(third.data)) == (3316387610, 863.00981, 32)


def test_pt_stat_example() -> None:
    packet = push(PT_STAT)
    assert packet.rxpk == () and packet.errors == ()
    assert packet.stat == GatewayStat(
        time=datetime(2014, 1, 12, 8, 59, 28, tzinfo=UTC),
        lati=46.24,
        long=3.2523,
        alti=145,
        rxnb=2,
        rxok=2,
        rxfw=2,
        ackr=100.0,
        dwnb=2,
        txnb=2,
    )


def test_pm_sx1302_fields_and_rxpk_with_stat() -> None:
    """PM section 4 first rxpk (with tmms, ftime, mid, foff) together with the PM stat (temp)."""
    body = (
        b'{"rxpk":[{"tmst":3512348611,"time":"2020-10-01T09:30:52.592567Z","tmms":1285579871592,'
        b'"ftime":85224290,"chan":2,"rfch":0,"freq":866.349812,"mid":3,"stat":1,"modu":"LORA",'
        b'"datr":"SF7BW125","codr":"4/6","rssi":-35,"lsnr":5.1,"foff":-3313,"size":32,'
        b'"data":"-DS4CGaDCdG+48eJNM3Vai-zDpsR71Pn9CPA9uCON84"}],'
        b'"stat":{"time":"2014-01-12 08:59:28 GMT","lati":46.24000,"long":3.25230,"alti":145,'
        b'"rxnb":2,"rxok":2,"rxfw":2,"ackr":100.0,"dwnb":2,"txnb":2,"temp": 23.2}}'
    )
    packet = push(body)
    (rx,) = packet.rxpk
    assert (rx.tmms, rx.time) == (1285579871592, datetime(2020, 10, 1, 9, 30, 52, 592567, UTC))
    assert packet.stat is not None and packet.stat.temp == 23.2
    assert packet.errors == ()


def test_cs_multi_antenna_rsig() -> None:
    """CS push_data_test 'uplink with multiple antennas', written as the JSON a v2 gateway sends;
    a Kerlink-style (jver 2) entry has no top-level rssi/lsnr, only rsig."""
    body = json.dumps(
        {
            "rxpk": [
                {
                    "time": "2024-05-01T10:00:00.000001Z",
                    "tmst": 1000000,
                    "freq": 868.3,
                    "brd": 2,
                    "chan": 1,
                    "rfch": 3,
                    "stat": 1,
                    "modu": "LORA",
                    "datr": "SF12BW500",
                    "codr": "4/5",
                    "rssi": -60,
                    "lsnr": 5.5,
                    "size": 5,
                    "data": "AQIDBAU=",
                    "rsig": [
                        {"ant": 8, "chan": 9, "lsnr": 6.6, "etime": "AgMEBQ==", "rssic": -70},
                        {"ant": 9, "chan": 10, "lsnr": 7.7, "rssic": -80},
                    ],
                },
                {
                    "jver": 2,
                    "tmst": 3593099307,
                    "freq": 867.5,
                    "stat": 1,
                    "modu": "LORA",
                    "datr": "SF7BW125",
                    "codr": "4/5",
                    "size": 5,
                    "data": "AQIDBAU=",
                    "rsig": [
                        {"ant": 0, "chan": 2, "lsnr": -7.0, "rssic": -108, "rssis": -116},
                        {"ant": 1, "chan": 2, "lsnr": -9.0, "rssic": -110, "rssis": -120},
                    ],
                },
            ]
        }
    ).encode()
    cs, kerlink = push(body).rxpk
    assert cs.data == bytes([1, 2, 3, 4, 5]) and (cs.spreading_factor, cs.bandwidth_khz) == (
        12,
        500,
    )
    assert cs.antennas == (
        Antenna(ant=8, chan=9, rssic=-70, lsnr=6.6),
        Antenna(ant=9, chan=10, rssic=-80, lsnr=7.7),
    )
    assert (cs.best_rssi, cs.best_lsnr) == (-60, 5.5)  # the top-level values win when present
    assert (kerlink.rssi, kerlink.lsnr) == (None, None)
    assert kerlink.antennas[1] == Antenna(ant=1, chan=2, rssic=-110, rssis=-120, lsnr=-9.0)
    assert (kerlink.best_rssi, kerlink.best_lsnr) == (-108, -7.0)


def test_cs_push_data_without_packets() -> None:
    """CS TestPushDataTest: token 123 (little-endian in ChirpStack), empty JSON object."""
    datagram = bytes([2, 123, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 123, 125])
    assert parse_datagram(datagram) == PushData(2, b"\x7b\x00", GATEWAY, (), None, ())
    assert build_push_data(b"\x7b\x00", GATEWAY) == datagram


def test_cs_pull_data_and_acks() -> None:
    """CS TestPullDataTest, TestPushACKPacket, TestPullACK; PT sections 3.3, 5.2, 5.3."""
    assert parse_datagram(bytes([2, 123, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8])) == PullData(
        2, b"\x7b\x00", GATEWAY
    )
    assert push_ack(b"\x7b\x00") == bytes([2, 123, 0, 1])
    assert pull_ack(b"\x7b\x00") == bytes([2, 123, 0, 4])
    assert push_ack(b"\x00\x00", version=1) == bytes([1, 0, 0, 1])


@pytest.mark.parametrize(
    ("body", "error", "warn"),
    [
        (b"", None, None),
        (b"\x00", None, None),  # CS TestTXACK: iBTS sends one NUL byte when there is no JSON
        (b'{"txpk_ack":{"error":"COLLISION_BEACON"}}', "COLLISION_BEACON", None),  # CS TestTXACK
        (b'{"txpk_ack":{\n\t"error":"COLLISION_PACKET"\n}}', "COLLISION_PACKET", None),  # PT 6
        (b'{"txpk_ack":{"error":"NONE"}}', None, None),  # PT 6: NONE = programmed
        (b'{"txpk_ack":{\n\t"warn":"TX_POWER",\n    "value":20\n}}', None, "TX_POWER"),  # PM 6
    ],
)
def test_tx_ack(body: bytes, error: str | None, warn: str | None) -> None:
    datagram = bytes([2, 123, 0, 5, 8, 7, 6, 5, 4, 3, 2, 1]) + body
    assert parse_datagram(datagram) == TxAck(2, b"\x7b\x00", "0807060504030201", error, warn)


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (b"\x02\x00\x00", "truncated"),
        (b"\x03\x00\x00\x00" + bytes(8) + b"{}", "version"),
        (b"\x02\x00\x00\x01", "identifier"),  # PUSH_ACK goes server -> gateway
        (b"\x02\x00\x00\x03{}", "identifier"),  # PULL_RESP likewise
        (b"\x02\x00\x00\x00\x01\x02", "truncated"),
        (b"\x02\x00\x00\x02" + bytes(8) + b"x", "length"),
        (HEADER, "json"),
        (HEADER + b"[1]", "json"),
        (HEADER + b'{"rxpk":[{"freq":NaN}]}', "json"),
        (HEADER + b"\xff\xfe{", "json"),
        (HEADER + b"[" * 100_000, "json"),
        (HEADER + b'{"rxpk":{}}', "field"),
    ],
)
def test_malformed_datagrams(datagram: bytes, reason: str) -> None:
    with pytest.raises(SemtechError) as caught:
        parse_datagram(datagram)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)


def rxpk_with(**fields: object) -> dict:
    entry = {"freq": 868.1, "datr": "SF7BW125", "modu": "LORA", "data": "QAE=", "size": 2}
    entry.update(fields)
    return {key: value for key, value in entry.items() if value is not None}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"data": None}, "field"),
        ({"data": "not base64!"}, "data"),
        ({"data": "QAEC", "size": 2}, "size"),
        ({"datr": "SF7"}, "datr"),
        ({"modu": None, "datr": "M0CW137"}, "datr"),  # a string data rate without modu is LoRa
        ({"freq": "868.1"}, "field"),
        ({"freq": 10**400}, "field"),  # an integer no float can hold
        ({"rssi": True}, "field"),
        ({"rssi": -35.5}, "field"),
        ({"stat": 2}, "field"),
        ({"time": "yesterday"}, "time"),
        ({"rsig": [1]}, "field"),
    ],
)
def test_bad_rxpk_entries_are_reported_and_the_rest_kept(fields: dict, reason: str) -> None:
    body = json.dumps({"rxpk": [rxpk_with(), rxpk_with(**fields)], "stat": {"rxnb": 2}})
    packet = push(body.encode())
    assert len(packet.rxpk) == 1 and packet.stat == GatewayStat(rxnb=2)
    (error,) = packet.errors
    assert error.reason == reason and error.where.startswith("rxpk[1]")


def test_json_overflowing_to_infinity_is_refused() -> None:
    packet = push(b'{"rxpk":[{"freq":1e400,"datr":"SF7BW125","data":"QAE="}]}')
    assert [(e.reason, e.detail) for e in packet.errors] == [
        ("field", "freq is not a finite number")
    ]


def test_lr_fhss_and_naive_times_are_accepted() -> None:
    body = json.dumps(
        {"rxpk": [rxpk_with(modu="LR-FHSS", datr="M0CW137", time="2024-01-01T00:00:00")]}
    )
    (rx,) = push(body.encode()).rxpk
    assert (rx.datr, rx.spreading_factor) == ("M0CW137", None)
    assert rx.time == datetime(2024, 1, 1, tzinfo=UTC)


def test_bad_stat_is_reported() -> None:
    packet = push(b'{"stat":{"time":"2014-01-12T08:59:28Z"}}')
    assert packet.stat is None and [(e.reason, e.where) for e in packet.errors] == [
        ("time", "stat")
    ]


def test_builder_refuses_a_foreign_rxpk() -> None:
    other = RxPacket(gateway="ffffffffffffffff", data=b"\x40", freq=868.1, datr="SF7BW125")
    with pytest.raises(ValueError):
        build_push_data(b"\x00\x01", GATEWAY, [other])


finite = st.floats(allow_nan=False, allow_infinity=False, width=32)
small = st.integers(-200, 200)
times = st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC))


def optional(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | strategy


antennas = st.builds(
    Antenna,
    ant=optional(st.integers(0, 15)),
    chan=optional(st.integers(0, 15)),
    rssic=optional(small),
    rssis=optional(small),
    lsnr=optional(finite),
)
lora = st.builds(
    lambda sf, bw: f"SF{sf}BW{bw}", st.integers(5, 12), st.sampled_from([125, 250, 500])
)
rx_packets = st.builds(
    RxPacket,
    gateway=st.just(GATEWAY),
    data=st.binary(max_size=255),
    freq=st.floats(100, 3000),
    datr=lora | st.integers(300, 300_000),
    modu=st.none(),
    stat=optional(st.sampled_from([-1, 0, 1])),
    time=optional(times),
    tmst=optional(st.integers(0, 2**32 - 1)),
    tmms=optional(st.integers(0, 2**50)),
    chan=optional(st.integers(0, 15)),
    rfch=optional(st.integers(0, 1)),
    codr=optional(st.sampled_from(["4/5", "4/6", "4/7", "4/8"])),
    rssi=optional(small),
    rssis=optional(small),
    lsnr=optional(finite),
    antennas=st.lists(antennas, max_size=3).map(tuple),
)
stats = st.builds(
    GatewayStat,
    time=optional(times.map(lambda t: t.replace(microsecond=0))),
    lati=optional(st.floats(-90, 90)),
    long=optional(st.floats(-180, 180)),
    alti=optional(st.integers(-500, 9000)),
    rxnb=optional(st.integers(0, 2**32)),
    ackr=optional(st.floats(0, 100)),
    temp=optional(finite),
)


@given(
    st.binary(min_size=2, max_size=2),
    st.lists(rx_packets, max_size=4),
    optional(stats),
    st.sampled_from([1, 2]),
)
def test_build_then_parse_round_trip(
    token: bytes, packets: list[RxPacket], stat: GatewayStat | None, version: int
) -> None:
    datagram = build_push_data(token, GATEWAY, packets, stat, version)
    assert parse_datagram(datagram) == PushData(version, token, GATEWAY, tuple(packets), stat, ())


@given(st.binary(max_size=400))
def test_random_datagrams_only_raise_semtech_error(datagram: bytes) -> None:
    try:
        parse_datagram(datagram)
    except SemtechError:
        pass


finite_any = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite_any | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=20,
)
rxpk_keys = st.sampled_from(
    ["time", "tmst", "tmms", "freq", "chan", "rfch", "stat", "modu", "datr", "codr", "rssi"]
    + ["rssis", "lsnr", "size", "data", "rsig", "ant", "rssic", "lati", "alti", "txpk_ack"]
)
json_objects = st.dictionaries(rxpk_keys, json_values, max_size=8)
shaped = st.fixed_dictionaries(
    {},
    optional={
        "rxpk": st.lists(json_objects | json_values, max_size=3) | json_values,
        "stat": json_objects | json_values,
        "txpk_ack": json_objects | json_values,
    },
)


@given(st.sampled_from([0x00, 0x05]), shaped)
def test_json_of_any_shape_only_raises_semtech_error(identifier: int, root: dict) -> None:
    """Field values of every JSON type, where the parser expects particular ones."""
    body = json.dumps(root).encode()
    datagram = bytes([2, 0, 0, identifier]) + bytes(8) + body
    try:
        parsed = parse_datagram(datagram)
    except SemtechError:
        return
    assert isinstance(parsed, PushData | TxAck)
