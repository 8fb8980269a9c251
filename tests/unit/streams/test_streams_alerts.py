"""Alert lifecycle and rules: raise/update/clear once per scenario, no storms, replays."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from streams_sim import REGISTRY, encode_all, run

from schemas.samples import sample_record
from streams.alert_device import AlertDeviceSettings, DeviceAlertState, expire_quiet, process, process_transition
from streams.alert_rules import RuleSettings
from streams.alerts import AlertBook, Condition, observe, open_count
from streams.fleet_state import Transition

ENV = {"site_id": "site-A", "device_id": "dev-1"}


def _event(t: int, code: str, severity: str, subsystem: str, rid: str | None = None, **kw: Any) -> dict[str, Any]:
    return {**ENV, "record_id": rid or f"ev-{code}-{t}", "event_time": t, "event_id": f"E{t}", "code": code,
            "description": kw.pop("description", "Something happened"), "severity": severity,
            "firmware_version": "5.3.0.22", "subsystem": subsystem, "debug_details": {}, **kw}


def _run(steps: list[tuple[str, dict[str, Any]]], state: DeviceAlertState | None = None,
         cfg: AlertDeviceSettings = AlertDeviceSettings()) -> tuple[DeviceAlertState, list[dict[str, Any]]]:
    state = state or DeviceAlertState()
    out: list[dict[str, Any]] = []
    for kind, record in steps:
        state, records = process(state, kind, record, cfg)
        out += records
    encode_all("alert", out)
    return state, out


def _printheads(t: int, **head: Any) -> dict[str, Any]:
    record = sample_record("printhead_system", seed=1)
    heads = [{**h, **head} for h in record["printheads"]]
    return {**record, **ENV, "record_id": f"ph-{t}", "event_time": t, "printheads": heads}


def test_failure_event_raises_with_parts_and_clears_when_the_error_is_cleared() -> None:
    steps = [
        ("printhead_system", _printheads(1_000, part_number="F9K08A")),
        ("system_event", _event(2_000, "0057-0001-0053", "ERROR", "printhead",
                                description="Printhead failure in slot 3; job aborted")),
        ("system_event", _event(9_000, "0001-0002-0001", "INFO", "printer", description="Error cleared")),
    ]
    state, out = _run(steps)
    failure = [r for r in out if r["source_event_code"] == "0057-0001-0053"]
    assert [r["lifecycle"] for r in failure] == ["RAISED", "CLEARED"]
    raised, cleared = failure
    assert raised["severity"] == "ERROR" and raised["notify_service"] is True
    assert raised["recommended_parts"] == [{"part_number": "F9K08A", "description": "Printhead", "quantity": 1}]
    assert "Printhead failure" in raised["summary"] and "confidence" in raised["summary"]
    assert (raised["confidence"], raised["occurrences"]) == (1.0, 1)  # the printer said so, once
    assert (cleared["confidence"], cleared["occurrences"]) == (1.0, 1)
    assert raised["recommended_action"] and raised["raised_at"] == 2_000
    assert cleared["cleared_at"] == 9_000 and cleared["alert_id"] == raised["alert_id"]
    assert open_count(state.book) == 0 or all("0057-0001-0053" not in k for k in state.book.open)
    # a replay of the whole history raises nothing again
    again = _run(steps, state)[1]
    assert again == []


def test_a_thousand_identical_events_are_one_alert_with_a_few_counted_updates() -> None:
    steps = [("system_event", _event(10_000 * i, "0090-0001-0003", "WARNING", "sensor")) for i in range(1000)]
    state, out = _run(steps)
    kinds = Counter(r["lifecycle"] for r in out)
    assert kinds["RAISED"] == 1 and 1 <= kinds["UPDATED"] <= 3 and kinds["CLEARED"] == 0
    assert len({r["alert_id"] for r in out}) == 1
    assert "times since" in out[-1]["summary"]
    assert state.book.open[out[0]["dedup_key"]].occurrences == 1000
    # the count travels as a field: 1 when raised, each update's count, all 1,000 at the end
    assert out[0]["occurrences"] == 1 and out[-1]["occurrences"] == 1000
    counts = [r["occurrences"] for r in out]
    assert counts == sorted(counts) and all(f"({n:,} times since" in r["summary"] for n, r in zip(counts[1:], out[1:]))
    assert {r["confidence"] for r in out} == {1.0}
    _, cleared = expire_quiet(state, 1000 * 10_000 + 7 * 3600_000)
    assert [(c["lifecycle"], c["occurrences"]) for c in cleared] == [("CLEARED", 1000)]
    decoded = REGISTRY.decode(REGISTRY.encode("alert", cleared[0]))
    assert decoded.version == 2 and decoded.record["occurrences"] == 1000
    # the same event redelivered 1,000 times is one occurrence
    same = [("system_event", _event(5, "0090-0001-0003", "WARNING", "sensor", rid="one"))] * 1000
    state2, out2 = _run(same)
    assert [r["lifecycle"] for r in out2] == ["RAISED"]
    assert state2.book.open[out2[0]["dedup_key"]].occurrences == 1
    assert [c["occurrences"] for c in expire_quiet(state2, 10 * 3600_000)[1]] == [1]


def test_quiet_event_alert_clears_by_timer_and_a_new_event_raises_a_new_episode() -> None:
    cfg = AlertDeviceSettings(rules=RuleSettings(event_quiet_s=3600))
    state, out = _run([("system_event", _event(1_000, "0130-0001-0002", "WARNING", "storage"))], cfg=cfg)
    state2, cleared = expire_quiet(state, 1_000 + 3_599_000)
    assert cleared == [] and state2 is state
    state3, cleared = expire_quiet(state, 10_000_000)
    assert [c["lifecycle"] for c in cleared] == ["CLEARED"] and cleared[0]["cleared_at"] == 1_000 + 3_600_000
    encode_all("alert", cleared)
    assert expire_quiet(state3, 20_000_000)[1] == []
    # a replay of the old event does not re-raise; a new one does, as a new episode
    assert _run([("system_event", _event(1_000, "0130-0001-0002", "WARNING", "storage"))], state3, cfg)[1] == []
    new = _run([("system_event", _event(9_000_000, "0130-0001-0002", "WARNING", "storage"))], state3, cfg)[1]
    assert [r["lifecycle"] for r in new] == ["RAISED"] and new[0]["alert_id"] != out[0]["alert_id"]


def test_cleaning_roll_raises_escalates_and_clears_on_replacement() -> None:
    def roll(t: int, pct: float, status: str) -> tuple[str, dict[str, Any]]:
        return "cleaning_roll", {**ENV, "record_id": f"cr-{t}", "event_time": t, "part_number": "F9K09A",
                                 "status": status, "usage_pct": pct}

    _, out = _run([roll(1, 50.0, "OK"), roll(2, 82.0, "LOW"), roll(3, 83.0, "LOW"), roll(4, 96.0, "VERY_LOW"),
                   roll(5, 97.0, "VERY_LOW"), roll(6, 1.0, "OK")])
    roll_alerts = [r for r in out if r["rule_id"] == "cleaning-roll"]
    assert [(r["lifecycle"], r["severity"]) for r in roll_alerts] == [
        ("RAISED", "WARNING"), ("UPDATED", "ERROR"), ("CLEARED", "ERROR")]
    assert roll_alerts[0]["recommended_parts"][0]["part_number"] == "F9K09A"
    assert roll_alerts[1]["notify_service"] is True
    # readings 2..5 were low: four observations, as the escalation and the clear say
    assert [r["occurrences"] for r in roll_alerts] == [1, 3, 4]
    assert all(r["confidence"] == 1.0 for r in roll_alerts)  # usage % reported by the printer


def test_consumable_and_supply_rules() -> None:
    agents = {**sample_record("agent_system", seed=2), **ENV, "record_id": "ag", "event_time": 10, "agents": [
        {"agent_type": "FUSING", "agent_used_cm3": 1.0, "build_unit_insertions": 1, "consumable_status": "LOW",
         "consumable_level_pct": 12.0},
        {"agent_type": "DETAILING", "agent_used_cm3": 1.0, "build_unit_insertions": 1, "consumable_status": "EXPIRED",
         "consumable_level_pct": 60.0}]}
    counters = {**sample_record("usage_counters", seed=2), **ENV, "record_id": "uc", "event_time": 10,
                "filter_status": "REPLACE_NOW", "lamp_usage_s": 14_000 * 3600}
    unit = sample_record("build_unit", seed=2)
    unit = {**unit, **ENV, "record_id": "bu", "event_time": 10, "installed_build_unit": {
        **unit["installed_build_unit"], "non_genuine_material_notice": True}}
    heads = _printheads(10, non_genuine_agent_notice=True, warranty_status="VOID", usage_time_s=1300 * 3600,
                        status="REPLACE_SOON")
    cfg = AlertDeviceSettings(rules=RuleSettings(agent_part_numbers={"FUSING": "3YP17A"}, filter_part_number="FLT-1"))
    _, out = _run([("agent_system", agents), ("usage_counters", counters), ("build_unit", unit),
                   ("printhead_system", heads)], cfg=cfg)
    keys = {r["dedup_key"]: r for r in out}
    assert keys["agent-level:dev-1:FUSING"]["recommended_parts"][0]["part_number"] == "3YP17A"
    assert "supplies:dev-1:agent-DETAILING-expired" in keys
    assert keys["air-filter:dev-1"]["severity"] == "ERROR"
    assert keys["air-filter:dev-1"]["recommended_parts"][0]["part_number"] == "FLT-1"
    assert "lamp-hours:dev-1" in keys and "supplies:dev-1:material-non-genuine" in keys
    for slot in range(len(heads["printheads"])):
        assert f"printhead-life:dev-1:{slot}" in keys and f"supplies:dev-1:printhead-{slot}-non-genuine" in keys
        assert keys[f"printhead-warranty:dev-1:{slot}"]["severity"] == "WARNING"
    assert all(r["lifecycle"] == "RAISED" for r in out)
    # Confidence per rule: what the printer reports is certain; our hours against a typical
    # life are not (the printheads here also report REPLACE_SOON themselves).
    assert keys["lamp-hours:dev-1"]["confidence"] == 0.8
    assert keys["air-filter:dev-1"]["confidence"] == keys["agent-level:dev-1:FUSING"]["confidence"] == 1.0
    assert all(keys[f"printhead-life:dev-1:{slot}"]["confidence"] == 1.0 for slot in range(len(heads["printheads"])))
    assert all(r["occurrences"] == 1 for r in out)


def test_printhead_worn_by_hours_alone_is_less_certain_than_by_its_own_status() -> None:
    by_hours = _run([("printhead_system", _printheads(10, status="OK", usage_time_s=1300 * 3600))])[1]
    by_status = _run([("printhead_system", _printheads(10, status="REPLACE_SOON", usage_time_s=100 * 3600))])[1]
    life = [r for r in by_hours if r["rule_id"] == "printhead-life"]
    assert life and {r["confidence"] for r in life} == {0.8}
    assert "typical printhead life" in life[0]["summary"]
    assert {r["confidence"] for r in by_status if r["rule_id"] == "printhead-life"} == {1.0}
    tuned = AlertDeviceSettings(rules=RuleSettings(nominal_life_confidence=0.6))
    again = _run([("printhead_system", _printheads(10, status="OK", usage_time_s=1300 * 3600))], cfg=tuned)[1]
    assert {r["confidence"] for r in again if r["rule_id"] == "printhead-life"} == {0.6}


def test_offline_raises_and_back_online_clears() -> None:
    state = DeviceAlertState()
    state, raised = process_transition(state, Transition("offline", 90_000, 0), "dev-1", "site-A")
    state, again = process_transition(state, Transition("offline", 90_000, 0), "dev-1", "site-A")
    state, cleared = process_transition(state, Transition("online", 500_000, 500_000), "dev-1", "site-A")
    assert [r["lifecycle"] for r in raised + again + cleared] == ["RAISED", "CLEARED"]
    assert raised[0]["confidence"] == cleared[0]["confidence"] == 1.0  # observed: no heartbeats came
    assert (raised[0]["occurrences"], cleared[0]["occurrences"]) == (1, 1)  # the repeat was a replay
    encode_all("alert", raised + cleared)


conditions = st.lists(
    st.builds(lambda key, active, t, src, sev: Condition("r", f"k{key}", active, t, f"s{src}", severity=sev, countable=True),
              st.integers(0, 2), st.booleans(), st.integers(0, 10_000_000), st.integers(0, 30),
              st.sampled_from(["INFO", "WARNING", "ERROR"])),
    max_size=40,
)


@settings(max_examples=80, deadline=None)
@given(conditions)
def test_applying_any_sequence_twice_equals_once(conds: list[Condition]) -> None:
    book, out = AlertBook(site_id="s", device_id="d"), []
    for c in conds:
        book, records = observe(book, c)
        out += records
    book2, extra = book, []
    for c in conds:
        book2, records = observe(book2, c)
        extra += records
    assert extra == [] and book2.open == book.open
    per_alert: dict[str, list[str]] = defaultdict(list)
    for r in out:
        per_alert[r["alert_id"]].append(r["lifecycle"])
    for steps in per_alert.values():
        assert steps[0] == "RAISED" and "RAISED" not in steps[1:] and "CLEARED" not in steps[:-1]
    assert AlertBook.from_dict(book.to_dict()) == book


def test_simulated_day_has_no_storm_and_valid_lifecycles() -> None:
    sim = run()
    states: dict[str, DeviceAlertState] = {}
    out = []
    for kind, record in sim.records:
        state = states.get(record["device_id"]) or DeviceAlertState()
        states[record["device_id"]], records = process(state, kind, record)
        out += records
    encode_all("alert", out)
    inputs = len(sim.records)
    assert 0 < len(out) < inputs / 50
    per_alert: dict[str, list[str]] = defaultdict(list)
    for r in out:
        per_alert[r["alert_id"]].append(r["lifecycle"])
    for steps in per_alert.values():
        assert steps[0] == "RAISED" and "RAISED" not in steps[1:]
    assert len({r["record_id"] for r in out}) == len(out)
    restored = {d: DeviceAlertState.from_dict(s.to_dict()) for d, s in states.items()}
    assert restored == states


def test_counters_without_a_lamp_counter_say_nothing_of_the_lamp() -> None:
    # usage_counters v2: an OPC UA machine has no lamp counter (null), which is not 0 hours.
    worn = {**sample_record("usage_counters", seed=2), **ENV, "record_id": "uc1", "event_time": 10,
            "lamp_usage_s": 14_000 * 3600}
    unknown = {**worn, "record_id": "uc2", "event_time": 20, "lamp_usage_s": None, "filter_status": "OK"}
    state, out = _run([("usage_counters", worn)])
    assert [r["lifecycle"] for r in out if r["dedup_key"] == "lamp-hours:dev-1"] == ["RAISED"]
    _, after = _run([("usage_counters", unknown)], state)
    assert not [r for r in after if r["dedup_key"] == "lamp-hours:dev-1"]  # still open: neither cleared nor reset
    assert not [r for r in after if "lamp" in r["dedup_key"]]
