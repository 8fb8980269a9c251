"""Each named query on a small scripted fleet, stored through the real sink: the numbers
are known in advance."""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from deploy.settings import StackSettings
from printfleet.cmd_query import execute
from schemas.samples import sample_record
from sinks.clickhouse import SinkSettings
import sink_harness as h

SITE, OTHER = "site-q", "site-other"
A, B = "printer-a", "printer-b"
HOUR, MIN = 3_600_000, 60_000
KINDS = "utilisation,system_event,printhead_system,agent_system,cleaning_roll,build_unit,job,alert,device_identity,benchmark"


def _rec(kind: str, device: str, at: int, site: str = SITE, **fields: Any) -> dict[str, Any]:
    record = copy.deepcopy(sample_record(kind))
    record.update(site_id=site, device_id=device, record_id=str(uuid.uuid4()), event_time=at, **fields)
    return record


def _fleet(now: int) -> dict[str, list[dict[str, Any]]]:
    day = now - now % (24 * HOUR)
    t0 = day if now - day > 3 * HOUR else day - 24 * HOUR  # three whole hours in one day, all past
    zero: dict[str, Any] = dict(warming_s=0.0, cooling_s=0.0, error_s=0.0, unreachable_s=0.0, packing_density_pct=10.0)
    ph_ok = sample_record("printhead_system")["printheads"][0]
    agents = sample_record("agent_system")["agents"]

    def heads(slot1_status: str) -> list[dict[str, Any]]:
        return [ph_ok | {"slot": 0, "status": "OK"}, ph_ok | {"slot": 1, "status": slot1_status}]

    def job(device: str, mode: str, minutes: int, at: int) -> dict[str, Any]:
        return _rec("job", device, at, job_id=uuid.uuid4().hex[:10], print_mode=mode,
                    completion_status="COMPLETED", started_at=at - minutes * MIN, completed_at=at)
    return {
        "utilisation": [
            _rec("utilisation", A, now - 30 * MIN, window_start=t0, window_end=t0 + HOUR, printing_s=1800.0, idle_s=1800.0, jobs_completed=1, layers_printed=100, material_consumed_kg=1.0, **zero),
            # the same window again, later and corrected: only this one counts
            _rec("utilisation", A, now - 20 * MIN, window_start=t0, window_end=t0 + HOUR, printing_s=2700.0, idle_s=900.0, jobs_completed=1, layers_printed=150, material_consumed_kg=1.5, **zero),
            _rec("utilisation", A, now - 20 * MIN, window_start=t0 + HOUR, window_end=t0 + 2 * HOUR, printing_s=3600.0, idle_s=0.0, jobs_completed=2, layers_printed=200, material_consumed_kg=2.0, **zero),
            _rec("utilisation", B, now - 20 * MIN, window_start=t0, window_end=t0 + HOUR, printing_s=0.0, idle_s=3600.0, jobs_completed=0, layers_printed=0, material_consumed_kg=0.0, **zero),
            _rec("utilisation", A, now - 20 * MIN, site=OTHER, window_start=t0, window_end=t0 + HOUR, printing_s=3600.0, idle_s=0.0, jobs_completed=9, layers_printed=9, material_consumed_kg=9.0, **zero),
            # A's day, which the streams emit besides its hours (their sum): counting it too would double A
            _rec("utilisation", A, now - 10 * MIN, window_start=t0, window_end=t0 + 24 * HOUR, printing_s=6300.0, idle_s=80100.0, jobs_completed=3, layers_printed=350, material_consumed_kg=3.5, **zero),
        ],
        "system_event": [
            _rec("system_event", A, now - 5 * MIN, code="E-1", severity="ERROR"),
            _rec("system_event", A, now - 4 * MIN, code="E-1", severity="ERROR"),
            _rec("system_event", B, now - 3 * MIN, code="E-1", severity="ERROR"),
            _rec("system_event", B, now - 2 * MIN, code="E-2", severity="WARNING"),
        ],
        "printhead_system": [
            _rec("printhead_system", A, now - 50 * MIN, printheads=heads("OK")),
            _rec("printhead_system", A, now - 10 * MIN, printheads=heads("REPLACE_SOON")),
        ],
        "agent_system": [
            _rec("agent_system", A, now - 10 * MIN, agents=[agents[0] | {"consumable_status": "OK"}, agents[1] | {"consumable_status": "LOW", "consumable_level_pct": 8.0}]),
        ],
        "cleaning_roll": [
            _rec("cleaning_roll", A, now - 10 * MIN, status="OK", usage_pct=40.0),
            _rec("cleaning_roll", B, now - 10 * MIN, status="VERY_LOW", usage_pct=95.0),
        ],
        "build_unit": [
            _rec("build_unit", d, now - 10 * MIN, installed_build_unit=sample_record("build_unit")["installed_build_unit"] | {"recycled_material_pct": pct, "material_type": "PA12"})
            for d, pct in ((A, 20.0), (B, 40.0))
        ],
        "job": [job(A, "BALANCED", 60, now - 40 * MIN), job(A, "BALANCED", 120, now - 30 * MIN), job(B, "FAST", 30, now - 20 * MIN)],
        "device_identity": [_rec("device_identity", d, now - 60 * MIN, model_number="M0P44A") for d in (A, B)],
        # the cohort of A and B's model that day: the site (58.3 %) stands in its upper middle
        "benchmark": [copy.deepcopy(sample_record("benchmark")) | dict(
            record_id=str(uuid.uuid4()), event_time=now - 5 * MIN, cohort_id=f"M0P44A|{day}", model_number="M0P44A",
            window_start=t0 - t0 % (24 * HOUR), window_end=t0 - t0 % (24 * HOUR) + 24 * HOUR, site_count=7,
            utilisation_p25_pct=20.0, utilisation_p50_pct=50.0, utilisation_p75_pct=70.0)],
        "alert": [
            _rec("alert", A, now - 50 * MIN, alert_id="a1", lifecycle="RAISED", rule_id="R-1", raised_at=now - 50 * MIN, cleared_at=None),
            _rec("alert", A, now - 20 * MIN, alert_id="a1", lifecycle="CLEARED", rule_id="R-1", raised_at=now - 50 * MIN, cleared_at=now - 20 * MIN),
            _rec("alert", B, now - 10 * MIN, alert_id="a2", lifecycle="RAISED", rule_id="R-1", raised_at=now - 10 * MIN, cleared_at=None),
        ],
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fleet(stack: StackSettings) -> AsyncIterator[tuple[SinkSettings, int]]:
    now = int(time.time() * 1000)
    async with h.stored(stack, KINDS, _fleet(now)) as settings:
        yield settings, now


async def _run(fleet: tuple[SinkSettings, int], name: str) -> list[dict[str, Any]]:
    from sinks.queries import get

    settings = fleet[0]
    columns, rows = await execute(settings.clickhouse, get(name).sql, {"site": SITE, "days": 7})
    return [dict(zip(columns, row)) for row in rows]


pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_utilisation_weekly(fleet: tuple[SinkSettings, int]) -> None:
    rows = await _run(fleet, "utilisation-weekly")
    assert len(rows) == 1
    assert rows[0]["printers"] == 2 and rows[0]["jobs_completed"] == 3
    assert rows[0]["utilisation_pct"] == pytest.approx(100 * 6300 / 10800, abs=0.05)
    assert rows[0]["material_kg"] == pytest.approx(3.5)


async def test_kpi_trend(fleet: tuple[SinkSettings, int]) -> None:
    rows = await _run(fleet, "kpi-trend")
    assert len(rows) == 1
    assert rows[0]["layers_printed"] == 350 and rows[0]["jobs_completed"] == 3
    assert rows[0]["packing_density_pct"] == pytest.approx(10.0)


async def test_benchmark_position(fleet: tuple[SinkSettings, int]) -> None:
    rows = await _run(fleet, "benchmark-position")
    assert [(r["model_number"], r["cohort_sites"], r["position"]) for r in rows] == [("M0P44A", 7, "upper middle")]
    assert rows[0]["site_utilisation_pct"] == pytest.approx(100 * 6300 / 10800, abs=0.05)
    assert (rows[0]["cohort_p25_pct"], rows[0]["cohort_p50_pct"], rows[0]["cohort_p75_pct"]) == (20.0, 50.0, 70.0)


async def test_top_event_codes(fleet: tuple[SinkSettings, int]) -> None:
    rows = await _run(fleet, "top-event-codes")
    assert [(r["code"], r["events"], r["printers"]) for r in rows] == [("E-1", 3, 2), ("E-2", 1, 1)]
    assert rows[0]["top_printers"] == f"{A} (2), {B} (1)"


async def test_consumables_and_replacements(fleet: tuple[SinkSettings, int]) -> None:
    heads = await _run(fleet, "consumables")
    assert [(r["device_id"], r["slot"], r["status"]) for r in heads] == [(A, 0, "OK"), (A, 1, "REPLACE_SOON")]
    due = await _run(fleet, "replacements")
    assert [(r["device_id"], r["consumable"], r["status"]) for r in due] == [
        (A, "agent", "LOW"), (A, "printhead", "REPLACE_SOON"), (B, "cleaning roll", "VERY_LOW"),
    ]
    assert due[0]["level_pct"] == pytest.approx(8.0) and due[2]["level_pct"] == pytest.approx(5.0)


async def test_material_recycling(fleet: tuple[SinkSettings, int]) -> None:
    rows = await _run(fleet, "material-recycling")
    assert [(r["material"], r["recycled_pct"], r["reports"]) for r in rows] == [("PA12", 30.0, 2)]


async def test_job_durations(fleet: tuple[SinkSettings, int]) -> None:
    rows = {r["print_mode"]: r for r in await _run(fleet, "job-durations")}
    assert rows["BALANCED"]["jobs"] == 2 and rows["BALANCED"]["max_min"] == pytest.approx(120)
    assert rows["BALANCED"]["p10_min"] == pytest.approx(60)
    assert rows["FAST"]["jobs"] == 1 and rows["FAST"]["p50_min"] == pytest.approx(30)


async def test_alerts(fleet: tuple[SinkSettings, int]) -> None:
    rows = await _run(fleet, "alerts")
    assert len(rows) == 1
    r = rows[0]
    assert (r["rule_id"], r["raised"], r["cleared"], r["open"]) == ("R-1", 2, 1, 1)
    assert r["median_clear_min"] == pytest.approx(30) and r["max_clear_min"] == pytest.approx(30)
