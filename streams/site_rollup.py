"""Utilisation of a whole site: the printers' windows of one site summed.

The site roll-up agent (re-keyed by site) keeps one `SiteWindows` per site and calls
`apply_utilisation(state, record)` for every `utilisation` record; a re-emitted window
replaces the printer's earlier version of it (the newest in topic order wins, and a
replay from an earlier offset ends with that same newest version). `rollup(state, start,
end)` gives the site's `SiteUtilisation` for the dashboard and the benchmarks.
There is no Avro kind for site aggregates yet, so the result is a plain dataclass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.errors import record_boundary
from streams.plain import PlainState

_SECONDS = ("printing_s", "warming_s", "cooling_s", "idle_s", "error_s", "unreachable_s")


@dataclass
class SiteUtilisation(PlainState):
    site_id: str
    window_start: int
    window_end: int
    device_count: int
    seconds: dict[str, float]
    utilisation_pct: float  # printing time over (printers x window length)
    jobs_completed: int
    layers_printed: int
    material_consumed_kg: float
    packing_density_pct: float | None  # mean over jobs (printers weighted by their jobs)
    material_recycled_pct: float | None  # mean over printers weighted by material used
    agent_consumed_cm3: float = 0.0  # all agent types; 0 for printers with v1 records


@dataclass
class SiteWindows(PlainState):
    site_id: str = ""
    # "<start>:<end>" -> device_id -> the printer's latest utilisation record of it
    windows: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    max_windows: int = 96  # 3 days of hours plus their days; older ones are dropped


@record_boundary
def apply_utilisation(state: SiteWindows, record: Mapping[str, Any]) -> SiteWindows:
    """The state with `record` as its printer's version of its window (a new object)."""
    key = f"{record['window_start']}:{record['window_end']}"
    windows = dict(state.windows)
    windows[key] = {**windows.get(key, {}), str(record["device_id"]): dict(record)}
    if len(windows) > state.max_windows:
        for old in sorted(windows, key=lambda k: int(k.split(":")[1]))[: len(windows) - state.max_windows]:
            del windows[old]
    return SiteWindows(site_id=state.site_id or str(record["site_id"]), windows=windows, max_windows=state.max_windows)


def rollup(state: SiteWindows, start: int, end: int) -> SiteUtilisation | None:
    printers = state.windows.get(f"{start}:{end}")
    if not printers:
        return None
    return rollup_records(state.site_id, start, end, list(printers.values()))


def rollup_records(site_id: str, start: int, end: int, records: list[dict[str, Any]]) -> SiteUtilisation:
    """Sum the printers' records of one window (one record per printer)."""
    seconds = {name[:-2]: sum(float(r[name]) for r in records) for name in _SECONDS}
    n = len(records)
    jobs = sum(int(r["jobs_completed"]) for r in records)
    dens = [(float(r["packing_density_pct"]), int(r["jobs_completed"])) for r in records
            if r.get("packing_density_pct") is not None and r["jobs_completed"]]
    recy = [(float(r["material_recycled_pct"]), float(r["material_consumed_kg"])) for r in records
            if r.get("material_recycled_pct") is not None]
    return SiteUtilisation(
        site_id=site_id, window_start=start, window_end=end, device_count=n, seconds=seconds,
        utilisation_pct=100.0 * seconds["printing"] * 1000 / (n * (end - start)),
        jobs_completed=jobs,
        layers_printed=sum(int(r["layers_printed"]) for r in records),
        material_consumed_kg=sum(float(r["material_consumed_kg"]) for r in records),
        # A v1 record (written before the field existed) has none: it counts as 0.
        agent_consumed_cm3=sum(float(r.get("agent_consumed_cm3") or 0.0) for r in records),
        packing_density_pct=_weighted(dens),
        # Weighted by material used; printers that used none (idle window) weigh equally.
        material_recycled_pct=_weighted(recy) or _weighted([(v, 1.0) for v, _ in recy]),
    )


def _weighted(pairs: Sequence[tuple[float, float]]) -> float | None:
    weight = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / weight if weight > 0 else None
