"""ETA: within 10 % of the true remaining print time at 50 % layers, on simulated jobs."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from streams_sim import DAY_MS, run

from streams.eta import EtaSettings, EtaState, estimate, observe


def _print_ends(records: list[dict[str, Any]]) -> dict[str, int]:
    """Truth: job id -> when its last layer ended (from the COOLING snapshot)."""
    return {r["job_id"]: r["layers"][-1]["ended_at"] for r in records if r["completion_status"] == "COOLING"}


@pytest.mark.parametrize("seed", [11, 29])
def test_eta_at_half_progress_within_ten_percent(seed: int) -> None:
    sim = run(printers=4, seed=seed, duration_ms=2 * DAY_MS, heartbeat_s=60, consumables_s=3600)
    ends = _print_ends(sim.of("job"))
    checked = []
    for device in sim.device_ids.values():
        state = EtaState()
        judged: set[str] = set()
        started: set[str] = set()
        for hb in sim.of("heartbeat", device):
            job = hb["current_job_id"]
            if hb["activity"] == "WARMING_UP":
                started.add(job)
            state = observe(state, hb)
            eta = estimate(state, hb)
            # judge jobs seen from their warm-up (whole history) and that finished printing
            if job in started and job in ends and job not in judged and hb["layers_done"] * 2 >= hb["layers_total"]:
                judged.add(job)
                assert eta is not None and eta.phase == "printing"
                true_remaining = (ends[job] - hb["event_time"]) / 1000
                checked.append((job, hb["layers_total"], eta.remaining_s, true_remaining))
                assert abs(eta.remaining_s - true_remaining) <= 0.10 * true_remaining, checked[-1]
                assert eta.completion_at_ms == hb["event_time"] + round(eta.remaining_s * 1000)
    assert len(checked) >= 8  # enough jobs to mean something


def test_estimate_uses_measured_rate_not_a_constant() -> None:
    base = {"record_id": "r", "site_id": "s", "device_id": "d", "status": "POWERED_ON", "activity": "PRINTING",
            "current_job_id": "J1", "layers_total": 1000, "recent_layer_duration_s": 0.0, "cooling_remaining_s": 0.0}
    state = EtaState()
    for i in range(20):  # 5 s per layer measured: 12 layers a minute
        state = observe(state, {**base, "event_time": 60_000 * i, "layers_done": 12 * i})
    hb = {**base, "event_time": 60_000 * 19, "layers_done": 228}
    eta = estimate(state, hb)
    assert eta is not None
    assert eta.remaining_s == pytest.approx((1000 - 228) * 5.0, rel=1e-6)


def test_stale_and_repeated_heartbeats_change_nothing() -> None:
    hb = {"event_time": 120_000, "current_job_id": "J1", "activity": "PRINTING", "layers_done": 20, "layers_total": 100}
    state = observe(observe(EtaState(), {**hb, "event_time": 60_000, "layers_done": 10}), hb)
    before = copy.deepcopy(state)
    observe(state, hb)
    observe(state, {**hb, "event_time": 90_000, "layers_done": 15})
    assert state == before


def test_warm_up_uses_the_printers_rate_on_earlier_jobs() -> None:
    state = EtaState(printer_sec_per_layer=9.0)
    hb = {"event_time": 1_000_000, "current_job_id": "J2", "activity": "WARMING_UP", "layers_done": 0, "layers_total": 400}
    state = observe(state, hb)
    later = {**hb, "event_time": 1_000_000 + 300_000}
    eta = estimate(observe(state, later), later, EtaSettings(warmup_s=900.0))
    assert eta is not None and eta.phase == "printing"
    assert eta.remaining_s == pytest.approx(600.0 + 400 * 9.0)


def test_cooling_uses_the_printers_own_estimate_and_idle_has_none() -> None:
    hb = {"event_time": 5_000, "current_job_id": "J3", "activity": "COOLING_DOWN", "layers_done": 10,
          "layers_total": 10, "cooling_remaining_s": 7200.0}
    eta = estimate(observe(EtaState(), hb), hb)
    assert eta is not None and (eta.phase, eta.remaining_s, eta.completion_at_ms) == ("cooling", 7200.0, 5_000 + 7_200_000)
    idle = {"event_time": 6_000, "current_job_id": "", "activity": "IDLE", "layers_done": 0, "layers_total": 0}
    assert estimate(observe(EtaState(), idle), idle) is None


def test_rate_of_a_finished_job_becomes_the_printers_prior() -> None:
    state = EtaState()
    for i in range(1, 40):
        state = observe(state, {"event_time": 60_000 * i, "current_job_id": "J1", "activity": "PRINTING",
                                "layers_done": 6 * i, "layers_total": 1000})
    state = observe(state, {"event_time": 60_000 * 41, "current_job_id": "J2", "activity": "WARMING_UP",
                            "layers_done": 0, "layers_total": 50})
    assert state.printer_sec_per_layer == pytest.approx(10.0)
    assert EtaState.from_dict(state.to_dict()) == state
