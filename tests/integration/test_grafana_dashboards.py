"""Every query of the Grafana dashboards (deploy/grafana/dashboards), expanded as Grafana
and the ClickHouse plugin expand it (`deploy.grafana`), runs on the real ClickHouse that
the real sink filled with utilisation and alert records of two sites, and returns rows
with the columns its panel shows: for all sites and for one (then only that site's)."""

from __future__ import annotations

import copy
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

import sink_harness as h
from deploy import grafana
from deploy.grafana import ALL, FORMAT_TIME_SERIES, Target, TimeRange
from deploy.settings import StackSettings
from printfleet.cmd_query import execute
from schemas.samples import sample_record
from sinks.clickhouse import SinkSettings

SITE, OTHER = "site-graf-a", "site-graf-b"
HOUR, MIN = 3_600_000, 60_000
PARTS = [{"part_number": "F9K08A", "description": "Printhead", "quantity": 1},
         {"part_number": "3ED59A", "description": "Cleaning roll", "quantity": 2}]


def _rec(kind: str, site: str, device: str, at: int, **fields: Any) -> dict[str, Any]:
    record = copy.deepcopy(sample_record(kind))
    record.update(site_id=site, device_id=device, record_id=str(uuid.uuid4()), event_time=at, **fields)
    return record


def _fleet(now: int) -> dict[str, list[dict[str, Any]]]:
    hour = now - now % HOUR
    zero: dict[str, Any] = dict(warming_s=0.0, cooling_s=0.0, error_s=0.0, unreachable_s=0.0, packing_density_pct=10.0)

    def window(site: str, device: str, start: int, printing: float, at: int | None = None) -> dict[str, Any]:
        return _rec("utilisation", site, device, at or start + HOUR + MIN, window_start=start, window_end=start + HOUR,
                    printing_s=printing, idle_s=3600.0 - printing, jobs_completed=1, layers_printed=10,
                    material_consumed_kg=0.5, **zero)

    def alert(site: str, device: str, alert_id: str, lifecycle: str, at: int, **fields: Any) -> dict[str, Any]:
        values: dict[str, Any] = dict(alert_id=alert_id, dedup_key=f"k:{alert_id}", lifecycle=lifecycle, rule_id="printhead-life",
                                      raised_at=now - 3 * HOUR, cleared_at=None, predicted_failure_at=None,
                                      recommended_parts=[], severity="ERROR")
        values.update(fields)
        return _rec("alert", site, device, at, **values)

    return {
        "utilisation": [
            window(SITE, "a-1", hour - 3 * HOUR, 900.0, at=hour - 2 * HOUR),
            window(SITE, "a-1", hour - 3 * HOUR, 1800.0, at=hour - HOUR),  # the same window, corrected: this one counts
            window(SITE, "a-1", hour - 2 * HOUR, 3600.0),
            window(SITE, "a-2", hour - 2 * HOUR, 0.0),
            window(OTHER, "b-1", hour - 2 * HOUR, 3600.0),
            # a-1's day (the streams emit it besides the hours): the dashboards leave it out
            _rec("utilisation", SITE, "a-1", now - MIN, window_start=hour - 24 * HOUR, window_end=hour, printing_s=5400.0,
                 idle_s=80_000.0, jobs_completed=2, layers_printed=20, material_consumed_kg=1.0, **zero),
        ],
        "alert": [
            alert(SITE, "a-1", "ga1", "RAISED", now - 3 * HOUR, recommended_parts=PARTS),
            alert(SITE, "a-1", "ga1", "UPDATED", now - 2 * HOUR, recommended_parts=PARTS, occurrences=3),
            alert(SITE, "a-2", "ga2", "RAISED", now - 2 * HOUR, raised_at=now - 2 * HOUR, severity="WARNING",
                  rule_id="printhead-wear", predicted_failure_at=now + 48 * HOUR, confidence=0.8),
            alert(SITE, "a-2", "ga3", "RAISED", now - 90 * MIN, raised_at=now - 90 * MIN, rule_id="system-event"),
            alert(SITE, "a-2", "ga3", "CLEARED", now - 30 * MIN, raised_at=now - 90 * MIN, rule_id="system-event",
                  cleared_at=now - 30 * MIN),
            alert(OTHER, "b-1", "gb1", "RAISED", now - HOUR, raised_at=now - HOUR, severity="CRITICAL", rule_id="system-event"),
        ],
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def filled(stack: StackSettings) -> AsyncIterator[tuple[SinkSettings, int]]:
    now = int(time.time() * 1000)
    async with h.stored(stack, "utilisation,alert", _fleet(now)) as settings:
        yield settings, now


pytestmark = pytest.mark.asyncio(loop_scope="module")

TARGETS = [(path.name, target) for path in grafana.dashboard_files() for target in grafana.targets(grafana.load(path))]


def _range(now: int) -> TimeRange:
    # Last 7 days, as a panel 1,000 px wide asks for it (Grafana's interval: range / width).
    return TimeRange(now - 7 * 24 * HOUR, now + MIN, 7 * 24 * HOUR // 1000)


async def _run(settings: SinkSettings, sql: str) -> list[dict[str, Any]]:
    columns, rows = await execute(settings.clickhouse, sql, None)
    assert columns, sql
    return [dict(zip(columns, row)) for row in rows]


async def _sites(settings: SinkSettings, target: Target, now: int) -> list[str]:
    """The $site variable's options, from its own query, as Grafana loads them."""
    path = next(p for p in grafana.dashboard_files() if grafana.load(p)["uid"] == target.dashboard)
    sql = grafana.expand(grafana.variable_queries(grafana.load(path))["site"], {}, {}, _range(now))
    return [str(next(iter(row.values()))) for row in await _run(settings, sql)]


def _check_columns(target: Target, rows: list[dict[str, Any]]) -> None:
    where = f"{target.dashboard} panel {target.panel_id} ({target.panel_title})"
    assert rows, f"{where}: no rows"
    missing = target.columns - set(rows[0])
    assert not missing, f"{where}: the panel shows {sorted(missing)}, the query does not return them"
    if target.format == FORMAT_TIME_SERIES:
        assert all(isinstance(r["time"], dt.datetime) for r in rows), where
        # numbers are the series' values; any other column is a label that splits them,
        # which the panel must name (its display name) or the legend says nothing
        numeric = {c for c in rows[0] if c != "time" and all(isinstance(r[c], (int, float)) or r[c] is None for r in rows)}
        labels = set(rows[0]) - numeric - {"time"}
        assert numeric, f"{where}: no value column"
        assert labels <= target.columns, f"{where}: series split by {sorted(labels - target.columns)} the panel does not name"


@pytest.mark.parametrize(("dashboard", "target"), TARGETS, ids=[f"{d}:{t.panel_id}" for d, t in TARGETS])
async def test_every_panel_query_returns_its_columns_for_all_sites_and_for_one(
    filled: tuple[SinkSettings, int], dashboard: str, target: Target,
) -> None:
    settings, now = filled
    options = await _sites(settings, target, now)
    assert options == sorted([SITE, OTHER])
    everywhere = await _run(settings, grafana.expand(target.raw_sql, {"site": [ALL]}, {"site": options}, _range(now)))
    _check_columns(target, everywhere)
    one = await _run(settings, grafana.expand(target.raw_sql, {"site": [SITE]}, {"site": options}, _range(now)))
    _check_columns(target, one)
    if "site_id" in one[0]:
        assert {r["site_id"] for r in one} == {SITE}
        assert SITE in {r["site_id"] for r in everywhere}


def _target(dashboard: str, panel_id: int) -> Target:
    return next(t for d, t in TARGETS if d == dashboard and t.panel_id == panel_id)


async def _panel(filled: tuple[SinkSettings, int], dashboard: str, panel_id: int, site: str) -> list[dict[str, Any]]:
    settings, now = filled
    options = [SITE, OTHER]
    return await _run(settings, grafana.expand(_target(dashboard, panel_id).raw_sql, {"site": [site]}, {"site": options},
                                               _range(now)))


async def test_fleet_figures_count_each_hour_once_at_its_latest_version(filled: tuple[SinkSettings, int]) -> None:
    [glance] = await _panel(filled, "fleet-utilisation.json", 1, SITE)
    # a-1: 1800 + 3600 s printing, a-2: 0, of three tracked hours; the day and the first version left out
    assert glance["utilisation_pct"] == pytest.approx(100 * 5400 / 10800, abs=0.05)
    assert (glance["printers"], glance["jobs_completed"]) == (2, 3)
    assert [(r["site_id"], r["printers"]) for r in await _panel(filled, "fleet-utilisation.json", 5, ALL)] == [
        (SITE, 2), (OTHER, 1)]


async def test_alert_panels_show_the_open_alerts_with_their_parts(filled: tuple[SinkSettings, int]) -> None:
    [counts] = await _panel(filled, "alerts.json", 1, SITE)
    assert (counts["critical"], counts["error"], counts["warning"]) == (0, 1, 1)  # ga3 cleared
    table = {r["rule_id"]: r for r in await _panel(filled, "alerts.json", 2, SITE)}
    assert set(table) == {"printhead-life", "printhead-wear"}
    assert table["printhead-life"]["recommended_part_numbers"] == "F9K08A 3ED59A"
    assert table["printhead-life"]["occurrences"] == 3 and table["printhead-life"]["lifecycle"] == "UPDATED"
    [predicted] = await _panel(filled, "alerts.json", 6, SITE)
    assert (predicted["device_id"], predicted["confidence_pct"]) == ("a-2", 80)
    everywhere = await _panel(filled, "alerts.json", 2, ALL)
    assert everywhere[0]["severity"] == "CRITICAL" and everywhere[0]["site_id"] == OTHER
