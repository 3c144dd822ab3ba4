"""LoRaWAN 1.0.x frames: parse a PHYPayload, check its MIC, (de)crypt FRMPayload, build uplinks.

Pure functions over bytes, shared by every ingress adapter and by the simulator, so frames
are checked the same way whichever path they arrive on. Anything the network must not accept
raises `FrameError`, whose `reason` becomes the deadletter reason. Spec references are to
LoRaWAN 1.0.2 (§4 MAC frame format, §4.3.3 encryption, §4.4 MIC).

Cipher objects are cached per key, so a worker that sees the same sessions again pays the
AES key schedule once; the cached contexts are not meant to be shared between threads.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

MAX_PHY_SIZE = 255
"""A LoRa PHY payload never exceeds 255 bytes; anything longer is not a radio frame."""
MAX_FCNT_GAP = 16384
"""LoRaWAN 1.0.x MAX_FCNT_GAP: a larger jump is not normal progress of the counter."""

_UP, _DOWN = 0, 1
_FHDR = struct.Struct("<B4sBH")  # MHDR, DevAddr, FCtrl, FCnt (16 bits on air)
_BLOCK = struct.Struct("<B4xB4sIxB")  # B0 / A_i: tag, Dir, DevAddr, FCnt32, 0x00, len / i
_JOIN_REQUEST = struct.Struct("<x8s8sH4s")  # MHDR, JoinEUI, DevEUI, DevNonce, MIC


class MType(IntEnum):
    """Message type, the top three bits of MHDR."""

    JOIN_REQUEST = 0
    JOIN_ACCEPT = 1
    UNCONFIRMED_DATA_UP = 2
    UNCONFIRMED_DATA_DOWN = 3
    CONFIRMED_DATA_UP = 4
    CONFIRMED_DATA_DOWN = 5
    REJOIN_REQUEST = 6  # RFU in 1.0.x
    PROPRIETARY = 7


_DATA = frozenset(
    {
        MType.UNCONFIRMED_DATA_UP,
        MType.UNCONFIRMED_DATA_DOWN,
        MType.CONFIRMED_DATA_UP,
        MType.CONFIRMED_DATA_DOWN,
    }
)


class FrameError(ValueError):
    """A frame the network must not accept; `reason` is a short tag for deadletter records.

    Reasons: "length", "truncated", "major", "mtype", "fopts", "direction", "mic".
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


@dataclass(frozen=True, slots=True)
class DataFrame:
    """A data frame as on air: FRMPayload still encrypted, FCnt still 16 bits."""

    phy: bytes
    mtype: MType
    dev_addr: str  # 8 lower-case hex chars, most significant byte first (as usually written)
    f_ctrl: int
    fcnt16: int
    f_opts: bytes
    f_port: int | None
    frm_payload: bytes
    mic: bytes

    @property
    def uplink(self) -> bool:
        return self.mtype in (MType.UNCONFIRMED_DATA_UP, MType.CONFIRMED_DATA_UP)

    @property
    def confirmed(self) -> bool:
        return self.mtype in (MType.CONFIRMED_DATA_UP, MType.CONFIRMED_DATA_DOWN)

    @property
    def adr(self) -> bool:
        return bool(self.f_ctrl & 0x80)

    @property
    def adr_ack_req(self) -> bool:
        """Uplink only (the bit is RFU on downlinks)."""
        return self.uplink and bool(self.f_ctrl & 0x40)

    @property
    def ack(self) -> bool:
        return bool(self.f_ctrl & 0x20)

    @property
    def f_pending(self) -> bool:
        """Downlink only: the same bit means Class B on an uplink."""
        return not self.uplink and bool(self.f_ctrl & 0x10)

    @property
    def class_b(self) -> bool:
        """Uplink only (LoRaWAN 1.0.2+; RFU before)."""
        return self.uplink and bool(self.f_ctrl & 0x10)


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """An OTAA join-request, recognised so it can be routed; its MIC needs the AppKey."""

    phy: bytes
    join_eui: str  # 16 lower-case hex chars, most significant byte first
    dev_eui: str
    dev_nonce: int
    mic: bytes


@dataclass(frozen=True, slots=True)
class FCntEstimate:
    """What the 16 bits on air say about the 32-bit counter, given the session's last one.

    `fcnt` assumes the device moved forward, wrapping the 16 bits if needed (arithmetic is
    modulo 2**32). `gap` is `fcnt - last`: 0 repeats the last counter (a retransmission or a
    duplicate), 1..max_gap is normal progress, anything larger means the on-air value lies
    `65536 - gap` below the last one: an old frame replayed, or a counter that restarted
    (ABP reboot, rejoin). A restart shows as a MIC that verifies with `fcnt = fcnt16`.
    """

    fcnt: int
    gap: int
    rolled_over: bool
    within_gap: bool


@dataclass(frozen=True, slots=True)
class Uplink:
    """An uplink whose MIC verified, with its plaintext FRMPayload."""

    frame: DataFrame
    fcnt: int  # the 32-bit counter the MIC verified with
    payload: bytes
    estimate: FCntEstimate | None  # None when no previous counter was given


@dataclass(frozen=True, slots=True)
class _Aes:
    ecb: CipherContext
    cmac: CMAC


@lru_cache(maxsize=4096)
def _aes(key: bytes) -> _Aes:
    """Cipher contexts per key: building them costs more than using them."""
    if len(key) != 16:
        raise ValueError(f"AES-128 key must be 16 bytes, got {len(key)}")
    algorithm = algorithms.AES(key)
    return _Aes(Cipher(algorithm, modes.ECB()).encryptor(), CMAC(algorithm))


def parse_frame(phy: bytes) -> DataFrame | JoinRequest:
    """Split a PHYPayload into its fields; no keys needed, nothing verified yet."""
    size = len(phy)
    if size > MAX_PHY_SIZE:
        raise FrameError("length", f"{size} bytes, a LoRa PHY payload has at most 255")
    if size == 0:
        raise FrameError("truncated", "empty PHYPayload")
    mhdr = phy[0]
    if mhdr & 0x03:
        raise FrameError("major", f"LoRaWAN major version {mhdr & 0x03}, only R1 (0) is known")
    mtype = MType(mhdr >> 5)
    if mtype is MType.JOIN_REQUEST:
        return _parse_join_request(phy)
    if mtype not in _DATA:
        raise FrameError("mtype", f"{mtype.name} is not a data frame or join-request")
    if size < 12:
        raise FrameError("truncated", f"{size} bytes, a data frame has at least 12")
    _, addr, f_ctrl, fcnt16 = _FHDR.unpack_from(phy)
    end = 8 + (f_ctrl & 0x0F)
    if end > size - 4:
        raise FrameError("truncated", f"FOptsLen {f_ctrl & 0x0F} runs past the MIC")
    f_port = phy[end] if end < size - 4 else None
    if f_port == 0 and f_ctrl & 0x0F:
        raise FrameError("fopts", "MAC commands both in FOpts and in an FPort 0 payload")
    return DataFrame(
        phy=phy,
        mtype=mtype,
        dev_addr=addr[::-1].hex(),
        f_ctrl=f_ctrl,
        fcnt16=fcnt16,
        f_opts=phy[8:end],
        f_port=f_port,
        frm_payload=phy[end + 1 : -4],
        mic=phy[-4:],
    )


def _parse_join_request(phy: bytes) -> JoinRequest:
    if len(phy) != _JOIN_REQUEST.size:
        raise FrameError("truncated", f"join-request of {len(phy)} bytes, expected 23")
    join_eui, dev_eui, dev_nonce, mic = _JOIN_REQUEST.unpack(phy)
    return JoinRequest(phy, join_eui[::-1].hex(), dev_eui[::-1].hex(), dev_nonce, mic)


def reconstruct_fcnt(fcnt16: int, last: int, max_gap: int = MAX_FCNT_GAP) -> FCntEstimate:
    """Rebuild the 32-bit FCnt from its 16 bits on air and the session's last 32-bit FCnt."""
    if not (0 <= fcnt16 <= 0xFFFF and 0 <= last <= 0xFFFFFFFF):
        raise ValueError(f"FCnt {fcnt16} on air or last FCnt {last} out of range")
    fcnt = (last & 0xFFFF0000) | fcnt16
    if fcnt < last:
        fcnt += 0x10000
    fcnt &= 0xFFFFFFFF
    gap = (fcnt - last) & 0xFFFFFFFF
    return FCntEstimate(fcnt, gap, fcnt >> 16 != last >> 16, gap <= max_gap)


def compute_mic(frame: DataFrame, nwk_s_key: bytes, fcnt: int) -> bytes:
    """MIC = AES-CMAC(NwkSKey, B0 | MHDR..FRMPayload)[0:4] with the full 32-bit FCnt."""
    _check_fcnt(frame, fcnt)
    return _mic(nwk_s_key, _direction(frame), frame.phy[1:5], fcnt, frame.phy[:-4])


def crypt_frm_payload(frame: DataFrame, nwk_s_key: bytes, app_s_key: bytes, fcnt: int) -> bytes:
    """Decrypt (or encrypt: it is an XOR) FRMPayload; FPort 0 carries MAC commands under NwkSKey."""
    _check_fcnt(frame, fcnt)
    key = nwk_s_key if frame.f_port == 0 else app_s_key
    return _xor_keystream(key, _direction(frame), frame.phy[1:5], fcnt, frame.frm_payload)


def open_uplink(
    frame: DataFrame,
    nwk_s_key: bytes,
    app_s_key: bytes,
    last_fcnt: int | None = None,
    max_gap: int = MAX_FCNT_GAP,
) -> Uplink:
    """Verify an uplink's MIC and decrypt it, taking FCnt forward from `last_fcnt`.

    Without `last_fcnt` (first frame of a session, or checking for a counter restart) the
    32-bit counter is taken to be the 16 bits on air. Whether to accept a repeat or a jump
    is the caller's policy; `Uplink.estimate` carries the facts.
    """
    if not frame.uplink:
        raise FrameError("direction", f"{frame.mtype.name} is not an uplink")
    if last_fcnt is None:
        estimate, fcnt = None, frame.fcnt16
    else:
        estimate = reconstruct_fcnt(frame.fcnt16, last_fcnt, max_gap)
        fcnt = estimate.fcnt
    if not hmac.compare_digest(compute_mic(frame, nwk_s_key, fcnt), frame.mic):
        raise FrameError("mic", f"MIC mismatch for DevAddr {frame.dev_addr} FCnt {fcnt}")
    return Uplink(frame, fcnt, crypt_frm_payload(frame, nwk_s_key, app_s_key, fcnt), estimate)


def build_uplink(
    dev_addr: str,
    fcnt: int,
    f_port: int | None,
    payload: bytes,
    nwk_s_key: bytes,
    app_s_key: bytes,
    *,
    confirmed: bool = False,
    adr: bool = False,
    adr_ack_req: bool = False,
    ack: bool = False,
    class_b: bool = False,
    f_opts: bytes = b"",
) -> bytes:
    """Build an encrypted, MIC'd uplink PHYPayload, as a device with these session keys would."""
    addr = bytes.fromhex(dev_addr)[::-1]
    if len(addr) != 4:
        raise ValueError(f"DevAddr must be 4 bytes, got {dev_addr!r}")
    if not 0 <= fcnt <= 0xFFFFFFFF:
        raise ValueError(f"FCnt {fcnt} is not a 32-bit counter")
    if len(f_opts) > 15:
        raise ValueError(f"FOpts of {len(f_opts)} bytes, at most 15 fit")
    if f_port is None and payload:
        raise ValueError("a payload needs an FPort")
    if f_port is not None and not 0 <= f_port <= 255:
        raise ValueError(f"FPort {f_port} is not a byte")
    if f_port == 0 and f_opts:
        raise ValueError("MAC commands go either in FOpts or in an FPort 0 payload, not both")
    mtype = MType.CONFIRMED_DATA_UP if confirmed else MType.UNCONFIRMED_DATA_UP
    f_ctrl = adr << 7 | adr_ack_req << 6 | ack << 5 | class_b << 4 | len(f_opts)
    msg = _FHDR.pack(mtype << 5, addr, f_ctrl, fcnt & 0xFFFF) + f_opts
    if f_port is not None:
        key = nwk_s_key if f_port == 0 else app_s_key
        msg += bytes((f_port,)) + _xor_keystream(key, _UP, addr, fcnt, payload)
    if len(msg) + 4 > MAX_PHY_SIZE:
        raise ValueError(f"frame of {len(msg) + 4} bytes exceeds {MAX_PHY_SIZE}")
    return msg + _mic(nwk_s_key, _UP, addr, fcnt, msg)


def _direction(frame: DataFrame) -> int:
    return _UP if frame.uplink else _DOWN


def _check_fcnt(frame: DataFrame, fcnt: int) -> None:
    if fcnt & 0xFFFF != frame.fcnt16 or not 0 <= fcnt <= 0xFFFFFFFF:
        raise ValueError(f"FCnt {fcnt} does not match {frame.fcnt16} on air")


def _mic(key: bytes, direction: int, addr: bytes, fcnt: int, msg: bytes) -> bytes:
    mac = _aes(key).cmac.copy()
    mac.update(_BLOCK.pack(0x49, direction, addr, fcnt, len(msg)))
    mac.update(msg)
    return mac.finalize()[:4]


def _xor_keystream(key: bytes, direction: int, addr: bytes, fcnt: int, data: bytes) -> bytes:
    """XOR with S = AES(K, A_1) | AES(K, A_2) | ..., the spec's counter-block scheme."""
    size = len(data)
    if not size:
        return b""
    blocks = b"".join(
        _BLOCK.pack(0x01, direction, addr, fcnt, i) for i in range(1, (size + 15) // 16 + 1)
    )
    stream = _aes(key).ecb.update(blocks)[:size]
    return (int.from_bytes(data) ^ int.from_bytes(stream)).to_bytes(size)
