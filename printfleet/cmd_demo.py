"""`printfleet demo`: the main job, a local fleet end to end on the embedded defaults.

Starts the local stack if it is not up, then runs the whole pipeline for `--duration`
seconds (0: until Ctrl-C), printing progress:

    simulated printers -> collector -> gateway -> Kafka -> stream worker -> Kafka
                                                        \-> ClickHouse sink -> ClickHouse

The simulator, collector, gateway and sink run in this process; the stream worker
(`printfleet worker`, a Faust app) runs as a child process, whose status lines are passed
through. At the end the collector uploads what it still holds, the worker and the sink
catch up and stop, and a short analytics summary is read from ClickHouse with the named
queries of `printfleet query`. The site's configuration is written to `.stack/demo/` so the
same collector can be run alone with `printfleet collector`.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import signal
import sys
import time
from pathlib import Path
from typing import Any

from common.errors import PrintfleetError
from deploy import stack
from deploy.errors import StackError
from deploy.settings import StackSettings
from printfleet import demo_pipeline
from producers.collector.collector import Collector
from producers.collector.config import Cadence, CollectorSettings, render
from producers.gateway.gateway import Gateway, GatewaySettings
from producers.gateway.sites import SiteDirectory
from producers.simulator import SimulatorServer, SimulatorSettings, ensure_site_ca, issue_server_certificate
from schemas import SchemaRegistry
from sinks.clickhouse import ClickHouseSink, SinkSettings
from sinks.connection import ClickHouseSettings

# Faster than the production defaults so that a minute shows every kind of record.
DEMO_CADENCE = Cadence(heartbeat_s=2, events_s=2, jobs_s=5, logs_s=10, counters_s=10, consumables_s=10, identity_s=60)


def register(sub: Any) -> None:
    parser = sub.add_parser("demo", help="run a local fleet end to end on the embedded defaults")
    parser.add_argument("--printers", type=int, default=20, help="simulated printers (default 20)")
    parser.add_argument("--acceleration", type=float, default=120.0, help="simulated seconds per second (default 120)")
    parser.add_argument("--duration", type=float, default=90.0, help="seconds to run; 0 runs until Ctrl-C (default 90)")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between progress lines (default 5)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = StackSettings.from_env()
    try:
        if not all(h.healthy for h in asyncio.run(stack.status(settings))):
            print("starting the local stack (Kafka, ClickHouse) ...", flush=True)
            for s in asyncio.run(stack.up(settings)):
                print(f"  {s.name:<10} ready in {s.ready_s:4.1f} s  {s.address}", flush=True)
    except StackError as exc:
        print(f"printfleet demo: {exc}", file=sys.stderr)
        return 1
    try:
        asyncio.run(_demo(settings, args))
    except PrintfleetError as exc:  # the sink's, the Kafka layer's, the worker's end
        print(f"printfleet demo: {exc}", file=sys.stderr)
        return 1
    print("the stack keeps running; stop it with: .venv/bin/printfleet stack down")
    return 0


async def _demo(stack_settings: StackSettings, args: argparse.Namespace) -> None:
    home = stack_settings.state_dir / "demo"
    home.mkdir(parents=True, exist_ok=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    registry = SchemaRegistry.load_default()
    clock_file = home / "sim-clock"
    sim_settings = SimulatorSettings(
        printers=args.printers, acceleration=args.acceleration, port=0, ca_dir=home / "site-ca",
        start_ms=_resume_clock(clock_file),
    )
    async with SimulatorServer(sim_settings) as sim:
        try:
            sink_settings = await _site_and_cloud(stack_settings, args, home, registry, sim, stop)
        finally:
            clock_file.write_text(f"{sim.clock.now_ms()}\n")
    await demo_pipeline.analytics_summary(sink_settings)


def _resume_clock(clock_file: Path) -> int:
    """Where the simulated clock starts: now, or where the last demo's clock stopped if
    that is later (it runs fast). Event time then never goes back between runs, so the
    stream worker, whose state outlives a run, does not take a new run's records as late."""
    now = time.time_ns() // 1_000_000
    try:
        return max(now, int(clock_file.read_text().strip()))
    except (OSError, ValueError):
        return now


async def _site_and_cloud(
    stack_settings: StackSettings, args: argparse.Namespace, home: Path, registry: SchemaRegistry,
    sim: SimulatorServer, stop: asyncio.Event,
) -> SinkSettings:
    """Gateway, worker and sink around the site; returns where the sink stored."""
    cloud_dir = home / "cloud-ca"
    cert = issue_server_certificate(ensure_site_ca(cloud_dir, "printfleet cloud"), cloud_dir)
    site_id, token = "demo-site", secrets.token_urlsafe(24)
    devices = [p["printer_uuid"] for p in sim.fleet.truth()["printers"]]
    sites_file = home / "sites.toml"
    sites_file.write_text(SiteDirectory.render([(site_id, token, devices)]))
    kafka = stack_settings.kafka()
    gw_settings = GatewaySettings(
        kafka=kafka, sites_file=sites_file, port=0,
        tls_cert=cert.cert_file, tls_key=cert.key_file, ops_port=0,
    )
    sink_settings = SinkSettings(kafka=kafka, clickhouse=ClickHouseSettings(stack_settings.clickhouse_url), ops_port=0)
    worker = demo_pipeline.WorkerProcess(
        kafka, home / "worker", heartbeat_interval_s=DEMO_CADENCE.heartbeat_s * args.acceleration,
    )
    # Each of the three creates the registry's topics it uses as it starts.
    async with Gateway(gw_settings, registry, SiteDirectory.load(sites_file)) as gateway:
        await worker.start()
        try:
            sink = ClickHouseSink(sink_settings, registry)
            async with sink:
                await _pipeline(stack_settings, args, home, sim, gateway, sink, worker, stop, site_id, token, cloud_dir)
        finally:
            await worker.stop()
    return sink_settings


async def _pipeline(
    stack_settings: StackSettings, args: argparse.Namespace, home: Path, sim: SimulatorServer, gateway: Gateway,
    sink: ClickHouseSink, worker: demo_pipeline.WorkerProcess, stop: asyncio.Event, site_id: str, token: str,
    cloud_dir: Path,
) -> None:
    """Collector on, progress until the duration is over, then drain everything."""
    registry = sink.registry
    collector_settings = _write_site_config(home, site_id, token, gateway.url, cloud_dir / "ca.pem", sim)
    sink_stop = asyncio.Event()
    sink_task = asyncio.create_task(sink.run(sink_stop))
    async with Collector(collector_settings, registry) as collector:
        print(f"{args.printers} printers at {sim.url}, gateway {gateway.url}, Kafka {sink.settings.kafka.bootstrap_servers}")
        print(f"collector status page {collector.status_url}; site config {home / 'site.toml'}")
        print(f"stream worker pid {worker.pid} (app {worker.app_id}); sink -> {sink.settings.clickhouse.describe()}")
        demo_pipeline.print_ops({"gateway": gateway.ops.url, "collector": collector.ops.url,
                                 "worker": worker.ops_url, "sink": sink.ops.url})
        sys.stdout.flush()
        runner = asyncio.create_task(collector.run(stop))
        await _progress(sim, collector, gateway, sink, worker, stop, args)
        stop.set()
        await runner
        _summary(collector, gateway)
    print("draining: the worker and the sink catch up, then stop ...", flush=True)
    await demo_pipeline.wait_caught_up(sink, worker, sink_task, settle_s=5.0, timeout_s=60.0)
    await worker.stop()
    await demo_pipeline.wait_caught_up(sink, None, sink_task, settle_s=1.0, timeout_s=30.0)
    sink_stop.set()
    await sink_task
    print(f"sink: {sink.counters.records_stored} records stored in {sink.counters.batches_written} batches, "
          f"{sink.counters.dead_lettered} dead-lettered", flush=True)


def _write_site_config(home: Path, site_id: str, token: str, gateway_url: str, gateway_ca: Path, sim: SimulatorServer) -> CollectorSettings:
    settings = CollectorSettings(
        site_id=site_id, site_secret=secrets.token_urlsafe(32), state_dir=home / "collector",
        gateway_url=gateway_url, gateway_token=token, gateway_ca_file=gateway_ca,
        printer_urls=tuple(sim.base_urls.values()), printer_ca_file=sim.ca_file,
        status_port=0, cadence=DEMO_CADENCE,
    )
    (home / "site.toml").write_text(render(settings))
    return settings


async def _progress(
    sim: SimulatorServer, collector: Collector, gateway: Gateway, sink: ClickHouseSink,
    worker: demo_pipeline.WorkerProcess, stop: asyncio.Event, args: argparse.Namespace,
) -> None:
    started = time.monotonic()
    last = (0, 0, 0, 0)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), args.every)
        except asyncio.TimeoutError:
            pass
        worker.check()
        status = collector.status()
        sink_status = await sink.status()
        now = (
            sum(p["records_spooled"] for p in status["printers"]),
            status["uploader"]["records"],
            gateway.counters.records_produced,
            sink.counters.records_stored,
        )
        rates = [(b - a) / args.every for a, b in zip(last, now)]
        last = now
        sim_time = time.strftime("%Y-%m-%d %H:%M", time.gmtime(sim.clock.now_ms() / 1000))
        paused = f" PAUSED ({sink_status.last_error[:60]})" if sink_status.paused_for_s else ""
        print(
            f"[{time.monotonic() - started:5.0f} s] sim {sim_time}  spooled {now[0]:>7} ({rates[0]:5.0f}/s)  "
            f"uploaded {now[1]:>7} ({rates[1]:5.0f}/s)  produced {now[2]:>7} ({rates[2]:5.0f}/s)  "
            f"stored {now[3]:>7} ({rates[3]:5.0f}/s, lag {sum(sink_status.lag.values())}){paused}  "
            f"spool depth {status['spool']['pending_records']}",
            flush=True,
        )
        if args.duration and time.monotonic() - started >= args.duration:
            return


def _summary(collector: Collector, gateway: Gateway) -> None:
    s = collector.status()
    c = gateway.counters
    print(
        f"done: {c.records_produced} records produced to Kafka in {c.batches_accepted} batches "
        f"({c.batches_refused} refused); {s['uploader']['wire_bytes']} bytes uploaded; "
        f"{s['spool']['pending_records']} records still in the spool for next time"
    )
