"""Part (c) of `printfleet bench ingest`: the collector's CPU and memory at the default
cadence, for many printers and for few (the baseline).

Three processes: the simulator (`printfleet simulate`, real-time clock by default), the
collector (a multiprocessing child, the only process measured), and this one, which runs
the real Gateway over TLS to Kafka and reads the collector's /proc/<pid>/stat and
/proc/<pid>/status before and after the window, and its status page for progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import multiprocessing as mp
import os
import queue
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from common.kafka.settings import KafkaSettings
from benchmarks.ingest.report import cpu_percent, records_per_hour
from benchmarks.ingest.site import BenchError, CloudSite, ProcessSample, SimulatorProcess
from producers.collector.collector import Collector
from producers.collector.config import Cadence, CollectorSettings
from producers.gateway.gateway import Gateway, GatewaySettings
from producers.gateway.sites import SiteDirectory
from schemas import SchemaRegistry

Progress = Callable[[str], None]

# What production runs the collector with (deploy/systemd/printfleet-collector.service,
# deploy/container/Dockerfile; docs/ingest-bench.md "Collector memory"): glibc's mmap
# threshold fixed, so a closed connection's buffers go back to the system. glibc reads it
# when a process starts, so it must be in the collector process's environment.
COLLECTOR_ENV: Mapping[str, str] = {"MALLOC_MMAP_THRESHOLD_": "131072"}


@dataclass(frozen=True)
class CollectorOptions:
    printers: int = 100
    baseline_printers: int = 10
    seconds: float = 40.0  # a multiple of the 10 s heartbeat: the polls come in bursts
    baseline_seconds: float = 20.0
    warmup_s: float = 10.0  # at least; then until the printers' backlog is read and uploaded
    max_warmup_s: float = 120.0
    acceleration: float = 1.0  # simulated time; 1 = real time, as a site sees it
    seed: int = 42


@dataclass(frozen=True)
class CollectorRun:
    printers: int
    seconds: float
    cpu_pct: float
    rss_mib: float
    peak_rss_mib: float
    records_per_s: float  # records the pollers spooled per second, all kinds
    expected_records_per_s: float  # what the default cadence asks for, paged kinds aside
    uploaded_per_s: float
    poll_failures: int
    warmup_s: float  # from the process start until polling was steady
    startup_cpu_s: float  # CPU the collector process used in that time (backlog included)
    steady: bool  # False: max_warmup_s passed before the backlog was read


def _collector_main(settings: CollectorSettings, stop: Any, results: Any) -> None:
    """The collector child: run until `stop` (a multiprocessing Event) is set."""

    async def main() -> None:
        async with Collector(settings) as collector:
            results.put(collector.status_url)
            halt = asyncio.Event()
            runner = asyncio.create_task(collector.run(halt))
            while not stop.is_set() and not runner.done():
                await asyncio.sleep(0.2)
            halt.set()
            await runner

    asyncio.run(main())


async def measure(kafka: KafkaSettings, options: CollectorOptions, progress: Progress) -> tuple[CollectorRun, CollectorRun]:
    """The main run (`printers`) and the baseline run (`baseline_printers`, the first ones
    of the same simulator). Raises BenchError when a helper process fails."""
    # In the past by more than the run will simulate: Kafka refuses records from the future.
    span = dt.timedelta(hours=1, seconds=options.acceleration * (2 * options.max_warmup_s + options.seconds
                                                                 + options.baseline_seconds))
    start = (dt.datetime.now(dt.timezone.utc) - span).isoformat()
    registry = SchemaRegistry.load_default()
    with tempfile.TemporaryDirectory(prefix="bench-collector-") as tmp_name:
        tmp = Path(tmp_name)
        progress(f"collector: starting a simulator of {options.printers} printers")
        async with SimulatorProcess(options.printers, options.acceleration, start=start, seed=options.seed) as sim:
            site = CloudSite.create(tmp, sim.devices)
            settings = GatewaySettings(
                kafka=kafka, sites_file=site.sites_file, port=0,
                tls_cert=site.cert_file, tls_key=site.key_file,
            )
            async with Gateway(settings, registry, SiteDirectory.load(site.sites_file)) as gateway:
                runs = []
                for n, (printers, seconds) in enumerate(
                    ((options.printers, options.seconds), (options.baseline_printers, options.baseline_seconds))
                ):
                    collector_settings = CollectorSettings(
                        site_id=site.site_id, site_secret="bench-secret", state_dir=tmp / f"collector-{n}",
                        gateway_url=gateway.url, gateway_token=site.token, gateway_ca_file=site.ca_file,
                        printer_urls=tuple(sim.base_urls[:printers]), printer_ca_file=sim.ca_file,
                        status_port=0, cadence=Cadence(),
                    )
                    runs.append(await _one_run(collector_settings, printers, seconds, options, progress))
    return runs[0], runs[1]


async def _one_run(settings: CollectorSettings, printers: int, seconds: float, options: CollectorOptions,
                   progress: Progress) -> CollectorRun:
    ctx = mp.get_context("spawn")
    stop, results = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_collector_main, args=(settings, stop, results), daemon=True)
    with collector_environment(COLLECTOR_ENV):
        proc.start()
    try:
        try:
            status_url = await asyncio.to_thread(results.get, True, 60)
        except queue.Empty:
            raise BenchError("the collector process did not start in 60 s") from None
        assert proc.pid is not None
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:

            async def status() -> dict[str, Any]:
                async with session.get(status_url) as resp:
                    data: dict[str, Any] = await resp.json()
                    return data

            expected = printers * sum(records_per_hour(Cadence()).values()) / 3600
            warmup_s, startup_cpu_s = await _warm_up(status, proc.pid, printers, expected, options, progress)
            first_status, first, t0 = await status(), ProcessSample.of(proc.pid), time.monotonic()
            while (elapsed := time.monotonic() - t0) < seconds:
                await asyncio.sleep(min(5.0, seconds - elapsed))
                now = ProcessSample.of(proc.pid)
                progress(f"collector: {printers} printers, {time.monotonic() - t0:.0f} of {seconds:g} s, "
                         f"CPU {cpu_percent(first.cpu_s, now.cpu_s, time.monotonic() - t0):.1f} %, "
                         f"RSS {now.rss_bytes / 2**20:.0f} MiB")
            last_status, last, t1 = await status(), ProcessSample.of(proc.pid), time.monotonic()
    finally:
        stop.set()
        await asyncio.to_thread(proc.join, 30)
        if proc.is_alive():
            proc.terminate()
    wall = t1 - t0

    def spooled(s: dict[str, Any]) -> int:
        return sum(int(p["records_spooled"]) for p in s["printers"])

    def failures(s: dict[str, Any]) -> int:
        return sum(int(p["poll_failures"]) for p in s["printers"])

    return CollectorRun(
        printers=printers, seconds=wall, cpu_pct=cpu_percent(first.cpu_s, last.cpu_s, wall),
        rss_mib=last.rss_bytes / 2**20, peak_rss_mib=last.peak_rss_bytes / 2**20,
        records_per_s=(spooled(last_status) - spooled(first_status)) / wall,
        expected_records_per_s=expected,
        uploaded_per_s=(last_status["uploader"]["records"] - first_status["uploader"]["records"]) / wall,
        poll_failures=failures(last_status) - failures(first_status),
        warmup_s=warmup_s, startup_cpu_s=startup_cpu_s, steady=warmup_s < options.max_warmup_s,
    )


@contextlib.contextmanager
def collector_environment(extra: Mapping[str, str]) -> Iterator[None]:
    """`extra` in os.environ while a child is spawned: a spawned multiprocessing child
    takes this process's environment and has no argument for one of its own."""
    before = {name: os.environ.get(name) for name in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


async def _warm_up(status: Callable[[], Awaitable[dict[str, Any]]], pid: int, printers: int, expected: float,
                   options: CollectorOptions, progress: Progress) -> tuple[float, float]:
    """Wait until every printer answered, the spool is nearly empty and the records come
    no faster than about the cadence asks (the backlog of events, job snapshots and logs
    each printer holds at start is read); at least `warmup_s`, at most `max_warmup_s`.
    Returns (seconds waited, CPU seconds of the collector process so far)."""
    started, last_print = time.monotonic(), 0.0
    previous: tuple[float, int] | None = None
    while (elapsed := time.monotonic() - started) < options.max_warmup_s:
        await asyncio.sleep(1.0)
        s = await status()
        spooled = sum(int(p["records_spooled"]) for p in s["printers"])
        now = time.monotonic()
        rate = (spooled - previous[1]) / (now - previous[0]) if previous else float("inf")
        previous = (now, spooled)
        answered = sum(1 for p in s["printers"] if p["device_id"])
        if (elapsed >= options.warmup_s and answered == printers and s["spool"]["pending_records"] <= printers
                and rate <= 2 * expected + 5):
            break
        if now - last_print >= 5:
            last_print = now
            progress(f"collector: {printers} printers, warming up {elapsed:.0f} s: {answered} answered, "
                     f"{spooled:,} records spooled, {s['spool']['pending_records']:,} pending, {rate:.0f}/s")
    return time.monotonic() - started, ProcessSample.of(pid).cpu_s
