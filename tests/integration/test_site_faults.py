"""The site side under faults, on the real broker: the gateway away for a while, the
collector killed with SIGKILL mid-upload, its spool file cut at a random byte."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from ports import free_ports
from site_harness import START_MS, Site, caught_up, devices_of, site_messages, start_site

from deploy.settings import StackSettings
from producers.collector.collector import Collector
from producers.collector.config import render
from producers.gateway.gateway import Gateway
from producers.collector.cursors import CursorStore
from producers.gateway.sites import SiteDirectory
from producers.spool.spool import RecordClass
from producers.spool.frames import HEADER_BYTES, scan
from schemas import SchemaRegistry

HOUR_MS = 3_600_000


def _assert_complete_and_unique(messages: list[tuple[Any, Any]], truth: dict[str, Any]) -> None:
    """Every event, job snapshot and log the printers emitted is in Kafka exactly once."""
    per_id = Counter(d.record["record_id"] for _, d in messages)
    repeated = [rid for rid, n in per_id.items() if n > 1]
    kinds = Counter(d.kind for _, d in messages if d.record["record_id"] in set(repeated))
    # Where each copy landed, for whoever has to find out why: the same partition and
    # adjacent offsets mean one batch produced twice; far-apart offsets, a record spooled twice.
    copies = [(d.record["record_id"], m.topic, m.partition, m.offset, m.timestamp) for m, d in messages
              if d.record["record_id"] in set(repeated)]
    assert not repeated, f"{len(repeated)} records reached Kafka more than once: {dict(kinds)}; copies: {copies[:20]}"
    for p in truth["printers"]:
        for kind, stream in (("system_event", "events"), ("job", "jobs"), ("device_log", "logs")):
            got = sum(1 for _, d in messages if d.kind == kind and d.record["device_id"] == p["printer_uuid"])
            assert got == p[stream]["count"], f"{p['printer_id']} {kind}: {got} of {p[stream]['count']}"


async def _run_until(site: Site, sim_ms: int, collector_task: "asyncio.Future[Any] | None" = None) -> None:
    while site.sim.clock.now_ms() < sim_ms:
        assert collector_task is None or not collector_task.done(), collector_task
        await asyncio.sleep(0.5)


async def test_gateway_away_then_back_loses_and_repeats_nothing(stack: StackSettings, tmp_path: Path) -> None:
    registry = SchemaRegistry.load_default()
    async with start_site(stack, tmp_path) as site:
        port = int(site.gateway.url.rsplit(":", 1)[1])
        stop = asyncio.Event()
        async with Collector(site.collector_settings, registry) as collector:
            runner = asyncio.create_task(collector.run(stop))
            try:
                await _run_until(site, START_MS + 2 * HOUR_MS, runner)
                await site.gateway.stop()  # away: uploads fail, the spool fills
                await _run_until(site, START_MS + 6 * HOUR_MS, runner)
                assert collector.uploader.counters.failures > 0
                assert collector.spool.stats().pending_records > 0
                settings = replace(site.gateway.settings, port=port)
                async with Gateway(settings, registry, SiteDirectory.load(settings.sites_file)):
                    await _run_until(site, START_MS + 8 * HOUR_MS, runner)
                    site.sim.clock.pause()
                    site.sim.sync()
                    truth = site.sim.fleet.truth()
                    await caught_up(collector, truth, timeout_s=120)
            finally:
                stop.set()
                await runner
        _assert_complete_and_unique(await site_messages(stack.kafka_bootstrap, site.site_id, registry, devices_of(truth)), truth)


def _start_collector(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "printfleet.cli", "collector", "--config", str(config), "--status-every-s", "2"],
            stdout=out, stderr=subprocess.STDOUT,
        )


async def test_collector_killed_mid_upload_loses_and_repeats_nothing(stack: StackSettings, tmp_path: Path) -> None:
    registry = SchemaRegistry.load_default()
    async with start_site(stack, tmp_path) as site:
        settings = replace(site.collector_settings, status_port=free_ports(1)[0])
        config = tmp_path / "site.toml"
        config.write_text(render(settings))
        log = tmp_path / "collector.log"
        rng = random.Random(3)
        collector = _start_collector(config, log)
        try:
            for _ in range(3):
                # Kill while batches are moving: wait until the gateway took some, then a
                # random moment later, SIGKILL.
                before = site.gateway.counters.batches_accepted
                deadline = time.monotonic() + 60
                while site.gateway.counters.batches_accepted < before + 2:
                    assert collector.poll() is None, log.read_text()[-2000:]
                    assert time.monotonic() < deadline, log.read_text()[-2000:]
                    await asyncio.sleep(0.05)
                await asyncio.sleep(rng.uniform(0.0, 0.3))
                collector.send_signal(signal.SIGKILL)
                await asyncio.to_thread(collector.wait, 10)
                collector = _start_collector(config, log)
            await _run_until(site, site.sim.clock.now_ms() + 2 * HOUR_MS)
            site.sim.clock.pause()
            site.sim.sync()
            truth = site.sim.fleet.truth()
            deadline = time.monotonic() + 120
            want = {(p["printer_uuid"], e): p[e]["max_seq"] for p in truth["printers"] for e in ("events", "jobs", "logs")}
            while any(CursorStore(settings.state_dir / "cursors.json").get(d, e) != n for (d, e), n in want.items()):
                assert collector.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, "collector never caught up"
                await asyncio.sleep(0.5)
            collector.send_signal(signal.SIGTERM)  # a clean stop uploads what is left
            # Waited for in a thread: the gateway it uploads to runs on this event loop.
            assert await asyncio.to_thread(collector.wait, 60) == 0, log.read_text()[-2000:]
        finally:
            if collector.poll() is None:
                collector.kill()
        assert "spool depth 0" in log.read_text().splitlines()[-1], log.read_text()[-500:]
        _assert_complete_and_unique(await site_messages(stack.kafka_bootstrap, site.site_id, registry, devices_of(truth)), truth)


async def test_spool_cut_at_a_random_byte_recovers_every_complete_record(stack: StackSettings, tmp_path: Path) -> None:
    registry = SchemaRegistry.load_default()
    async with start_site(stack, tmp_path) as site:
        await site.gateway.stop()  # nothing leaves: everything stays in the spool
        settings = site.collector_settings
        stop = asyncio.Event()
        async with Collector(settings, registry) as collector:
            runner = asyncio.create_task(collector.run(stop))
            await _run_until(site, START_MS + 4 * HOUR_MS, runner)
            stop.set()
            await runner
            pending = collector.spool.stats().pending_records
        assert pending > 100
        segments = sorted((settings.state_dir / "spool").glob("keep-*.seg"), key=os.path.getsize)
        victim = segments[-1]
        data = victim.read_bytes()
        cut = random.Random(7).randrange(len(data) // 2, len(data) - 1)
        frames = scan(data, int(victim.stem.split("-")[1]), RecordClass.KEEP).frames
        beyond = [f for f in frames if f.end > cut]
        lost_kinds = Counter(registry.identify(data[f.offset + HEADER_BYTES:f.end]).kind for f in beyond)
        with open(victim, "r+b") as f:
            f.truncate(cut)

        async with Collector(settings, registry) as reopened:
            status = reopened.status()["spool"]
        # Every complete record is back; every record past the cut is counted as lost,
        # by kind (the segment's index says what it held).
        assert status["recovered_records"] == pending - len(beyond), status
        assert status["recovery_dropped_records"] == len(beyond) > 0, status
        assert status["recovery_lost_by_kind"] == dict(lost_kinds), status
