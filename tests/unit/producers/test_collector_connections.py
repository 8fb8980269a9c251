"""What bounds the collector's memory per printer: a printer's connection serves a poll
round and closes before the next one; the page reads of all pollers go through one bound,
in pages of at most 5 job snapshots (docs/ingest-bench.md, "Collector memory")."""

from __future__ import annotations

import asyncio
import math
import ssl
import types
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp import web

from producers.collector.collector import PRINTER_KEEPALIVE_S, printer_session
from producers.collector.config import Cadence
from producers.collector.device_records import RecordBuilder, Site
from producers.collector.cursors import CursorStore
from producers.collector.device_sink import DeviceSink, SinkShared
from producers.collector.drivers.printer_api import PrinterApiDriver
from producers.simulator import Fleet, SimulatorServer, SimulatorSettings
from producers.simulator.fleet import Fault
from producers.spool.async_spool import AsyncSpool
from producers.spool.spool import Spool
from schemas import SchemaRegistry

pytestmark = pytest.mark.timeout(60)

START_MS = 1_741_939_200_000  # 2025-03-14T08:00:00Z


async def test_a_printer_connection_serves_a_round_and_closes_when_idle() -> None:
    transports: list[asyncio.BaseTransport] = []

    async def answer(request: web.Request) -> web.Response:
        assert request.transport is not None
        transports.append(request.transport)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/api/v1/status", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1/status"
    try:
        async with printer_session(5.0, keepalive_s=0.2) as session:
            for _ in range(3):  # one round: requests back to back
                async with session.get(url) as resp:
                    assert resp.status == 200
                    await resp.read()
            assert len(set(map(id, transports))) == 1  # one connection for the round
            assert not transports[0].is_closing()
            await asyncio.sleep(0.7)  # idle for more than 2 x keepalive_s
            assert transports[0].is_closing()  # closed by the collector, not the server
    finally:
        await runner.cleanup()


def test_the_default_keepalive_closes_a_connection_before_the_next_round() -> None:
    # aiohttp closes an idle connection keepalive_s to 2 x keepalive_s after its last use.
    assert 2 * PRINTER_KEEPALIVE_S < Cadence().heartbeat_s


async def test_page_reads_of_all_pollers_go_through_one_bound_in_small_job_pages(tmp_path: Path) -> None:
    registry = SchemaRegistry.load_default()
    settings = SimulatorSettings(printers=4, seed=4, port=0, ca_dir=tmp_path / "ca", start_ms=START_MS,
                                 acceleration=1e-6)
    in_flight = {"pages": 0, "all": 0}
    most = {"pages": 0, "all": 0}
    job_reads: dict[str, list[int]] = {}

    async def started(session: aiohttp.ClientSession, ctx: types.SimpleNamespace,
                      params: aiohttp.TraceRequestStartParams) -> None:
        url = urlsplit(str(params.url))
        ctx.page = "after" in parse_qs(url.query)
        if url.path.endswith("/jobs"):
            job_reads.setdefault(url.path, []).append(int(parse_qs(url.query)["limit"][0]))
        for key in ("pages", "all") if ctx.page else ("all",):
            in_flight[key] += 1
            most[key] = max(most[key], in_flight[key])

    async def ended(session: aiohttp.ClientSession, ctx: types.SimpleNamespace, params: object) -> None:
        for key in ("pages", "all") if ctx.page else ("all",):
            in_flight[key] -= 1

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(started)
    trace.on_request_end.append(ended)
    trace.on_request_exception.append(ended)
    spool = Spool(tmp_path / "spool", max_bytes=1 << 26, fsync=False)
    spool.open()
    fleet = Fleet(settings)
    fleet.advance_to(START_MS + 6 * 3_600_000)  # a backlog of job snapshots
    async with SimulatorServer(settings, fleet=fleet) as sim:
        jobs = {pid: len(sim.fleet.read(pid, "jobs", after=0, limit=50)["jobs"]) for pid in sim.fleet.printer_ids}
        assert max(jobs.values()) > 5  # a backlog of more than one page
        for pid in jobs:  # every answer takes 0.1 s: the pollers' reads overlap
            sim.fleet.set_fault(pid, Fault("slow", 0.1))
        context = ssl.create_default_context(cafile=str(sim.ca_file))
        page_reads = asyncio.Semaphore(2)
        once = Cadence(heartbeat_s=600, events_s=600, jobs_s=600, logs_s=600, counters_s=600, consumables_s=600,
                       identity_s=600)
        stop = asyncio.Event()
        async_spool, cursors = AsyncSpool(spool), CursorStore(tmp_path / "cursors.json")
        shared = SinkShared(builder=RecordBuilder(registry, Site("s", b"secret")), registry=registry,
                            spool=async_spool, cursors=cursors, unmappable_dir=tmp_path / "unmappable")
        async with aiohttp.ClientSession(trace_configs=[trace]) as session:
            pollers = {
                pid: PrinterApiDriver(url, DeviceSink(url, "printer-api", shared), session=session,
                                      ssl_context=context, cadence=once, page_reads=page_reads)
                for pid, url in sim.base_urls.items()
            }
            running = asyncio.gather(*(p.run(stop) for p in pollers.values()))
            try:
                for _ in range(300):
                    if all(p.status.spooled_by_kind.get("job", 0) == jobs[pid] for pid, p in pollers.items()):
                        break
                    await asyncio.sleep(0.1)
            finally:
                stop.set()
                await running
                await cursors.close()
    spool.close()
    assert {pid: p.status.spooled_by_kind.get("job", 0) for pid, p in pollers.items()} == jobs  # all, once
    assert most["pages"] == 2  # never more than the bound, though 4 pollers were reading
    assert most["all"] > 2  # the pollers did run at once (identity, heartbeats)
    assert {limit for limits in job_reads.values() for limit in limits} == {5}
    for path, limits in job_reads.items():
        assert len(limits) >= math.ceil(jobs[path.split("/")[-4]] / 5), path  # /printers/<id>/api/v1/jobs
