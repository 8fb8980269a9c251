"""The measuring side of `printfleet bench opcua` (benchmarks/opcua/main.py).

One simulator process (`printfleet simulate`, real time, the default cadence) serves the
same N printers twice: by the printer API (HTTPS) and as N OPC 40540 machines on one OPC
UA server (`--opcua-printers N`). Each run starts a fresh collector process (a spawned
multiprocessing child, the only process measured) for one protocol: the N printer API
printers, or the one OPC UA endpoint with its N machines. `ByteRelay`s in front of the
simulator count every byte both ways (TLS or OPC UA SecureChannel messages, not TCP/IP
headers): one for the OPC UA port, and one per printer for the HTTPS port, because the
simulator serves every printer on one port and aiohttp pools connections by host and
port: through one relay the collector would reuse one printer's kept-alive connection
for the next printer, which a site (a host per printer) never can. The client certificate and the pinned server certificate
still verify through the relay: the HTTPS certificate names 127.0.0.1, not a port, and
asyncua's client uses the URL it was given for the socket and for the EndpointUrl it
sends; it picks the secure endpoint by policy and mode, and the driver compares the
offered certificate with the pinned file, neither of which involves the port.

The collector child runs its drivers only (as tests/integration/test_collector_opcua.py
does): the records are spooled to its temp state folder and not uploaded, so neither a
gateway nor Kafka is needed and the upload's CPU (the same per record for both protocols,
measured by `printfleet bench ingest`) is not in the figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import datetime as dt
import io
import multiprocessing as mp
import pstats
import queue
import secrets
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from benchmarks.ingest.collector import COLLECTOR_ENV, collector_environment
from benchmarks.ingest.report import records_per_hour
from benchmarks.ingest.site import BenchError, ByteRelay, ProcessSample, SimulatorProcess
from benchmarks.opcua.report import OPCUA, PRINTER_API, Sample
from producers.collector.collector import Collector
from producers.collector.config import Cadence, CollectorSettings
from producers.collector.printer_tables import OpcUaPrinter
from producers.collector.drivers.opcua import client_certificate

Progress = Callable[[str], None]
Status = Callable[[], Awaitable[dict[str, Any]]]

SITE = "bench-opcua"
OPCUA_USER = "bench"
ENDPOINT_PATH = "/printfleet/"  # producers/simulator/opcua_server.py ENDPOINT_PATH


@dataclass(frozen=True)
class OpcUaBenchOptions:
    printers: int = 100  # printers by the printer API, and as many OPC UA machines
    runs: int = 3  # of each protocol, alternating: A B A B A B
    # Measured window of each run: one period of the 300 s cadences (counters, consumables,
    # logs), so each device reads each of them once per window; a multiple of the 10 s heartbeat.
    seconds: float = 300.0
    warmup_s: float = 30.0  # at least; then until every device answered and the backlog is read
    max_warmup_s: float = 240.0
    opcua_port: int = 24840
    seed: int = 42
    profile: bool = False  # cProfile the collector in each window (it slows it: figures for looking only)


@dataclass(frozen=True)
class BenchSite:
    """What both kinds of run connect through: the simulator behind two byte relays."""

    sim: SimulatorProcess
    https: tuple[ByteRelay, ...]  # one per printer, in the order of sim.base_urls
    opcua: ByteRelay
    opcua_dir: Path
    password_file: Path
    client_keys: Path  # a state folder holding the collector's trusted OPC UA key pair
    tmp: Path


def relayed(url: str, port: int) -> str:
    """`url` with its port replaced (the host kept): the same resource through a relay."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    return urlunsplit((parts.scheme, f"{host}:{port}", parts.path, parts.query, parts.fragment))


@contextlib.asynccontextmanager
async def bench_site(options: OpcUaBenchOptions, progress: Progress) -> AsyncIterator[BenchSite]:
    """Trust the collector's certificate, start the simulator, put the relays in front.
    Raises BenchError when the simulator does not start."""
    with tempfile.TemporaryDirectory(prefix="bench-opcua-") as tmp_name:
        tmp = Path(tmp_name)
        opcua_dir = tmp / "opcua-server"
        # The server reads its trusted client certificates when it starts: trust first.
        client_keys = tmp / "collector-keys"
        pair = await client_certificate(client_keys, SITE)
        (opcua_dir / "trusted").mkdir(parents=True)
        (opcua_dir / "trusted" / "collector.der").write_bytes(pair.der())
        password = secrets.token_urlsafe(18)
        users_file = tmp / "users.txt"
        users_file.write_text(f"{OPCUA_USER}:{password}\n")
        password_file = tmp / "opcua-password"
        password_file.write_text(password + "\n")
        n = options.printers
        progress(f"starting a simulator of {n} printers, all {n} also as OPC UA machines on port {options.opcua_port}")
        extra = ["--opcua-printers", str(n), "--opcua-port", str(options.opcua_port), "--opcua-dir", str(opcua_dir),
                 "--opcua-users-file", str(users_file)]
        start = dt.datetime.now(dt.timezone.utc).isoformat()
        async with SimulatorProcess(n, 1.0, start=start, seed=options.seed, timeout_s=180.0, extra_args=extra) as sim:
            https_port = urlsplit(sim.base_urls[0]).port
            if https_port is None or len({urlsplit(u).port for u in sim.base_urls}) != 1:
                raise BenchError(f"the simulator's printers are not on one HTTPS port: {sim.base_urls[:3]}")
            async with contextlib.AsyncExitStack() as relays:
                https = tuple([await relays.enter_async_context(ByteRelay("127.0.0.1", https_port))
                               for _ in sim.base_urls])
                opcua = await relays.enter_async_context(ByteRelay("127.0.0.1", options.opcua_port))
                yield BenchSite(sim, https, opcua, opcua_dir, password_file, client_keys, tmp)


def collector_settings(site: BenchSite, protocol: str, state_dir: Path) -> CollectorSettings:
    """A collector for the simulator's printers by one protocol, through the relays."""
    common: dict[str, Any] = dict(site_id=SITE, site_secret="bench-secret", state_dir=state_dir,
                                  gateway_url="https://127.0.0.1:9", gateway_token="not-uploaded", status_port=0,
                                  cadence=Cadence())
    if protocol == PRINTER_API:
        urls = tuple(relayed(u, relay.port) for u, relay in zip(site.sim.base_urls, site.https))
        return CollectorSettings(printer_urls=urls, printer_ca_file=site.sim.ca_file, **common)
    table = OpcUaPrinter(url=f"opc.tcp://127.0.0.1:{site.opcua.port}{ENDPOINT_PATH}",
                         server_certificate=site.opcua_dir / "server-cert.der", user=OPCUA_USER,
                         password_file=site.password_file)
    # The key pair the simulator trusts, copied: each run starts with an empty spool and cursors.
    shutil.copytree(site.client_keys / "opcua", state_dir / "opcua")
    return CollectorSettings(printer_urls=(), printers=(table,), **common)


def _collector_main(settings: CollectorSettings, stop: Any, results: Any, window: Any = None,
                    profile_file: Path | None = None) -> None:
    """The collector child: its drivers only (nothing uploaded) until `stop` is set.
    With `profile_file`, cProfile runs from when `window` is set and its stats are
    written there at the end."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="collector child: %(levelname)s %(name)s %(message)s")
    for name in ("asyncua", "producers.collector.drivers.opcua"):  # certificate hints, reconnect chatter
        logging.getLogger(name).setLevel(logging.ERROR)
    # One line per record kept aside (the OPC UA driver's job, counters and identity until
    # they map); the bench counts them in its table instead.
    logging.getLogger("producers.collector.device_sink").setLevel(logging.CRITICAL)

    # CPU time, not wall time: the collector waits most of the window, and waiting costs nothing.
    profiler = cProfile.Profile(time.process_time) if profile_file is not None else None
    profiling = False

    async def main() -> None:
        nonlocal profiling
        async with Collector(settings) as collector:
            results.put(collector.status_url)
            halt = asyncio.Event()
            drivers = asyncio.gather(*(d.run(halt) for d in collector.drivers))
            while not stop.is_set() and not drivers.done():
                if profiler is not None and window.is_set() and not profiling:
                    profiler.enable()
                    profiling = True
                await asyncio.sleep(0.2)
            if profiler is not None and profiling:
                profiler.disable()
                profiler.dump_stats(str(profile_file))
            halt.set()
            await drivers

    asyncio.run(main())


async def one_run(site: BenchSite, protocol: str, n: int, options: OpcUaBenchOptions, progress: Progress) -> Sample:
    """Start a collector for `protocol`, warm it up, measure one window, stop it."""
    state_dir = site.tmp / f"run-{n}-{protocol}"
    settings = collector_settings(site, protocol, state_dir)
    ctx = mp.get_context("spawn")
    stop, results, window = ctx.Event(), ctx.Queue(), ctx.Event()
    profile_file = site.tmp / f"run-{n}-{protocol}.prof" if options.profile else None
    proc = ctx.Process(target=_collector_main, args=(settings, stop, results, window, profile_file), daemon=True)
    with collector_environment(COLLECTOR_ENV):
        proc.start()
    try:
        try:
            status_url = await asyncio.to_thread(results.get, True, 120)
        except queue.Empty:
            raise BenchError(f"run {n}: the collector process did not start in 120 s") from None
        assert proc.pid is not None
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:

            async def status() -> dict[str, Any]:
                async with session.get(status_url) as resp:
                    data: dict[str, Any] = await resp.json()
                    return data

            warmup_s, steady = await _warm_up(status, protocol, n, options, progress)
            relays = (*site.https, site.opcua)
            first_status, first, t0 = await status(), ProcessSample.of(proc.pid), time.monotonic()
            sim0 = ProcessSample.of(site.sim.pid)
            window.set()
            up0, down0, conn0 = (sum(r.up for r in relays), sum(r.down for r in relays),
                                 sum(r.connections for r in relays))
            while (elapsed := time.monotonic() - t0) < options.seconds:
                await asyncio.sleep(min(30.0, options.seconds - elapsed))
                now = ProcessSample.of(proc.pid)
                progress(f"run {n} {protocol}: {time.monotonic() - t0:.0f} of {options.seconds:g} s, "
                         f"CPU {(now.cpu_s - first.cpu_s) / (time.monotonic() - t0) * 100:.1f} % of a core, "
                         f"RSS {now.rss_bytes / 2**20:.0f} MiB")
            last, t1 = ProcessSample.of(proc.pid), time.monotonic()
            sim1 = ProcessSample.of(site.sim.pid)
            up1, down1, conn1 = (sum(r.up for r in relays), sum(r.down for r in relays),
                                 sum(r.connections for r in relays))
            last_status = await status()
    finally:
        stop.set()
        await asyncio.to_thread(proc.join, 60)
        if proc.is_alive():
            proc.terminate()
            await asyncio.to_thread(proc.join, 10)
    before = _by_device(first_status)
    after = _by_device(last_status)
    spooled: Counter[str] = Counter()
    devices_spooling = 0
    for device, p in after.items():
        old = before.get(device, {})
        delta = Counter(p["spooled_by_kind"])
        delta.subtract(old.get("spooled_by_kind", {}))
        spooled.update({k: v for k, v in delta.items() if v > 0})
        devices_spooling += sum(delta.values()) > 0
    return Sample(
        protocol=protocol, devices=options.printers, answered=len(after), seconds=t1 - t0,
        cpu_s=last.cpu_s - first.cpu_s, rss_bytes=last.rss_bytes, peak_rss_bytes=last.peak_rss_bytes,
        bytes_up=up1 - up0, bytes_down=down1 - down0, connections=conn1 - conn0, spooled=dict(spooled),
        devices_spooling=devices_spooling,
        kept_aside=_total(last_status, "unmappable") - _total(first_status, "unmappable"),
        poll_failures=_total(last_status, "poll_failures") - _total(first_status, "poll_failures"),
        warmup_s=warmup_s, steady=steady, simulator_cpu_s=sim1.cpu_s - sim0.cpu_s,
        profile=_top(profile_file) if profile_file is not None else "",
    )


def _top(profile_file: Path, lines: int = 25) -> str:
    """The functions with the most own time in a cProfile stats file, as pstats prints them."""
    if not profile_file.exists():
        return "(no profile: the collector stopped before its window)"
    out = io.StringIO()
    stats = pstats.Stats(str(profile_file), stream=out)
    stats.sort_stats("tottime").print_stats(lines)
    return out.getvalue()


def _by_device(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The status page's devices that answered, by device id."""
    return {p["device_id"]: p for p in status["printers"] if p["device_id"]}


def _total(status: dict[str, Any], key: str) -> int:
    return sum(int(p[key]) for p in status["printers"])


async def _warm_up(status: Status, protocol: str, n: int, options: OpcUaBenchOptions,
                   progress: Progress) -> tuple[float, bool]:
    """Wait until every device answered and the records come no faster than about the
    cadence asks (each printer's backlog of events, jobs and logs is read); at least
    `warmup_s`, at most `max_warmup_s`. Returns (seconds waited, whether it got there)."""
    expected = options.printers * sum(records_per_hour(Cadence()).values()) / 3600
    started, last_print = time.monotonic(), 0.0
    previous: tuple[float, int] | None = None
    while (elapsed := time.monotonic() - started) < options.max_warmup_s:
        await asyncio.sleep(2.0)
        s = await status()
        spooled = sum(int(p["records_spooled"]) for p in s["printers"])
        now = time.monotonic()
        rate = (spooled - previous[1]) / (now - previous[0]) if previous else float("inf")
        previous = (now, spooled)
        answered = sum(1 for p in s["printers"] if p["device_id"] and p["reachable"])
        if elapsed >= options.warmup_s and answered == options.printers and rate <= 2 * expected + 5:
            return time.monotonic() - started, True
        if now - last_print >= 10:
            last_print = now
            progress(f"run {n} {protocol}: warming up {elapsed:.0f} s: {answered} of {options.printers} answered, "
                     f"{spooled:,} records spooled, {rate:.0f}/s")
    return time.monotonic() - started, False
