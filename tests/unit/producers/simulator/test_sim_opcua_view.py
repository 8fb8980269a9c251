"""The pure half of the simulator's OPC UA side (producers/simulator/opcua_view.py): how a
printer's status, jobs, consumables and events become OPC 40540 values. No servers."""

from __future__ import annotations

import pytest

from producers.simulator import opcua_view as view
from sim_helpers import DAY_MS, START_MS, all_pages, day_fleet


@pytest.mark.parametrize(
    ("status", "activity", "item", "mode", "warm"),
    [
        ("POWERED_ON", "IDLE", "NotExecuting", "None", False),
        ("POWERED_ON", "WARMING_UP", "Executing", "Processing", True),
        ("POWERED_ON", "PRINTING", "Executing", "Processing", False),
        ("POWERED_ON", "COOLING_DOWN", "Executing", "Processing", False),
        ("POWERED_ON", "MAINTENANCE", "Executing", "Maintenance", False),
        ("POWERED_ON", "CALIBRATING", "Executing", "Setup", False),
        ("POWERED_ON", "UNLOADING_BUILD_UNIT", "Executing", "Setup", False),
        ("ERROR", "PAUSED", "OutOfService", "Processing", False),
        ("SLEEPING", "IDLE", "NotAvailable", "None", False),
    ],
)
def test_status_and_activity_map_to_the_two_machinery_state_machines(
    status: str, activity: str, item: str, mode: str, warm: bool
) -> None:
    state = view.machine_state(status, activity)
    assert state == view.MachineState(item, mode, warm)
    # MachineTool's own enumeration says the same: Automatic 1, Setup 2, Service 4, Other 5
    assert state.machine_tool_mode == {"Processing": 1, "Setup": 2, "Maintenance": 4, "None": 5}[mode]


def test_severities_fall_in_the_machine_tool_bands_and_warnings_are_alerts() -> None:
    assert view.SEVERITY["INFO"] <= 333 < view.SEVERITY["WARNING"] <= 666 < view.SEVERITY["ERROR"] <= 1000
    assert view.SEVERITY["CRITICAL"] > view.SEVERITY["ERROR"]
    assert view.ALERT_SEVERITIES == {"WARNING", "ERROR", "CRITICAL"}


def test_identification_is_the_printer_apis_identity() -> None:
    fleet = day_fleet()
    identity = fleet.read("p003", "identity")
    ident = view.identification(fleet.printer("p003"))
    assert (ident.serial_number, ident.product_code, ident.model, ident.software_revision, ident.component_name) == (
        identity["serial_number"], identity["model_number"], identity["model_name"],
        identity["firmware_release"], identity["printer_name"],
    )
    assert ident.product_instance_uri == f"urn:uuid:{identity['printer_uuid']}"


def test_counters_are_the_printer_apis_in_milliseconds_and_jobs() -> None:
    fleet = day_fleet()
    now = fleet.now_ms
    c = view.counters(fleet.printer("p004"), now)
    api = fleet.read("p004", "counters")
    assert c.operation_duration_ms == api["total_print_time_s"] * 1000
    assert c.operation_cycle_counter == api["total_jobs"]
    assert c.power_on_duration_ms == fleet.read("p004", "identity")["uptime_s"] * 1000


def test_job_orders_are_the_running_job_then_the_queue_with_private_strings() -> None:
    fleet = day_fleet()
    for pid in fleet.printer_ids:
        p = fleet.printer(pid)
        orders = view.job_orders(p, fleet.now_ms)
        status = fleet.read(pid, "status")
        assert sum(o.state == view.ALLOWED_TO_START for o in orders) == status["pending_job_count"]
        if p.current is not None:
            first = orders[0]
            assert first.job_order_id == status["current_job_id"] and first.state == view.RUNNING
            assert (first.job_name, first.work_master_id) == (p.current.name, p.current.file_name)
            assert p.current.user in first.description and p.current.computer in first.description


def test_job_responses_hold_every_finished_job_of_the_jobs_endpoint_in_order_of_ending() -> None:
    fleet = day_fleet()
    pid = "p005"
    responses = view.job_responses(fleet.printer(pid), fleet.now_ms)
    ended = {s["job_id"]: s for s in all_pages(fleet, pid, "jobs") if s["completion_status"] in ("COMPLETED", "FAILED", "CANCELLED")}
    finished = [r for r in responses if r.state in (view.ENDED, view.ABORTED)]
    assert {r.job_order_id for r in finished} == set(ended)
    assert [r.end_ms for r in finished] == sorted(r.end_ms for r in finished)  # type: ignore[type-var]
    for r in finished:
        snap = ended[r.job_order_id]
        assert r.substate.upper() == snap["completion_status"]
        assert (r.start_ms, r.end_ms, r.layers_planned) == (snap["started_at"], snap["completed_at"], snap["layer_count"])
        assert r.material_in_parts_kg == snap["material_in_parts_kg"]


def test_events_keep_the_printer_api_sequence_code_and_time_and_name_the_job_in_the_message() -> None:
    fleet = day_fleet()
    pid = "p006"
    p = fleet.printer(pid)
    events = view.new_events(p, 0)
    api = all_pages(fleet, pid, "events")
    assert [(e.seq, e.code, e.time_ms) for e in events] == [(a["seq"], a["code"], a["event_time"]) for a in api]
    jobs = view.known_jobs(p)
    for e, a in zip(events, api):
        assert e.alert == (a["severity"] in view.ALERT_SEVERITIES)
        assert e.message.startswith(a["description"])
        if a["job_id"] in jobs:
            assert f"(job '{jobs[a['job_id']].name}')" in e.message
    assert any("(job '" in e.message for e in events)
    assert view.new_events(p, events[-1].seq) == []
    assert [e.seq for e in view.new_events(p, 5)] == [e.seq for e in events[5:]]


def test_feedstocks_are_the_build_material_and_the_two_agents() -> None:
    fleet = day_fleet()
    p = fleet.printer("p007")
    feed = view.feedstocks(p, fleet.now_ms)
    assert [f.key for f in feed] == ["BuildMaterial", "FusingAgent", "DetailingAgent"]
    consumables = fleet.read("p007", "consumables")
    unit = consumables["build_unit"]["installed_build_unit"]
    assert feed[0].remaining == (unit["material_quantity_kg"] if unit else 0.0) and feed[0].unit == "kg"
    levels = [a["consumable_level_pct"] for a in consumables["agent_system"]["agents"]]
    assert [f.remaining for f in feed[1:]] == levels and {f.unit for f in feed[1:]} == {"%"}
    assert START_MS + DAY_MS == fleet.now_ms


def test_engineering_units_are_unece_codes_as_opc_ua_unit_ids() -> None:
    from producers.simulator.opcua_machine import eu_information

    kg, pct = eu_information("kg"), eu_information("%")
    assert (kg.UnitId, pct.UnitId) == (4933453, 20529)  # "KGM", "P1" (OPC 10000-8 §5.6.3)
    assert kg.NamespaceUri == pct.NamespaceUri == "http://www.opcfoundation.org/UA/units/un/cefact"


def test_the_job_file_is_the_running_then_the_next_then_the_newest_finished_jobs() -> None:
    fleet = day_fleet()
    for pid in fleet.printer_ids:
        p = fleet.printer(pid)
        name = view.work_master_file(p)
        if p.current is not None:
            assert name == p.current.file_name
        elif p.queue:
            assert name == p.queue[0].file_name
        else:
            ended = [j for j in view.known_jobs(p).values() if j.end_ms is not None]
            assert name == max(ended, key=lambda j: j.end_ms or 0).file_name
        assert name in p.private
