"""Dead-letter records: what was rejected, where, and why. Nothing vanishes silently."""

from __future__ import annotations

import hashlib
import time
from typing import Any


def dead_letter(
    *,
    source: str,
    stage: str,
    reason: str,
    detail: str,
    original: bytes,
    dev_eui: str | None = None,
    origin: str = "",
) -> dict[str, Any]:
    """Build a DeadLetter record (schemas/avro/deadletter.avsc).

    `origin` identifies the input position (e.g. topic:partition:offset) so the
    id, and with it the stored row, is the same when the same input is rejected
    again after a replay; two identical junk messages at different positions stay two.
    """
    digest = hashlib.blake2b(digest_size=12)
    for part in (stage, reason, origin):
        digest.update(part.encode())
        digest.update(b"\0")
    digest.update(original)
    return {
        "id": digest.hexdigest(),
        "ts": int(time.time() * 1000),
        "source": source,
        "stage": stage,
        "reason": reason,
        "detail": detail[:2000],
        "dev_eui": dev_eui,
        "original": bytes(original),
    }
