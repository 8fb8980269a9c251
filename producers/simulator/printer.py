"""One simulated printer: its state and the event-driven engine that moves it through
simulated time.

The engine keeps a heap of scheduled transitions. `advance_to(t)` pops and applies every
transition due by `t`, in time order; handlers (`lifecycle.py`, `upkeep.py`) change the
state, draw from the printer's own `random.Random` and schedule later transitions. Between
transitions nothing is stepped: views derive layer progress and wear at any moment from
the planned timelines. Hence a simulated day costs a few dozen transitions per printer,
and the outcome depends only on (seed, printer index), never on when or how often the
printer is read. Called by `Fleet`; views read the attributes, never write them.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from typing import Any, Final

from producers.simulator import initial
from producers.simulator.lifecycle import HANDLERS
from producers.simulator.catalogue import EVENTS, Model
from producers.simulator.history import EVENTS_KEPT, JOB_SNAPSHOTS_KEPT, LOGS_KEPT, SeqLog
from producers.simulator.jobs import SitePeople, private_strings
from producers.simulator.model import (
    AgentCartridge,
    AirFilter,
    BuildUnit,
    CleaningRoll,
    EventRecord,
    Job,
    JobSnapshot,
    LogRecord,
    Printhead,
)
from producers.simulator.wear import Segment, Totals, accrue, totals_at

PRIVATE_DEBUG_SHARE: Final = 0.35  # job events whose debug details quote private data


class Printer:
    """State of one printer, built by `Fleet`. Its simulation begins up to 10 h before
    `start_ms` (so a fleet starts mid-production); nothing has run until the first
    `advance_to`, which the fleet calls with `start_ms`."""

    def __init__(self, *, index: int, seed: int, people: SitePeople, start_ms: int) -> None:
        self.index = index
        self.printer_id = f"p{index + 1:03d}"
        self.people = people
        self.rng = rng = random.Random(f"printfleet-sim/{seed}/{index}")
        self._heap: list[tuple[int, int, str, Any]] = []
        self._tie = 0
        # identity
        ident = initial.identity(rng, index)
        self.model: Model = ident.model
        self.printer_name, self.serial, self.uuid = ident.name, ident.serial, ident.uuid
        self.firmware, self.material = ident.firmware, ident.material
        self.disk_bytes, self.memory_bytes = ident.disk_bytes, ident.memory_bytes
        self.clock_skew_ms = ident.clock_skew_ms
        # Each printer starts up to 10 h before the fleet's start, so that at the start
        # the fleet is spread over all activities instead of warming up in lockstep.
        self.begin_ms = start_ms - rng.randint(0, 10 * 3_600_000)
        self.boot_ms = self.begin_ms - rng.randint(3_600_000, 40 * 86_400_000)
        self.layer_base_s = rng.uniform(*self.model.layer_s)
        self.drift_per_day = rng.uniform(-0.002, 0.004)
        self.submit_mean_ms = int(rng.uniform(6.0, 10.0) * 3_600_000)
        # state
        self.now_ms = self.begin_ms
        self.status, self.activity = "POWERED_ON", "IDLE"
        self.current: Job | None = None
        self.queue: deque[Job] = deque()
        self.inserted: BuildUnit | None = None
        self.unload_pending = False
        self.needs_calibration = False
        self.idle_token = 0
        self.cooling_started_ms = 0
        self.next_job_number = rng.randint(100, 9000)
        # wear
        self.base: Totals = initial.totals(rng, self.begin_ms)
        self.segment: Segment | None = None
        self.total_insertions = self.base.jobs + rng.randint(0, 20)
        self.printheads: list[Printhead] = initial.printheads(rng, self.model, self.base, self.begin_ms)
        self.roll: CleaningRoll = initial.cleaning_roll(rng, self.base, self.begin_ms)
        self.cartridges: dict[str, AgentCartridge] = initial.cartridges(rng, self.base, self.begin_ms, self.total_insertions)
        self.air_filter: AirFilter = initial.air_filter(rng, self.base, self.begin_ms)
        self.build_units: list[BuildUnit] = initial.build_units(rng, self.material, self.begin_ms)
        # what the collector reads, and the ground truth
        self.events: SeqLog[EventRecord] = SeqLog(EVENTS_KEPT)
        self.snapshots: SeqLog[JobSnapshot] = SeqLog(JOB_SNAPSHOTS_KEPT)
        self.logs: SeqLog[LogRecord] = SeqLog(LOGS_KEPT)
        self.jobs_submitted = self.jobs_completed = self.jobs_failed = self.jobs_cancelled = 0
        self.private: set[str] = set()
        initial.schedule_first(self, rng)

    # -- engine -------------------------------------------------------------------------

    def advance_to(self, t: int) -> int:
        """Apply every transition due by `t`; returns how many ran. Never goes back."""
        ran = 0
        heap = self._heap
        while heap and heap[0][0] <= t:
            when, _, kind, payload = heapq.heappop(heap)
            self.now_ms = max(self.now_ms, when)
            HANDLERS[kind](self, when, payload)
            ran += 1
        self.now_ms = max(self.now_ms, t)
        return ran

    def schedule(self, t: int, kind: str, payload: Any = None) -> None:
        """Run handler `kind` at simulated time `t` (never before the current time)."""
        self._tie += 1
        heapq.heappush(self._heap, (max(t, self.now_ms), self._tie, kind, payload))

    def next_transition_ms(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    # -- helpers for handlers -----------------------------------------------------------

    def set_activity(self, t: int, activity: str, segment: Segment | None = None) -> None:
        """Close the open segment at `t` (its totals become base) and start another."""
        if self.segment is not None:
            accrue(self.base, self.segment, t)
        self.segment = segment
        self.activity = activity

    def totals_at(self, t: int) -> Totals:
        return totals_at(self.base, self.segment, t)

    def base_layer_s(self, t: int) -> float:
        days = (t - self.begin_ms) / 86_400_000
        return self.layer_base_s * (1.0 + self.drift_per_day * days)

    def new_job_number(self) -> int:
        self.next_job_number += 1
        return self.next_job_number

    def remember(self, job: Job) -> None:
        self.private.update(private_strings(job))

    def emit(
        self,
        t: int,
        kind: str,
        *,
        job: Job | None = None,
        debug: dict[str, str] | None = None,
        **fmt: object,
    ) -> EventRecord:
        """Append an event of catalogue kind `kind`; `fmt` fills its description."""
        spec = EVENTS[kind]
        details = {"activity": self.activity, "uptime_s": str((t - self.boot_ms) // 1000)}
        if job is not None:
            details["job_id"] = job.job_id
            if self.rng.random() < PRIVATE_DEBUG_SHARE:
                details.update(self._private_debug(job))
        details.update(debug or {})
        seq = self.events.next_seq()
        record = EventRecord(
            seq=seq,
            time_ms=t,
            event_id=f"E{seq:07d}",
            kind=kind,
            code=spec.code,
            description=spec.description.format(**fmt),
            severity=spec.severity,
            firmware=self.firmware,
            subsystem=spec.subsystem,
            debug=details,
            job_id=job.job_id if job else None,
        )
        self.events.append(record)
        return record

    def _private_debug(self, job: Job) -> dict[str, str]:
        # What real firmware leaks into debug dumps: the collector must drop these keys.
        choice = self.rng.randrange(4)
        if choice == 0:
            return {"job_name": job.name}
        if choice == 1:
            return {"spool_path": job.file_path}
        if choice == 2:
            return {"submitted_by": job.user, "workstation": job.computer}
        part = job.parts[self.rng.randrange(len(job.parts))]
        return {"part_name": part.name, "part_file": part.file_path}

    def snapshot(self, t: int, job: Job) -> None:
        """Record that `job` changed state at `t` (the jobs endpoint renders it as of t)."""
        self.snapshots.append(JobSnapshot(self.snapshots.next_seq(), t, job.status, job))

    def add_log(
        self,
        t: int,
        log_type: str,
        started_ms: int,
        *,
        private: tuple[str, ...] = (),
        lines: tuple[int, int] = (40, 200),
    ) -> None:
        """Close a device log at `t`; its content is generated when first read."""
        seq = self.logs.next_seq()
        self.logs.append(
            LogRecord(
                seq=seq,
                time_ms=t,
                log_id=f"L{seq:06d}",
                log_type=log_type,
                started_ms=min(started_ms, t),
                firmware=self.firmware,
                seed=self.rng.getrandbits(48),
                private=private,
                lines=self.rng.randint(*lines),
            )
        )
