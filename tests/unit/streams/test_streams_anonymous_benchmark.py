"""Anonymous benchmarks: only for >= k sites, no identity, percentiles right."""

from __future__ import annotations

import statistics
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from streams_sim import REGISTRY, encode_all

from streams.anonymous_benchmark import (
    BenchmarkSettings,
    Cohort,
    benchmark,
    percentile,
    percentile_rank,
    quartile_band,
    site_kpis,
    site_position,
)
from streams.site_rollup import SiteWindows, apply_utilisation, rollup

DAY = 86_400_000
COHORT = Cohort("M0P44A", "PA12", 1_741_910_400_000, 1_741_910_400_000 + DAY)


def _util(site: str, device: str, printing_h: float, jobs: int = 2, density: float | None = 10.0,
          recycled: float | None = 80.0, agent_cm3: float = 1500.0) -> dict[str, Any]:
    printing = printing_h * 3600
    return {
        "record_id": f"{site}-{device}", "site_id": site, "device_id": device, "event_time": COHORT.window_end,
        "window_start": COHORT.window_start, "window_end": COHORT.window_end, "printing_s": printing,
        "warming_s": 0.0, "cooling_s": 0.0, "idle_s": 86_400 - printing, "error_s": 0.0, "unreachable_s": 0.0,
        "utilisation_pct": 100 * printing / 86_400, "jobs_completed": jobs, "layers_printed": 1000,
        "material_consumed_kg": 3.0, "packing_density_pct": density, "material_recycled_pct": recycled,
        "agent_consumed_cm3": agent_cm3,
    }


def _cohort(sites: int, printers_per_site: int = 2) -> list[dict[str, Any]]:
    return [_util(f"site-{s:02d}", f"dev-{s:02d}-{p}", printing_h=2 + 3 * s + p, jobs=s)
            for s in range(sites) for p in range(printers_per_site)]


def test_no_benchmark_below_k_sites() -> None:
    assert benchmark(COHORT, _cohort(4, printers_per_site=10)) is None  # 40 printers, 4 sites
    assert benchmark(COHORT, _cohort(5)) is not None
    assert benchmark(COHORT, _cohort(5), BenchmarkSettings(min_sites=6)) is None
    with pytest.raises(ValueError):
        BenchmarkSettings(min_sites=3)


def test_benchmark_carries_no_identity() -> None:
    records = _cohort(7)
    record = benchmark(COHORT, records)
    assert record is not None
    assert record["site_id"] == record["device_id"] == "ANONYMOUS"
    encoded = REGISTRY.encode("benchmark", record)
    for r in records:
        assert r["site_id"].encode() not in encoded and r["device_id"].encode() not in encoded
        assert r["site_id"] not in record["cohort_id"]
    assert (record["site_count"], record["device_count"]) == (7, 14)
    encode_all("benchmark", [record])


def test_percentiles_are_over_sites_and_each_site_counts_once() -> None:
    records = _cohort(6) + [_util("site-00", f"extra-{i}", printing_h=23.0) for i in range(20)]
    record = benchmark(COHORT, records)
    assert record is not None
    per_site = sorted(s.utilisation_pct for s in site_kpis(COHORT, records))
    assert len(per_site) == 6
    assert record["utilisation_p50_pct"] == pytest.approx(statistics.median(per_site), abs=1e-3)
    q1, _, q3 = statistics.quantiles(per_site, n=4, method="inclusive")
    assert record["utilisation_p25_pct"] == pytest.approx(q1, abs=1e-3)
    assert record["utilisation_p75_pct"] == pytest.approx(q3, abs=1e-3)
    jobs_per_day = sorted(s.jobs_completed / s.device_count for s in site_kpis(COHORT, records))
    assert record["jobs_completed_p50_per_day"] == pytest.approx(statistics.median(jobs_per_day), abs=1e-3)


def test_kpis_few_sites_have_are_not_published() -> None:
    records = [_util(f"s{i}", f"d{i}", 5.0, density=None if i > 2 else 10.0) for i in range(6)]
    record = benchmark(COHORT, records)
    assert record is not None and record["packing_density_p50_pct"] is None
    assert record["material_recycled_p50_pct"] == 80.0


@given(st.lists(st.floats(0, 100), min_size=1, max_size=30))
def test_percentile_matches_the_inclusive_method(values: list[float]) -> None:
    if len(values) > 1:
        q = statistics.quantiles(values, n=4, method="inclusive")
        assert percentile(values, 25) == pytest.approx(q[0], abs=1e-9)
        assert percentile(values, 75) == pytest.approx(q[2], abs=1e-9)
    assert percentile(values, 0) == min(values) and percentile(values, 100) == max(values)
    assert 0 <= percentile_rank(values[0], values) <= 100


def test_a_site_sees_its_own_position() -> None:
    cohort = [10.0, 20.0, 30.0, 40.0, 50.0]
    assert site_position(30.0, cohort) == 50.0
    assert site_position(55.0, cohort) == 100.0
    record = benchmark(COHORT, _cohort(5))
    assert record is not None
    assert quartile_band(0.0, record) == "bottom quarter" and quartile_band(99.0, record) == "top quarter"


def test_site_rollup_keeps_the_newest_version_of_each_printers_window() -> None:
    state = SiteWindows()
    for r in [_util("site-A", "d1", 10.0), _util("site-A", "d2", 4.0), _util("site-A", "d1", 12.0)]:
        state = apply_utilisation(state, r)
    site = rollup(state, COHORT.window_start, COHORT.window_end)
    assert site is not None and site.device_count == 2
    assert site.seconds["printing"] == 16 * 3600
    assert site.utilisation_pct == pytest.approx(100 * 16 / 48)
    assert site.agent_consumed_cm3 == 2 * 1500.0
    assert SiteWindows.from_dict(state.to_dict()) == state


def test_site_rollup_sums_agent_and_counts_v1_records_as_none() -> None:
    v1 = {k: v for k, v in _util("site-A", "old", 6.0).items() if k != "agent_consumed_cm3"}
    state = SiteWindows()
    for r in [_util("site-A", "d1", 10.0, agent_cm3=812.25), _util("site-A", "d2", 4.0, agent_cm3=0.5), v1]:
        state = apply_utilisation(state, r)
    site = rollup(state, COHORT.window_start, COHORT.window_end)
    assert site is not None and site.device_count == 3
    assert site.agent_consumed_cm3 == 812.75
    # A v1 message read through the registry carries the v2 default instead: the same sum.
    decoded = REGISTRY.decode(REGISTRY.encode("utilisation", v1, version=1)).record
    assert decoded["agent_consumed_cm3"] == 0.0
