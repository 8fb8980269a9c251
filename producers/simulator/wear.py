"""Lifetime totals and how consumables wear with them.

A printer keeps `Totals` as of its last transition plus at most one open `Segment` (the
activity running now: warm-up, printing, in-printer cooling). Views ask for
`totals_at(now)`, which adds the open segment's share up to `now`; closing the segment at
a transition adds exactly the same share. So every counter is a pure function of
simulated time, rises monotonically and does not depend on when it is read.
Consumables (printheads, cleaning roll, agent cartridges, air filter) remember the
totals at their installation; their wear is the difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final

from producers.simulator.catalogue import (
    AGENT_CARTRIDGE_CM3,
    CLEANING_ROLL_LAYERS,
    FILTER_LIFE_S,
    PRINTHEAD_LIFE_S,
)
from producers.simulator.model import AgentCartridge, AirFilter, CleaningRoll, Job, Printhead

DAY_MS: Final = 86_400_000
AGENT_PER_TANK_CM3: Final = 15_000.0  # agent through one intermediate tank before it is swapped


@dataclass(slots=True)
class Totals:
    """The usage counters (usage_counters schema) as plain accumulators."""

    jobs: int = 0
    completed_jobs: int = 0
    layers: int = 0
    parts: int = 0
    volume_cm3: float = 0.0
    print_ms: int = 0
    agent_cm3: dict[str, float] = field(default_factory=dict)
    material_kg: float = 0.0
    cooling_ms: int = 0
    lamp_ms: int = 0
    agent_system_ms: int = 0
    system_errors: int = 0

    def copy(self) -> Totals:
        return replace(self, agent_cm3=dict(self.agent_cm3))

    @property
    def agent_total_cm3(self) -> float:
        return sum(self.agent_cm3.values())


@dataclass(frozen=True, slots=True)
class Segment:
    """An activity that accrues totals over time; `job` makes it a print segment, whose
    layer-bound totals follow the layers finished rather than the clock."""

    start_ms: int
    end_ms: int  # planned end; closing earlier accrues only up to the close
    lamp: bool = False
    cooling: bool = False
    agent_system: bool = False
    job: Job | None = None


def accrue(totals: Totals, segment: Segment, at_ms: int) -> None:
    """Add to `totals` what `segment` accrued from its start to `at_ms` (clamped)."""
    elapsed = max(0, min(at_ms, segment.end_ms) - segment.start_ms)
    if segment.lamp:
        totals.lamp_ms += elapsed
    if segment.cooling:
        totals.cooling_ms += elapsed
    if segment.agent_system:
        totals.agent_system_ms += elapsed
    job = segment.job
    if job is None:
        return
    done = job.layers_done(min(at_ms, segment.end_ms))
    totals.print_ms += elapsed
    totals.layers += done
    fraction = done / job.layer_count
    totals.volume_cm3 += job.volume_cm3 * fraction
    totals.material_kg += job.material_kg * fraction
    for agent, planned in job.agent_cm3.items():
        totals.agent_cm3[agent] = totals.agent_cm3.get(agent, 0.0) + planned * fraction


def totals_at(base: Totals, segment: Segment | None, at_ms: int) -> Totals:
    """The totals at `at_ms`: `base` plus the open segment's share (a copy)."""
    out = base.copy()
    if segment is not None:
        accrue(out, segment, at_ms)
    return out


# -- derived counters -------------------------------------------------------------------

def intermediate_tanks_used(totals: Totals) -> int:
    return 2 + int(totals.agent_total_cm3 // AGENT_PER_TANK_CM3)


def printhead_maintenance_cycles(totals: Totals) -> int:
    # the service station wipes the heads every 120 layers and twice per job
    return totals.layers // 120 + 2 * totals.jobs


def carriage_cycles(totals: Totals) -> int:
    # two passes per layer (fusing and recoating) and some for every warm-up
    return 2 * totals.layers + 40 * totals.jobs


# -- consumables ------------------------------------------------------------------------

def printhead_usage_s(head: Printhead, totals: Totals) -> float:
    return head.base_usage_s + (totals.print_ms - head.print_ms_at_install) / 1000.0


def printhead_agent_cm3(head: Printhead, totals: Totals) -> float:
    return head.base_agent_cm3 + head.share * (totals.agent_total_cm3 - head.agent_at_install)


def printhead_status(head: Printhead, totals: Totals, now_ms: int) -> str:
    if head.failed:
        return "FAILED"
    if printhead_usage_s(head, totals) >= 0.9 * PRINTHEAD_LIFE_S:
        return "REPLACE_SOON"
    recent_error = head.last_error_ms is not None and now_ms - head.last_error_ms < DAY_MS
    if head.recovery_level >= 2 or recent_error:
        return "WARNING"
    return "OK"


def warranty_status(head: Printhead, totals: Totals, now_ms: int) -> str:
    if head.non_genuine_notice:
        return "VOID"  # non-genuine agent voids the printhead warranty
    in_date = now_ms // DAY_MS <= head.warranty_expiry_day
    in_life = printhead_usage_s(head, totals) < PRINTHEAD_LIFE_S
    return "IN_WARRANTY" if in_date and in_life else "OUT_OF_WARRANTY"


def roll_usage_pct(roll: CleaningRoll, totals: Totals) -> float:
    return min(100.0, 100.0 * (totals.layers - roll.layers_at_install) / CLEANING_ROLL_LAYERS)


def roll_status(usage_pct: float) -> str:
    if usage_pct >= 100.0:
        return "EMPTY"
    if usage_pct >= 95.0:
        return "VERY_LOW"
    if usage_pct >= 80.0:
        return "LOW"
    return "OK"


def cartridge_level_pct(cartridge: AgentCartridge, totals: Totals) -> float:
    used = totals.agent_cm3.get(cartridge.agent, 0.0) - cartridge.used_at_install
    return max(0.0, 100.0 * (1.0 - used / AGENT_CARTRIDGE_CM3))


def cartridge_status(level_pct: float) -> str:
    if level_pct <= 0.0:
        return "EMPTY"
    if level_pct < 10.0:
        return "VERY_LOW"
    if level_pct < 20.0:
        return "LOW"
    return "OK"


def filter_status(air_filter: AirFilter, totals: Totals) -> str:
    used = (totals.cooling_ms - air_filter.cooling_ms_at_install) / 1000.0 / FILTER_LIFE_S
    if used >= 1.0:
        return "REPLACE_NOW"
    if used >= 0.85:
        return "REPLACE_SOON"
    return "OK"
