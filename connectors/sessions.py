"""ABP sessions of the registry's units: from a PHYPayload to a verified, decrypted payload.

The UDP bridge and `livinglab decode` both open frames here, so a frame is judged the same way
on both paths. Only 16 bits of the 32-bit frame counter travel on air, and the MIC covers all
32, so the counter is rebuilt before the MIC can be checked:
- with the last counter this process verified for the device: the next value with those 16
  bits (rolling over 65535), else the bare 16 bits, which means the counter restarted (ABP
  reboot): the frame is passed on with that counter and the stream worker, which keeps the
  sessions, starts a new one;
- without one (the first frame after a start): the bare 16 bits, then the same bits in each of
  the next `max_epochs` blocks of 65536, so a device already past 65535 is still recognised.
Each guess costs one AES-CMAC; a false match needs a 32-bit MIC collision.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass

from connectors.lns import IngressError
from connectors.lorawan import (
    DataFrame,
    FrameError,
    JoinRequest,
    compute_mic,
    crypt_frm_payload,
    open_uplink,
    parse_frame,
    reconstruct_fcnt,
)
from livinglab.registry import Registry, Unit


@dataclass(frozen=True, slots=True)
class Opened:
    """A data uplink of a registered unit whose MIC verified."""

    unit: Unit
    f_cnt: int  # 32 bits
    f_port: int | None
    payload: bytes  # plaintext FRMPayload


DEFAULT_MAX_EPOCHS = 64
"""Without history, counters up to 64 * 65536 (4.2 M frames: 8 years at one a minute) are found."""


class Sessions:
    """Opens frames with the units' session keys; remembers each device's last counter.

    Raises `IngressError` with the dead-letter reason: `unknown_devaddr`, `join_request`, `mic`,
    or the frame's own (`truncated`, `mtype`, `direction`, ...).
    """

    def __init__(self, registry: Registry, max_epochs: int = DEFAULT_MAX_EPOCHS) -> None:
        self._units = registry.by_dev_addr
        self._last: dict[str, int] = {}
        self.max_epochs = max_epochs

    def open(self, phy: bytes) -> Opened:
        try:
            frame = parse_frame(phy)
        except FrameError as exc:
            raise IngressError(exc.reason, exc.detail) from None
        if isinstance(frame, JoinRequest):
            raise IngressError(
                "join_request",
                f"join-request of DevEUI {frame.dev_eui} (JoinEUI {frame.join_eui}): OTAA joins "
                "are the network server's business, the registry holds ABP sessions",
                frame.dev_eui,
            )
        unit = self._units.get(frame.dev_addr)
        if unit is None:
            raise IngressError(
                "unknown_devaddr", f"DevAddr {frame.dev_addr} is not in the registry"
            )
        fcnt, payload = self._verify(frame, unit)
        self._last[unit.dev_eui] = fcnt
        return Opened(unit, fcnt, frame.f_port, payload)

    def _verify(self, frame: DataFrame, unit: Unit) -> tuple[int, bytes]:
        """The 32-bit counter the MIC verifies with, and the decrypted payload."""
        last = self._last.get(unit.dev_eui)
        try:  # the common case: the counter moved on from the last one
            uplink = open_uplink(frame, unit.nwk_s_key, unit.app_s_key, last)
            return uplink.fcnt, uplink.payload
        except FrameError as exc:
            if exc.reason != "mic":
                raise IngressError(exc.reason, exc.detail, unit.dev_eui) from None
        for fcnt in self._other_guesses(frame.fcnt16, last):
            if hmac.compare_digest(compute_mic(frame, unit.nwk_s_key, fcnt), frame.mic):
                return fcnt, crypt_frm_payload(frame, unit.nwk_s_key, unit.app_s_key, fcnt)
        raise IngressError(
            "mic",
            f"MIC mismatch for DevAddr {frame.dev_addr} FCnt {frame.fcnt16} on air",
            unit.dev_eui,
        )

    def _other_guesses(self, fcnt16: int, last: int | None) -> Iterator[int]:
        """After the first guess (next counter from `last`, or the bare 16 bits) failed."""
        if last is None:
            for epoch in range(1, self.max_epochs + 1):
                yield epoch << 16 | fcnt16
        elif reconstruct_fcnt(fcnt16, last).fcnt != fcnt16:
            yield fcnt16  # the counter restarted
