"""Alert lifecycle (pure): detector conditions -> open/update/resolved alert events.

Records follow ``schemas/alert.schema.json``; the Faust wiring publishes
``Alert.to_record()`` as JSON on ``alerts.<lab>`` keyed by sensor.
"""

from streams.alerts.lifecycle import (
    DEFAULT_POLICY,
    Alert,
    AlertState,
    Episode,
    LifecycleConfig,
    alert_id,
    config_for,
    episode_key,
    lifecycle_policy,
    track,
    track_all,
)
from streams.alerts.messages import render

__all__ = [
    "DEFAULT_POLICY",
    "Alert",
    "AlertState",
    "Episode",
    "LifecycleConfig",
    "alert_id",
    "config_for",
    "episode_key",
    "lifecycle_policy",
    "render",
    "track",
    "track_all",
]
