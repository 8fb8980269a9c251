"""Utilisation windows: equal to ground truth, late and duplicate records count once."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from streams_sim import DAY_MS, HOUR_MS, START_MS, encode_all, run

from producers.simulator import Fleet, SimulatorSettings
from streams.ids import RecentIds
from streams.timeline import BUCKETS, bucket_of
from streams.utilisation import KINDS, UtilisationSettings, UtilisationState, advance, apply

CFG = UtilisationSettings(allowed_lateness_s=600, max_hold_s=90)


def _feed(records: list[tuple[str, dict[str, Any]]], cfg: UtilisationSettings = CFG) -> tuple[
        dict[str, UtilisationState], dict[tuple[str, int, int], dict[str, Any]], list[dict[str, Any]], list[Any]]:
    """Apply records; returns states, the newest record per (device, window), all records, late."""
    states: dict[str, UtilisationState] = {}
    latest: dict[tuple[str, int, int], dict[str, Any]] = {}
    emitted: list[dict[str, Any]] = []
    late: list[Any] = []
    for kind, r in records:
        if kind not in KINDS:
            continue
        result = apply(states.get(r["device_id"]) or UtilisationState(), kind, r, cfg)
        states[r["device_id"]] = result.state
        late += result.late
        for out in result.records:
            emitted.append(out)
            latest[(out["device_id"], out["window_start"], out["window_end"])] = out
    return states, latest, emitted, late


def _arrival_order(records: list[tuple[str, dict[str, Any]]], seed: int, jitter_ms: int) -> list[tuple[str, dict[str, Any]]]:
    """Out of order by up to `jitter_ms` (within lateness), plus 5 % redelivered copies."""
    rng = random.Random(seed)
    keyed = [(kr[1]["event_time"] + (rng.randrange(jitter_ms) if i else 0), i, kr) for i, kr in enumerate(records)]
    keyed += [(t + rng.randrange(3 * jitter_ms), i, kr) for t, i, kr in keyed if rng.random() < 0.05]
    return [kr for _, _, kr in sorted(keyed, key=lambda x: (x[0], x[1]))]


def _dense_shares(printer_ids: list[str], seed: int, step_s: int = 10) -> tuple[dict[str, Counter[str]], dict[str, int]]:
    """Ground truth: seconds per bucket in the first day from a 10 s status trace."""
    fleet = Fleet(SimulatorSettings(printers=len(printer_ids), seed=seed, start_ms=START_MS))
    seconds: dict[str, Counter[str]] = {p: Counter() for p in printer_ids}
    changes = {p: 0 for p in printer_ids}
    last: dict[str, str] = {}
    for t in range(START_MS, START_MS + DAY_MS, step_s * 1000):
        fleet.advance_to(t)
        for p in printer_ids:
            s = fleet.read(p, "status")
            b = bucket_of(s["status"], s["activity"])
            seconds[p][b] += step_s
            changes[p] += last.get(p, b) != b
            last[p] = b
    return seconds, changes


def test_day_kpis_equal_ground_truth_despite_disorder_and_duplicates() -> None:
    sim = run(printers=3, seed=11, duration_ms=DAY_MS + 2 * HOUR_MS, heartbeat_s=60, consumables_s=300)
    arrivals = _arrival_order(sim.records, seed=5, jitter_ms=300_000)
    _, latest, emitted, late = _feed(arrivals)
    assert late == []
    dense, changes = _dense_shares(list(sim.device_ids), seed=11)
    for pid, device in sim.device_ids.items():
        day = latest[(device, START_MS, START_MS + DAY_MS)]
        ours = {b: day[f"{b}_s" if b != "warming" else "warming_s"] for b in BUCKETS}
        assert sum(ours.values()) == DAY_MS / 1000
        for b in BUCKETS:  # each status change can be off by one 60 s sampling step
            assert abs(ours[b] - dense[pid][b]) <= 60 * (changes[pid] + 1), (pid, b, ours, dense[pid])
        assert day["utilisation_pct"] == round(100 * ours["printing"] / 86_400, 4)
        truth0, truth1 = sim.truth[START_MS][pid], sim.truth[START_MS + DAY_MS][pid]
        assert day["jobs_completed"] == truth1["jobs_completed"] - truth0["jobs_completed"]
        c0, c1 = sim.counters[START_MS][pid], sim.counters[START_MS + DAY_MS][pid]
        assert abs(day["material_consumed_kg"] - (c1["total_material_consumed_kg"] - c0["total_material_consumed_kg"])) < 1e-3
        assert abs(day["layers_printed"] - (c1["total_layers"] - c0["total_layers"])) <= 8  # one minute of layers
        # Agent from agent_system's per-type counters equals usage_counters' lifetime total
        # (readings every 5 min, at both window ends; each rounded to 0.001 cm3).
        agent_truth = c1["total_agent_consumed_cm3"] - c0["total_agent_consumed_cm3"]
        assert agent_truth > 0 and abs(day["agent_consumed_cm3"] - agent_truth) < 0.01, (pid, day, agent_truth)
        hours = [r for (d, s, e), r in latest.items() if d == device and e - s == HOUR_MS and s < START_MS + DAY_MS]
        assert len(hours) == 24
        assert sum(h["jobs_completed"] for h in hours) == day["jobs_completed"]
        assert sum(h["layers_printed"] for h in hours) == day["layers_printed"]
        assert abs(sum(h["material_consumed_kg"] for h in hours) - day["material_consumed_kg"]) < 1e-4
        assert abs(sum(h["agent_consumed_cm3"] for h in hours) - day["agent_consumed_cm3"]) < 0.02
        assert all(sum(h[f"{b}_s"] for b in BUCKETS) == 3600 for h in hours)
    encode_all("utilisation", emitted)


def test_order_and_redelivery_do_not_change_the_final_windows() -> None:
    sim = run(printers=3, seed=11, duration_ms=DAY_MS + 2 * HOUR_MS, heartbeat_s=60, consumables_s=300)
    in_order = _feed(sim.records)[1]
    shuffled = _feed(_arrival_order(sim.records, seed=9, jitter_ms=500_000))[1]
    twice = _feed(sim.records + sim.records)[1]
    assert in_order == shuffled == twice  # same content, so the same record ids


def test_late_within_bound_updates_and_beyond_bound_is_returned() -> None:
    device = {"site_id": "s", "device_id": "d"}

    def hb(t: int, activity: str) -> tuple[str, dict[str, Any]]:
        return "heartbeat", {**device, "record_id": f"hb{t}", "event_time": t, "status": "POWERED_ON",
                             "activity": activity, "current_job_id": "", "layers_done": 0}

    base = [hb(t, "IDLE") for t in range(0, HOUR_MS + 1, 60_000)]
    state, latest, _, _ = _feed(base)
    first = latest[("d", 0, HOUR_MS)]
    assert first["idle_s"] == 3600
    # within the bound (watermark = 1 h, lateness 10 min): the window is updated, re-emitted
    res = apply(state["d"], *hb(30 * 60_000 + 1, "PRINTING"), CFG)
    assert res.late == [] and len(res.records) == 1 and res.records[0]["printing_s"] == 59.999
    assert res.records[0]["record_id"] != first["record_id"]
    # the same record again: nothing
    again = apply(res.state, *hb(30 * 60_000 + 1, "PRINTING"), CFG)
    assert again.records == [] and again.late == [] and again.state == res.state
    # watermark past end + lateness: final; a record for it now is late and returned
    closed = advance(res.state, HOUR_MS + 11 * 60_000, CFG)
    kind, old = hb(45 * 60_000 + 1, "PRINTING")
    late = apply(closed.state, kind, old, CFG)
    assert late.late == [old] and late.records == [] and late.state.late_count == 1
    assert late.state.heartbeats == closed.state.heartbeats
    # a redelivered record of the final window is a duplicate, not late
    assert apply(closed.state, *hb(30 * 60_000 + 1, "PRINTING"), CFG).late == []
    # heartbeats are remembered by event time: another id at that time is the same sample
    kind, same_time = hb(30 * 60_000 + 1, "PRINTING")
    assert apply(closed.state, kind, {**same_time, "record_id": "another"}, CFG).late == []
    # remembered in the state's table value, as "hb@<ms>", not as a digest of the id
    assert RecentIds.from_dict(closed.state.recent.to_dict()).knows(f"hb@{30 * 60_000 + 1}")


def test_silent_printer_windows_close_by_timer_as_unreachable() -> None:
    r = {"site_id": "s", "device_id": "d", "record_id": "a", "event_time": 0, "status": "POWERED_ON",
         "activity": "PRINTING", "current_job_id": "J", "layers_done": 5}
    res = apply(UtilisationState(), "heartbeat", r, CFG)
    out = advance(res.state, 3 * HOUR_MS, CFG).records
    first = next(x for x in out if x["window_start"] == 0 and x["window_end"] == HOUR_MS)
    assert (first["printing_s"], first["unreachable_s"]) == (90.0, 3510.0)
    encode_all("utilisation", out)


def test_jobs_count_once_and_counters_survive_resets() -> None:
    env = {"site_id": "s", "device_id": "d"}
    job = {**env, "job_id": "J1", "completion_status": "COMPLETED", "completed_at": 600_000,
           "packing_density_pct": 12.0}
    records: list[tuple[str, dict[str, Any]]] = [
        ("job", {**job, "record_id": "j1", "event_time": 600_000}),
        ("job", {**job, "record_id": "j2", "event_time": 600_000}),  # same job, another poll
        ("job", {**job, "record_id": "j3", "event_time": 500_000, "completion_status": "COOLING"}),
    ]
    for i, kg in enumerate([100.0, 101.0, 0.5, 1.5]):  # a reset between 101 and 0.5
        records.append(("usage_counters", {**env, "record_id": f"c{i}", "event_time": i * 900_000,
                                           "total_material_consumed_kg": kg}))
    for i, (fusing, detailing) in enumerate([(10.0, 5.0), (12.0, 6.0), (1.0, 7.0)]):
        records.append(("agent_system", {**env, "record_id": f"a{i}", "event_time": i * 1_000_000, "agents": [
            {"agent_type": "FUSING", "agent_used_cm3": fusing}, {"agent_type": "DETAILING", "agent_used_cm3": detailing}]}))
    state = _feed(records)[0]["d"]
    final = advance(state, 2 * HOUR_MS, CFG)
    hour = next(r for r in final.records if r["window_end"] - r["window_start"] == HOUR_MS)
    assert hour["jobs_completed"] == 1 and hour["packing_density_pct"] == 12.0
    assert abs(hour["material_consumed_kg"] - (1.0 + 0.5 + 1.0)) < 1e-9
    assert final.state.days["0"].agent_cm3 == 3.0 + 2.0  # 2+1, then 1 (reset) + 1
    assert hour["agent_consumed_cm3"] == 5.0
    later = advance(final.state, DAY_MS + HOUR_MS, CFG).records
    day = next(r for r in later if r["window_end"] - r["window_start"] == DAY_MS)
    assert day["window_start"] == 0 and day["agent_consumed_cm3"] == 5.0
    encode_all("utilisation", final.records + [day])


def test_state_survives_the_changelog() -> None:
    sim = run()
    device = next(iter(sim.device_ids.values()))
    state = _feed([(k, r) for k, r in sim.records if r["device_id"] == device])[0][device]
    text = json.dumps(state.to_dict())
    assert len(text) < 40_000  # a table value, written on every update
    assert UtilisationState.from_dict(json.loads(text)) == state


samples = st.lists(
    st.tuples(st.integers(0, 3 * 240), st.sampled_from(["PRINTING", "IDLE", "COOLING_DOWN", "WARMING_UP"]),
              st.integers(0, 3), st.integers(0, 50)),
    min_size=1, max_size=40, unique_by=lambda x: x[0],
)


def _reference_seconds(hbs: list[tuple[int, str]], start: int, end: int, hold: int) -> dict[str, float]:
    """Second by second: the newest heartbeat at or before it holds for `hold` ms."""
    out = dict.fromkeys(BUCKETS, 0.0)
    for s in range(start, end, 1000):
        before = [(t, b) for t, b in hbs if t <= s]
        t, b = max(before) if before else (-10**12, "unreachable")
        out[b if s - t < hold else "unreachable"] += 1.0
    return out


@settings(max_examples=25, deadline=None)
@given(samples, st.randoms(use_true_random=False))
def test_any_order_within_lateness_gives_the_reference_windows(spec: list[tuple[int, str, int, int]], rnd: Any) -> None:
    small = UtilisationSettings(allowed_lateness_s=120, max_hold_s=45)
    # samples every 15 s or more over ~3 h; every hour window is checked second by second
    records: list[tuple[str, dict[str, Any]]] = [
        ("heartbeat", {"site_id": "s", "device_id": "d", "record_id": f"r{k}", "event_time": k * 15_000,
                       "status": "POWERED_ON", "activity": act, "current_job_id": f"J{job}" if job else "",
                       "layers_done": layers}) for k, act, job, layers in spec]
    records.sort(key=lambda kr: kr[1]["event_time"])
    first, rest = records[0], records[1:]
    keyed = [(r["event_time"] + rnd.randrange(120_000), i, (k, r)) for i, (k, r) in enumerate(rest)]
    order = [first] + [kr for _, _, kr in sorted(keyed)]
    order += [order[rnd.randrange(len(order))] for _ in range(len(order) // 3)]  # redeliveries at the end
    states, latest, _, late = _feed(order, small)
    assert late == []
    last_t = records[-1][1]["event_time"]
    final = advance(states["d"], last_t + 2 * HOUR_MS, small)
    for r in final.records:
        latest[(r["device_id"], r["window_start"], r["window_end"])] = r
    hbs = [(r["event_time"], bucket_of("POWERED_ON", r["activity"])) for _, r in records]
    start = records[0][1]["event_time"] // HOUR_MS * HOUR_MS
    for h in range(start, last_t + 1, HOUR_MS):
        got = latest[("d", h, h + HOUR_MS)]
        ref = _reference_seconds(hbs, h, h + HOUR_MS, 45_000)
        assert {b: got[f"{b}_s"] for b in BUCKETS} == ref


def test_counters_running_ahead_of_heartbeats_close_no_window() -> None:
    """A backlog read topic by topic: three hours of counters before any heartbeat must
    not close windows (that would count the hours unreachable and the heartbeats late)."""
    sim = run(printers=1, seed=11, duration_ms=3 * HOUR_MS, heartbeat_s=60, consumables_s=300)
    counters = [kr for kr in sim.records if kr[0] == "usage_counters"]
    rest = [kr for kr in sim.records if kr[0] != "usage_counters"]
    _, ahead, _, late = _feed(counters + rest)
    _, in_order, _, _ = _feed(sim.records)
    assert late == []
    assert ahead == in_order


def test_many_hours_within_a_long_lateness_are_all_emitted() -> None:
    """With lateness longer than an hour, every passed hour is emitted, not only the first."""
    sim = run(printers=1, seed=11, duration_ms=DAY_MS + 2 * HOUR_MS, heartbeat_s=60, consumables_s=300)
    _, latest, _, _ = _feed(sim.records, UtilisationSettings(allowed_lateness_s=2 * 86_400, max_hold_s=90))
    hours = sorted(s for (_, s, e) in latest if e - s == HOUR_MS)
    assert hours == [START_MS + h * HOUR_MS for h in range(26)]
    # and the day, although none of its hours is final yet, equal to the in-order result
    _, short, _, _ = _feed(sim.records)
    day = next(r for (_, s, e), r in latest.items() if e - s == DAY_MS)
    assert {k: v for k, v in day.items() if k != "record_id"} == {
        k: v for k, v in short[(day["device_id"], START_MS, START_MS + DAY_MS)].items() if k != "record_id"}


def test_a_counter_jumping_faster_than_any_printer_uses_counts_nothing() -> None:
    """A printer re-enrolled with another history (or a swapped board) must not put a year
    of material into one window; a normal reset still counts from 0."""
    from streams.timeline import counter_deltas

    hour = [(0, 100.0), (1_800_000, 101.5), (3_600_000, 4_000.0), (5_400_000, 2.0)]
    assert counter_deltas(hour, max_per_h=50.0) == [(0, 1_800_000, 1.5), (1_800_000, 3_600_000, 0.0), (3_600_000, 5_400_000, 2.0)]
    assert counter_deltas(hour)[1][2] == 3_898.5  # without a bound it would count


def test_counters_a_source_lacks_count_neither_as_consumption_nor_as_a_reset() -> None:
    # usage_counters and agent_system v2: an OPC UA machine has no material or agent counter (null).
    env = {"site_id": "s", "device_id": "d"}
    records: list[tuple[str, dict[str, Any]]] = []
    for i, kg in enumerate([100.0, None, 101.0]):  # a null between two readings is no reset
        records.append(("usage_counters", {**env, "record_id": f"c{i}", "event_time": i * 900_000,
                                           "total_material_consumed_kg": kg}))
    for i, used in enumerate([10.0, None, 12.0]):
        records.append(("agent_system", {**env, "record_id": f"a{i}", "event_time": i * 900_000, "agents": [
            {"agent_type": "FUSING", "agent_used_cm3": used}]}))
    state = _feed(records)[0]["d"]
    assert len(state.materials) == 2 and len(state.agents) == 2
    hour = next(r for r in advance(state, 2 * HOUR_MS, CFG).records if r["window_end"] - r["window_start"] == HOUR_MS)
    assert abs(hour["material_consumed_kg"] - 1.0) < 1e-9
    assert hour["agent_consumed_cm3"] == 2.0
