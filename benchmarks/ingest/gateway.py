"""Part (b) of `printfleet bench ingest`: records/s the gateway takes into Kafka.

Load generator: `clients` child processes (multiprocessing, spawn), each holding
`concurrency` POSTs in flight, so on a 2-core machine the gateway's event loop has a core
of its own instead of sharing it with the clients. Each child first builds its gzip
batches of distinct heartbeat records (before the clock starts), then POSTs them for
`seconds`; records/s counts the records of batches answered 200 within that window.

Baselines in this (the gateway's) process, with the same records, after the gateway run:
a bare aiokafka producer with send() per record, and the gateway's own Publisher without
HTTP and without decoding.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import multiprocessing as mp
import pstats
import queue
import ssl
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from common.kafka import clients
from common.kafka.settings import KafkaSettings
from producers import batch_format
from benchmarks.ingest.site import BenchError, CloudSite, busy_fraction, machine_jiffies
from producers.gateway.gateway import Gateway, GatewaySettings
from producers.gateway.publisher import OutRecord, Publisher
from producers.gateway.sites import SiteDirectory
from schemas import SchemaRegistry
from schemas.samples import sample_record
from common.kafka.topics import GATEWAY_UPLOADS, pipeline_specs, topic_for

Progress = Callable[[str], None]
TOPIC = topic_for("heartbeat")


@dataclass(frozen=True)
class GatewayOptions:
    seconds: float = 15.0
    baseline_seconds: float = 6.0
    clients: int = 2
    concurrency: int = 3  # POSTs in flight per client; the gateway allows 8 in all
    batch_records: int = 5_000
    devices: int = 1_000
    plain_http: bool = False
    headroom_records_s: float = 80_000.0  # batches built per client: enough for this rate
    profile: bool = False


@dataclass
class ClientReport:
    records: int = 0
    batches: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    ran_out: bool = False
    body_bytes: int = 0


@dataclass
class GatewayResult:
    options: GatewayOptions
    gateway_records_s: float
    gateway_cpu_pct: float
    machine_busy_pct: float
    raw_send_records_s: float
    publisher_records_s: float
    report: ClientReport
    mean_body_bytes: float
    profile: str = ""


class HeartbeatFactory:
    """Distinct heartbeat messages for enrolled devices, cheaply: one encoded template per
    device, whose record_id (the first field, 36 ASCII bytes after the 10-byte header and
    a 1-byte length) is replaced by a fresh UUID-shaped id for each message."""

    def __init__(self, registry: SchemaRegistry, site_id: str, devices: list[str], id_prefix: str = "") -> None:
        now_ms = int(time.time() * 1000)
        self.templates: list[tuple[bytes, bytes, int]] = []
        for i, device in enumerate(devices):
            record = sample_record("heartbeat", seed=i)
            record.update(site_id=site_id, device_id=device, event_time=now_ms - i)
            message = registry.encode("heartbeat", record)
            if message[11:47] != record["record_id"].encode():
                raise BenchError("the heartbeat layout changed: record_id is no longer the first field")
            self.templates.append((message[:11], message[47:], record["event_time"]))
        self.devices = [d.encode() for d in devices]
        self._prefix = id_prefix or random_id_prefix()
        self._count = 0

    def messages(self, n: int) -> list[tuple[bytes, bytes, int]]:
        """`n` (key, message, timestamp_ms) triples, devices round robin."""
        out = []
        templates, devices = self.templates, self.devices
        for _ in range(n):
            i = self._count % len(templates)
            head, tail, ts = templates[i]
            rid = f"{self._prefix}{self._count >> 48 & 0xFFF:03x}-{self._count & 0xFFFFFFFFFFFF:012x}".encode()
            out.append((devices[i], head + rid + tail, ts))
            self._count += 1
        return out


def random_id_prefix() -> str:
    """The first 20 characters of a version-4 UUID (`xxxxxxxx-xxxx-4xxx-8`), random."""
    h = uuid.uuid4().hex
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8"


def _client_main(args: dict[str, Any], ready: Any, go: Any, results: Any) -> None:
    """One load-generator process: build batches, wait for `go`, POST for `seconds`."""
    registry = SchemaRegistry.load_default()
    factory = HeartbeatFactory(registry, args["site_id"], args["devices"], args["prefix"])
    bodies = [
        batch_format.encode_batch(m for _, m, _ in factory.messages(args["batch_records"]))
        for _ in range(args["batches"])
    ]
    ready.put(len(bodies))
    go.wait()
    report = asyncio.run(_post_for(args, bodies))
    results.put(report.__dict__)


async def _post_for(args: dict[str, Any], bodies: list[bytes]) -> ClientReport:
    report, statuses = ClientReport(), Counter[int]()
    base_headers = {"Authorization": f"Bearer {args['token']}", "Content-Type": batch_format.CONTENT_TYPE}
    context: ssl.SSLContext | bool = ssl.create_default_context(cafile=args["ca_file"]) if args["tls"] else False
    pending = iter(bodies)
    deadline = time.monotonic() + args["seconds"]
    url = args["url"] + "/v1/records"

    async def worker(session: aiohttp.ClientSession) -> None:
        # Each task uploads in order like one collector: its own id, its numbers rising.
        uploader, sent = uuid.uuid4().hex, 0
        while time.monotonic() < deadline:
            body = next(pending, None)
            if body is None:
                report.ran_out = True
                return
            headers = {**base_headers, batch_format.UPLOADER_HEADER: uploader,
                       batch_format.SEQUENCE_HEADER: f"{sent + 1}-{sent + args['batch_records']}"}
            sent += args["batch_records"]
            try:
                async with session.post(url, data=body, headers=headers, ssl=context) as resp:
                    await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, OSError):
                report.errors += 1
                continue
            if time.monotonic() > deadline:
                return  # answered after the window: not counted
            statuses[status] += 1
            if status == 200:
                report.batches += 1
                report.records += args["batch_records"]
                report.body_bytes += len(body)
            else:
                await asyncio.sleep(0.05)

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
        await asyncio.gather(*(worker(session) for _ in range(args["concurrency"])))
    report.statuses = dict(statuses)
    return report


async def measure(kafka: KafkaSettings, options: GatewayOptions, progress: Progress) -> GatewayResult:
    """Gateway run, then the two baselines. Raises BenchError when a client never got ready."""
    registry = SchemaRegistry.load_default()
    devices = [str(uuid.uuid4()) for _ in range(options.devices)]
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        site = CloudSite.create(Path(tmp), devices)
        tls = not options.plain_http
        settings = GatewaySettings(
            kafka=kafka, sites_file=site.sites_file, port=0,
            tls_cert=site.cert_file if tls else None, tls_key=site.key_file if tls else None,
        )
        async with Gateway(settings, registry, SiteDirectory.load(site.sites_file)) as gateway:
            report, cpu_pct, busy_pct, profile = await _drive(gateway.url, site, devices, options, progress)
            rate = report.records / options.seconds
    factory = HeartbeatFactory(registry, site.site_id, devices)
    enough = int(options.headroom_records_s * options.baseline_seconds)
    progress(f"gateway: baseline 1/2, bare aiokafka send() per record for {options.baseline_seconds:g} s")
    raw = await _raw_send(kafka, factory.messages(enough), options)
    progress(f"gateway: baseline 2/2, the gateway's Publisher without HTTP for {options.baseline_seconds:g} s")
    published = await _publisher(kafka, factory.messages(enough), options)
    mean_body = report.body_bytes / report.batches if report.batches else 0.0
    return GatewayResult(options, rate, cpu_pct, busy_pct, raw, published, report, mean_body, profile)


async def _drive(url: str, site: CloudSite, devices: list[str], options: GatewayOptions,
                 progress: Progress) -> tuple[ClientReport, float, float, str]:
    ctx = mp.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    batches = int(options.headroom_records_s * options.seconds / options.batch_records / options.clients) + 1
    prefix = random_id_prefix()
    procs = []
    for n in range(options.clients):
        args = {
            "site_id": site.site_id, "devices": devices, "token": site.token, "ca_file": str(site.ca_file),
            "tls": not options.plain_http, "url": url, "batch_records": options.batch_records,
            "batches": batches, "concurrency": options.concurrency, "seconds": options.seconds,
            "prefix": f"{prefix[:15]}{n:03x}-8",  # still the head of a v4 UUID, one per client
        }
        proc = ctx.Process(target=_client_main, args=(args, ready, go, results), daemon=True)
        proc.start()
        procs.append(proc)
    try:
        progress(f"gateway: {options.clients} client processes building {batches} batches of "
                 f"{options.batch_records:,} records each")
        for _ in procs:
            await asyncio.to_thread(ready.get, True, 180)
        progress(f"gateway: POSTing for {options.seconds:g} s, {options.clients} x {options.concurrency} in flight")
        profiler = cProfile.Profile() if options.profile else None
        cpu_before, busy_before = time.process_time(), machine_jiffies()
        started = time.monotonic()
        if profiler is not None:
            profiler.enable()
        go.set()
        while (elapsed := time.monotonic() - started) < options.seconds:
            await asyncio.sleep(min(5.0, options.seconds - elapsed))
            progress(f"gateway: {time.monotonic() - started:.0f} of {options.seconds:g} s")
        if profiler is not None:
            profiler.disable()
        cpu_pct = (time.process_time() - cpu_before) / (time.monotonic() - started) * 100
        busy_pct = busy_fraction(busy_before, machine_jiffies()) * 100
        reports: list[dict[str, Any]] = []
        while len(reports) < len(procs):
            try:
                reports.append(await asyncio.to_thread(results.get, True, 1.0))
            except queue.Empty:
                if time.monotonic() - started > options.seconds + 90:
                    raise BenchError("a load-generator process did not report") from None
    except queue.Empty:
        raise BenchError("a load-generator process did not get ready in 180 s") from None
    finally:
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
    total = ClientReport()
    for r in reports:
        total.records += r["records"]
        total.batches += r["batches"]
        total.errors += r["errors"]
        total.body_bytes += r["body_bytes"]
        total.ran_out = total.ran_out or r["ran_out"]
        for status, n in r["statuses"].items():
            total.statuses[status] = total.statuses.get(status, 0) + n
    return total, cpu_pct, busy_pct, _top(profiler) if profiler is not None else ""


def _top(profiler: cProfile.Profile, n: int = 25) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(n)
    return out.getvalue()


async def _raw_send(kafka: KafkaSettings, sample: list[tuple[bytes, bytes, int]], options: GatewayOptions) -> float:
    """A bare aiokafka producer (acks=all, idempotence, the Publisher's linger and batch
    size): send() per record, `concurrency x clients` tasks of `batch_records` each
    awaiting their acks, like the gateway's batches. Returns records/s."""
    producer = clients.producer(kafka, linger_ms=5, max_batch_size=1 << 20)
    await producer.start()
    try:
        async def one(chunk: list[tuple[bytes, bytes, int]]) -> None:
            futures = [await producer.send(kafka.topic(TOPIC), value, key=key, timestamp_ms=ts) for key, value, ts in chunk]
            await asyncio.gather(*futures)

        return await _for_seconds(one, sample, options)
    finally:
        await producer.stop()


async def _publisher(kafka: KafkaSettings, sample: list[tuple[bytes, bytes, int]], options: GatewayOptions) -> float:
    """The gateway's Publisher.commit on ready OutRecords: Kafka path only (one
    transaction per chunk, no group commit). Records/s."""
    publisher = Publisher(kafka, topics=pipeline_specs([TOPIC, GATEWAY_UPLOADS]), instance_id=f"bench-{uuid.uuid4().hex}")
    await publisher.start()
    records = [OutRecord(TOPIC, key, value) for key, value, _ in sample]
    try:
        async def one(chunk: list[OutRecord]) -> None:
            await publisher.commit(chunk, {})

        return await _for_seconds(one, records, options)
    finally:
        await publisher.stop()


async def _for_seconds(one: Callable[[list[Any]], Any], items: list[Any], options: GatewayOptions) -> float:
    """Run `one(chunk)` in `clients x concurrency` tasks for `baseline_seconds`; records/s."""
    size = options.batch_records
    chunks = [items[i : i + size] for i in range(0, len(items) - size + 1, size)]
    deadline = time.monotonic() + options.baseline_seconds
    done = 0

    async def task(k: int) -> None:
        nonlocal done
        while time.monotonic() < deadline:
            chunk = chunks[k % len(chunks)]
            k += options.clients * options.concurrency
            await one(chunk)
            if time.monotonic() <= deadline:
                done += len(chunk)

    await asyncio.gather(*(task(k) for k in range(options.clients * options.concurrency)))
    return done / options.baseline_seconds
