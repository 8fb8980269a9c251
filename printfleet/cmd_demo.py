"""`printfleet demo`: the main job, a local fleet end to end on the embedded defaults.

Starts the local stack if it is not up, then runs the whole pipeline for `--duration`
seconds (0: until Ctrl-C), printing progress:

    simulated printers -> collector (one per site) -> gateway -> Kafka -> stream worker -> Kafka
                                                                     \\-> ClickHouse sink -> ClickHouse
    maker's signed releases -> Kafka (catalogue) -> stream worker (advisories)

Five sites (`--sites`) share the simulated printers (`--printers`), each with its own id,
token and collector, so the anonymous benchmark (a cohort needs five sites) has its
cohorts. One simulator serves every printer, on one simulated clock; each collector
polls only its own site's printers, and the gateway accepts only those from it. The
first site is a mixed one: `--opcua-printers` of its printers (default 2) are OPC 40540
machines on the simulator's OPC UA server, read by the collector's OPC UA driver, the
others by the printer API (demo_opcua.py makes the certificates, password and trust). The
maker's release-signing key is made once; the maker's releases (a firmware newer than
the printers', per model) are signed with it and published to the catalogue, and the
worker checks them with its public key, so printers are advised. The simulated clock
starts shortly before a UTC midnight: benchmarks are per day and come once a day ends.

The fleet web page (`printfleet dashboard`, port 18448) runs beside them, with an
operator and a user of the first site, whose sign-in tokens are printed.

The simulator, collectors, gateway, sink and dashboard run in this process; the stream worker
(`printfleet worker`, a Faust app) runs as a child process, whose status lines are passed
through. At the end the collectors upload what they still hold, the worker and the sink
catch up and stop, and a short analytics summary is read from ClickHouse with the named
queries of `printfleet query`. Each site's configuration is written to
`.stack/demo/site-<n>/` so its collector can be run alone with `printfleet collector`.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import signal
import sys
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.errors import PrintfleetError
from common.kafka.settings import KafkaSettings
from dashboard.access import add_user
from dashboard.server import DashboardServer
from dashboard.settings import DASHBOARD_PORT, DashboardSettings
from deploy import stack
from deploy.errors import StackError
from deploy.settings import StackSettings
from printfleet import demo_fleet, demo_opcua, demo_pipeline
from printfleet.cmd_simulate import quiet_nodeset_import
from printfleet.demo_fleet import DemoSite
from printfleet.demo_opcua import DemoOpcUa
from producers.collector.collector import Collector
from producers.collector.config import Cadence, CollectorSettings, render
from producers.gateway.gateway import Gateway, GatewaySettings
from producers.gateway.sites import SiteDirectory
from producers.simulator import Fleet, SimulatorServer, SimulatorSettings, ensure_site_ca, issue_server_certificate
from schemas import SchemaRegistry
from sinks.clickhouse import ClickHouseSink, SinkSettings
from sinks.connection import ClickHouseSettings
from streams import catalogue_publisher
from streams.anonymous_benchmark import MIN_SITES

# Faster than the production defaults so that a minute shows every kind of record.
DEMO_CADENCE = Cadence(heartbeat_s=2, events_s=2, jobs_s=5, logs_s=10, counters_s=10, consumables_s=10, identity_s=60)
SIGNING_KEY: Final = "release-signing-key.pem"


@dataclass(frozen=True)
class DemoSettings:
    """One demo run: built from the flags by `run`, or by a test."""

    kafka: KafkaSettings
    clickhouse: ClickHouseSettings
    home: Path  # .stack/demo: the sites' files, the worker's, the signing key, the clock
    sites: int = MIN_SITES
    printers: int = 20
    opcua_printers: int = 2  # of the first site's printers, read over OPC UA; 0: none
    acceleration: float = 120.0  # simulated seconds per second
    duration_s: float = 90.0  # 0: until stopped
    every_s: float = 5.0  # between progress lines
    # Real seconds from the simulator's start to the first simulated UTC midnight: the
    # day that ends then gets its benchmark while the demo still runs.
    midnight_after_s: float = 30.0
    site_prefix: str = "demo-site"
    worker_app_id: str = "printfleet-demo-streams"
    dashboard_port: int = DASHBOARD_PORT  # taken: any free port

    def __post_init__(self) -> None:
        if self.sites < MIN_SITES:
            raise ValueError(f"--sites must be at least {MIN_SITES}: a benchmark cohort needs {MIN_SITES} sites")
        if self.printers < self.sites:
            raise ValueError(f"--printers ({self.printers}) must be at least --sites ({self.sites}): every site needs a printer")
        if not 0 <= self.opcua_printers <= self.printers:
            raise ValueError(f"--opcua-printers must be 0..--printers ({self.printers}), not {self.opcua_printers}")
        if not self.acceleration > 0 or not self.every_s > 0 or self.duration_s < 0 or self.midnight_after_s < 0:
            raise ValueError("--acceleration and --every must be > 0, --duration >= 0")

    @property
    def midnight_after_ms(self) -> int:
        """The same lead in simulated milliseconds."""
        return int(self.midnight_after_s * self.acceleration * 1000)


def register(sub: Any) -> None:
    parser = sub.add_parser("demo", help="run a local fleet end to end on the embedded defaults")
    parser.add_argument("--sites", type=int, default=MIN_SITES,
                        help=f"sites sharing the printers, each with its own collector (default and minimum {MIN_SITES}: "
                             "a benchmark cohort)")
    parser.add_argument("--printers", type=int, default=20, help="simulated printers, shared out to the sites (default 20)")
    parser.add_argument("--opcua-printers", type=int, default=2, metavar="N",
                        help="printers read over OPC UA (OPC 40540, docs/opcua.md), at the first site as far as its "
                             "printers' models allow; the others by the printer API (default 2; 0: none)")
    parser.add_argument("--acceleration", type=float, default=120.0, help="simulated seconds per second (default 120)")
    parser.add_argument("--duration", type=float, default=90.0, help="seconds to run; 0 runs until Ctrl-C (default 90)")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between progress lines (default 5)")
    parser.add_argument("--dashboard-port", type=int, default=DASHBOARD_PORT,
                        help=f"port of the fleet web page (default {DASHBOARD_PORT}; taken or 0: any free port)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    stack_settings = StackSettings.from_env()
    try:
        settings = DemoSettings(
            kafka=stack_settings.kafka(), clickhouse=ClickHouseSettings(stack_settings.clickhouse_url),
            home=stack_settings.state_dir / "demo", sites=args.sites, printers=args.printers,
            opcua_printers=args.opcua_printers,
            acceleration=args.acceleration, duration_s=args.duration, every_s=args.every,
            dashboard_port=args.dashboard_port,
        )
    except ValueError as exc:
        print(f"printfleet demo: {exc}", file=sys.stderr)
        return 2
    if settings.opcua_printers:
        quiet_nodeset_import()
    try:
        if not all(h.healthy for h in asyncio.run(stack.status(stack_settings))):
            print("starting the local stack (Kafka, ClickHouse) ...", flush=True)
            for s in asyncio.run(stack.up(stack_settings)):
                print(f"  {s.name:<10} ready in {s.ready_s:4.1f} s  {s.address}", flush=True)
    except StackError as exc:
        print(f"printfleet demo: {exc}", file=sys.stderr)
        return 1
    try:
        asyncio.run(_until_signalled(settings))
    except PrintfleetError as exc:  # the sink's, the Kafka layer's, the worker's end
        print(f"printfleet demo: {exc}", file=sys.stderr)
        return 1
    print("the stack keeps running; stop it with: .venv/bin/printfleet stack down")
    return 0


async def _until_signalled(settings: DemoSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_demo(settings, stop)


async def run_demo(settings: DemoSettings, stop: asyncio.Event) -> None:
    """The whole demo on running Kafka and ClickHouse servers: until `settings.duration_s`
    passed or `stop` is set, then drain and print the summary. Raises PrintfleetError
    (`demo_pipeline.DemoSetupError` for the signing key)."""
    home = settings.home
    home.mkdir(parents=True, exist_ok=True)
    clock_file = home / "sim-clock"
    start = demo_fleet.start_ms(time.time_ns() // 1_000_000, _last_clock(clock_file), settings.midnight_after_ms)
    sim_settings = SimulatorSettings(printers=settings.printers, acceleration=settings.acceleration, port=0,
                                     ca_dir=home / "site-ca", start_ms=start, opcua_printers=settings.opcua_printers,
                                     opcua_port=0, opcua_dir=home / "opcua", opcua_users_file=home / "opcua" / "users.txt")
    fleet = await asyncio.to_thread(Fleet, sim_settings)
    # The simulator serves the last N printers of its fleet over OPC UA.
    opcua_ids = fleet.printer_ids[len(fleet.printer_ids) - settings.opcua_printers:] if settings.opcua_printers else []
    sites = demo_fleet.gather_opcua(
        demo_fleet.deal(demo_fleet.printers_of(fleet.truth()), settings.sites, settings.site_prefix), opcua_ids)
    key = demo_pipeline.signing_key(home / SIGNING_KEY)
    # Before the simulator starts: it reads its users and trusted certificates once, then.
    opcua = (await demo_opcua.prepare(home, sites, {s.site_id: _site_folder(home, s) / "collector" for s in sites})
             if opcua_ids else None)
    sink_settings = SinkSettings(kafka=settings.kafka, clickhouse=settings.clickhouse, ops_port=0)
    async with AsyncExitStack() as services:
        cloud = await _cloud(settings, services, sites, sink_settings)
        await _publish_releases(settings, key, start)
        # The simulated clock starts with the server: after the cloud, so the first
        # midnight comes `midnight_after_s` after the collectors start.
        sim = await services.enter_async_context(SimulatorServer(sim_settings, fleet=fleet))
        try:
            await _pipeline(settings, sites, sim, cloud, opcua, stop)
        finally:
            clock_file.write_text(f"{sim.clock.now_ms()}\n")
    await demo_pipeline.analytics_summary(sink_settings)


def _site_folder(home: Path, site: DemoSite) -> Path:
    return home / f"site-{site.number}"


def _last_clock(clock_file: Path) -> int:
    """Where the last demo's simulated clock stopped (0: no last demo)."""
    try:
        return int(clock_file.read_text().strip())
    except (OSError, ValueError):
        return 0


@dataclass
class _Cloud:
    gateway: Gateway
    worker: demo_pipeline.WorkerProcess
    sink: ClickHouseSink
    sink_task: asyncio.Task[None]
    sink_stop: asyncio.Event
    gateway_ca: Path
    tokens: dict[str, str]  # site id -> its bearer token
    dashboard: DashboardServer
    dashboard_tokens: dict[str, str]  # user name -> their sign-in token


async def _cloud(settings: DemoSettings, services: AsyncExitStack, sites: list[DemoSite],
                 sink_settings: SinkSettings) -> _Cloud:
    """Gateway, worker and sink started, each stopped by `services` at its end (in the
    reverse order). Another service of the demo starts and stops here beside them."""
    cloud_dir = settings.home / "cloud-ca"
    cert = issue_server_certificate(ensure_site_ca(cloud_dir, "printfleet cloud"), cloud_dir)
    registry = SchemaRegistry.load_default()
    sites_file = settings.home / "sites.toml"
    # A site's bearer token is for this run only: sites.toml keeps its digest.
    tokens = {s.site_id: secrets.token_urlsafe(24) for s in sites}
    sites_file.write_text(SiteDirectory.render([(s.site_id, tokens[s.site_id], [p.device_id for p in s.printers])
                                                for s in sites]))
    gw_settings = GatewaySettings(kafka=settings.kafka, sites_file=sites_file, port=0,
                                  tls_cert=cert.cert_file, tls_key=cert.key_file, ops_port=0)
    # Each of the three creates the registry's topics it uses as it starts.
    gateway = await services.enter_async_context(Gateway(gw_settings, registry, SiteDirectory.load(sites_file)))
    worker = demo_pipeline.WorkerProcess(
        settings.kafka, settings.home / "worker", app_id=settings.worker_app_id,
        heartbeat_interval_s=DEMO_CADENCE.heartbeat_s * settings.acceleration,
        release_key_file=catalogue_publisher.public_key_file(settings.home / SIGNING_KEY),
    )
    services.push_async_callback(worker.stop)
    await worker.start()
    sink = await services.enter_async_context(ClickHouseSink(sink_settings, registry))
    sink_stop = asyncio.Event()
    sink_task = asyncio.create_task(sink.run(sink_stop))
    services.push_async_callback(_stop_sink, sink_stop, sink_task)
    dashboard, dashboard_tokens = await _dashboard(settings, services, sites)
    return _Cloud(gateway, worker, sink, sink_task, sink_stop, cloud_dir / "ca.pem", tokens, dashboard, dashboard_tokens)


async def _dashboard(settings: DemoSettings, services: AsyncExitStack,
                     sites: list[DemoSite]) -> tuple[DashboardServer, dict[str, str]]:
    """The fleet web page, with an operator and a user of the first site, whose tokens
    are new each run (the users file is written afresh)."""
    users_file = settings.home / "dashboard-users.toml"
    users_file.unlink(missing_ok=True)
    first = sites[0].site_id
    tokens = {"operator": add_user(users_file, "operator", [], operator=True),
              first: add_user(users_file, first, [first], operator=False)}
    dash_settings = DashboardSettings(kafka=settings.kafka, clickhouse=settings.clickhouse, port=settings.dashboard_port,
                                      users_file=users_file)
    try:
        dashboard = await services.enter_async_context(DashboardServer(dash_settings))
    except OSError as exc:  # the port is taken (a `printfleet dashboard` of one's own, say)
        print(f"dashboard: port {settings.dashboard_port} not free ({exc.strerror}); taking any free port", flush=True)
        dashboard = await services.enter_async_context(DashboardServer(replace(dash_settings, port=0)))
    return dashboard, tokens


async def _stop_sink(sink_stop: asyncio.Event, sink_task: asyncio.Task[None]) -> None:
    sink_stop.set()
    await sink_task


async def _publish_releases(settings: DemoSettings, key: Ed25519PrivateKey, released_at: int) -> None:
    published = await catalogue_publisher.publish_signed(settings.kafka, demo_fleet.releases(released_at), key)
    print("release catalogue: " + ", ".join(f"{r.model_number} {r.advisory_type.lower()} {r.version} ({r.severity})"
                                            for r in published)
          + f", signed with {settings.home / SIGNING_KEY}", flush=True)


async def _pipeline(settings: DemoSettings, sites: list[DemoSite], sim: SimulatorServer, cloud: _Cloud,
                    opcua: DemoOpcUa | None, stop: asyncio.Event) -> None:
    """Collectors on, progress until the duration is over, then drain everything."""
    sink, worker, gateway = cloud.sink, cloud.worker, cloud.gateway
    configs = [_write_site_config(settings.home, site, cloud, sim, opcua) for site in sites]
    async with AsyncExitStack() as collectors_stack:
        collectors = [await collectors_stack.enter_async_context(Collector(c, sink.registry)) for c in configs]
        began = time.strftime("%Y-%m-%d %H:%M", time.gmtime(sim.clock.now_ms() / 1000))
        print(f"{len(sites)} sites, {settings.printers} printers at {sim.url} (simulated x{settings.acceleration:g} from "
              f"{began} UTC), gateway {gateway.url}, Kafka {settings.kafka.bootstrap_servers}")
        for site, collector, config in zip(sites, collectors, configs):
            by_opcua = f", {demo_opcua.start_line(site, sim.opcua.url)}" if site.opcua_ids and sim.opcua else ""
            print(f"  {site.site_id}: {len(site.printers)} printers ({site.models()}){by_opcua}, "
                  f"status page {collector.status_url}, config {config.state_dir.parent / 'site.toml'}")
        if (setup := demo_opcua.setup_line(opcua, sim.opcua)) is not None:
            print(setup)
        if not demo_fleet.shared_models(sites):
            print(f"  (no printer model is at all {len(sites)} sites: no benchmark will appear; try more --printers)")
        print(f"stream worker pid {worker.pid} (app {worker.app_id}); sink -> {sink.settings.clickhouse.describe()}")
        _print_dashboard(cloud, sites[0].site_id)
        demo_pipeline.print_ops({"gateway": gateway.ops.url,
                                 **{f"collector {s.number}": c.ops.url for s, c in zip(sites, collectors)},
                                 "worker": worker.ops_url, "sink": sink.ops.url})
        sys.stdout.flush()
        runners = [asyncio.create_task(c.run(stop)) for c in collectors]
        await _progress(settings, sim, collectors, cloud, stop)
        stop.set()
        await asyncio.gather(*runners)
        _summary(sites, collectors, gateway)
    print("draining: the worker and the sink catch up, then stop ...", flush=True)
    await demo_pipeline.wait_caught_up(sink, worker, cloud.sink_task, settle_s=5.0, timeout_s=60.0)
    await worker.stop()
    await demo_pipeline.wait_caught_up(sink, None, cloud.sink_task, settle_s=1.0, timeout_s=30.0)
    await _stop_sink(cloud.sink_stop, cloud.sink_task)
    print(f"sink: {sink.counters.records_stored} records stored in {sink.counters.batches_written} batches, "
          f"{sink.counters.dead_lettered} dead-lettered", flush=True)
    await demo_opcua.print_stored(sink.settings.clickhouse, sites)


def _print_dashboard(cloud: _Cloud, a_site: str) -> None:
    print(f"fleet web page {cloud.dashboard.url}  sign in with the operator's token "
          f"{cloud.dashboard_tokens['operator']} (all sites), or {a_site}'s {cloud.dashboard_tokens[a_site]} "
          f"(that site only); users: {cloud.dashboard.settings.users_file} (tokens hashed)", flush=True)


def _write_site_config(home: Path, site: DemoSite, cloud: _Cloud, sim: SimulatorServer,
                       opcua: DemoOpcUa | None) -> CollectorSettings:
    """The site's collector settings, also written to site-<n>/site.toml: its printer API
    printers' URLs, and a `[[printer]]` table for its OPC UA machines, if it has any."""
    folder = _site_folder(home, site)
    folder.mkdir(parents=True, exist_ok=True)
    settings = CollectorSettings(
        site_id=site.site_id, site_secret=secrets.token_urlsafe(32), state_dir=folder / "collector",
        gateway_url=cloud.gateway.url, gateway_token=cloud.tokens[site.site_id], gateway_ca_file=cloud.gateway_ca,
        printer_urls=tuple(sim.base_urls[p.printer_id] for p in site.api_printers), printer_ca_file=sim.ca_file,
        status_port=0, cadence=DEMO_CADENCE, printers=demo_opcua.site_tables(site, opcua, sim.opcua),
    )
    (folder / "site.toml").write_text(render(settings))
    return settings


async def _progress(settings: DemoSettings, sim: SimulatorServer, collectors: list[Collector], cloud: _Cloud,
                    stop: asyncio.Event) -> None:
    """One line per tick, every site summed."""
    started = time.monotonic()
    last = (0, 0, 0, 0)
    every = settings.every_s
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), every)
        except asyncio.TimeoutError:
            pass
        cloud.worker.check()
        statuses = [c.status() for c in collectors]
        sink_status = await cloud.sink.status()
        now = (
            sum(p["records_spooled"] for s in statuses for p in s["printers"]),
            sum(s["uploader"]["records"] for s in statuses),
            cloud.gateway.counters.records_produced,
            cloud.sink.counters.records_stored,
        )
        rates = [(b - a) / every for a, b in zip(last, now)]
        last = now
        sim_time = time.strftime("%Y-%m-%d %H:%M", time.gmtime(sim.clock.now_ms() / 1000))
        paused = f" PAUSED ({sink_status.last_error[:60]})" if sink_status.paused_for_s else ""
        print(
            f"[{time.monotonic() - started:5.0f} s] sim {sim_time}  spooled {now[0]:>7} ({rates[0]:5.0f}/s)  "
            f"uploaded {now[1]:>7} ({rates[1]:5.0f}/s)  produced {now[2]:>7} ({rates[2]:5.0f}/s)  "
            f"stored {now[3]:>7} ({rates[3]:5.0f}/s, lag {sum(sink_status.lag.values())}){paused}  "
            f"spool depth {sum(s['spool']['pending_records'] for s in statuses)}",
            flush=True,
        )
        if settings.duration_s and time.monotonic() - started >= settings.duration_s:
            return


def _summary(sites: list[DemoSite], collectors: list[Collector], gateway: Gateway) -> None:
    statuses = [c.status() for c in collectors]
    c = gateway.counters
    print(
        f"done: {c.records_produced} records produced to Kafka in {c.batches_accepted} batches "
        f"({c.batches_refused} refused) from {len(collectors)} sites; "
        f"{sum(s['uploader']['wire_bytes'] for s in statuses)} bytes uploaded; "
        f"{sum(s['spool']['pending_records'] for s in statuses)} records still in the spools for next time"
    )
    for site, status in zip(sites, statuses):
        if site.opcua_ids:
            print(f"  {demo_opcua.spooled_line(site, status['printers'])}")
