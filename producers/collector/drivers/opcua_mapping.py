"""OPC 40540 values -> printer API payloads: pure functions, no I/O (docs/opcua.md).

The OPC UA driver (drivers/opcua.py) reads nodes and hands their values here; what comes
out is shaped as the printer API's JSON, so the device's `DeviceSink` and `RecordBuilder`
build the same record kinds as for the printer API. Fields with no node are left out.

Privacy is an allow-list here, before the schema walk of `RecordBuilder`: the `pick_*`
functions copy only the named fields of an ISA-95 structure or an event (job id, states,
times, layers, material), never a job name (`JobName`), a work master (file names), a
description (user and computer names) or an event's `Message` (a job's event names the
job). A job id is copied as the printer's local id; `RecordBuilder` pseudonymises it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from producers.opcua_model import names

# ISA-95 job states (OPC 10031-4) by their StateText.
RUNNING = "Running"
ALLOWED_TO_START = "AllowedToStart"
_FINISHED = {"Ended": "COMPLETED", "Aborted": None}  # Aborted: the substate says which
_SUBSTATE_STATUS = {
    "Queued": "QUEUED", "Preparing": "PREPARING", "Printing": "PRINTING", "Cooling": "COOLING",
    "Completed": "COMPLETED", "Failed": "FAILED", "Cancelled": "CANCELLED",
}
LAYERS_PLANNED = "LayersPlanned"
RUNS = "Runs"


@dataclass(frozen=True, slots=True)
class JobOrder:
    """The allow-listed fields of one JobOrderList entry."""

    job_id: str
    state: str  # ISA-95 state text: AllowedToStart, Running, ...
    substate: str  # printfleet's: Queued, Preparing, Printing, Cooling ("" when absent)
    layers_planned: int | None


@dataclass(frozen=True, slots=True)
class JobResponse:
    """The allow-listed fields of one JobOrderResponseList entry."""

    job_id: str
    state: str  # Running, Ended, Aborted
    substate: str  # Preparing, Printing, Cooling, Completed, Failed, Cancelled ("")
    started_at: int | None  # ms
    completed_at: int | None  # ms
    layers_planned: int | None
    current_layer: int | None
    material_type: str | None
    material_kg: float | None

    @property
    def finished(self) -> bool:
        return self.state in _FINISHED


@dataclass(frozen=True, slots=True)
class MachineEvent:
    """The allow-listed fields of one alert or notification event."""

    event_id: str  # EventId, hex
    time_ms: int
    code: str
    severity: int  # OPC UA severity 1-1000
    source_name: str


@dataclass(frozen=True, slots=True)
class MachineState:
    """The subscribed state values of one machine; None until first seen."""

    item_state: str | None = None  # MachineryItemState CurrentState text
    operation_mode: str | None = None  # MachineryOperationMode CurrentState text
    warm_up: bool | None = None  # MachineTool IsWarmUp


def ms(value: datetime | None) -> int | None:
    """Epoch milliseconds of an OPC UA DateTime (asyncua gives naive UTC datetimes)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return int(value.timestamp() * 1000)


def text(value: Any) -> str:
    """The text of a LocalizedText, or the string itself; "" for None."""
    if value is None:
        return ""
    return str(getattr(value, "Text", value) or "")


def _state_texts(states: Sequence[Any] | None) -> tuple[str, str]:
    states = list(states or ())
    main = text(states[0].StateText) if states else ""
    sub = text(states[1].StateText) if len(states) > 1 else ""
    return main, sub


def _parameter(params: Iterable[Any] | None, wanted: str) -> Any:
    # Only the parameter asked for by ID is looked at: JobName sits in the same list.
    for param in params or ():
        if getattr(param, "ID", None) == wanted:
            value = getattr(param, "Value", None)
            return getattr(value, "Value", value)
    return None


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def pick_job_order(entry: Any) -> JobOrder:
    """A JobOrderList entry (ISA95JobOrderAndStateDataType) -> its allow-listed fields."""
    order = entry.JobOrder
    state, substate = _state_texts(entry.State)
    return JobOrder(str(order.JobOrderID), state, substate,
                    _int(_parameter(order.JobOrderParameters, LAYERS_PLANNED)))


def pick_job_response(entry: Any) -> JobResponse:
    """A JobOrderResponseList entry (ISA95JobResponseDataType) -> its allow-listed fields."""
    state, substate = _state_texts(entry.JobState)
    runs = _parameter(entry.JobResponseData, RUNS)
    current_layer = _int(getattr(runs[0], "CurrentLayer", None)) if runs else None
    material_type, material_kg = None, None
    actuals = list(entry.MaterialActuals or ())
    if actuals:
        material_type = actuals[0].MaterialDefinitionID or None
        quantity = actuals[0].Quantity
        material_kg = float(quantity) if quantity not in (None, "") else None
    return JobResponse(str(entry.JobOrderID), state, substate, ms(entry.StartTime), ms(entry.EndTime),
                       _int(_parameter(entry.JobResponseData, LAYERS_PLANNED)), current_layer,
                       material_type, material_kg)


def pick_event(event: Any) -> MachineEvent:
    """An alert (ErrorCode) or notification (Identifier) event -> its allow-listed fields.
    `Message` is not read: a job's event names the job there."""
    code = getattr(event, "ErrorCode", None) or getattr(event, "Identifier", None) or ""
    return MachineEvent(bytes(event.EventId).hex(), ms(event.Time) or 0, str(code), int(event.Severity or 0),
                        text(getattr(event, "SourceName", "")))


def severity(value: int) -> str:
    """MachineTool's bands (OPC 40501-1 8.6.2): <= 333 a message, 334-666 a warning, >= 667
    an error; printfleet's convention splits errors at 900 into ERROR and CRITICAL."""
    if value <= 0:
        return "UNKNOWN"
    if value <= 333:
        return "INFO"
    if value <= 666:
        return "WARNING"
    return "ERROR" if value < 900 else "CRITICAL"


def status_activity(state: MachineState, running_substate: str) -> tuple[str, str]:
    """The printer API's (status, activity) for the two state machines, IsWarmUp and the
    running job's substate: docs/opcua.md "Status and activity", read backwards.
    CALIBRATING and UNLOADING_BUILD_UNIT share the Setup mode: Setup reads CALIBRATING."""
    status = {names.ITEM_EXECUTING: "POWERED_ON", names.ITEM_NOT_EXECUTING: "POWERED_ON",
              names.ITEM_NOT_AVAILABLE: "SLEEPING", names.ITEM_OUT_OF_SERVICE: "ERROR"}.get(state.item_state or "", "UNKNOWN")
    if status == "ERROR":
        return status, "PAUSED"
    if state.item_state == names.ITEM_NOT_EXECUTING:
        return status, "IDLE"
    if state.warm_up:
        return status, "WARMING_UP"
    mode = state.operation_mode
    if mode == names.MODE_PROCESSING:
        return status, "COOLING_DOWN" if running_substate == "Cooling" else "PRINTING"
    activity = {names.MODE_MAINTENANCE: "MAINTENANCE", names.MODE_SETUP: "CALIBRATING",
                names.MODE_NONE: "IDLE"}.get(mode or "", "UNKNOWN")
    return status, activity


def running(orders: Sequence[JobOrder]) -> JobOrder | None:
    return next((o for o in orders if o.state == RUNNING), None)


def heartbeat(now_ms: int, state: MachineState, orders: Sequence[JobOrder],
              responses: Sequence[JobResponse]) -> dict[str, Any]:
    """The printer API's status answer from the subscribed values. `recent_layer_duration_s`
    and `cooling_remaining_s` have no node."""
    job = running(orders)
    status, activity = status_activity(state, job.substate if job else "")
    payload: dict[str, Any] = {
        "event_time": now_ms, "status": status, "activity": activity,
        "pending_job_count": sum(1 for o in orders if o.state == ALLOWED_TO_START),
    }
    if job is not None:
        payload["current_job_id"] = job.job_id
        payload["layers_total"] = job.layers_planned
        run = next((r for r in responses if r.job_id == job.job_id and not r.finished), None)
        if run is not None and run.current_layer is not None:
            payload["layers_done"] = run.current_layer
    return payload


def job(response: JobResponse) -> dict[str, Any]:
    """The printer API's job snapshot of a finished job, at its end. `event_time` is the
    end: the snapshot describes the job as it ended."""
    status = _SUBSTATE_STATUS.get(response.substate) or _FINISHED.get(response.state) or "UNKNOWN"
    return {
        "event_time": response.completed_at, "job_id": response.job_id, "completion_status": status,
        "started_at": response.started_at, "completed_at": response.completed_at,
        "layer_count": response.layers_planned, "material_type": response.material_type,
        "material_in_parts_kg": response.material_kg,
    }


def system_event(event: MachineEvent, firmware_version: str) -> dict[str, Any]:
    """The printer API's event. `description` stays empty: the node that would carry it
    (`Message`) names the job for a job's event, so it is not copied."""
    return {
        "event_time": event.time_ms, "event_id": event.event_id, "code": event.code, "description": "",
        "severity": severity(event.severity), "firmware_version": firmware_version,
        "subsystem": event.source_name,
    }


def device_uuid(product_instance_uri: str) -> str:
    """The device id: the uuid of a `urn:uuid:` ProductInstanceUri (as the printer API's
    printer_uuid), else a uuid5 of the URI (globally unique by the DI model's rule)."""
    if product_instance_uri.lower().startswith("urn:uuid:"):
        try:
            return str(uuid.UUID(product_instance_uri[9:]))
        except ValueError:
            pass
    return str(uuid.uuid5(uuid.NAMESPACE_URL, product_instance_uri))


@dataclass(frozen=True, slots=True)
class Identification:
    """The allow-listed Identification values of one machine."""

    product_instance_uri: str
    component_name: str
    product_code: str
    serial_number: str
    software_revision: str


def identity(now_ms: int, ident: Identification, power_on_ms: float | None, server_ms: int | None) -> dict[str, Any]:
    """The printer API's identity answer; `device_date` is the server's CurrentTime (the
    machine's clock as its server tells it). No node: printer_size, disk and memory
    capacity."""
    payload: dict[str, Any] = {
        "event_time": now_ms, "printer_uuid": device_uuid(ident.product_instance_uri),
        "printer_name": ident.component_name, "model_number": ident.product_code,
        "serial_number": ident.serial_number, "firmware_release": ident.software_revision,
    }
    if power_on_ms is not None:
        payload["uptime_s"] = int(power_on_ms // 1000)
    if server_ms is not None:
        payload["device_date"] = server_ms
    return payload


def counters(now_ms: int, operation_ms: float | None, cycles: int | None) -> dict[str, Any]:
    """The printer API's counters: the two of DI's OperationCounters that have a field."""
    payload: dict[str, Any] = {"event_time": now_ms}
    if operation_ms is not None:
        payload["total_print_time_s"] = int(operation_ms // 1000)
    if cycles is not None:
        payload["total_jobs"] = int(cycles)
    return payload


# AM:FeedstockFunction (OPC 40540): the build material and the consumables beside it.
FEEDSTOCK_MAIN = 1
FEEDSTOCK_CONSUMABLE = 3
_AGENT_TYPES = {"FUSING_AGENT": "FUSING", "DETAILING_AGENT": "DETAILING"}


@dataclass(frozen=True, slots=True)
class Feedstock:
    """The allow-listed values of one FeedstockType entry (its `Name` is not read)."""

    identifier: str  # material (build material) or agent type
    function: int  # AM:FeedstockFunction
    remaining: float | None  # RemainingQuantity in its EngineeringUnits: kg of material, % of an agent
    ready: bool | None  # ReadyForProduction


def agent_system(now_ms: int, feedstock: Sequence[Feedstock]) -> dict[str, Any] | None:
    """The printer API's agent supplies from the consumable entries it knows; None when
    the machine lists none. ReadyForProduction says only whether an agent can be used:
    false at 0 % reads EMPTY, anything else UNKNOWN (the level tells LOW apart). No node:
    agent used, build-unit insertions."""
    agents = [{"agent_type": _AGENT_TYPES[f.identifier], "consumable_level_pct": f.remaining,
               "consumable_status": "EMPTY" if f.ready is False and not f.remaining else "UNKNOWN"}
              for f in feedstock if f.function == FEEDSTOCK_CONSUMABLE and f.identifier in _AGENT_TYPES
              and f.remaining is not None]
    return {"event_time": now_ms, "agents": agents} if agents else None


def build_unit(now_ms: int, feedstock: Sequence[Feedstock]) -> dict[str, Any] | None:
    """The printer API's build unit from the main feedstock entry: a unit is installed
    while it is ReadyForProduction, with its material and quantity; None when the machine
    lists no build material. No node: the unit's serial and part number, insertions,
    usage time, recycled share, state."""
    main = next((f for f in feedstock if f.function == FEEDSTOCK_MAIN), None)
    if main is None:
        return None
    unit = {"status": "UNKNOWN", "material_type": main.identifier or None,
            "material_quantity_kg": main.remaining} if main.ready else None
    return {"event_time": now_ms, "installed_build_unit": unit}


def after_cursor(keys: Sequence[tuple[int, str]], cursor: tuple[int, str] | None) -> int:
    """Index of the first entry past `cursor` in `keys` ((time ms, id) in the order the
    device lists them): past the entry with the cursor's id when listed, else the first
    entry later than the cursor's time. Entries at the cursor's time whose id is another
    are kept (the caller drops those it has seen)."""
    if cursor is None:
        return 0
    for index, (_, key) in enumerate(keys):
        if key == cursor[1]:
            return index + 1
    return next((i for i, (t, _) in enumerate(keys) if t >= cursor[0]), len(keys))


def cursor_text(time_ms: int, key: str) -> str:
    return f"{time_ms}/{key}"


def parse_cursor(value: object) -> tuple[int, str] | None:
    """A cursor this driver wrote ("<ms>/<id>"); None for none or another driver's."""
    if not isinstance(value, str) or "/" not in value:
        return None
    time_part, key = value.split("/", 1)
    return (int(time_part), key) if time_part.isdigit() else None
