"""Dashboard bench: `printfleet bench dashboard` (`run(argv)`), on the running stack.

A `printfleet dashboard` process serves 1,000 printers of one site (`--printers`), each
sending a fleet.state record every 10 s (`--interval-s`: a tenth of the fleet each
second; as many records as the worker would write if every heartbeat changed something
visible, which is its worst case: it writes far fewer), while 10 pages (`--pages`) hold
the site's live event stream. Measured:

- latency: a fleet.state record produced (its `last_heartbeat_at` is the wall clock at
  sending) -> its `printer` event read by a page, p50 and p99 over every page; against a
  baseline in the same process and run: the same records read by a bare consumer
  (read_committed, no group), i.e. what any reader of the topic waits;
- the dashboard process's memory (RSS) with the fleet loaded and no page, at the end,
  and its peak; its CPU (% of one core) over the live part.

`--through-worker`: the whole path instead. The printers send heartbeats to
telemetry.heartbeat, a `printfleet worker` (its own app id, in a process of its own)
turns them into fleet.state (each heartbeat changes the pending job count, so each makes
a record), and the latency is from the heartbeat produced (its event time is the wall
clock at sending, and the record's `last_heartbeat_at` is that) to the page; the baseline
consumer then shows the worker's part (heartbeat -> fleet.state readable).

`--runs N` (3): each variant measured N times, each run with a fresh dashboard process
(and worker app id) and a topic prefix of its own (deleted after it); every run is shown,
then the median of each figure. `--both`: both variants in each round, the one that went
second going first in the next. Within a run the pages and the baseline read the same
records at the same time, so there is nothing there to alternate. Every page and the
baseline must read every live record: the exit status is 1 if a run fell short, and the
report says which (read / expected per run).

No ClickHouse database (the dashboard logs that it cannot load open alerts from one).
Tables go to stdout as Markdown, progress to stderr. Figures: docs/dashboard.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiokafka import TopicPartition

from benchmarks import isolation
from benchmarks.dashboard_runs import LABELS, Memory, Reads, Run, schedule, summarise, table, verdict
from benchmarks.streams import Workers  # the streams bench's worker processes
from common.kafka import admin, clients
from common.kafka.settings import KafkaSettings
from common.kafka.topics import pipeline_specs, topic_for
from dashboard.access import add_user
from deploy.machine import describe
from deploy.settings import StackSettings
from schemas import SchemaRegistry
from schemas.samples import sample_record

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
DRAIN_S = 30.0  # how long after the live part the bench waits for the last events
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Options:
    kafka: KafkaSettings
    printers: int = 1000
    pages: int = 10
    seconds: float = 30.0
    interval_s: float = 10.0
    variants: tuple[bool, ...] = (False,)  # through a worker or not, in the order of the first run
    runs: int = 3


@dataclass
class Samples:
    pages: list[Reads]
    baseline: Reads = field(default_factory=Reads)


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _rss_bytes(pid: int) -> tuple[int, int]:
    """(RSS, peak RSS) of a process, from /proc (Linux)."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _record(site: str, device: str, n: int, at: int) -> dict[str, object]:
    base = sample_record("fleet_state", seed=n % 97)
    return {**base, "record_id": str(uuid.uuid4()), "site_id": site, "device_id": device, "event_time": at,
            "last_heartbeat_at": at, "printer_name": f"printer {n:04d}", "layers_done": n % 3000}


def _heartbeat(site: str, device: str, n: int, at: int) -> dict[str, object]:
    """A heartbeat whose pending job count differs from the printer's previous one, so
    that the worker writes a fleet.state record for it (a visible change): `_send` gives
    a printer's successive records successive `n`. (They went up by the number of
    slices, an even 100, and left the count as it was for 70 printers of 1,000.)"""
    base = sample_record("heartbeat", seed=1)
    return {**base, "record_id": str(uuid.uuid4()), "site_id": site, "device_id": device, "event_time": at,
            "status": "POWERED_ON", "activity": "PRINTING", "current_job_id": f"J{n % 7}", "layers_total": 5000,
            "layers_done": 1 + n % 4999, "recent_layer_duration_s": 9.5, "pending_job_count": n % 2}


class Dashboard:
    """`printfleet dashboard` as a child process on a free port."""

    def __init__(self, kafka: KafkaSettings, users: Path, log: Path) -> None:
        self.kafka, self.users, self.log = kafka, users, log
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""

    async def start(self) -> None:
        stack = StackSettings.from_env()
        env = {**os.environ, **isolation.environment(self.kafka)}
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "printfleet", "dashboard", "--port", "0", "--ops-port", "-1",
            "--users-file", str(self.users), "--clickhouse-url", stack.clickhouse_url,
            "--clickhouse-database", f"bench_{uuid.uuid4().hex[:8]}_none",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=open(self.log, "wb"))
        assert self.proc.stdout is not None
        line = (await asyncio.wait_for(self.proc.stdout.readline(), 60)).decode()
        if not line.startswith("dashboard http"):
            raise RuntimeError(f"the dashboard did not start: {line!r}; see {self.log}")
        self.url = line.split()[1]

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def _page(url: str, token: str, site: str, since_ms: list[int], out: Reads, opened: asyncio.Event,
                counted: list[int]) -> None:
    """One page's event stream: its `printer` events (`counted`: all, the snapshot too)
    and the latencies of those sent after `since_ms[0]`."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
        async with session.get(url + "api/events", params={"site": site},
                               headers={"Authorization": f"Bearer {token}"}) as r:
            opened.set()
            event = ""
            async for raw in r.content:
                if raw.startswith(b"event: "):
                    event = raw[7:].strip().decode()
                elif raw.startswith(b"data: ") and event == "printer":
                    now = wall_ms()
                    printer = json.loads(raw[6:])
                    counted[0] += 1
                    out.read(printer["device_id"], printer["last_heartbeat_at"], now, since_ms[0])


async def _baseline(kafka: KafkaSettings, registry: SchemaRegistry, since_ms: list[int], out: Reads) -> None:
    topic = kafka.topic(topic_for("fleet_state"))
    consumer = clients.consumer(kafka, group_id=None, auto_offset_reset="latest", fetch_max_wait_ms=10)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(pipeline_specs([topic_for("fleet_state")])[0].partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        while True:
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                now = wall_ms()
                for m in messages:
                    record = registry.decode(m.value).record
                    out.read(record["device_id"], record["last_heartbeat_at"], now, since_ms[0])
    finally:
        await consumer.stop()


async def _send(kafka: KafkaSettings, registry: SchemaRegistry, site: str, devices: Sequence[str], *,
                seconds: float, interval_s: float, live: bool, kind: str = "fleet_state") -> int:
    """Send every printer's record of `kind` (fleet_state or heartbeat) once (`live`
    False: as fast as possible), or for `seconds` at one record per printer every
    `interval_s`. Returns records sent."""
    topic = kafka.topic(topic_for(kind))
    make = _record if kind == "fleet_state" else _heartbeat
    producer = clients.producer(kafka, linger_ms=5)
    await producer.start()
    sent = 0
    try:
        if not live:
            futures = [await producer.send(topic, registry.encode(kind, make(site, d, i, wall_ms())),
                                           key=d.encode()) for i, d in enumerate(devices)]
            await asyncio.gather(*futures)
            return len(devices)
        slices = max(1, round(interval_s * 10))  # a slice of the fleet every 100 ms
        step, start = 0, time.monotonic()
        while time.monotonic() - start < seconds:
            lo, hi = (step % slices) * len(devices) // slices, (step % slices + 1) * len(devices) // slices
            for i in range(lo, hi):
                n = i + step // slices + 1  # a printer's successive records: successive n
                await producer.send(topic, registry.encode(kind, make(site, devices[i], n, wall_ms())),
                                    key=devices[i].encode())
                sent += 1
            step += 1
            await asyncio.sleep(max(0.0, start + step * 0.1 - time.monotonic()))
        await producer.flush()
        return sent
    finally:
        await producer.stop()


async def _measure(opts: Options, kafka: KafkaSettings, number: int, through_worker: bool, folder: Path,
                   users: Path, token: str, registry: SchemaRegistry) -> Run:
    """One run over `kafka`'s (fresh) topics: a fresh dashboard process (and worker)."""
    run = uuid.uuid4().hex[:8]
    site, devices = f"bench-site-{run}", [f"bench-{run}-{i:05d}" for i in range(opts.printers)]
    await admin.apply(kafka, pipeline_specs([topic_for("fleet_state"), topic_for("alert"), topic_for("heartbeat")]))
    folder.mkdir()
    dashboard = Dashboard(kafka, users, folder / "dashboard.log")
    kind = "heartbeat" if through_worker else "fleet_state"
    worker = Workers(kafka, folder, 1) if through_worker else None
    samples, tasks = Samples([Reads() for _ in range(opts.pages)]), []
    since: list[int] = [0]
    try:
        if worker is not None:
            _log("  starting a stream worker")
            await worker.ready()
        await dashboard.start()
        base_rss, _ = _rss_bytes(dashboard.pid)
        await _send(kafka, registry, site, devices, seconds=0, interval_s=opts.interval_s, live=False, kind=kind)
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 60
            while True:
                async with session.get(dashboard.url + "api/fleet", params={"site": site},
                                       headers={"Authorization": f"Bearer {token}"}) as r:
                    if len((await r.json())["printers"]) == opts.printers:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("the dashboard never showed the whole fleet")
                await asyncio.sleep(0.5)
        loaded_rss, _ = _rss_bytes(dashboard.pid)
        _log(f"  fleet loaded: RSS {loaded_rss / 2**20:.1f} MiB (at start {base_rss / 2**20:.1f} MiB); opening pages")
        counted = [0]
        opened = [asyncio.Event() for _ in range(opts.pages)]
        tasks = [asyncio.create_task(_page(dashboard.url, token, site, since, out, o, counted))
                 for out, o in zip(samples.pages, opened)]
        tasks.append(asyncio.create_task(_baseline(kafka, registry, since, samples.baseline)))
        await asyncio.wait_for(asyncio.gather(*(o.wait() for o in opened)), 30)
        while counted[0] < opts.pages * opts.printers:  # every page has its snapshot
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # the baseline consumer positioned
        since[0] = wall_ms()
        cpu0, t0 = _cpu_s(dashboard.pid), time.monotonic()
        _log(f"  live: {opts.printers / opts.interval_s:,.0f} records/s for {opts.seconds:g} s")
        sent = await _send(kafka, registry, site, devices, seconds=opts.seconds, interval_s=opts.interval_s,
                           live=True, kind=kind)
        # Wait for the last records rather than a fixed time: through a worker they come
        # at its next checkpoint, later on a busy machine. CPU is over the live part
        # until then, so a short run shows less (and says SHORT).
        deadline = time.monotonic() + DRAIN_S
        while (min(len(page.latencies) for page in samples.pages) < sent or len(samples.baseline.latencies) < sent) \
                and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        cpu_pct = 100 * (_cpu_s(dashboard.pid) - cpu0) / (time.monotonic() - t0)
        rss, peak = _rss_bytes(dashboard.pid)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await dashboard.stop()
        if worker is not None:
            await worker.stop()
        await isolation.drop_topics(kafka)
    return summarise(number, through_worker, sent, [page.latencies for page in samples.pages],
                     samples.baseline.latencies, Memory(base_rss, loaded_rss, rss, peak), cpu_pct)


async def _bench(opts: Options) -> int:
    registry = SchemaRegistry.load_default()
    folder = Path(tempfile.mkdtemp(prefix="printfleet-bench-dashboard-"))
    users = folder / "users.toml"
    token = add_user(users, "bench", [], operator=True)
    order = schedule(opts.runs, opts.variants)
    _log(f"bench dashboard: Kafka {opts.kafka.bootstrap_servers}, {opts.printers:,} printers, {opts.pages} pages, "
         f"{opts.seconds:g} s live, {len(order)} runs (topics bench-<run>.*, deleted after each); logs in {folder}")
    runs: list[Run] = []
    for k, (number, through_worker) in enumerate(order, 1):
        _log(f"run {k}/{len(order)}: {LABELS[through_worker]} ({number} of {opts.runs})")
        # Topics of its own: a dashboard loads all of fleet.state, so earlier runs' printers
        # would grow the later runs' memory.
        kafka = dataclasses.replace(opts.kafka, topic_prefix=f"bench-{isolation.run_id()}.")
        runs.append(await _measure(opts, kafka, number, through_worker,
                                   folder / f"run-{number}-{'worker' if through_worker else 'state'}",
                                   users, token, registry))
    _report(opts, runs, order)
    return 0 if all(run.complete for run in runs) else 1


def _report(opts: Options, runs: Sequence[Run], order: Sequence[tuple[int, bool]]) -> None:
    first: dict[int, bool] = {}  # run number -> the variant that went first (with --both)
    for number, through_worker in order if len(opts.variants) > 1 else ():
        first.setdefault(number, through_worker)
    print(f"# printfleet bench dashboard\n\nMachine: {describe()}; {opts.printers:,} printers of one site, "
          f"{opts.pages} pages on its live stream, {opts.seconds:g} s live, one record per printer every "
          f"{opts.interval_s:g} s ({opts.printers / opts.interval_s:,.0f}/s); {opts.runs} "
          f"run{'' if opts.runs == 1 else 's'} of each variant"
          + (", the variants alternating" if len(opts.variants) > 1 else "")
          + ", each with a fresh dashboard process (and stream worker) and topics of its own. Latency: produced "
          "(wall clock) -> read by a page (SSE `printer` event) or by the baseline, a bare read_committed "
          "consumer of fleet.state in this process, reading the same records at the same time.\n")
    for through_worker in opts.variants:
        print(table(through_worker, runs, {n: v == through_worker for n, v in first.items()}) + "\n")
    print(verdict(runs))


def run(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="printfleet bench dashboard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kafka-bootstrap", help="one broker (default: the local stack's)")
    parser.add_argument("--printers", type=int, default=1000)
    parser.add_argument("--pages", type=int, default=10, help="open pages (SSE streams) of the site")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the live part")
    parser.add_argument("--interval-s", type=float, default=10.0, help="seconds between two records of a printer")
    variant = parser.add_mutually_exclusive_group()
    variant.add_argument("--through-worker", action="store_true",
                         help="send heartbeats through a stream worker (the whole path) instead of fleet.state records")
    variant.add_argument("--both", action="store_true",
                         help="both variants in each run, taking turns at going first")
    parser.add_argument("--runs", type=int, default=3,
                        help="measurements of each variant, each with a fresh dashboard (and worker); the figures "
                             "are their medians, each run shown (default 3)")
    args = parser.parse_args(argv)
    if args.printers < 1 or args.pages < 1 or args.seconds <= 0 or args.interval_s <= 0 or args.runs < 1:
        parser.error("--printers, --pages, --seconds, --interval-s and --runs must be positive")
    variants = (False, True) if args.both else (args.through_worker,)
    return asyncio.run(_bench(Options(isolation.kafka(args.kafka_bootstrap), args.printers, args.pages,
                                      args.seconds, args.interval_s, variants, args.runs)))
