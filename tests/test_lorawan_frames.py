"""connectors.lorawan against published LoRaWAN 1.0.x vectors, plus properties and fuzzing.

Vector sources (each test names its own):
- LP: lora-packet 0.9.3 test suite, github.com/anthonykirby/lora-packet __tests__/
  (mic_test.ts, decrypt_test.ts, parse_test.ts).
- CS: ChirpStack lrwn crate, github.com/chirpstack/chirpstack lrwn/src/phy_payload.rs
  (doc example "LoRaWAN 1.0.x confirmed uplink", test_non_proprietary).
- TTS: The Things Stack, github.com/TheThingsNetwork/lorawan-stack
  pkg/crypto/data_messages_test.go (TestUplinkDownlinkEncryption, TestUplinkDownlinkMIC).
- LP32: frames with 32-bit FCnt made by lora-packet 0.9.3 `fromFields(..., FCntMSBytes)`
  (no published vector crosses 2**16); tests/test_lorawan_oracle.py re-derives them with node.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.lorawan import (
    MAX_FCNT_GAP,
    DataFrame,
    FrameError,
    JoinRequest,
    MType,
    build_uplink,
    compute_mic,
    crypt_frm_payload,
    open_uplink,
    parse_frame,
    reconstruct_fcnt,
)

LP_NWK = bytes.fromhex("44024241ed4ce9a68c6a8bc055233fd3")
LP_APP = bytes.fromhex("ec925802ae430ca77fd3dd73cb2cc588")
LP_TEST = bytes.fromhex("40F17DBE4900020001954378762B11FF0D")
# LP32: DevAddr 26011f5a, FPort 2, payload "noise" 55.5 dB as 02 2b5c, same keys as LP.
LP32_FRAMES = {
    0x0001_0000: "405a1f012600000002c2761e65be408c",
    0x0001_2345: "405a1f0126004523021afb705e0d1c4b",
    0x0002_0003: "405a1f012600030002c71c56c94e5976",
}


def data_frame(phy: bytes) -> DataFrame:
    frame = parse_frame(phy)
    assert isinstance(frame, DataFrame)
    return frame


def test_lp_parse_mic_decrypt() -> None:
    """LP parse_test 'should parse data payload', mic_test, decrypt_test 'test payload'."""
    frame = data_frame(LP_TEST)
    assert frame.mtype is MType.UNCONFIRMED_DATA_UP
    assert (frame.dev_addr, frame.fcnt16, frame.f_port) == ("49be7df1", 2, 1)
    assert (frame.f_ctrl, frame.f_opts, frame.frm_payload) == (0, b"", bytes.fromhex("95437876"))
    assert not (frame.adr or frame.ack or frame.adr_ack_req or frame.class_b or frame.f_pending)
    assert compute_mic(frame, LP_NWK, 2).hex() == "2b11ff0d"
    uplink = open_uplink(frame, LP_NWK, LP_APP)
    assert uplink.payload == b"test"
    assert (uplink.fcnt, uplink.estimate) == (2, None)


def test_lp_large_payload_spans_three_blocks() -> None:
    """LP decrypt_test 'should decrypt large payload' (44 bytes: A_1..A_3), MIC 0af3c5e7."""
    phy = bytes.fromhex(
        "40f17dbe490004000155332de41a11adc072553544429ce7787707d1c316e027e7e5e3"
        "34263376affb8aa17ad30075293f28dea8a20af3c5e7"
    )
    frame = data_frame(phy)
    expected = b"The quick brown fox jumps over the lazy dog."
    assert open_uplink(frame, LP_NWK, LP_APP).payload == expected


def test_lp_fport_without_payload() -> None:
    """LP 'data payload with empty payload': FPort present, FRMPayload empty, MIC 2a3518af."""
    frame = data_frame(bytes.fromhex("40F17DBE49000300012A3518AF"))
    assert (frame.f_port, frame.frm_payload) == (1, b"")
    assert open_uplink(frame, LP_NWK, LP_APP).payload == b""


def test_lp_fport0_uses_nwkskey() -> None:
    """LP mic_test 'should calculate & verify MIC in port 0' (FCtrl ADR + ADRACKReq)."""
    nwk = bytes.fromhex("581c4d08ef04cda30b1fef7a8b2c74b8")
    frame = data_frame(bytes.fromhex("4006DC00FCC07400000244925050"))
    assert (frame.f_port, frame.fcnt16, frame.dev_addr) == (0, 0x74, "fc00dc06")
    assert frame.adr and frame.adr_ack_req
    uplink = open_uplink(frame, nwk, app_s_key=bytes(16))  # a wrong AppSKey must not matter
    assert uplink.payload == crypt_frm_payload(frame, nwk, b"\xff" * 16, 0x74)


def test_lp_fopts_frame() -> None:
    """LP mic_test '1.0 ... (Matteo Packets)': FOpts 02 (LinkCheckReq), MIC d6470fc3."""
    nwk = bytes.fromhex("17da125f3d55b28cc16a8111bd1d6c0b")
    frame = data_frame(bytes.fromhex("40F7EC10E081000002015A171220B0C6D6470FC3"))
    assert (frame.f_opts, frame.f_port, frame.fcnt16) == (b"\x02", 1, 0)
    assert frame.adr and frame.f_ctrl & 0x0F == 1
    assert compute_mic(frame, nwk, 0).hex() == "d6470fc3"
    open_uplink(frame, nwk, bytes(16))


def test_lp_downlink_ack_mic_uses_direction_1() -> None:
    """LP mic_test 'correct data packet MIC for ACK': an unconfirmed downlink with ACK."""
    frame = data_frame(bytes.fromhex("60f17dbe4920020001f9d65d27"))
    assert frame.mtype is MType.UNCONFIRMED_DATA_DOWN and frame.ack and not frame.uplink
    assert compute_mic(frame, LP_NWK, 2).hex() == "f9d65d27"
    with pytest.raises(FrameError) as caught:
        open_uplink(frame, LP_NWK, LP_APP)
    assert caught.value.reason == "direction"


def test_lp_tampered_mic_fails() -> None:
    """LP mic_test 'should detect incorrect data packet MIC' (af -> aa)."""
    frame = data_frame(bytes.fromhex("40F17DBE49000300012A3518AA"))
    with pytest.raises(FrameError) as caught:
        open_uplink(frame, LP_NWK, LP_APP)
    assert caught.value.reason == "mic"


def test_lp_tampered_payload_fails() -> None:
    """LP decrypt_test 'bad data lightly scrambles payload' (43 -> 44), MIC left as it was."""
    frame = data_frame(bytes.fromhex("40F17DBE4900020001954478762B11FF0D"))
    assert crypt_frm_payload(frame, LP_NWK, LP_APP, 2) == b"tbst"
    with pytest.raises(FrameError) as caught:
        open_uplink(frame, LP_NWK, LP_APP)
    assert caught.value.reason == "mic"


def test_lp_wrong_key_scrambles() -> None:
    """LP decrypt_test 'bad key scrambles payload'."""
    frame = data_frame(LP_TEST)
    wrong = bytes.fromhex("ec925802ae430ca77fd3dd73cb2cc580")
    assert crypt_frm_payload(frame, LP_NWK, wrong, 2).hex() == "5999fc3f"


def test_lp_join_request() -> None:
    """LP parse_test 'should parse join request payload'."""
    frame = parse_frame(bytes.fromhex("0039363463336913AA05693574323831338EF1C1D5EC6C"))
    assert isinstance(frame, JoinRequest)
    assert (frame.join_eui, frame.dev_eui) == ("aa13693363343639", "3331383274356905")
    assert (frame.dev_nonce, frame.mic.hex()) == (0xF18E, "c1d5ec6c")


def test_cs_join_request() -> None:
    """CS phy_payload.rs test_non_proprietary."""
    phy = bytes([0x00, 8, 7, 6, 5, 4, 3, 2, 1, 1, 2, 3, 4, 5, 6, 7, 8, 0x00, 0x04, 1, 2, 3, 4])
    frame = parse_frame(phy)
    assert isinstance(frame, JoinRequest)
    assert (frame.join_eui, frame.dev_eui) == ("0102030405060708", "0807060504030201")
    assert (frame.dev_nonce, frame.mic) == (1024, bytes([1, 2, 3, 4]))


def test_cs_confirmed_uplink_with_fopts() -> None:
    """CS phy_payload.rs doc example 'LoRaWAN 1.0.x confirmed uplink' (DevStatusAns in FOpts)."""
    nwk = bytes.fromhex("0102030405060708090a0b0c0d0e0f10")
    app = bytes.fromhex("100f0e0d0c0b0a090807060504030201")
    expected = bytes.fromhex("80040302010300000673070ae264d4f7e117d2c0")
    phy = build_uplink(
        "01020304", 0, 10, bytes([1, 2, 3, 4]), nwk, app, confirmed=True, f_opts=b"\x06\x73\x07"
    )
    assert phy == expected
    frame = data_frame(expected)
    assert frame.confirmed and frame.f_opts == b"\x06\x73\x07" and frame.f_port == 10
    assert open_uplink(frame, nwk, app).payload == bytes([1, 2, 3, 4])


def test_tts_encryption_and_mic() -> None:
    """TTS TestUplinkDownlinkEncryption (FRM, uplink) and TestUplinkDownlinkMIC (legacy uplink)."""
    key = bytes([1] * 16)
    phy = build_uplink("01020304", 1, 1, bytes([1, 2, 3, 4]), key, key)
    assert data_frame(phy).frm_payload.hex() == "cff30b4e"
    # The TTS MIC vector is computed over a frame carrying the plaintext bytes.
    frame = data_frame(bytes.fromhex("40040302010001000101020304") + bytes(4))
    assert compute_mic(frame, key, 1).hex() == "3b073182"


@pytest.mark.parametrize("fcnt", sorted(LP32_FRAMES))
def test_lp32_mic_needs_the_upper_16_bits(fcnt: int) -> None:
    """LP32: the MIC binds the full 32-bit counter, so the session's last FCnt decides."""
    frame = data_frame(bytes.fromhex(LP32_FRAMES[fcnt]))
    assert frame.fcnt16 == fcnt & 0xFFFF
    uplink = open_uplink(frame, LP_NWK, LP_APP, last_fcnt=fcnt - 1)
    assert (uplink.fcnt, uplink.payload) == (fcnt, bytes.fromhex("022b5c"))
    assert uplink.estimate is not None and uplink.estimate.gap == 1
    with pytest.raises(FrameError) as caught:  # taken as the 16 bits alone: wrong counter
        open_uplink(frame, LP_NWK, LP_APP)
    assert caught.value.reason == "mic"
    assert build_uplink("26011f5a", fcnt, 2, bytes.fromhex("022b5c"), LP_NWK, LP_APP) == (
        bytes.fromhex(LP32_FRAMES[fcnt])
    )


def test_lp32_rollover_from_last_counter() -> None:
    """LP32: after 0xffff the next frame shows 0 on air and verifies as 0x10000."""
    frame = data_frame(bytes.fromhex(LP32_FRAMES[0x1_0000]))
    uplink = open_uplink(frame, LP_NWK, LP_APP, last_fcnt=0xFFFF)
    assert uplink.fcnt == 0x1_0000
    assert uplink.estimate is not None and uplink.estimate.rolled_over


def test_counter_restart_shows_as_mic_with_the_bits_on_air() -> None:
    """An ABP device that reboots restarts at 0: only the 16-bit reading verifies."""
    phy = build_uplink("26011f5a", 3, 2, b"\x01", LP_NWK, LP_APP)
    frame = data_frame(phy)
    with pytest.raises(FrameError):
        open_uplink(frame, LP_NWK, LP_APP, last_fcnt=70_000)
    estimate = reconstruct_fcnt(frame.fcnt16, 70_000)
    assert not estimate.within_gap
    assert open_uplink(frame, LP_NWK, LP_APP).fcnt == 3


@pytest.mark.parametrize(
    ("on_air", "last", "fcnt", "gap", "rolled_over", "within_gap"),
    [
        (11, 10, 11, 1, False, True),  # next frame
        (10, 10, 10, 0, False, True),  # repeat: retransmission or duplicate
        (0, 0xFFFF, 0x1_0000, 1, True, True),  # 16-bit rollover
        (5, 0x1_FFF0, 0x2_0005, 0x15, True, True),  # rollover in a later epoch
        (0x4000, 0, 0x4000, MAX_FCNT_GAP, False, True),  # largest normal jump
        (0x4001, 0, 0x4001, MAX_FCNT_GAP + 1, False, False),
        (4990, 5000, 70_526, 65_526, True, False),  # replay of a recent frame
        (3, 70_000, 131_075, 61_075, True, False),  # restart (or replay)
        (0, 0xFFFF_FFFF, 0, 1, True, True),  # the 32-bit counter itself wraps (mod 2**32)
    ],
)
def test_reconstruct_fcnt_cases(
    on_air: int, last: int, fcnt: int, gap: int, rolled_over: bool, within_gap: bool
) -> None:
    estimate = reconstruct_fcnt(on_air, last)
    assert (estimate.fcnt, estimate.gap) == (fcnt, gap)
    assert (estimate.rolled_over, estimate.within_gap) == (rolled_over, within_gap)


@given(st.integers(0, 0xFFFF_FFFF), st.integers(0, 0xFFFF))
def test_reconstruct_fcnt_inverts_forward_progress(last: int, step: int) -> None:
    """Any counter up to 65535 ahead of `last` is recovered from its low 16 bits."""
    fcnt = (last + step) & 0xFFFF_FFFF
    estimate = reconstruct_fcnt(fcnt & 0xFFFF, last)
    assert (estimate.fcnt, estimate.gap) == (fcnt, step)
    assert estimate.within_gap == (step <= MAX_FCNT_GAP)


@pytest.mark.parametrize(
    ("phy", "reason"),
    [
        ("", "truncated"),
        ("40" + "00" * 10, "truncated"),  # 11 bytes
        ("4001020304" + "03" + "0000" + "0102" + "00000000", "truncated"),  # FOptsLen 3 > 2
        ("4001020304" + "01" + "0000" + "02" + "00" + "aa" + "00000000", "fopts"),  # FPort 0
        ("41" + "00" * 15, "major"),
        ("20" + "00" * 16, "mtype"),  # join-accept: encrypted, not ours to read
        ("c0" + "00" * 15, "mtype"),  # RFU / rejoin
        ("e0" + "00" * 15, "mtype"),  # proprietary
        ("00" + "00" * 21, "truncated"),  # join-request one byte short
        ("40" + "00" * 255, "length"),
    ],
)
def test_malformed_frames(phy: str, reason: str) -> None:
    with pytest.raises(FrameError) as caught:
        parse_frame(bytes.fromhex(phy))
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)


keys = st.binary(min_size=16, max_size=16)


@st.composite
def uplinks(draw: st.DrawFn) -> dict:
    f_port = draw(st.none() | st.integers(0, 255))
    return {
        "dev_addr": draw(st.binary(min_size=4, max_size=4)).hex(),
        "fcnt": draw(st.integers(0, 0xFFFF_FFFF)),
        "f_port": f_port,
        "payload": b"" if f_port is None else draw(st.binary(max_size=200)),
        "nwk_s_key": draw(keys),
        "app_s_key": draw(keys),
        "confirmed": draw(st.booleans()),
        "adr": draw(st.booleans()),
        "adr_ack_req": draw(st.booleans()),
        "ack": draw(st.booleans()),
        "class_b": draw(st.booleans()),
        "f_opts": b"" if f_port == 0 else draw(st.binary(max_size=15)),
    }


@given(uplinks(), st.integers(0, MAX_FCNT_GAP))
def test_build_then_open_round_trip(fields: dict, gap: int) -> None:
    phy = build_uplink(**fields)
    frame = data_frame(phy)
    assert frame.dev_addr == fields["dev_addr"]
    assert (frame.fcnt16, frame.f_port, frame.f_opts) == (
        fields["fcnt"] & 0xFFFF,
        fields["f_port"],
        fields["f_opts"],
    )
    assert (frame.confirmed, frame.adr, frame.adr_ack_req) == (
        fields["confirmed"],
        fields["adr"],
        fields["adr_ack_req"],
    )
    assert (frame.ack, frame.class_b) == (fields["ack"], fields["class_b"])
    last = (fields["fcnt"] - gap) & 0xFFFF_FFFF
    uplink = open_uplink(frame, fields["nwk_s_key"], fields["app_s_key"], last_fcnt=last)
    assert (uplink.fcnt, uplink.payload) == (fields["fcnt"], fields["payload"])


@given(uplinks(), st.data())
def test_any_flipped_bit_is_rejected(fields: dict, data: st.DataObject) -> None:
    """Tampering anywhere in the frame (header, FOpts, payload or MIC) is caught."""
    phy = bytearray(build_uplink(**fields))
    bit = data.draw(st.integers(0, len(phy) * 8 - 1))
    phy[bit // 8] ^= 1 << (bit % 8)
    try:
        frame = parse_frame(bytes(phy))
    except FrameError:
        return
    if isinstance(frame, JoinRequest):
        return  # a 23-byte frame re-typed by its MHDR: a join-request's MIC needs the AppKey
    with pytest.raises(FrameError):
        open_uplink(frame, fields["nwk_s_key"], fields["app_s_key"], last_fcnt=fields["fcnt"])


@given(
    st.integers(0, 255) | st.sampled_from([0x40, 0x80]),
    st.binary(max_size=300),
    keys,
    keys,
    st.none() | st.integers(0, 0xFFFF_FFFF),
)
def test_random_bytes_only_raise_frame_error(
    mhdr: int, rest: bytes, nwk: bytes, app: bytes, last: int | None
) -> None:
    try:
        frame = parse_frame(bytes((mhdr,)) + rest)
        if isinstance(frame, DataFrame) and frame.uplink:
            open_uplink(frame, nwk, app, last_fcnt=last)
    except FrameError as error:
        assert error.reason in {"length", "truncated", "major", "mtype", "fopts", "mic"}
