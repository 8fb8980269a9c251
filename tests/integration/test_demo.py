"""`printfleet demo` on the real stack, shortened: five sites' collectors, the gateway,
the stream worker and the sink, a signed release catalogue. Afterwards ClickHouse holds
every site's records, an advisory for every printer and a benchmark of five sites, and
the closing summary shows both; while it ran, its fleet web page showed the printers. The
first site is mixed: two of its printers came over OPC UA (the simulator's asyncua server,
the collector's OPC UA driver) and are in the fleet state and ClickHouse by their device
ids. Topics and database of its own (a unique prefix)."""

from __future__ import annotations

import asyncio
import re
import stat
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import sink_harness as h
from deploy.settings import StackSettings
from printfleet.cmd_demo import SIGNING_KEY, DemoSettings, run_demo
from printfleet.cmd_query import execute
from printfleet.demo_fleet import printers_of
from producers.collector.config import CollectorSettings
from producers.collector.printer_tables import OpcUaPrinter
from producers.simulator import Fleet, SimulatorSettings
from sinks import queries
from sinks.clickhouse import SinkSettings
from sinks.connection import ClickHouseSettings

DAY_MS = 86_400_000


async def test_the_demo_shows_advisories_a_benchmark_of_five_sites_and_a_mixed_site_with_opcua(
    stack: StackSettings, unique: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    settings = DemoSettings(
        kafka=stack.kafka(topic_prefix=f"demo{unique}."),
        clickhouse=ClickHouseSettings(stack.clickhouse_url, database=f"demotest_{unique}"),
        home=tmp_path, duration_s=55.0, every_s=5.0, midnight_after_s=12.0, site_prefix=f"site-{unique}",
        worker_app_id=f"demo-{unique}", dashboard_port=0,
    )
    sites = {f"site-{unique}-{n}" for n in range(1, 6)}
    # The simulator serves the last two printers of its fleet over OPC UA (device ids
    # come from its seed, not its start).
    fleet = printers_of(Fleet(SimulatorSettings(printers=settings.printers, start_ms=0)).truth())
    opcua = {p.printer_id: p.device_id for p in fleet[-settings.opcua_printers:]}
    assert len(opcua) == 2
    try:
        printed: list[str] = []
        _, (page, advisories, benchmark) = await asyncio.wait_for(asyncio.gather(
            run_demo(settings, asyncio.Event()), _pages(printed, capsys, sorted(sites))), 190)
        out = "".join(printed) + capsys.readouterr().out
        # The page served the first site's four printers to the operator while the demo ran,
        # the two OPC UA printers among them: the worker's fleet state has them.
        assert len(page["printers"]) == 4 and {p["site_id"] for p in page["printers"]} == {f"site-{unique}-1"}
        assert set(opcua.values()) <= {p["device_id"] for p in page["printers"]}
        # And the outputs a new user would otherwise never see: an advisory for each of
        # the site's printers (the OPC UA ones too: their identity carries the firmware),
        # and a benchmark of the five sites.
        assert {a["device_id"] for a in advisories} == {p["device_id"] for p in page["printers"]}
        assert benchmark and all(b["site_count"] == 5 for b in benchmark)

        async def rows(sql: str) -> list[tuple[Any, ...]]:
            return (await execute(settings.clickhouse, sql, None))[1]

        # Every site's printers reached ClickHouse, four each, through its own collector.
        per_site = dict(await rows("SELECT site_id, uniqExact(device_id) FROM heartbeat GROUP BY site_id"))
        assert per_site == {site: 4 for site in sites}
        # The signed releases were verified and every printer advised, each once, the OPC
        # UA printers too.
        advised = await rows("SELECT uniqExact(site_id), groupUniqArray(device_id), uniqExact(record_id), "
                             "groupUniqArray(available_version) FROM update_advisory")
        sites_advised, devices, record_ids, versions = advised[0]
        assert sites_advised == 5 and sorted(devices) == sorted(p.device_id for p in fleet)
        assert record_ids == len(devices) and sorted(versions) == ["5.4.0", "6.3.0"]
        # The simulated day that ended has its benchmark from all five sites: per model,
        # each model's (on a loaded machine a model whose last hour of a site came after
        # the worker closed the day may miss it: at least one has it).
        benchmarks = await rows("SELECT model_number, max(site_count), toUnixTimestamp64Milli(any(window_end)) "
                                "FROM benchmark GROUP BY model_number ORDER BY model_number")
        assert benchmarks and {model for model, _, _ in benchmarks} <= {"4WY25A", "M0P44A"}
        assert all(sites_in == 5 and int(end) % DAY_MS == 0 for _, sites_in, end in benchmarks)
        # The summary shows both, as the named queries give them.
        for name in ("advisories", "benchmarks"):
            assert f"[printfleet query {name}]" in out
        named = await execute(settings.clickhouse, queries.get("benchmarks").sql, {"site": "", "days": 30})
        assert [row[named[0].index("sites")] for row in named[1]] == [5] * len(benchmarks)
        assert "release catalogue: M0P44A firmware 5.4.0 (WARNING), 4WY25A firmware 6.3.0 (INFO)" in out
        # The maker's key stays private, its public half beside it for the worker.
        assert stat.S_IMODE((tmp_path / SIGNING_KEY).stat().st_mode) == 0o600
        assert (tmp_path / "release-signing-key.pub.pem").read_text().startswith("-----BEGIN PUBLIC KEY-----")
        assert all((tmp_path / f"site-{n}" / "site.toml").is_file() for n in range(1, 6))
        # The first site's collector read those two over OPC UA, the other two by the printer API.
        first = CollectorSettings.load(tmp_path / "site-1" / "site.toml")
        tables = [p for p in first.printers if isinstance(p, OpcUaPrinter)]
        assert len(first.printer_urls) == 2 and len(tables) == 1 and sorted(tables[0].machines) == sorted(opcua)
        assert not any(f"/printers/{pid}/" in url for url in first.printer_urls for pid in opcua)
        assert all(not CollectorSettings.load(tmp_path / f"site-{n}" / "site.toml").printers for n in range(2, 6))
        # The demo made the trust itself: only that site's collector certificate.
        assert [p.name for p in (tmp_path / "opcua" / "trusted").iterdir()] == [f"site-{unique}-1.der"]
        assert f"collector certificates trusted in {tmp_path / 'opcua' / 'trusted'}" in out
        # Their heartbeats and events reached ClickHouse through the first site's collector.
        beats = dict(await rows(f"SELECT device_id, count() FROM heartbeat WHERE site_id = 'site-{unique}-1' "
                                "GROUP BY device_id"))
        assert all(beats.get(device, 0) > 0 for device in opcua.values()), beats
        events = await rows(f"SELECT count() FROM system_event WHERE site_id = 'site-{unique}-1' AND device_id IN "
                            f"({', '.join(repr(d) for d in opcua.values())})")
        assert events[0][0] > 0
        # The start and closing lines say so.
        assert f"2 of them by OPC UA ({' '.join(sorted(opcua))} at opc.tcp://127.0.0.1:" in out
        spooled = re.search(rf"site-{unique}-1: 2 printers by OPC UA \(2 answering\), spooled (.*)", out)
        assert spooled and re.search(r"[1-9]\d* heartbeat\b", spooled.group(1)), out
        assert re.search(r"[1-9]\d* device_identity\b", spooled.group(1)) and "unmappable" not in spooled.group(1)
        stored = re.search(rf"site-{unique}-1's OPC UA printers in ClickHouse \(this run and earlier ones\): (.*)", out)
        assert stored and "NOTHING" not in stored.group(1) and all(pid in stored.group(1) for pid in opcua)
    finally:
        await h.drop_database(SinkSettings(kafka=settings.kafka, clickhouse=settings.clickhouse))


async def _pages(printed: list[str], capsys: pytest.CaptureFixture[str],
                 sites: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """What the demo's web page serves while it runs, signed in with the operator's token
    the demo printed: the first site's fleet once all four printers are on it, then its
    advisories once each printer has one, then the first benchmark any site's daily
    utilisation shows. The page stops with the demo: what it never showed fails here."""
    pattern = re.compile(r"fleet web page (\S+)  sign in with the operator's token (\S+) ")
    while (found := pattern.search("".join(printed))) is None:
        printed.append(capsys.readouterr().out)
        await asyncio.sleep(0.5)
    url, token = found.groups()
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:

        async def get(path: str, **params: str) -> dict[str, Any]:
            try:
                async with http.get(f"{url}{path}", params=params) as response:
                    assert response.status == 200, await response.text()
                    answer: dict[str, Any] = await response.json()
                    return answer
            except aiohttp.ClientConnectionError as exc:
                raise AssertionError(f"the demo's page stopped before it showed {path}: {exc!r}") from None

        while len((page := await get("api/fleet", site=sites[0]))["printers"]) < 4:
            await asyncio.sleep(1.0)
        while True:
            advisories: list[dict[str, Any]] = (await get("api/advisories", site=sites[0]))["advisories"]
            if len({a["device_id"] for a in advisories}) == 4:
                break
            await asyncio.sleep(1.0)
        while True:
            for site in sites:
                benchmark: list[dict[str, Any]] = (await get("api/utilisation", site=site, grain="day"))["benchmark"]
                if benchmark:
                    return page, advisories, benchmark
            await asyncio.sleep(1.0)
