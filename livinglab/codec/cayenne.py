"""Cayenne LPP decoding for off-the-shelf nodes, mapped onto the native quantity names.

LPP says what kind of number a channel carries (temperature, analog input, ...) but
not what it measures, so the lab registry supplies a channel -> quantity mapping per
unit. LPP has no dB or particulate type and its analog input overflows above
327.67, which is why a negative value for a quantity that cannot be negative is
dropped with a warning instead of passed on.
"""

from __future__ import annotations

from collections.abc import Mapping

from livinglab.codec.payload import QUANTITIES, Decoded, PayloadError

# LPP type -> (name, ((bytes, divisor), ...) per dimension, signed)
_TYPES: dict[int, tuple[str, tuple[tuple[int, int], ...], bool]] = {
    0: ("digital input", ((1, 1),), False),
    1: ("digital output", ((1, 1),), False),
    2: ("analog input", ((2, 100),), True),
    3: ("analog output", ((2, 100),), True),
    100: ("generic sensor", ((4, 1),), False),
    101: ("illuminance", ((2, 1),), False),
    102: ("presence", ((1, 1),), False),
    103: ("temperature", ((2, 10),), True),
    104: ("humidity", ((1, 2),), False),
    113: ("accelerometer", ((2, 1000),) * 3, True),
    115: ("barometer", ((2, 10),), False),
    116: ("voltage", ((2, 100),), False),
    117: ("current", ((2, 1000),), False),
    118: ("frequency", ((4, 1),), False),
    120: ("percentage", ((1, 1),), False),
    121: ("altitude", ((2, 1),), True),
    122: ("load", ((3, 1000),), True),
    125: ("concentration", ((2, 1),), False),
    128: ("power", ((2, 1),), False),
    130: ("distance", ((4, 1000),), False),
    131: ("energy", ((4, 1000),), False),
    132: ("direction", ((2, 1),), False),
    133: ("unix time", ((4, 1),), False),
    134: ("gyrometer", ((2, 100),) * 3, True),
    135: ("colour", ((1, 1),) * 3, False),
    136: ("gps location", ((3, 10000), (3, 10000), (3, 100)), True),
    142: ("switch", ((1, 1),), False),
}

_MAY_BE_NEGATIVE = frozenset({"temperature"})


def _check_channels(channels: Mapping[int, str]) -> None:
    unknown = sorted(set(channels.values()) - set(QUANTITIES))
    if unknown:
        raise PayloadError("channels", f"channel mapping names unknown quantities {unknown}")


def decode(payload: bytes, channels: Mapping[int, str]) -> Decoded:
    """Decode an LPP frame; channels not in ``channels`` are skipped with a warning.

    The result has version 0, status 0 and firmware 0 (LPP carries none of them).
    """
    _check_channels(channels)
    if not payload:
        raise PayloadError("empty", "payload has no bytes")
    values: dict[str, float | None] = dict.fromkeys(QUANTITIES)
    warnings: list[str] = []
    pos = 0
    while pos < len(payload):
        if pos + 2 > len(payload):
            raise PayloadError("truncated", f"LPP item header cut off at byte {pos}")
        channel, lpp_type = payload[pos], payload[pos + 1]
        if lpp_type not in _TYPES:
            raise PayloadError("type", f"unknown LPP type {lpp_type} at byte {pos + 1}")
        name, dims, signed = _TYPES[lpp_type]
        pos += 2
        if pos + sum(size for size, _ in dims) > len(payload):
            raise PayloadError("truncated", f"LPP {name} on channel {channel} cut off")
        numbers = []
        for size, divisor in dims:
            raw = int.from_bytes(payload[pos : pos + size], "big", signed=signed)
            numbers.append(raw / divisor)
            pos += size
        quantity = channels.get(channel)
        if quantity is None:
            warnings.append(f"channel {channel} ({name}) is not mapped; ignored")
        elif len(numbers) != 1:
            warnings.append(f"channel {channel} ({name}) has {len(numbers)} values; ignored")
        elif numbers[0] < 0 and quantity not in _MAY_BE_NEGATIVE:
            warnings.append(
                f"channel {channel} ({name}) gives {quantity} = {numbers[0]}:"
                " negative, likely an overflow; dropped"
            )
        else:
            if values[quantity] is not None:
                warnings.append(f"{quantity} appears twice; the later channel {channel} wins")
            values[quantity] = numbers[0]
    return Decoded(version=0, values=values, status=0, firmware=0, warnings=tuple(warnings))
