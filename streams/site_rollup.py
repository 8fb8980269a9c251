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
from typing import Any, Final

from streams.errors import record_boundary
from streams.ids import content_digest, derived_id
from streams.plain import PlainState, copied

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


# device_id of a site-level utilisation record (on its own topic): all printers of the site.
SITE_SCOPE: Final = ""


def to_record(u: SiteUtilisation) -> dict[str, Any]:
    """A site roll-up as a `utilisation` record for the site topic; the id is uuid5 of the
    content, so a re-emission with the same content repeats the id."""
    body: dict[str, Any] = {
        "site_id": u.site_id, "device_id": SITE_SCOPE, "event_time": u.window_end,
        "window_start": u.window_start, "window_end": u.window_end,
        **{f"{name}_s": round(v, 3) for name, v in u.seconds.items()},
        "utilisation_pct": round(u.utilisation_pct, 4), "jobs_completed": u.jobs_completed,
        "layers_printed": u.layers_printed, "material_consumed_kg": round(u.material_consumed_kg, 6),
        "agent_consumed_cm3": round(u.agent_consumed_cm3, 3),
        "packing_density_pct": None if u.packing_density_pct is None else round(u.packing_density_pct, 4),
        "material_recycled_pct": None if u.material_recycled_pct is None else round(u.material_recycled_pct, 4),
    }
    return {"record_id": derived_id("site-utilisation", u.site_id, u.window_start, u.window_end, content_digest(body)), **body}


def step(state: SiteWindows, record: Mapping[str, Any]) -> tuple[SiteWindows, dict[str, Any], list[tuple[str, SiteUtilisation]]]:
    """Apply a printer's window (with its `model_number`); returns the new state, the
    site's record of that window, and per printer model the site's roll-up of it (for
    the benchmark cohorts)."""
    s = apply_utilisation(state, record)
    start, end = int(record["window_start"]), int(record["window_end"])
    printers = list(s.windows[f"{start}:{end}"].values())
    return s, to_record(rollup_records(s.site_id, start, end, printers)), by_model(s, start, end)


def by_model(state: SiteWindows, start: int, end: int) -> list[tuple[str, SiteUtilisation]]:
    """Per printer model, the site's roll-up of one window; printers of unknown model
    are in no cohort."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in state.windows.get(f"{start}:{end}", {}).values():
        groups.setdefault(str(r.get("model_number") or ""), []).append(r)
    return [(m, rollup_records(state.site_id, start, end, rs)) for m, rs in sorted(groups.items()) if m]


def set_model(state: SiteWindows, device_id: str, model: str) -> tuple[SiteWindows, list[tuple[int, int]]]:
    """The printer's model on every window of it the site holds, and the windows (start,
    end) where it changed. A printer's identity comes on its own topic and may be read
    after some of its windows were rolled up with no model; this puts them in the cohort."""
    windows = dict(state.windows)
    changed = []
    for key, printers in state.windows.items():
        r = printers.get(device_id)
        if r is not None and r.get("model_number") != model:
            windows[key] = {**printers, device_id: {**r, "model_number": model}}
            start, end = key.split(":")
            changed.append((int(start), int(end)))
    return copied(state, windows=windows), changed
