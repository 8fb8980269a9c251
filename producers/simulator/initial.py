"""What a printer is, and what it has been through, when the simulation picks it up:
identity, lifetime counters, installed consumables, its build units, first transitions.

Called once by `Printer.__init__` with the printer's own generator; the draws happen in
a fixed order, so the same (seed, index) always gives the same printer.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from producers.simulator.catalogue import (
    AGENT_CARTRIDGE_CM3,
    AGENT_TYPES,
    CLEANING_ROLL_LAYERS,
    FILTER_LIFE_S,
    MATERIALS,
    MODELS,
    PERIODIC_LOGS,
    PRINTHEAD_LIFE_S,
    PRINTHEAD_SLOTS,
    Model,
)
from producers.simulator.model import (
    AgentCartridge,
    AirFilter,
    BuildUnit,
    CleaningRoll,
    PrinterSession,
    Printhead,
)
from producers.simulator.wear import DAY_MS, Totals

if TYPE_CHECKING:
    from producers.simulator.printer import Printer

_ALNUM: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
HOUR_MS: Final = 3_600_000


@dataclass(frozen=True, slots=True)
class Identity:
    model: Model
    name: str
    serial: str
    uuid: str
    firmware: str
    material: str
    disk_bytes: int
    memory_bytes: int
    clock_skew_ms: int


def code(rng: random.Random, prefix: str, length: int) -> str:
    return prefix + "".join(rng.choice(_ALNUM) for _ in range(length))


def new_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def identity(rng: random.Random, index: int) -> Identity:
    model = MODELS[0] if rng.random() < 0.65 else MODELS[1]
    return Identity(
        model=model,
        name=f"JF{model.model_name[-4:]}-H{index // 8 + 1}-{index % 8 + 1:02d}",
        serial=code(rng, "SG", 8),
        uuid=new_uuid(rng),
        firmware=rng.choice(model.firmware),
        material=rng.choice(MATERIALS),
        disk_bytes=rng.choice((512, 1024)) * 1_000_000_000,
        memory_bytes=rng.choice((32, 64)) * 1024**3,
        clock_skew_ms=rng.randint(-90_000, 90_000),
    )


def totals(rng: random.Random, begin_ms: int) -> Totals:
    """Lifetime counters of a printer in service for a few months to a few years."""
    jobs = int(rng.uniform(60, 900) * rng.uniform(1.5, 3.0))
    layers = jobs * rng.randint(1500, 2100)
    print_ms = int(layers * rng.uniform(10.0, 11.5) * 1000)
    return Totals(
        jobs=jobs,
        completed_jobs=int(jobs * rng.uniform(0.9, 0.96)),
        layers=layers,
        parts=jobs * rng.randint(60, 110),
        volume_cm3=round(jobs * rng.uniform(350.0, 600.0), 1),
        print_ms=print_ms,
        agent_cm3={"FUSING": round(jobs * rng.uniform(380.0, 520.0), 1), "DETAILING": round(jobs * rng.uniform(250.0, 350.0), 1)},
        material_kg=round(jobs * rng.uniform(2.0, 3.2), 2),
        cooling_ms=int(print_ms * rng.uniform(1.3, 1.5)),
        lamp_ms=int(print_ms * rng.uniform(1.05, 1.12)),
        agent_system_ms=int(print_ms * rng.uniform(1.1, 1.2)),
        system_errors=int(jobs * rng.uniform(0.02, 0.06)),
    )


def printheads(rng: random.Random, model: Model, base: Totals, begin_ms: int) -> list[Printhead]:
    return [new_printhead(rng, model, slot, base, begin_ms, history=True) for slot in range(PRINTHEAD_SLOTS)]


def new_printhead(
    rng: random.Random, model: Model, slot: int, base: Totals, at_ms: int, *, history: bool
) -> Printhead:
    """A printhead installed at `at_ms`, or (with `history`) one installed before and
    worn since."""
    age_days = rng.uniform(1.0, 90.0) if history else 0.0
    usage = min(0.93 * PRINTHEAD_LIFE_S, age_days * 86_400 * rng.uniform(0.35, 0.55))
    installed = at_ms - int(age_days * DAY_MS)
    install_day = installed // DAY_MS
    return Printhead(
        slot=slot,
        uuid=new_uuid(rng),
        serial=code(rng, "PH", 10),
        installed_ms=installed,
        manufactured_day=install_day - rng.randint(30, 240),
        warranty_expiry_day=install_day + 180,
        base_usage_s=round(usage, 0),
        base_agent_cm3=round(usage / 3600.0 * rng.uniform(9.0, 12.0), 1),
        print_ms_at_install=base.print_ms,
        agent_at_install=base.agent_total_cm3,
        share=rng.uniform(0.9, 1.1) / PRINTHEAD_SLOTS,
        non_genuine_notice=history and rng.random() < 0.04,
        expired_notice=history and rng.random() < 0.04,
    )


def cleaning_roll(rng: random.Random, base: Totals, at_ms: int, *, used: bool = True) -> CleaningRoll:
    worn = int(rng.uniform(0.0, 0.85) * CLEANING_ROLL_LAYERS) if used else 0
    return CleaningRoll(
        serial=code(rng, "CR", 8),
        installed_ms=at_ms - (rng.randint(0, 6 * DAY_MS) if used else 0),
        layers_at_install=base.layers - worn,
    )


def cartridges(rng: random.Random, base: Totals, at_ms: int, insertions: int) -> dict[str, AgentCartridge]:
    return {
        agent: AgentCartridge(
            agent=agent,
            installed_ms=at_ms - rng.randint(0, 4 * DAY_MS),
            used_at_install=base.agent_cm3.get(agent, 0.0) - rng.uniform(0.0, 0.8) * AGENT_CARTRIDGE_CM3,
            insertions_at_install=insertions - rng.randint(0, 6),
        )
        for agent in AGENT_TYPES
    }


def air_filter(rng: random.Random, base: Totals, at_ms: int) -> AirFilter:
    used_ms = int(rng.uniform(0.0, 0.9) * FILTER_LIFE_S * 1000)
    return AirFilter(installed_ms=at_ms - used_ms, cooling_ms_at_install=base.cooling_ms - used_ms)


def build_units(rng: random.Random, material: str, begin_ms: int) -> list[BuildUnit]:
    """Two or three build units, each with sessions at other printers of the site."""
    units = []
    for _ in range(rng.choice((2, 2, 3))):
        insertions = rng.randint(20, 400)
        unit = BuildUnit(
            serial=code(rng, "BU", 8),
            insertions=insertions,
            usage_ms=insertions * rng.randint(7, 10) * HOUR_MS,
            status="EMPTY",
            material=material,
            non_genuine_notice=rng.random() < 0.03,
            expired_notice=rng.random() < 0.03,
        )
        t = begin_ms - rng.randint(5, 60) * DAY_MS
        for _ in range(rng.randint(1, 4)):
            model = rng.choice(MODELS)
            stay = rng.randint(6, 30) * HOUR_MS
            unit.sessions.append(
                PrinterSession(
                    product_number=model.model_number,
                    serial_number=code(rng, "SG", 8),
                    firmware_release=rng.choice(model.firmware),
                    connected_ms=t,
                    disconnected_ms=t + stay,
                )
            )
            t += stay + rng.randint(1, 5) * DAY_MS
        units.append(unit)
    return units


def schedule_first(printer: Printer, rng: random.Random) -> None:
    """A few jobs waiting at the start, the submission stream, background events and
    the periodic logs."""
    t = printer.begin_ms
    for _ in range(rng.randint(1, 3)):
        printer.schedule(t, "submit", "initial")
    printer.schedule(t + int(rng.expovariate(1.0 / printer.submit_mean_ms)), "submit")
    printer.schedule(t + int(rng.expovariate(1.0 / (2.5 * HOUR_MS))), "background")
    for log_type, hours in PERIODIC_LOGS.items():
        printer.schedule(t + int(rng.uniform(0.0, hours) * HOUR_MS), "periodic_log", log_type)
