"""Every `sample_every_s`: what each component's /metrics says (docs/metrics.md), the
CPU and RSS of every process from /proc, the heartbeat -> ClickHouse latency of the rows
stored since the last sample, and the alert latencies the alert watcher measured.

Heartbeat -> ClickHouse row: `inserted_at` (the sink's `DEFAULT now()`, whole seconds)
minus the heartbeat's `event_time` (the simulated printer's clock, which is the wall
clock at acceleration 1, taken when the collector polled it). `inserted_at` is truncated
to the second, so each latency is counted at the middle of its second (+0.5 s): the
figures are good to +-0.5 s, which is small beside the 10 s cadence.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.ingest.site import ProcessSample, busy_fraction, machine_jiffies
from benchmarks.soak.simulator import INJECTED_CODE, Injected
from common.errors import PrintfleetError
from common.kafka import clients
from common.kafka.settings import KafkaSettings
from common.kafka.topics import topic_for
from deploy.clickhouse import ClickHouseServer
from deploy.kafka import KafkaServer
from deploy.settings import StackSettings
from schemas import SchemaRegistry
from sinks.client import ClickHouseClient

# Stages whose lag is judged, and the metric each is read from.
SPOOL, WORKER, SINK = "collector spools", "worker", "sink"


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the pipeline was ready
    polled_per_s: float  # records the collectors read from the printers
    heartbeats_polled_per_s: float
    in_per_s: float  # records the gateway produced to Kafka
    applied_per_s: float  # records the worker applied
    stored_per_s: float  # records the sink stored
    lag: dict[str, float]  # stage -> records waiting
    spool_depth: dict[str, float]  # collector -> records in its spool
    heartbeat_latency_s: tuple[float, float] | None  # p50, p99 of rows stored since the last sample
    alert_latency_s: tuple[float, float] | None
    cpu_pct: dict[str, float]  # process -> % of one core since the last sample
    rss_mib: dict[str, float]
    machine_busy: float  # share of all cores busy, every process on the machine


def flatten(text: str) -> dict[str, float]:
    """Prometheus text -> sample name -> value summed over its labels; also
    `name{label=value}` -> the value of that one label's samples."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name] = out.get(s.name, 0.0) + s.value
            for label, value in s.labels.items():
                key = f"{s.name}{{{label}={value}}}"
                out[key] = out.get(key, 0.0) + s.value
    return out


def percentile(values: Sequence[float], q: float) -> float:
    xs = sorted(values)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def p50_p99(values: Sequence[float]) -> tuple[float, float] | None:
    return (percentile(values, 50), percentile(values, 99)) if values else None


class AlertWatcher:
    """Reads the alerts topic and matches the alerts of injected printhead errors:
    latency = the alert read here (wall clock) - the event appended at the printer."""

    def __init__(self, kafka: KafkaSettings, registry: SchemaRegistry) -> None:
        self._kafka = kafka
        self._registry = registry
        self._pending: dict[str, Injected] = {}  # device id -> its injected error
        self.latencies: list[float] = []
        self._since = 0  # index of the first latency not yet taken by `take`
        self._task: asyncio.Task[None] | None = None

    def expect(self, injected: Injected) -> None:
        self._pending[injected.device_id] = injected

    @property
    def unanswered(self) -> int:
        return len(self._pending)

    def take(self) -> list[float]:
        """The latencies measured since the last call."""
        new, self._since = self.latencies[self._since:], len(self.latencies)
        return new

    async def start(self) -> None:
        consumer = clients.consumer(self._kafka, self._kafka.topic(topic_for("alert")), group_id=None,
                                    auto_offset_reset="latest", fetch_max_wait_ms=100)
        await consumer.start()
        await consumer.getmany(timeout_ms=500)  # positions resolved before anything is injected
        self._task = asyncio.create_task(self._read(consumer))

    async def _read(self, consumer: Any) -> None:  # AIOKafkaConsumer (untyped)
        try:
            while True:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    now = time.time()
                    for r in self._registry.decode_records("alert", [m.value for m in records]):
                        injected = self._pending.get(str(r["device_id"]))
                        # RAISED, or UPDATED where the printer already had this code's
                        # alert open: either way the alert that reports this error.
                        if (injected is not None and r["source_event_code"] == INJECTED_CODE
                                and int(r["event_time"]) >= injected.event_time_ms):
                            del self._pending[injected.device_id]
                            self.latencies.append(now - injected.wall_s)
        finally:
            await consumer.stop()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@dataclass
class Sampler:
    """Call `sample(pids)` every period; each call returns rates since the previous one."""

    ops: Mapping[str, str]  # component -> ops URL
    clickhouse: ClickHouseClient
    alerts: AlertWatcher
    started: float = field(default_factory=time.monotonic)
    _last: tuple[float, float, dict[str, float]] | None = None  # monotonic, wall, counters
    _cpu: dict[str, float] = field(default_factory=dict)
    _machine: tuple[int, int] = (0, 0)
    samples: list[Sample] = field(default_factory=list)

    async def _metrics(self, session: aiohttp.ClientSession) -> dict[str, dict[str, float]]:
        async def one(name: str, url: str) -> tuple[str, dict[str, float]]:
            try:
                async with session.get(url + "/metrics") as resp:
                    return name, flatten(await resp.text())
            except (aiohttp.ClientError, asyncio.TimeoutError):
                return name, {}  # a component between restarts: a gap, not a zero

        return dict(await asyncio.gather(*(one(n, u) for n, u in self.ops.items())))

    async def _heartbeat_latency(self, since: float, until: float) -> tuple[float, float] | None:
        a, b = int(since), int(until)
        if b <= a:
            return None
        try:
            rows = await self.clickhouse.rows(
                "SELECT quantileExact(0.5)(d), quantileExact(0.99)(d), count() FROM ("
                "SELECT toUnixTimestamp(inserted_at) * 1000 + 500 - toUnixTimestamp64Milli(event_time) AS d "
                "FROM heartbeat WHERE inserted_at >= toDateTime({a:UInt32}) AND inserted_at < toDateTime({b:UInt32}))",
                {"a": a, "b": b})
        except PrintfleetError:
            return None  # the table is not there yet
        if not rows or not int(rows[0][2]):
            return None
        return float(rows[0][0]) / 1000, float(rows[0][1]) / 1000

    async def sample(self, session: aiohttp.ClientSession, pids: Mapping[str, int]) -> Sample | None:
        now, wall = time.monotonic(), time.time()
        metrics = await self._metrics(session)
        counters = _counters(metrics)
        cpu, rss = {}, {}
        for name, pid in pids.items():
            try:
                p = ProcessSample.of(pid)
            except (OSError, KeyError, IndexError):
                continue
            cpu[name], rss[name] = p.cpu_s, p.rss_bytes / 2**20
        machine = machine_jiffies()
        last, self._last = self._last, (now, wall, counters)
        cpu_before, self._cpu = self._cpu, cpu
        machine_before, self._machine = self._machine, machine
        if last is None:
            return None
        dt = now - last[0]

        def rate(key: str) -> float:
            return max(0.0, counters.get(key, 0.0) - last[2].get(key, 0.0)) / dt

        spools = {n: m.get("printfleet_collector_spool_depth_records", 0.0) for n, m in metrics.items()
                  if n.startswith("collector-")}
        sample = Sample(
            t=now - self.started,
            polled_per_s=rate("polled"), heartbeats_polled_per_s=rate("polled_heartbeat"),
            in_per_s=rate("produced"), applied_per_s=rate("applied"), stored_per_s=rate("stored"),
            lag={SPOOL: sum(spools.values()),
                 WORKER: metrics.get("worker", {}).get("printfleet_worker_consumer_lag_records", 0.0),
                 SINK: metrics.get("sink", {}).get("printfleet_sink_consumer_lag_records", 0.0)},
            spool_depth=spools,
            heartbeat_latency_s=await self._heartbeat_latency(last[1], wall),
            alert_latency_s=p50_p99(self.alerts.take()),
            cpu_pct={n: 100 * (cpu[n] - cpu_before[n]) / dt for n in cpu if n in cpu_before},
            rss_mib=rss,
            machine_busy=busy_fraction(machine_before, machine),
        )
        self.samples.append(sample)
        return sample


def _counters(metrics: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    collectors = [m for n, m in metrics.items() if n.startswith("collector-")]
    return {
        "polled": sum(m.get("printfleet_collector_records_polled_total", 0.0) for m in collectors),
        "polled_heartbeat": sum(m.get("printfleet_collector_records_polled_total{kind=heartbeat}", 0.0)
                                for m in collectors),
        "produced": metrics.get("gateway", {}).get("printfleet_gateway_records_produced_total", 0.0),
        "applied": metrics.get("worker", {}).get("printfleet_worker_records_applied_total", 0.0),
        "stored": metrics.get("sink", {}).get("printfleet_sink_records_stored_total", 0.0),
    }


def server_pids(stack: StackSettings) -> dict[str, int]:
    """The local stack's Kafka broker(s) and ClickHouse server, where they run."""
    out: dict[str, int] = {}
    for node in range(1, stack.kafka_brokers + 1):
        pid = KafkaServer(stack, node).process.pid()
        if pid is not None:
            out["kafka" if stack.kafka_brokers == 1 else f"kafka-{node}"] = pid
    pid = ClickHouseServer(stack).process.pid()
    if pid is not None:
        out["clickhouse"] = pid
    return out
