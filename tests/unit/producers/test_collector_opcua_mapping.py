"""The OPC UA driver's pure mapping (producers/collector/drivers/opcua_mapping.py): OPC 40540
values -> printer API payloads, built only from the allow-listed fields."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace as NS
from typing import Any

import pytest

from producers.collector.drivers import opcua_mapping as m

SECRET = "Secret Bracket v7"


def _state(main: str, sub: str) -> list[Any]:
    return [NS(StateText=NS(Text=main)), NS(StateText=NS(Text=sub))]


def _param(pid: str, value: Any) -> Any:
    return NS(ID=pid, Value=NS(Value=value))


def _order(job_id: str, main: str, sub: str, layers: int) -> Any:
    order = NS(JobOrderID=job_id, Description=[NS(Text=f"submitted by {SECRET}")],
               WorkMasterID=[NS(ID=f"{SECRET}.3mf", Description=f"/x/{SECRET}.3mf")],
               JobOrderParameters=[_param("JobName", [NS(Text=SECRET)]), _param("LayersPlanned", layers)])
    return NS(JobOrder=order, State=_state(main, sub))


def _response(job_id: str, main: str, sub: str, *, layer: int | None = None) -> Any:
    runs = [NS(Identifier=job_id, CurrentLayer=layer, State=None)]
    return NS(JobResponseID=f"{job_id}-R", JobOrderID=job_id, JobState=_state(main, sub),
              StartTime=datetime(2026, 1, 1, 0, 0, 0), EndTime=datetime(2026, 1, 1, 1, 0, 0),
              JobResponseData=[_param("JobName", [NS(Text=SECRET)]), _param("LayersPlanned", 500), _param("Runs", runs)],
              MaterialActuals=[NS(MaterialDefinitionID="PA12", Quantity="1.250")])


@pytest.mark.parametrize("item,mode,warm,sub,expected", [
    ("NotAvailable", "None", False, "", ("SLEEPING", "IDLE")),
    ("OutOfService", "Processing", False, "Printing", ("ERROR", "PAUSED")),
    ("NotExecuting", "None", False, "", ("POWERED_ON", "IDLE")),
    ("Executing", "Processing", True, "Preparing", ("POWERED_ON", "WARMING_UP")),
    ("Executing", "Processing", False, "Printing", ("POWERED_ON", "PRINTING")),
    ("Executing", "Processing", False, "Cooling", ("POWERED_ON", "COOLING_DOWN")),
    ("Executing", "Maintenance", False, "", ("POWERED_ON", "MAINTENANCE")),
    ("Executing", "Setup", False, "", ("POWERED_ON", "CALIBRATING")),
    (None, None, None, "", ("UNKNOWN", "UNKNOWN")),
])
def test_status_and_activity_read_the_simulators_table_backwards(item: str | None, mode: str | None, warm: bool | None,
                                                                sub: str, expected: tuple[str, str]) -> None:
    assert m.status_activity(m.MachineState(item, mode, warm), sub) == expected


def test_heartbeat_takes_the_running_job_its_layers_and_the_queue() -> None:
    orders = [m.pick_job_order(_order("J2", "Running", "Printing", 500)),
              m.pick_job_order(_order("J3", "AllowedToStart", "Queued", 10)),
              m.pick_job_order(_order("J4", "AllowedToStart", "Queued", 20))]
    responses = [m.pick_job_response(_response("J1", "Ended", "Completed")),
                 m.pick_job_response(_response("J2", "Running", "Printing", layer=42))]
    payload = m.heartbeat(7, m.MachineState("Executing", "Processing", False), orders, responses)
    assert payload == {"event_time": 7, "status": "POWERED_ON", "activity": "PRINTING", "pending_job_count": 2,
                       "current_job_id": "J2", "layers_total": 500, "layers_done": 42}


def test_an_idle_heartbeat_has_no_job_fields() -> None:
    payload = m.heartbeat(7, m.MachineState("NotExecuting", "None", False), [], [])
    assert payload == {"event_time": 7, "status": "POWERED_ON", "activity": "IDLE", "pending_job_count": 0}


@pytest.mark.parametrize("sub,status", [("Completed", "COMPLETED"), ("Failed", "FAILED"), ("Cancelled", "CANCELLED")])
def test_a_finished_job_becomes_the_printer_apis_job_snapshot(sub: str, status: str) -> None:
    response = m.pick_job_response(_response("J1", "Ended" if sub == "Completed" else "Aborted", sub))
    assert response.finished
    assert m.job(response) == {
        "event_time": 1_767_229_200_000, "job_id": "J1", "completion_status": status,
        "started_at": 1_767_225_600_000, "completed_at": 1_767_229_200_000, "layer_count": 500,
        "material_type": "PA12", "material_in_parts_kg": 1.25,
    }


def test_no_private_string_is_picked_from_jobs_or_events() -> None:
    picked = [m.pick_job_order(_order("J2", "Running", "Printing", 5)),
              m.pick_job_response(_response("J1", "Ended", "Completed"))]
    event = NS(EventId=b"\x01\x02", Time=datetime(2026, 1, 1), Severity=800, ErrorCode="E-1", Identifier=None,
               SourceName="lamp", Message=NS(Text=f"lamp failed (job '{SECRET}')"))
    payload = m.system_event(m.pick_event(event), "1.2.3")
    assert SECRET not in repr(picked) + repr(payload)
    assert payload == {"event_time": 1_767_225_600_000, "event_id": "0102", "code": "E-1", "description": "",
                       "severity": "ERROR", "firmware_version": "1.2.3", "subsystem": "lamp"}


@pytest.mark.parametrize("value,expected", [(0, "UNKNOWN"), (200, "INFO"), (333, "INFO"), (500, "WARNING"),
                                            (666, "WARNING"), (667, "ERROR"), (800, "ERROR"), (950, "CRITICAL")])
def test_severity_follows_machine_tools_bands(value: int, expected: str) -> None:
    assert m.severity(value) == expected


def test_the_device_id_is_the_uuid_of_the_product_instance_uri() -> None:
    assert m.device_uuid("urn:uuid:1B4E28BA-2FA1-11D2-883F-0016D3CCA427") == "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    other = m.device_uuid("https://maker.example/machines/4711")
    assert other == m.device_uuid("https://maker.example/machines/4711") != m.device_uuid("https://maker.example/x")


def test_identity_and_counters_carry_what_has_a_node() -> None:
    ident = m.Identification("urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427", "Printer 1", "M1", "SN1", "2.0")
    assert m.identity(5, ident, 90_500.0, 4) == {
        "event_time": 5, "printer_uuid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "printer_name": "Printer 1",
        "model_number": "M1", "serial_number": "SN1", "firmware_release": "2.0", "uptime_s": 90, "device_date": 4,
    }
    assert "device_date" not in m.identity(5, ident, None, None) and "uptime_s" not in m.identity(5, ident, None, None)
    assert m.counters(5, 3_600_000.0, 12) == {"event_time": 5, "total_print_time_s": 3600, "total_jobs": 12}
    assert m.counters(5, None, None) == {"event_time": 5}


def test_after_cursor_resumes_past_the_last_entry_or_its_time() -> None:
    keys = [(10, "a"), (20, "b"), (20, "c"), (30, "d")]
    assert m.after_cursor(keys, None) == 0
    assert m.after_cursor(keys, (20, "b")) == 2
    assert m.after_cursor(keys, (20, "gone")) == 1  # same-time entries kept: the caller drops seen ones
    assert m.after_cursor(keys, (40, "z")) == 4
    assert m.parse_cursor(m.cursor_text(20, "b")) == (20, "b")
    assert m.parse_cursor(17) is None and m.parse_cursor("x/y") is None


FEED = [m.Feedstock("PA12", m.FEEDSTOCK_MAIN, 42.5, True), m.Feedstock("FUSING_AGENT", m.FEEDSTOCK_CONSUMABLE, 0.0, False),
        m.Feedstock("DETAILING_AGENT", m.FEEDSTOCK_CONSUMABLE, 16.3, True),
        m.Feedstock("SOMEONE_ELSES_INK", m.FEEDSTOCK_CONSUMABLE, 50.0, True)]


def test_agents_carry_their_level_and_read_empty_only_at_zero_and_not_ready() -> None:
    payload = m.agent_system(7, FEED)
    assert payload == {"event_time": 7, "agents": [
        {"agent_type": "FUSING", "consumable_level_pct": 0.0, "consumable_status": "EMPTY"},
        {"agent_type": "DETAILING", "consumable_level_pct": 16.3, "consumable_status": "UNKNOWN"}]}
    not_ready = m.agent_system(7, [m.Feedstock("FUSING_AGENT", m.FEEDSTOCK_CONSUMABLE, 30.0, False)])
    assert not_ready is not None and not_ready["agents"][0]["consumable_status"] == "UNKNOWN"
    assert m.agent_system(7, FEED[:1]) is None  # no agent listed: no record


def test_the_build_unit_is_installed_while_the_material_is_ready() -> None:
    assert m.build_unit(7, FEED) == {"event_time": 7, "installed_build_unit": {
        "status": "UNKNOWN", "material_type": "PA12", "material_quantity_kg": 42.5}}
    removed = m.build_unit(8, [m.Feedstock("PA12", m.FEEDSTOCK_MAIN, 0.0, False)])
    assert removed == {"event_time": 8, "installed_build_unit": None}
    assert m.build_unit(7, FEED[1:]) is None  # no build material listed: no record
