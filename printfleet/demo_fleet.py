"""What `printfleet demo` simulates, decided before anything starts (no I/O): which
printers each site has, when the simulated clock starts, and the releases the maker
publishes.

Called only by `printfleet/cmd_demo.py`; its unit tests are tests/unit/printfleet/test_demo_fleet.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from producers.simulator.catalogue import MODELS
from streams.advisories import Release, parse_version

DAY_MS: Final = 86_400_000


@dataclass(frozen=True, slots=True)
class DemoPrinter:
    printer_id: str  # the simulator's (p001...): its base URL
    device_id: str  # the printer's UUID, as the gateway's site directory lists it
    model_number: str


@dataclass(frozen=True, slots=True)
class DemoSite:
    number: int  # 1, 2, ...: the folder site-<number>/
    site_id: str
    printers: tuple[DemoPrinter, ...]

    def models(self) -> str:
        """"M0P44A x3, 4WY25A x1": its printers by model, for the start lines."""
        return ", ".join(f"{m} x{n}" for m, n in sorted(Counter(p.model_number for p in self.printers).items()))


def printers_of(truth: Mapping[str, Any]) -> list[DemoPrinter]:
    """The printers of the simulator's ground truth (`Fleet.truth()`)."""
    return [DemoPrinter(p["printer_id"], p["printer_uuid"], p["model_number"]) for p in truth["printers"]]


def deal(printers: Sequence[DemoPrinter], sites: int, prefix: str = "demo-site") -> list[DemoSite]:
    """The printers shared out to `sites` sites as cards are dealt, model by model: the
    sites' counts differ by one at most, and a model with at least as many printers as
    there are sites has a printer at every site, so each such model is a benchmark
    cohort of every site. Raises ValueError for fewer printers than sites."""
    if sites < 1 or len(printers) < sites:
        raise ValueError(f"{len(printers)} printers cannot make {sites} sites: every site needs a printer")
    hands: list[list[DemoPrinter]] = [[] for _ in range(sites)]
    for i, printer in enumerate(sorted(printers, key=lambda p: (p.model_number, p.printer_id))):
        hands[i % sites].append(printer)
    return [DemoSite(n + 1, f"{prefix}-{n + 1}", tuple(sorted(hand, key=lambda p: p.printer_id)))
            for n, hand in enumerate(hands)]


def shared_models(sites: Sequence[DemoSite]) -> list[str]:
    """The models every site has a printer of: the cohorts a benchmark can come from."""
    common = set.intersection(*({p.model_number for p in s.printers} for s in sites)) if sites else set()
    return sorted(common)


def start_ms(now_ms: int, resumed_ms: int, midnight_after_ms: int) -> int:
    """Where the simulated clock starts: `midnight_after_ms` (simulated) before a UTC
    midnight, the first such moment not before both `now_ms` and where the last run's
    clock stopped. Benchmarks are per UTC day and published once the day has ended, so
    a short demo must see one end; and event time never goes back between runs, so the
    stream worker, whose state outlives a run, does not take a new run's records as late."""
    earliest = max(now_ms, resumed_ms) + midnight_after_ms
    midnight = -(-earliest // DAY_MS) * DAY_MS
    return midnight - midnight_after_ms


def next_release(version: str) -> str:
    """The release after `version`: its minor number up by one ("5.3.2.7" -> "5.4.0")."""
    numbers = list(parse_version(version)[0]) + [0]
    return f"{numbers[0]}.{numbers[1] + 1}.0"


def releases(released_at: int) -> list[Release]:
    """The maker's releases the demo publishes (unsigned): for each simulated model, a
    firmware newer than every firmware its printers run, so each printer is advised."""
    out = []
    for i, model in enumerate(MODELS):
        newest = max(model.firmware, key=parse_version)
        version = next_release(newest)
        out.append(Release(
            model_number=model.model_number, advisory_type="FIRMWARE", version=version, released_at=released_at,
            summary=f"{model.model_name} firmware {version}: steadier fusing lamp control, faster warm-up",
            severity="WARNING" if i == 0 else "INFO", release_notes_url=f"https://printfleet.invalid/releases/{model.model_number}/{version}",
        ))
    return out
