"""The dashboard shows what the real stream worker produces: heartbeats in, a worker
process, fleet.state out, the fleet API (and its event stream) with the printers."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import aiohttp

from dashboard.access import add_user
from dashboard.server import DashboardServer
from dashboard.settings import DashboardSettings
from deploy.settings import StackSettings
from sinks.connection import ClickHouseSettings
from stream_harness import Worker, produce
from stream_scenarios import Printer


async def test_the_fleet_api_lists_the_printers_the_worker_produced(stack: StackSettings, tmp_path: Path) -> None:
    u = uuid.uuid4().hex[:8]
    site, other = f"dw-{u}", f"dw-other-{u}"
    users = tmp_path / "users.toml"
    token = add_user(users, "alice", [site], operator=False)
    settings = DashboardSettings(kafka=stack.kafka(), clickhouse=ClickHouseSettings(stack.clickhouse_url), port=0,
                                 users_file=users)
    worker = Worker(stack.kafka_bootstrap, f"dash-{u}", tmp_path, PRINTFLEET_WORKER_START_AT="latest").start()
    try:
        await worker.ready()
        now = int(time.time() * 1000)
        printers = [Printer(site, f"{site}-p{i}", now) for i in range(2)] + [Printer(other, f"{other}-p0", now)]
        steps = []
        for p in printers:
            steps += [p.identity(now - 60_000, "5.9.0", model="M0P44A"), p.heartbeat(now - 20_000), p.heartbeat(now - 10_000)]
        await produce(stack.kafka_bootstrap, steps)
        async with DashboardServer(settings) as server, aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bearer {token}"}
            deadline = time.monotonic() + 90
            while True:
                worker.check()
                async with session.get(server.url + "api/fleet", params={"site": site}, headers=headers) as r:
                    body = await r.json()
                if len(body["printers"]) == 2 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            text = json.dumps(body)
    finally:
        await worker.stop()
    assert sorted(p["device_id"] for p in body["printers"]) == [f"{site}-p0", f"{site}-p1"], body
    for p in body["printers"]:
        assert p["status"] == "POWERED_ON" and p["activity"] == "PRINTING" and p["offline"] is False
        assert p["current_job_id"] == "J1" and p["layers_total"] == 5000 and p["pending_job_count"] == 2
        assert p["model_number"] == "M0P44A" and p["last_seen"] >= now - 20_000
    assert other not in text
