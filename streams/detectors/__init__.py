"""Pure anomaly and exceedance detectors (DESIGN.md §5): no Kafka, no I/O.

Every detector takes a config dataclass (defaults in ``config``), for stateful ones
a small serialisable state, and one unit's readings in event-time order (NumPy
arrays; a scalar is a batch of one). It returns ``Conditions`` — whether a rule is
violated at each evaluated sample, with value, threshold and severity — which the
alert lifecycle (``streams.alerts``) turns into open/update/resolved alerts.
"""

from streams.detectors.condition import Condition, Conditions, Severity, make_conditions
from streams.detectors.config import DetectorSettings, override
from streams.detectors.flatline import FlatlineConfig, FlatlineState, detect_flatline
from streams.detectors.fog import FogConfig, FogState, detect_fog
from streams.detectors.limits import Limit, check_limit, check_limit_in_period, local_hours
from streams.detectors.offline import OfflineConfig, OfflineState, check_offline, record_uplinks
from streams.detectors.range import RangeConfig, check_range
from streams.detectors.rate import RateConfig, RateState, detect_rate
from streams.detectors.reboot import RebootConfig, RebootState, detect_reboots
from streams.detectors.spatial import SpatialConfig, SpatialState, detect_spatial, peer_medians
from streams.detectors.spike import SpikeConfig, SpikeState, detect_spikes
from streams.detectors.thresholds import AGGREGATE_LIMITS, check_aggregate
from streams.detectors.unit import UnitState, detect_unit

__all__ = [
    "AGGREGATE_LIMITS",
    "Condition",
    "Conditions",
    "DetectorSettings",
    "FlatlineConfig",
    "FlatlineState",
    "FogConfig",
    "FogState",
    "Limit",
    "OfflineConfig",
    "OfflineState",
    "RangeConfig",
    "RateConfig",
    "RateState",
    "RebootConfig",
    "RebootState",
    "Severity",
    "SpatialConfig",
    "SpatialState",
    "SpikeConfig",
    "SpikeState",
    "UnitState",
    "check_aggregate",
    "check_limit",
    "check_limit_in_period",
    "check_offline",
    "check_range",
    "detect_flatline",
    "detect_fog",
    "detect_rate",
    "detect_reboots",
    "detect_spatial",
    "detect_spikes",
    "detect_unit",
    "local_hours",
    "make_conditions",
    "override",
    "peer_medians",
    "record_uplinks",
]
