"""A printer's state over simulated days at the soak's cadence (issue 21): every container
stays within its bound, and the whole state stops growing once the bounded ones are full.

The soak's worker grew for all of its 30 minutes; these say why that is not a leak: the
utilisation's samples fill up to the open hour plus the allowed lateness, then are pruned
hour by hour (docs/soak.md, "Worker memory").
"""

from __future__ import annotations

from streams_sim import HOUR_MS, REGISTRY, START_MS

from producers.simulator.replay import new_fleet, replay
from streams import device
from streams.alert_device import AlertDeviceSettings
from streams.device import DeviceSettings, DeviceState
from streams.maintenance import MaintenanceSettings

HEARTBEAT_S = 10  # the soak's default cadence
STEP_MS = 10 * 60_000  # the state is measured every 10 simulated minutes
# Wear series full after 12 hourly readings instead of 120 (five days): the same bound,
# reached within the test's hours.
SETTINGS = DeviceSettings(alerts=AlertDeviceSettings(maintenance=MaintenanceSettings(max_points=12)))


def _run(hours: int) -> list[tuple[int, DeviceState, int]]:
    """One printer's state every 10 minutes: (minutes since start, state, JSON bytes)."""
    fleet = new_fleet(1, 11, START_MS + 17 * 60_000)  # starts within an hour, as the soak did
    state = DeviceState()
    seen: list[tuple[int, DeviceState, int]] = []
    for step in range(hours * HOUR_MS // STEP_MS):
        records = replay(fleet, REGISTRY, duration_ms=STEP_MS - HEARTBEAT_S * 1000, heartbeat_s=HEARTBEAT_S,
                         consumables_s=300, truth_every_ms=0).records
        fleet.advance_to(fleet.now_ms + HEARTBEAT_S * 1000)
        for kind, record in records:
            if kind == "device_identity" and step:
                continue  # each replay reads the identity again; the collector reads it once
            state = device.apply(state, kind, record, SETTINGS).state
            if kind == "heartbeat":  # the timer, at the site's watermark
                state = device.tick(state, int(record["event_time"]), SETTINGS).state
        seen.append(((step + 1) * STEP_MS // 60_000, state, len(state.to_json())))
    return seen


RUN = _run(36)


def test_every_container_of_a_printers_state_stays_within_its_bound() -> None:
    u_cfg, m_cfg = SETTINGS.utilisation, SETTINGS.alerts.maintenance
    # The open hour and the lateness after it, a sample per heartbeat, the baseline before.
    max_samples = (HOUR_MS + u_cfg.lateness_ms) // (HEARTBEAT_S * 1000) + 2
    for minute, s, _ in RUN:
        u, a = s.utilisation, s.alerts
        assert len(u.heartbeats) <= max_samples, minute
        assert len(u.materials) <= max_samples and len(u.agents) <= max_samples, minute
        assert len(u.recent.ids) <= u.recent.capacity, minute
        assert len(u.days) <= 2 and len(u.emitted) <= 4, minute  # a passed day and hour at most, and today's
        assert len(a.layers.values) <= m_cfg.layer_history, minute
        assert all(len(series.points) <= m_cfg.max_points for series in a.series.values()), minute
    # The samples are pruned hour by hour: after the first hour, a fifth of the bound or less
    # just after each hour became final.
    assert min(len(s.utilisation.heartbeats) for m, s, _ in RUN if m > 120) <= max_samples // 4


def test_a_printers_state_stops_growing_once_its_bounded_parts_are_full() -> None:
    # Same ten-minute phase of every hour; the wear series are full after 12 hours.
    by_hour = {minute: size for minute, _, size in RUN}
    full = [by_hour[m] for m in by_hour if 13 * 60 < m <= 24 * 60]
    later = [by_hour[m] for m in by_hour if 24 * 60 < m <= 36 * 60]
    assert max(later) <= max(full) * 1.05
    # Within the first hour it grows with every heartbeat: what the soak's 30 minutes saw.
    assert by_hour[30] > by_hour[10] * 1.4
