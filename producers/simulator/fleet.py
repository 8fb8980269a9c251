"""The simulated fleet: N printers of one site, their ground truth and their faults.

The pure-Python front for tests and the demo (no HTTP):

    fleet = Fleet(SimulatorSettings(printers=20, seed=7, start_ms=...))
    fleet.advance_to(fleet.start_ms + 86_400_000)       # a simulated day
    fleet.read("p001", "status")                         # what GET .../api/v1/status returns
    fleet.read("p001", "events", after=0)
    fleet.truth()                                        # what GET /sim/truth returns

`SimulatorServer` wraps the same object. Printer i depends only on (seed, i): a fleet of
20 and one of 100 built with the same seed share their first 20 printers exactly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Final, Mapping

from producers.simulator import logtext, views
from producers.simulator.errors import BadRequestError, UnknownLogError, UnknownPrinterError
from producers.simulator.jobs import SitePeople
from producers.simulator.printer import Printer
from producers.simulator.settings import SimulatorSettings

FAULT_MODES: Final = ("ok", "dark", "slow", "garbage")
SNAPSHOT_VIEWS: Final[dict[str, Callable[[Printer, int], dict[str, Any]]]] = {
    "identity": views.identity,
    "status": views.status,
    "counters": views.counters,
    "consumables": views.consumables,
}
PAGED_VIEWS: Final[dict[str, Callable[[Printer, int, int], dict[str, Any]]]] = {
    "events": views.events_page,
    "jobs": views.jobs_page,
    "logs": views.logs_page,
}
ENDPOINTS: Final = tuple(SNAPSHOT_VIEWS) + tuple(PAGED_VIEWS)
# Page sizes: (default, maximum). A completed job snapshot can carry 4,600 layers.
PAGE_LIMITS: Final = {"events": (500, 5000), "logs": (500, 5000), "jobs": (5, 50)}


@dataclass(frozen=True, slots=True)
class Fault:
    """How a printer's HTTP API misbehaves: `ok`, `dark` (closes the connection without
    answering), `slow` (answers after `delay_s` real seconds), `garbage` (200 with a body
    that is not JSON)."""

    mode: str = "ok"
    delay_s: float = 0.0

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> Fault:
        """From a control request body; raises BadRequestError."""
        mode = body.get("mode")
        if mode not in FAULT_MODES:
            raise BadRequestError(f"mode must be one of {', '.join(FAULT_MODES)}, not {mode!r}")
        delay = body.get("delay_s", 0.0)
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= 600:
            raise BadRequestError(f"delay_s must be a number of seconds 0..600, not {delay!r}")
        if mode == "slow" and delay == 0:
            delay = 5.0  # a slow printer that is not slow would be a surprising default
        return cls(str(mode), float(delay))

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "delay_s": self.delay_s}


@dataclass(frozen=True, slots=True)
class FleetSummary:
    """One progress line's worth: activities and statuses counted, records emitted."""

    now_ms: int
    activities: Mapping[str, int]
    statuses: Mapping[str, int]
    jobs_completed: int
    jobs_failed: int
    events: int
    job_snapshots: int
    logs: int


class Fleet:
    """N printers advanced together in simulated time. Not thread-safe: one event loop
    (the server's) or one test drives it."""

    def __init__(self, settings: SimulatorSettings, *, start_ms: int | None = None) -> None:
        self.settings = settings
        self.start_ms = start_ms if start_ms is not None else settings.resolved_start_ms()
        self.seed = settings.seed
        people = SitePeople.generate(settings.seed)
        self.printers: dict[str, Printer] = {}
        for index in range(settings.printers):
            printer = Printer(index=index, seed=settings.seed, people=people, start_ms=self.start_ms)
            self.printers[printer.printer_id] = printer
        self.faults: dict[str, Fault] = {}
        self.now_ms = self.start_ms
        self.advance_to(self.start_ms)

    @property
    def printer_ids(self) -> list[str]:
        return list(self.printers)

    def advance_to(self, t: int) -> int:
        """Move every printer to simulated time `t` (ms); earlier `t` is a no-op.
        Returns how many transitions ran."""
        self.now_ms = max(self.now_ms, t)
        return sum(p.advance_to(self.now_ms) for p in self.printers.values())

    def printer(self, printer_id: str) -> Printer:
        try:
            return self.printers[printer_id]
        except KeyError:
            raise UnknownPrinterError(printer_id) from None

    def read(self, printer_id: str, endpoint: str, *, after: int = 0, limit: int | None = None) -> dict[str, Any]:
        """What `GET <base>/api/v1/<endpoint>` returns at the fleet's current time.

        Raises UnknownPrinterError, or BadRequestError for an unknown endpoint or a bad
        `after`/`limit`.
        """
        p = self.printer(printer_id)
        p.advance_to(self.now_ms)
        if endpoint in SNAPSHOT_VIEWS:
            return SNAPSHOT_VIEWS[endpoint](p, self.now_ms)
        if endpoint not in PAGED_VIEWS:
            raise BadRequestError(f"no endpoint {endpoint!r}; one of {', '.join(ENDPOINTS)}")
        default, maximum = PAGE_LIMITS[endpoint]
        limit = default if limit is None else limit
        if after < 0 or not 1 <= limit <= maximum:
            raise BadRequestError(f"after must be >= 0 and limit 1..{maximum}")
        return PAGED_VIEWS[endpoint](p, after, limit)

    def log_content(self, printer_id: str, log_id: str) -> str:
        """The raw (unsanitised) text of a log. Raises UnknownPrinterError/UnknownLogError."""
        p = self.printer(printer_id)
        seq = int(log_id[1:]) if log_id[:1] == "L" and log_id[1:].isdigit() else -1
        log = p.logs.get(seq)
        if log is None:
            raise UnknownLogError(printer_id, log_id)
        return logtext.content(log)

    def set_fault(self, printer_id: str, fault: Fault) -> None:
        self.printer(printer_id)  # raises for an unknown id
        if fault.mode == "ok":
            self.faults.pop(printer_id, None)
        else:
            self.faults[printer_id] = fault

    def fault(self, printer_id: str) -> Fault:
        return self.faults.get(printer_id, Fault())

    def truth(self) -> dict[str, Any]:
        """The ground truth of every printer at the fleet's current time (advances them):
        records emitted so far and every private string each printer holds or held."""
        self.advance_to(self.now_ms)
        return {
            "now_ms": self.now_ms,
            "start_ms": self.start_ms,
            "seed": self.seed,
            "printers": [_truth(p) for p in self.printers.values()],
        }

    def summary(self) -> FleetSummary:
        printers = self.printers.values()
        return FleetSummary(
            now_ms=self.now_ms,
            activities=Counter(p.activity for p in printers),
            statuses=Counter(p.status for p in printers),
            jobs_completed=sum(p.jobs_completed for p in printers),
            jobs_failed=sum(p.jobs_failed for p in printers),
            events=sum(p.events.last_seq for p in printers),
            job_snapshots=sum(p.snapshots.last_seq for p in printers),
            logs=sum(p.logs.last_seq for p in printers),
        )


def _truth(p: Printer) -> dict[str, Any]:
    def stream(last_seq: int, oldest_seq: int) -> dict[str, int]:
        return {"count": last_seq, "max_seq": last_seq, "oldest_kept_seq": oldest_seq}

    return {
        "printer_id": p.printer_id,
        "printer_uuid": p.uuid,
        "serial_number": p.serial,
        "printer_name": p.printer_name,
        "model_number": p.model.model_number,
        "status": p.status,
        "activity": p.activity,
        "events": stream(p.events.last_seq, p.events.oldest_seq),
        "jobs": stream(p.snapshots.last_seq, p.snapshots.oldest_seq),
        "logs": stream(p.logs.last_seq, p.logs.oldest_seq),
        "jobs_submitted": p.jobs_submitted,
        "jobs_completed": p.jobs_completed,
        "jobs_failed": p.jobs_failed,
        "jobs_cancelled": p.jobs_cancelled,
        "private_strings": sorted(p.private),
    }
