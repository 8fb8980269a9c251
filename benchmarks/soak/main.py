"""Soak: `printfleet bench soak`, on the running stack (`printfleet stack up`).

N sites x M printers (default 10 x 1,000) at the default cadence through the real
pipeline, every part its own process: simulated printers (one process per group of
sites, HTTPS per site) -> a `printfleet collector` per site -> `printfleet gateway`
(HTTPS) -> Kafka -> `printfleet worker` -> Kafka -> `printfleet sink` -> ClickHouse, for
--minutes. Printhead errors are injected at random printers. Every 10 s it samples
records/s in and stored, the lag of each stage, alert latency, heartbeat -> ClickHouse
latency, CPU and RSS of every process and each collector's spool depth; at the end it
drains, checks that every record in Kafka is in ClickHouse exactly once and that the
worker's fleet state has every printer, and writes a Markdown table and a PNG plot to
--out. With --step N,N,... it runs each fleet size for --step-minutes instead and
reports the largest one whose lag stays bounded, and which process limits.

Its own topic prefix and database (benchmarks/isolation.py), removed at the end.
Figures and the definition of "bounded": docs/soak.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks import isolation
from benchmarks.soak import checks, plot, processes
from benchmarks.soak.checks import DataCheck
from benchmarks.soak.options import Bounds, SoakOptions, fleet_split, parse
from benchmarks.soak.report import SoakResult, format_report, format_steps
from benchmarks.soak.sampler import SINK, SPOOL, WORKER, AlertWatcher, Sample, Sampler, server_pids
from benchmarks.soak.simulator import Injected, SimulatorGroup, SiteSpec
from benchmarks.soak.verdict import judge, warmed_up
from common.kafka.settings import KafkaSettings
from deploy.machine import describe
from deploy.settings import StackSettings
from schemas import SchemaRegistry
from sinks.client import ClickHouseClient
from sinks.connection import ClickHouseSettings

Progress = Callable[[str], None]
CHECKOUT = Path(__file__).resolve().parents[2]


async def run_soak(stack: StackSettings, options: SoakOptions, progress: Progress) -> SoakResult:
    """One run; the result holds the samples, the verdict and the data check. Raises
    BenchError when a component exits or does not start (its log is kept)."""
    started = time.monotonic()
    run = isolation.run_id()
    kafka = dataclasses.replace(stack.kafka(), topic_prefix=f"bench-{run}.")
    database = f"bench_{run}_soak"
    home = Path(tempfile.mkdtemp(prefix=f"soak-{run}-"))
    specs = [SiteSpec(f"site-{i:02d}", options.printers_per_site, options.seed * 1000 + i, home / f"site-{i:02d}" / "ca")
             for i in range(options.sites)]
    env = {**os.environ, "PYTHONPATH": str(CHECKOUT)}
    progress(f"soak: {options.printers:,} printers in {options.sites} sites, {options.minutes:g} min; "
             f"topics {kafka.topic_prefix}*, database {database}, files in {home}")
    result: SoakResult | None = None
    client = ClickHouseClient(ClickHouseSettings(stack.clickhouse_url, database=database))
    try:
        async with SimulatorGroup(specs, options.simulators, home, env) as sims:
            progress(f"soak: {options.simulators} simulator process(es) up")
            pipeline = processes.build(stack, kafka, database, home, sims.sites, f"soak-{run}", options.history)
            try:
                await pipeline.start(["gateway", "worker", "sink"])
                await pipeline.start(pipeline.collectors)
                await pipeline.ready(options.ready_timeout_s)
                await client.start(create_database=True)
                result = await _measure(stack, options, kafka, pipeline, sims, client, progress, started)
            finally:
                await pipeline.stop()
    finally:
        with contextlib.suppress(Exception):
            await isolation.drop_topics(kafka)
        with contextlib.suppress(Exception):
            await client.command(f"DROP DATABASE IF EXISTS `{database}`")
        await client.close()
        if result is not None and result.ok:
            shutil.rmtree(home, ignore_errors=True)
        else:
            progress(f"soak: logs kept in {home}")
    assert result is not None  # set unless _measure raised
    return result


async def _measure(stack: StackSettings, options: SoakOptions, kafka: KafkaSettings, pipeline: processes.Pipeline,
                   sims: SimulatorGroup, client: ClickHouseClient, progress: Progress, started: float) -> SoakResult:
    alerts = AlertWatcher(kafka, SchemaRegistry.load_default())
    await alerts.start()
    sampler = Sampler(pipeline.ops, client, alerts)
    rng = random.Random(options.seed)
    targets = [(site, pid) for site, s in sims.sites.items() for pid in s.printer_ids]
    rng.shuffle(targets)  # each printer at most once: its alert is then RAISED, not UPDATED
    injected: list[Injected] = []
    fixed = {**sims.pids, **server_pids(stack), "bench": os.getpid()}
    wall_start = time.time()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            warmup_s = await _warm_up(options, pipeline, sampler, session, fixed, progress)
            end = time.monotonic() + options.minutes * 60
            next_sample = time.monotonic() + options.sample_every_s
            next_error = time.monotonic() + rng.expovariate(options.errors_per_min / 60) if options.errors_per_min \
                else end
            while (now := time.monotonic()) < end or next_sample <= end:
                pipeline.check()
                if now >= next_error and targets:
                    site, pid = targets.pop()
                    event = await sims.inject(site, pid)
                    alerts.expect(event)
                    injected.append(event)
                    next_error += rng.expovariate(options.errors_per_min / 60)
                if now >= next_sample:
                    sample = await sampler.sample(session, {**fixed, **pipeline.pids()})
                    next_sample += options.sample_every_s
                    if sample is not None:
                        progress(f"soak: {sample.t - warmup_s:5.0f} s  in {sample.in_per_s:7,.0f}/s  stored "
                                 f"{sample.stored_per_s:7,.0f}/s  lag spool {sample.lag[SPOOL]:,.0f} worker "
                                 f"{sample.lag[WORKER]:,.0f} sink {sample.lag[SINK]:,.0f}  heartbeat->row "
                                 f"{sample.heartbeat_latency_s}  busy {sample.machine_busy:.0%}")
                await asyncio.sleep(max(0.05, min(next_sample, next_error, end) - time.monotonic()))
        verdict = judge(sampler.samples, options.printers, options.bounds, since=warmup_s)
        progress(f"soak: {verdict.limit}")
        half_wall = wall_start + warmup_s + (sampler.samples[-1].t - warmup_s) / 2
        heartbeat = await _heartbeat_latency(client, half_wall)
        dead = await checks.drain(pipeline, options.drain_timeout_s, progress)
    finally:
        await alerts.stop()
    await pipeline.stop(["sink"])
    data = await checks.check_data(kafka, client, options.printers, dead, progress)
    return SoakResult(options, describe(), tuple(sampler.samples), warmup_s, verdict, data, tuple(alerts.latencies),
                      len(injected), heartbeat, time.monotonic() - started)


async def _warm_up(options: SoakOptions, pipeline: processes.Pipeline, sampler: Sampler,
                   session: aiohttp.ClientSession, fixed: dict[str, int], progress: Progress) -> float:
    """Sample until two samples in a row are `warmed_up`, at most `warmup_max_s`;
    returns the seconds it took (the sampler's clock), where the measured minutes start."""
    deadline = time.monotonic() + options.warmup_max_s
    streak = 0
    await sampler.sample(session, {**fixed, **pipeline.pids()})
    while time.monotonic() < deadline:
        await asyncio.sleep(options.sample_every_s)
        pipeline.check()
        sample = await sampler.sample(session, {**fixed, **pipeline.pids()})
        assert sample is not None
        streak = streak + 1 if warmed_up(sample, options.printers, options.bounds) else 0
        progress(f"soak: warming up {sample.t:4.0f} s: heartbeats {sample.heartbeats_polled_per_s:,.0f}/s of "
                 f"{options.printers / 10:,.0f}, lag spool {sample.lag[SPOOL]:,.0f} worker {sample.lag[WORKER]:,.0f} "
                 f"sink {sample.lag[SINK]:,.0f}, busy {sample.machine_busy:.0%}")
        if streak >= 2:
            return sample.t
    progress(f"soak: not warmed up after {options.warmup_max_s:g} s; measuring anyway")
    return sampler.samples[-1].t if sampler.samples else 0.0


async def _heartbeat_latency(client: ClickHouseClient, since_wall: float) -> tuple[float, float] | None:
    """p50 and p99 (s) of heartbeat -> row over every row stored since `since_wall`
    (see benchmarks/soak/sampler.py for the +0.5 s)."""
    rows = await client.rows(
        "SELECT quantileExact(0.5)(d), quantileExact(0.99)(d), count() FROM ("
        "SELECT toUnixTimestamp(inserted_at) * 1000 + 500 - toUnixTimestamp64Milli(event_time) AS d "
        "FROM heartbeat WHERE inserted_at >= toDateTime({a:UInt32}))", {"a": int(since_wall)})
    if not rows or not int(rows[0][2]):
        return None
    return float(rows[0][0]) / 1000, float(rows[0][1]) / 1000


def write(result: SoakResult, out: Path, name: str) -> tuple[Path, Path]:
    """The report as `<name>.md` and the plot as `<name>.png` in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    png = plot.draw(result.samples, f"soak: {result.options.printers:,} printers, {result.options.minutes:g} min",
                    out / f"{name}.png", result.warmup_s)
    md = out / f"{name}.md"
    md.write_text(format_report(result) + f"\n\n![soak over time]({png.name})\n")
    # Everything measured, to judge and draw again without another run (`--report`).
    (out / f"{name}.json").write_text(json.dumps(dataclasses.asdict(result)))
    return md, png


async def step_search(stack: StackSettings, base: SoakOptions, sizes: Sequence[int], minutes: float, out: Path,
                      progress: Progress) -> list[SoakResult]:
    """Each fleet size in turn, smallest first, until one is not bounded."""
    results: list[SoakResult] = []
    for size in sizes:
        options = dataclasses.replace(base, printers_per_site=fleet_split(size, base.sites), minutes=minutes)
        result = await run_soak(stack, options, progress)
        write(result, out, f"soak-step-{options.printers}")
        results.append(result)
        progress(format_steps(results))
        if not result.verdict.bounded:
            break
    (out / "soak-steps.md").write_text(format_steps(results) + "\n")
    return results


def load(path: Path) -> SoakResult:
    """A result written by `write` (its .json), judged again with this code's verdict."""
    raw = json.loads(path.read_text())
    options = SoakOptions(**{**raw["options"], "bounds": Bounds(**raw["options"]["bounds"])})
    samples = tuple(Sample(**{**s, "heartbeat_latency_s": _pair(s["heartbeat_latency_s"]),
                              "alert_latency_s": _pair(s["alert_latency_s"])}) for s in raw["samples"])
    data = DataCheck(**{**raw["data"], "kafka": {k: _pair(v) for k, v in raw["data"]["kafka"].items()},
                        "clickhouse": {k: _pair(v) for k, v in raw["data"]["clickhouse"].items()}}) \
        if raw["data"] else None
    verdict = judge(samples, options.printers, options.bounds, since=raw["warmup_s"])
    return SoakResult(options, raw["machine"], samples, raw["warmup_s"], verdict, data,
                      tuple(raw["alert_latencies"]), raw["alerts_injected"], _pair(raw["heartbeat_latency_s"]),
                      raw["seconds"])


def _pair(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def run(argv: list[str]) -> int:
    if argv[:1] == ["--report"]:  # draw and judge again from a run's .json: --report FILE.json OUT_DIR
        if len(argv) != 3:
            print("usage: printfleet bench soak --report RUN.json OUT_DIR", file=sys.stderr)
            return 2
        result = load(Path(argv[1]))
        md, png = write(result, Path(argv[2]), Path(argv[1]).stem)
        print(format_report(result))
        return 0 if result.ok else 1
    command = parse(argv, __doc__ or "")
    stack = StackSettings.from_env()

    def progress(line: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)

    if command.steps:
        results = asyncio.run(step_search(stack, command.options, command.steps, command.step_minutes, command.out,
                                          progress))
        print(format_steps(results))
        return 0 if any(r.verdict.bounded for r in results) else 1
    result = asyncio.run(run_soak(stack, command.options, progress))
    md, png = write(result, command.out, f"soak-{command.options.printers}")
    print(format_report(result))
    print(f"\nwritten: {md}, {png}")
    return 0 if result.ok else 1
