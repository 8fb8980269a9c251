"""The data a simulated printer holds: jobs with their parts, build units, consumables,
and the records it keeps for the collector (events, job snapshots, logs).

Plain mutable records, written only by the state machine (`printer.py`, `lifecycle.py`,
`upkeep.py`) while it processes transitions, and read by `views.py`. A job holds its
whole planned timeline (layer ends, failure time, warnings); views hide what lies after
the moment they render, so one object serves every snapshot of the job.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from dataclasses import dataclass, field


@dataclass(slots=True, eq=False)
class Part:
    part_id: str  # printer-local, e.g. "J000123-P017"
    name: str  # private
    file_name: str  # private
    file_path: str  # private
    created_ms: int
    first_layer: int
    last_layer: int  # inclusive
    bbox_mm: tuple[float, float, float]
    volume_cm3: float
    area_cm2: float
    material_g: float
    processing_start_ms: int | None = None
    processing_end_ms: int | None = None


@dataclass(slots=True, eq=False)
class JobWarning:
    warning_id: str
    kind: str  # key of catalogue.EVENTS
    layer: int
    message: str
    severity: str
    raised_ms: int


@dataclass(slots=True, eq=False)
class Job:
    job_id: str  # printer-local, e.g. "J000123"
    seed: int  # for what views derive lazily (layer data sizes)
    created_ms: int
    name: str  # private
    user: str  # private
    computer: str  # private: the real host name of the submitting computer
    file_name: str  # private
    file_path: str  # private
    application: str
    print_mode: str
    material: str
    layer_count: int
    bbox_mm: tuple[float, float, float]
    volume_cm3: float
    area_cm2: float
    density_pct: float
    material_in_parts_kg: float
    recyclable_kg: float
    parts: list[Part]
    status: str = "QUEUED"
    warmup_start_ms: int | None = None
    print_start_ms: int | None = None
    # ms offset from print start at which each layer ends (planned; see layers_printed)
    layer_ends: array[int] = field(default_factory=lambda: array("i"))
    layers_printed: int = 0  # layers that will have been printed when printing stops
    print_end_ms: int | None = None  # last layer's end, or the failure
    fail_kind: str | None = None  # key of catalogue.EVENTS when the job fails
    cooling_end_ms: int | None = None
    end_ms: int | None = None  # when it became COMPLETED, FAILED or CANCELLED
    build_unit_serial: str | None = None
    warnings: list[JobWarning] = field(default_factory=list)
    agent_cm3: dict[str, float] = field(default_factory=dict)  # planned, whole job
    material_kg: float = 0.0  # powder consumed by the whole job (parts and losses)

    def layers_done(self, at_ms: int) -> int:
        """Layers finished at `at_ms` (0 before printing)."""
        if self.print_start_ms is None or at_ms < self.print_start_ms:
            return 0
        done = bisect_right(self.layer_ends, at_ms - self.print_start_ms)
        return min(done, self.layers_printed)

    def layer_start_ms(self, index: int) -> int:
        assert self.print_start_ms is not None
        return self.print_start_ms + (self.layer_ends[index - 1] if index else 0)

    def layer_end_ms(self, index: int) -> int:
        assert self.print_start_ms is not None
        return self.print_start_ms + self.layer_ends[index]


@dataclass(slots=True, eq=False)
class PrinterSession:
    product_number: str
    serial_number: str
    firmware_release: str
    connected_ms: int
    disconnected_ms: int | None = None


@dataclass(slots=True, eq=False)
class BuildUnit:
    serial: str
    insertions: int
    usage_ms: int  # closed sessions only; views add the open one
    status: str  # BuildUnitStatus symbol
    material: str
    recycled_pct: float = 0.0
    quantity_kg: float = 0.0
    non_genuine_notice: bool = False
    expired_notice: bool = False
    sessions: list[PrinterSession] = field(default_factory=list)
    in_printer: bool = False
    job: Job | None = None
    cooling_end_ms: int | None = None


@dataclass(slots=True, eq=False)
class Printhead:
    slot: int
    uuid: str
    serial: str
    installed_ms: int
    manufactured_day: int
    warranty_expiry_day: int
    base_usage_s: float  # usage before this installation was simulated
    base_agent_cm3: float
    print_ms_at_install: int  # printer totals when installed: the wear since is ours
    agent_at_install: float
    share: float  # share of the printer's agent this head jets
    recovery_level: int = 0
    last_error_code: str | None = None
    last_error_ms: int | None = None
    non_genuine_notice: bool = False
    expired_notice: bool = False
    failed: bool = False
    replace_soon_reported: bool = False


@dataclass(slots=True, eq=False)
class CleaningRoll:
    serial: str
    installed_ms: int
    layers_at_install: int
    low_reported: bool = False


@dataclass(slots=True, eq=False)
class AgentCartridge:
    agent: str
    installed_ms: int
    used_at_install: float  # printer's lifetime use of this agent at installation
    insertions_at_install: int
    low_reported: bool = False


@dataclass(slots=True, eq=False)
class AirFilter:
    installed_ms: int
    cooling_ms_at_install: int
    reported: str = "OK"  # the last FilterStatus an event announced


@dataclass(slots=True, eq=False)
class EventRecord:
    seq: int
    time_ms: int
    event_id: str
    kind: str
    code: str
    description: str
    severity: str
    firmware: str
    subsystem: str
    debug: dict[str, str]
    job_id: str | None


@dataclass(slots=True, eq=False)
class JobSnapshot:
    seq: int
    time_ms: int
    status: str
    job: Job


@dataclass(slots=True, eq=False)
class LogRecord:
    seq: int
    time_ms: int  # when the log was closed
    log_id: str
    log_type: str
    started_ms: int
    firmware: str
    seed: int
    private: tuple[str, ...]  # private strings the raw content quotes (job name, path...)
    lines: int
    # filled on first render: (size_bytes, line_count, sha256); rendering is deterministic
    digest: tuple[int, int, str] | None = None
