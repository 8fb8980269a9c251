"""A printer's state over simulated days at the soak's cadence (issue 21): every container
stays within its bound, and the whole state stops growing once the bounded ones are full.

The soak's worker grew for all of its 30 minutes; these say why that is not a leak: the
utilisation's samples fill up to the open hour plus the allowed lateness, then are pruned
hour by hour (docs/soak.md, "Worker memory").
"""

from __future__ import annotations

import functools
from typing import NamedTuple

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


class Sizes(NamedTuple):
    """What a printer's state held at one moment (taken then: `apply` changes the state in place)."""

    minute: int  # since the start
    heartbeats: int
    counter_samples: int  # the larger of the material and agent readings
    recent_ids: int
    days: int
    emitted: int
    layers: int
    longest_series: int
    json_bytes: int


@functools.cache
def _run(hours: int) -> tuple[Sizes, ...]:
    """One printer's state every 10 simulated minutes."""
    fleet = new_fleet(1, 11, START_MS + 17 * 60_000)  # starts within an hour, as the soak did
    state = DeviceState()
    seen: list[Sizes] = []
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
        u, a = state.utilisation, state.alerts
        seen.append(Sizes(
            (step + 1) * STEP_MS // 60_000, len(u.heartbeats), max(len(u.materials), len(u.agents)), len(u.recent.ids),
            len(u.days), len(u.emitted), len(a.layers.values), max((len(x.points) for x in a.series.values()), default=0),
            len(state.to_json()),
        ))
    return tuple(seen)


def test_every_container_of_a_printers_state_stays_within_its_bound() -> None:
    u_cfg, m_cfg = SETTINGS.utilisation, SETTINGS.alerts.maintenance
    # The open hour and the lateness after it, a sample per heartbeat, the baseline before.
    max_samples = (HOUR_MS + u_cfg.lateness_ms) // (HEARTBEAT_S * 1000) + 2
    run = _run(36)
    for s in run:
        assert s.heartbeats <= max_samples and s.counter_samples <= max_samples, s
        assert s.recent_ids <= DeviceState().utilisation.recent.capacity, s
        assert s.days <= 2 and s.emitted <= 4, s  # a passed day and hour at most, and today's
        assert s.layers <= m_cfg.layer_history and s.longest_series <= m_cfg.max_points, s
    assert max(s.heartbeats for s in run) > max_samples * 0.9  # (the bound is not loose)
    # The samples are pruned hour by hour: 7 minutes after each hour became final (17 past
    # the hour; the run starts at 17 past), a third of the bound or less.
    after_final = [s.heartbeats for s in run if s.minute % 60 == 0]
    assert len(after_final) == 36 and max(after_final) <= max_samples // 3


def test_a_printers_state_stops_growing_once_its_bounded_parts_are_full() -> None:
    # The largest state of hours 13-24 (the wear series full after 12) against that of 25-36.
    by_hour = {s.minute: s.json_bytes for s in _run(36)}
    full = [by_hour[m] for m in by_hour if 13 * 60 < m <= 24 * 60]
    later = [by_hour[m] for m in by_hour if 24 * 60 < m <= 36 * 60]
    assert max(later) <= max(full) * 1.05
    # Within the first hour it grows with every heartbeat: what the soak's 30 minutes saw.
    assert by_hour[30] > by_hour[10] * 1.4
