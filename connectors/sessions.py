"""ABP sessions of the registry's units: from a PHYPayload to a verified, decrypted payload.

The UDP bridge and `livinglab decode` both open frames here, so a frame is judged the same way
on both paths. The 32-bit frame counter is rebuilt from the 16 bits on air and the last counter
this process saw from the device. A frame that verifies only with the bare 16 bits is a counter
that restarted (ABP reboot); it is passed on with that counter and the stream worker, which
keeps the sessions, starts a new one.
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.lns import IngressError
from connectors.lorawan import (
    DataFrame,
    FrameError,
    JoinRequest,
    Uplink,
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


class Sessions:
    """Opens frames with the units' session keys; remembers each device's last counter.

    Raises `IngressError` with the dead-letter reason: `unknown_devaddr`, `join_request`, `mic`,
    or the frame's own (`truncated`, `mtype`, `direction`, ...).
    """

    def __init__(self, registry: Registry) -> None:
        self._units = registry.by_dev_addr
        self._last: dict[str, int] = {}

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
        uplink = self._verify(frame, unit)
        self._last[unit.dev_eui] = uplink.fcnt
        return Opened(unit, uplink.fcnt, frame.f_port, uplink.payload)

    def _verify(self, frame: DataFrame, unit: Unit) -> Uplink:
        last = self._last.get(unit.dev_eui)
        try:
            return open_uplink(frame, unit.nwk_s_key, unit.app_s_key, last)
        except FrameError as exc:
            error = IngressError(exc.reason, exc.detail, unit.dev_eui)
            restart_differs = (
                last is not None and reconstruct_fcnt(frame.fcnt16, last).fcnt != frame.fcnt16
            )
            if exc.reason != "mic" or not restart_differs:
                raise error from None
        try:  # did the counter restart?
            return open_uplink(frame, unit.nwk_s_key, unit.app_s_key)
        except FrameError:
            raise error from None
