"""Anonymous benchmarks: the distribution of each KPI across the sites of a cohort.

A cohort is the printers of one model (and build material) in one window. The benchmark
agent collects the printers' `utilisation` records per cohort and calls
`benchmark(cohort, records, settings)`, which returns a `benchmark` record only when at
least `min_sites` distinct sites contributed (default 5; the schema promises at least 5,
so lower values are refused). Each site first becomes one value per KPI (its printers
combined, see `streams.site_rollup`), so a site with many printers counts as one site
and cannot dominate the percentiles. The record carries no site or device identity:
its envelope says ANONYMOUS, and `cohort_id` names only model, material and window.

`site_position(value, cohort_values)` is the site's own percentile rank against the
cohort (for that site's eyes only); `quartile_band(value, record, kpi)` places a value
against a published record.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from schemas import ANONYMOUS
from streams.errors import record_boundary
from streams.ids import content_digest, derived_id
from streams.site_rollup import SiteUtilisation, rollup_records

DAY_MS: Final = 86_400_000
MIN_SITES: Final = 5


@dataclass(frozen=True)
class BenchmarkSettings:
    min_sites: int = MIN_SITES
    # Days a cohort is kept after its day: a site's day is re-sent while the site still
    # holds that day's windows (`SiteWindows.max_windows`, about 3 days), never later.
    keep_days: int = 7

    def __post_init__(self) -> None:
        if self.min_sites < MIN_SITES:
            raise ValueError(f"min_sites must be >= {MIN_SITES} (the benchmark schema promises it)")
        if self.keep_days < 4:
            raise ValueError("keep_days must be >= 4 (a site re-sends days up to 3 days old)")


@dataclass(frozen=True)
class Cohort:
    model_number: str
    material_type: str | None
    window_start: int
    window_end: int

    @property
    def cohort_id(self) -> str:
        return f"{self.model_number}|{self.material_type or '*'}|{self.window_start}|{self.window_end}"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks (the
    common 'linear' method). Raises ValueError for no values."""
    if not values:
        raise ValueError("percentile of nothing")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def percentile_rank(value: float, values: Sequence[float]) -> float:
    """Share of `values` below `value`, ties counting half, in percent."""
    if not values:
        raise ValueError("rank among nothing")
    below = sum(1 for v in values if v < value)
    equal = sum(1 for v in values if v == value)
    return 100.0 * (below + 0.5 * equal) / len(values)


def site_position(site_value: float, cohort_values: Sequence[float]) -> float:
    """Where a site stands in its cohort, as a percentile rank (0-100)."""
    return percentile_rank(site_value, cohort_values)


def quartile_band(value: float, record: Mapping[str, Any]) -> str:
    """A site's utilisation against a published record: "bottom quarter", "lower
    middle", "upper middle" or "top quarter"."""
    if value < record["utilisation_p25_pct"]:
        return "bottom quarter"
    if value < record["utilisation_p50_pct"]:
        return "lower middle"
    if value < record["utilisation_p75_pct"]:
        return "upper middle"
    return "top quarter"


def site_kpis(cohort: Cohort, records: Sequence[Mapping[str, Any]]) -> list[SiteUtilisation]:
    """One roll-up per site from the cohort's printer records (one per printer)."""
    by_site: dict[str, dict[str, dict[str, Any]]] = {}
    for r in records:
        by_site.setdefault(str(r["site_id"]), {})[str(r["device_id"])] = dict(r)
    return [
        rollup_records(site, cohort.window_start, cohort.window_end, list(printers.values()))
        for site, printers in sorted(by_site.items())
    ]


@record_boundary
def benchmark(
    cohort: Cohort, records: Sequence[Mapping[str, Any]], settings: BenchmarkSettings = BenchmarkSettings()
) -> dict[str, Any] | None:
    """The cohort's `benchmark` record, or None when fewer than `min_sites` sites."""
    return from_sites(cohort, site_kpis(cohort, records), settings)


def from_sites(
    cohort: Cohort, sites: Sequence[SiteUtilisation], settings: BenchmarkSettings = BenchmarkSettings()
) -> dict[str, Any] | None:
    """`benchmark` from the sites' own roll-ups of the cohort's printers (one per site):
    what the cohort agent keeps, so its state grows with sites, not printers."""
    if len(sites) < settings.min_sites:
        return None
    days = (cohort.window_end - cohort.window_start) / DAY_MS
    util = [s.utilisation_pct for s in sites]
    density = [s.packing_density_pct for s in sites if s.packing_density_pct is not None]
    recycled = [s.material_recycled_pct for s in sites if s.material_recycled_pct is not None]
    jobs = [s.jobs_completed / s.device_count / days for s in sites]
    body: dict[str, Any] = {
        "site_id": ANONYMOUS,
        "device_id": ANONYMOUS,
        "event_time": cohort.window_end,
        "cohort_id": cohort.cohort_id,
        "model_number": cohort.model_number,
        "material_type": cohort.material_type,
        "window_start": cohort.window_start,
        "window_end": cohort.window_end,
        "site_count": len(sites),
        "device_count": sum(s.device_count for s in sites),
        "utilisation_p25_pct": round(percentile(util, 25), 4),
        "utilisation_p50_pct": round(percentile(util, 50), 4),
        "utilisation_p75_pct": round(percentile(util, 75), 4),
        # A KPI only some sites have is published only if enough sites have it.
        "packing_density_p50_pct": round(percentile(density, 50), 4) if len(density) >= settings.min_sites else None,
        "material_recycled_p50_pct": round(percentile(recycled, 50), 4) if len(recycled) >= settings.min_sites else None,
        "jobs_completed_p50_per_day": round(percentile(jobs, 50), 4),
    }
    return {"record_id": derived_id("benchmark", cohort.cohort_id, content_digest(body)), **body}
