"""The end of a run: drain, then check the data.

Drain: the collectors stop (SIGTERM: they stop polling and upload what their spools
hold); a collector whose spool still holds records is started again until it is empty.
Then the worker's and the sink's lag must be 0 and the sink's stored count still for
`settle_s`; then the gateway and the worker stop (the worker's last checkpoint and timers
may still write outputs as it goes), and the sink must catch up with those again.

Exactly once, per kind: Kafka's records are counted by reading every partition from the
start with read_committed (aborted transactions and their markers are never handed to a
consumer; offsets would count both), decoding each record's id; then in ClickHouse
`count()` and `uniqExact(record_id)` of the kind's table. A kind passes when Kafka's
messages, Kafka's distinct ids, ClickHouse's rows and ClickHouse's distinct ids are one
number. The run's database is written by this run's sink alone, from these topics
alone, so equal counts mean the same records. And the worker's fleet state (the
`fleet_state` table) must hold every printer of the fleet.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiokafka import TopicPartition

from benchmarks.chaos import spool_pending
from benchmarks.ingest.site import BenchError
from benchmarks.soak.processes import Pipeline
from benchmarks.soak.sampler import flatten
from common.kafka import clients
from common.kafka.settings import KafkaSettings
from common.kafka.topics import PARTITIONS, topic_for
from schemas import SchemaRegistry
from schemas.kinds import CLOUD_KINDS, DEVICE_KINDS
from sinks.client import ClickHouseClient

Progress = Callable[[str], None]


@dataclass
class DataCheck:
    kafka: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (messages, distinct ids)
    clickhouse: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> (count, uniqExact)
    printers_with_state: int = 0
    printers: int = 0
    # Read from /metrics at the end. Records the worker dead-letters as late (older than
    # the utilisation's allowed lateness: the printers' history read at the start) are
    # still stored by the sink; the others' dead letters would be missing from a table.
    dead_lettered: dict[str, int] = field(default_factory=dict)  # gateway, worker, worker late, sink

    @property
    def exactly_once(self) -> bool:
        return all(len({m, d, *self.clickhouse.get(k, (-1, -1))}) == 1 for k, (m, d) in self.kafka.items())

    @property
    def ok(self) -> bool:
        return self.exactly_once and self.printers_with_state == self.printers and self.lost == 0

    @property
    def lost(self) -> int:
        """Dead letters not stored elsewhere: the gateway's, the sink's, the worker's not late."""
        d = self.dead_lettered
        return d.get("gateway", 0) + d.get("sink", 0) + d.get("worker", 0) - d.get("worker late", 0)


async def drain(pipeline: Pipeline, timeout_s: float, progress: Progress, settle_s: float = 15.0) -> dict[str, int]:
    """Collectors out, worker and sink caught up, then the gateway and the worker
    stopped and the sink caught up with their last outputs; returns the records
    dead-lettered by the gateway, worker (and of those, late) and sink. Raises
    BenchError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    collectors = pipeline.collectors
    await pipeline.stop(collectors)
    while left := {n: p for n in collectors if (p := await asyncio.to_thread(spool_pending, pipeline.collector_dirs[n]))}:
        if time.monotonic() > deadline:
            raise BenchError(f"spools still hold records: {left}")
        progress(f"soak: {sum(left.values())} records still spooled at {len(left)} sites; uploading again")
        await pipeline.start(list(left))
        await asyncio.sleep(15)
        await pipeline.stop(list(left))
    progress("soak: collectors drained; waiting for the worker and the sink")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        m = await _settled(pipeline, session, ("gateway", "worker", "sink"), deadline, settle_s)
        dead = {name: int(m[part].get(f"printfleet_{metric}_total", 0)) for name, part, metric in (
            ("gateway", "gateway", "gateway_records_dead_lettered"),
            ("worker", "worker", "worker_records_dead_lettered"), ("worker late", "worker", "worker_records_late"))}
        # The worker's last outputs (its final checkpoint, a timer's) go to Kafka as it
        # stops: the sink must still be there to store them before anything is counted.
        await pipeline.stop(["gateway", "worker"])
        m = await _settled(pipeline, session, ("sink",), deadline, settle_s)
        dead["sink"] = int(m["sink"].get("printfleet_sink_records_dead_lettered_total", 0))
    return dead


async def _settled(pipeline: Pipeline, session: aiohttp.ClientSession, names: tuple[str, ...], deadline: float,
                   settle_s: float) -> dict[str, dict[str, float]]:
    """Wait until the worker's and the sink's lag (of those in `names`) is 0 and the
    sink's stored count stays put for `settle_s`; returns their last /metrics."""
    stored, quiet_since = -1.0, time.monotonic()
    while True:
        pipeline.check()
        m = {n: flatten(await (await session.get(pipeline.ops[n] + "/metrics")).text()) for n in names}
        lag = m.get("worker", {}).get("printfleet_worker_consumer_lag_records", 0) + m["sink"].get(
            "printfleet_sink_consumer_lag_records", 0)
        now_stored = m["sink"].get("printfleet_sink_records_stored_total", 0)
        if lag or now_stored != stored:
            stored, quiet_since = now_stored, time.monotonic()
        elif time.monotonic() - quiet_since >= settle_s:
            return m
        if time.monotonic() > deadline:
            raise BenchError(f"the worker and the sink did not catch up (lag {lag:.0f})")
        await asyncio.sleep(2)


async def count_kafka(kafka: KafkaSettings, registry: SchemaRegistry, kind: str) -> tuple[int, int]:
    """(messages, distinct record ids) of a kind's topic, read committed, from the start."""
    consumer = clients.consumer(kafka, group_id=None, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=4 << 20, fetch_max_bytes=32 << 20)
    await consumer.start()
    try:
        tps = [TopicPartition(kafka.topic(topic_for(kind)), p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        ids: Counter[str] = Counter()
        while any([await consumer.position(tp) < end[tp] for tp in tps]):
            for records in (await consumer.getmany(timeout_ms=1000, max_records=20_000)).values():
                ids.update(str(r["record_id"]) for r in registry.decode_records(kind, [m.value for m in records]))
        return sum(ids.values()), len(ids)
    finally:
        await consumer.stop()


async def check_data(kafka: KafkaSettings, client: ClickHouseClient, printers: int, dead_lettered: dict[str, int],
                     progress: Progress) -> DataCheck:
    registry = SchemaRegistry.load_default()
    out = DataCheck(printers=printers, dead_lettered=dead_lettered)
    for kind in (*DEVICE_KINDS, *CLOUD_KINDS):
        out.kafka[kind] = await count_kafka(kafka, registry, kind)
        rows = await client.rows(f"SELECT count(), uniqExact(record_id) FROM `{kind}`")
        out.clickhouse[kind] = (int(rows[0][0]), int(rows[0][1])) if rows else (0, 0)
        progress(f"soak: {kind}: Kafka {out.kafka[kind]}, ClickHouse {out.clickhouse[kind]}")
    rows = await client.rows("SELECT uniqExact(device_id) FROM fleet_state")
    out.printers_with_state = int(rows[0][0]) if rows else 0
    return out
