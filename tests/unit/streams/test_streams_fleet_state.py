"""Fleet state: heartbeats -> fleet_state records, offline by timer, newest wins."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from streams_sim import REGISTRY, encode_all, run

from streams.fleet_state import (
    FleetSettings,
    PrinterState,
    apply_heartbeat,
    apply_identity,
    check_offline,
    new_state,
    offline_now,
    set_open_alert_count,
)
from streams.words import fleet_line


def _hb(t: int, **kw: Any) -> dict[str, Any]:
    base = {"record_id": f"r{t}", "site_id": "s", "device_id": "d", "event_time": t, "status": "POWERED_ON",
            "activity": "PRINTING", "current_job_id": "J1", "layers_done": t // 10_000, "layers_total": 500,
            "recent_layer_duration_s": 10.0, "pending_job_count": 2, "cooling_remaining_s": 0.0}
    return {**base, **kw}


def _replay(records: list[dict[str, Any]]) -> tuple[PrinterState, list[dict[str, Any]]]:
    state, out = new_state("s", "d"), []
    for r in records:
        state, rec, _ = apply_heartbeat(state, r)
        out += [rec] if rec else []
    return state, out


def test_simulated_day_gives_readable_encodable_states() -> None:
    sim = run()
    device = next(iter(sim.device_ids.values()))
    state, out = new_state("site-A", device), []
    for kind, r in sim.records:
        if r["device_id"] != device:
            continue
        if kind == "device_identity":
            state, rec, _ = apply_identity(state, r)
        elif kind == "heartbeat":
            state, rec, _ = apply_heartbeat(state, r)
        else:
            continue
        out += [rec] if rec else []
    encode_all("fleet_state", out)
    assert len({r["record_id"] for r in out}) == len(out)
    assert all(r["printer_name"] and r["model_number"] for r in out)
    [identity] = sim.of("device_identity", device)
    assert identity["firmware_release"] and all(r["firmware_release"] == identity["firmware_release"] for r in out)
    heartbeats = len(sim.of("heartbeat", device))
    assert 24 < len(out) < heartbeats / 1.5  # throttled, yet every change and the refresh
    printing = [r for r in out if r["activity"] == "PRINTING"]
    assert printing and all(r["estimated_remaining_s"] is not None for r in printing)
    assert any(fleet_line(r).startswith("Powered on, printing: layer ") for r in printing)
    assert PrinterState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_duplicate_and_stale_heartbeats_are_no_ops() -> None:
    state, _ = _replay([_hb(60_000), _hb(90_000)])
    for again in (_hb(90_000), _hb(60_000), _hb(30_000)):
        new, rec, transition = apply_heartbeat(state, again)
        assert (new, rec, transition) == (state, None, None)


def test_offline_by_timer_and_back_online() -> None:
    cfg = FleetSettings(heartbeat_interval_s=30, missed_intervals=3)
    state, _ = _replay([_hb(1_000_000)])
    assert check_offline(state, 1_000_000 + 90_000, cfg).transition is None  # not yet
    state2, rec, transition = check_offline(state, 1_000_000 + 95_000, cfg)
    assert transition is not None and transition.kind == "offline" and transition.at_ms == 1_090_000
    assert rec is not None and rec["status"] == "UNREACHABLE" and rec["event_time"] == 1_090_000
    assert rec["current_job_id"] is None and fleet_line(rec).startswith("Offline")
    # a late or repeated timer changes nothing and the same record would have the same id
    assert check_offline(state2, 2_000_000, cfg).record is None
    assert check_offline(state, 5_000_000, cfg).record == rec
    state3, rec3, back = apply_heartbeat(state2, _hb(1_200_000))
    assert back is not None and back.kind == "online" and rec3 is not None and rec3["status"] == "POWERED_ON"
    encode_all("fleet_state", [rec, rec3])


def test_unreachable_heartbeat_from_the_collector_is_offline() -> None:
    state, _ = _replay([_hb(1_000)])
    _, rec, transition = apply_heartbeat(state, _hb(31_000, status="UNREACHABLE", activity="UNKNOWN"))
    assert transition is not None and transition.kind == "offline" and rec is not None


def test_open_alert_count_and_identity_are_shown() -> None:
    state, _ = _replay([_hb(1_000)])
    state, rec, _ = set_open_alert_count(state, 3, 2_000)
    assert rec is not None and rec["open_alert_count"] == 3
    assert rec["firmware_release"] == ""  # no device_identity seen yet
    encode_all("fleet_state", [rec])
    assert set_open_alert_count(state, 3, 3_000).record is None
    identity = {"record_id": "i", "site_id": "s", "device_id": "d", "event_time": 4_000, "printer_name": "Hall B 4",
                "model_number": "M0P44A", "firmware_release": "5.3.0.22"}
    state, rec, _ = apply_identity(state, identity)
    assert rec is not None and rec["printer_name"] == "Hall B 4" and state.firmware_release == "5.3.0.22"
    assert rec["firmware_release"] == "5.3.0.22"
    assert apply_identity(state, identity).record is None
    # A firmware update alone is shown at once, and travels in fleet_state v2.
    updated = {**identity, "record_id": "i2", "event_time": 5_000, "firmware_release": "5.4.0.3"}
    state, rec2, _ = apply_identity(state, updated)
    assert rec2 is not None and rec2["firmware_release"] == "5.4.0.3"
    encode_all("fleet_state", [rec, rec2])
    decoded = REGISTRY.decode(REGISTRY.encode("fleet_state", rec2))
    assert decoded.version == 2 and decoded.record["firmware_release"] == "5.4.0.3"
    # later heartbeats keep showing it
    _, rec3, _ = apply_heartbeat(state, _hb(400_000, activity="COOLING_DOWN"))
    assert rec3 is not None and rec3["firmware_release"] == "5.4.0.3"


def test_site_watermark_moves_on_with_wall_time() -> None:
    assert offline_now(1_000_000, 50_000, 80_000) == 1_030_000
    assert offline_now(1_000_000, 50_000, 40_000) == 1_000_000


times = st.lists(st.integers(min_value=1, max_value=200).map(lambda k: k * 15_000), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None)
@given(times, st.randoms(use_true_random=False))
def test_any_order_and_any_repeats_end_in_the_newest_state(ts: list[int], rnd: Any) -> None:
    records = [_hb(t, activity="PRINTING" if t % 2 else "COOLING_DOWN") for t in ts]
    once, _ = _replay(records)
    shuffled = records + records
    rnd.shuffle(shuffled)
    twice, _ = _replay(shuffled)
    assert (twice.last_heartbeat_at, twice.status, twice.activity, twice.layers_done) == (
        once.last_heartbeat_at, once.status, once.activity, once.layers_done)
    assert _replay(records + records)[0] == once  # applying a sequence twice == once


def test_records_read_ahead_of_the_heartbeats_do_not_hold_back_the_view() -> None:
    """Identity and alerts come on other topics and may be read hours ahead of the
    heartbeats: their records show (and are stamped with) the last heartbeat, and the
    view keeps refreshing as the heartbeats catch up."""
    state, _ = _replay([_hb(10_000)])
    ahead = 10 * 3_600_000
    state, rec, _ = set_open_alert_count(state, 1, ahead)
    assert rec is not None and rec["event_time"] == 10_000
    identity = {"record_id": "i", "site_id": "s", "device_id": "d", "event_time": ahead, "printer_name": "P",
                "model_number": "M0P44A", "firmware_release": "5.3.0.22"}
    state, rec, _ = apply_identity(state, identity)
    assert rec is not None and rec["event_time"] == 10_000
    records = []
    for t in range(40_000, 1_300_000, 30_000):  # 21 minutes of unchanging heartbeats
        state, r, _ = apply_heartbeat(state, _hb(t, layers_done=1))
        records += [r] if r else []
    assert len(records) >= 4  # refreshed every 5 minutes, not held back until hour 10
