"""Offline (clock-driven) and reboot (event flag) detectors."""

import numpy as np

from streams.detectors import (
    OfflineConfig,
    OfflineState,
    RebootConfig,
    RebootState,
    Severity,
    check_offline,
    detect_reboots,
    record_uplinks,
)

H = 3_600_000


def test_offline_after_factor_times_interval_and_critical_after_a_day() -> None:
    cfg = OfflineConfig(expected_interval_s=300, factor=3, critical_after_s=86400)
    state = record_uplinks(OfflineState(), [0, 60_000])
    assert state.last_seen == 60_000
    quiet = check_offline(cfg, state, 60_000 + 900_000)[0]  # exactly 3 x 300 s
    assert not quiet.active and quiet.value == 900.0 and quiet.threshold == 900.0
    late = check_offline(cfg, state, 60_000 + 900_001)[0]
    assert late.active and late.severity is Severity.WARNING and late.unit == "s"
    gone = check_offline(cfg, state, 60_000 + 86_400_001)[0]
    assert gone.severity is Severity.CRITICAL and gone.threshold == 86400.0


def test_offline_fires_without_any_data_and_ignores_never_seen_units() -> None:
    cfg = OfflineConfig(expected_interval_s=60, factor=3)
    assert np.isnan(check_offline(cfg, OfflineState(), 10 * H)[0].value)
    assert check_offline(cfg, OfflineState(last_seen=0), 10 * H)[0].active


def test_late_uplinks_do_not_move_last_seen_back() -> None:
    state = record_uplinks(OfflineState(), 5 * H)
    assert record_uplinks(state, [H, 2 * H]) is state
    assert record_uplinks(state, []) is state
    assert OfflineState.from_dict(state.to_dict()) == state


def test_reboots_counted_within_the_window() -> None:
    cfg = RebootConfig(max_resets=2, window_s=24 * 3600)
    ts = np.array([0, 1, 2, 5, 30]) * H
    flags = [True, True, False, True, True]
    c, state = detect_reboots(cfg, RebootState(), ts, flags)
    # counts in the trailing 24 h: 1, 2, -, 3 (more than 2: warning), 1 (h0..h5 left the window)
    assert c.value.tolist() == [1, 2, 0, 3, 1]
    assert c.active.tolist() == [True, True, False, True, True]
    assert c.severity.tolist() == [1, 1, 0, 2, 1]
    assert c.threshold.tolist() == [0, 0, 0, 2, 0]
    assert state.resets == (30 * H,)
    again, _ = detect_reboots(cfg, state, ts, flags)  # redelivery counts nothing twice
    assert not again.active.any()
