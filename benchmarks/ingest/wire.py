"""Part (a) of `printfleet bench ingest`: wire bytes per printer-hour, collector -> gateway,
at the default cadence, against one JSON payload per HTTPS connection.

The simulator runs `acceleration` times faster than real time in its own process and the
collector's cadence is divided by the same factor, so each simulated hour gets exactly
the default number of polls (if the machine keeps up: `cadence fidelity` says). The
collector uploads over HTTPS through a `ByteRelay` to an in-process Gateway producing to
the running Kafka; the gateway keeps each accepted body for the analysis afterwards.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

from common.kafka.settings import KafkaSettings
from producers import batch_format
from benchmarks.ingest.report import (
    Uploaded,
    cadence_factors,
    kbit_s,
    records_per_hour,
    scaled_cadence,
    upload_rounds,
)
from benchmarks.ingest.site import ByteRelay, CloudSite, SimulatorProcess
from producers.collector.collector import Collector
from producers.collector.config import Cadence, CollectorSettings
from producers.gateway.gateway import Gateway, GatewaySettings
from producers.gateway.sites import SiteDirectory
from schemas import SchemaRegistry

Progress = Callable[[str], None]


@dataclass(frozen=True)
class WireOptions:
    printers: int = 20
    hours: float = 2.0
    acceleration: float = 180.0
    warmup_min: float = 10.0  # simulated minutes before counting: the printers' backlog
    seed: int = 42


class _KeepingGateway(Gateway):
    """The real Gateway, plus a middleware that keeps every body it answered 200."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.bodies: list[bytes] = []

    def app(self) -> web.Application:
        app = super().app()

        @web.middleware
        async def keep(request: web.Request, handler: Handler) -> web.StreamResponse:
            response = await handler(request)
            if response.status == 200 and request.path == "/v1/records":
                self.bodies.append(await request.read())  # aiohttp caches the body it read
            return response

        app.middlewares.append(keep)
        return app


@dataclass(frozen=True)
class _Snapshot:
    sim_ms: int
    body_bytes: int
    batches: int
    up: int
    down: int
    connections: int
    bodies: int


@dataclass
class KindFigures:
    records: int = 0
    avro_bytes: int = 0
    json_bytes: int = 0
    max_avro: int = 0


@dataclass
class ProbeFigures:
    """Bytes the sockets carried, measured against a local aiohttp TLS server."""

    fresh_overhead_up: float  # per request on a new connection, beyond the body
    fresh_overhead_down: float
    kept_overhead_up: float  # per request on a kept-alive connection, beyond the body
    kept_overhead_down: float
    json_fresh_overhead_up: float  # per JSON POST on a new connection, beyond the body
    json_fresh_overhead_down: float
    tls_version: str


@dataclass
class WireResult:
    options: WireOptions
    printer_hours: float
    body_bytes: int  # uploader counter over the window
    up: int  # relay, collector -> gateway
    down: int
    connections: int
    batches: int
    records: int
    heartbeats_per_printer_hour: float
    expected_heartbeats_per_hour: float
    kinds: dict[str, KindFigures] = field(default_factory=dict)
    round_count: int = 0
    round_body_bytes: int = 0
    baseline_json_bytes: int = 0
    probe: ProbeFigures | None = None

    @property
    def fidelity(self) -> float:
        return self.heartbeats_per_printer_hour / self.expected_heartbeats_per_hour

    @property
    def model_up_bytes(self) -> float:
        """Real-time model: 1 s upload rounds, their gzip bodies + per-request overhead."""
        assert self.probe is not None
        return self.round_body_bytes + self.round_count * self.probe.kept_overhead_up

    def factors(self) -> dict[str, float]:
        """Per kind, what brings the counted records up to the full default cadence."""
        return cadence_factors({k: f.records for k, f in self.kinds.items()}, self.printer_hours, Cadence())

    @property
    def model_up_bytes_normalised(self) -> float:
        """The model with every cadence-driven kind at its full count: the bodies scaled by
        the Avro bytes that adds, the rounds by the heartbeats it adds (an upper bound)."""
        assert self.probe is not None
        factors = self.factors()
        avro = sum(f.avro_bytes for f in self.kinds.values())
        scaled = sum(f.avro_bytes * factors[k] for k, f in self.kinds.items())
        body = self.round_body_bytes * (scaled / avro if avro else 1.0)
        return body + self.round_count * factors.get("heartbeat", 1.0) * self.probe.kept_overhead_up

    @property
    def baseline_up_bytes_normalised(self) -> float:
        """One HTTPS connection per record, each its JSON + a fresh connection's overhead,
        every cadence-driven kind at its full count."""
        assert self.probe is not None
        factors = self.factors()
        return sum(
            (f.json_bytes + f.records * self.probe.json_fresh_overhead_up) * factors[k] for k, f in self.kinds.items()
        )

    def kind_shares(self) -> list[tuple[str, float, float, int, float, float, float]]:
        """Per kind: (kind, records per printer-hour as counted, mean Avro B, max Avro B, and
        normalised: Avro kbit/s per printer, share of Avro bytes, JSON-per-connection kbit/s
        per printer)."""
        assert self.probe is not None
        factors, seconds = self.factors(), self.printer_hours * 3600
        total = sum(f.avro_bytes * factors[k] for k, f in self.kinds.items()) or 1.0
        rows = []
        for kind, f in sorted(self.kinds.items(), key=lambda kv: -kv[1].avro_bytes * factors[kv[0]]):
            avro = f.avro_bytes * factors[kind]
            baseline = (f.json_bytes + f.records * self.probe.json_fresh_overhead_up) * factors[kind]
            rows.append((kind, f.records / self.printer_hours, f.avro_bytes / f.records,
                         f.max_avro, kbit_s(avro, seconds), avro / total, kbit_s(baseline, seconds)))
        return rows


async def measure(kafka: KafkaSettings, options: WireOptions, progress: Progress) -> WireResult:
    """Run the site for `options.hours` simulated hours and analyse what was uploaded.
    Raises BenchError when the simulator does not start."""
    acceleration = options.acceleration
    span = dt.timedelta(hours=options.hours + options.warmup_min / 60 + 2)
    # Start in the past: Kafka refuses records timestamped more than an hour ahead.
    start = (dt.datetime.now(dt.timezone.utc) - span).isoformat()
    registry = SchemaRegistry.load_default()
    progress(f"wire: starting a simulator of {options.printers} printers at x{acceleration:g}")
    with tempfile.TemporaryDirectory(prefix="bench-wire-", dir=_fast_dir()) as tmp_name:
        tmp = Path(tmp_name)
        async with SimulatorProcess(options.printers, acceleration, start=start, seed=options.seed) as sim:
            site = CloudSite.create(tmp, sim.devices)
            settings = GatewaySettings(
                kafka=kafka, sites_file=site.sites_file, port=0,
                tls_cert=site.cert_file, tls_key=site.key_file,
            )
            gateway = _KeepingGateway(settings, registry, SiteDirectory.load(site.sites_file))
            async with gateway:
                async with ByteRelay("127.0.0.1", int(gateway.url.rsplit(":", 1)[1])) as relay:
                    collector_settings = CollectorSettings(
                        site_id=site.site_id, site_secret="bench-secret", state_dir=tmp / "collector",
                        gateway_url=relay.url("https"), gateway_token=site.token, gateway_ca_file=site.ca_file,
                        printer_urls=tuple(sim.base_urls), printer_ca_file=sim.ca_file, status_port=-1,
                        cadence=scaled_cadence(Cadence(), acceleration),
                    )
                    first, last = await _run_collector(collector_settings, sim, gateway, relay, options, progress)
            bodies = gateway.bodies[first.bodies : last.bodies]
        probe = await _probe(site, bodies, registry, progress)
    result = WireResult(
        options=options, printer_hours=options.printers * (last.sim_ms - first.sim_ms) / 3_600_000,
        body_bytes=last.body_bytes - first.body_bytes, up=last.up - first.up, down=last.down - first.down,
        connections=last.connections - first.connections, batches=last.batches - first.batches, records=0,
        heartbeats_per_printer_hour=0.0, expected_heartbeats_per_hour=records_per_hour(Cadence())["heartbeat"],
        probe=probe,
    )
    _analyse(result, bodies, registry)
    return result


async def _run_collector(
    settings: CollectorSettings, sim: SimulatorProcess, gateway: _KeepingGateway, relay: ByteRelay,
    options: WireOptions, progress: Progress,
) -> tuple[_Snapshot, _Snapshot]:
    async with Collector(settings) as collector:
        stop = asyncio.Event()
        runner = asyncio.create_task(collector.run(stop))

        # Simulated time from one reading of the simulator's clock and our own monotonic
        # clock, so that polling for it does not load the process being measured.
        anchor_ms, anchor = await sim.now_ms(), time.monotonic()

        def sim_now() -> int:
            return anchor_ms + int((time.monotonic() - anchor) * options.acceleration * 1000)

        def snapshot() -> _Snapshot:
            c = collector.uploader.counters
            return _Snapshot(sim_now(), c.wire_bytes, c.batches, relay.up, relay.down, relay.connections,
                             len(gateway.bodies))

        try:
            began = sim_now()
            warm_until = began + int(options.warmup_min * 60_000)
            end = warm_until + int(options.hours * 3_600_000)
            first: _Snapshot | None = None
            last_print = 0.0
            while True:
                await asyncio.sleep(0.25)
                if runner.done():
                    runner.result()  # raises what the collector raised
                    raise RuntimeError("the collector stopped by itself")
                now = sim_now()
                if first is None and now >= warm_until:
                    first = snapshot()
                if first is not None and now >= end:
                    last = snapshot()
                    break
                if time.monotonic() - last_print >= 5:
                    last_print = time.monotonic()
                    progress(f"wire: simulated {(now - began) / 3.6e6:.2f} of "
                             f"{(end - began) / 3.6e6:.2f} h, {collector.uploader.counters.records:,} records "
                             f"in {collector.uploader.counters.batches:,} batches uploaded")
        finally:
            stop.set()
            await runner
    assert first is not None
    return first, last


def _analyse(result: WireResult, bodies: Sequence[bytes], registry: SchemaRegistry) -> None:
    """Decode every uploaded record: the per-kind split, the rounds model, the JSON baseline."""
    messages: list[bytes] = []
    uploaded: list[Uploaded] = []
    heartbeats: defaultdict[str, int] = defaultdict(int)
    for body in bodies:
        for message in batch_format.split_frames(batch_format.decompress(body, 1 << 30), 1 << 30):
            decoded = registry.decode(message)
            record = decoded.record
            figures = result.kinds.setdefault(decoded.kind, KindFigures())
            json_size = len(_json(record))
            figures.records += 1
            figures.avro_bytes += len(message)
            figures.json_bytes += json_size
            figures.max_avro = max(figures.max_avro, len(message))
            result.baseline_json_bytes += json_size
            messages.append(message)
            uploaded.append(Uploaded(decoded.kind, record["device_id"], int(record["event_time"])))
            if decoded.kind == "heartbeat":
                heartbeats[record["device_id"]] += 1
    result.records = len(messages)
    hours = result.printer_hours / result.options.printers
    result.heartbeats_per_printer_hour = sum(heartbeats.values()) / result.options.printers / hours
    rounds = upload_rounds(uploaded)
    result.round_count = len(rounds)
    result.round_body_bytes = sum(len(batch_format.encode_batch(messages[i] for i in r)) for r in rounds)


def _json(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str).encode()


async def _probe(site: CloudSite, bodies: Sequence[bytes], registry: SchemaRegistry, progress: Progress) -> ProbeFigures:
    """Measure per-request and per-connection overheads with real aiohttp HTTPS requests,
    headers as the uploader sends them, through a ByteRelay to a local aiohttp TLS server
    with the gateway's certificate."""
    progress("wire: measuring HTTPS overheads per request and per connection")
    versions: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        transport = request.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        if ssl_object is not None:
            versions.append(str(ssl_object.version()))
        return web.json_response({"accepted": 1, "duplicate": False})

    app = web.Application(client_max_size=64 << 20)
    app.router.add_post("/v1/records", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    server_ssl = _server_ssl(site)
    tcp = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ssl)
    await tcp.start()
    port = int(runner.addresses[0][1])
    batch_headers = {"Authorization": f"Bearer {site.token}", "Content-Type": batch_format.CONTENT_TYPE,
                     batch_format.UPLOADER_HEADER: "0" * 32, batch_format.SEQUENCE_HEADER: "100001-100500"}
    json_headers = {"Authorization": f"Bearer {site.token}", "Content-Type": "application/json"}
    small = [b for b in bodies if len(b) < 4096][:20] or [batch_format.encode_batch([b"x" * 100])] * 20
    payloads = _json_sample(bodies, registry)
    try:
        fresh = await _post_all(port, site, small, batch_headers, fresh=True)
        kept = await _post_all(port, site, small, batch_headers, fresh=False)
        json_fresh = await _post_all(port, site, payloads, json_headers, fresh=True)
    finally:
        await runner.cleanup()
    n = len(small)
    fresh_up, fresh_down = fresh[0] / n, fresh[1] / n
    # kept: one handshake (= a fresh request's overhead minus a kept one's) + n requests.
    kept_up = (kept[0] - fresh_up) / (n - 1)
    kept_down = (kept[1] - fresh_down) / (n - 1)
    m = len(payloads)
    return ProbeFigures(fresh_up, fresh_down, kept_up, kept_down, json_fresh[0] / m, json_fresh[1] / m,
                        statistics.mode(versions) if versions else "?")


def _server_ssl(site: CloudSite) -> Any:
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(site.cert_file, site.key_file)
    return context


def _json_sample(bodies: Sequence[bytes], registry: SchemaRegistry, per_kind: int = 5) -> list[bytes]:
    """Up to `per_kind` records of each kind as JSON, spread over the run."""
    by_kind: dict[str, list[bytes]] = defaultdict(list)
    for body in bodies[:: max(1, len(bodies) // 50)]:
        for message in batch_format.split_frames(batch_format.decompress(body, 1 << 30), 1 << 30):
            decoded = registry.decode(message)
            if len(by_kind[decoded.kind]) < per_kind:
                by_kind[decoded.kind].append(_json(decoded.record))
    return [p for payloads in by_kind.values() for p in payloads] or [b"{}"]


async def _post_all(port: int, site: CloudSite, bodies: Sequence[bytes], headers: dict[str, str], *,
                    fresh: bool) -> tuple[float, float]:
    """POST each body through a fresh relay; returns (up, down) bytes beyond the bodies."""
    client_ssl = site.client_ssl()
    async with ByteRelay("127.0.0.1", port) as relay:
        connector = aiohttp.TCPConnector(force_close=fresh)
        async with aiohttp.ClientSession(connector=connector) as session:
            for body in bodies:
                async with session.post(f"{relay.url('https')}/v1/records", data=body, headers=headers,
                                        ssl=client_ssl) as resp:
                    await resp.read()
                    resp.raise_for_status()
        await asyncio.sleep(0.05)  # the relay has counted the closing records
        return relay.up - sum(len(b) for b in bodies), float(relay.down)


def _fast_dir() -> str | None:
    """/dev/shm when there is one: the collector's spool then fsyncs to memory, so disk
    latency does not slow the accelerated polling (it changes no byte on the wire)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() else None
