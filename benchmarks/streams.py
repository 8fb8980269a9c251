"""Stream bench: `printfleet bench streams` (`run(argv)`), on the running stack.

- throughput: records/s one worker process (`printfleet worker`; `--workers N`: N of them
  in one group, figures in all and per process) applies on the heartbeat
  path and on the event path, for a fleet of 1,000 printers, against a baseline measured
  in the same run: a bare aiokafka consumer that reads and decodes the same records
  (what any consumer pays before doing anything). Each path is measured `--repeats`
  times (3), the paths taking turns; the figure and its verdict are the median, beside
  each measurement (this machine's speed moves by half between runs);
- latency: with the worker caught up and 1,000 printers sending heartbeats at their
  normal cadence, printhead errors are produced at random printers; the time from
  producing an error to its RAISED alert on the `alerts` topic, p50 and p99.

Targets (issue "Stream processing"): >= 20,000 records/s per worker, alert p99 <= 1 s.
Tables go to stdout as Markdown, progress to stderr. Figures: docs/streams-bench.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiokafka import TopicPartition

from benchmarks import isolation
from benchmarks.streams_records import T0, device_ids, events, heartbeats
from common.kafka import clients
from common.kafka.settings import KafkaSettings
from common.kafka.topics import PARTITIONS, topic_for
from deploy.machine import describe
from schemas import SchemaRegistry

TARGET_RECORDS_S = 20_000
TARGET_P99_S = 1.0


@dataclass(frozen=True)
class Options:
    kafka: KafkaSettings  # the run's own topic prefix (benchmarks.isolation)
    printers: int = 1000
    records: int = 120_000
    latency_s: float = 30.0
    errors_per_s: float = 10.0
    workers: int = 1  # worker processes in the group; the target is per process
    repeats: int = 3  # throughput measurements per path; the verdict is on their median


@dataclass(frozen=True)
class Throughput:
    path: str
    records: int
    worker_s: float
    baseline_s: float
    timed: int  # records the worker applied within worker_s (between two status lines)

    @property
    def worker_rate(self) -> float:
        return self.timed / self.worker_s

    @property
    def baseline_rate(self) -> float:
        return self.records / self.baseline_s


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Workers:
    """`count` `printfleet worker` subprocesses in one group (one app id), starting at the
    latest offsets, each printing its status every 0.2 s to its own log."""

    def __init__(self, kafka: KafkaSettings, folder: Path, count: int) -> None:
        self.app_id = f"bench-streams-{uuid.uuid4().hex[:8]}"
        self.logs = [folder / f"{self.app_id}-{k}.log" for k in range(count)]
        # How far `applied` has read each log: offset, unfinished line, newest count.
        self._read = [(0, b"", 0) for _ in range(count)]
        self.procs: list[subprocess.Popen[bytes]] = []
        for k, log in enumerate(self.logs):
            env = {**os.environ, **isolation.environment(kafka), "PRINTFLEET_WORKER_APP_ID": self.app_id,
                   "PRINTFLEET_WORKER_DATA_DIR": str(folder / f"data-{k}"), "PRINTFLEET_WORKER_START_AT": "latest",
                   "PRINTFLEET_WORKER_STATUS_EVERY_S": "0.2"}
            with open(log, "wb") as out:
                self.procs.append(subprocess.Popen([sys.executable, "-m", "printfleet", "worker", "--loglevel", "info", "--ops-port", "0"],
                                                   env=env, stdout=out, stderr=subprocess.STDOUT))

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        for proc in self.procs:
            proc.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            for proc in self.procs:
                proc.send_signal(signal.SIGCONT)

    def tail(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-1500:]}" for log in self.logs)

    def applied(self) -> int:
        """The sum of the counts on each worker's newest status line. Reads only what the
        logs gained since the last call: rescanning a whole log 50 times a second took
        most of a core from the two the workers are timed on."""
        total = 0
        for k, log in enumerate(self.logs):
            read_to, partial, applied = self._read[k]
            with open(log, "rb") as f:
                f.seek(read_to)
                chunk = partial + f.read()
            read_to += len(chunk) - len(partial)
            complete, _, partial = chunk.rpartition(b"\n")
            found = re.findall(rb"^worker: applied (\d+) records", complete, re.M)
            if found:
                applied = int(found[-1])
            self._read[k] = (read_to, partial, applied)
            total += applied
        return total

    def _assigned(self) -> list[int] | None:
        """Every worker's telemetry partitions, or None while one of them is not ready
        or has not taken up its newest assignment yet."""
        partitions: list[int] = []
        for log in self.logs:
            text = log.read_text(errors="replace")
            joined = text.rfind("Joined group")
            reading, paused = text.rfind("Reading telemetry partitions"), text.rfind("Telemetry reading paused")
            if "[^Worker]: Ready" not in text or max(reading, paused) < joined:
                return None
            if reading > paused:
                found = re.match(r"Reading telemetry partitions \[([\d, ]*)\]", text[reading:])
                partitions += [int(p) for p in found.group(1).split(",") if p.strip()] if found else []
        return partitions

    async def ready(self) -> None:
        """Wait until the group is settled: every telemetry partition read by one worker."""
        deadline = time.monotonic() + 180
        while sorted(self._assigned() or []) != list(range(PARTITIONS)):
            if any(p.poll() is not None for p in self.procs) or time.monotonic() > deadline:
                raise RuntimeError(f"the workers did not start:\n{self.tail()}")
            await asyncio.sleep(0.2)

    async def applied_at_least(self, n: int, timeout_s: float = 600) -> tuple[float, int]:
        """Wait until the workers applied `n` records in all; returns when their status
        lines said so (monotonic) and how many they had applied then."""
        deadline = time.monotonic() + timeout_s
        while (applied := self.applied()) < n:
            if any(p.poll() is not None for p in self.procs) or time.monotonic() > deadline:
                raise RuntimeError(f"the workers applied {applied} of {n}:\n{self.tail()}")
            await asyncio.sleep(0.02)
        return time.monotonic(), applied

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                await asyncio.to_thread(proc.wait, 60)
            except subprocess.TimeoutExpired:
                proc.kill()


async def _produce(kafka: KafkaSettings, messages: Iterable[tuple[str, bytes, bytes]]) -> list[tuple[str, int]]:
    """Send (registry topic, key, value); returns where they landed (topic, partition) in order."""
    producer = clients.producer(kafka, linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    try:
        futures = [await producer.send(kafka.topic(topic), value, key=key) for topic, key, value in messages]
        return [(m.topic, m.partition) for m in await asyncio.gather(*futures)]
    finally:
        await producer.stop()


async def _baseline(kafka: KafkaSettings, topic: str, kind: str, starts: dict[int, int], count: int,
                    registry: SchemaRegistry) -> float:
    """Seconds a bare consumer takes to read and decode `count` records of `topic` from `starts`."""
    consumer = clients.consumer(kafka, group_id=None, max_partition_fetch_bytes=4 << 20, fetch_max_bytes=16 << 20)
    await consumer.start()
    try:
        tps = [TopicPartition(kafka.topic(topic), p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, starts.get(tp.partition, 0))
        seen, t0 = 0, time.monotonic()
        while seen < count:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=20_000)).values():
                seen += len(registry.decode_records(kind, [r.value for r in records]))
        return time.monotonic() - t0
    finally:
        await consumer.stop()


async def _ends(kafka: KafkaSettings, topic: str) -> dict[int, int]:
    consumer = clients.consumer(kafka, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(kafka.topic(topic), p) for p in range(PARTITIONS)]
        return {tp.partition: end for tp, end in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def _throughput(opts: Options, worker: Workers, path: str, registry: SchemaRegistry) -> Throughput:
    run = uuid.uuid4().hex[:8]
    devices = device_ids(opts.printers, run)
    site = f"bench-{run}"
    if path == "heartbeat":
        steps = max(1, opts.records // opts.printers)
        records = list(heartbeats(devices, site, steps))
    else:
        records = list(events(devices, site, opts.records, seed=hash(run) & 0xFFFF))
    kind = "heartbeat" if path == "heartbeat" else "system_event"
    topic = topic_for(kind)
    encoded = registry.encode_many(kind, records)
    starts = await _ends(opts.kafka, topic)
    before = worker.applied()
    _log(f"  {path}: producing {len(records):,} records of {opts.printers:,} printers (worker paused)")
    # The worker is stopped (SIGSTOP) while the bench produces, so that it meets a backlog
    # and does not share the two cores with the bench's producer: like the baseline, it
    # is timed reading records that are all there. A few seconds, far within the session
    # timeout: the group does not notice.
    with worker.paused():
        await _produce(opts.kafka, ((topic, str(r["device_id"]).encode(), v) for r, v in zip(records, encoded)))
    # Timed from the first status line that shows records of this batch applied to the one
    # that shows all of them, counting only what was applied in between.
    first, first_count = await worker.applied_at_least(before + 1)
    last, last_count = await worker.applied_at_least(before + len(records))
    _log(f"  {path}: applied in {last - first:.1f} s; baseline consumer...")
    baseline_s = await _baseline(opts.kafka, topic, kind, starts, len(records), registry)
    return Throughput(path, len(records), last - first, baseline_s, last_count - first_count)


async def _latency(opts: Options, registry: SchemaRegistry) -> list[float]:
    """Alert latencies (s) while 1,000 printers send heartbeats every 10 s."""
    run = uuid.uuid4().hex[:8]
    devices = device_ids(opts.printers, run)
    site = f"bench-{run}"
    kafka = opts.kafka
    producer = clients.producer(kafka, linger_ms=0)
    consumer = clients.consumer(kafka, kafka.topic(topic_for("alert")), group_id=None, auto_offset_reset="latest",
                                fetch_max_wait_ms=10)
    await producer.start()
    await consumer.start()
    await consumer.getmany(timeout_ms=500)  # positions resolved before anything is sent
    sent: dict[str, float] = {}
    latencies: list[float] = []

    async def collect() -> None:
        while True:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                now = time.monotonic()
                for r in registry.decode_records("alert", [m.value for m in records]):
                    key = f"{r['device_id']}|{r['source_event_code']}"
                    if r["site_id"] == site and r["lifecycle"] == "RAISED" and key in sent:
                        latencies.append(now - sent.pop(key))

    reader = asyncio.create_task(collect())
    try:
        step, n, t_end = 0, 0, time.monotonic() + opts.latency_s
        next_beat = next_error = time.monotonic()
        while time.monotonic() < t_end:
            now = time.monotonic()
            if now >= next_beat:  # one tenth of the fleet each second: every printer every 10 s
                share = devices[(step % 10) * len(devices) // 10:((step % 10) + 1) * len(devices) // 10]
                for r in heartbeats(share, site, 1, first_step=step):
                    await producer.send(kafka.topic(topic_for("heartbeat")), registry.encode("heartbeat", r), key=r["device_id"].encode())
                step, next_beat = step + 1, next_beat + 1.0
            if now >= next_error:
                (error,) = events([devices[(n * 7919) % len(devices)]], site, 1, seed=n, severity="ERROR", at_ms=T0 + step * 1000)
                error = {**error, "code": f"0057-{n // 10_000:04d}-{n % 10_000:04d}"}
                sent[f"{error['device_id']}|{error['code']}"] = time.monotonic()
                await (await producer.send(kafka.topic(topic_for("system_event")), registry.encode("system_event", error),
                                           key=error["device_id"].encode()))
                n, next_error = n + 1, next_error + 1.0 / opts.errors_per_s
            await asyncio.sleep(0.005)
        deadline = time.monotonic() + 10
        while sent and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if sent:
            _log(f"  latency: {len(sent)} of {n} errors got no alert within 10 s")
        return latencies
    finally:
        reader.cancel()
        await producer.stop()
        await consumer.stop()


def _pct(values: Sequence[float], q: float) -> float:
    xs = sorted(values)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


async def _bench(opts: Options) -> int:
    registry = SchemaRegistry.load_default()
    folder = Path(tempfile.mkdtemp(prefix="printfleet-bench-streams-"))
    _log(f"bench streams: Kafka {opts.kafka.bootstrap_servers} (topics {opts.kafka.topic_prefix}*, deleted at the end), "
         f"{opts.printers:,} printers, {opts.workers} worker(s), {opts.repeats} repeat(s), logs in {folder}")
    worker = Workers(opts.kafka, folder, opts.workers)
    results: dict[str, list[Throughput]] = {"heartbeat": [], "event": []}
    try:
        await worker.ready()
        # The paths take turns, so that a slow phase of the machine falls on both.
        for repeat in range(opts.repeats):
            _log(f"  repeat {repeat + 1} of {opts.repeats}")
            for path, runs in results.items():
                runs.append(await _throughput(opts, worker, path, registry))
        _log(f"  latency: {opts.latency_s:.0f} s of live traffic, {opts.errors_per_s:g} errors/s")
        latencies = await _latency(opts, registry)
    finally:
        await worker.stop()
        await isolation.drop_topics(opts.kafka)
    _report(opts, results, latencies)
    met = all(_median_rate(runs) / opts.workers >= TARGET_RECORDS_S for runs in results.values())
    return 0 if met and latencies and _pct(latencies, 99) <= TARGET_P99_S else 1


def _median_rate(runs: Sequence[Throughput]) -> float:
    return statistics.median(r.worker_rate for r in runs)


def _report(opts: Options, results: dict[str, list[Throughput]], latencies: list[float]) -> None:
    n = opts.workers
    print(f"# printfleet bench streams\n\nMachine: {describe()}; {n} worker process{'es' if n > 1 else ''}; "
          f"{opts.printers:,} printers; each path measured {opts.repeats} times.\n")
    print("| path | records each | records/s, all workers (median; each) | per worker (median) "
          "| baseline records/s (bare consumer + decode; median) | per worker / baseline | target per worker |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for path, runs in results.items():
        rate, baseline = _median_rate(runs), statistics.median(r.baseline_rate for r in runs)
        each = " / ".join(f"{r.worker_rate:,.0f}" for r in runs)
        verdict = "met" if rate / n >= TARGET_RECORDS_S else "MISSED"
        print(f"| {path} | {runs[0].records:,} | {rate:,.0f} ({each}) | {rate / n:,.0f} | {baseline:,.0f} | "
              f"{rate / n / baseline:.3f} | >= {TARGET_RECORDS_S:,} ({verdict}) |")
    if latencies:
        p50, p99 = _pct(latencies, 50), _pct(latencies, 99)
        verdict = "met" if p99 <= TARGET_P99_S else "MISSED"
        print("\n| alert latency (record produced -> RAISED on `alerts`) | samples | p50 | p99 | max | target |")
        print("|---|---:|---:|---:|---:|---|")
        print(f"| printhead error at 1 of {opts.printers:,} live printers | {len(latencies)} | {p50 * 1000:.0f} ms | "
              f"{p99 * 1000:.0f} ms | {max(latencies) * 1000:.0f} ms | p99 <= {TARGET_P99_S:g} s ({verdict}) |")
    else:
        print("\nalert latency: no alert arrived")


def run(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="printfleet bench streams", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kafka-bootstrap", help="one broker (default: the local stack's); the run uses topics "
                                                  "of its own (bench-<run>.)")
    parser.add_argument("--printers", type=int, default=1000)
    parser.add_argument("--records", type=int, default=120_000, help="records per throughput path")
    parser.add_argument("--latency-s", type=float, default=30.0, help="seconds of live traffic for the latency part")
    parser.add_argument("--repeats", type=int, default=3,
                        help="throughput measurements per path, taking turns; the verdict is on their median "
                             "(this machine's speed moves by half between runs)")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes sharing the partitions (at most 6); the target is per process")
    args = parser.parse_args(argv)
    if not 1 <= args.workers <= PARTITIONS:
        parser.error(f"--workers must be between 1 and {PARTITIONS} (the telemetry's partitions)")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    opts = Options(isolation.kafka(args.kafka_bootstrap), args.printers, args.records,
                   args.latency_s, workers=args.workers, repeats=args.repeats)
    return asyncio.run(_bench(opts))

