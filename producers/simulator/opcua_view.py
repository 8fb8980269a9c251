"""What a simulated printer shows as an OPC 40540 machine, as plain values: the pure half
of the simulator's OPC UA side (docs/opcua.md has the node-by-node table).

Called by `opcua_server.MachineNodes` on every tick with a printer already advanced to
`now`; the server writes what these functions return into the address space. Nothing
here imports asyncua or changes the printer, so unit tests reach every mapping directly.
The values come from the same views the HTTPS printer API serves (views.py), so both
protocols show one ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from producers.opcua_model.names import (
    ITEM_EXECUTING,
    ITEM_NOT_AVAILABLE,
    ITEM_NOT_EXECUTING,
    ITEM_OUT_OF_SERVICE,
    MODE_MAINTENANCE,
    MODE_NONE,
    MODE_PROCESSING,
    MODE_SETUP,
)
from producers.simulator import views
from producers.simulator.model import EventRecord, Job
from producers.simulator.printer import Printer

MANUFACTURER: Final = "printfleet simulator"
AM_TECHNOLOGY: Final = "Powder Bed Fusion"  # ISO/ASTM 52900 process category of the simulated printers

_MODE_BY_ACTIVITY: Final = {
    "IDLE": MODE_NONE,
    "MAINTENANCE": MODE_MAINTENANCE,
    "CALIBRATING": MODE_SETUP,
    "UNLOADING_BUILD_UNIT": MODE_SETUP,
    "WARMING_UP": MODE_PROCESSING,
    "PRINTING": MODE_PROCESSING,
    "COOLING_DOWN": MODE_PROCESSING,
    "PAUSED": MODE_PROCESSING,
}

# MachineTool's MachineOperationMode enumeration (MT:OperationMode, 40501-1) for the
# Machinery operation mode: Automatic 1, Setup 2, Service 4, Other 5.
_MT_MODE: Final = {MODE_PROCESSING: 1, MODE_SETUP: 2, MODE_MAINTENANCE: 4, MODE_NONE: 5}

# ISA-95 job order states (OPC 10031-4 v2, ISA95JobOrderReceiverObjectType): name, StateNumber.
ALLOWED_TO_START: Final = ("AllowedToStart", 2)
RUNNING: Final = ("Running", 3)
ENDED: Final = ("Ended", 5)
ABORTED: Final = ("Aborted", 6)
_ORDER_STATE: Final = {
    "QUEUED": ALLOWED_TO_START,
    "PREPARING": RUNNING,
    "PRINTING": RUNNING,
    "COOLING": RUNNING,
    "COMPLETED": ENDED,
    "FAILED": ABORTED,
    "CANCELLED": ABORTED,
}
# The job's own state under the ISA-95 one (a second JobState entry; printfleet's
# convention, docs/opcua.md): it keeps FAILED and CANCELLED apart.
_SUBSTATE: Final = {
    "QUEUED": "Queued",
    "PREPARING": "Preparing",
    "PRINTING": "Printing",
    "COOLING": "Cooling",
    "COMPLETED": "Completed",
    "FAILED": "Failed",
    "CANCELLED": "Cancelled",
}
# OPC UA Severity 1..1000 for the printer's severity symbols (40501-1 §8.6.2 bands:
# messages <= 333, warnings 334..666, errors 667..1000).
SEVERITY: Final = {"INFO": 200, "WARNING": 500, "ERROR": 800, "CRITICAL": 950}
ALERT_SEVERITIES: Final = frozenset({"WARNING", "ERROR", "CRITICAL"})
RESULTS_KEPT: Final = 50  # finished jobs kept in JobOrderResponseList, newest last


@dataclass(frozen=True, slots=True)
class Identification:
    manufacturer: str
    model: str  # model name, DI:Model
    product_code: str  # model number, DI:ProductCode
    serial_number: str
    software_revision: str
    product_instance_uri: str  # urn:uuid:<printer_uuid>
    component_name: str  # the user-given printer name
    am_technology: str


@dataclass(frozen=True, slots=True)
class MachineState:
    item_state: str  # MachineryItemState CurrentState
    operation_mode: str  # MachineryOperationMode CurrentState
    is_warm_up: bool

    @property
    def machine_tool_mode(self) -> int:
        """MT:OperationMode (MachineOperationMode) for the same operation mode."""
        return _MT_MODE[self.operation_mode]


@dataclass(frozen=True, slots=True)
class Counters:
    power_on_duration_ms: float  # DI:PowerOnDuration (Duration): uptime since boot
    operation_duration_ms: float  # DI:OperationDuration (Duration): total print time
    operation_cycle_counter: int  # DI:OperationCycleCounter: total jobs


@dataclass(frozen=True, slots=True)
class Feedstock:
    key: str  # browse name of the entry
    identifier: str  # material or agent type
    function: int  # FeedstockFunction: 1 Main, 3 Consumable
    remaining: float
    unit: str  # "kg" or "%"
    ready: bool


@dataclass(frozen=True, slots=True)
class JobOrder:
    """One JobOrderList entry (ISA95JobOrderAndStateDataType), private strings included."""

    job_order_id: str
    state: tuple[str, int]
    substate: str
    layers_planned: int
    job_name: str  # private: JobOrderParameters "JobName"
    work_master_id: str  # private: the file name
    work_master_description: str  # private: the file path
    description: str  # private: who submitted it from which computer


@dataclass(frozen=True, slots=True)
class JobResponse:
    """One JobOrderResponseList entry (ISA95JobResponseDataType)."""

    job_response_id: str
    job_order_id: str
    state: tuple[str, int]
    substate: str
    start_ms: int | None
    end_ms: int | None
    layers_planned: int
    current_layer: int
    material: str
    material_in_parts_kg: float  # as the printer API's job record has it
    job_name: str  # private: JobResponseData "JobName"


@dataclass(frozen=True, slots=True)
class MachineEvent:
    """One printer event as an OPC UA event (AlertType or NotificationEventType)."""

    seq: int
    time_ms: int
    code: str
    severity: int
    alert: bool  # True: AlertType (warnings, errors); False: NotificationEventType
    source_name: str  # the printer's subsystem
    message: str  # private for job events: names the job


def identification(p: Printer) -> Identification:
    return Identification(
        manufacturer=MANUFACTURER,
        model=p.model.model_name,
        product_code=p.model.model_number,
        serial_number=p.serial,
        software_revision=p.firmware,
        product_instance_uri=f"urn:uuid:{p.uuid}",
        component_name=p.printer_name,
        am_technology=AM_TECHNOLOGY,
    )


def machine_state(status: str, activity: str) -> MachineState:
    """The two Machinery state machines from the printer API's status and activity."""
    if status == "SLEEPING":
        item = ITEM_NOT_AVAILABLE  # energy saving: "not available" in 40001-1's words
    elif status == "ERROR":
        item = ITEM_OUT_OF_SERVICE
    elif activity == "IDLE":
        item = ITEM_NOT_EXECUTING
    else:
        item = ITEM_EXECUTING
    mode = _MODE_BY_ACTIVITY.get(activity, MODE_NONE)
    return MachineState(item, mode, activity == "WARMING_UP")


def counters(p: Printer, now: int) -> Counters:
    c = views.counters(p, now)
    uptime_s = views.identity(p, now)["uptime_s"]
    return Counters(
        power_on_duration_ms=float(uptime_s * 1000),
        operation_duration_ms=float(c["total_print_time_s"] * 1000),
        operation_cycle_counter=int(c["total_jobs"]),
    )


def feedstocks(p: Printer, now: int) -> list[Feedstock]:
    """The build material (of the inserted build unit) and the two agents. Always three
    entries, so the list's nodes never change: an absent build unit shows 0 kg, not ready."""
    c = views.consumables(p, now)
    unit = c["build_unit"]["installed_build_unit"]
    out = [
        Feedstock(
            key="BuildMaterial",
            identifier=unit["material_type"] if unit else p.material,
            function=1,
            remaining=float(unit["material_quantity_kg"]) if unit else 0.0,
            unit="kg",
            ready=unit is not None,
        )
    ]
    for agent in c["agent_system"]["agents"]:
        out.append(
            Feedstock(
                key=f"{agent['agent_type'].capitalize()}Agent",
                identifier=f"{agent['agent_type']}_AGENT",
                function=3,
                remaining=float(agent["consumable_level_pct"]),
                unit="%",
                ready=agent["consumable_status"] != "EMPTY",
            )
        )
    return out


def job_orders(p: Printer, now: int) -> list[JobOrder]:
    """JobOrderList: the running job first, then the queue in order."""
    jobs = ([p.current] if p.current is not None else []) + list(p.queue)
    return [_order(job) for job in jobs]


def _order(job: Job) -> JobOrder:
    return JobOrder(
        job_order_id=job.job_id,
        state=_ORDER_STATE[job.status],
        substate=_SUBSTATE[job.status],
        layers_planned=job.layer_count,
        job_name=job.name,
        work_master_id=job.file_name,
        work_master_description=job.file_path,
        description=f"submitted by {job.user} from {job.computer}",
    )


def work_master_file(p: Printer) -> str | None:
    """The file name of the job file the machine holds: the running job's, else the
    next queued one's, else the newest finished job's; None before any job."""
    if p.current is not None:
        return p.current.file_name
    if p.queue:
        return p.queue[0].file_name
    finished = [j for j in known_jobs(p).values() if j.end_ms is not None]
    return max(finished, key=lambda j: (j.end_ms or 0, j.job_id)).file_name if finished else None


def known_jobs(p: Printer) -> dict[str, Job]:
    """Every job the printer still knows (job snapshots kept, queue, current) by id."""
    jobs = {s.job.job_id: s.job for s in p.snapshots.after(p.snapshots.oldest_seq - 1, len(p.snapshots))}
    for job in list(p.queue) + ([p.current] if p.current is not None else []):
        jobs[job.job_id] = job
    return jobs


def job_responses(p: Printer, now: int) -> list[JobResponse]:
    """JobOrderResponseList: the newest RESULTS_KEPT finished jobs (in the order they
    ended), then the running one. A finished job stays, so a client that missed its end
    reads it here after a reconnect."""
    jobs = known_jobs(p)
    finished = sorted(
        (j for j in jobs.values() if j.end_ms is not None and j.status in ("COMPLETED", "FAILED", "CANCELLED")),
        key=lambda j: (j.end_ms or 0, j.job_id),
    )[-RESULTS_KEPT:]
    running = [p.current] if p.current is not None and p.current.warmup_start_ms is not None else []
    return [_response(j, now) for j in finished + running]


def _response(job: Job, now: int) -> JobResponse:
    return JobResponse(
        job_response_id=f"{job.job_id}-R",
        job_order_id=job.job_id,
        state=_ORDER_STATE[job.status],
        substate=_SUBSTATE[job.status],
        start_ms=job.print_start_ms if job.print_start_ms is not None and job.print_start_ms <= now else None,
        end_ms=job.end_ms,
        layers_planned=job.layer_count,
        current_layer=job.layers_done(now),
        material=job.material,
        material_in_parts_kg=job.material_in_parts_kg,
        job_name=job.name,
    )


def machine_event(e: EventRecord, jobs: dict[str, Job]) -> MachineEvent:
    """An event of the printer API as an OPC UA event. The message is the event's
    description, and for a job's event it names the job (a private string, as real
    machines' messages do: the collector must not copy Message)."""
    message = e.description
    job = jobs.get(e.job_id) if e.job_id else None
    if job is not None:
        message = f"{message} (job '{job.name}')"
    return MachineEvent(
        seq=e.seq,
        time_ms=e.time_ms,
        code=e.code,
        severity=SEVERITY.get(e.severity, 500),
        alert=e.severity in ALERT_SEVERITIES,
        source_name=e.subsystem,
        message=message,
    )


def new_events(p: Printer, after_seq: int) -> list[MachineEvent]:
    """Events with seq > `after_seq` still kept by the printer, oldest first."""
    entries = p.events.after(after_seq, len(p.events))
    if not entries:
        return []
    jobs = known_jobs(p)
    return [machine_event(e, jobs) for e in entries]
