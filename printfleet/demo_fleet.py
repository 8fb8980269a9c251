"""What `printfleet demo` simulates, decided before anything starts (no I/O): which
printers each site has (and which of them it reads over OPC UA), when the simulated clock
starts, and the releases the maker publishes.

Called only by `printfleet/cmd_demo.py`; its unit tests are tests/unit/printfleet/test_demo_fleet.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
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
    # The simulator's printer ids of the printers this site reads over OPC UA (a
    # subset of `printers`); the others by the printer API.
    opcua_ids: frozenset[str] = frozenset()

    @property
    def api_printers(self) -> tuple[DemoPrinter, ...]:
        return tuple(p for p in self.printers if p.printer_id not in self.opcua_ids)

    @property
    def opcua_printers(self) -> tuple[DemoPrinter, ...]:
        return tuple(p for p in self.printers if p.printer_id in self.opcua_ids)

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


def gather_opcua(sites: Sequence[DemoSite], opcua_ids: Collection[str]) -> list[DemoSite]:
    """The sites with the OPC UA printers (`opcua_ids`: the simulator serves the last N of
    its fleet, wherever `deal` put them) moved to the first site, so one site is the mixed
    one. Each is swapped with a printer API printer of the same model there: every site
    keeps its size and its count of each model, so the benchmark cohorts stay as dealt.
    One with no such partner stays where it is, and its own site reads it over OPC UA.
    Each site's `opcua_ids` name its OPC UA printers."""
    wanted = set(opcua_ids)
    hands = [list(s.printers) for s in sites]
    for n in range(1, len(hands)):
        for i, printer in enumerate(hands[n]):
            if printer.printer_id not in wanted:
                continue
            partner = next((j for j, p in enumerate(hands[0])
                            if p.model_number == printer.model_number and p.printer_id not in wanted), None)
            if partner is not None:
                hands[n][i], hands[0][partner] = hands[0][partner], printer
    return [replace(site, printers=tuple(sorted(hand, key=lambda p: p.printer_id)),
                    opcua_ids=frozenset(p.printer_id for p in hand if p.printer_id in wanted))
            for site, hand in zip(sites, hands)]


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
